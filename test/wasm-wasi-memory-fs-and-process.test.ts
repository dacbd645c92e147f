import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/index.js';
import { ValidationError } from '../src/runtime/errors.js';
import { fsTreeDigest, MEMORY_FS_MAX_BYTES } from '../src/runtime/fs-tree.js';
import { type SandboxOptions, sandboxSpec } from '../src/runtime/sandbox.js';
import type { Output, SandboxSpec } from '../src/runtime/types.js';
import { storedThunderpac } from './helpers/stored-thunderpac.js';
import { buildGuests, bytes, ctx, guest, text } from './wasm-fixtures.js';

// WASI errnos as wasi-libc reports them.
const EEXIST = 'err20';
const ENOENT = 'err44';
const ENOSPC = 'err51';
const EROFS = 'err69';
const ENOTCAPABLE = 'err76';

const backends = [
  ['worker', new WasmBackend({ path: 'worker', workers: 1 })],
  ['in-thread', new WasmBackend({ path: 'in-thread' })],
] as const;

beforeAll(() => buildGuests());
afterAll(async () => {
  for (const [, b] of backends) await b.close();
});

const TREE = { 'data.txt': 'hello', 'etc/conf/app.ini': 'x=1\n', 'bin/blob': new Uint8Array([0, 1, 2, 255]) };

function spec(extra: Partial<SandboxOptions> = {}): SandboxSpec {
  return sandboxSpec({
    backend: 'wasm',
    limits: { timeoutMs: 2000, memoryMb: 16 },
    allowedImports: ['wasi_snapshot_preview1.*'],
    ...extra,
  });
}

function outBytes(o: Output): Uint8Array {
  if (o.kind !== 'bytes') throw new Error(`expected bytes, got ${o.kind}`);
  return o.bytes;
}

/** Lines of wasm/wasi_files.c's answers, keyed "cmd path". */
function answers(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [cmd, path, ...rest] = line.split(' ');
    if (cmd) m.set(`${cmd} ${path}`, rest.join(' '));
  }
  return m;
}

