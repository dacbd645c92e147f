/**
 * Lowering: the type-checked AST of a v1model program → the IR (ir.ts). Resolves the
 * `V1Switch(...) main` instantiation, lays out data (headers, stacks, metadata and the
 * `scalars` of locals), turns parser states into an op list plus select, controls into
 * graphs of table and conditional nodes (statements written directly in an apply block become
 * a synthetic action run by a synthetic one-action table, as p4c does for BMv2), inlines
 * action calls with copy-in/copy-out, and collects externs.
 */

import type {
  ActionDecl,
  Arg,
  ControlDecl,
  Decl,
  Expr,
  FunctionDecl,
  InstanceDecl,
  LocalDecl,
  Param,
  ParserDecl,
  Program,
  Stmt,
  TableDecl,
} from './ast.js';
import { fail, type SourcePos } from './errors.js';
import { type HoistContext, hoistCalls } from './hoist-calls.js';
import { inlineSubparsers } from './inline-subparsers.js';
import {
  BOOL,
  bits,
  type IrAction,
  type IrActionCall,
  type IrChecksum,
  type IrControl,
  type IrCounter,
  type IrEntry,
  type IrExpr,
  type IrField,
  type IrFieldRef,
  type IrHeader,
  type IrHeaderType,
  type IrKeyMatch,
  type IrKeysetElem,
  type IrMeter,
  type IrNode,
  type IrParser,
  type IrParserOp,
  type IrParserState,
  type IrProgram,
  type IrRegister,
  type IrSelectCase,
  type IrStack,
  type IrStmt,
  type IrTable,
  type IrTableKey,
  type IrUnion,
  type IrValueSet,
  type MatchKind,
} from './ir.js';
import { MAX_ARRAY_SIZE, MAX_INSTANCES } from './limits.js';
import { Checker, constRef, describeRef, irWidth, type Ref, type Scope, type Typed } from './typecheck.js';
import { bitTy, irTypeOf, mask, scalarWidth, showTy, TY_BOOL, type Ty } from './types.js';

const SCALARS = 'scalars';
const SCALARS_TYPE = 'scalars_0';
const STD_META = 'standard_metadata';

type Builder = (next: string | null) => string | null;

interface ControlCtx {
  readonly name: string;
  readonly nodes: IrNode[];
}

export class Lowerer extends Checker {
  readonly #headerTypes = new Map<string, IrHeaderType>();
  readonly #headers: IrHeader[] = [];
  readonly #stacks: IrStack[] = [];
  readonly #unions: IrUnion[] = [];
  readonly #scalars: IrField[] = [];
  readonly #scalarNames = new Set<string>();
  /** Values laid out by bindRoot (headers, stack elements, struct members, scalars). */
  #laidOut = 0;
  readonly #instanceNames = new Set<string>();
  readonly #actions = new Map<string, IrAction>();
  readonly #lowering = new Set<string>();
  readonly #counters = new Map<string, IrCounter>();
  readonly #registers = new Map<string, IrRegister>();
  readonly #meters = new Map<string, IrMeter>();
  readonly #directMeterTargets = new Map<string, IrFieldRef>();
  readonly #valueSets: IrValueSet[] = [];
  readonly #applied = new Set<string>();
  /** v1model field lists by @field_list index. */
  readonly #fieldLists = new Map<number, IrFieldRef[]>();
  /** The v1model pipeline being lowered: clone(I2E) and resubmit belong to ingress, the others to egress. */
  #pipe: 'ingress' | 'egress' | null = null;
  #digests = 0;
  #synth = 0;
  #hoisted = 0;
  #node = 0;
  #topInstances: InstanceDecl[] = [];

