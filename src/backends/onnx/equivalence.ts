/**
 * Equivalence of onnxruntime with the independent TypeScript implementation (reference.ts):
 * run both on a fixed, seeded input set and compare every output element.
 *
 *   float outputs: max and mean absolute difference; PASS when max <= tolerance (1e-4)
 *   int64 outputs (class labels): exact agreement required
 *
 * The report (VAL_REPORT.json) names the model digest it was computed for, so a model that
 * changed after its report was written is caught as stale (`reportProblems`).
 */

import { sha256Hex } from '../../runtime/canonical.js';
import { decodeModel, type ModelProto } from './onnx-proto.js';
import {
  type OnnxSessionOptions,
  ort,
  ortSessionOptions,
  ortVersion,
  sessionOptions,
  sessionOptionsRecord,
} from './ort.js';
import { referenceRun } from './reference.js';
import { SeededRandom } from './rng.js';

export const EQUIVALENCE_TOLERANCE = 1e-4;

export interface EquivalenceInputs {
  readonly seed: number;
  /** Value of every symbolic (batch) dimension. */
  readonly rows: number;
  readonly range: readonly [number, number];
}

export interface OutputComparison {
  readonly dtype: string;
  readonly elements: number;
  readonly maxAbsDiff: number;
  readonly meanAbsDiff: number;
  /** Integer outputs: fraction of elements equal (1 = exact agreement). */
  readonly agreement: number;
}

export interface EquivalenceReport {
  readonly v: 1;
  readonly model: string;
  readonly version: string;
  readonly modelDigest: string;
  readonly status: 'PASS' | 'FAIL';
  readonly tolerance: number;
  readonly reference: 'thunderpac/src/backends/onnx/reference.ts';
  readonly onnxruntime: string;
  readonly sessionOptions: Readonly<Record<string, string>>;
  readonly inputs: EquivalenceInputs;
  readonly maxAbsDiff: number;
  readonly meanAbsDiff: number;
  readonly outputs: Readonly<Record<string, OutputComparison>>;
}

export interface FixedTensor {
  readonly dtype: 'float32';
  readonly shape: number[];
  readonly data: Float32Array;
}

/** The fixed inputs: one float32 tensor per graph input, uniform in `range`, from `seed`. */
export function fixedInputs(model: ModelProto, inputs: EquivalenceInputs): Record<string, FixedTensor> {
  const rng = new SeededRandom(inputs.seed);
  const initializers = new Set(model.graph.initializer.map((t) => t.name));
  const out: Record<string, FixedTensor> = {};
  for (const vi of model.graph.input) {
    if (initializers.has(vi.name)) continue;
    const shape = vi.type.tensor_type.shape.dim.map((d) =>
      'dim_value' in d && d.dim_value ? Number(d.dim_value) : inputs.rows,
    );
    const n = shape.reduce((x, y) => x * y, 1);
    out[vi.name] = { dtype: 'float32', shape, data: rng.floats(n, inputs.range[0], inputs.range[1]) };
  }
  return out;
}

export async function checkEquivalence(
  bytes: Uint8Array,
  meta: {
    name: string;
    version: string;
    inputs: EquivalenceInputs;
    options?: OnnxSessionOptions;
    /** The implementation to compare with (tests substitute a wrong one to see FAIL). */
    reference?: typeof referenceRun;
  },
): Promise<EquivalenceReport> {
  const model = decodeModel(bytes);
  const options = meta.options ?? sessionOptions();
  const feedsRaw = fixedInputs(model, meta.inputs);
  const rt = ort();
  const session = await rt.InferenceSession.create(bytes, ortSessionOptions(options));
  let got: Record<string, { type: string; data: unknown }>;
  try {
    const feeds: Record<string, InstanceType<typeof rt.Tensor>> = {};
    for (const [name, t] of Object.entries(feedsRaw)) feeds[name] = new rt.Tensor('float32', t.data, t.shape);
    got = (await session.run(feeds)) as unknown as Record<string, { type: string; data: unknown }>;
  } finally {
    await session.release();
  }
  const want = (meta.reference ?? referenceRun)(model, feedsRaw);
  const outputs: Record<string, OutputComparison> = {};
  let max = 0;
  let sum = 0;
  let count = 0;
  let pass = true;
  for (const name of Object.keys(want).sort()) {
    const w = want[name]!;
    const g = got[name];
    if (!g) throw new Error(`onnxruntime produced no output '${name}'`);
    const gd = g.data as ArrayLike<number | bigint>;
    if (gd.length !== w.data.length) {
      throw new Error(`output '${name}': ${gd.length} elements from onnxruntime, ${w.data.length} expected`);
    }
    if (w.data instanceof BigInt64Array) {
      let equal = 0;
      for (let i = 0; i < w.data.length; i++) if (BigInt(gd[i]!) === w.data[i]) equal++;
      const agreement = w.data.length === 0 ? 1 : equal / w.data.length;
      if (agreement !== 1) pass = false;
      outputs[name] = { dtype: g.type, elements: w.data.length, maxAbsDiff: 0, meanAbsDiff: 0, agreement };
      continue;
    }
    let omax = 0;
    let osum = 0;
    for (let i = 0; i < w.data.length; i++) {
      const d = Math.abs(Number(gd[i]!) - w.data[i]!);
      // NaN anywhere is a failure, not a silently skipped element.
      const diff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
      omax = Math.max(omax, diff);
      osum += diff;
    }
    if (!(omax <= EQUIVALENCE_TOLERANCE)) pass = false;
    max = Math.max(max, omax);
    sum += osum;
    count += w.data.length;
    outputs[name] = {
      dtype: g.type,
      elements: w.data.length,
      maxAbsDiff: omax,
      meanAbsDiff: w.data.length ? osum / w.data.length : 0,
      agreement: 1,
    };
  }
  return {
    v: 1,
    model: meta.name,
    version: meta.version,
    modelDigest: sha256Hex(bytes),
    status: pass ? 'PASS' : 'FAIL',
    tolerance: EQUIVALENCE_TOLERANCE,
    reference: 'thunderpac/src/backends/onnx/reference.ts',
    onnxruntime: ortVersion(),
    sessionOptions: sessionOptionsRecord(options),
    inputs: meta.inputs,
    maxAbsDiff: max,
    meanAbsDiff: count ? sum / count : 0,
    outputs,
  };
}

/** Why a report cannot vouch for a model: stale (other digest), failing, or malformed. */
export function reportProblems(report: unknown, modelDigest: string): string[] {
  const r = report as Partial<EquivalenceReport> | null;
  if (typeof r !== 'object' || r === null || r.v !== 1) return ['VAL_REPORT.json is missing or malformed'];
  const problems: string[] = [];
  if (r.modelDigest !== modelDigest) {
    problems.push(`stale: report is for model ${r.modelDigest}, the model is ${modelDigest}`);
  }
  if (r.status !== 'PASS') problems.push(`failing: status ${String(r.status)}`);
  if (typeof r.maxAbsDiff !== 'number' || !(r.maxAbsDiff <= EQUIVALENCE_TOLERANCE)) {
    problems.push(`failing: max abs diff ${String(r.maxAbsDiff)} > ${EQUIVALENCE_TOLERANCE}`);
  }
  for (const [name, o] of Object.entries(r.outputs ?? {})) {
    if (o.agreement !== 1) problems.push(`failing: output '${name}' agrees on ${o.agreement} of elements`);
  }
  return problems;
}
