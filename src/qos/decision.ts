/**
 * What every admission check answers: allowed or not, the budget left, and when to retry
 * (the daemon's 429 sets `Retry-After` from `retryAfterMs`).
 */

export interface Decision {
  readonly allowed: boolean;
  /** The limit that decided (requests per window, bucket size, quota). */
  readonly limit: number;
  /** Budget left after this check (0 when refused). */
  readonly remaining: number;
  /** When a refused request could be allowed, ms from now; 0 when allowed. */
  readonly retryAfterMs: number;
  /** When the budget is whole again, ms from now. */
  readonly resetAfterMs: number;
}

/** A synchronous, in-process limiter keyed by string: the hot path. */
export interface Limiter {
  check(key: string, cost?: number): Decision;
}

/** A limiter whose state lives elsewhere (Redis): one round trip at most per check. */
export interface AsyncLimiter {
  check(key: string, cost?: number): Promise<Decision>;
}
