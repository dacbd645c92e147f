/**
 * The messages of event-triggered inference (seed 000): their subjects and shapes.
 *
 *   inference.request.<model>        a KServe v2 infer request body plus the envelope fields
 *                                    `correlation_id` (required) and `model_version` (optional)
 *   inference.result.<model>         { correlation_id, causation_id (= receipt_id), model,
 *                                      model_version?, receipt_id, status, response, delivery_attempt }
 *   system.dlq.ml_inference_failed   { reason: { code, message, path? }, subject, stream_seq,
 *                                      delivery_attempt, correlation_id?, receipt_id?, payload }
 *
 * Results and dead letters also carry `Correlation-Id` / `Causation-Id` headers, so a consumer
 * can route on them without parsing the body.
 */

import { ThunderpacError } from '../../runtime/errors.js';

export const REQUEST_FILTER = 'inference.request.>';
const REQUEST_PREFIX = 'inference.request.';
export const DLQ_SUBJECT = 'system.dlq.ml_inference_failed';

export function resultSubject(model: string): string {
  return `inference.result.${model}`;
}

/** Why a request was dead-lettered: a stable code, a message, the field when it is about one. */
export interface DlqReason {
  readonly code: string;
  readonly message: string;
  readonly path?: string;
}

/** A request message that cannot be run as sent; dead-lettered, never retried. */
export class InvalidRequestMessage extends ThunderpacError {
  constructor(
    code: 'MALFORMED_JSON' | 'INVALID_ENVELOPE' | 'INVALID_SUBJECT',
    message: string,
    readonly path?: string,
  ) {
    super(code, message);
  }

  toReason(): DlqReason {
    return this.path === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, path: this.path };
  }
}

export interface InferenceRequestMessage {
  readonly model: string;
  readonly version: string | undefined;
  readonly correlationId: string;
  /** The KServe v2 infer request body: the message without its envelope fields. */
  readonly body: Record<string, unknown>;
}

const MODEL = /^[A-Za-z0-9_-]{1,128}$/;
/** Correlation ids become request ids in receipts and dedupe ids on the bus: printable, bounded. */
const CORRELATION_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;
const VERSION = /^[A-Za-z0-9._-]{1,64}$/;

export function parseRequestMessage(subject: string, data: Uint8Array): InferenceRequestMessage {
  const model = subject.startsWith(REQUEST_PREFIX) ? subject.slice(REQUEST_PREFIX.length) : '';
  if (!MODEL.test(model)) {
    throw new InvalidRequestMessage(
      'INVALID_SUBJECT',
      `subject ${JSON.stringify(subject)}: expected inference.request.<model> with one model token`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch (error) {
    throw new InvalidRequestMessage('MALFORMED_JSON', `payload is not JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidRequestMessage(
      'INVALID_ENVELOPE',
      'payload: expected a JSON object (a KServe v2 infer request with correlation_id)',
      '',
    );
  }
  const {
    correlation_id: correlationId,
    model_version: version,
    ...body
  } = parsed as Record<string, unknown>;
  if (typeof correlationId !== 'string' || !CORRELATION_ID.test(correlationId)) {
    throw new InvalidRequestMessage(
      'INVALID_ENVELOPE',
      `correlation_id: expected 1-128 characters of A-Z a-z 0-9 . _ : @ / + = -, found ${
        correlationId === undefined ? 'nothing' : JSON.stringify(correlationId)?.slice(0, 60)
      }`,
      'correlation_id',
    );
  }
  if (version !== undefined && (typeof version !== 'string' || !VERSION.test(version))) {
    throw new InvalidRequestMessage(
      'INVALID_ENVELOPE',
      `model_version: expected a version string, found ${JSON.stringify(version)?.slice(0, 60)}`,
      'model_version',
    );
  }
  return { model, version, correlationId, body };
}

/** The original payload in a dead letter: text when it is valid UTF-8, bounded either way. */
export function payloadForDeadLetter(data: Uint8Array): {
  payload?: string;
  payload_base64?: string;
  payload_truncated: boolean;
  payload_bytes: number;
} {
  const limit = 64 * 1024;
  const bytes = Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, limit));
  const truncated = data.byteLength > limit;
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  const exact = !text.includes('\uFFFD') || Buffer.from(text, 'utf8').equals(bytes);
  return exact
    ? { payload: text, payload_truncated: truncated, payload_bytes: data.byteLength }
    : {
        payload_base64: bytes.toString('base64'),
        payload_truncated: truncated,
        payload_bytes: data.byteLength,
      };
}
