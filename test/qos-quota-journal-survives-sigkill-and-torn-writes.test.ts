/**
 * Quotas persist in a checksummed journal: a reopen restores exactly what was acknowledged; a
 * writer killed with SIGKILL mid-consume loses nothing it acknowledged and invents nothing
 * beyond the one consume it was making; a torn tail (any cut of the file) restores exactly the
 * records wholly before the cut, and the next writer cuts the torn bytes off before appending.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/qos/clock.js';
import { Quotas, QuotaFileLockedError } from '../src/qos/quotas/index.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tp-quota-journal-'));
  dirs.push(d);
  return d;
}

const T0 = Date.UTC(2026, 11, 5, 8, 0, 0);
const KEYS = ['a:alice', 'a:bob', 'r:execute', 'ar:5:alice:execute'];

type Op =
  | { kind: 'consume'; key: number; amount: number }
  | { kind: 'reset'; key: number }
  | { kind: 'advance'; ms: number };
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('consume' as const),
      key: fc.nat(3),
      amount: fc.integer({ min: 0, max: 12 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reset' as const), key: fc.nat(3) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.integer({ min: 0, max: 2_000_000 }),
    }),
  },
);

function run(q: Quotas, clock: ManualClock, ops: readonly Op[]): void {
  for (const o of ops) {
    if (o.kind === 'consume') q.tryConsumeSync(KEYS[o.key]!, o.amount);
    else if (o.kind === 'reset') q.resetSync(KEYS[o.key]!);
    else clock.advance(o.ms);
  }
}

function snapshot(q: Quotas) {
  return KEYS.map((k) => q.getSync(k));
}

describe('a quota journal', () => {
  it('round-trips: a reopened quota file answers every key as before, in every durability mode', () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 60 }),
        fc.constantFrom('write', 'fsync', 'batched'),
        (ops, durability) => {
          const file = join(tempDir(), 'quotas.journal');
          const clock = new ManualClock(T0);
          const plan = { limit: 40, period: 'hour' as const };
          const q = new Quotas({ plan, file, wallClock: clock, durability, compactAtBytes: 512 });
          run(q, clock, ops);
          const before = snapshot(q);
          q.close();
          const again = new Quotas({ plan, file, wallClock: clock });
          expect(snapshot(again)).toEqual(before);
          again.close();
        },
      ),
      { numRuns: 40 },
    );
  });

  it('is held by one exclusive writer: a second exclusive open is refused, typed', () => {
    const file = join(tempDir(), 'quotas.journal');
    const q = new Quotas({ plan: { limit: 1 }, file });
    expect(() => new Quotas({ plan: { limit: 1 }, file })).toThrow(QuotaFileLockedError);
    q.close();
    new Quotas({ plan: { limit: 1 }, file }).close();
  });

  it('restores exactly the records wholly before any cut, and the next writer cuts the torn bytes off', () => {
    const file = join(tempDir(), 'quotas.journal');
    const clock = new ManualClock(T0);
    const plan = { limit: 1000, period: 'day' as const };
    const q = new Quotas({ plan, file, wallClock: clock });
    const expected: { end: number; state: ReturnType<typeof snapshot> }[] = [{ end: 0, state: snapshot(q) }];
    for (let i = 0; i < 40; i++) {
      q.tryConsumeSync(KEYS[i % 4]!, (i % 7) + 1);
      expected.push({ end: readFileSync(file).length, state: snapshot(q) });
      if (i % 13 === 12) {
        q.resetSync(KEYS[i % 4]!);
        expected.push({ end: readFileSync(file).length, state: snapshot(q) });
      }
    }
    q.close();
    const whole = readFileSync(file);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: whole.length }), (cut) => {
        writeFileSync(file, whole.subarray(0, cut));
        const want = expected.filter((e) => e.end <= cut).at(-1)!;
        const r = new Quotas({ plan, file, wallClock: clock });
        try {
          expect(snapshot(r)).toEqual(want.state);
          expect(r.tornBytesCut).toBe(cut - want.end);
          // The next record lands on a clean line boundary: a reopen reads it back.
          r.tryConsumeSync('a:carol', 3);
        } finally {
          r.close();
        }
        const again = new Quotas({ plan, file, wallClock: clock });
        try {
          expect(again.getSync('a:carol').used).toBe(3);
          expect(snapshot(again)).toEqual(want.state);
          expect(again.damagedRecords).toBe(0);
        } finally {
          again.close();
        }
      }),
      { numRuns: 80 },
    );
  });

  it('skips a damaged line in the middle (counted) and keeps every other record', () => {
    const file = join(tempDir(), 'quotas.journal');
    const clock = new ManualClock(T0);
    const plan = { limit: 1000, period: 'day' as const };
    const q = new Quotas({ plan, file, wallClock: clock });
    q.tryConsumeSync('a:x', 5);
    q.tryConsumeSync('a:y', 7);
    q.tryConsumeSync('a:z', 9);
    q.close();
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[1] = lines[1]!.replace('"u":7', '"u":8'); // checksum no longer matches
    writeFileSync(file, lines.join('\n'));
    const r = new Quotas({ plan, file, wallClock: clock });
    expect([r.getSync('a:x').used, r.getSync('a:y').used, r.getSync('a:z').used]).toEqual([5, 0, 9]);
    expect(r.damagedRecords).toBe(1);
    r.close();
  });

  const VITE_NODE = join(process.cwd(), 'node_modules', '.bin', 'vite-node');
  const CONSUMER = join(process.cwd(), 'test', 'helpers', 'qos-quota-consumer.ts');
  const amount = (i: number) => (i % 5) + 1;

  for (const sharing of ['exclusive', 'shared'] as const) {
    it(`loses no acknowledged consume and invents none when its ${sharing} writer is SIGKILLed mid-consume`, async () => {
      for (const killAfter of [1, 200, 5000]) {
        const dir = tempDir();
        const file = join(dir, 'quotas.journal');
        const ackFile = join(dir, 'acks');
        const child = spawn(VITE_NODE, [CONSUMER, '--', 'crash', file, sharing, ackFile], {
          stdio: 'inherit',
        });
        children.push(child);
        const exited = new Promise((resolve) => child.once('exit', resolve));
        while (!existsSync(ackFile) || readFileSync(ackFile, 'utf8').split('\n').length <= killAfter) {
          await new Promise((r) => setTimeout(r, 5));
        }
        child.kill('SIGKILL');
        await exited;
        const acks = readFileSync(ackFile, 'utf8').split('\n');
        acks.pop(); // the part after the last newline: not a whole acknowledgement
        expect(acks).toEqual(acks.map((_, i) => String(i)));
        const acked = acks.reduce((sum, _, i) => sum + amount(i), 0);
        // Torn bytes as a kill mid-write of a bigger record would leave them: cut on reopen.
        appendFileSync(file, '0badc0de {"k":"k","p":0,"u');
        const q = new Quotas({ plan: { limit: Number.MAX_SAFE_INTEGER, period: 'never' }, file, sharing });
        const used = q.getSync('k').used;
        // The consume in flight when killed is either wholly recorded or not at all.
        expect([acked, acked + amount(acks.length)]).toContain(used);
        expect(q.tornBytesCut).toBeGreaterThan(0);
        q.close();
      }
    });
  }

  it('keeps batched consumes once flushed, and close() flushes', () => {
    const file = join(tempDir(), 'quotas.journal');
    const clock = new ManualClock(T0);
    const q = new Quotas({
      plan: { limit: 100 },
      file,
      wallClock: clock,
      durability: 'batched',
      flushMaxRecords: 1000,
    });
    q.tryConsumeSync('a:x', 4);
    expect(readFileSync(file).length).toBe(0); // acknowledged, not yet written: the trade-off
    q.flush();
    expect(readFileSync(file).length).toBeGreaterThan(0);
    q.tryConsumeSync('a:x', 5);
    q.close();
    const r = new Quotas({ plan: { limit: 100 }, file, wallClock: clock });
    expect(r.getSync('a:x').used).toBe(9);
    r.close();
    truncateSync(file, 0);
  });
});
