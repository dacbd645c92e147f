/**
 * Fuzz target: random requests thrown at the real daemon over its real socket, at the byte
 * level (node:http would refuse to send many of them). Methods (real and invented), the
 * daemon's own route patterns with hostile parameters and query strings, random headers
 * (content types, encodings, ids, tokens) and bodies (JSON values, near-valid requests, text,
 * bytes). Whatever arrives, the answer is a response below 500 (a 503 with Retry-After is
 * allowed: it is load shedding, not a fault) or a connection the server closes; never a 5xx
 * fault, and the daemon stays up and healthy. Afterwards its own metrics agree: no 5xx other
 * than 503 was ever answered.
 *
 * Short run here; `bash scripts/fuzz.sh test/fuzz-daemon` runs it long (THUNDERPAC_FUZZ_RUNS).
 */

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestDaemon, type TestDaemon } from './helpers/daemon.js';
import { fuzzParams, fuzzTimeoutMs } from './helpers/fuzz.js';
import { rawExchange } from './helpers/raw-http.js';

let daemon: TestDaemon;

beforeAll(async () => {
  daemon = await startTestDaemon({ config: { limits: { bodyLimitBytes: 256 * 1024 } }, logLevel: 'warn' });
}, 120_000);
afterAll(async () => {
  await daemon?.stop();
});

/** The daemon's routes, each with its method (`:x` is filled with a random segment). */
const ROUTES: readonly (readonly [string, string])[] = [
  ['GET', '/v1/health'],
  ['GET', '/v1/health/live'],
  ['GET', '/v1/health/ready'],
  ['POST', '/v1/builds'],
  ['GET', '/v1/builds/:id'],
  ['POST', '/v1/executions'],
  ['POST', '/v1/jobs'],
  ['GET', '/v1/jobs/:id'],
  ['GET', '/v1/jobs/:id/events'],
  ['GET', '/v1/receipts'],
  ['GET', '/v1/receipts/:id'],
  ['POST', '/v1/receipts/:id/verify'],
  ['GET', '/v1/models'],
  ['POST', '/v1/events/:subject'],
  ['GET', '/v1/xdp/attachments'],
  ['GET', '/v1/xdp/attachments/:id'],
  ['DELETE', '/v1/xdp/attachments/:id'],
  ['GET', '/v1/xdp/attachments/:id/maps'],
  ['GET', '/v1/xdp/attachments/:id/maps/:map'],
  ['GET', '/v1/xdp/attachments/:id/maps/:map/:key'],
  ['PUT', '/v1/xdp/attachments/:id/maps/:map/:key'],
  ['DELETE', '/v1/xdp/attachments/:id/maps/:map/:key'],
  ['GET', '/v1/xdp/attachments/:id/stats'],
  ['GET', '/v2'],
  ['GET', '/v2/health/live'],
  ['GET', '/v2/health/ready'],
  ['GET', '/v2/models/:name'],
  ['GET', '/v2/models/:name/ready'],
  ['POST', '/v2/models/:name/infer'],
  ['POST', '/v2/models/:name/versions/:version/infer'],
  ['GET', '/metrics'],
  ['GET', '/'],
  ['GET', '/v3/nothing'],
];

const segment = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'mlp',
      'cnn',
      'tree',
      '1',
      'xdp_stats',
      '00',
      'c3e1f2a0-1111-4222-8333-444455556666',
    ),
  },
  fc.constantFrom(
    'mlp',
    'cnn',
    'tree',
    '1',
    '0',
    '-1',
    '..',
    '.',
    '%00',
    '%zz',
    '%2F',
    'a%20b',
    '',
    '~',
    'null',
  ),
  fc.stringMatching(/^[A-Za-z0-9._~-]{1,40}$/),
  fc.stringMatching(/^[0-9a-f]{64}$/),
  fc.uuid(),
  fc.string({ unit: 'binary-ascii', maxLength: 30 }).map((s) => encodeURIComponent(s)),
  fc.nat(20).map((n) => 'x'.repeat(n * 500)),
);

const query = fc.oneof(
  fc.constant(''),
  fc
    .array(
      fc.tuple(
        fc.constantFrom(
          'async',
          'wait',
          'limit',
          'format',
          'kind',
          'name',
          'cursor',
          'build',
          'status',
          'x',
          '',
        ),
        fc.oneof(fc.constantFrom('true', 'false', '1', '-1', '1e309', 'wasm', 'hex', '', '%ff'), segment),
      ),
      { maxLength: 4 },
    )
    .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
);

/** A route's path with random parameters, and a query string. */
function pathOf(route: string, segs: readonly string[], q: string): string {
  let i = 0;
  return route.replace(/:[a-z]+/g, () => segs[i++] ?? 'x') + q;
}

const otherMethod = fc.oneof(
  fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'),
  fc.constantFrom('TRACE', 'PROPFIND', 'PURGE', 'LINK', 'MKCOL', 'SEARCH', 'BREW'),
);

/** Mostly a route with its own method (so cases reach schemas and handlers), sometimes any. */
const target = fc
  .tuple(
    fc.constantFrom(...ROUTES),
    fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: otherMethod }),
    fc.array(segment, { minLength: 4, maxLength: 4 }),
    query,
  )
  .map(([[own, route], other, segs, q]) => ({ method: other ?? own, path: pathOf(route, segs, q) }));

