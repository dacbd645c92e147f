/**
 * The artifact store: builds, payloads and receipts under one directory.
 *
 *   <dir>/blobs/sha256/..     build manifests (addressed by build id), artifacts, inputs, outputs
 *   <dir>/payloads/..         index from payload hash to the blob holding its encoding
 *   <dir>/receipts.log        the append-only receipt log (its flock is the store's writer lock)
 *
 * One writer at a time: a writable Store holds the receipt log's lock until close, and a second
 * writer (another process, or a second writable Store in this one) gets StoreLockedError. Blobs
 * and payload links are written under unique temporary names and renamed into place, so they are
 * safe beside a writer anyway. `readOnly: true` opens without the lock, creates and writes
 * nothing, and works while a writer holds the store (the CLI's `receipt list/show/verify`).
 *
 * A build manifest's canonical encoding hashes to the build id, so manifests are ordinary blobs.
 * Payload hashes are computed over a header + the raw data (see runtime/payload.ts) rather than
 * over the stored encoding, so a small link file maps one to the other.
 */

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Build, type BuildManifest, openBuild } from '../runtime/build.js';
import { decodeCanonical, encodeCanonical } from '../runtime/canonical.js';
import { IntegrityError, NotFoundError } from '../runtime/errors.js';
import type { Receipt } from '../runtime/receipt.js';
import type { RecordStore } from '../runtime/record-store.js';
import { BlobStore } from './blobs.js';
import { StoreReadOnlyError } from './errors.js';
import { ReceiptIndex, type ReceiptPage, type ReceiptQuery } from './receipt-index.js';
import { Fleet, type FleetOptions } from './fleet/fleet.js';
import { ReceiptLog, type ReceiptLogOptions } from './receipt-log.js';

export interface StoreOptions extends ReceiptLogOptions {
  /** fsync blobs before renaming them into place (default false: process-crash safe only). */
  readonly durableBlobs?: boolean;
  /**
   * Fleet mode (opt-in): mirror the receipts into a PostgreSQL fleet index shared with other
   * hosts, and query across them through `store.fleet` (fleet/fleet.ts). Never blocks appends.
   */
  readonly fleet?: FleetOptions;
}

export class Store implements RecordStore {
  readonly dir: string;
  readonly blobs: BlobStore;
  readonly receipts: ReceiptLog;
  readonly #payloadDir: string;
  readonly #payloadLinks = new Set<string>();
  readonly readOnly: boolean;
  #receiptIndex: ReceiptIndex | undefined;
  /** The fleet index and this store's mirror into it, when the `fleet` option is set. */
  readonly fleet: Fleet | undefined;

  constructor(dir: string, options: StoreOptions = {}) {
    this.dir = dir;
    this.readOnly = options.readOnly ?? false;
    if (!this.readOnly) mkdirSync(dir, { recursive: true });
    this.blobs = new BlobStore(dir, { durable: options.durableBlobs ?? false, readOnly: this.readOnly });
    this.#payloadDir = join(dir, 'payloads');
    if (!this.readOnly) mkdirSync(this.#payloadDir, { recursive: true });
    this.receipts = new ReceiptLog(join(dir, 'receipts.log'), options);
    this.fleet = options.fleet ? new Fleet(dir, this.receipts, options.fleet, this.readOnly) : undefined;
  }

  putBuild(build: Build): void {
    if (this.readOnly) throw new StoreReadOnlyError(this.dir, `store build ${build.id}`);
    for (const [name, ref] of Object.entries(build.manifest.artifacts)) {
      this.blobs.put(build.artifacts.get(name)!, ref.digest);
    }
    // Manifest last: a build is only findable once all its artifacts are in place.
    this.blobs.put(encodeCanonical(build.manifest), build.id);
  }

  getBuild(id: string): Build {
    let manifestBytes: Uint8Array;
    try {
      manifestBytes = this.blobs.get(id);
    } catch (err) {
      if (err instanceof NotFoundError) throw new NotFoundError('build', id);
      throw err;
    }
    const manifest = decodeCanonical<BuildManifest>(manifestBytes);
    const artifacts = new Map<string, Uint8Array>();
    for (const [name, ref] of Object.entries(manifest.artifacts ?? {})) {
      try {
        artifacts.set(name, this.blobs.get(ref.digest));
      } catch (err) {
        if (err instanceof NotFoundError) continue; // openBuild reports the missing artifact by name
        throw new IntegrityError(`build ${id}: artifact '${name}' was altered on disk`, ref.digest);
      }
    }
    return openBuild(manifest, artifacts, id);
  }

  #linkPath(hash: string): string {
    this.blobs.pathOf(hash); // validates the digest's shape
    return join(this.#payloadDir, hash);
  }

  putPayload(hash: string, encoded: Uint8Array): void {
    if (this.#payloadLinks.has(hash)) return;
    if (this.readOnly) throw new StoreReadOnlyError(this.dir, `store payload ${hash}`);
    const blob = this.blobs.put(encoded);
    const link = this.#linkPath(hash);
    if (!existsSync(link)) {
      const tmp = `${link}.tmp-${process.pid}`;
      writeFileSync(tmp, blob);
      renameSync(tmp, link);
    }
    this.#payloadLinks.add(hash);
  }

  hasPayload(hash: string): boolean {
    return this.#payloadLinks.has(hash) || existsSync(this.#linkPath(hash));
  }

  getPayload(hash: string): Uint8Array {
    const link = this.#linkPath(hash);
    let blob: string;
    try {
      blob = readFileSync(link, 'utf8');
    } catch {
      throw new NotFoundError('payload', hash);
    }
    return this.blobs.get(blob.trim());
  }

  appendReceipt(receipt: Receipt, body?: Uint8Array): void {
    this.receipts.append(receipt, body);
    this.fleet?.mirror?.notify();
  }

  /**
   * A read-only store opened beside a writer learns of the writer's receipts on lookup: an id
   * it does not know yet sends it to read what the log gained since (receipt-log.ts `refresh`).
   */
  getReceipt(id: string): Receipt {
    if (this.readOnly && !this.receipts.has(id)) this.receipts.refresh();
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

  close(): void {
    // The mirror stops first (it reads the log); what it confirmed stays, the next open resumes.
    this.fleet?.stop();
    void this.fleet?.close();
    this.receipts.close();
  }
}
