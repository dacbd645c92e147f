/**
 * Overload against the real daemon: far more executions at once than it has slots and queue
 * for. What is over limits.maxInFlight + limits.maxQueued is refused at once with a 503, a
 * Retry-After header and a typed JSON body (never a 500, never an unbounded queue); what was
 * admitted finishes with receipts; the queue never exceeds maxQueued while it happens; then
 * in-flight and queue return to 0 and the next request is served. (The 60-second 5x run with
 * numbers is `npm run bench:daemon-overload`; this test checks bounds, not speed.)
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startTestDaemon, type TestDaemon, type HttpResult } from './helpers/daemon.js';

const SLOTS = 4;
const QUEUE = 16;
const BURST = 300;

let daemon: TestDaemon;
let build: string;

beforeAll(async () => {
  daemon = await startTestDaemon({
    config: { limits: { maxInFlight: SLOTS, maxQueued: QUEUE } },
    logLevel: 'warn',
  });
  const echo = readFileSync(join(REPO_ROOT, 'wasm', 'echo.wasm'));
  const res = await daemon.request({
    method: 'POST',
    path: '/v1/builds',
    body: { kind: 'wasm', name: 'echo.wasm', base64: echo.toString('base64') },
  });
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${res.text}`);
  build = res.body.id;
}, 120_000);
afterAll(async () => {
  await daemon?.stop();
});

function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

describe('a burst far over the daemon’s slots and queue', () => {
  it('is shed with 503 + Retry-After beyond the bounds; the admitted finish; the queue stays bounded', async () => {
    let maxQueue = 0;
    let maxInFlight = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const m = await daemon.request({ path: '/metrics' });
        maxQueue = Math.max(maxQueue, gauge(m.text, 'thunderpac_execution_queue_depth'));
        maxInFlight = Math.max(maxInFlight, gauge(m.text, 'thunderpac_executions_in_flight'));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    // Each admitted execution holds its slot ~100 ms (a runaway guest ended by its timeout).
    const results: HttpResult[] = await Promise.all(
      Array.from({ length: BURST }, () =>
        daemon.request({
          method: 'POST',
          path: '/v1/executions',
          body: { build, entry: 'spin', input: { kind: 'text', text: 'x' }, limits: { timeoutMs: 100 } },
          timeoutMs: 60_000,
        }),
      ),
    );
    sampling = false;
    await sampler;

    const byStatus = new Map<number, HttpResult[]>();
    for (const r of results) byStatus.set(r.status, [...(byStatus.get(r.status) ?? []), r]);
    expect([...byStatus.keys()].sort()).toEqual([200, 503]);
    const admitted = byStatus.get(200) ?? [];
    const shed = byStatus.get(503) ?? [];
    // At least what fits at once was admitted; most of the burst was shed.
    expect(admitted.length).toBeGreaterThanOrEqual(SLOTS + QUEUE);
    expect(shed.length).toBeGreaterThan(BURST / 2);
    for (const r of admitted) {
      expect(r.body.status).toBe('failed');
      expect(r.body.error.code).toBe('LIMIT_TIMEOUT_MS');
      expect(typeof r.body.receiptId).toBe('string');
    }
    for (const r of shed) {
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(r.body.error.code).toBe('DAEMON_OVERLOADED');
      expect(typeof r.body.error.requestId).toBe('string');
    }
    expect(maxQueue).toBeLessThanOrEqual(QUEUE);
    expect(maxInFlight).toBeLessThanOrEqual(SLOTS);
  }, 60_000);

  it('leaves nothing running or queued, and serves the next request', async () => {
    const deadline = Date.now() + 20_000;
    let health = (await daemon.request({ path: '/v1/health' })).body;
    while ((health.inFlight !== 0 || health.queued !== 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      health = (await daemon.request({ path: '/v1/health' })).body;
    }
    expect(health).toMatchObject({ inFlight: 0, queued: 0 });
    const res = await daemon.request({
      method: 'POST',
      path: '/v1/executions',
      body: { build, entry: 'echo', input: { kind: 'text', text: 'after' } },
    });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('completed');
    const metrics = await daemon.request({ path: '/metrics' });
    expect(metrics.text).toMatch(
      /^thunderpac_http_requests_total\{method="POST",route="\/v1\/executions",status_code="503"\} \d+$/m,
    );
  });
});
