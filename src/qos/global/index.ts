/** Global limits and quotas shared by several hosts through Redis (issue #12, "Across hosts"). */

export { GlobalStore, type GlobalStoreCounters } from './global-store.js';
export {
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_FAIL_MODE,
  DEFAULT_KEY_PREFIX,
  DEFAULT_RECONNECT_MAX_MS,
  DEFAULT_RECONNECT_MIN_MS,
  type FailMode,
  type GlobalStoreOptions,
  type ResolvedGlobalStoreOptions,
  resolveGlobalStoreOptions,
} from './options.js';
export {
  DEFAULT_LEASE_SIZE,
  DEFAULT_LEASE_TTL_MS,
  DEFAULT_MAX_LEASED_KEYS,
  type GlobalDecision,
  type GlobalDecisionSource,
  type GlobalLimiterCounters,
  RedisGcraLimiter,
  type RedisGcraOptions,
} from './redis-gcra.js';
export {
  type GlobalQuotaPeriod,
  type QuotaState,
  RedisQuota,
  type RedisQuotaOptions,
} from './redis-quota.js';
