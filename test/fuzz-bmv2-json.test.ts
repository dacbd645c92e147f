/**
 * Fuzz target: malformed BMv2 JSON (issue #10, defect 8).
 *
 * Programs compiled from p4/samples/*.p4 and test/p4/*.p4, mutated where a hostile file could:
 * a value made huge, negative, fractional or of the wrong type, a key deleted, an array entry
 * deleted or duplicated. Oracle: the switch loads the program, or refuses it with a
 * P4RuntimeError P4_JSON that names the JSON path (`BMv2 JSON actions[3]...`) — never a raw
 * TypeError, never the catch-all "cannot load" (a case the check should have named), never a
 * hang or an abort. A program that loads then takes a packet: it leaves, is dropped, or the
 * packet fails with a typed error.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { P4RuntimeError } from '../src/backends/p4/errors.js';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';
import { packagePath } from '../src/runtime/package-root.js';
import { ThunderpacError } from '../src/runtime/errors.js';
import { fuzzParams, fuzzTimeoutMs } from './helpers/fuzz.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = (string | number)[];

interface Corpus {
  readonly name: string;
  readonly json: Json;
  /** Every node's path, the root excluded. */
  readonly paths: readonly Path[];
}

function programs(): { name: string; source: string; file: string }[] {
  const dirs = [packagePath('p4', 'samples'), join(import.meta.dirname, 'p4')];
  return dirs.flatMap((d) =>
    readdirSync(d)
      .filter((f) => f.endsWith('.p4'))
      .map((f) => ({ name: f, file: join(d, f), source: readFileSync(join(d, f), 'utf8') })),
  );
}

function allPaths(v: Json, at: Path, out: Path[]): void {
  if (at.length > 0) out.push(at);
  if (Array.isArray(v)) for (const [i, x] of v.entries()) allPaths(x, [...at, i], out);
  else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) allPaths(x, [...at, k], out);
}

let corpus: Corpus[] = [];
beforeAll(() => {
  corpus = programs().map(({ name, source, file }) => {
    const json = JSON.parse(
      JSON.stringify(compileP4(source, { file, includeDirs: [join(file, '..')] }).bmv2),
    );
    const paths: Path[] = [];
    allPaths(json, [], paths);
    return { name, json, paths };
  });
});

/** Values a hostile file puts where the switch expects something else. */
const HOSTILE: readonly Json[] = [
  2 ** 31,
  2 ** 32,
  1e9,
  2 ** 53 + 2,
  -1,
  -(2 ** 31),
  0.5,
  1e308,
  0,
  '',
  'x',
  '0x',
  '-',
  '0xffffffffffffffffffffffffffffffff',
  '1'.repeat(5000),
  null,
  true,
  false,
  [],
  {},
  [[]],
  { type: 'expression', value: null },
  { type: 'field', value: 'ethernet' },
  { type: 'hexstr', value: {} },
  ['x', 'y'],
];

type Mutation =
  | { kind: 'set'; node: number; value: number }
  | { kind: 'delete'; node: number }
  | { kind: 'duplicate'; node: number }
  | { kind: 'nest'; node: number; depth: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      node: fc.nat(),
      value: fc.nat(HOSTILE.length - 1),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), node: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), node: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('nest' as const),
      node: fc.nat(),
      depth: fc.integer({ min: 100, max: 20_000 }),
    }),
  },
);

function parentOf(root: Json, path: Path): Json {
  let v: Json | undefined = root;
  for (const k of path.slice(0, -1)) {
    if (v === null || typeof v !== 'object') return null;
    v = (v as Record<string | number, Json>)[k as string];
  }
  return v ?? null;
}

function apply(root: Json, paths: readonly Path[], m: Mutation): string {
  const path = paths[m.node % paths.length]!;
  const parent = parentOf(root, path) as Record<string | number, Json> | Json[] | null;
  if (parent === null || typeof parent !== 'object') return 'no-op';
  const key = path[path.length - 1]!;
  if (!Object.hasOwn(parent, key)) return 'no-op';
  const where = path.join('.');
  switch (m.kind) {
    case 'set':
      (parent as Record<string | number, Json>)[key] = structuredClone(HOSTILE[m.value]!);
      return `set ${where} = ${JSON.stringify(HOSTILE[m.value]).slice(0, 40)}`;
    case 'delete':
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete (parent as Record<string, Json>)[key];
      return `delete ${where}`;
    case 'duplicate': {
      const v = (parent as Record<string | number, Json>)[key]!;
      if (Array.isArray(parent)) parent.splice(key as number, 0, structuredClone(v));
      else if (Array.isArray(v)) (parent as Record<string, Json>)[key] = [...v, ...structuredClone(v)];
      return `duplicate ${where}`;
    }
    case 'nest': {
      // An expression nested deeper than any compiler writes (the switch compiles recursively).
      let e: Json = { type: 'hexstr', value: '0x1' };
      for (let i = 0; i < m.depth; i++) e = { type: 'expression', value: { op: '~', left: null, right: e } };
      (parent as Record<string | number, Json>)[key] = e;
      return `nest ${where} ${m.depth} deep`;
    }
  }
}

/** Loads the mutated program and sends it a packet; fails the property on an untyped error. */
function check(json: Json, packet: Uint8Array, port: number): void {
  let sw: BehavioralSwitch;
  try {
    sw = new BehavioralSwitch(json);
  } catch (err) {
    expect(err).toBeInstanceOf(P4RuntimeError);
    expect((err as P4RuntimeError).code).toBe('P4_JSON');
    // Refusals name where in the JSON; the catch-all means the check missed something.
    expect((err as Error).message).toMatch(/^(BMv2 JSON \S|not a BMv2 JSON program)/);
    expect((err as Error).message).not.toMatch(/the switch cannot load it/);
    return;
  }
  try {
    sw.process(packet, port);
  } catch (err) {
    if (!(err instanceof ThunderpacError)) throw err;
  }
}

describe('fuzz: mutated BMv2 JSON loads or is refused with a typed error naming the JSON path', () => {
  it(
    'value, delete, duplicate and nesting mutations of compiled programs',
    () => {
      fc.assert(
        fc.property(
          fc.nat(),
          fc.array(mutation, { minLength: 1, maxLength: 3 }),
          fc.uint8Array({ minLength: 0, maxLength: 80 }),
          fc.nat(8),
          (pick, mutations, packet, port) => {
            const base = corpus[pick % corpus.length]!;
            const json = structuredClone(base.json);
            // Nesting last: the harness itself copies subtrees recursively.
            const ordered = [...mutations].sort(
              (a, b) => Number(a.kind === 'nest') - Number(b.kind === 'nest'),
            );
            const done = ordered.map((m) => apply(json, base.paths, m));
            try {
              check(json, packet, port);
            } catch (err) {
              throw new Error(`${base.name}: ${done.join('; ')}: ${(err as Error).message}`);
            }
          },
        ),
        fuzzParams(300),
      );
    },
    fuzzTimeoutMs(30_000),
  );
});
