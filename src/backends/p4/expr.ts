/**
 * BMv2 JSON expressions compiled to closures specialised by value range.
 *
 * BMv2 evaluates expressions on unbounded integers; the JSON masks results where P4 wraps
 * (`& 0xff`, `two_comp_mod`). Each compiled expression carries the range [lo, hi] its values
 * can take, worked out from field widths and constants at compile time. Whenever the range of
 * an operation's result (and, for bitwise operators, of its operands) fits in what doubles or
 * int32 operators compute exactly, the closure works on plain numbers; otherwise on BigInts.
 * Semantics are BMv2's either way — the range only picks the representation — and packets on
 * the common path (fields of ≤ 32 bits, constants, action data) never touch a BigInt.
 *
 * Every expression is a closure; most also carry their JavaScript (`js`, built from slot
 * numbers, constants and operators only), which the generated parser, controls, actions and
 * checksums (parser.ts, pipeline.ts, checksum.ts) splice in so that a whole control runs as one
 * function. Expressions without JS (BigInt arithmetic, hashes, registers) run as closures.
 */

import { MAX_BMV2_WIDTH } from './bmv2-check.js';
import { P4RuntimeError } from './errors.js';
import type { ActionData, BigFn, Eval, NumFn, PacketState } from './state.js';
import { NUM_BITS } from './state.js';

/** Where a field lives in the packet state, and its type. */
export interface FieldSlot {
  readonly header: number;
  readonly width: number;
  readonly signed: boolean;
  /** In `b` (BigInt) rather than `n`. */
  readonly wide: boolean;
  /** Index into `n` or `b`. A varbit field is wide, its width the most bits it can hold. */
  readonly slot: number;
}

/**
 * Thrown inside the parser to leave it with a parser error code. Not an Error: malformed
 * packets are ordinary traffic, and an Error would capture a stack trace for each of them.
 */
export class ParserError {
  constructor(readonly code: number) {}
}

const SAFE = 2n ** 53n - 1n;
const I32_LO = -(2n ** 31n);
const I32_HI = 2n ** 31n - 1n;
const U32_HI = 2n ** 32n - 1n;

export const isSafe = (lo: bigint, hi: bigint): boolean => lo >= -SAFE && hi <= SAFE;

export const numEval = (f: NumFn, lo: bigint, hi: bigint, js: string | null = null): Eval => ({
  num: true,
  f,
  lo,
  hi,
  js,
});
export const bigEval = (f: BigFn, lo: bigint, hi: bigint): Eval => ({ num: false, f, lo, hi });

/** The width operand of two_comp_mod / sat_cast / usat_cast: a constant the types allow. */
function castWidth(r: Eval, op: string): number {
  if (r.lo !== r.hi) throw new P4RuntimeError('P4_JSON', `${op} needs a constant width`);
  if (r.lo < 0n || r.lo > BigInt(MAX_BMV2_WIDTH))
    throw new P4RuntimeError('P4_JSON', `${op} needs a width in 0..${MAX_BMV2_WIDTH}, got ${r.lo}`);
  return Number(r.lo);
}

export function widthRange(width: number, signed: boolean): [bigint, bigint] {
  if (width === 0) return [0n, 0n];
  return signed
    ? [-(1n << BigInt(width - 1)), (1n << BigInt(width - 1)) - 1n]
    : [0n, (1n << BigInt(width)) - 1n];
}

/** The expression as a BigInt closure, whatever its representation. */
export function asBig(e: Eval): BigFn {
  if (!e.num) return e.f;
  const f = e.f;
  return (s, ad) => BigInt(f(s, ad));
}

/** The expression as a number closure; only for expressions whose range is safe. */
export function asNum(e: Eval): NumFn {
  if (e.num) return e.f;
  if (!isSafe(e.lo, e.hi)) throw new Error('asNum on an unsafe range');
  const f = e.f;
  return (s, ad) => Number(f(s, ad));
}

/** A truth test on an expression (booleans are 0 / 1, anything non-zero is true). */
export function truth(e: Eval): (s: PacketState, ad: ActionData) => boolean {
  if (e.num) {
    const f = e.f;
    return (s, ad) => f(s, ad) !== 0;
  }
  const f = e.f;
  return (s, ad) => f(s, ad) !== 0n;
}

