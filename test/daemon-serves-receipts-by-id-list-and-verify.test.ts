/**
 * Receipts over the daemon's API (issue #11): the real daemon process on a unix socket, a real
 * HTTP client (node:http, and curl once). Executions through the daemon seal who asked (the
 * peer's uid) and the request id into their receipts; receipts are got by id, listed with
 * filters and pages, verified by replay; bad parameters are 400s naming the parameter; a
 * runner reads only its own receipts.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ReceiptBody, sealReceipt } from '../src/runtime/receipt.js';
import { Store } from '../src/store/store.js';
import { REPO_ROOT, startTestDaemon, type TestDaemon } from './helpers/daemon.js';

const me = `uid:${process.getuid!()}`;
const echo = readFileSync(join(REPO_ROOT, 'wasm', 'echo.wasm'));

/** A receipt sealed by someone else (another uid), as if run earlier through the daemon. */
function othersReceipt(n: number) {
  const body: ReceiptBody = {
    v: 1,
    buildId: 'e'.repeat(64),
    backend: 'wasm',
    entry: 'echo',
    input: { hash: n.toString(16).padStart(64, '0'), size: n },
    output: null,
    startedAt: new Date(Date.UTC(2020, 0, 1, 0, 0, n)).toISOString(),
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
    status: 'completed',
    error: null,
    parents: [],
    actor: 'uid:4242',
    requestId: `other-${n}`,
  };
  return sealReceipt(body);
}

async function uploadEcho(daemon: TestDaemon): Promise<string> {
  const r = await daemon.request({
    method: 'POST',
    path: '/v1/builds',
    body: { kind: 'wasm', name: 'echo.wasm', base64: echo.toString('base64') },
  });
  if (r.status !== 201) throw new Error(`upload: ${r.status} ${r.text}`);
  return r.body.id;
}

async function execute(daemon: TestDaemon, build: string, entry: string, requestId?: string) {
  const r = await daemon.request({
    method: 'POST',
    path: '/v1/executions',
    body: { build, entry, input: { kind: 'text', text: `hello ${entry}` } },
    ...(requestId === undefined ? {} : { headers: { 'x-request-id': requestId } }),
  });
  if (r.status !== 200) throw new Error(`execute: ${r.status} ${r.text}`);
  return r.body.receipt;
}

