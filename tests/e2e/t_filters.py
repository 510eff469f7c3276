"""Filter expressions (pktrace EXPR) against tcpdump's own verdicts on the same traffic.

One traffic run per test (TCP over IPv4 and IPv6 with a request, a reply, a large segment and a
close that leaves a timewait socket; UDP over both; ICMP and ICMPv6 echoes from raw sockets),
traced at once by tcpdump on lo (no filter), by one pktrace without a filter (the baseline) and
by one pktrace per expression, all scoped to the traffic's process name. For each expression
the packets tcpdump keeps (tcpdump -r ALL -w SUB EXPR) select the baseline's events: those are
exactly the events the filtered pktrace must write, no more, no fewer, in both directions of
loopback (egress at the sender's socket, ingress at the receiver's), the packets only the device
hooks see (timewait) included: those are matched by libpcap in user space.

Two differences from tcpdump on lo are the point of the table's second column: pktrace's
packets start at the IP header, so `len`, `greater` and `less` count 14 bytes fewer than on an
Ethernet capture; and inbound/outbound, which a pcap file cannot answer, are compared with the
same expression without them, on one direction's events only.
"""
import collections
import os
import signal
import socket
import struct
import subprocess

from e2elib import (FLAG_BITS, FLAGS, PKTRACE, PYTHON, Pktrace, Proc, capture, log, rand_name, rand_port, run,
                    test)

FILTER_PEER = r"""
import ctypes, os, socket, struct, sys, time

name, p4, p6, pu, ident = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), \
    int(sys.argv[5])
ctypes.CDLL(None, use_errno=True).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME


def recv_n(s, n):
    got = b""
    while len(got) < n:
        b = s.recv(n - len(got))
        if not b:
            break
        got += b
    return got


def tcp(fam, addr, port):
    s = socket.socket(fam)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(4)
    c = socket.socket(fam)
    c.settimeout(10)
    c.connect((addr, port))
    a, _ = s.accept()
    req = b"GET / HTTP/1.0\r\n\r\n"
    c.sendall(req)
    recv_n(a, len(req))
    a.sendall(b"H" * 300)
    recv_n(c, 300)
    c.sendall(b"B" * 1200)
    recv_n(a, 1200)
    c.close()          # the client closes first: its side ends in a timewait socket
    time.sleep(0.2)
    a.close()          # whose FIN reaches the timewait socket, which sends the last ACK
    s.close()


def udp(fam, addr):
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.bind((addr, pu))
    for i, n in enumerate((20, 65, 150, 700)):
        u.sendto((b"A" if i % 2 == 0 else b"Z") * n, (addr, pu))
        u.recv(2000)
    u.close()


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff


def ping(fam, proto, addr, typ):
    r = socket.socket(fam, socket.SOCK_RAW, proto)
    r.settimeout(2)
    for seq, n in ((1, 32), (2, 300)):
        body = struct.pack("!HH", ident, seq) + bytes(range(n % 256))[:n] + bytes(max(0, n - 256))
        pkt = struct.pack("!BBH", typ, 0, 0) + body
        if fam == socket.AF_INET:  # the kernel fills in ICMPv6's checksum itself
            pkt = struct.pack("!BBH", typ, 0, csum(pkt)) + body
        r.sendto(pkt, (addr, 0))
        time.sleep(0.05)
    r.close()


tcp(socket.AF_INET, "127.0.0.1", p4)
tcp(socket.AF_INET6, "::1", p6)
udp(socket.AF_INET, "127.0.0.1")
udp(socket.AF_INET6, "::1")
ping(socket.AF_INET, socket.IPPROTO_ICMP, "127.0.0.1", 8)
ping(socket.AF_INET6, socket.IPPROTO_ICMPV6, "::1", 128)
time.sleep(0.5)
print("DONE", flush=True)
"""

EVENTS = "net_packet_tcp,net_packet_udp,net_packet_icmp,net_packet_icmpv6"
BOTH = ("egress", "ingress")


