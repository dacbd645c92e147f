/**
 * The daemon's configuration: every limit named, with its default (wasmtime's config.rs is
 * the model). Loaded from `--config FILE` (JSON with comments), then command-line flags, which
 * override the file. Every value is validated at start; an error names `file:line:col` and the
 * field path, and unknown keys are errors (a typo must not pass silently):
 *
 *   config.json:12:5: limits.maxInFlight: expected a positive integer, found -3
 *
 * The `nats` section is validated by the event bus (src/daemon/events/): it stays `unknown`
 * here, and `config.source.locate(['nats', …])` / `config.source.error(…)` give that module
 * the same `file:line:col` errors (see config-source.ts).
 */

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { getNodeValue } from 'jsonc-parser';
import {
  ConfigError,
  ConfigSource,
  formatPath,
  readInteger,
  readObject,
  readString,
} from './config-source.js';
import { parseQosPolicy, QosPolicyError } from '../qos/config.js';
import type { QosPolicy } from '../qos/policy.js';
import { NatsConfigError, parseNatsConfig } from './events/nats-config.js';
import { parseFleetOptions, type ResolvedFleetOptions } from '../store/fleet/connection.js';
import { FleetConfigError } from '../store/fleet/errors.js';
import type { PolicyConfig } from './policy.js';
import { parsePolicy } from './policy.js';

export { ConfigError, ConfigSource } from './config-source.js';

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
  /** Async jobs kept at once (running and finished); more are refused with 503. */
  readonly maxJobs: number;
  /** Bytes of finished jobs' outputs kept at once; the oldest finished jobs leave first. */
  readonly maxJobResultBytes: number;
  /** The longest `GET /v1/jobs/:id?wait=MS` long poll; a larger wait is cut to this, ms. */
  readonly maxJobWaitMs: number;
  /** Builds kept decoded in memory (least recently used out first); the store keeps them all. */
  readonly buildCacheEntries: number;
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
  maxJobs: 10_000,
  maxJobResultBytes: 256 * 1024 * 1024,
  maxJobWaitMs: 60_000,
  buildCacheEntries: 256,
});

/** Largest value of each limit: timers are bounded by Node's (2^31 - 1 ms). */
const LIMIT_MAX: Readonly<Record<keyof DaemonLimits, number>> = {
  maxInFlight: 1 << 20,
  maxQueued: 1 << 24,
  bodyLimitBytes: 2 ** 31 - 1,
  requestTimeoutMs: 2 ** 31 - 1,
  keepAliveTimeoutMs: 2 ** 31 - 1,
  maxConnections: 1 << 24,
  drainTimeoutMs: 2 ** 31 - 1,
  jobRetentionMs: 2 ** 31 - 1,
  maxJobs: 1 << 24,
  maxJobResultBytes: Number.MAX_SAFE_INTEGER,
  maxJobWaitMs: 2 ** 31 - 1,
  buildCacheEntries: 1 << 20,
};

export const DEFAULT_SOCKET = '/run/thunderpac/thunderpac.sock';
export const DEFAULT_SOCKET_MODE = 0o660;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface DaemonConfig {
  /** Unix socket path; mode `socketMode` (0660 by default). */
  readonly socket: string;
  readonly socketMode: number;
  /** TCP listener, only when configured. */
  readonly listen: ListenConfig | null;
  readonly store: string;
  /**
   * Fleet mode: `store.fleet` (`"store": { "dir": …, "fleet": { "postgres": URL, … } }`), the
   * store's receipts mirrored into a shared PostgreSQL index (src/store/fleet/); null when off.
   */
  readonly storeFleet: ResolvedFleetOptions | null;
  /**
   * `store.signingKey`: an Ed25519 private key (PKCS#8 PEM file) the store signs its receipt
   * tree heads with (src/store/merkle/ledger.ts); null: heads are recorded unsigned.
   */
  readonly storeSigningKey: string | null;
  readonly modelsDir: string;
  /** Root of XDP records and per-attachment pin directories. */
  readonly bpffsRoot: string;
  readonly limits: DaemonLimits;
  /** The policy section, validated (null: the default policy, decided at start; see policy.ts). */
  readonly policy: PolicyConfig | null;
  /** NATS JetStream event bus section as written (validated by the events module); null if absent. */
  readonly nats: unknown;
  /** QoS: tiers, limits, quotas, queue, breakers, abuse, kernel rules (src/qos/config.ts; reloadable). */
  readonly qos: QosPolicy;
  /** Log level for pino. */
  readonly logLevel: LogLevel;
  /** Where the file's values are (for errors citing `file:line:col`); `ConfigSource.none()` without a file. */
  readonly source: ConfigSource;
}