describe.each(backends)('WASI memory fs and process, %s path', (_path, backend) => {
  const files = createWasmBuild(guest('wasi_files'), { name: 'wasi_files' });
  const run = async (s: SandboxSpec, script: string): Promise<string> => {
    const p = await backend.prepare(files, s);
    return text(outBytes(await backend.run(p, { kind: 'bytes', bytes: bytes(script) }, ctx('_start', s))));
  };

  it('args and env come from the spec; the defaults are [name] and nothing', async () => {
    expect(answers(await run(spec(), 'argv\nenv\n'))).toEqual(
      new Map([
        ['argv wasi_files', ''],
        ['env ', ''],
      ]),
    );
    const out = await run(
      spec({ wasi: { args: ['prog', 'a b', ''], env: { ZED: 'last', ALPHA: 'x=y' } } }),
      'argv\nenv\n',
    );
    expect(out).toBe('argv prog,a b,\nenv ALPHA=x=y,ZED=last\n');
  });

  it('a read-only memory tree is readable and refuses every write with EROFS', async () => {
    const s = spec({ fs: { kind: 'memory', files: TREE } });
    const a = answers(
      await run(
        s,
        'cat data.txt\ncat etc/conf/app.ini\nls .\nls etc\nstat bin/blob\ncat nope\ncat ../x\n' +
          'write data.txt y\nwrite new.txt y\nmkdir d\nrm data.txt\nmv data.txt d2\ntrunc data.txt 0\n',
      ),
    );
    expect(a.get('cat data.txt')).toBe('hello');
    expect(a.get('cat etc/conf/app.ini')).toBe('x=1');
    expect(a.get('ls .')).toBe('bin/,data.txt,etc/');
    expect(a.get('ls etc')).toBe('conf/');
    expect(a.get('stat bin/blob')).toBe('file 4 mtime=0');
    expect(a.get('cat nope')).toBe(ENOENT);
    expect(a.get('cat ../x')).toBe(ENOTCAPABLE);
    for (const k of [
      'write data.txt',
      'write new.txt',
      'mkdir d',
      'rm data.txt',
      'mv data.txt',
      'trunc data.txt',
    ]) {
      expect(a.get(k), k).toBe(EROFS);
    }
  });

  it('a writable tree takes writes within one execution and forgets them after it', async () => {
    const s = spec({ fs: { kind: 'memory', files: TREE, writable: true } });
    const script =
      'cat scratch.txt\nexcl scratch.txt first\nexcl scratch.txt again\nappend scratch.txt +more\n' +
      'cat scratch.txt\nwrite data.txt bye\ncat data.txt\nmkdir out\nmv scratch.txt out/s.txt\n' +
      'ls out\nrm bin/blob\nls bin\nrmdir bin\ncat out/s.txt\n';
    const first = answers(await run(s, script));
    expect(first.get('cat scratch.txt')).toBe('first+more');
    expect(first.get('excl scratch.txt')).toBe(EEXIST);
    expect(first.get('cat data.txt')).toBe('bye');
    expect(first.get('ls out')).toBe('s.txt');
    expect(first.get('ls bin')).toBe('');
    expect(first.get('rmdir bin')).toBe('ok');
    expect(first.get('cat out/s.txt')).toBe('first+more');
    // A second execution starts from the tree as given: nothing written above is there.
    const second = answers(await run(s, 'cat scratch.txt\ncat data.txt\nls .\ncat bin/blob\n'));
    expect(second.get('cat scratch.txt')).toBe(ENOENT);
    expect(second.get('cat data.txt')).toBe('hello');
    expect(second.get('ls .')).toBe('bin/,data.txt,etc/');
  });

  it('writes past maxBytes fail with ENOSPC', async () => {
    const s = spec({ fs: { kind: 'memory', files: { 'a.txt': '12345' }, writable: true, maxBytes: 8 } });
    const a = answers(await run(s, 'append a.txt 123\nappend a.txt 4\ncat a.txt\n'));
    expect(a.get('append a.txt')).toBe(ENOSPC);
    expect(a.get('cat a.txt')).toBe('12345123');
  });

  it('writes on the writable copy match a model of the file (fast-check)', async () => {
    const s = spec({ fs: { kind: 'memory', files: { 'f.txt': 'seed' }, writable: true } });
    const op = fc.oneof(
      fc.record({ k: fc.constant('write' as const), t: fc.stringMatching(/^[a-z0-9]{1,12}$/) }),
      fc.record({ k: fc.constant('append' as const), t: fc.stringMatching(/^[a-z0-9]{1,12}$/) }),
      fc.record({ k: fc.constant('trunc' as const), n: fc.nat(20) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 12 }), async (ops) => {
        let model = 'seed';
        let script = '';
        for (const o of ops) {
          if (o.k === 'trunc') {
            script += `trunc f.txt ${o.n}\n`;
            model = model.length >= o.n ? model.slice(0, o.n) : model + '\0'.repeat(o.n - model.length);
          } else {
            script += `${o.k} f.txt ${o.t}\n`;
            model = o.k === 'write' ? o.t : model + o.t;
          }
        }
        const out = await run(s, `${script}cat f.txt\n`);
        expect(out.split('\n').at(-2)).toBe(`cat f.txt ${model}`);
      }),
      { numRuns: 25 },
    );
  });
});

