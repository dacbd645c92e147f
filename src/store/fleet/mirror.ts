/**
 * The fleet mirror: every receipt a store appends goes to the fleet index in PostgreSQL
 * (schema.ts), asynchronously, in log order, in batches, retried, idempotently.
 *
 * The local receipt log stays the record: an append never waits for the database, and a down,
 * slow or hung database costs nothing but lag. After an append (`notify`) the mirror waits
 * `delayMs` (a burst goes in one batch), reads the log from the position the fleet index last
 * confirmed for this host, and writes up to `batchSize` receipts in one transaction: the receipt
 * rows (`ON CONFLICT (id) DO NOTHING`), their parent edges, and the host's new position, which
 * moves only in that same transaction. So the index never claims a receipt it lacks, a retry of
 * a batch that did commit inserts nothing twice, and a host that restarts — or a database that
 * comes back — resumes from the confirmed position: nothing is lost and nothing is skipped.
 * Failures are retried with a doubling delay (`retryMinMs` .. `retryMaxMs`), and `status()`
 * says how far behind the mirror is and why.
 *
 * The position is the log's own (`LogPosition`: ordinal and byte offset), with the id of the last
 * receipt mirrored and where its record starts. On resume that record is read back and must be
 * that receipt, ending at that offset: a host name used by another store, or a log replaced or cut
 * below what the index confirmed, is a FleetMismatchError, and the mirror stops rather than mix
 * two logs under one name (nothing in the index is changed).
 *
 * Records are read with `ReceiptLog.scanBodies`, `batchSize` at a time (the scan is stopped after
 * a batch; the next position is the record ends added up: each record is an 8-byte header, the
 * 32-byte chain link and the body, format 3, checked against the scan's own end whenever a scan
 * runs to the end of the log).
 */

import { decodeCanonical, sha256Hex } from '../../runtime/canonical.js';
import { ThunderpacError } from '../../runtime/errors.js';
import type { ReceiptBody } from '../../runtime/receipt.js';
import { type LogPosition, ReceiptLog } from '../receipt-log.js';
import type { FleetDb } from './connection.js';
import { FleetMismatchError } from './errors.js';

/** Bytes of a log record besides its body: u32 length, u32 crc32, 32-byte link (format 3). */
const RECORD_OVERHEAD = 8 + 32;

export interface MirrorRow {
  readonly id: string;
  readonly ordinal: number;
  /** Byte offset where the record starts. */
  readonly offset: number;
  readonly buildId: string | null;
  readonly actor: string | null;
  readonly status: string | null;
  readonly backend: string | null;
  /** Date.parse(startedAt), null when unreadable (then no time range matches it). */
  readonly startedMs: number | null;
  readonly inputHash: string | null;
  readonly outputHash: string | null;
  readonly parents: readonly string[];
  readonly body: Uint8Array;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function hashOf(ref: unknown): string | null {
  return ref !== null && typeof ref === 'object' ? str((ref as { hash?: unknown }).hash) : null;
}

/** The fields the fleet index keeps, from a receipt's canonical body bytes. */
export function mirrorRowOf(id: string, body: Uint8Array, ordinal: number, offset: number): MirrorRow {
  const b = decodeCanonical<Partial<Record<keyof ReceiptBody, unknown>>>(body);
  const started = typeof b.startedAt === 'string' ? Date.parse(b.startedAt) : Number.NaN;
  const parents = Array.isArray(b.parents) ? b.parents.filter((p): p is string => typeof p === 'string') : [];
  return {
    id,
    ordinal,
    offset,
    buildId: str(b.buildId),
    actor: str(b.actor),
    status: str(b.status),
    backend: str(b.backend),
    startedMs: Number.isFinite(started) ? started : null,
    inputHash: hashOf(b.input),
    outputHash: hashOf(b.output),
    parents: [...new Set(parents)],
    body: Buffer.from(body), // the scan's buffer is reused
  };
}

export type MirrorState = 'idle' | 'waiting' | 'mirroring' | 'retrying' | 'stopped' | 'closed';

export interface MirrorStatus {
  readonly host: string;
  readonly state: MirrorState;
  /** Receipts of this log the fleet index has confirmed (null until the position was read). */
  readonly confirmed: number | null;
  /** Receipts in the local log. */
  readonly local: number;
  /** local − confirmed (null until the position was read). */
  readonly behind: number | null;
  /** Receipts this mirror wrote since it started, and in how many transactions. */
  readonly mirrored: number;
  readonly batches: number;
  /** Failures in a row (0 after a batch succeeds). */
  readonly failures: number;
  /** The last failure, while it is not yet overcome (null once a batch succeeds). */
  readonly lastError: { readonly code: string; readonly message: string } | null;
  /** When the last batch was confirmed (ISO 8601), null before the first. */
  readonly lastConfirmedAt: string | null;
}

interface Confirmed {
  readonly position: LogPosition;
  readonly lastId: string | null;
  readonly lastOffset: number | null;
}

const STOP = Symbol('batch full');

export class FleetMirror {
  readonly host: string;
  readonly #log: ReceiptLog;
  readonly #db: FleetDb;
  #confirmed: Confirmed | undefined;
  #state: MirrorState = 'idle';
  #timer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #failures = 0;
  #lastError: Error | undefined;
  #mirrored = 0;
  #batches = 0;
  #lastConfirmedAt: string | null = null;

