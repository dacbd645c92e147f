/**
 * A writer process for the concurrency tests (run with vite-node):
 *
 *   vite-node test/helpers/receipt-log-writer.ts -- STORE_DIR TAG COUNT MODE [SYNC]
 *
 * MODE 'once': open the store for writing; on STORE_LOCKED print `locked <holderPid>` and exit 3.
 * MODE 'retry': retry the open until the lock is free. MODE 'hold': open, print `ready`, wait for
 * a line on stdin, then append. Each acknowledged receipt (append returned; for sync 'always' it is
 * on disk) is printed as `ack <id>`; `closed` after close returned.
 */

import { Store } from '../../src/store/store.js';
import { StoreLockedError } from '../../src/store/errors.js';
import { sampleReceipt } from './receipt-log-fixtures.js';

const args = process.argv.slice(2).filter((a) => a !== '--');
const [dir, tag, countText, mode, sync] = args as [string, string, string, string, string | undefined];
const count = Number(countText);
const syncPolicy = (sync ?? 'batch') as 'always' | 'batch' | 'never';

function open(): Store | undefined {
  try {
    return new Store(dir, { sync: syncPolicy });
  } catch (err) {
    if (err instanceof StoreLockedError && mode !== 'retry') {
      process.stdout.write(`locked ${err.holderPid ?? 'unknown'}\n`);
      process.exit(3);
    }
    if (err instanceof StoreLockedError) return undefined;
    throw err;
  }
}

let store = open();
while (!store) {
  await new Promise((r) => setTimeout(r, 5));
  store = open();
}
if (mode === 'hold') {
  process.stdout.write('ready\n');
  await new Promise((r) => process.stdin.once('data', r));
  process.stdin.destroy(); // let the process exit when done
}
const lines: string[] = [];
for (let i = 0; i < count; i++) {
  const receipt = sampleReceipt(i, tag);
  store.appendReceipt(receipt);
  lines.push(`ack ${receipt.id}`);
  // Let batches go out between appends, as a serving process would.
  if (i % 100 === 99) {
    process.stdout.write(`${lines.splice(0).join('\n')}\n`);
    await new Promise((r) => setImmediate(r));
  }
}
if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
store.close();
process.stdout.write('closed\n');
