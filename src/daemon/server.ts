/**
 * The daemon: a Fastify app over one Thunderpac, on a unix socket (and TCP+TLS when configured).
 *
 * Fastify because it validates request bodies, params and query strings against JSON schemas
 * compiled once at start (a bad request is a 400 naming the field and never reaches a
 * backend), enforces the body limit while reading, logs through pino with a child logger per
 * request carrying its id, and is among the fastest Node HTTP frameworks (its per-request cost
 * is what the daemon adds to an execution: see `npm run bench:daemon`).
 *
 * Start order matters for the errors an operator sees: the store's writer lock first (a second
 * daemon on the same store is refused before it binds anything), then the socket path (a live
 * socket is refused, a stale one removed), then listening.
 */

import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { StoreLockedError } from '../store/errors.js';
import { Thunderpac } from '../thunderpac.js';
import { DaemonAuthorizer } from './auth.js';
import { DaemonBuilds } from './builds.js';
import type { DaemonConfig } from './config.js';
import type { DaemonContext } from './context.js';
import { DaemonExecutions } from './executions.js';
import {
  connectionsCheckingIntervalMs,
  DaemonLogController,
  daemonLoggerOptions,
  LogDestination,
} from './logging.js';
import { DaemonMetrics } from './metrics.js';
import { DaemonModels } from './models.js';
import { assertPeerCredentialsAvailable } from './peer.js';
import { defaultPolicy, Policy } from './policy.js';
import { ROUTE_PLUGINS } from './routes/index.js';
import { claimSocketPath, DaemonStartError } from './socket-path.js';

export { DaemonStartError } from './socket-path.js';

export interface Daemon {
  readonly app: FastifyInstance;
  readonly ctx: DaemonContext;
  /** Stop accepting, drain in-flight executions (bounded), flush the store, close. */
  stop(): Promise<void>;
}

/** An incoming `x-request-id` is honoured when it looks like an id: printable, bounded. */
const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** Ids the daemon makes: a random per-process prefix and a counter (unique, cheap, sortable). */
function requestIdGenerator(): (req: IncomingMessage) => string {
  const prefix = randomBytes(6).toString('hex');
  let n = 0;
  return (req) => {
    const incoming = req.headers['x-request-id'];
    if (typeof incoming === 'string' && REQUEST_ID.test(incoming)) return incoming;
    n++;
    return `${prefix}-${n.toString(36)}`;
  };
}

async function openStore(config: DaemonConfig): Promise<Thunderpac> {
  try {
    const fleet = config.storeFleet; // fleet mode: receipts mirrored into a shared PostgreSQL index
    const signingKey = config.storeSigningKey ?? undefined; // tree heads signed with it (src/store/signing.ts)
    const storeOptions = { ...(fleet && { fleet }), ...(signingKey && { signingKey }) };
    return await Thunderpac.open({ store: config.store, storeOptions });
  } catch (err) {
    if (err instanceof StoreLockedError) {
      const holder = err.holderPid === undefined ? 'another process' : `process ${err.holderPid}`;
      throw new DaemonStartError(
        'DAEMON_STORE_LOCKED',
        `the store ${config.store} is in use by ${holder} (another daemon?): one daemon per store`,
      );
    }
    throw err;
  }
}

