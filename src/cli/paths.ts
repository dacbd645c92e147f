/**
 * Paths named on the command line (`--store`, `-o`/`--out`, `--models-dir`, input files): checked
 * before anything is created, read or written, so a bad path is one line naming the flag, what
 * is wrong and the path (exit 2), never a Node stack trace or a hang.
 *
 * Directories are created here one component at a time instead of with
 * `mkdirSync(..., { recursive: true })`: Node's recursive mkdir retries forever when mkdir of a
 * child fails with ENOENT while its parent exists, which is what procfs answers (`/proc/x`).
 */

import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  type Stats,
  statfsSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ThunderpacError } from '../runtime/errors.js';

/** A path given on the command line that cannot be used: main() prints the message, exits 2. */
export class CliPathError extends ThunderpacError {
  readonly flag: string;
  readonly path: string;
  readonly problem: string;

  constructor(flag: string, problem: string, path: string, options?: { cause?: unknown }) {
    super('CLI_PATH', `${flag} ${problem}: ${path}`, options);
    this.flag = flag;
    this.problem = problem;
    this.path = path;
  }
}

/** What each errno a user-given path can produce means, in words. */
const ERRNO_PROBLEM: Readonly<Record<string, string>> = {
  ENOENT: 'does not exist',
  ENOTDIR: 'has a component that is not a directory',
  EEXIST: 'exists and is not a directory',
  EISDIR: 'is a directory',
  EACCES: 'is not accessible (permission denied)',
  EPERM: 'is not permitted',
  EROFS: 'is on a read-only file system',
  ELOOP: 'has too many levels of symbolic links',
  ENAMETOOLONG: 'has a name that is too long',
  ENOSPC: 'is on a full file system',
  EDQUOT: 'is over its disk quota',
  EIO: 'cannot be read or written (I/O error)',
  EINVAL: 'is not a valid path here',
  EBUSY: 'is busy',
  ENXIO: 'is a device or socket that cannot be opened',
  ENODEV: 'is a device that cannot be opened',
  EMFILE: 'cannot be opened (too many open files)',
  ENFILE: 'cannot be opened (too many open files)',
  ETXTBSY: 'is busy (a running program)',
  EFBIG: 'is too large',
};

/** The errno of a Node fs error, when it is one a user-given path can cause. */
export function userPathErrno(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code in ERRNO_PROBLEM ? code : undefined;
}

/** A Node fs error on `path` (named by `flag`) as a CliPathError. */
export function pathError(flag: string, path: string, err: unknown): CliPathError {
  const errno = userPathErrno(err);
  const problem = errno
    ? ERRNO_PROBLEM[errno]!
    : `cannot be used (${(err as Error)?.message ?? String(err)})`;
  return new CliPathError(flag, problem, path, { cause: err });
}

/**
 * Kernel pseudo file systems (statfs magic numbers): nothing of ours belongs there, and mkdir in
 * them answers in ways (ENOENT under an existing /proc) that make recursive creation loop.
 * /dev itself is a tmpfs and stays usable (`-o /dev/stdout`, a store in /dev/shm).
 */
const PSEUDO_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'procfs'],
  [0x62656572, 'sysfs'],
  [0x27e0eb, 'cgroupfs'],
  [0x63677270, 'cgroup2fs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpffs'],
  [0x6e736673, 'nsfs'],
  [0x50495045, 'pipefs'],
]);

function pseudoFsOf(dir: string): string | undefined {
  try {
    return PSEUDO_FS.get(Number(statfsSync(dir).type));
  } catch {
    return undefined;
  }
}

function statOrNull(path: string, flag: string, shown = path): Stats | null {
  try {
    return statSync(path);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw pathError(flag, shown, err);
    // stat says ENOENT but the name is there: a symbolic link to nothing.
    try {
      lstatSync(path);
    } catch {
      return null;
    }
    throw new CliPathError(flag, 'is a symbolic link to nothing', shown);
  }
}

