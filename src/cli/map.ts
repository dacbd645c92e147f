/**
 * `thunderpac map dump|lookup|update|delete <pinned-path|name> [key] [value]`: keys and values
 * as JSON through the codec derived from the map's BTF (LPM keys as "10.0.0.0/8", 64-bit
 * integers as decimal strings, byte arrays as hex). A bare name is a map of an XDP attachment:
 * <root>/attachments/<netns>/<dev>/maps/<name> with `--dev DEV [--netns NS]`; without them,
 * the one attachment that has such a map (several: a usage error naming them), else the
 * pre-attachment-directory location <root>/maps/<name>.
 * Per-CPU maps take and return one value per possible CPU.
 *
 * With `--socket PATH` (or $THUNDERPAC_SOCKET) a bare name goes through the daemon's
 * per-attachment map routes (client-xdp.ts), found by the same rules.
 */
import { isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { toJson } from '../backends/ebpf/codec.js';
import { BpfMap, type UpdateMode } from '../backends/ebpf/map.js';
import { attachmentMapPath, findAttachmentMaps } from '../backends/ebpf/xdp.js';
import { clientSocket, refuseLocalFlags, withDaemon } from './client.js';
import { mapThroughDaemon } from './client-xdp.js';
import { UsageError } from './io.js';
import { jsonDepth, MAX_JSON_DEPTH } from './json.js';
import { bpffsRoot } from './xdp.js';

const UPDATE_MODES: readonly UpdateMode[] = ['any', 'noexist', 'exist'];

export async function mapCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      root: { type: 'string' },
      mode: { type: 'string' },
      batch: { type: 'boolean', default: false },
      dev: { type: 'string' },
      netns: { type: 'string' },
      socket: { type: 'string' },
    },
  });
  const [action, where, keyText, valueText] = positionals;
  if (!where) throw new UsageError(`map ${action ?? ''} needs a pinned map path or name`);
  const socket = clientSocket(values.socket);
  if (socket !== undefined) {
    refuseLocalFlags(values, ['root']);
    if (isAbsolute(where)) {
      throw new UsageError(
        'through the daemon a map is named by its attachment: give its name (and --dev), not a path',
      );
    }
    const mode = values.mode ?? 'any';
    if (action === 'update' && !UPDATE_MODES.includes(mode as UpdateMode)) {
      throw new UsageError(`--mode must be any, noexist or exist`);
    }
    const value = () => parseJson(valueText, 'value');
    if (action === 'update' || action === 'lookup' || action === 'delete') parseJson(keyText, 'key');
    if (action === 'update') value();
    return withDaemon(socket, (client) =>
      mapThroughDaemon(client, action, where, keyText, value, { ...values, mode }),
    );
  }
  const path = isAbsolute(where) ? where : mapPathByName(bpffsRoot(values.root), where, values);
  const raw = BpfMap.openPinned(path);
  const map = raw.typed();
  const out = (value: unknown) => process.stdout.write(`${JSON.stringify(toJson(value), null, 2)}\n`);
  try {
    switch (action) {
      case 'dump': {
        const entries =
          values.batch && map.info.typeName !== 'lpm_trie' ? map.getBatch() : [...map.entries()];
        out(entries.map(([key, value]) => ({ key, value })));
        return 0;
      }
      case 'lookup': {
        const key = parseJson(keyText, 'key');
        const value = map.info.perCpu ? map.getPerCpu(key) : map.get(key);
        if (value === undefined) {
          process.stderr.write('thunderpac: no such key\n');
          return 1;
        }
        out(value);
        return 0;
      }
      case 'update': {
        const key = parseJson(keyText, 'key');
        const value = parseJson(valueText, 'value');
        const mode = (values.mode ?? 'any') as UpdateMode;
        if (!UPDATE_MODES.includes(mode)) throw new UsageError(`--mode must be any, noexist or exist`);
        if (map.info.perCpu) {
          if (!Array.isArray(value))
            throw new UsageError('a per-CPU map takes a JSON array: one value per CPU');
          map.setPerCpu(key, value, mode);
        } else {
          map.set(key, value, mode);
        }
        return 0;
      }
      case 'delete': {
        const deleted = map.delete(parseJson(keyText, 'key'));
        if (!deleted) process.stderr.write('thunderpac: no such key\n');
        return deleted ? 0 : 1;
      }
      default:
        throw new UsageError(`unknown map action '${action ?? ''}' (dump, lookup, update, delete)`);
    }
  } finally {
    raw.close();
  }
}

/** Resolves a bare map name to the pin of the attachment it belongs to (see the module comment). */
function mapPathByName(root: string, name: string, where: { dev?: string; netns?: string }): string {
  if (where.dev !== undefined) {
    return attachmentMapPath(
      root,
      { device: where.dev, ...(where.netns ? { netns: where.netns } : {}) },
      name,
    );
  }
  if (where.netns !== undefined) throw new UsageError('--netns needs --dev IFACE');
  const found = findAttachmentMaps(root, name);
  if (found.length === 1) return found[0]!.path;
  if (found.length > 1) {
    const choices = found.map(
      (f) => `--dev ${f.device}${f.netns === undefined ? '' : ` --netns ${f.netns}`}`,
    );
    throw new UsageError(
      `map '${name}' is pinned for ${found.length} XDP attachments; name one with ${choices.join(' or ')}`,
    );
  }
  return join(root, 'maps', name);
}

/** JSON, or the bare text as a string (so `10.0.0.0/8` needs no quotes). */
function parseJson(text: string | undefined, what: string): unknown {
  if (text === undefined) throw new UsageError(`missing ${what}`);
  if (jsonDepth(text) > MAX_JSON_DEPTH) {
    throw new UsageError(`${what} nests JSON deeper than ${MAX_JSON_DEPTH} levels`);
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
