import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.js';
import { buildTcpFrame } from '../src/runtime/packets.js';
import { packagePath } from '../src/runtime/package-root.js';
import { buildGuests } from './wasm-fixtures.js';

let dir: string;
let store: string;
let inputFile: string;
const echo = packagePath('wasm', 'echo.wasm');

beforeAll(() => {
  buildGuests();
  dir = mkdtempSync(join(tmpdir(), 'tp-cli-'));
  store = join(dir, 'store');
  inputFile = join(dir, 'in.txt');
  writeFileSync(inputFile, 'stressed');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('thunderpac run', () => {
  it('prints the output and the receipt', async () => {
    const r = await cli('run', echo, '--export', 'reverse', '--input', inputFile, '--store', store);
    expect(r.code).toBe(0);
    expect(r.out).toContain('"desserts"');
    expect(r.out).toMatch(/receipt [0-9a-f]{64}/);
    expect(r.out).toContain('status     completed');
  });

  it('--json gives one object with output and receipt; receipt verify replays it', async () => {
    const r = await cli('run', echo, '--export', 'reverse', '--input', inputFile, '--store', store, '--json');
    const json = JSON.parse(r.out) as { output: { text: string }; receipt: { id: string; status: string } };
    expect(json.output.text).toBe('desserts');
    expect(json.receipt.status).toBe('completed');
    const v = await cli('receipt', 'verify', json.receipt.id, '--store', store);
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/^match/);
    const list = await cli('receipt', 'list', '--store', store);
    expect(list.out).toContain(json.receipt.id);
    const show = await cli('receipt', 'show', json.receipt.id, '--store', store);
    expect(JSON.parse(show.out).id).toBe(json.receipt.id);
  });

  it('exits 1 with a failed receipt when the guest runs past --timeout-ms', async () => {
    const r = await cli(
      'run',
      echo,
      '--export',
      'spin',
      '--input',
      inputFile,
      '--timeout-ms',
      '100',
      '--store',
      store,
      '--json',
    );
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).receipt.error.code).toBe('LIMIT_TIMEOUT_MS');
  });

  it('refuses a guest over --memory-mb', async () => {
    const huge = packagePath('wasm', 'mem_huge.wasm');
    const r = await cli(
      'run',
      huge,
      '--export',
      'echo',
      '--input',
      inputFile,
      '--memory-mb',
      '64',
      '--store',
      store,
      '--json',
    );
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).receipt.error.code).toBe('LIMIT_MEMORY_MB');
  });

  it('runs an XDP program from a BPF object on a packet file', async () => {
    const packet = join(dir, 'packet.bin');
    writeFileSync(packet, buildTcpFrame({ srcPort: 1, dstPort: 2 }));
    const r = await cli(
      'run',
      packagePath('bpf', 'xdp_verdict.bpf.o'),
      '--export',
      'xdp_drop_udp',
      '--input',
      packet,
      '--store',
      store,
      '--json',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).output.verdict).toBe('XDP_PASS');
    const onPort = await cli(
      'run',
      packagePath('bpf', 'xdp_verdict.bpf.o'),
      '--export',
      'xdp_drop_udp',
      '--input',
      packet,
      '--port',
      '7',
      '--store',
      store,
      '--json',
    );
    expect(JSON.parse(onPort.out).output.packets[0].port).toBe(7);
  });

  it('reads the input from stdin with --input -', () => {
    const out = execFileSync(
      process.execPath,
      ['bin/thunderpac.js', 'run', echo, '--export', 'reverse', '--input', '-', '--store', store, '--json'],
      {
        cwd: packagePath(),
        input: 'drawer',
      },
    );
    expect(JSON.parse(out.toString()).output.text).toBe('reward');
  });
});

describe('bad command lines exit 2 with a message that says what was wrong', () => {
  it.each([
    [['run'], /exactly one program file/],
    [['run', echo, '--input', 'x'], /--export NAME/],
    [['run', echo, '--export', 'echo'], /--input FILE/],
    [
      ['run', echo, '--export', 'echo', '--input', '/nonexistent/in'],
      /--input does not exist: \/nonexistent\/in/,
    ],
    [
      ['run', '/nonexistent.wasm', '--export', 'echo', '--input', '-'],
      /program does not exist: \/nonexistent.wasm/,
    ],
    [
      ['run', echo, '--export', 'echo', '--input', '-', '--timeout-ms', 'soon'],
      /--timeout-ms expects a non-negative integer, got 'soon'/,
    ],
    [['run', echo, '--export', 'echo', '--input', '-', '--bogus'], /Unknown option '--bogus'/],
    [['run', packagePath('README.md'), '--export', 'echo', '--input', '-'], /unknown program type '.md'/],
    [['receipt', 'frobnicate'], /unknown receipt action 'frobnicate'/],
    [['receipt', 'verify'], /needs a receipt id/],
    [['launch'], /unknown command 'launch'/],
  ])('%j', async (argv, message) => {
    const r = await cli(...argv, '--store', store);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('an unknown receipt id is reported, not crashed on', async () => {
    const r = await cli('receipt', 'verify', 'a'.repeat(64), '--store', store);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/NOT_FOUND: receipt a+ not found/);
  });

  it('a timeout of 0 is refused with the field path', async () => {
    const r = await cli(
      'run',
      echo,
      '--export',
      'echo',
      '--input',
      inputFile,
      '--timeout-ms',
      '0',
      '--store',
      store,
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/sandbox.limits.timeoutMs/);
  });
});
