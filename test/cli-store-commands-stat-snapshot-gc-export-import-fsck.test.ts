/**
 * `thunderpac store …` (issue #13): stat, snapshot, gc, export/import between two stores, and
 * fsck, which finds a flipped byte in a segment and names the file and the byte.
 */

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packagePath } from '../src/runtime/package-root.js';
import { cli } from './helpers/cli.js';
import { buildGuests } from './wasm-fixtures.js';

let dir: string;
let store: string;
let other: string;
const echo = packagePath('wasm', 'echo.wasm');
const receipts: { id: string; buildId: string }[] = [];

beforeAll(async () => {
  buildGuests();
  dir = mkdtempSync(join(tmpdir(), 'tp-cli-store-'));
  store = join(dir, 'store');
  other = join(dir, 'other');
  for (const text of ['one', 'two', 'three']) {
    const input = join(dir, `${text}.txt`);
    writeFileSync(input, text);
    const r = await cli('run', echo, '--export', 'reverse', '--input', input, '--store', store, '--json');
    expect(r.code).toBe(0);
    receipts.push((JSON.parse(r.out) as { receipt: { id: string; buildId: string } }).receipt);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('thunderpac store', () => {
  it('stat counts artifacts, receipts and files; far fewer files than executions would have made', async () => {
    const r = await cli('store', 'stat', '--store', store, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as { artifacts: number; receipts: number; files: number; segments: number };
    expect(s.receipts).toBe(3);
    expect(s.artifacts).toBeGreaterThanOrEqual(3 * 2 + 2); // inputs, outputs, manifest, wasm
    expect(s.segments).toBeGreaterThanOrEqual(1);
    expect(readdirSync(store)).not.toContain('payloads');
  });

  it('snapshot create / list', async () => {
    const made = await cli('store', 'snapshot', '--label', 'before-gc', '--store', store, '--json');
    expect(made.code).toBe(0);
    const snap = JSON.parse(made.out) as { id: string; label: string; artifacts: number };
    expect(snap.label).toBe('before-gc');
    const list = await cli('store', 'snapshot', 'list', '--store', store, '--json');
    expect((JSON.parse(list.out) as { id: string }[]).map((s) => s.id)).toContain(snap.id);
  });

  it('gc --dry-run reports and changes nothing; every receipt still verifies', async () => {
    const r = await cli('store', 'gc', '--dry-run', '--keep-receipts', '1', '--store', store, '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as { dryRun: boolean; receipts: { total: number; kept: number } };
    expect(report).toMatchObject({ dryRun: true, receipts: { total: 3, kept: 1 } });
    for (const { id } of receipts)
      expect((await cli('receipt', 'verify', id, '--store', store)).code).toBe(0);
  });

  it('export a build, import it into another store, where its receipts replay', async () => {
    const bundle = join(dir, 'echo.tpb');
    const ex = await cli(
      'store',
      'export',
      bundle,
      '--build',
      receipts[0]!.buildId,
      '--store',
      store,
      '--json',
    );
    expect(ex.code).toBe(0);
    expect(JSON.parse(ex.out)).toMatchObject({ receipts: 3, builds: 1 });
    const check = await cli('store', 'import', bundle, '--check', '--store', other, '--json');
    expect(check.code).toBe(0);
    const im = await cli('store', 'import', bundle, '--store', other, '--json');
    expect(im.code).toBe(0);
    expect(JSON.parse(im.out)).toMatchObject({ receipts: 3 });
    const v = await cli('receipt', 'verify', receipts[2]!.id, '--store', other);
    expect(v.code).toBe(0);
  });

  it('fsck is clean, then finds a flipped byte in a segment and names the file and byte (exit 1)', async () => {
    const clean = await cli('store', 'fsck', '--store', store, '--json');
    expect(clean.code, clean.out + clean.err).toBe(0);
    expect(JSON.parse(clean.out)).toMatchObject({ ok: true, checked: { receipts: 3 } });
    const segDir = join(store, 'blocks', 'segments');
    const seg = join(segDir, readdirSync(segDir).filter((n) => n.endsWith('.seg'))[0]!);
    const bytes = readFileSync(seg);
    bytes[bytes.length - 2]! ^= 0x01;
    writeFileSync(seg, bytes);
    const damaged = await cli('store', 'fsck', '--store', store, '--json');
    expect(damaged.code).toBe(1);
    const report = JSON.parse(damaged.out) as {
      ok: boolean;
      problems: { part: string; path?: string; offset?: number }[];
    };
    expect(report.ok).toBe(false);
    expect(
      report.problems.some((p) => p.part === 'blocks' && p.path === seg && typeof p.offset === 'number'),
    ).toBe(true);
    const text = await cli('store', 'fsck', '--store', store);
    expect(text.out).toMatch(/blocks: .*altered on disk.*byte \d+/);
  });

  it('refuses bad command lines by flag', async () => {
    expect((await cli('store', 'nope', '--store', store)).code).toBe(2);
    const r = await cli('store', 'gc', '--keep-receipts', 'many', '--store', store);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--keep-receipts');
    expect((await cli('store', 'export', join(dir, 'x.tpb'), '--store', store)).err).toContain('--build');
  });
});
