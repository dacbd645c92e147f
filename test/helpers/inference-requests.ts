/**
 * Inference requests for the event-bus tests, from the shipped models' sample_io.json (KServe
 * v2 JSON tensors plus the bus envelope), and a reader of a JetStream stream's messages.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import { REPO_ROOT } from './daemon.js';

const DATATYPE: Record<string, string> = { float32: 'FP32', int64: 'INT64', int32: 'INT32', float64: 'FP64' };

interface SampleTensor {
  readonly dtype: string;
  readonly shape: number[];
  readonly data: number[];
}

export interface Sample {
  readonly inputs: Record<string, SampleTensor>;
  readonly outputs: Record<string, SampleTensor>;
}

export function sample(model: string): Sample {
  return JSON.parse(readFileSync(join(REPO_ROOT, 'models', model, '1', 'sample_io.json'), 'utf8')) as Sample;
}

/** The model's sample input as a KServe v2 infer request body. */
export function sampleInputs(
  model: string,
): { name: string; datatype: string; shape: number[]; data: number[] }[] {
  return Object.entries(sample(model).inputs).map(([name, t]) => ({
    name,
    datatype: DATATYPE[t.dtype] ?? t.dtype,
    shape: t.shape,
    data: t.data,
  }));
}

/** The sample input repeated `batch` times along the first dimension (a bigger, slower request). */
export function batchedInputs(model: string, batch: number): ReturnType<typeof sampleInputs> {
  return sampleInputs(model).map((t) => {
    const per = t.data.length / (t.shape[0] ?? 1);
    const one = t.data.slice(0, per);
    const data: number[] = [];
    for (let i = 0; i < batch; i++) data.push(...one);
    return { ...t, shape: [batch, ...t.shape.slice(1)], data };
  });
}

export interface StreamMessage {
  readonly seq: number;
  readonly subject: string;
  readonly headers: Record<string, string>;
  readonly json: any;
}

/**
 * Every message on `filter` in `stream` from the start, read until `done(messages)` holds or
 * `timeoutMs` passes (then it returns what it has; the caller's expectations say what failed).
 */
export async function readStream(
  js: JetStreamClient,
  stream: string,
  filter: string,
  done: (messages: StreamMessage[]) => boolean,
  timeoutMs = 20_000,
): Promise<StreamMessage[]> {
  const out: StreamMessage[] = [];
  const consumer = await js.consumers.get(stream, {
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.All,
  });
  const deadline = Date.now() + timeoutMs;
  while (!done(out) && Date.now() < deadline) {
    const batch = await consumer.fetch({ max_messages: 100, expires: 1_000 });
    for await (const m of batch) {
      const headers: Record<string, string> = {};
      for (const k of m.headers?.keys() ?? []) headers[k] = m.headers?.get(k) ?? '';
      let json: unknown;
      try {
        json = m.json();
      } catch {
        json = undefined;
      }
      out.push({ seq: m.seq, subject: m.subject, headers, json });
      if (done(out)) break; // ends the fetch without waiting for it to expire
    }
  }
  await consumer.delete().catch(() => undefined);
  return out;
}
