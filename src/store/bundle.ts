/**
 * Bundles: a build, its receipts, their inputs and outputs (and the receipts they descend from)
 * as one file that another store imports with every hash re-checked (issue #13, "domains and
 * federation"; restic's packs and git's bundles are the anchors).
 *
 * Layout (format 1, magic `TPBNDL1\n`):
 *
 *     bytes 0..8          magic
 *     bytes 8..12         u32be manifest length M (at most 64 MiB)
 *     bytes 12..12+M      manifest: canonical msgpack (runtime/canonical.ts)
 *     next 4 bytes        u32be crc32 of the manifest
 *     then                every artifact's bytes, in manifest order, back to back
 *     last 32 bytes       sha256 of every byte before them
 *
 *   manifest = { v: 1, createdAt, source: { domain, store }, roots: [receipt or build ids],
 *                artifacts: [{ key, kind, size }] }
 *
 * An artifact's key is what names it everywhere else, and import re-derives it from the bytes
 * by its kind, so a bundle cannot smuggle bytes under a name they do not hash to:
 *   - `receipt`: the canonical receipt body; key = sha256(body) = the receipt id;
 *   - `build`: a build manifest's canonical encoding; key = sha256 = the build id;
 *   - `build-artifact`: a build's artifact (wasm, BPF object, BMv2 JSON, onnx); key = sha256;
 *   - `payload`: an input/output encoding (runtime/payload.ts); key = the payload hash, which is
 *     computed over the decoded payload, so import decodes and hashes it again;
 *   - `fs-tree`: a memory file system tree; key = its digest (runtime/fs-tree.ts).
 *
 * Import is two passes. The first reads the whole file, bounded (one artifact in memory at a
 * time), and checks the trailer hash, the manifest's crc and shape (every field path named),
 * every artifact against its key, and that every reference a receipt or build makes is either in
 * the bundle or already in the store; nothing is written unless all of it holds. The second
 * pass stores what the store lacks, in the exporting store's domain, published and marked with
 * its source, so that it stays read-only here (store.ts refuses to tombstone a cross-domain
 * artifact) and GC keeps it like any published artifact.
 */

