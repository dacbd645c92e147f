/**
 * The fast path's bound, exactly: several hosts (RedisGcraLimiter instances, each with its own
 * leases) check one key of one Redis at explicit, interleaved times. Over every window [a, a + w]
 * the units they admit together never exceed the GCRA definition (burst + ⌊w / T⌋) plus
 * hosts × leaseSize; with leaseSize 1 they never exceed the definition at all.
 */

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/qos/clock.js';
import { GlobalStore } from '../src/qos/global/global-store.js';
import { RedisGcraLimiter } from '../src/qos/global/redis-gcra.js';
import { type RedisServer, startRedisServer } from './helpers/redis-server.js';

let redis: RedisServer;
let store: GlobalStore;

beforeAll(async () => {
  redis = await startRedisServer();
  store = new GlobalStore({ url: redis.url, commandTimeoutMs: 5_000 });
  await store.connect();
}, 30_000);

afterAll(async () => {
  await store?.close();
  await redis?.stop();
});

/** Most units admitted in any window [t, t + w] (t at an admission), from (time, units) sorted by time. */
function maxInWindow(admitted: readonly (readonly [number, number])[], w: number): number {
  let best = 0;
  let sum = 0;
  let j = 0;
  for (let i = 0; i < admitted.length; i++) {
    while (j < admitted.length && admitted[j]![0] <= admitted[i]![0] + w) sum += admitted[j++]![1];
    best = Math.max(best, sum);
    sum -= admitted[i]![1];
  }
  return best;
}

describe('leases across hosts', () => {
  it('admit at most the definition + hosts × leaseSize over every window', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 2, max: 4 }),
        fc.integer({ min: 1, max: 1_200_000 }),
        // (host, elapsed ms, cost)
        fc.array(
          fc.tuple(
            fc.nat(3),
            fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 900_000 })),
            fc.integer({ min: 1, max: 3 }),
          ),
          {
            minLength: 1,
            maxLength: 120,
          },
        ),
        async (limit, burst, leaseSize, hostCount, leaseTtlMs, steps) => {
          // One interval T = 600 s / limit ≥ 15 s: Redis's TTLs outlast the run in real time.
          const periodMs = 600_000;
          const clock = new ManualClock(0);
          const name = `lease${run++}`;
          const lease = Math.min(leaseSize, burst);
          const hosts = Array.from(
            { length: hostCount },
            () =>
              // Each host's leases expire on the shared simulated clock.
              new RedisGcraLimiter(store, {
                limit,
                periodMs,
                burst,
                leaseSize: lease,
                leaseTtlMs,
                name,
                clock,
              }),
          );
          const startUs = 1_800_000_000_000_000;
          const admitted: [number, number][] = [];
          let nowMs = 0;
          for (const [host, advanceMs, rawCost] of steps) {
            nowMs += advanceMs;
            clock.advance(advanceMs);
            const cost = Math.min(rawCost, burst);
            const d = await hosts[host % hostCount]!.checkAt('k', cost, startUs + nowMs * 1000);
            if (d.allowed) admitted.push([nowMs, cost]);
          }
          const intervalMs = periodMs / limit;
          for (const w of [0, 1, intervalMs / 2, intervalMs, 5 * intervalMs, 50_000, 200_000]) {
            const definition = burst + Math.floor(w / intervalMs);
            expect(maxInWindow(admitted, w)).toBeLessThanOrEqual(
              definition + (lease > 1 ? hostCount * lease : 0),
            );
          }
        },
      ),
      { numRuns: 150 },
    );
  }, 50_000);
});
