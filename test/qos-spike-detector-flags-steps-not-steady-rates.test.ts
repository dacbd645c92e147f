/**
 * The spike detector flags a step change within the stated number of intervals and never a
 * steady rate; forgetting idle actors never changes an answer. Time is a ManualClock; requests
 * are spread evenly over each interval.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AbuseDetector,
  SPIKE_DETECTED,
  type SpikeDetectedEvent,
  SpikeDetector,
} from '../src/qos/abuse/index.js';
import { ManualClock } from '../src/qos/clock.js';

const INTERVAL = 1000;

/** Drive `count` requests evenly over the interval starting at clock.now(); flags seen. */
function interval(d: SpikeDetector, clock: ManualClock, actor: string, count: number): number[] {
  const flags: number[] = [];
  const start = clock.now();
  for (let j = 0; j < count; j++) {
    const at = start + Math.floor((j * INTERVAL) / count);
    clock.advance(at - clock.now());
    if (d.record(actor)) flags.push(j + 1);
  }
  clock.advance(start + INTERVAL - clock.now());
  return flags;
}

describe('the spike detector', () => {
  it('never flags a steady rate once it has a baseline, nor one below spikeFactor × minBaseline at all', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 400 }),
        fc.integer({ min: 1, max: 20 }),
        fc.double({ min: 1.05, max: 8, noNaN: true }),
        fc.integer({ min: 1, max: 50 }),
        (rate, w, factor, minBaseline) => {
          const clock = new ManualClock(0);
          const d = new SpikeDetector({
            clock,
            intervalMs: INTERVAL,
            baselineIntervals: w,
            spikeFactor: factor,
            minBaseline,
          });
          const flagsDuringWarmup: number[] = [];
          for (let i = 0; i < w; i++) flagsDuringWarmup.push(...interval(d, clock, 'a:x', rate));
          if (rate < factor * minBaseline) expect(flagsDuringWarmup).toEqual([]);
          for (let i = 0; i < 3 * w + 5; i++) expect(interval(d, clock, 'a:x', rate)).toEqual([]);
          expect(d.baseline('a:x')).toBe(rate);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('flags a step at an interval boundary within its first interval, at exactly the threshold-th request', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 0, max: 200 }),
        (r, w, factor, minBaseline, extra) => {
          const clock = new ManualClock(0);
          const d = new SpikeDetector({
            clock,
            intervalMs: INTERVAL,
            baselineIntervals: w,
            spikeFactor: factor,
            minBaseline,
          });
          for (let i = 0; i < w; i++) interval(d, clock, 'a:x', r);
          const threshold = factor * Math.max(r, minBaseline);
          const R = threshold + extra;
          // Flagged once, at the request that reaches the threshold.
          expect(interval(d, clock, 'a:x', R)).toEqual([Math.ceil(threshold)]);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('flags a step in mid-interval within two intervals when R ≥ factor × max(r + (R − r)/W, minBaseline)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        // The condition can hold only when W > spikeFactor (the mixed interval lifts the baseline).
        fc.integer({ min: 4, max: 20 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 999 }),
        fc.integer({ min: 0, max: 300 }),
        (r, w, minBaseline, stepAt, extra) => {
          const factor = 3;
          const clock = new ManualClock(0);
          const d = new SpikeDetector({
            clock,
            intervalMs: INTERVAL,
            baselineIntervals: w,
            spikeFactor: factor,
            minBaseline,
          });
          for (let i = 0; i < w; i++) interval(d, clock, 'a:x', r);
          // Smallest R meeting the stated condition, plus extra.
          let R = factor * Math.max(r, minBaseline);
          while (R < factor * Math.max(r + (R - r) / w, minBaseline)) R++;
          R += extra;
          // The mixed interval: r's pace before stepAt, R's after.
          const before = Math.floor((r * stepAt) / INTERVAL);
          const after = Math.ceil((R * (INTERVAL - stepAt)) / INTERVAL);
          const mixed = interval(d, clock, 'a:x', before + after);
          const next = interval(d, clock, 'a:x', R);
          expect(mixed.length + next.length).toBeGreaterThanOrEqual(1);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('answers the same when idle actors are forgotten as when every actor is kept', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ actor: fc.nat(30), n: fc.integer({ min: 1, max: 40 }), advance: fc.nat(3 * INTERVAL) }),
          {
            maxLength: 400,
          },
        ),
        fc.integer({ min: 1, max: 6 }),
        (steps, w) => {
          const c1 = new ManualClock(0);
          const c2 = new ManualClock(0);
          const options = { intervalMs: INTERVAL, baselineIntervals: w, spikeFactor: 3, minBaseline: 5 };
          const forgetful = new SpikeDetector({ ...options, clock: c1, sweepPerInsert: 8 });
          const keeper = new SpikeDetector({ ...options, clock: c2, sweepPerInsert: 0 });
          for (const s of steps) {
            c1.advance(s.advance);
            c2.advance(s.advance);
            expect(forgetful.record(`a:${s.actor}`, s.n)).toEqual(keeper.record(`a:${s.actor}`, s.n));
          }
          expect(forgetful.actors).toBeLessThanOrEqual(keeper.actors);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('turns a spike into a qos.spike_detected event and a violation of kind spike', () => {
    const clock = new ManualClock(0);
    const abuse = new AbuseDetector({
      clock,
      spike: { intervalMs: INTERVAL, baselineIntervals: 5, spikeFactor: 4, minBaseline: 10 },
    });
    const spikes: SpikeDetectedEvent[] = [];
    abuse.on(SPIKE_DETECTED, (e) => spikes.push(e));
    for (let i = 0; i < 5 * 10; i++) {
      abuse.request('uid:1000');
      clock.advance(100); // 10 per interval: steady
    }
    expect(spikes).toEqual([]);
    for (let i = 0; i < 40; i++) abuse.request('uid:1000');
    expect(spikes).toEqual([
      {
        name: 'qos.spike_detected',
        actor: 'uid:1000',
        count: 40,
        baseline: 10,
        threshold: 40,
        intervalMs: INTERVAL,
      },
    ]);
    expect(abuse.violationTracker.violations('uid:1000').map((v) => v.kind)).toEqual(['spike']);
  });
});
