/**
 * One policy in the kernel too: the `qos.kernel` section's per-source packet rate compiles into
 * the maps of xdp_ratelimit attached through the daemon, inside network namespaces this file
 * creates (a veth pair). Packets from one source far above the configured rate: the kernel
 * drops the excess. A reload with a higher rate (POST /v1/qos/reload) rewrites the rule in the
 * running program's map: more pass. The program's counters are in /metrics beside the QoS ones.
 */

import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XdpManager } from '../src/backends/ebpf/xdp.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';
import { startTestDaemon, type TestDaemon, tempDirectory } from './helpers/daemon.js';
import { createVethPair, receiveUdp, sendUdp, type VethPair } from './helpers/netns.js';

const ROOT = `/sys/fs/bpf/thunderpac-test-dqos-${process.pid}`;
const RATELIMIT = readFileSync(bpfObjectPath('xdp_ratelimit.bpf.o')).toString('base64');
const PORT = 7100;
const PACKETS = 60;
const BURST = 5;

let pair: VethPair;
let storeDir: { dir: string; remove: () => void };
let daemon: TestDaemon | undefined;

const config = (ratePps: number, burst: number) => ({
  bpffsRoot: ROOT,
  qos: { kernel: { rules: [{ prefix: `${pair.ipA}/32`, ratePps, burst }] } },
});

beforeAll(async () => {
  storeDir = tempDirectory('tp-dqos-');
  pair = createVethPair('dqos');
  daemon = await startTestDaemon({ store: join(storeDir.dir, 'store'), config: config(1, BURST) });
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

/** PACKETS datagrams back to back from A to B: how many arrived. */
async function delivered(): Promise<number> {
  const receiver = receiveUdp(pair.nsB, { port: PORT });
  await receiver.ready;
  await sendUdp(pair.nsA, { to: pair.ipB, port: PORT, count: PACKETS });
  receiver.finish();
  return receiver.count;
}

describe('the qos kernel section in the XDP rate limiter', () => {
  it('drops a source above its configured rate; a reload with a higher rate lets more pass', async () => {
    const attach = await api().request({
      method: 'POST',
      path: '/v1/xdp/attachments',
      body: { object: RATELIMIT, program: 'xdp_ratelimit', interface: pair.devB, netns: pair.nsB },
    });
    expect(attach.status, attach.text).toBe(201);
    const id = attach.body.id;

    // The rule was written into the running program's map as the attachment was made.
    const rules = await api().request({ path: `/v1/xdp/attachments/${id}/maps/rl_rules_v4` });
    expect(rules.status, rules.text).toBe(200);
    expect(JSON.stringify(rules.body)).toContain(`${pair.ipA}/32`);

    // 1 packet per second with a burst of 5: of 60 sent back to back, the burst and the few
    // refilled while sending pass (the sender takes well under 10 s), the rest are dropped.
    const first = await delivered();
    expect(first).toBeGreaterThanOrEqual(1);
    expect(first).toBeLessThanOrEqual(BURST + 10);

    writeFileSync(api().configFile!, JSON.stringify(config(100_000, 1_000)));
    const reload = await api().request({ method: 'POST', path: '/v1/qos/reload' });
    expect(reload.status, reload.text).toBe(200);
    const second = await delivered();
    expect(second).toBeGreaterThan(first);
    expect(second).toBe(PACKETS);

    const stats = await api().request({ path: `/v1/xdp/attachments/${id}/stats` });
    expect(stats.status).toBe(200);
    const metrics = await api().request({ path: '/metrics' });
    expect(metrics.text).toMatch(/^thunderpac_xdp_stat_total\{[^}]*\} \d+$/m);
    expect(metrics.text).toMatch(/^thunderpac_qos_reloads_total\{result="ok"\} 1$/m);
  }, 120_000);
});
