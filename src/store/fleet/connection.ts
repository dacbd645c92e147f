/**
 * The fleet index's options and its connection to PostgreSQL (porsager's `postgres` client):
 * a small pool (2 connections), opened lazily, idle sockets unreferenced (an embedder's process
 * can exit without closing it), and a deadline on every use. A database that refuses, resets, or
 * does not answer within `timeoutMs` (a hung server keeps its sockets open and says nothing) is a
 * FleetUnavailableError; after a timeout the pool is thrown away and the next use opens a new
 * one, so a stuck connection never holds later work. The schema is ensured (schema.ts) once per
 * pool, before its first use.
 */

import { hostname } from 'node:os';
import { resolve } from 'node:path';
import postgres, { type Sql } from 'postgres';
import { ThunderpacError } from '../../runtime/errors.js';
import { FleetConfigError, FleetUnavailableError } from './errors.js';
import { ensureSchema } from './schema.js';

export interface FleetOptions {
  /** Connection URL: `postgres://user[:password]@host[:port]/database[?sslmode=…]`. */
  readonly postgres: string;
  /**
   * This store's name in the fleet (recorded with each receipt it mirrors). Default:
   * `<hostname>:<absolute store dir>`. Two stores must never share one.
   */
  readonly host?: string;
  /** Receipts per mirrored transaction: 1..10000, default 1000. */
  readonly batchSize?: number;
  /** Wait after an append before mirroring, so a burst goes in one batch, ms: 0..60000, default 20. */
  readonly delayMs?: number;
  /** First retry after a failure, ms (doubling up to `retryMaxMs`): 1..600000, default 250. */
  readonly retryMinMs?: number;
  /** Longest wait between retries, ms: 1..3600000, default 10000. */
  readonly retryMaxMs?: number;
  /** Deadline of one database round (a batch, a query), ms: 100..600000, default 10000. */
  readonly timeoutMs?: number;
}

export interface ResolvedFleetOptions {
  readonly postgres: string;
  readonly host: string | undefined;
  readonly batchSize: number;
  readonly delayMs: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly timeoutMs: number;
}

const INTEGER_OPTIONS = {
  batchSize: [1, 10_000, 1000],
  delayMs: [0, 60_000, 20],
  retryMinMs: [1, 600_000, 250],
  retryMaxMs: [1, 3_600_000, 10_000],
  timeoutMs: [100, 600_000, 10_000],
} as const;

const KEYS = ['postgres', 'host', ...Object.keys(INTEGER_OPTIONS)];

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/**
 * Fleet options from untrusted data (a Store option, the daemon's `store.fleet` section): every
 * field checked, unknown keys refused, errors naming the field path (`store.fleet.batchSize`).
 */
export function parseFleetOptions(value: unknown, path = 'fleet'): ResolvedFleetOptions {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FleetConfigError(path, `expected an object with at least 'postgres', found ${describe(value)}`);
  }
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KEYS.includes(key))
      throw new FleetConfigError(`${path}.${key}`, `unknown key (expected one of ${KEYS.join(', ')})`);
  }
  const url = o.postgres;
  if (typeof url !== 'string' || !/^postgres(?:ql)?:\/\/[^\s]+$/.test(url)) {
    throw new FleetConfigError(
      `${path}.postgres`,
      `expected a connection URL 'postgres://user@host:port/database', found ${describe(url)}`,
    );
  }
  try {
    new URL(url);
  } catch {
    throw new FleetConfigError(
      `${path}.postgres`,
      `expected a connection URL, found ${describe(url)}: not a URL`,
    );
  }
  const host = o.host;
  if (
    host !== undefined &&
    (typeof host !== 'string' || host.length === 0 || host.length > 512 || host.includes('\0'))
  ) {
    throw new FleetConfigError(
      `${path}.host`,
      `expected a non-empty name of at most 512 characters, found ${describe(host)}`,
    );
  }
  const numbers: Record<string, number> = {};
  for (const [key, [min, max, fallback]] of Object.entries(INTEGER_OPTIONS)) {
    const v = o[key];
    if (v === undefined) numbers[key] = fallback;
    else if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw new FleetConfigError(
        `${path}.${key}`,
        `expected an integer in [${min}, ${max}], found ${describe(v)}`,
      );
    } else numbers[key] = v;
  }
  if (numbers.retryMaxMs! < numbers.retryMinMs!) {
    throw new FleetConfigError(`${path}.retryMaxMs`, `must be at least retryMinMs (${numbers.retryMinMs})`);
  }
  return {
    postgres: url,
    host: host as string | undefined,
    batchSize: numbers.batchSize!,
    delayMs: numbers.delayMs!,
    retryMinMs: numbers.retryMinMs!,
    retryMaxMs: numbers.retryMaxMs!,
    timeoutMs: numbers.timeoutMs!,
  };
}

