/**
 * Issue #10, defect 11: bad paths and hostile input files given to the real `thunderpac`
 * process end with one line naming what was wrong and the path, and exit 2 — never a Node
 * stack trace with exit 1, never a hang (`--store /proc/x` used to spin in mkdirSync forever).
 */

import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { packagePath } from '../src/runtime/package-root.js';
import { buildGuests } from './wasm-fixtures.js';

// Each case spawns node (~1 s on a loaded 2-core machine); the spawn timeout below catches hangs.
vi.setConfig({ testTimeout: 40_000, hookTimeout: 40_000 });

let dir: string;
let aFile: string;
let input: string;
let store: string;
const echo = packagePath('wasm', 'echo.wasm');
const p4 = packagePath('test', 'p4', 'multicast.p4');
/** Deeper than anything recursion can walk: JSON.stringify of it overflows the stack. */
const DEPTH = 100_000;

/** Runs bin/thunderpac.js as its own process; the timeout turns a hang into a failure. */
function thunderpac(...argv: string[]): { status: number | null; stderr: string; signal: string | null } {
  const r = spawnSync(process.execPath, ['bin/thunderpac.js', ...argv], {
    cwd: packagePath(),
    env: { ...process.env, THUNDERPAC_STORE: store, THUNDERPAC_DEBUG: '' },
    timeout: 30_000,
    encoding: 'utf8',
  });
  return { status: r.status, stderr: r.stderr, signal: r.signal };
}

function expectMessage(r: ReturnType<typeof thunderpac>, path: string, what: RegExp): void {
  expect(r.signal).toBeNull();
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).toMatch(/^thunderpac: /);
  expect(r.stderr).toContain(path);
  expect(r.stderr).toMatch(what);
  expect(r.status).toBe(2);
}

