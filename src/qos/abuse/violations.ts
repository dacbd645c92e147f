/**
 * Violations over a sliding window, and the cooldowns they trigger.
 *
 * A violation is whatever the caller says it is (a rate-limit refusal, a quota exceeded, a
 * denied request, a spike). Per actor the last `maxViolations + 1` are kept (a ring: that is all
 * the rule needs). A violation at time t counts while now − t < windowMs. The rule is the seed's
 * "> 10 violations in an hour": the violation that makes the count in the window exceed
 * `maxViolations` (default 10, window 1 h) starts a cooldown of exactly `cooldownMs` (default
 * 15 min): blocked on [start, start + cooldownMs), free again at start + cooldownMs. Starting a
 * cooldown spends the violations that caused it (the window is emptied), so the next cooldown
 * needs another maxViolations + 1; violations during a cooldown are counted toward the next one
 * but do not extend it.
 *
 * Memory: an actor with no violation in the window and no cooldown running is forgotten (it is
 * then identical to a fresh one), examined `sweepPerInsert` at a time as new actors arrive; at
 * most `maxActors`, beyond which the least recently violating actor is dropped.
 */

import type { Clock } from '../clock.js';
import { QosConfigError } from '../limiters/errors.js';

export const DEFAULT_VIOLATION_WINDOW_MS = 3_600_000;
export const DEFAULT_MAX_VIOLATIONS = 10;
export const DEFAULT_COOLDOWN_MS = 900_000;
export const DEFAULT_VIOLATION_MAX_ACTORS = 100_000;
export const DEFAULT_VIOLATION_SWEEP_PER_INSERT = 4;

export type ViolationKind = 'rate_limited' | 'quota_exceeded' | 'denied' | 'spike' | (string & {});

export interface Violation {
  readonly kind: ViolationKind;
  /** Monotonic ms (the Clock's) when it happened. */
  readonly atMs: number;
  /** Wall-clock epoch ms, for people reading the event. */
  readonly at: number;
  readonly detail?: string;
}

export interface ViolationTrackerOptions {
  readonly clock: Clock;
  readonly wallClock?: Clock;
  readonly windowMs?: number;
  readonly maxViolations?: number;
  readonly cooldownMs?: number;
  readonly maxActors?: number;
  readonly sweepPerInsert?: number;
}

/** What recording a violation did. */
export interface ViolationOutcome {
  /** Violations in the window after this one (0 right after a cooldown started: spent). */
  readonly inWindow: number;
  /** Set when this violation started a cooldown: the violations that caused it, oldest first. */
  readonly cooldown: { readonly untilMs: number; readonly violations: readonly Violation[] } | null;
}

interface ActorViolations {
  /** Ring of the last maxViolations + 1 violations. */
  readonly ring: (Violation | undefined)[];
  head: number;
  size: number;
  /** Monotonic ms when the running cooldown ends; -Infinity when none. */
  blockedUntil: number;
}

const wall: Clock = { now: () => Date.now() };

export class ViolationTracker {
  readonly windowMs: number;
  readonly maxViolations: number;
  readonly cooldownMs: number;
  readonly maxActors: number;
  readonly #clock: Clock;
  readonly #wall: Clock;
  readonly #sweepPerInsert: number;
  readonly #actors = new Map<string, ActorViolations>();
  #cursor: MapIterator<[string, ActorViolations]> | null = null;

