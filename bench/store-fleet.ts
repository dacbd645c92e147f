/**
 * bench:store-fleet — the fleet index on a real PostgreSQL 15 cluster (a fresh one in a temp dir,
 * fsync off, the test helper's; or `--postgres URL`): two stores ("two hosts") append N receipts
 * each, then
 *   - mirror throughput: receipts/s from the local logs into the index (both hosts at once,
 *     batches of 1000, one transaction each), and the append cost with fleet mode on vs off;
 *   - query latency across hosts (median and p95 of repeated runs): a page of 100 by build,
 *     by actor + time range, by status (rare), produced-by, lineage of a 50-step DAG chain that
 *     alternates hosts, derived-from its first input.
 *
 *   npx vite-node bench/store-fleet.ts -- [--receipts N] [--postgres URL]
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Receipt, type ReceiptBody, sealReceiptEncoded } from '../src/runtime/receipt.js';
import { Store } from '../src/store/store.js';

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const N = Number(arg('--receipts') ?? 100_000);
const T0 = Date.parse('2026-12-05T00:00:00.000Z');
const hex = (n: number) => n.toString(16).padStart(64, '0');
const BUILDS = Array.from({ length: 16 }, (_, i) => hex(0xb000 + i));

let serial = 0;
function sealed(over: Partial<ReceiptBody> = {}): { receipt: Receipt; body: Uint8Array } {
  serial++;
  return sealReceiptEncoded({
    v: 1,
    buildId: BUILDS[serial % BUILDS.length]!,
    backend: 'wasm',
    entry: 'run',
    input: { hash: hex(0x100000000 + serial), size: 64 },
    output: { hash: hex(0x200000000 + serial), size: 64 },
    startedAt: new Date(T0 + serial * 10).toISOString(),
    durationNs: 1000 + serial,
    resources: { cpuUs: null, peakMemoryBytes: 65536, fuelUsed: 100, engineNs: null },
    sandbox: {
      limits: { timeoutMs: 1000, memoryMb: 64, maxInputBytes: 1 << 20, maxOutputBytes: 1 << 20 },
      fs: { kind: 'none' },
      allowedImports: [],
      network: false,
    },
    determinism: { seed: 0, flags: [] },
    runtime: { node: process.version },
    status: serial % 100 === 0 ? 'failed' : 'completed',
    error: null,
    parents: [],
    actor: `uid:${serial % 50}`,
    requestId: `r${serial}`,
    ...over,
  });
}

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `median ${q(0.5).toFixed(2)} ms, p95 ${q(0.95).toFixed(2)} ms (${s.length} runs)`;
}

async function time(runs: number, f: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await f();
    out.push(performance.now() - t);
  }
  return out;
}

const helper = new URL('../test/helpers/postgres-server.ts', import.meta.url).pathname;
let url = arg('--postgres');
let stop: (() => Promise<void>) | undefined;
if (!url) {
  const { startPostgresServer } = (await import(
    helper
  )) as typeof import('../test/helpers/postgres-server.js');
  const pg = await startPostgresServer();
  url = pg.url;
  stop = () => pg.stop();
}
const dirs = [mkdtempSync(join(tmpdir(), 'tp-fleet-bench-')), mkdtempSync(join(tmpdir(), 'tp-fleet-bench-'))];
const dirOff = mkdtempSync(join(tmpdir(), 'tp-fleet-bench-'));
try {
  // Append cost with and without fleet mode (the mirror's work is deferred; appends never wait).
  const make = () => Array.from({ length: N }, () => sealed());
  const off = new Store(dirOff);
  const offRecords = make();
  let t = performance.now();
  for (const r of offRecords) off.appendReceipt(r.receipt, r.body);
  off.receipts.flush();
  const offMs = performance.now() - t;
  off.close();

  const fleet = { postgres: url, delayMs: 60_000 }; // no mirroring while appending: measured apart
  const stores = dirs.map((d, i) => new Store(d, { fleet: { ...fleet, host: `bench-${i}` } }));
  const records = stores.map(() => make());
  t = performance.now();
  for (let i = 0; i < N; i++) {
    stores[0]!.appendReceipt(records[0]![i]!.receipt, records[0]![i]!.body);
    stores[1]!.appendReceipt(records[1]![i]!.receipt, records[1]![i]!.body);
  }
  for (const s of stores) s.receipts.flush();
  const onMs = (performance.now() - t) / 2;
  console.log(
    `append ${N} receipts: fleet off ${((N / offMs) * 1000).toFixed(0)}/s, fleet on ${((N / onMs) * 1000).toFixed(0)}/s (per store)`,
  );

  t = performance.now();
  await Promise.all(stores.map((s) => s.fleet!.sync()));
  const mirrorMs = performance.now() - t;
  console.log(
    `mirror ${2 * N} receipts from 2 hosts: ${(mirrorMs / 1000).toFixed(2)} s, ${(((2 * N) / mirrorMs) * 1000).toFixed(0)} receipts/s (${stores[0]!.fleet!.status()!.batches} batches per host)`,
  );

  // A 50-step chain alternating hosts: step i consumes step i-1's output and names it as parent.
  let prev: Receipt | undefined;
  const chain: Receipt[] = [];
  for (let i = 0; i < 50; i++) {
    const r = sealed({
      input: { hash: prev ? prev.output!.hash! : hex(0xc0ffee), size: 1 },
      output: { hash: hex(0xd00000 + i), size: 1 },
      parents: prev ? [prev.id] : [],
    });
    stores[i % 2]!.appendReceipt(r.receipt, r.body);
    await stores[i % 2]!.fleet!.sync();
    chain.push(r.receipt);
    prev = r.receipt;
  }
  const index = stores[0]!.fleet!.index;
  const runs = 30;
  const last = chain[chain.length - 1]!;
  const cases: [string, () => Promise<unknown>][] = [
    ['page of 100 by build', () => index.query({ build: BUILDS[3]!, limit: 100 })],
    [
      'page of 100 by actor + 1 min range',
      () =>
        index.query({
          actor: 'uid:7',
          since: new Date(T0 + 60_000).toISOString(),
          until: new Date(T0 + 120_000).toISOString(),
        }),
    ],
    ['page of 100 by status failed', () => index.query({ status: 'failed', limit: 100 })],
    ['get by id', () => index.get(records[1]![N >> 1]!.receipt.id)],
    ['produced-by (+ 49 ancestors)', () => index.producedBy(last.output!.hash!)],
    ['lineage of a 50-step 2-host chain', () => index.lineage(last.id)],
    ['derived-from the chain input (50)', () => index.derivedFrom(hex(0xc0ffee))],
  ];
  for (const [name, f] of cases) console.log(`${name}: ${stats(await time(runs, f))}`);
  // The walk past the one-query cap (a round trip per depth) gives the same first receipts.
  const full = await index.derivedFrom(hex(0xc0ffee));
  const cut = await index.derivedFrom(hex(0xc0ffee), 10);
  if (
    full.receipts.length !== 50 ||
    JSON.stringify(cut.receipts) !== JSON.stringify(full.receipts.slice(0, 10)) ||
    !cut.truncated
  ) {
    throw new Error('derived-from: the capped walk differs from the whole walk');
  }
  console.log(
    `derived-from, cut at 10 (a round trip per depth): ${stats(await time(runs, () => index.derivedFrom(hex(0xc0ffee), 10)))}`,
  );
  for (const s of stores) s.close();
} finally {
  for (const d of [...dirs, dirOff]) rmSync(d, { recursive: true, force: true });
  await stop?.();
}
