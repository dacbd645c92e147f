/**
 * A slow client (slowloris: headers trickled one byte per second, or a body that never
 * finishes) is cut at limits.requestTimeoutMs, with a 408 or a closed socket, long before it
 * could finish; while it trickles, other clients are served as usual.
 */

import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { openSocket, statusOf } from './helpers/raw-http.js';

const REQUEST_TIMEOUT_MS = 2_000;

let daemon: TestDaemon;

beforeAll(async () => {
  daemon = await startTestDaemon({
    config: { limits: { requestTimeoutMs: REQUEST_TIMEOUT_MS, keepAliveTimeoutMs: 1_000 } },
    logLevel: 'warn',
  });
}, 120_000);
afterAll(async () => {
  await daemon?.stop();
});

interface Trickled {
  /** Bytes sent before the server ended the connection. */
  readonly sent: number;
  readonly total: number;
  readonly response: string;
  readonly ended: 'closed' | 'reset' | 'gave-up';
}

/** Send `bytes` one byte every `intervalMs` until all are sent or the server ends the connection. */
function trickle(socket: Socket, bytes: string, intervalMs: number, giveUpMs: number): Promise<Trickled> {
  return new Promise((resolve) => {
    let sent = 0;
    const received: Buffer[] = [];
    let done = false;
    const finish = (ended: Trickled['ended']) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ sent, total: bytes.length, response: Buffer.concat(received).toString('latin1'), ended });
    };
    socket.on('data', (c: Buffer) => received.push(c));
    socket.on('close', () => finish('closed'));
    socket.on('error', () => finish('reset'));
    const timer = setInterval(() => {
      if (sent < bytes.length && !socket.destroyed) socket.write(bytes[sent++] as string);
    }, intervalMs);
    const giveUp = setTimeout(() => finish('gave-up'), giveUpMs);
  });
}

describe('slow clients', () => {
  it('headers trickled one byte per second are cut at the request timeout; others are served meanwhile', async () => {
    const head = 'GET /v1/health HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slowloris\r\nAccept: */*\r\n\r\n';
    const slow = trickle(await openSocket(daemon.socket), head, 1_000, 30_000);
    // While the slow client holds its connection, fresh clients get answers.
    for (let i = 0; i < 5; i++) {
      const res = await daemon.request({ path: '/v1/health' });
      expect(res.status).toBe(200);
      await new Promise((r) => setTimeout(r, 200));
    }
    const result = await slow;
    expect(result.ended, 'the server ended the connection').not.toBe('gave-up');
    // Cut long before the ~80 s the trickle would take: a 408 or a closed socket.
    expect(result.sent).toBeLessThan(result.total / 4);
    const status = statusOf(result.response);
    if (status !== null) expect(status).toBe(408);
  }, 40_000);

  it('a body that never finishes is cut at the request timeout', async () => {
    const socket = await openSocket(daemon.socket);
    socket.write(
      'POST /v1/builds HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{',
    );
    const result = await trickle(socket, ' '.repeat(999), 1_000, 30_000);
    expect(result.ended).not.toBe('gave-up');
    expect(result.sent).toBeLessThan(result.total / 4);
    const status = statusOf(result.response);
    if (status !== null) expect(status).toBe(408);
    const res = await daemon.request({ path: '/v1/health' });
    expect(res.status).toBe(200);
  }, 40_000);

  it('many slow clients at once do not stop the daemon from serving', async () => {
    const head = 'GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n';
    const sockets = await Promise.all(Array.from({ length: 200 }, () => openSocket(daemon.socket)));
    const slow = sockets.map((s) => trickle(s, head, 1_000, 30_000));
    const res = await daemon.request({ path: '/v1/health' });
    expect(res.status).toBe(200);
    for (const r of await Promise.all(slow)) {
      expect(r.ended).not.toBe('gave-up');
      expect(r.sent).toBeLessThan(r.total);
    }
  }, 40_000);
});
