/**
 * The parser's state machine as compiled from BMv2 JSON — states with their operations, select
 * keys and transitions — and the walk a packet takes through them, generated as one function.
 * A parser error (a packet too short, no transition matching, a failed `verify`) ends the walk
 * and sets standard_metadata.parser_error; the packet goes on to ingress, as v1model does.
 */

import { big, indexFn } from './actions.js';
import { readBits, readNum } from './bits.js';
import { compileExtractor, extractorStatements, int, type PackedField } from './codegen.js';
import { P4RuntimeError } from './errors.js';
import {
  asBig,
  type FieldSlot,
  jsFunction,
  ParserError,
  storeInto,
  storeJs,
  truth,
  wrapNum,
} from './expr.js';
import type { HeaderLayout } from './layout.js';
import { type ActionData, type Eval, NO_ACTION_DATA, type PacketState, type Prim } from './state.js';

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

/**
 * The whole state machine as one generated function: a loop over a `switch` on the state's
 * index, each state's ops inlined where they have JS (so a fixed-size extract is a bounds check
 * and straight-line byte reads), its select key combined from slot reads and its transitions
 * as compares against constants. The source holds only numbers and operators chosen here; every
 * closure it calls (ops without JS, key readers, value sets, wide-key selects) is passed in.
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
  const make = new Function('PE', 'OOB', 'readBits', 'O', 'K', 'VS', 'SEL', src);
  const oob = (code: number): never => {
    throw new ParserError(code);
  };
  return make(ParserError, oob, readBits, O, K, VS, SEL) as (s: PacketState) => void;
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

// biome-ignore lint/suspicious/noExplicitAny: BMv2 JSON is validated as it is compiled
type J = any;

const full = (w: number): bigint => (1n << BigInt(w)) - 1n;

/** What compiling the parser needs from the program being compiled (program.ts). */
export interface ParserContext {
  expr(e: J): Eval;
  fieldEval(v: J): Eval;
  /** A field reference [header, field]; field -1 is the header's validity bit. */
  fieldRef(v: J): { layout: HeaderLayout; field: number };
  slot(v: J): FieldSlot;
  header(name: string): HeaderLayout;
  /** A primitive run from the parser (a `primitive` parser op). */
  prim(p: J): Prim;
  readonly layouts: readonly HeaderLayout[];
  readonly stacks: ReadonlyMap<string, { headers: number[] }>;
  readonly errors: ReadonlyMap<string, number>;
  readonly vsets: ReadonlyMap<string, Set<bigint>>;
}

/** The parser's states compiled from BMv2 JSON: closures per op and key, JS where they have it. */
export class ParserCompiler {
  readonly #ctx: ParserContext;

  constructor(ctx: ParserContext) {
    this.#ctx = ctx;
  }

