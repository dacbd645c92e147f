/**
 * Issue #10, defect 10: API misuse must give a typed error and leave the sandbox usable.
 * Before the fix, any throw after sandbox.begin() (e.g. `entry: undefined`) left the sandbox
 * `executing` for good (every later request: SANDBOX_STATE), six misuse inputs gave raw
 * TypeErrors, and a timeoutMs of 2^31 or more was accepted (Node then fires the timer at 1 ms).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild } from '../src/backends/wasm/backend.js';
import { ThunderpacError, ValidationError } from '../src/runtime/errors.js';
import type { ExecuteRequest, ExecutionResult } from '../src/runtime/executor.js';
import { MAX_TIMER_MS, Sandbox, sandboxSpec } from '../src/runtime/sandbox.js';
import { Thunderpac } from '../src/thunderpac.js';
import { buildGuests, bytes, guest, text } from './wasm-fixtures.js';

let tp: Thunderpac;
beforeAll(async () => {
  buildGuests();
  tp = await Thunderpac.open({ store: false });
});
afterAll(() => tp.close());

const echo = () => createWasmBuild(guest('echo'), { name: 'echo' });
const wasmSandbox = () =>
  tp.sandbox({ backend: 'wasm', limits: { timeoutMs: 2000, memoryMb: 16, fuel: 1_000_000 } });

function detachedBytes(): Uint8Array {
  const b = new Uint8Array(8);
  structuredClone(b.buffer, { transfer: [b.buffer] });
  return b;
}

/** What misuse gave: the thrown error, or the error of the failed execution. */
async function outcome(sandbox: Sandbox, request: unknown): Promise<ThunderpacError> {
  let result: ExecutionResult;
  try {
    result = await tp.execute(sandbox, request as ExecuteRequest);
  } catch (err) {
    expect(err).toBeInstanceOf(ThunderpacError);
    return err as ThunderpacError;
  }
  expect(result.status).toBe('failed');
  expect(result.error).toBeInstanceOf(ThunderpacError);
  return result.error!;
}

async function expectUsable(sandbox: Sandbox): Promise<void> {
  expect(sandbox.state).toBe('idle');
  const ok = await tp.execute(sandbox, {
    build: echo(),
    entry: 'echo',
    input: { kind: 'bytes', bytes: bytes('hi') },
  });
  expect(ok.status).toBe('completed');
  expect(ok.output?.kind === 'bytes' && text(ok.output.bytes)).toBe('hi');
}

