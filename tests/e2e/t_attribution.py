"""Attribution tests with peers of the project's own: hand-overs, teardown, the hold.

The rules checked (README, Attribution): a packet belongs to the task (pid and thread) that
uses its connection; the packets of an accepted connection that arrive or leave before anyone
has sent or received on it (handshake included) are held and given to the first task that
does, or, after the hold time, to the acceptor (accept seen) or the listener's owner; RSTs the
kernel sends for a port with no socket carry pid 0 and appear only without a scope.
"""
import os
import re
import shutil
import socket
import time

from e2elib import (HELD_RX, PYTHON, Proc, capture, describe, events_for_ports,
                    expect_both_sides, expect_one_side, local_port, log, match, netns,
                    own_cgroup_ino, peer, pktrace, rand_name, rand_port, rand_tag, read_pcap,
                    release, run, test)

SUMMARY_RX = (r"pktrace: (\d+) events written, (\d+) packets seen \((\d+) out of scope, "
              r"(\d+) without a known owner\), (\d+) events lost \((\d+) ring buffer full, "
              r"(\d+) decode errors, (\d+) malformed records, (\d+) not written\)")


def who(pid, name, tid=None, ppid=None, **extra):
    """What the events of a task's packets must say about it (run.py's owner(), by task)."""
    o = {"pid": pid, "name": name, "tid": tid or pid,
         "ppid": os.getpid() if ppid is None else ppid, "uid": 0, "container": "",
         "host": socket.gethostname(), "cgroup": own_cgroup_ino(os.getpid())}
    o.update(extra)
    return o


def scope(*names):
    return ["-s", "comm=" + ",".join(names)]


def ok(proc, timeout=20):
    assert proc.wait(timeout) == 0, "%s failed: %s" % (proc.name, proc.err.text())


def attribute(exp, port_owners):
    """Give each expected event the owner of its local port (a port not in port_owners: no
    attribution expected)."""
    for e in exp:
        o = port_owners.get(local_port(e))
        if o is not None:
            e["owner"] = o
    return exp


def held_summary(stderr):
    """The summary's line about held packets (host-wide: every accepted connection is held,
    traced or not): log it, check that every held packet was released by exit (taken +
    acceptor/listener + early = held), return the counts (all 0 when there is no such line)."""
    lines = [l for l in stderr.splitlines() if re.search(r"\bheld\b", l, re.I)]
    for l in lines:
        log("summary: " + l.strip())
    m = re.search(HELD_RX, stderr)
    assert m or not lines, "a summary line about held packets of an unknown form: %s" % lines
    held, taken, fallback, early, oos = (int(x) for x in m.groups()) if m else (0,) * 5
    assert held == taken + fallback + early, (
        "packets left held at exit: %d held, %d taken + %d to the acceptor or listener's owner "
        "+ %d early = %d released" % (held, taken, fallback, early, taken + fallback + early))
    return {"held": held, "taken": taken, "fallback": fallback, "early": early, "oos": oos}


def first_io_time(proc):
    return float(proc.expect(r"^FIRSTIO ([\d.]+)").group(1))


def check_held_scenario(pkts, server_port, t_first_io):
    """The scenario really holds packets: data and the handshake reached the server's socket
    before its first send/receive. Returns how many server-side events came clearly (50 ms)
    before it: at least these must have been held and taken."""
    early = [p for p in pkts if p["dst_port"] == server_port and p["payload"]
             and p["time"] < t_first_io]
    assert early, ("scenario broken: no client data reached the server before its first "
                   "send/receive (FIRSTIO %.6f)" % t_first_io)
    n = sum(1 for p in pkts if server_port in (p["src_port"], p["dst_port"])
            and p["time"] < t_first_io - 0.05)
    log("%d client data packets (%d server-side events in all) reached or left the server "
        "socket before its first send/receive" % (len(early), n))
    return n


def check_taken(stderr, n_early):
    h = held_summary(stderr)
    assert h["taken"] >= n_early, (
        "summary: %d held packets went to the process that took the connection; this "
        "connection alone had %d before its first send/receive" % (h["taken"], n_early))


def all_to(label, m, o):
    n = sum(1 for e in m.expected if e.get("owner") is o)
    log("%d events attributed to %s (pid %d tid %d %s)" % (n, label, o["pid"], o["tid"],
                                                            o["name"]))
    return n


# ---------------------------------------------------------------------------------------------

