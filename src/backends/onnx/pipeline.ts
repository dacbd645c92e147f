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
 * The same backpressure signals as the daemon's admission (src/qos/), each optional:
 * - `codel`: shed by queue delay (RFC 8289), not only by length. At each batch launch the
 *   oldest waiting request is "dequeued" in CoDel's sense (its sojourn observed); once the
 *   delay has stayed above `targetMs` for `intervalMs`, requests are shed from the head at
 *   CoDel's control-law rate (QueueDelayError, 503 with Retry-After in the daemon). The length
 *   bound stays as the backstop for bursts that CoDel, by design, lets through. RFC CoDel's
 *   shed rate grows only as sqrt(count) / interval: right for senders that slow down when
 *   dropped (TCP), far too slow for open-loop arrivals (bench:onnx-overload: < 1 % shed at 1.5×
 *   and 5× overload). `codelMode: 'server'` is the variant for RPC queues (Facebook's "Fail at
 *   Scale" controlled delay): while the queue has not been empty for `intervalMs`, a request
 *   that waited more than `targetMs` is shed at launch time; otherwise more than `intervalMs`.
 * - `limit`: an adaptive limit (AIMD / Gradient2) on batches in flight, at most `concurrency`:
 *   each batch's measured latency (handler start → settle) and whether it faulted feed it.
 * - `breaker`: a circuit breaker (per model: pass `CircuitBreakers.get('model:…')` to share
 *   the daemon's): a batch is one call; a batch that threw, or had an outcome that `isFault`
 *   calls a fault, is a failure. Open: submit() refuses at once and what is queued is shed
 *   (CircuitOpenError, 503 with Retry-After = time until half-open). Half-open: only the
 *   breaker's probes are launched; the rest waits in the queue for their verdict.
 * Times (queue delay, batch latency, CoDel, the breaker) come from `clock` (injectable).
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
import { asThunderpacError, ThunderpacError } from '../../runtime/errors.js';
import type { LimitAlgorithm } from '../../qos/backpressure/adaptive-limit.js';
import { ConcurrencyLimiter } from '../../qos/backpressure/adaptive-limit.js';
import { type CircuitBreaker, REFUSED } from '../../qos/backpressure/circuit-breaker.js';
import { type Clock, systemClock } from '../../qos/clock.js';
import { type CoDelOptions, CoDelState } from '../../qos/queues/codel.js';
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

/**
 * A request accepted into the queue and then shed by CoDel: the queue delay stayed above target
 * for an interval. Shared (frozen) like QueueFullError. The daemon answers 503 with Retry-After.
 */
export class QueueDelayError extends ThunderpacError {
  readonly statusCode = 503;
  readonly retryAfterS: number;
  constructor(targetMs: number, intervalMs: number) {
    super(
      'QUEUE_DELAY',
      `request shed: the pipeline's queue delay stayed above ${targetMs} ms for ${intervalMs} ms (CoDel)`,
    );
    this.retryAfterS = Math.max(1, Math.ceil(intervalMs / 1000));
  }
}

/**
 * Refused (at submit) or shed (from the queue) because the pipeline's circuit breaker is open:
 * the handler has been failing. 503 with Retry-After = seconds until the breaker half-opens.
 */
export class CircuitOpenError extends ThunderpacError {
  readonly statusCode = 503;
  readonly retryAfterS: number;
  readonly breaker: string;
  constructor(breaker: string, retryAfterMs: number) {
    super('CIRCUIT_OPEN', `circuit breaker ${breaker} is open: the handler has been failing; retry later`);
    this.breaker = breaker;
    this.retryAfterS = Math.max(1, Math.ceil(retryAfterMs / 1000));
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
  /** Time for queue delay, batch latency, CoDel and the breaker (default performance.now()). */
  readonly clock?: Clock;
  /** Shed by queue delay (RFC 8289 CoDel), e.g. CODEL_DEFAULTS; absent: by length only. */
  readonly codel?: CoDelOptions;
  /** 'rfc8289' (default): the RFC's control law; 'server': the RPC-queue variant (see above). */
  readonly codelMode?: 'rfc8289' | 'server';
  /** Adaptive limit on batches in flight (never above `concurrency`), fed batch latency. */
  readonly limit?: LimitAlgorithm;
  /** Circuit breaker fed one result per batch; open: refuse and shed. */
  readonly breaker?: CircuitBreaker;
  /** Whether an outcome's error counts as a fault for the breaker and the limit (default: all do). */
  readonly isFault?: (error: unknown) => boolean;
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
  /** Accepted requests shed by CoDel (queue delay), and the CoDel episodes' state. */
  readonly shedByDelay: number;
  /** Refused at submit, or shed from the queue, because the breaker was open. */
  readonly shedByBreaker: number;
  /** The adaptive limit on batches in flight now (`concurrency` when none is set). */
  readonly batchLimit: number;
  /** The breaker's state ('closed' when none is set). */
  readonly breakerState: 'closed' | 'open' | 'half-open';
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
  #m = {
    submitted: 0,
    completed: 0,
    failed: 0,
    rejected: 0,
    dropped: 0,
    deadLettered: 0,
    maxQueueDepth: 0,
    shedByDelay: 0,
    shedByBreaker: 0,
  };
  readonly #clock: Clock;
  readonly #codel: CoDelState | null;
  readonly #delayError: QueueDelayError | null;
  /** Its code and message as dead letters carry them (one object, as for #shedError). */
  #delayLetterError: { readonly code: string; readonly message: string } | null = null;
  readonly #limiter: ConcurrencyLimiter | null;
  readonly #breaker: CircuitBreaker | null;
  #breakerTimer: NodeJS.Timeout | undefined;
  /** When the queue was last seen empty (codelMode 'server'). */
  #lastEmptyAt = 0;
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
    this.#clock = options.clock ?? systemClock;
    if (options.codel !== undefined) {
      const { targetMs, intervalMs } = options.codel;
      if (!(targetMs > 0)) throw new RangeError('codel.targetMs must be > 0');
      if (!(intervalMs > 0)) throw new RangeError('codel.intervalMs must be > 0');
      this.#codel = new CoDelState(options.codel);
      this.#delayError = Object.freeze(new QueueDelayError(targetMs, intervalMs));
      this.#delayLetterError = Object.freeze({
        code: this.#delayError.code,
        message: this.#delayError.message,
      });
    } else {
      this.#codel = null;
      this.#delayError = null;
    }
    if (options.codelMode !== undefined && options.codelMode !== 'rfc8289' && options.codelMode !== 'server')
      throw new RangeError(`codelMode must be 'rfc8289' or 'server', got ${String(options.codelMode)}`);
    this.#lastEmptyAt = this.#clock.now();
    this.#limiter = options.limit ? new ConcurrencyLimiter(options.limit) : null;
    this.#breaker = options.breaker ?? null;
  }

  submit(request: Req, meta?: RequestMeta): Promise<Res> {
    const causationId = meta?.causationId ?? null;
    if (!this.#accepting)
      return Promise.reject(new ShuttingDownError(`pipeline ${this.#o.name ?? ''}`.trim()));
    const seq = nextCorrelation++;
    this.#m.submitted++;
    const breaker = this.#breaker;
    if (breaker !== null && breaker.state === 'open') {
      this.#m.shedByBreaker++;
      this.#m.rejected++;
      if (ch.rejected.hasSubscribers) {
        ch.rejected.publish({
          correlationId: meta?.correlationId ?? correlationPrefix + seq.toString(36),
          causationId,
        });
      }
      return Promise.reject(new CircuitOpenError(breaker.key, breaker.retryAfterMs));
    }
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
      const now = this.#clock.now();
      if (this.#queue.length === 0) this.#lastEmptyAt = now;
      this.#queue.push({
        request,
        key: this.#o.batchKey?.(request) ?? '',
        correlationId: meta?.correlationId,
        seq,
        causationId,
        enqueuedAt: now,
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
      batchLimit: this.#batchLimit(),
      breakerState: this.#breaker?.state ?? 'closed',
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
    clearTimeout(this.#breakerTimer);
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

  /** Batches that may be in flight now: `concurrency`, or less while the adaptive limit says so. */
  #batchLimit(): number {
    const l = this.#limiter;
    return l === null ? this.#o.concurrency : Math.min(this.#o.concurrency, l.limit);
  }

  #schedule(): void {
    while (this.#inFlight < this.#batchLimit() && this.#queue.length > 0) {
      const now = this.#clock.now();
      let oldest = this.#queue.at(0)!;
      const waited = now - oldest.enqueuedAt;
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
      // A batch leaves now: that is CoDel's dequeue (only now, never on a mere look).
      if (this.#codel !== null) {
        if (!(this.#o.codelMode === 'server' ? this.#shedStale(now) : this.#shedByDelay(now))) return;
        oldest = this.#queue.at(0)!;
      }
      let permit = 0;
      const breaker = this.#breaker;
      if (breaker !== null) {
        permit = breaker.acquire();
        if (permit === REFUSED) {
          if (breaker.state === 'open')
            this.#shedAll(new CircuitOpenError(breaker.key, breaker.retryAfterMs));
          // Half-open, every probe out: the probes' results schedule again. A probe taken by
          // another user of a shared breaker may not: look again shortly.
          else if (this.#inFlight === 0 && this.#breakerTimer === undefined) {
            this.#breakerTimer = setTimeout(() => {
              this.#breakerTimer = undefined;
              this.#schedule();
            }, 5);
          }
          return;
        }
      }
      this.#limiter?.tryAcquire();
      this.#dispatch(this.#take(oldest.key), permit);
    }
  }

  /** CoDel's bookkeeping for the head as the one dequeued; false when the queue is empty. */
  #observeHead(now: number): boolean {
    const c = this.#codel!;
    const head = this.#queue.at(0);
    if (head === undefined) {
      c.observeEmpty();
      c.dropping = false;
      return false;
    }
    c.observe(now, now - head.enqueuedAt, this.#queue.length - 1);
    return true;
  }

  /**
   * RFC 8289 dequeue at a batch launch: the oldest request is the one dequeued (its sojourn is
   * the batch's queue delay); while CoDel is dropping, heads are shed at its control-law times.
   * Returns whether something is left to launch (CoDel never sheds the last request).
   */
  #shedByDelay(now: number): boolean {
    const c = this.#codel!;
    if (!this.#observeHead(now)) return false;
    if (c.dropping) {
      if (!c.okToDrop) c.dropping = false;
      while (c.dropping && now >= c.dropNext) {
        this.#shedHead();
        c.count++;
        if (!this.#observeHead(now)) return false;
        if (!c.okToDrop) c.dropping = false;
        else c.dropNext = c.controlLaw(c.dropNext, c.count);
      }
    } else if (c.okToDrop) {
      this.#shedHead();
      const left = this.#observeHead(now);
      c.dropping = true;
      const delta = c.count - c.lastCount;
      c.count = delta > 1 && now - c.dropNext < 16 * c.intervalMs ? delta : 1;
      c.dropNext = c.controlLaw(now, c.count);
      c.lastCount = c.count;
      return left;
    }
    return true;
  }

  /**
   * codelMode 'server': overloaded (the queue not empty for a whole interval), heads that waited
   * more than target are shed; otherwise heads that waited more than an interval. Returns
   * whether something is left to launch.
   */
  #shedStale(now: number): boolean {
    const c = this.#codel!;
    const q = this.#queue;
    const maxWait = now - this.#lastEmptyAt > c.intervalMs ? c.targetMs : c.intervalMs;
    let head = q.at(0);
    while (head !== undefined && now - head.enqueuedAt > maxWait) {
      this.#shedHead();
      head = q.at(0);
    }
    if (head === undefined) {
      this.#lastEmptyAt = now;
      this.#checkIdle();
      return false;
    }
    return true;
  }

  #shedHead(): void {
    const p = this.#queue.shift()!;
    this.#m.shedByDelay++;
    this.#m.dropped++;
    this.#deadLetter(p, this.#delayError, 'dropped');
    if (ch.dropped.hasSubscribers) {
      ch.dropped.publish({ correlationId: correlationIdOf(p), causationId: p.causationId });
    }
    p.reject(this.#delayError);
  }

  /** The breaker opened: everything queued is shed with `error` (it would only wait to fail). */
  #shedAll(error: CircuitOpenError): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    for (const p of this.#queue.drain()) {
      this.#m.shedByBreaker++;
      this.#m.dropped++;
      this.#deadLetter(p, error, 'dropped');
      if (ch.dropped.hasSubscribers) {
        ch.dropped.publish({ correlationId: correlationIdOf(p), causationId: p.causationId });
      }
      p.reject(error);
    }
    this.#checkIdle();
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
    if (this.#queue.length === 0) this.#lastEmptyAt = this.#clock.now();
    if (this.#timer !== undefined && this.#queue.length === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    return batch;
  }

  #dispatch(batch: Pending<Req, Res>[], permit: number): void {
    this.#inFlight++;
    this.#batches++;
    this.#batchItems += batch.length;
    if (batch.length > this.#maxBatch) this.#maxBatch = batch.length;
    if (ch.batch.hasSubscribers) ch.batch.publish({ size: batch.length, queueDepth: this.#queue.length });
    const started = this.#clock.now();
    let fault = false;
    let outcomes: Promise<readonly Outcome<Res>[]>;
    try {
      outcomes = this.#o.handler(batch.map((p) => p.request));
    } catch (err) {
      outcomes = Promise.reject(err);
    }
    const isFault = this.#o.isFault;
    outcomes
      .then(
        (results) => {
          batch.forEach((p, i) => {
            const r = results[i];
            if (r?.ok) this.#complete(p, r.value, batch.length);
            else {
              const error = r
                ? r.error
                : new ThunderpacError('PIPELINE_NO_RESULT', 'handler returned no outcome');
              if (!fault && (isFault === undefined || isFault(error))) fault = true;
              this.#fail(p, error);
            }
          });
        },
        (err) => {
          fault = true;
          for (const p of batch) this.#fail(p, err);
        },
      )
      .finally(() => {
        this.#inFlight--;
        const latencyMs = this.#clock.now() - started;
        this.#limiter?.release(latencyMs, !fault);
        const breaker = this.#breaker;
        if (breaker !== null) {
          breaker.release(permit, latencyMs, !fault);
          if (breaker.state === 'open')
            this.#shedAll(new CircuitOpenError(breaker.key, breaker.retryAfterMs));
        }
        this.#schedule();
        this.#checkIdle();
      });
  }

  #complete(p: Pending<Req, Res>, value: Res, batchSize: number): void {
    this.#m.completed++;
    const latencyNs = (this.#clock.now() - p.enqueuedAt) * 1e6;
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
    this.#latency.record((this.#clock.now() - p.enqueuedAt) * 1e6);
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
      error:
        error === this.#shedError
          ? this.#shedLetterError
          : error === this.#delayError && this.#delayLetterError !== null
            ? this.#delayLetterError
            : errorOf(error),
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
