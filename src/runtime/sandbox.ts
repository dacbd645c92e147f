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
import type { BackendName, Determinism, FsPolicy, SandboxLimits, SandboxSpec } from './types.js';

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

export interface SandboxOptions {
  readonly backend: BackendName;
  readonly limits?: Partial<SandboxLimits>;
  readonly fs?: FsPolicy;
  readonly allowedImports?: readonly string[];
  readonly determinism?: Partial<Determinism>;
}

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
  const fs = options.fs ?? { kind: 'none' };
  if (fs.kind !== 'none' && fs.kind !== 'read-only') {
    throw new ValidationError(
      'type',
      'sandbox.fs.kind',
      "'none' | 'read-only'",
      String((fs as { kind: unknown }).kind),
    );
  }
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
    fs: Object.freeze({ ...fs }),
    allowedImports: Object.freeze([...(options.allowedImports ?? [])].sort()),
    determinism: Object.freeze(determinism),
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
