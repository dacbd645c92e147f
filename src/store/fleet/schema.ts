/**
 * The fleet index's tables in PostgreSQL (format 1, recorded as `TPFLEET1` in
 * `thunderpac_fleet_meta`): one receipt and lineage index shared by a fleet of stores, while
 * blocks (payloads, builds, artifacts) stay in each host's own store.
 *
 *   thunderpac_fleet_meta      key text PK, value text              ('format' → 'TPFLEET1')
 *   thunderpac_fleet_hosts     host text PK                          one row per mirroring store:
 *                              ordinal, log_offset                   the log position confirmed
 *                              last_id, last_offset                  the last receipt mirrored and
 *                                                                    where its record starts
 *                              updated_at
 *   thunderpac_fleet_receipts  seq bigint identity PK                arrival order in the fleet
 *                              id text UNIQUE                        sha256 of body (the receipt id)
 *                              host, ordinal                         where it was first mirrored from
 *                              build_id, actor, status, backend      the receipt index's fields
 *                              started_ms double precision           startedAt (NULL: unreadable)
 *                              input_hash, output_hash               payload hashes (lineage by data)
 *                              body bytea                            the canonical receipt body
 *   thunderpac_fleet_parents   (child, parent) PK, index on parent   DAG edges: a receipt's `parents`
 *
 * A receipt row carries its whole canonical body, so any host can answer with the receipt itself,
 * and every read re-hashes the body against the id (an altered row is a FleetIntegrityError,
 * never a wrong answer). Receipts are only inserted (`ON CONFLICT (id) DO NOTHING`), never
 * updated or deleted: mirroring the same receipt twice, from a retry or from a second store
 * holding a copy, leaves one row, and the first host to mirror it is the one recorded.
 *
 * A host's position row moves in the same transaction as the rows of the batch it confirms, so
 * after a crash (of the host or of the database) the index and the position agree: the mirror
 * resumes from the position, and re-sending a batch that did commit is harmless.
 *
 * `ensureSchema` creates what is missing under a transaction-scoped advisory lock (two hosts
 * starting at once do not race on CREATE), and refuses a database whose meta row names another
 * format (FleetSchemaError): it never alters or drops tables it did not create.
 */

import type { Sql } from 'postgres';
import { FleetSchemaError } from './errors.js';

export const FLEET_FORMAT = 'TPFLEET1';
/** Key of the advisory lock held while the schema is created (any constant both sides agree on). */
const SCHEMA_LOCK = 0x54_50_46_4c; // 'TPFL'

export const TABLES = {
  meta: 'thunderpac_fleet_meta',
  hosts: 'thunderpac_fleet_hosts',
  receipts: 'thunderpac_fleet_receipts',
  parents: 'thunderpac_fleet_parents',
} as const;

const DDL = [
  `create table if not exists thunderpac_fleet_meta (key text primary key, value text not null)`,
  `create table if not exists thunderpac_fleet_hosts (
     host text primary key,
     ordinal bigint not null,
     log_offset bigint not null,
     last_id text,
     last_offset bigint,
     updated_at timestamptz not null default now())`,
  `create table if not exists thunderpac_fleet_receipts (
     seq bigint generated always as identity primary key,
     id text not null unique,
     host text not null,
     ordinal bigint not null,
     build_id text,
     actor text,
     status text,
     backend text,
     started_ms double precision,
     input_hash text,
     output_hash text,
     body bytea not null)`,
  `create index if not exists thunderpac_fleet_receipts_build on thunderpac_fleet_receipts (build_id, seq)`,
  `create index if not exists thunderpac_fleet_receipts_actor on thunderpac_fleet_receipts (actor, seq)`,
  `create index if not exists thunderpac_fleet_receipts_status on thunderpac_fleet_receipts (status, seq)`,
  `create index if not exists thunderpac_fleet_receipts_started on thunderpac_fleet_receipts (started_ms)`,
  `create index if not exists thunderpac_fleet_receipts_input on thunderpac_fleet_receipts (input_hash)`,
  `create index if not exists thunderpac_fleet_receipts_output on thunderpac_fleet_receipts (output_hash)`,
  `create index if not exists thunderpac_fleet_receipts_host on thunderpac_fleet_receipts (host, ordinal)`,
  `create table if not exists thunderpac_fleet_parents (
     child text not null,
     parent text not null,
     primary key (child, parent))`,
  `create index if not exists thunderpac_fleet_parents_parent on thunderpac_fleet_parents (parent)`,
];

/** Create the tables (when missing) and check the format; FleetSchemaError for another format. */
export async function ensureSchema(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${SCHEMA_LOCK})`;
    await tx.unsafe(DDL[0]!);
    const rows = await tx<{ value: string }[]>`select value from thunderpac_fleet_meta where key = 'format'`;
    const format = rows[0]?.value;
    if (format !== undefined && format !== FLEET_FORMAT) {
      throw new FleetSchemaError(
        `the database holds fleet index format '${format}', this runtime reads '${FLEET_FORMAT}': left as it is`,
      );
    }
    for (const statement of DDL.slice(1)) await tx.unsafe(statement);
    if (format === undefined) {
      await tx`insert into thunderpac_fleet_meta (key, value) values ('format', ${FLEET_FORMAT})`;
    }
  });
}
