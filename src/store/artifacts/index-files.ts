/**
 * On-disk formats of the artifact index: the entry, the append-only index log, and the sorted
 * table used for checkpoints and snapshots. (artifact-index.ts puts them together as CURRENT.)
 *
 * An entry maps an artifact key (a sha256-shaped 64-hex name: a payload hash, a build id, a
 * block id) to: the block holding its bytes (block id + location: segment number, byte offset,
 * length; segment 0xffffffff = a large block alone in blocks/large/), the put time (ms), kind,
 * domain, cross-domain source ('' when local), visibility (internal | published) and a state:
 * live, tombstone (deleted by `tombstone`) or reclaimed (removed by GC; kept so that a lookup can
 * say "reclaimed by GC" instead of "not found"). The last entry written for a key shadows every
 * earlier one.
 *
 * Index log (`index/<gen>.log`, magic `TPIXLOG1`): the magic, then records
 *
 *     u32be length | u32be crc32(payload) | payload
 *     payload = state u8 (bit 7: the key was live before) | visibility u8 | key (32) | block id (32) | segment u32be
 *             | offset u48be | length u48be | time u48be
 *             | u8 n + kind (n bytes) | u8 n + domain | u8 n + source     (UTF-8, ≤ 255 bytes)
 *
 * Each record is the whole new state of one key. Replay (open): records in order, last wins. A
 * record that ends past the end of the file (or an all-zero header) with nothing valid after it
 * is a torn tail (a crash mid-write): a writer cuts it, a reader ignores it. A complete record
 * that fails its crc, or a bad record followed by a valid one, is corruption: the open fails
 * naming the file and byte (nothing is cut).
 *
 * Table (checkpoint `index/<gen>.ckpt`, magic `TPIXCK01`; snapshot `snapshots/<id>.snap`,
 * magic `TPSNAP01`):
 *
 *     bytes 0..8      magic
 *     bytes 8..16     u64be record count
 *     bytes 16..20    u32be strings length S      bytes 20..24  u32be meta length M
 *     bytes 24..28    u32be record size (98)      bytes 28..32  u32be crc32 of bytes 0..28,
 *                                                               the fanout, strings and meta
 *     bytes 32..1056  fanout: 256 × u32be, [i] = number of records whose key's first byte ≤ i
 *     then S bytes    string table: u16be n, then n × (u8 length + UTF-8); string 0 is ''
 *     then M bytes    meta (JSON; snapshots: id, label, createdAt)
 *     then records, sorted by key, 98 bytes each:
 *         key (32) | block id (32) | segment u32be | offset u48be | length u48be | time u48be
 *         | kind u16be | domain u16be | source u16be (string table indexes)
 *         | visibility u8 | state u8 | crc32 of the 94 bytes before
 *
 * Open reads the header, fanout, strings and meta (crc-checked) and checks that the file is
 * exactly as long as they say (a cut table → StoreFileIntegrityError naming the byte). A lookup
 * is a binary search inside the key's fanout bucket with one pread per probe; each record's crc
 * is checked when it is read. `verify` reads every record (crc, key order).
 */

import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { StoreFileIntegrityError } from './errors.js';

export type Visibility = 'internal' | 'published';
export type EntryState = 'live' | 'tombstone' | 'reclaimed';

export interface IndexEntry {
  readonly key: string;
  /** Block id (sha256 hex of the bytes); 64 zeros when the entry names no block. */
  readonly block: string;
  readonly segment: number;
  readonly offset: number;
  readonly length: number;
  /** When it was put, ms since the epoch. */
  readonly time: number;
  readonly kind: string;
  readonly domain: string;
  /** The domain (or store) it was imported from; '' for a local artifact. */
  readonly source: string;
  readonly visibility: Visibility;
  readonly state: EntryState;
}

export const ZERO_ID = '0'.repeat(64);
export const LOG_MAGIC = Buffer.from('TPIXLOG1');
export const CHECKPOINT_MAGIC = Buffer.from('TPIXCK01');
export const SNAPSHOT_MAGIC = Buffer.from('TPSNAP01');
export const RECORD_SIZE = 98;
const HEADER_SIZE = 32;
const FANOUT_SIZE = 1024;
const U32 = 2 ** 32;
const STATES: readonly EntryState[] = ['live', 'tombstone', 'reclaimed'];
const VISIBILITIES: readonly Visibility[] = ['internal', 'published'];

