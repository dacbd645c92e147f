/**
 * Health: `GET /v1/health` (status and what is running), `GET /v1/health/live` (the process
 * answers), `GET /v1/health/ready` (it accepts work: 503 while draining). Any identified caller
 * may read them (`health.read` needs no role).
 */

import type { RoutePlugin } from '../context.js';

export const healthRoutes: RoutePlugin = (app, ctx) => {
  app.get('/v1/health', async (req) => {
    ctx.auth.authorize(req, 'health.read');
    const draining = ctx.shutdown.aborted;
    return {
      status: draining ? 'draining' : 'ok',
      live: true,
      ready: !draining,
      inFlight: ctx.executions.inFlight,
      queued: ctx.executions.queued,
    };
  });
  app.get('/v1/health/live', async (req) => {
    ctx.auth.authorize(req, 'health.read');
    return { live: true };
  });
  app.get('/v1/health/ready', async (req, reply) => {
    ctx.auth.authorize(req, 'health.read');
    const ready = !ctx.shutdown.aborted;
    return reply.code(ready ? 200 : 503).send({ ready });
  });
};
