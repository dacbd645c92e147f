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
import { copyArray, describeUntrusted, guardedRead, isRecord, readField } from './untrusted.js';
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

/**
 * The largest delay Node's timers take: setTimeout clamps anything above 2^31 - 1 ms to 1 ms,
 * so a bigger timeout would fire at once instead of never.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Inclusive bounds of every limit; a value outside is refused with a ValidationError naming it. */
export const LIMIT_BOUNDS: Readonly<
  Record<keyof SandboxLimits, { readonly min: number; readonly max: number }>
> = Object.freeze({
  timeoutMs: { min: 1, max: MAX_TIMER_MS },
  memoryMb: { min: 1, max: 1 << 20 },
  fuel: { min: 1, max: Number.MAX_SAFE_INTEGER },
  // An i32 constant in instrumented WASM.
  callDepth: { min: 1, max: 2 ** 31 - 1 },
  maxInputBytes: { min: 0, max: Number.MAX_SAFE_INTEGER },
  maxOutputBytes: { min: 0, max: Number.MAX_SAFE_INTEGER },
  cpuCores: { min: 1, max: 4096 },
});

/** Limits a sandbox may leave unset (the backend's default, or unmetered). */
const OPTIONAL_LIMITS: ReadonlySet<string> = new Set(['fuel', 'cpuCores', 'callDepth']);

export const BACKEND_NAMES: readonly BackendName[] = Object.freeze(['wasm', 'onnx', 'ebpf', 'p4']);

/** Bounds on the import allow-list and the determinism flags (both go into every receipt). */
export const MAX_ALLOWED_IMPORTS = 4096;
export const MAX_DETERMINISM_FLAGS = 256;
const MAX_NAME_CHARS = 1024;

function checkLimit(name: keyof SandboxLimits, value: unknown): void {
  const { min, max } = LIMIT_BOUNDS[name];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ValidationError(
      'range',
      `sandbox.limits.${name}`,
      `an integer in [${min}, ${max}]`,
      describeUntrusted(value),
    );
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

/** Specs made by sandboxSpec: a Sandbox takes these as they are and validates anything else. */
const validatedSpecs = new WeakSet<SandboxSpec>();

/** An array of non-empty strings without NUL, copied. */
function stringList(x: unknown, path: string, max: number): string[] {
  const expected = 'an array of non-empty strings';
  return copyArray(x, path, expected, max).map((s, i) => {
    if (typeof s !== 'string' || s.length === 0 || s.length > MAX_NAME_CHARS || hasNul(s)) {
      throw new ValidationError(
        'type',
        `${path}[${i}]`,
        `a non-empty string of at most ${MAX_NAME_CHARS} characters without NUL`,
        describeUntrusted(s),
      );
    }
    return s;
  });
}

/** The limits, every field read once and checked against LIMIT_BOUNDS; unknown names refused. */
function limitsFromOptions(given: unknown): SandboxLimits {
  const limits: Record<string, number> = { ...DEFAULT_LIMITS };
  if (given === undefined) return limits as unknown as SandboxLimits;
  if (!isRecord(given, 'sandbox.limits')) {
    throw new ValidationError('type', 'sandbox.limits', 'an object of limits', describeUntrusted(given));
  }
  const names = guardedRead('sandbox.limits', 'an object of limits', () => Object.keys(given));
  for (const name of names) {
    if (!Object.hasOwn(LIMIT_BOUNDS, name)) {
      throw new ValidationError(
        'unexpected',
        `sandbox.limits.${name}`,
        `one of [${Object.keys(LIMIT_BOUNDS).join(', ')}]`,
        describeUntrusted(name),
      );
    }
    const value = readField(given, name, `sandbox.limits.${name}`);
    if (value === undefined) continue; // unset: the default
    checkLimit(name as keyof SandboxLimits, value);
    limits[name] = value as number;
  }
  for (const name of Object.keys(LIMIT_BOUNDS) as (keyof SandboxLimits)[]) {
    if (limits[name] === undefined && !OPTIONAL_LIMITS.has(name)) checkLimit(name, undefined);
  }
  return limits as unknown as SandboxLimits;
}

/**
 * Build a frozen SandboxSpec from options, validating every field. The options are untrusted:
 * each field is read once (a getter or Proxy that throws is a ValidationError naming it) and
 * copied, so the spec never shares anything mutable with the caller.
 */
export function sandboxSpec(options: SandboxOptions): SandboxSpec {
  if (!isRecord(options, 'sandbox')) {
    throw new ValidationError('type', 'sandbox', 'a sandbox options object', describeUntrusted(options));
  }
  const backend = readField(options, 'backend', 'sandbox.backend');
  if (typeof backend !== 'string' || !BACKEND_NAMES.includes(backend as BackendName)) {
    throw new ValidationError(
      'type',
      'sandbox.backend',
      `one of [${BACKEND_NAMES.join(', ')}]`,
      describeUntrusted(backend),
    );
  }
  const limits = limitsFromOptions(readField(options, 'limits', 'sandbox.limits'));
  const fsGiven = readField(options, 'fs', 'sandbox.fs') ?? { kind: 'none' };
  const { fs, fsTree } = guardedRead('sandbox.fs', 'a filesystem option', () => fsFromOptions(fsGiven));
  const wasiGiven = readField(options, 'wasi', 'sandbox.wasi');
  const wasi =
    wasiGiven === undefined
      ? undefined
      : guardedRead('sandbox.wasi', '{ args?, env? }', () => wasiFromOptions(wasiGiven as WasiOptions));
  const importsGiven = readField(options, 'allowedImports', 'sandbox.allowedImports');
  const allowedImports =
    importsGiven === undefined ? [] : stringList(importsGiven, 'sandbox.allowedImports', MAX_ALLOWED_IMPORTS);
  const determinismGiven = readField(options, 'determinism', 'sandbox.determinism') ?? {};
  if (!isRecord(determinismGiven, 'sandbox.determinism')) {
    throw new ValidationError(
      'type',
      'sandbox.determinism',
      '{ seed?, flags? }',
      describeUntrusted(determinismGiven),
    );
  }
  const seed = readField(determinismGiven, 'seed', 'sandbox.determinism.seed') ?? 0;
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new ValidationError('type', 'sandbox.determinism.seed', 'a safe integer', describeUntrusted(seed));
  }
  const flagsGiven = readField(determinismGiven, 'flags', 'sandbox.determinism.flags');
  const flags =
    flagsGiven === undefined
      ? []
      : stringList(flagsGiven, 'sandbox.determinism.flags', MAX_DETERMINISM_FLAGS);
  // The backend's defaults see the validated copy, never the caller's object.
  const checked: SandboxOptions = {
    backend: backend as BackendName,
    limits,
    allowedImports,
    determinism: { seed, flags },
  };
  for (const flag of defaultFlags.get(checked.backend)?.(checked, flags) ?? []) {
    if (!flags.includes(flag)) flags.push(flag);
  }
  const determinism: Determinism = { seed, flags: flags.sort() };
  const spec: SandboxSpec = Object.freeze({
    backend: checked.backend,
    limits: Object.freeze(limits),
    network: false,
    fs,
    ...(fsTree === undefined ? {} : { fsTree }),
    ...(wasi === undefined ? {} : { wasi }),
    allowedImports: Object.freeze(allowedImports.sort()),
    determinism: Object.freeze(determinism),
  });
  validatedSpecs.add(spec);
  return spec;
}

