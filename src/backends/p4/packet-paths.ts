/**
 * The paths a packet takes through the switch, with v1model (simple_switch) semantics: parser
 * (errors set standard_metadata.parser_error and go on to ingress) → verify checksums →
 * ingress → drop when egress_spec is 511 (mark_to_drop), else replicate to a multicast group
 * or go to egress_spec → egress → drop on 511 → update checksums → deparser (valid headers in
 * order, then the unparsed payload). And the paths besides: ingress and egress clones,
 * multicast replicas, resubmission, recirculation and digests.
 */

import { GuestError } from '../../runtime/errors.js';
import { compileChecksums } from './checksum.js';
import type { Deparser } from './deparser.js';
import {
  type Carried,
  type CloneTarget,
  carry,
  type Digest,
  digestOf,
  INSTANCE_TYPE,
  restore,
} from './field-lists.js';
import { compileParser, type ParserErrorCodes } from './parser.js';
import { compilePipeline, type MeterColor, runPipeline } from './pipeline.js';
import type { CompiledProgram } from './program.js';
import type { Replication } from './replication.js';
import { compileStateReset, DROP_PORT, type PacketState } from './state.js';

/**
 * How many times one packet may re-enter ingress (resubmit, recirculate) and how many egress
 * passes (clones of clones included) it may cause before the switch stops it: a program that
 * recirculates forever would otherwise never return.
 */
export const MAX_REENTRIES = 16;
export const MAX_EGRESS_PASSES = 1024;

export interface SwitchOutput {
  readonly port: number;
  readonly bytes: Uint8Array;
}

/** A packet state's per-pass flags with no exit, clone, resubmit, recirculate or digest pending. */
const NOTHING_PENDING = {
  exit: false,
  cloneSession: -1,
  cloneFieldList: -1,
  resubmit: -1,
  recirculate: -1,
  learn: -1,
  learnReceiver: 0,
} as const;

export class PacketPaths {
  readonly #p: CompiledProgram;
  readonly #deparser: Deparser;
  readonly #replication: Replication;
  readonly #meterColor: MeterColor;
  readonly #codes: ParserErrorCodes;
  #digests: Digest[] = [];
  /** The parser as one generated function (parser.ts compileParser). */
  readonly #parseFn: (s: PacketState) => void;
  readonly #reset: (s: PacketState, pkt: Uint8Array) => void;
  readonly #verify: (s: PacketState) => void;
  readonly #update: (s: PacketState) => void;
  /** Ingress and egress as generated functions (pipeline.ts compilePipeline). */
  readonly #ingressFn: (s: PacketState) => void;
  readonly #egressFn: (s: PacketState) => void;

