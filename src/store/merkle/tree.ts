/**
 * receipts.merkle: the RFC 6962 Merkle tree over the receipt log, persisted so that inclusion
 * and consistency proofs are O(log n) node reads, not a pass over the log.
 *
 * Leaf i is the RFC 6962 leaf hash SHA-256(0x00 || id) of the 32-byte id of the log's record i
 * (the id is the sha256 of the receipt body, so the leaf commits to the whole receipt).
 *
 * Layout (format 1, magic `TPMRKL1\n`):
 *
 *     bytes 0..8         magic
 *     bytes 512..584     head slot A } u64be seq | u64be leaves | u64be logEnd | u64be lastStart
 *     bytes 1024..1096   head slot B } | root (32) | u32be crc32 of the 64 bytes before | 4 zero
 *     bytes 4096..       nodes, 32 bytes each, in post-order: every complete aligned subtree is
 *                        written once, right after its last leaf. Node (level l, index j) — leaves
 *                        j·2^l .. (j+1)·2^l-1 — is at position 2L - popcount(L) + l, L = (j+1)·2^l - 1;
 *                        n leaves take 2n - popcount(n) nodes. Appending is appending to the file.
 *
 * The head says "the first `leaves` leaves' nodes are written, the log position after the last
 * of those receipts is `logEnd` and its record starts at `lastStart`". Nodes are written (and
 * fdatasynced unless sync is 'never') before the head; the two slots alternate, so a torn head
 * write leaves the older one. Nodes past the head are a crash's leftover: cut by a writer.
 *
 * The file is derived from the log and never trusted over it. Open checks: the magic and a head
 * slot (a missing, foreign, older-format or unreadable file is rebuilt from the log); the file
 * holds the nodes the head commits; the last committed leaf is the leaf of the log's record at
 * `lastStart` (that record's body hashes to its id): a tree of another or a rewritten log is
 * rebuilt. Then the records the log holds past `logEnd` are added (caught up). The tree-heads
 * log (tree-heads.ts) is what catches a rewritten log: see ledger.ts.
 *
 * A read-only open writes nothing: what is missing or behind is built in memory.
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
import { hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { LogPosition, ReceiptLog } from '../receipt-log.js';
import { HASH_BYTES, leafHashOfId, type NodeSource, nodeHash, rootHash } from './rfc6962.js';

const MAGIC = Buffer.from('TPMRKL1\n');
const SLOTS = [512, 1024] as const;
const SLOT_BYTES = 72;
const SLOT_CHECKED = 64;
const NODES_AT = 4096;
const U32 = 2 ** 32;
const START: LogPosition = { ordinal: 0, offset: 3 * 4096 };
/** Bytes a log record takes beyond its body: u32 length, u32 crc, 32-byte prev hash (receipt-log.ts). */
const RECORD_OVERHEAD = 8 + 32;

function popcount(n: number): number {
  let c = 0;
  let x = n;
  while (x > 0) {
    c += x % 2;
    x = Math.floor(x / 2);
  }
  return c;
}

/** Nodes held by a tree of n leaves. */
export function nodeCount(n: number): number {
  return 2 * n - popcount(n);
}

/** Post-order position of node (level, index). */
export function nodePosition(level: number, index: number): number {
  const last = (index + 1) * 2 ** level - 1;
  return 2 * last - popcount(last) + level;
}

function writeU64(b: Buffer, v: number, at: number): void {
  b.writeUInt32BE(Math.floor(v / U32), at);
  b.writeUInt32BE(v % U32, at + 4);
}
function readU64(b: Buffer, at: number): number {
  return b.readUInt32BE(at) * U32 + b.readUInt32BE(at + 4);
}

interface Head {
  seq: number;
  leaves: number;
  logEnd: number;
  lastStart: number;
  root: Buffer;
}

export interface ReceiptTreeOptions {
  readonly readOnly?: boolean;
  /** fdatasync nodes before the head (default true). */
  readonly durable?: boolean;
}

