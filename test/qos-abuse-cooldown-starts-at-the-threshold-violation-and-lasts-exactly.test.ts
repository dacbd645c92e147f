/**
 * Violations and cooldowns against an exact reference model (a plain list of times): the
 * violation that takes an actor past maxViolations within windowMs starts a cooldown, which
 * ends exactly cooldownMs later; the seed's "> 10 violations in an hour" emits
 * qos.abuse_detected with the actor and its 11 violations. Forgetting idle actors never changes
 * an answer.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ABUSE_DETECTED,
  type AbuseDetectedEvent,
  AbuseDetector,
  ActorCoolingDownError,
  ViolationTracker,
} from '../src/qos/abuse/index.js';
import { ManualClock } from '../src/qos/clock.js';

class ReferenceViolations {
  readonly #times = new Map<string, number[]>();
  readonly #blockedUntil = new Map<string, number>();
  constructor(
    readonly windowMs: number,
    readonly max: number,
    readonly cooldownMs: number,
  ) {}
  record(actor: string, now: number): boolean {
    const times = (this.#times.get(actor) ?? []).filter((t) => now - t < this.windowMs);
    times.push(now);
    if (times.length <= this.max) {
      this.#times.set(actor, times);
      return false;
    }
    this.#times.set(actor, []);
    if (!(now < (this.#blockedUntil.get(actor) ?? Number.NEGATIVE_INFINITY))) {
      this.#blockedUntil.set(actor, now + this.cooldownMs);
    }
    return true;
  }
  blockedForMs(actor: string, now: number): number {
    return Math.max(0, (this.#blockedUntil.get(actor) ?? Number.NEGATIVE_INFINITY) - now);
  }
}

type Step = { kind: 'violation'; actor: number } | { kind: 'advance'; ms: number };

describe('violation counting and cooldowns', () => {
  it('match the reference model: a cooldown starts at exactly the (max+1)-th violation in the window', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 1, max: 100 }),
        fc.array(
          fc.oneof(
            {
              weight: 3,
              arbitrary: fc.record({ kind: fc.constant('violation' as const), actor: fc.nat(40) }),
            },
            { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(60) }) },
          ),
          { maxLength: 300 },
        ),
        fc.integer({ min: 0, max: 8 }),
        (windowMs, maxViolations, cooldownMs, steps: Step[], sweepPerInsert) => {
          const clock = new ManualClock(1000);
          const t = new ViolationTracker({ clock, windowMs, maxViolations, cooldownMs, sweepPerInsert });
          const ref = new ReferenceViolations(windowMs, maxViolations, cooldownMs);
          for (const s of steps) {
            if (s.kind === 'advance') clock.advance(s.ms);
            else {
              const actor = `a:${s.actor}`;
              const out = t.record(actor, 'rate_limited');
              const crossed = ref.record(actor, clock.now());
              expect(out.cooldown !== null).toBe(crossed);
              if (out.cooldown) expect(out.cooldown.violations).toHaveLength(maxViolations + 1);
            }
            for (let a = 0; a <= 40; a += 7) {
              expect(t.blockedForMs(`a:${a}`)).toBe(ref.blockedForMs(`a:${a}`, clock.now()));
            }
          }
          // Idle actors are forgotten as others arrive: bounded by the live ones.
          clock.advance(windowMs + cooldownMs);
          for (let i = 0; i < 200; i++) t.record(`b:${i}`, 'denied');
          if (sweepPerInsert >= 2) expect(t.actors).toBeLessThanOrEqual(200);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('the seed: the 11th violation within an hour emits qos.abuse_detected and blocks for exactly cooldownMs', () => {
    const clock = new ManualClock(0);
    const wall = { now: () => Date.UTC(2026, 11, 5) + clock.now() };
    const abuse = new AbuseDetector({
      clock,
      wallClock: wall,
      spike: false,
      violations: { cooldownMs: 60_000 },
    });
    const events: AbuseDetectedEvent[] = [];
    abuse.on(ABUSE_DETECTED, (e) => events.push(e));
    abuse.on(ABUSE_DETECTED, () => {
      throw new Error('a broken listener stops nothing');
    });
    // 10 violations spread over 59 minutes: not yet.
    for (let i = 0; i < 10; i++) {
      expect(abuse.violation('token:ci', i % 2 ? 'quota_exceeded' : 'rate_limited', `#${i}`)).toBeNull();
      clock.advance(6 * 60_000 - 1);
    }
    expect(abuse.blockedForMs('token:ci')).toBe(0);
    expect(events).toHaveLength(0);
    // The 11th, 54 min after the first: > 10 in an hour.
    const e = abuse.violation('token:ci', 'denied');
    expect(e).not.toBeNull();
    expect(events).toEqual([e]);
    expect(e).toMatchObject({ name: 'qos.abuse_detected', actor: 'token:ci', blockedForMs: 60_000 });
    expect(e!.violations.map((v) => v.kind)).toEqual(
      [...Array(10)].map((_, i): string => (i % 2 ? 'quota_exceeded' : 'rate_limited')).concat('denied'),
    );
    expect(e!.violations[0]!.at).toBe(Date.UTC(2026, 11, 5));
    expect(() => abuse.assertAdmissible('token:ci')).toThrow(ActorCoolingDownError);
    clock.advance(59_999);
    expect(abuse.blockedForMs('token:ci')).toBe(1);
    clock.advance(1);
    expect(abuse.blockedForMs('token:ci')).toBe(0);
    abuse.assertAdmissible('token:ci');
    // Another actor is untouched; violations older than an hour do not count.
    const other = new AbuseDetector({ clock, spike: false });
    for (let i = 0; i < 30; i++) {
      expect(other.violation('uid:1000', 'rate_limited')).toBeNull();
      clock.advance(6 * 60_000);
    }
  });

  it('refuse bad settings naming the field', () => {
    const clock = new ManualClock();
    const bad: [unknown, string][] = [
      [{ clock, violations: { windowMs: 0 } }, 'abuse.violations.windowMs'],
      [{ clock, violations: { maxViolations: -1 } }, 'abuse.violations.maxViolations'],
      [{ clock, violations: { cooldownMs: Number.NaN } }, 'abuse.violations.cooldownMs'],
      [{ clock, spike: { spikeFactor: 1 } }, 'abuse.spike.spikeFactor'],
      [{ clock, spike: { baselineIntervals: 0 } }, 'abuse.spike.baselineIntervals'],
      [{ clock, spike: { intervalMs: -5 } }, 'abuse.spike.intervalMs'],
      [{ clock: {} }, 'abuse.spike.clock'],
    ];
    for (const [options, path] of bad) {
      expect(() => new AbuseDetector(options as never), path).toThrow(
        expect.objectContaining({ code: 'QOS_CONFIG', path }),
      );
    }
  });
});
