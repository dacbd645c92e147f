/**
 * Retention: which receipts stay "kept". Receipts never leave the log (its hash chain must stay
 * whole); what retention decides is which receipts still pin their payloads against GC. An
 * expired receipt stays readable; its payloads may be reclaimed, and `verify` of it then says
 * "payload reclaimed by GC".
 *
 * Policies (each optional; a receipt is kept when every given policy keeps it; none given keeps
 * every receipt):
 *   - keepDays: receipts that started within the last N days;
 *   - keepReceipts: the newest N receipts (log order);
 *   - maxBytes: the newest receipts while the payloads they reference (each counted once) fit
 *     in N bytes.
 */

import { ValidationError } from '../runtime/errors.js';

export interface RetentionPolicy {
  readonly keepDays?: number;
  readonly keepReceipts?: number;
  readonly maxBytes?: number;
}

/** What GC needs of one receipt. */
export interface ReceiptRefs {
  readonly id: string;
  readonly startedAtMs: number;
  /** Payload keys it references: input, output, memory fs tree. */
  readonly payloads: readonly string[];
  readonly buildId: string;
}

const DAY_MS = 86_400_000;

/** A policy checked field by field (ValidationError naming `retention.<field>`). */
export function checkRetention(policy: unknown): RetentionPolicy {
  if (policy === undefined) return {};
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) {
    throw new ValidationError('type', 'retention', 'an object', JSON.stringify(policy));
  }
  const p = policy as Record<string, unknown>;
  for (const key of Object.keys(p)) {
    if (key !== 'keepDays' && key !== 'keepReceipts' && key !== 'maxBytes') {
      throw new ValidationError('type', `retention.${key}`, 'keepDays, keepReceipts or maxBytes', key);
    }
    const v = p[key];
    if (v === undefined) continue;
    const integer = key !== 'keepDays';
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (integer && !Number.isSafeInteger(v))) {
      throw new ValidationError(
        'type',
        `retention.${key}`,
        integer ? 'a non-negative integer' : 'a non-negative number',
        JSON.stringify(v),
      );
    }
  }
  return p as RetentionPolicy;
}

/** kept[i] for receipts[i] (receipts in log order, oldest first). */
export function chooseKept(
  receipts: readonly ReceiptRefs[],
  policy: RetentionPolicy,
  now: number,
  sizeOf: (key: string) => number,
): boolean[] {
  const n = receipts.length;
  const kept = new Array<boolean>(n).fill(true);
  if (policy.keepDays !== undefined) {
    const since = now - policy.keepDays * DAY_MS;
    for (let i = 0; i < n; i++) if (!(receipts[i]!.startedAtMs >= since)) kept[i] = false;
  }
  if (policy.keepReceipts !== undefined) {
    for (let i = 0; i < n - policy.keepReceipts; i++) kept[i] = false;
  }
  if (policy.maxBytes !== undefined) {
    const counted = new Set<string>();
    let total = 0;
    let full = false;
    for (let i = n - 1; i >= 0; i--) {
      if (full) {
        kept[i] = false;
        continue;
      }
      let add = 0;
      const fresh: string[] = [];
      for (const k of receipts[i]!.payloads) {
        if (counted.has(k)) continue;
        fresh.push(k);
        add += sizeOf(k);
      }
      if (total + add > policy.maxBytes) {
        full = true;
        kept[i] = false;
        continue;
      }
      total += add;
      for (const k of fresh) counted.add(k);
    }
  }
  return kept;
}
