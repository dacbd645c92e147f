/**
 * Sub-parsers, inlined as p4c does for BMv2: `S() s;` in a parser and `s.apply(pkt, hdr, x);`
 * in one of its states splice S's states into the parser. The state is split at the call: the
 * statements before it end with `transition s_1_start`, S's states follow (renamed `s_1_…`,
 * their `accept` going to a new state `<state>_1_after` holding the statements after the call
 * and the original transition), and S's locals become the parser's (renamed too).
 *
 * S's parameters are replaced by the arguments themselves. That is exactly copy-in/copy-out as
 * long as no two arguments overlap and every argument is a path or a constant — both checked;
 * anything else is a P4CompileError at the call.
 */

import type { Expr, LocalDecl, ParserDecl, ParserState, SelectCase, Stmt, Transition } from './ast.js';
import { fail } from './errors.js';

/** A pass over a parser; `parserNamed` finds parser declarations by name. */
export function inlineSubparsers(
  d: ParserDecl,
  parserNamed: (name: string) => ParserDecl | null,
): ParserDecl {
  const subs = new Map<string, ParserDecl>();
  const locals: LocalDecl[] = [];
  for (const l of d.locals) {
    const sub = l.k === 'instance' && l.type.k === 'named' ? parserNamed(l.type.name) : null;
    if (sub && l.k === 'instance') {
      if (l.args.length > 0 || sub.ctorParams.length > 0)
        fail('unsupported', l.pos, `constructor parameters of parser ${sub.name}`);
      subs.set(l.name, sub);
    } else {
      locals.push(l);
    }
  }
  if (subs.size === 0) return d;
  const names = new Set(d.states.map((s) => s.name));
  let n = 0;
  const states: ParserState[] = [];
  const queue = [...d.states];
  while (queue.length > 0) {
    const s = queue.shift()!;
    const at = s.body.findIndex((x) => subparserCall(x, subs) !== null);
    if (at < 0) {
      states.push(s);
      continue;
    }
    const call = subparserCall(s.body[at]!, subs)!;
    const sub = subs.get(call.instance)!;
    if (
      sub.states.some((x) => x.body.some((y) => subparserCall(y, subs) !== null)) ||
      sub.locals.some((l) => l.k === 'instance')
    )
      fail('unsupported', call.pos, `sub-parser ${sub.name} with sub-parsers of its own`);
    const tag = `${call.instance}_${++n}`;
    const after = fresh(`${s.name}_${n}_after`, names);
    const rename = new Map<string, string>(sub.states.map((x) => [x.name, `${tag}_${x.name}`]));
    // Parameters become the arguments; S's locals get the instance's prefix.
    const subst = new Map<string, Expr>();
    if (call.args.length !== sub.params.length)
      fail(
        'type',
        call.pos,
        `${sub.params.length} argument(s) to ${call.instance}.apply`,
        String(call.args.length),
      );
    const paths: string[] = [];
    sub.params.forEach((p, i) => {
      const a = call.args[i]!;
      const path = pathText(a);
      if (path === null && a.k !== 'int' && a.k !== 'bool')
        fail('unsupported', a.pos, `an argument of ${call.instance}.apply that is not a path or a constant`);
      if (path !== null) {
        const clash = paths.find((o) => o === path || o.startsWith(`${path}.`) || path.startsWith(`${o}.`));
        if (clash !== undefined)
          fail(
            'unsupported',
            a.pos,
            `arguments of ${call.instance}.apply that overlap (${clash} and ${path})`,
          );
        paths.push(path);
      }
      subst.set(p.name, a);
    });
    for (const l of sub.locals) {
      const renamed = `${tag}_${l.name}`;
      subst.set(l.name, { k: 'name', pos: l.pos, name: renamed });
      locals.push(renameLocal(l, renamed, subst));
    }
    const target = (x: string): string =>
      x === 'accept' ? after : x === 'reject' ? 'reject' : (rename.get(x) ?? x);
    for (const x of sub.states) {
      names.add(rename.get(x.name)!);
      states.push({
        ...x,
        name: rename.get(x.name)!,
        body: x.body.map((y) => stmt(y, subst)),
        ...(x.transition ? { transition: transition(x.transition, subst, target) } : {}),
      });
    }
    states.push({
      ...s,
      body: s.body.slice(0, at),
      transition: { k: 'goto', pos: call.pos, next: rename.get('start')! },
    });
    // The rest of the state may call a sub-parser again: it goes back on the queue.
    queue.unshift({ ...s, name: after, body: s.body.slice(at + 1) });
  }
  return { ...d, locals, states };
}

