/**
 * Schemas and validation of inputs and outputs.
 *
 * Validation runs before anything is copied or hashed: sizes are checked first from
 * `byteLength` alone, so an oversized input costs O(1) to refuse. Every failure is a
 * ValidationError carrying the field path, the expectation and what was found.
 */

import { ValidationError } from './errors.js';
import type {
  DType,
  Input,
  Output,
  Schema,
  Tensor,
  TensorData,
  TensorSchema,
  TensorsSchema,
} from './types.js';

export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  bool: 1,
};

const DTYPE_ARRAY: Readonly<Record<DType, string>> = {
  float32: 'Float32Array',
  float64: 'Float64Array',
  int8: 'Int8Array',
  uint8: 'Uint8Array',
  int16: 'Int16Array',
  uint16: 'Uint16Array',
  int32: 'Int32Array',
  uint32: 'Uint32Array',
  int64: 'BigInt64Array',
  uint64: 'BigUint64Array',
  bool: 'Uint8Array',
};

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && Object.hasOwn(DTYPE_BYTES, x);
}

/** What was found, for a message; never throws (a revoked Proxy, a throwing getter...). */
function describe(x: unknown): string {
  try {
    return describeValue(x);
  } catch {
    return 'an unreadable value';
  }
}

function describeValue(x: unknown): string {
  if (x === null) return 'null';
  if (x === undefined) return 'undefined';
  if (ArrayBuffer.isView(x)) return `${x.constructor.name}(${x.byteLength} bytes)`;
  if (Array.isArray(x)) return `array(${x.length})`;
  if (typeof x === 'object') return 'object';
  if (typeof x === 'string') return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x);
  return `${typeof x} ${String(x)}`;
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Checks that a schema itself is well formed (schemas arrive from manifests and CLI files). */
export function assertSchema(schema: unknown, path = 'schema'): asserts schema is Schema {
  if (typeof schema !== 'object' || schema === null) {
    throw new ValidationError('schema', path, 'a schema object', describe(schema));
  }
  const s = schema as Record<string, unknown>;
  const bound = (key: string) => {
    if (s[key] !== undefined && !isNonNegInt(s[key])) {
      throw new ValidationError('schema', `${path}.${key}`, 'a non-negative integer', describe(s[key]));
    }
  };
  switch (s.kind) {
    case 'any':
      return;
    case 'bytes':
    case 'packet':
      bound('minBytes');
      bound('maxBytes');
      bound('maxPort');
      return;
    case 'tensors': {
      if (typeof s.tensors !== 'object' || s.tensors === null) {
        throw new ValidationError(
          'schema',
          `${path}.tensors`,
          'an object of tensor schemas',
          describe(s.tensors),
        );
      }
      for (const [name, t] of Object.entries(s.tensors as Record<string, unknown>)) {
        const tp = `${path}.tensors.${name}`;
        const ts = t as Record<string, unknown> | null;
        if (typeof ts !== 'object' || ts === null)
          throw new ValidationError('schema', tp, 'a tensor schema', describe(ts));
        if (!isDType(ts.dtype))
          throw new ValidationError('schema', `${tp}.dtype`, 'a dtype', describe(ts.dtype));
        if (!Array.isArray(ts.shape))
          throw new ValidationError('schema', `${tp}.shape`, 'an array of dims', describe(ts.shape));
        ts.shape.forEach((d, i) => {
          if (!isNonNegInt(d) && (typeof d !== 'string' || d.length === 0)) {
            throw new ValidationError('schema', `${tp}.shape[${i}]`, 'a size or a dim name', describe(d));
          }
        });
        for (const k of ['min', 'max'] as const) {
          if (ts[k] !== undefined && typeof ts[k] !== 'number') {
            throw new ValidationError('schema', `${tp}.${k}`, 'a number', describe(ts[k]));
          }
        }
        if (ts.maxBytes !== undefined && !isNonNegInt(ts.maxBytes)) {
          throw new ValidationError(
            'schema',
            `${tp}.maxBytes`,
            'a non-negative integer',
            describe(ts.maxBytes),
          );
        }
      }
      return;
    }
    default:
      throw new ValidationError(
        'schema',
        `${path}.kind`,
        "'bytes' | 'packet' | 'tensors' | 'any'",
        describe(s.kind),
      );
  }
}

