/**
 * The daemon's XDP attachments: attach a program of a stored BPF build to an interface,
 * detach it, report it, reach its maps and named statistics, and find it again after a
 * restart.
 *
 * Where things live:
 *   - in bpffs (the kernel objects), through XdpManager with pinned bpf links:
 *       <bpffsRoot>/attachments/<netns>/<interface>/link        the attachment
 *       <bpffsRoot>/attachments/<netns>/<interface>/maps/<map>  its maps
 *   - in the store (what bpffs cannot hold: ids, build, who, when), one JSON file each:
 *       <store>/daemon/xdp-attachments/<id>.json
 *     The record is what makes an attachment the daemon's: pins under the root without one
 *     (e.g. made by `thunderpac xdp attach`) are left alone.
 *
 * Lifetimes: attachments outlive the daemon, as with bpfman. Closing the daemon leaves every
 * program attached and every map pinned; the next start re-adopts each recorded attachment
 * whose link still runs the recorded program, and cleans the stale ones (interface or
 * namespace gone, link detached: pins and record removed). A record whose interface now runs
 * another program through the same pinned link (someone replaced it) is dropped without
 * touching the pins, which are no longer the daemon's to remove.
 *
 * Every operation is synchronous (bpf syscalls and small file writes), so requests on the
 * single event loop cannot interleave inside one.
 */

import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { BPF_OBJECT_ARTIFACT } from '../backends/ebpf/backend.js';
import { BpfError, MalformedObjectError, XdpBusyError, XdpError } from '../backends/ebpf/errors.js';
import { type XdpMode, xdpQuery } from '../backends/ebpf/link.js';
import type { BpfMap } from '../backends/ebpf/map.js';
import { BpfObject } from '../backends/ebpf/object.js';
import { XdpManager, type XdpStatusEntry } from '../backends/ebpf/xdp.js';
import { artifact, type Build } from '../runtime/build.js';
import { ThunderpacError } from '../runtime/errors.js';
import { type NamedStats, openTypedPinned, readNamedStats } from './xdp-stats.js';

export type RequestedMode = XdpMode | 'best';

/** A request the daemon refuses: its status and the field it is about. */
export class XdpRequestError extends ThunderpacError {
  readonly statusCode: number;
  readonly path: string | undefined;

  constructor(statusCode: number, code: string, message: string, path?: string) {
    super(code, message);
    this.statusCode = statusCode;
    this.path = path;
  }
}

/** What the store keeps per attachment (format version 1). */
export interface AttachmentRecord {
  readonly v: 1;
  readonly id: string;
  readonly build: string;
  readonly program: string;
  readonly interface: string;
  /** null: the daemon's own network namespace. */
  readonly netns: string | null;
  readonly requestedMode: RequestedMode;
  readonly mode: XdpMode;
  readonly progId: number;
  readonly pinDir: string;
  readonly attachedAt: string;
  readonly attachedBy: string;
}

/** An attachment as the API reports it. */
export interface AttachmentView extends AttachmentRecord {
  /** The interface still runs the recorded program. */
  readonly active: boolean;
  /** What the interface runs now (0: nothing; null: the interface or namespace is gone). */
  readonly attachedProgId: number | null;
  readonly maps: readonly string[];
}

export interface AttachRequest {
  readonly build: Build;
  readonly program: string;
  readonly interface: string;
  readonly netns: string | undefined;
  readonly mode: RequestedMode;
  readonly replace: boolean;
  readonly actor: string;
  /** The request field the object came from (body.build or body.object), for error paths. */
  readonly objectField: string;
}

export interface AdoptReport {
  readonly adopted: readonly string[];
  readonly cleaned: readonly { readonly id: string; readonly reason: string }[];
  readonly dropped: readonly { readonly id: string; readonly reason: string }[];
}

const ID_PATTERN = /^xa-[0-9a-f]{16}$/;

export class XdpAttachments {
  readonly manager: XdpManager;
  readonly #dir: string;
  readonly #log: FastifyBaseLogger;
  readonly #records = new Map<string, AttachmentRecord>();

  constructor(options: {
    readonly bpffsRoot: string;
    readonly storeDir: string;
    readonly log: FastifyBaseLogger;
  }) {
    this.manager = new XdpManager({ root: options.bpffsRoot });
    this.#dir = join(options.storeDir, 'daemon', 'xdp-attachments');
    this.#log = options.log;
  }

