/**
 * A host process for the fleet mirror's kill -9 test (run with vite-node):
 *
 *   vite-node test/helpers/fleet-appender.ts -- STORE_DIR POSTGRES_URL HOST
 *
 * Opens the store in fleet mode (mirroring at once, in batches of 37) and appends receipts
 * without end, 25 per event-loop turn, until it is killed; prints `ready` once it runs.
 */

import { sealReceiptEncoded } from '../../src/runtime/receipt.js';
import { Store } from '../../src/store/store.js';
import { syntheticReceiptBody } from './receipt-bodies.js';

const [dir, url, host] = process.argv.slice(2).filter((a) => a !== '--') as [string, string, string];
const store = new Store(dir, {
  fleet: { postgres: url, host, delayMs: 0, batchSize: 37, retryMinMs: 20, retryMaxMs: 200 },
});
let n = store.receipts.size;

function append(): void {
  for (let i = 0; i < 25; i++) {
    n++;
    const body = syntheticReceiptBody({
      buildId: 'f'.repeat(64),
      entry: 'step',
      input: { hash: `${host.length.toString(16)}${n.toString(16)}`.padStart(64, '0'), size: n },
      output: null,
      startedAt: new Date().toISOString(),
      durationNs: n,
      runtime: { pid: String(process.pid) },
      status: 'completed',
      parents: [],
    });
    const { receipt, body: bytes } = sealReceiptEncoded(body);
    store.appendReceipt(receipt, bytes);
  }
  setTimeout(append, 1);
}

append();
process.stdout.write('ready\n');
