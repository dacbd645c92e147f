/**
 * What a module must be for the sandbox to run it, checked once at prepare.
 *
 * The policy rejects; it never rewrites. A module that imports too much, or declares no
 * memory maximum, is refused with a typed error naming what is wrong, rather than patched
 * into something its author did not write. The only rewrite is instrument.ts's (fuel, call
 * depth, NaN canonicalization): it adds counters and canonicalizes NaNs, and changes no
 * import, memory or limit the policy checked here.
 *
 * Memory units: `sandbox.limits.memoryMb` is MiB (2^20 bytes) = 16 wasm pages of 64 KiB.
 * Every defined memory must declare a maximum of at most that many pages, so linear memory
 * can never grow past the cap, whatever the guest does at run time. Tables are engine memory
 * the guest grows too: they must declare a maximum, and count against the same cap
 * (checkTables).
 */

import { LimitExceededError, ProgramRejectedError } from '../../runtime/errors.js';
import type { SandboxSpec } from '../../runtime/types.js';
import type { WasmFeature } from './code-reader.js';
import { HOST_FUNCTIONS } from './host.js';
import {
  exportedFunctionType,
  type Limits,
  type ModuleInfo,
  sameSignature,
  WASM_PAGE_BYTES,
} from './module-info.js';
import { WASI_ALLOW_ALL, WASI_FUNCTIONS, WASI_MODULE } from './wasi.js';

export interface PolicyResult {
  /** Host functions the module imports, as [module, name]: each allowed and provided. */
  readonly hostImports: readonly (readonly [string, string])[];
  /** Exports callable as entries: (i32, i32) -> i64, and `_start` of a command. */
  readonly entries: ReadonlySet<string>;
  /** The module imports WASI preview 1 functions (each allowed). */
  readonly wasi: boolean;
  /** The module is a WASI command: it exports `_start: () -> ()` (then `alloc` is optional). */
  readonly command: boolean;
}

const MIB = 1 << 20;
const PAGES_PER_MIB = MIB / WASM_PAGE_BYTES;

function rejected(code: string, reason: string, message: string, subject?: string): ProgramRejectedError {
  return new ProgramRejectedError(code, reason, message, subject);
}

