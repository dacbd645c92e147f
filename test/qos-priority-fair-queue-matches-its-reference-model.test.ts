/**
 * The execution queue (strict priority over DRR fair queues, bounds, deadlines, CoDel) against
 * the plain reference model of test/helpers/qos-queue-reference.ts on random traces: every
 * enqueue outcome, every item served (which and when), every drop (which, in order, and why),
 * every depth and DRR deficit agree, with a ManualClock driving both.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/qos/clock.js';
import { PRIORITIES, type Priority, PriorityFairQueue, QueueDropError } from '../src/qos/queues/index.js';
import {
  REF_PRIORITIES,
  type RefClassConfig,
  type RefDrop,
  RefPriorityFairQueue,
} from './helpers/qos-queue-reference.js';

const ACTORS = ['a', 'b', 'c', 'd', 'e'];
const WEIGHTS: Record<string, number> = { a: 1, b: 2, c: 3, d: 1.5, e: 4 };
const weight = (actor: string) => WEIGHTS[actor]!;

const classConfig = fc.record({
  maxSize: fc.integer({ min: 0, max: 16 }),
  maxPerActor: fc.integer({ min: 1, max: 12 }),
  codel: fc.oneof(
    fc.constant(false as const),
    fc.record({ targetMs: fc.integer({ min: 1, max: 10 }), intervalMs: fc.integer({ min: 1, max: 40 }) }),
  ),
});

type Op =
  | { kind: 'enqueue'; actor: string; priority: Priority; cost: number; ttl: number | null }
  | { kind: 'advance'; ms: number }
  | { kind: 'dequeue' };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('enqueue' as const),
      actor: fc.constantFrom(...ACTORS),
      priority: fc.constantFrom(...PRIORITIES),
      cost: fc.constantFrom(0.25, 0.5, 1, 1.5, 2),
      ttl: fc.option(fc.integer({ min: 0, max: 50 }), { freq: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 15 }) }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('dequeue' as const) }) },
);

describe('PriorityFairQueue', () => {
  it('agrees with the reference model on every outcome, drop and deficit', () => {
    // How often each path ran, over all runs: the property must not pass by never getting there.
    const seen = { served: 0, deadline: 0, 'queue-delay': 0, 'class-full': 0, 'actor-full': 0 };
    fc.assert(
      fc.property(
        fc.tuple(classConfig, classConfig, classConfig, classConfig),
        fc.constantFrom(2, 2.5, 4),
        fc.array(op, { minLength: 50, maxLength: 300 }),
        (configs, quantum, ops) => {
          const clock = new ManualClock(1000);
          const drops: RefDrop[] = [];
          const classes = Object.fromEntries(PRIORITIES.map((p, i) => [p, configs[i]!])) as Record<
            Priority,
            RefClassConfig
          >;
          const q = new PriorityFairQueue<number>(clock, {
            classes,
            quantum,
            maxItemCost: 2,
            weight,
            onDrop: (id, e) => {
              expect(e).toBeInstanceOf(QueueDropError);
              drops.push({ id, reason: e.reason as RefDrop['reason'] });
            },
          });
          const ref = new RefPriorityFairQueue(classes, quantum, weight);
          let id = 0;
          for (const o of ops) {
            if (o.kind === 'advance') clock.advance(o.ms);
            else if (o.kind === 'enqueue') {
              const item = {
                id: id++,
                actor: o.actor,
                cost: o.cost,
                enqueuedAt: clock.now(),
                deadline: o.ttl === null ? Number.POSITIVE_INFINITY : clock.now() + o.ttl,
              };
              const expected = ref.enqueue(o.priority, item);
              let got = 'queued';
              try {
                q.enqueue(item.id, {
                  actor: o.actor,
                  priority: o.priority,
                  cost: o.cost,
                  ...(o.ttl === null ? {} : { deadline: item.deadline }),
                });
              } catch (e) {
                if (!(e instanceof QueueDropError)) throw e;
                expect(e.priority).toBe(o.priority);
                got = e.reason;
              }
              expect(got).toBe(expected);
              if (got !== 'queued') seen[got as 'class-full' | 'actor-full']++;
            } else {
              drops.length = 0;
              const served = q.dequeue();
              const want = ref.dequeue(clock.now());
              expect(served).toBe(want.served?.id);
              expect(drops).toEqual(want.drops);
              if (served !== undefined) seen.served++;
              for (const d of drops) seen[d.reason]++;
            }
            let total = 0;
            for (const p of REF_PRIORITIES) {
              const depth = ref.classes[p].size();
              expect(q.counts(p).depth).toBe(depth);
              total += depth;
              for (const a of ACTORS) {
                expect(q.lengthOf(p, a)).toBe(ref.classes[p].actors.get(a)?.items.length ?? 0);
                expect(q.deficitOf(p, a)).toBe(ref.deficitOf(p, a));
              }
            }
            expect(q.length).toBe(total);
          }
        },
      ),
      { numRuns: 150 },
    );
    for (const [path, n] of Object.entries(seen)) expect(n, path).toBeGreaterThan(0);
  });
});
