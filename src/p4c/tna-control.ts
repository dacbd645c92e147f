/**
 * A control's IR — a DAG of table and condition nodes, as BMv2 wants it — turned back into
 * structured P4 (`if`, `t.apply().hit`, `switch (t.apply().action_run)`) for the TNA rewrite.
 *
 * Each branching node's branches run until its immediate post-dominator (the first node every
 * path from it reaches; the end of the control counts as a node), where the code joins again.
 * A DAG built from structured P4, with `exit` and `return` edges going to the end, always
 * structures this way; a graph that would need a table applied at two places is refused.
 */

import type { IrAction, IrControl, IrExpr, IrNode, IrTable } from './ir.js';
import { TnaUnsupportedError } from './tna-layout.js';

export type Structured =
  /** A synthetic table: statements written in the apply block, emitted inline. */
  | { readonly k: 'inline'; readonly table: IrTable }
  | { readonly k: 'apply'; readonly table: IrTable }
  /** The control ends here (a `return` in the source, or the end of a branch that skips the join). */
  | { readonly k: 'return' }
  | {
      readonly k: 'if';
      readonly test: IrExpr;
      readonly whenTrue: Structured[];
      readonly whenFalse: Structured[];
    }
  | { readonly k: 'hit'; readonly table: IrTable; readonly hit: Structured[]; readonly miss: Structured[] }
  | {
      readonly k: 'switch';
      readonly table: IrTable;
      readonly cases: { readonly action: string; readonly body: Structured[] }[];
      readonly otherwise: Structured[];
    };

const END = '$end';
/** The sink every `exit` leads to (a different place than the end of the control). */
const EXIT = '$exit';

function successors(n: IrNode): string[] {
  const out =
    n.k === 'cond'
      ? [n.trueNext, n.falseNext]
      : n.next.hitMiss
        ? [n.next.hit, n.next.miss]
        : [...(baseReachable(n) ? [n.next.base] : []), ...Object.values(n.next.byAction ?? {})];
  return [...new Set(out.map((s) => s ?? END))];
}

/** A `switch` that names every action of its table never takes the default way out. */
function baseReachable(t: IrTable): boolean {
  const by = t.next.byAction;
  return by === null || !t.actions.every((a) => a in by);
}

/** Does a synthetic table's statement list end the control with `exit`? */
function exits(t: IrTable, actions: ReadonlyMap<string, IrAction>): boolean {
  return actions.get(t.defaultAction.action)?.body.some((s) => s.k === 'exit') ?? false;
}

