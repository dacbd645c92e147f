/**
 * Where each piece of v1model state lives in the TNA rewrite: header instances become members
 * of one `headers_t` struct, the scalars (user metadata, locals) become `metadata_t` fields,
 * and `standard_metadata` fields map onto TNA's intrinsic metadata — per pipeline half, since
 * TNA's ingress and egress see different intrinsic structs. A field with no TNA counterpart is
 * refused with a TnaUnsupportedError naming it, never quietly left at zero.
 */

import { ThunderpacError } from '../runtime/errors.js';
import type { IrProgram } from './ir.js';

export type Gress = 'ingress' | 'egress';

/** Where a statement or expression of the rewrite is being written. */
export interface EmitCtx {
  readonly gress: Gress;
  /** Action parameter names by index, inside an action. */
  readonly params: readonly string[];
  /** Declarations the enclosing control or parser needs (extern instances), by name. */
  readonly decls: Map<string, string>;
  /** In a parser (lookahead is allowed there). */
  readonly parser: boolean;
}

/** A v1model feature the TNA rewrite has no faithful translation for. */
export class TnaUnsupportedError extends ThunderpacError {
  readonly feature: string;

  constructor(feature: string, detail: string) {
    super('P4_TNA_UNSUPPORTED', `TNA rewrite: ${feature} ${detail}`);
    this.feature = feature;
  }
}

export const STD_META = 'standard_metadata';
export const SCALARS = 'scalars';
/** The header that carries ingress metadata to egress (TNA has no shared metadata). */
export const BRIDGE = 'bridged_md';
export const DROP_PORT = 511;

/** Parameter names of the emitted blocks, per half. */
export const PARAMS = {
  ingress: { md: 'ig_md', intr: 'ig_intr_md', prsr: 'ig_prsr_md', dprsr: 'ig_dprsr_md' },
  egress: { md: 'eg_md', intr: 'eg_intr_md', prsr: 'eg_prsr_md', dprsr: 'eg_dprsr_md' },
} as const;

interface StdField {
  /** The TNA expression in ingress / egress, and its width there. */
  readonly ingress?: { readonly path: string; readonly width: number; readonly writable: boolean };
  readonly egress?: { readonly path: string; readonly width: number; readonly writable: boolean };
}

/**
 * standard_metadata → TNA, as the header comment of every rewrite lists it. `egress_spec` and
 * `mark_to_drop` are special-cased by the writer (a drop is `drop_ctl`, not port 511).
 */
export const STD_MAP: Readonly<Record<string, StdField>> = {
  ingress_port: {
    ingress: { path: 'ig_intr_md.ingress_port', width: 9, writable: false },
    // Egress reads it from the bridged header (bridged when egress uses it).
    egress: { path: `hdr.${BRIDGE}.ingress_port`, width: 9, writable: false },
  },
  egress_spec: { ingress: { path: 'ig_tm_md.ucast_egress_port', width: 9, writable: true } },
  egress_port: { egress: { path: 'eg_intr_md.egress_port', width: 9, writable: false } },
  mcast_grp: { ingress: { path: 'ig_tm_md.mcast_grp_a', width: 16, writable: true } },
  egress_rid: { egress: { path: 'eg_intr_md.egress_rid', width: 16, writable: false } },
  packet_length: { egress: { path: 'eg_intr_md.pkt_length', width: 16, writable: false } },
  enq_timestamp: { egress: { path: 'eg_intr_md.enq_tstamp', width: 18, writable: false } },
  enq_qdepth: { egress: { path: 'eg_intr_md.enq_qdepth', width: 19, writable: false } },
  deq_timedelta: { egress: { path: 'eg_intr_md.deq_timedelta', width: 18, writable: false } },
  deq_qdepth: { egress: { path: 'eg_intr_md.deq_qdepth', width: 19, writable: false } },
  ingress_global_timestamp: { ingress: { path: 'ig_prsr_md.global_tstamp', width: 48, writable: false } },
  egress_global_timestamp: { egress: { path: 'eg_prsr_md.global_tstamp', width: 48, writable: false } },
};

