"""tcpdump's habits against tcpdump: -i IFACE, -Q in|out, -c COUNT, --once.

- -i: a veth pair whose two ends have the same name, one in pktrace's network namespace and one
  in another; a client here talks to a server there while another pair talks on lo. pktrace
  -i NAME shows exactly the packets tcpdump -i NAME (here) captures, each once, all the client's:
  none of the server's (the same name in the other namespace) and none of lo's.
- -Q: two pktraces at once, -Q in and -Q out, on a loopback connection: each shows every
  packet tcpdump captured once, all received, or all sent.
- -c 5: under endless traffic, pktrace exits 0 by itself with exactly 5 events and a summary
  that says so; with -w alone, 5 packets in the file (and -r FILE -c 3 -w: 3).
- --once with only the server in scope: the client's packets, whose sending is out of scope,
  are shown where they arrive; every packet once.
"""
import collections
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import time

from e2elib import (PKTRACE, Pktrace, Proc, capture, check_summary, log, netns, parse_events,
                    peer, pktrace,
                    rand_name, rand_port,
                    read_pcap, run, run_pair, test)


def same_packets(events, pkts, what):
    """Every captured packet exactly once among the events, and nothing else."""
    got = collections.Counter((e["src_port"], e["dst_port"], e["seq"], e["ack"], e["SYN"],
                               e["ACK"], e["FIN"], e["RST"]) for e in events)
    want = collections.Counter((p["src_port"], p["dst_port"], p["seq"], p["ack"], p["SYN"],
                                p["ACK"], p["FIN"], p["RST"]) for p in pkts)
    missing, extra = want - got, got - want
    assert not missing and not extra, "%s: %d events for %d packets; missing %s; extra %s" % (
        what, len(events), len(pkts), list(missing.items())[:4], list(extra.items())[:4])


