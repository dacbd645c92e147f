/**
 * Issue #10, defect 9: prepared programs used to stay loaded until close() — every distinct
 * eBPF build kept its 3 fds (under `ulimit -n 512`, build ~165 on failed), every distinct WASM
 * build its module. The executor's prepared-program cache is now bounded (programs, fds,
 * bytes), least recently used out first, and what falls out is disposed — never while an
 * execution uses it. Running out of fds at prepare evicts the idle programs and retries once.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBpfBuild } from '../src/backends/ebpf/backend.js';
import { createWasmBuild } from '../src/backends/wasm/backend.js';
import { createBuild } from '../src/runtime/build.js';
import { PreparedCache, preparedCacheLimits } from '../src/runtime/prepared-cache.js';
import { buildUdpFrame } from '../src/runtime/packets.js';
import { sandboxSpec } from '../src/runtime/sandbox.js';
import type { Backend, Prepared } from '../src/runtime/types.js';
import { Thunderpac } from '../src/thunderpac.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';
import { buildGuests, bytes, guest } from './wasm-fixtures.js';

const openFds = (): number => readdirSync('/proc/self/fd').length;
const packet = buildUdpFrame({ srcPort: 1, dstPort: 2, payload: new Uint8Array(8) });
let dir: string;

beforeAll(() => {
  buildGuests();
  dir = mkdtempSync(join(tmpdir(), 'tp-prepared-cache-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A backend whose programs cost what the test says and that records what it disposed. */
function recordingBackend(fdsPerProgram: number) {
  const disposed: string[] = [];
  const backend: Backend = {
    name: 'p4',
    versions: {},
    prepare: async (build) => ({ buildId: build.id, backend: 'p4' }),
    run: async () => ({ kind: 'bytes', bytes: new Uint8Array(0) }),
    dispose: async (p: Prepared) => {
      disposed.push(p.buildId);
    },
    cost: () => ({ fds: fdsPerProgram, bytes: 0 }),
  };
  return { backend, disposed };
}

const spec = sandboxSpec({ backend: 'p4' });
const idOf = (i: number) =>
  createBuild({
    kind: 'p4',
    name: `b${i}`,
    source: new Uint8Array([i]),
    artifacts: {},
    inputSchema: { kind: 'any' },
    outputSchema: { kind: 'any' },
  }).id;

describe('the prepared-program cache', () => {
  it('keeps the most recently used programs within its budgets and disposes the rest', async () => {
    const { backend, disposed } = recordingBackend(3);
    const cache = new PreparedCache(preparedCacheLimits({ maxPrograms: 100, maxFds: 9 }, 'test'));
    const ids = [0, 1, 2, 3].map(idOf);
    const entries = [];
    for (const id of ids.slice(0, 3)) {
      const e = cache.add(spec, id, backend, () => backend.prepare({ id } as never, spec));
      await e.promise;
      cache.unpin(e);
      entries.push(e);
    }
    cache.touch(entries[0]!); // 0 is now the most recent: 1 is the oldest
    const e3 = cache.add(spec, ids[3]!, backend, () => backend.prepare({ id: ids[3] } as never, spec));
    await e3.promise;
    cache.unpin(e3);
    await cache.evictIdle().then(
      () => undefined,
      () => undefined,
    );
    expect(disposed[0]).toBe(ids[1]); // 4 × 3 fds > 9: the least recently used went first
  });

  it('never disposes a program an execution pins; it goes when the execution ends', async () => {
    const { backend, disposed } = recordingBackend(1);
    const cache = new PreparedCache(preparedCacheLimits({ maxPrograms: 1 }, 'test'));
    const [a, b] = [idOf(10), idOf(11)];
    const ea = cache.add(spec, a, backend, () => backend.prepare({ id: a } as never, spec));
    await ea.promise; // ea stays pinned: its execution is still running
    const eb = cache.add(spec, b, backend, () => backend.prepare({ id: b } as never, spec));
    await eb.promise;
    await new Promise((r) => setImmediate(r));
    expect(disposed).toEqual([]); // over budget, but both programs are in use
    cache.unpin(ea); // ea's execution ends: the oldest unpinned program goes
    await cache.evictIdle().catch(() => undefined);
    expect(disposed).toEqual([a]);
    expect(cache.find(spec, a)).toBeUndefined();
    expect(cache.find(spec, b)).toBe(eb);
    cache.unpin(eb);
    expect(cache.stats().programs).toBeLessThanOrEqual(1);
  });

  it('does not keep a failed prepare', async () => {
    const { backend } = recordingBackend(1);
    const cache = new PreparedCache(preparedCacheLimits({}, 'test'));
    const id = idOf(20);
    const e = cache.add(spec, id, backend, () => Promise.reject(new Error('refused')));
    await e.promise.catch(() => undefined);
    cache.unpin(e);
    expect(cache.find(spec, id)).toBeUndefined();
    expect(cache.stats()).toMatchObject({ programs: 0, fds: 0 });
  });

  it('refuses limits outside their bounds by name', async () => {
    for (const bad of [{ maxPrograms: 0 }, { maxFds: 1.5 }, { maxBytes: -1 }, { maxPrograms: 'many' }]) {
      await expect(Thunderpac.open({ store: false, preparedCache: bad as never })).rejects.toMatchObject({
        code: 'VALIDATION_RANGE',
        path: expect.stringMatching(/^ExecutorOptions\.preparedCache\./),
      });
    }
  });
});