/** Throws the first violation as a typed error; returns what the backend needs to run the module. */
export function checkModule(
  info: ModuleInfo,
  sandbox: SandboxSpec,
  /** The most table elements the engine may hold for one instance (tableElementCap). */
  maxTableElements: number = Number.POSITIVE_INFINITY,
): PolicyResult {
  const allowed = new Set(sandbox.allowedImports);
  const wasiAll = allowed.has(WASI_ALLOW_ALL);
  const hostImports: [string, string][] = [];
  let wasi = false;
  for (const imp of info.imports) {
    const key = `${imp.module}.${imp.name}`;
    if (imp.kind === 'memory' || imp.kind === 'table') {
      // The guest's memory is its own, sized by the policy below; a host-provided one would
      // be shared state outside the cap.
      throw rejected(
        'WASM_IMPORT_NOT_ALLOWED',
        'import',
        `import ${key} (${imp.kind}) is not allowed: modules must define their own ${imp.kind}`,
        key,
      );
    }
    if (imp.kind !== 'function') {
      throw rejected(
        'WASM_IMPORT_NOT_ALLOWED',
        'import',
        `import ${key} (${imp.kind}) is not provided by the host`,
        key,
      );
    }
    if (imp.module === WASI_MODULE) {
      // WASI: opted into as a whole (`wasi_snapshot_preview1.*`) or function by function.
      if (!wasiAll && !allowed.has(key)) {
        throw rejected(
          'WASM_IMPORT_NOT_ALLOWED',
          'import',
          `import ${key} is not on sandbox.allowedImports [${[...allowed].join(', ')}] (WASI needs '${WASI_ALLOW_ALL}' or the function by name)`,
          key,
        );
      }
      const sig = Object.hasOwn(WASI_FUNCTIONS, imp.name) ? WASI_FUNCTIONS[imp.name] : undefined;
      const type = info.types[imp.typeIndex];
      if (sig === undefined) {
        throw rejected(
          'WASM_IMPORT_NOT_ALLOWED',
          'import',
          `import ${key} is not a WASI preview 1 function`,
          key,
        );
      }
      if (type === undefined || !sameSignature(type, sig[0], sig[1])) {
        throw rejected(
          'WASM_IMPORT_NOT_ALLOWED',
          'import',
          `import ${key} must have type (${sig[0].join(', ')}) -> (${sig[1].join(', ')})`,
          key,
        );
      }
      wasi = true;
      continue;
    }
    if (!allowed.has(key)) {
      throw rejected(
        'WASM_IMPORT_NOT_ALLOWED',
        'import',
        `import ${key} is not on sandbox.allowedImports [${[...allowed].join(', ')}]`,
        key,
      );
    }
    const spec = HOST_FUNCTIONS[key];
    if (spec === undefined) {
      throw rejected(
        'WASM_IMPORT_NOT_ALLOWED',
        'import',
        `import ${key} is allowed but not provided by the host`,
        key,
      );
    }
    const type = info.types[imp.typeIndex];
    if (type === undefined || !sameSignature(type, spec.params, spec.results)) {
      throw rejected(
        'WASM_IMPORT_NOT_ALLOWED',
        'import',
        `import ${key} must have type (${spec.params.join(', ')}) -> (${spec.results.join(', ')})`,
        key,
      );
    }
    hostImports.push([imp.module, imp.name]);
  }

  if (info.memories.length > 1) {
    throw rejected(
      'WASM_FEATURE_NOT_ALLOWED',
      'multi-memory',
      `module defines ${info.memories.length} memories`,
    );
  }
  const mem = info.memories[0];
  if (mem !== undefined) {
    if (mem.shared) {
      throw rejected(
        'WASM_FEATURE_NOT_ALLOWED',
        'threads',
        'shared memory (threads) is not allowed',
        'memory',
      );
    }
    if (mem.memory64) {
      throw rejected(
        'WASM_FEATURE_NOT_ALLOWED',
        'memory64',
        '64-bit memory (memory64) is not allowed',
        'memory',
      );
    }
    const cap = sandbox.limits.memoryMb;
    const capPages = Math.floor(cap * PAGES_PER_MIB);
    if (mem.max === undefined) {
      throw new LimitExceededError(
        'memoryMb',
        cap,
        undefined,
        `memory declares no maximum (unbounded); it must declare one of at most ${capPages} pages (memoryMb, MiB)`,
      );
    }
    if (mem.max > capPages) {
      throw new LimitExceededError(
        'memoryMb',
        cap,
        mem.max / PAGES_PER_MIB,
        `memory declares max ${mem.max} pages (${mem.max / PAGES_PER_MIB} MiB), over the cap of ${capPages} pages (memoryMb, MiB)`,
      );
    }
  }

  checkTables(info.tables, mem?.max ?? 0, sandbox, maxTableElements);

  const memExport = info.exports.find((e) => e.name === 'memory');
  if (memExport === undefined || memExport.kind !== 'memory') {
    throw rejected('WASM_ABI', 'abi', 'module must export its linear memory as `memory`', 'memory');
  }
  const startType = exportedFunctionType(info, '_start');
  const command = startType !== undefined && sameSignature(startType, [], []);
  const allocType = exportedFunctionType(info, 'alloc');
  const hasAlloc = allocType !== undefined && sameSignature(allocType, ['i32'], ['i32']);
  if (!hasAlloc && !command) {
    throw rejected(
      'WASM_ABI',
      'abi',
      'module must export `alloc(len: i32) -> i32` (guest ABI) or `_start: () -> ()` (WASI command)',
      'alloc',
    );
  }

  const entries = new Set<string>();
  if (command) entries.add('_start');
  for (const e of info.exports) {
    if (e.kind !== 'function' || e.name === 'alloc') continue;
    const t = exportedFunctionType(info, e.name);
    if (hasAlloc && t !== undefined && sameSignature(t, ['i32', 'i32'], ['i64'])) entries.add(e.name);
  }
  return { hostImports, entries, wasi, command };
}

/**
 * What V8 spends per element of a table a module defines, rounded up: measured on V8 11.3
 * (Node 20), 16 bytes of JS heap (the reference and its slot in the instance's function table)
 * plus about 12 outside it (the indirect-call dispatch entry), 28.6 bytes of RSS in all.
 */