def l3_key(b):
    """What tells one packet from another, from its IP header on; None for other packets."""
    if len(b) < 1:
        return None
    if b[0] >> 4 == 4 and len(b) >= 20:
        ihl, proto = (b[0] & 15) * 4, b[9]
        src, dst = socket.inet_ntop(socket.AF_INET, b[12:16]), socket.inet_ntop(socket.AF_INET,
                                                                                 b[16:20])
        plen, l4 = struct.unpack("!H", b[2:4])[0], b[ihl:]
    elif b[0] >> 4 == 6 and len(b) >= 40:
        proto = b[6]
        src, dst = socket.inet_ntop(socket.AF_INET6, b[8:24]), socket.inet_ntop(socket.AF_INET6,
                                                                                  b[24:40])
        plen, l4 = 40 + struct.unpack("!H", b[4:6])[0], b[40:]
    else:
        return None
    if proto == 6 and len(l4) >= 12:
        sport, dport, seq, ack = struct.unpack("!HHII", l4[:12])
        # an ACK and the FIN after it share seq and ack: the flags tell them apart
        flags = l4[13] | ((l4[12] & 1) << 8) if len(l4) >= 14 else None
        return (src, dst, 6, plen, sport, dport, seq, ack, flags)
    if proto == 17 and len(l4) >= 8:
        sport, dport, _, ck = struct.unpack("!HHHH", l4[:8])
        return (src, dst, 17, plen, sport, dport, ck)
    if proto == 1 and len(l4) >= 8:
        _, _, ck, ident, seq = struct.unpack("!BBHHH", l4[:8])
        return (src, dst, 1, plen, ck, ident, seq)
    if proto == 58 and len(l4) >= 4:
        return (src, dst, 58, plen, struct.unpack("!H", l4[2:4])[0])
    return None


def event_key(ev):
    """l3_key of the packet a pktrace JSON event describes."""
    args = {a["name"]: a["value"] for a in ev["args"]}
    m = args["metadata"]
    base = (m["src_ip"], m["dst_ip"], m["protocol"], m["packet_len"])
    if "proto_tcp" in args:
        t = args["proto_tcp"]
        flags = sum(FLAG_BITS[f] for f in FLAGS if t[f])
        return base + (m["src_port"], m["dst_port"], t["seq"], t["ack"], flags)
    if "proto_udp" in args:
        return base + (m["src_port"], m["dst_port"], args["proto_udp"]["checksum"])
    if "proto_icmp" in args:
        i = args["proto_icmp"]
        return base + (i["checksum"], i["id"], i["seq"])
    if "proto_icmpv6" in args:
        return base + (args["proto_icmpv6"]["checksum"],)
    raise AssertionError("event without a transport arg: %r" % ev)


def read_pcap_l3(path):
    """The IP packets of a pcap (Ethernet, as tcpdump writes lo's), as bytes from L3 on."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    assert linktype == 1, "%s: link type %d, want Ethernet" % (path, linktype)
    out, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) > 14 and frame[12:14] in (b"\x08\x00", b"\x86\xdd"):
            out.append(frame[14:])
    return out


def tcpdump_keys(w, all_pcap, expr, tag):
    """The keys of the packets tcpdump's own filter keeps, reading the full capture."""
    sub = os.path.join(w, "tcpdump-%s.pcap" % tag)
    run(["tcpdump", "-r", all_pcap, "-w", sub, expr], timeout=30)
    return collections.Counter(k for k in map(l3_key, read_pcap_l3(sub)) if k)


def pktrace_stop(pt):
    """SIGINT, exit 0, events parsed; the summary's 'filter rejected' count."""
    if pt.proc.alive():
        pt.proc.signal(signal.SIGINT)
    rc = pt.proc.p.wait(timeout=30)
    err = pt.stderr()
    assert rc == 0, "%s exited %s: %s" % (" ".join(pt.cmd), rc, err)
    import json
    events = []
    with open(pt.events_path) as f:
        for line in f:
            events.append(json.loads(line))
    rejected = None
    for line in err.splitlines():
        if "packets the filter rejected:" in line:
            rejected = int(line.split("rejected:")[1].split()[0])
    return events, rejected, err


