/**
 * Every error a request can end in, as HTTP: a status, headers, and the JSON body
 * `{ "error": { "code", "message", "path"?, "requestId" } }`.
 *
 * A client's mistake is a 4xx naming what was wrong (the field path where there is one); the
 * daemon being full or draining is a 503 with Retry-After; a typed ThunderpacError keeps its
 * stable code. Only an error nobody typed is a 500, and then the body says "internal error"
 * with the request id to find it in the log: never a stack, never the thrown message (it may
 * carry anything). So every 500 in the log is a bug to fix or an error to type.
 *
 * A thrower can choose its status by carrying `statusCode` (400–599), and its field path by
 * carrying `path` on a 4xx (the model service and the KServe tensors do).
 */

import { OnnxWorkerCrashedError, ModelSecurityError, ShuttingDownError } from '../backends/onnx/errors.js';
import {
  CircuitOpenError,
  DroppedError,
  QueueDelayError,
  QueueFullError,
} from '../backends/onnx/pipeline.js';
import {
  AddonUnavailableError,
  BpfError,
  CodecError,
  MalformedObjectError,
  MapError,
  VerifierError,
  XdpBusyError,
} from '../backends/ebpf/errors.js';
import { P4CompileError } from '../p4c/errors.js';
import { QosRefusal } from '../qos/admission.js';
import { QueueDropError } from '../qos/queues/index.js';
import {
  GuestError,
  IntegrityError,
  LimitExceededError,
  NotFoundError,
  ProgramRejectedError,
  SandboxStateError,
  ThunderpacError,
  ValidationError,
} from '../runtime/errors.js';
import { StoreLockedError, StoreLockUnavailableError, StoreReadOnlyError } from '../store/errors.js';
import { OverloadedError } from './executions.js';
import { type JsonSyntaxProblem, locateJsonSyntaxError } from './json-syntax.js';

export interface HttpErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly path?: string;
    readonly requestId: string;
    readonly [extra: string]: unknown;
  };
}

export interface HttpError {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: HttpErrorBody;
  /** Log it as a fault (5xx) rather than as a refused request. */
  readonly fault: boolean;
}

/** Longest client-supplied text (a URL, a content type) echoed back in an error message. */
export const ECHO_LIMIT = 256;

