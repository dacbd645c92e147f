/**
 * Per-actor spike detection: the current interval's request count against a baseline that is
 * the mean count of the `baselineIntervals` full intervals before it (a moving average: like an
 * EWMA it follows the actor's normal rate, but it is exact in integers and an actor idle for a
 * whole baseline is bit-for-bit a fresh one, so it can be forgotten without changing anything).
 *
 * Intervals are `intervalMs` long and aligned to multiples of intervalMs on the Clock.
 * A spike: the current interval's count reaches
 *     spikeFactor × max(baseline, minBaseline)
 * and it is reported once per interval, at the request that reaches it. Consequences, exact:
 * - a steady rate r (the same count every interval, for a whole baseline) is never a spike:
 *   r < spikeFactor × r for any spikeFactor > 1, nor below spikeFactor × minBaseline;
 * - a step from a steady r to R per interval at an interval boundary is flagged within the first
 *   interval at R when R ≥ spikeFactor × max(r, minBaseline); a step in mid-interval, within two
 *   intervals (the mixed interval enters the baseline: R ≥ spikeFactor × max(r + (R − r) / W,
 *   minBaseline) suffices, W = baselineIntervals; satisfiable only when W > spikeFactor);
 * - a new actor has a baseline of 0, so it is compared with minBaseline: arriving at
 *   ≥ spikeFactor × minBaseline per interval is a spike (a step up from nothing). Set minBaseline
 *   to an ordinary actor's rate per interval.
 *
 * Memory: `baselineIntervals` counts per actor (Uint32, in one Map entry), at most `maxActors`
 * actors; an actor whose last request is more than a baseline ago is forgotten (it equals a fresh
 * one). When full of recent actors, the least recently active one is dropped (it then starts
 * over as new: the only case where bounding memory changes an answer).
 */

import type { Clock } from '../clock.js';
import { QosConfigError } from '../limiters/errors.js';

export const DEFAULT_SPIKE_INTERVAL_MS = 1_000;
export const DEFAULT_SPIKE_BASELINE_INTERVALS = 30;
export const DEFAULT_SPIKE_FACTOR = 4;
export const DEFAULT_SPIKE_MIN_BASELINE = 10;
export const DEFAULT_SPIKE_MAX_ACTORS = 100_000;
export const DEFAULT_SPIKE_SWEEP_PER_INSERT = 4;

export interface SpikeDetectorOptions {
  readonly clock: Clock;
  readonly intervalMs?: number;
  readonly baselineIntervals?: number;
  readonly spikeFactor?: number;
  readonly minBaseline?: number;
  readonly maxActors?: number;
  readonly sweepPerInsert?: number;
}

export interface Spike {
  readonly actor: string;
  /** Requests so far in the current interval. */
  readonly count: number;
  /** Mean requests per interval over the baseline. */
  readonly baseline: number;
  /** The count that made it a spike: spikeFactor × max(baseline, minBaseline). */
  readonly threshold: number;
  readonly intervalMs: number;
}

interface ActorRate {
  /** Index (time / intervalMs) of the current interval. */
  interval: number;
  count: number;
  /** Counts of the full intervals before it; slot = interval mod W. */
  readonly history: Uint32Array;
  /** Sum of history (the baseline × W). */
  sum: number;
  flagged: boolean;
}

export class SpikeDetector {
  readonly intervalMs: number;
  readonly baselineIntervals: number;
  readonly spikeFactor: number;
  readonly minBaseline: number;
  readonly maxActors: number;
  readonly #clock: Clock;
  readonly #sweepPerInsert: number;
  readonly #actors = new Map<string, ActorRate>();
  #cursor: MapIterator<[string, ActorRate]> | null = null;

