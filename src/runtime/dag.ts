/**
 * DAG executions: a pipeline of executions, any backends mixed, where each step's input is made
 * from the outputs of the steps it names (`from`) by an adapter, run as one call.
 *
 *   const dag = await runDag(executor, store, {
 *     name: 'classify-packet',
 *     input: { kind: 'packet', bytes: frame },
 *     steps: [
 *       { name: 'route', build: p4Build, sandbox: p4Sandbox, entry: 'ingress' },
 *       { name: 'features', build: wasmBuild, sandbox: wasmSandbox, entry: 'features',
 *         adapter: { kind: 'packet-to-bytes' } },
 *       { name: 'classify', build: onnxBuild, sandbox: onnxSandbox, entry: 'main',
 *         adapter: { kind: 'bytes-to-tensor', name: 'x', dtype: 'float32', shape: [1, 4] } },
 *     ],
 *   });
 *
 * Every step is an ordinary execution through the Executor, sealed with its own receipt whose
 * `parents` are the receipts of the steps it consumed (in `from` order; a step that reads only
 * the DAG's input has none). Steps are listed in an order where every `from` names an earlier
 * step (or `input`, the DAG's input), so a spec is acyclic by construction; a `from` that names
 * a later or unknown step is refused naming the field. A step that fails stops the DAG: the
 * steps after it are not run, and the DAG document says which step failed.
 *
 * The DAG document — what ran, in which order, with which adapters, and each step's receipt —
 * is stored as an artifact (canonical msgpack, `format: 'thunderpac.dag/1'`), and the store
 * remembers which DAG each step receipt belongs to (DagRecordStore). `verifyDag` replays a DAG
 * from any of its step receipts (normally the last one), step by step in order, over the steps
 * that receipt descends from, and reports the first step that differs:
 *   1. the step's receipt hashes to its id and names the parents the document says it consumed;
 *   2. its input is what the adapter makes of its parents' (checked) outputs — or, for a step
 *      reading the DAG's input, the stored DAG input — hashed and compared with the receipt;
 *   3. its stored output (when the receipt has one) re-hashes to the receipt's output hash;
 *   4. the execution replays from the stored build and input (Executor.verify) and reproduces
 *      every replayable field.
 * A step that passes all four has an output equal to its replay's, which is what the next
 * step's input is then checked against.
 */

import type { Build } from './build.js';
import { canonicalDigest, DIGEST_PATTERN, decodeCanonical, encodeCanonical } from './canonical.js';
import { asThunderpacError, IntegrityError, NotFoundError, ThunderpacError } from './errors.js';
import type { ExecutionAttribution, Executor, Mismatch } from './executor.js';
import { decodePayload, encodePayload, hashPayload } from './payload.js';
import { checkReceiptId, type Receipt } from './receipt.js';
import type { RecordStore } from './record-store.js';
import { Sandbox } from './sandbox.js';
import type { DType, Input, Output, Tensor, TensorData } from './types.js';

export const DAG_FORMAT = 'thunderpac.dag/1';
/** The `from` name of the DAG's own input. */
export const DAG_INPUT = 'input';
export const MAX_DAG_STEPS = 1024;
const STEP_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** How a step's input is made from the outputs of the steps it names. */
export type DagAdapter =
  /** One parent; its output (bytes or tensors) or the DAG input is the input as it is. */
  | { readonly kind: 'identity' }
  /** One packet-out parent: egress packet `packet` (default 0) as a bytes input. */
  | { readonly kind: 'packet-to-bytes'; readonly packet?: number }
  /** One packet-out parent: egress packet `packet` as a packet input on the port it left by. */
  | { readonly kind: 'packet'; readonly packet?: number }
  /** One bytes parent: its bytes as one tensor (little-endian elements), `{ [name]: tensor }`. */
  | {
      readonly kind: 'bytes-to-tensor';
      readonly name: string;
      readonly dtype: DType;
      readonly shape: readonly number[];
    }
  /** One tensors parent: the raw (little-endian) data of tensor `name` as bytes. */
  | { readonly kind: 'tensor-to-bytes'; readonly name: string }
  /** Any number of parents: their bytes (a packet-out: its first packet) concatenated in `from` order. */
  | { readonly kind: 'concat-bytes' }
  /** Any number of tensors parents: the union of their tensors (a name twice is refused). */
  | { readonly kind: 'merge-tensors' };

