/**
 * Why a queued item never ran, or was never queued: typed, so the daemon maps each to its status
 * (a full class or a shed item is a 503 with Retry-After, a missed deadline a 504) and metrics
 * count each reason apart.
 */

import { ThunderpacError } from '../../runtime/errors.js';

/** The reasons an item leaves a queue without running, plus the refusal at the door. */
export type QueueDropReason =
  /** Refused at enqueue: the priority class holds `maxSize` items. */
  | 'class-full'
  /** Refused at enqueue: the actor already holds `maxPerActor` items of the class. */
  | 'actor-full'
  /** Dropped at dequeue: its deadline had passed, so it was never run. */
  | 'deadline'
  /** Shed at dequeue by CoDel: queue delay stayed above target for an interval. */
  | 'queue-delay'
  /** Dropped because the queue was closed (the daemon shutting down). */
  | 'closed';

export class QueueDropError extends ThunderpacError {
  readonly reason: QueueDropReason;
  /** The priority class of the item. */
  readonly priority: string;
  readonly actor: string;

  constructor(reason: QueueDropReason, priority: string, actor: string, detail: string) {
    super(`QOS_QUEUE_${reason.toUpperCase().replace('-', '_')}`, detail);
    this.reason = reason;
    this.priority = priority;
    this.actor = actor;
  }
}

/** A queue or breaker option out of range: names the field path, what was expected and found. */
export class QosConfigError extends ThunderpacError {
  readonly path: string;
  constructor(path: string, expected: string, found: unknown) {
    super('QOS_CONFIG', `${path}: expected ${expected}, found ${JSON.stringify(found) ?? String(found)}`);
    this.path = path;
  }
}
