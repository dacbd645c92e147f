/**
 * v1model's checksum controls: `verify_checksum` after the parser (a mismatch sets
 * standard_metadata.checksum_error) and `update_checksum` before the deparser (the computed
 * value is written into the target field). Each is a calculation (a hash over a list of
 * fields) with an optional condition.
 */

import { int } from './codegen.js';
import type { FieldSlot } from './expr.js';
import type { ActionData, Eval, PacketState } from './state.js';
import { NO_ACTION_DATA } from './state.js';

export interface ChecksumRT {
  readonly target: FieldSlot;
  readonly calc: Eval;
  readonly cond: ((s: PacketState, ad: ActionData) => boolean) | null;
  /** The condition as JS (a number, non-zero is true), when it has one. */
  readonly condJs: string | null;
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

/**
 * verifyChecksums / updateChecksums for one list as one generated function: each condition
 * inlined when it has JS, each calculation called directly (for csum16 over a fixed header,
 * itself generated code that sums field values), the compare or the store written out for
 * the common shape — a number calculation and a number target of at least 16 bits — and the
 * entry's closures for any other shape. Only slot numbers and indexes are spliced.
 */
export function compileChecksums(
  list: readonly ChecksumRT[],
  mode: 'verify' | 'update',
  errorSlot: number,
): (s: PacketState) => void {
  if (list.length === 0 || (mode === 'verify' && errorSlot < 0)) return () => {};
  const lines: string[] = ['const n = s.n; const v = s.valid;'];
  list.forEach((c, i) => {
    const k = int(i);
    const cond =
      c.cond === null ? 'true' : c.condJs !== null ? `(${c.condJs}) !== 0` : `L[${k}].cond(s, NAD)`;
    const simple = c.calc.num && !c.target.wide;
    let body: string;
    if (mode === 'verify') {
      body = simple
        ? `if (L[${k}].calc.f(s, NAD) !== n[${int(c.target.slot)}]) n[${int(errorSlot)}] = 1;`
        : `VERIFY(s, ONE[${k}], ${int(errorSlot)});`;
    } else {
      body =
        simple && c.target.width >= 16 && !c.target.signed
          ? `n[${int(c.target.slot)}] = L[${k}].calc.f(s, NAD) & 65535;`
          : `L[${k}].store(s, NAD);`;
    }
    lines.push(`if (${cond}) { ${body} }`);
  });
  const make = new Function(
    'L',
    'ONE',
    'NAD',
    'VERIFY',
    `return function ${mode}(s) {\n${lines.join('\n')}\n};`,
  );
  const one = list.map((c) => [c]);
  return make(list, one, NO_ACTION_DATA, verifyChecksums) as (s: PacketState) => void;
}
