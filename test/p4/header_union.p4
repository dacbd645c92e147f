#include <core.p4>
#include <v1model.p4>

header tag_t { bit<8> kind; }
header v4_t { bit<32> addr; }
header v6_t { bit<64> addr; }
header_union ip_u { v4_t v4; v6_t v6; }
struct headers { tag_t tag; ip_u ip; }
struct metadata { }

parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.tag);
        transition select(hdr.tag.kind) {
            4: v4;
            6: v6;
            default: accept;
        }
    }
    state v4 { pkt.extract(hdr.ip.v4); transition accept; }
    state v6 { pkt.extract(hdr.ip.v6); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = 1;
        if (!hdr.ip.isValid()) {
            mark_to_drop(sm);
        } else if (hdr.ip.v4.isValid() && hdr.ip.v4.addr == 0x0a000001) {
            // Rewrite v4 into v6: making v6 valid invalidates v4.
            hdr.ip.v6.setValid();
            hdr.ip.v6.addr = 0xfe80000000000001;
            hdr.tag.kind = 6;
        }
    }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
