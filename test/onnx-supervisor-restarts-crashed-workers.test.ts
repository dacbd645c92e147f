import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { ONNX_ENTRY } from '../src/backends/onnx/backend.js';
import { WORKER_RESTART_CHANNEL } from '../src/backends/onnx/pool.js';
import { OnnxSupervisor } from '../src/backends/onnx/supervisor.js';
import { Thunderpac } from '../src/thunderpac.js';
import type { OnnxBackend } from '../src/backends/onnx/backend.js';
import { floatTensor, onnxSandbox, registry, sampleInput, sampleOutput } from './onnx-helpers.js';

const reg = registry();
let tp: Thunderpac | undefined;
afterEach(async () => {
  await tp?.close();
  tp = undefined;
});

function backendOf(t: Thunderpac): OnnxBackend {
  return t.executor.backend('onnx') as unknown as OnnxBackend;
}

/** Kill the worker as soon as it holds the request: a crash mid-inference. */
async function killBusyWorker(backend: OnnxBackend): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const w = backend.pool!.busyWorker();
    if (w) {
      await new Promise((r) => setTimeout(r, 5));
      await w.kill();
      return;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error('no worker became busy');
}

describe('onnx worker crashes', () => {
  it('a worker killed mid-inference is replaced and the request retried to completion', async () => {
    tp = await Thunderpac.open({
      store: false,
      onnx: { workers: 1, isolation: 'process', retries: 1, backoffMs: { initial: 10, max: 100 } },
    });
    const backend = backendOf(tp);
    const restarts: unknown[] = [];
    const onRestart = (m: unknown) => restarts.push(m);
    subscribe(WORKER_RESTART_CHANNEL, onRestart);
    try {
      const build = await reg.build('cnn');
      const sandbox = tp.sandbox(onnxSandbox(build));
      const pending = tp.execute(sandbox, {
        build,
        input: { kind: 'tensors', tensors: { image: floatTensor([256, 3, 32, 32]) } },
        entry: ONNX_ENTRY,
      });
      await killBusyWorker(backend);
      const r = await pending;
      expect(r.error).toBeNull();
      expect(r.status).toBe('completed');
      const s = backend.poolStats()!;
      expect(s.crashes).toBe(1);
      expect(s.retried).toBe(1);
      expect(s.restarts).toBe(1);
      expect(restarts).toHaveLength(1);
    } finally {
      unsubscribe(WORKER_RESTART_CHANNEL, onRestart);
    }
  });

  it('without retries the request fails with ONNX_WORKER_CRASHED (never hangs), and the pool recovers', async () => {
    tp = await Thunderpac.open({
      store: false,
      onnx: { workers: 1, isolation: 'process', retries: 0, backoffMs: { initial: 10, max: 100 } },
    });
    const backend = backendOf(tp);
    const build = await reg.build('cnn');
    const sandbox = tp.sandbox(onnxSandbox(build));
    const pending = tp.execute(sandbox, {
      build,
      input: { kind: 'tensors', tensors: { image: floatTensor([256, 3, 32, 32]) } },
      entry: ONNX_ENTRY,
    });
    await killBusyWorker(backend);
    const r = await pending;
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('ONNX_WORKER_CRASHED');
    expect(r.receipt.error?.code).toBe('ONNX_WORKER_CRASHED');
    const again = await tp.execute(sandbox, {
      build,
      input: { kind: 'tensors', tensors: sampleInput(reg.get('cnn')) },
      entry: ONNX_ENTRY,
    });
    expect(again.status).toBe('completed');
  });

  it.each(['thread', 'process'] as const)(
    'a timeout fails the execution with LIMIT_TIMEOUT_MS and the %s is replaced',
    async (isolation) => {
      tp = await Thunderpac.open({ store: false, onnx: { workers: 1, isolation } });
      const build = await reg.build('cnn');
      const sandbox = tp.sandbox(onnxSandbox(build, { timeoutMs: 5 }));
      const r = await tp.execute(sandbox, {
        build,
        input: { kind: 'tensors', tensors: { image: floatTensor([512, 3, 32, 32]) } },
        entry: ONNX_ENTRY,
      });
      expect(r.status).toBe('failed');
      expect(r.error?.code).toBe('LIMIT_TIMEOUT_MS');
      expect(backendOf(tp).poolStats()!.timeouts).toBe(1);
      // The slot comes back (a process at once; a thread after its run ends) and serves again.
      const again = await tp.execute(tp.sandbox(onnxSandbox(build)), {
        build,
        input: { kind: 'tensors', tensors: sampleInput(reg.get('cnn')) },
        entry: ONNX_ENTRY,
      });
      expect(again.status).toBe('completed');
      expect(backendOf(tp).poolStats()!.restarts).toBe(1);
    },
  );
});

