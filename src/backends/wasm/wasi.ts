/**
 * A deny-by-default, deterministic WASI preview 1 host (`wasi_snapshot_preview1`), our own.
 *
 * Why not @bytecodealliance/preview2-shim / jco's preview 1 adapter: the shim exposes the
 * host's environment, real clocks and writable files unless each is configured away, and it
 * is async and component-shaped; core modules compiled by clang + wasi-libc import preview 1
 * directly, and a few hundred lines cover all of it with every capability decided here.
 *
 * The capabilities a guest gets (the same on every run, machine and path):
 *   args     sandbox.wasi.args, default [program name] (the build's name); environ
 *            sandbox.wasi.env (sorted by name), default empty. Never the host's.
 *   stdio    fd 0 reads the execution's input bytes; fd 1 collects the output (over
 *            maxOutputBytes the guest is stopped: OUTPUT_LIMIT); fd 2 is captured up to
 *            WASI_MAX_STDERR_BYTES, the rest dropped (guest-stdio.ts, shared with preview 2).
 *   clocks   virtual: every clock starts at 0 per execution (realtime at WASI_EPOCH_NS,
 *            2000-01-01T00:00:00Z) and each clock_time_get advances it by 1 µs, so loops
 *            waiting for time end and two reads are ordered; poll_oneoff on a clock advances
 *            it by the timeout instead of sleeping. Receipt flag: `wasi-virtual-clock`.
 *   random   random_get draws from xoshiro128** seeded by sandbox.determinism.seed (in every
 *            receipt), reseeded per execution.
 *   files    none (no preopen), or preopened as "/": the sandbox's fs.dir READ-ONLY
 *            (wasi-fs.ts), or its memory tree (memfs.ts). Read-only: opening for write,
 *            create, truncate or append, and every write-side call (rename, unlink, mkdir,
 *            symlink, link, set_times, set_size, allocate) → EROFS; fd_write to a file fd →
 *            EBADF (no write right). A writable memory tree takes opens for write, create,
 *            truncate, append, mkdir, rmdir, unlink and rename on a per-execution copy
 *            (links, symlinks, allocate → ENOTSUP; set_times is accepted and changes
 *            nothing). filestat times, inode and device are always 0.
 *   sockets  sock_* → ENOTSUP; proc_raise → ENOTSUP; sched_yield → success.
 * proc_exit throws a marked exception (`thunderpacExit`) that abi.ts turns into the exit code.
 *
 * `createWasi` is stringified into the worker script (see worker.ts): it must stay
 * self-contained, no references outside its own body but globals and its arguments.
 */

import type { GuestStdio } from './guest-stdio.js';
import type { HostState } from './host.js';
import type { ValType } from './module-info.js';
import type { MemFsConfig } from './memfs.js';
import type { SeededRandom } from './seeded-random.js';
import type { WasiFs } from './wasi-fs.js';

export const WASI_MODULE = 'wasi_snapshot_preview1';
/** The allowedImports entry that grants every WASI preview 1 function. */
export const WASI_ALLOW_ALL = `${WASI_MODULE}.*`;
/** Determinism flag naming the clock policy; sandboxSpec adds it when WASI is allowed. */
export const WASI_CLOCK_FLAG = 'wasi-virtual-clock';
/** Realtime clock origin: 2000-01-01T00:00:00Z. */
export const WASI_EPOCH_NS = 946_684_800_000_000_000n;
export const WASI_MAX_STDERR_BYTES = 64 * 1024;

const I = 'i32' as const;
const J = 'i64' as const;
type Sig = readonly [readonly ValType[], readonly ValType[]];
const e = (...params: ValType[]): Sig => [params, [I]];

