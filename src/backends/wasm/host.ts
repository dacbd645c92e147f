/**
 * Host functions a sandbox may allow a guest to import.
 *
 * The registry is small and explicit on purpose: every function here is a way out of the
 * sandbox, so each one must be deterministic (same inputs, same effect) and must not reach
 * the clock, randomness, the filesystem or the network. A guest may import a function only
 * when it is listed here AND on `sandbox.allowedImports` (checked in policy.ts).
 * WASI preview 1 is the one larger exception, kept apart in wasi.ts (virtual clock, seeded
 * random, read-only files) and granted by `wasi_snapshot_preview1.*`.
 */

import type { ValType } from './module-info.js';
import type { WasmImports, WasmMemory } from './wasm-api.js';

export interface HostFunctionSpec {
  /** The exact wasm signature the import must declare. */
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
  readonly doc: string;
}

/** Keyed "module.name", the format of `SandboxSpec.allowedImports`. */
export const HOST_FUNCTIONS: Readonly<Record<string, HostFunctionSpec>> = Object.freeze({
  'env.abort': {
    params: ['i32', 'i32', 'i32', 'i32'],
    results: [],
    doc: 'AssemblyScript abort(msg, file, line, col): stops the guest with GuestError GUEST_ABORT',
  },
});

/** Per-thread state host functions read: the memory of the instance now running. */
export interface HostState {
  memory: WasmMemory | undefined;
}

/**
 * Build the import object for `imports` ([module, name] pairs, already checked by policy).
 *
 * This function is stringified into the worker script (see worker.ts): it must stay
 * self-contained — no references to anything outside its own body but globals.
 */
export function createHostImports(
  imports: readonly (readonly [string, string])[],
  host: HostState,
): WasmImports {
  // AssemblyScript strings: UTF-16LE code units at ptr, their byte length as a u32 at ptr - 4.
  // Read defensively (bounds, length cap): the pointers come from the guest.
  const readString = (ptr: number): string => {
    const memory = host.memory;
    const p = ptr >>> 0;
    if (memory === undefined || p < 4) return '';
    const buf = memory.buffer;
    if (p > buf.byteLength) return '';
    const declared = new DataView(buf).getUint32(p - 4, true);
    const n = Math.min(declared, buf.byteLength - p, 2048) & ~1;
    return new TextDecoder('utf-16le').decode(new Uint8Array(buf, p, n));
  };
  const out: WasmImports = {};
  for (const [module, name] of imports) {
    let fn: (...args: number[]) => unknown;
    switch (`${module}.${name}`) {
      case 'env.abort':
        fn = (msg = 0, file = 0, line = 0, col = 0) => {
          const text = readString(msg) || 'abort';
          const where = readString(file);
          const err = new Error(where ? `${text} at ${where}:${line >>> 0}:${col >>> 0}` : text);
          // Marks the exception as a deliberate abort for the ABI layer (guests cannot throw
          // JS values, so only a host function can produce this).
          Object.defineProperty(err, 'thunderpacAbort', { value: true });
          throw err;
        };
        break;
      default:
        throw new Error(`no host function ${module}.${name}`);
    }
    const ns = out[module] ?? {};
    ns[name] = fn;
    out[module] = ns;
  }
  return out;
}
