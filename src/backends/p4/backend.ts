/**
 * The `p4` backend: a build holds BMv2 JSON (compiled by thunderpac's own P4 compiler from
 * P4_16 source, or produced elsewhere) and its p4info; an execution sends one packet into the
 * built-in behavioral switch on an ingress port and returns every (egress port, bytes) that
 * leaves. Verdict `forward` when at least one packet leaves, `drop` otherwise; `retval` is the
 * number of packets out.
 *
 * The switch is built once per (build, sandbox) in `prepare`. Table entries, counters and
 * registers live as long as that prepared switch, as they would on a device; entries the
 * program declares (`const entries`) are part of the build and so of its id.
 */

import { artifact, type Build, createBuild } from '../../runtime/build.js';
import { LimitExceededError, ProgramRejectedError } from '../../runtime/errors.js';
import type {
  Backend,
  Input,
  Output,
  Prepared,
  RunContext,
  SandboxSpec,
  Schema,
} from '../../runtime/types.js';
import { type CompileOptions, compileP4, P4C_VERSION } from '../../p4c/compile.js';
import { P4RuntimeError } from './errors.js';
import { BehavioralSwitch, DROP_PORT } from './switch.js';
import type { EntrySpec } from './tables.js';

export const BMV2_JSON_ARTIFACT = 'program.json';
export const P4INFO_ARTIFACT = 'p4info.json';
export const CONTROL_PLANE_ARTIFACT = 'control-plane.json';

/**
 * Control-plane state installed when the switch is prepared: part of the build (and so of its
 * id and of every receipt), so an execution replays against the same tables.
 */
export interface P4ControlPlane {
  readonly entries?: readonly ({ readonly table: string } & EntrySpec)[];
  readonly defaults?: readonly {
    readonly table: string;
    readonly action: string;
    readonly args?: readonly (bigint | number)[];
  }[];
  readonly multicastGroups?: readonly {
    readonly group: number;
    readonly replicas: readonly (number | { readonly port: number; readonly rid: number })[];
  }[];
  readonly registers?: readonly {
    readonly register: string;
    readonly index: number;
    readonly value: bigint | number;
  }[];
  /** Clone sessions (v1model clone / clone_preserving_field_list): session → port or group. */
  readonly cloneSessions?: readonly {
    readonly session: number;
    readonly target: { readonly port: number } | { readonly multicastGroup: number };
  }[];
}

const DEFAULT_PACKET_SCHEMA: Schema = {
  kind: 'packet',
  minBytes: 0,
  maxBytes: 65_535,
  maxPort: DROP_PORT - 1,
};

export interface P4BuildOptions extends Omit<CompileOptions, 'file'> {
  readonly name: string;
  /** File name for positions in errors (default `${name}.p4`). */
  readonly file?: string;
  readonly inputSchema?: Schema;
  readonly controlPlane?: P4ControlPlane;
}

const encoder = new TextEncoder();

function jsonBytes(v: unknown): Uint8Array {
  // BigInts (keys, action data) travel as 0x-strings; no P4 name can look like one.
  return encoder.encode(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x)));
}

function revive(_k: string, x: unknown): unknown {
  return typeof x === 'string' && /^0x[0-9a-f]+$/.test(x) ? BigInt(x) : x;
}

/** Compile P4_16 source and bundle the BMv2 JSON and p4info as a build. Throws P4CompileError. */
export function createP4Build(source: string, options: P4BuildOptions): Build {
  const { bmv2, p4info } = compileP4(source, { ...options, file: options.file ?? `${options.name}.p4` });
  return createBuild({
    kind: 'p4',
    name: options.name,
    source: encoder.encode(source),
    artifacts: {
      [BMV2_JSON_ARTIFACT]: { bytes: jsonBytes(bmv2), mediaType: 'application/json+bmv2' },
      [P4INFO_ARTIFACT]: { bytes: jsonBytes(p4info), mediaType: 'application/json+p4info' },
      ...(options.controlPlane
        ? {
            [CONTROL_PLANE_ARTIFACT]: {
              bytes: jsonBytes(options.controlPlane),
              mediaType: 'application/json',
            },
          }
        : {}),
    },
    inputSchema: options.inputSchema ?? DEFAULT_PACKET_SCHEMA,
    outputSchema: { kind: 'packet' },
    toolchain: { 'thunderpac-p4c': P4C_VERSION },
  });
}

