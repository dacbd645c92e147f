/**
 * Async jobs are bounded: with limits.maxJobs jobs unfinished, one more is a 503 with
 * Retry-After (not a queue without end); once they finish, finished jobs make room for new
 * ones.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, useDaemon } from './helpers/daemon.js';

const daemon = useDaemon({ config: { limits: { maxJobs: 2, maxInFlight: 1 } } });

describe('async jobs', () => {
  it('beyond limits.maxJobs unfinished: 503 with Retry-After; finished jobs make room', async () => {
    const echo = readFileSync(join(REPO_ROOT, 'wasm', 'echo.wasm')).toString('base64');
    const build = (
      await daemon().request({
        method: 'POST',
        path: '/v1/builds',
        body: { kind: 'wasm', name: 'echo.wasm', base64: echo },
      })
    ).body.id;
    const spin = { build, entry: 'spin', input: { kind: 'text', text: 'x' }, limits: { timeoutMs: 1000 } };

    const first = await daemon().request({ method: 'POST', path: '/v1/jobs', body: spin });
    const second = await daemon().request({ method: 'POST', path: '/v1/jobs', body: spin });
    expect([first.status, second.status]).toEqual([202, 202]);
    const third = await daemon().request({ method: 'POST', path: '/v1/jobs', body: spin });
    expect(third.status).toBe(503);
    expect(third.headers['retry-after']).toBe('1');
    expect(third.body.error.message).toMatch(/limits\.maxJobs/);

    for (const job of [first, second]) {
      const done = await daemon().request({ path: `/v1/jobs/${job.body.jobId}?wait=30000` });
      expect(done.body.state).toBe('failed'); // spin ends at its timeout
    }
    const fourth = await daemon().request({
      method: 'POST',
      path: '/v1/jobs',
      body: { ...spin, entry: 'echo' },
    });
    expect(fourth.status).toBe(202);
    const done = await daemon().request({ path: `/v1/jobs/${fourth.body.jobId}?wait=30000` });
    expect(done.body.state).toBe('completed');
  }, 90_000);
});
