/**
 * A BMv2 JSON program compiled for the behavioral switch: header layouts, actions, the parser's
 * states, the ingress and egress pipelines with their tables, checksums and the deparser's
 * emit order. Compiled once per switch — every field gets a fixed slot in the packet state
 * (layout.ts), expressions become closures or generated functions specialised by value range
 * (expr.ts), extraction and deparsing become straight-line code per header (codegen.ts) — so a
 * packet walks precompiled structures and never interprets JSON.
 */

import { GuestError } from '../../runtime/errors.js';
import { hashBytes, hashNum, orBits, orNum, readBits, readNum } from './bits.js';
import type { ChecksumRT } from './checksum.js';
import {
  compileCsum16,
  compileExtractor,
  compilePacker,
  extractorStatements,
  int,
  type PackedField,
} from './codegen.js';
import { P4RuntimeError } from './errors.js';
import {
  asBig,
  binary,
  bigEval,
  bigToEval,
  constant,
  type FieldSlot,
  fieldEval,
  jsFunction,
  numEval,
  numFn,
  ParserError,
  runtimeData,
  storeInto,
  storeJs,
  ternary,
  truth,
  truthFn,
  unary,
  widthRange,
  wrapNum,
} from './expr.js';
import type { Externs } from './externs.js';
import type { FieldListRT } from './field-lists.js';
import {
  type HeaderLayout,
  headerLayouts,
  type StandardMetadataSlots,
  standardMetadataSlots,
} from './layout.js';
import { DEFAULT, type ParseState, type SelectKey, type Transition, VALUE, VSET } from './parser.js';
import type { NodeRT } from './pipeline.js';
import {
  type ActionData,
  type ActionRT,
  DROP_PORT,
  type Eval,
  NO_ACTION_DATA,
  NUM_BITS,
  type PacketState,
  type Prim,
} from './state.js';
import { type KeyValue, TableRT, type TableKeyRT } from './tables.js';

// biome-ignore lint/suspicious/noExplicitAny: BMv2 JSON is validated as it is compiled
type J = any;

function big(v: string | number | boolean): bigint {
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (typeof v === 'number') return BigInt(v);
  return v.startsWith('-') ? -BigInt(v.slice(1)) : BigInt(v);
}

const full = (w: number): bigint => (1n << BigInt(w)) - 1n;

/** A primitive that never jumps: run `f` and fall through. */
const step =
  (f: (s: PacketState, ad: ActionData) => void): Prim =>
  (s, ad) => {
    f(s, ad);
    return undefined;
  };

export class CompiledProgram {
  readonly name: string;
  readonly layouts: readonly HeaderLayout[];
  readonly #byName: ReadonlyMap<string, HeaderLayout>;
  /** Slots in `n` and `b` of the packet state. */
  readonly nCount: number;
  readonly bCount: number;
  /** Validity of every header when a packet arrives: metadata valid, headers not. */
  readonly validInit: Uint8Array;
  readonly smf: StandardMetadataSlots;
  readonly stacks = new Map<string, { headers: number[] }>();
  /** Parser error codes by name (error declarations). */
  readonly errors = new Map<string, number>();
  readonly #actions: ActionRT[] = [];
  readonly tables = new Map<string, TableRT>();
  readonly #calcs = new Map<string, Eval>();
  readonly vsets = new Map<string, Set<bigint>>();
  readonly fieldLists = new Map<number, FieldListRT>();
  readonly learnLists = new Map<number, FieldListRT>();
  readonly ingress: NodeRT | null;
  readonly egress: NodeRT | null;
  readonly parserInit: ParseState;
  /** Every parser state, by index. */
  parserStates: readonly ParseState[] = [];
  readonly emitOrder: readonly number[];
  readonly verify: ChecksumRT[] = [];
  readonly update: ChecksumRT[] = [];
  readonly externs: Externs;
  readonly #json: J;

