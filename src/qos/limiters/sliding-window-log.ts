/**
 * Sliding window log, exact: at most `limit` units in any window of `windowMs`. A unit admitted
 * at t counts during [t, t + window). Memory per key is bounded by the limit: a ring of the
 * last `limit` admitted units' times (µs), oldest at `head`. A cost of n fits iff the
 * (limit − n + 1)-th most recent unit has left the window — then at most limit − n units
 * remain in it. No approximation; retry times are exact (that unit's exit time).
 *
 * Memory: limit × 8 bytes per key slot (100 per window and 1M keys: 800 MB), so prefer the
 * two-window counter or a token bucket for large limits over many keys.
 */

import type { Clock } from '../clock.js';
import { type KeyStoreOptions, KeyedLimiter } from './keyed-limiter.js';
import { clockOption, durationMicros, exactProduct, object, positiveInteger } from './validate.js';

export interface SlidingWindowOptions extends KeyStoreOptions {
  /** Units admitted per window. */
  readonly limit: number;
  readonly windowMs: number;
  readonly clock: Clock;
}

/** Longest ring per key (a window log of more units costs too much memory per key). */
export const MAX_SLIDING_LOG_LIMIT = 1 << 20;

export class SlidingWindowLogLimiter extends KeyedLimiter {
  readonly limit: number;
  readonly maxCost: number;
  readonly windowUs: number;
  #times = new Float64Array(0);
  #head = new Uint32Array(0);

  constructor(options: SlidingWindowOptions, path = 'slidingWindowLog') {
    const o = object(path, options);
    super(clockOption(`${path}.clock`, o.clock), options, path);
    this.limit = positiveInteger(`${path}.limit`, o.limit, MAX_SLIDING_LOG_LIMIT);
    this.windowUs = durationMicros(`${path}.windowMs`, o.windowMs);
    exactProduct(`${path}.maxKeys`, this.limit, this.maxKeys, 'limit × maxKeys ring entries');
    this.maxCost = this.limit;
  }

  protected grow(capacity: number): void {
    const times = new Float64Array(capacity * this.limit);
    times.set(this.#times);
    this.#times = times;
    const head = new Uint32Array(capacity);
    head.set(this.#head);
    this.#head = head;
  }

  protected initSlot(slot: number): void {
    this.#times.fill(-Infinity, slot * this.limit, (slot + 1) * this.limit);
    this.#head[slot] = 0;
  }

  #newest(slot: number): number {
    const h = this.#head[slot]!;
    return this.#times[slot * this.limit + (h === 0 ? this.limit - 1 : h - 1)]!;
  }

  protected freshAtUs(slot: number): number {
    return this.#newest(slot) + this.windowUs;
  }

  waitSlot(slot: number, cost: number, nowUs: number): number {
    if (cost === 0) return 0;
    const t = this.#times[slot * this.limit + ((this.#head[slot]! + cost - 1) % this.limit)]!;
    const wait = t + this.windowUs - nowUs;
    return Math.max(wait, 0);
  }

  takeSlot(slot: number, cost: number, nowUs: number): void {
    // Keep the ring sorted even if a caller's time steps back.
    const t = Math.max(nowUs, this.#newest(slot));
    const base = slot * this.limit;
    let h = this.#head[slot]!;
    for (let i = 0; i < cost; i++) {
      this.#times[base + h] = t;
      h = h + 1 === this.limit ? 0 : h + 1;
    }
    this.#head[slot] = h;
  }

  /** Units that have left the window (the ring is sorted oldest first): binary search. */
  remainingSlot(slot: number, nowUs: number): number {
    const base = slot * this.limit;
    const h = this.#head[slot]!;
    let lo = 0;
    let hi = this.limit;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#times[base + ((h + mid) % this.limit)]! + this.windowUs <= nowUs) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  resetAfterUsSlot(slot: number, nowUs: number): number {
    return Math.max(0, this.#newest(slot) + this.windowUs - nowUs);
  }
}
