/**
 * Typed errors of quotas. Ordinary refusals are decisions (`tryConsume`); `consume` turns a
 * refusal into QuotaExceededError carrying what the caller needs for a 429 (limit, used,
 * resets_at). Bad settings reuse the limiters' QosConfigError (field path), bad keys QosKeyError,
 * impossible amounts QosCostError.
 */

import { ThunderpacError } from '../../runtime/errors.js';

/** The consume would take `used` past `limit` before `resetsAt`. */
export class QuotaExceededError extends ThunderpacError {
  readonly key: string;
  readonly limit: number;
  readonly used: number;
  readonly amount: number;
  /** Epoch ms when the quota resets; null for a quota that never resets by itself. */
  readonly resetsAt: number | null;

  constructor(key: string, limit: number, used: number, amount: number, resetsAt: number | null) {
    const when =
      resetsAt === null ? 'it never resets by itself' : `resets at ${new Date(resetsAt).toISOString()}`;
    super('QUOTA_EXCEEDED', `quota ${key}: ${used} of ${limit} used, ${amount} more refused; ${when}`);
    this.key = key;
    this.limit = limit;
    this.used = used;
    this.amount = amount;
    this.resetsAt = resetsAt;
  }
}

/** Another process holds the quota file exclusively (a second daemon on the same store). */
export class QuotaFileLockedError extends ThunderpacError {
  readonly path: string;
  constructor(path: string) {
    super(
      'QUOTA_FILE_LOCKED',
      `${path} is held by another process: open it with sharing "shared" in every process, or go through the holder`,
    );
    this.path = path;
  }
}

/** A shared quota file stayed locked by another process for longer than `lockTimeoutMs`. */
export class QuotaLockTimeoutError extends ThunderpacError {
  readonly path: string;
  readonly waitedMs: number;
  constructor(path: string, waitedMs: number) {
    super('QUOTA_LOCK_TIMEOUT', `${path}: lock not obtained within ${waitedMs} ms`);
    this.path = path;
    this.waitedMs = waitedMs;
  }
}

/** `maxKeys` quotas are in use in their period; a new key is refused (never admitted untracked). */
export class QuotaKeysFullError extends ThunderpacError {
  readonly maxKeys: number;
  constructor(maxKeys: number) {
    super(
      'QUOTA_KEYS_FULL',
      `quotas: ${maxKeys} keys (maxKeys) are in use in their period; a new key is refused`,
    );
    this.maxKeys = maxKeys;
  }
}

/** The quotas were closed; nothing more is consumed or written. */
export class QuotaClosedError extends ThunderpacError {
  constructor() {
    super('QUOTA_CLOSED', 'quotas: closed');
  }
}
