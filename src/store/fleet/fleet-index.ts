/**
 * Queries over the fleet index (schema.ts): the questions the local indexes answer for one store
 * — the receipt index's list (receipt-index.ts: build / actor / status / backend / time range,
 * paged) and provenance's produced-by / derived-from / lineage (provenance/) — answered across
 * every host that mirrors into the same PostgreSQL database. Same parameters, same validation
 * (ValidationErrors naming the parameter), same result shapes, asynchronous.
 *
 * Order across hosts is the fleet's arrival order (`seq`: when a receipt was mirrored), which
 * within one host is that host's log order; 'newest' is the last mirrored first. Cursors are
 * keyset positions in that order, tied to the query's filters like the local index's, so pages
 * are stable while hosts keep mirroring.
 *
 * Every receipt returned is re-hashed: its stored body must hash to its id (FleetIntegrityError
 * otherwise, naming the row's host and log ordinal). Lineage follows `parents` (a DAG step names
 * the steps it consumed), across hosts: a parent mirrored from another host is found like any.
 * A parent not (yet) in the index — its host has not mirrored it — is listed as missing.
 */

import { decodeCanonical, sha256Hex } from '../../runtime/canonical.js';
import { ValidationError } from '../../runtime/errors.js';
import type { Receipt } from '../../runtime/receipt.js';
import { describeUntrusted } from '../../runtime/untrusted.js';
import {
  DEFAULT_LIST_LIMIT,
  MAX_LIST_LIMIT,
  parseTime,
  RECEIPT_ORDERS,
  type ReceiptOrder,
  type ReceiptPage,
  type ReceiptQuery,
} from '../receipt-index.js';
import type { Sql } from 'postgres';
import type { FleetDb } from './connection.js';
import { FleetIntegrityError } from './errors.js';

const HEX = /^[0-9a-f]{64}$/;
export const DEFAULT_DERIVED_LIMIT = 1000;
export const MAX_DERIVED_LIMIT = 100_000;

export interface FleetQuery extends ReceiptQuery {
  /** Only receipts mirrored from this host (exact). */
  readonly host?: string;
}

/** Where a receipt was mirrored from: its blocks (payloads, build) are in that host's store. */
export interface FleetLocation {
  readonly receipt: Receipt;
  readonly host: string;
  readonly ordinal: number;
}

export interface FleetDerived {
  readonly receipt: string;
  readonly depth: number;
  readonly via: { readonly kind: 'consumed' | 'child'; readonly from: string };
}

export interface FleetDerivedPage {
  readonly from: string;
  readonly receipts: readonly FleetDerived[];
  readonly truncated: boolean;
}

export interface FleetProducedBy {
  readonly hash: string;
  readonly producers: readonly string[];
  readonly ancestors: readonly string[];
}

export interface FleetLineage {
  readonly receipt: string;
  /** The receipt and its ancestors found in the index (through `parents`), nearest first. */
  readonly receipts: readonly FleetLocation[];
  /** Every parent edge among them: `child` names `parent`. */
  readonly edges: readonly { readonly child: string; readonly parent: string }[];
  /** Parents named but not in the index (not mirrored yet, or never; or past the walk's cut at `limit`). */
  readonly missing: readonly string[];
}

export interface FleetHost {
  readonly host: string;
  readonly confirmed: number;
  readonly lastId: string | null;
  readonly updatedAt: string;
}

interface Row {
  seq: string;
  id: string;
  host: string;
  ordinal: string;
  body: Uint8Array;
}

const CURSOR_VERSION = 'f1';

function filtersDigest(q: FleetQuery, order: ReceiptOrder): string {
  const key = JSON.stringify([q.build, q.actor, q.status, q.backend, q.since, q.until, q.host, order]);
  return sha256Hex(key).slice(0, 16);
}

function encodeCursor(seq: number, order: ReceiptOrder, filters: string): string {
  return Buffer.from(`${CURSOR_VERSION}.${order}.${seq}.${filters}`).toString('base64url');
}

function decodeCursor(text: unknown): { seq: number; order: string; filters: string } {
  const bad = () =>
    new ValidationError('type', 'cursor', 'the `next` cursor of a previous page', describeUntrusted(text));
  if (typeof text !== 'string' || text.length > 200 || !/^[A-Za-z0-9_-]+$/.test(text)) throw bad();
  const [version, order, seq, filters, extra] = Buffer.from(text, 'base64url').toString('latin1').split('.');
  if (
    version !== CURSOR_VERSION ||
    !/^\d{1,15}$/.test(seq ?? '') ||
    !/^[0-9a-f]{16}$/.test(filters ?? '') ||
    extra !== undefined
  ) {
    throw bad();
  }
  return { seq: Number(seq), order: order ?? '', filters: filters! };
}

