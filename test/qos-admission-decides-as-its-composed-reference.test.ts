/**
 * Admission as a library, on a ManualClock: for any sequence of checks by several actors and
 * clock advances, its decisions (admitted, or which refusal and its Retry-After) are those of a
 * simple exact reference composed of the same parts: the actor's tier (by id, then role, then
 * the default tier), a token bucket per actor in integer arithmetic, a quota per fixed period,
 * and violations over a window that start a cooldown. Then the queue: beyond the concurrency
 * limit executions wait, the higher priority class is served first, a full class is refused.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Admission, QosRefusal } from '../src/qos/admission.js';
import { ManualClock } from '../src/qos/clock.js';
import { parseQosPolicy, QosPolicyError } from '../src/qos/config.js';
import { type QosActor, tierOf } from '../src/qos/policy.js';
import { QueueDropError } from '../src/qos/queues/index.js';

const SECTION = {
  tiers: {
    free: { limit: 3, periodMs: 1000, priority: 'low', quota: { limit: 7, periodMs: 10_000 } },
    standard: { limit: 5, periodMs: 2000, weight: 2 },
  },
  defaultTier: 'free',
  actors: { 'uid:1': 'free', 'role:runner': 'standard' },
  abuse: { violations: 4, windowMs: 3000, cooldownMs: 2000 },
};

const ACTORS: QosActor[] = [
  { id: 'uid:1', roles: ['runner'] }, // named: free, although a runner
  { id: 'token:ci', roles: ['runner'] }, // by role: standard
  { id: 'uid:9', roles: [] }, // nobody names it: the default tier, free
];

type Outcome = 'ok' | `${'RATE_LIMITED' | 'QUOTA_EXCEEDED' | 'ACTOR_COOLDOWN'}:${number}`;

/** The exact reference: integer ms, one object per actor. */
class Reference {
  readonly #actors = new Map<
    string,
    { units: number; last: number; qStart: number; qUsed: number; violations: number[]; until: number }
  >();
  now = 0;

  check(actor: QosActor, tier: 'free' | 'standard'): Outcome {
    const { limit, periodMs } = SECTION.tiers[tier];
    const cap = limit * periodMs; // units; one token = periodMs units; limit units accrue per ms
    let s = this.#actors.get(actor.id);
    if (s === undefined) {
      s = { units: cap, last: this.now, qStart: -1, qUsed: 0, violations: [], until: -1 };
      this.#actors.set(actor.id, s);
    }
    if (s.until >= 0) {
      if (this.now < s.until) return `ACTOR_COOLDOWN:${Math.max(1, Math.ceil((s.until - this.now) / 1000))}`;
      s.until = -1;
    }
    s.units = Math.min(cap, s.units + (this.now - s.last) * limit);
    s.last = this.now;
    if (s.units < periodMs) {
      // µs until a whole token: (deficit × 1000) / limit, rounded up; then seconds, rounded up.
      const waitUs = Math.ceil(((periodMs - s.units) * 1000) / limit);
      this.#violate(s);
      return `RATE_LIMITED:${Math.max(1, Math.ceil(waitUs / 1e6))}`;
    }
    s.units -= periodMs;
    if (tier === 'free') {
      const q = SECTION.tiers.free.quota;
      const start = Math.floor(this.now / q.periodMs) * q.periodMs;
      if (s.qStart !== start) {
        s.qStart = start;
        s.qUsed = 0;
      }
      if (s.qUsed >= q.limit) {
        this.#violate(s);
        return `QUOTA_EXCEEDED:${Math.max(1, Math.ceil((start + q.periodMs - this.now) / 1000))}`;
      }
      s.qUsed++;
    }
    return 'ok';
  }

  #violate(s: { violations: number[]; until: number }): void {
    const a = SECTION.abuse;
    s.violations = s.violations.filter((t) => t > this.now - a.windowMs);
    s.violations.push(this.now);
    if (s.violations.length > a.violations) {
      s.until = this.now + a.cooldownMs;
      s.violations = [];
    }
  }
}

function outcome(admission: Admission, actor: QosActor): Outcome {
  try {
    admission.check({ actor });
    return 'ok';
  } catch (err) {
    if (!(err instanceof QosRefusal)) throw err;
    return `${err.code as 'RATE_LIMITED'}:${err.retryAfterS}`;
  }
}

const op = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: ACTORS.length - 1 }).map((a) => ({ actor: a })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 1500 }).map((ms) => ({ advance: ms })) },
);

