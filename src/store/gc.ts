/**
 * Garbage collection and compaction of the block store.
 *
 * GC (`store.gc({ retention, dryRun, graceMs })`):
 *   1. retention (retention.ts) splits the receipts into kept and expired, reading the log once;
 *   2. in CURRENT, a `payload` entry that no kept receipt references (input, output, memory fs
 *      tree), that is not published and was put more than `graceMs` ago (default 1 h: an
 *      execution in flight has put its payloads but not yet its receipt) is marked reclaimed
 *      (an index record: a later lookup says "payload reclaimed by GC"). Other kinds (builds,
 *      build artifacts, user artifacts) are pinned by CURRENT until tombstoned;
 *   3. live blocks = those named by a live entry of CURRENT or of any snapshot; a large block
 *      file no live entry names, and a sealed segment with no live block, are deleted;
 *   4. segments whose dead share is at least `minDeadRatio` (default 0.3) are compacted; then
 *      the index is checkpointed.
 * The report says what was kept, reclaimed and freed (artifacts, bytes, files). `dryRun`
 * computes the same report and changes nothing.
 *
 * Compaction: each live block of a chosen segment (CURRENT's or a snapshot's) is read (and so
 * re-hashed) and written to the active segment; CURRENT gets an index record with the new
 * location; blocks and index are fdatasynced; snapshots naming a moved block are rewritten
 * (temporary file + rename); only then is the old segment deleted. A crash before the delete
 * leaves the old segment with no live block: the next GC deletes it.
 */

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeCanonical } from '../runtime/canonical.js';
import type { Receipt } from '../runtime/receipt.js';
import { type IndexEntry, ZERO_ID } from './artifacts/index-files.js';
import { LARGE, NO_BLOCK, RECORD_HEADER, SEGMENT_MAGIC } from './blocks/block-store.js';
import { ReceiptLog } from './receipt-log.js';
import { checkRetention, chooseKept, type ReceiptRefs, type RetentionPolicy } from './retention.js';
import type { Store } from './store.js';

export interface GcOptions {
  readonly retention?: RetentionPolicy;
  readonly dryRun?: boolean;
  /** Payloads put less than this long ago are never reclaimed (default 1 hour). */
  readonly graceMs?: number;
  /** Compact segments with at least this share of dead bytes (default 0.3; 1 = never). */
  readonly minDeadRatio?: number;
  /** The clock, for tests (default Date.now()). */
  readonly now?: number;
}

export interface CompactReport {
  readonly segmentsCompacted: number;
  readonly blocksMoved: number;
  readonly bytesMoved: number;
  readonly bytesFreed: number;
  readonly filesFreed: number;
  readonly snapshotsRewritten: number;
}

export interface GcReport {
  readonly dryRun: boolean;
  readonly receipts: { readonly total: number; readonly kept: number; readonly expired: number };
  /** Payload artifacts reclaimed (marked so in the index) and their bytes. */
  readonly reclaimed: { readonly artifacts: number; readonly bytes: number };
  /** What deleting dead files and compacting freed on disk. */
  readonly freed: {
    readonly bytes: number;
    readonly files: number;
    readonly segments: number;
    readonly largeBlocks: number;
  };
  readonly compaction: CompactReport;
  readonly durationMs: number;
}

export interface StoreStat {
  readonly artifacts: number;
  readonly receipts: number;
  readonly snapshots: number;
  readonly segments: number;
  readonly largeBlocks: number;
  /** Bytes of every file under the store directory. */
  readonly bytes: number;
  /** Files under the store directory. */
  readonly files: number;
  readonly indexGeneration: number;
  readonly indexTailRecords: number;
}

function payloadKeys(r: Omit<Receipt, 'id'>): string[] {
  const out: string[] = [];
  if (r.input?.hash) out.push(r.input.hash);
  if (r.output?.hash) out.push(r.output.hash);
  const fs = r.sandbox?.fs as { kind?: string; digest?: string } | undefined;
  if (fs?.kind === 'memory' && typeof fs.digest === 'string') out.push(fs.digest);
  return out;
}

