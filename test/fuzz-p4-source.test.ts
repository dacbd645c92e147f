/**
 * Fuzz target: mutated P4 source (issue #10, defect 7).
 *
 * Every program in p4/samples and test/p4, and the shipped p4/core.p4 and p4/v1model.p4 (as
 * included by basic_router.p4), mutated token by token (test/helpers/p4-source-mutations.ts):
 * deletes, duplicates, swaps, stray tokens, nesting thousands deep, stray bytes. Oracle: the
 * mutant compiles, or the compiler refuses it with a P4CompileError whose message starts with
 * file:line:col — never a raw exception, never kind `internal` (the compiler's own failure),
 * never a stack overflow, a hang or an abort.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileP4 } from '../src/p4c/compile.js';
import { P4CompileError } from '../src/p4c/errors.js';
import { packagePath } from '../src/runtime/package-root.js';
import { fuzzParams, fuzzTimeoutMs } from './helpers/fuzz.js';
import { mutateTokens, sourceMutation, tokensOf } from './helpers/p4-source-mutations.js';

interface Subject {
  /** The file mutated. */
  readonly name: string;
  readonly tokens: readonly string[];
  /** Compiles the mutated text (a program, or an include under a fixed program). */
  readonly compile: (text: string) => void;
}

const read = (path: string): string => readFileSync(path, 'utf8');

function subjects(): Subject[] {
  const out: Subject[] = [];
  for (const dir of [
    packagePath('p4', 'samples'),
    join(import.meta.dirname, 'p4'),
    join(import.meta.dirname, 'p4', 'packet-paths'),
  ]) {
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.p4'))) {
      const file = join(dir, f);
      out.push({
        name: file,
        tokens: tokensOf(read(file)),
        compile: (text) => compileP4(text, { file, includeDirs: [dirname(file)] }),
      });
    }
  }
  const host = packagePath('p4', 'samples', 'basic_router.p4');
  for (const include of ['core.p4', 'v1model.p4']) {
    out.push({
      name: include,
      tokens: tokensOf(read(packagePath('p4', include))),
      compile: (text) => compileP4(read(host), { file: host, files: { [include]: text } }),
    });
  }
  return out;
}

const SUBJECTS = subjects();

/** Compiles, or checks that the refusal is a P4CompileError at file:line:col. */
function compilesOrRefuses(subject: Subject, text: string): void {
  try {
    subject.compile(text);
  } catch (err) {
    if (!(err instanceof P4CompileError)) throw err;
    expect(err.kind).not.toBe('internal');
    expect(err.message).toMatch(/^[^\n]+:\d+:\d+: [a-z]+ error: /);
    expect(err.pos.line).toBeGreaterThanOrEqual(1);
    expect(err.pos.col).toBeGreaterThanOrEqual(1);
  }
}

describe('fuzz: mutated P4 source compiles or fails with a P4CompileError at file:line:col', () => {
  it('the unmutated corpus compiles', () => {
    for (const s of SUBJECTS) expect(() => s.compile(s.tokens.join(''))).not.toThrow();
  });

  it(
    'token deletes, duplicates, swaps, strays, deep nesting and stray bytes',
    () => {
      fc.assert(
        fc.property(fc.nat(), fc.array(sourceMutation, { minLength: 1, maxLength: 3 }), (pick, mutations) => {
          const subject = SUBJECTS[pick % SUBJECTS.length]!;
          const tokens = [...subject.tokens];
          const done = mutations.map((m) => mutateTokens(tokens, m));
          try {
            compilesOrRefuses(subject, tokens.join(''));
          } catch (err) {
            throw new Error(`${subject.name}: ${done.join('; ')}: ${(err as Error).message}`);
          }
        }),
        fuzzParams(250),
      );
    },
    fuzzTimeoutMs(30_000),
  );
});