def run_table(w, table):
    """table: (pktrace expression, tcpdump expression or None for the same, directions)."""
    name = rand_name("flt")
    p4, p6, pu = rand_port(), rand_port(), rand_port()
    ident = os.getpid() & 0xffff
    peer_path = os.path.join(w, "filter_peer.py")
    with open(peer_path, "w") as f:
        f.write(FILTER_PEER)
    fmt = {"p4": p4, "p6": p6, "pu": pu}
    table = [(e.format(**fmt), (t or e).format(**fmt), d) for e, t, d in table]
    common = ["-B", "256", "-s", "comm=" + name, "-e", EVENTS]
    all_pcap = os.path.join(w, "all.pcap")
    instances = []
    try:
        with capture("lo", "", all_pcap) as cap:
            base = Pktrace(common, w, tag="baseline")
            instances = [Pktrace(common + [e], w, tag="filter%02d" % i)
                         for i, (e, _, _) in enumerate(table)]
            base.wait_ready()
            for pt in instances:
                pt.wait_ready()
            gen = Proc([PYTHON, peer_path, name, str(p4), str(p6), str(pu), str(ident)],
                       name="filter_peer")
            gen.expect(r"DONE", timeout=30)
            gen.wait(10)
            cap.stop()
            base_events, _, base_err = pktrace_stop(base)
            results = [pktrace_stop(pt) for pt in instances]
    finally:
        for pt in instances:
            pt.close()
    # The baseline: every packet of the traffic in tcpdump has an event, and every event a
    # packet; the packets only the device hooks see are among them.
    wire = collections.Counter(k for k in map(l3_key, read_pcap_l3(all_pcap)) if k)
    base_list = [(event_key(e), e["args"][0]["value"]["direction"]) for e in base_events]
    base_keys = {k for k, _ in base_list}
    invented = [k for k in base_keys if k not in wire]
    assert not invented, "baseline events of no captured packet: %r" % invented[:5]
    ours = [k for k in wire if (k[2] in (6, 17) and (k[4] in (p4, p6, pu) or
                                                      k[5] in (p4, p6, pu))) or
            (k[2] == 1 and k[5] == ident)]
    unseen = [k for k in ours if k not in base_keys]
    assert not unseen, "traffic packets without a baseline event: %r" % unseen[:5]
    dev = [l for l in base_err.splitlines() if "only at the device" in l]
    log("baseline: %d events of %d traffic packets; %s" % (
        len(base_list), len(ours), dev[0].strip() if dev else "no device-only packet"))
    assert dev, "the traffic made no packet that only the device hooks see"
    problems, nonempty = [], 0
    for i, ((expr, texpr, dirs), (events, rejected, err)) in enumerate(zip(table, results)):
        keep = tcpdump_keys(w, all_pcap, texpr, "%02d" % i)
        want = collections.Counter((k, d) for k, d in base_list if k in keep and d in dirs)
        got = collections.Counter((event_key(e), e["args"][0]["value"]["direction"])
                                  for e in events)
        missing, extra = want - got, got - want
        nonempty += bool(want)
        log("%-58s tcpdump %3d packets, events: want %3d, got %3d, rejected in the kernel %s" % (
            "'" + expr + "'", sum(keep.values()), sum(want.values()), sum(got.values()),
            rejected))
        if rejected is None:
            problems.append("'%s': no 'packets the filter rejected' in the summary: %s" % (
                expr, err[-300:]))
        if missing or extra:
            problems.append("'%s' (tcpdump '%s'): %d missing %r, %d invented %r" % (
                expr, texpr, sum(missing.values()), list(missing)[:3], sum(extra.values()),
                list(extra)[:3]))
    assert not problems, "\n      ".join(problems)
    return nonempty


# The 14 bytes of lo's Ethernet header that pktrace's packets (from L3) do not have.
ETH = 14

