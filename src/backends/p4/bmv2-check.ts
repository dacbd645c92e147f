/**
 * The shape of BMv2 JSON, checked before the switch builds anything from it. A program may come
 * from anywhere (`p4 run prog.json`, createP4BuildFromJson), so every field the switch reads is
 * checked here for its type and its bounds — ids index the arrays they name, sizes the switch
 * allocates are bounded, widths and expression depths are bounded, names that are referred to
 * exist, and control flow (action jumps, the pipelines' graphs) cannot loop. A refusal is a
 * P4RuntimeError `P4_JSON` naming the JSON path, e.g. `actions[3].primitives[0].parameters[1]`.
 *
 * What the compilation in program.ts then finds wrong (an unknown header in a field reference,
 * an unsupported primitive) it reports itself, also as `P4_JSON`.
 */

import { P4RuntimeError } from './errors.js';

/** Entries of any one list in the JSON (headers, fields, actions, primitives, entries, ...). */
export const MAX_BMV2_ITEMS = 65_536;
/** Entries of a counter, register or meter array, and a table's max_size. */
export const MAX_BMV2_ARRAY_SIZE = 1 << 20;
/** Width of a field, action parameter, register cell, lookahead or calculation input. */
export const MAX_BMV2_WIDTH = 2048;
/** Bytes of a header with a varbit field (`max_length`). */
export const MAX_BMV2_HEADER_BYTES = 8192;
/** Nesting of expressions (the switch compiles them recursively). */
export const MAX_BMV2_EXPR_DEPTH = 128;
/** Characters of a number written as a string (a hexstr of MAX_BMV2_WIDTH bits and then some). */
const MAX_NUMBER_CHARS = 1024;

// biome-ignore lint/suspicious/noExplicitAny: the JSON is untyped until this module has checked it
type J = any;

const NUMBER_TEXT = /^-?(0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)$/;

/** What a const table entry's match_key holds, by match type. */
const ENTRY_FIELDS: Readonly<Record<string, readonly string[]>> = {
  exact: ['key'],
  lpm: ['key'],
  ternary: ['key', 'mask'],
  range: ['start', 'end'],
};

/** Primitives and parser ops the switch reads parameters of by position: how many it reads. */
const ARITY: Readonly<Record<string, number>> = {
  assign: 2,
  modify_field: 2,
  assign_header: 2,
  add_header: 1,
  remove_header: 1,
  count: 2,
  register_read: 3,
  register_write: 3,
  execute_meter: 3,
  modify_field_with_hash_based_offset: 4,
  modify_field_rng_uniform: 3,
  push: 2,
  pop: 2,
  clone_ingress_pkt_to_egress: 1,
  clone_egress_pkt_to_egress: 1,
  generate_digest: 2,
  assert: 1,
  _jump: 1,
  _jump_if_zero: 2,
  extract: 1,
  extract_VL: 2,
  set: 2,
  verify: 2,
  advance: 1,
  primitive: 1,
};

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : `'${v}'`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function refuse(path: string, expected: string, found: unknown): never {
  throw new P4RuntimeError('P4_JSON', `BMv2 JSON ${path}: expected ${expected}, found ${describe(found)}`);
}

const isObject = (v: unknown): v is Record<string, J> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function obj(v: unknown, path: string): Record<string, J> {
  if (!isObject(v)) refuse(path, 'an object', v);
  return v;
}

function list(v: unknown, path: string, max = MAX_BMV2_ITEMS): J[] {
  if (!Array.isArray(v)) refuse(path, 'an array', v);
  if (v.length > max) refuse(path, `an array of at most ${max} entries`, v);
  return v;
}

/** An optional list: absent or null is empty. */
const optList = (v: unknown, path: string, max?: number): J[] =>
  v === undefined || v === null ? [] : list(v, path, max);

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') refuse(path, 'a string', v);
  if (v.length > MAX_BMV2_ITEMS) refuse(path, `a string of at most ${MAX_BMV2_ITEMS} characters`, v);
  return v;
}

const optStr = (v: unknown, path: string): string | null =>
  v === undefined || v === null ? null : str(v, path);

function int(v: unknown, path: string, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)
    refuse(path, `an integer in ${lo}..${hi}`, v);
  return v;
}

function optBool(v: unknown, path: string): void {
  if (v !== undefined && v !== null && typeof v !== 'boolean') refuse(path, 'true or false', v);
}

