/**
 * The credentials of a unix-socket peer, read once per connection with SO_PEERCRED (and
 * SO_PEERGROUPS) through the addon (native/src/peer_cred.cc). The kernel recorded them when the
 * client connected, so a client cannot claim another uid.
 *
 * The descriptor comes from the accepted socket's libuv handle: on Linux a unix-socket
 * connection's `socket._handle` is a `Pipe` whose `fd` getter returns the descriptor (checked:
 * `net.createServer(c => c._handle.fd)` on a path). It is private API, so a missing or negative
 * fd is refused loudly (the connection then has no identity: 401), never guessed.
 */

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { ThunderpacError } from '../runtime/errors.js';
import { PACKAGE_ROOT } from '../runtime/package-root.js';

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups (empty on kernels without SO_PEERGROUPS). */
  readonly groups: readonly number[];
}

interface PeerAddon {
  peerCredentials(fd: number): PeerCredentials;
}

let addon: PeerAddon | undefined;

function peerAddon(): PeerAddon {
  if (addon) return addon;
  const path =
    process.env.THUNDERPAC_NATIVE_ADDON ?? join(PACKAGE_ROOT, 'build', 'Release', 'thunderpac_native.node');
  const loaded = createRequire(import.meta.url)(path) as Partial<PeerAddon>;
  if (typeof loaded.peerCredentials !== 'function') {
    throw new ThunderpacError(
      'DAEMON_PEER_CREDENTIALS',
      `${path} predates peerCredentials; rebuild the native addon with \`npm run build:native\``,
    );
  }
  addon = loaded as PeerAddon;
  return addon;
}

/** Fail at start (not on the first request) when the addon cannot read peer credentials. */
export function assertPeerCredentialsAvailable(): void {
  peerAddon();
}

/** The peer of an accepted unix-socket connection; throws when the descriptor cannot be read. */
export function peerCredentialsOf(socket: Socket): PeerCredentials {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new ThunderpacError(
      'DAEMON_PEER_CREDENTIALS',
      'the connection has no file descriptor to read credentials from',
    );
  }
  return peerAddon().peerCredentials(fd);
}
