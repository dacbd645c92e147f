/**
 * `npm run bench:daemon` — what the daemon adds over the same execution in-process, in one run.
 *
 *   node dist/bench/daemon.js [--quick] [--rounds N] [--concurrency N] [--log-level L] [--out FILE]
 *                             [--cpu-prof DIR]   (profile the daemon process)
 *
 * The bench starts `thunderpac daemon` (dist/, a child process) on a temp socket and store, and
 * in this process a Thunderpac on a temp store of its own (both keep the receipt log), then:
 *
 *   wasm-echo-64B   echo of 64 bytes, fuel-metered (so in-thread in both): Thunderpac.execute
 *                   in-process (baseline) vs POST /v1/executions over the unix socket
 *   onnx-mlp-b1     one mlp row: Thunderpac.execute in-process with the daemon's own sandbox
 *                   options (baseline) vs POST /v2/models/mlp/infer (KServe v2 JSON tensors)
 *   http-floor      GET /v2/health/live: the round trip with no execution behind it, against a
 *                   bare node:http server process (no framework) on its own socket (baseline)
 *
 * Latency at concurrency 1: each round measures a group's cases interleaved (harness
 * measureInterleaved, 10 turns), `--rounds` rounds; p50 and p99 are the median over the
 * rounds, the spread is the smallest and largest round p50. The client is node:http with a
 * keep-alive Agent (one connection at concurrency 1), in this process: its cost is counted,
 * as any caller's would be. Throughput at `--concurrency` N: N requests in flight (N sandboxes
 * in-process), requests completed per second, best of the rounds.
 * The daemon logs at `--log-level` (default info, as deployed) to a file.
 * Writes JSON (default bench/results/daemon-latest.json).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ONNX_ENTRY, onnxDeterminismFlags } from '../src/backends/onnx/backend.js';
import { defaultModelDir, ModelRegistry } from '../src/backends/onnx/registry.js';
import { tensorsFromJson } from '../src/backends/onnx/tensors-json.js';
import { createWasmBuild } from '../src/backends/wasm/backend.js';
import { packagePath } from '../src/runtime/package-root.js';
import type { Sandbox, SandboxOptions } from '../src/runtime/sandbox.js';
import type { Input } from '../src/runtime/types.js';
import { Thunderpac } from '../src/thunderpac.js';
import { type CaseSpec, measureInterleaved } from './harness.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    concurrency: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    /** Profile the daemon: node --cpu-prof into this directory. */
    'cpu-prof': { type: 'string' },
    out: { type: 'string' },
  },
});
const quick = values.quick;
const ROUNDS = Number(values.rounds ?? (quick ? 2 : 5));
const CONCURRENCY = Number(values.concurrency ?? 16);
const ITER = { wasm: quick ? 1_000 : 5_000, onnx: quick ? 500 : 3_000, floor: quick ? 1_000 : 5_000 };
const WARMUP = quick ? 200 : 1_000;

// ---------------------------------------------------------------- the daemon, a child process

