/**
 * The WASI preopen: a host directory seen READ-ONLY, with every path confined to it.
 *
 * Stringified into the worker script like host.ts and wasi.ts (see worker.ts), so
 * `createReadOnlyFs` must stay self-contained: it gets `node:fs` as an argument (the worker
 * passes `require('node:fs')`, the in-thread path the imported module), and foldWasiPath too,
 * and refers to nothing outside its own body but globals.
 *
 * Confinement, in two steps, both of which must pass:
 *   1. lexical (wasi-path.ts, shared with memfs.ts): absolute paths are refused, `.`/`..` are
 *      folded, and a `..` above the preopen is refused (ENOTCAPABLE), before the host is asked
 *      anything;
 *   2. real: the host's realpath of the result must still be the preopen or below it, so a
 *      symlink inside the directory that points outside is refused too (ENOTCAPABLE).
 * No host descriptor outlives a call: a read opens, reads and closes, so a worker terminated
 * mid-guest (timeoutMs) leaves nothing open in the process, and the guest's descriptor table
 * (wasi.ts) is plain data. Only regular files and directories are opened, never blocking
 * (O_NONBLOCK): a FIFO, socket or device in the directory is refused with EACCES, because
 * opening a FIFO would block the host thread until a writer came, which may be never.
 * Nothing here writes: files are opened O_RDONLY, and the write-side WASI calls never reach
 * this module (wasi.ts answers them EROFS). Metadata is reduced to file type and size: times,
 * inode and device numbers are the host's, so they are reported as 0 and results do not depend
 * on where or when the directory was made. Directory listings are sorted by name, not in the
 * host's readdir order.
 *
 * Known gap: a host directory changed concurrently (a symlink swapped in between realpath and
 * open) could race step 2; the directory is the caller's, not the guest's, to change.
 */

import type { FoldWasiPath } from './wasi-path.js';

/** The slice of node:fs used (sync: WASI host calls are synchronous). */
export interface NodeFsSlice {
  realpathSync(path: string): string;
  statSync(path: string): { isDirectory(): boolean; isFile(): boolean; size: number };
  fstatSync(fd: number): { isDirectory(): boolean; isFile(): boolean };
  openSync(path: string, flags: number): number;
  readonly constants: { readonly O_RDONLY: number; readonly O_NONBLOCK?: number; readonly O_NOCTTY?: number };
  readSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  closeSync(fd: number): void;
  readdirSync(path: string): string[];
}

export interface RoStat {
  readonly filetype: number;
  readonly size: number;
}

export interface ReadOnlyFs {
  /** A path relative to the preopen ('' = the preopen itself), or a WASI errno. */
  resolve(base: string, path: string): string | number;
  /** File type and size of a resolved path, or a WASI errno. */
  stat(rel: string): RoStat | number;
  /** 0 when the file can be opened for reading, or a WASI errno. */
  check(rel: string): number;
  /** Read at `position` into dst; returns the byte count, or a negated WASI errno. */
  read(rel: string, dst: Uint8Array, position: number): number;
  /** Entries of a resolved directory, sorted, with their WASI file types; or a WASI errno. */
  list(rel: string): readonly (readonly [string, number])[] | number;
}

/** Write-side operations of a writable filesystem (memfs.ts with `writable`); errnos as WASI's. */
export interface WritableOps {
  /** Make `rel` an (empty) regular file unless it is one already; 0 or an errno. */
  create(rel: string): number;
  /** Write src at position (growing the file); the byte count, or a negated errno. */
  write(rel: string, src: Uint8Array, position: number): number;
  truncate(rel: string, size: number): number;
  mkdir(rel: string): number;
  rmdir(rel: string): number;
  unlink(rel: string): number;
  rename(from: string, to: string): number;
  /**
   * Where `rel` is after a successful rename(from, to): moved with it when it is `from` or lies
   * below it, unchanged otherwise. The hosts move their open descriptors with it, so a file
   * opened before a rename is still the one they read and write.
   */
  renamed(rel: string, from: string, to: string): string;
}

/** What wasi.ts (and the preview 2 host) serve files from: a host preopen or a memory tree. */
export interface WasiFs extends ReadOnlyFs {
  /** Present only where the guest may write (a writable memory fs). */
  readonly writable?: WritableOps;
  /** Back to the state of the sandbox's tree; called at the start and end of every execution. */
  reset?(): void;
}

