/**
 * `npm run bench:p4` — the built-in behavioral switch on three programs, in one run.
 *
 *   npm run bench:p4 [-- --quick] [-- --out FILE] [-- --baseline COMMIT | --no-baseline]
 *                    [-- --only PROGRAM] [-- --switch-only]
 *
 * `--only` runs one program; `--switch-only` skips the execute() cases (for profiling with
 * `node --cpu-prof dist/bench/p4.js --only l3_acl_router --switch-only --no-baseline`).
 *
 * It builds with tsc and runs `node dist/bench/p4.js`, not vite-node: vite-node rewrites every
 * imported call into a property load on a module object, which halves the switch's speed on
 * simple programs (l2_switch p50 543 ns under vite-node, 261 ns from the build, same run).
 *
 * Programs (p4/samples, each proven by an STF test in test/p4/):
 *   l2_switch        simple forwarding: exact match on ingress port, then on destination MAC
 *   l3_acl_router    L3 LPM routing (1000 routes, 4 prefix lengths) behind a 20-entry ACL
 *                    (ternary addresses/protocol, range port), TTL, IPv4 checksum verify+update
 *   mpls_vlan_stack  parser-heavy: 2 VLAN tags, 3 MPLS labels, IPv4 + 8 bytes of options
 *
 * For each: compile time (P4 source → BMv2 JSON; JSON → switch), then packets through
 *   switch.process   the switch alone; 256 distinct packets cycled, timed in batches of 32
 *                    (performance.now() costs about as much as a packet), so p50/p99 are of
 *                    per-packet time averaged over a batch; throughput is packets / wall time
 *   before           the same, on the switch as of commit BASELINE (read with `git show`,
 *                    transpiled into node_modules/.cache), measured in the same run — there is
 *                    no reference simple_switch on this machine
 *   execute()        one packet per call through the full executor (validate, hash, run, seal
 *                    a receipt), without a store and with the receipt log
 * Every packet of the workload is first run through both switches and their outputs compared.
 * Prints tables; writes JSON (default bench/results/p4-latest.json).
 */

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import ts from 'typescript';
import { createP4Build, type P4ControlPlane } from '../src/backends/p4/backend.js';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';
import { packagePath } from '../src/runtime/package-root.js';
import { LatencyHistogram } from '../src/telemetry/latency.js';
import { Thunderpac } from '../src/thunderpac.js';
import { type CaseResult, type CaseSpec, measure, printTable, withRatios } from './harness.js';

