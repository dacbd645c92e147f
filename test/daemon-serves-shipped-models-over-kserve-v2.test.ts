/**
 * A daemon started from a checkout serves the shipped models (mlp, cnn, tree) over the Open
 * Inference Protocol: health, server and model metadata, readiness, and inference with each
 * model's sample_io.json input giving its expected output (within VAL_REPORT.json's
 * tolerance). Every inference is an execution with a receipt whose id comes back in the body
 * and the header, and that receipt verifies (replayed from the daemon's store once it stopped)
 * and names the actor and the HTTP request id.
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModelDir } from '../src/backends/onnx/registry.js';
import { Thunderpac } from '../src/thunderpac.js';
import { ensureDistBuilt, startTestDaemon, type TestDaemon } from './helpers/daemon.js';

interface SampleTensor {
  dtype: string;
  shape: number[];
  data: number[];
}
interface Sample {
  inputs: Record<string, SampleTensor>;
  outputs: Record<string, SampleTensor>;
}

const MODELS = ['mlp', 'cnn', 'tree'] as const;
const DATATYPE: Record<string, string> = { float32: 'FP32', int64: 'INT64' };

function sample(model: string): Sample {
  return JSON.parse(readFileSync(join(defaultModelDir(), model, '1', 'sample_io.json'), 'utf8'));
}
function tolerance(model: string): number {
  return JSON.parse(readFileSync(join(defaultModelDir(), model, '1', 'VAL_REPORT.json'), 'utf8')).tolerance;
}

/** Row-major nesting of a flat array by its shape: the protocol's other data form. */
function nest(data: number[], shape: number[]): unknown[] {
  if (shape.length <= 1) return data;
  const inner = shape.slice(1).reduce((a, b) => a * b, 1);
  const out: unknown[] = [];
  for (let i = 0; i < shape[0]!; i++) out.push(nest(data.slice(i * inner, (i + 1) * inner), shape.slice(1)));
  return out;
}

function inferBody(model: string, nested = false) {
  return {
    id: `test-${model}`,
    inputs: Object.entries(sample(model).inputs).map(([name, t]) => ({
      name,
      shape: t.shape,
      datatype: DATATYPE[t.dtype],
      data: nested ? nest(t.data, t.shape) : t.data,
    })),
  };
}

function expectOutputsMatch(model: string, outputs: any[]): void {
  const expected = sample(model).outputs;
  expect(outputs.map((o) => o.name).sort()).toEqual(Object.keys(expected).sort());
  for (const o of outputs) {
    const want = expected[o.name]!;
    expect(o.datatype).toBe(DATATYPE[want.dtype]);
    expect(o.shape).toEqual(want.shape);
    expect(o.data).toHaveLength(want.data.length);
    o.data.forEach((x: number, i: number) => {
      expect(Math.abs(x - want.data[i]!), `${model} ${o.name}[${i}]`).toBeLessThanOrEqual(tolerance(model));
    });
  }
}