export interface DagStepSpec {
  /** Unique within the DAG: letters, digits, `_ . -`; not `input`. */
  readonly name: string;
  readonly build: Build;
  readonly sandbox: Sandbox;
  readonly entry: string;
  /** Steps (or `input`) whose outputs make this step's input; default: the step before, or `input`. */
  readonly from?: readonly string[];
  /** Default `identity`. */
  readonly adapter?: DagAdapter;
}

export interface DagSpec {
  readonly name: string;
  readonly input: Input;
  readonly steps: readonly DagStepSpec[];
  /** Sealed into every step's receipt (see ExecuteRequest.attribution). */
  readonly attribution?: ExecutionAttribution;
}

/** One step as the DAG document records it. */
export interface DagStepRecord {
  readonly name: string;
  readonly backend: string;
  readonly buildId: string;
  readonly entry: string;
  readonly from: readonly string[];
  readonly adapter: DagAdapter;
  /** null for steps not run because an earlier one failed. */
  readonly receipt: string | null;
  readonly status: 'completed' | 'failed' | 'not-run';
}

/** The DAG artifact (canonical msgpack). */
export interface DagDocument {
  readonly format: typeof DAG_FORMAT;
  readonly name: string;
  readonly input: { readonly hash: string; readonly size: number };
  readonly startedAt: string;
  readonly status: 'completed' | 'failed';
  readonly steps: readonly DagStepRecord[];
}

/** What DAG runs need of the store beyond the executor's RecordStore (src/store/provenance). */
export interface DagRecordStore extends RecordStore {
  /** Store a DAG document as an artifact and remember it for each of `receipts`; returns its key. */
  putDag(document: Uint8Array, receipts: readonly string[]): string;
  /** The DAG a step receipt belongs to, or undefined. */
  dagOf(receiptId: string): { readonly key: string; readonly document: Uint8Array } | undefined;
}

export interface DagStepResult {
  readonly name: string;
  readonly status: 'completed' | 'failed' | 'not-run';
  readonly receipt: Receipt | null;
  readonly output: Output | null;
  readonly error: ThunderpacError | null;
}

export interface DagResult {
  readonly status: 'completed' | 'failed';
  /** The DAG artifact's key in the store. */
  readonly dag: string;
  readonly document: DagDocument;
  readonly steps: readonly DagStepResult[];
  /** The receipt of the last step that ran (what `verifyDag` starts from). */
  readonly lastReceipt: Receipt | null;
}

/** A DAG spec that cannot run: `path` names the field (`steps[2].from[0]`). */
export class DagSpecError extends ThunderpacError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('DAG_SPEC_INVALID', `${path}: ${message}`);
    this.path = path;
  }
}

/** An adapter could not make a step's input from its parents' outputs. */
export class DagAdapterError extends ThunderpacError {
  readonly step: string;
  constructor(step: string, message: string) {
    super('DAG_ADAPTER', `step '${step}': ${message}`);
    this.step = step;
  }
}

// ------------------------------------------------------------------ spec checks

