/**
 * Fuzz target (issue #10, defect 10): any value in any field of the sandbox options or the
 * execute request — fast-check's `anything`, getters and Proxy traps that throw, revoked
 * Proxies, Proxies that answer differently on every read, detached buffers — either works or
 * gives a typed ThunderpacError (never a raw TypeError/RangeError, nor one wrapped as INTERNAL),
 * and the sandbox is idle afterwards and runs a valid execution.
 *
 *   bash scripts/fuzz.sh test/fuzz-execute-request-misuse     (long run)
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild } from '../src/backends/wasm/backend.js';
import type { Build } from '../src/runtime/build.js';
import { ThunderpacError } from '../src/runtime/errors.js';
import type { ExecuteRequest, ExecutionResult } from '../src/runtime/executor.js';
import type { Sandbox } from '../src/runtime/sandbox.js';
import { Thunderpac } from '../src/thunderpac.js';
import { fuzzParams, fuzzTimeoutMs } from './helpers/fuzz.js';
import { buildGuests, bytes, guest, text } from './wasm-fixtures.js';

let tp: Thunderpac;
let echo: Build;
beforeAll(async () => {
  buildGuests();
  tp = await Thunderpac.open({ store: false });
  echo = createWasmBuild(guest('echo'), { name: 'echo' });
});
afterAll(() => tp.close());

/** A typed error: ours, with a stable code, not a raw engine error passed through. */
function expectTyped(err: unknown): void {
  expect(err).toBeInstanceOf(ThunderpacError);
  const e = err as ThunderpacError;
  expect(e.code).not.toBe('INTERNAL');
  expect(e.cause).not.toBeInstanceOf(TypeError);
  expect(e.cause).not.toBeInstanceOf(RangeError);
}

function detachedBytes(): Uint8Array {
  const b = new Uint8Array(4);
  structuredClone(b.buffer, { transfer: [b.buffer] });
  return b;
}

function revokedProxy(): object {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

/** Every trap throws. */
const throwingProxy = (target: object): object =>
  new Proxy(target, {
    get: () => {
      throw new Error('get trap');
    },
    ownKeys: () => {
      throw new Error('ownKeys trap');
    },
    getPrototypeOf: () => {
      throw new Error('getPrototypeOf trap');
    },
    has: () => {
      throw new Error('has trap');
    },
  });

/** Answers `first` on the first read of each key, `later` after: checks read once or fail. */
const fickle = (first: Record<string, unknown>, later: unknown): object => {
  const seen = new Set<PropertyKey>();
  return new Proxy(first, {
    get(target, key) {
      if (seen.has(key)) return later;
      seen.add(key);
      return Reflect.get(target, key);
    },
  });
};

const withThrowingGetter = (base: Record<string, unknown>, key: string): object =>
  Object.defineProperty({ ...base }, key, {
    enumerable: true,
    get() {
      throw new TypeError(`getter ${key}`);
    },
  });

/**
 * A value made when the property runs, never before: fast-check itself inspects and prints the
 * values it generates, and a hostile one would throw inside fast-check rather than in the code
 * under test.
 */
interface Lazy {
  readonly what: string;
  readonly make: () => unknown;
  toString(): string;
}
const lazy = (what: string, make: () => unknown): Lazy => ({ what, make, toString: () => what });
const plain = <T>(arb: fc.Arbitrary<T>, what = 'value'): fc.Arbitrary<Lazy> =>
  arb.map((v) => lazy(`${what}: ${fc.stringify(v)}`, () => v));

/** Values no field should ever accept silently or choke on. */
const hostile: fc.Arbitrary<Lazy> = fc.oneof(
  plain(
    fc.anything({
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withTypedArray: true,
      withSparseArray: true,
      maxDepth: 2,
    }),
    'anything',
  ),
  fc.constantFrom(
    lazy('a symbol', () => Symbol('s')),
    lazy('a function', () => () => 1),
    lazy('a null-prototype object', () => Object.create(null)),
    lazy('a revoked Proxy', revokedProxy),
    lazy('a throwing Proxy of {}', () => throwingProxy({})),
    lazy('a throwing Proxy of []', () => throwingProxy([])),
    lazy('a throwing Proxy of a Uint8Array', () => throwingProxy(new Uint8Array(2))),
    lazy("a Proxy'd Uint8Array", () => new Proxy(new Uint8Array(2), {})),
    lazy('a detached Uint8Array', detachedBytes),
    lazy('a Uint8Array with a throwing own byteLength', () =>
      Object.defineProperty(new Uint8Array(3), 'byteLength', {
        get() {
          throw new RangeError('byteLength');
        },
      }),
    ),
    lazy('a Uint8Array claiming length 0', () =>
      Object.defineProperty(new Uint8Array(3), 'length', { value: 0 }),
    ),
    lazy('[a revoked Proxy]', () => [revokedProxy()]),
    lazy('2^31', () => 2 ** 31),
    lazy('NaN', () => Number.NaN),
    lazy('-0', () => -0),
    lazy('Infinity', () => Number.POSITIVE_INFINITY),
    lazy("'env.*'", () => 'env.*'),
    lazy("'\\0'", () => '\0'),
  ),
);

const maybe = (valid: fc.Arbitrary<Lazy>): fc.Arbitrary<Lazy> =>
  fc.oneof({ weight: 3, arbitrary: valid }, { weight: 2, arbitrary: hostile });

/** A record of lazy fields; absent ones are left out. */
const lazyRecord = (
  fields: Record<string, fc.Arbitrary<Lazy>>,
  required: readonly string[],
): fc.Arbitrary<Lazy> =>
  fc.record(fields, { requiredKeys: required as never }).map((r) =>
    lazy(
      `{ ${Object.entries(r)
        .map(([k, v]) => `${k}: ${(v as Lazy).what}`)
        .join(', ')} }`,
      () => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, (v as Lazy).make()])),
    ),
  );

