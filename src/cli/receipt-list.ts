/**
 * `thunderpac receipt list [--build ID] [--actor A] [--status S] [--backend B] [--since ISO]
 * [--until ISO] [--limit N] [--order oldest|newest] [--json]`, in process (a read-only store:
 * works beside a daemon, and sees what the daemon appended up to the moment it lists).
 *
 * Without flags it prints every receipt id, one a line, in log order, as it always has. The
 * filters are the store's receipt index (src/store/receipt-index.ts): exact build id, actor,
 * status and backend; `--since` inclusive and `--until` exclusive on the receipt's start time;
 * oldest first unless `--order newest`; `--limit N` stops after N receipts (all by default,
 * read a page of 1000 at a time). `--json` prints the receipts themselves as one JSON array.
 * A bad value is a typed error naming the flag (exit 2).
 *
 * The flags and the query they make are shared with the client mode (client-receipts.ts), so
 * `receipt list` means the same in process and through the daemon.
 */

import { ValidationError } from '../runtime/errors.js';
import type { Receipt } from '../runtime/receipt.js';
import { BACKEND_NAMES } from '../runtime/sandbox.js';
import { MAX_LIST_LIMIT, type ReceiptOrder, type ReceiptQuery } from '../store/receipt-index.js';
import type { Store } from '../store/store.js';
import { parseIntFlag, UsageError } from './io.js';

/** parseArgs options of `receipt list`'s filters. */
export const RECEIPT_LIST_FLAGS = {
  build: { type: 'string' },
  actor: { type: 'string' },
  status: { type: 'string' },
  backend: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
  order: { type: 'string' },
} as const;

export interface ReceiptListFlags {
  readonly build?: string | undefined;
  readonly actor?: string | undefined;
  readonly status?: string | undefined;
  readonly backend?: string | undefined;
  readonly since?: string | undefined;
  readonly until?: string | undefined;
  readonly limit?: string | undefined;
  readonly order?: string | undefined;
}

/** What `receipt list` was asked for: the filters, the order, and at most how many (undefined: all). */
export interface ReceiptListRequest {
  readonly filters: Omit<ReceiptQuery, 'limit' | 'cursor' | 'order'>;
  readonly order: ReceiptOrder;
  readonly limit: number | undefined;
}

/** The flags as a listing request; a malformed --limit or --order is a UsageError (exit 2). */
export function receiptListRequest(flags: ReceiptListFlags): ReceiptListRequest {
  const limit = parseIntFlag('limit', flags.limit);
  if (limit !== undefined && limit < 1) throw new UsageError('--limit must be at least 1');
  const order = flags.order ?? 'oldest';
  if (order !== 'oldest' && order !== 'newest') {
    throw new UsageError(`--order must be oldest or newest, not '${order}'`);
  }
  // Values the index would merely match nothing with: a typo must not read as "no receipts".
  if (flags.build !== undefined && !/^[0-9a-f]{64}$/.test(flags.build)) {
    throw new UsageError(`--build expects a build id (64 hex digits), got '${flags.build}'`);
  }
  if (flags.status !== undefined && flags.status !== 'completed' && flags.status !== 'failed') {
    throw new UsageError(`--status must be completed or failed, not '${flags.status}'`);
  }
  if (flags.backend !== undefined && !(BACKEND_NAMES as readonly string[]).includes(flags.backend)) {
    throw new UsageError(`--backend must be one of ${BACKEND_NAMES.join(', ')}, not '${flags.backend}'`);
  }
  const filters: Record<string, string> = {};
  for (const key of ['build', 'actor', 'status', 'backend', 'since', 'until'] as const) {
    const value = flags[key];
    if (value !== undefined) filters[key] = value;
  }
  return { filters, order, limit };
}

/** Every receipt the request matches, a page at a time, to `visit`. */
function eachReceipt(store: Store, request: ReceiptListRequest, visit: (r: Receipt) => void): void {
  let cursor: string | undefined;
  let left = request.limit ?? Number.POSITIVE_INFINITY;
  while (left > 0) {
    let page: ReturnType<Store['listReceipts']>;
    try {
      page = store.listReceipts({
        ...request.filters,
        order: request.order,
        limit: Math.min(MAX_LIST_LIMIT, left),
        ...(cursor === undefined ? {} : { cursor }),
      });
    } catch (err) {
      // The index names the query's field; the user typed a flag.
      if (err instanceof ValidationError)
        throw new UsageError(`--${err.path}: expected ${err.expected}, got ${err.found}`);
      throw err;
    }
    for (const r of page.receipts) visit(r);
    left -= page.receipts.length;
    if (page.next === null) return;
    cursor = page.next;
  }
}

/** `receipt list` in process: ids one a line, or the receipts as a JSON array with `json`. */
export function listReceiptsCommand(store: Store, flags: ReceiptListFlags, json: boolean): number {
  const request = receiptListRequest(flags);
  const unfiltered = Object.keys(request.filters).length === 0 && request.order === 'oldest';
  if (!json && unfiltered && request.limit === undefined) {
    // Today's output, without building the index: every id in log order.
    // Read from the log's checkpoint a block at a time: no array of every id.
    let out = '';
    store.receipts.eachId((id) => {
      out += `${id}\n`;
      if (out.length > 64 * 1024) {
        process.stdout.write(out);
        out = '';
      }
    });
    process.stdout.write(out);
    return 0;
  }
  if (json) {
    let first = true;
    process.stdout.write('[');
    eachReceipt(store, request, (r) => {
      process.stdout.write(`${first ? '\n' : ',\n'}${JSON.stringify(r)}`);
      first = false;
    });
    process.stdout.write(first ? ']\n' : '\n]\n');
    return 0;
  }
  let out = '';
  eachReceipt(store, request, (r) => {
    out += `${r.id}\n`;
  });
  process.stdout.write(out);
  return 0;
}
