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

import type { FastifyReply } from 'fastify';
import { ThunderpacError } from '../../runtime/errors.js';
import type { Action, RoutePlugin } from '../context.js';
import { BusError, type EventBus, isFilter } from '../events/bus.js';
import { InProcessBus } from '../events/in-process-bus.js';
import { InferenceConsumer, consumerMetrics } from '../events/inference-consumer.js';
import { type InvalidRequestMessage, parseRequestMessage } from '../events/inference-messages.js';
import { NatsBus } from '../events/nats-bus.js';
import { NATS_DEFAULTS, parseNatsConfig } from '../events/nats-config.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function sendError(reply: FastifyReply, status: number, code: string, message: string, path?: string) {
  return reply.code(status).send({ error: path === undefined ? { code, message } : { code, message, path } });
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
  // A bad section stops the daemon at start with the field path (nats.url: expected …).
  const nats = parseNatsConfig(ctx.config.nats);
  const bus: EventBus = nats ? await NatsBus.connect(nats, ctx.log) : new InProcessBus();
  const consumer = new InferenceConsumer(bus, ctx.models, ctx.log, consumerMetrics(ctx.metrics.registry), {
    durable: nats?.durable ?? NATS_DEFAULTS.durable,
    maxInFlight: Math.min(nats?.maxInFlight ?? NATS_DEFAULTS.maxInFlight, ctx.config.limits.maxInFlight),
  });
  // Take requests only once the daemon serves: a daemon refused at start (socket in use) pulls none.
  app.addHook('onListen', async () => {
    consumer.start();
    ctx.log.info({ bus: bus.kind, actor: bus.actorId }, 'event bus: consuming inference.request.>');
  });
  app.addHook('onClose', async () => {
    await consumer.stop(ctx.config.limits.drainTimeoutMs);
    await bus.close();
  });

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
        return sendError(
          reply,
          400,
          e.code,
          e.message,
          e.code === 'INVALID_SUBJECT' ? 'params.subject' : e.path,
        );
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
        if (error instanceof BusError) return sendError(reply, 503, error.code, error.message);
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
        return sendError(
          reply,
          400,
          'INVALID_SUBJECT',
          `subject ${JSON.stringify(subject)}: expected dot-separated tokens, * for one token, a trailing >`,
          'params.subject',
        );
      }
      const action: Action = subject.startsWith('inference.') ? 'model.infer' : 'receipt.read';
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
        if (error instanceof ThunderpacError) return sendError(reply, 503, error.code, error.message);
        return sendError(reply, 503, 'BUS_UNAVAILABLE', (error as Error).message);
      } finally {
        reply.raw.off('close', abort);
        ctx.shutdown.removeEventListener('abort', abort);
      }
    },
  );
};
