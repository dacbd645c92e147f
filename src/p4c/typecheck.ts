/**
 * Type checking: resolves names through scopes to references (a field, a header instance, a
 * flattened struct, an action, a table, an extern instance...) and gives every expression a
 * type, producing typed IR expressions. Unsized integer literals take the width of the other
 * operand, as the P4_16 spec's implicit casts say; anything the subset does not cover is
 * refused here with the construct's name and position.
 */

import type { ActionDecl, ControlDecl, Decl, Expr, TableDecl, TypeRef } from './ast.js';
import { fail, type SourcePos } from './errors.js';
import { BOOL, type BinOp, bits, type IrExpr, type IrFieldRef } from './ir.js';
import { MAX_BIT_WIDTH, MAX_HEADER_STACK_SIZE } from './limits.js';
import { bitTy, irTypeOf, mask, sameTy, showTy, TY_BOOL, TY_ERROR, TY_INT, type Ty, wrap } from './types.js';

// ---------------------------------------------------------------- references

export type Ref =
  | { readonly k: 'value'; readonly ir: IrExpr; readonly ty: Ty; readonly lvalue: boolean }
  /** `siblings`: the other members when this header is a member of a header union. */
  | { readonly k: 'header'; readonly header: string; readonly ty: Ty; readonly siblings?: readonly string[] }
  | {
      readonly k: 'stack';
      readonly stack: string;
      readonly headers: readonly string[];
      readonly ty: Ty & { k: 'stack' };
    }
  | { readonly k: 'struct'; readonly ty: Ty; readonly members: ReadonlyMap<string, Ref> }
  | { readonly k: 'type'; readonly ty: Ty }
  | { readonly k: 'action'; readonly decl: ActionDecl; readonly qname: string; readonly scope: Scope }
  | { readonly k: 'table'; readonly decl: TableDecl; readonly qname: string; readonly scope: Scope }
  | {
      readonly k: 'extern';
      readonly kind: string;
      readonly qname: string;
      readonly ty: Ty;
      readonly decl: Decl | null;
    }
  | { readonly k: 'externFn'; readonly name: string }
  | { readonly k: 'packet'; readonly dir: 'in' | 'out' }
  | { readonly k: 'valueSet'; readonly name: string; readonly width: number }
  | { readonly k: 'decl'; readonly decl: Decl }
  /** `C() c;` inside a control: applying `c` runs C's body in place (p4c inlines it too). */
  | { readonly k: 'subcontrol'; readonly decl: ControlDecl; readonly qname: string };

export class Scope {
  readonly #names = new Map<string, Ref>();
  readonly parent: Scope | null;
  /** Qualified-name prefix of declarations made here (`MyIngress`). */
  readonly prefix: string;

  constructor(parent: Scope | null, prefix = parent?.prefix ?? '') {
    this.parent = parent;
    this.prefix = prefix;
  }

  get(name: string): Ref | undefined {
    return this.#names.get(name) ?? this.parent?.get(name);
  }

  set(name: string, ref: Ref): void {
    this.#names.set(name, ref);
  }

  has(name: string): boolean {
    return this.#names.has(name);
  }

  child(prefix?: string): Scope {
    return new Scope(this, prefix ?? this.prefix);
  }

  qualify(name: string): string {
    return this.prefix ? `${this.prefix}.${name}` : name;
  }
}

export interface Typed {
  readonly ir: IrExpr;
  readonly ty: Ty;
}

const ARITH = new Set(['+', '-', '*', '/', '%', '|+|', '|-|']);
const BITWISE = new Set(['&', '|', '^']);
const COMPARE = new Set(['==', '!=', '<', '>', '<=', '>=']);

export class Checker {
  readonly errors = new Map<string, number>();
  readonly matchKinds = new Set<string>();
  readonly global = new Scope(null, '');
  /** Width of error values in the target (BMv2: 32). */

  // ------------------------------------------------------------ types

