// The preview 2 host, driven directly (as jco's glue calls it): a descriptor opened before
// rename-at keeps reading and writing the same file under its new name, as preview 1 fds do.
import { describe, expect, it } from 'vitest';
import { createMemFs } from '../src/backends/wasm/memfs.js';
import { createPreview2Host } from '../src/backends/wasm/preview2.js';
import { createSeededRandom } from '../src/backends/wasm/seeded-random.js';
import { foldWasiPath } from '../src/backends/wasm/wasi-path.js';

interface Descriptor {
  openAt(pathFlags: object, path: string, open: object, flags: object): Descriptor;
  read(len: bigint, offset: bigint): [Uint8Array, boolean];
  write(buffer: Uint8Array, offset: bigint): bigint;
  readViaStream(offset: bigint): { read(len: bigint): Uint8Array };
  renameAt(oldPath: string, newDescriptor: Descriptor, newPath: string): void;
  createDirectoryAt(path: string): void;
  stat(): { size: bigint };
  [Symbol.dispose](): void;
}

const utf8 = new TextEncoder();
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A host on a writable memory tree holding a.txt, begun; its preopen "/". */
function writableHost(): { root: Descriptor; end(): void } {
  const fs = createMemFs(
    { tree: { 'a.txt': utf8.encode('alpha') }, writable: true, maxBytes: 1 << 20 },
    foldWasiPath,
  );
  const host = createPreview2Host({ args: ['t'], env: [] }, fs, createSeededRandom(1));
  host.begin(new Uint8Array(0), 1 << 16);
  const preopens = host.imports['wasi:filesystem/preopens'] as {
    getDirectories(): [Descriptor, string][];
  };
  const [[root]] = preopens.getDirectories() as [[Descriptor, string]];
  return { root, end: () => host.end() };
}
const readAll = (d: Descriptor): string => text(d.read(1024n, 0n)[0]);
/** What fn threw (the host throws error-code strings, as jco's glue expects). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('preview 2 descriptors follow rename-at', () => {
  it('a file descriptor reads and writes the renamed file, and the old name is gone', () => {
    const { root } = writableHost();
    const file = root.openAt({}, 'a.txt', {}, { read: true, write: true });
    const stream = file.readViaStream(0n);
    root.renameAt('a.txt', root, 'b.txt');

    expect(readAll(file)).toBe('alpha');
    expect(text(stream.read(16n))).toBe('alpha');
    expect(file.write(utf8.encode('ALPHA!'), 0n)).toBe(6n);
    expect(file.stat().size).toBe(6n);
    expect(readAll(root.openAt({}, 'b.txt', {}, { read: true }))).toBe('ALPHA!');
    expect(thrown(() => root.openAt({}, 'a.txt', {}, { read: true }))).toBe('no-entry');
  });

  it('descriptors below a renamed directory move with it, the directory descriptor too', () => {
    const { root } = writableHost();
    root.createDirectoryAt('d');
    root.renameAt('a.txt', root, 'd/a.txt');
    const dir = root.openAt({}, 'd', { directory: true }, { read: true });
    const file = dir.openAt({}, 'a.txt', {}, { read: true, write: true });
    root.renameAt('d', root, 'e');

    expect(readAll(file)).toBe('alpha');
    file.write(utf8.encode('!'), 5n);
    expect(readAll(dir.openAt({}, 'a.txt', {}, { read: true }))).toBe('alpha!');
    expect(readAll(root.openAt({}, 'e/a.txt', {}, { read: true }))).toBe('alpha!');
  });

  it('a descriptor the guest dropped is no longer moved, and a new file under the old name is its own', () => {
    const { root } = writableHost();
    const dropped = root.openAt({}, 'a.txt', {}, { read: true });
    dropped[Symbol.dispose]();
    const kept = root.openAt({}, 'a.txt', {}, { read: true });
    root.renameAt('a.txt', root, 'b.txt');
    const fresh = root.openAt({}, 'a.txt', { create: true }, { write: true });
    fresh.write(utf8.encode('new'), 0n);

    expect(readAll(kept)).toBe('alpha');
    expect(readAll(dropped)).toBe('new'); // it names a.txt still: never moved after its drop
  });
});
