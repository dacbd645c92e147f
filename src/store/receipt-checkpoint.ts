/**
 * The receipt index checkpoint (`<dir>/receipts.idx`): what a scan of the receipt log would learn
 * about its first `count` records, persisted so that opening a log of millions of receipts reads a
 * small header instead of the whole log, and id lookups and queries read a few blocks with pread.
 *
 * It is derived data, never an authority: the log (receipt-log.ts) ties it to itself on every
 * open (below) and drops and rebuilds it — never trusts it — when it does not check. Losing it
 * costs one scan of the log.
 *
 * Layout (format 1, magic `TPRIDX1\n`; integers little-endian unless said otherwise):
 *
 *     bytes 0..8       magic
 *     bytes 8..16      u64 count      records covered (ordinals 0..count-1 of the log)
 *     bytes 16..24     u64 end        log byte offset just after record count-1
 *     bytes 24..56     lastHash       sha256 of record count-1's payload (the log's chain hash there)
 *     bytes 56..64     u64 lastOffset log byte offset of record count-1 (0 when count is 0)
 *     bytes 64..68     u32 blockSize  (65536)
 *     bytes 68..72     u32 blockCount
 *     bytes 72..80     u64 bodyLength
 *     bytes 80..240    10 sections: u64 offset in the body, u64 length
 *     bytes 240..244   u32 zero
 *     bytes 244..248   u32 crc32 of bytes 0..244, 248..256, then the block crc table
 *     bytes 248..256   zero
 *     bytes 256..      block crc table: blockCount × u32 crc32 of each blockSize bytes of the body
 *     then             the body (sections one after another)
 *
 * Sections (each starting at a multiple of 8 in the body), by ordinal unless said otherwise:
 *     0 ids        32 bytes each: the receipt id (sha256 of the body), raw
 *     1 offsets    f64 each: the record's byte offset in the log (its 8-byte header)
 *     2 startedMs  f64 each (NaN when unreadable)
 *     3 status     u16 each: index into the status strings     } interned: 0 is "absent",
 *     4 backend    u16 each: index into the backend strings    } the strings are section 9
 *     5 build      u32 each: index into the build strings      }
 *     6 actor      u32 each: index into the actor strings (0 = no actor)
 *     7 sorted     12 bytes each, sorted by id: the id's first 8 bytes, u32 ordinal
 *     8 fanout     65537 × u32: entry b = the first sorted entry whose id starts with the 16-bit b
 *     9 strings    UTF-8 JSON {statuses, backends, builds, actors}: arrays, entry 0 is ''
 *
 * What reading checks: the magic, the header's crc (which covers the block crc table), that the
 * sections lie inside the body and have the sizes `count` gives. Every block of the body is
 * crc-checked when it is read (lazily: an id lookup reads one or two 64 KiB blocks, not the file);
 * a block that fails throws CheckpointDamage, which the log answers by dropping the checkpoint and
 * scanning the log instead. What the log checks on open (receipt-log.ts): `count`, `end` and
 * `lastHash` against the log itself — the record at `lastOffset` must end at `end`, pass its crc
 * and hash to `lastHash` (so a checkpoint of another log, or of this log before it was replaced, is
 * refused), and agree with the log's head.
 *
 * Writing: the whole file is written under a temporary name and renamed over the old one; no
 * fsync (a checkpoint lost or torn by a power loss fails its checks and is rebuilt). Readers that
 * opened the old file keep reading it through their descriptor. Only the log's writer writes it.
 */

import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { crc32 } from 'node:zlib';
import type { IndexColumnsLike } from './receipt-fields.js';

const MAGIC = Buffer.from('TPRIDX1\n');
const HEADER = 256;
const CRC_AT = 244;
const SECTIONS = 10;
export const CHECKPOINT_BLOCK = 65536;
const FANOUT = 65537;
/** Verified blocks kept for small reads (id lookups, offsets of query results). */
const CACHE_BLOCKS = 64;
const U32 = 2 ** 32;

const S_IDS = 0;
const S_OFFSETS = 1;
const S_STARTED = 2;
const S_STATUS = 3;
const S_BACKEND = 4;
const S_BUILD = 5;
const S_ACTOR = 6;
const S_SORTED = 7;
const S_FANOUT = 8;
const S_STRINGS = 9;

/** The checkpoint file does not read as one (bad magic, header, sizes, or a block's crc). */
export class CheckpointDamage extends Error {
  readonly path: string;
  readonly offset: number;
  constructor(path: string, offset: number, reason: string) {
    super(`${path}: ${reason} (at byte ${offset})`);
    this.name = 'CheckpointDamage';
    this.path = path;
    this.offset = offset;
  }
}

