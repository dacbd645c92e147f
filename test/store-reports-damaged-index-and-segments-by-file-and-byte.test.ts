/**
 * Damage to the artifact index or the segments is reported precisely (file and byte), never
 * silently dropped; only a torn tail left by a crash mid-write is cut, and only by a writer.
 */

import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreFileIntegrityError } from '../src/store/artifacts/errors.js';
import { Store } from '../src/store/store.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-damage-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function fill(n: number, checkpoint: boolean): string[] {
  const store = new Store(dir);
  const keys: string[] = [];
  for (let i = 0; i < n; i++) keys.push(store.artifacts.put(Buffer.from(`artifact ${i}`), { kind: 'blob' }));
  if (checkpoint) store.checkpoint();
  store.close();
  return keys;
}

function openError(): StoreFileIntegrityError {
  try {
    new Store(dir).close();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreFileIntegrityError);
    return err as StoreFileIntegrityError;
  }
  throw new Error('the store opened');
}

describe('damaged store files', () => {
  it('a cut checkpoint is reported with its file and the byte where it ends', () => {
    fill(50, true);
    const ckpt = join(dir, 'index', '2.ckpt');
    const size = statSync(ckpt).size;
    truncateSync(ckpt, size - 10);
    const err = openError();
    expect(err.path).toBe(ckpt);
    expect(err.offset).toBe(size - 10);
    expect(err.message).toMatch(/cut or extended/);
  });

  it('a checkpoint record that fails its checksum is reported on lookup, naming the record', () => {
    const keys = fill(50, true);
    const ckpt = join(dir, 'index', '2.ckpt');
    const bytes = readFileSync(ckpt);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0xff; // inside the last record
    writeFileSync(ckpt, bytes);
    const store = new Store(dir, { readOnly: true });
    const last = [...keys].sort().at(-1)!;
    expect(() => store.artifacts.get(last)).toThrow(StoreFileIntegrityError);
    expect(() => store.artifacts.get(last)).toThrow(/record 49 fails its checksum/);
    expect(store.artifacts.get([...keys].sort()[0]!).toString()).toMatch(/artifact/);
    store.close();
  });

  it('a damaged index log record followed by valid ones is corruption, reported at its byte', () => {
    fill(5, false);
    const log = join(dir, 'index', '1.log');
    const bytes = readFileSync(log);
    bytes[8 + 8 + 40] = bytes[8 + 8 + 40]! ^ 1; // inside the first record's payload (records start at byte 8)
    writeFileSync(log, bytes);
    const err = openError();
    expect(err.path).toBe(log);
    expect(err.offset).toBe(8);
    expect(err.message).toMatch(/fails its checksum/);
    expect(readFileSync(log)).toEqual(bytes); // nothing was cut
  });

  it('a torn index log tail (crash mid-write) is cut by a writer and everything before kept', () => {
    const keys = fill(5, false);
    const log = join(dir, 'index', '1.log');
    const size = statSync(log).size;
    appendFileSync(log, Buffer.from([0, 0, 0, 120, 1, 2, 3, 4, 5, 6]));
    const reader = new Store(dir, { readOnly: true });
    for (const k of keys) expect(reader.artifacts.has(k)).toBe(true);
    reader.close();
    expect(statSync(log).size).toBe(size + 10); // a reader writes nothing
    const store = new Store(dir);
    expect(store.index.recoveredBytes).toBe(10);
    for (const k of keys) expect(store.artifacts.has(k)).toBe(true);
    store.artifacts.put(Buffer.from('after recovery'), { kind: 'blob' });
    store.close();
    expect(new Store(dir, { readOnly: true }).artifacts.count).toBe(6);
  });

  it('a torn segment tail is cut on open; a block altered inside a segment names file and byte', () => {
    const keys = fill(5, false);
    const seg = join(dir, 'blocks', 'segments', '00000001.seg');
    const size = statSync(seg).size;
    appendFileSync(seg, Buffer.from([0, 0, 1, 0, 9, 9, 9]));
    const store = new Store(dir);
    expect(store.blocks.recoveredBytes).toBe(7);
    expect(statSync(seg).size).toBe(size);
    const { path, offset } = store.artifacts.locate(keys[2]!);
    store.close();
    const bytes = readFileSync(path);
    bytes[offset + 1] = bytes[offset + 1]! ^ 1;
    writeFileSync(path, bytes);
    const again = new Store(dir, { readOnly: true });
    expect(() => again.artifacts.get(keys[2]!)).toThrow(
      new RegExp(`00000001\\.seg: block ${keys[2]} .*altered on disk \\(at byte ${offset}\\)`),
    );
    expect(again.artifacts.get(keys[1]!).toString()).toBe('artifact 1');
    again.close();
  });

  it('a CURRENT file that is not one is refused, naming it', () => {
    fill(2, false);
    writeFileSync(join(dir, 'index', 'CURRENT'), 'garbage\n');
    const err = openError();
    expect(err.path).toBe(join(dir, 'index', 'CURRENT'));
  });
});
