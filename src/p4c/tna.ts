/**
 * The TNA rewrite: a v1model program, from the compiler's IR (never by re-reading source), as
 * P4_16 source for the TNA-style architecture in p4/tna.p4 — ingress parser, control and
 * deparser, egress parser, control and deparser, over TNA intrinsic metadata. The emitted
 * program starts with a comment saying what maps to what (tna-layout.ts) and what this
 * program needed beyond the plain mapping (bridging, re-parsing, dropped verifications).
 *
 * Semantics kept, by construction:
 * - v1model forwards to port 0 unless told otherwise: ingress starts with ucast_egress_port = 0;
 * - v1model zeroes metadata: the ingress parser's start state zeroes every metadata field;
 * - a drop is drop_ctl, and writing egress_spec undoes it, as writing egress_spec does in v1model;
 * - update_checksum runs after egress: it goes to the egress deparser, or to the ingress
 *   deparser when egress is empty (then egress passes the packet through untouched);
 * - metadata egress uses travels from ingress in a bridged header, and egress re-parses the
 *   packet the ingress deparser emitted with the same parser graph.
 * Anything else is a TnaUnsupportedError naming the construct.
 */

import type {
  IrAction,
  IrActionCall,
  IrControl,
  IrExpr,
  IrKeyMatch,
  IrProgram,
  IrStmt,
  IrTable,
  IrType,
} from './ir.js';
import { forEachChecksumExpr, forEachControlExpr, forEachProgramExpr } from './ir-walk.js';
import { type Structured, structure } from './tna-control.js';
import { emitParser, errorCode, type ParserWriter } from './tna-parser.js';
import { bitsLit, ident, Lines, lastSegment, literal, mask, typeText } from './tna-text.js';
import {
  BRIDGE,
  DROP_PORT,
  type EmitCtx as Ctx,
  type Gress,
  PARAMS,
  SCALARS,
  STD_MAP,
  STD_MAP_COMMENT,
  STD_META,
  TnaLayout,
  TnaUnsupportedError,
} from './tna-layout.js';

export { TnaUnsupportedError } from './tna-layout.js';

/** Metadata fields standing in for standard_metadata's error records. */
const PARSER_ERROR = 'std_parser_error';
const CHECKSUM_ERROR = 'std_checksum_error';

const CORE_ERRORS = new Set([
  'NoError',
  'PacketTooShort',
  'NoMatch',
  'StackOutOfBounds',
  'HeaderTooShort',
  'ParserTimeout',
  'ParserInvalidArgument',
]);
const HASH_ALGOS: Readonly<Record<string, string>> = {
  crc16: 'CRC16',
  crc32: 'CRC32',
  identity: 'IDENTITY',
  xor16: 'XOR16',
};
const COUNTER_TYPES = { packets: 'PACKETS', bytes: 'BYTES', packets_and_bytes: 'PACKETS_AND_BYTES' } as const;

export interface TnaRewrite {
  /** The program as P4_16 source for p4/tna.p4. */
  readonly source: string;
  /** Metadata fields carried from ingress to egress in the bridged header. */
  readonly bridged: readonly string[];
  /** Program-specific notes, also in the header comment. */
  readonly notes: readonly string[];
}

/** Rewrite a v1model program (its IR) for the TNA-style architecture. Throws TnaUnsupportedError. */
export function toTna(program: IrProgram): TnaRewrite {
  return new TnaWriter(program).write();
}

/** Local names of a control's tables and of the actions as a table refers to them. */
interface ControlNames {
  readonly table: (qname: string) => string;
  readonly action: (t: IrTable, action: string) => string;
}

class TnaWriter implements ParserWriter {
  readonly layout: TnaLayout;
  readonly notes: string[] = [];
  readonly scalarTypes = new Map<string, IrType>();
  readonly bridged = new Set<string>();
  readonly egressUsed: boolean;
  readonly actions: Map<string, IrAction>;
  parserErrorField: string | null = null;
  checksumErrorField: string | null = null;
  #temp = 0;

  constructor(readonly p: IrProgram) {
    this.layout = new TnaLayout(p);
    this.actions = new Map(p.actions.map((a) => [a.name, a]));
    this.egressUsed = p.egress.nodes.length > 0;
    this.collectScalars();
  }

  // ------------------------------------------------------------ analysis

