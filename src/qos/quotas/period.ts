/**
 * Quota plans and their periods, in wall-clock epoch milliseconds (UTC).
 *
 * A plan is `limit` per period. Periods:
 * - `hour`, `day`, `week`, `month`, `{ everyMs }`: with `align: 'utc'` (default) the periods are
 *   the UTC calendar's: hours and days start at :00, weeks on Monday 00:00 UTC (ISO), months on
 *   the 1st 00:00 UTC (so a month lasts 28 to 31 days), `everyMs` at whole multiples of everyMs
 *   since the Unix epoch. With `align: 'rolling'` a period starts at the first consume of a key
 *   with no period running and lasts exactly the period: 1 h, 24 h, 7 × 24 h, `everyMs`, or one
 *   calendar month (the same day-of-month and time next month, clamped to that month's last
 *   day: Jan 31 10:00 → Feb 28/29 10:00).
 * - `never`: no automatic reset; only `reset(key)` empties it.
 *
 * A stored usage belongs to the period that started at `start`; it is current while
 * `now < periodEnd(start)`. A wall clock stepped backwards therefore keeps the usage (never an
 * early reset); a reset happens exactly when now reaches resets_at.
 */

import { QosConfigError } from '../limiters/errors.js';

export type NamedPeriod = 'hour' | 'day' | 'week' | 'month' | 'never';
export type PeriodInput = NamedPeriod | { readonly everyMs: number };
export type Alignment = 'utc' | 'rolling';

export interface QuotaPlanInput {
  /** Units per period (integer ≥ 1). */
  readonly limit: number;
  /** Default `day`. */
  readonly period?: PeriodInput;
  /** Default `utc`. */
  readonly align?: Alignment;
}

/** A validated, frozen plan: make one with `quotaPlan` and reuse it (resolvers return these). */
export interface QuotaPlan {
  readonly limit: number;
  readonly period: NamedPeriod | 'every';
  readonly everyMs: number;
  readonly align: Alignment;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const WEEK_MS = 7 * DAY_MS;
/** 1970-01-05 (a Monday) 00:00 UTC: ISO weeks are aligned to it. */
const FIRST_MONDAY_MS = 4 * DAY_MS;
const NAMED: readonly NamedPeriod[] = ['hour', 'day', 'week', 'month', 'never'];

export function quotaPlan(input: unknown, path = 'quota'): QuotaPlan {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new QosConfigError(path, 'an object { limit, period?, align? }', input);
  }
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'limit' && k !== 'period' && k !== 'align') {
      throw new QosConfigError(`${path}.${k}`, 'no such field (limit, period, align)', o[k]);
    }
  }
  const limit = o.limit;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) {
    throw new QosConfigError(`${path}.limit`, `an integer from 1 to ${Number.MAX_SAFE_INTEGER}`, limit);
  }
  const align = o.align ?? 'utc';
  if (align !== 'utc' && align !== 'rolling') {
    throw new QosConfigError(`${path}.align`, '"utc" or "rolling"', align);
  }
  const p = o.period ?? 'day';
  if (typeof p === 'string') {
    if (!(NAMED as readonly string[]).includes(p)) {
      throw new QosConfigError(`${path}.period`, `one of ${NAMED.join(', ')} or { everyMs }`, p);
    }
    const named = p as NamedPeriod;
    const everyMs = named === 'hour' ? HOUR_MS : named === 'day' ? DAY_MS : named === 'week' ? WEEK_MS : 0;
    return Object.freeze({ limit, period: named, everyMs, align });
  }
  if (typeof p !== 'object' || p === null || Array.isArray(p)) {
    throw new QosConfigError(`${path}.period`, `one of ${NAMED.join(', ')} or { everyMs }`, p);
  }
  const everyMs = (p as { everyMs?: unknown }).everyMs;
  if (typeof everyMs !== 'number' || !Number.isSafeInteger(everyMs) || everyMs < 1) {
    throw new QosConfigError(`${path}.period.everyMs`, 'an integer number of ms ≥ 1', everyMs);
  }
  return Object.freeze({ limit, period: 'every', everyMs, align });
}

/** Start of the period a first consume at `now` opens. */
export function periodStartAt(plan: QuotaPlan, now: number): number {
  if (plan.period === 'never') return 0;
  if (plan.align === 'rolling') return now;
  switch (plan.period) {
    case 'month': {
      const d = new Date(now);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    }
    case 'week':
      return Math.floor((now - FIRST_MONDAY_MS) / WEEK_MS) * WEEK_MS + FIRST_MONDAY_MS;
    default:
      return Math.floor(now / plan.everyMs) * plan.everyMs;
  }
}

/** When the period that started at `start` ends (resets_at); Infinity for `never`. */
export function periodEnd(plan: QuotaPlan, start: number): number {
  if (plan.period === 'never') return Number.POSITIVE_INFINITY;
  if (plan.period !== 'month') return start + plan.everyMs;
  const d = new Date(start);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + 1;
  if (plan.align === 'utc') return Date.UTC(y, m, 1);
  // Rolling month: same day and time next month, clamped to that month's last day.
  const lastDay = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  const day = Math.min(d.getUTCDate(), lastDay);
  return Date.UTC(y, m, day) + (start - Date.UTC(y, m - 1, d.getUTCDate()));
}
