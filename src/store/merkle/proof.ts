/**
 * Proof documents: what `thunderpac receipt prove` prints and `receipt verify-proof` checks with
 * no access to the store (JSON, hashes in lowercase hex, signatures in base64).
 *
 *   inclusion:   { format: "thunderpac.receipt-proof/1", receipt, leafIndex, treeSize,
 *                  inclusion: [hex, ...], treeHead }
 *   consistency: { format: "thunderpac.consistency-proof/1", oldTreeHead, newTreeHead,
 *                  consistency: [hex, ...] }
 *   treeHead:    { treeSize, rootHash, timestamp (ISO), timestampMs, keyId, signature|null,
 *                  publicKey ("ed25519:<hex>") | null }
 *
 * A receipt is signed by the head: the receipt hashes to its id, its leaf SHA-256(0x00||id) with
 * the audit path leads to the head's root, and the head's Ed25519 signature verifies under the
 * expected public key (`--public-key`; without it the key the document carries, reported as not
 * pinned). Every failure is a ProofError naming the field.
 */

import type { KeyObject } from 'node:crypto';
import { canonicalDigest } from '../../runtime/canonical.js';
import type { Receipt } from '../../runtime/receipt.js';
import { keyIdOf, publicKeyFrom, type TreeHead, UNSIGNED_KEY_ID, verifyTreeHead } from '../signing.js';
import { ProofError } from './errors.js';
import { HASH_BYTES, leafHashOfId, verifyConsistency, verifyInclusion } from './rfc6962.js';

export const INCLUSION_FORMAT = 'thunderpac.receipt-proof/1';
export const CONSISTENCY_FORMAT = 'thunderpac.consistency-proof/1';

export interface TreeHeadJson {
  readonly treeSize: number;
  readonly rootHash: string;
  readonly timestamp: string;
  readonly timestampMs: number;
  readonly keyId: string | null;
  readonly signature: string | null;
  readonly publicKey: string | null;
}

export interface InclusionProofDocument {
  readonly format: typeof INCLUSION_FORMAT;
  readonly receipt: Receipt;
  readonly leafIndex: number;
  readonly treeSize: number;
  readonly inclusion: readonly string[];
  readonly treeHead: TreeHeadJson;
}

export interface ConsistencyProofDocument {
  readonly format: typeof CONSISTENCY_FORMAT;
  readonly oldTreeHead: TreeHeadJson;
  readonly newTreeHead: TreeHeadJson;
  readonly consistency: readonly string[];
}

export type ProofDocument = InclusionProofDocument | ConsistencyProofDocument;

export function treeHeadJson(head: TreeHead, publicKey: string | null): TreeHeadJson {
  const signed = head.signature.length > 0;
  return {
    treeSize: head.treeSize,
    rootHash: head.rootHash.toString('hex'),
    timestamp: new Date(head.timestamp).toISOString(),
    timestampMs: head.timestamp,
    keyId: signed ? head.keyId.toString('hex') : null,
    signature: signed ? head.signature.toString('base64') : null,
    publicKey: signed ? publicKey : null,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hashField(v: unknown, field: string): Buffer {
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) {
    throw new ProofError(
      field,
      `is ${JSON.stringify(v)?.slice(0, 80)}: expected 64 lowercase hex digits (a SHA-256 hash)`,
    );
  }
  return Buffer.from(v, 'hex');
}

function sizeField(v: unknown, field: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new ProofError(field, `is ${JSON.stringify(v)}: expected an integer >= ${min}`);
  }
  return v;
}

function hashList(v: unknown, field: string): Buffer[] {
  if (!Array.isArray(v)) throw new ProofError(field, 'is not an array of hashes');
  return v.map((h, i) => hashField(h, `${field}[${i}]`));
}

function parseHead(v: unknown, field: string): { head: TreeHead; publicKey: string | null } {
  if (!isObject(v)) throw new ProofError(field, 'is not an object');
  const treeSize = sizeField(v.treeSize, `${field}.treeSize`, 0);
  const rootHash = hashField(v.rootHash, `${field}.rootHash`);
  const timestamp = sizeField(v.timestampMs, `${field}.timestampMs`, 0);
  let keyId: Buffer = UNSIGNED_KEY_ID;
  let signature: Buffer = Buffer.alloc(0);
  if (v.signature !== null && v.signature !== undefined) {
    if (typeof v.signature !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(v.signature)) {
      throw new ProofError(`${field}.signature`, 'is not base64');
    }
    signature = Buffer.from(v.signature, 'base64');
    keyId = hashField(v.keyId, `${field}.keyId`);
  }
  const publicKey = typeof v.publicKey === 'string' ? v.publicKey : null;
  return { head: { treeSize, rootHash, timestamp, keyId, signature }, publicKey };
}

export interface VerifyOptions {
  /** The key the heads must be signed with (pinned). */
  readonly publicKey?: KeyObject;
  /** Accept heads without a signature (a store with no key): only the hashes are checked. */
  readonly allowUnsigned?: boolean;
}

