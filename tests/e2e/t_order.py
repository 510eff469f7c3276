"""Events in timestamp order: the reorder stage (--order-window) under busy traffic on both CPUs.

bench/tcpflood runs 8 concurrent loopback ping-pong connections (a client process and a server
process, so both CPUs submit records). Three pktraces trace the same traffic at once:

- the client alone, default window: no packet of it is ever held (it connects, it does not
  accept), so every event must be written in timestamp order and the summary must say 0 out of
  order;
- both sides, default window: the server's handshake packets are held until its process takes
  the connection, and later events wait behind them (--order-hold), so nothing is out of order;
- both sides, --order-window 0 (records as the ring buffer hands them over): the output's
  timestamps go back exactly as often as the summary's count says, and more than 0 times, since
  the server's held handshake packets come out behind the client's.

nginx_held_packets_in_order: nginx's workers take each connection ab opens some time after its
handshake (hundreds of us to ms under load), longer than a 100 us window: with --order-hold
every event is still written in timestamp order, with --order-hold 0 the handshakes come late
(the scenario's check), and both write every packet tcpdump saw, twice (client and server).

Every run's summary still adds up: W + L == P - O - N, nothing 'not written'.
"""
import os
import re
import signal
import subprocess

from e2elib import REPO, capture, log, pktrace, rand_port, read_pcap, test
from t_servers import AB, NGINX, nginx_workers, require, run_ab, server, start_nginx

SUMMARY_RX = (r"pktrace: (\d+) events written, (\d+) packets seen \((\d+) out of scope, "
              r"(\d+) without a known owner\), (\d+) events lost \((\d+) ring buffer full, "
              r"(\d+) decode errors, (\d+) malformed records, (\d+) not written\)")
WINDOW_US = 2000  # pktrace's default --order-window
ORDER_RX = r"events out of timestamp order: (\d+) \(later than the (\d+) us reorder window"
DIRECT_RX = r"(\d+) of (\d+) written without waiting \(known to be in order\)"


def tcpflood(w):
    path = os.path.join(w, "tcpflood")
    subprocess.run(["gcc", "-std=gnu11", "-O2", "-o", path,
                    os.path.join(REPO, "bench", "tcpflood.c")], check=True)
    return path


def late_events(events):
    newest = None
    for e in events:
        if newest is not None and e["timestamp"] < newest:
            yield e
        else:
            newest = e["timestamp"]


def inversions(events):
    """Events whose timestamp is behind one written before them, and by how much at most."""
    n, lag, newest = 0, 0, None
    for e in events:
        t = e["timestamp"]
        if newest is not None and t < newest:
            n += 1
            lag = max(lag, newest - t)
        else:
            newest = t
    return n, lag


def check_run(name, pt, events, window_us):
    err = pt.stderr()
    sm = re.search(SUMMARY_RX, err)
    assert sm, "%s: no summary line on stderr: %r" % (name, err[-400:])
    W, P, O, N, L, R, D, M, U = (int(x) for x in sm.groups())
    assert W == len(events), "%s: summary says %d written, output has %d" % (name, W, len(events))
    assert W + L == P - O - N, "%s: %d written + %d lost != %d seen - %d - %d" % (
        name, W, L, P, O, N)
    assert U == 0, "%s: %d events not written" % (name, U)
    om = re.search(ORDER_RX, err)
    assert om, "%s: no out-of-order line in the summary: %r" % (name, err[-600:])
    late, window = int(om.group(1)), int(om.group(2))
    assert window == window_us, "%s: summary says a %d us window, asked %d" % (
        name, window, window_us)
    inv, lag = inversions(events)
    log("%s: %d events, %d lost, %d behind an earlier one (by up to %.1f us); summary: %d" % (
        name, W, L, inv, lag / 1000, late))
    assert inv == late, "%s: %d events in the output are behind an earlier one, the summary " \
        "counts %d out of order" % (name, inv, late)
    return inv


def direct_share(name, pt):
    """The share of records the stage wrote at once: the ring reader knew them in order."""
    dm = re.search(DIRECT_RX, pt.stderr())
    assert dm, "%s: no count of records written without waiting: %r" % (name, pt.stderr()[-600:])
    direct, pushed = int(dm.group(1)), int(dm.group(2))
    log("%s: %d of %d records written without waiting" % (name, direct, pushed))
    return direct / max(pushed, 1)


