/**
 * bench:store — the receipt log at scale (issue #13, part B).
 *
 *   npm run bench:store [-- --quick] [--sizes 10000,100000,1000000] [--rounds 5] [--appends 200000]
 *                       [--only append|open]
 *
 * 1. Appends/s per durability mode, the receipt log against lmdb and SQLite (WAL) writing the
 *    same receipts (key = 32-byte id, value = canonical body) in the same run, interleaved
 *    (the writers take turns, in a rotated order each round) and repeated: median, min and max.
 *      never   no fsync at all (log sync 'never'; lmdb noSync; SQLite synchronous=OFF, 1000/txn)
 *      engine  each engine's own batching, durable at the end (log sync 'batch' + close; lmdb async
 *              puts batched per event turn + committed/flushed; SQLite WAL synchronous=NORMAL, 1000/txn)
 *      group   durable every 1000 receipts before going on (log 1000 appends + flush; lmdb
 *              transactionSync of 1000 putSync; SQLite synchronous=FULL, 1000/txn)
 *      always  durable per receipt (log sync 'always'; lmdb putSync; SQLite FULL autocommit)
 * 2. Open and query at each size (default 10k, 100k, 1M receipts): a log written and closed (so
 *    its checkpoint is written), then, in fresh node processes (what the CLI pays): open
 *    (read-only), first query (loads the checkpoint columns), then warm queries by build, actor +
 *    status, time range, id lookup, id prefix. The old path (no checkpoint: the full scan) and
 *    the explicit full verify() are timed too.
 *
 * Results go to stdout and bench/results/store-latest.json. Times are wall clock on whatever the
 * machine is doing: the spread is printed so that noise shows.
 */

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type ReceiptBody, sealReceiptEncoded } from '../src/runtime/receipt.js';
import { ReceiptIndex } from '../src/store/receipt-index.js';
import { ReceiptLog, type SyncPolicy } from '../src/store/receipt-log.js';

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');

// ---------------------------------------------------------------- receipts

const sandbox = Object.freeze({
  limits: { timeoutMs: 1000, memoryMb: 16, fuel: 1_000_000, maxInputBytes: 1 << 20, maxOutputBytes: 1 << 20 },
  fs: { kind: 'none' as const },
  allowedImports: [],
  network: false as const,
});
const determinism = Object.freeze({ seed: 0, flags: [] });
const runtime = Object.freeze({ thunderpac: '0.1.0', node: process.versions.node, wasm: 'v8' });
const builds = Array.from({ length: 50 }, (_, i) => i.toString(16).padStart(64, '0'));
const actors = Array.from({ length: 20 }, (_, i) => `uid:${1000 + i}`);
const T0 = Date.UTC(2026, 11, 1);

function receiptNo(i: number, salt = 0): { id: string; body: Uint8Array } {
  const body: ReceiptBody = {
    v: 1,
    buildId: builds[i % builds.length]!,
    backend: 'wasm',
    entry: 'echo',
    input: { hash: (i + salt * 1e9).toString(16).padStart(64, 'a'), size: 64 },
    output: { hash: i.toString(16).padStart(64, 'b'), size: 64 },
    startedAt: new Date(T0 + i * 10).toISOString(),
    durationNs: 5000 + (i % 1000),
    resources: { cpuUs: null, peakMemoryBytes: 131072, fuelUsed: 120 + (i % 7), engineNs: null },
    sandbox,
    determinism,
    runtime,
    status: i % 10 === 0 ? 'failed' : 'completed',
    error: i % 10 === 0 ? { code: 'GUEST_TRAP', message: 'unreachable executed' } : null,
    parents: [],
    actor: actors[i % actors.length]!,
    requestId: `req-${i.toString(36)}`,
  };
  const sealed = sealReceiptEncoded(body);
  return { id: sealed.receipt.id, body: sealed.body };
}

function stats(xs: readonly number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[s.length >> 1]!, min: s[0]!, max: s[s.length - 1]! };
}

// ---------------------------------------------------------------- child: open + query

interface OpenResult {
  readonly openMs: number;
  readonly firstQueryMs: number;
  /** CPU time (user + system) of the same steps: on a loaded machine wall time includes waiting. */
  readonly openCpuMs: number;
  readonly firstQueryCpuMs: number;
  readonly queries: Record<string, number>;
  readonly checkpoint: string;
  readonly rssMB: number;
}

