/**
 * Issue #10, defect 12: under 5× overload the pipeline shed so expensively (a new error with a
 * captured stack per dropped request, Array#shift of the whole queue, an ISO date and a dead
 * letter per drop, a full queue rebuild per batch) that goodput fell to 2–3 % of capacity.
 * Shedding must be O(1) and allocate nothing per request beyond its own promise: every shed
 * request gets the pipeline's one frozen, typed error. Counts only here; bench/onnx-overload.ts
 * measures goodput.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DroppedError, type Outcome, Pipeline, QueueFullError } from '../src/backends/onnx/pipeline.js';
import { RingQueue } from '../src/backends/onnx/ring-queue.js';
import { fuzzParams } from './helpers/fuzz.js';

/** A handler that completes a batch only when `release()` is called: capacity is counted, not timed. */
function gated() {
  const waiting: (() => void)[] = [];
  const handler = (batch: readonly number[]) =>
    new Promise<readonly Outcome<number>[]>((resolve) =>
      waiting.push(() => resolve(batch.map((x) => ({ ok: true, value: x * 2 })))),
    );
  const release = async (): Promise<number> => {
    const n = waiting.length;
    for (const w of waiting.splice(0)) w();
    // Let the completions and the next dispatch run.
    for (let i = 0; i < 5; i++) await Promise.resolve();
    await new Promise((r) => setImmediate(r));
    return n;
  };
  return { handler, release };
}

describe.each(['reject', 'drop-oldest'] as const)('overflow %s under 5x overload', (overflow) => {
  it('every shed request gets the same frozen typed error; every request settles; the queue stays bounded', async () => {
    const capacity = 16;
    const { handler, release } = gated();
    const p = new Pipeline<number, number>({
      maxBatchSize: 4,
      maxQueueDelayMs: 0,
      concurrency: 2,
      queueCapacity: capacity,
      overflow,
      dlqCapacity: 10,
      handler,
    });
    const outcomes: Promise<{ ok: boolean; value?: number; error?: unknown }>[] = [];
    let maxDepth = 0;
    let released = 0;
    // Each round: 5x what one release serves (2 batches of 4) is offered, then one release.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 40; i++) {
        const x = round * 40 + i;
        outcomes.push(
          p.submit(x, { correlationId: `r${x}` }).then(
            (value) => ({ ok: true, value }),
            (error: unknown) => ({ ok: false, error }),
          ),
        );
        maxDepth = Math.max(maxDepth, p.queueDepth);
      }
      released += await release();
    }
    for (let n = await release(); n > 0; n = await release()) released += n;
    await p.drain();
    const settled = await Promise.all(outcomes);
    const shed = settled.filter((s) => !s.ok).map((s) => s.error);
    const m = p.metrics();

    expect(maxDepth).toBeLessThanOrEqual(capacity);
    expect(settled).toHaveLength(2000);
    expect(m.submitted).toBe(2000);
    expect(m.completed + shed.length).toBe(2000);
    expect(m.completed).toBeGreaterThan(0);
    expect(m.batches).toBe(released);
    expect(shed.length).toBeGreaterThan(1000);
    // One error object for all of them: nothing is constructed per shed request.
    const first = shed[0];
    expect(first).toBeInstanceOf(overflow === 'reject' ? QueueFullError : DroppedError);
    expect(Object.isFrozen(first)).toBe(true);
    expect(shed.every((e) => e === first)).toBe(true);
    expect((first as { code: string }).code).toBe(overflow === 'reject' ? 'QUEUE_FULL' : 'DROPPED');
    // Completed requests answered their own value.
    for (const [i, s] of settled.entries()) if (s.ok) expect(s.value).toBe(i * 2);
    if (overflow === 'drop-oldest') {
      expect(m.dropped).toBe(shed.length);
      // The dead-letter queue keeps the newest dlqCapacity letters, formatted when read.
      const dlq = p.deadLetters();
      expect(dlq).toHaveLength(10);
      expect(m.deadLettered).toBe(shed.length);
      for (const d of dlq) {
        expect(d.correlationId).toBe(`r${d.request}`);
        expect(d.reason).toBe('dropped');
        expect(d.error).toEqual({ code: 'DROPPED', message: (first as Error).message });
        expect(new Date(d.at).toISOString()).toBe(d.at);
      }
      expect(p.drainDeadLetters()).toHaveLength(10);
      expect(p.deadLetters()).toHaveLength(0);
    } else {
      expect(m.rejected).toBe(shed.length);
      expect(m.deadLettered).toBe(0);
    }
  });
});

describe('RingQueue (the pipeline queue and DLQ)', () => {
  type Op = { op: 'push'; v: number } | { op: 'shift' } | { op: 'take'; mod: number; max: number };
  const ops = fc.array(
    fc.oneof(
      fc.record({ op: fc.constant('push' as const), v: fc.integer({ min: 0, max: 9 }) }),
      fc.record({ op: fc.constant('shift' as const) }),
      fc.record({
        op: fc.constant('take' as const),
        mod: fc.integer({ min: 1, max: 3 }),
        max: fc.integer({ min: 1, max: 6 }),
      }),
    ),
    { maxLength: 200 },
  );

  it('behaves like an array FIFO under any sequence of push, shift and takeWhere', () => {
    fc.assert(
      fc.property(ops, (seq: Op[]) => {
        const q = new RingQueue<number>(2);
        let model: number[] = [];
        for (const o of seq) {
          if (o.op === 'push') {
            q.push(o.v);
            model.push(o.v);
          } else if (o.op === 'shift') {
            expect(q.shift()).toBe(model.shift());
          } else {
            const take = (v: number) => v % o.mod === 0;
            const taken: number[] = [];
            const rest: number[] = [];
            for (const v of model) (taken.length < o.max && take(v) ? taken : rest).push(v);
            expect(q.takeWhere(take, o.max)).toEqual(taken);
            model = rest;
          }
          expect(q.length).toBe(model.length);
          expect(q.toArray()).toEqual(model);
          expect(q.at(0)).toBe(model[0]);
        }
      }),
      fuzzParams(300),
    );
  });
});
