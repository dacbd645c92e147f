/**
 * Laws of the execution queue checked from outside on random traces with many actors, all four
 * classes, deadlines and CoDel on:
 * - strict priority: an item of a class is served only when every higher class is empty after
 *   that dequeue (items above it were served earlier or dropped on the way);
 * - deadlines: a served item's deadline is always in the future (now < deadline);
 * - bounds: a class never holds more than maxSize items, an actor never more than maxPerActor;
 * - conservation: every item queued is served once, dropped once with a typed reason, or still queued;
 *   the counters say the same.
 * And bad options are typed errors naming the field path.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/qos/clock.js';
import {
  PRIORITIES,
  type Priority,
  PriorityFairQueue,
  QosConfigError,
  QueueDropError,
} from '../src/qos/queues/index.js';

const rank = (p: Priority) => PRIORITIES.indexOf(p);

describe('PriorityFairQueue laws', () => {
  it('serves by strict priority, never past a deadline, within bounds, and accounts for every item', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 8 }),
        fc.array(
          fc.oneof(
            {
              weight: 6,
              arbitrary: fc.record({
                kind: fc.constant('enqueue' as const),
                actor: fc.integer({ min: 0, max: 9 }),
                priority: fc.constantFrom(...PRIORITIES),
                ttl: fc.option(fc.integer({ min: 0, max: 50 }), { freq: 3 }),
              }),
            },
            {
              weight: 3,
              arbitrary: fc.record({
                kind: fc.constant('advance' as const),
                ms: fc.integer({ min: 0, max: 10 }),
              }),
            },
            { weight: 4, arbitrary: fc.record({ kind: fc.constant('dequeue' as const) }) },
          ),
          { minLength: 50, maxLength: 400 },
        ),
        (maxSize, maxPerActor, ops) => {
          const clock = new ManualClock(0);
          const items: { priority: Priority; deadline: number; actor: string; fate: string }[] = [];
          const cls = { maxSize, maxPerActor, codel: { targetMs: 5, intervalMs: 20 } };
          const q = new PriorityFairQueue<number>(clock, {
            classes: { critical: cls, high: cls, medium: cls, low: cls },
            weight: (a) => 1 + (Number(a) % 3),
            onDrop: (id, e) => {
              expect(items[id]!.fate).toBe('queued');
              expect(e.priority).toBe(items[id]!.priority);
              expect(e.actor).toBe(items[id]!.actor);
              if (e.reason === 'deadline') expect(clock.now()).toBeGreaterThanOrEqual(items[id]!.deadline);
              items[id]!.fate = e.reason;
            },
          });
          for (const o of ops) {
            if (o.kind === 'advance') clock.advance(o.ms);
            else if (o.kind === 'enqueue') {
              const id = items.length;
              const deadline = o.ttl === null ? Number.POSITIVE_INFINITY : clock.now() + o.ttl;
              const actor = String(o.actor);
              items.push({ priority: o.priority, deadline, actor, fate: 'queued' });
              try {
                q.enqueue(id, { actor, priority: o.priority, deadline });
              } catch (e) {
                expect(e).toBeInstanceOf(QueueDropError);
                const reason = (e as QueueDropError).reason;
                if (reason === 'class-full') expect(q.counts(o.priority).depth).toBe(maxSize);
                else expect(q.lengthOf(o.priority, actor)).toBe(maxPerActor);
                items[id]!.fate = reason;
              }
            } else {
              const id = q.dequeue();
              if (id !== undefined) {
                const it = items[id]!;
                expect(it.fate).toBe('queued');
                it.fate = 'served';
                expect(clock.now()).toBeLessThan(it.deadline);
                for (const p of PRIORITIES)
                  if (rank(p) < rank(it.priority)) expect(q.counts(p).depth).toBe(0);
              } else expect(q.length).toBe(0);
            }
            for (const p of PRIORITIES) {
              expect(q.counts(p).depth).toBeLessThanOrEqual(maxSize);
              for (let a = 0; a < 10; a++) expect(q.lengthOf(p, String(a))).toBeLessThanOrEqual(maxPerActor);
            }
          }
          for (const p of PRIORITIES) {
            const mine = items.filter((x) => x.priority === p);
            const count = (fate: string) => mine.filter((x) => x.fate === fate).length;
            const c = q.counts(p);
            expect(c.depth).toBe(count('queued'));
            expect(c.dequeued).toBe(count('served'));
            expect(c.expired).toBe(count('deadline'));
            expect(c.shed).toBe(count('queue-delay'));
            expect(c.refusedClassFull).toBe(count('class-full'));
            expect(c.refusedActorFull).toBe(count('actor-full'));
            expect(c.enqueued).toBe(mine.length - c.refusedClassFull - c.refusedActorFull);
          }
          q.close();
          expect(items.filter((x) => x.fate === 'queued')).toEqual([]);
          expect(q.length).toBe(0);
          expect(() => q.enqueue(0, { actor: '0' })).toThrow(QueueDropError);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('stays counted when onDrop enqueues (a dropped item retried at a lower priority)', () => {
    const clock = new ManualClock(0);
    const served: string[] = [];
    const q: PriorityFairQueue<string> = new PriorityFairQueue<string>(clock, {
      classes: { high: { codel: false }, low: { codel: false } },
      onDrop: (v, e) => {
        if (e.reason === 'deadline') q.enqueue(`${v}-retry`, { actor: e.actor, priority: 'low' });
      },
    });
    for (let i = 0; i < 5; i++)
      q.enqueue(`h${i}`, { actor: `a${i % 2}`, priority: 'high', deadline: i < 3 ? 10 : 100 });
    clock.advance(10);
    for (let v = q.dequeue(); v !== undefined; v = q.dequeue()) {
      served.push(v);
      expect(q.length).toBe(q.counts('high').depth + q.counts('low').depth);
    }
    expect(served.sort()).toEqual(['h0-retry', 'h1-retry', 'h2-retry', 'h3', 'h4']);
    expect(q.length).toBe(0);
    expect(q.counts('high')).toMatchObject({ depth: 0, expired: 3, dequeued: 2 });
    expect(q.counts('low')).toMatchObject({ depth: 0, enqueued: 3, dequeued: 3 });
  });

  it('refuses bad options with typed errors naming the field path', () => {
    const clock = new ManualClock();
    const bad: [object, string][] = [
      [{ classes: { high: { maxSize: -1 } } }, 'classes.high.maxSize'],
      [{ classes: { low: { maxSize: 4, maxPerActor: 1.5 } } }, 'classes.low.maxPerActor'],
      [
        { classes: { critical: { codel: { targetMs: 0, intervalMs: 100 } } } },
        'classes.critical.codel.targetMs',
      ],
      [
        { classes: { medium: { codel: { targetMs: 5, intervalMs: Number.NaN } } } },
        'classes.medium.codel.intervalMs',
      ],
      [{ quantum: 0.5, maxItemCost: 1 }, 'quantum'],
      [{ maxItemCost: 0 }, 'maxItemCost'],
    ];
    for (const [options, path] of bad) {
      let error: unknown;
      try {
        new PriorityFairQueue(clock, options);
      } catch (e) {
        error = e;
      }
      expect(error, path).toBeInstanceOf(QosConfigError);
      expect((error as QosConfigError).path).toBe(path);
      expect((error as QosConfigError).message).toContain(path);
    }
    const q = new PriorityFairQueue<number>(clock, { weight: (a) => (a === 'light' ? 0.5 : 1) });
    expect(() => q.enqueue(1, { actor: 'x', cost: 2 })).toThrow(QosConfigError);
    expect(() => q.enqueue(1, { actor: 'x', priority: 'urgent' as Priority })).toThrow(/priority/);
    expect(() => q.enqueue(1, { actor: 'light' })).toThrow(/weight\("light"\)/);
    expect(q.length).toBe(0);
  });
});