  resolveType(t: TypeRef, scope: Scope): Ty {
    switch (t.k) {
      case 'bit': {
        const w = this.constInt(t.width, scope, 'a constant width');
        if (w < 0n || w > BigInt(MAX_BIT_WIDTH))
          fail('type', t.pos, `a width between 0 and ${MAX_BIT_WIDTH}`, String(w));
        return bitTy(Number(w), t.signed);
      }
      case 'varbit': {
        const w = this.constInt(t.width, scope, 'a constant width');
        if (w < 0n || w > BigInt(MAX_BIT_WIDTH))
          fail('type', t.pos, `a width between 0 and ${MAX_BIT_WIDTH}`, String(w));
        return { k: 'varbit', w: Number(w) };
      }
      case 'bool':
        return TY_BOOL;
      case 'error':
        return TY_ERROR;
      case 'void':
        return { k: 'void' };
      case 'string':
        return { k: 'string' };
      case 'int':
        return TY_INT;
      case 'dontcare':
        return { k: 'dontcare' };
      case 'packet_in':
        return { k: 'extern', name: 'packet_in', args: [] };
      case 'tuple':
        return { k: 'tuple', elems: t.elems.map((e) => this.resolveType(e, scope)) };
      case 'stack': {
        const elem = this.resolveType(t.elem, scope);
        if (elem.k !== 'header' && elem.k !== 'union')
          fail('type', t.pos, 'a header type for a header stack', showTy(elem));
        const size = this.constInt(t.size, scope, 'a constant stack size');
        if (size <= 0n) fail('type', t.size.pos, 'a positive stack size', String(size));
        if (size > BigInt(MAX_HEADER_STACK_SIZE))
          fail(
            'limit',
            t.size.pos,
            `a header stack of at most ${MAX_HEADER_STACK_SIZE} headers`,
            String(size),
          );
        return { k: 'stack', elem, size: Number(size) };
      }
      case 'named': {
        const ref = scope.get(t.name);
        if (!ref) fail('type', t.pos, `a type, but '${t.name}' is not declared`);
        if (ref.k !== 'type') fail('type', t.pos, `a type`, `'${t.name}' (${ref.k})`);
        if (ref.ty.k === 'extern') {
          return { ...ref.ty, args: t.args.map((a) => this.resolveType(a, scope)) };
        }
        return ref.ty;
      }
    }
  }

  // ------------------------------------------------------------ constants

  constInt(e: Expr, scope: Scope, what: string): bigint {
    const v = this.value(e, scope);
    if (v.ir.k !== 'const' || v.ty.k === 'bool')
      fail('type', e.pos, what, 'an expression that is not a compile-time integer');
    return v.ir.value;
  }

  // ------------------------------------------------------------ references

  /** Resolve an expression that names something (not necessarily a value). */
  ref(e: Expr, scope: Scope): Ref {
    switch (e.k) {
      case 'name': {
        const r = scope.get(e.name);
        if (!r) fail('type', e.pos, `a declared name`, `'${e.name}'`);
        return r;
      }
      case 'member':
        return this.member(e, scope);
      case 'index': {
        const base = this.ref(e.base, scope);
        if (base.k !== 'stack') fail('type', e.pos, 'a header stack to index', describeRef(base));
        const idx = this.value(e.index, scope);
        if (idx.ir.k !== 'const')
          fail('unsupported', e.index.pos, 'a header stack index that is not a compile-time constant');
        const i = Number(idx.ir.value);
        if (i < 0 || i >= base.headers.length) {
          fail('type', e.index.pos, `an index in 0..${base.headers.length - 1}`, String(i));
        }
        return { k: 'header', header: base.headers[i]!, ty: base.ty.elem };
      }
      default:
        return { k: 'value', ...this.value(e, scope), lvalue: false };
    }
  }