  constructor(json: unknown, externs: Externs) {
    const j = json as J;
    this.#json = j;
    this.externs = externs;
    if (!j || !Array.isArray(j.header_types) || !Array.isArray(j.headers) || !Array.isArray(j.pipelines)) {
      throw new P4RuntimeError(
        'P4_JSON',
        'not a BMv2 JSON program: header_types, headers and pipelines are required',
      );
    }
    this.name = String(j.program ?? 'program');
    const layouts = headerLayouts(j);
    this.layouts = layouts.headers;
    this.#byName = layouts.byName;
    this.nCount = layouts.nCount;
    this.bCount = layouts.bCount;
    this.validInit = Uint8Array.from(this.layouts, (l) => (l.metadata ? 1 : 0));
    for (const st of (j.header_stacks ?? []) as J[]) {
      this.stacks.set(st.name, { headers: (st.header_ids as number[]).slice() });
    }
    for (const [name, code] of (j.errors ?? []) as [string, number][]) this.errors.set(name, code);
    this.smf = standardMetadataSlots(layouts);
    for (const v of (j.parse_vsets ?? []) as J[]) this.vsets.set(v.name, new Set());
    for (const c of (j.calculations ?? []) as J[]) this.#calcs.set(c.name, this.#calculation(c));
    for (const f of (j.field_lists ?? []) as J[]) this.fieldLists.set(Number(f.id), this.#fieldList(f));
    for (const f of (j.learn_lists ?? []) as J[]) this.learnLists.set(Number(f.id), this.#fieldList(f));
    for (const a of (j.actions ?? []) as J[]) this.#actions[a.id] = this.#action(a);

    const parser = (j.parsers as J[] | undefined)?.[0];
    if (!parser) throw new P4RuntimeError('P4_JSON', 'the program has no parser');
    this.parserInit = this.#parser(parser);
    const deparser = (j.deparsers as J[] | undefined)?.[0];
    this.emitOrder = ((deparser?.order ?? []) as string[]).map((n) => this.#header(n).id);
    const pipes = j.pipelines as J[];
    const ingress = pipes.find((p) => p.name === 'ingress');
    const egress = pipes.find((p) => p.name === 'egress');
    if (!ingress || !egress)
      throw new P4RuntimeError('P4_JSON', 'v1model programs have ingress and egress pipelines');
    this.ingress = this.#pipeline(ingress);
    this.egress = this.#pipeline(egress);
    for (const c of (j.checksums ?? []) as J[]) {
      const calc = this.#calcs.get(c.calculation);
      if (!calc)
        throw new P4RuntimeError('P4_JSON', `checksum ${c.name}: unknown calculation ${c.calculation}`);
      const target = this.#slot(c.target);
      const entry: ChecksumRT = {
        target,
        calc,
        cond: c.if_cond ? truthFn(this.#expr(c.if_cond)) : null,
        store: storeInto(target, binary('&', calc, constant(0xffffn))),
      };
      if (c.verify) this.verify.push(entry);
      if (c.update) this.update.push(entry);
    }
  }

  // ------------------------------------------------------------ compilation of the JSON

  #header(name: string): HeaderLayout {
    const h = this.#byName.get(name);
    if (!h) throw new P4RuntimeError('P4_JSON', `unknown header instance '${name}'`);
    return h;
  }

  /** A field reference [header, field]; `$valid$` is null (the header's validity bit). */
  #fieldRef(v: J): { layout: HeaderLayout; field: number } {
    const h = this.#header(v[0]);
    if (v[1] === '$valid$') return { layout: h, field: -1 };
    const f = h.fieldIds.get(v[1]);
    if (f === undefined) throw new P4RuntimeError('P4_JSON', `header ${v[0]} has no field ${v[1]}`);
    return { layout: h, field: f };
  }

  #slot(v: J): FieldSlot {
    const { layout, field } = this.#fieldRef(v);
    if (field < 0) throw new P4RuntimeError('P4_JSON', `cannot assign ${v[0]}.$valid$`);
    return layout.slots[field]!;
  }

  #fieldEval(v: J): Eval {
    const { layout, field } = this.#fieldRef(v);
    if (field < 0) {
      const h = layout.id;
      return numEval((s) => s.valid[h]!, 0n, 1n, `v[${int(h)}]`);
    }
    return fieldEval(layout.slots[field]!);
  }

