/**
 * Provenance over one store: the lineage index (lineage-index.ts), the DAG records, and the
 * queries the CLI (`thunderpac receipt query`), the daemon (`/v1/provenance/...`) and DAG
 * replay (runtime/dag.ts) ask:
 *
 *   producedBy(hash)    the receipts whose output is this payload hash, with their ancestry
 *   derivedFrom(id)     everything downstream of an artifact or a receipt: the receipts that
 *                       consumed it, those that consumed their outputs or name them as parents,
 *                       and so on (breadth first, bounded)
 *   dagOf(receipt)      the DAG a step receipt ran in
 *   build/actor/status/time range: the receipt index's query (store.listReceipts)
 *
 * Files under `<store>/provenance/`:
 *   lineage.idx   the lineage index checkpoint (format documented in lineage-index.ts)
 *   dags.log      one record per DAG run (record-file.ts, magic `TPDAGS1\n`): canonical msgpack
 *                 `{ dag: <artifact key of the DAG document>, receipts: [<step receipt ids>] }`.
 *                 This is the one provenance fact the receipt log does not hold (which DAG a
 *                 receipt belongs to), so it is appended and fdatasynced before runDag
 *                 returns (one flush per DAG run, not per step). The DAG document itself is
 *                 an artifact in the store (kind 'dag'): its key is its sha256, and it is
 *                 re-hashed whenever it is read.
 *   voxels.log    voxel envelopes (voxel.ts)
 */

import { join } from 'node:path';
import { decodeCanonical, encodeCanonical, sha256Hex } from '../../runtime/canonical.js';
import type { DagRecordStore } from '../../runtime/dag.js';
import { IntegrityError, ValidationError } from '../../runtime/errors.js';
import type { Receipt } from '../../runtime/receipt.js';
import { StoreReadOnlyError } from '../errors.js';
import type { Store } from '../store.js';
import { EDGE_CHILD, EDGE_CONSUMED, EDGE_PRODUCED, LineageIndex } from './lineage-index.js';
import { RecordFile } from './record-file.js';

const HEX = /^[0-9a-f]{64}$/;
export const DEFAULT_DERIVED_LIMIT = 1000;
export const MAX_DERIVED_LIMIT = 100_000;

/** The store's artifact API (artifacts/): DAG documents and voxel payloads are artifacts. */
export function artifactsOf(store: Store): Pick<Store['artifacts'], 'put' | 'get'> {
  return store.artifacts;
}

export interface Derived {
  readonly receipt: string;
  /** Steps from the starting artifact or receipt: 1 = consumed it directly / its child. */
  readonly depth: number;
  /** How it is reached: the artifact it consumed, or the parent receipt it names. */
  readonly via: { readonly kind: 'consumed' | 'child'; readonly from: string };
}

export interface DerivedPage {
  readonly from: string;
  readonly receipts: readonly Derived[];
  /** true when the limit stopped the walk before it ended. */
  readonly truncated: boolean;
}

export interface ProducedBy {
  readonly hash: string;
  /** Receipts whose output is `hash`. */
  readonly producers: readonly string[];
  /** The receipts those descend from (their parents, transitively), nearest first. */
  readonly ancestors: readonly string[];
}

export class Provenance {
  readonly #store: Store;
  readonly lineage: LineageIndex;
  readonly #dags: RecordFile;
  readonly #dagOf = new Map<string, string>();

