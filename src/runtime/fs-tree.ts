/**
 * The in-memory filesystem tree of a sandbox (`fs: { kind: 'memory', files }`): validated once
 * when the sandbox spec is made, then canonical and content-addressed.
 *
 * Canonical form: a map from relative path to bytes with keys sorted (strings are stored as
 * their UTF-8 bytes); directories are implied by the paths. Its digest is
 * `sha256(canonical msgpack of that map)`, so the encoding a store keeps hashes to the digest
 * the receipt carries, and a replay can check that it runs on exactly the files the guest saw.
 *
 * Refused (ValidationError naming `sandbox.fs.files["<path>"]`): absolute paths, `.`/`..` or
 * empty components, NUL, over-long paths and names, a file that is also a directory of another
 * path, values that are neither bytes nor strings, and trees over their size or count bounds.
 */

import { decodeCanonical, encodeCanonical, sha256Hex } from './canonical.js';
import { IntegrityError, ValidationError } from './errors.js';
import type { FsPolicy, FsTree } from './types.js';

/** A memory fs may hold at most this much, tree and per-execution writes together. */
export const MEMORY_FS_MAX_BYTES = 64 << 20;
/** Default bound of a memory fs (tree + what a writable copy may grow to). */
export const MEMORY_FS_DEFAULT_BYTES = 16 << 20;
export const MEMORY_FS_MAX_FILES = 10_000;
export const MEMORY_FS_MAX_PATH_BYTES = 1024;
export const MEMORY_FS_MAX_NAME_BYTES = 255;

export interface MemoryFsOptions {
  readonly kind: 'memory';
  /** path → contents; a string is its UTF-8 bytes. */
  readonly files: Readonly<Record<string, Uint8Array | string>>;
  /** Give each execution a private writable copy (default false: read-only). */
  readonly writable?: boolean;
  /** Bound on the tree plus what a writable copy may grow to (default 16 MiB, at most 64 MiB). */
  readonly maxBytes?: number;
}

export type MemoryFsPolicy = Extract<FsPolicy, { kind: 'memory' }>;

const utf8 = new TextEncoder();

function checkPath(path: string, where: string): void {
  const bad = (why: string): never => {
    throw new ValidationError(
      'type',
      where,
      `a relative path without '.', '..' or empty parts (${why})`,
      path,
    );
  };
  if (path.length === 0) bad('empty');
  if (path.startsWith('/')) bad('absolute');
  if (path.includes('\0')) bad('NUL');
  if (utf8.encode(path).byteLength > MEMORY_FS_MAX_PATH_BYTES) {
    bad(`longer than ${MEMORY_FS_MAX_PATH_BYTES} bytes`);
  }
  for (const part of path.split('/')) {
    if (part === '') bad('empty part');
    if (part === '.' || part === '..') bad(`'${part}'`);
    if (utf8.encode(part).byteLength > MEMORY_FS_MAX_NAME_BYTES) {
      bad(`a name longer than ${MEMORY_FS_MAX_NAME_BYTES} bytes`);
    }
  }
}

/** Validate `fs: { kind: 'memory' }` options into the policy (for receipts) and the frozen tree. */
export function memoryFsFromOptions(options: MemoryFsOptions): { policy: MemoryFsPolicy; tree: FsTree } {
  const files = options.files as unknown;
  if (files === null || typeof files !== 'object' || Array.isArray(files)) {
    throw new ValidationError(
      'type',
      'sandbox.fs.files',
      'an object of path -> bytes | string',
      String(files),
    );
  }
  const writable = options.writable ?? false;
  if (typeof writable !== 'boolean') {
    throw new ValidationError('type', 'sandbox.fs.writable', 'a boolean', String(writable));
  }
  const maxBytes = options.maxBytes ?? MEMORY_FS_DEFAULT_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0 || maxBytes > MEMORY_FS_MAX_BYTES) {
    throw new ValidationError(
      'range',
      'sandbox.fs.maxBytes',
      `an integer in [0, ${MEMORY_FS_MAX_BYTES}]`,
      String(maxBytes),
    );
  }
  const paths = Object.keys(files).sort();
  if (paths.length > MEMORY_FS_MAX_FILES) {
    throw new ValidationError(
      'size',
      'sandbox.fs.files',
      `at most ${MEMORY_FS_MAX_FILES} files`,
      String(paths.length),
    );
  }
  const tree: Record<string, Uint8Array> = {};
  let bytes = 0;
  for (const path of paths) {
    const where = `sandbox.fs.files[${JSON.stringify(path)}]`;
    checkPath(path, where);
    const value = (files as Record<string, unknown>)[path];
    let content: Uint8Array;
    if (typeof value === 'string') content = utf8.encode(value);
    else if (value instanceof Uint8Array)
      content = value.slice(); // a private copy: the caller may reuse its buffer
    else throw new ValidationError('type', where, 'a Uint8Array or a string', typeof value);
    bytes += content.byteLength;
    if (bytes > maxBytes) {
      throw new ValidationError(
        'size',
        'sandbox.fs.files',
        `at most ${maxBytes} bytes in all (maxBytes)`,
        `more, at ${where}`,
      );
    }
    tree[path] = content;
  }
  // A path cannot be a file and a directory at once ('a' and 'a/b').
  for (const path of paths) {
    for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
      const dir = path.slice(0, i);
      if (dir in tree) {
        throw new ValidationError(
          'type',
          `sandbox.fs.files[${JSON.stringify(dir)}]`,
          `a file that is not also a directory (${JSON.stringify(path)} is inside it)`,
          'a file',
        );
      }
    }
  }
  const frozen = Object.freeze(tree);
  const policy: MemoryFsPolicy = Object.freeze({
    kind: 'memory',
    digest: fsTreeDigest(frozen),
    files: paths.length,
    bytes,
    writable,
    maxBytes,
  });
  return { policy, tree: frozen };
}

/** The tree's canonical bytes, as a store keeps them (they hash to the digest). */
export function encodeFsTree(tree: FsTree): Uint8Array {
  return encodeCanonical(tree);
}

export function fsTreeDigest(tree: FsTree): string {
  return sha256Hex(encodeFsTree(tree));
}

/** Decode stored tree bytes, refusing bytes that do not hash to the digest the receipt names. */
export function decodeFsTree(bytes: Uint8Array, digest: string): FsTree {
  const actual = sha256Hex(bytes);
  if (actual !== digest)
    throw new IntegrityError('stored memory fs tree does not match its digest', digest, actual);
  return decodeCanonical<Record<string, Uint8Array>>(bytes);
}
