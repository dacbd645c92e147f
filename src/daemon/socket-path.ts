/**
 * Claiming the unix socket's path before listening on it. A path that exists is either:
 *   - a live socket (something answers a connect): another daemon; refuse;
 *   - a dead socket (connect is refused): left by a daemon that died; remove it;
 *   - anything else (a file, a directory): never ours to delete; refuse.
 * The parent directory is created (0755) when missing, as systemd's RuntimeDirectory would.
 */

import { lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { ThunderpacError } from '../runtime/errors.js';

/** The daemon cannot start for a reason the operator must fix; `exitCode` 2 (usage) or 70. */
export class DaemonStartError extends ThunderpacError {
  readonly exitCode: number;

  constructor(code: string, message: string, exitCode = 2) {
    super(code, message);
    this.exitCode = exitCode;
  }
}

/** Whether something accepts connections on the unix socket at `path` (within `timeoutMs`). */
function answers(path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const done = (live: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(live);
    };
    // A listener whose accept queue is full does not answer at once; treat silence as alive.
    const timer = setTimeout(() => done(true), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'),
    );
  });
}

export async function claimSocketPath(path: string): Promise<void> {
  let stat: ReturnType<typeof lstatSync> | undefined;
  try {
    stat = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new DaemonStartError(
        'DAEMON_SOCKET',
        `cannot use socket path ${path}: ${(err as Error).message}`,
      );
    }
  }
  if (!stat) {
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    } catch (err) {
      throw new DaemonStartError(
        'DAEMON_SOCKET',
        `cannot create the socket's directory ${dirname(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    return;
  }
  if (!stat.isSocket()) {
    throw new DaemonStartError(
      'DAEMON_SOCKET',
      `${path} exists and is not a socket; refusing to replace it (remove it or choose another --socket)`,
    );
  }
  if (await answers(path, 1000)) {
    throw new DaemonStartError('DAEMON_RUNNING', `another daemon is listening on ${path}`);
  }
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new DaemonStartError(
        'DAEMON_SOCKET',
        `cannot remove the stale socket ${path}: ${(err as Error).message}`,
      );
    }
  }
}
