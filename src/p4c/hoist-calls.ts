/**
 * Calls inside larger expressions, made into statements the lowerer already handles.
 *
 * `h.x = (bit<16>)(a << f(b)) + 1;` becomes `T __call1_f = f(b); h.x = (bit<16>)(a << __call1_f) + 1;`,
 * calls hoisted left to right in P4's evaluation order (arguments before the call that takes
 * them). A table applied inside an expression (`bool x = c || t.apply().hit;`) becomes
 * `bool __hit2 = false; if (!c) { if (t.apply().hit) { __hit2 = true; } }`.
 *
 * Short-circuit evaluation is kept: a function with `out`/`inout` parameters (the only way a
 * P4 function has an effect) and a table apply run only under the condition that reaches them
 * — the left of `&&` / `||`, the test of `?:` — and a literal `true`/`false` decides its
 * operator statically. A function without effects is simply evaluated first. The one refusal:
 * a writing function whose written argument overlaps a path the same statement reads elsewhere
 * (left-to-right evaluation would read the old value first) — a P4CompileError at the call.
 */

import type { Expr, FunctionDecl, Stmt } from './ast.js';
import { fail } from './errors.js';

export interface HoistContext {
  /** The function a call's name resolves to, or null (actions, externs, methods...). */
  readonly functionOf: (name: string) => FunctionDecl | null;
  /** A fresh, unique suffix for a temporary. */
  readonly fresh: () => number;
}

export interface Hoisted {
  /** Declarations `T tmp = f(args);` to run first, in order. */
  readonly pre: readonly Stmt[];
  readonly stmt: Stmt;
}

interface Walk {
  readonly pre: Stmt[];
  /** Out/inout argument paths of the impure calls hoisted so far, for the overlap check. */
  readonly written: { readonly path: string; readonly fn: string; readonly pos: Expr['pos'] }[];
}

const isWriting = (d: FunctionDecl): boolean => d.params.some((p) => p.dir === 'out' || p.dir === 'inout');

/** `a.b[i].c` → `a.b.c`: the storage path an expression names, or null for a computed value. */
function pathOf(e: Expr): string | null {
  switch (e.k) {
    case 'name':
      return e.name;
    case 'member': {
      const b = pathOf(e.base);
      return b === null ? null : `${b}.${e.name}`;
    }
    case 'index':
    case 'slice':
      // Conservative: any element or bit range stands for the whole stack or field.
      return pathOf(e.base);
    default:
      return null;
  }
}

const overlaps = (a: string, b: string): boolean => a === b || a.startsWith(`${b}.`) || b.startsWith(`${a}.`);

/** Every storage path the expression reads, skipping the argument lists of the given calls. */
function readPaths(e: Expr, skip: ReadonlySet<Expr>, out: string[]): void {
  if (skip.has(e)) return;
  const p = e.k === 'name' || e.k === 'member' ? pathOf(e) : null;
  if (p !== null) {
    out.push(p);
    return;
  }
  switch (e.k) {
    case 'index':
      readPaths(e.base, skip, out);
      readPaths(e.index, skip, out);
      return;
    case 'slice':
      readPaths(e.base, skip, out);
      return;
    case 'call':
      readPaths(e.fn, skip, out);
      for (const a of e.args) readPaths(a.value, skip, out);
      return;
    case 'unary':
    case 'cast':
      readPaths(e.arg, skip, out);
      return;
    case 'binary':
      readPaths(e.left, skip, out);
      readPaths(e.right, skip, out);
      return;
    case 'cond':
      readPaths(e.test, skip, out);
      readPaths(e.then, skip, out);
      readPaths(e.else, skip, out);
      return;
    case 'list':
      for (const x of e.elems) readPaths(x, skip, out);
      return;
    default:
      return;
  }
}

/** `g && c`, with no guard meaning "always". */
const guarded = (g: Expr | null, c: Expr): Expr =>
  g ? { k: 'binary', pos: c.pos, op: '&&', left: g, right: c } : c;
const not = (c: Expr): Expr => ({ k: 'unary', pos: c.pos, op: '!', arg: c });

/** `if (test) body` as a statement node. */
function ifStmt(test: Expr, body: Stmt): Stmt {
  // biome-ignore lint/suspicious/noThenProperty: the AST names an if's branches then/else
  return { k: 'if', pos: test.pos, test, then: body };
}

/** `e` with its test and branches replaced. */
function condExpr(e: Extract<Expr, { k: 'cond' }>, test: Expr, yes: Expr, no: Expr): Expr {
  // biome-ignore lint/suspicious/noThenProperty: the AST names a conditional's branches then/else
  return { ...e, test, then: yes, else: no };
}

/** `t.apply().hit` / `.miss`: the table and which outcome, or null. */
export function tableOutcome(e: Expr): { readonly table: Expr; readonly hit: boolean } | null {
  if (e.k !== 'member' || (e.name !== 'hit' && e.name !== 'miss')) return null;
  const c = e.base;
  if (c.k !== 'call' || c.args.length > 0 || c.fn.k !== 'member' || c.fn.name !== 'apply') return null;
  return { table: c.fn.base, hit: e.name === 'hit' };
}

