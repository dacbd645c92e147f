/**
 * The `wasm` backend: core modules that follow the thunderpac guest ABI (see abi.ts).
 *
 * prepare: parse (module-info.ts) → policy (policy.ts) → instrument (instrument.ts: fuel when
 *   `limits.fuel` is set, a call-depth counter, NaN canonicalization unless the sandbox says
 *   'nan-native') → feature gate → V8 validates the ORIGINAL bytes (engine-validation.ts) →
 *   compile once. The instrumented, compiled module is cached per build and metering config.
 * run, on one of two paths sharing abi.ts:
 *   - worker: a worker_threads pool, a fresh instance per execution; a wall-clock timer
 *     terminates the worker at `timeoutMs`, so a runaway guest cannot hold the caller.
 *   - in-thread: on the calling thread, one instance reused with its state restored after
 *     each execution (instance-reuse.ts). No wall-clock enforcement: fuel bounds the guest.
 * `path: 'auto'` (default) picks in-thread for fuel-metered modules, worker otherwise.
 *
 * WASI (wasi.ts): a module that imports `wasi_snapshot_preview1` (allowed by the sandbox) or
 * exports `_start` gets a deterministic WASI host on either path; entry `_start` then runs as
 * a command (stdin = input, stdout = output, stderr into usage.stderr, proc_exit code ≠ 0 →
 * GuestExitError), always on a fresh instance.
 */

import fs from 'node:fs';
import os from 'node:os';
import type { ResourceLimits } from 'node:worker_threads';
import { artifact, type Build, createBuild } from '../../runtime/build.js';
import {
  GuestError,
  GuestExitError,
  LimitExceededError,
  ProgramRejectedError,
  ThunderpacError,
  ValidationError,
} from '../../runtime/errors.js';
import type {
  Backend,
  Input,
  Output,
  Prepared,
  PreparedCost,
  RunContext,
  SandboxSpec,
  Schema,
} from '../../runtime/types.js';
import type { AbiResult } from './abi.js';
import './determinism.js';
import { assertEngineValid } from './engine-validation.js';
import { createGuestStdio } from './guest-stdio.js';
import { createHostImports, type HostState } from './host.js';
import { InThreadRunner } from './instance-reuse.js';
import { type Instrumented, instrument, type MeteringConfig } from './instrument.js';
import { type ModuleInfo, parseModule } from './module-info.js';
import { checkFeatures, checkModule, tableElementCap } from './policy.js';
import { WorkerPool } from './pool.js';
import { createWasi, type WasiConfig } from './wasi.js';
import {
  COMPONENT_ARTIFACT,
  COMPONENT_ENTRY,
  type CompiledComponent,
  ComponentRunner,
  checkComponentImports,
  compileCoreModules,
  jcoVersion,
  transpileOnce,
} from './component.js';
import { createMemFs, type MemFsConfig } from './memfs.js';
import { createSeededRandom } from './seeded-random.js';
import { createReadOnlyFs } from './wasi-fs.js';
import { foldWasiPath } from './wasi-path.js';
import { WA, type WasmModule } from './wasm-api.js';

/** The artifact name of the module inside a wasm build. */
export const WASM_ARTIFACT = 'module.wasm';

export type WasmPath = 'auto' | 'worker' | 'in-thread';

export interface WasmBackendOptions {
  /** Where executions run (default 'auto'). */
  readonly path?: WasmPath;
  /** Worker threads in the pool (default min(2, cores)); spawned lazily. */
  readonly workers?: number;
  /** V8 heap/stack limits of each worker (guest linear memory is capped by the policy instead). */
  readonly resourceLimits?: ResourceLimits;
  /** Call-depth limit when the sandbox sets none (default 1024). */
  readonly callDepth?: number;
}

/**
 * Deep enough for ordinary recursion (qsort, parsers), shallow enough that V8's stack (984 KiB
 * on the main thread) holds it for ordinary frames, so the counter, not V8, decides.
 */
export const DEFAULT_CALL_DEPTH = 1024;

/** Compiled instrumented modules kept per (build, metering config); bounded, oldest out first. */
const MODULE_CACHE_SIZE = 64;

interface CachedModule {
  readonly instrumented: Instrumented;
  /** Compiled on the first prepare that passes the feature gate; a failure is not kept. */
  module: Promise<WasmModule> | undefined;
}

