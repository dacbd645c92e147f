/** In-process limiters: token bucket, GCRA, sliding window log and counter, composites, tiers. */

export { CompositeLimiter } from './composite.js';
export { QosConfigError, QosCostError, QosKeyError } from './errors.js';
export { GcraLimiter, type GcraOptions } from './gcra.js';
export { KeyedLimiter, type KeyStoreOptions, type SlotLimiter } from './keyed-limiter.js';
export { actorKey, actorResourceKey, resourceKey } from './keys.js';
export {
  type BucketRate,
  MAX_BUCKETS_PER_KEY,
  MultiRateTokenBucketLimiter,
  type MultiRateTokenBucketOptions,
} from './multi-rate-token-bucket.js';
export { SlidingWindowCounterLimiter } from './sliding-window-counter.js';
export {
  MAX_SLIDING_LOG_LIMIT,
  SlidingWindowLogLimiter,
  type SlidingWindowOptions,
} from './sliding-window-log.js';
export {
  ALGORITHMS,
  type Algorithm,
  createLimiter,
  DEFAULT_TIERS,
  MINUTE_MS,
  type PerWindowLimits,
  perWindowLimiter,
  type RateSpec,
  TierLimiters,
  validateAlgorithm,
  validateRateSpec,
  validateRateSpecFor,
  validateTierTable,
} from './tiers.js';
export { TokenBucketLimiter, type TokenBucketOptions } from './token-bucket.js';
export {
  clockMicros,
  DEFAULT_MAX_KEY_LENGTH,
  DEFAULT_MAX_KEYS,
  DEFAULT_SWEEP_PER_INSERT,
} from './validate.js';
