/**
 * Snapshots: what CURRENT held at a moment, kept as a table (index-files.ts, magic `TPSNAP01`)
 * at `<dir>/<id>.snap`. A snapshot pins its blocks: GC keeps every block a snapshot names.
 *
 * The id is the sha256 of the snapshot's meaning, not its bytes: the label, the creation time,
 * and for each live entry in key order its key, block id, kind, domain, source and visibility
 * (block locations are left out, so compaction can rewrite a snapshot's locations in place and
 * the id stays). Meta (JSON): { id, label, createdAt, artifacts, bytes }.
 *
 * Written to a temporary name, fsynced and renamed: a crash leaves a whole snapshot or none.
 */

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DIGEST_PATTERN } from '../../runtime/canonical.js';
import { NotFoundError, ValidationError } from '../../runtime/errors.js';
import { StoreFileIntegrityError } from './errors.js';
import { type IndexEntry, SNAPSHOT_MAGIC, Table, writeTable } from './index-files.js';

export interface SnapshotInfo {
  readonly id: string;
  readonly label: string;
  readonly createdAt: string;
  readonly artifacts: number;
  readonly bytes: number;
}

export class Snapshots {
  readonly dir: string;
  readonly #readOnly: boolean;

  constructor(dir: string, readOnly: boolean) {
    this.dir = dir;
    this.#readOnly = readOnly;
  }

  path(id: string): string {
    if (!DIGEST_PATTERN.test(id)) throw new ValidationError('type', 'snapshot', 'sha256 hex (64 chars)', id);
    return join(this.dir, `${id}.snap`);
  }

  create(entries: Iterable<IndexEntry>, label = ''): SnapshotInfo {
    mkdirSync(this.dir, { recursive: true });
    const live: IndexEntry[] = [];
    let bytes = 0;
    for (const e of entries) {
      if (e.state !== 'live') continue;
      live.push(e);
      bytes += e.length;
    }
    const createdAt = new Date().toISOString();
    const h = createHash('sha256');
    h.update(`TPSNAP01\n${JSON.stringify(label)}\n${createdAt}\n`);
    for (const e of live)
      h.update(`${e.key} ${e.block} ${JSON.stringify([e.kind, e.domain, e.source])} ${e.visibility}\n`);
    const id = h.digest('hex');
    const info: SnapshotInfo = { id, label, createdAt, artifacts: live.length, bytes };
    writeTable(this.path(id), SNAPSHOT_MAGIC, live, Buffer.from(JSON.stringify(info)));
    return info;
  }

  open(id: string): Table {
    try {
      return new Table(this.path(id), SNAPSHOT_MAGIC);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError('snapshot', id);
      throw err;
    }
  }

  info(id: string): SnapshotInfo {
    const t = this.open(id);
    try {
      return JSON.parse(t.meta.toString('utf8')) as SnapshotInfo;
    } catch {
      throw new StoreFileIntegrityError(t.path, 32, 'snapshot meta is not JSON');
    } finally {
      t.close();
    }
  }

  ids(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names.filter((n) => /^[0-9a-f]{64}\.snap$/.test(n)).map((n) => n.slice(0, 64));
  }

  /** Every snapshot, oldest first. */
  list(): SnapshotInfo[] {
    return this.ids()
      .map((id) => this.info(id))
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
  }

  drop(id: string): void {
    try {
      unlinkSync(this.path(id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError('snapshot', id);
      throw err;
    }
  }

  /**
   * Rewrite the snapshots that name moved blocks (compaction): `moves` maps "segment:offset" to
   * the new location. The id and meta stay.
   */
  relocate(moves: ReadonlyMap<string, { segment: number; offset: number }>): number {
    if (this.#readOnly) return 0;
    let rewritten = 0;
    for (const id of this.ids()) {
      const t = this.open(id);
      let changed = false;
      const out: IndexEntry[] = [];
      try {
        for (const e of t.entries()) {
          const m = moves.get(`${e.segment}:${e.offset}`);
          if (m) changed = true;
          out.push(m ? { ...e, segment: m.segment, offset: m.offset } : e);
        }
      } finally {
        t.close();
      }
      if (changed) {
        writeTable(this.path(id), SNAPSHOT_MAGIC, out, t.meta);
        rewritten++;
      }
    }
    return rewritten;
  }
}
