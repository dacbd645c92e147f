/**
 * Tofino-style stage allocation from the IR: a table dependency graph (match, action and
 * successor dependencies, as in the RMT/Tofino compilers) and a greedy placement of tables
 * into match-action stages under a stated resource model. A table that cannot be placed is
 * named in a TnaFitError — never silently dropped.
 *
 * Dependencies between table A (earlier in the control flow) and table B (reachable from A):
 *   match:     B matches on (or a condition guarding B reads) a field A's actions write → B in a later stage;
 *   action:    B's actions read or write a field A's actions write                     → B in a later stage;
 *   successor: B runs only on some outcomes of A (next_tables differ)                   → same stage allowed
 *              (predication), never earlier.
 *
 * Simplifications, stated: a table lives in one stage (no splitting of large tables across
 * stages), keyless tables cost a table slot but no memory, gateways (conditions) are free,
 * and ingress and egress share the stages' resources.
 */

import { ThunderpacError } from '../runtime/errors.js';
import type { IrAction, IrControl, IrExpr, IrNode, IrProgram, IrStmt, IrTable } from './ir.js';

export interface ResourceModel {
  readonly stages: number;
  readonly tablesPerStage: number;
  /** SRAM blocks per stage; a block holds 1024 words of 128 bits. */
  readonly sramBlocksPerStage: number;
  /** TCAM blocks per stage; a block holds 512 entries of 44 bits. */
  readonly tcamBlocksPerStage: number;
  /** Match key bits the crossbar feeds per stage (exact + ternary). */
  readonly matchBitsPerStage: number;
}

/** Roughly Tofino 1 (per pipe): 12 stages, 16 logical tables, 80 SRAM and 24 TCAM blocks. */
export const TOFINO_LIKE: ResourceModel = {
  stages: 12,
  tablesPerStage: 16,
  sramBlocksPerStage: 80,
  tcamBlocksPerStage: 24,
  matchBitsPerStage: 1024,
};

export type DependencyKind = 'match' | 'action' | 'successor';

export interface TableNeeds {
  readonly sram: number;
  readonly tcam: number;
  readonly matchBits: number;
}

export interface PlacedTable {
  readonly name: string;
  readonly pipeline: 'ingress' | 'egress';
  readonly stage: number;
  readonly needs: TableNeeds;
  readonly dependsOn: readonly { readonly table: string; readonly kind: DependencyKind }[];
}

export interface StageReport {
  readonly model: ResourceModel;
  readonly stagesUsed: number;
  readonly tables: readonly PlacedTable[];
  readonly stages: readonly {
    readonly stage: number;
    readonly tables: readonly string[];
    readonly sram: number;
    readonly tcam: number;
    readonly matchBits: number;
  }[];
}

export class TnaFitError extends ThunderpacError {
  readonly table: string;
  readonly resource: string;

  constructor(table: string, resource: string, detail: string) {
    super('P4_TNA_DOES_NOT_FIT', `table ${table} does not fit: ${detail}`);
    this.table = table;
    this.resource = resource;
  }
}

const SRAM_WORD_BITS = 128;
const SRAM_WORDS = 1024;
const TCAM_WIDTH = 44;
const TCAM_ENTRIES = 512;
/** Per-entry overhead in SRAM (action pointer, version/valid bits). */
const ENTRY_OVERHEAD_BITS = 16;

export function tableNeeds(t: IrTable, actions: ReadonlyMap<string, IrAction>): TableNeeds {
  const keyBits = t.keys.reduce((n, k) => n + k.width, 0);
  const dataBits = Math.max(
    0,
    ...t.actions.map((a) => (actions.get(a)?.params ?? []).reduce((n, p) => n + p.width, 0)),
  );
  if (keyBits === 0) return { sram: 0, tcam: 0, matchBits: 0 };
  const size = Math.max(1, t.size);
  const ternary = t.keys.some((k) => k.match !== 'exact');
  if (!ternary) {
    const words = Math.ceil((keyBits + dataBits + ENTRY_OVERHEAD_BITS) / SRAM_WORD_BITS);
    return { sram: Math.ceil(size / SRAM_WORDS) * words, tcam: 0, matchBits: keyBits };
  }
  const tcam = Math.ceil(size / TCAM_ENTRIES) * Math.ceil(keyBits / TCAM_WIDTH);
  const sram = dataBits > 0 ? Math.ceil(size / SRAM_WORDS) * Math.ceil(dataBits / SRAM_WORD_BITS) : 0;
  return { sram, tcam, matchBits: keyBits };
}

// ---------------------------------------------------------------- read/write sets