@test
def accept_then_fork(w):
    """accept() in a parent that forks, closes its copy and never touches the connection: every
    server-side packet, SYN included, belongs to the child that does the I/O."""
    port = rand_port()
    sn, wn, cn = rand_name("e2s"), rand_name("e2k"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(scope(sn, wn, cn), w) as pt:
        with peer("acceptfork", sn, port, worker_name=wn, io_delay=0.4) as srv:
            srv.expect(r"^LISTENING")
            with peer("client", cn, port, rounds=3) as cli:
                lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                ok(cli)
            child = int(srv.expect(r"^WORKER (\d+)").group(1))
            t_io = first_io_time(srv)
            srv.expect(r"^PARENT_CLOSED")
            ok(srv)
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    n_early = check_held_scenario(pkts, port, t_io)
    child_o = who(child, wn, ppid=srv.peer_pid)
    cli_o = who(cli.peer_pid, cn)
    m = match(attribute(expect_both_sides(pkts, "lo"), {port: child_o, lport: cli_o}), events)
    all_to("the child", m, child_o)
    m.assert_exact("accept-then-fork events")
    check_taken(pt.stderr(), n_early)


@test
def scm_rights_handover(w):
    """Process A accepts and passes the fd over a Unix socket (SCM_RIGHTS) to process B, which
    does all the I/O; A never sends or receives: every server-side packet belongs to B."""
    port = rand_port()
    an, bn, cn = rand_name("e2a"), rand_name("e2b"), rand_name("e2c")
    path = os.path.join(w, "pass.sock")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(scope(an, bn, cn), w) as pt:
        with peer("fdrecv", bn, port, unix=path, io_delay=0.4) as b:
            b.expect(r"^READY")
            with peer("fdsend", an, port, unix=path) as a:
                a.expect(r"^LISTENING")
                with peer("client", cn, port, rounds=3) as cli:
                    lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                    ok(cli)
                a.expect(r"^PASSED")
                ok(a)
            b.expect(r"^RECEIVED")
            t_io = first_io_time(b)
            ok(b)
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    n_early = check_held_scenario(pkts, port, t_io)
    b_o = who(b.peer_pid, bn)
    cli_o = who(cli.peer_pid, cn)
    m = match(attribute(expect_both_sides(pkts, "lo"), {port: b_o, lport: cli_o}), events)
    all_to("the receiver of the fd", m, b_o)
    m.assert_exact("SCM_RIGHTS hand-over events")
    wrong = [e for e in events if e["processId"] == a.peer_pid]
    assert not wrong, "%d events of the passing process %d: %s" % (
        len(wrong), a.peer_pid, [describe(e) for e in wrong[:4]])
    check_taken(pt.stderr(), n_early)


@test
def threads_share_socket(w):
    """One accepted socket, two threads of one process: the reader thread receives each
    request, the sender thread sends each response; packets carry the thread (threadId and
    the thread's own name) that used the socket most recently.

    Each round: request half A, gap, half B; the reader has received A, so B and the server's
    ACKs until the response are the reader's. The sender waits a gap, sends response half a,
    waits, sends half b: both halves (half a leaves inside the sender's send(), before it
    returns) and the ACKs until the next request are the sender's. The handshake and the first
    request half go to the reader, the first to use the socket; the teardown (the reader's
    shutdown after its EOF) to the reader. Packets that arrive before a hand-over to the
    reader (request half A of later rounds, the client's FIN and the ACK answering it) are not
    attributed: the kernel cannot know who will read them."""
    port = rand_port()
    sn, rn, tn, cn = rand_name("e2s"), rand_name("e2r"), rand_name("e2t"), rand_name("e2c")
    size, gap, rounds = 64, 0.2, 3
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(scope(sn, rn, tn, cn), w) as pt:
        with peer("threadserver", sn, port, reader_name=rn, sender_name=tn, size=size,
                  gap=gap) as srv:
            srv.expect(r"^LISTENING")
            with peer("threadclient", cn, port, size=size, gap=gap, rounds=rounds) as cli:
                lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                ok(cli)
            rtid = int(srv.expect(r"^READER (\d+)").group(1))
            stid = int(srv.expect(r"^SENDER (\d+)").group(1))
            ok(srv)
        cap.stop()
        events = pt.stop()
    pid = srv.peer_pid
    assert len({pid, rtid, stid}) == 3, "scenario broken: tids %d %d %d" % (pid, rtid, stid)
    reader_o = who(pid, rn, tid=rtid)
    sender_o = who(pid, tn, tid=stid)
    cli_o = who(cli.peer_pid, cn)
    pkts = read_pcap(pcap)
    # Frames of the data halves, by the marker each half starts with (sizes are fixed).
    data_from_client = [p for p in pkts if p["src_port"] == lport and p["payload"]]
    data_from_server = [p for p in pkts if p["src_port"] == port and p["payload"]]
    halves = 2 * rounds
    assert len(data_from_client) == halves and len(data_from_server) == halves and all(
        p["payload"] == size for p in data_from_client + data_from_server), (
        "scenario broken: want %d data segments of %d bytes each way, got %s / %s" % (
            halves, size, [p["payload"] for p in data_from_client],
            [p["payload"] for p in data_from_server]))
    fin_cli = next(p["frame"] for p in pkts if p["FIN"] and p["src_port"] == lport)
    fin_srv = next(p["frame"] for p in pkts if p["FIN"] and p["src_port"] == port)
    assert fin_srv > fin_cli, "scenario broken: the server sent its FIN first"
    windows = [(0, data_from_client[0]["frame"], reader_o)]  # up to request 0 half A
    for i in range(rounds):
        req_b = data_from_client[2 * i + 1]["frame"]
        resp_a = data_from_server[2 * i]["frame"]
        nxt = data_from_client[2 * i + 2]["frame"] if i + 1 < rounds else fin_cli
        windows.append((req_b, resp_a - 1, reader_o))
        windows.append((resp_a, nxt - 1, sender_o))
    windows.append((fin_srv, 10 ** 9, reader_o))
    exp = expect_both_sides(pkts, "lo")
    for e in exp:
        if local_port(e) == lport:
            e["owner"] = cli_o
            continue
        for lo, hi, o in windows:
            if lo <= e["frame"] <= hi:
                e["owner"] = o
    m = match(exp, events)
    n_r, n_s = all_to("the reader thread", m, reader_o), all_to("the sender thread", m, sender_o)
    n_free = sum(1 for e in exp if "owner" not in e)
    log("%d server-side events around hand-overs not attributed" % n_free)
    assert n_r >= 3 + 2 * rounds and n_s >= 2 * rounds, "scenario broken: %d/%d" % (n_r, n_s)
    m.assert_exact("events of a socket shared by two threads")
    tids = {e["threadId"] for e in events if local_port(e) == port}
    assert tids <= {rtid, stid}, "server-side events with threads %s (reader %d, sender %d, " \
        "main %d)" % (sorted(tids), rtid, stid, pid)
    held_summary(pt.stderr())


@test
def connect_refused(w):
    """connect() to a closed port: the client's SYN and the kernel's RST (pid 0, no name) when
    pktrace has no scope; with a scope the client's packets only, no RST from nowhere."""
    port = rand_port()
    cn = rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace([], w, tag="unscoped") as all_pt, \
            pktrace(scope(cn), w, tag="scoped") as sc_pt:
        with peer("refused", cn, port) as cli:
            lport = int(cli.expect(r"^BOUND (\d+)").group(1))
            cli.expect(r"^REFUSED")
            ok(cli)
        cap.stop()
        all_events = all_pt.stop()
        sc_events = sc_pt.stop()
    pkts = read_pcap(pcap)
    syn = [p for p in pkts if p["SYN"] and p["src_port"] == lport]
    rst = [p for p in pkts if p["RST"] and p["src_port"] == port]
    assert len(pkts) == 2 and len(syn) == 1 and len(rst) == 1, (
        "scenario broken: want SYN + RST on the wire, got %s" % [describe(p) for p in pkts])
    cli_o = who(cli.peer_pid, cn)
    nobody = {"pid": 0, "name": ""}
    # Unscoped: both packets leave and reach lo. The SYN reaching the closed port meets no
    # socket; if pktrace reports it, it must carry pid 0 as well.
    exp = attribute(expect_both_sides(pkts, "lo"), {lport: cli_o, port: nobody})
    syn_in = [e for e in exp if e["SYN"] and e["direction"] == "ingress"]
    mine = events_for_ports(all_events, {port, lport})
    log("unscoped pktrace: %d events of the two ports (of %d in all)" % (len(mine),
                                                                         len(all_events)))
    m = match(exp, mine)
    m.assert_exact("unscoped events of a refused connect", allow_missing=syn_in)
    log("the SYN reaching the closed port: %s" % (
        "not reported" if m.missing else "reported with pid 0"))
    rst_out = [a for _, a in m.pairs if a["RST"] and a["direction"] == "egress"]
    assert len(rst_out) == 1 and rst_out[0]["processId"] == 0, "RST from nowhere: %s" % rst_out
    # Scoped to the client's name: its two events, nothing from nowhere.
    exp = expect_one_side(pkts, "lo", {lport}, {lport: cli_o})
    m = match(exp, sc_events)
    m.assert_exact("scoped events of a refused connect")


def _queued_client(port, name, send):
    c = peer("queued", name, port, send_bytes=send)
    return c, int(c.expect(r"^CONNECTED (\d+)").group(1))


@test
def owner_turns_between_processes(w):
    """A client and its forked child take turns on one connection, 12 turns each, on one CPU
    and then on two: each turn sends two messages, the second once the first is acknowledged.
    Both messages of every turn belong to the process whose turn it is: the first is a
    hand-over, its segment leaves inside send(), before the send returns (the owner changes
    at the packet, not after the call). A CPU that noted a socket's owner for its next send
    or receive must forget it when another process takes the socket elsewhere."""
    cpus = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
    layouts = [(cpus[0], cpus[0])] + ([(cpus[0], cpus[1])] if len(cpus) > 1 else [])
    size, rounds = 100, 12
    for a, b in layouts:
        port = rand_port()
        sn, pn, kn = rand_name("e2s"), rand_name("e2p"), rand_name("e2k")
        pcap = os.path.join(w, "lo-%d-%d.pcap" % (a, b))
        with capture("lo", "tcp port %d" % port, pcap) as cap, \
                pktrace(scope(sn, pn, kn), w) as pt:
            with peer("sink", sn, port) as srv:
                srv.expect(r"^LISTENING")
                with peer("altclient", pn, port, child_name=kn, size=size, rounds=rounds,
                          cpus="%d,%d" % (a, b)) as cli:
                    lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                    child = int(cli.expect(r"^CHILD (\d+)").group(1))
                    cli.expect(r"^DONE")
                    ok(cli)
                srv.expect(r"^DONE")
                ok(srv)
            cap.stop()
            events = pt.stop()
        sizes = [p["payload"] for p in read_pcap(pcap) if p["src_port"] == lport and p["payload"]]
        want = [size, size + 1, 2 * size, 2 * size + 1] * rounds
        assert sizes == want, "scenario broken (CPUs %d, %d): client segments %s" % (a, b, sizes)
        owner_of = {size: cli.peer_pid, size + 1: cli.peer_pid, 2 * size: child,
                    2 * size + 1: child}
        seen = {}
        for e in events:
            n = e["packet_len"] - 4 * e["dataOffset"] - 20
            if e["direction"] == "egress" and e["src_port"] == lport and n in owner_of:
                seen.setdefault(n, []).append(e["processId"])
        log("CPUs %d, %d: messages by size and pid %s (parent %d, child %d)" % (
            a, b, {n: sorted(set(p)) for n, p in seen.items()}, cli.peer_pid, child))
        for n, pid in owner_of.items():
            got = seen.get(n, [])
            assert len(got) == rounds, "CPUs %d, %d: %d events for the %d messages of "\
                "%d bytes" % (a, b, len(got), rounds, n)
            wrong = [p for p in got if p != pid]
            assert not wrong, "CPUs %d, %d: messages of %d bytes (pid %d's) attributed "\
                "to %s" % (a, b, n, pid, wrong)


@test
def listener_closed_with_queue(w):
    """A listener that never accepts is closed with connections in its accept queue: every
    packet of them (handshake, data, the kernel's RSTs) is reported once, server side with the
    listener's owner; two connections wait longer than the hold time (2 s), one is reset while
    still held; nothing is left held at exit."""
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    clients = []
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(scope(sn, cn), w) as pt:
        with peer("backlog", sn, port, go=True, backlog=8, linger=0.5) as srv:
            srv.expect(r"^LISTENING")
            try:
                for send in (300, 0):
                    clients.append(_queued_client(port, cn, send))
                time.sleep(2.5)  # past the hold time
                clients.append(_queued_client(port, cn, 200))
                time.sleep(0.3)
                release(srv)
                srv.expect(r"^CLOSED")
                for c, _ in clients:
                    c.expect(r"^RESET")
                    ok(c)
                ok(srv)
            finally:
                for c, _ in clients:
                    c.close()
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    lports = [lp for _, lp in clients]
    for lp in lports:
        rsts = [p for p in pkts if p["RST"] and p["src_port"] == port and p["dst_port"] == lp]
        assert rsts, "scenario broken: no RST from the closed listener to port %d" % lp
    srv_o = who(srv.peer_pid, sn)
    owners = {port: srv_o}
    owners.update({lp: who(c.peer_pid, cn) for c, lp in clients})
    m = match(attribute(expect_both_sides(pkts, "lo"), owners), events)
    all_to("the listener's owner", m, srv_o)
    m.assert_exact("events of never-accepted connections")
    n_srv = sum(1 for e in m.expected if local_port(e) == port)
    h = held_summary(pt.stderr())
    assert h["fallback"] >= n_srv, (
        "summary: %d held packets went to the acceptor or the listener's owner; these "
        "never-accepted connections alone had %d" % (h["fallback"], n_srv))


@test
def syn_flood_bounded(w):
    """SYN flood in a namespace of its own, from spoofed addresses (raw socket), to a listener
    that never accepts; the SYN-ACKs leave through a veth into a sink namespace that drops
    them, so no RST ends a request and nothing ever takes one: with syncookies off and a large
    backlog, 3000 requests wait in the hold (--hold-time 0.5 --hold-packets 256). Every SYN, SYN-ACK and SYN-ACK retransmission is reported once with the
    listener's owner; the summary is consistent (written + lost = seen - out of scope - no
    owner) and counts the held packets; nothing is left held at exit; pktrace's memory stays
    bounded. Then 50 SYNs with syncookies=2: the cookie SYN-ACKs (sent with no socket
    attached) must be reported too (checked last)."""
    count, cookies = 3000, 50
    tag = rand_tag()
    ns, sink, veth, peer_dev = "pkt-sf-" + tag, "pkt-sk-" + tag, "sf" + tag, "sk" + tag
    addr = "10.99.255.254"
    port = rand_port()
    sn, fn = rand_name("e2s"), rand_name("e2f")
    p_lo, p_ve = os.path.join(w, "lo.pcap"), os.path.join(w, "veth.pcap")
    hold = ["--hold-time", "0.5", "--hold-packets", "256"]
    with netns(ns), netns(sink):
        run(["ip", "link", "add", veth, "netns", ns, "type", "veth", "peer", "name", peer_dev,
             "netns", sink])
        run(["ip", "-n", ns, "addr", "add", addr + "/16", "dev", veth])
        for n, dev in ((ns, veth), (sink, peer_dev)):
            # No ARP: a SYN-ACK leaves at once instead of waiting for a neighbour.
            run(["ip", "-n", n, "link", "set", dev, "arp", "off", "up"])
        sysctl = ["ip", "netns", "exec", ns, "sysctl", "-qw"]
        run(sysctl + ["net.ipv4.tcp_syncookies=0", "net.ipv4.tcp_max_syn_backlog=16384",
                      "net.core.somaxconn=8192"])
        with capture("lo", "tcp port %d" % port, p_lo, ns=ns, buffer_kib=65536) as c_lo, \
                capture(veth, "tcp port %d" % port, p_ve, ns=ns, buffer_kib=65536) as c_ve, \
                pktrace(scope(sn) + hold, w) as pt:
            rss0 = _rss_kib(pt.proc.pid)
            with peer("backlog", sn, port, ns=ns, bind=addr, go=True, backlog=8192) as srv:
                srv.expect(r"^LISTENING")
                with peer("synflood", fn, port, ns=ns, connect=addr, spoof_net="10.99",
                          count=count, interval=0.002) as fl:
                    sent = int(fl.expect(r"^SENT (\d+)", 30).group(1))
                    ok(fl)
                time.sleep(1.3)  # past the hold time and the first SYN-ACK retransmission
                run(sysctl + ["net.ipv4.tcp_syncookies=2"])
                t_cookies = time.time()
                with peer("synflood", fn, port, ns=ns, connect=addr, spoof_net="10.99",
                          count=cookies) as fl:
                    sent_cookies = int(fl.expect(r"^SENT (\d+)", 30).group(1))
                    ok(fl)
                time.sleep(0.7)
                release(srv)  # the requests die at their next timer, with no retransmission
                ok(srv)
            c_lo.stop()
            c_ve.stop()
            hwm = _hwm_kib(pt.proc.pid)
            events = pt.stop()
    stderr = pt.stderr()
    pk_lo, pk_ve = read_pcap(p_lo), read_pcap(p_ve)
    syns = [p for p in pk_lo if p["SYN"] and not p["ACK"] and p["dst_port"] == port]
    synacks = [p for p in pk_ve if p["SYN"] and p["ACK"] and p["src_port"] == port]
    cookie_syns = {(p["src_ip"], p["src_port"]) for p in syns if p["time"] > t_cookies}
    cookie_acks = [p for p in synacks if (p["dst_ip"], p["dst_port"]) in cookie_syns]
    log("hold options %s; %d + %d SYNs sent, %d on lo, %d SYN-ACKs on %s (%d for cookies), "
        "%d other packets" % (" ".join(hold) or "(none)", sent, sent_cookies, len(syns),
                              len(synacks), veth, len(cookie_acks),
                              len(pk_lo) + len(pk_ve) - len(syns) - len(synacks)))
    assert len(syns) == sent + sent_cookies and sent >= count - 5, (
        "scenario broken: %d + %d sent, tshark saw %d SYNs" % (sent, sent_cookies, len(syns)))
    assert len(synacks) >= 2 * sent + sent_cookies and len(cookie_acks) == sent_cookies, (
        "scenario broken: want a SYN-ACK and a retransmission per request and a cookie "
        "SYN-ACK per later SYN: %d SYN-ACKs (%d cookies) for %d + %d SYNs" % (
            len(synacks), len(cookie_acks), sent, sent_cookies))
    assert not any(p["RST"] for p in pk_lo + pk_ve), "scenario broken: RSTs on the wire"
    log("pktrace VmRSS %d KiB when ready, peak %d KiB" % (rss0, hwm))
    srv_o = who(srv.peer_pid, sn)
    del srv_o["ppid"]  # ip netns exec may fork
    exp = expect_one_side(pk_lo, "lo", {port}, {port: srv_o}) + \
        expect_one_side(pk_ve, veth, {port}, {port: srv_o})
    m = match(exp, events)
    cookie_frames = {p["frame"] for p in cookie_acks}
    cookie_missing = [e for e in m.missing if e["iface"] == veth and e["frame"] in cookie_frames]
    sm = re.search(SUMMARY_RX, stderr)
    assert sm, "no summary line of the documented form: %r" % stderr[-400:]
    W, P, O, N, L, R, D, M, U = (int(x) for x in sm.groups())
    log("summary: %d written, %d seen, %d out of scope, %d no owner, %d lost" % (W, P, O, N, L))
    h = held_summary(stderr)
    syn_missing = [e for e in m.missing if e["SYN"] and not e["ACK"]]
    assert not syn_missing, "%d SYNs seen by tshark without an event, e.g. %s" % (
        len(syn_missing), [describe(e) for e in syn_missing[:3]])
    if L:
        m.assert_exact("SYN flood events", missing_ok=True)
    else:
        m.assert_exact("SYN flood events (cookie SYN-ACKs checked below)",
                       allow_missing=cookie_missing)
    assert W == len(events), "summary says %d written, output has %d" % (W, len(events))
    assert L == R + D + M + U, "summary: %d lost is not %d+%d+%d+%d" % (L, R, D, M, U)
    assert W + L == P - O - N, "written %d + lost %d != seen %d - out of scope %d - no " \
        "owner %d" % (W, L, P, O, N)
    n_srv = len(exp) - len(cookie_acks)  # cookie SYN-ACKs belong to no request to hold
    assert h["held"] >= n_srv and h["fallback"] + h["early"] >= n_srv, (
        "summary: %d packets held, %d to the listener's owner, %d early; the flood alone had %d "
        "(SYNs, SYN-ACKs) that no process ever took" % (h["held"], h["fallback"], h["early"],
                                                          n_srv))
    assert h["early"] > 0, ("--hold-packets 256 and %d requests waiting, yet nothing was "
                            "released early for lack of room" % sent)
    assert hwm - rss0 < 64 * 1024, "pktrace grew by %d KiB during a %d-SYN flood" % (
        hwm - rss0, count)
    assert not cookie_missing, (
        "%d of %d syncookie SYN-ACKs (sent with no socket attached, so no cgroup_skb hook) "
        "have no event, e.g. %s" % (len(cookie_missing), len(cookie_acks),
                                    [describe(e) for e in cookie_missing[:3]]))


def _status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _rss_kib(pid):
    return _status_kib(pid, "VmRSS")


def _hwm_kib(pid):
    return _status_kib(pid, "VmHWM")


def accept_without_use(w, no_addr, monitor=False, close_delay=0.0, args=(), count=2):
    """A forked worker accepts count connections on its parent's listener and closes each without
    sending or receiving (monitor: after a child of its own, a third name, asked each for its
    peer's name; close_delay: seconds after the accept): the server side's events, with their
    owner, and tshark's count."""
    port = rand_port()
    pn, wn, mn = rand_name("e2p"), rand_name("e2w"), rand_name("e2m")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, \
            pktrace(scope(pn, wn, mn) + list(args), w) as pt:
        with peer("lateaccept", pn, port, worker_name=wn, count=count, silent=True,
                  no_addr=no_addr, monitor_name=mn if monitor else None,
                  close_delay=close_delay or None, go=True) as srv:
            srv.expect(r"^LISTENING")
            worker = int(srv.expect(r"^WORKER (\d+)").group(1))
            clis = [socket.create_connection(("127.0.0.1", port), timeout=10)
                    for _ in range(count)]
            release(srv)
            srv.expect(r"^CLOSED_ALL")
            for c in clis:
                assert c.recv(16) == b"", "scenario broken: the worker sent data"
                c.close()
            ok(srv)
        time.sleep(0.3)  # the last ACKs
        cap.stop()
        events = pt.stop()
    n_wire = len(read_pcap(pcap))
    mine = [e for e in events if local_port(e) == port]
    by = {}
    for e in mine:
        by[(e["processId"], e["processName"])] = by.get((e["processId"], e["processName"]), 0) + 1
    log("%d wire packets; %d server-side events by (pid, name): %s" % (n_wire, len(mine), by))
    assert n_wire >= count * 6, "scenario broken: tshark saw %d packets for %d connections" % (
        n_wire, count)
    assert len(mine) == n_wire, "%d server-side events for %d wire packets" % (len(mine), n_wire)
    return mine, worker, srv.peer_pid, pt.stderr()


RENAME_SERVER = r"""
import ctypes, socket, sys
accept_name, use_name, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
prctl = ctypes.CDLL(None).prctl
prctl(15, accept_name.encode(), 0, 0, 0)
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(1)
print("LISTENING", flush=True)
c = ls.accept()[0]
prctl(15, use_name.encode(), 0, 0, 0)
got = b""
while True:
    d = c.recv(4096)
    if not d:
        break
    got += d
    c.sendall(d.upper())
c.close()
print("DONE", len(got), flush=True)
"""


@test
def accept_then_rename(w):
    """A server thread that accepts (naming itself as the acceptor), then renames itself
    before its first receive: the connection's packets, the held handshake included, carry
    the name it had at its first use, as its later ones do (what accept recorded does not
    stand for the first user when its name changed in between)."""
    port = rand_port()
    an, un, cn = rand_name("e2a"), rand_name("e2u"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, pktrace(scope(an, un, cn), w) as pt:
        with Proc([PYTHON, "-c", RENAME_SERVER, an, un, str(port)], name="rename") as srv:
            srv.expect(r"^LISTENING")
            with peer("client", cn, port, rounds=2) as cli:
                lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                ok(cli)
            srv.expect(r"^DONE")
            ok(srv)
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    srv_o = who(srv.pid, un)
    m = match(attribute(expect_both_sides(pkts, "lo"), {port: srv_o, lport: who(cli.peer_pid, cn)}),
              events)
    all_to("the renamed server", m, srv_o)
    m.assert_exact("events of a connection whose acceptor renamed itself before its first use")


@test
def accept_without_use_goes_to_acceptor(w):
    """accept() with the peer's address in a forked worker, then close() without any I/O: the
    accept alone names the owner, so every server-side packet (handshake, FIN, the last ACK)
    goes to the worker, none to the parent that made the listener."""
    mine, worker, parent, stderr = accept_without_use(w, no_addr=False)
    wrong = [e for e in mine if e["processId"] != worker]
    assert not wrong, "%d of %d server-side events not the acceptor's (%d): %s" % (
        len(wrong), len(mine), worker, "; ".join(describe(e) for e in wrong[:4]))
    held_summary(stderr)


@test
def accept_monitor_getpeername_names_no_one(w):
    """A getpeername() after accept's own, by another process holding the socket (a monitor)
    before any I/O, does not take the connection: every server-side event stays the worker's."""
    mine, worker, parent, stderr = accept_without_use(w, no_addr=False, monitor=True)
    wrong = [e for e in mine if e["processId"] != worker]
    assert not wrong, "%d of %d server-side events not the acceptor's (%d): %s" % (
        len(wrong), len(mine), worker, "; ".join(describe(e) for e in wrong[:4]))


@test
def accept_close_after_hold_time_goes_to_acceptor(w):
    """accept() with the address, then close() without I/O after --hold-time has run out: the
    handshake goes out with the acceptor when the wait ends, and the teardown packets, which
    no longer meet a held connection, name the acceptor too, not the listener's owner."""
    # Two connections: the second waits in the accept queue past --hold-time while the
    # worker holds the first, and is held on until it is accepted: the worker's too.
    mine, worker, parent, stderr = accept_without_use(w, no_addr=False, close_delay=1.0,
                                                      args=["--hold-time", "0.3"], count=2)
    wrong = [e for e in mine if e["processId"] != worker]
    assert not wrong, "%d of %d server-side events not the acceptor's (%d): %s" % (
        len(wrong), len(mine), worker, "; ".join(describe(e) for e in wrong[:4]))


@test
def accept_without_address_goes_to_listener(w):
    """accept(fd, NULL, NULL) is not seen (only the kernel's getpeername step of accept is
    hooked): a connection the acceptor closes without I/O goes, as the README says, to the
    listener's owner (the parent), counted in the summary as such."""
    mine, worker, parent, stderr = accept_without_use(w, no_addr=True)
    wrong = [e for e in mine if e["processId"] != parent]
    assert not wrong, "%d of %d server-side events not the listener owner's (%d): %s" % (
        len(wrong), len(mine), parent, "; ".join(describe(e) for e in wrong[:4]))
    h = held_summary(stderr)
    assert h["fallback"] >= 6, "summary: %s; want the handshakes counted as gone to the " \
        "acceptor or the listener's owner" % h


# A client socket refused once, then connected again on the same socket; its peer closes
# first (the client's close is the passive LAST_ACK), then segments for the gone connection
# arrive and the kernel answers each with a RST from no socket.
# Three in-window-looking data segments from sport to cport, sent by a raw socket once the
# connection has closed: the kernel answers each (RST, or an ACK from a timewait socket).
LATE_SEGMENTS = r"""
def csum(b):
    v = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    v = (v >> 16) + (v & 0xffff)
    return ~(v + (v >> 16)) & 0xffff
lo = socket.inet_aton("127.0.0.1")
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
for i in range(3):
    seg = struct.pack("!HHIIBBHHH", sport, cport, 5000 + i, 777, 5 << 4, 0x18, 1000, 0, 0) + b"zz"
    c = csum(lo + lo + struct.pack("!BBH", 0, 6, len(seg)) + seg)
    raw.sendto(seg[:16] + struct.pack("!H", c) + seg[18:], ("127.0.0.1", 0))
    time.sleep(0.05)
"""

# A listener ls on sport and a client socket s bound to cport (both on 127.0.0.1), once the
# script has its arguments.
PAIR_SOCKETS = r"""
ls = socket.socket()
ls.bind(("127.0.0.1", sport))
ls.listen(1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", cport))
"""

RECONNECT_SCRIPT = r"""
import ctypes, socket, struct, sys, threading, time
name, cport, sport, dead = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)
""" + PAIR_SOCKETS + r"""
def serve():
    c = ls.accept()[0]
    c.sendall(b"hi")
    c.close()
t = threading.Thread(target=serve)
t.start()
try:
    s.connect(("127.0.0.1", dead))
    sys.exit("scenario broken: port %d accepted" % dead)
except ConnectionRefusedError:
    pass
s.connect(("127.0.0.1", sport))
t.join()
assert s.recv(16) == b"hi" and s.recv(16) == b""
s.close()
time.sleep(0.3)
"""
RECONNECT_SCRIPT += LATE_SEGMENTS + 'print("DONE", flush=True)\n'


@test
def reconnect_keeps_teardown_owner(w):
    """A socket whose first connect() was refused and that then connects again: after its
    second connection closes, the RSTs the kernel sends for that connection's late segments
    carry the socket's process (what it kept of the first close must not stand for the
    second)."""
    reconnect_scenario(w)


@test
def reconnect_keeps_teardown_owner_rotating(w):
    """The same with the kernel side's summary of closed connections rotated every 20 ms: the
    late segments come 0.3 s after the close, many generations later, and the RSTs for them
    are found only if every refill set the connection's bit for the table of connections
    closed without timewait (its own bit, not the timewait table's)."""
    os.environ["PKTRACE_TEST_FILTER_PERIOD_MS"] = "20"
    try:
        reconnect_scenario(w)
    finally:
        del os.environ["PKTRACE_TEST_FILTER_PERIOD_MS"]


def reconnect_scenario(w):
    name = rand_name("e2r")
    cport, sport, dead = rand_port(), rand_port(), rand_port()
    with pktrace(scope(name) + ["tcp port %d and port %d" % (cport, sport)], w) as pt:
        with Proc([PYTHON, "-c", RECONNECT_SCRIPT, name, str(cport), str(sport), str(dead)],
                  name="reconnect") as p:
            assert p.wait(20) == 0, "scenario failed: %s" % p.err.text()
            pid = p.pid
        events = pt.stop()
    rsts = [e for e in events if e["RST"] and e["src_port"] == cport and e["direction"] ==
            "egress"]
    log("%d events; the client's RSTs: %s" % (len(events), "; ".join(describe(e) for e in rsts)))
    assert len(rsts) == 3, "want the kernel's 3 RSTs for the injected segments, got %d" % len(rsts)
    wrong = [e for e in rsts if e["processId"] != pid]
    assert not wrong, "%d of 3 RSTs not the client's (%d): %s" % (
        len(wrong), pid, "; ".join(describe(e) for e in wrong))
    # The late segments themselves arrive for no socket, so only the device sees them (for
    # the connection's last owner), and the script's raw TCP socket receives a copy of each
    # (its own event): two arrivals per segment, both the client's process.
    late = [e for e in events if e["direction"] == "ingress" and e["dst_port"] == cport
            and e["src_port"] == sport and e["seq"] in (5000, 5001, 5002)]
    log("the late segments arriving: %s" % "; ".join(describe(e) for e in late))
    per_seq = {q: sum(e["seq"] == q for e in late) for q in (5000, 5001, 5002)}
    assert set(per_seq.values()) == {2}, (
        "want each late segment's arrival twice (at the device, for the closed connection's "
        "owner, and at the raw socket), got %s" % per_seq)
    wrong = [e for e in late if e["processId"] != pid]
    assert not wrong, "%d of 6 arrivals not the client's (%d): %s" % (
        len(wrong), pid, "; ".join(describe(e) for e in wrong))


HANDOVER_SCRIPT = r"""
import ctypes, os, socket, struct, sys, threading, time
name, other, cport, sport = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
prctl = ctypes.CDLL(None).prctl
prctl(15, name.encode(), 0, 0, 0)
""" + PAIR_SOCKETS + r"""
handed = threading.Event()
def serve():
    c = ls.accept()[0]
    assert c.recv(16) == b""
    handed.wait(10)
    c.close()
t = threading.Thread(target=serve)
t.start()
s.connect(("127.0.0.1", sport))
s.shutdown(socket.SHUT_RDWR)
time.sleep(0.2)
pid = os.fork()
if pid == 0:
    prctl(15, other.encode(), 0, 0, 0)
    s.recv(16)
    os._exit(0)
os.waitpid(pid, 0)
handed.set()
t.join()
time.sleep(0.3)
s.close()
"""
HANDOVER_SCRIPT += LATE_SEGMENTS + 'print("DONE", pid, flush=True)\n'


@test
def handover_out_of_scope_forgets_close(w):
    """A traced process shuts its connection down both ways (its close is remembered), then a
    forked child under a name out of scope takes the socket (a receive) before the connection
    ends in timewait: the timewait socket's replies to late segments are the child's, so none
    is written, and none under the parent's name (the parent's remembered close must not
    stand for the child's)."""
    name, other = rand_name("e2h"), rand_name("e2o")
    cport, sport = rand_port(), rand_port()
    with pktrace(scope(name) + ["tcp port %d and port %d" % (cport, sport)], w) as pt:
        with Proc([PYTHON, "-c", HANDOVER_SCRIPT, name, other, str(cport), str(sport)],
                  name="handover") as p:
            assert p.wait(20) == 0, "scenario failed: %s" % p.err.text()
            pid = p.pid
        events = pt.stop()
    mine = [e for e in events if e["src_port"] == cport and e["direction"] == "egress"]
    log("the client's egress events: %s" % "; ".join(describe(e) for e in mine))
    flags = [(e["SYN"], e["FIN"]) for e in mine]
    assert flags == [(True, False), (False, False), (False, True)], (
        "want the parent's SYN, handshake ACK and FIN only (after the hand-over the socket is "
        "out of scope), got %d: %s" % (len(mine), "; ".join(describe(e) for e in mine)))
    wrong = [e for e in mine if e["processId"] != pid]
    assert not wrong, "events not the parent's (%d): %s" % (pid, "; ".join(
        describe(e) for e in wrong))


def _handover_client(family, addr, port, size, udp):
    """One exchange with a handover peer: request, response, request, response; returns the
    client's local port."""
    c = socket.socket(family, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    c.settimeout(20)
    try:
        c.connect((addr, port))
        for _ in range(2):
            c.send(b"q" * 10)
            got = 0
            while got < size:
                n = len(c.recv(65536))
                assert n, "the server closed before its %d bytes" % size
                got += n
        lport = c.getsockname()[1]
        if not udp:
            c.shutdown(socket.SHUT_WR)
            while c.recv(65536):
                pass
        return lport
    finally:
        c.close()


@test
def owner_first_send_after_fork_setuid(w):
    """A server reads each request, forks, and the child drops to uid 65534 before it sends
    the reply (a privilege-separated server: sshd's session child, a forking daemon that
    drops root per client), over TCP and UDP, IPv4 and IPv6. Under -s uid=65534, every
    packet of the connection from the child's first reply on is the child's, that first
    reply included: its segment leaves inside send(), so the owner must change at the
    packet, not when the send returns (tshark for the packets, the child pids the server
    printed for the owner). Over UDP, both replies of every child with its pid. Last, over
    TCP, the parent keeps its copy until the child has exited: its close sends the FIN, which
    is no use of the socket (no data), so the teardown stays the child's."""
    size, count = 3000, 4
    cases = [(f, a, udp, False) for f, a in ((socket.AF_INET, "127.0.0.1"),
                                             (socket.AF_INET6, "::1")) for udp in (False, True)]
    for family, addr, udp, parent_last in cases + [(socket.AF_INET, "127.0.0.1", False, True)]:
        port = rand_port()
        sn, kn = rand_name("hos"), rand_name("hok")
        pcap = os.path.join(w, "lo-%s-%s%s.pcap" % (family.name, "udp" if udp else "tcp",
                                                      "-parent-last" if parent_last else ""))
        what = "%s %s%s" % ("UDP" if udp else "TCP", addr,
                            ", the parent closing last" if parent_last else "")
        args = ["-s", "uid=65534"] + (["-e", "net_packet_udp"] if udp else [])
        with capture("lo", "%s port %d" % ("udp" if udp else "tcp", port), pcap) as cap, \
                pktrace(args, w) as pt:
            with peer("handover", sn, port, child_name=kn, setuid=65534, size=size,
                      count=count, bind=addr, udp=udp, io_delay=0.1,
                      parent_closes_last=parent_last) as srv:
                srv.expect(r"^LISTENING")
                lports = [_handover_client(family, addr, port, size, udp)
                          for _ in range(count)]
                srv.expect(r"^DONE")
                ok(srv)
                children = [int(l.split()[1]) for l in srv.out.lines
                            if l.startswith("CHILD ")]
            time.sleep(0.5)
            cap.stop()
            events = pt.stop()
        if udp:
            replies = {}
            for e in events:
                if e["direction"] == "egress" and e["src_port"] == port:
                    replies.setdefault(e["dst_port"], []).append(
                        (e["processId"], e["userId"]))
            for lport, child in zip(lports, children):
                got = replies.get(lport, [])
                assert got == [(child, 65534)] * 2, "%s: child %d's two replies to port %d: "\
                    "%s" % (what, child, lport, got)
            continue
        pkts = read_pcap(pcap)
        exp = []
        for lport, child in zip(lports, children):
            conn = [p for p in pkts if lport in (p["src_port"], p["dst_port"])]
            first = next(i for i, p in enumerate(conn)
                         if p["src_port"] == port and p["payload"])
            exp += expect_one_side(conn[first:], "lo", {port},
                                   {port: {"pid": child, "uid": 65534, "name": kn}})
        log("%s: %d packets from each child's first reply on, %d events" % (
            what, len(exp), len(events)))
        match(exp, events).assert_exact("%s: the children's packets" % what)


EXEC_SCRIPT = r"""
import ctypes, os, socket, sys, time
name, port, prog = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(b"b" * 100)
time.sleep(0.3)
print("CONNECTED", s.getsockname()[1], flush=True)
os.dup2(s.fileno(), 9)
os.execv(prog, [prog, "-c", "printf %0300d 0 >&9; sleep 0.3; printf %0400d 0 >&9"])
"""


@test
def owner_after_exec(w):
    """A client connects and sends under one name, then execs another program (a copy of dash
    under a name of its own) that inherits the socket and sends twice. Under -s comm=<the
    program's name>, every packet of the connection from the program's first send on is its
    (same pid, the new name), that first send included: its segment leaves inside write(),
    before the call returns; the 100 bytes sent before the exec are not (tshark for the
    packets)."""
    port = rand_port()
    sn, cn, kn = rand_name("e2s"), rand_name("e2c"), rand_name("e2x")
    prog = os.path.join(w, kn)
    shutil.copy("/bin/dash", prog)
    os.chmod(prog, 0o755)
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap, pktrace(scope(kn), w) as pt:
        with peer("sink", sn, port) as srv:
            srv.expect(r"^LISTENING")
            with Proc([PYTHON, "-c", EXEC_SCRIPT, cn, str(port), prog], name="exec") as p:
                lport = int(p.expect(r"^CONNECTED (\d+)").group(1))
                assert p.wait(20) == 0, "scenario failed: %s" % p.err.text()
                pid = p.pid
            srv.expect(r"^DONE")
            ok(srv)
        time.sleep(0.3)
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    sizes = [p["payload"] for p in pkts if p["src_port"] == lport and p["payload"]]
    assert sizes == [100, 300, 400], "scenario broken: client data segments %s" % sizes
    first = next(i for i, p in enumerate(pkts) if p["src_port"] == lport and p["payload"] == 300)
    exp = expect_one_side(pkts[first:], "lo", {lport}, {lport: {"pid": pid, "name": kn}})
    log("%d packets from the program's first send on, %d events" % (len(exp), len(events)))
    match(exp, events).assert_exact("the exec'd program's packets")
