"""UDP, ICMP, ICMPv6, IPv4 and IPv6 packet events against tshark.

Every event is compared field by field with tshark's dissection of a tcpdump capture of the
same traffic (never with pktrace's own decoder): metadata (addresses, ports, protocol, length,
iface, direction), proto_udp (udp.*), proto_icmp (icmp.*), proto_icmpv6 (icmpv6.*), proto_ipv4
(ip.*) and proto_ipv6 (ipv6.*), the owner process and the timestamp. Each packet on lo is seen
by the sending socket (egress) and by the receiving one (ingress); a packet that reaches no
socket (a datagram to a closed port, an echo request answered by the kernel) has no receiving
side.
Where the socket's view is not the wire's (README, "What the socket hooks show": the segments
a UDP GSO buffer reaches its socket as, a fragmented datagram as one packet each side), the
expected events are derived from tshark's packet by arithmetic stated in the test, never taken
from pktrace.

Conventions taken from the events' specification (issue 6, Tracee's types), stated here
because tshark does not name them:
- proto_ipv4.IHL is the header length in 32-bit words (tshark's ip.hdr_len / 4), flags the
  three flag bits as a number (tshark's ip.flags), protocol and proto_ipv6.nextHeader a name
  ("TCP", "UDP", "ICMPv4", "ICMPv6", "IPv6Destination": gopacket's IPProtocol names, as
  Tracee prints them) or the decimal number;
- metadata.packet_len is the IP packet's length (ip.len, or ipv6.plen + 40), metadata.protocol
  the transport's number, metadata.src_port/dst_port 0 for ICMP and ICMPv6;
- typeCode is gopacket's string for (type, code): "EchoRequest", "DestinationUnreachable(Port)",
  "T(C)" for an unknown type;
- an ICMP error about a UDP socket is attributed to that socket's owner on both sides (the
  kernel's egress and the ingress back), README / issue 6.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

from e2elib import CSUM_SRC
from e2elib import (EVENT_KEYS, HERE, META_FIELDS, PROTOS, PYTHON, TALLY, Pktrace, Proc, Skip,
                    capture, log, netns, own_cgroup_ino, pktrace, rand_name, rand_port, rand_tag,
                    run, test, which)

# ---------------------------------------------------------------------------------------------
# Traffic: a peer script of this module (written into the work directory), using peers.py's
# helpers. Every mode renames itself before it makes a socket and says "PID n" first.

PACKET_PEER = r"""
import argparse, socket, struct, sys, time
sys.path.insert(0, %(here)r)
from peers import finish, recv_exact, say, set_name

IPV6_FLOWLABEL_MGR, IPV6_FLOWINFO_SEND = 32, 33
IPV6_FL_A_GET, IPV6_FL_F_CREATE, IPV6_FL_S_EXCL = 0, 1, 1
IP_RECVERR, IPV6_RECVERR = 11, 25

p = argparse.ArgumentParser()
p.add_argument("mode")
p.add_argument("--name", required=True)
p.add_argument("--addr", default="127.0.0.1")
p.add_argument("--port", type=int, default=0)
p.add_argument("--port2", type=int, default=0)
p.add_argument("--peers", default="")
p.add_argument("--target", default="")
p.add_argument("--count", type=int, default=3)
p.add_argument("--size", type=int, default=64)
p.add_argument("--tos", type=lambda s: int(s, 0), default=0)
p.add_argument("--flowlabel", type=lambda s: int(s, 0), default=0)
p.add_argument("--ip-options", default="", help="hex: IPv4 options / IPv6 dest. options")
p.add_argument("--ttl", type=int, default=0, help="bindsend: IP_TTL / IPV6_UNICAST_HOPS")
a = p.parse_args()
set_name(a.name)
say("PID", __import__("os").getpid())
fam = socket.AF_INET6 if ":" in a.addr else socket.AF_INET


def mark(s, dst=None):
    # TOS (IPv4) or traffic class (IPv6); an explicit flow label (IPv6) for dst.
    if a.tos:
        if fam == socket.AF_INET:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, a.tos)
        else:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, a.tos)
    if a.flowlabel and fam == socket.AF_INET6:
        req = socket.inet_pton(socket.AF_INET6, dst or a.addr) + struct.pack(
            ">I", a.flowlabel) + struct.pack("=BBHHHI", IPV6_FL_A_GET, IPV6_FL_S_EXCL,
                                            IPV6_FL_F_CREATE, 0, 0, 0)
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_FLOWLABEL_MGR, req)
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_FLOWINFO_SEND, 1)
    if a.ip_options:
        opts = bytes.fromhex(a.ip_options)
        if fam == socket.AF_INET:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, opts)
        else:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, opts)


def dest(host, port):
    if fam == socket.AF_INET6:
        return (host, port, a.flowlabel, 0)
    return (host, port)


if a.mode == "udpecho":
    # Echo every datagram back to its sender (b"R" + it) until b"quit".
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(20)
    mark(s)
    s.bind((a.addr, a.port))
    say("BOUND", s.getsockname()[1])
    n = 0
    while True:
        data, frm = s.recvfrom(65536)
        if data == b"quit":
            break
        s.sendto(b"R" + data, frm)
        n += 1
    say("ECHOED", n)
    say("DONE")
elif a.mode == "udpclient":
    # One unconnected socket, --count round trips with each of --peers (host:port,...).
    peers = [x.rsplit(":", 1) for x in a.peers.split(",")]
    peers = [(h.strip("[]"), int(pt)) for h, pt in peers]
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(5)
    mark(s, peers[0][0])
    s.bind((a.addr, 0))
    say("PORT", s.getsockname()[1])
    for i in range(a.count):
        for h, pt in peers:
            msg = (b"udp%%d-%%d-" %% (i, pt)).ljust(a.size + i, b"u")
            s.sendto(msg, dest(h, pt))
            data, frm = s.recvfrom(65536)
            if data != b"R" + msg or frm[1] != pt:
                raise SystemExit("bad reply %%r from %%r" %% (data[:20], frm))
    for h, pt in peers:
        s.sendto(b"quit", dest(h, pt))
    say("DONE")