beforeAll(() => {
  buildGuests();
  dir = mkdtempSync(join(tmpdir(), 'tp-cli-paths-'));
  aFile = join(dir, 'a-file');
  writeFileSync(aFile, 'not a directory');
  input = join(dir, 'in.txt');
  writeFileSync(input, 'stressed');
  store = join(dir, 'store');
  writeFileSync(join(dir, 'deep-array.json'), `${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}`);
  writeFileSync(join(dir, 'deep-object.json'), `${'{"a":'.repeat(DEPTH)}1${'}'.repeat(DEPTH)}`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('--store that cannot be a store', () => {
  it.each([
    ['receipt list', ['receipt', 'list']],
    ['run', ['run', echo, '--export', 'reverse', '--input', 'IN']],
  ])('%s --store naming a file', (_, argv) => {
    const r = thunderpac(...argv.map((a) => (a === 'IN' ? input : a)), '--store', aFile);
    expectMessage(r, aFile, /--store is not a directory/);
  });

  it('--store /dev/null', () => {
    expectMessage(thunderpac('receipt', 'list', '--store', '/dev/null'), '/dev/null', /--store/);
  });

  it('--store under a file', () => {
    const path = join(aFile, 'store');
    const r = thunderpac('run', echo, '--export', 'reverse', '--input', input, '--store', path);
    expectMessage(r, path, /--store has a component that is not a directory/);
  });

  it.each([['receipt', 'list'], ['run']])(
    '%s --store /proc/x refuses at once instead of spinning',
    (...cmd) => {
      const argv = cmd[0] === 'run' ? ['run', echo, '--export', 'reverse', '--input', input] : cmd;
      const r = thunderpac(...argv, '--store', '/proc/x/store');
      expectMessage(r, '/proc/x/store', /pseudo file system/);
    },
  );

  it('$THUNDERPAC_STORE naming a file is named as such', () => {
    const r = spawnSync(process.execPath, ['bin/thunderpac.js', 'receipt', 'list'], {
      cwd: packagePath(),
      env: { ...process.env, THUNDERPAC_STORE: aFile },
      timeout: 30_000,
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`$THUNDERPAC_STORE is not a directory: ${aFile}`);
  });
});

describe('-o / --out under a file', () => {
  it('p4 compile -o FILE/x.json', () => {
    const out = join(aFile, 'x.json');
    const r = thunderpac('p4', 'compile', p4, '--target', 'bmv2', '-o', out);
    expectMessage(r, aFile, /^thunderpac: -o /);
  });

  it('p4 compile --out FILE/sub', () => {
    const out = join(aFile, 'sub');
    expectMessage(thunderpac('p4', 'compile', p4, '--out', out), out, /^thunderpac: --out /);
  });

  it('p4 compile --target bmv2 -o a directory under /proc', () => {
    const r = thunderpac('p4', 'compile', p4, '--target', 'bmv2', '-o', '/proc/x/y.json');
    expectMessage(r, '/proc/x', /pseudo file system/);
  });
});

describe('--models-dir and input files', () => {
  it('models list --models-dir naming a file', () => {
    expectMessage(
      thunderpac('models', 'list', '--models-dir', aFile),
      aFile,
      /--models-dir is not a directory/,
    );
  });

  it('run --input naming a directory', () => {
    const r = thunderpac('run', echo, '--export', 'reverse', '--input', dir, '--store', store);
    expectMessage(r, dir, /--input is a directory/);
  });

  it.each(['deep-array.json', 'deep-object.json'])('p4 run of %s, 100,000 levels deep', (file) => {
    const path = join(dir, file);
    const r = thunderpac('p4', 'run', path, '--port', '1', '--packet', '00112233445566778899aabbccddeeff');
    expectMessage(r, path, /nests JSON deeper than 512 levels/);
  });

  it('run --model --input of 100,000-deep JSON', () => {
    const path = join(dir, 'deep-array.json');
    expectMessage(thunderpac('run', '--model', 'mlp', '--input', path), path, /--input nests JSON deeper/);
  });
});

describe('a malformed sample_io.json that checksums.txt does not cover', () => {
  let models: string;
  let sample: string;
  let tensors: string;

  beforeAll(() => {
    models = join(dir, 'models');
    cpSync(packagePath('models', 'mlp'), join(models, 'mlp'), { recursive: true });
    const version = readdirSync(join(models, 'mlp'))[0]!;
    const modelDir = join(models, 'mlp', version);
    const sums = readFileSync(join(modelDir, 'checksums.txt'), 'utf8');
    writeFileSync(
      join(modelDir, 'checksums.txt'),
      `${sums
        .split('\n')
        .filter((l) => l.endsWith('model.onnx'))
        .join('\n')}\n`,
    );
    sample = join(modelDir, 'sample_io.json');
    tensors = join(dir, 'tensors.json');
    writeFileSync(tensors, JSON.stringify({ x: { dtype: 'float32', shape: [1, 4], data: [1, 2, 3, 4] } }));
  });

  it.each([
    ['truncated JSON', '{"inputs": {', /expected JSON, found invalid JSON/],
    ['an array', '[1, 2]', /expected an object \{inputs, outputs\}/],
    [
      'a tensor without a dtype',
      '{"inputs": {"x": {"shape": [1], "data": [1]}}, "outputs": {}}',
      /inputs\.x\.dtype/,
    ],
    [
      'data that does not fill the shape',
      '{"inputs": {"x": {"dtype": "float32", "shape": [2], "data": [1]}}, "outputs": {}}',
      /inputs\.x\.data: expected 2 elements/,
    ],
    ['no outputs', '{"inputs": {}}', /: outputs: expected tensors/],
    [
      '100,000 levels deep',
      `{"inputs": ${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}}`,
      /nested at most 512 deep/,
    ],
  ])('%s', (_, text, what) => {
    writeFileSync(sample, text);
    const r = thunderpac(
      'run',
      '--model',
      'mlp',
      '--input',
      tensors,
      '--models-dir',
      models,
      '--store',
      store,
    );
    expectMessage(r, sample, what);
  });
});
