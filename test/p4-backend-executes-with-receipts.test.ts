import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createP4Build, P4INFO_ARTIFACT } from '../src/backends/p4/backend.js';
import { P4CompileError } from '../src/p4c/errors.js';
import type { Sandbox } from '../src/runtime/sandbox.js';
import { Thunderpac } from '../src/thunderpac.js';
import { ipv4Checksum, ipv4Frame, sample } from './p4-helpers.js';

let dir: string;
let tp: Thunderpac;
let sandbox: Sandbox;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tp-p4-'));
  tp = await Thunderpac.open({ store: dir });
  sandbox = tp.sandbox({ backend: 'p4' });
});
afterAll(async () => {
  await tp.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('p4 backend: packets through the built-in switch as executions', () => {
  const build = createP4Build(sample('basic_router.p4'), { name: 'basic_router' });

  it('builds are content-addressed BMv2 JSON + p4info', () => {
    expect(build.manifest.kind).toBe('p4');
    expect(build.manifest.artifacts['program.json']?.mediaType).toBe('application/json+bmv2');
    expect(build.artifacts.has(P4INFO_ARTIFACT)).toBe(true);
    expect(createP4Build(sample('basic_router.p4'), { name: 'basic_router' }).id).toBe(build.id);
    const other = createP4Build(sample('basic_router.p4'), {
      name: 'basic_router',
      defines: { NO_CONST_ENTRIES: '1' },
    });
    expect(other.id).not.toBe(build.id);
  });

  it('forwards and drops with a receipt', async () => {
    const fwd = await tp.execute(sandbox, {
      build,
      entry: 'ingress',
      input: { kind: 'packet', bytes: ipv4Frame({ dst: [10, 0, 2, 1] }), ingressPort: 3 },
    });
    expect(fwd.status).toBe('completed');
    expect(fwd.output?.kind).toBe('packet');
    if (fwd.output?.kind !== 'packet') return;
    expect(fwd.output.verdict).toBe('forward');
    expect(fwd.output.retval).toBe(1);
    const [p] = fwd.output.packets;
    expect(p?.port).toBe(2);
    expect(p?.bytes[22]).toBe(63);
    expect(new DataView(p!.bytes.buffer, p!.bytes.byteOffset).getUint16(24)).toBe(
      ipv4Checksum(p!.bytes.subarray(14, 34)),
    );
    expect(fwd.receipt.backend).toBe('p4');

    const drop = await tp.execute(sandbox, {
      build,
      entry: 'ingress',
      input: { kind: 'packet', bytes: ipv4Frame({ dst: [192, 168, 1, 1] }), ingressPort: 3 },
    });
    expect(drop.output).toEqual({ kind: 'packet', verdict: 'drop', retval: 0, packets: [] });

    for (const r of [fwd.receipt, drop.receipt]) {
      const report = await tp.verify(r.id);
      expect(report.mismatches).toEqual([]);
      expect(report.match).toBe(true);
    }
  });

  it('installs control-plane state carried in the build, and refuses bad entries at prepare', async () => {
    const routed = createP4Build(sample('basic_router.p4'), {
      name: 'routed',
      defines: { NO_CONST_ENTRIES: '1' },
      controlPlane: {
        entries: [
          {
            table: 'ipv4_lpm',
            key: [{ value: 0xc0a80000n, prefixLength: 16 }],
            action: 'ipv4_forward',
            args: [0x0a0b0c0d0e0fn, 7],
          },
        ],
        defaults: [{ table: 'ipv4_lpm', action: 'ipv4_forward', args: [1, 8] }],
      },
    });
    const run = (dst: [number, number, number, number], b = routed) =>
      tp.execute(sandbox, {
        build: b,
        entry: 'ingress',
        input: { kind: 'packet', bytes: ipv4Frame({ dst }), ingressPort: 1 },
      });
    const hit = await run([192, 168, 3, 4]);
    expect(hit.output?.kind === 'packet' && hit.output.packets.map((p) => p.port)).toEqual([7]);
    const miss = await run([8, 8, 8, 8]);
    expect(miss.output?.kind === 'packet' && miss.output.packets.map((p) => p.port)).toEqual([8]);
    expect((await tp.verify(hit.receipt.id)).match).toBe(true);

    const bad = createP4Build(sample('basic_router.p4'), {
      name: 'bad',
      defines: { NO_CONST_ENTRIES: '1' },
      controlPlane: {
        entries: [{ table: 'ipv4_lpm', key: [{ value: 1, prefixLength: 32 }], action: 'teleport' }],
      },
    });
    const failed = await run([8, 8, 8, 8], bad);
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('P4_ACTION_UNKNOWN');
  });

  it('refuses a broken program at build time with a P4CompileError', () => {
    expect(() => createP4Build('#include <v1model.p4>\nheader h_t { bit<7> x; }\n', { name: 'odd' })).toThrow(
      P4CompileError,
    );
    expect(() => createP4Build('#include <v1model.p4>\nheader h_t { bit<7> x; }\n', { name: 'odd' })).toThrow(
      /odd\.p4:/,
    );
  });
});
