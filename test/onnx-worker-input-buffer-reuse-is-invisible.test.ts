/**
 * The worker-thread path copies inputs into one reused buffer per worker (transferred there and
 * back, see pool.ts). That must be invisible: batches of changing size through one worker give
 * exactly the in-thread outputs, the caller's tensors stay attached and unchanged, and views
 * into a larger buffer send only their own bytes.
 */

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ONNX_ENTRY } from '../src/backends/onnx/backend.js';
import type { Tensor } from '../src/runtime/types.js';
import { Thunderpac } from '../src/thunderpac.js';
import { onnxSandbox, registry } from './onnx-helpers.js';

const reg = registry();
let worker: Thunderpac;
let inThread: Thunderpac;

beforeAll(async () => {
  worker = await Thunderpac.open({ store: false, onnx: { path: 'worker', isolation: 'thread', workers: 1 } });
  inThread = await Thunderpac.open({ store: false, onnx: { path: 'in-thread' } });
});
afterAll(async () => {
  await worker.close();
  await inThread.close();
});

async function run(tp: Thunderpac, x: Tensor) {
  const build = await reg.build('mlp');
  const r = await tp.execute(tp.sandbox(onnxSandbox(build)), {
    build,
    entry: ONNX_ENTRY,
    input: { kind: 'tensors', tensors: { x } },
  });
  expect(r.status).toBe('completed');
  return r;
}

describe('onnx worker input buffer reuse', () => {
  it('batches of changing size match the in-thread path bit for bit; inputs stay intact', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 2, maxLength: 6 }),
        fc.integer({ min: 0, max: 7 }),
        async (batches, lead) => {
          for (const [i, rows] of batches.entries()) {
            // A view `lead` floats into a larger buffer, as a caller's slice of a bigger array would be.
            const backing = new Float32Array(lead + rows * 4 + 3);
            for (let k = 0; k < backing.length; k++) backing[k] = ((k * 7919 + i) % 80) / 10;
            const data = backing.subarray(lead, lead + rows * 4);
            const before = Float32Array.from(data);
            const x: Tensor = { dtype: 'float32', shape: [rows, 4], data };
            const a = await run(worker, x);
            const b = await run(inThread, x);
            expect(a.receipt.output?.hash).toBe(b.receipt.output?.hash);
            expect(a.receipt.input.hash).toBe(b.receipt.input.hash);
            expect(data.buffer.byteLength).toBeGreaterThan(0); // not detached
            expect(Array.from(data)).toEqual(Array.from(before));
          }
        },
      ),
      { numRuns: 8, seed: 17 },
    );
  });
});
