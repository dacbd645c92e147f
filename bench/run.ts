/**
 * `npm run bench` — thunderpac against the raw engines it wraps, measured in one run.
 *
 *   node dist/bench/run.js [--quick] [--out FILE]
 *
 * Groups and their baselines:
 *   wasm-echo-64B   raw V8 call of the same export (instance reused) vs a fresh raw instance
 *                   per call vs a full execute() on the in-thread and worker paths
 *   xdp-drop-udp    raw addon BPF_PROG_TEST_RUN of the same program vs a full execute()
 * Prints p50 / p99 / throughput and p50 ratios; writes JSON (default bench/results/latest.json).
 */

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { createBpfBuild } from '../src/backends/ebpf/backend.js';
import { BpfObject } from '../src/backends/ebpf/object.js';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/backend.js';
import { Executor } from '../src/runtime/executor.js';
import { packagePath } from '../src/runtime/package-root.js';
import { buildUdpFrame } from '../src/runtime/packets.js';
import { Sandbox } from '../src/runtime/sandbox.js';
import type { Backend, Input } from '../src/runtime/types.js';
import { Store } from '../src/store/store.js';
import { type CaseSpec, measure, printTable, withRatios } from './harness.js';

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, out: { type: 'string' } },
});
const N = values.quick ? 2_000 : 20_000;
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
};
const limits = { timeoutMs: 1_000, memoryMb: 16 };
const sandboxes = {
  inThreadNoStore: new Sandbox({ backend: 'wasm', limits }),
  inThreadStore: new Sandbox({ backend: 'wasm', limits }),
  workerStore: new Sandbox({ backend: 'wasm', limits }),
};

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
for (const c of cases) {
  process.stderr.write(`  ${c.group} / ${c.name} …\n`);
  results.push(await measure(c));
}
const final = withRatios(results);
printTable(final);

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
writeFileSync(out, `${JSON.stringify({ machine, iterations: N, results: final }, null, 2)}\n`);
process.stdout.write(`\n${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; results in ${out}\n`);

rawObject?.close();
store.close();
await inThread.close();
await worker.close();
rmSync(storeDir, { recursive: true, force: true });