/** This store's default fleet name: the machine's hostname and the store's absolute path. */
export function defaultHostName(storeDir: string): string {
  return `${hostname()}:${resolve(storeDir)}`;
}

/** The URL with any password masked, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

const CLIENT_UNAVAILABLE = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'QUERY_TIMEOUT',
  'CANCEL_UNANSWERED',
]);

/** Errors that say the server is not there or not answering (as opposed to a refused statement). */
function isUnavailable(err: unknown): boolean {
  if (err instanceof ThunderpacError || !(err instanceof Error)) return false;
  const e = err as Error & { code?: unknown; syscall?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (typeof e.syscall === 'string' || CLIENT_UNAVAILABLE.has(code)) return true; // socket / client
  if (e.name !== 'PostgresError') return false;
  // 08: connection exception; 57P01..03: shutting down, crash shutdown, cannot connect now; 53: resources.
  return code.startsWith('08') || /^57P0[1-3]$/.test(code) || code.startsWith('53');
}

class Deadline extends Error {}

export class FleetDb {
  readonly options: ResolvedFleetOptions;
  #sql: Sql | undefined;
  #schemaReady: Promise<void> | undefined;
  #closed = false;

  constructor(options: ResolvedFleetOptions) {
    this.options = options;
  }

  #pool(): Sql {
    if (!this.#sql) {
      const seconds = Math.max(1, Math.ceil(this.options.timeoutMs / 1000));
      this.#sql = postgres(this.options.postgres, {
        max: 2,
        connect_timeout: seconds,
        idle_timeout: 30,
        onnotice: false,
        unref_sockets: true,
        connection: { application_name: 'thunderpac-fleet' },
      });
      this.#schemaReady = undefined;
    }
    return this.#sql;
  }

  /** Throw the pool away (a stuck or broken one): its sockets are destroyed, in-flight work fails. */
  #discard(): void {
    const sql = this.#sql;
    this.#sql = undefined;
    this.#schemaReady = undefined;
    if (sql) void sql.end({ timeout: 0 }).catch(() => {});
  }

  /**
   * Run `work` against the database within the deadline, the schema ensured first. Connection
   * failures and timeouts become FleetUnavailableError (`what` names the work); statement errors
   * (and the schema's own errors) pass through as they are.
   */
  async run<T>(what: string, work: (sql: Sql) => Promise<T>): Promise<T> {
    if (this.#closed) throw new FleetUnavailableError(what, 'the fleet index is closed');
    const sql = this.#pool();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Deadline()), this.options.timeoutMs);
      timer.unref();
    });
    try {
      const job = (async () => {
        this.#schemaReady ??= ensureSchema(sql);
        try {
          await this.#schemaReady;
        } catch (err) {
          this.#schemaReady = undefined;
          throw err;
        }
        return work(sql);
      })();
      job.catch(() => {}); // when the deadline wins, the job's own failure is not unhandled
      return await Promise.race([job, deadline]);
    } catch (err) {
      if (err instanceof Deadline) {
        this.#discard();
        throw new FleetUnavailableError(
          what,
          `${redactUrl(this.options.postgres)} did not answer within ${this.options.timeoutMs} ms`,
        );
      }
      if (isUnavailable(err)) {
        this.#discard();
        const reason = err instanceof Error ? err.message : String(err);
        throw new FleetUnavailableError(what, `${redactUrl(this.options.postgres)}: ${reason}`, {
          cause: err,
        });
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const sql = this.#sql;
    this.#sql = undefined;
    if (sql) await sql.end({ timeout: 1 }).catch(() => {});
  }
}
