/**
 * The quota journal: one line per state change, `<crc32 hex8> <json>\n`, json being
 * `{"k":key,"p":periodStart,"u":usedAfter}`.
 *
 * Records are absolute (the usage after the change, not a delta), so replay is "last record per
 * key wins": idempotent, order-preserving, and compaction is simply one record per live key.
 * The checksum covers the json; a record is acknowledged only after its whole line was written,
 * so a torn tail (a writer killed mid-write) is an unacknowledged record: replay stops at it and
 * the next writer, under the lock, cuts it off before appending. Damage inside the file (a bad
 * line followed by good ones: not a crash pattern, bit rot) skips that line and counts it.
 */

import { closeSync, fstatSync, readSync } from 'node:fs';

export interface QuotaRecord {
  readonly k: string;
  readonly p: number;
  readonly u: number;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let i = 0; i < 8; i++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3) of the exact UTF-8 bytes written (Node 20 has no zlib.crc32). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = (CRC_TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function encodeRecord(r: QuotaRecord): string {
  const json = JSON.stringify({ k: r.k, p: r.p, u: r.u });
  const crc = crc32(Buffer.from(json, 'utf8'));
  return `${crc.toString(16).padStart(8, '0')} ${json}\n`;
}

export interface ReplayResult {
  /** Byte offset just past the last complete line (where the next record goes). */
  readonly end: number;
  /** Complete lines whose checksum or shape was wrong (skipped). */
  readonly damaged: number;
  /** Bytes after the last newline: a torn record, cut off by the next writer. */
  readonly tornBytes: number;
}

const NL = 0x0a;
const SPACE = 0x20;

/** Parse `buf` (file bytes from `base`), calling `apply` per valid record in file order. */
export function replay(buf: Buffer, base: number, apply: (r: QuotaRecord) => void): ReplayResult {
  let pos = 0;
  let damaged = 0;
  for (;;) {
    const nl = buf.indexOf(NL, pos);
    if (nl < 0) break;
    const r = decodeLine(buf, pos, nl);
    if (r) apply(r);
    else if (nl > pos) damaged++;
    pos = nl + 1;
  }
  return { end: base + pos, damaged, tornBytes: buf.length - pos };
}

function decodeLine(buf: Buffer, start: number, end: number): QuotaRecord | null {
  if (end - start < 10 || buf[start + 8] !== SPACE) return null;
  const want = Number.parseInt(buf.toString('latin1', start, start + 8), 16);
  if (!Number.isFinite(want) || crc32(buf, start + 9, end) !== want) return null;
  try {
    const o = JSON.parse(buf.toString('utf8', start + 9, end)) as Partial<QuotaRecord>;
    if (typeof o.k !== 'string' || typeof o.p !== 'number' || typeof o.u !== 'number') return null;
    if (!Number.isSafeInteger(o.u) || o.u < 0 || !Number.isFinite(o.p)) return null;
    return { k: o.k, p: o.p, u: o.u };
  } catch {
    return null;
  }
}

/** Read `fd` from `from` to its current end. */
export function readFrom(fd: number, from: number): Buffer {
  const size = fstatSync(fd).size;
  if (size <= from) return Buffer.alloc(0);
  const buf = Buffer.allocUnsafe(size - from);
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, from + got);
    if (n === 0) break;
    got += n;
  }
  return got === buf.length ? buf : buf.subarray(0, got);
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
