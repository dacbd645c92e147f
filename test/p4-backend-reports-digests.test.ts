/**
 * A v1model `digest` reaches the caller: the p4 backend's packet output carries the learn
 * message (receiver, list, values as hex, wide fields included), it is part of the hashed
 * output, it is stored with the output and the receipt replays; a packet that sends no digest
 * has none, and a digest never leaks into the next execution.
 */

import { describe, expect, it } from 'vitest';
import { createP4Build } from '../src/backends/p4/backend.js';
import { decodePayload, encodePayload, hashPayload } from '../src/runtime/payload.js';
import type { Output } from '../src/runtime/types.js';
import { storedThunderpac } from './helpers/stored-thunderpac.js';

const program = `#include <core.p4>
#include <v1model.p4>
header eth_t { bit<48> dst; bit<48> src; bit<16> type; }
struct headers { eth_t eth; }
struct learn_t { bit<48> src; bit<9> port; }
struct metadata { learn_t learn; }
parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  state start { pkt.extract(hdr.eth); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
  apply {
    sm.egress_spec = 1;
    // Learn the source MAC of frames with EtherType 0x88b5 only.
    if (hdr.eth.type == 0x88b5) {
      meta.learn.src = hdr.eth.src;
      meta.learn.port = sm.ingress_port;
      digest<learn_t>(1, meta.learn);
    }
  }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.eth); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
`;

const frame = (type: number) =>
  Uint8Array.from([1, 2, 3, 4, 5, 6, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, type >> 8, type & 0xff]);

const tp = storedThunderpac('tp-p4-digest-');

describe('p4 backend: digests in the output', () => {
  const build = createP4Build(program, { name: 'learn' });

  it('carries the learn message of the packet, hashed with the output, and replays', async () => {
    const sandbox = tp().sandbox({ backend: 'p4' });
    const r = await tp().execute(sandbox, {
      build,
      entry: 'ingress',
      input: { kind: 'packet', bytes: frame(0x88b5), ingressPort: 5 },
    });
    expect(r.status).toBe('completed');
    if (r.output?.kind !== 'packet') throw new Error('expected a packet output');
    expect(r.output.packets).toHaveLength(1);
    expect(r.output.digests).toHaveLength(1);
    const [d] = r.output.digests!;
    expect(d!.receiver).toBe(1);
    expect(Object.values(d!.values)).toEqual(['0xaabbccddeeff', '0x5']);
    expect(r.receipt.output?.hash).toBe(hashPayload(r.output));

    // Without the digest the same packets hash differently: the digest is part of what is sealed.
    const { digests: _, ...bare } = r.output;
    expect(hashPayload(bare as Output)).not.toBe(r.receipt.output?.hash);
    // And it survives the store's encoding.
    expect(decodePayload(encodePayload(r.output))).toEqual(r.output);
    expect((await tp().verify(r.receipt.id)).match).toBe(true);
  });

  it('has no digests for a packet that sends none, even right after one that did', async () => {
    const sandbox = tp().sandbox({ backend: 'p4' });
    await tp().execute(sandbox, { build, entry: 'ingress', input: { kind: 'packet', bytes: frame(0x88b5) } });
    const r = await tp().execute(sandbox, {
      build,
      entry: 'ingress',
      input: { kind: 'packet', bytes: frame(0x0800) },
    });
    expect(r.output?.kind === 'packet' && r.output.digests).toBe(undefined);
  });
});