/**
 * `guard`: the condition under which this subexpression is evaluated (null: always) — the
 * left of `&&` / `||`, the test of `?:`. A call that has an effect runs under it.
 */
function rewrite(e: Expr, guard: Expr | null, ctx: HoistContext, w: Walk, hoisted: Set<Expr>): Expr {
  const r = (x: Expr, g = guard) => rewrite(x, g, ctx, w, hoisted);
  const outcome = tableOutcome(e);
  if (outcome) {
    // A table applied inside an expression: `bool h = false; if (guard) { if (t.apply().hit) { h = true; } }`.
    const name = `__hit${ctx.fresh()}`;
    const set: Stmt = {
      k: 'assign',
      pos: e.pos,
      target: { k: 'name', pos: e.pos, name },
      value: { k: 'bool', pos: e.pos, value: true },
    };
    const apply = ifStmt(e, set);
    w.pre.push({
      k: 'var',
      pos: e.pos,
      decl: {
        k: 'var',
        pos: e.pos,
        name,
        type: { k: 'bool', pos: e.pos },
        init: { k: 'bool', pos: e.pos, value: false },
      },
    });
    w.pre.push(guard ? ifStmt(guard, apply) : apply);
    hoisted.add(e);
    return { k: 'name', pos: e.pos, name };
  }
  switch (e.k) {
    case 'call': {
      const d = e.fn.k === 'name' ? ctx.functionOf(e.fn.name) : null;
      // Arguments of a call with an effect are evaluated only when it is.
      const writing = d !== null && isWriting(d);
      const args = e.args.map((a) => ({ ...a, value: r(a.value, writing ? guard : null) }));
      const call: Expr = { ...e, args };
      if (!d || d.ret.k === 'void') return call;
      if (writing) {
        d.params.forEach((p, i) => {
          const a = e.args[i];
          const path = a && (p.dir === 'out' || p.dir === 'inout') ? pathOf(a.value) : null;
          if (path !== null) w.written.push({ path, fn: d.name, pos: e.pos });
        });
      }
      const name = `__call${ctx.fresh()}_${d.name}`;
      hoisted.add(call);
      if (writing && guard) {
        // Runs only when the guard holds, as left-to-right short-circuit evaluation says.
        w.pre.push({ k: 'var', pos: e.pos, decl: { k: 'var', pos: e.pos, name, type: d.ret } });
        w.pre.push(
          ifStmt(guard, { k: 'assign', pos: e.pos, target: { k: 'name', pos: e.pos, name }, value: call }),
        );
      } else {
        // No effect (or always run): evaluating it first is the same as evaluating it in place.
        w.pre.push({ k: 'var', pos: e.pos, decl: { k: 'var', pos: e.pos, name, type: d.ret, init: call } });
      }
      return { k: 'name', pos: e.pos, name };
    }
    case 'binary': {
      if ((e.op === '&&' || e.op === '||') && e.left.k === 'bool') {
        // A literal decides the operator: the right side runs always, or never.
        const decides = e.op === '||' ? e.left.value : !e.left.value;
        return decides ? e.left : r(e.right);
      }
      const left = r(e.left);
      if (e.op === '&&') return { ...e, left, right: r(e.right, guarded(guard, left)) };
      if (e.op === '||') return { ...e, left, right: r(e.right, guarded(guard, not(left))) };
      return { ...e, left, right: r(e.right) };
    }
    case 'cond': {
      if (e.test.k === 'bool') return r(e.test.value ? e.then : e.else);
      const test = r(e.test);
      return condExpr(e, test, r(e.then, guarded(guard, test)), r(e.else, guarded(guard, not(test))));
    }
    case 'unary':
    case 'cast':
      return { ...e, arg: r(e.arg) };
    case 'member':
      return { ...e, base: r(e.base) };
    case 'index':
      return { ...e, base: r(e.base), index: r(e.index) };
    case 'slice':
      return { ...e, base: r(e.base), hi: r(e.hi), lo: r(e.lo) };
    case 'list':
      return { ...e, elems: e.elems.map((x) => r(x)) };
    default:
      return e;
  }
}

/** Does the expression contain a call at all? Most statements do not: they pass through untouched. */
function hasCall(e: Expr): boolean {
  switch (e.k) {
    case 'call':
      return true;
    case 'binary':
      return hasCall(e.left) || hasCall(e.right);
    case 'cond':
      return hasCall(e.test) || hasCall(e.then) || hasCall(e.else);
    case 'unary':
    case 'cast':
      return hasCall(e.arg);
    case 'member':
      return hasCall(e.base);
    case 'index':
      return hasCall(e.base) || hasCall(e.index);
    case 'slice':
      return hasCall(e.base);
    case 'list':
      return e.elems.some(hasCall);
    default:
      return false;
  }
}

