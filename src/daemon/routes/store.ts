/**
 * The store over HTTP (issue #13): the daemon holds the store's writer lock, so GC, snapshots
 * and imports on a running host go through it.
 *
 *   GET    /v1/store                   → 200 stat (artifacts, receipts, snapshots, bytes, files)   store.read
 *   GET    /v1/store/fsck              → 200 the fsck report (ok, checked, problems)               store.read
 *   GET    /v1/store/snapshots         → 200 [snapshot]                                            store.read
 *   POST   /v1/store/snapshots         {label?} → 201 the snapshot                                 store.admin
 *   DELETE /v1/store/snapshots/:id     → 200 { dropped }                                           store.admin
 *   POST   /v1/store/gc                {retention?: {keepDays?, keepReceipts?, maxBytes?}, dryRun?, graceMs?}
 *                                      → 200 the GC report                                         store.admin
 *   POST   /v1/store/export            {builds?: [id], receipts?: [id]} → 200 the bundle
 *                                      (application/octet-stream, bundle.ts)                       store.read
 *   POST   /v1/store/import            body: a bundle (application/octet-stream) → 200 the report
 *                                      (422 naming the field or byte of a bad bundle; nothing is
 *                                      written unless all of it checks)                            store.admin
 *
 * Roles: admin both; operator and auditor `store.read`. fsck, GC and export read the whole
 * store synchronously: they are operator actions, not a hot path, and they hold the event loop
 * while they run (minutes on a very large store — run them when the host is quiet).
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ThunderpacError } from '../../runtime/errors.js';
import { BundleError } from '../../store/bundle.js';
import { checkRetention } from '../../store/retention.js';
import type { Store } from '../../store/store.js';
import type { DaemonContext, RoutePlugin } from '../context.js';

const ID = '^[0-9a-f]{64}$';

/** A bundle that did not check: 422, `path` the manifest field or `body@<byte>`. */
class BundleRefusedError extends ThunderpacError {
  readonly statusCode = 422;
  readonly path: string;
  constructor(err: BundleError) {
    // The temporary file's name means nothing to the client: the message names the body.
    const message = err.message.replace(/^[^:]*\.tpb: /, 'bundle: ');
    super(err.code, message);
    this.path = err.field ?? (err.offset !== undefined ? `body@${err.offset}` : 'body');
  }
}

function storeOf(ctx: DaemonContext): Store {
  const store = ctx.tp.store;
  if (!store) throw new ThunderpacError('NO_STORE', 'this daemon keeps no store');
  return store;
}

/** A scratch directory for one bundle, removed after. */
function withScratch<T>(run: (file: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'tp-bundle-'));
  try {
    return run(join(dir, 'bundle.tpb'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const idList = { type: 'array', maxItems: 10_000, items: { type: 'string', pattern: ID } } as const;

export const storeRoutes: RoutePlugin = async (app, ctx) => {
  app.get('/v1/store', async (req) => {
    ctx.auth.authorize(req, 'store.read');
    return storeOf(ctx).stat();
  });

  app.get('/v1/store/fsck', async (req) => {
    ctx.auth.authorize(req, 'store.read');
    return storeOf(ctx).fsck();
  });

  app.get('/v1/store/snapshots', async (req) => {
    ctx.auth.authorize(req, 'store.read');
    return storeOf(ctx).snapshots();
  });

  app.post<{ Body: { label?: string } | undefined }>(
    '/v1/store/snapshots',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { label: { type: 'string', maxLength: 255, pattern: '^[^\\u0000-\\u001f]*$' } },
        },
      },
    },
    async (req, reply) => {
      ctx.auth.authorize(req, 'store.admin');
      const snapshot = storeOf(ctx).snapshot(req.body?.label);
      return reply.code(201).send(snapshot);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/store/snapshots/:id',
    {
      schema: {
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[0-9a-zA-Z_-]+$' } },
        },
      },
    },
    async (req) => {
      ctx.auth.authorize(req, 'store.admin');
      storeOf(ctx).dropSnapshot(req.params.id);
      return { dropped: req.params.id };
    },
  );

  app.post<{ Body: { retention?: unknown; dryRun?: boolean; graceMs?: number } | undefined }>(
    '/v1/store/gc',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            retention: {
              type: 'object',
              additionalProperties: false,
              properties: {
                keepDays: { type: 'number', minimum: 0, maximum: 1e6 },
                keepReceipts: { type: 'integer', minimum: 0 },
                maxBytes: { type: 'integer', minimum: 0 },
              },
            },
            dryRun: { type: 'boolean' },
            graceMs: { type: 'integer', minimum: 0 },
          },
        },
      },
    },
    async (req) => {
      ctx.auth.authorize(req, 'store.admin');
      const body = req.body ?? {};
      return storeOf(ctx).gc({
        retention: checkRetention(body.retention),
        dryRun: body.dryRun ?? false,
        ...(body.graceMs !== undefined && { graceMs: body.graceMs }),
      });
    },
  );

  app.post<{ Body: { builds?: string[]; receipts?: string[] } }>(
    '/v1/store/export',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { builds: idList, receipts: idList },
        },
      },
    },
    async (req, reply) => {
      ctx.auth.authorize(req, 'store.read');
      const bytes = withScratch((file) => {
        storeOf(ctx).exportBundle(file, { builds: req.body.builds ?? [], receipts: req.body.receipts ?? [] });
        return readFileSync(file);
      });
      return reply.type('application/octet-stream').send(bytes);
    },
  );

  app.post<{ Body: Buffer }>(
    '/v1/store/import',
    { schema: { body: { content: { 'application/octet-stream': { schema: {} } } } } },
    async (req) => {
      ctx.auth.authorize(req, 'store.admin');
      return withScratch((file) => {
        writeFileSync(file, req.body);
        try {
          const { path: _path, ...report } = storeOf(ctx).importBundle(file);
          return report;
        } catch (err) {
          if (err instanceof BundleError) throw new BundleRefusedError(err);
          throw err;
        }
      });
    },
  );
};
