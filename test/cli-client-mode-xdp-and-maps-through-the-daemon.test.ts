/**
 * `xdp attach|detach|status` and `map …` in client mode (issue #11): the real CLI process with
 * `--socket` against the real daemon, inside a veth pair whose ends live in two network
 * namespaces this file creates. A map update made through the CLI changes what the attached
 * program does to real UDP packets; the maps read through the daemon print what the in-process
 * `map` prints reading the same pins; detach removes the program.
 */

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xdpQuery } from '../src/backends/ebpf/link.js';
import { XdpManager } from '../src/backends/ebpf/xdp.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';
import { runCli } from './helpers/cli-process.js';
import { startTestDaemon, type TestDaemon, tempDirectory } from './helpers/daemon.js';
import { createVethPair, receiveUdp, sendUdp, type VethPair } from './helpers/netns.js';

const ROOT = `/sys/fs/bpf/thunderpac-test-cli-client-${process.pid}`;
const FILTER = bpfObjectPath('xdp_port_filter.bpf.o');
const PORT = 7100;
const PACKETS = 10;

let pair: VethPair;
let storeDir: { dir: string; remove: () => void };
let daemon: TestDaemon | undefined;

beforeAll(async () => {
  storeDir = tempDirectory('tp-cli-client-xdp-');
  pair = createVethPair('clic');
  daemon = await startTestDaemon({ store: join(storeDir.dir, 'store'), config: { bpffsRoot: ROOT } });
}, 120_000);

afterAll(async () => {
  try {
    await daemon?.stop();
  } finally {
    try {
      new XdpManager({ root: ROOT }).clean();
    } finally {
      pair?.destroy();
      rmSync(ROOT, { recursive: true, force: true });
      storeDir?.remove();
    }
  }
}, 60_000);

const remote = (...args: string[]) => {
  if (!daemon) throw new Error('no daemon');
  return runCli([...args, '--socket', daemon.socket]);
};

/** Sends PACKETS datagrams from A to B's port and says how many arrived. */
async function delivered(): Promise<number> {
  const receiver = receiveUdp(pair.nsB, { port: PORT });
  await receiver.ready;
  await sendUdp(pair.nsA, { to: pair.ipB, port: PORT, count: PACKETS });
  receiver.finish();
  return receiver.count;
}

describe('xdp and map through the daemon', () => {
  it('attach prints the in-process lines; the attachment is the daemon’s, pinned under its root', async () => {
    const res = await remote(
      'xdp',
      'attach',
      FILTER,
      '--prog',
      'xdp_port_filter',
      '--dev',
      pair.devB,
      '--netns',
      pair.nsB,
    );
    expect(res.code, res.stderr).toBe(0);
    const progId = xdpQuery({ device: pair.devB, netns: pair.nsB }).progId;
    const pinDir = `${ROOT}/attachments/${pair.nsB}/${pair.devB}`;
    expect(res.stdout).toBe(
      `attached xdp_port_filter (id ${progId}) to ${pair.devB} in netns ${pair.nsB}: pinned-link, native mode\n` +
        `  map pinned at ${pinDir}/maps/blocked_ports\n` +
        `  map pinned at ${pinDir}/maps/xdp_stats\n`,
    );
    const status = await remote('xdp', 'status', '--json');
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).attachments).toEqual([
      expect.objectContaining({ device: pair.devB, netns: pair.nsB, progId, active: true }),
    ]);
    // Attaching again without --replace is refused by the daemon, naming the field.
    const again = await remote(
      'xdp',
      'attach',
      FILTER,
      '--prog',
      'xdp_port_filter',
      '--dev',
      pair.devB,
      '--netns',
      pair.nsB,
    );
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^thunderpac: XDP_ATTACHMENT_EXISTS: .*\(at body\.interface\)\n$/);
  });

  it('map update through the CLI blocks the port for real packets; dump and lookup print what in-process prints', async () => {
    expect(await delivered()).toBe(PACKETS);
    const update = await remote('map', 'update', 'blocked_ports', String(PORT), '1');
    expect(update.code, update.stderr).toBe(0);
    expect(await delivered()).toBe(0);

    const inProcess = (...args: string[]) =>
      runCli([...args, '--root', ROOT, '--dev', pair.devB, '--netns', pair.nsB]);
    const [dump, dumpLocal, lookup, lookupLocal] = await Promise.all([
      remote('map', 'dump', 'blocked_ports'),
      inProcess('map', 'dump', 'blocked_ports'),
      remote('map', 'lookup', 'blocked_ports', String(PORT), '--dev', pair.devB, '--netns', pair.nsB),
      inProcess('map', 'lookup', 'blocked_ports', String(PORT)),
    ]);
    expect(dump.code, dump.stderr).toBe(0);
    expect(JSON.parse(dump.stdout)).toEqual([{ key: PORT, value: 1 }]);
    expect(dump.stdout).toBe(dumpLocal.stdout);
    expect(lookup.stdout).toBe('1\n');
    expect(lookup.stdout).toBe(lookupLocal.stdout);

    // The per-CPU stats map, summed, counted the drops.
    const stats = await remote('map', 'dump', 'xdp_stats');
    expect(stats.code, stats.stderr).toBe(0);
    const perCpu = JSON.parse(stats.stdout)[0].value as { dropped: string }[];
    expect(perCpu.reduce((n, cpu) => n + Number(cpu.dropped), 0)).toBe(PACKETS);
  });

  it('a missing key is exit 1 "no such key" (lookup, delete), as in-process; a bad key is exit 2 naming it', async () => {
    const [lookup, del, badKey] = await Promise.all([
      remote('map', 'lookup', 'blocked_ports', '7999'),
      remote('map', 'delete', 'blocked_ports', '7999'),
      remote('map', 'lookup', 'blocked_ports', 'not-a-port'),
    ]);
    expect([lookup.code, lookup.stderr]).toEqual([1, 'thunderpac: no such key\n']);
    expect([del.code, del.stderr]).toEqual([1, 'thunderpac: no such key\n']);
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('params.key');
    const removed = await remote('map', 'delete', 'blocked_ports', String(PORT));
    expect(removed.code, removed.stderr).toBe(0);
    expect(await delivered()).toBe(PACKETS);
  });

  it('detach removes the program; a second detach says there is none', async () => {
    const first = await remote('xdp', 'detach', '--dev', pair.devB, '--netns', pair.nsB);
    expect([first.code, first.stdout]).toEqual([0, `detached the XDP program from ${pair.devB}\n`]);
    expect(xdpQuery({ device: pair.devB, netns: pair.nsB }).progId).toBe(0);
    const second = await remote('xdp', 'detach', '--dev', pair.devB, '--netns', pair.nsB, '--json');
    expect([second.code, JSON.parse(second.stdout)]).toEqual([0, { detached: false }]);
    const status = await remote('xdp', 'status');
    expect(status.stdout).toBe('no thunderpac XDP attachments\n');
  });
});
