/**
 * The compiler's one IR: what every back end (BMv2 JSON today; eBPF and WASM later) lowers
 * from without re-reading source. It is v1model-shaped but target-neutral: data lives in
 * header instances (user headers, metadata structs, the scalars of locals) with fixed bit
 * layouts; the parser is a state graph; ingress and egress are graphs of table and
 * conditional nodes; actions are statement lists over locations; externs are named
 * instances. Every name is fully qualified (`MyIngress.ipv4_lpm`) as p4c qualifies them.
 */

export type IrType =
  | { readonly k: 'bits'; readonly w: number; readonly signed: boolean }
  | { readonly k: 'bool' };

export const BOOL: IrType = { k: 'bool' };
export const bits = (w: number, signed = false): IrType => ({ k: 'bits', w, signed });

export interface IrField {
  readonly name: string;
  readonly width: number;
  readonly signed: boolean;
  /** A varbit field: `width` is its maximum. */
  readonly varbit?: boolean;
}

export interface IrHeaderType {
  readonly name: string;
  readonly fields: readonly IrField[];
}

export interface IrHeader {
  readonly name: string;
  readonly type: string;
  /** Metadata is always valid and never emitted (standard_metadata, scalars, user metadata). */
  readonly metadata: boolean;
}

export interface IrStack {
  readonly name: string;
  readonly type: string;
  readonly size: number;
  /** The header instances holding elements 0..size-1. */
  readonly headers: readonly string[];
}

export interface IrUnion {
  readonly name: string;
  readonly type: string;
  /** Member name → header instance. */
  readonly members: readonly { readonly name: string; readonly header: string; readonly type: string }[];
}

export type BinOp =
  | '+'
  | '-'
  | '*'
  | '/'
  | '%'
  | '<<'
  | '>>'
  | '&'
  | '|'
  | '^'
  | '=='
  | '!='
  | '<'
  | '>'
  | '<='
  | '>='
  | '&&'
  | '||'
  | '|+|'
  | '|-|';

export type IrExpr =
  | { readonly k: 'const'; readonly t: IrType; readonly value: bigint }
  | { readonly k: 'field'; readonly t: IrType; readonly header: string; readonly field: string }
  /** The header's validity bit (`isValid()`). */
  | { readonly k: 'valid'; readonly t: IrType; readonly header: string }
  /** An action parameter (BMv2 runtime data) by position. */
  | { readonly k: 'param'; readonly t: IrType; readonly index: number }
  | { readonly k: 'unop'; readonly t: IrType; readonly op: '~' | '-' | '!'; readonly arg: IrExpr }
  | {
      readonly k: 'binop';
      readonly t: IrType;
      readonly op: BinOp;
      readonly left: IrExpr;
      readonly right: IrExpr;
    }
  | {
      readonly k: 'slice';
      readonly t: IrType;
      readonly arg: IrExpr;
      readonly hi: number;
      readonly lo: number;
    }
  | { readonly k: 'concat'; readonly t: IrType; readonly left: IrExpr; readonly right: IrExpr }
  /** Width/sign/bool conversion; truncates or extends (sign-extends from signed sources). */
  | { readonly k: 'cast'; readonly t: IrType; readonly arg: IrExpr }
  | {
      readonly k: 'cond';
      readonly t: IrType;
      readonly test: IrExpr;
      readonly ifTrue: IrExpr;
      readonly ifFalse: IrExpr;
    }
  /** Parser select keys only: a field of the last extracted element of a header stack (`hs.last.f`). */
  | { readonly k: 'stackField'; readonly t: IrType; readonly stack: string; readonly field: string }
  /** Parser only: bits ahead of the cursor, not consumed. */
  | { readonly k: 'lookahead'; readonly t: IrType; readonly offset: number; readonly width: number };

export type IrFieldRef = Extract<IrExpr, { k: 'field' }>;

