import { describe, expect, it } from 'vitest';
import { batchKey, concatBatch, splitBatch } from '../src/backends/onnx/batch.js';
import { castToFloat32, nchwToNhwc, nhwcToNchw, standardize } from '../src/backends/onnx/normalize.js';
import { tensorsFromJson, tensorsToJson } from '../src/backends/onnx/tensors-json.js';
import { ValidationError } from '../src/runtime/errors.js';
import type { Tensor } from '../src/runtime/types.js';

const arange = (n: number) => Float32Array.from({ length: n }, (_, i) => i);

describe('normalization helpers', () => {
  it('castToFloat32 converts integer and int64 tensors', () => {
    const t = castToFloat32({ dtype: 'int64', shape: [3], data: BigInt64Array.from([1n, -2n, 3n]) });
    expect(t.dtype).toBe('float32');
    expect(Array.from(t.data as Float32Array)).toEqual([1, -2, 3]);
  });

  it('NHWC <-> NCHW are inverse permutations', () => {
    const nhwc: Tensor = { dtype: 'float32', shape: [2, 3, 4, 5], data: arange(120) };
    const nchw = nhwcToNchw(nhwc);
    expect(nchw.shape).toEqual([2, 5, 3, 4]);
    // element (n=1, h=2, w=3, c=4) moves to (n=1, c=4, h=2, w=3)
    expect((nchw.data as Float32Array)[((1 * 5 + 4) * 3 + 2) * 4 + 3]).toBe(((1 * 3 + 2) * 4 + 3) * 5 + 4);
    expect(Array.from(nchwToNhwc(nchw).data as Float32Array)).toEqual(Array.from(nhwc.data as Float32Array));
    expect(() => nhwcToNchw({ dtype: 'float32', shape: [4], data: arange(4) })).toThrow(ValidationError);
  });

  it('standardize applies per-channel mean and std along the channel axis', () => {
    const t: Tensor = { dtype: 'uint8', shape: [1, 2, 1, 2], data: Uint8Array.from([10, 20, 30, 40]) };
    const s = standardize(t, [10, 30], [10, 5]);
    expect(Array.from(s.data as Float32Array)).toEqual([0, 1, 0, 2]);
    expect(() => standardize(t, [1, 2, 3], [1])).toThrow(ValidationError);
    expect(() => standardize(t, [0], [0])).toThrow(ValidationError);
  });
});

describe('batch helpers', () => {
  it('concatenate along dim 0 and split back', () => {
    const a = { x: { dtype: 'float32' as const, shape: [1, 2], data: Float32Array.from([1, 2]) } };
    const b = { x: { dtype: 'float32' as const, shape: [2, 2], data: Float32Array.from([3, 4, 5, 6]) } };
    expect(batchKey(a)).toBe(batchKey(b));
    expect(batchKey(a)).not.toBe(batchKey({ x: { dtype: 'float32', shape: [1, 3], data: arange(3) } }));
    const merged = concatBatch([a, b]);
    expect(merged.x!.shape).toEqual([3, 2]);
    const [pa, pb] = splitBatch(merged, [1, 2]);
    expect(Array.from(pa!.x!.data as Float32Array)).toEqual([1, 2]);
    expect(pb!.x!.shape).toEqual([2, 2]);
    expect(Array.from(pb!.x!.data as Float32Array)).toEqual([3, 4, 5, 6]);
  });

  it('JSON tensors round-trip and bad fields are reported with their path', () => {
    const t = tensorsFromJson({ l: { dtype: 'int64', shape: [2], data: [1, 2] } });
    expect(t.l!.data).toEqual(BigInt64Array.from([1n, 2n]));
    expect(tensorsToJson(t)).toEqual({ l: { dtype: 'int64', shape: [2], data: [1, 2] } });
    expect(() => tensorsFromJson({ x: { dtype: 'complex', shape: [1], data: [1] } })).toThrow(
      /input\.x\.dtype/,
    );
    expect(() => tensorsFromJson({ x: { dtype: 'float32', shape: [-1], data: [1] } })).toThrow(
      /input\.x\.shape/,
    );
  });
});
