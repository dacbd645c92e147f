/**
 * `xdp attach|detach|status` and `map dump|lookup|update|delete` in client mode, over the
 * daemon's `/v1/xdp/attachments…` routes, printed as the in-process commands print them.
 *
 * The daemon names attachments by id; the CLI keeps naming them by interface (`--dev IFACE
 * [--netns NS]`), and a bare map name finds its attachment the way the in-process `map` does:
 * `--dev` picks the attachment, else the one attachment with such a map (several: refused,
 * naming the choices). The daemon always attaches a pinned link (it must outlive requests),
 * so `--pin` changes nothing there.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AttachmentView } from '../daemon/xdp-attachments.js';
import { type DaemonClient, DaemonResponseError, segment } from './client.js';
import { UsageError } from './io.js';
import { readUserFile } from './paths.js';

function print(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/** The attachment as the in-process `xdp attach --json` shows one, plus the daemon's id. */
function attachmentJson(v: AttachmentView) {
  return {
    id: v.id,
    device: v.interface,
    netns: v.netns ?? undefined,
    kind: 'pinned-link',
    mode: v.mode,
    progId: v.progId,
    progName: v.program,
    pinDir: v.pinDir,
    maps: v.maps.map((name) => join(v.pinDir, 'maps', name)),
    build: v.build,
  };
}

function where(device: string, netns: string | undefined): string {
  return `${device}${netns ? ` in netns ${netns}` : ''}`;
}

async function attachments(client: DaemonClient): Promise<AttachmentView[]> {
  return (await client.request<{ attachments: AttachmentView[] }>('GET', '/v1/xdp/attachments')).body
    .attachments;
}

function onInterface(
  list: readonly AttachmentView[],
  device: string,
  netns: string | undefined,
): AttachmentView | undefined {
  return list.find((a) => a.interface === device && a.netns === (netns ?? null));
}

export interface XdpFlags {
  readonly prog?: string | undefined;
  readonly dev?: string | undefined;
  readonly netns?: string | undefined;
  readonly mode?: string | undefined;
  readonly replace?: boolean | undefined;
  readonly json?: boolean | undefined;
}

export async function attachThroughDaemon(
  client: DaemonClient,
  objectPath: string,
  values: XdpFlags & { prog: string; dev: string; mode: string },
): Promise<number> {
  if (!existsSync(objectPath)) throw new UsageError(`no such BPF object: ${objectPath}`);
  const object = readUserFile(objectPath, 'BPF object');
  const before = values.replace
    ? onInterface(await attachments(client), values.dev, values.netns)
    : undefined;
  const view = (
    await client.request<AttachmentView>('POST', '/v1/xdp/attachments', {
      body: {
        object: object.toString('base64'),
        program: values.prog,
        interface: values.dev,
        ...(values.netns ? { netns: values.netns } : {}),
        mode: values.mode,
        replace: values.replace === true,
      },
    })
  ).body;
  const json = attachmentJson(view);
  const replacedProgId = before && before.progId !== view.progId ? before.progId : undefined;
  print(values.json === true, { ...json, ...(replacedProgId !== undefined && { replacedProgId }) }, () =>
    [
      `attached ${view.program} (id ${view.progId}) to ${where(view.interface, values.netns)}: ` +
        `${json.kind}, ${view.mode} mode` +
        (replacedProgId ? `, replaced program ${replacedProgId}` : ''),
      ...json.maps.map((path) => `  map pinned at ${path}`),
    ].join('\n'),
  );
  return 0;
}

export async function detachThroughDaemon(
  client: DaemonClient,
  values: XdpFlags & { dev: string },
): Promise<number> {
  const found = onInterface(await attachments(client), values.dev, values.netns);
  let detached = false;
  if (found) {
    detached = (
      await client.request<{ detached: boolean }>('DELETE', `/v1/xdp/attachments/${segment(found.id)}`)
    ).body.detached;
  }
  print(values.json === true, { detached }, () =>
    detached ? `detached the XDP program from ${values.dev}` : `no XDP program on ${values.dev}`,
  );
  return 0;
}

