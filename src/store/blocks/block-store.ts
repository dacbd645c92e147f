/**
 * Blocks: immutable byte strings addressed by their sha256 (the block id). Small blocks are
 * packed into append-only segment files, large ones are stored one per file. Every read
 * re-hashes the bytes: a block altered on disk is reported (file + byte offset), never returned.
 *
 * Layout:
 *
 *     <dir>/segments/<8 hex>.seg     packed blocks, numbered from 00000001
 *         bytes 0..8    magic `TPSEG01\n` (format version 1)
 *         then records  u32be length | block id (32 bytes, sha256 of the bytes) | bytes
 *     <dir>/large/<2 hex>/<64 hex>   one block of more than `packThreshold` bytes (default
 *                                    256 KiB), the file's name is its id; written to a unique
 *                                    temporary name and renamed into place
 *
 * A segment is self-describing (every record names its block id), so a segment can be checked
 * (`verifySegment`) or rescanned without the index. Segments grow to `segmentBytes` (default
 * 64 MiB) and are then sealed: the writer starts the next number and never writes to a sealed
 * segment again. Only compaction (gc.ts) removes a segment, after copying its live blocks out.
 *
 * Writes are batched: `put` returns the block's location at once and queues its record; `flush`
 * writes everything queued in one `write` per segment (the Store flushes before it appends a
 * receipt, so a receipt never reaches the log before the blocks it names). `sync` fdatasyncs.
 *
 * Open (writer): the last segment, when not yet sealed, is walked record header by record header
 * (in 1 MiB reads; no hashing) to find where its valid records end. A record whose declared
 * length runs past the end of the file, or an all-zero header (a power loss in an extended
 * file), is a torn tail from a crash mid-write: the writer cuts it. Records written but never
 * named by the index (a crash between the block write and the index write) are dead space that
 * compaction reclaims. A read-only open writes nothing and never cuts.
 */

import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hash } from 'node:crypto';
import { join } from 'node:path';
import { DIGEST_PATTERN } from '../../runtime/canonical.js';
import { ValidationError } from '../../runtime/errors.js';
import { StoreFileIntegrityError } from '../artifacts/errors.js';
import { StoreReadOnlyError } from '../errors.js';

export const SEGMENT_MAGIC = Buffer.from('TPSEG01\n');
/** Bytes of a segment record's header: u32 length + 32-byte block id. */
export const RECORD_HEADER = 36;
/** `segment` of a block stored alone in `large/`. */
export const LARGE = 0xffffffff;
/** `segment` of an index entry that names no block (tombstone, reclaimed). */
export const NO_BLOCK = 0;

export const DEFAULT_PACK_THRESHOLD = 256 * 1024;
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

/** Where a block's bytes are: a segment number and the offset of the bytes in it, or LARGE. */
export interface BlockLocation {
  readonly segment: number;
  readonly offset: number;
  readonly length: number;
}

export interface BlockStoreOptions {
  readonly readOnly?: boolean;
  /** Blocks up to this many bytes are packed into segments (default 256 KiB). */
  readonly packThreshold?: number;
  /** A segment is sealed once it reaches this size (default 64 MiB). */
  readonly segmentBytes?: number;
  /** fsync large blocks before renaming them into place. */
  readonly durable?: boolean;
}

export function sha256Buf(bytes: Uint8Array): Buffer {
  return hash('sha256', bytes, 'buffer') as unknown as Buffer;
}

export function segmentName(n: number): string {
  return `${n.toString(16).padStart(8, '0')}.seg`;
}

const SEGMENT_FILE = /^([0-9a-f]{8})\.seg$/;
const CHUNK = 1 << 20;

export class BlockStore {
  readonly dir: string;
  readonly segmentsDir: string;
  readonly largeDir: string;
  readonly readOnly: boolean;
  readonly packThreshold: number;
  readonly segmentBytes: number;
  readonly #durable: boolean;
  /** Read descriptors of segments, opened on first read. */
  readonly #readFds = new Map<number, number>();
  /** The segment being appended to (0: none yet), its descriptor and its end on disk. */
  #active = 0;
  #activeFd = -1;
  #activeEnd = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #tmpCounter = 0;
  #closed = false;
  /** Bytes of a torn tail cut from the last segment on open. */
  readonly recoveredBytes: number = 0;