  constructor(store: Store) {
    this.#store = store;
    const dir = join(store.dir, 'provenance');
    const readOnly = store.readOnly;
    this.lineage = new LineageIndex(join(dir, 'lineage.idx'), store.receipts, { readOnly });
    this.#dags = new RecordFile(
      join(dir, 'dags.log'),
      'TPDAGS1\n',
      { readOnly, durable: true },
      (payload, offset) => {
        const r = decodeCanonical<{ dag?: unknown; receipts?: unknown }>(payload);
        if (typeof r?.dag !== 'string' || !Array.isArray(r.receipts))
          throw new IntegrityError(`${join(dir, 'dags.log')}: record at byte ${offset} is not a DAG record`);
        for (const id of r.receipts) if (typeof id === 'string') this.#dagOf.set(id, r.dag);
      },
    );
  }

  /** Store a DAG document (artifact kind 'dag') and remember it for each step receipt. */
  putDag(document: Uint8Array, receipts: readonly string[]): string {
    if (this.#store.readOnly) throw new StoreReadOnlyError(this.#store.dir, 'store a DAG');
    const key = artifactsOf(this.#store).put(document, { kind: 'dag' });
    this.#dags.append(encodeCanonical({ dag: key, receipts: [...receipts] }));
    for (const id of receipts) this.#dagOf.set(id, key);
    return key;
  }

  dagOf(receiptId: string): { key: string; document: Uint8Array } | undefined {
    const key = this.#dagOf.get(receiptId);
    if (key === undefined) return undefined;
    const document = artifactsOf(this.#store).get(key);
    if (HEX.test(key) && sha256Hex(document) !== key) throw new IntegrityError(`DAG ${key} was altered`, key);
    return { key, document };
  }

  /** Receipts whose output is the payload `hash`. */
  producers(hash: string, catchUp = true): string[] {
    return this.lineage.lookup(EDGE_PRODUCED, checkHash(hash, 'hash'), catchUp);
  }

  /** Receipts that consumed the payload (or fs tree) `hash`. */
  consumers(hash: string, catchUp = true): string[] {
    return this.lineage.lookup(EDGE_CONSUMED, checkHash(hash, 'hash'), catchUp);
  }

  /** Receipts that name `receiptId` as a parent. */
  children(receiptId: string, catchUp = true): string[] {
    return this.lineage.lookup(EDGE_CHILD, checkHash(receiptId, 'receipt'), catchUp);
  }

  #receipt(id: string): Receipt {
    return this.#store.getReceipt(id);
  }

  /** What produced an artifact: its producers and, through their parents, their ancestry. */
  producedBy(hash: string, limit = DEFAULT_DERIVED_LIMIT): ProducedBy {
    const producers = this.producers(hash); // catches up; the rest reads receipts
    const seen = new Set(producers);
    const ancestors: string[] = [];
    const queue = [...producers];
    while (queue.length > 0 && ancestors.length < limit) {
      const r = this.#receipt(queue.shift()!);
      for (const p of r.parents) {
        if (seen.has(p)) continue;
        seen.add(p);
        ancestors.push(p);
        queue.push(p);
      }
    }
    return { hash, producers, ancestors };
  }

  /**
   * Everything derived from an artifact (payload hash, fs tree digest) or a receipt: breadth
   * first over "consumed it" and "names it as a parent" edges, and from each receipt reached,
   * on to its output. At most `limit` receipts (`truncated` says when more remain).
   */
  derivedFrom(from: string, limit = DEFAULT_DERIVED_LIMIT): DerivedPage {
    checkHash(from, 'from');
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_DERIVED_LIMIT)
      throw new ValidationError('range', 'limit', `an integer 1..${MAX_DERIVED_LIMIT}`, String(limit));
    const out: Derived[] = [];
    const seen = new Set<string>();
    let frontier: { receipt: string; depth: number; via: Derived['via'] }[] = [];
    // A node may be an artifact or a receipt: both kinds of edge are looked up for it.
    const expand = (node: string, depth: number) => {
      for (const r of this.consumers(node, false))
        frontier.push({ receipt: r, depth, via: { kind: 'consumed', from: node } });
      for (const r of this.children(node, false))
        frontier.push({ receipt: r, depth, via: { kind: 'child', from: node } });
    };
    this.lineage.catchUp(); // once per query, not per lookup
    expand(from, 1);
    let truncated = false;
    while (frontier.length > 0) {
      const next = frontier;
      frontier = [];
      for (const d of next) {
        if (seen.has(d.receipt)) continue;
        if (out.length >= limit) {
          truncated = true;
          break;
        }
        seen.add(d.receipt);
        out.push(d);
        const r = this.#receipt(d.receipt);
        expand(d.receipt, d.depth + 1);
        if (r.output?.hash) {
          for (const c of this.consumers(r.output.hash, false))
            frontier.push({ receipt: c, depth: d.depth + 1, via: { kind: 'consumed', from: r.output.hash } });
        }
      }
      if (truncated) break;
    }
    return { from, receipts: out, truncated };
  }

  /** Check the lineage checkpoint edge by edge (fsck). */
  verify(): { edges: number } {
    return { edges: this.lineage.verify() };
  }

  close(): void {
    this.lineage.close();
    this.#dags.close();
  }
}

function checkHash(value: string, path: string): string {
  if (typeof value !== 'string' || !HEX.test(value))
    throw new ValidationError(
      'type',
      path,
      'a sha256 digest (64 lowercase hex characters)',
      JSON.stringify(value),
    );
  return value;
}

/** The store as runtime/dag.ts needs it: the executor's RecordStore plus the DAG records. */
export function dagStoreOf(store: Store): DagRecordStore {
  return {
    putBuild: (b) => store.putBuild(b),
    getBuild: (id) => store.getBuild(id),
    putPayload: (h, e) => store.putPayload(h, e),
    hasPayload: (h) => store.hasPayload(h),
    getPayload: (h) => store.getPayload(h),
    appendReceipt: (r, body) => store.appendReceipt(r, body),
    getReceipt: (id) => store.getReceipt(id),
    putDag: (doc, receipts) => provenanceOf(store).putDag(doc, receipts),
    dagOf: (id) => provenanceOf(store).dagOf(id),
  };
}

/** The store's Provenance (one per Store, opened on first use, closed with the store). */
export function provenanceOf(store: Store): Provenance {
  return store.provenance;
}