elif a.mode == "unreach":
    # A connected socket sends to closed --port (ECONNREFUSED on the next recv), an unconnected
    # one to closed --port2 (the error read from its error queue).
    c = socket.socket(fam, socket.SOCK_DGRAM)
    c.settimeout(5)
    c.connect((a.addr, a.port))
    say("CONNECTED", c.getsockname()[1])
    c.send(b"to-a-closed-port")
    try:
        c.recv(100)
        raise SystemExit("connected socket: no error")
    except ConnectionRefusedError:
        say("REFUSED")
    u = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET:
        u.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
    else:
        u.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
    u.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
    say("UNCONNECTED", u.getsockname()[1])
    u.sendto(b"to-another-closed-port", (a.addr, a.port2))
    deadline = time.monotonic() + 5
    while True:
        try:
            u.recvmsg(100, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise SystemExit("unconnected socket: no error queued")
            time.sleep(0.01)
    say("ERRQUEUE")
    say("DONE")
elif a.mode == "bindsend":
    # Bind --addr:--port; on each line on stdin send one datagram to closed --target:--port2
    # and wait for the error in the error queue; exit at EOF.
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IP if fam == socket.AF_INET else socket.IPPROTO_IPV6,
                 IP_RECVERR if fam == socket.AF_INET else IPV6_RECVERR, 1)
    if a.ttl:
        if fam == socket.AF_INET:
            u.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, a.ttl)
        else:
            u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, a.ttl)
    u.bind((a.addr, a.port))
    say("BOUND", u.getsockname()[1])
    while sys.stdin.readline():
        u.sendto(b"from-a-shared-port", (a.target, a.port2))
        deadline = time.monotonic() + 5
        while True:
            try:
                u.recvmsg(100, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SystemExit("no error queued")
                time.sleep(0.01)
        say("ERRQUEUE")
    say("DONE")
elif a.mode == "gsosend":
    # One sendto() of --count * --size + --size // 2 bytes with UDP_SEGMENT --size: the kernel
    # sends it as one GSO buffer of datagrams of --size bytes (the last one shorter); each
    # echoed back by udpecho; then b"quit".
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.setsockopt(socket.IPPROTO_UDP, 103, a.size)  # UDP_SEGMENT
    s.bind((a.addr, 0))
    say("PORT", s.getsockname()[1])
    s.sendto(b"s" * (a.count * a.size + a.size // 2), (a.target, a.port))
    for i in range(a.count + 1):
        s.recvfrom(65536)
    s.setsockopt(socket.IPPROTO_UDP, 103, 0)
    s.sendto(b"quit", (a.target, a.port))
    say("DONE")
elif a.mode == "rawsend" or a.mode == "rawrecv":
    # A raw IPv4 socket of protocol --port bound to --addr: send --count datagrams to
    # --target, or receive --count.
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, a.port)
    r.settimeout(10)
    r.bind((a.addr, 0))
    say("BOUND")
    for i in range(a.count):
        if a.mode == "rawsend":
            r.sendto((b"raw%%d-" %% i).ljust(a.size + i, b"r"), (a.target, 0))
        else:
            r.recv(65536)
    say("DONE")
elif a.mode == "tcpserver":
    l = socket.socket(fam, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.settimeout(20)
    mark(l)
    l.bind((a.addr, a.port))
    l.listen(4)
    say("LISTENING")
    c, _ = l.accept()
    c.settimeout(20)
    for i in range(a.count):
        c.sendall(recv_exact(c, a.size).upper())
    finish(c, "graceful")
    l.close()
    say("DONE")
elif a.mode == "tcpclient":
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.settimeout(20)
    mark(c)
    c.connect(dest(a.addr, a.port))
    say("CONNECTED", c.getsockname()[1])
    for i in range(a.count):
        msg = (b"tcp%%d-" %% i).ljust(a.size, b"t")
        c.sendall(msg)
        if recv_exact(c, a.size) != msg.upper():
            raise SystemExit("bad response")
    finish(c, "graceful")
    say("DONE")
else:
    raise SystemExit("unknown mode " + a.mode)
"""


def packet_peer(w, mode, name, ns=None, stdin=None, **opts):
    path = os.path.join(w, "packet_peer.py")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(PACKET_PEER % {"here": HERE})
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [PYTHON, path, mode, "--name", name]
    for k, v in opts.items():
        if v is not None:
            cmd += ["--" + k.replace("_", "-"), str(v)]
    proc = Proc(cmd, stdin=stdin or subprocess.DEVNULL, name="%s(%s)" % (mode, name))
    proc.peer_pid = int(proc.expect(r"^PID (\d+)").group(1))
    return proc


def go(proc):
    proc.p.stdin.write(b"go\n")
    proc.p.stdin.flush()


def ok(proc, timeout=20):
    rc = proc.wait(timeout)
    assert rc == 0, "%s exited %s: %s" % (proc.name, rc, proc.err.text())


def who(pid, name, uid=0, tid=None, ppid=None):
    """What the events of a process's sockets must say about it."""
    return {"pid": pid, "name": name, "tid": tid or pid,
            "ppid": os.getpid() if ppid is None else ppid, "uid": uid, "container": "",
            "host": socket.gethostname(), "cgroup": own_cgroup_ino(os.getpid())}


def free_port():
    """A port free for TCP (rand_port) and for UDP on 127.0.0.1 and ::1: a server can bind it,
    and nothing answers a datagram sent to it (a closed port). Below the kernel's ephemeral
    range, so that it stays closed: a socket of the test that binds no port cannot be given it
    (that happened: a datagram to a "closed" port reached the test's own unconnected socket)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_lo = int(f.read().split()[0])
    for _ in range(50):
        port = rand_port(lo=10000, hi=max(10001, ephemeral_lo - 1))
        try:
            for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                with socket.socket(fam, socket.SOCK_DGRAM) as s:
                    s.bind((addr, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free UDP port found")


def scope(*names):
    return ["-s", "comm=" + ",".join(names)]


# ---------------------------------------------------------------------------------------------
# pktrace's output: every event of the packet family validated and flattened

# META_FIELDS and PROTOS (each event's protocol arg with its typed fields): e2elib's.
# net_packet_tcp is checked here by its metadata and these fields (the rest: run.py's tests)
TCP_KEPT = ("srcPort", "dstPort", "seq", "ack", "checksum")
PACKET_EVENTS = set(PROTOS) | {"net_packet_tcp"}
FLOW_EVENTS = {"net_flow_tcp_begin", "net_flow_tcp_end"}


def parse_output(path):
    """pktrace's JSON lines: (flat packet events, other events (flows) as dicts, problems)."""
    import json
    events, others, problems = [], [], []
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        problems.append("output does not end with a newline")
    for n, raw in enumerate(data.splitlines(), 1):
        where = "line %d" % n
        try:
            ev = json.loads(raw)
        except ValueError as e:
            problems.append("%s: not JSON (%s): %r" % (where, e, raw[:120]))
            continue
        if not isinstance(ev, dict) or set(ev) != EVENT_KEYS:
            problems.append("%s: keys %s" % (where, sorted(ev) if isinstance(ev, dict) else ev))
            continue
        name = ev["eventName"]
        if name in FLOW_EVENTS:
            others.append(ev)
            continue
        if name not in PACKET_EVENTS:
            problems.append("%s: eventName %r" % (where, name))
            continue
        for k in ("timestamp", "processId", "threadId", "parentProcessId", "userId", "cgroupId"):
            if type(ev[k]) is not int:
                problems.append("%s: %s is %r" % (where, k, ev[k]))
        for k in ("processName", "hostName", "containerId"):
            if type(ev[k]) is not str:
                problems.append("%s: %s is %r" % (where, k, ev[k]))
        args = ev["args"]
        if not isinstance(args, list) or not all(isinstance(x, dict) for x in args):
            problems.append("%s: args %r" % (where, args))
            continue
        names = [x.get("name") for x in args]
        if name == "net_packet_tcp":
            want = ["metadata", "proto_tcp"] + (["tcp_options"] if len(names) == 3 else [])
        else:
            want = ["metadata", PROTOS[name][0]]
        if names != want:
            problems.append("%s: %s args %s, want %s" % (where, name, names, want))
            continue
        d = {k: v for k, v in ev.items() if k != "args"}
        d["event"], d["line"] = name, n
        meta = args[0]
        if meta.get("type") != "trace.PacketMetadata" or set(meta) != {"name", "type", "value"} \
                or not isinstance(meta["value"], dict) or \
                set(meta["value"]) - {"ipv6_ext"} != set(META_FIELDS):
            problems.append("%s: %s metadata %r" % (where, name, meta))
            continue
        for k in META_FIELDS:
            v = meta["value"][k]
            if type(v) is not (str if k in ("src_ip", "dst_ip", "iface", "direction") else int):
                problems.append("%s: %s metadata.%s is %r" % (where, name, k, v))
            d[k] = v
        proto = args[1]
        if name == "net_packet_tcp":
            if not isinstance(proto.get("value"), dict) or \
                    not all(k in proto["value"] for k in TCP_KEPT):
                problems.append("%s: proto_tcp %r" % (where, proto))
                continue
            for k in TCP_KEPT:
                d["p." + k] = proto["value"][k]
            events.append(d)
            continue
        arg, typ, fields = PROTOS[name]
        if proto.get("type") != typ or set(proto) != {"name", "type", "value"} or \
                not isinstance(proto["value"], dict) or \
                list(proto["value"]) != [f for f, _ in fields]:
            problems.append("%s: %s %s is %r, want type %s with fields %s" % (
                where, name, arg, proto, typ, [f for f, _ in fields]))
            continue
        for f, t in fields:
            v = proto["value"][f]
            if type(v) is not t:
                problems.append("%s: %s %s.%s is %r, want %s" % (where, name, arg, f, v,
                                                                  t.__name__))
            d["p." + f] = v
        events.append(d)
    return events, others, problems


def stop(pt, timeout=15):
    """SIGINT pktrace, check it exits 0 and its summary counts what it wrote; return (packet
    events, flow events)."""
    time.sleep(0.4)
    if pt.proc.alive():
        pt.proc.signal(signal.SIGINT)
    rc = pt.proc.wait(timeout)
    return finish_output(pt, rc)


def finish_output(pt, rc, want_rc=0):
    err = pt.stderr()
    assert rc == want_rc, "pktrace exited %s (want %s): %s" % (rc, want_rc, err[-800:])
    events, others, problems = parse_output(pt.events_path)
    assert not problems, "malformed pktrace output (%d problems):\n      %s" % (
        len(problems), "\n      ".join(problems[:10]))
    m = [l for l in err.splitlines() if "events written" in l]
    assert m and m[-1].startswith("pktrace: %d events written" % (len(events) + len(others))), (
        "summary does not count the %d events written: %s" % (len(events) + len(others),
                                                             err[-600:]))
    log("pktrace %s: %d packet events (%s), %d others; %s" % (
        " ".join(pt.cmd[3:]), len(events), count_by(events, "event"), len(others), m[-1]))
    return events, others


def count_by(items, key):
    c = {}
    for d in items:
        c[d[key]] = c.get(d[key], 0) + 1
    return ", ".join("%s %d" % kv for kv in sorted(c.items()))


# ---------------------------------------------------------------------------------------------
# tshark's view of the capture

TSHARK = ["frame.number", "frame.time_epoch", "frame.protocols",
          "ip.version", "ip.hdr_len", "ip.dsfield", "ip.len", "ip.id", "ip.flags",
          "ip.frag_offset", "ip.ttl", "ip.proto", "ip.checksum", "ip.src", "ip.dst",
          "ipv6.version", "ipv6.tclass", "ipv6.flow", "ipv6.plen", "ipv6.nxt", "ipv6.hlim",
          "ipv6.src", "ipv6.dst",
          "udp.srcport", "udp.dstport", "udp.length", "udp.checksum",
          "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.checksum",
          "icmp.type", "icmp.code", "icmp.checksum", "icmp.ident", "icmp.seq",
          "icmpv6.type", "icmpv6.code", "icmpv6.checksum"]
TRANSPORTS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
# gopacket's names (layers.IPProtocol's String(), as Tracee prints them) of the protocols and
# IPv6 headers these tests can meet; another number: its decimal text
PROTO_NAMES = {6: "TCP", 17: "UDP", 1: "ICMPv4", 58: "ICMPv6", 0: "IPv6HopByHop",
               43: "IPv6Routing", 44: "IPv6Fragment", 59: "NoNextHeader", 60: "IPv6Destination"}

# gopacket's ICMPv4TypeCode / ICMPv6TypeCode strings (layers/icmp4.go, layers/icmp6.go)
ICMP4 = {0: ("EchoReply", None),
         3: ("DestinationUnreachable", {0: "Net", 1: "Host", 2: "Protocol", 3: "Port",
                                        4: "FragmentationNeeded", 5: "SourceRoutingFailed",
                                        6: "NetUnknown", 7: "HostUnknown",
                                        8: "SourceIsolated", 9: "NetAdminProhibited",
                                        10: "HostAdminProhibited", 11: "NetTOS", 12: "HostTOS",
                                        13: "CommAdminProhibited", 14: "HostPrecedence",
                                        15: "PrecedenceCutoff"}),
         4: ("SourceQuench", None),
         5: ("Redirect", {0: "Network", 1: "Host", 2: "TOS+Network", 3: "TOS+Host"}),
         8: ("EchoRequest", None), 9: ("RouterAdvertisement", None),
         10: ("RouterSolicitation", None),
         11: ("TimeExceeded", {0: "TTLExceeded", 1: "FragmentReassemblyTimeExceeded"}),
         12: ("ParameterProblem", {0: "PointerIndicatesError", 1: "MissingOption",
                                   2: "BadLength"}),
         13: ("TimestampRequest", None), 14: ("TimestampReply", None),
         15: ("InfoRequest", None), 16: ("InfoReply", None),
         17: ("AddressMaskRequest", None), 18: ("AddressMaskReply", None)}
ICMP6 = {1: ("DestinationUnreachable", {0: "NoRouteToDst", 1: "AdminProhibited",
                                        2: "BeyondScopeOfSrc", 3: "AddressUnreachable",
                                        4: "PortUnreachable", 5: "SrcAddressFailedPolicy",
                                        6: "RejectRouteToDst"}),
         2: ("PacketTooBig", None),
         3: ("TimeExceeded", {0: "HopLimitExceeded", 1: "FragmentReassemblyTimeExceeded"}),
         4: ("ParameterProblem", {0: "ErroneousHeaderField", 1: "UnrecognizedNextHeader",
                                  2: "UnrecognizedIPv6Option"}),
         128: ("EchoRequest", None), 129: ("EchoReply", None),
         133: ("RouterSolicitation", None), 134: ("RouterAdvertisement", None),
         135: ("NeighborSolicitation", None), 136: ("NeighborAdvertisement", None),
         137: ("Redirect", None)}


def type_code(table, t, c):
    if t not in table:
        return "%d(%d)" % (t, c)
    name, codes = table[t]
    if codes is None:
        return name if c == 0 else "%s(Code: %d)" % (name, c)
    return "%s(%s)" % (name, codes[c]) if c in codes else "%s(Code: %d)" % (name, c)


def _num(s):
    s = s.strip()
    if s == "":
        return None
    return int(s, 16) if s.lower().startswith("0x") else int(s)


def read_packets(path, defragment=True):
    """Every IPv4/IPv6 frame of the pcap: outer IP header, transport, and the transport's
    header (for an ICMP error, udp_quoted: the quoted datagram's ports). defragment=False:
    each IPv4 fragment as it is (the first one with the UDP header, the others without)."""
    cmd = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=f", "-o", "tcp.relative_sequence_numbers:FALSE",
           "-o", "tcp.analyze_sequence_numbers:FALSE"]
    if not defragment:
        cmd += ["-o", "ip.defragment:FALSE"]
    for f in TSHARK:
        cmd += ["-e", f]
    r = run(cmd, timeout=60)
    pkts = []
    for line in r.stdout.splitlines():
        v = dict(zip(TSHARK, line.split("\t")))
        layers = v["frame.protocols"].split(":")
        ip = next((l for l in layers if l in ("ip", "ipv6")), None)
        if ip is None:
            continue
        after = layers[layers.index(ip) + 1:]
        tr = next((l for l in after if l in TRANSPORTS), None)
        p = {"frame": _num(v["frame.number"]), "time": float(v["frame.time_epoch"]),
             "layers": v["frame.protocols"], "transport": tr}
        if ip == "ip":
            p.update({"family": 4, "src_ip": v["ip.src"], "dst_ip": v["ip.dst"],
                      "packet_len": _num(v["ip.len"]), "protocol": _num(v["ip.proto"])})
            p["ipv4"] = {"version": _num(v["ip.version"]), "IHL": _num(v["ip.hdr_len"]) // 4,
                         "TOS": _num(v["ip.dsfield"]), "length": _num(v["ip.len"]),
                         "id": _num(v["ip.id"]), "flags": _num(v["ip.flags"]),
                         "fragOffset": _num(v["ip.frag_offset"]), "TTL": _num(v["ip.ttl"]),
                         "protocol": PROTO_NAMES.get(_num(v["ip.proto"]),
                                                     str(_num(v["ip.proto"]))),
                         "checksum": _num(v["ip.checksum"]), "srcIP": v["ip.src"],
                         "dstIP": v["ip.dst"]}
        else:
            nxt = _num(v["ipv6.nxt"])
            p.update({"family": 6, "src_ip": v["ipv6.src"], "dst_ip": v["ipv6.dst"],
                      "packet_len": _num(v["ipv6.plen"]) + 40,
                      "protocol": TRANSPORTS.get(tr, nxt)})
            p["ipv6"] = {"version": _num(v["ipv6.version"]),
                         "trafficClass": _num(v["ipv6.tclass"]),
                         "flowLabel": _num(v["ipv6.flow"]), "length": _num(v["ipv6.plen"]),
                         "nextHeader": PROTO_NAMES.get(nxt, str(nxt)),
                         "hopLimit": _num(v["ipv6.hlim"]), "srcIP": v["ipv6.src"],
                         "dstIP": v["ipv6.dst"]}
        p["src_port"] = p["dst_port"] = 0
        if tr == "udp":
            p["src_port"], p["dst_port"] = _num(v["udp.srcport"]), _num(v["udp.dstport"])
            p["udp"] = {"srcPort": p["src_port"], "dstPort": p["dst_port"],
                        "length": _num(v["udp.length"]), "checksum": _num(v["udp.checksum"])}
        elif tr == "tcp":
            p["src_port"], p["dst_port"] = _num(v["tcp.srcport"]), _num(v["tcp.dstport"])
            p["tcp"] = {"srcPort": p["src_port"], "dstPort": p["dst_port"],
                        "seq": _num(v["tcp.seq_raw"]), "ack": _num(v["tcp.ack_raw"]) or 0,
                        "checksum": _num(v["tcp.checksum"])}
        elif tr == "icmp":
            t, c = _num(v["icmp.type"]), _num(v["icmp.code"])
            p["icmp"] = {"typeCode": type_code(ICMP4, t, c),
                         "checksum": _num(v["icmp.checksum"]),
                         # id and seq: the echo's; 0 where the type has none (the header's
                         # unused word, zero in the errors of these tests)
                         "id": _num(v["icmp.ident"]) or 0, "seq": _num(v["icmp.seq"]) or 0}
            p["icmp_type"] = t
        elif tr == "icmpv6":
            t, c = _num(v["icmpv6.type"]), _num(v["icmpv6.code"])
            p["icmpv6"] = {"typeCode": type_code(ICMP6, t, c),
                           "checksum": _num(v["icmpv6.checksum"])}
            p["icmp_type"] = t
        if tr in ("icmp", "icmpv6") and "udp" in after:
            p["udp_quoted"] = (_num(v["udp.srcport"]), _num(v["udp.dstport"]))
        pkts.append(p)
    return pkts


def describe(d):
    s = "%s %s:%s > %s:%s len=%s" % (d.get("event", d.get("layers")), d.get("src_ip"),
                                     d.get("src_port"), d.get("dst_ip"), d.get("dst_port"),
                                     d.get("packet_len"))
    for k in ("p.typeCode", "p.id", "p.seq"):
        if k in d:
            s += " %s=%s" % (k[2:], d[k])
    if "direction" in d:
        s = "%s %s %s" % (d.get("iface"), d["direction"], s)
    if "frame" in d:
        s = "frame %d: %s" % (d["frame"], s)
    if "processId" in d:
        s += " pid=%s tid=%s comm=%s" % (d["processId"], d["threadId"], d["processName"])
    return s


# ---------------------------------------------------------------------------------------------
# Expected events and matching

EVENT_OF = {"ipv4": "net_packet_ipv4", "ipv6": "net_packet_ipv6", "udp": "net_packet_udp",
            "icmp": "net_packet_icmp", "icmpv6": "net_packet_icmpv6", "tcp": "net_packet_tcp"}


def expect(pkt, direction, selected, owner=None, iface="lo"):
    """The events pktrace must emit for wire packet pkt at one socket, for the events
    selected."""
    out = []
    for layer, name in EVENT_OF.items():
        if name not in selected or layer not in pkt:
            continue
        e = {k: pkt[k] for k in ("src_ip", "dst_ip", "src_port", "dst_port", "protocol",
                                 "packet_len", "frame", "time")}
        e.update({"event": name, "iface": iface, "direction": direction})
        e.update({"p." + k: v for k, v in pkt[layer].items()})
        if owner is not None:
            e["owner"] = owner
        out.append(e)
    return out


def expect_sides(pkts, selected, owners, egress=True, ingress=True):
    """Both sides of each loopback packet: egress at its source port's socket, ingress at its
    destination port's. owners: port -> owner, or a function of (packet, direction); a side
    whose owner is None is not expected (no socket there)."""
    out = []
    for p in pkts:
        for direction, port, want in (("egress", p["src_port"], egress),
                                      ("ingress", p["dst_port"], ingress)):
            if not want:
                continue
            o = owners(p, direction) if callable(owners) else owners.get(port)
            if o is None:
                continue
            out.append(expect(p, direction, selected, o if o != "any" else None))
    return [e for es in out for e in es]


KEY = ("event", "direction", "iface", "src_ip", "dst_ip", "src_port", "dst_port", "packet_len")
OWNER_KEYS = (("pid", "processId"), ("name", "processName"), ("tid", "threadId"),
              ("ppid", "parentProcessId"), ("uid", "userId"), ("container", "containerId"),
              ("cgroup", "cgroupId"), ("host", "hostName"))


def compared(e):
    return [k for k in e if k in KEY or k in META_FIELDS or k.startswith("p.")]


class Match:
    """Multiset match of expected and actual events on KEY, identical events paired first,
    the rest in time order; then every field, the owner and the timestamp."""

    def __init__(self, expected, actual):
        self.expected, self.actual = expected, actual
        self.pairs, self.missing, self.extra = [], [], []
        groups = {}
        for e in expected:
            groups.setdefault(tuple(e[k] for k in KEY), ([], []))[0].append(e)
        for a in actual:
            groups.setdefault(tuple(a[k] for k in KEY), ([], []))[1].append(a)
        for exp, act in groups.values():
            exp = sorted(exp, key=lambda e: e["frame"])
            act = sorted(act, key=lambda a: a["timestamp"])
            rest = []
            for e in exp:
                same = next((a for a in act if all(a.get(k) == e[k] for k in compared(e))),
                            None)
                if same is not None:
                    act.remove(same)
                    self.pairs.append((e, same))
                else:
                    rest.append(e)
            for e in rest:
                if act:
                    self.pairs.append((e, act.pop(0)))
                else:
                    self.missing.append(e)
            self.extra.extend(act)
        self.pairs.sort(key=lambda p: (p[0]["frame"], p[0]["direction"], p[0]["event"]))
        self.missing.sort(key=lambda e: (e["frame"], e["direction"], e["event"]))
        self.extra.sort(key=lambda a: a["line"])

    def problems(self, limit=12):
        fields, owners, times = [], [], []
        for e, a in self.pairs:
            d = ["%s: tshark %r, pktrace %r" % (k, e[k], a.get(k)) for k in compared(e)
                 if a.get(k) != e[k]]
            if d:
                fields.append("%s -> %s" % (describe(e), "; ".join(d)))
            o = e.get("owner")
            if o:
                d = []
                for k, ek in OWNER_KEYS:
                    if k not in o:
                        continue
                    ok_ = o[k](a[ek]) if callable(o[k]) else a[ek] == o[k]
                    if not ok_:
                        d.append("%s: want %s got %r" % (
                            ek, getattr(o[k], "__doc__", None) or repr(o[k]), a[ek]))
                if d:
                    owners.append("%s -> %s" % (describe(e), "; ".join(d)))
            if abs(a["timestamp"] / 1e9 - e["time"]) > 1.0:
                times.append("%s -> timestamp %.6f, tcpdump %.6f" % (
                    describe(e), a["timestamp"] / 1e9, e["time"]))
        lines = []
        for title, items in (("missing (in tshark, no pktrace event)",
                              [describe(e) for e in self.missing]),
                             ("invented (pktrace event, not in tshark)",
                              [describe(a) for a in self.extra]),
                             ("field mismatches", fields), ("attribution mismatches", owners),
                             ("timestamps more than 1 s from tcpdump's", times)):
            if items:
                lines.append("%d %s:" % (len(items), title))
                lines += ["  " + s for s in items[:limit]]
                if len(items) > limit:
                    lines.append("  ... %d more" % (len(items) - limit))
        return lines

    def assert_exact(self, what):
        TALLY["packets"] += len({(e["iface"], e["frame"]) for e in self.expected})
        TALLY["events"] += len(self.expected)
        log("compared %s: %d expected events (%s), %d pktrace events, %d matched" % (
            what, len(self.expected), count_by(self.expected, "event"), len(self.actual),
            len(self.pairs)))
        lines = self.problems()
        assert not lines, "%s differ from tshark:\n      %s" % (what, "\n      ".join(lines))
        assert self.expected, "%s: nothing expected (tshark saw no packet)" % what


def on_ports(events, ports, protocol):
    """The events of one transport protocol on these ports (an unscoped pktrace sees every
    other test's and program's traffic too)."""
    return [e for e in events if e["protocol"] == protocol and
            (e["src_port"] in ports or e["dst_port"] in ports)]


# ---------------------------------------------------------------------------------------------
# 1. UDP: an unconnected socket talking to two peers

def _udp_two_peers(w, addr, selected, tos, tclass_flowlabel=None):
    p1, p2 = free_port(), free_port()
    s1, s2, cn = rand_name("us1"), rand_name("us2"), rand_name("ucl")
    pcap = os.path.join(w, "lo.pcap")
    host = "[%s]" % addr if ":" in addr else addr
    with capture("lo", "udp port %d or udp port %d" % (p1, p2), pcap) as cap, \
            pktrace(["-e", ",".join(selected)] + scope(s1, s2, cn), w) as pt:
        srv1 = packet_peer(w, "udpecho", s1, addr=addr, port=p1, tos=tos)
        srv2 = packet_peer(w, "udpecho", s2, addr=addr, port=p2)
        with srv1, srv2:
            srv1.expect(r"^BOUND")
            srv2.expect(r"^BOUND")
            with packet_peer(w, "udpclient", cn, addr=addr, count=4,
                             peers="%s:%d,%s:%d" % (host, p1, host, p2), tos=tos,
                             flowlabel=tclass_flowlabel) as cli:
                cport = int(cli.expect(r"^PORT (\d+)").group(1))
                ok(cli)
            ok(srv1)
            ok(srv2)
        events, _ = stop(pt)
        pkts = read_packets(cap.stop())
    udp = [p for p in pkts if p["transport"] == "udp"]
    # the scenario: 4 round trips with each server from the one client port, then a quit each
    for sp in (p1, p2):
        n_req = sum(1 for p in udp if (p["src_port"], p["dst_port"]) == (cport, sp))
        n_rep = sum(1 for p in udp if (p["src_port"], p["dst_port"]) == (sp, cport))
        assert (n_req, n_rep) == (5, 4), "scenario: %d datagrams to %d, %d back, want 5 and 4" % (
            n_req, sp, n_rep)
    assert len(udp) == len(pkts) == 18, "scenario: %d frames" % len(pkts)
    owners = {p1: who(srv1.peer_pid, s1), p2: who(srv2.peer_pid, s2), cport: who(cli.peer_pid, cn)}
    exp = expect_sides(pkts, selected, owners)
    Match(exp, events).assert_exact("UDP events over %s" % addr)
    return pkts


@test
def udp_unconnected_ipv4(w):
    """UDP over 127.0.0.1: one unconnected client socket, sendto() two echo servers (one with
    TOS 0xb8): every net_packet_udp and net_packet_ipv4 event of both sides vs tshark, each side
    attributed to its process."""
    pkts = _udp_two_peers(w, "127.0.0.1", ("net_packet_udp", "net_packet_ipv4"), tos=0xb8)
    assert any(p["ipv4"]["TOS"] == 0xb8 for p in pkts), "scenario: no packet with TOS 0xb8"


@test
def udp_unconnected_ipv6(w):
    """UDP over ::1: one unconnected client socket (traffic class 0x28, flow label 0x5a5a5)
    sendto() two echo servers: every net_packet_udp and net_packet_ipv6 event vs tshark."""
    pkts = _udp_two_peers(w, "::1", ("net_packet_udp", "net_packet_ipv6"), tos=0x28,
                          tclass_flowlabel=0x5a5a5)
    mine = [p for p in pkts if p["ipv6"]["flowLabel"] == 0x5a5a5]
    assert mine and all(p["ipv6"]["trafficClass"] == 0x28 for p in mine), (
        "scenario: the client's flow label 0x5a5a5 / traffic class 0x28 not on the wire: %s" % (
            [(p["ipv6"]["flowLabel"], p["ipv6"]["trafficClass"]) for p in pkts]))


# ---------------------------------------------------------------------------------------------
# 1b. A real program: dig against a local dnsmasq

def _udp_bound(port):
    """A UDP socket bound to port in /proc/net/udp and in /proc/net/udp6."""
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        with open(path) as f:
            locals_ = [line.split()[1] for line in f.readlines()[1:]]
        if not any(l.endswith(":%04X" % port) for l in locals_):
            return False
    return True


def _dig_like():
    def check(name):
        return name == "dig" or re.match(r"^isc-", name) is not None
    check.__doc__ = "dig or one of its threads (isc-*)"
    return check


@test
def udp_dns_dig(w):
    """dig against a dnsmasq started by the test, over 127.0.0.1 and ::1: every
    net_packet_udp/ipv4/ipv6 event vs tshark, dig's side attributed to dig's pid, dnsmasq's to
    dnsmasq; then `pktrace -e net_packet_udp -- dig ...`: dig's query and answer only. Beside
    them `-s comm=dig` shows exactly dig's side (dig sends from a thread named isc-net-*: the
    scope names a process by its own name too), none of dnsmasq's."""
    for tool in ("dnsmasq", "dig"):
        if not which(tool):
            raise Skip("%s is not installed (Debian: dnsmasq-base, bind9-dnsutils)" % tool)
    port = free_port()
    pcap = os.path.join(w, "lo.pcap")
    dns = Proc(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.1",
                "--listen-address=::1", "--port=%d" % port, "--user=root", "--pid-file=",
                "--log-facility=-", "--address=/e2e.test/10.1.2.3",
                "--address=/e2e.test/fd00::1"], name="dnsmasq")
    with dns:
        deadline = time.monotonic() + 10
        while not _udp_bound(port):
            assert dns.alive(), "dnsmasq exited: %s" % dns.err.text()
            assert time.monotonic() < deadline, "dnsmasq did not bind port %d" % port
            time.sleep(0.05)
        sel = ("net_packet_udp", "net_packet_ipv4", "net_packet_ipv6")
        digs = []
        with capture("lo", "udp port %d" % port, pcap) as cap, \
                pktrace(["-e", ",".join(sel)], w, tag="unscoped") as pt, \
                pktrace(["-e", ",".join(sel), "-s", "comm=dig"], w, tag="comm") as spt:
            for server, qtype, answer in (("127.0.0.1", "A", "10.1.2.3"),
                                          ("::1", "AAAA", "fd00::1")):
                with Proc(["dig", "@" + server, "-p", str(port), "a.e2e.test", qtype,
                           "+tries=1", "+time=3", "+short"], name="dig") as dig:
                    rc = dig.wait(15)
                    out = dig.out.text().strip()
                    assert rc == 0 and out == answer, "dig %s: rc %s, %r, %s" % (
                        server, rc, out, dig.err.text())
                    digs.append((server, dig.pid))
            # pktrace's command mode: dig as the traced command, its events only
            cmd_pt = Pktrace(["-e", "net_packet_udp", "--", "dig", "@127.0.0.1", "-p",
                              str(port), "b.e2e.test", "A", "+tries=1", "+time=3", "+short"],
                             w, tag="command", out="o")
            try:
                cmd_pt.wait_ready()
                rc = cmd_pt.proc.wait(20)
                assert cmd_pt.proc.out.text().strip() == "10.1.2.3", (
                    "dig under pktrace printed %r" % cmd_pt.proc.out.text())
                cmd_events, _ = finish_output(cmd_pt, rc)
            finally:
                cmd_pt.close()
            events, _ = stop(pt)
            scoped, _ = stop(spt)
            pkts = read_packets(cap.stop())
    udp = [p for p in pkts if p["transport"] == "udp"]
    assert len(udp) == len(pkts), "scenario: non-UDP frames %s" % [p["layers"] for p in pkts]
    by_dig = {}
    for p in udp:
        other = p["src_port"] if p["dst_port"] == port else p["dst_port"]
        by_dig.setdefault((p["family"], other), []).append(p)
    log("DNS exchanges (family, dig's port): %s" % {k: len(v) for k, v in by_dig.items()})
    fam_pid = {4 if ":" not in s else 6: pid for s, pid in digs}
    v4 = sorted(k for k in by_dig if k[0] == 4)
    v6 = sorted(k for k in by_dig if k[0] == 6)
    assert len(v4) == 2 and len(v6) == 1 and all(len(v) == 2 for v in by_dig.values()), (
        "scenario: want one query and one answer per dig (2 over IPv4, 1 over IPv6): %s" % (
            {k: len(v) for k, v in by_dig.items()}))
    # the first IPv4 exchange is the first dig's, the second the command's
    first_v4 = min(v4, key=lambda k: by_dig[k][0]["time"])
    cmd_port = [k for k in v4 if k != first_v4][0][1]
    dig_port_owner = {first_v4[1]: fam_pid[4], v6[0][1]: fam_pid[6]}
    dns_o = who(dns.pid, "dnsmasq")

    def owner(p, direction):
        local = p["src_port"] if direction == "egress" else p["dst_port"]
        if local == port:
            return dns_o
        if local == cmd_port:
            return "any"  # the command's pid is not known outside pktrace: checked below
        o = who(dig_port_owner[local], _dig_like())
        del o["tid"]  # dig's I/O threads
        return o

    exp = expect_sides(udp, sel, owner)
    Match(exp, on_ports(events, {port}, 17)).assert_exact("unscoped events of dig and dnsmasq")
    # command mode: only dig's side of its exchange, one process
    cmd_pkts = by_dig[(4, cmd_port)]
    exp = expect_sides(cmd_pkts, ("net_packet_udp",),
                       lambda p, d: {"name": _dig_like()} if
                       (p["src_port"] if d == "egress" else p["dst_port"]) == cmd_port else None)
    Match(exp, cmd_events).assert_exact("`pktrace -- dig` events")
    pids = {e["processId"] for e in cmd_events}
    assert len(pids) == 1 and 0 not in pids and dns.pid not in pids, (
        "`pktrace -- dig`: events of pids %s (dnsmasq is %d)" % (pids, dns.pid))
    dig_side = {e["processId"] for e in on_ports(events, {cmd_port}, 17) if
                (e["src_port"] if e["direction"] == "egress" else e["dst_port"]) == cmd_port}
    assert dig_side == pids, "the command's dig: pid %s under -- and %s unscoped" % (
        pids, dig_side)

    def digs_side(evs):
        return sorted((e["eventName"], e["direction"], e["src_port"], e["dst_port"],
                       e["processId"], e["processName"]) for e in on_ports(evs, {port}, 17)
                      if (e["src_port"] if e["direction"] == "egress" else e["dst_port"]) != port)
    want = digs_side(events)
    got = digs_side(scoped)
    names = sorted({x[5] for x in want})
    log("-s comm=dig: %d events, %d of dig's side unscoped, by thread name %s" % (
        len(scoped), len(want), names))
    assert want and got == want, "-s comm=dig: %s; unscoped, dig's side: %s" % (got, want)
    assert all(e["processId"] != dns.pid for e in scoped), "-s comm=dig shows dnsmasq's events"


# ---------------------------------------------------------------------------------------------
# 2. ICMP echo from a ping socket

class PingGroupRange:
    """net.ipv4.ping_group_range set for the test, then restored."""
    PATH = "/proc/sys/net/ipv4/ping_group_range"

    def __init__(self, value):
        self.value = value

    def __enter__(self):
        with open(self.PATH) as f:
            self.saved = f.read().strip()
        with open(self.PATH, "w") as f:
            f.write(self.value)
        log("net.ipv4.ping_group_range was %r, set to %r for the test" % (self.saved,
                                                                          self.value))
        return self

    def __exit__(self, *exc):
        with open(self.PATH, "w") as f:
            f.write(self.saved)


def _ping(w, target, selected, six, raw=False):
    """ping -c 3 target, traced with -s comm=<its distinctive name>. raw=False: as nobody
    without capabilities (ping sockets open to every group): a ping socket or nothing; raw=True:
    as root with ping sockets closed to every group ('1 0'): a raw socket or nothing."""
    ping = which("ping")
    if not ping:
        raise Skip("ping is not installed (Debian: iputils-ping)")
    # A copy named distinctively (its comm; not ending in 4 or 6, which iputils takes for -4 /
    # -6); run as nobody with no_new_privs, its file capabilities are not granted.
    name = rand_name("png") + "p"
    exe = os.path.join(w, name)
    shutil.copy(ping, exe)
    os.chmod(exe, 0o755)
    os.chmod(w, 0o755)
    prefix = [] if raw else ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             "--no-new-privs", "--inh-caps=-all"]
    cmd = prefix + [exe] + (["-6"] if six else []) + ["-c", "3", "-i", "0.2", "-W", "3", target]
    pcap = os.path.join(w, "lo.pcap")
    flt = "icmp6 and (ip6[40] == 128 or ip6[40] == 129)" if six else \
        "icmp and (icmp[icmptype] == icmp-echo or icmp[icmptype] == icmp-echoreply)"
    with PingGroupRange("1 0" if raw else "0 2147483647"):
        with capture("lo", flt, pcap) as cap, \
                pktrace(["-e", ",".join(selected)] + scope(name), w) as pt:
            with Proc(cmd, name=name) as pr:
                rc = pr.wait(20)
                out = pr.out.text()
                assert rc == 0 and " 3 received" in out, "ping: rc %s: %s %s" % (
                    rc, out[-300:], pr.err.text())
            events, _ = stop(pt)
            pkts = read_packets(cap.stop())
    req, rep = (128, 129) if six else (8, 0)
    n = [sum(1 for p in pkts if p.get("icmp_type") == t) for t in (req, rep)]
    assert n == [3, 3] and len(pkts) == 6, "scenario: %d echo requests, %d replies, %d frames" % (
        n[0], n[1], len(pkts))
    o = who(pr.pid, name, uid=0 if raw else 65534)
    # ping's socket sends the requests and receives the replies; the kernel answers the
    # requests itself (no socket receives them: a ping socket takes only replies, iputils sets
    # ICMP_FILTER / ICMP6_FILTER on a raw one; no socket of ping sends the replies).
    exp = expect_sides(pkts, selected,
                       lambda p, d: o if (p["icmp_type"] == req) == (d == "egress") else None)
    Match(exp, events).assert_exact("ping%s events (%s socket)" % (" -6" if six else "",
                                                                  "raw" if raw else "ping"))
    return pkts, events


