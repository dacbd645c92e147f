/**
 * The daemon's structured logs: pino (through Fastify), one JSON line per event, each request's
 * lines carrying its request id (Fastify's per-request child logger).
 *
 * One line per request, written when it is answered (`request completed`: method, url, route,
 * status, duration, request id, actor), not Fastify's two (`incoming request` and `request
 * completed`): at `info` the two lines, each written with its own synchronous write(2), were
 * about half of what the daemon's HTTP layer cost per request (`npm run bench:daemon`).
 * Lines go to stdout through a LogDestination: collected while the event loop turns and
 * written in one write(2) after it (bounded; flushed synchronously at exit, a crash included).
 *
 * What a client sends never makes a log line long or leaks a secret: the URL and Host are cut
 * to a bound (a hostile 16 KiB URL logs as its first 512 characters and its length), error
 * messages and stacks are bounded, and credentials are redacted wherever a header object is
 * logged (Fastify's request serializer logs no headers at all; redaction covers a handler that
 * logs `req.headers` by mistake).
 */

import { writeSync } from 'node:fs';
import { type FastifyReply, type FastifyRequest, type FastifyServerOptions, LogController } from 'fastify';
import type { DaemonConfig } from './config.js';

/** Longest client-controlled string (URL, Host) in a log line. */
export const LOG_FIELD_LIMIT = 512;
/** Longest error message / stack in a log line. */
const LOG_ERROR_LIMIT = 4096;

