/**
 * The guest ABI, executed: instantiate, write the input at alloc(len), call the entry, decode
 * the packed i64, copy the output out. One implementation for both execution paths: the
 * in-thread path calls `runGuest` directly, and worker.ts stringifies these functions into
 * the worker script.
 *
 * Everything here must therefore stay self-contained: these functions may use globals and
 * each other (they are emitted side by side under the same names), never an import. Failures
 * come back as data (`AbiResult`), not exceptions, because they cross a thread boundary; the
 * backend turns them into typed errors.
 *
 * ABI (DESIGN.md): exports `memory`, `alloc(len: i32) -> i32` and entries
 * `NAME(ptr: i32, len: i32) -> i64` returning `(out_ptr << 32) | out_len`; negative = guest
 * error. With a memory cap of 2 GiB or less (the sandbox cap in practice) out_ptr < 2^31, so
 * a valid result is never negative.
 */

import type { HostState } from './host.js';
import type { WasmGlobal, WasmImports, WasmInstance, WasmMemory, WasmModule } from './wasm-api.js';

export type AbiFailure =
  | 'ABI' // the module does not follow the ABI at run time (missing export, non-bigint result)
  | 'NO_SUCH_EXPORT'
  | 'GUEST_ERROR' // negative result; `value` holds it
  | 'GUEST_TRAP' // WebAssembly.RuntimeError (unreachable, out-of-bounds access, ...)
  | 'GUEST_ABORT' // a host abort function was called
  | 'GUEST_BAD_OUTPUT' // alloc or the output range points outside linear memory
  | 'OUTPUT_LIMIT' // output length over maxOutputBytes; `value` holds it
  | 'STACK' // the guest exhausted the thread's call stack
  | 'INSTANTIATE' // link error or no memory for the instance
  | 'INTERNAL';

/** One shape for success and failure, so the hot path stays monomorphic. */
export interface AbiResult {
  readonly output: Uint8Array | null;
  readonly failure: AbiFailure | null;
  readonly message: string;
  readonly value: number;
  /** Linear memory size at the end; memory never shrinks, so this is the peak. */
  readonly memoryBytes: number;
}

export function abiResult(
  output: Uint8Array | null,
  failure: AbiFailure | null,
  message: string,
  value: number,
  memory: WasmMemory | undefined,
): AbiResult {
  return {
    output,
    failure,
    message,
    value,
    memoryBytes: memory === undefined ? 0 : memory.buffer.byteLength,
  };
}

/** Classify an exception thrown while instantiating or running the guest. */
export function abiThrown(err: unknown, memory: WasmMemory | undefined): AbiResult {
  const WA = (globalThis as unknown as WasmGlobal).WebAssembly;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof Error && (err as { thunderpacAbort?: boolean }).thunderpacAbort === true) {
    return abiResult(null, 'GUEST_ABORT', message, 0, memory);
  }
  if (err instanceof WA.RuntimeError) return abiResult(null, 'GUEST_TRAP', message, 0, memory);
  if (err instanceof RangeError && /call stack/i.test(message))
    return abiResult(null, 'STACK', message, 0, memory);
  if (err instanceof WA.LinkError || err instanceof RangeError) {
    return abiResult(null, 'INSTANTIATE', message, 0, memory);
  }
  return abiResult(null, 'INTERNAL', message, 0, memory);
}

/**
 * One execution. A fresh instance every time: globals, the heap and anything a previous
 * input left in memory must not leak into the next execution (results would depend on
 * history, breaking replay, and one caller's data would be visible to the next).
 * Instantiating an already-compiled module still costs tens of microseconds (V8 reserves a
 * guarded address range per memory and the first touches fault pages in), which is why the
 * worker makes its next instance while it would otherwise sit idle (see worker.ts).
 */
export function runGuest(
  module: WasmModule,
  imports: WasmImports,
  host: HostState,
  entry: string,
  input: Uint8Array,
  maxOutputBytes: number,
  /** A fresh, never-run instance of `module` made ahead of time (the worker's spare), if any. */
  spare?: WasmInstance,
): AbiResult {
  const WA = (globalThis as unknown as WasmGlobal).WebAssembly;
  let memory: WasmMemory | undefined;
  try {
    const exports = (spare ?? new WA.Instance(module, imports)).exports;
    const mem = exports.memory;
    if (!(mem instanceof WA.Memory))
      return abiResult(null, 'ABI', 'module does not export `memory`', 0, memory);
    memory = mem;
    host.memory = mem;
    const alloc = exports.alloc;
    if (typeof alloc !== 'function')
      return abiResult(null, 'ABI', 'module does not export `alloc`', 0, memory);
    const fn = exports[entry];
    if (typeof fn !== 'function') return abiResult(null, 'NO_SUCH_EXPORT', `no entry '${entry}'`, 0, memory);

    const len = input.byteLength;
    const ptr = (alloc as (n: number) => number)(len) >>> 0;
    let buf = mem.buffer; // re-read: alloc may have grown (and detached) the buffer
    if (ptr + len > buf.byteLength) {
      return abiResult(
        null,
        'GUEST_BAD_OUTPUT',
        `alloc(${len}) returned ${ptr}, outside memory`,
        ptr,
        memory,
      );
    }
    new Uint8Array(buf, ptr, len).set(input);

    const packed = (fn as (p: number, n: number) => unknown)(ptr, len);
    if (typeof packed !== 'bigint') {
      return abiResult(null, 'ABI', `entry '${entry}' did not return an i64`, 0, memory);
    }
    if (packed < 0n)
      return abiResult(null, 'GUEST_ERROR', `guest returned ${packed}`, Number(packed), memory);
    const outPtr = Number(packed >> 32n);
    const outLen = Number(packed & 0xffffffffn);
    // Checked before anything is copied: a guest cannot make the host allocate past the limit.
    if (outLen > maxOutputBytes) {
      return abiResult(null, 'OUTPUT_LIMIT', `guest output of ${outLen} bytes`, outLen, memory);
    }
    buf = mem.buffer;
    if (outPtr + outLen > buf.byteLength) {
      return abiResult(
        null,
        'GUEST_BAD_OUTPUT',
        `output [${outPtr}, ${outPtr + outLen}) is outside linear memory (${buf.byteLength} bytes)`,
        outPtr,
        memory,
      );
    }
    // slice() copies into a buffer of exactly outLen bytes, which the worker can transfer.
    return abiResult(new Uint8Array(buf.slice(outPtr, outPtr + outLen)), null, '', 0, memory);
  } catch (err) {
    return abiThrown(err, memory);
  } finally {
    host.memory = undefined;
  }
}