/** A number as BMv2 writes them: a decimal or 0x string (hexstr), or a safe integer. */
function numberText(v: unknown, path: string): void {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return;
  if (typeof v === 'boolean') return;
  if (typeof v !== 'string' || v.length > MAX_NUMBER_CHARS || !NUMBER_TEXT.test(v))
    refuse(path, 'a number (a decimal or 0x string of at most 1024 characters, or an integer)', v);
}

function optNumberText(v: unknown, path: string): void {
  if (v !== undefined && v !== null) numberText(v, path);
}

/** A field reference [header, field]. */
function fieldRef(v: unknown, path: string): void {
  const a = list(v, path, 2);
  if (a.length !== 2) refuse(path, 'a field reference [header, field]', v);
  str(a[0], `${path}[0]`);
  str(a[1], `${path}[1]`);
}

/** Names and ids the switch keys its maps by: one entry each, or one would hide another. */
function unique(items: readonly J[], path: string, field: 'name' | 'id'): void {
  const seen = new Set<unknown>();
  for (const [i, x] of items.entries()) {
    const v = x?.[field];
    if (v === undefined) continue;
    if (seen.has(v)) refuse(`${path}[${i}].${field}`, `a ${field} no other entry of ${path} has`, v);
    seen.add(v);
  }
}

export function checkBmv2Json(json: unknown): void {
  new Bmv2Check().program(obj(json, '(top level)'));
}

class Bmv2Check {
  readonly #headerTypes = new Set<string>();
  #headerCount = 0;
  #actionCount = 0;