  member(e: Extract<Expr, { k: 'member' }>, scope: Scope): Ref {
    if (e.base.k === 'name' && e.base.name === 'error') {
      const code = this.errors.get(e.name);
      if (code === undefined) fail('type', e.pos, 'a declared error', `error.${e.name}`);
      return {
        k: 'value',
        ir: { k: 'const', t: bits(32), value: BigInt(code) },
        ty: TY_ERROR,
        lvalue: false,
      };
    }
    const base = this.ref(e.base, scope);
    switch (base.k) {
      case 'struct': {
        const m = base.members.get(e.name);
        if (!m) fail('type', e.pos, `a member of ${showTy(base.ty)}`, `'${e.name}'`);
        return m;
      }
      case 'header': {
        if (base.ty.k !== 'header') fail('unsupported', e.pos, 'header unions');
        const f = base.ty.fields.find((x) => x.name === e.name);
        if (!f) fail('type', e.pos, `a field of ${showTy(base.ty)}`, `'${e.name}'`);
        const t = irTypeOf(f.ty);
        if (!t || f.ty.k === 'varbit')
          fail('unsupported', e.pos, `reading varbit field '${e.name}' in an expression`);
        return {
          k: 'value',
          ir: { k: 'field', t, header: base.header, field: e.name },
          ty: f.ty,
          lvalue: true,
        };
      }
      case 'stack': {
        if (e.name === 'size') return constRef(BigInt(base.headers.length), bitTy(32));
        return fail(
          'unsupported',
          e.pos,
          `header stack member '.${e.name}' here (supported: [const], .size, extract(.next), push_front, pop_front)`,
        );
      }
      case 'type': {
        const t = base.ty;
        if (t.k === 'enum') {
          if (!t.members.includes(e.name)) fail('type', e.pos, `a member of ${showTy(t)}`, `'${e.name}'`);
          const value = t.repr ? t.values.get(e.name)! : BigInt(t.members.indexOf(e.name));
          const w = t.repr ? t.repr.w : 32;
          return {
            k: 'value',
            ir: { k: 'const', t: bits(w, t.repr?.signed ?? false), value },
            ty: t,
            lvalue: false,
          };
        }
        return fail('type', e.pos, `an enum or error type before '.${e.name}'`, showTy(t));
      }
      default:
        // Only structs, headers, stacks and types have members; reading `.x` of anything else
        // (`etherType.x`, a bit<16>) is a type error here, not a re-entry into value().
        return fail(
          'type',
          e.pos,
          `a struct, header, header stack or enum before '.${e.name}'`,
          describeRef(base),
        );
    }
  }

  // ------------------------------------------------------------ values

  value(e: Expr, scope: Scope): Typed {
    switch (e.k) {
      case 'int':
        if (e.width !== undefined) {
          const signed = e.signed ?? false;
          const w = e.width;
          if (!signed && e.value > mask(w))
            fail('type', e.pos, `a value that fits in bit<${w}>`, String(e.value));
          return {
            ir: { k: 'const', t: bits(w, signed), value: wrap(e.value, w, signed) },
            ty: bitTy(w, signed),
          };
        }
        return { ir: { k: 'const', t: bits(0), value: e.value }, ty: TY_INT };
      case 'bool':
        return { ir: { k: 'const', t: BOOL, value: e.value ? 1n : 0n }, ty: TY_BOOL };
      case 'name':
      case 'member':
      case 'index': {
        if (e.k === 'member' && (e.name === 'hit' || e.name === 'miss') && e.base.k === 'call') {
          fail('unsupported', e.pos, `'.${e.name}' of a table apply outside an if condition of its own`);
        }
        const r = e.k === 'member' ? this.member(e, scope) : this.ref(e, scope);
        if (r.k !== 'value') fail('type', e.pos, 'a value', describeRef(r));
        return { ir: r.ir, ty: r.ty };
      }
      case 'slice': {
        const base = this.value(e.base, scope);
        if (base.ty.k !== 'bit')
          fail('type', e.base.pos, 'a bit<W> or int<W> value to slice', showTy(base.ty));
        const hi = Number(this.constInt(e.hi, scope, 'a constant slice bound'));
        const lo = Number(this.constInt(e.lo, scope, 'a constant slice bound'));
        if (!(hi >= lo && lo >= 0 && hi < base.ty.w))
          fail('type', e.pos, `slice bounds with ${base.ty.w} > hi >= lo >= 0`, `[${hi}:${lo}]`);
        const w = hi - lo + 1;
        return { ir: { k: 'slice', t: bits(w), arg: base.ir, hi, lo }, ty: bitTy(w) };
      }
      case 'unary':
        return this.unary(e, scope);
      case 'binary':
        return this.binary(e, scope);
      case 'cond': {
        const test = this.coerce(this.value(e.test, scope), TY_BOOL, e.test.pos);
        let a = this.value(e.then, scope);
        let b = this.value(e.else, scope);
        if (a.ty.k === 'int' && b.ty.k !== 'int') a = this.coerce(a, b.ty, e.then.pos);
        if (b.ty.k === 'int' && a.ty.k !== 'int') b = this.coerce(b, a.ty, e.else.pos);
        if (a.ty.k === 'int' && b.ty.k === 'int')
          fail('type', e.pos, 'a sized operand in a ?: expression (both arms are unsized)');
        b = this.coerce(b, a.ty, e.else.pos);
        if (test.ir.k === 'const') return test.ir.value ? a : b;
        return { ir: { k: 'cond', t: a.ir.t, test: test.ir, ifTrue: a.ir, ifFalse: b.ir }, ty: a.ty };
      }
      case 'cast':
        return this.cast(this.resolveType(e.type, scope), this.value(e.arg, scope), e.pos);
      case 'call':
        return this.callValue(e, scope);
      case 'str':
        return fail('type', e.pos, 'a value (strings only go to log_msg)');
      case 'list':
        return fail(
          'unsupported',
          e.pos,
          'a list expression here (lists are supported as checksum/hash data and select/entry keys)',
        );
      default:
        return fail('type', e.pos, 'an expression', e.k);
    }
  }