@test
def order_busy_two_cpus(w):
    """8 busy loopback connections: timestamps non-decreasing, out-of-order count exact."""
    flood = tcpflood(w)
    port = rand_port()
    with pktrace(["-s", "comm=flood-cli"], w, tag="cli", out="o") as cli, \
            pktrace(["-s", "comm=flood-cli,flood-srv"], w, tag="both", out="o") as both, \
            pktrace(["-s", "comm=flood-cli,flood-srv", "--order-window", "0"], w, tag="raw",
                    out="o") as raw:
        out = subprocess.run([flood, "-c", "8", "-n", "1500", "-p", str(port)], check=True,
                             capture_output=True, text=True, timeout=60).stdout
        log("tcpflood: " + out.strip())
        assert "timed_out=0" in out, "tcpflood did not finish: %s" % out
        runs = [(n, pt, pt.stop()) for n, pt in (("cli", cli), ("both", both), ("raw", raw))]
    assert len(runs[0][2]) > 10000, "scenario broken: only %d client events" % len(runs[0][2])
    inv = {n: check_run(n, pt, ev, 0 if n == "raw" else WINDOW_US) for n, pt, ev in runs}
    assert inv["cli"] == 0, "client-only run: %d events out of timestamp order" % inv["cli"]
    # Records of the fast rings that no later reservation overtook are known to be in order
    # once the reader has passed them in every ring: almost all, in this traffic. The order
    # above holds whatever this share; a kernel side that marked every record overtaken, or a
    # reader that never trusted one, would leave it near 0. The share swings with how the three
    # readers and the 16 flood processes share 2 CPUs: 89-100 % in some 30 runs here (records still
    # being written when a pass reaches them wait), so the bar is well below that.
    share = direct_share("cli", runs[0][1])
    assert share > 0.75, "client-only run: only %.0f%% of records written without waiting" % (
        100 * share)
    assert inv["raw"] > 0, ("scenario broken: with no window nothing came out of order, so the "
                            "other runs show nothing")
    # The skew between CPUs (tens of us) is far inside the window: only held packets released
    # after it may come late, and the window takes most of them in.
    # The skew between CPUs (tens of us) is far inside the window, and the server's held packets
    # hold back what comes after them until the connection is taken.
    late = [(e["processName"], e["timestamp"]) for e in late_events(runs[1][2])][:5]
    assert inv["both"] == 0, "both sides: %d events out of order, the first %s" % (
        inv["both"], late)


@test
def nginx_held_packets_in_order(w):
    """nginx under ab: handshakes held past the window still come out in timestamp order."""
    require(NGINX, AB)
    port = rand_port()
    n = 1500
    window = ["--order-window", "100"]
    scope = ["-s", "comm=nginx,ab"]
    with server(start_nginx(w, port), signal.SIGQUIT, "nginx") as master:
        nginx_workers(w, master.pid, 2)
        with capture("lo", "tcp port %d" % port, os.path.join(w, "ab.pcap"),
                     buffer_kib=131072, snaplen=128) as cap, \
                pktrace(scope + window, w, tag="held", out="o") as held, \
                pktrace(scope + window + ["--order-hold", "0"], w, tag="nohold",
                        out="o") as nohold:
            run_ab(port, n, 8, "order")
            runs = [(t, pt, pt.stop()) for t, pt in (("held", held), ("nohold", nohold))]
            pkts = read_pcap(cap.stop())
    assert len(pkts) >= 8 * n, "scenario broken: tcpdump saw %d packets for %d requests" % (
        len(pkts), n)
    inv = {t: check_run(t, pt, ev, 100) for t, pt, ev in runs}
    for t, pt, ev in runs:
        mine = [e for e in ev if port in (e["src_port"], e["dst_port"])]
        assert len(mine) == 2 * len(pkts), "%s: %d events of port %d, tcpdump saw %d packets " \
            "(each is an event of ab's socket and one of nginx's)" % (t, len(mine), port,
                                                                    len(pkts))
        hm = re.search(r"(\d+) packets held until a process took the connection: (\d+) went to "
                       r"that process", pt.stderr())
        assert hm and int(hm.group(1)) >= 3 * n and hm.group(1) == hm.group(2), (
            "%s: want every held packet given to the worker that took it: %s" % (
                t, hm.group(0) if hm else pt.stderr()[-400:]))
    assert inv["nohold"] > 0, ("scenario broken: with --order-hold 0 no handshake came out after "
                               "the 100 us window, so the other run shows nothing")
    assert inv["held"] == 0, "--order-hold: %d events out of timestamp order (%d without it)" % (
        inv["held"], inv["nohold"])
