"""Attribution tests against real server software from Debian's archive (nginx, PostgreSQL,
sshd's privilege-separated stages: see sshd_privsep_login, Redis with a replica: see
redis_primary_replica, and Apache's prefork MPM slower to accept than --hold-time: see
apache_prefork_slow_accept).

nginx (a master and two prefork workers sharing one listening socket, loaded by ab) and
PostgreSQL (a postmaster that accepts and forks one backend per connection, queried by psql),
both started by the test in its work directory. Every packet tcpdump sees on lo is compared
with pktrace's two events for it (egress from the sender's socket, ingress to the
receiver's), and every server-side event of a connection - handshake and teardown included -
must carry the process that served the connection: the worker named by nginx's access log,
the backend named by PostgreSQL's connection log; never the nginx master or the postmaster.
Both scenarios put sockets into timewait on purpose (nginx's side of nearly every connection,
psql's side of one session) so that the packets only a timewait socket sees are checked too,
and the shutdown summary must account for them and for the held handshake packets.
"""
import collections
import contextlib
import glob
import json
import os
import pwd
import re
import signal
import socket
import time

from e2elib import (HELD_RX, Proc, Skip, bpf_ids_held_by, capture, describe,
                    expect_both_sides, expect_one_side, local_port, log, match, own_cgroup_ino,
                    pktrace, rand_port, read_pcap, run, test)

NGINX = "/usr/sbin/nginx"
# tcpdump -B: ab's bursts (thousands of packets in a few tens of ms, each seen twice on lo)
# overflow the default ring if tcpdump is not scheduled for a moment.
CAPTURE_KIB = 131072
# Headers are what is compared: with whole packets (up to 64 KiB on lo) tcpdump's immediate
# mode ring holds only a few hundred of them, and a burst while it waits for a CPU is dropped.
CAPTURE_SNAPLEN = 512
AB = "/usr/bin/ab"


# ---------------------------------------------------------------------------------------------
# Shared helpers

def proc_owner(pid, name, ppid, uid, tid=None):
    """What the events of a socket used by process pid must say about their owner (the
    owner() pattern of run.py, for processes the test did not start itself)."""
    return {"pid": pid, "tid": tid or pid, "name": name, "ppid": ppid, "uid": uid,
            "container": "", "host": socket.gethostname(), "cgroup": own_cgroup_ino(os.getpid())}


def proc_stat(pid):
    """(comm, ppid, number of threads) of a live process."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    comm = data[data.index("(") + 1:data.rindex(")")]
    rest = data[data.rindex(")") + 2:].split()
    return comm, int(rest[1]), int(rest[17])


def require(*paths):
    missing = [p for p in paths if not os.access(p, os.X_OK)]
    if missing:
        raise Skip("not installed: %s" % ", ".join(missing))


@contextlib.contextmanager
def server(proc, stop_sig, what, timeout=10):
    """Stop a server started as proc with stop_sig on the way out (its clean shutdown);
    kill its whole process group if it does not exit in time or the test failed."""
    try:
        yield proc
    finally:
        if proc.alive():
            proc.signal(stop_sig)
            try:
                proc.p.wait(timeout=timeout)
            except Exception:
                log("%s did not stop within %ds of %s: killed" % (
                    what, timeout, signal.Signals(stop_sig).name))
        proc.close()  # kills the process group (workers, backends) if anything is left


class Phases(dict):
    """{frame: phase}; gone: {frame: {port: "timewait" or "closed"}}, the side(s) of a
    packet whose socket had already been handed to a timewait socket or was closed."""

    def __init__(self):
        super().__init__()
        self.gone = collections.defaultdict(dict)

    def of(self, e):
        """The phase of expected event e, on its side of the connection."""
        how = self.gone.get(e["frame"], {}).get(local_port(e))
        return "teardown (%s socket)" % how if how else self.get(e["frame"], "?")

    def device_only(self):
        """How many events only a timewait socket (or no socket) saw."""
        return sum(len(v) for v in self.gone.values())


def connection_phases(pkts, server_port):
    """{frame: "handshake" | "data" | "teardown"} for every packet, per connection: the SYN,
    the SYN-ACK and the client's first ACK are the handshake; from the first FIN or RST on it
    is teardown."""
    conns = collections.defaultdict(list)
    for p in pkts:
        cport = p["dst_port"] if p["src_port"] == server_port else p["src_port"]
        conns[cport].append(p)
    phase = Phases()
    for cport, ps in conns.items():
        ps.sort(key=lambda p: p["frame"])
        synack_seen = hs_ack_seen = closing = False
        for p in ps:
            if p["SYN"]:
                phase[p["frame"]] = "handshake"
                synack_seen = synack_seen or p["ACK"]
            elif closing or p["FIN"] or p["RST"]:
                closing = True
                phase[p["frame"]] = "teardown"
            elif synack_seen and not hs_ack_seen and p["src_port"] == cport \
                    and not p["payload"]:
                hs_ack_seen = True
                phase[p["frame"]] = "handshake"
            else:
                hs_ack_seen = hs_ack_seen or synack_seen
                phase[p["frame"]] = "data"
        # The first side to close (A: nginx, psql, ab's surplus: close() and gone) whose FIN
        # is acknowledged by a plain ACK is in FIN_WAIT2 without a process: the kernel hands it
        # to a timewait socket, which receives B's FIN and sends the last ACK. (With B's FIN
        # and ACK together, A's full socket sends that ACK and only then becomes timewait.)
        # Once A has acknowledged B's FIN, B's socket is closed: a packet still reaching B
        # meets no socket, and B's kernel answers with a RST.
        fins = [p for p in ps if p["FIN"]]
        if not fins:
            continue
        f1 = fins[0]
        a = f1["src_port"]

        def acks(fin, frm):
            want = (fin["seq"] + fin["payload"] + 1) % 2**32
            return next((p for p in ps if p["frame"] > fin["frame"] and p["src_port"] == frm
                         and p["ACK"] and p["ack"] == want), None)

        acked1 = acks(f1, client_port(f1, server_port) if a == server_port else server_port)
        if not acked1:
            continue
        if acked1["FIN"]:
            f2 = acked1
            last = next((p for p in ps if p["frame"] > acked1["frame"] and p["src_port"] == a),
                        None)
            tw_from = last["frame"] if last else None
        else:
            f2 = next((p for p in ps if p["frame"] > acked1["frame"] and p["FIN"]
                       and p["src_port"] != a), None)
            tw_from = acked1["frame"]
        acked2 = acks(f2, a) if f2 else None
        for p in ps:
            if tw_from is not None and p["frame"] > tw_from:
                phase.gone[p["frame"]][a] = "timewait"
                phase[p["frame"]] = "teardown"
            if acked2 and p["frame"] > acked2["frame"]:
                phase.gone[p["frame"]][f2["src_port"]] = "closed"
    return phase


def explain(m, phase, names, server_port):
    """A summary of m's attribution mismatches and missing events grouped by connection phase,
    side and (wrong pid, right pid), each group with its first frame."""
    def label(pid):
        if isinstance(pid, str):
            return pid
        return "%s (%s)" % (pid, names.get(pid, "unknown process"))

    def side(e):
        return "server" if local_port(e) == server_port else "client"

    groups = collections.OrderedDict()
    for e, a in m.pairs:
        o = e.get("owner")
        if not o:
            continue
        if a.get("processId") != o["pid"]:
            key = ("%s-side %s events attributed to pid %s instead of %s" % (
                side(e), phase.of(e), label(a.get("processId")),
                label(o["pid"])))
        elif "tid" in o and a.get("threadId") != o["tid"]:
            key = ("%s-side %s events of pid %s with threadId %s instead of %s" % (
                side(e), phase.of(e), label(o["pid"]), a.get("threadId"),
                o["tid"]))
        else:
            continue
        groups.setdefault(key, []).append(e)
    for a in m.extra:
        key = "%s-side events pktrace reported for no expected packet, pid %s" % (
            side(a), label(a.get("processId")))
        groups.setdefault(key, []).append(a)
    for e in m.missing:
        key = "%s-side %s events missing (tshark has the packet, pktrace no %s event)" % (
            side(e), phase.of(e), e["direction"])
        groups.setdefault(key, []).append(e)
    return ["%d %s, first: %s" % (len(v), k, describe(v[0])) for k, v in groups.items()]


def tcpdump_drops(cap):
    m = re.search(r"(\d+) packets dropped by kernel", cap.stats)
    return int(m.group(1)) if m else 0


def verdict(m, what, phase, names, server_port, more=(), cap=None):
    """m.assert_exact(what) plus the failures in more (strings, None for a check that held),
    all reported in one AssertionError headed by explain()'s summary."""
    summary = explain(m, phase, names, server_port)
    if cap is not None and tcpdump_drops(cap) and m.extra:
        summary.insert(0, "NOTE: tcpdump dropped %d packets: pktrace events of packets it "
                       "lost show as events for no expected packet" % tcpdump_drops(cap))
    for line in summary:
        log("  " + line)
    problems = [p for p in more if p]
    try:
        m.assert_exact(what)
    except AssertionError as e:
        problems.insert(0, str(e))
    if problems:
        head = ("by connection phase:\n        %s\n      " % "\n        ".join(summary)
                if summary else "")
        raise AssertionError(head + "\n      ".join(problems))


