/**
 * A real redis-server for the global QoS tests: Debian's `/usr/bin/redis-server`
 * (`scripts/setup.sh` installs it) on a free loopback port, its working dir a temp dir, no
 * persistence (or an append-only file in that dir with `appendOnly`), ready once it answers PING;
 * `kill` / `restart` (same port) / `pause` / `resume` for outage tests, and a stop that always
 * kills it and removes the dir.
 *
 *   const redis = await startRedisServer();
 *   try { … redis.url … } finally { await redis.stop(); }
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Pid of the running server (changes at restart). */
  pid(): number;
  log(): string;
  /** SIGKILL it and wait for exit (the port stays reserved for `restart`). */
  kill(): Promise<void>;
  /** Start it again on the same port and dir; resolves when it answers PING. */
  restart(): Promise<void>;
  /** SIGSTOP: it keeps its connections but answers nothing (a hung Redis). */
  pause(): void;
  resume(): void;
  /** Kill it (SIGTERM, then SIGKILL), wait for exit, remove its dir. */
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** Keep an append-only file in the temp dir (fsync always), for data that must survive a restart. */
  readonly appendOnly?: boolean;
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

/** One PING on a raw socket: true when the server answers +PONG. */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let got = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (c: Buffer) => {
      got += c.toString();
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
  });
}

interface Running {
  child: ChildProcess;
  exited: boolean;
  exit: Promise<void>;
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: run scripts/setup.sh`);
  const dir = mkdtempSync(join(tmpdir(), 'tp-redis-'));
  let log = '';
  const launch = (port: number): Running => {
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--daemonize',
      'no',
    ];
    args.push('--appendonly', options.appendOnly ? 'yes' : 'no');
    if (options.appendOnly) args.push('--appendfsync', 'always');
    const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    child.stdout?.on('data', (c: Buffer) => {
      log += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      log += c.toString();
    });
    const r: Running = { child, exited: false, exit: Promise.resolve() };
    r.exit = new Promise<void>((resolve) =>
      child.once('exit', () => {
        r.exited = true;
        running.delete(child);
        resolve();
      }),
    );
    return r;
  };
  const waitReady = async (r: Running, port: number): Promise<boolean> => {
    const deadline = Date.now() + 10_000;
    while (!r.exited && Date.now() < deadline) {
      if (await pings(port)) return true;
      await new Promise((res) => setTimeout(res, 20));
    }
    return false;
  };
  const kill = async (r: Running, signal: NodeJS.Signals): Promise<void> => {
    if (!r.exited) {
      r.child.kill('SIGCONT');
      r.child.kill(signal);
    }
    const timer = setTimeout(() => r.child.kill('SIGKILL'), 5_000);
    await r.exit;
    clearTimeout(timer);
  };
  // A port taken between the probe and the bind is retried with another.
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    let current = launch(port);
    if (await waitReady(current, port)) {
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        dir,
        pid: () => current.child.pid ?? -1,
        log: () => log,
        kill: () => kill(current, 'SIGKILL'),
        restart: async () => {
          await kill(current, 'SIGKILL');
          current = launch(port);
          if (!(await waitReady(current, port))) throw new Error(`redis-server did not restart: ${log}`);
        },
        pause: () => {
          current.child.kill('SIGSTOP');
        },
        resume: () => {
          current.child.kill('SIGCONT');
        },
        stop: async () => {
          await kill(current, 'SIGTERM');
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await kill(current, 'SIGKILL');
    if (attempt >= 3) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`redis-server did not start: ${log}`);
    }
  }
}
