/**
 * The generator behind `npm run build:models` (scripts/build-models.ts): writes models/<name>/<version>/ from the definitions in
 * build-models-zoo.ts.
 *
 *   model.onnx       the ONNX protobuf (deterministic bytes: same code → same file)
 *   sample_io.json   a small input and the reference implementation's output for it
 *   checksums.txt    sha256sum-format digests of model.onnx and sample_io.json
 *   VAL_REPORT.json  onnxruntime vs the reference implementation on the fixed input set
 *
 * `--check` writes nothing: it regenerates in memory and exits 1 when a committed file differs
 * (VAL_REPORT.json is recomputed and must PASS; its float diffs may vary across CPUs, so it is
 * compared by status and model digest, not bytes).
 */

import { sha256Hex } from '../src/runtime/canonical.js';
import { checkEquivalence, type EquivalenceReport } from '../src/backends/onnx/equivalence.js';
import { encodeModel } from '../src/backends/onnx/onnx-proto.js';
import { referenceRun } from '../src/backends/onnx/reference.js';
import { CHECKSUMS_FILE, MODEL_FILE, SAMPLE_FILE, type SampleIo } from '../src/backends/onnx/registry.js';
import type { ZooModel } from './build-models-zoo.js';

export interface GeneratedModel {
  readonly name: string;
  readonly version: string;
  readonly files: Readonly<Record<string, Uint8Array>>;
}

const enc = new TextEncoder();

export function json(value: unknown): Uint8Array {
  return enc.encode(`${JSON.stringify(value, null, 2)}\n`);
}

/** Number of rows of the fixed equivalence inputs: enough to exercise every class, cheap in JS. */
function equivalenceRows(z: ZooModel): number {
  return z.name === 'cnn' ? 16 : 256;
}

/** The deterministic files of one model (everything but VAL_REPORT.json). */
export function generateModel(z: ZooModel): GeneratedModel {
  const model = encodeModel(z.build());
  const inputs = z.sampleInput();
  const ref = referenceRun(model, inputs);
  const outputs: SampleIo['outputs'] = {};
  for (const [name, v] of Object.entries(ref)) {
    const isInt = v.data instanceof BigInt64Array;
    outputs[name] = {
      dtype: isInt ? 'int64' : 'float32',
      shape: [...v.dims],
      // float32 outputs are rounded to float32, as onnxruntime returns them.
      data: Array.from(v.data as ArrayLike<number | bigint>, (x) =>
        isInt ? Number(x) : Math.fround(Number(x)),
      ),
    };
  }
  const sample = json({ inputs, outputs } satisfies SampleIo);
  const checksums = enc.encode(`${sha256Hex(model)}  ${MODEL_FILE}\n${sha256Hex(sample)}  ${SAMPLE_FILE}\n`);
  return {
    name: z.name,
    version: z.version,
    files: { [MODEL_FILE]: model, [SAMPLE_FILE]: sample, [CHECKSUMS_FILE]: checksums },
  };
}

export function equivalenceReport(z: ZooModel, model: Uint8Array): Promise<EquivalenceReport> {
  return checkEquivalence(model, {
    name: z.name,
    version: z.version,
    inputs: { seed: z.seed + 2, rows: equivalenceRows(z), range: z.inputRange },
  });
}
