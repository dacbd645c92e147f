/**
 * Several token buckets on one key in one store (per second, per minute, per hour): the
 * composite's semantics — admitted only if every bucket holds the cost, a refusal takes from
 * none — with one Map lookup per check instead of one per limit. Each bucket is exact in the
 * same integer units as TokenBucketLimiter (see there); all buckets of a key are refilled to
 * the same time, so one timestamp per key serves them all.
 */

import type { Clock } from '../clock.js';
import type { Decision } from '../decision.js';
import { QosConfigError } from './errors.js';
import { type KeyStoreOptions, KeyedLimiter } from './keyed-limiter.js';
import { clockOption, durationMicros, exactProduct, object, positiveInteger } from './validate.js';

export interface BucketRate {
  readonly bucketSize: number;
  readonly refillTokens: number;
  readonly refillIntervalMs: number;
}

export interface MultiRateTokenBucketOptions extends KeyStoreOptions {
  readonly buckets: readonly BucketRate[];
  readonly clock: Clock;
}

/** Most buckets per key (a composite of more is a configuration mistake). */
export const MAX_BUCKETS_PER_KEY = 8;

export class MultiRateTokenBucketLimiter extends KeyedLimiter {
  /** The smallest bucket size (the Decision names the bucket that decided). */
  readonly limit: number;
  readonly maxCost: number;
  readonly bucketSizes: readonly number[];
  readonly #n: number;
  readonly #refill: Float64Array;
  readonly #unitsPerToken: Float64Array;
  readonly #capacityUnits: Float64Array;
  readonly #fillUs: Float64Array;
  #units = new Float64Array(0);
  #lastUs = new Float64Array(0);

  constructor(options: MultiRateTokenBucketOptions, path = 'multiRateTokenBucket') {
    const o = object(path, options);
    super(clockOption(`${path}.clock`, o.clock), options, path);
    const buckets = o.buckets;
    if (!Array.isArray(buckets) || buckets.length === 0 || buckets.length > MAX_BUCKETS_PER_KEY) {
      throw new QosConfigError(`${path}.buckets`, `1 to ${MAX_BUCKETS_PER_KEY} bucket rates`, buckets);
    }
    const n = buckets.length;
    this.#n = n;
    this.#refill = new Float64Array(n);
    this.#unitsPerToken = new Float64Array(n);
    this.#capacityUnits = new Float64Array(n);
    this.#fillUs = new Float64Array(n);
    const sizes: number[] = [];
    for (let j = 0; j < n; j++) {
      const p = `${path}.buckets[${j}]`;
      const b = object(p, buckets[j]);
      const size = positiveInteger(`${p}.bucketSize`, b.bucketSize);
      const refill = positiveInteger(`${p}.refillTokens`, b.refillTokens);
      const intervalUs = durationMicros(`${p}.refillIntervalMs`, b.refillIntervalMs);
      const cap = exactProduct(`${p}.bucketSize`, size, intervalUs, 'bucketSize × refillIntervalMs in µs');
      exactProduct(`${p}.refillTokens`, refill, intervalUs, 'refillTokens × refillIntervalMs in µs');
      sizes.push(size);
      this.#refill[j] = refill;
      this.#unitsPerToken[j] = intervalUs;
      this.#capacityUnits[j] = cap;
      this.#fillUs[j] = Math.ceil(cap / refill);
    }
    this.bucketSizes = sizes;
    this.limit = Math.min(...sizes);
    this.maxCost = this.limit;
  }

  protected grow(capacity: number): void {
    const units = new Float64Array(capacity * this.#n);
    units.set(this.#units);
    this.#units = units;
    const last = new Float64Array(capacity);
    last.set(this.#lastUs);
    this.#lastUs = last;
  }

  protected initSlot(slot: number, nowUs: number): void {
    for (let j = 0; j < this.#n; j++) this.#units[slot * this.#n + j] = this.#capacityUnits[j]!;
    this.#lastUs[slot] = nowUs;
  }

  protected freshAtUs(slot: number): number {
    let at = -Infinity;
    for (let j = 0; j < this.#n; j++) {
      const full = Math.ceil((this.#capacityUnits[j]! - this.#units[slot * this.#n + j]!) / this.#refill[j]!);
      if (full > at) at = full;
    }
    return this.#lastUs[slot]! + at;
  }

  /** Refill every bucket of the slot to nowUs (neutral: the same state, written down). */
  #refillTo(slot: number, nowUs: number): void {
    const elapsed = nowUs - this.#lastUs[slot]!;
    if (elapsed <= 0) return;
    const base = slot * this.#n;
    for (let j = 0; j < this.#n; j++) {
      const cap = this.#capacityUnits[j]!;
      this.#units[base + j] =
        elapsed >= this.#fillUs[j]!
          ? cap
          : Math.min(cap, this.#units[base + j]! + elapsed * this.#refill[j]!);
    }
    this.#lastUs[slot] = nowUs;
  }

  waitSlot(slot: number, cost: number, nowUs: number): number {
    this.#refillTo(slot, nowUs);
    let wait = 0;
    const base = slot * this.#n;
    for (let j = 0; j < this.#n; j++) {
      const missing = cost * this.#unitsPerToken[j]! - this.#units[base + j]!;
      if (missing > 0) wait = Math.max(wait, Math.ceil(missing / this.#refill[j]!));
    }
    return wait;
  }

  takeSlot(slot: number, cost: number, nowUs: number): void {
    this.#refillTo(slot, nowUs);
    const base = slot * this.#n;
    for (let j = 0; j < this.#n; j++)
      this.#units[base + j] = this.#units[base + j]! - cost * this.#unitsPerToken[j]!;
  }

  #tightest(slot: number, nowUs: number): number {
    this.#refillTo(slot, nowUs);
    let best = 0;
    let least = Infinity;
    for (let j = 0; j < this.#n; j++) {
      const r = Math.floor(this.#units[slot * this.#n + j]! / this.#unitsPerToken[j]!);
      if (r < least) {
        least = r;
        best = j;
      }
    }
    return best;
  }

  remainingSlot(slot: number, nowUs: number): number {
    const j = this.#tightest(slot, nowUs);
    return Math.floor(this.#units[slot * this.#n + j]! / this.#unitsPerToken[j]!);
  }

  resetAfterUsSlot(slot: number, nowUs: number): number {
    return Math.max(0, this.freshAtUs(slot) - nowUs);
  }

  /** Fused hot path: one lookup, refill all, admit only if all hold the cost. */
  override acquireAt(key: string, cost: number, nowUs: number): number {
    if (!(key?.length > 0 && key.length <= this.maxKeyLength)) this.validateKey(key);
    if (cost !== 1) this.validateCost(cost);
    let slot = this.index.get(key);
    if (slot === undefined) {
      slot = this.slotFor(key, nowUs);
      if (slot < 0) return this.fullWaitUs(nowUs);
    }
    const wait = this.waitSlot(slot, cost, nowUs);
    if (wait === 0) {
      const base = slot * this.#n;
      for (let j = 0; j < this.#n; j++)
        this.#units[base + j] = this.#units[base + j]! - cost * this.#unitsPerToken[j]!;
    }
    return wait;
  }

  /** The Decision names the bucket with the least remaining. */
  override checkAt(key: string, cost: number, nowUs: number): Decision {
    const d = super.checkAt(key, cost, nowUs);
    const slot = this.index.get(key);
    if (slot === undefined) return d;
    return { ...d, limit: this.bucketSizes[this.#tightest(slot, nowUs)]! };
  }
}
