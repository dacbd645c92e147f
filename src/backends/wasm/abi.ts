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
import type { WasiHost } from './wasi.js';
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
  | 'FUEL' // the injected fuel counter ran out; `fuelUsed` holds what was charged
  | 'DEPTH' // the injected call-depth counter passed its limit
  | 'GUEST_EXIT' // WASI proc_exit with a non-zero code (or any code from an ABI entry); `value` holds it
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
  /** Fuel charged by the injected counter, alloc included; -1 when the module is not metered. */
  readonly fuelUsed: number;
  /** What a WASI command wrote to stderr (bounded); null outside the command form. */
  readonly stderr: Uint8Array | null;
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
    fuelUsed: -1,
    stderr: null,
  };
}

/** Classify an exception thrown while instantiating or running the guest. */
export function abiThrown(err: unknown, memory: WasmMemory | undefined): AbiResult {
  const WA = (globalThis as unknown as WasmGlobal).WebAssembly;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof Error && (err as { thunderpacAbort?: boolean }).thunderpacAbort === true) {
    return abiResult(null, 'GUEST_ABORT', message, 0, memory);
  }
  // Markers thrown by the WASI host (wasi.ts): proc_exit, and stdout past maxOutputBytes.
  const exit = (err as { thunderpacExit?: number } | null)?.thunderpacExit;
  if (exit !== undefined) return abiResult(null, 'GUEST_EXIT', `exited with code ${exit}`, exit, memory);
  const over = (err as { thunderpacOutputLimit?: number } | null)?.thunderpacOutputLimit;
  if (over !== undefined)
    return abiResult(null, 'OUTPUT_LIMIT', `guest output of ${over}+ bytes`, over, memory);
  if (err instanceof WA.RuntimeError) return abiResult(null, 'GUEST_TRAP', message, 0, memory);
  if (err instanceof RangeError && /call stack/i.test(message))
    return abiResult(null, 'STACK', message, 0, memory);
  if (err instanceof WA.LinkError || err instanceof RangeError) {
    return abiResult(null, 'INSTANTIATE', message, 0, memory);
  }
  return abiResult(null, 'INTERNAL', message, 0, memory);
}

/** An exported wasm global, as the host drives the injected counters. */
interface CounterGlobal {
  value: bigint | number;
}

/**
 * Read the injected counters after a call: fill `fuelUsed`, and turn a trap that the
 * counters explain into FUEL or DEPTH. The counters decide, not V8's message, so the
 * classification is the same on every tier and path. A negative fuel counter wins: the
 * fuel check runs before the depth check at every function entry.
 */
export function metered(
  r: AbiResult,
  fuel: CounterGlobal | undefined,
  fuelLimit: number,
  depth: CounterGlobal | undefined,
  depthLimit: number,
): AbiResult {
  if (fuel === undefined && depth === undefined) return r;
  const left = fuel === undefined ? 0 : Number(fuel.value);
  const used = fuel === undefined ? -1 : fuelLimit - left;
  let failure = r.failure;
  let message = r.message;
  if (failure === 'GUEST_TRAP' || failure === 'STACK') {
    if (fuel !== undefined && left < 0) {
      failure = 'FUEL';
      message = `out of fuel: charged ${used} of ${fuelLimit}`;
    } else if (depth !== undefined && Number(depth.value) > depthLimit) {
      failure = 'DEPTH';
      message = `call depth passed ${depthLimit}`;
    }
  }
  return {
    output: r.output,
    failure,
    message,
    value: r.value,
    memoryBytes: r.memoryBytes,
    fuelUsed: used,
    stderr: r.stderr,
  };
}

/**
 * The ABI call itself on resolved exports: input at alloc(len), call, decode, copy out.
 * Shared by runGuest (fresh instance) and the in-thread runner (reused instance).
 */
export function callGuest(
  mem: WasmMemory,
  alloc: (n: number) => number,
  fn: (p: number, n: number) => unknown,
  entry: string,
  input: Uint8Array,
  maxOutputBytes: number,
  /** A view of the whole memory kept by the caller (the in-thread runner), used while current. */
  cached?: { readonly buffer: ArrayBuffer; readonly view: Uint8Array },
): AbiResult {
  try {
    const len = input.byteLength;
    const ptr = alloc(len) >>> 0;
    let buf = mem.buffer; // re-read: alloc may have grown (and detached) the buffer
    if (ptr + len > buf.byteLength) {
      return abiResult(null, 'GUEST_BAD_OUTPUT', `alloc(${len}) returned ${ptr}, outside memory`, ptr, mem);
    }
    // One view of the whole memory for input and output (a view costs as much as a small copy).
    let u8 = cached !== undefined && cached.buffer === buf ? cached.view : new Uint8Array(buf);
    u8.set(input, ptr);

    const packed = fn(ptr, len);
    if (typeof packed !== 'bigint') {
      return abiResult(null, 'ABI', `entry '${entry}' did not return an i64`, 0, mem);
    }
    if (packed < 0n) return abiResult(null, 'GUEST_ERROR', `guest returned ${packed}`, Number(packed), mem);
    const outPtr = Number(packed >> 32n);
    const outLen = Number(packed & 0xffffffffn);
    // Checked before anything is copied: a guest cannot make the host allocate past the limit.
    if (outLen > maxOutputBytes) {
      return abiResult(null, 'OUTPUT_LIMIT', `guest output of ${outLen} bytes`, outLen, mem);
    }
    const after = mem.buffer; // the entry may have grown the memory too
    if (after !== buf) {
      buf = after;
      u8 = new Uint8Array(buf);
    }
    if (outPtr + outLen > buf.byteLength) {
      return abiResult(
        null,
        'GUEST_BAD_OUTPUT',
        `output [${outPtr}, ${outPtr + outLen}) is outside linear memory (${buf.byteLength} bytes)`,
        outPtr,
        mem,
      );
    }
    // slice() copies into a buffer of exactly outLen bytes, which the worker can transfer; a
    // typed-array slice (not ArrayBuffer#slice) keeps a small output on V8's heap, no malloc.
    return abiResult(u8.slice(outPtr, outPtr + outLen), null, '', 0, mem);
  } catch (err) {
    return abiThrown(err, mem);
  }
}