export async function startDaemon(config: DaemonConfig): Promise<Daemon> {
  assertPeerCredentialsAvailable();
  const tls = config.listen
    ? { cert: readPem(config.listen.tls.cert, 'tls.cert'), key: readPem(config.listen.tls.key, 'tls.key') }
    : null;
  const tp = await openStore(config);
  try {
    await claimSocketPath(config.socket);
  } catch (err) {
    await tp.close();
    throw err;
  }

  const limits = config.limits;
  const serverOptions = {
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    headersTimeout: Math.min(limits.requestTimeoutMs, 60_000),
    connectionsCheckingInterval: connectionsCheckingIntervalMs(limits.requestTimeoutMs),
  };
  let tcpServer: HttpsServer | null = null;
  const metrics = new DaemonMetrics();
  const shutdown = new AbortController();
  // Tier quotas are journaled in the store: their usage survives a restart and a SIGKILL.
  const executions = new DaemonExecutions(tp, limits, metrics, config.qos, {
    quotaFile: join(config.store, 'daemon', 'qos-quotas.journal'),
  });
  // Fastify's logger is pino: structured JSON lines, one child per request carrying its id,
  // one line per request (logging.ts), written to stdout in batches off the request's path.
  const logDestination = new LogDestination(1);
  const logController = new DaemonLogController(config.logLevel);
  const app = Fastify({
    logger: daemonLoggerOptions(config.logLevel, logDestination),
    logController,
    bodyLimit: limits.bodyLimitBytes,
    maxRequestsPerSocket: 0,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    requestIdHeader: false,
    genReqId: requestIdGenerator(),
    // Unknown body fields are refused by `additionalProperties: false`, not silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
    serverFactory: (handler) => {
      const unix = createHttpServer(serverOptions, handler);
      if (tls) {
        tcpServer = createHttpsServer(
          { ...serverOptions, cert: tls.cert, key: tls.key },
          handler as (req: IncomingMessage, res: ServerResponse) => void,
        );
        tcpServer.maxConnections = limits.maxConnections;
      }
      return unix;
    },
  });
  const server = app.server as Server;
  server.maxConnections = limits.maxConnections;
  const log = app.log;

  const policy = new Policy(
    config.policy ?? defaultPolicy(process.getuid?.() ?? 0, socketGroup(config.socket)),
  );
  const authorizer = new DaemonAuthorizer(policy, metrics, log);
  server.on('connection', (socket: Socket) => authorizer.acceptUnixConnection(socket));
  logController.actorOf = (req) => authorizer.identify(req)?.id;

  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    done();
  });
  app.addContentTypeParser(
    ['application/wasm', 'application/octet-stream'],
    { parseAs: 'buffer', bodyLimit: limits.bodyLimitBytes },
    (_req, body, done) => done(null, body),
  );

  const ctx: DaemonContext = {
    tp,
    config,
    log,
    metrics,
    auth: authorizer,
    builds: new DaemonBuilds(tp, config.store, limits.buildCacheEntries, log),
    executions,
    models: new DaemonModels({ dir: config.modelsDir, executions, log }),
    shutdown: shutdown.signal,
  };
  try {
    for (const plugin of ROUTE_PLUGINS) await plugin(app, ctx);
    await app.listen({ path: config.socket });
    chmodSync(config.socket, config.socketMode);
    if (tcpServer && config.listen) {
      const tcp: HttpsServer = tcpServer;
      const { host, port } = config.listen;
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, host, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      log.info({ host, port }, 'listening on TCP with TLS (bearer tokens only)');
    }
  } catch (err) {
    await app.close().catch(() => {});
    await tp.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new DaemonStartError('DAEMON_LISTEN', `cannot listen: ${(err as Error).message}`);
    }
    throw err;
  }
  log.info(
    { socket: config.socket, store: config.store, policy: config.policy ? 'config' : 'default' },
    'listening',
  );

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log.info({ inFlight: executions.inFlight, queued: executions.queued }, 'stopping: draining');
      shutdown.abort(); // long polls and event streams end now
      const closed = app.close(); // stops accepting; requests in progress finish
      const tcpClosed = tcpServer
        ? new Promise<void>((resolve) => {
            tcpServer?.close(() => resolve());
            tcpServer?.closeIdleConnections();
          })
        : Promise.resolve();
      const deadline = Date.now() + limits.drainTimeoutMs;
      await executions.drain(limits.drainTimeoutMs);
      // The answers of the drained executions are still being written: let the requests finish
      // (the rest of the drain bound, and at least a moment), then cut what is left (a stuck
      // client, an execution past the bound).
      const grace = Math.max(deadline - Date.now(), 1000);
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        Promise.all([closed, tcpClosed]).then(() => true),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), grace);
        }),
      ]);
      clearTimeout(timer);
      if (!finished) {
        log.warn({ inFlight: executions.inFlight }, 'drain timed out: closing the connections still open');
        server.closeAllConnections();
        tcpServer?.closeAllConnections();
      }
      await Promise.all([closed, tcpClosed]);
      await executions.close().catch((err: unknown) => log.warn({ err }, 'closing qos admission failed'));
      await tp.close(); // flushes the receipt log
      log.info('stopped');
      logDestination.flushSync();
    })();
    return stopping;
  };
  return { app, ctx, stop };
}

/**
 * The group the socket file will have: the directory's when it is setgid (as a
 * `RuntimeDirectory` with `Group=` may be), else the daemon's effective gid. The default policy
 * makes that group `runner`, so who may connect (mode 0660) and who may run are one setting.
 */
function socketGroup(socket: string): number {
  const dir = statSync(dirname(socket));
  return dir.mode & 0o2000 /* S_ISGID */ ? dir.gid : (process.getegid?.() ?? 0);
}

function readPem(path: string, field: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new DaemonStartError(
      'DAEMON_TLS',
      `${field}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}
