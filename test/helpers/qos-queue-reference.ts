/**
 * Reference models for the QoS queue tests: the plainest code that states the algorithm, with
 * arrays and no cleverness. RefCoDel is RFC 8289's pseudocode transcribed (dodequeue / dequeue)
 * over a FIFO given as callbacks; RefPriorityFairQueue is strict priority over deficit round
 * robin written from the paper, with arrays for queues and the active list.
 */

export interface RefItem {
  readonly id: number;
  readonly actor: string;
  readonly cost: number;
  readonly enqueuedAt: number;
  readonly deadline: number;
}

export type RefDrop = { readonly id: number; readonly reason: 'deadline' | 'queue-delay' };

/** RFC 8289, section 5 pseudocode; MAXPACKET read as "nothing left after this item". */
export class RefCoDel {
  first_above_time_ = 0;
  drop_next_ = 0;
  count_ = 0;
  lastcount_ = 0;
  dropping_ = false;
  constructor(
    readonly TARGET: number,
    readonly INTERVAL: number,
  ) {}

  control_law(t: number, count: number): number {
    return t + this.INTERVAL / Math.sqrt(count);
  }

  dodequeue(
    now: number,
    pop: () => RefItem | undefined,
    bytes: () => number,
  ): { p: RefItem | undefined; ok_to_drop: boolean } {
    const r = { p: pop(), ok_to_drop: false };
    if (r.p === undefined) {
      this.first_above_time_ = 0;
      return r;
    }
    const sojourn_time = now - r.p.enqueuedAt;
    if (sojourn_time < this.TARGET || bytes() <= 0) {
      this.first_above_time_ = 0;
    } else {
      if (this.first_above_time_ === 0) this.first_above_time_ = now + this.INTERVAL;
      else if (now >= this.first_above_time_) r.ok_to_drop = true;
    }
    return r;
  }

  dequeue(
    now: number,
    pop: () => RefItem | undefined,
    bytes: () => number,
    drop: (p: RefItem) => void,
  ): RefItem | undefined {
    let r = this.dodequeue(now, pop, bytes);
    if (r.p === undefined) {
      this.dropping_ = false;
      return undefined;
    }
    if (this.dropping_) {
      if (!r.ok_to_drop) this.dropping_ = false;
      while (now >= this.drop_next_ && this.dropping_) {
        drop(r.p!);
        ++this.count_;
        r = this.dodequeue(now, pop, bytes);
        if (!r.ok_to_drop) this.dropping_ = false;
        else this.drop_next_ = this.control_law(this.drop_next_, this.count_);
      }
    } else if (r.ok_to_drop) {
      drop(r.p);
      r = this.dodequeue(now, pop, bytes);
      this.dropping_ = true;
      const delta = this.count_ - this.lastcount_;
      this.count_ = 1;
      if (delta > 1 && now - this.drop_next_ < 16 * this.INTERVAL) this.count_ = delta;
      this.drop_next_ = this.control_law(now, this.count_);
      this.lastcount_ = this.count_;
    }
    return r.p;
  }
}

interface RefActor {
  items: RefItem[];
  deficit: number;
  inTurn: boolean;
}

export interface RefClassConfig {
  readonly maxSize: number;
  readonly maxPerActor: number;
  readonly codel: { targetMs: number; intervalMs: number } | false;
}

class RefClass {
  actors = new Map<string, RefActor>();
  active: string[] = [];
  codel: RefCoDel | null;
  constructor(readonly config: RefClassConfig) {
    this.codel = config.codel === false ? null : new RefCoDel(config.codel.targetMs, config.codel.intervalMs);
  }
  size(): number {
    let n = 0;
    for (const a of this.actors.values()) n += a.items.length;
    return n;
  }
}

export const REF_PRIORITIES = ['critical', 'high', 'medium', 'low'] as const;
export type RefPriority = (typeof REF_PRIORITIES)[number];

export class RefPriorityFairQueue {
  readonly classes: Record<RefPriority, RefClass>;
  constructor(
    configs: Record<RefPriority, RefClassConfig>,
    readonly quantum: number,
    readonly weight: (actor: string) => number,
  ) {
    this.classes = {
      critical: new RefClass(configs.critical),
      high: new RefClass(configs.high),
      medium: new RefClass(configs.medium),
      low: new RefClass(configs.low),
    };
  }

  enqueue(priority: RefPriority, item: RefItem): 'queued' | 'class-full' | 'actor-full' {
    const c = this.classes[priority];
    if (c.size() >= c.config.maxSize) return 'class-full';
    const a = c.actors.get(item.actor);
    if (c.config.maxPerActor < c.config.maxSize && (a?.items.length ?? 0) >= c.config.maxPerActor)
      return 'actor-full';
    if (a === undefined) {
      c.actors.set(item.actor, { items: [item], deficit: 0, inTurn: false });
      c.active.push(item.actor);
    } else a.items.push(item);
    return 'queued';
  }

  /** One DRR step over a class: the next item to serve, dropping expired items on the way. */
  #pop(c: RefClass, now: number, drops: RefDrop[]): RefItem | undefined {
    while (c.active.length > 0) {
      const name = c.active[0]!;
      const a = c.actors.get(name)!;
      const head = a.items[0]!;
      if (head.deadline <= now) {
        a.items.shift();
        drops.push({ id: head.id, reason: 'deadline' });
        if (a.items.length === 0) this.#leave(c, name);
        continue;
      }
      if (!a.inTurn) {
        a.inTurn = true;
        a.deficit += this.weight(name) * this.quantum;
      }
      if (head.cost <= a.deficit) {
        a.deficit -= head.cost;
        a.items.shift();
        if (a.items.length === 0) this.#leave(c, name);
        return head;
      }
      a.inTurn = false;
      c.active.push(c.active.shift()!);
    }
    return undefined;
  }

  #leave(c: RefClass, name: string): void {
    c.actors.delete(name);
    c.active.shift();
  }

  dequeue(now: number): { served: { id: number; priority: RefPriority } | undefined; drops: RefDrop[] } {
    const drops: RefDrop[] = [];
    for (const p of REF_PRIORITIES) {
      const c = this.classes[p];
      const pop = () => this.#pop(c, now, drops);
      let item: RefItem | undefined;
      if (c.codel === null) item = pop();
      else
        item = c.codel.dequeue(
          now,
          pop,
          () => c.size(),
          (x) => drops.push({ id: x.id, reason: 'queue-delay' }),
        );
      if (item !== undefined) return { served: { id: item.id, priority: p }, drops };
    }
    return { served: undefined, drops };
  }

  deficitOf(priority: RefPriority, actor: string): number {
    return this.classes[priority].actors.get(actor)?.deficit ?? 0;
  }
}
