/**
 * The receipt log: an append-only file of checksummed, hash-chained records.
 *
 * Why a file of our own rather than lmdb: receipts are an audit trail — written once, in order,
 * never updated — and the log's job is to make loss and tampering visible. An append-only file
 * gives that with one `write` per receipt and no native dependency; a B-tree store would add a
 * mutable structure we would then have to audit. The in-memory index (id → offset) is rebuilt
 * by one sequential scan on open.
 *
 * Layout: an 8-byte magic `TPRLOG2\n` (format 2), then records
 *
 *     u32be length | u32be crc32(payload) | payload = prev (32 bytes) | canonical receipt body
 *
 * `prev` is the sha256 of the previous record's payload (32 zero bytes for the first), so
 * removing, reordering or editing a record breaks the chain at that point. The receipt id is
 * not stored: it is the sha256 of the body bytes, so a record cannot hold a receipt that does
 * not hash to its id, and the executor's one encoding of the body is written as it is.
 *
 * Crash safety: records reach the file in whole `write`s to an O_APPEND descriptor. A crash
 * can only leave an incomplete last record; on open, a bad record that reaches end of file is a
 * torn tail and is truncated away; a bad record followed by more data is corruption and is
 * reported, never silently dropped. Durability:
 *   - `sync: 'always'`: each append is written and fdatasynced before it returns (survives
 *     power loss; costs a disk flush per execution);
 *   - `'batch'` (default): appends are queued and written once per event-loop turn (or at
 *     64 KiB), fdatasynced at most every `syncIntervalMs` and on close: a process crash loses
 *     at most the receipts of the current turn, power loss at most `syncIntervalMs` of them;
 *   - `'never'`: as batch, without fdatasync.
 */

import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { decodeCanonical, encodeCanonical, sha256Hex } from '../runtime/canonical.js';
import { IntegrityError, NotFoundError } from '../runtime/errors.js';
import type { Receipt } from '../runtime/receipt.js';

/** The format version is in the magic: a reader refuses a log written in another format. */
const MAGIC = Buffer.from('TPRLOG2\n');
const MAGIC_FAMILY = 'TPRLOG';
const HEADER = 8;
const GENESIS = Buffer.alloc(32);
const PREV = 32;
/** Queued records are written at once past this many bytes, whatever the event loop does. */
const MAX_PENDING_BYTES = 64 * 1024;
/** Index marker of a record queued but not yet written. */
const PENDING = Symbol('pending');

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

export type SyncPolicy = 'always' | 'batch' | 'never';

export interface ReceiptLogOptions {
  readonly sync?: SyncPolicy;
  readonly syncIntervalMs?: number;
}

interface Entry {
  readonly offset: number;
  readonly length: number;
}

export class ReceiptLog {
  readonly path: string;
  readonly #fd: number;
  readonly #sync: SyncPolicy;
  readonly #syncIntervalMs: number;
  readonly #index = new Map<string, Entry | typeof PENDING>();
  readonly #order: string[] = [];
  #end = 0;
  #lastHash: Buffer = GENESIS;
  #syncTimer: NodeJS.Timeout | undefined;
  #pending: { id: string; body: Uint8Array }[] = [];
  #pendingBytes = 0;
  #writeScheduled = false;
  #closed = false;
  /** Bytes cut from a torn tail when the log was opened (0 when it was clean). */
  readonly recoveredBytes: number;

