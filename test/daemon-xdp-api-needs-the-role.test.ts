/**
 * The XDP routes ask the policy (xdp.attach / xdp.detach / xdp.read / map.read / map.write):
 * an auditor reads XDP status but cannot attach, a runner cannot even list. The test's own
 * uid is given the role through the daemon's policy section, over the real socket.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';
import { ensureDistBuilt, startTestDaemon, type TestDaemon } from './helpers/daemon.js';

const FILTER = readFileSync(bpfObjectPath('xdp_port_filter.bpf.o')).toString('base64');
const uid = process.getuid?.() ?? 0;
let daemon: TestDaemon | undefined;

// The daemon runs from dist/: build it (when stale) before the tests' own clocks start.
beforeAll(() => ensureDistBuilt(), 300_000);

afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});

function withRole(role: string): Promise<TestDaemon> {
  return startTestDaemon({ config: { policy: { uids: { [String(uid)]: [role] } } } });
}

const attachBody = { object: FILTER, program: 'xdp_port_filter', interface: 'lo' };

describe('XDP routes and the policy', () => {
  it('an auditor lists attachments but may not attach', async () => {
    daemon = await withRole('auditor');
    const list = await daemon.request({ path: '/v1/xdp/attachments' });
    expect(list.status, list.text).toBe(200);
    expect(list.body).toEqual({ attachments: [] });
    const attach = await daemon.request({ method: 'POST', path: '/v1/xdp/attachments', body: attachBody });
    expect(attach.status, attach.text).toBe(403);
    expect(attach.body.error.code).toMatch(/FORBIDDEN|DENIED/i);
    const metrics = await daemon.request({ path: '/metrics' });
    expect(metrics.text).toMatch(/thunderpac_authz_denials_total\{action="xdp\.attach"\} 1/);
  }, 60_000);

  it('a runner may not read XDP status', async () => {
    daemon = await withRole('runner');
    const list = await daemon.request({ path: '/v1/xdp/attachments' });
    expect(list.status, list.text).toBe(403);
    const attach = await daemon.request({ method: 'POST', path: '/v1/xdp/attachments', body: attachBody });
    expect(attach.status, attach.text).toBe(403);
  }, 60_000);
});