  constructor(options: SpikeDetectorOptions, path = 'spike') {
    if (typeof options?.clock?.now !== 'function')
      throw new QosConfigError(`${path}.clock`, 'a Clock', options?.clock);
    this.#clock = options.clock;
    this.intervalMs = positive(`${path}.intervalMs`, options.intervalMs ?? DEFAULT_SPIKE_INTERVAL_MS);
    this.baselineIntervals = integer(
      `${path}.baselineIntervals`,
      options.baselineIntervals ?? DEFAULT_SPIKE_BASELINE_INTERVALS,
      1,
      10_000,
    );
    const factor = options.spikeFactor ?? DEFAULT_SPIKE_FACTOR;
    if (typeof factor !== 'number' || !Number.isFinite(factor) || factor <= 1) {
      throw new QosConfigError(`${path}.spikeFactor`, 'a number greater than 1', factor);
    }
    this.spikeFactor = factor;
    this.minBaseline = positive(`${path}.minBaseline`, options.minBaseline ?? DEFAULT_SPIKE_MIN_BASELINE);
    this.maxActors = integer(`${path}.maxActors`, options.maxActors ?? DEFAULT_SPIKE_MAX_ACTORS, 1, 2 ** 31);
    this.#sweepPerInsert = integer(
      `${path}.sweepPerInsert`,
      options.sweepPerInsert ?? DEFAULT_SPIKE_SWEEP_PER_INSERT,
      0,
      2 ** 31,
    );
  }

  get actors(): number {
    return this.#actors.size;
  }

  /** Count `n` requests of `actor` now; the spike if this is the request that makes one. */
  record(actor: string, n = 1): Spike | null {
    const interval = Math.floor(this.#clock.now() / this.intervalMs);
    let a = this.#actors.get(actor);
    if (!a) {
      this.#admit(interval);
      a = { interval, count: 0, history: new Uint32Array(this.baselineIntervals), sum: 0, flagged: false };
      this.#actors.set(actor, a);
    } else if (interval > a.interval) {
      this.#advance(a, interval);
      // Most recently active last: the eviction order when full.
      this.#actors.delete(actor);
      this.#actors.set(actor, a);
    }
    a.count += n;
    if (a.flagged) return null;
    const threshold = this.spikeFactor * Math.max(a.sum / this.baselineIntervals, this.minBaseline);
    if (a.count < threshold) return null;
    a.flagged = true;
    return {
      actor,
      count: a.count,
      baseline: a.sum / this.baselineIntervals,
      threshold,
      intervalMs: this.intervalMs,
    };
  }

  /** The actor's baseline (mean per interval over the last full intervals), 0 when unknown. */
  baseline(actor: string): number {
    const a = this.#actors.get(actor);
    if (!a) return 0;
    const interval = Math.floor(this.#clock.now() / this.intervalMs);
    if (interval > a.interval) this.#advance(a, interval);
    return a.sum / this.baselineIntervals;
  }

  /** Close the intervals between a.interval and `interval` (the closed one, then zeros). */
  #advance(a: ActorRate, interval: number): void {
    const w = this.baselineIntervals;
    const gap = interval - a.interval;
    if (gap > w) {
      a.history.fill(0);
      a.sum = 0;
    } else {
      for (let i = a.interval; i < interval; i++) {
        const slot = i % w;
        const value = i === a.interval ? a.count : 0;
        a.sum += value - (a.history[slot] as number);
        a.history[slot] = value;
      }
    }
    a.interval = interval;
    a.count = 0;
    a.flagged = false;
  }

  /** Forget fresh-equivalent actors as new ones arrive; when full, drop the least recent. */
  #admit(interval: number): void {
    for (let i = 0; i < this.#sweepPerInsert && this.#actors.size > 0; i++) {
      let next = this.#cursor?.next();
      if (!next || next.done) {
        this.#cursor = this.#actors.entries();
        next = this.#cursor.next();
        if (next.done) break;
      }
      const [key, a] = next.value;
      if (this.#isFresh(a, interval)) this.#actors.delete(key);
    }
    if (this.#actors.size >= this.maxActors) {
      const oldest = this.#actors.keys().next().value;
      if (oldest !== undefined) this.#actors.delete(oldest);
    }
  }

  /** Idle for more than a whole baseline: every count it holds has left the window. */
  #isFresh(a: ActorRate, interval: number): boolean {
    return interval - a.interval > this.baselineIntervals;
  }
}

function positive(path: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new QosConfigError(path, 'a number > 0', v);
  return v;
}

function integer(path: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new QosConfigError(path, `an integer from ${min} to ${max}`, v);
  }
  return v;
}
