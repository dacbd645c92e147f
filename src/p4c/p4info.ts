/**
 * P4Runtime-style metadata (a JSON rendering of p4info): tables with their match fields and
 * action references, actions with parameters, externs; ids are P4Runtime's — an 8-bit
 * resource prefix and a 24-bit hash of the fully qualified name — so they are stable across
 * compilations of the same program.
 */

import type { IrProgram, IrTable } from './ir.js';

export interface P4InfoPreamble {
  readonly id: number;
  readonly name: string;
  readonly alias: string;
}

export interface P4Info {
  readonly pkgInfo: { readonly arch: 'v1model'; readonly name: string };
  readonly tables: readonly {
    readonly preamble: P4InfoPreamble;
    readonly matchFields: readonly {
      readonly id: number;
      readonly name: string;
      readonly bitwidth: number;
      readonly matchType: string;
    }[];
    readonly actionRefs: readonly { readonly id: number }[];
    readonly constDefaultActionId?: number;
    readonly directResourceIds?: readonly number[];
    readonly size: number;
    readonly isConstTable: boolean;
  }[];
  readonly actions: readonly {
    readonly preamble: P4InfoPreamble;
    readonly params: readonly { readonly id: number; readonly name: string; readonly bitwidth: number }[];
  }[];
  readonly counters: readonly {
    readonly preamble: P4InfoPreamble;
    readonly spec: { readonly unit: string };
    readonly size: number;
  }[];
  readonly directCounters: readonly {
    readonly preamble: P4InfoPreamble;
    readonly spec: { readonly unit: string };
    readonly directTableId: number;
  }[];
  readonly meters: readonly {
    readonly preamble: P4InfoPreamble;
    readonly spec: { readonly unit: string };
    readonly size: number;
  }[];
  readonly directMeters: readonly {
    readonly preamble: P4InfoPreamble;
    readonly spec: { readonly unit: string };
    readonly directTableId: number;
  }[];
  readonly registers: readonly {
    readonly preamble: P4InfoPreamble;
    readonly bitwidth: number;
    readonly size: number;
  }[];
}

// P4Runtime resource id prefixes (p4runtime p4info.proto P4Ids).
const PREFIX = {
  action: 0x01,
  table: 0x02,
  counter: 0x12,
  directCounter: 0x13,
  meter: 0x15,
  directMeter: 0x14,
  register: 0x16,
};

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function toP4Info(ir: IrProgram): P4Info {
  const used = new Set<number>();
  const idOf = (kind: keyof typeof PREFIX, name: string): number => {
    let low = fnv1a(name) & 0xffffff;
    let id = ((PREFIX[kind] << 24) | low) >>> 0;
    while (used.has(id)) {
      low = (low + 1) & 0xffffff;
      id = ((PREFIX[kind] << 24) | low) >>> 0;
    }
    used.add(id);
    return id;
  };
  const alias = (n: string) => n.split('.').pop() ?? n;
  const pre = (kind: keyof typeof PREFIX, name: string): P4InfoPreamble => ({
    id: idOf(kind, name),
    name,
    alias: alias(name),
  });

  const user = ir.actions.filter((a) => !a.synthetic);
  const actions = user.map((a) => ({
    preamble: pre('action', a.name),
    params: a.params.map((p, i) => ({ id: i + 1, name: p.name, bitwidth: p.width })),
  }));
  const actionIds = new Map(actions.map((a) => [a.preamble.name, a.preamble.id]));
  const tablesIr = [...ir.ingress.nodes, ...ir.egress.nodes].filter(
    (n): n is IrTable => n.k === 'table' && !n.synthetic,
  );
  const tables = tablesIr.map((t) => {
    const preamble = pre('table', t.name);
    return { t, preamble };
  });
  const tableIds = new Map(tables.map((x) => [x.t.name, x.preamble.id]));
  const counters = ir.counters
    .filter((c) => c.direct === null)
    .map((c) => ({ preamble: pre('counter', c.name), spec: { unit: unit(c.type) }, size: c.size }));
  const directCounters = ir.counters
    .filter((c) => c.direct)
    .map((c) => ({
      preamble: pre('directCounter', c.name),
      spec: { unit: unit(c.type) },
      directTableId: tableIds.get(c.direct!) ?? 0,
    }));
  const meters = ir.meters
    .filter((m) => m.direct === null)
    .map((m) => ({ preamble: pre('meter', m.name), spec: { unit: unit(m.type) }, size: m.size }));
  const directMeters = ir.meters
    .filter((m) => m.direct)
    .map((m) => ({
      preamble: pre('directMeter', m.name),
      spec: { unit: unit(m.type) },
      directTableId: tableIds.get(m.direct!) ?? 0,
    }));
  const directIds = new Map<string, number[]>();
  for (const d of [...directCounters, ...directMeters]) {
    const t = [...tableIds].find(([, id]) => id === d.directTableId)?.[0];
    if (t) directIds.set(t, [...(directIds.get(t) ?? []), d.preamble.id]);
  }
  return {
    pkgInfo: { arch: 'v1model', name: ir.name },
    tables: tables.map(({ t, preamble }) => ({
      preamble,
      matchFields: t.keys.map((k, i) => ({
        id: i + 1,
        name: k.name,
        bitwidth: k.width,
        matchType: k.match.toUpperCase(),
      })),
      actionRefs: t.actions.map((a) => ({ id: actionIds.get(a)! })),
      ...(t.defaultConst ? { constDefaultActionId: actionIds.get(t.defaultAction.action)! } : {}),
      ...(directIds.has(t.name) ? { directResourceIds: directIds.get(t.name)! } : {}),
      size: t.size,
      isConstTable: t.entriesConst,
    })),
    actions,
    counters,
    directCounters,
    meters,
    directMeters,
    registers: ir.registers.map((r) => ({
      preamble: pre('register', r.name),
      bitwidth: r.width,
      size: r.size,
    })),
  };
}

function unit(t: string): string {
  return t === 'packets' ? 'PACKETS' : t === 'bytes' ? 'BYTES' : 'BOTH';
}
