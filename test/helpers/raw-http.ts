/**
 * HTTP at the byte level over a unix socket, for what node:http will not send (hostile methods,
 * header bytes, trickled requests, bodies that never end) and for reading how the server ended
 * the connection.
 */

import { connect, type Socket } from 'node:net';

export interface RawExchange {
  /** Everything the server sent. */
  readonly response: string;
  /** The status code of the first response, or null if none came. */
  readonly status: number | null;
  /** How the connection ended: the server closed it, reset it, or we gave up. */
  readonly ended: 'closed' | 'reset' | 'timeout';
}

/** The status of the final response (after any interim 1xx, e.g. 100 Continue), or null. */
export function statusOf(response: string): number | null {
  let status: number | null = null;
  for (const m of response.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3})/g)) {
    status = Number(m[1]);
    if (status >= 200) break;
  }
  return status;
}

/** The JSON body of a raw response (after the blank line), or undefined. */
// biome-ignore lint/suspicious/noExplicitAny: tests read many body shapes; a wrong read fails the test
export function jsonBodyOf(response: string): any {
  const at = response.indexOf('\r\n\r\n');
  if (at < 0) return undefined;
  const head = response.slice(0, at).toLowerCase();
  let body = response.slice(at + 4);
  if (head.includes('transfer-encoding: chunked')) {
    // One or more chunks: size line, data, CRLF.
    let out = '';
    let rest = body;
    for (;;) {
      const nl = rest.indexOf('\r\n');
      if (nl < 0) break;
      const size = Number.parseInt(rest.slice(0, nl), 16);
      if (!size) break;
      out += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    body = out;
  }
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/** Open a connection; resolves once connected. */
export function openSocket(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/**
 * Send `bytes` on a fresh connection, then read until the server closes it (or `timeoutMs`).
 * Send `Connection: close` in `bytes` if the server should close after answering.
 */
export function rawExchange(
  socketPath: string,
  bytes: Buffer | string,
  timeoutMs = 10_000,
): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (ended: RawExchange['ended']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      const response = Buffer.concat(chunks).toString('latin1');
      resolve({ response, status: statusOf(response), ended });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => finish('closed'));
    s.on('close', () => finish('closed'));
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') finish('reset');
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
    s.once('connect', () => s.write(bytes));
  });
}
