/**
 * The execution queue: four priority classes served in strict order (critical before high before
 * medium before low: a lower class runs only when every higher class is empty), each class a
 * deficit-round-robin fair queue across actors with its own bounds and its own CoDel state.
 *
 * - Bounds at the door: a class holds at most `maxSize` items and one actor at most
 *   `maxPerActor` of them; beyond, `enqueue` throws QueueDropError ('class-full' / 'actor-full').
 * - Deadlines: an item whose deadline has passed is dropped when dequeue meets it ('deadline'),
 *   never returned. An item is returned only if `now < deadline` at that dequeue.
 * - Shedding by delay: CoDel per class ('queue-delay'), sojourn measured on the injected Clock.
 *
 * Every drop goes to `onDrop` with a typed error and is counted per class and reason.
 * Cost per operation: O(1) enqueue; O(1) dequeue plus O(1) per item dropped (each item is
 * dropped at most once), plus the 4 classes. Strict priority can starve lower classes under
 * sustained higher-class load: their deadlines, bounds and CoDel then shed them rather than let
 * them wait without end.
 */

import type { Clock } from '../clock.js';
import { CODEL_DEFAULTS, type CoDelOptions, CoDelState } from './codel.js';
import { QosConfigError, QueueDropError, type QueueDropReason } from './errors.js';
import { FAIR_QUEUE_DEFAULTS, FairQueue, type QueuedItem } from './fair-queue.js';

export const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

export interface PriorityClassOptions {
  /** Items the class holds at most (default 1024). */
  readonly maxSize?: number;
  /** Items one actor holds in the class at most (default: maxSize, i.e. no per-actor bound). */
  readonly maxPerActor?: number;
  /** CoDel shedding by queue delay (default RFC 8289's 5 ms / 100 ms); false: length bounds only. */
  readonly codel?: CoDelOptions | false;
}

export const DEFAULT_CLASS_MAX_SIZE = 1024;

export interface PriorityFairQueueOptions<T> {
  readonly classes?: Partial<Record<Priority, PriorityClassOptions>>;
  /** DRR credit per turn for weight 1 (default 1; ≥ maxItemCost). */
  readonly quantum?: number;
  /** Largest cost of one item (default 1). */
  readonly maxItemCost?: number;
  /** Per-actor weight ≥ 1, asked when an actor's first item is queued in a class (default 1). */
  readonly weight?: (actor: string) => number;
  /** Told of every item dropped at or after dequeue (deadline, queue-delay, closed). */
  readonly onDrop?: (value: T, error: QueueDropError) => void;
}

export interface EnqueueOptions {
  readonly actor: string;
  readonly priority?: Priority;
  /** Fair-share cost (default 1, at most maxItemCost). */
  readonly cost?: number;
  /** Absolute time on the queue's clock after which the item must not run (default: none). */
  readonly deadline?: number;
}

/** Counters per class (monotonic, for metrics) and its depth. */
export interface QueueClassCounts {
  depth: number;
  enqueued: number;
  dequeued: number;
  refusedClassFull: number;
  refusedActorFull: number;
  expired: number;
  shed: number;
  closed: number;
}

class PriorityClass<T> {
  readonly fair: FairQueue<T>;
  readonly codel: CoDelState | null;
  readonly counts: QueueClassCounts = {
    depth: 0,
    enqueued: 0,
    dequeued: 0,
    refusedClassFull: 0,
    refusedActorFull: 0,
    expired: 0,
    shed: 0,
    closed: 0,
  };
  constructor(
    readonly name: Priority,
    readonly maxSize: number,
    readonly maxPerActor: number,
    codel: CoDelOptions | false,
    fair: FairQueue<T>,
  ) {
    this.fair = fair;
    this.codel = codel === false ? null : new CoDelState(codel);
  }
}

function checkCount(path: string, v: unknown): number {
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= 0))
    throw new QosConfigError(path, 'an integer ≥ 0', v);
  return v;
}

function checkPositive(path: string, v: unknown): number {
  if (!(typeof v === 'number' && Number.isFinite(v) && v > 0))
    throw new QosConfigError(path, 'a finite number > 0', v);
  return v;
}

