/**
 * The in-thread runner: one instance per prepared module, reused across executions, with its
 * state put back after each one.
 *
 * A fresh instance costs 20-70 µs here (V8 reserves a guarded range per memory, start code
 * runs, first touches fault pages in). Reuse is only sound if nothing of one execution can
 * be seen by the next, so right after instantiation the runner snapshots everything mutable
 * — linear memory and every mutable global (instrument.ts exports them all, plus the depth
 * counter) — and after every execution, success or trap, it copies the snapshot back. What
 * cannot be put back from JS disqualifies reuse, and the runner makes a fresh instance per
 * execution instead:
 *   - code that mutates tables or drops segments (Instrumented.mutatesInstance);
 *   - a mutable v128 global (not readable from JS);
 *   - memory that grew during an execution (wasm memory cannot shrink): that instance is
 *     dropped and the next execution instantiates again.
 */

import { type AbiResult, abiResult, abiThrown, callGuest, metered, runCommand, runGuest } from './abi.js';
import type { HostState } from './host.js';
import type { Instrumented } from './instrument.js';
import { DEPTH_EXPORT, FUEL_EXPORT } from './instrument.js';
import type { WasiHost } from './wasi.js';
import { WA, type WasmImports, type WasmMemory, type WasmModule } from './wasm-api.js';

interface CounterGlobal {
  value: bigint | number;
}

interface Live {
  readonly memory: WasmMemory;
  readonly alloc: (n: number) => number;
  readonly exports: Readonly<Record<string, unknown>>;
  readonly entries: Map<string, (p: number, n: number) => unknown>;
  readonly fuel: CounterGlobal | undefined;
  readonly depth: CounterGlobal | undefined;
  readonly globals: readonly CounterGlobal[];
  readonly globalValues: readonly (bigint | number)[];
  readonly snapshot: Uint8Array;
  /** Byte ranges of the snapshot, alternating kinds: [start, end, zero (1) or not (0)] triples. */
  readonly ranges: Uint32Array;
}

// Restore granularity: runs of all-zero blocks are restored with fill(0), which only writes
// (~40% faster than copying them from the snapshot here); other blocks are copied.
const BLOCK = 4096;

function zeroRanges(snapshot: Uint8Array): Uint32Array {
  const words = new BigUint64Array(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength >>> 3);
  const out: number[] = [];
  const per = BLOCK >>> 3;
  for (let b = 0; b * BLOCK < snapshot.byteLength; b++) {
    let zero = 1;
    for (let i = b * per; i < Math.min((b + 1) * per, words.length); i++) {
      if (words[i] !== 0n) {
        zero = 0;
        break;
      }
    }
    const start = b * BLOCK;
    const end = Math.min(start + BLOCK, snapshot.byteLength);
    const n = out.length;
    if (n > 0 && out[n - 1] === zero) out[n - 2] = end;
    else out.push(start, end, zero);
  }
  return Uint32Array.from(out);
}

export class InThreadRunner {
  readonly #module: WasmModule;
  readonly #imports: WasmImports;
  readonly #host: HostState;
  readonly #reuse: boolean;
  readonly #stateGlobals: readonly string[];
  readonly #fuelLimit: number;
  readonly #fuelBig: bigint;
  readonly #depthLimit: number;
  readonly #wasi: WasiHost | undefined;
  readonly #command: boolean;
  #live: Live | undefined;

  constructor(
    module: WasmModule,
    imports: WasmImports,
    host: HostState,
    instrumented: Instrumented,
    /** Fuel per execution; -1 = not metered. */
    fuelLimit: number,
    /** Depth limit compiled into the module; 0 = none. */
    depthLimit: number,
    /** The WASI host, when the module imports WASI or is a command (its namespace is in `imports`). */
    wasi?: WasiHost,
    /** The module is a WASI command: entry `_start` runs in the command form. */
    command = false,
  ) {
    this.#module = module;
    this.#imports = imports;
    this.#host = host;
    this.#reuse = !instrumented.mutatesInstance && instrumented.stateGlobals.every((g) => g.type !== 'v128');
    this.#stateGlobals = instrumented.stateGlobals.map((g) => g.name);
    this.#fuelLimit = fuelLimit;
    this.#fuelBig = BigInt(Math.max(fuelLimit, 0));
    this.#depthLimit = depthLimit;
    this.#wasi = wasi;
    this.#command = command;
  }

