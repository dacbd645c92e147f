import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError, type ValidationErrorKind } from '../src/runtime/errors.js';
import { assertSchema, validateInput, validateOutput } from '../src/runtime/schema.js';
import type { Schema } from '../src/runtime/types.js';

const image: Schema = {
  kind: 'tensors',
  tensors: {
    image: { dtype: 'float32', shape: ['N', 3, 2, 2], min: 0, max: 1 },
    mask: { dtype: 'uint8', shape: ['N'], maxBytes: 8 },
  },
};

function tensors(n: number, fill = 0.5) {
  return {
    kind: 'tensors' as const,
    tensors: {
      image: { dtype: 'float32' as const, shape: [n, 3, 2, 2], data: new Float32Array(n * 12).fill(fill) },
      mask: { dtype: 'uint8' as const, shape: [n], data: new Uint8Array(n) },
    },
  };
}

function failure(fn: () => void): ValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('validation errors carry kind, field path, expectation and finding', () => {
  it('accepts a well-formed input', () => {
    expect(() => validateInput(image, tensors(2))).not.toThrow();
    expect(() =>
      validateInput({ kind: 'bytes', maxBytes: 4 }, { kind: 'bytes', bytes: new Uint8Array(4) }),
    ).not.toThrow();
  });

  const cases: [ValidationErrorKind, string, Schema, unknown][] = [
    ['type', 'input', { kind: 'bytes' }, 42],
    ['type', 'input.kind', { kind: 'bytes' }, { kind: 'tensors', tensors: {} }],
    ['type', 'input.bytes', { kind: 'bytes' }, { kind: 'bytes', bytes: 'abc' }],
    ['size', 'input.bytes', { kind: 'bytes', maxBytes: 3 }, { kind: 'bytes', bytes: new Uint8Array(4) }],
    ['size', 'input.bytes', { kind: 'packet', minBytes: 14 }, { kind: 'packet', bytes: new Uint8Array(10) }],
    [
      'range',
      'input.ingressPort',
      { kind: 'packet', maxPort: 3 },
      { kind: 'packet', bytes: new Uint8Array(60), ingressPort: 4 },
    ],
    [
      'missing',
      'input.tensors.mask',
      image,
      { kind: 'tensors', tensors: { image: tensors(1).tensors.image } },
    ],
    [
      'unexpected',
      'input.tensors.extra',
      image,
      { kind: 'tensors', tensors: { ...tensors(1).tensors, extra: tensors(1).tensors.mask } },
    ],
    [
      'dtype',
      'input.tensors.image.dtype',
      image,
      {
        kind: 'tensors',
        tensors: { ...tensors(1).tensors, image: { ...tensors(1).tensors.image, dtype: 'float64' } },
      },
    ],
    [
      'type',
      'input.tensors.image.data',
      image,
      {
        kind: 'tensors',
        tensors: {
          ...tensors(1).tensors,
          image: { ...tensors(1).tensors.image, data: new Float64Array(12) },
        },
      },
    ],
    [
      'rank',
      'input.tensors.image.shape',
      image,
      {
        kind: 'tensors',
        tensors: { ...tensors(1).tensors, image: { ...tensors(1).tensors.image, shape: [1, 3, 4] } },
      },
    ],
    [
      'dim',
      'input.tensors.image.shape[1]',
      image,
      {
        kind: 'tensors',
        tensors: { ...tensors(1).tensors, image: { ...tensors(1).tensors.image, shape: [1, 4, 2, 2] } },
      },
    ],
    [
      'dim-binding',
      'input.tensors.mask.shape[0]',
      image,
      { kind: 'tensors', tensors: { image: tensors(2).tensors.image, mask: tensors(3).tensors.mask } },
    ],
    [
      'size',
      'input.tensors.image.data',
      image,
      {
        kind: 'tensors',
        tensors: {
          ...tensors(1).tensors,
          image: { ...tensors(1).tensors.image, shape: [2, 3, 2, 2] },
          mask: tensors(2).tensors.mask,
        },
      },
    ],
    ['range', 'input.tensors.image.data[0]', image, tensors(1, 1.5)],
    ['range', 'input.tensors.image.data[0]', image, tensors(1, Number.NaN)],
    ['size', 'input.tensors.mask.data', image, tensors(9)],
  ];

  it.each(cases)('%s at %s', (kind, path, schema, input) => {
    const err = failure(() => validateInput(schema, input));
    expect(err.kind).toBe(kind);
    expect(err.path).toBe(path);
    expect(err.expected.length).toBeGreaterThan(0);
    expect(err.found.length).toBeGreaterThan(0);
    expect(err.message).toBe(`${path}: expected ${err.expected}, found ${err.found}`);
    expect(err.code).toBe(`VALIDATION_${kind.toUpperCase().replace('-', '_')}`);
  });

  it('refuses malformed schemas with the schema path', () => {
    expect(failure(() => assertSchema({ kind: 'nope' })).path).toBe('schema.kind');
    expect(failure(() => assertSchema({ kind: 'bytes', maxBytes: -1 })).path).toBe('schema.maxBytes');
    expect(
      failure(() => assertSchema({ kind: 'tensors', tensors: { x: { dtype: 'f16', shape: [] } } })).path,
    ).toBe('schema.tensors.x.dtype');
    expect(
      failure(() => assertSchema({ kind: 'tensors', tensors: { x: { dtype: 'int8', shape: [1, -2] } } }))
        .path,
    ).toBe('schema.tensors.x.shape[1]');
  });

  it('checks outputs against the output schema', () => {
    const err = failure(() =>
      validateOutput({ kind: 'bytes', maxBytes: 2 }, { kind: 'bytes', bytes: new Uint8Array(3) }),
    );
    expect(err.path).toBe('output.bytes');
  });

  it('never throws anything but ValidationError on arbitrary inputs', () => {
    fc.assert(
      fc.property(
        fc.anything({ withTypedArray: true, withBigInt: true, withNullPrototype: true }),
        (value) => {
          for (const schema of [
            image,
            { kind: 'bytes' } as Schema,
            { kind: 'packet', maxPort: 7 } as Schema,
          ]) {
            try {
              validateInput(schema, value);
            } catch (err) {
              if (!(err instanceof ValidationError)) throw err;
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a tensor whose data fits the shape exactly always validates, whatever the named batch size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 8 }), fc.float({ min: 0, max: 1, noNaN: true }), (n, v) => {
        validateInput(image, tensors(n, v));
      }),
    );
  });
});
