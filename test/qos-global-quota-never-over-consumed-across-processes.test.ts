/**
 * A global quota in Redis: three processes with 16 concurrent consumers each spend it to the
 * unit and never past it (the Lua check-and-increment is atomic); the usage resets exactly at
 * resets_at on Redis's clock, for UTC-aligned and rolling periods, and reset() empties it; the key
 * expires at resets_at; usage kept in an append-only Redis survives the server's restart.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GlobalStore } from '../src/qos/global/global-store.js';
import { DAY_MS, RedisQuota, WEEK_MS } from '../src/qos/global/redis-quota.js';
import { bundleHosts, type Hosts } from './helpers/global-qos-host.js';
import { type RedisServer, startRedisServer } from './helpers/redis-server.js';

let redis: RedisServer;
let hosts: Hosts;
let store: GlobalStore;

beforeAll(async () => {
  [redis, hosts] = await Promise.all([startRedisServer({ appendOnly: true }), bundleHosts()]);
  store = new GlobalStore({ url: redis.url, commandTimeoutMs: 5_000 });
  await store.connect();
}, 30_000);

afterAll(async () => {
  await store?.close();
  hosts?.dispose();
  await redis?.stop();
});

describe('a global quota', () => {
  it('is spent to the unit and never past it by 3 processes × 16 concurrent consumers', async () => {
    for (const [limit, units] of [
      [5_000, 1],
      [4_999, 3],
    ] as const) {
      const key = `spent-${limit}`;
      const startAtMs = Date.now() + 400;
      const job = {
        kind: 'quota',
        url: redis.url,
        startAtMs,
        durationMs: 20_000,
        key,
        limit,
        periodMs: 0,
        units,
        concurrency: 16,
      };
      const results = await hosts.run([job, job, job]);
      const consumed = results.reduce((n, r) => n + r.consumed, 0);
      // All or nothing per consume: exactly the largest multiple of `units` that fits.
      expect(consumed).toBe(Math.floor(limit / units) * units);
      for (const r of results) expect(r.consumed).toBeGreaterThan(0);
      const quota = new RedisQuota(store, { limit, period: 'never', name: 'xproc' });
      expect(await quota.get(key)).toMatchObject({ used: consumed, limit, resetsAt: null, degraded: false });
    }
  }, 45_000);

  it('resets exactly at resets_at (UTC-aligned days and ISO weeks, rolling periods) and on reset()', async () => {
    const day = new RedisQuota(store, { limit: 3, period: 'day', name: 'day' });
    const t0 = Date.UTC(2030, 0, 7, 23, 59, 0); // a Monday
    const first = await day.consumeAt('a', 2, t0);
    expect(first).toMatchObject({ allowed: true, used: 2, remaining: 1, resetsAt: Date.UTC(2030, 0, 8) });
    expect(await day.consumeAt('a', 2, Date.UTC(2030, 0, 8) - 1)).toMatchObject({ allowed: false, used: 2 });
    expect(await day.consumeAt('a', 2, Date.UTC(2030, 0, 8))).toMatchObject({
      allowed: true,
      used: 2,
      resetsAt: Date.UTC(2030, 0, 8) + DAY_MS,
    });

    const week = new RedisQuota(store, { limit: 1, period: 'week', name: 'week' });
    expect((await week.consumeAt('a', 1, Date.UTC(2030, 0, 9, 12))).resetsAt).toBe(Date.UTC(2030, 0, 14));
    expect((await week.consumeAt('a', 1, Date.UTC(2030, 0, 13, 23))).allowed).toBe(false);
    expect((await week.consumeAt('a', 1, Date.UTC(2030, 0, 14))).resetsAt).toBe(
      Date.UTC(2030, 0, 14) + WEEK_MS,
    );

    const rolling = new RedisQuota(store, {
      limit: 1,
      period: { everyMs: 90_000 },
      align: 'rolling',
      name: 'roll',
    });
    const r0 = Date.UTC(2030, 0, 7, 10, 0, 17);
    expect((await rolling.consumeAt('a', 1, r0)).resetsAt).toBe(r0 + 90_000);
    expect((await rolling.consumeAt('a', 1, r0 + 89_999)).allowed).toBe(false);
    expect(await rolling.consumeAt('a', 1, r0 + 90_000)).toMatchObject({
      allowed: true,
      resetsAt: r0 + 180_000,
    });

    const never = new RedisQuota(store, { limit: 2, period: 'never', name: 'never' });
    await never.consume('a', 2);
    expect((await never.consume('a')).allowed).toBe(false);
    await never.reset('a');
    expect(await never.consume('a')).toMatchObject({ allowed: true, used: 1, remaining: 1 });
  });

  it('lets the key expire at resets_at on Redis time', async () => {
    const quota = new RedisQuota(store, { limit: 10, period: { everyMs: 3_600_000 }, name: 'ttl' });
    const q = await quota.consume('a', 4);
    expect(q.resetsAt).not.toBeNull();
    const expireAt = Number(await store.command('PEXPIRETIME', store.key('ttl:a')));
    expect(expireAt).toBe(q.resetsAt);
  });

  it('keeps its usage across a Redis restart (append-only file)', async () => {
    const quota = new RedisQuota(store, { limit: 10, period: 'never', name: 'durable' });
    await quota.consume('a', 7);
    await redis.restart();
    let state = await quota.get('a');
    for (let i = 0; i < 200 && state.degraded; i++) {
      await new Promise((r) => setTimeout(r, 25));
      state = await quota.get('a');
    }
    expect(state).toMatchObject({ used: 7, degraded: false, source: 'redis' });
  }, 20_000);
});
