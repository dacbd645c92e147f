/**
 * Receipts: get one, list and filter, verify by replay (issue #11).
 *
 *   GET  /v1/receipts/:id          → 200 the receipt; 404 naming the id; 400 unless 64 hex digits
 *   GET  /v1/receipts?build=&actor=&status=&backend=&since=&until=&limit=&cursor=&order=
 *                                  → 200 { receipts: [...], next: cursor | null }
 *   POST /v1/receipts/:id/verify   → 200 the VerifyReport (match, problem, mismatches, replay)
 *   GET  /v1/receipts/:id/proof    → 200 receipt + inclusion proof + signed tree head (src/store/merkle/proof.ts)
 *   GET  /v1/tree-heads/consistency?from=OLD&to=NEW → 200 consistency proof between two recorded heads
 *                                  (`to` defaults to the latest); 409 naming the head that is missing
 *
 * Listing is the store's receipt index (src/store/receipt-index.ts, built as the daemon starts
 * and extended by each query with what was appended since): newest first by default,
 * `limit` 1..1000 (default 100), `since` inclusive and `until` exclusive on `startedAt` (ISO
 * 8601 with a zone), `next` an opaque cursor for the next page of the same query. Every
 * parameter is checked by the querystring's schema, so a bad value (or an unknown or repeated
 * parameter) is a 400 naming it before the index is touched.
 *
 * Who may read: `receipt.read` is scoped (policy.ts). Admins and auditors read every receipt;
 * a runner or operator reads the receipts sealed with its own actor id: a list without `actor`
 * is narrowed to them, an `actor` naming someone else is a 403, and a single receipt is
 * authorized with its sealed actor as the owner (so an unknown id and someone else's receipt
 * both answer a runner 403: existence is not disclosed). `receipt.verify` replays the execution
 * in the daemon; replays run at most `limits.maxInFlight` at a time (503 beyond).
 */

import { performance } from 'node:perf_hooks';
import { NotFoundError, ThunderpacError, ValidationError } from '../../runtime/errors.js';
import type { Receipt } from '../../runtime/receipt.js';
import { BACKEND_NAMES } from '../../runtime/sandbox.js';
import { MAX_LIST_LIMIT, RECEIPT_ORDERS, type ReceiptQuery } from '../../store/receipt-index.js';
import type { Store } from '../../store/store.js';
import type { Actor, DaemonContext, RoutePlugin } from '../context.js';
import { OverloadedError } from '../executions.js';
import { ProofError } from '../../store/merkle/errors.js';

const RECEIPT_ID = '^[0-9a-f]{64}$';
/** ISO 8601 date-time with a zone, as receipts write `startedAt` (seconds and fraction optional). */
const ISO_TIME = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2})$';

const idParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', pattern: RECEIPT_ID } },
} as const;

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    build: { type: 'string', pattern: RECEIPT_ID },
    actor: { type: 'string', minLength: 1, maxLength: 256 },
    status: { type: 'string', enum: ['completed', 'failed'] },
    backend: { type: 'string', enum: BACKEND_NAMES },
    since: { type: 'string', maxLength: 40, pattern: ISO_TIME },
    until: { type: 'string', maxLength: 40, pattern: ISO_TIME },
    limit: { type: 'integer', minimum: 1, maximum: MAX_LIST_LIMIT },
    cursor: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' },
    order: { type: 'string', enum: RECEIPT_ORDERS },
  },
} as const;

interface ListQuerystring {
  build?: string;
  actor?: string;
  status?: string;
  backend?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
  order?: (typeof RECEIPT_ORDERS)[number];
}

/** Roles that read every receipt; the others read their own (policy.ts UNSCOPED_ROLES). */
const READS_ALL_RECEIPTS = new Set(['admin', 'auditor']);

function storeOf(ctx: DaemonContext): Store {
  const store = ctx.tp.store;
  if (!store) throw new ThunderpacError('NO_STORE', 'this daemon keeps no receipts (no store)');
  return store;
}