const DEFAULT_RESOURCE_LIMITS: ResourceLimits = Object.freeze({
  maxOldGenerationSizeMb: 64,
  maxYoungGenerationSizeMb: 16,
  stackSizeMb: 4,
});

// V8's default --stack-size on 64-bit hosts (984 KiB): the in-thread path's call stack.
const MAIN_THREAD_STACK_BYTES = 984 * 1024;

export class WasmPrepared implements Prepared {
  readonly backend = 'wasm' as const;
  #disposed = false;

  constructor(
    readonly buildId: string,
    /**
     * Build id + metering config (the identity of the module actually compiled), plus the WASI
     * config where there is one: workers cache imports per key, and WASI imports carry the
     * seed and the preopen.
     */
    readonly key: string,
    readonly module: WasmModule,
    readonly info: ModuleInfo,
    /** Host functions the module imports, as [module, name]; each allowed and provided. */
    readonly hostImports: readonly (readonly [string, string])[],
    /** Exports callable as entries: (i32, i32) -> i64. */
    readonly entries: ReadonlySet<string>,
    readonly path: 'worker' | 'in-thread',
    readonly metering: MeteringConfig,
    /** What instrumentation found and did (features, charge sites, rewrite time). */
    readonly instrumented: Instrumented,
    /** In-thread path only. */
    readonly runner: InThreadRunner | undefined,
    /** WASI settings, when the module imports WASI or is a command. */
    readonly wasi: WasiConfig | undefined,
    /** A command component (component.ts): runs instead of `module`, whose first core module it is. */
    readonly component?: ComponentRunner,
  ) {}

  /** Fuel per execution, -1 when not metered. */
  get fuelLimit(): number {
    return this.metering.fuel ?? -1;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** @internal */
  markDisposed(): void {
    this.#disposed = true;
  }
}

export class WasmBackend implements Backend<WasmPrepared> {
  readonly name = 'wasm' as const;
  /**
   * The worker path kills its guest at timeoutMs; metered guests stop on fuel. An unmetered
   * in-thread guest runs synchronously, where no timer could interrupt it anyway.
   */
  readonly enforcesTimeout = true;
  /** Under a fuel limit every path (in-thread, worker, WASI command) counts fuel. */
  readonly metersFuel = true;
  readonly versions: Readonly<Record<string, string>> = Object.freeze({
    v8: process.versions.v8,
    node: process.versions.node,
  });
  readonly #path: WasmPath;
  readonly #pool: WorkerPool;
  readonly #stackBytes: number;
  readonly #callDepth: number;
  readonly #maxTableElements: number;
  readonly #modules = new Map<string, CachedModule>();
  /** Compiled core modules of components per (component digest, metering config). */
  readonly #components = new Map<string, Promise<CompiledComponent>>();

  constructor(opts: WasmBackendOptions = {}) {
    this.#path = opts.path ?? 'auto';
    const resourceLimits = { ...DEFAULT_RESOURCE_LIMITS, ...opts.resourceLimits };
    const stackMb = resourceLimits.stackSizeMb ?? 4;
    // Below ~0.5 MiB Node's own worker bootstrap overflows, and at 0.1 MiB that takes the
    // whole process down: refuse such settings outright.
    if (!(stackMb >= 1)) {
      throw new ValidationError(
        'range',
        'WasmBackendOptions.resourceLimits.stackSizeMb',
        '>= 1',
        String(stackMb),
      );
    }
    this.#stackBytes = stackMb * (1 << 20);
    // Tables live on the engine heap: each instance's are capped by the workers' heap, on both
    // paths (the cap must not depend on where an execution runs).
    this.#maxTableElements = tableElementCap(
      resourceLimits.maxOldGenerationSizeMb ?? DEFAULT_RESOURCE_LIMITS.maxOldGenerationSizeMb!,
    );
    this.#callDepth = opts.callDepth ?? DEFAULT_CALL_DEPTH;
    if (!Number.isSafeInteger(this.#callDepth) || this.#callDepth < 1 || this.#callDepth > 2 ** 31 - 1) {
      throw new ValidationError(
        'range',
        'WasmBackendOptions.callDepth',
        'an integer in [1, 2^31)',
        String(opts.callDepth),
      );
    }
    const size = opts.workers ?? Math.min(2, os.availableParallelism());
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new ValidationError('range', 'WasmBackendOptions.workers', 'an integer >= 1', String(size));
    }
    this.#pool = new WorkerPool({ size, resourceLimits });
  }

