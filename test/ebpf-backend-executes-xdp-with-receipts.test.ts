import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBpfBuild, createBpfBuildFromC } from '../src/backends/ebpf/backend.js';
import { buildTcpFrame, buildUdpFrame } from '../src/runtime/packets.js';
import type { Sandbox } from '../src/runtime/sandbox.js';
import { Thunderpac } from '../src/thunderpac.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';

let dir: string;
let tp: Thunderpac;
let sandbox: Sandbox;
const verdictBuild = () =>
  createBpfBuild(readFileSync(bpfObjectPath('xdp_verdict.bpf.o')), { name: 'xdp_verdict' });
const udp9 = buildUdpFrame({ srcPort: 4000, dstPort: 9, payload: new Uint8Array(18) });
const tcp80 = buildTcpFrame({ srcPort: 4000, dstPort: 80 });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tp-ebpf-'));
  tp = await Thunderpac.open({ store: dir });
  sandbox = tp.sandbox({ backend: 'ebpf' });
});
afterAll(async () => {
  await tp.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ebpf backend: XDP test-run as an execution', () => {
  it('drops UDP to port 9 and passes TCP, with receipts that replay', async () => {
    const build = verdictBuild();
    const dropped = await tp.execute(sandbox, {
      build,
      entry: 'xdp_drop_udp',
      input: { kind: 'packet', bytes: udp9 },
    });
    expect(dropped.status).toBe('completed');
    expect(dropped.output).toEqual({ kind: 'packet', verdict: 'XDP_DROP', retval: 1, packets: [] });
    expect(dropped.receipt.resources.engineNs).toBeGreaterThanOrEqual(0);
    expect(dropped.receipt.runtime.libbpf).toMatch(/^\d+\.\d+/);

    const passed = await tp.execute(sandbox, {
      build,
      entry: 'xdp_drop_udp',
      input: { kind: 'packet', bytes: tcp80, ingressPort: 3 },
    });
    expect(passed.output).toMatchObject({ verdict: 'XDP_PASS', retval: 2 });
    expect(passed.output?.kind === 'packet' && passed.output.packets[0]?.port).toBe(3);
    expect(
      passed.output?.kind === 'packet' && Buffer.from(passed.output.packets[0]!.bytes).equals(tcp80),
    ).toBe(true);

    for (const r of [dropped.receipt, passed.receipt]) {
      const report = await tp.verify(r.id);
      expect(report.mismatches).toEqual([]);
      expect(report.match).toBe(true);
    }
  });

  it('returns the bytes the program rewrote (XDP_TX with swapped MACs)', async () => {
    const r = await tp.execute(sandbox, {
      build: verdictBuild(),
      entry: 'xdp_swap_mac',
      input: { kind: 'packet', bytes: tcp80 },
    });
    expect(r.output).toMatchObject({ verdict: 'XDP_TX' });
    const out = r.output?.kind === 'packet' ? r.output.packets[0]!.bytes : new Uint8Array();
    expect(Buffer.from(out.subarray(0, 6))).toEqual(Buffer.from(tcp80.subarray(6, 12)));
    expect(Buffer.from(out.subarray(6, 12))).toEqual(Buffer.from(tcp80.subarray(0, 6)));
  });

  it('fails with a receipt carrying the verifier error when the kernel rejects the object', async () => {
    const build = createBpfBuild(readFileSync(bpfObjectPath('testdata/bad_unbounded_read.bpf.o')), {
      name: 'bad',
    });
    const r = await tp.execute(sandbox, {
      build,
      entry: 'xdp_bad_unbounded_read',
      input: { kind: 'packet', bytes: tcp80 },
    });
    expect(r.status).toBe('failed');
    expect(r.receipt.error?.code).toBe('EBPF_VERIFIER');
    expect(r.error && 'log' in r.error && String((r.error as { log: string }).log)).toMatch(
      /invalid access to packet/,
    );
  });

  it('refuses an unknown program, a runt packet and a non-packet input with failed receipts', async () => {
    const build = verdictBuild();
    const unknown = await tp.execute(sandbox, {
      build,
      entry: 'nope',
      input: { kind: 'packet', bytes: tcp80 },
    });
    expect(unknown.receipt.error?.code).toBe('EBPF_NOT_FOUND');
    const runt = await tp.execute(sandbox, {
      build,
      entry: 'xdp_drop_udp',
      input: { kind: 'packet', bytes: new Uint8Array(4) },
    });
    expect(runt.receipt.error?.code).toBe('VALIDATION_SIZE');
    const bytes = await tp.execute(sandbox, {
      build,
      entry: 'xdp_drop_udp',
      input: { kind: 'bytes', bytes: tcp80 },
    });
    expect(bytes.receipt.error?.code).toBe('VALIDATION_TYPE');
  });
});

describe('ebpf backend: BPF C source compiled with clang', () => {
  const source = `
#include "parse.h"
SEC("xdp")
int drop_tcp(struct xdp_md *ctx)
{
	struct tp_packet pkt;
	if (tp_parse(ctx, &pkt) < 0)
		return XDP_PASS;
	return pkt.protocol == IPPROTO_TCP ? XDP_DROP : XDP_PASS;
}
char LICENSE[] SEC("license") = "Dual BSD/GPL";
`;

  it('compiles reproducibly, records clang in the toolchain and runs as an execution', async () => {
    const build = createBpfBuildFromC(source, { name: 'drop_tcp' });
    expect(createBpfBuildFromC(source, { name: 'drop_tcp' }).id).toBe(build.id);
    expect(build.manifest.toolchain.clang).toMatch(/^\d+\./);
    const tcp = await tp.execute(sandbox, {
      build,
      entry: 'drop_tcp',
      input: { kind: 'packet', bytes: tcp80 },
    });
    expect(tcp.output).toMatchObject({ verdict: 'XDP_DROP' });
    const udp = await tp.execute(sandbox, {
      build,
      entry: 'drop_tcp',
      input: { kind: 'packet', bytes: udp9 },
    });
    expect(udp.output).toMatchObject({ verdict: 'XDP_PASS' });
  });

  it("a compile error is a typed error carrying clang's message", () => {
    expect(() => createBpfBuildFromC('int broken(', { name: 'broken' })).toThrow(/clang could not compile/);
  });
});
