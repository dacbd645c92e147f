/**
 * The compiler driver: P4_16 source → preprocess → parse → type check and lower → IR →
 * BMv2 JSON and p4info. One call, no external tools.
 */

import { basename } from 'node:path';
import { ThunderpacError } from '../runtime/errors.js';
import { toBmv2 } from './bmv2.js';
import { P4CompileError } from './errors.js';
import type { IrProgram } from './ir.js';
import { Lowerer } from './lower.js';
import { toP4Info } from './p4info.js';
import { parse } from './parser.js';
import { type PreprocessOptions, preprocess } from './preprocess.js';

export const P4C_VERSION = '0.1.0';

export interface CompileOptions extends PreprocessOptions {
  /** File name used in positions and in the JSON's `program` (default `program.p4`). */
  readonly file?: string;
}

export interface CompileResult {
  readonly ir: IrProgram;
  readonly bmv2: Bmv2Json;
  readonly p4info: P4Info;
}

export type { Bmv2Json } from './bmv2.js';
export type { P4Info } from './p4info.js';

import type { Bmv2Json } from './bmv2.js';
import type { P4Info } from './p4info.js';

export function compileToIr(source: string, options: CompileOptions = {}): IrProgram {
  const file = options.file ?? 'program.p4';
  return asCompileError(file, () => {
    const tokens = preprocess(source, file, options);
    const ast = parse(tokens);
    return new Lowerer().lower(ast, basename(file));
  });
}

export function compileP4(source: string, options: CompileOptions = {}): CompileResult {
  const ir = compileToIr(source, options);
  return asCompileError(options.file ?? 'program.p4', () => ({ ir, bmv2: toBmv2(ir), p4info: toP4Info(ir) }));
}

/**
 * The last line of defence: whatever a program makes the compiler throw reaches the caller as
 * a P4CompileError (kind `internal`, at the program) rather than a raw TypeError or
 * RangeError with a stack trace. Each such error is a compiler bug to fix; the limits in
 * limits.ts and the checks are what is meant to catch hostile programs.
 */
function asCompileError<T>(file: string, compile: () => T): T {
  try {
    return compile();
  } catch (err) {
    if (err instanceof ThunderpacError) throw err;
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new P4CompileError(
      'internal',
      { file, line: 1, col: 1 },
      `a program the compiler can handle (${what})`,
    );
  }
}
