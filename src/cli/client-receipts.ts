/**
 * `receipt show|list|verify` in client mode: `GET /v1/receipts/:id`, `GET /v1/receipts?…`,
 * `POST /v1/receipts/:id/verify`, printed as the in-process commands print them.
 */

import type { Receipt } from '../runtime/receipt.js';
import { type DaemonClient, segment } from './client.js';

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
