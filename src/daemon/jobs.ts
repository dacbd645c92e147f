/**
 * Asynchronous executions: a job per `POST /v1/jobs` (or `POST /v1/executions?async=true`),
 * its state awaited by long poll or streamed. Bounded: at most `limits.maxJobs` kept and at most
 * `limits.maxJobResultBytes` of their outputs (finished ones leave first, oldest first, and all
 * after `limits.jobRetentionMs`), so a client that never reads its jobs cannot grow the daemon.
 *
 *   queued ──▶ running ──▶ completed | failed     (the execution ran; a receipt exists)
 *      └───────────┴─────▶ error                  (it could not run: overloaded, shutting down)
 */

import { randomUUID } from 'node:crypto';
import { ThunderpacError } from '../runtime/errors.js';
import type { DaemonLimits } from './config.js';
import { OverloadedError } from './executions.js';

export type JobState = 'queued' | 'running' | 'completed' | 'failed' | 'error';

export interface JobView {
  readonly id: string;
  readonly state: JobState;
  readonly owner: string;
  readonly requestId: string;
  readonly createdAt: string;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  /** The execution's answer (as `POST /v1/executions` gives it) once completed or failed. */
  readonly result: unknown;
  /** Why it could not run (state `error`). */
  readonly error: { readonly code: string; readonly message: string } | null;
}

interface Job {
  view: JobView;
  finishedMs: number;
  /** Bytes of its output kept (counted against limits.maxJobResultBytes). */
  resultBytes: number;
  readonly listeners: Set<(view: JobView) => void>;
}

export function isFinished(state: JobState): boolean {
  return state === 'completed' || state === 'failed' || state === 'error';
}

export class Jobs {
  readonly #limits: DaemonLimits;
  readonly #jobs = new Map<string, Job>();
  #resultBytes = 0;
  readonly #sweeper: NodeJS.Timeout;

  constructor(limits: DaemonLimits) {
    this.#limits = limits;
    this.#sweeper = setInterval(() => this.#sweep(Date.now()), Math.min(limits.jobRetentionMs, 60_000));
    this.#sweeper.unref();
  }

  get size(): number {
    return this.#jobs.size;
  }

  close(): void {
    clearInterval(this.#sweeper);
  }

  #full(): boolean {
    return this.#jobs.size >= this.#limits.maxJobs || this.#resultBytes > this.#limits.maxJobResultBytes;
  }

  /**
   * Forget finished jobs older than the retention; with `makeRoom`, also the oldest finished
   * ones until the count and the kept result bytes are under their limits.
   */
  #sweep(now: number, makeRoom = false): void {
    for (const [id, job] of this.#jobs) {
      if (!isFinished(job.view.state)) continue;
      if (now - job.finishedMs >= this.#limits.jobRetentionMs || makeRoom) {
        this.#jobs.delete(id);
        this.#resultBytes -= job.resultBytes;
        if (makeRoom && !this.#full()) return;
      }
    }
  }

  /**
   * A new job in state `queued`, or OverloadedError (503) when `maxJobs` are kept and none of
   * them is finished.
   */
  create(owner: string, requestId: string): string {
    if (this.#full()) this.#sweep(Date.now(), true);
    if (this.#jobs.size >= this.#limits.maxJobs) {
      throw new OverloadedError(`${this.#jobs.size} jobs are running or queued (limits.maxJobs)`, 1);
    }
    const id = randomUUID();
    this.#jobs.set(id, {
      view: {
        id,
        state: 'queued',
        owner,
        requestId,
        createdAt: new Date().toISOString(),
        startedAt: null,
        finishedAt: null,
        result: null,
        error: null,
      },
      finishedMs: 0,
      resultBytes: 0,
      listeners: new Set(),
    });
    return id;
  }

  get(id: string): JobView | undefined {
    return this.#jobs.get(id)?.view;
  }

  #update(id: string, patch: Partial<JobView>): void {
    const job = this.#jobs.get(id);
    if (!job) return;
    job.view = { ...job.view, ...patch };
    if (isFinished(job.view.state)) job.finishedMs = Date.now();
    for (const listener of job.listeners) listener(job.view);
    if (isFinished(job.view.state)) job.listeners.clear();
  }

  started(id: string): void {
    this.#update(id, { state: 'running', startedAt: new Date().toISOString() });
  }

  /** `resultBytes`: the size of the output it keeps, so finished jobs hold bounded memory. */
  finished(id: string, status: 'completed' | 'failed', result: unknown, resultBytes: number): void {
    const job = this.#jobs.get(id);
    if (!job) return;
    job.resultBytes = resultBytes;
    this.#resultBytes += resultBytes;
    this.#update(id, { state: status, finishedAt: new Date().toISOString(), result });
    if (this.#resultBytes > this.#limits.maxJobResultBytes) this.#sweep(Date.now(), true);
  }

  errored(id: string, err: unknown): void {
    const e =
      err instanceof ThunderpacError
        ? { code: err.code, message: err.message }
        : { code: 'INTERNAL', message: 'internal error; see the daemon log' };
    this.#update(id, { state: 'error', finishedAt: new Date().toISOString(), error: e });
  }

  /** Call `listener` on each change of the job until it finishes; returns the unsubscribe. */
  watch(id: string, listener: (view: JobView) => void): () => void {
    const job = this.#jobs.get(id);
    if (!job || isFinished(job.view.state)) return () => {};
    job.listeners.add(listener);
    return () => job.listeners.delete(listener);
  }

  /** The job once finished, or as it is after `ms` or when `signal` aborts. */
  wait(id: string, ms: number, signal: AbortSignal): Promise<JobView | undefined> {
    const view = this.get(id);
    if (!view || isFinished(view.state) || ms <= 0 || signal.aborted) return Promise.resolve(view);
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        unwatch();
        signal.removeEventListener('abort', finish);
        resolve(this.get(id));
      };
      const timer = setTimeout(finish, ms);
      const unwatch = this.watch(id, (v) => {
        if (isFinished(v.state)) finish();
      });
      signal.addEventListener('abort', finish, { once: true });
    });
  }
}
