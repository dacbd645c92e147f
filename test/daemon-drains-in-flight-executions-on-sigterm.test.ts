/**
 * SIGTERM: the daemon stops accepting, lets the execution in flight finish and answer its
 * client, flushes the receipt log (the receipt is there, read back from the store afterwards)
 * and exits 0. The drain is bounded: an execution past limits.drainTimeoutMs is cut and the
 * daemon still exits 0.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../src/store/store.js';
import {
  ensureDistBuilt,
  REPO_ROOT,
  startTestDaemon,
  stopAllTestDaemons,
  type TestDaemon,
} from './helpers/daemon.js';

const echo = readFileSync(join(REPO_ROOT, 'wasm', 'echo.wasm'));

beforeAll(() => ensureDistBuilt(), 180_000);
afterAll(() => stopAllTestDaemons());

async function uploadEcho(d: TestDaemon): Promise<string> {
  const r = await d.request({
    method: 'POST',
    path: '/v1/builds',
    body: { kind: 'wasm', name: 'echo.wasm', base64: echo.toString('base64') },
  });
  expect(r.status).toBe(201);
  return r.body.id;
}

async function untilInFlight(d: TestDaemon, n: number): Promise<void> {
  for (;;) {
    const h = await d.request({ path: '/v1/health' });
    if (h.body.inFlight >= n) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

function exited(d: TestDaemon): Promise<number | null> {
  return new Promise((resolve) => {
    if (d.process.exitCode !== null) resolve(d.process.exitCode);
    else d.process.once('exit', (code) => resolve(code));
  });
}

describe('SIGTERM', () => {
  it('drains the execution in flight: its client gets the answer, the receipt is in the log, exit 0', async () => {
    const d = await startTestDaemon();
    try {
      const build = await uploadEcho(d);
      // `spin` loops until its timeout: an execution that is surely in flight when the signal comes.
      const inFlight = d.request({
        method: 'POST',
        path: '/v1/executions',
        headers: { 'x-request-id': 'drain-me' },
        body: { build, entry: 'spin', input: { kind: 'text', text: 'x' }, limits: { timeoutMs: 800 } },
      });
      await untilInFlight(d, 1);
      const exit = exited(d);
      d.process.kill('SIGTERM');

      const answer = await inFlight;
      expect(answer.status).toBe(200);
      expect(answer.body.status).toBe('failed');
      expect(answer.body.error.code).toBe('LIMIT_TIMEOUT_MS');
      expect(await exit).toBe(0);

      const logs = d.logs();
      expect(logs.find((l) => l.msg === 'stopping: draining')).toMatchObject({ inFlight: 1 });
      expect(logs.at(-1)?.msg).toBe('stopped');
      // The daemon is gone and its lock with it: the receipt is in the store's log.
      const store = new Store(d.store, { readOnly: true });
      try {
        expect(store.getReceipt(answer.body.receiptId)).toMatchObject({
          status: 'failed',
          actor: 'uid:0',
          requestId: 'drain-me',
        });
      } finally {
        store.close();
      }
    } finally {
      await d.stop();
    }
  }, 90_000);

  it('bounds the drain by limits.drainTimeoutMs: an execution still running is cut, and the daemon exits 0', async () => {
    const d = await startTestDaemon({ config: { limits: { drainTimeoutMs: 300 } } });
    try {
      const build = await uploadEcho(d);
      const inFlight = d
        .request({
          method: 'POST',
          path: '/v1/executions',
          body: { build, entry: 'spin', input: { kind: 'text', text: 'x' }, limits: { timeoutMs: 60_000 } },
        })
        .then(
          (r) => r.status,
          (err: Error) => err.message,
        );
      await untilInFlight(d, 1);
      const exit = exited(d);
      d.process.kill('SIGTERM');
      expect(await exit).toBe(0);
      expect(await inFlight).toBe('socket hang up');
      expect(d.logs().some((l) => l.msg === 'drain timed out: closing the connections still open')).toBe(
        true,
      );
    } finally {
      await d.stop();
    }
  }, 90_000);
});
