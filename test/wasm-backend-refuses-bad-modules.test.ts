import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, parseModule, WasmBackend } from '../src/backends/wasm/index.js';
import { createBuild } from '../src/runtime/build.js';
import { LimitExceededError, ProgramRejectedError, ValidationError } from '../src/runtime/errors.js';
import type { SandboxSpec } from '../src/runtime/types.js';
import { buildGuests, bytes, ctx, guest, sandbox } from './wasm-fixtures.js';

const backend = new WasmBackend({ workers: 1 });

beforeAll(() => buildGuests());
afterAll(() => backend.close());

function prepare(wasm: Uint8Array, spec: SandboxSpec = sandbox()) {
  return backend.prepare(createWasmBuild(wasm, { name: 'bad' }), spec);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof Error)) throw new Error('expected a rejection');
  return err;
}

async function refused(wasm: Uint8Array, code: string, spec?: SandboxSpec): Promise<ProgramRejectedError> {
  const err = await rejection(prepare(wasm, spec));
  expect(err).toBeInstanceOf(ProgramRejectedError);
  expect((err as ProgramRejectedError).code).toBe(code);
  return err as ProgramRejectedError;
}

/** echo.wasm with `fail`'s `i64.const -7` turned into `i32.const -7`: well-formed, but invalid. */
function echoWithTypeError(): Uint8Array {
  const wasm = guest('echo');
  for (let i = 0; i + 2 < wasm.length; i++) {
    if (wasm[i] === 0x42 && wasm[i + 1] === 0x79 && wasm[i + 2] === 0x0b) {
      wasm[i] = 0x41;
      return wasm;
    }
  }
  throw new Error('fail body not found in echo.wasm');
}

