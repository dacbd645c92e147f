/**
 * The receipt log: an append-only file of checksummed, hash-chained records, with a head that
 * commits how far the log reaches.
 *
 * Why a file of our own rather than lmdb: receipts are an audit trail — written once, in order,
 * never updated — and the log's job is to make loss and tampering visible. An append-only file
 * gives that with one `write` per batch of receipts; a B-tree store would add a mutable structure
 * we would then have to audit. What a lookup needs (id → record, the query columns) is kept in a
 * checkpoint beside the log (receipt-checkpoint.ts, `receipts.idx`), derived from the log and
 * checked against it, so opening a log of millions of receipts does not scan it.
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
 * Open checks, and what happens. Open reads the head and, when there is a checkpoint
 * (receipt-checkpoint.ts) that ties to the log — it covers only committed records, its last record
 * is at the byte it says, passes its checksum and hashes to the checkpoint's last hash (so it was
 * made from this log as it is), and where it ends at the head's end it agrees with the head's count
 * and hash — the records it covers are not read: open scans from the checkpoint's end. A checkpoint
 * that does not tie, or whose blocks fail their checksums when read later, is refused or dropped
 * (`checkpointStatus` says which and why), the log is scanned instead, and a writer rewrites it:
 * it is never trusted over the log. From where the scan starts (the first record, or the
 * checkpoint's end):
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
 * Records under the checkpoint are checked when they are read: every read (`get`, `getAt`,
 * `scanBodies`) checks the record's crc, and `get`/`getAt` that its body hashes to its id. The
 * whole check — every crc, the whole chain, the head, and the checkpoint compared with the log —
 * is `verify()` (fsck). A writer writes a checkpoint on close and open when `checkpointMin`
 * (default 1024) records lie past the current one, and after a sync when max(16 × checkpointMin,
 * count / 8) do: a log smaller than that is scanned whole on every open, as before; a large one's
 * open reads the checkpoint's header and the records after it.
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
 * bodies, in order and in large reads, to indexes built beside the log (receipt-index.ts, the
 * Merkle tree, the lineage index); such an index persists the LogPosition it reached and resumes
 * with `scanBodies(saved, …)` (`positionAt(ordinal)` gives the position of an ordinal).
 *
 * Durability, and when the head moves (the head only ever claims bytes already as durable as the
 * policy makes them, so a crash never leaves a head that claims more than the log holds):
 *   - `sync: 'always'`: each append is written and fdatasynced, then the head is written, before
 *     append returns (survives power loss; costs a disk flush per execution);
 *   - `'batch'` (default): appends are queued and written once per event-loop turn (or at
 *     256 KiB); every `syncIntervalMs` and on close the log is fdatasynced and then the head is
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
import { IntegrityError, NotFoundError, ValidationError } from '../runtime/errors.js';
import type { Receipt } from '../runtime/receipt.js';
import { LogIntegrityError, StoreReadOnlyError } from './errors.js';
import { lockForWriting } from './file-lock.js';
import {
  CheckpointDamage,
  CheckpointReader,
  type ColumnRows,
  type IndexColumns,
  writeCheckpoint,
} from './receipt-checkpoint.js';
import { ColumnBuilder, type IndexColumnsLike } from './receipt-fields.js';

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
const MAX_PENDING_BYTES = 256 * 1024;
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
  /**
   * The checkpoint file (receipt-checkpoint.ts): default the log's path with `.log` replaced by
   * `.idx`; false: none (every open scans the whole log).
   */
  readonly checkpoint?: string | false;
  /**
   * A writer writes a checkpoint on close (and on open) when at least this many records lie past
   * the current one, and on a sync when max(16 × this, count / 8) do. Default 1024: a small log is
   * scanned whole on open (which checks every record), a large one opens from its checkpoint.
   */
  readonly checkpointMin?: number;
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

/** Receipt ids: 64 lower-case hex digits. */
const ID_SHAPE = /^[0-9a-f]{64}$/;
/** Ids read from a checkpoint per chunk (64 KiB of raw ids). */
const ID_CHUNK = 2048;

