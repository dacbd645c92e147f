/**
 * The shipped models are trained, not just well-formed: run by onnxruntime on data they never
 * saw in training, they classify it (Iris hold-out rows; freshly rendered shapes from a seed
 * the generator does not use). A model with seeded, untrained weights scores near chance
 * (1/3, 1/10) here.
 */

import { describe, expect, it } from 'vitest';
import { iris, SHAPES, shapes } from '../scripts/build-models-data.js';
import { ort } from '../src/backends/onnx/ort.js';
import { registry } from './onnx-helpers.js';

async function classify(name: string, input: string, output: string, rows: Float64Array[], dims: number[]) {
  const m = registry().get(name);
  const session = await ort().InferenceSession.create(m.bytes);
  try {
    const flat = new Float32Array(rows.length * rows[0]!.length);
    for (const [i, r] of rows.entries()) flat.set(r, i * r.length);
    const out = await session.run({ [input]: new (ort().Tensor)('float32', flat, [rows.length, ...dims]) });
    const t = out[output]!;
    if (t.type === 'int64') return Array.from(t.data as BigInt64Array, Number);
    const probs = t.data as Float32Array;
    const classes = probs.length / rows.length;
    return rows.map((_, i) => {
      let best = 0;
      for (let c = 1; c < classes; c++) if (probs[i * classes + c]! > probs[i * classes + best]!) best = c;
      return best;
    });
  } finally {
    await session.release();
  }
}

const accuracy = (got: number[], want: number[]) => got.filter((g, i) => g === want[i]).length / want.length;

describe('shipped models on held-out data (onnxruntime)', () => {
  const test = iris('test');

  it('mlp classifies held-out Iris flowers (>= 90%)', async () => {
    expect(accuracy(await classify('mlp', 'x', 'probs', test.x, [4]), test.y)).toBeGreaterThanOrEqual(0.9);
  });

  it('tree classifies held-out Iris flowers (>= 90%)', async () => {
    const labels = await classify('tree', 'features', 'label', test.x, [4]);
    expect(accuracy(labels, test.y)).toBeGreaterThanOrEqual(0.9);
  });

  it('cnn classifies shapes rendered from an unseen seed (>= 80%, chance is 10%)', async () => {
    const fresh = shapes(0x5eed, 30);
    expect(fresh.y.length).toBe(30 * SHAPES.length);
    const got = await classify('cnn', 'image', 'probs', fresh.x, [3, 32, 32]);
    expect(accuracy(got, fresh.y)).toBeGreaterThanOrEqual(0.8);
  });
});