LOST_RX = re.compile(r"(\d+) events lost \((\d+) ring buffer full, (\d+) decode errors, "
                     r"(\d+) malformed records, (\d+) not written\)")


def losses(pt):
    """None, or a failure quoting pktrace's summary when it counts any event lost: every
    packet of these connections must be reported."""
    err = pt.stderr()
    m = LOST_RX.search(err)
    if not m:
        return "no summary with the events lost on pktrace's stderr: %r" % err[-300:]
    if m.group(1) != "0":
        return "pktrace's summary counts %s events lost: %s" % (m.group(1), " | ".join(
            l.strip() for l in err.splitlines() if "ready" not in l)[:400])
    return None


DEVICE_RX = re.compile(r"packets seen only at the device[^:]*: (\d+)")


def hold_summary(pt, device_only=None):
    """Failures (a list) in the summary's account of the hold: every held packet went to the
    process that took its connection (each one here is taken at once by its worker or
    backend): none to the acceptor or the listener's owner, none early. device_only: how many
    events the wire says only a timewait socket (or no socket) saw; pktrace's count (of traced
    owners only) may be higher when a race between the two ends made the kernel take that
    path for another packet too, never lower."""
    err, out = pt.stderr(), []
    m = HELD_RX.search(err)
    if not m:
        return ["no held-packets line in pktrace's summary: %r" % err[-400:]]
    held, taken, fallback, early, unscoped = (int(x) for x in m.groups())
    log("hold: %d held, %d to the process that took the connection (%d of them out of scope), "
        "%d to the acceptor or listener, %d early" % (held, taken, unscoped, fallback, early))
    # The hold sees every accepted connection on the host: packets of other processes' (out of
    # scope) may have waited out; those of ours may not.
    if held == 0 or fallback + early > unscoped or held != taken + fallback + early:
        out.append("summary of the hold: %r (want every held packet of these servers to go to "
                   "the process that took its connection: none to the acceptor or listener, "
                   "none early)" % m.group(0))
    if device_only:
        d = DEVICE_RX.search(err)
        n = int(d.group(1)) if d else 0
        log("packets seen only at the device: %d (the wire: at least %d)" % (n, device_only))
        if n < device_only:
            out.append("summary: %d packets seen only at the device, the wire has %d events "
                       "of sockets already in timewait or closed" % (n, device_only))
    return out


def events_of(events, pid, what):
    """None, or a failure naming the events attributed to pid."""
    bad = [e for e in events if e["processId"] == pid]
    if bad:
        return "%d events attributed to %s (pid %d), e.g.:\n        %s" % (
            len(bad), what, pid, "\n        ".join(describe(e) for e in bad[:8]))
    return None


# ---------------------------------------------------------------------------------------------
# nginx

NGINX_CONF = """\
master_process on;
daemon off;
worker_processes 2;
user nobody nogroup;
pid {w}/nginx.pid;
error_log {w}/error.log info;
events {{
    worker_connections 256;
    accept_mutex off;
    multi_accept off;
}}
http {{
    log_format pk '$pid $remote_port $request_uri $status $bytes_sent';
    access_log {w}/access.log pk;
    keepalive_timeout 0;
    sendfile off;
    client_body_temp_path {w}/tmp/body;
    proxy_temp_path {w}/tmp/proxy;
    fastcgi_temp_path {w}/tmp/fastcgi;
    uwsgi_temp_path {w}/tmp/uwsgi;
    scgi_temp_path {w}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {w}/html;
    }}
}}
"""


# 40 000 bytes: nginx writes a 32 KiB segment and the rest, each below the 64 KiB of a
# loopback GSO buffer. Two segments make ab's kernel acknowledge the data and nginx's FIN at
# once, before ab has read them: the worker's closed socket goes from FIN_WAIT2 to a timewait
# socket, which receives ab's FIN and sends the last ACK (checked: attributed to the worker).
INDEX_HTML = ("pktrace e2e: nginx prefork workers\n" * 1200)[:40000]


def start_nginx(w, port):
    """nginx (master + 2 workers as nobody) in w, listening on 127.0.0.1:port: its Proc, whose
    pid is the master's."""
    os.chmod(w, 0o755)  # the workers run as nobody and read html/
    os.mkdir(os.path.join(w, "html"))
    os.mkdir(os.path.join(w, "tmp"))
    with open(os.path.join(w, "html", "index.html"), "w") as f:
        f.write(INDEX_HTML)
    conf = os.path.join(w, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(w=w, port=port))
    proc = Proc([NGINX, "-p", w, "-c", conf, "-e", os.path.join(w, "error.log")], name="nginx")
    return proc


