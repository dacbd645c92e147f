/**
 * KServe v2 JSON tensors decode the same whether `data` is flat or nested row-major, for every
 * numeric datatype the runtime has (FP32, FP64, INT8..INT64, UINT8..UINT64, BOOL); a value a
 * datatype cannot hold, or data that does not fill the shape, is an InferRequestError naming
 * the tensor; outputs come back flat with their protocol datatype.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InferRequestError,
  parseInferRequest,
  responseTensor,
  type TensorSpec,
  tensorSpecs,
} from '../src/daemon/kserve-tensors.js';
import type { DType } from '../src/runtime/types.js';

const RANGES: Record<DType, [number, number]> = {
  float32: [-1e6, 1e6],
  float64: [-1e300, 1e300],
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  bool: [0, 1],
};
const DTYPES = Object.keys(RANGES) as DType[];

function spec(dtype: DType, dims: (number | string)[]): TensorSpec[] {
  return tensorSpecs({ kind: 'tensors', tensors: { t: { dtype, shape: dims } } });
}

function nest(data: unknown[], shape: number[]): unknown[] {
  if (shape.length <= 1) return data;
  const inner = shape.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: shape[0]! }, (_, i) =>
    nest(data.slice(i * inner, (i + 1) * inner), shape.slice(1)),
  );
}

function element(dtype: DType): fc.Arbitrary<number | boolean> {
  const [lo, hi] = RANGES[dtype];
  if (dtype === 'bool') return fc.boolean();
  if (dtype === 'float32') return fc.float({ noNaN: true, noDefaultInfinity: true, min: lo, max: hi });
  if (dtype === 'float64') return fc.double({ noNaN: true, noDefaultInfinity: true, min: lo, max: hi });
  return fc
    .integer({ min: Math.max(lo, Number.MIN_SAFE_INTEGER), max: Math.min(hi, Number.MAX_SAFE_INTEGER) })
    .map((x) => x);
}

const input = (dtype: DType, shape: number[], data: unknown) => ({
  inputs: [{ name: 't', shape, datatype: spec(dtype, shape)[0]!.datatype, data }],
});

describe('KServe v2 JSON tensors', () => {
  it('decode flat and nested data alike, every datatype, and round-trip as outputs', () => {
    const arb = fc
      .record({
        dtype: fc.constantFrom(...DTYPES),
        shape: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 4 }),
      })
      .chain(({ dtype, shape }) =>
        fc
          .array(element(dtype), {
            minLength: shape.reduce((a, b) => a * b, 1),
            maxLength: shape.reduce((a, b) => a * b, 1),
          })
          .map((data) => ({ dtype, shape, data })),
      );
    fc.assert(
      fc.property(arb, ({ dtype, shape, data }) => {
        const specs = spec(dtype, ['N', ...shape.slice(1)]);
        const flat = parseInferRequest(input(dtype, shape, data), specs, specs, 'm@1');
        const nested = parseInferRequest(input(dtype, shape, nest(data, shape)), specs, specs, 'm@1');
        const t = flat.tensors.t!;
        expect(t.dtype).toBe(dtype);
        expect(t.shape).toEqual(shape);
        expect(nested.tensors.t).toEqual(t);
        const out = responseTensor('t', t);
        expect(out.datatype).toBe(specs[0]!.datatype);
        expect(out.shape).toEqual(shape);
        // float32 rounds; every other datatype holds the JSON value exactly.
        const want = dtype === 'float32' ? data.map((x) => Math.fround(x as number)) : data;
        expect(out.data).toEqual(want);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a value its datatype cannot hold, naming the tensor and the element', () => {
    const cases: [DType, unknown][] = [
      ['int8', 128],
      ['uint8', -1],
      ['int16', 1.5],
      ['uint32', 2 ** 32],
      ['int64', 2 ** 53],
      ['uint64', -1],
      ['bool', 1],
      ['float32', 'NaN'],
      ['float64', null],
    ];
    for (const [dtype, bad] of cases) {
      const specs = spec(dtype, [2]);
      const data = [dtype === 'bool' ? true : 0, bad];
      let err: unknown;
      try {
        parseInferRequest(input(dtype, [2], data), specs, specs, 'm@1');
      } catch (e) {
        err = e;
      }
      expect(err, `${dtype} ${String(bad)}`).toBeInstanceOf(InferRequestError);
      expect((err as InferRequestError).message).toContain('inputs[0] (t): data element 1');
      expect((err as InferRequestError).path).toBe('inputs[0].data');
      expect((err as InferRequestError).statusCode).toBe(400);
    }
  });

  it('binds a named dimension to one size across inputs', () => {
    const specs = tensorSpecs({
      kind: 'tensors',
      tensors: { a: { dtype: 'float32', shape: ['N', 2] }, b: { dtype: 'float32', shape: ['N'] } },
    });
    const body = (nb: number) => ({
      inputs: [
        { name: 'a', shape: [2, 2], datatype: 'FP32', data: [1, 2, 3, 4] },
        { name: 'b', shape: [nb], datatype: 'FP32', data: Array(nb).fill(0) },
      ],
    });
    expect(parseInferRequest(body(2), specs, specs, 'm@1').tensors.b!.shape).toEqual([2]);
    expect(() => parseInferRequest(body(3), specs, specs, 'm@1')).toThrow(
      /inputs\[1\] \(b\).*N.*inputs\[0\] \(a\)/,
    );
  });
});
