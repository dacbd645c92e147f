/**
 * A store writer for the kill -9 loop test (run with vite-node), killed at random points:
 *
 *   vite-node test/helpers/store-kill-writer.ts -- STORE_DIR SEED
 *
 * Forever: puts payloads (some large, some packed) and user artifacts (some re-put under the
 * same key with new bytes: shadowing; some tombstoned), appends receipts naming the payloads,
 * and now and then takes a snapshot, checkpoints the index, runs GC and compacts. Before each
 * operation it prints what it is about to do (`~` + the line); after each batch it flushes and
 * prints `ok`: every operation announced before an `ok` is acknowledged and must survive the
 * kill; those after the last `ok` may or may not have happened (in order):
 *   `put KEY SHA256`  the key now holds these bytes
 *   `tomb KEY`        the key is gone from CURRENT
 *   `receipt ID`      the receipt is in the log
 */

import { writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { sealReceipt } from '../../src/runtime/receipt.js';
import { Store } from '../../src/store/store.js';
import { sampleReceipt } from './receipt-log-fixtures.js';

const args = process.argv.slice(2).filter((a) => a !== '--');
const [dir, seedText] = args as [string, string];
let seed = Number(seedText) >>> 0 || 1;
const rand = (): number => {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 2 ** 32;
};
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const bytesOf = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
};

const store = new Store(dir, { packThreshold: 4096, segmentBytes: 64 * 1024, checkpointEvery: 40 });
const userKeys: string[] = [];
const say = (...lines: string[]): void => {
  writeSync(1, `${lines.map((l) => `~${l}`).join('\n')}\n`);
};
let round = 0;
for (;;) {
  round++;
  for (let i = 0; i < 8; i++) {
    const r = rand();
    if (r < 0.5) {
      // An execution: input and output payloads, then the receipt naming them.
      const input = bytesOf(rand() < 0.1 ? 5000 + ((rand() * 3000) | 0) : 16 + ((rand() * 600) | 0));
      const output = bytesOf(8 + ((rand() * 200) | 0));
      const inKey = sha(Buffer.concat([Buffer.from('in'), input]));
      const outKey = sha(Buffer.concat([Buffer.from('out'), output]));
      const { id: _, ...body } = sampleReceipt(round * 100 + i, `kill-${seedText}`);
      const receipt = sealReceipt({
        ...body,
        input: { hash: inKey, size: input.length },
        output: { hash: outKey, size: output.length },
      });
      say(`put ${inKey} ${sha(input)}`, `put ${outKey} ${sha(output)}`, `receipt ${receipt.id}`);
      store.putPayload(inKey, input);
      store.putPayload(outKey, output);
      store.appendReceipt(receipt);
    } else if (r < 0.8 || userKeys.length === 0) {
      const bytes = bytesOf(rand() < 0.1 ? 6000 : 1 + ((rand() * 900) | 0));
      // Re-put under an existing key (shadowing) or a new one.
      const key =
        userKeys.length > 0 && rand() < 0.3 ? userKeys[(rand() * userKeys.length) | 0]! : sha(bytesOf(16));
      say(`put ${key} ${sha(bytes)}`);
      store.artifacts.put(bytes, { kind: 'blob', key, visibility: rand() < 0.2 ? 'published' : 'internal' });
      if (!userKeys.includes(key)) userKeys.push(key);
    } else {
      const key = userKeys.splice((rand() * userKeys.length) | 0, 1)[0]!;
      say(`tomb ${key}`);
      store.artifacts.tombstone(key);
    }
  }
  if (round % 7 === 0) store.snapshot(`round ${round}`);
  if (round % 5 === 0) store.checkpoint();
  if (round % 11 === 0) store.gc({ graceMs: 0, minDeadRatio: 0.05 });
  if (round % 13 === 0) store.compact();
  store.flush();
  store.receipts.flush();
  writeSync(1, 'ok\n');
  if (round % 4 === 0) await new Promise((r) => setImmediate(r));
}
