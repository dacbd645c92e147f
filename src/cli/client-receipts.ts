/**
 * `receipt show|list|verify` in client mode: `GET /v1/receipts/:id`, `GET /v1/receipts?…`,
 * `POST /v1/receipts/:id/verify`, printed as the in-process commands print them (the verify
 * report's printer is shared with them).
 */

import type { VerifyReport } from '../runtime/executor.js';
import type { Receipt } from '../runtime/receipt.js';
import { type DaemonClient, segment } from './client.js';
import { UsageError } from './io.js';
import { type ReceiptListFlags, type ReceiptListRequest, receiptListRequest } from './receipt-list.js';

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

/** Largest page the route serves. */
const PAGE = 1000;

/**
 * `receipt list` through the daemon: the same request as in-process (receipt-list.ts), its
 * pages followed to the end (or to --limit), printed as ids one a line or, with --json, the
 * receipts as one JSON array in the in-process layout.
 */
async function listThroughDaemon(
  client: DaemonClient,
  request: ReceiptListRequest,
  json: boolean,
): Promise<void> {
  let printed = 0;
  let cursor: string | undefined;
  if (json) process.stdout.write('[');
  for (;;) {
    const page = request.limit === undefined ? PAGE : Math.min(PAGE, request.limit - printed);
    const { body } = await client.request<{ receipts: Receipt[]; next: string | null }>(
      'GET',
      '/v1/receipts',
      {
        query: { ...request.filters, order: request.order, limit: page, cursor },
      },
    );
    let out = '';
    for (const r of body.receipts) {
      out += json ? `${printed === 0 && out === '' ? '\n' : ',\n'}${JSON.stringify(r)}` : `${r.id}\n`;
    }
    process.stdout.write(out);
    printed += body.receipts.length;
    if (!body.next || (request.limit !== undefined && printed >= request.limit)) break;
    cursor = body.next;
  }
  if (json) process.stdout.write(printed === 0 ? ']\n' : '\n]\n');
}

export async function receiptThroughDaemon(
  client: DaemonClient,
  action: string | undefined,
  id: string | undefined,
  json: boolean,
  listFlags: ReceiptListFlags = {},
): Promise<number> {
  switch (action) {
    case 'list':
      await listThroughDaemon(client, receiptListRequest(listFlags), json);
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