def nginx_workers(w, master, n, timeout=10):
    """The worker pids the master logged as started, checked in /proc."""
    deadline = time.monotonic() + timeout
    path = os.path.join(w, "error.log")
    while True:
        text = open(path).read() if os.path.exists(path) else ""
        pids = [int(x) for x in re.findall(r"start worker process (\d+)", text)]
        if len(pids) >= n:
            break
        assert time.monotonic() < deadline, "nginx did not start %d workers within %ds; " \
            "error.log: %r" % (n, timeout, text[-500:])
        time.sleep(0.05)
    with open(os.path.join(w, "nginx.pid")) as f:
        assert int(f.read()) == master, "nginx.pid is not the master we started"
    for pid in pids:
        while os.stat("/proc/%d" % pid).st_uid != 65534:  # the master logs before setuid()
            assert time.monotonic() < deadline, "worker %d does not run as nobody" % pid
            time.sleep(0.02)
        comm, ppid, threads = proc_stat(pid)
        assert comm == "nginx" and ppid == master, (
            "worker %d: comm %r ppid %d, want nginx/%d" % (pid, comm, ppid, master))
        assert threads == 1, "worker %d has %d threads, want 1" % (pid, threads)
    return pids


def run_ab(port, n, c, tag):
    """ab -n N -c C on /index.html?TAG; returns ab's pid once it has exited successfully."""
    url = "http://127.0.0.1:%d/index.html?%s" % (port, tag)
    with Proc([AB, "-q", "-n", str(n), "-c", str(c), url], name="ab") as ab:
        rc = ab.wait(30)
        out = ab.out.text()
        assert rc == 0, "ab failed (%d): %s %s" % (rc, out[-400:], ab.err.text()[-400:])
    done = re.search(r"Complete requests:\s+(\d+)", out)
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    assert done and int(done.group(1)) == n and failed and failed.group(1) == "0", (
        "ab: %s" % " / ".join(l for l in out.splitlines() if "requests" in l))
    return ab.pid


class PortReused(AssertionError):
    """ab's kernel gave one client port to two connections of a run (the first one's tuple
    was free again: the client closes second, and nginx's timewait socket takes a newer
    SYN): connections are told apart by port, so the run cannot be checked."""


def served_by(w, tag, n):
    """{client port: worker pid} from the access log lines of requests ?TAG."""
    conns = {}
    with open(os.path.join(w, "access.log")) as f:
        for line in f:
            pid, cport, uri, status = line.split()[:4]
            if uri.endswith("?" + tag):
                assert status == "200", "nginx answered %s: %r" % (status, line)
                if int(cport) in conns:
                    raise PortReused("scenario broken: client port %s used twice in one ab "
                                     "run" % cport)
                conns[int(cport)] = int(pid)
    assert len(conns) == n, "scenario broken: access log has %d requests ?%s, ab made %d" % (
        len(conns), tag, n)
    return conns


EARLY_CLOSE = re.compile(r"\[info\] (\d+)#\d+: \*\d+ client closed connection while waiting "
                         r"for request")


def error_log_size(w):
    return os.path.getsize(os.path.join(w, "error.log"))


def early_closes(w, offset):
    """{worker pid: number of connections its client closed before sending a request} from
    error.log after offset. ab opens up to c-1 such surplus connections at the end of a run;
    the access log does not name them, nor does the error log name their client port."""
    with open(os.path.join(w, "error.log")) as f:
        f.seek(offset)
        return collections.Counter(int(p) for p in EARLY_CLOSE.findall(f.read()))


def server_side(e, port):
    return local_port(e) == port


def client_port(e, port):
    return e["dst_port"] if e["src_port"] == port else e["src_port"]


def surplus_workers(pkts, events, port, conns, early, workers, problems):
    """The worker of each connection on the wire that made no request: the worker pktrace
    names for its server side (the master or anything else is no answer), checked against
    error.log's count of such connections per worker. Returns {client port: pid or None}."""
    surplus = sorted({client_port(p, port) for p in pkts} - set(conns))
    chosen = {}
    for cp in surplus:
        pids = collections.Counter(e["processId"] for e in events if server_side(e, port)
                                   and client_port(e, port) == cp)
        cand = [pid for pid, _ in pids.most_common() if pid in workers]
        chosen[cp] = cand[0] if cand else None
    got = collections.Counter(pid for pid in chosen.values() if pid)
    want = collections.Counter({pid: n for pid, n in early.items() if pid in workers})
    if surplus:
        log("%d connections without a request (ab's surplus): ports %s; error.log: %s; "
            "pktrace: %s" % (len(surplus), surplus, dict(early), dict(got)))
    if got != want:
        problems.append(
            "connections closed before a request, per worker: error.log says %s, pktrace's "
            "server-side events say %s (client ports -> pid: %s)" % (
                dict(want), dict(got), chosen))
    return chosen


def nginx_expected(pkts, port, conns, worker_owner, client_owner):
    """Both sides of every packet; server-side events belong to the worker conns names for
    the connection's client port (a pid missing from worker_owner: "an nginx worker", which
    no event can match), client-side events to ab."""
    exp = expect_both_sides(pkts, "lo")
    for e in exp:
        if server_side(e, port):
            pid = conns[client_port(e, port)]
            e["owner"] = worker_owner.get(pid) or {"pid": "an nginx worker"}
        else:
            e["owner"] = client_owner
    return exp


