/**
 * `receipt show|list|verify` in client mode: `GET /v1/receipts/:id`, `GET /v1/receipts?…`,
 * `POST /v1/receipts/:id/verify`, printed as the in-process commands print them (the verify
 * report's printer is shared with them).
 */

import type { VerifyReport } from '../runtime/executor.js';
import type { Receipt } from '../runtime/receipt.js';
import { type DaemonClient, segment } from './client.js';
import { UsageError } from './io.js';

/** A receipt by id (the route answers the receipt itself, or `{receipt}`). */
export async function fetchReceipt(client: DaemonClient, id: string): Promise<Receipt> {
  const { body } = await client.request<Receipt | { receipt: Receipt }>('GET', `/v1/receipts/${segment(id)}`);
  return unwrap(body, 'receipt') as Receipt;
}

/** A body that is either the thing itself or `{ [key]: thing }`. */
export function unwrap(body: unknown, key: string): unknown {
  if (typeof body === 'object' && body !== null && key in body) {
    const inner = (body as Record<string, unknown>)[key];
    if (typeof inner === 'object' && inner !== null) return inner;
  }
  return body;
}

/** `receipt verify`'s output, in-process and through the daemon; exit 0 on a match, else 1. */
export function printVerifyReport(report: VerifyReport, id: string, json: boolean): number {
  if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else if (report.match) process.stdout.write(`match: receipt ${id} replays to the same result\n`);
  else if (report.problem) process.stdout.write(`mismatch: ${report.problem}\n`);
  else {
    process.stdout.write(`mismatch: receipt ${id} does not replay\n`);
    for (const m of report.mismatches) {
      process.stdout.write(
        `  ${m.field}: expected ${JSON.stringify(m.expected)}, got ${JSON.stringify(m.actual)}\n`,
      );
    }
  }
  return report.match ? 0 : 1;
}

/** The receipt list's query: the filters `receipt list` takes, as the route's parameters. */
export type ReceiptListQuery = Readonly<Record<string, string | number | undefined>>;

/** Largest page the route serves. */
const PAGE = 1000;

/**
 * Every receipt id matching `query`, oldest first unless the query orders otherwise, one per
 * line; pages are followed to the end (or to `limit` ids when the query has one).
 */
async function listIds(client: DaemonClient, query: ReceiptListQuery): Promise<void> {
  const limit = typeof query.limit === 'number' ? query.limit : undefined;
  let printed = 0;
  let cursor: string | undefined;
  for (;;) {
    const page = limit === undefined ? PAGE : Math.min(PAGE, limit - printed);
    const { body } = await client.request<{ receipts: Receipt[]; next: string | null }>(
      'GET',
      '/v1/receipts',
      {
        query: { order: 'oldest', ...query, limit: page, cursor },
      },
    );
    let out = '';
    for (const r of body.receipts) out += `${r.id}\n`;
    process.stdout.write(out);
    printed += body.receipts.length;
    if (!body.next || (limit !== undefined && printed >= limit)) return;
    cursor = body.next;
  }
}

export async function receiptThroughDaemon(
  client: DaemonClient,
  action: string | undefined,
  id: string | undefined,
  json: boolean,
  query: ReceiptListQuery = {},
): Promise<number> {
  switch (action) {
    case 'list':
      await listIds(client, query);
      return 0;
    case 'show':
      if (!id) throw new UsageError('receipt show needs a receipt id');
      process.stdout.write(`${JSON.stringify(await fetchReceipt(client, id), null, 2)}\n`);
      return 0;
    case 'verify': {
      if (!id) throw new UsageError('receipt verify needs a receipt id');
      const { body } = await client.request<VerifyReport>('POST', `/v1/receipts/${segment(id)}/verify`);
      return printVerifyReport(body, id, json);
    }
    default:
      throw new UsageError(`unknown receipt action '${action ?? ''}' (verify, show, list)`);
  }
}
