/**
 * The ONNX batcher's queue wired to the QoS backpressure signals (issue 12): CoDel sheds by
 * queue delay with typed errors, batch latency drives an adaptive limit on batches in flight,
 * and batch failures drive a circuit breaker that opens and half-opens. Time is a ManualClock
 * everywhere (the real onnxruntime runs, but queue delay and batch latency are simulated), so
 * nothing here depends on how fast or loaded the machine is.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { ONNX_ENTRY } from '../src/backends/onnx/backend.js';
import { CircuitOpenError, type Outcome, Pipeline, QueueDelayError } from '../src/backends/onnx/pipeline.js';
import { createOnnxPipeline, type OnnxExecutor } from '../src/backends/onnx/pipeline-onnx.js';
import { httpErrorOf } from '../src/daemon/errors.js';
import { DaemonMetrics } from '../src/daemon/metrics.js';
import { AimdLimit } from '../src/qos/backpressure/adaptive-limit.js';
import { CircuitBreaker } from '../src/qos/backpressure/circuit-breaker.js';
import { ManualClock } from '../src/qos/clock.js';
import { ThunderpacError, ValidationError } from '../src/runtime/errors.js';
import type { Tensor } from '../src/runtime/types.js';
import { Thunderpac } from '../src/thunderpac.js';
import { floatTensor, registry } from './onnx-helpers.js';

const reg = registry();
let tp: Thunderpac | undefined;
afterEach(async () => {
  await tp?.close();
  tp = undefined;
});

/** Lets every pending promise callback run (the pipeline settles batches in .then/.finally). */
const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

/** A handler whose batches finish only when the test says so. */
function controlled(onLaunch?: (open: number) => void) {
  const open: { batch: number[]; done(fail?: boolean): void }[] = [];
  const seen: number[] = [];
  const handler = (batch: readonly number[]) =>
    new Promise<readonly Outcome<number>[]>((resolve, reject) => {
      seen.push(...batch);
      onLaunch?.(open.length + 1);
      open.push({
        batch: [...batch],
        done: (fail) =>
          fail
            ? reject(new ThunderpacError('BACKEND_DOWN', 'down'))
            : resolve(batch.map((x) => ({ ok: true, value: x * 2 }))),
      });
    });
  return { open, seen, handler };
}

type Settled = { id: number; ok: boolean; value?: number; error?: unknown };
function track(p: Promise<number>, id: number, into: Settled[]): void {
  p.then(
    (value) => into.push({ id, ok: true, value }),
    (error) => into.push({ id, ok: false, error }),
  );
}