  constructor(dir: string, options: BlockStoreOptions = {}) {
    this.dir = dir;
    this.segmentsDir = join(dir, 'segments');
    this.largeDir = join(dir, 'large');
    this.readOnly = options.readOnly ?? false;
    this.packThreshold = options.packThreshold ?? DEFAULT_PACK_THRESHOLD;
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.#durable = options.durable ?? false;
    if (this.readOnly) return;
    mkdirSync(this.segmentsDir, { recursive: true });
    mkdirSync(this.largeDir, { recursive: true });
    const last = this.segments().at(-1);
    if (last !== undefined) {
      const path = join(this.segmentsDir, segmentName(last));
      const fd = openSync(path, 'r+');
      const size = fstatSync(fd).size;
      if (size < this.segmentBytes) {
        const end = this.#validEnd(fd, path, size);
        if (end < size) {
          ftruncateSync(fd, end);
          this.recoveredBytes = size - end;
        }
        this.#active = last;
        this.#activeFd = fd;
        this.#activeEnd = end;
      } else {
        closeSync(fd);
        this.#active = last;
      }
    }
  }

  /** Segment numbers on disk, ascending. */
  segments(): number[] {
    let names: string[];
    try {
      names = readdirSync(this.segmentsDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: number[] = [];
    for (const name of names) {
      const m = SEGMENT_FILE.exec(name);
      if (m) out.push(Number.parseInt(m[1]!, 16));
    }
    return out.sort((a, b) => a - b);
  }

  /** The segment the writer appends to (0 when none is open). */
  get activeSegment(): number {
    return this.#activeFd >= 0 ? this.#active : 0;
  }

  segmentPath(n: number): string {
    return join(this.segmentsDir, segmentName(n));
  }

  largePath(id: string): string {
    if (!DIGEST_PATTERN.test(id)) throw new ValidationError('type', 'block', 'sha256 hex (64 chars)', id);
    return join(this.largeDir, id.slice(0, 2), id);
  }

  /** Where the valid records of a segment end (walks headers only). */
  #validEnd(fd: number, path: string, size: number): number {
    if (size < SEGMENT_MAGIC.length) return 0;
    const magic = Buffer.alloc(SEGMENT_MAGIC.length);
    readSync(fd, magic, 0, magic.length, 0);
    if (!magic.equals(SEGMENT_MAGIC)) {
      if (magic.every((b) => b === 0)) return 0;
      throw new StoreFileIntegrityError(
        path,
        0,
        `not a segment of this format (magic ${JSON.stringify(magic.toString('latin1'))})`,
      );
    }
    let at = SEGMENT_MAGIC.length;
    const buf = Buffer.allocUnsafe(CHUNK);
    let bufAt = -1;
    let bufLen = 0;
    while (at + RECORD_HEADER <= size) {
      if (bufAt < 0 || at + RECORD_HEADER > bufAt + bufLen) {
        bufLen = readSync(fd, buf, 0, Math.min(CHUNK, size - at), at);
        bufAt = at;
      }
      const length = buf.readUInt32BE(at - bufAt);
      const zeroHeader =
        length === 0 && buf.subarray(at - bufAt + 4, at - bufAt + RECORD_HEADER).every((b) => b === 0);
      if (zeroHeader || at + RECORD_HEADER + length > size) break;
      at += RECORD_HEADER + length;
    }
    return at;
  }

  /**
   * Store a block; returns where it is (packed: its location in the segment it is queued for,
   * written by the next `flush`; large: written now). `id` must be the bytes' sha256 (the
   * caller computed it already).
   */
  put(bytes: Uint8Array, id: Buffer): BlockLocation {
    if (this.readOnly) throw new StoreReadOnlyError(this.dir, `store block ${id.toString('hex')}`);
    if (this.#closed) throw new StoreReadOnlyError(this.dir, 'write to a closed block store');
    if (bytes.byteLength > this.packThreshold) return this.#putLarge(bytes, id.toString('hex'));
    const need = RECORD_HEADER + bytes.byteLength;
    const used = this.#activeEnd + this.#pendingBytes;
    if (this.#activeFd < 0 || (used + need > this.segmentBytes && used > SEGMENT_MAGIC.length))
      this.#rotate();
    const header = Buffer.allocUnsafe(RECORD_HEADER);
    header.writeUInt32BE(bytes.byteLength, 0);
    id.copy(header, 4);
    const offset = this.#activeEnd + this.#pendingBytes + RECORD_HEADER;
    this.#pending.push(header, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    this.#pendingBytes += need;
    return { segment: this.#active, offset, length: bytes.byteLength };
  }

  /** Seal the active segment (after writing what is queued) and start the next one. */
  #rotate(): void {
    this.flush();
    if (this.#activeFd >= 0) {
      if (this.#durable) fdatasyncSync(this.#activeFd);
      closeSync(this.#activeFd);
    }
    const n = Math.max(this.#active, this.segments().at(-1) ?? 0) + 1;
    const path = this.segmentPath(n);
    const fd = openSync(path, 'wx+');
    writeSync(fd, SEGMENT_MAGIC, 0, SEGMENT_MAGIC.length, 0);
    this.#active = n;
    this.#activeFd = fd;
    this.#activeEnd = SEGMENT_MAGIC.length;
  }

  /** Start a new segment for what comes next (compaction copies live blocks into a fresh one). */
  seal(): void {
    if (this.#activeFd >= 0 && this.#activeEnd + this.#pendingBytes > SEGMENT_MAGIC.length) this.#rotate();
  }

  #putLarge(bytes: Uint8Array, id: string): BlockLocation {
    const path = this.largePath(id);
    if (!existsSync(path)) {
      mkdirSync(join(this.largeDir, id.slice(0, 2)), { recursive: true });
      const tmp = `${path}.tmp-${process.pid}-${this.#tmpCounter++}`;
      const fd = openSync(tmp, 'wx');
      try {
        let at = 0;
        while (at < bytes.byteLength) at += writeSync(fd, bytes, at, bytes.byteLength - at);
        if (this.#durable) fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    }
    return { segment: LARGE, offset: 0, length: bytes.byteLength };
  }

  /** Bytes queued and not yet written. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Write every queued record, in one write. */
  flush(): void {
    if (this.#pendingBytes === 0) return;
    const batch =
      this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    let at = 0;
    while (at < batch.length)
      at += writeSync(this.#activeFd, batch, at, batch.length - at, this.#activeEnd + at);
    this.#activeEnd += batch.length;
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  /** Make written blocks durable (fdatasync of the active segment). */
  sync(): void {
    this.flush();
    if (this.#activeFd >= 0) fdatasyncSync(this.#activeFd);
  }

  #readFd(segment: number): number {
    if (segment === this.#active && this.#activeFd >= 0) return this.#activeFd;
    let fd = this.#readFds.get(segment);
    if (fd === undefined) {
      try {
        fd = openSync(this.segmentPath(segment), 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new StoreFileIntegrityError(this.segmentPath(segment), 0, 'segment file is missing');
        }
        throw err;
      }
      this.#readFds.set(segment, fd);
    }
    return fd;
  }

  /** Forget a segment's read descriptor (after compaction removed it). */
  dropSegment(segment: number): void {
    const fd = this.#readFds.get(segment);
    if (fd !== undefined) closeSync(fd);
    this.#readFds.delete(segment);
  }

  /**
   * The block's bytes, re-hashed: bytes that do not hash to `id` → StoreFileIntegrityError
   * naming the file and the byte offset.
   */
  read(location: BlockLocation, id: string): Buffer {
    if (location.segment === LARGE) {
      const path = this.largePath(id);
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new StoreFileIntegrityError(path, 0, `large block ${id} is missing`);
        }
        throw err;
      }
      const actual = sha256Buf(bytes).toString('hex');
      if (actual !== id || bytes.length !== location.length) {
        throw new StoreFileIntegrityError(path, 0, `block ${id} was altered on disk`, id, actual);
      }
      return bytes;
    }
    if (location.segment === this.#active && location.offset + location.length > this.#activeEnd)
      this.flush();
    const fd = this.#readFd(location.segment);
    const bytes = Buffer.allocUnsafe(location.length);
    let got = 0;
    while (got < location.length) {
      const n = readSync(fd, bytes, got, location.length - got, location.offset + got);
      if (n === 0) {
        throw new StoreFileIntegrityError(
          this.segmentPath(location.segment),
          location.offset + got,
          `segment ends inside block ${id} (${location.length} bytes at ${location.offset})`,
        );
      }
      got += n;
    }
    const actual = sha256Buf(bytes).toString('hex');
    if (actual !== id) {
      throw new StoreFileIntegrityError(
        this.segmentPath(location.segment),
        location.offset,
        `block ${id} (${location.length} bytes) was altered on disk`,
        id,
        actual,
      );
    }
    return bytes;
  }

  /** Every large block id on disk. */
  largeBlocks(): string[] {
    const out: string[] = [];
    let subs: string[];
    try {
      subs = readdirSync(this.largeDir);
    } catch {
      return out;
    }
    for (const sub of subs) {
      for (const name of readdirSync(join(this.largeDir, sub))) if (DIGEST_PATTERN.test(name)) out.push(name);
    }
    return out;
  }

  /** Remove a large block; returns the bytes freed. */
  removeLarge(id: string): number {
    const path = this.largePath(id);
    try {
      const size = statSync(path).size;
      unlinkSync(path);
      return size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
  }

  /** Remove a (sealed) segment; returns the bytes freed. */
  removeSegment(segment: number): number {
    if (segment === this.#active && this.#activeFd >= 0) throw new Error('cannot remove the active segment');
    this.dropSegment(segment);
    const path = this.segmentPath(segment);
    try {
      const size = statSync(path).size;
      unlinkSync(path);
      return size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
  }

  segmentSize(segment: number): number {
    if (segment === this.#active && this.#activeFd >= 0) return this.#activeEnd + this.#pendingBytes;
    try {
      return statSync(this.segmentPath(segment)).size;
    } catch {
      return 0;
    }
  }

  /**
   * Walk a segment's records, re-hashing each (fsck): calls `visit` with each block's id, offset
   * and length; damage → StoreFileIntegrityError with the record's offset.
   */
  verifySegment(segment: number, visit?: (id: string, location: BlockLocation) => void): number {
    this.flush();
    const path = this.segmentPath(segment);
    const bytes = readFileSync(path);
    if (!bytes.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC)) {
      throw new StoreFileIntegrityError(path, 0, 'not a segment of this format');
    }
    let at = SEGMENT_MAGIC.length;
    let count = 0;
    while (at < bytes.length) {
      if (at + RECORD_HEADER > bytes.length)
        throw new StoreFileIntegrityError(path, at, 'segment ends inside a record header');
      const length = bytes.readUInt32BE(at);
      const id = bytes.subarray(at + 4, at + RECORD_HEADER).toString('hex');
      if (at + RECORD_HEADER + length > bytes.length) {
        throw new StoreFileIntegrityError(
          path,
          at,
          `record of ${length} bytes runs past the end of the segment`,
        );
      }
      const actual = sha256Buf(bytes.subarray(at + RECORD_HEADER, at + RECORD_HEADER + length)).toString(
        'hex',
      );
      if (actual !== id)
        throw new StoreFileIntegrityError(path, at, `block ${id} was altered on disk`, id, actual);
      visit?.(id, { segment, offset: at + RECORD_HEADER, length });
      at += RECORD_HEADER + length;
      count++;
    }
    return count;
  }

  close(): void {
    if (this.#closed) return;
    if (!this.readOnly) {
      this.flush();
      if (this.#activeFd >= 0) {
        if (this.#durable) fdatasyncSync(this.#activeFd);
        closeSync(this.#activeFd);
      }
    }
    for (const fd of this.#readFds.values()) closeSync(fd);
    this.#readFds.clear();
    this.#activeFd = -1;
    this.#closed = true;
  }
}
