/**
 * Walking the IR: every expression a program, control, statement list or checksum contains,
 * for back ends that need to know what a program reads and writes before emitting it.
 */

import type { IrAction, IrChecksum, IrControl, IrExpr, IrParserOp, IrProgram, IrStmt } from './ir.js';

/** Every expression of a program: actions, parser, controls (conditions, table keys), checksums. */
export function forEachProgramExpr(p: IrProgram, f: (e: IrExpr) => void): void {
  const actions = new Map(p.actions.map((a) => [a.name, a]));
  for (const a of p.actions) forEachStmtExpr(a.body, f);
  for (const s of p.parser.states) {
    for (const op of s.ops) forEachOpExpr(op, f);
    for (const k of s.keys) forEachExpr(k, f);
  }
  forEachControlExpr(p.ingress, actions, f);
  forEachControlExpr(p.egress, actions, f);
  for (const c of [...p.verifyChecksums, ...p.updateChecksums]) forEachChecksumExpr(c, f);
}

/** A control's conditions, table keys (as field reads) and its tables' action bodies. */
export function forEachControlExpr(
  c: IrControl,
  actions: ReadonlyMap<string, IrAction>,
  f: (e: IrExpr) => void,
): void {
  for (const n of c.nodes) {
    if (n.k === 'cond') forEachExpr(n.test, f);
    else {
      for (const k of n.keys) {
        f({
          k: 'field',
          t: { k: 'bits', w: k.width, signed: false },
          header: k.target.header,
          field: k.target.field,
        });
      }
      for (const a of n.actions) forEachStmtExpr(actions.get(a)?.body ?? [], f);
    }
  }
}

export function forEachChecksumExpr(c: IrChecksum, f: (e: IrExpr) => void): void {
  if (c.condition) forEachExpr(c.condition, f);
  for (const d of c.data) forEachExpr(d, f);
  f(c.target);
}

function forEachOpExpr(op: IrParserOp, f: (e: IrExpr) => void): void {
  if (op.k === 'extractVarbit' || op.k === 'advance') forEachExpr(op.bits, f);
  else if (op.k === 'verify') forEachExpr(op.test, f);
  else if (op.k === 'stmt') forEachStmtExpr([op.stmt], f);
}

/** Expressions of statements, assignment and extern targets included (as field reads). */
export function forEachStmtExpr(list: readonly IrStmt[], f: (e: IrExpr) => void): void {
  for (const s of list) {
    switch (s.k) {
      case 'assign':
        f(s.target);
        forEachExpr(s.value, f);
        break;
      case 'if':
        forEachExpr(s.test, f);
        forEachStmtExpr(s.then, f);
        forEachStmtExpr(s.else, f);
        break;
      case 'count':
        forEachExpr(s.index, f);
        break;
      case 'registerRead':
        f(s.target);
        forEachExpr(s.index, f);
        break;
      case 'registerWrite':
        forEachExpr(s.index, f);
        forEachExpr(s.value, f);
        break;
      case 'meter':
        f(s.target);
        forEachExpr(s.index, f);
        break;
      case 'hash':
        f(s.target);
        for (const d of s.data) forEachExpr(d, f);
        forEachExpr(s.base, f);
        forEachExpr(s.max, f);
        break;
      case 'random':
        f(s.target);
        break;
      case 'assert':
        forEachExpr(s.test, f);
        break;
      default:
        break;
    }
  }
}

/** An expression and all its subexpressions. */
export function forEachExpr(e: IrExpr, f: (e: IrExpr) => void): void {
  f(e);
  switch (e.k) {
    case 'unop':
    case 'slice':
    case 'cast':
      forEachExpr(e.arg, f);
      return;
    case 'binop':
    case 'concat':
      forEachExpr(e.left, f);
      forEachExpr(e.right, f);
      return;
    case 'cond':
      forEachExpr(e.test, f);
      forEachExpr(e.ifTrue, f);
      forEachExpr(e.ifFalse, f);
      return;
    default:
      return;
  }
}
