"""TCP options against tshark's tcp.options.* fields, where the ordinary tests never go.

Every test already compares the options of every event (e2elib's OPT_FIELDS). These add the
options ordinary loopback traffic lacks: SACK blocks, under loss induced in a router namespace
between client and server, and TCP Fast Open cookies (a cookie request, then a SYN with the
cookie and data), with net.ipv4.tcp_fastopen enabled in a namespace, and in the experimental
form (kind 254, magic 0xF989), written on a packet socket.

The loss is e2elib's tc_drop (a tc BPF classifier, as the kernel here has no netem): it drops a
full-sized IPv4 TCP segment when its IP id is 3 mod 6.
"""
import os
import re
import sys

from e2elib import (PYTHON, Proc, Skip, capture, describe, expect_both_sides,
                    expect_local_addrs, expect_one_side, log, match, netns, peer, pktrace,
                    rand_name, rand_port, rand_tag, read_pcap, routed_pair, run, tc_drop, test)

# A TFO server and client (peers.py's calling convention: MODE --name N --port P).
TFO_PEER = r"""
import argparse, ctypes, socket, sys

def say(*a):
    print(*a, flush=True)

p = argparse.ArgumentParser()
p.add_argument("mode")
p.add_argument("--name", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--count", type=int, default=2)
a = p.parse_args()
ctypes.CDLL(None, use_errno=True).prctl(15, a.name.encode(), 0, 0, 0)  # PR_SET_NAME
say("PID", __import__("os").getpid())
if a.mode == "server":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
    s.settimeout(20)
    s.bind(("127.0.0.1", a.port))
    s.listen(8)
    say("LISTENING")
    for _ in range(a.count):
        c, _ = s.accept()
        c.settimeout(20)
        data = c.recv(100)
        c.sendall(data.upper())
        c.recv(100)
        c.close()
    say("DONE")
else:
    for i in range(a.count):
        c = socket.socket()
        # Blocking: with a timeout the socket is non-blocking and sendto says EINPROGRESS.
        c.sendto(b"tfo-%d" % i, socket.MSG_FASTOPEN, ("127.0.0.1", a.port))
        c.settimeout(20)
        assert c.recv(100) == b"TFO-%d" % i
        c.shutdown(socket.SHUT_WR)
        c.recv(100)
        c.close()
    say("DONE")
"""


def ok(proc, timeout=30):
    assert proc.wait(timeout) == 0, "%s failed: %s" % (proc.name, proc.err.text())


def scope(*names):
    return ["-s", "comm=" + ",".join(names)]


def _dropped(cap):
    m = re.search(r"(\d+) packets dropped by kernel", cap.stats)
    return int(m.group(1)) if m else 0


def _sack_scenario(w, attempt):
    """One run of the SACK scenario: the two captures, pktrace's events, tcpdump's drops."""
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pa, pb = os.path.join(w, "a%d.pcap" % attempt), os.path.join(w, "b%d.pcap" % attempt)
    with routed_pair() as t:
        na, nb, va, vb, ip_a, ip_b = t["na"], t["nb"], t["va"], t["vb"], t["ip_a"], t["ip_b"]
        tc_drop(w, t["nr"], t["vra"])
        with capture(va, "tcp port %d" % port, pa, ns=na) as ca, \
                capture(vb, "tcp port %d" % port, pb, ns=nb) as cb, \
                pktrace(scope(sn, cn), w) as pt:
            with peer("server", sn, port, ns=nb, bind=ip_b) as srv:
                srv.expect(r"^LISTENING")
                with peer("client", cn, port, ns=na, connect=ip_b, rounds=3,
                          size=150000) as cli:
                    ok(cli)
                ok(srv)
            ca.stop()
            cb.stop()
            events = pt.stop()
    return pa, pb, events, _dropped(ca) + _dropped(cb), (va, vb, ip_a, ip_b)


@test
def tcp_options_sack(w):
    """SACK blocks under loss: client and server in namespaces of their own, a router between
    them dropping one full-sized segment in six from the client; both ends' events (SYN
    options, timestamps, the server's SACK blocks) compared with a capture at each end."""
    # tcpdump may drop packets of this burst (it says so): the comparison needs every one, so
    # the scenario runs again, up to three times in all.
    for attempt in (1, 2, 3):
        pa, pb, events, drops, (va, vb, ip_a, ip_b) = _sack_scenario(w, attempt)
        if not drops:
            break
        log("attempt %d: tcpdump dropped %d packets, again" % (attempt, drops))
    assert not drops, "tcpdump dropped packets in all three attempts"
    pk_a, pk_b = read_pcap(pa), read_pcap(pb)
    sacks = [p for p in pk_b if p["opt_sack_blocks"]]
    log("client side %d packets, server side %d (%d lost on the way), %d with SACK blocks "
        "(up to %d blocks)" % (len(pk_a), len(pk_b), len(pk_a) - len(pk_b), len(sacks),
                              max((len(p["opt_sack_blocks"]) for p in sacks), default=0)))
    assert len(pk_b) < len(pk_a), "scenario broken: the router dropped nothing"
    assert sacks, "scenario broken: loss, yet the server sent no SACK blocks"
    assert any(len(p["opt_sack_blocks"]) >= 2 for p in sacks), \
        "scenario broken: no packet with two SACK blocks or more"
    syn = [p for p in pk_a if p["SYN"]]
    assert all(p["opt_mss"] and p["opt_wscale"] is not None and p["opt_ts_val"] is not None
               for p in syn) and any(p["opt_sack_perm"] for p in syn), \
        "scenario broken: SYNs without the usual options: %s" % syn
    exp = expect_local_addrs(pk_a, va, {ip_a}) + expect_local_addrs(pk_b, vb, {ip_b})
    m = match(exp, events)
    m.assert_exact("events under loss")
    got = [e for e in events if e["opt_sack_blocks"]]
    assert len(got) == 2 * len(sacks), "%d SACK packets on the wire, %d events with SACK " \
        "blocks (want the server's egress and the client's ingress of each)" % (
            len(sacks), len(got))
    log("e.g. %s sack %s" % (describe(got[0]), got[0]["opt_sack_blocks"]))


