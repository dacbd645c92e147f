/**
 * Ed25519 signing of tree heads (node:crypto, no dependency).
 *
 * A store with a signing key signs a tree head — (tree size, root hash, time, key id) of the
 * Merkle tree over its receipt log (merkle/tree.ts) — at each log sync and on demand. What signs a
 * receipt is such a head plus the receipt's inclusion proof (the Certificate Transparency /
 * Rekor model): one signature per sync covers every receipt appended before it, where a
 * signature per receipt would cost an Ed25519 sign (~25 µs here, see RESULTS.md) on every
 * execution.
 *
 * The key is an Ed25519 private key in a PKCS#8 PEM file (`openssl genpkey -algorithm ed25519`).
 * Its public key is named two ways:
 *   - key id: SHA-256 of the public key's SubjectPublicKeyInfo DER (as CT names a log), 32 bytes;
 *   - signer: `ed25519:<64 hex digits of the raw 32-byte public key>` — what a receipt sealed
 *     under the key carries in its optional `signer` body field.
 *
 * Signed bytes of a tree head (88 bytes, all integers big-endian):
 *
 *     0..8    "TPTHEAD1"       context and version: a signature over anything else never verifies
 *     8..16   u64 tree size
 *     16..48  root hash (RFC 6962 MTH of the first `tree size` leaves)
 *     48..56  u64 time, ms since the Unix epoch
 *     56..88  key id (32 zero bytes in an unsigned head)
 */

import { createPrivateKey, createPublicKey, hash, type KeyObject, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ProofError, SigningKeyError } from './merkle/errors.js';

export const TREE_HEAD_CONTEXT = Buffer.from('TPTHEAD1');
export const TREE_HEAD_BYTES = 88;
export const SIGNATURE_BYTES = 64;
const U32 = 2 ** 32;

export interface TreeHead {
  readonly treeSize: number;
  readonly rootHash: Buffer;
  /** ms since the Unix epoch. */
  readonly timestamp: number;
  /** SHA-256 of the signer's SPKI DER; 32 zero bytes when unsigned. */
  readonly keyId: Buffer;
  /** Ed25519 signature over `encodeTreeHead`; empty when unsigned. */
  readonly signature: Buffer;
}

export function encodeTreeHead(h: Omit<TreeHead, 'signature'>): Buffer {
  const out = Buffer.alloc(TREE_HEAD_BYTES);
  TREE_HEAD_CONTEXT.copy(out, 0);
  out.writeUInt32BE(Math.floor(h.treeSize / U32), 8);
  out.writeUInt32BE(h.treeSize % U32, 12);
  h.rootHash.copy(out, 16);
  out.writeUInt32BE(Math.floor(h.timestamp / U32), 48);
  out.writeUInt32BE(h.timestamp % U32, 52);
  h.keyId.copy(out, 56);
  return out;
}

export function decodeTreeHead(bytes: Buffer): Omit<TreeHead, 'signature'> | undefined {
  if (bytes.length !== TREE_HEAD_BYTES || !bytes.subarray(0, 8).equals(TREE_HEAD_CONTEXT)) return undefined;
  return {
    treeSize: bytes.readUInt32BE(8) * U32 + bytes.readUInt32BE(12),
    rootHash: Buffer.from(bytes.subarray(16, 48)),
    timestamp: bytes.readUInt32BE(48) * U32 + bytes.readUInt32BE(52),
    keyId: Buffer.from(bytes.subarray(56, 88)),
  };
}

export const UNSIGNED_KEY_ID = Buffer.alloc(32);

/** The raw 32-byte Ed25519 public key of a key object. */
export function rawPublicKey(key: KeyObject): Buffer {
  const spki = key.export({ format: 'der', type: 'spki' });
  return spki.subarray(spki.length - 32);
}

export function keyIdOf(publicKey: KeyObject): Buffer {
  return hash('sha256', publicKey.export({ format: 'der', type: 'spki' }), 'buffer') as unknown as Buffer;
}

