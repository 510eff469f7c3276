#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Writes the seed corpus of fuzz_readfile.c into tests/fuzz/corpus_readfile/: small capture files
of every kind -r reads (pcapng in either byte order with pktrace's comments, pcap of each link
type), some cut short. The files are committed, so the fuzzer needs no Python."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_readfile")

SYN4 = bytes.fromhex("4500002c123440004006000" "00a0000010a00000204d20050000000010000000060"
                     "02ffff00000000020405b4")
UDP6 = (bytes([0x60, 0, 0, 0, 0, 108, 17, 64]) + bytes(15) + b"\x01" + bytes(15) + b"\x01" +
        struct.pack(">HHHH", 53, 9999, 108, 0))
COMMENT = (b"pid: 4242\ntid: 4243\nppid: 1\nuid: 1000\ncomm: cu\\x0arl\\\\\ncontainer_id: \n"
           b"hostname: web-1\ncgroup_id: 77\nsk_proto: 6\nevents: net_packet_tcp")


def pad(b):
    return b + bytes(-len(b) % 4)


def opt(e, code, val):
    return struct.pack(e + "HH", code, len(val)) + pad(val)


def block(e, btype, body):
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def pcapng(e="<"):
    d = block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1) +
              opt(e, 4, b"pktrace 0.1.0") + opt(e, 0, b""))
    for name, desc in ((b"lo", b""), (b"eth0", b"netns 4026532999")):
        o = opt(e, 2, name) + (opt(e, 3, desc) if desc else b"") + opt(e, 9, b"\x09")
        d += block(e, 1, struct.pack(e + "HHI", 101, 0, 0) + o + opt(e, 0, b""))
    for iface, pkt, flags in ((0, SYN4, 2), (1, UDP6, 1), (0, SYN4, 1)):
        ts = 1764145200123456789
        body = struct.pack(e + "IIIII", iface, ts >> 32, ts & 0xffffffff, len(pkt), len(pkt) + 9)
        body += pad(pkt) + opt(e, 2, struct.pack(e + "I", flags)) + opt(e, 1, COMMENT)
        d += block(e, 6, body + opt(e, 0, b""))
    d += block(e, 3, struct.pack(e + "I", len(SYN4)) + pad(SYN4))  # a simple packet block
    return d


def pcap(dlt, link, pkt=SYN4):
    frame = link + pkt
    return (struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, dlt) +
            struct.pack("<IIII", 1700000000, 5, len(frame), len(frame)) + frame)


def main():
    os.makedirs(OUT, exist_ok=True)
    eth = bytes(12) + b"\x08\x00"
    files = {
        "pcapng_le": pcapng("<"),
        "pcapng_be": pcapng(">"),
        "pcapng_cut": pcapng("<")[:200],
        "pcap_raw": pcap(101, b""),
        "pcap_eth": pcap(1, eth),
        "pcap_eth_vlan": pcap(1, bytes(12) + b"\x81\x00\x00\x01\x86\xdd", UDP6),
        "pcap_sll": pcap(113, b"\x00\x04" + bytes(12) + b"\x08\x00"),
        "pcap_sll2": pcap(276, b"\x08\x00" + bytes(8) + b"\x04" + bytes(9)),
        "pcap_null": pcap(0, b"\x02\x00\x00\x00"),
        "pcap_loop": pcap(108, b"\x00\x00\x00\x18", UDP6),
        "pcap_arp": pcap(1, bytes(12) + b"\x08\x06"),
    }
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