@test
def nginx_prefork_workers(w):
    """nginx master + 2 workers (shared listener) under ab: every packet's events exact; each
    connection's server side, SYN to teardown, belongs to the worker the access log names."""
    require(NGINX, AB)
    port = rand_port()
    pcap = os.path.join(w, "lo.pcap")
    with server(start_nginx(w, port), signal.SIGTERM, "nginx") as ngx:
        master = ngx.pid
        workers = nginx_workers(w, master, 2)
        log("nginx master %d, workers %s, port %d" % (master, workers, port))
        worker_owner = {pid: proc_owner(pid, "nginx", master, 65534) for pid in workers}
        names = {master: "nginx master"}
        names.update((pid, "nginx worker") for pid in workers)

        # 1. Everything of nginx and ab (once more if ab's kernel reused a client port).
        for attempt in (1, 2):
            offset = error_log_size(w)
            with capture("lo", "tcp port %d" % port, pcap, buffer_kib=CAPTURE_KIB,
                         snaplen=CAPTURE_SNAPLEN) as cap, \
                    pktrace(["-s", "comm=nginx,ab"], w, tag="all%d" % attempt) as pt:
                ab_pid = run_ab(port, 200, 10, "run1-%d" % attempt)
                cap.stop()
                events = pt.stop()
            try:
                conns = served_by(w, "run1-%d" % attempt, 200)
                break
            except PortReused as e:
                if attempt == 2:
                    raise
                log("%s: the run again" % e)
        early = early_closes(w, offset)
        per_worker = collections.Counter(conns.values())
        log("requests per worker: %s" % ", ".join(
            "%d: %d" % (pid, per_worker[pid]) for pid in workers))
        assert set(per_worker) <= set(workers), "access log names pids %s, workers are %s" % (
            sorted(per_worker), workers)
        pkts = read_pcap(pcap)
        names[ab_pid] = "ab"
        ab_o = proc_owner(ab_pid, "ab", os.getpid(), 0)
        ours = [e for e in events if port in (e["src_port"], e["dst_port"])]
        if len(ours) != len(events):
            log("%d events of other nginx/ab traffic ignored" % (len(events) - len(ours)))
        problems = [events_of(ours, master, "the nginx master (it never uses an accepted socket)"),
                    losses(pt)]
        phase = connection_phases(pkts, port)
        problems += hold_summary(pt, phase.device_only())
        conns_all = dict(conns)
        conns_all.update(surplus_workers(pkts, ours, port, conns, early, workers, problems))
        exp = nginx_expected(pkts, port, conns_all, worker_owner, ab_o)
        log("wire: %d connections; %s packets; %d events seen by a timewait socket or none" % (
            len(conns_all), ", ".join("%s %d" % kv for kv in sorted(
                collections.Counter(phase.values()).items())), phase.device_only()))
        if not phase.device_only():
            log("NOTE: no packet passed a timewait socket in this run")
        failures = []
        try:
            verdict(match(exp, ours), "nginx+ab events", phase, names, port, problems, cap)
        except AssertionError as e:  # still run the second part, then report both
            failures.append("-s comm=nginx,ab: %s" % e)
        if len(per_worker) < 2:
            log("note: one worker served every request of this run")

        # 2. Only one worker: its connections from their SYN on, nothing else.
        target = per_worker.most_common(1)[0][0] if len(per_worker) == 1 else workers[0]
        pcap2 = os.path.join(w, "lo-worker.pcap")
        offset = error_log_size(w)
        with capture("lo", "tcp port %d" % port, pcap2, buffer_kib=CAPTURE_KIB,
                     snaplen=CAPTURE_SNAPLEN) as cap, \
                pktrace(["-s", "pid=%d" % target], w, tag="worker") as pt:
            mine, runs = {}, 0
            while len(mine) < 3 and runs < 4:  # until the worker has served a few
                runs += 1
                tag = "run2-%d" % runs
                run_ab(port, 30, 3, tag)
                mine.update((cp, pid) for cp, pid in served_by(w, tag, 30).items()
                            if pid == target)
            cap.stop()
            events2 = pt.stop()
    assert mine, "scenario broken: worker %d served none of %d requests" % (target, 30 * runs)
    pkts2 = read_pcap(pcap2)
    problems = [events_of(events2, master, "the nginx master under -s pid=%d" % target),
                losses(pt)] + hold_summary(pt)
    others = [e for e in events2 if e["processId"] not in (target, master)]
    if others:
        problems.append("%d events of processes other than worker %d under -s pid=%d: %s" % (
            len(others), target, target, [describe(e) for e in others[:5]]))
    served = {client_port(p, port) for p in pkts2}
    # Connections without a request: the worker's if pktrace reports them for it (counted).
    logged = {}
    for n in range(1, runs + 1):
        logged.update(served_by(w, "run2-%d" % n, 30))
    surplus = surplus_workers(pkts2, events2, port, logged, early_closes(w, offset), [target],
                              problems)
    mine.update((cp, pid) for cp, pid in surplus.items() if pid == target)
    mine_pkts = [p for p in pkts2 if client_port(p, port) in mine]
    log("-s pid=%d: the worker served %d of %d connections (%d runs of ab -n 30 -c 3)" % (
        target, len(mine), len(served), runs))
    for cport in sorted(mine):
        syn = [p for p in mine_pkts if p["SYN"] and not p["ACK"] and p["src_port"] == cport]
        if not syn:
            problems.append("scenario broken: tcpdump has no SYN from port %d (tcpdump dropped "
                            "%d packets)" % (cport, tcpdump_drops(cap)))
        elif not any(e["src_port"] == cport and e["SYN"] and not e["ACK"] for e in events2):
            problems.append("worker %d's connection from port %d: no event for its SYN (frame %d) "
                            "under -s pid=%d" % (target, cport, syn[0]["frame"], target))
    exp2 = expect_one_side(mine_pkts, "lo", {port}, {port: worker_owner[target]})
    try:
        verdict(match(exp2, events2), "events under -s pid=%d" % target,
                connection_phases(mine_pkts, port), names, port, problems, cap)
    except AssertionError as e:
        failures.append("-s pid=%d (one worker): %s" % (target, e))
    assert not failures, "\n      ".join(failures)


def kept_conns(pid):
    """The connections pktrace (pid) keeps a closed connection's owner for, from its gone_conns
    and closed_conns tables (bpftool): (local port, remote port) pairs."""
    ids = bpf_ids_held_by(pid)[1]
    kept, names = [], set()
    for i in sorted(ids):
        m = json.loads(run(["bpftool", "-j", "map", "show", "id", str(i)]).stdout)
        if m.get("name") not in ("gone_conns", "closed_conns"):
            continue
        names.add(m["name"])
        for ent in json.loads(run(["bpftool", "-j", "map", "dump", "id", str(i)]).stdout):
            k = bytes(int(b, 16) for b in ent["key"])  # struct pkt_conn: ports at 6 and 8
            kept.append((int.from_bytes(k[6:8], "little"), int.from_bytes(k[8:10], "little")))
    assert names == {"gone_conns", "closed_conns"}, "pktrace %d holds tables %s" % (pid, names)
    return kept


@test
def nginx_out_of_scope_close_not_kept(w):
    """Under -s comm=ab, nginx (out of scope) closes every connection first: its side's close
    is not remembered (its teardown would not be written; keeping it cost a table update and
    lookups at the device for every connection on the host), ab's side is, and ab's events,
    teardown included, are still exact against tshark."""
    require(NGINX, AB)
    port = rand_port()
    pcap = os.path.join(w, "lo.pcap")
    with server(start_nginx(w, port), signal.SIGTERM, "nginx") as ngx:
        nginx_workers(w, ngx.pid, 2)
        with capture("lo", "tcp port %d" % port, pcap, buffer_kib=CAPTURE_KIB,
                     snaplen=CAPTURE_SNAPLEN) as cap, \
                pktrace(["-s", "comm=ab"], w) as pt:
            ab_pid = run_ab(port, 100, 4, "oos")
            time.sleep(0.5)  # the last closes
            kept = kept_conns(pt.proc.pid)
            cap.stop()
            events = pt.stop()
    served_by(w, "oos", 100)
    pkts = read_pcap(pcap)
    ab_ports = {p["src_port"] for p in pkts if p["dst_port"] == port}
    nginx_side = [k for k in kept if k[0] == port]
    ab_side = {k[0] for k in kept if k[1] == port}
    log("%d connections; kept: %d of nginx's side, %d of ab's" % (
        len(ab_ports), len(nginx_side), len(ab_side & ab_ports)))
    assert not nginx_side, "%d closes of nginx (out of scope) kept, e.g. %s" % (
        len(nginx_side), nginx_side[:3])
    assert ab_side >= ab_ports, "ab's closes not kept for ports %s" % sorted(ab_ports - ab_side)[:5]
    problem = losses(pt)
    assert not problem, problem
    ab_o = proc_owner(ab_pid, "ab", os.getpid(), 0)
    exp = expect_one_side(pkts, "lo", ab_ports, {p: ab_o for p in ab_ports})
    m = match(exp, [e for e in events if port in (e["src_port"], e["dst_port"])])
    if m.missing:
        log("tcpdump dropped %d packets" % tcpdump_drops(cap))
    m.assert_exact("ab's events under -s comm=ab (nginx out of scope)")


