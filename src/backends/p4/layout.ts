/**
 * Header layouts: where every header instance of a BMv2 JSON program keeps its fields in the
 * packet state. Each field gets a fixed slot, in `n` (≤ 53 bits, a number) or `b` (wider, or a
 * varbit: a BigInt); a header's slots are contiguous, so headers of one type copy as ranges.
 */

import type { FieldSlot } from './expr.js';
import { P4RuntimeError } from './errors.js';
import { NUM_BITS } from './state.js';

// biome-ignore lint/suspicious/noExplicitAny: BMv2 JSON is validated as it is compiled
type J = any;

export interface HeaderLayout {
  readonly name: string;
  readonly id: number;
  readonly metadata: boolean;
  /** Declared widths; a varbit field's is 0 (its bits are per packet, in `vb`). */
  readonly widths: readonly number[];
  readonly signed: readonly boolean[];
  readonly fieldIds: ReadonlyMap<string, number>;
  readonly slots: readonly FieldSlot[];
  /** Fixed bits (all fields but the varbit). */
  readonly bits: number;
  readonly varbitField: number;
  readonly maxVarbit: number;
  /** This header's ranges of slots in `n` and `b`: headers of one type copy as ranges. */
  readonly nStart: number;
  readonly nEnd: number;
  readonly bStart: number;
  readonly bEnd: number;
}

export interface Layouts {
  readonly headers: readonly HeaderLayout[];
  readonly byName: ReadonlyMap<string, HeaderLayout>;
  /** Slots in `n` and `b` of the whole packet state. */
  readonly nCount: number;
  readonly bCount: number;
}

/** Slots in `n` of the standard_metadata fields the switch itself reads or writes (-1: absent). */
export interface StandardMetadataSlots {
  readonly ingress_port: number;
  readonly egress_spec: number;
  readonly egress_port: number;
  readonly packet_length: number;
  readonly parser_error: number;
  readonly checksum_error: number;
  readonly mcast_grp: number;
  readonly instance_type: number;
  readonly egress_rid: number;
}

export function headerLayouts(j: J): Layouts {
  const types = new Map<string, J>(j.header_types.map((t: J) => [t.name, t]));
  const headers: HeaderLayout[] = [];
  const byName = new Map<string, HeaderLayout>();
  let nCount = 0;
  let bCount = 0;
  for (const h of j.headers as J[]) {
    const t = types.get(h.header_type);
    if (!t) throw new P4RuntimeError('P4_JSON', `header ${h.name}: unknown header_type ${h.header_type}`);
    const id = headers.length;
    const widths: number[] = [];
    const signed: boolean[] = [];
    const fieldIds = new Map<string, number>();
    let varbitField = -1;
    (t.fields as J[]).forEach((f: J, i: number) => {
      fieldIds.set(f[0], i);
      if (f[1] === '*') {
        varbitField = i;
        widths.push(0);
      } else widths.push(Number(f[1]));
      signed.push(f[2] === true);
    });
    const bits = widths.reduce((a, b) => a + b, 0);
    const maxVarbit = varbitField >= 0 ? Number(t.max_length ?? 0) * 8 - bits : 0;
    const nStart = nCount;
    const bStart = bCount;
    const slots = widths.map((w, i): FieldSlot => {
      const varbit = i === varbitField;
      const wide = varbit || w > NUM_BITS;
      return {
        header: id,
        width: varbit ? Math.max(0, maxVarbit) : w,
        signed: signed[i]!,
        wide,
        slot: wide ? bCount++ : nCount++,
      };
    });
    const layout: HeaderLayout = {
      name: h.name,
      id,
      metadata: h.metadata === true,
      widths,
      signed,
      fieldIds,
      slots,
      bits,
      varbitField,
      maxVarbit,
      nStart,
      nEnd: nCount,
      bStart,
      bEnd: bCount,
    };
    headers.push(layout);
    byName.set(h.name, layout);
  }
  return { headers, byName, nCount, bCount };
}

export function standardMetadataSlots(layouts: Layouts): StandardMetadataSlots {
  const sm = layouts.byName.get('standard_metadata');
  if (!sm)
    throw new P4RuntimeError(
      'P4_JSON',
      'the program has no standard_metadata header (not a v1model program)',
    );
  const smField = (n: string): number => {
    const f = sm.fieldIds.get(n);
    return f === undefined || sm.slots[f]!.wide ? -1 : sm.slots[f]!.slot;
  };
  const smf: StandardMetadataSlots = {
    ingress_port: smField('ingress_port'),
    egress_spec: smField('egress_spec'),
    egress_port: smField('egress_port'),
    packet_length: smField('packet_length'),
    parser_error: smField('parser_error'),
    checksum_error: smField('checksum_error'),
    mcast_grp: smField('mcast_grp'),
    instance_type: smField('instance_type'),
    egress_rid: smField('egress_rid'),
  };
  if (smf.ingress_port < 0 || smf.egress_spec < 0 || smf.egress_port < 0)
    throw new P4RuntimeError(
      'P4_JSON',
      'standard_metadata needs ingress_port, egress_spec and egress_port fields',
    );
  return smf;
}
