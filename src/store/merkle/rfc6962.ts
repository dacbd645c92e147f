/**
 * RFC 6962 (Certificate Transparency) Merkle tree hashing, proofs and their verification.
 *
 *   leaf hash  = SHA-256(0x00 || leaf)          — a thunderpac leaf is the 32-byte receipt id
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH({})    = SHA-256()  (the empty tree)
 *   MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])) with k the largest power of two < n
 *
 * Proof generation works against a `NodeSource`: anything that can give the hash of a complete,
 * aligned subtree (level `l`, index `i`: leaves i·2^l .. (i+1)·2^l - 1). The hash of any range the
 * RFC recursion asks for is then at most one such node per level (the incomplete right edge is
 * rebuilt from the complete subtrees it is made of), so a proof costs O(log n) node reads.
 *
 * Verification (RFC 9162 §2.1.3.2 and §2.1.4.2) needs nothing but the hashes: it is what a
 * client checks with no access to the store. A proof that does not verify is reported as a
 * ProofError naming the field and, where one can be named, the node.
 */

import { hash } from 'node:crypto';
import { ProofError } from './errors.js';

export const HASH_BYTES = 32;
const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

function sha256(bytes: Uint8Array): Buffer {
  return hash('sha256', bytes, 'buffer') as unknown as Buffer;
}

const leafInput = Buffer.alloc(1 + HASH_BYTES);
leafInput[0] = LEAF_PREFIX;
const nodeInput = Buffer.alloc(1 + 2 * HASH_BYTES);
nodeInput[0] = NODE_PREFIX;

/** The leaf hash of a 32-byte receipt id: SHA-256(0x00 || id). */
export function leafHash(id: Uint8Array): Buffer {
  if (id.length !== HASH_BYTES)
    throw new RangeError(`a leaf is a 32-byte receipt id, got ${id.length} bytes`);
  leafInput.set(id, 1);
  return sha256(leafInput);
}

/** The leaf hash of a receipt id given as 64 hex digits. */
export function leafHashOfId(idHex: string): Buffer {
  leafInput.write(idHex, 1, HASH_BYTES, 'hex');
  return sha256(leafInput);
}

/** SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_BYTES);
  return sha256(nodeInput);
}

/** MTH of the empty tree. */
export const EMPTY_ROOT: Buffer = sha256(new Uint8Array(0));

/** The largest power of two strictly below n (n >= 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Hashes of complete aligned subtrees: level l, index i covers leaves [i·2^l, (i+1)·2^l). */
export interface NodeSource {
  node(level: number, index: number): Buffer;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** MTH(D[lo:hi]) for a range the RFC recursion produces (lo aligned to the largest subtree in it). */
export function rangeHash(src: NodeSource, lo: number, hi: number): Buffer {
  const n = hi - lo;
  if (n <= 0) return EMPTY_ROOT;
  if (isPowerOfTwo(n) && lo % n === 0) return src.node(Math.log2(n), lo / n);
  const k = splitPoint(n);
  return nodeHash(rangeHash(src, lo, lo + k), rangeHash(src, lo + k, hi));
}

/** The root of the first `size` leaves. */
export function rootHash(src: NodeSource, size: number): Buffer {
  return rangeHash(src, 0, size);
}

/** RFC 6962 PATH(m, D[0:n]): the audit path of leaf m in the tree of the first n leaves. */
export function inclusionProof(src: NodeSource, index: number, size: number): Buffer[] {
  if (!(index >= 0 && index < size)) throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
  const path: Buffer[] = [];
  let lo = 0;
  let hi = size;
  const siblings: Buffer[] = [];
  // Walk down from the root; siblings are collected top-down and reversed (the path is bottom-up).
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index < lo + k) {
      siblings.push(rangeHash(src, lo + k, hi));
      hi = lo + k;
    } else {
      siblings.push(rangeHash(src, lo, lo + k));
      lo = lo + k;
    }
  }
  for (let i = siblings.length - 1; i >= 0; i--) path.push(siblings[i]!);
  return path;
}

/** RFC 6962 PROOF(m, D[0:n]): the consistency proof from the tree of m leaves to the tree of n. */
export function consistencyProof(src: NodeSource, m: number, n: number): Buffer[] {
  if (!(m >= 0 && m <= n)) throw new RangeError(`no consistency proof from size ${m} to size ${n}`);
  if (m === 0 || m === n) return [];
  const out: Buffer[] = [];
  // SUBPROOF(m, D[lo:hi], b), iteratively: nodes are collected top-down, the proof is bottom-up.
  let lo = 0;
  let hi = n;
  let mm = m;
  let b = true;
  const tail: Buffer[] = [];
  for (;;) {
    const size = hi - lo;
    if (mm === size) {
      if (!b) out.push(rangeHash(src, lo, hi));
      break;
    }
    const k = splitPoint(size);
    if (mm <= k) {
      tail.push(rangeHash(src, lo + k, hi));
      hi = lo + k;
    } else {
      tail.push(rangeHash(src, lo, lo + k));
      lo = lo + k;
      mm -= k;
      b = false;
    }
  }
  for (let i = tail.length - 1; i >= 0; i--) out.push(tail[i]!);
  return out;
}

