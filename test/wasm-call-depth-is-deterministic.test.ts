import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, DEFAULT_CALL_DEPTH, WasmBackend } from '../src/backends/wasm/index.js';
import { LimitExceededError } from '../src/runtime/errors.js';
import type { Output } from '../src/runtime/types.js';
import { buildGuests, ctx, guest, sandbox, u32s } from './wasm-fixtures.js';

const worker = new WasmBackend({ path: 'worker', workers: 1 });
const inThread = new WasmBackend({ path: 'in-thread' });
const paths = [
  ['in-thread', inThread],
  ['worker', worker],
] as const;

beforeAll(() => buildGuests());
afterAll(async () => {
  await worker.close();
  await inThread.close();
});

function u64(o: Output): bigint {
  if (o.kind !== 'bytes') throw new Error('expected bytes');
  return new DataView(o.bytes.buffer, o.bytes.byteOffset).getBigUint64(0, true);
}

describe.each(paths)('call depth, %s path', (_name, backend) => {
  it('unbounded recursion fails with callDepth at the configured limit, every time', async () => {
    const build = createWasmBuild(guest('echo'), { name: 'echo' });
    for (const [spec, limit] of [
      [sandbox(), DEFAULT_CALL_DEPTH],
      [sandbox({ callDepth: 37 }), 37],
      [sandbox({ callDepth: 37, fuel: 1e9 }), 37],
    ] as const) {
      const p = await backend.prepare(build, spec);
      for (let i = 0; i < 3; i++) {
        const c = ctx('deep', spec);
        const err = await backend.run(p, { kind: 'bytes', bytes: u32s(1) }, c).catch((e: Error) => e);
        expect(err).toBeInstanceOf(LimitExceededError);
        expect(err).toMatchObject({ limit: 'callDepth', allowed: limit, observed: limit + 1 });
        expect((err as Error).message).toMatch(/deeper than callDepth/);
      }
      // The counter was reset: a normal call still works.
      expect(await backend.run(p, { kind: 'bytes', bytes: u32s(5) }, ctx('echo', spec))).toEqual({
        kind: 'bytes',
        bytes: u32s(5),
      });
    }
  });

  it('recursion within the limit runs; one level less fails', async () => {
    const build = createWasmBuild(guest('kernels'), { name: 'kernels' });
    // kernels.fib(n): entry -> fib_rec(n) -> ... n levels of fib_rec (clang may inline one).
    const roomy = sandbox({ callDepth: 64 });
    const ok = await backend.run(
      await backend.prepare(build, roomy),
      { kind: 'bytes', bytes: u32s(20) },
      ctx('fib', roomy),
    );
    expect(u64(ok)).toBe(6765n);
    const tight = sandbox({ callDepth: 5 });
    const err = await backend
      .run(await backend.prepare(build, tight), { kind: 'bytes', bytes: u32s(20) }, ctx('fib', tight))
      .catch((e: Error) => e);
    expect(err).toMatchObject({ limit: 'callDepth', allowed: 5 });
  });

  it('tail calls do not accumulate depth; multi-value functions keep their results', async () => {
    const spec = sandbox({ callDepth: 4, fuel: 1e8 });
    const p = await backend.prepare(createWasmBuild(guest('tailcall'), { name: 'tailcall' }), spec);
    const out = await backend.run(p, { kind: 'bytes', bytes: u32s(100_000) }, ctx('countdown', spec));
    expect(u64(out)).toBe(300_000n);
    expect(u64(await backend.run(p, { kind: 'bytes', bytes: u32s(7) }, ctx('pair', spec)))).toBe(14n);
  });
});