@test
def raw_socket_hping3(w):
    """hping3 sends from an IPPROTO_RAW socket (IP_HDRINCL) TCP SYNs, UDP datagrams and ICMP
    echo requests, three of each: each is an event of its transport's kind with that event
    alone selected (net_packet_tcp, the default; net_packet_udp; net_packet_icmp), hping3's,
    every field tshark's. (The kernel's replies have no owner: not written under the scope.)"""
    hping = which("hping3")
    if not hping:
        raise Skip("hping3 is not installed (Debian: hping3)")
    name = rand_name("hpg")
    exe = os.path.join(w, name)
    shutil.copy(hping, exe)
    os.chmod(exe, 0o755)
    port, sport = free_port(), free_port()
    runs = ((None, "tcp", ["-S", "-p", str(port), "-s", str(sport), "-k"],
             "tcp and port %d" % port),
            ("net_packet_udp", "udp", ["--udp", "-p", str(port), "-s", str(sport), "-k"],
             "udp and port %d" % port),
            ("net_packet_icmp", "icmp", ["--icmp"], "icmp[icmptype] == icmp-echo"))
    for event, layer, args, flt in runs:
        selected = [event or "net_packet_tcp"]
        with capture("lo", flt, os.path.join(w, layer + ".pcap")) as cap, \
                pktrace((["-e", event] if event else []) + scope(name), w) as pt:
            with Proc([exe, "-c", "3", "-i", "u100000"] + args + ["127.0.0.1"],
                      name=name) as hp:
                hp.wait(20)
            events, _ = stop(pt)
            pkts = read_packets(cap.stop())
        sent = [p for p in pkts if layer in p and (p.get("src_port") == sport or
                                                   layer == "icmp")]
        assert len(sent) == 3, "scenario: tshark saw %d %s packets from hping3 (%d frames)" % (
            len(sent), layer, len(pkts))
        o = who(hp.pid, name)
        exp = expect_sides(sent, selected, lambda p, d: o if d == "egress" else None)
        Match(exp, [e for e in events if e["direction"] == "egress"]).assert_exact(
            "hping3's %s packets (raw socket)" % layer)