  async prepare(build: Build, sandbox: SandboxSpec): Promise<WasmPrepared> {
    if (build.manifest.kind !== 'wasm') {
      throw new ProgramRejectedError(
        'WASM_WRONG_KIND',
        'kind',
        `build ${build.id} is a '${build.manifest.kind}' build, not 'wasm'`,
      );
    }
    if (build.artifacts.has(COMPONENT_ARTIFACT)) return this.#prepareComponent(build, sandbox);
    const bytes = artifact(build, WASM_ARTIFACT);
    const info = parseModule(bytes);
    const {
      hostImports,
      entries,
      wasi: importsWasi,
      command,
    } = checkModule(info, sandbox, this.#maxTableElements);
    const wasi: WasiConfig | undefined =
      importsWasi || command
        ? {
            args: sandbox.wasi?.args ?? [build.manifest.name],
            env: Object.entries(sandbox.wasi?.env ?? {}).map(([k, v]) => `${k}=${v}`),
            seed: sandbox.determinism.seed,
            dir: preopen(sandbox),
            ...memoryFs(sandbox),
            command,
          }
        : undefined;
    const metering: MeteringConfig = {
      fuel: sandbox.limits.fuel,
      callDepth: sandbox.limits.callDepth ?? this.#callDepth,
      nanCanonical: !sandbox.determinism.flags.includes('nan-native'),
      deferStart: true, // abi.ts and instance-reuse.ts call the start function themselves
    };
    if (metering.callDepth > 2 ** 31 - 1) {
      // The limit is an i32 constant in the instrumented code.
      throw new ValidationError('range', 'sandbox.limits.callDepth', '< 2^31', String(metering.callDepth));
    }
    const key = `${build.id}:${metering.fuel ?? '-'}:${metering.callDepth}:${metering.nanCanonical ? 'c' : 'n'}`;
    const cached = this.#cached(key, bytes, info, metering);
    const instrumented = cached.instrumented;
    // The gate before V8 sees the code: a refusal names the feature, not V8's opcode error.
    checkFeatures(instrumented.features, sandbox);
    if (cached.module === undefined) {
      // V8 judges the bytes as the author wrote them before the instrumented ones are compiled:
      // instrumentation appends globals and types an invalid guest could otherwise reach
      // (engine-validation.ts). After the feature gate, so a refused feature is named as such.
      cached.module = assertEngineValid(bytes).then(() => compile(instrumented.bytes));
      cached.module.catch(() => this.#modules.delete(key));
    }
    const module = await cached.module;
    const path = this.#path === 'auto' ? (metering.fuel !== undefined ? 'in-thread' : 'worker') : this.#path;
    const runner =
      path === 'in-thread' ? this.#runner(module, hostImports, instrumented, metering, wasi) : undefined;
    return new WasmPrepared(
      build.id,
      wasi === undefined ? key : `${key}:wasi:${wasiKey(wasi, sandbox)}`,
      module,
      info,
      hostImports,
      entries,
      path,
      metering,
      instrumented,
      runner,
      wasi,
    );
  }

  #runner(
    module: WasmModule,
    hostImports: readonly (readonly [string, string])[],
    instrumented: Instrumented,
    metering: MeteringConfig,
    wasiConfig: WasiConfig | undefined,
  ): InThreadRunner {
    const host: HostState = { memory: undefined };
    const imports = createHostImports(hostImports, host);
    let wasi: ReturnType<typeof createWasi> | undefined;
    if (wasiConfig !== undefined) {
      const rofs =
        wasiConfig.memory !== undefined
          ? createMemFs(wasiConfig.memory, foldWasiPath)
          : wasiConfig.dir === undefined
            ? undefined
            : createReadOnlyFs(fs, wasiConfig.dir, foldWasiPath);
      wasi = createWasi(wasiConfig, host, rofs, createSeededRandom(wasiConfig.seed), createGuestStdio());
      imports.wasi_snapshot_preview1 = wasi.imports;
    }
    return new InThreadRunner(
      module,
      imports,
      host,
      instrumented,
      metering.fuel ?? -1,
      metering.callDepth,
      wasi,
      wasiConfig?.command ?? false,
    );
  }

  /** Instrumentation (and, once a sandbox passes the gate, compilation) once per key. */
  #cached(key: string, bytes: Uint8Array, info: ModuleInfo, metering: MeteringConfig): CachedModule {
    let c = this.#modules.get(key);
    if (c === undefined) {
      c = { instrumented: instrument(bytes, info, metering), module: undefined };
      this.#modules.set(key, c);
      if (this.#modules.size > MODULE_CACHE_SIZE) {
        const oldest = this.#modules.keys().next().value;
        if (oldest !== undefined) this.#modules.delete(oldest);
      }
    }
    return c;
  }

