/**
 * KServe v2 inference refuses what a client gets wrong before anything runs, with the
 * protocol's error shape (`{ "error": "<message>" }`, plus the daemon's code and the field
 * path): a tensor of the wrong shape, datatype or name, or a missing one, is a 400 whose message
 * names the tensor; an unknown model or version is a 404; malformed bodies of every kind
 * (fast-check) are a 4xx, never a 5xx, and the daemon keeps serving. A model whose checksum
 * fails is served as not ready (--models-dir names a directory with a tampered copy).
 */

import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModelDir } from '../src/backends/onnx/registry.js';
import { ensureDistBuilt, type HttpResult, startTestDaemon, type TestDaemon } from './helpers/daemon.js';

const X = { name: 'x', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] };
const valid = () => ({ inputs: [{ ...X }] });

// The daemon runs from dist/: built (when stale) before the tests' own clocks start.
beforeAll(() => ensureDistBuilt(), 300_000);

function expectError(r: HttpResult, status: number, ...parts: string[]) {
  expect(r.status, r.text).toBe(status);
  expect(typeof r.body?.error, r.text).toBe('string');
  expect(typeof r.body.code).toBe('string');
  for (const p of parts) expect(r.body.error).toContain(p);
  expect(r.text).not.toMatch(/\n\s+at /);
}

describe('KServe v2 inference refuses bad requests', () => {
  let daemon: TestDaemon;

  beforeAll(async () => {
    daemon = await startTestDaemon();
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  // A string is sent as it is, as JSON (the fuzzer's text that may not parse).
  const infer = (body: unknown, model = 'mlp') =>
    daemon.request({
      method: 'POST',
      path: `/v2/models/${model}/infer`,
      body,
      ...(typeof body === 'string' && { headers: { 'content-type': 'application/json' } }),
    });

  it('names the tensor whose shape does not match', async () => {
    const r = await infer({ inputs: [{ ...X, shape: [1, 3], data: [1, 2, 3] }] });
    expectError(r, 400, 'inputs[0] (x)', 'shape [1,3] does not match [-1,4]');
    expect(r.body.path).toBe('inputs[0].shape');
    expectError(await infer({ inputs: [{ ...X, shape: [4] }] }), 400, 'inputs[0] (x)', 'shape [4]');
  });

  it('names the tensor whose datatype does not match, or is no datatype at all', async () => {
    expectError(
      await infer({ inputs: [{ ...X, datatype: 'INT32' }] }),
      400,
      'inputs[0] (x)',
      'INT32 does not match FP32',
    );
    expectError(await infer({ inputs: [{ ...X, datatype: 'FLOAT' }] }), 400, 'inputs[0] (x)', 'datatype');
    expectError(
      await infer({ inputs: [{ ...X, datatype: 'BYTES', data: ['a', 'b', 'c', 'd'] }] }),
      400,
      'inputs[0] (x)',
      'BYTES',
    );
  });

  it('names a tensor the model does not take, and one that is missing', async () => {
    expectError(
      await infer({ inputs: [{ ...X, name: 'input' }] }),
      400,
      'inputs[0] (input)',
      'no input',
      'x',
    );
    expectError(await infer({ inputs: [] }), 400, "'x' is missing");
    expectError(await infer({ inputs: [X, X] }), 400, 'inputs[1] (x)', 'twice');
    expectError(await infer({ ...valid(), outputs: [{ name: 'logits' }] }), 400, 'outputs[0] (logits)');
  });

  it('names the tensor whose data does not fit its shape or datatype', async () => {
    expectError(await infer({ inputs: [{ ...X, data: [1, 2, 3] }] }), 400, 'inputs[0] (x)', '3 elements');
    expectError(
      await infer({ inputs: [{ ...X, data: [1, 2, 'three', 4] }] }),
      400,
      'inputs[0] (x)',
      'element 2',
    );
    expectError(await infer({ inputs: [{ ...X, data: [[[1, 2, 3, 4]]] }] }), 400, 'inputs[0] (x)', 'nested');
    // A shape claiming 2^52 elements is refused from the data it came with, not allocated.
    expectError(
      await infer({ inputs: [{ ...X, shape: [2 ** 48, 4], data: [1, 2, 3, 4] }] }),
      400,
      'inputs[0] (x)',
      'elements',
    );
  });

  it('is a 404 for an unknown model or version, on every model route', async () => {
    expectError(await infer(valid(), 'resnet'), 404, 'resnet');
    expectError(
      await daemon.request({ method: 'POST', path: '/v2/models/mlp/versions/2/infer', body: valid() }),
      404,
      "version '2'",
    );
    expectError(await daemon.request({ method: 'GET', path: '/v2/models/resnet' }), 404, 'resnet');
    expectError(await daemon.request({ method: 'GET', path: '/v2/models/mlp/versions/9/ready' }), 404, 'mlp');
    expectError(await daemon.request({ method: 'GET', path: '/v2/models/..%2F..%2Fetc' }), 404, 'etc');
  });

  it('answers malformed infer bodies with a 4xx, never a 5xx, and keeps serving', async () => {
    const datatype = fc.oneof(
      fc.constantFrom('FP64', 'FP16', 'BF16', 'INT8', 'INT32', 'INT64', 'UINT8', 'BOOL', 'BYTES', 'fp32', ''),
      fc.string(),
      fc.integer(),
      fc.constant(null),
    );
    const badShape = fc.oneof(
      fc
        .array(fc.integer({ min: -3, max: 2 ** 53 }), { maxLength: 6 })
        .filter((s) => !(s.length === 2 && s[1] === 4)),
      fc.tuple(fc.integer({ min: 0, max: 8 }), fc.constantFrom(-1, 3, 5, 4.5, '4', null)),
      fc.jsonValue().filter((v) => !Array.isArray(v)),
    );
    const badData = fc.oneof(
      fc.array(fc.double(), { maxLength: 12 }).filter((d) => d.length !== 4),
      fc.tuple(
        fc.double(),
        fc.double(),
        fc.jsonValue().filter((v) => typeof v !== 'number'),
        fc.double(),
      ),
      fc.jsonValue().filter((v) => !Array.isArray(v)),
      fc.constant([[[[1, 2, 3, 4]]]]),
    );
    const tensorDefect = fc.oneof(
      fc.record({
        name: fc.oneof(
          fc.string().filter((s) => s !== 'x'),
          fc.integer(),
          fc.constant(null),
        ),
      }),
      fc.record({ shape: badShape }),
      fc.record({ datatype: datatype.filter((d) => d !== 'FP32') }),
      fc.record({ data: badData }),
      fc.record({
        parameters: fc.oneof(
          fc.constant({ binary_data_size: 16 }),
          fc.jsonValue().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
        ),
      }),
    );
    const body = fc.oneof(
      // A valid tensor with one to three defects.
      fc.array(tensorDefect, { minLength: 1, maxLength: 3 }).map((defects) => ({
        inputs: [Object.assign({ ...X }, ...defects)],
      })),
      // The body's own fields wrong.
      fc.record({ inputs: fc.jsonValue().filter((v) => !Array.isArray(v)) }),
      fc.record({
        inputs: fc.constant([X]),
        id: fc.oneof(fc.integer(), fc.array(fc.string()), fc.constant(null)),
      }),
      fc.record({ inputs: fc.constant([X]), parameters: fc.oneof(fc.string(), fc.array(fc.integer())) }),
      fc.record({
        inputs: fc.constant([X]),
        outputs: fc.oneof(fc.string(), fc.array(fc.jsonValue(), { minLength: 1 })),
      }),
      fc.record({ inputs: fc.array(fc.jsonValue(), { minLength: 1, maxLength: 3 }) }),
      // Not an infer request at all: any JSON, or text that is not JSON.
      fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
      fc.string().map((s) => `{"inputs": ${s}`),
    );
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const r = await infer(b);
        expect(r.status, `${JSON.stringify(b).slice(0, 300)} -> ${r.text}`).toBeGreaterThanOrEqual(400);
        expect(r.status, `${JSON.stringify(b).slice(0, 300)} -> ${r.text}`).toBeLessThan(500);
        expect(typeof r.body?.error, r.text).toBe('string');
      }),
      { numRuns: 400 },
    );
    const ok = await infer(valid());
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.outputs[0].shape).toEqual([1, 3]);
  });

  it('refuses a body that is not JSON (415) and an empty one (400)', async () => {
    expectError(
      await daemon.request({
        method: 'POST',
        path: '/v2/models/mlp/infer',
        body: 'x=1',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      415,
    );
    const empty = await daemon.request({ method: 'POST', path: '/v2/models/mlp/infer' });
    expect(empty.status).toBeGreaterThanOrEqual(400);
    expect(empty.status).toBeLessThan(500);
  });
});

