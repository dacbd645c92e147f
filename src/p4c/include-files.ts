/**
 * Where an `#include` may read from, and how. A program is untrusted input, so its includes
 * are confined to the directories the caller named — the program's own directory, the `-I`
 * directories and thunderpac's p4/ folder — after symbolic links are resolved, and only
 * regular files of bounded size are read: `#include "../../../etc/passwd"` is refused, and
 * so are `/dev/zero`, a FIFO (which would block the read forever) and a directory.
 */

import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readSync,
  realpathSync,
  type Stats,
  statSync,
} from 'node:fs';
import { isAbsolute, relative, sep } from 'node:path';
import { fail, type SourcePos } from './errors.js';
import { MAX_SOURCE_BYTES } from './limits.js';

export class IncludeFiles {
  /** The allowed directories, resolved (those that exist). */
  readonly #roots: readonly string[];
  /** The directories as the caller named them, for messages. */
  readonly #named: readonly string[];

  constructor(roots: readonly string[]) {
    this.#named = [...new Set(roots)];
    this.#roots = roots.flatMap((r) => {
      try {
        return [realpathSync(r)];
      } catch {
        return [];
      }
    });
  }

  /**
   * The first candidate path that exists, with its text; undefined when none exists. A
   * candidate that exists outside the allowed directories, or is not a regular file, is an
   * error at the `#include` (`pos`), not skipped: the program asked for that file.
   */
  read(name: string, candidates: readonly string[], pos: SourcePos): [string, string] | undefined {
    for (const c of candidates) {
      let real: string;
      try {
        real = realpathSync(c);
      } catch {
        continue;
      }
      if (!this.#roots.some((root) => isInside(root, real)))
        fail(
          'preprocess',
          pos,
          `an include file inside ${this.#named.join(', ')}`,
          `'${name}', which is outside them`,
        );
      return [c, readRegularFile(real, name, pos)];
    }
    return undefined;
  }
}

export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!isAbsolute(rel) && rel.split(sep)[0] !== '..');
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'device';
  if (st.isSocket()) return 'socket';
  return 'special file';
}

/** A regular file's text, at most MAX_SOURCE_BYTES, read without ever blocking on it. */
export function readRegularFile(path: string, name: string, pos: SourcePos): string {
  // stat first so that a FIFO or a device is never even opened; fstat again after opening in
  // case the path was swapped in between.
  const check = (st: Stats): void => {
    if (!st.isFile()) fail('preprocess', pos, `a regular file to #include`, `'${name}' (a ${kindOf(st)})`);
    if (st.size > MAX_SOURCE_BYTES)
      fail(
        'limit',
        pos,
        `an include file of at most ${MAX_SOURCE_BYTES} bytes`,
        `'${name}' (${st.size} bytes)`,
      );
  };
  check(statSync(path));
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    check(st);
    // Room for the file as it was stat'ed and some growth; a file that fills it all is refused.
    const buf = Buffer.alloc(Math.min(st.size + 65_536, MAX_SOURCE_BYTES + 1));
    let length = 0;
    for (;;) {
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
      if (length === buf.length)
        fail(
          'limit',
          pos,
          `an include file of at most ${MAX_SOURCE_BYTES} bytes`,
          `'${name}' (it grew while read)`,
        );
    }
    return buf.toString('utf8', 0, length);
  } finally {
    closeSync(fd);
  }
}
