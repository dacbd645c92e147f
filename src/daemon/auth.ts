/**
 * Who is calling and whether they may (seed 002). SKELETON: every unix peer is `admin` until
 * the policy module lands (peer credentials via SO_PEERCRED, bearer tokens, roles, owners).
 */

import type { FastifyRequest } from 'fastify';
import type { Action, Actor, Authorizer, Resource } from './context.js';

export class SkeletonAuthorizer implements Authorizer {
  authorize(_req: FastifyRequest, _action: Action, _resource?: Resource): Actor {
    return { id: 'uid:unknown', kind: 'unix', roles: ['admin'] };
  }
}