function exprReads(e: IrExpr, out: Set<string>): void {
  switch (e.k) {
    case 'field':
      out.add(`${e.header}.${e.field}`);
      return;
    case 'valid':
      out.add(`${e.header}.$valid$`);
      return;
    case 'unop':
    case 'slice':
    case 'cast':
      exprReads(e.arg, out);
      return;
    case 'binop':
    case 'concat':
      exprReads(e.left, out);
      exprReads(e.right, out);
      return;
    case 'cond':
      exprReads(e.test, out);
      exprReads(e.ifTrue, out);
      exprReads(e.ifFalse, out);
      return;
    default:
      return;
  }
}

function stmtEffects(
  stmts: readonly IrStmt[],
  reads: Set<string>,
  writes: Set<string>,
  program: IrProgram,
): void {
  const headerFields = (h: string): string[] => {
    const inst = program.headers.find((x) => x.name === h);
    const ty = program.headerTypes.find((x) => x.name === inst?.type);
    return [...(ty?.fields ?? []).map((f) => `${h}.${f.name}`), `${h}.$valid$`];
  };
  for (const s of stmts) {
    switch (s.k) {
      case 'assign':
        exprReads(s.value, reads);
        writes.add(`${s.target.header}.${s.target.field}`);
        break;
      case 'copyHeader':
        for (const f of headerFields(s.source)) reads.add(f);
        for (const f of headerFields(s.target)) writes.add(f);
        break;
      case 'setValid':
      case 'setInvalid':
        writes.add(`${s.header}.$valid$`);
        break;
      case 'if':
        exprReads(s.test, reads);
        stmtEffects(s.then, reads, writes, program);
        stmtEffects(s.else, reads, writes, program);
        break;
      case 'drop':
        writes.add('standard_metadata.egress_spec');
        break;
      case 'count':
        exprReads(s.index, reads);
        break;
      case 'registerRead':
        exprReads(s.index, reads);
        writes.add(`${s.target.header}.${s.target.field}`);
        break;
      case 'registerWrite':
        exprReads(s.index, reads);
        exprReads(s.value, reads);
        break;
      case 'meter':
        exprReads(s.index, reads);
        writes.add(`${s.target.header}.${s.target.field}`);
        break;
      case 'hash':
        for (const d of s.data) exprReads(d, reads);
        writes.add(`${s.target.header}.${s.target.field}`);
        break;
      case 'random':
        writes.add(`${s.target.header}.${s.target.field}`);
        break;
      case 'push':
      case 'pop': {
        const st = program.stacks.find((x) => x.name === s.stack);
        for (const h of st?.headers ?? []) for (const f of headerFields(h)) writes.add(f);
        break;
      }
      case 'assert':
        exprReads(s.test, reads);
        break;
      default:
        break;
    }
  }
}

// ---------------------------------------------------------------- allocation

interface Info {
  readonly table: IrTable;
  readonly keyReads: Set<string>;
  /** Fields read by conditions on the path to this table. */
  readonly guardReads: Set<string>;
  readonly actionReads: Set<string>;
  readonly writes: Set<string>;
  readonly needs: TableNeeds;
}

function successors(n: IrNode): (string | null)[] {
  if (n.k === 'cond') return [n.trueNext, n.falseNext];
  if (n.next.hitMiss) return [n.next.hit, n.next.miss];
  return [n.next.base, ...Object.values(n.next.byAction ?? {})];
}

export function allocateStages(program: IrProgram, model: ResourceModel = TOFINO_LIKE): StageReport {
  const actions = new Map(program.actions.map((a) => [a.name, a]));
  const used = Array.from({ length: model.stages }, () => ({
    tables: [] as string[],
    sram: 0,
    tcam: 0,
    matchBits: 0,
  }));
  const placed: PlacedTable[] = [];
  for (const [pipeline, control] of [
    ['ingress', program.ingress],
    ['egress', program.egress],
  ] as const) {
    placeControl(pipeline, control, program, actions, model, used, placed);
  }
  const stagesUsed = placed.reduce((n, t) => Math.max(n, t.stage + 1), 0);
  return {
    model,
    stagesUsed,
    tables: placed,
    stages: used.slice(0, stagesUsed).map((s, stage) => ({ stage, ...s })),
  };
}

