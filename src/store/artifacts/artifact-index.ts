/**
 * CURRENT: the artifact index as of now = the checkpoint table + the replay of the index log
 * written since (formats in index-files.ts).
 *
 *     <dir>/CURRENT          `TPCUR01 <gen>\n`: which generation is current
 *     <dir>/<gen>.ckpt       the checkpoint table of generation gen (absent for generation 1)
 *     <dir>/<gen>.log        the index log of changes since that checkpoint
 *
 * Open: read CURRENT, open the checkpoint (header, fanout, strings and size checked; records are
 * read on lookup, by binary search with pread, so opening does not grow with the number of
 * artifacts), replay the log into a Map (only the log tail is in memory). A missing CURRENT
 * starts generation 1 (a new store, or one from before the index: its legacy blobs are read
 * through the Store's fallback).
 *
 * Checkpoint (the writer, once the log holds `checkpointEvery` + count/8 records, and on demand):
 * merge table + tail into `<gen+1>.ckpt` (temporary name, fsync, rename; tombstones dropped,
 * reclaimed markers kept), create an empty `<gen+1>.log` (fsync), then replace CURRENT (temporary
 * name, fsync, rename, fsync of the directory) and only then remove generation gen's files. A
 * crash before CURRENT moved leaves generation gen whole (the writer removes the stray gen+1
 * files on its next open); after, generation gen+1 is whole.
 *
 * One writer (the Store holds the receipt log's lock). A reader beside it calls `refresh` on a
 * miss: CURRENT re-read (a new generation is loaded whole), otherwise the log read on from where
 * it stopped; a record the writer is still writing is left for the next refresh.
 */

import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { StoreReadOnlyError } from '../errors.js';
import { StoreFileIntegrityError } from './errors.js';
import {
  CHECKPOINT_MAGIC,
  encodeLogRecord,
  type IndexEntry,
  LOG_MAGIC,
  scanLog,
  Table,
  writeTable,
} from './index-files.js';

export const CURRENT_MAGIC = 'TPCUR01';
export const DEFAULT_CHECKPOINT_EVERY = 50_000;

