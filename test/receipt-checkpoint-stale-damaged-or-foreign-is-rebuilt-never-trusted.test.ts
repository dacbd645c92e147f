/**
 * The receipt index checkpoint (receipt-checkpoint.ts) is derived data: a log opens from it only
 * when it ties to the log, and a stale, damaged or foreign checkpoint never changes what the log
 * reads as — it is used up to where it is valid (stale), or refused / dropped and rebuilt.
 * Damage in the log under a checkpoint is still reported: by verify(), and by any read of the
 * damaged record.
 */

import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Receipt } from '../src/runtime/receipt.js';
import { LogIntegrityError } from '../src/store/errors.js';
import { ReceiptIndex } from '../src/store/receipt-index.js';
import { ReceiptLog } from '../src/store/receipt-log.js';
import { recordOffsets, sampleReceipt } from './helpers/receipt-log-fixtures.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-ckpt-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const receipts = (from: number, n: number, tag = 'echo'): Receipt[] =>
  Array.from({ length: n }, (_, i) => sampleReceipt(from + i, tag));

function write(path: string, rs: readonly Receipt[], checkpointMin = 1): void {
  const log = new ReceiptLog(path, { sync: 'never', checkpointMin });
  for (const r of rs) log.append(r);
  log.close();
}

/** Everything a reader can learn from the log: ids in order, every receipt, index answers. */
function readAll(log: ReceiptLog) {
  const ids = log.ids();
  const got = ids.map((id) => log.get(id));
  const byOrdinal = ids.map((_, i) => log.getAt(i).id);
  const index = new ReceiptIndex(log);
  const oldest = index.query({ order: 'oldest', limit: 1000 }).receipts.map((r) => r.id);
  const failed = index.query({ status: 'failed', limit: 1000 }).receipts.length;
  const prefix = ids.length > 0 ? log.idsWithPrefix(ids[ids.length >> 1]!.slice(0, 6)) : [];
  return { ids, got, byOrdinal, oldest, failed, prefix };
}

function expectTruth(log: ReceiptLog, truth: readonly Receipt[]): void {
  const seen = readAll(log);
  const ids = truth.map((r) => r.id);
  expect(seen.ids).toEqual(ids);
  expect(seen.got).toEqual(truth);
  expect(seen.byOrdinal).toEqual(ids);
  expect(seen.oldest).toEqual(ids);
  expect(seen.failed).toBe(0);
  if (ids.length > 0) {
    const p = ids[ids.length >> 1]!.slice(0, 6);
    expect(seen.prefix).toEqual(ids.filter((id) => id.startsWith(p)));
  }
  for (const id of ids) expect(log.has(id)).toBe(true);
  expect(log.has('0'.repeat(64))).toBe(false);
}

