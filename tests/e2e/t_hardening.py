"""Hardening tests (issue 8): no invisible packet, identities that stay true.

  ipv6_ext_chains       in-window TCP data hidden behind IPv6 extension-header chains
  uts_names_not_reused  host names of short-lived UTS namespaces (inode numbers reused) and
                        after sethostname
  mptcp_owner           MPTCP subflows attributed to the processes owning the MPTCP sockets
  late_accept_20000     20 000 connections queued before the first accept keep their owner
  stop_signals          SIGHUP/SIGQUIT stop cleanly, SIGUSR1 counts, a command's leftovers end
"""
import contextlib
import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import time

from e2elib import CSUM_SRC
from e2elib import (PEERS, PKTRACE, PYTHON, Proc, capture, check_summary, describe,
                    expect_both_sides, expect_local_addrs, expect_one_side, ftrace_events,
                    in_agent_softirq, local_port, log, match, netns, parse_events, peer,
                    pktrace, rand_name, rand_port, rand_tag, read_pcap, release, run, run_pair,
                    test, Skip)
from peers import parse_chain
from t_attribution import SUMMARY_RX, held_summary, scope, who


# ---------------------------------------------------------------------------------------------
# Shared pieces

def stop_pktrace(pt, sig=signal.SIGINT, timeout=15):
    """Pktrace.stop(), but the IPv6 extension-header summary the metadata may carry
    ("ipv6_ext": {"count", "length", "types"}) is taken out before the harness's strict
    validation and kept in each flat event as "ipv6_ext" (None when absent)."""
    time.sleep(0.3)
    if pt.proc.alive():
        pt.proc.signal(sig)
    try:
        rc = pt.proc.p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pt.proc.close()
        raise AssertionError("pktrace did not exit within %ds of %s; stderr: %s" % (
            timeout, signal.Signals(sig).name, pt.proc.err.tail()))
    pt.returncode = rc
    assert rc == 0, "pktrace exited %s after %s; stderr: %s" % (
        rc, signal.Signals(sig).name, pt.proc.err.text())
    exts = {}
    plain = pt.events_path + ".plain"
    with open(pt.events_path, "rb") as f, open(plain, "wb") as g:
        for n, raw in enumerate(f.read().splitlines(keepends=True), 1):
            try:
                ev = json.loads(raw)
                md = ev["args"][0]["value"]
            except (ValueError, KeyError, IndexError, TypeError):
                g.write(raw)  # parse_events reports it
                continue
            if isinstance(md, dict) and "ipv6_ext" in md:
                exts[n] = md.pop("ipv6_ext")
                raw = json.dumps(ev, separators=(",", ":")).encode() + (
                    b"\n" if raw.endswith(b"\n") else b"")
            g.write(raw)
    events, problems = parse_events(plain)
    assert not problems, "malformed pktrace output (%d problems):\n      %s" % (
        len(problems), "\n      ".join(problems[:10]))
    for e in events:
        e["ipv6_ext"] = exts.get(e["line"])
    stderr = pt.stderr()
    log("pktrace: %d events; summary: %s" % (len(events), " | ".join(
        l.strip() for l in stderr.splitlines() if "ready" not in l)[:400]))
    check_summary(stderr, len(events))
    return events


def summary(stderr):
    m = re.search(SUMMARY_RX, stderr)
    assert m, "no summary line of the known form in: %r" % stderr[-400:]
    keys = ("written", "seen", "out_of_scope", "no_owner", "lost", "ringbuf", "decode",
            "malformed", "not_written")
    return dict(zip(keys, (int(x) for x in m.groups())))


@contextlib.contextmanager
def sysctl(name, value):
    """Set /proc/sys/NAME to value for the block (only if it differs), restore it after."""
    path = "/proc/sys/" + name.replace(".", "/")
    with open(path) as f:
        old = f.read().strip()
    changed = old.split() != str(value).split()
    if changed:
        with open(path, "w") as f:
            f.write(str(value))
        log("sysctl %s: %s -> %s (restored after the test)" % (name, old, value))
    try:
        yield old
    finally:
        if changed:
            with open(path, "w") as f:
                f.write(old)


def ok(proc, timeout=20):
    assert proc.wait(timeout) == 0, "%s failed: %s" % (proc.name, proc.err.text())


def mac_of(ns, dev):
    return json.loads(run(["ip", "-n", ns, "-j", "link", "show", dev]).stdout)[0]["address"]


# ---------------------------------------------------------------------------------------------
# 1. No invisible packet

