#include <core.p4>
#include <v1model.p4>

// Control-flow and expression semantics: copy-in/copy-out, if inside actions, header and
// struct copies, signed arithmetic, enums, switch on action_run, const default actions,
// exit (egress still runs) and return.
enum bit<8> Op { ADD = 1, SUB = 2, SHL = 3, CAT = 4 }
enum Mode { FAST, SLOW }
type bit<8> Octet_t;
const Octet_t FAST_BIT = 0x80;

header req_t { bit<8> op; bit<8> a; bit<8> b; bit<16> r; int<8> s; bit<8> flags; }
struct headers { req_t req; req_t saved; }
struct inner_t { bit<8> x; bool flag; }
struct metadata { inner_t m1; inner_t m2; Mode mode; }

parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.req); transition accept; }
}
control NoCk(inout headers hdr, inout metadata meta) { apply { } }
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    action compute(inout bit<16> res, in bit<8> x, in bit<8> y) {
        if (hdr.req.op == (bit<8>) Op.ADD) {
            res = (bit<16>) (x + y);
        } else if (hdr.req.op == (bit<8>) Op.SUB) {
            res = (bit<16>) x - (bit<16>) y;
        } else if (hdr.req.op == (bit<8>) Op.SHL) {
            res = ((bit<16>) x) << y[3:0];
        } else {
            res = x ++ y;
        }
    }
    action set_fast() { }
    action set_slow() { }
    table classify {
        key = { hdr.req.flags: exact; }
        actions = { set_fast; set_slow; }
        const default_action = set_slow();
        const entries = { 1 : set_fast(); }
    }
    apply {
        sm.egress_spec = 2;
        hdr.saved = hdr.req;
        compute(hdr.req.r, hdr.req.a, hdr.req.b);
        meta.m1.x = hdr.req.a;
        meta.m1.flag = hdr.req.b > 100;
        meta.m2 = meta.m1;
        hdr.req.s = hdr.req.s < 0 ? -hdr.req.s : hdr.req.s;
        switch (classify.apply().action_run) {
            set_fast: { meta.mode = Mode.FAST; }
            default: { meta.mode = Mode.SLOW; }
        }
        if (meta.mode == Mode.FAST) {
            hdr.req.flags = hdr.req.flags | FAST_BIT;
        }
        if (meta.m2.flag) {
            hdr.saved.setInvalid();
        }
        if (hdr.req.op == 0) {
            mark_to_drop(sm);
            return;
        }
        if (hdr.req.op == 0xff) {
            exit;
        }
        hdr.req.op = hdr.req.op + 0x10;
    }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    apply {
        if (hdr.req.op == 0xff) { hdr.req.b = 0xee; }
    }
}
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr.req); pkt.emit(hdr.saved); } }
V1Switch(P(), NoCk(), I(), E(), NoCk(), D()) main;