/**
 * Where a directory would go: the path made absolute, the nearest ancestor that exists (a
 * directory, not in a kernel pseudo file system, symbolic links followed) and the components
 * below it that do not exist yet. One pass up the path: bounded by its length.
 */
function plan(path: string, flag: string): { abs: string; missing: string[] } {
  if (path.length === 0) throw new CliPathError(flag, 'is empty', "''");
  if (path.includes('\0')) throw new CliPathError(flag, 'contains a NUL byte', JSON.stringify(path));
  const abs = resolve(path);
  const missing: string[] = [];
  let at = abs;
  for (;;) {
    const st = statOrNull(at, flag, path);
    if (st) {
      if (!st.isDirectory()) {
        throw new CliPathError(
          flag,
          at === abs ? 'is not a directory' : `is under ${at}, which is not a directory`,
          path,
        );
      }
      break;
    }
    missing.unshift(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  // `at` exists (or is /): the file system of the deepest existing directory decides.
  const pseudo = pseudoFsOf(at);
  if (pseudo) throw new CliPathError(flag, `is inside a kernel pseudo file system (${pseudo})`, path);
  return { abs, missing };
}

/**
 * A directory that must exist or be creatable (a store, an output directory). With `create`,
 * the missing components are made one mkdir each; without, only checked.
 */
export function usableDirectory(path: string, flag: string, create: boolean): string {
  const { abs, missing } = plan(path, flag);
  if (!create) return abs;
  for (const dir of missing) {
    try {
      mkdirSync(dir);
    } catch (err) {
      // Someone else made it meanwhile: fine if it is a directory.
      if ((err as { code?: string }).code === 'EEXIST' && statOrNull(dir, flag)?.isDirectory()) continue;
      throw pathError(flag, path, err);
    }
  }
  return abs;
}

/** A directory that must already exist (e.g. `--models-dir`). */
export function existingDirectory(path: string, flag: string): string {
  const { abs, missing } = plan(path, flag);
  if (missing.length > 0) throw new CliPathError(flag, 'does not exist', path);
  return abs;
}

/** Writes an output file, creating its directory; every failure names the flag and the path. */
export function writeOutputFile(path: string, text: string, flag: string): void {
  usableDirectory(dirname(path), flag, true);
  const st = statOrNull(path, flag);
  if (st?.isDirectory()) throw new CliPathError(flag, 'is a directory', path);
  // A FIFO stays allowed: `-o /dev/stdout` into a pipe, or `-o >(gzip)`, is how shells use it.
  try {
    writeFileSync(path, text);
  } catch (err) {
    throw pathError(flag, path, err);
  }
}

/**
 * The most a file named on the command line may hold. Regular files are checked by their size;
 * devices (e.g. /dev/zero) by what they actually give, so an endless one stops here.
 */
export const MAX_INPUT_FILE_BYTES = 256 * 2 ** 20;

/**
 * Reads a file named on the command line without blocking on a FIFO and without reading an
 * endless device to exhaustion. `-` (where the flag allows it) is stdin, read to its end.
 */
export function readUserFile(path: string, flag: string): Buffer {
  if (path === '-') {
    try {
      return readFileSync(0);
    } catch (err) {
      throw pathError(flag, 'stdin', err);
    }
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw pathError(flag, path, err);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new CliPathError(flag, 'is a directory', path);
    if (st.isFIFO() || st.isSocket()) throw new CliPathError(flag, 'is a pipe or socket', path);
    if (st.size > MAX_INPUT_FILE_BYTES) {
      throw new CliPathError(flag, `is larger than ${MAX_INPUT_FILE_BYTES} bytes`, path);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, null);
      } catch (err) {
        throw pathError(flag, path, err);
      }
      if (n === 0) break;
      total += n;
      if (total > MAX_INPUT_FILE_BYTES) {
        throw new CliPathError(flag, `gives more than ${MAX_INPUT_FILE_BYTES} bytes`, path);
      }
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}
