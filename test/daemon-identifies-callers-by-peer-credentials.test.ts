/**
 * Who is calling is what the kernel says (SO_PEERCRED), not what the client claims: a client
 * run as another uid (setpriv) is that uid to the daemon. Deny by default: a uid the policy
 * does not name may read health and nothing else (403 naming the action, logged, counted);
 * a runner executes its own builds and granted ones, not another's; the receipt says who ran.
 */

import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBuild } from '../src/backends/wasm/backend.js';
import { REPO_ROOT, request, tempDirectory, useDaemon } from './helpers/daemon.js';

const NOBODY = 65534; // runner in the policy below
const STRANGER = 65533; // in no policy entry

const echo = readFileSync(join(REPO_ROOT, 'wasm', 'echo.wasm'));
/** The same module with a custom section: another build id, so another owner. */
const echoOf = (tag: string) =>
  Buffer.concat([echo, Buffer.from([0, tag.length + 1, tag.length, ...Buffer.from(tag)])]);
const granted = echoOf('granted');
const grantedId = createWasmBuild(granted, { name: 'granted.wasm' }).id;

const tmp = tempDirectory('tp-peer-');
const client = join(tmp.dir, 'client.mjs');
writeFileSync(
  client,
  `import { request } from 'node:http';
const [socketPath, method, path, body, type] = process.argv.slice(2);
const r = request({ socketPath, method, path, headers: body ? { 'content-type': type } : {} }, (res) => {
  let text = '';
  res.on('data', (c) => (text += c));
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, text })));
});
r.on('error', (e) => console.log(JSON.stringify({ status: 0, text: e.code })));
r.end(body ? Buffer.from(body, type === 'application/json' ? 'utf8' : 'base64') : undefined);
`,
);
chmodSync(tmp.dir, 0o755);

const daemon = useDaemon({
  config: {
    socketMode: '0666',
    policy: {
      uids: { '0': ['admin'], [String(NOBODY)]: ['runner'] },
      grants: [{ to: `uid:${NOBODY}`, builds: [grantedId] }],
    },
  },
});

beforeAll(() => {
  // The test daemon's directory is private; others must reach the socket to be refused by policy.
  chmodSync(daemon().dir, 0o755);
  chmodSync(join(daemon().dir, 'run'), 0o755);
});
afterAll(() => tmp.remove());

/** One request from a process running as `uid` (and gid), with no supplementary groups. */
function requestAs(
  uid: number,
  method: string,
  path: string,
  body?: { json: unknown } | { bytes: Buffer; type: string },
  // biome-ignore lint/suspicious/noExplicitAny: the test reads several body shapes
): Promise<{ status: number; body: any }> {
  const args = [
    '--reuid',
    String(uid),
    '--regid',
    String(uid),
    '--clear-groups',
    process.execPath,
    client,
    daemon().socket,
    method,
    path,
  ];
  if (body && 'json' in body) args.push(JSON.stringify(body.json), 'application/json');
  else if (body) args.push(body.bytes.toString('base64'), body.type);
  return new Promise((resolve, reject) => {
    execFile('setpriv', args, { timeout: 30_000 }, (err, stdout) => {
      if (err) return reject(err);
      const { status, text } = JSON.parse(stdout) as { status: number; text: string };
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {}
      resolve({ status, body: parsed });
    });
  });
}

async function upload(bytes: Buffer, name: string, as: number): Promise<string> {
  const path = `/v1/builds?kind=wasm&name=${name}`;
  const r =
    as === 0
      ? await request(daemon().socket, {
          method: 'POST',
          path,
          body: bytes,
          headers: { 'content-type': 'application/wasm' },
        })
      : await requestAs(as, 'POST', path, { bytes, type: 'application/wasm' });
  expect(r.status).toBe(201);
  return r.body.id;
}

const run = (build: string) => ({ json: { build, entry: 'echo', input: { kind: 'text', text: 'who' } } });

describe('callers are identified by their unix credentials', () => {
  it('a uid the policy does not name reads health, and is denied anything else: 403 naming the action, logged, counted', async () => {
    const health = await requestAs(STRANGER, 'GET', '/v1/health');
    expect(health.status).toBe(200);

    const denied = await requestAs(STRANGER, 'POST', '/v1/builds?kind=wasm&name=x.wasm', {
      bytes: echo,
      type: 'application/wasm',
    });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('FORBIDDEN');
    expect(denied.body.error.message).toBe(
      `build.create denied: uid:${STRANGER} (roles: none) may not build.create`,
    );

    const metrics = await daemon().request({ path: '/metrics' });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/^thunderpac_authz_denials_total\{action="build\.create"[^}]*\} 1$/m);
    const decision = daemon()
      .logs()
      .find((l) => l.decision === 'deny' && l.actor === `uid:${STRANGER}`);
    expect(decision).toMatchObject({ action: 'build.create', msg: 'authorization' });
  }, 60_000);

  it('a runner executes its own build and a granted one, not another owner’s; the receipt names it', async () => {
    const roots = await upload(echoOf('root'), 'root.wasm', 0);
    const grantedBuild = await upload(granted, 'granted.wasm', 0);
    expect(grantedBuild).toBe(grantedId);
    const own = await upload(echoOf('nobody'), 'mine.wasm', NOBODY);

    const other = await requestAs(NOBODY, 'POST', '/v1/executions', run(roots));
    expect(other.status).toBe(403);
    expect(other.body.error.message).toBe(
      `execute denied: uid:${NOBODY} may not execute on build ${roots}: not its owner and no grant covers it`,
    );
    const readOther = await requestAs(NOBODY, 'GET', `/v1/builds/${roots}`);
    expect(readOther.status).toBe(403);

    for (const build of [own, grantedId]) {
      const ok = await requestAs(NOBODY, 'POST', '/v1/executions', run(build));
      expect(ok.status).toBe(200);
      expect(ok.body.status).toBe('completed');
      expect(Buffer.from(ok.body.output.base64, 'base64').toString()).toBe('who');
      expect(ok.body.receipt.actor).toBe(`uid:${NOBODY}`);
      expect(ok.body.receipt.buildId).toBe(build);
    }

    const mine = await request(daemon().socket, { path: `/v1/builds/${own}` });
    expect(mine.body).toMatchObject({ id: own, owner: `uid:${NOBODY}`, owners: [`uid:${NOBODY}`] });
  }, 60_000);
});