# ---------------------------------------------------------------------------------------------
# PostgreSQL

def pg_bindir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(re.search(r"/(\d+)/bin$", d).group(1))
                  if re.search(r"/(\d+)/bin$", d) else 0)
    for d in reversed(dirs):
        if all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "postgres", "psql")):
            return d
    raise Skip("PostgreSQL (initdb, postgres, psql under /usr/lib/postgresql/*/bin) "
               "not installed")


# 600 temporary tables take the backend ~0.1 s to drop when the session ends, after psql's
# Terminate and FIN: longer than the 40 ms delayed ACK, so the kernel acknowledges psql's FIN
# on its own, psql's orphaned socket goes from FIN_WAIT2 to a timewait socket, and the
# backend's FIN reaches that timewait socket, which sends the last ACK.
TEMP_TABLES = ("do $$ begin for i in 1..600 loop execute format('create temp table t%s (x int)', i); "
               "end loop; end $$; ")


def as_user(pw, home):
    """Run as pw's user with a clean environment; setpriv and env exec, so the pid of the
    Proc is the pid of the final program."""
    return ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--init-groups",
            "env", "-i", "PATH=/usr/bin:/bin", "HOME=" + home, "LC_ALL=C"]


def pg_cleanup_ipc(pgdata, shm_before):
    """After a postmaster had to be killed: its SysV segment and POSIX DSM segments."""
    try:
        with open(os.path.join(pgdata, "postmaster.pid")) as f:
            lines = f.read().splitlines()
        if len(lines) >= 7 and lines[6].split():
            run(["ipcrm", "-m", lines[6].split()[-1]], check=False)
    except OSError:
        pass
    for path in set(glob.glob("/dev/shm/PostgreSQL.*")) - shm_before:
        with contextlib.suppress(OSError):
            os.unlink(path)


