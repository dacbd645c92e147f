/**
 * Receipt-log fixtures: sample receipts, record boundaries of a log file, and a log left the
 * way a crash leaves it (records written after the last head update).
 */

import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type Receipt, type ReceiptBody, sealReceipt } from '../../src/runtime/receipt.js';
import { ReceiptLog } from '../../src/store/receipt-log.js';

/** Where the first record starts (format 3: magic page + two head-slot pages). */
export const DATA_START = 12288;
/** Byte offsets of the two head slots. */
export const HEAD_SLOTS = [4096, 8192] as const;

/** A distinct, valid receipt for each (n, tag). */
export function sampleReceipt(n: number, tag = 'echo'): Receipt {
  const body: ReceiptBody = {
    v: 1,
    buildId: 'a'.repeat(64),
    backend: 'wasm',
    entry: tag,
    input: { hash: n.toString(16).padStart(64, '0'), size: n },
    output: { hash: 'b'.repeat(64), size: 1 },
    startedAt: new Date(1_700_000_000_000 + n).toISOString(),
    durationNs: 1000 + n,
    resources: { cpuUs: 1, peakMemoryBytes: 65536, fuelUsed: null, engineNs: null },
    sandbox: {
      limits: { timeoutMs: 1, memoryMb: 1, maxInputBytes: 1, maxOutputBytes: 1 },
      fs: { kind: 'none' },
      allowedImports: [],
      network: false,
    },
    determinism: { seed: 0, flags: [] },
    runtime: { node: process.versions.node },
    status: 'completed',
    error: null,
    parents: [],
  };
  return sealReceipt(body);
}

/** Start offsets of every record in a log's bytes (walking declared lengths from DATA_START). */
export function recordOffsets(bytes: Uint8Array): number[] {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const offsets: number[] = [];
  let at = DATA_START;
  while (at + 8 <= view.length) {
    offsets.push(at);
    at += 8 + view.readUInt32BE(at);
  }
  return offsets;
}

/** Write a cleanly closed log of `receipts` at `path` (replacing any file there); returns its bytes. */
export function writeClosedLog(path: string, receipts: readonly Receipt[]): Buffer {
  rmSync(path, { force: true });
  const log = new ReceiptLog(path, { sync: 'never' });
  for (const r of receipts) log.append(r);
  log.close();
  return readFileSync(path);
}

/**
 * Leave at `path` the log a writer leaves when it dies between writing records and moving the
 * head: `committed` receipts under the head, then `uncommitted` more written after it.
 */
export function writeCrashedLog(
  path: string,
  committed: readonly Receipt[],
  uncommitted: readonly Receipt[],
): Buffer {
  rmSync(path, { force: true });
  const log = new ReceiptLog(path, { sync: 'batch', syncIntervalMs: 3_600_000 });
  for (const r of committed) log.append(r);
  log.flush();
  for (const r of uncommitted) log.append(r);
  if (uncommitted.length > 0) log.get(uncommitted[0]!.id); // writes the queue, leaves the head
  const snapshot = readFileSync(path);
  log.close();
  writeFileSync(path, snapshot);
  return snapshot;
}
