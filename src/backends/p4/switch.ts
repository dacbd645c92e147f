/**
 * The behavioral switch: executes BMv2 JSON with v1model (simple_switch) semantics.
 *
 * The JSON is compiled once, in the constructor, into arrays and closures — field accesses
 * become (header index, field index) pairs, expressions and primitives become functions —
 * so a packet walks precompiled structures and never interprets JSON.
 *
 * Per packet: parser (errors set standard_metadata.parser_error and go on to ingress, as
 * v1model does) → verify checksums → ingress → drop when egress_spec is 511 (mark_to_drop),
 * else replicate to a multicast group or go to egress_spec → egress → drop on 511 →
 * update checksums → deparser (valid headers in order, then the unparsed payload).
 */

import { GuestError } from '../../runtime/errors.js';
import { hashBytes, orBits, pack, readBits } from './bits.js';
import { P4RuntimeError } from './errors.js';
import type { ActionRT, Eval, Hdr, PacketState, Prim } from './state.js';
import { type DirectCounterValue, type EntrySpec, type KeyValue, TableRT } from './tables.js';

export const DROP_PORT = 511;

// biome-ignore lint/suspicious/noExplicitAny: BMv2 JSON is validated as it is compiled
type J = any;

export interface SwitchOptions {
  /** Clock for meters, in nanoseconds; injectable for determinism (default: a frozen clock at 0). */
  readonly clockNs?: () => bigint;
  /** Seed of `random` (v1model's random extern); same seed, same sequence. */
  readonly seed?: number;
}

export interface SwitchOutput {
  readonly port: number;
  readonly bytes: Uint8Array;
}

export interface MeterConfig {
  /** Committed and peak rates in units (packets or bytes) per second, bursts in units. */
  readonly cir: number;
  readonly cburst: number;
  readonly pir: number;
  readonly pburst: number;
}

interface HeaderLayout {
  readonly name: string;
  readonly id: number;
  readonly metadata: boolean;
  readonly widths: readonly number[];
  readonly signed: readonly boolean[];
  readonly fieldIds: ReadonlyMap<string, number>;
  readonly bits: number;
  readonly varbitField: number;
}

interface Counter {
  readonly name: string;
  readonly packets: number[];
  readonly bytes: number[];
}

interface Register {
  readonly name: string;
  readonly width: number;
  readonly values: bigint[];
}

interface Meter {
  readonly name: string;
  readonly byBytes: boolean;
  readonly configs: (MeterConfig | undefined)[];
  readonly state: { tc: number; tp: number; last: bigint }[];
}

interface NodeRT {
  readonly name: string;
  table: TableRT | null;
  test: Eval | null;
  trueNext: NodeRT | null;
  falseNext: NodeRT | null;
  /** By action index for tables; hit/miss for hit-miss tables. */
  nextByAction: (NodeRT | null)[];
  hitMiss: boolean;
  hit: NodeRT | null;
  miss: NodeRT | null;
  meter: { meter: Meter; target: [number, number] } | null;
}

interface Transition {
  readonly kind: 'value' | 'default' | 'vset';
  readonly value: bigint;
  readonly mask: bigint;
  readonly vset: Set<bigint> | null;
  next: ParseState | null;
}

interface ParseState {
  readonly name: string;
  readonly ops: ((s: PacketState) => void)[];
  readonly keys: { readonly get: (s: PacketState) => bigint; readonly bytes: number }[];
  readonly transitions: Transition[];
}

interface ChecksumRT {
  readonly target: [number, number];
  readonly calc: (s: PacketState) => bigint;
  readonly cond: Eval | null;
}

class ParserError extends Error {
  constructor(readonly code: number) {
    super('parser error');
  }
}

const mask = (w: number): bigint => (1n << BigInt(w)) - 1n;

function wrapSigned(v: bigint, w: number): bigint {
  const m = v & mask(w);
  return m >> BigInt(w - 1) === 1n ? m - (1n << BigInt(w)) : m;
}

function big(v: string | number | boolean): bigint {
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (typeof v === 'number') return BigInt(v);
  return v.startsWith('-') ? -BigInt(v.slice(1)) : BigInt(v);
}

