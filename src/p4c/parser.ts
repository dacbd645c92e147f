/**
 * Recursive-descent parser for the P4_16 subset: tokens (from preprocess.ts) → AST (ast.ts).
 *
 * P4's grammar needs to know which identifiers are types (`(T) x` is a cast, `T x;` a
 * declaration), as p4c's parser does; the parser records type names as it declares them.
 * Where a statement could start a declaration or an expression, it tries the declaration
 * and backs off.
 */

import type {
  ActionDecl,
  Annotation,
  Arg,
  ConstDecl,
  ControlDecl,
  Decl,
  Direction,
  Expr,
  ExternMethod,
  Field,
  InstanceDecl,
  LocalDecl,
  Param,
  ParserDecl,
  ParserState,
  Program,
  SelectCase,
  Stmt,
  SwitchCase,
  TableDecl,
  TableEntryDecl,
  TableProperty,
  Transition,
  TypeRef,
  VarDecl,
} from './ast.js';
import { fail, P4CompileError, type SourcePos } from './errors.js';
import type { Token } from './lexer.js';
import { MAX_NESTING } from './limits.js';

const BUILTIN_TYPES = new Set([
  'bit',
  'int',
  'varbit',
  'bool',
  'error',
  'void',
  'string',
  'tuple',
  'packet_in',
  'packet_out',
]);

// Binary operators by precedence level, lowest first (p4c's grammar: comparisons bind looser
// than bitwise operators, unlike C).
const BINARY_LEVELS: readonly (readonly string[])[] = [
  ['||'],
  ['&&'],
  ['==', '!='],
  ['<', '>', '<=', '>='],
  ['|'],
  ['^'],
  ['&'],
  ['<<', '>>'],
  ['++', '+', '-', '|+|', '|-|'],
  ['*', '/', '%'],
];

class Backtrack extends Error {}

export function parse(tokens: readonly Token[]): Program {
  return new Parser(tokens).program();
}

class Parser {
  #i = 0;
  /** Levels of nesting entered and not yet left (see enter()). */
  #depth = 0;
  readonly #types = new Set<string>();
  readonly #t: readonly Token[];

  constructor(tokens: readonly Token[]) {
    this.#t = tokens;
  }

  // ------------------------------------------------------------ token helpers

  get tok(): Token {
    return this.#t[this.#i]!;
  }

  peek(n = 1): Token {
    return this.#t[Math.min(this.#i + n, this.#t.length - 1)]!;
  }

  next(): Token {
    const t = this.tok;
    if (t.kind !== 'eof') this.#i++;
    return t;
  }

  is(text: string, n = 0): boolean {
    const t = this.peek(n);
    return (t.kind === 'op' || t.kind === 'id') && t.text === text;
  }

  /** `>>` is lexed as two `>`; a shift is two `>` with nothing between them. */
  isShiftRight(): boolean {
    return this.is('>') && this.is('>', 1) && !this.peek(1).gap;
  }

  accept(text: string): boolean {
    if (!this.is(text)) return false;
    this.next();
    return true;
  }

  expect(text: string, what?: string): Token {
    if (!this.is(text)) this.error(what ?? `'${text}'`);
    return this.next();
  }

  ident(what = 'an identifier'): string {
    const t = this.tok;
    if (t.kind !== 'id') this.error(what);
    this.next();
    return t.text;
  }

  describe(t: Token): string {
    if (t.kind === 'eof') return 'end of input';
    if (t.kind === 'directive') return `'#${t.text}'`;
    return `'${t.text}'`;
  }

  error(expected: string): never {
    return fail('syntax', this.tok, expected, this.describe(this.tok));
  }

  pos(): SourcePos {
    const t = this.tok;
    return { file: t.file, line: t.line, col: t.col };
  }

  /** Try a parse; on a syntax error restore the cursor and report failure with undefined. */
  attempt<T>(f: () => T): T | undefined {
    const save = this.#i;
    try {
      return f();
    } catch (err) {
      if (err instanceof Backtrack || (err instanceof P4CompileError && err.kind === 'syntax')) {
        this.#i = save;
        return undefined;
      }
      throw err;
    }
  }

