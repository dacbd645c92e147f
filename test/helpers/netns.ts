/**
 * Two network namespaces joined by a veth pair, made for one test file and torn down after it
 * (also when the test fails): `ip netns del` removes each namespace and with it its veth end.
 * Traffic only ever flows between the two ends, on addresses private to this pair.
 */
import { execFileSync, spawn } from 'node:child_process';

export interface VethPair {
  readonly nsA: string;
  readonly nsB: string;
  readonly devA: string;
  readonly devB: string;
  readonly ipA: string;
  readonly ipB: string;
  readonly ip6A: string;
  readonly ip6B: string;
  readonly macA: string;
  readonly macB: string;
  destroy(): void;
}

let counter = 0;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}

/** `tag` makes names readable in `ip netns list` when a test is debugged. */
export function createVethPair(tag: string): VethPair {
  const id = `${process.pid % 100000}${counter++}`;
  const nsA = `tp-${tag}-${id}-a`;
  const nsB = `tp-${tag}-${id}-b`;
  // IFNAMSIZ is 16 with the NUL; both ends live in their own namespaces, so short names suffice.
  const devA = `tpa${id}`.slice(0, 15);
  const devB = `tpb${id}`.slice(0, 15);
  const octet = (Number(id) % 200) + 20;
  const pair = {
    nsA,
    nsB,
    devA,
    devB,
    ipA: `10.${octet}.0.1`,
    ipB: `10.${octet}.0.2`,
    ip6A: `fd00:${octet}::1`,
    ip6B: `fd00:${octet}::2`,
    macA: '02:00:00:00:aa:01',
    macB: '02:00:00:00:bb:02',
    destroy(): void {
      for (const ns of [nsA, nsB]) {
        try {
          ip('netns', 'del', ns);
        } catch {
          // already gone
        }
      }
    },
  };
  try {
    ip('netns', 'add', nsA);
    ip('netns', 'add', nsB);
    ip(
      'link',
      'add',
      devA,
      'netns',
      nsA,
      'address',
      pair.macA,
      'type',
      'veth',
      'peer',
      'name',
      devB,
      'netns',
      nsB,
      'address',
      pair.macB,
    );
    for (const [ns, dev, v4, v6, peerV4, peerV6, peerMac] of [
      [nsA, devA, pair.ipA, pair.ip6A, pair.ipB, pair.ip6B, pair.macB],
      [nsB, devB, pair.ipB, pair.ip6B, pair.ipA, pair.ip6A, pair.macA],
    ] as const) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'addr', 'add', `${v4}/24`, 'dev', dev);
      ip('-n', ns, 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad');
      ip('-n', ns, 'link', 'set', dev, 'up');
      // Static neighbours: no ARP/ND on the wire, so the only packets are the test's own.
      ip('-n', ns, 'neigh', 'replace', peerV4, 'lladdr', peerMac, 'dev', dev, 'nud', 'permanent');
      ip('-n', ns, 'neigh', 'replace', peerV6, 'lladdr', peerMac, 'dev', dev, 'nud', 'permanent');
    }
  } catch (err) {
    pair.destroy();
    throw err;
  }
  return pair;
}

export function namespaceExists(name: string): boolean {
  return ip('netns', 'list')
    .split('\n')
    .some((line) => line.split(' ')[0] === name);
}

export interface SendResult {
  readonly sent: number;
  /** Sender clock (ms, monotonic) of the first and last datagram handed to the kernel. */
  readonly firstMs: number;
  readonly lastMs: number;
}

/**
 * Sends `count` UDP datagrams from inside `ns` to `to:port`, `perTick` at a time every
 * `intervalMs` (0 = back to back). Bounded by count and a 20 s timeout.
 */
export function sendUdp(
  ns: string,
  options: {
    to: string;
    port: number;
    count: number;
    perTick?: number;
    intervalMs?: number;
    from?: string;
    size?: number;
  },
): Promise<SendResult> {
  const script = `
const dgram = require('node:dgram');
const o = ${JSON.stringify({ perTick: options.count, intervalMs: 0, size: 32, ...options })};
const s = dgram.createSocket(o.to.includes(':') ? 'udp6' : 'udp4');
const payload = Buffer.alloc(o.size, 0x61);
let sent = 0, done = 0, first = 0, last = 0;
const now = () => Number(process.hrtime.bigint()) / 1e6;
function finish() { s.close(); process.stdout.write(JSON.stringify({ sent, firstMs: first, lastMs: last })); }
function tick() {
  const n = Math.min(o.perTick, o.count - sent);
  for (let i = 0; i < n; i++) {
    if (sent === 0) first = now();
    sent++;
    s.send(payload, o.port, o.to, () => { last = now(); if (++done === o.count) finish(); });
  }
  if (sent < o.count) setTimeout(tick, o.intervalMs);
}
${options.from ? `s.bind({ address: o.from }, tick);` : 'tick();'}
`;
  return runNode(ns, script, 20_000).then((out) => JSON.parse(out) as SendResult);
}

/**
 * Counts UDP datagrams arriving on `port` inside `ns`. Call `finish()` once the sender is done:
 * the receiver then waits `settleMs` for datagrams still in flight and reports (15 s cap).
 */
export function receiveUdp(
  ns: string,
  options: { port: number; family?: 4 | 6; settleMs?: number },
): { ready: Promise<void>; count: Promise<number>; finish: () => void } {
  const script = `
const s = require('node:dgram').createSocket('${options.family === 6 ? 'udp6' : 'udp4'}');
let count = 0, stopped = false;
const stop = () => { if (stopped) return; stopped = true; s.close(); process.stdout.write(JSON.stringify({ count })); process.exit(0); };
s.on('message', () => { count++; });
process.stdin.on('data', () => setTimeout(stop, ${options.settleMs ?? 300}));
s.bind(${options.port}, () => { process.stderr.write('ready\\n'); setTimeout(stop, 15000); });
`;
  let signalReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    signalReady = resolve;
  });
  let finish = (): void => {};
  const count = runNode(
    ns,
    script,
    20_000,
    (line) => {
      if (line.includes('ready')) signalReady();
    },
    (write) => {
      finish = () => write('done\n');
    },
  ).then((out) => (JSON.parse(out) as { count: number }).count);
  count.catch(() => signalReady());
  return { ready, count, finish: () => finish() };
}

function runNode(
  ns: string,
  script: string,
  timeoutMs: number,
  onStderr?: (line: string) => void,
  onStdin?: (write: (text: string) => void) => void,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    onStdin?.((text) => child.stdin.write(text));
    if (onStdin === undefined) child.stdin.end();
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      onStderr?.(chunk.toString());
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`node in netns ${ns} exited ${code}: ${stderr}`));
    });
  });
}
