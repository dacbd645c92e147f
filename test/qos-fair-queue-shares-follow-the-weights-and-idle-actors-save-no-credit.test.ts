/**
 * Deficit round robin's guarantees, stated and checked on long runs:
 * - While actors stay backlogged from the same start, served_i / w_i and served_j / w_j never
 *   differ by quantum + maxItemCost / min(w_i, w_j) or more (checked after every dequeue), so
 *   over n dequeues the shares converge to the weights (error O(1/n)).
 * - An actor with nothing queued holds no credit (deficit 0), and a backlogged actor's deficit
 *   stays below weight × quantum + maxItemCost, whatever the idle/busy pattern.
 * Costs and weights are multiples of 1/4 so the sums are exact in binary floating point.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FairQueue } from '../src/qos/queues/index.js';

const never = () => {
  throw new Error('no item has a deadline here');
};

describe('FairQueue (DRR)', () => {
  it('keeps backlogged actors within the stated bound of their weighted shares', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.integer({ min: 4, max: 40 }).map((q) => q / 4),
          { minLength: 2, maxLength: 8 },
        ), // weights 1..10
        fc.constantFrom(1, 2, 3),
        fc.constantFrom(1, 2),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (weights, maxItemCost, quantumOverCost, seed) => {
          const quantum = maxItemCost * quantumOverCost;
          const actors = weights.map((_, i) => `actor-${i}`);
          const w = new Map(actors.map((a, i) => [a, weights[i]!]));
          const q = new FairQueue<number>({ quantum, maxItemCost, weight: (a) => w.get(a)! });
          const dequeues = 2000;
          // Every actor holds more than it can be served in the run: all stay backlogged.
          let rand = seed;
          const nextCost = () => {
            rand = (rand * 1103515245 + 12345) % 2 ** 31;
            return 0.25 * (1 + (rand % (4 * maxItemCost)));
          };
          for (let k = 0; k < dequeues; k++)
            for (const a of actors) q.push(k, a, nextCost(), Number.POSITIVE_INFINITY, 0);
          const served = new Map(actors.map((a) => [a, 0]));
          const minW = Math.min(...weights);
          for (let k = 0; k < dequeues; k++) {
            const item = q.pop(0, never)!;
            served.set(item.actor, served.get(item.actor)! + item.cost);
            const norm = actors.map((a) => served.get(a)! / w.get(a)!);
            const spread = Math.max(...norm) - Math.min(...norm);
            // The bound for the pair with the smallest weight bounds every pair.
            expect(spread).toBeLessThan(quantum + maxItemCost / minW);
          }
          // Shares over the run: each within the bound divided by the normalized service.
          const total = [...served.values()].reduce((x, y) => x + y, 0);
          const wTotal = weights.reduce((x, y) => x + y, 0);
          for (const a of actors) {
            const share = served.get(a)! / total;
            const want = w.get(a)! / wTotal;
            expect(Math.abs(share - want)).toBeLessThan(
              ((quantum + maxItemCost / minW) * wTotal) / total + 1e-9,
            );
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('gives an idle actor no credit and bounds every deficit', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('push' as const),
        actor: fc.integer({ min: 0, max: 5 }),
        cost: fc.integer({ min: 1, max: 8 }),
      }),
      fc.record({ kind: fc.constant('pop' as const) }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 4, max: 24 }), { minLength: 6, maxLength: 6 }),
        fc.array(op, { minLength: 50, maxLength: 500 }),
        (weights4, ops) => {
          const maxItemCost = 2;
          const quantum = 2;
          const weight = (a: string) => weights4[Number(a)]! / 4;
          const q = new FairQueue<number>({ quantum, maxItemCost, weight });
          for (const o of ops) {
            if (o.kind === 'push') q.push(0, String(o.actor), o.cost / 4, Number.POSITIVE_INFINITY, 0);
            else q.pop(0, never);
            for (let a = 0; a < 6; a++) {
              const actor = String(a);
              const d = q.deficitOf(actor);
              if (q.lengthOf(actor) === 0) expect(d).toBe(0);
              expect(d).toBeGreaterThanOrEqual(0);
              expect(d).toBeLessThan(weight(actor) * quantum + maxItemCost);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('lets an actor that was alone build no lead over one that arrives later', () => {
    // b was idle while a was served for a long time: b comes back with no saved credit.
    const q = new FairQueue<string>({ quantum: 1, maxItemCost: 1, weight: () => 1 });
    for (let i = 0; i < 1000; i++) q.push('a', 'a', 1, Number.POSITIVE_INFINITY, 0);
    for (let i = 0; i < 500; i++) q.pop(0, never);
    for (let i = 0; i < 100; i++) q.push('b', 'b', 1, Number.POSITIVE_INFINITY, 0);
    const order = Array.from({ length: 20 }, () => q.pop(0, never)!.value).join('');
    // a's turn was over when b arrived, so b goes first; then strict alternation, no catching up for a.
    expect(order).toBe('ba'.repeat(10));
  });
});
