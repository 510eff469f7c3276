"""io_uring: a server that accepts with IORING_OP_ACCEPT (no accept syscall, no accept
tracepoint) and does its I/O with IORING_OP_RECV/SEND (the sock_recvmsg/sock_sendmsg path).

The rule checked (README, Attribution): every packet of an accepted connection, from the SYN
on, belongs to the task that first sends or receives on it - here the io_uring server, whose
requests may run in the submitting thread or in one of its io-wq worker threads (iou-wrk-PID).
The listener belongs to another process (the worker's parent, which keeps it open), so
falling back to the listener's owner fails the test.
"""
import os
import subprocess
import threading
import time

from e2elib import (capture, describe, expect_both_sides, local_port, log, match, peer,
                    pktrace, rand_name, rand_port, read_pcap, run, test, Proc, Skip, HERE)
from t_attribution import check_held_scenario, ok, scope, who

SOURCE = os.path.join(HERE, "uring_server.c")


def build_server(w):
    """Compile uring_server.c into the work directory; skip if liburing is not installed."""
    if not os.path.exists("/usr/include/liburing.h"):
        raise Skip("liburing-dev is not installed (/usr/include/liburing.h)")
    exe = os.path.join(w, "uring_server")
    run(["cc", "-O2", "-Wall", "-Werror", "-o", exe, SOURCE, "-luring"], timeout=60)
    return exe


class TaskWatch(threading.Thread):
    """Records every thread of a process ({tid: comm}) while it runs, io-wq workers included
    (they come and go)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.tasks = {}
        self.done = threading.Event()
        self.start()

    def scan(self):
        base = "/proc/%d/task" % self.pid
        try:
            tids = os.listdir(base)
        except OSError:
            return
        for t in tids:
            try:
                with open(os.path.join(base, t, "comm")) as f:
                    self.tasks[int(t)] = f.read().strip()
            except OSError:
                pass

    def run(self):
        while not self.done.is_set():
            self.scan()
            time.sleep(0.005)

    def stop(self):
        self.scan()
        self.done.set()
        self.join(5)
        return dict(self.tasks)


def tgid_of(tid):
    """The thread group of a task still alive, or None."""
    try:
        with open("/proc/%d/status" % tid) as f:
            for line in f:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@test
def io_uring_accept(w):
    """A worker accepts with io_uring (IORING_OP_ACCEPT, RECV, SEND) on its parent's listener,
    two connections, each receiving data before its first recv: every server-side packet, SYN
    included, belongs to the worker (one of its threads), none to the listener's owner."""
    exe = build_server(w)
    port = rand_port()
    sn, wn, cn = rand_name("e2l"), rand_name("e2u"), rand_name("e2c")
    conns, delay_ms = 2, 300
    pcap = os.path.join(w, "lo.pcap")
    lports, firstio = [], []
    with capture("lo", "tcp port %d" % port, pcap) as cap, pktrace(scope(sn, wn, cn), w) as pt:
        with Proc([exe, sn, wn, str(port), str(conns), str(delay_ms)], stdin=subprocess.PIPE,
                  name="uring_server(%s)" % sn) as srv:
            lpid = int(srv.expect(r"^PID (\d+)").group(1))
            assert lpid == srv.pid, "server says PID %d, started as %d" % (lpid, srv.pid)
            srv.expect(r"^LISTENING %d$" % port)
            spid = int(srv.expect(r"^WORKER (\d+)").group(1))
            watch = TaskWatch(spid)
            clients = []
            for i in range(conns):
                with peer("client", cn, port, rounds=3) as cli:
                    lports.append(int(cli.expect(r"^CONNECTED (\d+)").group(1)))
                    ok(cli)
                clients.append(cli)
                srv.expect(r"^EOF %d$" % (3 * 100))
            srv.expect(r"^DONE$")
            firstio = [float(l.split()[1]) for l in srv.out.lines if l.startswith("FIRSTIO ")]
            tasks = watch.stop()
            srv.p.stdin.close()
            assert srv.wait(10) == 0, "uring_server failed: %s" % srv.err.text()
        cap.stop()
        events = pt.stop()
    pkts = read_pcap(pcap)
    assert len(firstio) == conns, "server printed FIRSTIO %d times, not %d" % (
        len(firstio), conns)
    for lport, t_io in zip(lports, firstio):
        check_held_scenario([p for p in pkts if lport in (p["src_port"], p["dst_port"])],
                            port, t_io)
    log("worker %d threads seen: %s" % (spid, ", ".join(
        "%d=%s" % kv for kv in sorted(tasks.items()))))

    srv_o = who(spid, wn, ppid=lpid)
    del srv_o["tid"], srv_o["name"]  # the thread (and its name) is checked below
    owners = {port: srv_o}
    for lport, cli in zip(lports, clients):
        owners[lport] = who(cli.peer_pid, cn)
    exp = expect_both_sides(pkts, "lo", owners)
    m = match(exp, events)
    n_srv = sum(1 for e in exp if local_port(e) == port)
    syns = [e for e in exp if local_port(e) == port and e["SYN"]]
    assert len(syns) == 2 * conns, (  # the SYN it receives, the SYN-ACK it sends
        "scenario broken: %d server-side SYN/SYN-ACK events expected, want %d" % (
            len(syns), 2 * conns))
    log("%d server-side events expected (%d SYN/SYN-ACK) for worker %d (listener: %d)" % (
        n_srv, len(syns), spid, lpid))
    m.assert_exact("io_uring server events")

    # The thread of each server-side event: one of the server's own, with that thread's name.
    bad, tids = [], {}
    for e, a in m.pairs:
        if local_port(e) != port:
            continue
        tid = a["threadId"]
        tids[tid] = tids.get(tid, 0) + 1
        if tid not in tasks:
            tg = tgid_of(tid)
            why = "tid %d is not a thread of worker %d (tgid %s)" % (tid, spid, tg)
        elif a["processName"] != tasks[tid]:
            why = "processName %r, thread %d is %r" % (a["processName"], tid, tasks[tid])
        else:
            continue
        bad.append("%s -> %s" % (describe(e), why))
    log("server-side events by thread: %s" % ", ".join(
        "%d(%s)=%d" % (t, tasks.get(t, "?"), n) for t, n in sorted(tids.items())))
    assert not bad, "%d server-side events with a thread outside the worker:\n      %s" % (
        len(bad), "\n      ".join(bad[:12]))
    lst = [a for a in events if a["processId"] == lpid]
    assert not lst, "%d events of the listener's owner %d: %s" % (
        len(lst), lpid, [describe(a) for a in lst[:4]])
    other = [a for a in events if a["processId"] not in {spid} | {c.peer_pid for c in clients}]
    assert not other, "%d events of other processes: %s" % (
        len(other), [describe(a) for a in other[:4]])