  constructor(program: CompiledProgram, deparser: Deparser, replication: Replication) {
    this.#p = program;
    this.#deparser = deparser;
    this.#replication = replication;
    const ex = program.externs;
    this.#meterColor = (m, i, len) => ex.meterColor(m, i, len);
    this.#codes = {
      noMatch: program.errors.get('NoMatch') ?? 2,
      timeout: program.errors.get('ParserTimeout') ?? 5,
    };
    this.#reset = compileStateReset(program.nCount, program.bCount, program.validInit);
    this.#verify = compileChecksums(program.verify, 'verify', program.smf.checksum_error);
    this.#update = compileChecksums(program.update, 'update', -1);
    const mc = this.#meterColor;
    this.#ingressFn = compilePipeline(program.ingress, mc) ?? ((s) => runPipeline(program.ingress, s, mc));
    this.#egressFn = compilePipeline(program.egress, mc) ?? ((s) => runPipeline(program.egress, s, mc));
    this.#parseFn = compileParser(
      program.parserStates,
      program.parserInit,
      this.#codes,
      program.smf.parser_error,
    );
  }

  /** Digests generated since the last call, oldest first; forgotten once taken. */
  takeDigests(): Digest[] {
    const d = this.#digests;
    this.#digests = [];
    return d;
  }

  #parse(s: PacketState): void {
    this.#parseFn(s);
  }

  /** One state reused packet after packet: processing is synchronous and nothing keeps it. */
  #state: PacketState | null = null;

  #fresh(pkt: Uint8Array): PacketState {
    let st = this.#state;
    if (st === null) {
      st = {
        n: new Float64Array(this.#p.nCount),
        b: new Array<bigint>(this.#p.bCount).fill(0n),
        valid: new Uint8Array(this.#p.layouts.length),
        vb: new Int32Array(this.#p.layouts.length),
        pkt,
        cursor: 0,
        ...NOTHING_PENDING,
      };
      this.#state = st;
    }
    this.#reset(st, pkt);
    return st;
  }

  /** A state of its own (not the reused one), reset as for a new packet. */
  #newState(pkt: Uint8Array): PacketState {
    const saved = this.#state;
    this.#state = null;
    const st = this.#fresh(pkt);
    this.#state = saved;
    return st;
  }

  /** Zero every metadata header's fields (simple_switch's reset_metadata). */
  #resetMetadata(s: PacketState): void {
    for (const l of this.#p.layouts) {
      if (!l.metadata) continue;
      s.n.fill(0, l.nStart, l.nEnd);
      s.b.fill(0n, l.bStart, l.bEnd);
    }
  }

  #clone(s: PacketState): PacketState {
    return {
      n: s.n.slice(),
      b: s.b.slice(),
      valid: s.valid.slice(),
      vb: s.vb.slice(),
      pkt: s.pkt,
      cursor: s.cursor,
      ...NOTHING_PENDING,
    };
  }

  /**
   * Run one packet through the switch; returns the packets that leave, in order. Copies made
   * along the way (clones, multicast replicas) pass egress right after the ingress that made
   * them, the clone first; resubmitted and recirculated packets re-enter ingress after that,
   * in order. Digests are kept for takeDigests().
   */
  process(bytes: Uint8Array, ingressPort: number): SwitchOutput[] {
    const out: SwitchOutput[] = [];
    const s = this.#fresh(bytes);
    s.n[this.#p.smf.ingress_port] = ingressPort;
    this.#ingressOf(s, out, null);
    return out;
  }

  /**
   * Ingress for `s` (its ingress_port set), then egress for what it sends on. `pending`
   * holds packets waiting to re-enter ingress; the outermost call drains it.
   */
  #ingressOf(
    s: PacketState,
    out: SwitchOutput[],
    pending: { bytes: Uint8Array; carried: Carried; type: number }[] | null,
  ): void {
    const F = this.#p.smf;
    const bytes = s.pkt;
    const ingressPort = s.n[F.ingress_port]!;
    if (F.packet_length >= 0) s.n[F.packet_length] = bytes.length;
    this.#parse(s);
    this.#verify(s);
    this.#ingressFn(s);
    const special = s.cloneSession >= 0 || s.learn >= 0 || s.resubmit >= 0;
    if (!special && pending === null) {
      // the common case: one packet in, at most one out (or a multicast group)
      const grp = F.mcast_grp >= 0 ? s.n[F.mcast_grp]! : 0;
      if (grp !== 0) {
        this.#replicate(s, grp, INSTANCE_TYPE.replication, out, null);
        return;
      }
      const egressSpec = s.n[F.egress_spec]!;
      if (egressSpec === DROP_PORT) return;
      if (F.instance_type >= 0) s.n[F.instance_type] = INSTANCE_TYPE.normal;
      this.#egressOf(s, egressSpec, 0, out, null);
      return;
    }
    const queue = pending ?? [];
    const egress: { s: PacketState; port: number; rid: number }[] = [];
    if (s.cloneSession >= 0) {
      const target = this.#replication.cloneSession(s.cloneSession & 0xffff);
      if (target) {
        // simple_switch re-parses the packet as received, keeping ingress_port, then resets
        // the metadata but for the clone's field list
        const c = this.#newState(bytes);
        c.n[F.ingress_port] = ingressPort;
        this.#parse(c);
        this.#resetMetadata(c);
        this.#copyList(s, c, s.cloneFieldList);
        if (F.instance_type >= 0) c.n[F.instance_type] = INSTANCE_TYPE.ingressClone;
        if (F.packet_length >= 0) c.n[F.packet_length] = bytes.length;
        this.#sendTo(c, target, egress);
      }
    }
    // simple_switch clears these registers once acted on: egress starts without them
    s.cloneSession = -1;
    if (s.learn >= 0) this.#digests.push(digestOf(this.#p.learnLists.get(s.learn)!, s.learnReceiver, s));
    s.learn = -1;
    if (s.resubmit >= 0) {
      queue.push({ bytes, carried: this.#carry(s, s.resubmit), type: INSTANCE_TYPE.resubmit });
      s.resubmit = -1;
    } else {
      const grp = F.mcast_grp >= 0 ? s.n[F.mcast_grp]! : 0;
      if (grp !== 0) {
        if (F.instance_type >= 0) s.n[F.instance_type] = INSTANCE_TYPE.replication;
        for (const { port, rid } of this.#replication.multicastGroup(grp))
          egress.push({ s: this.#clone(s), port, rid });
      } else if (s.n[F.egress_spec] !== DROP_PORT) {
        if (F.instance_type >= 0) s.n[F.instance_type] = INSTANCE_TYPE.normal;
        egress.push({ s, port: s.n[F.egress_spec]!, rid: 0 });
      }
    }
    // egress passes in order; egress clones join the end of the line
    for (let i = 0; i < egress.length; i++) {
      if (i >= MAX_EGRESS_PASSES)
        throw new GuestError(
          'P4_CLONE_LIMIT',
          `one packet caused more than ${MAX_EGRESS_PASSES} egress passes (clone loop?)`,
        );
      const e = egress[i]!;
      this.#egressOf(e.s, e.port, e.rid, out, { egress, queue });
    }
    if (pending !== null) return;
    // packets re-entering ingress, each from a fresh state carrying its field list
    for (let n = 0; n < queue.length; n++) {
      if (n >= MAX_REENTRIES)
        throw new GuestError(
          'P4_RECIRCULATION_LIMIT',
          `a packet re-entered ingress more than ${MAX_REENTRIES} times (resubmit/recirculate loop)`,
        );
      const q = queue[n]!;
      const r = this.#fresh(q.bytes);
      restore(q.carried, r);
      if (F.instance_type >= 0) r.n[F.instance_type] = q.type;
      this.#ingressOf(r, out, queue);
    }
  }

  /** Field list `id`'s values carried out of `s` (id 0 or unknown: nothing). */
  #carry(s: PacketState, id: number): Carried {
    const list = this.#p.fieldLists.get(id) ?? { id, name: 'empty', names: [], slots: [] };
    return carry(list, s);
  }

  #copyList(from: PacketState, to: PacketState, id: number): void {
    restore(this.#carry(from, id), to);
  }

  #sendTo(
    c: PacketState,
    target: CloneTarget,
    egress: { s: PacketState; port: number; rid: number }[],
  ): void {
    if ('port' in target) egress.push({ s: c, port: target.port, rid: 0 });
    else
      for (const { port, rid } of this.#replication.multicastGroup(target.multicastGroup))
        egress.push({ s: this.#clone(c), port, rid });
  }

  #replicate(s: PacketState, grp: number, type: number, out: SwitchOutput[], more: null): void {
    // BMv2's replication engine: one copy per (port, rid), instance_type REPLICATION (5).
    const F = this.#p.smf;
    // every copy is made before any egress runs: an egress may reuse the switch's state
    const copies = this.#replication
      .multicastGroup(grp)
      .map(({ port, rid }) => ({ c: this.#clone(s), port, rid }));
    for (const { c, port, rid } of copies) {
      if (F.instance_type >= 0) c.n[F.instance_type] = type;
      this.#egressOf(c, port, rid, out, more);
    }
  }

  #egressOf(
    s: PacketState,
    port: number,
    rid: number,
    out: SwitchOutput[],
    more: {
      egress: { s: PacketState; port: number; rid: number }[];
      queue: { bytes: Uint8Array; carried: Carried; type: number }[];
    } | null,
  ): void {
    const F = this.#p.smf;
    s.exit = false;
    s.n[F.egress_port] = port;
    if (F.egress_rid >= 0) s.n[F.egress_rid] = rid;
    this.#egressFn(s);
    if (s.cloneSession >= 0 || s.recirculate >= 0) {
      if (more === null) {
        // a clone or recirculation asked for on the fast path: redo the bookkeeping slowly
        more = { egress: [], queue: [] };
        this.#egressSpecial(s, out, more);
        for (let i = 0; i < more.egress.length; i++) {
          if (i >= MAX_EGRESS_PASSES)
            throw new GuestError(
              'P4_CLONE_LIMIT',
              `one packet caused more than ${MAX_EGRESS_PASSES} egress passes (clone loop?)`,
            );
          const e = more.egress[i]!;
          this.#egressOf(e.s, e.port, e.rid, out, more);
        }
        for (let n = 0; n < more.queue.length; n++) {
          if (n >= MAX_REENTRIES)
            throw new GuestError(
              'P4_RECIRCULATION_LIMIT',
              `a packet re-entered ingress more than ${MAX_REENTRIES} times (resubmit/recirculate loop)`,
            );
          const q = more.queue[n]!;
          const r = this.#fresh(q.bytes);
          restore(q.carried, r);
          if (F.instance_type >= 0) r.n[F.instance_type] = q.type;
          this.#ingressOf(r, out, more.queue);
        }
        return;
      }
      this.#egressSpecial(s, out, more);
      return;
    }
    if (s.n[F.egress_spec] === DROP_PORT) return;
    this.#update(s);
    out.push({ port: s.n[F.egress_port]!, bytes: this.#deparser.deparse(s) });
  }

  /** The end of egress when the packet asked for an egress clone or a recirculation. */
  #egressSpecial(
    s: PacketState,
    out: SwitchOutput[],
    more: {
      egress: { s: PacketState; port: number; rid: number }[];
      queue: { bytes: Uint8Array; carried: Carried; type: number }[];
    },
  ): void {
    const F = this.#p.smf;
    if (s.cloneSession >= 0) {
      const target = this.#replication.cloneSession(s.cloneSession & 0xffff);
      const list = s.cloneFieldList;
      s.cloneSession = -1;
      if (target) {
        // the packet as egress left it, metadata reset but for the field list
        const c = this.#clone(s);
        this.#resetMetadata(c);
        this.#copyList(s, c, list);
        if (F.instance_type >= 0) c.n[F.instance_type] = INSTANCE_TYPE.egressClone;
        if (F.packet_length >= 0) c.n[F.packet_length] = s.n[F.packet_length]!;
        this.#sendTo(c, target, more.egress);
      }
    }
    if (s.n[F.egress_spec] === DROP_PORT) return;
    this.#update(s);
    const bytes = this.#deparser.deparse(s);
    if (s.recirculate >= 0) {
      // the deparsed packet goes back to ingress with its field list; it does not leave
      more.queue.push({
        bytes: bytes.slice(),
        carried: this.#carry(s, s.recirculate),
        type: INSTANCE_TYPE.recirculated,
      });
      return;
    }
    out.push({ port: s.n[F.egress_port]!, bytes });
  }
}
