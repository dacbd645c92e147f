/**
 * `thunderpac receipt list` with filters, in process and read-only beside a store's writer
 * (issue #11): without flags the ids in log order as before; with flags the store's receipt
 * index; a bad flag value exits 2 naming the flag.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Receipt, type ReceiptBody, sealReceipt } from '../src/runtime/receipt.js';
import { Store } from '../src/store/store.js';
import { cli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'tp-cli-receipt-list-'));
const storeDir = join(dir, 'store');
const BUILD_A = 'a'.repeat(64);
const BUILD_B = 'b'.repeat(64);
const receipts: Receipt[] = [];
let writer: Store;

function receipt(n: number, buildId: string, actor: string | undefined, status: 'completed' | 'failed') {
  const body: ReceiptBody = {
    v: 1,
    buildId,
    backend: n % 4 === 0 ? 'p4' : 'wasm',
    entry: 'echo',
    input: { hash: n.toString(16).padStart(64, '0'), size: n },
    output: null,
    startedAt: new Date(Date.UTC(2026, 11, 5, 8, 0, n)).toISOString(),
    durationNs: n,
    resources: { cpuUs: null, peakMemoryBytes: null, fuelUsed: null, engineNs: null },
    sandbox: {
      limits: { timeoutMs: 1, memoryMb: 1, maxInputBytes: 1, maxOutputBytes: 1 },
      fs: { kind: 'none' },
      allowedImports: [],
      network: false,
    },
    determinism: { seed: 0, flags: [] },
    runtime: {},
    status,
    error: null,
    parents: [],
    ...(actor === undefined ? {} : { actor, requestId: `req-${n}` }),
  };
  return sealReceipt(body);
}

beforeAll(() => {
  // A writer holds the store (as a daemon would) for the whole file.
  writer = new Store(storeDir);
  for (let n = 0; n < 12; n++) {
    const r = receipt(
      n,
      n % 2 === 0 ? BUILD_A : BUILD_B,
      n % 3 === 0 ? undefined : n % 3 === 1 ? 'uid:1000' : 'token:ci-bot',
      n % 5 === 0 ? 'failed' : 'completed',
    );
    writer.appendReceipt(r);
    receipts.push(r);
  }
  writer.receipts.flush();
});
afterAll(() => {
  writer.close();
  rmSync(dir, { recursive: true, force: true });
});

const ids = (rs: readonly Receipt[]) => rs.map((r) => `${r.id}\n`).join('');
const list = (...flags: string[]) => cli('receipt', 'list', '--store', storeDir, ...flags);

describe('receipt list', () => {
  it('without flags prints every id in log order, as before', async () => {
    const r = await list();
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toBe(ids(receipts));
  });

  it('filters by build, actor, status, backend and time, in either order, up to a limit', async () => {
    expect((await list('--build', BUILD_A)).out).toBe(ids(receipts.filter((r) => r.buildId === BUILD_A)));
    expect((await list('--actor', 'uid:1000', '--status', 'completed')).out).toBe(
      ids(receipts.filter((r) => r.actor === 'uid:1000' && r.status === 'completed')),
    );
    expect((await list('--backend', 'p4')).out).toBe(ids(receipts.filter((r) => r.backend === 'p4')));
    expect((await list('--since', '2026-12-05T08:00:03Z', '--until', '2026-12-05T09:00:06+01:00')).out).toBe(
      ids(receipts.slice(3, 6)),
    );
    expect((await list('--order', 'newest', '--limit', '2')).out).toBe(ids(receipts.slice(-2).reverse()));
    expect((await list('--actor', 'uid:404')).out).toBe('');
  });

  it('lists beside the writer that holds the store, up to its latest flushed receipt', async () => {
    const late = receipt(99, BUILD_B, 'uid:1000', 'failed');
    writer.appendReceipt(late);
    writer.receipts.flush();
    receipts.push(late);
    expect((await list('--status', 'failed', '--order', 'newest', '--limit', '1')).out).toBe(ids([late]));
  });

  it('prints the receipts as a JSON array with --json', async () => {
    const r = await list('--status', 'failed', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual(receipts.filter((x) => x.status === 'failed'));
    expect(JSON.parse((await list('--actor', 'nobody', '--json')).out)).toEqual([]);
  });

  it('exits 2 naming the flag for a bad value', async () => {
    const cases: [string[], RegExp][] = [
      [['--since', 'yesterday'], /--since/],
      [['--until', '2026-02-30T00:00:00Z'], /--until/],
      [['--limit', '0'], /--limit/],
      [['--limit', 'many'], /--limit/],
      [['--status', 'complete'], /--status/],
      [['--backend', 'cuda'], /--backend/],
      [['--build', 'abc'], /--build/],
      [['--order', 'random'], /--order/],
    ];
    for (const [flags, named] of cases) {
      const r = await list(...flags);
      expect({ flags, code: r.code }).toEqual({ flags, code: 2 });
      expect(r.err).toMatch(named);
      expect(r.out).toBe('');
    }
  });
});