/** The indexed columns of a receipt index, by ordinal (receipt-index.ts). */
export type IndexColumns = IndexColumnsLike;
/** Some rows of the index columns (views). */
export interface ColumnRows {
  readonly startedMs: Float64Array;
  readonly status: Uint16Array;
  readonly backend: Uint16Array;
  readonly build: Uint32Array;
  readonly actor: Uint32Array;
}

/** Where the checkpoint ends in the log it was made from. */
export interface CheckpointHead {
  readonly count: number;
  readonly end: number;
  readonly lastHash: Buffer;
  readonly lastOffset: number;
}

export interface CheckpointData extends CheckpointHead {
  /** 32 bytes per record. */
  readonly ids: Buffer;
  readonly offsets: Float64Array;
  readonly columns: IndexColumns;
}

function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at + 4) * U32 + buf.readUInt32LE(at);
}

function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32LE(value % U32, at);
  buf.writeUInt32LE(Math.floor(value / U32), at + 4);
}

/** Bytes of a typed array (a view, no copy). */
function bytesOf(a: Float64Array | Uint16Array | Uint32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** A typed array copied out of `bytes` (copied: the bytes need not be aligned). */
function copyInto<T extends Float64Array | Uint16Array | Uint32Array>(
  make: (n: number) => T,
  width: number,
  bytes: Buffer,
): T {
  const out = make(bytes.length / width);
  bytesOf(out).set(bytes);
  return out;
}

/**
 * The sorted (id prefix, ordinal) table and its 16-bit fanout, by a counting sort on the first two
 * bytes and an insertion sort within each bucket (a few dozen ids each even at millions): O(n).
 */
function sortIds(ids: Buffer, count: number): { sorted: Buffer; fanout: Uint32Array } {
  const fanout = new Uint32Array(FANOUT);
  for (let i = 0; i < count; i++) fanout[ids.readUInt16BE(i * 32) + 1]!++;
  for (let b = 1; b < FANOUT; b++) fanout[b]! += fanout[b - 1]!;
  const fill = fanout.slice(0, FANOUT - 1);
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[fill[ids.readUInt16BE(i * 32)]!++] = i;
  for (let b = 0; b < FANOUT - 1; b++) {
    const lo = fanout[b]!;
    const hi = fanout[b + 1]!;
    for (let i = lo + 1; i < hi; i++) {
      const x = order[i]!;
      let j = i - 1;
      while (j >= lo && ids.compare(ids, x * 32, x * 32 + 32, order[j]! * 32, order[j]! * 32 + 32) < 0) {
        order[j + 1] = order[j]!;
        j--;
      }
      order[j + 1] = x;
    }
  }
  const sorted = Buffer.alloc(count * 12);
  for (let i = 0; i < count; i++) {
    const o = order[i]!;
    ids.copy(sorted, i * 12, o * 32, o * 32 + 8);
    sorted.writeUInt32LE(o, i * 12 + 8);
  }
  return { sorted, fanout };
}

/** Write a checkpoint of `data` at `path` (temporary name, then renamed into place). */
export function writeCheckpoint(path: string, data: CheckpointData): void {
  const { count, columns } = data;
  const { sorted, fanout } = sortIds(data.ids, count);
  const strings = Buffer.from(
    JSON.stringify({
      statuses: columns.statuses,
      backends: columns.backends,
      builds: columns.builds,
      actors: columns.actors,
    }),
  );
  const parts: Buffer[] = [
    data.ids.subarray(0, count * 32),
    bytesOf(data.offsets.subarray(0, count)),
    bytesOf(columns.startedMs.subarray(0, count)),
    bytesOf(columns.status.subarray(0, count)),
    bytesOf(columns.backend.subarray(0, count)),
    bytesOf(columns.build.subarray(0, count)),
    bytesOf(columns.actor.subarray(0, count)),
    sorted,
    bytesOf(fanout),
    strings,
  ];
  // Each section starts at a multiple of 8 in the body, so a reader can view the columns in place.
  const starts: number[] = [];
  const padded: Buffer[] = [];
  let bodyLength = 0;
  for (const p of parts) {
    const pad = (8 - (bodyLength % 8)) % 8;
    if (pad > 0) padded.push(Buffer.alloc(pad));
    bodyLength += pad;
    starts.push(bodyLength);
    padded.push(p);
    bodyLength += p.length;
  }
  const blockCount = Math.ceil(bodyLength / CHECKPOINT_BLOCK);
  const body = Buffer.concat(padded, bodyLength);
  const head = Buffer.alloc(HEADER + 4 * blockCount);
  MAGIC.copy(head, 0);
  writeU64(head, count, 8);
  writeU64(head, data.end, 16);
  data.lastHash.copy(head, 24);
  writeU64(head, data.lastOffset, 56);
  head.writeUInt32LE(CHECKPOINT_BLOCK, 64);
  head.writeUInt32LE(blockCount, 68);
  writeU64(head, bodyLength, 72);
  parts.forEach((p, i) => {
    writeU64(head, starts[i]!, 80 + i * 16);
    writeU64(head, p.length, 88 + i * 16);
  });
  for (let b = 0; b < blockCount; b++) {
    const block = body.subarray(b * CHECKPOINT_BLOCK, Math.min(bodyLength, (b + 1) * CHECKPOINT_BLOCK));
    head.writeUInt32LE(crc32(block), HEADER + 4 * b);
  }
  head.writeUInt32LE(headerCrc(head.subarray(0, HEADER), head.subarray(HEADER)), CRC_AT);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, head, 0);
    writeAll(fd, body, head.length);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
}

