/**
 * A real nats-server with JetStream for the event-bus tests: Debian's `/usr/sbin/nats-server`
 * (`scripts/setup.sh` installs it) on a free loopback port with its store in a temp dir, a
 * client connection for the test, and a stop that always kills it and removes the dir.
 *
 *   const nats = await startNatsServer();
 *   try { … nats.url … } finally { await nats.stop(); }
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NATS_SERVER = process.env.NATS_SERVER ?? '/usr/sbin/nats-server';

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly pid: number;
  /** What the server printed (its log), for failure messages. */
  log(): string;
  /** Kill it (SIGTERM, then SIGKILL), wait for exit, remove its store. */
  stop(): Promise<void>;
}

export interface NatsServerOptions {
  /** Largest message the server accepts, bytes (default: the server's 1 MiB). */
  readonly maxPayload?: number;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  if (!existsSync(NATS_SERVER)) throw new Error(`${NATS_SERVER} is missing: run scripts/setup.sh`);
  const dir = mkdtempSync(join(tmpdir(), 'tp-nats-'));
  // A port taken between the probe and the bind is retried with another.
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const args = ['-js', '-sd', join(dir, 'jetstream'), '-a', '127.0.0.1', '-p', String(port)];
    if (options.maxPayload !== undefined) {
      const conf = join(dir, 'nats.conf');
      writeFileSync(conf, `max_payload: ${options.maxPayload}\n`);
      args.push('-c', conf);
    }
    const child = spawn(NATS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let log = '';
    child.stdout?.on('data', (c: Buffer) => {
      log += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      log += c.toString();
    });
    let exited = false;
    const exit = new Promise<void>((resolve) =>
      child.once('exit', () => {
        exited = true;
        running.delete(child);
        resolve();
      }),
    );
    const stop = async (): Promise<void> => {
      if (!exited) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(timer);
    };
    const deadline = Date.now() + 10_000;
    while (!exited && Date.now() < deadline && !/Server is ready/.test(log)) {
      await new Promise((r) => setTimeout(r, 25));
    }
    if (!exited && (await accepts(port))) {
      return {
        url: `nats://127.0.0.1:${port}`,
        port,
        dir,
        pid: child.pid ?? -1,
        log: () => log,
        stop: async () => {
          await stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await stop();
    if (attempt >= 3) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`nats-server did not start: ${log}`);
    }
  }
}
