/**
 * Bad input against the real daemon over its real socket: each gets a clear 4xx with a JSON
 * body (`{ error: { code, message, path?, requestId } }`) and the daemon keeps serving.
 *
 * - malformed JSON: 400 saying where it broke (line, column, offset, what was expected);
 * - a content type no route takes (text/plain, XML): 415;
 * - a body over limits.bodyLimitBytes: 413 *before buffering*. Declared in content-length, not
 *   one body byte is read; streamed (chunked, no length), the daemon reads at most the limit
 *   and cuts the connection. A 1 GiB upload is attempted both ways: the client manages to push
 *   only a small fraction before the socket is cut, and the daemon's resident memory (from its
 *   own /metrics) grows by far less than the body;
 * - an unknown route: 404 naming the method and the path.
 */

import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { jsonBodyOf, rawExchange } from './helpers/raw-http.js';

const BODY_LIMIT = 1024 * 1024;
const GIB = 1024 * 1024 * 1024;
/** A JSON route of the daemon's own API (the body is parsed before anything else happens). */
const BUILDS = '/v1/builds';
/** The KServe route answers in the protocol's error format, but is cut early the same way. */
const INFER = '/v2/models/mlp/infer';

let daemon: TestDaemon;

beforeAll(async () => {
  daemon = await startTestDaemon({ config: { limits: { bodyLimitBytes: BODY_LIMIT } }, logLevel: 'info' });
}, 120_000);
afterAll(async () => {
  await daemon?.stop();
});

// biome-ignore lint/suspicious/noExplicitAny: a wrong read of the body fails the test
function expectErrorBody(body: any, code: string): void {
  expect(body?.error?.code, JSON.stringify(body)).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(typeof body.error.requestId).toBe('string');
  expect(JSON.stringify(body)).not.toMatch(/\bat .*\.js:\d+/); // no stack frames
}

async function residentBytes(): Promise<number> {
  const res = await daemon.request({ path: '/metrics' });
  const m = /^process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(res.text);
  if (!m) throw new Error(`no process_resident_memory_bytes in /metrics: ${res.text.slice(0, 200)}`);
  return Number(m[1]);
}

/**
 * Upload up to `total` bytes on a raw connection, honouring backpressure, until the server
 * answers and cuts the connection. Resolves with what was pushed into the socket and the reply.
 */
function upload(head: string, total: number): Promise<{ written: number; response: string }> {
  return new Promise((resolve) => {
    const s = connect(daemon.socket);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const chunked = head.toLowerCase().includes('transfer-encoding: chunked');
    const frame = chunked
      ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])
      : chunk;
    let written = 0;
    let ended = false;
    const received: Buffer[] = [];
    const finish = () => {
      if (ended) return;
      ended = true;
      s.destroy();
      resolve({ written, response: Buffer.concat(received).toString('latin1') });
    };
    s.on('data', (c: Buffer) => received.push(c));
    s.on('close', finish);
    s.on('error', finish);
    const pump = () => {
      while (!ended && written < total) {
        written += chunk.length;
        if (!s.write(frame)) {
          s.once('drain', pump);
          return;
        }
      }
    };
    s.once('connect', () => {
      s.write(head);
      pump();
    });
  });
}

