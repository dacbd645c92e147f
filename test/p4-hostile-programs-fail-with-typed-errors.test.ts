/**
 * Issue #10, defect 7: programs that overflowed the compiler's stack, exhausted its heap, hung
 * it or made it read files outside the program's directories. Each must be a P4CompileError
 * naming file:line:col — through the library and through `thunderpac p4 compile` (exit 2, a
 * one-line message, no stack trace).
 */

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileP4 } from '../src/p4c/compile.js';
import { P4CompileError, type P4ErrorKind } from '../src/p4c/errors.js';
import { MAX_NESTING, MAX_SOURCE_BYTES, MAX_TOKENS } from '../src/p4c/limits.js';
import { cli } from './helpers/cli.js';
import { sample } from './p4-helpers.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-p4-hostile-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const router = sample('basic_router.p4');

/** basic_router.p4 with one piece replaced (the piece must be there). */
function mutate(find: string, replace: string): string {
  expect(router).toContain(find);
  return router.replace(find, replace);
}

const lineOf = (source: string, needle: string): number =>
  source.slice(0, source.indexOf(needle)).split('\n').length;

/** Writes `source` as dir/<name> and compiles it from there as the CLI would. */
function compileFile(name: string, source: string): P4CompileError {
  const file = join(dir, name);
  writeFileSync(file, source);
  try {
    compileP4(source, { file, includeDirs: [dir] });
  } catch (err) {
    expect(err).toBeInstanceOf(P4CompileError);
    return err as P4CompileError;
  }
  throw new Error(`${name} compiled`);
}

function expectError(e: P4CompileError, kind: P4ErrorKind, file: string, line: number, what: RegExp): void {
  expect(e.kind).toBe(kind);
  expect(e.pos).toMatchObject({ file: join(dir, file), line });
  expect(e.message).toMatch(
    new RegExp(`^${join(dir, file).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:${line}:\\d+: `),
  );
  expect(e.message).toMatch(what);
}

async function expectCliError(name: string, line: number): Promise<void> {
  const r = await cli('p4', 'compile', join(dir, name), '--target', 'bmv2');
  expect(r.code).toBe(2);
  expect(r.err).toMatch(new RegExp(`${name.replace('.', '\\.')}:${line}:\\d+: `));
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.out).toBe('');
}

describe('p4c: a typo is a type error, not a stack overflow', () => {
  it('member access on a bit<16> (hdr.ethernet.etherType.x)', async () => {
    const src = mutate(
      'hdr.ethernet.srcAddr = hdr.ethernet.dstAddr;',
      'hdr.ethernet.srcAddr = hdr.ethernet.etherType.x;',
    );
    const line = lineOf(src, 'etherType.x');
    expectError(
      compileFile('typo.p4', src),
      'type',
      'typo.p4',
      line,
      /before '\.x', found a value of type bit<16>/,
    );
    await expectCliError('typo.p4', line);
  });
});

describe('p4c: nesting is bounded (MAX_NESTING), the error at the token that went deeper', () => {
  const assign = 'hdr.ipv4.ttl = hdr.ipv4.ttl - 1;';
  const deep = {
    parentheses: (n: number) => `hdr.ipv4.ttl = ${'('.repeat(n)}hdr.ipv4.ttl${')'.repeat(n)};`,
    blocks: (n: number) => `${'{'.repeat(n)}${assign}${'}'.repeat(n)}`,
    'unary operators': (n: number) => `hdr.ipv4.ttl = ${'~'.repeat(n)}hdr.ipv4.ttl;`,
    'a chain of binary operators': (n: number) => `hdr.ipv4.ttl = hdr.ipv4.ttl${' + 1'.repeat(n)};`,
    'else-if chains': (n: number) => `${'if (hdr.ipv4.ttl == 1) { } else '.repeat(n)}${assign}`,
  };
  for (const [what, make] of Object.entries(deep)) {
    for (const n of [700, 10_000]) {
      it(`${n} levels of ${what}`, async () => {
        const name = `deep-${what.replace(/\W+/g, '-')}-${n}.p4`;
        const src = mutate(assign, make(n));
        const line = lineOf(src, make(n));
        expectError(compileFile(name, src), 'limit', name, line, new RegExp(`at most ${MAX_NESTING} levels`));
        await expectCliError(name, line);
      });
    }
    it(`a reasonable depth of ${what} still compiles`, () => {
      expect(() => compileP4(mutate(assign, make(60)), { file: 'ok.p4' })).not.toThrow();
    });
  }
});

