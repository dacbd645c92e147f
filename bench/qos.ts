/**
 * `npm run bench:qos` — the in-process limiters, single core, in one run:
 *
 *   node dist/bench/qos.js [--quick] [--rounds N] [--only GROUP] [--keys 10000,1000000] [--out FILE]
 *
 * For each key count (10k and 1M keys, drawn uniformly at random from a precomputed order), a
 * group of interleaved cases, all limiting to 100 per second per key (burst 100):
 *
 *   token bucket, GCRA, sliding log, two-window counter, per second+minute+hour (token
 *       buckets in one store; GCRA through CompositeLimiter) tryAcquireAt(key, 1, nowUs) with the time read once per block of 1,000 checks (as a
 *       daemon reads it once per request and a batch shares it);
 *   token bucket tryAcquire (the limiter reads its Clock, performance.now(), per check) and
 *       check() (that, plus the Decision object);
 *   plain-JS token bucket: the minimal baseline a Node service writes (Map of {tokens, last},
 *       float refill), given the same per-block time — the baseline for throughput ratios;
 *   rate-limiter-flexible RateLimiterMemory.consume(key), awaited one by one as it is used
 *       (a rejected promise per refusal; its own Date.now(), a timer per key).
 *
 * Method (bench/qos-harness.ts): blocks of 1,000 checks timed with process.hrtime.bigint(),
 * per-check p50/p99 are percentiles of block means; rounds interleave the group's cases; the
 * table gives the median over rounds and the spread. Single checks timed one by one with the
 * timer floor beside them. Other QoS benches join the run as bench/qos-cases-*.ts modules exporting
 * qosBenchGroups (see the harness): the fair queue's enqueue/dequeue cost and the breakers and
 * adaptive limits are in qos-cases-queues.ts. Writes JSON (default bench/results/qos-latest.json).
 *
 * Then the Redis-backed path (bench/qos-redis.ts: checks/s, p50/p99 and round trips per check
 * against a redis-server it starts on a loopback port in a temp dir and stops), in a child
 * process with the same --quick / --rounds; skipped with a message when redis-server is not
 * installed, or with --no-redis, or when --only names another group.
 */

import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { type Clock, systemClock } from '../src/qos/clock.js';
import type { KeyedLimiter } from '../src/qos/limiters/keyed-limiter.js';
import { createLimiter, perWindowLimiter } from '../src/qos/limiters/tiers.js';
import {
  type CaseSummary,
  formatTable,
  measureGroup,
  type QosBenchCase,
  type QosBenchGroup,
  type QosBenchOptions,
} from './qos-harness.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    only: { type: 'string' },
    keys: { type: 'string', default: '10000,1000000' },
    out: { type: 'string' },
    'no-redis': { type: 'boolean', default: false },
  },
});

const opts: QosBenchOptions = {
  quick: values.quick,
  rounds: Number(values.rounds ?? (values.quick ? 2 : 5)),
  blockSize: 1_000,
};

/** Every limiter here: 100 per second per key, burst 100. */
const LIMIT = 100;
const PERIOD_MS = 1_000;
/** Length of the precomputed random key order (a power of two: the index wraps with a mask). */
const ORDER_LENGTH = 1 << 22;