  constructor(options: ViolationTrackerOptions, path = 'violations') {
    if (typeof options?.clock?.now !== 'function')
      throw new QosConfigError(`${path}.clock`, 'a Clock', options?.clock);
    this.#clock = options.clock;
    this.#wall = options.wallClock ?? wall;
    this.windowMs = positive(`${path}.windowMs`, options.windowMs ?? DEFAULT_VIOLATION_WINDOW_MS);
    this.maxViolations = integer(
      `${path}.maxViolations`,
      options.maxViolations ?? DEFAULT_MAX_VIOLATIONS,
      0,
      100_000,
    );
    this.cooldownMs = positive(`${path}.cooldownMs`, options.cooldownMs ?? DEFAULT_COOLDOWN_MS);
    this.maxActors = integer(
      `${path}.maxActors`,
      options.maxActors ?? DEFAULT_VIOLATION_MAX_ACTORS,
      1,
      2 ** 31,
    );
    this.#sweepPerInsert = integer(
      `${path}.sweepPerInsert`,
      options.sweepPerInsert ?? DEFAULT_VIOLATION_SWEEP_PER_INSERT,
      0,
      2 ** 31,
    );
  }

  get actors(): number {
    return this.#actors.size;
  }

  record(actor: string, kind: ViolationKind, detail?: string): ViolationOutcome {
    const now = this.#clock.now();
    let a = this.#actors.get(actor);
    if (!a) {
      this.#admit(now);
      a = {
        ring: new Array(this.maxViolations + 1),
        head: 0,
        size: 0,
        blockedUntil: Number.NEGATIVE_INFINITY,
      };
    } else this.#actors.delete(actor); // re-inserted below: most recent last
    this.#actors.set(actor, a);
    this.#expire(a, now);
    const v: Violation =
      detail === undefined
        ? { kind, atMs: now, at: this.#wall.now() }
        : { kind, atMs: now, at: this.#wall.now(), detail };
    const cap = a.ring.length;
    a.ring[(a.head + a.size) % cap] = v;
    if (a.size < cap) a.size++;
    else a.head = (a.head + 1) % cap;
    if (a.size <= this.maxViolations) return { inWindow: a.size, cooldown: null };
    const violations = this.#list(a);
    a.ring.fill(undefined);
    a.head = 0;
    a.size = 0;
    const untilMs = now + this.cooldownMs;
    // Violations during a cooldown do not extend it (it ends exactly cooldownMs after it began).
    if (!(now < a.blockedUntil)) a.blockedUntil = untilMs;
    return { inWindow: 0, cooldown: { untilMs: a.blockedUntil, violations } };
  }

  /** ms left of the actor's cooldown; 0 when not blocked. */
  blockedForMs(actor: string): number {
    const a = this.#actors.get(actor);
    if (!a) return 0;
    const left = a.blockedUntil - this.#clock.now();
    return Math.max(left, 0);
  }

  /** The actor's violations still in the window, oldest first. */
  violations(actor: string): readonly Violation[] {
    const a = this.#actors.get(actor);
    if (!a) return [];
    this.#expire(a, this.#clock.now());
    return this.#list(a);
  }

  /** Lift a cooldown and forget the actor's violations (an operator's pardon). */
  pardon(actor: string): void {
    this.#actors.delete(actor);
  }

  #list(a: ActorViolations): Violation[] {
    const out: Violation[] = [];
    for (let i = 0; i < a.size; i++) out.push(a.ring[(a.head + i) % a.ring.length] as Violation);
    return out;
  }

  /** Drop violations that left the window (now − atMs ≥ windowMs), oldest first. */
  #expire(a: ActorViolations, now: number): void {
    while (a.size > 0) {
      const oldest = a.ring[a.head] as Violation;
      if (now - oldest.atMs < this.windowMs) break;
      a.ring[a.head] = undefined;
      a.head = (a.head + 1) % a.ring.length;
      a.size--;
    }
  }

  #admit(now: number): void {
    for (let i = 0; i < this.#sweepPerInsert && this.#actors.size > 0; i++) {
      let next = this.#cursor?.next();
      if (!next || next.done) {
        this.#cursor = this.#actors.entries();
        next = this.#cursor.next();
        if (next.done) break;
      }
      const [key, a] = next.value;
      this.#expire(a, now);
      if (a.size === 0 && !(now < a.blockedUntil)) this.#actors.delete(key);
    }
    if (this.#actors.size >= this.maxActors) {
      const oldest = this.#actors.keys().next().value;
      if (oldest !== undefined) this.#actors.delete(oldest);
    }
  }
}

function positive(path: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new QosConfigError(path, 'a number of ms > 0', v);
  return v;
}

function integer(path: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new QosConfigError(path, `an integer from ${min} to ${max}`, v);
  }
  return v;
}
