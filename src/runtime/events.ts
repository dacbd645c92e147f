/**
 * Telemetry events, published through node:diagnostics_channel so that any tool (APM agents,
 * our own telemetry/ module, tests) can subscribe without the runtime knowing about it.
 * Names follow the seed documents; they are interface — test/telemetry-event-names.test.ts
 * pins them. Publishing costs one `hasSubscribers` check when nobody listens.
 */

import { channel } from 'node:diagnostics_channel';
import type { ReceiptError } from './errors.js';
import type { Receipt } from './receipt.js';
import type { BackendName } from './types.js';

export const EVENT_NAMES = {
  executionStart: 'thunderpac:execution:start',
  executionStop: 'thunderpac:execution:stop',
  executionException: 'thunderpac:execution:exception',
  resourceExceeded: 'thunderpac:resource:exceeded',
  validationFailed: 'thunderpac:validation:failed',
  // QoS (seed 001's telemetry, src/qos/admission.ts publishes them).
  qosRateLimitCheck: 'thunderpac:qos:rate_limit:check',
  qosRateLimitExceeded: 'thunderpac:qos:rate_limit:exceeded',
  qosQuotaConsumed: 'thunderpac:qos:quota:consumed',
  qosQueueEnqueued: 'thunderpac:qos:queue:enqueued',
  qosQueueDequeued: 'thunderpac:qos:queue:dequeued',
  qosBackpressureApplied: 'thunderpac:qos:backpressure:applied',
  qosAbuseDetected: 'thunderpac:qos:abuse_detected',
} as const;

export interface ExecutionStartEvent {
  readonly buildId: string;
  readonly backend: BackendName;
  readonly entry: string;
  readonly inputBytes: number;
}

export interface ExecutionStopEvent {
  readonly receipt: Receipt;
}

export interface ExecutionExceptionEvent {
  readonly receipt: Receipt;
  readonly error: ReceiptError;
}

export interface ResourceExceededEvent {
  readonly buildId: string;
  readonly backend: BackendName;
  readonly limit: string;
  readonly allowed: number;
  readonly observed: number | undefined;
}

export interface ValidationFailedEvent {
  readonly buildId: string;
  readonly backend: BackendName;
  readonly path: string;
  readonly kind: string;
  readonly expected: string;
  readonly found: string;
}

export const channels = {
  executionStart: channel(EVENT_NAMES.executionStart),
  executionStop: channel(EVENT_NAMES.executionStop),
  executionException: channel(EVENT_NAMES.executionException),
  resourceExceeded: channel(EVENT_NAMES.resourceExceeded),
  validationFailed: channel(EVENT_NAMES.validationFailed),
  qosRateLimitCheck: channel(EVENT_NAMES.qosRateLimitCheck),
  qosRateLimitExceeded: channel(EVENT_NAMES.qosRateLimitExceeded),
  qosQuotaConsumed: channel(EVENT_NAMES.qosQuotaConsumed),
  qosQueueEnqueued: channel(EVENT_NAMES.qosQueueEnqueued),
  qosQueueDequeued: channel(EVENT_NAMES.qosQueueDequeued),
  qosBackpressureApplied: channel(EVENT_NAMES.qosBackpressureApplied),
  qosAbuseDetected: channel(EVENT_NAMES.qosAbuseDetected),
};