export interface VerifyReport {
  readonly kind: 'inclusion' | 'consistency';
  readonly ok: true;
  readonly treeSize: number;
  readonly receiptId?: string;
  readonly leafIndex?: number;
  readonly oldTreeSize?: number;
  /** 'pinned' (checked against --public-key), 'embedded' (the document's own key), 'unsigned'. */
  readonly signature: 'pinned' | 'embedded' | 'unsigned';
  readonly keyId: string | null;
}

function checkHead(
  head: TreeHead,
  embedded: string | null,
  field: string,
  options: VerifyOptions,
): 'pinned' | 'embedded' | 'unsigned' {
  if (head.signature.length === 0) {
    if (options.allowUnsigned) return 'unsigned';
    throw new ProofError(
      `${field}.signature`,
      'is absent: the tree head is unsigned (the store has no signing key); pass --allow-unsigned to check the hashes alone',
    );
  }
  if (options.publicKey) {
    verifyTreeHead(head, options.publicKey, field);
    return 'pinned';
  }
  if (embedded === null) {
    throw new ProofError(`${field}.publicKey`, "is absent: pass the signer's key with --public-key");
  }
  verifyTreeHead(head, publicKeyFrom(embedded, `${field}.publicKey`), field);
  return 'embedded';
}

/** Check a proof document (parsed JSON); returns what holds, throws ProofError on the first failure. */
export function verifyProofDocument(doc: unknown, options: VerifyOptions = {}): VerifyReport {
  if (!isObject(doc)) throw new ProofError('(document)', 'is not a JSON object');
  if (doc.format === INCLUSION_FORMAT) {
    const receipt = doc.receipt;
    if (!isObject(receipt)) throw new ProofError('receipt', 'is not an object');
    const id = hashField(receipt.id, 'receipt.id').toString('hex');
    const { id: _, ...body } = receipt;
    let actual: string;
    try {
      actual = canonicalDigest(body);
    } catch (err) {
      throw new ProofError('receipt', `cannot be encoded canonically: ${(err as Error).message}`);
    }
    if (actual !== id) {
      throw new ProofError(
        'receipt.id',
        `is ${id}, but the receipt body hashes to ${actual}: the receipt was altered`,
      );
    }
    const leafIndex = sizeField(doc.leafIndex, 'leafIndex', 0);
    const treeSize = sizeField(doc.treeSize, 'treeSize', 1);
    const path = hashList(doc.inclusion, 'inclusion');
    const { head, publicKey } = parseHead(doc.treeHead, 'treeHead');
    if (head.treeSize !== treeSize) {
      throw new ProofError(
        'treeSize',
        `is ${treeSize}, but treeHead.treeSize is ${head.treeSize}: the proof is for another tree`,
      );
    }
    verifyInclusion(leafIndex, treeSize, leafHashOfId(id), path, head.rootHash);
    const signature = checkHead(head, publicKey, 'treeHead', options);
    // A receipt sealed under a key names it: the head that signs it must be that key's.
    if (receipt.signer !== undefined && signature !== 'unsigned') {
      if (typeof receipt.signer !== 'string') throw new ProofError('receipt.signer', 'is not a string');
      const named = keyIdOf(publicKeyFrom(receipt.signer, 'receipt.signer'));
      if (!named.equals(head.keyId)) {
        throw new ProofError(
          'receipt.signer',
          `names key ${named.toString('hex')}, but the tree head is signed by key ${head.keyId.toString('hex')}`,
        );
      }
    }
    return {
      kind: 'inclusion',
      ok: true,
      treeSize,
      receiptId: id,
      leafIndex,
      signature,
      keyId: signature === 'unsigned' ? null : head.keyId.toString('hex'),
    };
  }
  if (doc.format === CONSISTENCY_FORMAT) {
    const old = parseHead(doc.oldTreeHead, 'oldTreeHead');
    const neu = parseHead(doc.newTreeHead, 'newTreeHead');
    const path = hashList(doc.consistency, 'consistency');
    verifyConsistency(old.head.treeSize, neu.head.treeSize, old.head.rootHash, neu.head.rootHash, path);
    const s1 = checkHead(old.head, old.publicKey, 'oldTreeHead', options);
    const s2 = checkHead(neu.head, neu.publicKey, 'newTreeHead', options);
    const signature =
      s1 === 'unsigned' || s2 === 'unsigned'
        ? 'unsigned'
        : s1 === 'pinned' && s2 === 'pinned'
          ? 'pinned'
          : 'embedded';
    return {
      kind: 'consistency',
      ok: true,
      treeSize: neu.head.treeSize,
      oldTreeSize: old.head.treeSize,
      signature,
      keyId: neu.head.signature.length > 0 ? neu.head.keyId.toString('hex') : null,
    };
  }
  throw new ProofError(
    'format',
    `is ${JSON.stringify(doc.format)}: expected ${JSON.stringify(INCLUSION_FORMAT)} or ${JSON.stringify(CONSISTENCY_FORMAT)}`,
  );
}

export { HASH_BYTES };
