/**
 * Adaptive concurrency limits (after Netflix concurrency-limits): how many executions may run at
 * once, learned from measured latency instead of configured. Little's law: past the point where
 * the backend is saturated, more concurrency only adds queueing latency, so latency rising (or
 * calls failing) means the limit is too high.
 *
 * Two algorithms behind one interface:
 * - AIMD: +1 while the limit is in use (in flight ≥ limit / 2) and calls are fast and ok;
 *   × backoffRatio (floored) on a failure or a call slower than `timeoutMs`.
 * - Gradient (Netflix Gradient2): compares the latest latency with a long-term average; the
 *   ratio (tolerance × long / short, clamped to [0.5, 1]) scales the limit, plus a small
 *   queue allowance, smoothed. Latency rising above `tolerance ×` its long average shrinks the
 *   limit (as long as the limit exceeds queueSize / (1 - 0.5)).
 * Either way the limit stays in [minLimit, maxLimit].
 *
 * ConcurrencyLimiter is the admission API: `tryAcquire()` before the call, `release(latencyMs, ok)`
 * after it. Its `limit` and `inFlight` are plain readable state; `subscribe` tells of limit changes.
 */

import { QosConfigError } from '../queues/errors.js';

export interface LimitSample {
  readonly latencyMs: number;
  /** Calls in flight when this one finished (itself included). */
  readonly inFlight: number;
  /** The call failed, or was dropped for overload. */
  readonly dropped: boolean;
}

export interface LimitAlgorithm {
  /** The current limit (an integer ≥ 1). */
  readonly limit: number;
  /** Feeds one sample; returns the new limit. */
  update(sample: LimitSample): number;
}

export interface LimitBounds {
  /** Starting limit (default 20). */
  readonly initialLimit?: number;
  /** Never below (default 1). */
  readonly minLimit?: number;
  /** Never above (default 1000). */
  readonly maxLimit?: number;
}

export const LIMIT_BOUNDS_DEFAULTS = { initialLimit: 20, minLimit: 1, maxLimit: 1000 } as const;

function resolveBounds(o: LimitBounds, prefix: string): { initial: number; min: number; max: number } {
  const min = o.minLimit ?? LIMIT_BOUNDS_DEFAULTS.minLimit;
  const max = o.maxLimit ?? LIMIT_BOUNDS_DEFAULTS.maxLimit;
  const initial = o.initialLimit ?? Math.min(max, Math.max(min, LIMIT_BOUNDS_DEFAULTS.initialLimit));
  if (!(Number.isInteger(min) && min >= 1))
    throw new QosConfigError(`${prefix}minLimit`, 'an integer ≥ 1', min);
  if (!(Number.isInteger(max) && max >= min))
    throw new QosConfigError(`${prefix}maxLimit`, `an integer ≥ minLimit (${min})`, max);
  if (!(Number.isInteger(initial) && initial >= min && initial <= max))
    throw new QosConfigError(`${prefix}initialLimit`, `an integer in [${min}, ${max}]`, initial);
  return { initial, min, max };
}

export interface AimdOptions extends LimitBounds {
  /** Multiplier on a drop, in (0, 1) (default 0.9). */
  readonly backoffRatio?: number;
  /** A call slower than this counts as a drop, ms (default 5000). */
  readonly timeoutMs?: number;
}

export const AIMD_DEFAULTS = { backoffRatio: 0.9, timeoutMs: 5000 } as const;

export class AimdLimit implements LimitAlgorithm {
  readonly minLimit: number;
  readonly maxLimit: number;
  readonly backoffRatio: number;
  readonly timeoutMs: number;
  #limit: number;

  constructor(options: AimdOptions = {}) {
    const b = resolveBounds(options, '');
    this.minLimit = b.min;
    this.maxLimit = b.max;
    this.#limit = b.initial;
    this.backoffRatio = options.backoffRatio ?? AIMD_DEFAULTS.backoffRatio;
    this.timeoutMs = options.timeoutMs ?? AIMD_DEFAULTS.timeoutMs;
    if (!(this.backoffRatio > 0 && this.backoffRatio < 1))
      throw new QosConfigError('backoffRatio', 'a number in (0, 1)', this.backoffRatio);
    if (!(this.timeoutMs > 0)) throw new QosConfigError('timeoutMs', 'a number of ms > 0', this.timeoutMs);
  }

  get limit(): number {
    return this.#limit;
  }

  update(s: LimitSample): number {
    let l = this.#limit;
    if (s.dropped || s.latencyMs > this.timeoutMs) l = Math.floor(l * this.backoffRatio);
    else if (s.inFlight * 2 >= l) l = l + 1;
    this.#limit = Math.min(this.maxLimit, Math.max(this.minLimit, l));
    return this.#limit;
  }
}

