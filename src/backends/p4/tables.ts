/**
 * Match-action tables of the behavioral switch, with BMv2's matching rules: exact keys by
 * hash lookup; one lpm key by longest prefix (a hash map per prefix length, longest first);
 * ternary, range and optional keys by priority, where — as in BMv2 — a lower priority number
 * wins, and equal priorities go to the entry added first.
 */

import { P4RuntimeError } from './errors.js';
import type { ActionRT, PacketState } from './state.js';

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
  readonly get: (s: PacketState) => bigint;
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
  data: readonly bigint[];
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

export class TableRT {
  readonly name: string;
  readonly keys: readonly TableKeyRT[];
  readonly actions: readonly ActionRT[];
  readonly size: number;
  readonly withCounters: boolean;
  defaultAction: ActionRT;
  defaultData: readonly bigint[];
  readonly defaultConst: boolean;
  /** Tables whose entries were declared `const entries` refuse runtime changes. */
  constEntries = false;
  readonly #byHandle = new Map<number, EntryRT>();
  readonly #exact = new Map<string, EntryRT>();
  /** Single-key tables index by the bigint itself: no key string per lookup. */
  readonly #exact1 = new Map<bigint, EntryRT>();
  readonly #lpm1 = new Map<number, Map<bigint, EntryRT>>();
  #lpmMasks: bigint[] = [];
  readonly #lpm = new Map<number, Map<string, EntryRT>>();
  #prefixes: number[] = [];
  #ordered: EntryRT[] = [];
  readonly #kind: 'exact' | 'lpm' | 'priority' | 'empty';
  readonly #lpmIndex: number;
  #nextHandle = 0;
  #seq = 0;

  constructor(init: {
    name: string;
    keys: readonly TableKeyRT[];
    actions: readonly ActionRT[];
    size: number;
    withCounters: boolean;
    defaultAction: ActionRT;
    defaultData: readonly bigint[];
    defaultConst: boolean;
  }) {
    this.name = init.name;
    this.keys = init.keys;
    this.actions = init.actions;
    this.size = init.size;
    this.withCounters = init.withCounters;
    this.defaultAction = init.defaultAction;
    this.defaultData = init.defaultData;
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
  }

  get needsPriority(): boolean {
    return this.#kind === 'priority';
  }

  get entryCount(): number {
    return this.#byHandle.size;
  }

  // ------------------------------------------------------------ data plane

  lookup(s: PacketState): EntryRT | null {
    switch (this.#kind) {
      case 'empty':
        return null;
      case 'exact': {
        if (this.#exact.size === 0) return null;
        const keys = this.keys;
        if (keys.length === 1) return this.#exact1.get(keys[0]!.get(s)) ?? null;
        let k = '';
        for (const key of keys) k += `${key.get(s).toString(16)},`;
        return this.#exact.get(k) ?? null;
      }
      case 'lpm': {
        const prefixes = this.#prefixes;
        if (this.keys.length === 1) {
          const v = this.keys[0]!.get(s);
          for (let i = 0; i < prefixes.length; i++) {
            const e = this.#lpm1.get(prefixes[i]!)!.get(v & this.#lpmMasks[i]!);
            if (e) return e;
          }
          return null;
        }
        const values = this.keys.map((k) => k.get(s));
        for (let i = 0; i < prefixes.length; i++) {
          const e = this.#lpm.get(prefixes[i]!)!.get(this.#lpmKey(values, this.#lpmMasks[i]!));
          if (e) return e;
        }
        return null;
      }
      case 'priority': {
        const values = this.keys.map((k) => k.get(s));
        for (const e of this.#ordered) if (this.#matches(e, values)) return e;
        return null;
      }
    }
  }

  #matches(e: EntryRT, values: readonly bigint[]): boolean {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      const m = e.keys[i]!;
      if (this.keys[i]!.match === 'range') {
        if (v < m.lo || v > m.hi) return false;
      } else if ((v & m.mask) !== m.value) {
        return false;
      }
    }
    return true;
  }

  #lpmKey(values: readonly bigint[], lpmMask: bigint): string {
    let k = '';
    for (let i = 0; i < values.length; i++) {
      const v = i === this.#lpmIndex ? values[i]! & lpmMask : values[i]!;
      k += `${v.toString(16)},`;
    }
    return k;
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