describe('receipts over the API, as an admin', () => {
  let daemon: TestDaemon;
  let build: string;
  // biome-ignore lint/suspicious/noExplicitAny: receipts as the API returns them
  const receipts: any[] = [];

  beforeAll(async () => {
    daemon = await startTestDaemon();
    build = await uploadEcho(daemon);
    for (const [i, entry] of ['echo', 'reverse', 'fail', 'echo', 'fail', 'echo'].entries()) {
      receipts.push(await execute(daemon, build, entry, `trace-${i}`));
    }
  }, 120_000);
  afterAll(async () => {
    await daemon?.stop();
  });

  it('seals the caller and the request id into each receipt', () => {
    for (const [i, r] of receipts.entries()) {
      expect(r.actor).toBe(me);
      expect(r.requestId).toBe(`trace-${i}`);
    }
  });

  it('gets a receipt by id; an unknown id is a 404 naming it, a malformed one a 400', async () => {
    const got = await daemon.request({ path: `/v1/receipts/${receipts[2].id}` });
    expect(got.status).toBe(200);
    expect(got.body).toEqual(receipts[2]);

    const unknown = 'f'.repeat(64);
    const missing = await daemon.request({ path: `/v1/receipts/${unknown}` });
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toContain(unknown);

    const bad = await daemon.request({ path: '/v1/receipts/not-an-id' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.path).toBe('params.id');
  });

  it('lists newest first, filters by build, actor, status and time, and pages with next', async () => {
    const ids = receipts.map((r) => r.id);
    const all = await daemon.request({ path: '/v1/receipts' });
    expect(all.status).toBe(200);
    expect(all.body.receipts.map((r: { id: string }) => r.id)).toEqual([...ids].reverse());
    expect(all.body.next).toBeNull();

    const failed = await daemon.request({ path: `/v1/receipts?status=failed&build=${build}&order=oldest` });
    expect(failed.body.receipts.map((r: { id: string }) => r.id)).toEqual([ids[2], ids[4]]);

    const mine = await daemon.request({ path: `/v1/receipts?actor=${encodeURIComponent(me)}&backend=wasm` });
    expect(mine.body.receipts).toHaveLength(6);
    const nobody = await daemon.request({ path: '/v1/receipts?actor=uid%3A4242' });
    expect(nobody.body).toEqual({ receipts: [], next: null });

    const since = receipts[0].startedAt;
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const timed = await daemon.request({
      path: `/v1/receipts?since=${encodeURIComponent(since)}&until=${encodeURIComponent(future)}`,
    });
    expect(timed.body.receipts).toHaveLength(6);
    const before = await daemon.request({ path: `/v1/receipts?until=${encodeURIComponent(since)}` });
    expect(before.body.receipts).toEqual([]);

    // Pages of 4: every receipt once, in order, then next is null.
    const paged: string[] = [];
    let path = '/v1/receipts?limit=4&order=oldest';
    for (let pages = 0; ; pages++) {
      const page = await daemon.request({ path });
      expect(page.status).toBe(200);
      paged.push(...page.body.receipts.map((r: { id: string }) => r.id));
      if (page.body.next === null) break;
      expect(pages).toBeLessThan(3);
      path = `/v1/receipts?limit=4&order=oldest&cursor=${page.body.next}`;
    }
    expect(paged).toEqual(ids);
  });

  it('refuses bad parameters with a 400 naming each', async () => {
    const cursor = (await daemon.request({ path: '/v1/receipts?limit=1' })).body.next;
    const cases: [string, string][] = [
      ['limit=0', 'querystring.limit'],
      ['limit=1001', 'querystring.limit'],
      ['limit=ten', 'querystring.limit'],
      ['status=crashed', 'querystring.status'],
      ['backend=cuda', 'querystring.backend'],
      ['build=abc', 'querystring.build'],
      ['since=yesterday', 'querystring.since'],
      ['until=2026-02-31T00:00:00Z', 'querystring.until'],
      ['order=sideways', 'querystring.order'],
      ['cursor=%24%24', 'querystring.cursor'],
      ['cursor=bm90LWEtY3Vyc29y', 'querystring.cursor'],
      [`cursor=${cursor}&status=failed`, 'querystring.cursor'],
      ['status=failed&status=completed', 'querystring.status'],
      ['bogus=1', 'querystring.bogus'],
      [`actor=${'a'.repeat(257)}`, 'querystring.actor'],
    ];
    for (const [query, path] of cases) {
      const r = await daemon.request({ path: `/v1/receipts?${query}` });
      expect({ query, status: r.status, path: r.body?.error?.path }).toEqual({ query, status: 400, path });
      expect(r.text).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
    }
  });

  it('verifies a receipt by replaying it (with curl)', async () => {
    const out = execFileSync('curl', [
      '-sS',
      '--unix-socket',
      daemon.socket,
      '-X',
      'POST',
      '-w',
      '\n%{http_code}',
      `http://localhost/v1/receipts/${receipts[1].id}/verify`,
    ]).toString();
    const [json, status] = out.split('\n');
    expect(status).toBe('200');
    const report = JSON.parse(json!);
    expect(report).toMatchObject({ receiptId: receipts[1].id, match: true, problem: null, mismatches: [] });

    const missing = await daemon.request({ method: 'POST', path: `/v1/receipts/${'0'.repeat(64)}/verify` });
    expect(missing.status).toBe(404);
  });
});

describe('receipts over the API, as a runner', () => {
  let daemon: TestDaemon;
  const storeParent = mkdtempSync(join(tmpdir(), 'tp-receipts-runner-'));
  const others = [othersReceipt(1), othersReceipt(2)];
  let mineId: string;

  beforeAll(async () => {
    // Someone else's receipts in the store before the daemon opens it.
    const storeDir = join(storeParent, 'store');
    const store = new Store(storeDir);
    for (const r of others) store.appendReceipt(r);
    store.close();
    daemon = await startTestDaemon({
      store: storeDir,
      config: { policy: { uids: { [String(process.getuid!())]: ['runner'] } } },
    });
    const build = await uploadEcho(daemon);
    mineId = (await execute(daemon, build, 'echo')).id;
  }, 120_000);
  afterAll(async () => {
    await daemon?.stop();
    rmSync(storeParent, { recursive: true, force: true });
  });

  it('indexed the receipts already in the store as it started', () => {
    expect(daemon.logs().find((l) => l.msg === 'receipt index built')).toMatchObject({ receipts: 2 });
  });

  it('lists only its own receipts, and may not ask for another actor’s', async () => {
    const list = await daemon.request({ path: '/v1/receipts' });
    expect(list.status).toBe(200);
    expect(list.body.receipts.map((r: { id: string }) => r.id)).toEqual([mineId]);
    const others = await daemon.request({ path: '/v1/receipts?actor=uid%3A4242' });
    expect(others.status).toBe(403);
  });

  it('gets its own receipt; another’s and an unknown id are both 403 (existence is not disclosed)', async () => {
    expect((await daemon.request({ path: `/v1/receipts/${mineId}` })).status).toBe(200);
    expect((await daemon.request({ path: `/v1/receipts/${others[0]!.id}` })).status).toBe(403);
    expect((await daemon.request({ path: `/v1/receipts/${'d'.repeat(64)}` })).status).toBe(403);
  });
});
