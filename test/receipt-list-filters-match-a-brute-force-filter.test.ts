/**
 * Listing receipts (issue #11: "receipts (get, list and filter by build / actor / status /
 * time)"): for any receipts and any query, paging through `Store.listReceipts` gives exactly
 * what filtering the appended receipts one by one gives, in order; bad parameters are typed
 * errors naming the parameter; and a read-only store opened beside a writer process sees what
 * the writer appends after it opened, committed by the head or not.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeCanonical, encodeCanonical } from '../src/runtime/canonical.js';
import { type Receipt, type ReceiptBody, sealReceipt } from '../src/runtime/receipt.js';
import { indexedFieldsOf, scan } from '../src/store/receipt-fields.js';
import type { ReceiptQuery } from '../src/store/receipt-index.js';
import { LogIntegrityError } from '../src/store/errors.js';
import { Store } from '../src/store/store.js';

const dirs: string[] = [];
const stores: Store[] = [];
const children: ChildProcess[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tp-receipt-list-'));
  dirs.push(d);
  return d;
}
function open(dir: string, readOnly = false): Store {
  const s = new Store(dir, readOnly ? { readOnly: true } : {});
  stores.push(s);
  return s;
}
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const BUILDS = ['1'.repeat(64), '2'.repeat(64), '3'.repeat(64)];
const T0 = Date.parse('2026-12-05T00:00:00.000Z');

interface Spec {
  build: number;
  actor: string | undefined;
  status: 'completed' | 'failed';
  backend: 'wasm' | 'onnx' | 'ebpf' | 'p4';
  /** Seconds after T0: few distinct values, so time bounds fall on receipts too. */
  at: number;
}

let serial = 0;
function receiptOf(s: Spec): Receipt {
  serial++;
  const body: ReceiptBody = {
    v: 1,
    buildId: BUILDS[s.build]!,
    backend: s.backend,
    entry: 'e',
    input: { hash: serial.toString(16).padStart(64, '0'), size: serial },
    output: null,
    startedAt: new Date(T0 + s.at * 1000).toISOString(),
    durationNs: serial,
    resources: { cpuUs: null, peakMemoryBytes: null, fuelUsed: null, engineNs: null },
    sandbox: {
      limits: { timeoutMs: 1, memoryMb: 1, maxInputBytes: 1, maxOutputBytes: 1 },
      fs: { kind: 'none' },
      allowedImports: [],
      network: false,
    },
    determinism: { seed: 0, flags: [] },
    runtime: {},
    status: s.status,
    error: null,
    parents: [],
    ...(s.actor === undefined ? {} : { actor: s.actor, requestId: `r${serial}` }),
  };
  return sealReceipt(body);
}

const spec: fc.Arbitrary<Spec> = fc.record({
  build: fc.nat(BUILDS.length - 1),
  actor: fc.constantFrom(undefined, 'uid:0', 'uid:1000', 'token:ci-bot'),
  status: fc.constantFrom('completed' as const, 'failed' as const),
  backend: fc.constantFrom('wasm' as const, 'onnx' as const, 'ebpf' as const, 'p4' as const),
  at: fc.nat(6),
});
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const query = fc.record(
  {
    build: fc.constantFrom(...BUILDS, '9'.repeat(64)),
    actor: fc.constantFrom('uid:0', 'uid:1000', 'token:ci-bot', 'uid:404'),
    status: fc.constantFrom('completed', 'failed'),
    backend: fc.constantFrom('wasm', 'onnx', 'ebpf', 'p4'),
    since: fc.nat(7).map(iso),
    until: fc.nat(7).map(iso),
    limit: fc.integer({ min: 1, max: 7 }),
    order: fc.constantFrom('newest' as const, 'oldest' as const),
  },
  { requiredKeys: [] },
);

/** What the query must return, by looking at each receipt in turn. */
function bruteForce(all: readonly Receipt[], q: ReceiptQuery): string[] {
  const since = q.since === undefined ? -Infinity : Date.parse(q.since);
  const until = q.until === undefined ? Infinity : Date.parse(q.until);
  const hits = all.filter(
    (r) =>
      (q.build === undefined || r.buildId === q.build) &&
      (q.actor === undefined || r.actor === q.actor) &&
      (q.status === undefined || r.status === q.status) &&
      (q.backend === undefined || r.backend === q.backend) &&
      Date.parse(r.startedAt) >= since &&
      Date.parse(r.startedAt) < until,
  );
  if ((q.order ?? 'newest') === 'newest') hits.reverse();
  return hits.map((r) => r.id);
}