/** Live bytes per segment and live large blocks, over CURRENT's and every snapshot's entries. */
function liveBlocks(
  store: Store,
  skip: ReadonlySet<string> = new Set(),
): { segments: Map<number, number>; large: Set<string> } {
  const segments = new Map<number, number>();
  const large = new Set<string>();
  const seen = new Set<string>();
  const take = (e: IndexEntry): void => {
    if (e.state !== 'live' || e.segment === NO_BLOCK) return;
    if (e.segment === LARGE) {
      large.add(e.block);
      return;
    }
    const loc = `${e.segment}:${e.offset}`;
    if (seen.has(loc)) return;
    seen.add(loc);
    segments.set(e.segment, (segments.get(e.segment) ?? 0) + RECORD_HEADER + e.length);
  };
  for (const e of store.index.entries()) if (!skip.has(e.key)) take(e);
  for (const id of store.snapshots_.ids()) {
    const t = store.snapshots_.open(id);
    try {
      for (const e of t.entries()) take(e);
    } finally {
      t.close();
    }
  }
  return { segments, large };
}

export function runGc(store: Store, options: GcOptions): GcReport {
  const started = performance.now();
  const dryRun = options.dryRun ?? false;
  const policy = checkRetention(options.retention);
  const now = options.now ?? Date.now();
  const graceMs = options.graceMs ?? 3_600_000;

  // 1. Retention over the receipts.
  const refs: ReceiptRefs[] = [];
  store.receipts.scanBodies(ReceiptLog.START, (id, body) => {
    const r = decodeCanonical<Omit<Receipt, 'id'>>(body);
    refs.push({ id, startedAtMs: Date.parse(r.startedAt), payloads: payloadKeys(r), buildId: r.buildId });
  });
  const sizeOf = (key: string): number => {
    const e = store.index.get(key);
    return e?.state === 'live' ? e.length : 0;
  };
  const kept = chooseKept(refs, policy, now, sizeOf);
  const referenced = new Set<string>();
  let keptCount = 0;
  for (let i = 0; i < refs.length; i++) {
    if (!kept[i]) continue;
    keptCount++;
    for (const k of refs[i]!.payloads) referenced.add(k);
    referenced.add(refs[i]!.buildId);
  }

  // 2. Payloads no kept receipt references.
  const reclaim: IndexEntry[] = [];
  for (const e of store.index.entries()) {
    if (e.state !== 'live' || e.kind !== 'payload' || e.visibility === 'published') continue;
    if (referenced.has(e.key) || e.time > now - graceMs) continue;
    reclaim.push(e);
  }
  let reclaimedBytes = 0;
  for (const e of reclaim) reclaimedBytes += e.length;
  if (!dryRun) {
    for (const e of reclaim) {
      store.index.set({
        ...e,
        block: ZERO_ID,
        segment: NO_BLOCK,
        offset: 0,
        length: 0,
        time: now,
        state: 'reclaimed',
      });
    }
    store.flush();
  }

  // 3. Delete what no live entry names.
  const live = liveBlocks(store, dryRun ? new Set(reclaim.map((e) => e.key)) : undefined);
  let bytesFreed = 0;
  let filesFreed = 0;
  let segmentsFreed = 0;
  let largeFreed = 0;
  for (const id of store.blocks.largeBlocks()) {
    if (live.large.has(id)) continue;
    largeFreed++;
    filesFreed++;
    if (dryRun) {
      try {
        bytesFreed += statSync(store.blocks.largePath(id)).size;
      } catch {}
    } else bytesFreed += store.blocks.removeLarge(id);
  }
  const active = store.blocks.activeSegment;
  for (const seg of store.blocks.segments()) {
    if (seg === active || (live.segments.get(seg) ?? 0) > 0) continue;
    segmentsFreed++;
    filesFreed++;
    bytesFreed += dryRun ? store.blocks.segmentSize(seg) : store.blocks.removeSegment(seg);
  }

  // 4. Compaction, then a checkpoint.
  const minDeadRatio = options.minDeadRatio ?? 0.3;
  const compaction = dryRun
    ? planCompaction(store, minDeadRatio, live.segments)
    : compactSegments(store, minDeadRatio, live.segments);
  if (!dryRun && (reclaim.length > 0 || compaction.blocksMoved > 0)) store.checkpoint();
  return {
    dryRun,
    receipts: { total: refs.length, kept: keptCount, expired: refs.length - keptCount },
    reclaimed: { artifacts: reclaim.length, bytes: reclaimedBytes },
    freed: {
      bytes: bytesFreed + compaction.bytesFreed,
      files: filesFreed + compaction.filesFreed,
      segments: segmentsFreed + compaction.segmentsCompacted,
      largeBlocks: largeFreed,
    },
    compaction,
    durationMs: performance.now() - started,
  };
}

