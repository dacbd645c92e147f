/**
 * Hand-assembled wasm modules for the sandbox's hostile-guest tests: bytes written out, so a
 * test can build a module no assembler would accept (an index past the module's own) and
 * needs no toolchain.
 */

export function uleb(n: number): number[] {
  const out: number[] = [];
  let v = n;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

export function section(id: number, payload: readonly number[]): number[] {
  return [id, ...uleb(payload.length), ...payload];
}

export function vec(items: readonly (readonly number[])[]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

export function name(s: string): number[] {
  const b = new TextEncoder().encode(s);
  return [...uleb(b.length), ...b];
}

export const I32 = 0x7f;
export const I64 = 0x7e;
export const FUNCREF = 0x70;

export interface AbiGuestParts {
  /** Body of `run: (i32, i32) -> i64`: local declarations, code, and the final `end`. */
  readonly run: readonly number[];
  /** Table entries (element type + limits), e.g. [FUNCREF, 0x00, 0x00] = funcref, min 0, no max. */
  readonly tables?: readonly (readonly number[])[];
  /** Global entries (type, mutability, init expression with its `end`). */
  readonly globals?: readonly (readonly number[])[];
  /** Memory limits (default min 1, max 1). */
  readonly memory?: readonly number[];
}

/**
 * A module following the guest ABI: memory exported as `memory`, `alloc(i32) -> i32`
 * (returns 0), and `run(i32, i32) -> i64` with the given body. Types: 0 = (i32) -> i32,
 * 1 = (i32, i32) -> i64.
 */
export function abiGuest(parts: AbiGuestParts): Uint8Array {
  const types = vec([
    [0x60, 1, I32, 1, I32],
    [0x60, 2, I32, I32, 1, I64],
  ]);
  const alloc = [0x00, 0x41, 0x00, 0x0b];
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, types),
    ...section(3, vec([[0], [1]])),
    ...(parts.tables ? section(4, vec(parts.tables)) : []),
    ...section(5, vec([parts.memory ?? [0x01, 0x01, 0x01]])),
    ...(parts.globals ? section(6, vec(parts.globals)) : []),
    ...section(
      7,
      vec([
        [...name('memory'), 0x02, 0x00],
        [...name('alloc'), 0x00, 0x00],
        [...name('run'), 0x00, 0x01],
      ]),
    ),
    ...section(
      10,
      vec([
        [...uleb(alloc.length), ...alloc],
        [...uleb(parts.run.length), ...parts.run],
      ]),
    ),
  ];
  return new Uint8Array(bytes);
}