describe('sandbox spec: wasi process and memory fs validation', () => {
  const bad = (options: Partial<SandboxOptions>, path: string): void => {
    let err: unknown;
    try {
      sandboxSpec({ backend: 'wasm', ...options });
    } catch (e) {
      err = e;
    }
    expect(err, path).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).path).toBe(path);
  };

  it('refuses bad args and env with the field path', () => {
    bad({ wasi: { args: 'x' as unknown as string[] } }, 'sandbox.wasi.args');
    bad({ wasi: { args: ['ok', 7 as unknown as string] } }, 'sandbox.wasi.args[1]');
    bad({ wasi: { args: ['a\0b'] } }, 'sandbox.wasi.args[0]');
    bad({ wasi: { env: { 'A=B': 'x' } } }, 'sandbox.wasi.env["A=B"]');
    bad({ wasi: { env: { '': 'x' } } }, 'sandbox.wasi.env[""]');
    bad({ wasi: { env: { A: 1 as unknown as string } } }, 'sandbox.wasi.env["A"]');
    bad({ wasi: { env: { BIG: 'x'.repeat(70_000) } } }, 'sandbox.wasi');
  });

  it('refuses escaping, empty and conflicting paths, bad values and oversized trees', () => {
    const mem = (files: Record<string, unknown>, extra = {}) =>
      ({ fs: { kind: 'memory', files, ...extra } }) as Partial<SandboxOptions>;
    bad(mem({ '../etc/passwd': 'x' }), 'sandbox.fs.files["../etc/passwd"]');
    bad(mem({ '/abs': 'x' }), 'sandbox.fs.files["/abs"]');
    bad(mem({ 'a//b': 'x' }), 'sandbox.fs.files["a//b"]');
    bad(mem({ 'a/./b': 'x' }), 'sandbox.fs.files["a/./b"]');
    bad(mem({ '': 'x' }), 'sandbox.fs.files[""]');
    bad(mem({ a: 'x', 'a/b': 'y' }), 'sandbox.fs.files["a"]');
    bad(mem({ a: 42 }), 'sandbox.fs.files["a"]');
    bad(mem({ a: '12345' }, { maxBytes: 4 }), 'sandbox.fs.files');
    bad(mem({}, { maxBytes: MEMORY_FS_MAX_BYTES + 1 }), 'sandbox.fs.maxBytes');
    bad(mem({}, { writable: 'yes' }), 'sandbox.fs.writable');
    bad({ fs: { kind: 'rw', dir: '/' } as unknown as SandboxOptions['fs'] }, 'sandbox.fs.kind');
  });

  it('the tree digest is canonical: insertion order and string-vs-bytes do not change it', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.stringMatching(/^[a-z]{1,6}(\/[a-z]{1,6})?$/), fc.string({ maxLength: 20 }), {
          maxKeys: 8,
        }),
        (files) => {
          // Drop paths that collide as file and directory; the rest must hash the same either way.
          const ok = Object.fromEntries(
            Object.entries(files).filter(([p]) => !Object.keys(files).some((q) => q.startsWith(`${p}/`))),
          );
          const reversed = Object.fromEntries(
            Object.entries(ok)
              .reverse()
              .map(([k, v]) => [k, new TextEncoder().encode(v)]),
          );
          const a = sandboxSpec({ backend: 'wasm', fs: { kind: 'memory', files: ok } });
          const b = sandboxSpec({ backend: 'wasm', fs: { kind: 'memory', files: reversed } });
          expect(b.fs).toEqual(a.fs);
          expect(a.fs.kind === 'memory' && a.fs.digest).toBe(fsTreeDigest(a.fsTree ?? {}));
        },
      ),
    );
  });
});

describe('receipts pin the memory tree, args and env; verify replays them', () => {
  const tp = storedThunderpac('tp-memfs-');

  it('same tree and input twice: same output and replay fingerprint; a changed file changes the digest', async () => {
    const build = createWasmBuild(guest('wasi_files'), { name: 'wasi_files' });
    const opts: SandboxOptions = {
      backend: 'wasm',
      allowedImports: ['wasi_snapshot_preview1.*'],
      fs: { kind: 'memory', files: TREE, writable: true },
      wasi: { args: ['tool', '--flag'], env: { LANG: 'C' } },
    };
    const input = {
      kind: 'bytes' as const,
      bytes: bytes('argv\nenv\ncat data.txt\nwrite data.txt w\ncat data.txt\n'),
    };
    const a = await tp().execute(tp().sandbox(opts), { build, entry: '_start', input });
    const b = await tp().execute(tp().sandbox(opts), { build, entry: '_start', input });
    expect(a.status).toBe('completed');
    expect(text(outBytes(a.output as Output))).toBe(
      'argv tool,--flag\nenv LANG=C\ncat data.txt hello\nwrite data.txt ok\ncat data.txt w\n',
    );
    expect(b.receipt.output).toEqual(a.receipt.output);
    expect(b.receipt.sandbox).toEqual(a.receipt.sandbox);
    expect(a.receipt.sandbox.wasi).toEqual({ args: ['tool', '--flag'], env: { LANG: 'C' } });
    const fs = a.receipt.sandbox.fs;
    expect(fs.kind === 'memory' && fs.digest).toMatch(/^[0-9a-f]{64}$/);
    const report = await tp().verify(a.receipt.id);
    expect(report.problem).toBeNull();
    expect(report.mismatches).toEqual([]);
    expect(report.match).toBe(true);

    const changed = await tp().execute(
      tp().sandbox({
        ...opts,
        fs: { kind: 'memory', files: { ...TREE, 'data.txt': 'hellp' }, writable: true },
      }),
      { build, entry: '_start', input },
    );
    const fs2 = changed.receipt.sandbox.fs;
    expect(fs2.kind === 'memory' && fs2.digest).not.toBe(fs.kind === 'memory' && fs.digest);
  });
});