  #selectKey(k: J, state: string): SelectKey {
    if (k.type === 'field') {
      const e = this.#ctx.fieldEval(k.value);
      const { layout, field } = this.#ctx.fieldRef(k.value);
      const w = field < 0 ? 1 : layout.widths[field]!;
      const unsigned = e.lo >= 0n;
      // keys read their slot directly: no call through the expression's closure
      const slot = field >= 0 ? layout.slots[field]! : null;
      const h = layout.id;
      const direct =
        slot === null
          ? (s: PacketState) => s.valid[h]!
          : !slot.wide
            ? (s: PacketState) => s.n[slot.slot]!
            : null;
      return {
        num:
          e.num && unsigned
            ? (direct ?? ((s) => (e.f as (s: PacketState, ad: ActionData) => number)(s, NO_ACTION_DATA)))
            : null,
        js: !e.num || !unsigned ? null : slot === null ? `v[${h}]` : !slot.wide ? `n[${slot.slot}]` : null,
        big: asBig(e) as (s: PacketState) => bigint,
        bytes: Math.max(1, Math.ceil(w / 8)),
        scale: 2 ** (8 * Math.max(1, Math.ceil(w / 8))),
      };
    }
    if (k.type === 'stack_field') {
      const st = this.#ctx.stacks.get(k.value[0]);
      if (!st) throw new P4RuntimeError('P4_JSON', `unknown header stack ${k.value[0]}`);
      const ids = st.headers;
      const first = this.#ctx.layouts[ids[0]!]!;
      const fid = first.fieldIds.get(k.value[1]);
      if (fid === undefined)
        throw new P4RuntimeError('P4_JSON', `stack ${k.value[0]} has no field ${k.value[1]}`);
      const oob = this.#ctx.errors.get('StackOutOfBounds') ?? 3;
      const slots = ids.map((i) => this.#ctx.layouts[i]!.slots[fid]!);
      const lastValid = (s: PacketState): number => {
        for (let i = ids.length - 1; i >= 0; i--) if (s.valid[ids[i]!] === 1) return i;
        throw new ParserError(oob);
      };
      const f = slots[0]!;
      const big = (s: PacketState): bigint => {
        const x = slots[lastValid(s)]!;
        return x.wide ? s.b[x.slot]! : BigInt(s.n[x.slot]!);
      };
      return {
        num: !f.wide && !f.signed ? (s) => s.n[slots[lastValid(s)]!.slot]! : null,
        // `last`: the topmost valid element's field, as lastValid finds it (none: an error)
        js:
          !f.wide && !f.signed
            ? `(${ids
                .map((id, i) => `v[${int(id)}] === 1 ? n[${int(slots[i]!.slot)}] : `)
                .reverse()
                .join('')}OOB(${int(oob)}))`
            : null,
        big,
        bytes: Math.max(1, Math.ceil(first.widths[fid]! / 8)),
        scale: 2 ** (8 * Math.max(1, Math.ceil(first.widths[fid]! / 8))),
      };
    }
    if (k.type === 'lookahead') {
      const e = this.#ctx.expr(k);
      return {
        num: e.num ? (s) => e.f(s, NO_ACTION_DATA) : null,
        js: null,
        big: (s) => asBig(e)(s, NO_ACTION_DATA),
        bytes: Math.max(1, Math.ceil(Number(k.value[1]) / 8)),
        scale: 2 ** (8 * Math.max(1, Math.ceil(Number(k.value[1]) / 8))),
      };
    }
    throw new P4RuntimeError('P4_JSON', `state ${state}: unsupported transition key '${k.type}'`);
  }