export function constant(v: bigint): Eval {
  if (isSafe(v, v)) {
    const n = Number(v);
    return numEval(() => n, v, v, n < 0 ? `(${n})` : `${n}`);
  }
  return bigEval(() => v, v, v);
}

export function fieldEval(fs: FieldSlot): Eval {
  const [lo, hi] = widthRange(fs.width, fs.signed);
  const i = fs.slot;
  if (fs.wide) return bigEval((s) => s.b[i]!, lo, hi);
  return numEval((s) => s.n[i]!, lo, hi, `n[${i}]`);
}

export function runtimeData(index: number, width: number): Eval {
  const [lo, hi] = widthRange(width, false);
  if (width <= NUM_BITS) return numEval((_s, ad) => ad.n[index]!, lo, hi, `adn[${index}]`);
  return bigEval((_s, ad) => ad.b[index]!, lo, hi);
}

const bool = (f: (s: PacketState, ad: ActionData) => boolean, js: string | null = null): Eval =>
  numEval((s, ad) => (f(s, ad) ? 1 : 0), 0n, 1n, js === null ? null : `(${js} ? 1 : 0)`);

/** JS of two operands when both have it. */
const js2 = (l: Eval, r: Eval): [string, string] | null =>
  l.num && r.num && l.js !== null && r.js !== null ? [l.js, r.js] : null;

const bitLen = (v: bigint): number => (v < 0n ? -v : v).toString(2).length;
function minB(...v: bigint[]): bigint {
  let m = v[0]!;
  for (const x of v) if (x < m) m = x;
  return m;
}
function maxB(...v: bigint[]): bigint {
  let m = v[0]!;
  for (const x of v) if (x > m) m = x;
  return m;
}

/** Reduce modulo 2^w into [0, 2^w) (unsigned) or [-2^(w-1), 2^(w-1)) (signed), on numbers. */
export function wrapNum(width: number, signed: boolean): (v: number) => number {
  if (width === 0) return () => 0;
  const M = 2 ** width;
  const H = 2 ** (width - 1);
  if (!signed) {
    if (width < 32) {
      const m = M - 1;
      return (v) => v & m; // ToInt32 is exact modulo 2^32 for any safe integer
    }
    if (width === 32) return (v) => v >>> 0;
    return (v) => v - Math.floor(v / M) * M;
  }
  if (width <= 32) {
    const sh = 32 - width;
    return (v) => (v << sh) >> sh; // sign-extend the low `width` bits
  }
  return (v) => {
    const m = v - Math.floor(v / M) * M;
    return m >= H ? m - M : m;
  };
}

/**
 * Store an expression into a field, truncated as BMv2 does: unsigned fields keep the low
 * `width` bits, signed ones wrap in two's complement. No masking when the range already fits.
 */
export function storeInto(fs: FieldSlot, e: Eval): (s: PacketState, ad: ActionData) => void {
  const i = fs.slot;
  const w = fs.width;
  if (fs.wide) {
    const f = asBig(e);
    if (fs.signed)
      return (s, ad) => {
        s.b[i] = BigInt.asIntN(w, f(s, ad));
      };
    return (s, ad) => {
      s.b[i] = BigInt.asUintN(w, f(s, ad));
    };
  }
  const [lo, hi] = widthRange(w, fs.signed);
  if (e.num) {
    const f = e.f;
    if (e.lo >= lo && e.hi <= hi)
      return (s, ad) => {
        s.n[i] = f(s, ad);
      };
    const wrap = wrapNum(w, fs.signed);
    return (s, ad) => {
      s.n[i] = wrap(f(s, ad));
    };
  }
  const f = e.f;
  if (fs.signed)
    return (s, ad) => {
      s.n[i] = Number(BigInt.asIntN(w, f(s, ad)));
    };
  return (s, ad) => {
    s.n[i] = Number(BigInt.asUintN(w, f(s, ad)));
  };
}

