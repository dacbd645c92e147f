/* features.p4 — one program touching most of the supported subset: VLAN header stack with
 * .next/.last, push_front/pop_front, a user error and verify, select on a tuple with masks and
 * don't-cares, exact / ternary / range / lpm keys, isValid() keys, direct and indexed
 * counters, a register, crc16 hash, switch on action_run and on values, hit/miss, exit,
 * slices, concatenation, casts and saturating arithmetic. */
#include <core.p4>
#include <v1model.p4>

typedef bit<48> mac_t;
const bit<16> ETH_VLAN = 0x8100;
const bit<16> ETH_IPV4 = 0x0800;
#define MAX_VLANS 2

error { IPv4OptionsNotSupported }

header ethernet_t { mac_t dst; mac_t src; bit<16> etherType; }
header vlan_t { bit<3> pcp; bit<1> dei; bit<12> vid; bit<16> etherType; }
header ipv4_t {
    bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> totalLen;
    bit<16> identification; bit<3> flags; bit<13> fragOffset;
    bit<8> ttl; bit<8> protocol; bit<16> hdrChecksum;
    bit<32> srcAddr; bit<32> dstAddr;
}
header udp_t { bit<16> srcPort; bit<16> dstPort; bit<16> len; bit<16> csum; }

struct headers {
    ethernet_t        eth;
    vlan_t[MAX_VLANS] vlan;
    ipv4_t            ipv4;
    udp_t             udp;
}

struct metadata {
    bit<16> l4_dst;
    bit<8>  class;
    bool    tagged;
}

parser MyParser(packet_in packet, out headers hdr, inout metadata meta,
                inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.eth);
        transition select(hdr.eth.etherType) {
            ETH_VLAN: parse_vlan;
            ETH_IPV4: parse_ipv4;
            default: accept;
        }
    }
    state parse_vlan {
        packet.extract(hdr.vlan.next);
        meta.tagged = true;
        transition select(hdr.vlan.last.etherType) {
            ETH_VLAN: parse_vlan;
            ETH_IPV4: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        verify(hdr.ipv4.ihl == 5, error.IPv4OptionsNotSupported);
        transition select(hdr.ipv4.protocol, hdr.ipv4.fragOffset) {
            (17, 0): parse_udp;
            (0x06 &&& 0xff, _): accept;
            default: accept;
        }
    }
    state parse_udp {
        packet.extract(hdr.udp);
        meta.l4_dst = hdr.udp.dstPort;
        transition accept;
    }
}

control MyVerifyChecksum(inout headers hdr, inout metadata meta) {
    apply { }
}

control MyIngress(inout headers hdr, inout metadata meta,
                  inout standard_metadata_t standard_metadata) {
    counter(16, CounterType.packets_and_bytes) port_counter;
    direct_counter(CounterType.packets) acl_counter;
    register<bit<32>>(16) seen;
    bit<32> last_seen;

    action drop() { mark_to_drop(standard_metadata); }
    action set_port(bit<9> port) { standard_metadata.egress_spec = port; }
    action permit() { acl_counter.count(); }
    action deny() { acl_counter.count(); mark_to_drop(standard_metadata); }
    action set_class(bit<8> c) { acl_counter.count(); meta.class = c; }
    action vlan_class(bit<8> c) { meta.class = c; }

    table l2 {
        key = { hdr.eth.dst: exact; }
        actions = { set_port; drop; }
        default_action = drop();
        size = 64;
    }

    table acl {
        key = {
            hdr.ipv4.srcAddr: ternary;
            hdr.ipv4.protocol: ternary;
            meta.l4_dst: range;
        }
        actions = { permit; deny; set_class; }
        default_action = permit();
        counters = acl_counter;
        size = 128;
    }

    table vlan_map {
        key = { hdr.vlan[0].isValid(): exact; hdr.vlan[0].vid: exact; }
        actions = { vlan_class; NoAction; }
        default_action = NoAction();
        const entries = {
            (true, 10): vlan_class(7);
            (true, 20): vlan_class(9);
        }
    }

    apply {
        port_counter.count((bit<32>) standard_metadata.ingress_port);
        switch (l2.apply().action_run) {
            drop: { exit; }
            default: { }
        }
        if (meta.tagged) {
            vlan_map.apply();
            hdr.vlan.pop_front(1);
            if (!hdr.vlan[0].isValid()) {
                hdr.eth.etherType = ETH_IPV4;
            }
        }
        if (hdr.ipv4.isValid()) {
            if (!acl.apply().hit) {
                meta.class = meta.class |+| 8w1;
            }
            // DSCP from the class (6 bits) concatenated with ECN 0.
            hdr.ipv4.diffserv = meta.class[5:0] ++ 2w0;
            bit<32> idx = (bit<32>) hdr.ipv4.dstAddr[3:0];
            seen.read(last_seen, idx);
            seen.write(idx, last_seen + 1);
            hash(hdr.ipv4.identification, HashAlgorithm.crc16, 16w0,
                 { hdr.ipv4.srcAddr, hdr.ipv4.dstAddr }, 32w65536);
            hdr.ipv4.ttl = hdr.ipv4.ttl |-| 8w3;
            if (meta.class == 9) {
                hdr.vlan.push_front(1);
                hdr.vlan[0].setValid();
                hdr.vlan[0].vid = 12w99;
                hdr.vlan[0].etherType = hdr.eth.etherType;
                hdr.eth.etherType = ETH_VLAN;
            }
        }
    }
}

control MyEgress(inout headers hdr, inout metadata meta,
                 inout standard_metadata_t standard_metadata) {
    apply {
        if (hdr.udp.isValid()) {
            switch (hdr.udp.dstPort) {
                7: { hdr.udp.csum = 0; }
                9: { mark_to_drop(standard_metadata); }
                default: { }
            }
        }
    }
}

control MyComputeChecksum(inout headers hdr, inout metadata meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.totalLen,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset,
              hdr.ipv4.ttl, hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr },
            hdr.ipv4.hdrChecksum, HashAlgorithm.csum16);
    }
}

control MyDeparser(packet_out packet, in headers hdr) {
    apply {
        packet.emit(hdr);
    }
}

V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(), MyComputeChecksum(), MyDeparser()) main;
