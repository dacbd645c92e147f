/**
 * A circuit breaker for one key (a backend, a build): stop sending work to something that is
 * failing or slow, and let a few probes find out when it has recovered.
 *
 * State machine (exact; test/qos-circuit-breaker-follows-its-state-machine.test.ts checks it
 * against a model):
 * - closed: every call is permitted. Each result enters a sliding window of the last
 *   `windowSize` calls. Once the window holds at least `minimumCalls` results, the breaker
 *   opens when failures / calls ≥ `failureRateThreshold` or slow calls / calls ≥
 *   `slowCallRateThreshold` (a call is slow when it took ≥ `slowCallDurationMs`, ok or not).
 * - open: every call is refused until `openDurationMs` has passed since it opened; then
 *   half-open (the change is seen at the next read of `state` or `acquire`).
 * - half-open: at most `halfOpenProbes` calls are permitted in all. Any probe that fails or is
 *   slow opens the breaker again; when all `halfOpenProbes` succeed it closes with an empty window.
 *
 * A permit is the breaker's generation when it was given: a result reported for an older
 * generation (a call let through before the breaker last changed state) is ignored, so late
 * results cannot move the state. A half-open probe that will never report should be `abandon`ed,
 * giving its slot back. Cost: O(1) per acquire and release (a ring of outcome bytes).
 */

import { QosConfigError } from '../queues/errors.js';
import type { Clock } from '../clock.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Calls in the sliding window (default 100). */
  readonly windowSize?: number;
  /** Results the window needs before rates count (default 20). */
  readonly minimumCalls?: number;
  /** Failure share that opens the breaker, in (0, 1] (default 0.5). */
  readonly failureRateThreshold?: number;
  /** A call this long or longer is slow, ms (default 60 000). */
  readonly slowCallDurationMs?: number;
  /** Slow-call share that opens the breaker, in (0, 1] (default 1: only when every call is slow). */
  readonly slowCallRateThreshold?: number;
  /** How long it stays open before probing, ms (default 30 000). */
  readonly openDurationMs?: number;
  /** Calls permitted while half-open (default 5). */
  readonly halfOpenProbes?: number;
}

export const CIRCUIT_BREAKER_DEFAULTS: Required<CircuitBreakerOptions> = {
  windowSize: 100,
  minimumCalls: 20,
  failureRateThreshold: 0.5,
  slowCallDurationMs: 60_000,
  slowCallRateThreshold: 1,
  openDurationMs: 30_000,
  halfOpenProbes: 5,
};

/** The permit value of a refused call. */
export const REFUSED = -1;

export type BreakerListener = (to: BreakerState, from: BreakerState, key: string) => void;

const FAILED = 1;
const SLOW = 2;

function checkInt(path: string, v: number, min: number): number {
  if (!(Number.isInteger(v) && v >= min)) throw new QosConfigError(path, `an integer ≥ ${min}`, v);
  return v;
}
function checkRate(path: string, v: number): number {
  if (!(v > 0 && v <= 1)) throw new QosConfigError(path, 'a number in (0, 1]', v);
  return v;
}
function checkMs(path: string, v: number): number {
  if (!(v >= 0 && !Number.isNaN(v))) throw new QosConfigError(path, 'a number of ms ≥ 0', v);
  return v;
}

/** Validates breaker options (paths under `prefix`) and fills the defaults. */
export function resolveBreakerOptions(
  options: CircuitBreakerOptions = {},
  prefix = '',
): Required<CircuitBreakerOptions> {
  const o = { ...CIRCUIT_BREAKER_DEFAULTS, ...options };
  checkInt(`${prefix}windowSize`, o.windowSize, 1);
  checkInt(`${prefix}minimumCalls`, o.minimumCalls, 1);
  if (o.minimumCalls > o.windowSize)
    throw new QosConfigError(`${prefix}minimumCalls`, `at most windowSize (${o.windowSize})`, o.minimumCalls);
  checkRate(`${prefix}failureRateThreshold`, o.failureRateThreshold);
  checkRate(`${prefix}slowCallRateThreshold`, o.slowCallRateThreshold);
  checkMs(`${prefix}slowCallDurationMs`, o.slowCallDurationMs);
  checkMs(`${prefix}openDurationMs`, o.openDurationMs);
  checkInt(`${prefix}halfOpenProbes`, o.halfOpenProbes, 1);
  return o;
}

export class CircuitBreaker {
  readonly key: string;
  readonly #clock: Clock;
  readonly #o: Required<CircuitBreakerOptions>;
  readonly #ring: Uint8Array;
  #ringAt = 0;
  #calls = 0;
  #failures = 0;
  #slow = 0;
  #state: BreakerState = 'closed';
  #generation = 0;
  #openedAt = 0;
  #probesGiven = 0;
  #probesSucceeded = 0;
  #listeners: BreakerListener[] = [];
  /** Calls refused while open or half-open with no probe left (monotonic, for metrics). */
  refused = 0;
  /** Times the breaker opened (monotonic). */
  opened = 0;

  constructor(key: string, clock: Clock, options?: CircuitBreakerOptions) {
    this.key = key;
    this.#clock = clock;
    this.#o = resolveBreakerOptions(options);
    this.#ring = new Uint8Array(this.#o.windowSize);
  }

  /** The state now (an open breaker whose time is up reads, and becomes, half-open). */
  get state(): BreakerState {
    if (this.#state === 'open' && this.#clock.now() - this.#openedAt >= this.#o.openDurationMs) {
      this.#transition('half-open');
    }
    return this.#state;
  }