/** The same record, made hostile as a whole: a throwing getter on `key`, or a fickle Proxy. */
const hostileWhole = (r: fc.Arbitrary<Lazy>, key: string): fc.Arbitrary<Lazy> =>
  fc.oneof(
    { weight: 6, arbitrary: r },
    {
      weight: 1,
      arbitrary: r.map((l) =>
        lazy(`${l.what} with a throwing getter on ${key}`, () => withThrowingGetter(l.make() as never, key)),
      ),
    },
    {
      weight: 1,
      arbitrary: r.map((l) => lazy(`fickle ${l.what}`, () => fickle(l.make() as never, 'changed'))),
    },
    { weight: 1, arbitrary: hostile },
  );

async function settle(sandbox: Sandbox, request: unknown): Promise<void> {
  let result: ExecutionResult;
  try {
    result = await tp.execute(sandbox, request as ExecuteRequest);
  } catch (err) {
    expectTyped(err);
    return;
  }
  if (result.status === 'failed') expectTyped(result.error);
  else expect(result.error).toBeNull();
}

async function expectUsable(sandbox: Sandbox): Promise<void> {
  expect(sandbox.state).toBe('idle');
  const ok = await tp.execute(sandbox, {
    build: echo,
    entry: 'echo',
    input: { kind: 'bytes', bytes: bytes('ok') },
  });
  expect(ok.status, ok.error?.message).toBe('completed');
  expect(ok.output?.kind === 'bytes' && text(ok.output.bytes)).toBe('ok');
}