const DTYPE_BYTES: Readonly<Record<DType, number>> = {
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

/** Check an adapter's shape; returns a plain copy (what the document records). */
export function checkAdapter(a: unknown, path: string): DagAdapter {
  if (a === undefined) return { kind: 'identity' };
  if (typeof a !== 'object' || a === null || Array.isArray(a))
    throw new DagSpecError(path, 'expected an object');
  const o = a as Record<string, unknown>;
  const known = (keys: string[]) => {
    for (const k of Object.keys(o))
      if (k !== 'kind' && !keys.includes(k))
        throw new DagSpecError(`${path}.${k}`, `unknown field for '${o.kind}'`);
  };
  const index = (k: string) => {
    const v = o[k];
    if (v === undefined) return 0;
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535)
      throw new DagSpecError(`${path}.${k}`, 'expected an integer 0..65535');
    return v as number;
  };
  const name = () => {
    if (typeof o.name !== 'string' || o.name.length === 0 || o.name.length > 256)
      throw new DagSpecError(`${path}.name`, 'expected a tensor name (1..256 characters)');
    return o.name;
  };
  switch (o.kind) {
    case 'identity':
    case 'concat-bytes':
    case 'merge-tensors':
      known([]);
      return { kind: o.kind };
    case 'packet-to-bytes':
    case 'packet':
      known(['packet']);
      return o.packet === undefined ? { kind: o.kind } : { kind: o.kind, packet: index('packet') };
    case 'tensor-to-bytes':
      known(['name']);
      return { kind: 'tensor-to-bytes', name: name() };
    case 'bytes-to-tensor': {
      known(['name', 'dtype', 'shape']);
      const n = name();
      if (typeof o.dtype !== 'string' || !(o.dtype in DTYPE_BYTES))
        throw new DagSpecError(`${path}.dtype`, `expected one of ${Object.keys(DTYPE_BYTES).join(', ')}`);
      if (!Array.isArray(o.shape) || o.shape.length > 64)
        throw new DagSpecError(`${path}.shape`, 'expected an array of at most 64 dimensions');
      o.shape.forEach((d, i) => {
        if (!Number.isInteger(d) || d < 0 || d > 2 ** 31)
          throw new DagSpecError(`${path}.shape[${i}]`, 'expected a non-negative integer');
      });
      return { kind: 'bytes-to-tensor', name: n, dtype: o.dtype as DType, shape: [...(o.shape as number[])] };
    }
    default:
      throw new DagSpecError(
        `${path}.kind`,
        `unknown adapter ${JSON.stringify(o.kind)} (identity, packet-to-bytes, packet, bytes-to-tensor, tensor-to-bytes, concat-bytes, merge-tensors)`,
      );
  }
}

interface PlannedStep {
  readonly spec: DagStepSpec;
  readonly from: readonly string[];
  readonly adapter: DagAdapter;
}

/** Names, `from` references (earlier steps only: acyclic) and adapters; throws DagSpecError. */
export function planDag(spec: DagSpec): PlannedStep[] {
  if (typeof spec.name !== 'string' || spec.name.length === 0 || spec.name.length > 256)
    throw new DagSpecError('name', 'expected a DAG name (1..256 characters)');
  if (!Array.isArray(spec.steps) || spec.steps.length === 0)
    throw new DagSpecError('steps', 'expected a non-empty array of steps');
  if (spec.steps.length > MAX_DAG_STEPS) throw new DagSpecError('steps', `more than ${MAX_DAG_STEPS} steps`);
  const seen = new Set<string>();
  return spec.steps.map((s, i) => {
    const at = `steps[${i}]`;
    if (typeof s.name !== 'string' || !STEP_NAME.test(s.name) || s.name === DAG_INPUT)
      throw new DagSpecError(`${at}.name`, `expected a step name (${STEP_NAME.source}, not '${DAG_INPUT}')`);
    if (seen.has(s.name)) throw new DagSpecError(`${at}.name`, `step '${s.name}' is named twice`);
    if (!Sandbox.isSandbox(s.sandbox)) throw new DagSpecError(`${at}.sandbox`, 'expected a Sandbox');
    if (typeof s.entry !== 'string' || s.entry.length === 0)
      throw new DagSpecError(`${at}.entry`, 'expected a string');
    const from = s.from ?? [i === 0 ? DAG_INPUT : spec.steps[i - 1]!.name];
    if (!Array.isArray(from) || from.length === 0)
      throw new DagSpecError(`${at}.from`, 'expected a non-empty array of step names');
    from.forEach((f, j) => {
      if (f === DAG_INPUT) return;
      if (f === s.name)
        throw new DagSpecError(`${at}.from[${j}]`, `step '${s.name}' cannot consume itself (a cycle)`);
      if (!seen.has(f)) {
        const later = spec.steps.some((o) => o.name === f);
        throw new DagSpecError(
          `${at}.from[${j}]`,
          later
            ? `step '${f}' comes after '${s.name}': list steps so that each consumes only earlier ones (a DAG has no cycles)`
            : `no step named '${String(f)}'`,
        );
      }
    });
    if (new Set(from).size !== from.length) throw new DagSpecError(`${at}.from`, 'names a step twice');
    const adapter = checkAdapter(s.adapter, `${at}.adapter`);
    const many = adapter.kind === 'concat-bytes' || adapter.kind === 'merge-tensors';
    if (!many && from.length !== 1)
      throw new DagSpecError(
        `${at}.from`,
        `adapter '${adapter.kind}' takes exactly one parent (got ${from.length})`,
      );
    seen.add(s.name);
    return { spec: s, from: [...from], adapter };
  });
}

