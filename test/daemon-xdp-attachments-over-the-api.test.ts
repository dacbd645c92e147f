/**
 * XDP over the daemon's API (issue #11), against the real daemon process over its socket,
 * inside network namespaces this file creates (a veth pair with each end in its own namespace,
 * plus a dummy interface that is deleted while the daemon is down):
 *
 *   - attach through the API; real UDP packets are counted by name (passed / dropped), summed
 *     over CPUs, and exported to /metrics;
 *   - a map update through the API changes what the program does (the port becomes blocked);
 *   - the same build attached to a second interface has its own, separate maps;
 *   - bad requests are 4xx naming the field;
 *   - restarting the daemon re-adopts the attachment (listed, stats readable, still dropping)
 *     and cleans the records whose interface was deleted, or whose program was detached,
 *     while it was down;
 *   - detach removes the program and its pins.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfLink, xdpQuery } from '../src/backends/ebpf/link.js';
import { numPossibleCpus } from '../src/backends/ebpf/object.js';
import { XdpManager } from '../src/backends/ebpf/xdp.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';
import { startTestDaemon, type TestDaemon, tempDirectory } from './helpers/daemon.js';
import { createVethPair, receiveUdp, sendUdp, type VethPair } from './helpers/netns.js';

const ROOT = `/sys/fs/bpf/thunderpac-test-dxdp-${process.pid}`;
const FILTER = readFileSync(bpfObjectPath('xdp_port_filter.bpf.o')).toString('base64');
const PORT = 7000;
const PACKETS = 20;
const DUMMY = 'tpbridge0';

let pair: VethPair;
let storeDir: { dir: string; remove: () => void };
let daemon: TestDaemon | undefined;

function start(): Promise<TestDaemon> {
  return startTestDaemon({ store: join(storeDir.dir, 'store'), config: { bpffsRoot: ROOT } });
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore', timeout: 10_000 });
}

beforeAll(async () => {
  storeDir = tempDirectory('tp-dxdp-');
  pair = createVethPair('dxdp');
  ip('-n', pair.nsA, 'link', 'add', DUMMY, 'type', 'bridge');
  ip('-n', pair.nsA, 'link', 'set', DUMMY, 'up');
  daemon = await start();
}, 300_000);

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

const api = () => {
  if (!daemon) throw new Error('no daemon');
  return daemon;
};

/** Sends PACKETS datagrams from A to B's port and says how many arrived. */
async function delivered(): Promise<number> {
  const receiver = receiveUdp(pair.nsB, { port: PORT });
  await receiver.ready;
  await sendUdp(pair.nsA, { to: pair.ipB, port: PORT, count: PACKETS });
  receiver.finish();
  return receiver.count;
}

// biome-ignore lint/suspicious/noExplicitAny: a wrong read of the body fails the test
function expectFieldError(res: { status: number; body: any }, status: number, path: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.error.path, JSON.stringify(res.body)).toBe(path);
  expect(typeof res.body.error.message).toBe('string');
}

let onB: string;
let onA: string;
let onDummy: string;
let buildId: string;