export function createReadOnlyFs(
  fs: NodeFsSlice,
  root: string,
  /** foldWasiPath (wasi-path.ts), passed in: this function is stringified. */
  foldPath: FoldWasiPath,
): ReadOnlyFs {
  // WASI errnos (wasi_snapshot_preview1): literals, this function is stringified.
  const EACCES = 2;
  const EIO = 29;
  const ELOOP = 32;
  const ENAMETOOLONG = 37;
  const ENOENT = 44;
  const ENOTDIR = 54;
  const ENOTCAPABLE = 76;
  const FILETYPE_UNKNOWN = 0;
  const FILETYPE_DIRECTORY = 3;
  const FILETYPE_REGULAR_FILE = 4;
  // Never blocks: a FIFO opened for reading waits for a writer, forever, in a synchronous host
  // call that neither fuel nor terminating the worker can interrupt; and no device becomes the
  // process's controlling terminal.
  const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOCTTY ?? 0);
  const rootReal = fs.realpathSync(root);
  const host = (rel: string): string => (rel === '' ? rootReal : `${rootReal}/${rel}`);
  const errno = (err: unknown): number => {
    switch ((err as { code?: string }).code) {
      case 'ENOENT':
        return ENOENT;
      case 'ENOTDIR':
        return ENOTDIR;
      case 'EACCES':
      case 'EPERM':
        return EACCES;
      case 'ELOOP':
        return ELOOP;
      case 'ENAMETOOLONG':
        return ENAMETOOLONG;
      default:
        return EIO;
    }
  };
  const stat = (rel: string): RoStat | number => {
    try {
      const s = fs.statSync(host(rel));
      const filetype = s.isDirectory()
        ? FILETYPE_DIRECTORY
        : s.isFile()
          ? FILETYPE_REGULAR_FILE
          : FILETYPE_UNKNOWN;
      return { filetype, size: filetype === FILETYPE_REGULAR_FILE ? s.size : 0 };
    } catch (err) {
      return errno(err);
    }
  };
  const resolve = (base: string, path: string): string | number => {
    const lexical = foldPath(base, path);
    if (typeof lexical === 'number') return lexical;
    let real: string;
    try {
      real = fs.realpathSync(host(lexical));
    } catch (err) {
      return errno(err);
    }
    if (real === rootReal) return '';
    if (!real.startsWith(`${rootReal}/`)) return ENOTCAPABLE;
    return real.slice(rootReal.length + 1);
  };
  const plain = (s: { isDirectory(): boolean; isFile(): boolean }): boolean => s.isFile() || s.isDirectory();
  /**
   * A host descriptor of a regular file or directory, or a negated errno. Anything else (FIFO,
   * socket, device) is refused with EACCES: it is looked at (stat, which opens nothing) before
   * it is opened, and again (fstat) after, in case it was swapped in between.
   */
  const open = (rel: string): number => {
    const path = host(rel);
    let fd: number;
    try {
      if (!plain(fs.statSync(path))) return -EACCES;
      fd = fs.openSync(path, OPEN_FLAGS);
    } catch (err) {
      return -errno(err);
    }
    try {
      if (plain(fs.fstatSync(fd))) return fd;
    } catch (err) {
      fs.closeSync(fd);
      return -errno(err);
    }
    fs.closeSync(fd);
    return -EACCES;
  };
  return {
    resolve,
    stat,
    check(rel) {
      const fd = open(rel);
      if (fd < 0) return -fd;
      fs.closeSync(fd);
      return 0;
    },
    read(rel, dst, position) {
      const fd = open(rel); // removed or replaced on the host since path_open: an errno
      if (fd < 0) return fd;
      try {
        return fs.readSync(fd, dst, 0, dst.byteLength, position);
      } catch (err) {
        return -errno(err);
      } finally {
        fs.closeSync(fd);
      }
    },
    list(rel) {
      let names: string[];
      try {
        names = fs.readdirSync(host(rel)).sort();
      } catch (err) {
        return errno(err);
      }
      // An entry that resolves outside the preopen (an escaping symlink) shows as unknown.
      return names.map((n) => {
        const r = resolve(rel, n);
        const s = typeof r === 'number' ? r : stat(r);
        return [n, typeof s === 'number' ? FILETYPE_UNKNOWN : s.filetype] as const;
      });
    },
  };
}