# NAME=CHAIN (peers.py parse_chain: TYPE[:BYTES][xCOUNT], comma-separated, in chain order);
# a NAME ending in +tcpopts also carries 40 bytes of TCP options (30 NOPs + timestamps).
EXT_CHAINS = [
    ("dst9", "60x9"),                 # 9 destination-options headers (8 bytes each)
    ("dst12", "60x12"),               # 12 headers
    ("mix12", "0,43,44,60x9"),        # hop-by-hop, routing (type 253, 0 left), atomic
                                      # fragment, 9 destination options: 12 headers
    ("dst20", "60x20"),               # 20 headers
    ("mix20", "0,43,44,60x17"),       # hop-by-hop, routing (type 253, 0 left), atomic
                                      # fragment, 17 destination options: 20 headers
    ("dst40", "60x40"),               # 40 headers
    ("dst70", "60x70"),               # 70 headers: the event's type list stops at 64
    ("dst2k", "60:2048"),             # one 2048-byte destination-options header
    ("hbh160+tcpopts", "0:160"),      # a 160-byte hop-by-hop header, 40 bytes of TCP options
]
EXT_TYPES_MAX = 64
# Kernels differ in how long a chain they deliver: 6.18.44 (this CI's build) drops a packet
# with more than 12 extension headers before any socket sees it. A longer chain the kernel
# refuses has no event (asserted: nothing is invented); up to 12 must be delivered.
EXT_ALWAYS_DELIVERED = 12
EXT_NAMES = {"ipv6.hopopts": 0, "ipv6.routing": 43, "ipv6.fraghdr": 44, "ipv6.dstopts": 60}