@test
def icmp_echo_ping_socket(w):
    """`ping -c 3 127.0.0.1` (iputils, as nobody, no capabilities: a ping socket, with
    net.ipv4.ping_group_range opened and restored): net_packet_icmp and net_packet_ipv4 for
    each request (egress) and reply (ingress): typeCode, checksum, id, seq vs tshark."""
    pkts, events = _ping(w, "127.0.0.1", ("net_packet_icmp", "net_packet_ipv4"), six=False)
    ids = {p["icmp"]["id"] for p in pkts}
    assert len(ids) == 1 and sorted(p["icmp"]["seq"] for p in pkts) == [1, 1, 2, 2, 3, 3], (
        "scenario: echo ids %s, seqs %s" % (ids, [p["icmp"]["seq"] for p in pkts]))


@test
def icmpv6_echo_ping_socket(w):
    """`ping -6 -c 3 ::1` from a ping socket (as icmp_echo_ping_socket): net_packet_icmpv6 and
    net_packet_ipv6 for each request and reply: typeCode, checksum vs tshark."""
    _ping(w, "::1", ("net_packet_icmpv6", "net_packet_ipv6"), six=True)


# ---------------------------------------------------------------------------------------------
# 3. ICMP port unreachable for a UDP send to a closed port

def _unreachable(w, addr, six, expression=False):
    q1, q2 = free_port(), free_port()
    name = rand_name("unr")
    icmp_ev = "net_packet_icmpv6" if six else "net_packet_icmp"
    selected = ("net_packet_udp", icmp_ev)
    pcap = os.path.join(w, "lo.pcap")
    flt = "(udp and (port %d or port %d)) or %s" % (q1, q2, "icmp6" if six else "icmp")
    # expression: pktrace's own filter takes the errors and rejects the datagrams they quote
    expr = ["icmp6" if six else "icmp"] if expression else []
    with capture("lo", flt, pcap) as cap, \
            pktrace(["-e", ",".join(selected)] + scope(name) + expr, w) as pt:
        with packet_peer(w, "unreach", name, addr=addr, port=q1, port2=q2) as pr:
            c_port = int(pr.expect(r"^CONNECTED (\d+)").group(1))
            pr.expect(r"^REFUSED")
            u_port = int(pr.expect(r"^UNCONNECTED (\d+)").group(1))
            pr.expect(r"^ERRQUEUE")
            ok(pr)
        events, _ = stop(pt)
        pkts = read_packets(cap.stop())
    udp = [p for p in pkts if p["transport"] == "udp"]
    icmp = [p for p in pkts if p["transport"] == ("icmpv6" if six else "icmp") and
            p.get("udp_quoted") in ((c_port, q1), (u_port, q2))]
    want_tc = "DestinationUnreachable(PortUnreachable)" if six else "DestinationUnreachable(Port)"
    layer = "icmpv6" if six else "icmp"
    assert sorted((p["src_port"], p["dst_port"]) for p in udp) == sorted(
        [(c_port, q1), (u_port, q2)]) and len(icmp) == 2 and \
        all(p[layer]["typeCode"] == want_tc for p in icmp), (
            "scenario: want two datagrams and two port unreachables, got %s" % (
                [(p["layers"], p["src_port"], p["dst_port"], p.get(layer)) for p in pkts]))
    o = who(pr.peer_pid, name)
    # the datagrams: the sender's egress (no socket receives them); the ICMP errors: the
    # kernel's egress and the ingress back, both the sender's
    exp = ([] if expression else expect_sides(udp, selected, {c_port: o, u_port: o})) + \
        expect_sides(icmp, selected, lambda p, d: o)
    Match(exp, events).assert_exact("port unreachable events over %s%s" % (
        addr, " with the expression %r" % expr[0] if expression else ""))