export function signerName(publicKey: KeyObject): string {
  return `ed25519:${rawPublicKey(publicKey).toString('hex')}`;
}

/** A public key from its `signer` name, PEM (SPKI) text, or raw 32 bytes as hex or base64. */
export function publicKeyFrom(text: string, field = 'publicKey'): KeyObject {
  const t = text.trim();
  try {
    if (t.startsWith('-----BEGIN')) {
      const key = createPublicKey(t);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`is a ${key.asymmetricKeyType} key`);
      return key;
    }
    const raw = t.startsWith('ed25519:')
      ? Buffer.from(t.slice(8), 'hex')
      : /^[0-9a-f]{64}$/i.test(t)
        ? Buffer.from(t, 'hex')
        : Buffer.from(t, 'base64');
    if (raw.length !== 32) throw new Error(`holds ${raw.length} bytes, an Ed25519 public key has 32`);
    return createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
      format: 'jwk',
    });
  } catch (err) {
    throw new ProofError(field, `is not an Ed25519 public key: ${(err as Error).message}`);
  }
}

export class TreeHeadSigner {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly keyId: Buffer;
  readonly signer: string;
  /** Where the key came from, for messages. */
  readonly source: string;

  constructor(privateKey: KeyObject, source = 'signing key') {
    if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
      throw new SigningKeyError(
        source,
        `is a ${privateKey.asymmetricKeyType ?? 'unknown'} ${privateKey.type} key; tree heads are signed with an Ed25519 private key`,
      );
    }
    this.privateKey = privateKey;
    this.publicKey = createPublicKey(privateKey);
    this.keyId = keyIdOf(this.publicKey);
    this.signer = signerName(this.publicKey);
    this.source = source;
  }

  /** Load an Ed25519 private key from a PKCS#8 PEM file. */
  static fromFile(path: string): TreeHeadSigner {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new SigningKeyError(
        path,
        `cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: text, format: 'pem' });
    } catch (err) {
      throw new SigningKeyError(path, `is not a PKCS#8 PEM private key: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return new TreeHeadSigner(key, path);
  }

  sign(treeSize: number, rootHash: Buffer, timestamp: number): TreeHead {
    const head = { treeSize, rootHash, timestamp, keyId: this.keyId };
    return { ...head, signature: sign(null, encodeTreeHead(head), this.privateKey) };
  }
}

/** An unsigned tree head (a store without a key still records what its tree was). */
export function unsignedTreeHead(treeSize: number, rootHash: Buffer, timestamp: number): TreeHead {
  return { treeSize, rootHash, timestamp, keyId: UNSIGNED_KEY_ID, signature: Buffer.alloc(0) };
}

/**
 * Check a tree head's signature with `publicKey`; ProofError naming the field that fails
 * (`field` is the head's path in the document, e.g. `treeHead`).
 */
export function verifyTreeHead(head: TreeHead, publicKey: KeyObject, field = 'treeHead'): void {
  if (head.signature.length === 0) {
    throw new ProofError(
      `${field}.signature`,
      'is absent: the tree head is unsigned (the store had no signing key)',
    );
  }
  const keyId = keyIdOf(publicKey);
  if (!head.keyId.equals(keyId)) {
    throw new ProofError(
      `${field}.keyId`,
      `is ${head.keyId.toString('hex')}, but the public key checked against has key id ${keyId.toString('hex')}: signed by another key`,
    );
  }
  if (head.signature.length !== SIGNATURE_BYTES) {
    throw new ProofError(
      `${field}.signature`,
      `holds ${head.signature.length} bytes; an Ed25519 signature has 64`,
    );
  }
  if (!verify(null, encodeTreeHead(head), publicKey, head.signature)) {
    throw new ProofError(
      `${field}.signature`,
      'does not verify over (treeSize, rootHash, timestamp, keyId): the head was altered or signed by another key',
    );
  }
}