/** crc32 of the header's bytes but its own 4 (0..244 and 248..256), then of the block crc table. */
function headerCrc(head: Buffer, table: Buffer): number {
  return crc32(table, crc32(head.subarray(CRC_AT + 4, HEADER), crc32(head.subarray(0, CRC_AT))));
}

function writeAll(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, position + done);
}

/** A checkpoint file opened for reading: header checked on open, body blocks when read. */
export class CheckpointReader implements CheckpointHead {
  readonly path: string;
  readonly count: number;
  readonly end: number;
  readonly lastHash: Buffer;
  readonly lastOffset: number;
  readonly #fd: number;
  readonly #blockCrcs: Uint32Array;
  readonly #bodyStart: number;
  readonly #bodyLength: number;
  readonly #sections: { offset: number; length: number }[] = [];
  readonly #cache = new Map<number, Buffer>();
  #fanout: Uint32Array | undefined;
  #closed = false;

  /** Opens `path`; undefined when there is no file. Throws CheckpointDamage when it does not read. */
  static open(path: string): CheckpointReader | undefined {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      return new CheckpointReader(path, fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  private constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(HEADER);
    if (readSync(fd, head, 0, HEADER, 0) < HEADER)
      throw new CheckpointDamage(path, 0, 'is shorter than its header');
    if (!head.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new CheckpointDamage(path, 0, 'is not a receipt index checkpoint in format 1 (bad magic)');
    }
    const blockCount = head.readUInt32LE(68);
    const bodyLength = readU64(head, 72);
    if (
      head.readUInt32LE(64) !== CHECKPOINT_BLOCK ||
      blockCount !== Math.ceil(bodyLength / CHECKPOINT_BLOCK)
    ) {
      throw new CheckpointDamage(path, 64, 'block size or count is wrong');
    }
    this.#bodyStart = HEADER + 4 * blockCount;
    this.#bodyLength = bodyLength;
    if (size !== this.#bodyStart + bodyLength) {
      throw new CheckpointDamage(
        path,
        Math.min(size, this.#bodyStart + bodyLength),
        'size differs from its header',
      );
    }
    const crcs = Buffer.alloc(4 * blockCount);
    readSync(fd, crcs, 0, crcs.length, HEADER);
    if (headerCrc(head, crcs) !== head.readUInt32LE(CRC_AT)) {
      throw new CheckpointDamage(path, CRC_AT, 'header fails its checksum');
    }
    this.#blockCrcs = copyInto((n) => new Uint32Array(n), 4, crcs);
    this.count = readU64(head, 8);
    this.end = readU64(head, 16);
    this.lastHash = Buffer.from(head.subarray(24, 56));
    this.lastOffset = readU64(head, 56);
    const n = this.count;
    const widths = [32 * n, 8 * n, 8 * n, 2 * n, 2 * n, 4 * n, 4 * n, 12 * n, 4 * FANOUT, -1];
    for (let i = 0; i < SECTIONS; i++) {
      const offset = readU64(head, 80 + i * 16);
      const length = readU64(head, 88 + i * 16);
      if (offset + length > bodyLength || offset % 8 !== 0 || (widths[i]! >= 0 && length !== widths[i])) {
        throw new CheckpointDamage(path, 80 + i * 16, `section ${i} does not fit its count of ${n}`);
      }
      this.#sections.push({ offset, length });
    }
  }

  /** Verified bytes [start, end) of the body. */
  #body(start: number, end: number): Buffer {
    const first = Math.floor(start / CHECKPOINT_BLOCK);
    const last = Math.floor((end - 1) / CHECKPOINT_BLOCK);
    if (end <= start) return Buffer.alloc(0);
    if (first === last) {
      const block = this.#block(first);
      return block.subarray(start - first * CHECKPOINT_BLOCK, end - first * CHECKPOINT_BLOCK);
    }
    const from = first * CHECKPOINT_BLOCK;
    const to = Math.min(this.#bodyLength, (last + 1) * CHECKPOINT_BLOCK);
    const buf = this.#readRaw(from, to);
    for (let b = first; b <= last; b++) {
      this.#check(
        b,
        buf.subarray((b - first) * CHECKPOINT_BLOCK, Math.min(to, (b + 1) * CHECKPOINT_BLOCK) - from),
      );
    }
    return buf.subarray(start - from, end - from);
  }

  #block(b: number): Buffer {
    let block = this.#cache.get(b);
    if (block) return block;
    block = this.#readRaw(b * CHECKPOINT_BLOCK, Math.min(this.#bodyLength, (b + 1) * CHECKPOINT_BLOCK));
    this.#check(b, block);
    if (this.#cache.size >= CACHE_BLOCKS) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(b, block);
    return block;
  }

  #check(b: number, block: Buffer): void {
    if (crc32(block) !== this.#blockCrcs[b]) {
      throw new CheckpointDamage(
        this.path,
        this.#bodyStart + b * CHECKPOINT_BLOCK,
        `block ${b} fails its checksum`,
      );
    }
  }