  /** The declared type of every scalar (bool scalars are 1 bit wide in the IR layout). */
  collectScalars(): void {
    const scalars = this.p.headerTypes.find(
      (t) => t.name === this.p.headers.find((h) => h.name === SCALARS)?.type,
    );
    for (const f of scalars?.fields ?? []) {
      if (!f.name.startsWith('_padding'))
        this.scalarTypes.set(f.name, { k: 'bits', w: f.width, signed: f.signed });
    }
    const seeBool = (e: IrExpr): void => {
      if (e.k === 'field' && e.header === SCALARS && e.t.k === 'bool') this.scalarTypes.set(e.field, e.t);
      // v1model's error records have no TNA counterpart: kept in metadata when a program uses them.
      if (e.k === 'field' && e.header === STD_META && e.field === 'parser_error') {
        this.parserErrorField = PARSER_ERROR;
        this.scalarTypes.set(PARSER_ERROR, { k: 'bits', w: 32, signed: false });
      }
      if (e.k === 'field' && e.header === STD_META && e.field === 'checksum_error') {
        this.checksumErrorField = CHECKSUM_ERROR;
        this.scalarTypes.set(CHECKSUM_ERROR, { k: 'bits', w: 1, signed: false });
      }
    };
    forEachProgramExpr(this.p, seeBool);
    if (this.egressUsed) {
      // Metadata egress reads (or writes and then reads) must come from ingress: bridge it.
      const see = (e: IrExpr): void => {
        if (e.k === 'field' && e.header === SCALARS) this.bridged.add(e.field);
        if (e.k === 'field' && e.header === STD_META && e.field === 'ingress_port')
          this.bridged.add('ingress_port');
        if (e.k === 'field' && e.header === STD_META && e.field === 'parser_error')
          this.bridged.add(PARSER_ERROR);
        if (e.k === 'field' && e.header === STD_META && e.field === 'checksum_error')
          this.bridged.add(CHECKSUM_ERROR);
      };
      forEachControlExpr(this.p.egress, this.actions, see);
      for (const c of this.p.updateChecksums) forEachChecksumExpr(c, see);
    }
  }

  // ------------------------------------------------------------ expressions

  scalarPath(field: string, gress: Gress): string {
    return this.bridged.has(field) ? `hdr.${BRIDGE}.${ident(field)}` : `${PARAMS[gress].md}.${ident(field)}`;
  }

  stdRead(field: string, width: number, ctx: Ctx): string {
    if (ctx.gress === 'ingress' && field === 'egress_spec') {
      // A dropped packet reads as port 511 in v1model.
      return `((${PARAMS.ingress.dprsr}.drop_ctl[0:0] == 1w1) ? ${bitsLit(9, BigInt(DROP_PORT))} : ig_tm_md.ucast_egress_port)`;
    }
    if (field === 'parser_error' && this.parserErrorField)
      return this.scalarPath(this.parserErrorField, ctx.gress);
    if (field === 'checksum_error' && this.checksumErrorField)
      return this.scalarPath(this.checksumErrorField, ctx.gress);
    const m = STD_MAP[field]?.[ctx.gress];
    if (!m) {
      throw new TnaUnsupportedError(
        `standard_metadata.${field}`,
        `has no TNA equivalent in ${ctx.gress} (read in the ${ctx.gress} pipeline)`,
      );
    }
    return m.width === width ? m.path : `((bit<${width}>)${m.path})`;
  }

  fieldRead(header: string, field: string, width: number, ctx: Ctx): string {
    if (header === STD_META) return this.stdRead(field, width, ctx);
    if (header === SCALARS) return this.scalarPath(field, ctx.gress);
    if (field === '$valid$') return `${this.layout.header(header)}.isValid()`;
    return `${this.layout.header(header)}.${field}`;
  }