function fresh(base: string, taken: Set<string>): string {
  let n = base;
  for (let i = 0; taken.has(n); i++) n = `${base}_${i}`;
  taken.add(n);
  return n;
}

function subparserCall(
  s: Stmt,
  subs: ReadonlyMap<string, ParserDecl>,
): { instance: string; args: Expr[]; pos: Stmt['pos'] } | null {
  if (s.k !== 'call' || s.call.k !== 'call') return null;
  const f = s.call.fn;
  if (f.k !== 'member' || f.name !== 'apply' || f.base.k !== 'name' || !subs.has(f.base.name)) return null;
  return { instance: f.base.name, args: s.call.args.map((a) => a.value), pos: s.pos };
}

function pathText(e: Expr): string | null {
  if (e.k === 'name') return e.name;
  if (e.k === 'member') {
    const b = pathText(e.base);
    return b === null ? null : `${b}.${e.name}`;
  }
  if (e.k === 'index') return pathText(e.base);
  return null;
}

function renameLocal(l: LocalDecl, name: string, subst: ReadonlyMap<string, Expr>): LocalDecl {
  switch (l.k) {
    case 'var':
      return { ...l, name, ...(l.init ? { init: expr(l.init, subst) } : {}) };
    case 'const':
      return { ...l, name, value: expr(l.value, subst) };
    case 'value_set':
      return { ...l, name };
    default:
      return fail('unsupported', l.pos, `a ${l.k} declaration inside an inlined sub-parser`);
  }
}

function transition(
  t: Transition,
  subst: ReadonlyMap<string, Expr>,
  target: (s: string) => string,
): Transition {
  if (t.k === 'goto') return { ...t, next: target(t.next) };
  const cases: SelectCase[] = t.cases.map((c) => ({
    ...c,
    keyset: expr(c.keyset, subst),
    next: target(c.next),
  }));
  return { ...t, on: t.on.map((e) => expr(e, subst)), cases };
}

function stmt(s: Stmt, subst: ReadonlyMap<string, Expr>): Stmt {
  const e = (x: Expr) => expr(x, subst);
  switch (s.k) {
    case 'assign':
      return { ...s, target: e(s.target), value: e(s.value) };
    case 'call':
      return { ...s, call: e(s.call) };
    case 'if': {
      const then = stmt(s.then, subst);
      return { ...s, test: e(s.test), then, ...(s.else ? { else: stmt(s.else, subst) } : {}) };
    }
    case 'block':
      return { ...s, body: s.body.map((x) => stmt(x, subst)) };
    case 'var':
      return { ...s, decl: { ...s.decl, ...(s.decl.init ? { init: e(s.decl.init) } : {}) } };
    case 'const':
      return { ...s, decl: { ...s.decl, value: e(s.decl.value) } };
    case 'switch':
      return {
        ...s,
        on: e(s.on),
        cases: s.cases.map((c) => ({ ...c, ...(c.body ? { body: stmt(c.body, subst) } : {}) })),
      };
    case 'return':
      return s.value ? { ...s, value: e(s.value) } : s;
    default:
      return s;
  }
}

/** The expression with parameter and local names replaced (a name is never a field name). */
function expr(x: Expr, subst: ReadonlyMap<string, Expr>): Expr {
  const e = (y: Expr) => expr(y, subst);
  switch (x.k) {
    case 'name':
      return subst.get(x.name) ?? x;
    case 'member':
      return { ...x, base: e(x.base) };
    case 'index':
      return { ...x, base: e(x.base), index: e(x.index) };
    case 'slice':
      return { ...x, base: e(x.base), hi: e(x.hi), lo: e(x.lo) };
    case 'call':
      return { ...x, fn: e(x.fn), args: x.args.map((a) => ({ ...a, value: e(a.value) })) };
    case 'unary':
    case 'cast':
      return { ...x, arg: e(x.arg) };
    case 'binary':
      return { ...x, left: e(x.left), right: e(x.right) };
    case 'cond': {
      const then = e(x.then);
      return { ...x, test: e(x.test), then, else: e(x.else) };
    }
    case 'list':
      return { ...x, elems: x.elems.map(e) };
    case 'mask':
      return { ...x, value: e(x.value), mask: e(x.mask) };
    case 'range':
      return { ...x, lo: e(x.lo), hi: e(x.hi) };
    default:
      return x;
  }
}
