/**
 * JSON tensors of the Open Inference Protocol (KServe v2 REST): an infer request's `inputs`
 * checked against a model's I/O contract and turned into runtime tensors, and runtime tensors
 * turned back into the response's `outputs`.
 *
 * Everything a client can get wrong is found here, before an execution starts, and reported as
 * an InferRequestError naming the tensor: `inputs[0] (x): shape [1,3] does not match [-1,4]`.
 * Data may be flat or nested in row-major order (the protocol allows both); nesting deeper than
 * the tensor's rank is refused, so a hostile body cannot make the flattening walk unbounded.
 */

import { ThunderpacError } from '../runtime/errors.js';
import type { Dim, DType, Tensor, TensorData, TensorsSchema } from '../runtime/types.js';

/** A request the protocol or the model refuses: HTTP 400, with the JSON path of the culprit. */
export class InferRequestError extends ThunderpacError {
  readonly statusCode = 400;
  readonly path: string;

  constructor(code: string, path: string, message: string) {
    super(code, message);
    this.path = path;
  }
}

/** Protocol datatype names, by runtime dtype (the numeric ones the onnx backend exchanges). */
export const DATATYPE_OF: Readonly<Record<DType, string>> = {
  float32: 'FP32',
  float64: 'FP64',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  bool: 'BOOL',
};

/** Every datatype the protocol names; the ones without a runtime dtype are refused as such. */
const PROTOCOL_DATATYPES = new Set([...Object.values(DATATYPE_OF), 'FP16', 'BF16', 'BYTES']);

/** One tensor of a model's contract, as the protocol's metadata shows it. */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly datatype: string;
  /** -1 for a dynamic dimension. */
  readonly shape: readonly number[];
  /** The contract's dims: sizes, or names that must bind to one size across tensors. */
  readonly dims: readonly Dim[];
}

export function tensorSpecs(schema: TensorsSchema): TensorSpec[] {
  return Object.entries(schema.tensors).map(([name, t]) => ({
    name,
    dtype: t.dtype,
    datatype: DATATYPE_OF[t.dtype],
    shape: t.shape.map((d) => (typeof d === 'number' ? d : -1)),
    dims: t.shape,
  }));
}

/** What a parsed infer request asks for. */
export interface ParsedInferRequest {
  readonly id: string | undefined;
  readonly tensors: Record<string, Tensor>;
  /** The outputs to return, in the order asked; absent: all of them. */
  readonly outputs: readonly string[] | undefined;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function show(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return `an array of ${x.length}`;
  if (typeof x === 'object') return 'an object';
  if (typeof x === 'string') return JSON.stringify(x.length > 32 ? `${x.slice(0, 32)}…` : x);
  return String(x);
}

function shapeText(shape: readonly unknown[]): string {
  return `[${shape.map((d) => (typeof d === 'number' ? String(d) : show(d))).join(',')}]`;
}

const INT_RANGE: Partial<Record<DType, readonly [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
};

function allocate(dtype: DType, n: number): TensorData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'int8':
      return new Int8Array(n);
    case 'uint8':
    case 'bool':
      return new Uint8Array(n);
    case 'int16':
      return new Int16Array(n);
    case 'uint16':
      return new Uint16Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'uint32':
      return new Uint32Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'uint64':
      return new BigUint64Array(n);
  }
}

/**
 * The elements of `data` (flat or nested, row-major) checked against `dtype` and written into
 * a fresh typed array of `count` elements. Nothing is allocated from the shape alone (a shape
 * can claim 2^52 elements): a flat array must have `count` elements before the typed array is
 * made, and nested data is gathered first. Nesting is bounded by the rank.
 */
