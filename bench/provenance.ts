/**
 * Lineage index at scale: `npx vite-node bench/provenance.ts [N]` (default 100000). Appends N
 * synthetic receipts (sha256 payload hashes; every third receipt a root, the others name the
 * previous one as parent), then measures: building the index from the log on first use, writing
 * its checkpoint, the checkpoint's size, a read-only open, a lookup (producers / consumers /
 * children; each includes looking at the log for new receipts), and a derived-from walk of
 * 1000 receipts. Prints one JSON line. `KEEP=1` keeps the store and prints its directory.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { sha256Hex } from '../src/runtime/canonical.js';
import { type ReceiptBody, sealReceiptEncoded } from '../src/runtime/receipt.js';
import { Store } from '../src/store/store.js';

const N = Number(process.argv[2] ?? 100000);
const dir = mkdtempSync(join(tmpdir(), 'tp-pbench-'));
const hash = (n: number) => sha256Hex(String(n));
const sandbox = Object.freeze({
  limits: Object.freeze({ timeoutMs: 1, memoryMb: 1, maxInputBytes: 1, maxOutputBytes: 1 }),
  fs: Object.freeze({ kind: 'none' as const }),
  allowedImports: Object.freeze([]) as unknown as string[],
  network: false as const,
});
const det = Object.freeze({ seed: 0, flags: Object.freeze([]) as unknown as string[] });
const rt = Object.freeze({});
let s = new Store(dir, { sync: 'never' });
const ids: string[] = [];
for (let i = 0; i < N; i++) {
  const body: ReceiptBody = {
    v: 1,
    buildId: hash(0xb),
    backend: 'wasm',
    entry: 'e',
    input: { hash: hash(i + 1), size: 1 },
    output: { hash: hash(i + 2), size: 1 },
    startedAt: new Date(1.7e12 + i).toISOString(),
    durationNs: i,
    resources: { cpuUs: null, peakMemoryBytes: null, fuelUsed: null, engineNs: null },
    sandbox,
    determinism: det,
    runtime: rt,
    status: 'completed',
    error: null,
    parents: i > 0 && i % 3 ? [ids[i - 1]!] : [],
  };
  const { receipt, body: b } = sealReceiptEncoded(body);
  s.appendReceipt(receipt, b);
  ids.push(receipt.id);
}
s.close();
let t = performance.now();
s = new Store(dir);
const t0 = performance.now();
s.provenance;
const build = performance.now() - t0;
s.close();
const closeMs = performance.now() - t0 - build;
const size = statSync(join(dir, 'provenance', 'lineage.idx')).size;
s = new Store(dir, { readOnly: true });
t = performance.now();
const p = s.provenance;
const open = performance.now() - t;
t = performance.now();
const Q = 1000;
for (let q = 0; q < Q; q++) {
  const i = (q * 7919) % N;
  p.producers(hash(i + 2));
  p.consumers(hash(i + 1));
  p.children(ids[i]!);
}
const per = (performance.now() - t) / (3 * Q);
t = performance.now();
const d = p.derivedFrom(hash(Math.floor(N / 2)), 1000);
const dMs = performance.now() - t;
s.close();
console.log(
  JSON.stringify({
    receipts: N,
    buildMs: Math.round(build),
    checkpointWriteMs: Math.round(closeMs),
    idxBytes: size,
    bytesPerReceipt: +(size / N).toFixed(1),
    openMs: +open.toFixed(2),
    lookupUs: +(per * 1000).toFixed(1),
    derived: d.receipts.length,
    derivedMs: +dMs.toFixed(1),
  }),
);
if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
else console.log(dir);
