#include <core.p4>
#include <v1model.p4>

header h_t { bit<8> kind; bit<16> rid; bit<8> port; }
struct headers { h_t h; }
struct metadata { }

parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    apply {
        if (hdr.h.kind == 1) {
            sm.mcast_grp = 7;
        } else if (hdr.h.kind == 2) {
            sm.egress_spec = 4;
        } else {
            mark_to_drop(sm);
        }
    }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    apply {
        hdr.h.rid = sm.egress_rid;
        hdr.h.port = (bit<8>) sm.egress_port;
        if (sm.egress_port == 3) { mark_to_drop(sm); }
    }
}
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
