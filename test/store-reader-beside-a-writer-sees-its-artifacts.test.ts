/**
 * A read-only store opened beside a writer sees what the writer put since, on a miss: log
 * records appended meanwhile, and a whole new generation after the writer checkpointed.
 */

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotFoundError } from '../src/runtime/errors.js';
import { Store } from '../src/store/store.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-reader-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('a reader beside a writer', () => {
  it('finds artifacts put after it opened, across a checkpoint, and writes nothing', () => {
    const writer = new Store(dir, { checkpointEvery: 1_000_000 });
    const early = writer.artifacts.put(Buffer.from('early'), { kind: 'blob' });
    writer.flush();
    const reader = new Store(dir, { readOnly: true });
    expect(reader.artifacts.get(early).toString()).toBe('early');
    const missing = 'e'.repeat(64);
    expect(() => reader.artifacts.get(missing)).toThrow(NotFoundError);

    const later = writer.artifacts.put(Buffer.from('later'), { kind: 'blob' });
    writer.flush();
    expect(reader.artifacts.get(later).toString()).toBe('later');

    writer.checkpoint(); // a new generation: the reader's log is gone
    const after = writer.artifacts.put(Buffer.from('after checkpoint'), { kind: 'blob' });
    writer.artifacts.tombstone(early);
    writer.flush();
    expect(reader.artifacts.get(after).toString()).toBe('after checkpoint');
    expect(reader.artifacts.get(later).toString()).toBe('later');
    expect(reader.artifacts.has(early)).toBe(false);
    expect(readdirSync(join(dir, 'index')).sort()).toEqual(['2.ckpt', '2.log', 'CURRENT']);
    reader.close();
    writer.close();
  });

  it('follows blocks the writer compacted away after the reader looked them up', () => {
    const writer = new Store(dir, { segmentBytes: 4096 });
    const keys: string[] = [];
    for (let i = 0; i < 30; i++) keys.push(writer.artifacts.put(Buffer.alloc(500, i), { kind: 'blob' }));
    writer.flush();
    const reader = new Store(dir, { readOnly: true });
    expect(reader.artifacts.has(keys[1]!)).toBe(true); // the reader knows the old locations
    for (let i = 0; i < 30; i += 2) writer.artifacts.tombstone(keys[i]!);
    expect(writer.compact().segmentsCompacted).toBeGreaterThan(0);
    for (let i = 1; i < 30; i += 2)
      expect([...reader.artifacts.get(keys[i]!)]).toEqual([...Buffer.alloc(500, i)]);
    reader.close();
    writer.close();
  });
});
