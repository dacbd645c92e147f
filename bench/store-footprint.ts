/**
 * Store footprint: bytes on disk and files per execution, for 64 B, 1 KiB and 1 MiB payloads,
 * in the block store (packed segments + artifact index + receipt log) against the legacy
 * layout (one blob file per payload + one link file per payload hash + the same receipt log),
 * written in the same run with the same records.
 *
 *   npx vite-node bench/store-footprint.ts [-- --quick]
 *
 * Each execution stores what the executor stores: its input and output payloads (distinct
 * bytes, encoded and hashed as runtime/payload.ts does) and its receipt; the build is stored
 * once. "payload" is the raw input + output bytes; "bytes" are the files' sizes (apparent) and
 * "alloc" the disk blocks they take (st_blocks × 512: a small file costs a whole 4 KiB block);
 * "meta" = (bytes − payload) per execution, receipt included.
 */

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePayload, hashPayload } from '../src/runtime/payload.js';
import { type ReceiptBody, sealReceipt } from '../src/runtime/receipt.js';
import type { Input } from '../src/runtime/types.js';
import { BlobStore } from '../src/store/blobs.js';
import { ReceiptLog } from '../src/store/receipt-log.js';
import { Store } from '../src/store/store.js';

const quick = process.argv.includes('--quick');

function body(i: number, input: string, inSize: number, output: string, outSize: number): ReceiptBody {
  return {
    v: 1,
    buildId: 'a'.repeat(64),
    backend: 'wasm',
    entry: 'reverse',
    input: { hash: input, size: inSize },
    output: { hash: output, size: outSize },
    startedAt: new Date(1_700_000_000_000 + i).toISOString(),
    durationNs: 41_000 + (i % 1000),
    resources: { cpuUs: 35, peakMemoryBytes: 65536, fuelUsed: null, engineNs: null },
    sandbox: {
      limits: { timeoutMs: 1000, memoryMb: 16, maxInputBytes: 4 << 20, maxOutputBytes: 4 << 20 },
      fs: { kind: 'none' },
      allowedImports: [],
      network: false,
    },
    determinism: { seed: 0, flags: [] },
    runtime: { node: process.versions.node, v8: process.versions.v8 },
    status: 'completed',
    error: null,
    parents: [],
  };
}

/** Bytes per top-level entry of the store directory (where the bytes go). */
function breakdown(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    out.set(d.name, d.isDirectory() ? walk(p).bytes : statSync(p).size);
  }
  return out;
}

function walk(dir: string): { bytes: number; alloc: number; files: number } {
  let bytes = 0;
  let alloc = 0;
  let files = 0;
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) {
      const s = walk(p);
      bytes += s.bytes;
      alloc += s.alloc;
      files += s.files;
    } else {
      const st = statSync(p);
      bytes += st.size;
      alloc += st.blocks * 512;
      files++;
    }
  }
  return { bytes, alloc, files };
}

interface Execution {
  inHash: string;
  inEnc: Uint8Array;
  outHash: string;
  outEnc: Uint8Array;
  payload: number;
  size: number;
}

function executions(n: number, size: number): Execution[] {
  const out: Execution[] = [];
  for (let i = 0; i < n; i++) {
    const input: Input = { kind: 'bytes', bytes: randomBytes(size) };
    const output: Input = { kind: 'bytes', bytes: randomBytes(size) };
    out.push({
      inHash: hashPayload(input),
      inEnc: encodePayload(input),
      outHash: hashPayload(output),
      outEnc: encodePayload(output),
      payload: 2 * size,
      size,
    });
  }
  return out;
}

function runNew(dir: string, xs: Execution[]): number {
  const store = new Store(dir);
  const t0 = performance.now();
  xs.forEach((x, i) => {
    store.putPayload(x.inHash, x.inEnc);
    store.putPayload(x.outHash, x.outEnc);
    const r = sealReceipt(body(i, x.inHash, x.size, x.outHash, x.size));
    store.appendReceipt(r);
  });
  store.close();
  return performance.now() - t0;
}

/** The layout before the block store, as the Store wrote it: blob + link file per payload. */
function runLegacy(dir: string, xs: Execution[]): number {
  mkdirSync(join(dir, 'payloads'), { recursive: true });
  const blobs = new BlobStore(dir);
  const log = new ReceiptLog(join(dir, 'receipts.log'));
  const t0 = performance.now();
  const put = (hash: string, enc: Uint8Array): void => {
    const blob = blobs.put(enc);
    writeFileSync(join(dir, 'payloads', hash), blob);
  };
  xs.forEach((x, i) => {
    put(x.inHash, x.inEnc);
    put(x.outHash, x.outEnc);
    log.append(sealReceipt(body(i, x.inHash, x.size, x.outHash, x.size)));
  });
  log.close();
  return performance.now() - t0;
}

const cases = [
  { label: '64 B', size: 64, n: quick ? 1000 : 5000 },
  { label: '1 KiB', size: 1024, n: quick ? 1000 : 5000 },
  { label: '1 MiB', size: 1 << 20, n: quick ? 20 : 100 },
];

const rows: string[] = [];
const where: string[] = [];
rows.push(
  '| payload | layout | executions | bytes/exec | alloc/exec | files/exec | bytes ÷ payload | meta/exec (B) | µs/exec |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|',
);
for (const c of cases) {
  const xs = executions(c.n, c.size);
  for (const layout of ['legacy', 'blocks'] as const) {
    const dir = mkdtempSync(join(tmpdir(), `tp-footprint-${layout}-`));
    try {
      const ms = layout === 'legacy' ? runLegacy(dir, xs) : runNew(dir, xs);
      const s = walk(dir);
      const payload = c.n * 2 * c.size;
      if (layout === 'blocks') {
        const parts = [...breakdown(dir)]
          .filter(([, b]) => b > 0)
          .map(([name, b]) => `${name} ${(b / c.n).toFixed(1)}`);
        where.push(`${c.label}: ${parts.join(', ')}`);
      }
      rows.push(
        `| ${c.label} | ${layout} | ${c.n} | ${(s.bytes / c.n).toFixed(0)} | ${(s.alloc / c.n).toFixed(0)} | ${(s.files / c.n).toFixed(4)} | ${(s.bytes / payload).toFixed(3)} | ${((s.bytes - payload) / c.n).toFixed(0)} | ${((ms * 1000) / c.n).toFixed(1)} |`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
console.log(
  `store footprint (node ${process.versions.node}; payload = input + output, each of the size given)\n`,
);
console.log(rows.join('\n'));
console.log('\nwhere the bytes go in the block-store layout, bytes per execution:');
console.log(where.join('\n'));
