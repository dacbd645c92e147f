/**
 * The config file's `nats` section, validated here (its owner is the event bus): every field
 * named with its default, every error naming the field path (`nats.url: expected
 * nats://host:port, found "localhost"`).
 */

import { ThunderpacError } from '../../runtime/errors.js';

export interface NatsBusConfig {
  /** The server, `nats://host:port`. */
  readonly url: string;
  /** JetStream stream over `inference.>` and `system.dlq.>`; created when missing. */
  readonly stream: string;
  /** The durable pull consumer of `inference.request.>`; created when missing. */
  readonly durable: string;
  /** A delivery not acked within this is redelivered (a killed daemon's requests come back), ms. */
  readonly ackWaitMs: number;
  /** Deliveries per request at most; the last one is dead-lettered instead of run. */
  readonly maxDeliver: number;
  /** Requests pulled and running at once (back-pressure: no more are pulled). */
  readonly maxInFlight: number;
  /** Result and DLQ publishes are deduplicated by id within this window (the stream's), ms. */
  readonly duplicateWindowMs: number;
  /** The actor id sealed into receipts of bus-triggered executions. */
  readonly actor: string;
  /** The first connection must succeed within this, or the daemon does not start, ms. */
  readonly connectTimeoutMs: number;
}

export const NATS_DEFAULTS: Omit<NatsBusConfig, 'url'> = Object.freeze({
  stream: 'THUNDERPAC',
  durable: 'thunderpac-inference',
  ackWaitMs: 30_000,
  maxDeliver: 5,
  maxInFlight: 16,
  duplicateWindowMs: 120_000,
  actor: 'bus:nats',
  connectTimeoutMs: 5_000,
});

/**
 * A `nats` section that does not validate: `path` is the field (`nats.ackWaitMs`), `segments`
 * the same as keys (for the config source to find its file:line:col), `detail` what was wrong.
 */
export class NatsConfigError extends ThunderpacError {
  readonly path: string;
  readonly detail: string;

  constructor(
    readonly segments: readonly string[],
    expected: string,
    found: unknown,
  ) {
    const path = segments.join('.');
    const detail = `expected ${expected}, found ${describe(found)}`;
    super('DAEMON_CONFIG', `${path}: ${detail}`);
    this.path = path;
    this.detail = detail;
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

const NAME = /^[A-Za-z0-9_-]{1,32}$/;
const ACTOR = /^[A-Za-z0-9:._@-]{1,128}$/;
const URL = /^nats:\/\/[A-Za-z0-9.-]+:\d{1,5}$/;

/**
 * The section as loaded (`null`/absent: the in-process bus only) → the validated config, or a
 * NatsConfigError naming the first bad field.
 */
export function parseNatsConfig(raw: unknown): NatsBusConfig | null {
  const at = (...keys: string[]): string[] => ['nats', ...keys];
  if (raw === null || raw === undefined) return null;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new NatsConfigError(at(), 'an object (or null for the in-process bus)', raw);
  }
  const section = raw as Record<string, unknown>;
  const known = new Set(['url', ...Object.keys(NATS_DEFAULTS)]);
  for (const key of Object.keys(section)) {
    if (!known.has(key)) throw new NatsConfigError(at(key), `one of ${[...known].join(', ')}`, key);
  }
  const url = section.url;
  if (typeof url !== 'string' || !URL.test(url) || Number(url.slice(url.lastIndexOf(':') + 1)) > 65_535) {
    throw new NatsConfigError(at('url'), 'nats://host:port', url);
  }
  const name = (key: 'stream' | 'durable'): string => {
    const value = section[key] ?? NATS_DEFAULTS[key];
    if (typeof value !== 'string' || !NAME.test(value)) {
      throw new NatsConfigError(at(key), 'a name of 1-32 letters, digits, _ or -', value);
    }
    return value;
  };
  const integer = (key: keyof typeof NATS_DEFAULTS, min: number, max: number): number => {
    const value = section[key] ?? NATS_DEFAULTS[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new NatsConfigError(at(key), `an integer in [${min}, ${max}]`, value);
    }
    return value;
  };
  const actor = section.actor ?? NATS_DEFAULTS.actor;
  if (typeof actor !== 'string' || !ACTOR.test(actor)) {
    throw new NatsConfigError(at('actor'), 'an actor id of 1-128 letters, digits or :._@-', actor);
  }
  return {
    url,
    stream: name('stream'),
    durable: name('durable'),
    ackWaitMs: integer('ackWaitMs', 1_000, 3_600_000),
    maxDeliver: integer('maxDeliver', 1, 1_000),
    maxInFlight: integer('maxInFlight', 1, 10_000),
    duplicateWindowMs: integer('duplicateWindowMs', 1_000, 86_400_000),
    actor,
    connectTimeoutMs: integer('connectTimeoutMs', 100, 600_000),
  };
}
