/**
 * Executions, synchronous and asynchronous.
 *
 *   POST /v1/executions   { build, entry, input, limits? }
 *     → 200 { status: completed|failed, output, error, receiptId, receipt }
 *       (a failed execution is a 200 with its receipt; a malformed request is a 400)
 *   POST /v1/executions?async=true, POST /v1/jobs   (same body) → 202 { jobId, state }
 *   GET  /v1/jobs/:id[?wait=MS]      the job; with wait, a long poll until it finishes (bounded
 *                                    by limits.maxJobWaitMs, ends early on shutdown)
 *   GET  /v1/jobs/:id/events         NDJSON: one line per state until it finishes (or the daemon
 *                                    shuts down), then the stream ends
 *
 * `input` is one of { kind: "bytes", base64 }, { kind: "text", text } (UTF-8 bytes) or
 * { kind: "packet", base64, ingressPort? }. Tensor inputs go through /v2 (KServe).
 */

import { PassThrough } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ExecutionResult } from '../../runtime/executor.js';
import { NotFoundError } from '../../runtime/errors.js';
import { LIMIT_BOUNDS, type SandboxOptions } from '../../runtime/sandbox.js';
import type { BackendName, Input, Output, SandboxLimits } from '../../runtime/types.js';
import type { DaemonContext, RoutePlugin } from '../context.js';
import { isFinished, type JobView, Jobs } from '../jobs.js';
import { authorizedBuild, BadRequestError, BUILD_ID_PATTERN } from './builds.js';

const BASE64 = { type: 'string', pattern: '^[A-Za-z0-9+/]*={0,2}$' } as const;
const LIMIT_NAMES = ['timeoutMs', 'memoryMb', 'fuel', 'maxInputBytes', 'maxOutputBytes'] as const;

const executeBody = {
  type: 'object',
  additionalProperties: false,
  required: ['build', 'entry', 'input'],
  properties: {
    build: { type: 'string', pattern: BUILD_ID_PATTERN },
    entry: { type: 'string', minLength: 1, maxLength: 256 },
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['kind'],
      properties: {
        kind: { type: 'string', enum: ['bytes', 'text', 'packet'] },
        base64: BASE64,
        text: { type: 'string' },
        ingressPort: { type: 'integer', minimum: 0, maximum: 0xffffffff },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(
        LIMIT_NAMES.map((n) => [
          n,
          { type: 'integer', minimum: LIMIT_BOUNDS[n].min, maximum: LIMIT_BOUNDS[n].max },
        ]),
      ),
    },
  },
} as const;

interface ExecuteBody {
  readonly build: string;
  readonly entry: string;
  readonly input: { kind: 'bytes' | 'text' | 'packet'; base64?: string; text?: string; ingressPort?: number };
  readonly limits?: Partial<Record<(typeof LIMIT_NAMES)[number], number>>;
}

const asyncQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { async: { type: 'boolean' } },
} as const;

const jobParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f-]{36}$' } },
} as const;

const waitQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { wait: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 } },
} as const;

/** A job the daemon does not have (never had, or forgotten after retention): 404. */
class JobNotFoundError extends NotFoundError {
  readonly statusCode = 404;
}

/** Which fields each input kind takes (the schema checks each field; this, their combination). */
const INPUT_FIELDS: Readonly<Record<ExecuteBody['input']['kind'], readonly string[]>> = {
  bytes: ['base64'],
  text: ['text'],
  packet: ['base64', 'ingressPort'],
};

