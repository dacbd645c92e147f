/**
 * `npm run bench:onnx` — the onnx backend against raw onnxruntime, in one run.
 *
 *   vite-node bench/onnx.ts [-- --quick] [-- --out FILE]
 *
 *   onnx-<model>-b<N> raw `session.run()` on the calling thread (same session options, feeds
 *                     built once) vs a full execute() — validate, hash, run, hash, seal — on
 *                     the in-thread path, the worker-thread path and the worker-process path,
 *                     without a store and (in-thread) with the receipt log
 *   batching          pipeline throughput, 1-row requests, maxBatchSize 1 vs 32
 *   event loop        delay of the main event loop while a 512-image CNN batch runs,
 *                     in-thread vs worker thread
 * Prints tables; writes JSON (default bench/results/onnx-latest.json).
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ONNX_ENTRY, onnxDeterminismFlags } from '../src/backends/onnx/backend.js';
import { ort, ortSessionOptions, ortVersion, sessionOptions } from '../src/backends/onnx/ort.js';
import { createOnnxPipeline } from '../src/backends/onnx/pipeline-onnx.js';
import { defaultModelDir, ModelRegistry } from '../src/backends/onnx/registry.js';
import { tensorsFromJson } from '../src/backends/onnx/tensors-json.js';
import { packagePath } from '../src/runtime/package-root.js';
import type { Tensor } from '../src/runtime/types.js';
import { Thunderpac } from '../src/thunderpac.js';
import { type CaseResult, type CaseSpec, measure, printTable, withRatios } from './harness.js';

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, out: { type: 'string' } },
});
const quick = values.quick;
const reg = new ModelRegistry({ dir: defaultModelDir() });

function rows(shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 4294967296;
  }
  return { dtype: 'float32', shape, data };
}

async function latencyCases(): Promise<CaseResult[]> {
  const tps = {
    inThread: await Thunderpac.open({ store: false, onnx: { path: 'in-thread' } }),
    inThreadNoCpu: await Thunderpac.open({ store: false, cpuAccounting: false, onnx: { path: 'in-thread' } }),
    thread: await Thunderpac.open({ store: false, onnx: { workers: 1, isolation: 'thread' } }),
    process: await Thunderpac.open({ store: false, onnx: { workers: 1, isolation: 'process' } }),
  };
  const storeDir = mkdtempSync(join(tmpdir(), 'tp-bench-onnx-'));
  const logged = await Thunderpac.open({ store: storeDir, onnx: { path: 'in-thread' } });
  const specs: CaseSpec[] = [];
  const rt = ort();
  const sessions: { release(): Promise<void> }[] = [];
  for (const [name, rowsPerRequest] of [
    ['mlp', 1],
    ['cnn', 1],
    ['cnn', 8],
    ['cnn', 32],
    ['tree', 1],
  ] as const) {
    const m = reg.get(name);
    const build = await reg.buildOf(m);
    const tensors = tensorsFromJson(m.sample!.inputs);
    // `rowsPerRequest` rows of each input (seeded data with the sample's trailing shape).
    const one: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(tensors)) one[k] = rows([rowsPerRequest, ...t.shape.slice(1)], 11);
    const session = await rt.InferenceSession.create(m.bytes, ortSessionOptions(sessionOptions()));
    sessions.push(session);
    const feeds: Record<string, InstanceType<typeof rt.Tensor>> = {};
    for (const [k, t] of Object.entries(one))
      feeds[k] = new rt.Tensor('float32', t.data as Float32Array, [...t.shape]);
    const group = `onnx-${name}-b${rowsPerRequest}`;
    const heavy = name === 'cnn' && rowsPerRequest > 1;
    const n = quick ? (heavy ? 300 : 1_000) : heavy ? 2_000 : 10_000;
    const warmup = Math.ceil(n / 10);
    const base = 'raw session.run() in-thread';
    specs.push({ name: base, group, iterations: n, warmup, fn: () => session.run(feeds) });
    const input = { kind: 'tensors' as const, tensors: one };
    const exec = (tp: Thunderpac) => {
      const sandbox = tp.sandbox({ backend: 'onnx', determinism: { flags: onnxDeterminismFlags(build) } });
      return () => tp.execute(sandbox, { build, input, entry: ONNX_ENTRY });
    };
    specs.push({
      name: 'execute() in-thread, no store',
      group,
      baseline: base,
      iterations: n,
      warmup,
      fn: exec(tps.inThread),
    });
    specs.push({
      name: 'execute() in-thread, no store, no CPU time',
      group,
      baseline: base,
      iterations: n,
      warmup,
      fn: exec(tps.inThreadNoCpu),
    });
    specs.push({
      name: 'execute() in-thread + receipt log',
      group,
      baseline: base,
      iterations: n,
      warmup,
      fn: exec(logged),
    });
    specs.push({
      name: 'execute() worker thread, no store',
      group,
      baseline: base,
      iterations: n,
      warmup,
      fn: exec(tps.thread),
    });
    specs.push({
      name: 'execute() worker process, no store',
      group,
      baseline: base,
      iterations: n,
      warmup,
      fn: exec(tps.process),
    });
  }
  const results = [];
  for (const spec of specs) results.push(await measure(spec));
  for (const s of sessions) await s.release();
  for (const tp of [...Object.values(tps), logged]) await tp.close();
  rmSync(storeDir, { recursive: true, force: true });
  return withRatios(results);
}

interface BatchingResult {
  readonly model: string;
  readonly requests: number;
  readonly maxBatchSize: number;
  readonly reqPerSec: number;
  readonly meanBatch: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

async function batching(): Promise<BatchingResult[]> {
  const out: BatchingResult[] = [];
  for (const name of ['mlp', 'cnn']) {
    const m = reg.get(name);
    const build = await reg.buildOf(m);
    const shape = name === 'cnn' ? [1, 3, 32, 32] : [1, 4];
    const inputName = name === 'cnn' ? 'image' : 'x';
    const requests = quick ? 400 : name === 'cnn' ? 2_000 : 5_000;
    for (const maxBatchSize of [1, 32]) {
      const tp = await Thunderpac.open({ store: false, onnx: { workers: 2 } });
      const pipeline = createOnnxPipeline(tp, build, {
        maxBatchSize,
        maxQueueDelayMs: 2,
        concurrency: 2,
        queueCapacity: requests,
        overflow: 'reject',
      });
      // Warm both workers.
      await Promise.all([0, 1].map((i) => pipeline.submit({ tensors: { [inputName]: rows(shape, i) } })));
      const inputs = Array.from({ length: requests }, (_, i) => ({ [inputName]: rows(shape, i + 7) }));
      const before = pipeline.metrics();
      const t0 = performance.now();
      await Promise.all(inputs.map((tensors) => pipeline.submit({ tensors })));
      const s = (performance.now() - t0) / 1e3;
      const after = pipeline.metrics();
      out.push({
        model: name,
        requests,
        maxBatchSize,
        reqPerSec: Math.round(requests / s),
        meanBatch: (after.completed - before.completed) / (after.batches - before.batches),
        p50Us: after.latency.p50 / 1e3,
        p99Us: after.latency.p99 / 1e3,
      });
      await pipeline.drain();
      await tp.close();
    }
  }
  return out;
}

interface LoopResult {
  readonly path: string;
  readonly batch: number;
  readonly inferenceMs: number;
  /** session.run() alone, as the receipt's engineNs records it. */
  readonly engineMs: number;
  readonly loopDelayMaxMs: number;
  readonly loopDelayP99Ms: number;
}

