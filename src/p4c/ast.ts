/**
 * The P4_16 abstract syntax tree, as the parser builds it: no names resolved, no types
 * inferred. Every node carries the position of its first token for error messages.
 */

import type { SourcePos } from './errors.js';

export interface Node {
  readonly pos: SourcePos;
}

export interface Annotation extends Node {
  readonly name: string;
  readonly args: readonly Expr[];
}

// ---------------------------------------------------------------- types

export type TypeRef =
  | (Node & { readonly k: 'bit'; readonly signed: boolean; readonly width: Expr })
  | (Node & { readonly k: 'varbit'; readonly width: Expr })
  | (Node & { readonly k: 'bool' | 'error' | 'void' | 'string' | 'int' | 'dontcare' | 'packet_in' })
  | (Node & { readonly k: 'named'; readonly name: string; readonly args: readonly TypeRef[] })
  | (Node & { readonly k: 'stack'; readonly elem: TypeRef; readonly size: Expr })
  | (Node & { readonly k: 'tuple'; readonly elems: readonly TypeRef[] });

// ---------------------------------------------------------------- expressions

export type Expr =
  | (Node & { readonly k: 'int'; readonly value: bigint; readonly width?: number; readonly signed?: boolean })
  | (Node & { readonly k: 'bool'; readonly value: boolean })
  | (Node & { readonly k: 'str'; readonly value: string })
  | (Node & { readonly k: 'name'; readonly name: string })
  | (Node & { readonly k: 'member'; readonly base: Expr; readonly name: string })
  | (Node & { readonly k: 'index'; readonly base: Expr; readonly index: Expr })
  | (Node & { readonly k: 'slice'; readonly base: Expr; readonly hi: Expr; readonly lo: Expr })
  | (Node & {
      readonly k: 'call';
      readonly fn: Expr;
      readonly typeArgs: readonly TypeRef[];
      readonly args: readonly Arg[];
    })
  | (Node & { readonly k: 'unary'; readonly op: string; readonly arg: Expr })
  | (Node & { readonly k: 'binary'; readonly op: string; readonly left: Expr; readonly right: Expr })
  | (Node & { readonly k: 'cond'; readonly test: Expr; readonly then: Expr; readonly else: Expr })
  | (Node & { readonly k: 'cast'; readonly type: TypeRef; readonly arg: Expr })
  | (Node & { readonly k: 'list'; readonly elems: readonly Expr[] })
  | (Node & { readonly k: 'mask'; readonly value: Expr; readonly mask: Expr })
  | (Node & { readonly k: 'range'; readonly lo: Expr; readonly hi: Expr })
  | (Node & { readonly k: 'default' })
  | (Node & { readonly k: 'typeref'; readonly type: TypeRef });

export interface Arg extends Node {
  readonly name?: string;
  readonly value: Expr;
}

// ---------------------------------------------------------------- statements

export type Stmt =
  | (Node & { readonly k: 'assign'; readonly target: Expr; readonly value: Expr })
  | (Node & { readonly k: 'call'; readonly call: Expr })
  | (Node & { readonly k: 'if'; readonly test: Expr; readonly then: Stmt; readonly else?: Stmt })
  | (Node & { readonly k: 'block'; readonly body: readonly Stmt[] })
  | (Node & { readonly k: 'switch'; readonly on: Expr; readonly cases: readonly SwitchCase[] })
  | (Node & { readonly k: 'exit' })
  | (Node & { readonly k: 'return'; readonly value?: Expr })
  | (Node & { readonly k: 'var'; readonly decl: VarDecl })
  | (Node & { readonly k: 'const'; readonly decl: ConstDecl })
  | (Node & { readonly k: 'empty' });

export interface SwitchCase extends Node {
  /** Labels: names of actions, expressions, or `default`; an absent body falls through. */
  readonly labels: readonly Expr[];
  readonly body?: Stmt;
}

// ---------------------------------------------------------------- declarations

export type Direction = 'in' | 'out' | 'inout' | 'none';

export interface Param extends Node {
  readonly name: string;
  readonly dir: Direction;
  readonly type: TypeRef;
  readonly defaultValue?: Expr;
  readonly annotations: readonly Annotation[];
}

export interface Field extends Node {
  readonly name: string;
  readonly type: TypeRef;
  readonly annotations: readonly Annotation[];
}

export interface VarDecl extends Node {
  readonly k: 'var';
  readonly name: string;
  readonly type: TypeRef;
  readonly init?: Expr;
}

export interface ConstDecl extends Node {
  readonly k: 'const';
  readonly name: string;
  readonly type: TypeRef;
  readonly value: Expr;
}

export interface ActionDecl extends Node {
  readonly k: 'action';
  readonly name: string;
  readonly params: readonly Param[];
  readonly body: readonly Stmt[];
  readonly annotations: readonly Annotation[];
}

