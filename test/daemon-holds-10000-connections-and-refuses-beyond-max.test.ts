/**
 * Connections at scale, against the real daemon on its real socket:
 * - 10,000 connections open at once (idle, and some mid-request): a fresh client still gets its
 *   health answer, and requests on the held connections are answered too;
 * - past limits.maxConnections, new connections are refused cleanly (closed at once, no
 *   answer, no crash) and, once the crowd leaves, the daemon serves again.
 */

import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { openSocket, statusOf } from './helpers/raw-http.js';

const CONNECTIONS = 10_000;

/**
 * Open `n` connections, a batch at a time (a unix socket's listen backlog is finite, and a
 * connect over it fails with EAGAIN instead of waiting), retrying the refused ones.
 */
async function openMany(socketPath: string, n: number, batch = 250): Promise<Socket[]> {
  const open: Socket[] = [];
  let failures = 0;
  while (open.length < n) {
    const want = Math.min(batch, n - open.length);
    const settled = await Promise.allSettled(Array.from({ length: want }, () => openSocket(socketPath)));
    for (const s of settled) {
      if (s.status === 'fulfilled') {
        s.value.on('error', () => {});
        open.push(s.value);
      } else if (++failures > n) {
        throw new Error(`cannot open connections: ${String(s.reason)}`);
      }
    }
  }
  return open;
}

function closeAll(sockets: readonly Socket[]): void {
  for (const s of sockets) s.destroy();
}

/** Send one request on an open connection and read its status line. */
function requestOn(socket: Socket, path: string): Promise<number | null> {
  return new Promise((resolve) => {
    const received: Buffer[] = [];
    const onData = (c: Buffer) => {
      received.push(c);
      const text = Buffer.concat(received).toString('latin1');
      if (text.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve(statusOf(text));
      }
    };
    socket.on('data', onData);
    socket.once('close', () => resolve(statusOf(Buffer.concat(received).toString('latin1'))));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
  });
}

describe('10,000 concurrent connections', () => {
  let daemon: TestDaemon;
  let sockets: Socket[] = [];

  beforeAll(async () => {
    daemon = await startTestDaemon({ logLevel: 'warn' });
  }, 120_000);
  afterAll(async () => {
    closeAll(sockets);
    await daemon?.stop();
  });

  it('are held open while a fresh client is served', async () => {
    sockets = await openMany(daemon.socket, CONNECTIONS);
    expect(sockets).toHaveLength(CONNECTIONS);
    // Half-sent requests on some of them, too.
    for (const s of sockets.slice(0, 500)) s.write('GET /v1/health HTTP/1.1\r\nHost: loc');
    const res = await daemon.request({ path: '/v1/health' });
    expect(res.status).toBe(200);
    // The held connections still work.
    const statuses = await Promise.all(sockets.slice(-20).map((s) => requestOn(s, '/v1/health')));
    expect(statuses).toEqual(Array(20).fill(200));
    const alive = sockets.filter((s) => !s.destroyed).length;
    expect(alive).toBeGreaterThanOrEqual(CONNECTIONS - 500);
  }, 60_000);

  it('and once they leave, the daemon is as before', async () => {
    closeAll(sockets);
    sockets = [];
    const res = await daemon.request({ path: '/metrics' });
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^process_open_fds \d+/m);
  });
});

describe('connections beyond limits.maxConnections', () => {
  const MAX = 100;
  let daemon: TestDaemon;
  let sockets: Socket[] = [];

  beforeAll(async () => {
    daemon = await startTestDaemon({ config: { limits: { maxConnections: MAX } }, logLevel: 'warn' });
  }, 120_000);
  afterAll(async () => {
    closeAll(sockets);
    await daemon?.stop();
  });

  it('are closed at once without an answer, and the daemon serves again when the crowd leaves', async () => {
    sockets = await openMany(daemon.socket, 3 * MAX, 50);
    // Give the daemon a moment to drop the excess (it closes them as it accepts them).
    await new Promise((r) => setTimeout(r, 500));
    const open = sockets.filter((s) => !s.destroyed && !s.readableEnded);
    expect(open.length).toBeLessThanOrEqual(MAX);
    // The ones it kept are served.
    const kept = await Promise.all(open.slice(0, 10).map((s) => requestOn(s, '/v1/health')));
    expect(kept).toEqual(Array(Math.min(10, open.length)).fill(200));
    // A fresh client is refused while the daemon is full: closed, no status line.
    const refused = await openSocket(daemon.socket).then((s) => {
      s.on('error', () => {});
      return requestOn(s, '/v1/health');
    });
    expect(refused).toBeNull();
    closeAll(sockets);
    sockets = [];
    await new Promise((r) => setTimeout(r, 200));
    const res = await daemon.request({ path: '/v1/health' });
    expect(res.status).toBe(200);
  }, 60_000);
});
