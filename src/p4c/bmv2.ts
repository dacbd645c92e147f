/**
 * IR → BMv2 JSON, in the format behavioral-model's docs/JSON_format.md describes (the input
 * of simple_switch): header_types, headers, header_stacks, errors, parsers with parse_states
 * and transitions, deparsers, actions with primitives, pipelines with tables and
 * conditionals, calculations and checksums, counter/register/meter arrays.
 *
 * Arithmetic in BMv2 is on unbounded integers; like p4c, the emitter masks results back to
 * their P4 width (`& 0xff..`, or `two_comp_mod` for signed values) so wrap-around is exact.
 */

import { fail } from './errors.js';
import type { IrChecksum, IrExpr, IrFieldRef, IrKeyMatch, IrProgram, IrStmt, IrTable } from './ir.js';
import { mask } from './types.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Bmv2Json = { [k: string]: Json };

const hex = (v: bigint): string => (v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`);

/** Transition values and table keys are byte strings: zero-pad to the key's byte width. */
export function hexBytes(v: bigint, width: number): string {
  const digits = Math.max(1, Math.ceil(width / 8)) * 2;
  return `0x${(v & mask(Math.max(width, 1))).toString(16).padStart(digits, '0')}`;
}

const hexstr = (v: bigint): Json => ({ type: 'hexstr', value: hex(v) });
const op = (o: string, left: Json, right: Json): Json => ({
  type: 'expression',
  value: { op: o, left, right },
});

export function expr(e: IrExpr): Json {
  switch (e.k) {
    case 'const':
      return e.t.k === 'bool' ? { type: 'bool', value: e.value !== 0n } : hexstr(e.value);
    case 'field':
      return e.t.k === 'bool'
        ? op('d2b', null, { type: 'field', value: [e.header, e.field] })
        : { type: 'field', value: [e.header, e.field] };
    case 'valid':
      return op('d2b', null, { type: 'field', value: [e.header, '$valid$'] });
    case 'param':
      return e.t.k === 'bool'
        ? op('d2b', null, { type: 'runtime_data', value: e.index })
        : { type: 'runtime_data', value: e.index };
    case 'unop':
      if (e.op === '!') return op('not', null, expr(e.arg));
      if (e.op === '~') return fitType(op('~', null, expr(e.arg)), e.t);
      return fitType(op('-', hexstr(0n), expr(e.arg)), e.t);
    case 'binop': {
      const l = expr(e.left);
      const r = expr(e.right);
      switch (e.op) {
        case '&&':
          return op('and', l, r);
        case '||':
          return op('or', l, r);
        case '+':
        case '-':
        case '*':
        case '<<':
          return fitType(op(e.op, l, r), e.t);
        case '|+|':
        case '|-|': {
          const w = e.t.k === 'bits' ? e.t.w : 1;
          const signed = e.t.k === 'bits' && e.t.signed;
          return op(
            signed ? 'sat_cast' : 'usat_cast',
            op(e.op === '|+|' ? '+' : '-', l, r),
            hexstr(BigInt(w)),
          );
        }
        default:
          return op(e.op, l, r);
      }
    }
    case 'slice': {
      const shifted = e.lo === 0 ? expr(e.arg) : op('>>', expr(e.arg), hexstr(BigInt(e.lo)));
      return op('&', shifted, hexstr(mask(e.hi - e.lo + 1)));
    }
    case 'concat': {
      const rw = e.right.t.k === 'bits' ? e.right.t.w : 1;
      const lw = e.left.t.k === 'bits' ? e.left.t.w : 1;
      const left = op('<<', op('&', expr(e.left), hexstr(mask(lw))), hexstr(BigInt(rw)));
      return fitType(op('|', left, op('&', expr(e.right), hexstr(mask(rw)))), e.t);
    }
    case 'cast': {
      const from = e.arg.t;
      if (e.t.k === 'bool') return op('d2b', null, expr(e.arg));
      if (from.k === 'bool') return op('b2d', null, expr(e.arg));
      if (from.k === 'bits' && !from.signed && !e.t.signed && e.t.w >= from.w) return expr(e.arg);
      return fitType(expr(e.arg), e.t);
    }
    case 'cond':
      return {
        type: 'expression',
        value: { op: '?', left: expr(e.ifTrue), right: expr(e.ifFalse), cond: expr(e.test) },
      };
    case 'lookahead':
      return { type: 'lookahead', value: [e.offset, e.width] };
    case 'stackField':
      return { type: 'stack_field', value: [e.stack, e.field] };
  }
}

/** Bring an unbounded result back into its P4 type. */
function fitType(j: Json, t: IrExpr['t']): Json {
  if (t.k === 'bool') return j;
  if (t.signed) return op('two_comp_mod', j, hexstr(BigInt(t.w)));
  return op('&', j, hexstr(mask(t.w)));
}

/** A value to store into a field: bools become data. */
function data(e: IrExpr): Json {
  return e.t.k === 'bool' ? op('b2d', null, expr(e)) : expr(e);
}

const field = (h: string, f: string): Json => ({ type: 'field', value: [h, f] });

function primitives(stmts: readonly IrStmt[], calcs: Calcs, out: Json[]): void {
  for (const s of stmts) {
    switch (s.k) {
      case 'assign':
        out.push({ op: 'assign', parameters: [field(s.target.header, s.target.field), data(s.value)] });
        break;
      case 'copyHeader':
        out.push({
          op: 'assign_header',
          parameters: [
            { type: 'header', value: s.target },
            { type: 'header', value: s.source },
          ],
        });
        break;
      case 'setValid':
        out.push({ op: 'add_header', parameters: [{ type: 'header', value: s.header }] });
        break;
      case 'setInvalid':
        out.push({ op: 'remove_header', parameters: [{ type: 'header', value: s.header }] });
        break;
      case 'drop':
        out.push({ op: 'mark_to_drop', parameters: [{ type: 'header', value: 'standard_metadata' }] });
        break;
      case 'exit':
        out.push({ op: 'exit', parameters: [] });
        break;
      case 'count':
        out.push({ op: 'count', parameters: [{ type: 'counter_array', value: s.counter }, data(s.index)] });
        break;
      case 'registerRead':
        out.push({
          op: 'register_read',
          parameters: [
            field(s.target.header, s.target.field),
            { type: 'register_array', value: s.register },
            data(s.index),
          ],
        });
        break;
      case 'registerWrite':
        out.push({
          op: 'register_write',
          parameters: [{ type: 'register_array', value: s.register }, data(s.index), data(s.value)],
        });
        break;
      case 'meter':
        out.push({
          op: 'execute_meter',
          parameters: [
            { type: 'meter_array', value: s.meter },
            data(s.index),
            field(s.target.header, s.target.field),
          ],
        });
        break;
      case 'hash': {
        const calc = calcs.add(s.algo, s.data, false);
        out.push({
          op: 'modify_field_with_hash_based_offset',
          parameters: [
            field(s.target.header, s.target.field),
            data(s.base),
            { type: 'calculation', value: calc },
            data(s.max),
          ],
        });
        break;
      }
      case 'clone':
        // p4c's simple_switch back end: [session, field list id]; clone() gets an empty list
        out.push({
          op: s.type === 'I2E' ? 'clone_ingress_pkt_to_egress' : 'clone_egress_pkt_to_egress',
          parameters: [data(s.session), hexstr(BigInt(calcs.fieldList(s.fieldList)))],
        });
        break;
      case 'resubmit':
      case 'recirculate':
        out.push({ op: s.k, parameters: [hexstr(BigInt(calcs.fieldList(s.fieldList)))] });
        break;
      case 'digest':
        out.push({
          op: 'generate_digest',
          parameters: [data(s.receiver), hexstr(BigInt(calcs.learnList(s.list, s.fields)))],
        });
        break;
      case 'random':
        out.push({
          op: 'modify_field_rng_uniform',
          parameters: [field(s.target.header, s.target.field), data(s.lo), data(s.hi)],
        });
        break;
      case 'push':
      case 'pop':
        out.push({
          op: s.k,
          parameters: [{ type: 'header_stack', value: s.stack }, hexstr(BigInt(s.count))],
        });
        break;
      case 'log':
        out.push({
          op: 'log_msg',
          parameters: [
            { type: 'string', value: s.message },
            { type: 'parameters_vector', value: [] },
          ],
        });
        break;
      case 'assert':
        out.push({ op: 'assert', parameters: [expr(s.test)] });
        break;
      case 'if': {
        // Structured if → BMv2's _jump_if_zero / _jump, with absolute primitive offsets.
        const jz: { op: string; parameters: Json[] } = {
          op: '_jump_if_zero',
          parameters: [data(s.test), hexstr(0n)],
        };
        out.push(jz);
        primitives(s.then, calcs, out);
        if (s.else.length > 0) {
          const j: { op: string; parameters: Json[] } = { op: '_jump', parameters: [hexstr(0n)] };
          out.push(j);
          jz.parameters[1] = hexstr(BigInt(out.length));
          primitives(s.else, calcs, out);
          j.parameters[0] = hexstr(BigInt(out.length));
        } else {
          jz.parameters[1] = hexstr(BigInt(out.length));
        }
        break;
      }
    }
  }
}

class Calcs {
  readonly list: Json[] = [];
  /** `field_lists` and `learn_lists`, ids from 1 (simple_switch reads 0 as "none"). */
  readonly fieldLists: Json[] = [];
  readonly learnLists: Json[] = [];
  readonly #byIndex = new Map<number, number>();

  constructor(readonly ir: IrProgram) {}

  /** The id of field list `index` (@field_list), or of a new empty list for null (clone()). */
  fieldList(index: number | null): number {
    const known = index === null ? undefined : this.#byIndex.get(index);
    if (known !== undefined) return known;
    const id = this.fieldLists.length + 1;
    const fields = index === null ? [] : (this.ir.fieldLists?.find((l) => l.index === index)?.fields ?? []);
    const name = index === null ? `fl_${id}` : fields.length > 0 ? `field_list${index}` : `empty_${id}`;
    this.fieldLists.push({ id, name, elements: fields.map((f) => field(f.header, f.field)) });
    if (index !== null) this.#byIndex.set(index, id);
    return id;
  }

  learnList(name: string, fields: readonly IrFieldRef[]): number {
    const id = this.learnLists.length + 1;
    this.learnLists.push({ id, name, elements: fields.map((f) => field(f.header, f.field)) });
    return id;
  }

  add(algo: string, inputs: readonly IrExpr[], payload: boolean): string {
    const name = `calc_${this.list.length}`;
    const input: Json[] = inputs.map((e) => {
      if (e.k === 'field') return field(e.header, e.field);
      if (e.k === 'const' && e.t.k === 'bits')
        return { type: 'hexstr', value: hex(e.value), bitwidth: e.t.w };
      return { type: 'expression', value: expr(e), bitwidth: e.t.k === 'bits' ? e.t.w : 1 } as Json;
    });
    if (payload) input.push({ type: 'payload', value: null });
    this.list.push({ name, id: this.list.length, algo, input });
    return name;
  }
}

export function toBmv2(ir: IrProgram): Bmv2Json {
  const calcs = new Calcs(ir);
  const headerTypeIds = new Map(ir.headerTypes.map((t, i) => [t.name, i]));
  const headerIds = new Map(ir.headers.map((h, i) => [h.name, i]));
  const actionIds = new Map(ir.actions.map((a, i) => [a.name, i]));
  const actionId = (name: string): number => {
    const id = actionIds.get(name);
    if (id === undefined) fail('semantic', { file: ir.name, line: 0, col: 0 }, `a lowered action '${name}'`);
    return id;
  };

  const header_types: Json[] = ir.headerTypes.map((t, id) => {
    const varbit = t.fields.find((f) => f.varbit);
    const ht: { [k: string]: Json } = {
      name: t.name,
      id,
      fields: t.fields.map((f) => (f.varbit ? [f.name, '*'] : [f.name, f.width, f.signed])),
    };
    if (varbit) ht.max_length = t.fields.reduce((n, f) => n + f.width, 0) / 8;
    return ht;
  });
  void headerTypeIds;

  const parser = ir.parser;
  const parsers: Json[] = [
    {
      name: 'parser',
      id: 0,
      init_state: parser.init,
      parse_states: parser.states.map((s, id) => ({
        name: s.name,
        id,
        parser_ops: s.ops.map((o): Json => {
          switch (o.k) {
            case 'extract':
              return { op: 'extract', parameters: [{ type: 'regular', value: o.header }] };
            case 'extractNext':
              return { op: 'extract', parameters: [{ type: 'stack', value: o.stack }] };
            case 'extractVarbit':
              return { op: 'extract_VL', parameters: [{ type: 'regular', value: o.header }, data(o.bits)] };
            case 'advance':
              return { op: 'advance', parameters: [data(o.bits)] };
            case 'verify':
              return { op: 'verify', parameters: [expr(o.test), hexstr(BigInt(o.error))] };
            case 'stmt': {
              const st = o.stmt;
              if (st.k === 'assign')
                return { op: 'set', parameters: [field(st.target.header, st.target.field), data(st.value)] };
              const prims: Json[] = [];
              primitives([st], calcs, prims);
              return { op: 'primitive', parameters: prims };
            }
            default:
              return null;
          }
        }),
        transition_key: s.keys.map((k): Json => (k.k === 'field' ? field(k.header, k.field) : expr(k))),
        transitions: s.cases.map((c): Json => {
          const next = c.next === 'reject' ? null : c.next;
          if (c.keys.length === 0 || c.keys.every((k) => k.k === 'default')) {
            return { type: 'default', value: null, mask: null, next_state: next };
          }
          const vset = c.keys.find((k) => k.k === 'vset');
          if (vset && vset.k === 'vset') {
            if (c.keys.length !== 1)
              fail(
                'unsupported',
                { file: ir.name, line: 0, col: 0 },
                `value sets combined with other select keys (state ${s.name})`,
              );
            return { type: 'parse_vset', value: vset.vset, mask: null, next_state: next };
          }
          let value = '';
          let maskStr = '';
          let masked = false;
          c.keys.forEach((k, i) => {
            const w = s.keys[i]!.t.k === 'bits' ? (s.keys[i]!.t as { w: number }).w : 1;
            const bytes = Math.max(1, Math.ceil(w / 8));
            const full = mask(bytes * 8);
            let v = 0n;
            let m = full;
            if (k.k === 'value') {
              v = k.value;
              if (k.mask !== null) {
                m = k.mask;
                masked = true;
              }
            } else {
              m = 0n;
              masked = true;
            }
            value += v.toString(16).padStart(bytes * 2, '0');
            maskStr += m.toString(16).padStart(bytes * 2, '0');
          });
          return {
            type: 'hexstr',
            value: `0x${value}`,
            mask: masked ? `0x${maskStr}` : null,
            next_state: next,
          };
        }),
      })),
    },
  ];

  const actions: Json[] = ir.actions.map((a, id) => {
    const prims: Json[] = [];
    primitives(a.body, calcs, prims);
    return {
      name: a.name,
      id,
      runtime_data: a.params.map((p) => ({ name: p.name, bitwidth: p.width })),
      primitives: prims,
    };
  });

  let tableId = 0;
  let condId = 0;
  const pipeline = (name: string, c: IrProgram['ingress'], id: number): Json => ({
    name,
    id,
    init_table: c.init,
    tables: c.nodes.filter((n): n is IrTable => n.k === 'table').map((t) => table(t, tableId++, actionId)),
    action_profiles: [],
    conditionals: c.nodes
      .filter((n) => n.k === 'cond')
      .map((n) => ({
        name: n.name,
        id: condId++,
        expression: expr(n.test),
        true_next: n.trueNext,
        false_next: n.falseNext,
      })),
  });

  const checksum = (c: IrChecksum, id: number, verify: boolean): Json => ({
    name: c.name,
    id,
    target: [c.target.header, c.target.field],
    type: 'generic',
    calculation: calcs.add(c.algo, c.data, c.withPayload),
    verify,
    update: !verify,
    if_cond: c.condition ? expr(c.condition) : null,
  });

  const pipelines = [pipeline('ingress', ir.ingress, 0), pipeline('egress', ir.egress, 1)];
  const checksums = [
    ...ir.verifyChecksums.map((c, i) => checksum(c, i, true)),
    ...ir.updateChecksums.map((c, i) => checksum(c, ir.verifyChecksums.length + i, false)),
  ];

  return {
    header_types,
    headers: ir.headers.map((h, id) => ({
      name: h.name,
      id,
      header_type: h.type,
      metadata: h.metadata,
      pi_omit: true,
    })),
    header_stacks: ir.stacks.map((s, id) => ({
      name: s.name,
      id,
      header_type: s.type,
      size: s.size,
      header_ids: s.headers.map((h) => headerIds.get(h)!),
    })),
    header_union_types: ir.unions
      .filter((u, i, all) => all.findIndex((x) => x.type === u.type) === i)
      .map((u, id) => ({ name: u.type, id, headers: u.members.map((m) => [m.name, m.type]) })),
    header_unions: ir.unions.map((u, id) => ({
      name: u.name,
      id,
      union_type: u.type,
      header_ids: u.members.map((m) => headerIds.get(m.header)!),
      pi_omit: true,
    })),
    header_union_stacks: [],
    field_lists: calcs.fieldLists,
    errors: ir.errors.map((e) => [e.name, e.value]),
    enums: [],
    parsers,
    parse_vsets: ir.valueSets.map((v, id) => ({
      name: v.name,
      id,
      compressed_bitwidth: v.width,
      max_size: v.size,
    })),
    deparsers: [{ name: 'deparser', id: 0, order: [...ir.deparser.emit], primitives: [] }],
    meter_arrays: ir.meters.map((m, id) => ({
      name: m.name,
      id,
      is_direct: m.direct !== null,
      rate_count: 2,
      type: m.type,
      size: m.size,
      ...(m.direct ? { binding: m.direct, result_target: directMeterTarget(ir, m.name) } : {}),
    })),
    counter_arrays: ir.counters.map((c, id) => ({
      name: c.name,
      id,
      is_direct: c.direct !== null,
      size: c.size,
      ...(c.direct ? { binding: c.direct } : {}),
    })),
    register_arrays: ir.registers.map((r, id) => ({ name: r.name, id, size: r.size, bitwidth: r.width })),
    calculations: calcs.list,
    learn_lists: calcs.learnLists,
    actions,
    pipelines,
    checksums,
    force_arith: [],
    extern_instances: [],
    field_aliases: [],
    program: ir.name,
    __meta__: { version: [2, 23], compiler: 'thunderpac p4c' },
  };
}

function directMeterTarget(ir: IrProgram, meter: string): Json {
  for (const c of [ir.ingress, ir.egress]) {
    for (const n of c.nodes) {
      if (n.k === 'table' && n.directMeter?.meter === meter)
        return [n.directMeter.target.header, n.directMeter.target.field];
    }
  }
  return null;
}

function table(t: IrTable, id: number, actionId: (n: string) => number): Json {
  const kinds = t.keys.map((k) => k.match);
  const matchType = kinds.includes('range')
    ? 'range'
    : kinds.includes('ternary') || kinds.includes('optional')
      ? 'ternary'
      : kinds.includes('lpm')
        ? 'lpm'
        : 'exact';
  const next: { [k: string]: Json } = {};
  if (t.next.hitMiss) {
    next.__HIT__ = t.next.hit;
    next.__MISS__ = t.next.miss;
  } else {
    for (const a of t.actions) next[a] = t.next.byAction?.[a] ?? t.next.base;
  }
  const widthOf = (i: number) => t.keys[i]!.width;
  return {
    name: t.name,
    id,
    key: t.keys.map((k) => ({
      match_type: k.match,
      name: k.name,
      target: [k.target.header, k.target.field],
      mask: k.mask === null ? null : hexBytes(k.mask, k.width),
    })),
    match_type: matchType,
    type: 'simple',
    max_size: t.size,
    with_counters: t.directCounter !== null,
    support_timeout: false,
    direct_meters: t.directMeter ? t.directMeter.meter : null,
    action_ids: t.actions.map(actionId),
    actions: [...t.actions],
    base_default_next: t.next.base,
    next_tables: next,
    default_entry: {
      action_id: actionId(t.defaultAction.action),
      action_const: t.defaultConst,
      action_data: t.defaultAction.args.map((v) => hex(v)),
      action_entry_const: t.defaultConst,
    },
    entries: t.entries.map((e) => ({
      match_key: e.keys.map((m, i) => keyJson(m, widthOf(i))),
      action_entry: { action_id: actionId(e.action.action), action_data: e.action.args.map((v) => hex(v)) },
      priority: e.priority,
    })),
  };
}

function keyJson(m: IrKeyMatch, w: number): Json {
  switch (m.k) {
    case 'exact':
      return { match_type: 'exact', key: hexBytes(m.value, w) };
    case 'lpm':
      return { match_type: 'lpm', key: hexBytes(m.value, w), prefix_length: m.prefix };
    case 'ternary':
      return { match_type: 'ternary', key: hexBytes(m.value, w), mask: hexBytes(m.mask, w) };
    case 'range':
      return { match_type: 'range', start: hexBytes(m.lo, w), end: hexBytes(m.hi, w) };
    case 'optional':
      return {
        match_type: 'ternary',
        key: hexBytes(m.value, w),
        mask: hexBytes(m.wildcard ? 0n : mask(w), w),
      };
  }
}
