#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Writes the seed corpus of fuzz_decode.c into tests/fuzz/corpus/: valid TCP packets behind the
71-byte event prefix that fuzz_decode.c's header comment describes. Run it again after changing
that layout; the files are committed, so the fuzzer needs no Python."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")

INGRESS, EGRESS = 0, 1


def prefix(direction=EGRESS, select=0, cap=128, packet_len=60, ts=1764145200123456789,
           pid=4242, tid=4242, ppid=4100, uid=1000, cgroup=1234, comm=b"curl", ifname=b"lo"):
    p = struct.pack("<BBBIQIIIIQ", direction, select, cap, packet_len, ts, pid, tid, ppid, uid,
                    cgroup)
    p += comm.ljust(16, b"\0")[:16] + ifname.ljust(16, b"\0")[:16]
    assert len(p) == 71
    return p


def tcp(sport=41234, dport=8080, seq=3512345678, ack=0, flags=0x02, window=65495, opts=b""):
    assert len(opts) % 4 == 0
    doff = 5 + len(opts) // 4
    ns = flags >> 8 & 1
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4 | ns, flags & 0xff,
                       window, 0xfe30, 0) + opts


def ipv4(payload, opts=b"", frag=0x4000):
    assert len(opts) % 4 == 0
    ihl = 5 + len(opts) // 4
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), 1, frag, 64, 6, 0,
                       bytes([127, 0, 0, 1]), bytes([10, 1, 2, 3])) + opts + payload


def ipv6(payload, next_hdr=6, src=bytes(15) + b"\x01", dst=bytes(15) + b"\x01"):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), next_hdr, 64, src, dst) + payload


def ext(next_hdr, body):
    """Hop-by-hop, routing or destination options header: length in 8-byte units past the first."""
    body = body.ljust((len(body) + 2 + 7) // 8 * 8 - 2, b"\0")
    return bytes([next_hdr, (len(body) + 2) // 8 - 1]) + body


SYN_OPTS = bytes([2, 4, 0xff, 0xd7, 4, 2, 8, 10]) + bytes(8) + bytes([1, 3, 3, 7])  # MSS SACK TS WS

SEEDS = {
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
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