export class ReceiptTree implements NodeSource {
  readonly path: string;
  readonly readOnly: boolean;
  readonly #log: ReceiptLog;
  readonly #durable: boolean;
  #fd = -1;
  #headSeq = 0;
  /** Leaves in the tree. */
  #leaves = 0;
  /** Nodes in the file (committed or not: positions below this are read from the file). */
  #fileNodes = 0;
  /** Nodes from #fileNodes on, not written yet. */
  #pending: Buffer = Buffer.allocUnsafe(64 * 1024);
  #pendingNodes = 0;
  /** Roots of the complete subtrees on the right edge, largest first (the frontier). */
  #frontier: Buffer[] = [];
  /** The log position after the last leaf, and where the last leaf's record starts. */
  #logPos: LogPosition = START;
  #lastStart = 0;
  /** Why the tree was rebuilt on open, if it was (for fsck and tests). */
  rebuilt: string | undefined;

  constructor(path: string, log: ReceiptLog, options: ReceiptTreeOptions = {}) {
    this.path = path;
    this.#log = log;
    this.readOnly = options.readOnly ?? false;
    this.#durable = options.durable ?? true;
    try {
      this.#fd = openSync(path, this.readOnly ? constants.O_RDONLY : constants.O_RDWR | constants.O_CREAT);
    } catch (err) {
      if (!(this.readOnly && (err as NodeJS.ErrnoException).code === 'ENOENT')) throw err;
    }
    try {
      const why = this.#load();
      if (why) this.rebuild(why);
      this.catchUp();
    } catch (err) {
      if (this.#fd >= 0) closeSync(this.#fd);
      throw err;
    }
  }

  /** Load the committed tree; returns why it cannot be used (then it is rebuilt), or undefined. */
  #load(): string | undefined {
    if (this.#fd < 0) return 'no tree file';
    const size = fstatSync(this.#fd).size;
    if (size === 0) {
      if (!this.readOnly) this.#writeHeader();
      return this.#log.size === 0 ? undefined : 'empty tree file';
    }
    const header = Buffer.alloc(NODES_AT);
    readSync(this.#fd, header, 0, NODES_AT, 0);
    if (!header.subarray(0, 8).equals(MAGIC))
      return `bad magic ${JSON.stringify(header.subarray(0, 8).toString('latin1'))}`;
    let head: Head | undefined;
    for (const at of SLOTS) {
      const slot = header.subarray(at, at + SLOT_BYTES);
      if (crc32(slot.subarray(0, SLOT_CHECKED)) !== slot.readUInt32BE(SLOT_CHECKED)) continue;
      const h = {
        seq: readU64(slot, 0),
        leaves: readU64(slot, 8),
        logEnd: readU64(slot, 16),
        lastStart: readU64(slot, 24),
        root: Buffer.from(slot.subarray(32, 64)),
      };
      if (!head || h.seq > head.seq) head = h;
    }
    if (!head) return 'both head slots fail their checksums';
    const need = NODES_AT + nodeCount(head.leaves) * HASH_BYTES;
    if (size < need) return `file ends at byte ${size}, before the ${head.leaves} leaves its head commits`;
    if (!this.readOnly && size > need) ftruncateSync(this.#fd, need);
    this.#headSeq = head.seq;
    this.#leaves = head.leaves;
    this.#fileNodes = nodeCount(head.leaves);
    this.#logPos = { ordinal: head.leaves, offset: head.logEnd };
    this.#lastStart = head.lastStart;
    this.#frontier = this.#frontierOf(head.leaves);
    if (!rootHash(this, head.leaves).equals(head.root))
      return 'the nodes do not hash to the root its head records';
    if (head.leaves === 0) return undefined;
    // The last committed leaf must be the log's record at lastStart.
    if (this.readOnly && this.#log.size < head.leaves) this.#log.refresh();
    const want = this.node(0, head.leaves - 1);
    let checked: string | undefined = 'the log holds fewer receipts than the tree';
    let first = true;
    try {
      this.#log.scanBodies({ ordinal: head.leaves - 1, offset: head.lastStart }, (id, body) => {
        if (!first) throw STOP;
        first = false;
        if (hash('sha256', body, 'hex') !== id) checked = `the log has no record at byte ${head.lastStart}`;
        else if (!leafHashOfId(id).equals(want))
          checked = `leaf ${head.leaves - 1} is not the log's receipt ${id}`;
        else checked = undefined;
      });
    } catch (err) {
      if (err !== STOP)
        checked = `the log has no record at byte ${head.lastStart} (${(err as Error).message})`;
    }
    return checked === undefined ? undefined : `${checked}: the tree is not this log's`;
  }

  #frontierOf(n: number): Buffer[] {
    const out: Buffer[] = [];
    let lo = 0;
    for (let level = 52; level >= 0; level--) {
      const span = 2 ** level;
      if (lo + span <= n) {
        out.push(this.node(level, lo / span));
        lo += span;
      }
    }
    return out;
  }

  /** The magic and two empty head slots (a new or rebuilt file). */
  #writeHeader(): void {
    const header = Buffer.alloc(NODES_AT);
    MAGIC.copy(header, 0);
    writeSync(this.#fd, header, 0, NODES_AT, 0);
  }

  /** Forget the tree and build it again from the whole log. */
  rebuild(why: string): void {
    this.rebuilt = why;
    this.#leaves = 0;
    this.#fileNodes = 0;
    this.#pendingNodes = 0;
    this.#frontier = [];
    this.#logPos = START;
    this.#lastStart = 0;
    if (!this.readOnly && this.#fd >= 0) {
      ftruncateSync(this.#fd, 0);
      this.#writeHeader();
      this.#headSeq = 0;
    }
    this.catchUp();
  }

  get size(): number {
    return this.#leaves;
  }

  /**
   * Add the records the log holds past the tree's end (from its last known position). A reader
   * refreshes the log first. Returns how many leaves were added.
   */
  catchUp(): number {
    if (this.readOnly) this.#log.refresh();
    const before = this.#leaves;
    let start = this.#logPos.offset;
    const end = this.#log.scanBodies(this.#logPos, (id, body) => {
      this.#lastStart = start;
      start += RECORD_OVERHEAD + body.byteLength;
      this.#add(leafHashOfId(id));
    });
    this.#logPos = end;
    return this.#leaves - before;
  }

  /**
   * The append hook (Store.appendReceipt, after the log took the receipt): one leaf hash and the
   * nodes it completes. `bodyBytes` is the length of the canonical body the log stores.
   */
  append(id: string, bodyBytes: number): void {
    if (this.#log.size !== this.#leaves + 1) {
      this.catchUp(); // someone appended to the log directly: take what it holds, in its order
      return;
    }
    this.#lastStart = this.#logPos.offset;
    this.#logPos = {
      ordinal: this.#logPos.ordinal + 1,
      offset: this.#logPos.offset + RECORD_OVERHEAD + bodyBytes,
    };
    this.#add(leafHashOfId(id));
  }

