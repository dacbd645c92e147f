/**
 * Tensors as JSON: `{ name: { dtype, shape, data } }`, the form of sample_io.json and of
 * `thunderpac run --model ... --input FILE.json`. Parsing checks every field and reports the
 * path of the first bad one; the schema check proper (dtype, dims) is the executor's.
 */

import { ValidationError } from '../../runtime/errors.js';
import { isDType } from '../../runtime/schema.js';
import type { DType, Tensor, TensorData } from '../../runtime/types.js';

const CTOR: Readonly<Record<DType, (n: ArrayLike<number> | number[]) => TensorData>> = {
  float32: (d) => Float32Array.from(d),
  float64: (d) => Float64Array.from(d),
  int8: (d) => Int8Array.from(d),
  uint8: (d) => Uint8Array.from(d),
  int16: (d) => Int16Array.from(d),
  uint16: (d) => Uint16Array.from(d),
  int32: (d) => Int32Array.from(d),
  uint32: (d) => Uint32Array.from(d),
  int64: (d) => BigInt64Array.from(Array.from(d, (x) => BigInt(x))),
  uint64: (d) => BigUint64Array.from(Array.from(d, (x) => BigInt(x))),
  bool: (d) => Uint8Array.from(d, (x) => (x ? 1 : 0)),
};

export function tensorsFromJson(json: unknown, path = 'input'): Record<string, Tensor> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ValidationError('type', path, 'an object {name: {dtype, shape, data}}', typeof json);
  }
  const out: Record<string, Tensor> = {};
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    const p = `${path}.${name}`;
    const t = value as { dtype?: unknown; shape?: unknown; data?: unknown } | null;
    if (typeof t !== 'object' || t === null)
      throw new ValidationError('type', p, 'a tensor object', String(t));
    if (!isDType(t.dtype)) throw new ValidationError('dtype', `${p}.dtype`, 'a dtype', String(t.dtype));
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new ValidationError('type', `${p}.shape`, 'an array of sizes', JSON.stringify(t.shape));
    }
    if (!Array.isArray(t.data) || !t.data.every((x) => typeof x === 'number' || typeof x === 'boolean')) {
      throw new ValidationError('type', `${p}.data`, 'an array of numbers', typeof t.data);
    }
    if (t.dtype.includes('int64') && !t.data.every((x) => Number.isSafeInteger(x))) {
      throw new ValidationError(
        'type',
        `${p}.data`,
        'integers (int64 as safe JSON integers)',
        'a non-integer',
      );
    }
    out[name] = { dtype: t.dtype, shape: t.shape as number[], data: CTOR[t.dtype](t.data as number[]) };
  }
  return out;
}

export function tensorsToJson(tensors: Readonly<Record<string, Tensor>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, t] of Object.entries(tensors)) {
    out[name] = {
      dtype: t.dtype,
      shape: [...t.shape],
      data: Array.from(t.data as ArrayLike<number | bigint>, (x) => (typeof x === 'bigint' ? Number(x) : x)),
    };
  }
  return out;
}