describe('malformed modules', () => {
  it('garbage bytes: WASM_MALFORMED with the offset', async () => {
    const err = await refused(bytes('definitely not wasm'), 'WASM_MALFORMED');
    expect(err.message).toMatch(/at byte 0/);
    await refused(new Uint8Array(0), 'WASM_MALFORMED');
  });

  it('truncated module: WASM_MALFORMED naming where it ends', async () => {
    const wasm = guest('echo');
    // (a cut right after the 8-byte header is a valid empty module: that one is WASM_ABI)
    for (const cut of [4, 9, 20, Math.floor(wasm.length / 2), wasm.length - 1]) {
      const err = await refused(wasm.slice(0, cut), 'WASM_MALFORMED');
      expect(err.message).toMatch(/at byte \d+/);
    }
  });

  it('well-formed but invalid code: WASM_MALFORMED with V8 message', async () => {
    const wasm = echoWithTypeError();
    expect(() => parseModule(wasm)).not.toThrow();
    const err = await refused(wasm, 'WASM_MALFORMED');
    expect(err.message).toMatch(/invalid wasm: .*type/i);
  });

  it('a component binary is named as such', async () => {
    const component = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]);
    const err = await refused(component, 'WASM_MALFORMED');
    expect(err.message).toMatch(/component/);
  });

  it('a build of another kind is refused', async () => {
    const build = createBuild({
      kind: 'ebpf',
      name: 'x',
      source: bytes('x'),
      artifacts: {},
      inputSchema: { kind: 'any' },
      outputSchema: { kind: 'any' },
    });
    const err = await rejection(backend.prepare(build, sandbox()));
    expect(err).toMatchObject({ code: 'WASM_WRONG_KIND' });
  });

  it('property: the parser never crashes; it parses or throws ProgramRejectedError', () => {
    const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const echo = guest('echo');
    const mutated = fc
      .array(fc.tuple(fc.nat(echo.length - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      })
      .chain((edits) =>
        fc.nat(echo.length).map((cut) => {
          const b = echo.slice(0, Math.max(cut, 8));
          for (const [at, v] of edits) if (at < b.length) b[at] = v;
          return b;
        }),
      );
    const inputs = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      fc.uint8Array({ maxLength: 256 }).map((tail) => new Uint8Array([...header, ...tail])),
      mutated,
    );
    fc.assert(
      fc.property(inputs, (b) => {
        try {
          parseModule(b);
        } catch (e) {
          if (!(e instanceof ProgramRejectedError) || e.code !== 'WASM_MALFORMED') throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('property: prepare of a mutated module resolves or rejects with a typed error', async () => {
    const echo = guest('echo');
    await fc.assert(
      fc.asyncProperty(fc.nat(echo.length - 1), fc.integer({ min: 0, max: 255 }), async (at, v) => {
        const b = echo.slice();
        b[at] = v;
        const err = await prepare(b).then(
          () => undefined,
          (e: unknown) => e,
        );
        if (
          err !== undefined &&
          !(err instanceof ProgramRejectedError) &&
          !(err instanceof LimitExceededError)
        ) {
          throw err;
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('memory policy', () => {
  it('memory without a maximum: LimitExceededError memoryMb', async () => {
    const err = await rejection(prepare(guest('mem_nomax')));
    expect(err).toBeInstanceOf(LimitExceededError);
    expect(err).toMatchObject({ limit: 'memoryMb', allowed: 16, code: 'LIMIT_MEMORY_MB' });
    expect(err.message).toMatch(/no maximum/);
  });

  it('memory max over the cap: LimitExceededError naming declared max and cap', async () => {
    const err = await rejection(prepare(guest('mem_huge')));
    expect(err).toBeInstanceOf(LimitExceededError);
    expect(err).toMatchObject({ limit: 'memoryMb', allowed: 16, observed: 4096 });
    expect(err.message).toMatch(/65536 pages .*4096 MiB.*256 pages/);
  });

  it('the cap is memoryMb in MiB: echo (16 pages = 1 MiB) fits 1, not a smaller cap', async () => {
    await expect(prepare(guest('echo'), sandbox({ memoryMb: 1 }))).resolves.toBeDefined();
  });

  it('shared memory and memory64 are refused as features', async () => {
    expect((await refused(guest('shared_mem'), 'WASM_FEATURE_NOT_ALLOWED')).reason).toBe('threads');
    expect((await refused(guest('mem64'), 'WASM_FEATURE_NOT_ALLOWED')).reason).toBe('memory64');
  });
});

describe('import policy', () => {
  it('an import not on the allow-list is refused, naming it', async () => {
    const err = await refused(guest('imports_env'), 'WASM_IMPORT_NOT_ALLOWED');
    expect(err.subject).toBe('env.get_time');
    expect(err.message).toContain('env.get_time');
  });

  it('an allowed import the host does not provide is still refused', async () => {
    const err = await refused(guest('imports_env'), 'WASM_IMPORT_NOT_ALLOWED', sandbox({}, ['env.get_time']));
    expect(err.message).toMatch(/not provided by the host/);
  });

  it('env.abort is refused unless allowed, and works when allowed', async () => {
    await refused(guest('abort_import'), 'WASM_IMPORT_NOT_ALLOWED');
    const spec = sandbox({}, ['env.abort']);
    const p = await prepare(guest('abort_import'), spec);
    const out = await backend.run(p, { kind: 'bytes', bytes: bytes('hi') }, ctx('echo', spec));
    expect(out).toEqual({ kind: 'bytes', bytes: bytes('hi') });
  });

  it('an imported memory is refused even when listed', async () => {
    const err = await refused(guest('import_memory'), 'WASM_IMPORT_NOT_ALLOWED', sandbox({}, ['env.memory']));
    expect(err.subject).toBe('env.memory');
  });
});

describe('guest ABI', () => {
  it('missing alloc or memory export: WASM_ABI', async () => {
    expect((await refused(guest('no_alloc'), 'WASM_ABI')).subject).toBe('alloc');
    expect((await refused(guest('no_memory'), 'WASM_ABI')).subject).toBe('memory');
  });

  it('unknown export, wrong signature, alloc and memory are not entries: WASM_NO_SUCH_EXPORT', async () => {
    const p = await prepare(guest('echo'));
    expect([...p.entries].sort()).toEqual([
      'big',
      'count',
      'deep',
      'echo',
      'fail',
      'oob',
      'reverse',
      'spin',
      'trap',
    ]);
    for (const entry of ['nope', 'badsig', 'alloc', 'memory']) {
      const err = await rejection(backend.run(p, { kind: 'bytes', bytes: bytes('x') }, ctx(entry)));
      expect(err).toBeInstanceOf(ProgramRejectedError);
      expect(err).toMatchObject({ code: 'WASM_NO_SUCH_EXPORT', subject: entry });
    }
  });

  it('only bytes inputs are accepted', async () => {
    const p = await prepare(guest('echo'));
    const err = await rejection(backend.run(p, { kind: 'packet', bytes: bytes('x') }, ctx('echo')));
    expect(err).toBeInstanceOf(ValidationError);
  });

  it('module info: limits, imports and export signatures', () => {
    const echo = parseModule(guest('echo'));
    expect(echo.memories).toEqual([{ min: 2, max: 16, shared: false, memory64: false }]);
    expect(echo.imports).toEqual([]);
    const abort = parseModule(guest('abort_import'));
    expect(abort.imports).toEqual([{ module: 'env', name: 'abort', kind: 'function', typeIndex: 0 }]);
    const imported = parseModule(guest('import_memory'));
    expect(imported.imports).toEqual([
      {
        module: 'env',
        name: 'memory',
        kind: 'memory',
        limits: { min: 1, max: 2, shared: false, memory64: false },
      },
    ]);
    expect(parseModule(guest('shared_mem')).memories[0]).toMatchObject({ shared: true, max: 2 });
    expect(parseModule(guest('mem64')).memories[0]).toMatchObject({ memory64: true, min: 1, max: 2 });
  });
});