  /** Calls that produce values: isValid(), lookahead is handled by the parser lowering. */
  callValue(e: Extract<Expr, { k: 'call' }>, scope: Scope): Typed {
    if (e.fn.k === 'member') {
      const m = e.fn.name;
      if (m === 'isValid' && e.args.length === 0) {
        const base = this.ref(e.fn.base, scope);
        if (base.k === 'struct' && base.ty.k === 'union') {
          // A union is valid when any member is.
          let any: IrExpr | null = null;
          for (const m of base.members.values()) {
            if (m.k !== 'header') continue;
            const v: IrExpr = { k: 'valid', t: BOOL, header: m.header };
            any = any ? { k: 'binop', t: BOOL, op: '||', left: any, right: v } : v;
          }
          return { ir: any ?? { k: 'const', t: BOOL, value: 0n }, ty: TY_BOOL };
        }
        if (base.k !== 'header') fail('type', e.fn.base.pos, 'a header before .isValid()', describeRef(base));
        return { ir: { k: 'valid', t: BOOL, header: base.header }, ty: TY_BOOL };
      }
      if (m === 'minSizeInBits' || m === 'minSizeInBytes') {
        const base = this.ref(e.fn.base, scope);
        const ty = base.k === 'header' ? base.ty : base.k === 'type' ? base.ty : null;
        if (ty?.k !== 'header') fail('type', e.fn.base.pos, 'a header', describeRef(base));
        let w = 0;
        for (const f of ty.fields) if (f.ty.k !== 'varbit') w += irWidth(f.ty);
        return {
          ir: { k: 'const', t: bits(0), value: BigInt(m === 'minSizeInBits' ? w : w >> 3) },
          ty: TY_INT,
        };
      }
    }
    return fail(
      'unsupported',
      e.pos,
      'a call that produces a value here (functions and extern calls are statements)',
    );
  }

  unary(e: Extract<Expr, { k: 'unary' }>, scope: Scope): Typed {
    const a = this.value(e.arg, scope);
    switch (e.op) {
      case '!': {
        const b = this.coerce(a, TY_BOOL, e.arg.pos);
        if (b.ir.k === 'const') return boolConst(b.ir.value === 0n);
        return { ir: { k: 'unop', t: BOOL, op: '!', arg: b.ir }, ty: TY_BOOL };
      }
      case '~':
        if (a.ty.k !== 'bit') fail('type', e.arg.pos, "a bit<W> or int<W> operand of '~'", showTy(a.ty));
        if (a.ir.k === 'const')
          return { ir: { ...a.ir, value: wrap(~a.ir.value, a.ty.w, a.ty.signed) }, ty: a.ty };
        return { ir: { k: 'unop', t: a.ir.t, op: '~', arg: a.ir }, ty: a.ty };
      case '-':
        if (a.ty.k === 'int' && a.ir.k === 'const') return { ir: { ...a.ir, value: -a.ir.value }, ty: a.ty };
        if (a.ty.k !== 'bit') fail('type', e.arg.pos, "a numeric operand of unary '-'", showTy(a.ty));
        if (a.ir.k === 'const')
          return { ir: { ...a.ir, value: wrap(-a.ir.value, a.ty.w, a.ty.signed) }, ty: a.ty };
        return { ir: { k: 'unop', t: a.ir.t, op: '-', arg: a.ir }, ty: a.ty };
      case '+':
        return a;
      default:
        return fail('syntax', e.pos, 'a unary operator', e.op);
    }
  }

