/**
 * P4_16 lexer. Produces tokens that carry file:line:col; preprocessor directives come out as
 * one `directive` token per line so the preprocessor (preprocess.ts) can act on them without
 * re-reading text, and every token keeps the position it had in its own file.
 */

import { fail, type SourcePos } from './errors.js';
import { MAX_BIT_WIDTH, MAX_TOKENS } from './limits.js';

/** Digits (and `_` separators) of one integer literal: a bit<MAX_BIT_WIDTH> in binary, twice. */
const MAX_LITERAL_CHARS = 2 * MAX_BIT_WIDTH;

export type TokenKind = 'id' | 'num' | 'str' | 'op' | 'directive' | 'eof';

export interface Token extends SourcePos {
  readonly kind: TokenKind;
  readonly text: string;
  /** Integer literals: the value, and the width/signedness of `8w5` / `8s5` forms. */
  readonly value?: bigint;
  readonly width?: number;
  readonly signed?: boolean;
  /** True when whitespace or a comment precedes the token (`>>` is two `>` tokens with no gap). */
  readonly gap: boolean;
}

// Longest first: the lexer takes the first operator that matches at the cursor.
const OPERATORS = [
  '&&&',
  '|+|',
  '|-|',
  '++',
  '..',
  '==',
  '!=',
  '<=',
  '>=',
  '<<',
  '&&',
  '||',
  '{',
  '}',
  '(',
  ')',
  '[',
  ']',
  '<',
  '>',
  ';',
  ':',
  ',',
  '.',
  '=',
  '+',
  '-',
  '*',
  '/',
  '%',
  '&',
  '|',
  '^',
  '~',
  '!',
  '?',
  '@',
];

const DIGITS: Record<string, RegExp> = { x: /[0-9a-fA-F_]/, b: /[01_]/, o: /[0-7_]/, d: /[0-9_]/ };

export function lex(text: string, file: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  let gap = true;
  let atLineStart = true;
  const pos = (at: number): SourcePos => ({ file, line, col: at - lineStart + 1 });

  while (i < text.length) {
    // One file's tokens count against the same bound as the whole program's (limits.ts).
    if (tokens.length >= MAX_TOKENS)
      fail('limit', pos(i), `a program of at most ${MAX_TOKENS} tokens after preprocessing`);
    const c = text[i]!;
    if (c === '\n') {
      i++;
      line++;
      lineStart = i;
      gap = true;
      atLineStart = true;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f') {
      i++;
      gap = true;
      continue;
    }
    if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      gap = true;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const start = pos(i);
      i += 2;
      while (i < text.length && !(text[i] === '*' && text[i + 1] === '/')) {
        if (text[i] === '\n') {
          line++;
          lineStart = i + 1;
        }
        i++;
      }
      if (i >= text.length) fail('syntax', start, "'*/' closing the comment", 'end of file');
      i += 2;
      gap = true;
      continue;
    }
    const start = pos(i);
    if (c === '#' && atLineStart) {
      // A directive runs to the end of the line; `\` continues it. Comments inside are dropped.
      let body = '';
      i++;
      while (i < text.length && text[i] !== '\n') {
        if (text[i] === '\\' && text[i + 1] === '\n') {
          i += 2;
          line++;
          lineStart = i;
          body += ' ';
          continue;
        }
        if (text[i] === '/' && text[i + 1] === '/') {
          while (i < text.length && text[i] !== '\n') i++;
          break;
        }
        if (text[i] === '/' && text[i + 1] === '*') {
          i += 2;
          while (i < text.length && !(text[i] === '*' && text[i + 1] === '/')) {
            if (text[i] === '\n') {
              line++;
              lineStart = i + 1;
            }
            i++;
          }
          i += 2;
          body += ' ';
          continue;
        }
        body += text[i];
        i++;
      }
      tokens.push({ kind: 'directive', text: body.trim(), gap: true, ...start });
      continue;
    }
    atLineStart = false;
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < text.length && /[A-Za-z0-9_]/.test(text[j]!)) j++;
      tokens.push({ kind: 'id', text: text.slice(i, j), gap, ...start });
      i = j;
      gap = false;
      continue;
    }
    if (/[0-9]/.test(c)) {
      const j = lexNumber(text, i, start, tokens, gap);
      i = j;
      gap = false;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let s = '';
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\n') fail('syntax', start, "a closing '\"'", 'end of line');
        if (text[j] === '\\' && j + 1 < text.length) {
          s += text[j + 1];
          j += 2;
          continue;
        }
        s += text[j];
        j++;
      }
      if (j >= text.length) fail('syntax', start, "a closing '\"'", 'end of file');
      tokens.push({ kind: 'str', text: s, gap, ...start });
      i = j + 1;
      gap = false;
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (!op) fail('syntax', start, 'a token', `'${c}'`);
    tokens.push({ kind: 'op', text: op, gap, ...start });
    i += op.length;
    gap = false;
  }
  tokens.push({ kind: 'eof', text: '', gap: true, ...pos(i) });
  return tokens;
}

function lexNumber(text: string, begin: number, start: SourcePos, out: Token[], gap: boolean): number {
  let i = begin;
  let j = i;
  while (j < text.length && /[0-9]/.test(text[j]!)) j++;
  let width: number | undefined;
  let signed: boolean | undefined;
  // `8w255`, `8s-1` style: a decimal width then w (unsigned) or s (signed), then the value.
  if ((text[j] === 'w' || text[j] === 's') && /[0-9]/.test(text[j + 1] ?? '')) {
    width = Number(text.slice(i, j));
    signed = text[j] === 's';
    j++;
    if (width <= 0 && !signed) fail('syntax', start, 'a positive width', String(width));
    if (width > MAX_BIT_WIDTH) fail('limit', start, `a width of at most ${MAX_BIT_WIDTH}`, String(width));
    i = j;
    while (j < text.length && /[0-9]/.test(text[j]!)) j++;
  }
  let radix = 10;
  let digitsFrom = i;
  if (text[i] === '0' && /[xXbBoOdD]/.test(text[i + 1] ?? '')) {
    const r = text[i + 1]!.toLowerCase();
    radix = r === 'x' ? 16 : r === 'b' ? 2 : r === 'o' ? 8 : 10;
    digitsFrom = i + 2;
    j = digitsFrom;
    while (j < text.length && DIGITS[r]!.test(text[j]!)) j++;
  } else {
    while (j < text.length && /[0-9_]/.test(text[j]!)) j++;
  }
  // A literal wider than any type could hold is refused before BigInt parses it.
  if (j - digitsFrom > MAX_LITERAL_CHARS)
    fail('limit', start, `an integer literal of at most ${MAX_LITERAL_CHARS} digits`);
  const digits = text.slice(digitsFrom, j).replace(/_/g, '');
  if (digits === '') fail('syntax', start, 'digits of an integer literal', `'${text.slice(i, j + 1)}'`);
  if (/[A-Za-z0-9_]/.test(text[j] ?? '')) {
    fail('syntax', start, 'the end of the integer literal', `'${text[j]}'`);
  }
  const prefix = radix === 16 ? '0x' : radix === 2 ? '0b' : radix === 8 ? '0o' : '';
  const value = BigInt(prefix + digits);
  const tok: Token = { kind: 'num', text: text.slice(begin, j), value, gap, ...start };
  out.push(width === undefined ? tok : { ...tok, width, signed: signed ?? false });
  return j;
}
