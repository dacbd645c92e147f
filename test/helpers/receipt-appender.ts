/**
 * A writer process for the receipt index tests (run with vite-node):
 *
 *   vite-node test/helpers/receipt-appender.ts -- STORE_DIR
 *
 * Opens the store for writing (the head moves only when told: syncIntervalMs is an hour),
 * prints `ready`, then reads commands from stdin, one a line:
 *   `append N ACTOR`  append N receipts attributed to ACTOR; once they are written to the file
 *                     (not committed by the head), print `written ID...`;
 *   `flush`           move the head over them; print `flushed`;
 *   `close`           close the store and exit; print `closed`.
 */

import { createInterface } from 'node:readline';
import { type ReceiptBody, sealReceipt } from '../../src/runtime/receipt.js';
import { Store } from '../../src/store/store.js';

const [dir] = process.argv.slice(2).filter((a) => a !== '--') as [string];
const store = new Store(dir, { sync: 'batch', syncIntervalMs: 3_600_000 });
let n = 0;

function receipt(actor: string) {
  n++;
  const body: ReceiptBody = {
    v: 1,
    buildId: (n % 2 === 0 ? 'a' : 'b').repeat(64),
    backend: 'wasm',
    entry: 'echo',
    input: { hash: n.toString(16).padStart(64, '0'), size: n },
    output: null,
    startedAt: new Date(1_800_000_000_000 + n * 1000).toISOString(),
    durationNs: n,
    resources: { cpuUs: null, peakMemoryBytes: null, fuelUsed: 1, engineNs: null },
    sandbox: {
      limits: { timeoutMs: 1, memoryMb: 1, maxInputBytes: 1, maxOutputBytes: 1 },
      fs: { kind: 'none' },
      allowedImports: [],
      network: false,
    },
    determinism: { seed: 0, flags: [] },
    runtime: { node: process.versions.node },
    status: n % 3 === 0 ? 'failed' : 'completed',
    error: null,
    parents: [],
    actor,
    requestId: `req-${n}`,
  };
  return sealReceipt(body);
}

process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  const [command, count, actor] = line.split(' ');
  if (command === 'append') {
    const ids: string[] = [];
    for (let i = 0; i < Number(count); i++) {
      const r = receipt(actor ?? 'uid:0');
      store.appendReceipt(r);
      ids.push(r.id);
    }
    // The log writes its queue on the setImmediate that the first append scheduled: this one runs after it.
    await new Promise((r) => setImmediate(r));
    process.stdout.write(`written ${ids.join(' ')}\n`);
  } else if (command === 'flush') {
    store.receipts.flush();
    process.stdout.write('flushed\n');
  } else if (command === 'close') {
    store.close();
    process.stdout.write('closed\n');
    break;
  }
}
