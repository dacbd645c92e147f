/**
 * The TNA rewrite's parsers. The ingress parser extracts TNA's intrinsic metadata, skips the
 * port metadata, zeroes the metadata (v1model starts it at zero) and then runs the v1model
 * parser graph. The egress parser extracts egress intrinsic metadata and the bridged header,
 * then re-runs the same graph (when egress does anything) without recomputing bridged fields.
 *
 * v1model parser-error semantics are kept explicitly, since TNA's differ (a TNA parser error
 * drops or flags; v1model records an error code and goes on to ingress):
 * - `transition reject` and a select that matches nothing end parsing and go on, as in v1model;
 * - when the program reads standard_metadata.parser_error, a failed `verify` and a select
 *   without a match record their error code in metadata (PacketTooShort comes from TNA's
 *   ig_prsr_md.parser_err, folded in at the start of ingress);
 * - when it reads standard_metadata.checksum_error, every path out of the ingress parser
 *   passes through states that run the verify_checksum calculations with TNA's Checksum.
 */

import type { IrChecksum, IrExpr, IrParserOp, IrProgram, IrSelectCase, IrStmt, IrType } from './ir.js';
import {
  BRIDGE,
  type EmitCtx,
  type Gress,
  PARAMS,
  SCALARS,
  type TnaLayout,
  TnaUnsupportedError,
} from './tna-layout.js';
import { bitsLit, ident, Lines, literal } from './tna-text.js';

/** What the parser emitter needs from the rewrite. */
export interface ParserWriter {
  readonly p: IrProgram;
  readonly layout: TnaLayout;
  readonly bridged: ReadonlySet<string>;
  readonly scalarTypes: ReadonlyMap<string, IrType>;
  readonly egressUsed: boolean;
  /** The metadata field holding parser_error / checksum_error, when the program reads them. */
  readonly parserErrorField: string | null;
  readonly checksumErrorField: string | null;
  expr(e: IrExpr, ctx: EmitCtx): string;
  stmt(s: IrStmt, ctx: EmitCtx, L: Lines): void;
  scalarPath(field: string, gress: Gress): string;
}

export function emitParser(w: ParserWriter, L: Lines, gress: Gress): void {
  const P = PARAMS[gress];
  const name = gress === 'ingress' ? 'IngressParser' : 'EgressParser';
  const intrType = gress === 'ingress' ? 'ingress_intrinsic_metadata_t' : 'egress_intrinsic_metadata_t';
  L.open(
    `parser ${name}(packet_in pkt, out headers_t hdr, out metadata_t ${P.md}, out ${intrType} ${P.intr}) {`,
  );
  const ctx: EmitCtx = { gress, params: [], decls: new Map(), parser: true };
  const reparse = gress === 'ingress' || w.egressUsed;
  const states = new Lines();
  const taken = new Set(w.p.parser.states.map((s) => s.name));
  const fresh = (base: string): string => {
    let n = base;
    for (let i = 0; taken.has(n); i++) n = `${base}_${i}`;
    taken.add(n);
    return n;
  };
  const entry = taken.has('start') ? fresh('start_v1model') : 'start';
  const stateName = (s: string): string => (s === 'start' ? entry : s);
  // Where parsing ends: through the checksum verification states (ingress, when read).
  const verifies = gress === 'ingress' && w.checksumErrorField !== null ? w.p.verifyChecksums : [];
  const verifyStates = verifies.map((_, i) => fresh(`verify_checksum_${i}`));
  const done = verifyStates[0] ?? 'accept';
  // Error states record v1model's error code (ingress only: egress keeps the bridged value).
  const recordErrors = gress === 'ingress' && w.parserErrorField !== null;
  const errorStates = new Map<string, string>();
  const onError = (error: string): string => {
    if (!recordErrors) return done;
    let s = errorStates.get(error);
    if (!s) {
      s = fresh(`parser_error_${error}`);
      errorStates.set(error, s);
    }
    return s;
  };
  const target = (n: string | null): string => (n === null || n === 'reject' ? done : stateName(n));

  if (reparse)
    for (const v of w.p.valueSets) L.line(`value_set<bit<${v.width}>>(${v.size}) ${ident(v.name)};`);
  for (const i of verifies.keys()) L.line(`Checksum() verify_ck_${i};`);

  startState(w, states, gress, reparse ? stateName(w.p.parser.init) : 'accept');
  if (reparse) {
    for (const s of w.p.parser.states) {
      let current = stateName(s.name);
      states.open(`state ${current} {`);
      for (const op of s.ops) {
        if (op.k === 'verify') {
          // verify(c, e): go on when c holds, else stop parsing (recording e when it is read),
          // as v1model does; a TNA parser error would drop the packet instead.
          const cont = fresh(`${current}_verified`);
          states.open(`transition select((bit<1>)(${w.expr(op.test, ctx)})) {`);
          states.line(`1w1: ${cont};`);
          states.line(`default: ${onError(errorName(w.p, op.error))};`);
          states.close();
          states.close();
          states.open(`state ${cont} {`);
          current = cont;
          continue;
        }
        parserOp(w, op, ctx, states);
      }
      transition(w, s.keys, s.cases, ctx, states, target, onError('NoMatch'));
      states.close();
    }
  }
  for (const [error, s] of errorStates) {
    states.open(`state ${s} {`);
    states.line(
      `${w.scalarPath(w.parserErrorField!, gress)} = ${bitsLit(32, BigInt(errorCode(w.p, error)))};`,
    );
    states.line(`transition ${done};`);
    states.close();
  }
  for (const [i, c] of verifies.entries()) verifyChecksum(w, c, i, verifyStates, ctx, states);
  L.out.push(...states.out.map((l) => (l === '' ? l : `    ${l}`)));
  L.close();
  L.line();
}

