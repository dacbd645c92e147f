/**
 * XdpManager: attaches XDP programs to interfaces and remembers what it attached, so it can
 * always be found and removed again, including after the process that attached it died.
 *
 * Three lifetimes, chosen per attach:
 *   - process (default): a bpf link held by this process; the kernel detaches it when the
 *     process exits or crashes, so nothing can leak;
 *   - pin: a bpf link pinned at <dir>/link; outlives the process until detach() or clean();
 *   - netlink: a classic netlink attachment (what `ip link set xdp` makes), needed to take
 *     over an interface that already runs a foreign netlink program; recorded by pinning the
 *     program at <dir>/prog so detach/clean can prove it is still ours (detaching with
 *     XDP_FLAGS_REPLACE + that program, atomically, never someone else's).
 *
 * Each pinned or netlink attachment owns one pin directory (attachmentDir):
 *
 *     <root>/attachments/<netns>/<device>/link | prog     the record (one of the two)
 *     <root>/attachments/<netns>/<device>/maps/<map>      the attached object's maps
 *
 * <netns> is the namespace name ('@host' for this process's namespace). One directory per
 * (namespace, interface), because an interface runs at most one XDP program: attaching the
 * same program to a second interface loads a second copy with its own maps, pinned in its
 * own directory, so every copy's maps stay reachable and an update reaches exactly the copy
 * it names. bpffs holds only BPF objects, so the record *is* the pin; path segments are
 * URI-encoded with '.' escaped too (bpffs refuses '.' in names). Records of older versions
 * (<root>/xdp/link@<netns>@<device>, prog@…) are still read, so status/detach/clean find them.
 * An interface that already runs a program refuses a second attach with XdpBusyError unless
 * `replace` is given; replacement is atomic (link update or netlink REPLACE with the expected
 * old program), so there is never a moment with no program on the interface.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BpfError, XdpBusyError, XdpError } from './errors.js';
import {
  BpfLink,
  modeFlags,
  pinProgram,
  programInfo,
  XDP_FLAGS,
  type XdpMode,
  type XdpQuery,
  type XdpTarget,
  xdpAttachNetlink,
  xdpDetachNetlink,
  xdpQuery,
} from './link.js';
import { BpfMap } from './map.js';
import type { BpfObject } from './object.js';

export const DEFAULT_BPFFS_ROOT = '/sys/fs/bpf/thunderpac';

export type AttachmentKind = 'link' | 'pinned-link' | 'netlink';

export interface XdpAttachOptions extends XdpTarget {
  /**
   * native (driver) mode by default; skb = generic; offload = on the NIC (fails on devices that
   * cannot); best = offload if the device can, else native, else skb (the attachment says which).
   */
  readonly mode?: XdpMode | 'best';
  /** Atomically replace whatever program the interface runs now. */
  readonly replace?: boolean;
  /** Pin the link so the attachment outlives this process. */
  readonly pin?: boolean;
  /** Use a netlink attachment (outlives the process, recorded by a program pin). */
  readonly netlink?: boolean;
}

export interface XdpAttachment {
  readonly device: string;
  readonly netns: string | undefined;
  readonly kind: AttachmentKind;
  readonly mode: XdpMode;
  readonly progId: number;
  readonly progName: string;
  /** The bpffs record (link or program pin), for pinned and netlink attachments. */
  readonly pinPath?: string;
  /** The attachment's own pin directory (pinned and netlink attachments). */
  readonly pinDir?: string;
  /** Where the object's maps are pinned: <pinDir>/maps/<name> (attach() with an object). */
  readonly maps?: readonly string[];
  /** The program id this attach replaced, if any. */
  readonly replacedProgId?: number;
}

export interface XdpStatusEntry {
  readonly device: string;
  readonly netns: string | undefined;
  readonly kind: AttachmentKind;
  readonly pinPath?: string;
  /** The attachment's pin directory (absent for process links and old-layout records). */
  readonly pinDir?: string;
  /** Names of the maps pinned in <pinDir>/maps. */
  readonly maps?: readonly string[];
  /** Our program, as recorded. */
  readonly progId: number | undefined;
  readonly progName: string | undefined;
  /** What the interface runs now (0 = nothing; undefined = the interface or namespace is gone). */
  readonly attachedProgId: number | undefined;
  /** True when the interface still runs our program. */
  readonly active: boolean;
}

export interface CleanedEntry {
  readonly device: string;
  readonly netns: string | undefined;
  readonly kind: AttachmentKind;
  readonly pinPath: string;
  /** A program was still attached and was removed (false: the record was stale). */
  readonly detached: boolean;
}

