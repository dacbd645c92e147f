import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

  it('never returns a blob whose bytes no longer match its address', () => {
    const digest = store.blobs.put(new Uint8Array([9, 9, 9]));
    expect(digest).toBe(sha256Hex(new Uint8Array([9, 9, 9])));
    writeFileSync(store.blobs.pathOf(digest), 'tampered');
    expect(() => store.blobs.get(digest)).toThrow(IntegrityError);
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
