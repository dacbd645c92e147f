/**
 * Tier quotas in the daemon are journaled in its store (`<store>/daemon/qos-quotas.journal`,
 * src/qos/quotas): part of a quota is consumed, the daemon is stopped cleanly and restarted on
 * the same store, then SIGKILLed and restarted: each time GET /v1/qos shows the same used,
 * remaining and resets_at; past the limit the 429 QUOTA_EXCEEDED body carries that same
 * resets_at and Retry-After counts down to it.
 */

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startTestDaemon, type TestDaemon, tempDirectory } from './helpers/daemon.js';

const echo = readFileSync(join(REPO_ROOT, 'wasm', 'echo.wasm'));
const QUOTA = { limit: 5, periodMs: 86_400_000 };
const config = {
  qos: {
    tiers: { free: { limit: 1000, periodMs: 60_000, quota: QUOTA } },
    actors: { 'uid:0': 'free' },
    abuse: { violations: 1000 },
  },
};

const store = tempDirectory('tp-qos-quota-store-');
const started: TestDaemon[] = [];
afterAll(async () => {
  for (const d of started) await d.stop('SIGKILL');
  store.remove();
});

async function start(): Promise<TestDaemon> {
  const d = await startTestDaemon({ config, store: join(store.dir, 'store') });
  started.push(d);
  return d;
}

async function upload(d: TestDaemon): Promise<string> {
  const up = await d.request({
    method: 'POST',
    path: '/v1/builds?kind=wasm&name=echo.wasm',
    body: echo,
    headers: { 'content-type': 'application/wasm' },
  });
  expect(up.status).toBeLessThan(300);
  return up.body.id as string;
}

const execute = (d: TestDaemon, build: string) =>
  d.request({
    method: 'POST',
    path: '/v1/executions',
    body: { build, entry: 'echo', input: { kind: 'text', text: 'quota' } },
  });

async function quota(
  d: TestDaemon,
): Promise<{ limit: number; used: number; remaining: number; resets_at: string }> {
  const res = await d.request({ path: '/v1/qos?actor=uid:0' });
  expect(res.status).toBe(200);
  return res.body.actor.quota;
}

describe('tier quotas survive the daemon', () => {
  it('keeps used, remaining and resets_at across a clean restart and a SIGKILL; 429 past the limit', async () => {
    let d = await start();
    let build = await upload(d);
    for (let i = 0; i < 2; i++) expect((await execute(d, build)).status).toBe(200);
    const before = await quota(d);
    expect(before).toMatchObject({ limit: 5, used: 2, remaining: 3 });
    const resetsAt = before.resets_at;
    expect(Date.parse(resetsAt)).toBeGreaterThan(Date.now());
    expect(existsSync(join(store.dir, 'store', 'daemon', 'qos-quotas.journal'))).toBe(true);

    // Clean stop (SIGTERM), then the same store.
    expect((await d.stop()).code).toBe(0);
    d = await start();
    expect(await quota(d)).toEqual(before);
    build = await upload(d);
    expect((await execute(d, build)).status).toBe(200);
    expect(await quota(d)).toMatchObject({ used: 3, remaining: 2, resets_at: resetsAt });

    // SIGKILL: the acknowledged consumes were written before the answers.
    await d.kill();
    d = await start();
    expect(await quota(d)).toMatchObject({ limit: 5, used: 3, remaining: 2, resets_at: resetsAt });
    build = await upload(d);
    for (let i = 0; i < 2; i++) expect((await execute(d, build)).status).toBe(200);
    const over = await execute(d, build);
    expect(over.status).toBe(429);
    expect(over.body.error).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      limit: 5,
      used: 5,
      period_ms: QUOTA.periodMs,
      resets_at: resetsAt,
    });
    const retry = Number(over.headers['retry-after']);
    const untilReset = (Date.parse(resetsAt) - Date.now()) / 1000;
    expect(retry).toBeGreaterThanOrEqual(Math.floor(untilReset));
    expect(retry).toBeLessThanOrEqual(Math.ceil(untilReset) + 1);
    // A refusal spends nothing.
    expect(await quota(d)).toMatchObject({ used: 5, remaining: 0, resets_at: resetsAt });
  }, 60_000);
});