/** Two operands as numbers when both ranges allow `test`, else both as BigInts. */
function bothNum(l: Eval, r: Eval, test: (x: Eval) => boolean): [NumFn, NumFn] | null {
  return l.num && r.num && test(l) && test(r) ? [l.f, r.f] : null;
}

const inI32 = (x: Eval): boolean => x.lo >= I32_LO && x.hi <= I32_HI;
const inU32 = (x: Eval): boolean => x.lo >= 0n && x.hi <= U32_HI;
const nonNegSafe = (x: Eval): boolean => x.lo >= 0n && x.hi <= SAFE;

const HI32 = 4294967296;

/** A binary operator of BMv2 JSON. */
export function binary(op: string, l: Eval, r: Eval): Eval {
  const L = l.lo;
  const H = l.hi;
  switch (op) {
    case '+':
    case '-':
    case '*': {
      const lo = op === '+' ? L + r.lo : op === '-' ? L - r.hi : minB(L * r.lo, L * r.hi, H * r.lo, H * r.hi);
      const hi = op === '+' ? H + r.hi : op === '-' ? H - r.lo : maxB(L * r.lo, L * r.hi, H * r.lo, H * r.hi);
      const n = bothNum(l, r, () => isSafe(lo, hi));
      if (n) {
        const [a, b] = n;
        const j = js2(l, r);
        const js = j && `(${j[0]} ${op} ${j[1]})`;
        if (op === '+') return numEval((s, ad) => a(s, ad) + b(s, ad), lo, hi, js);
        if (op === '-') return numEval((s, ad) => a(s, ad) - b(s, ad), lo, hi, js);
        return numEval((s, ad) => a(s, ad) * b(s, ad), lo, hi, js);
      }
      const a = asBig(l);
      const b = asBig(r);
      if (op === '+') return bigEval((s, ad) => a(s, ad) + b(s, ad), lo, hi);
      if (op === '-') return bigEval((s, ad) => a(s, ad) - b(s, ad), lo, hi);
      return bigEval((s, ad) => a(s, ad) * b(s, ad), lo, hi);
    }
    case '/':
    case '%': {
      // |a / b| and |a % b| are at most |a|; division by zero gives 0 (BMv2 leaves it undefined).
      const m = maxB(L < 0n ? -L : L, H < 0n ? -H : H);
      const lo = L < 0n ? -m : 0n;
      const hi = H > 0n ? m : 0n;
      const within = (x: Eval): boolean => x.lo >= -U32_HI && x.hi <= U32_HI;
      const n = bothNum(l, r, within);
      if (n) {
        const [a, b] = n;
        const j = js2(l, r);
        if (op === '/')
          return numEval(
            (s, ad) => {
              const d = b(s, ad);
              return d === 0 ? 0 : Math.trunc(a(s, ad) / d);
            },
            lo,
            hi,
            j && `(${j[1]} === 0 ? 0 : Math.trunc(${j[0]} / ${j[1]}))`,
          );
        return numEval(
          (s, ad) => {
            const d = b(s, ad);
            return d === 0 ? 0 : a(s, ad) % d;
          },
          lo,
          hi,
          j && `(${j[1]} === 0 ? 0 : ${j[0]} % ${j[1]})`,
        );
      }
      const a = asBig(l);
      const b = asBig(r);
      if (op === '/')
        return bigEval(
          (s, ad) => {
            const d = b(s, ad);
            return d === 0n ? 0n : a(s, ad) / d;
          },
          lo,
          hi,
        );
      return bigEval(
        (s, ad) => {
          const d = b(s, ad);
          return d === 0n ? 0n : a(s, ad) % d;
        },
        lo,
        hi,
      );
    }
    case '<<': {
      if (r.lo >= 0n && r.hi <= 1024n) {
        const f = 1n << r.hi;
        const lo = L < 0n ? L * f : L;
        const hi = H > 0n ? H * f : H;
        if (l.num && r.num && isSafe(lo, hi)) {
          const a = l.f;
          const b = r.f;
          const j = js2(l, r);
          if (r.lo === r.hi) {
            const k = 2 ** Number(r.lo);
            return numEval((s, ad) => a(s, ad) * k, lo, hi, j && `(${j[0]} * ${k})`);
          }
          return numEval((s, ad) => a(s, ad) * 2 ** b(s, ad), lo, hi, j && `(${j[0]} * 2 ** ${j[1]})`);
        }
        const a = asBig(l);
        const b = asBig(r);
        return bigEval((s, ad) => a(s, ad) << b(s, ad), lo, hi);
      }
      const a = asBig(l);
      const b = asBig(r);
      const m = 1n << 4096n;
      // A shift amount read from the packet may be 2^32: shifting by more than 4096 leaves the
      // low 4096 bits (all any field can keep) zero, so clamp it rather than build a huge BigInt.
      return bigEval(
        (s, ad) => {
          const by = b(s, ad);
          return a(s, ad) << (by > 4096n ? 4096n : by);
        },
        -m,
        m,
      );
    }
    case '>>': {
      const lo = L < 0n ? L : 0n;
      const hi = H > 0n ? H : 0n;
      // Math.floor(a / 2^b) is BigInt's `>>` while 2^b is finite, or `a` is not negative.
      if (l.num && r.num && r.lo >= 0n && (L >= 0n || r.hi < 53n)) {
        const a = l.f;
        const b = r.f;
        const j = js2(l, r);
        if (r.lo === r.hi && r.lo < 32n) {
          const k = Number(r.lo);
          if (inU32(l)) return numEval((s, ad) => a(s, ad) >>> k, lo, hi, j && `(${j[0]} >>> ${k})`);
          if (inI32(l)) return numEval((s, ad) => a(s, ad) >> k, lo, hi, j && `(${j[0]} >> ${k})`);
        }
        return numEval(
          (s, ad) => Math.floor(a(s, ad) / 2 ** b(s, ad)),
          lo,
          hi,
          j && `Math.floor(${j[0]} / 2 ** ${j[1]})`,
        );
      }
      const a = asBig(l);
      const b = asBig(r);
      return bigEval((s, ad) => a(s, ad) >> b(s, ad), lo, hi);
    }
    case '&':
    case '|':
    case '^': {
      const bits = Math.max(bitLen(L), bitLen(H), bitLen(r.lo), bitLen(r.hi));
      const top = (1n << BigInt(bits)) - 1n;
      const nonNeg = L >= 0n && r.lo >= 0n;
      const lo = nonNeg ? 0n : -(1n << BigInt(bits));
      const hi = nonNeg && op === '&' ? minB(H, r.hi) : top;
      let n = bothNum(l, r, inU32);
      if (n) {
        const [a, b] = n;
        const j = js2(l, r);
        const js = j && `((${j[0]} ${op} ${j[1]}) >>> 0)`;
        if (op === '&') return numEval((s, ad) => (a(s, ad) & b(s, ad)) >>> 0, lo, hi, js);
        if (op === '|') return numEval((s, ad) => (a(s, ad) | b(s, ad)) >>> 0, lo, hi, js);
        return numEval((s, ad) => (a(s, ad) ^ b(s, ad)) >>> 0, lo, hi, js);
      }
      n = bothNum(l, r, inI32);
      if (n) {
        const [a, b] = n;
        const j = js2(l, r);
        const js = j && `(${j[0]} ${op} ${j[1]})`;
        if (op === '&') return numEval((s, ad) => a(s, ad) & b(s, ad), lo, hi, js);
        if (op === '|') return numEval((s, ad) => a(s, ad) | b(s, ad), lo, hi, js);
        return numEval((s, ad) => a(s, ad) ^ b(s, ad), lo, hi, js);
      }
      n = bothNum(l, r, nonNegSafe);
      if (n) {
        // 33..53-bit operands (MAC addresses): the high and the low 32 bits separately.
        const [a, b] = n;
        const opFn =
          op === '&'
            ? (x: number, y: number) => (x & y) >>> 0
            : op === '|'
              ? (x: number, y: number) => (x | y) >>> 0
              : (x: number, y: number) => (x ^ y) >>> 0;
        return numEval(
          (s, ad) => {
            const x = a(s, ad);
            const y = b(s, ad);
            return opFn(Math.floor(x / HI32), Math.floor(y / HI32)) * HI32 + opFn(x % HI32, y % HI32);
          },
          lo,
          hi,
        );
      }
      const a = asBig(l);
      const b = asBig(r);
      if (op === '&') return bigEval((s, ad) => a(s, ad) & b(s, ad), lo, hi);
      if (op === '|') return bigEval((s, ad) => a(s, ad) | b(s, ad), lo, hi);
      return bigEval((s, ad) => a(s, ad) ^ b(s, ad), lo, hi);
    }
    case '==':
    case '!=':
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const n = bothNum(l, r, () => true);
      const [a, b] = n ?? [asBig(l), asBig(r)];
      const A = a as (s: PacketState, ad: ActionData) => number;
      const B = b as (s: PacketState, ad: ActionData) => number;
      // Both sides share one representation, so `===` compares values.
      const j = js2(l, r);
      const js = j && `${j[0]} ${op === '==' ? '===' : op === '!=' ? '!==' : op} ${j[1]}`;
      switch (op) {
        case '==':
          return bool((s, ad) => A(s, ad) === B(s, ad), js);
        case '!=':
          return bool((s, ad) => A(s, ad) !== B(s, ad), js);
        case '<':
          return bool((s, ad) => A(s, ad) < B(s, ad), js);
        case '<=':
          return bool((s, ad) => A(s, ad) <= B(s, ad), js);
        case '>':
          return bool((s, ad) => A(s, ad) > B(s, ad), js);
        default:
          return bool((s, ad) => A(s, ad) >= B(s, ad), js);
      }
    }
    case 'and':
    case 'or': {
      const a = truth(l);
      const b = truth(r);
      const j = js2(l, r);
      const js = j && `(${j[0]} !== 0 ${op === 'and' ? '&&' : '||'} ${j[1]} !== 0)`;
      if (op === 'and') return bool((s, ad) => a(s, ad) && b(s, ad), js);
      return bool((s, ad) => a(s, ad) || b(s, ad), js);
    }
    case 'two_comp_mod': {
      const w = castWidth(r, op);
      const [lo, hi] = widthRange(w, true);
      if (w <= NUM_BITS) {
        if (l.num) {
          const a = l.f;
          const wrap = wrapNum(w, true);
          const sh = 32 - w;
          const js = w <= 32 && l.js !== null ? `((${l.js} << ${sh}) >> ${sh})` : null;
          return numEval((s, ad) => wrap(a(s, ad)), lo, hi, js);
        }
        const a = l.f;
        return numEval((s, ad) => Number(BigInt.asIntN(w, a(s, ad))), lo, hi);
      }
      const a = asBig(l);
      return bigEval((s, ad) => BigInt.asIntN(w, a(s, ad)), lo, hi);
    }
    case 'usat_cast':
    case 'sat_cast': {
      const w = castWidth(r, op);
      const [lo, hi] = widthRange(w, op === 'sat_cast');
      if (l.num && isSafe(lo, hi)) {
        const a = l.f;
        const nlo = Number(lo);
        const nhi = Number(hi);
        return numEval(
          (s, ad) => {
            return Math.min(Math.max(a(s, ad), nlo), nhi);
          },
          lo,
          hi,
          l.js === null ? null : `Math.min(Math.max(${l.js}, ${nlo}), ${nhi})`,
        );
      }
      const a = asBig(l);
      const big = bigEval(
        (s, ad) => {
          const x = a(s, ad);
          if (x < lo) return lo;
          if (x > hi) return hi;
          return x;
        },
        lo,
        hi,
      );
      return isSafe(lo, hi) ? numEval(asNum(big), lo, hi) : big;
    }
    default:
      throw new P4RuntimeError('P4_JSON', `unsupported operator '${op}'`);
  }
}

