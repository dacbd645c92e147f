/** Shared by the wasm backend suites: guest bytes, sandbox specs, run contexts. */

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RunContext, SandboxLimits, SandboxSpec } from '../src/runtime/types.js';

const WASM_DIR = fileURLToPath(new URL('../wasm/', import.meta.url));

const GUESTS = [
  'echo',
  'fnv',
  'kernels',
  'nan',
  'tailcall',
  'atomics',
  'relaxed_simd',
  'exceptions',
  'mem_nomax',
  'mem_huge',
  'imports_env',
  'abort_import',
  'shared_mem',
  'mem64',
  'wasi_cat',
  'wasi_exit',
  'wasi_probe',
  'wasi_files',
  'wasi_raw',
];

/**
 * Build the guests (make is incremental: a no-op when they are up to date). Where the
 * toolchain is missing but the .wasm files are already there, use those.
 */
export function buildGuests(): void {
  try {
    execFileSync('make', ['-s', '-C', WASM_DIR], { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (err) {
    if (!GUESTS.every((g) => existsSync(`${WASM_DIR}${g}.wasm`))) throw err;
  }
}

export function guest(name: string): Uint8Array {
  return new Uint8Array(readFileSync(`${WASM_DIR}${name}.wasm`));
}

export function sandbox(
  limits: Partial<SandboxLimits> = {},
  allowedImports: readonly string[] = [],
): SandboxSpec {
  return {
    backend: 'wasm',
    limits: { timeoutMs: 1000, memoryMb: 16, maxInputBytes: 1 << 20, maxOutputBytes: 1 << 20, ...limits },
    network: false,
    fs: { kind: 'none' },
    allowedImports,
    determinism: { seed: 0, flags: [] },
  };
}

export function ctx(entry: string, spec: SandboxSpec = sandbox()): RunContext {
  return { entry, sandbox: spec, usage: {} };
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A sandbox with the given determinism flags (e.g. 'nan-native', 'allow-relaxed-simd'). */
export function sandboxWithFlags(flags: readonly string[], limits: Partial<SandboxLimits> = {}): SandboxSpec {
  return { ...sandbox(limits), determinism: { seed: 0, flags: [...flags].sort() } };
}

/** Little-endian u32 parameters, the input format of wasm/kernels.c. */
export function u32s(...values: number[]): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  const view = new DataView(out.buffer);
  for (const [i, v] of values.entries()) view.setUint32(4 * i, v >>> 0, true);
  return out;
}

/** A sandbox that lets a guest import all of WASI preview 1, optionally with a read-only dir. */
export function wasiSandbox(
  opts: { limits?: Partial<SandboxLimits>; dir?: string; seed?: number; fuel?: number } = {},
): SandboxSpec {
  const base = sandbox({ ...opts.limits, ...(opts.fuel === undefined ? {} : { fuel: opts.fuel }) }, [
    'wasi_snapshot_preview1.*',
  ]);
  return {
    ...base,
    fs: opts.dir === undefined ? { kind: 'none' } : { kind: 'read-only', dir: opts.dir },
    determinism: { seed: opts.seed ?? 0, flags: ['nan-canonical', 'wasi-virtual-clock'] },
  };
}

/** `key=value` lines (wasm/wasi_probe.c's output) as a record. */
export function probeLines(out: Uint8Array): Record<string, string> {
  const r: Record<string, string> = {};
  for (const line of text(out).split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) r[line.slice(0, i)] = line.slice(i + 1);
  }
  return r;
}
