/**
 * The daemon's error handler (src/daemon/errors.ts `httpErrorOf`), error by error: every typed
 * error a route can meet becomes the status that fits it with its stable code (and the field
 * path where there is one); the daemon being full is a 503 with Retry-After; only an error
 * nobody typed is a 500, and then its body says nothing of what was thrown (no message, no
 * stack): just the request id to look it up in the log. The same handler answers the real
 * daemon's requests in the other daemon tests; here each class is checked on its own.
 */

import { describe, expect, it } from 'vitest';
import { ShuttingDownError } from '../src/backends/onnx/errors.js';
import { QueueFullError } from '../src/backends/onnx/pipeline.js';
import { CodecError, MapError, XdpBusyError } from '../src/backends/ebpf/errors.js';
import { BadJsonError, httpErrorOf } from '../src/daemon/errors.js';
import { OverloadedError } from '../src/daemon/executions.js';
import { P4CompileError } from '../src/p4c/errors.js';
import {
  IntegrityError,
  LimitExceededError,
  NotFoundError,
  ProgramRejectedError,
  SandboxStateError,
  ThunderpacError,
  ValidationError,
} from '../src/runtime/errors.js';

const LIMITS = { bodyLimitBytes: 1024 };
const map = (err: unknown) => httpErrorOf(err, 'req-1', LIMITS);

describe('typed errors', () => {
  it('ValidationError is a 400 with its field path', () => {
    const a = map(new ValidationError('range', 'limits.timeoutMs', 'at most 60000', '1e9'));
    expect(a.status).toBe(400);
    expect(a.body.error).toMatchObject({
      code: 'VALIDATION_RANGE',
      path: 'limits.timeoutMs',
      requestId: 'req-1',
    });
    expect(a.fault).toBe(false);
  });

  it('OverloadedError and shed pipeline requests are a 503 with Retry-After', () => {
    const a = map(new OverloadedError('64 running and 1024 queued', 2));
    expect(a.status).toBe(503);
    expect(a.headers['retry-after']).toBe('2');
    expect(a.body.error.code).toBe('DAEMON_OVERLOADED');
    for (const e of [new QueueFullError(8), new ShuttingDownError('pool')]) {
      const b = map(e);
      expect(b.status).toBe(503);
      expect(Number(b.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
  });

  it('LimitExceededError is a 413 for an input over maxInputBytes, a 422 otherwise', () => {
    expect(map(new LimitExceededError('maxInputBytes', 10, 20)).status).toBe(413);
    const t = map(new LimitExceededError('timeoutMs', 100));
    expect(t.status).toBe(422);
    expect(t.body.error).toMatchObject({ code: 'LIMIT_TIMEOUT_MS', limit: 'timeoutMs' });
  });

  it('not found is a 404, a conflict a 409, a refused program a 422', () => {
    expect(map(new NotFoundError('build', 'abc')).status).toBe(404);
    expect(map(new SandboxStateError('running', 'running')).status).toBe(409);
    expect(map(new XdpBusyError('busy', { device: 'eth0', attachedProgId: 7 })).status).toBe(409);
    expect(map(new ProgramRejectedError('WASM_FORBIDDEN', 'import', 'forbidden import')).status).toBe(422);
    const p4 = map(new P4CompileError('syntax', { file: 'a.p4', line: 3, col: 9 }, "';'", 'x'));
    expect(p4.status).toBe(422);
    expect(p4.body.error.path).toBe('a.p4:3:9');
  });

  it('BPF map and codec errors say what: ENOENT is 404, EEXIST 409, a bad field 400 with its path', () => {
    expect(map(new MapError('no key', { errno: 2 })).status).toBe(404);
    expect(map(new MapError('exists', { errno: 17 })).status).toBe(409);
    const c = map(new CodecError('value.rate_pps', 'expected u32'));
    expect(c.status).toBe(400);
    expect(c.body.error.path).toBe('value.rate_pps');
  });

  it('an error carrying statusCode chooses its status; its path is echoed only on a 4xx', () => {
    class Denied extends ThunderpacError {
      readonly statusCode = 403;
      readonly path = 'actor';
    }
    const a = map(new Denied('FORBIDDEN', 'no'));
    expect(a.status).toBe(403);
    expect(a.body.error.path).toBe('actor');
    class Broken extends ThunderpacError {
      readonly statusCode = 502;
      readonly path = '/var/lib/thunderpac/secret';
    }
    const b = map(new Broken('UPSTREAM', 'upstream failed'));
    expect(b.status).toBe(502);
    expect(b.body.error.path).toBeUndefined();
  });

  it('malformed JSON says where it broke', () => {
    const a = map(new BadJsonError('{"a": [1, 2,, 3]}'));
    expect(a.status).toBe(400);
    expect(a.body.error.path).toBe('body');
    expect(a.body.error.message).toContain('line 1 column 13 (offset 12)');
  });

  it("Fastify's own request errors keep their 4xx with stable codes and field paths", () => {
    const tooLarge = Object.assign(new Error('Request body is too large'), {
      code: 'FST_ERR_CTP_BODY_TOO_LARGE',
      statusCode: 413,
    });
    expect(map(tooLarge)).toMatchObject({ status: 413, body: { error: { code: 'BODY_TOO_LARGE' } } });
    const media = Object.assign(new Error('Unsupported Media Type: text/csv'), {
      code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
      statusCode: 415,
    });
    expect(map(media)).toMatchObject({ status: 415, body: { error: { code: 'UNSUPPORTED_MEDIA_TYPE' } } });
    const schema = Object.assign(new Error('body/limits/timeoutMs must be <= 60000'), {
      code: 'FST_ERR_VALIDATION',
      statusCode: 400,
      validationContext: 'body',
      validation: [
        { instancePath: '/limits/timeoutMs', keyword: 'maximum', message: 'must be <= 60000', params: {} },
      ],
    });
    expect(map(schema)).toMatchObject({
      status: 400,
      body: { error: { code: 'VALIDATION', path: 'body.limits.timeoutMs' } },
    });
    const missing = Object.assign(new Error("body must have required property 'entry'"), {
      code: 'FST_ERR_VALIDATION',
      statusCode: 400,
      validationContext: 'body',
      validation: [
        {
          instancePath: '/inputs/0',
          keyword: 'required',
          message: "must have required property 'entry'",
          params: { missingProperty: 'entry' },
        },
      ],
    });
    expect(map(missing).body.error.path).toBe('body.inputs[0].entry');
  });
});

describe('faults', () => {
  it('a typed fault (a damaged store) is a 500 that keeps its code for the operator', () => {
    const a = map(new IntegrityError('receipt log damaged'));
    expect(a.status).toBe(500);
    expect(a.fault).toBe(true);
    expect(a.body.error.code).toBe('INTEGRITY');
  });

  it('an untyped error is a 500 that reveals nothing but the request id', () => {
    for (const thrown of [
      new TypeError("Cannot read properties of undefined (reading 'secret')"),
      'a string',
      null,
    ]) {
      const a = map(thrown);
      expect(a.status).toBe(500);
      expect(a.fault).toBe(true);
      expect(a.body.error.code).toBe('INTERNAL');
      expect(a.body.error.requestId).toBe('req-1');
      const text = JSON.stringify(a.body);
      expect(text).toContain('req-1');
      expect(text).not.toContain('secret');
      expect(text).not.toMatch(/\bat .*:\d+:\d+/);
    }
  });
});