describe('a model that fails its checksum is served as not ready', () => {
  let dir: string;
  let daemon: TestDaemon;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tp-kserve-models-'));
    cpSync(join(defaultModelDir(), 'mlp'), join(dir, 'mlp'), { recursive: true });
    mkdirSync(join(dir, 'tampered'));
    cpSync(join(defaultModelDir(), 'mlp', '1'), join(dir, 'tampered', '1'), { recursive: true });
    writeFileSync(join(dir, 'tampered', '1', 'checksums.txt'), `${'0'.repeat(64)}  model.onnx\n`);
    daemon = await startTestDaemon({ args: ['--models-dir', dir] });
  });
  afterAll(async () => {
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the good model, reports the tampered one not ready and refuses to run it', async () => {
    expect((await daemon.request({ method: 'GET', path: '/v2/models/mlp/ready' })).status).toBe(200);
    expect(
      (await daemon.request({ method: 'POST', path: '/v2/models/mlp/infer', body: valid() })).status,
    ).toBe(200);
    const ready = await daemon.request({ method: 'GET', path: '/v2/models/tampered/ready' });
    expect(ready.status).toBe(400);
    expect(ready.body).toMatchObject({ name: 'tampered', ready: false });
    expect(ready.body.error).toContain('sha256');
    expectError(
      await daemon.request({ method: 'POST', path: '/v2/models/tampered/infer', body: valid() }),
      503,
      'not ready',
    );
    expect((await daemon.request({ method: 'GET', path: '/v2/health/ready' })).status).toBe(400);
    const list = await daemon.request({ method: 'GET', path: '/v1/models' });
    expect(list.body.models.map((m: any) => [m.name, m.state])).toEqual([
      ['mlp', 'ready'],
      ['tampered', 'failed'],
    ]);
    expect((await daemon.request({ method: 'GET', path: '/v2/models/cnn' })).status).toBe(404);
  });
});
