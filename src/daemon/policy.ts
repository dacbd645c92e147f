/**
 * Who may do what (seed 002): roles, the actions each role may take, build ownership and
 * grants. Deny by default: an actor with no role may only read health; an action no role of
 * the actor allows is denied; runners and operators may touch only builds, jobs and receipts
 * they own, or builds a grant gives them.
 *
 * The config's `policy` section:
 *
 *   "policy": {
 *     "uids":   { "0": ["admin"], "1000": ["runner"] },        // unix peers by uid
 *     "gids":   { "998": ["runner", "auditor"] },              // by primary or supplementary gid
 *     "tokens": { "ci-bot": { "sha256": "<hex of sha256(token)>", "roles": ["runner"] } },
 *     "grants": [ { "to": "role:runner", "builds": "*" },      // who may run builds they do not own
 *                 { "to": "uid:1000", "builds": ["<build id>"] } ]
 *   }
 *
 * Without a `policy` section the default is: uid 0 and the daemon's own uid are admin, the
 * socket file's group is runner, nobody else has a role (the socket's 0660 mode keeps others
 * out anyway), no grants, and no tokens (so no TCP listener).
 */

import type { Node } from 'jsonc-parser';
import {
  type ConfigPath,
  ConfigError,
  type ConfigSource,
  formatPath,
  readObject,
  readString,
  readStringArray,
} from './config-source.js';
import type { Action, Actor, Resource, Role } from './context.js';

export const ROLES: readonly Role[] = ['admin', 'operator', 'runner', 'auditor'];

/** What each role may do at all (admin: everything). Ownership narrows the scoped ones below. */
const ROLE_ACTIONS: Readonly<Record<Role, ReadonlySet<Action>>> = {
  admin: new Set<Action>([
    'health.read',
    'metrics.read',
    'build.create',
    'build.read',
    'execute',
    'job.read',
    'receipt.read',
    'receipt.verify',
    'model.read',
    'model.infer',
    'xdp.read',
    'xdp.attach',
    'xdp.detach',
    'map.read',
    'map.write',
    'p4.control',
    'qos.read',
    'qos.reload',
    'store.read',
    'store.admin',
  ]),
  operator: new Set<Action>([
    'health.read',
    'metrics.read',
    'build.create',
    'build.read',
    'execute',
    'job.read',
    'receipt.read',
    'model.read',
    'model.infer',
    'xdp.read',
    'xdp.attach',
    'xdp.detach',
    'map.read',
    'map.write',
    'p4.control',
    'qos.read',
    'store.read',
  ]),
  runner: new Set<Action>([
    'health.read',
    'build.create',
    'build.read',
    'execute',
    'job.read',
    'receipt.read',
    'model.read',
    'model.infer',
  ]),
  auditor: new Set<Action>([
    'health.read',
    'metrics.read',
    'build.read',
    'job.read',
    'receipt.read',
    'receipt.verify',
    'model.read',
    'xdp.read',
    'map.read',
    'store.read',
  ]),
};

/**
 * Actions that runners and operators may take only on what they own (or, for builds, were
 * granted): `resource.owner` / `resource.owners` name the owner(s), `resource.buildId` the
 * build a grant may cover. Admins and auditors (for the reads they have) are not narrowed.
 */
const SCOPED: ReadonlySet<Action> = new Set<Action>(['execute', 'build.read', 'job.read', 'receipt.read']);
const UNSCOPED_ROLES: Readonly<Partial<Record<Action, readonly Role[]>>> = {
  'build.read': ['admin', 'auditor'],
  'job.read': ['admin', 'auditor'],
  'receipt.read': ['admin', 'auditor'],
  execute: ['admin'],
};

export interface TokenEntry {
  readonly name: string;
  /** sha256 of the token (32 bytes); the token itself is never stored. */
  readonly digest: Buffer;
  readonly roles: readonly Role[];
}

export interface Grant {
  /** `uid:N`, `gid:N`, `token:NAME`, `role:ROLE` or `*`. */
  readonly to: string;
  /** Build ids the subject may execute and read although it does not own them; '*' = all. */
  readonly builds: '*' | ReadonlySet<string>;
}

export interface PolicyConfig {
  readonly uids: ReadonlyMap<number, readonly Role[]>;
  readonly gids: ReadonlyMap<number, readonly Role[]>;
  readonly tokens: readonly TokenEntry[];
  readonly grants: readonly Grant[];
}

// ------------------------------------------------------------------ parsing the section

const isRole = (v: string): boolean => (ROLES as readonly string[]).includes(v);
const ROLE_LIST = `roles (${ROLES.join(', ')})`;
const BUILD_ID = /^[0-9a-f]{64}$/;
const TOKEN_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const ID_NUMBER = /^(0|[1-9]\d{0,9})$/;

