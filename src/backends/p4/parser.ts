/**
 * The parser's state machine as compiled from BMv2 JSON: states with their operations, select
 * keys and transitions, and the walk a packet takes through them. A parser error (a packet too
 * short, no transition matching, a failed `verify`) ends the walk and sets
 * standard_metadata.parser_error; the packet goes on to ingress, as v1model does.
 */

import { readBits } from './bits.js';
import { int } from './codegen.js';
import { ParserError } from './expr.js';
import type { PacketState } from './state.js';

/** Transition kinds. */
export const VALUE = 0;
export const DEFAULT = 1;
export const VSET = 2;

export interface Transition {
  readonly kind: typeof VALUE | typeof DEFAULT | typeof VSET;
  readonly value: bigint;
  readonly mask: bigint;
  /** value / mask as numbers when the state's key is matched on numbers. */
  valueN: number;
  maskN: number;
  readonly vset: Set<bigint> | null;
  next: ParseState | null;
}

export interface SelectKey {
  readonly num: ((s: PacketState) => number) | null;
  /** `num` as a JS expression over `n` / `v`, when it is a plain slot read. */
  readonly js: string | null;
  readonly big: (s: PacketState) => bigint;
  readonly bytes: number;
  /** 2^(8 * bytes): the key so far moves up by this much before the next part. */
  readonly scale: number;
}

export interface ParseState {
  readonly name: string;
  /** Position in the program's list of states. */
  readonly index: number;
  readonly ops: ((s: PacketState) => void)[];
  /** Each op as JS statements, where it has them (fixed-size extracts, assignments). */
  readonly opsJs: (string | null)[];
  readonly keys: SelectKey[];
  /** The whole select key fits 32 bits and every part is unsigned: match on numbers. */
  readonly numKey: boolean;
  readonly transitions: Transition[];
}

/** Parser error codes the walk itself raises. */
export interface ParserErrorCodes {
  readonly noMatch: number;
  readonly timeout: number;
}

/** Walk the states from `init`; a ParserError's code lands in `parserErrorSlot` (if any). */
export function parse(
  init: ParseState,
  s: PacketState,
  codes: ParserErrorCodes,
  parserErrorSlot: number,
): void {
  let st: ParseState | null = init;
  let steps = 0;
  try {
    while (st !== null) {
      if (++steps > 10_000) throw new ParserError(codes.timeout);
      const ops = st.ops;
      for (let i = 0; i < ops.length; i++) ops[i]!(s);
      const keys = st.keys;
      const ts: Transition[] = st.transitions;
      if (keys.length === 0) {
        st = ts[0]?.next ?? null;
        continue;
      }
      let next: ParseState | null | undefined;
      if (st.numKey) {
        let key = 0;
        for (let i = 0; i < keys.length; i++) {
          const k = keys[i]!;
          key = key * k.scale + k.num!(s);
        }
        for (let i = 0; i < ts.length; i++) {
          const t = ts[i]!;
          if (
            t.kind === VALUE
              ? (key & t.maskN) >>> 0 === t.valueN
              : t.kind === DEFAULT || t.vset!.has(BigInt(key))
          ) {
            next = t.next;
            break;
          }
        }
      } else {
        let key = 0n;
        for (const k of keys) key = (key << BigInt(k.bytes * 8)) | k.big(s);
        for (const t of ts) {
          if (t.kind === VALUE ? (key & t.mask) === t.value : t.kind === DEFAULT || t.vset!.has(key)) {
            next = t.next;
            break;
          }
        }
      }
      if (next === undefined) throw new ParserError(codes.noMatch);
      st = next;
    }
  } catch (err) {
    if (!(err instanceof ParserError)) throw err;
    if (parserErrorSlot >= 0) s.n[parserErrorSlot] = err.code;
  }
}

/**
 * The whole state machine as one generated function: a loop over a `switch` on the state's
 * index, each state's ops inlined where they have JS (so a fixed-size extract is a bounds check
 * and straight-line byte reads), its select key combined from slot reads and its transitions
 * as compares against constants. The source holds only numbers and operators chosen here; every
 * closure it calls (ops without JS, key readers, value sets, wide-key selects) is passed in.
 * Same semantics as parse() above, which stays the reference.
 */
