/**
 * The daemon's named XDP statistics (src/daemon/xdp-stats.ts) read pinned stats maps by
 * convention: a struct value is named by its members (xdp_port_filter's xdp_stats: passed,
 * dropped, …), an integer array by position (xdp_ratelimit's rl_stats[i]); both summed over
 * CPUs. Packets come from BPF_PROG_TEST_RUN, so the counts are exact.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BpfMap } from '../src/backends/ebpf/map.js';
import { BpfObject } from '../src/backends/ebpf/object.js';
import { isStatsMapName, readNamedStats } from '../src/daemon/xdp-stats.js';
import { buildUdpFrame } from '../src/runtime/packets.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';

const ROOT = `/sys/fs/bpf/thunderpac-test-stats-${process.pid}`;

afterAll(() => {
  rmSync(ROOT, { recursive: true, force: true });
});

/** Loads `file`, pins its maps under <dir>/maps like an attachment does, returns dir and object. */
function pinned(file: string, dir: string): { object: BpfObject; names: string[] } {
  const object = BpfObject.open(bpfObjectPath(file)).load();
  mkdirSync(join(dir, 'maps'), { recursive: true });
  const names = object.maps.filter((m) => !m.name.includes('.')).map((m) => m.name);
  for (const name of names) {
    const map = BpfMap.fromObject(object, name);
    try {
      map.pin(join(dir, 'maps', name));
    } finally {
      map.close();
    }
  }
  return { object, names };
}

describe('named XDP statistics', () => {
  it('a struct of counters is named by its members', () => {
    const dir = join(ROOT, 'filter');
    const { object, names } = pinned('xdp_port_filter.bpf.o', dir);
    try {
      const blocked = BpfMap.fromObject(object, 'blocked_ports').typed();
      blocked.set(9, 1);
      blocked.close();
      const toBlocked = buildUdpFrame({ srcPort: 1, dstPort: 9 });
      const toOpen = buildUdpFrame({ srcPort: 1, dstPort: 10 });
      object.testRun('xdp_port_filter', toBlocked, { repeat: 3 });
      object.testRun('xdp_port_filter', toOpen, { repeat: 5 });
      expect(readNamedStats(dir, names)).toEqual({
        stats: { aborted: 0, dropped: 3, passed: 5, tx: 0, redirected: 0 },
        maps: ['xdp_stats'],
      });
    } finally {
      object.close();
    }
  });

  it('an integer array is named by position; only maps named *stats count', () => {
    const dir = join(ROOT, 'ratelimit');
    const { object, names } = pinned('xdp_ratelimit.bpf.o', dir);
    try {
      object.testRun('xdp_ratelimit', buildUdpFrame({ srcPort: 1, dstPort: 10 }), { repeat: 4 });
      const { stats, maps } = readNamedStats(dir, names);
      expect(maps).toEqual(['rl_stats']);
      expect(Object.keys(stats)).toEqual([
        'rl_stats[0]',
        'rl_stats[1]',
        'rl_stats[2]',
        'rl_stats[3]',
        'rl_stats[4]',
      ]);
      // No rule matched: every packet counted as passed-unlimited (RL_UNLIMITED = 2).
      expect(stats['rl_stats[2]']).toBe(4);
      expect(names.filter(isStatsMapName)).toEqual(['rl_stats']);
    } finally {
      object.close();
    }
  });
});
