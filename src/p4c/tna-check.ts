/**
 * The front end, pointed at a TNA program (p4/tna.p4): parses it, resolves every name and
 * type, checks that the six blocks handed to `Pipeline(...)` have the parameter lists tna.p4
 * declares for them (directions, intrinsic metadata types, one header and one metadata type
 * per pipeline half), and type-checks every parser state, action, table, apply block and
 * deparser statement with the same checker the v1model compiler uses. TNA extern objects
 * (Counter, Register, Hash, Checksum...) are checked against their declarations in tna.p4:
 * constructor and method arity, argument types, result types.
 *
 * It is how thunderpac proves its TNA rewrite is well-formed without Intel's compiler; it
 * produces no code. Errors are P4CompileErrors with file:line:col, like every front-end error.
 */

import type {
  Arg,
  ControlDecl,
  Decl,
  Expr,
  InstanceDecl,
  ParserDecl,
  Program,
  Stmt,
  TypeRef,
} from './ast.js';
import { fail, type SourcePos } from './errors.js';
import type { IrStmt } from './ir.js';
import { Lowerer } from './lower.js';
import { parse } from './parser.js';
import { type PreprocessOptions, preprocess } from './preprocess.js';
import { describeRef, type Ref, type Scope, type Typed } from './typecheck.js';
import { irTypeOf, showTy, type Ty } from './types.js';

type ExternDecl = Extract<Decl, { k: 'extern_object' }>;
type BlockTypeDecl = Extract<Decl, { k: 'parser_type' | 'control_type' | 'package_type' }>;

export interface TnaCheckReport {
  /** The six blocks, in Pipeline order. */
  readonly blocks: readonly string[];
  /** Tables and actions seen, by control. */
  readonly tables: number;
  readonly externs: number;
}

/** Parse and type-check a TNA program. Throws P4CompileError on the first problem. */
export function checkTnaProgram(
  source: string,
  options: PreprocessOptions & { file?: string } = {},
): TnaCheckReport {
  const file = options.file ?? 'program.p4';
  const program = parse(preprocess(source, file, options));
  return new TnaChecker().check(program, file);
}

const BLOCK_ORDER = ['parser', 'control', 'control', 'parser', 'control', 'control'] as const;

class TnaChecker extends Lowerer {
  readonly externDecls = new Map<string, ExternDecl>();
  readonly blockTypes = new Map<string, BlockTypeDecl>();
  readonly instances: InstanceDecl[] = [];
  tables = 0;
  externs = 0;

  override declare(d: Decl): void {
    if (d.k === 'instance') {
      this.instances.push(d);
      return;
    }
    if (d.k === 'extern_object') this.externDecls.set(d.name, d);
    if (d.k === 'parser_type' || d.k === 'control_type' || d.k === 'package_type')
      this.blockTypes.set(d.name, d);
    super.declare(d);
  }

  check(program: Program, file: string): TnaCheckReport {
    for (const d of program.decls) this.declare(d);
    const where = program.decls[program.decls.length - 1]?.pos ?? { file, line: 1, col: 1 };
    const main = this.instances.find((i) => i.name === 'main');
    if (main?.type.k !== 'named' || main.type.name !== 'Switch') {
      return fail('semantic', main?.pos ?? where, 'a `Switch(pipe) main;` instantiation (the TNA package)');
    }
    const pipeArg = main.args[0]?.value;
    if (main.args.length !== 1 || pipeArg?.k !== 'name')
      return fail('type', main.pos, 'one Pipeline instance as the argument of Switch');
    const pipe = this.instances.find((i) => i.name === pipeArg.name);
    if (pipe?.type.k !== 'named' || pipe.type.name !== 'Pipeline')
      return fail('type', pipeArg.pos, 'a Pipeline(...) instance', `'${pipeArg.name}'`);
    const pkg = this.blockTypes.get('Pipeline');
    if (!pkg) return fail('type', pipe.pos, 'package Pipeline declared (include <tna.p4>)');
    if (pipe.args.length !== pkg.params.length)
      fail('type', pipe.pos, `the ${pkg.params.length} blocks of Pipeline`, `${pipe.args.length}`);

    // Bind the package's type variables (IH, IM, EH, EM) from the blocks, checking each block
    // against the parser/control type tna.p4 declares for its place.
    const bound = new Map<string, Ty>();
    const blocks = pipe.args.map((a, i) => {
      const kind = BLOCK_ORDER[i]!;
      const decl = this.blockArg(a, kind);
      this.conform(decl, pkg.params[i]!.type, bound, a.pos);
      return decl;
    });

    const roots = new Map<string, Ref>();
    const rootFor = (
      half: 'ig' | 'eg',
      p: { name: string; type: TypeRef; pos: SourcePos },
      typeVar: string | null,
    ): Ref => {
      const ty = this.resolveType(p.type, this.global);
      if (ty.k === 'extern' && (ty.name === 'packet_in' || ty.name === 'packet_out'))
        return { k: 'packet', dir: ty.name === 'packet_in' ? 'in' : 'out' };
      const key = `${half}:${typeVar ?? showTy(ty)}`;
      const known = roots.get(key);
      if (known) return known;
      const r = this.bindRoot(ty, `${half}_${typeVar ?? p.name}`, p.pos);
      roots.set(key, r);
      return r;
    };
    blocks.forEach((b, i) => {
      const half = i < 3 ? 'ig' : 'eg';
      const blockType = this.blockTypes.get((pkg.params[i]!.type as { name: string }).name)!;
      const rs = b.params.map((p, j) => {
        const declared = blockType.params[j]!.type;
        const tv =
          declared.k === 'named' && blockType.typeParams.includes(declared.name) ? declared.name : null;
        return rootFor(half, p, tv);
      });
      if (b.k === 'parser') this.lowerParser(b, rs);
      else if (i === 2 || i === 5) this.checkDeparser(b, rs);
      else this.lowerControl(b, rs);
    });
    return { blocks: blocks.map((b) => b.name), tables: this.tables, externs: this.externs };
  }