function readData(
  data: unknown,
  dtype: DType,
  count: number,
  rank: number,
  path: string,
  at: string,
): TensorData {
  const fail = (message: string) =>
    new InferRequestError('KSERVE_INVALID_DATA', `${path}.data`, `${at}: ${message}`);
  if (!Array.isArray(data)) throw fail(`data must be an array, found ${show(data)}`);
  let flat: unknown[] = data;
  if (data.some(Array.isArray)) {
    flat = [];
    // Depth-first with an explicit stack: no recursion for a client to exhaust.
    const stack: { items: unknown[]; i: number }[] = [{ items: data, i: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.i >= top.items.length) {
        stack.pop();
        continue;
      }
      const x = top.items[top.i++];
      if (!Array.isArray(x)) {
        if (flat.length >= count) throw fail(`data has more than the ${count} elements its shape holds`);
        flat.push(x);
      } else if (stack.length >= rank) {
        throw fail(`data is nested deeper than the shape's rank ${rank}`);
      } else stack.push({ items: x, i: 0 });
    }
  }
  if (flat.length !== count) throw fail(`data has ${flat.length} elements, its shape holds ${count}`);
  const out = allocate(dtype, count);
  const datatype = DATATYPE_OF[dtype];
  if (dtype === 'bool') {
    for (let n = 0; n < count; n++) {
      const x = flat[n];
      if (typeof x !== 'boolean') throw fail(`data element ${n} is ${show(x)}, BOOL takes true or false`);
      (out as Uint8Array)[n] = x ? 1 : 0;
    }
    return out;
  }
  const range = INT_RANGE[dtype];
  const big = dtype === 'int64' || dtype === 'uint64';
  for (let n = 0; n < count; n++) {
    const x = flat[n];
    if (typeof x !== 'number') throw fail(`data element ${n} is ${show(x)}, ${datatype} takes numbers`);
    if (range && !(Number.isInteger(x) && x >= range[0] && x <= range[1])) {
      throw fail(`data element ${n} is ${x}, ${datatype} takes integers in [${range[0]}, ${range[1]}]`);
    }
    if (big) (out as BigInt64Array)[n] = BigInt(x);
    else (out as Float64Array)[n] = x;
  }
  return out;
}

/**
 * An infer request body, checked against the model's inputs and outputs. `model` names the
 * model in messages (`mlp@1`).
 */
