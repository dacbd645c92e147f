/**
 * How every request that goes wrong is answered: the error handler (errors.ts maps what was
 * thrown to a status and a JSON body), the 404 for a route that does not exist, and the JSON
 * body parser (one that says where a malformed body broke). Registered first, so every route
 * after it shares the handler.
 */

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RoutePlugin } from '../context.js';
import { BadJsonError, bounded, ForbiddenJsonKeyError, httpErrorOf } from '../errors.js';
import { ThunderpacError } from '../../runtime/errors.js';

export const errorRoutes: RoutePlugin = (app, ctx) => {
  const limits = ctx.config.limits;

  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const answer = httpErrorOf(err, req.id, limits);
    const { code } = answer.body.error;
    if (answer.fault) req.log.error({ err, status: answer.status, code }, 'request failed');
    else req.log.info({ status: answer.status, code }, 'request refused');
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  });

  // An answer sent before the request's body was read (a 413, a 415, a refusal before parsing)
  // closes the connection: otherwise Node would keep reading the rest of the body to reuse the
  // connection, and a client could make the daemon swallow a 1 GiB upload it already refused.
  app.addHook('onSend', async (req, reply) => {
    if (!req.raw.complete) reply.header('connection', 'close');
  });

  // A route whose body schema is chosen by content type (`schema.body.content`) validates
  // nothing when a request comes with no body and no content type: Fastify picks no schema and
  // the handler would meet `undefined`. Such a request is refused here, naming the body.
  app.addHook('preValidation', async (req) => {
    if (req.body !== undefined) return;
    const schema = req.routeOptions.schema?.body as { content?: Record<string, unknown> } | undefined;
    if (schema?.content) throw new MissingBodyError(Object.keys(schema.content));
  });

  app.setNotFoundHandler((req, reply) => {
    // The URL is the client's text: echoed bounded, never used as a metric label.
    return reply.code(404).send({
      error: {
        code: 'NO_ROUTE',
        message: `no route for ${req.method} ${bounded(req.url)}`,
        method: req.method,
        url: bounded(req.url),
        requestId: req.id,
      },
    });
  });

  // Text is not a request body any route takes: a text/plain POST is a 415, not a string that
  // later fails a schema as "body must be object".
  app.removeContentTypeParser('text/plain');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.length === 0) {
      done(new EmptyJsonBodyError(), undefined);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      done(new BadJsonError(text), undefined);
      return;
    }
    // Like Fastify's own parser (secure-json-parse): a body naming __proto__ or
    // constructor.prototype is refused, so no merge downstream can be turned on the prototype.
    // Only bodies that could contain one are walked.
    const forbidden = POSSIBLY_FORBIDDEN.test(text) ? forbiddenKeyPath(value) : null;
    if (forbidden) {
      done(new ForbiddenJsonKeyError(forbidden), undefined);
      return;
    }
    done(null, value);
  });
};

class EmptyJsonBodyError extends ThunderpacError {
  readonly statusCode = 400;
  readonly path = 'body';
  constructor() {
    super('EMPTY_JSON_BODY', "the body is empty but content-type is 'application/json'");
  }
}

class MissingBodyError extends ThunderpacError {
  readonly statusCode = 400;
  readonly path = 'body';
  constructor(types: readonly string[]) {
    super('MISSING_BODY', `this route needs a request body (${types.join(', ')})`);
  }
}

/** The names spelled out or escaped (`\u005f`): cheap to test, and rare in real bodies. */
const POSSIBLY_FORBIDDEN = /__proto__|constructor|\\u/;

/** The path of the first `__proto__` key or `constructor` object with `prototype`, or null. */
function forbiddenKeyPath(root: unknown): string | null {
  const stack: [unknown, string][] = [[root, 'body']];
  while (stack.length > 0) {
    const [value, path] = stack.pop() as [unknown, string];
    if (value === null || typeof value !== 'object') continue;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) stack.push([value[i], `${path}[${i}]`]);
      continue;
    }
    for (const key of Object.keys(value)) {
      const child = (value as Record<string, unknown>)[key];
      if (key === '__proto__') return `${path}.__proto__`;
      if (
        key === 'constructor' &&
        child !== null &&
        typeof child === 'object' &&
        Object.hasOwn(child, 'prototype')
      ) {
        return `${path}.constructor.prototype`;
      }
      stack.push([child, `${path}.${bounded(key, 64)}`]);
    }
  }
  return null;
}
