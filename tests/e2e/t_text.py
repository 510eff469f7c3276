"""The text format (-F text) against tcpdump's own line for the same packets.

tcpdump captures on lo while pktrace traces the same traffic (TCP over IPv4 and IPv6 with
payloads and options, UDP both ways, ICMP and ICMPv6 echoes from raw sockets); the capture is
printed with `tcpdump -r FILE -nn -S -tt` (absolute sequence numbers, no names), and the part of
each line after the time (`IP a.p > b.q: Flags [P.], seq 1:11, ack 2, win 512, options [...],
length 10`) must be what pktrace prints after its process, interface and direction columns:
flags, seq and ack, win, options, length (the payload, as tcpdump computes it), UDP's and ICMP's
words. What tcpdump prints past the length (its decoding of an application protocol) is left
out. With --once every packet is one line in both, so the two multisets must be equal; without
it each loopback packet is a line per socket, and each of them must be one of tcpdump's.
"""
import collections
import json
import os
import re
import signal
import socket
import subprocess
import time

from e2elib import (PKTRACE, PYTHON, Proc, capture, log, peer, pktrace, rand_name, rand_port,
                    run, run_pair, test)

TEXT_PEER = r"""
import argparse, ctypes, os, socket, struct, sys

p = argparse.ArgumentParser()
p.add_argument("mode")
p.add_argument("--name", required=True)
p.add_argument("--port", type=int, default=0)
p.add_argument("--count", type=int, default=3)
a = p.parse_args()
ctypes.CDLL(None, use_errno=True).prctl(15, a.name.encode(), 0, 0, 0)  # PR_SET_NAME
print("PID", os.getpid(), flush=True)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff


if a.mode == "udp":
    # A server and a client in one process: each datagram answered, one byte longer.
    for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        srv = socket.socket(fam, socket.SOCK_DGRAM)
        srv.bind((addr, a.port))
        cli = socket.socket(fam, socket.SOCK_DGRAM)
        for i in range(a.count):
            cli.sendto(b"q" * (5 + i), (addr, a.port))
            data, peer = srv.recvfrom(2048)
            srv.sendto(data + b"r", peer)
            cli.recvfrom(2048)
elif a.mode == "icmp":
    # Echo requests from raw sockets, identifier: our pid; the kernel answers them.
    ident = os.getpid() & 0xffff
    for fam, addr, proto, typ in ((socket.AF_INET, "127.0.0.1", socket.IPPROTO_ICMP, 8),
                                  (socket.AF_INET6, "::1", socket.IPPROTO_ICMPV6, 128)):
        s = socket.socket(fam, socket.SOCK_RAW, proto)
        s.settimeout(5)
        for seq in range(1, a.count + 1):
            body = b"pktrace" * seq
            hdr = struct.pack("!BBHHH", typ, 0, 0, ident, seq)
            if fam == socket.AF_INET:
                hdr = struct.pack("!BBHHH", typ, 0, csum(hdr + body), ident, seq)
            s.sendto(hdr + body, (addr, 0))
            while True:  # the raw socket also receives the request itself
                pkt = s.recv(4096)
                icmp = pkt[20:] if fam == socket.AF_INET else pkt
                if icmp[0] in (0, 129) and struct.unpack("!H", icmp[4:6])[0] == ident:
                    break
print("DONE", flush=True)
"""

# pktrace's text line: time, comm[pid], interface, direction, then tcpdump's part.
TEXT_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{6}) (.*)\[(\d+)\] +(\S+) +(In|Out) +(.*)$")
# The end of tcpdump's part that pktrace prints: the length (then maybe an application's).
THROUGH_LENGTH = re.compile(r"^(.*?, length \d+)")


