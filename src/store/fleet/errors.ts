/**
 * Typed errors of the fleet index (PostgreSQL). Codes are stable; messages name the host, the
 * log position, the table row or the option that was wrong.
 */

import { IntegrityError, ThunderpacError } from '../../runtime/errors.js';

/**
 * The database could not be reached or did not answer in time (refused, reset, timed out).
 * Mirroring retries on its own; a query that gets this can be asked again, or answered locally.
 */
export class FleetUnavailableError extends ThunderpacError {
  constructor(what: string, reason: string, options?: { cause?: unknown }) {
    super('FLEET_UNAVAILABLE', `fleet index unavailable: ${what}: ${reason}`, options);
  }
}

/**
 * The database holds a fleet schema of another format (or something else under its table
 * names): it is left as it is, and nothing is mirrored into it.
 */
export class FleetSchemaError extends ThunderpacError {
  constructor(message: string) {
    super('FLEET_SCHEMA', `fleet index: ${message}`);
  }
}

/**
 * What the fleet index records for this host does not match this store's receipt log: another
 * store mirrors under the same host name, or the log was replaced or lost receipts it had
 * mirrored. Mirroring stops (nothing in the index is overwritten) until an operator gives the
 * store its own host name or forgets the host's position (`FleetIndex.forgetHost`).
 */
export class FleetMismatchError extends ThunderpacError {
  readonly host: string;

  constructor(host: string, message: string) {
    super('FLEET_MISMATCH', `fleet index, host '${host}': ${message}`);
    this.host = host;
  }
}

/** A row of the fleet index whose body does not hash to its receipt id (altered in the database). */
export class FleetIntegrityError extends IntegrityError {
  constructor(id: string, host: string, ordinal: number, actual: string) {
    super(
      `fleet index row for receipt ${id} (host '${host}', log ordinal ${ordinal}): its body hashes to ${actual}, not to its id: altered in the database`,
      id,
      actual,
    );
  }
}

/** A fleet option (Store option or the daemon's `store.fleet` section) that is not valid; `path` names it. */
export class FleetConfigError extends ThunderpacError {
  readonly path: string;
  readonly detail: string;

  constructor(path: string, detail: string) {
    super('FLEET_CONFIG', `${path}: ${detail}`);
    this.path = path;
    this.detail = detail;
  }
}