const dir = mkdtempSync(join(tmpdir(), 'tp-bench-daemon-'));
const socket = join(dir, 'd.sock');
const logFile = join(dir, 'daemon.log');
let daemon: ChildProcess | null = null;
// However the bench ends (an error included), the daemon and the temp dir go with it.
process.on('exit', () => {
  daemon?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function startDaemon(): Promise<void> {
  const log = openSync(logFile, 'a');
  daemon = spawn(
    process.execPath,
    [
      ...(values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof']] : []),
      packagePath('bin', 'thunderpac.js'),
      'daemon',
      '--socket',
      socket,
      '--store',
      join(dir, 'daemon-store'),
      '--log-level',
      values['log-level'],
    ],
    { stdio: ['ignore', log, log] },
  );
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (daemon.exitCode !== null) throw new Error(`daemon exited: ${readFileSync(logFile, 'utf8')}`);
    try {
      if ((await call('GET', '/v2/health/ready')).status === 200) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`daemon not ready in 30 s: ${readFileSync(logFile, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopDaemon(): Promise<void> {
  const d = daemon;
  daemon = null;
  if (!d || d.exitCode !== null) return;
  const exited = new Promise((r) => d.once('exit', r));
  d.kill('SIGTERM');
  const timer = setTimeout(() => d.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/**
 * The transport floor: a bare node:http server (no framework, no hooks, no logging) in its own
 * process on its own unix socket, answering every request with a constant JSON body. What any
 * Node daemon on a unix socket costs with this client, measured in the same run.
 */
const rawSocket = join(dir, 'raw.sock');
const RAW_SERVER = `
const http = require('node:http');
http.createServer((req, res) => {
  req.resume();
  req.on('end', () => { res.setHeader('content-type', 'application/json'); res.end('{"live":true}'); });
}).listen(process.argv[1], () => process.send('up'));`;
let raw: ChildProcess | null = null;
process.on('exit', () => raw?.kill('SIGKILL'));

async function startRawServer(): Promise<void> {
  raw = spawn(process.execPath, ['-e', RAW_SERVER, rawSocket], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise((resolve, reject) => {
    raw!.once('message', resolve);
    raw!.once('exit', (code) => reject(new Error(`raw server exited ${code}`)));
  });
}

// ---------------------------------------------------------------- the client

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

interface Reply {
  readonly status: number;
  readonly body: string;
}

/** One request over the unix socket on the keep-alive agent. */
function call(method: string, path: string, body?: Buffer, socketPath = socket): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method,
        path,
        agent,
        headers: body ? { 'content-type': 'application/json', 'content-length': body.byteLength } : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function callOk(method: string, path: string, body?: Buffer, socketPath = socket): Promise<Reply> {
  const r = await call(method, path, body, socketPath);
  if (r.status !== 200 && r.status !== 201) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
  return r;
}

// ---------------------------------------------------------------- the cases

interface Pair {
  readonly group: string;
  readonly iterations: number;
  /** In-process: one call on the given sandbox (one sandbox per concurrent caller). */
  readonly inProcess: (sandbox: Sandbox) => Promise<unknown>;
  readonly sandboxOptions: SandboxOptions;
  readonly daemonLabel: string;
  readonly daemon: () => Promise<unknown>;
}

const tp = await Thunderpac.open({ store: join(dir, 'in-process-store') });
await startDaemon();
await startRawServer();

// WASM echo: the same module uploaded to the daemon and built here.
const echoBytes = readFileSync(packagePath('wasm', 'echo.wasm'));
const echoBuild = createWasmBuild(echoBytes, { name: 'echo.wasm' });
const uploaded = JSON.parse(
  (
    await callOk(
      'POST',
      '/v1/builds',
      Buffer.from(JSON.stringify({ kind: 'wasm', name: 'echo.wasm', base64: echoBytes.toString('base64') })),
    )
  ).body,
) as { id: string };
if (uploaded.id !== echoBuild.id)
  process.stderr.write(`note: daemon build ${uploaded.id}, in-process ${echoBuild.id}\n`);
const payload = new Uint8Array(64).fill(7);
const echoInput: Input = { kind: 'bytes', bytes: payload };
// Fuel-metered: the in-thread path in both (no worker hop to hide the daemon's cost behind).
const wasmLimits = { timeoutMs: 1_000, memoryMb: 16, fuel: 1_000_000 };
const executeBody = Buffer.from(
  JSON.stringify({
    build: uploaded.id,
    entry: 'echo',
    input: { kind: 'bytes', base64: Buffer.from(payload).toString('base64') },
    limits: wasmLimits,
  }),
);

// ONNX mlp, one row: the daemon's sandbox options (models.ts) in-process too.
const reg = new ModelRegistry({ dir: defaultModelDir() });
const mlp = reg.get('mlp');
const mlpBuild = await reg.buildOf(mlp);
const mlpRow = mlp.sample!.inputs.x!.data.slice(0, 4);
const mlpInput: Input = {
  kind: 'tensors',
  tensors: tensorsFromJson({ x: { dtype: 'float32', shape: [1, 4], data: mlpRow } }),
};
const inferBody = Buffer.from(
  JSON.stringify({ inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: mlpRow }] }),
);

const pairs: Pair[] = [
  {
    group: 'wasm-echo-64B',
    iterations: ITER.wasm,
    sandboxOptions: { backend: 'wasm', limits: wasmLimits },
    inProcess: async (sandbox) => {
      const r = await tp.execute(sandbox, { build: echoBuild, input: echoInput, entry: 'echo' });
      if (r.status !== 'completed') throw new Error(`echo failed: ${r.error?.message}`);
    },
    daemonLabel: 'daemon POST /v1/executions',
    daemon: () => callOk('POST', '/v1/executions', executeBody),
  },
  {
    group: 'onnx-mlp-b1',
    iterations: ITER.onnx,
    sandboxOptions: { backend: 'onnx', determinism: { flags: onnxDeterminismFlags(mlpBuild) } },
    inProcess: async (sandbox) => {
      const r = await tp.execute(sandbox, { build: mlpBuild, input: mlpInput, entry: ONNX_ENTRY });
      if (r.status !== 'completed') throw new Error(`mlp failed: ${r.error?.message}`);
    },
    daemonLabel: 'daemon POST /v2/models/mlp/infer',
    daemon: () => callOk('POST', '/v2/models/mlp/infer', inferBody),
  },
];

// ---------------------------------------------------------------- latency, interleaved rounds

interface RoundCase {
  p50Ns: number;
  p99Ns: number;
  opsPerSec: number;
}
const latency = new Map<string, RoundCase[]>();
const record = (key: string, r: RoundCase) => {
  const list = latency.get(key) ?? [];
  list.push(r);
  latency.set(key, list);
};

for (let round = 0; round < ROUNDS; round++) {
  for (const p of pairs) {
    const sandbox = tp.sandbox(p.sandboxOptions);
    const specs: CaseSpec[] = [
      {
        name: 'in-process',
        group: p.group,
        iterations: p.iterations,
        warmup: round === 0 ? WARMUP : 100,
        fn: () => p.inProcess(sandbox),
      },
      {
        name: 'daemon',
        group: p.group,
        iterations: p.iterations,
        warmup: round === 0 ? WARMUP : 100,
        fn: p.daemon,
      },
    ];
    for (const r of await measureInterleaved(specs, 10)) record(`${p.group}|${r.name}`, r);
  }
  const floor = await measureInterleaved(
    [
      {
        name: 'in-process',
        group: 'http-floor',
        iterations: ITER.floor,
        warmup: round === 0 ? WARMUP : 100,
        fn: () => callOk('GET', '/v2/health/live', undefined, rawSocket),
      },
      {
        name: 'daemon',
        group: 'http-floor',
        iterations: ITER.floor,
        warmup: round === 0 ? WARMUP : 100,
        fn: () => callOk('GET', '/v2/health/live'),
      },
    ],
    10,
  );
  for (const r of floor) record(`http-floor|${r.name}`, r);
  process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
}

// ---------------------------------------------------------------- throughput at concurrency N

async function throughput(
  n: number,
  total: number,
  one: (worker: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, async (_, w) => {
      while (next < total) {
        next++;
        await one(w);
      }
    }),
  );
  return total / ((performance.now() - t0) / 1e3);
}

const tput = new Map<string, number>();
for (const p of pairs) {
  const sandboxes = Array.from({ length: CONCURRENCY }, () => tp.sandbox(p.sandboxOptions));
  for (let round = 0; round < Math.max(2, Math.ceil(ROUNDS / 2)); round++) {
    const a = await throughput(CONCURRENCY, p.iterations, (w) => p.inProcess(sandboxes[w]!));
    const b = await throughput(CONCURRENCY, p.iterations, () => p.daemon());
    tput.set(`${p.group}|in-process`, Math.max(tput.get(`${p.group}|in-process`) ?? 0, a));
    tput.set(`${p.group}|daemon`, Math.max(tput.get(`${p.group}|daemon`) ?? 0, b));
  }
}

// ---------------------------------------------------------------- CPU per request

/**
 * CPU time of every thread of a process, ns (schedstat: scheduler-exact, unlike the 10 ms
 * ticks of /proc/PID/stat). On a shared machine latency is mostly waiting for a core; CPU
 * per request is what the daemon itself spends, and it holds still when the load moves.
 */
function processCpuNs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return ns;
}

interface CpuRow {
  group: string;
  /** In-process execution, or (http-floor) the bare server process. */
  inProcessNs: number;
  daemonNs: number;
  clientNs: number;
}
const cpuRows: CpuRow[] = [];
const CPU_N = quick ? 1_000 : 3_000;
const selfCpuNs = () => processCpuNs(process.pid);
for (const p of [...pairs, null]) {
  const group = p ? p.group : 'http-floor';
  const daemonFn = p ? p.daemon : () => callOk('GET', '/v2/health/live');
  const best = { inProcessNs: Number.POSITIVE_INFINITY, daemonNs: Number.POSITIVE_INFINITY, clientNs: 0 };
  for (let round = 0; round < 3; round++) {
    if (p) {
      const sandbox = tp.sandbox(p.sandboxOptions);
      for (let i = 0; i < 100; i++) await p.inProcess(sandbox);
      const c0 = selfCpuNs();
      for (let i = 0; i < CPU_N; i++) await p.inProcess(sandbox);
      best.inProcessNs = Math.min(best.inProcessNs, (selfCpuNs() - c0) / CPU_N);
    } else {
      // The floor's baseline: the bare server's own CPU per request.
      for (let i = 0; i < 100; i++) await callOk('GET', '/', undefined, rawSocket);
      const r0 = processCpuNs(raw!.pid!);
      for (let i = 0; i < CPU_N; i++) await callOk('GET', '/', undefined, rawSocket);
      best.inProcessNs = Math.min(best.inProcessNs, (processCpuNs(raw!.pid!) - r0) / CPU_N);
    }
    for (let i = 0; i < 100; i++) await daemonFn();
    const d0 = processCpuNs(daemon!.pid!);
    const c0 = selfCpuNs();
    for (let i = 0; i < CPU_N; i++) await daemonFn();
    const d = (processCpuNs(daemon!.pid!) - d0) / CPU_N;
    if (d < best.daemonNs) {
      best.daemonNs = d;
      best.clientNs = (selfCpuNs() - c0) / CPU_N;
    }
  }
  cpuRows.push({
    group,
    inProcessNs: best.inProcessNs,
    daemonNs: best.daemonNs,
    clientNs: best.clientNs,
  });
}

// ---------------------------------------------------------------- report

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const us = (ns: number) => `${(ns / 1e3).toFixed(1)} µs`;

interface Row {
  group: string;
  case: string;
  p50Ns: number;
  p50MinNs: number;
  p50MaxNs: number;
  p99Ns: number;
  opsPerSecC1: number;
  opsPerSecCN: number | null;
  ratioP50: number | null;
  addedP50Ns: number | null;
}
const rows: Row[] = [];
for (const [key, rs] of latency) {
  const [group, name] = key.split('|') as [string, string];
  const p50s = rs.map((r) => r.p50Ns);
  const row: Row = {
    group,
    case:
      name === 'in-process'
        ? group === 'http-floor'
          ? 'bare node:http server process (no framework)'
          : 'in-process Thunderpac.execute'
        : group === 'http-floor'
          ? 'daemon GET /v2/health/live'
          : pairs.find((p) => p.group === group)!.daemonLabel,
    p50Ns: median(p50s),
    p50MinNs: Math.min(...p50s),
    p50MaxNs: Math.max(...p50s),
    p99Ns: median(rs.map((r) => r.p99Ns)),
    opsPerSecC1: Math.round(median(rs.map((r) => r.opsPerSec))),
    opsPerSecCN: tput.has(key) ? Math.round(tput.get(key)!) : null,
    ratioP50: null,
    addedP50Ns: null,
  };
  if (name === 'daemon' && latency.has(`${group}|in-process`)) {
    // Per round, daemon p50 over (and minus) the in-process p50 of the same round.
    const base = latency.get(`${group}|in-process`)!;
    row.ratioP50 = median(rs.map((r, i) => r.p50Ns / base[i]!.p50Ns));
    row.addedP50Ns = median(rs.map((r, i) => r.p50Ns - base[i]!.p50Ns));
  }
  rows.push(row);
}

const head = [
  'group',
  'case',
  'p50 (spread)',
  'p99',
  'req/s c=1',
  `req/s c=${CONCURRENCY}`,
  'p50 vs baseline',
];
const cells = rows.map((r) => [
  r.group,
  r.case,
  `${us(r.p50Ns)} (${us(r.p50MinNs)}–${us(r.p50MaxNs)})`,
  us(r.p99Ns),
  r.opsPerSecC1.toLocaleString('en-US'),
  r.opsPerSecCN === null ? '' : r.opsPerSecCN.toLocaleString('en-US'),
  r.ratioP50 === null ? '' : `${r.ratioP50.toFixed(2)}×, +${us(r.addedP50Ns!)}`,
]);
const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i]!)).join('  ');
process.stdout.write(`${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
for (const c of cells) process.stdout.write(`${line(c)}\n`);

process.stdout.write(
  '\nCPU time per request (best of 3 × ' + CPU_N + ', all threads, from /proc/PID/task/*/schedstat):\n',
);
for (const r of cpuRows) {
  process.stdout.write(
    `  ${r.group.padEnd(14)} ${r.group === 'http-floor' ? 'bare server' : 'in-process'} ${us(r.inProcessNs)}, daemon process ${us(r.daemonNs)} (+${us(r.daemonNs - r.inProcessNs)}), client ${us(r.clientNs)}\n`,
  );
}

const machine = {
  cpu: cpus()[0]?.model,
  cores: cpus().length,
  memGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  loadavg: loadavg(),
};
process.stdout.write(
  `\n${machine.cpu} × ${machine.cores}, ${machine.memGiB} GiB, Node ${machine.node}, load average ${machine.loadavg.map((l) => l.toFixed(2)).join(' ')}; ${ROUNDS} rounds, daemon log level ${values['log-level']}\n`,
);
const out = values.out ?? join('bench', 'results', 'daemon-latest.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ date: new Date().toISOString(), machine, concurrency: CONCURRENCY, rounds: ROUNDS, logLevel: values['log-level'], rows, cpu: cpuRows }, null, 2)}\n`,
);

agent.destroy();
(raw as ChildProcess | null)?.kill('SIGTERM');
await stopDaemon();
await tp.close();
rmSync(dir, { recursive: true, force: true });
