/**
 * `npm run bench` — thunderpac against the raw engines it wraps, measured in one run.
 *
 *   node dist/bench/run.js [--quick] [--out FILE]
 *
 *   node dist/bench/run.js --only wasm        (groups whose name starts with "wasm")
 *
 * Groups and their baselines:
 *   wasm-echo-64B   raw V8 call of the same export (instance reused) vs a fresh raw instance
 *                   per call vs backend.run / a full execute() on the in-thread (metered and
 *                   not) and worker paths; its cases run interleaved (INTERLEAVED_GROUPS)
 *   wasm-prepare    instrument + compile a module cold vs a cached prepare
 *   wasm-fuel-*     one compute kernel (wasm/kernels.c) per group, called raw on a reused
 *                   instance: uninstrumented vs thunderpac fuel + depth (NaN policy off, then
 *                   on) vs the `wasm-metering` npm package; the geometric mean of the p50
 *                   ratios over the kernels is printed and stored as `fuelOverhead`
 *   xdp-drop-udp    raw addon BPF_PROG_TEST_RUN of the same program vs a full execute()
 * Prints p50 / p99 / throughput and p50 ratios; writes JSON (default bench/results/latest.json).
 */

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { createBpfBuild } from '../src/backends/ebpf/backend.js';
import { BpfObject } from '../src/backends/ebpf/object.js';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/backend.js';
import { instrument } from '../src/backends/wasm/instrument.js';
import { parseModule } from '../src/backends/wasm/module-info.js';
import { Executor } from '../src/runtime/executor.js';
import { packagePath } from '../src/runtime/package-root.js';
import { buildUdpFrame } from '../src/runtime/packets.js';
import { Sandbox } from '../src/runtime/sandbox.js';
import type { Backend, Input, RunContext } from '../src/runtime/types.js';
import { Store } from '../src/store/store.js';
import { type CaseSpec, measure, measureInterleaved, printTable, withRatios } from './harness.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    only: { type: 'string' },
  },
});
const N = values.quick ? 2_000 : 20_000;
/**
 * Groups whose cases run round robin in chunks (harness.measureInterleaved), with every
 * wasm-fuel-* group: the ratios within a group (raw call vs execute, metered vs not) are what
 * the targets are about, and on a shared machine sequential runs would each catch
 * different load.
 */
const INTERLEAVED_GROUPS = new Set(['wasm-echo-64B']);
const WARMUP = values.quick ? 200 : 2_000;

// ---------------------------------------------------------------- raw V8 baseline

interface AbiExports {
  memory: { buffer: ArrayBuffer };
  alloc(len: number): number;
  [entry: string]: unknown;
}
// lib ES2022 declares no WebAssembly global; the bench needs only Module and Instance.
const WA = (
  globalThis as unknown as {
    WebAssembly: {
      Module: new (b: Uint8Array) => object;
      Instance: new (m: object, i: object) => { exports: unknown };
    };
  }
).WebAssembly;

/**
 * The guest ABI by hand, on an instance: what a user without thunderpac would write. `ptr`
 * lets a reused instance keep one input buffer (its bump allocator would run out otherwise).
 */
function rawAbiCall(
  exports: AbiExports,
  entry: string,
  input: Uint8Array,
  ptr = exports.alloc(input.length),
): Uint8Array {
  new Uint8Array(exports.memory.buffer, ptr, input.length).set(input);
  const packed = (exports[entry] as (p: number, l: number) => bigint)(ptr, input.length);
  const outPtr = Number(packed >> 32n);
  const outLen = Number(packed & 0xffffffffn);
  return new Uint8Array(exports.memory.buffer, outPtr, outLen).slice();
}

// ---------------------------------------------------------------- cases

const storeDir = mkdtempSync(join(tmpdir(), 'tp-bench-'));
const store = new Store(storeDir);
const inThread = new WasmBackend({ path: 'in-thread' });
const worker = new WasmBackend({ path: 'worker' });
const auto = new WasmBackend();
const echoBytes = readFileSync(packagePath('wasm', 'echo.wasm'));
const echoBuild = createWasmBuild(echoBytes, { name: 'echo' });
const payload: Input = { kind: 'bytes', bytes: new Uint8Array(64).fill(7) };
const module = new WA.Module(echoBytes);
const reused = new WA.Instance(module, {}).exports as AbiExports;
const reusedPtr = reused.alloc(64);

