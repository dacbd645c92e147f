/**
 * Quotas reset exactly at resets_at, for every period and alignment, against a reference model
 * that computes the UTC calendar the plainest way (Date setters, a month walked day by day):
 * one ms before resets_at the usage is still there, at resets_at it is gone; every decision's
 * used / remaining / resets_at equals the model's.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/qos/clock.js';
import { type PeriodInput, Quotas, quotaPlan } from '../src/qos/quotas/index.js';

const H = 3_600_000;
const D = 24 * H;

/** The reference calendar: start of the UTC period containing t, and the period's end. */
function refAlignedStart(period: PeriodInput, t: number): number {
  const d = new Date(t);
  if (typeof period === 'object') return t - (((t % period.everyMs) + period.everyMs) % period.everyMs);
  if (period === 'hour') d.setUTCMinutes(0, 0, 0);
  else {
    d.setUTCHours(0, 0, 0, 0);
    if (period === 'week') d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7)); // back to Monday
    if (period === 'month') d.setUTCDate(1);
  }
  return d.getTime();
}

function refEnd(period: PeriodInput, align: 'utc' | 'rolling', start: number): number {
  if (period === 'never') return Number.POSITIVE_INFINITY;
  if (typeof period === 'object') return start + period.everyMs;
  if (period === 'hour') return start + H;
  if (period === 'day') return start + D;
  if (period === 'week') return start + 7 * D;
  // month: walk day by day to the same day-of-month next month, or that month's last day.
  const s = new Date(start);
  const target = (s.getUTCMonth() + 1) % 12;
  let t = start;
  if (align === 'utc') {
    while (new Date(t).getUTCMonth() !== target) t += D;
    return t; // the 1st, same time (00:00) as the start
  }
  while (new Date(t).getUTCMonth() !== target) t += D;
  let last = t;
  while (new Date(t).getUTCMonth() === target) {
    last = t;
    if (new Date(t).getUTCDate() === s.getUTCDate()) return t;
    t += D;
  }
  return last;
}

class ReferenceQuota {
  used = 0;
  start: number | null = null;
  constructor(
    readonly limit: number,
    readonly period: PeriodInput,
    readonly align: 'utc' | 'rolling',
  ) {}
  #expire(now: number): void {
    if (this.start !== null && now >= refEnd(this.period, this.align, this.start)) {
      this.start = null;
      this.used = 0;
    }
  }
  consume(now: number, amount: number): { allowed: boolean; used: number; resetsAt: number | null } {
    this.#expire(now);
    const start =
      this.start ??
      (this.period === 'never' ? 0 : this.align === 'rolling' ? now : refAlignedStart(this.period, now));
    const fits = this.used + amount <= this.limit;
    if (fits && amount > 0) {
      this.used += amount;
      this.start = start;
    }
    const end = refEnd(this.period, this.align, start);
    const running = this.used > 0 || (fits && amount > 0);
    return { allowed: fits, used: this.used, resetsAt: running && Number.isFinite(end) ? end : null };
  }
  resetsAt(now: number): number | null {
    this.#expire(now);
    if (this.start === null) return null;
    const end = refEnd(this.period, this.align, this.start);
    return Number.isFinite(end) ? end : null;
  }
  reset(): void {
    this.used = 0;
    this.start = null;
  }
}

const period = fc.oneof(
  fc.constantFrom<PeriodInput>('hour', 'day', 'week', 'month', 'never'),
  fc.integer({ min: 1, max: 10 * D }).map((everyMs) => ({ everyMs })),
);

type Step =
  | { kind: 'consume'; amount: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'toReset'; offset: number }
  | { kind: 'reset' };
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('consume' as const), amount: fc.integer({ min: 0, max: 9 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 40 * D }) }),
  },
  // Land on resets_at − 1, resets_at or resets_at + 1.
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('toReset' as const), offset: fc.integer({ min: -1, max: 1 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reset' as const) }) },
);

describe('quota periods', () => {
  it('reset exactly at resets_at and match the reference calendar', () => {
    fc.assert(
      fc.property(
        period,
        fc.constantFrom<'utc' | 'rolling'>('utc', 'rolling'),
        fc.integer({ min: 1, max: 30 }),
        // Start anywhere from 1970 to 2100 (leap years, month ends, DST-free UTC).
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        fc.array(step, { maxLength: 40 }),
        (p, align, limit, t0, steps) => {
          const clock = new ManualClock(t0);
          const q = new Quotas({ plan: { limit, period: p, align }, wallClock: clock });
          const ref = new ReferenceQuota(limit, p, align);
          for (const s of steps) {
            const now = clock.now();
            if (s.kind === 'consume') {
              const d = q.tryConsumeSync('a:alice', Math.min(s.amount, limit));
              const r = ref.consume(now, Math.min(s.amount, limit));
              expect({ allowed: d.allowed, used: d.used, resetsAt: d.resetsAt }).toEqual(r);
              expect(d.remaining).toBe(limit - r.used);
            } else if (s.kind === 'advance') clock.advance(s.ms);
            else if (s.kind === 'reset') {
              q.resetSync('a:alice');
              ref.reset();
            } else {
              const at = ref.resetsAt(now);
              if (at !== null && at + s.offset >= now) {
                clock.advance(at + s.offset - now);
                const used = q.getSync('a:alice').used;
                expect(used === 0).toBe(s.offset >= 0 || ref.used === 0);
              }
            }
            const st = q.getSync('a:alice');
            ref.consume(clock.now(), 0);
            expect(st.used).toBe(ref.used);
            if (ref.used > 0) expect(st.resetsAt).toBe(ref.resetsAt(clock.now()));
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('name concrete calendar instants (UTC month ends, ISO weeks, rolling month clamps)', () => {
    const at = (align: 'utc' | 'rolling', period: PeriodInput, iso: string) => {
      const q = new Quotas({ plan: { limit: 5, period, align }, wallClock: { now: () => Date.parse(iso) } });
      const r = q.tryConsumeSync('k', 1).resetsAt;
      return r === null ? null : new Date(r).toISOString();
    };
    expect(at('utc', 'month', '2028-02-29T23:59:59.999Z')).toBe('2028-03-01T00:00:00.000Z');
    expect(at('utc', 'month', '2026-12-31T10:00:00.000Z')).toBe('2027-01-01T00:00:00.000Z');
    expect(at('utc', 'week', '2026-12-05T08:00:00.000Z')).toBe('2026-12-07T00:00:00.000Z'); // a Saturday → Monday
    expect(at('utc', 'day', '2026-12-05T08:00:00.000Z')).toBe('2026-12-06T00:00:00.000Z');
    expect(at('rolling', 'month', '2026-01-31T10:00:00.000Z')).toBe('2026-02-28T10:00:00.000Z');
    expect(at('rolling', 'month', '2028-01-31T10:00:00.000Z')).toBe('2028-02-29T10:00:00.000Z');
    expect(at('rolling', 'month', '2026-12-15T10:00:00.000Z')).toBe('2027-01-15T10:00:00.000Z');
    expect(at('rolling', 'hour', '2026-12-05T08:17:00.000Z')).toBe('2026-12-05T09:17:00.000Z');
    expect(at('utc', 'never', '2026-12-05T08:17:00.000Z')).toBe(null);
    expect(quotaPlan({ limit: 3 })).toEqual({ limit: 3, period: 'day', everyMs: D, align: 'utc' });
  });
});