/** Validate the `policy` section; every error names the field path and its line. */
export function parsePolicy(source: ConfigSource, path: ConfigPath, node: Node | undefined): PolicyConfig {
  const top = readObject(source, path, node, ['uids', 'gids', 'tokens', 'grants']);
  const ids = (key: 'uids' | 'gids'): Map<number, Role[]> => {
    const out = new Map<number, Role[]>();
    for (const [id, value] of readObject(source, [...path, key], top.get(key), null)) {
      const where = [...path, key, id];
      if (!ID_NUMBER.test(id) || Number(id) > 0xffffffff) {
        throw new ConfigError(
          source.locate(where),
          formatPath(where),
          `expected a numeric ${key.slice(0, 3)} as the key, found '${id}'`,
        );
      }
      out.set(Number(id), readStringArray(source, where, value, ROLE_LIST, isRole) as Role[]);
    }
    return out;
  };
  const tokens: TokenEntry[] = [];
  for (const [name, value] of readObject(source, [...path, 'tokens'], top.get('tokens'), null)) {
    const where = [...path, 'tokens', name];
    if (!TOKEN_NAME.test(name)) {
      throw new ConfigError(
        source.locate(where),
        formatPath(where),
        'expected a token name of letters, digits, ".", "_" or "-" (at most 64)',
      );
    }
    const fields = readObject(source, where, value, ['sha256', 'roles']);
    const digest = fields.get('sha256');
    const roles = fields.get('roles');
    if (!digest || !roles) {
      const missing = digest ? 'roles' : 'sha256';
      throw new ConfigError(source.locate(where), formatPath([...where, missing]), 'missing');
    }
    const hex = readString(
      source,
      [...where, 'sha256'],
      digest,
      'the sha256 of the token as 64 hex digits',
      (v) => /^[0-9a-fA-F]{64}$/.test(v),
    );
    tokens.push({
      name,
      digest: Buffer.from(hex, 'hex'),
      roles: readStringArray(source, [...where, 'roles'], roles, ROLE_LIST, isRole) as Role[],
    });
  }
  const grants: Grant[] = [];
  const grantsNode = top.get('grants');
  if (grantsNode && grantsNode.type !== 'array')
    throw source.error([...path, 'grants'], 'an array of grants', grantsNode);
  for (const [i, grantNode] of (grantsNode?.children ?? []).entries()) {
    const where = [...path, 'grants', i];
    const fields = readObject(source, where, grantNode, ['to', 'builds']);
    const to = fields.get('to');
    const builds = fields.get('builds');
    if (!to || !builds)
      throw new ConfigError(source.locate(where), formatPath([...where, to ? 'builds' : 'to']), 'missing');
    const subject = readString(
      source,
      [...where, 'to'],
      to,
      '"uid:N", "gid:N", "token:NAME", "role:ROLE" or "*"',
      (v) =>
        v === '*' ||
        /^(uid|gid):(0|[1-9]\d{0,9})$/.test(v) ||
        /^token:[A-Za-z0-9._-]{1,64}$/.test(v) ||
        (/^role:/.test(v) && isRole(v.slice(5))),
    );
    grants.push({
      to: subject,
      builds:
        builds.type === 'string' && builds.value === '*'
          ? '*'
          : new Set(
              readStringArray(source, [...where, 'builds'], builds, 'build ids (64 hex digits) or "*"', (v) =>
                BUILD_ID.test(v),
              ),
            ),
    });
  }
  return { uids: ids('uids'), gids: ids('gids'), tokens, grants };
}

/** The policy when the config has none (see the module comment). */
export function defaultPolicy(daemonUid: number, socketGid: number): PolicyConfig {
  const uids = new Map<number, Role[]>([[0, ['admin']]]);
  uids.set(daemonUid, ['admin']);
  const gids = new Map<number, Role[]>([[socketGid, ['runner']]]);
  return { uids, gids, tokens: [], grants: [] };
}

// ------------------------------------------------------------------ deciding

export class Policy {
  readonly config: PolicyConfig;

  constructor(config: PolicyConfig) {
    this.config = config;
  }

  /** The roles of a unix peer: its uid's, its primary gid's and its supplementary gids'. */
  rolesOfPeer(uid: number, gid: number, groups: readonly number[]): Role[] {
    const roles = new Set<Role>(this.config.uids.get(uid));
    for (const r of this.config.gids.get(gid) ?? []) roles.add(r);
    for (const g of groups) for (const r of this.config.gids.get(g) ?? []) roles.add(r);
    return ROLES.filter((r) => roles.has(r));
  }

  /**
   * null when `actor` may take `action` on `resource`; otherwise why not (for the 403 body and
   * the log). Allocation-free on the allow path of the common cases.
   */
  denial(actor: Actor, action: Action, resource?: Resource): string | null {
    if (action === 'health.read') return null;
    let allowedByRole = false;
    for (const role of actor.roles) {
      if (!ROLE_ACTIONS[role].has(action)) continue;
      allowedByRole = true;
      if (!SCOPED.has(action) || UNSCOPED_ROLES[action]?.includes(role)) return null;
    }
    if (!allowedByRole) {
      const roles = actor.roles.length ? actor.roles.join(', ') : 'none';
      return `${actor.id} (roles: ${roles}) may not ${action}`;
    }
    // A scoped action by a runner / operator: ownership or a grant.
    if (resource) {
      if (resource.owner === actor.id || resource.owners?.includes(actor.id)) return null;
      if (resource.buildId !== undefined && (action === 'execute' || action === 'build.read')) {
        if (this.grants(actor, resource.buildId)) return null;
      }
    }
    const what = resource?.buildId ? `build ${resource.buildId}` : 'this resource';
    return `${actor.id} may not ${action} on ${what}: not its owner and no grant covers it`;
  }

  #subjectMatches(actor: Actor, to: string): boolean {
    if (to === '*' || to === actor.id) return true;
    if (to.startsWith('role:')) return actor.roles.includes(to.slice(5) as Role);
    if (to.startsWith('gid:')) {
      const gid = Number(to.slice(4));
      return actor.gid === gid || (actor.groups?.includes(gid) ?? false);
    }
    return false;
  }

  grants(actor: Actor, buildId: string): boolean {
    for (const grant of this.config.grants) {
      if (!this.#subjectMatches(actor, grant.to)) continue;
      if (grant.builds === '*' || grant.builds.has(buildId)) return true;
    }
    return false;
  }
}
