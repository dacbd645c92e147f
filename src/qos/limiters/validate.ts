/**
 * Setting checks shared by the limiters. Every limiter works in integer microseconds and scaled
 * integer tokens, so settings must be integers whose products stay exact in a double
 * (≤ Number.MAX_SAFE_INTEGER); these helpers refuse anything else with the field's path.
 */

import type { Clock } from '../clock.js';
import { QosConfigError } from './errors.js';

/** Default bound on how many keys one limiter keeps state for. */
export const DEFAULT_MAX_KEYS = 1_000_000;
/** Default longest key, in UTF-16 code units. */
export const DEFAULT_MAX_KEY_LENGTH = 256;
/** Default number of stored keys examined for eviction per new key inserted. */
export const DEFAULT_SWEEP_PER_INSERT = 4;

export function positiveInteger(path: string, v: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw new QosConfigError(path, `an integer from 1 to ${max}`, v);
  }
  return v;
}

export function nonNegativeInteger(path: string, v: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw new QosConfigError(path, `an integer from 0 to ${max}`, v);
  }
  return v;
}

/** A duration in ms that is a whole number of microseconds (the limiters' time unit); returns µs. */
export function durationMicros(path: string, ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) {
    throw new QosConfigError(path, 'a duration in ms greater than 0', ms);
  }
  const us = Math.round(ms * 1000);
  if (Math.abs(us - ms * 1000) > 1e-6 * Math.max(1, us) || us < 1 || us > 1e15) {
    throw new QosConfigError(
      path,
      'a whole number of microseconds (ms with at most 3 decimals), ≤ 1e12 ms',
      ms,
    );
  }
  return us;
}

/** Products of settings must stay exact: refuse combinations past 2^53. */
export function exactProduct(path: string, a: number, b: number, what: string): number {
  const p = a * b;
  if (!Number.isSafeInteger(p)) {
    throw new QosConfigError(path, `${what} ≤ ${Number.MAX_SAFE_INTEGER} (exact integer arithmetic)`, p);
  }
  return p;
}

export function object(path: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new QosConfigError(path, 'an object', v);
  return v as Record<string, unknown>;
}

export function clockOption(path: string, v: unknown): Clock {
  if (typeof v !== 'object' || v === null || typeof (v as Clock).now !== 'function') {
    throw new QosConfigError(path, 'a Clock (an object with now())', v);
  }
  return v as Clock;
}

/**
 * The limiters' time: integer microseconds from a Clock's milliseconds. Rounding (not flooring)
 * keeps decimal ms like 0.57 (56.99999… µs ×10) on their intended microsecond; it is monotonic,
 * so elapsed times telescope and nothing drifts over a long run.
 */
export function clockMicros(clock: Clock): number {
  return Math.round(clock.now() * 1000);
}
