/**
 * Typed errors of the limiters: bad settings name the field path (`tiers.free.limit`), bad keys
 * and impossible costs say what was expected. Decisions never throw for ordinary refusals: only
 * for calls that can never succeed or settings that make no sense.
 */

import { ThunderpacError } from '../../runtime/errors.js';

/** A limiter setting is missing, of the wrong type or out of range. */
export class QosConfigError extends ThunderpacError {
  readonly path: string;
  readonly expected: string;
  readonly found: string;

  constructor(path: string, expected: string, found: unknown) {
    const shown = describe(found);
    super('QOS_CONFIG', `${path}: expected ${expected}, found ${shown}`);
    this.path = path;
    this.expected = expected;
    this.found = shown;
  }
}

/** A key is not a non-empty string within the limiter's `maxKeyLength`. */
export class QosKeyError extends ThunderpacError {
  readonly path: string;
  constructor(path: string, expected: string, found: unknown) {
    super('QOS_KEY', `${path}: expected ${expected}, found ${describe(found)}`);
    this.path = path;
  }
}

/**
 * A cost that no wait can ever admit (more than the bucket, burst or window holds), or one that
 * is not a non-negative integer. Refused loudly instead of answering "retry later" forever.
 */
export class QosCostError extends ThunderpacError {
  readonly cost: unknown;
  readonly capacity: number;
  constructor(cost: unknown, capacity: number) {
    super(
      'QOS_COST',
      `cost: expected an integer from 0 to ${capacity} (the limiter's capacity), found ${describe(cost)}`,
    );
    this.cost = cost;
    this.capacity = capacity;
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v === undefined || v === null) return String(v);
  return Array.isArray(v) ? 'an array' : typeof v;
}
