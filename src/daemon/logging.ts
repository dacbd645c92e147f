/**
 * The daemon's structured logs: pino (through Fastify), one JSON line per event, each request's
 * lines carrying its request id (Fastify's per-request child logger).
 *
 * What a client sends never makes a log line long or leaks a secret: the URL and Host are cut
 * to a bound (a hostile 16 KiB URL logs as its first 512 characters and its length), error
 * messages and stacks are bounded, and credentials are redacted wherever a header object is
 * logged (Fastify's request serializer logs no headers at all; redaction covers a handler that
 * logs `req.headers` by mistake).
 */

import type { FastifyServerOptions } from 'fastify';
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
): NonNullable<Exclude<FastifyServerOptions['logger'], boolean>> {
  return {
    level,
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
