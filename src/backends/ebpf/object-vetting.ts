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
import { spawn, spawnSync } from 'node:child_process';
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
/** Bytes of the probe's output kept (its last libbpf message is what matters). */
const PROBE_OUTPUT_LIMIT = 64 * 1024;

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
  const digest = digestWithinLimit(bytes, label);
  let verdict = verdicts.get(digest);
  if (verdict === undefined) {
    verdict = checkedStructure(bytes) ?? probeVerdict(runProbeSync(bytes));
    remember(digest, verdict);
  }
  throwIfDefective(verdict, label);
}

/**
 * vetBpfObject without blocking the event loop while the probe runs (for prepare(), on a
 * daemon serving other requests); BpfObject.open of the same bytes then finds the verdict.
 */
export async function vetBpfObjectAsync(bytes: Uint8Array, label: ObjectLabel = {}): Promise<void> {
  const digest = digestWithinLimit(bytes, label);
  let verdict = verdicts.get(digest);
  if (verdict === undefined) {
    verdict = checkedStructure(bytes) ?? probeVerdict(await runProbeAsync(bytes));
    remember(digest, verdict);
  }
  throwIfDefective(verdict, label);
}

/** What libbpf in the probe process did with an object that passed the checks: a crash or hang is a defect. */
export function probeInChild(bytes: Uint8Array): ObjectDefect | null {
  return probeVerdict(runProbeSync(bytes));
}

/** probeInChild without blocking the event loop. */
export async function probeInChildAsync(bytes: Uint8Array): Promise<ObjectDefect | null> {
  return probeVerdict(await runProbeAsync(bytes));
}

function digestWithinLimit(bytes: Uint8Array, label: ObjectLabel): string {
  if (bytes.byteLength > MAX_BPF_OBJECT_BYTES) {
    throw new MalformedObjectError(
      'elf',
      `${bytes.byteLength} bytes exceeds the ${MAX_BPF_OBJECT_BYTES}-byte limit for a BPF object`,
      {},
      label,
    );
  }
  return createHash('sha256').update(bytes).digest('hex');
}

function remember(digest: string, verdict: ObjectDefect | null): void {
  if (verdicts.size >= MAX_REMEMBERED_VERDICTS) verdicts.delete(verdicts.keys().next().value as string);
  verdicts.set(digest, verdict);
  if (verdict === null) return;
  if (verdict.check === 'probe') vettingStats.refusedByProbe++;
  else vettingStats.refusedByChecks++;
}

function throwIfDefective(verdict: ObjectDefect | null, label: ObjectLabel): void {
  if (verdict !== null) throw new MalformedObjectError(verdict.check, verdict.problem, verdict, label);
}

/** The structural defect, or undefined when the object passed the TypeScript gate. */
function checkedStructure(bytes: Uint8Array): ObjectDefect | undefined {
  vettingStats.checked++;
  try {
    checkStructure(bytes);
    return undefined;
  } catch (err) {
    if (err instanceof ObjectDefect) return err;
    throw err;
  }
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

interface ProbeOutcome {
  readonly path: string;
  readonly timedOut: boolean;
  readonly signal: string | null;
  readonly status: number | null;
  readonly error: Error | undefined;
  readonly stderr: string;
}

const PROBE_ARGS = ['--load'];

function existingProbe(): string {
  const path = probePath();
  if (!existsSync(path)) {
    throw new AddonUnavailableError(
      path,
      `the BPF object probe is missing at ${path}: build it with \`npm run build:native\` (it is built with the addon), or point ${PROBE_PATH_ENV} at it`,
    );
  }
  vettingStats.probeRuns++;
  return path;
}

/** The process gate: libbpf opens and loads the bytes in a child; only a clean exit passes. */
function runProbeSync(bytes: Uint8Array): ProbeOutcome {
  const path = existingProbe();
  const result = spawnSync(path, PROBE_ARGS, {
    input: bytes,
    timeout: PROBE_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    // libbpf prints a few lines per program and map; far more output is its own failure.
    maxBuffer: 16 * 1024 * 1024,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const timedOut = (result.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  return {
    path,
    timedOut,
    signal: result.signal,
    status: result.status,
    error: timedOut ? undefined : result.error,
    stderr: result.stderr?.toString('utf8') ?? '',
  };
}

function runProbeAsync(bytes: Uint8Array): Promise<ProbeOutcome> {
  const path = existingProbe();
  return new Promise((resolve) => {
    const child = spawn(path, PROBE_ARGS, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    let failure: Error | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, PROBE_TIMEOUT_MS);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      // Only the last message matters; keep a bounded tail.
      stderr = (stderr + chunk).slice(-PROBE_OUTPUT_LIMIT);
    });
    // The probe may exit (or die) before reading everything: EPIPE is its verdict's business.
    child.stdin.on('error', () => {});
    child.stdin.end(bytes);
    child.on('error', (err) => {
      failure = err;
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({
        path,
        timedOut,
        signal: timedOut ? null : signal,
        status,
        error: failure,
        stderr,
      });
    });
  });
}

function probeVerdict(outcome: ProbeOutcome): ObjectDefect | null {
  const lastMessage = lastLine(outcome.stderr);
  const during = lastMessage === undefined ? '' : `; its last message: ${lastMessage}`;
  if (outcome.timedOut) {
    return new ObjectDefect(
      'probe',
      `libbpf did not finish opening it within ${PROBE_TIMEOUT_MS} ms${during}`,
    );
  }
  if (outcome.error !== undefined || (outcome.signal === null && outcome.status !== 0)) {
    const reason = outcome.error?.message ?? `exit status ${outcome.status}${during}`;
    throw new BpfError('EBPF_SYSTEM', `the BPF object probe ${outcome.path} failed: ${reason}`, {
      errno: osConstants.errno.EIO,
      cause: outcome.error,
    });
  }
  if (outcome.signal !== null) {
    return new ObjectDefect(
      'probe',
      `libbpf crashed opening it (${outcome.signal} in the probe process)${during}`,
    );
  }
  return null;
}

function lastLine(output: string): string | undefined {
  const lines = output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const last = lines.at(-1);
  return last === undefined ? undefined : last.slice(0, 300);
}