function placeControl(
  pipeline: 'ingress' | 'egress',
  control: IrControl,
  program: IrProgram,
  actions: ReadonlyMap<string, IrAction>,
  model: ResourceModel,
  used: { tables: string[]; sram: number; tcam: number; matchBits: number }[],
  placed: PlacedTable[],
): void {
  const nodes = new Map(control.nodes.map((n) => [n.name, n]));
  // Topological order of the control DAG (reverse post-order from the entry), guards collected on the way.
  const order: string[] = [];
  const seen = new Set<string>();
  const guards = new Map<string, Set<string>>();
  const visit = (name: string | null, guard: Set<string>): void => {
    if (name === null) return;
    const g = guards.get(name) ?? new Set<string>();
    for (const f of guard) g.add(f);
    guards.set(name, g);
    if (seen.has(name)) return;
    seen.add(name);
    const n = nodes.get(name);
    if (!n) return;
    const next = new Set(guard);
    if (n.k === 'cond') exprReads(n.test, next);
    for (const s of successors(n)) visit(s, next);
    order.push(name);
  };
  visit(control.init, new Set());
  order.reverse();
  // Reachability, for "A comes before B" and successor dependencies.
  const reach = new Map<string, Set<string>>();
  const reachOf = (name: string | null): Set<string> => {
    if (name === null) return new Set();
    const known = reach.get(name);
    if (known) return known;
    const r = new Set<string>();
    reach.set(name, r);
    const n = nodes.get(name);
    if (n) {
      for (const s of successors(n)) {
        if (s === null) continue;
        r.add(s);
        for (const x of reachOf(s)) r.add(x);
      }
    }
    return r;
  };

  const infos = new Map<string, Info>();
  for (const name of order) {
    const n = nodes.get(name);
    if (n?.k !== 'table') continue;
    const keyReads = new Set(n.keys.map((k) => `${k.target.header}.${k.target.field}`));
    const actionReads = new Set<string>();
    const writes = new Set<string>();
    for (const a of n.actions) stmtEffects(actions.get(a)?.body ?? [], actionReads, writes, program);
    infos.set(name, {
      table: n,
      keyReads,
      guardReads: guards.get(name) ?? new Set(),
      actionReads,
      writes,
      needs: tableNeeds(n, actions),
    });
  }

  const stageOf = new Map<string, number>();
  for (const name of order) {
    const info = infos.get(name);
    if (!info) continue;
    const deps: { table: string; kind: DependencyKind }[] = [];
    let min = 0;
    for (const [prev, pInfo] of infos) {
      const ps = stageOf.get(prev);
      if (ps === undefined || !reachOf(prev).has(name)) continue;
      const hits = (set: Set<string>) => [...set].some((f) => pInfo.writes.has(f));
      let kind: DependencyKind | null = null;
      if (hits(info.keyReads) || hits(info.guardReads)) kind = 'match';
      else if (hits(info.actionReads) || hits(info.writes)) kind = 'action';
      else if (branches(nodes.get(prev) as IrTable, name, nodes)) kind = 'successor';
      if (!kind) continue;
      deps.push({ table: prev, kind });
      min = Math.max(min, kind === 'successor' ? ps : ps + 1);
    }
    const { needs } = info;
    let stage = min;
    for (; stage < model.stages; stage++) {
      const u = used[stage]!;
      if (
        u.tables.length + 1 <= model.tablesPerStage &&
        u.sram + needs.sram <= model.sramBlocksPerStage &&
        u.tcam + needs.tcam <= model.tcamBlocksPerStage &&
        u.matchBits + needs.matchBits <= model.matchBitsPerStage
      ) {
        break;
      }
    }
    if (stage >= model.stages) {
      const alone =
        needs.sram > model.sramBlocksPerStage
          ? `needs ${needs.sram} SRAM blocks, a stage has ${model.sramBlocksPerStage}`
          : needs.tcam > model.tcamBlocksPerStage
            ? `needs ${needs.tcam} TCAM blocks, a stage has ${model.tcamBlocksPerStage}`
            : needs.matchBits > model.matchBitsPerStage
              ? `matches ${needs.matchBits} key bits, a stage feeds ${model.matchBitsPerStage}`
              : `its dependencies put it at stage ${min} or later and no stage up to ${model.stages - 1} has room`;
      throw new TnaFitError(info.table.name, 'stages', alone);
    }
    const u = used[stage]!;
    u.tables.push(info.table.name);
    u.sram += needs.sram;
    u.tcam += needs.tcam;
    u.matchBits += needs.matchBits;
    stageOf.set(name, stage);
    placed.push({ name: info.table.name, pipeline, stage, needs, dependsOn: deps });
  }
}

/** Does `b` run only on some outcomes of table `a` (a successor/control dependency)? */
function branches(a: IrTable, b: string, nodes: ReadonlyMap<string, IrNode>): boolean {
  const outs = a.next.hitMiss
    ? [a.next.hit, a.next.miss]
    : [...Object.values(a.next.byAction ?? {}), a.next.base];
  const reaches = (from: string | null, seen = new Set<string>()): boolean => {
    if (from === null || seen.has(from)) return false;
    if (from === b) return true;
    seen.add(from);
    const n = nodes.get(from);
    return n ? successors(n).some((s) => reaches(s, seen)) : false;
  };
  const r = outs.map((o) => reaches(o));
  return r.some((x) => x) && !r.every((x) => x);
}
