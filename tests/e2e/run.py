#!/usr/bin/python3
"""End-to-end tests of ./pktrace against tcpdump + tshark, with real TCP traffic.

Usage (from the repository root, as root):  /usr/bin/python3 tests/e2e/run.py [-k NAME]...

Each test runs traffic between small peer processes (tests/e2e/peers.py), captures it with
tcpdump while pktrace traces it, and compares every pktrace event field by field with
tshark's dissection of the capture. The last line is "N passed, M failed" (", K skipped"
when some were skipped); the exit status is 0 only when none failed. With CI=true a
missing prerequisite fails instead of skipping.
"""
import argparse
import ctypes
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2elib import (FLAGS, PEERS, PKTRACE, PYTHON, REPO, TALLY, Pktrace, Proc,  # noqa: E402
                    bpf_ids_held_by, canonical_ip, capture, cgroup2_mount, cgroup_dir, check_summary, describe,
                    expect_both_sides, expect_local_addrs, expect_one_side, kill_leftovers, log,
                    match, netns, own_cgroup_ino, parse_events, peer, pktrace, possible_cpus,
                    public_copy, rand_name, rand_port, rand_tag, read_pcap, release,
                    ring_bytes_each, run, run_pair)

TEST_TIMEOUT = 60     # seconds per test
SUITE_BUDGET = 840    # seconds for the whole suite (< 14 min; 136 tests took 533-567 s of their own)
CI = os.environ.get("CI", "").lower() == "true"

from e2elib import TESTS, Skip, test  # noqa: E402


