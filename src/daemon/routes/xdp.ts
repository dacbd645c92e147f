/**
 * XDP over the API (issue #11): attachments, their maps and their named statistics.
 *
 *   POST   /v1/xdp/attachments                      attach { build | object, program, interface, netns?, mode?, replace? }
 *   GET    /v1/xdp/attachments                      list (status of each; ?interface=&netns= filter)
 *   GET    /v1/xdp/attachments/:id                  status: program id, mode, interface, netns, since, maps
 *   DELETE /v1/xdp/attachments/:id                  detach
 *   GET    /v1/xdp/attachments/:id/stats            named statistics summed over CPUs (xdp-stats.ts)
 *   GET    /v1/xdp/attachments/:id/maps             the attachment's maps
 *   GET    /v1/xdp/attachments/:id/maps/:map        dump (bounded by ?limit)
 *   GET    /v1/xdp/attachments/:id/maps/:map/:key   one value
 *   PUT    /v1/xdp/attachments/:id/maps/:map/:key   set { value, mode? }
 *   DELETE /v1/xdp/attachments/:id/maps/:map/:key   delete
 *
 * The program comes from a stored BPF build (`build`: its id, from POST /v1/builds) or inline
 * (`object`: the ELF object base64; stored as a build first, so every attachment names a
 * build). Map keys and values are typed by the map's BTF (JSON as `thunderpac map` takes it;
 * a key in the URL is JSON or bare text such as 10.0.0.0%2F8) or, with `?format=hex`, raw
 * bytes as hex. Attachments outlive the daemon (xdp-attachments.ts says how they are found
 * again); closing the daemon leaves them attached. Per-attachment counters are exported as
 * `thunderpac_xdp_packets_total{attachment,iface,netns,action}` and
 * `thunderpac_xdp_stat_total{attachment,iface,netns,stat}`, read from the maps at scrape time.
 */

import type { FastifyRequest } from 'fastify';
import { Counter, Gauge } from 'prom-client';
import { createBpfBuild } from '../../backends/ebpf/backend.js';
import { toJson } from '../../backends/ebpf/codec.js';
import { CodecError } from '../../backends/ebpf/errors.js';
import type { BpfMap, UpdateMode } from '../../backends/ebpf/map.js';
import type { Build } from '../../runtime/build.js';
import { NotFoundError } from '../../runtime/errors.js';
import type { DaemonContext, RoutePlugin } from '../context.js';
import { type RequestedMode, XdpAttachments, XdpRequestError } from '../xdp-attachments.js';
import { ACTION_OF_STAT } from '../xdp-stats.js';

/** Entries a map dump returns at most (and by default). */
const MAX_DUMP_ENTRIES = 65_536;
const DEFAULT_DUMP_ENTRIES = 1_000;

type Format = 'typed' | 'hex';

const attachBody = {
  type: 'object',
  additionalProperties: false,
  required: ['program', 'interface'],
  properties: {
    build: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    object: { type: 'string', minLength: 4, pattern: '^[A-Za-z0-9+/]+={0,2}$' },
    program: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
    // IFNAMSIZ - 1; no '/', whitespace or ':' (the kernel refuses them in interface names).
    interface: { type: 'string', minLength: 1, maxLength: 15, pattern: '^[^/\\s:]+$' },
    // A name under /var/run/netns, never a path.
    netns: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$' },
    mode: { type: 'string', enum: ['native', 'skb', 'offload', 'best'], default: 'native' },
    replace: { type: 'boolean', default: false },
  },
} as const;

/** Filters for the list (what `thunderpac xdp status --dev D --netns N` asks); netns '' = the daemon's own. */
const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    interface: { type: 'string', minLength: 1, maxLength: 15 },
    netns: { type: 'string', maxLength: 64 },
  },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

const mapParams = {
  type: 'object',
  required: ['id', 'map'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 64 },
    map: { type: 'string', minLength: 1, maxLength: 64 },
  },
} as const;

const keyParams = {
  type: 'object',
  required: ['id', 'map', 'key'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 64 },
    map: { type: 'string', minLength: 1, maxLength: 64 },
    key: { type: 'string', minLength: 1, maxLength: 1024 },
  },
} as const;

const formatQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { format: { type: 'string', enum: ['typed', 'hex'], default: 'typed' } },
} as const;

const dumpQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    format: { type: 'string', enum: ['typed', 'hex'], default: 'typed' },
    limit: { type: 'integer', minimum: 1, maximum: MAX_DUMP_ENTRIES, default: DEFAULT_DUMP_ENTRIES },
  },
} as const;

const putBody = {
  type: 'object',
  additionalProperties: false,
  required: ['value'],
  properties: {
    value: {},
    mode: { type: 'string', enum: ['any', 'noexist', 'exist'], default: 'any' },
  },
} as const;