def text_peer(w, mode, name, **opts):
    path = os.path.join(w, "text_peer.py")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(TEXT_PEER)
    cmd = [PYTHON, path, mode, "--name", name]
    for k, v in opts.items():
        cmd += ["--" + k, str(v)]
    proc = Proc(cmd, name="%s(%s)" % (mode, name))
    proc.peer_pid = int(proc.expect(r"^PID (\d+)").group(1))
    proc.expect(r"^DONE", timeout=20)
    assert proc.wait(10) == 0, "%s failed: %s" % (proc.name, proc.err.text())
    return proc


def through_length(s):
    m = THROUGH_LENGTH.match(s)
    return m.group(1) if m else s


def tcpdump_lines(pcap):
    """tcpdump's own lines for the capture, without the time and past the length."""
    r = run(["tcpdump", "-r", pcap, "-nn", "-S", "-tt"], timeout=30)
    out = []
    for line in r.stdout.splitlines():
        t, _, rest = line.partition(" ")
        out.append(through_length(rest))
    return out


def pktrace_lines(path):
    """(comm, pid, iface, direction, tcpdump's part) of each of pktrace's text lines."""
    out, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = TEXT_LINE.match(line.rstrip("\n"))
            if not m:
                bad.append(line)
                continue
            out.append((m.group(2), int(m.group(3)), m.group(4), m.group(5),
                        through_length(m.group(6))))
    assert not bad, "%d lines not in the text format, e.g. %r" % (len(bad), bad[:3])
    return out


def field_diff(a, b):
    """The first ', '-separated field where two lines differ, for the message."""
    fa, fb = a.split(", "), b.split(", ")
    for x, y in zip(fa, fb):
        if x != y:
            return "%r != %r" % (x, y)
    return "%d fields != %d fields" % (len(fa), len(fb))


def compare(ours, theirs):
    """ours: pktrace's parts; theirs: tcpdump's: the same multiset."""
    want = collections.Counter(theirs)
    got = collections.Counter(ours)
    missing, extra = want - got, got - want
    problems = []
    for line in list(extra)[:5]:
        near = min(want, key=lambda t: sum(x != y for x, y in zip(t, line)) + abs(
            len(t) - len(line)), default=None)
        problems.append("pktrace only: %s%s" % (line, "\n          closest of tcpdump's: %s (%s)"
                                                % (near, field_diff(line, near)) if near else ""))
    for line in list(missing)[:5]:
        problems.append("tcpdump only (x%d): %s" % (missing[line], line))
    assert not missing and not extra, "%d of pktrace's lines not tcpdump's, %d of tcpdump's " \
        "missing:\n        %s" % (sum(extra.values()), sum(missing.values()),
                                  "\n        ".join(problems))


def traffic(w, names, tport, uport):
    """TCP over IPv4 and IPv6 (payloads, options), UDP and ICMP echoes over both."""
    run_pair(names["srv"], names["cli"], tport, client_opts={"rounds": 3, "size": 300})
    run_pair(names["srv6"], names["cli6"], tport, bind="::1",
             client_opts={"rounds": 2, "size": 1000})
    text_peer(w, "udp", names["udp"], port=uport)
    return text_peer(w, "icmp", names["icmp"])


def udp_port():
    """A free UDP port that tcpdump decodes as no application protocol."""
    return rand_port(socket.SOCK_DGRAM, 40000, 46999)


