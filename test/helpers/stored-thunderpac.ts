/** A Thunderpac over a temporary store, for the tests of the enclosing describe block (or file). */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Thunderpac } from '../../src/thunderpac.js';

/** Opened before the block's tests, closed and its directory removed after them; call to get it. */
export function storedThunderpac(prefix: string): () => Thunderpac {
  let dir: string | undefined;
  let tp: Thunderpac | undefined;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    tp = await Thunderpac.open({ store: dir });
  });
  afterAll(async () => {
    await tp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    if (!tp) throw new Error('storedThunderpac: used outside the tests of its block');
    return tp;
  };
}
