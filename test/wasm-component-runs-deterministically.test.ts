import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deniedInterface } from '../src/backends/wasm/preview2.js';
import {
  COMPONENT_ENTRY,
  createComponentBuild,
  createWasmBuild,
  WasmBackend,
} from '../src/backends/wasm/index.js';
import { GuestExitError, LimitExceededError, ProgramRejectedError } from '../src/runtime/errors.js';
import { type SandboxOptions, sandboxSpec } from '../src/runtime/sandbox.js';
import type { Output, SandboxSpec } from '../src/runtime/types.js';
import { storedThunderpac } from './helpers/stored-thunderpac.js';
import { buildGuests, bytes, ctx, guest, probeLines, text } from './wasm-fixtures.js';

const WASM_DIR = fileURLToPath(new URL('../wasm/', import.meta.url));

/** A command component made by `jco new --wasi-command` from a C guest (wasm/Makefile). */
function component(name: string): Uint8Array {
  const path = `${WASM_DIR}components/${name}.wasm`;
  if (!existsSync(path)) throw new Error(`${path} missing: run make -C wasm (needs node_modules)`);
  return new Uint8Array(readFileSync(path));
}

const backend = new WasmBackend();
beforeAll(() => buildGuests());
afterAll(() => backend.close());

function spec(extra: Partial<SandboxOptions> = {}): SandboxSpec {
  return sandboxSpec({
    backend: 'wasm',
    limits: { fuel: 50_000_000, ...extra.limits },
    allowedImports: ['wasi:*'],
    ...extra,
    ...(extra.limits ? { limits: { fuel: 50_000_000, ...extra.limits } } : {}),
  });
}

function outBytes(o: Output): Uint8Array {
  if (o.kind !== 'bytes') throw new Error(`expected bytes, got ${o.kind}`);
  return o.bytes;
}

async function run(name: string, input: string, s: SandboxSpec = spec()) {
  const p = await backend.prepare(createComponentBuild(component(name), { name }), s);
  const c = ctx(COMPONENT_ENTRY, s);
  const out = await backend.run(p, { kind: 'bytes', bytes: bytes(input) }, c);
  return { out: text(outBytes(out)), stderr: text(c.usage.stderr ?? new Uint8Array(0)), usage: c.usage };
}

async function refusal(p: Promise<unknown>): Promise<ProgramRejectedError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProgramRejectedError);
  return err as ProgramRejectedError;
}

