/**
 * The CLI's daemon client (src/cli/client.ts) against real HTTP servers on unix sockets that
 * this file starts (each answers in one way a daemon could): an answer bigger than the bound
 * is refused whether it declares its size or streams it; a daemon that says nothing is cut at
 * the timeout; every failure is a typed error with the exit code main() uses (4xx and
 * unreachable 2, 503 75, other 5xx 70), and requests of one command share a keep-alive
 * connection.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DaemonClient,
  DaemonClientError,
  DaemonResponseError,
  DaemonUnreachableError,
  EXIT_BAD_INPUT,
  EXIT_INTERNAL,
  EXIT_TEMPFAIL,
} from '../src/cli/client.js';
import { tempDirectory } from './helpers/daemon.js';

let tmp: { dir: string; remove: () => void };
let server: Server;
let socket: string;
const connections = new Set<number>();
let nextConnection = 0;

/** Each path answers as one kind of daemon would (the return value is ignored). */
function route(req: IncomingMessage, res: ServerResponse): unknown {
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  switch (req.url) {
    case '/ok':
      return json(200, { ok: true, connection: (req.socket as unknown as { tag: number }).tag });
    case '/refused':
      return json(400, {
        error: { code: 'VALIDATION', message: 'limit must be >= 1', path: 'querystring.limit' },
      });
    case '/v2-refused':
      return json(400, {
        error: 'inputs[0]: bad shape',
        code: 'KSERVE_SHAPE_MISMATCH',
        path: 'inputs[0].shape',
      });
    case '/busy':
      return json(503, { error: { code: 'OVERLOADED', message: 'queue full' } }, { 'retry-after': '2' });
    case '/broken':
      return json(500, { error: { code: 'INTERNAL', message: 'internal error', requestId: 'r-1' } });
    case '/not-json':
      res.writeHead(200, { 'content-type': 'text/plain' });
      return void res.end('hello');
    case '/declared-huge':
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024) });
      return void res.write('[');
    case '/streamed-huge': {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const more = () => {
        while (sent < 4 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      return more();
    }
    case '/silent':
      return; // never answers
    default:
      return json(404, { error: { code: 'NO_ROUTE', message: `no route for ${req.method} ${req.url}` } });
  }
}

beforeAll(async () => {
  tmp = tempDirectory('tp-cli-client-unit-');
  socket = join(tmp.dir, 'fake-daemon.sock');
  server = createServer(route);
  server.on('connection', (s) => {
    const tag = nextConnection++;
    (s as unknown as { tag: number }).tag = tag;
    connections.add(tag);
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  tmp.remove();
});

async function failure(promise: Promise<unknown>): Promise<DaemonClientError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(DaemonClientError);
    return err as DaemonClientError;
  }
  throw new Error('expected the request to fail');
}

describe('the daemon client', () => {
  it('requests of one client share a keep-alive connection', async () => {
    const client = new DaemonClient(socket);
    try {
      const a = await client.request<{ connection: number }>('GET', '/ok');
      const b = await client.request<{ connection: number }>('GET', '/ok');
      expect(a.body.connection).toBe(b.body.connection);
    } finally {
      client.close();
    }
  });

  it('a 4xx is exit 2 with the code, message and field path, in both error shapes', async () => {
    const client = new DaemonClient(socket);
    try {
      const v1 = await failure(client.request('GET', '/refused'));
      expect(v1).toBeInstanceOf(DaemonResponseError);
      expect(v1.exitCode).toBe(EXIT_BAD_INPUT);
      expect(v1.message).toBe('VALIDATION: limit must be >= 1 (at querystring.limit)');
      const v2 = await failure(client.request('POST', '/v2-refused', { body: { inputs: [] } }));
      expect(v2.exitCode).toBe(EXIT_BAD_INPUT);
      expect(v2.message).toBe('KSERVE_SHAPE_MISMATCH: inputs[0]: bad shape (at inputs[0].shape)');
      // A status the caller accepts comes back as an answer.
      expect((await client.request('GET', '/refused', { accept: [400] })).status).toBe(400);
    } finally {
      client.close();
    }
  });

  it('a 503 is exit 75 with the retry delay; another 5xx is exit 70', async () => {
    const client = new DaemonClient(socket);
    try {
      const busy = await failure(client.request('GET', '/busy'));
      expect(busy.exitCode).toBe(EXIT_TEMPFAIL);
      expect(busy.message).toBe('the daemon failed (HTTP 503): OVERLOADED: queue full (retry after 2 s)');
      const broken = await failure(client.request('GET', '/broken'));
      expect(broken.exitCode).toBe(EXIT_INTERNAL);
      expect(broken.message).toContain('HTTP 500');
      const notJson = await failure(client.request('GET', '/not-json'));
      expect(notJson.exitCode).toBe(EXIT_INTERNAL);
      expect(notJson.message).toContain('not JSON');
    } finally {
      client.close();
    }
  });

  it('an answer over the bound is refused, declared or streamed', async () => {
    const client = new DaemonClient(socket, { maxResponseBytes: 1024 * 1024 });
    try {
      for (const path of ['/declared-huge', '/streamed-huge']) {
        const err = await failure(client.request('GET', path));
        expect(err.exitCode, path).toBe(EXIT_INTERNAL);
        expect(err.message, path).toContain('more than 1048576 bytes');
      }
      // The client still works after refusing (the connection was dropped, not reused).
      expect((await client.request('GET', '/ok')).status).toBe(200);
    } finally {
      client.close();
    }
  });

  it('a daemon that does not answer is cut at the timeout (exit 70)', async () => {
    const client = new DaemonClient(socket, { timeoutMs: 300 });
    try {
      const err = await failure(client.request('GET', '/silent'));
      expect(err.exitCode).toBe(EXIT_INTERNAL);
      expect(err.message).toContain('ETIMEDOUT');
    } finally {
      client.close();
    }
  });

  it('no socket is "no daemon at PATH: connect ENOENT", exit 2', async () => {
    const missing = join(tmp.dir, 'nobody.sock');
    const client = new DaemonClient(missing);
    try {
      const err = await failure(client.request('GET', '/ok'));
      expect(err).toBeInstanceOf(DaemonUnreachableError);
      expect(err.exitCode).toBe(EXIT_BAD_INPUT);
      expect(err.message).toBe(`no daemon at ${missing}: connect ENOENT`);
    } finally {
      client.close();
    }
  });
});
