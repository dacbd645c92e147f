/**
 * GC throughput: a store of N executions (1 KiB input and output payloads each, packed in
 * segments) under a retention policy that keeps the newest half of the receipts; GC marks the
 * other half's payloads reclaimed, deletes segments left dead and compacts the rest. Reported:
 * receipts scanned per second, artifacts reclaimed per second, bytes freed per second, and the
 * dry run (which only decides) beside the real run. Each round builds a fresh store.
 *
 *   npx vite-node bench/store-gc.ts [-- --executions N --rounds R]
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePayload, hashPayload } from '../src/runtime/payload.js';
import { sealReceipt } from '../src/runtime/receipt.js';
import type { Input } from '../src/runtime/types.js';
import { Store } from '../src/store/store.js';
import { syntheticReceiptBody } from '../test/helpers/receipt-bodies.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const executions = arg('executions', 50_000);
const rounds = arg('rounds', 3);

function fill(dir: string): Store {
  const store = new Store(dir, { segmentBytes: 4 << 20 });
  for (let i = 0; i < executions; i++) {
    const input: Input = { kind: 'bytes', bytes: randomBytes(1024) };
    const output: Input = { kind: 'bytes', bytes: randomBytes(1024) };
    const inHash = hashPayload(input);
    const outHash = hashPayload(output);
    store.putPayload(inHash, encodePayload(input));
    store.putPayload(outHash, encodePayload(output));
    store.appendReceipt(
      sealReceipt(
        syntheticReceiptBody({
          buildId: 'a'.repeat(64),
          input: { hash: inHash, size: 1024 },
          output: { hash: outHash, size: 1024 },
          startedAt: new Date(1_700_000_000_000 + i).toISOString(),
          durationNs: i,
          status: 'completed',
          parents: [],
        }),
      ),
    );
  }
  store.flush();
  return store;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const dry: number[] = [];
const real: number[] = [];
let reclaimed = 0;
let freed = 0;
console.log(
  `store GC: ${executions} executions (2 × 1 KiB payloads each), keep the newest half; ${rounds} rounds`,
);
for (let r = 0; r < rounds; r++) {
  const dir = mkdtempSync(join(tmpdir(), 'tp-bench-gc-'));
  try {
    const store = fill(dir);
    const retention = { keepReceipts: executions / 2 };
    let t = performance.now();
    store.gc({ retention, dryRun: true, graceMs: 0 });
    dry.push(performance.now() - t);
    t = performance.now();
    const report = store.gc({ retention, graceMs: 0, minDeadRatio: 0.3 });
    real.push(performance.now() - t);
    reclaimed = report.reclaimed.artifacts;
    freed = report.freed.bytes + report.compaction.bytesFreed;
    store.close();
    console.log(
      `  round ${r + 1}: dry run ${dry.at(-1)!.toFixed(0)} ms, gc ${real.at(-1)!.toFixed(0)} ms: reclaimed ${reclaimed} artifacts, freed ${(freed / 2 ** 20).toFixed(1)} MiB`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const gcMs = median(real);
console.log(
  `median: dry run ${median(dry).toFixed(0)} ms (${((executions / median(dry)) * 1000).toFixed(0)} receipts/s), ` +
    `gc ${gcMs.toFixed(0)} ms: ${((executions / gcMs) * 1000).toFixed(0)} receipts/s scanned, ` +
    `${((reclaimed / gcMs) * 1000).toFixed(0)} artifacts/s reclaimed, ${(freed / 2 ** 20 / (gcMs / 1000)).toFixed(0)} MiB/s freed ` +
    `(spread ${Math.min(...real).toFixed(0)}–${Math.max(...real).toFixed(0)} ms); load ${loadavg()[0]!.toFixed(1)}`,
);