/** The switch before the number/BigInt split (ef54d0c: every field a BigInt). */
const DEFAULT_BASELINE = 'ef54d0c';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    baseline: { type: 'string', default: DEFAULT_BASELINE },
    'no-baseline': { type: 'boolean', default: false },
    only: { type: 'string' },
    'switch-only': { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const PACKETS = quick ? 100_000 : 1_000_000;
const BATCH = 32;
const EXEC_N = quick ? 2_000 : 20_000;

interface SwitchLike {
  process(bytes: Uint8Array, port: number): { port: number; bytes: Uint8Array }[];
}
type SwitchCtor = new (
  json: unknown,
) => SwitchLike & {
  addEntry(table: string, spec: unknown): number;
  setDefaultAction(table: string, action: string, args?: readonly (bigint | number)[]): void;
};

// ---------------------------------------------------------------- the baseline switch

/**
 * The switch's sources at `commit`, transpiled by TypeScript into node_modules/.cache and
 * imported, so the comparison runs in the same process, on the same packets.
 */
async function loadBaseline(commit: string): Promise<SwitchCtor | null> {
  const root = packagePath();
  const files = ['switch', 'bits', 'state', 'tables', 'errors'];
  const dir = join(root, 'node_modules', '.cache', 'thunderpac-p4-baseline', commit);
  try {
    mkdirSync(dir, { recursive: true });
    const runtimeErrors = pathToFileURL(join(root, 'dist', 'src', 'runtime', 'errors.js')).href;
    for (const f of files) {
      const source = execFileSync('git', ['show', `${commit}:src/backends/p4/${f}.ts`], {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const js = ts.transpileModule(source, {
        compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
      }).outputText;
      // its one import outside the folder goes to the build; the others to the .mjs copies
      const fixed = js
        .replaceAll("'../../runtime/errors.js'", `'${runtimeErrors}'`)
        .replace(/from '\.\/(\w+)\.js'/g, "from './$1.mjs'");
      writeFileSync(join(dir, `${f}.mjs`), fixed);
    }
    const mod = (await import(pathToFileURL(join(dir, 'switch.mjs')).href)) as {
      BehavioralSwitch: SwitchCtor;
    };
    return mod.BehavioralSwitch;
  } catch (err) {
    process.stderr.write(`no baseline (${commit}): ${(err as Error).message.split('\n')[0]}\n`);
    return null;
  }
}

// ---------------------------------------------------------------- workloads

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

function ipv4Header(src: number, dst: number, proto: number, payloadLen: number, options = 0): Uint8Array {
  const ihl = 5 + options / 4;
  const h = new Uint8Array(ihl * 4);
  const dv = new DataView(h.buffer);
  h[0] = 0x40 | ihl;
  dv.setUint16(2, h.length + payloadLen);
  dv.setUint16(4, 0x1234);
  h[8] = 64;
  h[9] = proto;
  dv.setUint32(12, src);
  dv.setUint32(16, dst);
  for (let i = 20; i < h.length; i++) h[i] = 1; // NOP options
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += (h[i]! << 8) | h[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  dv.setUint16(10, ~sum & 0xffff);
  return h;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function eth(dst: number, src: number, type: number): Uint8Array {
  const b = new Uint8Array(14);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, Math.floor(dst / 2 ** 32));
  dv.setUint32(2, dst % 2 ** 32);
  dv.setUint16(6, Math.floor(src / 2 ** 32));
  dv.setUint32(8, src % 2 ** 32);
  dv.setUint16(12, type);
  return b;
}

const u16 = (...v: number[]): Uint8Array => {
  const b = new Uint8Array(v.length * 2);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < v.length; i++) dv.setUint16(i * 2, v[i]!);
  return b;
};
const u32 = (...v: number[]): Uint8Array => {
  const b = new Uint8Array(v.length * 4);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < v.length; i++) dv.setUint32(i * 4, v[i]!);
  return b;
};

interface Workload {
  readonly name: string;
  readonly file: string;
  readonly controlPlane: P4ControlPlane;
  readonly packets: { bytes: Uint8Array; port: number }[];
}

function l2Workload(): Workload {
  const r = rng(1);
  const entries: NonNullable<P4ControlPlane['entries']>[number][] = [];
  for (let p = 0; p < 32; p++) entries.push({ table: 'port_enabled', key: [p], action: 'allow' });
  for (let i = 0; i < 1024; i++)
    entries.push({
      table: 'dmac',
      key: [0x020000000000n + BigInt(i)],
      action: 'forward',
      args: [1 + (i % 16)],
    });
  const packets = Array.from({ length: 256 }, () => {
    const i = r() % 1024;
    return {
      bytes: concat(eth(0x020000000000 + i, 0x020000000fff, 0x0800), new Uint8Array(50).fill(7)),
      port: r() % 32,
    };
  });
  return { name: 'l2_switch', file: 'l2_switch.p4', controlPlane: { entries }, packets };
}

function l3Workload(): Workload {
  const r = rng(2);
  const entries: NonNullable<P4ControlPlane['entries']>[number][] = [];
  const route = (value: number, prefixLength: number, port: number) =>
    entries.push({
      table: 'routes',
      key: [{ value, prefixLength }],
      action: 'route',
      args: [0x0a0000000000n + BigInt(port), 0x0b0000000000n, port],
    });
  route(0x0a000000, 8, 1);
  for (let i = 0; i < 150; i++) route((0x0a000000 | (i << 16)) >>> 0, 16, 2 + (i % 8));
  for (let i = 0; i < 800; i++)
    route((0x0a000000 | ((i % 150) << 16) | ((i >> 2) << 8)) >>> 0, 24, 10 + (i % 8));
  for (let i = 0; i < 49; i++) route((0x0a000000 | (i << 16) | 0x0101) >>> 0, 32, 20 + (i % 4));
  const unique = new Map(entries.map((e) => [JSON.stringify(e.key), e]));
  entries.length = 0;
  entries.push(...unique.values());
  // 20 ACL rules: denies for blocked sources and ports, permits above some of them
  for (let i = 0; i < 20; i++) {
    const deny = i % 3 !== 0;
    entries.push({
      table: 'acl',
      key: [
        { value: (0xc0a80000 | (i << 8)) >>> 0, mask: 0xffffff00 },
        { value: 0, mask: 0 },
        { value: i % 2 ? 6 : 17, mask: 0xff },
        { low: 1000 + i * 100, high: 1050 + i * 100 },
      ],
      action: deny ? 'deny' : 'permit',
      priority: 10 + i,
    });
  }
  const packets = Array.from({ length: 256 }, () => {
    const dst = (0x0a000000 | ((r() % 150) << 16) | ((r() % 200) << 8) | (r() % 4)) >>> 0;
    const src = (0xc0a80000 | ((r() % 40) << 8) | 7) >>> 0;
    const proto = r() % 2 ? 6 : 17;
    const l4 = u16(4000, 1000 + (r() % 3000));
    const payload = new Uint8Array(18).fill(9);
    return {
      bytes: concat(
        eth(0x0b0000000000, 0x0c0000000000, 0x0800),
        ipv4Header(src, dst, proto, 22),
        l4,
        payload,
      ),
      port: 1,
    };
  });
  return { name: 'l3_acl_router', file: 'l3_acl_router.p4', controlPlane: { entries }, packets };
}

function mplsWorkload(): Workload {
  const r = rng(3);
  const entries: NonNullable<P4ControlPlane['entries']>[number][] = [];
  for (let l = 0; l < 256; l++)
    entries.push(
      l % 4 === 3
        ? { table: 'lfib', key: [1000 + l], action: 'pop', args: [2] }
        : { table: 'lfib', key: [1000 + l], action: 'swap', args: [5000 + l, 1 + (l % 8)] },
    );
  for (let v = 0; v < 16; v++) entries.push({ table: 'vlan_edge', key: [100 + v], action: 'strip_vlan' });
  const mpls = (label: number, bos: number) => u32(((label << 12) | (bos << 8) | 64) >>> 0);
  const packets = Array.from({ length: 256 }, () => {
    const top = 1000 + (r() % 256);
    return {
      bytes: concat(
        eth(0x0b0000000000, 0x0c0000000000, 0x8100),
        u16(100 + (r() % 32), 0x8100, 200, 0x8847),
        mpls(top, 0),
        mpls(77, 0),
        mpls(78, 1),
        ipv4Header(0x01020304, 0x05060708, 17, 8, 8),
        new Uint8Array(8).fill(3),
      ),
      port: 1,
    };
  });
  return { name: 'mpls_vlan_stack', file: 'mpls_vlan_stack.p4', controlPlane: { entries }, packets };
}

// ---------------------------------------------------------------- measurement

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeMedianMs(n: number, fn: () => unknown): number {
  fn();
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  return median(t);
}

function install(sw: InstanceType<SwitchCtor>, cp: P4ControlPlane): void {
  for (const { table, ...e } of cp.entries ?? []) sw.addEntry(table, e);
}

/**
 * CPU time (user + system, this process) per packet of each switch.process case: on a machine
 * shared with other work, wall-clock throughput falls with the load while the CPU time a
 * packet costs moves much less, so both are reported.
 */
const cpuNsPerPacket = new Map<string, number>();

/** Packets through `sw`, timed per batch of BATCH; per-packet p50/p99 of batch averages. */
function measureSwitch(
  group: string,
  name: string,
  sw: SwitchLike,
  w: Workload,
  baseline?: string,
): CaseResult {
  const pk = w.packets;
  const mask = pk.length - 1;
  for (let i = 0; i < 20_000; i++) sw.process(pk[i & mask]!.bytes, pk[i & mask]!.port);
  const h = new LatencyHistogram();
  const batches = Math.floor(PACKETS / BATCH);
  let k = 0;
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    for (let i = 0; i < BATCH; i++) {
      const p = pk[k++ & mask]!;
      sw.process(p.bytes, p.port);
    }
    h.record(((performance.now() - t0) * 1e6) / BATCH);
  }
  const elapsedS = (performance.now() - start) / 1e3;
  const cpu = process.cpuUsage(cpu0);
  cpuNsPerPacket.set(`${group} ${name}`, ((cpu.user + cpu.system) * 1e3) / (batches * BATCH));
  const s = h.summary();
  return {
    name,
    group,
    baseline: baseline ?? null,
    iterations: batches * BATCH,
    p50Ns: s.p50,
    p99Ns: s.p99,
    meanNs: Math.round(s.mean),
    opsPerSec: Math.round((batches * BATCH) / elapsedS),
    ratioP50: null,
  };
}

function sameOutputs(a: SwitchLike, b: SwitchLike, w: Workload): void {
  const hex = (x: Uint8Array) => Buffer.from(x).toString('hex');
  for (const p of w.packets) {
    const x = a.process(p.bytes, p.port).map((o) => `${o.port}:${hex(o.bytes)}`);
    const y = b.process(p.bytes, p.port).map((o) => `${o.port}:${hex(o.bytes)}`);
    if (x.join() !== y.join())
      throw new Error(`${w.name}: switches disagree on ${hex(p.bytes)}: ${x} vs ${y}`);
  }
}

// ---------------------------------------------------------------- run

const Baseline = values['no-baseline'] ? null : await loadBaseline(values.baseline!);
const workloads = [l2Workload(), l3Workload(), mplsWorkload()].filter(
  (w) => values.only === undefined || w.name === values.only,
);
if (workloads.length === 0) throw new Error(`--only ${values.only}: no such program`);
const compileRows: {
  program: string;
  p4ToJsonMs: number;
  jsonToSwitchMs: number;
  jsonToSwitchBeforeMs: number | null;
}[] = [];
const results: CaseResult[] = [];
const storeDir = mkdtempSync(join(tmpdir(), 'tp-bench-p4-'));
const tpNoStore = await Thunderpac.open({ store: false });
const tpStore = await Thunderpac.open({ store: storeDir });

for (const w of workloads) {
  const source = readFileSync(packagePath('p4', 'samples', w.file), 'utf8');
  const json = compileP4(source, { file: w.file }).bmv2;
  const p4ToJsonMs = timeMedianMs(quick ? 5 : 20, () => compileP4(source, { file: w.file }));
  const jsonToSwitchMs = timeMedianMs(quick ? 10 : 50, () => new BehavioralSwitch(json));
  const jsonToSwitchBeforeMs = Baseline ? timeMedianMs(quick ? 10 : 50, () => new Baseline(json)) : null;
  compileRows.push({ program: w.name, p4ToJsonMs, jsonToSwitchMs, jsonToSwitchBeforeMs });

  const now = new BehavioralSwitch(json);
  install(now as unknown as InstanceType<SwitchCtor>, w.controlPlane);
  const forwarded = w.packets.filter((p) => now.process(p.bytes, p.port).length > 0).length;
  process.stdout.write(`${w.name}: ${forwarded}/${w.packets.length} workload packets leave the switch\n`);
  const group = `p4-${w.name}`;
  let before: CaseResult | null = null;
  if (Baseline) {
    const old = new Baseline(json);
    install(old, w.controlPlane);
    sameOutputs(now, old, w);
    before = measureSwitch(group, `switch.process before (${values.baseline})`, old, w);
  }
  results.push(measureSwitch(group, 'switch.process', now, w, before?.name));
  if (before) results.push(before);

  if (values['switch-only']) continue;
  const build = createP4Build(source, { name: w.name, file: w.file, controlPlane: w.controlPlane });
  const specs: CaseSpec[] = [];
  for (const [name, tp] of [
    ['execute(), no store', tpNoStore],
    ['execute() + receipt log', tpStore],
  ] as const) {
    const sandbox = tp.sandbox({ backend: 'p4' });
    let k = 0;
    specs.push({
      group,
      name,
      baseline: 'switch.process',
      iterations: EXEC_N,
      warmup: quick ? 200 : 2_000,
      fn: async () => {
        const p = w.packets[k++ & (w.packets.length - 1)]!;
        const r = await tp.execute(sandbox, {
          build,
          entry: 'ingress',
          input: { kind: 'packet', bytes: p.bytes, ingressPort: p.port },
        });
        if (r.status !== 'completed') throw new Error(`bench execution failed: ${r.error?.message}`);
      },
    });
  }
  for (const spec of specs) results.push({ ...(await measure(spec)), ratioP50: null });
}
await tpNoStore.close();
await tpStore.close();
rmSync(storeDir, { recursive: true, force: true });

const withBase = withRatios(results);
process.stdout.write('\ncompile time (median)\n');
for (const c of compileRows)
  process.stdout.write(
    `  ${c.program.padEnd(16)} P4 → BMv2 JSON ${c.p4ToJsonMs.toFixed(2)} ms   JSON → switch ${c.jsonToSwitchMs.toFixed(3)} ms` +
      (c.jsonToSwitchBeforeMs === null ? '' : ` (before: ${c.jsonToSwitchBeforeMs.toFixed(3)} ms)`) +
      '\n',
  );
process.stdout.write('\n');
printTable(withBase);
for (const w of workloads) {
  const g = `p4-${w.name}`;
  const now = withBase.find((r) => r.group === g && r.name === 'switch.process');
  const old = withBase.find((r) => r.group === g && r.name.startsWith('switch.process before'));
  if (now && old)
    process.stdout.write(
      `${w.name}: ${(now.opsPerSec / old.opsPerSec).toFixed(1)}× the packets/s of ${values.baseline}\n`,
    );
}

process.stdout.write('\nCPU time per packet (switch.process; packets per CPU-second)\n');
for (const [k, ns] of cpuNsPerPacket)
  process.stdout.write(
    `  ${k.padEnd(50)} ${ns.toFixed(0).padStart(6)} ns   ${(1e9 / ns / 1e6).toFixed(2)} M/s\n`,
  );

const out = values.out ?? join(packagePath(), 'bench', 'results', 'p4-latest.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.version,
      cpu: cpus()[0]?.model,
      cores: cpus().length,
      baseline: Baseline ? values.baseline : null,
      batch: BATCH,
      compile: compileRows,
      cpuNsPerPacket: Object.fromEntries(cpuNsPerPacket),
      loadAverage: loadavg(),
      results: withBase,
    },
    null,
    2,
  ),
);
process.stdout.write(`wrote ${out}\n`);
