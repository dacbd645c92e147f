/**
 * Bad settings name their field path, bad keys and impossible costs are typed errors (a cost
 * above the capacity could never be admitted, so it is not answered with "retry later"), and
 * the seed's tier table maps tier names to limits.
 */

import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/qos/clock.js';
import { QosConfigError, QosCostError, QosKeyError } from '../src/qos/limiters/errors.js';
import { GcraLimiter } from '../src/qos/limiters/gcra.js';
import { actorKey, actorResourceKey, resourceKey } from '../src/qos/limiters/keys.js';
import { SlidingWindowLogLimiter } from '../src/qos/limiters/sliding-window-log.js';
import {
  ALGORITHMS,
  createLimiter,
  DEFAULT_TIERS,
  perWindowLimiter,
  TierLimiters,
  validateTierTable,
} from '../src/qos/limiters/tiers.js';
import { TokenBucketLimiter } from '../src/qos/limiters/token-bucket.js';
import { ThunderpacError } from '../src/runtime/errors.js';

const clock = new ManualClock();

function configError(fn: () => unknown, path: string): QosConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QosConfigError);
    expect(e).toBeInstanceOf(ThunderpacError);
    expect((e as QosConfigError).path).toBe(path);
    expect((e as QosConfigError).code).toBe('QOS_CONFIG');
    return e as QosConfigError;
  }
  throw new Error(`expected a QosConfigError at ${path}`);
}

describe('settings', () => {
  it('name the field that is wrong', () => {
    configError(
      () => new TokenBucketLimiter({ bucketSize: 0, refillTokens: 1, refillIntervalMs: 1, clock }),
      'tokenBucket.bucketSize',
    );
    configError(
      () => new TokenBucketLimiter({ bucketSize: 1.5, refillTokens: 1, refillIntervalMs: 1, clock }),
      'tokenBucket.bucketSize',
    );
    configError(
      () => new TokenBucketLimiter({ bucketSize: 1, refillTokens: -1, refillIntervalMs: 1, clock }),
      'tokenBucket.refillTokens',
    );
    const e = configError(
      () => new TokenBucketLimiter({ bucketSize: 1, refillTokens: 1, refillIntervalMs: 0.0001, clock }),
      'tokenBucket.refillIntervalMs',
    );
    expect(e.message).toMatch(/microseconds/);
    configError(
      () => new TokenBucketLimiter({ bucketSize: 1, refillTokens: 1, refillIntervalMs: Number.NaN, clock }),
      'tokenBucket.refillIntervalMs',
    );
    configError(
      () =>
        new TokenBucketLimiter({ bucketSize: 1, refillTokens: 1, refillIntervalMs: 1, clock: {} as never }),
      'tokenBucket.clock',
    );
    configError(
      () =>
        new TokenBucketLimiter({ bucketSize: 1, refillTokens: 1, refillIntervalMs: 1, clock, maxKeys: 0 }),
      'tokenBucket.maxKeys',
    );
    // Products past 2^53 would lose exactness: refused.
    configError(
      () =>
        new TokenBucketLimiter({ bucketSize: 2 ** 40, refillTokens: 1, refillIntervalMs: 3_600_000, clock }),
      'tokenBucket.bucketSize',
    );
    configError(() => new GcraLimiter({ limit: 10, periodMs: 1000, burst: 0, clock }), 'gcra.burst');
    configError(
      () => new SlidingWindowLogLimiter({ limit: 2 ** 21, windowMs: 1000, clock }),
      'slidingWindowLog.limit',
    );
    configError(
      () => createLimiter({ limit: 1, periodMs: 1 }, 'leaky' as never, clock, {}, 'limits.api'),
      'limits.api.algorithm',
    );
    configError(
      () => createLimiter({ limit: 1, periodMs: 1, burst: 5 }, 'sliding-log', clock, {}, 'x'),
      'x.burst',
    );
    configError(() => perWindowLimiter({ perDay: 5 } as never, 'gcra', clock), 'limits.perDay');
    configError(() => perWindowLimiter({}, 'gcra', clock), 'limits');
    configError(
      () => validateTierTable({ free: { limit: 100, periodMs: 60_000, brust: 3 } }),
      'tiers.free.brust',
    );
    configError(() => validateTierTable({ 'bad tier': { limit: 1, periodMs: 1 } }), 'tiers.bad tier');
    configError(() => validateTierTable({ gold: { limit: '5', periodMs: 1 } }), 'tiers.gold.limit');
  });
});

describe('keys and costs', () => {
  it.each(ALGORITHMS)('%s: bad keys and impossible costs are typed errors', (algorithm) => {
    const l = createLimiter({ limit: 5, periodMs: 1_000 }, algorithm, clock, { maxKeyLength: 8 });
    expect(() => l.check('')).toThrow(QosKeyError);
    expect(() => l.check('123456789')).toThrow(QosKeyError);
    expect(() => l.check(42 as never)).toThrow(QosKeyError);
    expect(() => l.check(undefined as never)).toThrow(QosKeyError);
    expect(() => l.check(null as never)).toThrow(QosKeyError);
    expect(() => l.check({ length: 3 } as never)).toThrow(QosKeyError);
    for (const cost of [6, -1, 1.5, Number.NaN, Infinity]) {
      try {
        l.check('k', cost);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(QosCostError);
        expect((e as QosCostError).capacity).toBe(5);
        expect((e as QosCostError).message).toMatch(/^cost: expected an integer from 0 to 5/);
      }
    }
    expect(l.check('k', 5).allowed).toBe(true);
    expect(l.check('k', 0).allowed).toBe(true); // a cost of 0 only asks
    const c = perWindowLimiter({ perSecond: 2, perMinute: 10 }, algorithm, clock);
    expect(() => c.check('k', 3)).toThrow(QosCostError);
    expect(() => c.check('')).toThrow(QosKeyError);
  });

  it('keys per actor, resource and pair never collide', () => {
    expect(actorKey('alice')).not.toBe(resourceKey('alice'));
    expect(actorResourceKey('a:b', 'c')).not.toBe(actorResourceKey('a', 'b:c'));
    expect(() => actorKey('')).toThrow(QosKeyError);
    expect(() => actorResourceKey('a', '')).toThrow(/resource/);
  });
});

describe('tiers', () => {
  it("the seed's table: premium 10,000, standard 1,000, free 100 per minute", () => {
    expect(DEFAULT_TIERS).toEqual({
      premium: { limit: 10_000, periodMs: 60_000 },
      standard: { limit: 1_000, periodMs: 60_000 },
      free: { limit: 100, periodMs: 60_000 },
    });
    const c = new ManualClock();
    const tiers = new TierLimiters(DEFAULT_TIERS, { clock: c, algorithm: 'gcra' });
    let free = 0;
    let standard = 0;
    for (let i = 0; i < 2_000; i++) {
      if (tiers.tryAcquire('free', actorKey('f'))) free++;
      if (tiers.tryAcquire('standard', actorKey('s'))) standard++;
    }
    expect([free, standard]).toEqual([100, 1_000]);
    const d = tiers.check('free', actorKey('f'));
    expect(d).toMatchObject({ allowed: false, limit: 100, retryAfterMs: 600 });
    c.advance(600);
    expect(tiers.check('free', actorKey('f')).allowed).toBe(true);
    configError(() => tiers.limiter('gold'), 'tier');
  });
});
