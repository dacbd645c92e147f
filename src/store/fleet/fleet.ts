/**
 * Fleet mode of a store (opt-in: the Store option `fleet`, the daemon's `store.fleet`): the
 * store's receipts mirrored into a PostgreSQL fleet index shared by many hosts (mirror.ts), and
 * queries across them (fleet-index.ts). Blocks stay local; the embedded store works the same
 * with or without it, and never waits for the database.
 *
 *   const store = new Store(dir, { fleet: { postgres: 'postgres://thunderpac@db/fleet' } });
 *   await store.fleet!.index.query({ build, since });   // every host's receipts
 *   await store.fleet!.index.lineage(receiptId);        // DAG ancestry across hosts
 *   store.fleet!.status();                              // how far behind the mirror is
 */

import type { ReceiptLog } from '../receipt-log.js';
import { defaultHostName, type FleetOptions, FleetDb, parseFleetOptions } from './connection.js';
import { FleetIndex } from './fleet-index.js';
import { FleetMirror, type MirrorStatus } from './mirror.js';

export class Fleet {
  readonly index: FleetIndex;
  /** Absent for a read-only store (it mirrors nothing; it can still query). */
  readonly mirror: FleetMirror | undefined;
  readonly host: string;
  readonly #db: FleetDb;

  constructor(storeDir: string, log: ReceiptLog, options: FleetOptions, readOnly: boolean) {
    const resolved = parseFleetOptions(options, 'fleet');
    this.#db = new FleetDb(resolved);
    this.host = resolved.host ?? defaultHostName(storeDir);
    this.index = new FleetIndex(this.#db);
    this.mirror = readOnly ? undefined : new FleetMirror(log, this.#db, this.host);
    this.mirror?.notify(); // what the log holds beyond the confirmed position goes first
  }

  /** The mirror's state (null for a read-only store). */
  status(): MirrorStatus | null {
    return this.mirror?.status() ?? null;
  }

  /** Wait until the fleet index holds every receipt of the log (rejects if a round fails). */
  async sync(): Promise<void> {
    await this.mirror?.sync();
  }

  /** Synchronous part of close (before the log closes): no more rounds start. */
  stop(): void {
    this.mirror?.stop();
  }

  async close(): Promise<void> {
    await this.mirror?.close();
    await this.#db.close();
  }
}

export { type FleetOptions, parseFleetOptions } from './connection.js';
export * from './errors.js';
export type {
  FleetDerivedPage,
  FleetLineage,
  FleetLocation,
  FleetProducedBy,
  FleetQuery,
} from './fleet-index.js';
export type { MirrorStatus } from './mirror.js';
