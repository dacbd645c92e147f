/**
 * The artifact store: builds, payloads, artifacts and receipts under one directory.
 *
 *   <dir>/receipts.log        the append-only receipt log (its flock is the store's writer lock)
 *   <dir>/blocks/...          block store: small blocks packed in segments, large ones alone
 *                             (blocks/block-store.ts)
 *   <dir>/index/...           the artifact index: CURRENT = checkpoint + log (artifacts/)
 *   <dir>/snapshots/...       snapshot tables (artifacts/snapshots.ts)
 *   <dir>/blobs/, payloads/   the layout before the block store: still read, never written
 *
 * Builds, payloads and artifacts are all index entries: a build manifest is kind 'build' under
 * its build id (its canonical encoding hashes to it), each build artifact kind 'build-artifact'
 * under its digest, a payload kind 'payload' under its payload hash (computed over a header +
 * the raw data, runtime/payload.ts, so the key differs from the block id). A key missing from
 * the index is looked up in the legacy layout.
 *
 * Write order: blocks are queued, then their index records; both are written (one write each)
 * before a receipt is handed to the receipt log, so a receipt never reaches the log before the
 * payloads it names, and an index record never before its block. Puts outside an execution are
 * written at the end of the event-loop turn. Durability follows the receipt log's `sync`:
 * 'always' fdatasyncs blocks and index before the receipt; 'batch' fdatasyncs them every
 * `syncIntervalMs` (a process crash loses nothing written; power loss up to an interval).
 *
 * One writer at a time: a writable Store holds the receipt log's lock until close, and a second
 * writer (another process, or a second writable Store in this one) gets StoreLockedError.
 * `readOnly: true` opens without the lock, creates and writes nothing, and works while a writer
 * holds the store (the CLI's `receipt list/show/verify`); it refreshes its view of the index on
 * a miss.
 */

import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Build, type BuildManifest, openBuild } from '../runtime/build.js';
import { DIGEST_PATTERN, decodeCanonical, encodeCanonical, sha256Hex } from '../runtime/canonical.js';
import { IntegrityError, NotFoundError } from '../runtime/errors.js';
import type { Receipt, ReceiptBody } from '../runtime/receipt.js';
import type { RecordStore } from '../runtime/record-store.js';
import { ArtifactIndex } from './artifacts/artifact-index.js';
import { Artifacts, DEFAULT_DOMAIN } from './artifacts/artifacts.js';
import { type SnapshotInfo, Snapshots } from './artifacts/snapshots.js';
import { BlobStore } from './blobs.js';
import { BlockStore } from './blocks/block-store.js';
import {
  type BundleManifest,
  type BundleSource,
  checkBundle,
  type ExportReport,
  type ExportSelection,
  exportBundle,
  type ImportReport,
  importBundle,
} from './bundle.js';
import {
  type CompactReport,
  compactSegments,
  type GcOptions,
  type GcReport,
  runGc,
  type StoreStat,
  storeStat,
} from './gc.js';
import { StoreReadOnlyError } from './errors.js';
import { type FsckOptions, type FsckReport, fsck } from './fsck.js';
import { ReceiptIndex, type ReceiptPage, type ReceiptQuery } from './receipt-index.js';
import { Provenance } from './provenance/provenance.js';
import { Fleet, type FleetOptions } from './fleet/fleet.js';
import { ReceiptLog, type ReceiptLogOptions } from './receipt-log.js';
import { type LedgerOptions, ReceiptLedger } from './merkle/ledger.js';
import { TreeHeadSigner } from './signing.js';

