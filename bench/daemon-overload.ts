/**
 * `npm run bench:daemon-overload` — the daemon under 5x its capacity for 60 s (issue #11, "Bad
 * input and faults"): do queues and memory stay bounded, is the excess shed with 503s, and what
 * latency do the admitted requests see?
 *
 *   node dist/bench/daemon-overload.js [--seconds 60] [--factor 5] [--max-in-flight N]
 *        [--max-queued N] [--capacity-seconds 5] [--log-level warn] [--out FILE]
 *
 * 1. Starts `thunderpac daemon` (dist/, a child process) on a temp socket and store with the
 *    given limits (the daemon's defaults otherwise), uploads wasm/echo.wasm.
 * 2. Capacity: closed loop, 64 requests in flight, POST /v1/executions (echo of 64 bytes) for
 *    --capacity-seconds: completed requests per second.
 * 3. Overload: open loop at factor x capacity for --seconds: requests are sent on schedule
 *    whether or not earlier ones were answered (up to 2048 connections; the client keeps at most
 *    50,000 outstanding and counts what it could not send). Every second: the daemon's RSS (from
 *    /proc), its queue depth and in-flight (from its /metrics).
 * 4. Reports: offered and achieved rates, statuses (200 admitted, 503 shed), the shed share,
 *    p50/p99 of admitted requests, queue depth and in-flight max, RSS min/max/last and per 5 s,
 *    and that the daemon serves normally afterwards. JSON to bench/results/daemon-overload-latest.json.
 *
 * Not a test (it runs a minute and measures speed); the test
 * daemon-sheds-overload-with-503-and-bounded-queues checks the bounds in seconds.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { packagePath } from '../src/runtime/package-root.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    factor: { type: 'string', default: '5' },
    'capacity-seconds': { type: 'string', default: '5' },
    /** Skip the capacity run: offer factor x this many requests per second. */
    capacity: { type: 'string' },
    'max-in-flight': { type: 'string' },
    'max-queued': { type: 'string' },
    'log-level': { type: 'string', default: 'warn' },
    out: { type: 'string' },
  },
});
const SECONDS = Number(values.seconds);
const FACTOR = Number(values.factor);
const CAPACITY_SECONDS = Number(values['capacity-seconds']);
const MAX_OUTSTANDING = 50_000;
/** Connections the open loop may use; requests beyond wait in the client's agent. */
const CONNECTIONS = 1024;
const OUT = values.out ?? packagePath('bench', 'results', 'daemon-overload-latest.json');

const dir = mkdtempSync(join(tmpdir(), 'tp-overload-'));
const socket = join(dir, 'd.sock');
const logFile = join(dir, 'daemon.log');
let daemon: ChildProcess | null = null;
process.on('exit', () => {
  daemon?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- client

interface Reply {
  readonly status: number;
  readonly body: string;
}

/** `onSocket` is told when the request gets its connection (after any wait in the agent's queue). */
function call(
  agent: http.Agent,
  method: string,
  path: string,
  body?: Buffer,
  onSocket?: () => void,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: socket,
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
    if (onSocket) req.once('socket', onSocket);
    req.end(body);
  });
}

const control = new http.Agent({ keepAlive: true, maxSockets: 2 });

