/**
 * GCRA (generic cell rate algorithm, virtual scheduling): each key stores a theoretical arrival
 * time (TAT). With emission interval T = periodMs / limit and `burst` requests of tolerance, a
 * request of cost n at time t is admitted iff max(TAT, t) + n·T − t ≤ burst·T; then TAT becomes
 * max(TAT, t) + n·T. It admits exactly what a token bucket of size `burst` refilled at
 * limit/period admits, with one time per key instead of tokens and a timestamp.
 *
 * Exact: T is rarely a whole number of microseconds (7 per second: 142857.142857… µs), so TAT
 * is kept as a whole µs plus a remainder in 1/limit µs (two integers per key); adding n·T is
 * integer division with carry. Nothing rounds, so a long run cannot drift past the rate.
 */

import type { Clock } from '../clock.js';
import { type KeyStoreOptions, KeyedLimiter } from './keyed-limiter.js';
import { clockOption, durationMicros, exactProduct, object, positiveInteger } from './validate.js';

export interface GcraOptions extends KeyStoreOptions {
  /** Requests per period (the sustained rate). */
  readonly limit: number;
  readonly periodMs: number;
  /** Requests admissible at once (tolerance τ = burst·T); default `limit`. */
  readonly burst?: number;
  readonly clock: Clock;
}

export class GcraLimiter extends KeyedLimiter {
  readonly limit: number;
  readonly maxCost: number;
  readonly rate: number;
  readonly burst: number;
  readonly periodUs: number;
  /** Emission interval T = periodUs / rate, as a whole part and a remainder in 1/rate µs. */
  readonly #intervalWholeUs: number;
  readonly #intervalRemainder: number;
  /** burst·T in 1/rate µs (= burst × periodUs). */
  readonly #toleranceScaled: number;
  /** TAT per slot: whole µs, and the remainder in [0, rate) of 1/rate µs. */
  /** Side by side (one cache line at 1M keys): [2·slot] whole µs, [2·slot + 1] remainder. */
  #tat = new Float64Array(0);

  constructor(options: GcraOptions, path = 'gcra') {
    const o = object(path, options);
    super(clockOption(`${path}.clock`, o.clock), options, path);
    this.rate = positiveInteger(`${path}.limit`, o.limit);
    this.periodUs = durationMicros(`${path}.periodMs`, o.periodMs);
    this.burst = positiveInteger(`${path}.burst`, o.burst ?? this.rate);
    this.#toleranceScaled = exactProduct(
      `${path}.burst`,
      this.burst,
      this.periodUs,
      'burst × periodMs in µs',
    );
    exactProduct(`${path}.limit`, this.rate, this.periodUs, 'limit × periodMs in µs');
    this.#intervalWholeUs = Math.floor(this.periodUs / this.rate);
    this.#intervalRemainder = this.periodUs % this.rate;
    this.limit = this.burst;
    this.maxCost = this.burst;
  }

  protected grow(capacity: number): void {
    const tat = new Float64Array(capacity * 2);
    tat.set(this.#tat);
    this.#tat = tat;
  }

  protected initSlot(slot: number, nowUs: number): void {
    this.#tat[2 * slot] = nowUs;
    this.#tat[2 * slot + 1] = 0;
  }

  protected freshAtUs(slot: number): number {
    // TAT ≤ now means no debt: the state of a new key.
    return this.#tat[2 * slot]! + (this.#tat[2 * slot + 1]! > 0 ? 1 : 0);
  }

  /** max(TAT − now, 0) in 1/rate µs; bounded by burst × periodUs, so exact. */
  #debtScaled(slot: number, nowUs: number): number {
    const ahead = this.#tat[2 * slot]! - nowUs;
    if (ahead < 0) return 0;
    return ahead * this.rate + this.#tat[2 * slot + 1]!;
  }

  waitSlot(slot: number, cost: number, nowUs: number): number {
    const over = this.#debtScaled(slot, nowUs) + cost * this.periodUs - this.#toleranceScaled;
    return over <= 0 ? 0 : Math.ceil(over / this.rate);
  }

  takeSlot(slot: number, cost: number, nowUs: number): void {
    let whole: number;
    let frac: number;
    if (this.#tat[2 * slot]! < nowUs || (this.#tat[2 * slot] === nowUs && this.#tat[2 * slot + 1] === 0)) {
      whole = nowUs;
      frac = 0;
    } else {
      whole = this.#tat[2 * slot]!;
      frac = this.#tat[2 * slot + 1]!;
    }
    frac += cost * this.#intervalRemainder;
    const carry = Math.floor(frac / this.rate);
    this.#tat[2 * slot] = whole + cost * this.#intervalWholeUs + carry;
    this.#tat[2 * slot + 1] = frac - carry * this.rate;
  }

  remainingSlot(slot: number, nowUs: number): number {
    return Math.floor((this.#toleranceScaled - this.#debtScaled(slot, nowUs)) / this.periodUs);
  }

  resetAfterUsSlot(slot: number, nowUs: number): number {
    return Math.ceil(this.#debtScaled(slot, nowUs) / this.rate);
  }

  /** Fused hot path: one Map lookup, the debt, compare, advance TAT. */
  override acquireAt(key: string, cost: number, nowUs: number): number {
    if (!(key?.length > 0 && key.length <= this.maxKeyLength)) this.validateKey(key);
    if (cost !== 1) this.validateCost(cost);
    let slot = this.index.get(key);
    if (slot === undefined) {
      slot = this.slotFor(key, nowUs);
      if (slot < 0) return this.fullWaitUs(nowUs);
    }
    let whole = this.#tat[2 * slot]!;
    let frac = this.#tat[2 * slot + 1]!;
    const ahead = whole - nowUs;
    let debt = 0;
    if (ahead < 0 || (ahead === 0 && frac === 0)) {
      whole = nowUs;
      frac = 0;
    } else {
      debt = ahead * this.rate + frac;
    }
    const over = debt + cost * this.periodUs - this.#toleranceScaled;
    if (over > 0) return Math.ceil(over / this.rate);
    frac += cost * this.#intervalRemainder;
    if (frac >= this.rate) {
      const carry = Math.floor(frac / this.rate);
      whole += carry;
      frac -= carry * this.rate;
    }
    this.#tat[2 * slot] = whole + cost * this.#intervalWholeUs;
    this.#tat[2 * slot + 1] = frac;
    return 0;
  }
}
