/**
 * The artifact API over the block store and CURRENT: put bytes under a key with a kind, domain
 * and visibility; get them back re-hashed; tombstone, publish, list. Keys are sha256-shaped
 * (64 lowercase hex): by default the bytes' own sha256 (the block id); callers with a name of
 * their own (a payload hash, a build id) pass it as `key`. A put under a key that exists shadows
 * the older entry (the new bytes win; the old block is reclaimed by GC unless a snapshot holds
 * it).
 */

import { DIGEST_PATTERN } from '../../runtime/canonical.js';
import { NotFoundError, ValidationError } from '../../runtime/errors.js';
import { type BlockStore, NO_BLOCK, sha256Buf } from '../blocks/block-store.js';
import type { ArtifactIndex } from './artifact-index.js';
import {
  ArtifactReadOnlyError,
  ArtifactReclaimedError,
  ArtifactTombstonedError,
  StoreFileIntegrityError,
} from './errors.js';
import { type IndexEntry, type Visibility, ZERO_ID } from './index-files.js';

export interface PutOptions {
  readonly kind: string;
  readonly domain?: string;
  readonly visibility?: Visibility;
  /** 64 hex; default: the sha256 of the bytes. */
  readonly key?: string;
  /** The domain or store the artifact was imported from (cross-domain source). */
  readonly source?: string;
}

export interface ArtifactStat {
  readonly key: string;
  readonly block: string;
  readonly length: number;
  readonly kind: string;
  readonly domain: string;
  readonly source: string;
  readonly visibility: Visibility;
  readonly time: number;
  /** `packed` in a segment, or `large` (a file of its own). */
  readonly storage: 'packed' | 'large';
}

export const DEFAULT_DOMAIN = 'local';

function checkKey(key: string, path = 'key'): void {
  if (typeof key !== 'string' || !DIGEST_PATTERN.test(key)) {
    throw new ValidationError('type', path, 'sha256 hex (64 chars)', String(key));
  }
}

function checkLabel(value: string, path: string): void {
  if (
    typeof value !== 'string' ||
    Buffer.byteLength(value) > 255 ||
    [...value].some((c) => c.charCodeAt(0) < 0x20)
  ) {
    throw new ValidationError(
      'type',
      path,
      'a string of at most 255 bytes without control characters',
      String(value),
    );
  }
}

/** What was imported from another domain stays read-only (errors.ts ArtifactReadOnlyError). */
function refuseCrossDomain(e: IndexEntry, what: string): void {
  if (e.source !== '') throw new ArtifactReadOnlyError(e.key, e.domain, e.source, what);
}

export class Artifacts {
  readonly #blocks: BlockStore;
  readonly #index: ArtifactIndex;
  readonly #onWrite: () => void;
  /** Called on a miss (a reader refreshes from the writer). */
  readonly #onMiss: () => boolean;

  constructor(blocks: BlockStore, index: ArtifactIndex, onWrite: () => void, onMiss: () => boolean) {
    this.#blocks = blocks;
    this.#index = index;
    this.#onWrite = onWrite;
    this.#onMiss = onMiss;
  }

  /** The live entry, or undefined (reader: refreshed once on a miss). */
  #live(key: string): IndexEntry | undefined {
    let e = this.#index.get(key);
    if (e?.state !== 'live' && this.#onMiss()) e = this.#index.get(key);
    return e?.state === 'live' ? e : undefined;
  }