  /** The parser's states from the JSON's first parser; `init` is where a packet starts. */
  compile(p: J): { init: ParseState; states: ParseState[] } {
    const states = new Map<string, ParseState>();
    const pending: [Transition, string | null][] = [];
    for (const st of p.parse_states as J[]) {
      const ops = (st.parser_ops as J[]).map((o) => this.#parserOp(o));
      const opsJs = (st.parser_ops as J[]).map((o) => this.#parserOpJs(o));
      const keys = (st.transition_key as J[]).map((k: J) => this.#selectKey(k, st.name));
      const keyBits = keys.reduce((a, k) => a + k.bytes * 8, 0);
      const numKey = keys.length > 0 && keyBits <= 32 && keys.every((k) => k.num !== null);
      const transitions = (st.transitions as J[]).map((t: J) => {
        const kind: Transition['kind'] =
          t.type === 'default' ? DEFAULT : t.type === 'parse_vset' ? VSET : VALUE;
        if (t.type !== 'default' && t.type !== 'hexstr' && t.type !== 'parse_vset') {
          throw new P4RuntimeError('P4_JSON', `state ${st.name}: unsupported transition type '${t.type}'`);
        }
        const mask = kind === VALUE && t.mask !== null && t.mask !== undefined ? big(t.mask) : -1n;
        const value = kind === VALUE ? (mask === -1n ? big(t.value) : big(t.value) & mask) : 0n;
        const keyMask = full(keyBits);
        const tr: Transition = {
          kind,
          value,
          mask,
          valueN: numKey ? Number(value & keyMask) : 0,
          maskN: numKey ? Number(mask & keyMask) : 0,
          vset: kind === VSET ? (this.#ctx.vsets.get(t.value) ?? new Set()) : null,
          next: null,
        };
        // a value wider than the key can never match on numbers either
        if (numKey && kind === VALUE && (value & ~keyMask & mask) !== 0n) tr.valueN = -1;
        pending.push([tr, t.next_state ?? null]);
        return tr;
      });
      states.set(st.name, { name: st.name, index: states.size, ops, opsJs, keys, numKey, transitions });
    }
    for (const [t, n] of pending) {
      if (n === null) continue;
      const target = states.get(n);
      if (!target) throw new P4RuntimeError('P4_JSON', `transition to unknown parse state ${n}`);
      t.next = target;
    }
    const init = states.get(p.init_state);
    if (!init) throw new P4RuntimeError('P4_JSON', `unknown init_state ${p.init_state}`);
    return { init, states: [...states.values()] };
  }

  /** Extraction of one header: its fields read at fixed offsets into their slots. */
  #extractor(hid: number): (s: PacketState, extraBits: number) => void {
    const l = this.#ctx.layouts[hid]!;
    const tooShort = this.#ctx.errors.get('PacketTooShort') ?? 1;
    // Fields before the varbit sit at fixed offsets; fields after it move with its length.
    const fixed: { off: number; w: number; slot: number; signed: boolean; wide: boolean; after: boolean }[] =
      [];
    let off = 0;
    let after = false;
    let varbitOff = 0;
    l.slots.forEach((fs, i) => {
      if (i === l.varbitField) {
        varbitOff = off;
        after = true;
        return;
      }
      const w = l.widths[i]!;
      fixed.push({ off, w, slot: fs.slot, signed: fs.signed, wide: fs.wide, after });
      off += w;
    });
    const count = fixed.length;
    const bits = l.bits;
    const vbSlot = l.varbitField >= 0 ? l.slots[l.varbitField]!.slot : -1;
    if (l.varbitField < 0) {
      const extract = compileExtractor(
        fixed.map((f) => ({ off: f.off, width: f.w, slot: f.slot, wide: f.wide, signed: f.signed })),
      );
      return (s) => {
        const c = s.cursor;
        if ((c << 3) + bits > s.pkt.length << 3) throw new ParserError(tooShort);
        extract(s, s.pkt, c);
        s.valid[hid] = 1;
        s.vb[hid] = 0;
        s.cursor = c + (bits >> 3);
      };
    }
    const wraps = fixed.map((f) => (f.signed ? wrapNum(f.w, true) : null));
    return (s, extraBits) => {
      const base = s.cursor * 8;
      const total = bits + extraBits;
      if (base + total > s.pkt.length * 8) throw new ParserError(tooShort);
      for (let i = 0; i < count; i++) {
        const f = fixed[i]!;
        const at = base + f.off + (f.after ? extraBits : 0);
        if (f.wide) {
          const v = readBits(s.pkt, at, f.w);
          s.b[f.slot] = f.signed ? BigInt.asIntN(f.w, v) : v;
        } else {
          const v = readNum(s.pkt, at, f.w);
          s.n[f.slot] = wraps[i] ? wraps[i]!(v) : v;
        }
      }
      if (vbSlot >= 0) s.b[vbSlot] = readBits(s.pkt, base + varbitOff, extraBits);
      s.valid[hid] = 1;
      s.vb[hid] = extraBits;
      s.cursor += total >> 3;
    };
  }

  /**
   * A parser op as JS statements for the generated parser (parser.ts), where it has them: the
   * extract of a fixed-size header (bounds check, straight-line reads, validity, cursor) and
   * an assignment whose expression has JS. Null for the rest, which the parser calls.
   */
  #parserOpJs(o: J): string | null {
    const params = (o.parameters ?? []) as J[];
    if (o.op === 'set') return storeJs(this.#ctx.slot(params[0].value), this.#ctx.expr(params[1]));
    if (o.op !== 'extract') return null;
    if (params[0]?.type === 'regular') return this.#extractJs(this.#ctx.header(params[0].value));
    if (params[0]?.type !== 'stack') return null;
    const st = this.#ctx.stacks.get(params[0].value);
    if (!st) return null;
    // `next`: the first invalid element, as the closure finds it; past the end, an error
    const ls = st.headers.map((i) => this.#ctx.layouts[i]!);
    const each = ls.map((l) => this.#extractJs(l));
    if (each.some((x) => x === null)) return null;
    const overflow = this.#ctx.errors.get('StackOutOfBounds') ?? 3;
    const chain = ls.map((l, i) => `if (v[${int(l.id)}] === 0) {\n${each[i]}\n}`).join(' else ');
    return `${chain} else throw new PE(${int(overflow)});`;
  }

  /** The extract of a fixed-size header as JS: bounds check, reads, validity, cursor. */
  #extractJs(l: HeaderLayout): string | null {
    if (l.varbitField >= 0 || l.bits % 8 !== 0) return null;
    const tooShort = this.#ctx.errors.get('PacketTooShort') ?? 1;
    const bytes = l.bits >> 3;
    const fields: PackedField[] = [];
    let off = 0;
    l.slots.forEach((fs, i) => {
      fields.push({ off, width: l.widths[i]!, slot: fs.slot, wide: fs.wide, signed: fs.signed });
      off += l.widths[i]!;
    });
    return [
      '{ const c = s.cursor;',
      `if (c + ${int(bytes)} > len) throw new PE(${int(tooShort)});`,
      ...extractorStatements(fields),
      `v[${int(l.id)}] = 1; vb[${int(l.id)}] = 0; s.cursor = c + ${int(bytes)}; }`,
    ].join('\n');
  }

  #parserOp(o: J): (s: PacketState) => void {
    const params = (o.parameters ?? []) as J[];
    const tooShort = this.#ctx.errors.get('PacketTooShort') ?? 1;
    switch (o.op as string) {
      case 'extract': {
        const p = params[0];
        if (p.type === 'regular') {
          const x = this.#extractor(this.#ctx.header(p.value).id);
          return (s) => x(s, 0);
        }
        if (p.type === 'stack') {
          const st = this.#ctx.stacks.get(p.value);
          if (!st) throw new P4RuntimeError('P4_JSON', `unknown header stack ${p.value}`);
          const ids = st.headers;
          const xs = ids.map((i) => this.#extractor(i));
          const overflow = this.#ctx.errors.get('StackOutOfBounds') ?? 3;
          return (s) => {
            for (let i = 0; i < ids.length; i++) {
              if (s.valid[ids[i]!] === 0) {
                xs[i]!(s, 0);
                return;
              }
            }
            throw new ParserError(overflow);
          };
        }
        throw new P4RuntimeError('P4_JSON', `unsupported extract parameter '${p.type}'`);
      }
      case 'extract_VL': {
        const l = this.#ctx.header(params[0].value);
        const x = this.#extractor(l.id);
        const len = indexFn(this.#ctx.expr(params[1]));
        const headerTooShort = this.#ctx.errors.get('HeaderTooShort') ?? 4;
        return (s) => {
          const bits = len(s, NO_ACTION_DATA);
          if (bits < 0 || bits > l.maxVarbit || bits % 8 !== 0) throw new ParserError(headerTooShort);
          x(s, bits);
        };
      }
      case 'set': {
        const target = this.#ctx.slot(params[0].value);
        const e = this.#ctx.expr(params[1]);
        const js = storeJs(target, e);
        if (js !== null) return jsFunction<void>(js) as (s: PacketState) => void;
        return storeInto(target, e) as (s: PacketState) => void;
      }
      case 'verify': {
        const t = truth(this.#ctx.expr(params[0]));
        const e = indexFn(this.#ctx.expr(params[1]));
        return (s) => {
          if (!t(s, NO_ACTION_DATA)) throw new ParserError(e(s, NO_ACTION_DATA));
        };
      }
      case 'advance': {
        const n = indexFn(this.#ctx.expr(params[0]));
        return (s) => {
          const bits = n(s, NO_ACTION_DATA);
          if (s.cursor * 8 + bits > s.pkt.length * 8) throw new ParserError(tooShort);
          s.cursor += bits >> 3;
        };
      }
      case 'primitive': {
        const prims = params.map((x) => this.#ctx.prim(x));
        return (s) => {
          for (const p of prims) p(s, NO_ACTION_DATA);
        };
      }
      default:
        throw new P4RuntimeError('P4_JSON', `unsupported parser op '${o.op}'`);
    }
  }
}
