/**
 * Issue #11's bug: attaching the same program to a second interface pinned nothing for the
 * second copy, and `map update` changed only the first. Each attachment now has its own pin
 * directory (<root>/attachments/<netns>/<dev>/maps/<map>): both copies' maps are reachable,
 * and an update reaches exactly the copy it names.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfMap } from '../src/backends/ebpf/map.js';
import { BpfObject } from '../src/backends/ebpf/object.js';
import { attachmentMapPath, XdpManager } from '../src/backends/ebpf/xdp.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';
import { cli } from './helpers/cli.js';
import { createVethPair, type VethPair } from './helpers/netns.js';

const ROOT = `/sys/fs/bpf/thunderpac-test-sepmaps-${process.pid}`;
const filter = bpfObjectPath('xdp_port_filter.bpf.o');
let pair: VethPair;

beforeAll(() => {
  pair = createVethPair('sepmaps');
});

afterAll(() => {
  try {
    new XdpManager({ root: ROOT }).clean();
  } finally {
    pair?.destroy();
    rmSync(ROOT, { recursive: true, force: true });
  }
});

describe('two attachments of one program', () => {
  it('through the CLI: each copy pins its own maps, and map update reaches only the named one', async () => {
    const a = ['--dev', pair.devA, '--netns', pair.nsA, '--root', ROOT];
    const b = ['--dev', pair.devB, '--netns', pair.nsB, '--root', ROOT];
    for (const where of [a, b]) {
      const attach = await cli('xdp', 'attach', filter, '--prog', 'xdp_port_filter', ...where, '--json');
      expect(attach.code, attach.err).toBe(0);
      const attached = JSON.parse(attach.out) as { maps: string[]; pinDir: string };
      expect([...attached.maps].sort()).toEqual([
        `${attached.pinDir}/maps/blocked_ports`,
        `${attached.pinDir}/maps/xdp_stats`,
      ]);
    }
    const pinA = attachmentMapPath(ROOT, { device: pair.devA, netns: pair.nsA }, 'blocked_ports');
    const pinB = attachmentMapPath(ROOT, { device: pair.devB, netns: pair.nsB }, 'blocked_ports');
    expect(existsSync(pinA) && existsSync(pinB)).toBe(true);

    // A bare name is ambiguous now: refused, naming both attachments.
    const ambiguous = await cli('map', 'update', 'blocked_ports', '7000', '1', '--root', ROOT);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.err).toContain(`--dev ${pair.devA} --netns ${pair.nsA}`);
    expect(ambiguous.err).toContain(`--dev ${pair.devB} --netns ${pair.nsB}`);

    expect((await cli('map', 'update', 'blocked_ports', '7000', '1', ...b)).code).toBe(0);
    const inB = await cli('map', 'lookup', 'blocked_ports', '7000', ...b);
    expect(inB.code, inB.err).toBe(0);
    expect(JSON.parse(inB.out)).toBe(1);
    const inA = await cli('map', 'lookup', 'blocked_ports', '7000', ...a);
    expect(inA.code).toBe(1);
    expect(inA.err).toMatch(/no such key/);

    // The two pins are two kernel maps, not two names for one.
    const mapA = BpfMap.openPinned(pinA);
    const mapB = BpfMap.openPinned(pinB);
    try {
      expect(mapA.info.id).not.toBe(mapB.info.id);
    } finally {
      mapA.close();
      mapB.close();
    }
  });

  it('through XdpManager: status lists each attachment with its own maps; detach removes its directory only', () => {
    const manager = new XdpManager({ root: ROOT });
    const entries = manager.status();
    expect(entries).toHaveLength(2);
    for (const entry of entries) {
      expect(entry).toMatchObject({ active: true, maps: ['blocked_ports', 'xdp_stats'] });
    }
    expect(manager.detach({ device: pair.devA, netns: pair.nsA })).toBe(true);
    expect(existsSync(attachmentMapPath(ROOT, { device: pair.devA, netns: pair.nsA }, 'blocked_ports'))).toBe(
      false,
    );
    const pinB = attachmentMapPath(ROOT, { device: pair.devB, netns: pair.nsB }, 'blocked_ports');
    const mapB = BpfMap.openPinned(pinB).typed();
    try {
      expect(mapB.get(7000)).toBe(1);
    } finally {
      mapB.close();
    }
    // A library attach of the same program again: a fresh copy with fresh (empty) maps.
    const object = BpfObject.open(filter).load();
    try {
      const again = manager.attach(object, 'xdp_port_filter', {
        device: pair.devA,
        netns: pair.nsA,
        mode: 'skb',
        pin: true,
      });
      expect(again.maps).toHaveLength(2);
      const mapA = BpfMap.openPinned(
        attachmentMapPath(ROOT, { device: pair.devA, netns: pair.nsA }, 'blocked_ports'),
      ).typed();
      try {
        expect(mapA.get(7000)).toBeUndefined();
      } finally {
        mapA.close();
      }
    } finally {
      object.close();
    }
  });

  it('an interface name with a dot gets an encoded directory (bpffs refuses dots) and is found by name', async () => {
    const bridge = 'tpbr.1';
    execFileSync('ip', ['-n', pair.nsA, 'link', 'add', bridge, 'type', 'bridge'], { stdio: 'ignore' });
    const where = ['--dev', bridge, '--netns', pair.nsA, '--root', ROOT];
    const attach = await cli(
      'xdp',
      'attach',
      filter,
      '--prog',
      'xdp_port_filter',
      ...where,
      '--mode',
      'skb',
      '--json',
    );
    expect(attach.code, attach.err).toBe(0);
    expect(JSON.parse(attach.out).pinDir).toBe(`${ROOT}/attachments/${pair.nsA}/tpbr%2E1`);
    expect((await cli('map', 'update', 'blocked_ports', '53', '1', ...where)).code).toBe(0);
    expect(JSON.parse((await cli('map', 'lookup', 'blocked_ports', '53', ...where)).out)).toBe(1);
    expect(new XdpManager({ root: ROOT }).status()).toContainEqual(
      expect.objectContaining({ device: bridge, netns: pair.nsA, active: true }),
    );
    expect((await cli('xdp', 'detach', ...where)).code).toBe(0);
  });
});
