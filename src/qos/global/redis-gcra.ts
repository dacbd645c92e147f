/**
 * A GCRA limit shared by every host through Redis (`AsyncLimiter`): the definition is the
 * in-process GcraLimiter's (limit per periodMs, burst; src/qos/limiters/gcra.ts), decided by an
 * atomic Lua script on Redis's clock, with the same allowed / remaining / retry-after /
 * reset-after.
 *
 * Local fast path (leases): with `leaseSize` L > 1 a host takes up to L units from the global
 * budget in one round trip (fewer near the limit: never more than fits) and spends them locally
 * with no round trip until they run out or `leaseTtlMs` passes; then it fetches again. Every unit
 * a host admits was taken from the global GCRA, so what all hosts admit together can exceed the
 * definition over a window only by units leased before the window and spent within it: each host
 * holds at most one lease per key, so
 *
 *   admitted over any window ≤ definition over that window + hosts × (L − 1)
 *
 * (L − 1: a lease is fetched by a check that spends one unit of it at once). With L = 1 every
 * check is one round trip and the bound is the definition exactly.
 *
 * With the fast path on, a refusal is also remembered until its retry-after (a GCRA key's debt only
 * grows by admissions and shrinks with time, so the same or a larger cost is refused until then):
 * over the limit, checks cost no round trip either. Exact, never an over-admission.
 *
 * Redis down (a call fails or times out, or the connection is not ready): fail-open decides with
 * a local GcraLimiter of the same definition on this host (so the fleet admits at most
 * hosts × definition while degraded); fail-closed refuses with source `unavailable`. Both say
 * `degraded: true`, and the store's counters say so for metrics.
 */

import { type Clock, systemClock } from '../clock.js';
import type { AsyncLimiter, Decision } from '../decision.js';
import { QosCostError, QosKeyError } from '../limiters/errors.js';
import { GcraLimiter } from '../limiters/gcra.js';
import {
  DEFAULT_MAX_KEY_LENGTH,
  durationMicros,
  exactProduct,
  object,
  positiveInteger,
} from '../limiters/validate.js';
import { type GlobalStore, script } from './global-store.js';
import { GCRA_LEASE_SCRIPT } from './scripts.js';

const GCRA = script(GCRA_LEASE_SCRIPT);

/** Default lease: one unit, i.e. no fast path (every check is a round trip, no over-admission). */
export const DEFAULT_LEASE_SIZE = 1;
/** Default life of a lease: unspent units are dropped after it, so a lease is never stale for long. */
export const DEFAULT_LEASE_TTL_MS = 1_000;
/** Default bound on keys with a lease held locally (the oldest is dropped past it). */
export const DEFAULT_MAX_LEASED_KEYS = 100_000;

export interface RedisGcraOptions {
  /** Requests per period (the sustained rate). */
  readonly limit: number;
  readonly periodMs: number;
  /** Requests admissible at once; default `limit`. */
  readonly burst?: number;
  /** Units taken per round trip and spent locally (the fast path); default 1. */
  readonly leaseSize?: number;
  readonly leaseTtlMs?: number;
  readonly maxLeasedKeys?: number;
  /** Name of this limit inside the store's key prefix (keys become `<prefix><name>:<key>`). */
  readonly name?: string;
  /** Local time for lease expiry and the fail-open limiter; default systemClock. */
  readonly clock?: Clock;
}

/** Where a decision came from. */
export type GlobalDecisionSource = 'redis' | 'lease' | 'refused-until' | 'local-fallback' | 'unavailable';

export interface GlobalDecision extends Decision {
  readonly source: GlobalDecisionSource;
  /** True when Redis was not consulted because it is down, hung or not yet reachable. */
  readonly degraded: boolean;
}

/** Counters of this limit (the store keeps the connection's own). */
export interface GlobalLimiterCounters {
  checks: number;
  allowed: number;
  refused: number;
  /** Checks answered from a local lease, with no round trip. */
  leaseHits: number;
  /** Checks refused locally because Redis said to retry later and that time has not come. */
  refusedUntilHits: number;
  /** Round trips for this limit (lease fetches and plain checks). */
  roundTrips: number;
  /** Checks decided by the local limiter (fail-open) while degraded. */
  localFallbacks: number;
  /** Checks refused because Redis was unavailable (fail-closed). */
  unavailableRefusals: number;
}

interface Lease {
  tokens: number;
  expiresAtMs: number;
  /** What Redis said was left beyond the lease when it was granted. */
  globalRemaining: number;
  resetAfterMs: number;
}