  binary(e: Extract<Expr, { k: 'binary' }>, scope: Scope): Typed {
    const op = e.op;
    if (op === '&&' || op === '||') {
      const l = this.coerce(this.value(e.left, scope), TY_BOOL, e.left.pos);
      const r = this.coerce(this.value(e.right, scope), TY_BOOL, e.right.pos);
      if (l.ir.k === 'const' && r.ir.k === 'const') {
        return boolConst(
          op === '&&' ? l.ir.value !== 0n && r.ir.value !== 0n : l.ir.value !== 0n || r.ir.value !== 0n,
        );
      }
      return { ir: { k: 'binop', t: BOOL, op, left: l.ir, right: r.ir }, ty: TY_BOOL };
    }
    if ((op === '==' || op === '!=') && isPath(e.left) && isPath(e.right)) {
      const eq = this.headerEquality(this.ref(e.left, scope), this.ref(e.right, scope), e.pos);
      if (eq) return op === '==' ? eq : { ir: { k: 'unop', t: BOOL, op: '!', arg: eq.ir }, ty: TY_BOOL };
    }
    let l = this.value(e.left, scope);
    let r = this.value(e.right, scope);
    if (op === '++') {
      if (l.ty.k !== 'bit' || r.ty.k !== 'bit') {
        fail(
          'type',
          l.ty.k !== 'bit' ? e.left.pos : e.right.pos,
          "sized bit<W> operands of '++'",
          showTy(l.ty.k !== 'bit' ? l.ty : r.ty),
        );
      }
      const w = l.ty.w + r.ty.w;
      if (w > MAX_BIT_WIDTH)
        fail('limit', e.pos, `a concatenation of at most ${MAX_BIT_WIDTH} bits`, `${w} bits`);
      if (l.ir.k === 'const' && r.ir.k === 'const') {
        const v = ((l.ir.value & mask(l.ty.w)) << BigInt(r.ty.w)) | (r.ir.value & mask(r.ty.w));
        return {
          ir: { k: 'const', t: bits(w, l.ty.signed), value: wrap(v, w, l.ty.signed) },
          ty: bitTy(w, l.ty.signed),
        };
      }
      return {
        ir: { k: 'concat', t: bits(w, l.ty.signed), left: l.ir, right: r.ir },
        ty: bitTy(w, l.ty.signed),
      };
    }
    if (op === '<<' || op === '>>') {
      if (r.ty.k === 'bit' && r.ty.signed)
        fail('type', e.right.pos, 'an unsigned shift amount', showTy(r.ty));
      if (r.ty.k !== 'bit' && r.ty.k !== 'int')
        fail('type', e.right.pos, 'an integer shift amount', showTy(r.ty));
      if (l.ty.k === 'int') {
        if (l.ir.k === 'const' && r.ir.k === 'const') {
          if (r.ir.value > BigInt(MAX_BIT_WIDTH))
            fail(
              'limit',
              e.right.pos,
              `a constant shift of at most ${MAX_BIT_WIDTH} bits`,
              String(r.ir.value),
            );
          const v = op === '<<' ? l.ir.value << r.ir.value : l.ir.value >> r.ir.value;
          return { ir: { k: 'const', t: bits(0), value: boundedInt(v, e.pos) }, ty: TY_INT };
        }
        fail('type', e.left.pos, 'a sized left operand of a shift by a non-constant', showTy(l.ty));
      }
      if (l.ty.k !== 'bit') fail('type', e.left.pos, 'a bit<W> or int<W> operand of a shift', showTy(l.ty));
      if (r.ty.k === 'int')
        r = { ir: { k: 'const', t: bits(32), value: (r.ir as { value: bigint }).value }, ty: bitTy(32) };
      if (l.ir.k === 'const' && r.ir.k === 'const') {
        // Shifting a W-bit value by W or more gives what shifting by W does: no huge bigint.
        const by = r.ir.value > BigInt(l.ty.w) ? BigInt(l.ty.w) : r.ir.value;
        const v = op === '<<' ? l.ir.value << by : l.ir.value >> by;
        return { ir: { ...l.ir, value: wrap(v, l.ty.w, l.ty.signed) }, ty: l.ty };
      }
      return { ir: { k: 'binop', t: l.ir.t, op, left: l.ir, right: r.ir }, ty: l.ty };
    }
    // Unsized literals take the other side's type; two unsized operands fold as integers.
    if (l.ty.k === 'int' && r.ty.k !== 'int') l = this.coerce(l, r.ty, e.left.pos);
    else if (r.ty.k === 'int' && l.ty.k !== 'int') r = this.coerce(r, l.ty, e.right.pos);
    if (l.ty.k === 'int' && r.ty.k === 'int') {
      const a = (l.ir as { value: bigint }).value;
      const b = (r.ir as { value: bigint }).value;
      if (COMPARE.has(op)) return boolConst(compare(op, a, b));
      if ((op === '/' || op === '%') && b === 0n) fail('type', e.right.pos, 'a non-zero divisor');
      if (op === '|+|' || op === '|-|') fail('type', e.pos, 'sized operands of a saturating operator');
      return { ir: { k: 'const', t: bits(0), value: boundedInt(foldInt(op, a, b), e.pos) }, ty: TY_INT };
    }
    if (COMPARE.has(op)) {
      if (!sameTy(l.ty, r.ty)) fail('type', e.right.pos, `an operand of type ${showTy(l.ty)}`, showTy(r.ty));
      const ordered = op !== '==' && op !== '!=';
      if (ordered && l.ty.k !== 'bit')
        fail('type', e.left.pos, `bit<W> or int<W> operands of '${op}'`, showTy(l.ty));
      if (!ordered && l.ty.k !== 'bit' && l.ty.k !== 'bool' && l.ty.k !== 'error' && l.ty.k !== 'enum') {
        fail('unsupported', e.pos, `comparing values of ${showTy(l.ty)}`);
      }
      if (l.ir.k === 'const' && r.ir.k === 'const') return boolConst(compare(op, l.ir.value, r.ir.value));
      return { ir: { k: 'binop', t: BOOL, op: op as BinOp, left: l.ir, right: r.ir }, ty: TY_BOOL };
    }
    if (ARITH.has(op) || BITWISE.has(op)) {
      if (l.ty.k !== 'bit') fail('type', e.left.pos, `a bit<W> or int<W> operand of '${op}'`, showTy(l.ty));
      if (!sameTy(l.ty, r.ty))
        fail(
          'type',
          e.right.pos,
          `an operand of type ${showTy(l.ty)} (P4 does not widen implicitly)`,
          showTy(r.ty),
        );
      if ((op === '/' || op === '%') && (l.ty.signed || r.ir.k !== 'const')) {
        fail('unsupported', e.pos, `'${op}' except of unsigned values by a constant`);
      }
      if (l.ir.k === 'const' && r.ir.k === 'const') {
        return {
          ir: { ...l.ir, value: foldSized(op, l.ir.value, r.ir.value, l.ty.w, l.ty.signed) },
          ty: l.ty,
        };
      }
      return { ir: { k: 'binop', t: l.ir.t, op: op as BinOp, left: l.ir, right: r.ir }, ty: l.ty };
    }
    return fail('syntax', e.pos, 'a binary operator', op);
  }

