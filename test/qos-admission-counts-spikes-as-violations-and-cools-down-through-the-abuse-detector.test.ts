/**
 * Admission's abuse detection is src/qos/abuse's AbuseDetector: with an injected clock, an
 * actor's rate-limit refusals past `abuse.violations` within the window start a cooldown of
 * exactly `cooldownMs` (429 ACTOR_COOLDOWN, Retry-After = what is left), announced once through
 * onAbuse and diagnostics_channel with the actor and its violations; a request spike (the
 * `abuse.spike` section) is itself a violation; the spike section's bad values name their
 * field path; a reload with the same abuse settings keeps a running cooldown.
 */

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { Admission, type AdmissionAbuseEvent, QosRefusal } from '../src/qos/admission.js';
import { ManualClock } from '../src/qos/clock.js';
import { parseQosPolicy, QosPolicyError } from '../src/qos/config.js';
import { EVENT_NAMES } from '../src/runtime/events.js';

const actor = { id: 'uid:1000', roles: [] };

function refusal(admission: Admission): QosRefusal | null {
  try {
    admission.check({ actor });
    return null;
  } catch (err) {
    if (err instanceof QosRefusal) return err;
    throw err;
  }
}

describe('abuse detection in admission', () => {
  it('cools an actor down for exactly cooldownMs after > violations in the window, and says so once', () => {
    const clock = new ManualClock(1_000);
    const policy = parseQosPolicy({
      tiers: { free: { limit: 1, periodMs: 60_000 } },
      actors: { 'uid:1000': 'free' },
      abuse: { violations: 2, windowMs: 10_000, cooldownMs: 5_000 },
    });
    const admission = new Admission(policy, { clock, wallClock: () => 1_700_000_000_000 + clock.now() });
    const events: AdmissionAbuseEvent[] = [];
    admission.onAbuse((e) => events.push(e));
    const published: unknown[] = [];
    const onChannel = (m: unknown) => published.push(m);
    subscribe(EVENT_NAMES.qosAbuseDetected, onChannel);
    try {
      expect(refusal(admission)).toBeNull();
      for (let i = 0; i < 3; i++) {
        clock.advance(100);
        expect(refusal(admission)?.code).toBe('RATE_LIMITED');
      }
      // The third violation crossed "> 2": a cooldown from now (t = 1300) to 6300.
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ name: 'qos.abuse_detected', actor: 'uid:1000', cooldownMs: 5_000 });
      expect(
        (events[0] as Extract<AdmissionAbuseEvent, { name: 'qos.abuse_detected' }>).violations.map(
          (v) => v.kind,
        ),
      ).toEqual(['rate_limited', 'rate_limited', 'rate_limited']);
      expect(published).toEqual([
        expect.objectContaining({ actor: 'uid:1000', violations: 3, cooldownMs: 5_000, windowMs: 10_000 }),
      ]);
      const cool = refusal(admission);
      expect(cool?.code).toBe('ACTOR_COOLDOWN');
      expect(cool?.retryAfterS).toBe(5);
      expect(admission.actorState(actor)).toMatchObject({ cooldownMs: 5_000, violations: 0 });

      // A reload with the same abuse settings keeps the cooldown.
      admission.reload(
        parseQosPolicy({
          tiers: { free: { limit: 1, periodMs: 60_000 } },
          actors: { 'uid:1000': 'free' },
          abuse: { violations: 2, windowMs: 10_000, cooldownMs: 5_000 },
          queue: { maxInFlight: 3 },
        }),
      );
      clock.advance(4_999); // t = 6299: one ms left
      const last = refusal(admission);
      expect(last?.code).toBe('ACTOR_COOLDOWN');
      expect(last?.details).toMatchObject({ cooldown_until_ms: 1 });
      clock.advance(1); // t = 6300: over, the tier decides again (a refill every 60 s: still empty)
      expect(refusal(admission)?.code).toBe('RATE_LIMITED');
      expect(admission.abuseDetected).toBe(1);
      expect(events).toHaveLength(1);
    } finally {
      unsubscribe(EVENT_NAMES.qosAbuseDetected, onChannel);
      closeQuietly(admission);
    }
  });

  it('counts a request spike as a violation: spikes alone end in a cooldown', () => {
    const clock = new ManualClock(0);
    const policy = parseQosPolicy({
      tiers: { free: { limit: 1000, periodMs: 1000 } },
      actors: { 'uid:1000': 'free' },
      abuse: {
        violations: 1,
        windowMs: 60_000,
        cooldownMs: 2_000,
        spike: { intervalMs: 1000, baselineIntervals: 5, factor: 2, minBaseline: 3 },
      },
    });
    const admission = new Admission(policy, { clock });
    const events: AdmissionAbuseEvent[] = [];
    admission.onAbuse((e) => events.push(e));
    // Threshold 2 × max(0, 3) = 6 requests in one interval: the 6th is a spike (violation 1).
    for (let i = 0; i < 6; i++) expect(refusal(admission)).toBeNull();
    expect(events.map((e) => e.name)).toEqual(['qos.spike_detected']);
    expect(admission.spikesDetected).toBe(1);
    // The next interval spikes again: violation 2 > 1 starts the cooldown at that request.
    clock.advance(1000);
    for (let i = 0; i < 5; i++) expect(refusal(admission)).toBeNull();
    const cool = refusal(admission);
    expect(cool?.code).toBe('ACTOR_COOLDOWN');
    expect(cool?.retryAfterS).toBe(2);
    expect(events.map((e) => e.name)).toEqual([
      'qos.spike_detected',
      'qos.spike_detected',
      'qos.abuse_detected',
    ]);
    const abuse = events[2] as Extract<AdmissionAbuseEvent, { name: 'qos.abuse_detected' }>;
    expect(abuse.violations.map((v) => v.kind)).toEqual(['spike', 'spike']);
    clock.advance(2_000);
    expect(refusal(admission)).toBeNull();
    closeQuietly(admission);
  });

  it('names the field of a bad spike setting; the default is off', () => {
    const bad: [unknown, string][] = [
      [{ factor: 1 }, 'qos.abuse.spike.factor'],
      [{ intervalMs: 0 }, 'qos.abuse.spike.intervalMs'],
      [{ baselineIntervals: 1.5 }, 'qos.abuse.spike.baselineIntervals'],
      [{ minBaseline: -1 }, 'qos.abuse.spike.minBaseline'],
      [{ factr: 3 }, 'qos.abuse.spike.factr'],
      ['yes', 'qos.abuse.spike'],
    ];
    for (const [spike, path] of bad) {
      let err: unknown;
      try {
        parseQosPolicy({ abuse: { spike } });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(QosPolicyError);
      expect((err as Error).message.startsWith(`${path}: `)).toBe(true);
    }
    expect(parseQosPolicy({ abuse: {} }).abuse?.spike).toBeNull();
    expect(parseQosPolicy({ abuse: { spike: true } }).abuse?.spike).toEqual({
      intervalMs: 1000,
      baselineIntervals: 30,
      factor: 4,
      minBaseline: 10,
    });
  });
});

function closeQuietly(admission: Admission): void {
  void admission.close();
}
