/**
 * The demo: what thunderpac does today, end to end, with real engines.
 *   1. a WASM guest written in C (clang + wasi-libc) and one in WAT run through the runtime;
 *   2. a runaway WASM guest stopped by the sandbox timeout, with a failed receipt;
 *   3. an XDP program run in the kernel on real packets (BPF_PROG_TEST_RUN);
 *   4. a checksummed ONNX model (a small CNN) run by onnxruntime on its sample image;
 *   5. a P4 program compiled to BMv2 JSON and run by the built-in switch;
 *   6. every receipt verified by replaying it from the store.
 */

import { readFileSync } from 'node:fs';
import { createBpfBuild } from '../src/backends/ebpf/backend.js';
import { ONNX_ENTRY, onnxDeterminismFlags } from '../src/backends/onnx/backend.js';
import { defaultModelDir, ModelRegistry } from '../src/backends/onnx/registry.js';
import { tensorsFromJson } from '../src/backends/onnx/tensors-json.js';
import { createP4Build } from '../src/backends/p4/backend.js';
import { createComponentBuild, createWasmBuild } from '../src/backends/wasm/backend.js';
import { COMPONENT_ENTRY } from '../src/backends/wasm/component.js';
import type { ExecutionResult } from '../src/runtime/executor.js';
import { packagePath } from '../src/runtime/package-root.js';
import { buildTcpFrame, buildUdpFrame } from '../src/runtime/packets.js';
import { readFileSync as readText } from 'node:fs';
import { ExecutionMetrics } from '../src/telemetry/latency.js';
import { Thunderpac } from '../src/thunderpac.js';
import { printOutput, printReceipt } from '../src/cli/io.js';
import { SHAPES } from './build-models-data.js';