  /**
   * `h1 == h2` on headers (or header stacks, element by element): equal when both are invalid,
   * or both valid with equal fields (P4_16 spec). Null when the operands are not headers.
   */
  headerEquality(a: Ref, b: Ref, pos: SourcePos): Typed | null {
    const pairs: [string, string, Ty][] = [];
    if (a.k === 'header' && b.k === 'header') pairs.push([a.header, b.header, a.ty]);
    else if (a.k === 'stack' && b.k === 'stack' && a.headers.length === b.headers.length) {
      a.headers.forEach((h, i) => {
        pairs.push([h, b.headers[i]!, a.ty.elem]);
      });
    } else return null;
    if (showTy(a.ty) !== showTy(b.ty))
      fail('type', pos, `operands of the same header type, ${showTy(a.ty)}`, showTy(b.ty));
    const and = (x: IrExpr, y: IrExpr): IrExpr => ({ k: 'binop', t: BOOL, op: '&&', left: x, right: y });
    let all: IrExpr | null = null;
    for (const [x, y, ty] of pairs) {
      if (ty.k !== 'header') return fail('type', pos, 'a header type', showTy(ty));
      const vx: IrExpr = { k: 'valid', t: BOOL, header: x };
      const vy: IrExpr = { k: 'valid', t: BOOL, header: y };
      let same: IrExpr = and(vx, vy);
      for (const f of ty.fields) {
        const t = irTypeOf(f.ty);
        if (!t || f.ty.k === 'varbit')
          fail('unsupported', pos, `comparing headers with a ${showTy(f.ty)} field`);
        const fx: IrExpr = { k: 'field', t, header: x, field: f.name };
        const fy: IrExpr = { k: 'field', t, header: y, field: f.name };
        same = and(same, { k: 'binop', t: BOOL, op: '==', left: fx, right: fy });
      }
      const bothInvalid = and(
        { k: 'unop', t: BOOL, op: '!', arg: vx },
        { k: 'unop', t: BOOL, op: '!', arg: vy },
      );
      const eq: IrExpr = { k: 'binop', t: BOOL, op: '||', left: same, right: bothInvalid };
      all = all ? and(all, eq) : eq;
    }
    return { ir: all ?? { k: 'const', t: BOOL, value: 1n }, ty: TY_BOOL };
  }

