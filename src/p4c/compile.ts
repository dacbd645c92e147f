/**
 * The compiler driver: P4_16 source → preprocess → parse → type check and lower → IR →
 * BMv2 JSON and p4info. One call, no external tools.
 */

import { basename } from 'node:path';
import { toBmv2 } from './bmv2.js';
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
  const tokens = preprocess(source, file, options);
  const ast = parse(tokens);
  return new Lowerer().lower(ast, basename(file));
}

export function compileP4(source: string, options: CompileOptions = {}): CompileResult {
  const ir = compileToIr(source, options);
  return { ir, bmv2: toBmv2(ir), p4info: toP4Info(ir) };
}
