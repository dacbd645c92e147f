/**
 * A BMv2 JSON program compiled for the behavioral switch: header layouts, actions, the parser's
 * states, the ingress and egress pipelines with their tables, checksums and the deparser's
 * emit order. Compiled once per switch — every field gets a fixed slot in the packet state
 * (layout.ts), expressions become closures specialised by value range that also carry their
 * JavaScript (expr.ts), actions and primitives are compiled by actions.ts, the parser's states
 * by parser.ts — so a packet walks precompiled structures and never interprets JSON. This
 * module owns the rest: field references, expressions, hash/checksum calculations, field
 * lists, table keys and the control graphs (which pipeline.ts and packet-paths.ts then turn
 * into generated functions).
 */

import { ActionCompiler, big } from './actions.js';
import { hashBytes, hashNum, orBits, orNum, readBits, readNum } from './bits.js';
import type { ChecksumRT } from './checksum.js';
import { compileCsum16, compilePacker, int, type PackedField } from './codegen.js';
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
  ternary,
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
import { type ParseState, ParserCompiler } from './parser.js';
import type { NodeRT } from './pipeline.js';
import {
  type ActionData,
  type ActionRT,
  type Eval,
  NO_ACTION_DATA,
  NUM_BITS,
  type PacketState,
} from './state.js';
import { type KeyValue, TableRT, type TableKeyRT } from './tables.js';

// biome-ignore lint/suspicious/noExplicitAny: BMv2 JSON is validated as it is compiled
type J = any;

const full = (w: number): bigint => (1n << BigInt(w)) - 1n;

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
  readonly parserStates: readonly ParseState[];
  readonly emitOrder: readonly number[];
  readonly verify: ChecksumRT[] = [];
  readonly update: ChecksumRT[] = [];
  readonly externs: Externs;
  readonly #json: J;
  readonly #actionCompiler: ActionCompiler;
  /** Widths of the parameters of the action being compiled (runtime_data refers to them). */
  #paramWidths: number[] | null = null;

  /**
   * `where.path` follows the compilation through the JSON (`actions[3]`, `pipelines[0].tables[2]`),
   * so that whatever goes wrong can name the part of the program it is in.
   */
  constructor(json: unknown, externs: Externs, where: { path: string } = { path: '' }) {
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
    where.path = 'headers';
    const layouts = headerLayouts(j);
    this.layouts = layouts.headers;
    this.#byName = layouts.byName;
    this.nCount = layouts.nCount;
    this.bCount = layouts.bCount;
    this.validInit = Uint8Array.from(this.layouts, (l) => (l.metadata ? 1 : 0));
    where.path = 'header_stacks';
    for (const st of (j.header_stacks ?? []) as J[]) {
      this.stacks.set(st.name, { headers: (st.header_ids as number[]).slice() });
    }
    for (const [name, code] of (j.errors ?? []) as [string, number][]) this.errors.set(name, code);
    this.smf = standardMetadataSlots(layouts);
    for (const v of (j.parse_vsets ?? []) as J[]) this.vsets.set(v.name, new Set());
    for (const [i, c] of ((j.calculations ?? []) as J[]).entries()) {
      where.path = `calculations[${i}]`;
      this.#calcs.set(c.name, this.#calculation(c));
    }
    for (const [i, f] of ((j.field_lists ?? []) as J[]).entries()) {
      where.path = `field_lists[${i}]`;
      this.fieldLists.set(Number(f.id), this.#fieldList(f));
    }
    for (const [i, f] of ((j.learn_lists ?? []) as J[]).entries()) {
      where.path = `learn_lists[${i}]`;
      this.learnLists.set(Number(f.id), this.#fieldList(f));
    }
    this.#actionCompiler = new ActionCompiler({
      expr: (e) => this.#expr(e),
      slot: (v) => this.#slot(v),
      header: (name) => this.#header(name),
      setParamWidths: (widths) => {
        this.#paramWidths = widths;
      },
      layouts: this.layouts,
      stacks: this.stacks,
      smf: this.smf,
      externs,
      errors: this.errors,
      calcs: this.#calcs,
      fieldLists: this.fieldLists,
      learnLists: this.learnLists,
    });
    for (const [i, a] of ((j.actions ?? []) as J[]).entries()) {
      where.path = `actions[${i}]`;
      this.#actions[a.id] = this.#actionCompiler.action(a);
    }
    where.path = 'parsers[0]';

    const parser = (j.parsers as J[] | undefined)?.[0];
    if (!parser) throw new P4RuntimeError('P4_JSON', 'the program has no parser');
    const parsed = new ParserCompiler({
      expr: (e) => this.#expr(e),
      fieldEval: (v) => this.#fieldEval(v),
      fieldRef: (v) => this.#fieldRef(v),
      slot: (v) => this.#slot(v),
      header: (name) => this.#header(name),
      prim: (p) => this.#actionCompiler.prim(p),
      layouts: this.layouts,
      stacks: this.stacks,
      errors: this.errors,
      vsets: this.vsets,
    }).compile(parser);
    this.parserInit = parsed.init;
    this.parserStates = parsed.states;
    where.path = 'deparsers[0]';
    const deparser = (j.deparsers as J[] | undefined)?.[0];
    this.emitOrder = ((deparser?.order ?? []) as string[]).map((n) => this.#header(n).id);
    const pipes = j.pipelines as J[];
    const ingress = pipes.find((p) => p.name === 'ingress');
    const egress = pipes.find((p) => p.name === 'egress');
    if (!ingress || !egress)
      throw new P4RuntimeError('P4_JSON', 'v1model programs have ingress and egress pipelines');
    where.path = `pipelines[${pipes.indexOf(ingress)}]`;
    this.ingress = this.#pipeline(ingress, where);
    where.path = `pipelines[${pipes.indexOf(egress)}]`;
    this.egress = this.#pipeline(egress, where);
    for (const [i, c] of ((j.checksums ?? []) as J[]).entries()) {
      where.path = `checksums[${i}]`;
      const calc = this.#calcs.get(c.calculation);
      if (!calc)
        throw new P4RuntimeError('P4_JSON', `checksum ${c.name}: unknown calculation ${c.calculation}`);
      const target = this.#slot(c.target);
      const cond = c.if_cond ? this.#expr(c.if_cond) : null;
      const entry: ChecksumRT = {
        target,
        calc,
        cond: cond !== null ? truthFn(cond) : null,
        condJs: cond?.num && cond.js !== null ? cond.js : null,
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

  #pipeline(p: J, where: { path: string }): NodeRT | null {
    const pipeline = where.path;
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
    for (const [i, t] of (p.tables as J[]).entries()) {
      where.path = `${pipeline}.tables[${i}]`;
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
    for (const [i, c] of ((p.conditionals ?? []) as J[]).entries()) {
      where.path = `${pipeline}.conditionals[${i}]`;
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
