import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild } from '../src/backends/wasm/backend.js';
import { EVENT_NAMES } from '../src/runtime/events.js';
import { ExecutionMetrics, LatencyHistogram } from '../src/telemetry/latency.js';
import { Thunderpac } from '../src/thunderpac.js';
import { buildGuests, guest } from './wasm-fixtures.js';

let tp: Thunderpac;
beforeAll(async () => {
  buildGuests();
  tp = await Thunderpac.open({ store: false });
});
afterAll(() => tp.close());

describe('telemetry', () => {
  it('publishes exactly the seed event names', () => {
    expect(Object.values(EVENT_NAMES).sort()).toEqual([
      'thunderpac:execution:exception',
      'thunderpac:execution:start',
      'thunderpac:execution:stop',
      'thunderpac:qos:abuse_detected',
      'thunderpac:qos:backpressure:applied',
      'thunderpac:qos:queue:dequeued',
      'thunderpac:qos:queue:enqueued',
      'thunderpac:qos:quota:consumed',
      'thunderpac:qos:rate_limit:check',
      'thunderpac:qos:rate_limit:exceeded',
      'thunderpac:resource:exceeded',
      'thunderpac:validation:failed',
    ]);
  });

  it('emits start/stop, exception, resource:exceeded and validation:failed with their payloads', async () => {
    const seen: [string, Record<string, unknown>][] = [];
    const listeners = Object.values(EVENT_NAMES)
      .filter((name) => !name.startsWith('thunderpac:qos:'))
      .map((name) => {
        const fn = (msg: unknown) => seen.push([name, msg as Record<string, unknown>]);
        subscribe(name, fn);
        return [name, fn] as const;
      });
    try {
      const build = createWasmBuild(guest('echo'), { name: 'echo' });
      const sandbox = tp.sandbox({ backend: 'wasm', limits: { maxOutputBytes: 64 } });
      const bytes = new Uint8Array(8);
      await tp.execute(sandbox, { build, entry: 'echo', input: { kind: 'bytes', bytes } });
      await tp.execute(sandbox, { build, entry: 'big', input: { kind: 'bytes', bytes } });
      await tp.execute(sandbox, { build, entry: 'echo', input: { kind: 'packet', bytes } });
    } finally {
      for (const [name, fn] of listeners) unsubscribe(name, fn);
    }
    expect(seen.map(([n]) => n)).toEqual([
      'thunderpac:execution:start',
      'thunderpac:execution:stop',
      'thunderpac:execution:start',
      'thunderpac:resource:exceeded',
      'thunderpac:execution:exception',
      'thunderpac:execution:start',
      'thunderpac:validation:failed',
      'thunderpac:execution:exception',
    ]);
    expect(seen[3]![1]).toMatchObject({ limit: 'maxOutputBytes', allowed: 64 });
    expect(seen[6]![1]).toMatchObject({ path: 'input.kind', kind: 'type' });
    expect((seen[1]![1].receipt as { status: string }).status).toBe('completed');
  });

  it('keeps latency histograms per backend and status', async () => {
    const metrics = new ExecutionMetrics().attach();
    try {
      const build = createWasmBuild(guest('echo'), { name: 'echo' });
      const sandbox = tp.sandbox({ backend: 'wasm' });
      for (let i = 0; i < 20; i++) {
        await tp.execute(sandbox, {
          build,
          entry: 'echo',
          input: { kind: 'bytes', bytes: new Uint8Array(4) },
        });
      }
      const s = metrics.snapshot()['wasm:completed']!;
      expect(s.count).toBe(20);
      expect(s.p50).toBeGreaterThan(0);
      expect(s.p99).toBeGreaterThanOrEqual(s.p50);
    } finally {
      metrics.detach();
    }
  });

  it('histogram percentiles follow the recorded distribution', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) h.record(i * 1000);
    const s = h.summary();
    expect(s.p50 / 500_000).toBeCloseTo(1, 2);
    expect(s.p99 / 990_000).toBeCloseTo(1, 2);
  });
});
