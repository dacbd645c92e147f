/** Shared fixtures of the onnx tests: the registry over models/, sample inputs as tensors. */

import { onnxDeterminismFlags } from '../src/backends/onnx/backend.js';
import { defaultModelDir, type LoadedModel, ModelRegistry } from '../src/backends/onnx/registry.js';
import { tensorsFromJson } from '../src/backends/onnx/tensors-json.js';
import type { Build } from '../src/runtime/build.js';
import type { SandboxOptions } from '../src/runtime/sandbox.js';
import type { Tensor } from '../src/runtime/types.js';

export const MODEL_NAMES = ['mlp', 'cnn', 'tree'] as const;

export function registry(): ModelRegistry {
  return new ModelRegistry({ dir: defaultModelDir() });
}

export function sampleInput(m: LoadedModel): Record<string, Tensor> {
  return tensorsFromJson(m.sample!.inputs);
}

export function sampleOutput(m: LoadedModel): Record<string, Tensor> {
  return tensorsFromJson(m.sample!.outputs);
}

export function onnxSandbox(build: Build, limits: SandboxOptions['limits'] = {}): SandboxOptions {
  return { backend: 'onnx', limits, determinism: { flags: onnxDeterminismFlags(build) } };
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  const x = a.data as ArrayLike<number | bigint>;
  const y = b.data as ArrayLike<number | bigint>;
  if (x.length !== y.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(Number(x[i]!) - Number(y[i]!)));
  return m;
}

/** Rows of uniform float32 data for an [N, ...rest] input. */
export function floatTensor(shape: number[], seed = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 4294967296;
  }
  return { dtype: 'float32', shape, data };
}
