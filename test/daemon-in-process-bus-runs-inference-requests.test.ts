/**
 * The daemon's embedded event bus, end to end (no `nats` section in the config): an inference
 * request published with `POST /v1/events/inference.request.<model>` over the real unix
 * socket is consumed by the daemon, run through the model service and answered on
 * `inference.result.<model>` (read back with `GET /v1/events/...`, a long poll), with the
 * correlation id and the receipt id as causation id; a request that fails goes to
 * `system.dlq.ml_inference_failed`; a bad envelope is a 400 naming the field.
 */

import { describe, expect, it } from 'vitest';
import { useDaemon } from './helpers/daemon.js';
import { sampleInputs } from './helpers/inference-requests.js';

const enc = encodeURIComponent;

describe('the in-process event bus in the daemon', () => {
  const daemon = useDaemon();

  it('runs a published inference request and publishes its result with correlation and causation ids', async () => {
    const published = await daemon().request({
      method: 'POST',
      path: '/v1/events/inference.request.tree',
      body: { correlation_id: 'local-tree-1', inputs: sampleInputs('tree') },
    });
    expect(published.status).toBe(202);
    expect(published.body).toMatchObject({ subject: 'inference.request.tree', duplicate: false });

    const read = await daemon().request({ path: '/v1/events/inference.result.tree?wait_ms=20000' });
    expect(read.status).toBe(200);
    const [result] = read.body.messages;
    expect(result.subject).toBe('inference.result.tree');
    expect(result.headers['Correlation-Id']).toBe('local-tree-1');
    expect(result.data).toMatchObject({
      correlation_id: 'local-tree-1',
      model: 'tree',
      status: 'completed',
      delivery_attempt: 1,
    });
    expect(result.data.causation_id).toMatch(/^[0-9a-f]{64}$/);
    expect(result.data.receipt_id).toBe(result.data.causation_id);
    const names = result.data.response.outputs.map((o: { name: string }) => o.name).sort();
    expect(names).toEqual(['label', 'probabilities']);
    expect(read.body.last_seq).toBe(result.seq);

    // The same request again (a client retry) is stored once.
    const again = await daemon().request({
      method: 'POST',
      path: '/v1/events/inference.request.tree',
      body: { correlation_id: 'local-tree-1', inputs: sampleInputs('tree') },
    });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ seq: published.body.seq, duplicate: true });
  });

  it('dead-letters a request the model refuses, with the reason naming the tensor', async () => {
    const published = await daemon().request({
      method: 'POST',
      path: '/v1/events/inference.request.mlp',
      body: {
        correlation_id: 'local-bad-shape',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }],
      },
    });
    expect(published.status).toBe(202);
    const read = await daemon().request({
      path: `/v1/events/${enc('system.dlq.>')}?wait_ms=20000`,
    });
    expect(read.status).toBe(200);
    const letter = read.body.messages.find(
      (m: { data: { correlation_id?: string } }) => m.data.correlation_id === 'local-bad-shape',
    );
    expect(letter.subject).toBe('system.dlq.ml_inference_failed');
    expect(letter.data).toMatchObject({
      subject: 'inference.request.mlp',
      stream_seq: published.body.seq,
      delivery_attempt: 1,
      reason: { path: 'inputs[0].shape' },
    });
    expect(letter.data.reason.message).toMatch(/\bx\b/);
  });

  it('refuses a request without a correlation id, or on another subject, with a 400 naming the field', async () => {
    const noId = await daemon().request({
      method: 'POST',
      path: '/v1/events/inference.request.mlp',
      body: { inputs: sampleInputs('mlp') },
    });
    expect(noId.status).toBe(400);
    expect(noId.body.error).toMatchObject({ code: 'INVALID_ENVELOPE', path: 'body.correlation_id' });

    const result = await daemon().request({
      method: 'POST',
      path: '/v1/events/inference.result.mlp',
      body: { correlation_id: 'forged' },
    });
    expect(result.status).toBe(400);
    expect(result.body.error).toMatchObject({ code: 'INVALID_SUBJECT', path: 'params.subject' });

    const badFilter = await daemon().request({ path: `/v1/events/${enc('a.>.b')}` });
    expect(badFilter.status).toBe(400);
    expect(badFilter.body.error).toMatchObject({ code: 'INVALID_SUBJECT', path: 'params.subject' });
  });
});
