/**
 * fsck: check a whole store, every layer, and report every problem with where it is — never
 * repair, never stop at the first (`thunderpac store fsck`, `GET /v1/store/fsck`).
 *
 * An open checks only what it must to be fast (the log's head and what follows its checkpoint,
 * the index's checkpoint and log tail): this is the full pass that reads every byte again.
 *   - receipts: the receipt log record by record (crc, hash chain, head) and its checkpoint
 *     against it (receipt-log.ts `verify`);
 *   - blocks: every segment walked record by record, each block re-hashed; every large block;
 *   - index: every live artifact read back through the index (location → bytes → hash);
 *   - snapshots: every snapshot table readable, its entries' blocks present;
 *   - tree: every signed tree head's checksum, sizes growing, its root against the log
 *     (merkle/ledger.ts `verify`);
 *   - provenance: the lineage index against the log (provenance/ `verify`).
 * Damage in one part does not hide damage in another: each part runs on its own.
 */

import { statSync } from 'node:fs';
import { LARGE } from './blocks/block-store.js';
import type { LogVerifyReport } from './receipt-log.js';
import type { Store } from './store.js';

export const FSCK_PARTS = ['receipts', 'blocks', 'index', 'snapshots', 'tree', 'provenance'] as const;
export type FsckPart = (typeof FSCK_PARTS)[number];

export interface FsckProblem {
  readonly part: FsckPart;
  /** The file, when the problem is in one. */
  readonly path?: string;
  /** The byte offset in that file, when known. */
  readonly offset?: number;
  /** The artifact or receipt key, when the problem is about one. */
  readonly key?: string;
  readonly code: string;
  readonly message: string;
}

export interface FsckReport {
  readonly ok: boolean;
  readonly checked: {
    readonly receipts: number;
    readonly segments: number;
    readonly blocks: number;
    readonly largeBlocks: number;
    readonly artifacts: number;
    readonly snapshots: number;
    readonly treeHeads: number;
    readonly lineageEdges: number;
  };
  readonly receiptCheckpoint: string;
  /** At most `maxProblems` (default 1000); `truncated` says more were found. */
  readonly problems: readonly FsckProblem[];
  readonly truncated: boolean;
  readonly durationMs: number;
}

export interface FsckOptions {
  readonly maxProblems?: number;
  /** Parts to check (default all). */
  readonly parts?: readonly FsckPart[];
}

function problemOf(part: FsckPart, err: unknown, key?: string): FsckProblem {
  const e = err as { code?: unknown; path?: unknown; offset?: unknown; message?: unknown };
  return {
    part,
    ...(typeof e.path === 'string' && { path: e.path }),
    ...(typeof e.offset === 'number' && { offset: e.offset }),
    ...(key !== undefined && { key }),
    code: typeof e.code === 'string' ? e.code : 'ERROR',
    message: err instanceof Error ? err.message : String(err),
  };
}

export function fsck(store: Store, options: FsckOptions = {}): FsckReport {
  const started = performance.now();
  const max = options.maxProblems ?? 1000;
  const parts = new Set(options.parts ?? FSCK_PARTS);
  const problems: FsckProblem[] = [];
  let truncated = false;
  const report = (p: FsckProblem) => {
    if (problems.length < max) problems.push(p);
    else truncated = true;
  };
  const checked = {
    receipts: 0,
    segments: 0,
    blocks: 0,
    largeBlocks: 0,
    artifacts: 0,
    snapshots: 0,
    treeHeads: 0,
    lineageEdges: 0,
  };
  let receiptCheckpoint = 'not checked';
  if (!store.readOnly) store.flush();

  if (parts.has('receipts')) {
    try {
      const r: LogVerifyReport = store.receipts.verify();
      checked.receipts = r.records;
      receiptCheckpoint = r.checkpoint;
      if (r.checkpoint.startsWith('rebuilt'))
        report({
          part: 'receipts',
          path: store.receipts.path,
          code: 'CHECKPOINT_REBUILT',
          message: r.checkpoint,
        });
    } catch (err) {
      report(problemOf('receipts', err));
    }
  }

  if (parts.has('blocks')) {
    for (const segment of store.blocks.segments()) {
      try {
        checked.blocks += store.blocks.verifySegment(segment);
        checked.segments++;
      } catch (err) {
        report(problemOf('blocks', err));
      }
    }
    for (const id of store.blocks.largeBlocks()) {
      try {
        const length = statSync(store.blocks.largePath(id)).size;
        store.blocks.read({ segment: LARGE, offset: 0, length }, id);
        checked.largeBlocks++;
      } catch (err) {
        report(problemOf('blocks', err, id));
      }
    }
  }

  if (parts.has('index')) {
    for (const e of store.index.entries()) {
      if (e.state !== 'live') continue;
      try {
        store.blocks.read(e, e.block);
        checked.artifacts++;
      } catch (err) {
        report(problemOf('index', err, e.key));
      }
    }
  }

  if (parts.has('snapshots')) {
    for (const id of store.snapshots_.ids()) {
      try {
        const table = store.snapshots_.open(id);
        try {
          for (const e of table.entries()) {
            if (e.state !== 'live') continue;
            try {
              store.blocks.read(e, e.block);
            } catch (err) {
              report({
                ...problemOf('snapshots', err, e.key),
                message: `snapshot ${id}: ${(err as Error).message}`,
              });
            }
          }
        } finally {
          table.close();
        }
        checked.snapshots++;
      } catch (err) {
        report(problemOf('snapshots', err, id));
      }
    }
  }

  if (parts.has('tree')) {
    try {
      checked.treeHeads = store.ledger.verify();
    } catch (err) {
      report(problemOf('tree', err));
    }
  }

  if (parts.has('provenance')) {
    try {
      checked.lineageEdges = store.provenance.verify().edges;
    } catch (err) {
      report(problemOf('provenance', err));
    }
  }

  return {
    ok: problems.length === 0,
    checked,
    receiptCheckpoint,
    problems,
    truncated,
    durationMs: Math.round((performance.now() - started) * 10) / 10,
  };
}
