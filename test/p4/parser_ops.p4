#include <core.p4>
#include <v1model.p4>

// lookahead in select and in an assignment, advance, a varbit option, verify → parser_error.
header first_t { bit<8> len; bit<8> flags; }
header opt_t { varbit<64> data; }
header tail_t { bit<16> v; }
header out_t { bit<8> err; bit<8> peek; }
struct headers { first_t first; opt_t opt; tail_t tail; out_t out; }
struct metadata { bit<8> peek; }

parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    state start {
        transition select(pkt.lookahead<bit<8>>()) {
            0xee: skip;
            default: parse_first;
        }
    }
    state skip {
        pkt.advance(16);
        transition parse_first;
    }
    state parse_first {
        pkt.extract(hdr.first);
        verify(hdr.first.len <= 8, error.HeaderTooShort);
        pkt.extract(hdr.opt, (bit<32>) hdr.first.len * 8);
        meta.peek = pkt.lookahead<bit<8>>();
        pkt.extract(hdr.tail);
        transition accept;
    }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = 1;
        hdr.out.setValid();
        switch (sm.parser_error) {
            error.NoError: { hdr.out.err = 0; }
            error.PacketTooShort: { hdr.out.err = 1; }
            error.HeaderTooShort: { hdr.out.err = 4; }
            default: { hdr.out.err = 0xff; }
        }
        hdr.out.peek = meta.peek;
    }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
