/**
 * A component run on a reused instance (component-instance.ts) gives exactly what a fresh
 * instance gives: output, stderr, fuel, memory and failure, over generated sequences of inputs
 * that mix successful runs, runs that run out of fuel mid-write, runs stopped at the output
 * limit and non-zero exits. A failing run must not poison the next one.
 */

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPONENT_ENTRY, createComponentBuild, WasmBackend } from '../src/backends/wasm/index.js';
import type { WasmPrepared } from '../src/backends/wasm/backend.js';
import { sandboxSpec } from '../src/runtime/sandbox.js';
import type { SandboxSpec } from '../src/runtime/types.js';
import { buildGuests, bytes, ctx, text } from './wasm-fixtures.js';

const WASM_DIR = fileURLToPath(new URL('../wasm/', import.meta.url));

function component(name: string): Uint8Array {
  const path = `${WASM_DIR}components/${name}.wasm`;
  if (!existsSync(path)) throw new Error(`${path} missing: run make -C wasm (needs node_modules)`);
  return new Uint8Array(readFileSync(path));
}

const backend = new WasmBackend({ path: 'in-thread' });
beforeAll(() => buildGuests());
afterAll(() => backend.close());

/** Everything a run reports that goes into a receipt. */
async function outcome(p: WasmPrepared, input: string, s: SandboxSpec, maxOutputBytes?: number) {
  const sandbox = maxOutputBytes === undefined ? s : { ...s, limits: { ...s.limits, maxOutputBytes } };
  const c = ctx(COMPONENT_ENTRY, sandbox);
  const result = await backend.run(p, { kind: 'bytes', bytes: bytes(input) }, c).then(
    (o) => ({ ok: o.kind === 'bytes' ? text(o.bytes) : o.kind }),
    (e: unknown) => ({ error: `${(e as Error).constructor.name}: ${(e as Error).message}` }),
  );
  return { result, usage: { ...c.usage, stderr: text(c.usage.stderr ?? new Uint8Array(0)) } };
}

/** Two prepared copies of one build: one reuses its instance, the other instantiates every run. */
async function pair(name: string, s: SandboxSpec) {
  const build = createComponentBuild(component(name), { name });
  const reused = await backend.prepare(build, s);
  const fresh = await backend.prepare(build, s);
  expect(reused.component?.notReusable).toBeUndefined();
  fresh.component!.reuse = false;
  return { reused, fresh };
}

describe('component instance reuse', () => {
  // ~50 fuel per byte through wasi_cat: inputs past ~600 bytes run out of fuel mid-write.
  const s = sandboxSpec({ backend: 'wasm', limits: { fuel: 60_000 }, allowedImports: ['wasi:*'] });

  it('a sequence of runs (ok, out of fuel, output limit) matches fresh instances run by run', async () => {
    const { reused, fresh } = await pair('wasi_cat', s);
    const step = fc.record({
      input: fc.string({ unit: 'binary-ascii', maxLength: 1200 }),
      maxOutputBytes: fc.option(fc.integer({ min: 0, max: 64 }), { nil: undefined }),
    });
    const kinds = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), async (steps) => {
        for (const { input, maxOutputBytes } of steps) {
          const a = await outcome(reused, input, s, maxOutputBytes);
          const b = await outcome(fresh, input, s, maxOutputBytes);
          expect(a).toEqual(b);
          kinds.add('ok' in a.result ? 'ok' : a.result.error.replace(/:.*/s, ''));
        }
      }),
      { numRuns: 25, seed: 5 },
    );
    // The generated runs did exercise failures between successes.
    expect(kinds.has('ok')).toBe(true);
    expect(kinds.has('LimitExceededError')).toBe(true);
  });

  it('a run that traps does not poison the next one, and many runs later the results are the same', async () => {
    const { reused } = await pair('wasi_cat', s);
    const first = await outcome(reused, 'hello', s);
    expect(first.result).toEqual({ ok: 'HELLO' });
    const outOfFuel = await outcome(reused, 'y'.repeat(5000), s);
    expect(outOfFuel.result).toMatchObject({ error: expect.stringMatching(/fuel/) });
    const cut = await outcome(reused, 'abcdef', s, 3);
    expect(cut.result).toMatchObject({ error: expect.stringMatching(/maxOutputBytes/) });
    for (let i = 0; i < 40; i++) expect(await outcome(reused, 'hello', s)).toEqual(first);
  });

  it('non-zero exits between clean runs match fresh instances', async () => {
    const { reused, fresh } = await pair('wasi_exit', s);
    for (const code of ['0', '3', '0', '0', '255', '1', '0']) {
      const a = await outcome(reused, code, s);
      const b = await outcome(fresh, code, s);
      expect(a).toEqual(b);
      if (code === '0') expect(a.result).toEqual({ ok: 'exiting with 0\n' });
      else expect(a.result).toMatchObject({ error: expect.stringMatching(/^GuestExitError/) });
    }
  });

  it('a writable memory tree starts from its initial contents on a reused instance', async () => {
    const fsSpec = sandboxSpec({
      backend: 'wasm',
      limits: { fuel: 50_000_000 },
      allowedImports: ['wasi:*'],
      fs: { kind: 'memory', files: { 'a.txt': 'A' }, writable: true },
    });
    const { reused, fresh } = await pair('wasi_files', fsSpec);
    const script = 'cat b.txt\nwrite b.txt new\nappend a.txt +\ncat a.txt\nls .\n';
    for (let i = 0; i < 3; i++) {
      const a = await outcome(reused, script, fsSpec);
      expect(a).toEqual(await outcome(fresh, script, fsSpec));
      expect(a.result).toEqual({
        ok: 'cat b.txt err44\nwrite b.txt ok\nappend a.txt ok\ncat a.txt A+\nls . a.txt,b.txt\n',
      });
    }
  });
});