const executors = {
  inThreadNoStore: new Executor({ backends: [inThread as Backend] }),
  inThreadStore: new Executor({ backends: [inThread as Backend], store }),
  workerStore: new Executor({ backends: [worker as Backend], store }),
  meteredNoStore: new Executor({ backends: [auto as Backend] }),
  // The default leaves process CPU time out of metered receipts; this one measures it anyway.
  meteredNoStoreCpu: new Executor({ backends: [auto as Backend], cpuAccounting: true }),
  meteredStore: new Executor({ backends: [auto as Backend], store }),
};
const limits = { timeoutMs: 1_000, memoryMb: 16 };
const meteredLimits = { ...limits, fuel: 1_000_000 };
const sandboxes = {
  inThreadNoStore: new Sandbox({ backend: 'wasm', limits }),
  inThreadStore: new Sandbox({ backend: 'wasm', limits }),
  workerStore: new Sandbox({ backend: 'wasm', limits }),
  meteredNoStore: new Sandbox({ backend: 'wasm', limits: meteredLimits }),
  meteredNoStoreCpu: new Sandbox({ backend: 'wasm', limits: meteredLimits }),
  meteredStore: new Sandbox({ backend: 'wasm', limits: meteredLimits }),
};
// backend.run alone (no executor): what the backend adds over a raw call.
const meteredPrepared = await auto.prepare(echoBuild, sandboxes.meteredNoStore.spec);
const meteredCtx = (): RunContext => ({ entry: 'echo', sandbox: sandboxes.meteredNoStore.spec, usage: {} });
// The metered module itself, called raw: what instrumentation adds to this tiny call.
const meteredRaw = new WA.Instance(new WA.Module(meteredPrepared.instrumented.bytes), {})
  .exports as AbiExports;
const meteredFuel = meteredRaw.__thunderpac_fuel as { value: bigint };
const METERED_FUEL = BigInt(meteredLimits.fuel);
const meteredPtr = meteredRaw.alloc(64);

function executeCase(key: keyof typeof executors, entry: string, input: Input) {
  const executor = executors[key];
  const sandbox = sandboxes[key];
  return async () => {
    const r = await executor.execute(sandbox, { build: echoBuild, entry, input });
    sandbox.reset();
    if (r.status !== 'completed') throw new Error(`bench execution failed: ${r.error?.message}`);
  };
}

const cases: CaseSpec[] = [
  {
    group: 'wasm-echo-64B',
    name: 'raw V8 call',
    iterations: N,
    warmup: WARMUP,
    fn: () => rawAbiCall(reused, 'echo', (payload as { bytes: Uint8Array }).bytes, reusedPtr),
  },
  {
    group: 'wasm-echo-64B',
    name: 'raw fresh instance + call',
    baseline: 'raw V8 call',
    iterations: N,
    warmup: WARMUP,
    fn: () =>
      rawAbiCall(
        new WA.Instance(module, {}).exports as AbiExports,
        'echo',
        (payload as { bytes: Uint8Array }).bytes,
      ),
  },
  {
    group: 'wasm-echo-64B',
    name: 'raw V8 call, metered module',
    baseline: 'raw V8 call',
    iterations: N,
    warmup: WARMUP,
    fn: () => {
      // As the backend does per execution: refill the fuel counter.
      meteredFuel.value = METERED_FUEL;
      return rawAbiCall(meteredRaw, 'echo', (payload as { bytes: Uint8Array }).bytes, meteredPtr);
    },
  },
  {
    group: 'wasm-echo-64B',
    name: 'backend.run in-thread metered',
    baseline: 'raw V8 call',
    iterations: N,
    warmup: WARMUP,
    fn: () => auto.run(meteredPrepared, payload, meteredCtx()),
  },
  {
    group: 'wasm-echo-64B',
    name: 'execute in-thread metered, no store',
    baseline: 'raw V8 call',
    iterations: N,
    warmup: WARMUP,
    fn: executeCase('meteredNoStore', 'echo', payload),
  },
  {
    group: 'wasm-echo-64B',
    name: 'execute in-thread metered, no store, cpuAccounting: true',
    baseline: 'raw V8 call',
    iterations: N,
    warmup: WARMUP,
    fn: executeCase('meteredNoStoreCpu', 'echo', payload),
  },
  {
    group: 'wasm-echo-64B',
    name: 'execute in-thread metered + receipt log',
    baseline: 'raw V8 call',
    iterations: N,
    warmup: WARMUP,
    fn: executeCase('meteredStore', 'echo', payload),
  },
  {
    group: 'wasm-echo-64B',
    name: 'execute in-thread, no store',
    baseline: 'raw V8 call',
    iterations: N,
    warmup: WARMUP,
    fn: executeCase('inThreadNoStore', 'echo', payload),
  },
  {
    group: 'wasm-echo-64B',
    name: 'execute in-thread + receipt log',
    baseline: 'raw V8 call',
    iterations: N,
    warmup: WARMUP,
    fn: executeCase('inThreadStore', 'echo', payload),
  },
  {
    group: 'wasm-echo-64B',
    name: 'execute worker + receipt log',
    baseline: 'raw V8 call',
    iterations: N,
    warmup: WARMUP,
    fn: executeCase('workerStore', 'echo', payload),
  },
];