function inputOf(body: ExecuteBody['input']): Input {
  const fields = INPUT_FIELDS[body.kind];
  const required = body.kind === 'text' ? 'text' : 'base64';
  if ((body as Record<string, unknown>)[required] === undefined) {
    throw new BadRequestError(`body.input.${required}`, `a '${body.kind}' input needs ${required}`);
  }
  for (const key of Object.keys(body)) {
    if (key !== 'kind' && !fields.includes(key)) {
      throw new BadRequestError(
        `body.input.${key}`,
        `not a field of a '${body.kind}' input (${fields.join(', ')})`,
      );
    }
  }
  switch (body.kind) {
    case 'bytes':
      return { kind: 'bytes', bytes: Buffer.from(body.base64 ?? '', 'base64') };
    case 'text':
      return { kind: 'bytes', bytes: Buffer.from(body.text ?? '', 'utf8') };
    case 'packet':
      return body.ingressPort === undefined
        ? { kind: 'packet', bytes: Buffer.from(body.base64 ?? '', 'base64') }
        : { kind: 'packet', bytes: Buffer.from(body.base64 ?? '', 'base64'), ingressPort: body.ingressPort };
  }
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** JSON view of an output: bytes as base64 (tensor data as arrays; 64-bit integers as strings). */
export function outputJson(output: Output | null): unknown {
  if (!output) return null;
  switch (output.kind) {
    case 'bytes':
      return { kind: 'bytes', size: output.bytes.byteLength, base64: b64(output.bytes) };
    case 'packet':
      return {
        kind: 'packet',
        verdict: output.verdict,
        retval: output.retval,
        packets: output.packets.map((p) => ({
          port: p.port,
          size: p.bytes.byteLength,
          base64: b64(p.bytes),
        })),
        ...(output.digests && { digests: output.digests }),
      };
    case 'tensors': {
      const tensors: Record<string, unknown> = {};
      for (const [name, t] of Object.entries(output.tensors)) {
        tensors[name] = {
          dtype: t.dtype,
          shape: t.shape,
          data: Array.from(t.data as ArrayLike<number | bigint>, (v) =>
            typeof v === 'bigint' ? v.toString() : v,
          ),
        };
      }
      return { kind: 'tensors', tensors };
    }
  }
}

/** How many bytes an output holds (what a finished job keeps in memory). */
function outputBytes(output: Output | null): number {
  if (!output) return 0;
  switch (output.kind) {
    case 'bytes':
      return output.bytes.byteLength;
    case 'packet':
      return output.packets.reduce((n, p) => n + p.bytes.byteLength, 0);
    case 'tensors':
      return Object.values(output.tensors).reduce((n, t) => n + t.data.byteLength, 0);
  }
}

export function resultJson(result: ExecutionResult): Record<string, unknown> {
  return {
    status: result.status,
    output: outputJson(result.output),
    error: result.error ? { code: result.error.code, message: result.error.message } : null,
    receiptId: result.receipt.id,
    receipt: result.receipt,
  };
}

/**
 * Sandbox options, one object per (backend, limits): the execution service pools sandboxes by
 * options object, so equal requests reuse one warm sandbox and its prepared programs.
 */
class SandboxOptionsCache {
  readonly #byKey = new Map<string, SandboxOptions>();

  get(backend: BackendName, limits: ExecuteBody['limits']): SandboxOptions {
    let key: string = backend;
    if (limits) for (const n of LIMIT_NAMES) key += `|${limits[n] ?? ''}`;
    let options = this.#byKey.get(key);
    if (!options) {
      if (this.#byKey.size >= 4096) this.#byKey.clear(); // bounded: a client varying limits cannot grow it
      const sandboxLimits: Partial<SandboxLimits> = {};
      for (const n of LIMIT_NAMES)
        if (limits?.[n] !== undefined) (sandboxLimits as Record<string, number>)[n] = limits[n];
      options = limits ? { backend, limits: sandboxLimits } : { backend };
      this.#byKey.set(key, options);
    }
    return options;
  }
}

export const executionsRoutes: RoutePlugin = (app, ctx) => {
  const jobs = new Jobs(ctx.config.limits);
  const sandboxes = new SandboxOptionsCache();
  app.addHook('onClose', (_app, done) => {
    jobs.close();
    done();
  });

  /** Authorize and resolve what to run; 401/403/404/400 happen here, before any queueing. */
  const prepare = (req: FastifyRequest) => {
    const body = req.body as ExecuteBody;
    const { record, actor } = authorizedBuild(ctx, req, 'execute', body.build);
    const build = record.build;
    return {
      actor,
      options: sandboxes.get(build.manifest.kind, body.limits),
      request: { build, input: inputOf(body.input), entry: body.entry },
    };
  };

  const submit = (req: FastifyRequest, reply: FastifyReply) => {
    const { actor, options, request } = prepare(req);
    const jobId = jobs.create(actor.id, req.id);
    ctx.executions
      .run(options, request, { actor, requestId: req.id }, { onStart: () => jobs.started(jobId) })
      .then(
        (result) => jobs.finished(jobId, result.status, resultJson(result), outputBytes(result.output)),
        (err: unknown) => {
          req.log.warn({ job: jobId, err: (err as Error).message }, 'job could not run');
          jobs.errored(jobId, err);
        },
      );
    return reply.code(202).header('location', `/v1/jobs/${jobId}`).send({ jobId, state: 'queued' });
  };

  app.post(
    '/v1/executions',
    { schema: { body: executeBody, querystring: asyncQuery } },
    async (req, reply) => {
      if ((req.query as { async?: boolean }).async === true) return submit(req, reply);
      const { actor, options, request } = prepare(req);
      const result = await ctx.executions.run(options, request, { actor, requestId: req.id });
      return resultJson(result);
    },
  );

  app.post('/v1/jobs', { schema: { body: executeBody } }, async (req, reply) => submit(req, reply));

  /** The job if the request may read it: 401/403 before 404, as for builds. */
  const authorizedJob = (req: FastifyRequest): JobView => {
    const { id } = req.params as { id: string };
    const job = jobs.get(id);
    ctx.auth.authorize(req, 'job.read', { owner: job?.owner ?? '' });
    if (!job) throw new JobNotFoundError('job', id);
    return job;
  };

  app.get('/v1/jobs/:id', { schema: { params: jobParams, querystring: waitQuery } }, async (req) => {
    const job = authorizedJob(req);
    const wait = (req.query as { wait?: number }).wait;
    if (wait === undefined || isFinished(job.state)) return job;
    const ms = Math.min(wait, ctx.config.limits.maxJobWaitMs);
    return (await jobs.wait(job.id, ms, ctx.shutdown)) ?? job;
  });

  app.get('/v1/jobs/:id/events', { schema: { params: jobParams } }, async (req, reply) => {
    const job = authorizedJob(req);
    const stream = new PassThrough();
    const line = (view: JobView) => stream.write(`${JSON.stringify(view)}\n`);
    line(job);
    if (isFinished(job.state) || ctx.shutdown.aborted) {
      stream.end();
    } else {
      const end = () => {
        unwatch();
        ctx.shutdown.removeEventListener('abort', end);
        stream.end();
      };
      const unwatch = jobs.watch(job.id, (view) => {
        line(view);
        if (isFinished(view.state)) end();
      });
      ctx.shutdown.addEventListener('abort', end, { once: true });
      // A client that goes away stops being written to.
      reply.raw.once('close', () => {
        if (!stream.writableEnded) end();
      });
    }
    return reply.type('application/x-ndjson').header('cache-control', 'no-store').send(stream);
  });
};