function expectedInclusionLength(index: number, size: number): number {
  let len = 0;
  let lo = 0;
  let hi = size;
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (index < lo + k) hi = lo + k;
    else lo += k;
    len++;
  }
  return len;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/**
 * RFC 9162 §2.1.3.2: the root the audit path leads to from `leaf` (a leaf hash). Throws
 * ProofError when the path has the wrong length for (index, size).
 */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leaf: Uint8Array,
  path: readonly Uint8Array[],
): Buffer {
  if (!Number.isSafeInteger(size) || size < 1)
    throw new ProofError('treeSize', `is ${size}: a tree holding a leaf has at least one`);
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
    throw new ProofError('leafIndex', `is ${index}: not a leaf of a tree of ${size}`);
  }
  const want = expectedInclusionLength(index, size);
  if (path.length !== want) {
    throw new ProofError(
      'inclusion',
      `has ${path.length} hashes; the path of leaf ${index} in a tree of ${size} has ${want} (a hash was added or dropped, or the index or size was changed)`,
    );
  }
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leaf);
  for (const p of path) {
    if (sn === 0) throw new ProofError('inclusion', 'is longer than the tree is deep');
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofError('inclusion', 'is shorter than the tree is deep');
  return r;
}

/** Verify an inclusion proof against a root; ProofError says what does not hold. */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  path: readonly Uint8Array[],
  root: Uint8Array,
): void {
  const got = rootFromInclusionProof(index, size, leaf, path);
  if (!got.equals(root)) {
    throw new ProofError(
      'treeHead.rootHash',
      `is ${hex(root)}, but the receipt's leaf with the ${path.length}-hash audit path leads to ${hex(got)}: the receipt, the path (leaf ${index} of ${size}) or the root was altered`,
    );
  }
}

/**
 * RFC 9162 §2.1.4.2: check that the tree of `size1` leaves with root `root1` is a prefix of the
 * tree of `size2` with root `root2`. Throws ProofError naming which root fails.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): void {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 0 || size2 < size1) {
    throw new ProofError(
      'oldTreeHead.treeSize',
      `is ${size1}, which is not a size from 0 to the new size ${size2}`,
    );
  }
  if (size1 === size2) {
    if (proof.length !== 0)
      throw new ProofError('consistency', `has ${proof.length} hashes; equal sizes need none`);
    if (!Buffer.from(root1).equals(root2)) {
      throw new ProofError(
        'newTreeHead.rootHash',
        `is ${hex(root2)} but the old head of the same size ${size1} says ${hex(root1)}: two different trees of one size (the log was rewritten)`,
      );
    }
    return;
  }
  if (size1 === 0) {
    if (proof.length !== 0)
      throw new ProofError('consistency', `has ${proof.length} hashes; the empty tree needs none`);
    return;
  }
  let path = proof;
  // If size1 is a power of two, the old root is itself the first node of the proof.
  if (isPowerOfTwo(size1)) path = [root1, ...proof];
  if (path.length === 0) throw new ProofError('consistency', 'is empty but the sizes differ');
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Buffer = Buffer.from(path[0]!);
  let sr: Buffer = Buffer.from(path[0]!);
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) {
      throw new ProofError(
        'consistency',
        `has ${proof.length} hashes: more than a proof from ${size1} to ${size2} needs`,
      );
    }
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) {
    throw new ProofError(
      'consistency',
      `has ${proof.length} hashes: fewer than a proof from ${size1} to ${size2} needs`,
    );
  }
  if (!fr.equals(root1)) {
    throw new ProofError(
      'oldTreeHead.rootHash',
      `is ${hex(root1)}, but the proof rebuilds the old tree of ${size1} as ${hex(fr)}: the new tree does not extend the old one (the log was rewritten) or the proof was altered`,
    );
  }
  if (!sr.equals(root2)) {
    throw new ProofError(
      'newTreeHead.rootHash',
      `is ${hex(root2)}, but the proof rebuilds the new tree of ${size2} as ${hex(sr)}: the new tree does not extend the old one (the log was rewritten) or the proof was altered`,
    );
  }
}
