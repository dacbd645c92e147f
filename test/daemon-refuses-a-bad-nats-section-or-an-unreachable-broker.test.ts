/**
 * The config's `nats` section is validated at start: a bad field stops the daemon with exit 2
 * and one line naming the file, line, column and field path; a broker that cannot be reached
 * stops it with exit 69 (EX_UNAVAILABLE) naming the URL. Nothing is left listening.
 */

import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDistBuilt, runDaemon, tempDirectory } from './helpers/daemon.js';

/** A loopback port nothing listens on (bound, then released). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 1));
    });
  });
}

describe('the daemon with a bad nats section', () => {
  const tmp = tempDirectory('tp-events-config-');
  beforeAll(() => ensureDistBuilt(), 180_000);
  afterAll(() => tmp.remove());

  const run = (name: string, config: string) => {
    const file = join(tmp.dir, `${name}.json`);
    writeFileSync(file, config);
    return runDaemon([
      '--config',
      file,
      '--socket',
      join(tmp.dir, `${name}.sock`),
      '--store',
      join(tmp.dir, `${name}-store`),
    ]);
  };

  it('names the file, line, column and field of a URL that is not nats://host:port', async () => {
    const { code, stderr } = await run(
      'url',
      '{\n  // the broker\n  "nats": {\n    "url": "localhost:4222"\n  }\n}\n',
    );
    expect(code).toBe(2);
    expect(stderr).toMatch(/url\.json:4:12: nats\.url: expected nats:\/\/host:port, found "localhost:4222"/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('names a field of the wrong type and an unknown field', async () => {
    const wrongType = await run('ack', '{ "nats": { "url": "nats://127.0.0.1:4222", "ackWaitMs": "30s" } }');
    expect(wrongType.code).toBe(2);
    expect(wrongType.stderr).toMatch(
      /ack\.json:1:\d+: nats\.ackWaitMs: expected an integer in \[1000, 3600000\], found "30s"/,
    );
    const unknown = await run('typo', '{ "nats": { "url": "nats://127.0.0.1:4222", "maxInflight": 4 } }');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /typo\.json:1:\d+: nats\.maxInflight: expected one of url, stream, durable/,
    );
  });

  it('refuses to start when the broker cannot be reached', async () => {
    const port = await closedPort();
    const { code, stderr } = await run(
      'down',
      JSON.stringify({ nats: { url: `nats://127.0.0.1:${port}`, connectTimeoutMs: 2000 } }),
    );
    expect(code).toBe(69);
    expect(stderr).toContain(`nats.url nats://127.0.0.1:${port}: cannot reach the broker`);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
