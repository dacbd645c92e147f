/**
 * The receipt log: an append-only file of checksummed, hash-chained records, with a head that
 * commits how far the log reaches.
 *
 * Why a file of our own rather than lmdb: receipts are an audit trail — written once, in order,
 * never updated — and the log's job is to make loss and tampering visible. An append-only file
 * gives that with one `write` per batch of receipts; a B-tree store would add a mutable structure
 * we would then have to audit. The in-memory index (id → offset) is rebuilt by one sequential
 * scan on open.
 *
 * Layout (format 3, magic `TPRLOG3\n`):
 *
 *     bytes 0..8        magic
 *     bytes 4096..4160  head slot A   } u64be seq | u64be count | u64be end | lastHash (32)
 *     bytes 8192..8256  head slot B   } | u32be crc32 of the 56 bytes before | 4 zero bytes
 *     bytes 12288..     records: u32be length | u32be crc32(payload) | payload
 *                       payload = prev (32 bytes) | canonical receipt body
 *
 * `prev` is the sha256 of the previous record's payload (32 zero bytes for the first), so
 * removing, reordering or editing a record breaks the chain there. The receipt id is not stored:
 * it is the sha256 of the body bytes. The head says "the first `count` records end at byte `end`
 * and the last one hashes to `lastHash`": it is what makes a cut or rewritten end visible, which
 * no property of the records alone can (a log cut after any record is itself a valid log). Two
 * slots in their own pages are written alternately, so a torn head write leaves the other, older
 * head intact; the newest slot whose checksum holds is the head.
 *
 * Open checks, and what happens:
 *   - every byte before the head's `end` is committed: any bad record, broken link, or a count or
 *     last hash that differs from the head → LogIntegrityError naming the byte; nothing is cut;
 *   - a file shorter than the head's `end` (the end was cut) → LogIntegrityError;
 *   - records after the head's `end` were written after the last head update (a crash before the
 *     next sync): kept when they check and chain;
 *   - after the head's `end`, bytes that end mid-record (the declared length runs past the end of
 *     the file, or half a header), or are all zeros from a record on (a power loss in an extended
 *     file), with no valid record anywhere after them, are a torn tail (a crash mid-write): a
 *     writer cuts it; a read-only open leaves the file alone and ignores it. Anything else — a
 *     complete record that fails its checksum, a bad record that a valid record follows — is
 *     corruption → LogIntegrityError.
 *
 * So a damaged committed record is always reported. After the head's end the one damage that
 * cannot be told from a crash is a length field grown past the end of the file in the very last
 * record: that record is cut like a torn write. A cleanly closed log has nothing after its head.
 *
 * One writer at a time: a writer holds flock(LOCK_EX) on the file for as long as it is open (see
 * file-lock.ts); a second writer gets StoreLockedError. A read-only open takes no lock, writes
 * nothing and can run beside a writer: it sees the committed prefix and the complete records
 * after it, and `refresh()` takes in what the writer appended since (the head re-read, newly
 * committed bytes checked as on open, complete records past the head taken when they check and
 * chain; one still being written is left for the next refresh). `scanBodies` hands the record
 * bodies, in order and in large reads, to indexes built beside the log (receipt-index.ts).
 *
 * Durability, and when the head moves (the head only ever claims bytes already as durable as the
 * policy makes them, so a crash never leaves a head that claims more than the log holds):
 *   - `sync: 'always'`: each append is written and fdatasynced, then the head is written, before
 *     append returns (survives power loss; costs a disk flush per execution);
 *   - `'batch'` (default): appends are queued and written once per event-loop turn (or at
 *     64 KiB); every `syncIntervalMs` and on close the log is fdatasynced and then the head is
 *     written: a process crash loses at most the receipts of the current turn, power loss at most
 *     `syncIntervalMs` of them;
 *   - `'never'`: as batch without fdatasync; after a power loss the head may claim records the
 *     disk never got, and open reports the log as cut (they were acknowledged and are lost).
 */

