/**
 * A small append-only file of checksummed records, for the provenance records that the receipt
 * log cannot give back (which DAG a receipt ran in, voxel envelopes).
 *
 * Layout (magic given by the owner, 8 bytes, with its version number, e.g. `TPDAGS1\n`):
 *
 *     bytes 0..8   magic
 *     bytes 8..    records: u32be length | u32be crc32(payload) | payload (canonical msgpack)
 *
 * Open reads every record (these files hold one record per DAG or envelope: small). A record
 * is appended with one write (and fdatasync when `durable`). What a crash can leave: a torn last
 * record (its declared length runs past the end of the file, or half a header): a writer cuts it
 * on open, a read-only open ignores it. A complete record whose checksum fails, or any bad
 * record that is followed by more bytes, is damage: LogIntegrityError naming the file and the
 * byte offset; nothing is cut on its account. A file whose magic is another format or version is
 * refused the same way (offset 0).
 */

import {
  closeSync,
  constants,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { LogIntegrityError, StoreReadOnlyError } from '../errors.js';

const HEADER = 8;
const MAX_RECORD = 64 * 1024 * 1024;

export class RecordFile {
  readonly path: string;
  readonly readOnly: boolean;
  readonly #magic: Buffer;
  readonly #durable: boolean;
  #fd = -1;
  #end = 0;

  /** Opens (a writer creates the file); `visit` gets each record's payload in order. */
  constructor(
    path: string,
    magic: string,
    options: { readOnly: boolean; durable?: boolean },
    visit: (payload: Buffer, offset: number) => void,
  ) {
    this.path = path;
    this.readOnly = options.readOnly;
    this.#durable = options.durable ?? false;
    this.#magic = Buffer.from(magic);
    if (this.#magic.length !== 8) throw new TypeError('record file magic must be 8 bytes');
    this.#open(visit);
  }

  #open(visit: (payload: Buffer, offset: number) => void): void {
    if (this.readOnly) {
      try {
        this.#fd = openSync(this.path, constants.O_RDONLY);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
    } else {
      mkdirSync(dirname(this.path), { recursive: true });
      this.#fd = openSync(this.path, constants.O_RDWR | constants.O_CREAT, 0o644);
    }
    const size = fstatSync(this.#fd).size;
    if (size === 0) {
      if (!this.readOnly) {
        writeSync(this.#fd, this.#magic, 0, HEADER, 0);
        this.#end = HEADER;
      }
      return;
    }
    const all = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = readSync(this.#fd, all, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    if (size < HEADER || !all.subarray(0, HEADER).equals(this.#magic)) {
      // A file of zeros shorter than a header is a torn creation; anything else is not ours.
      throw new LogIntegrityError(
        this.path,
        0,
        `is not a ${this.#magic.toString('latin1').trim()} file (magic ${JSON.stringify(all.subarray(0, HEADER).toString('latin1'))})`,
      );
    }
    let at = HEADER;
    while (at < size) {
      if (at + 8 > size) break; // half a header: torn
      const length = all.readUInt32BE(at);
      if (length > MAX_RECORD) {
        throw new LogIntegrityError(
          this.path,
          at,
          `record length ${length} is past the limit of ${MAX_RECORD}`,
        );
      }
      if (at + 8 + length > size) break; // runs past the end: torn
      const payload = all.subarray(at + 8, at + 8 + length);
      if (crc32(payload) !== all.readUInt32BE(at + 4)) {
        throw new LogIntegrityError(this.path, at, 'record fails its checksum');
      }
      visit(payload, at);
      at += 8 + length;
    }
    this.#end = at;
    if (at < size && !this.readOnly) ftruncateSync(this.#fd, at);
  }

  append(payload: Uint8Array): number {
    if (this.readOnly) throw new StoreReadOnlyError(this.path, 'append a record');
    const rec = Buffer.alloc(8 + payload.byteLength);
    rec.writeUInt32BE(payload.byteLength, 0);
    rec.writeUInt32BE(crc32(payload), 4);
    rec.set(payload, 8);
    const at = this.#end;
    writeSync(this.#fd, rec, 0, rec.length, at);
    if (this.#durable) fdatasyncSync(this.#fd);
    this.#end += rec.length;
    return at;
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}