async function startDaemon(): Promise<void> {
  const limits: Record<string, number> = {};
  if (values['max-in-flight']) limits.maxInFlight = Number(values['max-in-flight']);
  if (values['max-queued']) limits.maxQueued = Number(values['max-queued']);
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ limits }));
  const log = openSync(logFile, 'a');
  daemon = spawn(
    process.execPath,
    [
      packagePath('bin', 'thunderpac.js'),
      'daemon',
      '--socket',
      socket,
      '--store',
      join(dir, 'store'),
      '--config',
      config,
      '--log-level',
      values['log-level'] as string,
    ],
    { stdio: ['ignore', log, log] },
  );
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (daemon.exitCode !== null) throw new Error(`daemon exited: ${readFileSync(logFile, 'utf8')}`);
    try {
      if ((await call(control, 'GET', '/v1/health')).status === 200) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`daemon not ready in 30 s: ${readFileSync(logFile, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

function gauge(text: string, name: string): number {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

// ---------------------------------------------------------------- run

await startDaemon();
const pid = daemon!.pid as number;
const limitsText = readFileSync(join(dir, 'config.json'), 'utf8');
const echo = readFileSync(packagePath('wasm', 'echo.wasm'));
const uploaded = await call(
  control,
  'POST',
  '/v1/builds',
  Buffer.from(JSON.stringify({ kind: 'wasm', name: 'echo.wasm', base64: echo.toString('base64') })),
);
if (uploaded.status !== 201) throw new Error(`upload: ${uploaded.status} ${uploaded.body}`);
const build = (JSON.parse(uploaded.body) as { id: string }).id;
const executeBody = Buffer.from(
  JSON.stringify({
    build,
    entry: 'echo',
    input: { kind: 'bytes', base64: Buffer.alloc(64, 7).toString('base64') },
  }),
);

// Capacity: closed loop, 64 in flight, after a warm-up of the same (workers started, code hot).
async function closedLoop(seconds: number): Promise<number> {
  const closed = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let done = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() < end) {
        const r = await call(closed, 'POST', '/v1/executions', executeBody);
        if (r.status !== 200) throw new Error(`capacity run: ${r.status} ${r.body}`);
        done++;
      }
    }),
  );
  closed.destroy();
  return done / seconds;
}
let capacity: number;
if (values.capacity) capacity = Number(values.capacity);
else {
  await closedLoop(Math.min(3, CAPACITY_SECONDS)); // warm-up, not counted
  capacity = await closedLoop(CAPACITY_SECONDS);
}
const target = capacity * FACTOR;
process.stderr.write(`capacity ${capacity.toFixed(0)}/s; offering ${target.toFixed(0)}/s for ${SECONDS} s\n`);

// Overload: open loop.
const open = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
const statuses = new Map<string, number>();
const admittedLatency: number[] = [];
let sent = 0;
let notSent = 0;
let outstanding = 0;
let maxOutstanding = 0;
const samples: { t: number; rssBytes: number; queueDepth: number; inFlight: number; outstanding: number }[] =
  [];
const count = (key: string) => statuses.set(key, (statuses.get(key) ?? 0) + 1);

const start = performance.now();
const end = start + SECONDS * 1000;
// Every second: the daemon's RSS from /proc (never delayed by the daemon's own event loop), and
// a /metrics scrape whose answer is recorded when it comes (it waits behind the overload).
const scrapes: { t: number; answeredAfterS: number; queueDepth: number; inFlight: number }[] = [];
const sampleOnce = () => {
  const t = (performance.now() - start) / 1000;
  samples.push({ t, rssBytes: rssBytes(pid), queueDepth: Number.NaN, inFlight: Number.NaN, outstanding });
  call(control, 'GET', '/metrics').then(
    (m) =>
      scrapes.push({
        t,
        answeredAfterS: (performance.now() - start) / 1000 - t,
        queueDepth: gauge(m.body, 'thunderpac_execution_queue_depth'),
        inFlight: gauge(m.body, 'thunderpac_executions_in_flight'),
      }),
    () => {},
  );
};
sampleOnce();
const sampler = setInterval(sampleOnce, 1000);

await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now();
    if (now >= end) {
      resolve();
      return;
    }
    const due = Math.floor(((now - start) / 1000) * target);
    while (sent + notSent < due) {
      if (outstanding >= MAX_OUTSTANDING) {
        notSent++;
        continue;
      }
      sent++;
      outstanding++;
      if (outstanding > maxOutstanding) maxOutstanding = outstanding;
      let t0 = performance.now();
      call(open, 'POST', '/v1/executions', executeBody, () => {
        t0 = performance.now();
      }).then(
        (r) => {
          outstanding--;
          count(String(r.status));
          if (r.status === 200) admittedLatency.push(performance.now() - t0);
        },
        (err: NodeJS.ErrnoException) => {
          outstanding--;
          count(err.code ?? 'error');
        },
      );
    }
    setTimeout(tick, 2);
  };
  tick();
});
const sentDuring = sent;
// Let what was sent settle (bounded: 60 s), then count what is still unanswered as abandoned.
const settleEnd = performance.now() + 60_000;
while (outstanding > 0 && performance.now() < settleEnd) await new Promise((r) => setTimeout(r, 50));
const settledAfterS = +((performance.now() - end) / 1000).toFixed(1);
clearInterval(sampler);
const abandoned = outstanding;
const final = new Map(statuses);
open.destroy();
// The daemon drains what it admitted, then must serve normally.
const drainEnd = performance.now() + 60_000;
let health = { inFlight: -1, queued: -1 };
while (performance.now() < drainEnd) {
  health = JSON.parse((await call(control, 'GET', '/v1/health')).body);
  if (health.inFlight === 0 && health.queued === 0) break;
  await new Promise((r) => setTimeout(r, 200));
}
const after = await call(control, 'POST', '/v1/executions', executeBody);
const metricsAfter = (await call(control, 'GET', '/metrics')).body;
const rssAfter = rssBytes(pid);

// Stop the daemon (SIGTERM: drain, flush, exit 0).
const d = daemon!;
const exited = new Promise<number | null>((r) => d.once('exit', (code) => r(code)));
d.kill('SIGTERM');
const exitCode = await exited;
daemon = null;

const lat = Float64Array.from(admittedLatency).sort();
const rss = samples.map((s) => s.rssBytes).filter(Number.isFinite);
const queue = scrapes.map((s) => s.queueDepth).filter(Number.isFinite);
const inflight = scrapes.map((s) => s.inFlight).filter(Number.isFinite);
const answered = [...final].filter(([k]) => /^\d+$/.test(k)).reduce((a, [, n]) => a + n, 0);
const result = {
  when: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memGiB: +(totalmem() / 2 ** 30).toFixed(1),
    loadavgAtEnd: loadavg().map((x) => +x.toFixed(2)),
    node: process.versions.node,
  },
  config: JSON.parse(limitsText),
  capacityPerS: Math.round(capacity),
  capacityGiven: Boolean(values.capacity),
  factor: FACTOR,
  seconds: SECONDS,
  offeredPerS: Math.round(target),
  sentPerS: Math.round(sentDuring / SECONDS),
  notSentClientCap: notSent,
  maxOutstandingAtClient: maxOutstanding,
  statuses: Object.fromEntries(final),
  abandonedAtEnd: abandoned,
  settledAfterS,
  shedShare: +((final.get('503') ?? 0) / Math.max(1, answered)).toFixed(4),
  admittedPerS: Math.round((final.get('200') ?? 0) / SECONDS),
  admittedLatencyMs: {
    p50: +quantile(lat, 0.5).toFixed(2),
    p99: +quantile(lat, 0.99).toFixed(2),
    max: +(lat[lat.length - 1] ?? Number.NaN).toFixed(2),
  },
  connections: CONNECTIONS,
  refusedAtConnect: final.get('EAGAIN') ?? 0,
  queueDepth: {
    max: Math.max(...queue),
    scrapes: queue.length,
    maxScrapeDelayS: +Math.max(...scrapes.map((s) => s.answeredAfterS)).toFixed(2),
  },
  inFlight: { max: Math.max(...inflight) },
  rssMiB: {
    min: +(Math.min(...rss) / 2 ** 20).toFixed(1),
    max: +(Math.max(...rss) / 2 ** 20).toFixed(1),
    after: +(rssAfter / 2 ** 20).toFixed(1),
    every5s: samples
      .filter((_, i) => i % 5 === 0)
      .map((s) => [Math.round(s.t), +(s.rssBytes / 2 ** 20).toFixed(1)]),
  },
  afterwards: {
    executeStatus: after.status,
    health,
    http503Total: gauge(
      metricsAfter,
      'thunderpac_http_requests_total{method="POST",route="/v1/executions",status_code="503"}',
    ),
    daemonExitCode: exitCode,
  },
};
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
process.exit(0);