  expr(e: IrExpr, ctx: Ctx): string {
    switch (e.k) {
      case 'const':
        return literal(e.t, e.value);
      case 'field':
        return this.fieldRead(e.header, e.field, e.t.k === 'bits' ? e.t.w : 1, ctx);
      case 'valid':
        return `${this.layout.header(e.header)}.isValid()`;
      case 'param': {
        const name = ctx.params[e.index];
        if (name === undefined)
          throw new TnaUnsupportedError('an action parameter', `#${e.index} out of range`);
        return name;
      }
      case 'unop':
        return `(${e.op}${this.expr(e.arg, ctx)})`;
      case 'binop':
        return `(${this.expr(e.left, ctx)} ${e.op} ${this.expr(e.right, ctx)})`;
      case 'slice':
        return `${this.expr(e.arg, ctx)}[${e.hi}:${e.lo}]`;
      case 'concat':
        return `(${this.expr(e.left, ctx)} ++ ${this.expr(e.right, ctx)})`;
      case 'cast':
        return `((${typeText(e.t)})${this.expr(e.arg, ctx)})`;
      case 'cond':
        return `(${this.expr(e.test, ctx)} ? ${this.expr(e.ifTrue, ctx)} : ${this.expr(e.ifFalse, ctx)})`;
      case 'stackField':
        return `${this.layout.header(e.stack)}.last.${e.field}`;
      case 'lookahead':
        if (!ctx.parser) throw new TnaUnsupportedError('lookahead', 'outside a parser');
        return e.offset === 0
          ? `pkt.lookahead<bit<${e.width}>>()`
          : `pkt.lookahead<bit<${e.offset + e.width}>>()[${e.width - 1}:0]`;
    }
  }

  // ------------------------------------------------------------ statements

  /** An assignment, with standard metadata written through its TNA counterpart. */
  /** `constant`: the value when it is a compile-time constant (a drop is port 511), else null. */
  assign(
    target: Extract<IrExpr, { k: 'field' }>,
    value: string,
    constant: bigint | null,
    ctx: Ctx,
    L: Lines,
  ): void {
    if (target.header === STD_META) {
      const f = target.field;
      if (ctx.gress === 'ingress' && f === 'egress_spec') {
        L.line(`ig_tm_md.ucast_egress_port = ${value};`);
        // Port 511 is v1model's drop port; any other port undoes an earlier drop.
        if (constant !== null) {
          L.line(`${PARAMS.ingress.dprsr}.drop_ctl = ${constant === BigInt(DROP_PORT) ? '3w1' : '3w0'};`);
        } else {
          L.line(
            `${PARAMS.ingress.dprsr}.drop_ctl = ((ig_tm_md.ucast_egress_port == ${bitsLit(9, BigInt(DROP_PORT))}) ? 3w1 : 3w0);`,
          );
        }
        return;
      }
      const recorded =
        f === 'parser_error'
          ? this.parserErrorField
          : f === 'checksum_error'
            ? this.checksumErrorField
            : null;
      if (recorded) {
        L.line(`${this.scalarPath(recorded, ctx.gress)} = ${value};`);
        return;
      }
      const m = STD_MAP[f]?.[ctx.gress];
      if (!m?.writable) {
        throw new TnaUnsupportedError(
          `standard_metadata.${f}`,
          `is written in ${ctx.gress}, where TNA has no writable equivalent`,
        );
      }
      L.line(`${m.path} = ${value};`);
      return;
    }
    L.line(`${this.fieldRead(target.header, target.field, 0, ctx)} = ${value};`);
  }

  stmts(list: readonly IrStmt[], ctx: Ctx, L: Lines): void {
    for (const s of list) this.stmt(s, ctx, L);
  }

