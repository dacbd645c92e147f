/**
 * The one error type of the P4 compiler. Every refusal — a syntax error, a type error, a
 * construct thunderpac does not support — names the place in the source (file:line:col) and
 * what was expected there, so a user can fix the program without reading the compiler.
 */

import { ThunderpacError } from '../runtime/errors.js';

export interface SourcePos {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

/**
 * `limit`: the program crossed one of the bounds in limits.ts (too deep, too large, too many).
 * `internal`: the compiler itself failed on this program — a bug, reported at the program
 * rather than as a raw exception (the fuzz targets treat it as a finding).
 */
export type P4ErrorKind =
  | 'preprocess'
  | 'syntax'
  | 'type'
  | 'unsupported'
  | 'semantic'
  | 'limit'
  | 'internal';

export class P4CompileError extends ThunderpacError {
  readonly kind: P4ErrorKind;
  readonly pos: SourcePos;
  /** What the compiler expected at `pos` (a token, a type, a construct it supports). */
  readonly expected: string;
  readonly found: string | undefined;

  constructor(kind: P4ErrorKind, pos: SourcePos, expected: string, found?: string) {
    const where = `${pos.file}:${pos.line}:${pos.col}`;
    const detail =
      kind === 'unsupported'
        ? `unsupported: ${expected}`
        : found === undefined
          ? expected
          : `expected ${expected}, found ${found}`;
    super(`P4_${kind.toUpperCase()}`, `${where}: ${kind} error: ${detail}`);
    this.kind = kind;
    this.pos = { file: pos.file, line: pos.line, col: pos.col };
    this.expected = expected;
    this.found = found;
  }
}

export function fail(kind: P4ErrorKind, pos: SourcePos, expected: string, found?: string): never {
  throw new P4CompileError(kind, pos, expected, found);
}