async function eventLoop(): Promise<LoopResult[]> {
  const out: LoopResult[] = [];
  const build = await reg.build('cnn');
  const batch = 512;
  const input = { kind: 'tensors' as const, tensors: { image: rows([batch, 3, 32, 32], 3) } };
  for (const path of ['in-thread', 'worker'] as const) {
    const tp = await Thunderpac.open({ store: false, onnx: { path, workers: 1 } });
    const sandbox = tp.sandbox({
      backend: 'onnx',
      limits: { timeoutMs: 60_000 },
      determinism: { flags: onnxDeterminismFlags(build) },
    });
    await tp.execute(sandbox, { build, input, entry: ONNX_ENTRY }); // warm: session + first run
    const h = monitorEventLoopDelay({ resolution: 1 });
    // A 1 ms ticker stands in for the host service's own work.
    const ticker = setInterval(() => {}, 1);
    h.enable();
    const t0 = performance.now();
    const runs = 3;
    let engineNs = 0;
    for (let i = 0; i < runs; i++) {
      const r = await tp.execute(sandbox, { build, input, entry: ONNX_ENTRY });
      engineNs += r.receipt.resources.engineNs ?? 0;
    }
    const ms = (performance.now() - t0) / runs;
    h.disable();
    clearInterval(ticker);
    out.push({
      path,
      batch,
      inferenceMs: ms,
      engineMs: engineNs / runs / 1e6,
      loopDelayMaxMs: h.max / 1e6,
      loopDelayP99Ms: h.percentile(99) / 1e6,
    });
    await tp.close();
  }
  return out;
}

const latency = await latencyCases();
printTable(latency);
const batch = await batching();
process.stdout.write('\nbatching (pipeline, 2 workers, concurrency 2, maxQueueDelayMs 2)\n');
for (const b of batch) {
  process.stdout.write(
    `  ${b.model} maxBatch ${String(b.maxBatchSize).padStart(2)}: ${b.reqPerSec.toLocaleString('en-US')} req/s, mean batch ${b.meanBatch.toFixed(1)}, p50 ${b.p50Us.toFixed(0)} µs, p99 ${b.p99Us.toFixed(0)} µs\n`,
  );
}
const loop = await eventLoop();
process.stdout.write('\nevent-loop delay while a 512-image CNN batch runs\n');
for (const l of loop) {
  process.stdout.write(
    `  ${l.path.padEnd(9)}: execute ${l.inferenceMs.toFixed(1)} ms (session.run ${l.engineMs.toFixed(1)} ms), loop delay max ${l.loopDelayMaxMs.toFixed(1)} ms, p99 ${l.loopDelayP99Ms.toFixed(1)} ms\n`,
  );
}
const file = values.out ?? packagePath('bench', 'results', 'onnx-latest.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(
  file,
  `${JSON.stringify(
    {
      at: new Date().toISOString(),
      node: process.versions.node,
      onnxruntime: ortVersion(),
      cpu: cpus()[0]?.model,
      cores: cpus().length,
      quick,
      latency,
      batching: batch,
      eventLoop: loop,
    },
    null,
    2,
  )}\n`,
);
process.stdout.write(`\nwrote ${file}\n`);