// ------------------------------------------------------------------ adapters

type Value = Input | Output;

function bytesOfTensor(t: Tensor): Uint8Array {
  const d = t.data as TensorData;
  return new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
}

function packetOf(step: string, v: Value, from: string, index: number): { bytes: Uint8Array; port: number } {
  if (v.kind !== 'packet' || !('packets' in v))
    throw new DagAdapterError(step, `'${from}' produced '${v.kind}', not the packets a packet adapter reads`);
  const p = v.packets[index];
  if (p === undefined)
    throw new DagAdapterError(
      step,
      `'${from}' emitted ${v.packets.length} packet(s) (verdict ${v.verdict}): there is no packet ${index}`,
    );
  return { bytes: p.bytes, port: p.port };
}

function tensorOf(dtype: DType, shape: readonly number[], bytes: Uint8Array, step: string): Tensor {
  const count = shape.reduce((a, b) => a * b, 1);
  const need = count * DTYPE_BYTES[dtype];
  if (bytes.byteLength !== need)
    throw new DagAdapterError(
      step,
      `bytes-to-tensor: ${bytes.byteLength} bytes do not make a ${dtype} tensor of shape [${shape.join(', ')}] (${need} bytes)`,
    );
  const buf = bytes.slice().buffer;
  const data: TensorData = (() => {
    switch (dtype) {
      case 'float32':
        return new Float32Array(buf);
      case 'float64':
        return new Float64Array(buf);
      case 'int8':
        return new Int8Array(buf);
      case 'uint8':
      case 'bool':
        return new Uint8Array(buf);
      case 'int16':
        return new Int16Array(buf);
      case 'uint16':
        return new Uint16Array(buf);
      case 'int32':
        return new Int32Array(buf);
      case 'uint32':
        return new Uint32Array(buf);
      case 'int64':
        return new BigInt64Array(buf);
      case 'uint64':
        return new BigUint64Array(buf);
    }
  })();
  return { dtype, shape: [...shape], data };
}

