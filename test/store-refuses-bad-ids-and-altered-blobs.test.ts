import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBuild, openBuild } from '../src/runtime/build.js';
import { sha256Hex } from '../src/runtime/canonical.js';
import { IntegrityError, NotFoundError, ValidationError } from '../src/runtime/errors.js';
import { Store } from '../src/store/store.js';

let dir: string;
let store: Store;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-store-'));
  store = new Store(dir);
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const build = () =>
  createBuild({
    kind: 'wasm',
    name: 'x',
    source: new Uint8Array([1, 2, 3]),
    artifacts: { 'module.wasm': { bytes: new Uint8Array([0, 97, 115, 109]), mediaType: 'application/wasm' } },
    inputSchema: { kind: 'bytes' },
    outputSchema: { kind: 'bytes' },
  });

describe('store', () => {
  it('round-trips a build and re-derives the same id', () => {
    const b = build();
    store.putBuild(b);
    const back = store.getBuild(b.id);
    expect(back.id).toBe(b.id);
    expect(back.manifest).toEqual(b.manifest);
  });

  it('refuses ids that are not sha256 digests, naming the field', () => {
    for (const bad of ['', 'abc', 'G'.repeat(64), '../../etc/passwd']) {
      expect(() => store.blobs.get(bad)).toThrow(ValidationError);
      expect(() => store.getPayload(bad)).toThrow(ValidationError);
    }
  });

  it('reports unknown builds, payloads and receipts as NotFoundError', () => {
    const id = 'a'.repeat(64);
    expect(() => store.getBuild(id)).toThrow(NotFoundError);
    expect(() => store.getPayload(id)).toThrow(NotFoundError);
    expect(() => store.getReceipt(id)).toThrow(NotFoundError);
  });

  it('never returns a block whose bytes no longer match its address, naming file and byte', () => {
    const digest = store.artifacts.put(new Uint8Array([9, 9, 9]), { kind: 'blob' });
    expect(digest).toBe(sha256Hex(new Uint8Array([9, 9, 9])));
    store.flush();
    const { path, offset } = store.artifacts.locate(digest);
    const bytes = readFileSync(path);
    bytes[offset] = 7;
    writeFileSync(path, bytes);
    expect(() => store.artifacts.get(digest)).toThrow(IntegrityError);
    expect(() => store.artifacts.get(digest)).toThrow(new RegExp(`${path}.*at byte ${offset}`));
  });

  it('still reads the legacy blob layout, re-hashed', () => {
    store.close();
    const bytes = new Uint8Array([4, 5, 6]);
    const digest = sha256Hex(bytes);
    mkdirSync(join(dir, 'blobs', 'sha256', digest.slice(0, 2)), { recursive: true });
    writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(0, 2), digest), bytes);
    mkdirSync(join(dir, 'payloads'), { recursive: true });
    const payloadHash = 'c'.repeat(64);
    writeFileSync(join(dir, 'payloads', payloadHash), digest);
    store = new Store(dir);
    expect(store.hasPayload(payloadHash)).toBe(true);
    expect([...store.getPayload(payloadHash)]).toEqual([4, 5, 6]);
    writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(0, 2), digest), 'tampered');
    expect(() => store.getPayload(payloadHash)).toThrow(IntegrityError);
  });

  it('refuses a stored manifest whose artifact digest is not a digest, with the field path', () => {
    const b = build();
    const manifest = {
      ...b.manifest,
      artifacts: { 'module.wasm': { digest: 'nope', size: 4, mediaType: 'application/wasm' } },
    };
    try {
      openBuild(manifest, b.artifacts);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).path).toBe('manifest.artifacts.module.wasm.digest');
    }
  });

  it('refuses a build with a malformed schema', () => {
    expect(() =>
      createBuild({
        kind: 'wasm',
        name: 'x',
        source: new Uint8Array(),
        artifacts: {},
        inputSchema: { kind: 'nope' } as never,
        outputSchema: { kind: 'bytes' },
      }),
    ).toThrow(/inputSchema.kind/);
  });
});