  /**
   * At start: reads the records, keeps those whose attachment is still in place, cleans the
   * stale ones. Never throws for one bad record (it is logged and skipped).
   */
  adopt(): AdoptReport {
    mkdirSync(this.#dir, { recursive: true, mode: 0o750 });
    const status = this.manager.status();
    const adopted: string[] = [];
    const cleaned: { id: string; reason: string }[] = [];
    const dropped: { id: string; reason: string }[] = [];
    for (const file of readdirSync(this.#dir)) {
      if (!file.endsWith('.json')) continue;
      const path = join(this.#dir, file);
      let record: AttachmentRecord;
      try {
        record = parseRecord(readFileSync(path, 'utf8'));
      } catch (err) {
        this.#log.warn(
          { file: path, err: (err as Error).message },
          'xdp: skipping an unreadable attachment record',
        );
        continue;
      }
      const entry = status.find((e) => e.pinDir === record.pinDir);
      if (entry?.active === true && entry.progId === record.progId) {
        this.#records.set(record.id, record);
        adopted.push(record.id);
        continue;
      }
      if (entry?.active === true) {
        // The pinned link now runs another program: someone replaced ours; the pins are theirs.
        rmSync(path, { force: true });
        dropped.push({ id: record.id, reason: `the link now runs program ${entry.progId}` });
        continue;
      }
      const reason =
        entry === undefined
          ? 'its pins are gone'
          : entry.attachedProgId === undefined
            ? 'the interface or namespace is gone'
            : 'the program is no longer attached';
      if (entry !== undefined) this.#detachQuietly(record);
      rmSync(path, { force: true });
      cleaned.push({ id: record.id, reason });
    }
    this.#log.info({ adopted, cleaned, dropped }, 'xdp: attachments re-adopted');
    return { adopted, cleaned, dropped };
  }

  attach(request: AttachRequest): AttachmentView {
    const target = {
      device: request.interface,
      ...(request.netns === undefined ? {} : { netns: request.netns }),
    };
    checkInterface(target);
    const existing = this.#onInterface(request.interface, request.netns);
    if (existing !== undefined && !request.replace) {
      throw new XdpRequestError(
        409,
        'XDP_ATTACHMENT_EXISTS',
        `${where(target)} already has attachment ${existing.id} (program ${existing.program}); pass replace: true to swap it atomically`,
        'body.interface',
      );
    }
    if (request.build.manifest.kind !== 'ebpf') {
      throw new XdpRequestError(
        400,
        'NOT_A_BPF_BUILD',
        `build ${request.build.id} is a ${request.build.manifest.kind} build, not a BPF object`,
        'body.build',
      );
    }
    let object: BpfObject;
    try {
      object = BpfObject.open(artifact(request.build, BPF_OBJECT_ARTIFACT), {
        objectName: request.build.manifest.name.slice(0, 15),
      });
    } catch (err) {
      if (err instanceof MalformedObjectError) {
        throw new XdpRequestError(422, err.code, err.message, request.objectField);
      }
      throw err;
    }
    try {
      const program = object.programs.find((p) => p.name === request.program);
      if (program === undefined) {
        const names = object.programs.map((p) => p.name).join(', ');
        throw new XdpRequestError(
          400,
          'UNKNOWN_PROGRAM',
          `build ${request.build.id} has no program '${request.program}' (it has: ${names || 'none'})`,
          'body.program',
        );
      }
      if (program.typeName !== 'xdp') {
        throw new XdpRequestError(
          400,
          'NOT_AN_XDP_PROGRAM',
          `program '${request.program}' is ${program.typeName ?? 'of an unknown type'}, not xdp`,
          'body.program',
        );
      }
      object.load();
      const attachment = withFieldErrors(() =>
        this.manager.attach(object, request.program, {
          ...target,
          mode: request.mode,
          replace: request.replace,
          pin: true,
        }),
      );
      if (attachment.pinDir === undefined) throw new Error('a pinned attachment has a pin directory');
      const record: AttachmentRecord = {
        v: 1,
        id: `xa-${randomBytes(8).toString('hex')}`,
        build: request.build.id,
        program: request.program,
        interface: request.interface,
        netns: request.netns ?? null,
        requestedMode: request.mode,
        mode: attachment.mode,
        progId: attachment.progId,
        pinDir: attachment.pinDir,
        attachedAt: new Date().toISOString(),
        attachedBy: request.actor,
      };
      if (existing !== undefined) this.#forget(existing.id);
      this.#write(record);
      this.#records.set(record.id, record);
      return this.#view(record, this.manager.status());
    } finally {
      object.close();
    }
  }

  /** Detaches and forgets; false when the program was already gone (the record is removed anyway). */
  detach(id: string): boolean {
    const record = this.record(id);
    const detached = this.#detachQuietly(record);
    this.#forget(id);
    return detached;
  }

  list(): AttachmentView[] {
    const status = this.manager.status();
    return [...this.#records.values()].map((record) => this.#view(record, status));
  }

  get(id: string): AttachmentView {
    return this.#view(this.record(id), this.manager.status());
  }

  /** The attachment's records, without querying the kernel (metrics use it at scrape time). */
  records(): readonly AttachmentRecord[] {
    return [...this.#records.values()];
  }

  /** Opens one of the attachment's pinned maps (typed by its BTF); the caller closes it. */
  openMap(id: string, name: string): BpfMap<unknown, unknown> {
    const record = this.record(id);
    if (!/^[A-Za-z0-9_]{1,64}$/.test(name) || !mapNames(record.pinDir).includes(name)) {
      throw new XdpRequestError(
        404,
        'UNKNOWN_MAP',
        `attachment ${id} has no map '${name}' (it has: ${mapNames(record.pinDir).join(', ') || 'none'})`,
        'params.map',
      );
    }
    return openTypedPinned(join(record.pinDir, 'maps', name));
  }

  /** Names of the maps pinned for the attachment. */
  mapNames(id: string): string[] {
    return mapNames(this.record(id).pinDir);
  }

  stats(id: string): NamedStats {
    const record = this.record(id);
    return readNamedStats(record.pinDir, mapNames(record.pinDir));
  }

  /** Stats of every attachment, for the Prometheus collector; one that cannot be read is skipped. */
  allStats(): { record: AttachmentRecord; stats: NamedStats }[] {
    return this.records().flatMap((record) => {
      try {
        return [{ record, stats: readNamedStats(record.pinDir, mapNames(record.pinDir)) }];
      } catch (err) {
        this.#log.debug({ id: record.id, err: (err as Error).message }, 'xdp: stats unreadable');
        return [];
      }
    });
  }

  /** The attachment's record; 404 (params.id) when there is none. */
  record(id: string): AttachmentRecord {
    const record = ID_PATTERN.test(id) ? this.#records.get(id) : undefined;
    if (record === undefined) {
      throw new XdpRequestError(
        404,
        'UNKNOWN_ATTACHMENT',
        `no XDP attachment '${id.slice(0, 64)}'`,
        'params.id',
      );
    }
    return record;
  }

  #onInterface(device: string, netns: string | undefined): AttachmentRecord | undefined {
    for (const record of this.#records.values()) {
      if (record.interface === device && record.netns === (netns ?? null)) return record;
    }
    return undefined;
  }

  #view(record: AttachmentRecord, status: readonly XdpStatusEntry[]): AttachmentView {
    const entry = status.find((e) => e.pinDir === record.pinDir);
    return {
      ...record,
      active: entry?.active === true && entry.progId === record.progId,
      attachedProgId: entry?.attachedProgId ?? null,
      maps: entry?.maps ?? [],
    };
  }

  #detachQuietly(record: AttachmentRecord): boolean {
    const target = { device: record.interface, ...(record.netns === null ? {} : { netns: record.netns }) };
    try {
      return this.manager.detach(target);
    } catch (err) {
      // The namespace may be gone: the record's pins go anyway, and nothing else can be detached.
      this.#log.warn({ id: record.id, err: (err as Error).message }, 'xdp: detach failed; removing the pins');
      rmSync(record.pinDir, { recursive: true, force: true });
      return false;
    }
  }

  #forget(id: string): void {
    this.#records.delete(id);
    rmSync(join(this.#dir, `${id}.json`), { force: true });
  }

  #write(record: AttachmentRecord): void {
    mkdirSync(this.#dir, { recursive: true, mode: 0o750 });
    const path = join(this.#dir, `${record.id}.json`);
    // Write then rename: a daemon killed mid-write leaves the old record or none, never half.
    writeFileSync(`${path}.tmp`, `${JSON.stringify(record)}\n`, { mode: 0o640 });
    renameSync(`${path}.tmp`, path);
  }
}

function parseRecord(text: string): AttachmentRecord {
  const value = JSON.parse(text) as Partial<AttachmentRecord>;
  if (
    value.v !== 1 ||
    typeof value.id !== 'string' ||
    !ID_PATTERN.test(value.id) ||
    typeof value.interface !== 'string' ||
    typeof value.pinDir !== 'string' ||
    typeof value.progId !== 'number'
  ) {
    throw new Error('not an attachment record (v1)');
  }
  return value as AttachmentRecord;
}

function mapNames(pinDir: string): string[] {
  try {
    return readdirSync(join(pinDir, 'maps')).sort();
  } catch {
    return [];
  }
}

/** The interface (and namespace) must exist: a clear 400 naming the field, before any load. */
function checkInterface(target: { device: string; netns?: string }): void {
  try {
    xdpQuery(target);
  } catch (err) {
    if (err instanceof BpfError && err.code === 'EBPF_NOT_FOUND') {
      const netnsMissing = err.errno === 2 && target.netns !== undefined;
      throw new XdpRequestError(
        400,
        netnsMissing ? 'UNKNOWN_NETNS' : 'UNKNOWN_INTERFACE',
        netnsMissing
          ? `no network namespace '${target.netns}'`
          : `no interface '${target.device}' in ${netnsName(target)}`,
        netnsMissing ? 'body.netns' : 'body.interface',
      );
    }
    throw err;
  }
}

/** Kernel refusals that are about a field of the request, as 4xx naming it. */
function withFieldErrors<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    if (err instanceof XdpBusyError) throw new XdpRequestError(409, err.code, err.message, 'body.interface');
    if (err instanceof XdpError && (err.errno === 95 || err.errno === 22)) {
      throw new XdpRequestError(422, 'XDP_MODE_UNSUPPORTED', err.message, 'body.mode');
    }
    throw err;
  }
}

function netnsName(target: { netns?: string }): string {
  return target.netns === undefined
    ? "the daemon's network namespace"
    : `network namespace '${target.netns}'`;
}

function where(target: { device: string; netns?: string }): string {
  return `interface '${target.device}' in ${netnsName(target)}`;
}