/** Sealed segments with live blocks and at least `minDeadRatio` dead bytes. */
function chooseSegments(store: Store, minDeadRatio: number, liveBytes: Map<number, number>): number[] {
  const active = store.blocks.activeSegment;
  const out: number[] = [];
  for (const seg of store.blocks.segments()) {
    if (seg === active) continue;
    const size = store.blocks.segmentSize(seg);
    const liveB = liveBytes.get(seg) ?? 0;
    if (liveB === 0) continue;
    const dead = size - SEGMENT_MAGIC.length - liveB;
    if (dead > 0 && dead / Math.max(1, size) >= minDeadRatio) out.push(seg);
  }
  return out;
}

function planCompaction(store: Store, minDeadRatio: number, liveBytes: Map<number, number>): CompactReport {
  const chosen = chooseSegments(store, minDeadRatio, liveBytes);
  let bytesFreed = 0;
  let bytesMoved = 0;
  for (const seg of chosen) {
    const l = liveBytes.get(seg) ?? 0;
    bytesMoved += l;
    bytesFreed += store.blocks.segmentSize(seg) - l;
  }
  return {
    segmentsCompacted: chosen.length,
    blocksMoved: 0,
    bytesMoved,
    bytesFreed,
    filesFreed: chosen.length,
    snapshotsRewritten: 0,
  };
}

/** Rewrite segments with dead space (see the module comment). */
export function compactSegments(
  store: Store,
  minDeadRatio: number,
  liveBytes?: Map<number, number>,
): CompactReport {
  const chosen = new Set(chooseSegments(store, minDeadRatio, liveBytes ?? liveBlocks(store).segments));
  if (chosen.size === 0) {
    return {
      segmentsCompacted: 0,
      blocksMoved: 0,
      bytesMoved: 0,
      bytesFreed: 0,
      filesFreed: 0,
      snapshotsRewritten: 0,
    };
  }
  store.blocks.seal(); // moved blocks go to a fresh segment, never one being compacted
  const moves = new Map<string, { segment: number; offset: number }>();
  let bytesMoved = 0;
  const move = (e: IndexEntry): { segment: number; offset: number } => {
    const loc = `${e.segment}:${e.offset}`;
    let to = moves.get(loc);
    if (!to) {
      const bytes = store.blocks.read(e, e.block); // re-hashed
      const placed = store.blocks.put(bytes, Buffer.from(e.block, 'hex'));
      to = { segment: placed.segment, offset: placed.offset };
      moves.set(loc, to);
      bytesMoved += e.length;
    }
    return to;
  };
  const updates: IndexEntry[] = [];
  for (const e of store.index.entries()) {
    if (e.state === 'live' && chosen.has(e.segment)) updates.push({ ...e, ...move(e) });
  }
  for (const e of updates) store.index.set(e);
  for (const id of store.snapshots_.ids()) {
    const t = store.snapshots_.open(id);
    try {
      for (const e of t.entries()) if (e.state === 'live' && chosen.has(e.segment)) move(e);
    } finally {
      t.close();
    }
  }
  store.blocks.sync();
  store.index.sync();
  const snapshotsRewritten = store.snapshots_.relocate(moves);
  let bytesFreed = 0;
  for (const seg of chosen) bytesFreed += store.blocks.removeSegment(seg);
  return {
    segmentsCompacted: chosen.size,
    blocksMoved: moves.size,
    bytesMoved,
    bytesFreed: Math.max(0, bytesFreed - bytesMoved - moves.size * RECORD_HEADER),
    filesFreed: chosen.size,
    snapshotsRewritten,
  };
}

function walk(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  let names: import('node:fs').Dirent[];
  try {
    names = readdirSync(dir, { withFileTypes: true });
  } catch {
    return { bytes, files };
  }
  for (const d of names) {
    const p = join(dir, d.name);
    if (d.isDirectory()) {
      const sub = walk(p);
      bytes += sub.bytes;
      files += sub.files;
    } else if (d.isFile()) {
      files++;
      bytes += statSync(p).size;
    }
  }
  return { bytes, files };
}

export function storeStat(store: Store): StoreStat {
  const { bytes, files } = walk(store.dir);
  return {
    artifacts: store.index.liveCount,
    receipts: store.receipts.size,
    snapshots: store.snapshots_.ids().length,
    segments: store.blocks.segments().length,
    largeBlocks: store.blocks.largeBlocks().length,
    bytes,
    files,
    indexGeneration: store.index.generation,
    indexTailRecords: store.index.tailSize,
  };
}