@test
def icmp_port_unreachable(w):
    """UDP to closed ports on 127.0.0.1 from a connected and an unconnected socket: each
    datagram (egress) and each ICMP DestinationUnreachable(Port), out and in, attributed to
    the sender, vs tshark (with -s comm=)."""
    _unreachable(w, "127.0.0.1", six=False)


@test
def icmpv6_port_unreachable(w):
    """As icmp_port_unreachable over ::1: DestinationUnreachable(PortUnreachable)."""
    _unreachable(w, "::1", six=True)


@test
def icmp_port_unreachable_expression(w):
    """As icmp_port_unreachable, IPv4 and IPv6, with the expression 'icmp' ('icmp6'), which
    rejects the datagrams: no UDP event, and each error, out and in, still the sender's (the
    egress filter hands what it rejects to the bookkeeping that publishes the socket)."""
    _unreachable(w, "127.0.0.1", six=False, expression=True)
    _unreachable(w, "::1", six=True, expression=True)


# ---------------------------------------------------------------------------------------------
# 4. IPv4 and IPv6 headers of TCP packets

def _tcp_ip_headers(w, addr, tos, flowlabel=None):
    port = free_port()
    sn, cn = rand_name("its"), rand_name("itc")
    ev = "net_packet_ipv6" if ":" in addr else "net_packet_ipv4"
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(["-e", ev] + scope(sn, cn), w) as pt:
        with packet_peer(w, "tcpserver", sn, addr=addr, port=port, tos=tos, count=3) as srv:
            srv.expect(r"^LISTENING")
            with packet_peer(w, "tcpclient", cn, addr=addr, port=port, tos=tos, count=3,
                             flowlabel=flowlabel) as cli:
                cport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                ok(cli)
            ok(srv)
        events, _ = stop(pt)
        pkts = read_packets(cap.stop())
    assert len(pkts) >= 10 and all(p["transport"] == "tcp" for p in pkts), (
        "scenario: %d frames %s" % (len(pkts), {p["layers"] for p in pkts}))
    owners = {port: who(srv.peer_pid, sn), cport: who(cli.peer_pid, cn)}
    Match(expect_sides(pkts, (ev,), owners), events).assert_exact(
        "%s events of a TCP connection over %s" % (ev, addr))
    return pkts


@test
def ipv4_header_tcp(w):
    """A TCP connection over 127.0.0.1 with TOS 0xb8 on both sockets, -e net_packet_ipv4
    alone: one net_packet_ipv4 event per packet and side, every proto_ipv4 field vs tshark,
    no TCP event."""
    pkts = _tcp_ip_headers(w, "127.0.0.1", 0xb8)
    assert all(p["ipv4"]["TOS"] == 0xb8 and p["ipv4"]["flags"] == 2 for p in pkts), (
        "scenario: TOS/flags on the wire %s" % {(p["ipv4"]["TOS"], p["ipv4"]["flags"])
                                                for p in pkts})


@test
def ipv6_header_tcp(w):
    """A TCP connection over ::1 with traffic class 0x48 and the client's flow label 0x12345,
    -e net_packet_ipv6 alone: every proto_ipv6 field vs tshark, no TCP event."""
    pkts = _tcp_ip_headers(w, "::1", 0x48, flowlabel=0x12345)
    assert any(p["ipv6"]["flowLabel"] == 0x12345 for p in pkts) and \
        all(p["ipv6"]["trafficClass"] == 0x48 for p in pkts), (
            "scenario: flow label / traffic class on the wire %s" % {
                (p["ipv6"]["flowLabel"], p["ipv6"]["trafficClass"]) for p in pkts})


# ---------------------------------------------------------------------------------------------
# 5. Selection and scope

@test
def select_udp_tcp_scope(w):
    """Two UDP pairs and a TCP pair at once, three pktrace instances: -e net_packet_udp
    scoped to pair 1 and the TCP pair (pair 1's UDP only, no TCP event, nothing of pair 2),
    -e net_packet_tcp with the same scope (the TCP pair only, no UDP event), and
    -e network_events scoped to pair 1 (for each datagram and side exactly one net_packet_ipv4
    and one net_packet_udp)."""
    pu1, pu2, pt_ = free_port(), free_port(), free_port()
    s1, c1, s2, c2 = (rand_name(x) for x in ("ss1", "sc1", "ss2", "sc2"))
    ts, tc = rand_name("sts"), rand_name("stc")
    pcap = os.path.join(w, "lo.pcap")
    flt = "udp port %d or udp port %d or tcp port %d" % (pu1, pu2, pt_)
    with capture("lo", flt, pcap) as cap, \
            pktrace(["-e", "net_packet_udp"] + scope(s1, c1, ts, tc), w, tag="udp") as p_udp, \
            pktrace(["-e", "net_packet_tcp"] + scope(s1, c1, ts, tc), w, tag="tcp") as p_tcp, \
            pktrace(["-e", "network_events"] + scope(s1, c1), w, tag="all") as p_all:
        srv1 = packet_peer(w, "udpecho", s1, port=pu1)
        srv2 = packet_peer(w, "udpecho", s2, port=pu2)
        tsrv = packet_peer(w, "tcpserver", ts, port=pt_, count=2)
        with srv1, srv2, tsrv:
            srv1.expect(r"^BOUND")
            srv2.expect(r"^BOUND")
            tsrv.expect(r"^LISTENING")
            cl1 = packet_peer(w, "udpclient", c1, peers="127.0.0.1:%d" % pu1, count=3)
            cl2 = packet_peer(w, "udpclient", c2, peers="127.0.0.1:%d" % pu2, count=3)
            tcl = packet_peer(w, "tcpclient", tc, port=pt_, count=2)
            with cl1, cl2, tcl:
                port1 = int(cl1.expect(r"^PORT (\d+)").group(1))
                int(cl2.expect(r"^PORT (\d+)").group(1))
                tport = int(tcl.expect(r"^CONNECTED (\d+)").group(1))
                for p in (cl1, cl2, tcl, srv1, srv2, tsrv):
                    ok(p)
        ev_udp, _ = stop(p_udp)
        ev_tcp, _ = stop(p_tcp)
        ev_all, flows_all = stop(p_all)
        pkts = read_packets(cap.stop())
    pair1 = [p for p in pkts if p["transport"] == "udp" and pu1 in (p["src_port"],
                                                                    p["dst_port"])]
    pair2 = [p for p in pkts if p["transport"] == "udp" and pu2 in (p["src_port"],
                                                                    p["dst_port"])]
    tcp = [p for p in pkts if p["transport"] == "tcp"]
    assert len(pair1) == len(pair2) == 7 and len(tcp) >= 8, (
        "scenario: %d, %d datagrams, %d TCP packets" % (len(pair1), len(pair2), len(tcp)))
    o1 = {pu1: who(srv1.peer_pid, s1), port1: who(cl1.peer_pid, c1)}
    ot = {pt_: who(tsrv.peer_pid, ts), tport: who(tcl.peer_pid, tc)}
    Match(expect_sides(pair1, ("net_packet_udp",), o1), ev_udp).assert_exact(
        "-e net_packet_udp -s comm=<pair 1, TCP pair>")
    Match(expect_sides(tcp, ("net_packet_tcp",), ot), ev_tcp).assert_exact(
        "-e net_packet_tcp -s comm=<pair 1, TCP pair>")
    Match(expect_sides(pair1, ("net_packet_udp", "net_packet_ipv4"), o1), ev_all).assert_exact(
        "-e network_events -s comm=<pair 1>")
    assert not flows_all, "flow events without a TCP connection in scope: %s" % flows_all


@test
def icmp_echo_raw_socket(w):
    """`ping -c 3 127.0.0.1`, then `ping -6 -c 3 ::1`, as root with ping sockets closed
    (net.ipv4.ping_group_range '1 0' for the test): iputils' raw sockets; each request
    (egress) and reply (ingress) as net_packet_icmp/ipv4 and net_packet_icmpv6/ipv6 vs tshark,
    nothing for the requests the raw socket's ICMP filter keeps out."""
    v4 = os.path.join(w, "v4")
    v6 = os.path.join(w, "v6")
    for d in (v4, v6):
        os.mkdir(d)
        os.chown(d, 65534, 65534)
    _ping(v4, "127.0.0.1", ("net_packet_icmp", "net_packet_ipv4"), six=False, raw=True)
    _ping(v6, "::1", ("net_packet_icmpv6", "net_packet_ipv6"), six=True, raw=True)


# ---------------------------------------------------------------------------------------------
# 4b. IPv4 options and an IPv6 extension header on UDP

@test
def ip_options_udp(w):
    """UDP with IPv4 options (IHL 6) and with an IPv6 destination-options header: proto_ipv4
    IHL and length, proto_ipv6 nextHeader "IPv6Destination" (the first header after the fixed
    one, gopacket's name) and
    length, metadata protocol 17 and packet_len, every net_packet_udp field, vs tshark."""
    for addr, opts, ev in (("127.0.0.1", "01010100", "net_packet_ipv4"),
                           ("::1", "0000010400000000", "net_packet_ipv6")):
        sub = os.path.join(w, ev)
        os.mkdir(sub)
        os.chown(sub, 65534, 65534)
        port = free_port()
        sn, cn = rand_name("ios"), rand_name("ioc")
        host = "[%s]" % addr if ":" in addr else addr
        sel = (ev, "net_packet_udp")
        # tcpdump's "udp" does not look past an extension header: take every such packet
        flt = "udp port %d or (ip6 and ip6[6] == 60)" % port
        with capture("lo", flt, os.path.join(sub, "lo.pcap")) as cap, \
                pktrace(["-e", ",".join(sel)] + scope(sn, cn), sub) as pt:
            with packet_peer(sub, "udpecho", sn, addr=addr, port=port) as srv:
                srv.expect(r"^BOUND")
                with packet_peer(sub, "udpclient", cn, addr=addr, count=3,
                                 peers="%s:%d" % (host, port), ip_options=opts) as cli:
                    cport = int(cli.expect(r"^PORT (\d+)").group(1))
                    ok(cli)
                ok(srv)
            events, _ = stop(pt)
            pkts = read_packets(cap.stop())
        pkts = [p for p in pkts if port in (p["src_port"], p["dst_port"])]
        mine = [p for p in pkts if p["src_port"] == cport]
        if ev == "net_packet_ipv4":
            assert len(mine) == 4 and all(p["ipv4"]["IHL"] == 6 for p in mine), (
                "scenario: the client's IHL on the wire %s" % [p["ipv4"]["IHL"] for p in mine])
        else:
            assert len(mine) == 4 and all(p["ipv6"]["nextHeader"] == "IPv6Destination" and
                                          p["protocol"] == 17 for p in mine), (
                "scenario: the client's first next header %s" % [p["ipv6"]["nextHeader"]
                                                                 for p in mine])
        owners = {port: who(srv.peer_pid, sn), cport: who(cli.peer_pid, cn)}
        Match(expect_sides(pkts, sel, owners), events).assert_exact(
            "UDP with %s over %s" % ("IPv4 options" if ev.endswith("4") else
                                     "a destination-options header", addr))


# ---------------------------------------------------------------------------------------------
# 6. Across a veth pair: the iface, and ICMP errors between two namespaces

