/**
 * The sliding window log against an exact event list (identical decisions: at most `limit` in
 * any window, no false refusals, exact Retry-After), and the two-window counter against its
 * documented bound: ≤ limit per aligned window, ≤ 2 × limit in any sliding window, a refusal
 * only when the two aligned windows hold more than limit − cost, decisions identical to
 * Cloudflare's formula in exact rationals, and an exact Retry-After for its estimate.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/qos/clock.js';
import type { KeyedLimiter } from '../src/qos/limiters/keyed-limiter.js';
import { SlidingWindowCounterLimiter } from '../src/qos/limiters/sliding-window-counter.js';
import { SlidingWindowLogLimiter } from '../src/qos/limiters/sliding-window-log.js';
import { maxInAnyWindow, ReferenceTwoWindow, ReferenceWindowLog } from './helpers/qos-reference.js';

const params = fc.record({
  limit: fc.integer({ min: 1, max: 12 }),
  windowUs: fc.integer({ min: 1, max: 20_000 }),
});
const traffic = fc.array(
  fc.record({
    dtUs: fc.integer({ min: 0, max: 8_000 }),
    cost: fc.nat(),
    key: fc.integer({ min: 0, max: 1 }),
  }),
  { minLength: 1, maxLength: 300 },
);

function log(p: { limit: number; windowUs: number }, clock: ManualClock): KeyedLimiter {
  return new SlidingWindowLogLimiter({ limit: p.limit, windowMs: p.windowUs / 1000, clock });
}
function counter(p: { limit: number; windowUs: number }, clock: ManualClock): KeyedLimiter {
  return new SlidingWindowCounterLimiter({ limit: p.limit, windowMs: p.windowUs / 1000, clock });
}

describe('sliding window log', () => {
  it('decides exactly as the event list: never more than limit in any window, no false refusal', () => {
    fc.assert(
      fc.property(params, traffic, (p, events) => {
        const limiter = log(p, new ManualClock());
        const refs = [
          new ReferenceWindowLog(p.limit, p.windowUs),
          new ReferenceWindowLog(p.limit, p.windowUs),
        ];
        const admitted: { t: number; cost: number }[][] = [[], []];
        let t = 0;
        for (const ev of events) {
          t += ev.dtUs;
          const cost = ev.cost % (p.limit + 1);
          const got = limiter.acquireAt(`k${ev.key}`, cost, t) === 0;
          expect(got).toBe(refs[ev.key]!.decide(t, cost));
          if (got) admitted[ev.key]!.push({ t, cost });
        }
        for (const list of admitted) expect(maxInAnyWindow(list, p.windowUs)).toBeLessThanOrEqual(p.limit);
      }),
      { numRuns: 300 },
    );
  });
});

describe('two-window counter', () => {
  it('stays within its documented bound and decides as the formula in exact rationals', () => {
    fc.assert(
      fc.property(params, traffic, (p, events) => {
        const limiter = counter(p, new ManualClock());
        const ref = new ReferenceTwoWindow(p.limit, p.windowUs);
        const admitted: { t: number; cost: number }[] = [];
        let t = 0;
        for (const ev of events) {
          t += ev.dtUs;
          const cost = ev.cost % (p.limit + 1);
          const { prev, curr } = ref.counts(t);
          const got = limiter.acquireAt('k', cost, t) === 0;
          expect(got).toBe(ref.decide(t, cost));
          // A refusal needs the two aligned windows to hold more than limit − cost.
          if (!got) expect(prev + curr + cost).toBeGreaterThan(p.limit);
          if (got) admitted.push({ t, cost });
        }
        expect(maxInAnyWindow(admitted, p.windowUs)).toBeLessThanOrEqual(2 * p.limit);
        const perAligned = new Map<number, number>();
        for (const a of admitted) {
          const w = Math.floor(a.t / p.windowUs);
          perAligned.set(w, (perAligned.get(w) ?? 0) + a.cost);
        }
        for (const n of perAligned.values()) expect(n).toBeLessThanOrEqual(p.limit);
      }),
      { numRuns: 300 },
    );
  });
});

describe.each([
  ['sliding window log', log],
  ['two-window counter', counter],
])('%s Retry-After', (_name, make) => {
  it('is exact: a microsecond earlier is refused, exactly then is admitted (via the Clock)', () => {
    fc.assert(
      fc.property(params, traffic, fc.nat(), (p, events, wanted) => {
        const clock = new ManualClock(5);
        const limiter = make(p, clock);
        for (const ev of events) {
          clock.advance(ev.dtUs / 1000);
          limiter.check('k', ev.cost % (p.limit + 1));
        }
        const cost = 1 + (wanted % p.limit);
        let d = limiter.check('k', cost);
        while (d.allowed) d = limiter.check('k', cost);
        const waitUs = Math.round(d.retryAfterMs * 1000);
        expect(waitUs).toBeGreaterThan(0);
        clock.advance((waitUs - 1) / 1000);
        expect(limiter.check('k', cost).allowed).toBe(false);
        clock.advance(0.001);
        expect(limiter.check('k', cost).allowed).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

it('the two-window counter nearly reaches its bound: limit at the end of one window, more in the next', () => {
  const clock = new ManualClock();
  const c = counter({ limit: 100, windowUs: 1_000_000 }, clock);
  for (let i = 0; i < 100; i++) expect(c.acquireAt('k', 1, 999_999)).toBe(0);
  let more = 0;
  for (let t = 1_000_000; t < 1_999_999; t += 1_000) if (c.acquireAt('k', 1, t) === 0) more++;
  // Within [999_999, 1_999_999): 100 + ~99, under the stated 2 × 100.
  expect(100 + more).toBeGreaterThan(190);
  expect(100 + more).toBeLessThanOrEqual(200);
});
