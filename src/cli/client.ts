/**
 * The CLI's client mode: the daemon's HTTP API over its unix socket (node:http with
 * `socketPath`, one keep-alive agent per command so a command's several requests share a
 * connection).
 *
 * Client mode is chosen explicitly, by `--socket PATH` or `$THUNDERPAC_SOCKET`; the CLI never
 * probes the default socket, so a script does not change behaviour because a daemon happens
 * to run. Once chosen, a daemon that cannot be reached is an error, never a fallback.
 *
 * Every way a request can go wrong is a DaemonClientError carrying the exit code main() uses:
 *   - unreachable (connect refused, no socket, no permission): 2, "no daemon at PATH: connect ECONNREFUSED"
 *   - a 4xx (the request was refused: bad input, unknown id, denied): 2, the daemon's code,
 *     message and field path
 *   - a 503 (overloaded, draining): 75 (EX_TEMPFAIL: try again later)
 *   - another 5xx, a timeout, a response that is too big or not JSON: 70 (the daemon failed)
 * Responses are bounded (content-length checked first, then bytes counted as they arrive).
 */

import { Agent, type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { UsageError } from './io.js';

/** Exit codes of client-mode failures (see the module comment). */
export const EXIT_BAD_INPUT = 2;
export const EXIT_INTERNAL = 70;
export const EXIT_TEMPFAIL = 75;

/** The biggest response body read (a map dump, a receipt list): beyond it the request fails. */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** How long a request may stay silent (no connect, no byte) before it is abandoned. */
export const DEFAULT_TIMEOUT_MS = 120_000;
/** The longest daemon message echoed to the terminal. */
const MESSAGE_LIMIT = 2000;

/** A client-mode failure: one line on stderr (`thunderpac: <message>`) and `exitCode`. */
export class DaemonClientError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** Nothing accepts connections on the socket. */
export class DaemonUnreachableError extends DaemonClientError {
  readonly socket: string;
  constructor(socket: string, cause: NodeJS.ErrnoException) {
    super(`no daemon at ${socket}: connect ${cause.code ?? cause.message}`, EXIT_BAD_INPUT);
    this.socket = socket;
  }
}

/** The daemon answered with an error status. */
export class DaemonResponseError extends DaemonClientError {
  readonly status: number;
  readonly code: string;
  readonly path: string | undefined;
  /** The parsed body (for callers that read more of it, e.g. a failed inference's receipt). */
  readonly body: unknown;

  constructor(status: number, code: string, message: string, path: string | undefined, body: unknown) {
    // The path once: many messages already begin with it.
    const where = path && !message.includes(path) ? ` (at ${path})` : '';
    const exit = status === 503 ? EXIT_TEMPFAIL : status >= 500 ? EXIT_INTERNAL : EXIT_BAD_INPUT;
    const prefix = status >= 500 ? `the daemon failed (HTTP ${status}): ` : '';
    super(oneLine(`${prefix}${code}: ${message}${where}`), exit);
    this.status = status;
    this.code = code;
    this.path = path;
    this.body = body;
  }
}

function oneLine(message: string): string {
  const flat = message.replace(/\s*\n\s*/g, ' | ');
  return flat.length > MESSAGE_LIMIT ? `${flat.slice(0, MESSAGE_LIMIT)}…` : flat;
}

/**
 * The daemon socket a command talks to: `--socket PATH`, else `$THUNDERPAC_SOCKET` (empty counts
 * as unset), else undefined: in-process.
 */
export function clientSocket(flag: string | undefined): string | undefined {
  if (flag !== undefined) {
    if (flag === '' || flag.includes('\0')) throw new UsageError(`--socket expects a path, got '${flag}'`);
    return flag;
  }
  const env = process.env.THUNDERPAC_SOCKET;
  return env === undefined || env === '' ? undefined : env;
}

/**
 * In client mode, flags that name local state (a store, a models directory, a bpffs root) have
 * no meaning: the daemon uses its own. Refused, rather than silently ignored.
 */
export function refuseLocalFlags(values: Readonly<Record<string, unknown>>, names: readonly string[]): void {
  for (const name of names) {
    if (values[name] !== undefined) {
      throw new UsageError(
        `--${name} names local state, but this command goes through the daemon (--socket or $THUNDERPAC_SOCKET), which uses its own; drop one of them`,
      );
    }
  }
}

export interface DaemonResponse<T> {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: T;
}

export interface RequestOptions {
  /** An object is sent as JSON, a Uint8Array as application/octet-stream. */
  readonly body?: unknown;
  readonly contentType?: string;
  readonly timeoutMs?: number;
  /** Statuses returned as they are instead of thrown (e.g. 500 for a failed inference). */
  readonly accept?: readonly number[];
  /** Extra query parameters (undefined values left out). */
  readonly query?: Readonly<Record<string, string | number | undefined>>;
}

/** An HTTP client for one daemon socket. close() when done (it holds a keep-alive agent). */
export class DaemonClient {
  readonly socket: string;
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;

  constructor(socket: string, options: { timeoutMs?: number; maxResponseBytes?: number } = {}) {
    this.socket = socket;
    this.#agent = new Agent({ keepAlive: true, maxSockets: 4 });
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxResponseBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
  }

  close(): void {
    this.#agent.destroy();
  }

  /** GET/POST/… `path` and the parsed JSON body; an error status (not in `accept`) throws. */
  async request<T = unknown>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<DaemonResponse<T>> {
    const url = withQuery(path, options.query);
    const { status, headers, text } = await this.#send(method, url, options);
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      if (status < 400 || status >= 500) {
        throw new DaemonClientError(
          `the daemon at ${this.socket} answered ${method} ${path} with ${status} and a body that is not JSON`,
          EXIT_INTERNAL,
        );
      }
      body = undefined;
    }
    if (status >= 400 && !options.accept?.includes(status)) {
      throw errorOf(status, headers, body, text, method, path);
    }
    return { status, headers, body: body as T };
  }

  /** As `request`, for a binary answer (a bundle): the body's bytes. */
  async requestBytes(method: string, path: string, options: RequestOptions = {}): Promise<Buffer> {
    const url = withQuery(path, options.query);
    const { status, headers, text, raw } = await this.#send(method, url, options);
    if (status >= 400) {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      throw errorOf(status, headers, body, text, method, path);
    }
    return raw;
  }

  #send(
    method: string,
    path: string,
    options: RequestOptions,
  ): Promise<{ status: number; headers: IncomingHttpHeaders; text: string; raw: Buffer }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    let payload: Buffer | undefined;
    if (options.body !== undefined) {
      if (options.body instanceof Uint8Array) {
        payload = Buffer.from(options.body.buffer, options.body.byteOffset, options.body.byteLength);
        headers['content-type'] = options.contentType ?? 'application/octet-stream';
      } else {
        payload = Buffer.from(JSON.stringify(options.body));
        headers['content-type'] = options.contentType ?? 'application/json';
      }
      headers['content-length'] = String(payload.byteLength);
    }
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const limit = this.#maxResponseBytes;
    return new Promise((resolve, reject) => {
      let connected = false;
      const req = httpRequest(
        { socketPath: this.socket, method, path, headers, agent: this.#agent },
        (res) => {
          const declared = Number(res.headers['content-length']);
          if (Number.isFinite(declared) && declared > limit) {
            reject(tooBig(this.socket, method, path, limit));
            res.destroy();
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.byteLength;
            if (size > limit) {
              // Settled first: destroying emits errors of its own, which must not win.
              reject(tooBig(this.socket, method, path, limit));
              res.destroy();
              req.destroy();
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', (err) => reject(failed(this.socket, method, path, err)));
          res.on('aborted', () => reject(failed(this.socket, method, path, new Error('response aborted'))));
          res.on('end', () => {
            const raw = Buffer.concat(chunks);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text: raw.toString('utf8'), raw });
          });
        },
      );
      req.on('socket', (s) => {
        // A reused keep-alive socket is connected already.
        if (!s.connecting) connected = true;
        else s.once('connect', () => (connected = true));
      });
      req.setTimeout(timeoutMs, () => {
        req.destroy(
          Object.assign(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`), {
            code: 'ETIMEDOUT',
          }),
        );
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (!connected && isConnectError(err)) reject(new DaemonUnreachableError(this.socket, err));
        else reject(failed(this.socket, method, path, err));
      });
      req.end(payload);
    });
  }
}

/** Errors of connect(2) on a unix socket: nobody is there (or we may not reach it). */
function isConnectError(err: NodeJS.ErrnoException): boolean {
  return [
    'ECONNREFUSED',
    'ENOENT',
    'EACCES',
    'EPERM',
    'ENOTDIR',
    'ENOTSOCK',
    'ENAMETOOLONG',
    'EINVAL',
  ].includes(err.code ?? '');
}

function tooBig(socket: string, method: string, path: string, limit: number): DaemonClientError {
  return new DaemonClientError(
    `the daemon at ${socket} answered ${method} ${path} with more than ${limit} bytes; refused`,
    EXIT_INTERNAL,
  );
}

function failed(socket: string, method: string, path: string, err: NodeJS.ErrnoException): DaemonClientError {
  return new DaemonClientError(
    oneLine(
      `the daemon at ${socket} did not complete ${method} ${path}: ${err.code ? `${err.code}: ` : ''}${err.message}`,
    ),
    EXIT_INTERNAL,
  );
}

/**
 * The daemon's error bodies: `{error: {code, message, path?}}` on /v1, and the Open Inference
 * Protocol's `{error: "message", code?, path?}` on /v2.
 */
export function errorOf(
  status: number,
  headers: IncomingHttpHeaders,
  body: unknown,
  text: string,
  method: string,
  path: string,
): DaemonResponseError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const nested =
    typeof b.error === 'object' && b.error !== null ? (b.error as Record<string, unknown>) : null;
  const source = nested ?? b;
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const code = str(source.code) ?? `HTTP_${status}`;
  const message =
    str(nested ? nested.message : b.error) ?? (text.trim() !== '' ? text.trim() : `${method} ${path} failed`);
  const retry = status === 503 ? str(headers['retry-after']) : undefined;
  return new DaemonResponseError(
    status,
    code,
    retry ? `${message} (retry after ${retry} s)` : message,
    str(source.path),
    body,
  );
}

function withQuery(path: string, query: RequestOptions['query']): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.append(k, String(v));
  const q = params.toString();
  return q === '' ? path : `${path}${path.includes('?') ? '&' : '?'}${q}`;
}

/** `/a/{x}` path segments escaped: a name from the command line never changes the route. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}

/** Run `body` with a client for `socket`, closing it afterwards. */
export async function withDaemon<T>(socket: string, body: (client: DaemonClient) => Promise<T>): Promise<T> {
  const client = new DaemonClient(socket);
  try {
    return await body(client);
  } finally {
    client.close();
  }
}