def tshark_ext_chains(pcap):
    """Per frame number, the IPv6 extension headers tshark dissected before TCP, in order:
    [(type, length in bytes)]. Read from tshark's PDML (the protocol tree in wire order)."""
    import xml.etree.ElementTree as ET
    r = subprocess.run(["tshark", "-n", "-r", pcap, "-Y", "tcp", "-T", "pdml"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, "tshark -T pdml failed: %s" % r.stderr.decode()[-300:]
    chains = {}
    for pkt in ET.fromstring(r.stdout).iter("packet"):
        frame = ipv6 = None
        for proto in pkt.findall("proto"):
            if proto.get("name") == "geninfo":
                frame = int(next(f.get("show") for f in proto.iter("field")
                                 if f.get("name") == "num"))
            elif proto.get("name") == "ipv6":
                ipv6 = proto
        if ipv6 is None:
            continue
        chain = []
        # tshark nests each extension header as a protocol of its own (ipv6.hopopts,
        # ipv6.dstopts, ...) inside ipv6, in wire order; its length is its len_oct field
        # (8 bytes for the fragment header, which has none).
        for el in ipv6.iter():
            typ = EXT_NAMES.get(el.get("name"))
            if el.tag != "proto" or typ is None:
                continue
            size = 8
            for sub in el.iter("field"):
                if sub.get("name", "").endswith(".len_oct"):
                    size = int(sub.get("show"))
                    break
            chain.append((typ, size))
        chains[frame] = chain
    return chains


def ext_payload(name, i, size):
    return (b"%s-%d-" % (name.encode(), i)).ljust(size, b"z")


@test
def ipv6_ext_chains(w):
    """In-window TCP data hidden behind IPv6 extension-header chains (9, 12, 20 and 40 headers,
    a 2 KiB destination-options header, a 160-byte hop-by-hop header with 40 bytes of TCP
    options, 70 headers) reaches a traced server in a namespace: the kernel delivers each
    segment (those of more than 12 headers only if this kernel takes such chains: if not, they
    must have no event), and pktrace emits its ingress event with the right seq, flags, ports and
    packet_len (wire IPv6 length + 40), with "ipv6_ext" (count, length, types in chain order,
    at most 64 types) as tshark dissects the chain; nothing is a decode error or "not TCP"."""
    tag = rand_tag()
    na, nb = "pkt-xa-" + tag, "pkt-xb-" + tag
    va, vb = "pxa" + tag, "pxb" + tag
    ipa, ipc = "fd00:0:0:8::a", "fd00:0:0:8::c"  # ::c is configured nowhere: the injector's
    port = rand_port()
    sn, jn = rand_name("e2s"), rand_name("e2j")
    size = 100
    pcap = os.path.join(w, "a.pcap")
    with netns(na), netns(nb):
        run(["ip", "link", "add", va, "netns", na, "type", "veth", "peer", "name", vb,
             "netns", nb])
        for ns, dev in ((na, va), (nb, vb)):
            run(["ip", "-n", ns, "link", "set", dev, "mtu", "9000", "up"])
        run(["ip", "-n", na, "addr", "add", ipa + "/64", "dev", va, "nodad"])
        # The injector's namespace has no IPv6 on its end: the kernel there neither answers
        # nor resets the server's packets; only the injector's packet socket sees them.
        run(["ip", "netns", "exec", nb, "sysctl", "-qw",
             "net.ipv6.conf.%s.disable_ipv6=1" % vb])
        mac_a, mac_b = mac_of(na, va), mac_of(nb, vb)
        run(["ip", "-n", na, "neigh", "replace", ipc, "lladdr", mac_b, "dev", va,
             "nud", "permanent"])
        chains = ";".join("%s=%s" % c for c in EXT_CHAINS)
        with capture(va, "ip6 and not icmp6", pcap, ns=na) as cap, \
                pktrace(scope(sn), w) as pt:
            with peer("sink", sn, port, ns=na, bind=ipa) as srv:
                srv.expect(r"^LISTENING")
                with peer("ext6inject", jn, port, ns=nb, iface=vb, src=ipc, connect=ipa,
                          src_mac=mac_b, dst_mac=mac_a, chains=chains, size=size,
                          gap=0.05) as inj:
                    rc = inj.wait(40)
                segs = [l.split() for l in inj.out.lines if l.startswith("SEG ")]
                srv.expect(r"^(RESET|EOF)", 10)
                digest = srv.expect(r"^DIGEST (\w+)").group(1)
                read = [int(l.split()[1]) for l in srv.out.lines if l.startswith("READ ")]
                ok(srv)
            cap.stop()
            events = stop_pktrace(pt)
    log("injected: " + ", ".join("%s %s" % (s[1], s[4]) for s in segs))
    assert len(segs) == len(EXT_CHAINS), "injector output: %s / %s" % (
        inj.out.lines, inj.err.text())
    notacked = [s[1] for s in segs if s[4] != "ACKED"]
    refused = {n for n, spec in EXT_CHAINS
               if n in notacked and len(parse_chain(spec)) > EXT_ALWAYS_DELIVERED}
    assert (rc == 0) == (not notacked) and set(notacked) == refused, (
        "scenario broken: the kernel did not acknowledge %s (injector exit %s: %s)" % (
            notacked, rc, inj.err.text()))
    if refused:
        log("this kernel drops chains of more than %d headers: %s not delivered" % (
            EXT_ALWAYS_DELIVERED, sorted(refused)))
    acked = [(i, n, spec) for i, (n, spec) in enumerate(EXT_CHAINS) if n not in refused]
    want = hashlib.md5(b"".join(ext_payload(n, i, size) for i, n, _ in acked)).hexdigest()
    assert read and read[-1] == size * len(acked) and digest == want, (
        "scenario broken: the server read %s bytes (digest %s), the injector sent %d (%s)" % (
            read[-1:] or 0, digest, size * len(acked), want))
    log("the server read all %d bytes of the %d segments delivered" % (read[-1], len(acked)))

    pkts = read_pcap(pcap)
    wire_chains = tshark_ext_chains(pcap)
    srv_o = who(srv.peer_pid, sn)
    del srv_o["ppid"]  # `ip netns exec` may fork

    def wire_of(name, spec, s):
        """The segment's one packet on the wire, by its seq, length and chain (a refused
        segment's seq is its successor's too)."""
        seq, plen, built = int(s[2]), int(s[3]), parse_chain(spec)
        wire = [p for p in pkts if p["dst_ip"] == ipa and p["seq"] == seq
                and p["payload"] == plen and
                [t for t, _ in wire_chains.get(p["frame"], [])] == [t for t, _ in built]]
        assert len(wire) == 1, "tshark shows %d packets for segment %s (seq %d, chain %s)" % (
            len(wire), name, seq, built)
        chain = wire_chains.get(wire[0]["frame"], [])
        assert sum(n for _, n in chain) == sum(n for _, n in built), (
            "tshark dissects segment %s's chain as %s, the injector built %s" % (
                name, chain, built))
        return wire[0]

    # A refused segment is on the wire and has no event: the kernel dropped it before the
    # socket (assert_exact below fails on an event without its expected packet).
    dropped = {wire_of(n, spec, s)["frame"] for (n, spec), s in zip(EXT_CHAINS, segs)
               if n in refused}
    m = match(expect_local_addrs([p for p in pkts if p["frame"] not in dropped], va, {ipa},
                                 {port: srv_o}), events)
    m.assert_exact("events of a server fed through extension-header chains")

    # Every delivered segment is on the wire once, with its chain, and its event reports it.
    by_frame = {e["frame"]: a for e, a in m.pairs}
    problems = []
    for (name, spec), s in zip(EXT_CHAINS, segs):
        if name in refused:
            continue
        seq, plen = int(s[2]), int(s[3])
        p = wire_of(name, spec, s)
        chain = wire_chains.get(p["frame"], [])
        ev = by_frame[p["frame"]]
        want_ext = {"count": len(chain), "length": sum(n for _, n in chain),
                    "types": [t for t, _ in chain][:EXT_TYPES_MAX]}
        got = ev.get("ipv6_ext")
        ok_flags = ev["PSH"] and ev["ACK"] and not (ev["SYN"] or ev["FIN"] or ev["RST"])
        if got != want_ext or not ok_flags or ev["packet_len"] != p["packet_len"]:
            problems.append("%s (frame %d, seq %d, %d payload bytes, packet_len %d): event "
                            "ipv6_ext %s, want %s%s" % (
                                name, p["frame"], seq, plen, p["packet_len"],
                                json.dumps(got), json.dumps(want_ext),
                                "" if ok_flags else "; flags wrong: " + describe(ev)))
        else:
            log("%s: frame %d seq %d packet_len %d ipv6_ext count %d length %d types %d" % (
                name, p["frame"], seq, p["packet_len"], got["count"], got["length"],
                len(got["types"])))
    plain = [a for e, a in m.pairs if not wire_chains.get(e["frame"])]
    bad_plain = [a for a in plain if a.get("ipv6_ext") not in (None, {"count": 0, "length": 0,
                                                                       "types": []})]
    if bad_plain:
        problems.append("%d packets without extension headers report one, e.g. %s: %s" % (
            len(bad_plain), describe(bad_plain[0]), json.dumps(bad_plain[0]["ipv6_ext"])))
    assert not problems, "extension-header chains misreported:\n      " + \
        "\n      ".join(problems)

    stderr = pt.stderr()
    s = summary(stderr)
    assert s["lost"] == 0 and s["decode"] == 0 and s["malformed"] == 0, (
        "summary counts events lost: %s" % s)
    for rx in (r"decode error '", r"without a TCP header", r"headers over"):
        bad = [l for l in stderr.splitlines() if re.search(rx, l)]
        assert not bad, "summary: %s" % bad


# ---------------------------------------------------------------------------------------------
# 2. Identities that stay true: UTS namespaces

def uts_ns_of(proc):
    m = proc.expect(r"^UTSNS uts:\[(\d+)\]")
    return int(m.group(1))


@test
def uts_names_not_reused(w):
    """Four short-lived clients, each in a UTS namespace of its own (alpha, bravo, charlie,
    delta), one after another, so the kernel may hand a later namespace the inode number of
    an earlier one: each client's events carry its own host name. Then one namespace whose
    host name changes between two clients (x1, then sethostname x2): the second shows x2."""
    port = rand_port()
    sn = rand_name("e2s")
    names = ["alpha", "bravo", "charlie", "delta"]
    cns = [rand_name("e2" + n[0]) for n in names]
    x1n, x2n = rand_name("e2x"), rand_name("e2y")
    x1, x2 = "x1-" + rand_tag(), "x2-" + rand_tag()
    pcap = os.path.join(w, "lo.pcap")
    owners, inodes = {}, []
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(scope(sn, x1n, x2n, *cns), w) as pt:
        with peer("server", sn, port, accept_count=len(names) + 2) as srv:
            srv.expect(r"^LISTENING")
            for host, cn in zip(names, cns):
                prefix = ["unshare", "--uts", "/bin/sh", "-c",
                          'hostname "$0" && echo UTSNS $(readlink /proc/self/ns/uts) && '
                          'exec "$@"', host]
                with peer("client", cn, port, prefix=prefix, rounds=2) as cli:
                    inodes.append(uts_ns_of(cli))
                    lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                    ok(cli)
                o = who(cli.peer_pid, cn, host=host)
                del o["ppid"]  # unshare may fork
                owners[lport] = o
            # One namespace, sethostname between two clients (sh forks each client).
            client = [PYTHON, PEERS, "client", "--port", str(port), "--rounds", "2", "--name"]
            sh = ('hostname %s; echo UTSNS $(readlink /proc/self/ns/uts); %s %s || exit 1; '
                  'hostname %s; %s %s') % (x1, " ".join(client), x1n, x2, " ".join(client), x2n)
            proc = Proc(["unshare", "--uts", "/bin/sh", "-c", sh], name="uts-sethostname")
            inodes.append(uts_ns_of(proc))
            ok(proc, 30)
            pids = [int(x) for x in re.findall(r"^PID (\d+)$", proc.out.text(), re.M)]
            ports = [int(x) for x in re.findall(r"^CONNECTED (\d+)$", proc.out.text(), re.M)]
            assert len(pids) == len(ports) == 2, "sethostname clients: %s" % proc.out.text()
            for pid, lport, cn, host in zip(pids, ports, (x1n, x2n), (x1, x2)):
                o = who(pid, cn, host=host)
                del o["ppid"]
                owners[lport] = o
            ok(srv)
        cap.stop()
        events = stop_pktrace(pt, sig=signal.SIGTERM)
    reused = len(inodes) - len(set(inodes))
    log("UTS namespace inode numbers: %s (%s)" % (
        inodes, "%d reused" % reused if reused else "none reused this time"))
    pkts = read_pcap(pcap)
    owners[port] = who(srv.peer_pid, sn)
    m = match(expect_both_sides(pkts, "lo", owners), events)
    for lport, o in owners.items():
        if lport != port:
            got = sorted({e["hostName"] for e in events if local_port(e) == lport})
            log("client %s (port %d): hostName %s, want %s" % (o["name"], lport, got,
                                                               o["host"]))
    m.assert_exact("events of clients in short-lived UTS namespaces")


# ---------------------------------------------------------------------------------------------
# 3. Identities that stay true: MPTCP

@test
def mptcp_owner(w):
    """An MPTCP client and server (IPPROTO_MPTCP) on loopback: every packet of the subflow
    (TCP with option kind 30) has both its events attributed to the client or server process
    (pid, thread, name); none with pid 0 and nothing "without a known owner" under a scope."""
    if not os.path.exists("/proc/sys/net/mptcp/enabled"):
        raise Skip("this kernel has no MPTCP (net.mptcp.enabled missing)")
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with sysctl("net.mptcp.enabled", 1):
        with capture("lo", "tcp port %d" % port, pcap) as cap, \
                pktrace(scope(sn, cn), w) as pt:
            with peer("mptcpserver", sn, port, gap=0.3) as srv:
                srv.expect(r"^LISTENING")
                with peer("mptcpclient", cn, port, rounds=4, size=300, gap=0.3) as cli:
                    lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                    ok(cli)
                ok(srv)
            time.sleep(0.5)  # the subflows' last packets (teardown) after both closed
            cap.stop()
            events = stop_pktrace(pt)
    pkts = read_pcap(pcap)
    r = run(["tshark", "-n", "-r", pcap, "-Y", "tcp.options.mptcp.subtype", "-T", "fields",
             "-e", "frame.number"], timeout=60)
    n_mp = len(r.stdout.split())
    assert n_mp, "scenario broken: no packet carries an MPTCP option (kind 30)"
    log("%d of %d wire packets carry an MPTCP option" % (n_mp, len(pkts)))
    owners = {port: who(srv.peer_pid, sn), lport: who(cli.peer_pid, cn)}
    zero = [e for e in events if e["processId"] == 0]
    m = match(expect_both_sides(pkts, "lo", owners), events)
    m.assert_exact("MPTCP subflow events")
    assert not zero, "%d events with pid 0, e.g. %s" % (len(zero), describe(zero[0]))
    s = summary(pt.stderr())
    assert s["no_owner"] == 0, (
        "summary: %d packets without a known owner (the scope is the two MPTCP processes)" %
        s["no_owner"])


# ---------------------------------------------------------------------------------------------
# 4. Identities that stay true: 20 000 connections accepted late

@contextlib.contextmanager
def nofile_limit():
    """RLIMIT_NOFILE of this process (inherited by the peers) raised to its hard limit;
    yields that limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            log("RLIMIT_NOFILE: %d -> %d (the hard limit)" % (soft, hard))
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def late_accepted(w, want, port, pn, wn, cn):
    """want connections from client processes named cn queued on a listener of a process
    named pn before its forked worker (wn) accepts any; then the worker accepts each, sends it
    one byte and closes it (a burst of close() calls while the clients' delayed ACKs of the
    FINs come in softirq), and the clients reset them. Returns (the listener's peer, the
    worker's pid, the clients' local ports)."""
    with nofile_limit() as limit, \
            sysctl("net.core.somaxconn", 65535), \
            sysctl("net.ipv4.tcp_max_syn_backlog", 65535):
        per_proc = limit - 64
        assert per_proc > 100, "RLIMIT_NOFILE hard limit %d is too low" % limit
        nclients = max(2, -(-want // per_proc))
        counts = [want // nclients + (1 if i < want % nclients else 0) for i in range(nclients)]
        log("%d connections from %d client processes (%s; open-file hard limit %d)" % (
            want, nclients, counts, limit))
        t0 = time.monotonic()
        with peer("lateaccept", pn, port, worker_name=wn, backlog=want + 1000,
                  count=want, go=True) as srv, contextlib.ExitStack() as stack:
            srv.expect(r"^LISTENING")
            worker = int(srv.expect(r"^WORKER (\d+)").group(1))
            clis = [stack.enter_context(peer("manyclients", cn, port, count=n,
                                             ports_file=os.path.join(w, "ports%d" % i)))
                    for i, n in enumerate(counts)]
            for cli in clis:
                cli.expect(r"^CONNECTED_ALL", 40)
            t1 = time.monotonic()
            log("%d connections queued in %.1fs" % (want, t1 - t0))
            release(srv)
            srv.expect(r"^SENT_ALL", 30)
            for cli in clis:
                cli.expect(r"^GOT_ALL", 30)
                ok(cli, 30)
            ok(srv)
        log("accepted, sent and reset in %.1fs" % (time.monotonic() - t1))
    ports = set()
    for i in range(nclients):
        with open(os.path.join(w, "ports%d" % i)) as f:
            ports |= {int(x) for x in f.read().split()}
    assert len(ports) == want, "the clients reported %d ports for %d connections" % (
        len(ports), want)
    return srv, worker, ports


@test
def late_accept_20000(w):
    """20 000 connections queued on a listener (made by a parent process) before its forked
    worker accepts any; then the worker accepts each, sends it one byte and closes it: every
    server-side packet - SYN, SYN-ACK and handshake ACK (held until the worker takes the
    connection), the data byte, the FIN, the client's ACKs and RST - belongs to the worker,
    none to the listener's owner or pid 0; the summary counts every held packet as taken by
    that process (none to the acceptor or listener, none early), nothing lost, and written
    events = the events found for the connections. --hold-time 30 keeps the handshakes held
    until the accept; the hold's size limits stay at their defaults: a handshake packet the
    hold releases early for lack of room goes to the listener's owner, allowed only as long as
    the summary counts at least as many packets released early.

    The clients (several processes, each under the open-file hard limit) hold every
    connection open until its byte arrives, then reset it (SO_LINGER 0: no timewait left).
    With ~160 000 events tcpdump + tshark would not fit the 60 s budget: tcpdump captures only
    the RSTs (each must match its event exactly, with the worker as owner); the rest of
    pktrace's events are compared with the known set of connections (the clients' local
    ports): per
    connection one ingress SYN, one egress SYN-ACK, one egress packet with the data byte, one
    FIN (on that packet or alone), one to three ingress ACKs, at most one RST, nothing else.

    Excused, and logged: RSTs that met the server's timewait socket (only the device path sees
    those) in a softirq the kernel ran on a thread of pid 1, this machine's VM agent, where no
    tracing program runs. The kernel's own trace of the packets lo received (an ftrace
    instance) bounds them: no more RST events may be missing than lo received packets of a
    RST's size or less (52 bytes) in such a softirq, and at most 5 % (CI saw 1.1 % closes there in flows_close_burst_20000)."""
    want = 20000
    port = rand_port()
    pn, wn, cn = rand_name("e2p"), rand_name("e2w"), rand_name("e2m")
    rst_pcap = os.path.join(w, "rst.pcap")
    with capture("lo", "tcp port %d and tcp[tcpflags] & tcp-rst != 0" % port,
                 rst_pcap, buffer_kib=262144, snaplen=128) as cap, \
            ftrace_events("net/netif_receive_skb", 'len <= 52 && name == "lo"') as received, \
            pktrace(scope(pn, wn) + ["--hold-time", "30"], w) as pt:
        srv, worker, ports = late_accepted(w, want, port, pn, wn, cn)
        cap.stop()
        events = stop_pktrace(pt, timeout=30)
    in_agent = sum(1 for task, tid, irq, text in received if in_agent_softirq(tid, irq))
    wo = who(worker, wn, ppid=srv.peer_pid)
    count = want
    per = {}
    wrong, foreign, early = [], [], []
    for e in events:
        if e["src_port"] == port and e["direction"] == "egress":
            cport = e["dst_port"]
        elif e["dst_port"] == port and e["direction"] == "ingress":
            cport = e["src_port"]
        else:
            cport = None
        if cport not in ports or e["iface"] != "lo" or e["src_ip"] != "127.0.0.1":
            foreign.append(e)
            continue
        payload = e["packet_len"] - 20 - 4 * e["dataOffset"]
        if e["SYN"] and not e["ACK"]:
            kind = "syn"
        elif e["SYN"]:
            kind = "synack"
        elif e["RST"]:
            kind = "rst"
        elif payload == 1 and e["direction"] == "egress":
            kind = "data+fin" if e["FIN"] else "data"
        elif payload == 0 and e["FIN"] and e["direction"] == "egress":
            kind = "fin"
        elif payload == 0 and e["ACK"] and not e["FIN"] and e["direction"] == "ingress":
            kind = "ack"
        else:
            kind = "other"
        if any(e.get(k) != wo[o] for k, o in (("processId", "pid"), ("threadId", "tid"),
                                             ("processName", "name"),
                                             ("parentProcessId", "ppid"), ("userId", "uid"))):
            # Allowed only for a handshake packet the hold released early (counted), with its
            # provisional owner: the listener's (the parent's).
            if kind in ("syn", "synack", "ack") and e["processId"] == srv.peer_pid and \
                    e["processName"] == pn:
                early.append(e)
            else:
                wrong.append(e)
        per.setdefault(cport, {}).setdefault(kind, 0)
        per[cport][kind] += 1
    by_owner = {}
    for e in wrong:
        by_owner[(e["processId"], e["processName"])] = by_owner.get(
            (e["processId"], e["processName"]), 0) + 1
    log("%d events for %d connections; %d handshake events released early to the listener's "
        "owner %d; %d others attributed to someone else than the worker %d: %s" % (
            len(events), len(per), len(early), srv.peer_pid, len(wrong), worker, by_owner))
    assert not foreign, "%d events of no connection of the test, e.g. %s" % (
        len(foreign), describe(foreign[0]))
    assert not wrong, (
        "%d of %d events not attributed to the acceptor (worker pid %d %s): by (pid, name) %s;"
        " e.g. %s" % (len(wrong), len(events), worker, wn, by_owner,
                      "; ".join(describe(e) for e in wrong[:3])))
    bad = []
    for cport in sorted(ports):
        k = per.get(cport, {})
        fins = k.get("data+fin", 0) + k.get("fin", 0)
        datas = k.get("data+fin", 0) + k.get("data", 0)
        if (k.get("syn"), k.get("synack"), datas, fins) != (1, 1, 1, 1) or \
                k.get("rst", 0) > 1 or \
                not 1 <= k.get("ack", 0) <= 3 or k.get("other"):
            bad.append("port %d: %s" % (cport, k))
    assert not bad, "%d of %d connections without exactly their expected events: %s" % (
        len(bad), count, "; ".join(bad[:8]))
    stderr = pt.stderr()
    s = summary(stderr)
    h = held_summary(stderr)
    assert s["lost"] == 0, "summary counts lost events: %s" % s
    assert s["written"] == len(events), "summary: %d written, output %d" % (
        s["written"], len(events))
    held_min = 3 * count  # SYN, SYN-ACK and handshake ACK of every connection
    assert h["held"] >= held_min and h["fallback"] == 0, (
        "summary of held packets: %s; want at least %d held, none to the acceptor or "
        "listener's owner (all were taken within the hold time)" % (h, held_min))
    assert len(early) <= h["early"], (
        "%d handshake events went to the listener's owner, the summary counts only %d "
        "released early (a silent fallback): %s" % (len(early), h["early"],
                                                    describe(early[0])))
    fallback = [l for l in stderr.splitlines()
                if re.search(r"full|overflow|fallback|lost", l, re.I) and "events lost" not in l]
    assert not fallback, "summary counts a fallback: %s" % fallback
    log("summary: %d written, %d lost; held %d, %d taken" % (
        s["written"], s["lost"], h["held"], h["taken"]))
    # Last, the clients' RSTs, the one kind of packet tshark reads here (20 000 of them): each
    # has its event, exactly, with the worker (the server's socket ends in FIN_WAIT2, the RST
    # may meet it as a timewait socket).
    rsts = [p for p in read_pcap(rst_pcap) if p["dst_port"] == port]
    # tcpdump may drop some of the burst on this 2-core machine (it says how many): those RSTs
    # are left out of the comparison, but pktrace must still have one for every connection.
    m_drop = re.search(r"(\d+) packets dropped by kernel", cap.stats)
    dropped = int(m_drop.group(1)) if m_drop else 0
    assert want - dropped <= len(rsts) <= want, (
        "scenario broken: tshark shows %d RSTs for %d connections (tcpdump dropped %d)" % (
            len(rsts), want, dropped))
    pk_rsts = [e for e in events if e["RST"]]
    excused = want - len(pk_rsts)
    log("lo received %d packets of 52 bytes or less in a softirq on the VM agent's threads "
        "(no tracing program runs there); RST events missing: %d" % (in_agent, excused))
    assert 0 <= excused <= min(in_agent, want // 20), (
        "%d RST events for %d connections (at most %d may be missing: lo received that many "
        "packets of a RST's size in a softirq on the VM agent's threads)" % (
            len(pk_rsts), want, min(in_agent, want // 20)))
    seen_ports = {p["src_port"] for p in rsts}
    log("every connection: one SYN, SYN-ACK, data byte and FIN event; all the worker's but %d "
        "handshake events released early (counted) to the listener's owner; %d RST events, "
        "%d of them compared (tshark saw those)" % (len(early), len(pk_rsts), len(rsts)))
    m = match(expect_one_side(rsts, "lo", {port}, {port: wo}),
              [e for e in pk_rsts if e["src_port"] in seen_ports])
    if m.missing:
        # Say whether the hooks counted them at all (out of scope = the clients' events).
        log("%d RSTs without an event; summary: %d packets seen = %d out of scope + %d "
            "written + %d lost + %d without owner %s" % (
                len(m.missing), s["seen"], s["out_of_scope"], s["written"], s["lost"],
                s["no_owner"], "(every packet seen is accounted for: the missing RSTs were "
                "never seen, invisible)" if s["seen"] == s["out_of_scope"] + s["written"] +
                s["lost"] + s["no_owner"] else ""))
    m.assert_exact("the clients' RSTs (each reaching the server's socket in FIN_WAIT2 or its "
                   "timewait socket)", allow_missing=m.missing if len(m.missing) <= excused
                   else ())


def pid_alive(pid):
    """A process that exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(x) for x in f.read().split()]


@test
def stop_signals(w):
    """SIGHUP and SIGQUIT stop pktrace as SIGINT does: every packet of the pair (tcpdump's),
    the summary, exit 0. SIGUSR1 prints the counts so far and SIGUSR2 harms nothing; a SIGHUP
    ignored at start (nohup) stays ignored. What a command leaves running ends with it."""
    for sig in (signal.SIGHUP, signal.SIGQUIT):
        port, sn, cn = rand_port(), rand_name("sgs"), rand_name("sgc")
        pcap = os.path.join(w, "%s.pcap" % sig.name)
        with capture("lo", "tcp port %d" % port, pcap) as cap, \
                pktrace(scope(sn, cn), w, tag=sig.name) as pt:
            srv, cli = run_pair(sn, cn, port)
            cap.stop()
            if sig == signal.SIGHUP:
                pt.proc.signal(signal.SIGUSR1)
                pt.proc.expect_err(r"pktrace: so far, \d+ events written, \d+ packets seen, "
                                   r"0 events lost", timeout=5)
                pt.proc.signal(signal.SIGUSR2)
            events = pt.stop(sig=sig)  # exit 0 and the summary, or it fails
        m = match(expect_both_sides(read_pcap(pcap), "lo", {
            port: who(srv["pid"], sn), cli["port"]: who(cli["pid"], cn)}), events)
        m.assert_exact("stopped by %s" % sig.name)
        log("%s: exit 0, %d events, the summary" % (sig.name, len(events)))

    # nohup: SIGHUP ignored by the caller stays ignored.
    p = subprocess.Popen(["sh", "-c", "trap '' HUP; exec \"$0\" -s comm=%s" % rand_name("nh"),
                          PKTRACE], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ready = p.stderr.readline().decode()
        assert "pktrace: ready" in ready, ready
        p.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert p.poll() is None, "SIGHUP ended a pktrace started with SIGHUP ignored"
        p.send_signal(signal.SIGINT)
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
        p.stderr.close()

    # A command's background job, and one that ignores SIGTERM: neither outlives pktrace.
    pids = os.path.join(w, "pids")
    job = ("sleep 300 & echo $! >> %s; (trap '' TERM; exec sleep 301) & echo $! >> %s" % (
        pids, pids))
    r = subprocess.run([PKTRACE, "-F", "json", "-o", "/dev/null", "--", "sh", "-c", job],
                       capture_output=True, text=True, timeout=30)
    with open(pids) as f:
        left = [int(x) for x in f.read().split()]
    assert r.returncode == 0 and len(left) == 2, (r.returncode, r.stderr, left)
    alive = [x for x in left if pid_alive(x)]
    for x in alive:
        os.kill(x, signal.SIGKILL)
    assert not alive, "processes the command left outlived pktrace: %s" % alive
    log("nohup'ed SIGHUP ignored; the command's 2 background jobs ended with it")

    # A leftover that shuts down gracefully gets one SIGTERM, not one per poll; the orphans
    # reparented to the relay while the command runs do not pile up as zombies.
    count = os.path.join(w, "terms")
    graceful = ("import signal, sys, time\n"
                "n = []\n"
                "signal.signal(signal.SIGTERM, lambda *a: n.append(1))\n"
                "while not n:\n"
                "    time.sleep(0.01)\n"
                "time.sleep(0.15)\n"
                "open(sys.argv[1], 'w').write(str(len(n)))\n")
    job = ("%s -c \"$0\" %s & for i in $(seq 50); do (sleep 0.01 &); done; sleep 1.5" % (
        PYTHON, count))
    pt = Proc([PKTRACE, "-F", "json", "-o", "/dev/null", "--", "sh", "-c", job, graceful],
              name="pktrace")
    try:
        pt.expect_err(r"pktrace: ready", timeout=20)
        time.sleep(1)
        zombies = [c for r in children(pt.pid) for c in children(r) if not pid_alive(c)]
        assert pt.wait(20) == 0, pt.err.text()
    finally:
        pt.close()
    with open(count) as f:
        terms = int(f.read())
    assert not zombies and terms == 1, "zombies under the relay: %d; SIGTERMs to a graceful " \
        "leftover: %d (want 0 and 1)" % (len(zombies), terms)
    log("one SIGTERM to a graceful leftover, no zombies under the relay")


# SYNs written whole, Ethernet header included, on a packet socket bound to lo: IPv4 and IPv6,
# from sport to dport (closed: the kernel answers each with a RST).
INJECT_SCRIPT = r"""
import ctypes, socket, struct, sys, time
name, sport, dport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)
""" + CSUM_SRC + r"""
def tcp(src, dst, seq, ph):
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 1024, 0, 0)
    c = csum(ph(len(seg)) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("lo", 0))
v4 = socket.inet_aton("127.0.0.1")
v6 = socket.inet_pton(socket.AF_INET6, "::1")
for i in range(3):
    seg = tcp(v4, v4, 1000 + i, lambda n: v4 + v4 + struct.pack("!BBH", 0, 6, n))
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 7 + i, 0, 64, 6, 0, v4, v4)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(b"\0" * 12 + b"\x08\x00" + ip + seg)
    seg = tcp(v6, v6, 2000 + i, lambda n: v6 + v6 + struct.pack("!IxxxB", n, 6))
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(seg), 6, 64, v6, v6)
    s.send(b"\0" * 12 + b"\x86\xdd" + ip + seg)
    time.sleep(0.05)
