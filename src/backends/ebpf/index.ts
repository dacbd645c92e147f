/** The public eBPF/XDP API of thunderpac (the package entry re-exports this). */
export { Acl, ACL_MAX_RULES, type AclAction, type AclCounter, type AclRule } from './acl.js';
export { createBpfBuild, createBpfBuildFromC, EbpfBackend } from './backend.js';
export { codecFromBtf, keyCodecFromBtf } from './btf.js';
export * as codec from './codec.js';
export type { Codec } from './codec.js';
export { compileBpfC } from './compile.js';
export {
  AddonUnavailableError,
  BpfError,
  type BpfErrorCode,
  ClosedHandleError,
  CodecError,
  MalformedObjectError,
  type MalformedObjectCheck,
  MapError,
  VerifierError,
  XdpBusyError,
  XdpError,
} from './errors.js';
export {
  BpfLink,
  enableRunStats,
  programInfo,
  XDP_FLAGS,
  type XdpMode,
  type XdpTarget,
  xdpQuery,
} from './link.js';
export { BPF_F_NO_PREALLOC, BpfMap, MAP_TYPES, type MapTypeName, sumPerCpu, type UpdateMode } from './map.js';
export { BpfObject, libbpfVersion, numPossibleCpus, testRunFd, type XdpAction } from './object.js';
export { DROP_EVENT, decodeDropEvent, type DropEvent, type RateRule, RateLimiter } from './ratelimit.js';
export { RingBuffer, type RingBufferOptions } from './ringbuf.js';
export {
  attachmentDir,
  attachmentMapPath,
  DEFAULT_BPFFS_ROOT,
  findAttachmentMaps,
  type XdpAttachment,
  type XdpAttachOptions,
  XdpManager,
} from './xdp.js';
