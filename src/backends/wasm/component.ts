/**
 * WASI preview 2 command components in the `wasm` backend.
 *
 * Shape decision: a component is a Build of kind 'wasm' like a core module, told apart by its
 * artifact: `component.wasm` (createComponentBuild) instead of `module.wasm`. The backend, the
 * sandbox, the receipts and replay are the ones core modules use; one entry exists,
 * `wasi:cli/run` (stdin = input, stdout = output, as `_start` of a preview 1 command), so a
 * receipt's `entry` says the execution was a component run, and its determinism flags carry
 * the WASI policy (`wasi-virtual-clock`) as for preview 1. Not a fifth backend: everything
 * that makes a WASM result trustworthy (policy, fuel, depth, NaN policy, feature gate) applies
 * to a component's core modules unchanged.
 *
 * prepare:
 *   1. transpile with jco (`instantiation: 'sync'`, so WE pass every import and compile every
 *      core module), once per component digest (cached, bounded); jco is loaded on first use;
 *   2. imports: each WASI interface the component imports must be on the sandbox's
 *      allow-list (`wasi:*`, `wasi:<package>/*` or `wasi:<package>/<interface>`) and be one
 *      preview2.ts implements (wasi:sockets/* link, and fail every call); anything else is
 *      refused, naming the interface;
 *   3. each core module: memory maximum at or under memoryMb, instrumented (fuel, call depth,
 *      NaN canonicalization), feature-gated, compiled: once per (digest, metering).
 * run: on the calling thread, on one component instance per prepared build and sandbox, put
 * back after every run (component-instance.ts; memory size virtualized by component-memory.ts,
 * glue state by component-glue.ts); a run that threw, or a component the runner cannot put
 * back, gets a fresh instance. The preview 2 host is reset around every run. Each core module is
 * metered against `limits.fuel` separately and `fuelUsed` is their sum, so a component always
 * stops; that is also why a component needs `limits.fuel`: an unmetered one could only be
 * stopped by a worker, and the component path has none (yet).
 * A component's non-zero exit is exit code 1: the preview 1 adapter reports any proc_exit code
 * other than 0 as wasi:cli/exit `err`.
 */

import { createRequire } from 'node:module';
import { ProgramRejectedError } from '../../runtime/errors.js';
import type { SandboxSpec } from '../../runtime/types.js';
import { type AbiResult, abiResult, abiThrown } from './abi.js';
import { injectGlueReset } from './component-glue.js';
import { type CoreModuleFacts, instantiateComponent, type LiveComponent } from './component-instance.js';
import { virtualizeMemory } from './component-memory.js';
import { assertEngineValid } from './engine-validation.js';
import { type Instrumented, instrument, type MeteringConfig } from './instrument.js';
import { type Limits, type ModuleInfo, parseModule, WASM_PAGE_BYTES } from './module-info.js';
import { checkFeatures, checkTables } from './policy.js';
import {
  createPreview2Host,
  deniedInterface,
  PREVIEW2_DENIED_PREFIX,
  PREVIEW2_INTERFACES,
} from './preview2.js';
import type { SeededRandom } from './seeded-random.js';
import type { WasiFs } from './wasi-fs.js';
import { WA, type WasmInstance, type WasmModule } from './wasm-api.js';

/** The artifact name of a component inside a wasm build. */
export const COMPONENT_ARTIFACT = 'component.wasm';
/** The one entry of a command component. */
export const COMPONENT_ENTRY = 'wasi:cli/run';

/** What jco's sync instantiation hands back: the component's exports. */
type Instantiate = (
  getCoreModule: (name: string) => WasmModule,
  imports: Record<string, unknown>,
  instantiateCore: (module: WasmModule, imports: unknown) => WasmInstance,
) => Record<string, unknown>;

export interface Transpiled {
  readonly digest: string;
  readonly instantiate: Instantiate;
  /** Core modules by the name the glue asks for. */
  readonly coreModules: ReadonlyMap<string, Uint8Array>;
  /** Imported interfaces, `wasi:cli/environment` (versions dropped). */
  readonly imports: readonly string[];
  readonly exports: readonly string[];
  /** The glue hands over a reset of its resource tables (component-glue.ts): reuse is possible. */
  readonly resettable: boolean;
  readonly ms: number;
}

const TRANSPILE_CACHE_SIZE = 16;
const transpiled = new Map<string, Promise<Transpiled>>();

/** `\0asm` then the component layer's version (0x0d 0x00) and layer 1. */
export function isComponent(bytes: Uint8Array): boolean {
  return (
    bytes.byteLength >= 8 &&
    bytes[0] === 0 &&
    bytes[1] === 0x61 &&
    bytes[2] === 0x73 &&
    bytes[3] === 0x6d &&
    bytes[6] === 1 &&
    bytes[7] === 0
  );
}

