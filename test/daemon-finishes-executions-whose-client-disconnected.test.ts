/**
 * A client that disconnects mid-execution does not cancel the execution or leak it: the
 * execution runs to its end and is sealed in a receipt (with the request id the client sent),
 * in-flight and queue depth return to 0, the connections are gone, and the daemon serves the
 * next client as before. Eight runaway executions (WASM `spin`, ended by limits.timeoutMs) on
 * four slots: four run, four wait in the queue, and every client hangs up while they do.
 */

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../src/store/store.js';
import { REPO_ROOT, startTestDaemon, type TestDaemon, tempDirectory } from './helpers/daemon.js';

const SLOTS = 4;
const CLIENTS = 8;
const RUN_MS = 1_000;

let daemon: TestDaemon;
let build: string;
// The store outlives the daemon (stop() removes the daemon's own temp dir): the last test reads it.
const storeDir = tempDirectory('tp-hangup-store-');

beforeAll(async () => {
  daemon = await startTestDaemon({
    config: { limits: { maxInFlight: SLOTS, maxQueued: 64 } },
    store: join(storeDir.dir, 'store'),
    logLevel: 'info',
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
  storeDir.remove();
});

/** Start an execution and hang up once the daemon has it (after `hangUpMs`); resolves then. */
function executeAndHangUp(requestId: string, hangUpMs: number): Promise<'hung-up' | 'answered'> {
  return new Promise((resolve) => {
    const body = JSON.stringify({
      build,
      entry: 'spin',
      input: { kind: 'text', text: 'x' },
      limits: { timeoutMs: RUN_MS },
    });
    const req = httpRequest(
      {
        socketPath: daemon.socket,
        method: 'POST',
        path: '/v1/executions',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-request-id': requestId,
        },
      },
      (res) => {
        res.resume();
        resolve('answered');
      },
    );
    req.on('error', () => {});
    req.end(body);
    setTimeout(() => {
      req.destroy();
      resolve('hung-up');
    }, hangUpMs);
  });
}

async function health(): Promise<{ inFlight: number; queued: number }> {
  const res = await daemon.request({ path: '/v1/health' });
  return res.body;
}

describe('a client that disconnects mid-execution', () => {
  const ids = Array.from({ length: CLIENTS }, (_, i) => `hangup-${i}-${randomUUID()}`);

  it('leaves the execution to finish, and nothing running or queued afterwards', async () => {
    const outcomes = await Promise.all(ids.map((id) => executeAndHangUp(id, 300)));
    expect(outcomes).toEqual(Array(CLIENTS).fill('hung-up'));
    // The daemon still has them: some running, the rest queued.
    const during = await health();
    expect(during.inFlight + during.queued).toBeGreaterThan(0);
    expect(during.inFlight).toBeLessThanOrEqual(SLOTS);
    // They finish on their own (each ends at its timeout); nothing stays in flight.
    const deadline = Date.now() + 30_000;
    let after = during;
    while (Date.now() < deadline) {
      after = await health();
      if (after.inFlight === 0 && after.queued === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(after).toMatchObject({ inFlight: 0, queued: 0 });
  }, 60_000);

  it('counts each execution once, and keeps serving', async () => {
    const metrics = await daemon.request({ path: '/metrics' });
    const failed = /^thunderpac_executions_total\{backend="wasm",status="failed"\} (\d+)$/m.exec(
      metrics.text,
    );
    expect(Number(failed?.[1])).toBe(CLIENTS);
    const res = await daemon.request({
      method: 'POST',
      path: '/v1/executions',
      body: { build, entry: 'echo', input: { kind: 'text', text: 'still here' } },
    });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('completed');
    expect(Buffer.from(res.body.output.base64, 'base64').toString()).toBe('still here');
  });

  it('seals each one in a receipt carrying the request id of the client that hung up', async () => {
    const store = daemon.store;
    await daemon.stop(); // flushes the receipt log; the test reads the store afterwards
    const logs = daemon.logs();
    const s = new Store(store);
    try {
      const receipts = s.listReceipts({ limit: 1000 }).receipts;
      for (const id of ids) {
        const r = receipts.find((x) => x.requestId === id);
        expect(r, `a receipt for ${id}`).toBeDefined();
        expect(r?.status).toBe('failed');
        expect(r?.error?.code).toBe('LIMIT_TIMEOUT_MS');
      }
    } finally {
      s.close();
    }
    expect(logs.some((l) => l.level === 50 || l.level === 60)).toBe(false);
  });
});
