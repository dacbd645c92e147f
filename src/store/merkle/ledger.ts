/**
 * The receipt ledger: the Merkle tree over the receipt log (tree.ts), the tree heads made of it
 * (tree-heads.ts, signed when a key is configured: signing.ts), and the proofs built from both
 * (proof.ts). The Store owns one and feeds it each receipt it appends.
 *
 *   <dir>/receipts.merkle        the tree (derived from the log; rebuilt when missing or wrong)
 *   <dir>/tree-heads.log         the heads (not derived: they are what binds the log)
 *   <dir>/signing-keys/<keyId>.pub  the SPKI PEM of each key that signed a head here
 *
 * When heads are made: every `headIntervalMs` (default 100 ms, like the log's sync) after an
 * append, on close, and on demand (`sync()`; `prove` of a receipt no head covers yet). Making a
 * head flushes the receipt log first (fdatasync + log head), then the tree, then records the
 * head: a head never commits a receipt that a crash can lose.
 *
 * What open checks: after the tree is loaded and caught up from the log, the latest head must
 * hold for the log: its size at most the receipts the log holds and its root the root of the
 * log's first `size` receipts (if not, the tree is first rebuilt from the log, in case it was the
 * tree that was wrong). A head the log no longer matches means the log was cut or rewritten
 * after the head was made: LogRewrittenError, naming the head and both roots. `verify()` (fsck)
 * checks every head that way.
 */

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NotFoundError } from '../../runtime/errors.js';
import type { ReceiptLog, SyncPolicy } from '../receipt-log.js';
import {
  publicKeyFrom,
  signerName,
  type TreeHead,
  type TreeHeadSigner,
  unsignedTreeHead,
} from '../signing.js';
import { LogRewrittenError, ProofError } from './errors.js';
import {
  CONSISTENCY_FORMAT,
  type ConsistencyProofDocument,
  INCLUSION_FORMAT,
  type InclusionProofDocument,
  treeHeadJson,
} from './proof.js';
import {
  consistencyProof,
  inclusionProof,
  leafHashOfId,
  verifyConsistency,
  verifyInclusion,
} from './rfc6962.js';
import { type RecordedTreeHead, TreeHeadLog } from './tree-heads.js';
import { ReceiptTree } from './tree.js';

export interface LedgerOptions {
  readonly readOnly?: boolean;
  readonly sync?: SyncPolicy;
  readonly signer?: TreeHeadSigner;
  /** How long after an append a head is made (default 100 ms). */
  readonly headIntervalMs?: number;
}