const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'APPLICATION/JSON',
  'text/plain',
  'text/x-p4',
  'application/wasm',
  'application/octet-stream',
  'multipart/form-data; boundary=zz',
  'application/x-www-form-urlencoded',
  'application/json;;;',
  '*/*',
  '',
);

const header = fc.oneof(
  contentType.map((v) => ['content-type', v] as const),
  fc.constantFrom('gzip', 'br', 'identity', 'x').map((v) => ['content-encoding', v] as const),
  fc.oneof(fc.uuid(), fc.stringMatching(/^[\x21-\x7e]{0,300}$/)).map((v) => ['x-request-id', v] as const),
  fc.stringMatching(/^[\x21-\x7e]{0,200}$/).map((v) => ['authorization', `Bearer ${v}`] as const),
  fc.constantFrom('application/json', 'text/html', '*/*', '').map((v) => ['accept', v] as const),
  fc.constantFrom('100-continue', 'nothing').map((v) => ['expect', v] as const),
  fc.tuple(fc.stringMatching(/^x-[a-z0-9-]{1,20}$/), fc.stringMatching(/^[\x20-\x7e]{0,100}$/)),
);

const nearValidExecution = fc.record(
  {
    build: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.string(), fc.integer()),
    entry: fc.oneof(fc.constantFrom('echo', 'spin', ''), fc.string()),
    input: fc.oneof(
      fc.record(
        {
          kind: fc.constantFrom('bytes', 'text', 'packet', 'tensors'),
          base64: fc.string(),
          text: fc.string(),
        },
        { requiredKeys: ['kind'] },
      ),
      fc.jsonValue(),
    ),
    limits: fc.dictionary(
      fc.constantFrom('timeoutMs', 'memoryMb', 'fuel', 'maxInputBytes', 'x'),
      fc.oneof(fc.integer(), fc.double(), fc.string()),
    ),
  },
  { requiredKeys: [] },
);

const nearValidInfer = fc.record(
  {
    id: fc.string(),
    inputs: fc.array(
      fc.record(
        {
          name: fc.constantFrom('x', 'input', ''),
          shape: fc.array(fc.integer({ min: -2, max: 5 }), { maxLength: 4 }),
          datatype: fc.constantFrom('FP32', 'INT64', 'BYTES', 'FP16', 'x'),
          data: fc.oneof(fc.array(fc.double(), { maxLength: 20 }), fc.jsonValue()),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 3 },
    ),
  },
  { requiredKeys: [] },
);

const body = fc.oneof(
  fc.constant(''),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null'),
  nearValidExecution.map((v) => JSON.stringify(v)),
  nearValidInfer.map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.nat(10).map((n) => `${'['.repeat(n * 1000)}`),
);

function rawRequest(
  m: string,
  p: string,
  headers: readonly (readonly [string, string])[],
  b: string,
): Buffer {
  const bytes = Buffer.from(b, 'latin1');
  const head = [
    `${m} ${p} HTTP/1.1`,
    'Host: localhost',
    ...headers.map(([k, v]) => `${k}: ${v}`),
    `Content-Length: ${bytes.length}`,
    'Connection: close',
    '',
    '',
  ].join('\r\n');
  return Buffer.concat([Buffer.from(head, 'latin1'), bytes]);
}

describe('fuzz: random requests to the real daemon', () => {
  it(
    'are answered below 500 (or 503 with Retry-After) and never take the daemon down',
    async () => {
      const seen = new Map<number | null, number>();
      await fc.assert(
        fc.asyncProperty(
          target,
          fc.array(header, { maxLength: 5 }),
          body,
          async ({ method: m, path: p }, headers, b) => {
            const ex = await rawExchange(daemon.socket, rawRequest(m, p, headers, b), 15_000);
            const what = `${m} ${p.slice(0, 200)} ${JSON.stringify(headers).slice(0, 300)} body ${JSON.stringify(b.slice(0, 200))}`;
            expect(ex.ended, `no answer in time: ${what}`).not.toBe('timeout');
            seen.set(ex.status, (seen.get(ex.status) ?? 0) + 1);
            if (ex.status !== null && ex.status >= 500) {
              expect(ex.status, `${what}\n→ ${ex.response.slice(0, 600)}`).toBe(503);
              expect(ex.response.toLowerCase(), what).toContain('retry-after:');
            }
            // Error bodies never carry a stack trace.
            expect(ex.response, what).not.toMatch(/\n\s+at .+\.js:\d+:\d+/);
          },
        ),
        fuzzParams(150),
      );
      // The cases reach past the HTTP parser into routing, parsing, schemas and handlers.
      for (const status of [200, 400, 404, 415])
        expect(seen.get(status), `status ${status} seen`).toBeGreaterThan(0);
      const health = await daemon.request({ path: '/v1/health' });
      expect(health.status).toBe(200);
      const metrics = await daemon.request({ path: '/metrics' });
      const faults = metrics.text
        .split('\n')
        .filter(
          (l) =>
            /^thunderpac_http_requests_total\{.*status_code="5\d\d"/.test(l) &&
            !l.includes('status_code="503"'),
        );
      expect(faults).toEqual([]);
      expect(daemon.process.exitCode).toBeNull();
      console.log('fuzz-daemon statuses:', JSON.stringify([...seen].sort()));
    },
    fuzzTimeoutMs(50_000),
  );
});
