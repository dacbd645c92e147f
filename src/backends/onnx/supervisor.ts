/**
 * The supervisor of an onnx backend's sessions:
 *   - warm-up: start every worker and run each model's sample input on each, so the first real
 *     request pays neither thread start, nor session creation, nor first-run allocation;
 *   - health probe: every `probeIntervalMs`, run each sample input and compare with the sample's
 *     expected outputs (max abs diff <= tolerance, exact for integer outputs); a failing probe
 *     marks the supervisor degraded and is published on thunderpac:onnx:health;
 *   - restarts: a worker that dies is restarted by the pool with exponential backoff (pool.ts);
 *     the supervisor reports them;
 *   - drain: stop probing, stop intake, wait for accepted inferences, release everything.
 */

import { channel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import type { Build } from '../../runtime/build.js';
import { asThunderpacError } from '../../runtime/errors.js';
import { sandboxSpec } from '../../runtime/sandbox.js';
import type { SandboxSpec, Tensor } from '../../runtime/types.js';
import { type OnnxBackend, type OnnxPrepared, onnxDeterminismFlags, ONNX_ENTRY } from './backend.js';
import type { Tensors } from './batch.js';
import { EQUIVALENCE_TOLERANCE } from './equivalence.js';
import type { PoolStats } from './pool.js';

export const HEALTH_CHANNEL = 'thunderpac:onnx:health';
const healthChannel = channel(HEALTH_CHANNEL);

export interface SupervisedModel {
  readonly build: Build;
  readonly sample: { readonly inputs: Tensors; readonly outputs: Tensors };
}

export interface SupervisorOptions {
  readonly backend: OnnxBackend;
  readonly models: readonly SupervisedModel[];
  /** 0 disables periodic probes (default 30 s). */
  readonly probeIntervalMs?: number;
  readonly probeTimeoutMs?: number;
  readonly tolerance?: number;
}

export type SupervisorState = 'idle' | 'starting' | 'ready' | 'degraded' | 'draining' | 'stopped';

export interface ProbeResult {
  readonly at: string;
  readonly ok: boolean;
  readonly durationNs: number;
  readonly problems: readonly string[];
}

export interface SupervisorHealth {
  readonly state: SupervisorState;
  readonly probes: number;
  readonly failedProbes: number;
  readonly lastProbe: ProbeResult | null;
  readonly pool: PoolStats | null;
}

/** Problems of an output against the expected one: missing, shape, values beyond tolerance. */
export function compareTensors(got: Tensors, want: Tensors, tolerance: number): string[] {
  const problems: string[] = [];
  for (const [name, w] of Object.entries(want)) {
    const g: Tensor | undefined = got[name];
    if (!g) {
      problems.push(`output '${name}' missing`);
      continue;
    }
    if (g.shape.join() !== w.shape.join()) {
      problems.push(`output '${name}' has shape [${g.shape}], expected [${w.shape}]`);
      continue;
    }
    const x = g.data as ArrayLike<number | bigint>;
    const y = w.data as ArrayLike<number | bigint>;
    const exact = typeof y[0] === 'bigint' || w.dtype.includes('int');
    let max = 0;
    for (let i = 0; i < y.length; i++) {
      const d = Math.abs(Number(x[i]!) - Number(y[i]!));
      max = Math.max(max, Number.isNaN(d) ? Number.POSITIVE_INFINITY : d);
    }
    if (exact ? max !== 0 : !(max <= tolerance)) {
      problems.push(
        `output '${name}' differs from the sample by ${max} (tolerance ${exact ? 0 : tolerance})`,
      );
    }
  }
  return problems;
}

export class OnnxSupervisor {
  readonly #o: SupervisorOptions;
  readonly #spec: SandboxSpec[];
  readonly #prepared: OnnxPrepared[] = [];
  #state: SupervisorState = 'idle';
  #timer: NodeJS.Timeout | undefined;
  #probes = 0;
  #failed = 0;
  #last: ProbeResult | null = null;

  constructor(options: SupervisorOptions) {
    this.#o = options;
    this.#spec = options.models.map((m) =>
      sandboxSpec({
        backend: 'onnx',
        limits: { timeoutMs: options.probeTimeoutMs ?? 10_000 },
        determinism: { flags: onnxDeterminismFlags(m.build) },
      }),
    );
  }

  get state(): SupervisorState {
    return this.#state;
  }

  /** Warm up: start the workers, prepare every model, run each sample on every worker. */
  async start(): Promise<ProbeResult> {
    this.#state = 'starting';
    const { backend } = this.#o;
    await backend.pool?.start();
    for (const [i, m] of this.#o.models.entries())
      this.#prepared.push(await backend.prepare(m.build, this.#spec[i]!));
    // As many concurrent samples as workers, queued while all are ready and idle: dispatch
    // gives each worker one, so every worker holds a created, exercised session afterwards.
    const width = backend.pool?.stats().size ?? 1;
    const result = await this.#runSamples(width);
    this.#record(result);
    const every = this.#o.probeIntervalMs ?? 30_000;
    if (every > 0) {
      this.#timer = setInterval(() => void this.probe(), every);
      this.#timer.unref();
    }
    return result;
  }

  /** One health probe: each model's sample input, compared with its expected outputs. */
  async probe(): Promise<ProbeResult> {
    if (this.#state === 'draining' || this.#state === 'stopped') {
      return {
        at: new Date().toISOString(),
        ok: false,
        durationNs: 0,
        problems: [`supervisor is ${this.#state}`],
      };
    }
    const result = await this.#runSamples(1);
    this.#record(result);
    return result;
  }

  health(): SupervisorHealth {
    return {
      state: this.#state,
      probes: this.#probes,
      failedProbes: this.#failed,
      lastProbe: this.#last,
      pool: this.#o.backend.poolStats(),
    };
  }

  /** Graceful drain: no more probes, wait for accepted inferences, release sessions and workers. */
  async drain(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'draining';
    clearInterval(this.#timer);
    await this.#o.backend.drain();
    for (const p of this.#prepared.splice(0)) await this.#o.backend.dispose(p);
    await this.#o.backend.close();
    this.#state = 'stopped';
  }

  async #runSamples(width: number): Promise<ProbeResult> {
    const t0 = performance.now();
    const problems: string[] = [];
    // Model by model, `width` samples at once: with every worker idle, each gets one sample.
    for (const [i, m] of this.#o.models.entries()) {
      await Promise.all(
        Array.from({ length: width }, async () => {
          try {
            const out = await this.#o.backend.run(
              this.#prepared[i]!,
              { kind: 'tensors', tensors: m.sample.inputs },
              { entry: ONNX_ENTRY, sandbox: this.#spec[i]!, usage: {} },
            );
            if (out.kind !== 'tensors') throw new Error(`output kind ${out.kind}`);
            const tolerance = this.#o.tolerance ?? EQUIVALENCE_TOLERANCE;
            for (const p of compareTensors(out.tensors, m.sample.outputs, tolerance)) {
              problems.push(`${m.build.manifest.name}: ${p}`);
            }
          } catch (err) {
            const e = asThunderpacError(err);
            problems.push(`${m.build.manifest.name}: ${e.code}: ${e.message}`);
          }
        }),
      );
    }
    return {
      at: new Date().toISOString(),
      ok: problems.length === 0,
      durationNs: Math.round((performance.now() - t0) * 1e6),
      problems: [...new Set(problems)],
    };
  }

  #record(result: ProbeResult): void {
    this.#probes++;
    if (!result.ok) this.#failed++;
    this.#last = result;
    if (this.#state === 'starting' || this.#state === 'ready' || this.#state === 'degraded') {
      this.#state = result.ok ? 'ready' : 'degraded';
    }
    if (healthChannel.hasSubscribers) healthChannel.publish({ state: this.#state, ...result });
  }
}
