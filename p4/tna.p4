/* tna.p4 — a minimal TNA-style architecture (Tofino Native Architecture, as published in
 * Intel's open-source tna.p4 / tofino.p4 includes), written for thunderpac from the public
 * documentation: the intrinsic metadata, types, externs and package that thunderpac's TNA
 * rewrite (`thunderpac p4 compile --target tna`) uses, with TNA's names and field widths.
 * It describes the target; it is not Intel's file. `#include <tna.p4>` resolves here.
 *
 * Pipeline: IngressParser → Ingress → IngressDeparser → traffic manager →
 *           EgressParser → Egress → EgressDeparser.
 * Ingress and egress are separate programs over separate headers/metadata: what egress needs
 * from ingress travels in a bridged header that the ingress deparser emits. */
#ifndef _TNA_P4_
#define _TNA_P4_

#include <core.p4>

typedef bit<9>  PortId_t;            // Port id: ingress or egress port
typedef bit<16> MulticastGroupId_t;  // Multicast group id
typedef bit<5>  QueueId_t;           // Queue id
typedef bit<3>  MirrorType_t;        // Mirror type
typedef bit<10> MirrorId_t;          // Mirror session id
typedef bit<3>  ResubmitType_t;      // Resubmit type
typedef bit<3>  DigestType_t;        // Digest type

// The port metadata block the ingress parser skips after ig_intr_md (Tofino 1: 64 bits).
const bit<32> PORT_METADATA_SIZE = 32w64;

match_kind {
    range,
    selector,
    atcam_partition_index
}

// ---------------------------------------------------------------- ingress intrinsic metadata

header ingress_intrinsic_metadata_t {
    bit<1>   resubmit_flag;        // 1 for a resubmitted packet
    bit<1>   _pad1;
    bit<2>   packet_version;
    bit<3>   _pad2;
    PortId_t ingress_port;         // the port the packet arrived on
    bit<48>  ingress_mac_tstamp;   // IEEE 1588 timestamp taken at the ingress MAC (ns)
}

struct ingress_intrinsic_metadata_from_parser_t {
    bit<48> global_tstamp;         // global timestamp (ns) at ingress arrival
    bit<32> global_ver;
    bit<16> parser_err;            // error flags of the ingress parser
}

struct ingress_intrinsic_metadata_for_tm_t {
    PortId_t           ucast_egress_port;   // unicast egress port
    bit<1>             bypass_egress;
    bit<1>             deflect_on_drop;
    bit<3>             ingress_cos;
    QueueId_t          qid;
    bit<3>             icos_for_copy_to_cpu;
    bit<1>             copy_to_cpu;
    bit<2>             packet_color;
    bit<1>             disable_ucast_cutthru;
    bit<1>             enable_mcast_cutthru;
    MulticastGroupId_t mcast_grp_a;         // first multicast group (0: none)
    MulticastGroupId_t mcast_grp_b;
    bit<13>            level1_mcast_hash;
    bit<13>            level2_mcast_hash;
    bit<16>            level1_exclusion_id;
    bit<9>             level2_exclusion_id;
    bit<16>            rid;                 // replication id given to multicast copies
}

struct ingress_intrinsic_metadata_for_deparser_t {
    bit<3>         drop_ctl;       // bit 0: drop the packet (no unicast, multicast or resubmit)
    DigestType_t   digest_type;
    ResubmitType_t resubmit_type;
    MirrorType_t   mirror_type;
}

// ---------------------------------------------------------------- egress intrinsic metadata

header egress_intrinsic_metadata_t {
    bit<7>    _pad0;
    PortId_t  egress_port;         // the port the packet leaves on
    bit<5>    _pad1;
    bit<19>   enq_qdepth;          // queue depth when the packet was enqueued
    bit<6>    _pad2;
    bit<2>    enq_congest_stat;
    bit<14>   _pad3;
    bit<18>   enq_tstamp;          // enqueue timestamp (ns)
    bit<5>    _pad4;
    bit<19>   deq_qdepth;          // queue depth when the packet was dequeued
    bit<6>    _pad5;
    bit<2>    deq_congest_stat;
    bit<8>    app_pool_congest_stat;
    bit<14>   _pad6;
    bit<18>   deq_timedelta;       // time the packet spent in the queue (ns)
    bit<16>   egress_rid;          // replication id of a multicast copy
    bit<7>    _pad7;
    bit<1>    egress_rid_first;
    bit<3>    _pad8;
    QueueId_t egress_qid;
    bit<5>    _pad9;
    bit<3>    egress_cos;
    bit<7>    _pad10;
    bit<1>    deflection_flag;
    bit<16>   pkt_length;          // packet length in bytes
}