export function unary(op: string, r: Eval): Eval {
  switch (op) {
    case 'not': {
      const t = truth(r);
      return bool((s, ad) => !t(s, ad), r.num && r.js !== null ? `${r.js} === 0` : null);
    }
    case 'd2b': {
      const t = truth(r);
      return bool(t, r.num && r.js !== null ? `${r.js} !== 0` : null);
    }
    case 'b2d':
      return r;
    case '~':
    case '-': {
      const lo = op === '~' ? -r.hi - 1n : -r.hi;
      const hi = op === '~' ? -r.lo - 1n : -r.lo;
      if (r.num && isSafe(lo, hi)) {
        const a = r.f;
        return op === '~'
          ? numEval((s, ad) => -a(s, ad) - 1, lo, hi, r.js === null ? null : `(-${r.js} - 1)`)
          : numEval((s, ad) => -a(s, ad), lo, hi, r.js === null ? null : `(-${r.js})`);
      }
      const a = asBig(r);
      return op === '~' ? bigEval((s, ad) => ~a(s, ad), lo, hi) : bigEval((s, ad) => -a(s, ad), lo, hi);
    }
    default:
      throw new P4RuntimeError('P4_JSON', `unsupported unary operator '${op}'`);
  }
}

/** `c ? a : b`: numbers when both branches are, BigInts otherwise. */
export function ternary(c: Eval, a: Eval, b: Eval): Eval {
  const t = truth(c);
  const lo = minB(a.lo, b.lo);
  const hi = maxB(a.hi, b.hi);
  if (a.num && b.num) {
    const x = a.f;
    const y = b.f;
    const js =
      c.num && c.js !== null && a.js !== null && b.js !== null ? `(${c.js} !== 0 ? ${a.js} : ${b.js})` : null;
    return numEval((s, ad) => (t(s, ad) ? x(s, ad) : y(s, ad)), lo, hi, js);
  }
  const x = asBig(a);
  const y = asBig(b);
  return bigEval((s, ad) => (t(s, ad) ? x(s, ad) : y(s, ad)), lo, hi);
}

