#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Writes the seed corpus of fuzz_decode.c into tests/fuzz/corpus/: whole IP packets (TCP behind
IPv6 extension-header chains of every length, UDP, ICMP and ICMPv6 with and without a chain, cut
transport headers, and packets without a reachable transport header) behind
the 75-byte event prefix that fuzz_decode.c's header comment describes. Run it again after changing
that layout; the files are committed, so the fuzzer needs no Python."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

INGRESS, EGRESS = 0, 1


PKT_F_NO_L4 = 1 << 2
# The raw record's l4_proto by the flags byte's high nibble (fuzz_decode.c, l4_protos[]).
L4_TCP, L4_UDP, L4_ICMPV6, L4_HOPOPTS = 0 << 4, 1 << 4, 2 << 4, 10 << 4
# The socket class by cap's low bits (fuzz_decode.c, sk_protos[]): TCP, UDP, ping, raw.
SK_UDP, SK_ICMP, SK_RAW = 129, 130, 131


def prefix(direction=EGRESS, select=0, cap=128, packet_len=60, ts=1764145200123456789,
           pid=4242, tid=4242, ppid=4100, uid=1000, cgroup=1234, comm=b"curl", ifname=b"lo",
           rec_flags=0, ext_count=0, ext_len=0):
    """rec_flags, ext_count, ext_len: the fields of the record made straight from the bytes."""
    p = struct.pack("<BBBIQIIIIQ", direction, select, cap, packet_len, ts, pid, tid, ppid, uid,
                    cgroup)
    p += comm.ljust(16, b"\0")[:16] + ifname.ljust(16, b"\0")[:16]
    p += struct.pack("<BBH", rec_flags, ext_count, ext_len)
    assert len(p) == 75
    return p


def tcp(sport=41234, dport=8080, seq=3512345678, ack=0, flags=0x02, window=65495, opts=b""):
    assert len(opts) % 4 == 0
    doff = 5 + len(opts) // 4
    ns = flags >> 8 & 1
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4 | ns, flags & 0xff,
                       window, 0xfe30, 0) + opts


def ipv4(payload, opts=b"", frag=0x4000, proto=6, tos=0, ttl=64, ident=1, csum=0):
    assert len(opts) % 4 == 0
    ihl = 5 + len(opts) // 4
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, ihl * 4 + len(payload), ident, frag, ttl,
                       proto, csum, bytes([127, 0, 0, 1]), bytes([10, 1, 2, 3])) + opts + payload


def ipv6(payload, next_hdr=6, src=bytes(15) + b"\x01", dst=bytes(15) + b"\x01", vtf=0x60000000,
         hlim=64):
    """vtf: version, traffic class and flow label."""
    return struct.pack("!IHBB16s16s", vtf, len(payload), next_hdr, hlim, src, dst) + payload


def udp(sport=53124, dport=53, payload=b"", csum=0xabcd):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), csum) + payload


def icmp(typ=8, code=0, ident=0x0b0c, seq=1, payload=b"", csum=0xf7ff):
    return struct.pack("!BBHHH", typ, code, csum, ident, seq) + payload


