/** Quotas: limit / used / resets_at per key, atomic consume, periodic resets, a crash-safe journal. */

export {
  QuotaClosedError,
  QuotaExceededError,
  QuotaFileLockedError,
  QuotaKeysFullError,
  QuotaLockTimeoutError,
} from './errors.js';
export { crc32, encodeRecord, type QuotaRecord } from './journal.js';
export {
  type Alignment,
  DAY_MS,
  HOUR_MS,
  type NamedPeriod,
  type PeriodInput,
  periodEnd,
  periodStartAt,
  type QuotaPlan,
  type QuotaPlanInput,
  quotaPlan,
  WEEK_MS,
} from './period.js';
export {
  DEFAULT_QUOTA_COMPACT_AT_BYTES,
  DEFAULT_QUOTA_FLUSH_INTERVAL_MS,
  DEFAULT_QUOTA_FLUSH_MAX_RECORDS,
  DEFAULT_QUOTA_LOCK_TIMEOUT_MS,
  DEFAULT_QUOTA_MAX_KEY_LENGTH,
  DEFAULT_QUOTA_MAX_KEYS,
  DEFAULT_QUOTA_SWEEP_PER_INSERT,
  type QuotaDecision,
  type QuotaDurability,
  type QuotaSharing,
  type QuotaState,
  Quotas,
  type QuotasOptions,
} from './quotas.js';