def _veth_pair(na, nb, va, vb, addrs_a, addrs_b):
    import json
    run(["ip", "link", "add", va, "netns", na, "type", "veth", "peer", "name", vb, "netns", nb])
    for ns, dev, (ip4, ip6) in ((na, va, addrs_a), (nb, vb, addrs_b)):
        run(["ip", "-n", ns, "addr", "add", ip4 + "/24", "dev", dev])
        run(["ip", "-n", ns, "addr", "add", ip6 + "/64", "dev", dev, "nodad"])
        run(["ip", "-n", ns, "link", "set", dev, "up"])
    macs = {ns: json.loads(run(["ip", "-n", ns, "-j", "link", "show", dev]).stdout)[0]["address"]
            for ns, dev in ((na, va), (nb, vb))}
    # static neighbours: no ARP / neighbour discovery delays a packet between hook and wire
    for ns, dev, other, addrs in ((na, va, nb, addrs_b), (nb, vb, na, addrs_a)):
        for ip in addrs:
            run(["ip", "-n", ns, "neigh", "replace", ip, "lladdr", macs[other], "dev", dev,
                 "nud", "permanent"])


@test
def udp_icmp_veth_netns(w):
    """Namespaces A and B joined by a veth pair, IPv4 and IPv6: a UDP client in A and an echo
    server in B, then UDP from A to closed ports of B. Against a capture at each end (iface is
    the veth): the client's and server's UDP events; B's port unreachables reach A's sender
    (ingress on A's veth, attributed to it); B's kernel sends them for no socket of B (no event
    under the scope: the quoted port belongs to another namespace's socket)."""
    tag = rand_tag()
    na, nb = "pkt-ua-" + tag, "pkt-ub-" + tag
    va, vb = "pua" + tag, "pub" + tag
    A, B = ("10.77.0.1", "fd00:77::a"), ("10.77.0.2", "fd00:77::b")
    port, q1, q2 = free_port(), free_port(), free_port()
    sn, cn, un = rand_name("vus"), rand_name("vuc"), rand_name("vun")
    pa, pb = os.path.join(w, "a.pcap"), os.path.join(w, "b.pcap")
    sel = ("net_packet_ipv4", "net_packet_ipv6", "net_packet_udp", "net_packet_icmp",
           "net_packet_icmpv6")
    owners_a, owners_b, quoted = {}, {}, {}
    with netns(na), netns(nb):
        _veth_pair(na, nb, va, vb, A, B)
        flt = "udp or icmp or icmp6"
        with capture(va, flt, pa, ns=na) as ca, capture(vb, flt, pb, ns=nb) as cb, \
                pktrace(["-e", "network_events"] + scope(sn, cn, un), w) as pt:
            for fam, (a, b) in ((4, (A[0], B[0])), (6, (A[1], B[1]))):
                host = "[%s]" % b if fam == 6 else b
                with packet_peer(w, "udpecho", sn, ns=nb, addr=b, port=port) as srv:
                    srv.expect(r"^BOUND")
                    with packet_peer(w, "udpclient", cn, ns=na, addr=a, count=3,
                                     peers="%s:%d" % (host, port)) as cli:
                        cport = int(cli.expect(r"^PORT (\d+)").group(1))
                        ok(cli)
                    ok(srv)
                with packet_peer(w, "unreach", un, ns=na, addr=b, port=q1, port2=q2) as ur:
                    c_port = int(ur.expect(r"^CONNECTED (\d+)").group(1))
                    ur.expect(r"^REFUSED")
                    u_port = int(ur.expect(r"^UNCONNECTED (\d+)").group(1))
                    ur.expect(r"^ERRQUEUE")
                    ok(ur)
                srv_o, cli_o, ur_o = (who(p.peer_pid, n) for p, n in ((srv, sn), (cli, cn),
                                                                     (ur, un)))
                for o in (srv_o, cli_o, ur_o):
                    del o["ppid"]  # `ip netns exec` may fork
                owners_b[(fam, port)] = srv_o
                owners_a.update({(fam, cport): cli_o, (fam, c_port): ur_o, (fam, u_port): ur_o})
                quoted.update({(fam, c_port, q1): ur_o, (fam, u_port, q2): ur_o})
            ca.stop()
            cb.stop()
            events, _ = stop(pt)
    pkts_a, pkts_b = read_packets(pa), read_packets(pb)

    def expect_end(pkts, local, iface, owners, icmp_in):
        out = []
        for p in pkts:
            direction = "egress" if p["src_ip"] in local else "ingress"
            if p["transport"] == "udp":
                o = owners.get((p["family"], p["src_port"] if direction == "egress"
                                else p["dst_port"]))
            elif p["transport"] in ("icmp", "icmpv6") and "udp_quoted" in p:
                o = quoted.get((p["family"],) + p["udp_quoted"]) if icmp_in and \
                    direction == "ingress" else None
            else:
                o = None  # neighbour discovery, MLD: no socket of the scope
            if o is not None:
                out += expect(p, direction, sel, o, iface)
        return out

    for pk, what in ((pkts_a, "A"), (pkts_b, "B")):
        errs = [p for p in pk if "udp_quoted" in p and (p["family"],) + p["udp_quoted"] in
                quoted]
        assert len(errs) == 4, "scenario: %d port unreachables about our datagrams at %s's end" % (
            len(errs), what)
    exp = expect_end(pkts_a, set(A), va, owners_a, True) + \
        expect_end(pkts_b, set(B), vb, owners_b, False)
    Match(exp, events).assert_exact("UDP and ICMP events across a veth pair")


# ---------------------------------------------------------------------------------------------
# 7. ICMP errors to the right socket when another socket has the same port number

@test
def icmp_unreachable_shared_port(w):
    """Two processes with UDP sockets on the same port number, 127.0.0.1:P and 127.0.0.2:P
    (the second bound last), each sends to a closed port: each port unreachable (out and in)
    belongs to the socket whose datagram it quotes, told apart by address, not the port."""
    port, closed = free_port(), free_port()
    xn, yn = rand_name("shx"), rand_name("shy")
    sel = ("net_packet_udp", "net_packet_icmp")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "(udp and port %d) or icmp" % closed, pcap) as cap, \
            pktrace(["-e", ",".join(sel)] + scope(xn, yn), w) as pt:
        x = packet_peer(w, "bindsend", xn, stdin=subprocess.PIPE, addr="127.0.0.1", port=port,
                        target="127.0.0.1", port2=closed)
        with x:
            x.expect(r"^BOUND")
            y = packet_peer(w, "bindsend", yn, stdin=subprocess.PIPE, addr="127.0.0.2",
                            port=port, target="127.0.0.1", port2=closed)
            with y:
                y.expect(r"^BOUND")
                go(x)
                x.expect(r"^ERRQUEUE")
                go(y)
                y.expect(r"^ERRQUEUE")
                for p in (x, y):
                    p.p.stdin.close()
                    ok(p)
        events, _ = stop(pt)
        pkts = read_packets(cap.stop())
    errs = [p for p in pkts if p.get("udp_quoted") == (port, closed)]
    udp = [p for p in pkts if p["transport"] == "udp"]
    assert len(errs) == 2 and sorted(p["dst_ip"] for p in errs) == ["127.0.0.1", "127.0.0.2"] \
        and sorted(p["src_ip"] for p in udp) == ["127.0.0.1", "127.0.0.2"], (
            "scenario: %s" % [(p["layers"], p["src_ip"], p["dst_ip"]) for p in pkts])
    xo, yo = who(x.peer_pid, xn), who(y.peer_pid, yn)
    by_addr = {"127.0.0.1": xo, "127.0.0.2": yo}
    exp = expect_sides(udp, sel, lambda p, d: by_addr[p["src_ip"]] if d == "egress" else None) + \
        expect_sides(errs, sel, lambda p, d: by_addr[p["dst_ip"]])
    Match(exp, events).assert_exact("port unreachables of two sockets on port %d" % port)


@test
def icmp_unreachable_other_netns_port(w):
    """A sender in namespace A on A:P sends to a closed port of namespace B, where a traced
    decoy has a UDP socket on B:P: B's kernel's port unreachable is not the decoy's (nor the
    sender's: no socket of B sent the datagram); it reaches the sender in A (ingress on A's
    veth), and the decoy has no event at all."""
    tag = rand_tag()
    na, nb = "pkt-da-" + tag, "pkt-db-" + tag
    va, vb = "pda" + tag, "pdb" + tag
    A, B = ("10.78.0.1", "fd00:78::a"), ("10.78.0.2", "fd00:78::b")
    port, closed = free_port(), free_port()
    sn, dn = rand_name("nss"), rand_name("nsd")
    sel = ("net_packet_udp", "net_packet_icmp", "net_packet_icmpv6")
    pa, pb = os.path.join(w, "a.pcap"), os.path.join(w, "b.pcap")
    owners = {}
    with netns(na), netns(nb):
        _veth_pair(na, nb, va, vb, A, B)
        flt = "udp or icmp or icmp6"
        with capture(va, flt, pa, ns=na) as ca, capture(vb, flt, pb, ns=nb) as cb, \
                pktrace(["-e", ",".join(sel)] + scope(sn, dn), w) as pt:
            for fam in (0, 1):
                dec = packet_peer(w, "bindsend", dn, ns=nb, stdin=subprocess.PIPE,
                                  addr=B[fam], port=port, target=A[fam], port2=1)
                with dec:
                    dec.expect(r"^BOUND")
                    snd = packet_peer(w, "bindsend", sn, ns=na, stdin=subprocess.PIPE,
                                      addr=A[fam], port=port, target=B[fam], port2=closed)
                    with snd:
                        snd.expect(r"^BOUND")
                        go(snd)
                        snd.expect(r"^ERRQUEUE")
                        snd.p.stdin.close()
                        ok(snd)
                    dec.p.stdin.close()
                    ok(dec)
                o = who(snd.peer_pid, sn)
                del o["ppid"]  # `ip netns exec` may fork
                owners[4 if fam == 0 else 6] = o
            ca.stop()
            cb.stop()
            events, _ = stop(pt)
    pkts_a, pkts_b = read_packets(pa), read_packets(pb)
    exp = []
    for pk, local, iface in ((pkts_a, set(A), va), (pkts_b, set(B), vb)):
        errs = [p for p in pk if p.get("udp_quoted") == (port, closed)]
        udp = [p for p in pk if p["transport"] == "udp" and p["dst_port"] == closed]
        assert len(errs) == 2 and len(udp) == 2, "scenario: at %s %d datagrams, %d errors" % (
            iface, len(udp), len(errs))
        if iface == va:  # the sender's datagram out, the error back in
            for p in udp:
                exp += expect(p, "egress", sel, owners[p["family"]], iface)
            for p in errs:
                exp += expect(p, "ingress", sel, owners[p["family"]], iface)
    Match(exp, events).assert_exact("port unreachables across namespaces, a decoy on the port")


# ---------------------------------------------------------------------------------------------
# 8. An ICMP error from a router: TTL / hop limit exceeded

@test
def icmp_time_exceeded(w):
    """A sender in namespace A sends UDP with TTL 1 (IPv4) and hop limit 1 (IPv6) to an
    address behind router namespace R: R's TimeExceeded(TTLExceeded) and
    TimeExceeded(HopLimitExceeded) reach the sender (ingress on A's veth, attributed to it),
    with the datagrams (egress), vs a capture on A's veth."""
    tag = rand_tag()
    na, nr = "pkt-ta-" + tag, "pkt-tr-" + tag
    va, vr = "pta" + tag, "ptr" + tag
    A, R = ("10.79.0.1", "fd00:79::a"), ("10.79.0.2", "fd00:79::b")
    far = ("10.79.9.2", "fd00:79:9::2")  # behind R
    port = free_port()
    sn = rand_name("ttl")
    sel = ("net_packet_udp", "net_packet_icmp", "net_packet_icmpv6", "net_packet_ipv4",
           "net_packet_ipv6")
    pa = os.path.join(w, "a.pcap")
    owners = {}
    with netns(na), netns(nr):
        _veth_pair(na, nr, va, vr, A, R)
        # the far network: on a veth pair with both ends in R (no dummy device needed)
        run(["ip", "-n", nr, "link", "add", "x0", "type", "veth", "peer", "name", "x1"])
        run(["ip", "-n", nr, "addr", "add", "10.79.9.1/24", "dev", "x0"])
        run(["ip", "-n", nr, "addr", "add", "fd00:79:9::1/64", "dev", "x0", "nodad"])
        for dev in ("x0", "x1"):
            run(["ip", "-n", nr, "link", "set", dev, "up"])
        for k in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
            run(["ip", "netns", "exec", nr, "sysctl", "-qw", k])
        run(["ip", "-n", na, "route", "add", "default", "via", R[0]])
        run(["ip", "-n", na, "-6", "route", "add", "default", "via", R[1]])
        with capture(va, "udp or icmp or icmp6", pa, ns=na) as ca, \
                pktrace(["-e", ",".join(sel)] + scope(sn), w) as pt:
            for fam in (0, 1):
                with packet_peer(w, "bindsend", sn, ns=na, stdin=subprocess.PIPE, addr=A[fam],
                                 port=port, target=far[fam], port2=33434, ttl=1) as snd:
                    snd.expect(r"^BOUND")
                    go(snd)
                    snd.expect(r"^ERRQUEUE")
                    snd.p.stdin.close()
                    ok(snd)
                o = who(snd.peer_pid, sn)
                del o["ppid"]  # `ip netns exec` may fork
                owners[4 if fam == 0 else 6] = o
            ca.stop()
            events, _ = stop(pt)
    pkts = read_packets(pa)
    udp = [p for p in pkts if p["transport"] == "udp" and p["src_port"] == port]
    errs = [p for p in pkts if p.get("udp_quoted") == (port, 33434)]
    tcs = sorted(p.get("icmp", p.get("icmpv6", {})).get("typeCode") for p in errs)
    assert len(udp) == 2 and tcs == ["TimeExceeded(HopLimitExceeded)",
                                     "TimeExceeded(TTLExceeded)"], (
        "scenario: %d datagrams, errors %s" % (len(udp), tcs))
    exp = []
    for p in udp:
        exp += expect(p, "egress", sel, owners[p["family"]], va)
    for p in errs:
        exp += expect(p, "ingress", sel, owners[p["family"]], va)
    Match(exp, events).assert_exact("datagrams with TTL 1 and the router's TimeExceeded")


