/**
 * AdmissionControl (the concurrency limit in front of the fair queue, for the daemon's
 * executions) on random traces of admits, releases and clock steps: never more running than the
 * limit; a freed slot never idles while someone waits; every caller is either admitted once or
 * rejected once with a typed QueueDropError; waiters are admitted in the order the queue model
 * (strict priority, DRR) gives — checked by replaying the same trace into a bare PriorityFairQueue.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AdmissionControl } from '../src/qos/backpressure/index.js';
import { ManualClock } from '../src/qos/clock.js';
import { PRIORITIES, PriorityFairQueue, QueueDropError } from '../src/qos/queues/index.js';

const flush = () => new Promise<void>((r) => setImmediate(r));

describe('AdmissionControl', () => {
  it('keeps in flight ≤ limit, fills freed slots, settles every caller once, in queue order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.array(
          fc.oneof(
            {
              weight: 4,
              arbitrary: fc.record({
                kind: fc.constant('admit' as const),
                actor: fc.integer({ min: 0, max: 3 }),
                priority: fc.constantFrom(...PRIORITIES),
                ttl: fc.option(fc.integer({ min: 0, max: 30 }), { freq: 2 }),
              }),
            },
            { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), ok: fc.boolean() }) },
            {
              weight: 2,
              arbitrary: fc.record({
                kind: fc.constant('advance' as const),
                ms: fc.integer({ min: 0, max: 10 }),
              }),
            },
          ),
          { minLength: 20, maxLength: 150 },
        ),
        async (limit, ops) => {
          const clock = new ManualClock(0);
          const classes = { medium: { maxSize: 6, maxPerActor: 3, codel: { targetMs: 5, intervalMs: 15 } } };
          const admission = new AdmissionControl(clock, limit, { classes });
          // The same queue, fed the same waiters: the order admission must follow.
          const model = new PriorityFairQueue<number>(clock, { classes, onDrop: () => {} });
          const fate: string[] = [];
          const admittedOrder: number[] = [];
          let running = 0;
          const modelOrder: number[] = [];
          for (const o of ops) {
            if (o.kind === 'advance') clock.advance(o.ms);
            else if (o.kind === 'admit') {
              const id = fate.length;
              fate.push('pending');
              const options = {
                priority: o.priority,
                ...(o.ttl === null ? {} : { deadline: clock.now() + o.ttl }),
              };
              const direct = admission.queued === 0 && admission.inFlight < limit;
              if (!direct) {
                try {
                  model.enqueue(id, { actor: String(o.actor), ...options });
                } catch {}
              }
              admission.admit(String(o.actor), options).then(
                () => {
                  expect(fate[id]).toBe('pending');
                  fate[id] = 'admitted';
                  admittedOrder.push(id);
                  running++;
                },
                (e) => {
                  expect(e).toBeInstanceOf(QueueDropError);
                  expect(fate[id]).toBe('pending');
                  fate[id] = e.reason;
                },
              );
              if (direct) modelOrder.push(id);
            } else if (running > 0) {
              running--;
              const freeSlots = limit - admission.inFlight + 1; // after this release, before waiters
              admission.release(1, o.ok);
              for (let free = freeSlots; free > 0; free--) {
                const next = model.dequeue();
                if (next === undefined) break;
                modelOrder.push(next);
              }
            }
            await flush();
            expect(running).toBe(admission.inFlight);
            expect(running).toBeLessThanOrEqual(limit);
            if (admission.queued > 0) expect(running).toBe(limit);
          }
          expect(admittedOrder).toEqual(modelOrder);
          admission.close();
          await flush();
          expect(fate.filter((f) => f === 'pending')).toEqual([]);
          await expect(admission.admit('late')).rejects.toMatchObject({ reason: 'closed' });
        },
      ),
      { numRuns: 150 },
    );
  });
});
