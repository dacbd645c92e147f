/**
 * Quota consume and abuse detection cost, in-process (issue 12):
 *
 *   npx vite-node bench/qos-quotas.ts
 *
 * Each case runs `rounds` rounds of `n` operations after a warmup and reports ns per operation:
 * the median round, and the fastest and slowest (the spread). Quota cases: in memory; a journal
 * with each durability mode (batched: buffered, written every 20 ms or 1024 records; write: one
 * write(2) per consume; fsync: write + fdatasync per consume); a journal shared across processes
 * (open + flock + catch-up stat/read + write + close per consume, uncontended); the async API.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbuseDetector } from '../src/qos/abuse/index.js';
import { ManualClock } from '../src/qos/clock.js';
import { type QuotaDurability, Quotas } from '../src/qos/quotas/index.js';

const dir = mkdtempSync(join(tmpdir(), 'tp-bench-quotas-'));
const KEYS = Array.from({ length: 10_000 }, (_, i) => `ar:9:token:${i}:execute`);
const results: { name: string; median: number; min: number; max: number; n: number }[] = [];

async function bench(name: string, n: number, rounds: number, op: (i: number) => unknown): Promise<void> {
  for (let i = 0; i < Math.min(n, 20_000); i++) await op(i);
  const perOp: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const x = op(i);
      if (x instanceof Promise) await x;
    }
    perOp.push(Number(process.hrtime.bigint() - t0) / n);
  }
  perOp.sort((a, b) => a - b);
  results.push({ name, median: perOp[Math.floor(rounds / 2)]!, min: perOp[0]!, max: perOp.at(-1)!, n });
}

const plan = { limit: Number.MAX_SAFE_INTEGER, period: 'day' as const };
const load = loadavg()[0]!;

const mem = new Quotas({ plan });
await bench('memory, 1 key, tryConsumeSync', 1_000_000, 7, () => mem.tryConsumeSync('a:alice', 1));
await bench('memory, 10k keys, tryConsumeSync', 1_000_000, 7, (i) =>
  mem.tryConsumeSync(KEYS[i % 10_000]!, 1),
);
await bench('memory, 10k keys, tryConsume (async)', 1_000_000, 7, (i) =>
  mem.tryConsume(KEYS[i % 10_000]!, 1),
);
mem.close();

for (const [durability, n] of [
  ['batched', 1_000_000],
  ['write', 200_000],
  ['fsync', 2_000],
] as [QuotaDurability, number][]) {
  const q = new Quotas({ plan, file: join(dir, `${durability}.journal`), durability });
  await bench(`journal ${durability}, 10k keys`, n, 5, (i) => q.tryConsumeSync(KEYS[i % 10_000]!, 1));
  q.close();
}
const shared = new Quotas({ plan, file: join(dir, 'shared.journal'), sharing: 'shared' });
await bench('journal shared (flock per consume), 10k keys', 100_000, 5, (i) =>
  shared.tryConsumeSync(KEYS[i % 10_000]!, 1),
);
await bench('journal shared, async tryConsume', 100_000, 5, (i) => shared.tryConsume(KEYS[i % 10_000]!, 1));
shared.close();

const clock = new ManualClock(0);
const abuse = new AbuseDetector({ clock });
await bench('abuse: request (spike check), 10k actors', 1_000_000, 7, (i) => {
  if (i % 1000 === 0) clock.advance(1);
  return abuse.request(KEYS[i % 10_000]!);
});
await bench('abuse: violation, 10k actors', 1_000_000, 7, (i) => {
  if (i % 1000 === 0) clock.advance(1);
  return abuse.violation(KEYS[i % 10_000]!, 'rate_limited');
});
await bench('abuse: blockedForMs, 10k actors', 1_000_000, 7, (i) => abuse.blockedForMs(KEYS[i % 10_000]!));

rmSync(dir, { recursive: true, force: true });
console.log(`node ${process.version}, load average (1 min) at start ${load.toFixed(2)}`);
console.log('| case | ops/round | ns/op median | fastest–slowest round |');
console.log('|---|---:|---:|---:|');
for (const r of results) {
  console.log(`| ${r.name} | ${r.n} | ${r.median.toFixed(0)} | ${r.min.toFixed(0)}–${r.max.toFixed(0)} |`);
}