describe('every misuse of execute gives a typed error and the same sandbox then runs', () => {
  const cases: [string, () => unknown, string][] = [
    [
      'a detached input buffer',
      () => ({ build: echo(), entry: 'echo', input: { kind: 'bytes', bytes: detachedBytes() } }),
      'input.bytes',
    ],
    [
      'a throwing getter on the input',
      () => ({
        build: echo(),
        entry: 'echo',
        input: {
          kind: 'bytes',
          get bytes(): Uint8Array {
            throw new Error('boom');
          },
        },
      }),
      'input.bytes',
    ],
    [
      "a Proxy'd Uint8Array",
      () => ({ build: echo(), entry: 'echo', input: { kind: 'bytes', bytes: new Proxy(bytes('x'), {}) } }),
      'input.bytes',
    ],
    [
      'entry: undefined',
      () => ({ build: echo(), entry: undefined, input: { kind: 'bytes', bytes: bytes('x') } }),
      'entry',
    ],
    [
      "parents: 'abc'",
      () => ({ build: echo(), entry: 'echo', input: { kind: 'bytes', bytes: bytes('x') }, parents: 'abc' }),
      'parents',
    ],
    [
      'a throwing getter on the request',
      () => ({
        build: echo(),
        input: { kind: 'bytes', bytes: bytes('x') },
        get entry(): string {
          throw new TypeError('no entry for you');
        },
      }),
      'entry',
    ],
    [
      'a revoked Proxy as the request',
      () => {
        const { proxy, revoke } = Proxy.revocable({}, {});
        revoke();
        return proxy;
      },
      'request',
    ],
    [
      'a build that is not a Build',
      () => ({ build: { id: 'x' }, entry: 'echo', input: { kind: 'bytes', bytes: bytes('x') } }),
      'build.id',
    ],
  ];

  it.each(cases)('%s', async (_, request, path) => {
    const sandbox = wasmSandbox();
    const err = await outcome(sandbox, request());
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).path).toBe(path);
    await expectUsable(sandbox);
  });

  it('a Proxy input cannot change between the check and the run (the input is read once)', async () => {
    const sandbox = wasmSandbox();
    let reads = 0;
    const input = new Proxy(
      { kind: 'bytes', bytes: bytes('ok') },
      {
        get(target, key) {
          if (key === 'bytes') return ++reads === 1 ? bytes('ok') : 'not bytes any more';
          return Reflect.get(target, key);
        },
      },
    );
    const r = await tp.execute(sandbox, { build: echo(), entry: 'echo', input: input as never });
    expect(r.status).toBe('completed');
    expect(reads).toBe(1);
  });

  it('a Uint8Array whose own properties lie about its size is measured by what it is', async () => {
    const sandbox = tp.sandbox({ backend: 'wasm', limits: { fuel: 1_000_000, maxInputBytes: 16 } });
    const big = new Uint8Array(1024);
    Object.defineProperty(big, 'byteLength', { value: 1 });
    Object.defineProperty(big, 'length', { value: 1 });
    const refused = await tp.execute(sandbox, {
      build: echo(),
      entry: 'echo',
      input: { kind: 'bytes', bytes: big },
    });
    expect(refused.error?.code).toBe('LIMIT_MAX_INPUT_BYTES');
    expect(refused.receipt.input.size).toBe(1024);
    const throwing = bytes('ok');
    Object.defineProperty(throwing, 'byteLength', {
      get() {
        throw new Error('boom');
      },
    });
    const ran = await tp.execute(sandbox, {
      build: echo(),
      entry: 'echo',
      input: { kind: 'bytes', bytes: throwing },
    });
    expect(ran.status).toBe('completed');
    expect(ran.output?.kind === 'bytes' && text(ran.output.bytes)).toBe('ok');
  });

  it('a throw after begin() (here: the store refuses the receipt) fails the sandbox instead of sticking', async () => {
    const dir = await import('node:fs').then((fs) => fs.mkdtempSync('/tmp/tp-stuck-'));
    const stored = await Thunderpac.open({ store: dir });
    try {
      const sandbox = stored.sandbox({ backend: 'wasm', limits: { fuel: 1_000_000 } });
      stored.store!.close(); // every append now throws
      await expect(
        stored.execute(sandbox, {
          build: echo(),
          entry: 'echo',
          input: { kind: 'bytes', bytes: bytes('x') },
        }),
      ).rejects.toBeInstanceOf(ThunderpacError);
      expect(sandbox.state).toBe('idle');
    } finally {
      await stored.close().catch(() => undefined);
      (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sandbox options are validated field by field', () => {
  it("allowedImports: 'env.*' is a ValidationError naming sandbox.allowedImports", () => {
    expect(() => tp.sandbox({ backend: 'wasm', allowedImports: 'env.*' as never })).toThrow(
      expect.objectContaining({ path: 'sandbox.allowedImports', code: 'VALIDATION_TYPE' }),
    );
  });

  it('timeoutMs of 2^31 - 1 is the largest accepted; 2^31 and more are refused by name', () => {
    expect(sandboxSpec({ backend: 'wasm', limits: { timeoutMs: MAX_TIMER_MS } }).limits.timeoutMs).toBe(
      2 ** 31 - 1,
    );
    for (const timeoutMs of [
      2 ** 31,
      2 ** 40,
      Number.MAX_SAFE_INTEGER,
      Number.POSITIVE_INFINITY,
      Number.NaN,
    ]) {
      expect(() => sandboxSpec({ backend: 'wasm', limits: { timeoutMs } })).toThrow(
        expect.objectContaining({ path: 'sandbox.limits.timeoutMs', code: 'VALIDATION_RANGE' }),
      );
    }
  });

  it('a getter that throws, an unknown limit, an unknown backend: typed errors naming the field', () => {
    const throwing = {
      backend: 'wasm',
      get limits(): never {
        throw new Error('boom');
      },
    };
    expect(() => new Sandbox(throwing as never)).toThrow(expect.objectContaining({ path: 'sandbox.limits' }));
    expect(() => sandboxSpec({ backend: 'wasm', limits: { timeoutMS: 5 } as never })).toThrow(
      expect.objectContaining({ path: 'sandbox.limits.timeoutMS', code: 'VALIDATION_UNEXPECTED' }),
    );
    expect(() => sandboxSpec({ backend: 'wsam' as never })).toThrow(
      expect.objectContaining({ path: 'sandbox.backend' }),
    );
    expect(() => sandboxSpec(Object.create(null))).toThrow(ValidationError);
    expect(() =>
      sandboxSpec({ backend: 'wasm', determinism: { seed: Object.create(null) } as never }),
    ).toThrow(expect.objectContaining({ path: 'sandbox.determinism.seed' }));
  });

  it('a huge timeout still runs: the backstop timer never passes 2^31 - 1 ms (no 1 ms clamp)', async () => {
    const sandbox = tp.sandbox({ backend: 'wasm', limits: { timeoutMs: MAX_TIMER_MS } });
    await expectUsable(sandbox); // worker path, unmetered: the executor's and pool's timers both see the limit
  });
});
