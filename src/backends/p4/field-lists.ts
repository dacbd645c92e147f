/**
 * Field lists and learn lists of BMv2 JSON (`field_lists`, `learn_lists`), and what v1model
 * carries with them: the metadata a clone, a resubmitted or a recirculated packet keeps
 * (everything else is reset, as simple_switch does), and the values a digest sends to the
 * control plane.
 */

import type { FieldSlot } from './expr.js';
import type { PacketState } from './state.js';

/** v1model's standard_metadata.instance_type values (simple_switch.md). */
export const INSTANCE_TYPE = {
  normal: 0,
  ingressClone: 1,
  egressClone: 2,
  recirculated: 4,
  replication: 5,
  resubmit: 6,
} as const;

export interface FieldListRT {
  readonly id: number;
  readonly name: string;
  /** `header.field` of each element, in order. */
  readonly names: readonly string[];
  readonly slots: readonly FieldSlot[];
}

/** Where a clone session sends its copies: one egress port, or a multicast group. */
export type CloneTarget = { readonly port: number } | { readonly multicastGroup: number };

/** One digest (v1model `digest`), as simple_switch's learning engine would send it. */
export interface Digest {
  readonly receiver: number;
  /** The learn list's name (p4c: the digest data's struct type). */
  readonly list: string;
  /** Values by `header.field`, in list order. */
  readonly values: Readonly<Record<string, bigint>>;
}

/** Values of a field list's fields, copied out of a packet's state. */
export interface Carried {
  readonly list: FieldListRT;
  readonly n: Float64Array;
  readonly b: bigint[];
}

export function carry(list: FieldListRT, s: PacketState): Carried {
  const n = new Float64Array(list.slots.length);
  const b: bigint[] = [];
  list.slots.forEach((f, i) => {
    if (f.wide) b[i] = s.b[f.slot]!;
    else n[i] = s.n[f.slot]!;
  });
  return { list, n, b };
}

export function restore(c: Carried, s: PacketState): void {
  c.list.slots.forEach((f, i) => {
    if (f.wide) s.b[f.slot] = c.b[i]!;
    else s.n[f.slot] = c.n[i]!;
  });
}

export function digestOf(list: FieldListRT, receiver: number, s: PacketState): Digest {
  const values: Record<string, bigint> = {};
  list.slots.forEach((f, i) => {
    values[list.names[i]!] = f.wide ? s.b[f.slot]! : BigInt(s.n[f.slot]!);
  });
  return { receiver, list: list.name, values };
}