TABLE_PROTOCOLS = [
    ("tcp port {p4}", None, BOTH),
    ("tcp port {p6}", None, BOTH),
    ("port {p4} or port {p6}", None, BOTH),
    ("src port {p4}", None, BOTH),
    ("dst port {p6}", None, BOTH),
    ("portrange {p4}-{p4}", None, BOTH),
    ("udp port {pu}", None, BOTH),
    ("udp and dst port {pu}", None, BOTH),
    ("udp", None, BOTH),
    ("tcp", None, BOTH),
    ("icmp", None, BOTH),
    ("icmp6", None, BOTH),
    ("ip", None, BOTH),
    ("ip6", None, BOTH),
    ("not ip6", None, BOTH),
    ("host 127.0.0.1", None, BOTH),
    ("host ::1", None, BOTH),
    ("src host 127.0.0.1 and tcp", None, BOTH),
    ("net 127.0.0.0/8", None, BOTH),
    ("dst net ::1/128 and not tcp", None, BOTH),
    ("ip proto 17", None, BOTH),
    ("ip6 and (udp or tcp port {p6})", None, BOTH),
    ("(udp or icmp) and ip", None, BOTH),
    ("tcp port 1", None, BOTH),
]

TABLE_FIELDS = [
    ("tcp[tcpflags] & tcp-syn != 0", None, BOTH),
    ("tcp[tcpflags] & (tcp-syn|tcp-ack) = (tcp-syn|tcp-ack)", None, BOTH),
    ("tcp[tcpflags] & tcp-fin != 0", None, BOTH),
    ("tcp[tcpflags] & tcp-push != 0 and tcp port {p4}", None, BOTH),
    ("tcp[13] = 0x10", None, BOTH),
    ("tcp port {p4} and not tcp[tcpflags] & tcp-ack != 0", None, BOTH),
    ("len > 100", "len > %d" % (100 + ETH), BOTH),
    ("len <= 80", "len <= %d" % (80 + ETH), BOTH),
    ("greater 500", "greater %d" % (500 + ETH), BOTH),
    ("less 70", "less %d" % (70 + ETH), BOTH),
    ("ip6 and len > 200", "ip6 and len > %d" % (200 + ETH), BOTH),
    ("tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420", None, BOTH),
    ("tcp[32] = 0x47", None, BOTH),
    ("tcp[20] = 0x47", None, BOTH),
    ("udp[8] = 0x41", None, BOTH),
    ("udp[4:2] > 100", None, BOTH),
    ("ip[9] = 17", None, BOTH),
    ("ip6[6] = 58", None, BOTH),
    ("ip[6:2] & 0x4000 != 0", None, BOTH),
    ("icmp[icmptype] = icmp-echo", None, BOTH),
    ("icmp[icmptype] = icmp-echoreply", None, BOTH),
    ("icmp6[icmp6type] = icmp6-echo", None, BOTH),
    ("inbound and tcp port {p4}", "tcp port {p4}", ("ingress",)),
    ("outbound and udp", "udp", ("egress",)),
    ("not inbound and icmp6", "icmp6", ("egress",)),
    ("inbound or outbound", "ip or ip6", BOTH),
]


@test
def filters_protocols(w):
    """Ports, hosts, nets, protocols, and/or/not over IPv4 and IPv6."""
    assert run_table(w, TABLE_PROTOCOLS) >= len(TABLE_PROTOCOLS) - 1


@test
def filters_fields(w):
    """TCP flags, len/greater/less, payload and header bytes, ICMP types, inbound/outbound."""
    assert run_table(w, TABLE_FIELDS) >= len(TABLE_FIELDS) - 2