@test
def tcp_options_fastopen(w):
    """TCP Fast Open in a namespace (net.ipv4.tcp_fastopen=3): a SYN with a cookie request,
    the SYN-ACK with the cookie, then a SYN carrying the cookie and data; every event's options
    compared with tshark's."""
    ns = "pkt-tfo-" + rand_tag()
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    script = os.path.join(w, "tfo_peer.py")
    with open(script, "w") as f:
        f.write(TFO_PEER)
    pcap = os.path.join(w, "lo.pcap")
    with netns(ns):
        r = run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_fastopen=3"],
                check=False)
        if r.returncode:
            raise Skip("net.ipv4.tcp_fastopen cannot be set in a namespace: %s" % r.stderr)
        with capture("lo", "tcp port %d" % port, pcap, ns=ns) as cap, \
                pktrace(scope(sn, cn), w) as pt:
            with peer("server", sn, port, ns=ns, script=script) as srv:
                srv.expect(r"^LISTENING")
                with peer("client", cn, port, ns=ns, script=script) as cli:
                    ok(cli)
                ok(srv)
            cap.stop()
            events = pt.stop()
    pkts = read_pcap(pcap)
    req = [p for p in pkts if p["SYN"] and not p["ACK"] and p["opt_tfo"] == ""]
    cookies = [p["opt_tfo"] for p in pkts if p["SYN"] and p["ACK"] and p["opt_tfo"]]
    data_syn = [p for p in pkts if p["SYN"] and not p["ACK"] and p["opt_tfo"]
                and p["payload"]]
    log("TFO on the wire: %d cookie requests, cookies %s, %d SYNs with cookie and data" % (
        len(req), cookies, len(data_syn)))
    assert req and cookies and data_syn, "scenario broken: no full TFO exchange on the wire"
    assert data_syn[0]["opt_tfo"] == cookies[0], "scenario broken: the SYN's cookie is not " \
        "the one the server gave"
    m = match(expect_both_sides(pkts, "lo"), events)
    m.assert_exact("TFO events")
    tfo = [e for e in events if e["opt_tfo"] is not None]
    assert len(tfo) == 2 * (len(req) + len(cookies) + len(data_syn)), \
        "events with tfo_cookie: %s" % [describe(e) for e in tfo]
    assert any(e["opt_tfo"] == cookies[0] and e["SYN"] and not e["ACK"] for e in events), \
        "no SYN event carries the cookie %s" % cookies[0]


# SYNs written whole on a packet socket bound to lo (scapy's sendp), to a closed port: a TFO
# cookie request and a cookie in the experimental form (kind 254, magic 0xF989), then both in
# kind 34's, each padded with NOPs.
INJECT_TFO = r"""
import ctypes, sys, time
name, sport, dport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)
from scapy.all import Ether, IP, TCP, conf, sendp
conf.verb = 0
nop = ("NOP", None)
for i, o in enumerate([(254, b"\xf9\x89"), (254, b"\xf9\x89\xde\xad\xbe\xef"),
                       (34, b""), (34, b"\xde\xad\xbe\xef")]):
    sendp(Ether() / IP(src="127.0.0.1", dst="127.0.0.1") /
          TCP(sport=sport, dport=dport, flags="S", seq=5000 + i, options=[o, nop, nop]),
          iface="lo")
    time.sleep(0.05)
print("DONE", flush=True)
"""


@test
def tcp_options_fastopen_experimental(w):
    """TFO's experimental form (kind 254 with magic 0xF989, as clients used before kind 34 and
    Linux still answers): a cookie request and a cookie, then the same in kind 34, written on a
    packet socket; each event against tshark, tfo_experimental on the first two only."""
    jn, sport, dport = rand_name("e2x"), rand_port(), rand_port()
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % dport, pcap) as cap, pktrace(scope(jn), w) as pt:
        with Proc([PYTHON, "-c", INJECT_TFO, jn, str(sport), str(dport)], name="inject") as p:
            p.expect(r"^DONE")
            assert p.wait(20) == 0, "injector failed: %s" % p.err.text()
            pid = p.pid
        cap.stop()
        events = pt.stop()
    pkts = [q for q in read_pcap(pcap) if q["src_port"] == sport]
    assert [q["opt_tfo"] for q in pkts] == ["", "deadbeef", "", "deadbeef"], \
        "scenario broken: tshark's cookies %s" % [q["opt_tfo"] for q in pkts]
    assert [q["opt_tfo_exp"] for q in pkts] == [True, True, None, None], \
        "scenario broken: tshark's experimental forms %s" % [q["opt_tfo_exp"] for q in pkts]
    match(expect_one_side(pkts, "lo", {sport}, {sport: {"pid": pid, "name": jn}}),
          events).assert_exact("the injected TFO SYNs")
    log("4 injected TFO SYNs: %s" % [(e["opt_tfo"], e["opt_tfo_exp"]) for e in events])


if __name__ == "__main__":
    sys.exit("run through tests/e2e/run.py")
