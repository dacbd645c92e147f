/**
 * qos.global in the real daemon: two daemons (separate stores) share one redis-server on a
 * loopback port and one tier limit (uid 0 in `free`: 10 per 10 s, GCRA, leases of 3). Requests
 * sent to both at once are admitted at most limit + hosts × (leaseSize − 1) in total (plus what
 * the rate refills while they run), where each daemon alone would admit the whole limit.
 * Redis killed: the fail-open daemon keeps admitting by its local GCRA of the same definition
 * (the burst, then 429), the fail-closed one answers 503 QOS_UNAVAILABLE with Retry-After, and
 * both say so in thunderpac_qos_global_redis_up / _fallbacks_total. Redis back (same port):
 * both decide in Redis again.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { type RedisServer, startRedisServer } from './helpers/redis-server.js';

const LIMIT = 10;
const PERIOD_MS = 10_000;
const LEASE = 3;
const HOSTS = 2;

let redis: RedisServer;
let open: TestDaemon;
let closed: TestDaemon;
const builds = new Map<TestDaemon, string>();

function config(failMode: 'open' | 'closed'): object {
  return {
    qos: {
      tiers: { free: { limit: LIMIT, periodMs: PERIOD_MS } },
      actors: { 'uid:0': 'free' },
      abuse: null,
      global: { redisUrl: redis.url, failMode, leaseSize: LEASE, commandTimeoutMs: 500 },
    },
  };
}

beforeAll(async () => {
  redis = await startRedisServer();
  [open, closed] = await Promise.all([
    startTestDaemon({ config: config('open') }),
    startTestDaemon({ config: config('closed') }),
  ]);
  for (const d of [open, closed]) {
    const up = await d.request({
      method: 'POST',
      path: '/v1/builds?kind=wasm&name=echo.wasm',
      body: readFileSync(join(REPO_ROOT, 'wasm', 'echo.wasm')),
      headers: { 'content-type': 'application/wasm' },
    });
    expect(up.status).toBe(201);
    builds.set(d, up.body.id);
  }
}, 60_000);

afterAll(async () => {
  await Promise.all([open?.stop(), closed?.stop()]);
  await redis?.stop();
}, 30_000);

const execute = (d: TestDaemon) =>
  d.request({
    method: 'POST',
    path: '/v1/executions',
    body: { build: builds.get(d), entry: 'echo', input: { kind: 'text', text: 'g' } },
  });

async function metric(d: TestDaemon, line: RegExp): Promise<number> {
  const text = (await d.request({ path: '/metrics' })).text;
  const m = line.exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('global tier limits across two daemons', () => {
  it('admits at most limit + hosts × (lease − 1) in total while Redis answers', async () => {
    expect(await metric(open, /^thunderpac_qos_global_redis_up (\d+)$/m)).toBe(1);
    expect(await metric(closed, /^thunderpac_qos_global_redis_up (\d+)$/m)).toBe(1);
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 15 }, () => [execute(open), execute(closed)]).flat(),
    );
    const elapsedMs = performance.now() - started;
    const admitted = answers.filter((a) => a.status === 200).length;
    const refused = answers.filter((a) => a.status === 429);
    expect(admitted + refused.length).toBe(answers.length);
    for (const r of refused) expect(r.body.error.code).toBe('RATE_LIMITED');
    const refill = Math.ceil((elapsedMs / PERIOD_MS) * LIMIT);
    // Each daemon alone would admit LIMIT (20 in all): shared, at most the bound.
    expect(admitted).toBeLessThanOrEqual(LIMIT + HOSTS * (LEASE - 1) + refill);
    expect(admitted).toBeGreaterThanOrEqual(LIMIT - HOSTS * (LEASE - 1));
    expect(
      await metric(open, /^thunderpac_qos_global_decisions_total\{source="redis"\} (\d+)$/m),
    ).toBeGreaterThan(0);
    const state = await open.request({ path: '/v1/qos?actor=uid:0' });
    expect(state.body.actor.bucket).toMatchObject({ global: true, leaseSize: LEASE, limit: LIMIT });
  }, 30_000);

  it('Redis down: fail-open admits by its local limit, fail-closed answers 503; metrics say so; Redis back: global again', async () => {
    await redis.kill();
    // Leases (1 s) and remembered refusals (≤ one emission interval, 1 s) run out.
    await sleep(1_200);

    const local: number[] = [];
    for (let i = 0; i < LIMIT + 2; i++) local.push((await execute(open)).status);
    const admitted = local.filter((s) => s === 200).length;
    // The fail-open daemon's own GCRA of the same definition, fresh: the burst, then 429s.
    expect(admitted).toBeGreaterThanOrEqual(LIMIT);
    expect(admitted).toBeLessThanOrEqual(LIMIT + 1);
    expect(local.at(-1)).toBe(429);
    expect(await metric(open, /^thunderpac_qos_global_redis_up (\d+)$/m)).toBe(0);
    expect(
      await metric(open, /^thunderpac_qos_global_fallbacks_total\{mode="open"\} (\d+)$/m),
    ).toBeGreaterThanOrEqual(LIMIT + 2);

    for (let i = 0; i < 3; i++) {
      const r = await execute(closed);
      expect(r.status).toBe(503);
      expect(r.body.error).toMatchObject({ code: 'QOS_UNAVAILABLE', failMode: 'closed' });
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    expect(await metric(closed, /^thunderpac_qos_global_redis_up (\d+)$/m)).toBe(0);
    expect(
      await metric(closed, /^thunderpac_qos_global_fallbacks_total\{mode="closed"\} (\d+)$/m),
    ).toBeGreaterThanOrEqual(3);

    // Back on the same port (empty: a fresh global budget): both decide in Redis again.
    await redis.restart();
    const redisBefore = await metric(
      open,
      /^thunderpac_qos_global_decisions_total\{source="redis"\} (\d+)$/m,
    );
    for (const d of [closed, open]) {
      let status = 0;
      const deadline = performance.now() + 8_000;
      while (status !== 200 && performance.now() < deadline) {
        status = (await execute(d)).status;
        if (status !== 200) await sleep(100);
      }
      expect(status).toBe(200);
      expect(await metric(d, /^thunderpac_qos_global_redis_up (\d+)$/m)).toBe(1);
    }
    expect(
      await metric(open, /^thunderpac_qos_global_decisions_total\{source="redis"\} (\d+)$/m),
    ).toBeGreaterThan(redisBefore);
  }, 30_000);
});
