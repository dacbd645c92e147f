/**
 * `npm run bench:component` — what a WASI preview 2 command component costs to run, against the
 * preview 1 core command it was made from (`jco new --wasi-command`), in one run.
 *
 *   vite-node bench/wasm-component.ts [-- --quick] [-- --out FILE]
 *
 *   prepare     transpile cold (jco load + transpile + core compile, the first prepare of a
 *               component digest) vs prepare of the same build again (cached transpile and core
 *               modules; only the preview 2 host is made)
 *   run         backend.run of wasm/wasi_cat (stdin upper-cased to stdout, 64 bytes in): the
 *               component on the deterministic preview 2 host vs the preview 1 core command on
 *               the in-thread path, both fuel-metered; the component on its reused instance
 *               (component-instance.ts, the default) and on a fresh instance per execution
 *               (`runner.reuse = false`, what every run cost before instance reuse)
 *   instantiate the component instance alone: cold (first instantiate of the process) vs
 *               cached (a later one: jco glue and core modules already compiled)
 *   execute     a full execute() (validate, hash, run, hash, seal, no store), component vs core
 * Prints a table; writes JSON (default bench/results/wasm-component-latest.json).
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  COMPONENT_ENTRY,
  createComponentBuild,
  createWasmBuild,
  WasmBackend,
} from '../src/backends/wasm/index.js';
import { Executor } from '../src/runtime/executor.js';
import { Sandbox, sandboxSpec } from '../src/runtime/sandbox.js';
import type { Input, RunContext } from '../src/runtime/types.js';
import { type CaseResult, measure, printTable, withRatios } from './harness.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/results/wasm-component-latest.json' },
  },
});
const N = values.quick ? 200 : 2_000;
const WASM = fileURLToPath(new URL('../wasm/', import.meta.url));
const load = (f: string): Uint8Array => new Uint8Array(readFileSync(`${WASM}${f}`));

const fuel = 10_000_000;
const componentSpec = sandboxSpec({ backend: 'wasm', limits: { fuel }, allowedImports: ['wasi:*'] });
const coreSpec = sandboxSpec({
  backend: 'wasm',
  limits: { fuel },
  allowedImports: ['wasi_snapshot_preview1.*'],
});
const componentBuild = createComponentBuild(load('components/wasi_cat.wasm'), { name: 'wasi_cat' });
const coreBuild = createWasmBuild(load('wasi_cat.wasm'), { name: 'wasi_cat' });
const input: Input = { kind: 'bytes', bytes: new TextEncoder().encode('x'.repeat(64)) };
const ctx = (entry: string, sandbox = componentSpec): RunContext => ({ entry, sandbox, usage: {} });

const backend = new WasmBackend({ path: 'in-thread' });
const results: Omit<CaseResult, 'ratioP50'>[] = [];

// Cold: one sample only, it happens once per component digest and process.
const t0 = performance.now();
const componentPrepared = await backend.prepare(componentBuild, componentSpec);
const coldNs = (performance.now() - t0) * 1e6;
// Instantiate alone: the first run of a prepared component makes its instance (cold: the
// process's first, V8 compiles the glue); clear() + run again makes another (cached).
const runner = componentPrepared.component;
if (runner === undefined) throw new Error('not a component');
const instantiateOnce = async (): Promise<number> => {
  runner.clear();
  const t = performance.now();
  await backend.run(componentPrepared, input, ctx(COMPONENT_ENTRY));
  return (performance.now() - t) * 1e6;
};
const instantiateColdNs = await instantiateOnce();
results.push({
  name: 'prepare cold (transpile)',
  group: 'prepare',
  baseline: null,
  iterations: 1,
  p50Ns: coldNs,
  p99Ns: coldNs,
  meanNs: Math.round(coldNs),
  opsPerSec: Math.round(1e9 / coldNs),
});
results.push({
  name: 'instantiate + run, cold',
  group: 'instantiate',
  baseline: null,
  iterations: 1,
  p50Ns: instantiateColdNs,
  p99Ns: instantiateColdNs,
  meanNs: Math.round(instantiateColdNs),
  opsPerSec: Math.round(1e9 / instantiateColdNs),
});
results.push(
  await measure({
    name: 'instantiate + run, cached',
    group: 'instantiate',
    baseline: undefined,
    iterations: Math.min(N, 200),
    warmup: 5,
    fn: instantiateOnce,
  }),
);
results.push(
  await measure({
    name: 'prepare cached',
    group: 'prepare',
    baseline: undefined,
    iterations: Math.min(N, 200),
    warmup: 5,
    fn: () => backend.prepare(componentBuild, componentSpec),
  }),
);

const corePrepared = await backend.prepare(coreBuild, coreSpec);
results.push(
  await measure({
    name: 'core command (preview 1)',
    group: 'run',
    iterations: N,
    warmup: 50,
    fn: () => backend.run(corePrepared, input, ctx('_start', coreSpec)),
  }),
  await measure({
    name: 'component (preview 2)',
    group: 'run',
    baseline: 'core command (preview 1)',
    iterations: N,
    warmup: 50,
    fn: () => backend.run(componentPrepared, input, ctx(COMPONENT_ENTRY)),
  }),
);
// The same runs on a fresh instance each: the cost before instance reuse.
const freshPrepared = await backend.prepare(componentBuild, componentSpec);
const freshRunner = freshPrepared.component;
if (freshRunner === undefined) throw new Error('not a component');
freshRunner.reuse = false;
results.push(
  await measure({
    name: 'component, fresh instance',
    group: 'run',
    baseline: 'core command (preview 1)',
    iterations: Math.min(N, 300),
    warmup: 10,
    fn: () => backend.run(freshPrepared, input, ctx(COMPONENT_ENTRY)),
  }),
);

const executor = new Executor({ backends: [backend], cpuAccounting: false });
const coreSandbox = new Sandbox(coreSpec);
const componentSandbox = new Sandbox(componentSpec);
results.push(
  await measure({
    name: 'core command (preview 1)',
    group: 'execute',
    iterations: N,
    warmup: 50,
    fn: async () => {
      await executor.execute(coreSandbox, { build: coreBuild, entry: '_start', input }, { record: false });
      coreSandbox.reset();
    },
  }),
  await measure({
    name: 'component (preview 2)',
    group: 'execute',
    baseline: 'core command (preview 1)',
    iterations: N,
    warmup: 50,
    fn: async () => {
      const r = { build: componentBuild, entry: COMPONENT_ENTRY, input };
      await executor.execute(componentSandbox, r, { record: false });
      componentSandbox.reset();
    },
  }),
);
await backend.close();

const table = withRatios(results);
printTable(table);
mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(
  values.out,
  `${JSON.stringify({ date: new Date().toISOString(), node: process.versions.node, cpu: cpus()[0]?.model, iterations: N, results: table }, null, 2)}\n`,
);
