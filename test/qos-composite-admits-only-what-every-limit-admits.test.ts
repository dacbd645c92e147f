/**
 * Limits per second, minute and hour at once: admitted iff every limit admits, and a refused
 * check consumes from none of them (checked against one reference per limit that takes only
 * when all fit). The retry time is the first moment all of them admit.
 */

import fc from 'fast-check';
import { expect, it } from 'vitest';
import { ManualClock } from '../src/qos/clock.js';
import { perWindowLimiter } from '../src/qos/limiters/tiers.js';
import { ReferenceBucket, ReferenceWindowLog } from './helpers/qos-reference.js';

const limits = fc.record({
  perSecond: fc.integer({ min: 1, max: 6 }),
  perMinute: fc.integer({ min: 1, max: 30 }),
  perHour: fc.integer({ min: 1, max: 100 }),
});
const traffic = fc.array(
  fc.record({
    dtUs: fc.integer({ min: 0, max: 3_000_000 }),
    cost: fc.nat(),
    key: fc.integer({ min: 0, max: 1 }),
  }),
  { minLength: 1, maxLength: 300 },
);

it('token buckets per second/minute/hour (one store): all must admit, a refusal takes from none', () => {
  fc.assert(
    fc.property(limits, traffic, (l, events) => {
      const c = perWindowLimiter(l, 'token-bucket', new ManualClock());
      const refs = [0, 1].map(() => [
        new ReferenceBucket(l.perSecond, l.perSecond, 1_000_000),
        new ReferenceBucket(l.perMinute, l.perMinute, 60_000_000),
        new ReferenceBucket(l.perHour, l.perHour, 3_600_000_000),
      ]);
      const maxCost = Math.min(l.perSecond, l.perMinute, l.perHour);
      let t = 0;
      for (const ev of events) {
        t += ev.dtUs;
        const cost = ev.cost % (maxCost + 1);
        const rs = refs[ev.key]!;
        const expected = rs.every((r) => r.fits(t, cost));
        if (expected) for (const r of rs) r.take(t, cost);
        expect(c.acquireAt(`k${ev.key}`, cost, t) === 0).toBe(expected);
      }
    }),
    { numRuns: 200 },
  );
});

it('sliding logs per second/minute/hour: all must admit, a refusal takes from none', () => {
  fc.assert(
    fc.property(limits, traffic, (l, events) => {
      const c = perWindowLimiter(l, 'sliding-log', new ManualClock());
      const rs = [
        new ReferenceWindowLog(l.perSecond, 1_000_000),
        new ReferenceWindowLog(l.perMinute, 60_000_000),
        new ReferenceWindowLog(l.perHour, 3_600_000_000),
      ];
      const maxCost = Math.min(l.perSecond, l.perMinute, l.perHour);
      let t = 0;
      for (const ev of events) {
        t += ev.dtUs;
        const cost = ev.cost % (maxCost + 1);
        const expected = rs.every((r) => r.fits(t, cost));
        if (expected) for (const r of rs) r.take(t, cost);
        expect(c.acquireAt('k', cost, t) === 0).toBe(expected);
      }
    }),
    { numRuns: 200 },
  );
});

it.each(['gcra', 'token-bucket'] as const)('%s: retries exactly when every limit admits', (algorithm) => {
  fc.assert(
    fc.property(limits, traffic, (l, events) => {
      const clock = new ManualClock();
      const c = perWindowLimiter(l, algorithm, clock);
      for (const ev of events) {
        clock.advance(ev.dtUs / 1000);
        c.check('k', 1);
      }
      let d = c.check('k', 1);
      while (d.allowed) {
        expect(d.remaining).toBeLessThanOrEqual(Math.min(l.perSecond, l.perMinute, l.perHour));
        d = c.check('k', 1);
      }
      const waitUs = Math.round(d.retryAfterMs * 1000);
      clock.advance((waitUs - 1) / 1000);
      expect(c.check('k', 1).allowed).toBe(false);
      clock.advance(0.001);
      expect(c.check('k', 1).allowed).toBe(true);
    }),
    { numRuns: 150 },
  );
});

it('token buckets in one store: evicting fresh keys never changes a decision', () => {
  fc.assert(
    fc.property(limits, traffic, fc.integer({ min: 1, max: 3 }), (l, events, maxKeys) => {
      const bounded = perWindowLimiter(l, 'token-bucket', new ManualClock(), { maxKeys, sweepPerInsert: 2 });
      const unbounded = perWindowLimiter(l, 'token-bucket', new ManualClock());
      let t = 0;
      for (const ev of events) {
        t += ev.dtUs;
        const full = 'storeFullRefusals' in bounded ? bounded.storeFullRefusals : 0;
        const got = bounded.acquireAt(`k${ev.key % 4}`, 1, t);
        if ('storeFullRefusals' in bounded && bounded.storeFullRefusals > full) continue;
        expect(got).toBe(unbounded.acquireAt(`k${ev.key % 4}`, 1, t));
      }
    }),
    { numRuns: 150 },
  );
});

it('the Decision names the tightest limit', () => {
  const clock = new ManualClock();
  for (const algorithm of ['gcra', 'token-bucket'] as const) {
    const c = perWindowLimiter({ perSecond: 5, perMinute: 8 }, algorithm, clock);
    expect(c.check('k', 4)).toMatchObject({ allowed: true, limit: 5, remaining: 1 });
    expect(c.check('k', 1)).toMatchObject({ allowed: true, limit: 5, remaining: 0 });
    clock.advance(1_000);
    expect(c.check('k', 1)).toMatchObject({ allowed: true, limit: 8, remaining: 2 });
  }
});
