#include <core.p4>
#include <v1model.p4>

header h_t { bit<8> a; bit<8> b; bit<16> c; int<8> s; bit<8> pad; }
header h2_t { bit<8> a; bit<8> b; bit<8> c; }
struct headers { h_t h; h2_t h2; }
struct metadata { bit<8> tmp; }

bit<8> max8(in bit<8> x, in bit<8> y) {
    bit<8> r = x;
    if (y > x) { r = y; }
    return r;
}

// Early returns: the statements after a returning if move into its other branch.
bit<8> classify(in bit<8> v) {
    if (v == 0) {
        return 0xa0;
    }
    if (v < 0x10) {
        return 0xb0;
    }
    bit<8> r = v;
    if (v > 0xf0) {
        r = 0xf0;
    }
    return r | 0x01;
}

void swap(inout bit<8> x, inout bit<8> y) {
    bit<8> t = x;
    x = y;
    y = t;
}

parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.h); pkt.extract(hdr.h2); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    action addc(inout bit<16> v, bit<16> d) {
        if (d == 0) { return; }
        v = v + d;
    }
    action pick() {
        switch (hdr.h2.a) {
            0xa0: { hdr.h2.b = hdr.h2.b + 1; }
            0x43:
            0x44: { hdr.h2.b = 0x99; }
            default: { }
        }
    }
    action mark(bit<8> v) { hdr.h2.c = v; }
    table bykey {
        key = { hdr.h2.c[7:4]: exact; }
        actions = { mark; NoAction; }
        const entries = { 7 : mark(0x5a); }
    }
    apply {
        sm.egress_spec = 1;
        meta.tmp = max8(hdr.h.a, hdr.h.b);
        swap(hdr.h.a, hdr.h.b);
        hdr.h.c = hdr.h.c[7:0] ++ meta.tmp;
        addc(hdr.h.c, 16w1);
        hdr.h.s = hdr.h.s >> 1;
        hdr.h.pad = (bit<8>) (hdr.h.s < 0 ? 8w1 : 8w0) + (bit<8>) ((bit<4>) hdr.h.c);
        addc(hdr.h.c, 0);
        hdr.h2.a = classify(hdr.h2.a);
        hdr.h2.b = classify(hdr.h2.b);
        hdr.h2.c[3:0] = 0;
        pick();
        bykey.apply();
    }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.h); pkt.emit(hdr.h2); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