  actionData(a: ActionRT, args: readonly (bigint | number)[]): bigint[] {
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

  #indexKey(keys: readonly KeyMatch[]): string {
    if (this.#kind === 'exact') {
      if (keys.length === 1) return keys[0]!.value.toString(16);
      return keys.map((k) => `${k.value.toString(16)},`).join('');
    }
    return keys.map((k) => `${k.value.toString(16)},`).join('');
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
    const data = this.actionData(action, spec.args ?? []);
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
      handle: this.#nextHandle++,
      keys,
      action,
      data,
      priority,
      seq: this.#seq++,
      packets: 0,
      bytes: 0,
    };
    if (this.#kind === 'exact') {
      const k = this.#indexKey(keys);
      if (this.#exact.has(k))
        throw new P4RuntimeError(
          'P4_ENTRY_DUPLICATE',
          `table ${this.name} already has an entry for this key`,
        );
      this.#exact.set(k, entry);
      if (keys.length === 1) this.#exact1.set(keys[0]!.value, entry);
    } else if (this.#kind === 'lpm') {
      const p = keys[this.#lpmIndex]!.prefix;
      let m = this.#lpm.get(p);
      if (!m) {
        m = new Map();
        this.#lpm.set(p, m);
        this.#lpm1.set(p, new Map());
        this.#setPrefixes([...this.#lpm.keys()].sort((a, b) => b - a));
      }
      const k = this.#indexKey(keys);
      if (m.has(k))
        throw new P4RuntimeError(
          'P4_ENTRY_DUPLICATE',
          `table ${this.name} already has an entry for this prefix`,
        );
      m.set(k, entry);
      if (keys.length === 1) this.#lpm1.get(p)!.set(keys[0]!.value, entry);
    } else {
      const dup = this.#ordered.find(
        (e) => e.priority === priority && JSON.stringify(e.keys, big) === JSON.stringify(keys, big),
      );
      if (dup)
        throw new P4RuntimeError(
          'P4_ENTRY_DUPLICATE',
          `table ${this.name} already has this entry at priority ${priority}`,
        );
      this.#ordered.push(entry);
      this.#ordered.sort((a, b) => a.priority - b.priority || a.seq - b.seq);
    }
    this.#byHandle.set(entry.handle, entry);
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
    e.data = this.actionData(a, args);
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
    if (this.#kind === 'exact') {
      this.#exact.delete(this.#indexKey(e.keys));
      this.#exact1.delete(e.keys[0]!.value);
    } else if (this.#kind === 'lpm') {
      const p = e.keys[this.#lpmIndex]!.prefix;
      const m = this.#lpm.get(p)!;
      m.delete(this.#indexKey(e.keys));
      this.#lpm1.get(p)!.delete(e.keys[0]!.value);
      if (m.size === 0) {
        this.#lpm.delete(p);
        this.#lpm1.delete(p);
        this.#setPrefixes(this.#prefixes.filter((x) => x !== p));
      }
    } else this.#ordered = this.#ordered.filter((x) => x !== e);
  }

  setDefault(action: string, args: readonly (bigint | number)[] = []): void {
    if (this.defaultConst)
      throw new P4RuntimeError('P4_CONST_TABLE', `table ${this.name} has a const default action`);
    const a = this.action(action);
    this.defaultData = this.actionData(a, args);
    this.defaultAction = a;
  }

  readDirectCounter(handle: number): DirectCounterValue {
    const e = this.#entry(handle);
    return { packets: e.packets, bytes: e.bytes };
  }

  #setPrefixes(prefixes: number[]): void {
    const w = this.keys[this.#lpmIndex]!.width;
    this.#prefixes = prefixes;
    this.#lpmMasks = prefixes.map((p) => (p === 0 ? 0n : full(p) << BigInt(w - p)));
  }

  clear(): void {
    this.#byHandle.clear();
    this.#exact.clear();
    this.#exact1.clear();
    this.#lpm.clear();
    this.#lpm1.clear();
    this.#setPrefixes([]);
    this.#ordered = [];
  }
}

function big(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}
