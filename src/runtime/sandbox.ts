/**
 * Sandbox: a backend plus limits, and a small state machine that makes sure one sandbox
 * runs one execution at a time and is explicitly reset after each.
 *
 *   idle ──begin──▶ executing ──complete──▶ completed ──reset──▶ idle
 *                          └────fail─────▶ failed ────reset──▶ idle
 *
 * Anything else throws SandboxStateError. Limits are explicit and deny-by-default, as in
 * wasmtime's Config: no network, no filesystem, no imports unless the spec says so.
 */

import { SandboxStateError, ValidationError } from './errors.js';
import { type MemoryFsOptions, memoryFsFromOptions } from './fs-tree.js';
import type {
  BackendName,
  Determinism,
  FsPolicy,
  FsTree,
  SandboxLimits,
  SandboxSpec,
  WasiProcess,
} from './types.js';

export type SandboxState = 'idle' | 'executing' | 'completed' | 'failed';

const TRANSITIONS: Readonly<Record<SandboxState, readonly SandboxState[]>> = {
  idle: ['executing'],
  executing: ['completed', 'failed'],
  completed: ['idle'],
  failed: ['idle'],
};

export const DEFAULT_LIMITS: SandboxLimits = Object.freeze({
  timeoutMs: 5_000,
  memoryMb: 64,
  maxInputBytes: 16 << 20,
  maxOutputBytes: 16 << 20,
});

/** What a sandbox's filesystem is made from: none, a host directory (read-only), or a tree. */
export type FsOptions =
  | { readonly kind: 'none' }
  | { readonly kind: 'read-only'; readonly dir: string }
  | MemoryFsOptions;

export interface WasiOptions {
  /** argv as the guest sees it (default: [the build's name]). */
  readonly args?: readonly string[];
  /** The guest's whole environment (default: empty). Never the host's. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface SandboxOptions {
  readonly backend: BackendName;
  readonly limits?: Partial<SandboxLimits>;
  readonly fs?: FsOptions;
  readonly wasi?: WasiOptions;
  readonly allowedImports?: readonly string[];
  readonly determinism?: Partial<Determinism>;
}

/** Bounds on argv and environ: they are copied into guest memory on every execution. */
export const WASI_MAX_ARGS = 1024;
export const WASI_MAX_ENV = 1024;
export const WASI_MAX_PROCESS_BYTES = 64 * 1024;

function checkLimit(name: keyof SandboxLimits, value: unknown, min: number): void {
  if (value === undefined && (name === 'fuel' || name === 'cpuCores' || name === 'callDepth')) return;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new ValidationError('range', `sandbox.limits.${name}`, `an integer >= ${min}`, String(value));
  }
}

/** Determinism flags a backend's sandboxes get unless the options say otherwise. */
export type DefaultFlags = (options: SandboxOptions, given: readonly string[]) => readonly string[];

const defaultFlags = new Map<BackendName, DefaultFlags>();

/**
 * A backend names the policies its results depend on (the WASM float policy, WASI's virtual
 * clock) as default determinism flags, so that every receipt records them. Called by the
 * backend's module when it loads.
 */
export function registerDefaultFlags(backend: BackendName, flags: DefaultFlags): void {
  defaultFlags.set(backend, flags);
}

/** Build a frozen SandboxSpec from options, validating every limit. */
export function sandboxSpec(options: SandboxOptions): SandboxSpec {
  const limits: SandboxLimits = { ...DEFAULT_LIMITS, ...options.limits };
  checkLimit('timeoutMs', limits.timeoutMs, 1);
  checkLimit('memoryMb', limits.memoryMb, 1);
  checkLimit('maxInputBytes', limits.maxInputBytes, 0);
  checkLimit('maxOutputBytes', limits.maxOutputBytes, 0);
  checkLimit('fuel', limits.fuel, 1);
  checkLimit('cpuCores', limits.cpuCores, 1);
  checkLimit('callDepth', limits.callDepth, 1);
  const { fs, fsTree } = fsFromOptions(options.fs ?? { kind: 'none' });
  const wasi = options.wasi === undefined ? undefined : wasiFromOptions(options.wasi);
  const flags = [...(options.determinism?.flags ?? [])];
  for (const flag of defaultFlags.get(options.backend)?.(options, flags) ?? []) {
    if (!flags.includes(flag)) flags.push(flag);
  }
  const determinism: Determinism = {
    seed: options.determinism?.seed ?? 0,
    flags: flags.sort(),
  };
  if (!Number.isSafeInteger(determinism.seed)) {
    throw new ValidationError('type', 'sandbox.determinism.seed', 'a safe integer', String(determinism.seed));
  }
  return Object.freeze({
    backend: options.backend,
    limits: Object.freeze(limits),
    network: false,
    fs,
    ...(fsTree === undefined ? {} : { fsTree }),
    ...(wasi === undefined ? {} : { wasi }),
    allowedImports: Object.freeze([...(options.allowedImports ?? [])].sort()),
    determinism: Object.freeze(determinism),
  });
}

