/* l2_switch.p4 — simple forwarding: an exact-match table on the destination MAC picks the
 * egress port; unknown destinations go to the flood port chosen by the control plane (the
 * table's default action), and a port table drops frames from disabled ingress ports.
 * Used by bench/p4.ts (the "simple forwarding" program) and test/p4/l2_switch.stf. */
#include <core.p4>
#include <v1model.p4>

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;
    bit<16> etherType;
}

struct headers { ethernet_t ethernet; }
struct metadata { }

parser L2Parser(packet_in packet, out headers hdr, inout metadata meta,
                inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition accept;
    }
}

control NoChecksum(inout headers hdr, inout metadata meta) { apply { } }

control L2Ingress(inout headers hdr, inout metadata meta,
                  inout standard_metadata_t standard_metadata) {
    action drop() { mark_to_drop(standard_metadata); }
    action forward(bit<9> port) { standard_metadata.egress_spec = port; }
    action allow() { }

    table port_enabled {
        key = { standard_metadata.ingress_port: exact; }
        actions = { allow; drop; }
        size = 512;
        default_action = drop();
    }

    table dmac {
        key = { hdr.ethernet.dstAddr: exact; }
        actions = { forward; drop; }
        size = 4096;
        default_action = drop();
    }

    apply {
        if (port_enabled.apply().hit) {
            dmac.apply();
        }
    }
}

control L2Egress(inout headers hdr, inout metadata meta,
                 inout standard_metadata_t standard_metadata) { apply { } }

control L2Deparser(packet_out packet, in headers hdr) {
    apply { packet.emit(hdr.ethernet); }
}

V1Switch(L2Parser(), NoChecksum(), L2Ingress(), L2Egress(), NoChecksum(), L2Deparser()) main;