export class RedisGcraLimiter implements AsyncLimiter {
  readonly limit: number;
  readonly rate: number;
  readonly burst: number;
  readonly periodUs: number;
  readonly leaseSize: number;
  readonly leaseTtlMs: number;
  readonly maxLeasedKeys: number;
  readonly name: string;
  readonly counters: GlobalLimiterCounters = {
    checks: 0,
    allowed: 0,
    refused: 0,
    leaseHits: 0,
    refusedUntilHits: 0,
    roundTrips: 0,
    localFallbacks: 0,
    unavailableRefusals: 0,
  };
  readonly #store: GlobalStore;
  readonly #clock: Clock;
  readonly #args: readonly string[];
  readonly #leases = new Map<string, Lease>();
  readonly #fetching = new Map<string, Promise<unknown>>();
  /**
   * Refusals remembered until their retry-after: the debt of a GCRA key only grows by other
   * hosts' admissions and only shrinks with time, so a cost refused now is refused until then
   * (exact, up to the drift between this host's clock rate and Redis's): no round trip needed.
   */
  readonly #refusedUntil = new Map<string, { untilMs: number; cost: number; resetAtMs: number }>();
  /** The same definition, per host, for fail-open. */
  readonly #fallback: GcraLimiter;

  constructor(store: GlobalStore, options: RedisGcraOptions, path = 'globalGcra') {
    const o = object(path, options);
    this.#store = store;
    this.rate = positiveInteger(`${path}.limit`, o.limit);
    this.periodUs = durationMicros(`${path}.periodMs`, o.periodMs);
    this.burst = positiveInteger(`${path}.burst`, o.burst ?? this.rate);
    const tolerance = exactProduct(`${path}.burst`, this.burst, this.periodUs, 'burst × periodMs in µs');
    exactProduct(`${path}.limit`, this.rate, this.periodUs, 'limit × periodMs in µs');
    this.limit = this.burst;
    this.leaseSize = positiveInteger(`${path}.leaseSize`, o.leaseSize ?? DEFAULT_LEASE_SIZE, this.burst);
    this.leaseTtlMs = positiveInteger(`${path}.leaseTtlMs`, o.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS);
    this.maxLeasedKeys = positiveInteger(`${path}.maxLeasedKeys`, o.maxLeasedKeys ?? DEFAULT_MAX_LEASED_KEYS);
    const name = o.name ?? 'gcra';
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(name)) {
      throw new QosKeyError(`${path}.name`, '1 to 64 of A-Z a-z 0-9 _ . : -', name);
    }
    this.name = name;
    this.#clock = o.clock === undefined ? systemClock : (o.clock as Clock);
    this.#args = [
      String(this.rate),
      String(this.periodUs),
      String(Math.floor(this.periodUs / this.rate)),
      String(this.periodUs % this.rate),
      String(tolerance),
    ];
    this.#fallback = new GcraLimiter(
      { limit: this.rate, periodMs: this.periodUs / 1000, burst: this.burst, clock: this.#clock },
      path,
    );
  }

  /** The state a host spends locally: the most units it may admit with no round trip now. */
  leasedUnits(key: string): number {
    const lease = this.#leases.get(key);
    return lease && this.#clock.now() < lease.expiresAtMs ? lease.tokens : 0;
  }

  async check(key: string, cost = 1): Promise<GlobalDecision> {
    return this.#check(key, cost, '');
  }

  /**
   * The decision at Redis time `nowUs` instead of Redis's clock: for tests against the
   * in-process GcraLimiter with a manual clock. Leases still expire on the local clock.
   */
  async checkAt(key: string, cost: number, nowUs: number): Promise<GlobalDecision> {
    return this.#check(key, cost, String(nowUs));
  }

  /** Drop every local lease (their units are simply not spent: never over-admission). */
  dropLeases(): void {
    this.#leases.clear();
  }

  async #check(key: string, cost: number, nowArg: string): Promise<GlobalDecision> {
    if (typeof key !== 'string' || key.length === 0 || key.length > DEFAULT_MAX_KEY_LENGTH) {
      throw new QosKeyError('key', `a string of 1 to ${DEFAULT_MAX_KEY_LENGTH} characters`, key);
    }
    if (!Number.isInteger(cost) || cost < 0 || cost > this.burst) throw new QosCostError(cost, this.burst);
    this.counters.checks++;
    const fromLease = this.#spendLease(key, cost);
    if (fromLease) return fromLease;
    const refused = this.#refusedUntil.get(key);
    if (refused !== undefined) {
      const waitMs = refused.untilMs - this.#clock.now();
      if (waitMs > 0 && cost >= refused.cost) {
        this.counters.refusedUntilHits++;
        this.counters.refused++;
        return {
          allowed: false,
          limit: this.limit,
          remaining: 0,
          retryAfterMs: waitMs,
          resetAfterMs: Math.max(waitMs, refused.resetAtMs - this.#clock.now()),
          source: 'refused-until',
          degraded: false,
        };
      }
      if (waitMs <= 0) this.#refusedUntil.delete(key);
    }
    if (this.leaseSize > 1) {
      // One fetch per key per host at a time: wait for the one running and try its units first.
      for (let p = this.#fetching.get(key); p; p = this.#fetching.get(key)) {
        await p.catch(() => {});
        const after = this.#spendLease(key, cost);
        if (after) return after;
      }
      // Drop what is left before fetching, so a host never holds a lease and fetches another:
      // that is what bounds over-admission at one lease per host.
      this.#leases.delete(key);
    }
    if (!this.#store.available()) return this.#degraded(key, cost);
    // A cost of 0 is a look: it takes no lease.
    const want = cost === 0 ? 0 : Math.max(cost, this.leaseSize);
    const call = this.#store.evalScript(
      GCRA,
      [this.#store.key(`${this.name}:${key}`)],
      [...this.#args, cost, want, nowArg],
    );
    this.counters.roundTrips++;
    if (this.leaseSize > 1) {
      this.#fetching.set(key, call);
      call.finally(() => this.#fetching.get(key) === call && this.#fetching.delete(key)).catch(() => {});
    }
    let reply: [number, number, number, number, number];
    try {
      reply = (await call) as [number, number, number, number, number];
    } catch {
      return this.#degraded(key, cost);
    }
    const [allowed, granted, waitUs, remaining, resetUs] = reply;
    const resetAfterMs = resetUs / 1000;
    if (allowed !== 1) {
      this.counters.refused++;
      if (nowArg === '' && this.leaseSize > 1) this.#rememberRefusal(key, cost, waitUs / 1000, resetAfterMs);
      return {
        allowed: false,
        limit: this.limit,
        remaining: 0,
        retryAfterMs: waitUs / 1000,
        resetAfterMs,
        source: 'redis',
        degraded: false,
      };
    }
    this.counters.allowed++;
    const left = granted - cost;
    if (left > 0) this.#putLease(key, left, remaining, resetAfterMs);
    else this.#leases.delete(key);
    return {
      allowed: true,
      limit: this.limit,
      remaining: remaining + left,
      retryAfterMs: 0,
      resetAfterMs,
      source: 'redis',
      degraded: false,
    };
  }

  #spendLease(key: string, cost: number): GlobalDecision | undefined {
    const lease = this.#leases.get(key);
    if (lease === undefined) return undefined;
    if (this.#clock.now() >= lease.expiresAtMs) {
      this.#leases.delete(key);
      return undefined;
    }
    if (lease.tokens < cost) return undefined;
    lease.tokens -= cost;
    if (lease.tokens === 0) this.#leases.delete(key);
    this.counters.leaseHits++;
    this.counters.allowed++;
    return {
      allowed: true,
      limit: this.limit,
      remaining: lease.tokens + lease.globalRemaining,
      retryAfterMs: 0,
      resetAfterMs: lease.resetAfterMs,
      source: 'lease',
      degraded: false,
    };
  }

  #rememberRefusal(key: string, cost: number, waitMs: number, resetAfterMs: number): void {
    if (this.#refusedUntil.size >= this.maxLeasedKeys) {
      const oldest = this.#refusedUntil.keys().next().value;
      if (oldest !== undefined) this.#refusedUntil.delete(oldest);
    }
    const now = this.#clock.now();
    this.#refusedUntil.delete(key);
    this.#refusedUntil.set(key, { untilMs: now + waitMs, cost, resetAtMs: now + resetAfterMs });
  }

  #putLease(key: string, tokens: number, globalRemaining: number, resetAfterMs: number): void {
    // Replacing a lease drops its unspent units: a host never holds more than one per key.
    this.#leases.delete(key);
    if (this.#leases.size >= this.maxLeasedKeys) {
      const oldest = this.#leases.keys().next().value;
      if (oldest !== undefined) this.#leases.delete(oldest);
    }
    this.#leases.set(key, {
      tokens,
      expiresAtMs: this.#clock.now() + this.leaseTtlMs,
      globalRemaining,
      resetAfterMs,
    });
  }

  #degraded(key: string, cost: number): GlobalDecision {
    if (this.#store.options.failMode === 'closed') {
      this.counters.unavailableRefusals++;
      this.counters.refused++;
      const hint = this.#store.retryHintMs;
      return {
        allowed: false,
        limit: this.limit,
        remaining: 0,
        retryAfterMs: hint,
        resetAfterMs: hint,
        source: 'unavailable',
        degraded: true,
      };
    }
    this.counters.localFallbacks++;
    const d = this.#fallback.check(key, cost);
    if (d.allowed) this.counters.allowed++;
    else this.counters.refused++;
    return { ...d, source: 'local-fallback', degraded: true };
  }
}
