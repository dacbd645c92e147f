/**
 * The policy's decisions, role by role: deny by default, ownership narrows runners and
 * operators on builds, jobs and receipts, grants widen them by uid, gid, token, role or '*',
 * and the default policy (no `policy` section) gives admin to root and the daemon's uid and
 * runner to the socket's group only.
 */

import { describe, expect, it } from 'vitest';
import type { Action, Actor, Role } from '../src/daemon/context.js';
import { defaultPolicy, Policy, type PolicyConfig } from '../src/daemon/policy.js';

const BUILD = 'b'.repeat(64);
const OTHER = 'c'.repeat(64);

const actor = (id: string, roles: Role[], extra: Partial<Actor> = {}): Actor => ({
  id,
  kind: 'unix',
  roles,
  ...extra,
});
const config = (c: Partial<PolicyConfig>): PolicyConfig => ({
  uids: new Map(),
  gids: new Map(),
  tokens: [],
  grants: [],
  ...c,
});

const ALL: Action[] = [
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
];

describe('policy decisions', () => {
  const policy = new Policy(config({}));

  it('an actor with no role may read health and nothing else', () => {
    const nobody = actor('uid:1234', []);
    for (const action of ALL) {
      const denial = policy.denial(nobody, action, {
        buildId: BUILD,
        owner: 'uid:1234',
        owners: ['uid:1234'],
      });
      if (action === 'health.read') expect(denial).toBeNull();
      else expect(denial).toBe(`uid:1234 (roles: none) may not ${action}`);
    }
  });

  it('admin may do everything, on anything', () => {
    for (const action of ALL)
      expect(
        policy.denial(actor('uid:0', ['admin']), action, { buildId: BUILD, owners: ['uid:9'] }),
      ).toBeNull();
  });

  it('a runner executes and reads only builds it owns; jobs and receipts only its own', () => {
    const runner = actor('uid:1000', ['runner']);
    expect(policy.denial(runner, 'build.create')).toBeNull();
    expect(policy.denial(runner, 'execute', { buildId: BUILD, owners: ['uid:1000'] })).toBeNull();
    expect(policy.denial(runner, 'execute', { buildId: BUILD, owners: ['uid:2000', 'uid:1000'] })).toBeNull();
    expect(policy.denial(runner, 'execute', { buildId: BUILD, owners: ['uid:2000'] })).toBe(
      `uid:1000 may not execute on build ${BUILD}: not its owner and no grant covers it`,
    );
    expect(policy.denial(runner, 'execute')).not.toBeNull();
    expect(policy.denial(runner, 'build.read', { buildId: BUILD, owners: ['uid:2000'] })).not.toBeNull();
    expect(policy.denial(runner, 'job.read', { owner: 'uid:1000' })).toBeNull();
    expect(policy.denial(runner, 'job.read', { owner: 'uid:2000' })).not.toBeNull();
    expect(policy.denial(runner, 'receipt.read', { owner: 'uid:2000' })).not.toBeNull();
    for (const action of [
      'xdp.attach',
      'map.write',
      'p4.control',
      'metrics.read',
      'receipt.verify',
    ] as const) {
      expect(policy.denial(runner, action)).not.toBeNull();
    }
  });

  it('an operator controls XDP, maps and P4, and is narrowed like a runner on builds', () => {
    const operator = actor('uid:1001', ['operator']);
    for (const action of ['xdp.attach', 'xdp.detach', 'map.write', 'p4.control'] as const)
      expect(policy.denial(operator, action)).toBeNull();
    expect(policy.denial(operator, 'execute', { buildId: BUILD, owners: ['uid:2000'] })).not.toBeNull();
  });

  it('an auditor reads everything and changes nothing', () => {
    const auditor = actor('token:audit', ['auditor'], { kind: 'token' });
    for (const action of [
      'receipt.read',
      'receipt.verify',
      'build.read',
      'job.read',
      'metrics.read',
      'xdp.read',
    ] as const) {
      expect(
        policy.denial(auditor, action, { buildId: BUILD, owner: 'uid:9', owners: ['uid:9'] }),
      ).toBeNull();
    }
    for (const action of ['build.create', 'execute', 'xdp.attach', 'map.write', 'model.infer'] as const) {
      expect(policy.denial(auditor, action, { buildId: BUILD, owners: ['token:audit'] })).not.toBeNull();
    }
  });

  it('grants let runners execute builds they do not own, by uid, gid, token, role or everyone', () => {
    const grants = (to: string, builds: '*' | string[]) =>
      new Policy(config({ grants: [{ to, builds: builds === '*' ? '*' : new Set(builds) }] }));
    const runner = actor('uid:1000', ['runner'], { gid: 100, groups: [998] });
    const notOwned = { buildId: BUILD, owners: ['uid:2000'] };
    for (const to of ['uid:1000', 'gid:100', 'gid:998', 'role:runner', '*']) {
      expect(grants(to, [BUILD]).denial(runner, 'execute', notOwned), to).toBeNull();
      expect(
        grants(to, [BUILD]).denial(runner, 'execute', { ...notOwned, buildId: OTHER }),
        to,
      ).not.toBeNull();
    }
    expect(grants('uid:1000', '*').denial(runner, 'build.read', notOwned)).toBeNull();
    for (const to of ['uid:1001', 'gid:999', 'role:operator', 'token:ci']) {
      expect(grants(to, '*').denial(runner, 'execute', notOwned), to).not.toBeNull();
    }
    // A grant gives no role: an actor without runner still may not execute.
    expect(grants('*', '*').denial(actor('uid:5', []), 'execute', notOwned)).not.toBeNull();
  });

  it('unix peers get the roles of their uid, primary gid and supplementary gids', () => {
    const p = new Policy(
      config({
        uids: new Map([[1000, ['runner']]]),
        gids: new Map([
          [998, ['auditor']],
          [50, ['operator']],
        ]),
      }),
    );
    expect(p.rolesOfPeer(1000, 1000, [])).toEqual(['runner']);
    expect(p.rolesOfPeer(1000, 50, [998])).toEqual(['operator', 'runner', 'auditor']);
    expect(p.rolesOfPeer(4242, 4242, [7])).toEqual([]);
  });

  it('the default policy: root and the daemon’s uid are admin, the socket’s group runner, nobody else anything', () => {
    const p = new Policy(defaultPolicy(1500, 997));
    expect(p.rolesOfPeer(0, 0, [])).toEqual(['admin']);
    expect(p.rolesOfPeer(1500, 1500, [])).toEqual(['admin']);
    expect(p.rolesOfPeer(1000, 1000, [997])).toEqual(['runner']);
    expect(p.rolesOfPeer(1000, 1000, [])).toEqual([]);
    expect(p.config.tokens).toEqual([]);
    expect(p.config.grants).toEqual([]);
  });
});
