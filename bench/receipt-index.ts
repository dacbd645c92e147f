/**
 * The receipt index at scale: open time, index build time, memory per receipt and query
 * latency for a log of N receipts (default 100,000), attributed as the daemon seals them.
 *
 *   npx tsc -p tsconfig.json && node --expose-gc dist/bench/receipt-index.js [N]
 *
 * Memory is the heap growth measured around each step after a forced GC (so it needs
 * --expose-gc), divided by N: the log's own id index (open), then the receipt index's columns
 * and interned strings (first query). Times are single runs on whatever the machine is doing:
 * read them as magnitudes.
 */

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type ReceiptBody, sealReceiptEncoded } from '../src/runtime/receipt.js';
import { Store } from '../src/store/store.js';

const N = Number(process.argv[2] ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
/** JS heap plus ArrayBuffer memory (the index's columns are typed arrays, outside the heap). */
const heap = (): number => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
/** Wall and CPU (user + system) time of `f`, ms: on a loaded machine the two differ widely. */
function timed<T>(f: () => T): { value: T; wallMs: number; cpuMs: number } {
  const c = process.cpuUsage();
  const t = performance.now();
  const value = f();
  const cpu = process.cpuUsage(c);
  return { value, wallMs: performance.now() - t, cpuMs: (cpu.user + cpu.system) / 1000 };
}

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

const dir = mkdtempSync(join(tmpdir(), 'tp-bench-receipt-index-'));
try {
  const t = performance.now();
  const writer = new Store(dir, { sync: 'never' });
  for (let i = 0; i < N; i++) {
    const body: ReceiptBody = {
      v: 1,
      buildId: builds[i % builds.length]!,
      backend: 'wasm',
      entry: 'echo',
      input: { hash: i.toString(16).padStart(64, 'a'), size: 64 },
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
    writer.appendReceipt(sealed.receipt, sealed.body);
  }
  writer.close();
  const size = statSync(join(dir, 'receipts.log')).size;
  console.log(
    `wrote ${N} receipts: ${(size / 1e6).toFixed(1)} MB, ${(size / N).toFixed(0)} B/receipt, ${(performance.now() - t).toFixed(0)} ms`,
  );

  const h0 = heap();
  const open = timed(() => new Store(dir, { readOnly: true }));
  const store = open.value;
  const h1 = heap();
  console.log(
    `open (read-only; the log's own scan and id index): ${open.wallMs.toFixed(0)} ms wall, ${open.cpuMs.toFixed(0)} ms CPU, memory +${((h1 - h0) / N).toFixed(0)} B/receipt`,
  );

  const build = timed(() => store.listReceipts({ limit: 1 }));
  const h2 = heap();
  console.log(
    `receipt index (first query: one pass over the records): ${build.wallMs.toFixed(0)} ms wall, ${build.cpuMs.toFixed(0)} ms CPU, memory +${((h2 - h1) / N).toFixed(1)} B/receipt (columns ${(store.receiptIndex.bytes / N).toFixed(1)} B/receipt at their allocated capacity)`,
  );

  const time = (label: string, q: Parameters<Store['listReceipts']>[0], runs = 20) => {
    const samples: number[] = [];
    let found = 0;
    for (let i = 0; i < runs; i++) {
      const s = performance.now();
      found = store.listReceipts(q).receipts.length;
      samples.push(performance.now() - s);
    }
    samples.sort((a, b) => a - b);
    console.log(
      `  ${label}: median ${(samples[runs >> 1]! * 1000).toFixed(0)} µs (${found} receipts returned)`,
    );
  };
  console.log('queries (median of 20):');
  time('newest 100, no filter', {});
  time('newest 1000, no filter', { limit: 1000 });
  time('one build, newest 100', { build: builds[7]! });
  time('one actor + failed, newest 100', { actor: actors[0]!, status: 'failed' });
  time('time range of 1 s, oldest first', {
    since: new Date(T0 + (N / 2) * 10).toISOString(),
    until: new Date(T0 + (N / 2) * 10 + 1000).toISOString(),
    order: 'oldest',
  });
  time('an actor never seen (answered without a scan)', { actor: 'uid:404' });
  time('a filter matching nothing (full scan)', { build: builds[1]!, actor: actors[2]! });
  store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