export interface StoreOptions extends ReceiptLogOptions {
  /** fsync blobs before renaming them into place (default false: process-crash safe only). */
  readonly durableBlobs?: boolean;
  /** Blocks up to this many bytes are packed into segments (default 256 KiB). */
  readonly packThreshold?: number;
  /** Segments are sealed at this size (default 64 MiB). */
  readonly segmentBytes?: number;
  /** Index log records before a checkpoint (plus an eighth of the checkpoint's; default 50000). */
  readonly checkpointEvery?: number;
  /**
   * Fleet mode (opt-in): mirror the receipts into a PostgreSQL fleet index shared with other
   * hosts, and query across them through `store.fleet` (fleet/fleet.ts). Never blocks appends.
   */
  readonly fleet?: FleetOptions;
  /** Sign tree heads with this Ed25519 key (a PKCS#8 PEM file path, or a signer): merkle/ledger.ts. */
  readonly signingKey?: string | TreeHeadSigner;
  /** How long after an append a tree head is made (default 100 ms). */
  readonly headIntervalMs?: number;
  /**
   * This store's domain: the name bundles it exports carry (bundle.ts), under which another
   * store keeps what it imports from here (default 'local').
   */
  readonly domain?: string;
}

export class Store implements RecordStore {
  readonly dir: string;
  /** The legacy blob directory: read when a key is not in the index, never written. */
  readonly blobs: BlobStore;
  readonly blocks: BlockStore;
  readonly index: ArtifactIndex;
  readonly artifacts: Artifacts;
  readonly snapshots_: Snapshots;
  readonly receipts: ReceiptLog;
  readonly #payloadDir: string;
  readonly #legacy: boolean;
  readonly #syncPolicy: 'always' | 'batch' | 'never';
  readonly #syncIntervalMs: number;
  #flushScheduled = false;
  #syncTimer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly readOnly: boolean;
  #receiptIndex: ReceiptIndex | undefined;
  /** The fleet index and this store's mirror into it, when the `fleet` option is set. */
  readonly fleet: Fleet | undefined;
  /** This store's domain (StoreOptions.domain). */
  readonly domain: string;

  constructor(dir: string, options: StoreOptions = {}) {
    this.dir = dir;
    this.readOnly = options.readOnly ?? false;
    this.domain = options.domain ?? DEFAULT_DOMAIN;
    if (!this.readOnly) mkdirSync(dir, { recursive: true });
    this.blobs = new BlobStore(dir, { readOnly: true });
    this.#payloadDir = join(dir, 'payloads');
    this.#legacy = existsSync(this.#payloadDir) || existsSync(join(dir, 'blobs'));
    this.#syncPolicy = options.sync ?? 'batch';
    this.#syncIntervalMs = options.syncIntervalMs ?? 100;
    // The receipt log first: its lock makes this the one writer before anything else is opened.
    this.receipts = new ReceiptLog(join(dir, 'receipts.log'), options);
    try {
      this.blocks = new BlockStore(join(dir, 'blocks'), {
        readOnly: this.readOnly,
        durable: options.durableBlobs ?? this.#syncPolicy === 'always',
        packThreshold: options.packThreshold,
        segmentBytes: options.segmentBytes,
      });
      this.index = new ArtifactIndex(join(dir, 'index'), {
        readOnly: this.readOnly,
        checkpointEvery: options.checkpointEvery,
      });
    } catch (err) {
      this.receipts.close();
      throw err;
    }
    this.artifacts = new Artifacts(this.blocks, this.index, this.#wrote, () => this.index.refresh());
    this.snapshots_ = new Snapshots(join(dir, 'snapshots'), this.readOnly);
    this.fleet = options.fleet ? new Fleet(dir, this.receipts, options.fleet, this.readOnly) : undefined;
    const key = options.signingKey;
    this.#ledgerOptions = {
      readOnly: this.readOnly,
      ...(options.sync !== undefined && { sync: options.sync }),
      ...(key !== undefined && { signer: typeof key === 'string' ? TreeHeadSigner.fromFile(key) : key }),
      ...(options.headIntervalMs !== undefined && { headIntervalMs: options.headIntervalMs }),
    };
    // A writer keeps the Merkle tree with every append; a reader opens it when asked for a proof.
    try {
      if (!this.readOnly) this.#ledger = new ReceiptLedger(dir, this.receipts, this.#ledgerOptions);
    } catch (err) {
      this.receipts.close();
      throw err;
    }
    if (!this.readOnly) void this.storeId;
  }

  readonly #ledgerOptions: LedgerOptions;
  #ledger: ReceiptLedger | undefined;

  /** The Merkle tree over the receipts, its tree heads and proofs (merkle/ledger.ts). */
  get ledger(): ReceiptLedger {
    this.#ledger ??= new ReceiptLedger(this.dir, this.receipts, this.#ledgerOptions);
    return this.#ledger;
  }

