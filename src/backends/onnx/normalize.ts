/**
 * Normalization helpers: the preprocessing an image or feature model expects, done before the
 * tensor enters an execution (so the receipt hashes what the model actually saw).
 */

import { ValidationError } from '../../runtime/errors.js';
import type { Tensor } from '../../runtime/types.js';

/** Any numeric tensor as float32 (int64 values beyond 2^24 lose precision, as in any cast). */
export function castToFloat32(t: Tensor): Tensor {
  if (t.dtype === 'float32') return t;
  const src = t.data as ArrayLike<number | bigint>;
  const data = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) data[i] = Number(src[i]!);
  return { dtype: 'float32', shape: [...t.shape], data };
}

function dims4(t: Tensor, what: string): [number, number, number, number] {
  if (t.shape.length !== 4) {
    throw new ValidationError('rank', `${what}.shape`, 'rank 4', `rank ${t.shape.length}`);
  }
  return t.shape as [number, number, number, number];
}

/** [N, H, W, C] → [N, C, H, W] (channels-last images to what ONNX convolutions take). */
export function nhwcToNchw(t: Tensor): Tensor {
  const [N, H, W, C] = dims4(t, 'nhwc');
  const src = t.data as unknown as ArrayLike<number>;
  const data = new (t.data.constructor as Float32ArrayConstructor)(src.length);
  for (let n = 0; n < N; n++)
    for (let h = 0; h < H; h++)
      for (let w = 0; w < W; w++)
        for (let c = 0; c < C; c++) data[((n * C + c) * H + h) * W + w] = src[((n * H + h) * W + w) * C + c]!;
  return { dtype: t.dtype, shape: [N, C, H, W], data: data as unknown as Tensor['data'] };
}

/** [N, C, H, W] → [N, H, W, C]. */
export function nchwToNhwc(t: Tensor): Tensor {
  const [N, C, H, W] = dims4(t, 'nchw');
  const src = t.data as unknown as ArrayLike<number>;
  const data = new (t.data.constructor as Float32ArrayConstructor)(src.length);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) data[((n * H + h) * W + w) * C + c] = src[((n * C + c) * H + h) * W + w]!;
  return { dtype: t.dtype, shape: [N, H, W, C], data: data as unknown as Tensor['data'] };
}

/**
 * (x - mean[c]) / std[c] along `axis` (1 for NCHW channels, the last axis for features);
 * one mean/std value applies to every channel. Output is float32.
 */
export function standardize(t: Tensor, mean: readonly number[], std: readonly number[], axis = 1): Tensor {
  const f = castToFloat32(t);
  const rank = f.shape.length;
  const ax = (axis + rank) % rank;
  const C = f.shape[ax] ?? 1;
  for (const [name, v] of [
    ['mean', mean],
    ['std', std],
  ] as const) {
    if (v.length !== 1 && v.length !== C) {
      throw new ValidationError('size', `standardize.${name}`, `1 or ${C} values`, `${v.length}`);
    }
  }
  if (std.some((s) => !(s > 0)))
    throw new ValidationError('range', 'standardize.std', 'values > 0', String(std));
  const inner = f.shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  const src = f.data as Float32Array;
  const data = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const c = Math.floor(i / inner) % C;
    data[i] = (src[i]! - mean[mean.length === 1 ? 0 : c]!) / std[std.length === 1 ? 0 : c]!;
  }
  return { dtype: 'float32', shape: [...f.shape], data };
}
