/**
 * The preprocessor subset thunderpac supports: `#include <...>` / `"..."`, object-like
 * `#define` / `#undef`, `#ifdef` / `#ifndef` / `#else` / `#endif`, `#error`; `#pragma` and
 * `#line` are ignored. It works on tokens, not text, so every token keeps the file:line:col
 * where it was written. Function-like macros and `#if` expressions are refused by name.
 */

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { packagePath } from '../runtime/package-root.js';
import { fail, type SourcePos } from './errors.js';
import { lex, type Token } from './lexer.js';

export interface PreprocessOptions {
  /** Directories searched for `<...>` includes; thunderpac's p4/ folder is always last. */
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
  const macros = new Map<string, Token[]>();
  for (const [name, value] of Object.entries(options.defines ?? {})) {
    macros.set(name, lex(value, `<define ${name}>`).slice(0, -1));
  }
  const includeDirs = [...(options.includeDirs ?? []), P4_INCLUDE_DIR];
  const out: Token[] = [];
  const stack: string[] = [];

  const readInclude = (name: string, quoted: boolean, from: string, pos: SourcePos): [string, string] => {
    const candidates: string[] = [];
    if (quoted) candidates.push(join(dirname(from), name));
    candidates.push(...includeDirs.map((d) => join(d, name)));
    for (const c of [name, ...candidates]) {
      const inMemory = options.files?.[c];
      if (inMemory !== undefined) return [c, inMemory];
    }
    for (const c of candidates) if (existsSync(c)) return [c, readFileSync(c, 'utf8')];
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
        if (body) expand(tok, body, macros, out, new Set([tok.text]));
        else out.push(tok);
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

function expand(
  use: Token,
  body: Token[],
  macros: Map<string, Token[]>,
  out: Token[],
  seen: Set<string>,
): void {
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
    if (inner) expand(placed, inner, macros, out, new Set([...seen, t.text]));
    else out.push(placed);
  }
}