/** What `verify()` found: the whole log checked record by record. */
export interface LogVerifyReport {
  /** Records checked (crc, hash chain, head). */
  readonly records: number;
  /** Byte offset after the last record. */
  readonly end: number;
  /** Bytes of a torn tail after the committed end (ignored, or cut by the next writer). */
  readonly tornBytes: number;
  /** The checkpoint: 'absent', 'consistent' (every id and offset matches the log), or 'rebuilt: why'. */
  readonly checkpoint: string;
}

export class ReceiptLog {
  readonly path: string;
  readonly readOnly: boolean;
  /** The checkpoint file (receipt-checkpoint.ts), or undefined when checkpoints are off. */
  readonly checkpointPath: string | undefined;
  /** -1 when a read-only open found no log (yet: `refresh` looks again). */
  #fd: number;
  readonly #sync: SyncPolicy;
  readonly #syncIntervalMs: number;
  readonly #checkpointMin: number;
  /** The checkpoint in use: ordinals below #ckCount are looked up there. */
  #ck: CheckpointReader | undefined;
  #ckCount = 0;
  /** Ids of ordinals #ckCount.. (written and queued), and record offsets of the written ones. */
  #tailIds: string[] = [];
  #tailOffsets: number[] = [];
  /** id → ordinal for the first #tailMapped tail ids (extended on lookup, not on append). */
  #tailMap = new Map<string, number>();
  #tailMapped = 0;
  #end = DATA_START;
  /** Records written (ordinals below are on disk; queued ones come after). */
  #count = 0;
  #lastHash: Buffer = GENESIS;
  #headSeq = 0;
  /** The end the head on disk commits. */
  #committedEnd = DATA_START;
  #syncTimer: NodeJS.Timeout | undefined;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #writeScheduled = false;
  #closed = false;
  /** A checkpoint was refused or dropped: the writer writes a fresh one at its next chance. */
  #checkpointStale = false;
  #checkpointStatus = 'absent';
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
    this.#checkpointMin = Math.max(1, options.checkpointMin ?? 1024);
    this.checkpointPath =
      options.checkpoint === false ? undefined : (options.checkpoint ?? `${path.replace(/\.log$/, '')}.idx`);
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
      this.#ck?.close();
      closeSync(this.#fd);
      throw err;
    }
  }

  /**
   * How this open used the checkpoint: 'absent', 'used', 'written' (this writer wrote it),
   * 'refused: why' (it did not tie to the log, so the log was scanned instead) or 'dropped: why'
   * (a block failed its checksum when read, so the log was scanned instead).
   */
  get checkpointStatus(): string {
    return this.#checkpointStatus;
  }

  /** Records covered by the checkpoint in use (0 without one). */
  get checkpointedCount(): number {
    return this.#ckCount;
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
    const ck = this.#tieCheckpoint(head, size);
    let torn: number;
    if (ck) {
      this.#useCheckpoint(ck);
      try {
        torn = this.#scan(size, head);
      } catch (err) {
        if (!(err instanceof LogIntegrityError)) throw err;
        // The log after the checkpoint does not continue it: the log is damaged (the full scan
        // below says where) or the checkpoint does not describe it. Never trust it: scan it all.
        this.#forgetCheckpoint(`refused: the log does not continue from it (${err.message})`);
        torn = this.#scan(size, head);
      }
    } else {
      torn = this.#scan(size, head);
    }
    if (this.readOnly) return torn;
    if (torn > 0) ftruncateSync(this.#fd, this.#end);
    // Records recovered after the head (or a cut tail) become committed now, so the next open
    // holds this writer to them.
    if (this.#end !== head.end || torn > 0) this.#commit();
    if (this.#checkpointStale || this.#count - this.#ckCount >= this.#checkpointMin) this.#tryFold();
    return torn;
  }

  /**
   * The checkpoint, when it ties to this log: it covers committed records only, and the record it
   * names as its last ends at its end, passes its checksum and hashes to its last hash (so it is
   * this log's, as it is now). Else undefined, with the reason in checkpointStatus.
   */
  #tieCheckpoint(head: Head, size: number): CheckpointReader | undefined {
    if (this.checkpointPath === undefined) return undefined;
    let ck: CheckpointReader | undefined;
    try {
      ck = CheckpointReader.open(this.checkpointPath);
    } catch (err) {
      if (!(err instanceof CheckpointDamage)) throw err;
      this.#refuse(err.message);
      return undefined;
    }
    if (!ck) return undefined;
    const reason = this.#tieReason(ck, head, size);
    if (reason === undefined) return ck;
    ck.close();
    this.#refuse(`${this.checkpointPath}: ${reason}`);
    return undefined;
  }

  #refuse(reason: string): void {
    this.#checkpointStatus = `refused: ${reason}`;
    this.#checkpointStale = true;
  }

  #tieReason(ck: CheckpointReader, head: Head, size: number): string | undefined {
    if (ck.count === 0) return 'covers no records';
    if (ck.end > head.end || ck.count > head.count) {
      return `covers ${ck.count} records up to byte ${ck.end}, past what the log head commits (${head.count} records, byte ${head.end})`;
    }
    if (ck.end === head.end && (ck.count !== head.count || !ck.lastHash.equals(head.lastHash))) {
      return `ends where the log head does (byte ${head.end}) but differs from it (${ck.count} records, ${head.count} committed): a checkpoint of another log, or of this log before it was rewritten`;
    }
    if (ck.lastOffset < DATA_START || ck.lastOffset + HEADER + PREV > Math.min(size, ck.end)) {
      return `names its last record at byte ${ck.lastOffset}, outside the log`;
    }
    const header = Buffer.alloc(HEADER);
    readSync(this.#fd, header, 0, HEADER, ck.lastOffset);
    const length = header.readUInt32BE(0);
    if (ck.lastOffset + HEADER + length !== ck.end) {
      return `its last record (byte ${ck.lastOffset}) does not end at its end (byte ${ck.end})`;
    }
    const payload = Buffer.alloc(length);
    readSync(this.#fd, payload, 0, length, ck.lastOffset + HEADER);
    if (crc32(payload) !== header.readUInt32BE(4) || !sha256(payload).equals(ck.lastHash)) {
      return `the log's record at byte ${ck.lastOffset} is not the one it was made from (a checkpoint of another log, or of this log before it was rewritten)`;
    }
    return undefined;
  }

  #useCheckpoint(ck: CheckpointReader): void {
    this.#ck = ck;
    this.#ckCount = ck.count;
    this.#count = ck.count;
    this.#end = ck.end;
    this.#lastHash = ck.lastHash;
    this.#tailIds = [];
    this.#tailOffsets = [];
    this.#tailMap = new Map();
    this.#tailMapped = 0;
    this.#checkpointStatus = 'used';
  }

  /** Back to no checkpoint and nothing read (the caller scans the log again). */
  #forgetCheckpoint(status: string): void {
    this.#ck?.close();
    this.#ck = undefined;
    this.#ckCount = 0;
    this.#count = 0;
    this.#end = DATA_START;
    this.#lastHash = GENESIS;
    this.#tailIds = [];
    this.#tailOffsets = [];
    this.#tailMap = new Map();
    this.#tailMapped = 0;
    this.#checkpointStatus = status;
    this.#checkpointStale = true;
  }

  /**
   * A block of the checkpoint failed its checksum (or pointed at a record that is not the one it
   * names) after open: stop using it and learn the records it covered by scanning the log, which
   * checks them all (and reports the log's own damage, if that was the cause).
   */
  #dropCheckpoint(reason: string): void {
    const queued = this.#tailIds.slice(this.#count - this.#ckCount);
    const end = this.#end;
    const count = this.#count;
    const lastHash = this.#lastHash;
    this.#forgetCheckpoint(`dropped: ${reason}`);
    this.#scan(end, { seq: this.#headSeq, count, end, lastHash, at: HEAD_SLOTS[0] });
    this.#tailIds.push(...queued);
  }

  /** `f`, and again after dropping the checkpoint when the checkpoint turns out damaged. */
  #ckTry<T>(f: () => T): T {
    try {
      return f();
    } catch (err) {
      if (!(err instanceof CheckpointDamage) || !this.#ck) throw err;
      this.#dropCheckpoint(err.message);
      return f();
    }
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
      this.#tailIds.push(hash('sha256', payload.subarray(PREV), 'hex'));
      this.#tailOffsets.push(offset);
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

  /** Receipts in the log (written and queued). */
  get size(): number {
    return this.#ckCount + this.#tailIds.length;
  }

  has(id: string): boolean {
    return this.ordinalOf(id) >= 0;
  }

  /** The ordinal (log position) of a receipt id, the last one if it was logged twice; -1 if absent. */
  ordinalOf(id: string): number {
    if (typeof id !== 'string' || !ID_SHAPE.test(id)) return -1;
    const inTail = this.#tailOrdinal(id);
    if (inTail >= 0 || !this.#ck) return inTail;
    return this.#ckTry(() => (this.#ck ? this.#ck.ordinalOf(Buffer.from(id, 'hex')) : this.#tailOrdinal(id)));
  }

  #tailOrdinal(id: string): number {
    const ids = this.#tailIds;
    for (let i = this.#tailMapped; i < ids.length; i++) this.#tailMap.set(ids[i]!, this.#ckCount + i);
    this.#tailMapped = ids.length;
    return this.#tailMap.get(id) ?? -1;
  }

  /** The id of the receipt at `ordinal` (0 ≤ ordinal < size). */
  idAt(ordinal: number): string {
    this.#checkOrdinal(ordinal, this.size);
    if (ordinal >= this.#ckCount) return this.#tailIds[ordinal - this.#ckCount]!;
    return this.#ckTry(() =>
      ordinal < this.#ckCount
        ? this.#ck!.idAt(ordinal).toString('hex')
        : this.#tailIds[ordinal - this.#ckCount]!,
    );
  }

  #checkOrdinal(ordinal: number, below: number): void {
    if (!Number.isSafeInteger(ordinal) || ordinal < 0 || ordinal >= below) {
      throw new ValidationError('range', 'ordinal', `an integer in [0, ${below})`, String(ordinal));
    }
  }

  /** Ids of ordinals [from, to) (to ≤ size), in log order. */
  #idRange(from: number, to: number): string[] {
    const out: string[] = [];
    let o = from;
    while (o < to) {
      if (o >= this.#ckCount) {
        const base = this.#ckCount;
        for (; o < to; o++) out.push(this.#tailIds[o - base]!);
        break;
      }
      const chunkEnd = Math.min(to, this.#ckCount, o + ID_CHUNK);
      const start = o;
      const raw = this.#ckTry(() => (start < this.#ckCount ? this.#ck!.ids(start, chunkEnd) : undefined));
      if (!raw) continue; // dropped: the tail now holds them
      for (let i = 0; i < chunkEnd - start; i++) out.push(raw.toString('hex', i * 32, i * 32 + 32));
      o = chunkEnd;
    }
    return out;
  }

  /**
   * Visit every receipt id from ordinal `from` on, in log order, reading the checkpoint's id
   * column a block at a time: no array of all ids is built (`receipt list`).
   */
  eachId(visit: (id: string, ordinal: number) => void, from = 0): void {
    for (let o = from; o < this.size; ) {
      const to = Math.min(this.size, o + ID_CHUNK);
      for (const id of this.#idRange(o, to)) visit(id, o++);
    }
  }

  /**
   * Every receipt id in log order, as one array. O(n) in time and memory (a million ids are about
   * 100 MB of strings): for tests and small logs; large ones go through `eachId`, `idAt` or
   * `idsWithPrefix`.
   */
  ids(): readonly string[] {
    return this.#idRange(0, this.size);
  }

  /** At most `limit` ids (in log order) that start with the hex `prefix`. */
  idsWithPrefix(prefix: string, limit = 100): string[] {
    if (typeof prefix !== 'string' || !/^[0-9a-f]{1,64}$/.test(prefix)) {
      throw new ValidationError(
        'type',
        'prefix',
        '1 to 64 lower-case hex digits',
        JSON.stringify(String(prefix)),
      );
    }
    const ordinals = this.#ck
      ? this.#ckTry(() => (this.#ck ? this.#ck.ordinalsWithPrefix(prefix, limit) : []))
      : [];
    const out = ordinals.map((o) => this.idAt(o));
    for (const id of this.#tailIds) {
      if (out.length >= limit) break;
      if (id.startsWith(prefix)) out.push(id);
    }
    return out;
  }

  /**
   * Append a receipt. `body`, when given, must be the canonical body encoding its id was
   * computed from (what sealReceiptEncoded returns); without it the receipt is encoded and
   * refused if it does not hash to its id.
   *
   * With `sync: 'always'` the record is written and fdatasynced before this returns. Otherwise
   * records are queued and written together — one write per event-loop turn, or sooner when
   * 256 KiB are pending — so a burst of executions costs one syscall, not one each.
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
    this.#pending.push(encoded);
    this.#pendingBytes += HEADER + PREV + encoded.byteLength;
    this.#tailIds.push(receipt.id);
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
    let lastHash = this.#lastHash;
    const offsets = this.#tailOffsets;
    for (const body of this.#pending) {
      const payloadLength = PREV + body.byteLength;
      const payload = batch.subarray(at + HEADER, at + HEADER + payloadLength);
      lastHash.copy(payload, 0);
      payload.set(body, PREV);
      batch.writeUInt32BE(payloadLength, at);
      batch.writeUInt32BE(crc32(payload), at + 4);
      offsets.push(this.#end + at);
      lastHash = sha256(payload);
      at += HEADER + payloadLength;
    }
    writeSync(this.#fd, batch, 0, batch.byteLength, this.#end);
    this.#lastHash = lastHash;
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
   * Then, when the records past the checkpoint have grown past max(16 × checkpointMin, count/8),
   * a new checkpoint is written (so the scan on open stays bounded while rewriting the checkpoint
   * costs O(1) amortized per receipt).
   */
  #commit(): void {
    if (this.#sync !== 'never') fdatasyncSync(this.#fd);
    if (this.#committedEnd === this.#end) return;
    const seq = this.#headSeq + 1;
    const slot = encodeHead(seq, this.#count, this.#end, this.#lastHash);
    writeSync(this.#fd, slot, 0, HEAD_BYTES, HEAD_SLOTS[seq % 2]);
    this.#headSeq = seq;
    this.#committedEnd = this.#end;
    const tail = this.#count - this.#ckCount;
    if (tail >= Math.max(16 * this.#checkpointMin, this.#count >> 3)) this.#tryFold();
  }

  /**
   * Write a checkpoint of every committed record (the old checkpoint's ids, offsets and columns,
   * plus the records after it, whose bodies are read back to index them), then use it: the tail
   * kept in memory shrinks to what is queued. Only a writer, only when the head commits all
   * that is written.
   */
  #fold(): void {
    const path = this.checkpointPath;
    if (this.readOnly || path === undefined || this.#committedEnd !== this.#end || this.#count === 0) return;
    const n = this.#count;
    this.#ckTry(() => {
      const old = this.#ck;
      const oldCount = this.#ckCount;
      const ids = Buffer.allocUnsafe(32 * n);
      const offsets = new Float64Array(n);
      const columns = old ? new ColumnBuilder(old.columns()) : new ColumnBuilder();
      if (old) {
        old.ids(0, oldCount).copy(ids, 0);
        offsets.set(old.offsets(0, oldCount));
      }
      for (let o = oldCount; o < n; o++) {
        ids.write(this.#tailIds[o - oldCount]!, 32 * o, 32, 'hex');
        offsets[o] = this.#tailOffsets[o - oldCount]!;
      }
      this.#walk({ ordinal: oldCount, offset: this.#recordStart(oldCount) }, n, (_o, body) =>
        columns.add(body),
      );
      writeCheckpoint(path, {
        count: n,
        end: this.#end,
        lastHash: this.#lastHash,
        lastOffset: offsets[n - 1]!,
        ids,
        offsets,
        columns: columns.columns(),
      });
    });
    const ck = CheckpointReader.open(path);
    if (!ck) return;
    const written = n - this.#ckCount;
    this.#ck?.close();
    this.#ck = ck;
    this.#ckCount = n;
    this.#tailIds = this.#tailIds.slice(written);
    this.#tailOffsets = this.#tailOffsets.slice(written);
    this.#tailMap = new Map();
    this.#tailMapped = 0;
    this.#checkpointStale = false;
    this.#checkpointStatus = 'written';
  }

  /**
   * #fold where a failure (a full disk, say) must not fail the append, open or close that
   * triggered it: the checkpoint is an optimization; the log is whole without it. The reason is
   * kept in checkpointStatus and the next chance tries again.
   */
  #tryFold(): void {
    try {
      this.#fold();
    } catch (err) {
      if (err instanceof LogIntegrityError) throw err; // the log itself is damaged: say so
      this.#checkpointStatus = `not written: ${(err as Error).message}`;
    }
  }

  /** Write a checkpoint now (a writer; a no-op read-only or with checkpoints off). */
  checkpoint(): void {
    if (this.#closed || this.readOnly) return;
    this.#writePending();
    this.#commit();
    if (this.#count > this.#ckCount || this.#checkpointStale) this.#fold();
  }

  /** Byte offset of the record at `ordinal` (< count: written). */
  #recordStart(ordinal: number): number {
    if (ordinal === this.#count) return this.#end;
    if (ordinal >= this.#ckCount) return this.#tailOffsets[ordinal - this.#ckCount]!;
    return this.#ckTry(() =>
      ordinal < this.#ckCount ? this.#ck!.offsetAt(ordinal) : this.#tailOffsets[ordinal - this.#ckCount]!,
    );
  }

  get(id: string): Receipt {
    const ordinal = this.ordinalOf(id);
    if (ordinal < 0) throw new NotFoundError('receipt', id);
    return this.getAt(ordinal);
  }

  /**
   * The receipt at `ordinal`. The record is checked as it is read: its checksum, and that its
   * body hashes to the id the index gives it (LogIntegrityError otherwise; when the index was the
   * checkpoint's, the checkpoint is dropped and the log scanned, which says what is wrong).
   */
  getAt(ordinal: number): Receipt {
    this.#checkOrdinal(ordinal, this.size);
    if (ordinal >= this.#count) this.#writePending();
    return this.#ckTry(() => {
      const fromCheckpoint = ordinal < this.#ckCount;
      const start = this.#recordStart(ordinal);
      const id = this.idAt(ordinal);
      const fail = (why: string): never => {
        if (fromCheckpoint)
          throw new CheckpointDamage(
            this.checkpointPath ?? '',
            0,
            `record ${ordinal} at byte ${start}: ${why}`,
          );
        throw new LogIntegrityError(this.path, start, why);
      };
      const header = Buffer.alloc(HEADER);
      if (readSync(this.#fd, header, 0, HEADER, start) < HEADER) fail('record is past the end of the file');
      const length = header.readUInt32BE(0);
      if (length < PREV || start + HEADER + length > this.#end)
        fail(`record declares an impossible length ${length}`);
      const payload = Buffer.alloc(length);
      readSync(this.#fd, payload, 0, length, start + HEADER);
      if (crc32(payload) !== header.readUInt32BE(4)) fail('record fails its checksum (corrupted log)');
      const body = payload.subarray(PREV);
      if (hash('sha256', body, 'hex') !== id) fail(`record does not hash to its id ${id}`);
      return { id, ...decodeCanonical<Omit<Receipt, 'id'>>(body) };
    });
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
        this.#ck?.close();
        this.#forgetCheckpoint('absent');
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
   * The place before the record at `ordinal` (0 ≤ ordinal ≤ size; `size` is the end). Queued
   * records are written first. A side index that persisted only an ordinal resumes from here.
   */
  positionAt(ordinal: number): LogPosition {
    this.#checkOrdinal(ordinal, this.size + 1);
    if (ordinal > this.#count || (ordinal === this.#count && this.#pending.length > 0)) this.#writePending();
    return { ordinal, offset: this.#recordStart(ordinal) };
  }

  /** The place after the last record (queued records are written first). */
  get endPosition(): LogPosition {
    if (this.#pending.length > 0 && !this.#closed) this.#writePending();
    return { ordinal: this.#count, offset: this.#end };
  }

  /**
   * Visit the body (canonical receipt bytes) of every record from `at` to the last one this log
   * holds, in log order, reading the file in large sequential chunks; records still queued are
   * written first. Returns the position after the last record visited.
   *
   * This is how an index built beside the log (receipt-index.ts, the Merkle tree, the lineage
   * index) catches up: persist the returned position with the index, and on the next open call
   * `refresh()` (read-only) and then `scanBodies(saved, …)`; only the records after it are read.
   * `at` must be a position of this log: a ValidationError naming `position` when its offset is
   * not where record `at.ordinal` starts (an index of another log, or of this one before it was
   * replaced; a side index that also saved the chain hash can compare more). Every record is checksum-checked as it is read; a body
   * is only valid during its visit.
   */
  scanBodies(at: LogPosition, visit: (id: string, body: Uint8Array, ordinal: number) => void): LogPosition {
    if (this.#pending.length > 0 && !this.#closed) this.#writePending();
    if (
      !Number.isSafeInteger(at.ordinal) ||
      at.ordinal < 0 ||
      at.ordinal > this.#count ||
      this.#recordStart(at.ordinal) !== at.offset
    ) {
      throw new ValidationError(
        'range',
        'position',
        `a position of this log (ordinal 0..${this.#count} at the byte where that record starts)`,
        `ordinal ${at.ordinal} at byte ${at.offset}`,
      );
    }
    let ids: string[] = [];
    let idsFrom = at.ordinal;
    return this.#walk(at, this.#count, (ordinal, body) => {
      if (ordinal - idsFrom >= ids.length) {
        idsFrom = ordinal;
        ids = this.#idRange(ordinal, Math.min(this.#count, ordinal + ID_CHUNK));
      }
      visit(ids[ordinal - idsFrom]!, body, ordinal);
    });
  }

  /** Bodies of the written records from `at` to ordinal `to`, crc-checked, read in 1 MiB chunks. */
  #walk(at: LogPosition, to: number, visit: (ordinal: number, body: Uint8Array) => void): LogPosition {
    let ordinal = at.ordinal;
    let offset = at.offset;
    const end = this.#end;
    let chunk: Buffer = Buffer.allocUnsafe(0);
    let chunkAt = 0; // file offset of chunk[0]
    while (offset < end && ordinal < to) {
      if (offset + HEADER > chunkAt + chunk.length) {
        chunk = this.#readChunk(offset, end, HEADER, chunk);
        chunkAt = offset;
      }
      const length = chunk.readUInt32BE(offset - chunkAt);
      if (length < PREV || offset + HEADER + length > end) {
        throw new LogIntegrityError(this.path, offset, `record declares an impossible length ${length}`);
      }
      if (offset + HEADER + length > chunkAt + chunk.length) {
        chunk = this.#readChunk(offset, end, HEADER + length, chunk);
        chunkAt = offset;
      }
      const start = offset - chunkAt + HEADER;
      const payload = chunk.subarray(start, start + length);
      if (crc32(payload) !== chunk.readUInt32BE(offset - chunkAt + 4)) {
        throw new LogIntegrityError(this.path, offset, 'record fails its checksum (corrupted log)');
      }
      visit(ordinal, payload.subarray(PREV));
      ordinal++;
      offset += HEADER + length;
    }
    return { ordinal, offset };
  }

  /** At least `need` bytes of the file from `offset` (up to `end`), in a chunk of 1 MiB or more. */
  #readChunk(offset: number, end: number, need: number, old: Buffer): Buffer {
    const want = Math.min(Math.max(need, 1 << 20), end - offset);
    const chunk =
      old.buffer.byteLength >= want && old.byteOffset === 0
        ? Buffer.from(old.buffer, 0, want)
        : Buffer.allocUnsafe(Math.max(want, 1 << 20));
    let got = 0;
    while (got < want) {
      const n = readSync(this.#fd, chunk, got, want - got, offset + got);
      if (n === 0) throw new LogIntegrityError(this.path, offset + got, 'ends before a record it indexed');
      got += n;
    }
    return chunk.subarray(0, want);
  }

  /**
   * The receipt index's columns from the checkpoint (receipt-index.ts resumes from them instead
   * of reading every record), or undefined without a usable checkpoint.
   */
  checkpointColumns(): { readonly count: number; readonly columns: IndexColumns } | undefined {
    if (!this.#ck) return undefined;
    return this.#ckTry(() => (this.#ck ? { count: this.#ckCount, columns: this.#ck.columns() } : undefined));
  }

  /**
   * The checkpoint's column string tables and row count, for an index that reads rows by chunks
   * (`checkpointRows`); undefined without a usable checkpoint.
   */
  checkpointStrings(): { readonly count: number; readonly strings: IndexColumnsLike } | undefined {
    if (!this.#ck) return undefined;
    return this.#ckTry(() => {
      if (!this.#ck) return undefined;
      const t = this.#ck.strings();
      const none = new Float64Array(0);
      const u16 = new Uint16Array(0);
      const u32 = new Uint32Array(0);
      return {
        count: this.#ckCount,
        strings: { ...t, startedMs: none, status: u16, backend: u16, build: u32, actor: u32 },
      };
    });
  }

  /**
   * Rows [from, to) of the checkpoint's index columns, or undefined when the checkpoint was dropped
   * (damaged) or does not cover them: the caller then rebuilds from `scanBodies`. Rows of a
   * checkpoint a writer rewrote since are the same (the columns of the records already covered and
   * their interned ids do not change).
   */
  checkpointRows(from: number, to: number): ColumnRows | undefined {
    if (!this.#ck || to > this.#ckCount) return undefined;
    return this.#ckTry(() => (this.#ck && to <= this.#ckCount ? this.#ck.rows(from, to) : undefined));
  }

  /**
   * Full verification (fsck): the whole log read again from its first byte, independently of
   * this open and of the checkpoint — every record's checksum, the whole hash chain, the head —
   * then every id and offset the open knows (from the checkpoint or its own scan) compared with
   * what the log holds. Damage in the log → LogIntegrityError naming the byte. A checkpoint that
   * disagrees with the log is dropped (and rewritten by a writer): reported in `checkpoint`.
   */
  verify(): LogVerifyReport {
    if (!this.readOnly && !this.#closed) this.flush();
    const fresh = new ReceiptLog(this.path, { readOnly: true, checkpoint: false });
    try {
      const n = Math.min(fresh.size, this.#count);
      let checkpoint = this.#ck ? 'consistent' : 'absent';
      if (this.#ckCount > 0) {
        let wrong: string | undefined;
        try {
          const mine = this.#ck!;
          for (let o = 0; o < Math.min(n, this.#ckCount) && !wrong; o += ID_CHUNK) {
            const to = Math.min(n, this.#ckCount, o + ID_CHUNK);
            const ids = mine.ids(o, to);
            const offsets = mine.offsets(o, to);
            for (let i = 0; i < to - o; i++) {
              if (
                ids.toString('hex', i * 32, i * 32 + 32) !== fresh.#tailIds[o + i] ||
                offsets[i] !== fresh.#tailOffsets[o + i]
              ) {
                wrong = `record ${o + i} differs from the log`;
                break;
              }
            }
          }
        } catch (err) {
          if (!(err instanceof CheckpointDamage)) throw err;
          wrong = err.message;
        }
        if (wrong !== undefined) {
          this.#dropCheckpoint(wrong);
          if (!this.readOnly && !this.#closed) this.#fold();
          checkpoint = `rebuilt: ${wrong}`;
        }
      }
      const tail = this.#tailIds;
      for (let o = this.#ckCount; o < n; o++) {
        if (tail[o - this.#ckCount] !== fresh.#tailIds[o]) {
          throw new LogIntegrityError(
            this.path,
            fresh.#tailOffsets[o]!,
            `record ${o} changed since this log was opened`,
          );
        }
      }
      return { records: fresh.size, end: fresh.#end, tornBytes: fresh.recoveredBytes, checkpoint };
    } finally {
      fresh.close();
    }
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

  /**
   * Flush, write a checkpoint when at least `checkpointMin` records (or a refused checkpoint's
   * worth) lie past the current one, and close.
   */
  close(): void {
    if (this.#closed) return;
    try {
      this.flush();
      if (
        !this.readOnly &&
        (this.#count - this.#ckCount >= this.#checkpointMin || (this.#checkpointStale && this.#count > 0))
      ) {
        this.#tryFold();
      }
    } finally {
      this.#closed = true;
      this.#ck?.close();
      if (this.#fd >= 0) closeSync(this.#fd); // closing drops the writer lock
    }
  }
}