describe('the daemon serves the shipped models over KServe v2', () => {
  let daemon: TestDaemon;
  // A store of our own, kept past the daemon's stop so its receipts can be verified.
  const store = mkdtempSync(join(tmpdir(), 'tp-kserve-store-'));
  const receipts: string[] = [];
  /** receipt id → the x-request-id of the request that caused it. */
  const requestIds = new Map<string, string>();

  beforeAll(async () => {
    // The daemon runs from dist/: built (when stale) with room for a loaded machine.
    ensureDistBuilt();
    daemon = await startTestDaemon({ store });
  }, 300_000);
  afterAll(async () => {
    await daemon?.stop();
    rmSync(store, { recursive: true, force: true });
  });

  it('answers the server health and metadata endpoints', async () => {
    expect((await daemon.request({ method: 'GET', path: '/v2/health/live' })).status).toBe(200);
    const server = await daemon.request({ method: 'GET', path: '/v2' });
    expect(server.status).toBe(200);
    expect(server.body).toMatchObject({ name: 'thunderpac', extensions: [] });
    expect(typeof server.body.version).toBe('string');
  });

  it('lists the three models, each ready, on /v1/models and for /v2/health/ready', async () => {
    for (const m of MODELS)
      expect((await daemon.request({ method: 'GET', path: `/v2/models/${m}/ready` })).status).toBe(200);
    const ready = await daemon.request({ method: 'GET', path: '/v2/health/ready' });
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ready: true });
    const list = await daemon.request({ method: 'GET', path: '/v1/models' });
    expect(list.status).toBe(200);
    expect(list.body.models.map((m: any) => `${m.name}@${m.version}:${m.ready}`)).toEqual([
      'cnn@1:true',
      'mlp@1:true',
      'tree@1:true',
    ]);
    for (const m of list.body.models) expect(m.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('gives each model its metadata, with -1 for the dynamic batch dimension', async () => {
    const expected = {
      mlp: {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
        outputs: [{ name: 'probs', datatype: 'FP32', shape: [-1, 3] }],
      },
      cnn: {
        inputs: [{ name: 'image', datatype: 'FP32', shape: [-1, 3, 32, 32] }],
        outputs: [{ name: 'probs', datatype: 'FP32', shape: [-1, 10] }],
      },
      tree: {
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }],
        outputs: [
          { name: 'label', datatype: 'INT64', shape: [-1] },
          { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
        ],
      },
    };
    for (const m of MODELS) {
      for (const path of [`/v2/models/${m}`, `/v2/models/${m}/versions/1`]) {
        const r = await daemon.request({ method: 'GET', path });
        expect(r.status, path).toBe(200);
        expect(r.body).toEqual({ name: m, versions: ['1'], platform: 'onnxruntime_onnx', ...expected[m] });
      }
    }
  });

  for (const m of MODELS) {
    it(`infers ${m} with its sample input (flat and nested data) and returns the sample output`, async () => {
      for (const [nested, path] of [
        [false, `/v2/models/${m}/infer`],
        [true, `/v2/models/${m}/versions/1/infer`],
      ] as const) {
        const r = await daemon.request({ method: 'POST', path, body: inferBody(m, nested) });
        expect(r.status, r.text).toBe(200);
        expect(r.body).toMatchObject({ model_name: m, model_version: '1', id: `test-${m}` });
        const receiptId = r.body.parameters.receipt_id;
        expect(receiptId).toMatch(/^[0-9a-f]{64}$/);
        expect(r.headers['x-thunderpac-receipt']).toBe(receiptId);
        expectOutputsMatch(m, r.body.outputs);
        receipts.push(receiptId);
        requestIds.set(receiptId, String(r.headers['x-request-id']));
      }
    });
  }

  it('returns only the outputs asked for', async () => {
    const r = await daemon.request({
      method: 'POST',
      path: '/v2/models/tree/infer',
      body: {
        ...inferBody('tree'),
        outputs: [{ name: 'label' }],
      },
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.outputs).toEqual([{ name: 'label', datatype: 'INT64', shape: [2], data: [0, 2] }]);
    receipts.push(r.body.parameters.receipt_id);
  });

  it('seals each inference in a receipt the daemon verifies by replay (POST /v1/receipts/:id/verify)', async () => {
    expect(receipts).toHaveLength(7);
    for (const id of receipts) {
      const r = await daemon.request({ method: 'POST', path: `/v1/receipts/${id}/verify` });
      expect(r.status, r.text).toBe(200);
      expect(r.body.problem, id).toBeNull();
      expect(r.body.match, id).toBe(true);
    }
  });

  it('seals each inference in a receipt that verifies from the store after the daemon stops', async () => {
    expect((await daemon.stop()).code).toBe(0);
    const tp = await Thunderpac.open({ store });
    try {
      for (const id of receipts) {
        const report = await tp.verify(id);
        expect(report.problem, id).toBeNull();
        expect(report.match, id).toBe(true);
        // Who asked and which request: sealed into the receipt by the execution service.
        const receipt = tp.store!.getReceipt(id);
        expect(receipt.backend).toBe('onnx');
        expect(receipt.actor).toMatch(/^(uid|token|daemon)/);
        if (requestIds.has(id)) expect(receipt.requestId).toBe(requestIds.get(id));
      }
    } finally {
      await tp.close();
    }
    expect(receipts).toHaveLength(7);
  });
});
