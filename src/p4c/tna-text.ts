/** Text helpers of the TNA rewrite: typed literals, identifiers, indented lines. */

import type { IrType } from './ir.js';

export const mask = (w: number): bigint => (1n << BigInt(w)) - 1n;
export const typeText = (t: IrType): string =>
  t.k === 'bool' ? 'bool' : `${t.signed ? 'int' : 'bit'}<${t.w}>`;
/** `8w5`: a literal of width w, the value taken modulo 2^w. */
export const bitsLit = (w: number, v: bigint): string => `${w}w${(v & mask(w)).toString()}`;

export function literal(t: IrType, v: bigint): string {
  if (t.k === 'bool') return v !== 0n ? 'true' : 'false';
  return t.signed ? `((int<${t.w}>)${bitsLit(t.w, v)})` : bitsLit(t.w, v);
}

export const lastSegment = (qname: string): string => qname.slice(qname.lastIndexOf('.') + 1);

/** An identifier from an IR name (`MyIngress.tmp`, `vlan[0]`). */
export const ident = (s: string): string => {
  const x = s.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[A-Za-z_]/.test(x) ? x : `_${x}`;
};

/** Text lines with indentation. */
export class Lines {
  readonly out: string[] = [];
  #depth = 0;
  line(s = ''): void {
    this.out.push(s === '' ? '' : `${'    '.repeat(this.#depth)}${s}`);
  }
  open(s: string): void {
    this.line(s);
    this.#depth++;
  }
  close(s = '}'): void {
    this.#depth--;
    this.line(s);
  }
  /** `} else {`: one level out for the line, then back in. */
  reopen(s: string): void {
    this.#depth--;
    this.line(s);
    this.#depth++;
  }
}
