/**
 * `npm run bench:onnx-overload` — goodput of the onnx pipeline under 5× overload, per overflow
 * policy, as a share of its capacity.
 *
 *   vite-node bench/onnx-overload.ts [-- --seconds 3] [--overload 5] [--model mlp] [--rounds 3]
 *       [--policy reject|drop-oldest|codel|codel-server ...] [--max-batch 32] [--queue 256]
 *
 * Policies: 'reject' and 'drop-oldest' shed by length only; 'codel' is 'reject' plus CoDel
 * shedding by queue delay (target 5 ms, interval 100 ms: RFC 8289's defaults); 'codel-server'
 * the same with codelMode 'server' (the RPC-queue variant, see src/backends/onnx/pipeline.ts).
 * `--max-batch 1` is the unbatched baseline (one execution per request). Served latency
 * (submit → answer) p50/p99 of the overload phase is reported per policy.
 *
 * Each round, for each policy: capacity = completed/s with the queue kept full (closed loop, no
 * shedding); then `overload` × that capacity offered open loop (arrivals never wait for answers;
 * at most 5 ms worth per event-loop turn, as arrivals from the network) for `seconds`, goodput =
 * completed/s. Reports goodput / capacity per policy over the rounds
 * (median, min, max), the time the main thread spent inside submit() (admitting and shedding),
 * and checks that every offered request was completed or shed with the policy's typed error
 * and that the queue never exceeded its capacity (exit 1 otherwise).
 */

import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Pipeline } from '../src/backends/onnx/pipeline.js';
import {
  createOnnxPipeline,
  type OnnxRequest,
  type OnnxResponse,
} from '../src/backends/onnx/pipeline-onnx.js';
import { defaultModelDir, ModelRegistry } from '../src/backends/onnx/registry.js';
import type { Tensor } from '../src/runtime/types.js';
import { Thunderpac } from '../src/thunderpac.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    overload: { type: 'string', default: '5' },
    model: { type: 'string', default: 'mlp' },
    rounds: { type: 'string', default: '3' },
    policy: { type: 'string', multiple: true },
    'max-batch': { type: 'string', default: '32' },
    queue: { type: 'string', default: '256' },
  },
});
const seconds = Number(values.seconds);
const overload = Number(values.overload);
const rounds = Number(values.rounds);
const QUEUE = Number(values.queue);
const MAX_BURST_MS = 5;
const MAX_BATCH = Number(values['max-batch']);
const ALL_POLICIES = ['reject', 'drop-oldest', 'codel', 'codel-server'] as const;
type Policy = (typeof ALL_POLICIES)[number];
const POLICIES = ALL_POLICIES.filter((p) => values.policy === undefined || values.policy.includes(p));
const SHED_CODES: Record<Policy, readonly string[]> = {
  reject: ['QUEUE_FULL'],
  'drop-oldest': ['DROPPED'],
  codel: ['QUEUE_FULL', 'QUEUE_DELAY'],
  'codel-server': ['QUEUE_FULL', 'QUEUE_DELAY'],
};
/** The pipeline options of a policy (all 'reject' at the door but drop-oldest). */
function policyOptions(policy: Policy) {
  return {
    overflow: policy === 'drop-oldest' ? ('drop-oldest' as const) : ('reject' as const),
    ...(policy.startsWith('codel') && { codel: { targetMs: 5, intervalMs: 100 } }),
    ...(policy === 'codel-server' && { codelMode: 'server' as const }),
  };
}

