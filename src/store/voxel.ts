/**
 * Voxel envelopes (seed 003): an artifact envelope with a timestamp, a source, coordinates,
 * traits, a payload reference, checksums and lineage — the parent envelopes it was derived
 * from, which must form an acyclic graph.
 *
 *   const voxels = new VoxelStore(store);
 *   const v = voxels.put({ id: 'evt-2', ts: '2026-12-05T17:00:00.000Z', source: 'sensor/7',
 *     coords: { t: 12, x: 1.5, y: 0, z: -2 }, traits: { kind: 'lidar' },
 *     payload: bytes, lineage: ['evt-1'] });
 *
 * Fields (a bad one is a ValidationError naming its path, e.g. `voxels[2].coords.x`):
 *   id        1..128 printable characters, unique in the store (an event id, a uuid)
 *   ts        ISO 8601 UTC time (`Date.toISOString()` form)
 *   source    1..256 characters
 *   coords    `{ t, x, y, z }` (t an integer, x/y/z finite numbers) or `{ t, channel, position }`
 *             (channel a name, position an integer) — the seed's two coordinate forms
 *   traits    a flat map of at most 64 names to strings, finite numbers or booleans
 *   payload   the bytes (stored as an artifact, kind 'voxel-payload'); the envelope keeps the
 *             reference `payloadRef` (the artifact key), its size, and `checksums.payload`
 *             (sha256); `checksums.envelope` is the sha256 of the canonical envelope without it
 *   lineage   ids of parent envelopes: each already in the store or in the same `put` batch
 *
 * Lineage must be acyclic: a batch whose envelopes (with those stored) close a cycle is refused
 * whole with VoxelLineageCycleError, which names the cycle (`a → b → c → a`); an unknown parent
 * is refused naming it. Envelopes are immutable: putting an id again with a different envelope
 * is refused (the same envelope again is a no-op).
 *
 * Stored in `<store>/provenance/voxels.log` (record-file.ts, magic `TPVOXL1\n`), one canonical
 * msgpack envelope per record, read whole on open; `get` re-checks the envelope checksum, and
 * `payload(id)` re-hashes the payload against `checksums.payload`.
 */

import { join } from 'node:path';
import { canonicalDigest, decodeCanonical, encodeCanonical, sha256Hex } from '../runtime/canonical.js';
import { IntegrityError, NotFoundError, ThunderpacError, ValidationError } from '../runtime/errors.js';
import { StoreReadOnlyError } from './errors.js';
import { artifactsOf } from './provenance/provenance.js';
import { RecordFile } from './provenance/record-file.js';
import type { Store } from './store.js';

export type VoxelCoords =
  | { readonly t: number; readonly x: number; readonly y: number; readonly z: number }
  | { readonly t: number; readonly channel: string; readonly position: number };

export type TraitValue = string | number | boolean;

export interface VoxelInput {
  readonly id: string;
  readonly ts: string;
  readonly source: string;
  readonly coords: VoxelCoords;
  readonly traits?: Readonly<Record<string, TraitValue>>;
  readonly payload: Uint8Array;
  readonly lineage?: readonly string[];
}

export interface VoxelEnvelope {
  readonly v: 1;
  readonly id: string;
  readonly ts: string;
  readonly source: string;
  readonly coords: VoxelCoords;
  readonly traits: Readonly<Record<string, TraitValue>>;
  readonly payloadRef: string;
  readonly size: number;
  readonly checksums: { readonly payload: string; readonly envelope: string };
  readonly lineage: readonly string[];
}

/** A put whose lineage would close a cycle; `cycle` lists the ids, first repeated last. */
export class VoxelLineageCycleError extends ThunderpacError {
  readonly cycle: readonly string[];
  constructor(cycle: readonly string[]) {
    super('VOXEL_LINEAGE_CYCLE', `voxel lineage must be acyclic: ${cycle.join(' → ')}`);
    this.cycle = cycle;
  }
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const ID = /^[\x21-\x7e]{1,128}$/;
const MAX_TRAITS = 64;
const MAX_LINEAGE = 1024;

function bad(path: string, expected: string, found: unknown): never {
  throw new ValidationError('type', path, expected, JSON.stringify(found) ?? String(found));
}

function checkCoords(c: unknown, path: string): VoxelCoords {
  if (typeof c !== 'object' || c === null || Array.isArray(c)) bad(path, 'an object', c);
  const o = c as Record<string, unknown>;
  if (!Number.isSafeInteger(o.t)) bad(`${path}.t`, 'an integer', o.t);
  if ('channel' in o || 'position' in o) {
    if (typeof o.channel !== 'string' || o.channel.length === 0 || o.channel.length > 128)
      bad(`${path}.channel`, 'a channel name (1..128 characters)', o.channel);
    if (!Number.isSafeInteger(o.position)) bad(`${path}.position`, 'an integer', o.position);
    for (const k of Object.keys(o))
      if (!['t', 'channel', 'position'].includes(k)) bad(`${path}.${k}`, 'no such coordinate', k);
    return { t: o.t as number, channel: o.channel as string, position: o.position as number };
  }
  for (const k of ['x', 'y', 'z'])
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) bad(`${path}.${k}`, 'a finite number', o[k]);
  for (const k of Object.keys(o))
    if (!['t', 'x', 'y', 'z'].includes(k)) bad(`${path}.${k}`, 'no such coordinate', k);
  return { t: o.t as number, x: o.x as number, y: o.y as number, z: o.z as number };
}

