/**
 * A FIFO on a growable ring buffer: push, shift and peek in O(1), indexed reads, and an
 * in-place removal of a chosen subset in one pass. The pipeline's request queue and its dead-
 * letter queue use it because Array#shift is O(n): at capacity, shedding the oldest request
 * on every arrival made each submit cost a copy of the whole queue.
 */

export class RingQueue<T> {
  #items: (T | undefined)[];
  #head = 0;
  #size = 0;

  constructor(initialCapacity = 16) {
    this.#items = new Array(Math.max(2, initialCapacity));
  }

  get length(): number {
    return this.#size;
  }

  push(item: T): void {
    if (this.#size === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#size) % this.#items.length] = item;
    this.#size++;
  }

  /** The oldest item, removed; undefined when empty. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined; // let it be collected
    this.#head = (this.#head + 1) % this.#items.length;
    this.#size--;
    return item;
  }

  /** The i-th oldest item (0 = oldest). */
  at(i: number): T | undefined {
    return i >= 0 && i < this.#size ? this.#items[(this.#head + i) % this.#items.length] : undefined;
  }

  /**
   * Removes up to `max` items that `take` accepts, oldest first, and returns them; the others
   * keep their order. O(number scanned): it stops at the first item kept once `max` is reached.
   */
  takeWhere(take: (item: T) => boolean, max: number): T[] {
    const taken: T[] = [];
    // The common case, a run of matching items at the head, costs only what it takes.
    while (taken.length < max && this.#size > 0 && take(this.#items[this.#head] as T)) {
      taken.push(this.shift() as T);
    }
    if (taken.length === max || this.#size === 0) return taken;
    // Otherwise compact: one pass over the rest, keeping what is not taken, in order.
    const n = this.#size;
    let kept = 0;
    const cap = this.#items.length;
    for (let i = 0; i < n; i++) {
      const item = this.#items[(this.#head + i) % cap] as T;
      if (taken.length < max && take(item)) taken.push(item);
      else this.#items[(this.#head + kept++) % cap] = item;
    }
    for (let i = kept; i < n; i++) this.#items[(this.#head + i) % cap] = undefined;
    this.#size = kept;
    return taken;
  }

  /** Every item, oldest first, and the queue emptied. */
  drain(): T[] {
    const out = this.toArray();
    this.#items = new Array(this.#items.length);
    this.#head = 0;
    this.#size = 0;
    return out;
  }

  toArray(): T[] {
    const out: T[] = new Array(this.#size);
    for (let i = 0; i < this.#size; i++) out[i] = this.#items[(this.#head + i) % this.#items.length] as T;
    return out;
  }

  #grow(): void {
    const items = this.toArray() as (T | undefined)[];
    items.length = this.#items.length * 2;
    this.#items = items;
    this.#head = 0;
  }
}