/**
 * Rewrite one statement. A call that is the whole right-hand side (`x = f(a)`, `T x = f(a);`)
 * or the whole statement (`f(a);`) stays where it is — the lowerer inlines those directly —
 * only calls nested inside its arguments or inside larger expressions move.
 */
export function hoistCalls(s: Stmt, ctx: HoistContext): Hoisted {
  const w: Walk = { pre: [], written: [] };
  const hoisted = new Set<Expr>();
  const top = (e: Expr): Expr =>
    e.k === 'call'
      ? { ...e, args: e.args.map((a) => ({ ...a, value: rewrite(a.value, null, ctx, w, hoisted) })) }
      : rewrite(e, null, ctx, w, hoisted);
  let stmt: Stmt;
  let reads: Expr[];
  switch (s.k) {
    case 'assign':
      if (!hasCall(s.value) && !hasCall(s.target)) return { pre: [], stmt: s };
      // The target's index expressions are read; the target itself is written last.
      stmt = { ...s, target: rewriteTargetIndices(s.target, ctx, w, hoisted), value: top(s.value) };
      reads = [s.value, ...targetIndexReads(s.target)];
      break;
    case 'call':
      if (!hasCall(s.call) || s.call.k !== 'call' || !s.call.args.some((a) => hasCall(a.value)))
        return { pre: [], stmt: s };
      stmt = { ...s, call: top(s.call) };
      reads = [s.call];
      break;
    case 'if': {
      // `if (t.apply().hit)` (or its negation) is a table node of its own: left as it is.
      const bare = s.test.k === 'unary' && s.test.op === '!' ? s.test.arg : s.test;
      if (!hasCall(s.test) || tableOutcome(bare)) return { pre: [], stmt: s };
      stmt = { ...s, test: rewrite(s.test, null, ctx, w, hoisted) };
      reads = [s.test];
      break;
    }
    case 'var':
      if (!s.decl.init || !hasCall(s.decl.init)) return { pre: [], stmt: s };
      stmt = { ...s, decl: { ...s.decl, init: top(s.decl.init) } };
      reads = [s.decl.init];
      break;
    case 'switch':
      if (!hasCall(s.on)) return { pre: [], stmt: s };
      stmt = { ...s, on: rewrite(s.on, null, ctx, w, hoisted) };
      reads = [s.on];
      break;
    default:
      return { pre: [], stmt: s };
  }
  if (w.written.length > 0) {
    const paths: string[] = [];
    const skipArgsOf = new Set<Expr>();
    collectCalls(reads, hoisted, skipArgsOf);
    for (const e of reads) readPaths(e, skipArgsOf, paths);
    for (const wr of w.written) {
      const clash = paths.find((p) => overlaps(p, wr.path));
      if (clash !== undefined) {
        fail(
          'unsupported',
          wr.pos,
          `function ${wr.fn} writes ${wr.path}, which the same statement also reads (${clash}): split the statement`,
        );
      }
    }
  }
  return { pre: w.pre, stmt };
}

/** The original call nodes whose rewritten copies were hoisted: their arguments are not "other" reads. */
function collectCalls(roots: readonly Expr[], hoisted: ReadonlySet<Expr>, out: Set<Expr>): void {
  const names = new Set([...hoisted].map((c) => (c.k === 'call' && c.fn.k === 'name' ? c.pos : null)));
  const visit = (e: Expr): void => {
    if (e.k === 'call' && names.has(e.pos)) out.add(e);
    switch (e.k) {
      case 'call':
        for (const a of e.args) visit(a.value);
        return;
      case 'binary':
        visit(e.left);
        visit(e.right);
        return;
      case 'cond':
        visit(e.test);
        visit(e.then);
        visit(e.else);
        return;
      case 'unary':
      case 'cast':
        visit(e.arg);
        return;
      case 'member':
        visit(e.base);
        return;
      case 'index':
        visit(e.base);
        visit(e.index);
        return;
      case 'slice':
        visit(e.base);
        return;
      case 'list':
        e.elems.forEach(visit);
        return;
      default:
        return;
    }
  };
  roots.forEach(visit);
}

function rewriteTargetIndices(t: Expr, ctx: HoistContext, w: Walk, hoisted: Set<Expr>): Expr {
  switch (t.k) {
    case 'member':
      return { ...t, base: rewriteTargetIndices(t.base, ctx, w, hoisted) };
    case 'index':
      return {
        ...t,
        base: rewriteTargetIndices(t.base, ctx, w, hoisted),
        index: rewrite(t.index, null, ctx, w, hoisted),
      };
    case 'slice':
      return { ...t, base: rewriteTargetIndices(t.base, ctx, w, hoisted) };
    default:
      return t;
  }
}

function targetIndexReads(t: Expr): Expr[] {
  switch (t.k) {
    case 'member':
    case 'slice':
      return targetIndexReads(t.base);
    case 'index':
      return [...targetIndexReads(t.base), t.index];
    default:
      return [];
  }
}