  /**
   * `run` without a promise where the module runs on this thread (Backend.runSync): the
   * executor's hot path then needs no await. undefined: this prepared module runs elsewhere.
   */
  runSync(prepared: WasmPrepared, input: Input, ctx: RunContext): Output | undefined {
    const runner = prepared.runner;
    if (runner === undefined || prepared.component !== undefined) return undefined;
    const bytes = this.#admitInput(prepared, input, ctx);
    return this.#settle(runner.run(ctx.entry, bytes, ctx.sandbox.limits.maxOutputBytes), prepared, ctx);
  }

  /** The checks every run starts with; returns the input bytes. */
  #admitInput(prepared: WasmPrepared, input: Input, ctx: RunContext): Uint8Array {
    if (input.kind !== 'bytes') throw new ValidationError('type', 'input.kind', "'bytes'", input.kind);
    if (prepared.disposed) {
      throw new ThunderpacError('WASM_DISPOSED', `prepared module of build ${prepared.buildId} was disposed`);
    }
    if (!prepared.entries.has(ctx.entry)) throw noSuchExport(prepared, ctx.entry);
    const limits = ctx.sandbox.limits;
    if (input.bytes.byteLength > limits.maxInputBytes) {
      throw new LimitExceededError('maxInputBytes', limits.maxInputBytes, input.bytes.byteLength);
    }
    return input.bytes;
  }

  /** Usage into ctx; the output, or the failure as a typed error. */
  #settle(r: AbiResult, prepared: WasmPrepared, ctx: RunContext): Output {
    if (r.memoryBytes > 0) ctx.usage.peakMemoryBytes = r.memoryBytes;
    if (r.stderr !== null) ctx.usage.stderr = r.stderr;
    if (r.fuelUsed >= 0) ctx.usage.fuelUsed = r.fuelUsed;
    if (r.output !== null) return { kind: 'bytes', bytes: r.output };
    throw this.#failure(r, prepared, ctx);
  }

  async run(prepared: WasmPrepared, input: Input, ctx: RunContext): Promise<Output> {
    const bytes = this.#admitInput(prepared, input, ctx);
    const entry = ctx.entry;
    const limits = ctx.sandbox.limits;
    const r =
      prepared.component !== undefined
        ? prepared.component.run(bytes, limits.maxOutputBytes)
        : prepared.runner === undefined
          ? await this.#pool.exec(
              prepared.key,
              prepared.module,
              prepared.hostImports,
              !prepared.info.hasStart,
              entry,
              // A private copy whose buffer can be transferred: the caller keeps its bytes
              // (it hashes them for the receipt) and a view into a larger buffer (a pooled
              // Buffer) would otherwise clone the whole backing store.
              bytes.slice(),
              limits.maxOutputBytes,
              limits.timeoutMs,
              prepared.fuelLimit,
              prepared.metering.callDepth,
              limits.memoryMb,
              prepared.wasi,
            )
          : prepared.runner.run(entry, bytes, limits.maxOutputBytes);
    return this.#settle(r, prepared, ctx);
  }

  async dispose(prepared: WasmPrepared): Promise<void> {
    prepared.markDisposed();
    prepared.runner?.clear();
    this.#pool.drop(prepared.key);
  }

  /**
   * What a prepared module holds, estimated for the executor's prepared-program cache: its
   * instrumented code (V8's compiled code is a few times that) and, on the in-thread path, an
   * instance's initial linear memory. No fds.
   */
  cost(prepared: WasmPrepared): PreparedCost {
    const code = prepared.instrumented.bytes.byteLength * 4;
    const pages = prepared.runner === undefined ? 0 : (prepared.info.memories[0]?.min ?? 0);
    return { fds: 0, bytes: code + pages * 65_536 };
  }

  /** A command component (component.ts): transpiled once per digest, core modules per metering. */
  async #prepareComponent(build: Build, sandbox: SandboxSpec): Promise<WasmPrepared> {
    const ref = build.manifest.artifacts[COMPONENT_ARTIFACT];
    const t = await transpileOnce(artifact(build, COMPONENT_ARTIFACT), ref?.digest ?? build.id);
    checkComponentImports(t, sandbox);
    if (sandbox.limits.fuel === undefined) {
      throw new ProgramRejectedError(
        'WASM_COMPONENT_NEEDS_FUEL',
        'limits',
        'a component runs in-thread, where only fuel can stop it: set sandbox.limits.fuel',
      );
    }
    const metering: MeteringConfig = {
      fuel: sandbox.limits.fuel,
      callDepth: sandbox.limits.callDepth ?? this.#callDepth,
      nanCanonical: !sandbox.determinism.flags.includes('nan-native'),
    };
    const key = `${t.digest}:${metering.fuel}:${metering.callDepth}:${metering.nanCanonical ? 'c' : 'n'}`;
    let compiling = this.#components.get(key);
    if (compiling === undefined) {
      compiling = compileCoreModules(t, sandbox, metering, this.#maxTableElements);
      this.#components.set(key, compiling);
      compiling.catch(() => this.#components.delete(key));
      if (this.#components.size > MODULE_CACHE_SIZE) {
        const oldest = this.#components.keys().next().value;
        if (oldest !== undefined) this.#components.delete(oldest);
      }
    }
    const memory = memoryFs(sandbox).memory;
    const dir = preopen(sandbox);
    const files =
      memory !== undefined
        ? createMemFs(memory, foldWasiPath)
        : dir === undefined
          ? undefined
          : createReadOnlyFs(fs, dir, foldWasiPath);
    const compiled = await compiling;
    const runner = new ComponentRunner(
      t,
      compiled.modules,
      metering,
      sandbox.wasi?.args ?? [build.manifest.name],
      Object.entries(sandbox.wasi?.env ?? {}).map(([k, v]) => `${k}=${v}`),
      files,
      createSeededRandom(sandbox.determinism.seed),
    );
    return new WasmPrepared(
      build.id,
      key,
      compiled.main.module,
      compiled.main.info,
      [],
      new Set([COMPONENT_ENTRY]),
      'in-thread',
      metering,
      compiled.main.instrumented,
      undefined,
      undefined,
      runner,
    );
  }

  /** Terminate the worker pool. Pending executions fail with WASM_BACKEND_CLOSED. */
  close(): Promise<void> {
    return this.#pool.close();
  }

  #failure(r: AbiResult, prepared: WasmPrepared, ctx: RunContext): Error {
    switch (r.failure) {
      case 'GUEST_ERROR':
        return new GuestError('GUEST_ERROR', `guest '${ctx.entry}' reported error ${r.value}`);
      case 'GUEST_TRAP':
        return new GuestError('GUEST_TRAP', `guest '${ctx.entry}' trapped: ${r.message}`);
      case 'GUEST_EXIT':
        return new GuestExitError(ctx.entry, r.value, r.stderr ?? new Uint8Array(0));
      case 'GUEST_ABORT':
        return new GuestError('GUEST_ABORT', `guest '${ctx.entry}' aborted: ${r.message}`);
      case 'GUEST_BAD_OUTPUT':
        return new GuestError('GUEST_BAD_OUTPUT', `guest '${ctx.entry}': ${r.message}`);
      case 'OUTPUT_LIMIT':
        return new LimitExceededError(
          'maxOutputBytes',
          ctx.sandbox.limits.maxOutputBytes,
          r.value,
          `guest '${ctx.entry}' output exceeds maxOutputBytes`,
        );
      case 'FUEL':
        return new LimitExceededError(
          'fuel',
          prepared.fuelLimit,
          r.fuelUsed,
          `guest '${ctx.entry}' ran out of fuel`,
        );
      case 'DEPTH':
        return new LimitExceededError(
          'callDepth',
          prepared.metering.callDepth,
          prepared.metering.callDepth + 1,
          `guest '${ctx.entry}' nested calls deeper than callDepth`,
        );
      case 'STACK':
        return new LimitExceededError(
          'callDepth',
          prepared.path === 'worker' ? this.#stackBytes : MAIN_THREAD_STACK_BYTES,
          undefined,
          `guest '${ctx.entry}' exhausted the call stack (allowed: stack bytes)`,
        );
      case 'NO_SUCH_EXPORT':
        return noSuchExport(prepared, ctx.entry);
      case 'ABI':
        return new ProgramRejectedError('WASM_ABI', 'abi', r.message);
      case 'INSTANTIATE':
        return new ThunderpacError('WASM_INSTANTIATE', `could not instantiate the module: ${r.message}`);
      default:
        return new ThunderpacError('WASM_INTERNAL', r.message);
    }
  }
}

