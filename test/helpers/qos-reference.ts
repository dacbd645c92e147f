/**
 * Simple exact reference models for the limiters' property tests: BigInt arithmetic, the
 * definitions written the plainest way (no typed arrays, no eviction, no scaling tricks).
 */

/** A token bucket of `size` tokens refilled continuously at `tokens` per `intervalUs`. */
export class ReferenceBucket {
  readonly #size: bigint;
  readonly #tokens: bigint;
  readonly #interval: bigint;
  /** Tokens × interval (so a refill of `tokens` per µs is an integer). */
  #units: bigint;
  #last: bigint | null = null;

  constructor(size: number, tokens: number, intervalUs: number) {
    this.#size = BigInt(size);
    this.#tokens = BigInt(tokens);
    this.#interval = BigInt(intervalUs);
    this.#units = this.#size * this.#interval;
  }

  #refill(t: bigint): void {
    if (this.#last === null) this.#last = t;
    if (t > this.#last) {
      const full = this.#size * this.#interval;
      this.#units += (t - this.#last) * this.#tokens;
      if (this.#units > full) this.#units = full;
      this.#last = t;
    }
  }

  /** Would `cost` be admitted at t (no state change beyond the refill, which is neutral)? */
  fits(tUs: number, cost: number): boolean {
    this.#refill(BigInt(tUs));
    return this.#units >= BigInt(cost) * this.#interval;
  }

  take(tUs: number, cost: number): void {
    this.#refill(BigInt(tUs));
    this.#units -= BigInt(cost) * this.#interval;
  }

  decide(tUs: number, cost: number): boolean {
    if (!this.fits(tUs, cost)) return false;
    this.take(tUs, cost);
    return true;
  }
}

/** At most `limit` units in any window [t − window, t) … counted as t' with t' + window > t. */
export class ReferenceWindowLog {
  readonly #events: { t: number; cost: number }[] = [];
  constructor(
    readonly limit: number,
    readonly windowUs: number,
  ) {}

  inWindow(tUs: number): number {
    let n = 0;
    for (const e of this.#events) if (e.t + this.windowUs > tUs) n += e.cost;
    return n;
  }

  fits(tUs: number, cost: number): boolean {
    return this.inWindow(tUs) + cost <= this.limit;
  }

  take(tUs: number, cost: number): void {
    this.#events.push({ t: tUs, cost });
  }

  decide(tUs: number, cost: number): boolean {
    if (!this.fits(tUs, cost)) return false;
    this.take(tUs, cost);
    return true;
  }
}

/** Cloudflare's estimate from the list of admitted events, in exact rationals (BigInt). */
export class ReferenceTwoWindow {
  readonly #events: { t: number; cost: number }[] = [];
  constructor(
    readonly limit: number,
    readonly windowUs: number,
  ) {}

  counts(tUs: number): { prev: number; curr: number; e: number } {
    const idx = Math.floor(tUs / this.windowUs);
    let prev = 0;
    let curr = 0;
    for (const ev of this.#events) {
      const w = Math.floor(ev.t / this.windowUs);
      if (w === idx) curr += ev.cost;
      else if (w === idx - 1) prev += ev.cost;
    }
    return { prev, curr, e: tUs - idx * this.windowUs };
  }

  fits(tUs: number, cost: number): boolean {
    const { prev, curr, e } = this.counts(tUs);
    const W = BigInt(this.windowUs);
    return BigInt(prev) * (W - BigInt(e)) + BigInt(curr + cost) * W <= BigInt(this.limit) * W;
  }

  take(tUs: number, cost: number): void {
    this.#events.push({ t: tUs, cost });
  }

  decide(tUs: number, cost: number): boolean {
    if (!this.fits(tUs, cost)) return false;
    this.take(tUs, cost);
    return true;
  }
}

/** Admitted units in every window [s, s + lengthUs) that starts at an admitted event. */
export function maxInAnyWindow(admitted: readonly { t: number; cost: number }[], lengthUs: number): number {
  let max = 0;
  for (let i = 0; i < admitted.length; i++) {
    let n = 0;
    for (let j = i; j < admitted.length && admitted[j]!.t < admitted[i]!.t + lengthUs; j++)
      n += admitted[j]!.cost;
    if (n > max) max = n;
  }
  return max;
}
