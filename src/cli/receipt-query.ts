/**
 * `thunderpac receipt query --produced-by HASH | --derived-from HASH | --build ID | --actor A |
 * --status S | --since T --until T [--limit N] [--json] [--store DIR]`, in process on a
 * read-only store (works beside a daemon).
 *
 *   --produced-by HASH   the receipts whose output is the payload HASH, then their ancestry
 *                        (lineage index: store/provenance/)
 *   --derived-from HASH  everything downstream of an artifact (payload hash, fs tree digest) or
 *                        a receipt id, breadth first, with the depth and the edge it came by
 *   --build / --actor / --status / --backend / --since / --until: the receipt index's query
 *                        (store.listReceipts), as `receipt list`
 *
 * Lineage flags cannot be mixed with the index filters (a UsageError says so). Text output is
 * one receipt id a line (lineage: `depth via id`); `--json` prints one document.
 */

import { ValidationError } from '../runtime/errors.js';
import type { Store } from '../store/store.js';
import { parseIntFlag, UsageError } from './io.js';
import { listReceiptsCommand, type ReceiptListFlags } from './receipt-list.js';

export const RECEIPT_QUERY_FLAGS = {
  'produced-by': { type: 'string' },
  'derived-from': { type: 'string' },
} as const;

export interface ReceiptQueryFlags extends ReceiptListFlags {
  readonly 'produced-by'?: string | undefined;
  readonly 'derived-from'?: string | undefined;
}

const HEX = /^[0-9a-f]{64}$/;

function write(json: unknown): void {
  process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
}

export function receiptQueryCommand(store: Store, flags: ReceiptQueryFlags, json: boolean): number {
  const produced = flags['produced-by'];
  const derived = flags['derived-from'];
  const indexed = (['build', 'actor', 'status', 'backend', 'since', 'until'] as const).filter(
    (k) => flags[k] !== undefined,
  );
  if (produced !== undefined && derived !== undefined)
    throw new UsageError('--produced-by and --derived-from are two queries: give one');
  if ((produced !== undefined || derived !== undefined) && indexed.length > 0)
    throw new UsageError(
      `--${produced !== undefined ? 'produced-by' : 'derived-from'} cannot be combined with --${indexed[0]}`,
    );
  for (const [flag, v] of [
    ['produced-by', produced],
    ['derived-from', derived],
  ] as const) {
    if (v !== undefined && !HEX.test(v))
      throw new UsageError(`--${flag} expects a sha256 digest (64 hex digits), got '${v}'`);
  }
  const limit = parseIntFlag('limit', flags.limit);
  if (produced !== undefined) {
    const r = store.provenance.producedBy(produced, limit ?? undefined);
    if (json) write(r);
    else {
      for (const id of r.producers) process.stdout.write(`produced ${id}\n`);
      for (const id of r.ancestors) process.stdout.write(`ancestor ${id}\n`);
    }
    return 0;
  }
  if (derived !== undefined) {
    let page: ReturnType<Store['provenance']['derivedFrom']>;
    try {
      page = store.provenance.derivedFrom(derived, limit ?? undefined);
    } catch (err) {
      if (err instanceof ValidationError && err.path === 'limit')
        throw new UsageError(`--limit: ${err.message}`);
      throw err;
    }
    if (json) write(page);
    else {
      for (const d of page.receipts) process.stdout.write(`${d.depth} ${d.via.kind} ${d.receipt}\n`);
      if (page.truncated) process.stdout.write(`(stopped at --limit ${page.receipts.length})\n`);
    }
    return 0;
  }
  if (indexed.length === 0)
    throw new UsageError(
      'receipt query needs one of --produced-by, --derived-from, --build, --actor, --status, --backend, --since, --until',
    );
  return listReceiptsCommand(store, flags, json);
}
