/**
 * Match-action tables of the behavioral switch, with BMv2's matching rules: exact keys by
 * hash lookup; one lpm key by longest prefix (a hash map per prefix length, longest first);
 * ternary, range and optional keys by priority, where — as in BMv2 — a lower priority number
 * wins, and equal priorities go to the entry added first.
 *
 * Keys of at most 53 bits are read and matched as numbers (masks only up to 32 bits, where
 * JavaScript's bitwise operators are exact); wider keys as BigInts. Exact tables nest one Map
 * per key field, so a lookup builds no composite key; lpm tables keep such a nest per prefix
 * length. The control plane keeps every entry's key as BigInts as well, for its checks.
 */

import { P4RuntimeError } from './errors.js';
import { LpmTrie } from './lpm-trie.js';
import type { ActionData, ActionRT, PacketState } from './state.js';
import { NUM_BITS } from './state.js';

export type MatchKind = 'exact' | 'lpm' | 'ternary' | 'range' | 'optional';

/** A key value as the runtime API takes it, by the key's match kind. */
export type KeyValue =
  | bigint
  | number
  | { readonly value: bigint | number; readonly prefixLength: number }
  | { readonly value: bigint | number; readonly mask: bigint | number }
  | { readonly low: bigint | number; readonly high: bigint | number }
  | null;

export interface EntrySpec {
  readonly key: readonly KeyValue[];
  readonly action: string;
  readonly args?: readonly (bigint | number)[];
  /** Required for tables with ternary, range or optional keys; lower wins (BMv2). */
  readonly priority?: number;
}

export interface TableKeyRT {
  readonly name: string;
  readonly match: MatchKind;
  readonly width: number;
  /** The key as a number; null when the key is wider than 53 bits. */
  readonly getN: ((s: PacketState) => number) | null;
  readonly getB: (s: PacketState) => bigint;
  /** getN as a JS expression over `n` / `v`, when it has one (for generated pipelines). */
  readonly js: string | null;
}

interface KeyMatch {
  readonly value: bigint;
  readonly mask: bigint;
  readonly lo: bigint;
  readonly hi: bigint;
  readonly prefix: number;
}

export interface EntryRT {
  readonly handle: number;
  readonly keys: readonly KeyMatch[];
  action: ActionRT;
  data: ActionData;
  /** The action data as given, for the control plane. */
  args: readonly bigint[];
  readonly priority: number;
  readonly seq: number;
  packets: number;
  bytes: number;
}

export interface DirectCounterValue {
  readonly packets: number;
  readonly bytes: number;
}

const full = (w: number): bigint => (1n << BigInt(w)) - 1n;

/**
 * Lookups after a change of a route table's entries before its trie is (re)built: enough that
 * what they cost on the Maps outweighs a build (a 65,536-cell fill plus a pass over the
 * entries), so a control plane that keeps changing routes under traffic pays for rebuilds at
 * most about as much as the Maps would have cost it, never a build per change.
 */
export const trieAfterLookups = (entries: number): number => 8192 + 2 * entries;

/** How a key of a priority table is compared, chosen once from its match kind and width. */
enum Cmp {
  /** value === v (exact, and optional entries that are not wildcards), numbers */
  Eq = 0,
  /** (v & mask) === value, numbers of ≤ 32 bits */
  Mask = 1,
  /** lo <= v <= hi, numbers */
  Range = 2,
  /** BigInts: mask and range both checked */
  Big = 3,
}

/** Per-entry match data of a priority table, in flat arrays indexed by key. */
interface PriorityRow {
  readonly entry: EntryRT;
  readonly a: Float64Array;
  readonly b: Float64Array;
  readonly big: readonly KeyMatch[];
  /** Position in priority order (lower wins): set when the tuple space is built. */
  ord: number;
}

