/**
 * The receipt index: list receipts by build, actor, status, backend and start time, newest or
 * oldest first, a page at a time (issue #11: "receipts: get, list and filter by build / actor /
 * status / time").
 *
 * The log (receipt-log.ts) is append-only and can be large, so the index keeps only small
 * columns per receipt, by log position (ordinal): start time (ms, float64), status and backend
 * (interned, uint16), build id and actor (interned, uint32; 0 = no actor). That is 20 bytes a
 * receipt, plus the interned strings once each (a long-lived store sees few builds and actors);
 * the id and the record's offset are the log's own (`getAt`). The columns are not rebuilt from the
 * log on each open: the log's checkpoint (receipt-checkpoint.ts, `<dir>/receipts.idx`) persists
 * them with the ids and offsets, so the first query reads them from there (about 20 MB at a
 * million receipts, every block crc-checked) and indexes only the records after the checkpoint by
 * a sequential pass over their bodies; commands that never list (`run`, `receipt show`) read none
 * of it. Each later query first takes in what was appended since: the writer's own appends, or,
 * for a read-only open beside a writer (the CLI beside a daemon), what `ReceiptLog.refresh` finds
 * the writer added.
 *
 * A query scans the columns from its cursor in log order, comparing integers: no per-receipt
 * allocation, about a nanosecond or two a receipt, so even a filter that matches nothing in
 * millions of receipts stays in the milliseconds. Order is the log's (append order: "newest" is
 * the most recently sealed); the time range filters on `startedAt` (since inclusive, until
 * exclusive).
 *
 * Cursors are opaque to clients: the position to continue from, the order, and a digest of the
 * filters, so that a cursor is refused with any other query rather than silently paging through
 * a different result. Pages are stable under appends: newest-first paging continues below where
 * it was; oldest-first paging reaches receipts appended meanwhile.
 */

import { sha256Hex } from '../runtime/canonical.js';
import { ValidationError } from '../runtime/errors.js';
import type { Receipt } from '../runtime/receipt.js';
import { describeUntrusted } from '../runtime/untrusted.js';
import { ColumnBuilder } from './receipt-fields.js';
import type { ColumnRows } from './receipt-checkpoint.js';
import { type LogPosition, ReceiptLog } from './receipt-log.js';

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;
export const RECEIPT_ORDERS = ['newest', 'oldest'] as const;
export type ReceiptOrder = (typeof RECEIPT_ORDERS)[number];

export interface ReceiptQuery {
  /** Build id (exact). */
  readonly build?: string;
  /** Actor id as sealed in the receipt (exact). */
  readonly actor?: string;
  readonly status?: string;
  readonly backend?: string;
  /** Receipts that started at or after this time (ISO 8601). */
  readonly since?: string;
  /** Receipts that started before this time (ISO 8601). */
  readonly until?: string;
  /** Page size: 1..1000, default 100. */
  readonly limit?: number;
  /** The `next` of the previous page of the same query. */
  readonly cursor?: string;
  /** 'newest' (default: last appended first) or 'oldest'. */
  readonly order?: ReceiptOrder;
}

export interface ReceiptPage {
  readonly receipts: readonly Receipt[];
  /** The cursor of the next page, or null when this page holds the last match. */
  readonly next: string | null;
}

const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

/** Whether the fields of an ISO 8601 match name a real date and time (Date.parse rolls Feb 31 over). */
function realDateTime(m: RegExpExecArray): boolean {
  const [year, month, day, hour, minute, second = '0', offH = '0', offM = '0'] = m
    .slice(1)
    .map((x) => x ?? '0');
  const y = Number(year);
  const mo = Number(month);
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  return (
    mo >= 1 &&
    mo <= 12 &&
    Number(day) >= 1 &&
    Number(day) <= daysInMonth &&
    Number(hour) <= 23 &&
    Number(minute) <= 59 &&
    Number(second) <= 59 &&
    Number(offH) <= 23 &&
    Number(offM) <= 59
  );
}

/** ISO 8601 date-time (with a zone) to ms, or a ValidationError naming the parameter. */
export function parseTime(value: string, path: string): number {
  const m = typeof value === 'string' ? ISO_8601.exec(value) : null;
  const ms = m && realDateTime(m) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new ValidationError(
      'type',
      path,
      'an ISO 8601 date-time with a zone (2026-12-05T07:00:00Z)',
      describeUntrusted(value),
    );
  }
  return ms;
}

