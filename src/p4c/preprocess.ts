/**
 * The preprocessor subset thunderpac supports: `#include <...>` / `"..."`, object-like
 * `#define` / `#undef`, `#ifdef` / `#ifndef` / `#else` / `#endif`, `#error`; `#pragma` and
 * `#line` are ignored. It works on tokens, not text, so every token keeps the file:line:col
 * where it was written. Function-like macros and `#if` expressions are refused by name.
 */

import { dirname, join } from 'node:path';
import { packagePath } from '../runtime/package-root.js';
import { fail, type SourcePos } from './errors.js';
import { IncludeFiles } from './include-files.js';
import { lex, type Token } from './lexer.js';
import {
  MAX_INCLUDE_DEPTH,
  MAX_MACRO_DEPTH,
  MAX_MACRO_TOKENS,
  MAX_SOURCE_BYTES,
  MAX_TOKENS,
} from './limits.js';

export interface PreprocessOptions {
  /**
   * Directories searched for `<...>` includes; thunderpac's p4/ folder is always last. Includes
   * read from disk must lie inside these, the program's directory or p4/ (include-files.ts).
   */
  readonly includeDirs?: readonly string[];
  /** Predefined macros (`-D NAME=VALUE`). */
  readonly defines?: Readonly<Record<string, string>>;
  /** In-memory files by name, consulted before the disk (tests, sources handed in as strings). */
  readonly files?: Readonly<Record<string, string>>;
}

export const P4_INCLUDE_DIR = packagePath('p4');

interface Cond {
  /** Whether this branch's tokens are kept. */
  active: boolean;
  /** Whether any branch of this #if chain was taken (an #else is active only if none was). */
  taken: boolean;
  /** Whether the enclosing region is active at all. */
  parent: boolean;
  pos: SourcePos;
}

