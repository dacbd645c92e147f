/**
 * The lexical half of confining a guest's path to its preopen, the same for the host directory
 * (wasi-fs.ts, which then checks the real path too) and the memory tree (memfs.ts, where the
 * lexical path is the whole answer): absolute paths are refused, `.` and empty components
 * dropped, `..` folded, and a `..` above the preopen refused (ENOTCAPABLE), before any file is
 * looked at.
 *
 * Stringified into the worker script beside them (see worker.ts): `foldWasiPath` must stay
 * self-contained. Callers hand it to createReadOnlyFs / createMemFs rather than those calling it
 * by name, as with seeded-random.ts: a bundler may rename imported bindings inside function
 * bodies.
 */

/** `path` taken from the directory `base` (both relative to the preopen, '' = the preopen). */
export type FoldWasiPath = (base: string, path: string) => string | number;

/** The path relative to the preopen ('' = the preopen itself), or a WASI errno. */
export function foldWasiPath(base: string, path: string): string | number {
  // WASI errnos: literals, this function is stringified.
  const ENOENT = 44;
  const EINVAL = 28;
  const ENOTCAPABLE = 76;
  if (path.length === 0) return ENOENT;
  if (path.includes('\0')) return EINVAL;
  if (path.startsWith('/')) return ENOTCAPABLE;
  const parts = base === '' ? [] : base.split('/');
  for (const c of path.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (parts.length === 0) return ENOTCAPABLE;
      parts.pop();
    } else {
      parts.push(c);
    }
  }
  return parts.join('/');
}