function heading(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

function show(result: ExecutionResult): void {
  printOutput(result.output);
  printReceipt(result.receipt);
}

const storeDir = process.env.THUNDERPAC_STORE ?? packagePath('.thunderpac', 'demo-store');
const metrics = new ExecutionMetrics().attach();
const tp = await Thunderpac.open({ store: storeDir });
const receipts: string[] = [];
try {
  heading('WASM: a C guest (FNV-1a hash + byte histogram) and a WAT guest');
  const fnv = createWasmBuild(readFileSync(packagePath('wasm', 'fnv.wasm')), { name: 'fnv' });
  const echo = createWasmBuild(readFileSync(packagePath('wasm', 'echo.wasm')), { name: 'echo' });
  const wasm = tp.sandbox({ backend: 'wasm', limits: { timeoutMs: 250, memoryMb: 16 } });
  const text = new TextEncoder().encode('thunderpac seals every execution with a receipt');

  const hashed = await tp.execute(wasm, { build: fnv, entry: 'fnv', input: { kind: 'bytes', bytes: text } });
  const view = hashed.output?.kind === 'bytes' ? Buffer.from(hashed.output.bytes) : Buffer.alloc(12);
  process.stdout.write(
    `fnv1a-64 = 0x${view.readBigUInt64LE(0).toString(16)}, ${view.readUInt32LE(8)} bytes hashed\n`,
  );
  printReceipt(hashed.receipt);
  receipts.push(hashed.receipt.id);

  const reversed = await tp.execute(wasm, {
    build: echo,
    entry: 'reverse',
    input: { kind: 'bytes', bytes: text },
  });
  show(reversed);
  receipts.push(reversed.receipt.id);

  heading('WASM: a runaway guest is stopped by the 250 ms timeout');
  const spun = await tp.execute(wasm, { build: echo, entry: 'spin', input: { kind: 'bytes', bytes: text } });
  show(spun);
  receipts.push(spun.receipt.id);

  heading('WASI: a C command as a preview 2 component, on an in-memory filesystem, deny by default');
  const probe = createComponentBuild(readFileSync(packagePath('wasm', 'components', 'wasi_probe.wasm')), {
    name: 'wasi_probe',
  });
  const wasi = tp.sandbox({
    backend: 'wasm',
    limits: { fuel: 50_000_000 },
    allowedImports: ['wasi:*'],
    fs: { kind: 'memory', files: { 'data.txt': 'seen by the guest, pinned in the receipt\n' } },
    wasi: { env: { GREETING: 'hello' } },
  });
  const probed = await tp.execute(wasi, {
    build: probe,
    entry: COMPONENT_ENTRY,
    input: { kind: 'bytes', bytes: new Uint8Array(0) },
  });
  if (probed.output?.kind === 'bytes') {
    // What it saw: its environment, a virtual clock, seeded random bytes, and EROFS on writes.
    const lines = new TextDecoder().decode(probed.output.bytes).trim().split('\n');
    process.stdout.write(`${lines.slice(0, 14).join('  ')}\n`);
  }
  printReceipt(probed.receipt);
  receipts.push(probed.receipt.id);

  heading('XDP: the kernel runs xdp_drop_udp on two packets (BPF_PROG_TEST_RUN)');
  const verdict = createBpfBuild(readFileSync(packagePath('bpf', 'xdp_verdict.bpf.o')), {
    name: 'xdp_verdict',
  });
  const ebpf = tp.sandbox({ backend: 'ebpf' });
  for (const [label, bytes] of [
    ['UDP to port 9', buildUdpFrame({ srcPort: 40000, dstPort: 9, payload: text })],
    ['TCP to port 80', buildTcpFrame({ srcPort: 40000, dstPort: 80 })],
  ] as const) {
    const r = await tp.execute(ebpf, {
      build: verdict,
      entry: 'xdp_drop_udp',
      input: { kind: 'packet', bytes },
    });
    process.stdout.write(`${label}: `);
    show(r);
    receipts.push(r.receipt.id);
  }

  heading('ONNX: the cnn shape classifier (checksum verified on load) on its sample image');
  const registry = new ModelRegistry({ dir: defaultModelDir() });
  const cnn = registry.get('cnn');
  const cnnBuild = await registry.build('cnn');
  const onnx = tp.sandbox({ backend: 'onnx', determinism: { flags: onnxDeterminismFlags(cnnBuild) } });
  const classified = await tp.execute(onnx, {
    build: cnnBuild,
    entry: ONNX_ENTRY,
    input: { kind: 'tensors', tensors: tensorsFromJson(cnn.sample!.inputs) },
  });
  if (classified.output?.kind === 'tensors') {
    for (const [name, t] of Object.entries(classified.output.tensors)) {
      const values = Array.from(t.data as ArrayLike<number>, (v) => Number(v).toFixed(4));
      process.stdout.write(`${name} [${t.shape.join('×')}] = [${values.join(', ')}]\n`);
      const scores = Array.from(t.data as ArrayLike<number>, Number);
      const best = scores.indexOf(Math.max(...scores));
      process.stdout.write(`class ${best}: ${SHAPES[best] ?? '?'}\n`);
    }
  }
  printReceipt(classified.receipt);
  receipts.push(classified.receipt.id);

  heading('P4: basic_router.p4 compiled to BMv2 JSON, one packet through the built-in switch');
  const router = createP4Build(readText(packagePath('p4', 'samples', 'basic_router.p4'), 'utf8'), {
    name: 'basic_router',
  });
  const p4 = tp.sandbox({ backend: 'p4' });
  const routed = await tp.execute(p4, {
    build: router,
    entry: 'ingress',
    input: {
      kind: 'packet',
      bytes: buildUdpFrame({ srcPort: 5000, dstPort: 53, dstIp: '10.0.2.7' }),
      ingressPort: 1,
    },
  });
  process.stdout.write('10.0.2.7 via the LPM table: ');
  show(routed);
  receipts.push(routed.receipt.id);

  heading('Verify: replay every receipt from the store');
  let allMatch = true;
  for (const id of receipts) {
    const report = await tp.verify(id);
    allMatch &&= report.match;
    process.stdout.write(
      `${report.match ? 'match   ' : 'MISMATCH'} ${id}${report.problem ? ` (${report.problem})` : ''}\n`,
    );
  }

  heading('Latency (this run, HdrHistogram)');
  for (const [key, s] of Object.entries(metrics.snapshot())) {
    process.stdout.write(
      `${key.padEnd(16)} n=${String(s.count).padStart(3)}  p50 ${(s.p50 / 1e3).toFixed(1)} µs  p99 ${(s.p99 / 1e3).toFixed(1)} µs\n`,
    );
  }
  process.stdout.write(
    `\nstore: ${storeDir} (try: node bin/thunderpac.js receipt verify ${receipts[0]} --store ${storeDir})\n`,
  );
  process.exitCode = allMatch ? 0 : 1;
} finally {
  metrics.detach();
  await tp.close();
}
