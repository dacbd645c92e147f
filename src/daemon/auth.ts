/**
 * Who is calling and whether they may (seed 002).
 *
 * Identity: a unix-socket peer by its kernel credentials (SO_PEERCRED, read once when the
 * connection is accepted: peer.ts), a TCP client by a bearer token (`Authorization: Bearer …`;
 * the config stores only the token's sha256, compared in constant time). Both are cached per
 * connection in WeakMaps keyed by the socket, so a request costs a map lookup, not a syscall.
 *
 * Decision: policy.ts. Every decision is logged (debug for allow, info for deny) on the
 * request's logger (so it carries the request id) and every denial is counted in
 * `thunderpac_authz_denials_total{action}`.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { ThunderpacError } from '../runtime/errors.js';
import type { Action, Actor, Authorizer, Resource } from './context.js';
import type { DaemonMetrics } from './metrics.js';
import { peerCredentialsOf } from './peer.js';
import type { Policy } from './policy.js';

/** No identity: a TCP request without a (known) bearer token, or an unreadable unix peer. HTTP 401. */
export class UnauthenticatedError extends ThunderpacError {
  readonly statusCode = 401;
  readonly action: Action;
  readonly headers = { 'www-authenticate': 'Bearer' };

  constructor(action: Action, why: string) {
    super('UNAUTHENTICATED', `${action}: ${why}`);
    this.action = action;
  }
}

/** An identified actor the policy does not allow: HTTP 403, the message names the action. */
export class ForbiddenError extends ThunderpacError {
  readonly statusCode = 403;
  readonly action: Action;
  readonly actor: string;

  constructor(action: Action, actor: string, why: string) {
    super('FORBIDDEN', `${action} denied: ${why}`);
    this.action = action;
    this.actor = actor;
  }
}

const BEARER = /^Bearer ([\x21-\x7e]{1,4096})$/;

export class DaemonAuthorizer implements Authorizer {
  readonly policy: Policy;
  readonly #metrics: DaemonMetrics;
  readonly #log: FastifyBaseLogger;
  /** Allow decisions are logged at debug: skip building the record when debug is off. */
  readonly #logAllows: boolean;
  /** Unix connections: their actor, or null when the credentials could not be read. */
  readonly #peers = new WeakMap<object, Actor | null>();
  /** TCP connections: the last Authorization header seen and the actor it named. */
  readonly #tokens = new WeakMap<object, { readonly header: string; readonly actor: Actor | null }>();

  constructor(policy: Policy, metrics: DaemonMetrics, log: FastifyBaseLogger) {
    this.policy = policy;
    this.#metrics = metrics;
    this.#log = log;
    this.#logAllows = log.level === 'debug' || log.level === 'trace';
  }

  /** Identify a unix-socket connection as it is accepted (the server's 'connection' event). */
  acceptUnixConnection(socket: Socket): void {
    try {
      const peer = peerCredentialsOf(socket);
      const roles = this.policy.rolesOfPeer(peer.uid, peer.gid, peer.groups);
      this.#peers.set(socket, {
        id: `uid:${peer.uid}`,
        kind: 'unix',
        roles,
        uid: peer.uid,
        gid: peer.gid,
        groups: peer.groups,
        pid: peer.pid,
      });
    } catch (err) {
      this.#log.warn(
        { err: (err as Error).message },
        'cannot read the peer credentials of a unix connection',
      );
      this.#peers.set(socket, null);
    }
  }

  identify(req: FastifyRequest): Actor | null {
    const socket = req.raw.socket;
    const peer = this.#peers.get(socket);
    if (peer !== undefined) return peer;
    const header = req.headers.authorization;
    if (header === undefined) return null;
    const cached = this.#tokens.get(socket);
    if (cached !== undefined && cached.header === header) return cached.actor;
    const actor = this.#tokenActor(header);
    this.#tokens.set(socket, { header, actor });
    return actor;
  }

  #tokenActor(header: string): Actor | null {
    const m = BEARER.exec(header);
    if (!m) return null;
    const digest = createHash('sha256')
      .update(m[1] ?? '')
      .digest();
    let found: Actor | null = null;
    // Compare against every token (no early exit), each in constant time.
    for (const token of this.policy.config.tokens) {
      if (timingSafeEqual(digest, token.digest) && found === null) {
        found = { id: `token:${token.name}`, kind: 'token', roles: token.roles };
      }
    }
    return found;
  }

  authorize(req: FastifyRequest, action: Action, resource?: Resource): Actor {
    const actor = this.identify(req);
    if (actor === null) {
      this.#metrics.denials.inc({ action });
      const why =
        this.#peers.get(req.raw.socket) === null
          ? 'the caller’s unix credentials could not be read'
          : req.headers.authorization === undefined
            ? 'no credentials: send Authorization: Bearer <token>'
            : 'the bearer token is not one the policy knows';
      req.log.info({ action, decision: 'deny', reason: why }, 'authorization');
      throw new UnauthenticatedError(action, why);
    }
    const denial = this.policy.denial(actor, action, resource);
    if (denial !== null) {
      this.#metrics.denials.inc({ action });
      req.log.info(
        { actor: actor.id, action, decision: 'deny', reason: denial, ...(resource && { resource }) },
        'authorization',
      );
      throw new ForbiddenError(action, actor.id, denial);
    }
    if (this.#logAllows) {
      req.log.debug({ actor: actor.id, action, decision: 'allow' }, 'authorization');
    }
    return actor;
  }
}
