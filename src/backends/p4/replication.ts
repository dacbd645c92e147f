/**
 * The replication engine's configuration, as simple_switch's pre (packet replication engine)
 * holds it: multicast groups (ports, or (port, egress_rid) replicas) and clone sessions
 * (one port, or a multicast group). The control plane writes it; packet paths read it.
 */

import { P4RuntimeError } from './errors.js';
import type { CloneTarget } from './field-lists.js';
import { DROP_PORT } from './state.js';

export interface Replica {
  readonly port: number;
  readonly rid: number;
}

const NONE: readonly Replica[] = [];

export class Replication {
  readonly #mcast = new Map<number, readonly Replica[]>();
  readonly #cloneSessions = new Map<number, CloneTarget>();

  /** Replace multicast group `group` (1..65535): ports, or (port, egress_rid) replicas. */
  setMulticastGroup(group: number, replicas: readonly (number | Replica)[]): void {
    if (!Number.isInteger(group) || group < 1 || group > 0xffff) {
      throw new P4RuntimeError('P4_INDEX_RANGE', `multicast group ${group} is not in 1..65535`);
    }
    this.#mcast.set(
      group,
      replicas.map((r) => (typeof r === 'number' ? { port: r, rid: 0 } : { port: r.port, rid: r.rid })),
    );
  }

  /** The replicas of `group`; none for a group never configured. */
  multicastGroup(group: number): readonly Replica[] {
    return this.#mcast.get(group) ?? NONE;
  }

  setCloneSession(session: number, target: CloneTarget | null): void {
    if (!Number.isInteger(session) || session < 0 || session > 0xffff) {
      throw new P4RuntimeError('P4_INDEX_RANGE', `clone session ${session} is not in 0..65535`);
    }
    if (target === null) {
      this.#cloneSessions.delete(session);
      return;
    }
    if ('port' in target) {
      if (!Number.isInteger(target.port) || target.port < 0 || target.port >= DROP_PORT)
        throw new P4RuntimeError(
          'P4_INDEX_RANGE',
          `clone session ${session}: port ${target.port} is not in 0..510`,
        );
      this.#cloneSessions.set(session, { port: target.port });
      return;
    }
    const g = target.multicastGroup;
    if (!Number.isInteger(g) || g < 1 || g > 0xffff)
      throw new P4RuntimeError(
        'P4_INDEX_RANGE',
        `clone session ${session}: multicast group ${g} is not in 1..65535`,
      );
    this.#cloneSessions.set(session, { multicastGroup: g });
  }

  cloneSession(session: number): CloneTarget | null {
    return this.#cloneSessions.get(session) ?? null;
  }
}