  /** Results in the window, and how many failed or were slow (closed state). */
  get window(): { readonly calls: number; readonly failures: number; readonly slow: number } {
    return { calls: this.#calls, failures: this.#failures, slow: this.#slow };
  }

  /** Calls the breaker would still permit in the current half-open period (0 otherwise). */
  get probesLeft(): number {
    return this.state === 'half-open' ? this.#o.halfOpenProbes - this.#probesGiven : 0;
  }

  /** Time until an open breaker half-opens, ms (0 unless open). For Retry-After. */
  get retryAfterMs(): number {
    if (this.state !== 'open') return 0;
    return this.#openedAt + this.#o.openDurationMs - this.#clock.now();
  }

  /** A permit (≥ 0) to make the call, or REFUSED. */
  acquire(): number {
    const s = this.#state === 'closed' ? 'closed' : this.state;
    if (s === 'closed') return this.#generation;
    if (s === 'half-open' && this.#probesGiven < this.#o.halfOpenProbes) {
      this.#probesGiven++;
      return this.#generation;
    }
    this.refused++;
    return REFUSED;
  }

  /** Reports how a permitted call went. Results of permits from an older generation are ignored. */
  release(permit: number, durationMs: number, ok: boolean): void {
    if (permit !== this.#generation) return;
    const slow = durationMs >= this.#o.slowCallDurationMs;
    if (this.#state === 'closed') this.#record(ok, slow);
    else if (this.#state === 'half-open') {
      if (!ok || slow) this.#open();
      else if (++this.#probesSucceeded === this.#o.halfOpenProbes) this.#transition('closed');
    }
  }

  /** Gives back a half-open probe's slot for a call that will never report (cancelled before it ran). */
  abandon(permit: number): void {
    if (
      permit === this.#generation &&
      this.#state === 'half-open' &&
      this.#probesGiven > this.#probesSucceeded
    ) {
      this.#probesGiven--;
    }
  }

  /** Calls `listener(to, from, key)` at each state change; returns the unsubscribe. */
  subscribe(listener: BreakerListener): () => void {
    this.#listeners.push(listener);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  #record(ok: boolean, slow: boolean): void {
    const size = this.#o.windowSize;
    if (this.#calls === size) {
      const old = this.#ring[this.#ringAt]!;
      if (old & FAILED) this.#failures--;
      if (old & SLOW) this.#slow--;
    } else this.#calls++;
    const v = (ok ? 0 : FAILED) | (slow ? SLOW : 0);
    this.#ring[this.#ringAt] = v;
    this.#ringAt = this.#ringAt + 1 === size ? 0 : this.#ringAt + 1;
    if (!ok) this.#failures++;
    if (slow) this.#slow++;
    if (
      this.#calls >= this.#o.minimumCalls &&
      (this.#failures >= this.#o.failureRateThreshold * this.#calls ||
        this.#slow >= this.#o.slowCallRateThreshold * this.#calls)
    ) {
      this.#open();
    }
  }

  #open(): void {
    this.#openedAt = this.#clock.now();
    this.opened++;
    this.#transition('open');
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    this.#state = to;
    this.#generation++;
    this.#probesGiven = 0;
    this.#probesSucceeded = 0;
    if (to === 'closed') {
      this.#calls = this.#failures = this.#slow = this.#ringAt = 0;
    }
    for (const l of this.#listeners) l(to, from, this.key);
  }
}

/**
 * Breakers by key (`backend:wasm`, `build:<id>`), made on first use with shared options. Bounded:
 * past `maxKeys` (default 10 000) the least recently created closed breaker is forgotten (a closed
 * breaker loses only its window); open ones are kept.
 */
export class CircuitBreakers {
  readonly #clock: Clock;
  readonly #options: Required<CircuitBreakerOptions>;
  readonly #maxKeys: number;
  readonly #byKey = new Map<string, CircuitBreaker>();
  readonly #listeners: BreakerListener[] = [];

  constructor(clock: Clock, options: CircuitBreakerOptions = {}, maxKeys = 10_000) {
    this.#clock = clock;
    this.#options = resolveBreakerOptions(options);
    this.#maxKeys = checkInt('maxKeys', maxKeys, 1);
  }

  get size(): number {
    return this.#byKey.size;
  }

  /** The breaker for a key, made closed if new. */
  get(key: string): CircuitBreaker {
    let b = this.#byKey.get(key);
    if (b === undefined) {
      if (this.#byKey.size >= this.#maxKeys) this.#evictOne();
      b = new CircuitBreaker(key, this.#clock, this.#options);
      for (const l of this.#listeners) b.subscribe(l);
      this.#byKey.set(key, b);
    }
    return b;
  }

  /** Every breaker's key and state (for metrics). */
  *states(): IterableIterator<[string, BreakerState]> {
    for (const [k, b] of this.#byKey) yield [k, b.state];
  }

  /** Listens to state changes of every breaker, present and future. */
  subscribe(listener: BreakerListener): void {
    this.#listeners.push(listener);
    for (const b of this.#byKey.values()) b.subscribe(listener);
  }

  #evictOne(): void {
    for (const [k, b] of this.#byKey) {
      if (b.state === 'closed') {
        this.#byKey.delete(k);
        return;
      }
    }
    // All open or probing: forget the oldest anyway, memory stays bounded.
    const first = this.#byKey.keys().next();
    if (!first.done) this.#byKey.delete(first.value);
  }
}