describe('CoDel on the batcher queue', () => {
  it('sheds by queue delay only after it stays above target for an interval, with typed errors, losing nothing', async () => {
    const clock = new ManualClock(1_000);
    const h = controlled();
    const p = new Pipeline<number, number>({
      maxBatchSize: 2,
      maxQueueDelayMs: 0,
      concurrency: 1,
      queueCapacity: 1_000,
      overflow: 'reject',
      clock,
      codel: { targetMs: 5, intervalMs: 100 },
      handler: h.handler,
    });
    const settled: Settled[] = [];
    const N = 120;
    for (let i = 0; i < N; i++) track(p.submit(i), i, settled);
    // Each batch takes 10 simulated ms: a standing queue at 5× what it can serve.
    let firstShedAt = -1;
    let firstAbove = -1;
    while (h.open.length > 0) {
      const b = h.open.shift()!;
      clock.advance(10);
      if (firstAbove < 0) firstAbove = clock.now();
      b.done();
      await flush();
      if (firstShedAt < 0 && p.metrics().shedByDelay > 0) firstShedAt = clock.now();
    }
    await p.drain();
    await flush();
    const m = p.metrics();
    expect(settled).toHaveLength(N);
    expect(new Set(settled.map((s) => s.id)).size).toBe(N); // each settles once
    const shed = settled.filter((s) => !s.ok);
    expect(shed.length).toBeGreaterThan(0);
    expect(shed.length).toBe(m.shedByDelay);
    for (const s of shed) {
      expect(s.error).toBeInstanceOf(QueueDelayError);
      expect((s.error as QueueDelayError).code).toBe('QUEUE_DELAY');
    }
    // Served exactly once each, with its own result; shed ones never reached the handler.
    for (const s of settled.filter((x) => x.ok)) expect(s.value).toBe(s.id * 2);
    expect([...h.seen].sort((a, b) => a - b)).toEqual(
      settled
        .filter((s) => s.ok)
        .map((s) => s.id)
        .sort((a, b) => a - b),
    );
    expect(m.completed + m.shedByDelay).toBe(N);
    // Above target from the first launch on (every head had waited ≥ 10 ms): no shed before a whole interval.
    expect(firstShedAt - firstAbove).toBeGreaterThanOrEqual(100);
    expect(p.deadLetters().filter((d) => d.error.code === 'QUEUE_DELAY')).toHaveLength(shed.length);
  });

  it('never sheds a queue whose delay stays under target, however long it stays busy', async () => {
    const clock = new ManualClock();
    const h = controlled();
    const p = new Pipeline<number, number>({
      maxBatchSize: 4,
      maxQueueDelayMs: 0,
      concurrency: 1,
      queueCapacity: 100,
      overflow: 'reject',
      clock,
      codel: { targetMs: 5, intervalMs: 100 },
      handler: h.handler,
    });
    const settled: Settled[] = [];
    // 4 arrivals per 4 ms batch, for 2 simulated seconds: busy, but each waits < 5 ms.
    let id = 0;
    for (let t = 0; t < 500; t++) {
      for (let i = 0; i < 4; i++) track(p.submit(id), id++, settled);
      await flush();
      clock.advance(4);
      while (h.open.length > 0) h.open.shift()!.done();
      await flush();
    }
    const drained = p.drain();
    while (h.open.length > 0) {
      clock.advance(1);
      h.open.shift()!.done();
      await flush();
    }
    await drained;
    await flush();
    expect(settled).toHaveLength(id);
    expect(settled.every((s) => s.ok)).toBe(true);
    expect(p.metrics().shedByDelay).toBe(0);
  });
});

describe('server-mode CoDel (RPC queues: open-loop arrivals)', () => {
  it('under a standing overload serves only requests that waited at most target, sheds the rest with typed errors', async () => {
    const clock = new ManualClock();
    const h = controlled();
    const launchedAt = new Map<number, number>();
    const p = new Pipeline<number, number>({
      maxBatchSize: 2,
      maxQueueDelayMs: 0,
      concurrency: 1,
      queueCapacity: 10_000,
      overflow: 'reject',
      clock,
      codel: { targetMs: 15, intervalMs: 100 },
      codelMode: 'server',
      handler: (batch) => {
        for (const x of batch) launchedAt.set(x, clock.now());
        return h.handler(batch);
      },
    });
    const settled: Settled[] = [];
    const submittedAt = new Map<number, number>();
    // 10 arrivals per 10 ms tick, 2 served per tick: 5× overload for 2 simulated seconds.
    let id = 0;
    for (let tick = 0; tick < 200; tick++) {
      for (let i = 0; i < 10; i++) {
        submittedAt.set(id, clock.now());
        track(p.submit(id), id++, settled);
      }
      await flush();
      clock.advance(10);
      h.open.shift()?.done();
      await flush();
    }
    const drained = p.drain();
    while (h.open.length > 0) {
      clock.advance(10);
      h.open.shift()!.done();
      await flush();
    }
    await drained;
    await flush();
    expect(settled).toHaveLength(id);
    const served = settled.filter((s) => s.ok);
    const shed = settled.filter((s) => !s.ok);
    for (const s of shed) expect(s.error).toBeInstanceOf(QueueDelayError);
    expect(p.metrics().shedByDelay).toBe(shed.length);
    expect(shed.length / id).toBeGreaterThan(0.7); // it sheds the excess, not a trickle
    const waits = served.map((s) => launchedAt.get(s.id)! - submittedAt.get(s.id)!);
    expect(Math.max(...waits)).toBeLessThanOrEqual(100); // never more than an interval
    // Past the first interval of overload, nothing launched had waited more than target.
    const late = served.filter((s) => submittedAt.get(s.id)! >= 200);
    expect(late.length).toBeGreaterThan(0);
    for (const s of late) expect(launchedAt.get(s.id)! - submittedAt.get(s.id)!).toBeLessThanOrEqual(15);
    for (const s of served) expect(s.value).toBe(s.id * 2);
  });
});