interface Record_ {
  readonly device: string;
  readonly netns: string | undefined;
  readonly kind: 'pinned-link' | 'netlink';
  readonly path: string;
  /** The attachment's pin directory; undefined for an old-layout record under <root>/xdp. */
  readonly dir: string | undefined;
}

/** The segment naming this process's own namespace ('@' is always encoded in real names). */
const HOST_NETNS_SEGMENT = '@host';

/**
 * The pin directory of the attachment on `target` under `root`:
 * <root>/attachments/<netns or @host>/<device>, segments URI-encoded ('.' too).
 */
export function attachmentDir(root: string, target: XdpTarget): string {
  const netns = target.netns === undefined ? HOST_NETNS_SEGMENT : encodeName(target.netns);
  return join(root, 'attachments', netns, encodeName(target.device));
}

/** Where map `name` of the attachment on `target` is pinned. */
export function attachmentMapPath(root: string, target: XdpTarget, name: string): string {
  return join(attachmentDir(root, target), 'maps', name);
}

/** Every attachment under `root` that pinned a map called `name`. */
export function findAttachmentMaps(
  root: string,
  name: string,
): { readonly device: string; readonly netns: string | undefined; readonly path: string }[] {
  return attachmentDirs(root).flatMap((entry) => {
    const path = join(entry.dir, 'maps', name);
    return existsSync(path) ? [{ device: entry.device, netns: entry.netns, path }] : [];
  });
}

