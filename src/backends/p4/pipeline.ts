/**
 * A control pipeline (ingress or egress) as BMv2 JSON describes it: a graph of tables and
 * conditionals, each naming its successor — by hit/miss, by the action a table ran, or by a
 * condition's truth. A packet walks it from the first node until a node has no successor or
 * an action runs `exit`.
 */

import { int } from './codegen.js';
import type { Meter } from './externs.js';
import type { ActionData, ActionRT, PacketState } from './state.js';
import { NO_ACTION_DATA } from './state.js';
import type { TableRT } from './tables.js';

export interface NodeRT {
  readonly name: string;
  table: TableRT | null;
  test: ((s: PacketState, ad: ActionData) => boolean) | null;
  trueNext: NodeRT | null;
  falseNext: NodeRT | null;
  /** By global action id, for tables that branch on the action run. */
  nextByAction: (NodeRT | null)[];
  hitMiss: boolean;
  hit: NodeRT | null;
  miss: NodeRT | null;
  meter: { meter: Meter; target: number } | null;
  /** A conditional's expression as JS (a number, non-zero is true), when it has one. */
  testJs: string | null;
}

export type MeterColor = (m: Meter, index: number, packetBytes: number) => number;

export function runPipeline(start: NodeRT | null, s: PacketState, meterColor: MeterColor): void {
  let n = start;
  while (n !== null) {
    const t = n.table;
    if (t === null) {
      n = n.test!(s, NO_ACTION_DATA) ? n.trueNext : n.falseNext;
      continue;
    }
    const e = t.lookup(s);
    let action: ActionRT;
    if (e !== null) {
      action = e.action;
      if (t.withCounters) {
        e.packets++;
        e.bytes += s.pkt.length;
      }
      if (n.meter) s.n[n.meter.target] = meterColor(n.meter.meter, e.handle, s.pkt.length);
      action.run(s, e.data);
    } else {
      action = t.defaultAction;
      action.run(s, t.defaultData);
    }
    if (s.exit) return;
    if (n.hitMiss) n = e !== null ? n.hit : n.miss;
    else n = n.nextByAction[action.id] ?? null;
  }
}

/** Every node reachable from `start`, successors after predecessors; null on a cycle. */
function topological(start: NodeRT): NodeRT[] | null {
  const order: NodeRT[] = [];
  const state = new Map<NodeRT, 1 | 2>(); // 1: on the stack, 2: done
  const visit = (n: NodeRT): boolean => {
    const st = state.get(n);
    if (st === 2) return true;
    if (st === 1) return false;
    state.set(n, 1);
    const next = [n.trueNext, n.falseNext, n.hit, n.miss, ...n.nextByAction];
    for (const x of next) if (x !== null && x !== undefined && !visit(x)) return false;
    state.set(n, 2);
    order.push(n);
    return true;
  };
  return visit(start) ? order.reverse() : null;
}

/**
 * The whole control as one generated function: its nodes in topological order, each a block
 * run when the walk reaches it (`nx` holds the index of the next node, -1 at the end) — a
 * table's lookup, its direct counter and meter, the action run with its body inlined when the
 * action has JS, and the successor; a conditional's test inlined when it has JS. Actions and
 * defaults are read from the table at run time, so control-plane changes apply as before.
 * The source holds only numbers and the JS of expressions and actions (itself built from slot
 * numbers and constants); tables, closures and meters are passed in. Null when the graph has
 * a cycle (BMv2 pipelines do not): the caller then walks it with runPipeline.
 */
export function compilePipeline(
  start: NodeRT | null,
  meterColor: MeterColor,
): ((s: PacketState) => void) | null {
  if (start === null) return () => {};
  const nodes = topological(start);
  if (nodes === null) return null;
  const index = new Map(nodes.map((n, i) => [n, i]));
  const at = (n: NodeRT | null | undefined): string =>
    n === null || n === undefined ? '-1' : int(index.get(n)!);
  const T: (TableRT | null)[] = [];
  const C: (((s: PacketState, ad: ActionData) => boolean) | null)[] = [];
  const M: (Meter | null)[] = [];
  const NB: number[][] = [];
  const blocks: string[] = [];
  nodes.forEach((node, k) => {
    const t = node.table;
    T.push(t);
    C.push(node.test);
    M.push(node.meter?.meter ?? null);
    NB.push(node.nextByAction.map((x) => (x === null || x === undefined ? -1 : index.get(x)!)));
    const lines = [`if (nx === ${int(k)}) {`];
    if (t === null) {
      const test = node.testJs !== null ? `(${node.testJs}) !== 0` : `C[${int(k)}](s, NAD)`;
      lines.push(`nx = ${test} ? ${at(node.trueNext)} : ${at(node.falseNext)};`);
    } else {
      lines.push(`const t = T[${int(k)}];`);
      if (t.keys.length > 0 && t.keys.every((key) => key.js !== null)) {
        // the key values computed here, inline, and matched without reading them again
        lines.push('const kn = t.keyN;');
        t.keys.forEach((key, i) => {
          lines.push(`kn[${int(i)}] = ${key.js};`);
        });
        lines.push('const e = t.match(); let a; let ad;');
      } else if (t.keys.length === 0) {
        // a table without keys (p4c makes one per action called outside a table) never hits
        lines.push('const e = null; let a; let ad;');
      } else lines.push('const e = t.lookup(s); let a; let ad;');
      lines.push('if (e !== null) { a = e.action; ad = e.data;');
      if (t.withCounters) lines.push('e.packets++; e.bytes += s.pkt.length;');
      if (node.meter !== null)
        lines.push(`n[${int(node.meter.target)}] = MC(M[${int(k)}], e.handle, s.pkt.length);`);
      lines.push('} else { a = t.defaultAction; ad = t.defaultData; }');
      lines.push('const adn = ad.n;');
      lines.push('switch (a.id) {');
      for (const a of t.actions) {
        const next = node.hitMiss ? '' : `nx = ${at(node.nextByAction[a.id])};`;
        const body = a.js !== null ? `{\n${a.js}\n}` : 'a.run(s, ad); if (s.exit) return;';
        lines.push(`case ${int(a.id)}: ${body} ${next} break;`);
      }
      const fallback = node.hitMiss ? '' : `nx = NB[${int(k)}][a.id] ?? -1;`;
      lines.push(`default: a.run(s, ad); if (s.exit) return; ${fallback}`);
      lines.push('}');
      if (node.hitMiss) lines.push(`nx = e !== null ? ${at(node.hit)} : ${at(node.miss)};`);
    }
    lines.push('}');
    blocks.push(lines.join('\n'));
  });
  const src = `return function control(s) {
const n = s.n; const v = s.valid;
let nx = 0;
${blocks.join('\n')}
};`;
  const make = new Function('T', 'C', 'M', 'NB', 'MC', 'NAD', src);
  return make(T, C, M, NB, meterColor, NO_ACTION_DATA) as (s: PacketState) => void;
}