/**
 * One execution. A fresh instance every time: globals, the heap and anything a previous
 * input left in memory must not leak into the next execution (results would depend on
 * history, breaking replay, and one caller's data would be visible to the next).
 * Instantiating an already-compiled module still costs tens of microseconds (V8 reserves a
 * guarded address range per memory and the first touches fault pages in), which is why the
 * worker makes its next instance while it would otherwise sit idle (see worker.ts), and the
 * in-thread path reuses one instance with a memory/globals snapshot (instance-reuse.ts).
 *
 * Metered modules (instrument.ts): the fuel counter starts at `fuelLimit` in every new
 * instance, so the start function (if any, deferred to here: START_EXPORT), alloc and the entry
 * are all charged, on every path the same way (the in-thread runner's reused instance charges
 * the start function's recorded fuel up front instead).
 */
export function runGuest(
  module: WasmModule,
  imports: WasmImports,
  host: HostState,
  entry: string,
  input: Uint8Array,
  maxOutputBytes: number,
  /** A fresh, never-run instance of `module` made ahead of time (the worker's spare), if any. */
  spare: WasmInstance | undefined,
  /** Fuel for this execution; -1 = the module is not fuel-metered. */
  fuelLimit: number,
  /** The call-depth limit compiled into the module; 0 = no depth counter. */
  depthLimit: number,
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
    // Names as in instrument.ts (FUEL_EXPORT, DEPTH_EXPORT); literals: this function is stringified.
    // The counter starts at fuelLimit (instrument.ts bakes it in) and is not reset: a fresh
    // instance's start function has already been charged, and counts as part of this execution.
    const fuel = fuelLimit >= 0 ? (exports.__thunderpac_fuel as CounterGlobal) : undefined;
    const depth = depthLimit > 0 ? (exports.__thunderpac_depth as CounterGlobal) : undefined;
    // A start function deferred by instrument.ts (START_EXPORT) runs now, metered like the entry.
    const deferred = exports.__thunderpac_start;
    if (typeof deferred === 'function') {
      try {
        deferred();
      } catch (err) {
        return metered(abiThrown(err, mem), fuel, fuelLimit, depth, depthLimit);
      }
    }
    const r = callGuest(
      mem,
      alloc as (n: number) => number,
      fn as (p: number, n: number) => unknown,
      entry,
      input,
      maxOutputBytes,
    );
    return metered(r, fuel, fuelLimit, depth, depthLimit);
  } catch (err) {
    return abiThrown(err, memory);
  } finally {
    host.memory = undefined;
  }
}

/**
 * One execution of a WASI command (`_start`, wasi.ts): stdin = input, the output = what the
 * guest wrote to stdout, its stderr attached to the result whatever the outcome. A fresh
 * instance every time (or the worker's never-run spare): a command's libc runs its
 * constructors and destructors once per instance. proc_exit(0) or returning from `_start` is
 * success; any other code is GUEST_EXIT with the code in `value`.
 */
export function runCommand(
  module: WasmModule,
  imports: WasmImports,
  host: HostState,
  wasi: WasiHost,
  input: Uint8Array,
  maxOutputBytes: number,
  spare: WasmInstance | undefined,
  fuelLimit: number,
  depthLimit: number,
): AbiResult {
  const WA = (globalThis as unknown as WasmGlobal).WebAssembly;
  let memory: WasmMemory | undefined;
  let r: AbiResult;
  wasi.begin(input, maxOutputBytes);
  try {
    const exports = (spare ?? new WA.Instance(module, imports)).exports;
    const mem = exports.memory;
    if (!(mem instanceof WA.Memory)) {
      r = abiResult(null, 'ABI', 'module does not export `memory`', 0, memory);
    } else {
      memory = mem;
      host.memory = mem;
      const start = exports._start;
      // Not reset: see runGuest (a start function's fuel counts).
      const fuel = fuelLimit >= 0 ? (exports.__thunderpac_fuel as CounterGlobal) : undefined;
      const depth = depthLimit > 0 ? (exports.__thunderpac_depth as CounterGlobal) : undefined;
      const deferred = exports.__thunderpac_start; // see runGuest
      if (typeof start !== 'function') {
        r = abiResult(null, 'NO_SUCH_EXPORT', "no entry '_start'", 0, memory);
      } else {
        try {
          if (typeof deferred === 'function') deferred();
          start();
          r = abiResult(new Uint8Array(0), null, '', 0, mem);
        } catch (err) {
          r = abiThrown(err, mem);
          if (r.failure === 'GUEST_EXIT' && r.value === 0) r = abiResult(new Uint8Array(0), null, '', 0, mem);
        }
        r = metered(r, fuel, fuelLimit, depth, depthLimit);
      }
    }
  } catch (err) {
    r = abiThrown(err, memory);
  } finally {
    host.memory = undefined;
  }
  const streams = wasi.end();
  return {
    output: r.output === null ? null : streams.stdout,
    failure: r.failure,
    message: r.message,
    value: r.value,
    memoryBytes: r.memoryBytes,
    fuelUsed: r.fuelUsed,
    stderr: streams.stderr,
  };
}
