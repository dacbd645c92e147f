/**
 * Issue #10, defect 4: the receipt log deleted data on open. A flipped bit in a middle record's
 * length was taken for a torn tail and everything after it was cut; any change to the last record
 * was cut silently, and deleting or rewriting it went unnoticed. Now damage is reported with the
 * byte where it is and the file is left exactly as it was; only a torn tail after the committed
 * end is cut, and only by a writer.
 */

import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogIntegrityError } from '../src/store/errors.js';
import { ReceiptLog } from '../src/store/receipt-log.js';
import { Store } from '../src/store/store.js';
import { cli } from './helpers/cli.js';
import {
  DATA_START,
  HEAD_SLOTS,
  recordOffsets,
  sampleReceipt,
  writeClosedLog,
  writeCrashedLog,
} from './helpers/receipt-log-fixtures.js';

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-damage-'));
  path = join(dir, 'receipts.log');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const forty = Array.from({ length: 40 }, (_, i) => sampleReceipt(i));

/** Opening `path` for writing throws a LogIntegrityError at `offset` and changes no byte. */
function expectReportedAt(offset: number | undefined, bytes: Buffer): LogIntegrityError {
  let caught: unknown;
  try {
    new ReceiptLog(path).close();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(LogIntegrityError);
  const error = caught as LogIntegrityError;
  expect(error.code).toBe('INTEGRITY');
  if (offset !== undefined) expect(error.offset).toBe(offset);
  expect(error.message).toContain(`at byte ${error.offset}`);
  expect(readFileSync(path).equals(bytes)).toBe(true);
  return error;
}

describe('damage in the middle of the log is reported, never cut', () => {
  it('for every one of the 32 bits of a middle record length', () => {
    const clean = writeClosedLog(path, forty);
    const middle = recordOffsets(clean)[20]!;
    for (let bit = 0; bit < 32; bit++) {
      const bytes = Buffer.from(clean);
      bytes.writeUInt32BE((bytes.readUInt32BE(middle) ^ (1 << bit)) >>> 0, middle);
      writeFileSync(path, bytes);
      expectReportedAt(middle, bytes);
    }
  });

  it('for a length of 0x7fffffff in the middle (which used to cut the file in half)', () => {
    const bytes = writeClosedLog(path, forty);
    const middle = recordOffsets(bytes)[20]!;
    bytes.writeUInt32BE(0x7fffffff, middle);
    writeFileSync(path, bytes);
    expect(expectReportedAt(middle, bytes).message).toMatch(/past the committed end/);
  });

  it('through the CLI too: receipt list fails with INTEGRITY and the file keeps all 40', async () => {
    const bytes = writeClosedLog(path, forty);
    const middle = recordOffsets(bytes)[20]!;
    bytes[middle + 3]! ^= 0x01;
    writeFileSync(path, bytes);
    const { code, err } = await cli('receipt', 'list', '--store', dir);
    expect(code).toBe(2);
    expect(err).toMatch(new RegExp(`INTEGRITY: .*at byte ${middle}`));
    expect(readFileSync(path).equals(bytes)).toBe(true);
  });
});

describe('the end of the log is committed by its head', () => {
  it('reports a changed byte in the last record', () => {
    const clean = writeClosedLog(path, forty);
    const last = recordOffsets(clean).at(-1)!;
    for (const at of [last, last + 3, last + 4, last + 8, last + 40, clean.length - 1]) {
      const bytes = Buffer.from(clean);
      bytes[at]! ^= 0x10;
      writeFileSync(path, bytes);
      expectReportedAt(last, bytes);
    }
  });

  it('reports the last record deleted (the file cut at a record boundary)', () => {
    const bytes = writeClosedLog(path, forty);
    const last = recordOffsets(bytes).at(-1)!;
    truncateSync(path, last);
    const error = expectReportedAt(last, bytes.subarray(0, last));
    expect(error.message).toMatch(/was cut: its head .* commits 40 records/);
  });

  it('reports the last record rewritten as another valid, chained record', () => {
    const original = writeClosedLog(path, forty);
    // The same 39 records and a different 40th, checksummed and chained like the real one.
    const other = join(dir, 'other.log');
    writeClosedLog(other, [...forty.slice(0, 39), sampleReceipt(39, 'ohce')]);
    const forged = Buffer.concat([
      original.subarray(0, recordOffsets(original).at(-1)!),
      readFileSync(other).subarray(recordOffsets(original).at(-1)!),
    ]);
    writeFileSync(path, forged);
    const error = expectReportedAt(forged.length, forged);
    expect(error.message).toMatch(/not the ones the head .* commits: .* rewritten/);
  });

  it('reports both head slots damaged, and falls back to the other slot when one is', () => {
    const clean = writeClosedLog(path, forty);
    const both = Buffer.from(clean);
    both[HEAD_SLOTS[0] + 20]! ^= 1;
    both[HEAD_SLOTS[1] + 20]! ^= 1;
    writeFileSync(path, both);
    expectReportedAt(HEAD_SLOTS[0], both);
    for (const slot of HEAD_SLOTS) {
      const one = Buffer.from(clean);
      one[slot + 20]! ^= 1;
      writeFileSync(path, one);
      const log = new ReceiptLog(path, { readOnly: true });
      expect(log.ids()).toEqual(forty.map((r) => r.id));
      log.close();
    }
  });

  it('reports a file cut to nothing instead of starting a new log in it', () => {
    writeClosedLog(path, forty);
    truncateSync(path, 0);
    expectReportedAt(0, Buffer.alloc(0));
  });
});

describe('a torn tail is cut only by a writer', () => {
  const committed = forty.slice(0, 30);
  const uncommitted = forty.slice(30);

  function tornLog(): Buffer {
    const crashed = writeCrashedLog(path, committed, uncommitted);
    const torn = crashed.subarray(0, crashed.length - 5); // the last write stopped 5 bytes short
    writeFileSync(path, torn);
    return torn;
  }

  it('a read-only open reads the complete records and leaves every byte in place', () => {
    const torn = tornLog();
    const log = new ReceiptLog(path, { readOnly: true });
    expect(log.ids()).toEqual(forty.slice(0, 39).map((r) => r.id));
    expect(log.recoveredBytes).toBeGreaterThan(0);
    expect(() => log.append(forty[39]!)).toThrow(expect.objectContaining({ code: 'STORE_READ_ONLY' }));
    log.close();
    expect(readFileSync(path).equals(torn)).toBe(true);
  });

  it('receipt list and show (read-only commands) leave every byte in place', async () => {
    const torn = tornLog();
    const list = await cli('receipt', 'list', '--store', dir);
    expect(list.code).toBe(0);
    expect(list.out.trim().split('\n')).toEqual(forty.slice(0, 39).map((r) => r.id));
    const show = await cli('receipt', 'show', forty[5]!.id, '--store', dir);
    expect(show.code).toBe(0);
    expect(readFileSync(path).equals(torn)).toBe(true);
  });

  it('a writer cuts exactly the torn record and commits what it kept', () => {
    const torn = tornLog();
    const lastStart = recordOffsets(torn).at(-1)!;
    const log = new ReceiptLog(path);
    expect(log.recoveredBytes).toBe(torn.length - lastStart);
    log.close();
    const after = readFileSync(path);
    expect(after.length).toBe(lastStart);
    expect(after.subarray(DATA_START).equals(torn.subarray(DATA_START, lastStart))).toBe(true);
    // The kept records are now committed: removing one more is reported.
    truncateSync(path, recordOffsets(readFileSync(path)).at(-1)!);
    expect(() => new ReceiptLog(path)).toThrow(/was cut/);
  });

  it('a damaged record after the committed end that a valid record follows is reported, not cut', () => {
    const crashed = writeCrashedLog(path, committed, uncommitted);
    const offsets = recordOffsets(crashed);
    const victim = offsets[33]!;
    const bytes = Buffer.from(crashed);
    bytes.writeUInt32BE(0x7fffffff, victim);
    writeFileSync(path, bytes);
    expect(expectReportedAt(victim, bytes).message).toMatch(/valid record follows/);
  });

  it('a read-only Store creates nothing where there is no store', () => {
    const missing = join(dir, 'no-store-here');
    const store = new Store(missing, { readOnly: true });
    expect(store.receipts.ids()).toEqual([]);
    store.close();
    expect(() => readFileSync(join(missing, 'receipts.log'))).toThrow(/ENOENT/);
  });
});
