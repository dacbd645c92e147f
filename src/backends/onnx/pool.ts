/**
 * The onnx worker pool: inference off the event loop.
 *
 * `size` workers (threads or child processes, see endpoint.ts), each holding at most one
 * request and one InferenceSession per model key (sessions are cached by model digest +
 * session options). Requests queue FIFO.
 *
 * Failure handling — a request is never lost silently:
 *   - timeout: the request fails with LimitExceededError('timeoutMs'). A process worker is
 *     killed and replaced at once; a thread cannot be (see endpoint.ts), so it is retired: its
 *     run finishes, the answer is discarded, the thread is terminated while idle and replaced;
 *   - crash (the worker exits on its own, is killed, runs out of memory): the request it held
 *     is retried on another (or the restarted) worker up to `retries` times — inference is a
 *     pure function of model and input, so a retry is safe — then fails with
 *     OnnxWorkerCrashedError; the slot restarts after an exponential backoff, so a model that
 *     kills its worker on load cannot spin the CPU in a restart loop.
 * drain() stops intake and resolves when everything accepted has been answered; close()
 * fails what is pending and terminates the workers.
 */

import { channel } from 'node:diagnostics_channel';
import { LimitExceededError } from '../../runtime/errors.js';
import type { TensorData } from '../../runtime/types.js';
import { type Endpoint, type Isolation, spawnEndpoint } from './endpoint.js';
import { OnnxWorkerCrashedError, ShuttingDownError } from './errors.js';

export const WORKER_RESTART_CHANNEL = 'thunderpac:onnx:worker-restart';
const restartChannel = channel(WORKER_RESTART_CHANNEL);

export interface WireTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: TensorData | Uint8Array;
}

export interface PoolResult {
  readonly out: Record<string, WireTensor>;
  /** Time inside session.run(), measured in the worker. */
  readonly ns: number;
}

export interface OnnxPoolOptions {
  readonly size: number;
  /** Threads (default) or child processes. */
  readonly isolation?: Isolation;
  readonly ortPath: string;
  /** Times a request is retried after its worker crashed (default 1). */
  readonly retries?: number;
  /** Restart backoff after consecutive crashes: initial, doubled up to max (default 50 → 2000 ms). */
  readonly backoffMs?: { readonly initial: number; readonly max: number };
  /** V8 heap limits of each worker (onnxruntime's own memory is native and not bounded by this). */
  readonly resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number };
}

interface Job {
  readonly key: string;
  readonly model: Uint8Array;
  readonly options: unknown;
  readonly feeds: Record<string, WireTensor>;
  readonly timeoutMs: number;
  attempts: number;
  readonly resolve: (r: PoolResult) => void;
  readonly reject: (e: Error) => void;
}

interface Slot {
  readonly index: number;
  worker: Endpoint | null;
  /** A thread whose request timed out: terminate it once its run ends. */
  retiring: boolean;
  ready: boolean;
  readonly loaded: Set<string>;
  job: Job | null;
  jobId: number;
  timer: NodeJS.Timeout | undefined;
  /** Set when we terminate the worker ourselves (timeout, close): its exit is not a crash. */
  expectedExit: boolean;
  lastError: string | undefined;
  /** Crashed and waiting out its restart backoff: not to be respawned by #pump. */
  down: boolean;
  /**
   * The thread's input buffer, here between requests and in the worker during one: inputs are
   * copied into it and it is transferred there and back. Why: a fresh buffer per request costs
   * its page faults (~260 µs for a 384 KiB batch on this VM, 25× the memcpy into a warm one).
   */
  buffer: ArrayBuffer | null;
}

export interface PoolStats {
  readonly size: number;
  readonly alive: number;
  readonly busy: number;
  readonly queued: number;
  readonly crashes: number;
  readonly restarts: number;
  readonly retried: number;
  readonly timeouts: number;
}

