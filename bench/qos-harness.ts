/**
 * Measurement for `npm run bench:qos`: cases that run a block of checks, measured in
 * interleaved rounds. Engineers adding QoS measurements (fair-queue dequeue, the Redis path)
 * write `bench/qos-cases-<topic>.ts` exporting `qosBenchGroups(opts): Promise<QosBenchGroup[]>`;
 * bench/qos.ts imports every such module it finds in dist/bench and measures its groups with
 * the same method, in the same run, in the same table.
 *
 * Method. A check takes tens of nanoseconds, below what one timer read can resolve (a
 * process.hrtime.bigint() pair costs ~50–300 ns here), so per-check latency is measured in
 * blocks: each sample is the time of a block of `blockSize` checks (default 1,000) divided by
 * the block size. p50/p99 are percentiles of those per-check block means — a stall (GC, a
 * descheduled core) shows as a slow block, a single slow check inside a block does not.
 * Separately, measureSingle times single checks one by one with process.hrtime.bigint() and
 * reports the timer floor (an empty timed region) beside them. Throughput is checks over the
 * time spent in the case's blocks. On a shared machine wall time includes time descheduled,
 * so each block is also measured in process CPU time (process.cpuUsage, µs resolution: ±1 µs
 * on a block of ~40 µs) — checks per CPU-second and CPU p50/p99 per check are what one core
 * does when it runs the limiter. Every group's cases run interleaved in each round, so load
 * that comes and goes falls on all of them alike; over rounds, p50/p99 and throughput are
 * reported as the median with the spread (smallest–largest round).
 */

export interface QosBenchCase {
  readonly name: string;
  /** The case in the same group this one is compared with. */
  readonly baseline?: string;
  /**
   * Run `n` checks starting at position `start` of the case's key order, with the caller's time
   * in integer µs (read once per block); return how many were admitted.
   */
  readonly run: (n: number, start: number, nowUs: number) => number | Promise<number>;
  /** Time one check at position i for measureSingle (optional). */
  readonly single?: (i: number, nowUs: number) => unknown;
  readonly async?: boolean;
}

export interface QosBenchGroup {
  readonly name: string;
  /** Shown under the table: what the group measures and how. */
  readonly note?: string;
  /** Checks per case per round (async cases: `asyncChecks`). */
  readonly checks: number;
  readonly asyncChecks?: number;
  /** Checks per case before timing (default min(checks, 200,000)): enough to touch every key. */
  readonly warmupChecks?: number;
  readonly cases: readonly QosBenchCase[];
  /** Built lazily (1M keys take memory); released after the group. */
  readonly prepare?: () => Promise<void> | void;
  readonly release?: () => void;
}

export interface QosBenchOptions {
  readonly rounds: number;
  readonly blockSize: number;
  readonly quick: boolean;
}

export interface RoundStats {
  p50Ns: number;
  p99Ns: number;
  checksPerSec: number;
  /** The same from process CPU time (process.cpuUsage around each block): time descheduled excluded. */
  cpuP50Ns: number;
  cpuP99Ns: number;
  cpuChecksPerSec: number;
  admitted: number;
  checks: number;
}

export interface CaseSummary {
  readonly group: string;
  readonly name: string;
  readonly baseline: string | null;
  readonly rounds: readonly RoundStats[];
  readonly p50Ns: number;
  readonly p50SpreadNs: readonly [number, number];
  readonly p99Ns: number;
  readonly p99SpreadNs: readonly [number, number];
  readonly checksPerSec: number;
  readonly checksPerSecSpread: readonly [number, number];
  readonly cpuChecksPerSec: number;
  readonly cpuChecksPerSecSpread: readonly [number, number];
  readonly cpuP50Ns: number;
  readonly cpuP99Ns: number;
  readonly admittedShare: number;
  /** Median throughput of this case over its baseline's. */
  readonly speedup: number | null;
  readonly single?: SingleStats;
}

export interface SingleStats {
  readonly samples: number;
  readonly floorP50Ns: number;
  readonly p50Ns: number;
  readonly p99Ns: number;
}

