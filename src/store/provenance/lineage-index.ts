/**
 * The lineage index: which receipts produced an artifact, which consumed it, and which
 * receipts name a receipt as their parent — persisted beside the receipt log and caught up
 * from it, so that a provenance query is a few lookups, never a scan of the log.
 *
 * Edges, one per (kind, key, value), all 32-byte sha256 digests:
 *   PRODUCED  key = payload hash of an output     value = the receipt that produced it
 *   CONSUMED  key = payload hash of an input, or  value = the receipt that consumed it
 *                   the digest of a memory fs tree the execution saw
 *   CHILD     key = a parent receipt id           value = a receipt that names it in `parents`
 * Every edge comes from a receipt body in the log, so the log alone can always rebuild the index.
 *
 * On disk: `<store>/provenance/lineage.idx`, a checkpoint written whole (temporary file,
 * fsync, rename) — format 1, magic `TPLINE1\n`:
 *
 *     bytes 0..8        magic
 *     bytes 8..16       u64be ordinal: how many receipts of the log the checkpoint covers
 *     bytes 16..24      u64be offset: the log's byte offset after the last covered record
 *     bytes 24..56      the id of the last covered receipt (zeros when none)
 *     bytes 56..64      u64be edge count
 *     bytes 64..68      u32be crc32 of bytes 0..64
 *     bytes 68..1092    fanout: 256 × u32be, entry b = edges whose key's first byte is ≤ b
 *     bytes 1092..1096  u32be crc32 of the fanout
 *     bytes 1096..      edges sorted by (key, kind, value): key (32) | kind (1) | value (32) |
 *                       u32be crc32 of those 65 bytes — 69 bytes each
 *
 * Open reads the header and fanout only (1 KiB), checks both checksums, that the file is
 * exactly as long as the count says, and that the covered position is still in the log (the
 * log holds at least `ordinal` receipts and the `ordinal`-th is the named one). Any failure —
 * no file, a torn or damaged header, a checkpoint of another log, a log that was replaced —
 * and the checkpoint is not trusted: the index is rebuilt from the log (`rebuilt` says why).
 * Then the receipts after the covered position are read from the log (`scanBodies`) into an
 * in-memory tail; a lookup binary-searches the checkpoint with pread inside the fanout bucket
 * (~log2(n) reads of 69 bytes) and adds the tail. Every edge read is checked against its crc
 * (a failure is a LogIntegrityError naming the byte). `verify()` reads the whole file.
 *
 * A writer rewrites the checkpoint (merging the sorted tail into it) when the tail reaches a
 * quarter of the checkpoint (at least 65,536 edges), and on close; a read-only store never
 * writes it. A crash leaves either the old checkpoint or the new one (rename), never a mix;
 * a stale checkpoint only means more of the log to catch up on.
 */

import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { decodeCanonical } from '../../runtime/canonical.js';
import { LogIntegrityError } from '../errors.js';
import { type LogPosition, ReceiptLog } from '../receipt-log.js';

export const EDGE_PRODUCED = 1;
export const EDGE_CONSUMED = 2;
export const EDGE_CHILD = 3;
export type EdgeKind = typeof EDGE_PRODUCED | typeof EDGE_CONSUMED | typeof EDGE_CHILD;

const MAGIC = Buffer.from('TPLINE1\n');
const HEADER = 68;
const FANOUT_AT = HEADER;
const FANOUT_BYTES = 256 * 4;
const RECORDS_AT = FANOUT_AT + FANOUT_BYTES + 4;
const EDGE = 65;
const RECORD = EDGE + 4;
const U32 = 2 ** 32;
const MIN_REWRITE = 65536;

function readU64(b: Buffer, at: number): number {
  return b.readUInt32BE(at) * U32 + b.readUInt32BE(at + 4);
}

function writeU64(b: Buffer, v: number, at: number): void {
  b.writeUInt32BE(Math.floor(v / U32), at);
  b.writeUInt32BE(v % U32, at + 4);
}