/** A build from BMv2 JSON made elsewhere (e.g. by p4c); the switch checks it at prepare. */
export function createP4BuildFromJson(
  json: string | Uint8Array,
  options: { name: string; inputSchema?: Schema },
): Build {
  const bytes = typeof json === 'string' ? encoder.encode(json) : json;
  return createBuild({
    kind: 'p4',
    name: options.name,
    source: bytes,
    artifacts: { [BMV2_JSON_ARTIFACT]: { bytes, mediaType: 'application/json+bmv2' } },
    inputSchema: options.inputSchema ?? DEFAULT_PACKET_SCHEMA,
    outputSchema: { kind: 'packet' },
    toolchain: {},
  });
}

export function installControlPlane(sw: BehavioralSwitch, cp: P4ControlPlane): void {
  for (const { table, ...entry } of cp.entries ?? []) sw.addEntry(table, entry);
  for (const d of cp.defaults ?? []) sw.setDefaultAction(d.table, d.action, d.args);
  for (const g of cp.multicastGroups ?? []) sw.setMulticastGroup(g.group, g.replicas);
  for (const r of cp.registers ?? []) sw.writeRegister(r.register, r.index, r.value);
  for (const c of cp.cloneSessions ?? []) sw.setCloneSession(c.session, c.target);
}

export interface P4Prepared extends Prepared {
  /** The live switch: its table, counter, register and meter API. */
  readonly sw: BehavioralSwitch;
}

export class P4Backend implements Backend<P4Prepared> {
  readonly name = 'p4' as const;
  /** The switch runs a packet synchronously through a finite pipeline: it cannot hang. */
  readonly enforcesTimeout = true;
  readonly versions: Readonly<Record<string, string>> = { 'thunderpac-p4c': P4C_VERSION, switch: 'v1model' };

  async prepare(build: Build, sandbox: SandboxSpec): Promise<P4Prepared> {
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(artifact(build, BMV2_JSON_ARTIFACT)));
    } catch (err) {
      throw new ProgramRejectedError(
        'P4_JSON',
        'json',
        `build ${build.id}: ${BMV2_JSON_ARTIFACT} is not JSON: ${(err as Error).message}`,
      );
    }
    try {
      // Meters see a frozen clock and random() a seeded generator: executions replay.
      const sw = new BehavioralSwitch(json, { seed: sandbox.determinism.seed, clockNs: () => 0n });
      const cp = build.artifacts.get(CONTROL_PLANE_ARTIFACT);
      if (cp) installControlPlane(sw, JSON.parse(new TextDecoder().decode(cp), revive) as P4ControlPlane);
      return { buildId: build.id, backend: 'p4', sw };
    } catch (err) {
      if (err instanceof P4RuntimeError) throw new ProgramRejectedError(err.code, 'json', err.message);
      throw err;
    }
  }

  async run(prepared: P4Prepared, input: Input, ctx: RunContext): Promise<Output> {
    if (input.kind !== 'packet') {
      throw new ProgramRejectedError(
        'P4_INPUT',
        'input',
        `the p4 backend runs on packets, got '${input.kind}'`,
      );
    }
    prepared.sw.takeDigests(); // a run that threw may have left some: they are not this packet's
    const t0 = process.hrtime.bigint();
    const packets = prepared.sw.process(input.bytes, input.ingressPort ?? 0);
    ctx.usage.engineNs = Number(process.hrtime.bigint() - t0);
    let total = 0;
    for (const p of packets) total += p.bytes.byteLength;
    if (total > ctx.sandbox.limits.maxOutputBytes) {
      throw new LimitExceededError(
        'maxOutputBytes',
        ctx.sandbox.limits.maxOutputBytes,
        total,
        'packets out too large',
      );
    }
    const digests = prepared.sw.takeDigests();
    return {
      kind: 'packet',
      verdict: packets.length > 0 ? 'forward' : 'drop',
      retval: packets.length,
      packets,
      ...(digests.length > 0 && {
        digests: digests.map((d) => ({
          receiver: d.receiver,
          list: d.list,
          values: Object.fromEntries(Object.entries(d.values).map(([k, v]) => [k, `0x${v.toString(16)}`])),
        })),
      }),
    };
  }

  async dispose(_prepared: P4Prepared): Promise<void> {}

  close(): void {}
}