function checkTraits(t: unknown, path: string): Record<string, TraitValue> {
  if (t === undefined) return {};
  if (typeof t !== 'object' || t === null || Array.isArray(t)) bad(path, 'an object of traits', t);
  const entries = Object.entries(t as Record<string, unknown>);
  if (entries.length > MAX_TRAITS) bad(path, `at most ${MAX_TRAITS} traits`, `${entries.length} traits`);
  const out: Record<string, TraitValue> = {};
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > 128) bad(`${path}`, 'trait names of 1..128 characters', k);
    if (typeof v !== 'string' && typeof v !== 'boolean' && !(typeof v === 'number' && Number.isFinite(v)))
      bad(`${path}.${k}`, 'a string, finite number or boolean', v);
    out[k] = v as TraitValue;
  }
  return out;
}

export class VoxelStore {
  readonly #store: Store;
  readonly #file: RecordFile;
  readonly #voxels = new Map<string, VoxelEnvelope>();

  constructor(store: Store) {
    this.#store = store;
    const path = join(store.dir, 'provenance', 'voxels.log');
    this.#file = new RecordFile(
      path,
      'TPVOXL1\n',
      { readOnly: store.readOnly, durable: true },
      (payload, offset) => {
        const v = decodeCanonical<VoxelEnvelope>(payload);
        if (typeof v?.id !== 'string')
          throw new IntegrityError(`${path}: record at byte ${offset} is not a voxel envelope`);
        this.#voxels.set(v.id, v);
      },
    );
  }

  get size(): number {
    return this.#voxels.size;
  }

  /** Validate, check lineage (known parents, no cycle), store payloads and envelopes. */
  put(input: VoxelInput): VoxelEnvelope;
  put(inputs: readonly VoxelInput[]): VoxelEnvelope[];
  put(inputs: VoxelInput | readonly VoxelInput[]): VoxelEnvelope | VoxelEnvelope[] {
    const batch = Array.isArray(inputs) ? (inputs as readonly VoxelInput[]) : [inputs as VoxelInput];
    const single = !Array.isArray(inputs);
    if (this.#store.readOnly) throw new StoreReadOnlyError(this.#store.dir, 'store voxels');
    const checked = batch.map((v, i) => this.#check(v, single ? 'voxel' : `voxels[${i}]`));
    const ids = new Set<string>();
    checked.forEach(({ id }, i) => {
      if (ids.has(id)) bad(`voxels[${i}].id`, 'an id not already in the batch', id);
      ids.add(id);
    });
    const parentsOf = (id: string): readonly string[] =>
      checked.find((c) => c.id === id)?.lineage ?? this.#voxels.get(id)?.lineage ?? [];
    for (const [i, c] of checked.entries()) {
      for (const [j, p] of c.lineage.entries()) {
        if (!ids.has(p) && !this.#voxels.has(p))
          throw new NotFoundError(`voxel ${single ? 'voxel' : `voxels[${i}]`}.lineage[${j}]: parent`, p);
      }
    }
    const cycle = findCycle([...ids], parentsOf);
    if (cycle) throw new VoxelLineageCycleError(cycle);

    const out: VoxelEnvelope[] = [];
    for (const [i, c] of checked.entries()) {
      const existing = this.#voxels.get(c.id);
      const payloadSum = sha256Hex(c.payload);
      const base = {
        v: 1 as const,
        id: c.id,
        ts: c.ts,
        source: c.source,
        coords: c.coords,
        traits: c.traits,
        payloadRef: '',
        size: c.payload.byteLength,
        lineage: c.lineage,
      };
      if (existing) {
        if (
          existing.checksums.payload !== payloadSum ||
          canonicalDigest({ ...base, payloadRef: existing.payloadRef }) !== existing.checksums.envelope
        )
          bad(`${single ? 'voxel' : `voxels[${i}]`}.id`, 'a new id (envelopes are immutable)', c.id);
        out.push(existing);
        continue;
      }
      const payloadRef = artifactsOf(this.#store).put(c.payload, { kind: 'voxel-payload' });
      const body = { ...base, payloadRef };
      const envelope: VoxelEnvelope = {
        ...body,
        checksums: { payload: payloadSum, envelope: canonicalDigest(body) },
      };
      this.#file.append(encodeCanonical(envelope));
      this.#voxels.set(c.id, envelope);
      out.push(envelope);
    }
    return single ? out[0]! : out;
  }

  #check(v: VoxelInput, path: string) {
    if (typeof v !== 'object' || v === null) bad(path, 'an object', v);
    if (typeof v.id !== 'string' || !ID.test(v.id)) bad(`${path}.id`, '1..128 printable characters', v.id);
    if (typeof v.ts !== 'string' || !ISO.test(v.ts) || Number.isNaN(Date.parse(v.ts)))
      bad(`${path}.ts`, 'an ISO 8601 UTC time', v.ts);
    if (typeof v.source !== 'string' || v.source.length === 0 || v.source.length > 256)
      bad(`${path}.source`, 'a source (1..256 characters)', v.source);
    if (!(v.payload instanceof Uint8Array)) bad(`${path}.payload`, 'bytes (Uint8Array)', typeof v.payload);
    const lineage = v.lineage ?? [];
    if (!Array.isArray(lineage) || lineage.length > MAX_LINEAGE)
      bad(`${path}.lineage`, `an array of at most ${MAX_LINEAGE} ids`, lineage);
    lineage.forEach((p, j) => {
      if (typeof p !== 'string' || !ID.test(p)) bad(`${path}.lineage[${j}]`, 'a voxel id', p);
    });
    if (new Set(lineage).size !== lineage.length) bad(`${path}.lineage`, 'distinct ids', lineage);
    return {
      id: v.id,
      ts: v.ts,
      source: v.source,
      coords: checkCoords(v.coords, `${path}.coords`),
      traits: checkTraits(v.traits, `${path}.traits`),
      payload: v.payload,
      lineage: [...lineage],
    };
  }

  /** The envelope, its checksum re-checked. */
  get(id: string): VoxelEnvelope {
    const v = this.#voxels.get(id);
    if (v === undefined) throw new NotFoundError('voxel', id);
    const { checksums, ...body } = v;
    const actual = canonicalDigest(body);
    if (actual !== checksums.envelope)
      throw new IntegrityError(`voxel ${id}: envelope altered`, checksums.envelope, actual);
    return v;
  }

  /** The payload bytes, re-hashed against the envelope's checksum. */
  payload(id: string): Uint8Array {
    const v = this.get(id);
    const bytes = artifactsOf(this.#store).get(v.payloadRef);
    const actual = sha256Hex(bytes);
    if (actual !== v.checksums.payload)
      throw new IntegrityError(
        `voxel ${id}: payload does not match its checksum`,
        v.checksums.payload,
        actual,
      );
    return bytes;
  }

  /** Every ancestor of `id` (its lineage, transitively), nearest first. */
  ancestors(id: string): string[] {
    const out: string[] = [];
    const seen = new Set([id]);
    const queue = [...this.get(id).lineage];
    while (queue.length > 0) {
      const p = queue.shift()!;
      if (seen.has(p)) continue;
      seen.add(p);
      out.push(p);
      queue.push(...(this.#voxels.get(p)?.lineage ?? []));
    }
    return out;
  }

  close(): void {
    this.#file.close();
  }
}

/** A cycle reachable from `roots` through `parentsOf`, as ids with the first repeated last. */
export function findCycle(
  roots: readonly string[],
  parentsOf: (id: string) => readonly string[],
): string[] | null {
  const state = new Map<string, 1 | 2>(); // 1 on the path, 2 done
  const path: string[] = [];
  // Iterative DFS: lineage can be deep.
  for (const root of roots) {
    if (state.has(root)) continue;
    const stack: { id: string; next: number }[] = [{ id: root, next: 0 }];
    state.set(root, 1);
    path.push(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const parents = parentsOf(top.id);
      if (top.next < parents.length) {
        const p = parents[top.next++]!;
        const s = state.get(p);
        if (s === 1) return [...path.slice(path.indexOf(p)), p];
        if (s === undefined) {
          state.set(p, 1);
          path.push(p);
          stack.push({ id: p, next: 0 });
        }
      } else {
        state.set(top.id, 2);
        path.pop();
        stack.pop();
      }
    }
  }
  return null;
}
