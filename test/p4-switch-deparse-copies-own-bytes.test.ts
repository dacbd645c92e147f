import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BehavioralSwitch } from '../src/backends/p4/switch.js';
import { compileP4 } from '../src/p4c/compile.js';

/*
 * The deparser copies a packet whose headers keep their length either into a typed array of
 * its own (at most 64 bytes: V8 keeps it in its heap) or into a view of a shared slab (larger).
 * Property: on both sides of that boundary, every output equals a reference rewrite computed
 * here (MACs and port from the route, TTL - 1, the IPv4 checksum recomputed, every other byte
 * as received), and outputs never share bytes with the input or with each other — checked after
 * all of them were made, with the inputs and earlier outputs scribbled over in between.
 */
const source = readFileSync(new URL('../p4/samples/l3_acl_router.p4', import.meta.url), 'utf8');

function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x >>> 8;
  };
}

const DMAC = 0x0a0000000007n;
const SMAC = 0x0b00000000ffn;
const PORT = 7;

function csum(b: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function packet(len: number, r: () => number): Uint8Array {
  const p = new Uint8Array(len);
  for (let i = 0; i < len; i++) p[i] = r() & 255;
  p[12] = 0x08;
  p[13] = 0x00;
  p[14] = 0x45; // IPv4, ihl 5
  p[20] = 0; // flags / fragment offset 0
  p[21] = 0;
  p[22] = 2 + (r() % 250); // ttl > 1
  p[23] = r() % 2 ? 6 : 17;
  p[24] = 0;
  p[25] = 0;
  const c = csum(p, 14, 34);
  p[24] = c >> 8;
  p[25] = c & 255;
  return p;
}

function reference(p: Uint8Array): Uint8Array {
  const o = p.slice();
  for (let i = 0; i < 6; i++) {
    o[i] = Number((DMAC >> BigInt(8 * (5 - i))) & 255n);
    o[6 + i] = Number((SMAC >> BigInt(8 * (5 - i))) & 255n);
  }
  o[22] = p[22]! - 1;
  o[24] = 0;
  o[25] = 0;
  const c = csum(o, 14, 34);
  o[24] = c >> 8;
  o[25] = c & 255;
  return o;
}

describe('p4 switch: deparsed packets are copies of their own, small or large', () => {
  it('matches a reference rewrite at every length from 38 to 200 bytes, no output aliased', () => {
    const sw = new BehavioralSwitch(compileP4(source, { file: 'l3_acl_router.p4' }).bmv2);
    sw.addEntry('routes', {
      key: [{ value: 0, prefixLength: 0 }],
      action: 'route',
      args: [DMAC, SMAC, PORT],
    });
    const r = rng(4);
    const inputs: Uint8Array[] = [];
    const expected: Uint8Array[] = [];
    const outputs: Uint8Array[] = [];
    // several rounds, so the slab is cut from many times and renewed
    for (let round = 0; round < 40; round++) {
      for (let len = 38; len <= 200; len++) {
        const p = packet(len, r);
        const want = reference(p);
        const out = sw.process(p, 1);
        expect(out.length).toBe(1);
        expect(out[0]!.port).toBe(PORT);
        expect(out[0]!.bytes).toBeInstanceOf(Uint8Array);
        expect(out[0]!.bytes.length).toBe(len);
        expect(Array.from(out[0]!.bytes)).toEqual(Array.from(want));
        p.fill(0xee); // the caller may reuse its buffer: the output must not change
        if (outputs.length > 0) outputs[outputs.length - 1]!.fill(0xdd); // nor the next one
        inputs.push(p);
        expected.push(want);
        outputs.push(out[0]!.bytes);
      }
    }
    for (let i = 0; i < outputs.length - 1; i++)
      expect(Array.from(outputs[i]!)).toEqual(new Array(outputs[i]!.length).fill(0xdd));
    const last = outputs[outputs.length - 1]!;
    expect(Array.from(last)).toEqual(Array.from(expected[expected.length - 1]!));
  });
});
