/**
 * The keyed store every limiter shares: a Map from key to a slot number, and per-slot state in
 * typed arrays owned by the limiter (no object per key, so 1M keys cost no GC pressure).
 *
 * Bounded memory without changing decisions: a key is evicted only once its state is
 * equivalent to a fresh key's (a full bucket, a TAT in the past, a window log or counter whose
 * entries have all expired) — at that point forgetting it and recreating it later answers every
 * future check identically. Each insert of a new key examines `sweepPerInsert` stored keys (a
 * cursor that walks the Map round robin) and frees those that are fresh, so idle keys leave at
 * the rate new ones arrive, once the store is half full (below that, idle keys stay: evicting
 * and re-inserting them costs more than it saves). Those sweeps free only keys fresh for at
 * least `idleMs` (default 10 s): a key in use, fresh again between its checks, is not evicted
 * only to be inserted again at its next check (with a working set near `maxKeys` that churn
 * made nearly every check an insert). When `maxKeys` are stored, one full sweep runs and frees
 * every fresh key; if no key is fresh
 * the store is full: the new key is refused (never admitted without state, which would admit
 * without limit) with a retry time of the earliest moment a stored key becomes fresh, and no
 * further sweeps run until then.
 */

import type { Clock } from '../clock.js';
import type { Decision, Limiter } from '../decision.js';
import { QosCostError, QosKeyError } from './errors.js';
import {
  clockMicros,
  DEFAULT_MAX_KEY_LENGTH,
  DEFAULT_MAX_KEYS,
  DEFAULT_SWEEP_PER_INSERT,
  nonNegativeInteger,
  positiveInteger,
} from './validate.js';

export interface KeyStoreOptions {
  /** Most keys with state at once (default 1,000,000). */
  readonly maxKeys?: number;
  /** Stored keys examined for eviction per new key (default 4). */
  readonly sweepPerInsert?: number;
  /** Longest accepted key in UTF-16 code units (default 256). */
  readonly maxKeyLength?: number;
  /** How long a key must have been fresh before an insert's sweep frees it (default 10,000 ms). */
  readonly idleMs?: number;
}

/** Default of KeyStoreOptions.idleMs. */
export const DEFAULT_IDLE_MS = 10_000;

/** Slots allocated before the first growth. */
const INITIAL_SLOTS = 1024;

/** What a limiter offers a composite: two phases per key so a refusal consumes nothing. */
export interface SlotLimiter {
  /** The slot holding `key`'s state, created fresh if absent; -1 when the store is full. */
  slotFor(key: string, nowUs: number): number;
  /** µs until `cost` fits for this slot at nowUs (0: now). Changes no state. */
  waitSlot(slot: number, cost: number, nowUs: number): number;
  /** Take `cost`; the caller has seen waitSlot return 0 at the same nowUs. */
  takeSlot(slot: number, cost: number, nowUs: number): void;
  remainingSlot(slot: number, nowUs: number): number;
  resetAfterUsSlot(slot: number, nowUs: number): number;
  /** µs until a full store can take a new key (only meaningful after slotFor returned -1). */
  fullWaitUs(nowUs: number): number;
  readonly limit: number;
  readonly maxCost: number;
  validateKey(key: string): void;
}

export abstract class KeyedLimiter implements Limiter, SlotLimiter {
  /** The limit that decides (bucket size, burst, requests per window): Decision.limit. */
  abstract readonly limit: number;
  /** The largest cost one check may ask for. */
  abstract readonly maxCost: number;

  protected readonly clock: Clock;
  protected readonly index = new Map<string, number>();
  protected capacity = 0;
  readonly maxKeys: number;
  readonly maxKeyLength: number;
  readonly #sweepPerInsert: number;
  readonly #idleUs: number;
  readonly #free: number[] = [];
  #nextSlot = 0;
  #cursor: MapIterator<[string, number]> | null = null;
  #fullUntilUs = -Infinity;
  /** Keys freed because their state had become fresh. */
  evictions = 0;
  /** New keys refused because the store was full of non-fresh keys. */
  storeFullRefusals = 0;