describe('adaptive limit on batches in flight', () => {
  it('backs off when batches get slow, never runs more than the limit, and grows back when fast', async () => {
    const clock = new ManualClock();
    // At each launch: batches in flight (this one included) and the limit then.
    const launches: [number, number][] = [];
    const h = controlled((inFlight) => launches.push([inFlight, p.metrics().batchLimit]));
    const p: Pipeline<number, number> = new Pipeline<number, number>({
      maxBatchSize: 1,
      maxQueueDelayMs: 0,
      concurrency: 8,
      queueCapacity: 10_000,
      overflow: 'reject',
      clock,
      limit: new AimdLimit({ initialLimit: 8, minLimit: 1, maxLimit: 8, timeoutMs: 50, backoffRatio: 0.5 }),
      handler: h.handler,
    });
    const settled: Settled[] = [];
    for (let i = 0; i < 400; i++) track(p.submit(i), i, settled);
    await flush();
    const limits: number[] = [];
    const step = async (latencyMs: number) => {
      clock.advance(latencyMs);
      h.open.shift()!.done();
      await flush();
      limits.push(p.metrics().batchLimit);
    };
    // Slow batches (100 ms > timeoutMs): the limit halves down to its floor.
    for (let i = 0; i < 20; i++) await step(100);
    expect(Math.min(...limits)).toBe(1);
    expect(p.metrics().inFlightBatches).toBeLessThanOrEqual(1);
    // Fast batches: it climbs back to `concurrency`, never above.
    for (let i = 0; i < 100; i++) await step(1);
    expect(p.metrics().batchLimit).toBe(8);
    expect(h.open.length).toBe(8);
    while (h.open.length > 0) {
      clock.advance(1);
      h.open.shift()!.done();
      await flush();
    }
    await p.drain();
    await flush();
    expect(settled).toHaveLength(400);
    expect(settled.every((s) => s.ok && s.value === s.id * 2)).toBe(true);
    // A batch is launched only below the limit (a shrinking limit lets those in flight finish).
    expect(launches).toHaveLength(400);
    for (const [inFlight, limit] of launches) expect(inFlight).toBeLessThanOrEqual(limit);
    expect(Math.max(...launches.map(([n]) => n))).toBe(8);
  });
});

/** Rows of a tensor, for comparing outputs exactly. */
function sameTensor(a: Tensor, b: Tensor): boolean {
  if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join() || a.data.length !== b.data.length)
    return false;
  const x = a.data as ArrayLike<number | bigint>;
  const y = b.data as ArrayLike<number | bigint>;
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
  return true;
}

/** An input for `model` with `rows` rows, distinct per seed. */
function inputFor(model: string, rows: number, seed: number): Record<string, Tensor> {
  if (model === 'cnn') return { image: floatTensor([rows, 3, 32, 32], seed) };
  if (model === 'tree') return { features: floatTensor([rows, 4], seed) };
  return { x: floatTensor([rows, 4], seed) };
}

