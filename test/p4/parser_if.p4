#include <core.p4>
#include <v1model.p4>

header a_t { bit<8> kind; bit<8> val; }
header b_t { bit<16> x; }
struct headers { a_t a; b_t b; }
struct metadata { bit<8> seen; }

parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.a);
        meta.seen = 1;
        if (hdr.a.kind == 0xbb) {
            pkt.extract(hdr.b);
            if (hdr.b.x == 0xffff) {
                meta.seen = 3;
            }
        } else {
            meta.seen = 2;
        }
        meta.seen = meta.seen + 0x10;
        transition accept;
    }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = 2;
        hdr.a.val = meta.seen;
    }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.a); pkt.emit(hdr.b); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
