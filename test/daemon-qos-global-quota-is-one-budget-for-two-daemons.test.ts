/**
 * qos.global keeps tier quotas in Redis (`quotas`, default true): two daemons on one
 * redis-server spend one budget per actor. 10 executions sent to both at once for a quota of 6
 * admit exactly 6; the others are 429 QUOTA_EXCEEDED with used 6 and the same resets_at (the
 * end of the UTC day), and GET /v1/qos on either daemon shows the shared usage. Redis killed: a
 * fail-open daemon counts on its own (admits again), and says so.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { type RedisServer, startRedisServer } from './helpers/redis-server.js';

const QUOTA = 6;
const DAY_MS = 86_400_000;

let redis: RedisServer;
let a: TestDaemon;
let b: TestDaemon;
const builds = new Map<TestDaemon, string>();

beforeAll(async () => {
  redis = await startRedisServer();
  const config = {
    qos: {
      tiers: { free: { limit: 1000, periodMs: 60_000, quota: { limit: QUOTA, periodMs: DAY_MS } } },
      actors: { 'uid:0': 'free' },
      abuse: null,
      global: { redisUrl: redis.url, failMode: 'open', commandTimeoutMs: 500 },
    },
  };
  [a, b] = await Promise.all([startTestDaemon({ config }), startTestDaemon({ config })]);
  for (const d of [a, b]) {
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
  await Promise.all([a?.stop(), b?.stop()]);
  await redis?.stop();
}, 30_000);

const execute = (d: TestDaemon) =>
  d.request({
    method: 'POST',
    path: '/v1/executions',
    body: { build: builds.get(d), entry: 'echo', input: { kind: 'text', text: 'q' } },
  });

describe('a global tier quota', () => {
  it('is one budget for both daemons: exactly the limit admitted, then QUOTA_EXCEEDED everywhere', async () => {
    const answers = await Promise.all(Array.from({ length: 5 }, () => [execute(a), execute(b)]).flat());
    expect(answers.filter((r) => r.status === 200)).toHaveLength(QUOTA);
    const resetsAt = new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS + DAY_MS).toISOString();
    for (const r of answers.filter((x) => x.status !== 200)) {
      expect(r.status).toBe(429);
      expect(r.body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', limit: QUOTA, used: QUOTA, global: true });
      expect(r.body.error.resets_at).toBe(resetsAt);
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    for (const d of [a, b]) {
      const state = await d.request({ path: '/v1/qos?actor=uid:0' });
      expect(state.body.actor.quota).toMatchObject({
        limit: QUOTA,
        used: QUOTA,
        remaining: 0,
        resets_at: resetsAt,
        global: true,
        source: 'redis',
      });
    }
  }, 30_000);

  it('Redis down: the fail-open daemon counts on its own host and says so', async () => {
    await redis.kill();
    const r = await execute(a);
    expect(r.status).toBe(200);
    const metrics = (await a.request({ path: '/metrics' })).text;
    expect(metrics).toMatch(/^thunderpac_qos_global_redis_up 0$/m);
    expect(metrics).toMatch(
      /^thunderpac_qos_global_decisions_total\{source="quota-local-fallback"\} [1-9]\d*$/m,
    );
  }, 30_000);
});
