/**
 * Event-triggered execution over NATS JetStream (issue #11, seed 000): a real nats-server
 * started here, the real daemon configured with its URL. Requests published on
 * `inference.request.<model>` come back on `inference.result.<model>` with the request's
 * correlation id and the receipt id as causation id; the receipts are in the store, sealed with
 * the bus's actor and the correlation id as request id; malformed requests are dead-lettered
 * with a typed reason and acked (never redelivered).
 */

import { join } from 'node:path';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Thunderpac } from '../src/thunderpac.js';
import { type TestDaemon, startTestDaemon, tempDirectory } from './helpers/daemon.js';
import { readStream, sample, sampleInputs } from './helpers/inference-requests.js';
import { type NatsServer, startNatsServer } from './helpers/nats-server.js';

const STREAM = 'THUNDERPAC';
const DURABLE = 'thunderpac-inference';
const MODELS = ['mlp', 'cnn', 'tree'] as const;

describe('the daemon consumes inference requests from NATS JetStream', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let daemon: TestDaemon | null = null;
  const storeDir = tempDirectory('tp-events-store-');
  const store = join(storeDir.dir, 'store');
  const receipts: { id: string; correlationId: string }[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    daemon = await startTestDaemon({
      store,
      config: { nats: { url: nats.url, actor: 'bus:nats-test', ackWaitMs: 5_000, maxInFlight: 4 } },
    });
    nc = await connect({ servers: nats.url });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  }, 180_000);

  afterAll(async () => {
    await nc?.close();
    await daemon?.stop();
    await nats?.stop();
    storeDir.remove();
  });

  it('answers mlp, cnn and tree requests on inference.result.<model> with correlation and causation ids', async () => {
    for (const model of MODELS) {
      const ack = await js.publish(
        `inference.request.${model}`,
        JSON.stringify({ correlation_id: `corr-${model}`, inputs: sampleInputs(model) }),
      );
      expect(ack.stream).toBe(STREAM); // the daemon created the stream over inference.>
    }
    const results = await readStream(js, STREAM, 'inference.result.>', (m) => m.length >= MODELS.length);
    expect(results.map((r) => r.subject).sort()).toEqual(MODELS.map((m) => `inference.result.${m}`).sort());
    for (const model of MODELS) {
      const result = results.find((r) => r.subject === `inference.result.${model}`);
      const body = result?.json;
      expect(body).toMatchObject({
        correlation_id: `corr-${model}`,
        model,
        status: 'completed',
        delivery_attempt: 1,
      });
      expect(body.causation_id).toMatch(/^[0-9a-f]{64}$/);
      expect(body.receipt_id).toBe(body.causation_id);
      expect(result?.headers['Correlation-Id']).toBe(`corr-${model}`);
      expect(result?.headers['Causation-Id']).toBe(body.causation_id);
      // The response is the KServe v2 infer response, with the sample's expected outputs.
      const expected = sample(model).outputs;
      const outputs = body.response.outputs as { name: string; shape: number[]; data: number[] }[];
      expect(outputs.map((o) => o.name).sort()).toEqual(Object.keys(expected).sort());
      for (const o of outputs) {
        const want = expected[o.name];
        expect(o.shape).toEqual(want?.shape);
        for (const [i, v] of o.data.entries()) expect(v).toBeCloseTo(want?.data[i] ?? Number.NaN, 4);
      }
      receipts.push({ id: body.receipt_id, correlationId: `corr-${model}` });
    }
  });

  it('dead-letters malformed requests with a typed reason, acked so they never come back', async () => {
    const bad: [subject: string, payload: string, code: string, path?: string][] = [
      ['inference.request.mlp', '{"correlation_id": "bad-json", "inputs": [', 'MALFORMED_JSON'],
      [
        'inference.request.mlp',
        JSON.stringify({ inputs: sampleInputs('mlp') }),
        'INVALID_ENVELOPE',
        'correlation_id',
      ],
      ['inference.request.mlp', '[1, 2, 3]', 'INVALID_ENVELOPE'],
      [
        'inference.request.no_such_model',
        JSON.stringify({ correlation_id: 'unknown-model', inputs: [] }),
        'NOT_FOUND',
      ],
      [
        'inference.request.mlp',
        JSON.stringify({
          correlation_id: 'wrong-shape',
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }],
        }),
        '',
        'inputs[0].shape',
      ],
      ['inference.request.mlp.extra', JSON.stringify({ correlation_id: 'two-tokens' }), 'INVALID_SUBJECT'],
    ];
    const seqs: number[] = [];
    for (const [subject, payload] of bad) seqs.push((await js.publish(subject, payload)).seq);
    const first = seqs[0] ?? 0;
    const letters = await readStream(
      js,
      STREAM,
      'system.dlq.ml_inference_failed',
      (m) => m.filter((l) => l.json.stream_seq >= first).length >= bad.length,
    );
    const mine = letters
      .filter((l) => l.json.stream_seq >= first)
      .sort((a, b) => a.json.stream_seq - b.json.stream_seq);
    expect(mine).toHaveLength(bad.length);
    mine.forEach((letter, i) => {
      const [subject, payload, code, path] = bad[i] ?? [];
      expect(letter.json).toMatchObject({ subject, stream_seq: seqs[i], delivery_attempt: 1, payload });
      if (code) expect(letter.json.reason.code).toBe(code);
      else expect(letter.json.reason.code).toMatch(/^[A-Z_]+$/);
      if (path) expect(letter.json.reason.path).toBe(path);
      expect(letter.json.reason.message).not.toMatch(/\n\s+at /); // never a stack trace
    });
    expect(mine[4]?.json.reason.message).toMatch(/\bx\b/); // names the tensor
    expect(mine[3]?.headers['Correlation-Id']).toBe('unknown-model');
    // Acked: nothing pending or awaiting redelivery on the daemon's durable consumer.
    const deadline = Date.now() + 10_000;
    let info = await jsm.consumers.info(STREAM, DURABLE);
    while ((info.num_ack_pending > 0 || info.num_pending > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      info = await jsm.consumers.info(STREAM, DURABLE);
    }
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(0);
    expect(info.num_redelivered).toBe(0);
  });

  it('seals the bus actor and the correlation id as request id in each receipt in the store', async () => {
    expect(receipts).toHaveLength(MODELS.length);
    expect((await daemon?.stop())?.code).toBe(0);
    daemon = null;
    const tp = await Thunderpac.open({ store });
    try {
      for (const { id, correlationId } of receipts) {
        const receipt = tp.store?.getReceipt(id);
        expect(receipt?.id).toBe(id);
        expect(receipt).toMatchObject({
          actor: 'bus:nats-test',
          requestId: correlationId,
          status: 'completed',
        });
        expect((await tp.verify(id)).match).toBe(true);
      }
    } finally {
      await tp.close();
    }
  });
});
