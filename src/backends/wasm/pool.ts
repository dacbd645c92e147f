/**
 * A small pool of worker threads for the wasm worker path.
 *
 * A worker runs one execution at a time (guest code is synchronous). Each execution gets a
 * wall-clock timer; when it fires the worker is terminated — the only way to stop a guest
 * stuck in a loop without instrumenting it — the job fails with LimitExceededError
 * ('timeoutMs') and a fresh worker takes the slot. A worker that runs out of its heap
 * (resourceLimits) fails its job with LimitExceededError ('memoryMb'); one that dies otherwise
 * (a bug) with WASM_WORKER_CRASHED; no job is left hanging.
 *
 * Compiled modules are sent to a worker once (structured clone shares V8's compiled code)
 * and cached there by key (build id + metering config). Idle workers are unref'd so they never keep the process
 * alive; close() terminates them all.
 */

import { type ResourceLimits, Worker } from 'node:worker_threads';
import { LimitExceededError, ThunderpacError } from '../../runtime/errors.js';
import type { AbiResult } from './abi.js';
import type { WasiConfig } from './wasi.js';
import type { WasmModule } from './wasm-api.js';
import { MSG_DROP, MSG_RUN, workerSource } from './worker.js';

export interface PoolOptions {
  readonly size: number;
  readonly resourceLimits: ResourceLimits;
}

interface Job {
  readonly key: string;
  readonly module: WasmModule;
  readonly imports: readonly (readonly [string, string])[];
  /** Whether the worker may instantiate this module ahead of time (no start function). */
  readonly spare: boolean;
  readonly entry: string;
  /** A private copy: its buffer is transferred to the worker. */
  readonly input: Uint8Array;
  readonly maxOutputBytes: number;
  readonly timeoutMs: number;
  /** Fuel per execution (-1 = unmetered) and the compiled-in depth limit (0 = none). */
  readonly fuelLimit: number;
  readonly depthLimit: number;
  /** The sandbox's memoryMb: a worker that runs out of heap fails its job as over it. */
  readonly memoryMb: number;
  /** WASI settings of the module, when it imports WASI or is a command. */
  readonly wasi: WasiConfig | undefined;
  readonly resolve: (r: AbiResult) => void;
  readonly reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  readonly loaded: Set<string>;
  job: Job | null;
  timer: NodeJS.Timeout | undefined;
}

/** How long close() waits for terminated workers to stop before it resolves anyway. */
const CLOSE_GRACE_MS = 5_000;

export class WorkerPool {
  readonly #opts: PoolOptions;
  readonly #slots: Slot[] = [];
  #queue: Job[] = [];
  readonly #terminating = new Set<Promise<number>>();
  #closed = false;
  // Bound once: setTimeout(fn, ms, slot) then allocates no closure per execution.
  readonly #onTimeout = (slot: Slot): void => this.#timeout(slot);

  constructor(opts: PoolOptions) {
    this.#opts = opts;
  }

  exec(
    key: string,
    module: WasmModule,
    imports: readonly (readonly [string, string])[],
    spare: boolean,
    entry: string,
    input: Uint8Array,
    maxOutputBytes: number,
    timeoutMs: number,
    fuelLimit: number,
    depthLimit: number,
    memoryMb: number,
    wasi?: WasiConfig,
  ): Promise<AbiResult> {
    if (this.#closed) return Promise.reject(closedError());
    return new Promise<AbiResult>((resolve, reject) => {
      const job: Job = {
        key,
        module,
        imports,
        spare,
        entry,
        input,
        maxOutputBytes,
        timeoutMs,
        fuelLimit,
        depthLimit,
        memoryMb,
        wasi,
        resolve,
        reject,
      };
      const slot = this.#idleSlot(key);
      if (slot !== undefined) this.#start(slot, job);
      else {
        this.#queue.push(job);
        // Workers are spawned lazily, up to `size`; a new one picks the job up when ready.
        if (this.#slots.length < this.#opts.size) this.#slots.push(this.#spawn());
      }
    });
  }

  /** Forget a module in every worker (dispose); a later run sends it again. */
  drop(key: string): void {
    for (const slot of this.#slots) {
      if (slot.loaded.delete(key)) slot.worker.postMessage({ t: MSG_DROP, k: key });
    }
  }

  /** Fail everything pending and terminate every worker; the pool refuses work afterwards. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const queue = this.#queue;
    this.#queue = [];
    for (const job of queue) job.reject(closedError());
    for (const slot of this.#slots.splice(0)) {
      const job = slot.job;
      slot.job = null;
      clearTimeout(slot.timer);
      job?.reject(closedError());
      this.#terminate(slot.worker);
    }
    // A thread blocked inside a system call cannot be stopped until the call returns; no host
    // call a guest can make should block (wasi-fs.ts opens nothing that could), but close()
    // must resolve even if one did: wait a bounded time, then leave the (unref'd) thread.
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(this.#terminating),
      new Promise<void>((resolve) => {
        grace = setTimeout(resolve, CLOSE_GRACE_MS);
        grace.unref();
      }),
    ]);
    clearTimeout(grace);
  }

  /** Number of live worker threads (for tests and metrics). */
  get size(): number {
    return this.#slots.length;
  }

  #idleSlot(key: string): Slot | undefined {
    let any: Slot | undefined;
    for (const slot of this.#slots) {
      if (!slot.ready || slot.job !== null) continue;
      if (slot.loaded.has(key)) return slot;
      any ??= slot;
    }
    return any;
  }

  #spawn(): Slot {
    const slot: Slot = {
      worker: undefined as unknown as Worker,
      ready: false,
      loaded: new Set(),
      job: null,
      timer: undefined,
    };
    slot.worker = this.#newWorker(slot);
    return slot;
  }