/** Make a step's input from its parents' values (in `from` order). Throws DagAdapterError. */
export function applyAdapter(
  step: string,
  adapter: DagAdapter,
  from: readonly string[],
  values: readonly Value[],
): Input {
  const one = values[0]!;
  switch (adapter.kind) {
    case 'identity':
      if (one.kind === 'packet' && 'packets' in one)
        throw new DagAdapterError(
          step,
          `'${from[0]}' produced packets: use the 'packet' or 'packet-to-bytes' adapter`,
        );
      return one as Input;
    case 'packet-to-bytes':
      return { kind: 'bytes', bytes: packetOf(step, one, from[0]!, adapter.packet ?? 0).bytes };
    case 'packet': {
      const p = packetOf(step, one, from[0]!, adapter.packet ?? 0);
      return { kind: 'packet', bytes: p.bytes, ingressPort: p.port };
    }
    case 'bytes-to-tensor': {
      if (one.kind !== 'bytes')
        throw new DagAdapterError(step, `bytes-to-tensor: '${from[0]}' produced '${one.kind}', not bytes`);
      return {
        kind: 'tensors',
        tensors: { [adapter.name]: tensorOf(adapter.dtype, adapter.shape, one.bytes, step) },
      };
    }
    case 'tensor-to-bytes': {
      if (one.kind !== 'tensors')
        throw new DagAdapterError(step, `tensor-to-bytes: '${from[0]}' produced '${one.kind}', not tensors`);
      const t = one.tensors[adapter.name];
      if (t === undefined)
        throw new DagAdapterError(
          step,
          `tensor-to-bytes: '${from[0]}' has no tensor '${adapter.name}' (it has ${Object.keys(one.tensors).join(', ') || 'none'})`,
        );
      return { kind: 'bytes', bytes: bytesOfTensor(t) };
    }
    case 'concat-bytes': {
      const parts = values.map((v, i) => {
        if (v.kind === 'bytes' || (v.kind === 'packet' && !('packets' in v))) return v.bytes;
        if (v.kind === 'packet') return packetOf(step, v, from[i]!, 0).bytes;
        throw new DagAdapterError(step, `concat-bytes: '${from[i]}' produced tensors, not bytes`);
      });
      const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.byteLength;
      }
      return { kind: 'bytes', bytes: out };
    }
    case 'merge-tensors': {
      const tensors: Record<string, Tensor> = {};
      values.forEach((v, i) => {
        if (v.kind !== 'tensors')
          throw new DagAdapterError(step, `merge-tensors: '${from[i]}' produced '${v.kind}', not tensors`);
        for (const [k, t] of Object.entries(v.tensors)) {
          if (k in tensors)
            throw new DagAdapterError(step, `merge-tensors: tensor '${k}' comes from two parents`);
          tensors[k] = t;
        }
      });
      return { kind: 'tensors', tensors };
    }
  }
}

// ------------------------------------------------------------------ run

function isoNow(): string {
  return new Date().toISOString();
}

/**
 * Run a DAG: each step in order, its input made by its adapter, sealed with its receipt and
 * parents; then store the DAG document. A spec error throws DagSpecError before anything runs;
 * a failing step (its own failure, or its adapter's) ends the DAG with status 'failed'.
 */
export async function runDag(executor: Executor, store: DagRecordStore, spec: DagSpec): Promise<DagResult> {
  const plan = planDag(spec);
  const startedAt = isoNow();
  const inputHash = hashPayload(spec.input);
  const encodedInput = encodePayload(spec.input);
  if (!store.hasPayload(inputHash)) store.putPayload(inputHash, encodedInput);
  const outputs = new Map<string, { value: Value; receipt: string }>();
  outputs.set(DAG_INPUT, { value: spec.input, receipt: '' });
  const results: DagStepResult[] = [];
  const records: DagStepRecord[] = [];
  let failed = false;
  for (const { spec: s, from, adapter } of plan) {
    const base = {
      name: s.name,
      backend: s.build.manifest.kind,
      buildId: s.build.id,
      entry: s.entry,
      from,
      adapter,
    };
    if (failed) {
      results.push({ name: s.name, status: 'not-run', receipt: null, output: null, error: null });
      records.push({ ...base, receipt: null, status: 'not-run' });
      continue;
    }
    let input: Input;
    try {
      input = applyAdapter(
        s.name,
        adapter,
        from,
        from.map((f) => outputs.get(f)!.value),
      );
    } catch (err) {
      failed = true;
      results.push({
        name: s.name,
        status: 'failed',
        receipt: null,
        output: null,
        error: asThunderpacError(err),
      });
      records.push({ ...base, receipt: null, status: 'failed' });
      continue;
    }
    const parents = from.filter((f) => f !== DAG_INPUT).map((f) => outputs.get(f)!.receipt);
    let r: Awaited<ReturnType<Executor['execute']>>;
    try {
      r = await executor.execute(s.sandbox, {
        build: s.build,
        input,
        entry: s.entry,
        parents,
        ...(spec.attribution ? { attribution: spec.attribution } : {}),
      });
    } finally {
      if (s.sandbox.state === 'completed' || s.sandbox.state === 'failed') s.sandbox.reset();
    }
    results.push({ name: s.name, status: r.status, receipt: r.receipt, output: r.output, error: r.error });
    records.push({ ...base, receipt: r.receipt.id, status: r.status });
    if (r.status === 'failed' || r.output === null) failed = true;
    else outputs.set(s.name, { value: r.output, receipt: r.receipt.id });
  }
  const document: DagDocument = {
    format: DAG_FORMAT,
    name: spec.name,
    input: { hash: inputHash, size: encodedInput.byteLength },
    startedAt,
    status: failed ? 'failed' : 'completed',
    steps: records,
  };
  const receipts = records.flatMap((r) => (r.receipt === null ? [] : [r.receipt]));
  const key = store.putDag(encodeCanonical(document), receipts);
  const last = [...results].reverse().find((r) => r.receipt !== null);
  return {
    status: document.status,
    dag: key,
    document,
    steps: results,
    lastReceipt: last?.receipt ?? null,
  };
}