  cast(to: Ty, v: Typed, pos: SourcePos): Typed {
    const t = irTypeOf(to);
    if (!t || to.k === 'error' || (to.k === 'enum' && !to.repr))
      fail('unsupported', pos, `a cast to ${showTy(to)}`);
    const from = v.ty;
    if (from.k === 'int' && v.ir.k === 'const') {
      if (to.k === 'bool') {
        if (v.ir.value !== 0n && v.ir.value !== 1n)
          fail('type', pos, '0 or 1 to cast to bool', String(v.ir.value));
        return boolConst(v.ir.value === 1n);
      }
      const w = (t as { w: number }).w;
      const s = (t as { signed: boolean }).signed;
      return { ir: { k: 'const', t, value: wrap(v.ir.value, w, s) }, ty: to };
    }
    if (to.k === 'bool') {
      if (from.k === 'bool') return v;
      if (from.k !== 'bit' || from.w !== 1 || from.signed)
        fail('type', pos, 'a bit<1> value to cast to bool', showTy(from));
    } else if (from.k === 'bool') {
      if (to.k !== 'bit' || to.w !== 1)
        fail('type', pos, 'a cast of bool to bit<1>', `a cast to ${showTy(to)}`);
    } else if (from.k !== 'bit' && !(from.k === 'enum' && from.repr)) {
      fail('type', pos, 'a bit<W>, int<W>, bool or serializable enum value to cast', showTy(from));
    }
    if (v.ir.k === 'const' && t.k === 'bits') {
      return { ir: { k: 'const', t, value: wrap(v.ir.value, t.w, t.signed) }, ty: to };
    }
    if (sameIr(v.ir.t, t)) return { ir: v.ir, ty: to };
    return { ir: { k: 'cast', t, arg: v.ir }, ty: to };
  }

  /** Implicit conversion for assignment and arguments: unsized literals, same types only. */
  coerce(v: Typed, to: Ty, pos: SourcePos): Typed {
    if (sameTy(v.ty, to)) return v;
    if (v.ty.k === 'int' && v.ir.k === 'const') {
      const t = irTypeOf(to);
      if (to.k === 'bit') {
        const lo = to.signed ? -(1n << BigInt(to.w - 1)) : 0n;
        const hi = to.signed ? (1n << BigInt(to.w - 1)) - 1n : mask(to.w);
        if (v.ir.value < lo || v.ir.value > hi) {
          // Negative literals into unsigned fields wrap, as p4c accepts `-1` for bit<W>.
          if (to.signed || v.ir.value >= 0n || -v.ir.value > mask(to.w)) {
            fail('type', pos, `a value that fits in ${showTy(to)}`, String(v.ir.value));
          }
        }
        return { ir: { k: 'const', t: t!, value: wrap(v.ir.value, to.w, to.signed) }, ty: to };
      }
      if (to.k === 'int') return v;
    }
    // Typedef'd and newtype'd types resolve to the same Ty, so only genuine mismatches remain.
    return fail('type', pos, `a value of type ${showTy(to)}`, showTy(v.ty));
  }

