/**
 * `GET /metrics`: Prometheus text format (the daemon's own registry), and the hook that counts
 * every HTTP request by method, route pattern and status code.
 *
 * Authorization: the action is `metrics.read`, which the policy gives to admin, operator and
 * auditor but not to runner (src/daemon/policy.ts): /metrics is not open to every peer of the
 * socket (its labels name XDP interfaces, network namespaces and routes). A Prometheus
 * scraping over the unix socket runs as a uid the policy maps to `auditor`.
 */

import type { RoutePlugin } from '../context.js';
import { type OnnxPoolLevels, UNMATCHED_ROUTE } from '../metrics.js';

export const metricsRoutes: RoutePlugin = (app, ctx) => {
  const metrics = ctx.metrics;
  metrics.watchExecutions(ctx.executions);
  metrics.watchOnnxPool(() => {
    // Through the executor, by shape: the daemon does not import backends.
    const onnx = ctx.tp.executor.backend('onnx') as { poolStats?: () => OnnxPoolLevels | null };
    return onnx.poolStats?.() ?? null;
  });

  // On the root app (route plugins are not encapsulated), so it sees every route and the 404s.
  app.addHook('onResponse', async (req, reply) => {
    // The pattern the router matched, never the raw URL: label values stay bounded whatever
    // clients send. A request that matched nothing is one value.
    const route = req.routeOptions.url ?? UNMATCHED_ROUTE;
    const method = route === UNMATCHED_ROUTE ? boundedMethod(req.method) : req.method;
    metrics.httpRequests.inc({ method, route, status_code: String(reply.statusCode) });
    metrics.httpSeconds.observe({ method, route }, reply.elapsedTime / 1000);
  });

  app.get('/metrics', async (req, reply) => {
    ctx.auth.authorize(req, 'metrics.read');
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
};

/** HTTP's methods as Node parses them; anything else is counted as `OTHER`. */
const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'CONNECT',
  'TRACE',
]);

function boundedMethod(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'OTHER';
}