describe('onnx in-thread timeout', () => {
  it('an inference that ran past timeoutMs fails with LIMIT_TIMEOUT_MS once it ends; the next one runs', async () => {
    tp = await Thunderpac.open({ store: false, onnx: { path: 'in-thread' } });
    const build = await reg.build('cnn');
    const r = await tp.execute(tp.sandbox(onnxSandbox(build, { timeoutMs: 1 })), {
      build,
      input: { kind: 'tensors', tensors: { image: floatTensor([512, 3, 32, 32]) } },
      entry: ONNX_ENTRY,
    });
    expect(r.status).toBe('failed');
    expect(r.error?.code).toBe('LIMIT_TIMEOUT_MS');
    expect(r.output).toBeNull();
    expect(r.receipt.resources.engineNs).toBeGreaterThan(1e6);
    const again = await tp.execute(tp.sandbox(onnxSandbox(build)), {
      build,
      input: { kind: 'tensors', tensors: sampleInput(reg.get('cnn')) },
      entry: ONNX_ENTRY,
    });
    expect(again.status).toBe('completed');
  });
});

describe('onnx supervisor', () => {
  it('warms up every worker, probes health on the samples, restarts after a crash, drains', async () => {
    tp = await Thunderpac.open({ store: false, onnx: { workers: 2, backoffMs: { initial: 10, max: 100 } } });
    const backend = backendOf(tp);
    const models = await Promise.all(
      ['mlp', 'tree'].map(async (name) => {
        const m = reg.get(name);
        return { build: await reg.build(name), sample: { inputs: sampleInput(m), outputs: sampleOutput(m) } };
      }),
    );
    const sup = new OnnxSupervisor({ backend, models, probeIntervalMs: 0 });
    const warm = await sup.start();
    expect(warm.problems).toEqual([]);
    expect(sup.state).toBe('ready');
    expect(backend.poolStats()!.alive).toBe(2);

    await backend.pool!.workers()[0]!.kill(); // idle: safe for a thread
    await new Promise((r) => setTimeout(r, 100)); // past the restart backoff
    expect(backend.poolStats()!.restarts).toBe(1);
    const probe = await sup.probe();
    expect(probe.ok).toBe(true);
    expect(sup.health()).toMatchObject({ state: 'ready', probes: 2, failedProbes: 0 });

    // A probe whose expected output no longer matches marks the supervisor degraded.
    const bad = new OnnxSupervisor({
      backend,
      models: [
        {
          ...models[0]!,
          sample: { ...models[0]!.sample, outputs: { probs: sampleOutput(reg.get('tree')).probabilities! } },
        },
      ],
      probeIntervalMs: 0,
    });
    expect((await bad.start()).ok).toBe(false);
    expect(bad.state).toBe('degraded');

    // Periodic probes run on their own.
    const periodic = new OnnxSupervisor({ backend, models, probeIntervalMs: 20 });
    await periodic.start();
    await new Promise((r) => setTimeout(r, 150));
    expect(periodic.health().probes).toBeGreaterThanOrEqual(3);
    expect(periodic.health().failedProbes).toBe(0);

    await sup.drain();
    expect(sup.state).toBe('stopped');
    expect(await periodic.probe()).toMatchObject({ ok: false });
    await expect(backend.pool!.run('k', new Uint8Array(), {}, {}, 10)).rejects.toThrow(/shutting down/);
  });
});