function fsFromOptions(options: unknown): { fs: FsPolicy; fsTree?: FsTree } {
  if (!isRecord(options, 'sandbox.fs')) {
    throw new ValidationError('type', 'sandbox.fs', '{ kind, ... }', describeUntrusted(options));
  }
  const kind = readField(options, 'kind', 'sandbox.fs.kind');
  switch (kind) {
    case 'none':
      return { fs: Object.freeze({ kind: 'none' }) };
    case 'read-only': {
      const dir = readField(options, 'dir', 'sandbox.fs.dir');
      if (typeof dir !== 'string' || dir.length === 0 || hasNul(dir)) {
        throw new ValidationError('type', 'sandbox.fs.dir', 'a directory path', describeUntrusted(dir));
      }
      return { fs: Object.freeze({ kind: 'read-only', dir }) };
    }
    case 'memory': {
      const { policy, tree } = memoryFsFromOptions(options as unknown as MemoryFsOptions);
      return { fs: policy, fsTree: tree };
    }
    default:
      throw new ValidationError(
        'type',
        'sandbox.fs.kind',
        "'none' | 'read-only' | 'memory'",
        describeUntrusted(kind),
      );
  }
}

const hasNul = (s: string): boolean => s.includes('\0');

/** argv and environ, validated and frozen; env keys sorted (the order the guest lists them in). */
function wasiFromOptions(options: WasiOptions): WasiProcess {
  if (!isRecord(options, 'sandbox.wasi')) {
    throw new ValidationError('type', 'sandbox.wasi', '{ args?, env? }', describeUntrusted(options));
  }
  let size = 0;
  let args: string[] | undefined;
  const argsGiven = readField(options, 'args', 'sandbox.wasi.args');
  if (argsGiven !== undefined) {
    args = copyArray(argsGiven, 'sandbox.wasi.args', 'an array of strings', WASI_MAX_ARGS).map((a, i) => {
      if (typeof a !== 'string' || hasNul(a)) {
        throw new ValidationError(
          'type',
          `sandbox.wasi.args[${i}]`,
          'a string without NUL',
          describeUntrusted(a),
        );
      }
      size += Buffer.byteLength(a) + 1;
      return a;
    });
  }
  const envIn = readField(options, 'env', 'sandbox.wasi.env') ?? {};
  if (!isRecord(envIn, 'sandbox.wasi.env')) {
    throw new ValidationError(
      'type',
      'sandbox.wasi.env',
      'an object of name -> string',
      describeUntrusted(envIn),
    );
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
    const value = readField(envIn, name, where);
    if (typeof value !== 'string' || hasNul(value)) {
      throw new ValidationError('type', where, 'a string without NUL', describeUntrusted(value));
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

  /** A spec made by sandboxSpec is taken as it is; anything else is validated as options. */
  constructor(spec: SandboxSpec | SandboxOptions) {
    this.spec = validatedSpecs.has(spec as SandboxSpec)
      ? (spec as SandboxSpec)
      : sandboxSpec(spec as SandboxOptions);
  }

  /** Whether `x` is a Sandbox (a brand check: no getter or Proxy trap of `x` runs). */
  static isSandbox(x: unknown): x is Sandbox {
    return typeof x === 'object' && x !== null && #state in x;
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
