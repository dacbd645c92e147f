/** `GET /v1/health`: live and ready, with what is running. */

import type { RoutePlugin } from '../context.js';

export const healthRoutes: RoutePlugin = (app, ctx) => {
  app.get('/v1/health', async () => ({
    status: ctx.shutdown.aborted ? 'draining' : 'ok',
    inFlight: ctx.executions.inFlight,
    queued: ctx.executions.queued,
  }));
};