@test
def postgres_backend(w):
    """PostgreSQL under psql: every packet's events exact; the server side of each connection,
    SYN to teardown, belongs to its backend (the postmaster's child), never the postmaster."""
    bindir = pg_bindir()
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        pw = pwd.getpwnam("nobody")
    os.chmod(w, 0o755)
    pgdata, sock = os.path.join(w, "pgdata"), os.path.join(w, "sock")
    for d in (pgdata, sock):
        os.mkdir(d, 0o700)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    user = as_user(pw, sock)
    t0 = time.monotonic()
    run(user + [os.path.join(bindir, "initdb"), "-D", pgdata, "-A", "trust", "-U", "postgres",
                "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
        timeout=40, cwd=w)
    log("initdb (%s, as %s) took %.1fs" % (bindir, pw.pw_name, time.monotonic() - t0))
    port = rand_port()
    shm_before = set(glob.glob("/dev/shm/PostgreSQL.*"))
    pg = Proc(user + [os.path.join(bindir, "postgres"), "-D", pgdata, "-p", str(port),
                      "-k", sock, "-c", "listen_addresses=127.0.0.1",
                      "-c", "log_connections=on", "-c", "log_disconnections=on",
                      "-c", "log_line_prefix=%p ", "-c", "logging_collector=off",
                      "-c", "fsync=off", "-c", "max_connections=20",
                      "-c", "shared_buffers=16MB", "-c", "ssl=off"], name="postgres")
    pcap = os.path.join(w, "lo.pcap")
    try:
        with server(pg, signal.SIGINT, "postgres", timeout=15):
            pg.expect_err(r"database system is ready to accept connections", timeout=20)
            postmaster = pg.pid
            with open(os.path.join(pgdata, "postmaster.pid")) as f:
                assert int(f.readline()) == postmaster, "postmaster.pid is not our postgres"
            assert proc_stat(postmaster)[0] == "postgres"
            log("postmaster %d on 127.0.0.1:%d (uid %d)" % (postmaster, port, pw.pw_uid))
            psqls = []
            with capture("lo", "tcp port %d" % port, pcap, buffer_kib=CAPTURE_KIB,
                         snaplen=CAPTURE_SNAPLEN) as cap, \
                    pktrace(["-s", "comm=postgres,psql"], w) as pt:
                for i in range(4):
                    # The second psql leaves temporary tables for its backend to drop after
                    # psql has gone (TEMP_TABLES): psql's side ends in a timewait socket.
                    query = (TEMP_TABLES if i == 1 else "") + "select %d + 1" % i
                    with Proc(user + [os.path.join(bindir, "psql"), "-X", "-w", "-A", "-t",
                                      "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                      "-d", "postgres", "-c", query],
                              name="psql") as ps:
                        rc = ps.wait(20)
                        out = ps.out.text().strip()
                        assert rc == 0 and out.splitlines()[-1:] == [str(i + 1)], (
                            "psql failed (%d): %r %s" % (rc, out, ps.err.text()))
                        psqls.append(ps.pid)
                # Each backend logs its connection and, when it has gone, its disconnection.
                rx_conn = r"^(\d+) LOG:  connection received: host=127\.0\.0\.1 port=(\d+)"
                deadline = time.monotonic() + 10
                while True:
                    text = "\n".join(list(pg.err.lines))
                    backends = {int(cp): int(pid) for pid, cp in re.findall(rx_conn, text, re.M)}
                    gone = {int(x) for x in re.findall(r"^(\d+) LOG:  disconnection:", text,
                                                       re.M)}
                    if len(backends) >= 4 and set(backends.values()) <= gone:
                        break
                    assert time.monotonic() < deadline, (
                        "postgres logged %d connections, %d disconnections: %s" % (
                            len(backends), len(gone), pg.err.tail()))
                    time.sleep(0.05)
                cap.stop()
                events = pt.stop()
            pg.signal(signal.SIGINT)  # fast shutdown
            assert pg.wait(15) == 0, "postgres exited %s: %s" % (pg.p.returncode, pg.err.tail())
    finally:
        if pg.p.returncode is None or pg.p.returncode < 0:  # killed: remove its IPC objects
            pg_cleanup_ipc(pgdata, shm_before)
    log("backends by client port: %s; psql pids %s" % (backends, psqls))
    assert len(backends) == 4 and postmaster not in backends.values() and \
        len(set(backends.values())) == 4, "scenario broken: backends %s" % backends
    pkts = read_pcap(pcap)
    cports = sorted({p["src_port"] for p in pkts if p["SYN"] and not p["ACK"]})
    assert cports == sorted(backends), (
        "scenario broken: client ports on the wire %s, in the log %s" % (cports,
                                                                         sorted(backends)))
    # psql i connected from the i-th client port (they ran one after the other).
    first_frame = {cp: min(p["frame"] for p in pkts if p["src_port"] == cp) for cp in cports}
    by_time = sorted(cports, key=lambda cp: first_frame[cp])
    psql_of = dict(zip(by_time, psqls))
    names = {postmaster: "postmaster"}
    names.update((pid, "postgres backend") for pid in backends.values())
    names.update((pid, "psql") for pid in psqls)
    exp = expect_both_sides(pkts, "lo")
    for e in exp:
        if local_port(e) == port:
            cport = e["dst_port"] if e["direction"] == "egress" else e["src_port"]
            e["owner"] = proc_owner(backends[cport], "postgres", postmaster, pw.pw_uid)
        else:
            e["owner"] = proc_owner(psql_of[local_port(e)], "psql", os.getpid(), pw.pw_uid)
    ours = [e for e in events if port in (e["src_port"], e["dst_port"])]
    if len(ours) != len(events):
        log("%d events of other postgres/psql traffic ignored" % (len(events) - len(ours)))
    phase = connection_phases(pkts, port)
    log("wire: %s packets" % ", ".join("%s %d" % kv for kv in sorted(
        collections.Counter(phase.values()).items())))
    tw = sorted(f for f, v in phase.gone.items() if "timewait" in v.values())
    log("frames through a timewait socket: %s" % tw if tw else
        "NOTE: no packet passed a timewait socket in this run (the backend dropped its "
        "temporary tables within the delayed-ACK time)")
    verdict(match(exp, ours), "postgres+psql events", phase, names, port,
            [events_of(ours, postmaster, "the postmaster (it only accepts and forks)"),
             losses(pt)] + hold_summary(pt, phase.device_only()), cap)


SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"


def _tshark_ssh(pcap, port, display):
    """(tcp.seq, tcp.srcport) of each packet of pcap matching display, with the SSH dissector
    on port (tshark's own reading: the clear-text part of the protocol)."""
    r = run(["tshark", "-n", "-r", pcap, "-d", "tcp.port==%d,ssh" % port, "-o",
             "tcp.relative_sequence_numbers:FALSE", "-Y", display, "-T", "fields",
             "-e", "tcp.seq", "-e", "tcp.srcport"], timeout=60)
    return [tuple(int(x) for x in l.split("\t")) for l in r.stdout.splitlines() if l.strip()]


@test
def sshd_privsep_login(w):
    """OpenSSH's sshd, privilege separated, started by the test on a port of its own; ssh
    logs in as nobody with a key (the session runs nologin, which prints one line). Each
    stage of sshd sends with a process of its own: the connection's sshd (root) its banner,
    the unprivileged preauth child (user sshd) the key exchange and authentication, the
    session child (nobody) the session. Checked against tshark, which reads the clear-text
    start of the protocol: the server's banner is the connection's sshd's, its KEXINIT the
    preauth child's (a first send: its segment leaves before the send returns, and went to
    the connection's sshd before the owner changed at the packet); every server data segment
    goes to one of the three, in that order; -s uid=65534 writes the session child's packets
    and nothing of the others. Every event agrees with tshark field for field."""
    require(SSHD, SSH, "/usr/bin/ssh-keygen")
    try:
        sshd_uid = pwd.getpwnam("sshd").pw_uid
    except KeyError:
        raise Skip("no sshd user (openssh-server's privilege separation user)")
    port = rand_port()
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # the preauth child's chroot
    for key in ("hostkey", "id"):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(w, key)])
    auth = os.path.join(w, "authorized_keys")
    with open(os.path.join(w, "id.pub")) as f, open(auth, "w") as o:
        o.write(f.read())
    os.chmod(auth, 0o644)
    os.chmod(w, 0o755)
    conf = os.path.join(w, "sshd_config")
    with open(conf, "w") as f:
        f.write("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s\n"
                "AuthorizedKeysFile %s\nStrictModes no\nUsePAM no\nPermitRootLogin no\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "LogLevel VERBOSE\n" % (port, os.path.join(w, "hostkey"),
                                        os.path.join(w, "sshd.pid"), auth))
    ssh = [SSH, "-F", "/dev/null", "-i", os.path.join(w, "id"), "-p", str(port), "-T",
           "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
           "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "nobody@127.0.0.1", "true"]
    runs = {}
    for scope in ([], ["-s", "uid=65534"]):
        pcap = os.path.join(w, "lo%d.pcap" % len(runs))
        with capture("lo", "tcp port %d" % port, pcap) as cap, pktrace(scope, w) as pt:
            with server(Proc([SSHD, "-D", "-e", "-f", conf], name="sshd"), signal.SIGTERM,
                        "sshd") as sshd:
                sshd.expect_err(r"Server listening on")
                r = run(ssh, timeout=30, check=False)
                assert "This account is currently not available" in r.stdout + r.stderr, (
                    "ssh as nobody did not reach its session (exit %d): %s" % (
                        r.returncode, (r.stderr or r.stdout).strip()))
                sshd.expect_err(r"Accepted publickey for nobody")
                time.sleep(0.5)
            cap.stop()
            events = pt.stop()
        runs[tuple(scope)] = (pcap, events)
    # Unscoped: the three stages of the server.
    pcap, events = runs[()]
    pkts = read_pcap(pcap)
    match(expect_both_sides(pkts, "lo"), events).assert_exact("sshd's connection")
    banner = _tshark_ssh(pcap, port, "tcp.srcport == %d && ssh.protocol" % port)
    kexinit = _tshark_ssh(pcap, port, "tcp.srcport == %d && ssh.message_code == 20" % port)
    assert len(banner) == 1 and len(kexinit) == 1, "scenario broken: tshark shows the "\
        "server's banner %s and KEXINIT %s" % (banner, kexinit)
    data = sorted((e["seq"], e["processId"], e["userId"], e["parentProcessId"])
                  for e in events if e["direction"] == "egress" and e["src_port"] == port and
                  e["packet_len"] > 4 * e["dataOffset"] + (20 if ":" not in e["src_ip"] else 40))
    by_seq = {s: (pid, uid, ppid) for s, pid, uid, ppid in data}
    conn_sshd, root, _ = by_seq[banner[0][0]]
    pre, pre_uid, pre_ppid = by_seq[kexinit[0][0]]
    log("server data segments (seq, pid, uid): %s" % [(s, p, u) for s, p, u, _ in data])
    assert root == 0, "the banner went to pid %d uid %d, not the connection's sshd (root)" % (
        conn_sshd, root)
    assert (pre_uid, pre_ppid) == (sshd_uid, conn_sshd) and pre != conn_sshd, (
        "the KEXINIT went to pid %d (uid %d, parent %d), not the preauth child (user sshd, "
        "uid %d, a child of the connection's sshd %d)" % (pre, pre_uid, pre_ppid, sshd_uid,
                                                          conn_sshd))
    stages = [(pid, uid) for _, pid, uid, _ in data]
    order = [k for i, k in enumerate(stages) if i == 0 or stages[i - 1] != k]
    assert [u for _, u in order] == [0, sshd_uid, 65534], (
        "the server's data segments are not the connection's sshd's, then the preauth "
        "child's, then the session child's: %s" % order)
    session = order[2][0]
    # -s uid=65534: the session child's packets, and nothing else of the connection.
    pcap, events = runs[("-s", "uid=65534")]
    assert events and {(e["processId"], e["userId"]) for e in events} == {
        (e["processId"], 65534) for e in events[:1]}, "-s uid=65534: %s" % sorted(
        {(e["processId"], e["userId"]) for e in events})
    log("-s uid=65534: %d events, all of pid %d (unscoped run's session child: %d)" % (
        len(events), events[0]["processId"], session))


# ---------------------------------------------------------------------------------------------
# Redis

REDIS = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"
REDIS_BENCH = "/usr/bin/redis-benchmark"


def _redis(w, name, port, user, *more):
    """redis-server as user (a pwd entry), its data in w/name, listening on 127.0.0.1:port,
    logging to stdout; its Proc."""
    d = os.path.join(w, name)
    os.mkdir(d, 0o700)
    os.chown(d, user.pw_uid, user.pw_gid)
    return Proc(as_user(user, d) + [REDIS, "--port", str(port), "--bind", "127.0.0.1",
                                    "--dir", d, "--logfile", "", "--daemonize", "no",
                                    "--save", "", "--appendonly", "no",
                                    "--protected-mode", "no"] + list(more), name=name)


@test
def redis_primary_replica(w):
    """Redis (Debian's redis-server) as a primary run by user redis, a replica run by root
    that syncs from it (a full sync: the primary forks a child that writes the snapshot, then
    sends it and streams every write), redis-cli and a two-threaded redis-benchmark as
    clients; the replica is shut down last, so its connection's teardown is traced too (the
    primary's socket existed before pktrace started). Every packet on the primary's port,
    against tshark: both events, each field, and each side's owner: the primary (pid, its
    main thread, uid redis) for every server-side packet, the replica for its connection,
    and the redis-cli or redis-benchmark process whose run the connection's SYN fell in."""
    require(REDIS, REDIS_CLI, REDIS_BENCH)
    try:
        ruser = pwd.getpwnam("redis")
    except KeyError:
        ruser = pwd.getpwnam("nobody")
    root = pwd.getpwuid(0)
    os.chmod(w, 0o755)
    port, rport = rand_port(), rand_port()
    pcap = os.path.join(w, "lo.pcap")
    clients = []  # (pid, name, start, end): each client process's run, wall clock

    def client(cmd, name):
        t0 = time.time()
        with Proc(cmd, name=name) as c:
            rc = c.wait(60)
            out = c.out.text()
            assert rc == 0, "%s failed (%d): %s %s" % (name, rc, out[-300:], c.err.tail())
        clients.append((c.pid, name, t0, time.time()))
        return out

    def cli(*args):
        return client([REDIS_CLI, "-h", "127.0.0.1", "-p", str(port)] + list(args),
                      "redis-cli")

    primary = _redis(w, "primary", port, ruser, "--repl-diskless-sync", "no")
    with server(primary, signal.SIGTERM, "redis primary"):
        primary.expect(r"Ready to accept connections", timeout=20)
        with capture("lo", "tcp port %d" % port, pcap, buffer_kib=CAPTURE_KIB,
                     snaplen=CAPTURE_SNAPLEN) as cap, \
                pktrace(["-s", "comm=redis-server,redis-cli,redis-benchmark"], w) as pt:
            replica = _redis(w, "replica", rport, root, "--replicaof", "127.0.0.1", str(port))
            with server(replica, signal.SIGTERM, "redis replica"):
                replica.expect(r"MASTER <-> REPLICA sync: Finished with success", timeout=30)
                cli("SET", "pktrace", "e2e")
                line = cli("CLIENT", "LIST", "TYPE", "replica")
                rports = [int(p) for p in re.findall(r"\baddr=127\.0\.0\.1:(\d+)", line)]
                assert len(rports) == 1, "scenario broken: replicas %r" % line
                client([REDIS_BENCH, "-h", "127.0.0.1", "-p", str(port), "-n", "3000",
                        "-c", "6", "--threads", "2", "-t", "set,get", "-q"], "redis-benchmark")
                assert cli("GET", "pktrace").strip() == "e2e"
                time.sleep(1.2)  # a REPLCONF ACK from the replica, each second
                replica.signal(signal.SIGTERM)
                assert replica.wait(15) == 0, "the replica exited %s: %s" % (
                    replica.p.returncode, replica.err.tail())
            time.sleep(0.5)  # the primary's side of the replica's connection closes
            cap.stop()
            events = pt.stop()
    pkts = read_pcap(pcap)
    owners = {port: proc_owner(primary.pid, "redis-server", os.getpid(), ruser.pw_uid),
              rports[0]: proc_owner(replica.pid, "redis-server", os.getpid(), 0)}
    for p in pkts:
        if p["SYN"] and not p["ACK"] and p["src_port"] != rports[0]:
            runs = [(pid, name) for pid, name, t0, t1 in clients if t0 <= p["time"] <= t1]
            assert len(runs) == 1, "scenario broken: client port %d's SYN at %.6f falls in "\
                "the runs %s" % (p["src_port"], p["time"], runs)
            pid, name = runs[0]
            # redis-benchmark's connections are its threads': the process is checked.
            owners[p["src_port"]] = {"pid": pid, "name": name, "uid": 0}
    cports = {p["src_port"] for p in pkts if p["dst_port"] == port}
    assert cports <= set(owners), "scenario broken: connections without a SYN on the wire: "\
        "%s" % sorted(cports - set(owners))
    log("%d packets; client connections: %s" % (len(pkts), collections.Counter(
        name for pid, name, _, _ in clients for cp, o in owners.items() if o.get("pid") == pid)))
    names = {primary.pid: "primary", replica.pid: "replica"}
    names.update((pid, name) for pid, name, _, _ in clients)
    ours = [e for e in events if port in (e["src_port"], e["dst_port"])]
    phase = connection_phases(pkts, port)
    tw = sorted(f for f, v in phase.gone.items() if "timewait" in v.values())
    log("frames through a timewait socket: %s" % tw)
    verdict(match(expect_both_sides(pkts, "lo", owners), ours), "redis events", phase, names,
            port, [losses(pt)] + hold_summary(pt, phase.device_only()), cap)


# ---------------------------------------------------------------------------------------------
# Apache (prefork MPM) slow to accept

APACHE = "/usr/sbin/apache2"
CURL = "/usr/bin/curl"

APACHE_CONF = """\
ServerRoot {w}
PidFile {w}/httpd.pid
Listen 127.0.0.1:{port}
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
User www-data
Group www-data
ServerName localhost
DocumentRoot {w}/htdocs
<Directory {w}/htdocs>
  Require all granted
</Directory>
StartServers 1
ServerLimit 1
MinSpareServers 1
MaxSpareServers 1
MaxRequestWorkers 1
MaxConnectionsPerChild 0
KeepAlive On
KeepAliveTimeout {keepalive}
ErrorLog {w}/error.log
LogFormat "%P %{{remote}}p %k %s %U" pk
CustomLog {w}/access.log pk
"""


def tcp_ext(name):
    """A TcpExt counter of this network namespace (/proc/net/netstat)."""
    with open("/proc/net/netstat") as f:
        lines = [l.split() for l in f if l.startswith("TcpExt:")]
    return int(dict(zip(lines[0][1:], lines[1][1:]))[name])


@test
def apache_prefork_slow_accept(w):
    """Apache's prefork MPM with one worker (as www-data; the master, root, never uses a
    connection), started before pktrace: a keep-alive client takes the worker and stays idle,
    so two curl clients that connect just after it wait in the listen queue for longer than
    --hold-time (2 s) before the worker accepts them, and a client that connects and sends
    its request only 3 s later stays a request in the kernel (Apache's default AcceptFilter
    sets TCP_DEFER_ACCEPT) before it joins the queue. Traced with -s uid=www-data: every
    server-side packet on the port, against tshark, must be the worker's - the queued
    connections' handshakes and requests too, which earlier went to the master (out of scope:
    not written) once their wait ran out. The summary must say they were held on."""
    require(APACHE, CURL)
    www = pwd.getpwnam("www-data")
    os.chmod(w, 0o755)
    port = rand_port()
    keepalive = 4
    htdocs = os.path.join(w, "htdocs")
    os.mkdir(htdocs, 0o755)
    with open(os.path.join(htdocs, "index.html"), "w") as f:
        f.write("pktrace e2e: apache prefork\n")
    conf = os.path.join(w, "apache2.conf")
    with open(conf, "w") as f:
        f.write(APACHE_CONF.format(w=w, port=port, keepalive=keepalive))
    pcap = os.path.join(w, "lo.pcap")
    url = "http://127.0.0.1:%d/index.html" % port
    apache = Proc([APACHE, "-f", conf, "-DFOREGROUND"], name="apache2")
    with server(apache, signal.SIGTERM, "apache2"):
        deadline = time.time() + 15
        workers = []
        while time.time() < deadline and not workers:
            time.sleep(0.1)
            workers = [int(p) for p in run(["pgrep", "-P", str(apache.pid)],
                                           check=False).stdout.split()]
        assert len(workers) == 1, "scenario broken: apache workers %r: %s" % (
            workers, apache.err.tail())
        worker = workers[0]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # listening (the worker served it)
        with capture("lo", "tcp port %d" % port, pcap, snaplen=CAPTURE_SNAPLEN) as cap, \
                pktrace(["-s", "uid=%d" % www.pw_uid], w) as pt:
            idle = socket.create_connection(("127.0.0.1", port), timeout=keepalive + 5)
            idle.sendall(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert b"200 OK" in idle.recv(4096), "scenario broken: no answer on keep-alive"
            # The worker now waits for the keep-alive connection's next request: these two
            # wait in the listen queue until it gives up on it.
            defer_drops = tcp_ext("TCPDeferAcceptDrop")
            curls = [Proc([CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code} %{local_port}",
                           "--max-time", "20", url], name="curl") for _ in range(2)]
            # A client that connects and says nothing for 3 s (a browser's preconnect):
            # Apache's default AcceptFilter (TCP_DEFER_ACCEPT) leaves it a request in the
            # kernel, not yet a queued connection, until its data comes.
            slow = socket.create_connection(("127.0.0.1", port), timeout=20)
            time.sleep(3)
            slow.sendall(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n"
                         b"Connection: close\r\n\r\n")
            assert b"200 OK" in slow.recv(4096), "scenario broken: no answer to the slow client"
            slow.close()
            defer_drops = tcp_ext("TCPDeferAcceptDrop") - defer_drops
            for c in curls:
                assert c.wait(30) == 0, "curl failed: %s" % c.err.tail()
            assert idle.recv(100) == b"", "scenario broken: the keep-alive connection lived on"
            idle.close()
            time.sleep(0.5)
            cap.stop()
            events = pt.stop()
        served = {}
        with open(os.path.join(w, "access.log")) as f:
            for line in f:
                pid, cport = (int(x) for x in line.split()[:2])
                served[cport] = pid
    pkts = read_pcap(pcap)
    cports = {p["src_port"] for p in pkts if p["dst_port"] == port}
    assert set(served.values()) == {worker} and cports <= set(served), \
        "scenario broken: the access log has %r, the wire the client ports %r" % (served, cports)
    waits = []
    for cport in cports:
        ps = [p for p in pkts if cport in (p["src_port"], p["dst_port"])]
        syn = next(p["time"] for p in ps if p["SYN"] and not p["ACK"])
        answer = next((p["time"] for p in ps if p["src_port"] == port and p["payload"]), None)
        waits.append(answer - syn if answer else 0)
    slow = [x for x in waits if x > 2.2]
    log("%d packets; each connection's wait for its answer: %s; the kernel kept %d handshake "
        "ACKs waiting for data (TCP_DEFER_ACCEPT)" % (
            len(pkts), ", ".join("%.2fs" % x for x in sorted(waits)), defer_drops))
    assert len(slow) >= 3 and defer_drops >= 1, "scenario broken: want three connections "\
        "waiting for over 2 s, one of them a request held back by TCP_DEFER_ACCEPT; waits %r, "\
        "deferred ACKs %d" % (waits, defer_drops)
    names = {apache.pid: "apache2 master", worker: "apache2 worker"}
    owners = {port: proc_owner(worker, "apache2", apache.pid, www.pw_uid)}
    ours = [e for e in events if port in (e["src_port"], e["dst_port"])]
    phase = connection_phases(pkts, port)
    err = pt.stderr()
    m = re.search(r"still waiting for accept\(\) after [\d.]+s \([^)]*\), held on until a "
                  r"process did: (\d+)", err)
    queued = None if m and int(m.group(1)) >= 3 else \
        "the summary does not say that the three queued connections were held on: %r" % \
        err[-600:]
    verdict(match(expect_one_side(pkts, "lo", {port}, owners), ours), "apache events", phase,
            names, port, [losses(pt), queued, events_of(ours, apache.pid, "the master")] +
            hold_summary(pt, phase.device_only()), cap)