/** The memory tree the WASI host preopens, when the sandbox's fs is one. */
function memoryFs(sandbox: SandboxSpec): { memory?: MemFsConfig } {
  if (sandbox.fs.kind !== 'memory') return {};
  if (sandbox.fsTree === undefined) {
    throw new ValidationError(
      'missing',
      'sandbox.fsTree',
      `the files of memory fs ${sandbox.fs.digest}`,
      'none',
    );
  }
  return { memory: { tree: sandbox.fsTree, writable: sandbox.fs.writable, maxBytes: sandbox.fs.maxBytes } };
}

/**
 * What makes two WASI hosts differ, for the workers' per-key cache: seed, argv, env and the
 * filesystem (a directory by path, a tree by digest).
 */
function wasiKey(wasi: WasiConfig, sandbox: SandboxSpec): string {
  const fsKey =
    sandbox.fs.kind === 'memory'
      ? [sandbox.fs.digest, sandbox.fs.writable, sandbox.fs.maxBytes]
      : (wasi.dir ?? null);
  return JSON.stringify([wasi.seed, fsKey, wasi.args, wasi.env]);
}

/** The real path of the sandbox's read-only directory, checked once at prepare; undefined = none. */
function preopen(sandbox: SandboxSpec): string | undefined {
  if (sandbox.fs.kind !== 'read-only') return undefined;
  const dir = sandbox.fs.dir;
  try {
    const real = fs.realpathSync(dir);
    if (fs.statSync(real).isDirectory()) return real;
  } catch {
    // reported below
  }
  throw new ValidationError('type', 'sandbox.fs.dir', 'an existing directory', dir);
}

