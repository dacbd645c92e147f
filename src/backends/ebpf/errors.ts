/**
 * Typed errors of the eBPF backend. The native addon throws plain Errors carrying a stable
 * `code` (EBPF_*), `errno` and extra fields; `callNative` turns them into these classes in one
 * place, so nothing above this module ever sees a raw native error.
 */
import { constants as osConstants } from 'node:os';
import { ThunderpacError } from '../../runtime/errors.js';

export type BpfErrorCode =
  | 'EBPF_ADDON_MISSING' // the native addon is not built or cannot be loaded
  | 'EBPF_OPEN' // the ELF object cannot be opened or parsed
  | 'EBPF_MALFORMED_OBJECT' // the object's ELF, BTF or BTF.ext structure is invalid (checked before libbpf parses it)
  | 'EBPF_LOAD' // loading into the kernel failed for a reason other than the verifier
  | 'EBPF_VERIFIER' // the kernel verifier rejected a program
  | 'EBPF_CLOSED' // the object was closed
  | 'EBPF_STATE' // wrong state for the operation (not loaded, loaded twice, failed load)
  | 'EBPF_NOT_FOUND' // no program or map of that name
  | 'EBPF_TEST_RUN' // BPF_PROG_TEST_RUN failed
  | 'EBPF_MAP' // a map operation failed
  | 'EBPF_INVALID_ARG' // an argument of the wrong type or size
  | 'EBPF_CODEC' // a key or value does not fit the map's layout (struct codec)
  | 'EBPF_XDP' // attaching, replacing, detaching or querying XDP failed
  | 'EBPF_XDP_BUSY' // the interface already runs a program and replacement was not asked for
  | 'EBPF_SYSTEM'; // any other system failure

export interface BpfErrorDetails {
  readonly errno?: number | undefined;
  /** libbpf warnings printed during the failed call (verifier logs elided, see VerifierError). */
  readonly libbpfLog?: string | undefined;
  readonly objectName?: string | undefined;
  /** What the failure is about, when the addon says: a file, a program or a map. */
  readonly path?: string | undefined;
  readonly program?: string | undefined;
  readonly map?: string | undefined;
  readonly cause?: unknown;
}

export class BpfError extends ThunderpacError {
  declare readonly code: BpfErrorCode;
  /** Positive errno (libc, or libbpf's own >= 4000), when the failure has one. */
  readonly errno: number | undefined;
  readonly libbpfLog: string | undefined;
  readonly objectName: string | undefined;
  readonly path: string | undefined;
  readonly program: string | undefined;
  readonly map: string | undefined;

  constructor(code: BpfErrorCode, message: string, details: BpfErrorDetails = {}) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.errno = details.errno;
    this.libbpfLog = details.libbpfLog;
    this.objectName = details.objectName;
    this.path = details.path;
    this.program = details.program;
    this.map = details.map;
  }
}

/** How many trailing lines of the verifier log go into the message (the log itself is whole). */
const VERIFIER_MESSAGE_TAIL_LINES = 6;

/** The kernel verifier refused a program. `log` is the complete verifier log, never truncated. */
export class VerifierError extends BpfError {
  declare readonly program: string;
  readonly log: string;

  constructor(program: string, log: string, details: BpfErrorDetails = {}) {
    const tail = lastLines(log, VERIFIER_MESSAGE_TAIL_LINES)
      .map((line) => `  ${line}`)
      .join('\n');
    super(
      'EBPF_VERIFIER',
      `BPF verifier rejected program '${program}'${errnoSuffix(details.errno)}:\n${tail}`,
      { ...details, program },
    );
    this.log = log;
  }
}

/** A BpfObject (or other native handle) was used after close(). */
export class ClosedHandleError extends BpfError {
  constructor(message: string, details: BpfErrorDetails = {}) {
    super('EBPF_CLOSED', message, details);
  }
}

/** Which check refused an object: the ELF structure, its .BTF or .BTF.ext, or libbpf itself in the probe process. */
export type MalformedObjectCheck = 'elf' | 'btf' | 'btf.ext' | 'probe';

/**
 * An untrusted BPF object refused before libbpf parsed it in this process: its structure is
 * invalid (`check` 'elf', 'btf', 'btf.ext', naming the section and the byte offset in the
 * file), or libbpf crashed or hung opening it in the throw-away probe process (`check` 'probe').
 */
export class MalformedObjectError extends BpfError {
  readonly check: MalformedObjectCheck;
  /** The ELF section the problem is in, e.g. '.BTF' or '.relxdp', when known. */
  readonly section: string | undefined;
  /** Byte offset in the object file of the faulty field, when known. */
  readonly offset: number | undefined;

  constructor(
    check: MalformedObjectCheck,
    problem: string,
    where: { readonly section?: string | undefined; readonly offset?: number | undefined } = {},
    details: BpfErrorDetails = {},
  ) {
    const place = [
      where.section === undefined ? undefined : `section '${where.section}'`,
      where.offset === undefined ? undefined : `file offset ${where.offset}`,
    ].filter((part) => part !== undefined);
    const source = details.path ?? details.objectName;
    super(
      'EBPF_MALFORMED_OBJECT',
      `malformed BPF object${source === undefined ? '' : ` ${source}`}: ${problem}` +
        (place.length === 0 ? '' : ` (${place.join(', ')})`),
      details,
    );
    this.check = check;
    this.section = where.section;
    this.offset = where.offset;
  }
}

/** The native addon is missing or failed to load; the message says how to build it. */
export class AddonUnavailableError extends BpfError {
  readonly addonPath: string;