describe('malformed JSON', () => {
  it('is a 400 saying where the body broke', async () => {
    const res = await daemon.request({
      method: 'POST',
      path: BUILDS,
      body: '{\n  "inputs": [\n    {"name": "x",, "shape": [1]}\n  ]\n}',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(400);
    expectErrorBody(res.body, 'BAD_JSON');
    expect(res.body.error.path).toBe('body');
    expect(res.body.error.message).toContain('line 3 column 18');
    expect(res.body.error.message).toContain("found ','");
    expect(res.headers['x-request-id']).toBe(res.body.error.requestId);
  });

  it('is a 400 when the body ends early, and for an empty JSON body', async () => {
    const cut = await daemon.request({
      method: 'POST',
      path: BUILDS,
      body: '{"inputs": [',
      headers: { 'content-type': 'application/json' },
    });
    expect(cut.status).toBe(400);
    expectErrorBody(cut.body, 'BAD_JSON');
    expect(cut.body.error.message).toContain('the end of the body');
    const empty = await daemon.request({
      method: 'POST',
      path: BUILDS,
      body: '',
      headers: { 'content-type': 'application/json' },
    });
    expect(empty.status).toBe(400);
    expectErrorBody(empty.body, 'EMPTY_JSON_BODY');
  });

  it('refuses a body naming __proto__ (prototype pollution) with the key path', async () => {
    const res = await daemon.request({
      method: 'POST',
      path: BUILDS,
      body: '{"inputs": [{"__proto__": {"polluted": true}}]}',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(400);
    expectErrorBody(res.body, 'BAD_JSON_KEY');
    expect(res.body.error.path).toBe('body.inputs[0].__proto__');
  });
});

describe('no body at all', () => {
  it('is a 400 naming the body on a route that needs one (found by the request fuzzer: it was a 500)', async () => {
    const res = await daemon.request({ method: 'POST', path: BUILDS, headers: { 'content-length': '0' } });
    expect(res.status).toBe(400);
    expectErrorBody(res.body, 'MISSING_BODY');
    expect(res.body.error.path).toBe('body');
  });
});

describe('wrong content type', () => {
  it.each(['text/plain', 'application/xml', 'multipart/form-data; boundary=x'])(
    '%s is a 415',
    async (type) => {
      const res = await daemon.request({
        method: 'POST',
        path: BUILDS,
        body: '{"inputs": []}',
        headers: { 'content-type': type },
      });
      expect(res.status).toBe(415);
      expectErrorBody(res.body, 'UNSUPPORTED_MEDIA_TYPE');
    },
  );
});

describe('oversized bodies are refused before they are buffered', () => {
  it('a declared length over the limit is a 413 without reading the body', async () => {
    const { written, response } = await upload(
      `POST ${BUILDS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${GIB}\r\n\r\n`,
      GIB,
    );
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
    expectErrorBody(jsonBodyOf(response), 'BODY_TOO_LARGE');
    expect(jsonBodyOf(response).error.message).toContain(String(BODY_LIMIT));
    // The connection was cut long before the 1 GiB went through.
    expect(written).toBeLessThan(GIB / 8);
  });

  it('a streamed (chunked) body is cut at the limit, and memory does not follow the upload', async () => {
    const before = await residentBytes();
    const { written, response } = await upload(
      `POST ${BUILDS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
      GIB,
    );
    const after = await residentBytes();
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
    expectErrorBody(jsonBodyOf(response), 'BODY_TOO_LARGE');
    expect(written).toBeLessThan(GIB / 8);
    // At most the limit was held (plus allocator slack), never the upload.
    expect(after - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('on the KServe routes too (their error format, the same early cut)', async () => {
    const { written, response } = await upload(
      `POST ${INFER} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
      GIB,
    );
    expect(response).toMatch(/^HTTP\/1\.1 413 /);
    expect(written).toBeLessThan(GIB / 8);
  });

  it('keeps serving after both', async () => {
    const res = await daemon.request({ path: '/v1/health' });
    expect(res.status).toBe(200);
  });
});

describe('unknown routes', () => {
  it('are a 404 naming the method and the path', async () => {
    const res = await daemon.request({ method: 'DELETE', path: '/v1/no/such/thing?x=1' });
    expect(res.status).toBe(404);
    expectErrorBody(res.body, 'NO_ROUTE');
    expect(res.body.error.method).toBe('DELETE');
    expect(res.body.error.message).toContain('DELETE /v1/no/such/thing');
  });

  it('echo a hostile path bounded', async () => {
    const long = `/${'a'.repeat(8000)}`;
    const ex = await rawExchange(
      daemon.socket,
      `GET ${long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    expect(ex.status).toBe(404);
    const body = jsonBodyOf(ex.response);
    expectErrorBody(body, 'NO_ROUTE');
    expect(body.error.url.length).toBeLessThan(400);
  });
});

describe('logs', () => {
  it('carry the request id on every request line, keep hostile URLs short, and never log a token', async () => {
    const secret = 'Bearer s3cr3t-token-that-must-not-be-logged';
    const long = `/${'b'.repeat(10_000)}`;
    const ex = await rawExchange(
      daemon.socket,
      `GET ${long} HTTP/1.1\r\nHost: ${'h'.repeat(5000)}\r\nAuthorization: ${secret}\r\nConnection: close\r\n\r\n`,
    );
    expect(ex.status).toBe(404);
    const res = await daemon.request({ path: '/v1/nothing-here', headers: { authorization: secret } });
    expect(res.status).toBe(404);
    await new Promise((r) => setTimeout(r, 200));
    const out = daemon.stdout();
    expect(out).not.toContain('s3cr3t');
    for (const line of out.split('\n')) expect(line.length).toBeLessThan(4096);
    // Every request is logged once, when answered (logging.ts), each line with its request id.
    const lines = daemon.logs().filter((l) => l.msg === 'incoming request' || l.msg === 'request completed');
    expect(lines.length).toBeGreaterThan(0);
    const idOf = (l: Record<string, unknown>) => l.requestId ?? l.reqId;
    for (const l of lines) expect(typeof idOf(l), JSON.stringify(l)).toBe('string');
    const mine = lines.filter((l) => idOf(l) === res.headers['x-request-id']);
    expect(mine.map((l) => l.msg)).toEqual(['request completed']);
    expect(mine[0]).toMatchObject({
      res: { statusCode: 404 },
      req: { method: 'GET', url: '/v1/nothing-here' },
    });
    const hostile = lines.find((l) => (l.req as { url?: string } | undefined)?.url?.startsWith('/bbbb'));
    expect(hostile, 'the hostile request was logged').toBeDefined();
    expect((hostile?.req as { url?: string } | undefined)?.url).toContain('(10001 characters)');
  });
});
