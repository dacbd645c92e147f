/**
 * The `wasm` backend: core modules that follow the thunderpac guest ABI (see abi.ts).
 *
 * prepare: parse (module-info.ts) → policy (policy.ts) → compile once (V8 validates).
 * run: a fresh instance per execution, on one of two paths sharing abi.ts:
 *   - worker (default): a worker_threads pool; a wall-clock timer terminates the worker at
 *     `timeoutMs`, so a runaway guest cannot hold the caller.
 *   - in-thread: on the calling thread, no timeout enforcement — only for trusted modules,
 *     or metered ones once fuel metering lands (then fuel bounds every execution).
 * `path: 'auto'` picks in-thread only for fuel-metered modules, i.e. worker for now.
 */

import os from 'node:os';
import type { ResourceLimits } from 'node:worker_threads';
import { artifact, type Build, createBuild } from '../../runtime/build.js';
import {
  GuestError,
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
  RunContext,
  SandboxSpec,
  Schema,
} from '../../runtime/types.js';
import { type AbiResult, runGuest } from './abi.js';
import { createHostImports, type HostState } from './host.js';
import { type ModuleInfo, parseModule } from './module-info.js';
import { checkModule } from './policy.js';
import { WorkerPool } from './pool.js';
import { WA, type WasmImports, type WasmModule } from './wasm-api.js';

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
    readonly module: WasmModule,
    readonly info: ModuleInfo,
    /** Host functions the module imports, as [module, name]; each allowed and provided. */
    readonly hostImports: readonly (readonly [string, string])[],
    /** Exports callable as entries: (i32, i32) -> i64. */
    readonly entries: ReadonlySet<string>,
    readonly path: 'worker' | 'in-thread',
    /** In-thread path only: the import object and the state its host functions read. */
    readonly host: HostState,
    readonly imports: WasmImports | undefined,
  ) {}

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
  readonly versions: Readonly<Record<string, string>> = Object.freeze({
    v8: process.versions.v8,
    node: process.versions.node,
  });
  readonly #path: WasmPath;
  readonly #pool: WorkerPool;
  readonly #stackBytes: number;

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
    const bytes = artifact(build, WASM_ARTIFACT);
    const info = parseModule(bytes);
    const { hostImports, entries } = checkModule(info, sandbox);
    const module = await compile(bytes);
    // Fuel metering is not there yet, so no module counts as metered: 'auto' means worker.
    const path = this.#path === 'in-thread' ? 'in-thread' : 'worker';
    const host: HostState = { memory: undefined };
    const imports = path === 'in-thread' ? createHostImports(hostImports, host) : undefined;
    return new WasmPrepared(build.id, module, info, hostImports, entries, path, host, imports);
  }

  async run(prepared: WasmPrepared, input: Input, ctx: RunContext): Promise<Output> {
    if (input.kind !== 'bytes') throw new ValidationError('type', 'input.kind', "'bytes'", input.kind);
    if (prepared.disposed) {
      throw new ThunderpacError('WASM_DISPOSED', `prepared module of build ${prepared.buildId} was disposed`);
    }
    const entry = ctx.entry;
    if (!prepared.entries.has(entry)) throw noSuchExport(prepared, entry);
    const limits = ctx.sandbox.limits;
    const bytes = input.bytes;
    if (bytes.byteLength > limits.maxInputBytes) {
      throw new LimitExceededError('maxInputBytes', limits.maxInputBytes, bytes.byteLength);
    }
    const r =
      prepared.path === 'worker'
        ? await this.#pool.exec(
            prepared.buildId,
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
          )
        : runGuest(
            prepared.module,
            prepared.imports ?? {},
            prepared.host,
            entry,
            bytes,
            limits.maxOutputBytes,
          );
    if (r.memoryBytes > 0) ctx.usage.peakMemoryBytes = r.memoryBytes;
    if (r.output !== null) return { kind: 'bytes', bytes: r.output };
    throw this.#failure(r, prepared, ctx);
  }

  async dispose(prepared: WasmPrepared): Promise<void> {
    prepared.markDisposed();
    this.#pool.drop(prepared.buildId);
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
