/**
 * Typed errors of the store. Codes are stable; messages say what and where (path, byte offset,
 * holder pid) for the operator who has to act on them.
 */

import { IntegrityError, ThunderpacError } from '../runtime/errors.js';

/**
 * The receipt log is damaged at a known place: a bad record, a broken chain, a cut or rewritten
 * end. Code INTEGRITY like every IntegrityError; `offset` is the byte where the damage was found.
 * The file is left as it is: nothing is cut or rewritten on its account.
 */
export class LogIntegrityError extends IntegrityError {
  readonly path: string;
  readonly offset: number;

  constructor(path: string, offset: number, message: string, expected?: string, actual?: string) {
    super(`${path}: ${message} (at byte ${offset})`, expected, actual);
    this.path = path;
    this.offset = offset;
  }
}

/** Another process (or another open Store in this one) is the store's writer. */
export class StoreLockedError extends ThunderpacError {
  readonly path: string;
  /** The holder's pid as the kernel lists it in /proc/locks, when it could be found. */
  readonly holderPid: number | undefined;

  constructor(path: string, holderPid: number | undefined) {
    const holder = holderPid === undefined ? 'another writer' : `another writer (pid ${holderPid})`;
    super(
      'STORE_LOCKED',
      `${path} is locked by ${holder}: a store has one writer at a time; open it read-only, or go through the process that holds it`,
    );
    this.path = path;
    this.holderPid = holderPid;
  }
}

/** A write was asked of a store or receipt log opened read-only. */
export class StoreReadOnlyError extends ThunderpacError {
  readonly path: string;

  constructor(path: string, what: string) {
    super('STORE_READ_ONLY', `${path} is open read-only: cannot ${what}`);
    this.path = path;
  }
}

/** The writer lock cannot be taken at all (no native addon, or flock itself failed). */
export class StoreLockUnavailableError extends ThunderpacError {
  readonly path: string;

  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super('STORE_LOCK_UNAVAILABLE', `cannot lock ${path} for writing: ${reason}`, options);
    this.path = path;
  }
}
