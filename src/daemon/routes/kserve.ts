/**
 * The Open Inference Protocol (KServe v2 REST) over the daemon's model registry, so existing
 * inference clients work unchanged:
 *
 *   GET  /v2/health/live | /v2/health/ready          server liveness / readiness
 *   GET  /v2                                          server metadata
 *   GET  /v2/models/{name}[/versions/{v}]             model metadata
 *   GET  /v2/models/{name}[/versions/{v}]/ready       model readiness
 *   POST /v2/models/{name}[/versions/{v}]/infer       inference (JSON tensors)
 *   GET  /v1/models                                   every model version and its state (CLI)
 *
 * Errors on /v2 take the protocol's shape, `{ "error": "<message>" }` (Triton's and KServe's
 * clients read that string), with the daemon's `code` and, for a bad field, its `path` beside
 * it. An inference's receipt id comes back in `parameters.receipt_id` and in the
 * `x-thunderpac-receipt` header.
 */

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { PACKAGE_VERSION } from '../../runtime/package-root.js';
import type { RoutePlugin } from '../context.js';
import { httpErrorOf } from '../errors.js';

export const RECEIPT_HEADER = 'x-thunderpac-receipt';

interface ModelParams {
  readonly name: string;
  readonly version?: string;
}

/**
 * An error on a /v2 route in the protocol's shape: the daemon's mapping (status, headers such
 * as Retry-After, code, path; a 500 says only "internal error") with the message as the
 * `error` string KServe and Triton clients read.
 */
function v2ErrorHandler(limits: { bodyLimitBytes: number }) {
  return (err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const answer = httpErrorOf(err, req.id, limits);
    const { message, ...rest } = answer.body.error;
    if (answer.fault) req.log.error({ err, status: answer.status, code: rest.code }, 'request failed');
    else req.log.info({ status: answer.status, code: rest.code }, 'request refused');
    return reply
      .code(answer.status)
      .headers(answer.headers)
      .send({ error: message, ...rest });
  };
}

export const kserveRoutes: RoutePlugin = (app, ctx) => {
  const models = ctx.models;
  const opts = { errorHandler: v2ErrorHandler(ctx.config.limits) };

  app.get('/v2/health/live', opts, async (req) => {
    ctx.auth.authorize(req, 'health.read');
    return { live: true };
  });

  // Not ready while draining, or while a served model has not loaded: 4xx per the protocol.
  app.get('/v2/health/ready', opts, async (req, reply) => {
    ctx.auth.authorize(req, 'health.read');
    const ready = !ctx.shutdown.aborted && models.allReady;
    return reply.code(ready ? 200 : 400).send({ ready });
  });

  app.get('/v2', opts, async (req) => {
    ctx.auth.authorize(req, 'health.read');
    return { name: 'thunderpac', version: PACKAGE_VERSION, extensions: [] };
  });

  const metadata = async (req: FastifyRequest<{ Params: ModelParams }>) => {
    const { name, version } = req.params;
    ctx.auth.authorize(req, 'model.read', { model: name });
    return models.metadata(name, version);
  };
  app.get<{ Params: ModelParams }>('/v2/models/:name', opts, metadata);
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version', opts, metadata);

  const ready = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const { name, version } = req.params;
    ctx.auth.authorize(req, 'model.read', { model: name });
    const s = await models.status(name, version);
    return reply
      .code(s.ready ? 200 : 400)
      .send({ name: s.name, version: s.version, ready: s.ready, ...(s.error && { error: s.error }) });
  };
  app.get<{ Params: ModelParams }>('/v2/models/:name/ready', opts, ready);
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version/ready', opts, ready);

  const infer = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const { name, version } = req.params;
    const actor = ctx.auth.authorize(req, 'model.infer', { model: name });
    const out = await models.infer(name, version, req.body, { actor, requestId: req.id });
    reply.header(RECEIPT_HEADER, out.receiptId);
    // The model ran and failed (a limit, the runtime): the receipt says why; not the client's doing.
    return reply.code(out.status === 'completed' ? 200 : 500).send(out.response);
  };
  app.post<{ Params: ModelParams }>('/v2/models/:name/infer', opts, infer);
  app.post<{ Params: ModelParams }>('/v2/models/:name/versions/:version/infer', opts, infer);

  app.get('/v1/models', async (req) => {
    ctx.auth.authorize(req, 'model.read');
    return { models: models.list() };
  });
};