/** Total payload size of an input or output, from byteLength only (no copy, no hashing). */
export function payloadBytes(value: Input | Output): number {
  switch (value.kind) {
    case 'bytes':
      return value.bytes.byteLength;
    case 'packet':
      return 'packets' in value
        ? value.packets.reduce((n, p) => n + p.bytes.byteLength, 0)
        : value.bytes.byteLength;
    case 'tensors': {
      let n = 0;
      for (const t of Object.values(value.tensors)) n += t.data.byteLength;
      return n;
    }
  }
}

function checkByteBounds(path: string, n: number, min: number | undefined, max: number | undefined): void {
  if (max !== undefined && n > max)
    throw new ValidationError('size', path, `at most ${max} bytes`, `${n} bytes`);
  if (min !== undefined && n < min)
    throw new ValidationError('size', path, `at least ${min} bytes`, `${n} bytes`);
}

/** Validate an execution input against a schema. Call after the sandbox's maxInputBytes check. */
export function validateInput(schema: Schema, input: unknown, path = 'input'): asserts input is Input {
  if (typeof input !== 'object' || input === null)
    throw new ValidationError('type', path, 'an input object', describe(input));
  const value = input as Record<string, unknown>;
  if (schema.kind === 'any') {
    if (value.kind !== 'bytes' && value.kind !== 'packet' && value.kind !== 'tensors') {
      throw new ValidationError(
        'type',
        `${path}.kind`,
        "'bytes' | 'packet' | 'tensors'",
        describe(value.kind),
      );
    }
    return;
  }
  if (value.kind !== schema.kind)
    throw new ValidationError('type', `${path}.kind`, `'${schema.kind}'`, describe(value.kind));
  switch (schema.kind) {
    case 'bytes':
    case 'packet': {
      if (!(value.bytes instanceof Uint8Array)) {
        throw new ValidationError('type', `${path}.bytes`, 'a Uint8Array', describe(value.bytes));
      }
      checkByteBounds(`${path}.bytes`, value.bytes.byteLength, schema.minBytes, schema.maxBytes);
      if (schema.kind === 'packet' && value.ingressPort !== undefined) {
        const max = schema.maxPort ?? 0xffffffff;
        if (!isNonNegInt(value.ingressPort) || value.ingressPort > max) {
          throw new ValidationError(
            'range',
            `${path}.ingressPort`,
            `an integer in [0, ${max}]`,
            describe(value.ingressPort),
          );
        }
      }
      return;
    }
    case 'tensors':
      validateTensors(schema, value.tensors, `${path}.tensors`);
      return;
  }
}

function validateTensors(schema: TensorsSchema, tensors: unknown, path: string): void {
  if (typeof tensors !== 'object' || tensors === null) {
    throw new ValidationError('type', path, 'an object of tensors', describe(tensors));
  }
  const given = tensors as Record<string, unknown>;
  const bindings = new Map<string, { size: number; at: string }>();
  for (const name of Object.keys(schema.tensors)) {
    if (!Object.hasOwn(given, name))
      throw new ValidationError('missing', `${path}.${name}`, 'a tensor', 'nothing');
  }
  for (const [name, t] of Object.entries(given)) {
    const ts = schema.tensors[name];
    if (!ts) {
      if (schema.closed === false) continue;
      throw new ValidationError(
        'unexpected',
        `${path}.${name}`,
        `one of [${Object.keys(schema.tensors).join(', ')}]`,
        `tensor '${name}'`,
      );
    }
    validateTensor(ts, t, `${path}.${name}`, bindings);
  }
}