/** Command-line flags; each overrides the file's value. */
export interface ConfigFlags {
  readonly config?: string | undefined;
  readonly socket?: string | undefined;
  readonly listen?: string | undefined;
  readonly store?: string | undefined;
  readonly modelsDir?: string | undefined;
  readonly logLevel?: string | undefined;
}

/** What the caller fills in where neither file nor flag says (they depend on the environment). */
export interface ConfigDefaults {
  readonly socket: string;
  readonly store: () => string;
  readonly modelsDir: string;
  readonly bpffsRoot: string;
}

const TOP_KEYS = [
  'socket',
  'socketMode',
  'listen',
  'tls',
  'store',
  'modelsDir',
  'bpffsRoot',
  'logLevel',
  'limits',
  'policy',
  'nats',
  'qos',
] as const;

/** `HOST:PORT` (IPv6 in brackets: `[::1]:8443`); null when malformed. */
export function parseHostPort(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  if (m[1] !== undefined && isIP(host) !== 6) return null;
  return { host, port };
}

const isAbsolutePath = (p: string): boolean => p.startsWith('/') && !p.includes('\0');
const isPath = (p: string): boolean => !p.includes('\0');

/**
 * The configuration from `flags.config` (if any) and the flags. Throws ConfigError (exit 2)
 * naming where and what for every invalid value.
 */
export function loadConfig(flags: ConfigFlags, defaults: ConfigDefaults): DaemonConfig {
  let source = ConfigSource.none();
  if (flags.config !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.config, 'utf8');
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new ConfigError('--config', '', `cannot read ${flags.config}: ${reason}`);
    }
    source = ConfigSource.parse(flags.config, text);
  }
  const top = readObject(source, [], source.root, TOP_KEYS);
  const str = (key: string, check: (v: string) => boolean = isPath, what = 'a non-empty path') => {
    const node = top.get(key);
    return node ? readString(source, [key], node, what, check) : undefined;
  };

  const socket = flags.socket ?? str('socket', isAbsolutePath, 'an absolute path') ?? defaults.socket;
  if (flags.socket !== undefined && (flags.socket === '' || flags.socket.includes('\0'))) {
    throw new ConfigError('--socket', '', `expected a path, found '${flags.socket}'`);
  }

  let socketMode = DEFAULT_SOCKET_MODE;
  const modeNode = top.get('socketMode');
  if (modeNode) {
    const text = readString(source, ['socketMode'], modeNode, 'an octal mode string like "0660"', (v) =>
      /^0?[0-7]{3}$/.test(v),
    );
    socketMode = Number.parseInt(text, 8);
  }

  const limits = readLimits(source, top.get('limits'));
  const listen = readListen(source, flags, top);
  const policy = top.has('policy') ? parsePolicy(source, ['policy'], top.get('policy')) : null;
  if (listen && (policy === null || policy.tokens.length === 0)) {
    throw new ConfigError(
      flags.listen !== undefined ? '--listen' : source.locate(['listen']),
      'listen',
      'TCP is served only to bearer tokens: add at least one token to policy.tokens',
    );
  }

  const logLevelText = flags.logLevel ?? str('logLevel', () => true, 'a log level');
  if (logLevelText !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevelText)) {
    if (flags.logLevel !== undefined) {
      throw new ConfigError(
        '--log-level',
        '',
        `expected one of ${LOG_LEVELS.join(', ')}, found '${logLevelText}'`,
      );
    }
    throw source.error(['logLevel'], `one of ${LOG_LEVELS.join(', ')}`);
  }
  for (const [flag, value] of [
    ['--store', flags.store],
    ['--models-dir', flags.modelsDir],
  ] as const) {
    if (value !== undefined && (value === '' || value.includes('\0'))) {
      throw new ConfigError(flag, '', `expected a directory, found '${value}'`);
    }
  }

  const nats = top.has('nats')
    ? top.get('nats')?.type === 'null'
      ? null
      : jsonValue(source, ['nats'])
    : null;
  try {
    parseNatsConfig(nats); // validated at start, so a bad section is exit 2 with its line
  } catch (err) {
    if (err instanceof NatsConfigError)
      throw new ConfigError(source.locate(err.segments), err.path, err.detail);
    throw err;
  }

  const qos = readQos(source);
  const {
    dir: storeDir,
    fleet: storeFleet,
    signingKey: storeSigningKey,
  } = readStore(source, top.get('store'));

  return {
    socket,
    socketMode,
    listen,
    store: flags.store ?? storeDir ?? defaults.store(),
    storeFleet,
    storeSigningKey,
    modelsDir: flags.modelsDir ?? str('modelsDir') ?? defaults.modelsDir,
    bpffsRoot: str('bpffsRoot', isAbsolutePath, 'an absolute path') ?? defaults.bpffsRoot,
    limits,
    policy,
    nats,
    qos,
    logLevel: (logLevelText as LogLevel | undefined) ?? 'info',
    source,
  };
}

