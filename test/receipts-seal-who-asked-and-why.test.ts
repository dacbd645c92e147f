/**
 * Attribution (issue #11: "the actor id goes into each receipt", "a request id carried into the
 * receipt"): an execution's `attribution` is sealed into its receipt as `actor` and `requestId`,
 * is covered by the id, survives the log, does not stop a replay from matching, and is checked
 * like the rest of the request. Without it a receipt is byte for byte what it was before.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild, WasmBackend } from '../src/backends/wasm/backend.js';
import { canonicalDigest } from '../src/runtime/canonical.js';
import { IntegrityError } from '../src/runtime/errors.js';
import { Executor } from '../src/runtime/executor.js';
import {
  checkReceiptId,
  type Receipt,
  type ReceiptBody,
  sealReceipt,
  sealReceiptEncoded,
  sealReceiptInPlace,
} from '../src/runtime/receipt.js';
import { Sandbox } from '../src/runtime/sandbox.js';
import { Store } from '../src/store/store.js';
import { buildGuests, guest } from './wasm-fixtures.js';

const backend = new WasmBackend({ path: 'in-thread' });
const dir = mkdtempSync(join(tmpdir(), 'tp-attribution-'));
let store: Store;
let executor: Executor;

beforeAll(() => {
  buildGuests();
  store = new Store(dir);
  executor = new Executor({ backends: [backend], store });
});
afterAll(async () => {
  await executor.close();
  store.close();
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

const limits = { timeoutMs: 1000, memoryMb: 16, fuel: 100_000 };
const build = createWasmBuild(guest('echo'), { name: 'echo' });
const input = { kind: 'bytes' as const, bytes: new Uint8Array([1, 2, 3]) };
const who = { actor: 'uid:1000', requestId: 'req-7f3a' };

describe('an attributed execution', () => {
  it('seals actor and requestId into its receipt, under the id, and the log keeps them', async () => {
    const r = await executor.execute(new Sandbox({ backend: 'wasm', limits }), {
      build,
      entry: 'reverse',
      input,
      attribution: who,
    });
    expect(r.status).toBe('completed');
    expect(r.receipt.actor).toBe('uid:1000');
    expect(r.receipt.requestId).toBe('req-7f3a');
    const { id, ...body } = r.receipt;
    expect(id).toBe(canonicalDigest(body));
    expect(store.getReceipt(id)).toEqual(r.receipt);
    // Either field changed, or removed, and the receipt no longer hashes to its id.
    for (const altered of [
      { ...r.receipt, actor: 'uid:0' },
      { ...r.receipt, requestId: 'req-other' },
      (({ actor: _a, ...rest }) => rest)(r.receipt) as Receipt,
    ]) {
      expect(() => checkReceiptId(altered)).toThrow(IntegrityError);
    }
  });

  it('replays to a match: who asked describes the run and is not compared', async () => {
    const r = await executor.execute(new Sandbox({ backend: 'wasm', limits }), {
      build,
      entry: 'reverse',
      input,
      attribution: { actor: 'token:ci-bot', requestId: 'req-1' },
    });
    const report = await executor.verify(r.receipt.id);
    expect(report.problem).toBeNull();
    expect(report.mismatches).toEqual([]);
    expect(report.match).toBe(true);
    // The replay is nobody's run: it carries no attribution of its own.
    expect(report.replay?.actor).toBeUndefined();
  });

  it('a failed execution is attributed too', async () => {
    const r = await executor.execute(new Sandbox({ backend: 'wasm', limits }), {
      build,
      entry: 'trap',
      input,
      attribution: who,
    });
    expect(r.status).toBe('failed');
    expect(r.receipt).toMatchObject({ actor: who.actor, requestId: who.requestId, status: 'failed' });
  });
});

describe('without attribution', () => {
  it('a receipt has no actor or requestId keys, and its id is the one sealed before they existed', () => {
    const body: ReceiptBody = {
      v: 1,
      buildId: 'a'.repeat(64),
      backend: 'wasm',
      entry: 'echo',
      input: { hash: 'b'.repeat(64), size: 3 },
      output: { hash: 'c'.repeat(64), size: 3 },
      startedAt: '2026-12-05T07:00:00.000Z',
      durationNs: 5400,
      resources: { cpuUs: null, peakMemoryBytes: 65536, fuelUsed: 120, engineNs: null },
      sandbox: Object.freeze({
        limits: { timeoutMs: 1000, memoryMb: 16, maxInputBytes: 1048576, maxOutputBytes: 1048576 },
        fs: { kind: 'none' as const },
        allowedImports: [],
        network: false as const,
      }),
      determinism: Object.freeze({ seed: 0, flags: [] }),
      runtime: Object.freeze({ thunderpac: '0.1.0', node: '20.0.0' }),
      status: 'completed',
      error: null,
      parents: [],
    };
    // Computed with the receipt encoder of the commit before attribution existed.
    const before = '85e2ddabde01d710d3fbb926b4985fbc45613a63e46d1ba191846042b376c80c';
    expect(sealReceiptInPlace(body).id).toBe(before);
    expect(sealReceiptEncoded(body).receipt.id).toBe(before);
    expect(sealReceipt(body).id).toBe(before);
    expect(Object.keys(sealReceiptInPlace(body))).not.toContain('actor');
    // The same body attributed is another receipt.
    expect(sealReceiptInPlace({ ...body, ...who }).id).not.toBe(before);
    expect(sealReceiptInPlace({ ...body, ...who }).id).toBe(sealReceipt({ ...body, ...who }).id);
  });
});

describe('attribution is checked like the rest of the request', () => {
  const cases: [string, unknown, string][] = [
    ['not an object', 'uid:1000', 'attribution'],
    ['an array', ['uid:1000', 'r'], 'attribution'],
    ['no actor', { requestId: 'r' }, 'attribution.actor'],
    ['an empty actor', { actor: '', requestId: 'r' }, 'attribution.actor'],
    ['an actor that is a number', { actor: 1000, requestId: 'r' }, 'attribution.actor'],
    ['an actor of 257 characters', { actor: 'u'.repeat(257), requestId: 'r' }, 'attribution.actor'],
    ['a newline in the actor', { actor: 'uid:1\nuid:0', requestId: 'r' }, 'attribution.actor'],
    ['no requestId', { actor: 'uid:1' }, 'attribution.requestId'],
    ['a NUL in the requestId', { actor: 'uid:1', requestId: 'r\0' }, 'attribution.requestId'],
    ['a lone surrogate in the requestId', { actor: 'uid:1', requestId: 'r\ud800' }, 'attribution.requestId'],
    [
      'a getter that throws',
      {
        actor: 'uid:1',
        get requestId() {
          throw new Error('boom');
        },
      },
      'attribution.requestId',
    ],
  ];
  for (const [what, attribution, path] of cases) {
    it(`refuses ${what} with a ValidationError naming ${path}, before the sandbox leaves idle`, async () => {
      const sb = new Sandbox({ backend: 'wasm', limits });
      const before = store.receipts.size;
      await expect(
        executor.execute(sb, { build, entry: 'echo', input, attribution } as never),
      ).rejects.toMatchObject({ code: 'VALIDATION_TYPE', path });
      expect(sb.state).toBe('idle');
      expect(store.receipts.size).toBe(before);
    });
  }

  it('takes 256 characters and any printable Unicode', async () => {
    const actor = `token:${'é'.repeat(250)}`;
    const r = await executor.execute(new Sandbox({ backend: 'wasm', limits }), {
      build,
      entry: 'echo',
      input,
      attribution: { actor, requestId: '\u{1F600}' },
    });
    expect(r.receipt.actor).toBe(actor);
    expect(r.receipt.requestId).toBe('\u{1F600}');
  });
});