interface Cursor {
  readonly at: number;
  readonly order: ReceiptOrder;
  readonly filters: string;
}

const CURSOR_VERSION = 'c1';

function encodeCursor(c: Cursor): string {
  return Buffer.from(`${CURSOR_VERSION}.${c.order}.${c.at}.${c.filters}`).toString('base64url');
}

function decodeCursor(text: string): Cursor {
  const bad = () =>
    new ValidationError('type', 'cursor', 'the `next` cursor of a previous page', describeUntrusted(text));
  if (typeof text !== 'string' || text.length > 200 || !/^[A-Za-z0-9_-]+$/.test(text)) throw bad();
  const [version, order, at, filters, extra] = Buffer.from(text, 'base64url').toString('latin1').split('.');
  const position = Number(at);
  if (
    version !== CURSOR_VERSION ||
    !RECEIPT_ORDERS.includes(order as ReceiptOrder) ||
    !/^\d{1,15}$/.test(at ?? '') ||
    !Number.isSafeInteger(position) ||
    !/^[0-9a-f]{16}$/.test(filters ?? '') ||
    extra !== undefined
  ) {
    throw bad();
  }
  return { at: position, order: order as ReceiptOrder, filters: filters! };
}

/** The filters a cursor belongs to, as a short digest (order included: a cursor runs one way). */
function filtersDigest(q: ReceiptQuery, order: ReceiptOrder): string {
  const key = JSON.stringify([q.build, q.actor, q.status, q.backend, q.since, q.until, order]);
  return sha256Hex(key).slice(0, 16);
}

/** Rows of the checkpoint's columns read at a time (1.3 MB of columns). */
const CHUNK_ROWS = 65536;

/** Rows [lo, hi) of the columns, as views indexed from lo. */
interface Chunk extends ColumnRows {
  readonly lo: number;
  readonly hi: number;
}

export class ReceiptIndex {
  readonly #log: ReceiptLog;
  #position: LogPosition = ReceiptLog.START;
  /** Rows below #base are the checkpoint's, read by chunks as queries reach them. */
  #base = 0;
  readonly #chunks = new Map<number, Chunk>();
  /** Rows from #base on, built from the bodies of the records after the checkpoint. */
  #cols = new ColumnBuilder();
  #started = false;

  constructor(log: ReceiptLog) {
    this.#log = log;
  }

  /** Receipts indexed so far (after `catchUp`, every receipt in the log). */
  get size(): number {
    return this.#base + this.#cols.count;
  }

  /** Bytes the index holds: its columns (allocated capacity, chunks read) and interned strings. */
  get bytes(): number {
    const c = this.#cols;
    const rows = c.capacity + this.#chunks.size * CHUNK_ROWS;
    return rows * (8 + 2 + 2 + 4 + 4) + c.statuses.bytes + c.backends.bytes + c.builds.bytes + c.actors.bytes;
  }

  /**
   * Take in every receipt appended since the last call (the writer's, or another process's). The
   * first call starts from the log's checkpoint when it has one: its string tables now, its rows
   * by chunks of 65536 when a query reaches them; only the records after it are read.
   */
  catchUp(): void {
    this.#log.refresh();
    if (!this.#started) {
      this.#started = true;
      const ck = this.#log.checkpointStrings();
      if (ck && ck.count > 0) {
        this.#base = ck.count;
        this.#cols = new ColumnBuilder(ck.strings);
        this.#position = this.#log.positionAt(ck.count);
      }
    }
    if (this.#position.ordinal >= this.#log.size) return;
    this.#position = this.#log.scanBodies(this.#position, (_id, body) => this.#cols.add(body));
  }

  /** Back to nothing indexed and no checkpoint (it was dropped as damaged): rebuilt from the log. */
  #reset(): void {
    this.#position = ReceiptLog.START;
    this.#base = 0;
    this.#chunks.clear();
    this.#cols = new ColumnBuilder();
    this.#started = true;
  }

  /** The rows around `at`: a checkpoint chunk, or the rows built from bodies. */
  #chunk(at: number): Chunk | undefined {
    if (at >= this.#base) {
      const c = this.#cols;
      const n = c.count;
      const base = this.#base;
      return {
        lo: base,
        hi: base + n,
        startedMs: c.startedMs.subarray(0, n),
        status: c.status.subarray(0, n),
        backend: c.backend.subarray(0, n),
        build: c.build.subarray(0, n),
        actor: c.actor.subarray(0, n),
      };
    }
    const k = Math.floor(at / CHUNK_ROWS);
    let chunk = this.#chunks.get(k);
    if (!chunk) {
      const lo = k * CHUNK_ROWS;
      const hi = Math.min(this.#base, lo + CHUNK_ROWS);
      const rows = this.#log.checkpointRows(lo, hi);
      if (!rows) return undefined;
      chunk = { lo, hi, ...rows };
      this.#chunks.set(k, chunk);
    }
    return chunk;
  }

