/**
 * Builds uploaded over the socket run synchronously (output + receipt carrying the actor and the
 * request id; a failed execution is a 200 with its receipt) and as jobs (awaited by long poll,
 * streamed as NDJSON). Bad requests are 400s naming the field before anything runs; curl works
 * as a client.
 */

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, useDaemon } from './helpers/daemon.js';

const echoPath = join(REPO_ROOT, 'wasm', 'echo.wasm');
const echo = readFileSync(echoPath);

const daemon = useDaemon();

async function uploadEcho(): Promise<string> {
  const r = await daemon().request({
    method: 'POST',
    path: '/v1/builds',
    body: { kind: 'wasm', name: 'echo.wasm', base64: echo.toString('base64') },
  });
  expect(r.status).toBe(201);
  return r.body.id;
}

function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('curl', ['-sS', '--unix-socket', daemon().socket, ...args], { timeout: 30_000 }, (err, out) =>
      err ? reject(err) : resolve(out),
    ),
  );
}

describe('builds', () => {
  it('upload with curl as raw application/wasm, then GET it: manifest and owner', async () => {
    const out = await curl([
      '-X',
      'POST',
      'http://daemon/v1/builds?kind=wasm&name=echo.wasm',
      '-H',
      'content-type: application/wasm',
      '--data-binary',
      `@${echoPath}`,
    ]);
    const created = JSON.parse(out);
    expect(created).toMatchObject({ kind: 'wasm', name: 'echo.wasm', owner: 'uid:0', owners: ['uid:0'] });
    expect(created.id).toBe(await uploadEcho()); // content-addressed: same bytes, same id
    const got = await daemon().request({ path: `/v1/builds/${created.id}` });
    expect(got.status).toBe(200);
    expect(got.body.manifest.artifacts).toBeDefined();
    const missing = await daemon().request({ path: `/v1/builds/${'0'.repeat(64)}` });
    expect(missing.status).toBe(404);
  }, 60_000);

  it('refuses bad uploads with the field path', async () => {
    const notWasm = await daemon().request({
      method: 'POST',
      path: '/v1/builds',
      body: { kind: 'wasm', name: 'x', base64: 'AAAA' },
    });
    expect(notWasm.status).toBe(400);
    expect(notWasm.body.error.path).toBe('body.base64');
    const badKind = await daemon().request({
      method: 'POST',
      path: '/v1/builds',
      body: { kind: 'lua', name: 'x', base64: 'AAAA' },
    });
    expect(badKind.status).toBe(400);
    expect(badKind.body.error.path).toBe('body.kind');
    const extra = await daemon().request({
      method: 'POST',
      path: '/v1/builds',
      body: { kind: 'wasm', name: 'x', base64: 'AAAA', owner: 'uid:1' },
    });
    expect(extra.status).toBe(400);
    expect(extra.body.error.path).toBe('body.owner');
  });
});

describe('other program kinds', () => {
  it('P4 source is compiled at upload (a compile error is a 4xx naming file:line:col); a BPF object runs on a packet', async () => {
    const source = readFileSync(join(REPO_ROOT, 'p4', 'samples', 'basic_router.p4'), 'utf8');
    const p4 = await daemon().request({
      method: 'POST',
      path: '/v1/builds?kind=p4&name=basic_router.p4',
      headers: { 'content-type': 'text/x-p4' },
      body: source,
    });
    expect(p4.status).toBe(201);
    expect(p4.body.kind).toBe('p4');
    const bad = await daemon().request({
      method: 'POST',
      path: '/v1/builds',
      body: { kind: 'p4', name: 'bad.p4', source: 'control C() { apply { x = ; } }\n' },
    });
    expect(bad.status).toBe(422);
    expect(bad.body.error.path).toBe('bad.p4:1:27');

    const object = readFileSync(join(REPO_ROOT, 'bpf', 'xdp_pass.bpf.o'));
    const bpf = await daemon().request({
      method: 'POST',
      path: '/v1/builds?kind=ebpf&name=xdp_pass.bpf.o',
      headers: { 'content-type': 'application/octet-stream' },
      body: object,
    });
    expect(bpf.status).toBe(201);
    const frame = Buffer.alloc(64, 0xab);
    const run = await daemon().request({
      method: 'POST',
      path: '/v1/executions',
      body: {
        build: bpf.body.id,
        entry: 'xdp_pass',
        input: { kind: 'packet', base64: frame.toString('base64') },
      },
    });
    expect(run.status).toBe(200);
    expect(run.body.output).toMatchObject({ kind: 'packet', verdict: 'XDP_PASS' });
    expect(Buffer.from(run.body.output.packets[0].base64, 'base64').equals(frame)).toBe(true);
    expect(run.body.receipt).toMatchObject({ backend: 'ebpf', actor: 'uid:0' });
  }, 60_000);
});

