/**
 * One component instance, made once and put back after every run (issue #5: instance reuse).
 *
 * jco's generated `instantiate` costs milliseconds (it defines thousands of closures and
 * classes, then instantiates every core module); a command run is tens of microseconds. So the
 * runner keeps one instance per prepared build and sandbox, and right after instantiation
 * snapshots everything a run can change:
 *   - each memory's contents, at its real size: the virtual size (component-memory.ts) plus
 *     COMPONENT_HEADROOM_PAGES, sized right after instantiation on every instance;
 *   - every WebAssembly.Global the core instances export or import: the modules' own mutable
 *     globals (instrument.ts exports them), the fuel and depth counters, jco's instance flags
 *     and the virtual page counts;
 *   - the glue's resource tables (component-glue.ts).
 * After a run that returned normally it copies all of that back. Anything else drops the
 * instance and the next run makes a new one:
 *   - a run that threw (trap, out of fuel, exit, output limit): jco marks a trapped instance
 *     as such and refuses to enter it again (component-model semantics), so it is not reused;
 *   - a run that grew the real memory past its headroom (it cannot shrink back).
 * Tables are not snapshotted: jco fills its shim table once at instantiation and a guest that
 * mutates tables (Instrumented.mutatesInstance) is never reused (see `ReuseCheck`).
 */

import { PAGES_IMPORT } from './component-memory.js';
import { GLUE_RESET_IMPORT, type GlueReset } from './component-glue.js';
import { WASM_PAGE_BYTES } from './module-info.js';
import { WA, type WasmInstance, type WasmMemory, type WasmModule } from './wasm-api.js';

/**
 * Real pages kept beyond a memory's virtual size at the start of every run: growth within them
 * needs no new instance. 8 pages (512 KiB) covers the preview 1 adapter's page per run and a
 * modest heap, and costs a few µs of zero-fill per run.
 */
export const COMPONENT_HEADROOM_PAGES = 8;

interface GlobalLike {
  value: unknown;
}
interface GlobalCtor {
  new (desc: { value: 'i32'; mutable: boolean }, value: number): GlobalLike;
}
interface MemoryGrow extends WasmMemory {
  grow(pages: number): number;
}
const WasmGlobal = (globalThis as unknown as { WebAssembly: { Global: GlobalCtor } }).WebAssembly.Global;

/** What the runner needs to know about one compiled core module. */
export interface CoreModuleFacts {
  /** Rewritten by component-memory.ts: imports the virtual page count. */
  readonly virtualPages: boolean;
  /** The memory it defines: initial and maximum pages. */
  readonly memory: { readonly min: number; readonly max: number } | undefined;
}

export interface FuelCounters {
  fuel: GlobalLike[];
  depth: GlobalLike[];
}

export interface LiveComponent {
  /** wasi:cli/run's run(), or undefined when the component exports none. */
  readonly run: (() => void) | undefined;
  readonly counters: FuelCounters;
  /** The first memory seen (the guest's): its size goes in the receipt. */
  readonly memory: WasmMemory | undefined;
  /** Put everything back; false when that cannot be done (memory grew past its headroom). */
  restore(): boolean;
}

interface MemorySnapshot {
  readonly memory: WasmMemory;
  readonly snapshot: Uint8Array;
  /** [start, end, zero] triples: all-zero runs are filled, others copied. */
  readonly ranges: Uint32Array;
}

const BLOCK = 4096;

function zeroRanges(snapshot: Uint8Array): Uint32Array {
  const out: number[] = [];
  for (let start = 0; start < snapshot.byteLength; start += BLOCK) {
    const end = Math.min(start + BLOCK, snapshot.byteLength);
    let zero = 1;
    for (let i = start; i < end; i++) {
      if (snapshot[i] !== 0) {
        zero = 0;
        break;
      }
    }
    const n = out.length;
    if (n > 0 && out[n - 1] === zero && out[n - 2] === start) out[n - 2] = end;
    else out.push(start, end, zero);
  }
  return Uint32Array.from(out);
}

/**
 * Instantiate a component through jco's glue: the core instances made on the way are watched
 * (counters, memories, globals), and with `reusable` everything is snapshotted at the end.
 */