describe('p4c: sizes are bounded before anything is allocated', () => {
  for (const n of ['10000000', '1000000000']) {
    it(`a header stack of ${n}`, async () => {
      const src = mutate('ipv4_t     ipv4;', `ipv4_t     ipv4;\n    ipv4_t[${n}] many;`);
      const name = `stack-${n}.p4`;
      expectError(
        compileFile(name, src),
        'limit',
        name,
        lineOf(src, 'many;'),
        /header stack of at most 1024/,
      );
      await expectCliError(name, lineOf(src, 'many;'));
    });
  }

  for (const [extern, decl] of [
    ['counter', 'counter(32w2147483648, CounterType.packets) c;'],
    ['register', 'register<bit<32>>(32w1000000000) r;'],
  ] as const) {
    it(`a ${extern} of ${decl.match(/w(\d+)/)![1]} entries`, async () => {
      const src = mutate('action drop() {', `${decl}\n    action drop() {`);
      const name = `${extern}-huge.p4`;
      expectError(
        compileFile(name, src),
        'limit',
        name,
        lineOf(src, decl),
        /a constant size of at most 1048576/,
      );
      await expectCliError(name, lineOf(src, decl));
    });
  }

  it('structs of structs that multiply out to millions of fields', () => {
    const levels = Array.from({ length: 24 }, (_, i) =>
      i === 0 ? 'struct s0_t { bit<8> a; bit<8> b; }' : `struct s${i}_t { s${i - 1}_t a; s${i - 1}_t b; }`,
    ).join('\n');
    const src = mutate('struct metadata {\n    /* empty */\n}', `${levels}\nstruct metadata { s23_t big; }`);
    const e = compileFile('structs.p4', src);
    expect(e.kind).toBe('limit');
    expect(e.message).toMatch(/at most 65536 headers, stack elements and fields/);
  });

  it('a constant shifted by a huge amount', () => {
    const src = mutate('hdr.ipv4.ttl = hdr.ipv4.ttl - 1;', 'hdr.ipv4.ttl = (bit<8>)(1 << 4294967295);');
    expect(compileFile('shift.p4', src).kind).toBe('limit');
  });

  it('a literal with a width of a billion bits', () => {
    const src = mutate('hdr.ipv4.ttl = hdr.ipv4.ttl - 1;', 'hdr.ipv4.ttl = 1000000000w1;');
    expect(compileFile('width.p4', src).kind).toBe('limit');
  });
});

