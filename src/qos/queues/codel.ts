/**
 * CoDel (RFC 8289) state for one queue: sheds by how long items waited, not by how many wait.
 * A queue whose delay stays above `targetMs` for a whole `intervalMs` is a standing queue, not a
 * burst; CoDel then sheds one item, and keeps shedding at intervals shrinking as 1/sqrt(count)
 * until the delay falls below target. The control law and its constants follow the RFC's
 * pseudocode (the Linux variant of the count restart), with "bytes() <= MAXPACKET" read as
 * "the queue holds nothing after this item": the last item waiting is never shed.
 *
 * The state machine lives here; the queue drives it (see PriorityFairQueue#dequeueClass),
 * because the RFC's dequeue interleaves shedding with popping.
 */

export interface CoDelOptions {
  /** Acceptable standing queue delay, ms (RFC default 5). */
  readonly targetMs: number;
  /** How long the delay must stay above target before shedding starts, ms (RFC default 100). */
  readonly intervalMs: number;
}

export const CODEL_DEFAULTS: CoDelOptions = { targetMs: 5, intervalMs: 100 };

export class CoDelState {
  readonly targetMs: number;
  readonly intervalMs: number;
  /** When the delay will have been above target for an interval; 0: it is not above target. */
  firstAboveTime = 0;
  /** When the next shed is due while dropping. */
  dropNext = 0;
  /** Sheds in the current dropping episode (drives the control law). */
  count = 0;
  lastCount = 0;
  dropping = false;
  /** Set by `observe` for the item just popped: may it be shed. */
  okToDrop = false;

  constructor(options: CoDelOptions) {
    this.targetMs = options.targetMs;
    this.intervalMs = options.intervalMs;
  }

  /** RFC 8289 dodequeue's bookkeeping for one popped item: its sojourn and what remains queued. */
  observe(now: number, sojournMs: number, remaining: number): void {
    this.okToDrop = false;
    if (sojournMs < this.targetMs || remaining === 0) {
      this.firstAboveTime = 0;
    } else if (this.firstAboveTime === 0) {
      this.firstAboveTime = now + this.intervalMs;
    } else if (now >= this.firstAboveTime) {
      this.okToDrop = true;
    }
  }

  /** RFC 8289 dodequeue on an empty queue. */
  observeEmpty(): void {
    this.okToDrop = false;
    this.firstAboveTime = 0;
  }

  /** The control law: the next shed `interval / sqrt(count)` after `t`. */
  controlLaw(t: number, count: number): number {
    return t + this.intervalMs / Math.sqrt(count);
  }
}