/**
 * Tuple space search (Srinivasan et al.): the rows of a priority table grouped by their tuple
 * of masks; within a group, masked key values index a nest of Maps whose leaves hold the rows
 * (in priority order) that differ only in their ranges. A lookup probes each group once,
 * best group first, and stops as soon as no later group can hold a better row. ACLs have few
 * distinct mask tuples, so this replaces a scan of every row by a few hash probes.
 */
interface TupleGroup {
  /** ord of the group's best row: groups are probed in this order. */
  readonly minOrd: number;
  /** Keys that index the nest: exact (mask -1) or masked. */
  readonly levels: readonly { readonly key: number; readonly mask: number }[];
  readonly root: Map<number, unknown> | PriorityRow[];
}

/**
 * Masked ≤ 32-bit keys (the lpm key, ternary levels of the tuple space) are Map keys in their
 * int32 form, `v & mask` as JavaScript computes it: always a small integer, where the uint32
 * form of an address of 128.0.0.0 and above would be a heap number, slower to hash.
 */
const asInt32 = (v: bigint): number => Number(BigInt.asIntN(32, v));

/** A nest of Maps, one level per key field; a leaf holds the entry. */
type Nest = Map<number | bigint, Nest | EntryRT>;

export class TableRT {
  readonly name: string;
  readonly keys: readonly TableKeyRT[];
  readonly actions: readonly ActionRT[];
  readonly size: number;
  readonly withCounters: boolean;
  defaultAction: ActionRT;
  defaultData: ActionData;
  defaultArgs: readonly bigint[];
  readonly defaultConst: boolean;
  /** Tables whose entries were declared `const entries` refuse runtime changes. */
  constEntries = false;
  readonly #byHandle = new Map<number, EntryRT>();
  /** Exact tables: the nest; lpm tables: one nest per prefix length. */
  readonly #exact: Nest = new Map();
  readonly #lpm = new Map<number, Nest>();
  #prefixNests: Nest[] = [];
  /** Masks of the lpm key per prefix length, as numbers (≤ 32-bit keys) and BigInts. */
  #lpmMasksN: number[] = [];
  #lpmMasksB: bigint[] = [];
  #rows: PriorityRow[] = [];
  /** The rows as a tuple space; undefined after a change (rebuilt by the next lookup), null
   *  when the rows have too many distinct mask tuples for it to pay off. */
  #tuples: TupleGroup[] | null | undefined = undefined;
  /** Indexes of range keys, checked on the rows a tuple probe finds. */
  readonly #rangeKeys: number[];
  readonly #cmp: Cmp[];
  readonly #kind: 'exact' | 'lpm' | 'priority' | 'empty';
  readonly #lpmIndex: number;
  /** The lpm key is matched on numbers (≤ 32 bits). */
  readonly #lpmNum: boolean;
  /**
   * Key values of the packet being looked up, reused: keys with a number reader in `keyN`,
   * the others (wider than 53 bits) in `keyB`. lookup() fills them; a generated pipeline
   * fills `keyN` inline and calls match().
   */
  readonly keyN: Float64Array;
  readonly keyB: bigint[];
  #nextHandle = 0;
  #seq = 0;

