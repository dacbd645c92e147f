/**
 * The event bus plugin: starts the bus (NATS JetStream when the config has a `nats` section,
 * the embedded in-process bus otherwise) and the inference consumer once the daemon listens,
 * and stops both on close (in-flight requests get the drain timeout, then stay unacked).
 *
 *   POST /v1/events/inference.request.<model>   publish an inference request (202 + its seq)
 *   GET  /v1/events/<subject>?after=&max=&wait_ms=
 *                                               read messages after a sequence (long poll);
 *                                               wildcards allowed (`inference.result.>`)
 *
 * With NATS, clients may equally publish and subscribe on the broker itself; over HTTP the
 * same bus is reachable from the host without a NATS client (and is the only way in to the
 * in-process bus).
 */

import { ThunderpacError } from '../../runtime/errors.js';
import type { Action, RoutePlugin } from '../context.js';
import { BusError, type EventBus, isFilter } from '../events/bus.js';
import { InProcessBus } from '../events/in-process-bus.js';
import { InferenceConsumer, consumerMetrics } from '../events/inference-consumer.js';
import { type InvalidRequestMessage, parseRequestMessage } from '../events/inference-messages.js';
import { NatsBus } from '../events/nats-bus.js';
import {
  NATS_DEFAULTS,
  NatsConfigError,
  type NatsBusConfig,
  parseNatsConfig,
} from '../events/nats-config.js';
import { ConfigError, type DaemonConfig } from '../config.js';
import { DaemonStartError } from '../socket-path.js';
import { admissionOf } from './qos.js';

/** sysexits' EX_UNAVAILABLE: the broker the config names cannot be reached or used. */
const EXIT_UNAVAILABLE = 69;

/** The `nats` section validated, its errors at the file's line and column like every other section's. */
function natsConfig(config: DaemonConfig): NatsBusConfig | null {
  try {
    return parseNatsConfig(config.nats);
  } catch (error) {
    if (!(error instanceof NatsConfigError)) throw error;
    throw new ConfigError(config.source.locate(error.segments), error.path, error.detail);
  }
}

