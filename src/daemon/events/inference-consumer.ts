/**
 * Event-triggered inference (seed 000): consumes `inference.request.<model>`, runs it through
 * the same ModelService as KServe v2 (so it is the same execution, with a receipt), publishes
 * `inference.result.<model>` with the request's correlation id and the receipt id as causation
 * id, then acks.
 *
 * What is guaranteed:
 * - A request is acked only after its result (or its dead letter) is stored by the bus, so a
 *   daemon killed mid-execution leaves it unacked and it is redelivered after the ack wait.
 * - A request that cannot succeed (unparseable, bad envelope, unknown model, bad tensors, an
 *   execution that failed) is dead-lettered to `system.dlq.ml_inference_failed` with a typed
 *   reason and acked: poison messages never loop. A request delivered `maxDeliver` times
 *   without completing (one that kills the daemon, say) is dead-lettered on its last delivery.
 * - An overloaded or draining daemon naks (with the Retry-After delay): the request waits on
 *   the bus, not in memory.
 * - At least once, not exactly once, for executions: a request redelivered after a crash runs
 *   again (two receipts with the same request id). Its result is published once: the result's
 *   dedupe id is `result:<model>:<correlation id>`, which the bus drops within its duplicate
 *   window (JetStream's Nats-Msg-Id), and a process that already published a result for a
 *   correlation id acks a redelivery without running it again. So correlation ids must be
 *   unique per request.
 */

import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { ThunderpacError } from '../../runtime/errors.js';
import type { Actor, ModelService } from '../context.js';
import type { BusSubscription, Delivery, EventBus } from './bus.js';
import {
  DLQ_SUBJECT,
  type DlqReason,
  type InferenceRequestMessage,
  InvalidRequestMessage,
  REQUEST_FILTER,
  parseRequestMessage,
  payloadForDeadLetter,
  resultSubject,
} from './inference-messages.js';

export interface InferenceConsumerOptions {
  /** The durable subscription's name (its position survives restarts on NATS). */
  readonly durable: string;
  /** Requests running at once; the bus pulls no more than the free slots. */
  readonly maxInFlight: number;
  /** Correlation ids remembered as done, per process (a redelivery of one is acked, not rerun). */
  readonly rememberedResults?: number;
}

export interface ConsumerMetrics {
  readonly messages: Counter<'outcome'>;
  readonly inFlight: Gauge;
}

/** Registered once per daemon registry (tests run several daemons in one process). */
export function consumerMetrics(registry: Registry): ConsumerMetrics {
  return {
    messages: new Counter({
      name: 'thunderpac_bus_inference_requests_total',
      help: 'Inference requests taken from the event bus, by outcome (completed, dead_lettered, retried, duplicate).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'thunderpac_bus_inference_in_flight',
      help: 'Inference requests from the event bus being run now.',
      registers: [registry],
    }),
  };
}

/**
 * The store's receipt log writes what was appended in a turn at that turn's setImmediate (a
 * process crash loses at most the current turn's receipts). A result or dead letter names its
 * receipt, so it waits for that write: an immediate queued now runs after the log's. Without
 * this, a daemon killed right after publishing (its loop busy parsing the next request) could
 * leave a result whose causation id no receipt in the store has.
 */
function receiptWritten(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const encoder = new TextEncoder();
const json = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));

/** The typed part of any error, never a stack trace. */
function reasonOf(error: unknown): DlqReason {
  if (error instanceof InvalidRequestMessage) return error.toReason();
  if (error instanceof ThunderpacError) {
    const path = (error as { path?: unknown }).path;
    return typeof path === 'string'
      ? { code: error.code, message: error.message, path }
      : { code: error.code, message: error.message };
  }
  return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
}

/**
 * The daemon's own transient trouble (full, draining, a worker that died, a model that failed
 * to load and is retried): the request goes back to the bus after a delay instead of to the
 * DLQ. A request that keeps meeting it is dead-lettered on its last delivery (DELIVERY_LIMIT).
 */