export class PriorityFairQueue<T> {
  readonly #clock: Clock;
  readonly #classes: readonly PriorityClass<T>[];
  readonly #byName: Readonly<Record<Priority, PriorityClass<T>>>;
  readonly #onDrop: ((value: T, error: QueueDropError) => void) | undefined;
  readonly #maxItemCost: number;
  #length = 0;
  #closed = false;
  // Bound once: pop's expiry callback must not allocate per dequeue.
  #expiring: PriorityClass<T> | null = null;
  readonly #onExpired = (item: QueuedItem<T>): void => {
    const c = this.#expiring!;
    c.counts.expired++;
    c.counts.depth--;
    this.#length--;
    this.#drop(
      c,
      item,
      'deadline',
      `deadline passed ${this.#clock.now() - item.deadline} ms before it could run`,
    );
    c.fair.recycle(item);
  };

  constructor(clock: Clock, options: PriorityFairQueueOptions<T> = {}) {
    this.#clock = clock;
    this.#onDrop = options.onDrop;
    const quantum = options.quantum ?? FAIR_QUEUE_DEFAULTS.quantum;
    const maxItemCost = options.maxItemCost ?? FAIR_QUEUE_DEFAULTS.maxItemCost;
    this.#maxItemCost = maxItemCost;
    const byName = {} as Record<Priority, PriorityClass<T>>;
    this.#classes = PRIORITIES.map((name) => {
      const o = options.classes?.[name] ?? {};
      const path = `classes.${name}`;
      const maxSize = checkCount(`${path}.maxSize`, o.maxSize ?? DEFAULT_CLASS_MAX_SIZE);
      const maxPerActor = checkCount(`${path}.maxPerActor`, o.maxPerActor ?? maxSize);
      let codel: CoDelOptions | false = CODEL_DEFAULTS;
      if (o.codel === false) codel = false;
      else if (o.codel !== undefined) {
        codel = {
          targetMs: checkPositive(`${path}.codel.targetMs`, o.codel.targetMs),
          intervalMs: checkPositive(`${path}.codel.intervalMs`, o.codel.intervalMs),
        };
      }
      const fair = new FairQueue<T>({
        quantum,
        maxItemCost,
        ...(options.weight ? { weight: options.weight } : {}),
      });
      const c = new PriorityClass<T>(name, maxSize, maxPerActor, codel, fair);
      byName[name] = c;
      return c;
    });
    this.#byName = byName;
  }

  /** Items queued in all classes. */
  get length(): number {
    return this.#length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Depth and counters of one class (live object: read it, do not write it). */
  counts(priority: Priority): Readonly<QueueClassCounts> {
    return this.#byName[priority].counts;
  }

  /** Items one actor has queued in one class. */
  lengthOf(priority: Priority, actor: string): number {
    return this.#byName[priority].fair.lengthOf(actor);
  }

  /** An actor's DRR deficit in one class: 0 when it has nothing queued there (no saved credit). */
  deficitOf(priority: Priority, actor: string): number {
    return this.#byName[priority].fair.deficitOf(actor);
  }

  /** Actors with items queued in one class. */
  actorCount(priority: Priority): number {
    return this.#byName[priority].fair.actorCount;
  }

  /**
   * Queues an item, or throws QueueDropError ('class-full', 'actor-full', 'closed') leaving the
   * queue unchanged. The item is not handed to onDrop for a refusal: the caller still holds it.
   */
  enqueue(value: T, options: EnqueueOptions): void {
    const priority = options.priority ?? 'medium';
    const c = this.#byName[priority];
    if (c === undefined) throw new QosConfigError('priority', `one of ${PRIORITIES.join(', ')}`, priority);
    const cost = options.cost ?? 1;
    if (!(cost > 0 && cost <= this.#maxItemCost))
      throw new QosConfigError('cost', `a number in (0, ${this.#maxItemCost}]`, cost);
    const actor = options.actor;
    if (this.#closed) throw new QueueDropError('closed', priority, actor, 'the queue is closed');
    if (c.counts.depth >= c.maxSize) {
      c.counts.refusedClassFull++;
      throw new QueueDropError(
        'class-full',
        priority,
        actor,
        `${c.counts.depth} ${priority} items queued (classes.${priority}.maxSize)`,
      );
    }
    if (c.maxPerActor < c.maxSize && c.fair.lengthOf(actor) >= c.maxPerActor) {
      c.counts.refusedActorFull++;
      throw new QueueDropError(
        'actor-full',
        priority,
        actor,
        `${actor} has ${c.maxPerActor} ${priority} items queued (classes.${priority}.maxPerActor)`,
      );
    }
    const deadline = options.deadline ?? Number.POSITIVE_INFINITY;
    c.fair.push(value, actor, cost, deadline, this.#clock.now());
    c.counts.depth++;
    c.counts.enqueued++;
    this.#length++;
  }

  /**
   * The next item to run: from the highest non-empty class, by DRR within it; items past their
   * deadline and items CoDel sheds go to onDrop on the way. Undefined when nothing is left.
   */
  dequeue(): T | undefined {
    if (this.#length === 0) return undefined;
    const now = this.#clock.now();
    for (const c of this.#classes) {
      if (c.counts.depth === 0) {
        // RFC 8289: a dequeue from an empty queue leaves the dropping state.
        if (c.codel !== null) {
          c.codel.observeEmpty();
          c.codel.dropping = false;
        }
        continue;
      }
      const item = this.#dequeueClass(c, now);
      if (item !== undefined) {
        c.counts.dequeued++;
        const value = item.value;
        c.fair.recycle(item);
        return value;
      }
    }
    return undefined;
  }

  /** Drops every queued item with reason 'closed' and refuses further enqueues. */
  close(): void {
    this.#closed = true;
    for (const c of this.#classes) {
      c.fair.clear((item) => {
        c.counts.closed++;
        this.#drop(c, item, 'closed', 'the queue was closed');
      });
      c.counts.depth = 0;
    }
    this.#length = 0;
  }

  /** RFC 8289 dodequeue: pop by DRR (expired items dropped on the way) and feed CoDel. */
  #pop(c: PriorityClass<T>, now: number): QueuedItem<T> | undefined {
    this.#expiring = c;
    const item = c.fair.pop(now, this.#onExpired);
    // Counted here and in #onExpired, not from lengths: an onDrop that enqueues stays counted.
    if (item !== undefined) {
      c.counts.depth--;
      this.#length--;
    }
    const codel = c.codel;
    if (codel !== null) {
      if (item === undefined) codel.observeEmpty();
      else codel.observe(now, now - item.enqueuedAt, c.fair.length);
    }
    return item;
  }

  /** RFC 8289 dequeue, over one class. */
  #dequeueClass(c: PriorityClass<T>, now: number): QueuedItem<T> | undefined {
    let item = this.#pop(c, now);
    const codel = c.codel;
    if (codel === null) return item;
    if (item === undefined) {
      codel.dropping = false;
      return undefined;
    }
    if (codel.dropping) {
      if (!codel.okToDrop) codel.dropping = false;
      while (codel.dropping && now >= codel.dropNext) {
        this.#shed(c, item!, now);
        codel.count++;
        item = this.#pop(c, now);
        if (!codel.okToDrop) codel.dropping = false;
        else codel.dropNext = codel.controlLaw(codel.dropNext, codel.count);
      }
    } else if (codel.okToDrop) {
      this.#shed(c, item, now);
      item = this.#pop(c, now);
      codel.dropping = true;
      const delta = codel.count - codel.lastCount;
      codel.count = delta > 1 && now - codel.dropNext < 16 * codel.intervalMs ? delta : 1;
      codel.dropNext = codel.controlLaw(now, codel.count);
      codel.lastCount = codel.count;
    }
    return item;
  }

  #shed(c: PriorityClass<T>, item: QueuedItem<T>, now: number): void {
    c.counts.shed++;
    this.#drop(
      c,
      item,
      'queue-delay',
      `waited ${now - item.enqueuedAt} ms; ${c.name} queue delay above ${c.codel!.targetMs} ms for ${c.codel!.intervalMs} ms`,
    );
    c.fair.recycle(item);
  }

  #drop(c: PriorityClass<T>, item: QueuedItem<T>, reason: QueueDropReason, detail: string): void {
    if (this.#onDrop === undefined) return;
    this.#onDrop(item.value, new QueueDropError(reason, c.name, item.actor, detail));
  }
}
