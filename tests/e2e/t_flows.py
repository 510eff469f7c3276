"""Flow events (net_flow_tcp_begin, net_flow_tcp_end) against tshark.

For each connection: one begin and one end on each side, with the initiator as src; the end's
summary compared with the packets tshark saw for that connection. The summary is the kernel's
own tcp_sock counters at TCP_CLOSE (README, Flow events), which set the tolerances below:
- bytes_sent is the payload the peer acknowledged (pktrace takes the SYN and an acked FIN out
  of tcp_sock.bytes_acked): exactly the payload tshark saw leave the socket;
- bytes_received is tcp_sock.bytes_received, which counts the peer's FIN when the full socket
  (not its timewait socket) received it: the payload tshark saw arrive, or one more;
- segs_sent / segs_received count the full socket's segments, SYN, FIN and pure ACKs included;
  those its timewait socket sends or receives after the close (the final ACK, the peer's
  FIN or last ACK) are not in them: tshark's count, or up to two fewer.
"""
import json
import os
import signal
import socket
import time

from e2elib import PYTHON, Proc, capture, log, pktrace, rand_name, rand_port, read_pcap, test

FLOW_PEER = r"""
import argparse, ctypes, os, socket, struct, sys

def say(*a):
    print(*a, flush=True)

p = argparse.ArgumentParser()
p.add_argument("mode")
p.add_argument("--name", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--send", type=int, default=100)
p.add_argument("--reply", type=int, default=3000)
p.add_argument("--rst", action="store_true")
a = p.parse_args()
ctypes.CDLL(None, use_errno=True).prctl(15, a.name.encode(), 0, 0, 0)  # PR_SET_NAME
say("PID", os.getpid())
if a.mode == "server":
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(20)
    s.bind(("127.0.0.1", a.port))
    s.listen(8)
    say("LISTENING")
    c, _ = s.accept()
    c.settimeout(20)
    got = 0
    while got < a.send:
        got += len(c.recv(65536))
    c.sendall(b"y" * a.reply)
    try:
        while c.recv(65536):   # until the client closes (FIN) or resets
            pass
    except ConnectionResetError:
        pass
    c.close()
    say("DONE")
else:
    c = socket.create_connection(("127.0.0.1", a.port), timeout=20)
    say("CONNECTED", c.getsockname()[1])
    c.sendall(b"x" * a.send)
    got = 0
    while got < a.reply:
        got += len(c.recv(65536))
    if a.rst:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    say("DONE")
"""


def flow_peer(w, mode, name, port, **opts):
    path = os.path.join(w, "flow_peer.py")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(FLOW_PEER)
    cmd = [PYTHON, path, mode, "--name", name, "--port", str(port)]
    for k, v in opts.items():
        if v is not False:
            cmd += ["--" + k] if v is True else ["--" + k, str(v)]
    proc = Proc(cmd, name="%s(%s)" % (mode, name))
    proc.peer_pid = int(proc.expect(r"^PID (\d+)").group(1))
    return proc


def ok(proc, timeout=20):
    assert proc.wait(timeout) == 0, "%s failed: %s" % (proc.name, proc.err.text())


def stop(pt):
    """SIGINT pktrace, check its exit status, return its JSON lines as dicts (pt.summary: the
    summary's first line)."""
    time.sleep(0.5)
    pt.proc.signal(signal.SIGINT)
    rc = pt.proc.p.wait(timeout=15)
    assert rc == 0, "pktrace exited %s: %s" % (rc, pt.stderr())
    with open(pt.events_path) as f:
        events = [json.loads(l) for l in f if l.strip()]
    m = [l for l in pt.stderr().splitlines() if "events written" in l]
    assert m and m[-1].startswith("pktrace: %d events written" % len(events)), (
        "summary does not count the %d events written: %s" % (len(events), pt.stderr()))
    pt.summary = m[-1]
    return events


def args_of(ev):
    return {a["name"]: a["value"] for a in ev["args"]}


def run_connection(w, extra_args, rst=False, send=100, reply=3000):
    """One connection between a server and a client of their own names, traced and captured;
    returns (events, tshark packets, server peer, client peer, client port, port)."""
    port = rand_port()
    srv_name, cli_name = rand_name("fsrv"), rand_name("fcli")
    with capture("lo", "tcp port %d" % port, os.path.join(w, "flows.pcap")) as cap, \
            pktrace(list(extra_args) + ["-s", "comm=%s,%s" % (srv_name, cli_name)], w) as pt:
        srv = flow_peer(w, "server", srv_name, port, send=send, reply=reply)
        try:
            srv.expect(r"^LISTENING")
            cli = flow_peer(w, "client", cli_name, port, send=send, reply=reply, rst=rst)
            try:
                cport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
                ok(cli)
                ok(srv)
            finally:
                cli.close()
        finally:
            srv.close()
        time.sleep(0.5)  # the active closer's socket reports its close after its last ACK
        events = stop(pt)
        pkts = read_pcap(cap.stop())
    run_connection.summary = pt.summary
    return events, pkts, srv, cli, cport, port