  /**
   * One level deeper in the syntax; returns the depth to restore when the level ends. Past
   * MAX_NESTING it is a `limit` error at the token that went deeper — not a syntax error, so
   * attempt() does not back off and retry the same depth another way.
   */
  enter(): number {
    if (this.#depth >= MAX_NESTING)
      fail(
        'limit',
        this.tok,
        `at most ${MAX_NESTING} levels of nesting (parentheses, operators, blocks, types)`,
      );
    return this.#depth++;
  }

  leave(depth: number): void {
    this.#depth = depth;
  }

  isTypeName(name: string): boolean {
    return this.#types.has(name) || BUILTIN_TYPES.has(name);
  }

  // ------------------------------------------------------------ program

  program(): Program {
    const decls: Decl[] = [];
    while (this.tok.kind !== 'eof') {
      if (this.accept(';')) continue;
      decls.push(this.declaration());
    }
    return { decls };
  }

  annotations(): Annotation[] {
    const out: Annotation[] = [];
    while (this.is('@')) {
      const pos = this.pos();
      this.next();
      const name = this.ident('an annotation name');
      let args: Expr[] = [];
      if (this.is('(')) {
        // Annotation bodies may hold arbitrary tokens; keep them when they parse as expressions.
        const start = this.#i;
        const parsed = this.attempt(() => {
          this.expect('(');
          const list: Expr[] = [];
          if (!this.is(')')) {
            do list.push(this.expression());
            while (this.accept(','));
          }
          this.expect(')');
          return list;
        });
        if (parsed) args = parsed;
        else {
          this.#i = start;
          this.skipBalanced();
        }
      } else if (this.is('[')) {
        this.skipBalanced();
      }
      out.push({ pos, name, args });
    }
    return out;
  }

  skipBalanced(): void {
    let depth = 0;
    do {
      const t = this.next();
      if (t.kind === 'eof') this.error('a closing bracket');
      if (t.text === '(' || t.text === '[') depth++;
      else if (t.text === ')' || t.text === ']') depth--;
    } while (depth > 0);
  }

  declaration(): Decl {
    const annotations = this.annotations();
    const pos = this.pos();
    const t = this.tok;
    if (t.kind !== 'id') this.error('a declaration');
    switch (t.text) {
      case 'header':
      case 'struct':
      case 'header_union': {
        this.next();
        const name = this.ident();
        this.#types.add(name);
        const typeParams = this.typeParams();
        this.expect('{');
        const fields: Field[] = [];
        while (!this.accept('}')) {
          const fa = this.annotations();
          const fpos = this.pos();
          const type = this.typeRef();
          const fname = this.ident('a field name');
          this.expect(';');
          fields.push({ pos: fpos, name: fname, type, annotations: fa });
        }
        return { k: t.text, pos, name, typeParams, fields, annotations };
      }
      case 'typedef':
      case 'type': {
        this.next();
        const type = this.typeRef();
        const name = this.ident();
        this.#types.add(name);
        this.expect(';');
        return { k: t.text === 'type' ? 'newtype' : 'typedef', pos, name, type };
      }
      case 'enum': {
        this.next();
        let repr: TypeRef | undefined;
        if (this.is('bit') || this.is('int')) repr = this.typeRef();
        const name = this.ident();
        this.#types.add(name);
        this.expect('{');
        const members: { name: string; value?: Expr; pos: SourcePos }[] = [];
        while (!this.is('}')) {
          const mpos = this.pos();
          const mname = this.ident('an enum member');
          if (this.accept('=')) members.push({ name: mname, value: this.expression(), pos: mpos });
          else members.push({ name: mname, pos: mpos });
          if (!this.accept(',')) break;
        }
        this.expect('}');
        return repr ? { k: 'enum', pos, name, repr, members } : { k: 'enum', pos, name, members };
      }
      case 'error':
      case 'match_kind': {
        if (!this.is('{', 1)) break;
        this.next();
        this.expect('{');
        const members: { name: string; pos: SourcePos }[] = [];
        while (!this.is('}')) {
          const mpos = this.pos();
          members.push({ name: this.ident(), pos: mpos });
          if (!this.accept(',')) break;
        }
        this.expect('}');
        return { k: t.text, pos, members };
      }
      case 'const':
        return this.constDecl();
      case 'action':
        return this.actionDecl(annotations);
      case 'extern':
        return this.externDecl();
      case 'parser':
        return this.parserDecl(annotations);
      case 'control':
        return this.controlDecl(annotations);
      case 'package': {
        this.next();
        const name = this.ident();
        this.#types.add(name);
        const typeParams = this.typeParams();
        const params = this.params();
        this.expect(';');
        return { k: 'package_type', pos, name, typeParams, params };
      }
    }
    // A function (`T name(...) {`) or an instantiation (`T(...) name;`).
    const type = this.typeRef();
    if (this.is('(')) return this.instance(type, annotations, pos);
    const name = this.ident('a function name or instantiation');
    const typeParams = this.typeParams();
    const params = this.params();
    const body = this.block().body;
    return { k: 'function', pos, name, ret: type, typeParams, params, body };
  }

  instance(type: TypeRef, annotations: Annotation[], pos: SourcePos): InstanceDecl {
    const args = this.args();
    const name = this.ident('the instance name');
    this.expect(';');
    return { k: 'instance', pos, name, type, args, annotations };
  }

  typeParams(): string[] {
    const out: string[] = [];
    if (!this.accept('<')) return out;
    do {
      const n = this.ident('a type parameter');
      this.#types.add(n);
      out.push(n);
    } while (this.accept(','));
    this.expect('>');
    return out;
  }

  params(): Param[] {
    this.expect('(');
    const out: Param[] = [];
    if (!this.is(')')) {
      do {
        const annotations = this.annotations();
        const pos = this.pos();
        let dir: Direction = 'none';
        if (this.is('in') || this.is('out') || this.is('inout')) dir = this.next().text as Direction;
        const type = this.typeRef();
        const name = this.ident('a parameter name');
        const p: Param = { pos, name, dir, type, annotations };
        out.push(this.accept('=') ? { ...p, defaultValue: this.expression() } : p);
      } while (this.accept(','));
    }
    this.expect(')');
    return out;
  }

  args(): Arg[] {
    this.expect('(');
    const out: Arg[] = [];
    if (!this.is(')')) {
      do {
        const pos = this.pos();
        if (this.tok.kind === 'id' && this.is('=', 1) && !this.is('==', 1)) {
          const name = this.ident();
          this.expect('=');
          out.push({ pos, name, value: this.argValue() });
        } else {
          out.push({ pos, value: this.argValue() });
        }
      } while (this.accept(','));
    }
    this.expect(')');
    return out;
  }

  argValue(): Expr {
    if (this.is('_')) return { k: 'default', pos: this.next() };
    return this.expression();
  }

  constDecl(): ConstDecl {
    const pos = this.pos();
    this.expect('const');
    const type = this.typeRef();
    const name = this.ident();
    this.expect('=');
    const value = this.expression();
    this.expect(';');
    return { k: 'const', pos, name, type, value };
  }

  actionDecl(annotations: Annotation[]): ActionDecl {
    const pos = this.pos();
    this.expect('action');
    const name = this.ident('an action name');
    const params = this.params();
    const body = this.block().body;
    return { k: 'action', pos, name, params, body, annotations };
  }

  externDecl(): Decl {
    const pos = this.pos();
    this.expect('extern');
    this.annotations();
    // `extern Name<T> { ... }` is an object; `extern R name<T>(...);` a function.
    if (this.tok.kind === 'id' && (this.is('{', 1) || (this.is('<', 1) && this.isObjectAhead()))) {
      const name = this.ident();
      this.#types.add(name);
      const typeParams = this.typeParams();
      this.expect('{');
      const methods: ExternMethod[] = [];
      while (!this.accept('}')) {
        this.annotations();
        const mpos = this.pos();
        const isAbstract = this.accept('abstract');
        if (this.is(name) && this.is('(', 1)) {
          this.next();
          const params = this.params();
          this.expect(';');
          methods.push({ pos: mpos, name, ret: null, typeParams: [], params, isAbstract });
          continue;
        }
        const ret = this.typeRef();
        const mname = this.ident('a method name');
        const mtp = this.typeParams();
        const params = this.params();
        this.expect(';');
        methods.push({ pos: mpos, name: mname, ret, typeParams: mtp, params, isAbstract });
      }
      return { k: 'extern_object', pos, name, typeParams, methods };
    }
    const ret = this.typeRef();
    const name = this.ident('an extern function name');
    const typeParams = this.typeParams();
    const params = this.params();
    this.expect(';');
    return { k: 'extern_function', pos, name, ret, typeParams, params };
  }

  /** After `extern Name <`, is this `extern Name<T, U> {` (an object)? */
  isObjectAhead(): boolean {
    let n = 2;
    while (this.peek(n).kind === 'id' || this.peek(n).text === ',') n++;
    return this.peek(n).text === '>' && this.peek(n + 1).text === '{';
  }

  parserDecl(annotations: Annotation[]): Decl {
    const pos = this.pos();
    this.expect('parser');
    const name = this.ident('a parser name');
    this.#types.add(name);
    const typeParams = this.typeParams();
    const params = this.params();
    if (this.accept(';')) return { k: 'parser_type', pos, name, typeParams, params };
    const ctorParams = this.is('(') ? this.params() : [];
    this.expect('{');
    const locals: LocalDecl[] = [];
    const states: ParserState[] = [];
    while (!this.accept('}')) {
      const la = this.annotations();
      if (this.is('state')) {
        states.push(this.parserState());
        continue;
      }
      locals.push(this.localDecl(la));
    }
    const decl: ParserDecl = {
      k: 'parser',
      pos,
      name,
      typeParams,
      params,
      ctorParams,
      locals,
      states,
      annotations,
    };
    return decl;
  }

  parserState(): ParserState {
    const pos = this.pos();
    this.expect('state');
    const name = this.ident('a state name');
    this.expect('{');
    const body: Stmt[] = [];
    let transition: Transition | undefined;
    while (!this.accept('}')) {
      if (this.is('transition')) {
        transition = this.transition();
        this.expect('}', "'}' after the transition (it ends the state)");
        break;
      }
      body.push(this.statement());
    }
    return transition ? { pos, name, body, transition } : { pos, name, body };
  }

  transition(): Transition {
    const pos = this.pos();
    this.expect('transition');
    if (this.is('select')) {
      this.next();
      this.expect('(');
      const on: Expr[] = [];
      do on.push(this.expression());
      while (this.accept(','));
      this.expect(')');
      this.expect('{');
      const cases: SelectCase[] = [];
      while (!this.accept('}')) {
        const cpos = this.pos();
        const keyset = this.keyset();
        this.expect(':');
        const next = this.ident('a state name');
        this.expect(';');
        cases.push({ pos: cpos, keyset, next });
      }
      return { k: 'select', pos, on, cases };
    }
    const next = this.ident('a state name or select');
    this.expect(';');
    return { k: 'goto', pos, next };
  }

  /** A select case or table entry key: a tuple `(a, b &&& m, lo..hi, _)` or one such key. */
  keyset(): Expr {
    const pos = this.pos();
    if (this.is('(')) {
      const tuple = this.attempt(() => {
        this.expect('(');
        const elems: Expr[] = [];
        do elems.push(this.simpleKeyset());
        while (this.accept(','));
        this.expect(')');
        if (this.is('&&&') || this.is('..')) throw new Backtrack();
        return elems;
      });
      if (tuple) return tuple.length === 1 ? tuple[0]! : { k: 'list', pos, elems: tuple };
    }
    return this.simpleKeyset();
  }

  simpleKeyset(): Expr {
    const pos = this.pos();
    if (this.is('default') || this.is('_')) {
      this.next();
      return { k: 'default', pos };
    }
    const value = this.expression();
    if (this.accept('&&&')) return { k: 'mask', pos, value, mask: this.expression() };
    if (this.accept('..')) return { k: 'range', pos, lo: value, hi: this.expression() };
    return value;
  }

  controlDecl(annotations: Annotation[]): Decl {
    const pos = this.pos();
    this.expect('control');
    const name = this.ident('a control name');
    this.#types.add(name);
    const typeParams = this.typeParams();
    const params = this.params();
    if (this.accept(';')) return { k: 'control_type', pos, name, typeParams, params };
    const ctorParams = this.is('(') ? this.params() : [];
    this.expect('{');
    const locals: LocalDecl[] = [];
    let apply: readonly Stmt[] | undefined;
    while (!this.accept('}')) {
      const la = this.annotations();
      if (this.is('apply')) {
        this.next();
        apply = this.block().body;
        continue;
      }
      locals.push(this.localDecl(la));
    }
    if (!apply) fail('syntax', pos, `an apply block in control '${name}'`);
    const decl: ControlDecl = {
      k: 'control',
      pos,
      name,
      typeParams,
      params,
      ctorParams,
      locals,
      apply,
      annotations,
    };
    return decl;
  }

  localDecl(annotations: Annotation[]): LocalDecl {
    const pos = this.pos();
    if (this.is('action')) return this.actionDecl(annotations);
    if (this.is('const')) return this.constDecl();
    if (this.is('table')) return this.tableDecl(annotations);
    if (this.is('value_set')) {
      this.next();
      this.expect('<');
      const type = this.typeRef();
      this.closeAngle();
      this.expect('(');
      const size = this.expression();
      this.expect(')');
      const name = this.ident();
      this.expect(';');
      return { k: 'value_set', pos, name, type, size };
    }
    const type = this.typeRef();
    if (this.is('(')) return this.instance(type, annotations, pos);
    return this.varRest(type, pos);
  }

  varRest(type: TypeRef, pos: SourcePos): VarDecl {
    const name = this.ident('a variable name');
    if (this.accept('=')) {
      const init = this.expression();
      this.expect(';');
      return { k: 'var', pos, name, type, init };
    }
    this.expect(';');
    return { k: 'var', pos, name, type };
  }

  tableDecl(annotations: Annotation[]): TableDecl {
    const pos = this.pos();
    this.expect('table');
    const name = this.ident('a table name');
    // Early P4_16 (and p4c still) accepts an empty parameter list: `table t() { ... }`.
    if (this.accept('(')) this.expect(')');
    this.expect('{');
    const props: TableProperty[] = [];
    while (!this.accept('}')) {
      this.annotations();
      const ppos = this.pos();
      const isConst = this.accept('const');
      const pname = this.ident('a table property');
      if (pname === 'key') {
        this.expect('=');
        this.expect('{');
        const keys: { expr: Expr; matchKind: string; pos: SourcePos; annotations: Annotation[] }[] = [];
        while (!this.accept('}')) {
          const kpos = this.pos();
          const expr = this.expression();
          this.expect(':');
          const matchKind = this.ident('a match kind');
          const ka = this.annotations();
          this.expect(';');
          keys.push({ expr, matchKind, pos: kpos, annotations: ka });
        }
        props.push({ pos: ppos, name: pname, isConst, value: { k: 'keys', keys } });
      } else if (pname === 'actions') {
        this.expect('=');
        this.expect('{');
        const actions: { call: Expr; pos: SourcePos; annotations: Annotation[] }[] = [];
        while (!this.accept('}')) {
          const aa = this.annotations();
          const apos = this.pos();
          actions.push({ call: this.expression(), pos: apos, annotations: aa });
          this.expect(';');
        }
        props.push({ pos: ppos, name: pname, isConst, value: { k: 'actions', actions } });
      } else if (pname === 'entries') {
        this.expect('=');
        this.expect('{');
        const entries: TableEntryDecl[] = [];
        while (!this.accept('}')) {
          const epos = this.pos();
          let priority: Expr | undefined;
          if (this.accept('priority')) {
            this.expect('=');
            priority = this.expression();
            this.expect(':');
          }
          const keys = this.keyset();
          this.expect(':');
          const action = this.expression();
          const annotations = this.annotations();
          this.expect(';');
          entries.push({
            pos: epos,
            keys,
            action,
            ...(priority ? { priority } : {}),
            ...(annotations.length > 0 ? { annotations } : {}),
          });
        }
        props.push({ pos: ppos, name: pname, isConst, value: { k: 'entries', entries } });
      } else {
        this.expect('=');
        const expr = this.expression();
        this.expect(';');
        props.push({ pos: ppos, name: pname, isConst, value: { k: 'expr', expr } });
      }
    }
    return { k: 'table', pos, name, props, annotations };
  }

  // ------------------------------------------------------------ types

  closeAngle(): void {
    this.expect('>');
  }

  typeRef(): TypeRef {
    const depth = this.enter();
    try {
      return this.typeRefAt();
    } finally {
      this.leave(depth);
    }
  }

  typeRefAt(): TypeRef {
    const pos = this.pos();
    const t = this.tok;
    if (t.kind !== 'id') this.error('a type');
    let base: TypeRef;
    switch (t.text) {
      case 'bit':
      case 'int':
      case 'varbit': {
        this.next();
        if (!this.accept('<')) {
          if (t.text === 'bit') base = { k: 'bit', pos, signed: false, width: { k: 'int', pos, value: 1n } };
          else if (t.text === 'int') base = { k: 'int', pos };
          else return this.error("'<' and a width after varbit");
          break;
        }
        let width: Expr;
        if (this.is('(')) {
          this.next();
          width = this.expression();
          this.expect(')');
        } else {
          width = this.primary();
        }
        this.closeAngle();
        base =
          t.text === 'varbit'
            ? { k: 'varbit', pos, width }
            : { k: 'bit', pos, signed: t.text === 'int', width };
        break;
      }
      case 'bool':
      case 'error':
      case 'void':
      case 'string':
        this.next();
        base = { k: t.text, pos };
        break;
      case '_':
        this.next();
        base = { k: 'dontcare', pos };
        break;
      case 'tuple': {
        this.next();
        this.expect('<');
        const elems: TypeRef[] = [];
        do elems.push(this.typeRef());
        while (this.accept(','));
        this.closeAngle();
        base = { k: 'tuple', pos, elems };
        break;
      }
      default: {
        const name = this.ident();
        let args: TypeRef[] = [];
        if (this.is('<')) {
          this.next();
          args = [];
          do args.push(this.typeRef());
          while (this.accept(','));
          this.closeAngle();
        }
        base = { k: 'named', pos, name, args };
      }
    }
    while (this.is('[')) {
      const spos = this.pos();
      this.next();
      const size = this.expression();
      this.expect(']');
      base = { k: 'stack', pos: spos, elem: base, size };
    }
    return base;
  }

  // ------------------------------------------------------------ statements

  block(): Extract<Stmt, { k: 'block' }> {
    const pos = this.pos();
    this.expect('{');
    const body: Stmt[] = [];
    while (!this.accept('}')) body.push(this.statement());
    return { k: 'block', pos, body };
  }

  statement(): Stmt {
    const depth = this.enter();
    try {
      return this.statementAt();
    } finally {
      this.leave(depth);
    }
  }

  statementAt(): Stmt {
    this.annotations();
    const pos = this.pos();
    const t = this.tok;
    if (t.kind === 'op') {
      if (t.text === '{') return this.block();
      if (t.text === ';') {
        this.next();
        return { k: 'empty', pos };
      }
    }
    if (t.kind === 'id') {
      switch (t.text) {
        case 'if': {
          this.next();
          this.expect('(');
          const test = this.expression();
          this.expect(')');
          const then = this.statement();
          if (this.accept('else')) return { k: 'if', pos, test, then, else: this.statement() };
          return { k: 'if', pos, test, then };
        }
        case 'exit':
          this.next();
          this.expect(';');
          return { k: 'exit', pos };
        case 'return': {
          this.next();
          if (this.accept(';')) return { k: 'return', pos };
          const value = this.expression();
          this.expect(';');
          return { k: 'return', pos, value };
        }
        case 'const':
          return { k: 'const', pos, decl: this.constDecl() };
        case 'switch':
          return this.switchStmt();
      }
      // A declaration `T x [= e];` when the statement starts with a type.
      const decl = this.attempt(() => {
        const type = this.typeRef();
        if (this.tok.kind !== 'id' || !(this.is('=', 1) || this.is(';', 1))) throw new Backtrack();
        return this.varRest(type, pos);
      });
      if (decl) return { k: 'var', pos, decl };
    }
    const target = this.expression();
    if (this.accept('=')) {
      const value = this.expression();
      this.expect(';');
      return { k: 'assign', pos, target, value };
    }
    if (target.k !== 'call') fail('syntax', this.tok, "'=' or a call statement", this.describe(this.tok));
    this.expect(';');
    return { k: 'call', pos, call: target };
  }

  switchStmt(): Stmt {
    const pos = this.pos();
    this.expect('switch');
    this.expect('(');
    const on = this.expression();
    this.expect(')');
    this.expect('{');
    const cases: SwitchCase[] = [];
    while (!this.accept('}')) {
      const cpos = this.pos();
      const labels: Expr[] = [];
      const label: Expr = this.is('default') ? { k: 'default', pos: this.next() } : this.expression();
      labels.push(label);
      this.expect(':');
      if (this.is('{')) cases.push({ pos: cpos, labels, body: this.block() });
      else cases.push({ pos: cpos, labels });
    }
    return { k: 'switch', pos, on, cases };
  }

  // ------------------------------------------------------------ expressions

  expression(): Expr {
    const depth = this.enter();
    try {
      const pos = this.pos();
      const test = this.binary(0);
      if (!this.accept('?')) return test;
      const then = this.expression();
      this.expect(':');
      const otherwise = this.expression();
      return { k: 'cond', pos, test, then, else: otherwise };
    } finally {
      this.leave(depth);
    }
  }

  binary(level: number): Expr {
    if (level >= BINARY_LEVELS.length) return this.unary();
    const depth = this.#depth;
    try {
      return this.binaryChain(level);
    } finally {
      this.leave(depth);
    }
  }

  /** `a op b op c ...` nests to the left: each operator is a level (the checker recurses on it). */
  binaryChain(level: number): Expr {
    const ops = BINARY_LEVELS[level]!;
    let left = this.binary(level + 1);
    for (;;) {
      const pos = this.pos();
      let op: string | undefined;
      if (ops.includes('>>') && this.isShiftRight()) {
        this.next();
        this.next();
        op = '>>';
      } else if (this.tok.kind === 'op' && ops.includes(this.tok.text)) {
        if (this.tok.text === '>' && this.isShiftRight()) break;
        op = this.next().text;
      }
      if (!op) return left;
      this.enter();
      const right = this.binary(level + 1);
      left = { k: 'binary', pos: pos.line ? left.pos : pos, op, left, right };
    }
    return left;
  }

  unary(): Expr {
    const depth = this.enter();
    try {
      return this.unaryAt();
    } finally {
      this.leave(depth);
    }
  }

  unaryAt(): Expr {
    const pos = this.pos();
    if (this.is('!') || this.is('~') || this.is('-') || this.is('+')) {
      const op = this.next().text;
      return { k: 'unary', pos, op, arg: this.unary() };
    }
    if (this.is('(') && this.isCastAhead()) {
      this.next();
      const type = this.typeRef();
      this.expect(')');
      return { k: 'cast', pos, type, arg: this.unary() };
    }
    return this.postfix(this.primary());
  }

  isCastAhead(): boolean {
    const t = this.peek(1);
    if (t.kind !== 'id' || !this.isTypeName(t.text)) return false;
    // `(T) x` — but not `(T.member ...)`; a known type name followed by `)` `<` or `[`.
    const after = this.peek(2).text;
    return after === ')' || after === '<' || after === '[';
  }

  primary(): Expr {
    const pos = this.pos();
    const t = this.tok;
    if (t.kind === 'num') {
      this.next();
      if (t.width !== undefined)
        return { k: 'int', pos, value: t.value!, width: t.width, signed: t.signed ?? false };
      return { k: 'int', pos, value: t.value! };
    }
    if (t.kind === 'str') {
      this.next();
      return { k: 'str', pos, value: t.text };
    }
    if (t.kind === 'op') {
      if (t.text === '(') {
        this.next();
        const e = this.expression();
        this.expect(')');
        return e;
      }
      if (t.text === '{') {
        this.next();
        const elems: Expr[] = [];
        if (!this.is('}')) {
          do {
            if (this.is('}')) break;
            if (this.tok.kind === 'id' && this.is('=', 1)) {
              fail('unsupported', this.tok, 'struct initializer expressions `{ field = value }`');
            }
            elems.push(this.expression());
          } while (this.accept(','));
        }
        this.expect('}');
        return { k: 'list', pos, elems };
      }
      if (t.text === '.') {
        // `.name`: the top-level name, bypassing local scopes.
        this.next();
        return { k: 'name', pos, name: this.ident() };
      }
      this.error('an expression');
    }
    if (t.kind !== 'id') this.error('an expression');
    if (t.text === 'true' || t.text === 'false') {
      this.next();
      return { k: 'bool', pos, value: t.text === 'true' };
    }
    if (t.text === 'bit' || t.text === 'int' || t.text === 'varbit' || t.text === 'tuple') {
      // A type used as an expression base, e.g. `bit<8>` in `T.minSizeInBits()` forms.
      return { k: 'typeref', pos, type: this.typeRef() };
    }
    this.next();
    return { k: 'name', pos, name: t.text };
  }

  postfix(base: Expr): Expr {
    const depth = this.#depth;
    try {
      return this.postfixChain(base);
    } finally {
      this.leave(depth);
    }
  }

  /** `a.b[c].d(...)` nests to the left: each step is a level, as in binaryChain(). */
  postfixChain(base: Expr): Expr {
    let e = base;
    for (;;) {
      const pos = e.pos;
      if (e !== base) this.enter();
      if (this.accept('.')) {
        const name = this.ident('a member name');
        e = { k: 'member', pos, base: e, name };
        continue;
      }
      if (this.is('[')) {
        this.next();
        const first = this.expression();
        if (this.accept(':')) {
          const lo = this.expression();
          this.expect(']');
          e = { k: 'slice', pos, base: e, hi: first, lo };
        } else {
          this.expect(']');
          e = { k: 'index', pos, base: e, index: first };
        }
        continue;
      }
      if (this.is('<') && (e.k === 'name' || e.k === 'member')) {
        // Explicit type arguments `f<T>(...)` — only when a type list and `(` follow.
        const typeArgs = this.attempt(() => {
          this.expect('<');
          const list: TypeRef[] = [];
          do {
            const a = this.tok;
            if (a.kind !== 'id' || !(this.isTypeName(a.text) || a.text === '_')) throw new Backtrack();
            list.push(this.typeRef());
          } while (this.accept(','));
          this.closeAngle();
          if (!this.is('(')) throw new Backtrack();
          return list;
        });
        if (typeArgs) {
          e = { k: 'call', pos, fn: e, typeArgs, args: this.args() };
          continue;
        }
        return e;
      }
      if (this.is('(')) {
        e = { k: 'call', pos, fn: e, typeArgs: [], args: this.args() };
        continue;
      }
      return e;
    }
  }
}