/** A value read from an unbounded integer: number if it fits, BigInt otherwise. */
export function bigToEval(f: BigFn, lo: bigint, hi: bigint): Eval {
  return isSafe(lo, hi) ? numEval((s, ad) => Number(f(s, ad)), lo, hi) : bigEval(f, lo, hi);
}

// ------------------------------------------------------------ JavaScript generation

/**
 * Compile a function body over `s` and `ad` (with `n`, `v`, `adn` bound). The source is built
 * only from slot numbers, numeric constants and operators chosen here — never from a string in
 * the program — so nothing a P4 program says reaches it as code.
 */
export function jsFunction<R>(body: string): (s: PacketState, ad: ActionData) => R {
  // bind only what the body reads: parser and key code is called without action data
  const prelude = [
    /\bn[[.]/.test(body) ? 'const n = s.n;' : '',
    /\bv\[/.test(body) ? 'const v = s.valid;' : '',
    /\badn\[/.test(body) ? 'const adn = ad.n;' : '',
  ].join('');
  return new Function('s', 'ad', `${prelude}\n${body}`) as (s: PacketState, ad: ActionData) => R;
}

/** The expression as one compiled function when it has JS, else its closure. */
export function numFn(e: Eval & { num: true }): NumFn {
  return e.js === null ? e.f : jsFunction<number>(`return ${e.js};`);
}

/** A truth test, compiled to one function when the expression has JS. */
export function truthFn(e: Eval): (s: PacketState, ad: ActionData) => boolean {
  if (e.num && e.js !== null) return jsFunction<boolean>(`return ${e.js} !== 0;`);
  return truth(e);
}

/** The store of `e` into a number field as a JS statement, when both have one. */
export function storeJs(fs: FieldSlot, e: Eval): string | null {
  if (fs.wide || !e.num || e.js === null) return null;
  const [lo, hi] = widthRange(fs.width, fs.signed);
  const to = `n[${fs.slot}] = `;
  if (e.lo >= lo && e.hi <= hi) return `${to}${e.js};`;
  const w = fs.width;
  if (w > 32) return null;
  if (fs.signed) return `${to}(${e.js} << ${32 - w}) >> ${32 - w};`;
  if (w === 32) return `${to}${e.js} >>> 0;`;
  return `${to}${e.js} & ${2 ** w - 1};`;
}
