/**
 * DAG executions and provenance queries (runtime/dag.ts, store/provenance/).
 *
 *   POST /v1/dags   { name, input, steps: [{ name, build | model, entry, from?, adapter?, limits? }] }
 *        → 200 { status, dag, lastReceipt, steps: [{ name, status, receipt, error, output }] }
 *          (a failed step is a 200 with status 'failed'; a malformed spec a 400 naming the field)
 *   POST /v1/dags/:receiptId/verify → 200 the DagVerifyReport (match, firstDifference, steps)
 *   GET  /v1/provenance/produced-by/:hash        → 200 { hash, producers, ancestors }
 *   GET  /v1/provenance/derived-from/:id?limit=N → 200 { from, receipts, truncated }
 *
 * `input` is { kind: 'bytes' | 'packet', base64, ingressPort? } or { kind: 'tensors', tensors }
 * (tensors as JSON, as /v2 takes them). A step runs an uploaded build (/v1/builds), which the
 * caller must be allowed to `execute`, or a served model `NAME[@VERSION]` from the daemon's
 * models directory (`model.infer`, entry 'infer'); every step's receipt is
 * sealed with the caller's actor and request id. Verify needs `receipt.verify`; the provenance
 * queries `receipt.read` without a scope (admins and auditors): lineage crosses actors.
 */

import { ModelRegistry } from '../../backends/onnx/registry.js';
import { tensorsFromJson } from '../../backends/onnx/tensors-json.js';
import type { Build } from '../../runtime/build.js';
import { DagSpecError, type DagStepSpec } from '../../runtime/dag.js';
import { ThunderpacError } from '../../runtime/errors.js';
import { LIMIT_BOUNDS, Sandbox } from '../../runtime/sandbox.js';
import type { Input, SandboxLimits } from '../../runtime/types.js';
import type { RoutePlugin } from '../context.js';
import { authorizedBuild, BadRequestError, BUILD_ID_PATTERN } from './builds.js';
import { outputJson } from './executions.js';

const DIGEST = '^[0-9a-f]{64}$';
const LIMIT_NAMES = ['timeoutMs', 'memoryMb', 'fuel', 'maxInputBytes', 'maxOutputBytes'] as const;

const limitsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(
    LIMIT_NAMES.map((n) => [
      n,
      { type: 'integer', minimum: LIMIT_BOUNDS[n].min, maximum: LIMIT_BOUNDS[n].max },
    ]),
  ),
} as const;

const dagBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'input', 'steps'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 256 },
    input: {
      type: 'object',
      required: ['kind'],
      properties: { kind: { type: 'string', enum: ['bytes', 'packet', 'tensors'] } },
    },
    steps: {
      type: 'array',
      minItems: 1,
      maxItems: 64,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'entry'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 64 },
          build: { type: 'string', pattern: BUILD_ID_PATTERN },
          model: { type: 'string', minLength: 1, maxLength: 256 },
          entry: { type: 'string', minLength: 1, maxLength: 256 },
          from: { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string', maxLength: 64 } },
          adapter: { type: 'object' },
          limits: limitsSchema,
        },
      },
    },
  },
} as const;

interface DagBody {
  name: string;
  input: { kind: 'bytes' | 'packet' | 'tensors'; base64?: unknown; ingressPort?: unknown; tensors?: unknown };
  steps: {
    name: string;
    build?: string;
    model?: string;
    entry: string;
    from?: string[];
    adapter?: object;
    limits?: Partial<Record<(typeof LIMIT_NAMES)[number], number>>;
  }[];
}

function inputOf(i: DagBody['input']): Input {
  if (i.kind === 'tensors')
    return { kind: 'tensors', tensors: tensorsFromJson(i.tensors, 'body.input.tensors') };
  if (typeof i.base64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(i.base64))
    throw new BadRequestError('body.input.base64', `a '${i.kind}' input needs base64 bytes`);
  const bytes = Buffer.from(i.base64, 'base64');
  if (i.kind === 'bytes') return { kind: 'bytes', bytes };
  const port = i.ingressPort ?? 0;
  if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 0xffffffff)
    throw new BadRequestError('body.input.ingressPort', 'an integer 0..2^32-1');
  return { kind: 'packet', bytes, ingressPort: port as number };
}