def check_flows(events, pkts, srv, cli, cport, port, reason_cli, reason_srv):
    flows = [e for e in events if e["eventName"].startswith("net_flow_tcp_")]
    mine = [e for e in flows if {args_of(e)["src_port"], args_of(e)["dst_port"]} == {cport, port}]
    assert len(mine) == len(flows) == 4, "want a begin and an end on each side, got %s" % (
        [(e["eventName"], e["processName"], args_of(e)) for e in flows])
    c2s = [p for p in pkts if p["src_port"] == cport and p["dst_port"] == port]
    s2c = [p for p in pkts if p["src_port"] == port and p["dst_port"] == cport]
    pay_c2s, pay_s2c = sum(p["payload"] for p in c2s), sum(p["payload"] for p in s2c)
    log("tshark: client->server %d packets, %d payload bytes; server->client %d, %d" % (
        len(c2s), pay_c2s, len(s2c), pay_s2c))
    sides = {
        # pid, direction, (sent packets, sent payload), (received ...), close reason
        "client": (cli.peer_pid, "outgoing", (len(c2s), pay_c2s), (len(s2c), pay_s2c),
                   reason_cli),
        "server": (srv.peer_pid, "incoming", (len(s2c), pay_s2c), (len(c2s), pay_c2s),
                   reason_srv),
    }
    for side, (pid, direction, sent, received, reason) in sides.items():
        evs = [e for e in mine if e["processId"] == pid]
        names = sorted(e["eventName"] for e in evs)
        assert names == ["net_flow_tcp_begin", "net_flow_tcp_end"], "%s: %s" % (side, names)
        for e in evs:
            a = args_of(e)
            assert a["conn_direction"] == direction, "%s: %s" % (side, a)
            # src is the initiator: the client
            assert (a["src"], a["src_port"], a["dst"], a["dst_port"]) == (
                "127.0.0.1", cport, "127.0.0.1", port), "%s: %s" % (side, a)
        begin = [e for e in evs if e["eventName"] == "net_flow_tcp_begin"][0]
        end = [e for e in evs if e["eventName"] == "net_flow_tcp_end"][0]
        assert begin["timestamp"] <= end["timestamp"]
        s = args_of(end)["summary"]
        log("%s summary: %s" % (side, s))
        assert s["begin_seen"] and 0 < s["duration_ns"] < 30e9, s
        assert s["bytes_sent"] == sent[1], "%s bytes_sent %d, tshark %d" % (
            side, s["bytes_sent"], sent[1])
        assert received[1] <= s["bytes_received"] <= received[1] + 1, (
            "%s bytes_received %d, tshark %d" % (side, s["bytes_received"], received[1]))
        assert sent[0] - 2 <= s["segs_sent"] <= sent[0], "%s segs_sent %d, tshark %d" % (
            side, s["segs_sent"], sent[0])
        assert received[0] - 2 <= s["segs_received"] <= received[0], (
            "%s segs_received %d, tshark %d" % (side, s["segs_received"], received[0]))
        assert s["data_segs_sent"] >= 1 and s["data_segs_received"] >= 1, s
        assert s["retrans_segs"] == 0 and s["retrans_bytes"] == 0, s
        assert s["srtt_us"] > 0 and s["min_rtt_us"] > 0, s
        assert s["close_reason"] == reason, "%s close_reason %s, want %s" % (
            side, s["close_reason"], reason)
    return flows


@test
def flows_fin(w):
    """-e flows: an active (client) and a passive (server) side of one connection, closed with
    FINs (the client first); no packet event at all."""
    events, pkts, srv, cli, cport, port = run_connection(w, ["-e", "flows"])
    assert all(e["eventName"] != "net_packet_tcp" for e in events), "packet events with -e flows"
    # the packet programs are not attached: not one packet seen
    assert " 0 packets seen " in run_connection.summary, run_connection.summary
    check_flows(events, pkts, srv, cli, cport, port, "fin", "fin")
    ends = {e["processId"]: args_of(e)["summary"] for e in events
            if e["eventName"] == "net_flow_tcp_end"}
    assert ends[cli.peer_pid]["closed_first"] == "local", ends
    assert ends[srv.peer_pid]["closed_first"] == "remote", ends


@test
def flows_rst(w):
    """-e flows: the client closes with SO_LINGER 0 (a RST): rst_sent on its side,
    rst_received on the server's."""
    events, pkts, srv, cli, cport, port = run_connection(w, ["-e", "flows"], rst=True)
    assert all(e["eventName"] != "net_packet_tcp" for e in events), "packet events with -e flows"
    assert any(p["RST"] for p in pkts if p["src_port"] == cport), "no RST from the client"
    check_flows(events, pkts, srv, cli, cport, port, "rst_sent", "rst_received")


@test
def flows_with_packets(w):
    """-e network_events: the flow events as with -e flows, and a packet event for each packet
    tshark saw (both sides' sockets on lo: two per packet)."""
    events, pkts, srv, cli, cport, port = run_connection(w, ["-e", "network_events"],
                                                         send=5000, reply=20000)
    check_flows(events, pkts, srv, cli, cport, port, "fin", "fin")
    packets = [e for e in events if e["eventName"] == "net_packet_tcp"]
    assert len(packets) == 2 * len(pkts), "%d packet events for %d packets on lo" % (
        len(packets), len(pkts))
