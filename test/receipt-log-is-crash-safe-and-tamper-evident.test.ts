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
import type { Receipt } from '../src/runtime/receipt.js';
import { ReceiptLog } from '../src/store/receipt-log.js';
import { StoreLockedError } from '../src/store/errors.js';
import { DATA_START, recordOffsets, sampleReceipt, writeCrashedLog } from './helpers/receipt-log-fixtures.js';

const receipt = sampleReceipt;

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
    const rs = Array.from({ length: 5 }, (_, i) => receipt(i));
    // The head commits 4 records; the 5th was being written when the process died.
    const crashed = writeCrashedLog(path, rs.slice(0, 4), rs.slice(4));
    writeFileSync(path, crashed.subarray(0, crashed.length - 7));
    const log = new ReceiptLog(path);
    expect(log.ids()).toEqual(rs.slice(0, 4).map((r) => r.id));
    expect(log.recoveredBytes).toBeGreaterThan(0);
    log.append(rs[4]!); // appending after recovery continues the chain
    log.close();
    expect(new ReceiptLog(path, { readOnly: true }).ids()).toEqual(rs.map((r) => r.id));
  });

  it('keeps records written after the last head update when they check and chain', () => {
    const rs = Array.from({ length: 6 }, (_, i) => receipt(i));
    writeCrashedLog(path, rs.slice(0, 2), rs.slice(2));
    const log = new ReceiptLog(path);
    expect(log.ids()).toEqual(rs.map((r) => r.id));
    expect(log.recoveredBytes).toBe(0);
    log.close();
  });

  it('reports a log cut after a committed record, which the records alone cannot show', () => {
    fill(5);
    const offsets = recordOffsets(readFileSync(path));
    truncateSync(path, offsets[4]!); // exactly the last record removed: a valid-looking log of 4
    expect(() => new ReceiptLog(path)).toThrow(/was cut: its head .* commits 5 records/);
    expect(statSync(path).size).toBe(offsets[4]);
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
    bytes[DATA_START + 40] = bytes[DATA_START + 40]! ^ 0xff; // inside the first record's payload
    writeFileSync(path, bytes);
    expect(() => new ReceiptLog(path)).toThrow(IntegrityError);
    expect(() => new ReceiptLog(path)).toThrow(/checksum/);
  });

  it('detects a removed record through the hash chain even when checksums are intact', () => {
    const rs = Array.from({ length: 3 }, (_, i) => receipt(i));
    // Not yet committed by the head, so only the chain can tell.
    const bytes = writeCrashedLog(path, [], rs);
    const offsets = recordOffsets(bytes);
    const spliced = Buffer.concat([bytes.subarray(0, offsets[1]), bytes.subarray(offsets[2])]);
    writeFileSync(path, spliced);
    expect(() => new ReceiptLog(path)).toThrow(/hash chain/);
    expect(readFileSync(path)).toEqual(spliced);
  });

  it('detects reordered committed records through the hash chain', () => {
    fill(3);
    const bytes = readFileSync(path);
    const [, second, third] = recordOffsets(bytes) as [number, number, number];
    expect(third - second).toBe(bytes.length - third); // equal lengths: a swap keeps the file size
    const swapped = Buffer.concat([
      bytes.subarray(0, second),
      bytes.subarray(third),
      bytes.subarray(second, third),
    ]);
    writeFileSync(path, swapped);
    expect(() => new ReceiptLog(path)).toThrow(new RegExp(`hash chain.*at byte ${second}`));
  });

  it('refuses a file that is not a receipt log, and unknown ids', () => {
    writeFileSync(path, 'hello world, not a log');
    expect(() => new ReceiptLog(path)).toThrow(/bad magic/);
    writeFileSync(path, 'TPRLOG2\nold records');
    expect(() => new ReceiptLog(path)).toThrow(/format "TPRLOG2"; this thunderpac reads "TPRLOG3"/);
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

  it('refuses a second writer on the same log (one writer at a time), and frees it on close', () => {
    const a = new ReceiptLog(path);
    expect(() => new ReceiptLog(path)).toThrow(StoreLockedError);
    expect(() => new ReceiptLog(path)).toThrow(
      expect.objectContaining({ code: 'STORE_LOCKED', holderPid: process.pid }),
    );
    a.append(receipt(1));
    const reader = new ReceiptLog(path, { readOnly: true }); // readers never need the lock
    a.close();
    const b = new ReceiptLog(path);
    b.append(receipt(2));
    b.close();
    reader.close();
    expect(new ReceiptLog(path, { readOnly: true }).size).toBe(2);
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
    expect(new ReceiptLog(path, { readOnly: true }).ids()).toEqual([...rs.map((r) => r.id), receipt(99).id]);
  });

  it("sync: 'always' writes before append returns", () => {
    const log = new ReceiptLog(path, { sync: 'always' });
    const before = statSync(path).size;
    log.append(receipt(1));
    expect(statSync(path).size).toBeGreaterThan(before);
    log.close();
  });

  it('writes at 256 KiB of queued records even if the event loop never turns', () => {
    const log = new ReceiptLog(path);
    for (let i = 0; i < 1000; i++) log.append(receipt(i));
    expect(statSync(path).size).toBeGreaterThan(128 * 1024);
    log.close();
    expect(new ReceiptLog(path, { readOnly: true }).size).toBe(1000);
  });
});
