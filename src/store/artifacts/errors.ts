/**
 * Typed errors of the block store, the artifact index and snapshots. Messages say what and where:
 * the file and the byte offset for on-disk damage, the key for a missing or reclaimed artifact.
 */

import { IntegrityError, ThunderpacError } from '../../runtime/errors.js';

/**
 * A file of the block store or the artifact index (segment, large block, index log, checkpoint,
 * snapshot, CURRENT) is damaged at a known place. Code INTEGRITY; `offset` is the byte where the
 * damage was found. Nothing is cut or rewritten on its account.
 */
export class StoreFileIntegrityError extends IntegrityError {
  readonly path: string;
  readonly offset: number;

  constructor(path: string, offset: number, message: string, expected?: string, actual?: string) {
    super(`${path}: ${message} (at byte ${offset})`, expected, actual);
    this.path = path;
    this.offset = offset;
  }
}

/**
 * The artifact was in the store and GC reclaimed it: the receipts that referenced it expired
 * under the retention policy (or it was unreferenced). Not corruption: `verify` of an expired
 * receipt reports this instead of a mismatch.
 */
export class ArtifactReclaimedError extends ThunderpacError {
  readonly key: string;

  constructor(what: string, key: string) {
    super('RECLAIMED', `${what} ${key}: payload reclaimed by GC (no kept receipt references it)`);
    this.key = key;
  }
}

/** An artifact key was tombstoned: it is no longer in CURRENT (a snapshot may still hold it). */
export class ArtifactTombstonedError extends ThunderpacError {
  readonly key: string;

  constructor(what: string, key: string) {
    super('NOT_FOUND', `${what} ${key} not found: it was deleted (tombstoned)`);
    this.key = key;
  }
}

/**
 * An artifact imported from another domain (bundle.ts) is read-only here: its bytes are the
 * other domain's, and provenance that names them must keep finding the same bytes.
 */
export class ArtifactReadOnlyError extends ThunderpacError {
  readonly key: string;
  readonly domain: string;

  constructor(key: string, domain: string, source: string, what: string) {
    super(
      'ARTIFACT_READ_ONLY',
      `artifact ${key} is read-only: imported from domain '${domain}' (store ${source}); cannot ${what} it`,
    );
    this.key = key;
    this.domain = domain;
  }
}