/** `s` cut to `max` characters, saying so. */
export function bounded(s: string, max = ECHO_LIMIT): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} characters)`;
}

/** The body's JSON is malformed: where it broke. Raised by the daemon's JSON body parser. */
export class BadJsonError extends ThunderpacError {
  readonly statusCode = 400;
  readonly path = 'body';
  readonly problem: JsonSyntaxProblem | null;

  constructor(text: string) {
    const problem = locateJsonSyntaxError(text);
    super(
      'BAD_JSON',
      problem
        ? `request body is not valid JSON: at line ${problem.line} column ${problem.column} (offset ${problem.offset}) expected ${problem.expected}, found ${problem.found}`
        : 'request body is not valid JSON',
    );
    this.problem = problem;
  }
}

/** The body's JSON names `__proto__` (or `constructor.prototype`): refused, as Fastify does. */
export class ForbiddenJsonKeyError extends ThunderpacError {
  readonly statusCode = 400;
  readonly path: string;

  constructor(path: string) {
    super('BAD_JSON_KEY', `${path}: the property name is not allowed in a request body`);
    this.path = path;
  }
}

const RETRY_AFTER_S = 1;

/** The HTTP answer for `err` thrown while serving request `requestId`. */
export function httpErrorOf(err: unknown, requestId: string, limits: { bodyLimitBytes: number }): HttpError {
  const answer = (
    status: number,
    code: string,
    message: string,
    extra: { path?: string | undefined; headers?: Record<string, string>; [k: string]: unknown } = {},
  ): HttpError => {
    const { path, headers, ...rest } = extra;
    return {
      status,
      headers: headers ?? {},
      body: { error: { code, message, ...(path !== undefined && { path }), ...rest, requestId } },
      fault: status >= 500,
    };
  };
  const unavailable = (code: string, message: string, retryAfterS = RETRY_AFTER_S): HttpError =>
    answer(503, code, message, { headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterS))) } });

  if (!(err instanceof Error)) return internal(requestId);
  const e = err as Error & { code?: unknown; statusCode?: unknown; validation?: unknown };

  // Fastify's own request errors (content type, body size, schema validation).
  if (typeof e.code === 'string' && e.code.startsWith('FST_')) return fastifyError(e, answer, limits);

  if (e instanceof OverloadedError) return unavailable(e.code, e.message, e.retryAfterS);
  // QoS: 429 (rate, quota, cooldown) or 503 (circuit open) with Retry-After and what refused.
  if (e instanceof QosRefusal) {
    return answer(e.statusCode, e.code, e.message, {
      headers: { 'retry-after': String(e.retryAfterS) },
      ...e.details,
    });
  }
  if (e instanceof QueueDropError) return unavailable(e.code, e.message);
  if (e instanceof QueueFullError || e instanceof DroppedError || e instanceof ShuttingDownError) {
    return unavailable(e.code, e.message);
  }
  // The ONNX batcher shed it by queue delay (CoDel) or its breaker is open.
  if (e instanceof QueueDelayError || e instanceof CircuitOpenError)
    return unavailable(e.code, e.message, e.retryAfterS);

  const thrower = explicitStatus(e);
  if (thrower !== null && e instanceof ThunderpacError) {
    const carried = (e as { path?: unknown }).path;
    const path = thrower < 500 && typeof carried === 'string' ? carried : undefined;
    if (thrower === 503) return unavailable(e.code, e.message);
    return answer(thrower, e.code, e.message, { path });
  }

  if (e instanceof ValidationError) return answer(400, e.code, e.message, { path: e.path });
  if (e instanceof CodecError) return answer(400, e.code, e.message, { path: e.field });
  if (e instanceof NotFoundError) return answer(404, e.code, e.message);
  if (e instanceof LimitExceededError) {
    // The input itself was too big: the request's fault, as a body over the limit is.
    return answer(e.limit === 'maxInputBytes' ? 413 : 422, e.code, e.message, { limit: e.limit });
  }
  if (e instanceof P4CompileError) {
    if (e.kind === 'internal') return answer(500, e.code, e.message);
    return answer(422, e.code, e.message, { path: `${e.pos.file}:${e.pos.line}:${e.pos.col}` });
  }
  if (e instanceof ProgramRejectedError || e instanceof VerifierError || e instanceof MalformedObjectError) {
    return answer(422, e.code, e.message);
  }
  if (e instanceof GuestError) return answer(422, e.code, e.message);
  if (e instanceof SandboxStateError || e instanceof XdpBusyError) return answer(409, e.code, e.message);
  if (e instanceof MapError) {
    const name = e.errnoName;
    if (name === 'ENOENT') return answer(404, e.code, e.message);
    if (name === 'EEXIST') return answer(409, e.code, e.message);
    return answer(422, e.code, e.message);
  }
  if (e instanceof AddonUnavailableError) return answer(501, e.code, e.message);
  if (e instanceof ModelSecurityError || e instanceof OnnxWorkerCrashedError)
    return unavailable(e.code, e.message);
  if (
    e instanceof StoreLockedError ||
    e instanceof StoreLockUnavailableError ||
    e instanceof StoreReadOnlyError
  ) {
    return unavailable(e.code, e.message);
  }
  // A corrupted store is a real fault, but a typed one: its code and message help the operator.
  if (e instanceof IntegrityError || e instanceof BpfError || e instanceof ThunderpacError) {
    return answer(500, e.code, e.message);
  }
  return internal(requestId);
}

/** Untyped: the body says nothing of what was thrown; the log (by request id) says all. */
function internal(requestId: string): HttpError {
  return {
    status: 500,
    headers: {},
    body: {
      error: {
        code: 'INTERNAL',
        message: `internal error; see the daemon log for request ${requestId}`,
        requestId,
      },
    },
    fault: true,
  };
}

function explicitStatus(e: { statusCode?: unknown }): number | null {
  const s = e.statusCode;
  return typeof s === 'number' && Number.isInteger(s) && s >= 400 && s <= 599 ? s : null;
}

type Answer = (
  status: number,
  code: string,
  message: string,
  extra?: { path?: string | undefined; headers?: Record<string, string>; [k: string]: unknown },
) => HttpError;

interface AjvError {
  readonly instancePath?: string;
  readonly keyword?: string;
  readonly message?: string;
  readonly params?: Record<string, unknown>;
}

function fastifyError(
  e: Error & { code?: unknown; statusCode?: unknown; validation?: unknown },
  answer: Answer,
  limits: { bodyLimitBytes: number },
): HttpError {
  const code = e.code as string;
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return answer(
        413,
        'BODY_TOO_LARGE',
        `request body exceeds the limit of ${limits.bodyLimitBytes} bytes (limits.bodyLimitBytes)`,
        {
          headers: { connection: 'close' },
        },
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return answer(
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        `${bounded(e.message)}; request bodies are application/json`,
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return answer(400, 'EMPTY_JSON_BODY', "the body is empty but content-type is 'application/json'", {
        path: 'body',
      });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return answer(400, 'BAD_CONTENT_LENGTH', 'the body does not match its content-length', {
        headers: { connection: 'close' },
      });
    case 'FST_ERR_VALIDATION':
      break;
    default: {
      const status = explicitStatus(e) ?? 500;
      return answer(
        status,
        status >= 500 ? 'INTERNAL' : code,
        status >= 500 ? 'internal error' : bounded(e.message, 1024),
      );
    }
  }
  // A schema refused the request: name the field.
  const context = (e as { validationContext?: unknown }).validationContext;
  const where = typeof context === 'string' ? context : 'body';
  const first = (Array.isArray(e.validation) ? e.validation[0] : undefined) as AjvError | undefined;
  const path = first ? fieldPath(where, first) : where;
  const why = first?.message ?? 'is invalid';
  return answer(400, 'VALIDATION', bounded(`${path}: ${why}`, 1024), { path });
}

/** `body.limits.timeoutMs` from ajv's `/limits/timeoutMs` (plus the missing or extra property). */
function fieldPath(context: string, err: AjvError): string {
  const segments = (err.instancePath ?? '')
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const extra = err.params?.missingProperty ?? err.params?.additionalProperty;
  if (typeof extra === 'string') segments.push(extra);
  let path = context;
  for (const s of segments) path += /^\d+$/.test(s) ? `[${s}]` : `.${bounded(s, 64)}`;
  return path;
}