export interface FunctionDecl extends Node {
  readonly k: 'function';
  readonly name: string;
  readonly ret: TypeRef;
  readonly typeParams: readonly string[];
  readonly params: readonly Param[];
  readonly body: readonly Stmt[];
}

export interface TableProperty extends Node {
  readonly name: string;
  readonly isConst: boolean;
  readonly value:
    | {
        readonly k: 'keys';
        readonly keys: readonly {
          readonly expr: Expr;
          readonly matchKind: string;
          readonly pos: SourcePos;
          readonly annotations: readonly Annotation[];
        }[];
      }
    | {
        readonly k: 'actions';
        readonly actions: readonly {
          readonly call: Expr;
          readonly pos: SourcePos;
          readonly annotations: readonly Annotation[];
        }[];
      }
    | { readonly k: 'entries'; readonly entries: readonly TableEntryDecl[] }
    | { readonly k: 'expr'; readonly expr: Expr };
}

export interface TableEntryDecl extends Node {
  readonly keys: Expr;
  readonly action: Expr;
  readonly priority?: Expr;
  /** After the action: `@priority(n)` (p4c's BMv2 form: a lower number wins). */
  readonly annotations?: readonly Annotation[];
}

export interface TableDecl extends Node {
  readonly k: 'table';
  readonly name: string;
  readonly props: readonly TableProperty[];
  readonly annotations: readonly Annotation[];
}

export interface InstanceDecl extends Node {
  readonly k: 'instance';
  readonly name: string;
  readonly type: TypeRef;
  readonly args: readonly Arg[];
  readonly annotations: readonly Annotation[];
}

export interface ValueSetDecl extends Node {
  readonly k: 'value_set';
  readonly name: string;
  readonly type: TypeRef;
  readonly size: Expr;
}

export interface ParserState extends Node {
  readonly name: string;
  readonly body: readonly Stmt[];
  readonly transition?: Transition;
}

export type Transition =
  | (Node & { readonly k: 'goto'; readonly next: string })
  | (Node & { readonly k: 'select'; readonly on: readonly Expr[]; readonly cases: readonly SelectCase[] });

export interface SelectCase extends Node {
  readonly keyset: Expr;
  readonly next: string;
}

export type LocalDecl =
  | VarDecl
  | ConstDecl
  | ActionDecl
  | TableDecl
  | InstanceDecl
  | ValueSetDecl
  | FunctionDecl;

export interface ParserDecl extends Node {
  readonly k: 'parser';
  readonly name: string;
  readonly typeParams: readonly string[];
  readonly params: readonly Param[];
  readonly ctorParams: readonly Param[];
  readonly locals: readonly LocalDecl[];
  readonly states: readonly ParserState[];
  readonly annotations: readonly Annotation[];
}

export interface ControlDecl extends Node {
  readonly k: 'control';
  readonly name: string;
  readonly typeParams: readonly string[];
  readonly params: readonly Param[];
  readonly ctorParams: readonly Param[];
  readonly locals: readonly LocalDecl[];
  readonly apply: readonly Stmt[];
  readonly annotations: readonly Annotation[];
}

export interface ExternMethod extends Node {
  readonly name: string;
  readonly ret: TypeRef | null;
  readonly typeParams: readonly string[];
  readonly params: readonly Param[];
  readonly isAbstract: boolean;
}

export type Decl =
  | (Node & {
      readonly k: 'header' | 'struct' | 'header_union';
      readonly name: string;
      readonly typeParams: readonly string[];
      readonly fields: readonly Field[];
      readonly annotations: readonly Annotation[];
    })
  | (Node & { readonly k: 'typedef' | 'newtype'; readonly name: string; readonly type: TypeRef })
  | (Node & {
      readonly k: 'enum';
      readonly name: string;
      readonly repr?: TypeRef;
      readonly members: readonly { readonly name: string; readonly value?: Expr; readonly pos: SourcePos }[];
    })
  | (Node & {
      readonly k: 'error' | 'match_kind';
      readonly members: readonly { readonly name: string; readonly pos: SourcePos }[];
    })
  | ConstDecl
  | ActionDecl
  | FunctionDecl
  | ParserDecl
  | ControlDecl
  | InstanceDecl
  | (Node & {
      readonly k: 'extern_object';
      readonly name: string;
      readonly typeParams: readonly string[];
      readonly methods: readonly ExternMethod[];
    })
  | (Node & {
      readonly k: 'extern_function';
      readonly name: string;
      readonly ret: TypeRef;
      readonly typeParams: readonly string[];
      readonly params: readonly Param[];
    })
  | (Node & {
      readonly k: 'parser_type' | 'control_type' | 'package_type';
      readonly name: string;
      readonly typeParams: readonly string[];
      readonly params: readonly Param[];
    });

export interface Program {
  readonly decls: readonly Decl[];
}