  stmt(s: IrStmt, ctx: Ctx, L: Lines): void {
    switch (s.k) {
      case 'assign':
        this.assign(s.target, this.expr(s.value, ctx), s.value.k === 'const' ? s.value.value : null, ctx, L);
        return;
      case 'copyHeader':
        L.line(`${this.layout.header(s.target)} = ${this.layout.header(s.source)};`);
        return;
      case 'setValid':
      case 'setInvalid':
        L.line(`${this.layout.header(s.header)}.${s.k}();`);
        return;
      case 'if':
        L.open(`if (${this.expr(s.test, ctx)}) {`);
        this.stmts(s.then, ctx, L);
        if (s.else.length > 0) {
          L.reopen('} else {');
          this.stmts(s.else, ctx, L);
        }
        L.close();
        return;
      case 'drop':
        L.line(`${PARAMS[ctx.gress].dprsr}.drop_ctl = 3w1;`);
        return;
      case 'exit':
        L.line('exit;');
        return;
      case 'count':
        L.line(`${this.externName(s.counter, ctx)}.count(${this.expr(s.index, ctx)});`);
        return;
      case 'registerRead':
        this.assign(
          s.target,
          `${this.externName(s.register, ctx)}.read(${this.expr(s.index, ctx)})`,
          null,
          ctx,
          L,
        );
        return;
      case 'registerWrite':
        L.line(
          `${this.externName(s.register, ctx)}.write(${this.expr(s.index, ctx)}, ${this.expr(s.value, ctx)});`,
        );
        return;
      case 'meter': {
        // TNA colors are GREEN 0, YELLOW 1, RED 3; v1model's are 0, 1, 2.
        const color = `color_${++this.#temp}`;
        const w = s.target.t.k === 'bits' ? s.target.t.w : 1;
        L.line(`bit<8> ${color} = ${this.externName(s.meter, ctx)}.execute(${this.expr(s.index, ctx)});`);
        this.assign(s.target, `((bit<${w}>)((${color} == 8w3) ? 8w2 : ${color}))`, null, ctx, L);
        return;
      }
      case 'hash':
        this.hash(s, ctx, L);
        return;
      case 'random':
        this.random(s, ctx, L);
        return;
      case 'push':
        L.line(`${this.layout.header(s.stack)}.push_front(${s.count});`);
        return;
      case 'pop':
        L.line(`${this.layout.header(s.stack)}.pop_front(${s.count});`);
        return;
      case 'log':
        // Debugging output has no data-plane equivalent on TNA; kept as a comment.
        L.line(`// log_msg(${JSON.stringify(s.message)})`);
        return;
      case 'assert':
        L.line(`// assert(${this.expr(s.test, ctx)}) — no TNA equivalent, kept as a comment`);
        return;
      default:
        // clone, resubmit, recirculate, digest: TNA does these with mirror/resubmit/digest
        // deparser externs and session tables this rewrite does not build.
        throw new TnaUnsupportedError((s as { readonly k: string }).k, 'is not rewritten for TNA');
    }
  }

  hash(s: Extract<IrStmt, { k: 'hash' }>, ctx: Ctx, L: Lines): void {
    const algo = HASH_ALGOS[s.algo];
    if (!algo) throw new TnaUnsupportedError(`hash algorithm ${s.algo}`, 'has no TNA Hash equivalent');
    const w = s.target.t.k === 'bits' ? s.target.t.w : 1;
    if (s.base.k !== 'const' || s.base.value !== 0n || s.max.k !== 'const') {
      throw new TnaUnsupportedError('hash with a base', 'or a run-time max (TNA hashes have neither)');
    }
    const max = s.max.value;
    const k = max === 0n ? w : max.toString(2).length - 1;
    if (max !== 0n && 1n << BigInt(k) !== max) {
      throw new TnaUnsupportedError(
        `hash with max ${max}`,
        '(TNA hashes reduce by width: only a power of two)',
      );
    }
    const bitsOut = Math.min(k, w);
    const name = `hash_${++this.#temp}`;
    ctx.decls.set(name, `Hash<bit<${bitsOut}>>(HashAlgorithm_t.${algo}) ${name};`);
    const data = s.data.map((d) => this.expr(d, ctx)).join(', ');
    const got = `${name}.get({ ${data} })`;
    this.assign(s.target, bitsOut === w ? got : `((bit<${w}>)${got})`, null, ctx, L);
  }

  random(s: Extract<IrStmt, { k: 'random' }>, ctx: Ctx, L: Lines): void {
    const w = s.target.t.k === 'bits' ? s.target.t.w : 1;
    const hi = s.hi.k === 'const' ? s.hi.value : -1n;
    const k = hi.toString(2).length;
    if (s.lo.k !== 'const' || s.lo.value !== 0n || hi < 0n || hi !== mask(k)) {
      throw new TnaUnsupportedError(
        'random over a range',
        'other than [0, 2^k-1] (TNA Random is uniform over bit<W>)',
      );
    }
    const name = `random_${++this.#temp}`;
    ctx.decls.set(name, `Random<bit<${k}>>() ${name};`);
    this.assign(s.target, k === w ? `${name}.get()` : `((bit<${w}>)${name}.get())`, null, ctx, L);
  }

