/**
 * The deterministic random stream of WASI guests (preview 1 `random_get`, preview 2
 * `wasi:random/*`): xoshiro128** whose state splitmix32 fills from the sandbox's
 * `determinism.seed` (recorded in every receipt). Not cryptographic, on purpose: a replay must
 * draw the same bytes.
 *
 * Stringified into the worker script beside wasi.ts (see worker.ts): it must stay
 * self-contained. Callers hand the stream to createWasi rather than createWasi calling this by
 * name, since a bundler may rename imported bindings inside function bodies.
 */

export interface SeededRandom {
  /** Back to the start of the stream (every execution starts there). */
  reset(): void;
  /** Fill `out` with the next bytes of the stream. */
  fill(out: Uint8Array): void;
}

export function createSeededRandom(seed: number): SeededRandom {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const reset = (): void => {
    // splitmix32 over the seed's two 32-bit halves fills xoshiro128**'s state.
    let z = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) | 0;
    const mix = (): number => {
      z = (z + 0x9e3779b9) | 0;
      let t = z ^ (z >>> 16);
      t = Math.imul(t, 0x21f0aaad);
      t ^= t >>> 15;
      t = Math.imul(t, 0x735a2d97);
      return (t ^ (t >>> 15)) >>> 0;
    };
    s0 = mix();
    z ^= hi;
    s1 = mix();
    s2 = mix();
    s3 = mix() | 1;
  };
  const next = (): number => {
    const x = Math.imul(s1, 5);
    const r = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    return r;
  };
  reset();
  return {
    reset,
    fill(b) {
      for (let i = 0; i < b.byteLength; i += 4) {
        let r = next();
        for (let k = i; k < Math.min(i + 4, b.byteLength); k++) {
          b[k] = r & 0xff;
          r >>>= 8;
        }
      }
    },
  };
}