import {
  closeSync,
  constants,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  linkSync,
  openSync,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hash } from 'node:crypto';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { decodeCanonical, encodeCanonical, sha256Hex } from '../runtime/canonical.js';
import { IntegrityError, NotFoundError } from '../runtime/errors.js';
import type { Receipt } from '../runtime/receipt.js';
import { LogIntegrityError, StoreReadOnlyError } from './errors.js';
import { lockForWriting } from './file-lock.js';

/** The format version is in the magic: a reader refuses a log written in another format. */
const MAGIC = Buffer.from('TPRLOG3\n');
const MAGIC_FAMILY = 'TPRLOG';
const PAGE = 4096;
/** Each head slot has a page to itself, so writing one can never tear the other or the magic. */
const HEAD_SLOTS = [PAGE, 2 * PAGE] as const;
const HEAD_BYTES = 64;
const HEAD_CHECKED = 56;
/** Where the first record starts. */
const DATA_START = 3 * PAGE;
const HEADER = 8;
const GENESIS = Buffer.alloc(32);
const PREV = 32;
/** Queued records are written at once past this many bytes, whatever the event loop does. */
const MAX_PENDING_BYTES = 64 * 1024;
/** Index marker of a record queued but not yet written. */
const PENDING = Symbol('pending');
const U32 = 2 ** 32;

/** One-shot sha256 (no Hash object: about twice as fast for records of a few hundred bytes). */
function sha256(bytes: Uint8Array): Buffer {
  return hash('sha256', bytes, 'buffer') as unknown as Buffer;
}

const CHUNK = 1 << 20;

/**
 * The file read forward through one chunk of 1 MiB at a time, for the scan on open (records in
 * order): one read syscall per chunk instead of two per record. A view is valid until the next
 * call. Bytes past `size` (the file's size when the scan began) are never read; a range the file
 * no longer holds (cut meanwhile) reads as zeros, as a short read into a zeroed buffer would.
 */
class ForwardReader {
  readonly #fd: number;
  readonly #size: number;
  #buf = Buffer.allocUnsafe(CHUNK);
  #at = 0;
  #len = 0;

  constructor(fd: number, size: number) {
    this.#fd = fd;
    this.#size = size;
  }

