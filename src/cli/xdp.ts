/**
 * `thunderpac xdp attach|detach|status|clean|test-run`.
 *
 * attach without --pin makes a netlink attachment (a link would die with this short-lived
 * command); --pin makes a pinned bpf link. Either way the attachment gets its own pin
 * directory under the bpffs root, <root>/attachments/<netns>/<dev>/, with the object's maps at
 * maps/<map>, so `thunderpac map NAME --dev DEV [--netns NS]` reaches each copy's maps.
 *
 * With `--socket PATH` (or $THUNDERPAC_SOCKET) attach, detach and status go through the
 * daemon (client-xdp.ts); clean and test-run have no daemon route and always run here.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BpfObject } from '../backends/ebpf/object.js';
import type { XdpMode } from '../backends/ebpf/link.js';
import { xdpQuery } from '../backends/ebpf/link.js';
import { DEFAULT_BPFFS_ROOT, XdpManager } from '../backends/ebpf/xdp.js';
import { clientSocket, refuseLocalFlags, withDaemon } from './client.js';
import { attachThroughDaemon, detachThroughDaemon, statusThroughDaemon } from './client-xdp.js';
import { parseIntFlag, UsageError } from './io.js';
import { readPcap } from './pcap.js';

export function bpffsRoot(flag: string | undefined): string {
  return flag ?? process.env.THUNDERPAC_BPFFS ?? DEFAULT_BPFFS_ROOT;
}

function print(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

const MODES: readonly (XdpMode | 'best')[] = ['native', 'skb', 'offload', 'best'];

export async function xdpCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      prog: { type: 'string' },
      dev: { type: 'string' },
      mode: { type: 'string' },
      netns: { type: 'string' },
      replace: { type: 'boolean', default: false },
      pin: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      root: { type: 'string' },
      packet: { type: 'string' },
      pcap: { type: 'string' },
      repeat: { type: 'string' },
      json: { type: 'boolean', default: false },
      socket: { type: 'string' },
    },
  });
  const [action, ...rest] = positionals;
  const socket =
    action === 'attach' || action === 'detach' || action === 'status'
      ? clientSocket(values.socket)
      : undefined;
  if (socket !== undefined) return xdpThroughDaemon(socket, action!, rest, values);
  if (values.socket !== undefined) {
    throw new UsageError(`xdp ${action ?? ''} has no daemon route and runs here; drop --socket`);
  }
  const manager = new XdpManager({ root: bpffsRoot(values.root) });
  const target = () => {
    if (!values.dev) throw new UsageError(`xdp ${action} needs --dev IFACE`);
    return { device: values.dev, ...(values.netns ? { netns: values.netns } : {}) };
  };
  switch (action) {
    case 'attach': {
      const [objectPath] = rest;
      if (!objectPath || rest.length !== 1) throw new UsageError('xdp attach expects one BPF object file');
      if (!values.prog) throw new UsageError('xdp attach needs --prog NAME');
      const mode = (values.mode ?? 'native') as XdpMode;
      if (!MODES.includes(mode))
        throw new UsageError(`--mode must be native, skb, offload or best, got '${values.mode}'`);
      const where = target();
      const object = openObject(objectPath);
      try {
        object.load();
        const attachment = manager.attach(object, values.prog, {
          ...where,
          mode,
          replace: values.replace,
          pin: values.pin,
          netlink: !values.pin,
        });
        const maps = attachment.maps ?? [];
        print(values.json, { ...attachment, maps }, () =>
          [
            `attached ${attachment.progName} (id ${attachment.progId}) to ${where.device}` +
              `${where.netns ? ` in netns ${where.netns}` : ''}: ${attachment.kind}, ${attachment.mode} mode` +
              (attachment.replacedProgId ? `, replaced program ${attachment.replacedProgId}` : ''),
            ...maps.map((path) => `  map pinned at ${path}`),
          ].join('\n'),
        );
      } finally {
        object.close();
      }
      return 0;
    }
    case 'detach': {
      const where = target();
      const detached = manager.detach(where, { force: values.force });
      print(values.json, { detached }, () =>
        detached ? `detached the XDP program from ${where.device}` : `no XDP program on ${where.device}`,
      );
      return 0;
    }
    case 'status': {
      const entries = manager.status();
      const device = values.dev ? { device: values.dev, ...xdpQuery(target()) } : undefined;
      print(values.json, { attachments: entries, ...(device ? { interface: device } : {}) }, () => {
        const lines = entries.map(
          (e) =>
            `${e.netns ?? '-'} ${e.device}: ${e.kind} prog ${e.progId ?? '?'} (${e.progName ?? '?'}) ` +
            `${e.active ? 'active' : `stale (interface runs ${e.attachedProgId ?? 'nothing/gone'})`}`,
        );
        if (entries.length === 0) lines.push('no thunderpac XDP attachments');
        if (device) lines.push(`${device.device}: prog ${device.progId} (${device.mode})`);
        return lines.join('\n');
      });
      return 0;
    }
    case 'clean': {
      const cleaned = manager.clean();
      // Maps older versions pinned at <root>/maps: without their programs they are only memory.
      const mapsDir = join(manager.root, 'maps');
      const maps = existsSync(mapsDir) ? readdirSync(mapsDir).map((name) => join(mapsDir, name)) : [];
      for (const path of maps) rmSync(path, { force: true });
      print(values.json, { cleaned, unpinnedMaps: maps }, () =>
        cleaned.length === 0 && maps.length === 0
          ? 'nothing to clean'
          : [
              ...cleaned.map(
                (c) =>
                  `${c.detached ? 'detached' : 'removed stale record for'} ${c.netns ?? '-'} ${c.device} (${c.kind})`,
              ),
              ...maps.map((path) => `unpinned map ${path}`),
            ].join('\n'),
      );
      return 0;
    }
    case 'test-run':
      return testRun(rest, values);
    default:
      throw new UsageError(`unknown xdp action '${action ?? ''}' (attach, detach, status, clean, test-run)`);
  }
}

/** attach / detach / status through the daemon, with the in-process checks of the flags. */
function xdpThroughDaemon(
  socket: string,
  action: string,
  rest: string[],
  values: {
    prog?: string | undefined;
    dev?: string | undefined;
    netns?: string | undefined;
    mode?: string | undefined;
    replace: boolean;
    force: boolean;
    root?: string | undefined;
    json: boolean;
  },
): Promise<number> {
  refuseLocalFlags(values, ['root']);
  const dev = () => {
    if (!values.dev) throw new UsageError(`xdp ${action} needs --dev IFACE`);
    return values.dev;
  };
  switch (action) {
    case 'attach': {
      const [objectPath] = rest;
      if (!objectPath || rest.length !== 1) throw new UsageError('xdp attach expects one BPF object file');
      if (!values.prog) throw new UsageError('xdp attach needs --prog NAME');
      const mode = values.mode ?? 'native';
      if (!MODES.includes(mode as XdpMode))
        throw new UsageError(`--mode must be native, skb, offload or best, got '${values.mode}'`);
      const flags = { ...values, prog: values.prog, dev: dev(), mode };
      return withDaemon(socket, (client) => attachThroughDaemon(client, objectPath, flags));
    }
    case 'detach': {
      // The daemon detaches only its own attachments: there is nothing to force.
      if (values.force)
        throw new UsageError('--force has no meaning through the daemon (it detaches its own attachments)');
      const flags = { ...values, dev: dev() };
      return withDaemon(socket, (client) => detachThroughDaemon(client, flags));
    }
    default:
      return withDaemon(socket, (client) => statusThroughDaemon(client, values));
  }
}

