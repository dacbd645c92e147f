/**
 * Actions and their primitives, compiled from BMv2 JSON: each primitive as a closure (a
 * jump, or a fall through) and, where it has one, as JavaScript statements — assignments,
 * header validity, copies, pushes and pops, drop, exit — so that an action whose every
 * primitive has JS is one generated function, and a control can inline it (pipeline.ts).
 * Counters, registers, meters, hashes, random, clone/resubmit/recirculate and digests stay
 * closures over the switch's externs.
 */

import { GuestError } from '../../runtime/errors.js';
import { int } from './codegen.js';
import { P4RuntimeError } from './errors.js';
import {
  asBig,
  binary,
  bigToEval,
  constant,
  type FieldSlot,
  jsFunction,
  numEval,
  storeInto,
  storeJs,
  ternary,
  truth,
  widthRange,
} from './expr.js';
import type { Externs } from './externs.js';
import type { FieldListRT } from './field-lists.js';
import type { HeaderLayout, StandardMetadataSlots } from './layout.js';
import {
  type ActionData,
  type ActionRT,
  DROP_PORT,
  type Eval,
  type PacketState,
  type Prim,
} from './state.js';

// biome-ignore lint/suspicious/noExplicitAny: BMv2 JSON is validated as it is compiled
type J = any;

/** What compiling an action needs from the program being compiled (program.ts). */
export interface ActionContext {
  expr(e: J): Eval;
  /** The slot of a field reference [header, field]. */
  slot(v: J): FieldSlot;
  header(name: string): HeaderLayout;
  /** Widths of the parameters of the action being compiled (runtime_data refers to them). */
  setParamWidths(widths: number[] | null): void;
  readonly layouts: readonly HeaderLayout[];
  readonly stacks: ReadonlyMap<string, { headers: number[] }>;
  readonly smf: StandardMetadataSlots;
  readonly externs: Externs;
  readonly errors: ReadonlyMap<string, number>;
  readonly calcs: ReadonlyMap<string, Eval>;
  readonly fieldLists: ReadonlyMap<number, FieldListRT>;
  readonly learnLists: ReadonlyMap<number, FieldListRT>;
}

export function big(v: string | number | boolean): bigint {
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (typeof v === 'number') return BigInt(v);
  return v.startsWith('-') ? -BigInt(v.slice(1)) : BigInt(v);
}

const full = (w: number): bigint => (1n << BigInt(w)) - 1n;

/** A numeric index (counter, register, meter cell) from an expression. */
export function indexFn(e: Eval): (s: PacketState, ad: ActionData) => number {
  if (e.num) return e.f;
  const f = e.f;
  return (s, ad) => Number(f(s, ad));
}

/** A primitive that never jumps: run `f` and fall through. */
const step =
  (f: (s: PacketState, ad: ActionData) => void): Prim =>
  (s, ad) => {
    f(s, ad);
    return undefined;
  };

export class ActionCompiler {
  readonly #ctx: ActionContext;

  constructor(ctx: ActionContext) {
    this.#ctx = ctx;
  }

  /** A constant field list id must name a list (0 is the empty list p4c uses for clone()). */
  #fieldListRef(p: J | null, op: string): void {
    if (p === null || p.type !== 'hexstr') return;
    const id = Number(big(p.value));
    if (id !== 0 && !this.#ctx.fieldLists.has(id))
      throw new P4RuntimeError('P4_JSON', `${op}: no field list with id ${id}`);
  }

  headerCopy(dst: HeaderLayout, src: HeaderLayout): (s: PacketState) => void {
    if (dst.nEnd - dst.nStart !== src.nEnd - src.nStart || dst.bEnd - dst.bStart !== src.bEnd - src.bStart)
      throw new P4RuntimeError('P4_JSON', `headers ${dst.name} and ${src.name} have different types`);
    const d = dst.id;
    const h = src.id;
    return (s) => {
      s.valid[d] = s.valid[h]!;
      s.vb[d] = s.vb[h]!;
      s.n.copyWithin(dst.nStart, src.nStart, src.nEnd);
      for (let k = 0; k < src.bEnd - src.bStart; k++) s.b[dst.bStart + k] = s.b[src.bStart + k]!;
    };
  }