// ------------------------------------------------------------------ replay

export type DagStepCheck =
  | 'receipt' // the receipt is missing, altered, or names other parents or another build
  | 'input' // the step's input is not what its adapter makes of its parents' outputs
  | 'stored-output' // the stored output does not re-hash to the receipt's output hash
  | 'replay'; // the replay could not run, or did not reproduce the receipt

export interface DagStepVerdict {
  readonly name: string;
  readonly receipt: string | null;
  readonly status: 'match' | 'differs' | 'not-checked' | 'not-run';
  /** Which check failed, for a step that differs. */
  readonly check: DagStepCheck | null;
  readonly problem: string | null;
  readonly mismatches: readonly Mismatch[];
}

export interface DagVerifyReport {
  readonly dag: string;
  readonly name: string;
  /** The receipt the replay started from. */
  readonly receiptId: string;
  readonly match: boolean;
  /** The first step that differs, or null. */
  readonly firstDifference: string | null;
  readonly steps: readonly DagStepVerdict[];
}

function readDocument(bytes: Uint8Array, key: string): DagDocument {
  let doc: DagDocument;
  try {
    doc = decodeCanonical<DagDocument>(bytes);
  } catch (err) {
    throw new IntegrityError(`DAG ${key}: not a DAG document (${(err as Error).message})`);
  }
  if (doc === null || typeof doc !== 'object' || doc.format !== DAG_FORMAT || !Array.isArray(doc.steps))
    throw new IntegrityError(`DAG ${key}: not a ${DAG_FORMAT} document`);
  return doc;
}

/** The DAG document a step receipt belongs to. NotFoundError when the receipt ran in no DAG. */
export function dagOfReceipt(
  store: DagRecordStore,
  receiptId: string,
): { key: string; document: DagDocument } {
  const found = store.dagOf(receiptId);
  if (found === undefined) throw new NotFoundError('DAG of receipt', receiptId);
  return { key: found.key, document: readDocument(found.document, found.key) };
}

/**
 * Replay the DAG `receiptId` ran in, from the DAG input to that receipt's step, checking each
 * step (see the module comment); stops at the first step that differs.
 */
