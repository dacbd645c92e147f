import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IntegrityError, NotFoundError } from '../src/runtime/errors.js';
import { type Receipt, type ReceiptBody, sealReceipt } from '../src/runtime/receipt.js';
import { ReceiptLog } from '../src/store/receipt-log.js';

function receipt(n: number): Receipt {
  const body: ReceiptBody = {
    v: 1,
    buildId: 'a'.repeat(64),
    backend: 'wasm',
    entry: 'echo',
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

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-log-'));
  path = join(dir, 'receipts.log');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function fill(n: number): Receipt[] {
  const log = new ReceiptLog(path, { sync: 'always' });
  const rs = Array.from({ length: n }, (_, i) => receipt(i));
  for (const r of rs) log.append(r);
  log.close();
  return rs;
}

describe('receipt log', () => {
  it('reads back every receipt, in order, after reopening', () => {
    const rs = fill(20);
    const log = new ReceiptLog(path);
    expect(log.ids()).toEqual(rs.map((r) => r.id));
    for (const r of rs) expect(log.get(r.id)).toEqual(r);
    expect(log.recoveredBytes).toBe(0);
    log.close();
  });

  it('cuts a torn last record (crash mid-write) and keeps everything before it', () => {
    const rs = fill(5);
    const full = statSync(path).size;
    truncateSync(path, full - 7);
    const log = new ReceiptLog(path);
    expect(log.ids()).toEqual(rs.slice(0, 4).map((r) => r.id));
    expect(log.recoveredBytes).toBeGreaterThan(0);
    log.append(rs[4]!); // appending after recovery continues the chain
    log.close();
    expect(new ReceiptLog(path).ids()).toEqual(rs.map((r) => r.id));
  });

  it('treats half a header at the end as a torn tail too', () => {
    fill(2);
    appendFileSync(path, Buffer.from([0, 0]));
    const log = new ReceiptLog(path);
    expect(log.size).toBe(2);
    expect(log.recoveredBytes).toBe(2);
    log.close();
  });

  it('reports a corrupted record in the middle instead of dropping it', () => {
    fill(3);
    const bytes = readFileSync(path);
    bytes[40] = bytes[40]! ^ 0xff; // inside the first record's payload
    writeFileSync(path, bytes);
    expect(() => new ReceiptLog(path)).toThrow(IntegrityError);
    expect(() => new ReceiptLog(path)).toThrow(/checksum/);
  });

  it('detects a removed record through the hash chain even when checksums are intact', () => {
    const rs = fill(3);
    const bytes = readFileSync(path);
    // Find record boundaries and splice the middle record out.
    const offsets: number[] = [];
    let at = 8;
    while (at < bytes.length) {
      offsets.push(at);
      at += 8 + bytes.readUInt32BE(at);
    }
    const spliced = Buffer.concat([bytes.subarray(0, offsets[1]), bytes.subarray(offsets[2])]);
    writeFileSync(path, spliced);
    expect(rs.length).toBe(3);
    expect(() => new ReceiptLog(path)).toThrow(/hash chain/);
  });

  it('refuses a file that is not a receipt log, and unknown ids', () => {
    writeFileSync(path, 'hello world, not a log');
    expect(() => new ReceiptLog(path)).toThrow(/bad magic/);
    writeFileSync(path, 'TPRLOG1\nold records');
    expect(() => new ReceiptLog(path)).toThrow(/format "TPRLOG1"; this thunderpac reads "TPRLOG2"/);
    rmSync(path);
    const log = new ReceiptLog(path);
    expect(() => log.get('c'.repeat(64))).toThrow(NotFoundError);
    log.close();
    expect(() => log.append(receipt(1))).toThrow(/closed/);
  });

  it('refuses to log a receipt that does not hash to its id', () => {
    const log = new ReceiptLog(path);
    const forged = { ...receipt(1), status: 'failed' as const };
    expect(() => log.append(forged)).toThrow(/does not hash to its id/);
    expect(log.size).toBe(0);
    log.close();
  });

  it('indexes records another writer appended since it was opened', () => {
    const a = new ReceiptLog(path);
    const b = new ReceiptLog(path);
    a.append(receipt(1));
    b.append(receipt(2));
    a.append(receipt(3));
    a.close();
    b.close();
    expect(new ReceiptLog(path).size).toBe(3);
  });
});

describe('receipt log batching', () => {
  it('queues appends within one turn and writes them in one go, readable at once', async () => {
    const log = new ReceiptLog(path);
    const before = statSync(path).size;
    const rs = Array.from({ length: 10 }, (_, i) => receipt(i));
    for (const r of rs) log.append(r);
    expect(statSync(path).size).toBe(before); // nothing written yet
    expect(log.get(rs[3]!.id)).toEqual(rs[3]); // a read writes the queue first
    expect(statSync(path).size).toBeGreaterThan(before);
    log.append(receipt(99));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    log.close();
    expect(new ReceiptLog(path).ids()).toEqual([...rs.map((r) => r.id), receipt(99).id]);
  });

  it("sync: 'always' writes before append returns", () => {
    const log = new ReceiptLog(path, { sync: 'always' });
    const before = statSync(path).size;
    log.append(receipt(1));
    expect(statSync(path).size).toBeGreaterThan(before);
    log.close();
  });

  it('writes at 64 KiB of queued records even if the event loop never turns', () => {
    const log = new ReceiptLog(path);
    for (let i = 0; i < 200; i++) log.append(receipt(i));
    expect(statSync(path).size).toBeGreaterThan(32 * 1024);
    log.close();
    expect(new ReceiptLog(path).size).toBe(200);
  });
});
