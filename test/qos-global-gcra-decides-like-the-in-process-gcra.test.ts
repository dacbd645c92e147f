/**
 * The Redis GCRA script and the in-process GcraLimiter are one definition: for any limit, period,
 * burst and sequence of (elapsed time, cost), checks at explicit times answer the same allowed,
 * remaining, retry-after and reset-after. Idle keys expire in Redis; the script survives a
 * SCRIPT FLUSH (NOSCRIPT → EVAL).
 */

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/qos/clock.js';
import { GlobalStore } from '../src/qos/global/global-store.js';
import { RedisGcraLimiter } from '../src/qos/global/redis-gcra.js';
import { GcraLimiter } from '../src/qos/limiters/gcra.js';
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

describe('Redis GCRA against the in-process GCRA', () => {
  it('answers every check identically at the same times', async () => {
    let run = 0;
    // Periods of 10 min and more keep every key's TTL (its debt, ≥ one interval) far longer than
    // a run takes in real time, so keys expire only in the simulated time the checks pass.
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 60 }),
        fc.constantFrom(600_000, 600_001, 3_600_000, 700_000.007),
        fc.option(fc.integer({ min: 1, max: 80 }), { nil: undefined }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 120_000_000 }), fc.integer({ min: 0, max: 3 })), {
          minLength: 1,
          maxLength: 40,
        }),
        async (limit, periodMs, burst, steps) => {
          const clock = new ManualClock(0);
          const local = new GcraLimiter({ limit, periodMs, burst, clock });
          const global = new RedisGcraLimiter(store, { limit, periodMs, burst, name: `prop${run++}` });
          const startUs = 1_700_000_000_000_000;
          let elapsedUs = 0;
          for (const [advanceUs, rawCost] of steps) {
            elapsedUs += advanceUs;
            clock.advance(advanceUs / 1000);
            const cost = Math.min(rawCost, local.burst);
            const expected = local.checkAt('k', cost, elapsedUs);
            const got = await global.checkAt('k', cost, startUs + elapsedUs);
            expect({ ...got, source: undefined, degraded: undefined }).toEqual({
              ...expected,
              source: undefined,
              degraded: undefined,
            });
            expect(got.source).toBe('redis');
          }
        },
      ),
      { numRuns: 200 },
    );
  }, 50_000);

  it('sets the key to expire when its debt is paid, so idle keys disappear', async () => {
    const limiter = new RedisGcraLimiter(store, { limit: 10, periodMs: 200, name: 'ttl' });
    const d = await limiter.check('idle', 5);
    expect(d.allowed).toBe(true);
    const pttl = Number(await store.command('PTTL', store.key('ttl:idle')));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(Math.ceil(d.resetAfterMs) + 1);
    await new Promise((r) => setTimeout(r, pttl + 50));
    expect(Number(await store.command('EXISTS', store.key('ttl:idle')))).toBe(0);
  });

  it('loads the script once per connection and falls back to EVAL after SCRIPT FLUSH', async () => {
    const limiter = new RedisGcraLimiter(store, { limit: 5, periodMs: 60_000, name: 'flush' });
    await limiter.check('a');
    const loads = store.counters.scriptLoads;
    await limiter.check('a');
    expect(store.counters.scriptLoads).toBe(loads);
    await store.command('SCRIPT', 'FLUSH');
    const before = store.counters.noscriptFallbacks;
    const d = await limiter.check('a');
    expect(d).toMatchObject({ allowed: true, remaining: 2, source: 'redis' });
    expect(store.counters.noscriptFallbacks).toBe(before + 1);
    // EVAL cached it again: the next call is a plain EVALSHA.
    await limiter.check('a');
    expect(store.counters.noscriptFallbacks).toBe(before + 1);
  });
});
