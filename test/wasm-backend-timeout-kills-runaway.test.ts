import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend, type WasmPrepared } from '../src/backends/wasm/index.js';
import { GuestError, LimitExceededError, ThunderpacError } from '../src/runtime/errors.js';
import { buildGuests, bytes, ctx, guest, sandbox } from './wasm-fixtures.js';

const worker = new WasmBackend({ path: 'worker', workers: 2 });
const inThread = new WasmBackend({ path: 'in-thread' });
let echoW: WasmPrepared;
let echoT: WasmPrepared;

beforeAll(async () => {
  buildGuests();
  const build = createWasmBuild(guest('echo'), { name: 'echo' });
  echoW = await worker.prepare(build, sandbox());
  echoT = await inThread.prepare(build, sandbox());
});

afterAll(async () => {
  await worker.close();
  await inThread.close();
});

const input = { kind: 'bytes', bytes: bytes('ping') } as const;

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof Error)) throw new Error('expected a rejection');
  return err;
}

describe('worker path: wall-clock timeout', () => {
  it('kills a spinning guest within timeout + slack and keeps serving', async () => {
    const spec = sandbox({ timeoutMs: 200 });
    const t0 = performance.now();
    const err = await rejection(worker.run(echoW, input, ctx('spin', spec)));
    const elapsed = performance.now() - t0;
    expect(err).toBeInstanceOf(LimitExceededError);
    expect(err).toMatchObject({ limit: 'timeoutMs', allowed: 200, code: 'LIMIT_TIMEOUT_MS' });
    expect(elapsed).toBeGreaterThanOrEqual(195);
    expect(elapsed).toBeLessThan(200 + 800);
    // The pool replaced the worker: the next execution works.
    expect(await worker.run(echoW, input, ctx('echo'))).toEqual(input);
  });

  it('runaways on every worker at once; queued work still completes', async () => {
    const spec = sandbox({ timeoutMs: 150 });
    const spins = [1, 2, 3].map(() => rejection(worker.run(echoW, input, ctx('spin', spec))));
    const echoes = [1, 2, 3].map((i) =>
      worker.run(echoW, { kind: 'bytes', bytes: bytes(`e${i}`) }, ctx('echo')),
    );
    for (const err of await Promise.all(spins)) expect(err).toMatchObject({ limit: 'timeoutMs' });
    expect(await Promise.all(echoes)).toEqual(
      [1, 2, 3].map((i) => ({ kind: 'bytes', bytes: bytes(`e${i}`) })),
    );
  });

  it('a worker that dies (heap limit) fails the run with a typed error instead of hanging', async () => {
    const fragile = new WasmBackend({
      path: 'worker',
      workers: 1,
      resourceLimits: { maxOldGenerationSizeMb: 1, maxYoungGenerationSizeMb: 1 },
    });
    try {
      const p = await fragile.prepare(createWasmBuild(guest('echo'), { name: 'echo' }), sandbox());
      const err = await rejection(fragile.run(p, input, ctx('echo')));
      expect(err).toBeInstanceOf(ThunderpacError);
      expect(err).toMatchObject({ code: 'WASM_WORKER_CRASHED' });
    } finally {
      await fragile.close();
    }
  });

  it('close() fails pending executions and refuses new ones', async () => {
    const b = new WasmBackend({ path: 'worker', workers: 1 });
    const p = await b.prepare(createWasmBuild(guest('echo'), { name: 'echo' }), sandbox());
    const pending = rejection(b.run(p, input, ctx('spin', sandbox({ timeoutMs: 10_000 }))));
    await new Promise((r) => setTimeout(r, 50));
    await b.close();
    expect(await pending).toMatchObject({ code: 'WASM_BACKEND_CLOSED' });
    expect(await rejection(b.run(p, input, ctx('echo')))).toMatchObject({ code: 'WASM_BACKEND_CLOSED' });
  });
});

describe.each([
  ['worker', () => [worker, echoW] as const],
  ['in-thread', () => [inThread, echoT] as const],
])('%s path: guest failures are typed', (_path, get) => {
  it('output over maxOutputBytes is refused before it is copied', async () => {
    const [backend, p] = get();
    const err = await rejection(backend.run(p, input, ctx('big', sandbox({ maxOutputBytes: 64 << 10 }))));
    expect(err).toBeInstanceOf(LimitExceededError);
    expect(err).toMatchObject({ limit: 'maxOutputBytes', allowed: 64 << 10, observed: 1 << 20 });
  });

  it('input over maxInputBytes is refused', async () => {
    const [backend, p] = get();
    const err = await rejection(backend.run(p, input, ctx('echo', sandbox({ maxInputBytes: 2 }))));
    expect(err).toMatchObject({ limit: 'maxInputBytes', allowed: 2, observed: 4 });
  });

  it('a negative result is GuestError GUEST_ERROR with the number', async () => {
    const [backend, p] = get();
    const err = await rejection(backend.run(p, input, ctx('fail')));
    expect(err).toBeInstanceOf(GuestError);
    expect(err).toMatchObject({ code: 'GUEST_ERROR' });
    expect(err.message).toContain('-7');
  });

  it('a trap is GuestError GUEST_TRAP with V8 message', async () => {
    const [backend, p] = get();
    const c = ctx('trap');
    const err = await rejection(backend.run(p, input, c));
    expect(err).toBeInstanceOf(GuestError);
    expect(err).toMatchObject({ code: 'GUEST_TRAP' });
    expect(err.message).toMatch(/unreachable/);
    expect(c.usage.peakMemoryBytes).toBe(2 * 65536);
  });

  it('an output range outside memory is GuestError GUEST_BAD_OUTPUT', async () => {
    const [backend, p] = get();
    const err = await rejection(backend.run(p, input, ctx('oob')));
    expect(err).toBeInstanceOf(GuestError);
    expect(err).toMatchObject({ code: 'GUEST_BAD_OUTPUT' });
  });

  it('unbounded recursion is LimitExceededError callDepth, and the backend keeps working', async () => {
    const [backend, p] = get();
    const err = await rejection(backend.run(p, input, ctx('deep')));
    expect(err).toBeInstanceOf(LimitExceededError);
    expect(err).toMatchObject({ limit: 'callDepth' });
    expect(await backend.run(p, input, ctx('echo'))).toEqual(input);
  });
});
