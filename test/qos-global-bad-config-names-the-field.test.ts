/**
 * Bad settings of the global limits and quotas are typed errors (QosConfigError / QosKeyError /
 * QosCostError) naming the field path; no connection is attempted for them.
 */

import { describe, expect, it } from 'vitest';
import { GlobalStore } from '../src/qos/global/global-store.js';
import { resolveGlobalStoreOptions } from '../src/qos/global/options.js';
import { RedisGcraLimiter } from '../src/qos/global/redis-gcra.js';
import { RedisQuota } from '../src/qos/global/redis-quota.js';
import { QosConfigError, QosCostError, QosKeyError } from '../src/qos/limiters/errors.js';

function fieldOf(f: () => unknown): { type: string; path: string; code: string } {
  try {
    f();
  } catch (err) {
    const e = err as QosConfigError;
    return { type: e.constructor.name, path: e.path, code: e.code };
  }
  throw new Error('no error');
}

describe('global QoS settings', () => {
  it.each([
    [undefined, 'global'],
    [{}, 'global.url'],
    [{ url: 'http://127.0.0.1:6379' }, 'global.url'],
    [{ url: 'not a url' }, 'global.url'],
    [{ url: 'redis://127.0.0.1:99999' }, 'global.url'],
    [{ url: 'redis://127.0.0.1', commandTimeoutMs: 0 }, 'global.commandTimeoutMs'],
    [{ url: 'redis://127.0.0.1', commandTimeoutMs: 1.5 }, 'global.commandTimeoutMs'],
    [{ url: 'redis://127.0.0.1', connectTimeoutMs: '1000' }, 'global.connectTimeoutMs'],
    [{ url: 'redis://127.0.0.1', reconnectMinMs: -1 }, 'global.reconnectMinMs'],
    [{ url: 'redis://127.0.0.1', reconnectMinMs: 500, reconnectMaxMs: 100 }, 'global.reconnectMaxMs'],
    [{ url: 'redis://127.0.0.1', failMode: 'maybe' }, 'global.failMode'],
    [{ url: 'redis://127.0.0.1', keyPrefix: 7 }, 'global.keyPrefix'],
  ])('store %j → QosConfigError at %s', (input, path) => {
    expect(fieldOf(() => resolveGlobalStoreOptions(input))).toEqual({
      type: 'QosConfigError',
      path,
      code: 'QOS_CONFIG',
    });
    expect(() => new GlobalStore(input)).toThrow(QosConfigError);
  });

  const store = new GlobalStore({ url: 'redis://127.0.0.1:1' });

  it.each([
    [{ limit: 0, periodMs: 1000 }, 'globalGcra.limit'],
    [{ limit: 10, periodMs: -5 }, 'globalGcra.periodMs'],
    [{ limit: 10, periodMs: 0.0001 }, 'globalGcra.periodMs'],
    [{ limit: 10, periodMs: 1000, burst: 2.5 }, 'globalGcra.burst'],
    [{ limit: 10, periodMs: 1000, leaseSize: 11 }, 'globalGcra.leaseSize'],
    [{ limit: 10, periodMs: 1000, leaseTtlMs: 0 }, 'globalGcra.leaseTtlMs'],
    [{ limit: 10, periodMs: 1000, maxLeasedKeys: 'many' }, 'globalGcra.maxLeasedKeys'],
    [{ limit: 2 ** 40, periodMs: 1e9 }, 'globalGcra.burst'],
  ])('limit %j → QosConfigError at %s', (input, path) => {
    expect(fieldOf(() => new RedisGcraLimiter(store, input as never))).toEqual({
      type: 'QosConfigError',
      path,
      code: 'QOS_CONFIG',
    });
  });

  it.each([
    [{ limit: 0 }, 'globalQuota.limit'],
    [{ limit: 5, period: 'month' }, 'globalQuota.period'],
    [{ limit: 5, period: { everyMs: 0 } }, 'globalQuota.period.everyMs'],
    [{ limit: 5, align: 'local' }, 'globalQuota.align'],
  ])('quota %j → QosConfigError at %s', (input, path) => {
    expect(fieldOf(() => new RedisQuota(store, input as never))).toEqual({
      type: 'QosConfigError',
      path,
      code: 'QOS_CONFIG',
    });
  });

  it('refuses bad names, keys and costs with typed errors before any call', async () => {
    expect(
      fieldOf(() => new RedisGcraLimiter(store, { limit: 1, periodMs: 1000, name: 'a b' })),
    ).toMatchObject({
      type: 'QosKeyError',
      path: 'globalGcra.name',
    });
    const limiter = new RedisGcraLimiter(store, { limit: 5, periodMs: 1000 });
    await expect(limiter.check('')).rejects.toBeInstanceOf(QosKeyError);
    await expect(limiter.check('x'.repeat(257))).rejects.toBeInstanceOf(QosKeyError);
    await expect(limiter.check('k', 6)).rejects.toBeInstanceOf(QosCostError);
    await expect(limiter.check('k', -1)).rejects.toBeInstanceOf(QosCostError);
    const quota = new RedisQuota(store, { limit: 5 });
    await expect(quota.consume('k', 1.5)).rejects.toBeInstanceOf(QosCostError);
    await expect(quota.consume('')).rejects.toBeInstanceOf(QosKeyError);
    expect(store.counters.roundTrips).toBe(0);
    await store.close();
  });
});