  prim(p: J): Prim {
    const params = (p.parameters ?? []) as J[];
    const P = (i: number): J => params[i];
    switch (p.op as string) {
      case 'assign':
      case 'modify_field':
        return step(storeInto(this.#ctx.slot(P(0).value), this.#ctx.expr(P(1))));
      case 'assign_header':
        return step(this.headerCopy(this.#ctx.header(P(0).value), this.#ctx.header(P(1).value)));
      case 'add_header': {
        const l = this.#ctx.header(P(0).value);
        const h = l.id;
        return step((s) => {
          if (s.valid[h] === 0) {
            s.valid[h] = 1;
            s.n.fill(0, l.nStart, l.nEnd);
            s.b.fill(0n, l.bStart, l.bEnd);
          }
        });
      }
      case 'remove_header': {
        const h = this.#ctx.header(P(0).value).id;
        return step((s) => {
          s.valid[h] = 0;
        });
      }
      case 'mark_to_drop': {
        const es = this.#ctx.smf.egress_spec;
        const mg = this.#ctx.smf.mcast_grp;
        return step((s) => {
          s.n[es] = DROP_PORT;
          if (mg >= 0) s.n[mg] = 0;
        });
      }
      case 'exit':
        return (s) => {
          s.exit = true;
          return -1;
        };
      case 'count': {
        const c = this.#ctx.externs.counters.get(P(0).value);
        if (!c) throw new P4RuntimeError('P4_JSON', `unknown counter ${P(0).value}`);
        const idx = indexFn(this.#ctx.expr(P(1)));
        return step((s, ad) => {
          const i = idx(s, ad);
          if (i >= 0 && i < c.packets.length) {
            c.packets[i]!++;
            c.bytes[i]! += s.pkt.length;
          }
        });
      }
      case 'register_read': {
        const target = this.#ctx.slot(P(0).value);
        const r = this.#ctx.externs.registers.get(P(1).value);
        if (!r) throw new P4RuntimeError('P4_JSON', `unknown register ${P(1).value}`);
        const idx = indexFn(this.#ctx.expr(P(2)));
        const values = r.values;
        const read = bigToEval(
          (s, ad) => {
            const i = idx(s, ad);
            return i >= 0 && i < values.length ? values[i]! : 0n;
          },
          0n,
          full(r.width),
        );
        return step(storeInto(target, read));
      }
      case 'register_write': {
        const r = this.#ctx.externs.registers.get(P(0).value);
        if (!r) throw new P4RuntimeError('P4_JSON', `unknown register ${P(0).value}`);
        const idx = indexFn(this.#ctx.expr(P(1)));
        const v = asBig(this.#ctx.expr(P(2)));
        const w = r.width;
        return step((s, ad) => {
          const i = idx(s, ad);
          if (i >= 0 && i < r.values.length) r.values[i] = BigInt.asUintN(w, v(s, ad));
        });
      }
      case 'execute_meter': {
        const m = this.#ctx.externs.meters.get(P(0).value);
        if (!m) throw new P4RuntimeError('P4_JSON', `unknown meter ${P(0).value}`);
        const idx = indexFn(this.#ctx.expr(P(1)));
        const color = numEval((s, ad) => this.#ctx.externs.meterColor(m, idx(s, ad), s.pkt.length), 0n, 2n);
        return step(storeInto(this.#ctx.slot(P(2).value), color));
      }
      case 'modify_field_with_hash_based_offset': {
        const calc = this.#ctx.calcs.get(P(2).value);
        if (!calc) throw new P4RuntimeError('P4_JSON', `unknown calculation ${P(2).value}`);
        const base = this.#ctx.expr(P(1));
        const max = this.#ctx.expr(P(3));
        // base + (max == 0 ? hash : hash % max), through the range-specialised operators
        const offset = ternary(binary('==', max, constant(0n)), calc, binary('%', calc, max));
        return step(storeInto(this.#ctx.slot(P(0).value), binary('+', base, offset)));
      }
      case 'modify_field_rng_uniform': {
        const target = this.#ctx.slot(P(0).value);
        const lo = asBig(this.#ctx.expr(P(1)));
        const hi = asBig(this.#ctx.expr(P(2)));
        const [, whi] = widthRange(target.width, target.signed);
        const value = bigToEval(
          (s, ad) => {
            const a = lo(s, ad);
            const span = hi(s, ad) - a + 1n;
            return span <= 0n ? a : a + (BigInt(this.#ctx.externs.random()) % span);
          },
          -(whi + 1n) * 2n,
          whi * 2n + 1n,
        );
        return step(storeInto(target, value));
      }
      case 'push':
      case 'pop': {
        const st = this.#ctx.stacks.get(P(0).value);
        if (!st) throw new P4RuntimeError('P4_JSON', `unknown header stack ${P(0).value}`);
        const n = Number(big(P(1).value));
        const ids = st.headers;
        const layouts = ids.map((i) => this.#ctx.layouts[i]!);
        const len = ids.length;
        if (p.op === 'push') {
          // from the top down, so every element is read before it is overwritten
          const copies = layouts.map((l, i) => (i - n >= 0 ? this.headerCopy(l, layouts[i - n]!) : null));
          return step((s) => {
            for (let i = len - 1; i >= 0; i--) {
              const c = copies[i];
              if (c) c(s);
              else {
                s.valid[ids[i]!] = 0;
                s.vb[ids[i]!] = 0;
              }
            }
          });
        }
        const copies = layouts.map((l, i) => (i + n < len ? this.headerCopy(l, layouts[i + n]!) : null));
        return step((s) => {
          for (let i = 0; i < len; i++) {
            const c = copies[i];
            if (c) c(s);
            else {
              s.valid[ids[i]!] = 0;
              s.vb[ids[i]!] = 0;
            }
          }
        });
      }
      case 'clone_ingress_pkt_to_egress':
      case 'clone_egress_pkt_to_egress': {
        // p4c: [session, field list id]; a later clone in the same pipeline replaces it
        const session = indexFn(this.#ctx.expr(P(0)));
        const list = params.length > 1 ? indexFn(this.#ctx.expr(P(1))) : () => 0;
        this.#fieldListRef(params.length > 1 ? P(1) : null, p.op);
        return step((s, ad) => {
          s.cloneSession = session(s, ad);
          s.cloneFieldList = list(s, ad);
        });
      }
      case 'resubmit':
      case 'recirculate': {
        const list = params.length > 0 ? indexFn(this.#ctx.expr(P(0))) : () => 0;
        this.#fieldListRef(params.length > 0 ? P(0) : null, p.op);
        if (p.op === 'resubmit')
          return step((s, ad) => {
            s.resubmit = list(s, ad);
          });
        return step((s, ad) => {
          s.recirculate = list(s, ad);
        });
      }
      case 'generate_digest': {
        const receiver = indexFn(this.#ctx.expr(P(0)));
        const id = Number(big(P(1).value));
        if (!this.#ctx.learnLists.has(id))
          throw new P4RuntimeError('P4_JSON', `generate_digest: no learn list with id ${id}`);
        return step((s, ad) => {
          s.learn = id;
          s.learnReceiver = receiver(s, ad);
        });
      }
      case 'log_msg':
      case 'assume':
        return () => undefined;
      case 'assert': {
        const t = truth(this.#ctx.expr(P(0)));
        return step((s, ad) => {
          if (!t(s, ad)) throw new GuestError('P4_ASSERT', 'assert() failed in the P4 program');
        });
      }
      case '_jump': {
        const to = Number(big(P(0).value));
        return () => to;
      }
      case '_jump_if_zero': {
        const t = truth(this.#ctx.expr(P(0)));
        const to = Number(big(P(1).value));
        return (s, ad) => (t(s, ad) ? undefined : to);
      }
      default:
        throw new P4RuntimeError('P4_JSON', `unsupported primitive '${p.op}'`);
    }
  }

  /**
   * A primitive as JavaScript statements, for those that have one (assignments of expressions
   * with JS, header validity, drop, exit); null for the rest, which stay closures.
   */
  #primJs(p: J): string | null {
    const params = (p.parameters ?? []) as J[];
    switch (p.op as string) {
      case 'assign':
      case 'modify_field':
        return storeJs(this.#ctx.slot(params[0].value), this.#ctx.expr(params[1]));
      case 'remove_header':
        return `v[${this.#ctx.header(params[0].value).id}] = 0;`;
      case 'add_header': {
        const l = this.#ctx.header(params[0].value);
        const wide = l.bEnd > l.bStart ? `s.b.fill(0n, ${l.bStart}, ${l.bEnd});` : '';
        return `if (v[${l.id}] === 0) { v[${l.id}] = 1; n.fill(0, ${l.nStart}, ${l.nEnd}); ${wide} }`;
      }
      case 'mark_to_drop': {
        const mg = this.#ctx.smf.mcast_grp;
        return `n[${this.#ctx.smf.egress_spec}] = ${DROP_PORT};${mg >= 0 ? ` n[${mg}] = 0;` : ''}`;
      }
      case 'exit':
        return 's.exit = true; return;';
      case 'log_msg':
      case 'assume':
        return '';
      case 'assign_header':
        return this.#headerCopyJs(this.#ctx.header(params[0].value), this.#ctx.header(params[1].value));
      case 'push':
      case 'pop': {
        const st = this.#ctx.stacks.get(params[0].value);
        if (!st) throw new P4RuntimeError('P4_JSON', `unknown header stack ${params[0].value}`);
        const by = Number(big(params[1].value));
        const ls = st.headers.map((i) => this.#ctx.layouts[i]!);
        const clear = (l: HeaderLayout): string => `v[${int(l.id)}] = 0; s.vb[${int(l.id)}] = 0;`;
        const lines: string[] = [];
        // as the closures do: push from the top down, pop from the bottom up, so every element
        // is read before it is overwritten
        if (p.op === 'push')
          for (let i = ls.length - 1; i >= 0; i--)
            lines.push(i - by >= 0 ? this.#headerCopyJs(ls[i]!, ls[i - by]!) : clear(ls[i]!));
        else
          for (let i = 0; i < ls.length; i++)
            lines.push(i + by < ls.length ? this.#headerCopyJs(ls[i]!, ls[i + by]!) : clear(ls[i]!));
        return lines.join('\n');
      }
      default:
        return null;
    }
  }

  /** #headerCopy as JS statements: every slot copied by an explicit store. */
  #headerCopyJs(dst: HeaderLayout, src: HeaderLayout): string {
    this.headerCopy(dst, src); // the same type check
    const lines = [`v[${int(dst.id)}] = v[${int(src.id)}]; s.vb[${int(dst.id)}] = s.vb[${int(src.id)}];`];
    for (let k = 0; k < src.nEnd - src.nStart; k++)
      lines.push(`n[${int(dst.nStart + k)}] = n[${int(src.nStart + k)}];`);
    for (let k = 0; k < src.bEnd - src.bStart; k++)
      lines.push(`s.b[${int(dst.bStart + k)}] = s.b[${int(src.bStart + k)}];`);
    return lines.join(' ');
  }

  action(a: J): ActionRT {
    const params = ((a.runtime_data ?? []) as J[]).map((r) => ({
      name: String(r.name),
      width: Number(r.bitwidth),
    }));
    this.#ctx.setParamWidths(params.map((x) => x.width));
    const prims = ((a.primitives ?? []) as J[]).map((p) => this.prim(p));
    // An action whose every primitive has JS becomes one function: no call per primitive.
    const js = ((a.primitives ?? []) as J[]).map((p) => this.#primJs(p));
    this.#ctx.setParamWidths(null);
    if (js.every((x) => x !== null)) {
      const body = js.join('\n');
      return { name: a.name, id: a.id, params, run: jsFunction<void>(body), js: body };
    }
    const n = prims.length;
    const first = prims[0]!;
    const run =
      n === 0
        ? () => {}
        : n === 1
          ? (s: PacketState, ad: ActionData) => void first(s, ad)
          : (s: PacketState, ad: ActionData) => {
              let pc = 0;
              while (pc < n) {
                const r = prims[pc]!(s, ad);
                if (r === undefined) pc++;
                else if (r < 0) return;
                else pc = r;
              }
            };
    return { name: a.name, id: a.id, params, run, js: null };
  }
}