  #expr(e: J): Eval {
    switch (e?.type) {
      case 'field':
        return this.#fieldEval(e.value);
      case 'hexstr':
        return constant(big(e.value));
      case 'bool':
        return constant(e.value ? 1n : 0n);
      case 'runtime_data': {
        const i = Number(e.value);
        const w = this.#paramWidths?.[i];
        if (w === undefined)
          throw new P4RuntimeError('P4_JSON', `runtime_data ${i} outside an action's parameters`);
        return runtimeData(i, w);
      }
      case 'lookahead': {
        const [off, w] = e.value as [number, number];
        const tooShort = this.errors.get('PacketTooShort') ?? 1;
        const [lo, hi] = widthRange(w, false);
        if (w <= NUM_BITS)
          return numEval(
            (s) => {
              const bit = s.cursor * 8 + off;
              if (bit + w > s.pkt.length * 8) throw new ParserError(tooShort);
              return readNum(s.pkt, bit, w);
            },
            lo,
            hi,
          );
        return bigEval(
          (s) => {
            const bit = s.cursor * 8 + off;
            if (bit + w > s.pkt.length * 8) throw new ParserError(tooShort);
            return readBits(s.pkt, bit, w);
          },
          lo,
          hi,
        );
      }
      case 'expression':
        // p4c wraps some expressions twice ({type: expression, value: {type: expression, ...}})
        return e.value?.type === 'expression' ? this.#expr(e.value) : this.#op(e.value);
      default:
        throw new P4RuntimeError('P4_JSON', `unsupported expression type '${e?.type}'`);
    }
  }

  #op(v: J): Eval {
    const o = v.op as string;
    if (o === 'valid') {
      const h = this.#header(v.right.value).id;
      return numEval((s) => s.valid[h]!, 0n, 1n, `v[${int(h)}]`);
    }
    if (o === '?') return ternary(this.#expr(v.cond), this.#expr(v.left), this.#expr(v.right));
    const r = this.#expr(v.right);
    if (v.left === null) return unary(o, r);
    return binary(o, this.#expr(v.left), r);
  }

  /** A hash or checksum over a list of fields, constants and expressions (and the payload). */
  #calculation(c: J): Eval {
    type Part = { put: (s: PacketState, buf: Uint8Array) => void; width: number };
    let payload = false;
    let bitOff = 0;
    const parts: Part[] = [];
    // The same inputs for the generated packer: fields by slot, other inputs as closures.
    const packed: PackedField[] = [];
    const values: (((s: PacketState) => number) | null)[] = [];
    let packable = true;
    for (const i of c.input as J[]) {
      if (i.type === 'payload') {
        payload = true;
        continue;
      }
      let e: Eval;
      let w: number;
      let fs: FieldSlot | null = null;
      if (i.type === 'field') {
        const { layout, field } = this.#fieldRef(i.value);
        if (field < 0) throw new P4RuntimeError('P4_JSON', `calculation ${c.name}: $valid$ as an input`);
        // a varbit field counts its declared width (0), as before
        w = layout.widths[field]!;
        fs = layout.slots[field]!;
        e = fieldEval(fs);
      } else if (i.type === 'hexstr') {
        e = constant(big(i.value));
        w = Number(i.bitwidth);
      } else if (i.type === 'expression') {
        e = this.#expr(i.value);
        w = Number(i.bitwidth);
      } else throw new P4RuntimeError('P4_JSON', `calculation ${c.name}: unsupported input type '${i.type}'`);
      const off = bitOff;
      bitOff += w;
      if (w <= NUM_BITS && e.num) {
        const f = e.f;
        const [lo, hi] = widthRange(w, false);
        const wrap = e.lo >= lo && e.hi <= hi ? null : wrapNum(w, false);
        const value = wrap
          ? (s: PacketState) => wrap(f(s, NO_ACTION_DATA))
          : (s: PacketState) => f(s, NO_ACTION_DATA);
        parts.push({ width: w, put: (s, buf) => orNum(buf, off, w, value(s)) });
        const direct = fs !== null && !fs.wide && !fs.signed;
        packed.push({ off, width: w, slot: direct ? fs!.slot : -1, wide: false, signed: false });
        values.push(direct ? null : value);
      } else {
        const f = asBig(e);
        parts.push({ width: w, put: (s, buf) => orBits(buf, off, w, f(s, NO_ACTION_DATA)) });
        if (fs?.wide && w > 0) {
          packed.push({ off, width: w, slot: fs.slot, wide: true, signed: false });
          values.push(null);
        } else if (w > 0) packable = false;
      }
    }
    const algo = String(c.algo);
    if (!['csum16', 'crc16', 'crc32', 'identity', 'xor16'].includes(algo)) {
      throw new P4RuntimeError('P4_JSON', `calculation ${c.name}: unsupported algorithm '${algo}'`);
    }
    // One scratch buffer per calculation: a checksum per packet allocates nothing.
    const scratch = new Uint8Array(Math.ceil(bitOff / 8));
    const pack = packable ? compilePacker(packed, bitOff, values) : null;
    const fill = (s: PacketState): void => {
      if (pack !== null) pack(s, scratch, 0);
      else {
        scratch.fill(0);
        for (let k = 0; k < parts.length; k++) parts[k]!.put(s, scratch);
      }
    };
    const bytesOf = (s: PacketState): Uint8Array => {
      fill(s);
      if (!payload) return scratch;
      const rest = s.pkt.subarray(s.cursor);
      const all = new Uint8Array(scratch.length + rest.length);
      all.set(scratch);
      all.set(rest, scratch.length);
      return all;
    };
    if (algo === 'identity') {
      const f = (s: PacketState): bigint => hashBytes(algo, bytesOf(s));
      return bigToEval(f, 0n, payload ? 1n << 524288n : full(Math.max(1, scratch.length * 8)));
    }
    if (algo === 'csum16' && !payload && packable) {
      // the IPv4 header checksum and its kin: summed from the field values, no bytes packed
      const sum = compileCsum16(packed, bitOff, values);
      if (sum !== null) return numEval(sum, 0n, 0xffffn);
    }
    const hi = algo === 'crc32' ? 0xffffffffn : 0xffffn;
    return numEval((s) => hashNum(algo, bytesOf(s)), 0n, hi);
  }

  #fieldList(f: J): FieldListRT {
    const names: string[] = [];
    const slots: FieldSlot[] = [];
    for (const e of (f.elements ?? []) as J[]) {
      if (e.type !== 'field')
        throw new P4RuntimeError('P4_JSON', `field list ${f.name}: unsupported element type '${e.type}'`);
      names.push(`${e.value[0]}.${e.value[1]}`);
      slots.push(this.#slot(e.value));
    }
    return { id: Number(f.id), name: String(f.name), names, slots };
  }

  /** A constant field list id must name a list (0 is the empty list p4c uses for clone()). */
  #fieldListRef(p: J | null, op: string): void {
    if (p === null || p.type !== 'hexstr') return;
    const id = Number(big(p.value));
    if (id !== 0 && !this.fieldLists.has(id))
      throw new P4RuntimeError('P4_JSON', `${op}: no field list with id ${id}`);
  }

  /** Widths of the parameters of the action being compiled (runtime_data refers to them). */
  #paramWidths: number[] | null = null;

  /** A numeric index (counter, register, meter cell) from an expression. */
  #index(e: Eval): (s: PacketState, ad: ActionData) => number {
    if (e.num) return e.f;
    const f = e.f;
    return (s, ad) => Number(f(s, ad));
  }

  #headerCopy(dst: HeaderLayout, src: HeaderLayout): (s: PacketState) => void {
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

  #prim(p: J): Prim {
    const params = (p.parameters ?? []) as J[];
    const P = (i: number): J => params[i];
    switch (p.op as string) {
      case 'assign':
      case 'modify_field':
        return step(storeInto(this.#slot(P(0).value), this.#expr(P(1))));
      case 'assign_header':
        return step(this.#headerCopy(this.#header(P(0).value), this.#header(P(1).value)));
      case 'add_header': {
        const l = this.#header(P(0).value);
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
        const h = this.#header(P(0).value).id;
        return step((s) => {
          s.valid[h] = 0;
        });
      }
      case 'mark_to_drop': {
        const es = this.smf.egress_spec;
        const mg = this.smf.mcast_grp;
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
        const c = this.externs.counters.get(P(0).value);
        if (!c) throw new P4RuntimeError('P4_JSON', `unknown counter ${P(0).value}`);
        const idx = this.#index(this.#expr(P(1)));
        return step((s, ad) => {
          const i = idx(s, ad);
          if (i >= 0 && i < c.packets.length) {
            c.packets[i]!++;
            c.bytes[i]! += s.pkt.length;
          }
        });
      }
      case 'register_read': {
        const target = this.#slot(P(0).value);
        const r = this.externs.registers.get(P(1).value);
        if (!r) throw new P4RuntimeError('P4_JSON', `unknown register ${P(1).value}`);
        const idx = this.#index(this.#expr(P(2)));
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
        const r = this.externs.registers.get(P(0).value);
        if (!r) throw new P4RuntimeError('P4_JSON', `unknown register ${P(0).value}`);
        const idx = this.#index(this.#expr(P(1)));
        const v = asBig(this.#expr(P(2)));
        const w = r.width;
        return step((s, ad) => {
          const i = idx(s, ad);
          if (i >= 0 && i < r.values.length) r.values[i] = BigInt.asUintN(w, v(s, ad));
        });
      }
      case 'execute_meter': {
        const m = this.externs.meters.get(P(0).value);
        if (!m) throw new P4RuntimeError('P4_JSON', `unknown meter ${P(0).value}`);
        const idx = this.#index(this.#expr(P(1)));
        const color = numEval((s, ad) => this.externs.meterColor(m, idx(s, ad), s.pkt.length), 0n, 2n);
        return step(storeInto(this.#slot(P(2).value), color));
      }
      case 'modify_field_with_hash_based_offset': {
        const calc = this.#calcs.get(P(2).value);
        if (!calc) throw new P4RuntimeError('P4_JSON', `unknown calculation ${P(2).value}`);
        const base = this.#expr(P(1));
        const max = this.#expr(P(3));
        // base + (max == 0 ? hash : hash % max), through the range-specialised operators
        const offset = ternary(binary('==', max, constant(0n)), calc, binary('%', calc, max));
        return step(storeInto(this.#slot(P(0).value), binary('+', base, offset)));
      }
      case 'modify_field_rng_uniform': {
        const target = this.#slot(P(0).value);
        const lo = asBig(this.#expr(P(1)));
        const hi = asBig(this.#expr(P(2)));
        const [, whi] = widthRange(target.width, target.signed);
        const value = bigToEval(
          (s, ad) => {
            const a = lo(s, ad);
            const span = hi(s, ad) - a + 1n;
            return span <= 0n ? a : a + (BigInt(this.externs.random()) % span);
          },
          -(whi + 1n) * 2n,
          whi * 2n + 1n,
        );
        return step(storeInto(target, value));
      }
      case 'push':
      case 'pop': {
        const st = this.stacks.get(P(0).value);
        if (!st) throw new P4RuntimeError('P4_JSON', `unknown header stack ${P(0).value}`);
        const n = Number(big(P(1).value));
        const ids = st.headers;
        const layouts = ids.map((i) => this.layouts[i]!);
        const len = ids.length;
        if (p.op === 'push') {
          // from the top down, so every element is read before it is overwritten
          const copies = layouts.map((l, i) => (i - n >= 0 ? this.#headerCopy(l, layouts[i - n]!) : null));
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
        const copies = layouts.map((l, i) => (i + n < len ? this.#headerCopy(l, layouts[i + n]!) : null));
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
        const session = this.#index(this.#expr(P(0)));
        const list = params.length > 1 ? this.#index(this.#expr(P(1))) : () => 0;
        this.#fieldListRef(params.length > 1 ? P(1) : null, p.op);
        return step((s, ad) => {
          s.cloneSession = session(s, ad);
          s.cloneFieldList = list(s, ad);
        });
      }
      case 'resubmit':
      case 'recirculate': {
        const list = params.length > 0 ? this.#index(this.#expr(P(0))) : () => 0;
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
        const receiver = this.#index(this.#expr(P(0)));
        const id = Number(big(P(1).value));
        if (!this.learnLists.has(id))
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
        const t = truth(this.#expr(P(0)));
        return step((s, ad) => {
          if (!t(s, ad)) throw new GuestError('P4_ASSERT', 'assert() failed in the P4 program');
        });
      }
      case '_jump': {
        const to = Number(big(P(0).value));
        return () => to;
      }
      case '_jump_if_zero': {
        const t = truth(this.#expr(P(0)));
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
        return storeJs(this.#slot(params[0].value), this.#expr(params[1]));
      case 'remove_header':
        return `v[${this.#header(params[0].value).id}] = 0;`;
      case 'add_header': {
        const l = this.#header(params[0].value);
        const wide = l.bEnd > l.bStart ? `s.b.fill(0n, ${l.bStart}, ${l.bEnd});` : '';
        return `if (v[${l.id}] === 0) { v[${l.id}] = 1; n.fill(0, ${l.nStart}, ${l.nEnd}); ${wide} }`;
      }
      case 'mark_to_drop': {
        const mg = this.smf.mcast_grp;
        return `n[${this.smf.egress_spec}] = ${DROP_PORT};${mg >= 0 ? ` n[${mg}] = 0;` : ''}`;
      }
      case 'exit':
        return 's.exit = true; return;';
      case 'log_msg':
      case 'assume':
        return '';
      default:
        return null;
    }
  }

  #action(a: J): ActionRT {
    const params = ((a.runtime_data ?? []) as J[]).map((r) => ({
      name: String(r.name),
      width: Number(r.bitwidth),
    }));
    this.#paramWidths = params.map((x) => x.width);
    const prims = ((a.primitives ?? []) as J[]).map((p) => this.#prim(p));
    // An action whose every primitive has JS becomes one function: no call per primitive.
    const js = ((a.primitives ?? []) as J[]).map((p) => this.#primJs(p));
    this.#paramWidths = null;
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

  #selectKey(k: J, state: string): SelectKey {
    if (k.type === 'field') {
      const e = this.#fieldEval(k.value);
      const { layout, field } = this.#fieldRef(k.value);
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
      const st = this.stacks.get(k.value[0]);
      if (!st) throw new P4RuntimeError('P4_JSON', `unknown header stack ${k.value[0]}`);
      const ids = st.headers;
      const first = this.layouts[ids[0]!]!;
      const fid = first.fieldIds.get(k.value[1]);
      if (fid === undefined)
        throw new P4RuntimeError('P4_JSON', `stack ${k.value[0]} has no field ${k.value[1]}`);
      const oob = this.errors.get('StackOutOfBounds') ?? 3;
      const slots = ids.map((i) => this.layouts[i]!.slots[fid]!);
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
        js: null,
        big,
        bytes: Math.max(1, Math.ceil(first.widths[fid]! / 8)),
        scale: 2 ** (8 * Math.max(1, Math.ceil(first.widths[fid]! / 8))),
      };
    }
    if (k.type === 'lookahead') {
      const e = this.#expr(k);
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

  #parser(p: J): ParseState {
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
          vset: kind === VSET ? (this.vsets.get(t.value) ?? new Set()) : null,
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
    this.parserStates = [...states.values()];
    return init;
  }

  /** Extraction of one header: its fields read at fixed offsets into their slots. */
  #extractor(hid: number): (s: PacketState, extraBits: number) => void {
    const l = this.layouts[hid]!;
    const tooShort = this.errors.get('PacketTooShort') ?? 1;
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
    if (o.op === 'set') return storeJs(this.#slot(params[0].value), this.#expr(params[1]));
    if (o.op !== 'extract' || params[0]?.type !== 'regular') return null;
    const l = this.#header(params[0].value);
    if (l.varbitField >= 0 || l.bits % 8 !== 0) return null;
    const tooShort = this.errors.get('PacketTooShort') ?? 1;
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
    const tooShort = this.errors.get('PacketTooShort') ?? 1;
    switch (o.op as string) {
      case 'extract': {
        const p = params[0];
        if (p.type === 'regular') {
          const x = this.#extractor(this.#header(p.value).id);
          return (s) => x(s, 0);
        }
        if (p.type === 'stack') {
          const st = this.stacks.get(p.value);
          if (!st) throw new P4RuntimeError('P4_JSON', `unknown header stack ${p.value}`);
          const ids = st.headers;
          const xs = ids.map((i) => this.#extractor(i));
          const overflow = this.errors.get('StackOutOfBounds') ?? 3;
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
        const l = this.#header(params[0].value);
        const x = this.#extractor(l.id);
        const len = this.#index(this.#expr(params[1]));
        const headerTooShort = this.errors.get('HeaderTooShort') ?? 4;
        return (s) => {
          const bits = len(s, NO_ACTION_DATA);
          if (bits < 0 || bits > l.maxVarbit || bits % 8 !== 0) throw new ParserError(headerTooShort);
          x(s, bits);
        };
      }
      case 'set': {
        const target = this.#slot(params[0].value);
        const e = this.#expr(params[1]);
        const js = storeJs(target, e);
        if (js !== null) return jsFunction<void>(js) as (s: PacketState) => void;
        return storeInto(target, e) as (s: PacketState) => void;
      }
      case 'verify': {
        const t = truth(this.#expr(params[0]));
        const e = this.#index(this.#expr(params[1]));
        return (s) => {
          if (!t(s, NO_ACTION_DATA)) throw new ParserError(e(s, NO_ACTION_DATA));
        };
      }
      case 'advance': {
        const n = this.#index(this.#expr(params[0]));
        return (s) => {
          const bits = n(s, NO_ACTION_DATA);
          if (s.cursor * 8 + bits > s.pkt.length * 8) throw new ParserError(tooShort);
          s.cursor += bits >> 3;
        };
      }
      case 'primitive': {
        const prims = params.map((x) => this.#prim(x));
        return (s) => {
          for (const p of prims) p(s, NO_ACTION_DATA);
        };
      }
      default:
        throw new P4RuntimeError('P4_JSON', `unsupported parser op '${o.op}'`);
    }
  }

  #tableKey(k: J, table: string): TableKeyRT {
    const e0 = this.#fieldEval(k.target);
    const { layout, field } = this.#fieldRef(k.target);
    const width = field < 0 ? 1 : layout.widths[field]!;
    // Signed fields match by their bit pattern, as the control plane writes keys unsigned.
    let e = e0.lo < 0n ? binary('&', e0, constant(full(width))) : e0;
    if (k.mask) e = binary('&', e, constant(big(k.mask)));
    const match = k.match_type === 'valid' ? 'exact' : k.match_type;
    if (!['exact', 'lpm', 'ternary', 'range', 'optional'].includes(match)) {
      throw new P4RuntimeError('P4_JSON', `table ${table}: unsupported match type '${k.match_type}'`);
    }
    const f = e.num ? numFn(e) : e.f;
    return {
      name: String(k.name ?? k.target.join('.')),
      match,
      width,
      getN:
        e.num && width <= NUM_BITS
          ? e.js !== null
            ? // the key's whole expression as one function (jsFunction binds only what it reads)
              (jsFunction<number>(`return ${e.js};`) as (s: PacketState) => number)
            : (s) => (f as (s: PacketState, ad: ActionData) => number)(s, NO_ACTION_DATA)
          : null,
      getB: e.num
        ? (s) => BigInt((f as (s: PacketState, ad: ActionData) => number)(s, NO_ACTION_DATA))
        : (s) => (f as (s: PacketState, ad: ActionData) => bigint)(s, NO_ACTION_DATA),
      js: e.num && width <= NUM_BITS ? e.js : null,
    };
  }

  #pipeline(p: J): NodeRT | null {
    const nodes = new Map<string, NodeRT>();
    const blank = (name: string): NodeRT => ({
      name,
      table: null,
      test: null,
      trueNext: null,
      falseNext: null,
      nextByAction: [],
      hitMiss: false,
      hit: null,
      miss: null,
      meter: null,
      testJs: null,
    });
    for (const t of p.tables as J[]) nodes.set(t.name, blank(t.name));
    for (const c of (p.conditionals ?? []) as J[]) nodes.set(c.name, blank(c.name));
    const ref = (n: string | null): NodeRT | null => {
      if (n === null || n === undefined) return null;
      const x = nodes.get(n);
      if (!x) throw new P4RuntimeError('P4_JSON', `pipeline ${p.name}: unknown next node ${n}`);
      return x;
    };
    for (const t of p.tables as J[]) {
      const node = nodes.get(t.name)!;
      const actions = (t.action_ids as number[]).map((id) => {
        const a = this.#actions[id];
        if (!a) throw new P4RuntimeError('P4_JSON', `table ${t.name}: unknown action id ${id}`);
        return a;
      });
      const keys = (t.key as J[]).map((k: J) => this.#tableKey(k, t.name));
      if (t.type !== undefined && t.type !== 'simple')
        throw new P4RuntimeError('P4_JSON', `table ${t.name}: unsupported type '${t.type}'`);
      const de = t.default_entry;
      const defaultAction = de
        ? this.#actions[de.action_id]
        : (actions.find((a) => a.name === 'NoAction') ?? actions[0]);
      if (!defaultAction) throw new P4RuntimeError('P4_JSON', `table ${t.name}: no default action`);
      const table = new TableRT({
        name: t.name,
        keys,
        actions,
        size: Number(t.max_size ?? 1024),
        withCounters: t.with_counters === true,
        defaultAction,
        defaultArgs: ((de?.action_data ?? []) as string[]).map(big),
        defaultConst: de?.action_const === true,
      });
      for (const e of (t.entries ?? []) as J[]) {
        const key: KeyValue[] = (e.match_key as J[]).map((m: J, i: number) => {
          const kk = keys[i];
          switch (m.match_type) {
            case 'exact':
              return big(m.key);
            case 'lpm':
              return { value: big(m.key), prefixLength: Number(m.prefix_length) };
            case 'ternary':
              if (kk?.match === 'optional') return big(m.mask) === 0n ? null : big(m.key);
              return { value: big(m.key), mask: big(m.mask) };
            case 'range':
              return { low: big(m.start), high: big(m.end) };
            default:
              throw new P4RuntimeError(
                'P4_JSON',
                `table ${t.name}: unsupported entry match type '${m.match_type}'`,
              );
          }
        });
        const action = this.#actions[e.action_entry.action_id];
        if (!action) throw new P4RuntimeError('P4_JSON', `table ${t.name}: entry with unknown action id`);
        table.addEntry(
          {
            key,
            action: action.name,
            args: (e.action_entry.action_data as string[]).map(big),
            priority: Number(e.priority ?? 0),
          },
          true,
        );
      }
      // Entries in BMv2 JSON are the program's const entries: the table refuses runtime changes.
      table.constEntries = (t.entries ?? []).length > 0;
      this.tables.set(t.name, table);
      node.table = table;
      const nt = t.next_tables ?? {};
      if ('__HIT__' in nt || '__MISS__' in nt) {
        node.hitMiss = true;
        node.hit = ref(nt.__HIT__ ?? null);
        node.miss = ref(nt.__MISS__ ?? null);
      } else {
        node.nextByAction = this.#actions.map(() => null);
        for (const a of actions)
          node.nextByAction[a.id] = ref(a.name in nt ? nt[a.name] : (t.base_default_next ?? null));
      }
      if (t.direct_meters) {
        const m = this.externs.meters.get(t.direct_meters);
        const mj = ((this.#json.meter_arrays ?? []) as J[]).find((x) => x.name === t.direct_meters);
        if (!m || !mj?.result_target)
          throw new P4RuntimeError('P4_JSON', `table ${t.name}: unknown direct meter ${t.direct_meters}`);
        const target = this.#slot(mj.result_target);
        if (target.wide)
          throw new P4RuntimeError('P4_JSON', `meter ${m.name}: result field wider than 53 bits`);
        node.meter = { meter: m, target: target.slot };
      }
    }
    for (const c of (p.conditionals ?? []) as J[]) {
      const node = nodes.get(c.name)!;
      const test = this.#expr(c.expression);
      node.test = truthFn(test);
      node.testJs = test.num && test.js !== null ? test.js : null;
      node.trueNext = ref(c.true_next ?? null);
      node.falseNext = ref(c.false_next ?? null);
    }
    return ref(p.init_table ?? null);
  }
}
