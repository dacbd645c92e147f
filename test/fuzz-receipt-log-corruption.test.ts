/**
 * Fuzz target: receipt-log corruption and concurrent writers (issue #10, defects 4 and 5).
 *
 * Oracle for every damaged file: opening it either throws a LogIntegrityError that names a byte
 * inside the file and leaves every byte as it was, or succeeds holding every record — except the
 * one thing a crash can leave and the log may cut: a torn tail after the committed end (the bytes
 * end mid-record), and only when opened for writing. A read-only open never changes a byte and
 * sees the same records. Short in the suite; `THUNDERPAC_FUZZ_RUNS=N` scales the sampled offsets
 * (every byte from about N=70, every cut offset from about N=100) and the random cases.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Receipt } from '../src/runtime/receipt.js';
import { LogIntegrityError, StoreLockedError } from '../src/store/errors.js';
import { ReceiptLog } from '../src/store/receipt-log.js';
import { fuzzParams, fuzzRuns, fuzzTimeoutMs } from './helpers/fuzz.js';
import {
  recordOffsets,
  sampleReceipt,
  writeClosedLog,
  writeCrashedLog,
} from './helpers/receipt-log-fixtures.js';

let dir: string;
let path: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-fuzz-log-'));
  path = join(dir, 'receipts.log');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const receipts = Array.from({ length: 12 }, (_, i) => sampleReceipt(i, `fuzz-${i % 3}`));
const ids = receipts.map((r) => r.id);

type Outcome = { ids: readonly string[] } | { error: LogIntegrityError };

/** Open `bytes` as a log; checks the invariants every outcome must keep, returns the outcome. */
function openDamaged(bytes: Buffer, readOnly: boolean): Outcome {
  writeFileSync(path, bytes);
  let outcome: Outcome;
  try {
    const log = new ReceiptLog(path, { readOnly, sync: 'never' });
    outcome = { ids: [...log.ids()] };
    log.close();
  } catch (err) {
    if (!(err instanceof LogIntegrityError)) throw err;
    expect(err.code).toBe('INTEGRITY');
    expect(err.offset).toBeGreaterThanOrEqual(0);
    expect(err.offset).toBeLessThanOrEqual(bytes.length);
    expect(err.message).toContain(`at byte ${err.offset}`);
    outcome = { error: err };
    // A refused log is left exactly as it was.
    expect(readFileSync(path).equals(bytes)).toBe(true);
  }
  if (readOnly) expect(readFileSync(path).equals(bytes)).toBe(true);
  return outcome;
}

/**
 * Both opens agree and the records kept are `allowed` — every record, or (only where a torn
 * tail is possible) the records the caller says may remain.
 */
function check(bytes: Buffer, allowed: readonly (readonly string[])[]): void {
  const reader = openDamaged(bytes, true);
  const writer = openDamaged(bytes, false);
  if ('error' in reader || 'error' in writer) {
    expect('error' in reader && 'error' in writer).toBe(true);
    return;
  }
  expect(reader.ids).toEqual(writer.ids);
  expect(allowed).toContainEqual(writer.ids);
}

/**
 * Let the event loop turn now and then: a long run is minutes of synchronous work, and vitest's
 * worker must still answer its runner.
 */