  /** The signing key's name (`ed25519:<hex>`), sealed into receipts as `signer`; undefined without a key. */
  get signer(): string | undefined {
    return this.#ledgerOptions.signer?.signer;
  }

  /** Something was queued: write it at the end of this event-loop turn. */
  readonly #wrote = (): void => {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      if (!this.#closed) this.flush();
    });
  };

  /**
   * Write queued blocks, then queued index records (one write each); with sync 'always' also
   * fdatasync them, otherwise schedule an fdatasync within `syncIntervalMs`.
   */
  flush(): void {
    if (this.readOnly || this.#closed) return;
    const wrote = this.blocks.pendingBytes + this.index.pendingBytes > 0;
    this.blocks.flush();
    this.index.flush();
    if (!wrote) return;
    if (this.#syncPolicy === 'always') {
      this.blocks.sync();
      this.index.sync();
    } else if (this.#syncPolicy === 'batch' && !this.#syncTimer) {
      this.#syncTimer = setTimeout(() => {
        this.#syncTimer = undefined;
        if (this.#closed) return;
        this.blocks.sync();
        this.index.sync();
      }, this.#syncIntervalMs);
      this.#syncTimer.unref();
    }
    if (this.index.wantsCheckpoint) this.checkpoint();
  }

  /** Fold the artifact index log into a new checkpoint (blocks made durable first). */
  checkpoint(): void {
    if (this.readOnly) throw new StoreReadOnlyError(this.dir, 'checkpoint the artifact index');
    this.blocks.sync();
    this.index.checkpoint();
  }

  #readOnlyCheck(what: string): void {
    if (this.readOnly) throw new StoreReadOnlyError(this.dir, what);
  }

  putBuild(build: Build): void {
    this.#readOnlyCheck(`store build ${build.id}`);
    for (const [name, ref] of Object.entries(build.manifest.artifacts)) {
      if (this.index.get(ref.digest)?.state === 'live') continue;
      this.artifacts.put(build.artifacts.get(name)!, { kind: 'build-artifact', key: ref.digest });
    }
    // Manifest last: a build is only findable once all its artifacts are in place.
    if (this.index.get(build.id)?.state !== 'live') {
      this.artifacts.put(encodeCanonical(build.manifest), { kind: 'build', key: build.id });
    }
  }

  /** Bytes under a key: the index, else the legacy blob directory. */
  #bytes(key: string, what: string): Uint8Array {
    if (this.artifacts.has(key)) return this.artifacts.get(key, what);
    if (this.#legacy) {
      try {
        return this.blobs.get(key);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    throw this.artifacts.missing(key, what);
  }

  getBuild(id: string): Build {
    this.blobs.pathOf(id); // validates the id's shape
    const manifestBytes = this.#bytes(id, 'build');
    const manifest = decodeCanonical<BuildManifest>(manifestBytes);
    const artifacts = new Map<string, Uint8Array>();
    for (const [name, ref] of Object.entries(manifest.artifacts ?? {})) {
      try {
        artifacts.set(name, this.#bytes(ref.digest, 'build artifact'));
      } catch (err) {
        if (err instanceof NotFoundError) continue; // openBuild reports the missing artifact by name
        if (err instanceof IntegrityError) {
          throw new IntegrityError(
            `build ${id}: artifact '${name}' was altered on disk (${err.message})`,
            ref.digest,
          );
        }
        throw err;
      }
    }
    return openBuild(manifest, artifacts, id);
  }

  #linkPath(hash: string): string {
    this.blobs.pathOf(hash); // validates the digest's shape
    return join(this.#payloadDir, hash);
  }

  putPayload(hash: string, encoded: Uint8Array): void {
    if (this.index.get(hash)?.state === 'live') return;
    this.#readOnlyCheck(`store payload ${hash}`);
    this.artifacts.put(encoded, { kind: 'payload', key: hash });
  }

  hasPayload(hash: string): boolean {
    if (this.artifacts.has(hash)) return true;
    return this.#legacy && existsSync(this.#linkPath(hash));
  }

  getPayload(hash: string): Uint8Array {
    const link = this.#linkPath(hash);
    if (this.artifacts.has(hash)) return this.artifacts.get(hash, 'payload');
    if (this.#legacy) {
      let blob: string | undefined;
      try {
        blob = readFileSync(link, 'utf8');
      } catch {
        blob = undefined;
      }
      if (blob !== undefined) return this.blobs.get(blob.trim());
    }
    throw this.artifacts.missing(hash, 'payload');
  }

  appendReceipt(receipt: Receipt, body?: Uint8Array): void {
    // Blocks and index records before the receipt that names them.
    if (this.blocks.pendingBytes + this.index.pendingBytes > 0) this.flush();
    this.receipts.append(receipt, body);
    if (this.#ledger) {
      const { id: _, ...rest } = receipt;
      this.#ledger.append(receipt.id, body?.byteLength ?? encodeCanonical(rest).byteLength);
    }
    this.fleet?.mirror?.notify();
  }

  /**
   * A read-only store opened beside a writer learns of the writer's receipts on lookup: an id
   * it does not know yet sends it to read what the log gained since (receipt-log.ts `refresh`).
   */
  getReceipt(id: string): Receipt {
    if (this.readOnly && !this.receipts.has(id)) this.receipts.refresh();
    if (!this.receipts.has(id) && DIGEST_PATTERN.test(id) && this.artifacts.has(id)) {
      // A receipt imported from another domain (bundle.ts): kept as an artifact, not in this
      // store's own log, whose chain and Merkle tree are this store's alone.
      const body = this.artifacts.get(id, 'receipt');
      if (this.artifacts.stat(id).kind === 'receipt') {
        return { id, ...decodeCanonical<ReceiptBody>(body) };
      }
    }
    return this.receipts.get(id);
  }

  /**
   * One page of receipts filtered by build, actor, status, backend and start time, newest or
   * oldest first (receipt-index.ts). The index is built on the first call and kept up to date
   * with appends, this process's or, for a read-only store, the writer's.
   */
  listReceipts(query: ReceiptQuery = {}): ReceiptPage {
    this.#receiptIndex ??= new ReceiptIndex(this.receipts);
    return this.#receiptIndex.query(query);
  }

  /** The receipt index (built on first use), for its size and memory figures. */
  get receiptIndex(): ReceiptIndex {
    this.#receiptIndex ??= new ReceiptIndex(this.receipts);
    return this.#receiptIndex;
  }

  #provenance: Provenance | undefined;

  /** Lineage index, DAG records and provenance queries (provenance/), opened on first use. */
  get provenance(): Provenance {
    this.#provenance ??= new Provenance(this);
    return this.#provenance;
  }

  /** Record what CURRENT holds now as a snapshot (pins its blocks against GC). */
  snapshot(label?: string): SnapshotInfo {
    this.#readOnlyCheck('take a snapshot');
    this.flush();
    return this.snapshots_.create(this.index.entries(), label);
  }

  /** Snapshots, oldest first. */
  snapshots(): SnapshotInfo[] {
    return this.snapshots_.list();
  }

  /** Remove a snapshot (what only it pinned becomes reclaimable). */
  dropSnapshot(id: string): void {
    this.#readOnlyCheck(`drop snapshot ${id}`);
    this.snapshots_.drop(id);
  }

  /** Garbage collection under a retention policy (gc.ts); returns what it freed. */
  gc(options: GcOptions = {}): GcReport {
    if (!options.dryRun) this.#readOnlyCheck('run gc');
    this.flush();
    return runGc(this, options);
  }

  /** Rewrite segments with dead space (gc.ts). */
  compact(options: { minDeadRatio?: number } = {}): CompactReport {
    this.#readOnlyCheck('compact');
    this.flush();
    return compactSegments(this, options.minDeadRatio ?? 0);
  }

  /**
   * A random id naming this store in the bundles it exports (`<dir>/store-id`, made when a writer
   * opens the store); `unnamed-…` (from its path) for a store no writer has opened since.
   */
  get storeId(): string {
    if (this.#storeId !== undefined) return this.#storeId;
    const path = join(this.dir, 'store-id');
    try {
      this.#storeId = readFileSync(path, 'utf8').trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // A store no writer of this version opened yet: named by where it is, until one does.
      if (this.readOnly) return `unnamed-${sha256Hex(resolve(this.dir)).slice(0, 16)}`;
      const tmp = `${path}.tmp-${process.pid}`;
      writeFileSync(tmp, `${randomUUID()}\n`);
      renameSync(tmp, path);
      this.#storeId = readFileSync(path, 'utf8').trim();
    }
    return this.#storeId;
  }

  #storeId: string | undefined;

  /**
   * Write builds and/or receipts (with their ancestors, builds and payloads) as one bundle file
   * (bundle.ts), for `importBundle` in another store.
   */
  exportBundle(path: string, selection: ExportSelection): ExportReport {
    this.flush();
    const source: BundleSource = {
      domain: this.domain,
      storeId: this.storeId,
      getReceipt: (id) => this.getReceipt(id),
      receiptsOfBuild: (buildId) => this.#receiptsOfBuild(buildId),
      getBuildManifest: (id) => {
        const bytes = this.#bytes(id, 'build');
        return { manifest: decodeCanonical<BuildManifest>(bytes), bytes };
      },
      getArtifactBytes: (digest) => this.#bytes(digest, 'build artifact'),
      getPayload: (hash) => this.getPayload(hash),
      hasPayload: (hash) => this.hasPayload(hash),
    };
    return exportBundle(source, path, selection);
  }

  *#receiptsOfBuild(build: string): Generator<string> {
    let cursor: string | undefined;
    do {
      const page = this.listReceipts({ build, order: 'oldest', limit: 1000, ...(cursor && { cursor }) });
      for (const r of page.receipts) yield r.id;
      cursor = page.next ?? undefined;
    } while (cursor);
  }

  /**
   * Import a bundle: everything checked first (bundle.ts), then what this store lacks is stored
   * in the exporter's domain, published and marked with its source (read-only here).
   */
  importBundle(path: string): ImportReport {
    this.#readOnlyCheck(`import ${path}`);
    const report = importBundle(path, {
      hasBundleArtifact: (key, kind) =>
        kind === 'receipt' ? this.receipts.has(key) || this.artifacts.has(key) : this.#hasKey(key),
      putBundleArtifact: (key, kind, bytes, origin) => {
        this.artifacts.put(bytes, {
          key,
          kind,
          domain: origin.domain,
          source: origin.store,
          visibility: 'published',
        });
      },
    });
    this.flush();
    return report;
  }

  /** Whether a key is readable here (index or legacy layout). */
  #hasKey(key: string): boolean {
    if (this.artifacts.has(key)) return true;
    if (!this.#legacy) return false;
    return this.blobs.has(key) || existsSync(this.#linkPath(key));
  }

  /** Check a bundle completely against this store without writing anything. */
  checkBundle(path: string): BundleManifest {
    return checkBundle(path, {
      hasBundleArtifact: (key, kind) =>
        kind === 'receipt' ? this.receipts.has(key) || this.artifacts.has(key) : this.#hasKey(key),
      putBundleArtifact: () => {},
    });
  }

  /** Check every layer, every byte, and report every problem with where it is (fsck.ts). */
  fsck(options: FsckOptions = {}): FsckReport {
    return fsck(this, options);
  }

  /** Counts and sizes: artifacts, bytes and files on disk, segments, receipts, snapshots. */
  stat(): StoreStat {
    this.flush();
    return storeStat(this);
  }

  close(): void {
    if (this.#closed) return;
    if (this.#syncTimer) clearTimeout(this.#syncTimer);
    if (!this.readOnly) {
      this.blocks.sync();
      this.index.sync();
      if (this.index.wantsCheckpoint) this.index.checkpoint();
    }
    this.#closed = true;
    this.blocks.close();
    this.index.close();
    // The mirror stops first (it reads the log); what it confirmed stays, the next open resumes.
    this.fleet?.stop();
    void this.fleet?.close();
    this.#ledger?.close(); // flushes the log, then makes the last tree head
    this.#provenance?.close();
    this.receipts.close();
  }
}
