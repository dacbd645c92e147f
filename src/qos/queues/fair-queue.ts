/**
 * Weighted fair queueing across actors by deficit round robin (Shreedhar & Varghese, 1996).
 *
 * Why DRR and not WF2Q: DRR is O(1) per enqueue and dequeue with no heap and no virtual-time
 * floats, and its unfairness is bounded by one quantum plus one item's cost — tight enough when
 * items are executions of similar cost. WF2Q tightens the bound to one item but needs an
 * O(log n) heap of virtual finish times over 100k actors.
 *
 * Each actor with items waiting sits in a FIFO ring of active actors. On its turn an actor's
 * deficit grows by its quantum (`weight × quantum`); it is served while the cost of its head
 * item fits in the deficit, then goes to the back of the ring. Since `weight ≥ 1` and
 * `quantum ≥ maxItemCost`, a turn always serves at least one item: a dequeue looks at two
 * actors at most (plus the expired items it drops, each once: amortized O(1)).
 *
 * Fairness (stated and tested): over a run in which actors i and j stay backlogged from the
 * same start, served_i / w_i and served_j / w_j never differ by `quantum + maxItemCost / min(w_i, w_j)`
 * or more. An actor whose queue empties leaves the ring and its deficit returns to 0, so an
 * idle actor never saves up credit (at any time its deficit is below `weight × quantum + maxItemCost`).
 *
 * Memory: one node per queued item, one record per actor with items queued (an actor leaves the
 * map when its last item does): bounded by the class's `maxSize`.
 */

import { QosConfigError } from './errors.js';

/** One queued item, as the queue keeps it. */
export interface QueuedItem<T> {
  readonly value: T;
  readonly actor: string;
  /** Cost in fair-share units (1 for an execution unless the caller knows better). */
  readonly cost: number;
  /** Clock time it was enqueued: its sojourn time is measured from here. */
  readonly enqueuedAt: number;
  /** Clock time after which it must not run (Infinity: none). */
  readonly deadline: number;
  next: QueuedItem<T> | null;
}

/** The queue's node for one item; reused through a small pool so steady traffic allocates nothing. */
class ItemNode<T> implements QueuedItem<T> {
  next: ItemNode<T> | null = null;
  constructor(
    public value: T,
    public actor: string,
    public cost: number,
    public enqueuedAt: number,
    public deadline: number,
  ) {}
}

/** Nodes kept for reuse at most (default 4096): covers a daemon's enqueue/dequeue churn, bounds idle memory. */
export const NODE_POOL_LIMIT = 4096;

class ActorQueue<T> {
  head: ItemNode<T> | null = null;
  tail: ItemNode<T> | null = null;
  length = 0;
  deficit = 0;
  /** True between the start of its turn (deficit += quantum) and the end of it. */
  inTurn = false;
  nextActive: ActorQueue<T> | null = null;
  constructor(
    readonly actor: string,
    readonly quantum: number,
  ) {}
}

/** What the fair queue reports for each item it drops at dequeue because its deadline passed. */
export type ExpiredHandler<T> = (item: QueuedItem<T>) => void;

export interface FairQueueOptions {
  /** Credit per turn for weight 1; at least `maxItemCost` (default 1). */
  readonly quantum?: number;
  /** Largest cost one item may carry (default 1). */
  readonly maxItemCost?: number;
  /** An actor's weight, asked when the actor gets its first queued item (default 1 for all). Must be ≥ 1. */
  readonly weight?: (actor: string) => number;
}

/** Weights are at least 1 (so a turn always serves an item) and at most this (so no turn runs away). */
export const MAX_WEIGHT = 1_000_000;

export const FAIR_QUEUE_DEFAULTS = { quantum: 1, maxItemCost: 1 } as const;

export class FairQueue<T> {
  readonly #quantum: number;
  /** Largest cost one item may carry. */
  readonly maxItemCost: number;
  readonly #weight: (actor: string) => number;
  readonly #actors = new Map<string, ActorQueue<T>>();
  readonly #pool: ItemNode<T>[] = [];
  #activeHead: ActorQueue<T> | null = null;
  #activeTail: ActorQueue<T> | null = null;
  #length = 0;

