/**
 * Builds: upload a program, get its manifest and owners.
 *
 *   POST /v1/builds                          JSON { kind, name, base64 } (wasm, ebpf; p4 too)
 *                                            JSON { kind: "p4", name, source }   (P4 source text)
 *   POST /v1/builds?kind=wasm&name=echo.wasm raw body: application/wasm, application/octet-stream,
 *                                            text/x-p4 (P4 source)
 *     → 201 { id, kind, name, owner, owners, manifest }
 *   GET  /v1/builds/:id                      → 200 { id, kind, name, owner, owners, manifest }
 *
 * The uploader becomes an owner (policy.ts: runners execute only what they own or are granted).
 * A P4 program is compiled at upload, so a compile error is the upload's 422 with file:line:col.
 */

import { createBpfBuild } from '../../backends/ebpf/backend.js';
import { createP4Build } from '../../backends/p4/backend.js';
import { createWasmBuild } from '../../backends/wasm/backend.js';
import type { Build } from '../../runtime/build.js';
import { NotFoundError, ThunderpacError } from '../../runtime/errors.js';
import type { Actor, BuildRecord, DaemonContext, RoutePlugin } from '../context.js';

/** A request whose content the schema cannot check (a program of the wrong kind): 400 with the field. */
export class BadRequestError extends ThunderpacError {
  readonly statusCode = 400;
  readonly path: string;

  constructor(path: string, message: string) {
    super('BAD_REQUEST', `${path}: ${message}`);
    this.path = path;
  }
}

export const BUILD_ID_PATTERN = '^[0-9a-f]{64}$';
const KINDS = ['wasm', 'ebpf', 'p4'] as const;
type Kind = (typeof KINDS)[number];
const NAME = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._+-]+$' } as const;
const BASE64 = { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9+/]*={0,2}$' } as const;

const uploadJson = {
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'name'],
  properties: {
    kind: { type: 'string', enum: KINDS },
    name: NAME,
    base64: BASE64,
    source: { type: 'string', minLength: 1 },
  },
} as const;

const uploadQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { kind: { type: 'string', enum: KINDS }, name: NAME },
} as const;

const idParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', pattern: BUILD_ID_PATTERN } },
} as const;

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];
const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];

function hasMagic(bytes: Uint8Array, magic: readonly number[]): boolean {
  return magic.every((b, i) => bytes[i] === b);
}

function createBuildOf(
  kind: Kind,
  name: string,
  bytes: Uint8Array | null,
  source: string | null,
  field: string,
): Build {
  switch (kind) {
    case 'wasm':
      if (!bytes) throw new BadRequestError(`${field}`, 'a wasm build needs the module’s bytes');
      if (!hasMagic(bytes, WASM_MAGIC))
        throw new BadRequestError(field, 'not a WebAssembly binary (no \\0asm header)');
      return createWasmBuild(bytes, { name });
    case 'ebpf':
      if (!bytes) throw new BadRequestError(`${field}`, 'an ebpf build needs the object file’s bytes');
      if (!hasMagic(bytes, ELF_MAGIC))
        throw new BadRequestError(field, 'not a BPF ELF object (no ELF header)');
      return createBpfBuild(bytes, { name });
    case 'p4': {
      const text = source ?? (bytes ? Buffer.from(bytes).toString('utf8') : null);
      if (text === null) throw new BadRequestError(field, 'a p4 build needs its source text');
      return createP4Build(text, { name, file: name });
    }
  }
}

/** The JSON view of a build record: what GET returns and POST answers. */
export function buildJson(record: BuildRecord): Record<string, unknown> {
  const m = record.build.manifest;
  return {
    id: record.build.id,
    kind: m.kind,
    name: m.name,
    owner: record.owners[0] ?? null,
    owners: record.owners,
    manifest: m,
  };
}

/**
 * The build `id` and the actor if the request may use it for `action`; 401/403 before 404, so
 * an actor who may not read a build cannot learn whether it exists.
 */
export function authorizedBuild(
  ctx: DaemonContext,
  req: Parameters<DaemonContext['auth']['authorize']>[0],
  action: 'execute' | 'build.read',
  id: string,
): { readonly record: BuildRecord; readonly actor: Actor } {
  let record: BuildRecord;
  try {
    record = ctx.builds.get(id);
  } catch (err) {
    if (err instanceof NotFoundError) ctx.auth.authorize(req, action, { buildId: id, owners: [] });
    throw err;
  }
  const actor = ctx.auth.authorize(req, action, { buildId: id, owners: record.owners });
  return { record, actor };
}

export const buildsRoutes: RoutePlugin = (app, ctx) => {
  app.post(
    '/v1/builds',
    {
      schema: {
        querystring: uploadQuery,
        body: {
          content: {
            'application/json': { schema: uploadJson },
            'application/wasm': { schema: {} },
            'application/octet-stream': { schema: {} },
            'text/x-p4': { schema: {} },
          },
        },
      },
    },
    async (req, reply) => {
      const actor = ctx.auth.authorize(req, 'build.create');
      const query = req.query as { kind?: Kind; name?: string };
      let build: Build;
      if (Buffer.isBuffer(req.body) || typeof req.body === 'string') {
        if (!query.kind)
          throw new BadRequestError('querystring.kind', 'a raw upload names its kind (?kind=wasm|ebpf|p4)');
        if (!query.name)
          throw new BadRequestError('querystring.name', 'a raw upload names its build (?name=…)');
        const bytes = typeof req.body === 'string' ? Buffer.from(req.body) : req.body;
        build = createBuildOf(query.kind, query.name, bytes, null, 'body');
      } else {
        if (query.kind !== undefined || query.name !== undefined) {
          throw new BadRequestError('querystring', 'a JSON upload carries kind and name in the body');
        }
        const body = req.body as { kind: Kind; name: string; base64?: string; source?: string };
        if (body.base64 !== undefined && body.source !== undefined) {
          throw new BadRequestError('body.source', 'give base64 or source, not both');
        }
        if (body.source !== undefined && body.kind !== 'p4') {
          throw new BadRequestError(
            'body.source',
            'source text is for p4 builds; send wasm and ebpf as base64',
          );
        }
        const bytes = body.base64 !== undefined ? Buffer.from(body.base64, 'base64') : null;
        build = createBuildOf(
          body.kind,
          body.name,
          bytes,
          body.source ?? null,
          body.base64 !== undefined ? 'body.base64' : 'body.source',
        );
      }
      const record = ctx.builds.put(build, actor);
      req.log.info({ build: build.id, kind: build.manifest.kind, owner: actor.id }, 'build uploaded');
      return reply.code(201).send(buildJson(record));
    },
  );

  // text/x-p4: P4 source as the raw body (JSON and binary bodies have their own parsers).
  app.addContentTypeParser('text/x-p4', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.get('/v1/builds/:id', { schema: { params: idParams } }, async (req) => {
    const { id } = req.params as { id: string };
    return buildJson(authorizedBuild(ctx, req, 'build.read', id).record);
  });
};
