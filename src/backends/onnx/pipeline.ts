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
 *
 * Shedding is O(1) and allocates almost nothing, because under overload it runs for most
 * arrivals and competes with the real work on the same thread: the queues are ring buffers
 * (no Array#shift copies), a shed request gets the pipeline's one pre-built, frozen
 * QueueFullError / DroppedError (no stack captured per request), and correlation ids and
 * dead-letter timestamps are formatted only when someone reads them.
 */

import { channel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { asThunderpacError, ThunderpacError } from '../../runtime/errors.js';
import { LatencyHistogram, type LatencySummary } from '../../telemetry/latency.js';
import { ShuttingDownError } from './errors.js';
import { RingQueue } from './ring-queue.js';

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

/**
 * A request shed because the queue was full (overflow 'reject'). A pipeline builds one and
 * rejects every shed request with that same frozen instance: it says nothing request-specific,
 * and building one per request (stack capture included) cost more than the work it shed.
 */
export class QueueFullError extends ThunderpacError {
  constructor(capacity: number) {
    super('QUEUE_FULL', `pipeline queue is full (${capacity} requests); request rejected`);
  }
}

/** A queued request shed for a newer one (overflow 'drop-oldest'); shared like QueueFullError. */
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
  /** The caller's id, or undefined: then one is made from `seq` when first needed. */
  readonly correlationId: string | undefined;
  readonly seq: number;
  readonly causationId: string | null;
  readonly enqueuedAt: number;
  readonly resolve: (r: Res) => void;
  readonly reject: (e: unknown) => void;
}

/** A dead letter as kept: the timestamp as a number, formatted when the letter is read. */
interface StoredLetter<Req> {
  readonly request: Req;
  readonly error: { readonly code: string; readonly message: string };
  readonly correlationId: string;
  readonly causationId: string | null;
  readonly atMs: number;
  readonly reason: DeadLetter<Req>['reason'];
}

// Generated correlation ids: this process and when it started, then a sequence number.
const correlationPrefix = `${process.pid.toString(36)}-${Date.now().toString(36)}-`;
let nextCorrelation = 0;

function errorOf(error: unknown): { readonly code: string; readonly message: string } {
  const e = asThunderpacError(error);
  return { code: e.code, message: e.message };
}

function correlationIdOf(p: { readonly correlationId: string | undefined; readonly seq: number }): string {
  return p.correlationId ?? correlationPrefix + p.seq.toString(36);
}

function materialize<Req>(l: StoredLetter<Req>): DeadLetter<Req> {
  return {
    request: l.request,
    error: l.error,
    correlationId: l.correlationId,
    causationId: l.causationId,
    at: new Date(l.atMs).toISOString(),
    reason: l.reason,
  };
}

export class Pipeline<Req, Res> {
  readonly #o: PipelineOptions<Req, Res>;
  readonly #queue = new RingQueue<Pending<Req, Res>>();
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  #accepting = true;
  readonly #dlq = new RingQueue<StoredLetter<Req>>();
  readonly #dlqCapacity: number;
  /** The one error every request shed by this pipeline is rejected with (see QueueFullError). */
  readonly #shedError: QueueFullError | DroppedError;
  /** Its code and message as dead letters carry them, shared by every shed letter. */
  readonly #shedLetterError: { readonly code: string; readonly message: string };
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
    if (options.overflow !== 'reject' && options.overflow !== 'drop-oldest') {
      throw new RangeError(`overflow must be 'reject' or 'drop-oldest', got ${String(options.overflow)}`);
    }
    this.#o = options;
    this.#dlqCapacity = options.dlqCapacity ?? 1000;
    this.#shedError = Object.freeze(
      options.overflow === 'reject'
        ? new QueueFullError(options.queueCapacity)
        : new DroppedError(options.queueCapacity),
    );
    this.#shedLetterError = Object.freeze({ code: this.#shedError.code, message: this.#shedError.message });
  }

  submit(request: Req, meta?: RequestMeta): Promise<Res> {
    const causationId = meta?.causationId ?? null;
    if (!this.#accepting)
      return Promise.reject(new ShuttingDownError(`pipeline ${this.#o.name ?? ''}`.trim()));
    const seq = nextCorrelation++;
    this.#m.submitted++;
    if (this.#queue.length >= this.#o.queueCapacity) {
      if (this.#o.overflow === 'reject') {
        this.#m.rejected++;
        if (ch.rejected.hasSubscribers) {
          ch.rejected.publish({
            correlationId: meta?.correlationId ?? correlationPrefix + seq.toString(36),
            causationId,
          });
        }
        return Promise.reject(this.#shedError);
      }
      const oldest = this.#queue.shift()!;
      this.#m.dropped++;
      this.#deadLetter(oldest, this.#shedError, 'dropped');
      if (ch.dropped.hasSubscribers) {
        ch.dropped.publish({ correlationId: correlationIdOf(oldest), causationId: oldest.causationId });
      }
      oldest.reject(this.#shedError);
    }
    return new Promise<Res>((resolve, reject) => {
      this.#queue.push({
        request,
        key: this.#o.batchKey?.(request) ?? '',
        correlationId: meta?.correlationId,
        seq,
        causationId,
        enqueuedAt: performance.now(),
        resolve,
        reject,
      });
      if (this.#queue.length > this.#m.maxQueueDepth) this.#m.maxQueueDepth = this.#queue.length;
      this.#schedule();
    });
  }

  /** Requests waiting now; cheap (metrics() also summarizes the latency histogram). */
  get queueDepth(): number {
    return this.#queue.length;
  }

  /** The dead letters kept so far (oldest first; a snapshot). */
  deadLetters(): readonly DeadLetter<Req>[] {
    return this.#dlq.toArray().map(materialize);
  }

  /** Take the dead letters out (e.g. to persist or replay them). */
  drainDeadLetters(): DeadLetter<Req>[] {
    return this.#dlq.drain().map(materialize);
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
    for (const p of this.#queue.drain()) {
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
      const oldest = this.#queue.at(0)!;
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
    for (let i = 0; i < this.#queue.length; i++) {
      if (this.#queue.at(i)!.key === key && ++n >= this.#o.maxBatchSize) break;
    }
    return n;
  }

  #take(key: string): Pending<Req, Res>[] {
    const batch = this.#queue.takeWhere((p) => p.key === key, this.#o.maxBatchSize);
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
        correlationId: correlationIdOf(p),
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
      ch.failed.publish({
        correlationId: correlationIdOf(p),
        causationId: p.causationId,
        error: letter.error,
      });
    }
    p.reject(error);
  }

  #deadLetter(p: Pending<Req, Res>, error: unknown, reason: DeadLetter<Req>['reason']): StoredLetter<Req> {
    const letter: StoredLetter<Req> = {
      request: p.request,
      // The shared shed error's code and message are one object, built once.
      error: error === this.#shedError ? this.#shedLetterError : errorOf(error),
      correlationId: correlationIdOf(p),
      causationId: p.causationId,
      atMs: Date.now(),
      reason,
    };
    this.#m.deadLettered++;
    this.#dlq.push(letter);
    if (this.#dlq.length > this.#dlqCapacity) this.#dlq.shift();
    return letter;
  }
}