function testRun(
  rest: string[],
  values: { prog?: string; packet?: string; pcap?: string; repeat?: string; json?: boolean },
): number {
  const [objectPath] = rest;
  if (!objectPath || rest.length !== 1) throw new UsageError('xdp test-run expects one BPF object file');
  if (!values.prog) throw new UsageError('xdp test-run needs --prog NAME');
  if ((values.packet === undefined) === (values.pcap === undefined)) {
    throw new UsageError('xdp test-run needs exactly one of --packet HEX or --pcap FILE');
  }
  const repeat = parseIntFlag('repeat', values.repeat) ?? 1;
  let packets: Uint8Array[];
  if (values.packet !== undefined) {
    const hex = values.packet.replace(/^0x/, '').replace(/[\s:]/g, '');
    if (!/^([0-9a-fA-F]{2})+$/.test(hex))
      throw new UsageError('--packet expects an even number of hex digits');
    packets = [Uint8Array.from(Buffer.from(hex, 'hex'))];
  } else {
    packets = readPcap(values.pcap!);
  }
  const object = openObject(objectPath);
  try {
    object.load();
    const results = packets.map((packet, index) => {
      const started = process.hrtime.bigint();
      const result = object.testRun(values.prog!, packet, { repeat });
      const callNs = Number(process.hrtime.bigint() - started);
      return {
        index,
        action: result.action ?? null,
        retval: result.retval,
        durationNs: result.durationNs,
        callNs,
        repeat: result.repeat,
        size: result.dataSize,
        output: Buffer.from(result.data).toString('hex'),
      };
    });
    print(values.json === true, { program: values.prog, results }, () =>
      results
        .map(
          (r) =>
            `#${r.index}: ${r.action ?? r.retval} (${r.durationNs} ns/run in kernel, ${r.size} bytes out)`,
        )
        .join('\n'),
    );
  } finally {
    object.close();
  }
  return 0;
}

function openObject(path: string): BpfObject {
  if (!existsSync(path)) throw new UsageError(`no such BPF object: ${path}`);
  return BpfObject.open(path);
}