  /** The control-level name of a counter/register/meter, declared in the control that uses it. */
  externName(qname: string, ctx: Ctx): string {
    const name = ident(lastSegment(qname));
    if (ctx.decls.has(name)) return name;
    const other = ctx.gress === 'ingress' ? this.egressExterns : this.ingressExterns;
    if (other.has(qname)) {
      throw new TnaUnsupportedError(
        `extern ${qname}`,
        'is used by both ingress and egress (TNA state is per pipeline half)',
      );
    }
    (ctx.gress === 'ingress' ? this.ingressExterns : this.egressExterns).add(qname);
    const counter = this.p.counters.find((c) => c.name === qname);
    const register = this.p.registers.find((r) => r.name === qname);
    const meter = this.p.meters.find((m) => m.name === qname);
    if (counter && counter.direct === null) {
      ctx.decls.set(
        name,
        `Counter<bit<32>, bit<32>>(${counter.size}, CounterType_t.${COUNTER_TYPES[counter.type]}) ${name};`,
      );
    } else if (counter) {
      ctx.decls.set(name, `DirectCounter<bit<32>>(CounterType_t.${COUNTER_TYPES[counter.type]}) ${name};`);
    } else if (register) {
      ctx.decls.set(name, `Register<bit<${register.width}>, bit<32>>(${register.size}) ${name};`);
    } else if (meter && meter.direct === null) {
      ctx.decls.set(name, `Meter<bit<32>>(${meter.size}, MeterType_t.${meter.type.toUpperCase()}) ${name};`);
    } else if (meter) {
      throw new TnaUnsupportedError(`direct_meter ${qname}`, 'is not rewritten (use an indexed meter)');
    } else {
      throw new TnaUnsupportedError(`extern ${qname}`, 'is unknown');
    }
    return name;
  }

  readonly ingressExterns = new Set<string>();
  readonly egressExterns = new Set<string>();

  // ------------------------------------------------------------ program

  write(): TnaRewrite {
    const L = new Lines();
    const body = new Lines();
    this.checkChecksums();
    this.typesAndStructs(body);
    emitParser(this, body, 'ingress');
    const ingress = this.control(this.p.ingress, 'ingress');
    body.out.push(...ingress);
    this.deparser(body, 'ingress');
    emitParser(this, body, 'egress');
    body.out.push(...this.control(this.p.egress, 'egress'));
    this.deparser(body, 'egress');
    body.line('Pipeline(IngressParser(), Ingress(), IngressDeparser(),');
    body.line('         EgressParser(), Egress(), EgressDeparser()) pipe;');
    body.line('Switch(pipe) main;');
    this.header(L);
    L.out.push(...body.out);
    return { source: `${L.out.join('\n')}\n`, bridged: [...this.bridged], notes: this.notes };
  }

  checkChecksums(): void {
    for (const c of this.p.updateChecksums) {
      if (c.withPayload)
        throw new TnaUnsupportedError('update_checksum_with_payload', '(TNA checksums cover headers only)');
    }
    if (this.p.verifyChecksums.length > 0) {
      this.notes.push(
        this.checksumErrorField
          ? `verify_checksum (${this.p.verifyChecksums.length}) runs in the ingress parser with Checksum.verify(), into ${CHECKSUM_ERROR}`
          : `verify_checksum (${this.p.verifyChecksums.length}) not emitted: nothing reads checksum_error, so it has no effect`,
      );
    }
    if (this.parserErrorField) {
      this.notes.push(
        `standard_metadata.parser_error is kept in ${PARSER_ERROR}: verify and no-match record their codes`,
      );
    }
    if (this.egressUsed) {
      this.notes.push('egress re-parses the packet the ingress deparser emitted, with the same parser graph');
    } else {
      this.notes.push('egress is empty: the egress parser extracts nothing and the packet passes through');
    }
    if (this.bridged.size > 0) {
      this.notes.push(`bridged from ingress to egress in hdr.${BRIDGE}: ${[...this.bridged].join(', ')}`);
    }
  }

  header(L: Lines): void {
    L.line(`/* ${this.p.name} rewritten for the TNA-style architecture (p4/tna.p4) by thunderpac's P4`);
    L.line(' * compiler, from its IR. What v1model construct became what:');
    for (const m of STD_MAP_COMMENT) L.line(` *   ${m}`);
    L.line(' * This program:');
    for (const n of this.notes) L.line(` *   - ${n}`);
    L.line(' */');
    L.line('#include <core.p4>');
    L.line('#include <tna.p4>');
    L.line();
  }

