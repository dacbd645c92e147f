/**
 * The prepared-program cache: one entry per (sandbox spec, build), bounded, least recently
 * used out first.
 *
 * A prepared program holds resources until it is disposed: a loaded BPF object keeps its
 * program and map fds, a WASM module its compiled code and instance memory. Without a bound,
 * a process that runs many distinct builds runs out of file descriptors (EMFILE) or memory.
 * The cache counts entries and what each holds (Backend.cost: fds and bytes) against three
 * budgets; an entry that falls out is disposed through its backend — but never while an
 * execution uses it: executions pin their entry, and an evicted entry is disposed when its
 * last pin goes.
 *
 * The hot path (a hit) is a lookup plus a recency bump, which is a pointer compare when the
 * entry is already the most recent one; entries form a doubly linked list, oldest first.
 */

import { readFileSync } from 'node:fs';
import { ValidationError } from './errors.js';
import type { Backend, Prepared, PreparedCost, SandboxSpec } from './types.js';

export interface PreparedCacheLimits {
  /** Most prepared programs kept at once, across every sandbox. */
  readonly maxPrograms: number;
  /** Most file descriptors they may hold together (BPF objects: one per map and program, +1). */
  readonly maxFds: number;
  /** Most memory they may hold together, as the backends estimate it. */
  readonly maxBytes: number;
}

export const DEFAULT_PREPARED_CACHE_LIMITS: PreparedCacheLimits = Object.freeze({
  maxPrograms: 256,
  maxFds: 256,
  maxBytes: 1 << 30,
});

/**
 * The default fd budget: DEFAULT_PREPARED_CACHE_LIMITS.maxFds, but never more than a quarter of
 * the process's soft RLIMIT_NOFILE (read from /proc/self/limits where there is one), so that
 * cached programs leave the rest of the process (the store, sockets, workers) room to open files.
 */
export function defaultMaxFds(): number {
  let soft = Number.POSITIVE_INFINITY;
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (line) soft = Number(line[1]);
  } catch {
    // not Linux, or no procfs: the fixed default
  }
  return Math.max(1, Math.min(DEFAULT_PREPARED_CACHE_LIMITS.maxFds, Math.floor(soft / 4)));
}

const LIMIT_MAX: Readonly<Record<keyof PreparedCacheLimits, number>> = {
  maxPrograms: 1 << 20,
  maxFds: 1 << 20,
  maxBytes: Number.MAX_SAFE_INTEGER,
};

/** Validate cache limits (each an integer in [1, bound]); the defaults fill what is unset. */
export function preparedCacheLimits(
  given: Partial<PreparedCacheLimits> | undefined,
  path: string,
): PreparedCacheLimits {
  const limits = { ...DEFAULT_PREPARED_CACHE_LIMITS, maxFds: defaultMaxFds() };
  for (const name of Object.keys(LIMIT_MAX) as (keyof PreparedCacheLimits)[]) {
    const value = given?.[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > LIMIT_MAX[name]) {
      throw new ValidationError(
        'range',
        `${path}.${name}`,
        `an integer in [1, ${LIMIT_MAX[name]}]`,
        String(value),
      );
    }
    limits[name] = value;
  }
  return Object.freeze(limits);
}

const NO_COST: PreparedCost = Object.freeze({ fds: 0, bytes: 0 });

export class PreparedEntry {
  /** The prepared program once its prepare resolved (executions then skip an await). */
  ready: Prepared | undefined = undefined;
  /** Counted against the budgets from the moment the prepare resolved. */
  cost: PreparedCost = NO_COST;
  /** Executions using this entry now. */
  pins = 0;
  /** Out of the cache: disposed once no execution pins it. */
  evicted = false;
  /** @internal list links, oldest → newest */
  older: PreparedEntry | undefined = undefined;
  newer: PreparedEntry | undefined = undefined;
  /** @internal set by the cache */
  promise!: Promise<Prepared>;

  constructor(
    readonly spec: SandboxSpec,
    readonly buildId: string,
    readonly backend: Backend,
  ) {}
}

export interface PreparedCacheStats {
  readonly programs: number;
  readonly fds: number;
  readonly bytes: number;
  readonly limits: PreparedCacheLimits;
}

export class PreparedCache {
  readonly limits: PreparedCacheLimits;
  readonly #bySpec = new WeakMap<SandboxSpec, Map<string, PreparedEntry>>();
  #oldest: PreparedEntry | undefined;
  #newest: PreparedEntry | undefined;
  #programs = 0;
  #fds = 0;
  #bytes = 0;
  /** Disposals started and not yet finished (close waits for them). */
  readonly #disposing = new Set<Promise<void>>();

  constructor(limits: PreparedCacheLimits) {
    this.limits = limits;
  }

