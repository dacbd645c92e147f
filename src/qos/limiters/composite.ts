/**
 * Several limits on one key at once (per second, per minute, per hour): admitted only if every
 * limit admits. Two phases so that a refusal consumes nothing anywhere: first every limit says
 * how long until the cost fits (changing no state), then — only if all say "now" — every limit
 * takes it. The retry time is the largest of the waits, which is exact: each limit's wait is
 * the first moment it admits and, with no other traffic, it keeps admitting from then on.
 */

import type { Clock } from '../clock.js';
import type { Decision, Limiter } from '../decision.js';
import { QosConfigError, QosCostError } from './errors.js';
import type { KeyedLimiter } from './keyed-limiter.js';
import { clockMicros, clockOption } from './validate.js';

export class CompositeLimiter implements Limiter {
  readonly limiters: readonly KeyedLimiter[];
  readonly maxCost: number;
  readonly #clock: Clock;
  /** Reused per check: the slot each limit holds for the key. */
  readonly #slots: Int32Array;

  constructor(limiters: readonly KeyedLimiter[], clock: Clock, path = 'composite') {
    if (!Array.isArray(limiters) || limiters.length === 0) {
      throw new QosConfigError(`${path}.limiters`, 'at least one limiter', limiters);
    }
    this.limiters = [...limiters];
    this.#clock = clockOption(`${path}.clock`, clock);
    this.#slots = new Int32Array(limiters.length);
    this.maxCost = Math.min(...limiters.map((l) => l.maxCost));
  }

  /** 0 when admitted by every limit (and taken from each), else µs until all would admit. */
  acquireAt(key: string, cost: number, nowUs: number): number {
    if (!(cost >= 0 && cost <= this.maxCost && Math.floor(cost) === cost)) {
      throw new QosCostError(cost, this.maxCost);
    }
    const ls = this.limiters;
    ls[0]!.validateKey(key);
    for (let i = 0; i < ls.length; i++) {
      const slot = ls[i]!.slotFor(key, nowUs);
      // A fresh slot created in an earlier limit holds nothing: leaving it consumes nothing.
      if (slot < 0) return ls[i]!.fullWaitUs(nowUs);
      this.#slots[i] = slot;
    }
    let wait = 0;
    for (let i = 0; i < ls.length; i++) {
      const w = ls[i]!.waitSlot(this.#slots[i]!, cost, nowUs);
      if (w > wait) wait = w;
    }
    if (wait === 0) for (let i = 0; i < ls.length; i++) ls[i]!.takeSlot(this.#slots[i]!, cost, nowUs);
    return wait;
  }

  tryAcquire(key: string, cost = 1): boolean {
    return this.acquireAt(key, cost, clockMicros(this.#clock)) === 0;
  }

  check(key: string, cost = 1): Decision {
    return this.checkAt(key, cost, clockMicros(this.#clock));
  }

  /** The Decision names the tightest limit: the one with the least remaining. */
  checkAt(key: string, cost: number, nowUs: number): Decision {
    const wait = this.acquireAt(key, cost, nowUs);
    let limit = this.limiters[0]!.limit;
    let remaining = Infinity;
    let resetUs = 0;
    for (const l of this.limiters) {
      const slot = l.slotFor(key, nowUs);
      if (slot < 0) continue;
      const r = l.remainingSlot(slot, nowUs);
      if (r < remaining) {
        remaining = r;
        limit = l.limit;
      }
      resetUs = Math.max(resetUs, l.resetAfterUsSlot(slot, nowUs));
    }
    return {
      allowed: wait === 0,
      limit,
      remaining: wait === 0 && remaining !== Infinity ? remaining : 0,
      retryAfterMs: wait / 1000,
      resetAfterMs: resetUs / 1000,
    };
  }
}
