/**
 * Abuse detection in the real daemon: an actor (uid 0, tier limit 1 a minute) refused three
 * times (> abuse.violations = 2 in the window) is answered 429 ACTOR_COOLDOWN with Retry-After
 * for exactly abuse.cooldownMs: every request answered before the cooldown could have ended is
 * refused as cooling down, every request sent after it must have ended is decided by the tier
 * again. The daemon logs `qos.abuse_detected` with the actor and its violations, counts it in
 * thunderpac_qos_cooldowns_total, GET /v1/qos lists the cooldown, and the event is on the bus
 * (`system.qos.abuse_detected`, read through GET /v1/events).
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, useDaemon } from './helpers/daemon.js';

const COOLDOWN_MS = 2_000;
const daemon = useDaemon({
  config: {
    qos: {
      tiers: { free: { limit: 1, periodMs: 60_000 } },
      actors: { 'uid:0': 'free' },
      abuse: { violations: 2, windowMs: 60_000, cooldownMs: COOLDOWN_MS },
    },
  },
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('abuse cooldown in the daemon', () => {
  it('refuses with ACTOR_COOLDOWN for exactly the cooldown and announces qos.abuse_detected', async () => {
    const up = await daemon().request({
      method: 'POST',
      path: '/v1/builds?kind=wasm&name=echo.wasm',
      body: readFileSync(join(REPO_ROOT, 'wasm', 'echo.wasm')),
      headers: { 'content-type': 'application/wasm' },
    });
    expect(up.status).toBe(201);
    const execute = () =>
      daemon().request({
        method: 'POST',
        path: '/v1/executions',
        body: { build: up.body.id, entry: 'echo', input: { kind: 'text', text: 'x' } },
      });

    expect((await execute()).status).toBe(200);
    expect((await execute()).body.error.code).toBe('RATE_LIMITED');
    expect((await execute()).body.error.code).toBe('RATE_LIMITED');
    // The third violation starts the cooldown somewhere in [t0, t1].
    const t0 = performance.now();
    const third = await execute();
    const t1 = performance.now();
    expect(third.body.error.code).toBe('RATE_LIMITED');

    const cool = await execute();
    expect(cool.status).toBe(429);
    expect(cool.body.error).toMatchObject({ code: 'ACTOR_COOLDOWN', actor: 'uid:0' });
    expect(Number(cool.headers['retry-after'])).toBe(COOLDOWN_MS / 1000);
    const state = await daemon().request({ path: '/v1/qos?actor=uid:0' });
    expect(state.body.actor.cooldownMs).toBeGreaterThan(0);
    expect(state.body.actor.cooldownMs).toBeLessThanOrEqual(COOLDOWN_MS);
    expect(state.body.state.cooldowns).toEqual([
      expect.objectContaining({ actor: 'uid:0', remainingMs: expect.any(Number) }),
    ]);

    // Probe around the end: answered before t0 + cooldown → still cooling; sent after
    // t1 + cooldown → the tier decides (its bucket refills only in a minute: RATE_LIMITED),
    // every 20 ms until the first such answer.
    let sawCooling = false;
    let sawEnded = false;
    await sleep(Math.max(0, t1 + COOLDOWN_MS - 400 - performance.now()));
    while (performance.now() < t1 + COOLDOWN_MS + 400) {
      const sent = performance.now();
      const res = await execute();
      const answered = performance.now();
      expect(res.status).toBe(429);
      const code = res.body.error.code;
      if (answered < t0 + COOLDOWN_MS) expect(code).toBe('ACTOR_COOLDOWN');
      if (sent >= t1 + COOLDOWN_MS) expect(code).toBe('RATE_LIMITED');
      if (code === 'ACTOR_COOLDOWN') sawCooling = true;
      else {
        // Each tier refusal is a violation again: stop at the first, before a new cooldown.
        sawEnded = true;
        break;
      }
      await sleep(20);
    }
    expect(sawCooling).toBe(true);
    expect(sawEnded).toBe(true);

    // Announced once, with the actor and its three violations.
    let logged: Record<string, unknown>[] = [];
    for (let i = 0; i < 50 && logged.length === 0; i++) {
      logged = daemon()
        .logs()
        .filter((l) => l.event === 'qos.abuse_detected');
      if (logged.length === 0) await sleep(50);
    }
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ actor: 'uid:0', cooldownMs: COOLDOWN_MS, windowMs: 60_000 });
    expect((logged[0]!.violations as { kind: string }[]).map((v) => v.kind)).toEqual([
      'rate_limited',
      'rate_limited',
      'rate_limited',
    ]);
    // And on the event bus, where a watcher reads it like any other event.
    const onBus = await daemon().request({ path: '/v1/events/system.qos.>?wait_ms=2000' });
    expect(onBus.status).toBe(200);
    const abuse = onBus.body.messages.filter(
      (m: { subject: string }) => m.subject === 'system.qos.abuse_detected',
    );
    expect(abuse).toHaveLength(1);
    expect(abuse[0].data).toMatchObject({
      name: 'qos.abuse_detected',
      actor: 'uid:0',
      cooldownMs: COOLDOWN_MS,
      windowMs: 60_000,
    });
    expect(abuse[0].data.violations).toHaveLength(3);
    const metrics = await daemon().request({ path: '/metrics' });
    expect(metrics.text).toMatch(/^thunderpac_qos_cooldowns_total 1$/m);
    expect(metrics.text).toMatch(
      /^thunderpac_qos_decisions_total\{limit="cooldown",result="refused"\} \d+$/m,
    );
  }, 30_000);
});
