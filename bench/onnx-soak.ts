/**
 * `npm run bench:onnx-soak` — the onnx pipeline under a sustained 5× overload.
 *
 *   vite-node bench/onnx-soak.ts [--seconds 60] [--overload 5] [--model cnn]
 *
 * 1. Measures the pipeline's capacity (1-row requests, maxBatchSize 32, 2 workers) for 3 s.
 * 2. Offers `overload` × that rate for `seconds`, open loop (arrivals do not wait for
 *    answers), with a bounded queue (capacity 256, drop-oldest).
 * 3. Samples queue depth, heap and RSS every 250 ms and reports: served rate, DLQ rate, max queue
 *    depth, memory growth, latency p50/p95/p99 of served requests. Exits 1 if the queue ever
 *    exceeded its bound or a request was lost (neither served nor dead-lettered).
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createOnnxPipeline } from '../src/backends/onnx/pipeline-onnx.js';
import { defaultModelDir, ModelRegistry } from '../src/backends/onnx/registry.js';
import { packagePath } from '../src/runtime/package-root.js';
import type { Tensor } from '../src/runtime/types.js';
import { Thunderpac } from '../src/thunderpac.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    overload: { type: 'string', default: '5' },
    model: { type: 'string', default: 'cnn' },
    out: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const overload = Number(values.overload);
const QUEUE = 256;

const reg = new ModelRegistry({ dir: defaultModelDir() });
const build = await reg.build(values.model);
const inputSchema = build.manifest.inputSchema;
if (inputSchema.kind !== 'tensors') throw new Error('onnx builds have tensor schemas');
const [inputName, schema] = Object.entries(inputSchema.tensors)[0]!;
const trailing = schema.shape.slice(1).map(Number);
const per = trailing.reduce((a, b) => a * b, 1);
const request = (i: number): { tensors: Record<string, Tensor> } => {
  const data = new Float32Array(per);
  data.fill((i % 97) / 97);
  return { tensors: { [inputName]: { dtype: 'float32', shape: [1, ...trailing], data } } };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `ratePerSec` null: closed loop, keep the queue topped up (measures capacity). */
async function run(ratePerSec: number | null, durationS: number) {
  const tp = await Thunderpac.open({ store: false, onnx: { workers: 2 } });
  const pipeline = createOnnxPipeline(tp, build, {
    maxBatchSize: 32,
    maxQueueDelayMs: 2,
    concurrency: 2,
    queueCapacity: QUEUE,
    overflow: 'drop-oldest',
  });
  await Promise.all([0, 1].map((i) => pipeline.submit(request(i))));
  const base = pipeline.metrics();
  const heap0 = process.memoryUsage();
  let maxDepth = 0;
  let maxHeap = heap0.heapUsed;
  let maxRss = heap0.rss;
  let offered = 0;
  let served = 0;
  let lost = 0;
  const settled: Promise<void>[] = [];
  const t0 = performance.now();
  let nextSample = 0;
  while (performance.now() - t0 < durationS * 1e3) {
    const due =
      ratePerSec === null
        ? offered + (QUEUE - pipeline.metrics().queueDepth)
        : Math.floor(((performance.now() - t0) / 1e3) * ratePerSec);
    for (; offered < due; offered++) {
      settled.push(
        pipeline.submit(request(offered)).then(
          () => {
            served++;
          },
          (err: { code?: string }) => {
            if (err.code !== 'DROPPED' && err.code !== 'QUEUE_FULL') lost++;
          },
        ),
      );
    }
    if (settled.length > 10_000) settled.splice(0, settled.length - 10_000); // keep memory flat
    const el = performance.now() - t0;
    if (el >= nextSample) {
      const mem = process.memoryUsage();
      maxHeap = Math.max(maxHeap, mem.heapUsed);
      maxRss = Math.max(maxRss, mem.rss);
      nextSample = el + 250;
    }
    maxDepth = Math.max(maxDepth, pipeline.metrics().queueDepth);
    await sleep(1);
  }
  const elapsed = (performance.now() - t0) / 1e3;
  await pipeline.drain();
  await Promise.all(settled);
  const m = pipeline.metrics();
  await tp.close();
  const submitted = m.submitted - base.submitted;
  return {
    offeredPerSec: Math.round(offered / elapsed),
    servedPerSec: Math.round(served / elapsed),
    submitted,
    completed: m.completed - base.completed,
    deadLettered: m.deadLettered - base.deadLettered,
    dlqRate: (m.deadLettered - base.deadLettered) / submitted,
    lostUnaccounted: submitted - (m.completed - base.completed) - (m.deadLettered - base.deadLettered) + lost,
    maxQueueDepth: maxDepth,
    queueCapacity: QUEUE,
    meanBatch: (m.completed - base.completed) / (m.batches - base.batches),
    heapGrowthMb: (maxHeap - heap0.heapUsed) / 2 ** 20,
    rssGrowthMb: (maxRss - heap0.rss) / 2 ** 20,
    latencyMs: { p50: m.latency.p50 / 1e6, p95: m.latency.p95 / 1e6, p99: m.latency.p99 / 1e6 },
  };
}

// Capacity: keep the queue full for 3 s and count what it serves.
const probe = await run(null, 3);
const capacity = probe.servedPerSec;
process.stdout.write(
  `capacity ≈ ${capacity} req/s (${values.model}, 1 row per request, batch ≤ 32, 2 workers)\n`,
);
const soak = await run(capacity * overload, seconds);
process.stdout.write(`${JSON.stringify(soak, null, 2)}\n`);
const file = values.out ?? packagePath('bench', 'results', 'onnx-soak.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(
  file,
  `${JSON.stringify({ at: new Date().toISOString(), model: values.model, seconds, overload, capacity, soak }, null, 2)}\n`,
);
process.exitCode = soak.maxQueueDepth <= QUEUE && soak.lostUnaccounted === 0 ? 0 : 1;
