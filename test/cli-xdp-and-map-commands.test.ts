import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xdpQuery } from '../src/backends/ebpf/link.js';
import { writePcap } from '../src/cli/pcap.js';
import { cli } from './helpers/cli.js';
import { buildUdpFrame } from '../src/runtime/packets.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';
import { createVethPair, type VethPair } from './helpers/netns.js';

const ROOT = `/sys/fs/bpf/thunderpac-test-cli-${process.pid}`;
let dir: string;
let pair: VethPair;
const verdict = bpfObjectPath('xdp_verdict.bpf.o');
const ratelimit = bpfObjectPath('xdp_ratelimit.bpf.o');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-cli-xdp-'));
  pair = createVethPair('cli');
});

afterAll(async () => {
  try {
    await cli('xdp', 'clean', '--root', ROOT);
  } finally {
    pair?.destroy();
    rmSync(ROOT, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('thunderpac xdp test-run', () => {
  const dropped = buildUdpFrame({ srcPort: 1, dstPort: 9 });
  const passed = buildUdpFrame({ srcPort: 1, dstPort: 10 });

  it('runs a hex packet and reports verdict, kernel and call time as JSON', async () => {
    const hex = Buffer.from(dropped).toString('hex');
    const { code, out } = await cli(
      'xdp',
      'test-run',
      verdict,
      '--prog',
      'xdp_drop_udp',
      '--packet',
      hex,
      '--repeat',
      '10',
      '--json',
    );
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(report.results).toEqual([expect.objectContaining({ index: 0, action: 'XDP_DROP', repeat: 10 })]);
    expect(report.results[0].durationNs).toBeGreaterThanOrEqual(0);
  });

  it('runs every packet of a pcap file', async () => {
    const pcap = join(dir, 'two.pcap');
    writeFileSync(pcap, writePcap([dropped, passed]));
    const { code, out } = await cli('xdp', 'test-run', verdict, '--prog', 'xdp_drop_udp', '--pcap', pcap);
    expect(code).toBe(0);
    expect(out).toMatch(/#0: XDP_DROP/);
    expect(out).toMatch(/#1: XDP_PASS/);
  });

  it('bad input exits 2 with a typed message', async () => {
    for (const argv of [
      ['xdp', 'test-run', verdict, '--packet', '00'],
      ['xdp', 'test-run', verdict, '--prog', 'xdp_drop_udp', '--packet', 'zz'],
      ['xdp', 'test-run', verdict, '--prog', 'nope', '--packet', Buffer.from(passed).toString('hex')],
      ['xdp', 'test-run', '/no/such.o', '--prog', 'x', '--packet', '00'],
      ['xdp', 'attach', verdict, '--prog', 'xdp_drop_udp'],
      ['xdp', 'attach', verdict, '--prog', 'xdp_drop_udp', '--dev', 'x', '--mode', 'turbo'],
      ['xdp', 'frobnicate'],
      ['map', 'lookup', '/sys/fs/bpf/definitely-not-here', '1'],
    ]) {
      const { code, err } = await cli(...argv);
      expect(code, argv.join(' ')).toBe(2);
      expect(err).toMatch(/thunderpac: /);
    }
  });
});

describe('thunderpac xdp attach/status/detach/clean and map commands, inside a namespace', () => {
  it('attaches, configures maps by name through the codec, reports and removes', async () => {
    const where = ['--dev', pair.devB, '--netns', pair.nsB, '--root', ROOT];
    const attach = await cli('xdp', 'attach', ratelimit, '--prog', 'xdp_ratelimit', ...where, '--json');
    expect(attach.code, attach.err).toBe(0);
    const attached = JSON.parse(attach.out);
    expect(attached).toMatchObject({ kind: 'netlink', device: pair.devB, netns: pair.nsB });
    const mapPin = `${ROOT}/attachments/${pair.nsB}/${pair.devB}/maps/rl_rules_v4`;
    expect(attached.maps).toContain(mapPin);
    expect(xdpQuery({ device: pair.devB, netns: pair.nsB }).progId).toBe(attached.progId);

    const again = await cli('xdp', 'attach', ratelimit, '--prog', 'xdp_ratelimit', ...where);
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/EBPF_XDP_BUSY/);

    const rule = JSON.stringify({ rate_pps: 100, burst: 10 });
    expect((await cli('map', 'update', 'rl_rules_v4', '10.0.0.0/8', rule, '--root', ROOT)).code).toBe(0);
    const noexist = await cli(
      'map',
      'update',
      'rl_rules_v4',
      '10.0.0.0/8',
      rule,
      '--mode',
      'noexist',
      '--root',
      ROOT,
    );
    expect(noexist.code).toBe(2);
    expect(noexist.err).toMatch(/EBPF_MAP/);
    const lookup = await cli('map', 'lookup', 'rl_rules_v4', '10.1.2.3/32', '--root', ROOT);
    expect(JSON.parse(lookup.out)).toEqual({ rate_pps: '100', burst: '10' });
    const badValue = await cli(
      'map',
      'update',
      'rl_rules_v4',
      '10.0.0.0/8',
      '{"rate_pps": -1, "burst": 1}',
      '--root',
      ROOT,
    );
    expect(badValue.code).toBe(2);
    expect(badValue.err).toMatch(/EBPF_CODEC/);
    const dump = await cli('map', 'dump', mapPin);
    expect(JSON.parse(dump.out)).toEqual([{ key: '10.0.0.0/8', value: { rate_pps: '100', burst: '10' } }]);
    const stats = await cli('map', 'dump', 'rl_stats', '--root', ROOT);
    expect(JSON.parse(stats.out)).toHaveLength(5);
    expect((await cli('map', 'delete', 'rl_rules_v4', '10.0.0.0/8', '--root', ROOT)).code).toBe(0);

    const status = await cli('xdp', 'status', ...where, '--json');
    expect(JSON.parse(status.out).attachments).toEqual([
      expect.objectContaining({ device: pair.devB, netns: pair.nsB, active: true }),
    ]);
    expect((await cli('xdp', 'detach', ...where)).code).toBe(0);
    expect(xdpQuery({ device: pair.devB, netns: pair.nsB }).progId).toBe(0);

    const pinned = await cli(
      'xdp',
      'attach',
      ratelimit,
      '--prog',
      'xdp_ratelimit',
      ...where,
      '--pin',
      '--replace',
    );
    expect(pinned.code, pinned.err).toBe(0);
    const clean = await cli('xdp', 'clean', '--root', ROOT, '--json');
    expect(JSON.parse(clean.out).cleaned).toEqual([
      expect.objectContaining({ kind: 'pinned-link', detached: true }),
    ]);
    expect(xdpQuery({ device: pair.devB, netns: pair.nsB }).progId).toBe(0);
  });
});
