/**
 * Longest-prefix match over 32-bit keys (IPv4 routes) as a DIR-16-8-8 multibit trie with
 * leaf pushing: a 65,536-cell root indexed by the key's top 16 bits, and 256-cell children
 * for the next 8 bits and the last 8, created only under prefixes longer than 16 or 24 bits.
 * Every cell holds the answer for its whole range — the item of the longest prefix covering
 * it (or none), or a child — so a lookup is at most three array reads, however many prefix
 * lengths the table uses (a Map per prefix length costs one probe per length tried).
 *
 * Built whole from the table's prefixes (the table rebuilds it after its entries change);
 * cells: ≥ 0 an item index, -1 none, ≤ -2 the child numbered -cell - 2.
 */

const NONE = -1;

export interface Prefix<T> {
  /** The prefix's value as an unsigned 32-bit number, bits below the prefix zero. */
  readonly value: number;
  /** 0..32 */
  readonly length: number;
  readonly item: T;
}

export class LpmTrie<T> {
  readonly #root = new Int32Array(65536);
  #pool = new Int32Array(256 * 16);
  #children = 0;
  readonly #items: T[] = [];

  constructor(prefixes: readonly Prefix<T>[]) {
    this.#root.fill(NONE);
    // shortest first: a longer prefix paints over the shorter ones it refines, and a child is
    // created (holding its parent cell's answer) only after every shorter prefix is painted
    const sorted = [...prefixes].sort((a, b) => a.length - b.length);
    for (const p of sorted) {
      if (!Number.isInteger(p.length) || p.length < 0 || p.length > 32)
        throw new RangeError(`prefix length ${p.length} is not in 0..32`);
      const idx = this.#items.push(p.item) - 1;
      const v = p.value >>> 0;
      if (p.length <= 16) {
        const start = v >>> 16;
        this.#root.fill(idx, start, start + 2 ** (16 - p.length));
        continue;
      }
      const c = this.#childOf(true, v >>> 16);
      if (p.length <= 24) {
        const start = (c << 8) + ((v >>> 8) & 255);
        this.#pool.fill(idx, start, start + 2 ** (24 - p.length));
        continue;
      }
      const c2 = this.#childOf(false, (c << 8) + ((v >>> 8) & 255));
      const start = (c2 << 8) + (v & 255);
      this.#pool.fill(idx, start, start + 2 ** (32 - p.length));
    }
  }

  /** The child under cell `at` (of the root, or of the pool), made when there is none. */
  #childOf(inRoot: boolean, at: number): number {
    const x = inRoot ? this.#root[at]! : this.#pool[at]!;
    if (x <= -2) return -x - 2;
    const c = this.#children++;
    if ((c + 1) * 256 > this.#pool.length) {
      const grown = new Int32Array(this.#pool.length * 2);
      grown.set(this.#pool);
      this.#pool = grown;
    }
    // the child starts with its parent cell's answer for every one of its cells
    this.#pool.fill(x, c * 256, c * 256 + 256);
    if (inRoot) this.#root[at] = -c - 2;
    else this.#pool[at] = -c - 2;
    return c;
  }

  /** The item of the longest prefix that covers `key` (an unsigned 32-bit number). */
  lookup(key: number): T | undefined {
    let x = this.#root[key >>> 16]!;
    if (x < NONE) {
      const pool = this.#pool;
      x = pool[((-x - 2) << 8) | ((key >>> 8) & 255)]!;
      if (x < NONE) x = pool[((-x - 2) << 8) | (key & 255)]!;
    }
    return x >= 0 ? this.#items[x] : undefined;
  }
}
