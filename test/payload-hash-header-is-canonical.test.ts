import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCanonical, packCanonical } from '../src/runtime/canonical.js';
import { decodePayload, encodePayload, hashPayload, payloadHeader } from '../src/runtime/payload.js';
import type { Input, Output } from '../src/runtime/types.js';

const bytes = fc.uint8Array({ maxLength: 64 });
const payload: fc.Arbitrary<Input | Output> = fc.oneof(
  bytes.map((b) => ({ kind: 'bytes' as const, bytes: b })),
  fc.record({ kind: fc.constant('packet' as const), bytes, ingressPort: fc.nat(511) }),
  fc.record({
    kind: fc.constant('packet' as const),
    verdict: fc.string(),
    retval: fc.integer(),
    packets: fc.array(fc.record({ port: fc.nat(511), bytes }), { maxLength: 3 }),
  }),
  fc
    .dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.float32Array({ maxLength: 6 }), { maxKeys: 3 })
    .map((d) => ({
      kind: 'tensors' as const,
      tensors: Object.fromEntries(
        Object.entries(d).map(([k, v]) => [k, { dtype: 'float32' as const, shape: [v.length], data: v }]),
      ),
    })),
);

describe('payload hashing', () => {
  it('packs headers exactly as the canonical encoder would', () => {
    fc.assert(
      fc.property(payload, (p) => {
        const h = payloadHeader(p);
        expect(Buffer.from(packCanonical(h)).equals(Buffer.from(encodeCanonical(h)))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('a payload decoded from its stored form hashes the same', () => {
    fc.assert(
      fc.property(payload, (p) => {
        expect(hashPayload(decodePayload(encodePayload(p)))).toBe(hashPayload(p));
      }),
      { numRuns: 300 },
    );
  });

  it('distinguishes kind, port and data', () => {
    const b = new Uint8Array([1, 2, 3]);
    const hashes = new Set([
      hashPayload({ kind: 'bytes', bytes: b }),
      hashPayload({ kind: 'packet', bytes: b }),
      hashPayload({ kind: 'packet', bytes: b, ingressPort: 1 }),
      hashPayload({ kind: 'bytes', bytes: new Uint8Array([1, 2, 4]) }),
    ]);
    expect(hashes.size).toBe(4);
  });
});