const reg = new ModelRegistry({ dir: defaultModelDir() });
const build = await reg.build(values.model);
const inputSchema = build.manifest.inputSchema;
if (inputSchema.kind !== 'tensors') throw new Error('onnx builds have tensor schemas');
const [inputName, schema] = Object.entries(inputSchema.tensors)[0]!;
const trailing = schema.shape.slice(1).map(Number);
// One request object, reused: the offered load costs the generator as little as possible, so
// what is measured is the pipeline's own admission and shedding.
const data = new Float32Array(trailing.reduce((a, b) => a * b, 1)).fill(0.5);
const request: OnnxRequest = {
  tensors: { [inputName]: { dtype: 'float32', shape: [1, ...trailing], data } as Tensor },
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Phase {
  readonly offeredPerSec: number;
  readonly goodputPerSec: number;
  readonly submitShare: number;
  /** Served requests' submit → answer, ms. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly shedByDelayShare: number;
  readonly problems: string[];
}

/** `ratePerSec` null: closed loop, the queue kept full (capacity). */
async function phase(tp: Thunderpac, policy: Policy, ratePerSec: number | null): Promise<Phase> {
  const pipeline: Pipeline<OnnxRequest, OnnxResponse> = createOnnxPipeline(tp, build, {
    maxBatchSize: MAX_BATCH,
    maxQueueDelayMs: 2,
    concurrency: 2,
    queueCapacity: QUEUE,
    ...policyOptions(policy),
  });
  await Promise.all([pipeline.submit(request), pipeline.submit(request)]);
  const base = pipeline.metrics();
  let offered = 0;
  let completed = 0;
  let shed = 0;
  let other = 0;
  let submitMs = 0;
  let maxDepth = 0;
  const onDone = (): void => {
    completed++;
  };
  const onError = (err: { code?: string }): void => {
    if (err.code !== undefined && SHED_CODES[policy].includes(err.code)) shed++;
    else other++;
  };
  const t0 = performance.now();
  const end = t0 + seconds * 1e3;
  if (ratePerSec === null) {
    // Closed loop: QUEUE requests outstanding, each answer sends the next, so nothing is shed
    // and no timer tick limits what is offered.
    const next = (): void => {
      if (performance.now() >= end) return;
      offered++;
      pipeline.submit(request).then(
        () => {
          completed++;
          next();
        },
        (err: { code?: string }) => {
          onError(err);
          next();
        },
      );
    };
    for (let i = 0; i < QUEUE; i++) next();
    while (performance.now() < end) await sleep(5);
  } else {
    while (performance.now() < end) {
      // Arrivals reach the pipeline through the event loop, as network requests would: at most
      // MAX_BURST_MS worth per turn, so a thread that falls behind cannot be kept submitting
      // forever (what it could not take in is counted as never offered).
      const due = Math.min(
        Math.floor(((performance.now() - t0) / 1e3) * ratePerSec),
        offered + Math.ceil((ratePerSec * MAX_BURST_MS) / 1e3),
      );
      const s0 = performance.now();
      for (; offered < due; offered++) pipeline.submit(request).then(onDone, onError);
      submitMs += performance.now() - s0;
      maxDepth = Math.max(maxDepth, pipeline.queueDepth);
      await sleep(1);
    }
  }
  const elapsed = (performance.now() - t0) / 1e3;
  const completedInWindow = completed;
  await pipeline.drain();
  await sleep(0);
  const m = pipeline.metrics();
  const problems: string[] = [];
  if (maxDepth > QUEUE) problems.push(`queue depth ${maxDepth} > ${QUEUE}`);
  if (completed + shed + other !== offered) problems.push(`${offered - completed - shed - other} unsettled`);
  if (other > 0) problems.push(`${other} failed with another error`);
  if (m.submitted - base.submitted !== offered) problems.push('submitted count differs');
  return {
    offeredPerSec: offered / elapsed,
    goodputPerSec: completedInWindow / elapsed,
    submitShare: submitMs / (elapsed * 1e3),
    p50Ms: m.latency.p50 / 1e6,
    p99Ms: m.latency.p99 / 1e6,
    shedByDelayShare: offered === 0 ? 0 : m.shedByDelay / offered,
    problems,
  };
}

/**
 * Main-thread CPU per shed request, settling included: a full queue in front of a handler that
 * never answers, so every submit is shed. CPU time, not wall time: on a shared machine it is
 * the steadier measure of what shedding itself costs.
 */
async function shedCostNs(policy: Policy): Promise<number> {
  const pipeline = new Pipeline<number, number>({
    maxBatchSize: MAX_BATCH,
    maxQueueDelayMs: 2,
    concurrency: 2,
    queueCapacity: QUEUE,
    ...policyOptions(policy),
    handler: () => new Promise(() => {}),
  });
  const ignore = (): void => {};
  for (let i = 0; i < QUEUE + 64; i++) pipeline.submit(i).then(ignore, ignore);
  await new Promise((r) => setImmediate(r));
  const N = 100_000;
  const cpu0 = process.cpuUsage();
  for (let done = 0; done < N; done += 1000) {
    for (let i = 0; i < 1000; i++) pipeline.submit(i).then(ignore, ignore);
    await new Promise((r) => setImmediate(r));
  }
  const cpu = process.cpuUsage(cpu0);
  return ((cpu.user + cpu.system) * 1e3) / N;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

const byPolicy = (): Record<Policy, number[]> => ({
  reject: [],
  'drop-oldest': [],
  codel: [],
  'codel-server': [],
});
const shedNs = byPolicy();
for (let r = 0; r < rounds; r++) for (const policy of POLICIES) shedNs[policy].push(await shedCostNs(policy));

const tp = await Thunderpac.open({ store: false, onnx: { workers: 2 } });
const capacities: number[] = [];
const ratios = byPolicy();
const shares = byPolicy();
const p50s = byPolicy();
const p99s = byPolicy();
const delayShed = byPolicy();
const problems: string[] = [];
try {
  for (let r = 0; r < rounds; r++) {
    for (const policy of POLICIES) {
      // Capacity right before each overload phase: on a shared machine it drifts.
      const capacity = (await phase(tp, 'reject', null)).goodputPerSec;
      capacities.push(capacity);
      const p = await phase(tp, policy, capacity * overload);
      ratios[policy].push(p.goodputPerSec / capacity);
      shares[policy].push(p.submitShare);
      p50s[policy].push(p.p50Ms);
      p99s[policy].push(p.p99Ms);
      delayShed[policy].push(p.shedByDelayShare);
      problems.push(...p.problems.map((x) => `round ${r + 1} ${policy}: ${x}`));
      process.stdout.write(
        `round ${r + 1}: capacity ${capacity.toFixed(0)}/s; ${policy}: offered ${p.offeredPerSec.toFixed(0)}/s, goodput ${p.goodputPerSec.toFixed(0)}/s = ${pct(p.goodputPerSec / capacity)} of capacity, served p50 ${p.p50Ms.toFixed(1)} ms p99 ${p.p99Ms.toFixed(1)} ms, shed by delay ${pct(p.shedByDelayShare)}, submit() ${pct(p.submitShare)} of wall time\n`,
      );
    }
  }
} finally {
  await tp.close();
}
process.stdout.write(
  `\n${values.model}, 1-row requests, batch ≤ ${MAX_BATCH}, 2 worker threads, queue ${QUEUE}, ${overload}× overload, ${seconds} s per phase, ${rounds} rounds\n`,
);
process.stdout.write(
  `capacity: median ${median(capacities).toFixed(0)}/s (min ${Math.min(...capacities).toFixed(0)}, max ${Math.max(...capacities).toFixed(0)})\n`,
);
for (const policy of POLICIES) {
  const xs = ratios[policy];
  process.stdout.write(
    `${policy.padEnd(12)} goodput/capacity median ${pct(median(xs))} (min ${pct(Math.min(...xs))}, max ${pct(Math.max(...xs))}); served p50 median ${median(p50s[policy]).toFixed(1)} ms (${Math.min(...p50s[policy]).toFixed(1)}–${Math.max(...p50s[policy]).toFixed(1)}), p99 median ${median(p99s[policy]).toFixed(1)} ms (${Math.min(...p99s[policy]).toFixed(1)}–${Math.max(...p99s[policy]).toFixed(1)}); shed by delay ${pct(median(delayShed[policy]))}; submit() median ${pct(median(shares[policy]))} of wall time\n`,
  );
}
for (const policy of POLICIES) {
  const xs = shedNs[policy];
  process.stdout.write(
    `${policy.padEnd(12)} main-thread CPU per shed request median ${median(xs).toFixed(0)} ns (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})\n`,
  );
}
for (const p of problems) process.stdout.write(`PROBLEM ${p}\n`);
process.exitCode = problems.length === 0 ? 0 : 1;