let jco: Promise<typeof import('@bytecodealliance/jco')> | undefined;

/** The jco version, for build manifests (read from its package.json, no load). */
export function jcoVersion(): string {
  const req = createRequire(import.meta.url);
  try {
    const pkg = req('@bytecodealliance/jco/package.json') as { version: string };
    return pkg.version;
  } catch {
    // jco's exports map may hide package.json: find it beside the resolved entry.
    const entry = req.resolve('@bytecodealliance/jco');
    const root = entry.slice(0, entry.lastIndexOf('/dist/'));
    return (req(`${root}/package.json`) as { version: string }).version;
  }
}

/** Transpile once per component digest. A failure is not cached. */
export function transpileOnce(bytes: Uint8Array, digest: string): Promise<Transpiled> {
  let t = transpiled.get(digest);
  if (t === undefined) {
    t = transpile(bytes, digest);
    transpiled.set(digest, t);
    t.catch(() => transpiled.delete(digest));
    if (transpiled.size > TRANSPILE_CACHE_SIZE) {
      const oldest = transpiled.keys().next().value;
      if (oldest !== undefined) transpiled.delete(oldest);
    }
  }
  return t;
}

async function transpile(bytes: Uint8Array, digest: string): Promise<Transpiled> {
  if (!isComponent(bytes)) {
    const core =
      bytes.byteLength >= 8 && bytes[4] === 1 && bytes[5] === 0 && bytes[6] === 0 && bytes[7] === 0;
    throw new ProgramRejectedError(
      'WASM_MALFORMED',
      'malformed',
      core
        ? 'not a component: this is a core module (build it with createWasmBuild)'
        : 'not a component: the bytes do not start with the component header (\\0asm, version 0x0d, layer 1)',
    );
  }
  const t0 = performance.now();
  jco ??= import('@bytecodealliance/jco');
  let out: Awaited<ReturnType<Awaited<NonNullable<typeof jco>>['transpile']>>;
  try {
    out = await (await jco).transpile(bytes, {
      name: 'component',
      instantiation: { tag: 'sync' } as unknown as 'sync',
      noTypescript: true,
      quiet: true,
    });
  } catch (err) {
    throw new ProgramRejectedError(
      'WASM_MALFORMED',
      'malformed',
      `invalid component: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const generated = out.files['component.js'];
  if (generated === undefined)
    throw new ProgramRejectedError('WASM_MALFORMED', 'malformed', 'jco produced no component.js');
  const withReset = injectGlueReset(new TextDecoder().decode(generated));
  const js = withReset ?? generated;
  // The glue has no imports of its own in instantiation mode: a data: URL loads it without
  // touching the disk.
  const url = `data:text/javascript;base64,${Buffer.from(js).toString('base64')}`;
  const mod = (await import(url)) as { instantiate: Instantiate };
  const coreModules = new Map<string, Uint8Array>();
  for (const [name, b] of Object.entries(out.files)) if (name.endsWith('.wasm')) coreModules.set(name, b);
  return {
    digest,
    instantiate: mod.instantiate,
    coreModules,
    imports: out.imports.map(unversioned),
    exports: out.exports.map(([name]) => unversioned(name)),
    resettable: withReset !== undefined,
    ms: performance.now() - t0,
  };
}

const unversioned = (name: string): string => name.replace(/@[^/]*$/, '');

/** Refuse imports the sandbox does not allow or this host does not implement, naming each. */
export function checkComponentImports(t: Transpiled, sandbox: SandboxSpec): void {
  const allowed = new Set(sandbox.allowedImports);
  for (const name of t.imports) {
    const pkg = name.slice(0, name.indexOf('/') + 1);
    if (
      !(allowed.has('wasi:*') && name.startsWith('wasi:')) &&
      !allowed.has(`${pkg}*`) &&
      !allowed.has(name)
    ) {
      throw new ProgramRejectedError(
        'WASM_IMPORT_NOT_ALLOWED',
        'import',
        `component import ${name} is not allowed by the sandbox (allow 'wasi:*', '${pkg}*' or '${name}')`,
        name,
      );
    }
    if (!PREVIEW2_INTERFACES.includes(name) && !name.startsWith(PREVIEW2_DENIED_PREFIX)) {
      throw new ProgramRejectedError(
        'WASM_IMPORT_NOT_ALLOWED',
        'import',
        `component import ${name} has no host in thunderpac (WASI cli, clocks, filesystem, io, random only)`,
        name,
      );
    }
  }
  if (!t.exports.includes(COMPONENT_ENTRY)) {
    throw new ProgramRejectedError(
      'WASM_NO_SUCH_EXPORT',
      'entry',
      `component exports no ${COMPONENT_ENTRY}; exports: ${t.exports.join(', ') || '(none)'}`,
      COMPONENT_ENTRY,
    );
  }
}

export interface CompiledComponent {
  readonly modules: ReadonlyMap<string, WasmModule>;
  /** Per compiled module, what the instance runner needs (component-instance.ts). */
  readonly facts: ReadonlyMap<WasmModule, CoreModuleFacts>;
  /** Why one instance cannot be reused across runs; undefined when it can. */
  readonly notReusable: string | undefined;
  /** The component's first core module (the guest's own code; the others are jco's and the adapter's). */
  readonly main: {
    readonly module: WasmModule;
    readonly info: ModuleInfo;
    readonly instrumented: Instrumented;
  };
}

/** Core modules checked, instrumented and compiled for one metering config. */
export async function compileCoreModules(
  t: Transpiled,
  sandbox: SandboxSpec,
  metering: MeteringConfig,
  /** The most table elements one core module's instance may hold (policy.ts tableElementCap). */
  maxTableElements: number,
): Promise<CompiledComponent> {
  const capPages = sandbox.limits.memoryMb * ((1 << 20) / WASM_PAGE_BYTES);
  const compiled = new Map<string, WasmModule>();
  const facts = new Map<WasmModule, CoreModuleFacts>();
  let main: CompiledComponent['main'] | undefined;
  // Reuse needs every core module's memory size virtualized (component-memory.ts), no table
  // or segment mutation, and the glue's reset hook; otherwise each run gets a fresh instance.
  const instrumentedAll: [string, Uint8Array, ModuleInfo, Instrumented][] = [];
  let notReusable = t.resettable ? undefined : 'the jco glue has no reset hook';
  const tables: Limits[] = [];
  let memoryPages = 0;
  for (const [name, bytes] of t.coreModules) {
    const info = parseModule(bytes);
    for (const m of info.memories) {
      if (m.max === undefined || m.max > capPages || m.shared || m.memory64) {
        throw new ProgramRejectedError(
          'WASM_MEMORY_LIMIT',
          'memory',
          `core module ${name}: memory maximum ${m.max ?? 'none'} pages is not within memoryMb (${capPages} pages)` +
            (m.shared ? ', and shared' : '') +
            (m.memory64 ? ', and 64-bit' : ''),
          name,
        );
      }
    }
    // All core modules are instantiated together: their tables and memories share one budget.
    tables.push(...info.tables);
    memoryPages += info.memories.reduce((n, m) => n + (m.max ?? 0), 0);
    checkTables(tables, memoryPages, sandbox, maxTableElements, `core modules up to ${name}`);
    const instrumented: Instrumented = instrument(bytes, info, metering);
    checkFeatures(instrumented.features, sandbox);
    // As for a plain module (backend.ts): V8 judges the core module as written first.
    await assertEngineValid(bytes, `core module ${name}`);
    if (instrumented.mutatesInstance) notReusable ??= `core module ${name} mutates tables or segments`;
    instrumentedAll.push([name, bytes, info, instrumented]);
  }
  const virtual = new Map<string, Uint8Array>();
  if (notReusable === undefined) {
    for (const [name, , , instrumented] of instrumentedAll) {
      const v = virtualizeMemory(instrumented.bytes);
      if (v.kind === 'unsupported') notReusable ??= `core module ${name}: ${v.why}`;
      else if (v.kind === 'rewritten') virtual.set(name, v.bytes);
    }
    if (notReusable !== undefined) virtual.clear();
  }
  for (const [name, , info, instrumented] of instrumentedAll) {
    let module: WasmModule;
    try {
      module = await WA.compile(virtual.get(name) ?? instrumented.bytes);
    } catch (err) {
      throw new ProgramRejectedError('WASM_MALFORMED', 'malformed', `core module ${name}: ${String(err)}`);
    }
    compiled.set(name, module);
    const mem = info.memories[0];
    facts.set(module, {
      virtualPages: virtual.has(name),
      memory:
        notReusable === undefined && mem !== undefined
          ? { min: mem.min, max: mem.max ?? mem.min }
          : undefined,
    });
    main ??= { module, info, instrumented };
  }
  if (main === undefined)
    throw new ProgramRejectedError('WASM_MALFORMED', 'malformed', 'component has no core module');
  const result: CompiledComponent = { modules: compiled, facts, notReusable, main };
  compiledOf.set(compiled, result);
  return result;
}

/**
 * The compiled component a modules map belongs to: backend.ts hands the runner
 * `compiled.modules`, and the runner finds the facts about them here.
 */
const compiledOf = new WeakMap<ReadonlyMap<string, WasmModule>, CompiledComponent>();

/**
 * Runs one prepared component: the preview 2 host and the compiled core modules, on one
 * instance reused across runs where it can be put back (component-instance.ts). Held by a
 * WasmPrepared (backend.ts), whose `entries` is just COMPONENT_ENTRY.
 */
export class ComponentRunner {
  readonly #host: ReturnType<typeof createPreview2Host>;
  readonly #imports: Record<string, unknown>;
  readonly #compiled: CompiledComponent | undefined;
  #live: LiveComponent | undefined;
  /**
   * Reuse one instance across runs (the default where the component allows it). Off, every run
   * instantiates afresh, on the same modules and the same memory sizing: tests compare both.
   */
  reuse = true;

  constructor(
    readonly transpiled: Transpiled,
    readonly modules: ReadonlyMap<string, WasmModule>,
    readonly metering: MeteringConfig,
    args: readonly string[],
    env: readonly string[],
    fs: WasiFs | undefined,
    random: SeededRandom,
  ) {
    this.#host = createPreview2Host({ args, env }, fs, random);
    const imports: Record<string, unknown> = { ...this.#host.imports };
    for (const name of transpiled.imports) {
      if (name.startsWith(PREVIEW2_DENIED_PREFIX)) imports[name] = deniedInterface();
    }
    this.#imports = imports;
    this.#compiled = compiledOf.get(modules);
  }

  /** Why runs cannot share one instance; undefined when they do. */
  get notReusable(): string | undefined {
    return this.#compiled === undefined ? 'modules not from compileCoreModules' : this.#compiled.notReusable;
  }

  /** Drop the live instance (dispose). */
  clear(): void {
    this.#live = undefined;
  }

  #instantiate(): LiveComponent {
    return instantiateComponent({
      instantiate: this.transpiled.instantiate,
      modules: this.modules,
      facts: this.#compiled?.facts ?? new Map(),
      imports: this.#imports,
      entry: COMPONENT_ENTRY,
      fuelLimit: this.metering.fuel ?? -1,
      depthLimit: this.metering.callDepth,
      reusable: this.reuse && this.notReusable === undefined,
      unversioned,
    });
  }

  /** One execution of wasi:cli/run; never throws. */
  run(input: Uint8Array, maxOutputBytes: number): AbiResult {
    const fuelLimit = this.metering.fuel ?? -1;
    const depthLimit = this.metering.callDepth;
    this.#host.begin(input, maxOutputBytes);
    let r: AbiResult;
    let live: LiveComponent | undefined;
    let returned = false;
    try {
      live = this.#live ?? this.#instantiate();
      this.#live = undefined; // held again below only if it can be put back
      if (live.run === undefined) {
        r = abiResult(null, 'NO_SUCH_EXPORT', `no ${COMPONENT_ENTRY}`, 0, undefined);
      } else {
        live.run();
        returned = true;
        r = abiResult(new Uint8Array(0), null, '', 0, undefined);
      }
    } catch (err) {
      // jco wraps an `err` result of run in a ComponentError: that is exit code 1.
      const payload = (err as { payload?: unknown } | null)?.payload;
      r =
        err instanceof Error && 'payload' in err && payload === undefined
          ? abiResult(null, 'GUEST_EXIT', 'exited with code 1', 1, undefined)
          : abiThrown(err, undefined);
      if (r.failure === 'GUEST_EXIT' && r.value === 0)
        r = abiResult(new Uint8Array(0), null, '', 0, undefined);
    }
    // Fuel: the sum over core modules; a trap any counter explains is FUEL or DEPTH.
    const counters = live?.counters ?? { fuel: [], depth: [] };
    let used = -1;
    let failure = r.failure;
    let message = r.message;
    if (fuelLimit >= 0) {
      used = 0;
      for (const c of counters.fuel) used += fuelLimit - Number(c.value);
    }
    if (failure === 'GUEST_TRAP' || failure === 'STACK' || failure === 'INTERNAL') {
      if (counters.fuel.some((c) => Number(c.value) < 0)) {
        failure = 'FUEL';
        message = `out of fuel: charged ${used}`;
      } else if (counters.depth.some((c) => Number(c.value) > depthLimit)) {
        failure = 'DEPTH';
        message = `call depth passed ${depthLimit}`;
      }
    }
    const memoryBytes = live?.memory === undefined ? 0 : live.memory.buffer.byteLength;
    const streams = this.#host.end();
    // Only a run that returned is put back: one that threw left jco's glue marked trapped.
    if (returned && this.reuse && live?.restore() === true) this.#live = live;
    return {
      output: r.output === null || failure !== r.failure ? null : streams.stdout,
      failure,
      message,
      value: r.value,
      memoryBytes,
      fuelUsed: used,
      stderr: streams.stderr,
    };
  }
}
