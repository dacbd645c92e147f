import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCanonical } from '../src/runtime/canonical.js';
import { encodeReceiptBody, type ReceiptBody } from '../src/runtime/receipt.js';

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const count = fc.oneof(fc.nat(), fc.constant(-0), fc.integer({ min: 2 ** 32, max: Number.MAX_SAFE_INTEGER }));
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

const body: fc.Arbitrary<ReceiptBody> = fc.record({
  v: fc.constant(1 as const),
  buildId: hex64,
  backend: fc.constantFrom('wasm', 'onnx', 'ebpf', 'p4'),
  entry: fc.string(),
  input: ref,
  output: maybe(ref),
  startedAt: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  durationNs: count,
  resources: fc.record({
    cpuUs: maybe(count),
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
    allowedImports: fc.array(fc.string()),
    network: fc.constant(false as const),
  }),
  determinism: fc.record({ seed: fc.integer(), flags: fc.array(fc.string()) }),
  runtime: fc.dictionary(fc.string(), fc.string()),
  status: fc.constantFrom('completed' as const, 'failed' as const),
  error: maybe(
    fc.record(
      {
        code: fc.string(),
        message: fc.string(),
        limit: fc.constantFrom('timeoutMs' as const, 'fuel' as const),
      },
      { requiredKeys: ['code', 'message'] },
    ),
  ),
  parents: fc.array(hex64, { maxLength: 3 }),
});

describe('the hot-path receipt encoder', () => {
  it('gives exactly the bytes of the generic canonical encoding', () => {
    fc.assert(
      fc.property(body, (b) => {
        expect(Buffer.from(encodeReceiptBody(b)).equals(Buffer.from(encodeCanonical(b)))).toBe(true);
      }),
      { numRuns: 500 },
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
