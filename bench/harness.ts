/**
 * A small benchmark harness: warm up, time each operation with performance.now(), keep the
 * samples in an HdrHistogram, report p50 / p99 / throughput and the ratio of p50 to a baseline
 * measured in the same run.
 */

import { performance } from 'node:perf_hooks';
import { LatencyHistogram } from '../src/telemetry/latency.js';

export interface CaseResult {
  readonly name: string;
  readonly group: string;
  readonly baseline: string | null;
  readonly iterations: number;
  readonly p50Ns: number;
  readonly p99Ns: number;
  readonly meanNs: number;
  readonly opsPerSec: number;
  /** p50 of this case over p50 of its baseline. */
  readonly ratioP50: number | null;
}

export interface CaseSpec {
  readonly name: string;
  readonly group: string;
  /** Name of the case in the same group this one is compared with. */
  readonly baseline?: string;
  readonly iterations: number;
  readonly warmup: number;
  readonly fn: () => unknown;
}

/** Measure one case: its warmup, then all its iterations in one go. */
export async function measure(spec: CaseSpec): Promise<Omit<CaseResult, 'ratioP50'>> {
  const [result] = await measureInterleaved([spec], 1);
  return result!;
}

/**
 * Measure several cases in `turns` turns each, round robin, instead of one after
 * the other: on a shared machine, load that comes and goes then falls on every case alike, so
 * the ratios between them (raw call vs execute) stay honest. Throughput counts only the time
 * spent in the case itself.
 */
export async function measureInterleaved(
  specs: readonly CaseSpec[],
  turns = 10,
): Promise<Omit<CaseResult, 'ratioP50'>[]> {
  for (const spec of specs) for (let i = 0; i < spec.warmup; i++) await spec.fn();
  const state = specs.map(() => ({ h: new LatencyHistogram(), done: 0, elapsedMs: 0 }));
  for (let open = specs.length; open > 0; ) {
    open = 0;
    for (const [k, spec] of specs.entries()) {
      const st = state[k]!;
      const n = Math.min(Math.ceil(spec.iterations / turns), spec.iterations - st.done);
      if (n <= 0) continue;
      open++;
      const start = performance.now();
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        const r = spec.fn();
        if (r instanceof Promise) await r;
        st.h.record((performance.now() - t0) * 1e6);
      }
      st.elapsedMs += performance.now() - start;
      st.done += n;
    }
  }
  return specs.map((spec, k) => {
    const { h, elapsedMs } = state[k]!;
    const s = h.summary();
    return {
      name: spec.name,
      group: spec.group,
      baseline: spec.baseline ?? null,
      iterations: spec.iterations,
      p50Ns: s.p50,
      p99Ns: s.p99,
      meanNs: Math.round(s.mean),
      opsPerSec: Math.round(spec.iterations / (elapsedMs / 1e3)),
    };
  });
}

export function withRatios(results: Omit<CaseResult, 'ratioP50'>[]): CaseResult[] {
  return results.map((r) => {
    const base = r.baseline ? results.find((b) => b.group === r.group && b.name === r.baseline) : undefined;
    return { ...r, ratioP50: base ? r.p50Ns / base.p50Ns : null };
  });
}

function fmtNs(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns.toFixed(0)} ns`;
}

export function printTable(results: readonly CaseResult[]): void {
  const rows = results.map((r) => [
    r.group,
    r.name,
    fmtNs(r.p50Ns),
    fmtNs(r.p99Ns),
    `${r.opsPerSec.toLocaleString('en-US')}/s`,
    r.ratioP50 === null ? '' : `${r.ratioP50.toFixed(2)}× ${r.baseline}`,
  ]);
  const head = ['group', 'case', 'p50', 'p99', 'throughput', 'p50 vs baseline'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  process.stdout.write(`${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const row of rows) process.stdout.write(`${line(row)}\n`);
}
