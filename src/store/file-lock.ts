/**
 * The store's writer lock: flock(2) on the receipt log's descriptor, taken without waiting.
 *
 * Why flock: it belongs to the open file description, so two writers conflict whether they are
 * two processes or two opens in one process, and the kernel drops it when the descriptor closes
 * or the process dies — SIGKILL included — so a crashed writer never leaves a stale lock that an
 * operator must clear by hand. Node has no flock; the native addon wraps the syscall and nothing
 * more (native/src/file_lock.cc).
 *
 * The addon is loaded here rather than through backends/ebpf (the store sits below the backends);
 * `require` caches by file name, so both end up with the one loaded module.
 */

import { existsSync, fstatSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../runtime/package-root.js';
import { StoreLockedError, StoreLockUnavailableError } from './errors.js';

interface FlockAddon {
  /** 0 on success, else errno (EWOULDBLOCK when held elsewhere and not waiting). */
  flockFd(fd: number, exclusive: boolean, wait: boolean): number;
}

const EWOULDBLOCK = 11;

let cached: FlockAddon | undefined;

function flockAddon(path: string): FlockAddon {
  if (cached) return cached;
  const addonPath =
    process.env.THUNDERPAC_NATIVE_ADDON ?? join(PACKAGE_ROOT, 'build', 'Release', 'thunderpac_native.node');
  const howToBuild = 'build the native addon with `npm run build:native`';
  if (!existsSync(addonPath)) {
    throw new StoreLockUnavailableError(path, `native addon not found at ${addonPath}; ${howToBuild}`);
  }
  let addon: Partial<FlockAddon>;
  try {
    addon = createRequire(import.meta.url)(addonPath) as Partial<FlockAddon>;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new StoreLockUnavailableError(path, `cannot load ${addonPath}: ${reason}`, { cause: err });
  }
  if (typeof addon.flockFd !== 'function') {
    throw new StoreLockUnavailableError(path, `${addonPath} predates flockFd; ${howToBuild}`);
  }
  cached = addon as FlockAddon;
  return cached;
}

/**
 * Take the exclusive writer lock on `fd` (an open descriptor of `path`), or throw
 * StoreLockedError naming the holder. The lock lasts until the descriptor is closed.
 */
export function lockForWriting(fd: number, path: string): void {
  const errno = flockAddon(path).flockFd(fd, true, false);
  if (errno === 0) return;
  if (errno === EWOULDBLOCK) throw new StoreLockedError(path, lockHolderPid(fd));
  throw new StoreLockUnavailableError(path, `flock failed with errno ${errno}`);
}

/**
 * The pid /proc/locks lists for a write flock on fd's inode, if any. Best effort: the line names
 * the process that took the lock, which is what an operator needs to find the writer.
 */
function lockHolderPid(fd: number): number | undefined {
  try {
    const inode = fstatSync(fd).ino;
    for (const line of readFileSync('/proc/locks', 'latin1').split('\n')) {
      // "1: FLOCK  ADVISORY  WRITE 12345 08:01:1234567 0 EOF"
      const fields = line.trim().split(/\s+/);
      if (fields[1] !== 'FLOCK' || fields[3] !== 'WRITE') continue;
      if (fields[5]?.split(':')[2] === String(inode)) return Number(fields[4]);
    }
  } catch {
    // no /proc: the error simply does not name the holder
  }
  return undefined;
}

/**
 * Try the exclusive flock on `fd` without waiting: true when taken, false when another open
 * file description holds it (no /proc/locks lookup: callers that poll under contention, such
 * as QoS quota files shared by several processes, must not pay for naming the holder).
 */
export function tryLockExclusive(fd: number, path: string): boolean {
  const errno = flockAddon(path).flockFd(fd, true, false);
  if (errno === 0) return true;
  if (errno === EWOULDBLOCK) return false;
  throw new StoreLockUnavailableError(path, `flock failed with errno ${errno}`);
}

/** Take the exclusive flock on `fd`, waiting (blocking the thread) while another holds it. */
export function lockExclusiveWaiting(fd: number, path: string): void {
  const errno = flockAddon(path).flockFd(fd, true, true);
  if (errno !== 0) throw new StoreLockUnavailableError(path, `flock failed with errno ${errno}`);
}