  /** Ordinals of one page of matches and where the next starts; undefined when rows are gone. */
  #match(
    q: ReceiptQuery,
    order: ReceiptOrder,
    limit: number,
    since: number,
    until: number,
    timed: boolean,
    cursorAt: number | undefined,
  ): { matches: number[]; next: number | null } | undefined {
    const cols = this.#cols;
    // A name never indexed matches nothing; -1 is no interned id.
    const build = q.build === undefined ? 0 : cols.builds.find(q.build);
    const actor = q.actor === undefined ? 0 : cols.actors.find(q.actor);
    const status = q.status === undefined ? 0 : cols.statuses.find(q.status);
    const backend = q.backend === undefined ? 0 : cols.backends.find(q.backend);
    const n = this.size;
    const step = order === 'newest' ? -1 : 1;
    let at = cursorAt !== undefined ? cursorAt : order === 'newest' ? n - 1 : 0;
    if (cursorAt !== undefined && cursorAt >= n) at = order === 'newest' ? n - 1 : n; // past the end: nothing new
    const matches: number[] = [];
    let next: number | null = null;
    if (build < 0 || actor < 0 || status < 0 || backend < 0) return { matches, next };
    while (at >= 0 && at < n && next === null) {
      const c = this.#chunk(at);
      if (!c) return undefined;
      const {
        lo,
        hi,
        startedMs,
        status: statusCol,
        backend: backendCol,
        build: buildCol,
        actor: actorCol,
      } = c;
      for (; at >= lo && at < hi; at += step) {
        const i = at - lo;
        if (build !== 0 && buildCol[i] !== build) continue;
        if (actor !== 0 && actorCol[i] !== actor) continue;
        if (status !== 0 && statusCol[i] !== status) continue;
        if (backend !== 0 && backendCol[i] !== backend) continue;
        if (timed) {
          const t = startedMs[i]!;
          if (!(t >= since && t < until)) continue; // NaN (an unreadable time) never matches a range
        }
        // One match past the page: the next page starts there, and null means there is none.
        if (matches.length === limit) {
          next = at;
          break;
        }
        matches.push(at);
      }
    }
    return { matches, next };
  }

  /**
   * One page of the receipts that match `q`, with the cursor of the next. Bad parameters (a
   * limit out of range, a time that is not ISO 8601, a cursor of another query) are
   * ValidationErrors naming the parameter.
   */
  query(q: ReceiptQuery = {}): ReceiptPage {
    const order = q.order ?? 'newest';
    if (!RECEIPT_ORDERS.includes(order)) {
      throw new ValidationError('type', 'order', RECEIPT_ORDERS.join(' | '), describeUntrusted(order));
    }
    const limit = q.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new ValidationError(
        'range',
        'limit',
        `an integer in [1, ${MAX_LIST_LIMIT}]`,
        describeUntrusted(limit),
      );
    }
    const timed = q.since !== undefined || q.until !== undefined;
    const since = q.since === undefined ? Number.NEGATIVE_INFINITY : parseTime(q.since, 'since');
    const until = q.until === undefined ? Number.POSITIVE_INFINITY : parseTime(q.until, 'until');
    const filters = filtersDigest(q, order);
    const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    if (cursor && (cursor.order !== order || cursor.filters !== filters)) {
      throw new ValidationError(
        'type',
        'cursor',
        'the `next` cursor of a previous page of this same query (same filters and order)',
        'a cursor of another query',
      );
    }

    this.catchUp();
    let found = this.#match(q, order, limit, since, until, timed, cursor?.at);
    if (found === undefined) {
      // The checkpoint was dropped (a damaged block): index from the log itself and ask again.
      this.#reset();
      this.catchUp();
      found = this.#match(q, order, limit, since, until, timed, cursor?.at)!;
    }
    const { matches, next } = found;
    return {
      receipts: matches.map((i) => this.#log.getAt(i)),
      next: next === null ? null : encodeCursor({ at: next, order, filters }),
    };
  }
}
