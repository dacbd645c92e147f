/**
 * The CLI's client mode (issue #11): the real `thunderpac` process with `--socket` (or
 * $THUNDERPAC_SOCKET) against the real daemon, compared with the same command in-process on a
 * separate store. Same lines, same --json shapes, same exit codes; only what differs between
 * two runs (receipt id, start time, timings, the daemon's sealed actor) is left out.
 *
 * Also: a bad input is exit 2 with the daemon's field path; an unreachable socket is exit 2
 * ("no daemon at PATH: connect …"), never a fallback to in-process.
 */

import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli-process.js';
import { REPO_ROOT, startTestDaemon, type TestDaemon, tempDirectory } from './helpers/daemon.js';

const ECHO = join(REPO_ROOT, 'wasm', 'echo.wasm');
const MLP_SAMPLE = join(REPO_ROOT, 'models', 'mlp', '1', 'sample_io.json');

let daemon: TestDaemon;
let tmp: { dir: string; remove: () => void };
let localStore: string;
let input: string;

beforeAll(async () => {
  tmp = tempDirectory('tp-cli-client-');
  localStore = join(tmp.dir, 'local-store');
  input = join(tmp.dir, 'input.txt');
  writeFileSync(input, 'hello, daemon');
  daemon = await startTestDaemon();
}, 120_000);

afterAll(async () => {
  try {
    await daemon?.stop();
  } finally {
    tmp?.remove();
  }
}, 30_000);

const remote = (...args: string[]) => runCli([...args, '--socket', daemon.socket]);
const local = (...args: string[]) => runCli([...args, '--store', localStore]);

/** A printed run without what differs between two runs: receipt id, start time and cost lines. */
function stable(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => !/^(receipt [0-9a-f]{64}|\s+started\s|\s+resources\s)/.test(l))
    .filter((l) => l !== '');
}

/** The fields of a receipt that two runs of one execution share. */
function sealed(r: Record<string, unknown>) {
  const { buildId, backend, entry, input, output, status, error } = r;
  return { buildId, backend, entry, input, output, status, error };
}

describe('run <file> through the daemon', () => {
  it('prints the same output and receipt lines as in-process, and exits 0', async () => {
    const [viaDaemon, inProcess] = await Promise.all([
      remote('run', ECHO, '--export', 'echo', '--input', input),
      local('run', ECHO, '--export', 'echo', '--input', input),
    ]);
    expect(inProcess.code, inProcess.stderr).toBe(0);
    expect(viaDaemon.code, viaDaemon.stderr).toBe(0);
    expect(viaDaemon.stdout).toContain('output (13 bytes): "hello, daemon"');
    expect(stable(viaDaemon.stdout)).toEqual(stable(inProcess.stdout));
  });

  it('--json has the same shape: output equal, the receipt sealing the same build, input and output', async () => {
    const [viaDaemon, inProcess] = await Promise.all([
      remote('run', ECHO, '--export', 'reverse', '--input', input, '--json'),
      local('run', ECHO, '--export', 'reverse', '--input', input, '--json'),
    ]);
    expect(viaDaemon.code, viaDaemon.stderr).toBe(0);
    const a = JSON.parse(viaDaemon.stdout);
    const b = JSON.parse(inProcess.stdout);
    expect(Object.keys(a)).toEqual(Object.keys(b));
    expect(a.output).toEqual(b.output);
    expect(a.output.text).toBe('nomead ,olleh');
    expect(sealed(a.receipt)).toEqual(sealed(b.receipt));
    // The daemon sealed who asked; the in-process run has no actor.
    expect(a.receipt.actor).toMatch(/^uid:\d+$/);
    expect(b.receipt.actor).toBeUndefined();
  });

  it('a failed execution prints its receipt and exits 1, as in-process', async () => {
    const [viaDaemon, inProcess] = await Promise.all([
      remote('run', ECHO, '--export', 'fail', '--input', input),
      local('run', ECHO, '--export', 'fail', '--input', input),
    ]);
    expect(inProcess.code).toBe(1);
    expect(viaDaemon.code, viaDaemon.stderr).toBe(1);
    expect(viaDaemon.stdout).toMatch(/status\s+failed/);
    expect(stable(viaDaemon.stdout)).toEqual(stable(inProcess.stdout));
  });

  it('a program the daemon refuses is exit 2 naming the field (in-process seals a failed receipt: 1)', async () => {
    const bogus = join(tmp.dir, 'bogus.wasm');
    writeFileSync(bogus, 'not a module');
    const [viaDaemon, inProcess] = await Promise.all([
      remote('run', bogus, '--export', 'echo', '--input', input),
      local('run', bogus, '--export', 'echo', '--input', input),
    ]);
    // The daemon checks a request before it runs anything, so there is no receipt to print.
    expect(viaDaemon.code).toBe(2);
    expect(viaDaemon.stderr).toMatch(
      /^thunderpac: BAD_REQUEST: body\.base64: not a WebAssembly binary[^\n]*\n$/,
    );
    expect(viaDaemon.stdout).toBe('');
    expect(inProcess.code).toBe(1);
  });
});