const TRANSIENT = new Set([
  'DAEMON_OVERLOADED',
  'SHUTTING_DOWN',
  'QUEUE_FULL',
  'DROPPED',
  'ONNX_WORKER_CRASHED',
  'MODEL_UNAVAILABLE',
]);

function retryAfterMs(code: unknown, error?: unknown): number | null {
  if (typeof code !== 'string' || !TRANSIENT.has(code)) return null;
  const s = (error as { retryAfterS?: unknown } | undefined)?.retryAfterS;
  return typeof s === 'number' && s > 0 ? s * 1000 : 1000;
}

export class InferenceConsumer {
  readonly #bus: EventBus;
  readonly #models: ModelService;
  readonly #log: FastifyBaseLogger;
  readonly #metrics: ConsumerMetrics;
  readonly #options: InferenceConsumerOptions;
  readonly #actor: Actor;
  /** Correlation ids whose result this process published, oldest first (bounded). */
  readonly #done = new Map<string, true>();
  #subscription: BusSubscription | null = null;
  #stopping: Promise<void> | null = null;
  #running = 0;

  constructor(
    bus: EventBus,
    models: ModelService,
    log: FastifyBaseLogger,
    metrics: ConsumerMetrics,
    options: InferenceConsumerOptions,
  ) {
    this.#bus = bus;
    this.#models = models;
    this.#log = log;
    this.#metrics = metrics;
    this.#options = options;
    // Bus-triggered executions run as the bus's configured identity; the policy authorized
    // whoever may publish on the bus (NATS accounts), not the daemon's HTTP actors.
    this.#actor = Object.freeze({
      id: bus.actorId,
      kind: 'internal',
      roles: Object.freeze(['runner'] as const),
    });
  }

  start(): void {
    this.#subscription ??= this.#bus.subscribe(REQUEST_FILTER, (d) => this.#handle(d), {
      durable: this.#options.durable,
      maxInFlight: this.#options.maxInFlight,
    });
  }

  /**
   * Stop taking requests (at once), and wait at most `graceMs` for those running; what is still
   * running then stays unacked and comes back after the ack wait. Called again, it waits for
   * the same stop.
   */
  stop(graceMs: number): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#subscription?.stop(graceMs);
      this.#subscription = null;
    })();
    return this.#stopping;
  }

  async #handle(delivery: Delivery): Promise<void> {
    this.#metrics.inFlight.set(++this.#running);
    try {
      await this.#process(delivery);
    } finally {
      this.#metrics.inFlight.set(--this.#running);
    }
  }

  async #process(delivery: Delivery): Promise<void> {
    let request: InferenceRequestMessage;
    try {
      request = parseRequestMessage(delivery.subject, delivery.data);
    } catch (error) {
      await this.#deadLetter(delivery, reasonOf(error));
      return;
    }
    const { model, version, correlationId, body } = request;
    const log = this.#log.child({
      correlationId,
      subject: delivery.subject,
      seq: delivery.seq,
      attempt: delivery.deliveryCount,
    });
    const doneKey = `${model}:${correlationId}`;
    if (this.#done.has(doneKey)) {
      log.info('bus: result already published for this correlation id; acked without running again');
      this.#metrics.messages.inc({ outcome: 'duplicate' });
      delivery.ack();
      return;
    }
    if (delivery.deliveryCount > 1 && delivery.deliveryCount >= delivery.maxDeliver) {
      await this.#deadLetter(
        delivery,
        {
          code: 'DELIVERY_LIMIT',
          message: `delivered ${delivery.deliveryCount} times without completing (maxDeliver ${delivery.maxDeliver}); not run again`,
        },
        request,
      );
      return;
    }
    log.debug('bus: inference started');
    let outcome: Awaited<ReturnType<ModelService['infer']>>;
    try {
      outcome = await this.#models.infer(model, version, body, {
        actor: this.#actor,
        requestId: correlationId,
      });
      await receiptWritten();
    } catch (error) {
      const retryMs = retryAfterMs((error as { code?: unknown } | null)?.code, error);
      if (retryMs !== null) {
        // Full or draining: leave it on the bus for later (or for another daemon).
        log.info({ retryMs }, 'bus: daemon overloaded; request returned to the bus');
        this.#metrics.messages.inc({ outcome: 'retried' });
        // Stopping: no longer pulling, so it can go back at once (to the next daemon).
        delivery.nak(this.#stopping ? 0 : retryMs);
        return;
      }
      await this.#deadLetter(delivery, reasonOf(error), request);
      return;
    }
    if (outcome.status === 'failed') {
      const failed = outcome.response as { error?: unknown; code?: unknown } | null;
      const retryMs = retryAfterMs(failed?.code);
      if (retryMs !== null) {
        log.info(
          { retryMs, code: failed?.code },
          'bus: execution hit transient trouble; request returned to the bus',
        );
        this.#metrics.messages.inc({ outcome: 'retried' });
        // Stopping: no longer pulling, so it can go back at once (to the next daemon).
        delivery.nak(this.#stopping ? 0 : retryMs);
        return;
      }
      const why = typeof failed?.error === 'string' ? failed.error : `see receipt ${outcome.receiptId}`;
      await this.#deadLetter(
        delivery,
        {
          code: 'EXECUTION_FAILED',
          message: typeof failed?.code === 'string' ? `${failed.code}: ${why}` : why,
        },
        request,
        outcome.receiptId,
      );
      return;
    }
    const ack = await this.#bus.publish(
      resultSubject(model),
      json({
        correlation_id: correlationId,
        causation_id: outcome.receiptId,
        model,
        ...(version === undefined ? {} : { model_version: version }),
        receipt_id: outcome.receiptId,
        status: outcome.status,
        response: outcome.response,
        delivery_attempt: delivery.deliveryCount,
      }),
      {
        msgId: `result:${doneKey}`,
        headers: { 'Correlation-Id': correlationId, 'Causation-Id': outcome.receiptId },
      },
    );
    this.#remember(doneKey);
    delivery.ack();
    this.#metrics.messages.inc({ outcome: ack.duplicate ? 'duplicate' : 'completed' });
    log.info({ receiptId: outcome.receiptId, duplicate: ack.duplicate }, 'bus: inference result published');
  }

  /** Publish the dead letter, then ack: a failure to publish throws, and the bus redelivers. */
  async #deadLetter(
    delivery: Delivery,
    reason: DlqReason,
    request?: InferenceRequestMessage,
    receiptId?: string,
  ): Promise<void> {
    const headers: Record<string, string> = {};
    if (request) headers['Correlation-Id'] = request.correlationId;
    if (receiptId) headers['Causation-Id'] = receiptId;
    await this.#bus.publish(
      DLQ_SUBJECT,
      json({
        reason,
        subject: delivery.subject,
        stream_seq: delivery.seq,
        delivery_attempt: delivery.deliveryCount,
        ...(request ? { correlation_id: request.correlationId } : {}),
        ...(receiptId ? { receipt_id: receiptId } : {}),
        ...payloadForDeadLetter(delivery.data),
      }),
      // One dead letter per request message, however often it is redelivered.
      { msgId: `dlq:${delivery.subject}:${delivery.seq}`, headers },
    );
    delivery.ack();
    this.#metrics.messages.inc({ outcome: 'dead_lettered' });
    this.#log.warn(
      { subject: delivery.subject, seq: delivery.seq, reason, correlationId: request?.correlationId },
      'bus: inference request dead-lettered',
    );
  }

  #remember(key: string): void {
    this.#done.set(key, true);
    const limit = this.#options.rememberedResults ?? 10_000;
    if (this.#done.size > limit) {
      const oldest = this.#done.keys().next().value;
      if (oldest !== undefined) this.#done.delete(oldest);
    }
  }
}
