/**
 * Vetting of BPF objects before libbpf parses them in this process. libbpf 1.1 crashes
 * (SIGSEGV) or loops on some malformed objects, and a crash here would end the host. So every
 * object — a user's, a compiled one or a shipped one alike — passes two gates first:
 *
 * 1. the structural checks in TypeScript (elf-check.ts, btf-check.ts), which name the section
 *    and file offset of what is wrong;
 * 2. libbpf itself, opening and loading the same bytes in a throw-away process
 *    (build/Release/thunderpac_bpf_probe): a hand-written check can never be proven to cover
 *    every libbpf bug, a process boundary can. A probe killed by a signal or stopped by the
 *    timeout means the object must not be opened here.
 *
 * The verdict is kept by the object's SHA-256, so each distinct object pays for the probe once
 * per process.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import { addonPath } from './addon.js';
import { checkBtf, checkBtfExt } from './btf-check.js';
import { checkBpfElf, SHT_NOBITS } from './elf-check.js';
import { AddonUnavailableError, BpfError, MalformedObjectError } from './errors.js';
import { ObjectDefect } from './object-defect.js';

/** Larger objects are refused before anything reads them (the largest shipped one is ~28 KiB). */
export const MAX_BPF_OBJECT_BYTES = 64 * 1024 * 1024;
/** Opening and verifying a legitimate object takes milliseconds; a hung libbpf never returns. */
const PROBE_TIMEOUT_MS = 20_000;
/** Verdicts remembered, by object digest (oldest forgotten first). */
const MAX_REMEMBERED_VERDICTS = 512;
const PROBE_PATH_ENV = 'THUNDERPAC_BPF_PROBE';

/** Names the object in errors: the file it was read from, or the object name given for bytes. */
export interface ObjectLabel {
  readonly path?: string | undefined;
  readonly objectName?: string | undefined;
}

/** null: the object passed both gates. */
const verdicts = new Map<string, ObjectDefect | null>();

/** Counts of what each gate refused, for tests and reports. */
export const vettingStats = { checked: 0, refusedByChecks: 0, refusedByProbe: 0, probeRuns: 0 };

/** Throws MalformedObjectError unless libbpf may safely parse `bytes` in this process. */
export function vetBpfObject(bytes: Uint8Array, label: ObjectLabel = {}): void {
  if (bytes.byteLength > MAX_BPF_OBJECT_BYTES) {
    throw new MalformedObjectError(
      'elf',
      `${bytes.byteLength} bytes exceeds the ${MAX_BPF_OBJECT_BYTES}-byte limit for a BPF object`,
      {},
      label,
    );
  }
  const digest = createHash('sha256').update(bytes).digest('hex');
  let verdict = verdicts.get(digest);
  if (verdict === undefined) {
    verdict = judge(bytes);
    if (verdicts.size >= MAX_REMEMBERED_VERDICTS) verdicts.delete(verdicts.keys().next().value as string);
    verdicts.set(digest, verdict);
  }
  if (verdict !== null) {
    throw new MalformedObjectError(verdict.check, verdict.problem, verdict, label);
  }
}

function judge(bytes: Uint8Array): ObjectDefect | null {
  vettingStats.checked++;
  try {
    checkStructure(bytes);
  } catch (err) {
    if (!(err instanceof ObjectDefect)) throw err;
    vettingStats.refusedByChecks++;
    return err;
  }
  const defect = probeInChild(bytes);
  if (defect !== null) vettingStats.refusedByProbe++;
  return defect;
}

/** The TypeScript gate: ELF structure, then .BTF and .BTF.ext when the object has them. */
export function checkStructure(bytes: Uint8Array): void {
  const layout = checkBpfElf(bytes);
  const btfSection = layout.section('.BTF');
  if (btfSection === undefined || btfSection.type === SHT_NOBITS) return;
  const btfBytes = bytes.subarray(btfSection.offset, btfSection.offset + btfSection.size);
  const btf = checkBtf({ name: '.BTF', bytes: btfBytes, fileOffset: btfSection.offset });
  const extSection = layout.section('.BTF.ext');
  if (extSection === undefined || extSection.type === SHT_NOBITS) return;
  const btfView = new DataView(btfBytes.buffer, btfBytes.byteOffset, btfBytes.byteLength);
  const stringsStart = btfView.getUint32(4, true) + btfView.getUint32(16, true);
  const btfString = (offset: number): string => {
    const start = stringsStart + offset;
    return Buffer.from(
      btfBytes.buffer,
      btfBytes.byteOffset + start,
      btfBytes.indexOf(0, start) - start,
    ).toString('latin1');
  };
  checkBtfExt(
    {
      name: '.BTF.ext',
      bytes: bytes.subarray(extSection.offset, extSection.offset + extSection.size),
      fileOffset: extSection.offset,
    },
    btf,
    btfString,
    (name) => layout.section(name)?.size,
  );
}

export function probePath(): string {
  return process.env[PROBE_PATH_ENV] ?? join(dirname(addonPath()), 'thunderpac_bpf_probe');
}

/** The process gate: libbpf opens and loads the bytes in a child; only a clean exit passes. */
export function probeInChild(bytes: Uint8Array): ObjectDefect | null {
  const path = probePath();
  if (!existsSync(path)) {
    throw new AddonUnavailableError(
      path,
      `the BPF object probe is missing at ${path}: build it with \`npm run build:native\` (it is built with the addon), or point ${PROBE_PATH_ENV} at it`,
    );
  }
  vettingStats.probeRuns++;
  const result = spawnSync(path, ['--load'], {
    input: bytes,
    timeout: PROBE_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    maxBuffer: 1024 * 1024,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lastMessage = lastLine(result.stderr);
  const during = lastMessage === undefined ? '' : `; its last message: ${lastMessage}`;
  if (result.error !== undefined && (result.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') {
    return new ObjectDefect(
      'probe',
      `libbpf did not finish opening it within ${PROBE_TIMEOUT_MS} ms${during}`,
    );
  }
  if (result.signal !== null) {
    return new ObjectDefect(
      'probe',
      `libbpf crashed opening it (${result.signal} in the probe process)${during}`,
    );
  }
  if (result.error !== undefined || result.status !== 0) {
    const reason = result.error?.message ?? `exit status ${result.status}${during}`;
    throw new BpfError('EBPF_SYSTEM', `the BPF object probe ${path} failed: ${reason}`, {
      errno: osConstants.errno.EIO,
      cause: result.error,
    });
  }
  return null;
}

function lastLine(output: Buffer | null): string | undefined {
  if (output === null) return undefined;
  const lines = output
    .toString('utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const last = lines.at(-1);
  return last === undefined ? undefined : last.slice(0, 300);
}