@test
def filters_errors(w):
    """Expressions that need the link layer, or are not tcpdump's: one line, exit 2, nothing
    loaded; --dump-filter prints both programs without privileges."""
    for args, word in ((["arp"], "link-layer"), (["ether host 1:2:3:4:5:6"], "link layer"),
                       (["vlan"], "link-layer"), (["ether proto \\ip"], "'ether'"),
                       (["tcp", "port"], "syntax error"),
                       (["inbound and outbound"], "rejects all"),
                       (["tcp and udp"], "contradicts itself"),
                       (["-Q", "in", "outbound"], "no packet can match"),
                       (["-Q", "out", "inbound and tcp"], "no packet can match"),
                       (["ip6 protochain 6"], "backward"),
                       (["-e", "flows", "tcp"], "no packet event")):
        r = subprocess.run([PKTRACE] + args, capture_output=True, text=True, timeout=20)
        lines = r.stderr.splitlines()
        assert r.returncode == 2 and len(lines) == 1 and word in lines[0] and \
            lines[0].startswith("pktrace: ") and r.stdout == "", (
                "%r: exit %d, stderr %r (want one line with %r)" % (
                    args, r.returncode, r.stderr, word))
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        PKTRACE, "--dump-filter", "tcp port 80 and inbound"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "; ingress (inbound): classic BPF" in r.stdout and \
        "; egress (outbound): eBPF" in r.stdout and "ldh      [x + 2]" in r.stdout, r.stdout


BIG_SENDER = r"""
import ctypes, socket, sys, threading
port, size, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctypes.CDLL(None, use_errno=True).prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("::1", port)); srv.listen(1)
got = []
def client():
    c = socket.create_connection(("::1", port))
    n = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        n += len(b)
    got.append(n); c.close()
t = threading.Thread(target=client); t.start()
s, _ = srv.accept()
for _ in range(3):
    s.sendall(b"b" * size)  # each one buffer: over 64 KiB, a BIG TCP jumbo at the hooks
s.close(); t.join()
print("DONE", got[0], flush=True)
"""


@test
def filters_ipv6_big_sends(w):
    """IPv6 sends over 64 KiB on lo: at the socket and device hooks such a buffer is one packet
    with a Hop-by-Hop jumbo header (BIG TCP), which its segments on the wire do not carry. A
    filter must see it as tcpdump sees the segments: `tcp port P` keeps every packet of the
    connection, exactly as a run without a filter shows them, and rejects none."""
    port = rand_port()
    name = rand_name("big")
    path = os.path.join(w, "big_sender.py")
    with open(path, "w") as f:
        f.write(BIG_SENDER)
    common = ["-s", "comm=" + name]
    base = Pktrace(common, w, tag="nofilter")
    flt = Pktrace(common + ["tcp port %d" % port], w, tag="filter")
    try:
        base.wait_ready()
        flt.wait_ready()
        gen = Proc([PYTHON, path, str(port), "300000", name], name="big_sender")
        m = gen.expect(r"DONE (\d+)", timeout=30)
        assert int(m.group(1)) == 900000, "scenario broken: the client got %s bytes" % m.group(1)
        gen.wait(10)
        base_events, _, _ = pktrace_stop(base)
        flt_events, rejected, flt_err = pktrace_stop(flt)
    finally:
        base.close()
        flt.close()

    def key(ev):
        a = {x["name"]: x["value"] for x in ev["args"]}
        m, t = a["metadata"], a["proto_tcp"]
        return (m["direction"], m["src_port"], m["dst_port"], t["seq"], t["ack"],
                m["packet_len"])

    want = collections.Counter(key(e) for e in base_events if e["eventName"] == "net_packet_tcp")
    got = collections.Counter(key(e) for e in flt_events if e["eventName"] == "net_packet_tcp")
    big = [k for k in want if k[5] > 65535]
    log("%d events without a filter (%d over 64 KiB), %d with 'tcp port %d', %s rejected" % (
        sum(want.values()), len(big), sum(got.values()), port, rejected))
    assert big, "scenario broken: no IPv6 packet over 64 KiB at the hooks (BIG TCP off?)"
    assert got == want, "with 'tcp port %d': %d events missing, %d extra; e.g. missing %s" % (
        port, sum((want - got).values()), sum((got - want).values()),
        sorted(want - got)[:4])
    assert not rejected, "the filter rejected %s packets: %s" % (rejected, flt_err[-300:])
