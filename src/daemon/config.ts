/**
 * The daemon's configuration: every limit named, with its default (wasmtime's config.rs is
 * the model). Loaded from `--config FILE` (JSON with comments), then command-line flags.
 *
 * Owner of loading and validation (field path and line for every error): see loadConfig.
 */

export interface TlsConfig {
  readonly cert: string;
  readonly key: string;
}

export interface ListenConfig {
  readonly host: string;
  readonly port: number;
  /** TCP is served only with TLS and bearer tokens. */
  readonly tls: TlsConfig;
}

export interface DaemonLimits {
  /** Executions running at once; more wait in the queue. */
  readonly maxInFlight: number;
  /** Executions waiting for a slot; more are refused with 503 + Retry-After. */
  readonly maxQueued: number;
  /** Largest request body accepted, bytes (checked before buffering). */
  readonly bodyLimitBytes: number;
  /** A request (headers and body) must arrive within this, ms. */
  readonly requestTimeoutMs: number;
  /** Idle keep-alive connections are closed after this, ms. */
  readonly keepAliveTimeoutMs: number;
  /** Connections open at once. */
  readonly maxConnections: number;
  /** On SIGTERM, in-flight executions get this long to finish, ms. */
  readonly drainTimeoutMs: number;
  /** Finished async jobs are kept this long for `GET /v1/jobs/:id`, ms. */
  readonly jobRetentionMs: number;
}

export const DEFAULT_LIMITS: DaemonLimits = Object.freeze({
  maxInFlight: 64,
  maxQueued: 1024,
  bodyLimitBytes: 64 * 1024 * 1024,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 16_384,
  drainTimeoutMs: 10_000,
  jobRetentionMs: 10 * 60_000,
});

export const DEFAULT_SOCKET = '/run/thunderpac/thunderpac.sock';

export interface DaemonConfig {
  /** Unix socket path; mode 0660. */
  readonly socket: string;
  readonly socketMode: number;
  /** TCP listener, only when configured. */
  readonly listen: ListenConfig | null;
  readonly store: string;
  readonly modelsDir: string;
  /** Root of XDP records and per-attachment pin directories. */
  readonly bpffsRoot: string;
  readonly limits: DaemonLimits;
  /** The policy section, as loaded (validated by the policy module). */
  readonly policy: unknown;
  /** NATS JetStream event bus; null for the in-process bus only. */
  readonly nats: unknown;
  /** Log level for pino. */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}