export function preprocess(source: string, file: string, options: PreprocessOptions = {}): Token[] {
  if (source.length > MAX_SOURCE_BYTES)
    fail(
      'limit',
      { file, line: 1, col: 1 },
      `a program of at most ${MAX_SOURCE_BYTES} bytes`,
      `${source.length}`,
    );
  const macros = new Map<string, Token[]>();
  for (const [name, value] of Object.entries(options.defines ?? {})) {
    macros.set(name, lex(value, `<define ${name}>`).slice(0, -1));
  }
  const includeDirs = [...(options.includeDirs ?? []), P4_INCLUDE_DIR];
  const disk = new IncludeFiles([dirname(file), ...includeDirs]);
  const out: Token[] = [];
  const stack: string[] = [];
  const emit = (tok: Token): void => {
    if (out.length >= MAX_TOKENS)
      fail('limit', tok, `a program of at most ${MAX_TOKENS} tokens after preprocessing`);
    out.push(tok);
  };

  const readInclude = (name: string, quoted: boolean, from: string, pos: SourcePos): [string, string] => {
    const candidates: string[] = [];
    if (quoted) candidates.push(join(dirname(from), name));
    candidates.push(...includeDirs.map((d) => join(d, name)));
    for (const c of [name, ...candidates]) {
      const inMemory = options.files?.[c];
      if (inMemory !== undefined) {
        if (inMemory.length > MAX_SOURCE_BYTES)
          fail('limit', pos, `an include file of at most ${MAX_SOURCE_BYTES} bytes`, `'${name}'`);
        return [c, inMemory];
      }
    }
    const found = disk.read(name, candidates, pos);
    if (found) return found;
    return fail('preprocess', pos, `an include file '${name}' in ${includeDirs.join(', ')}`, 'no such file');
  };

  const run = (text: string, path: string, display: string): void => {
    if (stack.includes(path)) fail('preprocess', { file: display, line: 1, col: 1 }, 'no recursive #include');
    stack.push(path);
    const conds: Cond[] = [];
    const active = () => conds.length === 0 || conds[conds.length - 1]!.active;
    for (const tok of lex(text, display)) {
      if (tok.kind === 'eof') break;
      if (tok.kind !== 'directive') {
        if (!active()) continue;
        const body = tok.kind === 'id' ? macros.get(tok.text) : undefined;
        if (body) expand(tok, body, macros, emit, new Set([tok.text]), { count: 0 });
        else emit(tok);
        continue;
      }
      const m = /^(\w+)\s*(.*)$/.exec(tok.text);
      const name = m?.[1] ?? '';
      const rest = m?.[2] ?? '';
      switch (name) {
        case 'ifdef':
        case 'ifndef': {
          const parent = active();
          const defined = macros.has(rest.trim());
          const on = name === 'ifdef' ? defined : !defined;
          conds.push({ active: parent && on, taken: on, parent, pos: tok });
          continue;
        }
        case 'else': {
          const c = conds[conds.length - 1];
          if (!c) fail('preprocess', tok, '#else after an #ifdef/#ifndef');
          c.active = c.parent && !c.taken;
          c.taken = true;
          continue;
        }
        case 'endif':
          if (!conds.pop()) fail('preprocess', tok, '#endif after an #ifdef/#ifndef');
          continue;
        case 'if':
        case 'elif':
          fail('preprocess', tok, `#${name} with an expression (only #ifdef/#ifndef/#else/#endif)`);
      }
      if (!active()) continue;
      switch (name) {
        case 'include': {
          const inc = /^(<([^>]+)>|"([^"]+)")$/.exec(rest.trim());
          if (!inc) fail('preprocess', tok, '#include <file> or #include "file"', `#include ${rest}`);
          const file = inc[2] ?? inc[3]!;
          if (stack.length >= MAX_INCLUDE_DEPTH)
            fail('limit', tok, `#include nested at most ${MAX_INCLUDE_DEPTH} files deep`);
          const [resolved, body] = readInclude(file, inc[3] !== undefined, path, tok);
          run(body, resolved, inc[2] !== undefined ? file : resolved);
          break;
        }
        case 'define': {
          const d = /^([A-Za-z_]\w*)(\(?)\s*(.*)$/.exec(rest);
          if (!d) fail('preprocess', tok, '#define NAME [value]', `#define ${rest}`);
          if (d[2] === '(')
            fail('unsupported', tok, `function-like macro '${d[1]}' (only object-like #define)`);
          macros.set(d[1]!, relocate(lex(d[3] ?? '', tok.file).slice(0, -1), tok));
          break;
        }
        case 'undef':
          macros.delete(rest.trim());
          break;
        case 'error':
          fail('preprocess', tok, 'no #error', `#error ${rest}`);
          break;
        case 'pragma':
        case 'line':
          break;
        default:
          fail(
            'preprocess',
            tok,
            'a supported directive (#include, #define, #undef, #ifdef, #ifndef, #else, #endif)',
            `#${name}`,
          );
      }
    }
    if (conds.length > 0)
      fail('preprocess', conds[conds.length - 1]!.pos, '#endif closing this conditional', 'end of file');
    stack.pop();
  };

  run(source, file, file);
  const last = out[out.length - 1];
  out.push({ kind: 'eof', text: '', gap: true, file, line: last ? last.line + 1 : 1, col: 1 });
  return out;
}

/** Macro bodies were lexed from the directive's text alone; put them on the directive's line. */
function relocate(tokens: Token[], at: SourcePos): Token[] {
  return tokens.map((t) => ({ ...t, file: at.file, line: at.line }));
}

/**
 * Writes a macro's expansion. `seen` holds the macros being expanded (a macro never expands
 * inside itself) and bounds the depth; `budget` counts the tokens one use has produced, so a
 * chain of macros that each double the last fails at once instead of filling the heap.
 */
function expand(
  use: Token,
  body: Token[],
  macros: Map<string, Token[]>,
  emit: (tok: Token) => void,
  seen: Set<string>,
  budget: { count: number },
): void {
  if (seen.size > MAX_MACRO_DEPTH)
    fail('limit', use, `macros expanded at most ${MAX_MACRO_DEPTH} deep inside one another`);
  for (const [i, t] of body.entries()) {
    // Expanded tokens point at the macro's use, where an error in them is fixed.
    const placed: Token = {
      ...t,
      file: use.file,
      line: use.line,
      col: use.col,
      gap: i === 0 ? use.gap : t.gap,
    };
    const inner = t.kind === 'id' && !seen.has(t.text) ? macros.get(t.text) : undefined;
    if (inner) {
      seen.add(t.text);
      expand(placed, inner, macros, emit, seen, budget);
      seen.delete(t.text);
    } else {
      if (++budget.count > MAX_MACRO_TOKENS)
        fail('limit', use, `a macro expanding to at most ${MAX_MACRO_TOKENS} tokens`);
      emit(placed);
    }
  }
}
