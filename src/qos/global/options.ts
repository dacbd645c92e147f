/**
 * Settings of the Redis-backed global limits and quotas, validated with the field path in every
 * error (QosConfigError, as the in-process limiters). Every limit is named with its default.
 */

import { QosConfigError } from '../limiters/errors.js';
import { object, positiveInteger } from '../limiters/validate.js';

/** What a check answers while Redis cannot be reached. */
export type FailMode = 'open' | 'closed';

/** Longest any one Redis call may take before the check decides without it. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 50;
/** Longest a (re)connection attempt may take. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 1_000;
/** First wait between reconnection attempts; doubles per failed attempt … */
export const DEFAULT_RECONNECT_MIN_MS = 50;
/** … up to this bound. */
export const DEFAULT_RECONNECT_MAX_MS = 2_000;
/** Prefix of every key this module writes, so a shared Redis can tell them apart. */
export const DEFAULT_KEY_PREFIX = 'thunderpac:qos:';
/** Fail open by default: an outage of the shared store must not stop the fleet. */
export const DEFAULT_FAIL_MODE: FailMode = 'open';

export interface GlobalStoreOptions {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://…`. */
  readonly url: string;
  readonly commandTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  readonly keyPrefix?: string;
  readonly failMode?: FailMode;
}

export interface ResolvedGlobalStoreOptions {
  readonly url: string;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly keyPrefix: string;
  readonly failMode: FailMode;
}

const HOUR_MS = 3_600_000;

export function resolveGlobalStoreOptions(input: unknown, path = 'global'): ResolvedGlobalStoreOptions {
  const o = object(path, input);
  const url = redisUrl(`${path}.url`, o.url);
  const commandTimeoutMs = positiveInteger(
    `${path}.commandTimeoutMs`,
    o.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    HOUR_MS,
  );
  const connectTimeoutMs = positiveInteger(
    `${path}.connectTimeoutMs`,
    o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    HOUR_MS,
  );
  const reconnectMinMs = positiveInteger(
    `${path}.reconnectMinMs`,
    o.reconnectMinMs ?? DEFAULT_RECONNECT_MIN_MS,
    HOUR_MS,
  );
  const reconnectMaxMs = positiveInteger(
    `${path}.reconnectMaxMs`,
    o.reconnectMaxMs ?? Math.max(DEFAULT_RECONNECT_MAX_MS, reconnectMinMs),
    HOUR_MS,
  );
  if (reconnectMaxMs < reconnectMinMs) {
    throw new QosConfigError(
      `${path}.reconnectMaxMs`,
      `an integer ≥ reconnectMinMs (${reconnectMinMs})`,
      reconnectMaxMs,
    );
  }
  const keyPrefix = o.keyPrefix ?? DEFAULT_KEY_PREFIX;
  if (typeof keyPrefix !== 'string' || keyPrefix.length > 128) {
    throw new QosConfigError(`${path}.keyPrefix`, 'a string of at most 128 characters', keyPrefix);
  }
  const failMode = o.failMode ?? DEFAULT_FAIL_MODE;
  if (failMode !== 'open' && failMode !== 'closed') {
    throw new QosConfigError(`${path}.failMode`, '"open" or "closed"', failMode);
  }
  return Object.freeze({
    url,
    commandTimeoutMs,
    connectTimeoutMs,
    reconnectMinMs,
    reconnectMaxMs,
    keyPrefix,
    failMode,
  });
}

function redisUrl(path: string, v: unknown): string {
  if (typeof v !== 'string') throw new QosConfigError(path, 'a redis:// or rediss:// URL', v);
  let parsed: URL;
  try {
    parsed = new URL(v);
  } catch {
    throw new QosConfigError(path, 'a redis:// or rediss:// URL', v);
  }
  if ((parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || parsed.hostname === '') {
    throw new QosConfigError(path, 'a redis:// or rediss:// URL with a host', v);
  }
  if (parsed.port !== '' && !(Number(parsed.port) >= 1 && Number(parsed.port) <= 65_535)) {
    throw new QosConfigError(path, 'a port from 1 to 65535', v);
  }
  return v;
}
