/**
 * The store through the daemon (issue #13): two real daemons on their own stores; executions in
 * one, its build exported as a bundle over the API and imported into the other, where the
 * receipts are served and replay; snapshots, GC (dry run) and fsck; a damaged bundle is a 422
 * naming where, and a bad GC body a 400 naming the field.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.js';
import { REPO_ROOT, startTestDaemon, type TestDaemon } from './helpers/daemon.js';

const echo = readFileSync(join(REPO_ROOT, 'wasm', 'echo.wasm'));

describe('the store over the API', () => {
  let a: TestDaemon;
  let b: TestDaemon;
  let build: string;
  const receipts: string[] = [];

  beforeAll(async () => {
    [a, b] = await Promise.all([startTestDaemon(), startTestDaemon()]);
    const up = await a.request({
      method: 'POST',
      path: '/v1/builds',
      body: { kind: 'wasm', name: 'echo.wasm', base64: echo.toString('base64') },
    });
    expect(up.status).toBe(201);
    build = up.body.id;
    for (const text of ['alpha', 'beta']) {
      const r = await a.request({
        method: 'POST',
        path: '/v1/executions',
        body: { build, entry: 'reverse', input: { kind: 'text', text } },
      });
      expect(r.status).toBe(200);
      receipts.push(r.body.receipt.id);
    }
  }, 120_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('GET /v1/store and a snapshot taken and listed', async () => {
    const stat = await a.request({ path: '/v1/store' });
    expect(stat.status).toBe(200);
    expect(stat.body).toMatchObject({ receipts: 2 });
    const snap = await a.request({ method: 'POST', path: '/v1/store/snapshots', body: { label: 'api' } });
    expect(snap.status).toBe(201);
    const list = await a.request({ path: '/v1/store/snapshots' });
    expect(list.body.map((s: { id: string }) => s.id)).toContain(snap.body.id);
  });

  it('GC dry run reports; a bad retention is a 400 naming the field', async () => {
    const gc = await a.request({
      method: 'POST',
      path: '/v1/store/gc',
      body: { dryRun: true, retention: { keepReceipts: 1 } },
    });
    expect(gc.status).toBe(200);
    expect(gc.body).toMatchObject({ dryRun: true, receipts: { total: 2, kept: 1 } });
    const bad = await a.request({
      method: 'POST',
      path: '/v1/store/gc',
      body: { retention: { keepReceipts: -1 } },
    });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('keepReceipts');
  });

  it('a build exported from one host imports into another, where its receipts are served and replay', async () => {
    const ex = await a.request({ method: 'POST', path: '/v1/store/export', body: { builds: [build] } });
    expect(ex.status).toBe(200);
    expect(ex.headers['content-type']).toContain('application/octet-stream');
    const bundle = ex.raw;
    expect(bundle.subarray(0, 8).toString()).toBe('TPBNDL1\n');

    expect((await b.request({ path: `/v1/receipts/${receipts[1]}` })).status).toBe(404);
    const im = await b.request({
      method: 'POST',
      path: '/v1/store/import',
      body: bundle,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(im.status, im.text).toBe(200);
    expect(im.body).toMatchObject({ receipts: 2 });
    const got = await b.request({ path: `/v1/receipts/${receipts[1]}` });
    expect(got.status).toBe(200);
    expect(got.body.id).toBe(receipts[1]);
    const verify = await b.request({ method: 'POST', path: `/v1/receipts/${receipts[1]}/verify` });
    expect(verify.status).toBe(200);
    expect(verify.body.match).toBe(true);

    // A flipped byte: 422, naming where, nothing imported.
    const damaged = Buffer.from(bundle);
    damaged[damaged.length >> 1]! ^= 0x10;
    const c = await startTestDaemon();
    try {
      const refused = await c.request({
        method: 'POST',
        path: '/v1/store/import',
        body: damaged,
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(refused.status).toBe(422);
      expect(refused.body.error.code).toBe('BUNDLE_INVALID');
      expect(refused.body.error.path).toMatch(/^body@\d+$|^\$\./);
      expect((await c.request({ path: '/v1/store' })).body.artifacts).toBe(0);
    } finally {
      await c.stop();
    }
  }, 120_000);

  it('the CLI runs store commands through the daemon (--socket), where the store is locked', async () => {
    const locked = await cli('store', 'gc', '--dry-run', '--store', a.store);
    expect(locked.code).toBe(2);
    expect(locked.err).toContain('STORE_LOCKED');
    const stat = await cli('store', 'stat', '--socket', a.socket, '--json');
    expect(stat.code, stat.err).toBe(0);
    expect(JSON.parse(stat.out)).toMatchObject({ receipts: 2 });
    const snap = await cli('store', 'snapshot', '--label', 'cli', '--socket', a.socket, '--json');
    expect(JSON.parse(snap.out)).toMatchObject({ label: 'cli' });
    const out = join(a.dir, 'cli.tpb');
    expect((await cli('store', 'export', out, '--receipt', receipts[0]!, '--socket', a.socket)).code).toBe(0);
    const c = await startTestDaemon();
    try {
      const im = await cli('store', 'import', out, '--socket', c.socket, '--json');
      expect(im.code, im.err).toBe(0);
      expect(JSON.parse(im.out)).toMatchObject({ receipts: 1 });
      const fsck = await cli('store', 'fsck', '--socket', c.socket);
      expect(fsck.code).toBe(0);
    } finally {
      await c.stop();
    }
  }, 120_000);

  it('fsck over the API is clean', async () => {
    const r = await b.request({ path: '/v1/store/fsck' });
    expect(r.status).toBe(200);
    expect(r.body.ok, JSON.stringify(r.body.problems)).toBe(true);
  });
});