function edgeBytes(kind: EdgeKind, key: string, value: string): Buffer {
  const b = Buffer.allocUnsafe(EDGE);
  b.write(key, 0, 32, 'hex');
  b[32] = kind;
  b.write(value, 33, 32, 'hex');
  return b;
}

interface Checkpoint {
  readonly fd: number;
  readonly count: number;
  readonly fanout: Uint32Array;
}

const HEX = /^[0-9a-f]{64}$/;

export class LineageIndex {
  readonly path: string;
  readonly #log: ReceiptLog;
  readonly #readOnly: boolean;
  #checkpoint: Checkpoint | undefined;
  #position: LogPosition = ReceiptLog.START;
  #lastId = '';
  /** Edges after the checkpoint: `kind:key` → values, and the raw edges for the next rewrite. */
  #tail = new Map<string, string[]>();
  #tailEdges: Buffer[] = [];
  /** Why the checkpoint was not used at open (null when it was, or there was none to use). */
  rebuilt: string | null = null;

  constructor(path: string, log: ReceiptLog, options: { readOnly: boolean }) {
    this.path = path;
    this.#log = log;
    this.#readOnly = options.readOnly;
    this.#openCheckpoint();
    this.catchUp();
  }

  /** Receipts the index covers (checkpoint + tail). */
  get covered(): number {
    return this.#position.ordinal;
  }

  get tailEdges(): number {
    return this.#tailEdges.length;
  }

  get checkpointEdges(): number {
    return this.#checkpoint?.count ?? 0;
  }

  #openCheckpoint(): boolean {
    if (!existsSync(this.path)) return false;
    const fd = openSync(this.path, constants.O_RDONLY);
    const reject = (why: string): false => {
      closeSync(fd);
      this.rebuilt = `${this.path}: ${why}; rebuilt from the receipt log`;
      return false;
    };
    const head = Buffer.alloc(RECORDS_AT);
    const size = fstatSync(fd).size;
    if (size < RECORDS_AT || readSync(fd, head, 0, RECORDS_AT, 0) !== RECORDS_AT)
      return reject(`shorter than its header (${size} bytes)`);
    if (!head.subarray(0, 8).equals(MAGIC))
      return reject(
        `not a lineage index of this format (magic ${JSON.stringify(head.subarray(0, 8).toString('latin1'))})`,
      );
    if (crc32(head.subarray(0, 64)) !== head.readUInt32BE(64))
      return reject('its header fails its checksum (byte 64)');
    if (
      crc32(head.subarray(FANOUT_AT, FANOUT_AT + FANOUT_BYTES)) !==
      head.readUInt32BE(FANOUT_AT + FANOUT_BYTES)
    )
      return reject(`its fanout fails its checksum (byte ${FANOUT_AT + FANOUT_BYTES})`);
    const ordinal = readU64(head, 8);
    const offset = readU64(head, 16);
    const lastId = head.subarray(24, 56).toString('hex');
    const count = readU64(head, 56);
    if (size !== RECORDS_AT + count * RECORD)
      return reject(
        `is ${size} bytes, but its header counts ${count} edges (${RECORDS_AT + count * RECORD} bytes)`,
      );
    this.#log.refresh();
    if (this.#log.size < ordinal || (ordinal > 0 && this.#log.idAt(ordinal - 1) !== lastId))
      return reject(
        `covers ${ordinal} receipts ending with ${lastId}, which is not what the receipt log holds (another or a rewritten log)`,
      );
    const fanout = new Uint32Array(256);
    for (let i = 0; i < 256; i++) fanout[i] = head.readUInt32BE(FANOUT_AT + 4 * i);
    if (fanout[255] !== count) return reject('its fanout does not end at its edge count');
    this.#checkpoint = { fd, count, fanout };
    this.#position = { ordinal, offset };
    this.#lastId = ordinal > 0 ? lastId : '';
    return true;
  }