export function structure(control: IrControl, actions: ReadonlyMap<string, IrAction>): Structured[] {
  const nodes = new Map(control.nodes.map((n) => [n.name, n]));
  // Where the branches of a node join again: its immediate post-dominator, over post-dominator
  // sets that leave out the branches that end abruptly, so `if (c) { ...; exit; } rest` joins
  // at `rest` instead of copying it into both branches. Abrupt: an `exit` node; an edge
  // straight to the end beside one that goes on (a `return`); a branch every path of which
  // exits in a region of its own (nothing in it entered from elsewhere). When every branch is abrupt they
  // all count. pdom(n) = {n} ∪ ⋂ pdom(constraining successors).
  const isExit = (name: string): boolean => {
    const n = nodes.get(name);
    return n?.k === 'table' && n.synthetic && n.next.base === null && exits(n, actions);
  };
  const succ = (name: string): string[] => (isExit(name) ? [EXIT] : successors(nodes.get(name)!));
  // Predecessors among the live nodes (a table after a switch that names every action is dead).
  const preds = new Map<string, string[]>();
  const live = new Set<string>();
  const mark = (n: string): void => {
    if (n === END || n === EXIT || live.has(n)) return;
    live.add(n);
    for (const x of succ(n)) {
      preds.set(x, [...(preds.get(x) ?? []), n]);
      mark(x);
    }
  };
  if (control.init !== null) mark(control.init);
  const reachMemo = new Map<string, Set<string>>();
  /** The nodes reachable from a node, itself included, sinks excluded. */
  const reach = (name: string): Set<string> => {
    if (name === END || name === EXIT) return new Set();
    const known = reachMemo.get(name);
    if (known) return known;
    const r = new Set([name]);
    reachMemo.set(name, r);
    for (const x of succ(name)) for (const y of reach(x)) r.add(y);
    return r;
  };
  const endMemo = new Map<string, boolean>();
  const reachesEnd = (name: string): boolean => {
    if (name === END) return true;
    if (name === EXIT) return false;
    const known = endMemo.get(name);
    if (known !== undefined) return known;
    endMemo.set(name, false);
    const r = succ(name).some(reachesEnd);
    endMemo.set(name, r);
    return r;
  };
  const pdom = new Map<string, Set<string>>([
    [END, new Set([END])],
    [EXIT, new Set([EXIT])],
  ]);
  const pdomOf = (name: string): Set<string> => {
    const known = pdom.get(name);
    if (known) return known;
    if (!nodes.has(name))
      throw new TnaUnsupportedError(`control ${control.name}`, `names an unknown node ${name}`);
    pdom.set(name, new Set([name])); // a cycle would stop here; the IR has none
    const all = succ(name);
    const goesOn = all.some((x) => x !== END);
    const abrupt = (x: string): boolean => {
      if (x === END) return goesOn;
      if (x === EXIT || isExit(x)) return true;
      if (reachesEnd(x)) return false;
      // Private to this branch: nothing in it is entered from anywhere else.
      const region = reach(x);
      return [...region].every((y) => (preds.get(y) ?? []).every((p) => p === name || region.has(p)));
    };
    const constraining = all.filter((x) => !abrupt(x));
    const sets = (constraining.length > 0 ? constraining : all).map(pdomOf);
    const common = new Set([...sets[0]!].filter((x) => sets.every((s) => s.has(x))));
    common.add(name);
    pdom.set(name, common);
    return common;
  };
  /** The immediate post-dominator: the strict post-dominator that all the others post-dominate. */
  const ipdom = (name: string): string => {
    const strict = [...pdomOf(name)].filter((x) => x !== name);
    const d = strict.find((x) => strict.every((o) => pdomOf(x).has(o)));
    return d === undefined || d === EXIT ? END : d;
  };
  const applied = new Set<string>();
  const applyOnce = (t: IrTable): void => {
    if (t.synthetic) return;
    if (applied.has(t.name)) {
      throw new TnaUnsupportedError(
        `control ${control.name}`,
        `has control flow that cannot be written back as structured P4 without applying table ${t.name} twice`,
      );
    }
    applied.add(t.name);
  };

  const run = (from: string | null, stop: string): Structured[] => {
    const out: Structured[] = [];
    let at = from ?? END;
    while (at !== stop) {
      if (at === END || at === EXIT) {
        // The branch ends the control before the join: `return` unless it just exited.
        const last = out[out.length - 1];
        if (!(last?.k === 'inline' && isExit(last.table.name))) out.push({ k: 'return' });
        break;
      }
      const n = nodes.get(at)!;
      if (n.k === 'cond') {
        const join = ipdom(at);
        out.push({
          k: 'if',
          test: n.test,
          whenTrue: run(n.trueNext, join),
          whenFalse: run(n.falseNext, join),
        });
        at = join;
        continue;
      }
      if (n.synthetic) {
        out.push({ k: 'inline', table: n });
        at = n.next.base ?? END;
        continue;
      }
      applyOnce(n);
      if (n.next.hitMiss) {
        const join = ipdom(at);
        out.push({ k: 'hit', table: n, hit: run(n.next.hit, join), miss: run(n.next.miss, join) });
        at = join;
        continue;
      }
      if (n.next.byAction) {
        const join = ipdom(at);
        // Actions that continue where the table's default does need no case of their own.
        const cases = Object.entries(n.next.byAction)
          .filter(([, next]) => next !== n.next.base || !baseReachable(n))
          .map(([action, next]) => ({ action, body: run(next, join) }));
        out.push({ k: 'switch', table: n, cases, otherwise: baseReachable(n) ? run(n.next.base, join) : [] });
        at = join;
        continue;
      }
      out.push({ k: 'apply', table: n });
      at = n.next.base ?? END;
    }
    return stop === END ? foldReturns(out) : out;
  };
  return run(control.init, END);
}

/**
 * `if (c) { } else { return; } rest` at the end of the control reads better as
 * `if (c) { rest }` (and the mirror image as the else branch): the same program.
 */
function foldReturns(list: Structured[]): Structured[] {
  const isReturn = (b: readonly Structured[]) => b.length === 1 && b[0]!.k === 'return';
  for (let i = 0; i < list.length; i++) {
    const s = list[i]!;
    const rest = list.slice(i + 1);
    if (s.k === 'if' && s.whenTrue.length === 0 && isReturn(s.whenFalse)) {
      return [...list.slice(0, i), { ...s, whenTrue: foldReturns(rest), whenFalse: [] }];
    }
    if (s.k === 'if' && s.whenFalse.length === 0 && isReturn(s.whenTrue)) {
      return [...list.slice(0, i), { ...s, whenTrue: [], whenFalse: foldReturns(rest) }];
    }
    if (s.k === 'hit' && s.hit.length === 0 && isReturn(s.miss)) {
      return [...list.slice(0, i), { ...s, hit: foldReturns(rest), miss: [] }];
    }
    if (s.k === 'hit' && s.miss.length === 0 && isReturn(s.hit)) {
      return [...list.slice(0, i), { ...s, hit: [], miss: foldReturns(rest) }];
    }
  }
  return list;
}