export class BehavioralSwitch {
  readonly program: string;
  readonly #layouts: HeaderLayout[] = [];
  readonly #byName = new Map<string, HeaderLayout>();
  readonly #stacks = new Map<string, { headers: number[] }>();
  readonly #errors = new Map<string, number>();
  readonly #actions: ActionRT[] = [];
  readonly #tables = new Map<string, TableRT>();
  readonly #counters = new Map<string, Counter>();
  readonly #registers = new Map<string, Register>();
  readonly #meters = new Map<string, Meter>();
  readonly #calcs = new Map<string, (s: PacketState) => bigint>();
  readonly #vsets = new Map<string, Set<bigint>>();
  readonly #mcast = new Map<number, { port: number; rid: number }[]>();
  readonly #ingress: NodeRT | null;
  readonly #egress: NodeRT | null;
  readonly #parserInit: ParseState;
  readonly #emitOrder: number[];
  readonly #verify: ChecksumRT[] = [];
  readonly #update: ChecksumRT[] = [];
  readonly #sm: HeaderLayout;
  readonly #smf: {
    ingress_port: number;
    egress_spec: number;
    egress_port: number;
    packet_length: number;
    parser_error: number;
    checksum_error: number;
    mcast_grp: number;
    instance_type: number;
    egress_rid: number;
  };
  readonly #clock: () => bigint;
  #rng: number;
  readonly #json: J;

  constructor(json: unknown, options: SwitchOptions = {}) {
    const j = json as J;
    this.#json = j;
    if (!j || !Array.isArray(j.header_types) || !Array.isArray(j.headers) || !Array.isArray(j.pipelines)) {
      throw new P4RuntimeError(
        'P4_JSON',
        'not a BMv2 JSON program: header_types, headers and pipelines are required',
      );
    }
    this.program = String(j.program ?? 'program');
    this.#clock = options.clockNs ?? (() => 0n);
    this.#rng = (options.seed ?? 0) >>> 0 || 0x9e3779b9;
    const types = new Map<string, J>(j.header_types.map((t: J) => [t.name, t]));
    for (const h of j.headers as J[]) {
      const t = types.get(h.header_type);
      if (!t) throw new P4RuntimeError('P4_JSON', `header ${h.name}: unknown header_type ${h.header_type}`);
      const widths: number[] = [];
      const signed: boolean[] = [];
      const fieldIds = new Map<string, number>();
      let varbitField = -1;
      (t.fields as J[]).forEach((f: J, i: number) => {
        fieldIds.set(f[0], i);
        if (f[1] === '*') {
          varbitField = i;
          widths.push(0);
        } else widths.push(Number(f[1]));
        signed.push(f[2] === true);
      });
      const layout: HeaderLayout = {
        name: h.name,
        id: this.#layouts.length,
        metadata: h.metadata === true,
        widths,
        signed,
        fieldIds,
        bits: widths.reduce((a, b) => a + b, 0),
        varbitField,
      };
      if (varbitField >= 0)
        (layout as { maxVarbit?: number }).maxVarbit = Number(t.max_length ?? 0) * 8 - layout.bits;
      this.#layouts.push(layout);
      this.#byName.set(h.name, layout);
    }
    for (const st of (j.header_stacks ?? []) as J[]) {
      this.#stacks.set(st.name, { headers: (st.header_ids as number[]).slice() });
    }
    for (const [name, code] of (j.errors ?? []) as [string, number][]) this.#errors.set(name, code);
    const sm = this.#byName.get('standard_metadata');
    if (!sm)
      throw new P4RuntimeError(
        'P4_JSON',
        'the program has no standard_metadata header (not a v1model program)',
      );
    this.#sm = sm;
    const smField = (n: string): number => sm.fieldIds.get(n) ?? -1;
    this.#smf = {
      ingress_port: smField('ingress_port'),
      egress_spec: smField('egress_spec'),
      egress_port: smField('egress_port'),
      packet_length: smField('packet_length'),
      parser_error: smField('parser_error'),
      checksum_error: smField('checksum_error'),
      mcast_grp: smField('mcast_grp'),
      instance_type: smField('instance_type'),
      egress_rid: smField('egress_rid'),
    };
    for (const c of (j.counter_arrays ?? []) as J[]) {
      const n = c.is_direct ? 0 : Number(c.size);
      this.#counters.set(c.name, {
        name: c.name,
        packets: new Array(n).fill(0),
        bytes: new Array(n).fill(0),
      });
    }
    for (const r of (j.register_arrays ?? []) as J[]) {
      this.#registers.set(r.name, {
        name: r.name,
        width: Number(r.bitwidth),
        values: new Array(Number(r.size)).fill(0n),
      });
    }
    for (const m of (j.meter_arrays ?? []) as J[]) {
      const n = m.is_direct ? 0 : Number(m.size);
      this.#meters.set(m.name, {
        name: m.name,
        byBytes: m.type === 'bytes',
        configs: new Array(n).fill(undefined),
        state: [],
      });
    }
    for (const v of (j.parse_vsets ?? []) as J[]) this.#vsets.set(v.name, new Set());
    for (const c of (j.calculations ?? []) as J[]) this.#calcs.set(c.name, this.#calculation(c));
    for (const a of (j.actions ?? []) as J[]) this.#actions[a.id] = this.#action(a);

    const parser = (j.parsers as J[] | undefined)?.[0];
    if (!parser) throw new P4RuntimeError('P4_JSON', 'the program has no parser');
    this.#parserInit = this.#parser(parser);
    const deparser = (j.deparsers as J[] | undefined)?.[0];
    this.#emitOrder = ((deparser?.order ?? []) as string[]).map((n) => this.#header(n).id);
    const pipes = j.pipelines as J[];
    const ingress = pipes.find((p) => p.name === 'ingress');
    const egress = pipes.find((p) => p.name === 'egress');
    if (!ingress || !egress)
      throw new P4RuntimeError('P4_JSON', 'v1model programs have ingress and egress pipelines');
    this.#ingress = this.#pipeline(ingress);
    this.#egress = this.#pipeline(egress);
    for (const c of (j.checksums ?? []) as J[]) {
      const calc = this.#calcs.get(c.calculation);
      if (!calc)
        throw new P4RuntimeError('P4_JSON', `checksum ${c.name}: unknown calculation ${c.calculation}`);
      const entry = {
        target: this.#fieldRef(c.target),
        calc,
        cond: c.if_cond ? this.#expr(c.if_cond) : null,
      };
      if (c.verify) this.#verify.push(entry);
      if (c.update) this.#update.push(entry);
    }
  }

  // ------------------------------------------------------------ compilation of the JSON

  #header(name: string): HeaderLayout {
    const h = this.#byName.get(name);
    if (!h) throw new P4RuntimeError('P4_JSON', `unknown header instance '${name}'`);
    return h;
  }

  #fieldRef(v: J): [number, number] {
    const h = this.#header(v[0]);
    if (v[1] === '$valid$') return [h.id, -1];
    const f = h.fieldIds.get(v[1]);
    if (f === undefined) throw new P4RuntimeError('P4_JSON', `header ${v[0]} has no field ${v[1]}`);
    return [h.id, f];
  }

  #getter(v: J): (s: PacketState) => bigint {
    const [hid, fid] = this.#fieldRef(v);
    if (fid < 0) return (s) => (s.h[hid]!.valid ? 1n : 0n);
    return (s) => s.h[hid]!.f[fid]!;
  }

  #setter(v: J): (s: PacketState, x: bigint) => void {
    const [hid, fid] = this.#fieldRef(v);
    if (fid < 0) throw new P4RuntimeError('P4_JSON', 'cannot assign $valid$');
    const layout = this.#layouts[hid]!;
    const w = layout.widths[fid]!;
    const m = mask(w);
    if (layout.signed[fid]) {
      return (s, x) => {
        s.h[hid]!.f[fid] = wrapSigned(x, w);
      };
    }
    return (s, x) => {
      s.h[hid]!.f[fid] = x & m;
    };
  }

  #expr(e: J): Eval {
    switch (e?.type) {
      case 'field': {
        const g = this.#getter(e.value);
        return (s) => g(s);
      }
      case 'hexstr': {
        const c = big(e.value);
        return () => c;
      }
      case 'bool': {
        const c = e.value ? 1n : 0n;
        return () => c;
      }
      case 'runtime_data': {
        const i = Number(e.value);
        return (_s, ad) => ad[i]!;
      }
      case 'lookahead': {
        const [off, w] = e.value as [number, number];
        return (s) => {
          const bit = s.cursor * 8 + off;
          if (bit + w > s.pkt.length * 8) throw new ParserError(this.#errors.get('PacketTooShort') ?? 1);
          return readBits(s.pkt, bit, w);
        };
      }
      case 'expression':
        return this.#op(e.value);
      default:
        throw new P4RuntimeError('P4_JSON', `unsupported expression type '${e?.type}'`);
    }
  }

  #op(v: J): Eval {
    const o = v.op as string;
    if (o === 'valid') {
      const h = this.#header(v.right.value).id;
      return (s) => (s.h[h]!.valid ? 1n : 0n);
    }
    if (o === '?') {
      const c = this.#expr(v.cond);
      const a = this.#expr(v.left);
      const b = this.#expr(v.right);
      return (s, ad) => (c(s, ad) ? a(s, ad) : b(s, ad));
    }
    const r = this.#expr(v.right);
    if (v.left === null) {
      switch (o) {
        case 'not':
          return (s, ad) => (r(s, ad) === 0n ? 1n : 0n);
        case '~':
          return (s, ad) => ~r(s, ad);
        case 'd2b':
          return (s, ad) => (r(s, ad) !== 0n ? 1n : 0n);
        case 'b2d':
          return r;
        case '-':
          return (s, ad) => -r(s, ad);
        default:
          throw new P4RuntimeError('P4_JSON', `unsupported unary operator '${o}'`);
      }
    }
    const l = this.#expr(v.left);
    switch (o) {
      case '+':
        return (s, ad) => l(s, ad) + r(s, ad);
      case '-':
        return (s, ad) => l(s, ad) - r(s, ad);
      case '*':
        return (s, ad) => l(s, ad) * r(s, ad);
      case '/':
        return (s, ad) => {
          const d = r(s, ad);
          return d === 0n ? 0n : l(s, ad) / d;
        };
      case '%':
        return (s, ad) => {
          const d = r(s, ad);
          return d === 0n ? 0n : l(s, ad) % d;
        };
      case '<<':
        return (s, ad) => l(s, ad) << r(s, ad);
      case '>>':
        return (s, ad) => l(s, ad) >> r(s, ad);
      case '&':
        return (s, ad) => l(s, ad) & r(s, ad);
      case '|':
        return (s, ad) => l(s, ad) | r(s, ad);
      case '^':
        return (s, ad) => l(s, ad) ^ r(s, ad);
      case '==':
        return (s, ad) => (l(s, ad) === r(s, ad) ? 1n : 0n);
      case '!=':
        return (s, ad) => (l(s, ad) !== r(s, ad) ? 1n : 0n);
      case '<':
        return (s, ad) => (l(s, ad) < r(s, ad) ? 1n : 0n);
      case '<=':
        return (s, ad) => (l(s, ad) <= r(s, ad) ? 1n : 0n);
      case '>':
        return (s, ad) => (l(s, ad) > r(s, ad) ? 1n : 0n);
      case '>=':
        return (s, ad) => (l(s, ad) >= r(s, ad) ? 1n : 0n);
      case 'and':
        return (s, ad) => (l(s, ad) !== 0n && r(s, ad) !== 0n ? 1n : 0n);
      case 'or':
        return (s, ad) => (l(s, ad) !== 0n || r(s, ad) !== 0n ? 1n : 0n);
      case 'two_comp_mod':
        return (s, ad) => wrapSigned(l(s, ad), Number(r(s, ad)));
      case 'usat_cast':
        return (s, ad) => {
          const x = l(s, ad);
          const hi = mask(Number(r(s, ad)));
          return x < 0n ? 0n : x > hi ? hi : x;
        };
      case 'sat_cast':
        return (s, ad) => {
          const x = l(s, ad);
          const w = Number(r(s, ad));
          const hi = mask(w - 1);
          const lo = -(1n << BigInt(w - 1));
          return x < lo ? lo : x > hi ? hi : x;
        };
      default:
        throw new P4RuntimeError('P4_JSON', `unsupported operator '${o}'`);
    }
  }

  #calculation(c: J): (s: PacketState) => bigint {
    const parts = (c.input as J[]).map((i: J): ((s: PacketState) => [bigint, number]) | 'payload' => {
      if (i.type === 'field') {
        const [hid, fid] = this.#fieldRef(i.value);
        const w = this.#layouts[hid]!.widths[fid]!;
        return (s) => [s.h[hid]!.f[fid]!, w];
      }
      if (i.type === 'hexstr') {
        const v = big(i.value);
        const w = Number(i.bitwidth);
        return () => [v, w];
      }
      if (i.type === 'expression') {
        const e = this.#expr(i.value);
        const w = Number(i.bitwidth);
        return (s) => [e(s, []), w];
      }
      if (i.type === 'payload') return 'payload';
      throw new P4RuntimeError('P4_JSON', `calculation ${c.name}: unsupported input type '${i.type}'`);
    });
    const algo = String(c.algo);
    if (!['csum16', 'crc16', 'crc32', 'identity', 'xor16'].includes(algo)) {
      throw new P4RuntimeError('P4_JSON', `calculation ${c.name}: unsupported algorithm '${algo}'`);
    }
    return (s) => {
      const values: [bigint, number][] = [];
      let payload = false;
      for (const p of parts) {
        if (p === 'payload') payload = true;
        else values.push(p(s));
      }
      let bytes = pack(values);
      if (payload) {
        const rest = s.pkt.subarray(s.cursor);
        const all = new Uint8Array(bytes.length + rest.length);
        all.set(bytes);
        all.set(rest, bytes.length);
        bytes = all;
      }
      return hashBytes(algo, bytes);
    };
  }

  #prim(p: J): Prim {
    const params = (p.parameters ?? []) as J[];
    const P = (i: number): J => params[i];
    switch (p.op as string) {
      case 'assign':
      case 'modify_field': {
        const set = this.#setter(P(0).value);
        const v = this.#expr(P(1));
        return (s, ad) => void set(s, v(s, ad));
      }
      case 'assign_header': {
        const t = this.#header(P(0).value).id;
        const src = this.#header(P(1).value).id;
        return (s) => {
          const a = s.h[t]!;
          const b = s.h[src]!;
          a.valid = b.valid;
          a.vb = b.vb;
          for (let i = 0; i < b.f.length; i++) a.f[i] = b.f[i]!;
          return undefined;
        };
      }
      case 'add_header': {
        const h = this.#header(P(0).value).id;
        return (s) => {
          const x = s.h[h]!;
          if (!x.valid) {
            x.valid = true;
            x.f.fill(0n);
          }
          return undefined;
        };
      }
      case 'remove_header': {
        const h = this.#header(P(0).value).id;
        return (s) => {
          s.h[h]!.valid = false;
          return undefined;
        };
      }
      case 'mark_to_drop': {
        const sm = this.#sm.id;
        const es = this.#smf.egress_spec;
        const mg = this.#smf.mcast_grp;
        return (s) => {
          s.h[sm]!.f[es] = BigInt(DROP_PORT);
          if (mg >= 0) s.h[sm]!.f[mg] = 0n;
          return undefined;
        };
      }
      case 'exit':
        return (s) => {
          s.exit = true;
          return -1;
        };
      case 'count': {
        const c = this.#counters.get(P(0).value);
        if (!c) throw new P4RuntimeError('P4_JSON', `unknown counter ${P(0).value}`);
        const idx = this.#expr(P(1));
        return (s, ad) => {
          const i = Number(idx(s, ad));
          if (i >= 0 && i < c.packets.length) {
            c.packets[i]!++;
            c.bytes[i]! += s.pkt.length;
          }
          return undefined;
        };
      }
      case 'register_read': {
        const set = this.#setter(P(0).value);
        const r = this.#registers.get(P(1).value);
        if (!r) throw new P4RuntimeError('P4_JSON', `unknown register ${P(1).value}`);
        const idx = this.#expr(P(2));
        return (s, ad) => {
          const i = Number(idx(s, ad));
          set(s, i >= 0 && i < r.values.length ? r.values[i]! : 0n);
          return undefined;
        };
      }
      case 'register_write': {
        const r = this.#registers.get(P(0).value);
        if (!r) throw new P4RuntimeError('P4_JSON', `unknown register ${P(0).value}`);
        const idx = this.#expr(P(1));
        const v = this.#expr(P(2));
        const m = mask(r.width);
        return (s, ad) => {
          const i = Number(idx(s, ad));
          if (i >= 0 && i < r.values.length) r.values[i] = v(s, ad) & m;
          return undefined;
        };
      }
      case 'execute_meter': {
        const m = this.#meters.get(P(0).value);
        if (!m) throw new P4RuntimeError('P4_JSON', `unknown meter ${P(0).value}`);
        const idx = this.#expr(P(1));
        const set = this.#setter(P(2).value);
        return (s, ad) => {
          set(s, BigInt(this.#meterColor(m, Number(idx(s, ad)), s.pkt.length)));
          return undefined;
        };
      }
      case 'modify_field_with_hash_based_offset': {
        const set = this.#setter(P(0).value);
        const base = this.#expr(P(1));
        const calc = this.#calcs.get(P(2).value);
        if (!calc) throw new P4RuntimeError('P4_JSON', `unknown calculation ${P(2).value}`);
        const max = this.#expr(P(3));
        return (s, ad) => {
          const m = max(s, ad);
          const h = calc(s);
          set(s, base(s, ad) + (m === 0n ? h : h % m));
          return undefined;
        };
      }
      case 'modify_field_rng_uniform': {
        const set = this.#setter(P(0).value);
        const lo = this.#expr(P(1));
        const hi = this.#expr(P(2));
        return (s, ad) => {
          const a = lo(s, ad);
          const b = hi(s, ad);
          const span = b - a + 1n;
          set(s, span <= 0n ? a : a + (BigInt(this.#random()) % span));
          return undefined;
        };
      }
      case 'push':
      case 'pop': {
        const st = this.#stacks.get(P(0).value);
        if (!st) throw new P4RuntimeError('P4_JSON', `unknown header stack ${P(0).value}`);
        const n = Number(big(P(1).value));
        const ids = st.headers;
        const push = p.op === 'push';
        return (s) => {
          const hs = ids.map((i) => s.h[i]!);
          const snapshot = hs.map((h) => ({ valid: h.valid, f: h.f.slice(), vb: h.vb }));
          hs.forEach((h, i) => {
            const from = push ? i - n : i + n;
            const src = snapshot[from];
            h.valid = src ? src.valid : false;
            h.vb = src ? src.vb : 0;
            if (src) for (let k = 0; k < h.f.length; k++) h.f[k] = src.f[k]!;
          });
          return undefined;
        };
      }
      case 'log_msg':
      case 'assume':
        return () => undefined;
      case 'assert': {
        const t = this.#expr(P(0));
        return (s, ad) => {
          if (t(s, ad) === 0n) throw new GuestError('P4_ASSERT', 'assert() failed in the P4 program');
          return undefined;
        };
      }
      case '_jump': {
        const to = Number(big(P(0).value));
        return () => to;
      }
      case '_jump_if_zero': {
        const t = this.#expr(P(0));
        const to = Number(big(P(1).value));
        return (s, ad) => (t(s, ad) === 0n ? to : undefined);
      }
      default:
        throw new P4RuntimeError('P4_JSON', `unsupported primitive '${p.op}'`);
    }
  }

  #action(a: J): ActionRT {
    const prims = ((a.primitives ?? []) as J[]).map((p) => this.#prim(p));
    const n = prims.length;
    const run =
      n === 0
        ? () => {}
        : n === 1
          ? (s: PacketState, ad: readonly bigint[]) => void prims[0]!(s, ad)
          : (s: PacketState, ad: readonly bigint[]) => {
              let pc = 0;
              while (pc < n) {
                const r = prims[pc]!(s, ad);
                if (r === undefined) pc++;
                else if (r < 0) return;
                else pc = r;
              }
            };
    return {
      name: a.name,
      id: a.id,
      params: ((a.runtime_data ?? []) as J[]).map((r) => ({ name: r.name, width: Number(r.bitwidth) })),
      run,
    };
  }

  #parser(p: J): ParseState {
    const states = new Map<string, ParseState>();
    const pending: [Transition, string | null][] = [];
    for (const st of p.parse_states as J[]) {
      const ops = (st.parser_ops as J[]).map((o) => this.#parserOp(o));
      const keys = (st.transition_key as J[]).map((k: J) => {
        if (k.type === 'field') {
          const [hid, fid] = this.#fieldRef(k.value);
          const w = fid < 0 ? 1 : this.#layouts[hid]!.widths[fid]!;
          return { get: this.#getter(k.value), bytes: Math.max(1, Math.ceil(w / 8)) };
        }
        if (k.type === 'stack_field') {
          const st = this.#stacks.get(k.value[0]);
          if (!st) throw new P4RuntimeError('P4_JSON', `unknown header stack ${k.value[0]}`);
          const ids = st.headers;
          const first = this.#layouts[ids[0]!]!;
          const fid = first.fieldIds.get(k.value[1]);
          if (fid === undefined)
            throw new P4RuntimeError('P4_JSON', `stack ${k.value[0]} has no field ${k.value[1]}`);
          const oob = this.#errors.get('StackOutOfBounds') ?? 3;
          return {
            get: (s: PacketState) => {
              let last = -1;
              for (let i = 0; i < ids.length; i++) if (s.h[ids[i]!]!.valid) last = i;
              if (last < 0) throw new ParserError(oob);
              return s.h[ids[last]!]!.f[fid]!;
            },
            bytes: Math.max(1, Math.ceil(first.widths[fid]! / 8)),
          };
        }
        if (k.type === 'lookahead') {
          const e = this.#expr(k);
          return { get: (s: PacketState) => e(s, []), bytes: Math.max(1, Math.ceil(Number(k.value[1]) / 8)) };
        }
        throw new P4RuntimeError('P4_JSON', `state ${st.name}: unsupported transition key '${k.type}'`);
      });
      const transitions = (st.transitions as J[]).map((t: J) => {
        const kind: Transition['kind'] =
          t.type === 'default' ? 'default' : t.type === 'parse_vset' ? 'vset' : 'value';
        if (t.type !== 'default' && t.type !== 'hexstr' && t.type !== 'parse_vset') {
          throw new P4RuntimeError('P4_JSON', `state ${st.name}: unsupported transition type '${t.type}'`);
        }
        const tr: Transition = {
          kind,
          value: kind === 'value' ? big(t.value) : 0n,
          mask: kind === 'value' && t.mask !== null && t.mask !== undefined ? big(t.mask) : -1n,
          vset: kind === 'vset' ? (this.#vsets.get(t.value) ?? null) : null,
          next: null,
        };
        if (kind === 'value' && tr.mask !== -1n) (tr as { value: bigint }).value = tr.value & tr.mask;
        pending.push([tr, t.next_state ?? null]);
        return tr;
      });
      states.set(st.name, { name: st.name, ops, keys, transitions });
    }
    for (const [t, n] of pending) {
      if (n === null) continue;
      const target = states.get(n);
      if (!target) throw new P4RuntimeError('P4_JSON', `transition to unknown parse state ${n}`);
      t.next = target;
    }
    const init = states.get(p.init_state);
    if (!init) throw new P4RuntimeError('P4_JSON', `unknown init_state ${p.init_state}`);
    return init;
  }

  #parserOp(o: J): (s: PacketState) => void {
    const params = (o.parameters ?? []) as J[];
    const tooShort = this.#errors.get('PacketTooShort') ?? 1;
    const extractInto = (s: PacketState, hid: number, extraBits: number): void => {
      const l = this.#layouts[hid]!;
      const totalBits = l.bits + extraBits;
      if (s.cursor * 8 + totalBits > s.pkt.length * 8) throw new ParserError(tooShort);
      const h = s.h[hid]!;
      let bit = s.cursor * 8;
      for (let i = 0; i < l.widths.length; i++) {
        const w = i === l.varbitField ? extraBits : l.widths[i]!;
        const v = readBits(s.pkt, bit, w);
        h.f[i] = l.signed[i] ? wrapSigned(v, w) : v;
        bit += w;
      }
      h.valid = true;
      h.vb = extraBits;
      s.cursor += totalBits >> 3;
    };
    switch (o.op as string) {
      case 'extract': {
        const p = params[0];
        if (p.type === 'regular') {
          const hid = this.#header(p.value).id;
          return (s) => extractInto(s, hid, 0);
        }
        if (p.type === 'stack') {
          const st = this.#stacks.get(p.value);
          if (!st) throw new P4RuntimeError('P4_JSON', `unknown header stack ${p.value}`);
          const ids = st.headers;
          const overflow = this.#errors.get('StackOutOfBounds') ?? 3;
          return (s) => {
            const next = ids.findIndex((i) => !s.h[i]!.valid);
            if (next < 0) throw new ParserError(overflow);
            extractInto(s, ids[next]!, 0);
          };
        }
        throw new P4RuntimeError('P4_JSON', `unsupported extract parameter '${p.type}'`);
      }
      case 'extract_VL': {
        const hid = this.#header(params[0].value).id;
        const len = this.#expr(params[1]);
        const l = this.#layouts[hid]! as HeaderLayout & { maxVarbit?: number };
        const headerTooShort = this.#errors.get('HeaderTooShort') ?? 4;
        return (s) => {
          const bits = Number(len(s, []));
          if (bits < 0 || bits > (l.maxVarbit ?? 0) || bits % 8 !== 0) throw new ParserError(headerTooShort);
          extractInto(s, hid, bits);
        };
      }
      case 'set': {
        const set = this.#setter(params[0].value);
        const v = this.#expr(params[1]);
        return (s) => set(s, v(s, []));
      }
      case 'verify': {
        const t = this.#expr(params[0]);
        const e = this.#expr(params[1]);
        return (s) => {
          if (t(s, []) === 0n) throw new ParserError(Number(e(s, [])));
        };
      }
      case 'advance': {
        const n = this.#expr(params[0]);
        return (s) => {
          const bits = Number(n(s, []));
          if (s.cursor * 8 + bits > s.pkt.length * 8) throw new ParserError(tooShort);
          s.cursor += bits >> 3;
        };
      }
      case 'primitive': {
        const prims = params.map((x) => this.#prim(x));
        return (s) => {
          for (const p of prims) p(s, []);
        };
      }
      default:
        throw new P4RuntimeError('P4_JSON', `unsupported parser op '${o.op}'`);
    }
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
      const keys = (t.key as J[]).map((k: J) => {
        const [hid, fid] = this.#fieldRef(k.target);
        const width = fid < 0 ? 1 : this.#layouts[hid]!.widths[fid]!;
        let get = this.#getter(k.target);
        if (k.mask) {
          const m = big(k.mask);
          const g = get;
          get = (s) => g(s) & m;
        }
        const match = k.match_type === 'valid' ? 'exact' : k.match_type;
        if (!['exact', 'lpm', 'ternary', 'range', 'optional'].includes(match)) {
          throw new P4RuntimeError('P4_JSON', `table ${t.name}: unsupported match type '${k.match_type}'`);
        }
        return { name: String(k.name ?? k.target.join('.')), match, width, get };
      });
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
        defaultData: ((de?.action_data ?? []) as string[]).map(big),
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
      this.#tables.set(t.name, table);
      node.table = table;
      const nt = t.next_tables ?? {};
      if ('__HIT__' in nt || '__MISS__' in nt) {
        node.hitMiss = true;
        node.hit = ref(nt.__HIT__ ?? null);
        node.miss = ref(nt.__MISS__ ?? null);
      } else {
        node.nextByAction = actions.map((a) =>
          ref(a.name in nt ? nt[a.name] : (t.base_default_next ?? null)),
        );
      }
      if (t.direct_meters) {
        const m = this.#meters.get(t.direct_meters);
        const mj = ((this.#json.meter_arrays ?? []) as J[]).find((x) => x.name === t.direct_meters);
        if (!m || !mj?.result_target)
          throw new P4RuntimeError('P4_JSON', `table ${t.name}: unknown direct meter ${t.direct_meters}`);
        node.meter = { meter: m, target: this.#fieldRef(mj.result_target) };
      }
    }
    for (const c of (p.conditionals ?? []) as J[]) {
      const node = nodes.get(c.name)!;
      node.test = this.#expr(c.expression);
      node.trueNext = ref(c.true_next ?? null);
      node.falseNext = ref(c.false_next ?? null);
    }
    return ref(p.init_table ?? null);
  }

  // ------------------------------------------------------------ data plane

  /** One state reused packet after packet: processing is synchronous and nothing keeps it. */
  #state: PacketState | null = null;

  #fresh(pkt: Uint8Array): PacketState {
    let st = this.#state;
    if (st === null) {
      const h: Hdr[] = this.#layouts.map((l) => ({
        valid: l.metadata,
        f: new Array<bigint>(l.widths.length).fill(0n),
        vb: 0,
      }));
      st = { h, pkt, cursor: 0, exit: false };
      this.#state = st;
    }
    const layouts = this.#layouts;
    for (let i = 0; i < layouts.length; i++) {
      const x = st.h[i]!;
      x.valid = layouts[i]!.metadata;
      x.vb = 0;
      x.f.fill(0n);
    }
    (st as { pkt: Uint8Array }).pkt = pkt;
    st.cursor = 0;
    st.exit = false;
    return st;
  }

  #clone(s: PacketState): PacketState {
    return {
      h: s.h.map((x) => ({ valid: x.valid, f: x.f.slice(), vb: x.vb })),
      pkt: s.pkt,
      cursor: s.cursor,
      exit: false,
    };
  }

  #runPipeline(start: NodeRT | null, s: PacketState): void {
    let n = start;
    const noData: readonly bigint[] = [];
    while (n !== null) {
      const t = n.table;
      if (t === null) {
        n = n.test!(s, noData) !== 0n ? n.trueNext : n.falseNext;
        continue;
      }
      const e = t.lookup(s);
      const action = e ? e.action : t.defaultAction;
      if (e && t.withCounters) {
        e.packets++;
        e.bytes += s.pkt.length;
      }
      if (e && n.meter) {
        const [hid, fid] = n.meter.target;
        s.h[hid]!.f[fid] = BigInt(this.#meterColor(n.meter.meter, e.handle, s.pkt.length));
      }
      action.run(s, e ? e.data : t.defaultData);
      if (s.exit) return;
      if (n.hitMiss) n = e ? n.hit : n.miss;
      else n = n.nextByAction[t.actions.indexOf(action)] ?? null;
    }
  }

  #parse(s: PacketState): void {
    const sm = s.h[this.#sm.id]!;
    let st: ParseState | null = this.#parserInit;
    let steps = 0;
    try {
      while (st !== null) {
        if (++steps > 10_000) throw new ParserError(this.#errors.get('ParserTimeout') ?? 5);
        for (const op of st.ops) op(s);
        if (st.keys.length === 0) {
          st = st.transitions[0]?.next ?? null;
          continue;
        }
        let key = 0n;
        for (const k of st.keys) key = (key << BigInt(k.bytes * 8)) | k.get(s);
        let next: ParseState | null | undefined;
        for (const t of st.transitions) {
          if (
            t.kind === 'default' ||
            (t.kind === 'value' && (key & t.mask) === t.value) ||
            (t.kind === 'vset' && t.vset?.has(key))
          ) {
            next = t.next;
            break;
          }
        }
        if (next === undefined) throw new ParserError(this.#errors.get('NoMatch') ?? 2);
        st = next;
      }
    } catch (err) {
      if (!(err instanceof ParserError)) throw err;
      if (this.#smf.parser_error >= 0) sm.f[this.#smf.parser_error] = BigInt(err.code);
    }
  }

  #deparse(s: PacketState): Uint8Array {
    let bits = 0;
    for (const id of this.#emitOrder) {
      const h = s.h[id]!;
      if (!h.valid) continue;
      bits += this.#bitsOf(id, h);
    }
    const payload = s.pkt.subarray(s.cursor);
    const out = new Uint8Array((bits >> 3) + payload.length);
    let off = 0;
    for (const id of this.#emitOrder) {
      const h = s.h[id]!;
      if (!h.valid) continue;
      const l = this.#layouts[id]!;
      for (let i = 0; i < l.widths.length; i++) {
        const w = i === l.varbitField ? this.#varbitWidth(h, l) : l.widths[i]!;
        orBits(out, off, w, h.f[i]!);
        off += w;
      }
    }
    out.set(payload, off >> 3);
    return out;
  }

  #bitsOf(id: number, h: Hdr): number {
    const l = this.#layouts[id]!;
    return l.varbitField >= 0 ? l.bits + this.#varbitWidth(h, l) : l.bits;
  }

  #varbitWidth(h: Hdr, _l: HeaderLayout): number {
    return h.vb;
  }

  #checksums(s: PacketState, list: readonly ChecksumRT[], verify: boolean): void {
    for (const c of list) {
      if (c.cond && c.cond(s, []) === 0n) continue;
      const [hid, fid] = c.target;
      const v = c.calc(s);
      if (verify) {
        if (v !== s.h[hid]!.f[fid] && this.#smf.checksum_error >= 0)
          s.h[this.#sm.id]!.f[this.#smf.checksum_error] = 1n;
      } else {
        s.h[hid]!.f[fid] = v & 0xffffn;
      }
    }
  }

  /** Run one packet through the switch; returns the packets that leave, in order. */
  process(bytes: Uint8Array, ingressPort: number): SwitchOutput[] {
    const s = this.#fresh(bytes);
    const sm = s.h[this.#sm.id]!;
    const F = this.#smf;
    sm.f[F.ingress_port] = BigInt(ingressPort);
    if (F.packet_length >= 0) sm.f[F.packet_length] = BigInt(bytes.length);
    this.#parse(s);
    this.#checksums(s, this.#verify, true);
    this.#runPipeline(this.#ingress, s);
    const egressSpec = Number(sm.f[F.egress_spec]);
    const grp = F.mcast_grp >= 0 ? Number(sm.f[F.mcast_grp]) : 0;
    const out: SwitchOutput[] = [];
    if (grp !== 0) {
      // BMv2's replication engine: one copy per (port, rid), instance_type REPLICATION (5).
      for (const { port, rid } of this.#mcast.get(grp) ?? []) {
        const c = this.#clone(s);
        if (F.instance_type >= 0) c.h[this.#sm.id]!.f[F.instance_type] = 5n;
        const emitted = this.#egressOf(c, port, rid);
        if (emitted) out.push(emitted);
      }
      return out;
    }
    if (egressSpec === DROP_PORT) return out;
    const emitted = this.#egressOf(s, egressSpec, 0);
    if (emitted) out.push(emitted);
    return out;
  }

  #egressOf(s: PacketState, port: number, rid: number): SwitchOutput | null {
    const sm = s.h[this.#sm.id]!;
    const F = this.#smf;
    s.exit = false;
    sm.f[F.egress_port] = BigInt(port);
    if (F.egress_rid >= 0) sm.f[F.egress_rid] = BigInt(rid);
    this.#runPipeline(this.#egress, s);
    if (Number(sm.f[F.egress_spec]) === DROP_PORT) return null;
    this.#checksums(s, this.#update, false);
    return { port: Number(sm.f[F.egress_port]), bytes: this.#deparse(s) };
  }

  // ------------------------------------------------------------ externs

  #random(): number {
    // xorshift32: deterministic per seed, so executions replay.
    let x = this.#rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#rng = x >>> 0;
    return this.#rng;
  }

  #meterColor(m: Meter, index: number, packetBytes: number): number {
    const cfg = m.configs[index];
    if (!cfg) return 0; // an unconfigured meter marks everything green, as BMv2's does
    const now = this.#clock();
    let st = m.state[index];
    if (!st) {
      st = { tc: cfg.cburst, tp: cfg.pburst, last: now };
      m.state[index] = st;
    }
    const dt = Number(now - st.last) / 1e9;
    st.last = now;
    st.tc = Math.min(cfg.cburst, st.tc + dt * cfg.cir);
    st.tp = Math.min(cfg.pburst, st.tp + dt * cfg.pir);
    const size = m.byBytes ? packetBytes : 1;
    // RFC 2698 trTCM, color-blind.
    if (st.tp < size) return 2;
    if (st.tc < size) {
      st.tp -= size;
      return 1;
    }
    st.tp -= size;
    st.tc -= size;
    return 0;
  }

  // ------------------------------------------------------------ runtime API

  table(name: string): TableRT {
    const t =
      this.#tables.get(name) ?? [...this.#tables.values()].find((x) => x.name.split('.').pop() === name);
    if (!t)
      throw new P4RuntimeError(
        'P4_TABLE_UNKNOWN',
        `no table '${name}' (tables: ${[...this.#tables.keys()].join(', ')})`,
      );
    return t;
  }

  get tableNames(): string[] {
    return [...this.#tables.keys()];
  }

  addEntry(table: string, spec: EntrySpec): number {
    return this.table(table).addEntry(spec);
  }

  modifyEntry(table: string, handle: number, action: string, args?: readonly (bigint | number)[]): void {
    this.table(table).modifyEntry(handle, action, args);
  }

  deleteEntry(table: string, handle: number): void {
    this.table(table).deleteEntry(handle);
  }

  setDefaultAction(table: string, action: string, args?: readonly (bigint | number)[]): void {
    this.table(table).setDefault(action, args);
  }

  readDirectCounter(table: string, handle: number): DirectCounterValue {
    return this.table(table).readDirectCounter(handle);
  }

  #extern<T>(map: Map<string, T>, name: string, kind: string): T {
    const x = map.get(name) ?? [...map.entries()].find(([k]) => k.split('.').pop() === name)?.[1];
    if (!x)
      throw new P4RuntimeError(
        'P4_EXTERN_UNKNOWN',
        `no ${kind} '${name}' (${[...map.keys()].join(', ') || 'none declared'})`,
      );
    return x;
  }

  readCounter(name: string, index: number): { packets: number; bytes: number } {
    const c = this.#extern(this.#counters, name, 'counter');
    if (!Number.isInteger(index) || index < 0 || index >= c.packets.length) {
      throw new P4RuntimeError(
        'P4_INDEX_RANGE',
        `counter ${c.name} has ${c.packets.length} cells; index ${index} is out of range`,
      );
    }
    return { packets: c.packets[index]!, bytes: c.bytes[index]! };
  }

  readRegister(name: string, index: number): bigint {
    const r = this.#extern(this.#registers, name, 'register');
    if (!Number.isInteger(index) || index < 0 || index >= r.values.length) {
      throw new P4RuntimeError(
        'P4_INDEX_RANGE',
        `register ${r.name} has ${r.values.length} cells; index ${index} is out of range`,
      );
    }
    return r.values[index]!;
  }

  writeRegister(name: string, index: number, value: bigint | number): void {
    const r = this.#extern(this.#registers, name, 'register');
    if (!Number.isInteger(index) || index < 0 || index >= r.values.length) {
      throw new P4RuntimeError(
        'P4_INDEX_RANGE',
        `register ${r.name} has ${r.values.length} cells; index ${index} is out of range`,
      );
    }
    const v = BigInt(value);
    if (v < 0n || v > mask(r.width))
      throw new P4RuntimeError(
        'P4_VALUE_WIDTH',
        `register ${r.name} holds bit<${r.width}>; ${v} does not fit`,
      );
    r.values[index] = v;
  }

  configureMeter(name: string, index: number, config: MeterConfig): void {
    const m = this.#extern(this.#meters, name, 'meter');
    if (!Number.isInteger(index) || index < 0 || (m.configs.length > 0 && index >= m.configs.length)) {
      throw new P4RuntimeError('P4_INDEX_RANGE', `meter ${m.name}: index ${index} is out of range`);
    }
    m.configs[index] = config;
    m.state[index] = undefined as never;
  }

  /** Replace multicast group `group` (1..65535): ports, or (port, egress_rid) replicas. */
  setMulticastGroup(group: number, replicas: readonly (number | { port: number; rid: number })[]): void {
    if (!Number.isInteger(group) || group < 1 || group > 0xffff) {
      throw new P4RuntimeError('P4_INDEX_RANGE', `multicast group ${group} is not in 1..65535`);
    }
    this.#mcast.set(
      group,
      replicas.map((r) => (typeof r === 'number' ? { port: r, rid: 0 } : { port: r.port, rid: r.rid })),
    );
  }

  multicastGroup(group: number): readonly { port: number; rid: number }[] {
    return this.#mcast.get(group) ?? [];
  }

  addValueSetMember(name: string, value: bigint | number): void {
    this.#extern(this.#vsets, name, 'value_set').add(BigInt(value));
  }
}
