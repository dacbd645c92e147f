/**
 * The Redis-backed global limit (src/qos/global/): checks/s, per-check p50/p99 and Redis round
 * trips per check, with and without the local fast path, against a redis-server this bench starts
 * on a free loopback port (no persistence) and stops:
 *
 *   npx vite-node bench/qos-redis.ts [--quick] [--rounds N] [--out FILE]
 *
 * Cases, each over 100 keys drawn uniformly at random (100 active actors):
 *   under the limit (1,000,000/s per key: every check admitted) and over it (10/s per key, so
 *   nearly every check is refused once each key's burst is spent);
 *   × no fast path (leaseSize 1: one EVALSHA per check), fast path (leaseSize 100, refusals
 *   remembered until their retry-after);
 *   × 1 caller awaiting each check, and 64 concurrent callers (ioredis pipelines what they send);
 *   plus rate-limiter-flexible's RateLimiterRedis (same Redis, same ioredis) as the Node baseline.
 * Per-check latency is timed one by one (process.hrtime.bigint()); rounds interleave the cases;
 * the table gives the median over rounds and the min–max spread of checks/s.
 *
 * `npm run bench:qos-redis` runs it; `npm run bench:qos` runs it after the in-process groups.
 * REDIS_SERVER=path picks the binary. Without a redis-server on PATH (or in /usr/bin, /usr/sbin: Debian's `redis-server` package) it
 * says so and exits 0, so bench:qos still completes.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { GlobalStore } from '../src/qos/global/global-store.js';
import { RedisGcraLimiter } from '../src/qos/global/redis-gcra.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    out: { type: 'string', default: 'bench/results/qos-redis-latest.json' },
  },
});
const ROUNDS = Number(values.rounds ?? (values.quick ? 2 : 5));
const CHECKS = values.quick ? 5_000 : 20_000;
/** Active keys (actors): 100, so a key is checked ~100+ times a second and the fast path has something to reuse. */
const KEYS = 100;

/** The redis-server binary: on PATH, or where Debian installs it; null when absent. */
function findRedisServer(): string | null {
  const explicit = process.env.REDIS_SERVER;
  if (explicit !== undefined) {
    try {
      accessSync(explicit, fsConstants.X_OK);
      return explicit;
    } catch {
      return null;
    }
  }
  const dirs = [
    ...(process.env.PATH ?? '').split(':').filter(Boolean),
    '/usr/bin',
    '/usr/sbin',
    '/usr/local/bin',
  ];
  for (const d of dirs) {
    const f = join(d, 'redis-server');
    try {
      accessSync(f, fsConstants.X_OK);
      return f;
    } catch {}
  }
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (c: Buffer) => done(c.toString().startsWith('+PONG')));
    socket.once('error', () => done(false));
  });
}

