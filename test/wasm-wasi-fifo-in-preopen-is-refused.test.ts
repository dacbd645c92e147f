import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  COMPONENT_ENTRY,
  createComponentBuild,
  createWasmBuild,
  WasmBackend,
} from '../src/backends/wasm/index.js';
import { sandboxSpec } from '../src/runtime/sandbox.js';
import type { SandboxSpec } from '../src/runtime/types.js';
import { buildGuests, bytes, ctx, guest, text, wasiSandbox } from './wasm-fixtures.js';

// Issue #10 defect 3: opening a named pipe for reading blocks until a writer comes. The WASI
// host opened preopen files with a blocking openSync, so a FIFO in a read-only directory hung
// an in-thread execution forever, and left terminated workers blocked (close() never resolved).
//
// So that the old behaviour fails these tests instead of hanging the suite, a helper process
// opens each FIFO for writing a few seconds in (non-blocking: it gives up when no one reads) and
// writes "unblocked": a host that blocked would then read that instead of refusing the FIFO.

let dir: string;
let unblocker: ChildProcess | undefined;
const WASM_DIR = fileURLToPath(new URL('../wasm/', import.meta.url));

beforeAll(() => {
  buildGuests();
  dir = mkdtempSync(join(tmpdir(), 'tp-fifo-'));
  writeFileSync(join(dir, 'data.txt'), 'hello');
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  const script = `
    const fs = require('node:fs');
    const fifo = ${JSON.stringify(join(dir, 'fifo'))};
    setInterval(() => {
      try {
        const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
        fs.writeSync(fd, 'unblocked');
        fs.closeSync(fd);
      } catch {}
    }, 3000);`;
  unblocker = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
});
afterAll(() => {
  unblocker?.kill();
  rmSync(dir, { recursive: true, force: true });
});

const EACCES = 2;
const COMMANDS = 'cat fifo\ncat data.txt\nstat fifo\n';

describe.each(['worker', 'in-thread'] as const)('a FIFO in the read-only preopen, %s path', (path) => {
  it('is refused with EACCES; regular files still read; close() resolves', async () => {
    const backend = new WasmBackend({ path, workers: 1 });
    try {
      const spec = wasiSandbox({ dir, fuel: 100_000_000, limits: { timeoutMs: 20_000 } });
      const prepared = await backend.prepare(
        createWasmBuild(guest('wasi_files'), { name: 'wasi_files' }),
        spec,
      );
      const out = await backend.run(prepared, { kind: 'bytes', bytes: bytes(COMMANDS) }, ctx('_start', spec));
      if (out.kind !== 'bytes') throw new Error('expected bytes');
      const lines = text(out.bytes).split('\n');
      expect(lines[0]).toBe(`cat fifo err${EACCES}`);
      expect(lines[1]).toBe('cat data.txt hello');
      // stat opens nothing: the FIFO is seen, as a file of no size (its type is not regular).
      expect(lines[2]).toMatch(/^stat fifo /);
    } finally {
      await backend.close();
    }
  });
});

describe('a FIFO in the read-only preopen, a preview 2 component', () => {
  it('is refused; regular files still read', async () => {
    const path = `${WASM_DIR}components/wasi_files.wasm`;
    if (!existsSync(path)) throw new Error(`${path} missing: run make -C wasm`);
    const backend = new WasmBackend();
    try {
      const spec: SandboxSpec = sandboxSpec({
        backend: 'wasm',
        limits: { fuel: 100_000_000 },
        allowedImports: ['wasi:*'],
        fs: { kind: 'read-only', dir },
      });
      const build = createComponentBuild(new Uint8Array(readFileSync(path)), { name: 'wasi_files' });
      const prepared = await backend.prepare(build, spec);
      const out = await backend.run(
        prepared,
        { kind: 'bytes', bytes: bytes(COMMANDS) },
        ctx(COMPONENT_ENTRY, spec),
      );
      if (out.kind !== 'bytes') throw new Error('expected bytes');
      const lines = text(out.bytes).split('\n');
      expect(lines[0]).toMatch(/^cat fifo err\d+$/);
      expect(lines[1]).toBe('cat data.txt hello');
    } finally {
      await backend.close();
    }
  });
});
