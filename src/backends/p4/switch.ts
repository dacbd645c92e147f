/**
 * The behavioral switch: executes BMv2 JSON with v1model (simple_switch) semantics, and the
 * runtime API a control plane drives it with (tables, counters, registers, meters, multicast
 * groups, clone sessions, value sets, digests).
 *
 * The pieces, each in its own module: the program compiled from the JSON (program.ts, with
 * layout.ts, parser.ts, pipeline.ts, checksum.ts, deparser.ts), the paths a packet takes
 * (packet-paths.ts), the stateful externs (externs.ts) and the replication engine's
 * configuration (replication.ts). This class ties them together.
 */

import { ThunderpacError } from '../../runtime/errors.js';
import { checkBmv2Json } from './bmv2-check.js';
import type { Digest } from './field-lists.js';
import { Deparser } from './deparser.js';
import { P4RuntimeError } from './errors.js';
import { externNamed, Externs, type MeterConfig } from './externs.js';
import type { CloneTarget } from './field-lists.js';
import { PacketPaths, type SwitchOutput } from './packet-paths.js';
import { CompiledProgram } from './program.js';
import { type Replica, Replication } from './replication.js';
import type { DirectCounterValue, EntrySpec, TableRT } from './tables.js';

export type { MeterConfig } from './externs.js';
export { MAX_EGRESS_PASSES, MAX_REENTRIES, type SwitchOutput } from './packet-paths.js';
export { DROP_PORT } from './state.js';

export interface SwitchOptions {
  /** Clock for meters, in nanoseconds; injectable for determinism (default: a frozen clock at 0). */
  readonly clockNs?: () => bigint;
  /** Seed of `random` (v1model's random extern); same seed, same sequence. */
  readonly seed?: number;
}

export class BehavioralSwitch {
  readonly program: string;
  readonly #compiled: CompiledProgram;
  readonly #externs: Externs;
  readonly #replication = new Replication();
  readonly #paths: PacketPaths;

  constructor(json: unknown, options: SwitchOptions = {}) {
    const j = json as { header_types?: unknown; headers?: unknown; pipelines?: unknown } | null;
    if (!j || !Array.isArray(j.header_types) || !Array.isArray(j.headers) || !Array.isArray(j.pipelines)) {
      throw new P4RuntimeError(
        'P4_JSON',
        'not a BMv2 JSON program: header_types, headers and pipelines are required',
      );
    }
    // Every field the switch reads, checked with its bounds before anything is built from it.
    checkBmv2Json(j);
    const where = { path: 'externs' };
    try {
      this.#externs = new Externs(j, options.clockNs ?? (() => 0n), options.seed ?? 0);
      this.#compiled = new CompiledProgram(j, this.#externs, where);
      this.program = this.#compiled.name;
      where.path = 'deparsers[0]';
      const deparser = new Deparser(this.#compiled.layouts, this.#compiled.emitOrder);
      where.path = 'pipelines';
      this.#paths = new PacketPaths(this.#compiled, deparser, this.#replication);
    } catch (err) {
      // A refusal names the part of the JSON it is in. What the check let through and the
      // compilation could not handle is still a refused program, never an INTERNAL TypeError
      // (the fuzz target treats "cannot load" as a finding).
      // (A const entry the table API refuses, P4_ACTION_DATA say, is a bad program too.)
      if (err instanceof P4RuntimeError) {
        const code = err.code === 'P4_JSON' ? '' : ` (${err.code})`;
        throw new P4RuntimeError('P4_JSON', `BMv2 JSON ${where.path}: ${err.message}${code}`);
      }
      if (err instanceof ThunderpacError) throw err;
      const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      throw new P4RuntimeError('P4_JSON', `BMv2 JSON ${where.path}: the switch cannot load it (${what})`);
    }
  }

  /**
   * Run one packet through the switch; returns the packets that leave, in order. Copies made
   * along the way (clones, multicast replicas) pass egress right after the ingress that made
   * them, the clone first; resubmitted and recirculated packets re-enter ingress after that,
   * in order. Digests are kept for takeDigests().
   */
  process(bytes: Uint8Array, ingressPort: number): SwitchOutput[] {
    return this.#paths.process(bytes, ingressPort);
  }

  // ------------------------------------------------------------ tables

  table(name: string): TableRT {
    const tables = this.#compiled.tables;
    const t = tables.get(name) ?? [...tables.values()].find((x) => x.name.split('.').pop() === name);
    if (!t)
      throw new P4RuntimeError(
        'P4_TABLE_UNKNOWN',
        `no table '${name}' (tables: ${[...tables.keys()].join(', ')})`,
      );
    return t;
  }

  get tableNames(): string[] {
    return [...this.#compiled.tables.keys()];
  }

  addEntry(table: string, spec: EntrySpec): number {
    return this.table(table).addEntry(spec);
  }

  modifyEntry(table: string, handle: number, action: string, args?: readonly (bigint | number)[]): void {
    this.table(table).modifyEntry(handle, action, args);
  }

  deleteEntry(table: string, handle: number): void {
    this.table(table).deleteEntry(handle);
  }

  setDefaultAction(table: string, action: string, args?: readonly (bigint | number)[]): void {
    this.table(table).setDefault(action, args);
  }

  readDirectCounter(table: string, handle: number): DirectCounterValue {
    return this.table(table).readDirectCounter(handle);
  }

  // ------------------------------------------------------------ externs

  readCounter(name: string, index: number): { packets: number; bytes: number } {
    return this.#externs.readCounter(name, index);
  }

  readRegister(name: string, index: number): bigint {
    return this.#externs.readRegister(name, index);
  }

  writeRegister(name: string, index: number, value: bigint | number): void {
    this.#externs.writeRegister(name, index, value);
  }

  configureMeter(name: string, index: number, config: MeterConfig): void {
    this.#externs.configureMeter(name, index, config);
  }

  addValueSetMember(name: string, value: bigint | number): void {
    externNamed(this.#compiled.vsets, name, 'value_set').add(BigInt(value));
  }

  // ------------------------------------------------------------ replication and digests

  /** Replace multicast group `group` (1..65535): ports, or (port, egress_rid) replicas. */
  setMulticastGroup(group: number, replicas: readonly (number | Replica)[]): void {
    this.#replication.setMulticastGroup(group, replicas);
  }

  multicastGroup(group: number): readonly Replica[] {
    return this.#replication.multicastGroup(group);
  }

  /**
   * Configure clone session `session` (v1model `clone` / `clone_preserving_field_list`): its
   * copies go to one egress port or to a multicast group's replicas; null removes it. Clones to
   * a session that is not configured are not made, as in simple_switch.
   */
  setCloneSession(session: number, target: CloneTarget | null): void {
    this.#replication.setCloneSession(session, target);
  }

  cloneSession(session: number): CloneTarget | null {
    return this.#replication.cloneSession(session);
  }

  /** Digests generated since the last call, oldest first; the switch forgets them. */
  takeDigests(): Digest[] {
    return this.#paths.takeDigests();
  }
}