describe('run --model and models list through the daemon', () => {
  it('run --model mlp: same model line, output tensors and receipt lines as in-process', async () => {
    const [viaDaemon, inProcess] = await Promise.all([
      remote('run', '--model', 'mlp', '--input', MLP_SAMPLE),
      local('run', '--model', 'mlp', '--input', MLP_SAMPLE),
    ]);
    expect(inProcess.code, inProcess.stderr).toBe(0);
    expect(viaDaemon.code, viaDaemon.stderr).toBe(0);
    expect(viaDaemon.stdout).toMatch(/^model mlp@1 sha256:[0-9a-f]{64}\noutput: \{"kind":"tensors"/);
    expect(stable(viaDaemon.stdout)).toEqual(stable(inProcess.stdout));
  });

  it('run --model --json: same keys, model, digest, output; the receipt seals the same input and output', async () => {
    const [viaDaemon, inProcess] = await Promise.all([
      remote('run', '--model', 'mlp@1', '--input', MLP_SAMPLE, '--json'),
      local('run', '--model', 'mlp@1', '--input', MLP_SAMPLE, '--json'),
    ]);
    expect(viaDaemon.code, viaDaemon.stderr).toBe(0);
    const a = JSON.parse(viaDaemon.stdout);
    const b = JSON.parse(inProcess.stdout);
    expect(Object.keys(a)).toEqual(Object.keys(b));
    expect({ model: a.model, digest: a.digest, output: a.output }).toEqual({
      model: b.model,
      digest: b.digest,
      output: b.output,
    });
    expect(sealed(a.receipt)).toEqual(sealed(b.receipt));
  });

  it('a tensor of the wrong shape is exit 2 with the daemon field path (in-process seals a failed receipt: 1)', async () => {
    const bad = join(tmp.dir, 'bad-shape.json');
    writeFileSync(bad, JSON.stringify({ x: { dtype: 'float32', shape: [1, 3], data: [1, 2, 3] } }));
    const [viaDaemon, inProcess] = await Promise.all([
      remote('run', '--model', 'mlp', '--input', bad),
      local('run', '--model', 'mlp', '--input', bad),
    ]);
    expect(viaDaemon.code).toBe(2);
    expect(viaDaemon.stderr).toMatch(/^thunderpac: KSERVE_SHAPE_MISMATCH: .*\(at inputs\[0\]\.shape\)\n$/);
    expect(viaDaemon.stdout).toBe('');
    expect(inProcess.code).toBe(1);
  });

  it('an unknown model is exit 2', async () => {
    const viaDaemon = await remote('run', '--model', 'nosuchmodel', '--input', MLP_SAMPLE);
    expect(viaDaemon.code).toBe(2);
    expect(viaDaemon.stderr).toMatch(/nosuchmodel/);
  });

  it('models list: the same models, digests and checksum verdicts as in-process', async () => {
    const [viaDaemon, inProcess] = await Promise.all([
      runCli(['models', 'list', '--json'], { env: { THUNDERPAC_SOCKET: daemon.socket } }),
      runCli(['models', 'list', '--json']),
    ]);
    expect(viaDaemon.code, viaDaemon.stderr).toBe(0);
    const a = JSON.parse(viaDaemon.stdout) as {
      model: string;
      digest: string;
      checksum: string;
      report: string;
    }[];
    const b = JSON.parse(inProcess.stdout) as typeof a;
    expect(a.map((r) => r.model)).toEqual(['cnn@1', 'mlp@1', 'tree@1']);
    expect(a.map(({ model, digest, checksum }) => ({ model, digest, checksum }))).toEqual(
      b.map(({ model, digest, checksum }) => ({ model, digest, checksum })),
    );
    // The daemon does not (yet) report the VAL_REPORT verdict: '-' then, never a wrong one.
    for (const [i, r] of a.entries()) expect([b[i]!.report, '-']).toContain(r.report);
  });
});

describe('choosing client mode', () => {
  it('a socket nobody listens on is exit 2 "no daemon at PATH: connect ECONNREFUSED", not an in-process run', async () => {
    // A socket file left by a process that was killed: it exists, but nothing accepts.
    const stale = join(tmp.dir, 'stale.sock');
    const holder = spawn(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`,
    ]);
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    expect(existsSync(stale)).toBe(true);
    const res = await runCli(['run', ECHO, '--export', 'echo', '--input', input, '--socket', stale]);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(`thunderpac: no daemon at ${stale}: connect ECONNREFUSED\n`);
    expect(res.stdout).toBe('');
  });

  it('$THUNDERPAC_SOCKET naming a missing socket is exit 2 for every client-mode command', async () => {
    const missing = join(tmp.dir, 'missing', 'thunderpac.sock');
    const env = { THUNDERPAC_SOCKET: missing };
    const commands = [
      ['run', '--model', 'mlp', '--input', MLP_SAMPLE],
      ['receipt', 'list'],
      ['map', 'dump', 'xdp_stats'],
    ];
    const results = await Promise.all(commands.map((args) => runCli(args, { env })));
    for (const [i, res] of results.entries()) {
      expect(res.code, commands[i]!.join(' ')).toBe(2);
      expect(res.stderr, commands[i]!.join(' ')).toBe(
        `thunderpac: no daemon at ${missing}: connect ENOENT\n`,
      );
    }
  });

  it('without --socket or $THUNDERPAC_SOCKET the command runs in-process on the local store', async () => {
    const store = join(tmp.dir, 'implicit-store');
    const res = await runCli(['run', ECHO, '--export', 'echo', '--input', input, '--json'], {
      env: { THUNDERPAC_STORE: store },
    });
    expect(res.code, res.stderr).toBe(0);
    const id = JSON.parse(res.stdout).receipt.id as string;
    const shown = await runCli(['receipt', 'show', id], { env: { THUNDERPAC_STORE: store } });
    expect(shown.code, shown.stderr).toBe(0);
    // The daemon never saw it.
    expect((await daemon.request({ path: `/v1/receipts/${id}` })).status).toBe(404);
  });

  it('a flag naming local state beside --socket is a usage error (exit 2), not silently ignored', async () => {
    const res = await remote('run', ECHO, '--export', 'echo', '--input', input, '--store', localStore);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--store names local state/);
  });
});