  constructor(clock: Clock, options: KeyStoreOptions | undefined, path: string) {
    this.clock = clock;
    this.maxKeys = positiveInteger(`${path}.maxKeys`, options?.maxKeys ?? DEFAULT_MAX_KEYS, 2 ** 31);
    this.#sweepPerInsert = nonNegativeInteger(
      `${path}.sweepPerInsert`,
      options?.sweepPerInsert ?? DEFAULT_SWEEP_PER_INSERT,
      1 << 20,
    );
    this.#idleUs =
      1000 * nonNegativeInteger(`${path}.idleMs`, options?.idleMs ?? DEFAULT_IDLE_MS, 86_400_000);
    this.maxKeyLength = positiveInteger(
      `${path}.maxKeyLength`,
      options?.maxKeyLength ?? DEFAULT_MAX_KEY_LENGTH,
      1 << 20,
    );
  }

  /** Keys with state now. */
  get size(): number {
    return this.index.size;
  }

  /** Allocate per-slot arrays for `capacity` slots, keeping slots below the old capacity. */
  protected abstract grow(capacity: number): void;
  /** Give a new or reused slot a fresh key's state at nowUs. */
  protected abstract initSlot(slot: number, nowUs: number): void;
  /** The µs time from which this slot's state equals a fresh key's. */
  protected abstract freshAtUs(slot: number): number;
  abstract waitSlot(slot: number, cost: number, nowUs: number): number;
  abstract takeSlot(slot: number, cost: number, nowUs: number): void;
  abstract remainingSlot(slot: number, nowUs: number): number;
  abstract resetAfterUsSlot(slot: number, nowUs: number): number;

  validateKey(key: string): void {
    if (!(key?.length > 0 && key.length <= this.maxKeyLength)) this.#badKey(key);
  }

  #badKey(key: unknown): never {
    throw new QosKeyError(
      'key',
      `a non-empty string of at most ${this.maxKeyLength} code units`,
      typeof key === 'string' ? `${key.length} code units` : key,
    );
  }

  protected validateCost(cost: number): void {
    if (!(cost >= 0 && cost <= this.maxCost && Math.floor(cost) === cost)) {
      throw new QosCostError(cost, this.maxCost);
    }
  }

  slotFor(key: string, nowUs: number): number {
    const slot = this.index.get(key);
    return slot === undefined ? this.#insert(key, nowUs) : slot;
  }

  #insert(key: string, nowUs: number): number {
    if (typeof key !== 'string') this.#badKey(key);
    if (this.index.size >= this.maxKeys) {
      if (nowUs < this.#fullUntilUs || !this.#sweepAll(nowUs)) {
        this.storeFullRefusals++;
        return -1;
      }
    } else if (this.#sweepPerInsert > 0 && this.index.size >= this.maxKeys >>> 1) {
      // Below half full, keep idle keys: evicting them only to re-insert them on their next
      // check costs a Map delete and set each (at 1M keys, most of a check).
      this.#sweepSome(nowUs);
    }
    let slot = this.#free.pop();
    if (slot === undefined) {
      slot = this.#nextSlot++;
      if (slot >= this.capacity) {
        const next = Math.min(Math.max(INITIAL_SLOTS, this.capacity * 2), this.maxKeys);
        this.grow(next);
        this.capacity = next;
      }
    }
    this.initSlot(slot, nowUs);
    this.index.set(key, slot);
    return slot;
  }

  /** Examine the next few keys round robin; free the fresh ones. */
  #sweepSome(nowUs: number): void {
    let restarted = false;
    for (let i = 0; i < this.#sweepPerInsert; i++) {
      this.#cursor ??= this.index.entries();
      const next = this.#cursor.next();
      if (next.done) {
        this.#cursor = null;
        if (restarted || this.index.size === 0) return;
        restarted = true;
        i--;
        continue;
      }
      const [key, slot] = next.value;
      if (this.freshAtUs(slot) <= nowUs - this.#idleUs) this.#evict(key, slot);
    }
  }

  /** Free every fresh key; false (and the time until one frees) when none is. */
  #sweepAll(nowUs: number): boolean {
    let earliest = Infinity;
    const before = this.index.size;
    for (const [key, slot] of this.index) {
      const at = this.freshAtUs(slot);
      if (at <= nowUs) this.#evict(key, slot);
      else if (at < earliest) earliest = at;
    }
    this.#cursor = null;
    if (this.index.size < before) return true;
    this.#fullUntilUs = earliest;
    return false;
  }

  #evict(key: string, slot: number): void {
    this.index.delete(key);
    this.#free.push(slot);
    this.evictions++;
  }

  fullWaitUs(nowUs: number): number {
    return Math.max(1, this.#fullUntilUs - nowUs);
  }

  /**
   * The hot path with the caller's time (integer µs, e.g. once per request or batch): 0 when
   * admitted (and taken), else µs until it could be.
   */
  acquireAt(key: string, cost: number, nowUs: number): number {
    if (!(key?.length > 0 && key.length <= this.maxKeyLength)) this.#badKey(key);
    if (cost !== 1) this.validateCost(cost);
    const slot = this.slotFor(key, nowUs);
    if (slot < 0) return this.fullWaitUs(nowUs);
    const wait = this.waitSlot(slot, cost, nowUs);
    if (wait === 0) this.takeSlot(slot, cost, nowUs);
    return wait;
  }

  tryAcquireAt(key: string, cost: number, nowUs: number): boolean {
    return this.acquireAt(key, cost, nowUs) === 0;
  }

  /** Allowed or not, without building a Decision: the fast boolean path. */
  tryAcquire(key: string, cost = 1): boolean {
    return this.acquireAt(key, cost, clockMicros(this.clock)) === 0;
  }

  check(key: string, cost = 1): Decision {
    return this.checkAt(key, cost, clockMicros(this.clock));
  }

  checkAt(key: string, cost: number, nowUs: number): Decision {
    const wait = this.acquireAt(key, cost, nowUs);
    const slot = this.index.get(key);
    if (slot === undefined) {
      // Refused because the store is full: nothing is known about this key yet.
      return {
        allowed: false,
        limit: this.limit,
        remaining: 0,
        retryAfterMs: wait / 1000,
        resetAfterMs: wait / 1000,
      };
    }
    return {
      allowed: wait === 0,
      limit: this.limit,
      remaining: wait === 0 ? this.remainingSlot(slot, nowUs) : 0,
      retryAfterMs: wait / 1000,
      resetAfterMs: this.resetAfterUsSlot(slot, nowUs) / 1000,
    };
  }
}
