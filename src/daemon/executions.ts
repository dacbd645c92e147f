/**
 * The one path every daemon execution takes: admission (at most `maxInFlight` running, at most
 * `maxQueued` waiting, the rest refused at once), a sandbox from a pool keyed by its options
 * (so prepared programs are reused across requests), the executor, metrics.
 */

import type { ExecutionResult } from '../runtime/executor.js';
import { ThunderpacError } from '../runtime/errors.js';
import type { Sandbox, SandboxOptions } from '../runtime/sandbox.js';
import type { Thunderpac } from '../thunderpac.js';
import type { DaemonLimits } from './config.js';
import type { Attribution, ExecutionHooks, ExecutionService } from './context.js';
import type { DaemonMetrics } from './metrics.js';

/** The daemon is at capacity or shutting down: a 503 with Retry-After, never a queue without end. */
export class OverloadedError extends ThunderpacError {
  constructor(
    message: string,
    readonly retryAfterS: number,
  ) {
    super('DAEMON_OVERLOADED', message);
  }
}

/**
 * Sandboxes are pooled by their options. Callers that run often hand the same options object
 * each time (a model's, a route's per-limits cache), so the key is memoized per object and
 * JSON is built once, not per execution.
 */
const poolKeys = new WeakMap<SandboxOptions, string>();

function poolKey(options: SandboxOptions): string {
  let key = poolKeys.get(options);
  if (key === undefined) {
    key = JSON.stringify(options);
    poolKeys.set(options, key);
  }
  return key;
}

export class DaemonExecutions implements ExecutionService {
  readonly #tp: Thunderpac;
  readonly #limits: DaemonLimits;
  readonly #metrics: DaemonMetrics;
  readonly #idle = new Map<string, Sandbox[]>();
  readonly #waiting: (() => void)[] = [];
  #running = 0;
  #draining = false;
  #drained: (() => void) | null = null;

  constructor(tp: Thunderpac, limits: DaemonLimits, metrics: DaemonMetrics) {
    this.#tp = tp;
    this.#limits = limits;
    this.#metrics = metrics;
  }

  get inFlight(): number {
    return this.#running;
  }

  get queued(): number {
    return this.#waiting.length;
  }

  async run(
    options: SandboxOptions,
    request: Parameters<ExecutionService['run']>[1],
    who: Attribution,
    hooks?: ExecutionHooks,
  ): Promise<ExecutionResult> {
    await this.#admit();
    hooks?.onStart?.();
    const started = process.hrtime.bigint();
    const key = poolKey(options);
    const sandbox = this.#idle.get(key)?.pop() ?? this.#tp.sandbox(options);
    try {
      const result = await this.#tp.execute(sandbox, {
        build: request.build,
        input: request.input,
        entry: request.entry,
        // Who asked and which request: sealed into the receipt.
        attribution: { actor: who.actor.id, requestId: who.requestId },
      });
      this.#metrics.executions.inc({ backend: result.receipt.backend, status: result.status });
      this.#metrics.executionSeconds.observe(
        { backend: result.receipt.backend },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
      return result;
    } finally {
      if (sandbox.state === 'idle') {
        const pool = this.#idle.get(key);
        if (pool) pool.push(sandbox);
        else this.#idle.set(key, [sandbox]);
      }
      this.#release();
    }
  }

  async #admit(): Promise<void> {
    if (this.#draining) throw new OverloadedError('the daemon is shutting down', 1);
    if (this.#running < this.#limits.maxInFlight) {
      this.#running++;
      this.#metrics.inFlight.set(this.#running);
      return;
    }
    if (this.#waiting.length >= this.#limits.maxQueued) {
      throw new OverloadedError(
        `${this.#running} executions running and ${this.#waiting.length} queued (limits.maxQueued)`,
        1,
      );
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#metrics.queued.set(this.#waiting.length);
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) {
      this.#metrics.queued.set(this.#waiting.length);
      next(); // the slot passes to the next waiter
      return;
    }
    this.#running--;
    this.#metrics.inFlight.set(this.#running);
    if (this.#running === 0) this.#drained?.();
  }

  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    if (this.#running === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