function writeU48(buf: Buffer, value: number, at: number): void {
  buf.writeUIntBE(value, at, 6);
}
function readU48(buf: Buffer, at: number): number {
  return buf.readUIntBE(at, 6);
}

// ---------------------------------------------------------------------------------------------
// Log records

/** The framed log record of an entry (header + payload). */
export function encodeLogRecord(e: IndexEntry, wasLive: boolean): Buffer {
  const kind = Buffer.from(e.kind, 'utf8');
  const domain = Buffer.from(e.domain, 'utf8');
  const source = Buffer.from(e.source, 'utf8');
  const payloadLength = 88 + 3 + kind.length + domain.length + source.length;
  const buf = Buffer.allocUnsafe(8 + payloadLength);
  const p = 8;
  buf[p] = STATES.indexOf(e.state) | (wasLive ? 0x80 : 0);
  buf[p + 1] = VISIBILITIES.indexOf(e.visibility);
  buf.write(e.key, p + 2, 32, 'hex');
  buf.write(e.block, p + 34, 32, 'hex');
  buf.writeUInt32BE(e.segment, p + 66);
  writeU48(buf, e.offset, p + 70);
  writeU48(buf, e.length, p + 76);
  writeU48(buf, e.time, p + 82);
  let at = p + 88;
  for (const s of [kind, domain, source]) {
    buf[at] = s.length;
    s.copy(buf, at + 1);
    at += 1 + s.length;
  }
  buf.writeUInt32BE(payloadLength, 0);
  buf.writeUInt32BE(crc32(buf.subarray(8)), 4);
  return buf;
}

/** Decode a log record's payload; undefined when it does not make sense (reported by the caller). */
export function decodeLogPayload(p: Buffer): IndexEntry | undefined {
  if (p.length < 91) return undefined;
  const state = STATES[p[0]! & 0x7f];
  const visibility = VISIBILITIES[p[1]!];
  if (!state || !visibility) return undefined;
  const strings: string[] = [];
  let at = 88;
  for (let i = 0; i < 3; i++) {
    if (at >= p.length) return undefined;
    const n = p[at]!;
    if (at + 1 + n > p.length) return undefined;
    strings.push(p.toString('utf8', at + 1, at + 1 + n));
    at += 1 + n;
  }
  if (at !== p.length) return undefined;
  return {
    key: p.toString('hex', 2, 34),
    block: p.toString('hex', 34, 66),
    segment: p.readUInt32BE(66),
    offset: readU48(p, 70),
    length: readU48(p, 76),
    time: readU48(p, 82),
    kind: strings[0]!,
    domain: strings[1]!,
    source: strings[2]!,
    visibility,
    state,
  };
}

export interface LogScan {
  readonly entries: IndexEntry[];
  /** Per entry: whether its key was live before it (the writer knew; spares a lookup on replay). */
  readonly wasLive: boolean[];
  /** File offset where the valid records end. */
  readonly end: number;
  /** Bytes after `end` that are a torn tail (0 when none). */
  readonly torn: number;
}

/**
 * Parse log bytes that start at file offset `base` (0: the file's start, with its magic; else a
 * record boundary). Corruption → StoreFileIntegrityError naming the file offset; a torn tail (or,
 * for a reader beside a writer, a record still being written) is reported in `torn`.
 */