/** Every preview 1 function with its wasm signature, as policy.ts checks imports against. */
export const WASI_FUNCTIONS: Readonly<Record<string, Sig>> = Object.freeze({
  args_get: e(I, I),
  args_sizes_get: e(I, I),
  environ_get: e(I, I),
  environ_sizes_get: e(I, I),
  clock_res_get: e(I, I),
  clock_time_get: e(I, J, I),
  fd_advise: e(I, J, J, I),
  fd_allocate: e(I, J, J),
  fd_close: e(I),
  fd_datasync: e(I),
  fd_fdstat_get: e(I, I),
  fd_fdstat_set_flags: e(I, I),
  fd_fdstat_set_rights: e(I, J, J),
  fd_filestat_get: e(I, I),
  fd_filestat_set_size: e(I, J),
  fd_filestat_set_times: e(I, J, J, I),
  fd_pread: e(I, I, I, J, I),
  fd_prestat_get: e(I, I),
  fd_prestat_dir_name: e(I, I, I),
  fd_pwrite: e(I, I, I, J, I),
  fd_read: e(I, I, I, I),
  fd_readdir: e(I, I, I, J, I),
  fd_renumber: e(I, I),
  fd_seek: e(I, J, I, I),
  fd_sync: e(I),
  fd_tell: e(I, I),
  fd_write: e(I, I, I, I),
  path_create_directory: e(I, I, I),
  path_filestat_get: e(I, I, I, I, I),
  path_filestat_set_times: e(I, I, I, I, J, J, I),
  path_link: e(I, I, I, I, I, I, I),
  path_open: e(I, I, I, I, I, J, J, I, I),
  path_readlink: e(I, I, I, I, I, I),
  path_remove_directory: e(I, I, I),
  path_rename: e(I, I, I, I, I, I),
  path_symlink: e(I, I, I, I, I),
  path_unlink_file: e(I, I, I),
  poll_oneoff: e(I, I, I, I),
  proc_exit: [[I], []],
  proc_raise: e(I),
  sched_yield: e(),
  random_get: e(I, I),
  sock_accept: e(I, I, I),
  sock_recv: e(I, I, I, I, I, I),
  sock_send: e(I, I, I, I, I),
  sock_shutdown: e(I, I),
});

/** Per-prepared WASI settings; structured-cloneable (sent to the worker once per module). */
export interface WasiConfig {
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly seed: number;
  /** Real path of the read-only preopen; undefined = none (or a memory tree). */
  readonly dir: string | undefined;
  /** The memory tree preopened instead of a host directory. */
  readonly memory?: MemFsConfig;
  /** The module is a command (`_start`): entry `_start` runs in the command form. */
  readonly command: boolean;
}

export interface WasiStreams {
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array;
}

export interface WasiHost {
  /** The `wasi_snapshot_preview1` import namespace. */
  readonly imports: Record<string, unknown>;
  /** Reset all per-execution state: stdin = input, stdout bounded by maxOutputBytes. */
  begin(input: Uint8Array, maxOutputBytes: number): void;
  /** Forget what the guest opened and hand back what it wrote. */
  end(): WasiStreams;
}