def ext(next_hdr, body):
    """Hop-by-hop, routing or destination options header: length in 8-byte units past the first."""
    body = body.ljust((len(body) + 2 + 7) // 8 * 8 - 2, b"\0")
    return bytes([next_hdr, (len(body) + 2) // 8 - 1]) + body


def chain(types, tail_next, sizes=None):
    """Extension headers of the given types (hop-by-hop, routing, fragment, AH, destination
    options) in order, the last naming tail_next; sizes in bytes (8 unless given)."""
    out = b""
    for i, t in enumerate(types):
        nxt = types[i + 1] if i + 1 < len(types) else tail_next
        size = sizes[i] if sizes else 16 if t == 51 else 8
        if t == 44:
            out += bytes([nxt, 0, 0, 0]) + struct.pack("!I", 42)
        elif t == 51:
            out += bytes([nxt, size // 4 - 2, 0, 0]) + struct.pack("!II", 0x100, 7)
            out += bytes(size - 12)
        elif t == 43:
            out += ext(nxt, bytes([4, 0]) + bytes(size - 4))  # segment routing, 0 left
        else:
            out += ext(nxt, bytes([1, min(size - 4, 255)]) + bytes(size - 4))  # PadN, Pad1s
    return out


def v6_chain(types, payload, tail_next=6, sizes=None):
    return ipv6(chain(types, tail_next, sizes) + payload, next_hdr=types[0] if types else tail_next,
                src=bytes.fromhex("20010db8000000000000000000000066"),
                dst=bytes.fromhex("20010db8000000000000000000000001"))


def record_bytes(types, tcp_hdr=b"", no_tcp=False):
    """hdr[] of a kernel record for an IPv6 packet behind types: fixed header, TCP, types."""
    fixed = v6_chain(types, tcp_hdr)[:40]
    return fixed + (b"" if no_tcp else tcp_hdr) + bytes(types[:64])


# Flow records (pktrace.h): pkt_record.flags, and struct pkt_flow as the "packet" bytes.
PKT_FLOW_END, PKT_FLOW_PASSIVE, PKT_FLOW_BEGIN_SEEN, PKT_FLOW_FIN_ACKED = 1, 2, 4, 8
CLOSE = {"unknown": 0, "fin": 1, "rst_sent": 2, "rst_received": 3, "aborted": 4, "timeout": 5}


def flow(family=4, lport=40000, rport=443, laddr=bytes([10, 0, 0, 1]), raddr=bytes([10, 0, 0, 2]),
         duration=5000000, acked=102, received=3001, retrans_bytes=0, segs=(6, 5), data_segs=(1, 1),
         retrans=0, srtt=250, min_rtt=0xffffffff, ce=0, reason="fin", closer=1, netns=4026531840):
    """A struct pkt_flow: the connection, then the counters tcp_sock gives at the close."""
    conn = struct.pack("<IBBHHH16s16s", netns, family, 0, lport, rport, 0, laddr.ljust(16, b"\0"),
                       raddr.ljust(16, b"\0"))
    f = conn + struct.pack("<IQQQQIIIIIIIIBB6x", 0, duration, acked, received, retrans_bytes,
                           segs[0], segs[1], data_segs[0], data_segs[1], retrans, srtt, min_rtt, ce,
                           CLOSE.get(reason, reason), closer)
    assert len(f) == 120
    return f


def flow_prefix(flags, shape=0, shape_len=0, **kw):
    """The prefix of a flow record: pkt_record.flags in byte 71, its shape in byte 72 (0: well
    formed), the broken shapes' length in byte 73."""
    return prefix(rec_flags=flags, ext_count=shape, ext_len=shape_len, **kw)


MIX = [0, 60, 43, 44, 51]
DATA = tcp(flags=0x18, ack=1, seq=1000) + b"payload!"
TCP40 = tcp(flags=0x18, ack=1, opts=bytes([1] * 36 + [0] * 4))

SYN_OPTS = bytes([2, 4, 0xff, 0xd7, 4, 2, 8, 10]) + bytes(8) + bytes([1, 3, 3, 7])  # MSS SACK TS WS

SACK4 = bytes([1, 1, 5, 34]) + b"".join(struct.pack("!II", 1000 * i, 1000 * i + 500)
                                      for i in range(1, 5)) + bytes([1, 1, 1, 1])
TFO = bytes([2, 4, 0x05, 0xb4, 34, 10]) + bytes(range(8)) + bytes([254, 8, 0xf9, 0x89, 1, 2, 3, 4, 1, 0])
UNKNOWN = bytes([30, 4, 0, 0, 19, 2, 254, 4, 0x12, 0x34, 34, 2, 1, 9, 1, 0])

HTTP_GET = b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n\r\n"

SEEDS = {
    # --snaplen records (select bit 4: full-sized, the payload after the headers in snap[]).
    "snap_http_v4": prefix(select=0x10, packet_len=52 + len(HTTP_GET))
    + ipv4(tcp(flags=0x18, ack=1, seq=1000, opts=bytes([1, 1, 8, 10]) + bytes(8)) + HTTP_GET),
    "snap_http_v6": prefix(select=0x10, packet_len=60 + len(HTTP_GET))
    + ipv6(tcp(flags=0x18, ack=1, seq=1000) + HTTP_GET),
    "snap_udp_v4": prefix(select=0x10, cap=SK_UDP, packet_len=28 + 100)
    + ipv4(udp(payload=bytes(range(100))), proto=17),
    # More payload than a record holds (PKT_SNAP_MAX 4096): cut there.
    "snap_max": prefix(select=0x10, packet_len=40 + 5000)
    + ipv4(tcp(flags=0x10, ack=1, seq=7) + bytes(i & 0xff for i in range(5000))),
    # 20 + 20: a pure ACK, ingress on eth0.
    "ipv4_plain": prefix(direction=INGRESS, ifname=b"eth0", packet_len=40)
    + ipv4(tcp(flags=0x10, ack=12345)),
    # IPv4 options (NOP, then record route with room for two addresses: 12 bytes) and a SYN
    # with the usual 20 bytes of TCP options.
    "ipv4_options": prefix(packet_len=72)
    + ipv4(tcp(opts=SYN_OPTS), opts=bytes([1, 7, 11, 4]) + bytes(8)),
    # Every flag including NS, a hostile comm (ESC, C1 CSI, invalid UTF-8) and the widest numbers.
    "ipv4_hostile_comm": prefix(select=0x0f, cap=255, packet_len=0xffffffff, ts=(1 << 64) - 1,
                                pid=0xffffffff, tid=0xffffffff, ppid=0xffffffff, uid=0xffffffff,
                                cgroup=(1 << 64) - 1, comm=b"\x1b[31m\xc2\x9b\xff\xe2\x82\"\\x",
                                ifname=b"veth\x01\x7f\xc3")
    + ipv4(tcp(flags=0x1ff, seq=0xffffffff, ack=0xffffffff, window=0xffff)),
    # Format characters in comm (RLO, zero-width space, a tag) and host name 7 (the comm bytes).
    "ipv4_bidi_comm": prefix(select=0x07, comm="a\u202eb\u200bc\U000e0001".encode())
    + ipv4(tcp(flags=0x10, ack=1)),
    # IPv6, no extension header.
    "ipv6_plain": prefix(select=0x01, packet_len=60) + ipv6(tcp(flags=0x18, ack=1)),
    # IPv6: hop-by-hop, destination options, routing (type 4, segments left 0), then TCP.
    "ipv6_ext": prefix(select=0x04, packet_len=120, comm=b"demo-server")
    + ipv6(ext(60, bytes([1, 4, 0, 0, 0, 0])) + ext(43, bytes([1, 4, 0, 0, 0, 0]))
           + ext(6, bytes([4, 0, 0, 0, 0, 0]) + bytes(16)) + tcp(flags=0x11),
           next_hdr=0, src=bytes(10) + b"\xff\xff" + bytes([192, 0, 2, 1])),
    # IPv6: a first fragment (offset 0, more fragments) and AH (length 4: 24 bytes), then TCP.
    "ipv6_frag_ah": prefix(select=0x05, packet_len=1280)
    + ipv6(bytes([51, 0, 0, 1, 0, 0, 0, 42]) + bytes([6, 4, 0, 0]) + bytes(20)
           + tcp(flags=0x04), next_hdr=44,
           src=bytes.fromhex("20010db8000000000000000000000001"),
           dst=bytes.fromhex("fe80000000000000aabbccddeeff1234")),
    # The review's evasions: 9, 20 and 40 headers, one 2 KiB destination-options header, and
    # 160 bytes of hop-by-hop with 40 bytes of TCP options.
    "ipv6_chain9": prefix(select=0x10) + v6_chain([60] * 9, DATA),
    "ipv6_chain20": prefix(select=0x01) + v6_chain([0] + [60] * 19, DATA),
    "ipv6_chain40": prefix() + v6_chain([0] + (MIX[1:] * 10)[:39], DATA),
    "ipv6_dstopts_2k": prefix() + v6_chain([60], DATA, sizes=[2048]),
    "ipv6_hbh160_tcp40": prefix() + v6_chain([0], TCP40, sizes=[160]),
    # 300 headers: the count saturates at 255, the list stops at 64.
    "ipv6_chain300": prefix() + v6_chain([60] * 300, DATA),
    # No TCP header to reach: ESP at the end of a chain, a later fragment.
    "ipv6_chain_esp": prefix() + v6_chain([0, 60], bytes(24), tail_next=50),
    "ipv6_later_fragment": prefix() + v6_chain([0], DATA, tail_next=44)[:48]
    + bytes([6, 0, 0x05, 0x01, 0, 0, 0, 9]) + bytes(32),
    "ipv4_later_fragment": prefix(rec_flags=PKT_F_NO_L4) + ipv4(bytes(40), frag=0x00b9),
    # Records straight from the bytes, in the kernel's layout: TCP then the types, and NO_TCP.
    "record_chain9": prefix(ext_count=9, ext_len=72) + record_bytes([60] * 9, DATA[:20]),
    "record_no_tcp": prefix(rec_flags=PKT_F_NO_L4, ext_count=3, ext_len=24)
    + record_bytes([0, 60, 60], no_tcp=True),
    # TCP options: four SACK blocks, TFO cookies (kind 34 and the experimental 254), unknown
    # kinds with a bad length at the end, and the same in a record.
    "opts_sack4": prefix(packet_len=80) + ipv4(tcp(flags=0x10, ack=1, opts=SACK4)),
    "opts_tfo": prefix(select=0x01, packet_len=104) + ipv6(tcp(opts=TFO)),
    "opts_unknown_bad": prefix(packet_len=56) + ipv4(tcp(flags=0x12, opts=UNKNOWN)),
    "record_opts_sack4": prefix(ext_count=1, ext_len=8) + record_bytes([60], tcp(
        flags=0x10, ack=1, opts=SACK4)),
    "record_count255": prefix(ext_count=255, ext_len=2400) + record_bytes([60] * 64, DATA[:20]),
    # UDP, ICMP and ICMPv6, over IPv4 and IPv6, with and without a chain, and every IP field
    # set: a DNS query, UDP-Lite, an echo request, a port unreachable quoting a UDP packet.
    "udp_v4": prefix(cap=SK_UDP, packet_len=68)
    + ipv4(udp(payload=bytes(32)), proto=17, tos=0xb8, ttl=255, ident=0xb1e6, csum=0x1c46),
    "udplite_v4": prefix(cap=SK_UDP) + ipv4(udp(dport=5004), proto=136, frag=0x8000),
    "udp_v6": prefix(select=0x01, cap=SK_UDP, packet_len=1288)
    + ipv6(udp(sport=53, dport=65535, payload=bytes(24)), next_hdr=17, vtf=0x6abfedcb, hlim=255),
    "udp_v6_chain": prefix(cap=SK_UDP) + v6_chain([0, 60, 44], udp(payload=b"q"), tail_next=17),
    "icmp_echo_v4": prefix(cap=SK_ICMP, comm=b"ping", packet_len=84)
    + ipv4(icmp(payload=bytes(56)), proto=1),
    "icmp_unreach_v4": prefix(direction=INGRESS, cap=SK_UDP)
    + ipv4(icmp(3, 3, 0, 0, ipv4(udp(), proto=17)), proto=1, tos=0xc0, frag=0),
    "icmp_unknown_v4": prefix(cap=SK_RAW) + ipv4(icmp(200, 1, 0xffff, 0xffff), proto=1),
    "icmp6_echo": prefix(select=0x02, cap=SK_ICMP) + ipv6(icmp(128, payload=bytes(56)),
                                                          next_hdr=58),
    "icmp6_chain_unreach": prefix(cap=SK_ICMP)
    + v6_chain([0], icmp(1, 4, 0, 0, bytes(48)), tail_next=58),
    # Transport headers cut short: 5 bytes of UDP, 2 of ICMP, 4 of ICMPv6 behind a chain.
    "udp_v4_cut": prefix(cap=SK_UDP) + ipv4(udp()[:5], proto=17),
    "icmp_v4_cut": prefix(cap=SK_ICMP) + ipv4(icmp()[:2], proto=1),
    "icmp6_chain_4bytes": prefix(cap=SK_ICMP) + v6_chain([60, 0], icmp(2, 0)[:4], tail_next=58),
    # Protocols with no event of their own, and a later UDP fragment from a UDP socket.
    "gre_v4": prefix(cap=SK_RAW) + ipv4(bytes(24), proto=47),
    "ipv4_udp_later_fragment": prefix(cap=SK_UDP, rec_flags=PKT_F_NO_L4)
    + ipv4(bytes(40), frag=0x20b9, proto=17),
    # Records in the kernel's layout: UDP (8 bytes, 5 when cut) and a 4-byte ICMPv6 header
    # before the types, l4_proto saying what the chain led to; one leading to an extension
    # header (malformed); a raw socket's record with no transport header.
    "record_udp_chain": prefix(cap=SK_UDP, rec_flags=L4_UDP, ext_count=2, ext_len=16)
    + record_bytes([0, 60], udp()),
    "record_udp_chain_cut": prefix(cap=SK_UDP, rec_flags=L4_UDP, ext_count=2, ext_len=16)
    + record_bytes([0, 60], udp()[:5]),
    "record_icmp6_chain_4bytes": prefix(cap=SK_ICMP, rec_flags=L4_ICMPV6, ext_count=1, ext_len=8)
    + record_bytes([60], icmp(2, 0)[:4]),
    "record_chain_to_ext": prefix(cap=SK_UDP, rec_flags=L4_HOPOPTS, ext_count=1, ext_len=8)
    + record_bytes([60], udp()),
    "record_raw_no_l4": prefix(cap=SK_RAW, rec_flags=PKT_F_NO_L4 | L4_UDP, ext_count=3, ext_len=24)
    + record_bytes([0, 60, 60], no_tcp=True),
    # Flow records: an outgoing begin; an end with its FIN acked; an incoming IPv6 end older than
    # pktrace (no begin seen) reset by the peer, with retransmits; the widest values; a FIN then
    # a reset; and records to refuse (a bad close reason, a short hdr_len, a cut record).
    "flow_begin": flow_prefix(0) + flow(),
    "flow_end_fin": flow_prefix(PKT_FLOW_END | PKT_FLOW_BEGIN_SEEN | PKT_FLOW_FIN_ACKED) + flow(),
    "flow_end_v6_unseen": flow_prefix(PKT_FLOW_END | PKT_FLOW_PASSIVE, select=0x01)
    + flow(family=6, laddr=bytes(15) + b"\x01", raddr=bytes.fromhex("fe80000000000000000000000000002a"),
           duration=0, acked=1536, received=12 << 20, retrans_bytes=17376, segs=(9000, 12000),
           retrans=12, srtt=12345, min_rtt=9000, ce=4, reason="rst_received", closer=0),
    "flow_end_max": flow_prefix(PKT_FLOW_END | PKT_FLOW_BEGIN_SEEN, select=0x0f, comm=b"\x1b[31m\xc2\x9b\xff")
    + flow(lport=65535, rport=65535, duration=(1 << 64) - 1, acked=(1 << 64) - 1,
           received=(1 << 64) - 1, retrans_bytes=(1 << 64) - 1, segs=(0xffffffff,) * 2,
           data_segs=(0xffffffff,) * 2, retrans=0xffffffff, srtt=0xffffffff, ce=0xffffffff,
           reason="timeout", closer=2),
    "flow_end_fin_then_rst": flow_prefix(PKT_FLOW_END | PKT_FLOW_BEGIN_SEEN | PKT_FLOW_FIN_ACKED)
    + flow(acked=102, reason="rst_sent"),
    "flow_bad_reason": flow_prefix(PKT_FLOW_END) + flow(reason=6),
    "flow_short_hdr_len": flow_prefix(PKT_FLOW_END, shape=2, shape_len=119) + flow(),
    "flow_cut": flow_prefix(PKT_FLOW_END, shape=3, shape_len=200) + flow(),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
