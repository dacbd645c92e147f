/**
 * Two hosts (separate node processes) check one global GCRA limit in the same Redis as fast as
 * they can. Over every window of length w, what they admit together stays within the stated
 * bound: burst + ⌊w·limit/period⌋ + hosts × leaseSize (src/qos/global/redis-gcra.ts). Each host
 * checks one at a time, so an answer seen after a window opened was decided at most one round
 * trip earlier: the same one-grant-per-host term covers it. The fast path takes fewer round trips
 * per check than one.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleHosts, type HostResult, type Hosts } from './helpers/global-qos-host.js';
import { type RedisServer, startRedisServer } from './helpers/redis-server.js';

let redis: RedisServer;
let hosts: Hosts;

beforeAll(async () => {
  [redis, hosts] = await Promise.all([startRedisServer(), bundleHosts()]);
}, 30_000);

afterAll(async () => {
  hosts?.dispose();
  await redis?.stop();
});

const LIMIT = 100;
const PERIOD_MS = 1_000;
const BURST = 10;
const HOSTS = 2;

/** Most admissions in any window [t, t + wUs] starting at an admission. */
function maxInWindow(sortedUs: readonly number[], wUs: number): number {
  let best = 0;
  let j = 0;
  for (let i = 0; i < sortedUs.length; i++) {
    while (j < sortedUs.length && sortedUs[j]! <= sortedUs[i]! + wUs) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

async function runHosts(leaseSize: number, key: string): Promise<HostResult[]> {
  const startAtMs = Date.now() + 400;
  const job = {
    kind: 'gcra',
    url: redis.url,
    startAtMs,
    durationMs: 1_500,
    key,
    limit: LIMIT,
    periodMs: PERIOD_MS,
    burst: BURST,
    leaseSize,
    concurrency: 1,
  };
  return hosts.run(Array.from({ length: HOSTS }, () => job));
}

function expectWithinBound(results: readonly HostResult[], leaseSize: number): void {
  const all = results.flatMap((r) => r.admittedAtUs).sort((a, b) => a - b);
  // It did limit: both hosts were refused, and more than the burst got through.
  for (const r of results) expect(r.refused).toBeGreaterThan(0);
  expect(all.length).toBeGreaterThan(BURST);
  for (const wMs of [1, 10, 50, 100, 250, 500, 1_000, 1_500]) {
    const definition = BURST + Math.floor((wMs * LIMIT) / PERIOD_MS);
    expect(maxInWindow(all, wMs * 1000), `window ${wMs} ms`).toBeLessThanOrEqual(
      definition + HOSTS * leaseSize,
    );
  }
  for (const r of results) expect(r.degraded).toBe(0);
}

describe('a global limit checked by two processes', () => {
  it('admits within the definition + hosts × 1 with no fast path (one round trip per check)', async () => {
    const results = await runHosts(1, 'no-lease');
    expectWithinBound(results, 1);
    for (const r of results) expect(r.roundTrips).toBeGreaterThanOrEqual(r.checks);
  }, 30_000);

  it('admits within the definition + hosts × leaseSize with leases of 10, in fewer round trips than checks', async () => {
    const results = await runHosts(10, 'lease-10');
    expectWithinBound(results, 10);
    const checks = results.reduce((n, r) => n + r.checks, 0);
    const roundTrips = results.reduce((n, r) => n + r.roundTrips, 0);
    expect(roundTrips).toBeLessThan(checks);
  }, 30_000);
});
