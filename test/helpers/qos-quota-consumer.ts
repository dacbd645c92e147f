/**
 * A consumer process for the quota tests (run with vite-node):
 *
 *   vite-node test/helpers/qos-quota-consumer.ts -- hammer FILE LIMIT COUNT SEED
 *     Opens FILE shared (plan: LIMIT, never resets), prints `ready`, waits for a line on stdin,
 *     then tries COUNT consumes of 1..3 units (async and sync alternately) and prints
 *     `{"acked":units allowed,"allowed":n,"refused":n}`.
 *   vite-node test/helpers/qos-quota-consumer.ts -- crash FILE SHARING ACKFILE
 *     Consumes amount(i) = i % 5 + 1 for i = 0, 1, … forever; after each acknowledged consume
 *     appends `i\n` to ACKFILE (a regular file: the line survives SIGKILL once written).
 */

import { appendFileSync, closeSync, openSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Quotas, type QuotaSharing } from '../../src/qos/quotas/index.js';

const args = process.argv.slice(2).filter((a) => a !== '--');
const mode = args[0];

if (mode === 'hammer') {
  const [, file, limit, count, seed] = args as [string, string, string, string, string];
  const quotas = new Quotas({ plan: { limit: Number(limit), period: 'never' }, file, sharing: 'shared' });
  let s = Number(seed) >>> 0 || 1;
  const rand = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
  process.stdout.write('ready\n');
  const rl = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => rl.once('line', () => resolve()));
  rl.close();
  let acked = 0;
  let allowed = 0;
  let refused = 0;
  // Two concurrent loops in this process as well: async callers interleave with each other too.
  const loop = async (n: number, sync: boolean) => {
    for (let i = 0; i < n; i++) {
      const amount = 1 + Math.floor(rand() * 3);
      const d = sync ? quotas.tryConsumeSync('k', amount) : await quotas.tryConsume('k', amount);
      if (d.allowed) {
        acked += amount;
        allowed++;
      } else refused++;
      if (sync) await new Promise((r) => setImmediate(r));
    }
  };
  const half = Math.floor(Number(count) / 2);
  await Promise.all([loop(half, false), loop(Number(count) - half, true)]);
  quotas.close();
  process.stdout.write(`${JSON.stringify({ acked, allowed, refused })}\n`);
} else if (mode === 'crash') {
  const [, file, sharing, ackFile] = args as [string, string, QuotaSharing, string];
  const quotas = new Quotas({ plan: { limit: Number.MAX_SAFE_INTEGER, period: 'never' }, file, sharing });
  const ack = openSync(ackFile, 'a');
  for (let i = 0; ; i++) {
    quotas.tryConsumeSync('k', (i % 5) + 1);
    writeSync(ack, `${i}\n`);
    if (i === 1_000_000_000) break;
  }
  closeSync(ack);
  appendFileSync(ackFile, 'never\n');
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
