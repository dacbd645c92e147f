import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/index.js';
import { sandboxSpec } from '../src/runtime/sandbox.js';
import type { Output, SandboxSpec } from '../src/runtime/types.js';
import { buildGuests, ctx, guest, sandbox, sandboxWithFlags } from './wasm-fixtures.js';

const inThread = new WasmBackend({ path: 'in-thread' });
const worker = new WasmBackend({ path: 'worker', workers: 1 });

beforeAll(() => buildGuests());
afterAll(async () => {
  await inThread.close();
  await worker.close();
});

const F64_CANON = 0x7ff8000000000000n;
const F32_CANON = 0x7fc00000;

function f64s(...xs: number[]): Uint8Array {
  const out = new Uint8Array(8 * xs.length);
  const v = new DataView(out.buffer);
  for (const [i, x] of xs.entries()) v.setFloat64(8 * i, x, true);
  return out;
}

/** f32 operands given as raw bits, so NaN payloads survive the trip through JS. */
function f32bits(...bits: number[]): Uint8Array {
  const out = new Uint8Array(4 * bits.length);
  const v = new DataView(out.buffer);
  for (const [i, b] of bits.entries()) v.setUint32(4 * i, b >>> 0, true);
  return out;
}

function view(o: Output): DataView {
  if (o.kind !== 'bytes') throw new Error('expected bytes');
  return new DataView(o.bytes.buffer, o.bytes.byteOffset, o.bytes.byteLength);
}

async function call(backend: WasmBackend, spec: SandboxSpec, entry: string, input: Uint8Array) {
  const p = await backend.prepare(createWasmBuild(guest('nan'), { name: 'nan' }), spec);
  return view(await backend.run(p, { kind: 'bytes', bytes: input }, ctx(entry, spec)));
}

describe.each([
  ['in-thread', inThread],
  ['worker', worker],
])('NaN canonicalization (default float policy), %s path', (_name, backend) => {
  const spec = sandbox({ fuel: 1_000_000 });

  it('0/0 in f64 gives the canonical quiet NaN', async () => {
    expect((await call(backend, spec, 'f64div', f64s(0, 0))).getBigUint64(0, true)).toBe(F64_CANON);
    expect((await call(backend, spec, 'f64div', f64s(-0, 0))).getBigUint64(0, true)).toBe(F64_CANON);
    // Non-NaN results are untouched.
    expect((await call(backend, spec, 'f64div', f64s(1, 4))).getFloat64(0, true)).toBe(0.25);
    expect((await call(backend, spec, 'f64div', f64s(1, 0))).getFloat64(0, true)).toBe(Infinity);
  });

  it('a NaN payload does not propagate through f32 arithmetic; sqrt(-1) is canonical', async () => {
    const payload = 0x7fa00001; // a signalling NaN with a payload
    expect((await call(backend, spec, 'f32add', f32bits(payload, 0x3f800000))).getUint32(0, true)).toBe(
      F32_CANON,
    );
    expect((await call(backend, spec, 'f32add', f32bits(0xffc12345, 0))).getUint32(0, true)).toBe(F32_CANON);
    expect((await call(backend, spec, 'f32sqrt', f32bits(0xbf800000))).getUint32(0, true)).toBe(F32_CANON);
    expect((await call(backend, spec, 'f32add', f32bits(0x3f800000, 0x3f800000))).getFloat32(0, true)).toBe(
      2,
    );
  });

  it('SIMD lanes are canonicalized lane by lane', async () => {
    const v = await call(backend, spec, 'f64x2div', f64s(0, 6, 0, 3));
    expect(v.getBigUint64(0, true)).toBe(F64_CANON);
    expect(v.getFloat64(8, true)).toBe(2);
  });

  it("'nan-native' opts out: the hardware's NaN bits come back", async () => {
    const native = sandboxWithFlags(['nan-native'], { fuel: 1_000_000 });
    const bits = (await call(backend, native, 'f32add', f32bits(0x7fa00001, 0x3f800000))).getUint32(0, true);
    // The payload survives (quieted) instead of being replaced.
    expect(bits & 0x7fc00000).toBe(0x7fc00000);
    expect(bits & 0x003fffff).toBe(0x00200001);
  });
});

describe('float policy in the sandbox spec', () => {
  it("wasm sandboxes record 'nan-canonical' unless they ask for 'nan-native'", () => {
    expect(sandboxSpec({ backend: 'wasm' }).determinism.flags).toEqual(['nan-canonical']);
    expect(
      sandboxSpec({ backend: 'wasm', determinism: { flags: ['nan-native'] } }).determinism.flags,
    ).toEqual(['nan-native']);
    expect(sandboxSpec({ backend: 'ebpf' }).determinism.flags).toEqual([]);
  });
});