describe('onnx batcher under overload (real onnxruntime)', () => {
  for (const [model, codelMode] of [
    ['mlp', 'rfc8289'],
    ['cnn', 'rfc8289'],
    ['tree', 'rfc8289'],
    ['mlp', 'server'],
    ['tree', 'server'],
  ] as const) {
    it(`${model} (${codelMode} CoDel): sheds by delay with typed errors, never loses or duplicates, results identical to unbatched`, async () => {
      tp = await Thunderpac.open({ store: false });
      const build = await reg.build(model);
      const clock = new ManualClock();
      // Every batch execution costs 10 simulated ms; rows counted per request seed to catch duplicates.
      let executions = 0;
      const exec: OnnxExecutor = {
        sandbox: (o) => tp!.sandbox(o),
        execute: async (s, r) => {
          executions++;
          const out = await tp!.execute(s, r);
          clock.advance(10);
          return out;
        },
      };
      const pipeline = createOnnxPipeline(exec, build, {
        maxBatchSize: 8,
        maxQueueDelayMs: 0,
        concurrency: 1,
        queueCapacity: 512,
        overflow: 'reject',
        clock,
        codel: { targetMs: 5, intervalMs: 50 },
        codelMode,
      });
      const N = 300;
      const inputs = Array.from({ length: N }, (_, i) => inputFor(model, 1 + (i % 3), i + 1));
      const results = await Promise.allSettled(inputs.map((tensors) => pipeline.submit({ tensors })));
      await pipeline.drain();
      const m = pipeline.metrics();
      const shed = results.filter((r) => r.status === 'rejected');
      expect(shed.length).toBeGreaterThan(0);
      for (const r of shed) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(QueueDelayError);
      expect(m.completed + m.shedByDelay).toBe(N);
      expect(m.failed + m.rejected).toBe(0);
      expect(m.meanBatchSize).toBeGreaterThan(1);

      // Every served response equals that request run alone, bit for bit.
      const sandbox = tp.sandbox({ backend: 'onnx' });
      let served = 0;
      for (const [i, r] of results.entries()) {
        if (r.status !== 'fulfilled') continue;
        served++;
        const alone = await tp.execute(sandbox, {
          build,
          input: { kind: 'tensors', tensors: inputs[i]! },
          entry: ONNX_ENTRY,
        });
        if (alone.output?.kind !== 'tensors') throw new Error('expected tensors');
        const names = Object.keys(alone.output.tensors);
        expect(Object.keys(r.value.tensors).sort()).toEqual([...names].sort());
        for (const n of names) {
          const same = sameTensor(r.value.tensors[n]!, alone.output.tensors[n]!);
          if (!same)
            expect({ i, n, batched: r.value.tensors[n] }).toEqual({ i, n, batched: alone.output.tensors[n] });
        }
      }
      expect(served).toBe(m.completed);
      // One execution per batch, and the batches hold exactly the served requests.
      expect(executions).toBe(m.batches);
    });
  }
});