  #readRaw(from: number, to: number): Buffer {
    if (this.#closed) throw new CheckpointDamage(this.path, 0, 'was closed');
    const buf = Buffer.allocUnsafe(to - from);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(this.#fd, buf, got, buf.length - got, this.#bodyStart + from + got);
      if (n === 0) throw new CheckpointDamage(this.path, this.#bodyStart + from + got, 'ends early');
      got += n;
    }
    return buf;
  }

  /** Verified bytes [start, end) of section `s`. */
  #section(s: number, start: number, end: number): Buffer {
    const { offset } = this.#sections[s]!;
    return this.#body(offset + start, offset + end);
  }

  /** Ids of ordinals [from, to), 32 raw bytes each. */
  ids(from: number, to: number): Buffer {
    return this.#section(S_IDS, from * 32, to * 32);
  }

  idAt(ordinal: number): Buffer {
    return this.ids(ordinal, ordinal + 1);
  }

  /** Log byte offsets of ordinals [from, to). */
  offsets(from: number, to: number): Float64Array {
    return copyInto((n) => new Float64Array(n), 8, this.#section(S_OFFSETS, from * 8, to * 8));
  }

  offsetAt(ordinal: number): number {
    return this.#section(S_OFFSETS, ordinal * 8, ordinal * 8 + 8).readDoubleLE(0);
  }

  #fanoutTable(): Uint32Array {
    this.#fanout ??= copyInto((n) => new Uint32Array(n), 4, this.#section(S_FANOUT, 0, 4 * FANOUT));
    return this.#fanout;
  }

  /** The ordinal of `id` (32 raw bytes), the last one when the log holds it twice; -1 when absent. */
  ordinalOf(id: Buffer): number {
    const fanout = this.#fanoutTable();
    const bucket = id.readUInt16BE(0);
    const lo = fanout[bucket]!;
    const hi = fanout[bucket + 1]!;
    if (hi < lo || hi > this.count) throw new CheckpointDamage(this.path, 0, 'fanout table is not monotone');
    const entries = this.#section(S_SORTED, lo * 12, hi * 12);
    let found = -1;
    for (let i = 0; i < hi - lo; i++) {
      if (id.compare(entries, i * 12, i * 12 + 8, 0, 8) !== 0) continue;
      const ordinal = entries.readUInt32LE(i * 12 + 8);
      if (ordinal < this.count && ordinal > found && this.idAt(ordinal).equals(id)) found = ordinal;
    }
    return found;
  }