export function createWasi(
  config: WasiConfig,
  host: HostState,
  rofs: WasiFs | undefined,
  /** createSeededRandom(config.seed) (seeded-random.ts), passed in: this function is stringified. */
  random: SeededRandom,
  /** createGuestStdio() (guest-stdio.ts), passed in for the same reason. */
  stdio: GuestStdio,
): WasiHost {
  // WASI errnos and constants; literals, as this function is stringified.
  const OK = 0;
  const EBADF = 8;
  const EEXIST = 20;
  const EFAULT = 21;
  const EINVAL = 28;
  const EISDIR = 31;
  const EMFILE = 33;
  const ENOTDIR = 54;
  const MAX_FDS = 1024; // the descriptor table is host memory: bounded like everything else
  const ENOTSUP = 58;
  const EROFS = 69;
  const ESPIPE = 70;
  const EPOCH = 946_684_800_000_000_000n;
  const TICK = 1000n; // ns per clock read
  // Rights (bit numbers from the preview 1 witx).
  const R = (bit: number): bigint => 1n << BigInt(bit);
  const FD_DATASYNC = R(0);
  const FD_READ = R(1);
  const FD_SEEK = R(2);
  const FD_TELL = R(5);
  const FD_WRITE = R(6);
  const FD_ADVISE = R(7);
  const FD_ALLOCATE = R(8);
  const PATH_OPEN = R(13);
  const FD_READDIR = R(14);
  const PATH_FILESTAT_GET = R(18);
  const FD_FILESTAT_GET = R(21);
  const FD_FILESTAT_SET_SIZE = R(22);
  const POLL = R(27);
  const WRITE_RIGHTS = FD_DATASYNC | FD_WRITE | FD_ALLOCATE | FD_FILESTAT_SET_SIZE;
  const FILE_RIGHTS = FD_READ | FD_SEEK | FD_TELL | FD_ADVISE | FD_FILESTAT_GET | POLL;
  const DIR_RIGHTS = PATH_OPEN | FD_READDIR | PATH_FILESTAT_GET | FD_FILESTAT_GET;

  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const args = config.args.map((a) => enc.encode(`${a}\0`));
  const env = config.env.map((v) => enc.encode(`${v}\0`));
  const PREOPEN_NAME = enc.encode('/');

  interface Fd {
    readonly dir: boolean;
    /** Renames move files under an open descriptor: the path follows (writable memory fs). */
    rel: string;
    pos: number;
    /** Opened with the write right (writable memory fs only). */
    readonly write: boolean;
    readonly append: boolean;
  }
  const wfs = rofs?.writable;

  let clock = 0n;
  const fds = new Map<number, Fd>();
  let nextFd = 4;

  const closeAll = (): void => {
    fds.clear();
    if (rofs !== undefined) fds.set(3, { dir: true, rel: '', pos: 0, write: false, append: false });
    nextFd = 4;
  };

  // Guest memory; re-read per call, since memory.grow detaches the old buffer.
  const view = (): DataView => new DataView((host.memory as { buffer: ArrayBuffer }).buffer);
  const bytesAt = (p: number, n: number): Uint8Array =>
    new Uint8Array((host.memory as { buffer: ArrayBuffer }).buffer, p >>> 0, n >>> 0);
  const str = (p: number, n: number): string => dec.decode(bytesAt(p, n));
  const iovecs = (iovs: number, n: number): Uint8Array[] => {
    const v = view();
    const list: Uint8Array[] = [];
    for (let i = 0; i < n >>> 0; i++) {
      const at = (iovs >>> 0) + 8 * i;
      list.push(bytesAt(v.getUint32(at, true), v.getUint32(at + 4, true)));
    }
    return list;
  };
  const writeFilestat = (p: number, filetype: number, size: number): void => {
    bytesAt(p, 64).fill(0);
    const v = view();
    v.setUint8(p + 16, filetype);
    v.setBigUint64(p + 24, 1n, true); // nlink
    v.setBigUint64(p + 32, BigInt(size), true);
    // dev, ino, atim, mtim, ctim stay 0: host-specific, so not shown.
  };
  const dirFd = (fd: number): Fd | number => {
    const f = fds.get(fd);
    if (f === undefined) return fd <= 2 ? ENOTDIR : EBADF;
    return f.dir ? f : ENOTDIR;
  };
  /** Every write-side path call: EROFS when its directory fd is real, EBADF otherwise. */
  const readOnly = (fd: number): number => {
    const d = dirFd(fd);
    return typeof d === 'number' ? d : EROFS;
  };
  /** A write-side path call on a writable memory fs: resolve, then `op`; EROFS when read-only. */
  const pathWrite =
    (op: (w: NonNullable<typeof wfs>, rel: string) => number) =>
    (fd: number, pathP: number, pathLen: number): number => {
      const d = dirFd(fd);
      if (typeof d === 'number') return d;
      if (wfs === undefined) return EROFS;
      const rel = (rofs as WasiFs).resolve(d.rel, str(pathP, pathLen));
      return typeof rel === 'number' ? rel : op(wfs, rel);
    };
  const validFd = (fd: number): boolean => fd <= 2 || fds.has(fd);

  const readInto = (fd: number, iovs: number, n: number, at: number | undefined, nreadP: number): number => {
    let total = 0;
    if (fd === 0) {
      if (at !== undefined) return ESPIPE;
      for (const b of iovecs(iovs, n)) {
        const k = stdio.readStdin(b);
        total += k;
        if (k < b.byteLength) break;
      }
    } else {
      const f = fds.get(fd);
      if (f === undefined || fd <= 2) return EBADF;
      if (f.dir) return EISDIR;
      let pos = at ?? f.pos;
      for (const b of iovecs(iovs, n)) {
        const k = (rofs as WasiFs).read(f.rel, b, pos);
        if (k < 0) return -k;
        pos += k;
        total += k;
        if (k < b.byteLength) break;
      }
      if (at === undefined) f.pos = pos;
    }
    view().setUint32(nreadP, total, true);
    return OK;
  };

  /**
   * Write the iovecs to the file `rel` from `pos` and store the count at nwrittenP (fd_write and
   * fd_pwrite): the position after the last byte, or a negated errno.
   */
  const writeIovecs = (rel: string, iovs: number, n: number, pos: number, nwrittenP: number): number => {
    const w = wfs as NonNullable<typeof wfs>;
    let written = 0;
    for (const b of iovecs(iovs, n)) {
      const k = w.write(rel, b, pos);
      if (k < 0) return k;
      pos += k;
      written += k;
    }
    view().setUint32(nwrittenP, written, true);
    return pos;
  };

  const fns: Record<string, (...a: never[]) => number | undefined> = {
    args_sizes_get(countP: number, sizeP: number) {
      const v = view();
      v.setUint32(countP, args.length, true);
      v.setUint32(
        sizeP,
        args.reduce((s, a) => s + a.byteLength, 0),
        true,
      );
      return OK;
    },
    args_get(ptrsP: number, bufP: number) {
      const v = view();
      let p = bufP >>> 0;
      for (let i = 0; i < args.length; i++) {
        const a = args[i] as Uint8Array;
        v.setUint32(ptrsP + 4 * i, p, true);
        bytesAt(p, a.byteLength).set(a);
        p += a.byteLength;
      }
      return OK;
    },
    environ_sizes_get(countP: number, sizeP: number) {
      const v = view();
      v.setUint32(countP, env.length, true);
      v.setUint32(
        sizeP,
        env.reduce((s, a) => s + a.byteLength, 0),
        true,
      );
      return OK;
    },
    environ_get(ptrsP: number, bufP: number) {
      const v = view();
      let p = bufP >>> 0;
      for (let i = 0; i < env.length; i++) {
        const a = env[i] as Uint8Array;
        v.setUint32(ptrsP + 4 * i, p, true);
        bytesAt(p, a.byteLength).set(a);
        p += a.byteLength;
      }
      return OK;
    },
    clock_res_get(id: number, p: number) {
      if (id >>> 0 > 3) return EINVAL;
      view().setBigUint64(p, TICK, true);
      return OK;
    },
    clock_time_get(id: number, _precision: bigint, p: number) {
      if (id >>> 0 > 3) return EINVAL;
      clock += TICK;
      view().setBigUint64(p, id === 0 ? EPOCH + clock : clock, true);
      return OK;
    },
    fd_write(fd: number, iovs: number, n: number, nwrittenP: number) {
      if (fd !== 1 && fd !== 2) {
        // Files have the write right only on a writable memory fs.
        const f = fds.get(fd);
        if (f === undefined || !f.write || wfs === undefined) return EBADF;
        let pos = f.pos;
        if (f.append) {
          const s = (rofs as WasiFs).stat(f.rel);
          if (typeof s === 'number') return s;
          pos = s.size;
        }
        const end = writeIovecs(f.rel, iovs, n, pos, nwrittenP);
        if (end < 0) return -end;
        f.pos = end;
        return OK;
      }
      let total = 0;
      for (const b of iovecs(iovs, n)) {
        total += b.byteLength;
        if (fd === 1) stdio.writeStdout(b);
        else stdio.writeStderr(b);
      }
      view().setUint32(nwrittenP, total, true);
      return OK;
    },
    fd_pwrite(fd: number, iovs: number, n: number, offset: bigint, nwrittenP: number) {
      if (fd === 1 || fd === 2) return ESPIPE;
      const f = fds.get(fd);
      if (f === undefined || !f.write || wfs === undefined) return EBADF;
      if (offset < 0n) return EINVAL;
      const end = writeIovecs(f.rel, iovs, n, Number(offset), nwrittenP);
      return end < 0 ? -end : OK;
    },
    fd_read(fd: number, iovs: number, n: number, nreadP: number) {
      return readInto(fd, iovs, n, undefined, nreadP);
    },
    fd_pread(fd: number, iovs: number, n: number, offset: bigint, nreadP: number) {
      return offset < 0n ? EINVAL : readInto(fd, iovs, n, Number(offset), nreadP);
    },
    fd_seek(fd: number, offset: bigint, whence: number, newP: number) {
      if (fd <= 2) return ESPIPE;
      const f = fds.get(fd);
      if (f === undefined) return EBADF;
      if (f.dir) return EISDIR;
      let base = 0;
      if (whence === 1) base = f.pos;
      else if (whence === 2) {
        const s = (rofs as WasiFs).stat(f.rel);
        if (typeof s === 'number') return s;
        base = s.size;
      } else if (whence !== 0) return EINVAL;
      const pos = base + Number(offset);
      if (pos < 0) return EINVAL;
      f.pos = pos;
      view().setBigUint64(newP, BigInt(pos), true);
      return OK;
    },
    fd_tell(fd: number, p: number) {
      if (fd <= 2) return ESPIPE;
      const f = fds.get(fd);
      if (f === undefined) return EBADF;
      view().setBigUint64(p, BigInt(f.pos), true);
      return OK;
    },
    fd_close(fd: number) {
      if (fd <= 2) return OK;
      const f = fds.get(fd);
      if (f === undefined) return EBADF;
      fds.delete(fd);
      return OK;
    },
    fd_fdstat_get(fd: number, p: number) {
      let type = 2; // character device: the standard streams
      let base = fd === 0 ? FD_READ | POLL : FD_WRITE | POLL;
      let inheriting = 0n;
      if (fd > 2) {
        const f = fds.get(fd);
        if (f === undefined) return EBADF;
        type = f.dir ? 3 : 4;
        base = f.dir ? DIR_RIGHTS : f.write ? FILE_RIGHTS | WRITE_RIGHTS : FILE_RIGHTS;
        // Write rights are advertised as inheritable on purpose: wasi-libc masks what it asks
        // path_open for with them, so an open for writing asks for FD_WRITE and gets EROFS,
        // instead of silently getting a read-only descriptor.
        inheriting = f.dir ? DIR_RIGHTS | FILE_RIGHTS | WRITE_RIGHTS : 0n;
      }
      bytesAt(p, 24).fill(0);
      const v = view();
      v.setUint8(p, type);
      v.setBigUint64(p + 8, base, true);
      v.setBigUint64(p + 16, inheriting, true);
      return OK;
    },
    fd_fdstat_set_flags(fd: number) {
      return validFd(fd) ? ENOTSUP : EBADF;
    },
    fd_fdstat_set_rights(fd: number) {
      return validFd(fd) ? ENOTSUP : EBADF;
    },
    fd_filestat_get(fd: number, p: number) {
      if (fd <= 2) {
        writeFilestat(p, 2, 0);
        return OK;
      }
      const f = fds.get(fd);
      if (f === undefined) return EBADF;
      const s = (rofs as WasiFs).stat(f.rel);
      if (typeof s === 'number') return s;
      writeFilestat(p, s.filetype, s.size);
      return OK;
    },
    fd_filestat_set_size(fd: number, size: bigint) {
      const f = fd > 2 ? fds.get(fd) : undefined;
      if (f === undefined) return EBADF;
      if (wfs === undefined) return EROFS;
      if (!f.write) return EBADF;
      return size < 0n ? EINVAL : wfs.truncate(f.rel, Number(size));
    },
    fd_filestat_set_times(fd: number) {
      if (fd <= 2 || !fds.has(fd)) return EBADF;
      return wfs === undefined ? EROFS : OK; // times are fixed at 0: accepted, changes nothing
    },
    fd_allocate(fd: number) {
      if (fd <= 2 || !fds.has(fd)) return EBADF;
      return wfs === undefined ? EROFS : ENOTSUP;
    },
    fd_advise(fd: number) {
      return validFd(fd) ? OK : EBADF;
    },
    fd_datasync(fd: number) {
      return validFd(fd) ? OK : EBADF;
    },
    fd_sync(fd: number) {
      return validFd(fd) ? OK : EBADF;
    },
    fd_renumber(fd: number) {
      return validFd(fd) ? ENOTSUP : EBADF;
    },
    fd_prestat_get(fd: number, p: number) {
      if (fd !== 3 || !fds.has(3)) return EBADF;
      const v = view();
      v.setUint32(p, 0, true); // tag 0: a directory
      v.setUint32(p + 4, PREOPEN_NAME.byteLength, true);
      return OK;
    },
    fd_prestat_dir_name(fd: number, p: number, len: number) {
      if (fd !== 3 || !fds.has(3)) return EBADF;
      bytesAt(p, Math.min(len >>> 0, PREOPEN_NAME.byteLength)).set(
        PREOPEN_NAME.subarray(0, Math.min(len >>> 0, PREOPEN_NAME.byteLength)),
      );
      return OK;
    },
    fd_readdir(fd: number, buf: number, bufLen: number, cookie: bigint, usedP: number) {
      const d = dirFd(fd);
      if (typeof d === 'number') return d;
      const list = (rofs as WasiFs).list(d.rel);
      if (typeof list === 'number') return list;
      const chunks: Uint8Array[] = [];
      let size = 0;
      for (let i = Number(cookie); i < list.length && size < bufLen >>> 0; i++) {
        const [name, type] = list[i] as readonly [string, number];
        const nb = enc.encode(name);
        const ent = new Uint8Array(24 + nb.byteLength);
        const v = new DataView(ent.buffer);
        v.setBigUint64(0, BigInt(i + 1), true); // d_next: the cookie of the next entry
        v.setUint32(16, nb.byteLength, true);
        v.setUint8(20, type);
        ent.set(nb, 24);
        chunks.push(ent);
        size += ent.byteLength;
      }
      let p = buf >>> 0;
      let left = bufLen >>> 0;
      for (const c of chunks) {
        const k = Math.min(left, c.byteLength);
        bytesAt(p, k).set(c.subarray(0, k));
        p += k;
        left -= k;
      }
      view().setUint32(usedP, (bufLen >>> 0) - left, true);
      return OK;
    },
    path_open(
      fd: number,
      _lookup: number,
      pathP: number,
      pathLen: number,
      oflags: number,
      rightsBase: bigint,
      _rightsInheriting: bigint,
      fdflags: number,
      fdP: number,
    ) {
      const d = dirFd(fd);
      if (typeof d === 'number') return d;
      // create (1), excl (4), trunc (8), append (fdflags 1), or any write right: a write.
      const write =
        (oflags & 13) !== 0 || (fdflags & 1) !== 0 || (BigInt.asUintN(64, rightsBase) & WRITE_RIGHTS) !== 0n;
      if (write && wfs === undefined) return EROFS;
      const fs = rofs as WasiFs;
      const rel = fs.resolve(d.rel, str(pathP, pathLen));
      if (typeof rel === 'number') return rel;
      let s = fs.stat(rel);
      if ((oflags & 1) !== 0 && wfs !== undefined) {
        if (typeof s !== 'number' && (oflags & 4) !== 0) return EEXIST;
        if (typeof s === 'number') {
          const e = wfs.create(rel);
          if (e !== OK) return e;
          s = fs.stat(rel);
        }
      }
      if (typeof s === 'number') return s;
      const isDir = s.filetype === 3;
      if ((oflags & 2) !== 0 && !isDir) return ENOTDIR;
      if (isDir && write) return EISDIR;
      if (fds.size >= MAX_FDS) return EMFILE;
      if (!isDir) {
        const denied = fs.check(rel);
        if (denied !== OK) return denied;
      }
      if (write && (oflags & 8) !== 0) {
        const e = (wfs as NonNullable<typeof wfs>).truncate(rel, 0);
        if (e !== OK) return e;
      }
      const n = nextFd++;
      fds.set(n, { dir: isDir, rel, pos: 0, write, append: (fdflags & 1) !== 0 });
      view().setUint32(fdP, n, true);
      return OK;
    },
    path_filestat_get(fd: number, _flags: number, pathP: number, pathLen: number, p: number) {
      const d = dirFd(fd);
      if (typeof d === 'number') return d;
      const fs = rofs as WasiFs;
      const rel = fs.resolve(d.rel, str(pathP, pathLen));
      if (typeof rel === 'number') return rel;
      const s = fs.stat(rel);
      if (typeof s === 'number') return s;
      writeFilestat(p, s.filetype, s.size);
      return OK;
    },
    // Links are not shown: reading one would reveal host paths.
    path_readlink(fd: number) {
      const d = dirFd(fd);
      return typeof d === 'number' ? d : EINVAL;
    },
    path_create_directory: pathWrite((w, rel) => w.mkdir(rel)),
    path_remove_directory: pathWrite((w, rel) => w.rmdir(rel)),
    path_unlink_file: pathWrite((w, rel) => w.unlink(rel)),
    path_rename(fd: number, oldP: number, oldLen: number, newFd: number, newP: number, newLen: number) {
      const from = dirFd(fd);
      if (typeof from === 'number') return from;
      const to = dirFd(newFd);
      if (typeof to === 'number') return to;
      if (wfs === undefined) return EROFS;
      const fs = rofs as WasiFs;
      const a = fs.resolve(from.rel, str(oldP, oldLen));
      if (typeof a === 'number') return a;
      const b = fs.resolve(to.rel, str(newP, newLen));
      if (typeof b === 'number') return b;
      const e = wfs.rename(a, b);
      // Open descriptors follow what they opened.
      if (e === OK) for (const f of fds.values()) f.rel = wfs.renamed(f.rel, a, b);
      return e;
    },
    path_link(fd: number) {
      const e = readOnly(fd);
      return e === EROFS && wfs !== undefined ? ENOTSUP : e;
    },
    path_filestat_set_times(fd: number) {
      const e = readOnly(fd);
      return e === EROFS && wfs !== undefined ? OK : e;
    },
    path_symlink(_p: number, _n: number, fd: number) {
      const e = readOnly(fd);
      return e === EROFS && wfs !== undefined ? ENOTSUP : e;
    },
    poll_oneoff(inP: number, outP: number, n: number, neventsP: number) {
      if (n >>> 0 === 0) return EINVAL;
      const v = view();
      for (let i = 0; i < n >>> 0; i++) {
        const sub = (inP >>> 0) + 48 * i;
        const ev = (outP >>> 0) + 32 * i;
        const tag = v.getUint8(sub + 8);
        let error = OK;
        let nbytes = 0n;
        if (tag === 0) {
          // A clock: advance virtual time to the deadline; never sleep.
          const timeout = v.getBigUint64(sub + 24, true);
          const abs = (v.getUint16(sub + 40, true) & 1) !== 0;
          const id = v.getUint32(sub + 16, true);
          const deadline = abs ? timeout - (id === 0 ? EPOCH : 0n) : clock + timeout;
          if (deadline > clock) clock = deadline;
        } else {
          const fd = v.getUint32(sub + 16, true);
          if (!validFd(fd)) error = EBADF;
          else if (fd === 0) nbytes = BigInt(stdio.stdinLeft());
        }
        bytesAt(ev, 32).fill(0);
        v.setBigUint64(ev, v.getBigUint64(sub, true), true);
        v.setUint16(ev + 8, error, true);
        v.setUint8(ev + 10, tag);
        v.setBigUint64(ev + 16, nbytes, true);
      }
      v.setUint32(neventsP, n, true);
      return OK;
    },
    proc_exit(code: number) {
      const e = new Error(`exit ${code >>> 0}`);
      Object.defineProperty(e, 'thunderpacExit', { value: code >>> 0 });
      throw e;
    },
    proc_raise() {
      return ENOTSUP;
    },
    sched_yield() {
      return OK;
    },
    random_get(p: number, len: number) {
      random.fill(bytesAt(p, len));
      return OK;
    },
    sock_accept() {
      return ENOTSUP;
    },
    sock_recv() {
      return ENOTSUP;
    },
    sock_send() {
      return ENOTSUP;
    },
    sock_shutdown() {
      return ENOTSUP;
    },
  };

  // A guest pointer out of bounds makes the typed-array view throw a RangeError: that is the
  // guest's fault, answered EFAULT, not a host crash. Markers (exit, output limit) propagate.
  const imports: Record<string, unknown> = {};
  for (const name of Object.keys(fns)) {
    const fn = fns[name] as (...a: unknown[]) => number | undefined;
    imports[name] = (
      a: unknown,
      b: unknown,
      c: unknown,
      d: unknown,
      e: unknown,
      f: unknown,
      g: unknown,
      h: unknown,
      i: unknown,
    ) => {
      try {
        return fn(a, b, c, d, e, f, g, h, i);
      } catch (x) {
        if (x instanceof RangeError && !/call stack/i.test(x.message)) return EFAULT;
        throw x;
      }
    };
  }

  return {
    imports,
    begin(input, maxOutputBytes) {
      closeAll();
      rofs?.reset?.();
      stdio.begin(input, maxOutputBytes);
      clock = 0n;
      random.reset();
    },
    end() {
      closeAll();
      rofs?.reset?.(); // a writable copy's writes go now, not at the next execution
      return stdio.end();
    },
  };
}
