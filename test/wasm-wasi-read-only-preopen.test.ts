import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/index.js';
import { ValidationError } from '../src/runtime/errors.js';
import type { SandboxSpec } from '../src/runtime/types.js';
import { buildGuests, bytes, ctx, guest, probeLines, wasiSandbox } from './wasm-fixtures.js';

// WASI errnos as wasi-libc reports them.
const EBADF = '8';
const ENOENT = '44';
const EROFS = '69';
const ENOTCAPABLE = '76';

const backends = [
  ['worker', new WasmBackend({ path: 'worker', workers: 1 })],
  ['in-thread', new WasmBackend({ path: 'in-thread' })],
] as const;

let base: string;
let root: string;

/** Every path under dir with its contents (or '<dir>'), to show the guest changed nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath ?? e.path, e.name);
    out[p] = e.isSymbolicLink() ? '<link>' : e.isDirectory() ? '<dir>' : readFileSync(p, 'utf8');
  }
  return out;
}

beforeAll(() => {
  buildGuests();
  base = mkdtempSync(join(tmpdir(), 'tp-wasi-fs-'));
  root = join(base, 'root');
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'data.txt'), 'hello\nworld\n');
  writeFileSync(join(base, 'outside.txt'), 'secret\n');
  symlinkSync('../outside.txt', join(root, 'link-out'));
  symlinkSync('data.txt', join(root, 'link-in'));
});
afterAll(async () => {
  for (const [, b] of backends) await b.close();
  rmSync(base, { recursive: true, force: true });
});

describe.each(backends)('WASI read-only preopen, %s path', (_path, backend) => {
  const probe = async (spec: SandboxSpec): Promise<Record<string, string>> => {
    const p = await backend.prepare(createWasmBuild(guest('wasi_probe'), { name: 'wasi_probe' }), spec);
    const out = await backend.run(p, { kind: 'bytes', bytes: bytes('') }, ctx('_start', spec));
    if (out.kind !== 'bytes') throw new Error('expected bytes');
    return probeLines(out.bytes);
  };

  it('reads a file in the directory; metadata times are 0', async () => {
    const seen = await probe(wasiSandbox({ dir: root }));
    expect(seen.read).toBe('hello|world|');
    expect(seen.stat).toBe('size:12,mtime:0');
    expect(seen.inner_symlink).toBe('ok'); // a link that stays inside is followed
    expect(seen.ls).toBe('data.txt,link-in,link-out,sub'); // sorted, not in host order
  });

  it('writes, creates, truncates, renames, unlinks and mkdirs fail with EROFS; the host dir is unchanged', async () => {
    const before = snapshot(base);
    const seen = await probe(wasiSandbox({ dir: root }));
    expect(seen).toMatchObject({
      open_write: EROFS,
      open_create: EROFS,
      open_trunc: EROFS,
      rename: EROFS,
      unlink: EROFS,
      mkdir: EROFS,
      write_ro_fd: EBADF, // a descriptor opened for reading has no write right
    });
    expect(snapshot(base)).toEqual(before);
  });

  it('paths cannot leave the directory: .., nested .., escaping symlinks, absolute paths', async () => {
    const seen = await probe(wasiSandbox({ dir: root }));
    expect(seen.escape_dotdot).toBe(ENOTCAPABLE);
    expect(seen.escape_nested).toBe(ENOTCAPABLE);
    expect(seen.escape_symlink).toBe(ENOTCAPABLE);
    // The preopen is "/" to the guest: /etc/passwd is looked up inside it, and is not there.
    expect(seen.absolute).toBe(ENOENT);
  });

  it('the same directory gives the same output on every run', async () => {
    const a = await probe(wasiSandbox({ dir: root }));
    const b = await probe(wasiSandbox({ dir: root }));
    expect(b).toEqual(a);
  });

  it('a directory that does not exist is refused at prepare', async () => {
    const spec = wasiSandbox({ dir: join(base, 'nope') });
    const build = createWasmBuild(guest('wasi_probe'), { name: 'wasi_probe' });
    await expect(backend.prepare(build, spec)).rejects.toBeInstanceOf(ValidationError);
  });
});
