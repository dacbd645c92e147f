/**
 * The event bus over NATS JetStream: one stream over `inference.>` and `system.dlq.>` (created
 * when missing, file storage, a duplicate window for Nats-Msg-Id dedupe), one durable pull
 * consumer per subscription with explicit acks. A message the daemon pulled but never acked
 * (the daemon was killed, the connection dropped) is redelivered by the server after the ack
 * wait; while a handler runs, `working()` keeps extending that deadline.
 */

import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { type NatsConnection, connect, headers as natsHeaders, nanos } from '@nats-io/transport-node';
import type { FastifyBaseLogger } from 'fastify';
import {
  type BusHeaders,
  type BusSubscription,
  BusError,
  type Delivery,
  type DeliveryHandler,
  type EventBus,
  type PublishAck,
  type PublishOptions,
  type ReadOptions,
  type StoredMessage,
  type SubscribeOptions,
  settledWithin,
  subjectMatches,
} from './bus.js';
import type { NatsBusConfig } from './nats-config.js';

/** The subjects the stream must capture. */
export const STREAM_SUBJECTS = ['inference.>', 'system.dlq.>', 'system.qos.>'] as const;

function isApiError(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}

function headersOf(msg: JsMsg): BusHeaders {
  const out: Record<string, string> = {};
  const h = msg.headers;
  if (h) for (const key of h.keys()) out[key] = h.get(key);
  return out;
}

/** An ack on a closed connection is lost, and that is what redelivery is for. */
function ignoreClosed(settle: () => void): void {
  try {
    settle();
  } catch {
    // the message stays unacked and comes back after the ack wait
  }
}

/**
 * How long one pull request waits on the server for messages. A fetch is never cut short: the
 * server may already be sending a message for it (it checked the inbox's interest, then reads
 * the message from the file store) when the client unsubscribes, and such a message is dropped
 * by the client yet counts on the server as delivered, ack-pending until the ack wait. Left to
 * end by itself (its batch filled, or the server's 408 at expiry, which comes after every
 * message sent for it), a fetch hands over everything; so stopping waits at most this long.
 */
const PULL_EXPIRES_MS = 2_000;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

export class NatsBus implements EventBus {
  readonly kind = 'nats';
  readonly actorId: string;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #config: NatsBusConfig;
  readonly #log: FastifyBaseLogger;
  readonly #subscriptions = new Set<BusSubscription>();