describe('fuzz: misuse of execute and sandbox options gives typed errors only', () => {
  it(
    'any execute request: works or a typed error, and the same sandbox stays usable',
    async () => {
      const sandbox = tp.sandbox({
        backend: 'wasm',
        limits: { timeoutMs: 2000, memoryMb: 16, fuel: 1_000_000 },
      });
      const x = () => bytes('x');
      const input = fc.oneof(
        plain(
          fc.uint8Array({ maxLength: 64 }).map((b) => ({ kind: 'bytes', bytes: b })),
          'input',
        ),
        maybe(plain(fc.constant(null))).map((b) =>
          lazy(`bytes: ${b.what}`, () => ({ kind: 'bytes', bytes: b.make() })),
        ),
        hostile.map((k) => lazy(`kind: ${k.what}`, () => ({ kind: k.make(), bytes: x() }))),
        hostile.map((p) =>
          lazy(`ingressPort: ${p.what}`, () => ({ kind: 'packet', bytes: x(), ingressPort: p.make() })),
        ),
        hostile.map((t) => lazy(`tensors: ${t.what}`, () => ({ kind: 'tensors', tensors: t.make() }))),
        hostile.map((d) =>
          lazy(`tensor data: ${d.what}`, () => ({
            kind: 'tensors',
            tensors: { x: { dtype: 'float32', shape: [1], data: d.make() } },
          })),
        ),
        hostileWhole(
          plain(fc.constant(null)).map(() => lazy('input', () => ({ kind: 'bytes', bytes: x() }))),
          'bytes',
        ),
      );
      const hex64 = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 });
      const request = lazyRecord(
        {
          build: maybe(fc.constant(lazy('echo', () => echo))),
          entry: maybe(plain(fc.constantFrom('echo', 'missing', ''))),
          input,
          parents: maybe(plain(fc.array(hex64, { maxLength: 2 }))),
        },
        ['build', 'entry', 'input'],
      );
      const wrapped = hostileWhole(request, 'input');
      await fc.assert(
        fc.asyncProperty(wrapped, async (req) => {
          await settle(sandbox, req.make());
          await expectUsable(sandbox);
        }),
        fuzzParams(1000),
      );
    },
    fuzzTimeoutMs(60_000),
  );

  it(
    'any sandbox options: a sandbox or a typed error; a sandbox made runs or fails typed',
    async () => {
      const limit = (valid: fc.Arbitrary<number>) => maybe(plain(valid));
      const limits = lazyRecord(
        {
          timeoutMs: limit(fc.integer({ min: 50, max: 2 ** 31 - 1 })),
          memoryMb: limit(fc.integer({ min: 1, max: 64 })),
          fuel: limit(fc.integer({ min: 1, max: 10_000_000 })),
          callDepth: limit(fc.integer({ min: 1, max: 100_000 })),
          maxInputBytes: limit(fc.integer({ min: 0, max: 1 << 20 })),
          maxOutputBytes: limit(fc.integer({ min: 0, max: 1 << 20 })),
          cpuCores: limit(fc.integer({ min: 1, max: 8 })),
        },
        [],
      );
      const fsOptions = fc.constantFrom(
        lazy('none', () => ({ kind: 'none' })),
        lazy('memory', () => ({ kind: 'memory', files: { 'a.txt': 'hi' } })),
        lazy("memory with a Proxy'd file", () => ({
          kind: 'memory',
          files: { 'a.txt': new Proxy(new Uint8Array(1), {}) },
        })),
      );
      const options = lazyRecord(
        {
          backend: maybe(plain(fc.constant('wasm'))),
          limits: maybe(hostileWhole(limits, 'timeoutMs')),
          fs: maybe(fsOptions),
          wasi: maybe(
            lazyRecord(
              {
                args: maybe(plain(fc.array(fc.string(), { maxLength: 3 }))),
                env: maybe(plain(fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }))),
              },
              [],
            ),
          ),
          allowedImports: maybe(
            plain(fc.array(fc.constantFrom('env.log', 'wasi_snapshot_preview1.*'), { maxLength: 2 })),
          ),
          determinism: maybe(
            lazyRecord(
              {
                seed: maybe(plain(fc.integer())),
                flags: maybe(plain(fc.array(fc.string(), { maxLength: 2 }))),
              },
              [],
            ),
          ),
        },
        ['backend'],
      );
      const wrapped = hostileWhole(options, 'limits');
      await fc.assert(
        fc.asyncProperty(wrapped, async (opts) => {
          let sandbox: Sandbox;
          try {
            sandbox = tp.sandbox(opts.make() as never);
          } catch (err) {
            expectTyped(err);
            return;
          }
          expect(Object.isFrozen(sandbox.spec) && Object.isFrozen(sandbox.spec.limits)).toBe(true);
          await settle(sandbox, { build: echo, entry: 'echo', input: { kind: 'bytes', bytes: bytes('x') } });
          expect(sandbox.state).toBe('idle');
        }),
        fuzzParams(1000),
      );
    },
    fuzzTimeoutMs(60_000),
  );
});
