/**
 * One daemon per store and per socket: a second one is refused with a clear one-line error and
 * exit 2 (and leaves the first serving); a socket left by a killed daemon is removed and
 * reused; a path that is not a socket is never replaced; a missing socket directory is created.
 */

import { existsSync, lstatSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureDistBuilt,
  runDaemon,
  startTestDaemon,
  stopAllTestDaemons,
  tempDirectory,
} from './helpers/daemon.js';

const tmp = tempDirectory('tp-second-');
beforeAll(() => ensureDistBuilt(), 180_000);
afterAll(async () => {
  await stopAllTestDaemons();
  tmp.remove();
});

describe('a second daemon', () => {
  it('on the same store or the same socket is refused (exit 2, before binding), and the first keeps serving', async () => {
    const first = await startTestDaemon();
    try {
      const socket = join(tmp.dir, 'second.sock');
      const sameStore = await runDaemon(['--socket', socket, '--store', first.store]);
      expect(sameStore.code).toBe(2);
      expect(sameStore.stderr).toMatch(
        new RegExp(
          `^thunderpac daemon: the store ${first.store} is in use by process ${first.pid} \\(another daemon\\?\\): one daemon per store\\n$`,
        ),
      );
      expect(existsSync(socket)).toBe(false);

      const sameSocket = await runDaemon(['--socket', first.socket, '--store', join(tmp.dir, 'other-store')]);
      expect(sameSocket.code).toBe(2);
      expect(sameSocket.stderr).toBe(`thunderpac daemon: another daemon is listening on ${first.socket}\n`);
      expect(lstatSync(first.socket).isSocket()).toBe(true);

      expect((await first.request({ path: '/v1/health' })).status).toBe(200);
    } finally {
      expect((await first.stop()).code).toBe(0);
    }
  }, 60_000);
});

describe('the socket path', () => {
  it('left behind by a killed daemon is removed and the new daemon serves on it', async () => {
    const first = await startTestDaemon();
    await first.kill(); // SIGKILL: no chance to unlink its socket
    expect(lstatSync(first.socket).isSocket()).toBe(true);
    const second = await startTestDaemon({ socket: first.socket });
    try {
      expect((await second.request({ path: '/v1/health' })).body).toMatchObject({ status: 'ok' });
    } finally {
      await second.stop();
      await first.stop();
    }
  }, 60_000);

  it('that is a regular file is refused and left alone', async () => {
    const path = join(tmp.dir, 'not-a-socket');
    writeFileSync(path, 'precious');
    const r = await runDaemon(['--socket', path, '--store', join(tmp.dir, 'store-3')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `thunderpac daemon: ${path} exists and is not a socket; refusing to replace it (remove it or choose another --socket)\n`,
    );
    expect(lstatSync(path).isFile()).toBe(true);
  }, 60_000);

  it('in a directory that does not exist gets the directory (0755)', async () => {
    const dir = join(tmp.dir, 'a', 'b');
    const d = await startTestDaemon({ socket: join(dir, 'd.sock') });
    try {
      expect(lstatSync(dir).mode & 0o777).toBe(0o755);
      expect(lstatSync(d.socket).mode & 0o777).toBe(0o660);
    } finally {
      await d.stop();
    }
  }, 60_000);
});