  /** Whether executions share one instance (restored in between) rather than a fresh one each. */
  get reuses(): boolean {
    return this.#reuse;
  }

  run(entry: string, input: Uint8Array, maxOutputBytes: number): AbiResult {
    const wasi = this.#wasi;
    if (wasi !== undefined) {
      // WASI executions: the command form always on a fresh instance (libc start-up runs once
      // per instance); ABI entries of a WASI-importing module with the WASI state reset.
      if (entry === '_start' && this.#command) {
        return runCommand(
          this.#module,
          this.#imports,
          this.#host,
          wasi,
          input,
          maxOutputBytes,
          undefined,
          this.#fuelLimit,
          this.#depthLimit,
        );
      }
      wasi.begin(new Uint8Array(0), maxOutputBytes);
      try {
        return this.#run(entry, input, maxOutputBytes);
      } finally {
        wasi.end();
      }
    }
    return this.#run(entry, input, maxOutputBytes);
  }

  #run(entry: string, input: Uint8Array, maxOutputBytes: number): AbiResult {
    if (!this.#reuse) {
      return runGuest(
        this.#module,
        this.#imports,
        this.#host,
        entry,
        input,
        maxOutputBytes,
        undefined,
        this.#fuelLimit,
        this.#depthLimit,
      );
    }
    let live = this.#live;
    if (live === undefined) {
      try {
        live = this.#instantiate();
      } catch (err) {
        return abiThrown(err, undefined);
      }
      this.#live = live;
    }
    let fn = live.entries.get(entry);
    if (fn === undefined) {
      const f = live.exports[entry];
      if (typeof f !== 'function')
        return abiResult(null, 'NO_SUCH_EXPORT', `no entry '${entry}'`, 0, undefined);
      fn = f as (p: number, n: number) => unknown;
      live.entries.set(entry, fn);
    }
    if (live.fuel !== undefined) live.fuel.value = this.#fuelBig;
    this.#host.memory = live.memory;
    const r = metered(
      callGuest(live.memory, live.alloc, fn, entry, input, maxOutputBytes),
      live.fuel,
      this.#fuelLimit,
      live.depth,
      this.#depthLimit,
    );
    this.#host.memory = undefined;
    this.#restore(live);
    return r;
  }

  #instantiate(): Live {
    const exports = new WA.Instance(this.#module, this.#imports).exports;
    const memory = exports.memory;
    const alloc = exports.alloc;
    if (!(memory instanceof WA.Memory) || typeof alloc !== 'function') {
      throw new Error('module does not export `memory` and `alloc`'); // policy checked both already
    }
    const globals = this.#stateGlobals.map((n) => exports[n] as CounterGlobal);
    const snapshot = new Uint8Array(memory.buffer.slice(0));
    const depth = this.#depthLimit > 0 ? (exports[DEPTH_EXPORT] as CounterGlobal) : undefined;
    if (depth !== undefined) globals.push(depth);
    return {
      memory,
      alloc: alloc as (n: number) => number,
      exports,
      entries: new Map(),
      fuel: this.#fuelLimit >= 0 ? (exports[FUEL_EXPORT] as CounterGlobal) : undefined,
      depth,
      globals,
      globalValues: globals.map((g) => g.value),
      snapshot,
      ranges: zeroRanges(snapshot),
    };
  }

  #restore(live: Live): void {
    const buf = live.memory.buffer;
    if (buf.byteLength !== live.snapshot.byteLength) {
      this.#live = undefined; // grew: cannot shrink back, so the next execution instantiates
      return;
    }
    const mem = new Uint8Array(buf);
    const { ranges, snapshot } = live;
    for (let i = 0; i < ranges.length; i += 3) {
      const start = ranges[i]!;
      const end = ranges[i + 1]!;
      if (ranges[i + 2] === 1) mem.fill(0, start, end);
      else mem.set(snapshot.subarray(start, end), start);
    }
    const gs = live.globals;
    const vs = live.globalValues;
    for (let i = 0; i < gs.length; i++) gs[i]!.value = vs[i]!;
  }

  /** Drop the live instance (dispose). */
  clear(): void {
    this.#live = undefined;
  }
}
