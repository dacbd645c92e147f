/**
 * tree-heads.log: the append-only record of the tree heads a store made (signed when the store
 * has a key, see signing.ts), one per log sync in which the tree grew, and on demand.
 *
 * Layout (format 1, magic `TPHEADS1`):
 *
 *     bytes 0..8     magic
 *     bytes 8..32    zero
 *     bytes 32..     fixed 160-byte records, record i at 32 + 160·i:
 *                      0..88     the signed tree head bytes (signing.ts: context, size, root, time, key id)
 *                      88..152   Ed25519 signature (64 zero bytes when unsigned)
 *                      152..156  u32be signature length (64 or 0)
 *                      156..160  u32be crc32 of bytes 0..156
 *
 * Tree sizes strictly increase from one record to the next (a head is only recorded when the tree
 * grew), so the head of a given size is found by binary search and the latest is the last record:
 * open reads the header and the last record, not the file.
 *
 * Open checks: the magic (another file or format → MerkleIntegrityError); the last record's
 * checksum. A record cut short at the end (size not on a record boundary) or a last record whose
 * checksum fails with zeros or a partial write is a torn append (a crash mid-write): a writer cuts
 * it, a reader ignores it. `verify()` checks every record's checksum and that sizes increase
 * (it is what fsck runs); a bad record before the last one is corruption, reported with its
 * byte offset. The records are written with one write each and fdatasynced before the write
 * returns unless the store's sync policy is 'never'. A head records what the tree was; the
 * receipt log is synced before a head is written, so a head never commits receipts a crash can lose.
 */