/** Spec errors as 400s naming the field under `body.`. */
function asBadRequest(err: unknown): unknown {
  if (err instanceof DagSpecError)
    return new BadRequestError(`body.${err.path}`, err.message.slice(err.path.length + 2));
  return err;
}

export const dagsRoutes: RoutePlugin = (app, ctx) => {
  /** The daemon's models directory, read as the model service reads it (checksums checked). */
  let registry: ModelRegistry | undefined;
  const storeOf = () => {
    const store = ctx.tp.store;
    if (!store)
      throw new ThunderpacError('NO_STORE', 'this daemon keeps no store: DAGs and provenance need one');
    return store;
  };

  app.post('/v1/dags', { schema: { body: dagBody } }, async (req) => {
    storeOf();
    const body = req.body as DagBody;
    let actorId = '';
    const steps: DagStepSpec[] = [];
    for (const [i, s] of body.steps.entries()) {
      if ((s.build === undefined) === (s.model === undefined))
        throw new BadRequestError(
          `body.steps[${i}]`,
          'name exactly one of build (an uploaded build id) or model',
        );
      let build: Build;
      if (s.build !== undefined) {
        const { record, actor } = authorizedBuild(ctx, req, 'execute', s.build);
        actorId = actor.id;
        build = record.build;
      } else {
        actorId = ctx.auth.authorize(req, 'model.infer').id;
        registry ??= new ModelRegistry({ dir: ctx.config.modelsDir });
        build = await registry.build(s.model!);
      }
      const limits: Partial<SandboxLimits> = {};
      for (const n of LIMIT_NAMES)
        if (s.limits?.[n] !== undefined) (limits as Record<string, number>)[n] = s.limits[n];
      steps.push({
        name: s.name,
        build,
        sandbox: new Sandbox({ backend: build.manifest.kind, limits }),
        entry: s.entry,
        ...(s.from ? { from: s.from } : {}),
        ...(s.adapter ? { adapter: s.adapter as never } : {}),
      });
    }
    try {
      const r = await ctx.tp.runDag({
        name: body.name,
        input: inputOf(body.input),
        steps,
        attribution: { actor: actorId, requestId: req.id },
      });
      return {
        status: r.status,
        dag: r.dag,
        lastReceipt: r.lastReceipt?.id ?? null,
        steps: r.steps.map((s) => ({
          name: s.name,
          status: s.status,
          receipt: s.receipt?.id ?? null,
          error: s.error ? { code: s.error.code, message: s.error.message } : null,
          output: outputJson(s.output),
        })),
      };
    } catch (err) {
      throw asBadRequest(err);
    }
  });

  app.post<{ Params: { receiptId: string } }>(
    '/v1/dags/:receiptId/verify',
    {
      schema: {
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['receiptId'],
          properties: { receiptId: { type: 'string', pattern: DIGEST } },
        },
      },
    },
    async (req) => {
      ctx.auth.authorize(req, 'receipt.verify');
      storeOf();
      return ctx.tp.verifyDag(req.params.receiptId);
    },
  );

  const hashParams = {
    type: 'object',
    additionalProperties: false,
    required: ['hash'],
    properties: { hash: { type: 'string', pattern: DIGEST } },
  } as const;
  const limitQuery = {
    type: 'object',
    additionalProperties: false,
    properties: { limit: { type: 'integer', minimum: 1, maximum: 100_000 } },
  } as const;

  app.get<{ Params: { hash: string }; Querystring: { limit?: number } }>(
    '/v1/provenance/produced-by/:hash',
    { schema: { params: hashParams, querystring: limitQuery } },
    async (req) => {
      ctx.auth.authorize(req, 'receipt.read');
      return storeOf().provenance.producedBy(req.params.hash, req.query.limit);
    },
  );

  app.get<{ Params: { hash: string }; Querystring: { limit?: number } }>(
    '/v1/provenance/derived-from/:hash',
    { schema: { params: hashParams, querystring: limitQuery } },
    async (req) => {
      ctx.auth.authorize(req, 'receipt.read');
      return storeOf().provenance.derivedFrom(req.params.hash, req.query.limit);
    },
  );
};
