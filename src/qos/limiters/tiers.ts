/**
 * Rate specs, the limiter factory and tiers. A tier table maps a tier name to a RateSpec; the
 * daemon's policy maps actors to tiers. The seed's table (premium 10,000 / standard 1,000 /
 * free 100 requests per minute) is DEFAULT_TIERS.
 */

import { type Clock, systemClock } from '../clock.js';
import type { Decision } from '../decision.js';
import { CompositeLimiter } from './composite.js';
import { QosConfigError } from './errors.js';
import { GcraLimiter } from './gcra.js';
import type { KeyedLimiter, KeyStoreOptions } from './keyed-limiter.js';
import { MultiRateTokenBucketLimiter } from './multi-rate-token-bucket.js';
import { SlidingWindowCounterLimiter } from './sliding-window-counter.js';
import { SlidingWindowLogLimiter } from './sliding-window-log.js';
import { TokenBucketLimiter } from './token-bucket.js';
import { durationMicros, object, positiveInteger } from './validate.js';

export const ALGORITHMS = ['token-bucket', 'gcra', 'sliding-log', 'sliding-counter'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** `limit` per `periodMs`; `burst` = requests admissible at once (bucket size), default limit. */
export interface RateSpec {
  readonly limit: number;
  readonly periodMs: number;
  /** Token bucket and GCRA only (the sliding windows admit `limit` per window, no more). */
  readonly burst?: number;
}

export const MINUTE_MS = 60_000;

/** The seed's tiers: requests per minute. */
export const DEFAULT_TIERS: Readonly<Record<string, RateSpec>> = Object.freeze({
  premium: Object.freeze({ limit: 10_000, periodMs: MINUTE_MS }),
  standard: Object.freeze({ limit: 1_000, periodMs: MINUTE_MS }),
  free: Object.freeze({ limit: 100, periodMs: MINUTE_MS }),
});

export function validateRateSpec(path: string, v: unknown, algorithm: Algorithm = 'token-bucket'): RateSpec {
  const o = object(path, v);
  for (const k of Object.keys(o)) {
    if (k !== 'limit' && k !== 'periodMs' && k !== 'burst') {
      throw new QosConfigError(`${path}.${k}`, 'no such field (limit, periodMs, burst)', o[k]);
    }
  }
  const limit = positiveInteger(`${path}.limit`, o.limit);
  const periodMs = o.periodMs as number;
  durationMicros(`${path}.periodMs`, periodMs);
  if (o.burst === undefined) return { limit, periodMs };
  if (algorithm === 'sliding-log' || algorithm === 'sliding-counter') {
    throw new QosConfigError(
      `${path}.burst`,
      `no burst with ${algorithm} (it admits limit per window)`,
      o.burst,
    );
  }
  return { limit, periodMs, burst: positiveInteger(`${path}.burst`, o.burst) };
}

/**
 * A rate spec the chosen algorithm can run: the limiter's own checks (exact integer products,
 * the sliding log's ring size), made where the config is read, so that a section that parses
 * also builds. Constructing a limiter without keys allocates nothing per key.
 */
export function validateRateSpecFor(path: string, v: unknown, algorithm: Algorithm): RateSpec {
  const spec = validateRateSpec(path, v, algorithm);
  buildLimiter(spec, algorithm, systemClock, {}, path);
  return spec;
}

export function validateAlgorithm(path: string, v: unknown): Algorithm {
  if (!ALGORITHMS.includes(v as Algorithm))
    throw new QosConfigError(path, `one of ${ALGORITHMS.join(', ')}`, v);
  return v as Algorithm;
}

/** One keyed limiter for a rate spec. */
export function createLimiter(
  spec: RateSpec,
  algorithm: Algorithm,
  clock: Clock,
  store: KeyStoreOptions = {},
  path = 'limit',
): KeyedLimiter {
  const s = validateRateSpec(path, spec, validateAlgorithm(`${path}.algorithm`, algorithm));
  return buildLimiter(s, algorithm, clock, store, path);
}

function buildLimiter(
  s: RateSpec,
  algorithm: Algorithm,
  clock: Clock,
  store: KeyStoreOptions,
  path: string,
): KeyedLimiter {
  switch (algorithm) {
    case 'token-bucket':
      return new TokenBucketLimiter(
        {
          ...store,
          bucketSize: s.burst ?? s.limit,
          refillTokens: s.limit,
          refillIntervalMs: s.periodMs,
          clock,
        },
        path,
      );
    case 'gcra':
      return new GcraLimiter(
        { ...store, limit: s.limit, periodMs: s.periodMs, burst: s.burst ?? s.limit, clock },
        path,
      );
    case 'sliding-log':
      return new SlidingWindowLogLimiter({ ...store, limit: s.limit, windowMs: s.periodMs, clock }, path);
    case 'sliding-counter':
      return new SlidingWindowCounterLimiter({ ...store, limit: s.limit, windowMs: s.periodMs, clock }, path);
  }
}

export interface PerWindowLimits {
  readonly perSecond?: number;
  readonly perMinute?: number;
  readonly perHour?: number;
}

/**
 * Limits per second, minute and hour at once (the seed's max_per_second / max_per_minute):
 * each is `limit` per its window with the chosen algorithm; all must admit, and a refusal
 * takes from none. Token buckets share one store (MultiRateTokenBucketLimiter: one lookup per
 * check); other algorithms combine one limiter per window (CompositeLimiter).
 */
export function perWindowLimiter(
  limits: PerWindowLimits,
  algorithm: Algorithm,
  clock: Clock,
  store: KeyStoreOptions = {},
  path = 'limits',
): CompositeLimiter | MultiRateTokenBucketLimiter {
  const o = object(path, limits);
  const windows: [keyof PerWindowLimits, number][] = [
    ['perSecond', 1_000],
    ['perMinute', MINUTE_MS],
    ['perHour', 3_600_000],
  ];
  for (const k of Object.keys(o)) {
    if (!windows.some(([w]) => w === k))
      throw new QosConfigError(`${path}.${k}`, 'perSecond, perMinute or perHour', o[k]);
  }
  const parts = windows
    .filter(([k]) => o[k] !== undefined)
    .map(([k, periodMs]) =>
      createLimiter(
        { limit: positiveInteger(`${path}.${k}`, o[k]), periodMs },
        algorithm,
        clock,
        store,
        `${path}.${k}`,
      ),
    );
  if (parts.length === 0)
    throw new QosConfigError(path, 'at least one of perSecond, perMinute, perHour', limits);
  if (algorithm === 'token-bucket') {
    const buckets = windows
      .filter(([k]) => o[k] !== undefined)
      .map(([k, periodMs]) => ({
        bucketSize: o[k] as number,
        refillTokens: o[k] as number,
        refillIntervalMs: periodMs,
      }));
    return new MultiRateTokenBucketLimiter({ ...store, buckets, clock }, path);
  }
  return new CompositeLimiter(parts, clock, path);
}

export function validateTierTable(v: unknown, path = 'tiers'): Readonly<Record<string, RateSpec>> {
  const o = object(path, v);
  const names = Object.keys(o);
  if (names.length === 0) throw new QosConfigError(path, 'at least one tier', v);
  const table: Record<string, RateSpec> = {};
  for (const name of names) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
      throw new QosConfigError(`${path}.${name}`, 'a tier name of 1-64 letters, digits, _ . -', name);
    }
    table[name] = validateRateSpec(`${path}.${name}`, o[name]);
  }
  return table;
}

