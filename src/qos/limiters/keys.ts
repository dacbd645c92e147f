/**
 * Keys per actor, per resource and per (actor, resource). Prefixes keep the three spaces
 * apart in one store; the pair key carries the actor's length so no choice of names can make
 * two different pairs collide ("a:b" + "c" vs "a" + "b:c").
 */

import { QosKeyError } from './errors.js';

function part(path: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw new QosKeyError(path, 'a non-empty string', v);
  return v;
}

export function actorKey(actor: string): string {
  return `a:${part('actor', actor)}`;
}

export function resourceKey(resource: string): string {
  return `r:${part('resource', resource)}`;
}

export function actorResourceKey(actor: string, resource: string): string {
  return `ar:${part('actor', actor).length}:${actor}:${part('resource', resource)}`;
}