// ---------------------------------------------------------------- WASM prepare + fuel metering

const kernelsBytes = new Uint8Array(readFileSync(packagePath('wasm', 'kernels.wasm')));
const kernelsInfo = parseModule(kernelsBytes);
{
  const spec = new Sandbox({ backend: 'wasm', limits: meteredLimits }).spec;
  const kernelsBuild = createWasmBuild(kernelsBytes, { name: 'kernels' });
  const cached = new WasmBackend({ path: 'in-thread' });
  await cached.prepare(kernelsBuild, spec);
  const n = values.quick ? 50 : 300;
  cases.push(
    {
      group: 'wasm-prepare',
      name: 'instrument kernels.wasm',
      iterations: n,
      warmup: 20,
      fn: () => instrument(kernelsBytes, kernelsInfo, { fuel: 1e6, callDepth: 1024, nanCanonical: true }),
    },
    {
      group: 'wasm-prepare',
      name: 'prepare cold: parse + instrument + compile',
      iterations: n,
      warmup: 20,
      // A fresh backend each time: nothing cached.
      fn: () => new WasmBackend({ path: 'in-thread' }).prepare(kernelsBuild, spec),
    },
    {
      group: 'wasm-prepare',
      name: 'prepare cached',
      baseline: 'prepare cold: parse + instrument + compile',
      iterations: n,
      warmup: 20,
      fn: () => cached.prepare(kernelsBuild, spec),
    },
  );
}

function u32s(...xs: number[]): Uint8Array {
  const out = new Uint8Array(4 * xs.length);
  const view = new DataView(out.buffer);
  for (const [i, x] of xs.entries()) view.setUint32(4 * i, x >>> 0, true);
  return out;
}

// Each kernel sized to run ~0.3-2 ms uninstrumented.
const KERNELS: readonly (readonly [string, Uint8Array])[] = [
  ['fib', u32s(24)],
  ['hash', u32s(300, 0, 0, 0, 0, 0, 0, 0)],
  ['matmul', u32s(48, 1)],
  ['sort', u32s(16384, 7)],
  ['interp', u32s(30_000)],
  ['collatz', u32s(1_000, 27)],
];
const FUEL_BASE = 'uninstrumented';
const FUEL_VARIANTS = ['thunderpac fuel+depth', 'thunderpac fuel+depth+NaN', 'wasm-metering'] as const;
{
  const require = createRequire(import.meta.url);
  const wasmMetering = require('wasm-metering') as {
    meterWASM(wasm: Uint8Array, opts: { meterType: 'i32' | 'i64' }): Uint8Array;
  };
  let gas = 0;
  const meteringImports = {
    metering: {
      usegas: (g: number) => {
        gas += g;
      },
    },
  };
  const maxFuel = Number.MAX_SAFE_INTEGER;
  const variants: Record<string, { bytes: Uint8Array; imports: object }> = {
    [FUEL_BASE]: { bytes: kernelsBytes, imports: {} },
    'thunderpac fuel+depth': {
      bytes: instrument(kernelsBytes, kernelsInfo, { fuel: maxFuel, callDepth: 1024, nanCanonical: false })
        .bytes,
      imports: {},
    },
    'thunderpac fuel+depth+NaN': {
      bytes: instrument(kernelsBytes, kernelsInfo, { fuel: maxFuel, callDepth: 1024, nanCanonical: true })
        .bytes,
      imports: {},
    },
    'wasm-metering': {
      bytes: wasmMetering.meterWASM(kernelsBytes, { meterType: 'i32' }),
      imports: meteringImports,
    },
  };
  const iterations = values.quick ? 20 : 150;
  for (const [entry, input] of KERNELS) {
    for (const [variant, { bytes, imports }] of Object.entries(variants)) {
      const exports = new WA.Instance(new WA.Module(bytes), imports).exports as AbiExports;
      cases.push({
        group: `wasm-fuel-${entry}`,
        name: variant,
        baseline: variant === FUEL_BASE ? undefined : FUEL_BASE,
        iterations,
        warmup: Math.ceil(iterations / 5),
        fn: () => rawAbiCall(exports, entry, input),
      });
    }
  }
  void gas;
}

