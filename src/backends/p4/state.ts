/** Per-packet state of the behavioral switch and the closure shapes compiled from JSON. */

export interface Hdr {
  valid: boolean;
  readonly f: bigint[];
  /** Bits held by the header's varbit field, if it has one (set by extract). */
  vb: number;
}

export interface PacketState {
  readonly h: Hdr[];
  /** The bytes as received; the parser's cursor is in bytes into them. */
  readonly pkt: Uint8Array;
  cursor: number;
  /** Set by the exit primitive: the rest of the current pipeline is skipped. */
  exit: boolean;
}

/** An expression: action data in, a value out (bools are 0n / 1n). */
export type Eval = (s: PacketState, ad: readonly bigint[]) => bigint;

/** A primitive: returns a jump target, -1 to stop the action, or undefined to fall through. */
export type Prim = (s: PacketState, ad: readonly bigint[]) => number | undefined;

export interface ActionRT {
  readonly name: string;
  readonly id: number;
  readonly params: readonly { readonly name: string; readonly width: number }[];
  readonly run: (s: PacketState, ad: readonly bigint[]) => void;
}
