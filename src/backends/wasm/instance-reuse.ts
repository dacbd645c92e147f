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
import { DEPTH_EXPORT, FUEL_EXPORT, START_EXPORT } from './instrument.js';
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
  /**
   * The fuel counter at the start of each execution: the limit less what the start function
   * used when this instance was made, so every execution is charged as on a fresh instance.
   */
  readonly fuelAtEntry: bigint;
  readonly depth: CounterGlobal | undefined;
  readonly globals: readonly CounterGlobal[];
  readonly globalValues: readonly (bigint | number)[];
  readonly snapshot: Uint8Array;
  /** The memory's current buffer and a view of it, kept across executions (no view per restore). */
  buffer: ArrayBuffer;
  view: Uint8Array;
  /** The snapshot's non-zero ranges as views, made once. */
  readonly pieces: readonly (readonly [number, Uint8Array])[];
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
      let made: Live | AbiResult;
      try {
        made = this.#instantiate();
      } catch (err) {
        return abiThrown(err, undefined);
      }
      if ('failure' in made) return made; // the start function failed: no instance to keep
      live = made;
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
    if (live.fuel !== undefined) live.fuel.value = live.fuelAtEntry;
    this.#host.memory = live.memory;
    const r = metered(
      callGuest(live.memory, live.alloc, fn, entry, input, maxOutputBytes, live),
      live.fuel,
      this.#fuelLimit,
      live.depth,
      this.#depthLimit,
    );
    this.#host.memory = undefined;
    this.#restore(live);
    return r;
  }

  /** A new instance with its start function run, ready to snapshot; or why it could not be made. */
  #instantiate(): Live | AbiResult {
    const exports = new WA.Instance(this.#module, this.#imports).exports;
    const memory = exports.memory;
    const alloc = exports.alloc;
    if (!(memory instanceof WA.Memory) || typeof alloc !== 'function') {
      throw new Error('module does not export `memory` and `alloc`'); // policy checked both already
    }
    const fuel = this.#fuelLimit >= 0 ? (exports[FUEL_EXPORT] as CounterGlobal) : undefined;
    const depth = this.#depthLimit > 0 ? (exports[DEPTH_EXPORT] as CounterGlobal) : undefined;
    const start = exports[START_EXPORT];
    if (typeof start === 'function') {
      // The deferred start function (instrument.ts), metered like an entry: a trap or running
      // out of fuel here fails this execution, classified by the counters.
      this.#host.memory = memory;
      try {
        start();
      } catch (err) {
        return metered(abiThrown(err, memory), fuel, this.#fuelLimit, depth, this.#depthLimit);
      } finally {
        this.#host.memory = undefined;
      }
    }
    // The counter started at the limit (instrument.ts) and the start function ran on it.
    const fuelAtEntry = fuel === undefined ? 0n : BigInt(fuel.value);
    const globals = this.#stateGlobals.map((n) => exports[n] as CounterGlobal);
    const snapshot = new Uint8Array(memory.buffer.slice(0));
    const ranges = zeroRanges(snapshot);
    const pieces: (readonly [number, Uint8Array])[] = [];
    for (let i = 0; i < ranges.length; i += 3) {
      if (ranges[i + 2] === 0) pieces.push([ranges[i]!, snapshot.subarray(ranges[i]!, ranges[i + 1]!)]);
    }
    if (depth !== undefined) globals.push(depth);
    return {
      memory,
      alloc: alloc as (n: number) => number,
      exports,
      entries: new Map(),
      fuel,
      fuelAtEntry,
      depth,
      globals,
      globalValues: globals.map((g) => g.value),
      snapshot,
      buffer: memory.buffer,
      view: new Uint8Array(memory.buffer),
      pieces,
      ranges,
    };
  }

  #restore(live: Live): void {
    const buf = live.memory.buffer;
    if (buf !== live.buffer) {
      // A new buffer object: the memory grew (or grew by 0, which also replaces it).
      if (buf.byteLength !== live.snapshot.byteLength) {
        this.#live = undefined; // grew: cannot shrink back, so the next execution instantiates
        return;
      }
      live.buffer = buf;
      live.view = new Uint8Array(buf);
    }
    const mem = live.view;
    const ranges = live.ranges;
    for (let i = 0; i < ranges.length; i += 3) {
      if (ranges[i + 2] === 1) mem.fill(0, ranges[i]!, ranges[i + 1]!);
    }
    for (const [start, piece] of live.pieces) mem.set(piece, start);
    const gs = live.globals;
    const vs = live.globalValues;
    for (let i = 0; i < gs.length; i++) gs[i]!.value = vs[i]!;
  }

  /** Drop the live instance (dispose). */
  clear(): void {
    this.#live = undefined;
  }
}