export interface GradientOptions extends LimitBounds {
  /** Latency may grow to this multiple of its long average before the limit shrinks (default 1.5). */
  readonly tolerance?: number;
  /** Weight of a new estimate in the limit, (0, 1] (default 0.2). */
  readonly smoothing?: number;
  /** Samples in the long-term latency average (default 600). */
  readonly longWindow?: number;
  /** Extra concurrency allowed on top of the gradient (default 4). */
  readonly queueSize?: number;
}

export const GRADIENT_DEFAULTS = { tolerance: 1.5, smoothing: 0.2, longWindow: 600, queueSize: 4 } as const;

/** Plain average for the first samples (a warm-up), then exponential: the long-term latency. */
const WARMUP_SAMPLES = 10;

export class GradientLimit implements LimitAlgorithm {
  readonly minLimit: number;
  readonly maxLimit: number;
  readonly tolerance: number;
  readonly smoothing: number;
  readonly queueSize: number;
  readonly #factor: number;
  #estimate: number;
  #longRtt = 0;
  #samples = 0;

  constructor(options: GradientOptions = {}) {
    const b = resolveBounds(options, '');
    this.minLimit = b.min;
    this.maxLimit = b.max;
    this.#estimate = b.initial;
    this.tolerance = options.tolerance ?? GRADIENT_DEFAULTS.tolerance;
    this.smoothing = options.smoothing ?? GRADIENT_DEFAULTS.smoothing;
    this.queueSize = options.queueSize ?? GRADIENT_DEFAULTS.queueSize;
    const longWindow = options.longWindow ?? GRADIENT_DEFAULTS.longWindow;
    if (!(this.tolerance >= 1)) throw new QosConfigError('tolerance', 'a number ≥ 1', this.tolerance);
    if (!(this.smoothing > 0 && this.smoothing <= 1))
      throw new QosConfigError('smoothing', 'a number in (0, 1]', this.smoothing);
    if (!(this.queueSize >= 0)) throw new QosConfigError('queueSize', 'a number ≥ 0', this.queueSize);
    if (!(Number.isInteger(longWindow) && longWindow >= 1))
      throw new QosConfigError('longWindow', 'an integer ≥ 1', longWindow);
    this.#factor = 2 / (longWindow + 1);
  }

  get limit(): number {
    return Math.floor(this.#estimate);
  }

  /** The long-term latency average, ms. */
  get longLatencyMs(): number {
    return this.#longRtt;
  }

  update(s: LimitSample): number {
    const short = Math.max(s.latencyMs, 1e-6);
    this.#samples++;
    this.#longRtt =
      this.#samples <= WARMUP_SAMPLES
        ? this.#longRtt + (short - this.#longRtt) / this.#samples
        : this.#longRtt * (1 - this.#factor) + short * this.#factor;
    // Latency fell far below its average (load went away): let the average follow faster.
    if (this.#longRtt / short > 2) this.#longRtt *= 0.95;
    // Only a limit in use is evidence: an app-limited caller says nothing about capacity.
    if (s.inFlight < this.#estimate / 2) return this.limit;
    const gradient = Math.max(0.5, Math.min(1, (this.tolerance * this.#longRtt) / short));
    let next = this.#estimate * gradient + this.queueSize;
    next = this.#estimate * (1 - this.smoothing) + next * this.smoothing;
    if (s.dropped) next = Math.min(next, this.#estimate * 0.9);
    this.#estimate = Math.min(this.maxLimit, Math.max(this.minLimit, next));
    return this.limit;
  }
}

export type LimitListener = (limit: number, previous: number) => void;

/** Admission by an adaptive limit: a call runs only while fewer than `limit` are in flight. */
export class ConcurrencyLimiter {
  readonly algorithm: LimitAlgorithm;
  #inFlight = 0;
  #limit: number;
  #listeners: LimitListener[] = [];
  /** Calls refused because the limit was reached (monotonic, for metrics). */
  refused = 0;

  constructor(algorithm: LimitAlgorithm = new AimdLimit()) {
    this.algorithm = algorithm;
    this.#limit = algorithm.limit;
  }

  get limit(): number {
    return this.#limit;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Takes a slot if one is free. Every true must be followed by exactly one release. */
  tryAcquire(): boolean {
    if (this.#inFlight >= this.#limit) {
      this.refused++;
      return false;
    }
    this.#inFlight++;
    return true;
  }

  /** Gives the slot back with how the call went; the limit learns from it. */
  release(latencyMs: number, ok: boolean): void {
    const inFlight = this.#inFlight;
    if (inFlight > 0) this.#inFlight = inFlight - 1;
    const previous = this.#limit;
    const limit = this.algorithm.update({ latencyMs, inFlight, dropped: !ok });
    if (limit !== previous) {
      this.#limit = limit;
      for (const l of this.#listeners) l(limit, previous);
    }
  }

  /** Gives the slot back without a sample (the call never ran). */
  abandon(): void {
    if (this.#inFlight > 0) this.#inFlight--;
  }

  /** Calls `listener(limit, previous)` at each change of the limit; returns the unsubscribe. */
  subscribe(listener: LimitListener): () => void {
    this.#listeners.push(listener);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }
}
