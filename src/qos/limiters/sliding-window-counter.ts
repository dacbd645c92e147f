/**
 * The approximate sliding window of two fixed windows (Cloudflare's): windows of `windowMs`
 * aligned to the clock's zero; per key the count of the current and the previous window. At
 * e µs into the current window, the estimate is prev × (W − e) / W + curr: the previous
 * window's count weighted by how much of it the sliding window still covers, as if its
 * requests had been spread evenly. A cost n is admitted iff estimate + n ≤ limit, compared in
 * integers (prev × (W − e) + (curr + n) × W ≤ limit × W): 3 numbers per key, no rounding.
 *
 * The approximation, bounded (and tested):
 * - every aligned window admits at most `limit` (curr never passes it);
 * - any sliding window of length W admits at most 2 × limit: it spans the tail of one aligned
 *   window and the head of the next, each ≤ limit. Nearly reached: `limit` packed at the end
 *   of one window, then as that window's weight fades the next admits up to limit × e / W;
 * - it never refuses a cost n while the two aligned windows together hold ≤ limit − n
 *   (refusal needs prev + curr + n > limit), so a false refusal needs traffic the exact log
 *   would also see within the last 2 W.
 * The exact limiter is SlidingWindowLogLimiter (memory limit × 8 bytes per key; this one 24).
 */

import { type KeyStoreOptions, KeyedLimiter } from './keyed-limiter.js';
import type { SlidingWindowOptions } from './sliding-window-log.js';
import { clockOption, durationMicros, exactProduct, object, positiveInteger } from './validate.js';

export type { SlidingWindowOptions };

export class SlidingWindowCounterLimiter extends KeyedLimiter {
  readonly limit: number;
  readonly maxCost: number;
  readonly windowUs: number;
  readonly #limitScaled: number;
  #window = new Float64Array(0);
  #prev = new Float64Array(0);
  #curr = new Float64Array(0);

  constructor(options: SlidingWindowOptions & KeyStoreOptions, path = 'slidingWindowCounter') {
    const o = object(path, options);
    super(clockOption(`${path}.clock`, o.clock), options, path);
    this.limit = positiveInteger(`${path}.limit`, o.limit);
    this.windowUs = durationMicros(`${path}.windowMs`, o.windowMs);
    this.#limitScaled = exactProduct(`${path}.limit`, this.limit, this.windowUs, 'limit × windowMs in µs');
    this.maxCost = this.limit;
  }

  protected grow(capacity: number): void {
    for (const name of ['window', 'prev', 'curr'] as const) {
      const next = new Float64Array(capacity);
      if (name === 'window') {
        next.set(this.#window);
        this.#window = next;
      } else if (name === 'prev') {
        next.set(this.#prev);
        this.#prev = next;
      } else {
        next.set(this.#curr);
        this.#curr = next;
      }
    }
  }

  protected initSlot(slot: number, nowUs: number): void {
    this.#window[slot] = Math.floor(nowUs / this.windowUs);
    this.#prev[slot] = 0;
    this.#curr[slot] = 0;
  }

  protected freshAtUs(slot: number): number {
    const w = this.#window[slot]!;
    if (this.#curr[slot]! > 0) return (w + 2) * this.windowUs;
    if (this.#prev[slot]! > 0) return (w + 1) * this.windowUs;
    return -Infinity;
  }

  /** Move the slot to nowUs's window (a step back in time keeps the newer window). */
  #roll(slot: number, nowUs: number): number {
    const idx = Math.floor(nowUs / this.windowUs);
    const w = this.#window[slot]!;
    if (idx <= w) return w;
    this.#prev[slot] = idx === w + 1 ? this.#curr[slot]! : 0;
    this.#curr[slot] = 0;
    this.#window[slot] = idx;
    return idx;
  }

  waitSlot(slot: number, cost: number, nowUs: number): number {
    const W = this.windowUs;
    const idx = Math.floor(nowUs / W);
    const w = this.#window[slot]!;
    let prev: number;
    let curr: number;
    let e: number;
    if (idx <= w) {
      prev = this.#prev[slot]!;
      curr = this.#curr[slot]!;
      e = Math.max(0, nowUs - w * W);
    } else {
      prev = idx === w + 1 ? this.#curr[slot]! : 0;
      curr = 0;
      e = nowUs - idx * W;
    }
    const room = this.#limitScaled - (curr + cost) * W; // what prev × (W − e) may use
    if (room >= prev * (W - e)) return 0;
    if (room >= 0) {
      // Later in this window the previous one weighs less: the first e' with prev·(W−e') ≤ room.
      const at = W - Math.floor(room / prev);
      if (at < W) return at - e;
    }
    // From the next window: prev' = curr, curr' = 0.
    const roomNext = this.#limitScaled - cost * W;
    const atNext = curr === 0 ? 0 : Math.max(0, W - Math.floor(roomNext / curr));
    return W - e + atNext;
  }

  takeSlot(slot: number, cost: number, nowUs: number): void {
    this.#roll(slot, nowUs);
    this.#curr[slot] = this.#curr[slot]! + cost;
  }

  remainingSlot(slot: number, nowUs: number): number {
    const idx = this.#roll(slot, nowUs);
    const e = Math.max(0, nowUs - idx * this.windowUs);
    const room = this.#limitScaled - this.#prev[slot]! * (this.windowUs - e);
    return Math.max(0, Math.floor(room / this.windowUs) - this.#curr[slot]!);
  }

  resetAfterUsSlot(slot: number, nowUs: number): number {
    return Math.max(0, this.freshAtUs(slot) - nowUs);
  }
}