  constructor(options: FairQueueOptions = {}) {
    this.maxItemCost = options.maxItemCost ?? FAIR_QUEUE_DEFAULTS.maxItemCost;
    this.#quantum = options.quantum ?? FAIR_QUEUE_DEFAULTS.quantum;
    if (!(this.maxItemCost > 0 && Number.isFinite(this.maxItemCost)))
      throw new QosConfigError('maxItemCost', 'a finite number > 0', this.maxItemCost);
    if (!(this.#quantum >= this.maxItemCost && Number.isFinite(this.#quantum)))
      throw new QosConfigError(
        'quantum',
        `a finite number ≥ maxItemCost (${this.maxItemCost})`,
        this.#quantum,
      );
    this.#weight = options.weight ?? (() => 1);
  }

  /** Items queued across all actors. */
  get length(): number {
    return this.#length;
  }

  /** Actors with at least one item queued. */
  get actorCount(): number {
    return this.#actors.size;
  }

  /** Items queued by one actor. */
  lengthOf(actor: string): number {
    return this.#actors.get(actor)?.length ?? 0;
  }

  /** An actor's current DRR deficit (0 for an actor with nothing queued). For tests and metrics. */
  deficitOf(actor: string): number {
    return this.#actors.get(actor)?.deficit ?? 0;
  }

  /** Appends an item; the caller has checked the bounds. */
  push(value: T, actor: string, cost: number, deadline: number, now: number): void {
    let q = this.#actors.get(actor);
    if (q === undefined) {
      const w = this.#weight(actor);
      if (!(w >= 1 && w <= MAX_WEIGHT))
        throw new QosConfigError(`weight(${JSON.stringify(actor)})`, `a number in [1, ${MAX_WEIGHT}]`, w);
      q = new ActorQueue<T>(actor, w * this.#quantum);
      this.#actors.set(actor, q);
    }
    let item = this.#pool.pop();
    if (item === undefined) item = new ItemNode<T>(value, actor, cost, now, deadline);
    else {
      item.value = value;
      item.actor = actor;
      item.cost = cost;
      item.enqueuedAt = now;
      item.deadline = deadline;
    }
    if (q.tail === null) {
      q.head = item;
      this.#activate(q);
    } else q.tail.next = item;
    q.tail = item;
    q.length++;
    this.#length++;
  }

  /**
   * Removes and returns the next item by DRR, dropping (through `onExpired`) every item met whose
   * deadline has passed at `now`: those never run and take no share. Undefined when empty.
   */
  pop(now: number, onExpired: ExpiredHandler<T>): QueuedItem<T> | undefined {
    for (;;) {
      const q = this.#activeHead;
      if (q === null) return undefined;
      const item = q.head!;
      if (item.deadline <= now) {
        this.#take(q, item);
        onExpired(item);
        continue;
      }
      if (!q.inTurn) {
        q.inTurn = true;
        q.deficit += q.quantum;
      }
      if (item.cost <= q.deficit) {
        q.deficit -= item.cost;
        this.#take(q, item);
        return item;
      }
      // Turn over: to the back of the ring, keeping the unspent deficit (below maxItemCost).
      q.inTurn = false;
      if (q.nextActive !== null) {
        this.#activeHead = q.nextActive;
        q.nextActive = null;
        this.#activeTail!.nextActive = q;
        this.#activeTail = q;
      }
    }
  }

  /**
   * Hands a popped or expired item's node back for reuse. Optional; after it the item must not be
   * read (its fields belong to a later push).
   */
  recycle(item: QueuedItem<T>): void {
    if (this.#pool.length >= NODE_POOL_LIMIT || !(item instanceof ItemNode)) return;
    const node = item as ItemNode<T>;
    node.value = undefined as T; // let the value be collected while the node waits
    this.#pool.push(node);
  }

  /** Removes every item (for close): calls `each` on them in queue order per actor. */
  clear(each: (item: QueuedItem<T>) => void): void {
    for (let q = this.#activeHead; q !== null; q = q.nextActive) {
      for (let item = q.head; item !== null; item = item.next) each(item);
    }
    this.#actors.clear();
    this.#activeHead = this.#activeTail = null;
    this.#length = 0;
  }

  /** The oldest enqueue time among the heads (for diagnostics); Infinity when empty. O(actors). */
  oldestHeadEnqueuedAt(): number {
    let t = Number.POSITIVE_INFINITY;
    for (let q = this.#activeHead; q !== null; q = q.nextActive)
      if (q.head!.enqueuedAt < t) t = q.head!.enqueuedAt;
    return t;
  }

  #take(q: ActorQueue<T>, item: ItemNode<T>): void {
    q.head = item.next;
    item.next = null;
    q.length--;
    this.#length--;
    if (q.head === null) {
      // Empty: leaves the ring and the map; its deficit goes with it (DRR: no saved credit).
      q.tail = null;
      q.deficit = 0;
      q.inTurn = false;
      this.#activeHead = q.nextActive;
      if (this.#activeHead === null) this.#activeTail = null;
      q.nextActive = null;
      this.#actors.delete(q.actor);
    }
  }

  #activate(q: ActorQueue<T>): void {
    if (this.#activeTail === null) this.#activeHead = q;
    else this.#activeTail.nextActive = q;
    this.#activeTail = q;
  }
}
