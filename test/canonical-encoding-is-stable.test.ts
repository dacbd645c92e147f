import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalDigest, decodeCanonical, encodeCanonical } from '../src/runtime/canonical.js';

function shuffleKeys(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v, seed));
  if (value && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    const keys = Object.keys(value);
    const rotated = keys
      .slice(seed % Math.max(keys.length, 1))
      .concat(keys.slice(0, seed % Math.max(keys.length, 1)))
      .reverse();
    const out: Record<string, unknown> = {};
    for (const k of rotated) out[k] = shuffleKeys((value as Record<string, unknown>)[k], seed);
    return out;
  }
  return value;
}

const json = fc.jsonValue().filter((v) => !JSON.stringify(v).includes('-0'));

describe('canonical encoding', () => {
  it('does not depend on key insertion order', () => {
    fc.assert(
      fc.property(json, fc.nat(), (value, seed) => {
        expect(canonicalDigest(shuffleKeys(value, seed))).toBe(canonicalDigest(value));
      }),
    );
  });

  it('round-trips to a value with the same digest', () => {
    fc.assert(
      fc.property(json, (value) => {
        expect(canonicalDigest(decodeCanonical(encodeCanonical(value)))).toBe(canonicalDigest(value));
      }),
    );
  });

  it('drops undefined fields, folds -0 into 0 and refuses NaN with its path', () => {
    expect(canonicalDigest({ a: 1, b: undefined })).toBe(canonicalDigest({ a: 1 }));
    expect(canonicalDigest({ x: -0 })).toBe(canonicalDigest({ x: 0 }));
    expect(() => encodeCanonical({ a: [1, Number.NaN] })).toThrow('$.a[1]: NaN');
  });

  it('encodes binary data as bytes, not as an object of indices', () => {
    const bytes = encodeCanonical({ b: new Uint8Array([1, 2, 3]) });
    expect(bytes.byteLength).toBeLessThan(10);
  });
});