  private constructor(
    nc: NatsConnection,
    jsm: JetStreamManager,
    config: NatsBusConfig,
    log: FastifyBaseLogger,
  ) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#config = config;
    this.#log = log;
    this.actorId = config.actor;
  }

  /** Connect, and make sure the stream exists and captures what the daemon publishes and consumes. */
  static async connect(config: NatsBusConfig, log: FastifyBaseLogger): Promise<NatsBus> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: config.url,
        name: 'thunderpac-daemon',
        timeout: config.connectTimeoutMs,
        maxReconnectAttempts: -1, // once up, ride out broker restarts
      });
    } catch (error) {
      throw new BusError(
        'NATS_UNREACHABLE',
        `nats.url ${config.url}: cannot reach the broker: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    try {
      const jsm = await jetstreamManager(nc);
      const bus = new NatsBus(nc, jsm, config, log);
      await bus.#ensureStream();
      return bus;
    } catch (error) {
      await nc.close();
      if (error instanceof BusError) throw error;
      throw new BusError('NATS_JETSTREAM', `nats.url ${config.url}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async #ensureStream(): Promise<void> {
    const { stream, duplicateWindowMs } = this.#config;
    try {
      const info = await this.#jsm.streams.info(stream);
      const probes = ['inference.request.probe', 'inference.result.probe', 'system.dlq.ml_inference_failed'];
      const missed = probes.filter((s) => !info.config.subjects?.some((f) => subjectMatches(f, s)));
      if (missed.length > 0) {
        throw new BusError(
          'NATS_STREAM_MISMATCH',
          `nats.stream: stream ${stream} exists but does not capture ${missed.join(', ')} (its subjects: ${info.config.subjects?.join(', ')}); it must capture ${STREAM_SUBJECTS.join(' and ')}`,
        );
      }
      // A stream made before QoS events existed: add their subjects (optional, so a stream
      // that cannot take them still serves inference; the events are then only logged).
      if (!info.config.subjects?.some((f) => subjectMatches(f, 'system.qos.abuse_detected'))) {
        const subjects = [...(info.config.subjects ?? []), 'system.qos.>'];
        await this.#jsm.streams.update(stream, { subjects }).then(
          () => this.#log.info({ stream, subjects }, 'nats: stream now captures system.qos.>'),
          (err: unknown) =>
            this.#log.warn(
              { err, stream },
              'nats: cannot add system.qos.> to the stream; QoS events stay off the broker',
            ),
        );
      }
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.StreamNotFound)) throw error;
      await this.#jsm.streams.add({
        name: stream,
        subjects: [...STREAM_SUBJECTS],
        duplicate_window: nanos(duplicateWindowMs),
      });
      this.#log.info({ stream, subjects: STREAM_SUBJECTS }, 'nats: stream created');
    }
  }

  async #ensureConsumer(durable: string, filter: string): Promise<void> {
    const { stream, ackWaitMs, maxDeliver } = this.#config;
    const wanted = {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(ackWaitMs),
      max_deliver: maxDeliver,
      filter_subject: filter,
    };
    try {
      const info = await this.#jsm.consumers.info(stream, durable);
      const c = info.config;
      if (c.ack_wait !== wanted.ack_wait || c.max_deliver !== maxDeliver || c.filter_subject !== filter) {
        await this.#jsm.consumers.update(stream, durable, {
          ack_wait: wanted.ack_wait,
          max_deliver: maxDeliver,
          filter_subject: filter,
        });
      }
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.ConsumerNotFound)) throw error;
      await this.#jsm.consumers.add(stream, { ...wanted, deliver_policy: DeliverPolicy.All });
      this.#log.info({ stream, durable, filter }, 'nats: durable consumer created');
    }
  }

  async publish(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<PublishAck> {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(options.headers ?? {})) h.set(k, v);
    try {
      const ack = await this.#js.publish(subject, data, {
        headers: h,
        ...(options.msgId === undefined ? {} : { msgID: options.msgId }),
      });
      return { seq: ack.seq, duplicate: ack.duplicate };
    } catch (error) {
      throw new BusError('NATS_PUBLISH_FAILED', `publish to ${subject}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  subscribe(filter: string, handler: DeliveryHandler, options: SubscribeOptions): BusSubscription {
    const stop = new AbortController();
    const running = new Set<Promise<void>>();
    let slotFreed: (() => void) | null = null;
    const maxInFlight = Math.max(1, options.maxInFlight);
    const { ackWaitMs, maxDeliver, stream } = this.#config;

    const dispatch = (msg: JsMsg): void => {
      let settled = false;
      const delivery: Delivery = {
        seq: msg.seq,
        subject: msg.subject,
        data: msg.data,
        headers: headersOf(msg),
        deliveryCount: msg.info.deliveryCount,
        maxDeliver,
        ack: () => {
          if (settled) return;
          settled = true;
          ignoreClosed(() => msg.ack());
        },
        nak: (delayMs) => {
          if (settled) return;
          settled = true;
          ignoreClosed(() => msg.nak(delayMs));
        },
      };
      // A long execution is not a dead one: keep the server's ack deadline moving while it runs.
      const heartbeat = setInterval(
        () => {
          if (!settled) ignoreClosed(() => msg.working());
        },
        Math.max(250, ackWaitMs / 3),
      );
      const run = (async () => {
        try {
          await handler(delivery);
        } catch (error) {
          this.#log.warn({ err: error, subject: msg.subject, seq: msg.seq }, 'nats: handler failed');
          delivery.nak();
        } finally {
          clearInterval(heartbeat);
        }
      })();
      running.add(run);
      void run.finally(() => {
        running.delete(run);
        slotFreed?.();
      });
    };

    const pull = async (): Promise<void> => {
      let consumer: Awaited<ReturnType<JetStreamClient['consumers']['get']>> | null = null;
      while (!stop.signal.aborted) {
        try {
          if (!consumer) {
            await this.#ensureConsumer(options.durable, filter);
            consumer = await this.#js.consumers.get(stream, options.durable);
          }
          if (running.size >= maxInFlight) {
            // stop() calls slotFreed too, so no abort listener is needed (one per wait would pile up).
            await new Promise<void>((resolve) => {
              slotFreed = resolve;
            });
            slotFreed = null;
            continue;
          }
          // Pull only as many as there are free slots: the rest wait in the stream, not here.
          const batch = await consumer.fetch({
            max_messages: maxInFlight - running.size,
            expires: PULL_EXPIRES_MS,
          });
          for await (const msg of batch) {
            // Arrived while stopping (the fetch runs to its end, see PULL_EXPIRES_MS): hand it
            // straight back, not left for the ack wait.
            if (stop.signal.aborted) ignoreClosed(() => msg.nak());
            else dispatch(msg);
          }
        } catch (error) {
          consumer = null; // the consumer may be gone (deleted, broker restarted empty): make sure again
          if (stop.signal.aborted) break;
          this.#log.warn({ err: error, durable: options.durable }, 'nats: pull failed; retrying');
          await sleep(1_000, stop.signal);
        }
      }
    };
    const pulling = pull();

    const subscription: BusSubscription = {
      stop: async (graceMs = Number.POSITIVE_INFINITY) => {
        stop.abort();
        slotFreed?.();
        await pulling; // the outstanding fetch ends by itself, within PULL_EXPIRES_MS
        await settledWithin([...running], graceMs);
        this.#subscriptions.delete(subscription);
      },
    };
    this.#subscriptions.add(subscription);
    return subscription;
  }

  async read(subject: string, afterSeq: number, options: ReadOptions): Promise<StoredMessage[]> {
    const { stream } = this.#config;
    // An ephemeral consumer from the sequence on: its num_pending says how many are there now,
    // so a fetch for exactly those returns at once; with none it waits for the first.
    const info = await this.#jsm.consumers.add(stream, {
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: afterSeq + 1,
      filter_subject: subject,
      inactive_threshold: nanos(30_000),
    });
    try {
      const pending = Math.min(options.max, info.num_pending);
      if (pending === 0 && options.waitMs <= 0) return [];
      const consumer = await this.#js.consumers.get(stream, info.name);
      const fetched = await consumer.fetch({
        max_messages: pending > 0 ? pending : 1,
        expires: pending > 0 ? 5_000 : Math.max(1_000, options.waitMs),
      });
      const stopOnAbort = (): void => fetched.stop();
      options.signal?.addEventListener('abort', stopOnAbort);
      const out: StoredMessage[] = [];
      try {
        for await (const msg of fetched) {
          out.push({ seq: msg.seq, subject: msg.subject, data: msg.data, headers: headersOf(msg) });
        }
      } finally {
        options.signal?.removeEventListener('abort', stopOnAbort);
      }
      return out;
    } finally {
      await this.#jsm.consumers.delete(stream, info.name).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#subscriptions].map((s) => s.stop(0)));
    if (!this.#nc.isClosed()) await this.#nc.drain(); // flushes acks and publishes
  }
}
