/**
 * A seeded generator (mulberry32) for model weights and fixed test inputs. Not Math.random:
 * the same seed must give the same floats on every machine, so models and equivalence inputs
 * are reproducible byte for byte.
 */

export class SeededRandom {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Uniform in [0, 1), 2^-32 resolution. */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Approximately normal (sum of 4 uniforms): enough for weights, and cheap to reproduce. */
  normal(mean = 0, std = 1): number {
    const s = this.next() + this.next() + this.next() + this.next() - 2;
    return mean + std * s * Math.sqrt(3);
  }

  floats(n: number, lo: number, hi: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(lo, hi);
    return out;
  }
}