  constructor(addonPath: string, message: string, cause?: unknown) {
    super('EBPF_ADDON_MISSING', message, { cause });
    this.addonPath = addonPath;
  }
}

const BPF_ERROR_CODES: ReadonlySet<string> = new Set<BpfErrorCode>([
  'EBPF_ADDON_MISSING',
  'EBPF_OPEN',
  'EBPF_MALFORMED_OBJECT',
  'EBPF_LOAD',
  'EBPF_VERIFIER',
  'EBPF_CLOSED',
  'EBPF_STATE',
  'EBPF_NOT_FOUND',
  'EBPF_TEST_RUN',
  'EBPF_MAP',
  'EBPF_INVALID_ARG',
  'EBPF_CODEC',
  'EBPF_XDP',
  'EBPF_XDP_BUSY',
  'EBPF_SYSTEM',
]);

/**
 * A map operation failed in the kernel. `errno` says why: EEXIST (update with 'noexist' on a
 * present key), ENOENT ('exist' on a missing key), E2BIG (map full), EPERM (frozen), ...
 */
export class MapError extends BpfError {
  /** lookup, update, delete, nextKey, lookupBatch, updateBatch, deleteBatch, freeze, ... */
  readonly operation: string | undefined;
  /** For batch operations: how many elements were processed before the failure. */
  readonly completed: number | undefined;

  constructor(message: string, details: BpfErrorDetails & { operation?: string; completed?: number } = {}) {
    super('EBPF_MAP', message, details);
    this.operation = details.operation;
    this.completed = details.completed;
  }

  /** The errno's symbolic name (e.g. 'EEXIST'), when there is one. */
  get errnoName(): string | undefined {
    return this.errno === undefined ? undefined : ERRNO_NAMES.get(this.errno);
  }
}

/** A key or value that does not match the map's C layout. Raised before any syscall. */
export class CodecError extends BpfError {
  /** Where in the value the problem is, e.g. 'key.addr' or 'value[2].rate_pps'. */
  readonly field: string;

  constructor(field: string, message: string, details: BpfErrorDetails = {}) {
    super('EBPF_CODEC', `${field}: ${message}`, details);
    this.field = field;
  }
}

/** An XDP operation on an interface failed. */
export class XdpError extends BpfError {
  readonly device: string | undefined;
  readonly netns: string | undefined;

  constructor(
    message: string,
    details: BpfErrorDetails & { device?: string | undefined; netns?: string | undefined } = {},
    code: 'EBPF_XDP' | 'EBPF_XDP_BUSY' = 'EBPF_XDP',
  ) {
    super(code, message, details);
    this.device = details.device;
    this.netns = details.netns;
  }
}

/** The interface already has a program (foreign or ours) and `replace` was not given. */
export class XdpBusyError extends XdpError {
  readonly attachedProgId: number;
  readonly attachedProgName: string | undefined;

  constructor(
    message: string,
    details: BpfErrorDetails & {
      device: string;
      netns?: string | undefined;
      attachedProgId: number;
      attachedProgName?: string | undefined;
    },
  ) {
    super(message, { ...details, errno: details.errno ?? osConstants.errno.EBUSY }, 'EBPF_XDP_BUSY');
    this.attachedProgId = details.attachedProgId;
    this.attachedProgName = details.attachedProgName;
  }
}

interface NativeErrorFields {
  code?: unknown;
  errno?: unknown;
  verifierLog?: unknown;
  libbpfLog?: unknown;
  objectName?: unknown;
  path?: unknown;
  program?: unknown;
  map?: unknown;
  operation?: unknown;
  completed?: unknown;
  device?: unknown;
  netns?: unknown;
}

/** Converts an error thrown by the addon into its typed class; anything else is returned as is. */
export function fromNativeError(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof BpfError) return err;
  const fields = err as Error & NativeErrorFields;
  if (typeof fields.code !== 'string' || !BPF_ERROR_CODES.has(fields.code)) return err;
  const code = fields.code as BpfErrorCode;
  const details: BpfErrorDetails = {
    errno: asNumber(fields.errno),
    libbpfLog: asString(fields.libbpfLog),
    objectName: asString(fields.objectName),
    path: asString(fields.path),
    program: asString(fields.program),
    map: asString(fields.map),
    cause: err,
  };
  if (code === 'EBPF_VERIFIER' && details.program !== undefined && typeof fields.verifierLog === 'string') {
    return new VerifierError(details.program, fields.verifierLog, details);
  }
  if (code === 'EBPF_CLOSED') return new ClosedHandleError(err.message, details);
  if (code === 'EBPF_MAP') {
    return new MapError(err.message, {
      ...details,
      operation: asString(fields.operation),
      completed: asNumber(fields.completed),
    });
  }
  if (code === 'EBPF_XDP') {
    return new XdpError(err.message, {
      ...details,
      device: asString(fields.device),
      netns: asString(fields.netns),
    });
  }
  return new BpfError(code, err.message, details);
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function asNumber(value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined;
}

/** Runs a call into the addon, converting what it throws. */
export function callNative<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw fromNativeError(err);
  }
}

function lastLines(text: string, count: number): string[] {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  return lines.slice(-count);
}

const ERRNO_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(osConstants.errno).map(([name, value]) => [value, name] as const),
);

function errnoSuffix(errno: number | undefined): string {
  if (errno === undefined) return '';
  const name = ERRNO_NAMES.get(errno);
  return name === undefined ? ` (errno ${errno})` : ` (${name})`;
}