export function parseInferRequest(
  body: unknown,
  inputs: readonly TensorSpec[],
  outputs: readonly TensorSpec[],
  model: string,
): ParsedInferRequest {
  if (!isObject(body)) {
    throw new InferRequestError(
      'KSERVE_INVALID_REQUEST',
      '',
      `the request body must be an object {inputs: [...]}, found ${show(body)}`,
    );
  }
  if (body.id !== undefined && typeof body.id !== 'string') {
    throw new InferRequestError(
      'KSERVE_INVALID_REQUEST',
      'id',
      `id must be a string, found ${show(body.id)}`,
    );
  }
  if (body.parameters !== undefined && !isObject(body.parameters)) {
    throw new InferRequestError(
      'KSERVE_INVALID_REQUEST',
      'parameters',
      `parameters must be an object, found ${show(body.parameters)}`,
    );
  }
  if (!Array.isArray(body.inputs)) {
    throw new InferRequestError(
      'KSERVE_INVALID_REQUEST',
      'inputs',
      `inputs must be an array of tensors, found ${show(body.inputs)}`,
    );
  }
  // Only an error message needs the list of names.
  const names = () => inputs.map((s) => s.name).join(', ');
  const tensors: Record<string, Tensor> = {};
  const bindings = new Map<string, { size: number; at: string }>();
  for (const [i, t] of body.inputs.entries()) {
    const path = `inputs[${i}]`;
    if (!isObject(t))
      throw new InferRequestError(
        'KSERVE_INVALID_TENSOR',
        path,
        `${path}: a tensor must be an object {name, shape, datatype, data}, found ${show(t)}`,
      );
    if (typeof t.name !== 'string')
      throw new InferRequestError(
        'KSERVE_INVALID_TENSOR',
        `${path}.name`,
        `${path}: name must be a string, found ${show(t.name)}`,
      );
    const at = `${path} (${t.name.length > 64 ? `${t.name.slice(0, 64)}…` : t.name})`;
    const spec = inputs.find((s) => s.name === t.name);
    if (!spec)
      throw new InferRequestError(
        'KSERVE_UNKNOWN_TENSOR',
        `${path}.name`,
        `${at}: model ${model} has no input of that name (its inputs: ${names()})`,
      );
    if (Object.hasOwn(tensors, spec.name))
      throw new InferRequestError('KSERVE_DUPLICATE_TENSOR', `${path}.name`, `${at}: input given twice`);
    if (t.parameters !== undefined) {
      if (!isObject(t.parameters))
        throw new InferRequestError(
          'KSERVE_INVALID_TENSOR',
          `${path}.parameters`,
          `${at}: parameters must be an object, found ${show(t.parameters)}`,
        );
      if (t.parameters.binary_data_size !== undefined) {
        throw new InferRequestError(
          'KSERVE_UNSUPPORTED',
          `${path}.parameters.binary_data_size`,
          `${at}: binary tensor data is not supported; send data as JSON`,
        );
      }
    }
    if (typeof t.datatype !== 'string' || !PROTOCOL_DATATYPES.has(t.datatype)) {
      throw new InferRequestError(
        'KSERVE_INVALID_DATATYPE',
        `${path}.datatype`,
        `${at}: datatype ${show(t.datatype)} is not a protocol datatype (${[...PROTOCOL_DATATYPES].join(', ')})`,
      );
    }
    if (t.datatype !== spec.datatype) {
      throw new InferRequestError(
        'KSERVE_DATATYPE_MISMATCH',
        `${path}.datatype`,
        `${at}: datatype ${t.datatype} does not match ${spec.datatype}`,
      );
    }
    const shape = t.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw new InferRequestError(
        'KSERVE_INVALID_SHAPE',
        `${path}.shape`,
        `${at}: shape must be an array of sizes, found ${Array.isArray(shape) ? shapeText(shape) : show(shape)}`,
      );
    }
    const dims = shape as number[];
    const mismatch = (): InferRequestError =>
      new InferRequestError(
        'KSERVE_SHAPE_MISMATCH',
        `${path}.shape`,
        `${at}: shape ${shapeText(dims)} does not match ${shapeText(spec.shape)}`,
      );
    if (dims.length !== spec.dims.length) throw mismatch();
    let count = 1;
    for (const [k, want] of spec.dims.entries()) {
      const got = dims[k]!;
      if (typeof want === 'number') {
        if (got !== want) throw mismatch();
      } else {
        // A named dim (the batch size N) must be one size across all inputs.
        const bound = bindings.get(want);
        if (bound && bound.size !== got) {
          throw new InferRequestError(
            'KSERVE_SHAPE_MISMATCH',
            `${path}.shape`,
            `${at}: shape ${shapeText(dims)}: dimension ${k} (${want}) is ${got}, but ${bound.at} set it to ${bound.size}`,
          );
        }
        if (!bound) bindings.set(want, { size: got, at: `${at}.shape[${k}]` });
      }
      count *= got;
    }
    if (!Number.isSafeInteger(count)) throw mismatch();
    tensors[spec.name] = {
      dtype: spec.dtype,
      shape: dims,
      data: readData(t.data, spec.dtype, count, dims.length, path, at),
    };
  }
  for (const s of inputs) {
    if (!Object.hasOwn(tensors, s.name)) {
      throw new InferRequestError(
        'KSERVE_MISSING_TENSOR',
        'inputs',
        `inputs: input '${s.name}' is missing (model ${model} takes ${names()})`,
      );
    }
  }
  let wanted: string[] | undefined;
  if (body.outputs !== undefined) {
    if (!Array.isArray(body.outputs)) {
      throw new InferRequestError(
        'KSERVE_INVALID_REQUEST',
        'outputs',
        `outputs must be an array of {name}, found ${show(body.outputs)}`,
      );
    }
    const outNames = outputs.map((s) => s.name).join(', ');
    wanted = [];
    for (const [i, o] of body.outputs.entries()) {
      const path = `outputs[${i}]`;
      if (!isObject(o) || typeof o.name !== 'string') {
        throw new InferRequestError(
          'KSERVE_INVALID_REQUEST',
          `${path}.name`,
          `${path}: an output must be an object {name}, found ${show(o)}`,
        );
      }
      if (!outputs.some((s) => s.name === o.name)) {
        throw new InferRequestError(
          'KSERVE_UNKNOWN_TENSOR',
          `${path}.name`,
          `${path} (${o.name.slice(0, 64)}): model ${model} has no output of that name (its outputs: ${outNames})`,
        );
      }
      if (isObject(o.parameters) && o.parameters.binary_data === true) {
        throw new InferRequestError(
          'KSERVE_UNSUPPORTED',
          `${path}.parameters.binary_data`,
          `${path} (${o.name}): binary tensor data is not supported; outputs come as JSON`,
        );
      }
      if (!wanted.includes(o.name)) wanted.push(o.name);
    }
  }
  return { id: body.id, tensors, outputs: wanted };
}

export interface ResponseTensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: number[];
  readonly data: (number | boolean)[];
}

/** A runtime tensor as a response output: flat row-major data, 64-bit integers as numbers. */
export function responseTensor(name: string, t: Tensor): ResponseTensor {
  const src = t.data as ArrayLike<number | bigint>;
  const data: (number | boolean)[] = new Array(src.length);
  if (t.dtype === 'bool') for (let i = 0; i < src.length; i++) data[i] = src[i] !== 0;
  else if (t.dtype === 'int64' || t.dtype === 'uint64')
    for (let i = 0; i < src.length; i++) data[i] = Number(src[i]);
  else for (let i = 0; i < src.length; i++) data[i] = src[i] as number;
  return { name, datatype: DATATYPE_OF[t.dtype], shape: [...t.shape], data };
}