  stats(): PreparedCacheStats {
    return { programs: this.#programs, fds: this.#fds, bytes: this.#bytes, limits: this.limits };
  }

  find(spec: SandboxSpec, buildId: string): PreparedEntry | undefined {
    return this.#bySpec.get(spec)?.get(buildId);
  }

  /** Mark an entry most recently used. */
  touch(entry: PreparedEntry): void {
    if (entry === this.#newest || entry.evicted) return;
    this.#unlink(entry);
    this.#append(entry);
  }

  /**
   * A new entry for (spec, buildId), preparing with `prepare`; it starts pinned once (the
   * caller's execution) so that making room for it can never evict it.
   */
  add(spec: SandboxSpec, buildId: string, backend: Backend, prepare: () => Promise<Prepared>): PreparedEntry {
    let perBuild = this.#bySpec.get(spec);
    if (perBuild === undefined) {
      perBuild = new Map();
      this.#bySpec.set(spec, perBuild);
    }
    const entry = new PreparedEntry(spec, buildId, backend);
    entry.pins = 1;
    perBuild.set(buildId, entry);
    this.#append(entry);
    this.#programs++;
    entry.promise = prepare();
    entry.promise.then(
      (prepared) => {
        entry.ready = prepared;
        if (entry.evicted) return; // disposed by #release once unpinned
        entry.cost = costOf(backend, prepared);
        this.#fds += entry.cost.fds;
        this.#bytes += entry.cost.bytes;
        this.#evictOverBudget();
      },
      // A failed prepare is not cached: the next execution reports the refusal afresh.
      () => {
        if (!entry.evicted) this.#remove(entry);
      },
    );
    this.#evictOverBudget();
    return entry;
  }

  pin(entry: PreparedEntry): void {
    entry.pins++;
  }

  unpin(entry: PreparedEntry): void {
    if (--entry.pins !== 0) return;
    if (entry.evicted) this.#release(entry);
    // Programs added while every entry was pinned left the cache over budget: catch up now.
    else if (this.#over()) this.#evictOverBudget();
  }

  /** Take an entry out (disposed now, or when its last execution ends); resolves once disposed. */
  evict(entry: PreparedEntry): Promise<void> {
    if (!entry.evicted) this.#remove(entry);
    return this.#settled();
  }

  /** Evict every entry no execution uses (to relieve fd pressure); resolves once they are disposed. */
  evictIdle(): Promise<void> {
    for (let e = this.#oldest; e !== undefined; ) {
      const next = e.newer;
      if (e.pins === 0) this.#remove(e);
      e = next;
    }
    return this.#settled();
  }

  /** Evict everything; pinned entries are disposed when their executions end. */
  clear(): Promise<void> {
    while (this.#oldest !== undefined) this.#remove(this.#oldest);
    return this.#settled();
  }

  #settled(): Promise<void> {
    return Promise.all(this.#disposing).then(() => undefined);
  }

  #over(): boolean {
    const l = this.limits;
    return this.#programs > l.maxPrograms || this.#fds > l.maxFds || this.#bytes > l.maxBytes;
  }

  /** Oldest unpinned entries out until the budgets hold (or only pinned entries remain). */
  #evictOverBudget(): void {
    for (let e = this.#oldest; e !== undefined && this.#over(); ) {
      const next = e.newer;
      if (e.pins === 0) this.#remove(e);
      e = next;
    }
  }

  #remove(entry: PreparedEntry): void {
    entry.evicted = true;
    const perBuild = this.#bySpec.get(entry.spec);
    if (perBuild?.get(entry.buildId) === entry) perBuild.delete(entry.buildId);
    this.#unlink(entry);
    this.#programs--;
    this.#fds -= entry.cost.fds;
    this.#bytes -= entry.cost.bytes;
    if (entry.pins === 0) this.#release(entry);
  }

  /** Dispose an evicted, unpinned entry's program through its backend (after its prepare settles). */
  #release(entry: PreparedEntry): void {
    const done = entry.promise.then(
      (prepared) => entry.backend.dispose(prepared),
      () => undefined, // nothing was prepared
    );
    const tracked = done.catch(() => undefined).finally(() => this.#disposing.delete(tracked));
    this.#disposing.add(tracked);
  }

  #append(entry: PreparedEntry): void {
    entry.older = this.#newest;
    entry.newer = undefined;
    if (this.#newest !== undefined) this.#newest.newer = entry;
    else this.#oldest = entry;
    this.#newest = entry;
  }

  #unlink(entry: PreparedEntry): void {
    if (entry.older !== undefined) entry.older.newer = entry.newer;
    else if (this.#oldest === entry) this.#oldest = entry.newer;
    if (entry.newer !== undefined) entry.newer.older = entry.older;
    else if (this.#newest === entry) this.#newest = entry.older;
    entry.older = undefined;
    entry.newer = undefined;
  }
}

/** The backend's account of what a prepared program holds; a throwing or odd answer counts as 0. */
function costOf(backend: Backend, prepared: Prepared): PreparedCost {
  if (backend.cost === undefined) return NO_COST;
  try {
    const c = backend.cost(prepared);
    const fds = Number.isSafeInteger(c.fds) && c.fds > 0 ? c.fds : 0;
    const bytes = Number.isSafeInteger(c.bytes) && c.bytes > 0 ? c.bytes : 0;
    return { fds, bytes };
  } catch {
    return NO_COST;
  }
}