export class OnnxWorkerPool {
  readonly #opts: OnnxPoolOptions;
  readonly #slots: Slot[] = [];
  #queue: Job[] = [];
  #keepAlive: NodeJS.Timeout | undefined;
  #nextId = 1;
  #consecutiveCrashes = 0;
  #crashes = 0;
  #restarts = 0;
  #retried = 0;
  #timeouts = 0;
  #accepting = true;
  #closed = false;
  #drainWaiters: (() => void)[] = [];
  readonly #terminating = new Set<Promise<void>>();
  readonly #retired = new Map<Slot, () => void>();

  constructor(opts: OnnxPoolOptions) {
    this.#opts = opts;
    for (let i = 0; i < opts.size; i++) {
      this.#slots.push({
        index: i,
        worker: null,
        retiring: false,
        ready: false,
        loaded: new Set(),
        job: null,
        jobId: 0,
        timer: undefined,
        expectedExit: false,
        lastError: undefined,
        down: false,
        buffer: null,
      });
    }
  }

  /** Spawn every worker now (warm-up) instead of on first use; resolves when all are ready. */
  async start(): Promise<void> {
    for (const slot of this.#slots) if (!slot.worker && !slot.down) this.#spawn(slot);
    const deadline = Date.now() + 30_000;
    while (this.#slots.some((s) => !s.ready) && !this.#closed && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  run(
    key: string,
    model: Uint8Array,
    options: unknown,
    feeds: Record<string, WireTensor>,
    timeoutMs: number,
  ): Promise<PoolResult> {
    if (!this.#accepting) return Promise.reject(new ShuttingDownError('onnx worker pool'));
    return new Promise<PoolResult>((resolve, reject) => {
      this.#queue.push({ key, model, options, feeds, timeoutMs, attempts: 0, resolve, reject });
      this.#pump();
    });
  }

  /** Forget a model in every worker (dispose). */
  drop(key: string): void {
    for (const slot of this.#slots) {
      if (slot.loaded.delete(key)) slot.worker?.send({ t: 'drop', k: key }, []);
    }
  }

  /** Live workers, for tests that kill one (a crash) and for diagnostics. */
  workers(): Endpoint[] {
    return this.#slots.flatMap((s) => (s.worker ? [s.worker] : []));
  }

  /** The worker currently running a request, if any. */
  busyWorker(): Endpoint | undefined {
    return this.#slots.find((s) => s.job && s.worker)?.worker ?? undefined;
  }

  stats(): PoolStats {
    return {
      size: this.#opts.size,
      alive: this.#slots.filter((s) => s.worker && s.ready).length,
      busy: this.#slots.filter((s) => s.job).length,
      queued: this.#queue.length,
      crashes: this.#crashes,
      restarts: this.#restarts,
      retried: this.#retried,
      timeouts: this.#timeouts,
    };
  }

  /** Stop intake; resolve when every accepted request has been answered. */
  drain(): Promise<void> {
    this.#accepting = false;
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#accepting = false;
    const queue = this.#queue;
    this.#queue = [];
    this.#holdWhileQueued();
    for (const job of queue) job.reject(new ShuttingDownError('onnx worker pool'));
    const busyThreads: Promise<void>[] = [];
    for (const slot of this.#slots) {
      const job = slot.job;
      clearTimeout(slot.timer);
      job?.reject(new ShuttingDownError('onnx worker pool'));
      if (job && slot.worker && !slot.worker.killableWhileBusy) {
        // Terminating a thread inside session.run() aborts the process: let the run end first.
        slot.retiring = true;
        busyThreads.push(new Promise((resolve) => this.#retired.set(slot, resolve)));
        continue;
      }
      slot.job = null;
      this.#terminate(slot);
    }
    this.#notifyDrained();
    await Promise.allSettled(busyThreads);
    await Promise.allSettled(this.#terminating);
  }

  #idle(): boolean {
    return this.#queue.length === 0 && this.#slots.every((s) => s.job === null);
  }

  #notifyDrained(): void {
    if (!this.#idle()) return;
    for (const w of this.#drainWaiters.splice(0)) w();
  }

  #spawn(slot: Slot): void {
    slot.ready = false;
    slot.retiring = false;
    slot.loaded.clear();
    slot.expectedExit = false;
    slot.lastError = undefined;
    // Idle workers never keep the process alive; a busy one is ref'd while it holds a job.
    const worker: Endpoint = spawnEndpoint(
      this.#opts.isolation ?? 'thread',
      this.#opts.ortPath,
      {
        message: (m) => this.#onMessage(slot, worker, m as WorkerMessage),
        error: (message) => {
          if (slot.worker === worker) slot.lastError = message;
        },
        exit: (detail) => this.#onExit(slot, worker, detail),
      },
      this.#opts.resourceLimits,
    );
    slot.worker = worker;
  }

  #pump(): void {
    this.#dispatch();
    this.#holdWhileQueued();
  }

  /**
   * Idle and spawning workers are unref'd (they never keep the process alive), and a queued job
   * has no timer yet: without a handle of its own, a process whose only work is a request
   * waiting for a worker to come up (or back after a crash) would exit under it.
   */
  #holdWhileQueued(): void {
    if (this.#queue.length > 0 && !this.#closed) this.#keepAlive ??= setInterval(() => {}, 2 ** 30);
    else if (this.#keepAlive) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }

  #dispatch(): void {
    if (this.#closed) return;
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (!slot.worker) {
        if (!slot.down) this.#spawn(slot);
        continue;
      }
      if (!slot.ready || slot.job) continue;
      this.#start(slot, this.#queue.shift()!);
    }
  }

  #start(slot: Slot, job: Job): void {
    const worker = slot.worker!;
    slot.job = job;
    slot.jobId = this.#nextId++;
    job.attempts++;
    const first = !slot.loaded.has(job.key);
    slot.loaded.add(job.key);
    // Copies go to the worker: the caller's tensors stay valid and unchanged, and a retry after
    // a crash still has the originals. A thread gets them in the slot's reused buffer
    // (transferred there and back); a process gets them serialized, which is a copy already.
    const feeds: Record<string, WireTensor> = {};
    let buffer: ArrayBuffer | undefined;
    if (worker.isolation === 'thread') {
      buffer = this.#inputBuffer(slot, job.feeds);
      const bytes = new Uint8Array(buffer);
      let at = 0;
      for (const [name, t] of Object.entries(job.feeds)) {
        const data = t.data;
        bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
        const View = data.constructor as new (b: ArrayBuffer, o: number, n: number) => TensorData;
        const per = (data as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
        feeds[name] = { type: t.type, dims: t.dims, data: new View(buffer, at, data.byteLength / per) };
        at += align8(data.byteLength);
      }
    } else {
      for (const [name, t] of Object.entries(job.feeds)) {
        // Serialization sends a view's whole underlying buffer: cut views of larger ones.
        const whole = t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength;
        feeds[name] = whole ? t : { type: t.type, dims: t.dims, data: t.data.slice() };
      }
    }
    worker.ref();
    worker.send(
      {
        t: 'run',
        id: slot.jobId,
        k: job.key,
        ...(first && { m: job.model, o: job.options }),
        f: feeds,
        ...(buffer && { b: buffer }),
      },
      buffer ? [buffer] : [],
    );
    slot.timer = setTimeout(() => this.#timeout(slot, worker), job.timeoutMs);
  }

  /** The slot's input buffer, grown (to a power of two) when these feeds need more room. */
  #inputBuffer(slot: Slot, feeds: Record<string, WireTensor>): ArrayBuffer {
    let size = 0;
    for (const t of Object.values(feeds)) size += align8(t.data.byteLength);
    let buffer = slot.buffer;
    if (!buffer || buffer.byteLength < size)
      buffer = new ArrayBuffer(2 ** Math.ceil(Math.log2(Math.max(size, 64))));
    slot.buffer = null; // in the worker until it answers
    return buffer;
  }

  #finish(slot: Slot): Job | null {
    const job = slot.job;
    slot.job = null;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.worker?.unref();
    return job;
  }

  #onMessage(slot: Slot, worker: Endpoint, m: WorkerMessage): void {
    if (slot.worker !== worker) return;
    if (m.t === 'ready') {
      slot.ready = true;
      this.#pump();
      return;
    }
    if (slot.retiring) {
      // The run of a timed-out (or closed) request ended: the thread is idle, so terminating
      // it is safe now. The answer is discarded; its caller was already told.
      slot.job = null;
      this.#terminate(slot);
      const done = this.#retired.get(slot);
      this.#retired.delete(slot);
      done?.();
      if (!this.#closed) this.#restart(slot, 0, 'retired after timeout');
      this.#notifyDrained();
      return;
    }
    if ((m.t === 'ok' || m.t === 'err') && m.b) slot.buffer = m.b;
    if (m.id !== slot.jobId || !slot.job) return;
    const job = this.#finish(slot)!;
    this.#consecutiveCrashes = 0;
    if (m.t === 'ok') job.resolve({ out: m.out, ns: m.ns });
    else {
      slot.loaded.delete(job.key);
      const err = new Error(m.message) as Error & { code?: string };
      err.code = m.code ?? 'ONNX_RUNTIME';
      job.reject(err);
    }
    this.#pump();
    this.#notifyDrained();
  }

  #timeout(slot: Slot, worker: Endpoint): void {
    if (slot.worker !== worker || !slot.job) return;
    const job = slot.job;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    this.#timeouts++;
    job.reject(
      new LimitExceededError('timeoutMs', job.timeoutMs, undefined, 'inference did not finish in time'),
    );
    if (worker.killableWhileBusy) {
      this.#finish(slot);
      this.#terminate(slot);
      this.#restart(slot, 0, 'timeout');
    } else {
      // Keep the slot busy (job set) until the thread answers; then it is retired.
      slot.retiring = true;
    }
    this.#notifyDrained();
  }

  #onExit(slot: Slot, worker: Endpoint, exitDetail: string): void {
    if (slot.worker !== worker) return; // an old worker we already replaced
    const waiter = this.#retired.get(slot);
    this.#retired.delete(slot);
    waiter?.();
    slot.worker = null;
    slot.ready = false;
    if (slot.expectedExit || this.#closed) return;
    this.#crashes++;
    this.#consecutiveCrashes++;
    const detail = slot.lastError ?? exitDetail;
    const retiring = slot.retiring;
    slot.retiring = false;
    const job = this.#finish(slot);
    if (retiring) {
      // Its request already failed with a timeout; nothing to retry.
    } else if (job) {
      if (job.attempts <= (this.#opts.retries ?? 1)) {
        this.#retried++;
        this.#queue.unshift(job); // first in line: it has waited longest
      } else {
        job.reject(new OnnxWorkerCrashedError(`${detail} (after ${job.attempts} attempts)`));
      }
    }
    const { initial, max } = this.#opts.backoffMs ?? { initial: 50, max: 2_000 };
    const delay = Math.min(max, initial * 2 ** (this.#consecutiveCrashes - 1));
    slot.down = true;
    this.#restart(slot, delay, detail);
    this.#pump(); // another live worker may take the retried request now
    this.#notifyDrained();
  }

  #restart(slot: Slot, delayMs: number, reason: string): void {
    if (this.#closed) return;
    const go = () => {
      slot.down = false;
      if (this.#closed || slot.worker) return;
      this.#restarts++;
      if (restartChannel.hasSubscribers) restartChannel.publish({ slot: slot.index, reason, delayMs });
      this.#spawn(slot);
      this.#pump();
    };
    if (delayMs === 0) go();
    else setTimeout(go, delayMs).unref();
  }

  #terminate(slot: Slot): void {
    const worker = slot.worker;
    if (!worker) return;
    slot.expectedExit = true;
    slot.worker = null;
    slot.ready = false;
    const p = worker.kill();
    this.#terminating.add(p);
    p.finally(() => this.#terminating.delete(p)).catch(() => {});
  }
}

type WorkerMessage =
  | { t: 'ready' }
  | { t: 'ok'; id: number; out: Record<string, WireTensor>; ns: number; b?: ArrayBuffer }
  | { t: 'err'; id: number; message: string; code?: string; b?: ArrayBuffer };

/** Tensors start on 8-byte boundaries in a worker's input buffer (float64, int64 views need it). */
function align8(n: number): number {
  return (n + 7) & ~7;
}