class TestTimeout(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Shared pieces

def owner(info, **extra):
    """What the events of a peer's sockets must say about their process."""
    o = {"pid": info["pid"], "name": info["name"], "tid": info["pid"], "ppid": os.getpid(),
         "uid": 0, "container": "", "host": socket.gethostname(),
         "cgroup": own_cgroup_ino(os.getpid())}
    o.update(extra)
    return o


def comm_scope(*names):
    return ["-s", "comm=" + ",".join(names)]


def flag_counts(items):
    return {f: sum(1 for d in items if d[f]) for f in FLAGS}


# ---------------------------------------------------------------------------------------------
# The tests

@test
def harness_selfcheck(w):
    """tcpdump + tshark work and read_pcap agrees with a plain pcap parse (no pktrace)."""
    import struct
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap:
        srv, cli = run_pair(sn, cn, port, client_opts={"rounds": 3, "size": 150})
        cap.stop()
    pkts = read_pcap(pcap)
    with open(pcap, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    assert magic in (0xa1b2c3d4, 0xa1b23c4d), "unexpected pcap magic %#x" % magic
    off, raw = 24, []
    while off < len(data):
        _, _, caplen, _ = struct.unpack("<IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        tcp = ip[ihl:]
        sport, dport, seq, ack, offflags, win, csum, urg = struct.unpack("!HHIIHHHH", tcp[:20])
        raw.append({"src_port": sport, "dst_port": dport, "seq": seq, "ack": ack,
                    "dataOffset": offflags >> 12, "flags": offflags & 0x1ff, "window": win,
                    "checksum": csum, "urgent": urg,
                    "packet_len": struct.unpack("!H", ip[2:4])[0]})
        # The options as read_pcap names them, from a plain walk of the option bytes.
        opt, i = tcp[20:(offflags >> 12) * 4], 0
        o = {"opt_mss": None, "opt_wscale": None, "opt_sack_perm": None, "opt_ts_val": None,
             "opt_ts_ecr": None, "opt_sack_blocks": None}
        while i < len(opt) and opt[i] != 0:
            if opt[i] == 1:
                i += 1
                continue
            kind, body = opt[i], opt[i + 2:i + opt[i + 1]]
            if kind == 2:
                o["opt_mss"] = struct.unpack("!H", body)[0]
            elif kind == 3:
                o["opt_wscale"] = body[0]
            elif kind == 4:
                o["opt_sack_perm"] = True
            elif kind == 8:
                o["opt_ts_val"], o["opt_ts_ecr"] = struct.unpack("!II", body)
            elif kind == 5:
                e = struct.unpack("!%dI" % (len(body) // 4), body)
                o["opt_sack_blocks"] = tuple(zip(e[::2], e[1::2]))
            i += opt[i + 1]
        raw[-1].update(o)
    assert len(raw) == len(pkts) >= 9, "pcap has %d frames, tshark %d" % (len(raw), len(pkts))
    for r, p in zip(raw, pkts):
        bits = sum(1 << i for i, f in enumerate(FLAGS) if p[f])
        for k in r:
            got = bits if k == "flags" else p[k]
            assert got == r[k], "frame %d %s: tshark %r, raw %r" % (p["frame"], k, got, r[k])
    ports = {cli["port"], port}
    assert all({p["src_port"], p["dst_port"]} == ports for p in pkts), "foreign packets"
    assert sum(1 for p in pkts if p["opt_mss"] and p["opt_ts_val"] is not None) >= 2, \
        "no SYN with MSS and timestamps: the options are not read"
    log("tcpdump/tshark agree with a raw parse on %d packets" % len(pkts))


@test
def ipv4_loopback(w):
    """Client and server processes on 127.0.0.1: every packet, both directions, attribution."""
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(["-e", "net_packet_tcp"] + comm_scope(sn, cn), w) as pt:
        srv, cli = run_pair(sn, cn, port, client_opts={"rounds": 4, "size": 300})
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    m = match(expect_both_sides(pkts, "lo", {port: owner(srv), cli["port"]: owner(cli)}),
              events)
    m.assert_exact("ipv4 loopback events")
    assert any(p["payload"] for p in pkts), "no data packets on the wire"


@test
def ipv6_veth_netns(w):
    """IPv6 over a veth pair between two network namespaces; iface names are the veths."""
    tag = rand_tag()
    na, nb = "pkt-a-" + tag, "pkt-b-" + tag
    va, vb = "pva" + tag, "pvb" + tag
    ipa, ipb = "fd00:0:0:1::a", "fd00:0:0:1::b"
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pa, pb = os.path.join(w, "a.pcap"), os.path.join(w, "b.pcap")
    with netns(na), netns(nb):
        run(["ip", "link", "add", va, "netns", na, "type", "veth", "peer", "name", vb,
             "netns", nb])
        for ns, dev, ip in ((na, va, ipa), (nb, vb, ipb)):
            run(["ip", "-n", ns, "addr", "add", ip + "/64", "dev", dev, "nodad"])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        # Static neighbours: no packet waits for neighbour discovery between the cgroup hook
        # and the wire, so pktrace's and tcpdump's timestamps of a packet stay close.
        for ns, dev, peer_ns, peer_dev, peer_ip in ((na, va, nb, vb, ipb), (nb, vb, na, va, ipa)):
            mac = json.loads(run(["ip", "-n", peer_ns, "-j", "link", "show", peer_dev]).stdout
                             )[0]["address"]
            run(["ip", "-n", ns, "neigh", "replace", peer_ip, "lladdr", mac, "dev", dev,
                 "nud", "permanent"])
        with capture(va, "tcp port %d" % port, pa, ns=na) as ca, \
                capture(vb, "tcp port %d" % port, pb, ns=nb) as cb, \
                pktrace(["--events", "net_packet_tcp"] + comm_scope(sn, cn), w) as pt:
            with peer("server", sn, port, ns=nb, bind=ipb) as srv:
                srv.expect(r"^LISTENING")
                with peer("client", cn, port, ns=na, connect=ipb, rounds=4, size=400) as cli:
                    lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                    assert cli.wait(20) == 0, "client failed: %s" % cli.err.text()
                assert srv.wait(20) == 0, "server failed: %s" % srv.err.text()
            ca.stop()
            cb.stop()
            events = pt.stop()
    srv_o = owner({"pid": srv.peer_pid, "name": sn})
    cli_o = owner({"pid": cli.peer_pid, "name": cn})
    for o in (srv_o, cli_o):
        del o["ppid"]  # `ip netns exec` may fork: the parent is not necessarily us
    pkts_a, pkts_b = read_pcap(pa), read_pcap(pb)
    assert all(p["family"] == 6 for p in pkts_a + pkts_b), "non-IPv6 packets captured"
    assert {p["src_ip"] for p in pkts_a} == {ipa, ipb}, "tshark addresses %s" % (
        {p["src_ip"] for p in pkts_a})
    exp = expect_local_addrs(pkts_a, va, {ipa}, {lport: cli_o}) + \
        expect_local_addrs(pkts_b, vb, {ipb}, {port: srv_o})
    texts = {e[k] for e in events for k in ("src_ip", "dst_ip")}
    assert texts <= {ipa, ipb} and all(t == canonical_ip(t) for t in texts), (
        "IPv6 addresses not in canonical (RFC 5952) text: %s" % sorted(texts))
    m = match(exp, events)
    m.assert_exact("ipv6 veth events")


# One thread, pinned to one CPU, with a listener in namespace B and a client in namespace A
# (setns between the two), a few round trips over the veth between them.
TWO_NETNS_SCRIPT = r"""
import ctypes, os, socket, sys
name, na, nb, ipb, port = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, name.encode(), 0, 0, 0)
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
def enter(ns):
    fd = os.open("/run/netns/" + ns, os.O_RDONLY)
    if libc.setns(fd, 0x40000000):
        sys.exit("setns %s: %s" % (ns, os.strerror(ctypes.get_errno())))
    os.close(fd)
enter(nb)
ls = socket.socket()
ls.bind((ipb, port))
ls.listen(1)
enter(na)
c = socket.create_connection((ipb, port))
s = ls.accept()[0]
print("CONNECTED %d" % c.getsockname()[1], flush=True)
for i in range(3):
    c.sendall(b"ping %d" % i)
    assert s.recv(64) == b"ping %d" % i
    s.sendall(b"pong %d" % i)
    assert c.recv(64) == b"pong %d" % i
c.close()
s.close()
ls.close()
"""


@test
def same_ifindex_two_netns(w):
    """One thread owns both ends of a TCP connection between two namespaces whose veths have
    the same ifindex (7) and different names, on one CPU: every event names the veth of its own
    namespace (an owner definition is not reused for another device with the same index)."""
    tag = rand_tag()
    na, nb = "pkt-ia-" + tag, "pkt-ib-" + tag
    va, vb = "pia" + tag, "pib" + tag
    ipa, ipb = "10.78.0.1", "10.78.0.2"
    port = rand_port()
    name = rand_name("e2i")
    pa, pb = os.path.join(w, "a.pcap"), os.path.join(w, "b.pcap")
    with netns(na), netns(nb):
        run(["ip", "link", "add", va, "netns", na, "index", "7", "type", "veth", "peer", "name",
             vb, "netns", nb, "index", "7"])
        for ns, dev, ip in ((na, va, ipa), (nb, vb, ipb)):
            run(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        idx = {json.loads(run(["ip", "-n", ns, "-j", "link", "show", dev]).stdout)[0]["ifindex"]
               for ns, dev in ((na, va), (nb, vb))}
        assert idx == {7}, "the veths' ifindexes: %s" % idx
        with capture(va, "tcp port %d" % port, pa, ns=na) as ca, \
                capture(vb, "tcp port %d" % port, pb, ns=nb) as cb, \
                pktrace(["--events", "net_packet_tcp"] + comm_scope(name), w) as pt:
            with Proc([PYTHON, "-c", TWO_NETNS_SCRIPT, name, na, nb, ipb, str(port)],
                      name="two-netns") as p:
                lport = int(p.expect(r"^CONNECTED (\d+)").group(1))
                assert p.wait(20) == 0, "scenario failed: %s" % p.err.text()
            time.sleep(0.3)
            ca.stop()
            cb.stop()
            events = pt.stop()
    o = owner({"pid": p.pid, "name": name})
    pkts_a, pkts_b = read_pcap(pa), read_pcap(pb)
    assert len(pkts_a) >= 10 and len(pkts_b) == len(pkts_a), "captured %d and %d packets" % (
        len(pkts_a), len(pkts_b))
    log("ifaces: %s" % sorted({(e["iface"], e["direction"], e["src_port"]) for e in events}))
    exp = expect_local_addrs(pkts_a, va, {ipa}, {lport: o}) + \
        expect_local_addrs(pkts_b, vb, {ipb}, {port: o})
    match(exp, events).assert_exact("events of one thread on two veths with one ifindex")


@test
def tcp_flags(w):
    """SYN, SYN-ACK, PSH, URG (+urgent pointer), FIN, RST, ECE, CWR all decoded exactly."""
    ns = "pkt-f-" + rand_tag()
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with netns(ns):
        run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_ecn=1"])
        with capture("lo", "tcp port %d" % port, pcap, ns=ns) as cap, \
                pktrace(comm_scope(sn, cn), w) as pt:
            with peer("server", sn, port, ns=ns, accept_count=2) as srv:
                srv.expect(r"^LISTENING")
                ports = []
                for opts in ({"rounds": 2, "oob": True, "close": "graceful"},
                             {"rounds": 1, "close": "rst"}):
                    with peer("client", cn, port, ns=ns, **opts) as cli:
                        ports.append(int(cli.expect(r"^CONNECTED (\d+)").group(1)))
                        assert cli.wait(20) == 0, "client failed: %s" % cli.err.text()
                srv.expect(r"^RESET", 10)
                assert srv.wait(20) == 0, "server failed: %s" % srv.err.text()
            cap.stop()
            events = pt.stop()
    pkts = read_pcap(pcap)
    wire = flag_counts(pkts)
    want = ("SYN", "ACK", "PSH", "FIN", "RST", "URG", "ECE", "CWR")
    missing_on_wire = [f for f in want if not wire[f]]
    assert not missing_on_wire, "scenario broken: tshark saw no %s (%s)" % (
        missing_on_wire, wire)
    assert any(p["urgent"] for p in pkts), "scenario broken: no urgent pointer on the wire"
    m = match(expect_both_sides(pkts, "lo"), events)
    m.assert_exact("flag events")
    got = flag_counts(events)
    log("flags seen in pktrace events: %s" % ", ".join("%s=%d" % kv for kv in got.items()))
    absent = [f for f in want if not got[f]]
    assert not absent, "flags never seen in pktrace events: %s" % absent
    assert any(e["urgent"] for e in events), "no event with a non-zero urgent pointer"
    syn = [e for e in events if e["SYN"] and not e["ACK"]]
    synack = [e for e in events if e["SYN"] and e["ACK"]]
    assert len(syn) == 4 and all(e["ECE"] and e["CWR"] for e in syn), (
        "want 4 ECN SYN events (2 connections x egress/ingress) with ECE+CWR: %s" % (
            [describe(e) for e in syn]))
    assert len(synack) == 4 and all(e["ECE"] and not e["CWR"] for e in synack), (
        "want 4 ECN SYN-ACK events with ECE only: %s" % [describe(e) for e in synack])


@test
def timewait_both_sides(w):
    """Plain close() on each side in turn (client first, then server first): every packet,
    the peer's FIN reaching the timewait socket and the final ACK it sends included, reported
    once and attributed to the connection's last owner."""
    timewait_scenario(w)


@test
def timewait_filter_rotating(w):
    """The same with the kernel side's summary of closed connections rotated every 20 ms (30 s
    by default): the FIN that reaches a timewait socket 0.5 s after its close arrives many
    generations later, and is still emitted only if every rotation refilled the new
    generation from the tables before clearing the old one."""
    os.environ["PKTRACE_TEST_FILTER_PERIOD_MS"] = "20"
    try:
        timewait_scenario(w)
    finally:
        del os.environ["PKTRACE_TEST_FILTER_PERIOD_MS"]


@test
def timewait_filter_rotating_one_side(w):
    """The same rotations with only the clients traced: the untraced server's close, 0.5 s
    after the client's, remembers nothing, so the FIN it sends to the client's timewait socket
    is found only if the rotations kept the summary's "not empty" mark with the refilled
    bits (a generation's mark cleared with its words, none set by the refill: the device
    path would skip every lookup and miss it)."""
    os.environ["PKTRACE_TEST_FILTER_PERIOD_MS"] = "20"
    try:
        timewait_scenario(w, servers_traced=False)
    finally:
        del os.environ["PKTRACE_TEST_FILTER_PERIOD_MS"]


@test
def timewait_port_reused(w):
    """A client connecting three times in a row from the same port while the server's side of
    its last connection is still in timewait (the server closes first; the new SYN takes the
    timewait socket over): every packet reported once and attributed, the FIN that reaches
    each connection's timewait socket 0.5 s after its close included. Each SYN forgets the
    last connection's remembered owner, whose bit in the kernel side's summary stays, and
    notes the addresses as live again so their packets skip the tables; each close has to
    remember them again, or the FIN that only the device sees is missed."""
    sn, cn = rand_name("e2s"), rand_name("e2c")
    size, rounds, conns = 100, 2, 3
    port, lport = rand_port(), rand_port()
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, pktrace(comm_scope(sn, cn), w) as pt:
        srv, cli = run_pair(sn, cn, port,
                            client_opts={"rounds": rounds, "size": size, "close": "plain",
                                         "wait_eof": True, "plain_delay": 0.5,
                                         "local_port": lport, "repeat": conns},
                            server_opts={"close": "plain", "close_after_bytes": rounds * size,
                                         "accept_count": conns})
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    assert cli["port"] == lport, "scenario broken: the client is not on port %d" % lport
    syns = [p for p in pkts if p["SYN"] and not p["ACK"]]
    assert len(syns) == conns, "scenario broken: want %d SYNs: %s" % (
        conns, [describe(p) for p in syns])
    # The client's FIN of each connection reaches the server's timewait socket.
    fins = [p for p in pkts if p["FIN"] and p["src_port"] == lport]
    assert len(fins) >= conns, "scenario broken: want %d client FINs" % conns
    exp = expect_both_sides(pkts, "lo", {port: owner(srv), lport: owner(cli)})
    m = match(exp, events)
    m.assert_exact("events of %d connections on one pair of ports" % conns)
    tw = [e for e in exp if e["frame"] in {p["frame"] for p in fins}
          and e["direction"] == "ingress"]
    log("all %d events matched, the %d FINs reaching the server's timewait socket included" %
        (len(exp), len(tw)))


def timewait_scenario(w, servers_traced=True):
    sn, cn = rand_name("e2s"), rand_name("e2c")
    size, rounds = 100, 2
    p1, p2 = rand_port(), rand_port()
    pcap = os.path.join(w, "lo.pcap")
    scope = comm_scope(sn, cn) if servers_traced else comm_scope(cn)
    with capture("lo", "tcp port %d or tcp port %d" % (p1, p2), pcap) as cap, \
            pktrace(scope, w) as pt:
        # p1: the client closes first; the server closes 0.5 s after its EOF.
        srv1, cli1 = run_pair(sn, cn, p1, client_opts={"rounds": rounds, "close": "plain"},
                              server_opts={"close": "plain", "plain_delay": 0.5})
        # p2: the server closes right after echoing; the client 0.5 s after its EOF.
        srv2, cli2 = run_pair(sn, cn, p2,
                              client_opts={"rounds": rounds, "size": size, "close": "plain",
                                           "wait_eof": True, "plain_delay": 0.5},
                              server_opts={"close": "plain", "close_after_bytes": rounds * size})
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    owners = {p1: owner(srv1), cli1["port"]: owner(cli1), p2: owner(srv2),
              cli2["port"]: owner(cli2)}
    if servers_traced:
        exp = expect_both_sides(pkts, "lo", owners)
    else:
        exp = expect_one_side(pkts, "lo", {cli1["port"], cli2["port"]}, owners)
    timewait = []
    for first, second in ((cli1["port"], p1), (p2, cli2["port"])):
        conn = [p for p in pkts if {p["src_port"], p["dst_port"]} == {first, second}]
        fin1 = [p for p in conn if p["FIN"] and p["src_port"] == first]
        fin2 = [p for p in conn if p["FIN"] and p["src_port"] == second]
        # A FIN may be sent twice (tail loss probe while the peer delays its ACK).
        assert fin1 and fin2 and fin1[0]["frame"] < fin2[0]["frame"], (
            "scenario broken: port %d must send the first FIN: %s" % (
                first, [describe(p) for p in fin1 + fin2]))
        acked = [p for p in conn if p["src_port"] == second and p["ACK"]
                 and p["ack"] == (fin1[0]["seq"] + 1) % 2**32]
        assert acked and acked[0]["frame"] < fin2[0]["frame"], (
            "scenario broken: the first FIN was not acknowledged before the second")
        last = [p for p in conn if p["frame"] > fin2[0]["frame"] and p["src_port"] == first
                and p["ACK"] and not (p["FIN"] or p["SYN"] or p["RST"])
                and p["ack"] == (fin2[0]["seq"] + 1) % 2**32]
        assert last, "scenario broken: no final ACK from port %d" % first
        tw = [e for e in exp if (e["frame"] in {p["frame"] for p in fin2}
                                 and e["direction"] == "ingress")
              or (e["frame"] in {p["frame"] for p in last} and e["direction"] == "egress")]
        log("timewait side port %d (%s closed first):" % (first, "client" if first ==
                                                           cli1["port"] else "server"))
        for e in tw:
            log("  %s  <- %s" % (describe(e), "the peer's FIN reaching the timewait socket"
                                 if e["FIN"] else "the final ACK sent from the timewait socket"))
        timewait += tw
    m = match(exp, events)
    m.assert_exact("events of two plain closes")
    log("all %d events matched, the %d timewait events included" % (len(exp), len(timewait)))


@test
def attribution_fork_accept(w):
    """Listener created by a parent, accept() in a forked worker, the client sends at once:
    every server-side packet, handshake and data that arrive before the worker's first read
    included, belongs to the worker."""
    port = rand_port()
    sn, wn, cn = rand_name("e2s"), rand_name("e2w"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(comm_scope(sn, wn, cn), w) as pt:
        with peer("forkserver", sn, port, worker_name=wn, io_delay=0.4) as srv:
            srv.expect(r"^LISTENING")
            worker = int(srv.expect(r"^WORKER (\d+)").group(1))
            with peer("client", cn, port, rounds=3) as cli:
                lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                assert cli.wait(20) == 0, "client failed: %s" % cli.err.text()
            t_io = float(srv.expect(r"^FIRSTIO ([\d.]+)").group(1))
            assert srv.wait(20) == 0, "server failed: %s" % srv.err.text()
        cap.stop()
        events = pt.stop()
    parent = srv.peer_pid
    assert worker != parent
    pkts = read_pcap(pcap)
    from t_attribution import check_held_scenario, check_taken
    n_early = check_held_scenario(pkts, port, t_io)
    log("server-side packets from the SYN to the worker's first read -> worker %d, not the "
        "listener's owner %d" % (worker, parent))
    worker_o = owner({"pid": worker, "name": wn}, ppid=parent)
    client_o = owner({"pid": cli.peer_pid, "name": cn})
    exp = expect_both_sides(pkts, "lo", {port: worker_o, lport: client_o})
    m = match(exp, events)
    m.assert_exact("fork/accept events")
    wrong = [e for e in events if e["processId"] == parent]
    assert not wrong, "%d events of the listener's owner %d" % (len(wrong), parent)
    check_taken(pt.stderr(), n_early)


@test
def scope_comm(w):
    """-s comm=NAME1 with two pairs running: only NAME1's events, all of them."""
    p1, p2 = rand_port(), rand_port()
    n1, n2 = rand_name("e2one"), rand_name("e2two")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d or tcp port %d" % (p1, p2), pcap) as cap, \
            pktrace(["--scope", "comm=" + n1], w) as pt:
        with peer("server", n1, p1) as s1, peer("server", n2, p2) as s2:
            s1.expect(r"^LISTENING")
            s2.expect(r"^LISTENING")
            with peer("client", n1, p1, rounds=3) as c1, peer("client", n2, p2, rounds=3) as c2:
                for c in (c1, c2):
                    assert c.wait(20) == 0, "client failed: %s" % c.err.text()
            for s in (s1, s2):
                assert s.wait(20) == 0, "server failed: %s" % s.err.text()
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    pkts1 = [p for p in pkts if p1 in (p["src_port"], p["dst_port"])]
    pkts2 = [p for p in pkts if p2 in (p["src_port"], p["dst_port"])]
    assert pkts2, "scenario broken: the other pair sent nothing"
    others = [e for e in events if e["processName"] != n1
              or p2 in (e["src_port"], e["dst_port"])]
    assert not others, "%d events outside -s comm=%s, e.g. %s" % (
        len(others), n1, [describe(e) for e in others[:5]])
    log("the other pair's %d wire packets produced no event" % len(pkts2))
    m = match(expect_both_sides(pkts1, "lo"), events)
    m.assert_exact("comm-scoped events")
    names = {e["processName"] for e in events}
    assert names == {n1}, "process names %s" % names


@test
def command_mode(w):
    """pktrace -- CMD: traces CMD's forked child, not the outside server; exits with CMD's status."""
    port = rand_port()
    sn, pn, chn = rand_name("e2s"), rand_name("e2p"), rand_name("e2k")
    pcap = os.path.join(w, "lo.pcap")
    out = os.path.join(w, "events.jsonl")
    with capture("lo", "tcp port %d" % port, pcap) as cap:
        with peer("server", sn, port) as srv:
            srv.expect(r"^LISTENING")
            cmd = [PKTRACE, "-F", "json", "-o", out, "--", PYTHON, PEERS, "forkclient",
                   "--name", pn, "--child-name", chn, "--port", str(port), "--rounds", "3",
                   "--exit-code", "7"]
            with Proc(cmd, name="pktrace -- forkclient") as pt:
                rc = pt.wait(40)
                stdout = pt.out.text()
                stderr = pt.err.text()
            assert srv.wait(20) == 0, "server failed: %s" % srv.err.text()
        cap.stop()
    log("pktrace exit status %s; stderr: %s" % (rc, stderr.replace("\n", " | ")[:300]))
    assert rc == 7, "pktrace exited %s, the command exited 7; stderr: %s" % (rc, stderr)
    assert "pktrace: ready" in stderr, "no 'pktrace: ready' on stderr: %r" % stderr
    foreign = [l for l in stdout.splitlines()
               if not re.match(r"^(PARENT|CHILD|CONNECTED|DONE|CHILD_EXIT)\b", l)]
    assert not foreign, "pktrace wrote to stdout although -o was given: %r" % foreign[:3]
    m_parent = re.search(r"^PARENT (\d+)", stdout, re.M)
    m_child = re.search(r"^CHILD (\d+)", stdout, re.M)
    m_lport = re.search(r"^CONNECTED (\d+)", stdout, re.M)
    assert m_parent and m_child and m_lport, "command output lost: %r" % stdout
    cmd_pid, child, lport = (int(m.group(1)) for m in (m_parent, m_child, m_lport))
    assert child != cmd_pid
    events, problems = parse_events(out)
    assert not problems, "malformed events: %s" % problems[:5]
    check_summary(stderr, len(events))
    log("%d events in %s" % (len(events), out))
    srv_ev = [e for e in events if e["processId"] == srv.peer_pid]
    assert not srv_ev, "%d events of the untraced server %d" % (len(srv_ev), srv.peer_pid)
    assert any(e["processId"] == child for e in events), "no event of the child %d: %s" % (
        child, sorted({(e["processId"], e["processName"]) for e in events}))
    pkts = read_pcap(pcap)
    child_o = owner({"pid": child, "name": chn}, ppid=cmd_pid)
    m = match(expect_one_side(pkts, "lo", {lport}, {lport: child_o}), events)
    m.assert_exact("command-mode events")


@test
def command_signals(w):
    """With a command, SIGTERM to pktrace alone is passed on to the command and pktrace exits
    with its status; a stop signal while pktrace is still loading never runs the command."""
    out = os.path.join(w, "events.jsonl")
    with Proc([PKTRACE, "-F", "json", "-o", out, "--", "sleep", "30"], name="pktrace") as pt:
        pt.expect_err(r"pktrace: ready", timeout=20)
        started = time.monotonic()
        pt.signal(signal.SIGTERM)
        rc = pt.wait(10)
        took = time.monotonic() - started
        err = pt.err.text()
    log("SIGTERM during '-- sleep 30': exit %d after %.1fs" % (rc, took))
    assert rc == 128 + signal.SIGTERM, "want exit %d (the command killed by the forwarded " \
        "SIGTERM), got %d; stderr: %s" % (128 + signal.SIGTERM, rc, err)
    assert took < 5, "pktrace took %.1fs to stop after SIGTERM" % took
    assert re.search(r"events written", err), "no summary on stderr: %r" % err

    mark = os.path.join(w, "ran")
    with Proc([PKTRACE, "--", "sh", "-c", "touch " + mark], name="pktrace") as pt:
        # pktrace is still loading its programs (about 0.3 s): signal it at once
        pt.signal(signal.SIGTERM)
        rc = pt.wait(20)
        err = pt.err.text()
    log("SIGTERM while loading: exit %d, command ran: %s, stderr %r" % (
        rc, os.path.exists(mark), err.strip()[-200:]))
    assert "pktrace: ready" not in err, "scenario broken: pktrace was ready within 20 ms"
    assert not os.path.exists(mark), "the command ran although pktrace was stopped while loading"
    assert rc != 0, "pktrace exited 0 after being stopped while loading"

    # Without a command, a stop in the middle of loading (the verifier gives up when a signal
    # is pending) is one line and 128 + the signal: not libbpf's log and a load error.
    in_load = 0
    for delay in (0.15, 0.3, 0.5):
        with Proc([PKTRACE, "-F", "text", "-o", "/dev/null", "tcp port 1"],
                  name="pktrace") as pt:
            time.sleep(delay)
            pt.signal(signal.SIGTERM)
            rc = pt.wait(20)
            err = pt.err.text()
        lines = err.strip().splitlines()
        log("SIGTERM %.2fs after the start: exit %d, %d lines on stderr, the last %r" % (
            delay, rc, len(lines), lines[-1] if lines else ""))
        if "pktrace: ready" in err:
            continue
        in_load += 1
        assert rc == 128 + signal.SIGTERM and len(lines) == 1 and re.match(
            r"pktrace: stopped by signal 15 \(Terminated\) while loading", lines[0]), (
            "stopped while loading: exit %d, stderr %d lines: %r" % (rc, len(lines),
                                                                    err[-400:]))
    assert in_load, "scenario broken: pktrace was ready within 0.15 s"

@test
def bad_input(w):
    """Bad options exit 2 with one line; unprivileged, /dev/full and a closed pipe fail cleanly."""
    failures = []

    def check(label, cond, detail):
        log("%s: %s (%s)" % (label, "ok" if cond else "WRONG", detail))
        if not cond:
            failures.append("%s: %s" % (label, detail))

    for args in (["-F", "xml"], ["-s", "pid=abc"], ["-e", "bogus"]):
        r = run([PKTRACE] + args, check=False, timeout=10)
        lines = r.stderr.splitlines()
        check("pktrace " + " ".join(args), r.returncode == 2 and len(lines) == 1 and not r.stdout,
              "exit %d, stderr %r, stdout %r" % (r.returncode, r.stderr, r.stdout[:100]))

    # A command that cannot run: the shell's statuses, 126 found but not runnable, 127 not found.
    for cmd, want in (("/etc/passwd", 126), ("/nonexistent/" + rand_name("e2cmd"), 127)):
        r = run([PKTRACE, "-s", "comm=" + rand_name("e2none"), "--", cmd], check=False,
                timeout=20)
        check("-- " + cmd, r.returncode == want and "cannot run" in r.stderr,
              "exit %d (want %d), stderr %r" % (r.returncode, want, r.stderr[-300:]))

    try:
        r = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                 public_copy(PKTRACE, w),
                 "-s", "comm=" + rand_name("e2none")], check=False, timeout=10)
        ok = r.returncode > 0 and re.search(r"root|CAP_BPF", r.stderr, re.I)
        check("unprivileged", bool(ok), "exit %d, stderr %r" % (r.returncode, r.stderr[:300]))
    except subprocess.TimeoutExpired:
        check("unprivileged", False, "still running after 10s as uid 65534")

    def adds_up(err):
        """The summary of a failed output: some events not written, and every packet seen
        either written or counted lost (none twice)."""
        sm = re.search(SUMMARY_RX, err)
        if not sm:
            return False, "no summary"
        W, P, O, N, L, R, D, M, U = (int(x) for x in sm.groups())
        return U > 0 and L == R + D + M + U and W + L == P - O - N, sm.group(0)

    # Output to /dev/full: a write error, reported, non-zero exit, no crash. The reader is
    # stopped while the traffic runs, so that its first pass has more events than its buffer
    # holds: the write that fails is one made while events are handed over, not the flush
    # after a pass.
    port, name = rand_port(), rand_name("e2full")
    pt = Pktrace(["-o", "/dev/full", "-s", "comm=" + name], w, tag="full")
    try:
        pt.wait_ready()
        pt.proc.signal(signal.SIGSTOP)
        try:
            run_pair(name, name, port, client_opts={"rounds": 3000, "size": 64,
                                                    "nodelay": True})
        finally:
            pt.proc.signal(signal.SIGCONT)
        deadline = time.monotonic() + 5
        while pt.proc.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        self_exit = not pt.proc.alive()
        pt.proc.signal(signal.SIGINT)
        rc = pt.proc.wait(10)
        err = pt.stderr()
        check("-o /dev/full", rc > 0 and re.search(r"write|no space|ENOSPC", err, re.I),
              "exit %s (%s), stderr %r" % (rc, "by itself" if self_exit else "after SIGINT",
                                           err[-300:]))
        check("-o /dev/full: the summary adds up", *adds_up(err))
    except AssertionError as e:
        check("-o /dev/full", False, str(e))
    finally:
        pt.close()

    # stdout is a pipe whose reader goes away: pktrace must end by itself, without a signal.
    port, name = rand_port(), rand_name("e2pipe")
    head = None
    pt = Pktrace(["-s", "comm=" + name], w, tag="pipe", out="pipe", fmt=None)
    try:
        head = subprocess.Popen(["head", "-n", "1"], stdin=pt.proc.p.stdout,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        pt.proc.p.stdout.close()  # only head reads it now
        pt.wait_ready()
        with peer("server", name, port) as srv:
            srv.expect(r"^LISTENING")
            with peer("client", name, port, rounds=100000, interval=0.002, duration=10) as cli:
                t0 = time.monotonic()
                deadline = t0 + 12
                while pt.proc.alive() and time.monotonic() < deadline:
                    time.sleep(0.1)
                alive = pt.proc.alive()
                rc = pt.proc.p.poll()
                took = time.monotonic() - t0
                cli.close()
        extra = [l for l in pt.proc.err.lines if "pktrace: ready" not in l]
        head_out = head.communicate(timeout=5)[0]
        check("| head -n 1", not alive and rc is not None and rc >= 0 and extra,
              "%s, exit %s, stderr after ready %r, head got %r" % (
                  "still running after 12s of traffic" if alive else
                  "ended %.1fs after traffic started" % took, rc,
                  extra[-3:], head_out[:120]))
        check("| head -n 1: the summary adds up", *adds_up("\n".join(extra)))
    except AssertionError as e:
        check("| head -n 1", False, str(e))
    finally:
        pt.close()
        if head:
            head.kill()
            head.wait()
    assert not failures, "%d of 9 checks failed:\n      %s" % (
        len(failures), "\n      ".join(failures))


@test
def missing_kernel_features(w):
    """Without BTF or without a cgroup v2 mount it can reach (the mount hidden in a private mount
    namespace, and /sys/fs with no cgroup directory to mount one on, as pktrace then does),
    pktrace names what is missing in one line and exits 1, before loading anything."""
    cg = cgroup2_mount()
    assert cg, "no cgroup v2 mount on this machine: cannot hide it"
    cases = [
        ("no BTF", "mount -t tmpfs none /sys/kernel/btf", r"BTF"),
        ("no cgroup v2", "umount -l %s && mount -t tmpfs none /sys/fs" % cg, r"cgroup v2"),
    ]
    failures = []
    for label, hide, want in cases:
        script = "%s && exec %s -s comm=%s" % (hide, PKTRACE, rand_name("e2none"))
        r = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                check=False, timeout=15)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        ok = (r.returncode == 1 and len(lines) == 1 and re.search(want, lines[0])
              and lines[0].startswith("pktrace: ") and not r.stdout)
        log("%s: exit %d, stderr %r" % (label, r.returncode, r.stderr.strip()))
        if not ok:
            failures.append("%s: want exit 1 and one 'pktrace: ...%s...' line, got exit %d, "
                            "stderr %r, stdout %r" % (label, want, r.returncode, r.stderr,
                                                     r.stdout[:100]))
    assert not failures, "; ".join(failures)


def bpf_objects(kind):
    r = run(["bpftool", "-j", kind, "show"], timeout=20)

    return json.loads(r.stdout or "[]")


def cgroup_prog_ids():

    r = run(["bpftool", "-j", "cgroup", "tree"], timeout=20)
    ids = set()
    for cg in json.loads(r.stdout or "[]"):
        for p in cg.get("programs", []):
            ids.add(p["id"])
    return ids


@test
def no_leftovers(w):
    """SIGKILL leaves no program attached or loaded; two instances both see one connection."""
    pt = Pktrace(["-s", "comm=" + rand_name("e2none")], w, tag="killed")
    try:
        pt.wait_ready()
        mine, maps = bpf_ids_held_by(pt.proc.pid)
        attached = cgroup_prog_ids() & mine
        log("pktrace %d holds programs %s (attached to cgroups: %s) and %d maps" % (
            pt.proc.pid, sorted(mine), sorted(attached), len(maps)))
        assert mine, "no BPF program of pktrace found while it was ready"
        assert attached, "none of pktrace's programs is attached to a cgroup"
        os.kill(pt.proc.pid, signal.SIGKILL)
        pt.proc.p.wait(10)
    finally:
        pt.close()
    deadline = time.monotonic() + 5
    while True:
        left = {p["id"] for p in bpf_objects("prog")} & mine
        still = cgroup_prog_ids() & mine
        left_maps = {m["id"] for m in bpf_objects("map")} & maps
        if not (left or still or left_maps) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not (left or still or left_maps), (
        "5s after SIGKILL: programs still loaded %s, still attached %s, maps %s" % (
            sorted(left), sorted(still), sorted(left_maps)))
    log("after SIGKILL all %d programs and %d maps are gone" % (len(mine), len(maps)))

    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(comm_scope(sn, cn), w, tag="first") as a, \
            pktrace(comm_scope(sn, cn), w, tag="second") as b:
        srv, cli = run_pair(sn, cn, port)
        cap.stop()
        ev_a = a.stop()
        ev_b = b.stop()
    pkts = read_pcap(pcap)
    owners = {port: owner(srv), cli["port"]: owner(cli)}
    for label, ev in (("first instance", ev_a), ("second instance", ev_b)):
        match(expect_both_sides(pkts, "lo", owners), ev).assert_exact(label)


@test
def container_id(w):
    """A process in a docker-<id>.scope cgroup: containerId and cgroupId; host process: ""."""
    cid = "%064x" % random.getrandbits(256)
    root = cgroup2_mount()
    assert root, "no cgroup2 mount"
    path = os.path.join(root, "docker-%s.scope" % cid)
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with cgroup_dir(path):
        ino = os.stat(path).st_ino
        with capture("lo", "tcp port %d" % port, pcap) as cap, \
                pktrace(comm_scope(sn, cn), w) as pt:
            # A short-lived client: it has exited before pktrace could read its /proc entry.
            srv, cli = run_pair(sn, cn, port, client_opts={"cgroup": path})
            cap.stop()
            events = pt.stop()
    pkts = read_pcap(pcap)
    owners = {port: owner(srv), cli["port"]: owner(cli, container=cid, cgroup=ino)}
    log("container %s... cgroup id %d" % (cid[:12], ino))
    m = match(expect_both_sides(pkts, "lo", owners), events)
    m.assert_exact("container events")


@test
def scope_pid(w):
    """-s pid=N (client started first, connects later): only that process's socket events."""
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap:
        with peer("server", sn, port) as srv, peer("client", cn, port, go=True) as cli:
            srv.expect(r"^LISTENING")
            with pktrace(["-s", "pid=%d" % cli.peer_pid, "-s", "uid=0"], w) as pt:
                release(cli)
                lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                assert cli.wait(20) == 0, "client failed: %s" % cli.err.text()
                assert srv.wait(20) == 0, "server failed: %s" % srv.err.text()
                cap.stop()
                events = pt.stop(sig=signal.SIGTERM)
    pkts = read_pcap(pcap)
    cli_o = owner({"pid": cli.peer_pid, "name": cn})
    m = match(expect_one_side(pkts, "lo", {lport}, {lport: cli_o}), events)
    m.assert_exact("pid-scoped events")


@test
def uts_hostname(w):
    """A client in its own UTS namespace: its events carry that namespace's host name."""
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    host = "e2e-uts-" + rand_tag()
    pcap = os.path.join(w, "lo.pcap")
    # sh sets the new namespace's host name, then becomes the client.
    prefix = ["unshare", "--uts", "/bin/sh", "-c", 'hostname "$0" && exec "$@"', host]
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(comm_scope(sn, cn), w) as pt:
        with peer("server", sn, port) as srv:
            srv.expect(r"^LISTENING")
            with peer("client", cn, port, prefix=prefix, rounds=3) as cli:
                lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                assert cli.wait(20) == 0, "client failed: %s" % cli.err.text()
            assert srv.wait(20) == 0, "server failed: %s" % srv.err.text()
        cap.stop()
        events = pt.stop(sig=signal.SIGTERM)
    pkts = read_pcap(pcap)
    cli_o = owner({"pid": cli.peer_pid, "name": cn}, host=host)
    del cli_o["ppid"]  # unshare may fork
    owners = {port: owner({"pid": srv.peer_pid, "name": sn}), lport: cli_o}
    m = match(expect_both_sides(pkts, "lo", owners), events)
    m.assert_exact("UTS namespace events")


@test
def live_delivery(w):
    """Events are written while pktrace runs (within 3 s of the traffic), not only at exit."""
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(comm_scope(sn, cn), w) as pt:
        srv, cli = run_pair(sn, cn, port, client_opts={"rounds": 2})
        t_done = time.monotonic()
        seen, stable_since = 0, time.monotonic()
        while time.monotonic() - t_done < 3:  # until the count stays put for 0.5 s
            with open(pt.events_path, "rb") as f:
                n = f.read().count(b"\n")
            if n != seen:
                seen, stable_since = n, time.monotonic()
            elif seen and time.monotonic() - stable_since > 0.5:
                break
            time.sleep(0.05)
        latency = stable_since - t_done
        cap.stop()
        events = pt.stop()
    log("%d events in the output %.2fs after the exchange ended (before SIGINT); %d after" % (
        seen, latency, len(events)))
    assert seen == len(events) > 0, (
        "only %d of the exchange's %d events were written within 3 s while pktrace ran; the "
        "rest appeared only at shutdown" % (seen, len(events)))
    pkts = read_pcap(pcap)
    match(expect_both_sides(pkts, "lo"), events).assert_exact("live events")


@test
def preexisting_connection(w):
    """A connection established before pktrace started: its later packets are all reported
    and attributed to the processes holding the sockets."""
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap:
        with peer("server", sn, port) as srv, peer("client", cn, port, pause=True,
                                                   rounds=3) as cli:
            srv.expect(r"^LISTENING")
            lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
            srv.expect(r"^ACCEPTED")
            time.sleep(0.3)  # the handshake is over before pktrace starts
            with pktrace(comm_scope(sn, cn), w) as pt:
                t_ready = time.time()
                release(cli)
                assert cli.wait(20) == 0, "client failed: %s" % cli.err.text()
                assert srv.wait(20) == 0, "server failed: %s" % srv.err.text()
                cap.stop()
                events = pt.stop()
    pkts = [p for p in read_pcap(pcap) if p["time"] > t_ready]
    assert not any(p["SYN"] for p in pkts), "scenario broken: handshake after pktrace started"
    owners = {port: owner({"pid": srv.peer_pid, "name": sn}),
              lport: owner({"pid": cli.peer_pid, "name": cn})}
    m = match(expect_both_sides(pkts, "lo", owners), events)
    m.assert_exact("events of a pre-existing connection")


@test
def scope_uid_and_comm(w):
    """-s uid=65534 -s comm=NAME (keys ANDed): of two NAME processes only the uid-65534 one."""
    port = rand_port()
    name = rand_name("e2u")
    pcap = os.path.join(w, "lo.pcap")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(["-s", "uid=65534", "-s", "comm=" + name], w) as pt:
        with peer("server", name, port) as srv:
            srv.expect(r"^LISTENING")
            with peer("client", name, port, prefix=nobody, rounds=3,
                      script=public_copy(PEERS, w)) as cli:
                lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                assert cli.wait(20) == 0, "client failed: %s" % cli.err.text()
            assert srv.wait(20) == 0, "server failed: %s" % srv.err.text()
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    cli_o = owner({"pid": cli.peer_pid, "name": name}, uid=65534)
    del cli_o["ppid"]  # setpriv execs, but do not rely on it
    m = match(expect_one_side(pkts, "lo", {lport}, {lport: cli_o}), events)
    m.assert_exact("uid+comm-scoped events")


@test
def json_escaping(w):
    """A process name with a quote, a backslash and control characters stays valid JSON and
    reads back exactly."""
    port = rand_port()
    sn = rand_name("e2s")
    cn = 'q"b\\t\tc\x01%04x' % random.getrandbits(16)  # q"b\t<TAB>c<SOH>hhhh: 13 chars
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap:
        with peer("server", sn, port) as srv, peer("client", cn, port, go=True) as cli:
            srv.expect(r"^LISTENING")
            with pktrace(["-s", "pid=%d" % cli.peer_pid], w) as pt:
                release(cli)
                lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                assert cli.wait(20) == 0, "client failed: %s" % cli.err.text()
                assert srv.wait(20) == 0, "server failed: %s" % srv.err.text()
                cap.stop()
                events = pt.stop()
    pkts = read_pcap(pcap)
    cli_o = owner({"pid": cli.peer_pid, "name": cn})
    m = match(expect_one_side(pkts, "lo", {lport}, {lport: cli_o}), events)
    m.assert_exact("events of a process with special characters in its name")


@test
def ip_options_ext_headers(w):
    """IPv4 options and an IPv6 destination-options header: stepped over by the decoder,
    counted in packet_len, every field exact."""
    # NOP NOP NOP EOL (IHL 6); a destination-options header holding one PadN (8 bytes).
    for addr, opts in (("127.0.0.1", "01010100"), ("::1", "0000010400000000")):
        port = rand_port()
        sn, cn = rand_name("e2s"), rand_name("e2c")
        pcap = os.path.join(w, "lo-%s.pcap" % ("v4" if "." in addr else "v6"))
        # tcpdump's "tcp port" does not look past IPv6 extension headers: match those by hand.
        bpf = ("tcp port {0} or (ip6[6] == 60 and ip6[40] == 6 and "
               "(ip6[48:2] == {0} or ip6[50:2] == {0}))").format(port)
        with capture("lo", bpf, pcap) as cap, pktrace(comm_scope(sn, cn), w) as pt:
            srv, cli = run_pair(sn, cn, port, bind=addr,
                                client_opts={"rounds": 2, "ip_options": opts})
            cap.stop()
            events = pt.stop()
        pkts = read_pcap(pcap)
        mine = [p for p in pkts if p["src_port"] == cli["port"]]
        if "." in addr:
            assert mine and all(p["ip_hdr_len"] == 24 for p in mine), (
                "scenario broken: client packets without IPv4 options: %s" % (
                    {p["ip_hdr_len"] for p in mine}))
        else:
            assert mine and all(p["first_nxt"] == 60 for p in mine), (
                "scenario broken: client packets without a destination-options header")
        owners = {port: owner(srv), cli["port"]: owner(cli)}
        match(expect_both_sides(pkts, "lo", owners), events).assert_exact(
            "events with %s" % ("IPv4 options" if "." in addr else "IPv6 destination options"))
        # The chain is reported: one destination-options header of 8 bytes, on the client's
        # packets only (the server's replies carry none).
        for e in events:
            chain = (e.get("ext_count"), e.get("ext_length"), e.get("ext_types"))
            want = (1, 8, (60,)) if "." not in addr and e["src_port"] == cli["port"] \
                else (None, None, None)
            assert chain == want, "line %d (%s:%d > %s:%d): chain %s, want %s" % (
                e["line"], e["src_ip"], e["src_port"], e["dst_ip"], e["dst_port"], chain, want)


def explain_segmentation(m, ip_hdr_len):
    """Pair each invented egress event with the run of missing egress wire packets it was cut
    into after the cgroup hook (software GSO segmentation); remove both from m and return
    [(event, [segments])]."""
    found = []
    for a in list(m.extra):
        if a["direction"] != "egress":
            continue
        want = a["packet_len"] - ip_hdr_len - 4 * a["dataOffset"]
        cands = {e["seq"]: e for e in m.missing if e["direction"] == "egress"
                 and all(e[k] == a[k] for k in ("src_ip", "dst_ip", "src_port", "dst_port",
                                                "ack"))}
        run_, seq, total = [], a["seq"], 0
        while seq in cands and total < want:
            run_.append(cands[seq])
            total += cands[seq]["payload"]
            seq = (seq + cands[seq]["payload"]) % 2**32
        flags_union = {f for e in run_ for f in FLAGS if e[f]}
        if len(run_) >= 2 and total == want and flags_union == {f for f in FLAGS if a[f]}:
            m.extra.remove(a)
            for e in run_:
                m.missing.remove(e)
            found.append((a, run_))
    return found


@test
def bulk_transfer(w):
    """300 kB per request on loopback (GSO buffers up to 64 kB and more): every packet matched,
    except buffers the kernel cuts into segments after the cgroup hook, which are named."""
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(comm_scope(sn, cn), w) as pt:
        srv, cli = run_pair(sn, cn, port, client_opts={"rounds": 4, "size": 300000})
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    assert max(p["packet_len"] for p in pkts) > 20000, "scenario broken: no large packets"
    m = match(expect_both_sides(pkts, "lo", {port: owner(srv), cli["port"]: owner(cli)}),
              events)
    cut = explain_segmentation(m, 20)
    for a, segs in cut:
        log("KNOWN GAP (software GSO segmentation after the cgroup hook, README): pktrace "
            "egress event seq=%d packet_len=%d %s = wire frames %s (ip.len %s)" % (
                a["seq"], a["packet_len"], "[%s]" % "".join(f[0] for f in FLAGS if a[f]),
                ",".join(str(e["frame"]) for e in segs),
                "+".join(str(e["packet_len"]) for e in segs)))
    if cut:
        log("%d GSO buffers were reported once at egress instead of as their %d wire "
            "segments; packet_len above 65535 is not a valid IPv4 length" % (
                len(cut), sum(len(s) for _, s in cut)))
    m.assert_exact("bulk events (outside software-segmented buffers)")


# pktrace's ring buffers, one per CPU, at their default size (8 MiB in all, at least 1 MiB each),
# and its fast rings beside them (half a ring buffer's size, 64 KiB to 2 MiB each, as
# src/capture.c sizes them): a tiny record takes 128 bytes in either
RINGBUF_BYTES = possible_cpus() * ring_bytes_each(8 << 20, 1 << 20)
FAST_BYTES = possible_cpus() * min(max(ring_bytes_each(8 << 20, 1 << 20) // 2, 64 << 10), 2 << 20)
RECORD_BYTES = 128               # a tiny record (40 + headers <= 80 bytes) + the ring's 8-byte header
SUMMARY_RX = (r"pktrace: (\d+) events written, (\d+) packets seen \((\d+) out of scope, "
              r"(\d+) without a known owner\), (\d+) events lost \((\d+) ring buffer full, "
              r"(\d+) decode errors, (\d+) malformed records, (\d+) not written\)")


def proc_state(pid):
    """The state letter of /proc/PID/stat (T: stopped)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@test
def ringbuf_loss_counted(w):
    """Ring buffer overflow (pktrace SIGSTOPped, ~220 000 events): every lost event counted.

    The ring buffers (8 MiB in all on 2 CPUs) and the fast rings (4 MiB) hold ~98 304 tiny
    records; the rest must be counted as lost (none dropped silently), every event written
    must match the wire exactly, and the traced peers must never wait for pktrace."""
    capacity = (RINGBUF_BYTES + FAST_BYTES) // RECORD_BYTES
    rounds = 55000
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    # ~120 000 packet copies a second reach tcpdump (lo hands it each packet twice): a 128 MiB
    # buffer holds them all even if tcpdump falls behind. (Not "inbound" in the filter: with
    # it, libpcap 1.10.3 loses the first packet of the capture.)
    with capture("lo", "tcp port %d" % port, pcap, buffer_kib=131072) as cap, \
            pktrace(comm_scope(sn, cn), w, out="o") as pt:
        pt.proc.signal(signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while proc_state(pt.proc.pid) != "T":
            assert time.monotonic() < deadline, "pktrace did not stop after SIGSTOP"
            time.sleep(0.01)
        t0 = time.monotonic()
        srv, cli = run_pair(sn, cn, port, server_opts={"nodelay": True},
                            client_opts={"rounds": rounds, "size": 32, "nodelay": True})
        took = time.monotonic() - t0
        state = proc_state(pt.proc.pid)
        assert state == "T", "pktrace was not stopped during the exchange (state %s)" % state
        log("%d round trips (TCP_NODELAY) completed in %.1fs while pktrace was stopped" % (
            rounds, took))
        time.sleep(0.5)  # the teardown's last packets (a delayed ACK) into the capture too
        cap.stop()
        pt.proc.signal(signal.SIGCONT)
        events = pt.stop()
    pkts = read_pcap(pcap)
    sm = re.search(SUMMARY_RX, pt.stderr())
    assert sm, "no summary line of the documented form on stderr: %r" % pt.stderr()[-400:]
    W, P, O, N, L, R, D, M, U = (int(x) for x in sm.groups())
    log("W=%d written, P=%d seen, O=%d out of scope, N=%d without owner, L=%d lost (R=%d "
        "ring buffer full, D=%d, M=%d, U=%d); tshark: %d packets on lo; ring holds %d records"
        % (W, P, O, N, L, R, D, M, U, len(pkts), capacity))
    assert 2 * len(pkts) > 2 * capacity, (
        "scenario broken: %d wire packets (%d events) do not clearly overflow a ring of %d "
        "records" % (len(pkts), 2 * len(pkts), capacity))
    assert W == len(events), "summary says %d events written, the output has %d" % (
        W, len(events))
    assert 0 < W <= capacity, (
        "scenario broken: %d events written, the ring holds %d records and pktrace read "
        "nothing while the traffic ran" % (W, capacity))
    assert L == R + D + M + U, "summary: %d lost is not %d+%d+%d+%d" % (L, R, D, M, U)
    assert (D, M, U) == (0, 0, 0), "decode errors %d, malformed records %d, not written %d" % (
        D, M, U)
    assert R > 0, ("the ring buffer cannot hold %d events, yet pktrace reports no loss "
                   "(%d written, %d lost)" % (2 * len(pkts), W, L))
    assert W + L == P - O - N, (
        "in-scope packets not accounted for: %d written + %d lost = %d, but %d seen - %d out "
        "of scope - %d without owner = %d" % (W, L, W + L, P, O, N, P - O - N))
    # tcpdump itself may drop packets on a busy host (it says how many): then the wire had
    # between its captured and captured + dropped packets, each an event on both sides.
    m_drop = re.search(r"(\d+) packets dropped by kernel", cap.stats)
    dropped = int(m_drop.group(1)) if m_drop else 0
    assert 2 * len(pkts) <= W + R <= 2 * (len(pkts) + dropped), (
        "%d written + %d ring-buffer losses = %d events, but tshark's %d wire packets on lo "
        "make %d events (tcpdump: %s)" % (W, R, W + R, len(pkts), 2 * len(pkts), " / ".join(
            l for l in cap.stats.splitlines() if "packets" in l)))
    owners = {port: owner(srv), cli["port"]: owner(cli)}
    m = match(expect_both_sides(pkts, "lo", owners), events)
    m.assert_exact("events written despite the loss", missing_ok=True)


# Tests kept in modules of their own register themselves with @test when imported.
import t_attribution  # noqa: E402,F401
import t_uring  # noqa: E402,F401
import t_pcapng  # noqa: E402,F401
import t_servers  # noqa: E402,F401
import t_privileges  # noqa: E402,F401
import t_hardening  # noqa: E402,F401
import t_options  # noqa: E402,F401
import t_flows  # noqa: E402,F401
import t_packets  # noqa: E402,F401
import t_icmp_errors  # noqa: E402,F401
import t_order  # noqa: E402,F401
import t_text  # noqa: E402,F401
import t_habits  # noqa: E402,F401
import t_filters  # noqa: E402,F401


# ---------------------------------------------------------------------------------------------
# Runner

def bpf_usable():
    """bpf(BPF_PROG_GET_NEXT_ID) succeeds or says ENOENT: the bpf syscall is allowed."""
    nr = {"x86_64": 321, "aarch64": 280}.get(platform.machine())
    if nr is None:
        return True
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(16)
    rc = libc.syscall(nr, 11, attr, 16)
    return rc == 0 or ctypes.get_errno() == 2


def missing_prerequisites():
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    elif not bpf_usable():
        missing.append("BPF (the bpf syscall is refused)")
    for tool in ("tcpdump", "tshark", "ip", "bpftool", "setpriv", "head", "unshare"):
        if not shutil.which(tool):
            missing.append(tool)
    if not cgroup2_mount():
        missing.append("a cgroup2 mount")
    return missing


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", action="append", default=[],
                    help="run only tests whose name contains this (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep every test's work directory")
    ap.add_argument("--list", action="store_true")
    opts = ap.parse_args()
    tests = [t for t in TESTS if not opts.k or any(k in t.__name__ for k in opts.k)]
    if opts.list:
        for t in tests:
            print(t.__name__)
        return 0
    if not tests:
        print("no test matches %s" % opts.k)
        print("0 passed, 0 failed")
        return 1

    os.chdir(REPO)
    missing = missing_prerequisites()
    print("pktrace e2e: %d tests, binary %s, CI=%s" % (len(tests), PKTRACE, CI), flush=True)
    if missing:
        print("missing prerequisites: %s (%s)" % (", ".join(missing),
                                                  "FAIL under CI" if CI else "skipping"))

    def on_alarm(signum, frame):
        where = traceback.extract_stack(frame)
        raise TestTimeout("; ".join("%s:%d %s" % (os.path.basename(f.filename), f.lineno, f.name)
                                    for f in where[-3:]))

    signal.signal(signal.SIGALRM, on_alarm)
    passed = failed = skipped = 0
    suite_start = time.monotonic()
    for t in tests:
        name = t.__name__
        print("--- %s: %s" % (name, (t.__doc__ or "").strip().splitlines()[0]), flush=True)
        workdir = tempfile.mkdtemp(prefix="pktrace-e2e-%s-" % name)
        # pktrace opens -o files as the user it drops to (nobody by default): let it write here.
        os.chown(workdir, 65534, 65534)
        t0 = time.monotonic()
        status, msg = "PASS", ""
        try:
            if missing:
                raise Skip("missing prerequisites: " + ", ".join(missing))
            if t.needs_pktrace and not os.access(PKTRACE, os.X_OK):
                raise AssertionError("%s does not exist or is not executable (run make)" %
                                     PKTRACE)
            left = SUITE_BUDGET - (time.monotonic() - suite_start)
            if left < 5:
                raise AssertionError("suite time budget of %ds exhausted" % SUITE_BUDGET)
            signal.alarm(int(min(TEST_TIMEOUT, left)))
            try:
                t(workdir)
            finally:
                signal.alarm(0)
        except Skip as e:
            status, msg = ("FAIL", "%s (CI=true: a missing prerequisite fails)" % e) if CI \
                else ("SKIP", str(e))
        except TestTimeout as e:
            status, msg = "FAIL", "timed out after %ds (at %s)" % (TEST_TIMEOUT, e)
        except AssertionError as e:
            status, msg = "FAIL", str(e) or traceback.format_exc(limit=3)
        except Exception:
            status, msg = "FAIL", "error: " + traceback.format_exc()
        finally:
            signal.alarm(0)
            kill_leftovers()
        dt = time.monotonic() - t0
        if status == "PASS":
            passed += 1
        elif status == "SKIP":
            skipped += 1
        else:
            failed += 1
        print("%s %s (%.1fs)%s" % (status, name, dt, (": " + msg) if msg else ""), flush=True)
        if (status == "FAIL" and os.path.isdir(workdir) and os.listdir(workdir)) or opts.keep:
            print("    work directory kept: %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("compared %d captured packets, %d expected events with pktrace's output" % (
        TALLY["packets"], TALLY["events"]))
    summary = "%d passed, %d failed" % (passed, failed)
    if skipped:
        summary += ", %d skipped" % skipped
    print(summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