interface AttachBody {
  readonly build?: string;
  readonly object?: string;
  readonly program: string;
  readonly interface: string;
  readonly netns?: string;
  readonly mode: RequestedMode;
  readonly replace: boolean;
}

export const xdpRoutes: RoutePlugin = (app, ctx) => {
  const attachments = new XdpAttachments({
    bpffsRoot: ctx.config.bpffsRoot,
    storeDir: ctx.config.store,
    log: ctx.log,
  });
  try {
    attachments.adopt();
  } catch (err) {
    // Without the addon (or bpffs) the daemon still serves everything else; XDP requests fail typed.
    ctx.log.error({ err }, 'xdp: re-adopting attachments failed');
  }
  registerXdpMetrics(ctx, attachments);
  app.addHook('onClose', async () => {
    // Attachments outlive the daemon (like bpfman): nothing is detached here.
    ctx.log.info({ attachments: attachments.records().length }, 'xdp: leaving attachments in place');
  });

  app.post<{ Body: AttachBody }>(
    '/v1/xdp/attachments',
    { schema: { body: attachBody } },
    async (req, reply) => {
      const body = req.body;
      const actor = ctx.auth.authorize(req, 'xdp.attach', {
        iface: body.interface,
        ...(body.build === undefined ? {} : { buildId: body.build }),
      });
      const { build, field, inline } = buildOf(ctx, body);
      const view = attachments.attach({
        build,
        program: body.program,
        interface: body.interface,
        netns: body.netns,
        mode: body.mode,
        replace: body.replace,
        actor: actor.id,
        objectField: field,
      });
      // Stored like an upload (the caller owns it) once it proved to be an attachable object.
      if (inline) ctx.builds.put(build, actor);
      req.log.info(
        { attachment: view.id, iface: view.interface, netns: view.netns, actor: actor.id },
        'xdp: attached',
      );
      return reply.code(201).send(view);
    },
  );

  app.get<{ Querystring: { interface?: string; netns?: string } }>(
    '/v1/xdp/attachments',
    { schema: { querystring: listQuery } },
    async (req) => {
      const { interface: device, netns } = req.query;
      ctx.auth.authorize(req, 'xdp.read', device === undefined ? {} : { iface: device });
      const all = attachments.list();
      return {
        attachments: all.filter(
          (a) =>
            (device === undefined || a.interface === device) &&
            (netns === undefined || a.netns === (netns === '' ? null : netns)),
        ),
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/xdp/attachments/:id',
    { schema: { params: idParams } },
    async (req) => {
      const view = attachments.get(req.params.id);
      ctx.auth.authorize(req, 'xdp.read', { iface: view.interface });
      return view;
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/xdp/attachments/:id',
    { schema: { params: idParams } },
    async (req) => {
      const view = attachments.record(req.params.id);
      const actor = ctx.auth.authorize(req, 'xdp.detach', { iface: view.interface });
      const detached = attachments.detach(view.id);
      req.log.info(
        { attachment: view.id, iface: view.interface, actor: actor.id, detached },
        'xdp: detached',
      );
      return { id: view.id, detached };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/xdp/attachments/:id/stats',
    { schema: { params: idParams } },
    async (req) => {
      const view = attachments.record(req.params.id);
      ctx.auth.authorize(req, 'xdp.read', { iface: view.interface });
      const { stats, maps } = attachments.stats(view.id);
      return { id: view.id, interface: view.interface, netns: view.netns, stats, maps };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/xdp/attachments/:id/maps',
    { schema: { params: idParams } },
    async (req) => {
      const view = attachments.record(req.params.id);
      ctx.auth.authorize(req, 'map.read', { iface: view.interface });
      return {
        id: view.id,
        maps: attachments
          .mapNames(view.id)
          .map((name) => withMap(attachments, view.id, name, (map) => describe(map))),
      };
    },
  );

  app.get<{ Params: { id: string; map: string }; Querystring: { format: Format; limit: number } }>(
    '/v1/xdp/attachments/:id/maps/:map',
    { schema: { params: mapParams, querystring: dumpQuery } },
    async (req) => {
      const { id, map: name } = req.params;
      const { format, limit } = req.query;
      authorizeMap(ctx, req, attachments, id, 'map.read');
      return withMap(attachments, id, name, (map) => {
        const entries: { key: unknown; value: unknown }[] = [];
        let truncated = false;
        for (const key of map.keys()) {
          if (entries.length === limit) {
            truncated = true;
            break;
          }
          const value = map.info.perCpu ? map.getPerCpu(key) : map.get(key);
          if (value === undefined) continue; // deleted while we walked
          entries.push({ key: show(map, 'key', key, format), value: showValue(map, value, format) });
        }
        return { ...describe(map), format, entries, truncated };
      });
    },
  );

  app.get<{ Params: { id: string; map: string; key: string }; Querystring: { format: Format } }>(
    '/v1/xdp/attachments/:id/maps/:map/:key',
    { schema: { params: keyParams, querystring: formatQuery } },
    async (req) => {
      const { id, map: name, key: keyText } = req.params;
      const { format } = req.query;
      authorizeMap(ctx, req, attachments, id, 'map.read');
      return withMap(attachments, id, name, (map) => {
        const key = parseKey(map, keyText, format);
        const value = map.info.perCpu ? map.getPerCpu(key) : map.get(key);
        if (value === undefined) {
          throw new XdpRequestError(
            404,
            'NO_SUCH_KEY',
            `map '${name}' has no key ${keyText.slice(0, 128)}`,
            'params.key',
          );
        }
        return {
          map: name,
          format,
          key: show(map, 'key', key, format),
          value: showValue(map, value, format),
        };
      });
    },
  );

  app.put<{
    Params: { id: string; map: string; key: string };
    Querystring: { format: Format };
    Body: { value: unknown; mode: UpdateMode };
  }>(
    '/v1/xdp/attachments/:id/maps/:map/:key',
    { schema: { params: keyParams, querystring: formatQuery, body: putBody } },
    async (req) => {
      const { id, map: name, key: keyText } = req.params;
      const { format } = req.query;
      const actor = authorizeMap(ctx, req, attachments, id, 'map.write');
      return withMap(attachments, id, name, (map) => {
        const key = parseKey(map, keyText, format);
        setValue(map, key, req.body.value, format, req.body.mode);
        req.log.info(
          { attachment: id, map: name, key: keyText.slice(0, 128), actor: actor.id },
          'xdp: map updated',
        );
        const value = map.info.perCpu ? map.getPerCpu(key) : map.get(key);
        return {
          map: name,
          format,
          key: show(map, 'key', key, format),
          value: showValue(map, value, format),
        };
      });
    },
  );

  app.delete<{ Params: { id: string; map: string; key: string }; Querystring: { format: Format } }>(
    '/v1/xdp/attachments/:id/maps/:map/:key',
    { schema: { params: keyParams, querystring: formatQuery } },
    async (req) => {
      const { id, map: name, key: keyText } = req.params;
      const { format } = req.query;
      authorizeMap(ctx, req, attachments, id, 'map.write');
      return withMap(attachments, id, name, (map) => {
        const deleted = map.delete(parseKey(map, keyText, format));
        if (!deleted) {
          throw new XdpRequestError(
            404,
            'NO_SUCH_KEY',
            `map '${name}' has no key ${keyText.slice(0, 128)}`,
            'params.key',
          );
        }
        return { map: name, deleted };
      });
    },
  );
};

/** The build to attach: a stored one by id, or one made of the inline object (stored once attached). */
function buildOf(ctx: DaemonContext, body: AttachBody): { build: Build; field: string; inline: boolean } {
  if ((body.build === undefined) === (body.object === undefined)) {
    throw new XdpRequestError(
      400,
      'VALIDATION',
      'body: give exactly one of build (a build id from POST /v1/builds) or object (the BPF object, base64)',
      body.build === undefined ? 'body.build' : 'body.object',
    );
  }
  if (body.build !== undefined) {
    try {
      return { build: ctx.builds.get(body.build).build, field: 'body.build', inline: false };
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new XdpRequestError(404, 'UNKNOWN_BUILD', `no build ${body.build}`, 'body.build');
      }
      throw err;
    }
  }
  const bytes = Buffer.from(body.object as string, 'base64');
  const build = createBpfBuild(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
    name: body.program,
  });
  return { build, field: 'body.object', inline: true };
}

function authorizeMap(
  ctx: DaemonContext,
  req: FastifyRequest,
  attachments: XdpAttachments,
  id: string,
  action: 'map.read' | 'map.write',
) {
  return ctx.auth.authorize(req, action, { iface: attachments.record(id).interface });
}

function withMap<T>(
  attachments: XdpAttachments,
  id: string,
  name: string,
  use: (map: BpfMap<unknown, unknown>) => T,
): T {
  const map = attachments.openMap(id, name);
  try {
    return use(map);
  } finally {
    map.close();
  }
}

function describe(map: BpfMap<unknown, unknown>) {
  return {
    map: map.info.name,
    type: map.info.typeName,
    keySize: map.info.keySize,
    valueSize: map.info.valueSize,
    maxEntries: map.info.maxEntries,
    perCpu: map.info.perCpu,
    key: map.keyCodec.describe,
    value: map.valueCodec.describe,
  };
}

/** A key or value as the client asked: the typed JSON form, or the raw bytes as hex. */
function show(map: BpfMap<unknown, unknown>, what: 'key' | 'value', value: unknown, format: Format): unknown {
  if (format === 'typed') return toJson(value);
  const bytes = what === 'key' ? map.encodeKey(value) : map.encodeValue(value);
  return Buffer.from(bytes).toString('hex');
}

function showValue(map: BpfMap<unknown, unknown>, value: unknown, format: Format): unknown {
  if (value === undefined) return null;
  return map.info.perCpu && Array.isArray(value)
    ? value.map((v) => show(map, 'value', v, format))
    : show(map, 'value', value, format);
}

/** The URL's key: JSON or bare text (`10.0.0.0/8`) typed by the map's BTF, or hex bytes. */
function parseKey(map: BpfMap<unknown, unknown>, text: string, format: Format): unknown {
  if (format === 'hex') {
    const bytes = parseHex(text, 'params.key', map.info.keySize);
    return map.keyCodec.decodeFrom(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0);
  }
  let key: unknown = text;
  try {
    key = JSON.parse(text);
  } catch {
    // bare text: an address, a prefix
  }
  // Encode now so a bad key is a 400 on params.key, not a codec error about "key".
  fieldCodec('params.key', () => map.encodeKey(key));
  return key;
}

function setValue(
  map: BpfMap<unknown, unknown>,
  key: unknown,
  value: unknown,
  format: Format,
  mode: UpdateMode,
): void {
  const decodeOne = (item: unknown, path: string): unknown => {
    if (format === 'typed') {
      fieldCodec(path, () => map.encodeValue(item));
      return item;
    }
    if (typeof item !== 'string')
      throw new XdpRequestError(400, 'BAD_HEX', `${path}: expected a hex string`, path);
    const bytes = parseHex(item, path, map.info.valueSize);
    return map.valueCodec.decodeFrom(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0);
  };
  if (map.info.perCpu) {
    if (!Array.isArray(value)) {
      throw new XdpRequestError(
        400,
        'VALIDATION',
        `body.value: map '${map.info.name}' is per-CPU: give an array, one value per possible CPU`,
        'body.value',
      );
    }
    const values = value.map((item, i) => decodeOne(item, `body.value[${i}]`));
    fieldCodec('body.value', () => map.setPerCpu(key, values, mode));
    return;
  }
  map.set(key, decodeOne(value, 'body.value'), mode);
}

/** Runs `encode`; a codec refusal becomes a 400 naming `path`. */
function fieldCodec(path: string, encode: () => unknown): void {
  try {
    encode();
  } catch (err) {
    if (err instanceof CodecError) throw new XdpRequestError(400, err.code, `${path}: ${err.message}`, path);
    if (err instanceof Error && (err as { code?: unknown }).code === 'EBPF_INVALID_ARG') {
      throw new XdpRequestError(400, 'VALIDATION', `${path}: ${err.message}`, path);
    }
    throw err;
  }
}

function parseHex(text: string, path: string, size: number): Uint8Array {
  const hex = text.replace(/^0x/i, '');
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) {
    throw new XdpRequestError(400, 'BAD_HEX', `${path}: expected an even number of hex digits`, path);
  }
  if (hex.length / 2 !== size) {
    throw new XdpRequestError(400, 'BAD_HEX', `${path}: expected ${size} bytes, got ${hex.length / 2}`, path);
  }
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/**
 * Per-attachment counters for /metrics, read from the stats maps at scrape time. The packets
 * counter is registered first, so the registry collects it first and its read fills both.
 */
function registerXdpMetrics(ctx: DaemonContext, attachments: XdpAttachments): void {
  const registers = [ctx.metrics.registry];
  const stat = new Counter({
    name: 'thunderpac_xdp_stat_total',
    help: "Every named statistic of an XDP attachment's stats maps, summed over CPUs.",
    labelNames: ['attachment', 'iface', 'netns', 'stat'] as const,
    registers: [],
  });
  new Counter({
    name: 'thunderpac_xdp_packets_total',
    help: 'Packets an XDP attachment handled, by XDP action (from its stats maps, summed over CPUs).',
    labelNames: ['attachment', 'iface', 'netns', 'action'] as const,
    registers,
    collect() {
      this.reset();
      stat.reset();
      for (const { record, stats } of attachments.allStats()) {
        const base = { attachment: record.id, iface: record.interface, netns: record.netns ?? '' };
        for (const [name, value] of Object.entries(stats.stats)) {
          const n = typeof value === 'number' ? value : Number(value);
          stat.inc({ ...base, stat: name }, n);
          const action = ACTION_OF_STAT[name];
          if (action !== undefined) this.inc({ ...base, action }, n);
        }
      }
    },
  });
  ctx.metrics.registry.registerMetric(stat);
  new Gauge({
    name: 'thunderpac_xdp_attachments',
    help: 'XDP attachments the daemon manages.',
    registers,
    collect() {
      this.set(attachments.records().length);
    },
  });
}