function validateTensor(
  schema: TensorSchema,
  t: unknown,
  path: string,
  bindings: Map<string, { size: number; at: string }>,
): asserts t is Tensor {
  if (typeof t !== 'object' || t === null) throw new ValidationError('type', path, 'a tensor', describe(t));
  const tensor = t as Record<string, unknown>;
  if (tensor.dtype !== schema.dtype)
    throw new ValidationError('dtype', `${path}.dtype`, schema.dtype, describe(tensor.dtype));
  const data = tensor.data;
  if (!ArrayBuffer.isView(data) || data.constructor.name !== DTYPE_ARRAY[schema.dtype]) {
    throw new ValidationError('type', `${path}.data`, `a ${DTYPE_ARRAY[schema.dtype]}`, describe(data));
  }
  // Byte bound first: refuse oversized tensors before walking shapes or elements.
  if (schema.maxBytes !== undefined && data.byteLength > schema.maxBytes) {
    throw new ValidationError(
      'size',
      `${path}.data`,
      `at most ${schema.maxBytes} bytes`,
      `${data.byteLength} bytes`,
    );
  }
  const shape = tensor.shape;
  if (!Array.isArray(shape))
    throw new ValidationError('type', `${path}.shape`, 'an array of sizes', describe(shape));
  if (shape.length !== schema.shape.length) {
    throw new ValidationError(
      'rank',
      `${path}.shape`,
      `rank ${schema.shape.length} [${schema.shape.join(', ')}]`,
      `rank ${shape.length} [${shape.map((d) => (typeof d === 'number' ? String(d) : describe(d))).join(', ')}]`,
    );
  }
  let count = 1;
  for (let i = 0; i < shape.length; i++) {
    const got = shape[i] as unknown;
    const want = schema.shape[i]!;
    const dp = `${path}.shape[${i}]`;
    if (!isNonNegInt(got)) throw new ValidationError('type', dp, 'a non-negative integer', describe(got));
    if (typeof want === 'number') {
      if (got !== want) throw new ValidationError('dim', dp, String(want), String(got));
    } else {
      const bound = bindings.get(want);
      if (bound && bound.size !== got) {
        throw new ValidationError(
          'dim-binding',
          dp,
          `${want} = ${bound.size} (bound at ${bound.at})`,
          String(got),
        );
      }
      if (!bound) bindings.set(want, { size: got, at: dp });
    }
    count *= got;
  }
  const elements = (data as TensorData).length;
  if (elements !== count) {
    throw new ValidationError(
      'size',
      `${path}.data`,
      `${count} elements (product of shape)`,
      `${elements} elements`,
    );
  }
  if (schema.min !== undefined || schema.max !== undefined) checkRange(schema, data as TensorData, path);
}

function checkRange(schema: TensorSchema, data: TensorData, path: string): void {
  const min = schema.min ?? Number.NEGATIVE_INFINITY;
  const max = schema.max ?? Number.POSITIVE_INFINITY;
  const expected = `elements in [${min}, ${max}]`;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    for (let i = 0; i < data.length; i++) {
      const v = Number(data[i]!);
      if (!(v >= min && v <= max))
        throw new ValidationError('range', `${path}.data[${i}]`, expected, String(data[i]));
    }
    return;
  }
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    // `!(a && b)` also catches NaN, which is outside every range.
    if (!(v >= min && v <= max))
      throw new ValidationError('range', `${path}.data[${i}]`, expected, String(v));
  }
}

/** Validate an output against the build's output schema (a backend bug or a hostile guest). */
export function validateOutput(schema: Schema, output: Output, path = 'output'): void {
  if (schema.kind === 'any') return;
  if (output.kind !== schema.kind)
    throw new ValidationError('type', `${path}.kind`, `'${schema.kind}'`, describe(output.kind));
  if (output.kind === 'bytes' && schema.kind === 'bytes') {
    checkByteBounds(`${path}.bytes`, output.bytes.byteLength, schema.minBytes, schema.maxBytes);
  } else if (output.kind === 'tensors' && schema.kind === 'tensors') {
    validateTensors(schema, output.tensors, `${path}.tensors`);
  }
}