struct egress_intrinsic_metadata_from_parser_t {
    bit<48> global_tstamp;         // global timestamp (ns) at egress arrival
    bit<32> global_ver;
    bit<16> parser_err;
}

struct egress_intrinsic_metadata_for_deparser_t {
    bit<3>       drop_ctl;         // bit 0: drop the packet
    MirrorType_t mirror_type;
    bit<1>       coalesce_flush;
    bit<7>       coalesce_length;
}

struct egress_intrinsic_metadata_for_output_port_t {
    bit<1> capture_tstamp_on_tx;
    bit<1> update_delay_on_tx;
    bit<1> force_tx_error;
}

// ---------------------------------------------------------------- externs

enum CounterType_t {
    PACKETS,
    BYTES,
    PACKETS_AND_BYTES
}

enum MeterType_t {
    PACKETS,
    BYTES
}

// Meter colors as TNA returns them: GREEN 0, YELLOW 1, RED 3.
enum bit<8> MeterColor_t {
    GREEN = 8w0,
    YELLOW = 8w1,
    RED = 8w3
}

enum HashAlgorithm_t {
    IDENTITY,
    RANDOM,
    CRC8,
    CRC16,
    CRC32,
    CRC64,
    CUSTOM,
    XOR8,
    XOR16,
    XOR32
}

/// Indexed counter.
extern Counter<W, I> {
    Counter(bit<32> size, CounterType_t type);
    void count(in I index);
}

/// Counter bound to a table (`counters = c;`); each action of the table calls count().
extern DirectCounter<W> {
    DirectCounter(CounterType_t type);
    void count();
}

/// Indexed two-rate three-color meter.
extern Meter<I> {
    Meter(bit<32> size, MeterType_t type);
    bit<8> execute(in I index);
}

/// Meter bound to a table (`meters = m;`).
extern DirectMeter {
    DirectMeter(MeterType_t type);
    bit<8> execute();
}

/// Register array; read and write compile to simple register actions.
extern Register<T, I> {
    Register(bit<32> size);
    T read(in I index);
    void write(in I index, in T value);
}

/// Hash engine of width W.
extern Hash<W> {
    Hash(HashAlgorithm_t algo);
    W get<D>(in D data);
}

/// Random number generator: uniform over bit<W>.
extern Random<W> {
    Random();
    W get();
}

/// Ones' complement 16-bit checksum (csum16) engine of the parser and deparser.
extern Checksum {
    Checksum();
    void add<T>(in T data);
    void subtract<T>(in T data);
    bool verify();
    bit<16> get();
    bit<16> update<T>(in T data);
}

// ---------------------------------------------------------------- blocks and package

parser IngressParserT<H, M>(
    packet_in pkt,
    out H hdr,
    out M ig_md,
    out ingress_intrinsic_metadata_t ig_intr_md);

control IngressT<H, M>(
    inout H hdr,
    inout M ig_md,
    in ingress_intrinsic_metadata_t ig_intr_md,
    in ingress_intrinsic_metadata_from_parser_t ig_prsr_md,
    inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
    inout ingress_intrinsic_metadata_for_tm_t ig_tm_md);

control IngressDeparserT<H, M>(
    packet_out pkt,
    inout H hdr,
    in M metadata,
    in ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md);

parser EgressParserT<H, M>(
    packet_in pkt,
    out H hdr,
    out M eg_md,
    out egress_intrinsic_metadata_t eg_intr_md);

control EgressT<H, M>(
    inout H hdr,
    inout M eg_md,
    in egress_intrinsic_metadata_t eg_intr_md,
    in egress_intrinsic_metadata_from_parser_t eg_prsr_md,
    inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md,
    inout egress_intrinsic_metadata_for_output_port_t eg_oport_md);

control EgressDeparserT<H, M>(
    packet_out pkt,
    inout H hdr,
    in M metadata,
    in egress_intrinsic_metadata_for_deparser_t eg_dprsr_md);

package Pipeline<IH, IM, EH, EM>(
    IngressParserT<IH, IM> ingress_parser,
    IngressT<IH, IM> ingress,
    IngressDeparserT<IH, IM> ingress_deparser,
    EgressParserT<EH, EM> egress_parser,
    EgressT<EH, EM> egress,
    EgressDeparserT<EH, EM> egress_deparser);

package Switch<IH0, IM0, EH0, EM0>(Pipeline<IH0, IM0, EH0, EM0> pipe0);

#endif  /* _TNA_P4_ */
