/**
 * Redis killed mid-run: a fail-open host keeps deciding with its local limiter of the same
 * definition (admits exactly that, no more), a fail-closed host refuses with source
 * `unavailable`, and both say degraded (decision and counters); quotas likewise. Redis back:
 * both recover to Redis decisions. Redis hung (SIGSTOP): calls end at the command timeout, the
 * store pauses calls (decisions made at once, locally) and recovers when Redis answers again.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/qos/clock.js';
import { GlobalStore } from '../src/qos/global/global-store.js';
import { type GlobalDecision, RedisGcraLimiter } from '../src/qos/global/redis-gcra.js';
import { RedisQuota } from '../src/qos/global/redis-quota.js';
import { type RedisServer, startRedisServer } from './helpers/redis-server.js';

let redis: RedisServer;
let open: GlobalStore;
let closed: GlobalStore;

const settings = { commandTimeoutMs: 200, connectTimeoutMs: 200, reconnectMinMs: 20, reconnectMaxMs: 200 };

beforeAll(async () => {
  redis = await startRedisServer();
  open = new GlobalStore({ url: redis.url, failMode: 'open', ...settings });
  closed = new GlobalStore({ url: redis.url, failMode: 'closed', ...settings });
  await Promise.all([open.connect(), closed.connect()]);
}, 30_000);

afterAll(async () => {
  await open?.close();
  await closed?.close();
  await redis?.stop();
});

async function checks(limiter: RedisGcraLimiter, key: string, n: number): Promise<GlobalDecision[]> {
  const out: GlobalDecision[] = [];
  for (let i = 0; i < n; i++) out.push(await limiter.check(key));
  return out;
}

/** Check until Redis decides again (reconnection is bounded by reconnectMaxMs). */
async function untilRedisDecides(limiter: RedisGcraLimiter, key: string): Promise<GlobalDecision> {
  for (let i = 0; i < 400; i++) {
    const d = await limiter.check(key);
    if (d.source === 'redis') return d;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('did not recover');
}

describe('Redis down', () => {
  it('fail-open decides locally within the local limit, fail-closed refuses; both degraded; both recover', async () => {
    const definition = { limit: 5, periodMs: 60_000, name: 'outage' };
    const openLimiter = new RedisGcraLimiter(open, { ...definition, clock: new ManualClock(0) });
    const closedLimiter = new RedisGcraLimiter(closed, definition);
    const openQuota = new RedisQuota(open, { limit: 3, period: 'never', name: 'outage' });
    const closedQuota = new RedisQuota(closed, { limit: 3, period: 'never', name: 'outage' });
    expect((await openLimiter.check('before')).source).toBe('redis');
    expect((await closedLimiter.check('before')).source).toBe('redis');
    expect(open.counters.degraded).toBe(0);

    const connectsBefore = open.counters.connects;
    await redis.kill();
    const duringOpen = await checks(openLimiter, 'k', 12);
    expect(duringOpen.every((d) => d.degraded && d.source === 'local-fallback')).toBe(true);
    expect(duringOpen.filter((d) => d.allowed)).toHaveLength(5);
    expect(duringOpen.slice(5).every((d) => !d.allowed && d.retryAfterMs > 0)).toBe(true);
    const duringClosed = await checks(closedLimiter, 'k', 5);
    expect(duringClosed.every((d) => !d.allowed && d.degraded && d.source === 'unavailable')).toBe(true);
    expect(duringClosed.every((d) => d.retryAfterMs > 0)).toBe(true);
    expect(open.counters.degraded).toBe(1);
    expect(closed.counters.degraded).toBe(1);
    expect(openLimiter.counters.localFallbacks).toBe(12);
    expect(closedLimiter.counters.unavailableRefusals).toBe(5);

    const quotaOpen = [];
    for (let i = 0; i < 5; i++) quotaOpen.push(await openQuota.consume('q'));
    expect(quotaOpen.filter((q) => q.allowed)).toHaveLength(3);
    expect(quotaOpen.every((q) => q.degraded && q.source === 'local-fallback')).toBe(true);
    expect(await closedQuota.consume('q')).toMatchObject({
      allowed: false,
      degraded: true,
      source: 'unavailable',
    });

    await redis.restart();
    expect(await untilRedisDecides(openLimiter, 'after')).toMatchObject({ allowed: true, degraded: false });
    expect(await untilRedisDecides(closedLimiter, 'after')).toMatchObject({ allowed: true, degraded: false });
    expect(open.counters.degraded).toBe(0);
    expect(closed.counters.degraded).toBe(0);
    expect(open.counters.connects).toBe(connectsBefore + 1);
    expect(await openQuota.consume('q')).toMatchObject({ allowed: true, used: 1, source: 'redis' });
  }, 30_000);

  it('a hung Redis costs at most the command timeout, then calls pause until it answers again', async () => {
    const limiter = new RedisGcraLimiter(open, { limit: 100, periodMs: 1_000, name: 'hung' });
    await untilRedisDecides(limiter, 'h');
    const timeoutsBefore = open.counters.timeouts;
    redis.pause();
    try {
      const first = await limiter.check('h');
      expect(first).toMatchObject({ degraded: true, source: 'local-fallback' });
      expect(open.counters.timeouts).toBe(timeoutsBefore + 1);
      // Paused: decided locally with no call sent.
      const skipped = open.counters.skippedWhileDown;
      expect(await limiter.check('h')).toMatchObject({ degraded: true, source: 'local-fallback' });
      expect(open.counters.skippedWhileDown).toBe(skipped + 1);
    } finally {
      redis.resume();
    }
    expect(await untilRedisDecides(limiter, 'h')).toMatchObject({ degraded: false });
    expect(open.counters.degraded).toBe(0);
  }, 30_000);

  it('a daemon started while Redis is down decides locally, then uses Redis once it comes up', async () => {
    const other = await startRedisServer();
    await other.kill();
    const store = new GlobalStore({ url: other.url, ...settings });
    try {
      await expect(store.connect()).rejects.toThrow();
      const limiter = new RedisGcraLimiter(store, { limit: 5, periodMs: 1_000, name: 'startup' });
      expect(await limiter.check('a')).toMatchObject({ degraded: true, source: 'local-fallback' });
      expect(store.counters.degraded).toBe(1);
      await other.restart();
      expect(await untilRedisDecides(limiter, 'a')).toMatchObject({ degraded: false });
      expect(store.counters.degraded).toBe(0);
    } finally {
      await store.close();
      await other.stop();
    }
  }, 30_000);
});