function fsFromOptions(options: FsOptions): { fs: FsPolicy; fsTree?: FsTree } {
  switch (options.kind) {
    case 'none':
      return { fs: Object.freeze({ kind: 'none' }) };
    case 'read-only':
      if (typeof options.dir !== 'string' || options.dir.length === 0) {
        throw new ValidationError('type', 'sandbox.fs.dir', 'a directory path', String(options.dir));
      }
      return { fs: Object.freeze({ kind: 'read-only', dir: options.dir }) };
    case 'memory': {
      const { policy, tree } = memoryFsFromOptions(options);
      return { fs: policy, fsTree: tree };
    }
    default:
      throw new ValidationError(
        'type',
        'sandbox.fs.kind',
        "'none' | 'read-only' | 'memory'",
        String((options as { kind: unknown }).kind),
      );
  }
}

const hasNul = (s: string): boolean => s.includes('\0');

/** argv and environ, validated and frozen; env keys sorted (the order the guest lists them in). */
function wasiFromOptions(options: WasiOptions): WasiProcess {
  if (options === null || typeof options !== 'object') {
    throw new ValidationError('type', 'sandbox.wasi', '{ args?, env? }', String(options));
  }
  let size = 0;
  let args: string[] | undefined;
  if (options.args !== undefined) {
    if (!Array.isArray(options.args)) {
      throw new ValidationError('type', 'sandbox.wasi.args', 'an array of strings', String(options.args));
    }
    if (options.args.length > WASI_MAX_ARGS) {
      throw new ValidationError(
        'size',
        'sandbox.wasi.args',
        `at most ${WASI_MAX_ARGS} arguments`,
        String(options.args.length),
      );
    }
    args = options.args.map((a: unknown, i) => {
      if (typeof a !== 'string' || hasNul(a)) {
        throw new ValidationError(
          'type',
          `sandbox.wasi.args[${i}]`,
          'a string without NUL',
          JSON.stringify(a) ?? String(a),
        );
      }
      size += Buffer.byteLength(a) + 1;
      return a;
    });
  }
  const envIn = options.env ?? {};
  if (envIn === null || typeof envIn !== 'object' || Array.isArray(envIn)) {
    throw new ValidationError('type', 'sandbox.wasi.env', 'an object of name -> string', String(envIn));
  }
  const names = Object.keys(envIn).sort();
  if (names.length > WASI_MAX_ENV) {
    throw new ValidationError(
      'size',
      'sandbox.wasi.env',
      `at most ${WASI_MAX_ENV} variables`,
      String(names.length),
    );
  }
  const env: Record<string, string> = {};
  for (const name of names) {
    const where = `sandbox.wasi.env[${JSON.stringify(name)}]`;
    if (name.length === 0 || name.includes('=') || hasNul(name)) {
      throw new ValidationError(
        'type',
        where,
        "a name that is non-empty, without '=' or NUL",
        JSON.stringify(name),
      );
    }
    const value = (envIn as Record<string, unknown>)[name];
    if (typeof value !== 'string' || hasNul(value)) {
      throw new ValidationError(
        'type',
        where,
        'a string without NUL',
        JSON.stringify(value) ?? String(value),
      );
    }
    env[name] = value;
    size += Buffer.byteLength(name) + Buffer.byteLength(value) + 2;
  }
  if (size > WASI_MAX_PROCESS_BYTES) {
    throw new ValidationError(
      'size',
      'sandbox.wasi',
      `args and env of at most ${WASI_MAX_PROCESS_BYTES} bytes`,
      String(size),
    );
  }
  return Object.freeze({
    ...(args === undefined ? {} : { args: Object.freeze(args) }),
    env: Object.freeze(env),
  });
}

export class Sandbox {
  readonly spec: SandboxSpec;
  #state: SandboxState = 'idle';

  constructor(spec: SandboxSpec | SandboxOptions) {
    this.spec = 'network' in spec ? spec : sandboxSpec(spec);
  }

  get state(): SandboxState {
    return this.#state;
  }

  #to(next: SandboxState): void {
    if (!TRANSITIONS[this.#state].includes(next)) throw new SandboxStateError(this.#state, next);
    this.#state = next;
  }

  begin(): void {
    this.#to('executing');
  }

  complete(): void {
    this.#to('completed');
  }

  fail(): void {
    this.#to('failed');
  }

  /** Back to idle after a finished execution; the only way out of completed or failed. */
  reset(): void {
    this.#to('idle');
  }
}