import { closeSync, fstatSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { BuildManifest } from '../runtime/build.js';
import { DIGEST_PATTERN, decodeCanonical, encodeCanonical, sha256Hex } from '../runtime/canonical.js';
import { ThunderpacError } from '../runtime/errors.js';
import { decodeFsTree } from '../runtime/fs-tree.js';
import { decodePayload, hashPayload } from '../runtime/payload.js';
import type { Receipt, ReceiptBody } from '../runtime/receipt.js';

const MAGIC = Buffer.from('TPBNDL1\n');
const MAGIC_FAMILY = 'TPBNDL';
export const MAX_MANIFEST_BYTES = 64 << 20;
/** An artifact larger than this is refused on import (the store's input limit is 256 MiB). */
export const MAX_BUNDLE_ARTIFACT_BYTES = 1 << 30;
export const MAX_BUNDLE_ARTIFACTS = 1_000_000;
const TRAILER = 32;
const READ_CHUNK = 1 << 20;

export const BUNDLE_KINDS = ['receipt', 'build', 'build-artifact', 'payload', 'fs-tree'] as const;
export type BundleKind = (typeof BUNDLE_KINDS)[number];

export interface BundleArtifact {
  readonly key: string;
  readonly kind: BundleKind;
  readonly size: number;
}

export interface BundleManifest {
  readonly v: 1;
  readonly createdAt: string;
  readonly source: { readonly domain: string; readonly store: string };
  readonly roots: readonly string[];
  readonly artifacts: readonly BundleArtifact[];
}

/** A bundle that is damaged, forged or incomplete: where (byte offset, field path) and why. */
export class BundleError extends ThunderpacError {
  readonly path: string;
  readonly offset: number | undefined;
  readonly field: string | undefined;

  constructor(path: string, message: string, where: { offset?: number; field?: string } = {}) {
    const at = [
      where.field !== undefined ? `field ${where.field}` : undefined,
      where.offset !== undefined ? `byte ${where.offset}` : undefined,
    ]
      .filter(Boolean)
      .join(', ');
    super('BUNDLE_INVALID', `${path}: ${message}${at ? ` (at ${at})` : ''}`);
    this.path = path;
    this.offset = where.offset;
    this.field = where.field;
  }
}

/** What export reads: the store's own accessors (store.ts). */
export interface BundleSource {
  readonly domain: string;
  readonly storeId: string;
  getReceipt(id: string): Receipt;
  /** Ids of every receipt of a build, oldest first. */
  receiptsOfBuild(buildId: string): Iterable<string>;
  getBuildManifest(id: string): { manifest: BuildManifest; bytes: Uint8Array };
  getArtifactBytes(digest: string): Uint8Array;
  getPayload(hash: string): Uint8Array;
  hasPayload(hash: string): boolean;
}

/** What import writes. */
export interface BundleTarget {
  hasBundleArtifact(key: string, kind: BundleKind): boolean;
  putBundleArtifact(
    key: string,
    kind: BundleKind,
    bytes: Uint8Array,
    origin: { readonly domain: string; readonly store: string },
  ): void;
}

export interface ExportSelection {
  /** Builds: the build, every receipt of it, their payloads and ancestors. */
  readonly builds?: readonly string[];
  /** Receipts: each with its ancestors (its DAG up to it), builds and payloads. */
  readonly receipts?: readonly string[];
}

export interface ExportReport {
  readonly path: string;
  readonly bytes: number;
  readonly artifacts: number;
  readonly receipts: number;
  readonly builds: number;
  readonly skipped: readonly { readonly key: string; readonly why: string }[];
}

export interface ImportReport {
  readonly path: string;
  readonly source: BundleManifest['source'];
  readonly artifacts: number;
  readonly added: number;
  readonly present: number;
  readonly receipts: number;
  readonly bytes: number;
}

function receiptBody(receipt: Receipt): Uint8Array {
  const { id: _id, ...body } = receipt;
  return encodeCanonical(body);
}

/** Build references made by a receipt: its build, input, output and memory fs tree. */
function receiptRefs(body: ReceiptBody): { key: string; kind: BundleKind; optional: boolean }[] {
  const refs: { key: string; kind: BundleKind; optional: boolean }[] = [
    { key: body.buildId, kind: 'build', optional: false },
  ];
  if (body.input?.hash) refs.push({ key: body.input.hash, kind: 'payload', optional: false });
  if (body.output?.hash) refs.push({ key: body.output.hash, kind: 'payload', optional: true });
  const fs = body.sandbox?.fs;
  if (fs && fs.kind === 'memory') refs.push({ key: fs.digest, kind: 'payload', optional: false });
  for (const p of body.parents ?? []) refs.push({ key: p, kind: 'receipt', optional: true });
  return refs;
}

/**
 * Write a bundle of `selection` from `source` to `path` (written to a temporary name and renamed
 * into place: a reader never sees half a bundle). An output the store no longer has (reclaimed by
 * GC) is left out and listed in `skipped`; the receipt still goes in, and import accepts it the
 * way the store does (the output is optional; the input and the build are not).
 */
export function exportBundle(source: BundleSource, path: string, selection: ExportSelection): ExportReport {
  const order: { key: string; kind: BundleKind; bytes: Uint8Array }[] = [];
  const seen = new Set<string>();
  const skipped: { key: string; why: string }[] = [];
  let receipts = 0;
  let builds = 0;
  const add = (key: string, kind: BundleKind, bytes: Uint8Array) => {
    seen.add(`${kind}:${key}`);
    order.push({ key, kind, bytes });
  };
  const addBuild = (id: string) => {
    if (seen.has(`build:${id}`)) return;
    const { manifest, bytes } = source.getBuildManifest(id);
    for (const ref of Object.values(manifest.artifacts ?? {})) {
      if (!seen.has(`build-artifact:${ref.digest}`))
        add(ref.digest, 'build-artifact', source.getArtifactBytes(ref.digest));
    }
    add(id, 'build', bytes); // after its artifacts, as the store writes them
    builds++;
  };
  const addPayload = (hash: string, required: boolean) => {
    if (seen.has(`payload:${hash}`)) return;
    if (!source.hasPayload(hash)) {
      if (required) throw new BundleError(path, `payload ${hash} is not in the store`);
      skipped.push({ key: hash, why: 'not in the store (reclaimed by GC?)' });
      return;
    }
    add(hash, 'payload', source.getPayload(hash));
  };
  // Ancestors first, iteratively: a long DAG must not overflow the stack.
  const addReceipt = (rootId: string) => {
    const stack: { id: string; expanded: boolean }[] = [{ id: rootId, expanded: false }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (seen.has(`receipt:${top.id}`)) {
        stack.pop();
        continue;
      }
      const receipt = source.getReceipt(top.id);
      if (!top.expanded) {
        top.expanded = true;
        for (const p of receipt.parents ?? [])
          if (!seen.has(`receipt:${p}`)) stack.push({ id: p, expanded: false });
        continue;
      }
      stack.pop();
      addBuild(receipt.buildId);
      for (const ref of receiptRefs(receipt)) {
        if (ref.kind === 'payload') addPayload(ref.key, !ref.optional);
      }
      add(receipt.id, 'receipt', receiptBody(receipt));
      receipts++;
    }
  };
  for (const id of selection.builds ?? []) {
    addBuild(id);
    for (const receiptId of source.receiptsOfBuild(id)) addReceipt(receiptId);
  }
  for (const id of selection.receipts ?? []) addReceipt(id);

  const manifest: BundleManifest = {
    v: 1,
    createdAt: new Date().toISOString(),
    source: { domain: source.domain, store: source.storeId },
    roots: [...(selection.builds ?? []), ...(selection.receipts ?? [])],
    artifacts: order.map(({ key, kind, bytes }) => ({ key, kind, size: bytes.length })),
  };
  const manifestBytes = encodeCanonical(manifest);
  if (manifestBytes.length > MAX_MANIFEST_BYTES)
    throw new BundleError(path, `manifest of ${manifestBytes.length} bytes exceeds ${MAX_MANIFEST_BYTES}`);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'wx');
  const digest = createHash('sha256');
  let written = 0;
  const put = (bytes: Uint8Array) => {
    digest.update(bytes);
    let at = 0;
    while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at, written + at);
    written += bytes.length;
  };
  try {
    const head = Buffer.alloc(12);
    MAGIC.copy(head, 0);
    head.writeUInt32BE(manifestBytes.length, 8);
    put(head);
    put(manifestBytes);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(manifestBytes), 0);
    put(crc);
    for (const { bytes } of order) put(bytes);
    const trailer = digest.digest();
    writeSync(fd, trailer, 0, trailer.length, written);
    written += trailer.length;
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  return { path, bytes: written, artifacts: order.length, receipts, builds, skipped };
}