print("DONE", flush=True)
"""


@test
def packet_socket_injector(w):
    """A process writes whole frames on a packet socket (AF_PACKET, as scapy's sendp, masscan
    and nmap --send-eth do): three IPv4 and three IPv6 SYNs on lo, to a closed port. No socket
    hook sees them: pktrace must still show each, at the device, with the injector's pid and
    name, under -s comm=<injector> and without a scope, field for field against tshark; under
    a scope that leaves it out, none (counted out of scope)."""
    jn, other = rand_name("e2j"), rand_name("e2o")
    sport, dport = rand_port(), rand_port()
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % dport, pcap) as cap, \
            pktrace(scope(jn), w, tag="scoped") as pt, \
            pktrace([], w, tag="unscoped") as all_pt, \
            pktrace(scope(other), w, tag="other") as out_pt:
        with Proc([PYTHON, "-c", INJECT_SCRIPT, jn, str(sport), str(dport)],
                  name="inject") as p:
            p.expect(r"^DONE")
            assert p.wait(10) == 0, "injector failed: %s" % p.err.text()
            pid = p.pid
        time.sleep(0.3)
        cap.stop()
        events = stop_pktrace(pt)
        all_events = stop_pktrace(all_pt)
        out_events = stop_pktrace(out_pt)
    pkts = [q for q in read_pcap(pcap) if q["src_port"] == sport]
    assert len(pkts) == 6, "scenario broken: tshark shows %d injected SYNs" % len(pkts)
    exp = expect_one_side(pkts, "lo", {sport}, {sport: {"pid": pid, "name": jn}})
    match(exp, events).assert_exact("the injected SYNs, -s comm=%s" % jn)
    mine = [e for e in all_events if e["src_port"] == sport]
    match(expect_one_side(pkts, "lo", {sport}, {sport: {"pid": pid, "name": jn}}),
          mine).assert_exact("the injected SYNs, no scope")
    assert not out_events, "-s comm=%s: %d events" % (other, len(out_events))
    log("6 injected SYNs: %d events scoped, %d unscoped, %d under another scope" % (
        len(events), len(mine), len(out_events)))
