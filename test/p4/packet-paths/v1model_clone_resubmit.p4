// v1model clone / clone_preserving_field_list (I2E and E2E), resubmit_preserving_field_list,
// recirculate_preserving_field_list. Ingress writes instance_type into iitype, egress into
// itype and the carried metadata `keep` into mark: the bytes out show what each copy carried.
#include <core.p4>
#include <v1model.p4>

header h_t { bit<8> kind; bit<8> mark; bit<8> seen; bit<8> iitype; bit<8> itype; }
struct headers { h_t h; }
struct metadata {
    @field_list(1)
    bit<8> keep;
    bit<8> lost;
}

parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); transition accept; }
}

control NoCk(inout headers hdr, inout metadata meta) { apply { } }

control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    apply {
        hdr.h.iitype = (bit<8>) sm.instance_type;
        if (hdr.h.kind == 1) {
            meta.keep = 7;
            meta.lost = 9;
            sm.egress_spec = 1;
            clone_preserving_field_list(CloneType.I2E, 5, 1);
        } else if (hdr.h.kind == 2) {
            if (sm.instance_type == 0) {
                meta.keep = 7;
                meta.lost = 9;
                resubmit_preserving_field_list(1);
            } else {
                sm.egress_spec = 2;
            }
        } else if (hdr.h.kind == 3) {
            sm.egress_spec = 3;
        } else if (hdr.h.kind == 7) {
            meta.keep = 7;
            sm.egress_spec = 1;
            clone(CloneType.I2E, 5);
        } else {
            sm.egress_spec = 1;
        }
    }
}

control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    apply {
        hdr.h.itype = (bit<8>) sm.instance_type;
        hdr.h.mark = meta.keep;
        if (hdr.h.kind == 3 && hdr.h.seen < 3) {
            hdr.h.seen = hdr.h.seen + 1;
            meta.keep = meta.keep + 1;
            recirculate_preserving_field_list(1);
        }
        if (hdr.h.kind == 5 && sm.instance_type == 0) {
            meta.keep = 42;
            clone_preserving_field_list(CloneType.E2E, 6, 1);
        }
    }
}

control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.h); } }

V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
