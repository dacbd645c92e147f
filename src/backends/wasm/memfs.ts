/**
 * The WASI filesystem of a `memory` sandbox fs: the sandbox's tree (runtime/fs-tree.ts), seen
 * through the same interface as a host-directory preopen (wasi-fs.ts), so wasi.ts serves both.
 *
 * Read-only by default: the write-side calls never reach this module (wasi.ts answers EROFS).
 * With `writable`, each execution works on a private copy: `reset()` (called by wasi.ts at the
 * start and the end of every execution) puts back the tree as given, so what one execution
 * wrote is never seen by the next and is dropped as soon as it ends. The copy is copy-on-write:
 * a file's bytes are copied only when the guest first writes to it. Its total size is bounded
 * by `maxBytes` (a write past it is ENOSPC), its file count by the tree bound.
 *
 * No links, no times, no owners: a file is bytes, a directory is a name; stat reports type and
 * size only (times, inode, device 0, as for the host preopen). Listings are sorted by name.
 *
 * Stringified into the worker script like wasi.ts (see worker.ts): `createMemFs` must stay
 * self-contained, referring to nothing outside its body but globals and its arguments.
 */

import type { WasiFs } from './wasi-fs.js';
import type { FoldWasiPath } from './wasi-path.js';

export interface MemFsConfig {
  /** path → bytes, as validated by runtime/fs-tree.ts; shared, never written. */
  readonly tree: Readonly<Record<string, Uint8Array>>;
  readonly writable: boolean;
  /** Bound on the writable copy's total bytes. */
  readonly maxBytes: number;
}