async function startBus(nats: NatsBusConfig | null, log: Parameters<typeof NatsBus.connect>[1]) {
  if (!nats) return new InProcessBus();
  try {
    return await NatsBus.connect(nats, log);
  } catch (error) {
    if (error instanceof BusError) throw new DaemonStartError(error.code, error.message, EXIT_UNAVAILABLE);
    throw error;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Answered by the daemon's error handler: `statusCode`, and `path` naming the field on a 4xx. */
class EventsRequestError extends ThunderpacError {
  constructor(
    readonly statusCode: number,
    code: string,
    message: string,
    readonly path?: string,
  ) {
    super(code, message);
  }
}

/** Message bodies come back as JSON when they are JSON (they are, for everything the daemon publishes). */
function bodyOf(data: Uint8Array): unknown {
  const text = decoder.decode(data);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const eventsRoutes: RoutePlugin = async (app, ctx) => {
  // A bad section stops the daemon at start: `config.json:7:12: nats.url: expected nats://host:port, …`.
  const nats = natsConfig(ctx.config);
  const bus: EventBus = await startBus(nats, ctx.log);
  const consumer = new InferenceConsumer(bus, ctx.models, ctx.log, consumerMetrics(ctx.metrics.registry), {
    durable: nats?.durable ?? NATS_DEFAULTS.durable,
    maxInFlight: Math.min(nats?.maxInFlight ?? NATS_DEFAULTS.maxInFlight, ctx.config.limits.maxInFlight),
  });
  // Take requests only once the daemon serves: a daemon refused at start (socket in use) pulls none.
  app.addHook('onListen', async () => {
    consumer.start();
    ctx.log.info({ bus: bus.kind, actor: bus.actorId }, 'event bus: consuming inference.request.>');
  });
  // Shutdown begins before the close hooks run: stop pulling then, so nothing new is taken
  // while the executions drain; close waits for the same stop, then flushes acks and disconnects.
  const stopConsuming = () => consumer.stop(ctx.config.limits.drainTimeoutMs);
  ctx.shutdown.addEventListener('abort', () => void stopConsuming(), { once: true });
  app.addHook('onClose', async () => {
    stopAnnouncing();
    await stopConsuming();
    await bus.close();
  });

  // QoS abuse events go on the bus too (`system.qos.abuse_detected`, `system.qos.spike_detected`),
  // so a watcher reads them like any other event (GET /v1/events/system.qos.>, or the broker).
  // Announced after the refusal is answered; a bus that refuses it is logged, never a 5xx.
  const stopAnnouncing =
    admissionOf(ctx)?.onAbuse((event) => {
      const subject = `system.qos.${event.name.slice('qos.'.length)}`;
      bus.publish(subject, encoder.encode(JSON.stringify(event))).catch((err: unknown) => {
        ctx.log.warn({ err, subject, actor: event.actor }, 'qos: announcing on the bus failed');
      });
    }) ?? (() => {});

  app.post<{ Params: { subject: string } }>(
    '/v1/events/:subject',
    { schema: { params: { type: 'object', properties: { subject: { type: 'string', maxLength: 256 } } } } },
    async (req, reply) => {
      const { subject } = req.params;
      const data = encoder.encode(JSON.stringify(req.body ?? null));
      let request: ReturnType<typeof parseRequestMessage>;
      try {
        // Only requests may be published from outside; results and dead letters are the daemon's.
        request = parseRequestMessage(subject, data);
      } catch (error) {
        const e = error as InvalidRequestMessage;
        const path = e.code === 'INVALID_SUBJECT' ? 'params.subject' : e.path ? `body.${e.path}` : 'body';
        throw new EventsRequestError(400, e.code, e.message, path);
      }
      ctx.auth.authorize(req, 'model.infer', { model: request.model });
      try {
        const ack = await bus.publish(subject, data, {
          // A client retrying the same request is stored once.
          msgId: `request:${request.model}:${request.correlationId}`,
          headers: { 'Correlation-Id': request.correlationId },
        });
        return reply
          .code(202)
          .send({ subject, seq: ack.seq, duplicate: ack.duplicate, correlation_id: request.correlationId });
      } catch (error) {
        if (error instanceof BusError) throw new EventsRequestError(503, error.code, error.message);
        throw error;
      }
    },
  );

  app.get<{
    Params: { subject: string };
    Querystring: { after?: number; max?: number; wait_ms?: number };
  }>(
    '/v1/events/:subject',
    {
      schema: {
        params: { type: 'object', properties: { subject: { type: 'string', maxLength: 256 } } },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            after: { type: 'integer', minimum: 0 },
            max: { type: 'integer', minimum: 1, maximum: 1000 },
            wait_ms: { type: 'integer', minimum: 0, maximum: 30_000 },
          },
        },
      },
    },
    async (req, reply) => {
      const { subject } = req.params;
      if (!isFilter(subject)) {
        throw new EventsRequestError(
          400,
          'INVALID_SUBJECT',
          `subject ${JSON.stringify(subject)}: expected dot-separated tokens, * for one token, a trailing >`,
          'params.subject',
        );
      }
      // Who was refused and why is QoS state: readable by those who may read the QoS policy.
      const action: Action = subject.startsWith('inference.')
        ? 'model.infer'
        : subject.startsWith('system.qos.')
          ? 'qos.read'
          : 'receipt.read';
      ctx.auth.authorize(req, action);
      const gone = new AbortController();
      const abort = (): void => gone.abort();
      reply.raw.on('close', abort);
      ctx.shutdown.addEventListener('abort', abort);
      try {
        const messages = await bus.read(subject, req.query.after ?? 0, {
          max: req.query.max ?? 100,
          waitMs: req.query.wait_ms ?? 0,
          signal: gone.signal,
        });
        return {
          subject,
          messages: messages.map((m) => ({
            seq: m.seq,
            subject: m.subject,
            headers: m.headers,
            data: bodyOf(m.data),
          })),
          last_seq: messages.at(-1)?.seq ?? req.query.after ?? 0,
        };
      } catch (error) {
        if (error instanceof ThunderpacError) throw new EventsRequestError(503, error.code, error.message);
        throw new EventsRequestError(503, 'BUS_UNAVAILABLE', (error as Error).message);
      } finally {
        reply.raw.off('close', abort);
        ctx.shutdown.removeEventListener('abort', abort);
      }
    },
  );
};
