/**
 * DAGs over the daemon's API: the real daemon on a unix socket runs a P4 → WASM → ONNX DAG
 * from uploaded builds and a served model, replays it, and answers provenance queries; a bad spec is a 400
 * naming the field.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ipv4Frame } from './p4-helpers.js';
import { REPO_ROOT, startTestDaemon, type TestDaemon } from './helpers/daemon.js';

describe('DAGs through the daemon', () => {
  let daemon: TestDaemon;
  const builds: Record<string, string> = {};

  beforeAll(async () => {
    daemon = await startTestDaemon();
    const uploads = {
      route: {
        kind: 'p4',
        name: 'basic_router.p4',
        source: readFileSync(join(REPO_ROOT, 'p4/samples/basic_router.p4'), 'utf8'),
      },
      features: {
        kind: 'wasm',
        name: 'pkt_features.wasm',
        base64: readFileSync(join(REPO_ROOT, 'wasm/pkt_features.wasm')).toString('base64'),
      },
    };
    for (const [k, body] of Object.entries(uploads)) {
      const r = await daemon.request({ method: 'POST', path: '/v1/builds', body });
      if (r.status !== 201) throw new Error(`upload ${k}: ${r.status} ${r.text}`);
      builds[k] = r.body.id;
    }
  }, 120_000);
  afterAll(async () => {
    await daemon?.stop();
  });

  it('runs the DAG, verifies it from its last receipt, and answers produced-by / derived-from', async () => {
    const frame = ipv4Frame({ dst: [10, 0, 1, 9], ttl: 50 });
    const r = await daemon.request({
      method: 'POST',
      path: '/v1/dags',
      body: {
        name: 'route-features-classify',
        input: { kind: 'packet', base64: Buffer.from(frame).toString('base64'), ingressPort: 1 },
        steps: [
          { name: 'route', build: builds.route, entry: 'ingress' },
          {
            name: 'features',
            build: builds.features,
            entry: 'features',
            adapter: { kind: 'packet-to-bytes' },
          },
          {
            name: 'classify',
            model: 'mlp@1',
            entry: 'infer',
            adapter: { kind: 'bytes-to-tensor', name: 'x', dtype: 'float32', shape: [1, 4] },
          },
        ],
      },
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.steps.map((s: { status: string }) => s.status)).toEqual([
      'completed',
      'completed',
      'completed',
    ]);
    const [route, features, classify] = r.body.steps.map((s: { receipt: string }) => s.receipt);
    const receipt = (await daemon.request({ method: 'GET', path: `/v1/receipts/${features}` })).body;
    expect(receipt.parents).toEqual([route]);
    expect(receipt.actor).toBe(`uid:${process.getuid!()}`);

    const v = await daemon.request({ method: 'POST', path: `/v1/dags/${classify}/verify` });
    expect(v.status, v.text).toBe(200);
    expect(v.body).toMatchObject({ match: true, firstDifference: null });

    const p = await daemon.request({
      method: 'GET',
      path: `/v1/provenance/produced-by/${receipt.output.hash}`,
    });
    expect(p.body).toMatchObject({ producers: [features], ancestors: [route] });
    const d = await daemon.request({ method: 'GET', path: `/v1/provenance/derived-from/${route}` });
    expect(d.body.receipts.map((x: { receipt: string }) => x.receipt)).toEqual([features, classify]);
  }, 120_000);

  it('answers a bad spec with a 400 naming the field', async () => {
    const r = await daemon.request({
      method: 'POST',
      path: '/v1/dags',
      body: {
        name: 'bad',
        input: { kind: 'bytes', base64: 'AA==' },
        steps: [
          { name: 'a', build: builds.features, entry: 'features', from: ['b'] },
          { name: 'b', build: builds.features, entry: 'features' },
        ],
      },
    });
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/body\.steps\[0\]\.from\[0\]/);
    const bad = await daemon.request({ method: 'GET', path: '/v1/provenance/derived-from/xyz' });
    expect(bad.status).toBe(400);
  });
});
