/**
 * What the executor needs from storage, as an interface owned by the runtime so that the
 * store (src/store/) depends on the runtime and not the other way round.
 */

import type { Build } from './build.js';
import type { Receipt } from './receipt.js';

export interface RecordStore {
  putBuild(build: Build): void;
  /** Loads and integrity-checks a build (manifest hashes to id, artifacts to their digests). */
  getBuild(id: string): Build;
  /** Stores an encoded payload under the payload hash the receipt will carry. */
  putPayload(hash: string, encoded: Uint8Array): void;
  hasPayload(hash: string): boolean;
  getPayload(hash: string): Uint8Array;
  /** `body`, when given, is the receipt body's canonical encoding (saves encoding it again). */
  appendReceipt(receipt: Receipt, body?: Uint8Array): void;
  getReceipt(id: string): Receipt;
  /**
   * The key whose signed tree heads will cover the receipts appended here (`ed25519:<hex>`,
   * src/store/signing.ts): sealed into each receipt's `signer` field. Absent: no signing key.
   */
  readonly signer?: string | undefined;
}
