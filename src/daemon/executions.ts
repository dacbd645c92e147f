/**
 * The one path every daemon execution takes: QoS admission (src/qos/admission.ts: cooldowns,
 * breakers, the actor's tier rate limit, resource limits, quotas, then a slot — at most
 * `maxInFlight` running, or the adaptive limit — or a place in the priority fair queue, whose
 * classes hold at most `maxQueued` each; the rest refused at once), a sandbox from a pool keyed
 * by its options (so prepared programs are reused across requests), the executor, metrics.
 */

import type { ExecutionResult } from '../runtime/executor.js';
import { ThunderpacError } from '../runtime/errors.js';
import type { Sandbox, SandboxOptions } from '../runtime/sandbox.js';
import { Admission } from '../qos/admission.js';
import { DEFAULT_QOS_POLICY, type QosPolicy } from '../qos/policy.js';
import { QueueDropError } from '../qos/queues/index.js';
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
  readonly #metrics: DaemonMetrics;
  readonly #idle = new Map<string, Sandbox[]>();
  /** QoS admission (reloadable: `admission.reload(policy)`). */
  readonly admission: Admission;
  #draining = false;
  #drained: (() => void) | null = null;

  constructor(
    tp: Thunderpac,
    limits: DaemonLimits,
    metrics: DaemonMetrics,
    qos: QosPolicy = DEFAULT_QOS_POLICY,
    options: { readonly quotaFile?: string } = {},
  ) {
    this.#tp = tp;
    this.#metrics = metrics;
    this.admission = new Admission(qos, {
      maxInFlight: limits.maxInFlight,
      maxQueued: limits.maxQueued,
      ...(options.quotaFile !== undefined && { quotaFile: options.quotaFile }),
    });
  }

  /** After the drain: refuse what is left, flush and release the quota journal, close Redis. */
  async close(): Promise<void> {
    await this.admission.close();
  }

  get inFlight(): number {
    return this.admission.running;
  }

  get queued(): number {
    return this.admission.queued;
  }

  async run(
    options: SandboxOptions,
    request: Parameters<ExecutionService['run']>[1],
    who: Attribution,
    hooks?: ExecutionHooks,
  ): Promise<ExecutionResult> {
    const permit = await this.#admit(options, request, who);
    let ok = false;
    const started = process.hrtime.bigint();
    let sandbox: Sandbox | undefined;
    const key = poolKey(options);
    try {
      hooks?.onStart?.();
      sandbox = this.#idle.get(key)?.pop() ?? this.#tp.sandbox(options);
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
      // A guest's own failure is not the backend failing: only an execution that threw is.
      ok = true;
      return result;
    } finally {
      if (sandbox?.state === 'idle') {
        const pool = this.#idle.get(key);
        if (pool) pool.push(sandbox);
        else this.#idle.set(key, [sandbox]);
      }
      permit.release(Number(process.hrtime.bigint() - started) / 1e6, ok);
      if (this.admission.running === 0) this.#drained?.();
    }
  }

  async #admit(
    options: SandboxOptions,
    request: Parameters<ExecutionService['run']>[1],
    who: Attribution,
  ): ReturnType<Admission['admit']> {
    if (this.#draining) throw new OverloadedError('the daemon is shutting down', 1);
    try {
      return await this.admission.admit({
        actor: who.actor,
        backend: options.backend,
        build: request.build.id,
        model: options.backend === 'onnx' ? request.build.manifest.name : undefined,
      });
    } catch (err) {
      // A full queue is the daemon at capacity: the same 503 as before QoS.
      if (err instanceof QueueDropError && (err.reason === 'class-full' || err.reason === 'actor-full')) {
        throw new OverloadedError(
          `${this.admission.running} executions running and ${this.admission.queued} queued (${err.message})`,
          1,
        );
      }
      if (err instanceof QueueDropError && err.reason === 'closed') {
        throw new OverloadedError('the daemon is shutting down', 1);
      }
      throw err;
    }
  }

  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    if (this.admission.running === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