  typesAndStructs(L: Lines): void {
    const userErrors = this.p.errors.filter((e) => !CORE_ERRORS.has(e.name));
    if (userErrors.length > 0) {
      L.line(`error { ${userErrors.map((e) => e.name).join(', ')} }`);
      L.line();
    }
    const metaTypes = new Set(this.p.headers.filter((h) => h.metadata).map((h) => h.type));
    for (const t of this.p.headerTypes) {
      if (metaTypes.has(t.name)) continue;
      L.open(`header ${t.name} {`);
      for (const f of t.fields) {
        L.line(
          f.varbit ? `varbit<${f.width}> ${f.name};` : `${f.signed ? 'int' : 'bit'}<${f.width}> ${f.name};`,
        );
      }
      L.close();
      L.line();
    }
    for (const [name, members] of this.layout.unionTypes) {
      L.open(`header_union ${name} {`);
      for (const m of members) L.line(`${m.type} ${m.name};`);
      L.close();
      L.line();
    }
    if (this.bridged.size > 0) {
      L.open(`header ${BRIDGE}_t {`);
      let bits = 0;
      for (const f of this.bridged) {
        const t: IrType =
          f === 'ingress_port' && !this.scalarTypes.has(f)
            ? { k: 'bits', w: 9, signed: false }
            : this.scalarTypes.get(f)!;
        if (t.k === 'bool') {
          throw new TnaUnsupportedError(
            `bool metadata ${f}`,
            'used by egress (a bridged header field must be bit<W>)',
          );
        }
        L.line(`${typeText(t)} ${ident(f)};`);
        bits += t.w;
      }
      if (bits % 8 !== 0) L.line(`bit<${8 - (bits % 8)}> _pad;`);
      L.close();
      L.line();
    }
    L.open('struct headers_t {');
    if (this.bridged.size > 0) L.line(`${BRIDGE}_t ${BRIDGE};`);
    for (const m of this.layout.members) L.line(`${m.type} ${m.name};`);
    L.close();
    L.line();
    L.open('struct metadata_t {');
    for (const [f, t] of this.scalarTypes) L.line(`${typeText(t)} ${ident(f)};`);
    L.close();
    L.line();
  }

  // ------------------------------------------------------------ parsers

  // ------------------------------------------------------------ controls