describe('circuit breaker on the onnx batcher (real onnxruntime)', () => {
  it('opens on repeated failures, refuses and sheds with 503 + Retry-After, half-opens and closes on good probes', async () => {
    tp = await Thunderpac.open({ store: false });
    const build = await reg.build('mlp');
    const clock = new ManualClock();
    let down = true;
    let calls = 0;
    const exec: OnnxExecutor = {
      sandbox: (o) => tp!.sandbox(o),
      execute: async (s, r) => {
        calls++;
        if (down) throw new ThunderpacError('BACKEND_DOWN', 'the model backend is down');
        return tp!.execute(s, r);
      },
    };
    const breaker = new CircuitBreaker('model:mlp', clock, {
      windowSize: 4,
      minimumCalls: 4,
      failureRateThreshold: 1,
      openDurationMs: 2_000,
      halfOpenProbes: 2,
    });
    const pipeline = createOnnxPipeline(exec, build, {
      maxBatchSize: 1,
      maxQueueDelayMs: 0,
      concurrency: 2,
      queueCapacity: 64,
      overflow: 'reject',
      clock,
      breaker,
    });
    const req = (seed: number) => ({ tensors: { x: floatTensor([1, 4], seed) } });

    // A bad request is the caller's fault: it never counts against the model.
    const bad = { tensors: { x: floatTensor([1, 5], 1) } };
    down = false;
    for (let i = 0; i < 6; i++) await expect(pipeline.submit(bad)).rejects.toBeInstanceOf(ValidationError);
    expect(breaker.state).toBe('closed');

    // Four failed batches in a row: open.
    down = true;
    for (let i = 0; i < 4; i++)
      await expect(pipeline.submit(req(i))).rejects.toMatchObject({ code: 'BACKEND_DOWN' });
    expect(breaker.state).toBe('open');
    const before = calls;
    const refused = await pipeline.submit(req(9)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(before); // never reached the model
    const http = httpErrorOf(refused, 'r1', { bodyLimitBytes: 1 << 20 });
    expect(http.status).toBe(503);
    expect(http.headers['retry-after']).toBe('2');
    expect(http.body.error.code).toBe('CIRCUIT_OPEN');

    // Time up: half-open. A failing probe opens it again and sheds what waited behind it.
    clock.advance(2_000);
    expect(breaker.state).toBe('half-open');
    const wave1 = [1, 2, 3, 4, 5].map((i) => pipeline.submit(req(i)).catch((e: unknown) => e));
    const r1 = await Promise.all(wave1);
    expect(r1.filter((e) => (e as ThunderpacError).code === 'BACKEND_DOWN')).toHaveLength(2); // the two probes
    expect(r1.filter((e) => e instanceof CircuitOpenError)).toHaveLength(3); // shed when it reopened
    expect(breaker.state).toBe('open');

    // Recovered: after the open time, two good probes close it; everything queued then runs.
    down = false;
    clock.advance(2_000);
    expect(breaker.state).toBe('half-open');
    const wave2 = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => pipeline.submit(req(i))));
    expect(wave2).toHaveLength(6);
    expect(breaker.state).toBe('closed');
    const alone = await tp.execute(tp.sandbox({ backend: 'onnx' }), {
      build,
      input: { kind: 'tensors', tensors: req(3).tensors },
      entry: ONNX_ENTRY,
    });
    if (alone.output?.kind !== 'tensors') throw new Error('expected tensors');
    expect(sameTensor(wave2[2]!.tensors.probs!, alone.output.tensors.probs!)).toBe(true);
    const m = pipeline.metrics();
    expect(m.shedByBreaker).toBe(4);
    expect(m.submitted).toBe(m.completed + m.failed + m.rejected + m.dropped);
    await pipeline.drain();
  });

  it("daemon metrics show a watched batcher's queue depth, shed counts and batch limit", async () => {
    const clock = new ManualClock();
    const h = controlled();
    const p = new Pipeline<number, number>({
      maxBatchSize: 1,
      maxQueueDelayMs: 0,
      concurrency: 1,
      queueCapacity: 100,
      overflow: 'reject',
      clock,
      codel: { targetMs: 5, intervalMs: 10 },
      handler: h.handler,
    });
    const settled: Settled[] = [];
    for (let i = 0; i < 20; i++) track(p.submit(i), i, settled);
    await flush();
    for (let i = 0; i < 5; i++) {
      clock.advance(20);
      h.open.shift()!.done();
      await flush();
    }
    const m = p.metrics();
    expect(m.shedByDelay).toBeGreaterThan(0);
    const metrics = new DaemonMetrics();
    metrics.watchBatcher('mlp', p);
    const text = await metrics.registry.metrics();
    expect(text).toContain(
      `thunderpac_onnx_batcher_requests_shed_by_delay_total{model="mlp"} ${m.shedByDelay}`,
    );
    expect(text).toContain('thunderpac_onnx_batcher_requests_shed_by_breaker_total{model="mlp"} 0');
    expect(text).toContain(`thunderpac_onnx_batcher_queue_depth{model="mlp"} ${m.queueDepth}`);
    expect(text).toContain('thunderpac_onnx_batcher_batch_limit{model="mlp"} 1');
    p.abort();
    while (h.open.length > 0) h.open.shift()!.done();
    await flush();
    expect(settled).toHaveLength(20);
  });

  it('the daemon answers a delay shed with 503 and Retry-After', () => {
    const http = httpErrorOf(new QueueDelayError(5, 2_500), 'r', { bodyLimitBytes: 1 });
    expect(http.status).toBe(503);
    expect(http.headers['retry-after']).toBe('3');
    expect(http.body.error.code).toBe('QUEUE_DELAY');
  });
});
