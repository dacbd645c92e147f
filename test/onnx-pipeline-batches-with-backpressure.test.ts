import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import type { OnnxBackend } from '../src/backends/onnx/backend.js';
import { ONNX_ENTRY } from '../src/backends/onnx/backend.js';
import { type Outcome, PIPELINE_EVENTS, Pipeline } from '../src/backends/onnx/pipeline.js';
import { createOnnxPipeline } from '../src/backends/onnx/pipeline-onnx.js';
import { ThunderpacError } from '../src/runtime/errors.js';
import { Thunderpac } from '../src/thunderpac.js';
import { floatTensor, maxAbsDiff, onnxSandbox, registry } from './onnx-helpers.js';

const reg = registry();
let tp: Thunderpac | undefined;
afterEach(async () => {
  await tp?.close();
  tp = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pipeline over a fake handler that takes `ms` per batch and fails requests equal to -1. */
function fake(opts: Partial<ConstructorParameters<typeof Pipeline<number, number>>[0]> = {}, ms = 20) {
  const batches: number[][] = [];
  const p = new Pipeline<number, number>({
    maxBatchSize: 4,
    maxQueueDelayMs: 5,
    concurrency: 1,
    queueCapacity: 8,
    overflow: 'reject',
    handler: async (batch) => {
      batches.push([...batch]);
      await sleep(ms);
      return batch.map(
        (x): Outcome<number> =>
          x === -1
            ? { ok: false, error: new ThunderpacError('BAD', 'bad request') }
            : { ok: true, value: x * 2 },
      );
    },
    ...opts,
  });
  return { p, batches };
}

describe('pipeline', () => {
  it('batches up to maxBatchSize, or what arrived within maxQueueDelayMs', async () => {
    const { p, batches } = fake();
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((x) => p.submit(x)));
    expect(results).toEqual([2, 4, 6, 8, 10, 12]);
    expect(batches).toEqual([
      [1, 2, 3, 4],
      [5, 6],
    ]);
    const m = p.metrics();
    expect(m).toMatchObject({ submitted: 6, completed: 6, batches: 2, maxBatchSize: 4, dlqRate: 0 });
    expect(m.latency.count).toBe(6);
  });

  it('rejects beyond queueCapacity (QUEUE_FULL) and never holds more than that', async () => {
    const { p } = fake({ queueCapacity: 3, maxBatchSize: 1, maxQueueDelayMs: 0 });
    const settled = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => p.submit(i)));
    const rejected = settled.filter((s) => s.status === 'rejected');
    // One in flight right away, three queued, the rest refused.
    expect(rejected).toHaveLength(6);
    expect((rejected[0] as PromiseRejectedResult).reason.code).toBe('QUEUE_FULL');
    expect(p.metrics()).toMatchObject({ rejected: 6, completed: 4, maxQueueDepth: 3 });
  });

  it('drop-oldest dead-letters the oldest queued request with its correlation id', async () => {
    const dropped: unknown[] = [];
    const onDrop = (m: unknown) => dropped.push(m);
    subscribe(PIPELINE_EVENTS.dropped, onDrop);
    try {
      const { p } = fake({ queueCapacity: 2, maxBatchSize: 1, maxQueueDelayMs: 0, overflow: 'drop-oldest' });
      const settled = await Promise.allSettled(
        [10, 11, 12, 13, 14].map((x) => p.submit(x, { correlationId: `c${x}`, causationId: 'test' })),
      );
      expect(settled.map((s) => s.status)).toEqual([
        'fulfilled',
        'rejected',
        'rejected',
        'fulfilled',
        'fulfilled',
      ]);
      const dlq = p.deadLetters();
      expect(dlq.map((d) => [d.request, d.correlationId, d.reason, d.error.code])).toEqual([
        [11, 'c11', 'dropped', 'DROPPED'],
        [12, 'c12', 'dropped', 'DROPPED'],
      ]);
      expect(dropped).toEqual([
        { correlationId: 'c11', causationId: 'test' },
        { correlationId: 'c12', causationId: 'test' },
      ]);
      expect(p.metrics().dlqRate).toBeCloseTo(2 / 5);
    } finally {
      unsubscribe(PIPELINE_EVENTS.dropped, onDrop);
    }
  });

  it('failures go to the DLQ with request, error and ids, and publish events', async () => {
    const events: [string, unknown][] = [];
    const on = {
      completed: (m: unknown) => events.push(['completed', m]),
      failed: (m: unknown) => events.push(['failed', m]),
    };
    subscribe(PIPELINE_EVENTS.completed, on.completed);
    subscribe(PIPELINE_EVENTS.failed, on.failed);
    try {
      const { p } = fake();
      const settled = await Promise.allSettled([
        p.submit(1, { correlationId: 'a' }),
        p.submit(-1, { correlationId: 'b', causationId: 'parent-b' }),
      ]);
      expect(settled[0]).toEqual({ status: 'fulfilled', value: 2 });
      expect(settled[1]!.status).toBe('rejected');
      expect(p.deadLetters()).toMatchObject([
        {
          request: -1,
          correlationId: 'b',
          causationId: 'parent-b',
          reason: 'failed',
          error: { code: 'BAD' },
        },
      ]);
      expect(events.map(([k, m]) => [k, (m as { correlationId: string }).correlationId])).toEqual([
        ['completed', 'a'],
        ['failed', 'b'],
      ]);
    } finally {
      unsubscribe(PIPELINE_EVENTS.completed, on.completed);
      unsubscribe(PIPELINE_EVENTS.failed, on.failed);
    }
  });

  it('drain sends what is queued at once, settles everything, then refuses', async () => {
    const { p } = fake({ maxQueueDelayMs: 10_000 });
    const pending = [1, 2].map((x) => p.submit(x));
    await p.drain();
    expect(await Promise.all(pending)).toEqual([2, 4]);
    await expect(p.submit(3)).rejects.toThrow(/shutting down/);
  });

  it('holds a 5x overload with a bounded queue (short soak; bench/onnx-soak.ts runs 60 s)', async () => {
    // Capacity: concurrency 2 x batch 8 per 10 ms = 1600/s. Offered: 8000/s for 1.5 s.
    const { p } = fake({ maxBatchSize: 8, concurrency: 2, queueCapacity: 64, overflow: 'drop-oldest' }, 10);
    const heap0 = process.memoryUsage().heapUsed;
    const all: Promise<unknown>[] = [];
    let maxDepth = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < 1_500) {
      for (let i = 0; i < 40; i++) all.push(p.submit(i).catch(() => undefined));
      maxDepth = Math.max(maxDepth, p.metrics().queueDepth);
      await sleep(5);
    }
    await p.drain();
    await Promise.all(all);
    const m = p.metrics();
    expect(maxDepth).toBeLessThanOrEqual(64);
    expect(m.submitted).toBe(all.length);
    expect(m.completed + m.dropped).toBe(m.submitted); // nothing lost silently
    expect(m.dlqRate).toBeGreaterThan(0.5); // offered 5x what it can serve
    expect(p.deadLetters().length).toBeLessThanOrEqual(1000);
    expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(64 << 20);
  });
});

