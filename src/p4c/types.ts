/**
 * Semantic types of the front end (what a TypeRef means once names are resolved) and the
 * small rules over them: widths, equality, printing for error messages.
 */

import type { IrType } from './ir.js';

import type { Expr } from './ast.js';

export interface FieldTy {
  readonly name: string;
  readonly ty: Ty;
  /** Arguments of the field's `@field_list(...)` annotations (v1model field list indexes). */
  readonly fieldLists?: readonly Expr[];
}

export type Ty =
  | { readonly k: 'bit'; readonly w: number; readonly signed: boolean }
  /** An arbitrary-precision integer: unsized literals and compile-time constants. */
  | { readonly k: 'int' }
  | { readonly k: 'bool' }
  | { readonly k: 'error' }
  | { readonly k: 'string' }
  | { readonly k: 'void' }
  | { readonly k: 'dontcare' }
  | { readonly k: 'matchkind' }
  | { readonly k: 'varbit'; readonly w: number }
  | {
      readonly k: 'enum';
      readonly name: string;
      readonly members: readonly string[];
      /** Serializable enums: the underlying bit type and member values. */
      readonly repr: { readonly w: number; readonly signed: boolean } | null;
      readonly values: ReadonlyMap<string, bigint>;
    }
  | { readonly k: 'header' | 'struct' | 'union'; readonly name: string; readonly fields: readonly FieldTy[] }
  | { readonly k: 'stack'; readonly elem: Ty; readonly size: number }
  | { readonly k: 'tuple'; readonly elems: readonly Ty[] }
  | { readonly k: 'extern'; readonly name: string; readonly args: readonly Ty[] }
  | { readonly k: 'typevar'; readonly name: string }
  | { readonly k: 'block'; readonly kind: 'parser' | 'control' | 'package'; readonly name: string };

export const TY_BOOL: Ty = { k: 'bool' };
export const TY_INT: Ty = { k: 'int' };
export const TY_ERROR: Ty = { k: 'error' };
export const TY_VOID: Ty = { k: 'void' };
export const bitTy = (w: number, signed = false): Ty => ({ k: 'bit', w, signed });

/** BMv2 stores errors and plain enums as 32-bit values. */
export const ERROR_WIDTH = 32;

export function showTy(t: Ty): string {
  switch (t.k) {
    case 'bit':
      return `${t.signed ? 'int' : 'bit'}<${t.w}>`;
    case 'varbit':
      return `varbit<${t.w}>`;
    case 'int':
      return 'int (an unsized integer)';
    case 'enum':
    case 'header':
    case 'struct':
    case 'union':
      return `${t.k} ${t.name}`;
    case 'stack':
      return `${showTy(t.elem)}[${t.size}]`;
    case 'tuple':
      return `tuple<${t.elems.map(showTy).join(', ')}>`;
    case 'extern':
      return `extern ${t.name}${t.args.length ? `<${t.args.map(showTy).join(', ')}>` : ''}`;
    case 'typevar':
      return t.name;
    case 'block':
      return `${t.kind} ${t.name}`;
    default:
      return t.k;
  }
}

export function sameTy(a: Ty, b: Ty): boolean {
  if (a.k !== b.k) return false;
  switch (a.k) {
    case 'bit':
      return a.w === (b as typeof a).w && a.signed === (b as typeof a).signed;
    case 'varbit':
      return a.w === (b as typeof a).w;
    case 'enum':
    case 'header':
    case 'struct':
    case 'union':
    case 'extern':
    case 'typevar':
    case 'block':
      return a.name === (b as typeof a).name;
    case 'stack':
      return a.size === (b as typeof a).size && sameTy(a.elem, (b as typeof a).elem);
    case 'tuple': {
      const bt = b as typeof a;
      return a.elems.length === bt.elems.length && a.elems.every((e, i) => sameTy(e, bt.elems[i]!));
    }
    default:
      return true;
  }
}

/** Width in bits of a type that a header field or scalar can hold; undefined otherwise. */
export function scalarWidth(t: Ty): number | undefined {
  switch (t.k) {
    case 'bit':
    case 'varbit':
      return t.w;
    case 'bool':
      return 1;
    case 'error':
      return ERROR_WIDTH;
    case 'enum':
      return t.repr ? t.repr.w : ERROR_WIDTH;
    default:
      return undefined;
  }
}

export function irTypeOf(t: Ty): IrType | undefined {
  if (t.k === 'bool') return { k: 'bool' };
  if (t.k === 'bit') return { k: 'bits', w: t.w, signed: t.signed };
  if (t.k === 'enum' && t.repr) return { k: 'bits', w: t.repr.w, signed: t.repr.signed };
  const w = scalarWidth(t);
  return w === undefined ? undefined : { k: 'bits', w, signed: false };
}

export function mask(w: number): bigint {
  return (1n << BigInt(w)) - 1n;
}

/** Wrap a value into W bits (two's complement when signed). */
export function wrap(value: bigint, w: number, signed: boolean): bigint {
  const m = value & mask(w);
  if (signed && w > 0 && m >> BigInt(w - 1) === 1n) return m - (1n << BigInt(w));
  return m;
}
