/**
 * The `ebpf` backend: a build holding a BPF ELF object; an execution runs one of its XDP
 * programs on one packet in the kernel (BPF_PROG_TEST_RUN) and returns the verdict and the
 * packet as the program left it.
 *
 * The object is opened and loaded once per (build, sandbox) in `prepare`; the verifier runs
 * there, so a program the kernel rejects fails the execution with the full verifier log.
 * Maps live as long as the prepared object: a counting program keeps counting across
 * executions, as it would on a NIC. The verdict and bytes, not map state, are the output.
 */

import { artifact, type Build, createBuild } from '../../runtime/build.js';
import { LimitExceededError, ProgramRejectedError } from '../../runtime/errors.js';
import type {
  Backend,
  Input,
  Output,
  Prepared,
  PreparedCost,
  RunContext,
  SandboxSpec,
  Schema,
} from '../../runtime/types.js';
import { type CompileOptions, compileBpfC } from './compile.js';
import { BpfObject, libbpfVersion } from './object.js';
import { vetBpfObjectAsync } from './object-vetting.js';

export const BPF_OBJECT_ARTIFACT = 'object.o';

/** XDP's limit for a linear test-run packet is a page minus headroom and skb_shared_info. */
const DEFAULT_PACKET_SCHEMA: Schema = { kind: 'packet', minBytes: 14, maxBytes: 3_520 };

export interface BpfBuildOptions {
  readonly name: string;
  readonly inputSchema?: Schema;
  /** How the object was produced (e.g. { clang: '14.0.6' }) when thunderpac compiled it. */
  readonly toolchain?: Readonly<Record<string, string>>;
  /** What the user handed in, when it was not the object itself (e.g. the C source). */
  readonly source?: Uint8Array;
}

export function createBpfBuild(object: Uint8Array, options: BpfBuildOptions): Build {
  return createBuild({
    kind: 'ebpf',
    name: options.name,
    source: options.source ?? object,
    artifacts: { [BPF_OBJECT_ARTIFACT]: { bytes: object, mediaType: 'application/x-bpf-elf' } },
    inputSchema: options.inputSchema ?? DEFAULT_PACKET_SCHEMA,
    outputSchema: { kind: 'packet' },
    toolchain: options.toolchain ?? {},
  });
}

/** A build from BPF C source: compiled with clang (compile.ts), the source digest is the C text's. */
export function createBpfBuildFromC(source: string, options: BpfBuildOptions & CompileOptions): Build {
  const compiled = compileBpfC(source, options);
  return createBpfBuild(compiled.object, {
    ...options,
    source: new TextEncoder().encode(source),
    toolchain: { ...compiled.toolchain, ...options.toolchain },
  });
}

export interface EbpfPrepared extends Prepared {
  readonly object: BpfObject;
}

export class EbpfBackend implements Backend<EbpfPrepared> {
  readonly name = 'ebpf' as const;
  /** A test-run is one synchronous syscall on a verifier-bounded program: it cannot hang. */
  readonly enforcesTimeout = true;
  readonly #open = new Set<BpfObject>();

  /** Read once; a machine without the addon still gets a WASM-only runtime. */
  readonly versions: Readonly<Record<string, string>> = { libbpf: safeLibbpfVersion() };

  async prepare(build: Build, _sandbox: SandboxSpec): Promise<EbpfPrepared> {
    const bytes = artifact(build, BPF_OBJECT_ARTIFACT);
    const objectName = build.manifest.name.slice(0, 15);
    // The probe process runs off the event loop here; open() below then finds its verdict.
    await vetBpfObjectAsync(bytes, { objectName });
    const object = BpfObject.open(bytes, { objectName });
    try {
      object.load();
    } catch (err) {
      object.close();
      throw err;
    }
    this.#open.add(object);
    return { buildId: build.id, backend: 'ebpf', object };
  }

  async run(prepared: EbpfPrepared, input: Input, ctx: RunContext): Promise<Output> {
    if (input.kind !== 'packet') {
      throw new ProgramRejectedError(
        'EBPF_INPUT',
        'input',
        `the ebpf backend runs on packets, got '${input.kind}'`,
      );
    }
    const program = prepared.object.program(ctx.entry);
    if (program.typeName !== 'xdp') {
      throw new ProgramRejectedError(
        'EBPF_PROGRAM_TYPE',
        'program-type',
        `program '${ctx.entry}' is ${program.typeName}; executions run XDP programs`,
        ctx.entry,
      );
    }
    const result = prepared.object.testRun(ctx.entry, input.bytes, {
      // Room for the program to grow the packet, but never past what the sandbox may return.
      dataOutSize: Math.min(input.bytes.byteLength + 4096, ctx.sandbox.limits.maxOutputBytes),
    });
    ctx.usage.engineNs = result.durationNs;
    if (result.truncated) {
      throw new LimitExceededError(
        'maxOutputBytes',
        ctx.sandbox.limits.maxOutputBytes,
        result.dataSize,
        'output packet too large',
      );
    }
    const verdict = result.action ?? 'XDP_ABORTED';
    // DROP and ABORTED emit nothing; PASS hands the packet to the stack and TX sends it back
    // out of the ingress port: both leave with the bytes the program wrote.
    const emits = verdict === 'XDP_PASS' || verdict === 'XDP_TX' || verdict === 'XDP_REDIRECT';
    return {
      kind: 'packet',
      verdict,
      retval: result.retval,
      packets: emits ? [{ port: input.ingressPort ?? 0, bytes: result.data }] : [],
    };
  }

  async dispose(prepared: EbpfPrepared): Promise<void> {
    prepared.object.close();
    this.#open.delete(prepared.object);
  }

  /**
   * A loaded object holds one fd per loaded program and per map, plus its BTF; its maps hold
   * kernel memory (estimated as entries × (key + value)). The executor's prepared-program
   * cache counts these against its budgets.
   */
  cost(prepared: EbpfPrepared): PreparedCost {
    const { programs, maps } = prepared.object;
    let fds = 1;
    let bytes = 0;
    for (const p of programs) if (p.fd !== null) fds++;
    for (const m of maps) {
      if (m.fd !== null) fds++;
      bytes += m.maxEntries * (m.keySize + m.valueSize);
    }
    return { fds, bytes };
  }

  close(): void {
    for (const object of this.#open) object.close();
    this.#open.clear();
  }
}

function safeLibbpfVersion(): string {
  try {
    return libbpfVersion();
  } catch {
    return 'unavailable';
  }
}
