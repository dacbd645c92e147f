/**
 * Admission control for the daemon's executions: a concurrency limit (fixed or adaptive) in front
 * of the priority fair queue. What src/daemon/executions.ts's #admit/#release do with a counter and
 * an array, with fairness, priorities, deadlines and shedding:
 *
 *   await admission.admit(actor, { priority, deadline });   // rejects with QueueDropError
 *   try { run } finally { admission.release(latencyMs, ok) }
 *
 * A slot freed by release goes to the next item the queue yields (strict priority, DRR across
 * actors); items past their deadline or shed by CoDel on the way are rejected with their typed
 * reason. A fixed limit is an AimdLimit with minLimit = maxLimit.
 * Deadlines are noticed when the queue is next dequeued (at a release): a caller that must answer
 * by its deadline even while nothing finishes keeps its own timer as well.
 */

import type { Clock } from '../clock.js';
import type { QueueDropError } from '../queues/errors.js';
import {
  type EnqueueOptions,
  PriorityFairQueue,
  type PriorityFairQueueOptions,
} from '../queues/priority-queue.js';
import { AimdLimit, ConcurrencyLimiter } from './adaptive-limit.js';

interface Waiter {
  resolve(): void;
  reject(error: QueueDropError): void;
}

export class AdmissionControl {
  readonly limiter: ConcurrencyLimiter;
  readonly queue: PriorityFairQueue<Waiter>;

  constructor(
    clock: Clock,
    limiter: ConcurrencyLimiter | number,
    queueOptions: Omit<PriorityFairQueueOptions<Waiter>, 'onDrop'> = {},
  ) {
    this.limiter =
      typeof limiter === 'number'
        ? new ConcurrencyLimiter(
            new AimdLimit({ minLimit: limiter, maxLimit: limiter, initialLimit: limiter }),
          )
        : limiter;
    this.queue = new PriorityFairQueue<Waiter>(clock, { ...queueOptions, onDrop: (w, e) => w.reject(e) });
  }

  get inFlight(): number {
    return this.limiter.inFlight;
  }

  get queued(): number {
    return this.queue.length;
  }

  /**
   * Resolves when the caller may run (at once if a slot is free and nobody waits); rejects with
   * QueueDropError when refused at the door ('class-full', 'actor-full', 'closed') or dropped
   * while waiting ('deadline', 'queue-delay', 'closed').
   */
  admit(actor: string, options: Omit<EnqueueOptions, 'actor'> = {}): Promise<void> {
    // Nobody waiting: no queue to be fair in, take a slot directly (the common, cheap path).
    if (this.queue.length === 0 && !this.queue.closed && this.#free() && this.limiter.tryAcquire())
      return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      try {
        this.queue.enqueue({ resolve, reject }, { ...options, actor });
      } catch (e) {
        reject(e);
      }
    });
  }

  /** Ends an admitted execution: the limit learns from it, freed slots go to waiters. */
  release(latencyMs: number, ok: boolean): void {
    this.limiter.release(latencyMs, ok);
    this.#pump();
  }

  /** Rejects every waiter with 'closed' and refuses new ones; running executions finish. */
  close(): void {
    this.queue.close();
  }

  /** A slot is free (checked first so the limiter's refusal count means callers turned away, not queued). */
  #free(): boolean {
    return this.limiter.inFlight < this.limiter.limit;
  }

  #pump(): void {
    while (this.queue.length > 0 && this.#free() && this.limiter.tryAcquire()) {
      const next = this.queue.dequeue();
      if (next === undefined) {
        this.limiter.abandon();
        return;
      }
      next.resolve();
    }
  }
}