import {
  closeSync,
  constants,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { crc32 } from 'node:zlib';
import {
  decodeTreeHead,
  encodeTreeHead,
  SIGNATURE_BYTES,
  TREE_HEAD_BYTES,
  type TreeHead,
} from '../signing.js';
import { MerkleIntegrityError } from './errors.js';

const MAGIC = Buffer.from('TPHEADS1');
const MAGIC_FAMILY = 'TPHEADS';
const HEADER = 32;
export const HEAD_RECORD = 160;
const CHECKED = 156;

export interface RecordedTreeHead extends TreeHead {
  /** Position in tree-heads.log (0 = first). */
  readonly seq: number;
}

function encodeRecord(head: TreeHead): Buffer {
  const rec = Buffer.alloc(HEAD_RECORD);
  encodeTreeHead(head).copy(rec, 0);
  head.signature.copy(rec, TREE_HEAD_BYTES);
  rec.writeUInt32BE(head.signature.length, 152);
  rec.writeUInt32BE(crc32(rec.subarray(0, CHECKED)), CHECKED);
  return rec;
}

export class TreeHeadLog {
  readonly path: string;
  readonly readOnly: boolean;
  #fd: number;
  #count = 0;
  #last: RecordedTreeHead | undefined;
  readonly #durable: boolean;

  constructor(path: string, options: { readOnly?: boolean; durable?: boolean } = {}) {
    this.path = path;
    this.readOnly = options.readOnly ?? false;
    this.#durable = options.durable ?? true;
    try {
      this.#fd = openSync(path, this.readOnly ? constants.O_RDONLY : constants.O_RDWR | constants.O_CREAT);
    } catch (err) {
      if (this.readOnly && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#fd = -1;
        return;
      }
      throw err;
    }
    try {
      this.#open();
    } catch (err) {
      closeSync(this.#fd);
      throw err;
    }
  }

  #open(): void {
    let size = fstatSync(this.#fd).size;
    if (size === 0 && !this.readOnly) {
      const header = Buffer.alloc(HEADER);
      MAGIC.copy(header, 0);
      writeSync(this.#fd, header, 0, HEADER, 0);
      size = HEADER;
    }
    if (size === 0) return;
    const header = Buffer.alloc(HEADER);
    const got = readSync(this.#fd, header, 0, HEADER, 0);
    const magic = header.subarray(0, 8);
    if (got < 8 || !magic.equals(MAGIC)) {
      const text = magic.toString('latin1');
      throw new MerkleIntegrityError(
        this.path,
        0,
        text.startsWith(MAGIC_FAMILY)
          ? `is a tree-heads log in format ${JSON.stringify(text)}; this thunderpac reads ${JSON.stringify(MAGIC.toString())}`
          : 'is not a thunderpac tree-heads log (bad magic)',
      );
    }
    let count = Math.floor(Math.max(0, size - HEADER) / HEAD_RECORD);
    const torn = size - HEADER - count * HEAD_RECORD;
    if (count > 0) {
      const last = this.#read(count - 1);
      if (!last) {
        // A crash mid-append leaves the last record partly written; the one before must hold.
        if (count > 1 && !this.#read(count - 2)) {
          throw new MerkleIntegrityError(
            this.path,
            HEADER + (count - 2) * HEAD_RECORD,
            'the last two tree heads fail their checksums: corruption, not a torn append',
          );
        }
        count--;
      }
    }
    if (!this.readOnly && (torn > 0 || HEADER + count * HEAD_RECORD !== size)) {
      ftruncateSync(this.#fd, HEADER + count * HEAD_RECORD);
    }
    this.#count = count;
    this.#last = count > 0 ? this.#read(count - 1) : undefined;
  }

  /** Record `seq`, or undefined when its checksum fails. */
  #read(seq: number): RecordedTreeHead | undefined {
    const rec = Buffer.alloc(HEAD_RECORD);
    const got = readSync(this.#fd, rec, 0, HEAD_RECORD, HEADER + seq * HEAD_RECORD);
    if (got < HEAD_RECORD || crc32(rec.subarray(0, CHECKED)) !== rec.readUInt32BE(CHECKED)) return undefined;
    const head = decodeTreeHead(rec.subarray(0, TREE_HEAD_BYTES));
    const sigLength = rec.readUInt32BE(152);
    if (!head || (sigLength !== 0 && sigLength !== SIGNATURE_BYTES)) return undefined;
    return {
      ...head,
      signature: Buffer.from(rec.subarray(TREE_HEAD_BYTES, TREE_HEAD_BYTES + sigLength)),
      seq,
    };
  }

  /** Record `seq`; MerkleIntegrityError naming its byte when it does not check. */
  get(seq: number): RecordedTreeHead {
    const head = this.#read(seq);
    if (!head) {
      throw new MerkleIntegrityError(
        this.path,
        HEADER + seq * HEAD_RECORD,
        `tree head #${seq} fails its checksum`,
      );
    }
    return head;
  }

  get count(): number {
    return this.#count;
  }

  /** The latest recorded head. */
  get latest(): RecordedTreeHead | undefined {
    return this.#last;
  }

  /** A reader beside a writer: take in heads appended since. */
  refresh(): void {
    if (!this.readOnly) return;
    if (this.#fd < 0) {
      try {
        this.#fd = openSync(this.path, constants.O_RDONLY);
      } catch {
        return;
      }
    }
    const count = Math.floor(Math.max(0, fstatSync(this.#fd).size - HEADER) / HEAD_RECORD);
    for (let c = count; c > this.#count; c--) {
      const last = this.#read(c - 1);
      if (last) {
        this.#count = c;
        this.#last = last;
        return;
      }
    }
  }

  /** The recorded head of exactly `treeSize` receipts, if one was recorded (binary search). */
  find(treeSize: number): RecordedTreeHead | undefined {
    let lo = 0;
    let hi = this.#count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const head = this.get(mid);
      if (head.treeSize === treeSize) return head;
      if (head.treeSize < treeSize) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  /** The first recorded head whose tree holds more than `leafIndex` leaves (covers that leaf). */
  firstCovering(leafIndex: number): RecordedTreeHead | undefined {
    let lo = 0;
    let hi = this.#count - 1;
    let found: RecordedTreeHead | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const head = this.get(mid);
      if (head.treeSize > leafIndex) {
        found = head;
        hi = mid - 1;
      } else lo = mid + 1;
    }
    return found;
  }

  append(head: TreeHead): RecordedTreeHead {
    if (this.readOnly)
      throw new MerkleIntegrityError(this.path, 0, 'is open read-only: cannot record a tree head');
    if (this.#last && head.treeSize <= this.#last.treeSize) {
      throw new RangeError(
        `tree head of ${head.treeSize} after one of ${this.#last.treeSize}: sizes must grow`,
      );
    }
    const rec = encodeRecord(head);
    writeSync(this.#fd, rec, 0, HEAD_RECORD, HEADER + this.#count * HEAD_RECORD);
    if (this.#durable) fdatasyncSync(this.#fd);
    const recorded = { ...head, seq: this.#count };
    this.#count++;
    this.#last = recorded;
    return recorded;
  }

  /** Every record's checksum, and sizes that grow: what fsck runs. */
  verify(): number {
    let prev = -1;
    for (let seq = 0; seq < this.#count; seq++) {
      const head = this.get(seq);
      if (head.treeSize <= prev) {
        throw new MerkleIntegrityError(
          this.path,
          HEADER + seq * HEAD_RECORD,
          `tree head #${seq} is for ${head.treeSize} receipts, not more than the ${prev} of the head before it`,
        );
      }
      prev = head.treeSize;
    }
    return this.#count;
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}