  /** A block against `IngressParserT<IH, IM>` (say): parameter count, directions and types. */
  conform(decl: ParserDecl | ControlDecl, placeType: TypeRef, bound: Map<string, Ty>, pos: SourcePos): void {
    if (placeType.k !== 'named') {
      fail('type', pos, 'a block type in package Pipeline');
    }
    const bt = this.blockTypes.get(placeType.name);
    if (!bt) {
      fail('type', pos, `block type ${placeType.name} declared`);
    }
    const kind = bt.k === 'parser_type' ? 'parser' : 'control';
    if (decl.k !== kind) fail('type', decl.pos, `a ${kind} for ${placeType.name}`, `${decl.k} ${decl.name}`);
    if (decl.params.length !== bt.params.length) {
      fail(
        'type',
        decl.pos,
        `${bt.params.length} parameters for ${placeType.name}`,
        `${decl.params.length} in ${decl.name}`,
      );
    }
    // The block type's own type parameters (H, M) stand for the package's (IH, IM...).
    const alias = new Map<string, string>();
    bt.typeParams.forEach((t, i) => {
      const a = placeType.args[i];
      if (a?.k === 'named') alias.set(t, a.name);
    });
    decl.params.forEach((p, j) => {
      const want = bt.params[j]!;
      const dir = (d: string) => (d === 'none' ? 'directionless' : d);
      if (p.dir !== want.dir)
        fail('type', p.pos, `${dir(want.dir)} parameter ${want.name} of ${placeType.name}`, dir(p.dir));
      const got = this.resolveType(p.type, this.global);
      if (want.type.k === 'named' && bt.typeParams.includes(want.type.name)) {
        const v = alias.get(want.type.name) ?? want.type.name;
        const prev = bound.get(v);
        if (prev && showTy(prev) !== showTy(got)) {
          fail(
            'type',
            p.pos,
            `${showTy(prev)} (type ${v} of the pipeline, as in the other blocks)`,
            showTy(got),
          );
        }
        bound.set(v, got);
        return;
      }
      const exp = this.resolveType(want.type, this.global);
      if (showTy(exp) !== showTy(got))
        fail('type', p.pos, `${showTy(exp)} for parameter ${want.name} of ${placeType.name}`, showTy(got));
    });
  }

  /** A TNA deparser: extern declarations (Checksum), checksum assignments, packet.emit(...). */
  checkDeparser(d: ControlDecl, roots: readonly Ref[]): void {
    const scope = this.global.child(d.name);
    this.bindParams(d.params, roots, scope, `control ${d.name}`);
    const scratch: IrStmt[] = [];
    for (const l of d.locals) this.declareLocal(l, scope, scratch);
    const visit = (s: Stmt): void => {
      if (s.k === 'block') {
        s.body.forEach(visit);
        return;
      }
      const c = s.k === 'call' && s.call.k === 'call' ? s.call : null;
      if (c?.fn.k === 'member' && c.fn.name === 'emit') {
        const base = this.ref(c.fn.base, scope);
        if (base.k !== 'packet' || base.dir !== 'out')
          fail('type', c.fn.base.pos, 'packet_out', describeRef(base));
        const [h] = this.args(c, 1, 'emit');
        const r = this.ref(h!, scope);
        if (r.k !== 'header' && r.k !== 'stack' && r.k !== 'struct')
          fail('type', h!.pos, 'a header, header stack or struct of headers to emit', describeRef(r));
        return;
      }
      this.stmt(s, scope, scratch, 'action');
    };
    d.apply.forEach(visit);
  }

  // ------------------------------------------------------------ TNA externs

  override foreignDirectExtern(r: Extract<Ref, { k: 'extern' }>): boolean {
    return r.kind === 'DirectCounter' || r.kind === 'DirectMeter';
  }

  override lowerTableDecl(
    t: Parameters<Lowerer['lowerTableDecl']>[0],
  ): ReturnType<Lowerer['lowerTableDecl']> {
    this.tables++;
    return super.lowerTableDecl(t);
  }