export type IrStmt =
  | { readonly k: 'assign'; readonly target: IrFieldRef; readonly value: IrExpr }
  | { readonly k: 'copyHeader'; readonly target: string; readonly source: string }
  | { readonly k: 'setValid' | 'setInvalid'; readonly header: string }
  | {
      readonly k: 'if';
      readonly test: IrExpr;
      readonly then: readonly IrStmt[];
      readonly else: readonly IrStmt[];
    }
  | { readonly k: 'drop' }
  | { readonly k: 'exit' }
  | { readonly k: 'count'; readonly counter: string; readonly index: IrExpr }
  | {
      readonly k: 'registerRead';
      readonly target: IrFieldRef;
      readonly register: string;
      readonly index: IrExpr;
    }
  | { readonly k: 'registerWrite'; readonly register: string; readonly index: IrExpr; readonly value: IrExpr }
  | { readonly k: 'meter'; readonly meter: string; readonly index: IrExpr; readonly target: IrFieldRef }
  | {
      readonly k: 'hash';
      readonly target: IrFieldRef;
      readonly algo: string;
      readonly base: IrExpr;
      readonly data: readonly IrExpr[];
      readonly max: IrExpr;
    }
  | { readonly k: 'random'; readonly target: IrFieldRef; readonly lo: IrExpr; readonly hi: IrExpr }
  | { readonly k: 'push' | 'pop'; readonly stack: string; readonly count: number }
  | { readonly k: 'log'; readonly message: string }
  /** v1model clone / clone_preserving_field_list; fieldList is the @field_list index, or null. */
  | {
      readonly k: 'clone';
      readonly type: 'I2E' | 'E2E';
      readonly session: IrExpr;
      readonly fieldList: number | null;
    }
  /** v1model resubmit_preserving_field_list / recirculate_preserving_field_list. */
  | { readonly k: 'resubmit' | 'recirculate'; readonly fieldList: number }
  /** v1model digest: the data was copied into `fields` (temporaries) where digest was called. */
  | {
      readonly k: 'digest';
      readonly receiver: IrExpr;
      readonly list: string;
      readonly fields: readonly IrFieldRef[];
    }
  | { readonly k: 'assert'; readonly test: IrExpr };

export interface IrAction {
  readonly name: string;
  readonly params: readonly { readonly name: string; readonly width: number }[];
  readonly body: readonly IrStmt[];
  /** Synthesized for statements written directly in an apply block. */
  readonly synthetic: boolean;
}

// ---------------------------------------------------------------- parser

export type IrParserOp =
  | { readonly k: 'extract'; readonly header: string }
  | { readonly k: 'extractNext'; readonly stack: string }
  | { readonly k: 'extractVarbit'; readonly header: string; readonly bits: IrExpr }
  | { readonly k: 'advance'; readonly bits: IrExpr }
  | { readonly k: 'verify'; readonly test: IrExpr; readonly error: number }
  | { readonly k: 'stmt'; readonly stmt: IrStmt };

export type IrKeysetElem =
  | { readonly k: 'value'; readonly value: bigint; readonly mask: bigint | null }
  | { readonly k: 'default' }
  | { readonly k: 'vset'; readonly vset: string };

export interface IrSelectCase {
  /** One element per select key; all default (or an empty list) is the default case. */
  readonly keys: readonly IrKeysetElem[];
  /** Next state; null means accept, 'reject' rejects. */
  readonly next: string | null;
}

export interface IrParserState {
  readonly name: string;
  readonly ops: readonly IrParserOp[];
  /** Select keys (fields or lookaheads) with their widths. */
  readonly keys: readonly IrExpr[];
  readonly cases: readonly IrSelectCase[];
}

export interface IrParser {
  readonly name: string;
  readonly init: string;
  readonly states: readonly IrParserState[];
}

export interface IrValueSet {
  readonly name: string;
  readonly width: number;
  readonly size: number;
}

// ---------------------------------------------------------------- controls

export type MatchKind = 'exact' | 'lpm' | 'ternary' | 'range' | 'optional';

