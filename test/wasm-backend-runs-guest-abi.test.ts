import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend, type WasmPrepared } from '../src/backends/wasm/index.js';
import { GuestError, type ThunderpacError } from '../src/runtime/errors.js';
import type { Output } from '../src/runtime/types.js';
import { buildGuests, bytes, ctx, guest, sandbox, text } from './wasm-fixtures.js';

const worker = new WasmBackend({ path: 'worker', workers: 2 });
const inThread = new WasmBackend({ path: 'in-thread' });
const backends = [
  ['worker', worker],
  ['in-thread', inThread],
] as const;

let echo: { worker: WasmPrepared; 'in-thread': WasmPrepared };
let fnv: { worker: WasmPrepared; 'in-thread': WasmPrepared };

beforeAll(async () => {
  buildGuests();
  const echoBuild = createWasmBuild(guest('echo'), { name: 'echo' });
  const fnvBuild = createWasmBuild(guest('fnv'), { name: 'fnv' });
  echo = {
    worker: await worker.prepare(echoBuild, sandbox()),
    'in-thread': await inThread.prepare(echoBuild, sandbox()),
  };
  fnv = {
    worker: await worker.prepare(fnvBuild, sandbox()),
    'in-thread': await inThread.prepare(fnvBuild, sandbox()),
  };
});

afterAll(async () => {
  await worker.close();
  await inThread.close();
});

function outBytes(o: Output): Uint8Array {
  if (o.kind !== 'bytes') throw new Error(`expected bytes output, got ${o.kind}`);
  return o.bytes;
}

/** Reference FNV-1a 64 + histogram, the layout wasm/fnv.c documents. */
function fnvReference(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + 1024);
  const view = new DataView(out.buffer);
  let h = 0xcbf29ce484222325n;
  for (const b of input) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
    view.setUint32(12 + 4 * b, view.getUint32(12 + 4 * b, true) + 1, true);
  }
  view.setBigUint64(0, h, true);
  view.setUint32(8, input.byteLength, true);
  return out;
}