export function compileParser(
  states: readonly ParseState[],
  init: ParseState,
  codes: ParserErrorCodes,
  parserErrorSlot: number,
): (s: PacketState) => void {
  const O = states.map((st) => st.ops);
  const K = states.map((st) => st.keys.map((k) => k.num));
  const VS: Set<bigint>[] = [];
  const SEL: ((s: PacketState) => number)[] = [];
  const cases: string[] = [];
  const goto = (next: ParseState | null): string =>
    next === null ? 'return;' : `st = ${int(next.index)}; continue;`;
  for (const st of states) {
    const i = st.index;
    const lines: string[] = [`case ${int(i)}: {`];
    st.ops.forEach((_, k) => {
      lines.push(st.opsJs[k] ?? `O[${int(i)}][${int(k)}](s);`);
    });
    const ts = st.transitions;
    if (st.keys.length === 0) {
      lines.push(goto(ts[0]?.next ?? null));
    } else if (st.numKey) {
      let key = '';
      st.keys.forEach((k, j) => {
        const part = k.js ?? `K[${int(i)}][${int(j)}](s)`;
        key = j === 0 ? part : `(${key}) * ${int(k.scale)} + ${part}`;
      });
      const keyBits = st.keys.reduce((a, k) => a + k.bytes * 8, 0);
      const full = 2 ** keyBits - 1;
      lines.push(`const key = ${key};`);
      for (const t of ts) {
        if (t.kind === DEFAULT) {
          lines.push(goto(t.next));
          break;
        }
        if (t.kind === VSET) {
          VS.push(t.vset!);
          lines.push(`if (VS[${int(VS.length - 1)}].has(BigInt(key))) { ${goto(t.next)} }`);
          continue;
        }
        if (t.valueN < 0) continue; // a value wider than the key never matches
        const test =
          t.maskN === full
            ? `key === ${int(t.valueN)}`
            : `((key & ${int(t.maskN)}) >>> 0) === ${int(t.valueN)}`;
        lines.push(`if (${test}) { ${goto(t.next)} }`);
      }
      lines.push(`throw new PE(${int(codes.noMatch)});`);
    } else {
      // wide keys (BigInt): the state's select as a closure, returning the next index
      SEL[i] = bigSelect(st, codes);
      lines.push(`st = SEL[${int(i)}](s); if (st < 0) return; continue;`);
    }
    lines.push('}');
    cases.push(lines.join('\n'));
  }
  const errorStore = parserErrorSlot >= 0 ? `n[${int(parserErrorSlot)}] = err.code;` : '';
  const src = `return function parse(s) {
const n = s.n; const v = s.valid; const vb = s.vb; const p = s.pkt; const len = p.length;
let st = ${int(init.index)};
let steps = 0;
try {
for (;;) {
if (++steps > 10000) throw new PE(${int(codes.timeout)});
switch (st) {
${cases.join('\n')}
default: return;
}
}
} catch (err) {
if (!(err instanceof PE)) throw err;
${errorStore}
}
};`;
  const make = new Function('PE', 'readBits', 'O', 'K', 'VS', 'SEL', src);
  return make(ParserError, readBits, O, K, VS, SEL) as (s: PacketState) => void;
}

/** A state's select on a BigInt key: the next state's index, -1 to accept. */
function bigSelect(st: ParseState, codes: ParserErrorCodes): (s: PacketState) => number {
  const keys = st.keys;
  const ts = st.transitions;
  return (s) => {
    let key = 0n;
    for (const k of keys) key = (key << BigInt(k.bytes * 8)) | k.big(s);
    for (const t of ts) {
      if (t.kind === VALUE ? (key & t.mask) === t.value : t.kind === DEFAULT || t.vset!.has(key)) {
        return t.next === null ? -1 : t.next.index;
      }
    }
    throw new ParserError(codes.noMatch);
  };
}
