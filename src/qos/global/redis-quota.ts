/**
 * Quotas shared by every host through Redis: limit / used / resets_at per key, consumed by an
 * atomic Lua check-and-increment (never over-consumed, whatever the number of processes), reset
 * by DEL, and reset periodically at resets_at on Redis's clock (the key expires then too).
 *
 * Periods: `hour`, `day`, `week` (ISO, Monday 00:00 UTC), `{ everyMs }` aligned to UTC multiples
 * (default) or rolling from the first consume, and `never`. Calendar months are left to the
 * in-process quotas (src/qos/quotas/): their length varies and Lua has no calendar.
 *
 * Redis down: fail-closed refuses (source `unavailable`); fail-open consumes from a count kept on
 * this host with the same limit for the period that was running (so the fleet consumes at most
 * hosts × limit extra while degraded); both say `degraded: true`.
 */

import { QosConfigError, QosCostError, QosKeyError } from '../limiters/errors.js';
import { DEFAULT_MAX_KEY_LENGTH, object, positiveInteger } from '../limiters/validate.js';
import { type GlobalStore, script } from './global-store.js';
import { QUOTA_CONSUME_SCRIPT } from './scripts.js';

const CONSUME = script(QUOTA_CONSUME_SCRIPT);

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const WEEK_MS = 7 * DAY_MS;
/** 1970-01-05, a Monday: ISO weeks start at whole weeks after it. */
const FIRST_MONDAY_MS = 4 * DAY_MS;

export type GlobalQuotaPeriod = 'hour' | 'day' | 'week' | 'never' | { readonly everyMs: number };

export interface RedisQuotaOptions {
  /** Units per period (integer ≥ 1). */
  readonly limit: number;
  /** Default `day`. */
  readonly period?: GlobalQuotaPeriod;
  /** `utc` (default): periods at whole multiples since the epoch; `rolling`: from the first consume. */
  readonly align?: 'utc' | 'rolling';
  /** Name inside the store's key prefix (keys become `<prefix><name>:<key>`); default `quota`. */
  readonly name?: string;
}

export interface QuotaState {
  readonly allowed: boolean;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  /** Epoch ms (Redis time) when the usage resets; null for `never`. */
  readonly resetsAt: number | null;
  readonly source: 'redis' | 'local-fallback' | 'unavailable';
  readonly degraded: boolean;
}

export class RedisQuota {
  readonly limit: number;
  readonly periodMs: number;
  readonly offsetMs: number;
  readonly rolling: boolean;
  readonly name: string;
  readonly #store: GlobalStore;
  /** Fail-open: usage counted on this host while Redis is unreachable, per key. */
  readonly #local = new Map<string, { used: number; resetsAt: number | null }>();

  constructor(store: GlobalStore, options: RedisQuotaOptions, path = 'globalQuota') {
    const o = object(path, options);
    this.#store = store;
    this.limit = positiveInteger(`${path}.limit`, o.limit);
    const period = o.period ?? 'day';
    this.offsetMs = 0;
    if (period === 'hour') this.periodMs = HOUR_MS;
    else if (period === 'day') this.periodMs = DAY_MS;
    else if (period === 'week') {
      this.periodMs = WEEK_MS;
      this.offsetMs = FIRST_MONDAY_MS;
    } else if (period === 'never') this.periodMs = 0;
    else if (typeof period === 'object' && period !== null && !Array.isArray(period)) {
      this.periodMs = positiveInteger(`${path}.period.everyMs`, (period as { everyMs?: unknown }).everyMs);
    } else {
      throw new QosConfigError(`${path}.period`, '"hour", "day", "week", "never" or { everyMs }', period);
    }
    const align = o.align ?? 'utc';
    if (align !== 'utc' && align !== 'rolling')
      throw new QosConfigError(`${path}.align`, '"utc" or "rolling"', align);
    this.rolling = align === 'rolling';
    const name = o.name ?? 'quota';
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(name)) {
      throw new QosKeyError(`${path}.name`, '1 to 64 of A-Z a-z 0-9 _ . : -', name);
    }
    this.name = name;
  }

  /** Consume `n` units if they fit (all or nothing). */
  async consume(key: string, n = 1): Promise<QuotaState> {
    return this.#run(key, n, '');
  }

  /** The usage now, consuming nothing. */
  async get(key: string): Promise<QuotaState> {
    return this.#run(key, 0, '');
  }

  /** Consume at an explicit Redis time (epoch ms): for tests of the periodic reset. */
  async consumeAt(key: string, n: number, nowMs: number): Promise<QuotaState> {
    return this.#run(key, n, String(nowMs));
  }

  /** Empty the key's usage now (a new period starts at the next consume). */
  async reset(key: string): Promise<void> {
    this.#checkKey(key);
    this.#local.delete(key);
    await this.#store.command('DEL', this.#redisKey(key));
  }

  #redisKey(key: string): string {
    return this.#store.key(`${this.name}:${key}`);
  }

  #checkKey(key: string): void {
    if (typeof key !== 'string' || key.length === 0 || key.length > DEFAULT_MAX_KEY_LENGTH) {
      throw new QosKeyError('key', `a string of 1 to ${DEFAULT_MAX_KEY_LENGTH} characters`, key);
    }
  }

  async #run(key: string, n: number, nowArg: string): Promise<QuotaState> {
    this.#checkKey(key);
    if (!Number.isInteger(n) || n < 0 || n > this.limit) throw new QosCostError(n, this.limit);
    if (this.#store.available()) {
      try {
        const [allowed, used, resets] = (await this.#store.evalScript(
          CONSUME,
          [this.#redisKey(key)],
          [n, this.limit, this.periodMs, this.offsetMs, this.rolling ? 1 : 0, nowArg],
        )) as [number, number, number];
        this.#local.delete(key);
        return {
          allowed: allowed === 1,
          limit: this.limit,
          used,
          remaining: this.limit - used,
          resetsAt: resets < 0 ? null : resets,
          source: 'redis',
          degraded: false,
        };
      } catch {
        // Decided below, without Redis.
      }
    }
    return this.#degraded(key, n);
  }

  #degraded(key: string, n: number): QuotaState {
    if (this.#store.options.failMode === 'closed') {
      return {
        allowed: false,
        limit: this.limit,
        used: 0,
        remaining: 0,
        resetsAt: null,
        source: 'unavailable',
        degraded: true,
      };
    }
    const now = Date.now();
    let local = this.#local.get(key);
    if (local === undefined || (local.resetsAt !== null && now >= local.resetsAt)) {
      const resetsAt =
        this.periodMs === 0
          ? null
          : this.rolling
            ? now + this.periodMs
            : Math.floor((now - this.offsetMs) / this.periodMs) * this.periodMs +
              this.offsetMs +
              this.periodMs;
      local = { used: 0, resetsAt };
      this.#local.set(key, local);
    }
    const allowed = local.used + n <= this.limit;
    if (allowed) local.used += n;
    return {
      allowed,
      limit: this.limit,
      used: local.used,
      remaining: this.limit - local.used,
      resetsAt: local.resetsAt,
      source: 'local-fallback',
      degraded: true,
    };
  }
}