  /**
   * Store bytes; returns the key. Idempotent: the same bytes under the same key with the same
   * attributes write nothing.
   */
  put(bytes: Uint8Array, options: PutOptions): string {
    const id = sha256Buf(bytes);
    const block = id.toString('hex');
    const key = options.key ?? block;
    checkKey(key);
    checkLabel(options.kind, 'kind');
    const domain = options.domain ?? DEFAULT_DOMAIN;
    checkLabel(domain, 'domain');
    const source = options.source ?? '';
    checkLabel(source, 'source');
    const prev = this.#index.get(key);
    if (prev?.state === 'live' && prev.block !== block) refuseCrossDomain(prev, 'shadow');
    const visibility = options.visibility ?? (prev?.state === 'live' ? prev.visibility : 'internal');
    if (
      prev?.state === 'live' &&
      prev.block === block &&
      prev.kind === options.kind &&
      prev.domain === domain &&
      prev.source === source &&
      prev.visibility === visibility
    ) {
      return key;
    }
    const location =
      prev?.state === 'live' && prev.block === block
        ? { segment: prev.segment, offset: prev.offset, length: prev.length }
        : this.#blocks.put(bytes, id);
    this.#index.set(
      {
        key,
        block,
        ...location,
        time: Date.now(),
        kind: options.kind,
        domain,
        source,
        visibility,
        state: 'live',
      },
      prev,
    );
    this.#onWrite();
    return key;
  }

  /** Whether the key is live in CURRENT. */
  has(key: string): boolean {
    checkKey(key);
    return this.#live(key) !== undefined;
  }

  /** The bytes, re-hashed. Unknown → NotFoundError; tombstoned / reclaimed → their errors. */
  get(key: string, what = 'artifact'): Buffer {
    checkKey(key);
    const e = this.#live(key);
    if (!e) throw this.missing(key, what);
    try {
      return this.#blocks.read(e, e.block);
    } catch (err) {
      // A reader beside a writer may hold a location the writer's GC or compaction has since
      // moved: refresh and read once more where the writer now says the block is.
      if (!(err instanceof StoreFileIntegrityError) || !/is missing/.test(err.message) || !this.#onMiss())
        throw err;
      const again = this.#index.get(key);
      if (again?.state !== 'live') throw this.missing(key, what);
      return this.#blocks.read(again, again.block);
    }
  }

  /** The error for a key that is not live: reclaimed, tombstoned or never there. */
  missing(key: string, what = 'artifact'): Error {
    const e = this.#index.get(key);
    if (e?.state === 'reclaimed') return new ArtifactReclaimedError(what, key);
    if (e?.state === 'tombstone') return new ArtifactTombstonedError(what, key);
    return new NotFoundError(what, key);
  }

  /** The raw entry in any state (reclaimed and tombstone included), or undefined. */
  entry(key: string): IndexEntry | undefined {
    checkKey(key);
    return this.#index.get(key);
  }

  stat(key: string): ArtifactStat {
    checkKey(key);
    const e = this.#live(key);
    if (!e) throw this.missing(key);
    return {
      key: e.key,
      block: e.block,
      length: e.length,
      kind: e.kind,
      domain: e.domain,
      source: e.source,
      visibility: e.visibility,
      time: e.time,
      storage: e.segment === 0xffffffff ? 'large' : 'packed',
    };
  }

  /** Live artifacts in key order (filtered by kind / domain / visibility when given). */
  *entries(
    filter: { kind?: string; domain?: string; visibility?: Visibility } = {},
  ): Generator<ArtifactStat> {
    for (const e of this.#index.entries()) {
      if (e.state !== 'live') continue;
      if (filter.kind !== undefined && e.kind !== filter.kind) continue;
      if (filter.domain !== undefined && e.domain !== filter.domain) continue;
      if (filter.visibility !== undefined && e.visibility !== filter.visibility) continue;
      yield {
        key: e.key,
        block: e.block,
        length: e.length,
        kind: e.kind,
        domain: e.domain,
        source: e.source,
        visibility: e.visibility,
        time: e.time,
        storage: e.segment === 0xffffffff ? 'large' : 'packed',
      };
    }
  }

  /** Remove a key from CURRENT (snapshots that hold it keep it). Unknown → NotFoundError. */
  tombstone(key: string): void {
    checkKey(key);
    const e = this.#live(key);
    if (!e) throw this.missing(key);
    refuseCrossDomain(e, 'tombstone');
    this.#index.set({
      ...e,
      block: ZERO_ID,
      segment: NO_BLOCK,
      offset: 0,
      length: 0,
      time: Date.now(),
      state: 'tombstone',
    });
    this.#onWrite();
  }

  /** Mark an artifact published: GC never reclaims it, bundles export it. */
  publish(key: string): void {
    checkKey(key);
    const e = this.#live(key);
    if (!e) throw this.missing(key);
    if (e.visibility === 'published') return;
    this.#index.set({ ...e, visibility: 'published' });
    this.#onWrite();
  }

  /** Where a live artifact's bytes are on disk: the file, the byte offset and length (fsck, tests). */
  locate(key: string): { path: string; offset: number; length: number } {
    checkKey(key);
    const e = this.#live(key);
    if (!e) throw this.missing(key);
    this.#blocks.flush();
    const path =
      e.segment === 0xffffffff ? this.#blocks.largePath(e.block) : this.#blocks.segmentPath(e.segment);
    return { path, offset: e.offset, length: e.length };
  }

  get count(): number {
    return this.#index.liveCount;
  }
}