/** Reads a bundle file forward in bounded chunks. */
class BundleReader {
  readonly path: string;
  readonly fd: number;
  readonly size: number;

  constructor(path: string) {
    this.path = path;
    this.fd = openSync(path, 'r');
    this.size = fstatSync(this.fd).size;
  }

  read(offset: number, length: number): Buffer {
    if (offset + length > this.size)
      throw new BundleError(this.path, `bundle ends at byte ${this.size}, ${length} bytes wanted`, {
        offset,
      });
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = readSync(this.fd, buf, got, length - got, offset + got);
      if (n === 0)
        throw new BundleError(this.path, 'bundle was cut while being read', { offset: offset + got });
      got += n;
    }
    return buf;
  }

  close(): void {
    closeSync(this.fd);
  }
}

function expectType(path: string, field: string, ok: boolean, what: string): void {
  if (!ok) throw new BundleError(path, `expected ${what}`, { field });
}

/** The manifest's shape, every field path named. */
function checkManifest(path: string, m: unknown): BundleManifest {
  expectType(path, '$', typeof m === 'object' && m !== null && !Array.isArray(m), 'a map');
  const o = m as Record<string, unknown>;
  expectType(path, '$.v', o.v === 1, 'format version 1');
  expectType(path, '$.createdAt', typeof o.createdAt === 'string' && o.createdAt.length <= 64, 'an ISO time');
  const src = o.source as Record<string, unknown> | undefined;
  expectType(path, '$.source', typeof src === 'object' && src !== null && !Array.isArray(src), 'a map');
  for (const f of ['domain', 'store'] as const) {
    const v = src![f];
    expectType(
      path,
      `$.source.${f}`,
      typeof v === 'string' && v.length > 0 && v.length <= 256 && ![...v].some((c) => c.charCodeAt(0) < 0x20),
      'a non-empty string of at most 256 printable characters',
    );
  }
  expectType(path, '$.roots', Array.isArray(o.roots) && o.roots.length <= MAX_BUNDLE_ARTIFACTS, 'an array');
  (o.roots as unknown[]).forEach((r, i) => {
    expectType(path, `$.roots[${i}]`, typeof r === 'string' && DIGEST_PATTERN.test(r), 'a sha256 hex id');
  });
  expectType(
    path,
    '$.artifacts',
    Array.isArray(o.artifacts) && o.artifacts.length <= MAX_BUNDLE_ARTIFACTS,
    `an array of at most ${MAX_BUNDLE_ARTIFACTS}`,
  );
  const seen = new Set<string>();
  (o.artifacts as unknown[]).forEach((a, i) => {
    const at = `$.artifacts[${i}]`;
    expectType(path, at, typeof a === 'object' && a !== null && !Array.isArray(a), 'a map');
    const e = a as Record<string, unknown>;
    expectType(
      path,
      `${at}.key`,
      typeof e.key === 'string' && DIGEST_PATTERN.test(e.key),
      'a sha256 hex key',
    );
    expectType(
      path,
      `${at}.kind`,
      typeof e.kind === 'string' && (BUNDLE_KINDS as readonly string[]).includes(e.kind),
      `one of ${BUNDLE_KINDS.join(', ')}`,
    );
    expectType(
      path,
      `${at}.size`,
      Number.isSafeInteger(e.size) &&
        (e.size as number) >= 0 &&
        (e.size as number) <= MAX_BUNDLE_ARTIFACT_BYTES,
      `a size in bytes, 0..${MAX_BUNDLE_ARTIFACT_BYTES}`,
    );
    const id = `${e.kind}:${e.key}`;
    if (seen.has(id))
      throw new BundleError(path, `artifact ${e.key} (${e.kind}) is listed twice`, { field: at });
    seen.add(id);
  });
  return o as unknown as BundleManifest;
}