export async function verifyDag(
  executor: Executor,
  store: DagRecordStore,
  receiptId: string,
): Promise<DagVerifyReport> {
  if (typeof receiptId !== 'string' || !DIGEST_PATTERN.test(receiptId))
    throw new DagSpecError('receiptId', 'expected a sha256 receipt id');
  const { key, document: doc } = dagOfReceipt(store, receiptId);
  const target = doc.steps.findIndex((s) => s.receipt === receiptId);
  if (target < 0) throw new IntegrityError(`DAG ${key} does not list receipt ${receiptId}`);
  // The steps the target descends from (and itself).
  const wanted = new Set<string>([doc.steps[target]!.name]);
  for (let i = target; i >= 0; i--) {
    const s = doc.steps[i]!;
    if (wanted.has(s.name)) for (const f of s.from) wanted.add(f);
  }
  const verdicts: DagStepVerdict[] = [];
  const checked = new Map<string, { value: Value; receipt: string }>();
  let first: string | null = null;

  try {
    const raw = store.getPayload(doc.input.hash);
    const value = decodePayload(raw);
    if (hashPayload(value) !== doc.input.hash)
      throw new IntegrityError('stored DAG input does not match its hash');
    checked.set(DAG_INPUT, { value, receipt: '' });
  } catch (err) {
    first = DAG_INPUT;
    verdicts.push({
      name: DAG_INPUT,
      receipt: null,
      status: 'differs',
      check: 'input',
      problem: `the DAG input ${doc.input.hash}: ${asThunderpacError(err).message}`,
      mismatches: [],
    });
  }

  for (let i = 0; i <= target; i++) {
    const s = doc.steps[i]!;
    if (!wanted.has(s.name)) continue;
    const base = { name: s.name, receipt: s.receipt };
    if (first !== null || s.receipt === null) {
      verdicts.push({
        ...base,
        status: s.receipt === null ? 'not-run' : 'not-checked',
        check: null,
        problem: null,
        mismatches: [],
      });
      continue;
    }
    const differs = (check: DagStepCheck, problem: string, mismatches: readonly Mismatch[] = []) => {
      first = s.name;
      verdicts.push({ ...base, status: 'differs', check, problem, mismatches });
    };
    // 1. the receipt
    let receipt: Receipt;
    try {
      receipt = store.getReceipt(s.receipt);
      checkReceiptId(receipt);
    } catch (err) {
      differs('receipt', asThunderpacError(err).message);
      continue;
    }
    const parents = s.from.filter((f) => f !== DAG_INPUT).map((f) => checked.get(f)?.receipt ?? '');
    if (canonicalDigest(parents) !== canonicalDigest(receipt.parents)) {
      differs(
        'receipt',
        `the receipt names parents [${receipt.parents.join(', ')}], the DAG [${parents.join(', ')}]`,
        [{ field: 'parents', expected: parents, actual: receipt.parents }],
      );
      continue;
    }
    if (receipt.buildId !== s.buildId || receipt.entry !== s.entry) {
      differs(
        'receipt',
        `the receipt ran build ${receipt.buildId} '${receipt.entry}', the DAG says ${s.buildId} '${s.entry}'`,
      );
      continue;
    }
    // 2. the input, from the parents' checked outputs
    const missing = s.from.find((f) => !checked.has(f));
    if (missing !== undefined) {
      differs(
        'input',
        `its parent '${missing}' has no checked output (it failed, was not run, or is not in the DAG)`,
      );
      continue;
    }
    let input: Input;
    try {
      input = applyAdapter(
        s.name,
        s.adapter,
        s.from,
        s.from.map((f) => checked.get(f)!.value),
      );
    } catch (err) {
      differs('input', asThunderpacError(err).message);
      continue;
    }
    const inputHash = hashPayload(input);
    if (inputHash !== receipt.input.hash) {
      differs(
        'input',
        `the adapter '${s.adapter.kind}' makes input ${inputHash} of its parents' outputs; the receipt ran on ${receipt.input.hash}`,
        [{ field: 'input', expected: receipt.input.hash, actual: inputHash }],
      );
      continue;
    }
    // 3. the stored output
    let output: Output | null = null;
    if (receipt.output?.hash) {
      try {
        const value = decodePayload(store.getPayload(receipt.output.hash));
        const actual = hashPayload(value);
        if (actual !== receipt.output.hash)
          throw new IntegrityError('stored output does not match the receipt', receipt.output.hash, actual);
        output = value as Output;
      } catch (err) {
        differs('stored-output', `stored output ${receipt.output.hash}: ${asThunderpacError(err).message}`);
        continue;
      }
    }
    // 4. the replay
    const report = await executor.verify(receipt);
    if (!report.match) {
      differs(
        'replay',
        report.problem ?? `replay differs in ${report.mismatches.map((m) => m.field).join(', ')}`,
        report.mismatches,
      );
      continue;
    }
    verdicts.push({ ...base, status: 'match', check: null, problem: null, mismatches: [] });
    // A failed step has no output: the steps after it were not run (the document says so).
    if (output !== null) checked.set(s.name, { value: output, receipt: receipt.id });
  }
  return {
    dag: key,
    name: doc.name,
    receiptId,
    match: first === null,
    firstDifference: first,
    steps: verdicts,
  };
}