  /**
   * Ordinals (ascending, at most `limit`) whose id starts with the hex `prefix` (lower case,
   * at least 1 digit).
   */
  ordinalsWithPrefix(prefix: string, limit: number): number[] {
    const fanout = this.#fanoutTable();
    const head = prefix.slice(0, 4);
    const lo16 = Number.parseInt(head.padEnd(4, '0'), 16);
    const hi16 = Number.parseInt(head.padEnd(4, 'f'), 16);
    const lo = fanout[lo16]!;
    const hi = fanout[hi16 + 1]!;
    if (hi < lo || hi > this.count) throw new CheckpointDamage(this.path, 0, 'fanout table is not monotone');
    const short = prefix.slice(0, 16);
    const out: number[] = [];
    const step = 4096;
    for (let at = lo; at < hi && out.length < limit; at += step) {
      const end = Math.min(hi, at + step);
      const entries = this.#section(S_SORTED, at * 12, end * 12);
      for (let i = 0; i < end - at && out.length < limit; i++) {
        if (!entries.toString('hex', i * 12, i * 12 + 8).startsWith(short)) continue;
        const ordinal = entries.readUInt32LE(i * 12 + 8);
        if (ordinal >= this.count) continue;
        if (prefix.length > 16 && !this.idAt(ordinal).toString('hex').startsWith(prefix)) continue;
        out.push(ordinal);
      }
    }
    return out.sort((a, b) => a - b);
  }

  /** The receipt index's columns for every ordinal (copied out; read and checked in one go). */
  /**
   * Rows [from, to) of the five index columns, each one verified read viewed in place (a
   * newest-first page reads the last chunk of rows, not all of them).
   */
  rows(from: number, to: number): ColumnRows {
    const read = <T>(s: number, width: number, make: (b: ArrayBufferLike, o: number, k: number) => T): T => {
      const bytes = this.#section(s, from * width, to * width);
      // Sections start at multiples of 8 and reads at block boundaries: the view is aligned.
      return make(bytes.buffer, bytes.byteOffset, to - from);
    };
    return {
      startedMs: read(S_STARTED, 8, (b, o, k) => new Float64Array(b, o, k)),
      status: read(S_STATUS, 2, (b, o, k) => new Uint16Array(b, o, k)),
      backend: read(S_BACKEND, 2, (b, o, k) => new Uint16Array(b, o, k)),
      build: read(S_BUILD, 4, (b, o, k) => new Uint32Array(b, o, k)),
      actor: read(S_ACTOR, 4, (b, o, k) => new Uint32Array(b, o, k)),
    };
  }

  /** The interned string tables of the columns (entry 0 is ''). */
  strings(): { statuses: string[]; backends: string[]; builds: string[]; actors: string[] } {
    const bytes = this.#section(S_STRINGS, 0, this.#sections[S_STRINGS]!.length);
    let strings: { statuses: string[]; backends: string[]; builds: string[]; actors: string[] };
    try {
      strings = JSON.parse(bytes.toString());
    } catch {
      throw new CheckpointDamage(this.path, this.#sections[S_STRINGS]!.offset, 'string tables are not JSON');
    }
    for (const key of ['statuses', 'backends', 'builds', 'actors'] as const) {
      const table = strings?.[key];
      if (!Array.isArray(table) || table[0] !== '' || !table.every((x) => typeof x === 'string')) {
        throw new CheckpointDamage(
          this.path,
          this.#sections[S_STRINGS]!.offset,
          `string table ${key} is malformed`,
        );
      }
    }
    return strings;
  }

  columns(): IndexColumns {
    const n = this.count;
    const strings = this.strings();
    // One read of the five columns (verified block by block), viewed in place: every section starts
    // at a multiple of 8 in the body and a read starts at a block boundary, so the views align.
    const first = this.#sections[S_STARTED]!.offset;
    const last = this.#sections[S_ACTOR]!;
    const span = this.#body(first, last.offset + last.length);
    const view = <T>(
      s: number,
      make: (buffer: ArrayBufferLike, byteOffset: number, length: number) => T,
    ): T => make(span.buffer, span.byteOffset + this.#sections[s]!.offset - first, n);
    return {
      startedMs: view(S_STARTED, (b, o, k) => new Float64Array(b, o, k)),
      status: view(S_STATUS, (b, o, k) => new Uint16Array(b, o, k)),
      backend: view(S_BACKEND, (b, o, k) => new Uint16Array(b, o, k)),
      build: view(S_BUILD, (b, o, k) => new Uint32Array(b, o, k)),
      actor: view(S_ACTOR, (b, o, k) => new Uint32Array(b, o, k)),
      statuses: strings.statuses,
      backends: strings.backends,
      builds: strings.builds,
      actors: strings.actors,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cache.clear();
    closeSync(this.#fd);
  }
}
