/**
 * Typed errors of the receipt Merkle tree, its tree heads and proofs. Codes are stable;
 * messages say what and where (file and byte offset, or the field of a proof document).
 */

import { IntegrityError, ThunderpacError } from '../../runtime/errors.js';

/**
 * A proof, tree head or signature does not verify, or a proof document is malformed. `field` is
 * the path of the field that is wrong in the proof document (`inclusion`, `treeHead.signature`,
 * `receipt.id`, ...).
 */
export class ProofError extends ThunderpacError {
  readonly field: string;

  constructor(field: string, message: string) {
    super('PROOF_INVALID', `${field} ${message}`);
    this.field = field;
  }
}

/**
 * A Merkle tree file or tree-heads log is damaged at a known place. The tree file is derived from
 * the receipt log and is rebuilt from it; the tree-heads log is not (it holds signatures), so its
 * damage is reported.
 */
export class MerkleIntegrityError extends IntegrityError {
  readonly path: string;
  readonly offset: number;

  constructor(path: string, offset: number, message: string, expected?: string, actual?: string) {
    super(`${path}: ${message} (at byte ${offset})`, expected, actual);
    this.path = path;
    this.offset = offset;
  }
}

/**
 * The receipt log no longer holds the tree a tree head committed to: a head signed (or recorded)
 * for `treeSize` receipts with `rootHash` differs from the tree the log gives now. The log was
 * rewritten (or cut) after the head was made.
 */
export class LogRewrittenError extends IntegrityError {
  readonly treeSize: number;

  constructor(message: string, treeSize: number, expected?: string, actual?: string) {
    super(message, expected, actual);
    this.treeSize = treeSize;
  }
}

/** A signing key file that cannot be used (missing, not PKCS#8 PEM, not Ed25519). */
export class SigningKeyError extends ThunderpacError {
  readonly path: string;

  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('SIGNING_KEY_INVALID', `${path}: ${message}`, options);
    this.path = path;
  }
}
