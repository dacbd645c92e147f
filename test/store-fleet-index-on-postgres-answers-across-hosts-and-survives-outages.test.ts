/**
 * The fleet index (issue #13, part E): two stores ("two hosts") mirror their receipts into one
 * real PostgreSQL cluster, and either answers for both — receipt queries (build / actor / status /
 * backend / time / host, paged both ways) equal to a brute-force filter over every receipt
 * appended on both hosts, and DAG lineage across hosts (a step on host B naming a step on host A
 * as its parent; produced-by, derived-from, lineage). A database that is down or hung never fails
 * or slows an append; the mirror catches up when it comes back, also after the store was closed
 * and reopened meanwhile, and never inserts a receipt twice. A second store under a host name
 * already in use is refused (FleetMismatchError), an altered row is a FleetIntegrityError, and
 * bad options name their field.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/daemon/config.js';
import { ValidationError } from '../src/runtime/errors.js';
import { type Receipt, sealReceipt } from '../src/runtime/receipt.js';
import {
  FleetConfigError,
  FleetIntegrityError,
  FleetMismatchError,
  FleetUnavailableError,
  parseFleetOptions,
} from '../src/store/fleet/fleet.js';
import type { FleetQuery } from '../src/store/fleet/fleet-index.js';
import { ensureSchema } from '../src/store/fleet/schema.js';
import { ReceiptLog } from '../src/store/receipt-log.js';
import { Store } from '../src/store/store.js';
import { type PostgresServer, postgresMissing, startPostgresServer } from './helpers/postgres-server.js';
import { syntheticReceiptBody } from './helpers/receipt-bodies.js';

const VITE_NODE = join(process.cwd(), 'node_modules', '.bin', 'vite-node');
const FLEET_APPENDER = join(process.cwd(), 'test', 'helpers', 'fleet-appender.ts');

const missing = postgresMissing();
if (missing) console.warn(`skipping the fleet index tests: ${missing}`);

const BUILDS = ['1'.repeat(64), '2'.repeat(64), '3'.repeat(64)];
const T0 = Date.parse('2026-12-05T00:00:00.000Z');
const hex = (n: number) => n.toString(16).padStart(64, '0');

let serial = 0;
interface Spec {
  build: number;
  actor: string | undefined;
  status: 'completed' | 'failed';
  backend: 'wasm' | 'onnx' | 'ebpf' | 'p4';
  at: number;
  input?: string;
  output?: string | null;
  parents?: string[];
}
function receiptOf(s: Spec): Receipt {
  serial++;
  return sealReceipt(
    syntheticReceiptBody({
      buildId: BUILDS[s.build]!,
      backend: s.backend,
      input: { hash: s.input ?? hex(0x1000000 + serial), size: serial },
      output: s.output === undefined || s.output === null ? null : { hash: s.output, size: 1 },
      startedAt: new Date(T0 + s.at * 1000).toISOString(),
      durationNs: serial,
      status: s.status,
      parents: s.parents ?? [],
      ...(s.actor === undefined ? {} : { actor: s.actor, requestId: `r${serial}` }),
    }),
  );
}

const spec: fc.Arbitrary<Spec> = fc.record({
  build: fc.nat(BUILDS.length - 1),
  actor: fc.constantFrom(undefined, 'uid:0', 'uid:1000', 'token:ci-bot'),
  status: fc.constantFrom('completed' as const, 'failed' as const),
  backend: fc.constantFrom('wasm' as const, 'onnx' as const, 'ebpf' as const, 'p4' as const),
  at: fc.nat(6),
});
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tp-fleet-'));
  dirs.push(d);
  return d;
}

async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(missing !== undefined)('fleet index on a real PostgreSQL cluster', () => {
  let pg: PostgresServer;
  let sql: postgres.Sql;
  beforeAll(async () => {
    pg = await startPostgresServer();
    sql = postgres(pg.url, { max: 1, onnotice: false });
    await ensureSchema(sql); // the tests read the tables before any store has made them
  }, 60_000);
  afterAll(async () => {
    await sql?.end({ timeout: 1 });
    await pg?.stop();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const fleet = (host: string, extra: object = {}) => ({
    fleet: { postgres: pg.url, host, delayMs: 5, retryMinMs: 50, retryMaxMs: 400, timeoutMs: 1500, ...extra },
  });
  const rowCount = async (host?: string) => {
    const [r] = host
      ? await sql`select count(*)::int as n from thunderpac_fleet_receipts where host = ${host}`
      : await sql`select count(*)::int as n from thunderpac_fleet_receipts`;
    return (r as { n: number }).n;
  };

  it('two hosts: queries equal a brute-force filter over both logs, and DAG lineage crosses hosts', async () => {
    const a = new Store(tempDir(), fleet('host-a'));
    const b = new Store(tempDir(), fleet('host-b'));
    try {
      // A DAG across hosts: A parses X → Y, B extracts Y → Z (parent: A's step), A classifies Z → W.
      const [X, Y, Z, W] = [hex(0xa1), hex(0xa2), hex(0xa3), hex(0xa4)];
      const base = { build: 0, actor: 'uid:0', status: 'completed' as const, at: 1 };
      const s1 = receiptOf({ ...base, backend: 'p4', input: X, output: Y });
      a.appendReceipt(s1);
      await a.fleet!.sync();
      const s2 = receiptOf({ ...base, backend: 'wasm', input: Y, output: Z, parents: [s1.id] });
      b.appendReceipt(s2);
      await b.fleet!.sync();
      const s3 = receiptOf({ ...base, backend: 'onnx', input: Z, output: W, parents: [s2.id] });
      a.appendReceipt(s3);
      // A step on B naming A's last step and a parent no host has mirrored.
      const s4 = receiptOf({ ...base, backend: 'wasm', parents: [s3.id, hex(0xdead)] });
      b.appendReceipt(s4);
      // Bulk receipts on both hosts, interleaved.
      const all: Receipt[] = [s1, s2, s3, s4];
      const specs = fc.sample(fc.tuple(fc.boolean(), spec), 240);
      for (const [onA, s] of specs) {
        const r = receiptOf(s);
        (onA ? a : b).appendReceipt(r);
        all.push(r);
      }
      await Promise.all([a.fleet!.sync(), b.fleet!.sync()]);
      expect(await rowCount()).toBe(all.length);
      const hostOf = new Map<string, string>();
      for (const r of await sql<
        { id: string; host: string }[]
      >`select id, host from thunderpac_fleet_receipts`)
        hostOf.set(r.id, r.host);

      // Lineage, from the host that did not run the last step's parent.
      const lineage = await b.fleet!.index.lineage(s3.id);
      expect(lineage.receipts.map((l) => [l.receipt.id, l.host])).toEqual([
        [s3.id, 'host-a'],
        [s2.id, 'host-b'],
        [s1.id, 'host-a'],
      ]);
      expect(lineage.edges).toEqual([
        { child: s3.id, parent: s2.id },
        { child: s2.id, parent: s1.id },
      ]);
      expect(lineage.missing).toEqual([]);
      const partial = await a.fleet!.index.lineage(s4.id);
      expect(partial.receipts.map((l) => [l.receipt.id, l.host])).toEqual([
        [s4.id, 'host-b'],
        [s3.id, 'host-a'],
        [s2.id, 'host-b'],
        [s1.id, 'host-a'],
      ]);
      expect(partial.missing).toEqual([hex(0xdead)]);
      expect(await b.fleet!.index.producedBy(W)).toEqual({
        hash: W,
        producers: [s3.id],
        ancestors: [s2.id, s1.id],
      });
      const derived = await a.fleet!.index.derivedFrom(X);
      expect(derived.receipts.map((d) => [d.receipt, d.depth, d.via.kind])).toEqual([
        [s1.id, 1, 'consumed'],
        // Reached both ways (consumed the output, names the step); the parent edge comes first, as locally.
        [s2.id, 2, 'child'],
        [s3.id, 3, 'child'],
        [s4.id, 4, 'child'],
      ]);
      expect(derived.truncated).toBe(false);
      expect((await a.fleet!.index.derivedFrom(X, 2)).truncated).toBe(true);
      expect(await a.fleet!.index.children(s1.id)).toEqual([s2.id]);
      expect((await a.fleet!.index.get(s2.id))?.host).toBe('host-b');

      // Queries: paging through the fleet gives what filtering all receipts gives.
      const query = fc.record(
        {
          build: fc.constantFrom(...BUILDS, '9'.repeat(64)),
          actor: fc.constantFrom('uid:0', 'uid:1000', 'token:ci-bot', 'uid:404'),
          status: fc.constantFrom('completed', 'failed'),
          backend: fc.constantFrom('wasm', 'onnx', 'ebpf', 'p4'),
          host: fc.constantFrom('host-a', 'host-b'),
          since: fc.nat(7).map(iso),
          until: fc.nat(7).map(iso),
          limit: fc.integer({ min: 1, max: 60 }),
          order: fc.constantFrom('newest' as const, 'oldest' as const),
        },
        { requiredKeys: [] },
      );
      const seqOf = new Map<string, number>();
      for (const r of await sql<{ id: string; seq: string }[]>`select id, seq from thunderpac_fleet_receipts`)
        seqOf.set(r.id, Number(r.seq));
      const byArrival = [...all].sort((x, y) => seqOf.get(x.id)! - seqOf.get(y.id)!);
      // Within a host, arrival order is its log order.
      for (const host of ['host-a', 'host-b']) {
        const own = all.filter((r) => hostOf.get(r.id) === host).map((r) => r.id);
        expect(byArrival.filter((r) => hostOf.get(r.id) === host).map((r) => r.id)).toEqual(own);
      }
      await fc.assert(
        fc.asyncProperty(query, fc.boolean(), async (q: FleetQuery, fromA) => {
          const expected = byArrival.filter((r) => {
            const t = Date.parse(r.startedAt);
            return (
              (q.build === undefined || r.buildId === q.build) &&
              (q.actor === undefined || r.actor === q.actor) &&
              (q.status === undefined || r.status === q.status) &&
              (q.backend === undefined || r.backend === q.backend) &&
              (q.host === undefined || hostOf.get(r.id) === q.host) &&
              (q.since === undefined || t >= Date.parse(q.since)) &&
              (q.until === undefined || t < Date.parse(q.until))
            );
          });
          if ((q.order ?? 'newest') === 'newest') expected.reverse();
          const got: Receipt[] = [];
          let cursor: string | undefined;
          for (let pages = 0; pages < 1000; pages++) {
            const page = await (fromA ? a : b).fleet!.index.query({ ...q, ...(cursor && { cursor }) });
            expect(page.receipts.length).toBeLessThanOrEqual(q.limit ?? 100);
            got.push(...page.receipts);
            if (page.next === null) break;
            cursor = page.next;
          }
          expect(got.map((r) => r.id)).toEqual(expected.map((r) => r.id));
          expect(got).toEqual(expected); // whole receipts, decoded from the rows
        }),
        { numRuns: 40 },
      );

      // Bad parameters are typed errors naming the parameter, as with the local index.
      await expect(a.fleet!.index.query({ limit: 0 })).rejects.toMatchObject({ path: 'limit' });
      await expect(a.fleet!.index.query({ since: 'yesterday' })).rejects.toMatchObject({ path: 'since' });
      const page = await a.fleet!.index.query({ limit: 1, status: 'failed' });
      await expect(a.fleet!.index.query({ limit: 1, cursor: page.next! })).rejects.toBeInstanceOf(
        ValidationError,
      );
      await expect(a.fleet!.index.lineage('nope')).rejects.toMatchObject({ path: 'receipt' });

      // A row altered in the database is reported, never returned.
      await sql`update thunderpac_fleet_receipts set body = overlay(body placing '\\x00'::bytea from 5 for 1) where id = ${s2.id}`;
      await expect(a.fleet!.index.get(s2.id)).rejects.toBeInstanceOf(FleetIntegrityError);
      await expect(a.fleet!.index.lineage(s3.id)).rejects.toThrow(/host 'host-b', log ordinal 0/);
    } finally {
      a.close();
      b.close();
    }
  }, 120_000);

  it('a down or hung database never blocks appends; the mirror catches up, across a reopen, without duplicates', async () => {
    const dir = tempDir();
    let store = new Store(dir, fleet('host-outage'));
    const appended: Receipt[] = [];
    const append = (n: number) => {
      const t = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        const r = receiptOf({ build: 1, actor: 'uid:7', status: 'completed', backend: 'wasm', at: 3 });
        store.appendReceipt(r);
        appended.push(r);
      }
      return Number(process.hrtime.bigint() - t) / 1e6;
    };
    try {
      append(50);
      await store.fleet!.sync();
      expect(await rowCount('host-outage')).toBe(50);

      // Down: appends go on at local speed; the mirror reports it and retries.
      await pg.kill();
      const ms = append(200);
      expect(ms).toBeLessThan(1000);
      expect(store.receipts.size).toBe(250);
      await expect(store.fleet!.sync()).rejects.toBeInstanceOf(FleetUnavailableError);
      const down = store.fleet!.status()!;
      expect(down.lastError?.code).toBe('FLEET_UNAVAILABLE');
      expect(['retrying', 'mirroring', 'waiting']).toContain(down.state);

      // Closed and reopened while the database is still down: the log has everything.
      store.close();
      store = new Store(dir, fleet('host-outage'));
      append(30);
      expect(store.receipts.size).toBe(280);

      // Back: the mirror catches up on its own, from the position the index confirmed.
      await pg.restart();
      await eventually(() => store.fleet!.status()!.behind === 0, 'the mirror to catch up');
      expect(await rowCount('host-outage')).toBe(280);
      const [pos] =
        await sql`select ordinal::int as n from thunderpac_fleet_hosts where host = 'host-outage'`;
      expect((pos as { n: number }).n).toBe(280);

      // Hung (SIGSTOPped): appends still do not wait; a sync times out; resumed, it catches up.
      pg.pause();
      try {
        expect(append(100)).toBeLessThan(1000);
        const t = Date.now();
        await expect(store.fleet!.sync()).rejects.toBeInstanceOf(FleetUnavailableError);
        expect(Date.now() - t).toBeLessThan(10_000);
      } finally {
        pg.resume();
      }
      await eventually(
        () => store.fleet!.status()!.behind === 0,
        'the mirror to catch up after a hang',
        30_000,
      );
      expect(await rowCount('host-outage')).toBe(380);

      // Forgetting the host's position re-mirrors from the start: nothing is inserted twice.
      expect(await store.fleet!.index.forgetHost('host-outage')).toBe(true);
      store.close();
      store = new Store(dir, fleet('host-outage', { batchSize: 64 }));
      await store.fleet!.sync();
      expect(store.fleet!.status()!.batches).toBe(Math.ceil(380 / 64));
      expect(await rowCount('host-outage')).toBe(380);
      const ids = await sql<
        { id: string }[]
      >`select id from thunderpac_fleet_receipts where host = 'host-outage' order by ordinal`;
      expect(ids.map((r) => r.id)).toEqual(appended.map((r) => r.id));
    } finally {
      store.close();
    }
  }, 120_000);

  it('a host killed -9 at any point mid-mirror resumes: the index holds its log exactly, in order, once', async () => {
    const dir = tempDir();
    const host = 'host-killed';
    const confirmed = async () => {
      const [r] =
        await sql`select coalesce(max(ordinal), 0)::int as n from thunderpac_fleet_hosts where host = ${host}`;
      return (r as { n: number }).n;
    };
    for (let round = 0; round < 3; round++) {
      const before = await confirmed();
      const child = spawn(VITE_NODE, [FLEET_APPENDER, '--', dir, pg.url, host], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        // Killed once it has confirmed some batches, at a random moment after that.
        await eventually(async () => (await confirmed()) > before + 37, 'the host to mirror', 60_000);
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 150)));
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
    }
    const store = new Store(dir, fleet(host));
    try {
      await store.fleet!.sync();
      const ids: string[] = [];
      store.receipts.scanBodies(ReceiptLog.START, (id) => ids.push(id));
      expect(ids.length).toBeGreaterThan(3 * 37);
      const rows = await sql<{ id: string; ordinal: string }[]>`
        select id, ordinal from thunderpac_fleet_receipts where host = ${host} order by ordinal`;
      expect(rows.map((r) => r.id)).toEqual(ids);
      expect(rows.map((r) => Number(r.ordinal))).toEqual(ids.map((_, i) => i));
      expect(await confirmed()).toBe(ids.length);
    } finally {
      store.close();
    }
  }, 240_000);

  it('a second store under a host name in use is refused and changes nothing', async () => {
    const first = new Store(tempDir(), fleet('host-shared'));
    const second = new Store(tempDir(), fleet('host-shared'));
    try {
      for (let i = 0; i < 5; i++)
        first.appendReceipt(
          receiptOf({ build: 2, actor: undefined, status: 'failed', backend: 'p4', at: 0 }),
        );
      await first.fleet!.sync();
      for (let i = 0; i < 7; i++)
        second.appendReceipt(
          receiptOf({ build: 2, actor: undefined, status: 'failed', backend: 'p4', at: 0 }),
        );
      await expect(second.fleet!.sync()).rejects.toBeInstanceOf(FleetMismatchError);
      expect(second.fleet!.status()!.state).toBe('stopped');
      expect(await rowCount('host-shared')).toBe(5);
    } finally {
      first.close();
      second.close();
    }
  }, 60_000);
});

describe('fleet options', () => {
  it('name the field that is wrong', () => {
    const bad: [unknown, string][] = [
      [null, 'fleet'],
      [{}, 'fleet.postgres'],
      [{ postgres: 'mysql://x' }, 'fleet.postgres'],
      [{ postgres: 'postgres://h/db', batchSize: 0 }, 'fleet.batchSize'],
      [{ postgres: 'postgres://h/db', timeoutMs: 1.5 }, 'fleet.timeoutMs'],
      [{ postgres: 'postgres://h/db', host: '' }, 'fleet.host'],
      [{ postgres: 'postgres://h/db', retryMinMs: 500, retryMaxMs: 100 }, 'fleet.retryMaxMs'],
      [{ postgres: 'postgres://h/db', bogus: 1 }, 'fleet.bogus'],
    ];
    for (const [value, path] of bad) {
      let err: unknown;
      try {
        parseFleetOptions(value);
      } catch (e) {
        err = e;
      }
      expect(err, path).toBeInstanceOf(FleetConfigError);
      expect((err as FleetConfigError).path).toBe(path);
    }
    expect(parseFleetOptions({ postgres: 'postgres://u@h:5432/db' }, 'store.fleet')).toMatchObject({
      batchSize: 1000,
    });
  });
});

describe('the daemon config section store.fleet', () => {
  const defaults = {
    socket: '/run/t.sock',
    store: () => '/var/lib/t',
    modelsDir: '/m',
    bpffsRoot: '/sys/fs/bpf',
  };
  const load = (text: string) => {
    const file = join(tempDir(), 'config.json');
    writeFileSync(file, text);
    return { file, load: () => loadConfig({ config: file }, defaults) };
  };
  afterAll(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('is off by default, and a string store is still a directory', () => {
    expect(load('{ "store": "/srv/s" }').load()).toMatchObject({ store: '/srv/s', storeFleet: null });
    expect(loadConfig({}, defaults).storeFleet).toBeNull();
  });

  it('turns fleet mode on with its options', () => {
    const c = load(
      '{ "store": { "dir": "/srv/s", "fleet": { "postgres": "postgres://tp@db:5432/fleet", "host": "edge-1", "batchSize": 500 } } }',
    ).load();
    expect(c.store).toBe('/srv/s');
    expect(c.storeFleet).toMatchObject({
      postgres: 'postgres://tp@db:5432/fleet',
      host: 'edge-1',
      batchSize: 500,
      delayMs: 20,
    });
  });

  it('names file:line:col and the field of a bad value', () => {
    const { file, load: l } = load(
      '{\n  "store": {\n    "fleet": {\n      "postgres": "postgres://db/f",\n      "batchSize": -1\n    }\n  }\n}',
    );
    let err: unknown;
    try {
      l();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(
      new RegExp(`^${file}:5:20: store\\.fleet\\.batchSize: expected an integer in \\[1, 10000\\], found -1`),
    );
    const { load: l2 } = load('{ "store": { "fleet": { "postgress": "x" } } }');
    expect(l2).toThrow(/store\.fleet\.postgress: unknown key/);
    const { load: l3 } = load('{ "store": { "directory": "/x" } }');
    expect(l3).toThrow(/store\.directory: unknown key/);
  });
});