/** The minimal token bucket a Node service writes: floats, an object per key. */
class PlainTokenBucket {
  readonly #buckets = new Map<string, { tokens: number; last: number }>();
  constructor(
    readonly capacity: number,
    readonly perMs: number,
  ) {}
  take(key: string, nowMs: number): boolean {
    let b = this.#buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.capacity, last: nowMs };
      this.#buckets.set(key, b);
    }
    b.tokens = Math.min(this.capacity, b.tokens + (nowMs - b.last) * this.perMs);
    b.last = nowMs;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

function limiterGroup(keyCount: number): QosBenchGroup {
  let keys: string[] = [];
  let order = new Uint32Array(0);
  const mask = ORDER_LENGTH - 1;
  const clock: Clock = systemClock;
  const spec = { limit: LIMIT, periodMs: PERIOD_MS };
  // One instance per case (each case keeps its own state for every key).
  let tb: KeyedLimiter;
  let gcra: KeyedLimiter;
  let log: KeyedLimiter;
  let counter: KeyedLimiter;
  let tbClock: KeyedLimiter;
  let tbDecision: KeyedLimiter;
  let multi: ReturnType<typeof perWindowLimiter>;
  let composite: ReturnType<typeof perWindowLimiter>;
  let plain: PlainTokenBucket;
  let rlf: RateLimiterMemory;
  const key = (i: number) => keys[order[i & mask]!]!;

  // Each case is its own function literal, so V8 keeps each loop's call site monomorphic and
  // no case pays for another's shape.
  const base = 'plain-JS token bucket';
  const cases: QosBenchCase[] = [
    {
      name: base,
      run(n, start, nowUs) {
        let a = 0;
        const nowMs = nowUs / 1000;
        for (let i = start; i < start + n; i++) if (plain.take(key(i), nowMs)) a++;
        return a;
      },
      single: (i, nowUs) => plain.take(key(i), nowUs / 1000),
    },
    {
      name: 'token bucket tryAcquireAt',
      baseline: base,
      run(n, start, nowUs) {
        let a = 0;
        for (let i = start; i < start + n; i++) if (tb.acquireAt(key(i), 1, nowUs) === 0) a++;
        return a;
      },
      single: (i, nowUs) => tb.acquireAt(key(i), 1, nowUs),
    },
    {
      name: 'GCRA tryAcquireAt',
      baseline: base,
      run(n, start, nowUs) {
        let a = 0;
        for (let i = start; i < start + n; i++) if (gcra.acquireAt(key(i), 1, nowUs) === 0) a++;
        return a;
      },
    },
    {
      name: 'sliding log tryAcquireAt',
      baseline: base,
      run(n, start, nowUs) {
        let a = 0;
        for (let i = start; i < start + n; i++) if (log.acquireAt(key(i), 1, nowUs) === 0) a++;
        return a;
      },
    },
    {
      name: 'two-window counter tryAcquireAt',
      baseline: base,
      run(n, start, nowUs) {
        let a = 0;
        for (let i = start; i < start + n; i++) if (counter.acquireAt(key(i), 1, nowUs) === 0) a++;
        return a;
      },
    },
    {
      name: 'per s+min+h token buckets (one store)',
      baseline: base,
      run(n, start, nowUs) {
        let a = 0;
        for (let i = start; i < start + n; i++) if (multi.acquireAt(key(i), 1, nowUs) === 0) a++;
        return a;
      },
    },
    {
      name: 'per s+min+h GCRA (CompositeLimiter)',
      baseline: base,
      run(n, start, nowUs) {
        let a = 0;
        for (let i = start; i < start + n; i++) if (composite.acquireAt(key(i), 1, nowUs) === 0) a++;
        return a;
      },
    },
    {
      name: 'token bucket tryAcquire (Clock per check)',
      baseline: base,
      run(n, start) {
        let a = 0;
        for (let i = start; i < start + n; i++) if (tbClock.tryAcquire(key(i))) a++;
        return a;
      },
      single: (i) => tbClock.tryAcquire(key(i)),
    },
    {
      name: 'token bucket check() (Clock + Decision)',
      baseline: base,
      run(n, start) {
        let a = 0;
        for (let i = start; i < start + n; i++) if (tbDecision.check(key(i)).allowed) a++;
        return a;
      },
    },
    {
      name: 'rate-limiter-flexible consume (awaited)',
      baseline: base,
      async: true,
      async run(n, start) {
        let a = 0;
        for (let i = start; i < start + n; i++) {
          try {
            await rlf.consume(key(i));
            a++;
          } catch {
            // refused: a RateLimiterRes rejection, as callers see it
          }
        }
        return a;
      },
    },
  ];

  return {
    name: `${keyCount.toLocaleString('en-US')} keys`,
    checks: opts.quick ? 200_000 : 2_000_000,
    asyncChecks: opts.quick ? 20_000 : 200_000,
    // 3 × keys random draws touch ~95 % of the keys: the rounds then measure checks on
    // existing state, not first inserts.
    warmupChecks: Math.max(200_000, 3 * keyCount),
    cases,
    prepare() {
      keys = Array.from({ length: keyCount }, (_, i) => `actor-${i.toString(36)}:resource-${i % 17}`);
      order = new Uint32Array(ORDER_LENGTH);
      // xorshift32: the same order every run.
      let x = 2463534242;
      for (let i = 0; i < ORDER_LENGTH; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        order[i] = (x >>> 0) % keyCount;
      }
      const store = { maxKeys: Math.max(keyCount, 1024) };
      tb = createLimiter(spec, 'token-bucket', clock, store);
      gcra = createLimiter(spec, 'gcra', clock, store);
      log = createLimiter(spec, 'sliding-log', clock, store);
      counter = createLimiter(spec, 'sliding-counter', clock, store);
      tbClock = createLimiter(spec, 'token-bucket', clock, store);
      tbDecision = createLimiter(spec, 'token-bucket', clock, store);
      const windows = { perSecond: LIMIT, perMinute: LIMIT * 30, perHour: LIMIT * 600 };
      multi = perWindowLimiter(windows, 'token-bucket', clock, store);
      composite = perWindowLimiter(windows, 'gcra', clock, store);
      plain = new PlainTokenBucket(LIMIT, LIMIT / PERIOD_MS);
      rlf = new RateLimiterMemory({ points: LIMIT, duration: PERIOD_MS / 1000 });
    },
    release() {
      keys = [];
      order = new Uint32Array(0);
      // The limiters go with the next prepare (1M keys of state each).
      const empty = createLimiter(spec, 'token-bucket', clock, { maxKeys: 1 });
      tb = gcra = log = counter = tbClock = tbDecision = empty;
      multi = composite = perWindowLimiter({ perSecond: 1 }, 'gcra', clock, { maxKeys: 1 });
      plain = new PlainTokenBucket(1, 1);
      rlf = new RateLimiterMemory({ points: 1, duration: 1 });
    },
  };
}

/** Other QoS benches: dist/bench/qos-cases-*.js modules exporting qosBenchGroups(opts) (importing runs their top level, so only modules named for it). */
async function extraGroups(): Promise<QosBenchGroup[]> {
  const here = dirname(fileURLToPath(import.meta.url));
  const out: QosBenchGroup[] = [];
  for (const f of readdirSync(here).sort()) {
    if (!/^qos-cases-.+\.js$/.test(f)) continue;
    const mod = (await import(pathToFileURL(join(here, f)).href)) as {
      qosBenchGroups?: (o: QosBenchOptions) => Promise<QosBenchGroup[]>;
    };
    if (typeof mod.qosBenchGroups === 'function') out.push(...(await mod.qosBenchGroups(opts)));
  }
  return out;
}

const machine = {
  cpu: cpus()[0]?.model,
  cores: cpus().length,
  memGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  loadavgBefore: loadavg(),
  loadavgAfter: [] as number[],
  date: new Date().toISOString(),
};

const groups = [
  ...values.keys.split(',').map((k) => limiterGroup(Number(k))),
  ...(await extraGroups()),
].filter((g) => !values.only || g.name.includes(values.only));

const results: CaseSummary[] = [];
for (const g of groups) {
  process.stderr.write(`measuring ${g.name} (${opts.rounds} rounds)…\n`);
  const rs = await measureGroup(g, opts);
  results.push(...rs);
  process.stdout.write(`\n${formatTable(rs)}\n`);
  if (g.note) process.stdout.write(`\n${g.note}\n`);
}
machine.loadavgAfter = loadavg();
process.stdout.write(
  `\n${machine.cpu} × ${machine.cores}, ${machine.memGiB} GiB, Node ${machine.node}; load average before ${machine.loadavgBefore.map((l) => l.toFixed(2)).join(' ')}, after ${machine.loadavgAfter.map((l) => l.toFixed(2)).join(' ')}; ${opts.rounds} rounds, blocks of ${opts.blockSize}; RSS ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB\n`,
);
const out = values.out ?? join('bench', 'results', 'qos-latest.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ machine, opts, results }, null, 2)}\n`);

// The Redis-backed path: its own process (its own event loop and sockets), after the in-process groups.
if (!values['no-redis'] && (!values.only || 'redis'.includes(values.only))) {
  process.stdout.write('\nRedis-backed global limit (bench/qos-redis.ts):\n');
  const args = [join(dirname(fileURLToPath(import.meta.url)), 'qos-redis.js')];
  if (values.quick) args.push('--quick');
  if (values.rounds) args.push('--rounds', values.rounds);
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) process.stderr.write(`bench:qos-redis failed (exit ${r.status ?? r.signal})\n`);
}
process.exit(0);
