/**
 * Fuzz target: bundle import (store.importBundle, `thunderpac store import`, POST
 * /v1/store/import). Whatever bytes arrive — a real bundle with bytes flipped, cut, grown, or a
 * well-formed container (right crc, right trailer) around a hostile manifest — the answer is
 * either a clean import whose every artifact re-hashes, or a BundleError naming a byte or a
 * field, with nothing written. Never another error, never a partial import.
 */

import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild } from '../src/backends/wasm/backend.js';
import { encodeCanonical } from '../src/runtime/canonical.js';
import { BundleError } from '../src/store/bundle.js';
import { Store } from '../src/store/store.js';
import { Thunderpac } from '../src/thunderpac.js';
import { fuzzParams, fuzzTimeoutMs } from './helpers/fuzz.js';
import { buildGuests, guest } from './wasm-fixtures.js';

let dir: string;
let bundle: Buffer;
let target: Store;
let scratch: string;

beforeAll(async () => {
  buildGuests();
  dir = mkdtempSync(join(tmpdir(), 'tp-fuzz-bundle-'));
  const tp = await Thunderpac.open({ store: join(dir, 'source') });
  const build = createWasmBuild(guest('echo'), { name: 'echo' });
  const sandbox = tp.sandbox({ backend: 'wasm', limits: { timeoutMs: 2000, memoryMb: 16 } });
  let parent: string[] = [];
  for (const text of ['a', 'bb', 'ccc']) {
    const r = await tp.execute(sandbox, {
      build,
      entry: 'reverse',
      input: { kind: 'bytes', bytes: new TextEncoder().encode(text) },
      ...(parent.length > 0 && { parents: parent }),
    });
    parent = [r.receipt.id];
  }
  const path = join(dir, 'good.tpb');
  tp.store!.exportBundle(path, { builds: [build.id] });
  bundle = readFileSync(path);
  await tp.close();
  target = new Store(join(dir, 'target'));
  scratch = join(dir, 'case.tpb');
});
afterAll(() => {
  target?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Long runs keep vitest's worker RPC answering between cases. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A container whose crc and trailer are right, around any manifest and data. */
function container(manifest: unknown, data: Uint8Array = new Uint8Array()): Buffer {
  const m = Buffer.from(encodeCanonical(manifest));
  const head = Buffer.alloc(12);
  head.write('TPBNDL1\n', 0, 'latin1');
  head.writeUInt32BE(m.length, 8);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(m), 0);
  const body = Buffer.concat([head, m, crc, data]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** Import `bytes` into the target: a BundleError with nothing written, or a clean import. */
function importCase(bytes: Buffer): void {
  writeFileSync(scratch, bytes);
  const before = target.artifacts.count;
  try {
    target.importBundle(scratch);
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    expect(err.message).toMatch(/byte \d+|field \$|too short|bad magic|format version/);
    expect(target.artifacts.count).toBe(before);
    return;
  }
  const report = target.fsck({ parts: ['index', 'blocks'] });
  expect(report.problems).toEqual([]);
}

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);

describe('fuzz: bundle import', () => {
  it(
    'a real bundle flipped, cut or grown is refused with where, or imports whole',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.record({
              kind: fc.constant('flip' as const),
              at: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
              mask: fc.integer({ min: 1, max: 255 }),
            }),
            fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
            fc.record({
              kind: fc.constant('grow' as const),
              bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
            }),
          ),
          async (c) => {
            await yieldToEventLoop();
            let bytes: Buffer;
            if (c.kind === 'flip') {
              bytes = Buffer.from(bundle);
              for (const at of c.at) bytes[at % bytes.length]! ^= c.mask;
            } else if (c.kind === 'cut') {
              bytes = bundle.subarray(0, c.at % bundle.length);
            } else {
              bytes = Buffer.concat([bundle, c.bytes]);
            }
            importCase(bytes);
          },
        ),
        fuzzParams(300),
      );
    },
    fuzzTimeoutMs(60_000),
  );

  it(
    'a well-formed container around a hostile manifest is refused by field path',
    async () => {
      const kinds = fc.constantFrom(
        'receipt',
        'build',
        'build-artifact',
        'payload',
        'fs-tree',
        'x',
        '',
        '__proto__',
      );
      const artifact = fc.record(
        {
          key: fc.oneof(hex64, fc.string()),
          kind: kinds,
          size: fc.oneof(fc.nat(64), fc.integer(), fc.double()),
        },
        { requiredKeys: [] },
      );
      const manifest = fc.oneof(
        fc.anything(),
        fc.record(
          {
            v: fc.oneof(fc.constant(1), fc.anything()),
            createdAt: fc.oneof(fc.string(), fc.anything()),
            source: fc.oneof(fc.record({ domain: fc.string(), store: fc.string() }), fc.anything()),
            roots: fc.oneof(fc.array(hex64, { maxLength: 3 }), fc.anything()),
            artifacts: fc.oneof(fc.array(artifact, { maxLength: 6 }), fc.anything()),
          },
          { requiredKeys: [] },
        ),
      );
      await fc.assert(
        fc.asyncProperty(manifest, fc.uint8Array({ maxLength: 256 }), async (m, data) => {
          await yieldToEventLoop();
          let bytes: Buffer;
          try {
            bytes = container(m, data);
          } catch {
            return; // not encodable canonically (NaN, functions): nothing to send
          }
          importCase(bytes);
        }),
        fuzzParams(400),
      );
    },
    fuzzTimeoutMs(60_000),
  );

  it('the unmutated bundle imports, and a second import adds nothing', () => {
    writeFileSync(scratch, bundle);
    const first = target.importBundle(scratch);
    expect(first.artifacts).toBeGreaterThan(0);
    const again = target.importBundle(scratch);
    expect(again.added).toBe(0);
  });
});
