/**
 * Mutations of P4 source for the fuzz target (test/fuzz-p4-source.test.ts): the edits a typo,
 * a bad merge or a hostile author makes — a token deleted, duplicated, swapped or replaced by
 * one that does not belong, deep nesting, stray bytes — each on whole tokens so that most
 * mutants get past the lexer and reach the parser, the type checker and the lowering.
 */

import fc from 'fast-check';

/** Tokens as the mutations see them: words, numbers, whitespace runs, single other characters. */
export function tokensOf(source: string): string[] {
  return source.match(/\s+|[A-Za-z_]\w*|\d\w*|./gs) ?? [];
}

/** Tokens that do not belong where they land, and some that ask for too much. */
const STRAYS = [
  '(',
  ')',
  '{',
  '}',
  '[',
  ']',
  '<',
  '>',
  ';',
  ',',
  '.',
  '.x',
  '.size',
  '.next',
  '.last',
  '=',
  '==',
  '<<',
  '>>',
  '++',
  '&&&',
  '..',
  '?',
  ':',
  '@',
  '!',
  '-',
  '~',
  'bit<16>',
  'bit<4096>',
  'varbit<99999>',
  'int',
  'bool',
  'header',
  'struct',
  'error',
  'transition',
  'select',
  'state',
  'apply',
  'table',
  'action',
  'return',
  'exit',
  'if',
  'else',
  'switch',
  'default',
  'const',
  'typedef',
  'enum',
  'tuple',
  'packet_in',
  'true',
  '0',
  '1',
  '4294967296',
  '1000000000',
  '8w300',
  '1000000000w1',
  '0x',
  '1 << 4294967295',
  '[1000000000]',
  '[10000000]',
  '"str"',
  '\n#define X X X X\n',
  '\n#include "../../../../../../etc/passwd"\n',
  '\n#include "/dev/zero"\n',
  '\n#include <core.p4>\n',
  '\n#ifdef X\n',
  '\n#endif\n',
  '/*',
  '//',
];

export type SourceMutation =
  | { kind: 'delete'; at: number }
  | { kind: 'duplicate'; at: number }
  | { kind: 'swap'; at: number; with: number }
  | { kind: 'stray'; at: number; token: number }
  | { kind: 'nest'; at: number; open: number; depth: number }
  | { kind: 'byte'; at: number; byte: number };

const NESTS: readonly [string, string][] = [
  ['(', ')'],
  ['{', '}'],
  ['-', ''],
  ['!', ''],
  ['x + ', ''],
  ['if (true) ', ''],
  ['tuple<', '>'],
  ['[', ']'],
];

export const sourceMutation: fc.Arbitrary<SourceMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), with: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('stray' as const),
      at: fc.nat(),
      token: fc.nat(STRAYS.length - 1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('nest' as const),
      at: fc.nat(),
      open: fc.nat(NESTS.length - 1),
      depth: fc.integer({ min: 50, max: 12_000 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('byte' as const),
      at: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
    }),
  },
);

/** Applies one mutation to the token list in place; returns what it did, for the report. */
export function mutateTokens(tokens: string[], m: SourceMutation): string {
  if (tokens.length === 0) return 'empty';
  const i = m.at % tokens.length;
  const near = JSON.stringify(tokens.slice(Math.max(0, i - 3), i + 3).join('')).slice(0, 60);
  switch (m.kind) {
    case 'delete':
      tokens.splice(i, 1);
      return `delete ${JSON.stringify(tokens[i])} near ${near}`;
    case 'duplicate':
      tokens.splice(i, 0, tokens[i]!);
      return `duplicate near ${near}`;
    case 'swap': {
      const j = m.with % tokens.length;
      [tokens[i], tokens[j]] = [tokens[j]!, tokens[i]!];
      return `swap ${i} and ${j} near ${near}`;
    }
    case 'stray':
      tokens.splice(i, 0, ` ${STRAYS[m.token]} `);
      return `insert ${JSON.stringify(STRAYS[m.token])} near ${near}`;
    case 'nest': {
      const [open, close] = NESTS[m.open]!;
      tokens.splice(i, 0, open.repeat(m.depth));
      tokens.splice(i + 2, 0, close.repeat(m.depth));
      return `nest ${JSON.stringify(open)} ${m.depth} deep near ${near}`;
    }
    case 'byte':
      tokens.splice(i, 1, String.fromCharCode(m.byte));
      return `byte ${m.byte} near ${near}`;
  }
}
