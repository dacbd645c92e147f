/**
 * v1model's checksum controls: `verify_checksum` after the parser (a mismatch sets
 * standard_metadata.checksum_error) and `update_checksum` before the deparser (the computed
 * value is written into the target field). Each is a calculation (a hash over a list of
 * fields) with an optional condition.
 */

import type { FieldSlot } from './expr.js';
import type { ActionData, Eval, PacketState } from './state.js';
import { NO_ACTION_DATA } from './state.js';

export interface ChecksumRT {
  readonly target: FieldSlot;
  readonly calc: Eval;
  readonly cond: ((s: PacketState, ad: ActionData) => boolean) | null;
  /** Writes the computed checksum into the target field. */
  readonly store: (s: PacketState, ad: ActionData) => void;
}

/** Check every checksum of `list`; a mismatch sets the field in `errorSlot` (if any) to 1. */
export function verifyChecksums(s: PacketState, list: readonly ChecksumRT[], errorSlot: number): void {
  for (let i = 0; i < list.length; i++) {
    const c = list[i]!;
    if (c.cond && !c.cond(s, NO_ACTION_DATA)) continue;
    const t = c.target;
    const got = t.wide ? s.b[t.slot]! : s.n[t.slot]!;
    const v = c.calc.f(s, NO_ACTION_DATA);
    // compare as numbers when both are, else as BigInts
    const same = typeof v === typeof got ? v === got : BigInt(v) === BigInt(got);
    if (!same && errorSlot >= 0) s.n[errorSlot] = 1;
  }
}

export function updateChecksums(s: PacketState, list: readonly ChecksumRT[]): void {
  for (let i = 0; i < list.length; i++) {
    const c = list[i]!;
    if (c.cond && !c.cond(s, NO_ACTION_DATA)) continue;
    c.store(s, NO_ACTION_DATA);
  }
}
