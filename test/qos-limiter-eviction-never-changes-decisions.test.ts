/**
 * The keyed store: a limiter bounded to a few keys (evicting only keys whose state equals a
 * fresh key's) decides exactly as an unbounded one over many keys; when every stored key is
 * still in use, a new key is refused (never admitted without state) with the time until one
 * frees; keys in use are not churned out by sweeps (only keys fresh for idleMs are); and keys
 * are independent: traffic on one never changes another's decisions.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/qos/clock.js';
import type { KeyedLimiter, KeyStoreOptions } from '../src/qos/limiters/keyed-limiter.js';
import { type Algorithm, ALGORITHMS, createLimiter } from '../src/qos/limiters/tiers.js';

const spec = { limit: 3, periodMs: 10 }; // 3 per 10 ms = 10,000 µs

function make(algorithm: Algorithm, store: KeyStoreOptions = {}): KeyedLimiter {
  return createLimiter(spec, algorithm, new ManualClock(), store);
}

const traffic = fc.array(
  fc.record({
    dtUs: fc.oneof(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 40_000 })),
    cost: fc.integer({ min: 0, max: 3 }),
    key: fc.integer({ min: 0, max: 40 }),
  }),
  { minLength: 1, maxLength: 400 },
);

describe.each(ALGORITHMS)('%s', (algorithm) => {
  it('evicting fresh keys never changes a decision; the store stays within maxKeys', () => {
    fc.assert(
      fc.property(
        traffic,
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 4 }),
        fc.constantFrom(0, 1, 15, 10_000),
        (events, maxKeys, sweepPerInsert, idleMs) => {
          const bounded = make(algorithm, { maxKeys, sweepPerInsert, idleMs });
          const unbounded = make(algorithm);
          let t = 0;
          for (const ev of events) {
            t += ev.dtUs;
            const key = `actor-${ev.key}`;
            const fullBefore = bounded.storeFullRefusals;
            const got = bounded.acquireAt(key, ev.cost, t);
            expect(bounded.size).toBeLessThanOrEqual(maxKeys);
            if (bounded.storeFullRefusals > fullBefore) {
              // Refused for want of room: every stored key still holds state, the key is not
              // stored, and the unbounded twin skips the event so both keep the same history.
              expect(bounded.size).toBe(maxKeys);
              expect(got).toBeGreaterThan(0);
              continue;
            }
            expect(got).toBe(unbounded.acquireAt(key, ev.cost, t));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keys are independent: one limiter over many keys decides as one limiter per key', () => {
    fc.assert(
      fc.property(traffic, (events) => {
        const shared = make(algorithm);
        const own = new Map<number, KeyedLimiter>();
        let t = 0;
        for (const ev of events) {
          t += ev.dtUs;
          let l = own.get(ev.key);
          if (!l) {
            l = make(algorithm);
            own.set(ev.key, l);
          }
          expect(shared.acquireAt(`k${ev.key}`, ev.cost, t)).toBe(l.acquireAt(`k${ev.key}`, ev.cost, t));
        }
      }),
      { numRuns: 100 },
    );
  });

  it('idle keys leave as new ones arrive: 30k keys once each, then the store holds few', () => {
    const l = make(algorithm, { maxKeys: 1_000 });
    let admitted = 0;
    for (let i = 0; i < 30_000; i++) if (l.acquireAt(`k${i}`, 1, i * 20) === 0) admitted++;
    expect(admitted).toBe(30_000);
    expect(l.size).toBeLessThanOrEqual(1_000);
    expect(l.evictions).toBeGreaterThan(28_000);
    expect(l.storeFullRefusals).toBe(0);
  });

  it('keys in use are not evicted by sweeps: a working set of maxKeys keys checked every period stays stored', () => {
    const l = make(algorithm, { maxKeys: 100 });
    let t = 0;
    for (let round = 0; round < 20; round++) {
      for (let k = 0; k < 100; k++) {
        t += 100; // every key once per 10 ms, fresh again well within the 10 s idle bound
        l.acquireAt(`k${k}`, 1, t);
      }
    }
    expect(l.evictions).toBe(0);
    expect(l.size).toBe(100);
    // A new key past the idle bound frees the keys that have been fresh that long.
    expect(l.acquireAt('new', 1, t + 10_000_000 + 20_000)).toBe(0);
    expect(l.evictions).toBeGreaterThan(0);
  });

  it('a full store of busy keys refuses a new key until the earliest key is fresh again', () => {
    const l = make(algorithm, { maxKeys: 2, sweepPerInsert: 0 });
    expect(l.acquireAt('a', 3, 0)).toBe(0);
    expect(l.acquireAt('b', 3, 5_000)).toBe(0);
    const wait = l.acquireAt('c', 1, 5_000);
    expect(wait).toBeGreaterThan(0);
    expect(l.check('c').allowed).toBe(false);
    expect(l.storeFullRefusals).toBe(2);
    // At that time key a is fresh, is evicted, and c gets its slot.
    expect(l.acquireAt('c', 1, 5_000 + wait)).toBe(0);
    expect(l.size).toBeGreaterThanOrEqual(1); // b may be fresh at the same time (aligned windows)
    expect(l.size).toBeLessThanOrEqual(2);
  });
});