  /** A fresh worker whose events report to `slot` (until the slot moves on to another worker). */
  #newWorker(slot: Slot): Worker {
    const worker = new Worker(workerSource(), {
      eval: true,
      name: 'thunderpac-wasm',
      // Independent of the parent's flags (test runners' loaders, inspector...).
      execArgv: [],
      resourceLimits: this.#opts.resourceLimits,
    });
    worker.on('message', (r: AbiResult | null) => this.#message(slot, worker, r));
    worker.on('error', (err: Error) => this.#crash(slot, worker, err.message, err));
    worker.on('messageerror', (err: Error) =>
      this.#crash(slot, worker, `message error: ${err.message}`, err),
    );
    worker.on('exit', (code: number) => this.#crash(slot, worker, `exited with code ${code}`));
    return worker;
  }

  #start(slot: Slot, job: Job): void {
    slot.job = job;
    slot.worker.ref();
    const first = !slot.loaded.has(job.key);
    if (first) slot.loaded.add(job.key);
    slot.worker.postMessage(
      {
        t: MSG_RUN,
        k: job.key,
        m: first ? job.module : undefined,
        i: first ? job.imports : undefined,
        s: first ? job.spare : undefined,
        w: first ? job.wasi : undefined,
        e: job.entry,
        b: job.input,
        o: job.maxOutputBytes,
        f: job.fuelLimit,
        d: job.depthLimit,
      },
      [job.input.buffer as ArrayBuffer],
    );
    slot.timer = setTimeout(this.#onTimeout, job.timeoutMs, slot);
  }

  #message(slot: Slot, worker: Worker, r: AbiResult | null): void {
    if (slot.worker !== worker) return; // a terminated worker's late reply
    if (r === null) {
      slot.ready = true;
    } else {
      const job = slot.job;
      clearTimeout(slot.timer);
      slot.job = null;
      job?.resolve(r);
    }
    this.#next(slot);
  }

  #next(slot: Slot): void {
    const job = this.#queue.shift();
    if (job !== undefined) this.#start(slot, job);
    else slot.worker.unref();
  }

  #timeout(slot: Slot): void {
    const job = slot.job;
    if (job === null) return;
    slot.job = null;
    this.#replace(slot);
    job.reject(
      new LimitExceededError(
        'timeoutMs',
        job.timeoutMs,
        undefined,
        'guest ran past timeoutMs and was terminated',
      ),
    );
  }

  #crash(slot: Slot, worker: Worker, why: string, cause?: Error): void {
    // Stale (a worker we terminated and replaced), closing, or a slot already dropped.
    if (slot.worker !== worker || this.#closed || !this.#slots.includes(slot)) return;
    const job = slot.job;
    slot.job = null;
    clearTimeout(slot.timer);
    if (slot.ready) {
      this.#replace(slot);
    } else {
      // Died before it was ever ready: respawning would loop. Drop the slot and fail what
      // waits; the next exec spawns afresh.
      this.#terminate(worker);
      this.#slots.splice(this.#slots.indexOf(slot), 1);
      const queue = this.#queue;
      this.#queue = [];
      for (const j of queue) j.reject(crashError(why, cause));
    }
    job?.reject(
      job !== null && (cause as { code?: string } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? new LimitExceededError(
            'memoryMb',
            job.memoryMb,
            undefined,
            `guest exhausted the worker's heap (resourceLimits) and the worker was stopped: ${why}`,
          )
        : crashError(why, cause),
    );
  }

  #replace(slot: Slot): void {
    this.#terminate(slot.worker);
    slot.ready = false;
    slot.loaded.clear();
    slot.worker = this.#newWorker(slot);
  }

  #terminate(worker: Worker): void {
    worker.unref(); // a worker on its way out never keeps the process alive
    const p = worker.terminate();
    const done = (): void => void this.#terminating.delete(p);
    this.#terminating.add(p);
    p.then(done, done);
  }
}

function closedError(): ThunderpacError {
  return new ThunderpacError('WASM_BACKEND_CLOSED', 'the wasm backend was closed');
}

function crashError(why: string, cause: Error | undefined): ThunderpacError {
  return new ThunderpacError('WASM_WORKER_CRASHED', `wasm worker died: ${why}`, { cause });
}
