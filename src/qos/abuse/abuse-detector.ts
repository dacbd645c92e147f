/**
 * Abuse detection for the daemon: spikes (spike-detector.ts) and violations with cooldowns
 * (violations.ts) per actor, and `qos.abuse_detected` events.
 *
 * The caller reports requests (`request(actor)`, before admission) and violations
 * (`violation(actor, kind)`: a 429, a quota exceeded, a 403…), and asks `blockedForMs(actor)`
 * before admitting (> 0: refuse with Retry-After). A spike is itself a violation of kind
 * `spike` (so a sustained flood ends in a cooldown) and is announced as a `qos.spike_detected`
 * event. The violation that takes an actor past `maxViolations` in the window announces
 * `qos.abuse_detected` with the actor, the violations and the end of the cooldown. Events are
 * plain typed callbacks, called synchronously; a listener that throws does not stop the others
 * nor the decision (the error goes to `onListenerError`, default: ignored). The daemon publishes
 * them on its event bus / diagnostics_channel.
 */

import type { Clock } from '../clock.js';
import { QosConfigError } from '../limiters/errors.js';
import { ThunderpacError } from '../../runtime/errors.js';
import { type Spike, SpikeDetector, type SpikeDetectorOptions } from './spike-detector.js';
import {
  type Violation,
  type ViolationKind,
  ViolationTracker,
  type ViolationTrackerOptions,
} from './violations.js';

export const ABUSE_DETECTED = 'qos.abuse_detected';
export const SPIKE_DETECTED = 'qos.spike_detected';

export interface AbuseDetectedEvent {
  readonly name: typeof ABUSE_DETECTED;
  readonly actor: string;
  /** The violations that crossed the threshold, oldest first (maxViolations + 1 of them). */
  readonly violations: readonly Violation[];
  /** Monotonic ms (the Clock's) when the cooldown ends, and its length from now. */
  readonly blockedUntilMs: number;
  readonly blockedForMs: number;
}

export interface SpikeDetectedEvent extends Spike {
  readonly name: typeof SPIKE_DETECTED;
}

export interface AbuseEvents {
  readonly [ABUSE_DETECTED]: AbuseDetectedEvent;
  readonly [SPIKE_DETECTED]: SpikeDetectedEvent;
}

export interface AbuseDetectorOptions {
  /** Monotonic time for windows, intervals and cooldowns. */
  readonly clock: Clock;
  /** Wall time stamped on violations (epoch ms); default Date.now. */
  readonly wallClock?: Clock;
  readonly spike?: Omit<SpikeDetectorOptions, 'clock'> | false;
  readonly violations?: Omit<ViolationTrackerOptions, 'clock' | 'wallClock'>;
  /** Count each spike as a violation of kind `spike` (default true). */
  readonly spikeIsViolation?: boolean;
  readonly onListenerError?: (err: unknown) => void;
}

/** An actor in cooldown asked to be admitted: HTTP 429 with Retry-After. */
export class ActorCoolingDownError extends ThunderpacError {
  readonly statusCode = 429;
  readonly actor: string;
  readonly retryAfterMs: number;
  constructor(actor: string, retryAfterMs: number) {
    super(
      'QOS_ACTOR_COOLING_DOWN',
      `${actor} is in an abuse cooldown for another ${Math.ceil(retryAfterMs / 1000)} s`,
    );
    this.actor = actor;
    this.retryAfterMs = retryAfterMs;
  }
}

type Listener<E> = (event: E) => void;

export class AbuseDetector {
  readonly spikes: SpikeDetector | null;
  readonly violationTracker: ViolationTracker;
  readonly #spikeIsViolation: boolean;
  readonly #onListenerError: (err: unknown) => void;
  readonly #clock: Clock;
  readonly #listeners: { [K in keyof AbuseEvents]: Listener<AbuseEvents[K]>[] } = {
    [ABUSE_DETECTED]: [],
    [SPIKE_DETECTED]: [],
  };

  constructor(options: AbuseDetectorOptions, path = 'abuse') {
    if (typeof options !== 'object' || options === null) throw new QosConfigError(path, 'an object', options);
    this.#clock = options.clock;
    this.spikes =
      options.spike === false
        ? null
        : new SpikeDetector({ ...options.spike, clock: options.clock }, `${path}.spike`);
    this.violationTracker = new ViolationTracker(
      {
        ...options.violations,
        clock: options.clock,
        ...(options.wallClock ? { wallClock: options.wallClock } : {}),
      },
      `${path}.violations`,
    );
    const siv = options.spikeIsViolation ?? true;
    if (typeof siv !== 'boolean') throw new QosConfigError(`${path}.spikeIsViolation`, 'a boolean', siv);
    this.#spikeIsViolation = siv;
    this.#onListenerError = options.onListenerError ?? (() => undefined);
  }

  on<K extends keyof AbuseEvents>(name: K, listener: Listener<AbuseEvents[K]>): () => void {
    const list = this.#listeners[name] as Listener<AbuseEvents[K]>[];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** Count a request of `actor` for spike detection; returns the spike when this one made it. */
  request(actor: string, n = 1): Spike | null {
    const spike = this.spikes?.record(actor, n) ?? null;
    if (spike) {
      this.#emit(SPIKE_DETECTED, { name: SPIKE_DETECTED, ...spike });
      if (this.#spikeIsViolation) {
        this.violation(
          actor,
          'spike',
          `${spike.count} requests in ${spike.intervalMs} ms, baseline ${spike.baseline}`,
        );
      }
    }
    return spike;
  }

  /** Record a violation; returns the abuse event when this one crossed the threshold. */
  violation(actor: string, kind: ViolationKind, detail?: string): AbuseDetectedEvent | null {
    const out = this.violationTracker.record(actor, kind, detail);
    if (!out.cooldown) return null;
    const event: AbuseDetectedEvent = {
      name: ABUSE_DETECTED,
      actor,
      violations: out.cooldown.violations,
      blockedUntilMs: out.cooldown.untilMs,
      blockedForMs: Math.max(0, out.cooldown.untilMs - this.#clock.now()),
    };
    this.#emit(ABUSE_DETECTED, event);
    return event;
  }

  /** ms left of the actor's cooldown; 0 when it may be admitted. */
  blockedForMs(actor: string): number {
    return this.violationTracker.blockedForMs(actor);
  }

  /** Throw ActorCoolingDownError when the actor is in a cooldown. */
  assertAdmissible(actor: string): void {
    const ms = this.violationTracker.blockedForMs(actor);
    if (ms > 0) throw new ActorCoolingDownError(actor, ms);
  }

  #emit<K extends keyof AbuseEvents>(name: K, event: AbuseEvents[K]): void {
    for (const l of this.#listeners[name] as Listener<AbuseEvents[K]>[]) {
      try {
        l(event);
      } catch (err) {
        this.#onListenerError(err);
      }
    }
  }
}
