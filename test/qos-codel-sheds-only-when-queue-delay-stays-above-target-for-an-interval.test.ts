/**
 * CoDel in the execution queue (one class, one actor: a FIFO) against RFC 8289's pseudocode
 * transcribed over a plain array, on the same random trace of arrivals, clock steps and
 * dequeues: the same items shed at the same dequeues, the same items served.
 * And the law itself, checked from outside on traces with many actors: an item is shed only if
 * its own sojourn is at or above target and every item the class popped over the interval
 * before it (served or shed) had waited at least target too, with more left behind.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/qos/clock.js';
import { PriorityFairQueue } from '../src/qos/queues/index.js';
import { RefCoDel, type RefItem } from './helpers/qos-queue-reference.js';

type Op = { kind: 'arrive'; n: number } | { kind: 'advance'; ms: number } | { kind: 'dequeue'; n: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('arrive' as const), n: fc.integer({ min: 1, max: 6 }) }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 12 }) }),
  fc.record({ kind: fc.constant('dequeue' as const), n: fc.integer({ min: 1, max: 4 }) }),
);

const codelArb = fc.record({
  targetMs: fc.integer({ min: 1, max: 10 }),
  intervalMs: fc.integer({ min: 5, max: 60 }),
});

describe('CoDel shedding', () => {
  it('sheds exactly what the RFC 8289 pseudocode sheds on the same trace', () => {
    let totalShed = 0;
    fc.assert(
      fc.property(codelArb, fc.array(op, { minLength: 50, maxLength: 400 }), (codel, ops) => {
        const clock = new ManualClock(0);
        const shed: number[] = [];
        const q = new PriorityFairQueue<number>(clock, {
          classes: { medium: { maxSize: 1_000_000, codel } },
          onDrop: (id, e) => {
            expect(e.reason).toBe('queue-delay');
            expect(e.code).toBe('QOS_QUEUE_QUEUE_DELAY');
            shed.push(id);
          },
        });
        const ref = new RefCoDel(codel.targetMs, codel.intervalMs);
        const fifo: RefItem[] = [];
        const refShed: number[] = [];
        let id = 0;
        for (const o of ops) {
          if (o.kind === 'advance') clock.advance(o.ms);
          else if (o.kind === 'arrive') {
            for (let i = 0; i < o.n; i++) {
              const item = {
                id: id++,
                actor: 'x',
                cost: 1,
                enqueuedAt: clock.now(),
                deadline: Number.POSITIVE_INFINITY,
              };
              fifo.push(item);
              q.enqueue(item.id, { actor: 'x' });
            }
          } else {
            for (let i = 0; i < o.n; i++) {
              const got = q.dequeue();
              const want = ref.dequeue(
                clock.now(),
                () => fifo.shift(),
                () => fifo.length,
                (p) => refShed.push(p.id),
              );
              expect(got).toBe(want?.id);
              expect(shed).toEqual(refShed);
            }
          }
        }
        totalShed += shed.length;
      }),
      { numRuns: 300 },
    );
    expect(totalShed).toBeGreaterThan(100);
  });

  it('sheds an item only after the queue delay stayed at or above target for a whole interval', () => {
    let totalShed = 0;
    fc.assert(
      fc.property(
        codelArb,
        fc.array(
          fc.oneof(
            fc.record({
              kind: fc.constant('arrive' as const),
              n: fc.integer({ min: 1, max: 6 }),
              actor: fc.integer({ min: 0, max: 4 }),
            }),
            fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 12 }) }),
            fc.record({ kind: fc.constant('dequeue' as const), n: fc.integer({ min: 1, max: 4 }) }),
          ),
          { minLength: 50, maxLength: 400 },
        ),
        (codel, ops) => {
          const clock = new ManualClock(0);
          const enqueuedAt: number[] = [];
          // Every pop of the class in order: when, how long the item had waited, what remained.
          const pops: { at: number; sojourn: number; remaining: number; shed: boolean }[] = [];
          let depth = 0;
          const q = new PriorityFairQueue<number>(clock, {
            classes: { high: { maxSize: 1_000_000, codel } },
            weight: (a) => 1 + Number(a),
            onDrop: (id) => {
              depth--;
              pops.push({
                at: clock.now(),
                sojourn: clock.now() - enqueuedAt[id]!,
                remaining: depth,
                shed: true,
              });
            },
          });
          for (const o of ops) {
            if (o.kind === 'advance') clock.advance(o.ms);
            else if (o.kind === 'arrive') {
              for (let i = 0; i < o.n; i++) {
                enqueuedAt.push(clock.now());
                q.enqueue(enqueuedAt.length - 1, { actor: String(o.actor), priority: 'high' });
                depth++;
              }
            } else {
              for (let i = 0; i < o.n; i++) {
                const got = q.dequeue();
                if (got === undefined) continue;
                depth--;
                pops.push({
                  at: clock.now(),
                  sojourn: clock.now() - enqueuedAt[got]!,
                  remaining: depth,
                  shed: false,
                });
              }
            }
          }
          pops.forEach((p, k) => {
            if (!p.shed) return;
            totalShed++;
            expect(p.sojourn).toBeGreaterThanOrEqual(codel.targetMs);
            // Walk back over the streak of above-target pops with items left behind.
            let j = k;
            while (j > 0 && pops[j - 1]!.sojourn >= codel.targetMs && pops[j - 1]!.remaining > 0) j--;
            expect(p.at - pops[j]!.at).toBeGreaterThanOrEqual(codel.intervalMs);
          });
        },
      ),
      { numRuns: 300 },
    );
    expect(totalShed).toBeGreaterThan(100);
  });

  it('under a standing queue sheds at intervals shrinking as interval / sqrt(count)', () => {
    const clock = new ManualClock(0);
    const shedAt: number[] = [];
    const q = new PriorityFairQueue<number>(clock, {
      classes: { medium: { maxSize: 100_000, codel: { targetMs: 5, intervalMs: 100 } } },
      onDrop: () => shedAt.push(clock.now()),
    });
    // Two arrivals per ms, one dequeue per ms: the delay only grows.
    for (let t = 0; t < 1000; t++) {
      q.enqueue(t, { actor: 'a' });
      q.enqueue(t, { actor: 'a' });
      q.dequeue();
      clock.advance(1);
    }
    // The item popped at t arrived at floor(t/2): first at target (5 ms) at t=9; a whole
    // interval later, at t=109, the first shed.
    expect(shedAt[0]).toBe(109);
    const gaps = shedAt.slice(1, 6).map((t, i) => t - shedAt[i]!);
    // Each gap is ceil(100/sqrt(n)) on this 1 ms grid: 100, 71, 58, 50, 45.
    expect(gaps).toEqual([100, 71, 58, 50, 45]);
  });
});