  lower(program: Program, name: string): IrProgram {
    this.#headerTypes.set(SCALARS_TYPE, { name: SCALARS_TYPE, fields: this.#scalars });
    this.#headers.push({ name: SCALARS, type: SCALARS_TYPE, metadata: true });
    this.#instanceNames.add(SCALARS);
    for (const d of program.decls) this.declare(d);
    const main = this.#topInstances.find((i) => i.type.k === 'named' && i.type.name === 'V1Switch');
    if (!main) {
      const last = program.decls[program.decls.length - 1];
      return fail(
        'semantic',
        last?.pos ?? { file: name, line: 1, col: 1 },
        'a `V1Switch(...) main;` instantiation (the v1model package)',
      );
    }
    for (const inst of this.#topInstances) {
      if (inst !== main) this.externInstance(inst, this.global);
    }
    if (main.args.length !== 6)
      fail(
        'type',
        main.pos,
        'the 6 arguments of V1Switch (parser, verify checksum, ingress, egress, compute checksum, deparser)',
        `${main.args.length}`,
      );
    const blocks = main.args.map((a, i) => this.blockArg(a, i === 0 ? 'parser' : 'control'));
    const parserDecl = blocks[0] as ParserDecl;
    const hTy = this.resolveType(this.paramAt(parserDecl, 1).type, this.global);
    const mTy = this.resolveType(this.paramAt(parserDecl, 2).type, this.global);
    const hRoot = this.bindRoot(hTy, 'hdr', parserDecl.params[1]!.pos);
    const mRoot = this.bindRoot(mTy, 'meta', parserDecl.params[2]!.pos);
    const smTy = this.resolveType(this.paramAt(parserDecl, 3).type, this.global);
    const smRoot = this.standardMetadata(smTy, parserDecl.params[3]!.pos);

    const roots = (kind: 'parser' | 'ingress' | 'checksum' | 'deparser'): Ref[] => {
      switch (kind) {
        case 'parser':
          return [{ k: 'packet', dir: 'in' }, hRoot, mRoot, smRoot];
        case 'ingress':
          return [hRoot, mRoot, smRoot];
        case 'checksum':
          return [hRoot, mRoot];
        case 'deparser':
          return [{ k: 'packet', dir: 'out' }, hRoot];
      }
    };
    const parser = this.lowerParser(parserDecl, roots('parser'));
    const verifyChecksums = this.lowerChecksums(blocks[1] as ControlDecl, roots('checksum'), 'verify');
    this.#pipe = 'ingress';
    const ingress = this.lowerControl(blocks[2] as ControlDecl, roots('ingress'));
    this.#pipe = 'egress';
    const egress = this.lowerControl(blocks[3] as ControlDecl, roots('ingress'));
    this.#pipe = null;
    const updateChecksums = this.lowerChecksums(blocks[4] as ControlDecl, roots('checksum'), 'update');
    const deparser = this.lowerDeparser(blocks[5] as ControlDecl, roots('deparser'));
    // BMv2 wants every header type a whole number of bytes: pad the scalars.
    const scalarBits = this.#scalars.reduce((n, f) => n + f.width, 0);
    if (scalarBits % 8 !== 0)
      this.#scalars.push({ name: '_padding_0', width: 8 - (scalarBits % 8), signed: false });
    return {
      name,
      headerTypes: [...this.#headerTypes.values()],
      headers: this.#headers,
      stacks: this.#stacks,
      unions: this.#unions,
      errors: [...this.errors].map(([n, value]) => ({ name: n, value })),
      parser,
      valueSets: this.#valueSets,
      verifyChecksums,
      ingress,
      egress,
      updateChecksums,
      deparser,
      actions: [...this.#actions.values()],
      counters: [...this.#counters.values()],
      registers: [...this.#registers.values()],
      meters: [...this.#meters.values()].map((m) => m),
      fieldLists: [...this.#fieldLists].map(([index, fields]) => ({ index, fields })),
    };
  }

  paramAt(d: ParserDecl | ControlDecl, i: number): Param {
    const p = d.params[i];
    if (!p)
      fail(
        'type',
        d.pos,
        `parameter ${i + 1} of ${d.name} as v1model declares it`,
        `${d.params.length} parameters`,
      );
    return p;
  }

  blockArg(a: Arg, kind: 'parser' | 'control'): ParserDecl | ControlDecl {
    const v = a.value;
    if (v.k !== 'call' || v.fn.k !== 'name')
      fail('type', a.pos, `an instantiation of a ${kind}, like MyBlock()`);
    const r = this.global.get(v.fn.name);
    if (r?.k !== 'decl' || r.decl.k !== kind)
      fail('type', v.fn.pos, `a ${kind} declaration`, `'${v.fn.name}'`);
    if (v.args.length > 0 || r.decl.ctorParams.length > 0)
      fail('unsupported', v.pos, `constructor parameters of ${kind} ${v.fn.name}`);
    return r.decl;
  }

  // ------------------------------------------------------------ declarations

  declare(d: Decl): void {
    const g = this.global;
    switch (d.k) {
      case 'header':
      case 'struct':
      case 'header_union': {
        if (d.typeParams.length > 0) fail('unsupported', d.pos, `generic ${d.k} types`);
        const fields = d.fields.map((f) => {
          const lists = f.annotations.filter((a) => a.name === 'field_list').flatMap((a) => a.args);
          return {
            name: f.name,
            ty: this.resolveType(f.type, g),
            ...(lists.length > 0 ? { fieldLists: lists } : {}),
          };
        });
        const k = d.k === 'header_union' ? 'union' : d.k;
        g.set(d.name, { k: 'type', ty: { k, name: d.name, fields } });
        return;
      }
      case 'typedef':
      case 'newtype':
        g.set(d.name, { k: 'type', ty: this.resolveType(d.type, g) });
        return;
      case 'enum': {
        const repr = d.repr ? this.resolveType(d.repr, g) : null;
        if (repr && repr.k !== 'bit')
          fail('type', d.repr!.pos, 'a bit<W> or int<W> underlying type', showTy(repr));
        const values = new Map<string, bigint>();
        for (const m of d.members) {
          if (repr) {
            if (!m.value) fail('type', m.pos, `a value for member ${m.name} of serializable enum ${d.name}`);
            const v = this.coerce(this.value(m.value, g), repr, m.value.pos);
            if (v.ir.k !== 'const') fail('type', m.value.pos, 'a compile-time constant enum value');
            values.set(m.name, v.ir.value);
          }
        }
        g.set(d.name, {
          k: 'type',
          ty: {
            k: 'enum',
            name: d.name,
            members: d.members.map((m) => m.name),
            repr: repr && repr.k === 'bit' ? { w: repr.w, signed: repr.signed } : null,
            values,
          },
        });
        return;
      }
      case 'error':
        for (const m of d.members) if (!this.errors.has(m.name)) this.errors.set(m.name, this.errors.size);
        return;
      case 'match_kind':
        for (const m of d.members) this.matchKinds.add(m.name);
        return;
      case 'const':
        g.set(d.name, this.constDecl(d, g));
        return;
      case 'action':
        g.set(d.name, { k: 'action', decl: d, qname: d.name, scope: g });
        return;
      case 'function':
      case 'parser':
      case 'control':
        g.set(d.name, { k: 'decl', decl: d });
        return;
      case 'parser_type':
      case 'control_type':
      case 'package_type':
        g.set(d.name, {
          k: 'type',
          ty: {
            k: 'block',
            kind: d.k === 'parser_type' ? 'parser' : d.k === 'control_type' ? 'control' : 'package',
            name: d.name,
          },
        });
        return;
      case 'extern_object':
        g.set(d.name, { k: 'type', ty: { k: 'extern', name: d.name, args: [] } });
        return;
      case 'extern_function':
        g.set(d.name, { k: 'externFn', name: d.name });
        return;
      case 'instance':
        this.#topInstances.push(d);
        return;
    }
  }

  constDecl(d: Extract<Decl, { k: 'const' }>, scope: Scope): Ref {
    const ty = this.resolveType(d.type, scope);
    const v = this.coerce(this.value(d.value, scope), ty, d.value.pos);
    if (v.ir.k !== 'const') fail('type', d.value.pos, 'a compile-time constant initializer');
    return { k: 'value', ir: v.ir, ty, lvalue: false };
  }

  /**
   * A size the switch allocates or loops over (an extern array, a value set, a table, a
   * push/pop count): a constant in 0..MAX_ARRAY_SIZE.
   */
  arraySize(e: Expr | null, at: SourcePos, scope: Scope, what: string): number {
    if (e === null) return fail('type', at, what);
    const v = this.constInt(e, scope, what);
    if (v < 0n) fail('type', e.pos, `${what} of at least 0`, String(v));
    if (v > BigInt(MAX_ARRAY_SIZE)) fail('limit', e.pos, `${what} of at most ${MAX_ARRAY_SIZE}`, String(v));
    return Number(v);
  }

  // ------------------------------------------------------------ data layout

  uniqueInstance(name: string): string {
    let n = name;
    for (let i = 0; this.#instanceNames.has(n); i++) n = `${name}_${i}`;
    this.#instanceNames.add(n);
    return n;
  }

  headerType(ty: Ty, pos: SourcePos): IrHeaderType {
    if (ty.k !== 'header') return fail('unsupported', pos, `${showTy(ty)} as a header`);
    const known = this.#headerTypes.get(ty.name);
    if (known) return known;
    const fields: IrField[] = [];
    let total = 0;
    let varbits = 0;
    for (const f of ty.fields) {
      const w = scalarWidth(f.ty);
      if (w === undefined || f.ty.k === 'error' || (f.ty.k === 'enum' && !f.ty.repr)) {
        fail('unsupported', pos, `header field ${ty.name}.${f.name} of type ${showTy(f.ty)}`);
      }
      if (f.ty.k === 'varbit') varbits++;
      fields.push({
        name: f.name,
        width: w,
        signed: f.ty.k === 'bit' && f.ty.signed,
        ...(f.ty.k === 'varbit' ? { varbit: true } : {}),
      });
      total += w;
    }
    if (varbits > 1) fail('unsupported', pos, `header ${ty.name} with more than one varbit field`);
    if (total % 8 !== 0)
      fail('type', pos, `header ${ty.name} to be a whole number of bytes`, `${total} bits`);
    const ht: IrHeaderType = { name: ty.name, fields };
    this.#headerTypes.set(ty.name, ht);
    return ht;
  }

  scalar(name: string, ty: Ty, pos: SourcePos): IrFieldRef {
    const t = irTypeOf(ty);
    const w = scalarWidth(ty);
    if (!t || w === undefined || ty.k === 'varbit')
      return fail('unsupported', pos, `a variable of type ${showTy(ty)}`);
    let n = name;
    for (let i = 0; this.#scalarNames.has(n); i++) n = `${name}_${i}`;
    this.#scalarNames.add(n);
    this.#scalars.push({ name: n, width: w, signed: ty.k === 'bit' && ty.signed });
    return { k: 'field', t, header: SCALARS, field: n };
  }

  /** Lay out a value of type `ty` named `path`: headers become instances, scalars go to `scalars`. */
  bindRoot(ty: Ty, path: string, pos: SourcePos, instanceName?: string): Ref {
    // Structs of structs multiply: ten levels of two members each are a thousand values.
    this.#laidOut += ty.k === 'stack' ? ty.size : 1;
    if (this.#laidOut > MAX_INSTANCES)
      fail('limit', pos, `at most ${MAX_INSTANCES} headers, stack elements and fields in the program`);
    switch (ty.k) {
      case 'header': {
        this.headerType(ty, pos);
        const header = this.uniqueInstance(instanceName ?? path);
        this.#headers.push({ name: header, type: ty.name, metadata: false });
        return { k: 'header', header, ty };
      }
      case 'stack': {
        if (ty.elem.k !== 'header') return fail('unsupported', pos, 'stacks of header unions');
        this.headerType(ty.elem, pos);
        const name = this.uniqueInstance(instanceName ?? path);
        const headers: string[] = [];
        for (let i = 0; i < ty.size; i++) {
          const h = this.uniqueInstance(`${name}[${i}]`);
          headers.push(h);
          this.#headers.push({ name: h, type: ty.elem.name, metadata: false });
        }
        this.#stacks.push({ name, type: ty.elem.name, size: ty.size, headers });
        return { k: 'stack', stack: name, headers, ty };
      }
      case 'struct': {
        const members = new Map<string, Ref>();
        for (const f of ty.fields) {
          const r = this.bindRoot(
            f.ty,
            `${path}.${f.name}`,
            pos,
            f.ty.k === 'header' || f.ty.k === 'stack' ? f.name : undefined,
          );
          members.set(f.name, r);
          for (const arg of f.fieldLists ?? []) {
            if (r.k !== 'value' || r.ir.k !== 'field')
              fail(
                'unsupported',
                arg.pos,
                `@field_list on ${path}.${f.name} (only on bit<W> metadata fields)`,
              );
            const index = this.constNumber(arg, 'a constant @field_list index');
            const list = this.#fieldLists.get(index) ?? [];
            list.push(r.ir);
            this.#fieldLists.set(index, list);
          }
        }
        return { k: 'struct', ty, members };
      }
      case 'union': {
        const name = this.uniqueInstance(instanceName ?? path);
        const headers = ty.fields.map((f) => {
          if (f.ty.k !== 'header')
            return fail('unsupported', pos, `header union member ${f.name} of type ${showTy(f.ty)}`);
          this.headerType(f.ty, pos);
          const h = this.uniqueInstance(`${name}_${f.name}`);
          this.#headers.push({ name: h, type: f.ty.name, metadata: false });
          return { name: f.name, header: h, type: f.ty.name, ty: f.ty };
        });
        this.#unions.push({
          name,
          type: ty.name,
          members: headers.map(({ name: n, header, type }) => ({ name: n, header, type })),
        });
        const members = new Map<string, Ref>();
        for (const h of headers) {
          const siblings = headers.filter((x) => x !== h).map((x) => x.header);
          members.set(h.name, { k: 'header', header: h.header, ty: h.ty, siblings });
        }
        return { k: 'struct', ty, members };
      }
      default: {
        const ir = this.scalar(path.replace(/\./g, '_'), ty, pos);
        return { k: 'value', ir, ty, lvalue: true };
      }
    }
  }

  standardMetadata(ty: Ty, pos: SourcePos): Ref {
    if (ty.k !== 'struct') return fail('type', pos, 'standard_metadata_t', showTy(ty));
    const fields: IrField[] = [];
    const members = new Map<string, Ref>();
    for (const f of ty.fields) {
      const t = irTypeOf(f.ty);
      const w = scalarWidth(f.ty);
      if (!t || w === undefined) fail('type', pos, 'scalar standard metadata fields', showTy(f.ty));
      fields.push({ name: f.name, width: w, signed: false });
      members.set(f.name, {
        k: 'value',
        ir: { k: 'field', t, header: STD_META, field: f.name },
        ty: f.ty,
        lvalue: true,
      });
    }
    const total = fields.reduce((n, f) => n + f.width, 0);
    if (total % 8 !== 0) fields.push({ name: '_padding', width: 8 - (total % 8), signed: false });
    this.#headerTypes.set(STD_META, { name: STD_META, fields });
    this.#headers.push({ name: STD_META, type: STD_META, metadata: true });
    this.#instanceNames.add(STD_META);
    return { k: 'struct', ty, members };
  }

  bindParams(params: readonly Param[], roots: readonly Ref[], scope: Scope, owner: string): void {
    params.forEach((p, i) => {
      const r = roots[i];
      if (!r) fail('type', p.pos, `the parameters v1model gives ${owner}`, `an extra parameter '${p.name}'`);
      scope.set(p.name, r);
    });
    if (params.length < roots.length)
      fail(
        'type',
        params[0]?.pos ?? { file: '', line: 0, col: 0 },
        `${roots.length} parameters of ${owner} as v1model declares them`,
        `${params.length}`,
      );
  }

  declareLocal(d: LocalDecl, scope: Scope, out: IrStmt[]): void {
    switch (d.k) {
      case 'var': {
        const ty = this.resolveType(d.type, scope);
        const r = this.bindRoot(
          ty,
          scope.qualify(d.name),
          d.pos,
          ty.k === 'header' || ty.k === 'stack' ? d.name : undefined,
        );
        scope.set(d.name, r);
        if (d.init) this.assign(r, d.init, scope, out, d.init.pos);
        return;
      }
      case 'const':
        scope.set(d.name, this.constDecl(d, scope));
        return;
      case 'action':
        scope.set(d.name, { k: 'action', decl: d, qname: scope.qualify(d.name), scope });
        return;
      case 'table':
        scope.set(d.name, { k: 'table', decl: d, qname: scope.qualify(d.name), scope });
        return;
      case 'instance': {
        const sub = d.type.k === 'named' ? scope.get(d.type.name) : undefined;
        if (sub?.k === 'decl' && sub.decl.k === 'control') {
          if (d.args.length > 0 || sub.decl.ctorParams.length > 0)
            fail('unsupported', d.pos, `constructor parameters of control ${sub.decl.name}`);
          scope.set(d.name, { k: 'subcontrol', decl: sub.decl, qname: scope.qualify(d.name) });
          return;
        }
        this.externInstance(d, scope);
        return;
      }
      case 'value_set': {
        const ty = this.resolveType(d.type, scope);
        if (ty.k !== 'bit') fail('unsupported', d.pos, `value_set of ${showTy(ty)} (only bit<W>)`);
        const name = scope.qualify(d.name);
        this.#valueSets.push({
          name,
          width: ty.w,
          size: this.arraySize(d.size, d.pos, scope, 'a constant size'),
        });
        scope.set(d.name, { k: 'valueSet', name, width: ty.w });
        return;
      }
      case 'function':
        fail('unsupported', d.pos, 'functions declared inside a parser or control');
    }
  }

  /**
   * A direct extern of another architecture bound to a table (`counters = c;`), which that
   * architecture's checker (tna-check.ts) has checked; v1model has none.
   */
  foreignDirectExtern(_r: Extract<Ref, { k: 'extern' }>): boolean {
    return false;
  }

  externInstance(d: InstanceDecl, scope: Scope): void {
    const ty = this.resolveType(d.type, scope);
    if (ty.k !== 'extern') fail('unsupported', d.pos, `instantiating ${showTy(ty)} here`);
    const qname = scope.qualify(d.name);
    const enumArg = (i: number, what: string, names: readonly string[]): string => {
      const a = d.args[i];
      if (a?.value.k !== 'member' || !names.includes(a.value.name))
        return fail('type', a?.pos ?? d.pos, what);
      return a.value.name;
    };
    switch (ty.name) {
      case 'counter':
        this.#counters.set(qname, {
          name: qname,
          size: this.arraySize(d.args[0]?.value ?? null, d.pos, scope, 'a constant size'),
          type: enumArg(1, 'a CounterType', ['packets', 'bytes', 'packets_and_bytes']) as IrCounter['type'],
          direct: null,
        });
        break;
      case 'direct_counter':
        this.#counters.set(qname, {
          name: qname,
          size: 0,
          type: enumArg(0, 'a CounterType', ['packets', 'bytes', 'packets_and_bytes']) as IrCounter['type'],
          direct: '',
        });
        break;
      case 'register': {
        const elem = ty.args[0];
        if (elem?.k !== 'bit')
          fail('unsupported', d.pos, `register<${elem ? showTy(elem) : ''}> (only register<bit<W>>)`);
        this.#registers.set(qname, {
          name: qname,
          size: this.arraySize(d.args[0]?.value ?? null, d.pos, scope, 'a constant size'),
          width: elem.w,
        });
        break;
      }
      case 'meter':
        this.#meters.set(qname, {
          name: qname,
          size: this.arraySize(d.args[0]?.value ?? null, d.pos, scope, 'a constant size'),
          type: enumArg(1, 'a MeterType', ['packets', 'bytes']) as IrMeter['type'],
          direct: null,
          resultWidth: 0,
        });
        break;
      case 'direct_meter':
        this.#meters.set(qname, {
          name: qname,
          size: 0,
          type: enumArg(0, 'a MeterType', ['packets', 'bytes']) as IrMeter['type'],
          direct: '',
          resultWidth: 0,
        });
        break;
      default:
        fail(
          'unsupported',
          d.pos,
          `extern ${ty.name} (supported: counter, direct_counter, meter, direct_meter, register)`,
        );
    }
    scope.set(d.name, { k: 'extern', kind: ty.name, qname, ty, decl: null });
  }

  // ------------------------------------------------------------ statements (straight-line)

  assign(target: Ref, valueExpr: Expr, scope: Scope, out: IrStmt[], pos: SourcePos): void {
    if (valueExpr.k === 'list' && (target.k === 'header' || target.k === 'struct')) {
      this.assignList(target, valueExpr, scope, out);
      return;
    }
    const fnDecl = this.functionCallee(valueExpr, scope);
    if (
      fnDecl &&
      valueExpr.k === 'call' &&
      ((target.k === 'value' && target.lvalue && target.ir.k === 'field') ||
        target.k === 'header' ||
        target.k === 'struct')
    ) {
      this.inlineFunction(fnDecl, valueExpr, scope, out, target);
      return;
    }
    if (target.k === 'value') {
      if (!target.lvalue || target.ir.k !== 'field')
        fail('type', pos, 'an assignable field or variable', describeRef(target));
      const v = this.coerce(this.value(valueExpr, scope), target.ty, valueExpr.pos);
      out.push({ k: 'assign', target: target.ir, value: v.ir });
      return;
    }
    const source = this.ref(valueExpr, scope);
    if (target.k === 'header' && source.k === 'header') {
      if (showTy(target.ty) !== showTy(source.ty))
        fail('type', valueExpr.pos, showTy(target.ty), showTy(source.ty));
      out.push({ k: 'copyHeader', target: target.header, source: source.header });
      return;
    }
    if (target.k === 'struct' && source.k === 'struct') {
      if (showTy(target.ty) !== showTy(source.ty))
        fail('type', valueExpr.pos, showTy(target.ty), showTy(source.ty));
      this.copyStruct(target, source, out, pos);
      return;
    }
    fail('unsupported', pos, `assigning ${describeRef(source)} to ${describeRef(target)}`);
  }

  /** `x[h:l] = v` → `x = (x & ~(m << l)) | ((v & m) << l)`. */
  assignSlice(target: Extract<Expr, { k: 'slice' }>, valueExpr: Expr, scope: Scope, out: IrStmt[]): void {
    // `x[7:4][3:0] = v` writes a slice of a slice: peel to the field, add up the offsets.
    let inner: Expr = target.base;
    while (inner.k === 'slice') inner = inner.base;
    const base = this.lvalueField(inner, scope);
    if (base.ty.k !== 'bit') fail('type', inner.pos, 'a bit<W> or int<W> field to slice', showTy(base.ty));
    const bounds = (e: IrExpr): { hi: number; lo: number } => {
      if (e.k !== 'slice') return { hi: -1, lo: 0 };
      const outer = bounds(e.arg);
      return { hi: outer.lo + e.hi, lo: outer.lo + e.lo };
    };
    const { hi, lo } = bounds(this.value(target, scope).ir);
    const w = hi - lo + 1;
    const v = this.coerce(this.value(valueExpr, scope), bitTy(w), valueExpr.pos);
    const t = base.ir.t;
    const W = base.ty.w;
    const keep = mask(W) & ~(mask(w) << BigInt(lo));
    const widened: IrExpr = { k: 'cast', t: bits(W), arg: v.ir };
    const shifted: IrExpr =
      lo === 0
        ? widened
        : {
            k: 'binop',
            t: bits(W),
            op: '<<',
            left: widened,
            right: { k: 'const', t: bits(32), value: BigInt(lo) },
          };
    const cleared: IrExpr = {
      k: 'binop',
      t: bits(W),
      op: '&',
      left: base.ty.signed ? { k: 'cast', t: bits(W), arg: base.ir } : base.ir,
      right: { k: 'const', t: bits(W), value: keep },
    };
    const merged: IrExpr = { k: 'binop', t: bits(W), op: '|', left: cleared, right: shifted };
    out.push({
      k: 'assign',
      target: base.ir,
      value: base.ty.signed ? { k: 'cast', t, arg: merged } : merged,
    });
  }

  /**
   * `h = { a, b, c }`: a list initializes a header (which becomes valid, as the P4_16 spec
   * says) or a struct field by field, in declaration order; nested lists nest.
   */
  assignList(
    target: Extract<Ref, { k: 'header' | 'struct' }>,
    list: Extract<Expr, { k: 'list' }>,
    scope: Scope,
    out: IrStmt[],
  ): void {
    const ty = target.ty;
    if (ty.k !== 'header' && ty.k !== 'struct') {
      fail('unsupported', list.pos, `a list assigned to ${showTy(ty)}`);
    }
    if (list.elems.length !== ty.fields.length)
      fail('type', list.pos, `${ty.fields.length} values for ${showTy(ty)}`, `${list.elems.length}`);
    if (target.k === 'header') {
      for (const h of target.siblings ?? []) out.push({ k: 'setInvalid', header: h });
      out.push({ k: 'setValid', header: target.header });
      ty.fields.forEach((f, i) => {
        const t = irTypeOf(f.ty);
        const e = list.elems[i]!;
        if (!t || f.ty.k === 'varbit')
          fail('unsupported', e.pos, `a list value for ${showTy(f.ty)} field ${f.name}`);
        const v = this.coerce(this.value(e, scope), f.ty, e.pos);
        out.push({
          k: 'assign',
          target: { k: 'field', t, header: target.header, field: f.name },
          value: v.ir,
        });
      });
      return;
    }
    ty.fields.forEach((f, i) => {
      const member = target.members.get(f.name);
      if (!member) fail('type', list.pos, `a member ${f.name} of ${showTy(ty)}`);
      this.assign(member, list.elems[i]!, scope, out, list.elems[i]!.pos);
    });
  }

  /** An `out` header starts invalid (P4_16: an uninitialized header is invalid). */
  invalidateHeaders(r: Ref, out: IrStmt[]): void {
    if (r.k === 'header') out.push({ k: 'setInvalid', header: r.header });
    else if (r.k === 'stack') for (const h of r.headers) out.push({ k: 'setInvalid', header: h });
    else if (r.k === 'struct') for (const m of r.members.values()) this.invalidateHeaders(m, out);
  }

  copyStruct(target: Ref, source: Ref, out: IrStmt[], pos: SourcePos): void {
    if (target.k === 'value' && source.k === 'value' && target.ir.k === 'field') {
      out.push({ k: 'assign', target: target.ir, value: source.ir });
    } else if (target.k === 'header' && source.k === 'header') {
      out.push({ k: 'copyHeader', target: target.header, source: source.header });
    } else if (target.k === 'stack' && source.k === 'stack') {
      for (const [i, h] of target.headers.entries())
        out.push({ k: 'copyHeader', target: h, source: source.headers[i]! });
    } else if (target.k === 'struct' && source.k === 'struct') {
      for (const [n, t] of target.members) this.copyStruct(t, source.members.get(n)!, out, pos);
    } else {
      fail('unsupported', pos, `copying ${describeRef(source)} to ${describeRef(target)}`);
    }
  }

  /** Straight-line statements: action bodies, and runs of simple statements in apply blocks. */
  stmts(list: readonly Stmt[], scope: Scope, out: IrStmt[], where: 'action' | 'apply' | 'parser'): void {
    for (const s of list) this.stmt(s, scope, out, where);
  }

  /** Function calls nested in expressions become statements first (hoist-calls.ts). */
  hoist(s: Stmt, scope: Scope): { pre: readonly Stmt[]; stmt: Stmt } {
    const ctx: HoistContext = {
      functionOf: (name) =>
        this.functionCallee(
          { k: 'call', pos: s.pos, fn: { k: 'name', pos: s.pos, name }, typeArgs: [], args: [] },
          scope,
        ),
      fresh: () => ++this.#hoisted,
    };
    return hoistCalls(s, ctx);
  }

  stmt(s0: Stmt, scope: Scope, out: IrStmt[], where: 'action' | 'apply' | 'parser'): void {
    const { pre, stmt: s } = this.hoist(s0, scope);
    for (const p of pre) this.stmt(p, scope, out, where);
    switch (s.k) {
      case 'empty':
        return;
      case 'block':
        this.stmts(s.body, scope.child(), out, where);
        return;
      case 'var':
        this.declareLocal(s.decl, scope, out);
        return;
      case 'const':
        scope.set(s.decl.name, this.constDecl(s.decl, scope));
        return;
      case 'assign':
        if (s.target.k === 'slice') {
          this.assignSlice(s.target, s.value, scope, out);
          return;
        }
        this.assign(this.ref(s.target, scope), s.value, scope, out, s.pos);
        return;
      case 'call':
        this.call(s.call as Extract<Expr, { k: 'call' }>, scope, out, where);
        return;
      case 'if': {
        if (where === 'parser') fail('unsupported', s.pos, 'if statements in parser states (use select)');
        const test = this.coerce(this.value(s.test, scope), TY_BOOL, s.test.pos);
        const then: IrStmt[] = [];
        const otherwise: IrStmt[] = [];
        this.stmt(s.then, scope.child(), then, where);
        if (s.else) this.stmt(s.else, scope.child(), otherwise, where);
        if (test.ir.k === 'const') out.push(...(test.ir.value ? then : otherwise));
        else out.push({ k: 'if', test: test.ir, then, else: otherwise });
        return;
      }
      case 'exit':
        if (where === 'parser') fail('type', s.pos, 'no exit in a parser');
        out.push({ k: 'exit' });
        return;
      case 'return':
        fail('unsupported', s.pos, 'return in a parser state');
        break;
      case 'switch': {
        if (where === 'parser') fail('unsupported', s.pos, 'switch statements in parser states (use select)');
        // A switch on a value inside an action: an if / else-if chain on the labels.
        const v = this.value(s.on, scope);
        if (v.ty.k !== 'bit' && v.ty.k !== 'enum' && v.ty.k !== 'error') {
          fail(
            'unsupported',
            s.on.pos,
            `switch on ${showTy(v.ty)} inside an action (only on bit<W>, enum or error values)`,
          );
        }
        const on: IrExpr =
          v.ir.k === 'const' || v.ir.k === 'field' ? v.ir : this.temp(v, scope, out, s.on.pos);
        let labels: Expr[] = [];
        const arms: { test: IrExpr | null; body: IrStmt[] }[] = [];
        for (const c of s.cases) {
          labels.push(...c.labels);
          if (!c.body && c !== s.cases[s.cases.length - 1]) continue;
          let test: IrExpr | null = null;
          let isDefault = false;
          for (const l of labels) {
            if (l.k === 'default') {
              isDefault = true;
              continue;
            }
            const lv = this.coerce(this.value(l, scope), v.ty, l.pos);
            if (lv.ir.k !== 'const') fail('type', l.pos, 'a compile-time constant switch label');
            const eq: IrExpr = { k: 'binop', t: BOOL, op: '==', left: on, right: lv.ir };
            test = test ? { k: 'binop', t: BOOL, op: '||', left: test, right: eq } : eq;
          }
          const body: IrStmt[] = [];
          if (c.body) this.stmt(c.body, scope.child(), body, where);
          arms.push({ test: isDefault ? null : test, body });
          labels = [];
        }
        let chain: IrStmt[] = [];
        for (let i = arms.length - 1; i >= 0; i--) {
          const { test, body: then } = arms[i]!;
          chain = test ? [{ k: 'if', test, then, else: chain }] : then;
        }
        out.push(...chain);
        return;
      }
    }
  }

  /** Evaluate once into a scalar, so a switch compares a stable value. */
  temp(v: Typed, _scope: Scope, out: IrStmt[], pos: SourcePos): IrFieldRef {
    const t = this.scalar('switch_value', v.ty, pos);
    out.push({ k: 'assign', target: t, value: v.ir });
    return t;
  }

  args(call: Extract<Expr, { k: 'call' }>, n: number, what: string): Expr[] {
    if (call.args.some((a) => a.name !== undefined))
      fail('unsupported', call.pos, `named arguments to ${what}`);
    if (call.args.length !== n)
      fail('type', call.pos, `${n} argument${n === 1 ? '' : 's'} to ${what}`, String(call.args.length));
    return call.args.map((a) => a.value);
  }

  call(
    c: Extract<Expr, { k: 'call' }>,
    scope: Scope,
    out: IrStmt[],
    where: 'action' | 'apply' | 'parser',
  ): void {
    const fn = c.fn;
    if (fn.k === 'member') {
      const m = fn.name;
      const base = this.ref(fn.base, scope);
      if (base.k === 'header') {
        if (m === 'setValid' || m === 'setInvalid') {
          this.args(c, 0, m);
          // Making one union member valid makes the others invalid (P4_16 spec, header unions).
          if (m === 'setValid') for (const h of base.siblings ?? []) out.push({ k: 'setInvalid', header: h });
          out.push({ k: m, header: base.header });
          return;
        }
        if (m === 'isValid') return;
      }
      if (base.k === 'struct' && base.ty.k === 'union' && m === 'setInvalid') {
        this.args(c, 0, m);
        for (const x of base.members.values())
          if (x.k === 'header') out.push({ k: 'setInvalid', header: x.header });
        return;
      }
      if (base.k === 'stack' && (m === 'push_front' || m === 'pop_front')) {
        const [n] = this.args(c, 1, m);
        const count = this.arraySize(n!, n!.pos, scope, 'a constant count');
        out.push({ k: m === 'push_front' ? 'push' : 'pop', stack: base.stack, count });
        return;
      }
      if (base.k === 'extern') {
        this.externMethod(base, m, c, scope, out);
        return;
      }
      if (base.k === 'table' && m === 'apply') {
        fail('unsupported', c.pos, `applying table ${base.qname} inside an action`);
      }
      if (base.k === 'packet')
        fail('type', c.pos, `packet.${m}() only in a parser (extract, advance) or deparser (emit)`);
      fail('type', fn.pos, `a method of ${describeRef(base)}`, `'${m}'`);
    }
    if (fn.k !== 'name') fail('type', c.pos, 'a function, action or method call');
    const r = scope.get(fn.name);
    if (!r) fail('type', fn.pos, 'a declared action or function', `'${fn.name}'`);
    if (r.k === 'action') {
      this.inlineAction(r, c, scope, out);
      return;
    }
    if (r.k === 'externFn') {
      this.externFunction(fn.name, c, scope, out, where);
      return;
    }
    if (r.k === 'decl' && r.decl.k === 'function') {
      this.inlineFunction(r.decl, c, scope, out, null);
      return;
    }
    fail('type', fn.pos, 'an action, function or extern function', describeRef(r));
  }

  externFunction(
    name: string,
    c: Extract<Expr, { k: 'call' }>,
    scope: Scope,
    out: IrStmt[],
    where: string,
  ): void {
    switch (name) {
      case 'mark_to_drop': {
        const [sm] = this.args(c, 1, name);
        const r = this.ref(sm!, scope);
        if (r.k !== 'struct' || r.members.get('egress_spec')?.k !== 'value')
          fail('type', sm!.pos, 'standard_metadata', describeRef(r));
        out.push({ k: 'drop' });
        return;
      }
      case 'verify': {
        if (where !== 'parser') fail('type', c.pos, 'verify() only in a parser');
        fail('semantic', c.pos, 'verify handled by the parser lowering');
        break;
      }
      case 'random': {
        const [o, lo, hi] = this.args(c, 3, name);
        const t = this.lvalueField(o!, scope);
        out.push({
          k: 'random',
          target: t.ir,
          lo: this.coerce(this.value(lo!, scope), t.ty, lo!.pos).ir,
          hi: this.coerce(this.value(hi!, scope), t.ty, hi!.pos).ir,
        });
        return;
      }
      case 'hash': {
        const [o, algo, base, data, max] = this.args(c, 5, name);
        const t = this.lvalueField(o!, scope);
        const al = algo!;
        if (al.k !== 'member') fail('type', al.pos, 'a HashAlgorithm member');
        const a = al.name;
        if (!['crc16', 'crc32', 'csum16', 'identity', 'xor16'].includes(a))
          fail(
            'unsupported',
            al.pos,
            `HashAlgorithm.${a} (supported: crc16, crc32, csum16, identity, xor16)`,
          );
        const b = this.value(base!, scope);
        const mx = this.value(max!, scope);
        if (b.ty.k !== 'bit' && b.ty.k !== 'int') fail('type', base!.pos, 'an integer base', showTy(b.ty));
        if (mx.ty.k !== 'bit' && mx.ty.k !== 'int') fail('type', max!.pos, 'an integer max', showTy(mx.ty));
        out.push({
          k: 'hash',
          target: t.ir,
          algo: a,
          base: this.sized(b, 32),
          data: this.dataList(data!, scope),
          max: this.sized(mx, 32),
        });
        return;
      }
      case 'clone':
      case 'clone_preserving_field_list': {
        const keep = name === 'clone_preserving_field_list';
        const a = this.args(c, keep ? 3 : 2, name);
        const type = this.cloneType(a[0]!, name);
        out.push({
          k: 'clone',
          type,
          session: this.sized(this.value(a[1]!, scope), 32),
          fieldList: keep ? this.constNumber(a[2]!, 'a constant field list index') : null,
        });
        return;
      }
      case 'resubmit_preserving_field_list':
      case 'recirculate_preserving_field_list': {
        const [i] = this.args(c, 1, name);
        const resubmit = name.startsWith('resubmit');
        const pipe = resubmit ? 'ingress' : 'egress';
        if (this.#pipe !== pipe) fail('type', c.pos, `${name} in the ${pipe} control`);
        out.push({
          k: resubmit ? 'resubmit' : 'recirculate',
          fieldList: this.constNumber(i!, 'a constant field list index'),
        });
        return;
      }
      case 'digest': {
        const [receiver, data] = this.args(c, 2, name);
        if (this.#pipe !== 'ingress') fail('type', c.pos, 'digest in the ingress control');
        const { name: list, values } = this.digestData(data!, scope);
        // copied where digest is called, as p4c does: later writes do not change the digest
        const n = this.#digests++;
        const fields = values.map((v, i) => {
          const t = this.scalar(`digest_${n}_${i}`, bitTy(v.t.k === 'bits' ? v.t.w : 1), c.pos);
          out.push({ k: 'assign', target: t, value: v });
          return t;
        });
        out.push({ k: 'digest', receiver: this.sized(this.value(receiver!, scope), 32), list, fields });
        return;
      }
      case 'log_msg': {
        const a = c.args[0]?.value;
        if (a?.k !== 'str' || c.args.length !== 1)
          fail('unsupported', c.pos, 'log_msg with arguments other than one string');
        out.push({ k: 'log', message: a.value });
        return;
      }
      case 'assert':
      case 'assume': {
        const [t] = this.args(c, 1, name);
        out.push({ k: 'assert', test: this.coerce(this.value(t!, scope), TY_BOOL, t!.pos).ir });
        return;
      }
      case 'verify_checksum':
      case 'update_checksum':
      case 'verify_checksum_with_payload':
      case 'update_checksum_with_payload':
        fail('type', c.pos, `${name} only in the v1model checksum controls`);
        break;
      default:
        fail(
          'unsupported',
          c.pos,
          `extern function ${name} (supported: mark_to_drop, hash, random, digest, clone, clone_preserving_field_list, resubmit_preserving_field_list, recirculate_preserving_field_list, log_msg, assert, assume, verify)`,
        );
    }
  }

  /** A compile-time integer (a literal, a constant, a serializable enum member). */
  constNumber(e: Expr, expected: string): number {
    const v = this.value(e, this.global);
    if (v.ir.k !== 'const') fail('type', e.pos, expected, 'a run-time value');
    return Number(v.ir.value);
  }

  /** `CloneType.I2E` / `CloneType.E2E`, checked against the pipeline it is called from. */
  cloneType(e: Expr, call: string): 'I2E' | 'E2E' {
    if (e.k !== 'member' || (e.name !== 'I2E' && e.name !== 'E2E'))
      fail('type', e.pos, 'CloneType.I2E or CloneType.E2E');
    const t = e.name as 'I2E' | 'E2E';
    const pipe = t === 'I2E' ? 'ingress' : 'egress';
    if (this.#pipe !== pipe) fail('type', e.pos, `${call}(CloneType.${t}, ...) in the ${pipe} control`);
    return t;
  }

  /** Values of a digest's data, flattened: struct members in order, header fields, values. */
  digestData(e: Expr, scope: Scope): { name: string; values: IrExpr[] } {
    const values: IrExpr[] = [];
    const walk = (r: Ref, x: Expr): void => {
      if (r.k === 'struct') {
        for (const m of r.members.values()) walk(m, x);
        return;
      }
      if (r.k === 'header') {
        const ht = this.headerType(r.ty, x.pos);
        for (const f of ht.fields)
          values.push({ k: 'field', t: bits(f.width, f.signed), header: r.header, field: f.name });
        return;
      }
      if (r.k === 'value') {
        if (r.ty.k !== 'bit' && r.ty.k !== 'bool')
          fail('type', x.pos, 'bit<W> values in digest data', showTy(r.ty));
        values.push(r.ty.k === 'bool' ? { k: 'cast', t: bits(1), arg: r.ir } : r.ir);
        return;
      }
      fail('type', x.pos, 'a struct, header or bit<W> value as digest data', describeRef(r));
    };
    if (e.k === 'list') {
      for (const x of e.elems) {
        const v = this.value(x, scope);
        if (v.ty.k !== 'bit' && v.ty.k !== 'bool')
          fail('type', x.pos, 'bit<W> values in digest data', showTy(v.ty));
        values.push(v.ty.k === 'bool' ? { k: 'cast', t: bits(1), arg: v.ir } : v.ir);
      }
      return { name: 'digest', values };
    }
    const r = this.ref(e, scope);
    walk(r, e);
    // p4c names the learn list after the data's struct type
    return { name: r.k === 'struct' && r.ty.k === 'struct' ? r.ty.name : 'digest', values };
  }

  sized(v: Typed, w: number): IrExpr {
    if (v.ir.k === 'const' && v.ty.k === 'int')
      return { k: 'const', t: bits(w), value: v.ir.value & mask(w) };
    return v.ir;
  }

  dataList(e: Expr, scope: Scope): IrExpr[] {
    const elems = e.k === 'list' ? e.elems : [e];
    const out: IrExpr[] = [];
    for (const x of elems) {
      const r = this.ref(x, scope);
      if (r.k === 'header') {
        const ht = this.headerType(r.ty, x.pos);
        for (const f of ht.fields)
          out.push({ k: 'field', t: bits(f.width, f.signed), header: r.header, field: f.name });
        continue;
      }
      const v = this.value(x, scope);
      if (v.ty.k !== 'bit' && v.ty.k !== 'bool')
        fail('type', x.pos, 'sized bit<W> values or headers in a checksum/hash list', showTy(v.ty));
      out.push(v.ty.k === 'bool' ? { k: 'cast', t: bits(1), arg: v.ir } : v.ir);
    }
    return out;
  }

  externMethod(
    base: Extract<Ref, { k: 'extern' }>,
    m: string,
    c: Extract<Expr, { k: 'call' }>,
    scope: Scope,
    out: IrStmt[],
  ): void {
    const idx = (e: Expr): IrExpr => this.sized(this.indexValue(e, scope), 32);
    switch (`${base.kind}.${m}`) {
      case 'counter.count': {
        const [i] = this.args(c, 1, 'count');
        out.push({ k: 'count', counter: base.qname, index: idx(i!) });
        return;
      }
      case 'direct_counter.count':
        // BMv2 counts a direct counter when its table hits; the call itself emits nothing.
        this.args(c, 0, 'count');
        return;
      case 'register.read': {
        const [o, i] = this.args(c, 2, 'read');
        const t = this.lvalueField(o!, scope);
        const reg = this.#registers.get(base.qname)!;
        if (irWidth(t.ty) !== reg.width)
          fail('type', o!.pos, `a bit<${reg.width}> destination`, showTy(t.ty));
        out.push({ k: 'registerRead', target: t.ir, register: base.qname, index: idx(i!) });
        return;
      }
      case 'register.write': {
        const [i, v] = this.args(c, 2, 'write');
        const reg = this.#registers.get(base.qname)!;
        const value = this.coerce(this.value(v!, scope), bitTy(reg.width), v!.pos);
        out.push({ k: 'registerWrite', register: base.qname, index: idx(i!), value: value.ir });
        return;
      }
      case 'meter.execute_meter': {
        const [i, o] = this.args(c, 2, 'execute_meter');
        const t = this.lvalueField(o!, scope);
        out.push({ k: 'meter', meter: base.qname, index: idx(i!), target: t.ir });
        return;
      }
      case 'direct_meter.read': {
        const [o] = this.args(c, 1, 'read');
        const t = this.lvalueField(o!, scope);
        this.#directMeterTargets.set(base.qname, t.ir);
        return;
      }
      default:
        fail('type', c.fn.pos, `a method of extern ${base.kind}`, `'${m}'`);
    }
  }

  indexValue(e: Expr, scope: Scope): Typed {
    const v = this.value(e, scope);
    if (v.ty.k === 'int') return v;
    if (v.ty.k !== 'bit') fail('type', e.pos, 'an index of type bit<W>', showTy(v.ty));
    if (v.ty.w === 32) return v;
    return { ir: { k: 'cast', t: bits(32), arg: v.ir }, ty: bitTy(32) };
  }

  /** An action called as a statement: its body inlined with copy-in/copy-out of arguments. */
  inlineAction(
    r: Extract<Ref, { k: 'action' }>,
    c: Extract<Expr, { k: 'call' }>,
    scope: Scope,
    out: IrStmt[],
  ): void {
    this.inline(r.qname, r.decl.params, r.decl.body, r.scope, c, scope, out, null);
  }

  /**
   * A function called as a statement or as `x = f(...)`, inlined like an action: its
   * `return e` statements become an assignment to a result temporary, early returns are
   * removed by moving the statements after them into the branches that do not return.
   */
  inlineFunction(
    d: FunctionDecl,
    c: Extract<Expr, { k: 'call' }>,
    scope: Scope,
    out: IrStmt[],
    target: Ref | null,
  ): void {
    if (d.typeParams.length > 0) fail('unsupported', d.pos, `generic function ${d.name}`);
    const ret = this.resolveType(d.ret, this.global);
    if (ret.k === 'void' && target) fail('type', c.pos, `a value returned by function ${d.name}`, 'void');
    this.inline(
      d.name,
      d.params,
      d.body,
      this.global,
      c,
      scope,
      out,
      ret.k === 'void' ? null : { ty: ret, target },
    );
  }

  inline(
    qname: string,
    params: readonly Param[],
    stmts: readonly Stmt[],
    declScope: Scope,
    c: Extract<Expr, { k: 'call' }>,
    scope: Scope,
    out: IrStmt[],
    ret: { ty: Ty; target: Ref | null } | null,
  ): void {
    if (this.#lowering.has(qname)) fail('type', c.pos, `no recursive call of ${qname}`);
    const args = this.orderArgs(params, c.args, c.pos, qname);
    const inner = declScope.child();
    const copyOut: IrStmt[] = [];
    params.forEach((p, i) => {
      const ty = this.resolveType(p.type, declScope);
      const a = args[i]!;
      if (ty.k === 'header' || ty.k === 'struct' || ty.k === 'stack') {
        // Headers and structs are copied in and out whole, through a private instance.
        const arg = this.ref(a, scope);
        if (!('ty' in arg) || showTy(arg.ty) !== showTy(ty))
          fail('type', a.pos, showTy(ty), describeRef(arg));
        const tmp = this.bindRoot(ty, `${qname}_${p.name}`.replace(/\./g, '_'), p.pos);
        if (p.dir === 'out') this.invalidateHeaders(tmp, out);
        else this.copyStruct(tmp, arg, out, a.pos);
        if (p.dir === 'out' || p.dir === 'inout') this.copyStruct(arg, tmp, copyOut, a.pos);
        inner.set(p.name, tmp);
        return;
      }
      if (p.dir === 'out' || p.dir === 'inout') {
        const target = this.lvalueField(a, scope);
        if (showTy(target.ty) !== showTy(ty)) fail('type', a.pos, showTy(ty), showTy(target.ty));
        const tmp = this.scalar(`${qname}.${p.name}`.replace(/\./g, '_'), ty, p.pos);
        if (p.dir === 'inout') out.push({ k: 'assign', target: tmp, value: target.ir });
        inner.set(p.name, { k: 'value', ir: tmp, ty, lvalue: true });
        copyOut.push({ k: 'assign', target: target.ir, value: tmp });
        return;
      }
      const v = this.coerce(this.value(a, scope), ty, a.pos);
      if (v.ir.k === 'const') {
        inner.set(p.name, { k: 'value', ir: v.ir, ty, lvalue: false });
        return;
      }
      // Copy-in: the callee must see the argument's value at the call, whatever it writes.
      const tmp = this.scalar(`${qname}.${p.name}`.replace(/\./g, '_'), ty, p.pos);
      out.push({ k: 'assign', target: tmp, value: v.ir });
      inner.set(p.name, { k: 'value', ir: tmp, ty, lvalue: false });
    });
    let result: Ref | null = null;
    if (ret) {
      result =
        ret.ty.k === 'header' || ret.ty.k === 'struct'
          ? this.bindRoot(ret.ty, `${qname}_result`, c.pos)
          : { k: 'value', ir: this.scalar(`${qname}_result`, ret.ty, c.pos), ty: ret.ty, lvalue: true };
      inner.set(RESULT, result);
    }
    this.#lowering.add(qname);
    const body: IrStmt[] = [];
    this.stmts(withoutReturns(stmts, ret !== null), inner, body, 'action');
    this.#lowering.delete(qname);
    // P4 order: the body, the copy-out of out/inout arguments, then the result to its target
    // (`x = f(x)` with an inout parameter ends with the returned value in x). An `exit` in
    // the body still copies out first, as the P4_16 spec says.
    out.push(...copyOutBeforeExit(body, copyOut), ...copyOut);
    if (ret?.target && result) {
      const target = ret.target;
      if (target.k === 'value' && target.ir.k === 'field' && result.k === 'value') {
        const v = this.coerce({ ir: result.ir, ty: ret.ty }, target.ty, c.pos);
        out.push({ k: 'assign', target: target.ir, value: v.ir });
      } else {
        if (!('ty' in target) || showTy(target.ty) !== showTy(ret.ty))
          fail('type', c.pos, describeRef(target), showTy(ret.ty));
        this.copyStruct(target, result, out, c.pos);
      }
    }
  }

  orderArgs(params: readonly Param[], args: readonly Arg[], pos: SourcePos, what: string): Expr[] {
    if (args.every((a) => a.name === undefined)) {
      if (args.length !== params.length)
        fail('type', pos, `${params.length} argument(s) to ${what}`, String(args.length));
      return args.map((a) => a.value);
    }
    return params.map((p) => {
      const a = args.find((x) => x.name === p.name);
      if (!a) return fail('type', pos, `an argument '${p.name}' to ${what}`);
      return a.value;
    });
  }

  functionCallee(e: Expr, scope: Scope): FunctionDecl | null {
    if (e.k !== 'call' || e.fn.k !== 'name') return null;
    const r = scope.get(e.fn.name);
    return r?.k === 'decl' && r.decl.k === 'function' ? r.decl : null;
  }

  /**
   * `actions = { a(hdr.x); }`: the leading (directional) parameters bound in the table's
   * actions list, the rest runtime data. The action is specialized for the binding, as p4c
   * does: its body inlined with copy-in/copy-out of the bound arguments.
   */
  boundTableAction(
    r: Extract<Ref, { k: 'action' }>,
    bound: readonly Arg[],
    scope: Scope,
    pos: SourcePos,
  ): IrAction {
    const d: ActionDecl = r.decl;
    const runtime = d.params.slice(bound.length);
    const inner = scope.child();
    const params = runtime.map((p, i) => {
      if (p.dir !== 'none')
        fail('type', p.pos, `a bound argument for directional parameter '${p.name}' of action ${d.name}`);
      const ty = this.resolveType(p.type, r.scope);
      const t = irTypeOf(ty);
      if (!t || ty.k === 'varbit') fail('unsupported', p.pos, `action parameter of type ${showTy(ty)}`);
      inner.set(`$runtime_${i}`, { k: 'value', ir: { k: 'param', t, index: i }, ty, lvalue: false });
      return { name: p.name, width: irWidth(ty) };
    });
    const call: Extract<Expr, { k: 'call' }> = {
      k: 'call',
      pos,
      fn: { k: 'name', pos, name: d.name },
      typeArgs: [],
      args: [
        ...bound,
        ...runtime.map((p, i) => ({
          pos: p.pos,
          value: { k: 'name' as const, pos: p.pos, name: `$runtime_${i}` },
        })),
      ],
    };
    const body: IrStmt[] = [];
    this.inline(r.qname, d.params, d.body, r.scope, call, inner, body, null);
    let name = r.qname;
    for (let i = 0; this.#actions.has(name); i++) name = `${r.qname}_${i}`;
    const a: IrAction = { name, params, body, synthetic: false };
    this.#actions.set(name, a);
    return a;
  }

  /** An action a table can run: directionless parameters become runtime data. */
  tableAction(r: Extract<Ref, { k: 'action' }>, pos: SourcePos): IrAction {
    const known = this.#actions.get(r.qname);
    if (known) return known;
    const d: ActionDecl = r.decl;
    const inner = r.scope.child();
    const params: { name: string; width: number }[] = [];
    d.params.forEach((p, i) => {
      if (p.dir !== 'none')
        fail('unsupported', p.pos, `directional parameter '${p.name}' of action ${d.name} used in a table`);
      const ty = this.resolveType(p.type, r.scope);
      const t = irTypeOf(ty);
      if (!t || ty.k === 'varbit') fail('unsupported', p.pos, `action parameter of type ${showTy(ty)}`);
      params.push({ name: p.name, width: irWidth(ty) });
      inner.set(p.name, { k: 'value', ir: { k: 'param', t, index: i }, ty, lvalue: false });
    });
    if (this.#lowering.has(r.qname)) fail('type', pos, `no recursive use of action ${r.qname}`);
    this.#lowering.add(r.qname);
    const body: IrStmt[] = [];
    this.stmts(withoutReturns(d.body, false), inner, body, 'action');
    this.#lowering.delete(r.qname);
    const a: IrAction = { name: r.qname, params, body, synthetic: false };
    this.#actions.set(r.qname, a);
    return a;
  }

  // ------------------------------------------------------------ controls

  lowerControl(d: ControlDecl, roots: readonly Ref[]): IrControl {
    const scope = this.global.child(d.name);
    this.bindParams(d.params, roots, scope, `control ${d.name}`);
    // Control-level variable initializers run at the start of every apply, as p4c does.
    const initializers: IrStmt[] = [];
    for (const l of d.locals) this.declareLocal(l, scope, initializers);
    const ctl: ControlCtx = { name: d.name, nodes: [] };
    const body = this.seq(d.apply, scope, ctl)(null);
    const init = initializers.length > 0 ? this.syntheticTable(ctl, initializers, body) : body;
    return { name: d.name, init, nodes: ctl.nodes };
  }

  /** Compile an apply-block statement list into a builder of table/conditional nodes. */
  seq(list: readonly Stmt[], scope: Scope, ctl: ControlCtx): Builder {
    const pieces: Builder[] = [];
    let batch: IrStmt[] = [];
    const flush = (terminal = false) => {
      if (batch.length > 0) {
        const b = batch;
        pieces.push((next) => this.syntheticTable(ctl, b, terminal ? null : next));
      }
      batch = [];
    };
    const queue = [...list];
    while (queue.length > 0) {
      // Calls hoisted out of the statement run before it, as statements of this list (a
      // hoisted table apply becomes a node like any other).
      const { pre, stmt: s } = this.hoist(queue.shift()!, scope);
      if (pre.length > 0) {
        queue.unshift(...pre, s);
        continue;
      }
      if (s.k === 'exit') {
        batch.push({ k: 'exit' });
        flush(true);
        pieces.push(() => null);
        break;
      }
      if (s.k === 'return') {
        if (s.value) fail('type', s.pos, 'no return value in a control');
        flush();
        pieces.push(() => null);
        break;
      }
      const sub = subcontrolApply(s, scope);
      if (sub) {
        flush();
        pieces.push(this.subcontrol(sub.ref, sub.call, scope, ctl));
        continue;
      }
      if (s.k === 'if' || s.k === 'switch' || s.k === 'block' || isTableApply(s, scope)) {
        flush();
        pieces.push(this.controlStmt(s, scope, ctl));
        continue;
      }
      this.stmt(s, scope, batch, 'apply');
    }
    flush();
    return (next) => pieces.reduceRight<string | null>((n, p) => p(n), next);
  }

  /**
   * `c.apply(args)` of a control instance: the control's locals and apply block, lowered in
   * place under the instance's name (tables become `Ingress.c.t`, as p4c names them). Its
   * parameters are bound to the arguments themselves: exactly copy-in/copy-out as long as no
   * two arguments overlap, which is checked; `in` values that are not paths are copied.
   */
  subcontrol(
    ref: Extract<Ref, { k: 'subcontrol' }>,
    c: Extract<Expr, { k: 'call' }>,
    scope: Scope,
    ctl: ControlCtx,
  ): Builder {
    const d = ref.decl;
    const inner = this.global.child(ref.qname);
    const args = this.orderArgs(d.params, c.args, c.pos, `${ref.qname}.apply`);
    const init: IrStmt[] = [];
    const paths: { path: string; pos: SourcePos }[] = [];
    d.params.forEach((p, i) => {
      const a = args[i]!;
      const ty = this.resolveType(p.type, this.global);
      const path = exprText(a);
      const isPath = a.k === 'name' || a.k === 'member' || a.k === 'index';
      if (isPath) {
        for (const o of paths) {
          if (o.path === path || o.path.startsWith(`${path}.`) || path.startsWith(`${o.path}.`))
            fail(
              'unsupported',
              a.pos,
              `arguments of ${ref.qname}.apply that overlap (${o.path} and ${path})`,
            );
        }
        paths.push({ path, pos: a.pos });
        const r = this.ref(a, scope);
        if ('ty' in r && showTy(r.ty) !== showTy(ty)) fail('type', a.pos, showTy(ty), describeRef(r));
        inner.set(p.name, r);
        return;
      }
      if (p.dir !== 'in' && p.dir !== 'none')
        fail('type', a.pos, `an assignable argument for ${p.dir} parameter ${p.name}`);
      const v = this.coerce(this.value(a, scope), ty, a.pos);
      if (v.ir.k === 'const') {
        inner.set(p.name, { k: 'value', ir: v.ir, ty, lvalue: false });
        return;
      }
      const tmp = this.scalar(`${ref.qname}.${p.name}`.replace(/\./g, '_'), ty, p.pos);
      init.push({ k: 'assign', target: tmp, value: v.ir });
      inner.set(p.name, { k: 'value', ir: tmp, ty, lvalue: false });
    });
    for (const l of d.locals) this.declareLocal(l, inner, init);
    const body = this.seq(d.apply, inner, ctl);
    return (next) => {
      const start = body(next);
      return init.length > 0 ? this.syntheticTable(ctl, init, start) : start;
    };
  }

  controlStmt(s: Stmt, scope: Scope, ctl: ControlCtx): Builder {
    if (s.k === 'block') return this.seq(s.body, scope.child(), ctl);
    if (s.k === 'call') {
      const t = this.tableOf(s.call as Extract<Expr, { k: 'call' }>, scope)!;
      return (next) =>
        this.tableNode(ctl, t, { byAction: null, hit: null, miss: null, hitMiss: false, base: next }, s.pos);
    }
    if (s.k === 'if') {
      const thenB = this.seq([s.then], scope.child(), ctl);
      const elseB = s.else ? this.seq([s.else], scope.child(), ctl) : null;
      const hm = this.hitMiss(s.test, scope);
      if (hm) {
        return (next) => {
          const a = thenB(next);
          const b = elseB ? elseB(next) : next;
          const [hit, miss] = hm.hit ? [a, b] : [b, a];
          return this.tableNode(
            ctl,
            hm.table,
            { byAction: null, hit, miss, hitMiss: true, base: next },
            s.pos,
          );
        };
      }
      const test = this.coerce(this.value(s.test, scope), TY_BOOL, s.test.pos);
      if (test.ir.k === 'const') return test.ir.value ? thenB : (elseB ?? ((n) => n));
      return (next) => {
        const a = thenB(next);
        const b = elseB ? elseB(next) : next;
        return this.condNode(ctl, test.ir, a, b);
      };
    }
    if (s.k === 'switch') return this.switchStmt(s, scope, ctl);
    return fail('semantic', s.pos, 'a control statement');
  }

  switchStmt(s: Extract<Stmt, { k: 'switch' }>, scope: Scope, ctl: ControlCtx): Builder {
    // Group fall-through labels with the next case that has a body.
    const groups: { labels: Expr[]; body: Builder | null; pos: SourcePos }[] = [];
    let pending: Expr[] = [];
    for (const c of s.cases) {
      pending.push(...c.labels);
      if (c.body || c === s.cases[s.cases.length - 1]) {
        groups.push({
          labels: pending,
          body: c.body ? this.seq([c.body], scope.child(), ctl) : null,
          pos: c.pos,
        });
        pending = [];
      }
    }
    const on = s.on;
    if (on.k === 'member' && on.name === 'action_run' && on.base.k === 'call') {
      const table = this.tableOf(on.base, scope);
      if (!table) fail('type', on.base.pos, 'a table apply() before .action_run');
      const ir = this.lowerTableDecl(table);
      const cases: { action: string | null; body: Builder | null }[] = [];
      for (const g of groups) {
        for (const l of g.labels) {
          if (l.k === 'default') {
            cases.push({ action: null, body: g.body });
            continue;
          }
          const r = l.k === 'name' ? table.scope.get(l.name) : undefined;
          if (r?.k !== 'action' || !ir.actions.includes(r.qname)) {
            fail(
              'type',
              l.pos,
              `an action of table ${table.qname}`,
              l.k === 'name' ? `'${l.name}'` : 'an expression',
            );
          }
          cases.push({ action: r.qname, body: g.body });
        }
      }
      return (next) => {
        const byAction: Record<string, string | null> = {};
        const dflt = cases.find((c) => c.action === null);
        const dfltNext = dflt?.body ? dflt.body(next) : next;
        for (const a of ir.actions) {
          const c = cases.find((x) => x.action === a);
          byAction[a] = c ? (c.body ? c.body(next) : next) : dfltNext;
        }
        return this.tableNode(
          ctl,
          table,
          { byAction, hit: null, miss: null, hitMiss: false, base: next },
          s.pos,
        );
      };
    }
    const v = this.value(on, scope);
    if (v.ty.k !== 'bit' && v.ty.k !== 'enum' && v.ty.k !== 'error')
      fail('type', on.pos, 'a bit<W>, enum or error value to switch on', showTy(v.ty));
    const tests = groups.map((g) => {
      let test: IrExpr | null = null;
      for (const l of g.labels) {
        if (l.k === 'default') return { test: null, body: g.body };
        const lv = this.coerce(this.value(l, scope), v.ty, l.pos);
        if (lv.ir.k !== 'const') fail('type', l.pos, 'a compile-time constant switch label');
        const eq: IrExpr = { k: 'binop', t: BOOL, op: '==', left: v.ir, right: lv.ir };
        test = test ? { k: 'binop', t: BOOL, op: '||', left: test, right: eq } : eq;
      }
      return { test, body: g.body };
    });
    return (next) => {
      let chain: string | null = next;
      for (let i = tests.length - 1; i >= 0; i--) {
        const t = tests[i]!;
        const body = t.body ? t.body(next) : next;
        chain = t.test ? this.condNode(ctl, t.test, body, chain) : body;
      }
      return chain;
    };
  }

  tableOf(c: Extract<Expr, { k: 'call' }>, scope: Scope): Extract<Ref, { k: 'table' }> | null {
    if (c.fn.k !== 'member' || c.fn.name !== 'apply') return null;
    const r = this.ref(c.fn.base, scope);
    if (r.k !== 'table') return null;
    if (c.args.length > 0) fail('type', c.pos, 'no arguments to apply()');
    return r;
  }

  hitMiss(e: Expr, scope: Scope): { table: Extract<Ref, { k: 'table' }>; hit: boolean } | null {
    if (e.k === 'unary' && e.op === '!') {
      const inner = this.hitMiss(e.arg, scope);
      return inner ? { table: inner.table, hit: !inner.hit } : null;
    }
    if (e.k === 'member' && (e.name === 'hit' || e.name === 'miss') && e.base.k === 'call') {
      const t = this.tableOf(e.base, scope);
      if (t) return { table: t, hit: e.name === 'hit' };
    }
    return null;
  }

  condNode(ctl: ControlCtx, test: IrExpr, trueNext: string | null, falseNext: string | null): string {
    const name = `node_${++this.#node}`;
    ctl.nodes.push({ k: 'cond', name, test, trueNext, falseNext });
    return name;
  }

  syntheticTable(ctl: ControlCtx, body: IrStmt[], next: string | null): string {
    const n = ++this.#synth;
    const action = `${ctl.name}.act_${n}`;
    this.#actions.set(action, { name: action, params: [], body, synthetic: true });
    const name = `${ctl.name}.tbl_act_${n}`;
    ctl.nodes.push({
      k: 'table',
      name,
      keys: [],
      actions: [action],
      defaultAction: { action, args: [] },
      defaultConst: true,
      entries: [],
      entriesConst: true,
      size: 1024,
      directCounter: null,
      directMeter: null,
      next: { byAction: null, hit: null, miss: null, hitMiss: false, base: next },
      synthetic: true,
    });
    return name;
  }

  readonly #tableDecls = new Map<string, Omit<IrTable, 'next'>>();
  /** Key computations to run before a table whose keys are expressions. */
  readonly #preKeys = new Map<string, IrStmt[]>();

  tableNode(ctl: ControlCtx, t: Extract<Ref, { k: 'table' }>, next: IrTable['next'], pos: SourcePos): string {
    if (this.#applied.has(t.qname))
      fail(
        'unsupported',
        pos,
        `applying table ${t.qname} more than once (BMv2 runs each table at one place in the pipeline)`,
      );
    this.#applied.add(t.qname);
    const ir = this.lowerTableDecl(t);
    ctl.nodes.push({ ...ir, next });
    const pre = this.#preKeys.get(t.qname) ?? [];
    return pre.length > 0 ? this.syntheticTable(ctl, pre, t.qname) : t.qname;
  }

  lowerTableDecl(t: Extract<Ref, { k: 'table' }>): Omit<IrTable, 'next'> {
    const known = this.#tableDecls.get(t.qname);
    if (known) return known;
    const d: TableDecl = t.decl;
    const scope = t.scope;
    const prop = (name: string) => d.props.find((p) => p.name === name);
    for (const p of d.props) {
      if (
        ![
          'key',
          'actions',
          'default_action',
          'entries',
          'size',
          'counters',
          'meters',
          'support_timeout',
        ].includes(p.name)
      ) {
        fail(
          'unsupported',
          p.pos,
          `table property '${p.name}' (supported: key, actions, default_action, entries, size, counters, meters)`,
        );
      }
    }
    const keys: IrTableKey[] = [];
    const preKeys: IrStmt[] = [];
    this.#preKeys.set(t.qname, preKeys);
    const keyProp = prop('key');
    if (keyProp) {
      if (keyProp.value.k !== 'keys') fail('syntax', keyProp.pos, 'key = { ... }');
      for (const k of keyProp.value.keys)
        keys.push(this.tableKey(k.expr, k.matchKind, k.pos, scope, t.qname.replace(/\./g, '_'), preKeys));
    }
    if (keys.filter((k) => k.match === 'lpm').length > 1)
      fail('type', d.pos, `at most one lpm key in table ${t.qname}`);
    const actionsProp = prop('actions');
    if (actionsProp?.value.k !== 'actions')
      return fail('type', d.pos, `an actions property in table ${t.qname}`);
    const actions: IrAction[] = [];
    for (const a of actionsProp.value.actions) {
      let e = a.call;
      const bound = e.k === 'call' ? e.args : [];
      if (e.k === 'call') e = e.fn;
      if (e.k !== 'name') fail('type', a.pos, 'an action name');
      const r = scope.get(e.name);
      if (r?.k !== 'action') fail('type', a.pos, 'an action', `'${e.name}'`);
      actions.push(
        bound.length > 0 ? this.boundTableAction(r, bound, scope, a.pos) : this.tableAction(r, a.pos),
      );
    }
    const dflt = prop('default_action');
    let defaultAction: IrActionCall;
    if (dflt) {
      if (dflt.value.k !== 'expr') fail('syntax', dflt.pos, 'default_action = action(args);');
      defaultAction = this.actionCall(dflt.value.expr, actions, scope);
    } else {
      // P4_16: a table without default_action runs NoAction on a miss.
      const noAction = this.global.get('NoAction');
      if (noAction?.k !== 'action')
        return fail('type', d.pos, `a default_action for table ${t.qname} (NoAction is not declared)`);
      if (!actions.some((a) => a.name === 'NoAction')) actions.push(this.tableAction(noAction, d.pos));
      defaultAction = { action: 'NoAction', args: [] };
    }
    const entries: IrEntry[] = [];
    const entriesProp = prop('entries');
    if (entriesProp) {
      if (entriesProp.value.k !== 'entries') fail('syntax', entriesProp.pos, 'entries = { ... }');
      const prioritized = keys.some(
        (k) => k.match === 'ternary' || k.match === 'range' || k.match === 'optional',
      );
      entriesProp.value.entries.forEach((en, i) => {
        if (en.priority)
          fail(
            'unsupported',
            en.priority.pos,
            'explicit entry priorities (entries match in the order written)',
          );
        const ks = en.keys.k === 'list' && keys.length !== 1 ? en.keys.elems : [en.keys];
        if (ks.length !== keys.length)
          fail('type', en.keys.pos, `${keys.length} key value(s)`, String(ks.length));
        const matches = ks.map((x, j) => this.keyMatch(x, keys[j]!, scope));
        // `@priority(n)` overrides the written order (p4c's BMv2 form: a lower number wins).
        const annotated = en.annotations?.find((a) => a.name === 'priority');
        const priority = annotated
          ? Number(this.constInt(annotated.args[0] ?? en.action, scope, 'a constant @priority'))
          : i + 1;
        entries.push({
          keys: matches,
          action: this.actionCall(en.action, actions, scope),
          priority: prioritized ? priority : 1,
        });
      });
    }
    const sizeProp = prop('size');
    const size =
      sizeProp && sizeProp.value.k === 'expr'
        ? this.arraySize(sizeProp.value.expr, sizeProp.value.expr.pos, scope, 'a constant table size')
        : 1024;
    let directCounter: string | null = null;
    const counters = prop('counters');
    if (counters && counters.value.k === 'expr') {
      const r = this.ref(counters.value.expr, scope);
      if (!(r.k === 'extern' && this.foreignDirectExtern(r))) {
        if (r.k !== 'extern' || r.kind !== 'direct_counter')
          fail('type', counters.pos, 'a direct_counter instance', describeRef(r));
        const c = this.#counters.get(r.qname)!;
        this.#counters.set(r.qname, { ...c, direct: t.qname, size });
        directCounter = r.qname;
      }
    }
    let directMeter: IrTable['directMeter'] = null;
    const meters = prop('meters');
    if (meters && meters.value.k === 'expr') {
      const r = this.ref(meters.value.expr, scope);
      if (r.k !== 'extern' || r.kind !== 'direct_meter')
        fail('type', meters.pos, 'a direct_meter instance', describeRef(r));
      const target = this.#directMeterTargets.get(r.qname);
      if (!target) fail('type', meters.pos, `a ${r.qname}.read(result) call in one of the table's actions`);
      const m = this.#meters.get(r.qname)!;
      this.#meters.set(r.qname, {
        ...m,
        direct: t.qname,
        size,
        resultWidth: target.t.k === 'bits' ? target.t.w : 1,
      });
      directMeter = { meter: r.qname, target };
    }
    const ir: Omit<IrTable, 'next'> = {
      k: 'table',
      name: t.qname,
      keys,
      actions: actions.map((a) => a.name),
      defaultAction,
      defaultConst: dflt?.isConst ?? false,
      entries,
      entriesConst: entriesProp?.isConst ?? false,
      size,
      directCounter,
      directMeter,
      synthetic: false,
    };
    this.#tableDecls.set(t.qname, ir);
    return ir;
  }

  tableKey(
    e: Expr,
    matchKind: string,
    pos: SourcePos,
    scope: Scope,
    tableName: string,
    preKeys: IrStmt[],
  ): IrTableKey {
    if (!this.matchKinds.has(matchKind)) fail('type', pos, 'a declared match_kind', `'${matchKind}'`);
    if (!['exact', 'lpm', 'ternary', 'range', 'optional'].includes(matchKind))
      fail('unsupported', pos, `match kind '${matchKind}'`);
    const name = exprText(e);
    if (e.k === 'call' && e.fn.k === 'member' && e.fn.name === 'isValid') {
      const r = this.ref(e.fn.base, scope);
      if (r.k !== 'header') fail('type', e.fn.base.pos, 'a header', describeRef(r));
      return {
        match: matchKind as MatchKind,
        name,
        target: { header: r.header, field: '$valid$' },
        width: 1,
        mask: null,
      };
    }
    const r = this.ref(e, scope);
    if (r.k === 'value' && r.ir.k !== 'field') {
      // A key expression (slice, arithmetic...): computed into a scalar by a synthetic action
      // that runs just before the table, as p4c does for BMv2.
      const v = this.value(e, scope);
      if (v.ty.k === 'int' || !irTypeOf(v.ty)) fail('type', e.pos, 'a sized table key', showTy(v.ty));
      const tmp = this.scalar(`${tableName}_key`, v.ty, e.pos);
      preKeys.push({ k: 'assign', target: tmp, value: v.ir });
      return {
        match: matchKind as MatchKind,
        name,
        target: { header: tmp.header, field: tmp.field },
        width: irWidth(v.ty),
        mask: null,
      };
    }
    if (r.k !== 'value' || r.ir.k !== 'field') {
      return fail(
        'type',
        e.pos,
        'a table key: a field, a variable, an expression or isValid()',
        describeRef(r),
      );
    }
    return {
      match: matchKind as MatchKind,
      name,
      target: { header: r.ir.header, field: r.ir.field },
      width: irWidth(r.ty),
      mask: null,
    };
  }

  keyMatch(x: Expr, key: IrTableKey, scope: Scope): IrKeyMatch {
    const w = key.width;
    const full = mask(w);
    const cv = (e: Expr): bigint => {
      const v = this.value(e, scope);
      if (v.ir.k !== 'const') fail('type', e.pos, 'a compile-time constant key value');
      if (v.ty.k === 'bit' && v.ty.w !== w) fail('type', e.pos, `a value of bit<${w}>`, showTy(v.ty));
      if (v.ir.value < 0n || v.ir.value > full) {
        if (v.ty.k === 'bit' && v.ty.signed) return v.ir.value & full;
        fail('type', e.pos, `a value that fits in ${w} bits`, String(v.ir.value));
      }
      return v.ir.value;
    };
    const isDefault = x.k === 'default' || (x.k === 'name' && x.name === '_');
    switch (key.match) {
      case 'exact':
        if (isDefault || x.k === 'mask' || x.k === 'range')
          fail('type', x.pos, `an exact value for key ${key.name}`);
        return { k: 'exact', value: cv(x) };
      case 'lpm': {
        if (isDefault) return { k: 'lpm', value: 0n, prefix: 0 };
        if (x.k === 'range') fail('type', x.pos, `a value or value &&& prefix-mask for lpm key ${key.name}`);
        if (x.k !== 'mask') return { k: 'lpm', value: cv(x), prefix: w };
        const m = cv(x.mask);
        const prefix = prefixLength(m, w);
        if (prefix === null)
          fail(
            'type',
            x.mask.pos,
            `a prefix mask (ones then zeros) for lpm key ${key.name}`,
            `0x${m.toString(16)}`,
          );
        return { k: 'lpm', value: cv(x.value) & m, prefix };
      }
      case 'ternary':
        if (isDefault) return { k: 'ternary', value: 0n, mask: 0n };
        if (x.k === 'range') fail('type', x.pos, `a value or value &&& mask for ternary key ${key.name}`);
        if (x.k === 'mask') {
          const m = cv(x.mask);
          return { k: 'ternary', value: cv(x.value) & m, mask: m };
        }
        return { k: 'ternary', value: cv(x), mask: full };
      case 'range':
        if (isDefault) return { k: 'range', lo: 0n, hi: full };
        if (x.k === 'range') return { k: 'range', lo: cv(x.lo), hi: cv(x.hi) };
        if (x.k === 'mask') fail('type', x.pos, `a value or lo..hi for range key ${key.name}`);
        {
          const v = cv(x);
          return { k: 'range', lo: v, hi: v };
        }
      case 'optional':
        if (isDefault) return { k: 'optional', value: 0n, wildcard: true };
        if (x.k === 'mask' || x.k === 'range')
          fail('type', x.pos, `a value or _ for optional key ${key.name}`);
        return { k: 'optional', value: cv(x), wildcard: false };
    }
  }

  actionCall(e: Expr, actions: readonly IrAction[], scope: Scope): IrActionCall {
    const callee = e.k === 'call' ? e.fn : e;
    const args = e.k === 'call' ? e.args : [];
    if (callee.k !== 'name') return fail('type', e.pos, 'an action call');
    const r = scope.get(callee.name);
    if (r?.k !== 'action') return fail('type', callee.pos, 'an action', `'${callee.name}'`);
    const a = actions.find((x) => x.name === r.qname);
    if (!a) return fail('type', callee.pos, `an action listed in the table's actions`, `'${callee.name}'`);
    // Only the runtime parameters take values here (the leading ones may be bound in the list).
    const params = r.decl.params.slice(r.decl.params.length - a.params.length);
    const exprs = this.orderArgs(params, args, e.pos, `action ${callee.name}`);
    const values = exprs.map((x, i) => {
      const ty = this.resolveType(params[i]!.type, r.scope);
      const v = this.coerce(this.value(x, scope), ty, x.pos);
      if (v.ir.k !== 'const') fail('type', x.pos, 'a compile-time constant action argument');
      return v.ir.value & mask(irWidth(ty));
    });
    return { action: a.name, args: values };
  }

  // ------------------------------------------------------------ parser

  lowerParser(parser: ParserDecl, roots: readonly Ref[]): IrParser {
    const d = inlineSubparsers(parser, (name) => {
      const r = this.global.get(name);
      return r?.k === 'decl' && r.decl.k === 'parser' ? r.decl : null;
    });
    const scope = this.global.child(d.name);
    this.bindParams(d.params, roots, scope, `parser ${d.name}`);
    const init: IrStmt[] = [];
    for (const l of d.locals) this.declareLocal(l, scope, init);
    if (init.length > 0)
      fail(
        'unsupported',
        d.locals[0]!.pos,
        'initialized parser-level variables (assign them in the start state)',
      );
    const names = new Set(d.states.map((s) => s.name));
    if (!names.has('start')) fail('type', d.pos, `a 'start' state in parser ${d.name}`);
    const states: IrParserState[] = [];
    const finish = (
      s: ParserDecl['states'][number],
      st: Scope,
      name: string,
      ops: IrParserOp[],
    ): IrParserState => {
      const t = s.transition;
      if (!t) return fail('syntax', s.pos, `a transition at the end of state ${s.name}`);
      const target = (n: string, pos: SourcePos): string | null => {
        if (n === 'accept') return null;
        if (n === 'reject') return 'reject';
        if (!names.has(n)) fail('type', pos, 'a state of this parser, accept or reject', `'${n}'`);
        return n;
      };
      if (t.k === 'goto') return { name, ops, keys: [], cases: [{ keys: [], next: target(t.next, t.pos) }] };
      const keys: IrExpr[] = t.on.map((k) => {
        const la = this.lookahead(k, st);
        if (la) return la;
        const last = this.stackLast(k, st);
        if (last) return last;
        const v = this.value(k, st);
        if (v.ty.k === 'bool') fail('unsupported', k.pos, 'select on a bool (cast it to bit<1>)');
        if (v.ir.t.k !== 'bits') fail('type', k.pos, 'a bit<W> select key', showTy(v.ty));
        if (v.ir.k === 'field') return v.ir;
        // BMv2 selects on fields: compute other expressions into a scalar first.
        const tmp = this.scalar(`${s.name}_select`, v.ty, k.pos);
        ops.push({ k: 'stmt', stmt: { k: 'assign', target: tmp, value: v.ir } });
        return tmp;
      });
      const cases: IrSelectCase[] = t.cases.map((c) => {
        const ks = c.keyset.k === 'list' ? c.keyset.elems : [c.keyset];
        if (c.keyset.k === 'default' || (c.keyset.k === 'name' && c.keyset.name === '_')) {
          return { keys: keys.map(() => ({ k: 'default' as const })), next: target(c.next, c.pos) };
        }
        if (ks.length !== keys.length)
          fail('type', c.keyset.pos, `${keys.length} keyset value(s)`, String(ks.length));
        return { keys: ks.map((x, i) => this.keysetElem(x, keys[i]!, st)), next: target(c.next, c.pos) };
      });
      return { name, ops, keys, cases };
    };
    for (const s of d.states) {
      const st = scope.child();
      this.parserSegment(s.name, s.body, st, states, (name, ops) => states.push(finish(s, st, name, ops)));
    }
    return { name: d.name, init: 'start', states };
  }

  /**
   * A parser state's statements; an `if` splits the state as p4c does for BMv2: the condition
   * goes into a bit<1> scalar, a select on it picks a `_true` or `_false` state, and both
   * continue in a `_join` state with the rest of the statements and the original transition.
   */
  parserSegment(
    name: string,
    stmts: readonly Stmt[],
    scope: Scope,
    states: IrParserState[],
    tail: (name: string, ops: IrParserOp[]) => void,
  ): void {
    const ops: IrParserOp[] = [];
    const queue = [...stmts];
    while (queue.length > 0) {
      const stmt = queue.shift()!;
      if (stmt.k === 'block') {
        // Blocks flatten into the state (their declarations stay visible to the end of it).
        queue.unshift(...stmt.body);
        continue;
      }
      if (stmt.k !== 'if') {
        this.parserStmt(stmt, scope, ops);
        continue;
      }
      const n = ++this.#node;
      const [yes, no, join] = [`${name}_${n}_true`, `${name}_${n}_false`, `${name}_${n}_join`];
      const test = this.coerce(this.value(stmt.test, scope), TY_BOOL, stmt.test.pos);
      const flag = this.scalar(`${name}_${n}_cond`, bitTy(1), stmt.test.pos);
      ops.push({
        k: 'stmt',
        stmt: { k: 'assign', target: flag, value: { k: 'cast', t: bits(1), arg: test.ir } },
      });
      states.push({
        name,
        ops,
        keys: [flag],
        cases: [
          { keys: [{ k: 'value', value: 1n, mask: null }], next: yes },
          { keys: [{ k: 'default' }], next: no },
        ],
      });
      const toJoin = (nm: string, o: IrParserOp[]) =>
        states.push({ name: nm, ops: o, keys: [], cases: [{ keys: [], next: join }] });
      this.parserSegment(yes, [stmt.then], scope.child(), states, toJoin);
      this.parserSegment(no, stmt.else ? [stmt.else] : [], scope.child(), states, toJoin);
      this.parserSegment(join, queue, scope, states, tail);
      return;
    }
    tail(name, ops);
  }

  keysetElem(x: Expr, key: IrExpr, scope: Scope): IrKeysetElem {
    const w = key.t.k === 'bits' ? key.t.w : 1;
    const ty = bitTy(w);
    if (x.k === 'default' || (x.k === 'name' && x.name === '_')) return { k: 'default' };
    if (x.k === 'name') {
      const r = scope.get(x.name);
      if (r?.k === 'valueSet') {
        if (r.width !== w) fail('type', x.pos, `a value_set of bit<${w}>`, `bit<${r.width}>`);
        return { k: 'vset', vset: r.name };
      }
    }
    if (x.k === 'range')
      return fail('unsupported', x.pos, 'ranges in select keysets (BMv2 JSON has no range transitions)');
    const cv = (e: Expr): bigint => {
      const v = this.value(e, scope);
      const c = v.ty.k === 'int' ? this.coerce(v, ty, e.pos) : v;
      if (c.ir.k !== 'const') fail('type', e.pos, 'a compile-time constant keyset value');
      if (c.ty.k === 'bit' && c.ty.w !== w) fail('type', e.pos, `a value of bit<${w}>`, showTy(c.ty));
      return c.ir.value & mask(w);
    };
    if (x.k === 'mask') {
      const m = cv(x.mask);
      return { k: 'value', value: cv(x.value) & m, mask: m };
    }
    return { k: 'value', value: cv(x), mask: null };
  }

  /** `stack.last.field` in a select key (BMv2's stack_field transition key). */
  stackLast(e: Expr, scope: Scope): IrExpr | null {
    if (e.k !== 'member' || e.base.k !== 'member' || e.base.name !== 'last') return null;
    const st = this.ref(e.base.base, scope);
    if (st.k !== 'stack' || st.ty.elem.k !== 'header') return null;
    const f = st.ty.elem.fields.find((x) => x.name === e.name);
    if (!f) return fail('type', e.pos, `a field of ${showTy(st.ty.elem)}`, `'${e.name}'`);
    const t = irTypeOf(f.ty);
    if (t?.k !== 'bits') return fail('unsupported', e.pos, `select on ${showTy(f.ty)}`);
    return { k: 'stackField', t, stack: st.stack, field: e.name };
  }

  lookahead(e: Expr, scope: Scope): IrExpr | null {
    if (e.k !== 'call' || e.fn.k !== 'member' || e.fn.name !== 'lookahead') return null;
    const base = this.ref(e.fn.base, scope);
    if (base.k !== 'packet' || base.dir !== 'in') return null;
    const ta = e.typeArgs[0];
    if (!ta || e.typeArgs.length !== 1 || e.args.length > 0) fail('type', e.pos, 'packet.lookahead<T>()');
    const ty = this.resolveType(ta, scope);
    if (ty.k !== 'bit') fail('unsupported', ta.pos, `lookahead<${showTy(ty)}> (only bit<W>)`);
    return { k: 'lookahead', t: bits(ty.w, ty.signed), offset: 0, width: ty.w };
  }

  parserStmt(s: Stmt, scope: Scope, ops: IrParserOp[]): void {
    if (s.k === 'call') {
      const c = s.call as Extract<Expr, { k: 'call' }>;
      if (c.fn.k === 'member') {
        const base = this.ref(c.fn.base, scope);
        if (base.k === 'packet') {
          if (base.dir !== 'in') fail('type', c.pos, 'packet_in');
          this.packetOp(c, c.fn.name, scope, ops);
          return;
        }
      }
      if (c.fn.k === 'name' && c.fn.name === 'verify' && scope.get('verify')?.k === 'externFn') {
        const [test, err] = this.args(c, 2, 'verify');
        const t = this.coerce(this.value(test!, scope), TY_BOOL, test!.pos);
        const ev = this.value(err!, scope);
        if (ev.ty.k !== 'error' || ev.ir.k !== 'const')
          fail('type', err!.pos, 'an error constant', showTy(ev.ty));
        ops.push({ k: 'verify', test: t.ir, error: Number(ev.ir.value) });
        return;
      }
    }
    if (s.k === 'assign') {
      const la = this.lookahead(s.value, scope);
      if (la) {
        const t = this.lvalueField(s.target, scope);
        const lw = la.k === 'lookahead' ? la.width : 0;
        if (irWidth(t.ty) !== lw) fail('type', s.value.pos, showTy(t.ty), `bit<${lw}>`);
        ops.push({ k: 'stmt', stmt: { k: 'assign', target: t.ir, value: la } });
        return;
      }
    }
    const out: IrStmt[] = [];
    this.stmt(s, scope, out, 'parser');
    for (const st of out) ops.push({ k: 'stmt', stmt: st });
  }

  packetOp(c: Extract<Expr, { k: 'call' }>, m: string, scope: Scope, ops: IrParserOp[]): void {
    if (m === 'extract') {
      const [h, len] = c.args.map((a) => a.value);
      if (!h || c.args.length > 2) fail('type', c.pos, 'extract(header) or extract(header, bits)');
      if (h.k === 'member' && h.name === 'next') {
        const st = this.ref(h.base, scope);
        if (st.k === 'stack') {
          if (len) fail('unsupported', c.pos, 'varbit extract into a stack element');
          ops.push({ k: 'extractNext', stack: st.stack });
          return;
        }
      }
      const r = this.ref(h, scope);
      if (r.k !== 'header') fail('type', h.pos, 'a header to extract into', describeRef(r));
      for (const sib of r.siblings ?? []) ops.push({ k: 'stmt', stmt: { k: 'setInvalid', header: sib } });
      const ht = this.headerType(r.ty, h.pos);
      const hasVarbit = ht.fields.some((f) => f.varbit);
      if (len) {
        if (!hasVarbit)
          fail('type', len.pos, `a header with a varbit field for a 2-argument extract`, r.header);
        const v = this.value(len, scope);
        if (v.ty.k !== 'bit' && v.ty.k !== 'int')
          fail('type', len.pos, 'a bit<32> length in bits', showTy(v.ty));
        ops.push({ k: 'extractVarbit', header: r.header, bits: this.sized(v, 32) });
        return;
      }
      if (hasVarbit) fail('type', c.pos, `a length argument to extract ${r.header} (it has a varbit field)`);
      ops.push({ k: 'extract', header: r.header });
      return;
    }
    if (m === 'advance') {
      const [n] = this.args(c, 1, 'advance');
      const v = this.value(n!, scope);
      if (v.ty.k !== 'bit' && v.ty.k !== 'int')
        fail('type', n!.pos, 'a bit<32> number of bits', showTy(v.ty));
      ops.push({ k: 'advance', bits: this.sized(v, 32) });
      return;
    }
    if (m === 'lookahead') return;
    fail('type', c.fn.pos, 'extract, lookahead or advance on packet_in', `'${m}'`);
  }

  // ------------------------------------------------------------ checksums and deparser

  lowerChecksums(d: ControlDecl, roots: readonly Ref[], mode: 'verify' | 'update'): IrChecksum[] {
    const scope = this.global.child(d.name);
    this.bindParams(d.params, roots, scope, `control ${d.name}`);
    if (d.locals.length > 0)
      fail('unsupported', d.locals[0]!.pos, `declarations in checksum control ${d.name}`);
    const out: IrChecksum[] = [];
    const visit = (s: Stmt): void => {
      if (s.k === 'empty') return;
      if (s.k === 'block') {
        for (const x of s.body) visit(x);
        return;
      }
      const c = s.k === 'call' ? (s.call as Extract<Expr, { k: 'call' }>) : null;
      const fname = c?.fn.k === 'name' ? c.fn.name : '';
      const ok =
        mode === 'verify'
          ? ['verify_checksum', 'verify_checksum_with_payload']
          : ['update_checksum', 'update_checksum_with_payload'];
      if (!c || !ok.includes(fname)) {
        fail('unsupported', s.pos, `statements other than ${ok.join(' / ')} in ${d.name}`);
      }
      const [cond, data, target, algo] = this.args(c, 4, fname);
      const test = this.coerce(this.value(cond!, scope), TY_BOOL, cond!.pos);
      const t = this.lvalueField(target!, scope);
      const al = algo!;
      if (al.k !== 'member' || al.name !== 'csum16')
        fail('unsupported', algo!.pos, 'checksum algorithms other than HashAlgorithm.csum16');
      if (t.ty.k !== 'bit' || t.ty.w !== 16)
        fail('type', target!.pos, 'a bit<16> checksum field', showTy(t.ty));
      out.push({
        name: `cksum_${mode}_${out.length}`,
        condition: test.ir.k === 'const' && test.ir.value === 1n ? null : test.ir,
        data: this.dataList(data!, scope),
        target: t.ir,
        algo: 'csum16',
        withPayload: fname.endsWith('_with_payload'),
      });
    };
    d.apply.forEach(visit);
    return out;
  }

  lowerDeparser(d: ControlDecl, roots: readonly Ref[]): IrProgram['deparser'] {
    const scope = this.global.child(d.name);
    this.bindParams(d.params, roots, scope, `control ${d.name}`);
    if (d.locals.length > 0) fail('unsupported', d.locals[0]!.pos, `declarations in deparser ${d.name}`);
    const emit: string[] = [];
    const add = (r: Ref, pos: SourcePos): void => {
      if (r.k === 'header') emit.push(r.header);
      else if (r.k === 'stack') emit.push(...r.headers);
      else if (r.k === 'struct') for (const m of r.members.values()) add(m, pos);
      else if (r.k !== 'value')
        fail('type', pos, 'a header, header stack or struct of headers to emit', describeRef(r));
      else if (r.ir.k === 'field' && r.ir.header !== SCALARS && r.ir.header !== STD_META)
        fail('type', pos, 'a header to emit', describeRef(r));
    };
    const visit = (s: Stmt): void => {
      if (s.k === 'empty') return;
      if (s.k === 'block') {
        for (const x of s.body) visit(x);
        return;
      }
      const c = s.k === 'call' ? (s.call as Extract<Expr, { k: 'call' }>) : null;
      if (c?.fn.k !== 'member' || c.fn.name !== 'emit' || this.ref(c.fn.base, scope).k !== 'packet') {
        fail('unsupported', s.pos, `statements other than packet.emit(...) in deparser ${d.name}`);
      }
      const [h] = this.args(c, 1, 'emit');
      add(this.ref(h!, scope), h!.pos);
    };
    d.apply.forEach(visit);
    return { name: d.name, emit };
  }
}

/** Every `exit` in an inlined body preceded by the copy-out of the call's arguments. */
function copyOutBeforeExit(body: readonly IrStmt[], copyOut: readonly IrStmt[]): IrStmt[] {
  if (copyOut.length === 0) return [...body];
  return body.flatMap((s): IrStmt[] => {
    if (s.k === 'exit') return [...copyOut, s];
    if (s.k === 'if') {
      const then = copyOutBeforeExit(s.then, copyOut);
      return [{ ...s, then, else: copyOutBeforeExit(s.else, copyOut) }];
    }
    return [s];
  });
}

/** The name a function's result temporary is bound to inside its inlined body. */
const RESULT = '$result';

function hasReturn(s: Stmt): boolean {
  switch (s.k) {
    case 'return':
      return true;
    case 'block':
      return s.body.some(hasReturn);
    case 'if':
      return hasReturn(s.then) || (s.else !== undefined && hasReturn(s.else));
    default:
      return false;
  }
}

/**
 * Remove `return` from a statement list: `return e` becomes `$result = e` (functions), the
 * statements after an `if` that returns on some path move into its non-returning branches.
 */
function withoutReturns(list: readonly Stmt[], valued: boolean): Stmt[] {
  const out: Stmt[] = [];
  for (let i = 0; i < list.length; i++) {
    const s = list[i]!;
    const rest = list.slice(i + 1);
    if (s.k === 'return') {
      if (s.value && !valued) fail('type', s.value.pos, 'no return value in an action or void function');
      if (!s.value && valued) fail('type', s.pos, 'a return value');
      if (s.value)
        out.push({
          k: 'assign',
          pos: s.pos,
          target: { k: 'name', pos: s.pos, name: RESULT },
          value: s.value,
        });
      return out;
    }
    if (!hasReturn(s)) {
      out.push(s);
      continue;
    }
    if (s.k === 'block') return [...out, ...withoutReturns([...s.body, ...rest], valued)];
    if (s.k === 'if') {
      const then: Stmt = { k: 'block', pos: s.then.pos, body: withoutReturns([s.then, ...rest], valued) };
      const otherwise: Stmt = {
        k: 'block',
        pos: s.pos,
        body: withoutReturns([...(s.else ? [s.else] : []), ...rest], valued),
      };
      out.push({ k: 'if', pos: s.pos, test: s.test, then, else: otherwise });
      return out;
    }
    out.push(s);
  }
  return out;
}

/** `c.apply(args);` where `c` is a control instance. */
function subcontrolApply(
  s: Stmt,
  scope: Scope,
): { ref: Extract<Ref, { k: 'subcontrol' }>; call: Extract<Expr, { k: 'call' }> } | null {
  if (s.k !== 'call' || s.call.k !== 'call') return null;
  const c = s.call;
  if (c.fn.k !== 'member' || c.fn.name !== 'apply' || c.fn.base.k !== 'name') return null;
  const r = scope.get(c.fn.base.name);
  return r?.k === 'subcontrol' ? { ref: r, call: c } : null;
}

function isTableApply(s: Stmt, scope: Scope): boolean {
  if (s.k !== 'call') return false;
  const c = s.call;
  if (c.k !== 'call' || c.fn.k !== 'member' || c.fn.name !== 'apply') return false;
  const b = c.fn.base;
  return b.k === 'name' && scope.get(b.name)?.k === 'table';
}

function prefixLength(m: bigint, w: number): number | null {
  let n = 0;
  for (let i = w - 1; i >= 0; i--) {
    if ((m >> BigInt(i)) & 1n) n++;
    else break;
  }
  const expect = n === 0 ? 0n : mask(n) << BigInt(w - n);
  return expect === m ? n : null;
}

export function exprText(e: Expr): string {
  switch (e.k) {
    case 'name':
      return e.name;
    case 'member':
      return `${exprText(e.base)}.${e.name}`;
    case 'index':
      return `${exprText(e.base)}[${exprText(e.index)}]`;
    case 'int':
      return String(e.value);
    case 'call':
      return `${exprText(e.fn)}()`;
    case 'slice':
      return `${exprText(e.base)}[${exprText(e.hi)}:${exprText(e.lo)}]`;
    default:
      return e.k;
  }
}

export { constRef };