export const TABLE_ELEMENT_BYTES = 32;
/** V8 heap bytes per table element, and the share of a heap that tables may take (grow copies). */
const TABLE_ELEMENT_HEAP_BYTES = 16;
const TABLE_HEAP_SHARE = 4;

/**
 * The most table elements one instance may hold in an isolate with `maxOldGenerationSizeMb`
 * of heap: a quarter of it, because growing a table copies it (old and new are live at once)
 * and a single allocation past the heap limit is fatal to the whole process, not only to the
 * worker whose guest made it.
 */
export function tableElementCap(maxOldGenerationSizeMb: number): number {
  return Math.floor((maxOldGenerationSizeMb * MIB) / TABLE_HEAP_SHARE / TABLE_ELEMENT_HEAP_BYTES);
}

/**
 * Tables are engine memory the guest controls (table.grow), so they count against memoryMb with
 * linear memory: every table must declare a maximum, and linear memory's maximum plus
 * TABLE_ELEMENT_BYTES per table element must fit in memoryMb; the tables together must also fit
 * `maxTableElements` (tableElementCap of the heap they live in). `where` names the module
 * inside a component.
 */
export function checkTables(
  tables: readonly Limits[],
  memoryMaxPages: number,
  sandbox: SandboxSpec,
  maxTableElements: number,
  where = '',
): void {
  const cap = sandbox.limits.memoryMb;
  const of = where === '' ? '' : `${where}: `;
  let elements = 0;
  for (const [i, t] of tables.entries()) {
    if (t.max === undefined) {
      throw new LimitExceededError(
        'memoryMb',
        cap,
        undefined,
        `${of}table ${i} declares no maximum (unbounded: table.grow could take any amount of host memory); it must declare one within memoryMb`,
      );
    }
    elements += t.max;
  }
  if (elements > maxTableElements) {
    throw new LimitExceededError(
      'memoryMb',
      cap,
      undefined,
      `${of}tables declare ${elements} elements in all, over the ${maxTableElements} the engine heap allows (WasmBackendOptions.resourceLimits.maxOldGenerationSizeMb)`,
    );
  }
  const bytes = memoryMaxPages * WASM_PAGE_BYTES + elements * TABLE_ELEMENT_BYTES;
  if (bytes > cap * MIB) {
    throw new LimitExceededError(
      'memoryMb',
      cap,
      bytes / MIB,
      `${of}linear memory (max ${memoryMaxPages} pages) and tables (max ${elements} elements, ${TABLE_ELEMENT_BYTES} bytes each) need ${(bytes / MIB).toFixed(2)} MiB, over memoryMb`,
    );
  }
}

/**
 * Determinism flags (sandbox.determinism.flags) through which a sandbox opts in to a
 * feature whose results may differ between machines. Recorded in every receipt.
 */
export const FEATURE_OPT_IN: Readonly<Partial<Record<WasmFeature, string>>> = Object.freeze({
  'relaxed-simd': 'allow-relaxed-simd',
});

/**
 * Why each refused feature is refused. Features not listed (simd, bulk-memory,
 * reference-types, tail-call) are deterministic once NaNs are canonical and run everywhere;
 * exceptions and GC are refused earlier, by the instrumenter, which cannot meter them.
 */
const REFUSED: Readonly<Partial<Record<WasmFeature, string>>> = Object.freeze({
  threads: 'atomics and shared memory (threads) are not deterministic',
  'relaxed-simd': 'relaxed SIMD results are implementation-defined',
  'multi-memory': 'more than one memory is not allowed',
});

/** The feature gate over what the code uses (instrument.ts reports it). */
export function checkFeatures(features: ReadonlySet<WasmFeature>, sandbox: SandboxSpec): void {
  for (const f of [...features].sort()) {
    const why = REFUSED[f];
    if (why === undefined) continue;
    const optIn = FEATURE_OPT_IN[f];
    if (optIn !== undefined && sandbox.determinism.flags.includes(optIn)) continue;
    const how = optIn === undefined ? '' : ` unless the sandbox opts in with determinism flag '${optIn}'`;
    throw rejected('WASM_FEATURE_NOT_ALLOWED', f, `feature '${f}' is refused: ${why}${how}`, f);
  }
}
