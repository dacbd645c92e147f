/* mpls_vlan_stack.p4 — a parser-heavy program: Ethernet, up to 4 stacked VLAN tags, up to 8
 * MPLS labels (until bottom-of-stack), then IPv4 with 0..40 bytes of options (a varbit sized
 * by ihl). The label-switching table matches the top label exactly: swap it, or pop it (the
 * last pop restores the IPv4 etherType); the top VLAN tag may be popped on the way out.
 * Used by bench/p4.ts (the "parser-heavy" program) and test/p4/mpls_vlan_stack.stf. */
#include <core.p4>
#include <v1model.p4>

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;
    bit<16> etherType;
}

header vlan_t {
    bit<3>  pcp;
    bit<1>  dei;
    bit<12> vid;
    bit<16> etherType;
}

header mpls_t {
    bit<20> label;
    bit<3>  tc;
    bit<1>  bos;
    bit<8>  ttl;
}

header ipv4_t {
    bit<4>  version;
    bit<4>  ihl;
    bit<8>  diffserv;
    bit<16> totalLen;
    bit<16> identification;
    bit<3>  flags;
    bit<13> fragOffset;
    bit<8>  ttl;
    bit<8>  protocol;
    bit<16> hdrChecksum;
    bit<32> srcAddr;
    bit<32> dstAddr;
}

header ipv4_options_t {
    varbit<320> options;
}

struct headers {
    ethernet_t     ethernet;
    vlan_t[4]      vlan;
    mpls_t[8]      mpls;
    ipv4_t         ipv4;
    ipv4_options_t ipv4_options;
}

struct metadata {
    bit<8> labels;
}

parser SParser(packet_in packet, out headers hdr, inout metadata meta,
               inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            0x8100: parse_vlan;
            0x8847: parse_mpls;
            0x0800: parse_ipv4;
            default: accept;
        }
    }
    state parse_vlan {
        packet.extract(hdr.vlan.next);
        transition select(hdr.vlan.last.etherType) {
            0x8100: parse_vlan;
            0x8847: parse_mpls;
            0x0800: parse_ipv4;
            default: accept;
        }
    }
    state parse_mpls {
        packet.extract(hdr.mpls.next);
        meta.labels = meta.labels + 1;
        transition select(hdr.mpls.last.bos) {
            0: parse_mpls;
            1: parse_ipv4;
        }
    }
    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        verify(hdr.ipv4.ihl >= 5, error.HeaderTooShort);
        packet.extract(hdr.ipv4_options, (bit<32>) (((bit<16>) hdr.ipv4.ihl - 5) * 32));
        transition accept;
    }
}

control NoChecksum(inout headers hdr, inout metadata meta) { apply { } }

control SIngress(inout headers hdr, inout metadata meta,
                 inout standard_metadata_t standard_metadata) {
    action drop() { mark_to_drop(standard_metadata); }

    action swap(bit<20> label, bit<9> port) {
        hdr.mpls[0].label = label;
        hdr.mpls[0].ttl = hdr.mpls[0].ttl - 1;
        standard_metadata.egress_spec = port;
    }

    action pop(bit<9> port) {
        hdr.mpls.pop_front(1);
        standard_metadata.egress_spec = port;
    }

    table lfib {
        key = { hdr.mpls[0].label: exact; }
        actions = { swap; pop; drop; }
        size = 4096;
        default_action = drop();
    }

    action strip_vlan() {
        hdr.ethernet.etherType = hdr.vlan[0].etherType;
        hdr.vlan.pop_front(1);
    }

    table vlan_edge {
        key = { hdr.vlan[0].vid: exact; }
        actions = { strip_vlan; NoAction; }
        size = 4096;
        default_action = NoAction();
    }

    apply {
        if (standard_metadata.parser_error != error.NoError) {
            drop();
            exit;
        }
        if (hdr.mpls[0].isValid()) {
            lfib.apply();
            if (!hdr.mpls[0].isValid()) {
                // the last label went: what follows it is IPv4
                if (hdr.vlan[0].isValid()) {
                    hdr.vlan[3].etherType = 0x0800;
                    hdr.vlan[2].etherType = 0x0800;
                    hdr.vlan[1].etherType = 0x0800;
                    hdr.vlan[0].etherType = 0x0800;
                } else {
                    hdr.ethernet.etherType = 0x0800;
                }
            }
        } else {
            standard_metadata.egress_spec = 1;
        }
        if (hdr.vlan[0].isValid()) {
            vlan_edge.apply();
        }
    }
}

control SEgress(inout headers hdr, inout metadata meta,
                inout standard_metadata_t standard_metadata) { apply { } }

control SDeparser(packet_out packet, in headers hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.vlan);
        packet.emit(hdr.mpls);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.ipv4_options);
    }
}

V1Switch(SParser(), NoChecksum(), SIngress(), SEgress(), NoChecksum(), SDeparser()) main;
