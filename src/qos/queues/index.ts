export { CODEL_DEFAULTS, type CoDelOptions } from './codel.js';
export { QosConfigError, QueueDropError, type QueueDropReason } from './errors.js';
export {
  FAIR_QUEUE_DEFAULTS,
  FairQueue,
  type FairQueueOptions,
  MAX_WEIGHT,
  type QueuedItem,
} from './fair-queue.js';
export {
  DEFAULT_CLASS_MAX_SIZE,
  type EnqueueOptions,
  PRIORITIES,
  type Priority,
  type PriorityClassOptions,
  PriorityFairQueue,
  type PriorityFairQueueOptions,
  type QueueClassCounts,
} from './priority-queue.js';
