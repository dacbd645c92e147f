/**
 * Quotas: `limit` units per period per key, with atomic all-or-nothing consume, reset, periodic
 * resets (period.ts) and a journal in the store (journal.ts) so usage survives a restart.
 *
 * Atomicity. Every decision runs synchronously from reading the key's usage to recording the
 * new one, so in one process no two callers interleave inside it (JavaScript runs one callback
 * at a time; nothing awaits inside a decision). Across processes (`sharing: 'shared'`) each
 * decision runs under flock(2) on `<file>.lock`, taken through the native addon
 * (src/store/file-lock.ts): the holder first reads what other processes appended since it last
 * looked, then decides, then appends, then releases. Why flock on a side file and not a lock
 * service or O_APPEND alone: O_APPEND orders writes but cannot make read-decide-write atomic;
 * flock is per open file description and the kernel drops it when its holder dies (SIGKILL
 * included), so a crashed process never wedges the others; a side file because compaction
 * replaces the journal by rename, and a lock on a renamed-away inode would lock nothing.
 * `sharing: 'exclusive'` (the daemon: one writer per store) takes the same lock once, without
 * waiting, and holds it for its life: a second process gets QuotaFileLockedError.
 *
 * Durability (what an acknowledged consume survives):
 * - `write` (default): the record is write(2)n before consume returns: survives the process
 *   being killed (SIGKILL included: the page cache has it), not a power loss. ~1 syscall.
 * - `fsync`: write + fdatasync before returning: survives power loss. Costs a disk flush each.
 * - `batched` (exclusive only): records are buffered and written every `flushIntervalMs` or
 *   `flushMaxRecords`: a crash loses at most the consumes acknowledged since the last flush
 *   (usage is then under-counted by at most that much; nothing is ever invented).
 * In every mode a torn write is an unacknowledged record and is discarded on replay.
 *
 * Bounded memory: a key whose usage is 0 or whose period has ended is equivalent to a fresh
 * key and is dropped (on replay, by a sweep of `sweepPerInsert` keys per new key, and at
 * compaction). At most `maxKeys` keys with usage in their period: a new key beyond that is
 * refused with QuotaKeysFullError (never admitted untracked). The journal is rewritten (tmp +
 * fsync + rename) to one record per live key once it passes `compactAtBytes` and twice its size
 * after the last compaction.
 */