function startState(w: ParserWriter, L: Lines, gress: Gress, next: string): void {
  const P = PARAMS[gress];
  L.open('state start {');
  L.line(`pkt.extract(${P.intr});`);
  if (gress === 'ingress') {
    L.line('pkt.advance(PORT_METADATA_SIZE);');
    // v1model metadata starts zeroed; bridged fields start zeroed in the bridged header.
    for (const [f, t] of w.scalarTypes)
      if (!w.bridged.has(f)) L.line(`${P.md}.${ident(f)} = ${literal(t, 0n)};`);
    if (w.bridged.size > 0) {
      L.line(`hdr.${BRIDGE}.setValid();`);
      for (const f of w.bridged) {
        const t = w.scalarTypes.get(f);
        L.line(
          t
            ? `hdr.${BRIDGE}.${ident(f)} = ${literal(t, 0n)};`
            : `hdr.${BRIDGE}.${ident(f)} = ${P.intr}.${ident(f)};`,
        );
      }
    }
  } else if (w.bridged.size > 0) {
    L.line(`pkt.extract(hdr.${BRIDGE});`);
  }
  L.line(`transition ${next};`);
  L.close();
}

function transition(
  w: ParserWriter,
  keys: readonly IrExpr[],
  cases: readonly IrSelectCase[],
  ctx: EmitCtx,
  L: Lines,
  target: (n: string | null) => string,
  noMatch: string,
): void {
  const only = cases[0];
  if (keys.length === 0 || (cases.length === 1 && only?.keys.every((k) => k.k === 'default'))) {
    L.line(`transition ${target(only?.next ?? null)};`);
    return;
  }
  L.open(`transition select(${keys.map((k) => w.expr(k, ctx)).join(', ')}) {`);
  const widths = keys.map((k) => (k.t.k === 'bits' ? k.t.w : 1));
  let hasDefault = false;
  for (const c of cases) {
    const allDefault = c.keys.length === 0 || c.keys.every((k) => k.k === 'default');
    hasDefault ||= allDefault;
    const ks = c.keys.map((k, i) =>
      k.k === 'default'
        ? '_'
        : k.k === 'vset'
          ? ident(k.vset)
          : k.mask === null
            ? bitsLit(widths[i]!, k.value)
            : `${bitsLit(widths[i]!, k.value)} &&& ${bitsLit(widths[i]!, k.mask)}`,
    );
    const keyset = allDefault ? 'default' : ks.length === 1 ? ks[0] : `(${ks.join(', ')})`;
    L.line(`${keyset}: ${target(c.next)};`);
  }
  // No match: v1model records NoMatch and goes on to ingress; say so instead of TNA's drop.
  if (!hasDefault) L.line(`default: ${noMatch};`);
  L.close();
}

function parserOp(w: ParserWriter, op: IrParserOp, ctx: EmitCtx, L: Lines): void {
  switch (op.k) {
    case 'extract':
      L.line(`pkt.extract(${w.layout.header(op.header)});`);
      return;
    case 'extractNext':
      L.line(`pkt.extract(${w.layout.header(op.stack)}.next);`);
      return;
    case 'extractVarbit':
      L.line(`pkt.extract(${w.layout.header(op.header)}, ${w.expr(op.bits, ctx)});`);
      return;
    case 'advance':
      L.line(`pkt.advance(${w.expr(op.bits, ctx)});`);
      return;
    case 'verify':
      throw new TnaUnsupportedError(
        'verify',
        'reached the op emitter (internal error: states split at verify)',
      );
    case 'stmt':
      // Egress re-parses: what it has from ingress must not be recomputed over.
      if (
        ctx.gress === 'egress' &&
        op.stmt.k === 'assign' &&
        op.stmt.target.header === SCALARS &&
        w.bridged.has(op.stmt.target.field)
      ) {
        return;
      }
      w.stmt(op.stmt, ctx, L);
      return;
  }
}

/** verify_checksum i: when its condition holds, add the data and the checksum and check the sum. */
function verifyChecksum(
  w: ParserWriter,
  c: IrChecksum,
  i: number,
  names: readonly string[],
  ctx: EmitCtx,
  L: Lines,
): void {
  const next = names[i + 1] ?? 'accept';
  const run = `${names[i]}_run`;
  L.open(`state ${names[i]} {`);
  if (c.condition) {
    L.open(`transition select((bit<1>)(${w.expr(c.condition, ctx)})) {`);
    L.line(`1w1: ${run};`);
    L.line(`default: ${next};`);
    L.close();
    L.close();
    L.open(`state ${run} {`);
  }
  const data = [...c.data, c.target].map((d) => w.expr(d, ctx)).join(', ');
  const flag = w.scalarPath(w.checksumErrorField!, 'ingress');
  L.line(`verify_ck_${i}.add({ ${data} });`);
  L.line(`${flag} = ${flag} | ((bit<1>)(!verify_ck_${i}.verify()));`);
  L.line(`transition ${next};`);
  L.close();
}

function errorName(p: IrProgram, value: number): string {
  const e = p.errors.find((x) => x.value === value);
  if (!e) throw new TnaUnsupportedError(`error value ${value}`, 'is not declared');
  return e.name;
}

export function errorCode(p: IrProgram, name: string): number {
  const e = p.errors.find((x) => x.name === name);
  if (!e) throw new TnaUnsupportedError(`error.${name}`, 'is not declared');
  return e.value;
}