export class ReceiptLedger {
  readonly dir: string;
  readonly tree: ReceiptTree;
  readonly heads: TreeHeadLog;
  readonly signer: TreeHeadSigner | undefined;
  readonly #log: ReceiptLog;
  readonly #readOnly: boolean;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(dir: string, log: ReceiptLog, options: LedgerOptions = {}) {
    this.dir = dir;
    this.#log = log;
    this.#readOnly = options.readOnly ?? false;
    this.#intervalMs = options.headIntervalMs ?? 100;
    this.signer = options.signer;
    const durable = options.sync !== 'never';
    // Heads before the tree: a reader beside a writer then sees a log at least as long as them.
    this.heads = new TreeHeadLog(join(dir, 'tree-heads.log'), { readOnly: this.#readOnly, durable });
    try {
      this.tree = new ReceiptTree(join(dir, 'receipts.merkle'), log, { readOnly: this.#readOnly, durable });
    } catch (err) {
      this.heads.close();
      throw err;
    }
    try {
      if (this.heads.latest) this.#checkHead(this.heads.latest, true);
      if (this.signer && !this.#readOnly) this.#recordKey();
    } catch (err) {
      this.tree.close();
      this.heads.close();
      throw err;
    }
  }

  #recordKey(): void {
    const signer = this.signer!;
    const keys = join(this.dir, 'signing-keys');
    const file = join(keys, `${signer.keyId.toString('hex')}.pub`);
    if (existsSync(file)) return;
    mkdirSync(keys, { recursive: true });
    writeFileSync(file, signer.publicKey.export({ format: 'pem', type: 'spki' }));
  }

  /** The public key (signer name) that made heads with `keyId`, if this store recorded it. */
  publicKeyOf(keyId: Buffer): string | null {
    if (this.signer?.keyId.equals(keyId)) return this.signer.signer;
    try {
      return signerName(
        publicKeyFrom(readFileSync(join(this.dir, 'signing-keys', `${keyId.toString('hex')}.pub`), 'utf8')),
      );
    } catch {
      return null;
    }
  }

  /** The log still holds the tree `head` committed to; else LogRewrittenError. */
  #checkHead(head: RecordedTreeHead, mayRebuild: boolean): void {
    const where = `tree head #${head.seq} (${this.heads.path}, ${new Date(head.timestamp).toISOString()})`;
    if (head.treeSize > this.tree.size) {
      throw new LogRewrittenError(
        `${this.#log.path}: holds ${this.tree.size} receipts, but ${where} committed ${head.treeSize}: receipts were removed (the log was cut or rewritten after the head was made)`,
        head.treeSize,
      );
    }
    const root = this.tree.root(head.treeSize);
    if (root.equals(head.rootHash)) return;
    if (mayRebuild && !this.tree.rebuilt) {
      this.tree.rebuild(`its root at ${head.treeSize} differs from ${where}`);
      this.#checkHead(head, false);
      return;
    }
    throw new LogRewrittenError(
      `${this.#log.path}: its first ${head.treeSize} receipts hash to root ${root.toString('hex')}, but ${where} committed root ${head.rootHash.toString('hex')}: the log was rewritten after the head was made`,
      head.treeSize,
      head.rootHash.toString('hex'),
      root.toString('hex'),
    );
  }

  /** The append hook: after the log took the receipt whose canonical body is `bodyBytes` long. */
  append(id: string, bodyBytes: number): void {
    this.tree.append(id, bodyBytes);
    if (!this.#timer && !this.#readOnly) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (!this.#closed) this.sync();
      }, this.#intervalMs);
      this.#timer.unref();
    }
  }

  /**
   * Make a head of the whole tree now (a writer): flush the log, the tree, then sign and record
   * the head if the tree grew. Returns the latest head. A reader takes in what the writer added.
   */
  sync(): RecordedTreeHead | undefined {
    if (this.#readOnly) {
      this.heads.refresh();
      this.tree.catchUp();
      return this.heads.latest;
    }
    this.#log.flush();
    this.tree.catchUp();
    this.tree.flush();
    const latest = this.heads.latest;
    if (latest && latest.treeSize >= this.tree.size) return latest;
    if (this.tree.size === 0) return latest;
    const now = Date.now();
    const head: TreeHead = this.signer
      ? this.signer.sign(this.tree.size, this.tree.root(), now)
      : unsignedTreeHead(this.tree.size, this.tree.root(), now);
    return this.heads.append(head);
  }

  /** Receipt + inclusion proof + the first recorded head that covers it. */
  prove(id: string, receipt: InclusionProofDocument['receipt']): InclusionProofDocument {
    if (!this.#readOnly) this.sync();
    else {
      this.heads.refresh();
      this.tree.catchUp();
    }
    let index = this.tree.indexOf(id);
    if (index === undefined) {
      // The caller found the receipt in the log: a tree without its leaf was damaged on disk.
      this.tree.rebuild(`receipt ${id} is in the log but not among the tree's leaves`);
      index = this.tree.indexOf(id);
      if (index === undefined) throw new NotFoundError('receipt (in the Merkle tree)', id);
    }
    const head = this.heads.latest;
    if (!head || head.treeSize <= index) {
      throw new ProofError(
        'treeHead',
        `is missing: receipt ${id} is leaf ${index}, and the latest tree head covers ${head?.treeSize ?? 0} receipts; the writer makes one at its next sync (retry)`,
      );
    }
    this.#checkHead(head, false);
    let path = inclusionProof(this.tree, index, head.treeSize);
    try {
      verifyInclusion(index, head.treeSize, leafHashOfId(id), path, head.rootHash);
    } catch {
      // Open checks the tree's edge, not every inner node: a damaged one shows here. Rebuild.
      this.tree.rebuild(`the inclusion proof of leaf ${index} did not verify against tree head #${head.seq}`);
      path = inclusionProof(this.tree, index, head.treeSize);
      verifyInclusion(index, head.treeSize, leafHashOfId(id), path, head.rootHash);
    }
    return {
      format: INCLUSION_FORMAT,
      receipt,
      leafIndex: index,
      treeSize: head.treeSize,
      inclusion: path.map((h) => h.toString('hex')),
      treeHead: treeHeadJson(head, this.publicKeyOf(head.keyId)),
    };
  }

  /** Consistency proof between two recorded heads (`to` defaults to the latest). */
  proveConsistency(from: number, to?: number): ConsistencyProofDocument {
    this.sync();
    const latest = this.heads.latest;
    const newHead = to === undefined ? latest : this.heads.find(to);
    const oldHead = this.heads.find(from);
    for (const [size, head, field] of [
      [from, oldHead, 'oldTreeHead'],
      [to ?? latest?.treeSize ?? 0, newHead, 'newTreeHead'],
    ] as const) {
      if (!head) {
        throw new ProofError(
          field,
          `is missing: no tree head of ${size} receipts was recorded (${this.heads.count} heads, latest of ${latest?.treeSize ?? 0})`,
        );
      }
    }
    if (oldHead!.treeSize > newHead!.treeSize) {
      throw new ProofError(
        'oldTreeHead.treeSize',
        `is ${oldHead!.treeSize}, more than the new head's ${newHead!.treeSize}`,
      );
    }
    this.#checkHead(oldHead!, false);
    this.#checkHead(newHead!, false);
    const o = oldHead!;
    const n = newHead!;
    let proof = consistencyProof(this.tree, o.treeSize, n.treeSize);
    try {
      verifyConsistency(o.treeSize, n.treeSize, o.rootHash, n.rootHash, proof);
    } catch {
      this.tree.rebuild(
        `the consistency proof ${o.treeSize} -> ${n.treeSize} did not verify against its heads`,
      );
      proof = consistencyProof(this.tree, o.treeSize, n.treeSize);
      verifyConsistency(o.treeSize, n.treeSize, o.rootHash, n.rootHash, proof);
    }
    return {
      format: CONSISTENCY_FORMAT,
      oldTreeHead: treeHeadJson(oldHead!, this.publicKeyOf(oldHead!.keyId)),
      newTreeHead: treeHeadJson(newHead!, this.publicKeyOf(newHead!.keyId)),
      consistency: proof.map((h) => h.toString('hex')),
    };
  }

  /** fsck: every head's checksum, growing sizes, and its root against the log. Returns the count. */
  verify(): number {
    this.heads.verify();
    for (let seq = 0; seq < this.heads.count; seq++) this.#checkHead(this.heads.get(seq), false);
    return this.heads.count;
  }

  close(): void {
    if (this.#closed) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      if (!this.#readOnly) this.sync();
    } finally {
      this.#closed = true;
      this.tree.close();
      this.heads.close();
    }
  }
}