export function instantiateComponent(opts: {
  readonly instantiate: (
    getCoreModule: (name: string) => WasmModule,
    imports: Record<string, unknown>,
    instantiateCore: (module: WasmModule, imports: unknown) => WasmInstance,
  ) => Record<string, unknown>;
  readonly modules: ReadonlyMap<string, WasmModule>;
  readonly facts: ReadonlyMap<WasmModule, CoreModuleFacts>;
  readonly imports: Record<string, unknown>;
  readonly entry: string;
  readonly fuelLimit: number;
  readonly depthLimit: number;
  readonly reusable: boolean;
  readonly unversioned: (name: string) => string;
}): LiveComponent {
  const counters: FuelCounters = { fuel: [], depth: [] };
  const globals = new Set<GlobalLike>();
  const memories: { memory: MemoryGrow; pages: GlobalLike; max: number }[] = [];
  const pagesOf = new Map<WasmMemory, GlobalLike>();
  let firstMemory: WasmMemory | undefined;
  let glueReset: GlueReset | undefined;

  const instantiateCore = (module: WasmModule, rawImports: unknown): WasmInstance => {
    const imports = (rawImports ?? {}) as Record<string, Record<string, unknown>>;
    const facts = opts.facts.get(module);
    let ownPages: GlobalLike | undefined;
    for (const ns of Object.values(imports)) {
      for (const v of Object.values(ns ?? {})) if (v instanceof WasmGlobal) globals.add(v as GlobalLike);
    }
    if (facts?.virtualPages === true) {
      let pages: GlobalLike | undefined;
      if (facts.memory !== undefined) {
        ownPages = new WasmGlobal({ value: 'i32', mutable: true }, facts.memory.min);
        pages = ownPages;
      } else {
        for (const ns of Object.values(imports))
          for (const v of Object.values(ns ?? {})) if (v instanceof WA.Memory) pages ??= pagesOf.get(v);
      }
      if (pages === undefined) throw new Error('a core module sizes a memory the runner does not know');
      globals.add(pages);
      imports[PAGES_IMPORT[0]] = { [PAGES_IMPORT[1]]: pages };
    }
    const inst = new WA.Instance(module, imports);
    const e = inst.exports;
    for (const v of Object.values(e)) {
      if (v instanceof WasmGlobal) globals.add(v as GlobalLike);
      if (v instanceof WA.Memory && !pagesOf.has(v)) {
        const pages =
          ownPages ?? new WasmGlobal({ value: 'i32', mutable: true }, v.buffer.byteLength / WASM_PAGE_BYTES);
        pagesOf.set(v, pages);
        globals.add(pages);
        memories.push({ memory: v as MemoryGrow, pages, max: facts?.memory?.max ?? 0 });
        firstMemory ??= v;
      }
    }
    const fuel = opts.fuelLimit >= 0 ? (e.__thunderpac_fuel as GlobalLike | undefined) : undefined;
    if (fuel !== undefined) {
      fuel.value = BigInt(opts.fuelLimit);
      counters.fuel.push(fuel);
    }
    const depth = opts.depthLimit > 0 ? (e.__thunderpac_depth as GlobalLike | undefined) : undefined;
    if (depth !== undefined) counters.depth.push(depth);
    return inst;
  };

  const imports = opts.reusable
    ? {
        ...opts.imports,
        [GLUE_RESET_IMPORT]: (reset: GlueReset) => {
          glueReset = reset;
        },
      }
    : opts.imports;
  const exports = opts.instantiate(
    (name) => {
      const m = opts.modules.get(name);
      if (m === undefined) throw new Error(`no core module ${name}`);
      return m;
    },
    imports,
    instantiateCore,
  );
  // The instance export is keyed with its version ('wasi:cli/run@0.2.x').
  const key = Object.keys(exports).find((k) => opts.unversioned(k) === opts.entry);
  const iface = key === undefined ? undefined : (exports[key] as { run?: () => void });
  const run = typeof iface?.run === 'function' ? iface.run.bind(iface) : undefined;

  // The real size of every virtualized memory is fixed now, on fresh and reused instances
  // alike (component-memory.ts): virtual size + headroom, within the maximum.
  for (const m of memories) {
    if (m.max === 0) continue; // not virtualized: its size is the guest's own
    const target = Math.min(Number(m.pages.value) + COMPONENT_HEADROOM_PAGES, m.max);
    const have = m.memory.buffer.byteLength / WASM_PAGE_BYTES;
    if (target > have) m.memory.grow(target - have);
  }

  if (!opts.reusable || glueReset === undefined) {
    return { run, counters, memory: firstMemory, restore: () => false };
  }
  const reset = glueReset;
  const snaps: MemorySnapshot[] = memories.map(({ memory }) => {
    const snapshot = new Uint8Array(memory.buffer.slice(0));
    return { memory, snapshot, ranges: zeroRanges(snapshot) };
  });
  const globalList = [...globals];
  let values: unknown[];
  try {
    values = globalList.map((g) => g.value);
  } catch {
    // A v128 global cannot be read from JS: such an instance cannot be put back.
    return { run, counters, memory: firstMemory, restore: () => false };
  }
  return {
    run,
    counters,
    memory: firstMemory,
    restore(): boolean {
      for (const s of snaps) {
        const buf = s.memory.buffer;
        if (buf.byteLength !== s.snapshot.byteLength) return false; // grew past the headroom
        const mem = new Uint8Array(buf);
        const r = s.ranges;
        for (let i = 0; i < r.length; i += 3) {
          if (r[i + 2] === 1) mem.fill(0, r[i]!, r[i + 1]!);
          else mem.set(s.snapshot.subarray(r[i]!, r[i + 1]!), r[i]!);
        }
      }
      for (let i = 0; i < globalList.length; i++) {
        const g = globalList[i]!;
        if (g.value !== values[i]) g.value = values[i];
      }
      reset();
      return true;
    },
  };
}