describe('XDP attachments over the daemon API', () => {
  it('attaches, counts real packets by name, and a map update through the API blocks the port', async () => {
    const attach = await api().request({
      method: 'POST',
      path: '/v1/xdp/attachments',
      body: { object: FILTER, program: 'xdp_port_filter', interface: pair.devB, netns: pair.nsB },
    });
    expect(attach.status, attach.text).toBe(201);
    expect(attach.body).toMatchObject({
      program: 'xdp_port_filter',
      interface: pair.devB,
      netns: pair.nsB,
      mode: 'native',
      active: true,
      maps: ['blocked_ports', 'xdp_stats'],
    });
    onB = attach.body.id;
    buildId = attach.body.build;
    expect(attach.body.pinDir).toBe(`${ROOT}/attachments/${pair.nsB}/${pair.devB}`);
    expect(xdpQuery({ device: pair.devB, netns: pair.nsB }).progId).toBe(attach.body.progId);

    expect(await delivered()).toBe(PACKETS);
    const before = await api().request({ path: `/v1/xdp/attachments/${onB}/stats` });
    expect(before.status).toBe(200);
    expect(before.body.maps).toEqual(['xdp_stats']);
    expect(before.body.stats.passed).toBeGreaterThanOrEqual(PACKETS);
    expect(before.body.stats).toMatchObject({ dropped: 0, aborted: 0, tx: 0, redirected: 0 });

    const put = await api().request({
      method: 'PUT',
      path: `/v1/xdp/attachments/${onB}/maps/blocked_ports/${PORT}`,
      body: { value: 1 },
    });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({ key: PORT, value: 1 });
    const get = await api().request({ path: `/v1/xdp/attachments/${onB}/maps/blocked_ports/${PORT}` });
    expect(get.body).toMatchObject({ key: PORT, value: 1 });
    const hex = await api().request({
      path: `/v1/xdp/attachments/${onB}/maps/blocked_ports/581b?format=hex`,
    });
    expect(hex.body).toMatchObject({ key: '581b', value: '01' });
    const dump = await api().request({ path: `/v1/xdp/attachments/${onB}/maps/blocked_ports` });
    expect(dump.body).toMatchObject({ type: 'hash', entries: [{ key: PORT, value: 1 }], truncated: false });

    // A per-CPU map reads as one value per possible CPU (the stats endpoint sums them).
    const perCpu = await api().request({ path: `/v1/xdp/attachments/${onB}/maps/xdp_stats/0` });
    expect(perCpu.body.value).toHaveLength(numPossibleCpus());
    const summed = perCpu.body.value.reduce(
      (n: number, cpu: { passed: string }) => n + Number(cpu.passed),
      0,
    );
    expect(summed).toBe(before.body.stats.passed);

    expect(await delivered()).toBe(0);
    const after = await api().request({ path: `/v1/xdp/attachments/${onB}/stats` });
    expect(after.body.stats.dropped).toBe(PACKETS);
    expect(after.body.stats.passed).toBe(before.body.stats.passed);

    const metrics = await api().request({ path: '/metrics' });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain(
      `thunderpac_xdp_packets_total{attachment="${onB}",iface="${pair.devB}",netns="${pair.nsB}",action="drop"} ${PACKETS}`,
    );
    expect(metrics.text).toMatch(/thunderpac_xdp_attachments 1\b/);
  });

  it('the same build on a second interface has its own maps', async () => {
    const attach = await api().request({
      method: 'POST',
      path: '/v1/xdp/attachments',
      body: {
        build: buildId,
        program: 'xdp_port_filter',
        interface: pair.devA,
        netns: pair.nsA,
        mode: 'skb',
      },
    });
    expect(attach.status, attach.text).toBe(201);
    expect(attach.body).toMatchObject({ build: buildId, mode: 'skb', active: true });
    onA = attach.body.id;
    expect(attach.body.pinDir).not.toBe(`${ROOT}/attachments/${pair.nsB}/${pair.devB}`);

    const onAKey = await api().request({ path: `/v1/xdp/attachments/${onA}/maps/blocked_ports/${PORT}` });
    expectFieldError(onAKey, 404, 'params.key');
    const putA = await api().request({
      method: 'PUT',
      path: `/v1/xdp/attachments/${onA}/maps/blocked_ports/9000`,
      body: { value: 1 },
    });
    expect(putA.status).toBe(200);
    const onBKey = await api().request({ path: `/v1/xdp/attachments/${onB}/maps/blocked_ports/9000` });
    expectFieldError(onBKey, 404, 'params.key');
    const stillB = await api().request({ path: `/v1/xdp/attachments/${onB}/maps/blocked_ports/${PORT}` });
    expect(stillB.body.value).toBe(1);

    const list = await api().request({ path: '/v1/xdp/attachments' });
    expect(list.body.attachments.map((a: { id: string }) => a.id).sort()).toEqual([onA, onB].sort());
    const filtered = await api().request({
      path: `/v1/xdp/attachments?interface=${pair.devA}&netns=${pair.nsA}`,
    });
    expect(filtered.body.attachments.map((a: { id: string }) => a.id)).toEqual([onA]);
  });

  it('refuses bad requests with a 4xx naming the field', async () => {
    const base = { build: buildId, program: 'xdp_port_filter', interface: DUMMY, netns: pair.nsA };
    const attach = (body: object) => api().request({ method: 'POST', path: '/v1/xdp/attachments', body });
    expectFieldError(await attach({ ...base, interface: 'nosuch0' }), 400, 'body.interface');
    expectFieldError(await attach({ ...base, netns: `tp-nosuch-${process.pid}` }), 400, 'body.netns');
    expectFieldError(await attach({ ...base, program: 'no_such_program' }), 400, 'body.program');
    expectFieldError(await attach({ ...base, mode: 'turbo' }), 400, 'body.mode');
    expectFieldError(await attach({ ...base, netns: '../etc' }), 400, 'body.netns');
    expectFieldError(await attach({ ...base, build: 'a'.repeat(64) }), 404, 'body.build');
    expectFieldError(await attach({ program: 'xdp_port_filter', interface: DUMMY }), 400, 'body.build');
    expectFieldError(await attach({ ...base, object: FILTER }), 400, 'body.object');
    expectFieldError(await attach({ ...base, build: undefined, object: 'AAAAAAAA' }), 422, 'body.object');
    expectFieldError(await attach({ ...base, interface: pair.devB, netns: pair.nsB }), 409, 'body.interface');
    expectFieldError(await attach({ ...base, mode: 'native' }), 422, 'body.mode'); // a bridge has no driver XDP

    const maps = `/v1/xdp/attachments/${onB}/maps`;
    expectFieldError(await api().request({ path: `${maps}/blocked_ports/zz?format=hex` }), 400, 'params.key');
    expectFieldError(await api().request({ path: `${maps}/blocked_ports/58?format=hex` }), 400, 'params.key');
    expectFieldError(await api().request({ path: `${maps}/blocked_ports/70000` }), 400, 'params.key');
    const badValue = await api().request({
      method: 'PUT',
      path: `${maps}/blocked_ports/581b?format=hex`,
      body: { value: 'xyz' },
    });
    expectFieldError(badValue, 400, 'body.value');
    const outOfRange = await api().request({
      method: 'PUT',
      path: `${maps}/blocked_ports/1`,
      body: { value: 256 },
    });
    expectFieldError(outOfRange, 400, 'body.value');
    const notPerCpu = await api().request({
      method: 'PUT',
      path: `${maps}/xdp_stats/0`,
      body: { value: { passed: 1 } },
    });
    expectFieldError(notPerCpu, 400, 'body.value');
    expectFieldError(await api().request({ path: `${maps}/no_such_map` }), 404, 'params.map');
    expectFieldError(
      await api().request({ path: '/v1/xdp/attachments/xa-0000000000000000' }),
      404,
      'params.id',
    );
    // Nothing above attached anything.
    expect((await api().request({ path: '/v1/xdp/attachments' })).body.attachments).toHaveLength(2);
  });

  it('after a restart: re-adopts what is still attached, cleans what lost its interface or its program', async () => {
    const dummy = await api().request({
      method: 'POST',
      path: '/v1/xdp/attachments',
      body: { build: buildId, program: 'xdp_port_filter', interface: DUMMY, netns: pair.nsA, mode: 'best' },
    });
    expect(dummy.status, dummy.text).toBe(201);
    expect(dummy.body.mode).toBe('skb'); // best: no offload, no driver XDP on a bridge
    onDummy = dummy.body.id;
    const dummyPins = dummy.body.pinDir as string;
    const pinsOfA = (await api().request({ path: `/v1/xdp/attachments/${onA}` })).body.pinDir as string;

    expect((await api().stop()).code).toBe(0);
    daemon = undefined;
    // The daemon is gone; its attachments are not.
    expect(xdpQuery({ device: pair.devB, netns: pair.nsB }).progId).not.toBe(0);
    // Meanwhile the bridge is deleted, and A's program is detached behind the daemon's back.
    ip('-n', pair.nsA, 'link', 'del', DUMMY);
    const linkA = BpfLink.openPinned(join(pinsOfA, 'link'));
    try {
      linkA.detach();
    } finally {
      linkA.close();
    }
    expect(xdpQuery({ device: pair.devA, netns: pair.nsA }).progId).toBe(0);

    daemon = await start();
    const list = await api().request({ path: '/v1/xdp/attachments' });
    expect(list.body.attachments.map((a: { id: string }) => a.id)).toEqual([onB]);
    for (const [id, pins] of [
      [onDummy, dummyPins],
      [onA, pinsOfA],
    ] as const) {
      expect(existsSync(pins), pins).toBe(false);
      expectFieldError(await api().request({ path: `/v1/xdp/attachments/${id}` }), 404, 'params.id');
    }
    const report = api()
      .logs()
      .find((line) => line.msg === 'xdp: attachments re-adopted');
    expect(report).toMatchObject({ adopted: [onB], dropped: [] });
    expect(report?.cleaned).toEqual(
      expect.arrayContaining([
        { id: onDummy, reason: 'the interface or namespace is gone' },
        { id: onA, reason: 'the program is no longer attached' },
      ]),
    );

    const status = await api().request({ path: `/v1/xdp/attachments/${onB}` });
    expect(status.body).toMatchObject({ active: true, maps: ['blocked_ports', 'xdp_stats'] });
    const stats = await api().request({ path: `/v1/xdp/attachments/${onB}/stats` });
    expect(stats.body.stats.dropped).toBe(PACKETS);
    expect(await delivered()).toBe(0);
    const again = await api().request({ path: `/v1/xdp/attachments/${onB}/stats` });
    expect(again.body.stats.dropped).toBe(2 * PACKETS);
  });

  it('detach removes the program and its pins', async () => {
    const pinDir = (await api().request({ path: `/v1/xdp/attachments/${onB}` })).body.pinDir as string;
    const detach = await api().request({ method: 'DELETE', path: `/v1/xdp/attachments/${onB}` });
    expect(detach.status, detach.text).toBe(200);
    expect(detach.body).toEqual({ id: onB, detached: true });
    expect(xdpQuery({ device: pair.devB, netns: pair.nsB }).progId).toBe(0);
    expect(existsSync(pinDir)).toBe(false);
    expect(await delivered()).toBe(PACKETS);
    expectFieldError(await api().request({ path: `/v1/xdp/attachments/${onB}/stats` }), 404, 'params.id');

    const list = await api().request({ path: '/v1/xdp/attachments' });
    expect(list.body.attachments).toEqual([]);
  });
});