  control(c: IrControl, gress: Gress): string[] {
    const decls = new Map<string, string>();
    const tablesText = new Lines();
    const actionsText = new Lines();
    const applyText = new Lines();
    const ctx: Ctx = { gress, params: [], decls, parser: false };
    const tree = structure(c, this.actions);
    const tables = c.nodes.filter((n): n is IrTable => n.k === 'table' && !n.synthetic);
    const names = new Map<string, string>();
    const taken = new Set<string>(['NoAction']);
    const localName = (qname: string): string => {
      const known = names.get(qname);
      if (known) return known;
      let n = ident(lastSegment(qname));
      for (let i = 0; taken.has(n); i++) n = `${ident(lastSegment(qname))}_${i}`;
      taken.add(n);
      names.set(qname, n);
      return n;
    };
    // Actions: each used by this control's tables, once; per table a copy when its direct
    // counter must count in every action.
    const emitted = new Set<string>();
    const emitAction = (a: IrAction, as: string, prefix: string[]): void => {
      const actx: Ctx = { ...ctx, params: a.params.map((p) => ident(p.name)) };
      const params = a.params.map((p) => `bit<${p.width}> ${ident(p.name)}`).join(', ');
      actionsText.open(`action ${as}(${params}) {`);
      for (const l of prefix) actionsText.line(l);
      this.stmts(a.body, actx, actionsText);
      actionsText.close();
    };
    const actionRef = (t: IrTable, a: string): string => {
      if (t.directCounter) return `${localName(t.name)}_${a === 'NoAction' ? 'NoAction' : localName(a)}`;
      return a === 'NoAction' ? 'NoAction' : localName(a);
    };
    for (const t of tables) {
      for (const a of t.actions) {
        const ir = this.actions.get(a);
        if (!ir) throw new TnaUnsupportedError(`action ${a}`, 'is not in the IR');
        if (t.directCounter) {
          const dc = this.externName(t.directCounter, ctx);
          emitAction(ir, actionRef(t, a), [`${dc}.count();`]);
        } else if (a !== 'NoAction' && !emitted.has(a)) {
          emitted.add(a);
          emitAction(ir, localName(a), []);
        }
      }
      if (t.directMeter)
        throw new TnaUnsupportedError(`direct_meter ${t.directMeter.meter}`, 'is not rewritten');
      this.table(t, localName(t.name), (a) => actionRef(t, a), ctx, tablesText);
    }
    if (gress === 'ingress') {
      applyText.line('ig_tm_md.ucast_egress_port = 0;  // v1model forwards to port 0 by default');
      if (this.parserErrorField) {
        // TNA flags a truncated header in parser_err (bit 1); v1model calls it PacketTooShort.
        const pe = this.scalarPath(this.parserErrorField, 'ingress');
        const tooShort = bitsLit(32, BigInt(errorCode(this.p, 'PacketTooShort')));
        applyText.line(`if ((${PARAMS.ingress.prsr}.parser_err & 16w2) != 16w0) {`);
        applyText.line(`    ${pe} = ${tooShort};`);
        applyText.line('}');
      }
    }
    this.structured(tree, ctx, applyText, { table: localName, action: actionRef });

    const L = new Lines();
    const P = PARAMS[gress];
    const sig =
      gress === 'ingress'
        ? `control Ingress(inout headers_t hdr, inout metadata_t ${P.md}, in ingress_intrinsic_metadata_t ${P.intr}, in ingress_intrinsic_metadata_from_parser_t ${P.prsr}, inout ingress_intrinsic_metadata_for_deparser_t ${P.dprsr}, inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {`
        : `control Egress(inout headers_t hdr, inout metadata_t ${P.md}, in egress_intrinsic_metadata_t ${P.intr}, in egress_intrinsic_metadata_from_parser_t ${P.prsr}, inout egress_intrinsic_metadata_for_deparser_t ${P.dprsr}, inout egress_intrinsic_metadata_for_output_port_t eg_oport_md) {`;
    L.open(sig);
    for (const d of decls.values()) L.line(d);
    const indent = (lines: readonly string[]) => lines.map((l) => (l === '' ? l : `    ${l}`));
    L.out.push(...indent(actionsText.out), ...indent(tablesText.out));
    L.open('apply {');
    L.out.push(...indent(indent(applyText.out)));
    L.close();
    L.close();
    L.line();
    return L.out;
  }

  table(t: IrTable, name: string, actionRef: (a: string) => string, ctx: Ctx, L: Lines): void {
    L.open(`@name("${t.name}") table ${name} {`);
    if (t.keys.length > 0) {
      L.open('key = {');
      for (const k of t.keys) {
        const read = this.fieldRead(k.target.header, k.target.field, k.width, ctx);
        const e = k.mask === null ? read : `(${read} & ${bitsLit(k.width, k.mask)})`;
        L.line(`${e}: ${k.match} @name(${JSON.stringify(k.name)});`);
      }
      L.close();
    }
    L.open('actions = {');
    for (const a of t.actions) L.line(`${actionRef(a)};`);
    L.close();
    const call = (c: IrActionCall): string => {
      const a = this.actions.get(c.action);
      const args = c.args.map((v, i) => bitsLit(a?.params[i]?.width ?? 32, v));
      return `${actionRef(c.action)}(${args.join(', ')})`;
    };
    if (t.entries.length > 0) {
      L.open('const entries = {');
      const entries = [...t.entries].sort((a, b) => a.priority - b.priority);
      for (const e of entries) {
        const ks = e.keys.map((k, i) => this.keyMatch(k, t.keys[i]!.width));
        L.line(`${ks.length === 1 ? ks[0] : `(${ks.join(', ')})`}: ${call(e.action)};`);
      }
      L.close();
    }
    L.line(`${t.defaultConst ? 'const ' : ''}default_action = ${call(t.defaultAction)};`);
    if (t.keys.length > 0) L.line(`size = ${t.size};`);
    if (t.directCounter) L.line(`counters = ${this.externName(t.directCounter, ctx)};`);
    L.close();
  }

