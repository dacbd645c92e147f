/**
 * Adaptive concurrency limits: for any sequence of samples the limit stays within
 * [minLimit, maxLimit]; AIMD equals its two-line definition sample by sample; latency rising
 * (past AIMD's timeout, or past the gradient's tolerance × its long average) lowers the limit;
 * the limiter never lets more than `limit` calls in at once and announces every change.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AimdLimit, ConcurrencyLimiter, GradientLimit } from '../src/qos/backpressure/index.js';
import { QosConfigError } from '../src/qos/queues/index.js';

const bounds = fc
  .tuple(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 200 }))
  .map(([min, span, at]) => ({
    minLimit: min,
    maxLimit: min + span,
    initialLimit: min + Math.min(span, at),
  }));

const sample = fc.record({
  latencyMs: fc.double({ min: 0, max: 10_000, noNaN: true }),
  inFlight: fc.integer({ min: 0, max: 300 }),
  dropped: fc.boolean(),
});

describe('adaptive concurrency limits', () => {
  it('AIMD is its definition, sample by sample, and stays within bounds', () => {
    fc.assert(
      fc.property(
        bounds,
        fc.constantFrom(0.5, 0.75, 0.9),
        fc.array(sample, { maxLength: 300 }),
        (b, backoffRatio, samples) => {
          const aimd = new AimdLimit({ ...b, backoffRatio, timeoutMs: 5000 });
          let want = b.initialLimit;
          for (const s of samples) {
            if (s.dropped || s.latencyMs > 5000) want = Math.floor(want * backoffRatio);
            else if (s.inFlight * 2 >= want) want += 1;
            want = Math.min(b.maxLimit, Math.max(b.minLimit, want));
            expect(aimd.update(s)).toBe(want);
            expect(aimd.limit).toBe(want);
            expect(want).toBeGreaterThanOrEqual(b.minLimit);
            expect(want).toBeLessThanOrEqual(b.maxLimit);
          }
        },
      ),
    );
  });

  it('AIMD lowers the limit at every call slower than its timeout (until minLimit)', () => {
    fc.assert(
      fc.property(bounds, fc.double({ min: 5000.001, max: 1e6, noNaN: true }), (b, latencyMs) => {
        const aimd = new AimdLimit({ ...b, timeoutMs: 5000 });
        let before = aimd.limit;
        for (let i = 0; i < 50; i++) {
          const after = aimd.update({ latencyMs, inFlight: before, dropped: false });
          if (before > b.minLimit) expect(after).toBeLessThan(before);
          else expect(after).toBe(b.minLimit);
          before = after;
        }
      }),
    );
  });

  it('the gradient limit stays within bounds for any samples', () => {
    fc.assert(
      fc.property(bounds, fc.array(sample, { maxLength: 500 }), (b, samples) => {
        const g = new GradientLimit(b);
        for (const s of samples) {
          const l = g.update(s);
          expect(Number.isInteger(l)).toBe(true);
          expect(l).toBeGreaterThanOrEqual(b.minLimit);
          expect(l).toBeLessThanOrEqual(b.maxLimit);
        }
      }),
    );
  });

  it('the gradient limit decreases while latency stays above tolerance × its long-term average', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.1, max: 1000, noNaN: true }),
        fc.double({ min: 3.01, max: 100, noNaN: true }),
        fc.integer({ min: 20, max: 500 }),
        (baseMs, rise, maxLimit) => {
          const g = new GradientLimit({ minLimit: 1, maxLimit, initialLimit: 10 });
          // Steady load at the base latency, the limit fully used: it grows to its ceiling or near.
          for (let i = 0; i < 300; i++) g.update({ latencyMs: baseMs, inFlight: g.limit, dropped: false });
          const steady = g.limit;
          expect(steady).toBeGreaterThan(10);
          // Latency jumps past tolerance (1.5) × its average: the estimate falls at each sample
          // (gradient near its floor 0.5: next ≈ 0.9 × estimate + 0.8) toward ~10; the limit
          // is its floor, so it never rises and halves within 30 samples.
          let before = steady;
          for (let i = 0; i < 30; i++) {
            const after = g.update({ latencyMs: baseMs * rise, inFlight: before, dropped: false });
            expect(after).toBeLessThanOrEqual(before);
            before = after;
          }
          expect(before).toBeLessThan(steady);
          expect(before).toBeLessThanOrEqual(Math.max(11, steady / 2));
        },
      ),
    );
  });

  it('the limiter admits at most `limit` at once and announces each change of the limit', () => {
    fc.assert(
      fc.property(
        bounds,
        fc.array(
          fc.oneof(
            fc.constant('acquire' as const),
            fc.record({ latencyMs: fc.integer({ min: 0, max: 9000 }), ok: fc.boolean() }),
          ),
          {
            maxLength: 400,
          },
        ),
        (b, ops) => {
          const limiter = new ConcurrencyLimiter(new AimdLimit({ ...b, timeoutMs: 5000 }));
          const changes: [number, number][] = [];
          limiter.subscribe((l, prev) => changes.push([prev, l]));
          let inFlight = 0;
          let limit = limiter.limit;
          for (const o of ops) {
            if (o === 'acquire') {
              const ok = limiter.tryAcquire();
              expect(ok).toBe(inFlight < limiter.limit);
              if (ok) inFlight++;
            } else if (inFlight > 0) {
              limiter.release(o.latencyMs, o.ok);
              inFlight--;
              if (limiter.limit !== limit) {
                expect(changes.at(-1)).toEqual([limit, limiter.limit]);
                limit = limiter.limit;
              }
            }
            expect(limiter.inFlight).toBe(inFlight);
            expect(limiter.limit).toBeGreaterThanOrEqual(b.minLimit);
            expect(limiter.limit).toBeLessThanOrEqual(b.maxLimit);
          }
        },
      ),
    );
  });

  it('refuses bad options with typed errors naming the field', () => {
    expect(() => new AimdLimit({ minLimit: 0 })).toThrow(QosConfigError);
    expect(() => new AimdLimit({ minLimit: 5, maxLimit: 4 })).toThrow('maxLimit');
    expect(() => new AimdLimit({ minLimit: 5, maxLimit: 10, initialLimit: 11 })).toThrow('initialLimit');
    expect(() => new AimdLimit({ backoffRatio: 1 })).toThrow('backoffRatio');
    expect(() => new GradientLimit({ tolerance: 0.5 })).toThrow('tolerance');
    expect(() => new GradientLimit({ smoothing: 0 })).toThrow('smoothing');
  });
});
