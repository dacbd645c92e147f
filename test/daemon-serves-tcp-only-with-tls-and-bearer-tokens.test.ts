/**
 * TCP is served only with TLS and to bearer tokens the policy holds (as sha256): no token or an
 * unknown one is a 401, a token's roles decide the rest (403 naming the action), and the
 * token's name is the actor sealed into receipts.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startTestDaemon, type TestDaemon, tempDirectory } from './helpers/daemon.js';

const tmp = tempDirectory('tp-tls-');
const cert = join(tmp.dir, 'cert.pem');
const key = join(tmp.dir, 'key.pem');
execFileSync('openssl', [
  'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
  '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1',
], { stdio: 'ignore' }); // biome-ignore format: one command line

const RUNNER_TOKEN = 'runner-secret-token-1';
const AUDITOR_TOKEN = 'auditor-secret-token-2';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

let daemon: TestDaemon;
let port = 0;

beforeAll(async () => {
  port = await freePort();
  daemon = await startTestDaemon({
    config: {
      listen: `127.0.0.1:${port}`,
      tls: { cert, key },
      policy: {
        uids: { '0': ['admin'] },
        tokens: {
          ci: { sha256: sha256(RUNNER_TOKEN), roles: ['runner'] },
          scraper: { sha256: sha256(AUDITOR_TOKEN), roles: ['auditor'] },
        },
      },
    },
  });
}, 300_000);
afterAll(async () => {
  await daemon?.stop();
  tmp.remove();
});

function tcp(
  path: string,
  options: { token?: string; method?: string; body?: unknown } = {},
  // biome-ignore lint/suspicious/noExplicitAny: the test reads several body shapes
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? (payload ? 'POST' : 'GET'),
        ca: readFileSync(cert),
        agent: false,
        headers: {
          ...(options.token !== undefined && { authorization: `Bearer ${options.token}` }),
          ...(payload && { 'content-type': 'application/json', 'content-length': String(payload.length) }),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('TCP with TLS and bearer tokens', () => {
  it('without a token, or with one the policy does not hold: 401', async () => {
    const none = await tcp('/v1/health');
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('UNAUTHENTICATED');
    expect(none.body.error.message).toMatch(/^health\.read: no credentials/);
    const wrong = await tcp('/v1/health', { token: 'not-a-token' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.message).toBe('health.read: the bearer token is not one the policy knows');
  });

  it('a runner token uploads and executes; the receipt names token:ci', async () => {
    const echo = readFileSync(join(REPO_ROOT, 'wasm', 'echo.wasm')).toString('base64');
    const build = await tcp('/v1/builds', {
      token: RUNNER_TOKEN,
      body: { kind: 'wasm', name: 'echo.wasm', base64: echo },
    });
    expect(build.status).toBe(201);
    expect(build.body.owner).toBe('token:ci');
    const run = await tcp('/v1/executions', {
      token: RUNNER_TOKEN,
      body: { build: build.body.id, entry: 'echo', input: { kind: 'text', text: 'tls' } },
    });
    expect(run.status).toBe(200);
    expect(run.body.receipt.actor).toBe('token:ci');
  }, 60_000);

  it('an auditor token reads but may not upload: 403 naming the action', async () => {
    expect((await tcp('/v1/health', { token: AUDITOR_TOKEN })).status).toBe(200);
    const denied = await tcp('/v1/builds', {
      token: AUDITOR_TOKEN,
      body: { kind: 'wasm', name: 'x', base64: 'AGFzbQ==' },
    });
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toBe(
      'build.create denied: token:scraper (roles: auditor) may not build.create',
    );
  });

  it('the unix socket still identifies by uid beside it', async () => {
    const r = await daemon.request({ path: '/v1/health' });
    expect(r.status).toBe(200);
  });
});