  keyMatch(k: IrKeyMatch, w: number): string {
    switch (k.k) {
      case 'exact':
        return bitsLit(w, k.value);
      case 'lpm': {
        const m = k.prefix === 0 ? 0n : mask(w) ^ mask(w - k.prefix);
        return `${bitsLit(w, k.value)} &&& ${bitsLit(w, m)}`;
      }
      case 'ternary':
        return `${bitsLit(w, k.value)} &&& ${bitsLit(w, k.mask)}`;
      case 'range':
        return `${bitsLit(w, k.lo)} .. ${bitsLit(w, k.hi)}`;
      case 'optional':
        return k.wildcard ? '_' : bitsLit(w, k.value);
    }
  }

  structured(list: readonly Structured[], ctx: Ctx, L: Lines, names: ControlNames): void {
    const tableName = (t: IrTable): string => names.table(t.name);
    for (const s of list) {
      switch (s.k) {
        case 'inline': {
          const a = this.actions.get(s.table.defaultAction.action);
          if (a) this.stmts(a.body, ctx, L);
          break;
        }
        case 'apply':
          L.line(`${tableName(s.table)}.apply();`);
          break;
        case 'return':
          L.line('return;');
          break;
        case 'if':
          L.open(`if (${this.expr(s.test, ctx)}) {`);
          this.structured(s.whenTrue, ctx, L, names);
          if (s.whenFalse.length > 0) {
            L.reopen('} else {');
            this.structured(s.whenFalse, ctx, L, names);
          }
          L.close();
          break;
        case 'hit':
          if (s.hit.length === 0) {
            // Only the miss does something: `if (!t.apply().hit)`.
            L.open(`if (!${tableName(s.table)}.apply().hit) {`);
            this.structured(s.miss, ctx, L, names);
            L.close();
            break;
          }
          L.open(`if (${tableName(s.table)}.apply().hit) {`);
          this.structured(s.hit, ctx, L, names);
          if (s.miss.length > 0) {
            L.reopen('} else {');
            this.structured(s.miss, ctx, L, names);
          }
          L.close();
          break;
        case 'switch': {
          L.open(`switch (${tableName(s.table)}.apply().action_run) {`);
          for (const c of s.cases) {
            L.open(`${names.action(s.table, c.action)}: {`);
            this.structured(c.body, ctx, L, names);
            L.close();
          }
          if (s.otherwise.length > 0) {
            L.open('default: {');
            this.structured(s.otherwise, ctx, L, names);
            L.close();
          }
          L.close();
          break;
        }
      }
    }
  }

  // ------------------------------------------------------------ deparsers

  deparser(L: Lines, gress: Gress): void {
    const P = PARAMS[gress];
    const name = gress === 'ingress' ? 'IngressDeparser' : 'EgressDeparser';
    const dprsrType =
      gress === 'ingress'
        ? 'ingress_intrinsic_metadata_for_deparser_t'
        : 'egress_intrinsic_metadata_for_deparser_t';
    L.open(
      `control ${name}(packet_out pkt, inout headers_t hdr, in metadata_t ${P.md}, in ${dprsrType} ${P.dprsr}) {`,
    );
    // Checksums are computed after egress in v1model: in the last deparser that emits headers.
    const checksumsHere = gress === 'egress' ? this.egressUsed : !this.egressUsed;
    const emitsHeaders = gress === 'ingress' || this.egressUsed;
    const ctx: Ctx = { gress, params: [], decls: new Map(), parser: false };
    const updates = checksumsHere ? this.p.updateChecksums : [];
    for (const i of updates.keys()) L.line(`Checksum() checksum_${i};`);
    L.open('apply {');
    updates.forEach((c, i) => {
      const assign = `${this.fieldRead(c.target.header, c.target.field, 16, ctx)} = checksum_${i}.update({ ${c.data.map((d) => this.expr(d, ctx)).join(', ')} });`;
      // A checksum guarded by its own header's validity needs no guard: an invalid header is not emitted.
      const own = c.condition?.k === 'valid' && c.condition.header === c.target.header;
      if (c.condition && !own) {
        L.open(`if (${this.expr(c.condition, ctx)}) {`);
        L.line(assign);
        L.close();
      } else {
        L.line(assign);
      }
    });
    if (gress === 'ingress' && this.bridged.size > 0) L.line(`pkt.emit(hdr.${BRIDGE});`);
    if (emitsHeaders) for (const h of this.p.deparser.emit) L.line(`pkt.emit(${this.layout.header(h)});`);
    L.close();
    L.close();
    L.line();
  }
}