  constructor(log: ReceiptLog, db: FleetDb, host: string) {
    this.#log = log;
    this.#db = db;
    this.host = host;
  }

  /** Something was appended: mirror it soon (after `delayMs`), unless a retry is already waiting. */
  notify(): void {
    if (this.#state === 'stopped' || this.#state === 'closed') return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer || this.#retryTimer) return;
    this.#state = 'waiting';
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#kick();
    }, this.#db.options.delayMs);
    this.#timer.unref();
  }

  /**
   * Mirror everything the log holds now, and resolve once the fleet index has confirmed it; if a
   * round fails, reject with its error (the mirror still retries on its own). For tests, for
   * `close` paths that want the fleet current, and for operators (`store fleet sync`).
   */
  async sync(): Promise<void> {
    if (this.#state === 'closed') throw this.#lastError ?? new Error('fleet mirror is closed');
    const target = this.#log.size;
    for (let round = 0; round < 2; round++) {
      if (this.#running) await this.#running;
      this.#clearTimers();
      await this.#kick();
      if ((this.#confirmed?.position.ordinal ?? -1) >= target) return;
      if (this.#lastError) throw this.#lastError;
    }
    if ((this.#confirmed?.position.ordinal ?? -1) < target) {
      throw this.#lastError ?? new Error(`fleet mirror did not reach receipt ${target}`);
    }
  }

  status(): MirrorStatus {
    const confirmed = this.#confirmed?.position.ordinal ?? null;
    const local = this.#log.size;
    const e = this.#lastError;
    return {
      host: this.host,
      state: this.#state,
      confirmed,
      local,
      behind: confirmed === null ? null : local - confirmed,
      mirrored: this.#mirrored,
      batches: this.#batches,
      failures: this.#failures,
      lastError: e
        ? {
            code: e instanceof ThunderpacError ? e.code : ((e as { code?: string }).code ?? 'ERROR'),
            message: e.message,
          }
        : null,
      lastConfirmedAt: this.#lastConfirmedAt,
    };
  }

  /** Stop mirroring (what is confirmed stays confirmed; the next open resumes from there). */
  async close(): Promise<void> {
    this.#clearTimers();
    this.#state = 'closed';
    await this.#running?.catch(() => {});
  }

  /** Stop before the log closes (synchronous: the Store's close), without waiting for a round in flight. */
  stop(): void {
    this.#clearTimers();
    this.#state = 'closed';
  }

  #clearTimers(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#retryTimer);
    this.#timer = undefined;
    this.#retryTimer = undefined;
  }

  #kick(): Promise<void> {
    if (this.#running) return this.#running;
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
      if (this.#again && this.#state !== 'closed' && this.#state !== 'stopped' && !this.#retryTimer) {
        this.#again = false;
        this.notify();
      }
    });
    return this.#running;
  }

  async #drain(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'stopped') return;
    this.#state = 'mirroring';
    try {
      this.#confirmed ??= await this.#resume();
      for (;;) {
        if ((this.#state as MirrorState) === 'closed') return;
        const from = this.#confirmed;
        const rows: MirrorRow[] = [];
        const end = this.#read(from.position, rows);
        if (rows.length === 0) break;
        this.#confirmed = await this.#write(from, rows, end);
        this.#mirrored += rows.length;
        this.#batches++;
        this.#lastConfirmedAt = new Date().toISOString();
        this.#failures = 0;
        this.#lastError = undefined;
      }
      this.#state = 'idle';
    } catch (err) {
      this.#lastError = err instanceof Error ? err : new Error(String(err));
      this.#failures++;
      if ((this.#state as MirrorState) === 'closed') return;
      if (err instanceof FleetMismatchError) {
        this.#state = 'stopped';
        return;
      }
      // The position is re-read and re-checked on the next round (it may have committed).
      this.#confirmed = undefined;
      this.#state = 'retrying';
      const { retryMinMs, retryMaxMs } = this.#db.options;
      const wait = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(this.#failures - 1, 30));
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        void this.#kick();
      }, wait);
      this.#retryTimer.unref();
    }
  }

  /**
   * Up to `batchSize` rows from `at`, appended to `rows`; returns the position after them. The
   * log is closed under a closed mirror, so nothing is read then.
   */
  #read(at: LogPosition, rows: MirrorRow[]): LogPosition {
    const limit = this.#db.options.batchSize;
    let ordinal = at.ordinal;
    let offset = at.offset;
    try {
      const end = this.#log.scanBodies(at, (id, body) => {
        if (rows.length === limit) throw STOP;
        rows.push(mirrorRowOf(id, body, ordinal, offset));
        ordinal++;
        offset += RECORD_OVERHEAD + body.byteLength;
      });
      if (end.ordinal !== ordinal || end.offset !== offset) {
        throw new FleetMismatchError(
          this.host,
          `the receipt log's records do not have the layout the mirror counts positions with (scan ended at ordinal ${end.ordinal} byte ${end.offset}, counted ${ordinal} byte ${offset})`,
        );
      }
    } catch (err) {
      if (err !== STOP) throw err;
    }
    return { ordinal, offset };
  }

  /** The host's confirmed position (a new host starts at the log's start), checked against this log. */
  async #resume(): Promise<Confirmed> {
    const row = await this.#db.run(`read the position of host '${this.host}'`, async (sql) => {
      await sql`insert into thunderpac_fleet_hosts (host, ordinal, log_offset)
                values (${this.host}, 0, ${ReceiptLog.START.offset}) on conflict (host) do nothing`;
      const [r] = await sql<
        { ordinal: string; log_offset: string; last_id: string | null; last_offset: string | null }[]
      >`
        select ordinal, log_offset, last_id, last_offset from thunderpac_fleet_hosts where host = ${this.host}`;
      return r!;
    });
    const confirmed: Confirmed = {
      position: { ordinal: Number(row.ordinal), offset: Number(row.log_offset) },
      lastId: row.last_id,
      lastOffset: row.last_offset === null ? null : Number(row.last_offset),
    };
    this.#check(confirmed);
    return confirmed;
  }