# ---------------------------------------------------------------------------------------------
# 9. An IP protocol with no decoder of its own: only its IP event

@test
def ipv4_other_protocol(w):
    """Raw IPv4 sockets of protocol 253 (experimental): a sender bound to 127.0.0.2 sends three
    datagrams to a receiver bound to 127.0.0.3: with -e net_packet_ipv4,net_packet_udp,
    net_packet_icmp, one net_packet_ipv4 per packet and side (protocol "253", metadata ports
    0), no other event."""
    sn, rn = rand_name("rws"), rand_name("rwr")
    sel = ("net_packet_ipv4", "net_packet_udp", "net_packet_icmp")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "ip proto 253", pcap) as cap, \
            pktrace(["-e", ",".join(sel)] + scope(sn, rn), w) as pt:
        with packet_peer(w, "rawrecv", rn, addr="127.0.0.3", port=253, count=3) as rcv:
            rcv.expect(r"^BOUND")
            with packet_peer(w, "rawsend", sn, addr="127.0.0.2", port=253, count=3,
                             target="127.0.0.3") as snd:
                ok(snd)
            ok(rcv)
        events, _ = stop(pt)
        pkts = read_packets(cap.stop())
    assert len(pkts) == 3 and all(p["ipv4"]["protocol"] == "253" and p["transport"] is None
                                  for p in pkts), "scenario: %s" % [p["layers"] for p in pkts]
    so, ro = who(snd.peer_pid, sn), who(rcv.peer_pid, rn)
    exp = expect_sides(pkts, sel, lambda p, d: so if d == "egress" else ro)
    Match(exp, events).assert_exact("protocol 253 events")


# ---------------------------------------------------------------------------------------------
# The socket's view of a datagram the wire shows otherwise (README, "What the socket hooks
# show"): pktrace's hooks are the sockets' (cgroup_skb), so a UDP GSO buffer is received as its
# segments and a fragmented datagram is one packet each side. What the wire does not show is
# derived from what it does, and checked against arithmetic done here, never against pktrace.

PROTO_NUMBERS = {v: k for k, v in PROTO_NAMES.items()}


def _csum16(data):
    """RFC 1071: the ones' complement of the ones' complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def ipv4_header_checksum(h):
    """The header checksum of an option-less IPv4 header (IHL 5) with these proto_ipv4
    fields, computed over them (RFC 791/1071), independent of any capture or of pktrace."""
    assert h["IHL"] == 5, "header with options: %r" % h
    proto = PROTO_NUMBERS.get(h["protocol"]) if h["protocol"] in PROTO_NUMBERS else \
        int(h["protocol"])
    hdr = bytes([(h["version"] << 4) | h["IHL"], h["TOS"]]) + \
        h["length"].to_bytes(2, "big") + h["id"].to_bytes(2, "big") + \
        ((h["flags"] << 13) | h["fragOffset"]).to_bytes(2, "big") + \
        bytes([h["TTL"], proto]) + b"\0\0" + socket.inet_aton(h["srcIP"]) + \
        socket.inet_aton(h["dstIP"])
    return _csum16(hdr)


def _pseudo4(src, dst, udp_len):
    return socket.inet_aton(src) + socket.inet_aton(dst) + bytes([0, 17]) + \
        udp_len.to_bytes(2, "big")


def udp4_partial_checksum(src, dst, udp_len):
    """The UDP checksum field of a CHECKSUM_PARTIAL datagram (checksum offload, as on lo):
    the folded pseudo-header sum, not complemented (the kernel's ~csum_tcpudp_magic)."""
    return ~_csum16(_pseudo4(src, dst, udp_len)) & 0xffff


def udp4_full_checksum(src, dst, sport, dport, payload):
    """RFC 768: the checksum over pseudo header, UDP header and payload (0 sent as 0xffff)."""
    n = 8 + len(payload)
    c = _csum16(_pseudo4(src, dst, n) + sport.to_bytes(2, "big") + dport.to_bytes(2, "big") +
                n.to_bytes(2, "big") + b"\0\0" + payload)
    return c or 0xffff


class OneOf:
    """An expected value that may take one of a few derived values (Match compares with ==)."""

    def __init__(self, why, *values):
        self.why, self.values = why, values

    def __eq__(self, other):
        return other in self.values

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self.values)

    def __repr__(self):
        return "one of %s (%s)" % (list(self.values), self.why)


def gso_segments(d, gso_size, payload_byte):
    """The datagrams the receiving socket gets for wire GSO datagram d (IPv4, UDP_SEGMENT
    gso_size, payload all payload_byte): gso_size bytes each, the last one the rest; the IP
    header the datagram's with its own total length, id + i and the header checksum computed;
    the UDP checksum as the kernel's segmentation leaves it: the pseudo-header sum of the
    segment's length (checksum offload, the datagram's own form on lo, checked by the caller)
    or, had the kernel completed it, the full checksum of the segment's bytes."""
    payload = d["udp"]["length"] - 8
    segs = []
    for i, off in enumerate(range(0, payload, gso_size)):
        n = min(gso_size, payload - off)
        s = dict(d)
        s["udp"] = dict(d["udp"], length=n + 8, checksum=OneOf(
            "pseudo-header sum or full checksum of %d bytes" % (n + 8),
            udp4_partial_checksum(d["src_ip"], d["dst_ip"], n + 8),
            udp4_full_checksum(d["src_ip"], d["dst_ip"], d["src_port"], d["dst_port"],
                               payload_byte * n)))
        s["ipv4"] = dict(d["ipv4"], length=20 + n + 8, id=(d["ipv4"]["id"] + i) & 0xffff,
                         fragOffset=0)
        s["ipv4"]["checksum"] = ipv4_header_checksum(s["ipv4"])
        s["packet_len"] = s["ipv4"]["length"]
        segs.append(s)
    return segs


def reassembled_datagram(p):
    """The datagram as its sockets send and receive it, from tshark's reassembly of its IPv4
    fragments (frame p: the last fragment, with the reassembled UDP header): total length 20 +
    UDP length, MF clear, DF as the fragments (the datagram's), fragOffset 0, id/TTL/TOS/
    protocol/addresses the fragments', the header checksum computed over those fields."""
    assert p["ipv4"]["IHL"] == 5 and p["transport"] == "udp", "not a reassembled datagram: %s" % (
        describe(p))
    d = dict(p)
    d["ipv4"] = dict(p["ipv4"], length=20 + p["udp"]["length"], flags=p["ipv4"]["flags"] & ~1,
                     fragOffset=0)
    d["ipv4"]["checksum"] = ipv4_header_checksum(d["ipv4"])
    d["packet_len"] = d["ipv4"]["length"]
    return d


# ---------------------------------------------------------------------------------------------
# 10. UDP GSO (UDP_SEGMENT, as QUIC stacks send)

@test
def udp_gso_segments(w):
    """One sendto() of 3500 bytes with UDP_SEGMENT 1000 to an echo server on 127.0.0.1. lo
    carries it as one GSO datagram (tcpdump sees one 3528-byte packet): the sending socket's
    egress event is that datagram, field by field vs tshark. The receiving socket gets it as
    four datagrams (UDP lengths 1008, 1008, 1008, 508), which no capture on lo shows: its
    ingress events are the socket's view, derived from the wire datagram (count, lengths, ports,
    ids datagram id + i, TOS/TTL/flags, IP header checksum computed, UDP checksum the
    pseudo-header sum of each segment's length or its full checksum), attributed to the server.
    The echoes are ordinary datagrams, both sides vs tshark. A known gap, README "What the
    socket hooks show"."""
    gso, size = 1000, 3500
    port = free_port()
    sn, cn = rand_name("gss"), rand_name("gsc")
    sel = ("net_packet_udp", "net_packet_ipv4")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "udp port %d" % port, pcap) as cap, \
            pktrace(["-e", ",".join(sel)] + scope(sn, cn), w) as pt:
        with packet_peer(w, "udpecho", sn, port=port) as srv:
            srv.expect(r"^BOUND")
            with packet_peer(w, "gsosend", cn, port=port, target="127.0.0.1", count=3,
                             size=gso) as cli:
                cport = int(cli.expect(r"^PORT (\d+)").group(1))
                ok(cli)
            srv.expect(r"^ECHOED 4$")
            ok(srv)
        events, _ = stop(pt)
        pkts = read_packets(cap.stop())
    sent = [p for p in pkts if p["src_port"] == cport]
    back = [p for p in pkts if p["src_port"] == port]
    big = [p for p in sent if p["udp"]["length"] > gso + 8]
    log("tshark: client's datagrams of UDP lengths %s, the echoes' %s" % (
        [p["udp"]["length"] for p in sent], [p["udp"]["length"] for p in back]))
    # the scenario: the GSO datagram whole on lo (3500 bytes, checksum offloaded: the
    # pseudo-header sum), then b"quit"; four echoes of 1 + 1000, 1000, 1000, 500 bytes
    assert len(big) == 1 and big[0]["udp"]["length"] == size + 8 and \
        big[0]["ipv4"]["IHL"] == 5 and \
        sorted(p["udp"]["length"] for p in sent) == [12, size + 8] and \
        sorted(p["udp"]["length"] for p in back) == [509, 1009, 1009, 1009] and \
        len(pkts) == 6, "scenario: client sent %s, echoes %s, %d frames" % (
            [p["udp"]["length"] for p in sent], [p["udp"]["length"] for p in back], len(pkts))
    d = big[0]
    assert d["udp"]["checksum"] == udp4_partial_checksum(d["src_ip"], d["dst_ip"], size + 8), (
        "scenario: the GSO datagram's UDP checksum %#x is not the pseudo-header sum %#x" % (
            d["udp"]["checksum"], udp4_partial_checksum(d["src_ip"], d["dst_ip"], size + 8)))
    co, so = who(cli.peer_pid, cn), who(srv.peer_pid, sn)
    owners = {port: so, cport: co}
    # the wire datagram: its sender's egress; its segments: the server's ingress
    segs = gso_segments(d, gso, b"s")
    assert [s["udp"]["length"] for s in segs] == [1008, 1008, 1008, 508] and \
        [s["packet_len"] for s in segs] == [1028, 1028, 1028, 528], (
            "derived segments %s" % [s["packet_len"] for s in segs])
    exp = expect_sides([p for p in pkts if p is not d], sel, owners) + \
        expect(d, "egress", sel, co)
    for s in segs:
        exp += expect(s, "ingress", sel, so)
    Match(exp, events).assert_exact("UDP GSO events (egress: the wire datagram; ingress: the "
                                    "socket's segments)")


# ---------------------------------------------------------------------------------------------
# 11. IPv4 fragments on the wire