/**
 * The `qos` section (the default policy when absent), errors at its `file:line:col`. Also what
 * a reload reads: `readQos(ConfigSource.parse(file, text))`.
 */
export function readQos(source: ConfigSource): QosPolicy {
  const node = source.node(['qos']);
  try {
    return parseQosPolicy(node ? getNodeValue(node) : undefined);
  } catch (err) {
    if (err instanceof QosPolicyError) {
      const segments = ['qos', ...err.segments];
      throw new ConfigError(source.locate(segments), formatPath(segments), err.detail);
    }
    throw err;
  }
}

/**
 * `store`: a directory (a string, as before), or `{ "dir": …, "fleet": { "postgres": URL, … } }`
 * for fleet mode; the fleet section's errors name their field (`store.fleet.batchSize`).
 */
function readStore(
  source: ConfigSource,
  node: ReturnType<ConfigSource['node']>,
): { dir: string | undefined; fleet: ResolvedFleetOptions | null; signingKey: string | null } {
  if (!node) return { dir: undefined, fleet: null, signingKey: null };
  if (node.type !== 'object') {
    return {
      dir: readString(
        source,
        ['store'],
        node,
        'a non-empty path or an object { dir, fleet, signingKey }',
        isPath,
      ),
      fleet: null,
      signingKey: null,
    };
  }
  const members = readObject(source, ['store'], node, ['dir', 'fleet', 'signingKey']);
  const dirNode = members.get('dir');
  const dir = dirNode ? readString(source, ['store', 'dir'], dirNode, 'a non-empty path', isPath) : undefined;
  const keyNode = members.get('signingKey');
  const signingKey = keyNode
    ? readString(source, ['store', 'signingKey'], keyNode, 'a path to an Ed25519 PKCS#8 PEM key', isPath)
    : null;
  const fleetNode = members.get('fleet');
  if (!fleetNode || fleetNode.type === 'null') return { dir, fleet: null, signingKey };
  try {
    return { dir, fleet: parseFleetOptions(getNodeValue(fleetNode), 'store.fleet'), signingKey };
  } catch (err) {
    if (err instanceof FleetConfigError) {
      const segments = err.path.split('.');
      throw new ConfigError(source.locate(segments), formatPath(segments), err.detail);
    }
    throw err;
  }
}

function jsonValue(source: ConfigSource, path: readonly string[]): unknown {
  const node = source.node(path);
  return node ? getNodeValue(node) : null;
}

function readLimits(source: ConfigSource, node: ReturnType<ConfigSource['node']>): DaemonLimits {
  const keys = Object.keys(DEFAULT_LIMITS) as (keyof DaemonLimits)[];
  const members = readObject(source, ['limits'], node, keys);
  const limits: Record<string, number> = { ...DEFAULT_LIMITS };
  for (const [key, value] of members) {
    const name = key as keyof DaemonLimits;
    limits[name] = readInteger(source, ['limits', name], value, 1, LIMIT_MAX[name]);
  }
  return Object.freeze(limits as unknown as DaemonLimits);
}

function readListen(
  source: ConfigSource,
  flags: ConfigFlags,
  top: Map<string, NonNullable<ReturnType<ConfigSource['node']>>>,
): ListenConfig | null {
  let hostPort: { host: string; port: number } | null = null;
  if (flags.listen !== undefined) {
    hostPort = parseHostPort(flags.listen);
    if (!hostPort) throw new ConfigError('--listen', '', `expected HOST:PORT, found '${flags.listen}'`);
  } else {
    const node = top.get('listen');
    if (node && node.type !== 'null') {
      const text = readString(source, ['listen'], node, 'HOST:PORT');
      hostPort = parseHostPort(text);
      if (!hostPort) throw source.error(['listen'], 'HOST:PORT (e.g. "127.0.0.1:8443")', node);
    }
  }
  const tlsNode = top.get('tls');
  const tlsMembers = readObject(source, ['tls'], tlsNode?.type === 'null' ? undefined : tlsNode, [
    'cert',
    'key',
  ]);
  if (!hostPort) return null;
  const cert = tlsMembers.get('cert');
  const key = tlsMembers.get('key');
  if (!cert || !key) {
    throw new ConfigError(
      tlsNode ? source.locate(['tls']) : flags.listen !== undefined ? '--listen' : source.locate(['listen']),
      'tls',
      'TCP is served only with TLS: set tls.cert and tls.key (PEM files)',
    );
  }
  return {
    ...hostPort,
    tls: {
      cert: readString(source, ['tls', 'cert'], cert, 'a path to a PEM certificate'),
      key: readString(source, ['tls', 'key'], key, 'a path to a PEM private key'),
    },
  };
}