  /** The record before the confirmed position must be the last receipt confirmed, ending there. */
  #check(c: Confirmed): void {
    const { ordinal, offset } = c.position;
    if (ordinal === 0) return;
    const local = this.#log.size;
    if (local < ordinal) {
      throw new FleetMismatchError(
        this.host,
        `the fleet index confirmed ${ordinal} receipts from this host, but this store's log holds ${local}: another store uses this host name, or the log lost receipts it had mirrored`,
      );
    }
    let found: string | undefined;
    let end: LogPosition | undefined;
    if (
      c.lastId !== null &&
      c.lastOffset !== null &&
      c.lastOffset >= ReceiptLog.START.offset &&
      c.lastOffset < offset
    ) {
      try {
        end = this.#log.scanBodies({ ordinal: ordinal - 1, offset: c.lastOffset }, (id, body) => {
          found = sha256Hex(body) === id ? id : undefined;
          throw STOP;
        });
      } catch (err) {
        if (err !== STOP) found = undefined;
      }
      void end;
    }
    if (found !== c.lastId) {
      throw new FleetMismatchError(
        this.host,
        `the fleet index's last receipt from this host is ${c.lastId ?? '(none)'} at log ordinal ${ordinal - 1} (byte ${c.lastOffset}), which this store's log does not hold there: another store uses this host name, or the log was replaced`,
      );
    }
  }

  /** One transaction: the rows, their edges, and the host's position, which must still be `from`. */
  async #write(from: Confirmed, rows: MirrorRow[], end: LogPosition): Promise<Confirmed> {
    const last = rows[rows.length - 1]!;
    const childIds: string[] = [];
    const parentIds: string[] = [];
    for (const r of rows) {
      for (const p of r.parents) {
        childIds.push(r.id);
        parentIds.push(p);
      }
    }
    const col = <T>(f: (r: MirrorRow) => T): T[] => rows.map(f);
    await this.#db.run(
      `mirror receipts ${from.position.ordinal}..${end.ordinal - 1} of host '${this.host}'`,
      (sql) =>
        sql.begin(async (tx) => {
          const [h] = await tx<{ ordinal: string }[]>`
          select ordinal from thunderpac_fleet_hosts where host = ${this.host} for update`;
          if (!h || Number(h.ordinal) !== from.position.ordinal) {
            throw new FleetMismatchError(
              this.host,
              `its position moved to ${h ? h.ordinal : '(none)'} while this store mirrored from ${from.position.ordinal}: another store mirrors under this host name`,
            );
          }
          await tx`
          insert into thunderpac_fleet_receipts
            (id, host, ordinal, build_id, actor, status, backend, started_ms, input_hash, output_hash, body)
          select u.id, ${this.host}, u.ordinal, u.build_id, u.actor, u.status, u.backend, u.started_ms,
                 u.input_hash, u.output_hash, u.body
          from unnest(${col((r) => r.id)}::text[], ${col((r) => r.ordinal)}::bigint[],
                      ${col((r) => r.buildId)}::text[], ${col((r) => r.actor)}::text[],
                      ${col((r) => r.status)}::text[], ${col((r) => r.backend)}::text[],
                      ${col((r) => r.startedMs)}::double precision[], ${col((r) => r.inputHash)}::text[],
                      ${col((r) => r.outputHash)}::text[], ${col((r) => r.body)}::bytea[])
            as u(id, ordinal, build_id, actor, status, backend, started_ms, input_hash, output_hash, body)
          on conflict (id) do nothing`;
          if (childIds.length > 0) {
            await tx`
            insert into thunderpac_fleet_parents (child, parent)
            select * from unnest(${childIds}::text[], ${parentIds}::text[])
            on conflict do nothing`;
          }
          await tx`
          update thunderpac_fleet_hosts
          set ordinal = ${end.ordinal}, log_offset = ${end.offset}, last_id = ${last.id},
              last_offset = ${last.offset}, updated_at = now()
          where host = ${this.host}`;
        }),
    );
    return { position: end, lastId: last.id, lastOffset: last.offset };
  }
}