  #add(kind: EdgeKind, key: unknown, value: string): void {
    if (typeof key !== 'string' || !HEX.test(key)) return;
    const k = `${kind}:${key}`;
    const list = this.#tail.get(k);
    if (list === undefined) this.#tail.set(k, [value]);
    else if (list[list.length - 1] !== value) list.push(value);
    else return;
    this.#tailEdges.push(edgeBytes(kind, key, value));
  }

  /** Take in the receipts the log gained since the index last looked. */
  catchUp(): void {
    this.#log.refresh();
    if (this.#position.ordinal >= this.#log.size) return;
    this.#position = this.#log.scanBodies(this.#position, (id, body) => {
      const b = decodeCanonical<{
        input?: { hash?: unknown };
        output?: { hash?: unknown } | null;
        parents?: unknown;
        sandbox?: { fs?: { kind?: unknown; digest?: unknown } };
      }>(body);
      this.#add(EDGE_CONSUMED, b.input?.hash, id);
      if (b.output) this.#add(EDGE_PRODUCED, b.output.hash, id);
      if (b.sandbox?.fs?.kind === 'memory') this.#add(EDGE_CONSUMED, b.sandbox.fs.digest, id);
      if (Array.isArray(b.parents)) for (const p of b.parents) this.#add(EDGE_CHILD, p, id);
      this.#lastId = id;
    });
    if (
      !this.#readOnly &&
      this.#tailEdges.length >= Math.max(MIN_REWRITE, (this.#checkpoint?.count ?? 0) / 4)
    )
      this.checkpoint();
  }

  /**
   * Receipt ids with an edge (kind, key), checkpoint first then tail (append order within each).
   * `catchUp: false` skips looking at the log first (a query of many lookups looks once).
   */
  lookup(kind: EdgeKind, key: string, catchUp = true): string[] {
    if (catchUp) this.catchUp();
    const out = this.#lookupCheckpoint(kind, key);
    for (const v of this.#tail.get(`${kind}:${key}`) ?? []) if (!out.includes(v)) out.push(v);
    return out;
  }

  #readRecord(cp: Checkpoint, i: number, buf: Buffer): Buffer {
    const at = RECORDS_AT + i * RECORD;
    if (readSync(cp.fd, buf, 0, RECORD, at) !== RECORD)
      throw new LogIntegrityError(this.path, at, 'ends inside an edge');
    if (crc32(buf.subarray(0, EDGE)) !== buf.readUInt32BE(EDGE))
      throw new LogIntegrityError(this.path, at, 'edge fails its checksum');
    return buf;
  }

  #lookupCheckpoint(kind: EdgeKind, key: string): string[] {
    const cp = this.#checkpoint;
    if (cp === undefined || !HEX.test(key)) return [];
    const want = Buffer.alloc(33);
    want.write(key, 0, 32, 'hex');
    want[32] = kind;
    const b = want[0]!;
    let lo = b === 0 ? 0 : cp.fanout[b - 1]!;
    let hi = cp.fanout[b]!;
    const rec = Buffer.alloc(RECORD);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare(this.#readRecord(cp, mid, rec).subarray(0, 33), want) < 0) lo = mid + 1;
      else hi = mid;
    }
    const out: string[] = [];
    for (let i = lo; i < cp.fanout[b]!; i++) {
      this.#readRecord(cp, i, rec);
      if (!rec.subarray(0, 33).equals(want)) break;
      out.push(rec.subarray(33, 65).toString('hex'));
    }
    return out;
  }

  /** Every edge of the checkpoint, checked and in order (for a rewrite, and `verify`). */
  #readAll(): Buffer {
    const cp = this.#checkpoint;
    if (cp === undefined) return Buffer.alloc(0);
    const all = Buffer.allocUnsafe(cp.count * RECORD);
    let got = 0;
    while (got < all.length) {
      const n = readSync(cp.fd, all, got, all.length - got, RECORDS_AT + got);
      if (n === 0) throw new LogIntegrityError(this.path, RECORDS_AT + got, 'ends before its last edge');
      got += n;
    }
    for (let i = 0; i < cp.count; i++) {
      const r = all.subarray(i * RECORD, (i + 1) * RECORD);
      if (crc32(r.subarray(0, EDGE)) !== r.readUInt32BE(EDGE))
        throw new LogIntegrityError(this.path, RECORDS_AT + i * RECORD, 'edge fails its checksum');
      if (
        i > 0 &&
        Buffer.compare(all.subarray((i - 1) * RECORD, (i - 1) * RECORD + EDGE), r.subarray(0, EDGE)) > 0
      )
        throw new LogIntegrityError(this.path, RECORDS_AT + i * RECORD, 'edges out of order');
    }
    return all;
  }

  /** Read and check every edge of the checkpoint; returns how many. */
  verify(): number {
    return this.#readAll().length / RECORD;
  }

  /** Merge the tail into a new checkpoint (writer only). */
  checkpoint(): void {
    if (this.#readOnly) return;
    if (this.#tailEdges.length === 0 && this.#checkpoint !== undefined) return;
    const old = this.#readAll();
    const tail = this.#tailEdges.sort(Buffer.compare);
    const count = old.length / RECORD + tail.length;
    const out = Buffer.allocUnsafe(RECORDS_AT + count * RECORD);
    const fanout = new Uint32Array(256);
    let w = RECORDS_AT;
    let i = 0;
    let j = 0;
    let prev: Buffer | undefined;
    const put = (edge: Buffer) => {
      if (prev?.equals(edge)) return; // the same edge twice (a rebuilt tail)
      edge.copy(out, w);
      out.writeUInt32BE(crc32(edge), w + EDGE);
      prev = out.subarray(w, w + EDGE);
      fanout[edge[0]!]!++;
      w += RECORD;
    };
    while (i * RECORD < old.length || j < tail.length) {
      const a = i * RECORD < old.length ? old.subarray(i * RECORD, i * RECORD + EDGE) : undefined;
      const b = tail[j];
      if (b === undefined || (a !== undefined && Buffer.compare(a, b) <= 0)) {
        put(Buffer.from(a!));
        i++;
      } else {
        put(b);
        j++;
      }
    }
    const written = (w - RECORDS_AT) / RECORD;
    for (let k = 1; k < 256; k++) fanout[k]! += fanout[k - 1]!;
    MAGIC.copy(out, 0);
    writeU64(out, this.#position.ordinal, 8);
    writeU64(out, this.#position.offset, 16);
    if (this.#lastId) out.write(this.#lastId, 24, 32, 'hex');
    else out.fill(0, 24, 56);
    writeU64(out, written, 56);
    out.writeUInt32BE(crc32(out.subarray(0, 64)), 64);
    for (let k = 0; k < 256; k++) out.writeUInt32BE(fanout[k]!, FANOUT_AT + 4 * k);
    out.writeUInt32BE(crc32(out.subarray(FANOUT_AT, FANOUT_AT + FANOUT_BYTES)), FANOUT_AT + FANOUT_BYTES);
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w');
    try {
      let at = 0;
      while (at < w) at += writeSync(fd, out, at, w - at, at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    if (this.#checkpoint) closeSync(this.#checkpoint.fd);
    this.#checkpoint = { fd: openSync(this.path, constants.O_RDONLY), count: written, fanout };
    this.#tail = new Map();
    this.#tailEdges = [];
    this.rebuilt = null;
  }

  close(): void {
    if (!this.#readOnly) {
      try {
        this.checkpoint();
      } catch {
        // the checkpoint is an optimisation: the next open catches up from the log
      }
    }
    if (this.#checkpoint) closeSync(this.#checkpoint.fd);
    this.#checkpoint = undefined;
  }
}