  view(offset: number, length: number): Buffer {
    if (offset >= this.#at && offset + length <= this.#at + this.#len) {
      return this.#buf.subarray(offset - this.#at, offset - this.#at + length);
    }
    if (length > this.#buf.length) this.#buf = Buffer.allocUnsafe(length);
    const want = Math.max(length, Math.min(this.#buf.length, this.#size - offset));
    let got = 0;
    while (got < want) {
      const n = readSync(this.#fd, this.#buf, got, want - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    if (got < length) this.#buf.fill(0, got, length);
    this.#at = offset;
    this.#len = Math.max(got, length);
    return this.#buf.subarray(0, length);
  }
}

export type SyncPolicy = 'always' | 'batch' | 'never';

export interface ReceiptLogOptions {
  readonly sync?: SyncPolicy;
  readonly syncIntervalMs?: number;
  /**
   * Open for reading only: no lock, nothing created, cut or written, usable while a writer holds
   * the log. A missing log reads as empty.
   */
  readonly readOnly?: boolean;
}

interface Entry {
  readonly offset: number;
  readonly length: number;
}

/** A place in the log between two records: how many come before it, and its byte offset. */
export interface LogPosition {
  readonly ordinal: number;
  readonly offset: number;
}

/** What a head slot commits. */
interface Head {
  readonly seq: number;
  readonly count: number;
  readonly end: number;
  readonly lastHash: Buffer;
  /** The slot's byte offset, for messages. */
  readonly at: number;
}

function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32BE(Math.floor(value / U32), at);
  buf.writeUInt32BE(value % U32, at + 4);
}

function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * U32 + buf.readUInt32BE(at + 4);
}

function encodeHead(seq: number, count: number, end: number, lastHash: Buffer): Buffer {
  const slot = Buffer.alloc(HEAD_BYTES);
  writeU64(slot, seq, 0);
  writeU64(slot, count, 8);
  writeU64(slot, end, 16);
  lastHash.copy(slot, 24);
  slot.writeUInt32BE(crc32(slot.subarray(0, HEAD_CHECKED)), HEAD_CHECKED);
  return slot;
}

/** A slot's head, or undefined when its checksum (or its sense) fails. */
function decodeHead(slot: Buffer, at: number): Head | undefined {
  if (crc32(slot.subarray(0, HEAD_CHECKED)) !== slot.readUInt32BE(HEAD_CHECKED)) return undefined;
  const head = {
    seq: readU64(slot, 0),
    count: readU64(slot, 8),
    end: readU64(slot, 16),
    lastHash: Buffer.from(slot.subarray(24, 56)),
    at,
  };
  if (head.end < DATA_START || !Number.isSafeInteger(head.end)) return undefined;
  return head;
}

/**
 * Create an empty log at `path` (magic and two heads committing no records) unless one exists.
 * Written to a temporary name, synced, and linked into place: a log file is never seen without
 * its header, and link (unlike rename) never replaces a log another process created meanwhile.
 */
function createLog(path: string): void {
  const tmp = `${path}.new-${process.pid}`;
  const initial = Buffer.alloc(DATA_START);
  MAGIC.copy(initial, 0);
  encodeHead(1, 0, DATA_START, GENESIS).copy(initial, HEAD_SLOTS[1]);
  encodeHead(0, 0, DATA_START, GENESIS).copy(initial, HEAD_SLOTS[0]);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, initial, 0, initial.length, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  const dirFd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

function openExisting(path: string, flags: number): number | undefined {
  try {
    return openSync(path, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export class ReceiptLog {
  readonly path: string;
  readonly readOnly: boolean;
  /** -1 when a read-only open found no log (yet: `refresh` looks again). */
  #fd: number;
  readonly #sync: SyncPolicy;
  readonly #syncIntervalMs: number;
  readonly #index = new Map<string, Entry | typeof PENDING>();
  readonly #order: string[] = [];
  #end = DATA_START;
  #count = 0;
  #lastHash: Buffer = GENESIS;
  #headSeq = 0;
  /** The end the head on disk commits. */
  #committedEnd = DATA_START;
  #syncTimer: NodeJS.Timeout | undefined;
  #pending: { id: string; body: Uint8Array }[] = [];
  #pendingBytes = 0;
  #writeScheduled = false;
  #closed = false;
  /**
   * Bytes of a torn tail found on open (0 when there was none): cut when opened for writing,
   * left in the file (and not read) when opened read-only.
   */
  readonly recoveredBytes: number;

  constructor(path: string, options: ReceiptLogOptions = {}) {
    this.path = path;
    this.readOnly = options.readOnly ?? false;
    this.#sync = options.sync ?? 'batch';
    this.#syncIntervalMs = options.syncIntervalMs ?? 100;
    if (this.readOnly) {
      this.#fd = openExisting(path, constants.O_RDONLY) ?? -1;
      if (this.#fd < 0) {
        this.recoveredBytes = 0;
        return;
      }
    } else {
      let fd = openExisting(path, constants.O_RDWR);
      if (fd === undefined) {
        createLog(path);
        fd = openSync(path, constants.O_RDWR);
      }
      this.#fd = fd;
    }
    try {
      if (!this.readOnly) lockForWriting(this.#fd, path);
      this.recoveredBytes = this.#open();
    } catch (err) {
      closeSync(this.#fd);
      throw err;
    }
  }

  #open(): number {
    // The head is read before the size: a concurrent writer extends the file before it moves the
    // head, so the size read afterwards always covers what the head commits.
    const header = Buffer.alloc(DATA_START);
    const got = readSync(this.#fd, header, 0, DATA_START, 0);
    const size = fstatSync(this.#fd).size;
    if (size === 0) {
      throw new LogIntegrityError(
        this.path,
        0,
        'is empty: a receipt log always holds its header, so it was cut to nothing or is not a receipt log',
      );
    }
    const magic = header.subarray(0, MAGIC.length);
    if (got < MAGIC.length || !magic.equals(MAGIC)) {
      const text = magic.toString('latin1');
      if (text.startsWith(MAGIC_FAMILY)) {
        throw new LogIntegrityError(
          this.path,
          0,
          `is a receipt log in format ${JSON.stringify(text.trim())}; this thunderpac reads ${JSON.stringify(MAGIC.toString().trim())}`,
        );
      }
      throw new LogIntegrityError(this.path, 0, 'is not a thunderpac receipt log (bad magic)');
    }
    if (got < DATA_START || size < DATA_START) {
      throw new LogIntegrityError(this.path, Math.min(got, size), 'ends inside its header (the log was cut)');
    }
    const head = this.#newestHead(header);
    if (size < head.end) {
      throw new LogIntegrityError(
        this.path,
        size,
        `was cut: its head (byte ${head.at}) commits ${head.count} records ending at byte ${head.end}, but the file ends here`,
      );
    }
    this.#headSeq = head.seq;
    this.#committedEnd = head.end;
    const torn = this.#scan(size, head);
    if (this.readOnly) return torn;
    if (torn > 0) ftruncateSync(this.#fd, this.#end);
    // Records recovered after the head (or a cut tail) become committed now, so the next open
    // holds this writer to them.
    if (this.#end !== head.end || torn > 0) this.#commit();
    return torn;
  }

  #newestHead(header: Buffer): Head {
    let newest: Head | undefined;
    for (const at of HEAD_SLOTS) {
      const head = decodeHead(header.subarray(at, at + HEAD_BYTES), at);
      if (head && (!newest || head.seq > newest.seq)) newest = head;
    }
    if (!newest) {
      throw new LogIntegrityError(
        this.path,
        HEAD_SLOTS[0],
        `both head slots (bytes ${HEAD_SLOTS[0]} and ${HEAD_SLOTS[1]}) fail their checksums`,
      );
    }
    return newest;
  }

  /**
   * Index every record from `this.#end` on; returns the length of a torn tail after the
   * committed end (0 if none). `live` (a read-only refresh beside a writer): after the committed
   * end, a record that is incomplete or does not check may be one the writer is writing right
   * now, so the scan stops before it, neither reporting nor indexing it; the next refresh looks
   * again. Committed bytes are checked the same either way.
   */
  #scan(size: number, head: Head, live = false): number {
    const reader = new ForwardReader(this.#fd, size);
    let offset = this.#end;
    this.#checkAgainstHead(offset, head);
    while (offset < size) {
      const committed = offset < head.end;
      if (live && !committed && !this.#completeRecordAt(offset, size)) return 0;
      if (size - offset < HEADER) {
        if (committed)
          throw new LogIntegrityError(
            this.path,
            offset,
            `record header crosses the committed end at byte ${head.end}`,
          );
        return this.#tornTail(offset, size);
      }
      const header = reader.view(offset, HEADER);
      const length = header.readUInt32BE(0);
      const crc = header.readUInt32BE(4);
      const next = offset + HEADER + length;
      if (committed && next > head.end) {
        throw new LogIntegrityError(
          this.path,
          offset,
          `record declares ${length} bytes, past the committed end at byte ${head.end} (its length is corrupted)`,
        );
      }
      // The bytes end mid-record: the one shape a crash mid-write leaves.
      if (next > size) return this.#tornTail(offset, size);
      if (length < PREV) {
        if (!committed && this.#zeroFrom(offset, size)) return this.#tornTail(offset, size);
        throw new LogIntegrityError(this.path, offset, `record declares an impossible length ${length}`);
      }
      const payload = reader.view(offset + HEADER, length);
      if (crc32(payload) !== crc) {
        if (!committed && this.#zeroFrom(offset, size)) return this.#tornTail(offset, size);
        throw new LogIntegrityError(this.path, offset, 'record fails its checksum (corrupted log)');
      }
      const prev = payload.subarray(0, PREV);
      if (!prev.equals(this.#lastHash)) {
        throw new LogIntegrityError(
          this.path,
          offset,
          'record breaks the hash chain (a record was removed, reordered or edited)',
          this.#lastHash.toString('hex'),
          prev.toString('hex'),
        );
      }
      const id = sha256Hex(payload.subarray(PREV));
      this.#index.set(id, { offset: offset + HEADER, length });
      this.#order.push(id);
      this.#lastHash = sha256(payload);
      this.#count++;
      offset = next;
      this.#end = next;
      this.#checkAgainstHead(offset, head);
    }
    return 0;
  }

  /** Whether a whole record that passes its checksum starts at `offset` (for live scans). */
  #completeRecordAt(offset: number, size: number): boolean {
    if (size - offset < HEADER) return false;
    const header = Buffer.alloc(HEADER);
    readSync(this.#fd, header, 0, HEADER, offset);
    const length = header.readUInt32BE(0);
    if (length < PREV || offset + HEADER + length > size) return false;
    const payload = Buffer.alloc(length);
    readSync(this.#fd, payload, 0, length, offset + HEADER);
    return crc32(payload) === header.readUInt32BE(4);
  }

  /** At the committed end, the records read must be the ones the head commits. */
  #checkAgainstHead(offset: number, head: Head): void {
    if (offset !== head.end) return;
    if (this.#count !== head.count || !this.#lastHash.equals(head.lastHash)) {
      throw new LogIntegrityError(
        this.path,
        offset,
        `the records up to the committed end are not the ones the head (byte ${head.at}) commits: ` +
          `${this.#count} records found, ${head.count} committed (the end of the log was rewritten)`,
        head.lastHash.toString('hex'),
        this.#lastHash.toString('hex'),
      );
    }
  }

  /**
   * The bytes from `offset` end mid-record (or are zeros a power loss left in a file extended but
   * not written): a torn tail if no valid record follows, corruption otherwise. Returns the torn
   * length or throws. Only reached after the committed end: the head vouches for everything before.
   */
  #tornTail(offset: number, size: number): number {
    const tail = Buffer.alloc(size - offset);
    readSync(this.#fd, tail, 0, tail.length, offset);
    for (let at = 1; at + HEADER + PREV <= tail.length; at++) {
      const length = tail.readUInt32BE(at);
      if (length < PREV || at + HEADER + length > tail.length) continue;
      if (crc32(tail.subarray(at + HEADER, at + HEADER + length)) === tail.readUInt32BE(at + 4)) {
        throw new LogIntegrityError(
          this.path,
          offset,
          `record is damaged and a valid record follows at byte ${offset + at}: corruption, not a torn tail`,
        );
      }
    }
    return tail.length;
  }

  /** Whether every byte from `offset` to `size` is zero. */
  #zeroFrom(offset: number, size: number): boolean {
    const tail = Buffer.alloc(size - offset);
    readSync(this.#fd, tail, 0, tail.length, offset);
    return tail.every((b) => b === 0);
  }

  get size(): number {
    return this.#index.size;
  }

  has(id: string): boolean {
    return this.#index.has(id);
  }

  /**
   * Append a receipt. `body`, when given, must be the canonical body encoding its id was
   * computed from (what sealReceiptEncoded returns); without it the receipt is encoded and
   * refused if it does not hash to its id.
   *
   * With `sync: 'always'` the record is written and fdatasynced before this returns. Otherwise
   * records are queued and written together — one write per event-loop turn, or sooner when
   * 64 KiB are pending — so a burst of executions costs one syscall, not one each.
   */
  append(receipt: Receipt, body?: Uint8Array): void {
    if (this.#closed) throw new IntegrityError(`${this.path}: receipt log is closed`);
    if (this.readOnly) throw new StoreReadOnlyError(this.path, `append receipt ${receipt.id}`);
    let encoded = body;
    if (!encoded) {
      const { id: _, ...rest } = receipt;
      encoded = encodeCanonical(rest);
      const id = sha256Hex(encoded);
      if (id !== receipt.id) {
        throw new IntegrityError('receipt does not hash to its id; refusing to log it', receipt.id, id);
      }
    }
    this.#pending.push({ id: receipt.id, body: encoded });
    this.#pendingBytes += HEADER + PREV + encoded.byteLength;
    this.#index.set(receipt.id, PENDING);
    this.#order.push(receipt.id);
    if (this.#sync === 'always' || this.#pendingBytes >= MAX_PENDING_BYTES) this.#writePending();
    else if (!this.#writeScheduled) {
      this.#writeScheduled = true;
      setImmediate(this.#writeSoon);
    }
  }

  readonly #writeSoon = (): void => {
    this.#writeScheduled = false;
    if (!this.#closed) this.#writePending();
  };

  /** Chain and write every queued record in one write at the end (this writer holds the lock). */
  #writePending(): void {
    if (this.#pending.length === 0) return;
    const batch = Buffer.allocUnsafe(this.#pendingBytes);
    let at = 0;
    for (const { id, body } of this.#pending) {
      const payloadLength = PREV + body.byteLength;
      const payload = batch.subarray(at + HEADER, at + HEADER + payloadLength);
      this.#lastHash.copy(payload, 0);
      payload.set(body, PREV);
      batch.writeUInt32BE(payloadLength, at);
      batch.writeUInt32BE(crc32(payload), at + 4);
      this.#index.set(id, { offset: this.#end + at + HEADER, length: payloadLength });
      this.#lastHash = sha256(payload);
      at += HEADER + payloadLength;
    }
    writeSync(this.#fd, batch, 0, batch.byteLength, this.#end);
    this.#end += batch.byteLength;
    this.#count += this.#pending.length;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#sync === 'always') this.#commit();
    else if (!this.#syncTimer) {
      this.#syncTimer = setTimeout(() => this.flush(), this.#syncIntervalMs);
      this.#syncTimer.unref();
    }
  }

  /**
   * Make what is written durable (per the policy), then move the head to it. The head goes to
   * the slot the current head is not in, so a torn head write leaves the current one readable.
   */
  #commit(): void {
    if (this.#sync !== 'never') fdatasyncSync(this.#fd);
    if (this.#committedEnd === this.#end) return;
    const seq = this.#headSeq + 1;
    const slot = encodeHead(seq, this.#count, this.#end, this.#lastHash);
    writeSync(this.#fd, slot, 0, HEAD_BYTES, HEAD_SLOTS[seq % 2]);
    this.#headSeq = seq;
    this.#committedEnd = this.#end;
  }

  get(id: string): Receipt {
    if (this.#index.get(id) === PENDING) this.#writePending();
    const entry = this.#index.get(id);
    if (!entry || entry === PENDING) throw new NotFoundError('receipt', id);
    const payload = Buffer.alloc(entry.length);
    readSync(this.#fd, payload, 0, entry.length, entry.offset);
    return { id, ...decodeCanonical<Omit<Receipt, 'id'>>(payload.subarray(PREV)) };
  }

  /** Receipt ids in append order. */
  ids(): readonly string[] {
    return this.#order;
  }

  /**
   * Read-only: take in the records a writer appended since this log was opened (or last
   * refreshed), so that a reader beside a daemon sees its receipts. Re-reads the head; the bytes
   * it newly commits are checked as on open (damage → LogIntegrityError), and complete records
   * after it are taken when they check and chain (one the writer is still writing is left for
   * the next refresh). A log that shrank or whose head went backwards was replaced or cut:
   * LogIntegrityError. A writer's log knows every record already: a no-op. Returns how many
   * records were added.
   */
  refresh(): number {
    if (!this.readOnly || this.#closed) return 0;
    const before = this.#count;
    if (this.#fd < 0) {
      const fd = openExisting(this.path, constants.O_RDONLY);
      if (fd === undefined) return 0;
      this.#fd = fd;
      try {
        this.#open();
      } catch (err) {
        this.#fd = -1;
        closeSync(fd);
        throw err;
      }
      return this.#count - before;
    }
    // The head before the size, as on open: the writer extends the file before moving the head.
    const header = Buffer.alloc(DATA_START);
    readSync(this.#fd, header, 0, DATA_START, 0);
    const size = fstatSync(this.#fd).size;
    const head = this.#newestHead(header);
    if (head.seq < this.#headSeq || head.end < this.#committedEnd) {
      throw new LogIntegrityError(
        this.path,
        head.at,
        `its head went back (sequence ${head.seq} < ${this.#headSeq}, or end ${head.end} < ${this.#committedEnd}): the log was replaced or rewritten while open`,
      );
    }
    if (size < Math.max(head.end, this.#end)) {
      throw new LogIntegrityError(
        this.path,
        size,
        `was cut while open: it ends before byte ${Math.max(head.end, this.#end)}, which was already read or committed`,
      );
    }
    this.#headSeq = head.seq;
    this.#committedEnd = head.end;
    // Records already read past the head's end were checked then: when the head has not moved
    // past them, it commits nothing new to check (end 0: no byte counts as committed).
    this.#scan(size, head.end > this.#end ? head : { ...head, end: 0 }, true);
    return this.#count - before;
  }

  /** Where the log starts: before its first record. */
  static readonly START: LogPosition = { ordinal: 0, offset: DATA_START };

  /**
   * Visit the body (canonical receipt bytes) of every record from `at` to the last one this log
   * holds, in log order, reading the file in large sequential chunks; records still queued are
   * written first. Returns the position after the last record visited. For indexes built beside
   * the log (receipt-index.ts): a body is only valid during its visit.
   */
  scanBodies(at: LogPosition, visit: (id: string, body: Uint8Array) => void): LogPosition {
    if (this.#pending.length > 0 && !this.#closed) this.#writePending();
    let ordinal = at.ordinal;
    let offset = at.offset;
    const end = this.#end;
    let chunk: Buffer = Buffer.allocUnsafe(0);
    let chunkAt = 0; // file offset of chunk[0]
    while (offset < end && ordinal < this.#count) {
      if (offset + HEADER > chunkAt + chunk.length) {
        chunk = this.#readChunk(offset, end, HEADER, chunk);
        chunkAt = offset;
      }
      const length = chunk.readUInt32BE(offset - chunkAt);
      if (offset + HEADER + length > chunkAt + chunk.length) {
        chunk = this.#readChunk(offset, end, HEADER + length, chunk);
        chunkAt = offset;
      }
      const start = offset - chunkAt + HEADER;
      visit(this.#order[ordinal]!, chunk.subarray(start + PREV, start + length));
      ordinal++;
      offset += HEADER + length;
    }
    return { ordinal, offset };
  }

  /** At least `need` bytes of the file from `offset` (up to `end`), in a chunk of 1 MiB or more. */
  #readChunk(offset: number, end: number, need: number, old: Buffer): Buffer {
    const want = Math.min(Math.max(need, 1 << 20), end - offset);
    const chunk = old.length >= want ? old : Buffer.allocUnsafe(Math.max(want, 1 << 20));
    let got = 0;
    while (got < want) {
      const n = readSync(this.#fd, chunk, got, want - got, offset + got);
      if (n === 0) throw new LogIntegrityError(this.path, offset + got, 'ends before a record it indexed');
      got += n;
    }
    return chunk.subarray(0, want);
  }

  /** Write queued records, fdatasync (unless sync is 'never') and move the head to them. */
  flush(): void {
    if (this.#syncTimer) {
      clearTimeout(this.#syncTimer);
      this.#syncTimer = undefined;
    }
    if (this.#closed || this.readOnly) return;
    this.#writePending();
    this.#commit();
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    if (this.#fd >= 0) closeSync(this.#fd); // closing drops the writer lock
  }
}
