import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/index.js';
import { GuestExitError, LimitExceededError, type ProgramRejectedError } from '../src/runtime/errors.js';
import { sandboxSpec } from '../src/runtime/sandbox.js';
import type { Output, SandboxSpec } from '../src/runtime/types.js';
import { storedThunderpac } from './helpers/stored-thunderpac.js';
import { buildGuests, bytes, ctx, guest, sandbox, text, wasiSandbox } from './wasm-fixtures.js';

const backends = [
  ['worker', new WasmBackend({ path: 'worker', workers: 1 })],
  ['in-thread', new WasmBackend({ path: 'in-thread' })],
] as const;

beforeAll(() => buildGuests());
afterAll(async () => {
  for (const [, b] of backends) await b.close();
});

function outBytes(o: Output): Uint8Array {
  if (o.kind !== 'bytes') throw new Error(`expected bytes, got ${o.kind}`);
  return o.bytes;
}

describe.each(backends)('WASI commands, %s path', (_path, backend) => {
  const run = async (name: string, input: string, spec: SandboxSpec = wasiSandbox()) => {
    const p = await backend.prepare(createWasmBuild(guest(name), { name }), spec);
    const c = ctx('_start', spec);
    const out = await backend.run(p, { kind: 'bytes', bytes: bytes(input) }, c);
    return { out: text(outBytes(out)), stderr: text(c.usage.stderr ?? new Uint8Array(0)), usage: c.usage };
  };

  it('stdin is the input, stdout the output, stderr is captured apart', async () => {
    const r = await run('wasi_cat', 'hello, wasi');
    expect(r.out).toBe('HELLO, WASI');
    expect(r.stderr).toBe('cat: 11 bytes\n');
    expect(await run('wasi_cat', '')).toMatchObject({ out: '', stderr: 'cat: 0 bytes\n' });
  });

  it('same input twice: same output, same stderr, same fuel', async () => {
    const spec = wasiSandbox({ fuel: 10_000_000 });
    const a = await run('wasi_cat', 'abc'.repeat(3000), spec);
    const b = await run('wasi_cat', 'abc'.repeat(3000), spec);
    expect(b.out).toBe(a.out);
    expect(b.stderr).toBe(a.stderr);
    expect(a.usage.fuelUsed).toBeGreaterThan(0);
    expect(b.usage.fuelUsed).toBe(a.usage.fuelUsed);
  });

  it('a command out of fuel stops at the same count every time', async () => {
    const spec = wasiSandbox({ fuel: 20_000 });
    const fail = () => run('wasi_cat', 'abc'.repeat(3000), spec).catch((e: unknown) => e);
    const a = await fail();
    const b = await fail();
    expect(a).toBeInstanceOf(LimitExceededError);
    expect(a).toMatchObject({ limit: 'fuel' });
    expect((a as LimitExceededError).observed).toBeGreaterThan(20_000);
    expect(b).toMatchObject({ limit: 'fuel', observed: (a as LimitExceededError).observed });
  });

  it('a non-zero proc_exit is a GuestExitError with the code and stderr; 0 is success', async () => {
    const err = await run('wasi_exit', '3').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestExitError);
    expect(err).toMatchObject({ code: 'GUEST_EXIT', exitCode: 3 });
    expect(text((err as GuestExitError).stderr)).toBe('bye 3\n');
    expect((err as Error).message).toContain('exited with code 3: bye 3');
    expect(await run('wasi_exit', '0')).toMatchObject({ out: 'exiting with 0\n', stderr: 'bye 0\n' });
  });

  it('stdout past maxOutputBytes stops the guest with LimitExceededError', async () => {
    const spec = wasiSandbox({ limits: { maxOutputBytes: 100 } });
    const err = await run('wasi_cat', 'x'.repeat(5000), spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    expect(err).toMatchObject({ limit: 'maxOutputBytes' });
    expect((await run('wasi_cat', 'x'.repeat(100), spec)).out).toBe('X'.repeat(100));
  });

  it('WASI imports are refused unless the sandbox allows them', async () => {
    const build = createWasmBuild(guest('wasi_cat'), { name: 'wasi_cat' });
    const refused = async (spec: SandboxSpec) =>
      (await backend.prepare(build, spec).catch((e: unknown) => e)) as ProgramRejectedError;
    const none = await refused(sandbox());
    expect(none).toMatchObject({ code: 'WASM_IMPORT_NOT_ALLOWED' });
    expect(none.message).toContain('wasi_snapshot_preview1.*');
    // Function by function: everything the module imports must be named.
    const partial = await refused(sandbox({}, ['wasi_snapshot_preview1.fd_write']));
    expect(partial).toMatchObject({ code: 'WASM_IMPORT_NOT_ALLOWED' });
    const all = ['fd_close', 'fd_fdstat_get', 'fd_read', 'fd_seek', 'fd_write', 'proc_exit'];
    const named = sandbox(
      {},
      all.map((f) => `wasi_snapshot_preview1.${f}`),
    );
    await expect(backend.prepare(build, named)).resolves.toBeDefined();
  });
});

describe('WASI commands through the executor', () => {
  const tp = storedThunderpac('tp-wasi-');

  it('same input twice → same output hash; the receipt names the clock policy and seed', async () => {
    const build = createWasmBuild(guest('wasi_probe'), { name: 'wasi_probe' });
    const opts = {
      backend: 'wasm' as const,
      allowedImports: ['wasi_snapshot_preview1.*'],
      determinism: { seed: 42 },
    };
    const input = { kind: 'bytes' as const, bytes: bytes('') };
    const a = await tp().execute(tp().sandbox(opts), { build, entry: '_start', input });
    const b = await tp().execute(tp().sandbox(opts), { build, entry: '_start', input });
    expect(a.status).toBe('completed');
    expect(b.receipt.output).toEqual(a.receipt.output);
    expect(a.receipt.determinism).toEqual({ seed: 42, flags: ['nan-canonical', 'wasi-virtual-clock'] });
    const report = await tp().verify(a.receipt.id);
    expect(report).toMatchObject({ match: true, mismatches: [] });
  });

  it('a non-zero exit fails the execution with GUEST_EXIT in the receipt', async () => {
    const build = createWasmBuild(guest('wasi_exit'), { name: 'wasi_exit' });
    const sb = tp().sandbox({ backend: 'wasm', allowedImports: ['wasi_snapshot_preview1.*'] });
    const r = await tp().execute(sb, { build, entry: '_start', input: { kind: 'bytes', bytes: bytes('7') } });
    expect(r.status).toBe('failed');
    expect(r.receipt.error).toMatchObject({ code: 'GUEST_EXIT' });
    expect(r.receipt.error?.message).toContain('exited with code 7: bye 7');
  });

  it('sandboxSpec records the virtual clock only where WASI is allowed', () => {
    expect(sandboxSpec({ backend: 'wasm' }).determinism.flags).toEqual(['nan-canonical']);
    expect(
      sandboxSpec({ backend: 'wasm', allowedImports: ['wasi_snapshot_preview1.fd_write'] }).determinism.flags,
    ).toEqual(['nan-canonical', 'wasi-virtual-clock']);
  });
});
