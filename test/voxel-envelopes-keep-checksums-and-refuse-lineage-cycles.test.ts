import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IntegrityError, NotFoundError, ValidationError } from '../src/runtime/errors.js';
import { LogIntegrityError } from '../src/store/errors.js';
import { Store } from '../src/store/store.js';
import { findCycle, type VoxelInput, VoxelLineageCycleError, VoxelStore } from '../src/store/voxel.js';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'tp-voxel-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const voxel = (id: string, lineage: string[] = [], payload = `payload of ${id}`): VoxelInput => ({
  id,
  ts: '2026-12-05T17:00:00.000Z',
  source: 'sensor/7',
  coords: { t: 12, x: 1.5, y: 0, z: -2 },
  traits: { kind: 'lidar', gain: 3, calibrated: true },
  payload: new TextEncoder().encode(payload),
  lineage,
});

describe('voxel envelopes', () => {
  it('stores envelopes with checksums and lineage, and reads them back after reopening', () => {
    const dir = join(tmp, 's');
    let store = new Store(dir);
    let vs = new VoxelStore(store);
    const a = vs.put(voxel('a'));
    expect(a.checksums.payload).toMatch(/^[0-9a-f]{64}$/);
    const [b, c] = vs.put([
      voxel('b', ['a']),
      { ...voxel('c', ['b', 'a']), coords: { t: 3, channel: 'audio', position: 7 } },
    ]);
    expect(b!.lineage).toEqual(['a']);
    expect(vs.put(voxel('a'))).toEqual(a); // the same envelope again: a no-op
    expect(() => vs.put(voxel('a', [], 'other bytes'))).toThrow(/immutable/);
    vs.close();
    store.close();

    store = new Store(dir, { readOnly: true });
    vs = new VoxelStore(store);
    expect(vs.size).toBe(3);
    expect(vs.get('c')).toEqual(c);
    expect(new TextDecoder().decode(vs.payload('b'))).toBe('payload of b');
    expect(vs.ancestors('c')).toEqual(['b', 'a']);
    vs.close();
    store.close();
  });

  it('refuses a lineage cycle naming it, an unknown parent, and bad fields by path', () => {
    const store = new Store(join(tmp, 's'));
    const vs = new VoxelStore(store);
    vs.put(voxel('root'));
    const err = (() => {
      try {
        vs.put([voxel('x', ['z', 'root']), voxel('y', ['x']), voxel('z', ['y'])]);
      } catch (e) {
        return e;
      }
    })() as VoxelLineageCycleError;
    expect(err).toBeInstanceOf(VoxelLineageCycleError);
    expect(err.message).toBe('voxel lineage must be acyclic: x → z → y → x');
    expect(vs.size).toBe(1); // the batch was refused whole
    expect(() => vs.put(voxel('self', ['self']))).toThrow('self → self');
    expect(() => vs.put(voxel('orphan', ['nobody']))).toThrow(NotFoundError);
    const cases: [Partial<VoxelInput> & Record<string, unknown>, string][] = [
      [{ ts: 'yesterday' }, 'voxel.ts'],
      [{ coords: { t: 1, x: 1, y: Number.NaN, z: 0 } }, 'voxel.coords.y'],
      [{ coords: { t: 1.5, x: 1, y: 1, z: 0 } }, 'voxel.coords.t'],
      [{ traits: { deep: { no: 1 } } as never }, 'voxel.traits.deep'],
      [{ payload: 'text' as never }, 'voxel.payload'],
      [{ lineage: ['root', 'root'] }, 'voxel.lineage'],
    ];
    for (const [patch, path] of cases) {
      const e = (() => {
        try {
          vs.put({ ...voxel('n'), ...patch } as VoxelInput);
        } catch (x) {
          return x;
        }
      })();
      expect(e).toBeInstanceOf(ValidationError);
      expect((e as ValidationError).path).toBe(path);
    }
    vs.close();
    store.close();
  });

  it('reports an altered payload or a damaged envelope record', () => {
    const dir = join(tmp, 's');
    const store = new Store(dir);
    const vs = new VoxelStore(store);
    vs.put(voxel('a', [], 'UNIQUE-PAYLOAD-BYTES'));
    vs.close();
    store.close();
    // the payload, wherever the store keeps it
    const walk = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
      );
    for (const f of walk(dir).filter((f) => !f.endsWith('.log'))) {
      const data = readFileSync(f);
      const at = data.indexOf('UNIQUE-PAYLOAD-BYTES');
      if (at >= 0) {
        data[at]! ^= 1;
        writeFileSync(f, data);
      }
    }
    const ro = new Store(dir, { readOnly: true });
    const v2 = new VoxelStore(ro);
    expect(() => v2.payload('a')).toThrow(IntegrityError);
    v2.close();
    ro.close();
    const log = join(dir, 'provenance', 'voxels.log');
    const bytes = readFileSync(log);
    bytes[bytes.length - 5]! ^= 0xff;
    writeFileSync(log, bytes);
    const ro2 = new Store(dir, { readOnly: true });
    expect(() => new VoxelStore(ro2)).toThrow(LogIntegrityError);
    expect(() => new VoxelStore(ro2)).toThrow('voxels.log: record fails its checksum (at byte 8)');
    ro2.close();
  });

  it('findCycle finds a cycle exactly when a DFS reference does (random graphs)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.nat(7), { maxLength: 3 }), { minLength: 1, maxLength: 8 }),
        (edges) => {
          const ids = edges.map((_, i) => `v${i}`);
          const parentsOf = (id: string) =>
            (edges[Number(id.slice(1))] ?? []).filter((p) => p < edges.length).map((p) => `v${p}`);
          const cycle = findCycle(ids, parentsOf);
          // reference: Kahn's algorithm leaves nodes iff there is a cycle
          const indeg = new Map(ids.map((i) => [i, 0]));
          for (const i of ids) for (const p of parentsOf(i)) indeg.set(p, indeg.get(p)! + 1);
          const queue = ids.filter((i) => indeg.get(i) === 0);
          let seen = 0;
          while (queue.length) {
            const n = queue.pop()!;
            seen++;
            for (const p of parentsOf(n)) {
              indeg.set(p, indeg.get(p)! - 1);
              if (indeg.get(p) === 0) queue.push(p);
            }
          }
          expect(cycle !== null).toBe(seen < ids.length);
          if (cycle) {
            expect(cycle[0]).toBe(cycle[cycle.length - 1]);
            for (let k = 0; k + 1 < cycle.length; k++) expect(parentsOf(cycle[k]!)).toContain(cycle[k + 1]);
          }
        },
      ),
    );
  });
});