describe('receipt checkpoint', () => {
  it('is written on close and used on open: the log reads the same as without it', () => {
    const path = join(dir, 'receipts.log');
    const rs = receipts(0, 60);
    write(path, rs);
    expect(existsSync(join(dir, 'receipts.idx'))).toBe(true);
    const log = new ReceiptLog(path, { readOnly: true });
    expect(log.checkpointStatus).toBe('used');
    expect(log.checkpointedCount).toBe(60);
    expectTruth(log, rs);
    const plain = new ReceiptLog(path, { readOnly: true, checkpoint: false });
    expect(plain.checkpointStatus).toBe('absent');
    expectTruth(plain, rs);
    expect(log.verify().checkpoint).toBe('consistent');
  });

  it('a stale checkpoint (older than the log) is used up to its end and the rest is scanned', () => {
    const path = join(dir, 'receipts.log');
    const first = receipts(0, 20);
    write(path, first);
    const more = receipts(20, 30);
    write(path, more, 1_000_000); // no new checkpoint: the one at 20 is now stale
    const log = new ReceiptLog(path, { readOnly: true });
    expect(log.checkpointStatus).toBe('used');
    expect(log.checkpointedCount).toBe(20);
    expectTruth(log, [...first, ...more]);
  });

  it('a checkpoint of another log is refused, the log scanned, and a writer rewrites it', () => {
    const a = join(dir, 'a.log');
    const b = join(dir, 'b.log');
    write(a, receipts(0, 30, 'a'));
    const bs = receipts(0, 30, 'b');
    write(b, bs);
    copyFileSync(join(dir, 'a.idx'), join(dir, 'b.idx'));
    const reader = new ReceiptLog(b, { readOnly: true });
    expect(reader.checkpointStatus).toMatch(/^refused: .*another log/);
    expectTruth(reader, bs);
    const writer = new ReceiptLog(b);
    expect(writer.checkpointStatus).toBe('written');
    writer.close();
    const again = new ReceiptLog(b, { readOnly: true });
    expect(again.checkpointStatus).toBe('used');
    expectTruth(again, bs);
  });

  it('a checkpoint that claims more than the log head commits is refused', () => {
    const path = join(dir, 'receipts.log');
    const rs = receipts(0, 40);
    write(path, rs.slice(0, 10), 1_000_000);
    const short = readFileSync(path);
    write(path, rs.slice(10)); // checkpoint of all 40
    writeFileSync(path, short); // the log as it was at 10 receipts, the checkpoint of 40 beside it
    const log = new ReceiptLog(path, { readOnly: true });
    expect(log.checkpointStatus).toMatch(/^refused: .*past what the log head commits/);
    expectTruth(log, rs.slice(0, 10));
  });

  it('any damaged byte of the checkpoint is detected: the log reads the same, and a writer rebuilds it', () => {
    const path = join(dir, 'receipts.log');
    const rs = receipts(0, 50);
    write(path, rs);
    const idx = join(dir, 'receipts.idx');
    const good = readFileSync(idx);
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), (at, mask) => {
        const bad = Buffer.from(good);
        bad[at]! ^= mask;
        writeFileSync(idx, bad);
        const log = new ReceiptLog(path, { readOnly: true });
        expectTruth(log, rs);
        expect(log.checkpointStatus).toMatch(/^(refused|dropped): /);
        log.close();
        // A writer finds the damage on open (header) or when it reads the block, and rewrites it.
        const writer = new ReceiptLog(path);
        expectTruth(writer, rs);
        writer.close();
        expect(readFileSync(idx).equals(good)).toBe(true); // rebuilt: the same bytes as before the damage
      }),
      { numRuns: 60 },
    );
  });

  it('a cut or emptied checkpoint is refused', () => {
    const path = join(dir, 'receipts.log');
    const rs = receipts(0, 30);
    write(path, rs);
    const idx = join(dir, 'receipts.idx');
    const good = readFileSync(idx);
    for (const bytes of [good.subarray(0, good.length - 1), good.subarray(0, 100), Buffer.alloc(0)]) {
      writeFileSync(idx, bytes);
      const log = new ReceiptLog(path, { readOnly: true });
      expect(log.checkpointStatus).toMatch(/^refused: /);
      expectTruth(log, rs);
    }
  });

  it('damage in the log under a checkpoint is reported by verify() and by reading that record', () => {
    const path = join(dir, 'receipts.log');
    const rs = receipts(0, 40);
    write(path, rs);
    const bytes = readFileSync(path);
    const offsets = recordOffsets(bytes);
    const victim = offsets[10]!;
    bytes[victim + 60]! ^= 0xff; // inside record 10's body: its crc fails
    writeFileSync(path, bytes);
    const log = new ReceiptLog(path, { readOnly: true });
    expect(log.checkpointStatus).toBe('used'); // open does not read record 10...
    expect(() => log.verify()).toThrow(LogIntegrityError); // ...the full verify does
    expect(() => log.verify()).toThrow(new RegExp(`checksum.*at byte ${victim}`));
    expect(() => log.get(rs[10]!.id)).toThrow(new RegExp(`checksum.*at byte ${victim}`));
    expect(log.get(rs[9]!.id)).toEqual(rs[9]); // the rest still reads
    // Without the checkpoint, open itself reports it, as it always has.
    expect(() => new ReceiptLog(path, { readOnly: true, checkpoint: false })).toThrow(
      new RegExp(`checksum.*at byte ${victim}`),
    );
  });

  it('with a checkpoint, any byte of the log flipped is reported by open or verify(), or reads as the truth', () => {
    const path = join(dir, 'receipts.log');
    const rs = receipts(0, 40);
    write(path, rs);
    const good = readFileSync(path);
    const ckpt = readFileSync(join(dir, 'receipts.idx'));
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), (at, mask) => {
        const bad = Buffer.from(good);
        bad[at]! ^= mask;
        writeFileSync(path, bad);
        writeFileSync(join(dir, 'receipts.idx'), ckpt);
        let log: ReceiptLog;
        try {
          log = new ReceiptLog(path, { readOnly: true });
        } catch (err) {
          expect(err).toBeInstanceOf(LogIntegrityError);
          return;
        }
        let verified = true;
        try {
          log.verify();
        } catch (err) {
          expect(err).toBeInstanceOf(LogIntegrityError);
          verified = false;
        }
        // Only bytes no check covers (the header pages' padding, the older head slot) pass verify.
        if (verified) {
          expect(at < 12288).toBe(true);
          expectTruth(log, rs);
        } else expect(at >= 4096).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it("queries that cross the checkpoint's row chunks (65536 rows) and its end answer as a scan would", () => {
    const path = join(dir, 'receipts.log');
    const n = 70_000;
    const rs = receipts(0, n);
    write(path, rs, 1024);
    const extra = receipts(n, 10);
    write(path, extra, 1_000_000); // 10 records after the checkpoint
    const all = [...rs, ...extra];
    const log = new ReceiptLog(path, { readOnly: true });
    expect(log.checkpointedCount).toBe(n);
    const index = new ReceiptIndex(log);
    const at = (i: number) => new Date(1_700_000_000_000 + i).toISOString(); // sampleReceipt's startedAt
    const range = (from: number, to: number) => all.slice(from, to).map((r) => r.id);
    const oldest = index.query({ since: at(65_530), until: at(65_545), order: 'oldest', limit: 1000 });
    expect(oldest.receipts.map((r) => r.id)).toEqual(range(65_530, 65_545));
    const newest = index.query({ since: at(69_995), until: at(70_010), limit: 1000 });
    expect(newest.receipts.map((r) => r.id)).toEqual(range(69_995, 70_010).reverse());
    // Paging newest-first through the chunk boundary with cursors.
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const page = index.query({
        since: at(65_500),
        until: at(65_600),
        limit: 7,
        ...(cursor ? { cursor } : {}),
      });
      paged.push(...page.receipts.map((r) => r.id));
      cursor = page.next ?? undefined;
    } while (cursor);
    expect(paged).toEqual(range(65_500, 65_600).reverse());
    expect(index.size).toBe(n + 10);
  }, 60_000);

  it('a writer folds a checkpoint at a sync once enough records pass it, and keeps reading and indexing across it', () => {
    const path = join(dir, 'receipts.log');
    const log = new ReceiptLog(path, { sync: 'batch', syncIntervalMs: 3_600_000, checkpointMin: 1 });
    const index = new ReceiptIndex(log);
    const first = receipts(0, 100);
    for (const r of first) log.append(r);
    expect(index.query({ order: 'oldest', limit: 1000 }).receipts.map((r) => r.id)).toEqual(
      first.map((r) => r.id),
    );
    log.flush(); // tail 100 ≥ max(16, 100/8): the sync writes a checkpoint
    expect(log.checkpointStatus).toBe('written');
    expect(log.checkpointedCount).toBe(100);
    const more = receipts(100, 5);
    for (const r of more) log.append(r); // queued, past the checkpoint
    expect(log.get(more[4]!.id)).toEqual(more[4]);
    expect(log.get(first[3]!.id)).toEqual(first[3]);
    const all = [...first, ...more];
    expect(index.query({ order: 'oldest', limit: 1000 }).receipts.map((r) => r.id)).toEqual(
      all.map((r) => r.id),
    );
    expect(new ReceiptIndex(log).query({ limit: 1000 }).receipts.map((r) => r.id)).toEqual(
      all.map((r) => r.id).reverse(),
    );
    log.close();
    const reader = new ReceiptLog(path, { readOnly: true });
    expect(reader.checkpointStatus).toBe('used');
    expectTruth(reader, all);
  });

  it('a side index catches up from a saved position, and a position of another log is refused', () => {
    const path = join(dir, 'receipts.log');
    const rs = receipts(0, 30);
    write(path, rs.slice(0, 20));
    let log = new ReceiptLog(path);
    const seen: string[] = [];
    const saved = log.scanBodies(ReceiptLog.START, (id) => seen.push(id));
    expect(saved).toEqual(log.endPosition);
    for (const r of rs.slice(20)) log.append(r);
    log.close();
    log = new ReceiptLog(path, { readOnly: true });
    const after = log.scanBodies(saved, (id, _body, ordinal) => {
      expect(ordinal).toBe(seen.length);
      seen.push(id);
    });
    expect(seen).toEqual(rs.map((r) => r.id));
    expect(after).toEqual(log.endPosition);
    expect(log.positionAt(20)).toEqual(saved);
    expect(() => log.scanBodies({ ordinal: 20, offset: saved.offset + 1 }, () => {})).toThrow(/position/);
  });
});