export function nowMicros(): number {
  return Math.round(performance.now() * 1000);
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** One round of one case: `checks` checks in blocks, per-check block means. */
export async function measureRound(c: QosBenchCase, checks: number, blockSize: number, offset: number) {
  const blocks = Math.max(1, Math.floor(checks / blockSize));
  const samples = new Float64Array(blocks);
  const cpuSamples = new Float64Array(blocks);
  let admitted = 0;
  let totalNs = 0;
  let totalCpuNs = 0;
  for (let b = 0; b < blocks; b++) {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const r = c.run(blockSize, offset + b * blockSize, nowMicros());
    admitted += c.async ? await r : (r as number);
    const ns = Number(process.hrtime.bigint() - t0);
    const cpu = process.cpuUsage(cpu0);
    const cpuNs = (cpu.user + cpu.system) * 1000;
    totalNs += ns;
    totalCpuNs += cpuNs;
    samples[b] = ns / blockSize;
    cpuSamples[b] = cpuNs / blockSize;
  }
  samples.sort();
  cpuSamples.sort();
  return {
    p50Ns: percentile(samples, 0.5),
    p99Ns: percentile(samples, 0.99),
    checksPerSec: (blocks * blockSize) / (totalNs / 1e9),
    cpuP50Ns: percentile(cpuSamples, 0.5),
    cpuP99Ns: percentile(cpuSamples, 0.99),
    cpuChecksPerSec: (blocks * blockSize) / (totalCpuNs / 1e9),
    admitted,
    checks: blocks * blockSize,
  } satisfies RoundStats;
}

/** Single checks timed one by one, and an empty timed region for the timer's own floor. */
export function measureSingle(fn: (i: number, nowUs: number) => unknown, samples: number): SingleStats {
  const floor = new Float64Array(samples);
  const own = new Float64Array(samples);
  let now = nowMicros();
  for (let i = 0; i < samples; i++) {
    if ((i & 1023) === 0) now = nowMicros();
    const a = process.hrtime.bigint();
    const b = process.hrtime.bigint();
    fn(i, now);
    const c = process.hrtime.bigint();
    floor[i] = Number(b - a);
    own[i] = Number(c - b);
  }
  floor.sort();
  own.sort();
  return {
    samples,
    floorP50Ns: percentile(floor, 0.5),
    p50Ns: percentile(own, 0.5),
    p99Ns: percentile(own, 0.99),
  };
}

export async function measureGroup(group: QosBenchGroup, opts: QosBenchOptions): Promise<CaseSummary[]> {
  await group.prepare?.();
  const rounds = group.cases.map(() => [] as RoundStats[]);
  // Warm up: one short pass of every case (JIT, and the keys' state exists before timing).
  for (const c of group.cases) {
    const n = c.async ? (group.asyncChecks ?? group.checks) : group.checks;
    await measureRound(c, group.warmupChecks ?? Math.min(n, 200_000), opts.blockSize, 0);
  }
  let offset = 0;
  for (let r = 0; r < opts.rounds; r++) {
    for (const [k, c] of group.cases.entries()) {
      const n = c.async ? (group.asyncChecks ?? group.checks) : group.checks;
      rounds[k]!.push(await measureRound(c, n, opts.blockSize, offset));
    }
    offset += group.checks;
  }
  const singles = group.cases.map((c) =>
    c.single ? measureSingle(c.single, opts.quick ? 20_000 : 200_000) : undefined,
  );
  const out = group.cases.map((c, k) => {
    const rs = rounds[k]!;
    const p50s = rs.map((s) => s.p50Ns);
    const p99s = rs.map((s) => s.p99Ns);
    const tps = rs.map((s) => s.checksPerSec);
    const cpuTps = rs.map((s) => s.cpuChecksPerSec);
    return {
      group: group.name,
      name: c.name,
      baseline: c.baseline ?? null,
      rounds: rs,
      p50Ns: median(p50s),
      p50SpreadNs: [Math.min(...p50s), Math.max(...p50s)] as const,
      p99Ns: median(p99s),
      p99SpreadNs: [Math.min(...p99s), Math.max(...p99s)] as const,
      checksPerSec: median(tps),
      checksPerSecSpread: [Math.min(...tps), Math.max(...tps)] as const,
      cpuChecksPerSec: median(cpuTps),
      cpuChecksPerSecSpread: [Math.min(...cpuTps), Math.max(...cpuTps)] as const,
      cpuP50Ns: median(rs.map((s) => s.cpuP50Ns)),
      cpuP99Ns: median(rs.map((s) => s.cpuP99Ns)),
      admittedShare: rs.reduce((a, s) => a + s.admitted, 0) / rs.reduce((a, s) => a + s.checks, 0),
      speedup: null as number | null,
      ...(singles[k] ? { single: singles[k] } : {}),
    };
  });
  for (const s of out) {
    const base = s.baseline ? out.find((b) => b.name === s.baseline) : undefined;
    if (base) s.speedup = s.checksPerSec / base.checksPerSec;
  }
  group.release?.();
  return out;
}

function ns(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} ms`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(2)} µs`;
  return `${v.toFixed(1)} ns`;
}

function rate(v: number): string {
  return v >= 1e6 ? `${(v / 1e6).toFixed(2)} M/s` : `${(v / 1e3).toFixed(1)} k/s`;
}

/** A markdown table (pasted into bench/RESULTS.md as is). */
export function formatTable(results: readonly CaseSummary[]): string {
  const head = [
    'group',
    'case',
    'checks/s wall (spread)',
    'checks/s CPU (spread)',
    'p50/check wall (spread)',
    'p99/check wall',
    'p50 / p99 CPU',
    'admitted',
    'vs baseline (wall)',
  ];
  const rows = results.map((r) => [
    r.group,
    r.name,
    `${rate(r.checksPerSec)} (${rate(r.checksPerSecSpread[0])}–${rate(r.checksPerSecSpread[1])})`,
    `${rate(r.cpuChecksPerSec)} (${rate(r.cpuChecksPerSecSpread[0])}–${rate(r.cpuChecksPerSecSpread[1])})`,
    `${ns(r.p50Ns)} (${ns(r.p50SpreadNs[0])}–${ns(r.p50SpreadNs[1])})`,
    ns(r.p99Ns),
    `${ns(r.cpuP50Ns)} / ${ns(r.cpuP99Ns)}`,
    `${(r.admittedShare * 100).toFixed(1)} %`,
    r.speedup === null ? (r.baseline === null ? '' : '?') : `${r.speedup.toFixed(2)}× ${r.baseline}`,
  ]);
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  const singles = results.filter((r) => r.single);
  if (singles.length > 0) {
    lines.push(
      '',
      '| group | case | single check p50 | single check p99 | timer floor p50 (empty region) |',
      '|---|---|---|---|---|',
    );
    for (const r of singles) {
      lines.push(
        `| ${r.group} | ${r.name} | ${ns(r.single!.p50Ns)} | ${ns(r.single!.p99Ns)} | ${ns(r.single!.floorP50Ns)} |`,
      );
    }
  }
  return lines.join('\n');
}
