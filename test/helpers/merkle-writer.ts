/**
 * A writer for the ledger's kill -9 test (run with vite-node):
 *
 *   vite-node test/helpers/merkle-writer.ts -- STORE_DIR KEY_PEM START
 *
 * Appends receipts START, START+1, ... for ever, in bursts of 1..50 per event-loop turn, with a
 * tree head made every 5 ms, and prints `ready` once the store is open. It is meant to be killed.
 */

import { Store } from '../../src/store/store.js';
import { sampleReceipt } from './receipt-log-fixtures.js';

const [dir, key, start] = process.argv.slice(2).filter((a) => a !== '--') as [string, string, string];
const store = new Store(dir, { signingKey: key, sync: 'batch', syncIntervalMs: 3, headIntervalMs: 5 });
let n = Number(start);
process.stdout.write('ready\n');
function burst(): void {
  const count = 1 + Math.floor(Math.random() * 50);
  for (let i = 0; i < count; i++) store.appendReceipt(sampleReceipt(n++, 'kill'));
  setImmediate(burst);
}
burst();