def text_run(w, once):
    tport, uport = rand_port(), udp_port()
    names = {k: rand_name("tx") for k in ("srv", "cli", "srv6", "cli6", "udp", "icmp")}
    pcap = os.path.join(w, "lo.pcap")
    args = ["-e", "net_packet_tcp,net_packet_udp,net_packet_icmp,net_packet_icmpv6",
            "-s", "comm=" + ",".join(names.values())] + (["--once"] if once else [])
    with pktrace(args, w, fmt="text") as pt:
        # The pinger's id is its pid, known only once it runs: the capture takes every echo
        # on lo and the ones of other pingers are dropped below.
        with capture("lo", "tcp port %d or udp port %d or icmp or icmp6" % (tport, uport),
                     pcap) as cap:
            icmp = traffic(w, names, tport, uport)
            cap.stop()
        time.sleep(0.5)
        pt.proc.signal(signal.SIGINT)
        assert pt.proc.p.wait(timeout=15) == 0, "pktrace failed: %s" % pt.stderr()
    ident = "id %d," % (icmp.peer_pid & 0xffff)
    theirs = [l for l in tcpdump_lines(pcap) if "ICMP" not in l or ident in l]
    ours = pktrace_lines(pt.events_path)
    m = re.search(r"pktrace: (\d+) events written", pt.stderr())
    assert m and int(m.group(1)) == len(ours), "summary %r, %d lines" % (
        m and m.group(0), len(ours))
    kinds = collections.Counter(re.split(r"[ ,]", l.split(": ", 1)[-1])[0] for l in theirs)
    log("tcpdump: %d lines (%s); pktrace: %d lines" % (len(theirs), dict(kinds), len(ours)))
    assert kinds["Flags"] >= 20 and kinds["UDP"] == 12 and kinds["ICMP"] == 6 and \
        kinds["ICMP6"] == 6, "tcpdump saw too little of the traffic: %s" % dict(kinds)
    assert all(iface == "lo" for _, _, iface, _, _ in ours), "an interface other than lo"
    if once:
        compare([part for *_, part in ours], theirs)
    else:
        compare_sides(ours, theirs)
    return ours


def compare_sides(ours, theirs):
    """Without --once: every line of pktrace is one of tcpdump's, and every one of tcpdump's is
    pktrace's once per traced socket (TCP and UDP: Out at the sender and In at the receiver;
    an echo request: Out, and In at the raw socket, which takes every ICMP packet; a reply,
    which the kernel sends: In only)."""
    parts = [part for *_, part in ours]
    compare(sorted(set(parts)), sorted(set(theirs)))
    got = collections.Counter((part, d) for *_, d, part in ours)
    for line in theirs:
        reply = "echo reply" in line
        if not reply:
            assert got[(line, "Out")] >= 1, "no Out line for %s" % line
        assert got[(line, "In")] >= 1, "no In line for %s" % line


@test
def text_vs_tcpdump_once(w):
    """-F text --once: each packet one line whose tcpdump part is tcpdump's, exactly."""
    ours = text_run(w, once=True)
    dirs = collections.Counter(d for _, _, _, d, _ in ours)
    assert dirs["Out"] and dirs["In"], "--once: the echo replies (sent by the kernel, out of " \
        "scope) must be shown where they arrive: %s" % dict(dirs)


@test
def text_vs_tcpdump(w):
    """-F text: each loopback packet a line per socket, each line's tcpdump part tcpdump's."""
    text_run(w, once=False)