  override externInstance(d: InstanceDecl, scope: Scope): void {
    const ty = this.resolveType(d.type, scope);
    const decl = ty.k === 'extern' ? this.externDecls.get(ty.name) : undefined;
    if (!decl || ty.k !== 'extern') {
      super.externInstance(d, scope);
      return;
    }
    const ctors = decl.methods.filter((m) => m.name === decl.name);
    const ctor = ctors.find((m) => m.params.length === d.args.length);
    if (!ctor) {
      fail(
        'type',
        d.pos,
        `${ctors.map((c) => c.params.length).join(' or ')} constructor argument(s) for ${decl.name}`,
        `${d.args.length}`,
      );
    }
    const bound = this.bindTypeParams(decl, ty, d.pos);
    this.checkArgs(ctor.params, d.args, bound, scope, `${decl.name}(...)`);
    this.externs++;
    scope.set(d.name, { k: 'extern', kind: decl.name, qname: scope.qualify(d.name), ty, decl });
  }

  override externMethod(
    base: Extract<Ref, { k: 'extern' }>,
    m: string,
    c: Extract<Expr, { k: 'call' }>,
    scope: Scope,
    out: IrStmt[],
  ): void {
    if (this.externDecls.has(base.kind)) this.methodResult(base, m, c, scope);
    else super.externMethod(base, m, c, scope, out);
  }

  override callValue(e: Extract<Expr, { k: 'call' }>, scope: Scope): Typed {
    if (e.fn.k === 'member') {
      const base = this.ref(e.fn.base, scope);
      if (base.k === 'extern' && this.externDecls.has(base.kind)) {
        const ty = this.methodResult(base, e.fn.name, e, scope);
        const t = irTypeOf(ty);
        if (!t) return fail('type', e.pos, `a value from ${base.kind}.${e.fn.name}`, showTy(ty));
        // A fresh scalar, not a constant: nothing may be folded away before it is checked.
        return { ir: this.scalar(`${base.kind}_${e.fn.name}_result`, ty, e.pos), ty };
      }
    }
    return super.callValue(e, scope);
  }

  /** Check a method call on a TNA extern instance; its result type. */
  methodResult(
    base: Extract<Ref, { k: 'extern' }>,
    m: string,
    c: Extract<Expr, { k: 'call' }>,
    scope: Scope,
  ): Ty {
    const decl = this.externDecls.get(base.kind)!;
    const methods = decl.methods.filter((x) => x.name === m && x.name !== decl.name);
    if (methods.length === 0) fail('type', c.pos, `a method of ${decl.name}`, `'${m}'`);
    const method = methods.find((x) => x.params.length === c.args.length);
    if (!method) {
      fail(
        'type',
        c.pos,
        `${methods.map((x) => x.params.length).join(' or ')} argument(s) to ${decl.name}.${m}`,
        `${c.args.length}`,
      );
    }
    const bound = this.bindTypeParams(decl, base.ty, c.pos);
    for (const tp of method.typeParams) bound.set(tp, { k: 'typevar', name: tp });
    this.checkArgs(method.params, c.args, bound, scope, `${decl.name}.${m}`);
    return method.ret ? this.resolveIn(method.ret, bound, scope) : { k: 'void' };
  }

  /** The extern's type parameters, bound to the instance's type arguments (`Register<bit<32>, bit<32>>`). */
  bindTypeParams(decl: ExternDecl, ty: Ty, pos: SourcePos): Map<string, Ty> {
    const args = ty.k === 'extern' ? ty.args : [];
    if (args.length !== decl.typeParams.length) {
      fail('type', pos, `${decl.typeParams.length} type argument(s) for ${decl.name}`, `${args.length}`);
    }
    return new Map(decl.typeParams.map((t, i) => [t, args[i]!]));
  }

  resolveIn(t: TypeRef, bound: ReadonlyMap<string, Ty>, scope: Scope): Ty {
    if (t.k === 'named' && bound.has(t.name)) return bound.get(t.name)!;
    return this.resolveType(t, scope);
  }

  checkArgs(
    params: readonly { name: string; dir: string; type: TypeRef; pos: SourcePos }[],
    args: readonly Arg[],
    bound: ReadonlyMap<string, Ty>,
    scope: Scope,
    what: string,
  ): void {
    params.forEach((p, i) => {
      const a = args[i]!.value;
      const want = this.resolveIn(p.type, bound, this.global);
      if (p.dir === 'out' || p.dir === 'inout') {
        const t = this.lvalueField(a, scope);
        if (want.k !== 'typevar' && showTy(want) !== showTy(t.ty))
          fail('type', a.pos, `${showTy(want)} for ${p.name} of ${what}`, showTy(t.ty));
        return;
      }
      if (a.k === 'list') {
        // Data lists (hash and checksum inputs): every element must be a value.
        for (const x of a.elems) this.value(x, scope);
        return;
      }
      const v = this.value(a, scope);
      if (want.k !== 'typevar') this.coerce(v, want, a.pos);
    });
  }
}
