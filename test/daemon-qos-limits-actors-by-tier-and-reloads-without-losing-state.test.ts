/**
 * The daemon's QoS admission, end to end against the real process: the `qos` section puts uid 0
 * in a small free tier and uid 65534 (run through setpriv) in premium. The free actor is
 * refused with 429 + Retry-After and a typed body naming the limit once its budget is spent
 * while the premium actor is not; a reload that leaves the free tier's definition unchanged
 * keeps its spent bucket, one that changes it starts it fresh; a tier quota answers 429
 * QUOTA_EXCEEDED with resets_at; SIGHUP reloads too; a bad section is refused at file:line:col
 * (exit 2 at start, 422 on reload with the policy in force kept).
 */

import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runDaemon, tempDirectory, useDaemon } from './helpers/daemon.js';

const PREMIUM_UID = 65534;
const echo = readFileSync(join(REPO_ROOT, 'wasm', 'echo.wasm'));

function qos(free: object, premiumWeight = 10): object {
  return {
    tiers: {
      free: { ...free, priority: 'low' },
      premium: { limit: 10_000, periodMs: 60_000, weight: premiumWeight, priority: 'high' },
    },
    actors: { 'uid:0': 'free', [`uid:${PREMIUM_UID}`]: 'premium' },
    abuse: { violations: 1000 },
  };
}

function config(free: object, premiumWeight?: number): object {
  return {
    socketMode: '0666',
    policy: {
      uids: { '0': ['admin'], [String(PREMIUM_UID)]: ['runner'] },
      grants: [{ to: `uid:${PREMIUM_UID}`, builds: '*' }],
    },
    qos: qos(free, premiumWeight),
  };
}

const FREE = { limit: 3, periodMs: 60_000 };
const daemon = useDaemon({ config: config(FREE) });

const tmp = tempDirectory('tp-qos-');
const client = join(tmp.dir, 'client.mjs');
writeFileSync(
  client,
  `import { request } from 'node:http';
const [socketPath, body, n] = process.argv.slice(2);
const out = [];
for (let i = 0; i < Number(n); i++) {
  out.push(await new Promise((resolve) => {
    const r = request({ socketPath, method: 'POST', path: '/v1/executions', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve(res.statusCode));
    });
    r.on('error', (e) => resolve(e.code));
    r.end(body);
  }));
}
console.log(JSON.stringify(out));
`,
);
chmodSync(tmp.dir, 0o755);

beforeAll(() => {
  chmodSync(daemon().dir, 0o755);
  chmodSync(join(daemon().dir, 'run'), 0o755);
});
afterAll(() => tmp.remove());

/** `n` executions in a row from a process running as `uid`: their statuses. */
function executeAs(uid: number, build: string, n: number): Promise<number[]> {
  const body = JSON.stringify(run(build));
  const args = ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', process.execPath, client];
  return new Promise((resolve, reject) => {
    execFile('setpriv', [...args, daemon().socket, body, String(n)], { timeout: 30_000 }, (err, stdout) =>
      err ? reject(err) : resolve(JSON.parse(stdout) as number[]),
    );
  });
}

const run = (build: string) => ({ build, entry: 'echo', input: { kind: 'text', text: 'qos' } });
const execute = (build: string) =>
  daemon().request({ method: 'POST', path: '/v1/executions', body: run(build) });

const reload = () => daemon().request({ method: 'POST', path: '/v1/qos/reload' });

let build = '';