export interface ArtifactIndexOptions {
  readonly readOnly?: boolean;
  /** Checkpoint once the log holds this many records plus an eighth of the checkpoint's. */
  readonly checkpointEvery?: number;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeFileDurably(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, bytes, 0, bytes.byteLength, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export class ArtifactIndex {
  readonly dir: string;
  readonly readOnly: boolean;
  readonly #checkpointEvery: number;
  #gen = 0;
  #table: Table | undefined;
  #tail = new Map<string, IndexEntry>();
  #logFd = -1;
  /** Writer: where the next record goes. Reader: how far the log was read. */
  #logEnd = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #live = 0;
  #closed = false;
  /** Bytes of a torn log tail found on open (cut by a writer). */
  recoveredBytes = 0;

  constructor(dir: string, options: ArtifactIndexOptions = {}) {
    this.dir = dir;
    this.readOnly = options.readOnly ?? false;
    this.#checkpointEvery = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    if (!this.readOnly) mkdirSync(dir, { recursive: true });
    this.#load();
  }

  get generation(): number {
    return this.#gen;
  }

  /** Live artifacts in CURRENT. */
  get liveCount(): number {
    return this.#live;
  }

  /** Records in the log since the checkpoint (kept in memory). */
  get tailSize(): number {
    return this.#tail.size;
  }

  get #currentPath(): string {
    return join(this.dir, 'CURRENT');
  }

  #readCurrent(): number | undefined {
    let text: string;
    try {
      text = readFileSync(this.#currentPath, 'latin1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const m = /^TPCUR01 ([1-9][0-9]{0,14})\n$/.exec(text);
    if (!m) {
      throw new StoreFileIntegrityError(
        this.#currentPath,
        0,
        `not a CURRENT file of this format: ${JSON.stringify(text.slice(0, 40))}`,
      );
    }
    return Number(m[1]);
  }

  #load(): void {
    let gen = this.#readCurrent();
    if (gen === undefined) {
      if (this.readOnly) {
        this.#gen = 0;
        return;
      }
      gen = 1;
      writeFileDurably(join(this.dir, '1.log'), LOG_MAGIC);
      writeFileDurably(this.#currentPath, Buffer.from(`${CURRENT_MAGIC} 1\n`));
      fsyncDir(this.dir);
    }
    this.#gen = gen;
    const ckpt = join(this.dir, `${gen}.ckpt`);
    this.#table = undefined;
    this.#live = 0;
    if (gen > 1 || existsSync(ckpt)) {
      if (!existsSync(ckpt))
        throw new StoreFileIntegrityError(
          ckpt,
          0,
          `checkpoint of generation ${gen} (named by CURRENT) is missing`,
        );
      this.#table = new Table(ckpt, CHECKPOINT_MAGIC);
      try {
        const meta = JSON.parse(this.#table.meta.toString('utf8')) as { live?: unknown };
        if (typeof meta.live !== 'number') throw new Error('no live count');
        this.#live = meta.live;
      } catch {
        throw new StoreFileIntegrityError(
          ckpt,
          32,
          'checkpoint meta does not say how many artifacts are live',
        );
      }
    }
    this.#tail = new Map();
    const logPath = join(this.dir, `${gen}.log`);
    let fd: number;
    try {
      fd = openSync(logPath, this.readOnly ? 'r' : 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new StoreFileIntegrityError(
          logPath,
          0,
          `index log of generation ${gen} (named by CURRENT) is missing`,
        );
      }
      throw err;
    }
    this.#logFd = fd;
    this.#logEnd = 0;
    this.#readLog(true);
    if (!this.readOnly) this.#removeStrays();
  }

  /** Read the log from #logEnd to its end and apply what is complete. */
  #readLog(opening: boolean): void {
    const size = fstatSync(this.#logFd).size;
    if (size <= this.#logEnd) return;
    const bytes = Buffer.allocUnsafe(size - this.#logEnd);
    let got = 0;
    while (got < bytes.length) {
      const n = readSync(this.#logFd, bytes, got, bytes.length - got, this.#logEnd + got);
      if (n === 0) break;
      got += n;
    }
    const scan = scanLog(join(this.dir, `${this.#gen}.log`), bytes.subarray(0, got), this.#logEnd);
    for (let i = 0; i < scan.entries.length; i++) this.#apply(scan.entries[i]!, scan.wasLive[i]!);
    this.#logEnd = scan.end;
    if (scan.torn > 0 && opening && !this.readOnly) {
      ftruncateSync(this.#logFd, this.#logEnd);
      this.recoveredBytes = scan.torn;
    }
    if (this.#logEnd === 0 && !this.readOnly) {
      // A log cut before its magic was complete: write the magic again.
      writeSync(this.#logFd, LOG_MAGIC, 0, LOG_MAGIC.length, 0);
      this.#logEnd = LOG_MAGIC.length;
    }
  }

  /** Files of other generations and temporary files (left by a crash mid-checkpoint). */
  #removeStrays(): void {
    for (const name of readdirSync(this.dir)) {
      const m = /^([0-9]+)\.(ckpt|log)$/.exec(name);
      if ((m && Number(m[1]) !== this.#gen) || name.includes('.tmp-')) unlinkSync(join(this.dir, name));
    }
  }

  #apply(e: IndexEntry, wasLive: boolean): void {
    if (wasLive) this.#live--;
    if (e.state === 'live') this.#live++;
    this.#tail.set(e.key, e);
  }

  /** The latest entry for `key` in any state (live, tombstone, reclaimed), or undefined. */
  get(key: string): IndexEntry | undefined {
    return this.#tail.get(key) ?? this.#table?.find(key);
  }

  /** Record a new state for a key (queued; written by `flush`). */
  set(entry: IndexEntry, prev: IndexEntry | undefined | null = null): void {
    if (this.readOnly) throw new StoreReadOnlyError(this.dir, `index artifact ${entry.key}`);
    // `prev`: the caller's lookup of the key just before (saves a second one); null: look it up.
    const wasLive = (prev === null ? this.get(entry.key) : prev)?.state === 'live';
    this.#apply(entry, wasLive);
    const record = encodeLogRecord(entry, wasLive);
    this.#pending.push(record);
    this.#pendingBytes += record.length;
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Write every queued record, in one write. */
  flush(): void {
    if (this.#pendingBytes === 0 || this.readOnly) return;
    const batch =
      this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    let at = 0;
    while (at < batch.length) at += writeSync(this.#logFd, batch, at, batch.length - at, this.#logEnd + at);
    this.#logEnd += batch.length;
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  sync(): void {
    this.flush();
    if (!this.readOnly && this.#logFd >= 0) fdatasyncSync(this.#logFd);
  }

  /** Whether the log has grown enough to be folded into a new checkpoint. */
  get wantsCheckpoint(): boolean {
    return this.#tail.size >= this.#checkpointEvery + (this.#table?.count ?? 0) / 8;
  }

  /**
   * Every entry of CURRENT in key order (all states; the caller filters), the tail merged over
   * the checkpoint. The tail is copied first, so sets during the walk are not seen.
   */
  *entries(): Generator<IndexEntry> {
    const tailKeys = [...this.#tail.keys()].sort();
    const tail = this.#tail;
    let t = 0;
    if (this.#table) {
      for (const e of this.#table.entries()) {
        while (t < tailKeys.length && tailKeys[t]! < e.key) yield tail.get(tailKeys[t++]!)!;
        if (t < tailKeys.length && tailKeys[t] === e.key) yield tail.get(tailKeys[t++]!)!;
        else yield e;
      }
    }
    while (t < tailKeys.length) yield tail.get(tailKeys[t++]!)!;
  }

  /**
   * Fold the log into a new checkpoint generation (see the module comment for the crash
   * argument). The caller makes the blocks durable first.
   */
  checkpoint(): void {
    if (this.readOnly) throw new StoreReadOnlyError(this.dir, 'checkpoint the artifact index');
    this.sync();
    const next = this.#gen + 1;
    const ckpt = join(this.dir, `${next}.ckpt`);
    let live = 0;
    const kept = (function* (all: Generator<IndexEntry>) {
      for (const e of all) {
        if (e.state === 'tombstone') continue;
        if (e.state === 'live') live++;
        yield e;
      }
    })(this.entries());
    // The live count goes in the meta, which precedes the records: count first.
    let liveCount = 0;
    for (const e of this.entries()) if (e.state === 'live') liveCount++;
    writeTable(
      ckpt,
      CHECKPOINT_MAGIC,
      kept,
      Buffer.from(JSON.stringify({ live: liveCount, generation: next })),
    );
    if (live !== liveCount) throw new Error('artifact index changed during a checkpoint');
    writeFileDurably(join(this.dir, `${next}.log`), LOG_MAGIC);
    writeFileDurably(this.#currentPath, Buffer.from(`${CURRENT_MAGIC} ${next}\n`));
    fsyncDir(this.dir);
    const old = this.#gen;
    this.#table?.close();
    closeSync(this.#logFd);
    for (const name of [`${old}.ckpt`, `${old}.log`]) {
      try {
        unlinkSync(join(this.dir, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    this.#load();
  }

  /**
   * Reader: take in what the writer did since (see the module comment). Returns whether
   * anything may have changed.
   */
  refresh(): boolean {
    if (!this.readOnly || this.#closed) return false;
    const gen = this.#readCurrent();
    if (gen === undefined) return false;
    if (gen !== this.#gen) {
      this.#table?.close();
      if (this.#logFd >= 0) closeSync(this.#logFd);
      this.#logFd = -1;
      this.#load();
      return true;
    }
    const before = this.#logEnd;
    this.#readLog(false);
    return this.#logEnd !== before;
  }

  close(): void {
    if (this.#closed) return;
    if (!this.readOnly) this.flush();
    this.#table?.close();
    if (this.#logFd >= 0) closeSync(this.#logFd);
    this.#logFd = -1;
    this.#closed = true;
  }
}