describe('WASI preview 2 command components', () => {
  it('stdin is the input, stdout the output, stderr captured; the same input twice gives the same fuel', async () => {
    const a = await run('wasi_cat', 'hello, component');
    const b = await run('wasi_cat', 'hello, component');
    expect(a.out).toBe('HELLO, COMPONENT');
    expect(a.stderr).toBe('cat: 16 bytes\n');
    expect(a.usage.fuelUsed).toBeGreaterThan(0);
    expect(b).toEqual(a);
  });

  it('sees the same deterministic capabilities as the preview 1 command it was made from', async () => {
    const s = spec({
      wasi: { args: ['probe', 'x'], env: { HOME: '/guest' } },
      fs: { kind: 'memory', files: { 'data.txt': 'hello\nworld\n' } },
      determinism: { seed: 7 },
    });
    const p2 = probeLines(bytes((await run('wasi_probe', '', s)).out));
    const p1spec = { ...s, allowedImports: ['wasi_snapshot_preview1.*'] };
    const p1prepared = await backend.prepare(
      createWasmBuild(guest('wasi_probe'), { name: 'wasi_probe' }),
      p1spec,
    );
    const p1 = probeLines(
      outBytes(await backend.run(p1prepared, { kind: 'bytes', bytes: bytes('') }, ctx('_start', p1spec))),
    );
    expect(p2).toMatchObject({ argc: '2', argv0: 'probe', envc: '1', home: '/guest' });
    expect(p2.time).toBe('946684800'); // 2000-01-01: the virtual wall clock
    expect(p2.after_sleep).toBe(p1.after_sleep); // sleeping advanced the virtual clock, no wait
    expect(p2.random).toBe(p1.random); // the same seeded stream
    expect(p2.read).toBe('hello|world|');
    // Writes to a read-only tree fail with EROFS through the adapter too.
    for (const k of ['open_write', 'open_create', 'open_trunc', 'rename', 'unlink', 'mkdir'])
      expect(p2[k], k).toBe('69');
    // Escapes are refused (the adapter reports 'not-permitted' as EPERM, 63).
    expect(p2.escape_dotdot).toBe('63');
    const other = probeLines(bytes((await run('wasi_probe', '', spec({ determinism: { seed: 8 } }))).out));
    expect(other.random).not.toBe(p2.random);
    expect(other).toMatchObject({
      argc: '1',
      argv0: 'wasi_probe',
      envc: '0',
      home: '(unset)',
      read: 'err76',
    }); // no preopen at all
  });

  it('a writable memory tree is private to each execution', async () => {
    const s = spec({ fs: { kind: 'memory', files: { 'a.txt': 'A' }, writable: true } });
    const first = await run(
      'wasi_files',
      'cat b.txt\nwrite b.txt new\nappend a.txt +\ncat a.txt\ncat b.txt\n',
      s,
    );
    expect(first.out).toBe('cat b.txt err44\nwrite b.txt ok\nappend a.txt ok\ncat a.txt A+\ncat b.txt new\n');
    const second = await run('wasi_files', 'cat b.txt\ncat a.txt\nls .\n', s);
    expect(second.out).toBe('cat b.txt err44\ncat a.txt A\nls . a.txt\n');
  });

  it('a non-zero exit is GuestExitError with stderr; output past maxOutputBytes and fuel run out are limits', async () => {
    const exit = await run('wasi_exit', '3').catch((e: unknown) => e);
    expect(exit).toBeInstanceOf(GuestExitError);
    expect((exit as GuestExitError).exitCode).toBe(1); // the adapter reports any non-zero code as err
    expect(text((exit as GuestExitError).stderr)).toBe('bye 3\n');

    const over = await run('wasi_cat', 'x'.repeat(100), spec({ limits: { maxOutputBytes: 10 } })).catch(
      (e) => e,
    );
    expect(over).toBeInstanceOf(LimitExceededError);
    expect((over as LimitExceededError).limit).toBe('maxOutputBytes');

    const tight = spec({ limits: { fuel: 5_000 } });
    const a = await run('wasi_cat', 'abc'.repeat(1000), tight).catch((e) => e);
    const b = await run('wasi_cat', 'abc'.repeat(1000), tight).catch((e) => e);
    expect(a).toBeInstanceOf(LimitExceededError);
    expect((a as LimitExceededError).limit).toBe('fuel');
    expect((b as LimitExceededError).message).toBe((a as LimitExceededError).message);
  });

  it('wasi:sockets interfaces link but every call fails with access-denied', () => {
    const tcp = deniedInterface() as Record<string, unknown>;
    expect(() => (tcp.createTcpSocket as () => unknown)()).toThrow();
    let thrown: unknown;
    try {
      (tcp.createTcpSocket as () => unknown)();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBe('access-denied');
    expect(typeof tcp.TcpSocket).toBe('function');
  });
});

describe('components that are refused, each with its own typed error', () => {
  it('bytes that are not a component, a core module, and a truncated component are malformed', async () => {
    const cases: [Uint8Array, RegExp][] = [
      [bytes('definitely not wasm'), /component header/],
      [guest('wasi_cat'), /core module/],
      [component('wasi_cat').slice(0, 200), /invalid component/],
    ];
    for (const [b, why] of cases) {
      const err = await refusal(backend.prepare(createComponentBuild(b, { name: 'bad' }), spec()));
      expect(err.code).toBe('WASM_MALFORMED');
      expect(err.message).toMatch(why);
    }
  });

  it('imports the sandbox does not allow are refused by interface name', async () => {
    const s = spec({ allowedImports: ['wasi:io/*', 'wasi:cli/stdin'] });
    const err = await refusal(backend.prepare(createComponentBuild(component('wasi_cat'), { name: 'c' }), s));
    expect(err.code).toBe('WASM_IMPORT_NOT_ALLOWED');
    expect(err.subject).toMatch(/^wasi:(cli|clocks|filesystem|random)\//);
  });

  it('no fuel limit, or an entry other than wasi:cli/run, is refused', async () => {
    const build = createComponentBuild(component('wasi_cat'), { name: 'c' });
    const unmetered = sandboxSpec({ backend: 'wasm', allowedImports: ['wasi:*'] });
    expect((await refusal(backend.prepare(build, unmetered))).code).toBe('WASM_COMPONENT_NEEDS_FUEL');
    const s = spec();
    const p = await backend.prepare(build, s);
    const err = await refusal(backend.run(p, { kind: 'bytes', bytes: bytes('') }, ctx('_start', s)));
    expect(err.code).toBe('WASM_NO_SUCH_EXPORT');
  });
});

describe('component receipts', () => {
  const tp = storedThunderpac('tp-component-');

  it('same input twice: same output hash, fuel and replay fingerprint; verify replays it', async () => {
    const build = createComponentBuild(component('wasi_probe'), { name: 'wasi_probe' });
    const opts: SandboxOptions = {
      backend: 'wasm',
      limits: { fuel: 50_000_000 },
      allowedImports: ['wasi:*'],
      fs: { kind: 'memory', files: { 'data.txt': 'pinned' } },
      determinism: { seed: 42 },
    };
    const input = { kind: 'bytes' as const, bytes: bytes('') };
    const a = await tp().execute(tp().sandbox(opts), { build, entry: COMPONENT_ENTRY, input });
    const b = await tp().execute(tp().sandbox(opts), { build, entry: COMPONENT_ENTRY, input });
    expect(a.status).toBe('completed');
    expect(a.receipt.entry).toBe('wasi:cli/run');
    expect(a.receipt.determinism.flags).toContain('wasi-virtual-clock');
    expect(build.manifest.toolchain.jco).toMatch(/^\d+\.\d+\.\d+/);
    expect(b.receipt.output).toEqual(a.receipt.output);
    expect(b.receipt.resources.fuelUsed).toBe(a.receipt.resources.fuelUsed);
    const report = await tp().verify(a.receipt.id);
    expect(report.problem).toBeNull();
    expect(report.mismatches).toEqual([]);
    expect(report.match).toBe(true);
  });
});