async function startRedis(bin: string): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'tp-bench-redis-'));
  const port = await freePort();
  const child: ChildProcess = spawn(
    bin,
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  for (let i = 0; !(await pings(port)); i++) {
    if (i > 400) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Case {
  readonly name: string;
  readonly concurrency: number;
  /** Resolves true when admitted. */
  check(key: string): Promise<boolean>;
  roundTrips(): number;
}

interface RoundResult {
  checksPerSec: number;
  p50Us: number;
  p99Us: number;
  roundTripsPerCheck: number;
  admittedShare: number;
}

const keys = Array.from({ length: KEYS }, (_, i) => `actor-${i}`);
let seed = 0x9e3779b9;
function nextKey(): string {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return keys[(seed >>> 0) % KEYS]!;
}

async function measure(c: Case, checks: number): Promise<RoundResult> {
  const lat = new Float64Array(checks);
  let next = 0;
  let admitted = 0;
  const rt0 = c.roundTrips();
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    for (let i = next++; i < checks; i = next++) {
      const k = nextKey();
      const s = process.hrtime.bigint();
      if (await c.check(k)) admitted++;
      lat[i] = Number(process.hrtime.bigint() - s) / 1000;
    }
  };
  await Promise.all(Array.from({ length: c.concurrency }, worker));
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort();
  return {
    checksPerSec: checks / sec,
    p50Us: lat[Math.floor(checks * 0.5)]!,
    p99Us: lat[Math.floor(checks * 0.99)]!,
    roundTripsPerCheck: (c.roundTrips() - rt0) / checks,
    admittedShare: admitted / checks,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const bin = findRedisServer();
  if (bin === null) {
    console.log(
      "bench:qos-redis skipped: no redis-server found (REDIS_SERVER, PATH, /usr/bin, /usr/sbin); install Debian's redis-server to measure the Redis-backed path",
    );
    return;
  }
  const redis = await startRedis(bin);
  const stores: GlobalStore[] = [];
  const clients: Redis[] = [];
  try {
    const cases: Case[] = [];
    for (const [regime, limit] of [
      ['under limit', 1_000_000],
      ['over limit', 10],
    ] as const) {
      for (const [path, leaseSize] of [
        ['no fast path', 1],
        ['fast path L=100', 100],
      ] as const) {
        for (const concurrency of [1, 64]) {
          const store = new GlobalStore({
            url: redis.url,
            commandTimeoutMs: 1_000,
            keyPrefix: `b${cases.length}:`,
          });
          await store.connect();
          stores.push(store);
          const limiter = new RedisGcraLimiter(store, {
            limit,
            periodMs: 1_000,
            leaseSize: Math.min(leaseSize, limit),
          });
          cases.push({
            name: `${regime}, ${path}, ${concurrency} caller${concurrency > 1 ? 's' : ''}`,
            concurrency,
            check: async (k) => (await limiter.check(k)).allowed,
            roundTrips: () => store.counters.roundTrips,
          });
        }
      }
      for (const concurrency of [1, 64]) {
        const client = new Redis(redis.url, { enableOfflineQueue: true });
        clients.push(client);
        let sent = 0;
        const rlf = new RateLimiterRedis({
          storeClient: client,
          points: limit,
          duration: 1,
          keyPrefix: `rlf${clients.length}`,
        });
        cases.push({
          name: `${regime}, rate-limiter-flexible RateLimiterRedis, ${concurrency} caller${concurrency > 1 ? 's' : ''}`,
          concurrency,
          check: async (k) => {
            sent++;
            try {
              await rlf.consume(k);
              return true;
            } catch {
              return false;
            }
          },
          // One MULTI/EXEC (or script) per consume: counted as one round trip each.
          roundTrips: () => sent,
        });
      }
    }
    // Warm up each case (scripts loaded, JIT warm, over-limit keys past their burst).
    for (const c of cases) await measure(c, values.quick ? 2_000 : 10_000);
    const rounds = new Map<string, RoundResult[]>();
    for (let r = 0; r < ROUNDS; r++) {
      for (const c of cases) {
        const res = await measure(c, CHECKS);
        rounds.set(c.name, [...(rounds.get(c.name) ?? []), res]);
      }
    }
    const rows = cases.map((c) => {
      const rs = rounds.get(c.name)!;
      const cps = rs.map((x) => x.checksPerSec);
      return {
        case: c.name,
        checksPerSec: median(cps),
        spread: [Math.min(...cps), Math.max(...cps)],
        p50Us: median(rs.map((x) => x.p50Us)),
        p99Us: median(rs.map((x) => x.p99Us)),
        roundTripsPerCheck: median(rs.map((x) => x.roundTripsPerCheck)),
        admittedShare: median(rs.map((x) => x.admittedShare)),
      };
    });
    const lines = [
      `| case | checks/s (median, min–max) | p50 µs | p99 µs | round trips / check | admitted |`,
      `|---|---|---|---|---|---|`,
      ...rows.map(
        (r) =>
          `| ${r.case} | ${Math.round(r.checksPerSec).toLocaleString('en')} (${Math.round(r.spread[0]!).toLocaleString('en')}–${Math.round(r.spread[1]!).toLocaleString('en')}) | ${r.p50Us.toFixed(1)} | ${r.p99Us.toFixed(1)} | ${r.roundTripsPerCheck.toFixed(4)} | ${(r.admittedShare * 100).toFixed(1)}% |`,
      ),
    ];
    const env = `node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}, ${ROUNDS} rounds × ${CHECKS} checks, ${KEYS} keys`;
    console.log(env);
    console.log(lines.join('\n'));
    mkdirSync(dirname(values.out!), { recursive: true });
    writeFileSync(values.out!, `${JSON.stringify({ env, rows }, null, 2)}\n`);
  } finally {
    for (const s of stores) await s.close();
    for (const c of clients) c.disconnect();
    await redis.stop();
  }
}

await main();