/** Re-derive an artifact's key from its bytes; returns a reason when it does not hold. */
function checkArtifact(a: BundleArtifact, bytes: Uint8Array): string | undefined {
  try {
    switch (a.kind) {
      case 'receipt':
      case 'build':
      case 'build-artifact': {
        const actual = sha256Hex(bytes);
        return actual === a.key ? undefined : `bytes hash to ${actual}`;
      }
      case 'payload': {
        // A memory fs tree is stored as a payload under its digest (executor.ts).
        try {
          decodeFsTree(bytes, a.key);
          return undefined;
        } catch {}
        const actual = hashPayload(decodePayload(bytes));
        return actual === a.key ? undefined : `payload hashes to ${actual}`;
      }
      case 'fs-tree':
        decodeFsTree(bytes, a.key);
        return undefined;
    }
  } catch (err) {
    return `does not decode: ${(err as Error).message}`;
  }
}

/** Check a bundle completely without writing anything; returns its manifest. */
export function checkBundle(path: string, target?: BundleTarget): BundleManifest {
  const reader = new BundleReader(path);
  try {
    return checkWith(reader, target);
  } finally {
    reader.close();
  }
}

function checkWith(reader: BundleReader, target: BundleTarget | undefined): BundleManifest {
  const { path, size } = reader;
  if (size < MAGIC.length + 8 + TRAILER)
    throw new BundleError(path, `too short to be a bundle (${size} bytes)`);
  const head = reader.read(0, 12);
  if (!head.subarray(0, MAGIC.length).equals(MAGIC)) {
    const family = head.subarray(0, MAGIC_FAMILY.length).toString('latin1') === MAGIC_FAMILY;
    throw new BundleError(
      path,
      family ? 'bundle of another format version' : 'not a thunderpac bundle (bad magic)',
      {
        offset: 0,
      },
    );
  }
  const manifestLength = head.readUInt32BE(8);
  if (manifestLength > MAX_MANIFEST_BYTES || 12 + manifestLength + 4 + TRAILER > size)
    throw new BundleError(path, `manifest length ${manifestLength} does not fit the bundle`, { offset: 8 });
  // The trailer first: one streaming pass says whether any byte changed.
  const digest = createHash('sha256');
  for (let at = 0; at < size - TRAILER; at += READ_CHUNK)
    digest.update(reader.read(at, Math.min(READ_CHUNK, size - TRAILER - at)));
  const trailer = reader.read(size - TRAILER, TRAILER);
  const actual = digest.digest();
  if (!actual.equals(trailer))
    throw new BundleError(path, `content does not hash to the trailer ${trailer.toString('hex')}`, {
      offset: size - TRAILER,
    });
  const manifestBytes = reader.read(12, manifestLength);
  const crc = reader.read(12 + manifestLength, 4).readUInt32BE(0);
  if (crc32(manifestBytes) !== crc)
    throw new BundleError(path, 'manifest checksum does not match', { offset: 12 + manifestLength });
  let decoded: unknown;
  try {
    decoded = decodeCanonical(manifestBytes);
  } catch (err) {
    throw new BundleError(path, `manifest does not decode: ${(err as Error).message}`, { offset: 12 });
  }
  const manifest = checkManifest(path, decoded);
  const dataStart = 12 + manifestLength + 4;
  const total = manifest.artifacts.reduce((n, a) => n + a.size, 0);
  if (dataStart + total + TRAILER !== size)
    throw new BundleError(
      path,
      `artifacts add up to ${total} bytes but the bundle holds ${size - TRAILER - dataStart}`,
      {
        field: '$.artifacts',
      },
    );
  // Every artifact against its key, and every reference resolved.
  const inBundle = new Set(manifest.artifacts.map((a) => `${a.kind}:${a.key}`));
  const has = (kind: BundleKind, key: string) =>
    inBundle.has(`${kind}:${key}`) ||
    (kind === 'payload' && inBundle.has(`fs-tree:${key}`)) ||
    (target?.hasBundleArtifact(key, kind) ?? false);
  let at = dataStart;
  manifest.artifacts.forEach((a, i) => {
    const field = `$.artifacts[${i}]`;
    const bytes = reader.read(at, a.size);
    const problem = checkArtifact(a, bytes);
    if (problem)
      throw new BundleError(path, `artifact ${a.key} (${a.kind}) ${problem}`, { offset: at, field });
    if (a.kind === 'receipt') {
      const body = decodeCanonical<ReceiptBody>(bytes);
      if (typeof body !== 'object' || body === null || body.v !== 1 || typeof body.buildId !== 'string')
        throw new BundleError(path, `receipt ${a.key} is not a receipt body`, { offset: at, field });
      for (const ref of receiptRefs(body)) {
        if (!ref.optional && !has(ref.kind, ref.key))
          throw new BundleError(
            path,
            `receipt ${a.key} needs ${ref.kind} ${ref.key}, in neither the bundle nor the store`,
            {
              field,
            },
          );
      }
    } else if (a.kind === 'build') {
      const manifestOfBuild = decodeCanonical<BuildManifest>(bytes);
      for (const [name, ref] of Object.entries(manifestOfBuild?.artifacts ?? {})) {
        if (!has('build-artifact', ref.digest))
          throw new BundleError(path, `build ${a.key} needs its artifact '${name}' (${ref.digest})`, {
            field,
          });
      }
    }
    at += a.size;
  });
  return manifest;
}

/** Check a bundle completely, then store what `target` lacks; all or nothing written. */
export function importBundle(path: string, target: BundleTarget): ImportReport {
  const reader = new BundleReader(path);
  try {
    const manifest = checkWith(reader, target);
    let at = 12 + reader.read(8, 4).readUInt32BE(0) + 4;
    let added = 0;
    let present = 0;
    let bytes = 0;
    let receipts = 0;
    for (const a of manifest.artifacts) {
      if (a.kind === 'receipt') receipts++;
      if (target.hasBundleArtifact(a.key, a.kind)) {
        present++;
      } else {
        const data = reader.read(at, a.size);
        // The first pass checked these bytes; a file changed in between is caught here.
        if (checkArtifact(a, data))
          throw new BundleError(path, `artifact ${a.key} changed during import`, { offset: at });
        target.putBundleArtifact(a.key, a.kind, data, manifest.source);
        added++;
        bytes += a.size;
      }
      at += a.size;
    }
    return {
      path,
      source: manifest.source,
      artifacts: manifest.artifacts.length,
      added,
      present,
      receipts,
      bytes,
    };
  } finally {
    reader.close();
  }
}