export async function statusThroughDaemon(client: DaemonClient, values: XdpFlags): Promise<number> {
  const list = await attachments(client);
  const entries = list.map((v) => ({
    id: v.id,
    device: v.interface,
    netns: v.netns ?? undefined,
    kind: 'pinned-link',
    pinDir: v.pinDir,
    maps: v.maps,
    progId: v.progId,
    progName: v.program,
    attachedProgId: v.attachedProgId ?? undefined,
    active: v.active,
  }));
  // The daemon answers for its own attachments; --dev shows what that interface runs.
  const own = values.dev ? onInterface(list, values.dev, values.netns) : undefined;
  const device = own ? { device: own.interface, progId: own.attachedProgId ?? 0, mode: own.mode } : undefined;
  print(values.json === true, { attachments: entries, ...(device ? { interface: device } : {}) }, () => {
    const lines = entries.map(
      (e) =>
        `${e.netns ?? '-'} ${e.device}: ${e.kind} prog ${e.progId ?? '?'} (${e.progName ?? '?'}) ` +
        `${e.active ? 'active' : `stale (interface runs ${e.attachedProgId ?? 'nothing/gone'})`}`,
    );
    if (entries.length === 0) lines.push('no thunderpac XDP attachments');
    if (device) lines.push(`${device.device}: prog ${device.progId} (${device.mode})`);
    else if (values.dev) lines.push(`${values.dev}: no attachment of this daemon`);
    return lines.join('\n');
  });
  return 0;
}

/** The attachment whose map `name` a `map` command means (see the module comment). */
async function attachmentOfMap(
  client: DaemonClient,
  name: string,
  values: { dev?: string | undefined; netns?: string | undefined },
): Promise<AttachmentView> {
  const list = await attachments(client);
  if (values.dev !== undefined) {
    const found = onInterface(list, values.dev, values.netns);
    if (!found)
      throw new UsageError(`the daemon has no XDP attachment on ${where(values.dev, values.netns)}`);
    return found;
  }
  if (values.netns !== undefined) throw new UsageError('--netns needs --dev IFACE');
  const found = list.filter((a) => a.maps.includes(name));
  if (found.length === 1) return found[0]!;
  if (found.length > 1) {
    const choices = found.map((f) => `--dev ${f.interface}${f.netns === null ? '' : ` --netns ${f.netns}`}`);
    throw new UsageError(
      `map '${name}' is pinned for ${found.length} XDP attachments; name one with ${choices.join(' or ')}`,
    );
  }
  throw new UsageError(`no XDP attachment of the daemon has a map '${name}'`);
}

function out(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Entries one dump asks for: the route's most. */
const DUMP_LIMIT = 65_536;

/**
 * `map ACTION NAME [KEY] [VALUE]` through the daemon. `keyText` goes in the URL as typed (JSON
 * or bare text, as the in-process command reads it); a missing key is exit 1, as in-process.
 */
export async function mapThroughDaemon(
  client: DaemonClient,
  action: string | undefined,
  name: string,
  keyText: string | undefined,
  value: () => unknown,
  values: { dev?: string | undefined; netns?: string | undefined; mode?: string | undefined },
): Promise<number> {
  const needKey = () => {
    if (keyText === undefined) throw new UsageError('missing key');
    return keyText;
  };
  if (!['dump', 'lookup', 'update', 'delete'].includes(action ?? '')) {
    throw new UsageError(`unknown map action '${action ?? ''}' (dump, lookup, update, delete)`);
  }
  const attachment = await attachmentOfMap(client, name, values);
  const base = `/v1/xdp/attachments/${segment(attachment.id)}/maps/${segment(name)}`;
  const noSuchKey = (err: unknown): boolean => {
    if (err instanceof DaemonResponseError && err.status === 404 && err.code === 'NO_SUCH_KEY') {
      process.stderr.write('thunderpac: no such key\n');
      return true;
    }
    return false;
  };
  switch (action) {
    case 'dump': {
      const { body } = await client.request<{
        entries: { key: unknown; value: unknown }[];
        truncated: boolean;
      }>('GET', base, { query: { limit: DUMP_LIMIT } });
      out(body.entries);
      if (body.truncated)
        process.stderr.write(`thunderpac: the daemon returned the first ${DUMP_LIMIT} entries only\n`);
      return 0;
    }
    case 'lookup': {
      const path = `${base}/${segment(needKey())}`;
      try {
        out((await client.request<{ value: unknown }>('GET', path)).body.value);
        return 0;
      } catch (err) {
        if (noSuchKey(err)) return 1;
        throw err;
      }
    }
    case 'update': {
      const path = `${base}/${segment(needKey())}`;
      await client.request('PUT', path, { body: { value: value(), mode: values.mode ?? 'any' } });
      return 0;
    }
    default: {
      const path = `${base}/${segment(needKey())}`;
      try {
        await client.request('DELETE', path);
        return 0;
      } catch (err) {
        if (noSuchKey(err)) return 1;
        throw err;
      }
    }
  }
}
