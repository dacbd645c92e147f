import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/index.js';
import type { SandboxSpec } from '../src/runtime/types.js';
import { buildGuests, bytes, ctx, guest, probeLines, wasiSandbox } from './wasm-fixtures.js';

const backends = [
  ['worker', new WasmBackend({ path: 'worker', workers: 1 })],
  ['in-thread', new WasmBackend({ path: 'in-thread' })],
] as const;

beforeAll(() => buildGuests());
afterAll(async () => {
  for (const [, b] of backends) await b.close();
});

describe.each(backends)('WASI capabilities, %s path', (_path, backend) => {
  const probe = async (spec: SandboxSpec): Promise<Record<string, string>> => {
    const p = await backend.prepare(createWasmBuild(guest('wasi_probe'), { name: 'wasi_probe' }), spec);
    const out = await backend.run(p, { kind: 'bytes', bytes: bytes('') }, ctx('_start', spec));
    if (out.kind !== 'bytes') throw new Error('expected bytes');
    return probeLines(out.bytes);
  };

  it('args are [program name], the environment is empty', async () => {
    const seen = await probe(wasiSandbox());
    expect(seen).toMatchObject({ argc: '1', argv0: 'wasi_probe', envc: '0', home: '(unset)' });
  });

  it('clocks are virtual: fixed start, 1 µs per read, sleeping advances without waiting', async () => {
    const t0 = performance.now();
    const seen = await probe(wasiSandbox());
    expect(performance.now() - t0).toBeLessThan(900); // nanosleep(1 s) did not sleep
    expect(seen.time).toBe('946684800'); // 2000-01-01T00:00:00Z
    expect(seen.mono).toBe('2000,3000');
    expect(seen.after_sleep).toBe('1000004000');
    expect((await probe(wasiSandbox())).mono).toBe(seen.mono);
  });

  it('random_get is seeded by determinism.seed: same seed same bytes, other seed other bytes', async () => {
    const a = (await probe(wasiSandbox({ seed: 1 }))).random;
    const b = (await probe(wasiSandbox({ seed: 1 }))).random;
    const c = (await probe(wasiSandbox({ seed: 2 }))).random;
    const d = (await probe(wasiSandbox({ seed: 2 ** 40 + 1 }))).random;
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    expect(d).not.toBe(a); // the high half of the seed counts too
  });

  it('no filesystem unless the sandbox gives a directory: opens and writes fail', async () => {
    const seen = await probe(wasiSandbox());
    expect(seen.read).toMatch(/^err\d+$/);
    expect(seen.stat).toMatch(/^err\d+$/);
    expect(seen.open_create).not.toBe('ok');
    expect(seen.escape_dotdot).not.toBe('ok');
    expect(seen.absolute).not.toBe('ok');
  });

  it('no sockets; bad pointers are EFAULT; no preopen means no fd 3 (raw preview 1 calls)', async () => {
    const spec = wasiSandbox();
    const p = await backend.prepare(createWasmBuild(guest('wasi_raw'), { name: 'wasi_raw' }), spec);
    const out = await backend.run(p, { kind: 'bytes', bytes: bytes('') }, ctx('_start', spec));
    if (out.kind !== 'bytes') throw new Error('expected bytes');
    const [ENOTSUP, EFAULT, EBADF, EINVAL] = [58, 21, 8, 28];
    expect([...out.bytes]).toEqual([
      ENOTSUP,
      ENOTSUP,
      ENOTSUP,
      ENOTSUP,
      EFAULT,
      EBADF,
      EBADF,
      ENOTSUP,
      EINVAL,
      EBADF,
    ]);
  });
});