export function createMemFs(
  config: MemFsConfig,
  /** foldWasiPath (wasi-path.ts), passed in: this function is stringified. */
  foldPath: FoldWasiPath,
): WasiFs {
  // WASI errnos: literals, this function is stringified.
  const EACCES = 2;
  const EEXIST = 20;
  const EINVAL = 28;
  const EISDIR = 31;
  const ENOENT = 44;
  const ENOSPC = 51;
  const ENOTDIR = 54;
  const ENOTEMPTY = 55;
  const DIRECTORY = 3;
  const REGULAR_FILE = 4;
  const MAX_FILES = 10_000;

  /** A file: `n` bytes at the start of `b`; `own` = b is this execution's copy (may be written). */
  interface File {
    b: Uint8Array;
    n: number;
    own: boolean;
  }
  const baseFiles: [string, Uint8Array][] = Object.keys(config.tree)
    .sort()
    .map((p) => [p, config.tree[p] as Uint8Array]);
  const baseDirs = new Set<string>(['']);
  let baseBytes = 0;
  for (const [p, b] of baseFiles) {
    baseBytes += b.byteLength;
    for (let i = p.indexOf('/'); i !== -1; i = p.indexOf('/', i + 1)) baseDirs.add(p.slice(0, i));
  }
  let files = new Map<string, File>();
  let dirs = new Set<string>();
  let used = 0;
  const reset = (): void => {
    files = new Map(baseFiles.map(([p, b]) => [p, { b, n: b.byteLength, own: false }]));
    dirs = new Set(baseDirs);
    used = baseBytes;
  };
  reset();

  const parentOf = (rel: string): string => {
    const i = rel.lastIndexOf('/');
    return i === -1 ? '' : rel.slice(0, i);
  };
  /** ENOENT, or ENOTDIR when a component on the way is a file. */
  const missing = (rel: string): number => {
    for (let i = rel.indexOf('/'); i !== -1; i = rel.indexOf('/', i + 1)) {
      if (files.has(rel.slice(0, i))) return ENOTDIR;
    }
    return ENOENT;
  };
  const stat = (rel: string): { filetype: number; size: number } | number => {
    const f = files.get(rel);
    if (f !== undefined) return { filetype: REGULAR_FILE, size: f.n };
    if (dirs.has(rel)) return { filetype: DIRECTORY, size: 0 };
    return missing(rel);
  };
  /** 0 when rel's parent is a directory (so rel may be created there), else the errno. */
  const parentIsDir = (rel: string): number => {
    const p = parentOf(rel);
    if (dirs.has(p)) return 0;
    return files.has(p) ? ENOTDIR : missing(p);
  };
  const children = (rel: string): string[] => {
    const prefix = rel === '' ? '' : `${rel}/`;
    const names = new Set<string>();
    for (const p of files.keys()) {
      if (p.startsWith(prefix) && !p.includes('/', prefix.length)) names.add(p.slice(prefix.length));
    }
    for (const d of dirs) {
      if (d !== rel && d.startsWith(prefix) && !d.includes('/', prefix.length))
        names.add(d.slice(prefix.length));
    }
    return [...names].sort();
  };
  /** The file made this execution's own, with room for `need` bytes. */
  const owned = (f: File, need: number): Uint8Array => {
    if (!f.own || f.b.byteLength < need) {
      const b = new Uint8Array(Math.max(need, f.own ? f.b.byteLength * 2 : need, 16));
      b.set(f.b.subarray(0, f.n));
      f.b = b;
      f.own = true;
    }
    return f.b;
  };
  const renamed = (rel: string, from: string, to: string): string =>
    rel === from || rel.startsWith(`${from}/`) ? to + rel.slice(from.length) : rel;
  const resize = (f: File, size: number): number => {
    if (used - f.n + size > config.maxBytes) return ENOSPC;
    if (size > f.n) owned(f, size).fill(0, f.n, size);
    else if (f.own) f.b.fill(0, size, f.n);
    used += size - f.n;
    f.n = size;
    return 0;
  };

  const fs: WasiFs = {
    resolve: foldPath, // no links in a memory tree: the lexical path is the file
    stat,
    check(rel) {
      const s = stat(rel);
      return typeof s === 'number' ? s : 0;
    },
    read(rel, dst, position) {
      const f = files.get(rel);
      if (f === undefined) return -(dirs.has(rel) ? EISDIR : ENOENT);
      if (position >= f.n) return 0;
      const k = Math.min(dst.byteLength, f.n - position);
      dst.set(f.b.subarray(position, position + k));
      return k;
    },
    list(rel) {
      if (!dirs.has(rel)) return files.has(rel) ? ENOTDIR : missing(rel);
      return children(rel).map((n) => {
        const p = rel === '' ? n : `${rel}/${n}`;
        return [n, files.has(p) ? REGULAR_FILE : DIRECTORY] as const;
      });
    },
    reset,
  };
  if (!config.writable) return fs;
  return {
    ...fs,
    writable: {
      create(rel) {
        if (rel === '' || dirs.has(rel)) return EISDIR;
        if (files.has(rel)) return 0;
        const p = parentIsDir(rel);
        if (p !== 0) return p;
        if (files.size >= MAX_FILES) return ENOSPC;
        files.set(rel, { b: new Uint8Array(0), n: 0, own: false });
        return 0;
      },
      write(rel, src, position) {
        const f = files.get(rel);
        if (f === undefined) return -ENOENT;
        const end = position + src.byteLength;
        if (end > f.n) {
          const e = resize(f, end);
          if (e !== 0) return -e;
        }
        owned(f, end).set(src, position);
        return src.byteLength;
      },
      truncate(rel, size) {
        const f = files.get(rel);
        if (f === undefined) return dirs.has(rel) ? EISDIR : ENOENT;
        return resize(f, size);
      },
      mkdir(rel) {
        if (rel === '' || dirs.has(rel) || files.has(rel)) return EEXIST;
        const p = parentIsDir(rel);
        if (p !== 0) return p;
        if (files.size + dirs.size >= MAX_FILES * 2) return ENOSPC;
        dirs.add(rel);
        return 0;
      },
      rmdir(rel) {
        if (rel === '') return EACCES; // the preopen itself
        if (!dirs.has(rel)) return files.has(rel) ? ENOTDIR : missing(rel);
        if (children(rel).length > 0) return ENOTEMPTY;
        dirs.delete(rel);
        return 0;
      },
      unlink(rel) {
        const f = files.get(rel);
        if (f === undefined) return dirs.has(rel) ? EISDIR : missing(rel);
        used -= f.n;
        files.delete(rel);
        return 0;
      },
      rename(from, to) {
        if (from === '' || to === '') return EACCES;
        const f = files.get(from);
        if (f !== undefined) {
          if (dirs.has(to)) return EISDIR;
          const p = parentIsDir(to);
          if (p !== 0) return p;
          const old = files.get(to);
          if (old !== undefined && old !== f) used -= old.n;
          files.delete(from);
          files.set(to, f);
          return 0;
        }
        if (!dirs.has(from)) return missing(from);
        if (files.has(to)) return ENOTDIR;
        if (to === from) return 0;
        if (to.startsWith(`${from}/`)) return EINVAL; // into itself
        if (dirs.has(to) && children(to).length > 0) return ENOTEMPTY;
        const p = parentIsDir(to);
        if (p !== 0) return p;
        for (const [k, v] of [...files]) {
          const moved = renamed(k, from, to);
          if (moved !== k) {
            files.delete(k);
            files.set(moved, v);
          }
        }
        for (const d of [...dirs]) {
          const moved = renamed(d, from, to);
          if (moved !== d) {
            dirs.delete(d);
            dirs.add(moved);
          }
        }
        return 0;
      },
      renamed,
    },
  };
}