describe('onnx pipeline', () => {
  it('batches requests into one execution and gives each its own rows of the output', async () => {
    tp = await Thunderpac.open({ store: false, onnx: { workers: 1 } });
    const build = await reg.build('cnn');
    const pipeline = createOnnxPipeline(tp, build, {
      maxBatchSize: 4,
      maxQueueDelayMs: 20,
      concurrency: 1,
      queueCapacity: 16,
      overflow: 'reject',
    });
    const inputs = Array.from({ length: 6 }, (_, i) => ({
      image: floatTensor([1 + (i % 2), 3, 32, 32], i + 1),
    }));
    const responses = await Promise.all(inputs.map((tensors) => pipeline.submit({ tensors })));
    expect(responses.map((r) => r.batchSize)).toEqual([4, 4, 4, 4, 2, 2]);
    expect(new Set(responses.map((r) => r.receiptId)).size).toBe(2);
    // Each response equals running that request alone.
    const sandbox = tp.sandbox(onnxSandbox(build));
    for (const [i, tensors] of inputs.entries()) {
      const alone = await tp.execute(sandbox, {
        build,
        input: { kind: 'tensors', tensors },
        entry: ONNX_ENTRY,
      });
      if (alone.output?.kind !== 'tensors') throw new Error('expected tensors');
      expect(responses[i]!.tensors.probs!.shape).toEqual([1 + (i % 2), 10]);
      expect(maxAbsDiff(responses[i]!.tensors.probs!, alone.output.tensors.probs!)).toBeLessThanOrEqual(1e-5);
    }
    await pipeline.drain();
  });

  it('a bad request fails alone; a crashed worker with no retries dead-letters, never loses', async () => {
    tp = await Thunderpac.open({
      store: false,
      onnx: { workers: 1, isolation: 'process', retries: 0, backoffMs: { initial: 10, max: 50 } },
    });
    const backend = tp.executor.backend('onnx') as unknown as OnnxBackend;
    const build = await reg.build('mlp');
    const pipeline = createOnnxPipeline(tp, build, {
      maxBatchSize: 8,
      maxQueueDelayMs: 10,
      concurrency: 1,
      queueCapacity: 16,
      overflow: 'reject',
    });
    const good = { x: floatTensor([1, 4]) };
    const nan = { x: { dtype: 'float32' as const, shape: [1, 4], data: new Float32Array([0, 0, 0, 0]) } };
    const [a, b] = await Promise.allSettled([
      pipeline.submit({ tensors: good }),
      pipeline.submit({ tensors: nan }),
    ]);
    expect(a.status).toBe('fulfilled');
    expect(b.status).toBe('fulfilled');

    const big = { x: floatTensor([200_000, 4]) };
    const pending = pipeline.submit({ tensors: big }, { correlationId: 'doomed' });
    for (let i = 0; i < 500 && !backend.pool!.busyWorker(); i++) await sleep(1);
    await backend.pool!.busyWorker()!.kill();
    await expect(pending).rejects.toMatchObject({ code: 'ONNX_WORKER_CRASHED' });
    const dlq = pipeline.deadLetters();
    expect(dlq).toHaveLength(1);
    expect(dlq[0]).toMatchObject({
      correlationId: 'doomed',
      reason: 'failed',
      error: { code: 'ONNX_WORKER_CRASHED' },
    });
    expect(dlq[0]!.request.tensors).toBe(big);
    await pipeline.drain();
  });
});