export interface IrTableKey {
  readonly match: MatchKind;
  /** As written, for p4info and error messages (`hdr.ipv4.dstAddr`). */
  readonly name: string;
  /** A field, or a header's validity bit (`isValid()` keys). */
  readonly target: { readonly header: string; readonly field: string };
  readonly width: number;
  /** A slice key reads the field under this mask. */
  readonly mask: bigint | null;
}

export type IrKeyMatch =
  | { readonly k: 'exact'; readonly value: bigint }
  | { readonly k: 'lpm'; readonly value: bigint; readonly prefix: number }
  | { readonly k: 'ternary'; readonly value: bigint; readonly mask: bigint }
  | { readonly k: 'range'; readonly lo: bigint; readonly hi: bigint }
  | { readonly k: 'optional'; readonly value: bigint; readonly wildcard: boolean };

export interface IrActionCall {
  readonly action: string;
  readonly args: readonly bigint[];
}

export interface IrEntry {
  readonly keys: readonly IrKeyMatch[];
  readonly action: IrActionCall;
  /** BMv2 priorities: a lower number wins. */
  readonly priority: number;
}

export interface IrTable {
  readonly k: 'table';
  readonly name: string;
  readonly keys: readonly IrTableKey[];
  readonly actions: readonly string[];
  readonly defaultAction: IrActionCall;
  readonly defaultConst: boolean;
  readonly entries: readonly IrEntry[];
  readonly entriesConst: boolean;
  readonly size: number;
  readonly directCounter: string | null;
  readonly directMeter: { readonly meter: string; readonly target: IrFieldRef } | null;
  /** Where control goes after the table: by action name, or by hit/miss, then a default. */
  readonly next: {
    readonly byAction: Readonly<Record<string, string | null>> | null;
    readonly hit: string | null;
    readonly miss: string | null;
    readonly hitMiss: boolean;
    readonly base: string | null;
  };
  readonly synthetic: boolean;
}

export interface IrConditional {
  readonly k: 'cond';
  readonly name: string;
  readonly test: IrExpr;
  readonly trueNext: string | null;
  readonly falseNext: string | null;
}

export type IrNode = IrTable | IrConditional;

export interface IrControl {
  readonly name: string;
  readonly init: string | null;
  readonly nodes: readonly IrNode[];
}

// ---------------------------------------------------------------- externs

export interface IrCounter {
  readonly name: string;
  readonly size: number;
  readonly type: 'packets' | 'bytes' | 'packets_and_bytes';
  /** The table a direct counter is bound to. */
  readonly direct: string | null;
}

export interface IrRegister {
  readonly name: string;
  readonly size: number;
  readonly width: number;
}

export interface IrMeter {
  readonly name: string;
  readonly size: number;
  readonly type: 'packets' | 'bytes';
  readonly direct: string | null;
  readonly resultWidth: number;
}

export interface IrChecksum {
  readonly name: string;
  readonly condition: IrExpr | null;
  readonly data: readonly IrExpr[];
  readonly target: IrFieldRef;
  readonly algo: 'csum16';
  readonly withPayload: boolean;
}

export interface IrProgram {
  readonly name: string;
  readonly headerTypes: readonly IrHeaderType[];
  readonly headers: readonly IrHeader[];
  readonly stacks: readonly IrStack[];
  readonly unions: readonly IrUnion[];
  readonly errors: readonly { readonly name: string; readonly value: number }[];
  readonly parser: IrParser;
  readonly valueSets: readonly IrValueSet[];
  readonly verifyChecksums: readonly IrChecksum[];
  readonly ingress: IrControl;
  readonly egress: IrControl;
  readonly updateChecksums: readonly IrChecksum[];
  /** Header instances in emit order; stacks are expanded to their elements. */
  readonly deparser: { readonly name: string; readonly emit: readonly string[] };
  readonly actions: readonly IrAction[];
  readonly counters: readonly IrCounter[];
  readonly registers: readonly IrRegister[];
  readonly meters: readonly IrMeter[];
  /** v1model field lists: the user metadata fields tagged `@field_list(index)`. */
  readonly fieldLists?: readonly { readonly index: number; readonly fields: readonly IrFieldRef[] }[];
}