  /** An l-value field: assignable scalars only. */
  lvalueField(e: Expr, scope: Scope): { ir: IrFieldRef; ty: Ty } {
    const r = this.ref(e, scope);
    if (r.k === 'value' && r.lvalue && r.ir.k === 'field') return { ir: r.ir, ty: r.ty };
    if (r.k === 'value' && r.lvalue) fail('unsupported', e.pos, 'assigning to a slice or computed l-value');
    return fail('type', e.pos, 'an assignable field or variable', describeRef(r));
  }
}

function sameIr(a: { k: string }, b: { k: string }): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function irWidth(t: Ty): number {
  if (t.k === 'bit' || t.k === 'varbit') return t.w;
  if (t.k === 'bool') return 1;
  if (t.k === 'enum') return t.repr ? t.repr.w : 32;
  if (t.k === 'error') return 32;
  return 0;
}

export function constRef(value: bigint, ty: Ty): Ref {
  const t = irTypeOf(ty) ?? bits(0);
  return { k: 'value', ir: { k: 'const', t, value }, ty, lvalue: false };
}

export function describeRef(r: Ref): string {
  switch (r.k) {
    case 'value':
      return `a value of type ${showTy(r.ty)}`;
    case 'header':
      return `header ${r.header}`;
    case 'stack':
      return `header stack ${r.stack}`;
    case 'struct':
      return showTy(r.ty);
    case 'type':
      return `the type ${showTy(r.ty)}`;
    case 'action':
      return `action ${r.qname}`;
    case 'table':
      return `table ${r.qname}`;
    case 'extern':
      return `extern instance ${r.qname}`;
    case 'externFn':
      return `extern function ${r.name}`;
    case 'packet':
      return r.dir === 'in' ? 'packet_in' : 'packet_out';
    case 'valueSet':
      return `value_set ${r.name}`;
    case 'decl':
      return `${r.decl.k} declaration`;
    case 'subcontrol':
      return `control instance ${r.qname}`;
  }
}

/** A name, field or element: something that may denote a header. */
function isPath(e: Expr): boolean {
  return e.k === 'name' || e.k === 'member' || e.k === 'index';
}

function boolConst(b: boolean): Typed {
  return { ir: { k: 'const', t: BOOL, value: b ? 1n : 0n }, ty: TY_BOOL };
}

function compare(op: string, a: bigint, b: bigint): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '>':
      return a > b;
    case '<=':
      return a <= b;
    default:
      return a >= b;
  }
}

const INT_BOUND = 1n << BigInt(MAX_BIT_WIDTH);

/** An unsized constant stays within MAX_BIT_WIDTH bits, so folding `x * x * ...` stays cheap. */
function boundedInt(v: bigint, pos: SourcePos): bigint {
  if (v >= INT_BOUND || v <= -INT_BOUND)
    fail('limit', pos, `an integer constant of at most ${MAX_BIT_WIDTH} bits`);
  return v;
}

function foldInt(op: string, a: bigint, b: bigint): bigint {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return a / b;
    case '%':
      return a % b;
    case '&':
      return a & b;
    case '|':
      return a | b;
    default:
      return a ^ b;
  }
}

function foldSized(op: string, a: bigint, b: bigint, w: number, signed: boolean): bigint {
  if (op === '|+|' || op === '|-|') {
    const v = op === '|+|' ? a + b : a - b;
    const lo = signed ? -(1n << BigInt(w - 1)) : 0n;
    const hi = signed ? (1n << BigInt(w - 1)) - 1n : mask(w);
    return v < lo ? lo : v > hi ? hi : v;
  }
  return wrap(foldInt(op, a, b), w, signed);
}