  constructor(path: string, options: ReceiptLogOptions = {}) {
    this.path = path;
    this.#sync = options.sync ?? 'batch';
    this.#syncIntervalMs = options.syncIntervalMs ?? 100;
    this.#fd = openSync(path, 'a+');
    try {
      this.recoveredBytes = this.#open();
    } catch (err) {
      closeSync(this.#fd);
      throw err;
    }
  }

  #open(): number {
    const size = fstatSync(this.#fd).size;
    if (size === 0) {
      writeSync(this.#fd, MAGIC);
      this.#end = MAGIC.length;
      return 0;
    }
    const magic = Buffer.alloc(MAGIC.length);
    readSync(this.#fd, magic, 0, MAGIC.length, 0);
    if (size < MAGIC.length || !magic.equals(MAGIC)) {
      const text = magic.toString('latin1');
      if (text.startsWith(MAGIC_FAMILY)) {
        throw new IntegrityError(
          `${this.path} is a receipt log in format ${JSON.stringify(text.trim())}; this thunderpac reads ${JSON.stringify(MAGIC.toString().trim())}`,
        );
      }
      throw new IntegrityError(`${this.path} is not a thunderpac receipt log (bad magic)`);
    }
    this.#end = MAGIC.length;
    const torn = this.#scan(size);
    if (torn > 0) {
      ftruncateSync(this.#fd, this.#end);
      fdatasyncSync(this.#fd);
    }
    return torn;
  }

  /** Index records from #end to `size`; returns the length of a torn tail (to be cut). */
  #scan(size: number): number {
    const head = Buffer.alloc(HEADER);
    while (this.#end < size) {
      const offset = this.#end;
      if (size - offset < HEADER) return size - offset;
      readSync(this.#fd, head, 0, HEADER, offset);
      const length = head.readUInt32BE(0);
      const crc = head.readUInt32BE(4);
      if (offset + HEADER + length > size) return size - offset;
      const payload = Buffer.alloc(length);
      readSync(this.#fd, payload, 0, length, offset + HEADER);
      if (crc32(payload) !== crc) {
        if (offset + HEADER + length === size) return size - offset;
        throw new IntegrityError(`${this.path}: record at byte ${offset} fails its checksum (corrupted log)`);
      }
      const prev = payload.subarray(0, PREV);
      if (length < PREV || !prev.equals(this.#lastHash)) {
        throw new IntegrityError(
          `${this.path}: record at byte ${offset} breaks the hash chain (a record was removed, reordered or edited)`,
          this.#lastHash.toString('hex'),
          prev.toString('hex'),
        );
      }
      const id = sha256Hex(payload.subarray(PREV));
      this.#index.set(id, { offset: offset + HEADER, length });
      this.#order.push(id);
      this.#lastHash = sha256(payload);
      this.#end = offset + HEADER + length;
    }
    return 0;
  }

  get size(): number {
    return this.#index.size;
  }

  has(id: string): boolean {
    return this.#index.has(id);
  }

  /**
   * Append a receipt. `body`, when given, must be the canonical body encoding its id was
   * computed from (what sealReceiptEncoded returns); without it the receipt is encoded and
   * refused if it does not hash to its id.
   *
   * With `sync: 'always'` the record is written and fdatasynced before this returns. Otherwise
   * records are queued and written together — one write per event-loop turn, or sooner when
   * 64 KiB are pending — so a burst of executions costs one syscall, not one each.
   */
  append(receipt: Receipt, body?: Uint8Array): void {
    if (this.#closed) throw new IntegrityError(`${this.path}: receipt log is closed`);
    let encoded = body;
    if (!encoded) {
      const { id: _, ...rest } = receipt;
      encoded = encodeCanonical(rest);
      const id = sha256Hex(encoded);
      if (id !== receipt.id) {
        throw new IntegrityError('receipt does not hash to its id; refusing to log it', receipt.id, id);
      }
    }
    this.#pending.push({ id: receipt.id, body: encoded });
    this.#pendingBytes += HEADER + PREV + encoded.byteLength;
    this.#index.set(receipt.id, PENDING);
    this.#order.push(receipt.id);
    if (this.#sync === 'always' || this.#pendingBytes >= MAX_PENDING_BYTES) this.#writePending();
    else if (!this.#writeScheduled) {
      this.#writeScheduled = true;
      setImmediate(this.#writeSoon);
    }
  }

  readonly #writeSoon = (): void => {
    this.#writeScheduled = false;
    if (!this.#closed) this.#writePending();
  };

  /** Chain and write every queued record in one write. */
  #writePending(): void {
    if (this.#pending.length === 0) return;
    // Another process may have appended since we last wrote: index its records first so our
    // chain links point at the true last record.
    const size = fstatSync(this.#fd).size;
    if (size !== this.#end) this.#scan(size);
    const batch = Buffer.allocUnsafe(this.#pendingBytes);
    let at = 0;
    for (const { id, body } of this.#pending) {
      const payloadLength = PREV + body.byteLength;
      const payload = batch.subarray(at + HEADER, at + HEADER + payloadLength);
      this.#lastHash.copy(payload, 0);
      payload.set(body, PREV);
      batch.writeUInt32BE(payloadLength, at);
      batch.writeUInt32BE(crc32(payload), at + 4);
      this.#index.set(id, { offset: this.#end + at + HEADER, length: payloadLength });
      this.#lastHash = sha256(payload);
      at += HEADER + payloadLength;
    }
    writeSync(this.#fd, batch);
    this.#end += batch.byteLength;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#sync === 'always') fdatasyncSync(this.#fd);
    else if (this.#sync === 'batch' && !this.#syncTimer) {
      this.#syncTimer = setTimeout(() => this.flush(), this.#syncIntervalMs);
      this.#syncTimer.unref();
    }
  }

  get(id: string): Receipt {
    if (this.#index.get(id) === PENDING) this.#writePending();
    const entry = this.#index.get(id);
    if (!entry || entry === PENDING) throw new NotFoundError('receipt', id);
    const payload = Buffer.alloc(entry.length);
    readSync(this.#fd, payload, 0, entry.length, entry.offset);
    return { id, ...decodeCanonical<Omit<Receipt, 'id'>>(payload.subarray(PREV)) };
  }

  /** Receipt ids in append order. */
  ids(): readonly string[] {
    return this.#order;
  }

  /** Write queued records and fdatasync (unless sync is 'never'). */
  flush(): void {
    if (!this.#closed) this.#writePending();
    if (this.#syncTimer) {
      clearTimeout(this.#syncTimer);
      this.#syncTimer = undefined;
    }
    if (!this.#closed && this.#sync !== 'never') fdatasyncSync(this.#fd);
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    closeSync(this.#fd);
  }
}