/** The (namespace, device) directories under <root>/attachments. */
function attachmentDirs(root: string): { device: string; netns: string | undefined; dir: string }[] {
  const base = join(root, 'attachments');
  return listDir(base).flatMap((nsName) =>
    listDir(join(base, nsName)).map((devName) => ({
      netns: nsName === HOST_NETNS_SEGMENT ? undefined : decodeURIComponent(nsName),
      device: decodeURIComponent(devName),
      dir: join(base, nsName, devName),
    })),
  );
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function pinnedMapNames(dir: string | undefined): string[] {
  return dir === undefined ? [] : listDir(join(dir, 'maps')).sort();
}

export class XdpManager {
  readonly root: string;
  readonly #live = new Map<string, { link: BpfLink; attachment: XdpAttachment }>();

  constructor(options: { readonly root?: string } = {}) {
    this.root = options.root ?? DEFAULT_BPFFS_ROOT;
  }

  /** Where versions before per-attachment directories kept their records. */
  get #legacyDir(): string {
    return join(this.root, 'xdp');
  }

  /** Attaches `programName` of a loaded object. See the module comment for lifetimes. */
  attach(object: BpfObject, programName: string, options: XdpAttachOptions): XdpAttachment {
    const program = object.program(programName);
    if (program.fd === null) {
      throw new BpfError('EBPF_STATE', `program '${programName}' is not loaded`, { program: programName });
    }
    if (program.typeName !== 'xdp') {
      throw new BpfError('EBPF_INVALID_ARG', `program '${programName}' is ${program.typeName}, not xdp`, {
        program: programName,
      });
    }
    const attachment = this.attachFd(program.fd, options);
    if (attachment.pinDir === undefined) return attachment;
    try {
      return { ...attachment, maps: pinObjectMaps(object, attachment.pinDir) };
    } catch (err) {
      // A fresh attachment whose maps cannot be pinned would be unreachable: undo it.
      if (attachment.replacedProgId === undefined) this.detach(options);
      throw err;
    }
  }

  attachFd(progFd: number, options: XdpAttachOptions): XdpAttachment {
    const requested = options.mode ?? 'native';
    const key = recordKey(options);
    const info = programInfo({ fd: progFd });
    const current = xdpQuery(options);
    const base = {
      device: options.device,
      netns: options.netns,
      mode: requested === 'best' ? queryMode(current) : requested,
      progId: info.id,
      progName: info.name,
    };

    if (current.progId !== 0) {
      if (current.progId === info.id) return this.#describeExisting(key, base);
      if (options.replace !== true) throw this.#busy(options, current, key);
      return this.#replace(progFd, options, current, key, base);
    }

    this.#forget(key);
    const modes: readonly XdpMode[] = requested === 'best' ? ['offload', 'native', 'skb'] : [requested];
    for (const [index, mode] of modes.entries()) {
      try {
        return this.#attachNew(progFd, options, key, { ...base, mode });
      } catch (err) {
        // A mode the device lacks is EOPNOTSUPP or EINVAL; anything else is a real failure.
        const unsupported = err instanceof XdpError && (err.errno === 95 || err.errno === 22);
        if (!unsupported || index === modes.length - 1) throw err;
      }
    }
    throw new XdpError(`no XDP mode could be attached on ${where(options)}`, options);
  }

  #attachNew(
    progFd: number,
    options: XdpAttachOptions,
    key: string,
    base: Omit<XdpAttachment, 'kind'>,
  ): XdpAttachment {
    const mode = base.mode;
    if (options.netlink === true) {
      this.#withMessage(options, () =>
        xdpAttachNetlink(options, progFd, { flags: modeFlags(mode) | XDP_FLAGS.updateIfNoExist }),
      );
      const pinDir = this.#ensureDir(options);
      const pinPath = join(pinDir, 'prog');
      pinProgram(progFd, pinPath);
      return { ...base, kind: 'netlink', pinPath, pinDir };
    }
    const link = this.#withMessage(options, () => BpfLink.createXdp(options, progFd, mode));
    if (options.pin === true) {
      let pinDir: string;
      let pinPath: string;
      try {
        pinDir = this.#ensureDir(options);
        pinPath = join(pinDir, 'link');
        link.pin(pinPath);
      } catch (err) {
        link.close(); // never leave an unrecorded attachment behind
        throw err;
      }
      link.close();
      return { ...base, kind: 'pinned-link', pinPath, pinDir };
    }
    const attachment: XdpAttachment = { ...base, kind: 'link' };
    this.#live.set(key, { link, attachment });
    return attachment;
  }

  /**
   * Removes our program from the interface. A program thunderpac did not attach is left alone
   * (XdpError) unless `force`. Returns false when nothing was attached.
   */
  detach(target: XdpTarget, options: { readonly force?: boolean } = {}): boolean {
    const key = recordKey(target);
    const live = this.#live.get(key);
    if (live !== undefined) {
      live.link.detach();
      live.link.close();
      this.#live.delete(key);
      this.#forget(key);
      return true;
    }
    const record = this.#records().find((candidate) => recordKey(candidate) === key);
    if (record !== undefined) {
      const detached = this.#removeRecord(record);
      return detached;
    }
    const current = xdpQuery(target);
    if (current.progId === 0) return false;
    if (options.force !== true) {
      const name = safeProgName(current.progId);
      throw new XdpError(
        `${where(target)} runs program ${current.progId}${name ? ` (${name})` : ''}, which thunderpac did not attach; ` +
          'pass force to detach it anyway',
        { device: target.device, netns: target.netns },
      );
    }
    this.#withMessage(target, () =>
      xdpDetachNetlink(target, { flags: queryModeFlags(current), expectedProgId: current.progId }),
    );
    return true;
  }

  /** What this manager (and its bpffs records) knows, checked against the interfaces. */
  status(): XdpStatusEntry[] {
    const entries: XdpStatusEntry[] = [];
    for (const { link, attachment } of this.#live.values()) {
      const info = link.info();
      entries.push({
        device: attachment.device,
        netns: attachment.netns,
        kind: 'link',
        progId: attachment.progId,
        progName: attachment.progName,
        attachedProgId: info.ifindex === 0 ? 0 : info.progId,
        active: info.ifindex !== 0,
      });
    }
    for (const record of this.#records()) {
      const ours = this.#recordProgram(record);
      const attached = safeQuery(record)?.progId;
      entries.push({
        device: record.device,
        netns: record.netns,
        kind: record.kind,
        pinPath: record.path,
        ...(record.dir === undefined ? {} : { pinDir: record.dir, maps: pinnedMapNames(record.dir) }),
        progId: ours?.id,
        progName: ours?.name,
        attachedProgId: attached,
        active: ours !== undefined && attached === ours.id,
      });
    }
    return entries;
  }

  /**
   * Removes every attachment recorded under the root: pinned links are detached and unpinned,
   * netlink attachments detached if the interface still runs our program, stale records
   * (interface or namespace gone) just deleted, each with its pin directory (maps included).
   * What a killed process left behind goes away.
   */
  clean(): CleanedEntry[] {
    const cleaned: CleanedEntry[] = [];
    for (const record of this.#records()) {
      const detached = this.#removeRecord(record);
      cleaned.push({
        device: record.device,
        netns: record.netns,
        kind: record.kind,
        pinPath: record.path,
        detached,
      });
    }
    return cleaned;
  }

  /** Detaches the process-lifetime links; pinned and netlink attachments stay (that is their point). */
  close(): void {
    for (const { link } of this.#live.values()) {
      try {
        link.detach();
      } finally {
        link.close();
      }
    }
    this.#live.clear();
  }

  #replace(
    progFd: number,
    options: XdpAttachOptions,
    current: XdpQuery,
    key: string,
    base: Omit<XdpAttachment, 'kind'>,
  ): XdpAttachment {
    const live = this.#live.get(key);
    if (live !== undefined) {
      live.link.update(progFd, current.progId);
      const attachment: XdpAttachment = { ...base, kind: 'link', replacedProgId: current.progId };
      this.#live.set(key, { link: live.link, attachment });
      return attachment;
    }
    const record = this.#records().find((candidate) => recordKey(candidate) === key);
    // Only a link that still holds the running program can be updated; a stale one is dropped.
    if (record?.kind === 'pinned-link' && this.#recordProgram(record)?.id === current.progId) {
      const link = BpfLink.openPinned(record.path);
      try {
        link.update(progFd, current.progId);
      } finally {
        link.close();
      }
      return {
        ...base,
        kind: 'pinned-link',
        pinPath: record.path,
        ...(record.dir === undefined ? {} : { pinDir: record.dir }),
        replacedProgId: current.progId,
      };
    }
    // A netlink program (ours or foreign): swap atomically, then record the new one.
    this.#withMessage(options, () =>
      xdpAttachNetlink(options, progFd, { flags: queryModeFlags(current), expectedProgId: current.progId }),
    );
    if (record !== undefined) rmSync(record.path, { force: true });
    const pinDir = this.#ensureDir(options);
    const pinPath = join(pinDir, 'prog');
    rmSync(join(pinDir, 'link'), { force: true });
    pinProgram(progFd, pinPath);
    return {
      ...base,
      mode: queryMode(current),
      kind: 'netlink',
      pinPath,
      pinDir,
      replacedProgId: current.progId,
    };
  }

  #describeExisting(key: string, base: Omit<XdpAttachment, 'kind'>): XdpAttachment {
    const live = this.#live.get(key);
    if (live !== undefined) return live.attachment;
    const record = this.#records().find((candidate) => recordKey(candidate) === key);
    if (record !== undefined) {
      return {
        ...base,
        kind: record.kind,
        pinPath: record.path,
        ...(record.dir === undefined ? {} : { pinDir: record.dir }),
      };
    }
    throw new XdpBusyError(
      `${where(base)} already runs this program (id ${base.progId}), attached by someone else`,
      {
        device: base.device,
        netns: base.netns,
        attachedProgId: base.progId,
        attachedProgName: base.progName,
      },
    );
  }

  #busy(target: XdpTarget, current: XdpQuery, key: string): XdpBusyError {
    const name = safeProgName(current.progId);
    const ours =
      this.#live.has(key) ||
      this.#records().some(
        (record) => recordKey(record) === key && this.#recordProgram(record)?.id === current.progId,
      );
    const who = ours ? 'attached by thunderpac' : 'not attached by thunderpac';
    return new XdpBusyError(
      `${where(target)} already runs XDP program ${current.progId}${name ? ` (${name})` : ''}, ${who}; ` +
        'pass replace to swap it atomically',
      { device: target.device, netns: target.netns, attachedProgId: current.progId, attachedProgName: name },
    );
  }

  /** Detaches what a record stands for (if it is still ours) and deletes it. */
  #removeRecord(record: Record_): boolean {
    let detached = false;
    try {
      if (record.kind === 'pinned-link') {
        const link = BpfLink.openPinned(record.path);
        try {
          if (link.info().ifindex !== 0) {
            link.detach();
            detached = true;
          }
        } finally {
          link.close();
        }
      } else {
        const ours = this.#recordProgram(record);
        const current = safeQuery(record);
        if (ours !== undefined && current !== undefined && current.progId === ours.id) {
          xdpDetachNetlink(record, { flags: queryModeFlags(current), expectedProgId: ours.id });
          detached = true;
        }
      }
    } finally {
      rmSync(record.path, { force: true });
      if (record.dir !== undefined) removePinDir(record.dir);
    }
    return detached;
  }

  #recordProgram(record: Record_): { id: number; name: string } | undefined {
    try {
      if (record.kind === 'netlink') return programInfo({ pinned: record.path });
      const link = BpfLink.openPinned(record.path);
      try {
        const info = link.info();
        return { id: info.progId, name: safeProgName(info.progId) ?? '' };
      } finally {
        link.close();
      }
    } catch {
      return undefined;
    }
  }

  #records(): Record_[] {
    const current = attachmentDirs(this.root).flatMap((entry): Record_[] => {
      for (const [file, kind] of [
        ['link', 'pinned-link'],
        ['prog', 'netlink'],
      ] as const) {
        const path = join(entry.dir, file);
        if (existsSync(path))
          return [{ device: entry.device, netns: entry.netns, kind, path, dir: entry.dir }];
      }
      return [];
    });
    const legacy = listDir(this.#legacyDir).flatMap((name): Record_[] => {
      const parsed = parseRecordName(name);
      return parsed === undefined ? [] : [{ ...parsed, path: join(this.#legacyDir, name), dir: undefined }];
    });
    return [...current, ...legacy];
  }

  /** Deletes what is recorded for `key` (the interface runs nothing: the records are stale). */
  #forget(key: string): void {
    for (const record of this.#records()) {
      if (recordKey(record) !== key) continue;
      rmSync(record.path, { force: true });
      if (record.dir !== undefined) removePinDir(record.dir);
    }
  }

  /** Creates (if needed) and returns the attachment's pin directory. */
  #ensureDir(target: XdpTarget): string {
    const dir = attachmentDir(this.root, target);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Adds the device to kernel XDP errors that would otherwise only say "Device or resource busy". */
  #withMessage<T>(target: XdpTarget, call: () => T): T {
    try {
      return call();
    } catch (err) {
      if (err instanceof XdpError && err.errno === 95 /* EOPNOTSUPP */) {
        throw new XdpError(`${err.message} (the device does not support this XDP mode)`, {
          device: target.device,
          netns: target.netns,
          errno: err.errno,
          cause: err,
        });
      }
      if (err instanceof XdpError && err.errno === 16 /* EBUSY */) {
        throw new XdpError(
          `${err.message}: the interface's program is held by a bpf link another process owns, or runs in a different mode`,
          { device: target.device, netns: target.netns, errno: err.errno, cause: err },
        );
      }
      throw err;
    }
  }
}