let sinceYield = 0;
async function breathe(): Promise<void> {
  if (++sinceYield % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
}

/** Offsets to try: every one when the run is long enough, else an even sample across the file. */
function sampledOffsets(size: number, short: number): number[] {
  const count = Math.min(size, fuzzRuns(short));
  const stride = size / count;
  return Array.from({ length: count }, (_, i) => Math.floor(i * stride));
}

describe('fuzz: a damaged receipt log is reported or kept whole, never cut silently', () => {
  it(
    'a cleanly closed log: a bit flipped at any byte',
    async () => {
      const clean = writeClosedLog(path, receipts);
      for (const at of sampledOffsets(clean.length, 300)) {
        const bytes = Buffer.from(clean);
        bytes[at]! ^= 1 << (at % 8);
        check(bytes, [ids]);
        await breathe();
      }
    },
    fuzzTimeoutMs(30_000),
  );

  it(
    'a cleanly closed log: cut at any offset is reported (the head commits every record)',
    async () => {
      const clean = writeClosedLog(path, receipts);
      for (const at of sampledOffsets(clean.length, 200)) {
        const outcome = openDamaged(clean.subarray(0, at), false);
        expect('error' in outcome).toBe(true);
        await breathe();
      }
    },
    fuzzTimeoutMs(30_000),
  );

  it(
    'a crashed log (records after the head): any byte flipped; only the last record length may read as torn',
    async () => {
      const crashed = writeCrashedLog(path, receipts.slice(0, 7), receipts.slice(7));
      const last = recordOffsets(crashed).at(-1)!;
      for (const at of sampledOffsets(crashed.length, 300)) {
        const bytes = Buffer.from(crashed);
        bytes[at]! ^= 1 << (at % 8);
        // A last length grown past the end of the file is what a torn write looks like.
        const tornLooking = at >= last && at < last + 4;
        check(bytes, tornLooking ? [ids, ids.slice(0, -1)] : [ids]);
        await breathe();
      }
    },
    fuzzTimeoutMs(30_000),
  );

  it(
    'a crashed log: cut at any offset keeps exactly the whole records before the cut, or is reported inside the committed part',
    async () => {
      const crashed = writeCrashedLog(path, receipts.slice(0, 7), receipts.slice(7));
      const offsets = recordOffsets(crashed);
      const committedEnd = offsets[7]!;
      const ends = [...offsets.slice(1), crashed.length];
      for (const at of sampledOffsets(crashed.length, 300)) {
        const cut = crashed.subarray(0, at);
        if (at < committedEnd) {
          expect('error' in openDamaged(cut, false)).toBe(true);
          await breathe();
          continue;
        }
        const whole = ends.filter((end) => end <= at).length;
        check(cut, [ids.slice(0, whole)]);
        await breathe();
      }
    },
    fuzzTimeoutMs(30_000),
  );

  it(
    'random damage: several bytes overwritten, runs zeroed, records duplicated',
    async () => {
      const crashed = writeCrashedLog(path, receipts.slice(0, 7), receipts.slice(7));
      const offsets = recordOffsets(crashed);
      const last = offsets.at(-1)!;
      const edit = fc.oneof(
        fc.record({ kind: fc.constant('set' as const), at: fc.nat(crashed.length - 1), value: fc.nat(255) }),
        fc.record({
          kind: fc.constant('zero' as const),
          at: fc.nat(crashed.length - 1),
          length: fc.integer({ min: 1, max: 64 }),
        }),
        fc.record({ kind: fc.constant('dup' as const), record: fc.nat(offsets.length - 2) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), async (edits) => {
          let bytes = Buffer.from(crashed);
          let touchedLast = false;
          for (const e of edits) {
            if (e.kind === 'set') {
              bytes[e.at] = e.value;
              touchedLast ||= e.at >= last;
            } else if (e.kind === 'zero') {
              bytes.fill(0, e.at, Math.min(e.at + e.length, bytes.length));
              touchedLast ||= e.at + e.length > last;
            } else {
              const from = offsets[e.record]!;
              const to = offsets[e.record + 1]!;
              bytes = Buffer.concat([bytes.subarray(0, to), bytes.subarray(from, to), bytes.subarray(to)]);
              touchedLast = true;
            }
          }
          // Kept records are always a prefix of what was written, with every committed one;
          // only damage reaching the last record can shorten it, and only by that record.
          const allowed = touchedLast ? [ids, ids.slice(0, -1)] : [ids];
          check(bytes, allowed);
          await breathe();
        }),
        fuzzParams(200),
      );
    },
    fuzzTimeoutMs(30_000),
  );
});

describe('fuzz: writers and readers interleaved on one log', () => {
  it(
    'one writer at a time; readers see a prefix of what was acknowledged; nothing acknowledged is lost',
    async () => {
      const op = fc.oneof(
        fc.record({ kind: fc.constant('open' as const), handle: fc.nat(2) }),
        fc.record({ kind: fc.constant('close' as const), handle: fc.nat(2) }),
        fc.record({
          kind: fc.constant('append' as const),
          handle: fc.nat(2),
          count: fc.integer({ min: 1, max: 5 }),
        }),
        fc.record({ kind: fc.constant('flush' as const), handle: fc.nat(2) }),
        fc.record({ kind: fc.constant('read' as const) }),
      );
      let trial = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(op, { maxLength: 30 }),
          fc.constantFrom('always', 'batch', 'never'),
          async (ops, sync) => {
            const logPath = join(dir, `interleaved-${trial++}.log`);
            const writers: (ReceiptLog | undefined)[] = [undefined, undefined, undefined];
            const acknowledged: string[] = [];
            let next = 0;
            for (const o of ops) {
              if (o.kind === 'open') {
                if (writers[o.handle]) continue;
                const holder = writers.some(Boolean);
                try {
                  writers[o.handle] = new ReceiptLog(logPath, { sync: sync as 'always' });
                  expect(holder).toBe(false);
                  expect(writers[o.handle]!.ids()).toEqual(acknowledged);
                } catch (err) {
                  expect(err).toBeInstanceOf(StoreLockedError);
                  expect(holder).toBe(true);
                }
              } else if (o.kind === 'close' || o.kind === 'flush') {
                writers[o.handle]?.[o.kind]();
                if (o.kind === 'close') writers[o.handle] = undefined;
              } else if (o.kind === 'append') {
                const w = writers[o.handle];
                if (!w) continue;
                for (let i = 0; i < o.count; i++) {
                  const r: Receipt = sampleReceipt(next++, 'interleaved');
                  w.append(r);
                  acknowledged.push(r.id);
                }
              } else {
                const reader = new ReceiptLog(logPath, { readOnly: true });
                const seen = reader.ids();
                expect(seen).toEqual(acknowledged.slice(0, seen.length));
                reader.close();
              }
            }
            for (const w of writers) w?.close();
            const reader = new ReceiptLog(logPath, { readOnly: true });
            expect(reader.ids()).toEqual(acknowledged);
            reader.close();
            rmSync(logPath, { force: true });
            await breathe();
          },
        ),
        fuzzParams(150),
      );
    },
    fuzzTimeoutMs(30_000),
  );
});