  program(j: Record<string, J>): void {
    if (j.program !== undefined && typeof j.program !== 'string') refuse('program', 'a string', j.program);
    for (const [i, t] of list(j.header_types, 'header_types').entries())
      this.headerType(t, `header_types[${i}]`);
    const headers = list(j.headers, 'headers');
    this.#headerCount = headers.length;
    for (const [i, h] of headers.entries()) {
      const path = `headers[${i}]`;
      const o = obj(h, path);
      str(o.name, `${path}.name`);
      if (!this.#headerTypes.has(str(o.header_type, `${path}.header_type`)))
        refuse(`${path}.header_type`, 'the name of one of header_types', o.header_type);
      optBool(o.metadata, `${path}.metadata`);
    }
    for (const [i, s] of optList(j.header_stacks, 'header_stacks').entries()) {
      const path = `header_stacks[${i}]`;
      const o = obj(s, path);
      str(o.name, `${path}.name`);
      const ids = list(o.header_ids, `${path}.header_ids`);
      if (ids.length === 0) refuse(`${path}.header_ids`, 'at least one header id', ids);
      for (const [k, id] of ids.entries()) int(id, `${path}.header_ids[${k}]`, 0, this.#headerCount - 1);
    }
    for (const [i, e] of optList(j.errors, 'errors').entries()) {
      const pair = list(e, `errors[${i}]`, 2);
      str(pair[0], `errors[${i}][0]`);
      int(pair[1], `errors[${i}][1]`, 0, 0x7fffffff);
    }
    for (const [i, v] of optList(j.parse_vsets, 'parse_vsets').entries())
      str(obj(v, `parse_vsets[${i}]`).name, `parse_vsets[${i}].name`);
    for (const [i, c] of optList(j.calculations, 'calculations').entries())
      this.calculation(c, `calculations[${i}]`);
    for (const key of ['field_lists', 'learn_lists'] as const) {
      for (const [i, f] of optList(j[key], key).entries()) {
        const path = `${key}[${i}]`;
        const o = obj(f, path);
        int(o.id, `${path}.id`, 0, 0x7fffffff);
        if (o.name !== undefined) str(o.name, `${path}.name`);
        for (const [k, e] of optList(o.elements, `${path}.elements`).entries()) {
          const el = obj(e, `${path}.elements[${k}]`);
          str(el.type, `${path}.elements[${k}].type`);
          if (el.type === 'field') fieldRef(el.value, `${path}.elements[${k}].value`);
        }
      }
    }
    const actions = optList(j.actions, 'actions');
    this.#actionCount = actions.length;
    const ids = new Set<number>();
    for (const [i, a] of actions.entries()) {
      const id = this.action(a, `actions[${i}]`);
      if (ids.has(id)) refuse(`actions[${i}].id`, 'an id no other action has', id);
      ids.add(id);
    }
    const parsers = list(j.parsers, 'parsers');
    if (parsers.length === 0) refuse('parsers', 'at least one parser', parsers);
    this.parser(parsers[0], 'parsers[0]');
    for (const [i, d] of optList(j.deparsers, 'deparsers').entries()) {
      const o = obj(d, `deparsers[${i}]`);
      for (const [k, n] of optList(o.order, `deparsers[${i}].order`).entries())
        str(n, `deparsers[${i}].order[${k}]`);
    }
    for (const [i, p] of list(j.pipelines, 'pipelines').entries()) this.pipeline(p, `pipelines[${i}]`);
    for (const key of [
      'header_types',
      'headers',
      'header_stacks',
      'calculations',
      'pipelines',
      'counter_arrays',
      'register_arrays',
      'meter_arrays',
    ] as const)
      unique(optList(j[key], key), key, 'name');
    unique(optList(j.field_lists, 'field_lists'), 'field_lists', 'id');
    unique(optList(j.learn_lists, 'learn_lists'), 'learn_lists', 'id');
    for (const [i, c] of optList(j.checksums, 'checksums').entries()) {
      const path = `checksums[${i}]`;
      const o = obj(c, path);
      str(o.name, `${path}.name`);
      str(o.calculation, `${path}.calculation`);
      fieldRef(o.target, `${path}.target`);
      if (o.if_cond !== undefined && o.if_cond !== null) this.operand(o.if_cond, `${path}.if_cond`, 0);
      optBool(o.verify, `${path}.verify`);
      optBool(o.update, `${path}.update`);
    }
    for (const key of ['counter_arrays', 'register_arrays', 'meter_arrays'] as const) {
      for (const [i, x] of optList(j[key], key).entries()) {
        const path = `${key}[${i}]`;
        const o = obj(x, path);
        str(o.name, `${path}.name`);
        optBool(o.is_direct, `${path}.is_direct`);
        if (o.is_direct !== true || key === 'register_arrays')
          int(o.size, `${path}.size`, 0, MAX_BMV2_ARRAY_SIZE);
        if (key === 'register_arrays') int(o.bitwidth, `${path}.bitwidth`, 1, MAX_BMV2_WIDTH);
        if (key === 'meter_arrays') {
          if (o.type !== undefined) str(o.type, `${path}.type`);
          if (o.result_target !== undefined && o.result_target !== null)
            fieldRef(o.result_target, `${path}.result_target`);
        }
      }
    }
  }

  headerType(t: unknown, path: string): void {
    const o = obj(t, path);
    this.#headerTypes.add(str(o.name, `${path}.name`));
    let varbits = 0;
    for (const [i, f] of list(o.fields, `${path}.fields`).entries()) {
      const fp = `${path}.fields[${i}]`;
      const a = list(f, fp, 3);
      if (a.length < 2) refuse(fp, 'a field [name, width, signed?]', f);
      str(a[0], `${fp}[0]`);
      if (a[1] === '*') varbits++;
      else int(a[1], `${fp}[1]`, 0, MAX_BMV2_WIDTH);
      optBool(a[2], `${fp}[2]`);
    }
    if (varbits > 1) refuse(`${path}.fields`, 'at most one varbit field', o.fields);
    if (o.max_length !== undefined && o.max_length !== null)
      int(o.max_length, `${path}.max_length`, 0, MAX_BMV2_HEADER_BYTES);
  }

  calculation(c: unknown, path: string): void {
    const o = obj(c, path);
    str(o.name, `${path}.name`);
    str(o.algo, `${path}.algo`);
    let bits = 0;
    for (const [i, x] of list(o.input, `${path}.input`).entries()) {
      const ip = `${path}.input[${i}]`;
      const input = obj(x, ip);
      const type = str(input.type, `${ip}.type`);
      if (type === 'payload') continue;
      if (type === 'field') fieldRef(input.value, `${ip}.value`);
      else {
        if (type === 'hexstr') numberText(input.value, `${ip}.value`);
        else this.operand(input.value, `${ip}.value`, 0);
        bits += int(input.bitwidth, `${ip}.bitwidth`, 0, MAX_BMV2_WIDTH);
      }
    }
    if (bits > MAX_BMV2_ITEMS * 8)
      refuse(`${path}.input`, `inputs of at most ${MAX_BMV2_ITEMS * 8} bits`, bits);
  }

  action(a: unknown, path: string): number {
    const o = obj(a, path);
    const id = int(o.id, `${path}.id`, 0, this.#actionCount - 1);
    str(o.name, `${path}.name`);
    const params = optList(o.runtime_data, `${path}.runtime_data`);
    for (const [i, r] of params.entries()) {
      const rp = `${path}.runtime_data[${i}]`;
      const rd = obj(r, rp);
      if (rd.name !== undefined) str(rd.name, `${rp}.name`);
      int(rd.bitwidth, `${rp}.bitwidth`, 0, MAX_BMV2_WIDTH);
    }
    const prims = optList(o.primitives, `${path}.primitives`);
    for (const [i, p] of prims.entries()) {
      const pp = `${path}.primitives[${i}]`;
      this.primitive(p, pp, params.length);
      // Jumps only go forward (p4c's if/else inside an action): an action always ends.
      const op = (p as J).op;
      if (op === '_jump' || op === '_jump_if_zero') {
        const target = (p as J).parameters[op === '_jump' ? 0 : 1];
        const tp = `${pp}.parameters[${op === '_jump' ? 0 : 1}].value`;
        numberText(target?.value, tp);
        const to = Number(target.value);
        if (!Number.isInteger(to) || to <= i || to > prims.length)
          refuse(tp, `a later primitive's index in ${i + 1}..${prims.length}`, target.value);
      }
    }
    return id;
  }

  primitive(p: unknown, path: string, params: number): void {
    const o = obj(p, path);
    const op = str(o.op, `${path}.op`);
    const args = optList(o.parameters, `${path}.parameters`);
    const arity = ARITY[op] ?? 0;
    if (args.length < arity) refuse(`${path}.parameters`, `${arity} parameter(s) of '${op}'`, args);
    for (const [i, x] of args.entries()) {
      const ap = `${path}.parameters[${i}]`;
      if (op === 'primitive') this.primitive(x, ap, params);
      else this.operand(x, ap, 0, params);
    }
    if (op === 'push' || op === 'pop') {
      numberText(args[1].value, `${path}.parameters[1].value`);
      const n = Number(args[1].value);
      if (!Number.isInteger(n) || n < 0 || n > MAX_BMV2_ITEMS)
        refuse(`${path}.parameters[1].value`, `a count in 0..${MAX_BMV2_ITEMS}`, args[1].value);
    }
  }

  /** A typed operand `{type, value}` of a primitive, an expression, a key. */
  operand(v: unknown, path: string, depth: number, params = Number.POSITIVE_INFINITY): void {
    if (depth > MAX_BMV2_EXPR_DEPTH)
      refuse(path, `expressions nested at most ${MAX_BMV2_EXPR_DEPTH} deep`, v);
    const o = obj(v, path);
    const type = str(o.type, `${path}.type`);
    const vp = `${path}.value`;
    switch (type) {
      case 'field':
      case 'stack_field':
        fieldRef(o.value, vp);
        return;
      case 'hexstr':
        numberText(o.value, vp);
        return;
      case 'bool':
        if (typeof o.value !== 'boolean') refuse(vp, 'true or false', o.value);
        return;
      case 'runtime_data':
        int(o.value, vp, 0, Number.isFinite(params) ? params - 1 : MAX_BMV2_ITEMS);
        return;
      case 'lookahead': {
        const a = list(o.value, vp, 2);
        int(a[0], `${vp}[0]`, 0, MAX_BMV2_HEADER_BYTES * 8);
        int(a[1], `${vp}[1]`, 1, MAX_BMV2_WIDTH);
        return;
      }
      case 'expression': {
        const e = obj(o.value, vp);
        if (e.type === 'expression') {
          this.operand(e, vp, depth + 1, params);
          return;
        }
        const op = str(e.op, `${vp}.op`);
        for (const side of ['left', 'right', 'cond'] as const) {
          const x = e[side];
          if (x === undefined || x === null) continue;
          this.operand(x, `${vp}.${side}`, depth + 1, params);
        }
        if (e.right === undefined || e.right === null)
          refuse(`${vp}.right`, `an operand of '${op}'`, e.right);
        if (
          op === '?' &&
          (e.cond === undefined || e.cond === null || e.left === undefined || e.left === null)
        )
          refuse(`${vp}.cond`, "a condition and two operands of '?'", e.cond);
        if (op === 'valid') str(e.right.value, `${vp}.right.value`);
        return;
      }
      default:
        // Names: header, header_stack, regular, stack, counter_array, register_array,
        // meter_array, calculation, string, field_list, parse_vset, ... — the switch looks
        // them up and refuses unknown ones itself.
        if (
          o.value !== undefined &&
          o.value !== null &&
          typeof o.value !== 'string' &&
          typeof o.value !== 'number'
        )
          refuse(vp, `a name or number for a '${type}' operand`, o.value);
    }
  }

  parser(p: unknown, path: string): void {
    const o = obj(p, path);
    str(o.init_state, `${path}.init_state`);
    const states = list(o.parse_states, `${path}.parse_states`);
    const names = new Set<string>();
    for (const [i, s] of states.entries())
      names.add(str(obj(s, `${path}.parse_states[${i}]`).name, `${path}.parse_states[${i}].name`));
    unique(states, `${path}.parse_states`, 'name');
    if (!names.has(o.init_state))
      refuse(`${path}.init_state`, 'the name of one of parse_states', o.init_state);
    for (const [i, s] of states.entries()) {
      const sp = `${path}.parse_states[${i}]`;
      const st = s as J;
      for (const [k, op] of list(st.parser_ops, `${sp}.parser_ops`).entries())
        this.primitive(op, `${sp}.parser_ops[${k}]`, Number.POSITIVE_INFINITY);
      for (const [k, key] of list(st.transition_key, `${sp}.transition_key`).entries())
        this.operand(key, `${sp}.transition_key[${k}]`, 0);
      for (const [k, t] of list(st.transitions, `${sp}.transitions`).entries()) {
        const tp = `${sp}.transitions[${k}]`;
        const tr = obj(t, tp);
        const type = str(tr.type, `${tp}.type`);
        if (type === 'hexstr') {
          numberText(tr.value, `${tp}.value`);
          optNumberText(tr.mask, `${tp}.mask`);
        } else if (type === 'parse_vset') str(tr.value, `${tp}.value`);
        const next = optStr(tr.next_state, `${tp}.next_state`);
        if (next !== null && !names.has(next))
          refuse(`${tp}.next_state`, 'the name of one of parse_states', next);
      }
    }
  }

  pipeline(p: unknown, path: string): void {
    const o = obj(p, path);
    str(o.name, `${path}.name`);
    const tables = list(o.tables, `${path}.tables`);
    const conditionals = optList(o.conditionals, `${path}.conditionals`);
    /** Each node's successors, by name, to find cycles. */
    const next = new Map<string, { path: string; to: (string | null)[] }>();
    const node = (x: unknown, at: string): void => {
      const name = str(obj(x, at).name, `${at}.name`);
      if (next.has(name)) refuse(`${at}.name`, `a name no other table or conditional of ${path} has`, name);
      next.set(name, { path: at, to: [] });
    };
    for (const [i, t] of tables.entries()) node(t, `${path}.tables[${i}]`);
    for (const [i, c] of conditionals.entries()) node(c, `${path}.conditionals[${i}]`);
    const nodeRef = (v: unknown, at: string): string | null => {
      const n = optStr(v, at);
      if (n !== null && !next.has(n)) refuse(at, `the name of a table or conditional of ${path}`, n);
      return n;
    };
    const init = nodeRef(o.init_table, `${path}.init_table`);
    for (const [i, t] of tables.entries()) {
      const tp = `${path}.tables[${i}]`;
      const tb = t as J;
      const to = next.get(tb.name)!.to;
      for (const [k, id] of list(tb.action_ids, `${tp}.action_ids`).entries())
        int(id, `${tp}.action_ids[${k}]`, 0, this.#actionCount - 1);
      for (const [k, key] of list(tb.key, `${tp}.key`).entries()) {
        const kp = `${tp}.key[${k}]`;
        const ko = obj(key, kp);
        str(ko.match_type, `${kp}.match_type`);
        fieldRef(ko.target, `${kp}.target`);
        optNumberText(ko.mask, `${kp}.mask`);
        if (ko.name !== undefined && ko.name !== null) str(ko.name, `${kp}.name`);
      }
      if (tb.type !== undefined) str(tb.type, `${tp}.type`);
      if (tb.max_size !== undefined && tb.max_size !== null)
        int(tb.max_size, `${tp}.max_size`, 0, MAX_BMV2_ARRAY_SIZE);
      optBool(tb.with_counters, `${tp}.with_counters`);
      if (tb.default_entry !== undefined && tb.default_entry !== null) {
        const de = obj(tb.default_entry, `${tp}.default_entry`);
        int(de.action_id, `${tp}.default_entry.action_id`, 0, this.#actionCount - 1);
        for (const [k, d] of optList(de.action_data, `${tp}.default_entry.action_data`).entries())
          numberText(d, `${tp}.default_entry.action_data[${k}]`);
        optBool(de.action_const, `${tp}.default_entry.action_const`);
      }
      for (const [k, e] of optList(tb.entries, `${tp}.entries`).entries()) {
        const ep = `${tp}.entries[${k}]`;
        const en = obj(e, ep);
        for (const [m, mk] of list(en.match_key, `${ep}.match_key`).entries()) {
          const mp = `${ep}.match_key[${m}]`;
          const mo = obj(mk, mp);
          str(mo.match_type, `${mp}.match_type`);
          const needs = ENTRY_FIELDS[mo.match_type as string] ?? [];
          for (const f of ['key', 'mask', 'start', 'end'] as const) {
            if (needs.includes(f)) numberText(mo[f], `${mp}.${f}`);
            else optNumberText(mo[f], `${mp}.${f}`);
          }
          if (mo.match_type === 'lpm') int(mo.prefix_length, `${mp}.prefix_length`, 0, MAX_BMV2_WIDTH);
          if (mo.prefix_length !== undefined) int(mo.prefix_length, `${mp}.prefix_length`, 0, MAX_BMV2_WIDTH);
        }
        const ae = obj(en.action_entry, `${ep}.action_entry`);
        int(ae.action_id, `${ep}.action_entry.action_id`, 0, this.#actionCount - 1);
        for (const [m, d] of list(ae.action_data, `${ep}.action_entry.action_data`).entries())
          numberText(d, `${ep}.action_entry.action_data[${m}]`);
        if (en.priority !== undefined && en.priority !== null)
          int(en.priority, `${ep}.priority`, -0x80000000, 0x7fffffff);
      }
      const nt =
        tb.next_tables === undefined || tb.next_tables === null
          ? {}
          : obj(tb.next_tables, `${tp}.next_tables`);
      for (const [k, n] of Object.entries(nt)) to.push(nodeRef(n, `${tp}.next_tables.${k}`));
      to.push(nodeRef(tb.base_default_next, `${tp}.base_default_next`));
      if (tb.direct_meters !== undefined && tb.direct_meters !== null)
        str(tb.direct_meters, `${tp}.direct_meters`);
    }
    for (const [i, c] of conditionals.entries()) {
      const cp = `${path}.conditionals[${i}]`;
      const co = c as J;
      this.operand(co.expression, `${cp}.expression`, 0);
      next
        .get(co.name)!
        .to.push(nodeRef(co.true_next, `${cp}.true_next`), nodeRef(co.false_next, `${cp}.false_next`));
    }
    acyclic(next, init);
  }
}

/**
 * A pipeline's control graph must be acyclic: a packet walks it from init_table until it
 * leaves, and a cycle would walk forever. Depth-first, iteratively (no recursion to overflow).
 */
function acyclic(
  next: ReadonlyMap<string, { path: string; to: (string | null)[] }>,
  init: string | null,
): void {
  const state = new Map<string, 'open' | 'done'>();
  for (const start of [init, ...next.keys()]) {
    if (start === null || state.has(start)) continue;
    const stack: [string, number][] = [[start, 0]];
    state.set(start, 'open');
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const [name, k] = top;
      const to = next.get(name)!.to;
      if (k >= to.length) {
        state.set(name, 'done');
        stack.pop();
        continue;
      }
      top[1]++;
      const n = to[k];
      if (n === null || n === undefined) continue;
      const s = state.get(n);
      if (s === 'open')
        refuse(`${next.get(name)!.path}`, `a pipeline without cycles (${name} leads back to ${n})`, n);
      if (s === undefined) {
        state.set(n, 'open');
        stack.push([n, 0]);
      }
    }
  }
}