describe.each(backends)('wasm backend, %s path', (path, backend) => {
  it('echo returns the input and reverse reverses it', async () => {
    const p = echo[path];
    expect(
      text(outBytes(await backend.run(p, { kind: 'bytes', bytes: bytes('hello, world') }, ctx('echo')))),
    ).toBe('hello, world');
    expect(text(outBytes(await backend.run(p, { kind: 'bytes', bytes: bytes('abc') }, ctx('reverse'))))).toBe(
      'cba',
    );
    expect(outBytes(await backend.run(p, { kind: 'bytes', bytes: new Uint8Array(0) }, ctx('echo')))).toEqual(
      new Uint8Array(0),
    );
  });

  it('runs the C guest (clang + wasi-libc): fnv, sort, fib', async () => {
    const p = fnv[path];
    const input = bytes('the quick brown fox jumps over the lazy dog');
    expect(outBytes(await backend.run(p, { kind: 'bytes', bytes: input }, ctx('fnv')))).toEqual(
      fnvReference(input),
    );
    // Known vector: FNV-1a 64 of "a" is af63dc4c8601ec8c.
    const a = outBytes(await backend.run(p, { kind: 'bytes', bytes: bytes('a') }, ctx('fnv')));
    expect(new DataView(a.buffer, a.byteOffset).getBigUint64(0, true)).toBe(0xaf63dc4c8601ec8cn);
    expect(text(outBytes(await backend.run(p, { kind: 'bytes', bytes: bytes('dcba') }, ctx('sort'))))).toBe(
      'abcd',
    );
    const n = new Uint8Array(4);
    new DataView(n.buffer).setUint32(0, 25, true);
    const fib = outBytes(await backend.run(p, { kind: 'bytes', bytes: n }, ctx('fib')));
    expect(new DataView(fib.buffer, fib.byteOffset).getBigUint64(0, true)).toBe(75025n);
  });

  it('uses a fresh instance per execution: a global counter reads 1 every time', async () => {
    const p = echo[path];
    for (let i = 0; i < 3; i++) {
      const out = outBytes(await backend.run(p, { kind: 'bytes', bytes: new Uint8Array(0) }, ctx('count')));
      expect(new DataView(out.buffer, out.byteOffset).getUint32(0, true)).toBe(1);
    }
  });

  it('fills usage.peakMemoryBytes with the final linear memory size', async () => {
    const c = ctx('echo');
    await backend.run(echo[path], { kind: 'bytes', bytes: bytes('x') }, c);
    expect(c.usage.peakMemoryBytes).toBe(2 * 65536);
    const big = ctx('big');
    const out = outBytes(await backend.run(echo[path], { kind: 'bytes', bytes: bytes('x') }, big));
    expect(out.byteLength).toBe(1 << 20);
    expect(big.usage.peakMemoryBytes).toBe(16 * 65536);
  });

  it('accepts input views into larger buffers and leaves the caller bytes intact', async () => {
    const pooled = Buffer.from('....payload....');
    const view = pooled.subarray(4, 11);
    const out = outBytes(await backend.run(echo[path], { kind: 'bytes', bytes: view }, ctx('echo')));
    expect(text(out)).toBe('payload');
    expect(pooled.toString()).toBe('....payload....');
    expect(view.byteLength).toBe(7);
  });

  it('calls an allowed host import (env.abort) and turns it into GUEST_ABORT', async () => {
    const spec = sandbox({}, ['env.abort']);
    const p = await backend.prepare(createWasmBuild(guest('abort_import'), { name: 'abort' }), spec);
    expect(
      text(outBytes(await backend.run(p, { kind: 'bytes', bytes: bytes('ok') }, ctx('echo', spec)))),
    ).toBe('ok');
    const err = await backend
      .run(p, { kind: 'bytes', bytes: bytes('ok') }, ctx('boom', spec))
      .catch((e) => e);
    expect(err).toBeInstanceOf(GuestError);
    expect((err as ThunderpacError).code).toBe('GUEST_ABORT');
    expect((err as Error).message).toContain('hello at guest.ts:42:7');
    await backend.dispose(p);
  });

  it('refuses runs after dispose, and a fresh prepare works again', async () => {
    const build = createWasmBuild(guest('echo'), { name: 'echo' });
    const p = await backend.prepare(build, sandbox());
    await backend.dispose(p);
    await expect(backend.run(p, { kind: 'bytes', bytes: bytes('x') }, ctx('echo'))).rejects.toMatchObject({
      code: 'WASM_DISPOSED',
    });
    const again = await backend.prepare(build, sandbox());
    expect(text(outBytes(await backend.run(again, { kind: 'bytes', bytes: bytes('x') }, ctx('echo'))))).toBe(
      'x',
    );
  });
});

describe('both paths', () => {
  it('give identical bytes for the same inputs', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 4096 }),
        fc.constantFrom('echo', 'reverse', 'fnv', 'sort'),
        async (input, entry) => {
          const prepared = entry === 'fnv' || entry === 'sort' ? fnv : echo;
          const a = outBytes(await worker.run(prepared.worker, { kind: 'bytes', bytes: input }, ctx(entry)));
          const b = outBytes(
            await inThread.run(prepared['in-thread'], { kind: 'bytes', bytes: input }, ctx(entry)),
          );
          expect(a).toEqual(b);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('the worker pool serves concurrent executions in order of their results', async () => {
    const inputs = Array.from({ length: 50 }, (_, i) => bytes(`input-${i}`));
    const outs = await Promise.all(
      inputs.map((b) => worker.run(echo.worker, { kind: 'bytes', bytes: b }, ctx('reverse'))),
    );
    outs.forEach((o, i) => {
      expect(text(outBytes(o))).toBe([...`input-${i}`].reverse().join(''));
    });
  });
});
