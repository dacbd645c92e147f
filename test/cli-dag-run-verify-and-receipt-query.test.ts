import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { packagePath } from '../src/runtime/package-root.js';
import { ipv4Frame } from './p4-helpers.js';

let tmp: string;
let out: string;
let err: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tp-cli-dag-'));
  out = '';
  err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((c) => {
    out += String(c);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((c) => {
    err += String(c);
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(tmp, { recursive: true, force: true });
});

async function json<T>(argv: string[], code = 0): Promise<T> {
  out = '';
  expect(await main(argv), err).toBe(code);
  return JSON.parse(out) as T;
}

describe('thunderpac dag and receipt query', () => {
  it('runs a spec file, verifies from the last receipt, and answers lineage and index queries', async () => {
    const store = join(tmp, 'store');
    const spec = join(tmp, 'pipeline.json');
    const root = packagePath('.');
    writeFileSync(
      spec,
      JSON.stringify({
        name: 'route-features-classify',
        input: {
          kind: 'packet',
          hex: Buffer.from(ipv4Frame({ dst: [10, 0, 2, 3], ttl: 40 })).toString('hex'),
        },
        steps: [
          { name: 'route', p4: join(root, 'p4/samples/basic_router.p4') },
          {
            name: 'features',
            wasm: join(root, 'wasm/pkt_features.wasm'),
            entry: 'features',
            adapter: { kind: 'packet-to-bytes' },
          },
          {
            name: 'classify',
            model: 'mlp@1',
            adapter: { kind: 'bytes-to-tensor', name: 'x', dtype: 'float32', shape: [1, 4] },
          },
        ],
      }),
    );
    type Run = { status: string; lastReceipt: string; steps: { name: string; receipt: string }[] };
    const run = await json<Run>(['dag', 'run', spec, '--json', '--store', store]);
    expect(run.status).toBe('completed');
    const [route, features, classify] = run.steps.map((s) => s.receipt);
    expect(run.lastReceipt).toBe(classify);

    const verified = await json<{ match: boolean; steps: { status: string }[] }>([
      'dag',
      'verify',
      classify!,
      '--json',
      '--store',
      store,
    ]);
    expect(verified.match).toBe(true);
    expect(verified.steps.map((s) => s.status)).toEqual(['match', 'match', 'match']);
    out = '';
    expect(await main(['dag', 'verify', classify!, '--store', store])).toBe(0);
    expect(out).toMatch(/every step replays/);

    type Show = { input: { hash: string }; output: { hash: string }; buildId: string };
    const first = await json<Show>(['receipt', 'show', route!, '--store', store]);
    const mid = await json<Show>(['receipt', 'show', features!, '--store', store]);
    const produced = await json<{ producers: string[]; ancestors: string[] }>([
      'receipt',
      'query',
      '--produced-by',
      mid.output.hash,
      '--json',
      '--store',
      store,
    ]);
    expect(produced).toMatchObject({ producers: [features], ancestors: [route] });
    const derived = await json<{ receipts: { receipt: string; depth: number }[] }>([
      'receipt',
      'query',
      '--derived-from',
      first.input.hash,
      '--json',
      '--store',
      store,
    ]);
    expect(derived.receipts.map((d) => [d.receipt, d.depth])).toEqual([
      [route, 1],
      [features, 2],
      [classify, 3],
    ]);
    const byBuild = await json<{ id: string }[]>([
      'receipt',
      'query',
      '--build',
      mid.buildId,
      '--json',
      '--store',
      store,
    ]);
    expect(byBuild.map((r) => r.id)).toEqual([features]);
    const failed = await json<unknown[]>([
      'receipt',
      'query',
      '--status',
      'failed',
      '--json',
      '--store',
      store,
    ]);
    expect(failed).toEqual([]);

    expect(await main(['receipt', 'query', '--produced-by', 'xyz', '--store', store])).toBe(2);
    expect(err).toMatch(/--produced-by expects a sha256 digest/);
    expect(await main(['receipt', 'query', '--store', store])).toBe(2);
    expect(await main(['dag', 'verify', route!.replace(/^./, 'f'), '--store', store])).toBe(2);
    expect(err).toMatch(/NOT_FOUND/);
  }, 60_000);

  it('a spec with a bad field exits 2 naming it', async () => {
    const spec = join(tmp, 'bad.json');
    writeFileSync(
      spec,
      JSON.stringify({
        name: 'x',
        input: { kind: 'bytes', hex: '00' },
        steps: [{ name: 's', wasm: 'a.wasm', lua: 1 }],
      }),
    );
    writeFileSync(join(tmp, 'a.wasm'), '');
    expect(await main(['dag', 'run', spec, '--store', join(tmp, 's')])).toBe(2);
    expect(err).toMatch(/DAG_SPEC_INVALID|entry/);
  });
});