function checkHash(value: unknown, path: string): string {
  if (typeof value !== 'string' || !HEX.test(value)) {
    throw new ValidationError(
      'type',
      path,
      'a sha256 hex digest (64 lowercase hex digits)',
      describeUntrusted(value),
    );
  }
  return value;
}

function checkLimit(limit: unknown, max: number): number {
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > max) {
    throw new ValidationError('range', 'limit', `an integer in [1, ${max}]`, describeUntrusted(limit));
  }
  return limit;
}

/** The receipt a row holds, re-hashed against its id. */
function receiptOf(row: Row): Receipt {
  const body = row.body;
  const actual = sha256Hex(body);
  if (actual !== row.id) throw new FleetIntegrityError(row.id, row.host, Number(row.ordinal), actual);
  return { id: row.id, ...decodeCanonical<Omit<Receipt, 'id'>>(body) };
}

export class FleetIndex {
  readonly #db: FleetDb;

  constructor(db: FleetDb) {
    this.#db = db;
  }

  /** One page of receipts across the fleet; the parameters of `Store.listReceipts`, plus `host`. */
  async query(q: FleetQuery = {}): Promise<ReceiptPage> {
    const order = q.order ?? 'newest';
    if (!RECEIPT_ORDERS.includes(order)) {
      throw new ValidationError('type', 'order', RECEIPT_ORDERS.join(' | '), describeUntrusted(order));
    }
    const limit = checkLimit(q.limit ?? DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT);
    const since = q.since === undefined ? undefined : parseTime(q.since, 'since');
    const until = q.until === undefined ? undefined : parseTime(q.until, 'until');
    for (const key of ['build', 'actor', 'status', 'backend', 'host'] as const) {
      const v = q[key];
      if (v !== undefined && typeof v !== 'string') {
        throw new ValidationError('type', key, 'a string', describeUntrusted(v));
      }
    }
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
    const rows = await this.#db.run('list receipts', (sql) => {
      const conds = [sql`true`];
      if (q.build !== undefined) conds.push(sql`build_id = ${q.build}`);
      if (q.actor !== undefined) conds.push(sql`actor = ${q.actor}`);
      if (q.status !== undefined) conds.push(sql`status = ${q.status}`);
      if (q.backend !== undefined) conds.push(sql`backend = ${q.backend}`);
      if (q.host !== undefined) conds.push(sql`host = ${q.host}`);
      if (since !== undefined) conds.push(sql`started_ms >= ${since}`);
      if (until !== undefined) conds.push(sql`started_ms < ${until}`);
      if (cursor) conds.push(order === 'newest' ? sql`seq <= ${cursor.seq}` : sql`seq >= ${cursor.seq}`);
      const where = conds.reduce((a, c) => sql`${a} and ${c}`);
      return sql<Row[]>`
        select seq, id, host, ordinal, body from thunderpac_fleet_receipts where ${where}
        order by seq ${order === 'newest' ? sql`desc` : sql`asc`} limit ${limit + 1}`;
    });
    const page = rows.slice(0, limit);
    const more = rows[limit];
    return {
      receipts: page.map(receiptOf),
      next: more ? encodeCursor(Number(more.seq), order, filters) : null,
    };
  }

  /** A receipt by id, with the host it was mirrored from; undefined when not in the index. */
  async get(id: string): Promise<FleetLocation | undefined> {
    checkHash(id, 'id');
    const [row] = await this.#db.run(
      `get receipt ${id}`,
      (sql) =>
        sql<Row[]>`select seq, id, host, ordinal, body from thunderpac_fleet_receipts where id = ${id}`,
    );
    return row ? { receipt: receiptOf(row), host: row.host, ordinal: Number(row.ordinal) } : undefined;
  }

  /**
   * `start` and their ancestors through `parents`, in one round trip: a recursive walk of the
   * parent edges in the database (breadth first, each receipt once), cut after `cap` ids.
   */
  async #ancestry(start: readonly string[], cap: number): Promise<Map<string, FleetLocation>> {
    if (start.length === 0) return new Map();
    const rows = await this.#db.run(
      'walk lineage',
      (sql) => sql<Row[]>`
        with recursive a(id) as (
          select unnest(${[...start]}::text[])
          union
          select p.parent from a join thunderpac_fleet_parents p on p.child = a.id
        )
        select r.seq, r.id, r.host, r.ordinal, r.body
        from (select id from a limit ${cap}) x join thunderpac_fleet_receipts r on r.id = x.id`,
    );
    return new Map(
      rows.map((r) => [r.id, { receipt: receiptOf(r), host: r.host, ordinal: Number(r.ordinal) }]),
    );
  }

  /** Receipts whose output is the payload `hash`, in arrival order. */
  async producers(hash: string): Promise<string[]> {
    checkHash(hash, 'hash');
    const rows = await this.#db.run(
      'find producers',
      (sql) =>
        sql<
          { id: string }[]
        >`select id from thunderpac_fleet_receipts where output_hash = ${hash} order by seq`,
    );
    return rows.map((r) => r.id);
  }

  /** Receipts that consumed the payload `hash`, in arrival order. */
  async consumers(hash: string): Promise<string[]> {
    checkHash(hash, 'hash');
    const rows = await this.#db.run(
      'find consumers',
      (sql) =>
        sql<
          { id: string }[]
        >`select id from thunderpac_fleet_receipts where input_hash = ${hash} order by seq`,
    );
    return rows.map((r) => r.id);
  }

  /** Receipts that name `receiptId` as a parent. */
  async children(receiptId: string): Promise<string[]> {
    checkHash(receiptId, 'receipt');
    const rows = await this.#db.run(
      'find children',
      (sql) =>
        sql<
          { child: string }[]
        >`select child from thunderpac_fleet_parents where parent = ${receiptId} order by child`,
    );
    return rows.map((r) => r.child);
  }

  /** What produced an artifact, fleet-wide: its producers and their ancestry (parents), nearest first. */
  async producedBy(hash: string, limit = DEFAULT_DERIVED_LIMIT): Promise<FleetProducedBy> {
    checkLimit(limit, MAX_DERIVED_LIMIT);
    const producers = await this.producers(hash);
    const known = await this.#ancestry(producers, producers.length + limit + 1);
    const seen = new Set(producers);
    const ancestors: string[] = [];
    let frontier = producers;
    while (frontier.length > 0 && ancestors.length < limit) {
      const next: string[] = [];
      for (const child of frontier) {
        for (const parent of known.get(child)?.receipt.parents ?? []) {
          if (seen.has(parent) || ancestors.length >= limit) continue;
          seen.add(parent);
          ancestors.push(parent);
          next.push(parent);
        }
      }
      frontier = next;
    }
    return { hash, producers, ancestors };
  }

  /**
   * Everything derived from an artifact (payload hash) or a receipt, fleet-wide: breadth first
   * over "consumed it" and "names it as a parent", and from each receipt reached on to what
   * consumed its output. At most `limit` receipts (`truncated` says when more remain).
   */
  async derivedFrom(from: string, limit = DEFAULT_DERIVED_LIMIT): Promise<FleetDerivedPage> {
    checkHash(from, 'from');
    checkLimit(limit, MAX_DERIVED_LIMIT);
    type Consumed = { id: string; input_hash: string; output_hash: string | null };
    type Child = { child: string; parent: string; output_hash: string | null };
    const edgesOf = async (sql: Sql, nodes: readonly string[]) => ({
      consumed: await sql<Consumed[]>`
        select id, input_hash, output_hash from thunderpac_fleet_receipts
        where input_hash = any(${[...nodes]}::text[]) order by seq`,
      children: await sql<Child[]>`
        select p.child, p.parent, r.output_hash from thunderpac_fleet_parents p
        left join thunderpac_fleet_receipts r on r.id = p.child
        where p.parent = any(${[...nodes]}::text[]) order by p.parent, p.child`,
    });
    // One round trip for the whole reachable graph (a recursive walk in the database) when it is
    // small enough to hold; past the cap, a round trip per depth.
    const cap = 4 * limit + 4;
    const whole = await this.#db.run('walk derived receipts', async (sql) => {
      const reach = await sql<{ node: string }[]>`
        with recursive n(node) as (
          select ${from}::text
          union
          select x.next from n cross join lateral (
            select r.id as next from thunderpac_fleet_receipts r where r.input_hash = n.node
            union all
            select r.output_hash from thunderpac_fleet_receipts r
              where r.input_hash = n.node and r.output_hash is not null
            union all
            select p.child from thunderpac_fleet_parents p where p.parent = n.node
            union all
            select r.output_hash from thunderpac_fleet_parents p join thunderpac_fleet_receipts r on r.id = p.child
              where p.parent = n.node and r.output_hash is not null
          ) x
        )
        select node from n limit ${cap + 1}`;
      return reach.length > cap
        ? undefined
        : edgesOf(
            sql,
            reach.map((r) => r.node),
          );
    });
    const step = async (nodes: readonly string[]) =>
      whole ?? (await this.#db.run('walk derived receipts', (sql) => edgesOf(sql, nodes)));
    const out: FleetDerived[] = [];
    const seen = new Set<string>();
    // Nodes to expand at the next depth: artifacts and receipts alike (both edge kinds looked up).
    let nodes = [from];
    let depth = 1;
    let truncated = false;
    while (nodes.length > 0 && !truncated) {
      const next = await step(nodes);
      const consumedBy = new Map<string, Consumed[]>();
      for (const c of next.consumed)
        consumedBy.set(c.input_hash, [...(consumedBy.get(c.input_hash) ?? []), c]);
      const childrenOf = new Map<string, Child[]>();
      for (const c of next.children) childrenOf.set(c.parent, [...(childrenOf.get(c.parent) ?? []), c]);
      const found: { receipt: string; via: FleetDerived['via']; output: string | null }[] = [];
      // In the order the nodes were reached, consumers before children, as the local walk does.
      for (const node of nodes) {
        for (const c of consumedBy.get(node) ?? [])
          found.push({ receipt: c.id, via: { kind: 'consumed', from: node }, output: c.output_hash });
        for (const c of childrenOf.get(node) ?? [])
          found.push({ receipt: c.child, via: { kind: 'child', from: node }, output: c.output_hash });
      }
      nodes = [];
      for (const f of found) {
        if (seen.has(f.receipt)) continue;
        if (out.length >= limit) {
          truncated = true;
          break;
        }
        seen.add(f.receipt);
        out.push({ receipt: f.receipt, depth, via: f.via });
        nodes.push(f.receipt);
        if (f.output) nodes.push(f.output);
      }
      depth++;
    }
    return { from, receipts: out, truncated };
  }

  /** A receipt's DAG lineage across hosts: it and its ancestors through `parents`, with the edges. */
  async lineage(receiptId: string, limit = DEFAULT_DERIVED_LIMIT): Promise<FleetLineage> {
    checkHash(receiptId, 'receipt');
    checkLimit(limit, MAX_DERIVED_LIMIT);
    const receipts: FleetLocation[] = [];
    const edges: { child: string; parent: string }[] = [];
    const missing: string[] = [];
    const known = await this.#ancestry([receiptId], 2 * limit + 1);
    const seen = new Set([receiptId]);
    let frontier = [receiptId];
    while (frontier.length > 0 && receipts.length < limit) {
      const next: string[] = [];
      for (const id of frontier) {
        const at = known.get(id);
        if (!at) {
          missing.push(id);
          continue;
        }
        if (receipts.length >= limit) break;
        receipts.push(at);
        for (const parent of at.receipt.parents) {
          edges.push({ child: id, parent });
          if (!seen.has(parent)) {
            seen.add(parent);
            next.push(parent);
          }
        }
      }
      frontier = next;
    }
    return { receipt: receiptId, receipts, edges, missing };
  }

  /** The hosts mirroring into this index and how far each has confirmed. */
  async hosts(): Promise<FleetHost[]> {
    const rows = await this.#db.run(
      'list hosts',
      (sql) => sql<{ host: string; ordinal: string; last_id: string | null; updated_at: Date }[]>`
        select host, ordinal, last_id, updated_at from thunderpac_fleet_hosts order by host`,
    );
    return rows.map((r) => ({
      host: r.host,
      confirmed: Number(r.ordinal),
      lastId: r.last_id,
      updatedAt: new Date(r.updated_at).toISOString(),
    }));
  }

  /**
   * Forget a host's confirmed position (after a FleetMismatchError an operator has resolved):
   * its next mirror starts from its log's first receipt. Receipt rows stay (re-mirroring them
   * inserts nothing twice).
   */
  async forgetHost(host: string): Promise<boolean> {
    const rows = await this.#db.run(
      `forget host '${host}'`,
      (sql) => sql`delete from thunderpac_fleet_hosts where host = ${host} returning host`,
    );
    return rows.length > 0;
  }
}