/** The mapping as text, for the header comment of the rewritten program. */
export const STD_MAP_COMMENT = [
  'standard_metadata.ingress_port            -> ig_intr_md.ingress_port (egress: bridged)',
  'standard_metadata.egress_spec (write)     -> ig_tm_md.ucast_egress_port, and ig_dprsr_md.drop_ctl = 1 iff 511',
  'standard_metadata.egress_spec (read)      -> 511 when ig_dprsr_md.drop_ctl[0] is set, else ucast_egress_port',
  'mark_to_drop(standard_metadata)           -> ig_dprsr_md.drop_ctl = 1 (egress: eg_dprsr_md.drop_ctl = 1)',
  'standard_metadata.mcast_grp               -> ig_tm_md.mcast_grp_a',
  'standard_metadata.egress_port (egress)    -> eg_intr_md.egress_port',
  'standard_metadata.egress_rid (egress)     -> eg_intr_md.egress_rid',
  'standard_metadata.packet_length (egress)  -> eg_intr_md.pkt_length (16 bits, zero-extended)',
  'standard_metadata.enq_timestamp (egress)  -> eg_intr_md.enq_tstamp (18 bits)',
  'standard_metadata.enq_qdepth (egress)     -> eg_intr_md.enq_qdepth',
  'standard_metadata.deq_timedelta (egress)  -> eg_intr_md.deq_timedelta (18 bits)',
  'standard_metadata.deq_qdepth (egress)     -> eg_intr_md.deq_qdepth',
  'standard_metadata.ingress_global_timestamp -> ig_prsr_md.global_tstamp',
  'standard_metadata.egress_global_timestamp -> eg_prsr_md.global_tstamp',
  'user metadata and locals                  -> ig_md / eg_md (metadata_t); what egress uses is bridged',
  'update_checksum (csum16)                  -> Checksum.update() in the deparser',
  'counter / direct_counter / register / meter / hash / random -> Counter / DirectCounter / Register / Meter / Hash / Random',
  'No TNA equivalent (refused when a program uses it): standard_metadata.instance_type, parser_error,',
  '  checksum_error, priority; packet_length, egress_port, enq_* and deq_* in ingress; egress_spec, mcast_grp',
  '  in egress; direct_meter; checksums over the payload; hash with a base or a max that is not 2^k;',
  '  random over a range that is not [0, 2^k-1]; an extern used by both ingress and egress.',
];

function sanitize(name: string): string {
  const s = name.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[A-Za-z_]/.test(s) ? s : `_${s}`;
}

/** Paths of header instances (`hdr.ipv4`, `hdr.vlan[1]`, `hdr.ip.v4`) and of the headers_t members. */
export class TnaLayout {
  readonly #paths = new Map<string, string>();
  /** Members of headers_t: name and P4 type text, in IR order. */
  readonly members: { readonly name: string; readonly type: string }[] = [];
  /** Header unions: type name → members. */
  readonly unionTypes = new Map<string, { readonly name: string; readonly type: string }[]>();

  constructor(readonly program: IrProgram) {
    const used = new Set<string>([BRIDGE]);
    const unique = (n: string): string => {
      let m = sanitize(n);
      for (let i = 0; used.has(m); i++) m = `${sanitize(n)}_${i}`;
      used.add(m);
      return m;
    };
    const inStack = new Map<string, { stack: string; index: number }>();
    for (const s of program.stacks) {
      for (const [index, h] of s.headers.entries()) inStack.set(h, { stack: s.name, index });
    }
    const inUnion = new Map<string, { union: string; member: string }>();
    for (const u of program.unions)
      for (const m of u.members) inUnion.set(m.header, { union: u.name, member: m.name });
    const memberOf = new Map<string, string>();
    for (const h of program.headers) {
      if (h.metadata) continue;
      const st = inStack.get(h.name);
      const un = inUnion.get(h.name);
      if (st) {
        let m = memberOf.get(st.stack);
        if (!m) {
          const stack = program.stacks.find((s) => s.name === st.stack)!;
          m = unique(st.stack);
          memberOf.set(st.stack, m);
          this.members.push({ name: m, type: `${stack.type}[${stack.size}]` });
        }
        this.#paths.set(h.name, `hdr.${m}[${st.index}]`);
      } else if (un) {
        let m = memberOf.get(un.union);
        if (!m) {
          const union = program.unions.find((u) => u.name === un.union)!;
          m = unique(un.union);
          memberOf.set(un.union, m);
          this.members.push({ name: m, type: union.type });
          this.unionTypes.set(
            union.type,
            union.members.map((x) => ({ name: x.name, type: x.type })),
          );
        }
        this.#paths.set(h.name, `hdr.${m}.${un.member}`);
      } else {
        const m = unique(h.name);
        this.members.push({ name: m, type: h.type });
        this.#paths.set(h.name, `hdr.${m}`);
      }
    }
    for (const s of program.stacks) {
      const m = memberOf.get(s.name);
      if (m) this.#paths.set(s.name, `hdr.${m}`);
    }
  }

  /** `hdr.x` for a header instance or a stack (by its IR name). */
  header(instance: string): string {
    const p = this.#paths.get(instance);
    if (!p) throw new TnaUnsupportedError(`header instance ${instance}`, 'is not laid out (internal error)');
    return p;
  }
}