describe('distinct eBPF builds in one process', () => {
  it('hold at most maxFds descriptors, and every execution succeeds', async () => {
    const tp = await Thunderpac.open({ store: join(dir, 'bpf'), preparedCache: { maxFds: 24 } });
    const sandbox = tp.sandbox({ backend: 'ebpf' });
    const object = readFileSync(bpfObjectPath('xdp_pass.bpf.o'));
    const before = openFds();
    let most = 0;
    try {
      for (let i = 0; i < 150; i++) {
        const build = createBpfBuild(object, { name: `pass-${i}` });
        const r = await tp.execute(sandbox, {
          build,
          entry: 'xdp_pass',
          input: { kind: 'packet', bytes: packet },
        });
        expect(r.status, r.error?.message).toBe('completed');
        most = Math.max(most, openFds() - before);
        expect(tp.executor.preparedCache.fds).toBeLessThanOrEqual(24);
      }
    } finally {
      await tp.close();
    }
    // Before: 3 more fds per build (450 here). Now: the cache's budget plus the store's files.
    expect(most).toBeLessThanOrEqual(24 + 8);
  });

  it('1,000 of them under `ulimit -n 512` run to the end in a child process', () => {
    const out = execFileSync(
      'bash',
      [
        '-c',
        'ulimit -n 512 && exec node_modules/.bin/vite-node test/helpers/distinct-bpf-builds.ts -- 1000 "$0"',
        join(dir, 'child'),
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    const [, completed, failed, firstFailure, mostFds] = out.trim().split('\n').at(-1)!.split(' ');
    expect({ completed, failed, firstFailure }).toEqual({
      completed: '1000',
      failed: '0',
      firstFailure: '-',
    });
    expect(Number(mostFds)).toBeLessThan(512);
  }, 150_000);

  it('with a budget past the ulimit, running out of fds is a typed failure the next executions recover from', () => {
    // The cache may then fill every fd the process has: whatever hits EMFILE first (a prepare,
    // the store) fails its execution with a typed code, the idle programs are released, and a
    // prepare that hits it is retried once after that release.
    const out = execFileSync(
      'bash',
      [
        '-c',
        'ulimit -n 512 && exec node_modules/.bin/vite-node test/helpers/distinct-bpf-builds.ts -- 400 "$0" 1000000',
        join(dir, 'child-relief'),
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    const [, completed, failed, codes] = out.trim().split('\n').at(-1)!.split(' ');
    expect(Number(completed) + Number(failed)).toBe(400);
    expect(Number(completed)).toBeGreaterThanOrEqual(390);
    for (const code of codes!.split(',')) expect(['-', 'EMFILE', 'FD_EXHAUSTED']).toContain(code);
  }, 150_000);
});

describe('distinct WASM builds in one sandbox', () => {
  it('keep at most maxPrograms prepared, and an evicted build prepares again when it comes back', async () => {
    const tp = await Thunderpac.open({ store: false, preparedCache: { maxPrograms: 16 } });
    const sandbox = tp.sandbox({ backend: 'wasm', limits: { fuel: 1_000_000 } });
    const echo = guest('echo');
    try {
      const first = createWasmBuild(echo, { name: 'echo-0' });
      for (let i = 0; i < 200; i++) {
        const build = i === 0 ? first : createWasmBuild(echo, { name: `echo-${i}` });
        const r = await tp.execute(sandbox, {
          build,
          entry: 'echo',
          input: { kind: 'bytes', bytes: bytes('x') },
        });
        expect(r.status, r.error?.message).toBe('completed');
        expect(tp.executor.preparedCache.programs).toBeLessThanOrEqual(16);
      }
      const again = await tp.execute(sandbox, {
        build: first,
        entry: 'echo',
        input: { kind: 'bytes', bytes: bytes('y') },
      });
      expect(again.status).toBe('completed');
      expect(tp.executor.preparedCache.bytes).toBeLessThanOrEqual(tp.executor.preparedCache.limits.maxBytes);
    } finally {
      await tp.close();
    }
  });
});