/** A receipt by id; NotFoundError (404) names it. */
function receiptById(store: Store, id: string): Receipt | undefined {
  try {
    return store.getReceipt(id);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/**
 * The receipt with `id`, if `action` on it is allowed. For an id the store does not know, the
 * action is authorized without a resource first: whoever could not read an arbitrary receipt
 * learns nothing about which ids exist (a 403 either way).
 */
function authorizedReceipt(
  ctx: DaemonContext,
  req: Parameters<DaemonContext['auth']['authorize']>[0],
  action: 'receipt.read' | 'receipt.verify',
  id: string,
): Receipt {
  const receipt = receiptById(storeOf(ctx), id);
  if (receipt === undefined) {
    ctx.auth.authorize(req, action);
    throw new NotFoundError('receipt', id);
  }
  ctx.auth.authorize(req, action, {
    buildId: receipt.buildId,
    ...(receipt.actor === undefined ? {} : { owner: receipt.actor }),
  });
  return receipt;
}

/** The query as the index takes it, with `querystring.` on the path of any error it finds. */
function listPage(store: Store, q: ReceiptQuery) {
  try {
    return store.listReceipts(q);
  } catch (err) {
    if (err instanceof ValidationError) {
      throw new ValidationError(err.kind, `querystring.${err.path}`, err.expected, err.found);
    }
    throw err;
  }
}

export const receiptsRoutes: RoutePlugin = (app, ctx) => {
  // Index the log now, before the daemon listens: built lazily, the first list would stall the
  // event loop for the whole pass (about 0.3–0.5 s of CPU per 100k receipts). Later appends are
  // taken in by each query.
  const store = ctx.tp.store;
  if (store) {
    const started = performance.now();
    store.receiptIndex.catchUp();
    ctx.log.info(
      { receipts: store.receiptIndex.size, ms: Math.round(performance.now() - started) },
      'receipt index built',
    );
  }

  app.get<{ Params: { id: string } }>('/v1/receipts/:id', { schema: { params: idParams } }, async (req) =>
    authorizedReceipt(ctx, req, 'receipt.read', req.params.id),
  );

  app.get<{ Querystring: ListQuerystring }>(
    '/v1/receipts',
    { schema: { querystring: listQuery } },
    async (req) => {
      const q = req.query;
      const identity: Actor | null = ctx.auth.identify(req);
      // Authorized on the receipts asked for: all of one actor's, or, without `actor`, the
      // caller's own unless its roles read every receipt.
      const readsAll = identity?.roles.some((r) => READS_ALL_RECEIPTS.has(r)) ?? false;
      const owner = q.actor ?? (readsAll ? undefined : identity?.id);
      ctx.auth.authorize(req, 'receipt.read', owner === undefined ? undefined : { owner });
      const query: ReceiptQuery = {
        ...q,
        ...(owner === undefined ? {} : { actor: owner }),
      };
      return listPage(storeOf(ctx), query);
    },
  );

  /** A proof the ledger cannot give yet (no head covers it, no head of that size): 409. */
  const proving = <T>(make: () => T): T => {
    try {
      return make();
    } catch (err) {
      if (err instanceof ProofError) Object.assign(err, { statusCode: 409 });
      throw err;
    }
  };

  app.get<{ Params: { id: string } }>(
    '/v1/receipts/:id/proof',
    { schema: { params: idParams } },
    async (req) => {
      const receipt = authorizedReceipt(ctx, req, 'receipt.read', req.params.id);
      return proving(() => storeOf(ctx).ledger.prove(receipt.id, receipt));
    },
  );

  app.get<{ Querystring: { from: number; to?: number } }>(
    '/v1/tree-heads/consistency',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['from'],
          properties: {
            from: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
            to: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
          },
        },
      },
    },
    async (req) => {
      // Tree heads and hashes disclose no receipt: anyone who may read receipts may check them.
      ctx.auth.authorize(req, 'receipt.read', { owner: ctx.auth.identify(req)?.id ?? '' });
      return proving(() => storeOf(ctx).ledger.proveConsistency(req.query.from, req.query.to));
    },
  );

  let verifying = 0;
  app.post<{ Params: { id: string } }>(
    '/v1/receipts/:id/verify',
    { schema: { params: idParams } },
    async (req) => {
      const receipt = authorizedReceipt(ctx, req, 'receipt.verify', req.params.id);
      if (ctx.shutdown.aborted) throw new OverloadedError('the daemon is shutting down', 1);
      const max = Math.max(1, ctx.config.limits.maxInFlight);
      if (verifying >= max) {
        throw new OverloadedError(`${verifying} verifications replaying (limits.maxInFlight)`, 1);
      }
      verifying++;
      try {
        return await ctx.tp.verify(receipt.id);
      } finally {
        verifying--;
      }
    },
  );
};