describe('p4c: the preprocessor is bounded and confined', () => {
  it('an exponential #define chain', async () => {
    const defines = [
      '#define A0 1',
      ...Array.from({ length: 64 }, (_, i) => `#define A${i + 1} A${i} + A${i}`),
    ];
    const src = `${defines.join('\n')}\n${mutate('hdr.ipv4.ttl = hdr.ipv4.ttl - 1;', 'hdr.ipv4.ttl = A64;')}`;
    const line = lineOf(src, '= A64;');
    expectError(compileFile('define.p4', src), 'limit', 'define.p4', line, /a macro expanding to at most/);
    await expectCliError('define.p4', line);
  });

  it('a program of more tokens than the limit stops lexing at the limit', () => {
    const e = compileFile('many-tokens.p4', ';'.repeat(MAX_TOKENS + 10));
    expectError(e, 'limit', 'many-tokens.p4', 1, new RegExp(`at most ${MAX_TOKENS} tokens`));
    expect(e.pos.col).toBe(MAX_TOKENS + 1);
  });

  it('a program larger than MAX_SOURCE_BYTES', () => {
    expect(() => compileP4(' '.repeat(MAX_SOURCE_BYTES + 1), { file: 'huge.p4' })).toThrow(
      /huge\.p4:1:1: limit error/,
    );
  });

  it('a chain of 10,000 macros each naming the next', () => {
    const defines = Array.from({ length: 10_000 }, (_, i) => `#define M${i} M${i + 1}`);
    const src = `${defines.join('\n')}\n${mutate('hdr.ipv4.ttl = hdr.ipv4.ttl - 1;', 'hdr.ipv4.ttl = M0;')}`;
    expect(compileFile('macro-chain.p4', src).kind).toBe('limit');
  });

  it('#include of a file outside the program directory and the -I directories', async () => {
    const src = `#include "../../../../../../../../etc/passwd"\n${router}`;
    expectError(compileFile('passwd.p4', src), 'preprocess', 'passwd.p4', 1, /outside them/);
    await expectCliError('passwd.p4', 1);
  });

  it('#include through a symbolic link that leads outside', () => {
    execFileSync('ln', ['-sf', '/etc/hostname', join(dir, 'link.p4')]);
    const e = compileFile('via-link.p4', `#include "link.p4"\n${router}`);
    expect(e.kind).toBe('preprocess');
    expect(e.message).toMatch(/outside them/);
  });

  it('#include of /dev/zero, even with /dev as an include directory', async () => {
    const up = `#include "../../../../../../../../dev/zero"\n${router}`;
    expectError(compileFile('devzero.p4', up), 'preprocess', 'devzero.p4', 1, /outside them/);
    const file = join(dir, 'devzero-I.p4');
    writeFileSync(file, `#include <zero>\n${router}`);
    let err: unknown;
    try {
      compileP4(`#include <zero>\n${router}`, { file, includeDirs: ['/dev'] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(P4CompileError);
    expect((err as P4CompileError).message).toMatch(
      /devzero-I\.p4:1:1: preprocess error: expected a regular file to #include, found 'zero' \(a device\)/,
    );
    const r = await cli('p4', 'compile', file, '-I', '/dev', '--target', 'bmv2');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/devzero-I\.p4:1:1: .*a device/);
  });

  it('#include of a FIFO in the program directory', async () => {
    execFileSync('mkfifo', [join(dir, 'pipe.p4')]);
    const src = `#include "pipe.p4"\n${router}`;
    expectError(
      compileFile('fifo.p4', src),
      'preprocess',
      'fifo.p4',
      1,
      /a regular file to #include, found 'pipe\.p4' \(a FIFO\)/,
    );
    await expectCliError('fifo.p4', 1);
  });

  it('#include of a directory', () => {
    mkdirSync(join(dir, 'sub'), { recursive: true });
    expect(compileFile('dir.p4', `#include "sub"\n${router}`).message).toMatch(/\(a directory\)/);
  });

  it('includes from inside the allowed directories still work', () => {
    mkdirSync(join(dir, 'lib'), { recursive: true });
    writeFileSync(join(dir, 'lib', 'consts.p4'), 'const bit<8> ONE = 1;\n');
    const src = `#include "lib/consts.p4"\n${mutate('hdr.ipv4.ttl = hdr.ipv4.ttl - 1;', 'hdr.ipv4.ttl = hdr.ipv4.ttl - ONE;')}`;
    const file = join(dir, 'ok-include.p4');
    writeFileSync(file, src);
    expect(() => compileP4(src, { file, includeDirs: [dir] })).not.toThrow();
  });

  it('#include nested deeper than the limit', () => {
    for (let i = 0; i < 40; i++) writeFileSync(join(dir, `nest${i}.p4`), `#include "nest${i + 1}.p4"\n`);
    writeFileSync(join(dir, 'nest40.p4'), '');
    expect(compileFile('nest-top.p4', `#include "nest0.p4"\n${router}`).kind).toBe('limit');
  });
});
