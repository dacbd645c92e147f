/**
 * Fuzz target: the `thunderpac` command with random command lines — subcommands, flags and
 * hostile paths (/dev/null, /proc/self/mem, /proc and /sys paths, directories where files are
 * expected and the reverse, paths under a file, dangling links, names too long, random and
 * 100,000-deep JSON files) — spawned as the real process. Whatever the arguments, it must end
 * in bounded time with exit 0, 1 or 2 and no stack trace: a bad input is one line, not a crash.
 *
 * Short run: a few spawns (each starts Node, ~0.2–1 s); `bash scripts/fuzz.sh test/fuzz-cli`
 * runs it long (THUNDERPAC_FUZZ_RUNS, THUNDERPAC_FUZZ_SEED).
 */

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packagePath } from '../src/runtime/package-root.js';
import { fuzzParams, fuzzTimeoutMs } from './helpers/fuzz.js';
import { buildGuests } from './wasm-fixtures.js';

let dir: string;
let caseNo = 0;
const SPAWN_TIMEOUT_MS = 20_000;

/**
 * Runs bin/thunderpac.js without blocking this thread (a long run of spawnSync starves
 * vitest's own RPC); a process still running after SPAWN_TIMEOUT_MS is killed and reported.
 */
function thunderpac(
  argv: string[],
): Promise<{ status: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/thunderpac.js', ...argv], {
      cwd: packagePath(),
      env: { ...process.env, THUNDERPAC_STORE: fixtures.store, THUNDERPAC_DEBUG: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (stderr.length < 1 << 20) stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), SPAWN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stderr });
    });
  });
}

/** Named paths the arbitrary picks from; RANDOM_JSON is written fresh for each case. */
const fixtures: Record<string, string> = {};

beforeAll(() => {
  buildGuests();
  dir = mkdtempSync(join(tmpdir(), 'tp-fuzz-cli-'));
  const file = join(dir, 'a-file');
  writeFileSync(file, 'plain text, not JSON, not a directory');
  mkdirSync(join(dir, 'a-dir'));
  symlinkSync(join(dir, 'nothing-here'), join(dir, 'dangling'));
  writeFileSync(join(dir, 'deep.json'), `${'['.repeat(100_000)}${']'.repeat(100_000)}`);
  writeFileSync(
    join(dir, 'tensors.json'),
    JSON.stringify({ x: { dtype: 'float32', shape: [1, 4], data: [1, 2, 3, 4] } }),
  );
  Object.assign(fixtures, {
    file,
    dir: join(dir, 'a-dir'),
    underFile: join(file, 'below'),
    missing: join(dir, 'missing', 'deeper'),
    dangling: join(dir, 'dangling'),
    longName: join(dir, 'n'.repeat(300)),
    longPath: join(dir, ...Array.from({ length: 40 }, () => 'p'.repeat(120))),
    deepJson: join(dir, 'deep.json'),
    tensors: join(dir, 'tensors.json'),
    devNull: '/dev/null',
    devZero: '/dev/zero',
    procMem: '/proc/self/mem',
    procX: '/proc/x',
    procXY: '/proc/x/y',
    sysX: '/sys/x',
    root: '/',
    empty: '',
    wasm: packagePath('wasm', 'echo.wasm'),
    p4: packagePath('test', 'p4', 'multicast.p4'),
    store: join(dir, 'store'),
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const path = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.constantFrom(
      'RANDOM_JSON',
      ...'file dir underFile missing dangling longName longPath deepJson tensors devNull devZero procMem procX procXY sysX root empty wasm p4 store'.split(
        ' ',
      ),
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).filter((s) => !s.startsWith('-')) },
);

/** Command lines: a template whose PATH slots the arbitrary fills. */
const templates: readonly (readonly string[])[] = [
  ['run', 'wasm', '--export', 'reverse', '--input', 'PATH', '--store', 'PATH'],
  ['run', 'PATH', '--export', 'reverse', '--input', 'PATH'],
  ['run', '--model', 'mlp', '--input', 'PATH', '--store', 'PATH'],
  ['run', '--model', 'mlp', '--input', 'tensors', '--models-dir', 'PATH'],
  ['receipt', 'list', '--store', 'PATH'],
  ['receipt', 'show', 'a'.repeat(64), '--store', 'PATH'],
  ['receipt', 'verify', 'a'.repeat(64), '--store', 'PATH'],
  ['models', 'list', '--models-dir', 'PATH'],
  ['models', 'verify', '--models-dir', 'PATH'],
  ['p4', 'compile', 'p4', '-o', 'PATH'],
  ['p4', 'compile', 'p4', '--target', 'p4info', '-o', 'PATH'],
  ['p4', 'compile', 'p4', '--out', 'PATH'],
  ['p4', 'compile', 'PATH', '--json'],
  ['p4', 'run', 'PATH', '--port', '1', '--packet', '00112233445566778899aabbccddeeff0800', '--store', 'PATH'],
  ['p4', 'stf', 'PATH', 'PATH'],
];

const commandLine = fc.record({
  template: fc.constantFrom(...templates),
  paths: fc.array(path, { minLength: 8, maxLength: 8 }),
  json: fc.jsonValue({ maxDepth: 4 }),
  extra: fc.option(fc.constantFrom('--json', '--bogus', '--timeout-ms', 'x', '--store'), { nil: undefined }),
});

type CommandLine = typeof commandLine extends fc.Arbitrary<infer T> ? T : never;

function argvOf(c: CommandLine): string[] {
  const randomJson = join(dir, `random-${caseNo++}.json`);
  writeFileSync(randomJson, JSON.stringify(c.json) ?? 'null');
  let slot = 0;
  const resolve = (name: string): string => (name === 'RANDOM_JSON' ? randomJson : (fixtures[name] ?? name));
  const argv = c.template.map((a) => (a === 'PATH' ? resolve(c.paths[slot++]!) : (fixtures[a] ?? a)));
  return c.extra === undefined ? argv : [...argv, c.extra];
}

describe('fuzz: thunderpac command lines with hostile paths', () => {
  it(
    'always exits 0, 1 or 2, in bounded time, without a stack trace',
    async () => {
      await fc.assert(
        fc.asyncProperty(commandLine, async (c) => {
          const argv = argvOf(c);
          const r = await thunderpac(argv);
          const what = `thunderpac ${argv.map((a) => JSON.stringify(a)).join(' ')}\n${r.stderr}`;
          expect(r.signal, what).toBeNull();
          expect([0, 1, 2], what).toContain(r.status);
          expect(r.stderr, what).not.toMatch(/^\s+at /m);
        }),
        fuzzParams(8),
      );
    },
    fuzzTimeoutMs(120_000),
  );
});
