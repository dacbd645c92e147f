/**
 * The daemon: a Fastify app over one Thunderpac, on a unix socket (and TCP when configured).
 *
 * Fastify because it validates request bodies against JSON schemas before a handler runs
 * (a bad request is a 400 naming the field and never reaches a backend), enforces the body
 * limit while reading, logs through pino, and is among the fastest Node HTTP frameworks.
 */

import { chmodSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import { Thunderpac } from '../thunderpac.js';
import { SkeletonAuthorizer } from './auth.js';
import type { DaemonConfig } from './config.js';
import type { DaemonContext } from './context.js';
import { DaemonExecutions } from './executions.js';
import { connectionsCheckingIntervalMs, daemonLoggerOptions } from './logging.js';
import { DaemonMetrics } from './metrics.js';
import { DaemonModels } from './models.js';
import { ROUTE_PLUGINS } from './routes/index.js';

export interface Daemon {
  readonly app: FastifyInstance;
  readonly ctx: DaemonContext;
  /** Stop accepting, drain in-flight executions (bounded), flush the store, close. */
  stop(): Promise<void>;
}

export async function startDaemon(config: DaemonConfig): Promise<Daemon> {
  const tp = await Thunderpac.open({ store: config.store });
  const metrics = new DaemonMetrics();
  const shutdown = new AbortController();
  const executions = new DaemonExecutions(tp, config.limits, metrics);
  // Fastify's logger is pino: structured JSON lines, one child per request carrying its id.
  const app = Fastify({
    logger: daemonLoggerOptions(config.logLevel),
    http: { connectionsCheckingInterval: connectionsCheckingIntervalMs(config.limits.requestTimeoutMs) },
    bodyLimit: config.limits.bodyLimitBytes,
    requestTimeout: config.limits.requestTimeoutMs,
    keepAliveTimeout: config.limits.keepAliveTimeoutMs,
    maxRequestsPerSocket: 0,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  app.server.maxConnections = config.limits.maxConnections;
  const log = app.log;
  const ctx: DaemonContext = {
    tp,
    config,
    log,
    metrics,
    auth: new SkeletonAuthorizer(),
    executions,
    models: new DaemonModels({ dir: config.modelsDir, executions, log }),
    shutdown: shutdown.signal,
  };
  for (const plugin of ROUTE_PLUGINS) await plugin(app, ctx);
  await app.listen({ path: config.socket });
  chmodSync(config.socket, config.socketMode);
  log.info({ socket: config.socket }, 'listening');

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      shutdown.abort();
      const closed = app.close(); // stops accepting; open requests finish
      await executions.drain(config.limits.drainTimeoutMs);
      await closed;
      await tp.close(); // flushes the receipt log
      log.info('stopped');
    })();
    return stopping;
  };
  return { app, ctx, stop };
}
