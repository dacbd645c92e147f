/** Abuse detection: per-actor spikes, violations over a window, cooldowns, qos.abuse_detected. */

export {
  ABUSE_DETECTED,
  type AbuseDetectedEvent,
  AbuseDetector,
  type AbuseDetectorOptions,
  type AbuseEvents,
  ActorCoolingDownError,
  SPIKE_DETECTED,
  type SpikeDetectedEvent,
} from './abuse-detector.js';
export {
  DEFAULT_SPIKE_BASELINE_INTERVALS,
  DEFAULT_SPIKE_FACTOR,
  DEFAULT_SPIKE_INTERVAL_MS,
  DEFAULT_SPIKE_MAX_ACTORS,
  DEFAULT_SPIKE_MIN_BASELINE,
  type Spike,
  SpikeDetector,
  type SpikeDetectorOptions,
} from './spike-detector.js';
export {
  DEFAULT_COOLDOWN_MS,
  DEFAULT_MAX_VIOLATIONS,
  DEFAULT_VIOLATION_MAX_ACTORS,
  DEFAULT_VIOLATION_WINDOW_MS,
  type Violation,
  type ViolationKind,
  type ViolationOutcome,
  ViolationTracker,
  type ViolationTrackerOptions,
} from './violations.js';