function cut(s: unknown, max: number): string | undefined {
  if (typeof s !== 'string') return undefined;
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} characters)`;
}

/** Paths pino censors in every line (its redact syntax). */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'headers.authorization',
  'headers.cookie',
  'headers["proxy-authorization"]',
  'authorization',
  'token',
];

interface LoggedRequest {
  readonly method?: string;
  readonly url?: string;
  readonly host?: string;
  readonly ip?: string;
  readonly id?: string;
}

interface LoggedError {
  readonly name?: string;
  readonly code?: unknown;
  readonly message?: string;
  readonly stack?: string;
  readonly statusCode?: unknown;
}

export function daemonLoggerOptions(
  level: DaemonConfig['logLevel'],
  stream?: LogDestination,
): NonNullable<Exclude<FastifyServerOptions['logger'], boolean>> {
  return {
    level,
    ...(stream && { stream }),
    base: { service: 'thunderpac' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: {
      req: (req: LoggedRequest) => ({
        method: req.method,
        url: cut(req.url, LOG_FIELD_LIMIT),
        host: cut(req.host, LOG_FIELD_LIMIT),
        // A unix peer has no address; its credentials are logged by the authorizer.
        ...(req.ip && { remoteAddress: req.ip }),
      }),
      res: (reply: { statusCode?: number }) => ({ statusCode: reply.statusCode }),
      err: (err: LoggedError) => ({
        type: err?.name ?? 'Error',
        ...(err?.code !== undefined && { code: err.code }),
        ...(err?.statusCode !== undefined && { statusCode: err.statusCode }),
        message: cut(err?.message, LOG_ERROR_LIMIT) ?? '',
        stack: cut(err?.stack, LOG_ERROR_LIMIT) ?? '',
      }),
    },
  };
}

/**
 * How often Node checks requests against `requestTimeout` / `headersTimeout`. Node's default
 * (30 s) lets a 30 s timeout fire anywhere between 30 and 60 s, and a 1 s test timeout after
 * 31 s; a check each second (a walk of the connection list in C++) keeps a slow client's
 * deadline within a second of the configured one.
 */
export function connectionsCheckingIntervalMs(requestTimeoutMs: number): number {
  return Math.max(100, Math.min(1_000, Math.floor(requestTimeoutMs / 2)));
}

/** What a LogDestination holds unwritten at most (a stuck stdout): lines past it are counted and dropped. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * Where the daemon's log lines go: a file descriptor (stdout), written in batches.
 *
 * pino's default destination writes each line with its own write(2) before the log call
 * returns, on the request's path. Here a line is appended to a buffer, and the buffer is
 * written once per turn of the event loop (setImmediate: after the responses of that turn went
 * out), so N requests answered in one turn cost one write, and none of it delays an answer.
 * Synchronous writes keep lines in order and leave nothing in flight: `flushSync()` (at
 * exit, which Node runs after an uncaught exception too, and at close) writes what is left.
 *
 * Bounded: when stdout does not drain (a full pipe answering EAGAIN) the buffer holds at most
 * MAX_BUFFERED_BYTES; lines past it are dropped and a line saying how many is written once
 * output moves again. A line is lost only to SIGKILL, and then at most one turn's worth.
 */
export class LogDestination {
  readonly #fd: number;
  readonly #maxBufferedBytes: number;
  #lines: string[] = [];
  #bytes = 0;
  #dropped = 0;
  #scheduled = false;
  #retry: NodeJS.Timeout | null = null;
  readonly #flushAtExit = (): void => this.flushSync();

  constructor(fd = 1, maxBufferedBytes = MAX_BUFFERED_BYTES) {
    this.#fd = fd;
    this.#maxBufferedBytes = maxBufferedBytes;
    process.on('exit', this.#flushAtExit);
  }

  /** pino calls this with one complete line (newline included). */
  write(line: string): void {
    if (this.#bytes + line.length > this.#maxBufferedBytes) {
      this.#dropped++;
      return;
    }
    this.#lines.push(line);
    this.#bytes += line.length;
    if (!this.#scheduled && this.#retry === null) {
      this.#scheduled = true;
      setImmediate(this.#flushSoon);
    }
  }

  readonly #flushSoon = (): void => {
    this.#scheduled = false;
    this.#flush(false);
  };

  /** Write everything buffered now (exit, close, a fatal error); retries a full pipe briefly. */
  flushSync(): void {
    if (this.#retry !== null) {
      clearTimeout(this.#retry);
      this.#retry = null;
    }
    for (let attempt = 0; attempt < 100 && (this.#bytes > 0 || this.#dropped > 0); attempt++) {
      if (this.#flush(true)) return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); // a full pipe: let it drain
    }
  }

  /** Stop flushing at exit (the destination is no longer used); writes what is left. */
  close(): void {
    this.flushSync();
    process.off('exit', this.#flushAtExit);
  }

  /** true when the buffer is empty afterwards; false when the descriptor would block. */
  #flush(atExit: boolean): boolean {
    if (this.#dropped > 0) {
      this.#lines.push(
        `${JSON.stringify({ level: 40, time: Date.now(), service: 'thunderpac', dropped: this.#dropped, msg: 'log lines dropped: stdout did not keep up' })}\n`,
      );
      this.#dropped = 0;
    }
    if (this.#lines.length === 0) return true;
    const text = this.#lines.length === 1 ? (this.#lines[0] as string) : this.#lines.join('');
    this.#lines = [];
    this.#bytes = 0;
    let data: string | Buffer = text;
    try {
      for (;;) {
        const written = typeof data === 'string' ? writeSync(this.#fd, data) : writeSync(this.#fd, data);
        const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
        if (written >= size) return true;
        // A partial write (a pipe): the rest, as bytes.
        data = (typeof data === 'string' ? Buffer.from(data) : data).subarray(written);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return true; // stdout is gone: nothing to keep
      const rest = typeof data === 'string' ? data : data.toString('utf8');
      this.#lines = [rest];
      this.#bytes = rest.length;
      if (!atExit && this.#retry === null) {
        this.#retry = setTimeout(() => {
          this.#retry = null;
          this.#flush(false);
        }, 10);
        this.#retry.unref();
      }
      return false;
    }
  }
}

/** Who made a request, for its log line (the authorizer's per-connection identity). */
export type ActorOf = (req: FastifyRequest) => string | undefined;

/**
 * Fastify's request lines, one per request: nothing when a request arrives, one `request
 * completed` line when its answer has been written, carrying what the two lines carried
 * (request id, method, url cut to LOG_FIELD_LIMIT, status, duration) and the route pattern and
 * actor. An error answer is logged by the error handler as well (errors.ts), as before.
 */
export class DaemonLogController extends LogController {
  /** Set once the authorizer exists (it is created after the app). */
  actorOf: ActorOf = () => undefined;
  /** Below info nothing is built for a request that went well. */
  readonly #logsCompleted: boolean;

  constructor(level: DaemonConfig['logLevel']) {
    super();
    this.#logsCompleted = level === 'info' || level === 'debug' || level === 'trace';
  }

  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (!error && !this.#logsCompleted) return;
    const log = reply.log;
    const line = {
      req: request.raw, // through the req serializer: method and url, bounded
      route: request.routeOptions.url,
      res: reply,
      responseTime: reply.elapsedTime,
      actor: this.actorOf(request),
    };
    if (error) log.error({ ...line, err: error }, 'request errored');
    else log.info(line, 'request completed');
  }
}