async function compile(bytes: Uint8Array): Promise<WasmModule> {
  try {
    // Async compile runs on V8's background threads, off the event loop.
    return await WA.compile(bytes);
  } catch (err) {
    if (err instanceof WA.CompileError) {
      throw new ProgramRejectedError('WASM_MALFORMED', 'malformed', `invalid wasm: ${err.message}`);
    }
    throw err;
  }
}

function noSuchExport(prepared: WasmPrepared, entry: string): ProgramRejectedError {
  const exp = prepared.info.exports.find((e) => e.name === entry);
  const why = exp === undefined ? 'no such export' : `'${entry}' is not (i32, i32) -> i64`;
  return new ProgramRejectedError(
    'WASM_NO_SUCH_EXPORT',
    'entry',
    `${why}; entries: ${[...prepared.entries].join(', ') || '(none)'}`,
    entry,
  );
}

export interface WasmBuildOptions {
  readonly name: string;
  readonly inputSchema?: Schema;
  readonly outputSchema?: Schema;
}

/**
 * A Build of kind 'wasm' whose one artifact is a WASI command component (component.ts); its
 * entry is 'wasi:cli/run'. Bytes that are not a component are refused when it is prepared.
 */
export function createComponentBuild(bytes: Uint8Array, opts: WasmBuildOptions): Build {
  return createBuild({
    kind: 'wasm',
    name: opts.name,
    source: bytes,
    artifacts: { [COMPONENT_ARTIFACT]: { bytes, mediaType: 'application/wasm' } },
    inputSchema: opts.inputSchema ?? { kind: 'bytes' },
    outputSchema: opts.outputSchema ?? { kind: 'bytes' },
    toolchain: { jco: jcoVersion() },
  });
}

/** A Build of kind 'wasm' whose one artifact is the module itself. */
export function createWasmBuild(bytes: Uint8Array, opts: WasmBuildOptions): Build {
  return createBuild({
    kind: 'wasm',
    name: opts.name,
    source: bytes,
    artifacts: { [WASM_ARTIFACT]: { bytes, mediaType: 'application/wasm' } },
    inputSchema: opts.inputSchema ?? { kind: 'bytes' },
    outputSchema: opts.outputSchema ?? { kind: 'bytes' },
    toolchain: {},
  });
}