@test
def text_read_back(w):
    """-r FILE -F text -e network_events on tcpdump's file of TCP and UDP traffic: one line per
    packet, as live (a packet is one line whichever of its events are selected: here its IP
    event and its transport's), tcpdump's part tcpdump's own line."""
    tport, uport = rand_port(), udp_port()
    names = {k: rand_name("tr") for k in ("srv", "cli", "udp")}
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d or udp port %d" % (tport, uport), pcap) as cap:
        run_pair(names["srv"], names["cli"], tport, client_opts={"rounds": 3, "size": 300})
        text_peer(w, "udp", names["udp"], port=uport)
        cap.stop()
    out, png = os.path.join(w, "read.txt"), os.path.join(w, "read.pcapng")
    with open(out, "w") as f:
        r = subprocess.run([PKTRACE, "-r", pcap, "-F", "text", "-e", "network_events",
                            "-w", png], stdout=f, stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 0, "pktrace -r failed: %s" % r.stderr
    theirs = tcpdump_lines(pcap)
    ours = pktrace_lines(out)
    log("tcpdump: %d lines; pktrace -r -F text -e network_events: %d lines" % (
        len(theirs), len(ours)))
    assert len(theirs) >= 20, "scenario: tcpdump saw only %d packets" % len(theirs)
    compare([part for *_, part in ours], theirs)
    # The pcapng file beside the text names every event each packet was, not the line's one.
    r = run(["tshark", "-n", "-r", png, "-T", "fields", "-e", "frame.comment"], timeout=30)
    events = collections.Counter(
        next((l[len("events: "):] for l in c.split("\\n") if l.startswith("events: ")), None)
        for c in r.stdout.splitlines())
    log("pcapng comments' events: %s" % dict(events))
    assert sum(events.values()) == len(theirs) and set(events) <= {
        "net_packet_%s,net_packet_ipv%d" % (t, v) for t in ("tcp", "udp") for v in (4, 6)}, (
        "events in the comments of -r -F text -w: %s" % dict(events))


def read_back_lines(w, pcap):
    """tcpdump's lines for pcap, and pktrace's (pktrace_lines) from `-r pcap -F text`."""
    out = os.path.join(w, "read.txt")
    with open(out, "w") as f:
        r = subprocess.run([PKTRACE, "-r", pcap, "-F", "text"], stdout=f,
                           stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 0, "pktrace -r failed: %s" % r.stderr
    return tcpdump_lines(pcap), pktrace_lines(out)


# (kind, data) lists for text_tcp_options_read_back: every form of TCP Fast Open tcpdump prints
# its own way, RFC 6994 experiments by magic, and options tcpdump knows no name for, with and
# without data.
ODD_OPTIONS = [
    [(34, b"")],
    [(34, bytes.fromhex("0102030405060708"))],
    [(34, bytes.fromhex("01020304050607080910111213141516"))],
    [(34, bytes.fromhex("010203"))],
    [(34, bytes.fromhex("0102"))],
    [(34, bytes(range(18)))],
    [(254, bytes.fromhex("f989"))],
    [(254, bytes.fromhex("f9890102030405060708"))],
    [(254, bytes.fromhex("f989010203"))],
    [(254, bytes.fromhex("1234abcd"))],
    [(254, bytes.fromhex("4321"))],
    [(99, b"")],
    [(99, bytes.fromhex("00ff10"))],
    [(253, bytes.fromhex("f989"))],
    [("MSS", 1460), (34, b""), ("NOP", None), ("NOP", None), (200, b"\x01")],
    [("NOP", None), (77, bytes.fromhex("aabbccddeeff")), (254, bytes.fromhex("f98901020304"))],
    # MD5 (BGP sessions), the user timeout and TCP-AO at the lengths their RFCs give (tcpdump
    # reads a wrong-length MD5 or UTO past its end: pktrace shows those as unknown-K).
    [("NOP", None), ("NOP", None), (19, bytes(range(16))), ("MSS", 1400)],
    [(28, bytes.fromhex("0001"))],
    [(28, bytes.fromhex("ffff"))],
    [(28, bytes.fromhex("003c")), ("NOP", None), ("NOP", None), (28, bytes.fromhex("8001"))],
    [(29, b"")],
    [(29, bytes.fromhex("01"))],
    [(29, bytes.fromhex("0102"))],
    [(29, bytes.fromhex("ff000102"))],
    [(29, bytes(range(2, 38)))],
    # An experiment without room for its magic: tcpdump gives up there ("exp[bad opt]").
    [(254, b"")],
    [(254, b"\x01")],
    [("NOP", None), (254, b""), ("MSS", 1460)],
]

# (TCP flags, MPTCP option data) for text_tcp_options_read_back: each subtype in the forms
# tcpdump prints whole (which for MP_CAPABLE and MP_JOIN depends on the segment's flags), and
# forms it gives up on ("[bad opt]", the line ends there).
MPTCP_OPTIONS = [(f, [(30, bytes.fromhex(d))]) for f, d in [
    ("S", "0181"), ("S", "0100"), ("S", "0f00"), ("S", "0101" + "12" * 8),
    ("A", "0101" + "12" * 8 + "34" * 8), ("A", "0100" + "12" * 8 + "34" * 8 + "0064"),
    ("S", "1102" + "01020304" + "05060708"), ("SA", "1003" + "0102030405060708" + "090a0b0c"),
    ("A", "1000" + "aa" * 20),
    ("A", "2001" + "00000010"), ("A", "2003" + "0000000000000010"),
    ("A", "2005" + "00000010" + "00000020" + "00000001" + "0064"),
    ("A", "2005" + "00000010" + "00000020" + "00000001" + "0064" + "abcd"),
    ("FA", "201f" + "0000000000000010" + "0000000000000020" + "00000001" + "0064"),
    ("A", "2000"),
    ("A", "3001" + "0a000001"), ("A", "3005" + "0a000001" + "1f90"),
    ("A", "3002" + "0a000001" + "1122334455667788"),
    ("A", "3006" + "0a000001" + "1f90" + "1122334455667788"),
    ("A", "3003" + "20010db8000000000000000000000001"),
    ("A", "3000" + "20010db8000000000000000000000001" + "1f90"),
    ("A", "3003" + "20010db8000000000000000000000001" + "1122334455667788"),
    ("A", "3003" + "20010db8000000000000000000000001" + "1f90" + "1122334455667788"),
    ("A", "4001"), ("A", "40010203"), ("A", "5101"), ("A", "5000"), ("A", "51"),
    ("A", "6000" + "0000000000000064"), ("A", "7000" + "1122334455667788"), ("R", "8000"),
    ("R", "f1ab"),
    ("A", "0081"), ("S", "2001" + "00000010"), ("A", "1000"), ("A", "500007"), ("A", ""),
    ("A", "2001" + "0000"), ("A", "2005" + "00000010" + "000000"),
    ("A", "2005" + "00000010" + "00000020" + "0000"),
    ("A", "2005" + "00000010" + "00000020" + "00000001" + "00"),
    ("A", "2001" + "00000010" + "ff"), ("A", "2003" + "00000010"),
]] + [("A", [("NOP", None), (30, bytes.fromhex("2003" + "00000010")), ("MSS", 1460)])]


@test
def text_tcp_options_read_back(w):
    """-r -F text on SYNs carrying TCP Fast Open in both forms (a request, cookies of valid and
    invalid lengths), RFC 6994 experiments by magic, MD5 signatures, user timeouts, TCP-AO
    (with and without a MAC, and too short), every MPTCP subtype (and forms tcpdump gives up
    on) and options tcpdump has no name for (with and without data), built with scapy: each
    line's tcpdump part is tcpdump's own, and -F json lists each option it has no key for
    with the kind, length and data the case wrote."""
    try:
        from scapy.all import IP, TCP, wrpcap
    except ImportError as e:
        raise AssertionError("scapy (python3-scapy) is needed: %s" % e)
    pcap = os.path.join(w, "options.pcap")
    cases = [("S", o) for o in ODD_OPTIONS] + MPTCP_OPTIONS
    wrpcap(pcap, [IP(src="10.0.0.1", dst="10.0.0.2") /
                  TCP(sport=20000 + i, dport=80, flags=f, seq=1, options=o)
                  for i, (f, o) in enumerate(cases)])
    theirs, ours = read_back_lines(w, pcap)
    log("tcpdump: %d lines, e.g. %s" % (len(theirs), theirs[0]))
    assert len(theirs) == len(cases), "scenario: tcpdump read %d packets" % len(theirs)
    compare([part for *_, part in ours], theirs)
    # JSON's "unknown" options: each kind, length and data as the case wrote them (TFO in
    # either form has its own key).
    r = subprocess.run([PKTRACE, "-r", pcap, "-F", "json"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, "pktrace -r -F json failed: %s" % r.stderr
    got = {}
    for line in r.stdout.splitlines():
        ev = json.loads(line)
        args = {a["name"]: a["value"] for a in ev["args"]}
        got[args["metadata"]["src_port"]] = args.get("tcp_options", {}).get("unknown", [])
    bad = []
    for i, (_, opts) in enumerate(cases):
        want = [{"kind": k, "length": len(d) + 2, "data": d.hex()} for k, d in opts
                if isinstance(k, int) and k != 34 and not (k == 254 and d[:2] == b"\xf9\x89")]
        if got.get(20000 + i) != want:
            bad.append("port %d: %s, want %s" % (20000 + i, got.get(20000 + i), want))
    assert not bad, "JSON unknown options differ:\n  " + "\n  ".join(bad)


# Option bytes (hex) for text_raw_options_read_back: lengths below 2 or past the header, kinds
# of a fixed size with another length (tcpdump reads its size whatever the length says, then
# "[len N]"), repeats, and kinds pktrace's decoder does not read (echo, cc, scps).
RAW_OPTIONS = ["02000000", "02010101", "020405b408200000", "02030501", "03020701",
               "04030000", "080601020304050607080000", "130a0102030405060708" + "0101",
               "1c038001", "06060000002a0101", "0b0600000007" + "0101",
               "0d0600000009" + "0101", "1404ab05", "63060102", "020405b4020405b4",
               "1e0310" + "00", "01010101", "fe020101", "220301" + "00"]


@test
def text_raw_options_read_back(w):
    """-r -F text and -F table on SYNs whose options pktrace's decoder calls malformed or
    cannot name (RAW_OPTIONS, written byte for byte): the text line's tcpdump part is
    tcpdump's own, "[len N]" and "[bad opt]" where tcpdump puts them, and the table shows the
    same options."""
    try:
        from scapy.all import IP, TCP, Raw, wrpcap
    except ImportError as e:
        raise AssertionError("scapy (python3-scapy) is needed: %s" % e)
    pcap = os.path.join(w, "rawopts.pcap")
    pkts = []
    for i, h in enumerate(RAW_OPTIONS):
        b = bytes.fromhex(h)
        assert len(b) % 4 == 0, "case %d is not whole words" % i
        pkts.append(IP(src="10.0.0.1", dst="10.0.0.2") /
                    TCP(sport=30000 + i, dport=80, flags="S", seq=1, dataofs=5 + len(b) // 4) /
                    Raw(b + b"data"))
    wrpcap(pcap, pkts)
    theirs, ours = read_back_lines(w, pcap)
    log("tcpdump: %s" % "\n      ".join(theirs))
    assert len(theirs) == len(RAW_OPTIONS), "scenario: tcpdump read %d packets" % len(theirs)
    compare([part for *_, part in ours], theirs)
    r = subprocess.run([PKTRACE, "-r", pcap, "-F", "table"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, "pktrace -r -F table failed: %s" % r.stderr
    # The table shows options but padding (NOP, EOL), without tcpdump's ", length N".
    port = re.compile(r"10\.0\.0\.1\.(\d+) ")
    got = {int(port.search(l).group(1)): l[l.index(" options ["):]
           for l in r.stdout.splitlines() if " options [" in l}
    want = {int(port.search(t).group(1)): re.sub(r", length \d+$", "", t[t.index(" options ["):])
            for t in theirs if re.search(r"options \[(?!(nop,)*nop\])", t)}
    assert got == want, "the table's options differ from tcpdump's:\n  %s" % "\n  ".join(
        "port %d: %s, tcpdump's %s" % (k, got.get(k), want.get(k))
        for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k))


@test
def text_bad_data_offset_read_back(w):
    """-r -F text on TCP headers whose data offset is below 5 (their 20 bytes there), IPv4 and
    IPv6, with and without payload: each line's tcpdump part is tcpdump's own (the ports, then
    "tcp N [bad hdr length L - too short, < 20]"), and -F json gives the ports tshark reads
    with the decode error."""
    try:
        from scapy.all import IP, IPv6, TCP, Ether, Raw, wrpcap
    except ImportError as e:
        raise AssertionError("scapy (python3-scapy) is needed: %s" % e)
    pcap = os.path.join(w, "doff.pcap")
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    pkts = [eth / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=41000, dport=80, flags="S",
                                                           dataofs=3),
            eth / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=41001, dport=81, flags="PA",
                                                           dataofs=0) / Raw(b"q" * 30),
            eth / IPv6(src="fd00::1", dst="fd00::2") / TCP(sport=41002, dport=82, flags="S",
                                                           dataofs=4) / Raw(b"r" * 4)]
    wrpcap(pcap, pkts)
    theirs, ours = read_back_lines(w, pcap)
    log("tcpdump: %s" % theirs)
    assert len(theirs) == 3 and all("bad hdr length" in t for t in theirs), (
        "scenario: tcpdump read %s" % theirs)
    compare([part for *_, part in ours], theirs)
    r = subprocess.run([PKTRACE, "-r", pcap, "-F", "json"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, "pktrace -r -F json failed: %s" % r.stderr
    t = subprocess.run(["tshark", "-n", "-r", pcap, "-T", "fields", "-e", "tcp.srcport",
                        "-e", "tcp.dstport"], capture_output=True, text=True, timeout=30)
    want = [tuple(int(x) for x in l.split("\t")) for l in t.stdout.splitlines()]
    got = []
    for line in r.stdout.splitlines():
        meta = json.loads(line)["args"][0]["value"]
        got.append((meta["src_port"], meta["dst_port"], meta.get("decode_error")))
    assert got == [p + ("bad TCP data offset",) for p in want], (
        "JSON ports and errors %s, tshark's ports %s" % (got, want))


@test
def text_mptcp_read_back(w):
    """-r -F text on a real MPTCP exchange (an IPPROTO_MPTCP client and server on loopback:
    MP_CAPABLE in the handshake, DSS mappings and data ACKs, the DATA_FIN at the close): each
    line's tcpdump part is tcpdump's own, the MPTCP options decoded as tcpdump decodes them."""
    path = "/proc/sys/net/mptcp/enabled"
    assert os.path.exists(path), "this kernel has no MPTCP (net.mptcp.enabled missing)"
    with open(path) as f:
        was = f.read().strip()
    port = rand_port()
    sn, cn = rand_name("mps"), rand_name("mpc")
    pcap = os.path.join(w, "lo.pcap")
    try:
        with open(path, "w") as f:
            f.write("1")
        with capture("lo", "tcp port %d" % port, pcap) as cap:
            with peer("mptcpserver", sn, port, gap=0.1) as srv:
                srv.expect(r"^LISTENING")
                with peer("mptcpclient", cn, port, rounds=4, size=300, gap=0.1) as cli:
                    cli.expect(r"^DONE", 20)
                    assert cli.wait(10) == 0, "client failed: %s" % cli.err.text()
                srv.expect(r"^DONE", 20)
                assert srv.wait(10) == 0, "server failed: %s" % srv.err.text()
            time.sleep(0.5)  # the subflow's teardown after both closed
            cap.stop()
    finally:
        with open(path, "w") as f:
            f.write(was)
    theirs, ours = read_back_lines(w, pcap)
    mp = [line for line in theirs if "mptcp " in line]
    log("tcpdump: %d lines, %d with an MPTCP option, e.g. %s" % (
        len(theirs), len(mp), mp[:1]))
    kinds = {k for line in mp for k in ("capable", "dss") if "mptcp %s" % k in line or
             re.search(r"mptcp \d+ %s" % k, line)}
    assert kinds == {"capable", "dss"}, (
        "scenario: no MP_CAPABLE or no DSS option in tcpdump's lines: %s" % mp[:4])
    compare([part for *_, part in ours], theirs)