import {
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { lockExclusiveWaiting, tryLockExclusive } from '../../store/file-lock.js';
import type { Clock } from '../clock.js';
import type { Decision } from '../decision.js';
import { QosConfigError, QosCostError, QosKeyError } from '../limiters/errors.js';
import {
  QuotaClosedError,
  QuotaExceededError,
  QuotaFileLockedError,
  QuotaLockTimeoutError,
  QuotaKeysFullError,
} from './errors.js';
import { closeQuietly, encodeRecord, type QuotaRecord, readFrom, replay } from './journal.js';
import { periodEnd, periodStartAt, type QuotaPlan, type QuotaPlanInput, quotaPlan } from './period.js';

export type QuotaSharing = 'exclusive' | 'shared';
export type QuotaDurability = 'batched' | 'write' | 'fsync';

/** Defaults, named. */
export const DEFAULT_QUOTA_MAX_KEYS = 1_000_000;
export const DEFAULT_QUOTA_MAX_KEY_LENGTH = 256;
export const DEFAULT_QUOTA_SWEEP_PER_INSERT = 4;
export const DEFAULT_QUOTA_FLUSH_INTERVAL_MS = 20;
export const DEFAULT_QUOTA_FLUSH_MAX_RECORDS = 1024;
export const DEFAULT_QUOTA_COMPACT_AT_BYTES = 4 * 1024 * 1024;
export const DEFAULT_QUOTA_LOCK_TIMEOUT_MS = 5_000;

export interface QuotasOptions {
  /** One plan for every key, or a resolver returning plans made by `quotaPlan` (cache them). */
  readonly plan: QuotaPlanInput | QuotaPlan | ((key: string) => QuotaPlan);
  /** The journal's path (e.g. `<store>/daemon/quotas.journal`); absent: in memory only. */
  readonly file?: string;
  /** Default `exclusive`. */
  readonly sharing?: QuotaSharing;
  /** Default `write`. */
  readonly durability?: QuotaDurability;
  readonly flushIntervalMs?: number;
  readonly flushMaxRecords?: number;
  readonly maxKeys?: number;
  readonly maxKeyLength?: number;
  readonly sweepPerInsert?: number;
  readonly compactAtBytes?: number;
  /** Shared files: how long an async call waits for the lock (default 5000 ms). */
  readonly lockTimeoutMs?: number;
  /** Wall clock in epoch ms (resets_at are calendar instants); default Date.now. */
  readonly wallClock?: Clock;
}

export interface QuotaState {
  readonly key: string;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  /** Epoch ms of the next reset; null when no period is running (rolling, unused) or `never`. */
  readonly resetsAt: number | null;
}

/**
 * A consume's answer. Unlike a rate limiter's refusal, `remaining` stays the true budget left
 * (a smaller amount may still fit); `retryAfterMs` is the time to resets_at.
 */
export interface QuotaDecision extends Decision, QuotaState {}

interface Entry {
  p: number;
  u: number;
}

const wallClock: Clock = { now: () => Date.now() };

export class Quotas {
  readonly #plan: (key: string) => QuotaPlan;
  readonly #clock: Clock;
  readonly #entries = new Map<string, Entry>();
  readonly #file: string | undefined;
  readonly #lockPath: string;
  readonly #sharing: QuotaSharing;
  readonly #durability: QuotaDurability;
  readonly #flushIntervalMs: number;
  readonly #flushMaxRecords: number;
  readonly #sweepPerInsert: number;
  readonly #compactAtBytes: number;
  readonly #lockTimeoutMs: number;
  readonly maxKeys: number;
  readonly maxKeyLength: number;
  #fd = -1;
  #ino = -1;
  /** Journal bytes replayed or written by us: where the next record goes. */
  #end = 0;
  #compactedSize = 0;
  #exclusiveLockFd = -1;
  #pending: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #cursor: MapIterator<[string, Entry]> | null = null;
  #closed = false;
  /** Complete journal lines skipped for a bad checksum or shape. */
  damagedRecords = 0;
  /** Bytes of torn records cut off the journal's end. */
  tornBytesCut = 0;
  compactions = 0;
  /** The last error of a background (batched) flush, if it failed; it is retried. */
  lastFlushError: unknown = undefined;

  constructor(options: QuotasOptions) {
    const path = 'quotas';
    if (typeof options !== 'object' || options === null) throw new QosConfigError(path, 'an object', options);
    const plan = options.plan;
    if (typeof plan === 'function') this.#plan = plan;
    else {
      const fixed = quotaPlan(plan, `${path}.plan`);
      this.#plan = () => fixed;
    }
    this.#clock = options.wallClock ?? wallClock;
    if (typeof this.#clock.now !== 'function')
      throw new QosConfigError(`${path}.wallClock`, 'a Clock', this.#clock);
    this.#sharing = oneOf(`${path}.sharing`, options.sharing ?? 'exclusive', [
      'exclusive',
      'shared',
    ] as const);
    this.#durability = oneOf(`${path}.durability`, options.durability ?? 'write', [
      'batched',
      'write',
      'fsync',
    ] as const);
    this.#flushIntervalMs = int(
      `${path}.flushIntervalMs`,
      options.flushIntervalMs ?? DEFAULT_QUOTA_FLUSH_INTERVAL_MS,
      1,
    );
    this.#flushMaxRecords = int(
      `${path}.flushMaxRecords`,
      options.flushMaxRecords ?? DEFAULT_QUOTA_FLUSH_MAX_RECORDS,
      1,
    );
    this.maxKeys = int(`${path}.maxKeys`, options.maxKeys ?? DEFAULT_QUOTA_MAX_KEYS, 1);
    this.maxKeyLength = int(`${path}.maxKeyLength`, options.maxKeyLength ?? DEFAULT_QUOTA_MAX_KEY_LENGTH, 1);
    this.#sweepPerInsert = int(
      `${path}.sweepPerInsert`,
      options.sweepPerInsert ?? DEFAULT_QUOTA_SWEEP_PER_INSERT,
      0,
    );
    this.#compactAtBytes = int(
      `${path}.compactAtBytes`,
      options.compactAtBytes ?? DEFAULT_QUOTA_COMPACT_AT_BYTES,
      1,
    );
    this.#lockTimeoutMs = int(
      `${path}.lockTimeoutMs`,
      options.lockTimeoutMs ?? DEFAULT_QUOTA_LOCK_TIMEOUT_MS,
      0,
    );
    this.#file = options.file;
    this.#lockPath = `${options.file}.lock`;
    if (this.#file === undefined) {
      if (this.#sharing === 'shared')
        throw new QosConfigError(`${path}.file`, 'a journal path when sharing is "shared"', undefined);
      return;
    }
    if (typeof this.#file !== 'string' || this.#file.length === 0)
      throw new QosConfigError(`${path}.file`, 'a path', this.#file);
    if (this.#sharing === 'shared' && this.#durability === 'batched') {
      throw new QosConfigError(
        `${path}.durability`,
        '"write" or "fsync" when sharing is "shared" (others must see each consume)',
        'batched',
      );
    }
    mkdirSync(dirname(this.#file), { recursive: true, mode: 0o750 });
    if (this.#sharing === 'exclusive') {
      const lockFd = openSync(this.#lockPath, 'a', 0o640);
      if (!tryLockExclusive(lockFd, this.#lockPath)) {
        closeQuietly(lockFd);
        throw new QuotaFileLockedError(this.#file);
      }
      this.#exclusiveLockFd = lockFd;
      this.#catchUp();
    } else {
      this.#withLockSync(() => undefined);
    }
  }

  /** Keys held in memory (live usage, plus not yet swept stale ones). */
  get keys(): number {
    return this.#entries.size;
  }

  /** Decide and, if allowed, record: synchronous (a shared file is waited for, blocking). */
  tryConsumeSync(key: string, amount = 1): QuotaDecision {
    this.#check(key, amount);
    return this.#withLockSync(() => this.#consume(key, amount));
  }

  /** Decide and, if allowed, record; a shared file's lock is waited for without blocking. */
  tryConsume(key: string, amount = 1): Promise<QuotaDecision> {
    try {
      this.#check(key, amount);
      if (this.#sharing === 'exclusive') return Promise.resolve(this.#consume(key, amount));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#withLockAsync(() => this.#consume(key, amount));
  }

  /** Consume all of `amount` or nothing: rejects with QuotaExceededError when it does not fit. */
  async consume(key: string, amount = 1): Promise<QuotaDecision> {
    const d = await this.tryConsume(key, amount);
    if (!d.allowed) throw new QuotaExceededError(key, d.limit, d.used, amount, d.resetsAt);
    return d;
  }

  /** Empty the key's usage now (a rolling period starts again at its next consume). */
  resetSync(key: string): void {
    this.#check(key, 0);
    this.#withLockSync(() => this.#record(key, 0, 0));
  }

  reset(key: string): Promise<void> {
    try {
      this.#check(key, 0);
      if (this.#sharing === 'exclusive') return Promise.resolve(this.#record(key, 0, 0));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#withLockAsync(() => this.#record(key, 0, 0));
  }

  /** limit / used / resets_at as of now (a shared file is read up to date first). */
  getSync(key: string): QuotaState {
    this.#check(key, 0);
    return this.#withLockSync(() => this.#state(key, this.#clock.now()));
  }

  get(key: string): Promise<QuotaState> {
    try {
      this.#check(key, 0);
      if (this.#sharing === 'exclusive') return Promise.resolve(this.#state(key, this.#clock.now()));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#withLockAsync(() => this.#state(key, this.#clock.now()));
  }

  /**
   * Every key with usage in a running period, as of now (in memory: a shared file is not read
   * first). For metrics; O(keys).
   */
  *live(): IterableIterator<QuotaState> {
    if (this.#closed) return;
    const now = this.#clock.now();
    for (const [key, e] of this.#entries) {
      const plan = this.#plan(key);
      const end = periodEnd(plan, e.p);
      if (!(now < end)) continue;
      yield {
        key,
        limit: plan.limit,
        used: e.u,
        remaining: Math.max(0, plan.limit - e.u),
        resetsAt: Number.isFinite(end) ? end : null,
      };
    }
  }

  /** Write buffered records (batched durability) now. */
  flush(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#pending.length === 0 || this.#fd < 0) return;
    const text = this.#pending.join('');
    this.#writeAll(text);
    this.#pending = [];
  }

  /** Flush, release the lock, close the journal. Further calls throw QuotaClosedError. */
  close(): void {
    if (this.#closed) return;
    try {
      this.flush();
    } finally {
      this.#closed = true;
      if (this.#fd >= 0) closeQuietly(this.#fd);
      if (this.#exclusiveLockFd >= 0) closeQuietly(this.#exclusiveLockFd);
      this.#fd = -1;
      this.#exclusiveLockFd = -1;
    }
  }

  // ---- decisions (synchronous; the caller holds the lock and has caught up) ----

  #consume(key: string, amount: number): QuotaDecision {
    const plan = this.#plan(key);
    if (amount > plan.limit) throw new QosCostError(amount, plan.limit);
    const now = this.#clock.now();
    const e = this.#live(key, plan, now);
    const start = e ? e.p : periodStartAt(plan, now);
    const used = e ? e.u : 0;
    const end = periodEnd(plan, start);
    if (amount > plan.limit - used) {
      return decision(key, plan.limit, used, false, now, used > 0 ? end : null, plan);
    }
    if (amount === 0) return decision(key, plan.limit, used, true, now, used > 0 ? end : null, plan);
    if (!e && !this.#entries.has(key)) this.#admitNewKey(now);
    this.#record(key, start, used + amount);
    return decision(key, plan.limit, used + amount, true, now, end, plan);
  }

  #state(key: string, now: number): QuotaState {
    const plan = this.#plan(key);
    const e = this.#live(key, plan, now);
    if (!e) {
      const resetsAt =
        plan.align === 'utc' && plan.period !== 'never' ? periodEnd(plan, periodStartAt(plan, now)) : null;
      return { key, limit: plan.limit, used: 0, remaining: plan.limit, resetsAt };
    }
    const end = periodEnd(plan, e.p);
    return {
      key,
      limit: plan.limit,
      used: e.u,
      remaining: Math.max(0, plan.limit - e.u),
      resetsAt: Number.isFinite(end) ? end : null,
    };
  }

  /** The key's entry if its period is still running at `now`. */
  #live(key: string, plan: QuotaPlan, now: number): Entry | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    return now < periodEnd(plan, e.p) ? e : undefined;
  }

  /** Journal first (a failed write changes nothing), then memory; batched: memory, then later the journal. */
  #record(key: string, p: number, u: number): void {
    if (this.#closed) throw new QuotaClosedError();
    if (this.#file !== undefined) {
      const line = encodeRecord({ k: key, p, u });
      if (this.#durability === 'batched') {
        // Acknowledged before it is written (the batched trade-off): memory first, then a flush
        // whose failure is kept and retried rather than thrown at a caller already answered.
        this.#pending.push(line);
        this.#apply({ k: key, p, u });
        if (this.#pending.length >= this.#flushMaxRecords) this.#backgroundFlush();
        else if (!this.#timer) {
          this.#timer = setTimeout(() => this.#backgroundFlush(), this.#flushIntervalMs);
          this.#timer.unref();
        }
        return;
      }
      this.#writeAll(line);
      if (this.#durability === 'fsync') fdatasyncSync(this.#fd);
    }
    this.#apply({ k: key, p, u });
    this.#maybeCompact();
  }

  #maybeCompact(): void {
    if (this.#file !== undefined && this.#end > this.#compactAtBytes && this.#end > 2 * this.#compactedSize) {
      this.#compact();
    }
  }

  #apply(r: QuotaRecord): void {
    if (r.u === 0) {
      this.#entries.delete(r.k);
      return;
    }
    const e = this.#entries.get(r.k);
    if (e) {
      e.p = r.p;
      e.u = r.u;
    } else this.#entries.set(r.k, { p: r.p, u: r.u });
  }

  /** Before inserting a key: sweep a few stale keys; when full, sweep all; refuse if still full. */
  #admitNewKey(now: number): void {
    this.#sweep(this.#sweepPerInsert, now);
    if (this.#entries.size < this.maxKeys) return;
    this.#sweep(this.#entries.size, now);
    if (this.#entries.size >= this.maxKeys) throw new QuotaKeysFullError(this.maxKeys);
  }

  #sweep(count: number, now: number): void {
    for (let i = 0; i < count && this.#entries.size > 0; i++) {
      let next = this.#cursor?.next();
      if (!next || next.done) {
        this.#cursor = this.#entries.entries();
        next = this.#cursor.next();
        if (next.done) return;
      }
      const [key, e] = next.value;
      // Deleting the entry the iterator just yielded is safe for Map iteration.
      if (!(now < periodEnd(this.#plan(key), e.p))) this.#entries.delete(key);
    }
  }

  #check(key: string, amount: number): void {
    if (this.#closed) throw new QuotaClosedError();
    if (typeof key !== 'string' || key.length === 0 || key.length > this.maxKeyLength) {
      throw new QosKeyError('key', `a non-empty string of at most ${this.maxKeyLength} characters`, key);
    }
    if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount < 0) {
      throw new QosCostError(amount, this.#plan(key).limit);
    }
  }

  // ---- the journal ----

  #withLockSync<T>(fn: () => T): T {
    if (this.#sharing === 'exclusive' || this.#file === undefined) return fn();
    const lockFd = openSync(this.#lockPath, 'a', 0o640);
    try {
      lockExclusiveWaiting(lockFd, this.#lockPath);
      this.#catchUp();
      return fn();
    } finally {
      closeQuietly(lockFd); // closing the description releases the flock
    }
  }

  async #withLockAsync<T>(fn: () => T): Promise<T> {
    const started = performance.now();
    let waitMs = 0;
    for (;;) {
      if (this.#closed) throw new QuotaClosedError();
      const lockFd = openSync(this.#lockPath, 'a', 0o640);
      try {
        if (tryLockExclusive(lockFd, this.#lockPath)) {
          this.#catchUp();
          return fn();
        }
      } finally {
        closeQuietly(lockFd);
      }
      const waited = performance.now() - started;
      if (waited >= this.#lockTimeoutMs) throw new QuotaLockTimeoutError(this.#lockPath, Math.round(waited));
      // Back off from 0 (next macrotask) doubling to 4 ms: critical sections are microseconds.
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      waitMs = Math.min(4, waitMs === 0 ? 0.5 : waitMs * 2);
    }
  }

  /** Read what was appended since we last looked; follow a compaction (new inode) from 0. */
  #catchUp(): void {
    const file = this.#file as string;
    if (this.#fd >= 0) {
      let ino = -1;
      try {
        ino = statSync(file).ino;
      } catch {
        // removed: reopen creates it
      }
      if (ino !== this.#ino) {
        closeQuietly(this.#fd);
        this.#fd = -1;
      }
    }
    if (this.#fd < 0) {
      this.#fd = openSync(file, 'a+', 0o640);
      this.#ino = fstatSync(this.#fd).ino;
      this.#entries.clear();
      this.#cursor = null;
      this.#end = 0;
    }
    const buf = readFrom(this.#fd, this.#end);
    if (buf.length === 0) return;
    const r = replay(buf, this.#end, (rec) => this.#apply(rec));
    this.damagedRecords += r.damaged;
    this.#end = r.end;
    if (r.tornBytes > 0) {
      // Written by a process that died mid-write (we hold the lock): never acknowledged.
      ftruncateSync(this.#fd, r.end);
      this.tornBytesCut += r.tornBytes;
    }
    if (this.#compactedSize === 0) this.#compactedSize = this.#end;
  }

  #writeAll(text: string): void {
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.#fd, buf, off, buf.length - off);
    } catch (err) {
      // Leave no partial record behind for the next writer to trip over.
      if (off > 0) ftruncateSync(this.#fd, this.#end);
      throw err;
    }
    this.#end += buf.length;
  }

  #backgroundFlush(): void {
    this.#timer = undefined;
    try {
      this.flush();
      this.#maybeCompact();
      this.lastFlushError = undefined;
    } catch (err) {
      this.lastFlushError = err;
      this.#timer = setTimeout(() => this.#backgroundFlush(), this.#flushIntervalMs);
      this.#timer.unref();
    }
  }

  /** Rewrite the journal as one record per live key: tmp + fsync + rename + fsync(dir). */
  #compact(): void {
    this.flush();
    const file = this.#file as string;
    const tmp = `${file}.compact-tmp`;
    const now = this.#clock.now();
    const lines: string[] = [];
    for (const [k, e] of this.#entries) {
      if (now < periodEnd(this.#plan(k), e.p)) lines.push(encodeRecord({ k, p: e.p, u: e.u }));
      else this.#entries.delete(k);
    }
    const bytes = Buffer.from(lines.join(''), 'utf8');
    const fd = openSync(tmp, 'w', 0o640);
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fdatasyncSync(fd);
    } finally {
      closeQuietly(fd);
    }
    renameSync(tmp, file);
    const dirFd = openSync(dirname(file), 'r');
    try {
      fdatasyncSync(dirFd);
    } finally {
      closeQuietly(dirFd);
    }
    closeQuietly(this.#fd);
    this.#fd = openSync(file, 'a+', 0o640);
    this.#ino = fstatSync(this.#fd).ino;
    this.#end = bytes.length;
    this.#compactedSize = bytes.length;
    this.#cursor = null;
    this.compactions++;
  }
}

function decision(
  key: string,
  limit: number,
  used: number,
  allowed: boolean,
  now: number,
  end: number | null,
  plan: QuotaPlan,
): QuotaDecision {
  const resetsAt = end !== null && Number.isFinite(end) ? end : null;
  const untilReset = end === null ? 0 : Math.max(0, end - now);
  // A refused consume waits for the reset; a `never` quota's reset never comes: Infinity.
  const retryAfterMs = allowed ? 0 : plan.period === 'never' ? Number.POSITIVE_INFINITY : untilReset;
  return {
    allowed,
    key,
    limit,
    used,
    remaining: Math.max(0, limit - used),
    resetsAt,
    retryAfterMs,
    resetAfterMs: used > 0 ? untilReset : 0,
  };
}

function oneOf<T extends string>(path: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new QosConfigError(path, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, v);
  }
  return v as T;
}

function int(path: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new QosConfigError(path, `an integer ≥ ${min}`, v);
  }
  return v;
}