/** `<netns>@<device>`, each encoded ('' for this process's namespace). */
function recordKey(target: XdpTarget): string {
  return `${encodeName(target.netns ?? '')}@${encodeName(target.device)}`;
}

function encodeName(text: string): string {
  return encodeURIComponent(text).replaceAll('.', '%2E');
}

/**
 * Pins every map of a loaded object under <dir>/maps/<name>, replacing what a previous program
 * on this interface left there (the directory belongs to this attachment). libbpf's internal
 * maps (.rodata, .bss) are skipped: their names have dots, which bpffs refuses.
 */
function pinObjectMaps(object: BpfObject, dir: string): string[] {
  const mapsDir = join(dir, 'maps');
  rmSync(mapsDir, { recursive: true, force: true });
  mkdirSync(mapsDir, { recursive: true });
  const pinned: string[] = [];
  for (const info of object.maps) {
    if (info.name.includes('.')) continue;
    const path = join(mapsDir, info.name);
    const map = BpfMap.fromObject(object, info.name);
    try {
      map.pin(path);
      pinned.push(path);
    } finally {
      map.close();
    }
  }
  return pinned;
}

/** Removes an attachment's directory and, when it was the last one there, its namespace's. */
function removePinDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  const parent = join(dir, '..');
  if (listDir(parent).length === 0) rmSync(parent, { recursive: true, force: true });
}

function parseRecordName(name: string): Omit<Record_, 'path' | 'dir'> | undefined {
  const match = /^(link|prog)@([^@]*)@([^@]+)$/.exec(name);
  if (!match) return undefined;
  const netns = decodeURIComponent(match[2]!);
  return {
    netns: netns === '' ? undefined : netns,
    device: decodeURIComponent(match[3]!),
    kind: match[1] === 'link' ? 'pinned-link' : 'netlink',
  };
}

function queryMode(query: XdpQuery): XdpMode {
  if (query.mode === 'skb') return 'skb';
  if (query.mode === 'offload') return 'offload';
  return 'native';
}

function queryModeFlags(query: XdpQuery): number {
  return modeFlags(queryMode(query));
}

function safeQuery(target: XdpTarget): XdpQuery | undefined {
  try {
    return xdpQuery(target);
  } catch {
    return undefined;
  }
}

function safeProgName(id: number): string | undefined {
  try {
    return programInfo({ id }).name;
  } catch {
    return undefined;
  }
}

function where(target: { device: string; netns?: string | undefined }): string {
  return `interface '${target.device}'${target.netns === undefined ? '' : ` in netns '${target.netns}'`}`;
}