// XDP: the same program through the addon directly and through the runtime.
const xdpObjectBytes = readFileSync(packagePath('bpf', 'xdp_verdict.bpf.o'));
let rawObject: BpfObject | undefined;
try {
  rawObject = BpfObject.open(xdpObjectBytes, { objectName: 'bench_raw' }).load();
} catch (err) {
  process.stderr.write(`skipping xdp cases: ${(err as Error).message}\n`);
}
if (rawObject) {
  const { EbpfBackend } = await import('../src/backends/ebpf/backend.js');
  const ebpf = new EbpfBackend();
  const xdpExecutor = new Executor({ backends: [ebpf as Backend], store });
  const xdpSandbox = new Sandbox({ backend: 'ebpf' });
  const xdpBuild = createBpfBuild(xdpObjectBytes, { name: 'xdp_verdict' });
  const packet = buildUdpFrame({ srcPort: 1234, dstPort: 9, payload: new Uint8Array(22) });
  const obj = rawObject;
  cases.push(
    {
      group: 'xdp-drop-udp',
      name: 'raw addon test-run',
      iterations: N,
      warmup: WARMUP,
      fn: () => obj.testRun('xdp_drop_udp', packet),
    },
    {
      group: 'xdp-drop-udp',
      name: 'execute + receipt log',
      baseline: 'raw addon test-run',
      iterations: N,
      warmup: WARMUP,
      fn: async () => {
        const r = await xdpExecutor.execute(xdpSandbox, {
          build: xdpBuild,
          entry: 'xdp_drop_udp',
          input: { kind: 'packet', bytes: packet },
        });
        xdpSandbox.reset();
        if (r.status !== 'completed') throw new Error(`bench execution failed: ${r.error?.message}`);
      },
    },
  );
}

const results = [];
const selected = cases.filter((c) => values.only === undefined || c.group.startsWith(values.only));
for (const group of new Set(selected.map((c) => c.group))) {
  const inGroup = selected.filter((c) => c.group === group);
  if (INTERLEAVED_GROUPS.has(group) || group.startsWith('wasm-fuel-')) {
    process.stderr.write(`  ${group}: ${inGroup.length} cases, interleaved …\n`);
    results.push(...(await measureInterleaved(inGroup)));
    continue;
  }
  for (const c of inGroup) {
    process.stderr.write(`  ${c.group} / ${c.name} …\n`);
    results.push(await measure(c));
  }
}
const final = withRatios(results);
printTable(final);

// Fuel overhead: geometric mean over the kernels of each variant's p50 ratio to uninstrumented.
const fuelOverhead: Record<string, number> = {};
for (const variant of FUEL_VARIANTS) {
  const ratios = final
    .filter((r) => r.group.startsWith('wasm-fuel-') && r.name === variant && r.ratioP50 !== null)
    .map((r) => r.ratioP50!);
  if (ratios.length > 0) {
    fuelOverhead[variant] = Math.exp(ratios.reduce((a, r) => a + Math.log(r), 0) / ratios.length);
  }
}
if (Object.keys(fuelOverhead).length > 0) {
  process.stdout.write('\nfuel overhead, geometric mean of p50 ratios over the kernels:\n');
  for (const [variant, g] of Object.entries(fuelOverhead)) {
    process.stdout.write(`  ${variant.padEnd(28)} ${g.toFixed(3)}×\n`);
  }
}

const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.versions.node,
  v8: process.versions.v8,
  date: new Date().toISOString(),
};
const out = values.out ?? packagePath('bench', 'results', 'latest.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ machine, iterations: N, results: final, fuelOverhead }, null, 2)}\n`);
process.stdout.write(`\n${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; results in ${out}\n`);

rawObject?.close();
store.close();
await inThread.close();
await worker.close();
await auto.close();
rmSync(storeDir, { recursive: true, force: true });
