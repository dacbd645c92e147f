/**
 * Token bucket, exact: a bucket of `bucketSize` tokens refilled with `refillTokens` every
 * `refillIntervalMs`, continuously (a fraction of a token accrues every microsecond).
 *
 * Integer arithmetic, no drift: one token is stored as `refillIntervalUs` units and every
 * microsecond adds `refillTokens` units, so the refill is a product of integers and a bucket
 * holds at most bucketSize × refillIntervalUs units (checked ≤ 2^53 at construction). Time is
 * integer µs (see clockMicros); elapsed times telescope, so over any run of any length the
 * tokens admitted in [s, t] never exceed bucketSize + ⌊(t − s) × refillTokens / refillIntervalUs⌋,
 * exactly the definition — no float round-off admits an extra request after a week.
 */

import type { Clock } from '../clock.js';
import { type KeyStoreOptions, KeyedLimiter } from './keyed-limiter.js';
import { clockOption, durationMicros, exactProduct, object, positiveInteger } from './validate.js';

export interface TokenBucketOptions extends KeyStoreOptions {
  /** Bucket size: the most tokens held, i.e. the largest burst (Envoy's max_tokens). */
  readonly bucketSize: number;
  /** Tokens added per interval (Envoy's tokens_per_fill). */
  readonly refillTokens: number;
  /** The interval, in ms (whole microseconds); the refill is continuous within it. */
  readonly refillIntervalMs: number;
  readonly clock: Clock;
}

export class TokenBucketLimiter extends KeyedLimiter {
  readonly limit: number;
  readonly maxCost: number;
  readonly bucketSize: number;
  readonly refillTokens: number;
  readonly refillIntervalUs: number;
  /** Units per token (= refillIntervalUs) and in a full bucket. */
  readonly #unitsPerToken: number;
  readonly #capacityUnits: number;
  /** µs after which any bucket is full again: ⌈capacityUnits / refillTokens⌉. */
  readonly #fillUs: number;
  /** Per slot, side by side (one cache line at 1M keys): [2·slot] units, [2·slot + 1] last µs. */
  #state = new Float64Array(0);

  constructor(options: TokenBucketOptions, path = 'tokenBucket') {
    const o = object(path, options);
    super(clockOption(`${path}.clock`, o.clock), options, path);
    this.bucketSize = positiveInteger(`${path}.bucketSize`, o.bucketSize);
    this.refillTokens = positiveInteger(`${path}.refillTokens`, o.refillTokens);
    this.refillIntervalUs = durationMicros(`${path}.refillIntervalMs`, o.refillIntervalMs);
    this.#unitsPerToken = this.refillIntervalUs;
    this.#capacityUnits = exactProduct(
      `${path}.bucketSize`,
      this.bucketSize,
      this.refillIntervalUs,
      'bucketSize × refillIntervalMs in µs',
    );
    exactProduct(
      `${path}.refillTokens`,
      this.refillTokens,
      this.refillIntervalUs,
      'refillTokens × refillIntervalMs in µs',
    );
    this.#fillUs = Math.ceil(this.#capacityUnits / this.refillTokens);
    this.limit = this.bucketSize;
    this.maxCost = this.bucketSize;
  }

  protected grow(capacity: number): void {
    const state = new Float64Array(capacity * 2);
    state.set(this.#state);
    this.#state = state;
  }

  protected initSlot(slot: number, nowUs: number): void {
    this.#state[2 * slot] = this.#capacityUnits;
    this.#state[2 * slot + 1] = nowUs;
  }

  protected freshAtUs(slot: number): number {
    return (
      this.#state[2 * slot + 1]! +
      Math.ceil((this.#capacityUnits - this.#state[2 * slot]!) / this.refillTokens)
    );
  }

  /** Units at nowUs (refilled, capped); never moves time backwards. */
  #unitsAt(slot: number, nowUs: number): number {
    const elapsed = nowUs - this.#state[2 * slot + 1]!;
    const units = this.#state[2 * slot]!;
    if (elapsed <= 0) return units;
    if (elapsed >= this.#fillUs) return this.#capacityUnits;
    // elapsed × refillTokens < capacityUnits + refillTokens: exact.
    return Math.min(this.#capacityUnits, units + elapsed * this.refillTokens);
  }

  waitSlot(slot: number, cost: number, nowUs: number): number {
    const missing = cost * this.#unitsPerToken - this.#unitsAt(slot, nowUs);
    return missing <= 0 ? 0 : Math.ceil(missing / this.refillTokens);
  }

  takeSlot(slot: number, cost: number, nowUs: number): void {
    const units = this.#unitsAt(slot, nowUs);
    this.#state[2 * slot] = units - cost * this.#unitsPerToken;
    if (nowUs > this.#state[2 * slot + 1]!) this.#state[2 * slot + 1] = nowUs;
  }

  remainingSlot(slot: number, nowUs: number): number {
    return Math.floor(this.#unitsAt(slot, nowUs) / this.#unitsPerToken);
  }

  resetAfterUsSlot(slot: number, nowUs: number): number {
    return Math.ceil((this.#capacityUnits - this.#unitsAt(slot, nowUs)) / this.refillTokens);
  }

  /** Fused hot path: one Map lookup, refill, compare, store. */
  override acquireAt(key: string, cost: number, nowUs: number): number {
    if (!(key?.length > 0 && key.length <= this.maxKeyLength)) this.validateKey(key);
    if (cost !== 1) this.validateCost(cost);
    let slot = this.index.get(key);
    if (slot === undefined) {
      slot = this.slotFor(key, nowUs);
      if (slot < 0) return this.fullWaitUs(nowUs);
    }
    const lastUs = this.#state[2 * slot + 1]!;
    let units = this.#state[2 * slot]!;
    const elapsed = nowUs - lastUs;
    if (elapsed > 0) {
      units =
        elapsed >= this.#fillUs
          ? this.#capacityUnits
          : Math.min(this.#capacityUnits, units + elapsed * this.refillTokens);
      this.#state[2 * slot + 1] = nowUs;
    }
    const need = cost * this.#unitsPerToken;
    if (units >= need) {
      this.#state[2 * slot] = units - need;
      return 0;
    }
    this.#state[2 * slot] = units;
    return Math.ceil((need - units) / this.refillTokens);
  }
}