/** One limiter per tier; check(tier, key) decides with that tier's limits. */
export class TierLimiters {
  readonly table: Readonly<Record<string, RateSpec>>;
  readonly #byTier = new Map<string, KeyedLimiter>();

  constructor(
    table: Readonly<Record<string, RateSpec>> = DEFAULT_TIERS,
    options: { readonly clock: Clock; readonly algorithm?: Algorithm; readonly store?: KeyStoreOptions },
    path = 'tiers',
  ) {
    this.table = validateTierTable(table, path);
    const algorithm = validateAlgorithm(`${path}.algorithm`, options.algorithm ?? 'token-bucket');
    for (const [name, spec] of Object.entries(this.table)) {
      this.#byTier.set(name, createLimiter(spec, algorithm, options.clock, options.store, `${path}.${name}`));
    }
  }

  /** The tier's limiter; an unknown tier is a typed error naming it. */
  limiter(tier: string): KeyedLimiter {
    const l = this.#byTier.get(tier);
    if (l === undefined) {
      throw new QosConfigError('tier', `one of ${[...this.#byTier.keys()].join(', ')}`, tier);
    }
    return l;
  }

  check(tier: string, key: string, cost = 1): Decision {
    return this.limiter(tier).check(key, cost);
  }

  tryAcquire(tier: string, key: string, cost = 1): boolean {
    return this.limiter(tier).tryAcquire(key, cost);
  }
}
