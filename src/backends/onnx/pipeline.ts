/**
 * A batching pipeline with backpressure, in front of any batch handler (the onnx one is in
 * pipeline-onnx.ts).
 *
 *   submit ─▶ bounded queue ─▶ dynamic batcher ─▶ ≤ concurrency batches in flight ─▶ handler
 *                 │ full: reject (QUEUE_FULL) or drop-oldest (→ DLQ)          │ failure → DLQ
 *
 * Dynamic batching: a batch leaves when it has `maxBatchSize` compatible requests (same
 * batchKey) or when its oldest request has waited `maxQueueDelayMs`, whichever comes first,
 * and only while fewer than `concurrency` batches are in flight — otherwise requests wait in
 * the queue, which is bounded by `queueCapacity`: memory is bounded however hard callers push.
 *
 * Nothing is lost silently: every submit() settles; a request that fails or is dropped after it
 * was accepted goes to the dead-letter queue with the original request, the error and its
 * correlation id, and an event is published (diagnostics_channel thunderpac:pipeline:*).
 */

import { channel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { asThunderpacError, ThunderpacError } from '../../runtime/errors.js';
import { LatencyHistogram, type LatencySummary } from '../../telemetry/latency.js';
import { ShuttingDownError } from './errors.js';

export const PIPELINE_EVENTS = {
  completed: 'thunderpac:pipeline:completed',
  failed: 'thunderpac:pipeline:failed',
  dropped: 'thunderpac:pipeline:dropped',
  rejected: 'thunderpac:pipeline:rejected',
  batch: 'thunderpac:pipeline:batch',
} as const;

const ch = {
  completed: channel(PIPELINE_EVENTS.completed),
  failed: channel(PIPELINE_EVENTS.failed),
  dropped: channel(PIPELINE_EVENTS.dropped),
  rejected: channel(PIPELINE_EVENTS.rejected),
  batch: channel(PIPELINE_EVENTS.batch),
};

export class QueueFullError extends ThunderpacError {
  constructor(capacity: number) {
    super('QUEUE_FULL', `pipeline queue is full (${capacity} requests); request rejected`);
  }
}

export class DroppedError extends ThunderpacError {
  constructor(capacity: number) {
    super('DROPPED', `request dropped: the queue was full (${capacity}) and a newer request took its place`);
  }
}

export type Outcome<Res> =
  | { readonly ok: true; readonly value: Res }
  | { readonly ok: false; readonly error: unknown };

export interface PipelineOptions<Req, Res> {
  readonly name?: string;
  readonly maxBatchSize: number;
  readonly maxQueueDelayMs: number;
  /** Batches in flight at once. */
  readonly concurrency: number;
  readonly queueCapacity: number;
  readonly overflow: 'reject' | 'drop-oldest';
  /** Entries kept in the DLQ; older ones are evicted (and counted) beyond it (default 1000). */
  readonly dlqCapacity?: number;
  /** One outcome per request, in order. A throw fails the whole batch. */
  readonly handler: (batch: readonly Req[]) => Promise<readonly Outcome<Res>[]>;
  /** Requests with different keys never share a batch (default: all compatible). */
  readonly batchKey?: (request: Req) => string;
}

export interface RequestMeta {
  /** Identifies the request end to end (generated when absent). */
  readonly correlationId?: string;
  /** The event or request that caused this one. */
  readonly causationId?: string;
}

export interface DeadLetter<Req> {
  readonly request: Req;
  readonly error: { readonly code: string; readonly message: string };
  readonly correlationId: string;
  readonly causationId: string | null;
  readonly at: string;
  readonly reason: 'failed' | 'dropped' | 'shutdown';
}

export interface PipelineMetrics {
  readonly submitted: number;
  readonly completed: number;
  readonly failed: number;
  readonly rejected: number;
  readonly dropped: number;
  readonly deadLettered: number;
  /** Dead-lettered over submitted (0 when nothing was submitted). */
  readonly dlqRate: number;
  readonly queueDepth: number;
  readonly maxQueueDepth: number;
  readonly inFlightBatches: number;
  readonly batches: number;
  readonly meanBatchSize: number;
  readonly maxBatchSize: number;
  /** Submit → settle, ns. */
  readonly latency: LatencySummary;
}

interface Pending<Req, Res> {
  readonly request: Req;
  readonly key: string;
  readonly correlationId: string;
  readonly causationId: string | null;
  readonly enqueuedAt: number;
  readonly resolve: (r: Res) => void;
  readonly reject: (e: unknown) => void;
}

let nextCorrelation = 0;
function newCorrelationId(): string {
  return `${process.pid.toString(36)}-${Date.now().toString(36)}-${(nextCorrelation++).toString(36)}`;
}

export class Pipeline<Req, Res> {
  readonly #o: PipelineOptions<Req, Res>;
  #queue: Pending<Req, Res>[] = [];
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  #accepting = true;
  readonly #dlq: DeadLetter<Req>[] = [];
  readonly #latency = new LatencyHistogram();
  readonly #idleWaiters: (() => void)[] = [];
  #m = { submitted: 0, completed: 0, failed: 0, rejected: 0, dropped: 0, deadLettered: 0, maxQueueDepth: 0 };
  #batches = 0;
  #batchItems = 0;
  #maxBatch = 0;

  constructor(options: PipelineOptions<Req, Res>) {
    for (const k of ['maxBatchSize', 'concurrency', 'queueCapacity'] as const) {
      if (!Number.isSafeInteger(options[k]) || options[k] < 1)
        throw new RangeError(`${k} must be an integer >= 1`);
    }
    if (!(options.maxQueueDelayMs >= 0)) throw new RangeError('maxQueueDelayMs must be >= 0');
    this.#o = options;
  }

  submit(request: Req, meta: RequestMeta = {}): Promise<Res> {
    const correlationId = meta.correlationId ?? newCorrelationId();
    const causationId = meta.causationId ?? null;
    if (!this.#accepting)
      return Promise.reject(new ShuttingDownError(`pipeline ${this.#o.name ?? ''}`.trim()));
    this.#m.submitted++;
    if (this.#queue.length >= this.#o.queueCapacity) {
      if (this.#o.overflow === 'reject') {
        this.#m.rejected++;
        if (ch.rejected.hasSubscribers) ch.rejected.publish({ correlationId, causationId });
        return Promise.reject(new QueueFullError(this.#o.queueCapacity));
      }
      const oldest = this.#queue.shift()!;
      const err = new DroppedError(this.#o.queueCapacity);
      this.#m.dropped++;
      this.#deadLetter(oldest, err, 'dropped');
      if (ch.dropped.hasSubscribers) {
        ch.dropped.publish({ correlationId: oldest.correlationId, causationId: oldest.causationId });
      }
      oldest.reject(err);
    }
    return new Promise<Res>((resolve, reject) => {
      this.#queue.push({
        request,
        key: this.#o.batchKey?.(request) ?? '',
        correlationId,
        causationId,
        enqueuedAt: performance.now(),
        resolve,
        reject,
      });
      if (this.#queue.length > this.#m.maxQueueDepth) this.#m.maxQueueDepth = this.#queue.length;
      this.#schedule();
    });
  }

  /** The dead letters kept so far (oldest first). */
  deadLetters(): readonly DeadLetter<Req>[] {
    return this.#dlq;
  }

  /** Take the dead letters out (e.g. to persist or replay them). */
  drainDeadLetters(): DeadLetter<Req>[] {
    return this.#dlq.splice(0);
  }

  metrics(): PipelineMetrics {
    const m = this.#m;
    return {
      ...m,
      dlqRate: m.submitted === 0 ? 0 : m.deadLettered / m.submitted,
      queueDepth: this.#queue.length,
      inFlightBatches: this.#inFlight,
      batches: this.#batches,
      meanBatchSize: this.#batches === 0 ? 0 : this.#batchItems / this.#batches,
      maxBatchSize: this.#maxBatch,
      latency: this.#latency.summary(),
    };
  }

  /**
   * Graceful drain: refuse new requests, send what is queued without waiting for the batch
   * delay, and resolve when every accepted request has settled.
   */
  drain(): Promise<void> {
    this.#accepting = false;
    this.#schedule();
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Drain without waiting: what is still queued fails (ShuttingDownError) into the DLQ. */
  abort(): void {
    this.#accepting = false;
    clearTimeout(this.#timer);
    for (const p of this.#queue.splice(0)) {
      const err = new ShuttingDownError('pipeline');
      this.#deadLetter(p, err, 'shutdown');
      p.reject(err);
    }
    this.#checkIdle();
  }

  #idle(): boolean {
    return this.#queue.length === 0 && this.#inFlight === 0;
  }

  #checkIdle(): void {
    if (this.#idle()) for (const w of this.#idleWaiters.splice(0)) w();
  }

  #schedule(): void {
    while (this.#inFlight < this.#o.concurrency && this.#queue.length > 0) {
      const oldest = this.#queue[0]!;
      const waited = performance.now() - oldest.enqueuedAt;
      const full = this.#countKey(oldest.key) >= this.#o.maxBatchSize;
      if (!full && waited < this.#o.maxQueueDelayMs && this.#accepting) {
        // Not full and not due: wake up when the oldest request is due.
        if (this.#timer === undefined) {
          this.#timer = setTimeout(() => {
            this.#timer = undefined;
            this.#schedule();
          }, this.#o.maxQueueDelayMs - waited);
        }
        return;
      }
      this.#dispatch(this.#take(oldest.key));
    }
  }

  #countKey(key: string): number {
    let n = 0;
    for (const p of this.#queue) if (p.key === key && ++n >= this.#o.maxBatchSize) break;
    return n;
  }

  #take(key: string): Pending<Req, Res>[] {
    const batch: Pending<Req, Res>[] = [];
    const rest: Pending<Req, Res>[] = [];
    for (const p of this.#queue) {
      if (batch.length < this.#o.maxBatchSize && p.key === key) batch.push(p);
      else rest.push(p);
    }
    this.#queue = rest;
    if (this.#timer !== undefined && this.#queue.length === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    return batch;
  }

  #dispatch(batch: Pending<Req, Res>[]): void {
    this.#inFlight++;
    this.#batches++;
    this.#batchItems += batch.length;
    if (batch.length > this.#maxBatch) this.#maxBatch = batch.length;
    if (ch.batch.hasSubscribers) ch.batch.publish({ size: batch.length, queueDepth: this.#queue.length });
    let outcomes: Promise<readonly Outcome<Res>[]>;
    try {
      outcomes = this.#o.handler(batch.map((p) => p.request));
    } catch (err) {
      outcomes = Promise.reject(err);
    }
    outcomes
      .then(
        (results) => {
          batch.forEach((p, i) => {
            const r = results[i];
            if (r?.ok) this.#complete(p, r.value, batch.length);
            else
              this.#fail(
                p,
                r ? r.error : new ThunderpacError('PIPELINE_NO_RESULT', 'handler returned no outcome'),
              );
          });
        },
        (err) => {
          for (const p of batch) this.#fail(p, err);
        },
      )
      .finally(() => {
        this.#inFlight--;
        this.#schedule();
        this.#checkIdle();
      });
  }

  #complete(p: Pending<Req, Res>, value: Res, batchSize: number): void {
    this.#m.completed++;
    const latencyNs = (performance.now() - p.enqueuedAt) * 1e6;
    this.#latency.record(latencyNs);
    if (ch.completed.hasSubscribers) {
      ch.completed.publish({
        correlationId: p.correlationId,
        causationId: p.causationId,
        latencyNs,
        batchSize,
      });
    }
    p.resolve(value);
  }

  #fail(p: Pending<Req, Res>, error: unknown): void {
    this.#m.failed++;
    this.#latency.record((performance.now() - p.enqueuedAt) * 1e6);
    const letter = this.#deadLetter(p, error, 'failed');
    if (ch.failed.hasSubscribers) {
      ch.failed.publish({ correlationId: p.correlationId, causationId: p.causationId, error: letter.error });
    }
    p.reject(error);
  }

  #deadLetter(p: Pending<Req, Res>, error: unknown, reason: DeadLetter<Req>['reason']): DeadLetter<Req> {
    const e = asThunderpacError(error);
    const letter: DeadLetter<Req> = {
      request: p.request,
      error: { code: e.code, message: e.message },
      correlationId: p.correlationId,
      causationId: p.causationId,
      at: new Date().toISOString(),
      reason,
    };
    this.#m.deadLettered++;
    this.#dlq.push(letter);
    if (this.#dlq.length > (this.#o.dlqCapacity ?? 1000)) this.#dlq.shift();
    return letter;
  }
}