describe('QoS admission in the daemon', () => {
  it('refuses the free actor with 429 + Retry-After naming the limit; the premium actor passes', async () => {
    const up = await daemon().request({
      method: 'POST',
      path: '/v1/builds?kind=wasm&name=echo.wasm',
      body: echo,
      headers: { 'content-type': 'application/wasm' },
    });
    expect(up.status).toBe(201);
    build = up.body.id;

    for (let i = 0; i < FREE.limit; i++) expect((await execute(build)).status).toBe(200);
    const refused = await execute(build);
    expect(refused.status).toBe(429);
    // 3 per minute refill one every 20 s: the wait is at most that, rounded up to seconds.
    const retry = Number(refused.headers['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(20);
    expect(refused.body.error).toMatchObject({
      code: 'RATE_LIMITED',
      key: 'a:uid:0',
      limit: 3,
      window: '1m',
    });

    expect(await executeAs(PREMIUM_UID, build, FREE.limit + 2)).toEqual(Array(FREE.limit + 2).fill(200));

    const state = await daemon().request({ path: '/v1/qos?actor=uid:0' });
    expect(state.status).toBe(200);
    expect(state.body.actor).toMatchObject({ tier: 'free', bucket: { limit: 3, remaining: 0 } });
    expect(state.body.policy.tiers.free.rate).toEqual(FREE);

    const metrics = await daemon().request({ path: '/metrics' });
    expect(metrics.text).toMatch(/^thunderpac_qos_decisions_total\{limit="tier",result="refused"\} 1$/m);
    expect(metrics.text).toMatch(/^thunderpac_qos_decisions_total\{limit="tier",result="allowed"\} 8$/m);
  }, 90_000);

  it('a reload keeps the state of an unchanged tier and starts a changed one fresh; quotas answer QUOTA_EXCEEDED', async () => {
    // Only premium changed: free's spent bucket stays spent.
    writeFileSync(daemon().configFile!, JSON.stringify(config(FREE, 20)));
    expect((await reload()).status).toBe(200);
    expect((await execute(build)).status).toBe(429);

    // Free changed (limit and a quota of 2 a day): a fresh bucket, then the quota refuses.
    const metered = { limit: 100, periodMs: 60_000, quota: { limit: 2, periodMs: 86_400_000 } };
    writeFileSync(daemon().configFile!, JSON.stringify(config(metered, 20)));
    expect((await reload()).status).toBe(200);
    expect((await execute(build)).status).toBe(200);
    expect((await execute(build)).status).toBe(200);
    const over = await execute(build);
    expect(over.status).toBe(429);
    expect(over.body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', limit: 2, used: 2 });
    const resetsAt = Date.parse(over.body.error.resets_at);
    expect(resetsAt).toBeGreaterThan(Date.now());
    expect(resetsAt).toBeLessThanOrEqual(Date.now() + 86_400_000);
    const retry = Number(over.headers['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(86_400);
  }, 60_000);

  it('a bad section on reload is a 422 at file:line:col and the policy in force stays; SIGHUP reloads', async () => {
    const text = JSON.stringify(config({ limit: 0, periodMs: 60_000 }), null, 2);
    writeFileSync(daemon().configFile!, text);
    const bad = await reload();
    expect(bad.status).toBe(422);
    const line = text.split('\n').findIndex((l) => l.includes('"limit": 0')) + 1;
    expect(bad.body.error.message).toMatch(
      new RegExp(`config\\.json:${line}:\\d+: qos\\.tiers\\.free\\.limit: expected`),
    );
    expect((await daemon().request({ path: '/v1/qos' })).body.policy.tiers.free.rate.limit).toBe(100);

    writeFileSync(daemon().configFile!, JSON.stringify(config({ limit: 7, periodMs: 60_000 })));
    process.kill(daemon().pid, 'SIGHUP');
    let limit = 0;
    for (let i = 0; i < 100 && limit !== 7; i++) {
      await new Promise((r) => setTimeout(r, 100));
      limit = (await daemon().request({ path: '/v1/qos' })).body.policy.tiers.free.rate.limit;
    }
    expect(limit).toBe(7);
    expect((await execute(build)).status).toBe(200);
  }, 60_000);

  it('a bad qos section at start: exit 2 naming file:line:col and the field', async () => {
    const dir = tempDirectory('tp-qos-bad-');
    try {
      const file = join(dir.dir, 'config.json');
      writeFileSync(
        file,
        '{\n  "qos": {\n    "queue": { "codel": { "targetMs": -5, "intervalMs": 100 } }\n  }\n}\n',
      );
      const r = await runDaemon(['--config', file, '--socket', join(dir.dir, 's.sock'), '--store', dir.dir]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${file}:3:39: qos.queue.codel.targetMs: expected an integer from 1 to`);
    } finally {
      dir.remove();
    }
  }, 60_000);
});