  constructor(init: {
    name: string;
    keys: readonly TableKeyRT[];
    actions: readonly ActionRT[];
    size: number;
    withCounters: boolean;
    defaultAction: ActionRT;
    defaultArgs: readonly bigint[];
    defaultConst: boolean;
  }) {
    this.name = init.name;
    this.keys = init.keys;
    this.actions = init.actions;
    this.size = init.size;
    this.withCounters = init.withCounters;
    this.defaultAction = init.defaultAction;
    this.defaultArgs = init.defaultArgs;
    this.defaultData = actionData(init.defaultAction, init.defaultArgs);
    this.defaultConst = init.defaultConst;
    const kinds = this.keys.map((k) => k.match);
    this.#lpmIndex = kinds.indexOf('lpm');
    this.#kind =
      kinds.length === 0
        ? 'empty'
        : kinds.some((k) => k === 'ternary' || k === 'range' || k === 'optional')
          ? 'priority'
          : this.#lpmIndex >= 0
            ? 'lpm'
            : 'exact';
    this.#lpmNum = this.#lpmIndex >= 0 && this.keys[this.#lpmIndex]!.width <= 32;
    this.#cmp = this.keys.map((k) => {
      if (k.getN === null) return Cmp.Big;
      if (k.match === 'range') return Cmp.Range;
      if (k.match === 'exact') return Cmp.Eq;
      return k.width <= 32 ? Cmp.Mask : Cmp.Big;
    });
    this.keyN = new Float64Array(this.keys.length);
    this.#rangeKeys = this.#cmp.flatMap((c, i) => (c === Cmp.Range ? [i] : []));
    this.keyB = this.keys.map(() => 0n);
    this.#numKeys = this.keys.every((k) => k.getN !== null);
    this.#widen = this.#cmp.flatMap((c, i) => (c === Cmp.Big && this.keys[i]!.getN !== null ? [i] : []));
    this.#trieable =
      this.#kind === 'lpm' &&
      this.keys.length === 1 &&
      this.keys[0]!.width === 32 &&
      this.keys[0]!.getN !== null;
  }

  get needsPriority(): boolean {
    return this.#kind === 'priority';
  }

  get entryCount(): number {
    return this.#byHandle.size;
  }

  // ------------------------------------------------------------ data plane

  /** Every key has a number reader: lookups never read a BigInt. */
  readonly #numKeys: boolean;
  /** Keys read as numbers but matched as BigInts (ternary/lpm masks over 32 bits). */
  readonly #widen: number[];

  /**
   * Tables with one 32-bit lpm key (IPv4 routes) also answer from a DIR-16-8-8 trie
   * (lpm-trie.ts): at most three array reads, where the Maps cost a probe per prefix length.
   * It is rebuilt from the entries, so after a change the Maps answer until
   * trieAfterLookups(entries) lookups have passed: a control plane that interleaves changes
   * with packets does not pay a rebuild per change.
   */
  readonly #trieable: boolean;
  #trie: LpmTrie<EntryRT> | null = null;
  #lookupsSinceChange = 0;

  /** trieAfterLookups of the entry count, set when the entries change. */
  #trieAfter = trieAfterLookups(0);

  #buildTrie(): LpmTrie<EntryRT> {
    const prefixes = [...this.#byHandle.values()].map((e) => ({
      value: Number(e.keys[0]!.value),
      length: e.keys[0]!.prefix,
      item: e,
    }));
    this.#trie = new LpmTrie(prefixes);
    return this.#trie;
  }

  /** Entries were added or removed: the trie no longer holds them. */
  #entriesChanged(): void {
    this.#trie = null;
    this.#lookupsSinceChange = 0;
    this.#trieAfter = trieAfterLookups(this.#byHandle.size);
  }

  lookup(s: PacketState): EntryRT | null {
    const keys = this.keys;
    const kn = this.keyN;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (k.getN !== null) kn[i] = k.getN(s);
      else this.keyB[i] = k.getB(s);
    }
    return this.match();
  }

  /** The entry for the key values in keyN / keyB (filled by the caller), or null. */
  match(): EntryRT | null {
    switch (this.#kind) {
      case 'empty':
        return null;
      case 'exact': {
        if (this.#byHandle.size === 0) return null;
        if (this.keys.length === 1)
          return (
            (this.#exact.get(this.#numKeys ? this.keyN[0]! : this.keyB[0]!) as EntryRT | undefined) ?? null
          );
        return this.#walk(this.#exact, -1, 0);
      }
      case 'lpm': {
        const nests = this.#prefixNests;
        const li = this.#lpmIndex;
        if (this.#lpmNum) {
          const v = this.keyN[li]!;
          const masks = this.#lpmMasksN;
          if (this.keys.length === 1) {
            if (this.#trieable) {
              const trie = this.#trie;
              if (trie !== null) return trie.lookup(v) ?? null;
              if (++this.#lookupsSinceChange >= this.#trieAfter) return this.#buildTrie().lookup(v) ?? null;
            }
            // one ≤ 32-bit key: the nest of each prefix length is one Map, longest first
            for (let i = 0; i < nests.length; i++) {
              const e = nests[i]!.get(v & masks[i]!) as EntryRT | undefined;
              if (e !== undefined) return e;
            }
            return null;
          }
          for (let i = 0; i < nests.length; i++) {
            const e = this.#walk(nests[i]!, li, v & masks[i]!);
            if (e) return e;
          }
          return null;
        }
        const v = this.keys[li]!.getN !== null ? BigInt(this.keyN[li]!) : this.keyB[li]!;
        const masks = this.#lpmMasksB;
        for (let i = 0; i < nests.length; i++) {
          const e = this.#walk(nests[i]!, li, v & masks[i]!);
          if (e) return e;
        }
        return null;
      }
      case 'priority':
        return this.#scan();
    }
  }

  /** Walk a nest key by key; key `li` (the lpm key) takes the already masked `lv`. */
  #walk(nest: Nest, li: number, lv: number | bigint): EntryRT | null {
    const keys = this.keys;
    let node: Nest | EntryRT | undefined = nest;
    for (let i = 0; i < keys.length; i++) {
      const v = i === li ? lv : keys[i]!.getN !== null ? this.keyN[i]! : this.keyB[i]!;
      node = (node as Nest).get(v);
      if (node === undefined) return null;
    }
    return node as EntryRT;
  }

  #scan(): EntryRT | null {
    const keys = this.keys;
    const n = keys.length;
    const cmp = this.#cmp;
    const vn = this.keyN;
    const vb = this.keyB;
    // keys matched as BigInts (masks over 32 bits) that were read as numbers
    const widen = this.#widen;
    for (let i = 0; i < widen.length; i++) vb[widen[i]!] = BigInt(vn[widen[i]!]!);
    if (this.#tuples === undefined) this.#tuples = this.#buildTuples();
    if (this.#tuples !== null) return this.#probe(this.#tuples);
    const rows = this.#rows;
    outer: for (let r = 0; r < rows.length; r++) {
      const row = rows[r]!;
      const a = row.a;
      const b = row.b;
      for (let i = 0; i < n; i++) {
        const v = vn[i]!;
        switch (cmp[i]) {
          case Cmp.Eq:
            // b = 0 marks an optional key's wildcard
            if (v !== a[i] && b[i] !== 0) continue outer;
            break;
          case Cmp.Mask:
            if ((v & b[i]!) >>> 0 !== a[i]) continue outer;
            break;
          case Cmp.Range:
            if (v < a[i]! || v > b[i]!) continue outer;
            break;
          default: {
            const m = row.big[i]!;
            const x = vb[i]!;
            if (keys[i]!.match === 'range' ? x < m.lo || x > m.hi : (x & m.mask) !== m.value) continue outer;
          }
        }
      }
      return row.entry;
    }
    return null;
  }

  #probe(groups: readonly TupleGroup[]): EntryRT | null {
    const vn = this.keyN;
    const ranges = this.#rangeKeys;
    let best: PriorityRow | null = null;
    for (let g = 0; g < groups.length; g++) {
      const group = groups[g]!;
      if (best !== null && group.minOrd > best.ord) break;
      let node: unknown = group.root;
      const levels = group.levels;
      for (let l = 0; l < levels.length && node !== undefined; l++) {
        const { key, mask } = levels[l]!;
        const v = vn[key]!;
        node = (node as Map<number, unknown>).get(mask === -1 ? v : v & mask);
      }
      if (node === undefined) continue;
      const leaf = node as PriorityRow[];
      rows: for (let r = 0; r < leaf.length; r++) {
        const row = leaf[r]!;
        if (best !== null && row.ord > best.ord) break;
        for (let i = 0; i < ranges.length; i++) {
          const k = ranges[i]!;
          const v = vn[k]!;
          if (v < row.a[k]! || v > row.b[k]!) continue rows;
        }
        best = row;
        break;
      }
    }
    return best === null ? null : best.entry;
  }

  /** Group the rows by mask tuple; null when there are too many tuples to beat a scan. */
  #buildTuples(): TupleGroup[] | null {
    const rows = this.#rows;
    const cmp = this.#cmp;
    if (rows.length < 8 || cmp.some((c) => c === Cmp.Big)) return null;
    const groups = new Map<string, { levels: { key: number; mask: number }[]; rows: PriorityRow[] }>();
    rows.forEach((row, ord) => {
      row.ord = ord;
      const levels: { key: number; mask: number }[] = [];
      cmp.forEach((c, i) => {
        if (c === Cmp.Eq && row.b[i] !== 0) levels.push({ key: i, mask: -1 });
        else if (c === Cmp.Mask && row.b[i] !== 0) levels.push({ key: i, mask: row.b[i]! });
      });
      const sig = levels.map((l) => `${l.key}:${l.mask}`).join(',');
      const g = groups.get(sig) ?? { levels, rows: [] };
      g.rows.push(row);
      groups.set(sig, g);
    });
    if (groups.size * 4 > rows.length) return null;
    return [...groups.values()]
      .map(({ levels, rows: members }) => {
        // rows arrive in priority order, so every leaf is in priority order too
        const root: Map<number, unknown> | PriorityRow[] = levels.length === 0 ? [] : new Map();
        for (const row of members) {
          if (levels.length === 0) {
            (root as PriorityRow[]).push(row);
            continue;
          }
          let node = root as Map<number, unknown>;
          levels.forEach((l, depth) => {
            const k = l.mask === -1 ? row.a[l.key]! : row.a[l.key]! | 0;
            const last = depth === levels.length - 1;
            let next = node.get(k);
            if (next === undefined) {
              next = last ? [] : new Map();
              node.set(k, next);
            }
            if (last) (next as PriorityRow[]).push(row);
            else node = next as Map<number, unknown>;
          });
        }
        return { minOrd: members[0]!.ord, levels, root };
      })
      .sort((x, y) => x.minOrd - y.minOrd);
  }

  // ------------------------------------------------------------ control plane

  action(name: string): ActionRT {
    const a = this.actions.find((x) => x.name === name || x.name.split('.').pop() === name);
    if (!a) {
      throw new P4RuntimeError(
        'P4_ACTION_UNKNOWN',
        `table ${this.name} has no action '${name}' (actions: ${this.actions.map((x) => x.name).join(', ')})`,
      );
    }
    return a;
  }

  /** Check arguments against the action's parameter widths. */
  checkArgs(a: ActionRT, args: readonly (bigint | number)[]): bigint[] {
    if (args.length !== a.params.length) {
      throw new P4RuntimeError(
        'P4_ACTION_DATA',
        `action ${a.name} takes ${a.params.length} argument(s), got ${args.length}`,
      );
    }
    return a.params.map((p, i) => {
      const v = BigInt(args[i]!);
      if (v < 0n || v > full(p.width)) {
        throw new P4RuntimeError(
          'P4_ACTION_DATA',
          `argument '${p.name}' of ${a.name} must fit in ${p.width} bits, got ${v}`,
        );
      }
      return v;
    });
  }

  #keyMatches(key: readonly KeyValue[]): KeyMatch[] {
    if (key.length !== this.keys.length) {
      throw new P4RuntimeError(
        'P4_KEY_COUNT',
        `table ${this.name} has ${this.keys.length} key field(s), got ${key.length}`,
      );
    }
    return this.keys.map((k, i) => {
      const kv = key[i]!;
      const f = full(k.width);
      const check = (v: bigint | number, what: string): bigint => {
        const b = BigInt(v);
        if (b < 0n || b > f) {
          throw new P4RuntimeError(
            'P4_KEY_WIDTH',
            `key ${k.name} of table ${this.name} is ${k.width} bits; ${what} ${b} does not fit`,
          );
        }
        return b;
      };
      const kind = (want: string): never => {
        throw new P4RuntimeError(
          'P4_KEY_KIND',
          `key ${k.name} of table ${this.name} is ${k.match}; expected ${want}`,
        );
      };
      switch (k.match) {
        case 'exact':
          if (typeof kv !== 'bigint' && typeof kv !== 'number') return kind('a value');
          {
            const v = check(kv, 'value');
            return { value: v, mask: f, lo: v, hi: v, prefix: k.width };
          }
        case 'lpm': {
          if (kv === null || typeof kv !== 'object' || !('prefixLength' in kv)) {
            if (typeof kv === 'bigint' || typeof kv === 'number') {
              const v = check(kv, 'value');
              return { value: v, mask: f, lo: v, hi: v, prefix: k.width };
            }
            return kind('{ value, prefixLength }');
          }
          const p = kv.prefixLength;
          if (!Number.isInteger(p) || p < 0 || p > k.width) {
            throw new P4RuntimeError(
              'P4_KEY_WIDTH',
              `prefix length ${p} of key ${k.name} must be in 0..${k.width}`,
            );
          }
          const m = p === 0 ? 0n : full(p) << BigInt(k.width - p);
          const v = check(kv.value, 'value') & m;
          return { value: v, mask: m, lo: 0n, hi: f, prefix: p };
        }
        case 'ternary': {
          if (typeof kv === 'bigint' || typeof kv === 'number') {
            const v = check(kv, 'value');
            return { value: v, mask: f, lo: 0n, hi: f, prefix: 0 };
          }
          if (kv === null || typeof kv !== 'object' || !('mask' in kv)) return kind('{ value, mask }');
          const m = check(kv.mask, 'mask');
          return { value: check(kv.value, 'value') & m, mask: m, lo: 0n, hi: f, prefix: 0 };
        }
        case 'range': {
          if (kv === null || typeof kv !== 'object' || !('low' in kv)) return kind('{ low, high }');
          const lo = check(kv.low, 'low');
          const hi = check(kv.high, 'high');
          if (lo > hi)
            throw new P4RuntimeError('P4_KEY_WIDTH', `range ${lo}..${hi} of key ${k.name} is empty`);
          return { value: 0n, mask: 0n, lo, hi, prefix: 0 };
        }
        case 'optional': {
          if (kv === null) return { value: 0n, mask: 0n, lo: 0n, hi: f, prefix: 0 };
          if (typeof kv !== 'bigint' && typeof kv !== 'number') return kind('a value or null (wildcard)');
          return { value: check(kv, 'value'), mask: f, lo: 0n, hi: f, prefix: 0 };
        }
      }
      return kind('a supported match kind');
    });
  }

  /** How level `i` of a nest is keyed: the representation lookups read the key in. */
  #level(i: number, v: bigint): number | bigint {
    if (i === this.#lpmIndex) return this.#lpmNum ? asInt32(v) : v;
    return this.keys[i]!.getN !== null ? Number(v) : v;
  }

  /** The leaf's parent map for `keys` in `nest`, created on the way when `create`. */
  #parent(nest: Nest, keys: readonly KeyMatch[], create: boolean): Nest | null {
    let node = nest;
    for (let i = 0; i < keys.length - 1; i++) {
      const k = this.#level(i, keys[i]!.value);
      let next = node.get(k) as Nest | undefined;
      if (next === undefined) {
        if (!create) return null;
        next = new Map();
        node.set(k, next);
      }
      node = next;
    }
    return node;
  }

  #row(entry: EntryRT): PriorityRow {
    const n = this.keys.length;
    const a = new Float64Array(n);
    const b = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const m = entry.keys[i]!;
      switch (this.#cmp[i]) {
        case Cmp.Eq:
          // optional wildcard: mask 0 → b = 0; otherwise exact
          a[i] = Number(m.value);
          b[i] = m.mask === 0n ? 0 : 1;
          break;
        case Cmp.Mask:
          a[i] = Number(m.value);
          b[i] = Number(m.mask);
          break;
        case Cmp.Range:
          a[i] = Number(m.lo);
          b[i] = Number(m.hi);
          break;
        default:
          break;
      }
    }
    return { entry, a, b, big: entry.keys, ord: 0 };
  }

  addEntry(spec: EntrySpec, fromConst = false): number {
    if (this.constEntries && !fromConst) {
      throw new P4RuntimeError(
        'P4_CONST_TABLE',
        `table ${this.name} has const entries and cannot be changed at runtime`,
      );
    }
    if (this.#kind === 'empty')
      throw new P4RuntimeError(
        'P4_KEY_COUNT',
        `table ${this.name} has no key; set its default action instead`,
      );
    const keys = this.#keyMatches(spec.key);
    const action = this.action(spec.action);
    const args = this.checkArgs(action, spec.args ?? []);
    if (this.#byHandle.size >= this.size) {
      throw new P4RuntimeError('P4_TABLE_FULL', `table ${this.name} is full (${this.size} entries)`);
    }
    let priority = 0;
    if (this.#kind === 'priority') {
      if (spec.priority === undefined || !Number.isInteger(spec.priority) || spec.priority < 0) {
        throw new P4RuntimeError(
          'P4_PRIORITY',
          `table ${this.name} has ternary/range/optional keys: an entry needs an integer priority >= 0`,
        );
      }
      priority = spec.priority;
    }
    const entry: EntryRT = {
      handle: this.#nextHandle,
      keys,
      action,
      data: actionData(action, args),
      args,
      priority,
      seq: this.#seq,
      packets: 0,
      bytes: 0,
    };
    if (this.#kind === 'exact' || this.#kind === 'lpm') {
      let nest = this.#exact;
      if (this.#kind === 'lpm') {
        const p = keys[this.#lpmIndex]!.prefix;
        const m = this.#lpm.get(p);
        if (m === undefined || m.size === 0) {
          nest = new Map();
          this.#lpm.set(p, nest);
          this.#setPrefixes();
        } else nest = m;
      }
      const parent = this.#parent(nest, keys, true)!;
      const leaf = this.#level(keys.length - 1, keys[keys.length - 1]!.value);
      if (parent.has(leaf))
        throw new P4RuntimeError(
          'P4_ENTRY_DUPLICATE',
          `table ${this.name} already has an entry for this ${this.#kind === 'lpm' ? 'prefix' : 'key'}`,
        );
      parent.set(leaf, entry);
    } else {
      const same = (x: KeyMatch, y: KeyMatch): boolean =>
        x.value === y.value && x.mask === y.mask && x.lo === y.lo && x.hi === y.hi && x.prefix === y.prefix;
      const dup = this.#rows.find(
        (r) => r.entry.priority === priority && r.entry.keys.every((k, i) => same(k, keys[i]!)),
      );
      if (dup)
        throw new P4RuntimeError(
          'P4_ENTRY_DUPLICATE',
          `table ${this.name} already has this entry at priority ${priority}`,
        );
      // Insert after every row of lower or equal priority: ties keep insertion order.
      let at = this.#rows.length;
      while (at > 0 && this.#rows[at - 1]!.entry.priority > priority) at--;
      this.#rows.splice(at, 0, this.#row(entry));
      this.#tuples = undefined;
    }
    this.#nextHandle++;
    this.#seq++;
    this.#byHandle.set(entry.handle, entry);
    this.#entriesChanged();
    return entry.handle;
  }

  #entry(handle: number): EntryRT {
    const e = this.#byHandle.get(handle);
    if (!e)
      throw new P4RuntimeError('P4_ENTRY_UNKNOWN', `table ${this.name} has no entry with handle ${handle}`);
    return e;
  }

  modifyEntry(handle: number, action: string, args: readonly (bigint | number)[] = []): void {
    if (this.constEntries)
      throw new P4RuntimeError(
        'P4_CONST_TABLE',
        `table ${this.name} has const entries and cannot be changed at runtime`,
      );
    const e = this.#entry(handle);
    const a = this.action(action);
    e.args = this.checkArgs(a, args);
    e.data = actionData(a, e.args);
    e.action = a;
  }

  deleteEntry(handle: number): void {
    if (this.constEntries)
      throw new P4RuntimeError(
        'P4_CONST_TABLE',
        `table ${this.name} has const entries and cannot be changed at runtime`,
      );
    const e = this.#entry(handle);
    this.#byHandle.delete(handle);
    this.#entriesChanged();
    if (this.#kind === 'exact' || this.#kind === 'lpm') {
      const p = this.#kind === 'lpm' ? e.keys[this.#lpmIndex]!.prefix : -1;
      const nest = p < 0 ? this.#exact : this.#lpm.get(p)!;
      const parent = this.#parent(nest, e.keys, false);
      parent?.delete(this.#level(e.keys.length - 1, e.keys[e.keys.length - 1]!.value));
      if (p >= 0 && !this.#holdsEntries(nest)) {
        this.#lpm.delete(p);
        this.#setPrefixes();
      }
    } else {
      this.#rows = this.#rows.filter((r) => r.entry !== e);
      this.#tuples = undefined;
    }
  }

  #holdsEntries(nest: Nest): boolean {
    for (const v of nest.values()) if (!(v instanceof Map) || this.#holdsEntries(v)) return true;
    return false;
  }

  setDefault(action: string, args: readonly (bigint | number)[] = []): void {
    if (this.defaultConst)
      throw new P4RuntimeError('P4_CONST_TABLE', `table ${this.name} has a const default action`);
    const a = this.action(action);
    this.defaultArgs = this.checkArgs(a, args);
    this.defaultData = actionData(a, this.defaultArgs);
    this.defaultAction = a;
  }

  readDirectCounter(handle: number): DirectCounterValue {
    const e = this.#entry(handle);
    return { packets: e.packets, bytes: e.bytes };
  }

  /** Prefix lengths in use, longest first, with their nests and masks. */
  #setPrefixes(): void {
    const w = this.keys[this.#lpmIndex]!.width;
    const prefixes = [...this.#lpm.keys()].sort((a, b) => b - a);
    this.#prefixNests = prefixes.map((p) => this.#lpm.get(p)!);
    this.#lpmMasksB = prefixes.map((p) => (p === 0 ? 0n : full(p) << BigInt(w - p)));
    this.#lpmMasksN = this.#lpmMasksB.map((m) => (this.#lpmNum ? Number(m) : 0));
  }

  clear(): void {
    this.#byHandle.clear();
    this.#entriesChanged();
    this.#exact.clear();
    this.#lpm.clear();
    if (this.#lpmIndex >= 0) this.#setPrefixes();
    this.#rows = [];
    this.#tuples = undefined;
  }
}

/** Split checked arguments by representation: ≤ 53-bit parameters as numbers. */
export function actionData(a: ActionRT, args: readonly bigint[]): ActionData {
  const n: number[] = [];
  const b: bigint[] = [];
  a.params.forEach((p, i) => {
    const v = args[i] ?? 0n;
    n.push(p.width <= NUM_BITS ? Number(v) : 0);
    b.push(p.width <= NUM_BITS ? 0n : v);
  });
  return { n, b };
}
