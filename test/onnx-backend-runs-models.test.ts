import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type OnnxBackend, ONNX_ENTRY } from '../src/backends/onnx/backend.js';
import { ValidationError } from '../src/runtime/errors.js';
import { Thunderpac } from '../src/thunderpac.js';
import {
  floatTensor,
  MODEL_NAMES,
  maxAbsDiff,
  onnxSandbox,
  registry,
  sampleInput,
  sampleOutput,
} from './onnx-helpers.js';

const reg = registry();

const CONFIGS = [
  ['worker thread', { path: 'worker', isolation: 'thread', workers: 1 }],
  ['worker process', { path: 'worker', isolation: 'process', workers: 1 }],
  ['in-thread', { path: 'in-thread' }],
] as const;

describe.each(CONFIGS)('onnx backend (%s)', (_label, onnx) => {
  let tp: Thunderpac;
  beforeAll(async () => {
    tp = await Thunderpac.open({ store: false, onnx });
  });
  afterAll(async () => {
    await tp.close();
  });

  it.each(MODEL_NAMES)(
    '%s reproduces its sample outputs and seals a receipt naming model and options',
    async (name) => {
      const m = reg.get(name);
      const build = await reg.build(name);
      const sandbox = tp.sandbox(onnxSandbox(build));
      const result = await tp.execute(sandbox, {
        build,
        input: { kind: 'tensors', tensors: sampleInput(m) },
        entry: ONNX_ENTRY,
      });
      expect(result.error).toBeNull();
      expect(result.status).toBe('completed');
      const out = result.output!;
      if (out.kind !== 'tensors') throw new Error('expected tensors');
      for (const [k, want] of Object.entries(sampleOutput(m))) {
        expect(out.tensors[k]!.shape).toEqual(want.shape);
        expect(maxAbsDiff(out.tensors[k]!, want)).toBeLessThanOrEqual(1e-4);
      }
      const r = result.receipt;
      expect(r.runtime.onnxruntime).toBe('1.30.0');
      expect(r.determinism.flags).toContain(`onnx.model=sha256:${m.digest}`);
      expect(r.determinism.flags).toContain('ort.graphOptimizationLevel=all');
      expect(r.determinism.flags).toContain('ort.intraOpNumThreads=1');
      expect(build.manifest.toolchain['ort.graphOptimizationLevel']).toBe('all');
      expect(r.resources.engineNs).toBeGreaterThan(0);
    },
  );

  it('reads the I/O contract from the model: symbolic dims become named dims', async () => {
    const build = await reg.build('cnn');
    expect(build.manifest.inputSchema).toEqual({
      kind: 'tensors',
      tensors: { image: { dtype: 'float32', shape: ['N', 3, 32, 32] } },
    });
    const tree = await reg.build('tree');
    expect(tree.manifest.outputSchema).toEqual({
      kind: 'tensors',
      tensors: {
        label: { dtype: 'int64', shape: ['N'] },
        probabilities: { dtype: 'float32', shape: ['N', 3] },
      },
    });
  });

  it('refuses wrong dtype, wrong shape, missing and unknown inputs before onnxruntime sees them', async () => {
    const build = await reg.build('cnn');
    const backend = tp.executor.backend('onnx') as unknown as OnnxBackend;
    const spy = vi.spyOn(backend, 'run');
    const sandbox = tp.sandbox(onnxSandbox(build));
    const cases: [Record<string, unknown>, string, string][] = [
      [
        { image: { dtype: 'float64', shape: [1, 3, 32, 32], data: new Float64Array(3072) } },
        'input.tensors.image.dtype',
        'dtype',
      ],
      [{ image: floatTensor([1, 3, 32, 31]) }, 'input.tensors.image.shape[3]', 'dim'],
      [{ image: floatTensor([1, 32, 32, 3]) }, 'input.tensors.image.shape[1]', 'dim'],
      [{ image: floatTensor([3, 32, 32]) }, 'input.tensors.image.shape', 'rank'],
      [{}, 'input.tensors.image', 'missing'],
      [{ image: floatTensor([1, 3, 32, 32]), extra: floatTensor([1]) }, 'input.tensors.extra', 'unexpected'],
      [
        { image: { dtype: 'float32', shape: [1, 3, 32, 32], data: new Float32Array(5) } },
        'input.tensors.image.data',
        'size',
      ],
    ];
    for (const [tensors, path, kind] of cases) {
      const r = await tp.execute(sandbox, {
        build,
        input: { kind: 'tensors', tensors } as never,
        entry: ONNX_ENTRY,
      });
      expect(r.status).toBe('failed');
      expect(r.error).toBeInstanceOf(ValidationError);
      expect((r.error as ValidationError).path).toBe(path);
      expect((r.error as ValidationError).kind).toBe(kind);
    }
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
  });

  it('binds the batch dim: a batch of 5 images gives 5 rows', async () => {
    const build = await reg.build('cnn');
    const sandbox = tp.sandbox(onnxSandbox(build));
    const r = await tp.execute(sandbox, {
      build,
      input: { kind: 'tensors', tensors: { image: floatTensor([5, 3, 32, 32]) } },
      entry: ONNX_ENTRY,
    });
    expect(r.error).toBeNull();
    if (r.output?.kind !== 'tensors') throw new Error('expected tensors');
    expect(r.output.tensors.probs!.shape).toEqual([5, 10]);
  });

  it('refuses a sandbox whose onnx determinism flags contradict the build', async () => {
    const build = await reg.build('mlp');
    const sandbox = tp.sandbox({
      backend: 'onnx',
      determinism: { flags: ['ort.graphOptimizationLevel=disabled'] },
    });
    const r = await tp.execute(sandbox, {
      build,
      input: { kind: 'tensors', tensors: sampleInput(reg.get('mlp')) },
      entry: ONNX_ENTRY,
    });
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('ONNX_DETERMINISM_FLAGS');
  });
});

describe('onnx determinism across paths', () => {
  it('the same build and input give the same output hash in-thread, on a thread and in a process', async () => {
    const hashes = new Set<string | null>();
    for (const [, onnx] of CONFIGS) {
      const tp = await Thunderpac.open({ store: false, onnx });
      try {
        for (const name of MODEL_NAMES) {
          const build = await reg.build(name);
          const r = await tp.execute(tp.sandbox(onnxSandbox(build)), {
            build,
            input: { kind: 'tensors', tensors: sampleInput(reg.get(name)) },
            entry: ONNX_ENTRY,
          });
          hashes.add(`${name}:${r.receipt.output?.hash}`);
        }
      } finally {
        await tp.close();
      }
    }
    expect(hashes.size).toBe(MODEL_NAMES.length);
  });
});