  #push(node: Buffer): void {
    const at = this.#pendingNodes * HASH_BYTES;
    if (at + HASH_BYTES > this.#pending.length) {
      const grown = Buffer.allocUnsafe(this.#pending.length * 2);
      this.#pending.copy(grown, 0, 0, at);
      this.#pending = grown;
    }
    node.copy(this.#pending, at);
    this.#pendingNodes++;
  }

  #add(leaf: Buffer): void {
    this.#push(leaf);
    let h = leaf;
    // Leaf i completes one subtree per trailing 1 bit of i.
    let i = this.#leaves;
    while (i % 2 === 1) {
      h = nodeHash(this.#frontier.pop()!, h);
      this.#push(h);
      i = (i - 1) / 2;
    }
    this.#frontier.push(h);
    this.#leaves++;
  }

  node(level: number, index: number): Buffer {
    const pos = nodePosition(level, index);
    if (pos >= this.#fileNodes) {
      const at = (pos - this.#fileNodes) * HASH_BYTES;
      if (pos - this.#fileNodes >= this.#pendingNodes) {
        throw new RangeError(`node (${level}, ${index}) is not in a tree of ${this.#leaves} leaves`);
      }
      return Buffer.from(this.#pending.subarray(at, at + HASH_BYTES));
    }
    const out = Buffer.allocUnsafe(HASH_BYTES);
    readSync(this.#fd, out, 0, HASH_BYTES, NODES_AT + pos * HASH_BYTES);
    return out;
  }

  /** The root of the first `size` leaves (the whole tree by default). */
  root(size = this.#leaves): Buffer {
    if (size === this.#leaves && this.#frontier.length > 0) {
      let h = this.#frontier[this.#frontier.length - 1]!;
      for (let i = this.#frontier.length - 2; i >= 0; i--) h = nodeHash(this.#frontier[i]!, h);
      return h;
    }
    return rootHash(this, size);
  }

  /** The leaf index of a receipt id, or undefined: searches the leaves, newest pending first. */
  indexOf(id: string): number | undefined {
    const leaf = leafHashOfId(id);
    const pending = this.#pending.subarray(0, this.#pendingNodes * HASH_BYTES);
    const hit = this.#search(pending, leaf, this.#fileNodes);
    if (hit !== undefined) return hit;
    if (this.#fd < 0 || this.#fileNodes === 0) return undefined;
    const chunkNodes = 128 * 1024;
    const buf = Buffer.allocUnsafe(chunkNodes * HASH_BYTES);
    for (let first = 0; first < this.#fileNodes; first += chunkNodes) {
      const n = Math.min(chunkNodes, this.#fileNodes - first);
      readSync(this.#fd, buf, 0, n * HASH_BYTES, NODES_AT + first * HASH_BYTES);
      const found = this.#search(buf.subarray(0, n * HASH_BYTES), leaf, first);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** A leaf equal to `leaf` among nodes [first, first + buf/32): its leaf index. */
  #search(buf: Buffer, leaf: Buffer, first: number): number | undefined {
    let from = 0;
    for (;;) {
      const at = buf.indexOf(leaf, from);
      if (at < 0) return undefined;
      from = at + 1;
      if (at % HASH_BYTES !== 0) continue;
      const pos = first + at / HASH_BYTES;
      // Leaf i sits at 2i - popcount(i): i is within 27 of pos/2 (popcount <= 53).
      for (let i = Math.floor(pos / 2); i <= Math.floor(pos / 2) + 27; i++) {
        if (2 * i - popcount(i) === pos && i < this.#leaves) return i;
      }
    }
  }

  /** Write the pending nodes, then the head committing them (a writer; no-op when nothing is new). */
  flush(): void {
    if (this.readOnly || this.#fd < 0) return;
    if (this.#pendingNodes === 0 && this.#headSeq > 0) return;
    if (this.#pendingNodes > 0) {
      writeSync(
        this.#fd,
        this.#pending,
        0,
        this.#pendingNodes * HASH_BYTES,
        NODES_AT + this.#fileNodes * HASH_BYTES,
      );
      if (this.#durable) fdatasyncSync(this.#fd);
      this.#fileNodes += this.#pendingNodes;
      this.#pendingNodes = 0;
      if (this.#pending.length > 1 << 20) this.#pending = Buffer.allocUnsafe(64 * 1024);
    }
    const seq = this.#headSeq + 1;
    const slot = Buffer.alloc(SLOT_BYTES);
    writeU64(slot, seq, 0);
    writeU64(slot, this.#leaves, 8);
    writeU64(slot, this.#logPos.offset, 16);
    writeU64(slot, this.#lastStart, 24);
    this.root().copy(slot, 32);
    slot.writeUInt32BE(crc32(slot.subarray(0, SLOT_CHECKED)), SLOT_CHECKED);
    writeSync(this.#fd, slot, 0, SLOT_BYTES, SLOTS[seq % 2]!);
    this.#headSeq = seq;
  }

  close(): void {
    this.flush();
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}

const STOP = Symbol('stop');