describe('synchronous executions', () => {
  it('return the output and a receipt sealing the actor and the request id, which comes back as a header', async () => {
    const build = await uploadEcho();
    const r = await daemon().request({
      method: 'POST',
      path: '/v1/executions',
      headers: { 'x-request-id': 'test-req-1' },
      body: {
        build,
        entry: 'echo',
        input: { kind: 'bytes', base64: Buffer.from('ping').toString('base64') },
      },
    });
    expect(r.status).toBe(200);
    expect(r.headers['x-request-id']).toBe('test-req-1');
    expect(r.body.status).toBe('completed');
    expect(Buffer.from(r.body.output.base64, 'base64').toString()).toBe('ping');
    expect(r.body.receipt).toMatchObject({
      id: r.body.receiptId,
      buildId: build,
      actor: 'uid:0',
      requestId: 'test-req-1',
    });

    // An unusable request id is replaced by one the daemon makes, and that is what is sealed.
    const odd = await daemon().request({
      method: 'POST',
      path: '/v1/executions',
      headers: { 'x-request-id': 'has spaces' },
      body: { build, entry: 'echo', input: { kind: 'text', text: 'x' } },
    });
    const generated = odd.headers['x-request-id'];
    expect(generated).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    expect(odd.body.receipt.requestId).toBe(generated);
  }, 60_000);

  it('a failed execution is a 200 with status failed and its receipt', async () => {
    const build = await uploadEcho();
    const r = await daemon().request({
      method: 'POST',
      path: '/v1/executions',
      body: { build, entry: 'trap', input: { kind: 'text', text: 'x' } },
    });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('failed');
    expect(r.body.output).toBeNull();
    expect(r.body.error.code).toMatch(/^[A-Z_]+$/);
    expect(r.body.receipt).toMatchObject({ status: 'failed', actor: 'uid:0' });
  });

  it('a malformed request is a 400 naming the field, and nothing runs', async () => {
    const build = await uploadEcho();
    const cases: [unknown, string][] = [
      [{ build, entry: 'echo' }, 'body.input'],
      [{ build: 'nope', entry: 'echo', input: { kind: 'text', text: 'x' } }, 'body.build'],
      [
        { build, entry: 'echo', input: { kind: 'text', text: 'x' }, limits: { timeoutMs: 0 } },
        'body.limits.timeoutMs',
      ],
      [{ build, entry: 'echo', input: { kind: 'bytes', text: 'x' } }, 'body.input.base64'],
      [
        { build, entry: 'echo', input: { kind: 'text', text: 'x', ingressPort: 1 } },
        'body.input.ingressPort',
      ],
    ];
    for (const [body, path] of cases) {
      const r = await daemon().request({ method: 'POST', path: '/v1/executions', body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.path).toBe(path);
    }
    const unknown = await daemon().request({
      method: 'POST',
      path: '/v1/executions',
      body: { build: 'a'.repeat(64), entry: 'echo', input: { kind: 'text', text: 'x' } },
    });
    expect(unknown.status).toBe(404);
  });
});

describe('jobs', () => {
  it('POST /v1/jobs is a 202 with a job id; a long poll returns it finished with its result', async () => {
    const build = await uploadEcho();
    const submitted = await daemon().request({
      method: 'POST',
      path: '/v1/jobs',
      headers: { 'x-request-id': 'job-req-1' },
      body: { build, entry: 'echo', input: { kind: 'text', text: 'later' } },
    });
    expect(submitted.status).toBe(202);
    const { jobId } = submitted.body;
    expect(submitted.headers.location).toBe(`/v1/jobs/${jobId}`);
    const done = await daemon().request({ path: `/v1/jobs/${jobId}?wait=20000` });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({
      id: jobId,
      state: 'completed',
      owner: 'uid:0',
      requestId: 'job-req-1',
    });
    expect(Buffer.from(done.body.result.output.base64, 'base64').toString()).toBe('later');
    expect(done.body.result.receipt.requestId).toBe('job-req-1');

    const missing = await daemon().request({ path: '/v1/jobs/00000000-0000-0000-0000-000000000000' });
    expect(missing.status).toBe(404);
  }, 60_000);

  it('GET /v1/jobs/:id/events streams NDJSON state changes until the job finishes', async () => {
    const build = await uploadEcho();
    const submitted = await daemon().request({
      method: 'POST',
      path: '/v1/executions?async=true',
      body: { build, entry: 'spin', input: { kind: 'text', text: 'x' }, limits: { timeoutMs: 1500 } },
    });
    expect(submitted.status).toBe(202);
    const lines = await new Promise<Record<string, unknown>[]>((resolve, reject) => {
      const req = httpRequest(
        { socketPath: daemon().socket, path: `/v1/jobs/${submitted.body.jobId}/events` },
        (res) => {
          expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
          let text = '';
          res.on('data', (c) => {
            text += c;
          });
          res.on('end', () =>
            resolve(
              text
                .trim()
                .split('\n')
                .map((l) => JSON.parse(l)),
            ),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
    const states = lines.map((l) => l.state);
    expect(states.at(-1)).toBe('failed'); // spin runs into its 1.5 s timeout
    // The stream began while the job was still queued or running, and said so.
    expect(states.length).toBeGreaterThanOrEqual(2);
    expect(states.slice(0, -1).every((s) => s === 'queued' || s === 'running')).toBe(true);
    const last = lines.at(-1) as { result: { error: { code: string }; receipt: { status: string } } };
    expect(last.result.error.code).toBe('LIMIT_TIMEOUT_MS');
    expect(last.result.receipt.status).toBe('failed');
  }, 60_000);
});
