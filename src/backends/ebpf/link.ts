/**
 * XDP attachment primitives over the addon: bpf links (BPF_LINK_CREATE, pinnable, atomically
 * updatable) and netlink attach/detach/query with expected-program replacement. Every call
 * takes an optional network namespace (a name under /var/run/netns or a path): the addon
 * switches the calling thread into it for that one call (native/src/netns.h says why).
 */
import { closeSync } from 'node:fs';
import { loadAddon } from './addon.js';
import type { NativeBpfLink, NativeLinkInfo, NativeProgInfo, NativeXdpQuery } from './addon.js';
import { callNative } from './errors.js';

export type XdpMode = 'native' | 'skb' | 'offload';

/** XDP_FLAGS_* of linux/if_link.h. */
export const XDP_FLAGS = {
  updateIfNoExist: 1,
  skb: 2,
  native: 4,
  offload: 8,
  replace: 16,
} as const;

/** XDP_ATTACHED_* (bpf_xdp_query attach_mode). */
export const XDP_ATTACHED = ['none', 'native', 'skb', 'offload', 'multi'] as const;

export function modeFlags(mode: XdpMode): number {
  return XDP_FLAGS[mode];
}

export interface XdpTarget {
  readonly device: string;
  /** Network namespace name (/var/run/netns/NAME) or path; absent = this process's. */
  readonly netns?: string | undefined;
}

export type XdpQuery = NativeXdpQuery & { readonly mode: (typeof XDP_ATTACHED)[number] };
export type ProgramInfo = NativeProgInfo;
export type LinkInfo = NativeLinkInfo;

function target(t: XdpTarget): { ifname: string; netns?: string } {
  return t.netns === undefined ? { ifname: t.device } : { ifname: t.device, netns: t.netns };
}

export function xdpQuery(t: XdpTarget): XdpQuery {
  const addon = loadAddon();
  const result = callNative(() => addon.xdpQuery(target(t)));
  return { ...result, mode: XDP_ATTACHED[result.attachMode] ?? 'none' };
}

/** Netlink attach. With expectedProgId the swap is atomic and fails if another program got there first. */
export function xdpAttachNetlink(
  t: XdpTarget,
  progFd: number,
  options: { readonly flags?: number; readonly expectedProgId?: number } = {},
): void {
  const addon = loadAddon();
  callNative(() => addon.xdpAttach({ ...target(t), progFd, ...options }));
}

export function xdpDetachNetlink(
  t: XdpTarget,
  options: { readonly flags?: number; readonly expectedProgId?: number } = {},
): void {
  const addon = loadAddon();
  callNative(() => addon.xdpDetach({ ...target(t), ...options }));
}

export function programInfo(ref: { fd: number } | { id: number } | { pinned: string }): ProgramInfo {
  const addon = loadAddon();
  return callNative(() => addon.progInfo(ref));
}

export function pinProgram(progFd: number, path: string): void {
  const addon = loadAddon();
  callNative(() => addon.progPin(progFd, path));
}

/**
 * Turns on the kernel's per-program run statistics (run count, run time: programInfo) until
 * the returned handle is closed; without it those counters stay 0. Several holders may overlap.
 */
export function enableRunStats(): { close(): void } {
  const addon = loadAddon();
  const fd = callNative(() => addon.enableStats());
  let open = true;
  return {
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** A bpf link: the attachment lives while any fd or pin of the link does. */
export class BpfLink {
  readonly #native: NativeBpfLink;

  private constructor(native: NativeBpfLink) {
    this.#native = native;
  }

  static createXdp(t: XdpTarget, progFd: number, mode: XdpMode): BpfLink {
    const addon = loadAddon();
    return new BpfLink(
      callNative(() => new addon.BpfLink({ xdp: { ...target(t), progFd, flags: modeFlags(mode) } })),
    );
  }

  static openPinned(path: string): BpfLink {
    const addon = loadAddon();
    return new BpfLink(callNative(() => new addon.BpfLink({ pinned: path })));
  }

  info(): LinkInfo {
    return callNative(() => this.#native.info());
  }

  pin(path: string): void {
    callNative(() => this.#native.pin(path));
  }

  /** Atomically swaps the program; with expectedProgId, only if that one is still attached. */
  update(progFd: number, expectedProgId?: number): void {
    callNative(() => this.#native.update(progFd, expectedProgId));
  }

  /** Detaches the program now (the link object lingers, defunct, until closed and unpinned). */
  detach(): void {
    callNative(() => this.#native.detach());
  }

  close(): void {
    this.#native.close();
  }
}