function childOpen(dir: string, n: number, useCheckpoint: boolean): OpenResult {
  const path = join(dir, 'receipts.log');
  const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
  let c = process.cpuUsage();
  let t = performance.now();
  const log = new ReceiptLog(path, { readOnly: true, ...(useCheckpoint ? {} : { checkpoint: false }) });
  const openMs = performance.now() - t;
  const openCpuMs = cpuMs(process.cpuUsage(c));
  const index = new ReceiptIndex(log);
  c = process.cpuUsage();
  t = performance.now();
  index.query({ limit: 100 });
  const firstQueryMs = performance.now() - t;
  const firstQueryCpuMs = cpuMs(process.cpuUsage(c));
  const q = (f: () => unknown, runs = 9): number => {
    const xs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const s = performance.now();
      f();
      xs.push(performance.now() - s);
    }
    return stats(xs).median;
  };
  const mid = Math.floor(n / 2);
  const someId = log.idAt(mid);
  const queries = {
    'newest 100': q(() => index.query({})),
    'build, newest 100': q(() => index.query({ build: builds[7]! })),
    'actor + failed, newest 100': q(() => index.query({ actor: actors[0]!, status: 'failed' })),
    'time range 1 s, oldest': q(() =>
      index.query({
        since: new Date(T0 + mid * 10).toISOString(),
        until: new Date(T0 + mid * 10 + 1000).toISOString(),
        order: 'oldest',
      }),
    ),
    'matching nothing (full column scan)': q(() => index.query({ build: builds[1]!, actor: actors[2]! })),
    'get by id': q(() => log.get(someId), 101),
    'has (absent id)': q(() => log.has('f'.repeat(64)), 101),
    'id prefix (8 hex)': q(() => log.idsWithPrefix(someId.slice(0, 8), 10), 101),
    'get by ordinal': q(() => log.getAt(mid), 101),
  };
  const rssMB = process.memoryUsage().rss / 2 ** 20;
  const checkpoint = log.checkpointStatus;
  log.close();
  return { openMs, firstQueryMs, openCpuMs, firstQueryCpuMs, queries, checkpoint, rssMB };
}

if (args[0] === '--child-open') {
  const out = childOpen(args[1]!, Number(args[2]), args[3] !== 'nockpt');
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}
if (args[0] === '--child-verify') {
  const log = new ReceiptLog(join(args[1]!, 'receipts.log'), { readOnly: true });
  const t = performance.now();
  const report = log.verify();
  process.stdout.write(JSON.stringify({ verifyMs: performance.now() - t, records: report.records }));
  process.exit(0);
}