@test
def udp_fragments_veth(w):
    """Namespaces A and B over a veth pair with MTU 1280: a 3000-byte datagram from a client in
    A to an echo server in B and its echo, each three IPv4 fragments on the wire (checked with
    tshark's reassembly off). The socket hooks see each datagram as its sockets send and
    receive it: one event per datagram and side, egress before fragmentation, ingress after
    reassembly; the fragments are not events (a known gap, README "What the socket hooks
    show"). Against each end's capture with reassembly on: the datagram's addresses, ports, UDP
    length and checksum, IP id, TTL, TOS, protocol, total length 20 + UDP length, MF clear, DF as
    the datagram, fragOffset 0, the IP header checksum computed over those fields; the
    unfragmented b"quit" field by field as on the wire."""
    tag = rand_tag()
    na, nb = "pkt-fa-" + tag, "pkt-fb-" + tag
    va, vb = "pfa" + tag, "pfb" + tag
    A, B = ("10.80.0.1", "fd00:80::a"), ("10.80.0.2", "fd00:80::b")
    port = free_port()
    sn, cn = rand_name("frs"), rand_name("frc")
    sel = ("net_packet_ipv4", "net_packet_udp")
    pa, pb = os.path.join(w, "a.pcap"), os.path.join(w, "b.pcap")
    with netns(na), netns(nb):
        _veth_pair(na, nb, va, vb, A, B)
        for ns, dev in ((na, va), (nb, vb)):
            run(["ip", "-n", ns, "link", "set", dev, "mtu", "1280"])
        with capture(va, "ip and (udp or ip[6:2] & 0x3fff != 0)", pa, ns=na) as ca, \
                capture(vb, "ip and (udp or ip[6:2] & 0x3fff != 0)", pb, ns=nb) as cb, \
                pktrace(["-e", ",".join(sel)] + scope(sn, cn), w) as pt:
            with packet_peer(w, "udpecho", sn, ns=nb, addr=B[0], port=port) as srv:
                srv.expect(r"^BOUND")
                with packet_peer(w, "udpclient", cn, ns=na, addr=A[0], count=1, size=3000,
                                 peers="%s:%d" % (B[0], port)) as cli:
                    ok(cli)
                ok(srv)
            ca.stop()
            cb.stop()
            events, _ = stop(pt)
    raw_a, raw_b = read_packets(pa, defragment=False), read_packets(pb, defragment=False)
    frags = [p for p in raw_a if p["ipv4"]["flags"] & 1 or p["ipv4"]["fragOffset"]]
    assert len(frags) == 6 and len(raw_a) == 7 and len(raw_b) == 7, (
        "scenario: %d fragments at A, %d frames at A, %d at B" % (len(frags), len(raw_a),
                                                                  len(raw_b)))
    for raw, iface in ((raw_a, va), (raw_b, vb)):
        by_id = {}
        for p in raw:
            if p["ipv4"]["flags"] & 1 or p["ipv4"]["fragOffset"]:
                by_id.setdefault(p["ipv4"]["id"], []).append(
                    (p["ipv4"]["fragOffset"], p["ipv4"]["flags"] & 1))
        assert sorted(len(v) for v in by_id.values()) == [3, 3] and all(
            sorted(v)[0] == (0, 1) and sorted(v)[-1][1] == 0 for v in by_id.values()), (
                "scenario: fragments at %s (id: [(offset, MF)]) %s" % (iface, by_id))
    # the datagram-level view: tshark's reassembly, each datagram's frame its last fragment
    co, so = who(cli.peer_pid, cn), who(srv.peer_pid, sn)
    for o in (co, so):
        del o["ppid"]  # `ip netns exec` may fork
    exp = []
    for pcap, local, iface, o in ((pa, A[0], va, co), (pb, B[0], vb, so)):
        pk = read_packets(pcap, defragment=True)
        dgrams = [p for p in pk if p["transport"] == "udp"]
        whole = [p for p in dgrams if not (p["ipv4"]["flags"] & 1 or p["ipv4"]["fragOffset"])]
        joined = [reassembled_datagram(p) for p in dgrams if p not in whole]
        assert sorted(p["udp"]["length"] for p in joined) == [3008, 3009] and \
            [p["udp"]["length"] for p in whole] == [12] and \
            len(pk) - len(dgrams) == 4 and all(p["transport"] is None for p in pk
                                               if p not in dgrams), (
                "scenario: at %s, reassembled UDP lengths %s, whole %s, %d other frames" % (
                    iface, [p["udp"]["length"] for p in joined],
                    [p["udp"]["length"] for p in whole], len(pk) - len(dgrams)))
        for p in joined + whole:
            exp += expect(p, "egress" if p["src_ip"] == local else "ingress", sel, o, iface)
    Match(exp, events).assert_exact("events of fragmented datagrams (one per datagram and "
                                    "side, as the sockets send and receive them)")


# UDP datagrams and ICMP echo requests written whole, Ethernet header included, on a packet
# socket bound to lo, over IPv4 and IPv6 (to a closed UDP port: the kernel answers with port
# unreachables, and the echoes with replies, none of them the writer's).
# The start of an injector: named argv[1] (argv[2] a port), a packet socket s bound to lo, and
# ip4() making a whole frame (Ethernet header, IPv4 header with its checksum, then l4).
INJECT_START = r"""
import ctypes, socket, struct, sys, time
name, dport = sys.argv[1], int(sys.argv[2])
ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)
""" + CSUM_SRC + r"""
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("lo", 0))
v4 = socket.inet_aton("127.0.0.1")
v6 = socket.inet_pton(socket.AF_INET6, "::1")
def ip4(proto, l4, ident, frag=0):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, frag, 64, proto, 0, v4, v4)
    return b"\0" * 12 + b"\x08\x00" + ip[:10] + struct.pack("!H", csum(ip)) + ip[12:] + l4
"""

def run_injector(script, name, port):
    """Run an injector (INJECT_START and its frames) named name to its end; its pid."""
    with Proc([PYTHON, "-c", script, name, str(port)], name="inject") as p:
        p.expect(r"^DONE")
        assert p.wait(10) == 0, "injector failed: %s" % p.err.text()
        return p.pid


INJECT_UDP_ICMP = INJECT_START + r"""
def ip6(proto, l4):
    return b"\0" * 12 + b"\x86\xdd" + struct.pack("!IHBB16s16s", 6 << 28, len(l4), proto, 64,
                                                    v6, v6) + l4
for i in range(2):
    body = b"d" * (10 + i)
    u = struct.pack("!HHHH", dport - 1, dport, 8 + len(body), 0) + body
    s.send(ip4(17, u[:6] + struct.pack("!H", csum(v4 + v4 + struct.pack("!BBH", 0, 17, len(u))
                                                    + u)) + u[8:], 70 + i))
    s.send(ip6(17, u[:6] + struct.pack("!H", csum(v6 + v6 + struct.pack("!IxxxB", len(u), 17)
                                                    + u)) + u[8:]))
    e = struct.pack("!BBHHH", 8, 0, 0, 4321, i) + b"ping"
    s.send(ip4(1, e[:2] + struct.pack("!H", csum(e)) + e[4:], 80 + i))
    e6 = struct.pack("!BBHHH", 128, 0, 0, 4321, i) + b"ping"
    c = csum(v6 + v6 + struct.pack("!IxxxB", len(e6), 58) + e6)
    s.send(ip6(58, e6[:2] + struct.pack("!H", c) + e6[4:]))
    time.sleep(0.05)
print("DONE", flush=True)
"""


@test
def packet_socket_udp_icmp(w):
    """UDP datagrams and ICMP/ICMPv6 echo requests written whole on a packet socket (as
    scapy's sendp writes them), IPv4 and IPv6, on lo: each is shown once, at egress, with the
    writer's pid and name, under -s comm=<writer> (no socket hook sees such frames; the
    kernel's answers are not the writer's), field for field against tshark."""
    jn, port = rand_name("pij"), free_port()
    selected = ["net_packet_udp", "net_packet_icmp", "net_packet_icmpv6"]
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "udp port %d or icmp or icmp6" % port, pcap) as cap, \
            pktrace(["-e", ",".join(selected)] + scope(jn), w) as pt:
        pid = run_injector(INJECT_UDP_ICMP, jn, port)
        time.sleep(0.3)
        events, _ = stop(pt)
        pkts = read_packets(cap.stop())
    mine = [q for q in pkts if (q["transport"] == "udp" and q["dst_port"] == port) or
            (q.get("icmp") or q.get("icmpv6") or {}).get("typeCode") == "EchoRequest"]
    exp = [e for q in mine for e in expect(q, "egress", selected, {"pid": pid, "name": jn})]
    log("%d injected frames (tshark), %d events" % (len(exp), len(events)))
    assert len(exp) == 8, "scenario broken: tshark shows %d injected frames" % len(exp)
    Match(exp, events).assert_exact("frames written on a packet socket")


# Frames a socket hook would show only partly, written whole on a packet socket bound to lo:
# an IPv4 datagram of protocol 253, the second fragment of a UDP datagram (offset 16 bytes, the
# last), an IPv6 UDP datagram behind a Destination Options header, and a TCP segment whose
# data offset says 3 (12 bytes) though its 20 bytes are all there.
INJECT_UNREADABLE = INJECT_START + r"""
s.send(ip4(253, b"x" * 24, 901))
s.send(ip4(17, b"f" * 24, 902, frag=2))
u = struct.pack("!HHHH", dport - 1, dport, 12, 0) + b"opts"
dst_opts = bytes([17, 0, 1, 4, 0, 0, 0, 0])  # next header UDP, 8 bytes: a PadN option
body = dst_opts + u
s.send(b"\0" * 12 + b"\x86\xdd" + struct.pack("!IHBB16s16s", 6 << 28 | 0x5a5a, len(body), 60,
                                                64, v6, v6) + body)
tcp = struct.pack("!HHIIBBHHH", dport - 2, dport, 1000, 0, 3 << 4, 0x02, 512, 0, 0)
s.send(ip4(6, tcp + b"p" * 8, 903))
print("DONE", flush=True)
"""


@test
def packet_socket_unreadable(w):
    """Frames written on a packet socket that the kernel side cannot read to their ports (a
    protocol without ports, a later fragment, an IPv6 extension header it does not walk) are
    not lost: each is one IP event at egress with the writer's pid and its IP header, and
    counted as written with its IP header; a TCP header with a data offset below 5 gives its
    ports (as tcpdump and tshark show them). IP fields against tshark."""
    jn, port = rand_name("piu"), free_port()
    sel = ["net_packet_ipv4", "net_packet_ipv6"]
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "ip proto 253 or ip[6:2] & 0x1fff != 0 or ip6 or tcp port %d" % port,
                 pcap) as cap, pktrace(["-e", ",".join(sel)] + scope(jn), w) as pt:
        pid = run_injector(INJECT_UNREADABLE, jn, port)
        time.sleep(0.3)
        events, _ = stop(pt)
        err = pt.stderr()
        pkts = read_packets(cap.stop(), defragment=False)
    mine = [q for q in pkts if q["family"] == 4 and q["ipv4"]["id"] in (901, 902, 903)]
    six = [q for q in pkts if q["family"] == 6 and q["ipv6"]["flowLabel"] == 0x5a5a]
    assert len(mine) == 3 and len(six) == 1, "scenario: tshark shows %s" % [
        q["layers"] for q in pkts]
    tcp = next(q for q in mine if q["ipv4"]["id"] == 903)
    assert tcp["transport"] == "tcp" and tcp["dst_port"] == port, (
        "scenario: tshark reads the short TCP header as %s" % tcp)
    owner = {"pid": pid, "name": jn}
    exp = [e for q in mine for e in expect(q, "egress", sel, owner)]
    got = [e for e in events if e["event"] == "net_packet_ipv4"]
    Match(exp, got).assert_exact("IPv4 frames written on a packet socket")
    # The IPv6 one: its fixed header as tshark reads it; the chain is not walked, so the
    # protocol is the first extension header's (60) and there are no ports.
    v6 = [e for e in events if e["event"] == "net_packet_ipv6"]
    assert len(v6) == 1, "want one net_packet_ipv6 event, got %s" % [describe(e) for e in v6]
    e, q = v6[0], six[0]
    want = {"direction": "egress", "processId": pid, "processName": jn, "protocol": 60,
            "src_port": 0, "dst_port": 0, "packet_len": q["packet_len"]}
    want.update({"p." + k: v for k, v in q["ipv6"].items()})
    bad = {k: (e.get(k), v) for k, v in want.items() if e.get(k) != v}
    assert not bad, "the IPv6 frame's event differs (got, want): %s" % bad
    m = re.search(r"handed on with their IP header .*: (\d+)", err)
    assert m and int(m.group(1)) == 3, (
        "the summary must count the 3 frames handed on with their IP header: %s" % err[-900:])
    written = {r: int(n) for r, n in re.findall(
        r"packets written without transport fields, '([^']+)': (\d+)", err)}
    assert written == {"non-first fragment": 1, "no transport header": 2,
                       "bad TCP data offset": 1}, (
        "the summary's frames written without transport fields: %s" % written)