describe('Admission decides as its composed reference', () => {
  it('tiers by subject, token buckets, quotas and cooldowns: the same decisions and Retry-After', () => {
    const policy = parseQosPolicy(SECTION);
    expect(ACTORS.map((a) => tierOf(policy, a))).toEqual(['free', 'standard', 'free']);
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 300 }), (ops) => {
        const clock = new ManualClock();
        const admission = new Admission(policy, { clock, wallClock: () => clock.now() });
        const ref = new Reference();
        for (const o of ops) {
          if ('advance' in o) {
            clock.advance(o.advance);
            ref.now += o.advance;
            continue;
          }
          const actor = ACTORS[o.actor]!;
          const expected = ref.check(actor, tierOf(policy, actor) as 'free' | 'standard');
          expect(outcome(admission, actor)).toBe(expected);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a reload keeps an unchanged tier’s bucket and starts a changed one full', () => {
    const clock = new ManualClock();
    const admission = new Admission(parseQosPolicy(SECTION), { clock, wallClock: () => clock.now() });
    const free = ACTORS[0]!;
    const standard = ACTORS[1]!;
    for (let i = 0; i < 3; i++) expect(outcome(admission, free)).toBe('ok');
    for (let i = 0; i < 5; i++) expect(outcome(admission, standard)).toBe('ok');
    admission.reload(
      parseQosPolicy({ ...SECTION, tiers: { ...SECTION.tiers, standard: { limit: 6, periodMs: 2000 } } }),
    );
    expect(outcome(admission, free)).toMatch(/^RATE_LIMITED:/); // unchanged: still spent
    for (let i = 0; i < 6; i++) expect(outcome(admission, standard)).toBe('ok'); // changed: fresh, 6
    expect(outcome(admission, standard)).toMatch(/^RATE_LIMITED:/);
  });

  it('beyond the concurrency limit executions wait; the higher class first; a full class is refused', async () => {
    const clock = new ManualClock();
    const policy = parseQosPolicy({
      tiers: {
        low: { limit: 100, periodMs: 1000, priority: 'low' },
        high: { limit: 100, periodMs: 1000, priority: 'high' },
      },
      actors: { 'uid:1': 'low', 'uid:2': 'high' },
      queue: { maxInFlight: 1, classes: { low: { maxSize: 1 } } },
    });
    const admission = new Admission(policy, { clock });
    const low = { id: 'uid:1', roles: [] };
    const high = { id: 'uid:2', roles: [] };
    const first = await admission.admit({ actor: low });
    const order: string[] = [];
    const waitingLow = admission.admit({ actor: low }).then((p) => {
      order.push('low');
      return p;
    });
    const waitingHigh = admission.admit({ actor: high }).then((p) => {
      order.push('high');
      return p;
    });
    await expect(admission.admit({ actor: low })).rejects.toSatisfy(
      (e) => e instanceof QueueDropError && e.reason === 'class-full',
    );
    expect(admission.queued).toBe(2);
    first.release(1, true);
    const h = await waitingHigh;
    expect(order).toEqual(['high']);
    h.release(1, true);
    (await waitingLow).release(1, true);
    expect(order).toEqual(['high', 'low']);
    expect(admission.running).toBe(0);
  });

  it('bad sections are typed errors naming the field path', () => {
    const bad: [unknown, string][] = [
      [{ tiers: { free: { limit: -1, periodMs: 1000 } } }, 'qos.tiers.free.limit'],
      [{ actors: { 'uid:x': 'free' } }, 'qos.actors["uid:x"]'],
      [{ actors: { 'uid:1': 'gold' } }, 'qos.actors["uid:1"]'],
      [{ resources: [{ kind: 'backend', name: 'wasm' }] }, 'qos.resources[0]'],
      [{ queue: { classes: { urgent: {} } } }, 'qos.queue.classes.urgent'],
      [{ breakers: { failureRateThreshold: 2 } }, 'qos.breakers.failureRateThreshold'],
      [{ global: { redisUrl: 'http://x' } }, 'qos.global.redisUrl'],
      [{ kernel: { rules: [{ prefix: '10.0.0.1/8', ratePps: 10 }] } }, 'qos.kernel.rules[0].prefix'],
      [{ tiers: { free: { limit: 1, periodMs: 1000, colour: 'red' } } }, 'qos.tiers.free.colour'],
    ];
    for (const [section, path] of bad) {
      let caught: unknown;
      try {
        parseQosPolicy(section);
      } catch (err) {
        caught = err;
      }
      expect(caught, path).toBeInstanceOf(QosPolicyError);
      expect((caught as Error).message.startsWith(`${path}: `), (caught as Error).message).toBe(true);
    }
  });
});