/** Every page of a query, following `next`. */
function allPages(store: Store, q: ReceiptQuery): { ids: string[]; pages: number } {
  const ids: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  for (;;) {
    const page = store.listReceipts({ ...q, ...(cursor === undefined ? {} : { cursor }) });
    pages++;
    expect(page.receipts.length).toBeLessThanOrEqual(q.limit ?? 100);
    // A page that says there is more is full.
    if (page.next !== null) expect(page.receipts.length).toBe(q.limit ?? 100);
    ids.push(...page.receipts.map((r) => r.id));
    if (page.next === null) return { ids, pages };
    cursor = page.next;
  }
}

describe('listing receipts', () => {
  it('pages through exactly what a brute-force filter finds, in order, as receipts are appended', () => {
    fc.assert(
      fc.property(
        fc.array(spec, { maxLength: 40 }),
        fc.array(spec, { maxLength: 15 }),
        fc.array(query, { minLength: 1, maxLength: 4 }),
        (first, later, queries) => {
          const dir = tempDir();
          const store = open(dir);
          const all = first.map(receiptOf);
          for (const r of all) store.appendReceipt(r);
          for (const q of queries) expect(allPages(store, q).ids).toEqual(bruteForce(all, q));
          // Appended after the index was built: it catches up on the next query.
          for (const r of later.map(receiptOf)) {
            store.appendReceipt(r);
            all.push(r);
          }
          for (const q of queries) expect(allPages(store, q).ids).toEqual(bruteForce(all, q));
          // The receipts come back whole.
          const page = store.listReceipts({ limit: 1, order: 'oldest' });
          if (all.length > 0) expect(page.receipts[0]).toEqual(all[0]);
          // A store opened afterwards (reading the log from disk) lists the same.
          store.close();
          const reopened = open(dir, true);
          for (const q of queries) expect(allPages(reopened, q).ids).toEqual(bruteForce(all, q));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('defaults to the newest 100, and refuses bad parameters naming them', () => {
    const store = open(tempDir());
    const all: Receipt[] = [];
    for (let i = 0; i < 150; i++) {
      const r = receiptOf({ build: 0, actor: 'uid:1', status: 'completed', backend: 'wasm', at: i });
      store.appendReceipt(r);
      all.push(r);
    }
    const page = store.listReceipts();
    expect(page.receipts.map((r) => r.id)).toEqual(
      all
        .slice(50)
        .reverse()
        .map((r) => r.id),
    );
    expect(page.next).not.toBeNull();
    const bad: [ReceiptQuery, string][] = [
      [{ limit: 0 }, 'limit'],
      [{ limit: 1001 }, 'limit'],
      [{ limit: 1.5 }, 'limit'],
      [{ since: 'yesterday' }, 'since'],
      [{ until: '2026-12-05' }, 'until'],
      [{ until: '2026-13-45T99:00:00Z' }, 'until'],
      [{ since: '2026-02-31T00:00:00Z' }, 'since'], // Date.parse would roll it over to March 3
      [{ since: '2026-12-05T24:00:00Z' }, 'since'],
      [{ since: '2026-12-05T10:00:00+24:00' }, 'since'],
      [{ order: 'sideways' as never }, 'order'],
      [{ cursor: 'not a cursor' }, 'cursor'],
      [{ cursor: Buffer.from('c1.newest.5.0123456789abcdef').toString('base64url') }, 'cursor'],
      // A real cursor, handed to another query.
      [{ cursor: page.next!, status: 'failed' }, 'cursor'],
      [{ cursor: page.next!, order: 'oldest' }, 'cursor'],
    ];
    // A real date in any zone is taken (a leap day too).
    expect(store.listReceipts({ since: '2024-02-29T23:59:59.999+05:30', limit: 1 }).receipts).toHaveLength(1);
    for (const [q, path] of bad) {
      expect(() => store.listReceipts(q), JSON.stringify(q)).toThrow(
        expect.objectContaining({ code: expect.stringMatching(/^VALIDATION_/), path }),
      );
    }
  });
});

const VITE_NODE = join(process.cwd(), 'node_modules', '.bin', 'vite-node');
const APPENDER = join(process.cwd(), 'test', 'helpers', 'receipt-appender.ts');

/** The appender process, and a way to send it a command and wait for its answer. */
function startAppender(dir: string) {
  const child = spawn(VITE_NODE, [APPENDER, '--', dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  let partial = '';
  child.stdout!.on('data', (chunk) => {
    const parts = (partial + String(chunk)).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const nextLine = () =>
    lines.length > 0
      ? Promise.resolve(lines.shift()!)
      : new Promise<string>((resolve, reject) => {
          waiters.push(resolve);
          child.once('exit', (code) => reject(new Error(`appender exited (${code})`)));
        });
  return {
    nextLine,
    async send(command: string): Promise<string> {
      child.stdin!.write(`${command}\n`);
      return nextLine();
    },
  };
}

describe('a read-only store beside a writer process', () => {
  it('lists what the writer appends after it opened, before and after the head commits it', async () => {
    const dir = tempDir();
    const writer = startAppender(dir);
    expect(await writer.nextLine()).toBe('ready');
    const reader = open(dir, true);
    expect(reader.listReceipts().receipts).toEqual([]);

    // Written to the file, not yet committed by the head (the writer's head moves hourly).
    const first = (await writer.send('append 5 uid:1000')).split(' ');
    expect(first.shift()).toBe('written');
    expect(reader.listReceipts({ order: 'oldest' }).receipts.map((r) => r.id)).toEqual(first);
    expect(reader.listReceipts({ actor: 'uid:1000' }).receipts.map((r) => r.actor)).toEqual(
      Array(5).fill('uid:1000'),
    );

    // Committed, then more after the commit, by another actor.
    expect(await writer.send('flush')).toBe('flushed');
    const second = (await writer.send('append 7 token:ci-bot')).split(' ').slice(1);
    const page = reader.listReceipts({ actor: 'token:ci-bot', order: 'oldest' });
    expect(page.receipts.map((r) => r.id)).toEqual(second);
    expect(page.receipts.every((r) => r.requestId?.startsWith('req-'))).toBe(true);
    // A receipt the reader had not seen is found by id too.
    const third = (await writer.send('append 1 uid:0')).split(' ').slice(1);
    expect(reader.getReceipt(third[0]!).actor).toBe('uid:0');
    expect(reader.listReceipts({ limit: 1000 }).receipts.length).toBe(13);

    expect(await writer.send('close')).toBe('closed');
    // Everything still there, and a fresh read-only open agrees.
    const fresh = open(dir, true);
    expect(allPages(fresh, { limit: 4 }).ids).toEqual(allPages(reader, { limit: 4 }).ids);
  });

  it('a read-only store opened before the log existed finds it once a writer creates it', async () => {
    const dir = tempDir();
    const reader = open(dir, true);
    expect(reader.listReceipts().receipts).toEqual([]);
    const writer = startAppender(dir);
    expect(await writer.nextLine()).toBe('ready');
    const ids = (await writer.send('append 3 uid:7')).split(' ').slice(1);
    expect(reader.listReceipts({ order: 'oldest' }).receipts.map((r) => r.id)).toEqual(ids);
    expect(await writer.send('close')).toBe('closed');
  });
});

describe('a read-only store whose log is damaged or cut after it opened', () => {
  const specAt = (at: number): Spec => ({
    build: 0,
    actor: 'uid:1',
    status: 'completed',
    backend: 'wasm',
    at,
  });

  it('reports a record damaged in the bytes the head newly commits, and lists nothing from it', () => {
    const dir = tempDir();
    const writer = open(dir);
    const reader = open(dir, true);
    for (let i = 0; i < 3; i++) writer.appendReceipt(receiptOf(specAt(i)));
    writer.receipts.flush();
    expect(reader.listReceipts().receipts).toHaveLength(3);
    const before = statSync(join(dir, 'receipts.log')).size;
    writer.appendReceipt(receiptOf(specAt(3)));
    writer.receipts.flush(); // written and committed by the head
    // Flip a byte inside the new record's body.
    const fd = openSync(join(dir, 'receipts.log'), 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, before + 60);
    byte.writeUInt8(byte.readUInt8(0) ^ 0xff, 0);
    writeSync(fd, byte, 0, 1, before + 60);
    closeSync(fd);
    expect(() => reader.listReceipts()).toThrow(LogIntegrityError);
  });

  it('reports a log cut below what it had read', () => {
    const dir = tempDir();
    const writer = open(dir);
    const reader = open(dir, true);
    for (let i = 0; i < 3; i++) writer.appendReceipt(receiptOf(specAt(i)));
    writer.receipts.flush();
    expect(reader.listReceipts().receipts).toHaveLength(3);
    truncateSync(join(dir, 'receipts.log'), statSync(join(dir, 'receipts.log')).size - 10);
    expect(() => reader.listReceipts()).toThrow(/cut/);
  });
});

describe('the fields the index reads from a record', () => {
  const names = ['actor', 'backend', 'buildId', 'startedAt', 'status', 'sandbox', 'v', 'actors', 'b', ''];
  const value = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.string({ minLength: 30, maxLength: 300 }),
    fc.jsonValue({ maxDepth: 3 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.double({ noNaN: true }),
    fc.integer(),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
    fc.constant(null),
  );
  it('are what decoding the whole record gives, for any map of any values', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...names), value, { maxKeys: 10 }), (obj) => {
        const bytes = encodeCanonical(obj);
        const whole = decodeCanonical<Record<string, unknown>>(bytes);
        const want = {
          actor: whole.actor,
          backend: whole.backend,
          buildId: whole.buildId,
          startedAt: whole.startedAt,
          status: whole.status,
        };
        const got = indexedFieldsOf(bytes);
        for (const key of Object.keys(want) as (keyof typeof want)[]) expect(got[key]).toEqual(want[key]);
      }),
      { numRuns: 2000 },
    );
  });

  it('are read without decoding the rest wherever the wanted fields are ASCII strings', () => {
    const wanted = ['actor', 'backend', 'buildId', 'startedAt', 'status'];
    const others = fc.dictionary(fc.constantFrom('sandbox', 'v', 'actors', 'b', '', 'zz'), value, {
      maxKeys: 6,
    });
    const strings = fc.dictionary(
      fc.constantFrom(...wanted),
      fc.string({
        unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)),
        maxLength: 300,
      }),
      { maxKeys: 5 },
    );
    fc.assert(
      fc.property(others, strings, (rest, fields) => {
        const bytes = encodeCanonical({ ...rest, ...fields });
        expect(scan(bytes)).toEqual(fields);
      }),
      { numRuns: 2000 },
    );
  });

  it('skip every kind of value msgpack has, at every size class, before a wanted field', () => {
    const every = [
      [
        0,
        127,
        128,
        255,
        256,
        65535,
        65536,
        2 ** 32 - 1,
        2 ** 40,
        -1,
        -32,
        -33,
        -128,
        -129,
        -32768,
        -32769,
        1.5,
      ],
      [2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n, null, true, false],
      ['', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(255), 'x'.repeat(256), 'x'.repeat(65536), 'é\u{1F600}'],
      [new Uint8Array(0), new Uint8Array(255), new Uint8Array(256), new Uint8Array(65536)],
      [
        Array.from({ length: 15 }, (_, i) => i),
        Array.from({ length: 16 }, (_, i) => [i]),
        Array(65536).fill(0),
      ],
      [{}, Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, { i }]))],
      Object.fromEntries(Array.from({ length: 65536 }, (_, i) => [`k${i}`, i])),
    ];
    const fields = {
      actor: 'uid:1',
      backend: 'wasm',
      buildId: 'a'.repeat(64),
      startedAt: 'T',
      status: 'failed',
    };
    // '' and 'actors' sort before every wanted field; 'b' before backend and buildId.
    expect(scan(encodeCanonical({ '': every, actors: every, b: every, sandbox: every, ...fields }))).toEqual(
      fields,
    );
  });

  it('and for sealed receipts, attributed or not', () => {
    fc.assert(
      fc.property(spec, fc.string({ maxLength: 300 }), (s, actor) => {
        const r = receiptOf({ ...s, actor: actor.length > 0 ? actor : undefined });
        const { id: _id, ...body } = r;
        const got = indexedFieldsOf(encodeCanonical(body));
        expect(got).toEqual({
          ...(r.actor === undefined ? {} : { actor: r.actor }),
          backend: r.backend,
          buildId: r.buildId,
          startedAt: r.startedAt,
          status: r.status,
        });
      }),
      { numRuns: 500 },
    );
  });
});
