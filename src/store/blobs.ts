/**
 * Content-addressed blobs: `blobs/sha256/<2 hex>/<64 hex>` — the store's layout before the block
 * store (blocks/block-store.ts). The Store opens it read-only as a fallback for keys its artifact
 * index does not have (with `payloads/<payload hash>` link files naming the blob of a payload)
 * and never writes it; `put` stays for tools and benches that build a legacy store.
 *
 * A blob is written once to a temporary name and renamed into place, so a reader never sees a
 * half-written blob and a crash leaves at most a stray temporary file. Reads re-hash the bytes:
 * a blob altered on disk is reported, never returned.
 */

import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { DIGEST_PATTERN, sha256Hex } from '../runtime/canonical.js';
import { IntegrityError, NotFoundError, ValidationError } from '../runtime/errors.js';
import { StoreReadOnlyError } from './errors.js';

export class BlobStore {
  readonly dir: string;
  /** Digests known to be on disk: a hot path that stores the same input twice skips the stat. */
  readonly #known = new Set<string>();
  readonly #durable: boolean;
  readonly #readOnly: boolean;
  #tmpCounter = 0;

  /** `readOnly`: create nothing (not even the directory) and refuse put. */
  constructor(dir: string, options: { durable?: boolean; readOnly?: boolean } = {}) {
    this.dir = join(dir, 'blobs', 'sha256');
    this.#durable = options.durable ?? false;
    this.#readOnly = options.readOnly ?? false;
    if (!this.#readOnly) mkdirSync(this.dir, { recursive: true });
  }

  pathOf(digest: string): string {
    if (!DIGEST_PATTERN.test(digest))
      throw new ValidationError('type', 'digest', 'sha256 hex (64 chars)', digest);
    return join(this.dir, digest.slice(0, 2), digest);
  }

  has(digest: string): boolean {
    if (this.#known.has(digest)) return true;
    const found = existsSync(this.pathOf(digest));
    if (found) this.#known.add(digest);
    return found;
  }

  /** Store bytes under their digest; `digest` may be passed when the caller already computed it. */
  put(bytes: Uint8Array, digest: string = sha256Hex(bytes)): string {
    if (this.has(digest)) return digest;
    if (this.#readOnly) throw new StoreReadOnlyError(this.dir, `store blob ${digest}`);
    const path = this.pathOf(digest);
    mkdirSync(join(this.dir, digest.slice(0, 2)), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}-${this.#tmpCounter++}`;
    const fd = openSync(tmp, 'wx');
    try {
      writeSync(fd, bytes);
      if (this.#durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    this.#known.add(digest);
    return digest;
  }

  get(digest: string): Uint8Array {
    const path = this.pathOf(digest);
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError('blob', digest);
      throw err;
    }
    const actual = sha256Hex(bytes);
    if (actual !== digest)
      throw new IntegrityError(`blob ${digest} was altered on disk (${path})`, digest, actual);
    return bytes;
  }
}