@test
def habits_iface_same_name_other_netns(w):
    """-i NAME: the interface of pktrace's namespace only, not its namesake in another."""
    tag = "%04x" % random.randrange(1 << 16)
    name, ns = "pkh" + tag, "pkt-h-" + tag
    net = "10.%d.%d" % (random.randint(64, 127), random.randint(1, 254))
    port, lo_port = rand_port(), rand_port()
    srv, cli, los, loc = (rand_name(p) for p in ("hvs", "hvc", "hls", "hlc"))
    pcap = os.path.join(w, "veth.pcap")
    with netns(ns):
        run(["ip", "link", "add", name, "type", "veth", "peer", "name", name, "netns", ns])
        try:
            run(["ip", "addr", "add", net + ".1/24", "dev", name])
            run(["ip", "link", "set", name, "up"])
            run(["ip", "-n", ns, "addr", "add", net + ".2/24", "dev", name])
            run(["ip", "-n", ns, "link", "set", name, "up"])
            with capture(name, "tcp port %d" % port, pcap) as cap, \
                    pktrace(["-i", name, "-s", "comm=" + ",".join((srv, cli, los, loc))],
                            w) as pt:
                with contextlib.ExitStack() as stack:
                    s = stack.enter_context(peer("server", srv, port, ns=ns, bind=net + ".2"))
                    s.expect(r"^LISTENING")
                    c = stack.enter_context(peer("client", cli, port, connect=net + ".2",
                                                 rounds=3, size=200))
                    run_pair(los, loc, lo_port, client_opts={"rounds": 3})
                    c.expect(r"^DONE", 20)
                    assert c.wait(10) == 0, "client failed: %s" % c.err.text()
                    s.expect(r"^DONE", 20)
                time.sleep(1)  # the teardown's last packets
                cap.stop()
                events = pt.stop()
        finally:
            run(["ip", "link", "del", name], check=False)
    pkts = read_pcap(pcap)
    assert len(pkts) >= 10, "tcpdump -i %s saw %d packets" % (name, len(pkts))
    ifaces = collections.Counter(e["iface"] for e in events)
    procs = collections.Counter(e["processName"] for e in events)
    log("%d packets on %s here; events by iface %s, by process %s" % (
        len(pkts), name, dict(ifaces), dict(procs)))
    assert set(ifaces) == {name}, "events of other interfaces: %s" % dict(ifaces)
    assert set(procs) == {cli}, "events of processes other than the client (the server is " \
        "behind the namesake in %s): %s" % (ns, dict(procs))
    same_packets(events, pkts, "-i %s" % name)
    r = subprocess.run(["./pktrace", "-i", "pkt-no-such0"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2 and "no such interface" in r.stderr, (r.returncode, r.stderr)


@test
def habits_direction_in_out(w):
    """-Q in and -Q out, side by side: every packet once, received or sent."""
    port = rand_port()
    srv, cli = rand_name("hqs"), rand_name("hqc")
    scope = ["-s", "comm=%s,%s" % (srv, cli)]
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(["-Q", "in"] + scope, w, tag="in") as p_in, \
            pktrace(["-Q", "out"] + scope, w, tag="out") as p_out:
        run_pair(srv, cli, port, client_opts={"rounds": 4, "size": 300})
        time.sleep(1)
        cap.stop()
        ins, outs = p_in.stop(), p_out.stop()
    pkts = read_pcap(pcap)
    log("%d packets; -Q in: %d events, -Q out: %d" % (len(pkts), len(ins), len(outs)))
    assert {e["direction"] for e in ins} == {"ingress"}, "-Q in shows sent packets"
    assert {e["direction"] for e in outs} == {"egress"}, "-Q out shows received packets"
    same_packets(ins, pkts, "-Q in")
    same_packets(outs, pkts, "-Q out")


def exit_under_traffic(pt, srv, cli, port):
    """pktrace's exit status once it stops by itself while a pair exchanges 50 messages."""
    pt.wait_ready()
    with peer("server", srv, port, bind="127.0.0.1") as s:
        s.expect(r"^LISTENING")
        with peer("client", cli, port, connect="127.0.0.1", rounds=50, size=100) as c:
            rc = pt.proc.wait(15)
            c.expect(r"^DONE", 20)
    return rc


@test
def habits_count(w):
    """-c 5: exits 0 by itself after exactly 5 events, with the summary."""
    port = rand_port()
    srv, cli = rand_name("hcs"), rand_name("hcc")
    pt = Pktrace(["-c", "5", "-s", "comm=%s,%s" % (srv, cli)], w)
    try:
        rc = exit_under_traffic(pt, srv, cli, port)
        assert rc == 0, "pktrace -c 5 exited %s: %s" % (rc, pt.stderr())
        with open(pt.events_path) as f:
            lines = [json.loads(l) for l in f]
        assert len(lines) == 5, "-c 5 wrote %d events" % len(lines)
        m = re.search(r"pktrace: (\d+) events written", pt.stderr())
        assert m and m.group(1) == "5", "summary: %s" % pt.stderr()
        log(" | ".join(l for l in pt.stderr().splitlines() if "ready" not in l)[:300])
    finally:
        pt.close()


@test
def habits_count_write(w):
    """-c 5 with -w alone counts packets: 5 in the file (capinfos), exit 0 by itself; -r of that
    file with -c 3 -w writes 3"""
    port = rand_port()
    srv, cli = rand_name("hws"), rand_name("hwc")
    path, again = os.path.join(w, "c5.pcapng"), os.path.join(w, "c3.pcapng")
    pt = Pktrace(["-c", "5", "-w", path, "-s", "comm=%s,%s" % (srv, cli)], w, fmt=None)
    try:
        rc = exit_under_traffic(pt, srv, cli, port)
        assert rc == 0, "pktrace -c 5 -w exited %s: %s" % (rc, pt.stderr())
    finally:
        pt.close()
    counts = []
    for f in (path, again):
        if f == again:
            r = subprocess.run([PKTRACE, "-r", path, "-c", "3", "-w", again],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
        r = run(["capinfos", "-c", "-M", f], timeout=30)
        counts.append(int(re.search(r"Number of packets:\s+(\d+)", r.stdout).group(1)))
    assert counts == [5, 3], "packets in the files of -c 5 -w and -r -c 3 -w: %s" % counts
    m = re.search(r"pktrace: (\d+) events written", pt.stderr())
    assert m and m.group(1) == "5", "summary: %s" % pt.stderr()
    log("-c 5 -w: 5 packets in the file; -r -c 3 -w: 3")


@test
def habits_ip_netns_exec(w):
    """`ip netns exec NS pktrace -i lo` (the README's recipe for -i in another namespace): that
    mount namespace has a /sys of its own without the cgroup mounts; pktrace mounts the
    hierarchy in a mount namespace of its own and shows every packet of the namespace's
    loopback that tcpdump there captures. The host's mounts are left as they were."""
    ns = "pkt-x-%04x" % random.randrange(1 << 16)
    port = rand_port()
    srv, cli = rand_name("hxs"), rand_name("hxc")
    pcap, out = os.path.join(w, "lo.pcap"), os.path.join(w, "events.jsonl")
    with open("/proc/self/mounts") as f:
        before = [l for l in f if "cgroup" in l]
    with netns(ns):
        with capture("lo", "tcp port %d" % port, pcap, ns=ns) as cap, \
                Proc(["ip", "netns", "exec", ns, PKTRACE, "-F", "json", "-o", out, "-i", "lo",
                      "-s", "comm=%s,%s" % (srv, cli)], name="pktrace") as pt:
            pt.expect_err(r"pktrace: ready", timeout=30)
            run_pair(srv, cli, port, ns=ns, client_opts={"rounds": 3})
            time.sleep(1)
            cap.stop()
            pt.signal(signal.SIGINT)
            rc = pt.wait(15)
            err = pt.err.text()
    with open("/proc/self/mounts") as f:
        after = [l for l in f if "cgroup" in l]
    assert rc == 0, "ip netns exec %s pktrace: exit %d: %s" % (ns, rc, err[-500:])
    events, problems = parse_events(out)
    assert not problems, problems[:5]
    pkts = read_pcap(pcap)
    log("%d packets on %s's lo, %d events" % (len(pkts), ns, len(events)))
    assert len(pkts) >= 10, "scenario broken: tcpdump saw %d packets" % len(pkts)
    same_packets([e for e in events if e["direction"] == "egress"], pkts,
                 "ip netns exec: the senders' side")
    same_packets([e for e in events if e["direction"] == "ingress"], pkts,
                 "ip netns exec: the receivers' side")
    assert after == before, "the host's cgroup mounts changed: %s -> %s" % (before, after)


@test
def habits_interface_deleted(w):
    """-i on an interface that is then deleted (a container's veth going away): pktrace says
    so in one line, writes what it saw with the summary, and exits 1 within two seconds, as
    tcpdump ends ('The interface disappeared'); before, it went on tracing nothing. ping's
    echo requests and replies over a veth to another namespace are its events until then."""
    tag = "%04x" % random.randrange(1 << 16)
    ns, peer_ns = "pkt-d-" + tag, "pkt-e-" + tag
    out = os.path.join(w, "events.jsonl")
    with netns(ns), netns(peer_ns):
        run(["ip", "link", "add", "dum0", "netns", ns, "type", "veth", "peer", "name", "dum1",
             "netns", peer_ns])
        for n, dev, addr in ((ns, "dum0", "10.77.9.1/24"), (peer_ns, "dum1", "10.77.9.2/24")):
            run(["ip", "-n", n, "addr", "add", addr, "dev", dev])
            run(["ip", "-n", n, "link", "set", dev, "up"])
        with Proc(["ip", "netns", "exec", ns, PKTRACE, "-F", "json", "-o", out, "-i", "dum0",
                   "-e", "net_packet_icmp"], name="pktrace") as pt:
            pt.expect_err(r"pktrace: ready", timeout=30)
            ping = run(["ip", "netns", "exec", ns, "ping", "-n", "-c", "3", "-i", "0.2", "-W",
                        "0.2", "10.77.9.2"], check=False)
            time.sleep(0.5)
            run(["ip", "-n", ns, "link", "del", "dum0"])
            gone = time.monotonic()
            rc = pt.wait(15)
            took = time.monotonic() - gone
            err = pt.err.text()
    events, problems = parse_events(out)
    assert not problems, problems[:5]
    log("ping: %s; pktrace exit %d after %.1f s, %d events; %s" % (
        ping.stdout.strip().splitlines()[-2:], rc, took, len(events), err.strip()[-300:]))
    assert rc == 1 and took < 2.5, "exit %d, %.1f s after the deletion: %s" % (rc, took, err)
    assert "pktrace: -i 'dum0': the interface is gone" in err, err
    want = [("egress", "EchoRequest"), ("ingress", "EchoReply")] * 3
    assert [(e["direction"], e["proto"]["typeCode"]) for e in events] == want and all(
        e["iface"] == "dum0" for e in events), "ping's 3 requests and replies: %r" % events
    check_summary(err, len(events))


@test
def habits_once_ip_options(w):
    """--once on a connection whose client sends IPv4 options (record route): every packet
    once. The receive path copies such a packet's data before the socket sees it (another
    buffer, the same sk_buff), which must not make it new."""
    port = rand_port()
    srv, cli = rand_name("hrs"), rand_name("hrc")
    pcap = os.path.join(w, "lo.pcap")
    rr = "070b04" + "00" * 8 + "00"  # record route, two slots; then EOL (IHL 8)
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(["--once", "-s", "comm=%s,%s" % (srv, cli)], w) as pt:
        _, c = run_pair(srv, cli, port, client_opts={"rounds": 3, "ip_options": rr})
        time.sleep(0.5)
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    with_opts = sum(1 for p in pkts if p["src_port"] == c["port"] and p["ip_hdr_len"] == 32)
    log("%d packets (%d with the client's IP options), %d events" % (
        len(pkts), with_opts, len(events)))
    assert with_opts >= 5, "scenario broken: %d client packets with IP options" % with_opts
    same_packets(events, pkts, "--once, IP options")


@test
def habits_once_receiver_in_scope(w):
    """--once with only the server in scope: the client's packets shown where they arrive."""
    port = rand_port()
    srv, cli = rand_name("hos"), rand_name("hoc")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(["--once", "-s", "comm=" + srv], w) as pt:
        run_pair(srv, cli, port, client_opts={"rounds": 3, "size": 500})
        time.sleep(1)
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    dirs = collections.Counter(e["direction"] for e in events)
    log("%d packets, %d events %s" % (len(pkts), len(events), dict(dirs)))
    assert {e["processName"] for e in events} == {srv}, "a process other than the server"
    assert all((e["direction"] == "egress") == (e["src_port"] == port) for e in events), \
        "the server's packets must be shown as sent, the client's as received"
    same_packets(events, pkts, "--once, the server in scope")
