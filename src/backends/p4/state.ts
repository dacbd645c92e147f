/**
 * Per-packet state of the behavioral switch and the closure shapes compiled from JSON.
 *
 * Every header field lives in one flat array for the whole packet, at an offset fixed when the
 * JSON is compiled: fields of at most 53 bits (all but IPv6 addresses and the like) are plain
 * numbers in `n`, exact as doubles; wider fields and varbits are BigInts in `b`. One state is
 * allocated per switch and reset per packet with two `fill`s, so the hot path allocates nothing
 * for its headers.
 */

/** Widest field held as a number: every integer up to 2^53 is exact in a double. */
export const NUM_BITS = 53;

export interface PacketState {
  /** Fields of width ≤ NUM_BITS, every header, flat; unsigned in [0, 2^w), signed two's value. */
  readonly n: Float64Array;
  /** Fields wider than NUM_BITS and varbit fields. */
  readonly b: bigint[];
  /** Validity bit per header instance (1 = valid). */
  readonly valid: Uint8Array;
  /** Bits held by each header's varbit field, if it has one (set by extract). */
  readonly vb: Int32Array;
  /** The bytes as received; the parser's cursor is in bytes into them. */
  pkt: Uint8Array;
  cursor: number;
  /** Set by the exit primitive: the rest of the current pipeline is skipped. */
  exit: boolean;
  /**
   * simple_switch's per-packet registers, set by primitives and acted on after the pipeline
   * (-1: not requested): clone session and field list, resubmit / recirculate field list,
   * learn list and receiver of a digest.
   */
  cloneSession: number;
  cloneFieldList: number;
  resubmit: number;
  recirculate: number;
  learn: number;
  learnReceiver: number;
}

/** Action data of one table entry: narrow parameters as numbers, wide ones as BigInts. */
export interface ActionData {
  readonly n: readonly number[];
  readonly b: readonly bigint[];
}

export const NO_ACTION_DATA: ActionData = { n: [], b: [] };

export type NumFn = (s: PacketState, ad: ActionData) => number;
export type BigFn = (s: PacketState, ad: ActionData) => bigint;

/**
 * A compiled expression with the range of values it can take, known at compile time: the
 * range decides whether it runs on numbers (`num`, every value a safe integer) or BigInts.
 * Booleans are 0 / 1.
 */
export type Eval =
  | {
      readonly num: true;
      readonly f: NumFn;
      readonly lo: bigint;
      readonly hi: bigint;
      /**
       * The same computation as a JavaScript expression over `n` (s.n), `v` (s.valid) and
       * `adn` (ad.n), when it has one: whole expression trees compile to one function.
       */
      readonly js: string | null;
    }
  | { readonly num: false; readonly f: BigFn; readonly lo: bigint; readonly hi: bigint };

/** A primitive: returns a jump target, -1 to stop the action, or undefined to fall through. */
export type Prim = (s: PacketState, ad: ActionData) => number | undefined;

export interface ActionRT {
  readonly name: string;
  readonly id: number;
  readonly params: readonly { readonly name: string; readonly width: number }[];
  readonly run: (s: PacketState, ad: ActionData) => void;
  /**
   * `run`'s body as JS statements over `s`, `n`, `v` and `adn` when every primitive has JS
   * (an `exit` is `s.exit = true; return;`), for inlining into a generated pipeline.
   */
  readonly js: string | null;
}

/** egress_spec's value that means "drop" (v1model's mark_to_drop). */
export const DROP_PORT = 511;

/**
 * A reset of the packet state to a new packet's, as one generated function: every number
 * slot zeroed, every validity bit set and every varbit length zeroed by explicit stores
 * (cheaper than three `fill` calls into the runtime for up to ~160 slots, measured; a larger
 * state is filled); BigInt slots filled.
 */
export function compileStateReset(
  nCount: number,
  bCount: number,
  validInit: Uint8Array,
): (s: PacketState, pkt: Uint8Array) => void {
  const lines: string[] = [];
  const int = (x: number): string => {
    if (!Number.isSafeInteger(x) || x < 0) throw new Error(`state reset: ${x} is not an index`);
    return `${x}`;
  };
  if (nCount > 160) lines.push('s.n.fill(0);');
  else {
    lines.push('const n = s.n;');
    for (let i = 0; i < nCount; i++) lines.push(`n[${int(i)}] = 0;`);
  }
  if (bCount > 0) lines.push('s.b.fill(0n);');
  if (validInit.length > 256) lines.push('s.valid.set(VI);');
  else {
    lines.push('const v = s.valid;');
    validInit.forEach((x, i) => {
      lines.push(`v[${int(i)}] = ${x === 1 ? 1 : 0};`);
    });
  }
  if (validInit.length > 256) lines.push('s.vb.fill(0);');
  else {
    lines.push('const vb = s.vb;');
    for (let i = 0; i < validInit.length; i++) lines.push(`vb[${int(i)}] = 0;`);
  }
  lines.push(
    's.pkt = pkt; s.cursor = 0; s.exit = false;',
    's.cloneSession = -1; s.cloneFieldList = -1; s.resubmit = -1; s.recirculate = -1; s.learn = -1;',
  );
  const make = new Function('VI', `return function reset(s, pkt) {\n${lines.join('\n')}\n};`);
  return make(validInit) as (s: PacketState, pkt: Uint8Array) => void;
}