export function scanLog(path: string, bytes: Buffer, base: number): LogScan {
  let at = 0;
  if (base === 0) {
    if (bytes.length < LOG_MAGIC.length || !bytes.subarray(0, LOG_MAGIC.length).equals(LOG_MAGIC)) {
      if (bytes.length < LOG_MAGIC.length && LOG_MAGIC.subarray(0, bytes.length).equals(bytes)) {
        return { entries: [], wasLive: [], end: 0, torn: bytes.length };
      }
      throw new StoreFileIntegrityError(
        path,
        0,
        `not an index log of this format (magic ${JSON.stringify(bytes.subarray(0, 8).toString('latin1'))})`,
      );
    }
    at = LOG_MAGIC.length;
  }
  const entries: IndexEntry[] = [];
  const wasLive: boolean[] = [];
  while (at < bytes.length) {
    const bad = (why: string): LogScan => {
      // Damage followed by a valid record is corruption; otherwise a torn tail.
      if (validRecordAfter(bytes, at + 1)) throw new StoreFileIntegrityError(path, base + at, why);
      return { entries, wasLive, end: base + at, torn: bytes.length - at };
    };
    if (at + 8 > bytes.length) return bad('index log ends inside a record header');
    const length = bytes.readUInt32BE(at);
    const crc = bytes.readUInt32BE(at + 4);
    if (length === 0 && crc === 0) return bad('zeros where a record should start');
    if (at + 8 + length > bytes.length) return bad(`record of ${length} bytes runs past the end of the file`);
    const payload = bytes.subarray(at + 8, at + 8 + length);
    if (crc32(payload) !== crc) {
      throw new StoreFileIntegrityError(path, base + at, 'index log record fails its checksum');
    }
    const entry = decodeLogPayload(payload);
    if (!entry)
      throw new StoreFileIntegrityError(path, base + at, 'index log record checks but does not decode');
    entries.push(entry);
    wasLive.push((payload[0]! & 0x80) !== 0);
    at += 8 + length;
  }
  return { entries, wasLive, end: base + at, torn: 0 };
}

