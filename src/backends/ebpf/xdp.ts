/**
 * XdpManager: attaches XDP programs to interfaces and remembers what it attached, so it can
 * always be found and removed again, including after the process that attached it died.
 *
 * Three lifetimes, chosen per attach:
 *   - process (default): a bpf link held by this process; the kernel detaches it when the
 *     process exits or crashes, so nothing can leak;
 *   - pin: a bpf link pinned at <root>/xdp/link@<netns>@<device>; outlives the process until
 *     detach() or clean();
 *   - netlink: a classic netlink attachment (what `ip link set xdp` makes), needed to take
 *     over an interface that already runs a foreign netlink program; recorded by pinning the
 *     program at <root>/xdp/prog@<netns>@<device> so detach/clean can prove it is still ours
 *     (detaching with XDP_FLAGS_REPLACE + that program, atomically, never someone else's).
 *
 * bpffs holds only BPF objects, so the record *is* the pin; its name says where it is attached
 * (bpffs refuses '.' in names, so names are URI-encoded with '.' escaped too).
 * An interface that already runs a program refuses a second attach with XdpBusyError unless
 * `replace` is given; replacement is atomic (link update or netlink REPLACE with the expected
 * old program), so there is never a moment with no program on the interface.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
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
  /** The program id this attach replaced, if any. */
  readonly replacedProgId?: number;
}

export interface XdpStatusEntry {
  readonly device: string;
  readonly netns: string | undefined;
  readonly kind: AttachmentKind;
  readonly pinPath?: string;
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
}

export class XdpManager {
  readonly root: string;
  readonly #live = new Map<string, { link: BpfLink; attachment: XdpAttachment }>();

  constructor(options: { readonly root?: string } = {}) {
    this.root = options.root ?? DEFAULT_BPFFS_ROOT;
  }

  get #dir(): string {
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
    return this.attachFd(program.fd, options);
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
      const pinPath = this.#recordPath(key, 'prog');
      this.#ensureDir();
      pinProgram(progFd, pinPath);
      return { ...base, kind: 'netlink', pinPath };
    }
    const link = this.#withMessage(options, () => BpfLink.createXdp(options, progFd, mode));
    if (options.pin === true) {
      const pinPath = this.#recordPath(key, 'link');
      try {
        this.#ensureDir();
        link.pin(pinPath);
      } catch (err) {
        link.close(); // never leave an unrecorded attachment behind
        throw err;
      }
      link.close();
      return { ...base, kind: 'pinned-link', pinPath };
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
   * (interface or namespace gone) just deleted. What a killed process left behind goes away.
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
      return { ...base, kind: 'pinned-link', pinPath: record.path, replacedProgId: current.progId };
    }
    // A netlink program (ours or foreign): swap atomically, then record the new one.
    this.#withMessage(options, () =>
      xdpAttachNetlink(options, progFd, { flags: queryModeFlags(current), expectedProgId: current.progId }),
    );
    if (record !== undefined) rmSync(record.path, { force: true });
    const pinPath = this.#recordPath(key, 'prog');
    this.#ensureDir();
    pinProgram(progFd, pinPath);
    return { ...base, mode: queryMode(current), kind: 'netlink', pinPath, replacedProgId: current.progId };
  }

  #describeExisting(key: string, base: Omit<XdpAttachment, 'kind'>): XdpAttachment {
    const live = this.#live.get(key);
    if (live !== undefined) return live.attachment;
    const record = this.#records().find((candidate) => recordKey(candidate) === key);
    if (record !== undefined) return { ...base, kind: record.kind, pinPath: record.path };
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
    let names: string[];
    try {
      names = readdirSync(this.#dir);
    } catch {
      return [];
    }
    return names.flatMap((name) => {
      const parsed = parseRecordName(name);
      return parsed === undefined ? [] : [{ ...parsed, path: join(this.#dir, name) }];
    });
  }

  #forget(key: string): void {
    for (const record of this.#records()) if (recordKey(record) === key) rmSync(record.path, { force: true });
  }

  #recordPath(key: string, suffix: 'link' | 'prog'): string {
    return join(this.#dir, `${suffix}@${key}`);
  }

  #ensureDir(): void {
    mkdirSync(this.#dir, { recursive: true });
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

function parseRecordName(name: string): Omit<Record_, 'path'> | undefined {
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
