import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CanonicalWriter, encodeCanonical } from '../src/runtime/canonical.js';
import {
  encodeReceiptBody,
  type ReceiptBody,
  sealReceipt,
  sealReceiptInPlace,
} from '../src/runtime/receipt.js';

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const count = fc.oneof(fc.nat(), fc.constant(-0), fc.integer({ min: 2 ** 32, max: Number.MAX_SAFE_INTEGER }));
/** Every msgpack number form: fixints, (u)int8/16/32 both sides of each boundary, float64. */
const anyNumber = fc.oneof(
  fc.integer({ min: -40, max: 300 }),
  fc.constantFrom(
    127,
    128,
    255,
    256,
    65535,
    65536,
    2 ** 32 - 1,
    2 ** 32,
    -32,
    -33,
    -128,
    -129,
    -32768,
    -32769,
  ),
  fc.constantFrom(-(2 ** 31), -(2 ** 31) - 1, 2 ** 31 - 1, 2 ** 31, Number.MAX_SAFE_INTEGER, -0),
  fc.integer(),
  fc.double({ noNaN: true }),
);
/** ASCII, multi-byte, astral and lone-surrogate strings, short and past the str8/str16 headers. */
const anyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ minLength: 30, maxLength: 300 }),
  fc.constantFrom(
    'é',
    '\u{1F600}',
    '\ud800',
    'x'.repeat(31),
    'x'.repeat(32),
    'x'.repeat(255),
    'x'.repeat(256),
  ),
  fc.constant('y'.repeat(70_000)),
);
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });
const ref = fc.record({ hash: maybe(hex64), size: count });
const limits = fc.record(
  {
    timeoutMs: fc.integer({ min: 1 }),
    memoryMb: fc.integer({ min: 1 }),
    fuel: fc.integer({ min: 1 }),
    callDepth: fc.integer({ min: 1 }),
    maxInputBytes: fc.nat(),
    maxOutputBytes: fc.nat(),
  },
  { requiredKeys: ['timeoutMs', 'memoryMb', 'maxInputBytes', 'maxOutputBytes'] },
);

const unattributed: fc.Arbitrary<ReceiptBody> = fc.record({
  v: fc.constant(1 as const),
  buildId: hex64,
  backend: fc.constantFrom('wasm', 'onnx', 'ebpf', 'p4'),
  entry: anyString,
  input: ref,
  output: maybe(ref),
  startedAt: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  durationNs: fc.oneof(count, anyNumber),
  resources: fc.record({
    cpuUs: maybe(fc.oneof(count, anyNumber)),
    peakMemoryBytes: maybe(count),
    fuelUsed: maybe(count),
    engineNs: maybe(count),
  }),
  sandbox: fc.record({
    limits,
    fs: fc.oneof(
      fc.constant({ kind: 'none' as const }),
      fc.record({ kind: fc.constant('read-only' as const), dir: fc.string() }),
    ),
    allowedImports: fc.array(anyString, { maxLength: 3 }),
    network: fc.constant(false as const),
  }),
  determinism: fc.record({ seed: fc.integer(), flags: fc.array(fc.string()) }),
  runtime: fc.dictionary(fc.string(), fc.string()),
  status: fc.constantFrom('completed' as const, 'failed' as const),
  error: maybe(
    fc.record(
      {
        code: fc.string(),
        message: anyString,
        limit: fc.constantFrom('timeoutMs' as const, 'fuel' as const),
      },
      { requiredKeys: ['code', 'message'] },
    ),
  ),
  parents: fc.oneof(fc.array(hex64, { maxLength: 3 }), fc.array(hex64, { minLength: 15, maxLength: 20 })),
});
/** Bodies with and without `actor` / `requestId` / `signer` (each absent, or any string). */
const body: fc.Arbitrary<ReceiptBody> = fc
  .tuple(
    unattributed,
    fc.option(anyString, { nil: undefined }),
    fc.option(anyString, { nil: undefined }),
    fc.option(anyString, { nil: undefined }),
  )
  .map(([b, actor, requestId, signer]) => ({
    ...b,
    ...(actor === undefined ? {} : { actor }),
    ...(requestId === undefined ? {} : { requestId }),
    ...(signer === undefined ? {} : { signer }),
  }));

describe('the hot-path receipt encoder', () => {
  it('gives exactly the bytes of the generic canonical encoding', () => {
    fc.assert(
      fc.property(body, (b) => {
        expect(Buffer.from(encodeReceiptBody(b)).equals(Buffer.from(encodeCanonical(b)))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('seals in place (the hot path) to the same receipt as the generic sealReceipt', () => {
    fc.assert(
      fc.property(body, (b) => {
        const frozen = {
          ...b,
          sandbox: Object.freeze({ ...b.sandbox }),
          runtime: Object.freeze({ ...b.runtime }),
        };
        expect(sealReceiptInPlace(frozen)).toEqual(sealReceipt(b));
        expect(sealReceiptInPlace(b)).toEqual(sealReceipt(b));
      }),
      { numRuns: 200 },
    );
  });

  it('gives the same bytes for frozen (memoized) parts as for fresh ones', () => {
    fc.assert(
      fc.property(body, (b) => {
        const frozen = {
          ...b,
          sandbox: Object.freeze({ ...b.sandbox }),
          determinism: Object.freeze({ ...b.determinism }),
        };
        expect(Buffer.from(encodeReceiptBody(frozen)).equals(Buffer.from(encodeCanonical(b)))).toBe(true);
        expect(Buffer.from(encodeReceiptBody(frozen)).equals(Buffer.from(encodeCanonical(b)))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

describe('the canonical writer under it', () => {
  const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

  it('writes every number and string exactly as the generic encoder does', () => {
    const w = new CanonicalWriter();
    fc.assert(
      fc.property(anyNumber, anyString, (n, s) => {
        w.reset();
        w.num(n);
        expect(same(w.view(), encodeCanonical(n))).toBe(true);
        w.reset();
        w.str(s);
        expect(same(w.view(), encodeCanonical(s))).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('writes map and array headers of every size class, and grows its buffer past any record', () => {
    const w = new CanonicalWriter();
    for (const n of [0, 15, 16, 65535, 65536]) {
      const arr = Array.from({ length: n }, (_, i) => i & 0x7f);
      w.reset();
      w.array(n);
      for (const x of arr) w.num(x);
      expect(same(w.copy(), encodeCanonical(arr))).toBe(true);
      const obj = Object.fromEntries(arr.map((_, i) => [`k${String(i).padStart(6, '0')}`, null]));
      w.reset();
      w.map(n);
      for (const k of Object.keys(obj).sort()) {
        w.str(k);
        w.nil();
      }
      expect(same(w.copy(), encodeCanonical(obj))).toBe(true);
    }
  });

  it('re-encodes an object that is not frozen, since it may have changed', () => {
    const w = new CanonicalWriter();
    const o: Record<string, number> = { a: 1 };
    w.frozen(o);
    o.a = 2;
    w.reset();
    w.frozen(o);
    expect(same(w.view(), encodeCanonical({ a: 2 }))).toBe(true);
  });

  it('refuses NaN in a receipt number with a TypeError naming the field', () => {
    fc.assert(
      fc.property(body, (b) => {
        expect(() => encodeReceiptBody({ ...b, durationNs: Number.NaN })).toThrow(/durationNs/);
        expect(() =>
          encodeReceiptBody({ ...b, resources: { ...b.resources, fuelUsed: Number.NaN } }),
        ).toThrow(/fuelUsed/);
      }),
      { numRuns: 20 },
    );
  });
});