/** Whether a complete, checking record starts anywhere at or after `from`. */
function validRecordAfter(bytes: Buffer, from: number): boolean {
  for (let at = from; at + 8 + 91 <= bytes.length; at++) {
    const length = bytes.readUInt32BE(at);
    if (length < 91 || length > 91 + 3 * 255 || at + 8 + length > bytes.length) continue;
    if (crc32(bytes.subarray(at + 8, at + 8 + length)) === bytes.readUInt32BE(at + 4)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Tables (checkpoints and snapshots)

class StringTable {
  readonly list: string[] = [''];
  readonly #ids = new Map<string, number>([['', 0]]);

  id(s: string): number {
    let id = this.#ids.get(s);
    if (id === undefined) {
      id = this.list.length;
      if (id > 0xffff) throw new RangeError('more than 65535 distinct kinds, domains and sources');
      this.list.push(s);
      this.#ids.set(s, id);
    }
    return id;
  }

  encode(): Buffer {
    const parts = this.list.map((s) => Buffer.from(s, 'utf8'));
    const out = Buffer.allocUnsafe(2 + parts.reduce((n, p) => n + 1 + p.length, 0));
    out.writeUInt16BE(parts.length, 0);
    let at = 2;
    for (const p of parts) {
      out[at] = p.length;
      p.copy(out, at + 1);
      at += 1 + p.length;
    }
    return out;
  }
}

/**
 * Write `entries` (sorted by key, one per key) as a table at `path`: to a temporary name,
 * fsynced, renamed into place. Returns the number of records.
 */
export function writeTable(
  path: string,
  magic: Buffer,
  entries: Iterable<IndexEntry>,
  meta: Uint8Array = new Uint8Array(0),
): number {
  const strings = new StringTable();
  const records: Buffer[] = [];
  const fanout = Buffer.alloc(FANOUT_SIZE);
  const counts = new Uint32Array(256);
  let last = '';
  for (const e of entries) {
    if (e.key <= last) throw new RangeError(`table entries out of order at ${e.key}`);
    last = e.key;
    const r = Buffer.allocUnsafe(RECORD_SIZE);
    r.write(e.key, 0, 32, 'hex');
    r.write(e.block, 32, 32, 'hex');
    r.writeUInt32BE(e.segment, 64);
    writeU48(r, e.offset, 68);
    writeU48(r, e.length, 74);
    writeU48(r, e.time, 80);
    r.writeUInt16BE(strings.id(e.kind), 86);
    r.writeUInt16BE(strings.id(e.domain), 88);
    r.writeUInt16BE(strings.id(e.source), 90);
    r[92] = VISIBILITIES.indexOf(e.visibility);
    r[93] = STATES.indexOf(e.state);
    r.writeUInt32BE(crc32(r.subarray(0, 94)), 94);
    records.push(r);
    counts[r[0]!]!++;
  }
  let running = 0;
  for (let i = 0; i < 256; i++) {
    running += counts[i]!;
    fanout.writeUInt32BE(running, i * 4);
  }
  const stringBytes = strings.encode();
  const header = Buffer.alloc(HEADER_SIZE);
  magic.copy(header, 0);
  header.writeUInt32BE(Math.floor(records.length / U32), 8);
  header.writeUInt32BE(records.length % U32, 12);
  header.writeUInt32BE(stringBytes.length, 16);
  header.writeUInt32BE(meta.byteLength, 20);
  header.writeUInt32BE(RECORD_SIZE, 24);
  let crc = crc32(header.subarray(0, 28));
  crc = crc32(fanout, crc);
  crc = crc32(stringBytes, crc);
  crc = crc32(meta, crc);
  header.writeUInt32BE(crc, 28);

  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    let at = 0;
    const write = (b: Uint8Array): void => {
      let done = 0;
      while (done < b.byteLength) done += writeSync(fd, b, done, b.byteLength - done, at + done);
      at += b.byteLength;
    };
    write(header);
    write(fanout);
    write(stringBytes);
    write(meta);
    const BATCH = 4096;
    for (let i = 0; i < records.length; i += BATCH) write(Buffer.concat(records.slice(i, i + BATCH)));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return records.length;
}

/** A table open for lookups (pread per probe) and scans. */
export class Table {
  readonly path: string;
  readonly count: number;
  readonly meta: Buffer;
  readonly #fd: number;
  readonly #fanout: Uint32Array;
  readonly #strings: string[];
  readonly #recordsAt: number;
  readonly #probe = Buffer.allocUnsafe(RECORD_SIZE);
  #closed = false;

  constructor(path: string, magic: Buffer) {
    this.path = path;
    this.#fd = openSync(path, 'r');
    try {
      const size = fstatSync(this.#fd).size;
      const header = Buffer.alloc(HEADER_SIZE);
      const fail = (offset: number, why: string): never => {
        throw new StoreFileIntegrityError(path, offset, why);
      };
      if (readSync(this.#fd, header, 0, HEADER_SIZE, 0) < HEADER_SIZE)
        fail(size, `file of ${size} bytes is shorter than a table header`);
      if (!header.subarray(0, 8).equals(magic)) {
        fail(
          0,
          `not a ${magic.toString('latin1')} table (magic ${JSON.stringify(header.subarray(0, 8).toString('latin1'))})`,
        );
      }
      const count = header.readUInt32BE(8) * U32 + header.readUInt32BE(12);
      const stringsLength = header.readUInt32BE(16);
      const metaLength = header.readUInt32BE(20);
      if (header.readUInt32BE(24) !== RECORD_SIZE)
        fail(24, `record size ${header.readUInt32BE(24)}, expected ${RECORD_SIZE}`);
      const preamble = FANOUT_SIZE + stringsLength + metaLength;
      if (HEADER_SIZE + preamble > size)
        fail(size, `table is cut: its header needs ${HEADER_SIZE + preamble} bytes`);
      const rest = Buffer.alloc(preamble);
      readSync(this.#fd, rest, 0, preamble, HEADER_SIZE);
      let crc = crc32(header.subarray(0, 28));
      crc = crc32(rest, crc);
      if (crc !== header.readUInt32BE(28))
        fail(0, 'table header, fanout, strings or meta fail their checksum');
      this.#recordsAt = HEADER_SIZE + preamble;
      const expected = this.#recordsAt + count * RECORD_SIZE;
      if (size !== expected) {
        fail(
          Math.min(size, expected),
          `table of ${count} records should be ${expected} bytes, the file has ${size} (cut or extended)`,
        );
      }
      this.count = count;
      this.#fanout = new Uint32Array(256);
      for (let i = 0; i < 256; i++) this.#fanout[i] = rest.readUInt32BE(i * 4);
      if (this.#fanout[255] !== count)
        fail(HEADER_SIZE + 1020, `fanout says ${this.#fanout[255]} records, the header ${count}`);
      const strings = rest.subarray(FANOUT_SIZE, FANOUT_SIZE + stringsLength);
      const n = strings.readUInt16BE(0);
      this.#strings = [];
      let at = 2;
      for (let i = 0; i < n; i++) {
        const len = strings[at]!;
        this.#strings.push(strings.toString('utf8', at + 1, at + 1 + len));
        at += 1 + len;
      }
      this.meta = Buffer.from(rest.subarray(FANOUT_SIZE + stringsLength));
    } catch (err) {
      closeSync(this.#fd);
      throw err;
    }
  }

  #readRecord(i: number, into: Buffer): Buffer {
    const at = this.#recordsAt + i * RECORD_SIZE;
    if (readSync(this.#fd, into, 0, RECORD_SIZE, at) < RECORD_SIZE) {
      throw new StoreFileIntegrityError(this.path, at, 'table ends inside a record');
    }
    return into;
  }

  #decode(r: Buffer, i: number): IndexEntry {
    const at = this.#recordsAt + i * RECORD_SIZE;
    if (crc32(r.subarray(0, 94)) !== r.readUInt32BE(94)) {
      throw new StoreFileIntegrityError(this.path, at, `record ${i} fails its checksum`);
    }
    const kind = this.#strings[r.readUInt16BE(86)];
    const domain = this.#strings[r.readUInt16BE(88)];
    const source = this.#strings[r.readUInt16BE(90)];
    const visibility = VISIBILITIES[r[92]!];
    const state = STATES[r[93]!];
    if (kind === undefined || domain === undefined || source === undefined || !visibility || !state) {
      throw new StoreFileIntegrityError(
        this.path,
        at,
        `record ${i} names a string or state the table does not have`,
      );
    }
    return {
      key: r.toString('hex', 0, 32),
      block: r.toString('hex', 32, 64),
      segment: r.readUInt32BE(64),
      offset: readU48(r, 68),
      length: readU48(r, 74),
      time: readU48(r, 80),
      kind,
      domain,
      source,
      visibility,
      state,
    };
  }

  /** The entry for `key` (64 hex), or undefined. */
  find(key: string): IndexEntry | undefined {
    const first = Number.parseInt(key.slice(0, 2), 16);
    let lo = first === 0 ? 0 : this.#fanout[first - 1]!;
    let hi = this.#fanout[first]!;
    const want = Buffer.from(key, 'hex');
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const r = this.#readRecord(mid, this.#probe);
      const c = r.compare(want, 0, 32, 0, 32);
      if (c === 0) return this.#decode(r, mid);
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return undefined;
  }

  /** Every entry, in key order (read in large chunks; every record's crc checked). */
  *entries(): Generator<IndexEntry> {
    const PER = 8192;
    const chunk = Buffer.allocUnsafe(PER * RECORD_SIZE);
    for (let i = 0; i < this.count; i += PER) {
      const n = Math.min(PER, this.count - i);
      const at = this.#recordsAt + i * RECORD_SIZE;
      const got = readSync(this.#fd, chunk, 0, n * RECORD_SIZE, at);
      if (got < n * RECORD_SIZE)
        throw new StoreFileIntegrityError(this.path, at + got, 'table ends inside a record');
      for (let j = 0; j < n; j++)
        yield this.#decode(chunk.subarray(j * RECORD_SIZE, (j + 1) * RECORD_SIZE), i + j);
    }
  }

  /** Check every record (crc, strictly increasing keys); returns the count. */
  verify(): number {
    let last = '';
    let i = 0;
    for (const e of this.entries()) {
      if (e.key <= last) {
        throw new StoreFileIntegrityError(
          this.path,
          this.#recordsAt + i * RECORD_SIZE,
          `record ${i} is out of key order`,
        );
      }
      last = e.key;
      i++;
    }
    return i;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.#fd);
  }
}