const self = fileURLToPath(import.meta.url);
function child<T>(...childArgs: string[]): T {
  const out = execFileSync(process.execPath, ['--max-old-space-size=4096', self, ...childArgs], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  return JSON.parse(out) as T;
}

// ---------------------------------------------------------------- appends

type Mode = 'never' | 'engine' | 'group' | 'always';
interface Writer {
  readonly name: string;
  readonly mode: Mode;
  /** Write `records` into a fresh store in `dir`, durable per the mode when it resolves. */
  run(dir: string, records: readonly { id: string; body: Uint8Array }[]): Promise<void> | void;
}

const GROUP = 1000;

function logWriter(mode: Mode): Writer {
  const sync: SyncPolicy = mode === 'never' ? 'never' : mode === 'always' ? 'always' : 'batch';
  return {
    name: 'receipt log',
    mode,
    run(dir, records) {
      const log = new ReceiptLog(join(dir, 'receipts.log'), { sync, syncIntervalMs: 100 });
      let i = 0;
      for (const r of records) {
        log.append({ id: r.id } as never, r.body);
        if (mode === 'group' && ++i % GROUP === 0) log.flush();
      }
      log.close();
    },
  };
}

interface LmdbDb {
  put(key: Buffer, value: Uint8Array): Promise<boolean>;
  putSync(key: Buffer, value: Uint8Array): void;
  transactionSync<T>(f: () => T): T;
  committed: Promise<boolean>;
  flushed: Promise<boolean>;
  close(): Promise<void>;
}

function lmdbWriter(mode: Mode): Writer | undefined {
  let lmdb: { open(options: Record<string, unknown>): LmdbDb };
  try {
    lmdb = require('lmdb');
  } catch {
    return undefined;
  }
  return {
    name: 'lmdb',
    mode,
    async run(dir, records) {
      const db = lmdb.open({
        path: join(dir, 'lmdb'),
        encoding: 'binary',
        keyEncoding: 'binary',
        noSync: mode === 'never',
        mapSize: 4 * 2 ** 30,
      });
      const key = (id: string) => Buffer.from(id, 'hex');
      if (mode === 'always') {
        for (const r of records) db.putSync(key(r.id), r.body);
      } else if (mode === 'group') {
        for (let at = 0; at < records.length; at += GROUP) {
          db.transactionSync(() => {
            for (const r of records.slice(at, at + GROUP)) db.putSync(key(r.id), r.body);
          });
        }
      } else {
        let last: Promise<boolean> | undefined;
        for (const r of records) last = db.put(key(r.id), r.body);
        await last;
        await db.committed;
        if (mode === 'engine') await db.flushed;
      }
      await db.close();
    },
  };
}

interface SqliteDb {
  pragma(s: string): unknown;
  exec(s: string): void;
  prepare(s: string): { run(...a: unknown[]): unknown };
  transaction<F extends (...a: never[]) => unknown>(f: F): F;
  close(): void;
}

function sqliteWriter(mode: Mode): Writer | undefined {
  let Database: new (path: string) => SqliteDb;
  try {
    Database = require('better-sqlite3');
    new Database(':memory:').close();
  } catch {
    return undefined;
  }
  return {
    name: 'SQLite WAL',
    mode,
    run(dir, records) {
      const db = new Database(join(dir, 'receipts.sqlite'));
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${mode === 'never' ? 'OFF' : mode === 'engine' ? 'NORMAL' : 'FULL'}`);
      db.exec('CREATE TABLE receipts (id BLOB PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID');
      const insert = db.prepare('INSERT INTO receipts (id, body) VALUES (?, ?)');
      const key = (id: string) => Buffer.from(id, 'hex');
      if (mode === 'always') {
        for (const r of records) insert.run(key(r.id), r.body);
      } else {
        const many = db.transaction((rs: readonly { id: string; body: Uint8Array }[]) => {
          for (const r of rs) insert.run(key(r.id), r.body);
        });
        for (let at = 0; at < records.length; at += GROUP) many(records.slice(at, at + GROUP));
      }
      db.close();
    },
  };
}

async function appendBench(root: string, rounds: number): Promise<Record<string, unknown>[]> {
  const modes: Mode[] = ['never', 'engine', 'group', 'always'];
  const many = Number(flag('--appends') ?? (quick ? 20_000 : 200_000));
  const counts: Record<Mode, number> = {
    never: many,
    engine: many,
    group: many,
    always: Math.max(100, Math.round(many / 100)),
  };
  const maxCount = Math.max(...Object.values(counts));
  const t = performance.now();
  const records = Array.from({ length: maxCount }, (_, i) => receiptNo(i));
  const bytes = records.reduce((n, r) => n + r.body.byteLength, 0);
  console.log(
    `sealed ${maxCount} receipts (${(bytes / maxCount).toFixed(0)} B body each) in ${(performance.now() - t).toFixed(0)} ms`,
  );
  const out: Record<string, unknown>[] = [];
  for (const mode of modes) {
    const writers = [logWriter(mode), lmdbWriter(mode), sqliteWriter(mode)].filter((w): w is Writer => !!w);
    const n = counts[mode];
    const subset = records.slice(0, n);
    const samples = new Map<string, number[]>(writers.map((w) => [w.name, []]));
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < writers.length; k++) {
        const w = writers[(k + round) % writers.length]!;
        const dir = join(root, `append-${mode}-${round}-${k}`);
        mkdirSync(dir);
        const s = performance.now();
        await w.run(dir, subset);
        const ms = performance.now() - s;
        samples.get(w.name)!.push(n / (ms / 1000));
        rmSync(dir, { recursive: true, force: true });
      }
    }
    for (const w of writers) {
      const st = stats(samples.get(w.name)!);
      out.push({ mode, writer: w.name, receipts: n, rounds, perSec: st });
      console.log(
        `  ${mode.padEnd(6)} ${w.name.padEnd(12)} ${n.toString().padStart(7)} receipts: median ${fmt(st.median)}/s (min ${fmt(st.min)}, max ${fmt(st.max)})`,
      );
    }
  }
  return out;
}

function fmt(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0);
}

// ---------------------------------------------------------------- open + query

function writeLog(dir: string, n: number): void {
  const log = new ReceiptLog(join(dir, 'receipts.log'), { sync: 'never' });
  for (let i = 0; i < n; i++) {
    const r = receiptNo(i, 1);
    log.append({ id: r.id } as never, r.body);
  }
  log.close();
}

function openBench(root: string, sizes: readonly number[], rounds: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const n of sizes) {
    const dir = join(root, `open-${n}`);
    mkdirSync(dir);
    let t = performance.now();
    writeLog(dir, n);
    const writeMs = performance.now() - t;
    const logBytes = statSync(join(dir, 'receipts.log')).size;
    const idxBytes = statSync(join(dir, 'receipts.idx')).size;
    console.log(
      `${n} receipts: log ${(logBytes / 2 ** 20).toFixed(1)} MiB, checkpoint ${(idxBytes / 2 ** 20).toFixed(1)} MiB (${(idxBytes / n).toFixed(0)} B/receipt); written + closed in ${writeMs.toFixed(0)} ms`,
    );
    const runs: OpenResult[] = [];
    for (let r = 0; r < rounds; r++) runs.push(child<OpenResult>('--child-open', dir, String(n)));
    const open = stats(runs.map((r) => r.openMs));
    const first = stats(runs.map((r) => r.firstQueryMs));
    const total = stats(runs.map((r) => r.openMs + r.firstQueryMs));
    console.log(
      `  open ${open.median.toFixed(1)} ms (${open.min.toFixed(1)}–${open.max.toFixed(1)}), first query ${first.median.toFixed(1)} ms (${first.min.toFixed(1)}–${first.max.toFixed(1)}), open + first query ${total.median.toFixed(1)} ms, RSS ${stats(runs.map((r) => r.rssMB)).median.toFixed(0)} MiB, checkpoint ${runs[0]!.checkpoint}`,
    );
    const openCpu = stats(runs.map((r) => r.openCpuMs));
    const firstCpu = stats(runs.map((r) => r.firstQueryCpuMs));
    console.log(
      `  CPU: open ${openCpu.median.toFixed(1)} ms (${openCpu.min.toFixed(1)}–${openCpu.max.toFixed(1)}), first query ${firstCpu.median.toFixed(1)} ms (${firstCpu.min.toFixed(1)}–${firstCpu.max.toFixed(1)})`,
    );
    const queries: Record<string, { median: number; min: number; max: number }> = {};
    for (const name of Object.keys(runs[0]!.queries)) {
      queries[name] = stats(runs.map((r) => r.queries[name]!));
      const st = queries[name]!;
      console.log(
        `    ${name}: ${(st.median * 1000).toFixed(0)} µs (${(st.min * 1000).toFixed(0)}–${(st.max * 1000).toFixed(0)})`,
      );
    }
    // The path before checkpoints: open scans every record, the first query reads every body.
    const scanRounds = n >= 1_000_000 ? 1 : Math.min(rounds, 3);
    const scans: OpenResult[] = [];
    for (let r = 0; r < scanRounds; r++)
      scans.push(child<OpenResult>('--child-open', dir, String(n), 'nockpt'));
    const scanOpen = stats(scans.map((r) => r.openMs));
    const scanFirst = stats(scans.map((r) => r.firstQueryMs));
    console.log(
      `  without checkpoint (full scan): open ${scanOpen.median.toFixed(0)} ms, first query ${scanFirst.median.toFixed(0)} ms (${scanRounds} run${scanRounds > 1 ? 's' : ''}), RSS ${stats(scans.map((r) => r.rssMB)).median.toFixed(0)} MiB`,
    );
    t = performance.now();
    const verify = child<{ verifyMs: number; records: number }>('--child-verify', dir);
    console.log(
      `  verify() (every crc, the whole chain, checkpoint compared): ${verify.verifyMs.toFixed(0)} ms`,
    );
    out.push({
      receipts: n,
      logBytes,
      checkpointBytes: idxBytes,
      writeMs,
      rounds,
      openMs: open,
      firstQueryMs: first,
      openPlusFirstQueryMs: total,
      openCpuMs: openCpu,
      firstQueryCpuMs: firstCpu,
      queriesMs: queries,
      rssMB: stats(runs.map((r) => r.rssMB)),
      withoutCheckpoint: { openMs: scanOpen, firstQueryMs: scanFirst, runs: scanRounds },
      verifyMs: verify.verifyMs,
    });
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

// ---------------------------------------------------------------- main

const rounds = Number(flag('--rounds') ?? (quick ? 3 : 5));
const sizes = (flag('--sizes') ?? (quick ? '10000,100000' : '10000,100000,1000000')).split(',').map(Number);
const root = mkdtempSync(join(tmpdir(), 'tp-bench-store-'));
try {
  const started = new Date().toISOString();
  console.log(
    `bench:store ${started}, load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}, node ${process.version}`,
  );
  const only = flag('--only');
  console.log('appends/s per durability mode (interleaved, rounds rotate the order):');
  const appends = only === 'open' ? [] : await appendBench(root, rounds);
  console.log('open and query (fresh process each round):');
  const opens = only === 'append' ? [] : openBench(root, sizes, rounds);
  const resultsDir = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(
    join(resultsDir, 'store-latest.json'),
    `${JSON.stringify({ started, loadavg: loadavg(), node: process.version, appends, opens }, null, 2)}\n`,
  );
  console.log(
    `load average at the end ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
} finally {
  for (const e of readdirSync(root)) rmSync(join(root, e), { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
}
