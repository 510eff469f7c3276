"""ICMP errors about a live TCP connection: no socket receives them, yet they are the
connection's, so pktrace gives them to its owner (README, UDP, ICMP and IP events).

A client holds an established connection; scapy (another process, out of scope) sends an ICMP
destination-unreachable (IPv4) or an ICMPv6 one quoting the client's own segment. The error's
ingress event must name the client, and its fields must be tshark's. A connect that an ICMP
error fails (curl through a router's 'prohibit' route) is its owner's too, before ESTABLISHED.
"""
import json
import os
import shutil
import subprocess

from e2elib import (PYTHON, Proc, capture, log, pktrace, rand_name, rand_port, routed_pair, run,
                    test)

CLIENT = r"""
import ctypes, socket, sys, time
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
fam = socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET
srv = socket.socket(fam)
srv.bind((sys.argv[2], int(sys.argv[3])))
srv.listen(1)
c = socket.socket(fam)
c.connect((sys.argv[2], int(sys.argv[3])))
print("CONNECTED", c.getsockname()[1], flush=True)
s, _ = srv.accept()
time.sleep(6)
"""

# The error quotes the client's segment: the client (local) is the quoted source.
SCAPY = r"""
import sys
from scapy.all import IP, IPv6, ICMP, ICMPv6DestUnreach, TCP, send, conf
conf.verb = 0
addr, cport, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if ":" in addr:
    pkt = IPv6(src=addr, dst=addr) / ICMPv6DestUnreach(code=3) / IPv6(src=addr, dst=addr) / \
        TCP(sport=cport, dport=sport, flags="PA", seq=1)
else:
    pkt = IP(src=addr, dst=addr) / ICMP(type=3, code=1) / IP(src=addr, dst=addr) / \
        TCP(sport=cport, dport=sport, flags="PA", seq=1)
send(pkt)
"""

NAMES = {4: ("net_packet_icmp", "DestinationUnreachable(Host)", "icmp", 3, 1),
         6: ("net_packet_icmpv6", "DestinationUnreachable(AddressUnreachable)", "icmpv6", 1, 3)}


def tshark_errors(pcap, proto):
    """(type, code, checksum) of each ICMP/ICMPv6 error tshark sees."""
    etype = 3 if proto == "icmp" else 1
    out = subprocess.run(["tshark", "-r", pcap, "-Y", "%s.type == %d" % (proto, etype), "-T", "fields", "-e", "%s.type" % proto, "-e", "%s.code" % proto,
                          "-e", "%s.checksum" % proto], capture_output=True, text=True, timeout=30)
    return [tuple(int(x, 0) for x in l.split("\t")) for l in out.stdout.splitlines() if l.strip()]


def error_about_tcp(w, addr, family):
    name, typecode, proto, etype, ecode = NAMES[family]
    comm = rand_name("ie")
    port = rand_port()
    flt = "icmp" if family == 4 else "icmp6"
    with capture("lo", flt, w + "/icmp.pcap") as cap, \
            pktrace(["-e", name, "-s", "comm=" + comm], w) as pt:
        with Proc([PYTHON, "-c", CLIENT, comm, addr, str(port)], name=comm) as cli:
            cport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
            subprocess.run([PYTHON, "-c", SCAPY, addr, str(cport), str(port)], check=True,
                           timeout=30)
            events = pt.stop()
            cli_pid = cli.pid
        cap.stop()
    wire = tshark_errors(w + "/icmp.pcap", proto)
    log("tshark: %r; pktrace: %s" % (wire, [json.dumps(e["proto"]) for e in events]))
    assert len(wire) == 1, "tshark saw %d ICMP errors, expected the one scapy sent" % len(wire)
    got = [e for e in events if e["eventName"] == name]
    assert len(got) == 1, "expected one %s event (the error's ingress), got %d: %r" % (
        name, len(got), got)
    e = got[0]
    icmp = e["proto"]
    assert e["processId"] == cli_pid and e["processName"] == comm, (
        "the error about %s's connection is attributed to %s/%s" % (
            comm, e["processId"], e["processName"]))
    assert e["direction"] == "ingress", e
    assert (etype, ecode, icmp["checksum"]) == wire[0], (icmp, wire[0])
    assert icmp["typeCode"] == typecode, icmp


@test
def icmp_error_about_tcp_v4(w):
    """An ICMP host-unreachable quoting an established connection's segment goes to its owner."""
    error_about_tcp(w, "127.0.0.1", 4)


@test
def icmp_error_about_tcp_v6(w):
    """An ICMPv6 address-unreachable quoting an established connection's segment goes to its
    owner."""
    error_about_tcp(w, "::1", 6)


@test
def icmp_error_fails_connect(w):
    """curl connects through a router whose route to the server is 'prohibit': the router's
    ICMP administratively-prohibited fails the connect before it is established, and goes to
    curl under -s comm=CURL (its type, code and checksum tshark's), as do curl's SYNs; and
    with net_packet_icmp alone selected (no TCP event, so no TCP packet is written), too; and
    with both selected and the expression 'icmp', which rejects the SYNs."""
    for selected, expr in (("net_packet_icmp,net_packet_tcp", []), ("net_packet_icmp", []),
                           ("net_packet_icmp,net_packet_tcp", ["icmp"])):
        comm = rand_name("curl")
        curl = os.path.join(w, comm)
        shutil.copy2("/usr/bin/curl", curl)
        pcap = os.path.join(w, "a-%d-%d.pcap" % (len(selected), len(expr)))
        port = rand_port()
        with routed_pair() as t:
            run(["ip", "-n", t["nr"], "route", "add", "prohibit", "10.77.3.1/32"])
            with capture(t["va"], "icmp or tcp", pcap, ns=t["na"]) as cap, \
                    pktrace(["-e", selected, "-s", "comm=" + comm] + expr, w) as pt:
                with Proc(["ip", "netns", "exec", t["na"], curl, "-s", "-m", "5",
                           "http://10.77.3.1:%d/" % port], name=comm) as c:
                    rc = c.wait(20)
                    pid = c.pid
                events = pt.stop()
                cap.stop()
        assert rc == 7, "curl exited %d, want 7 (could not connect)" % rc
        wire = tshark_errors(pcap, "icmp")
        syns = run(["tshark", "-r", pcap, "-Y", "tcp.flags.syn == 1", "-T", "fields", "-e",
                    "tcp.seq_raw"], timeout=30).stdout.split()
        assert len(wire) == 1 and wire[0][:2] == (3, 13) and syns, (
            "scenario: tshark saw errors %r and SYNs %r" % (wire, syns))
        got = [e for e in events if e["eventName"] == "net_packet_icmp"]
        selected += "".join(" " + x for x in expr)
        log("-e %s: tshark: %r; pktrace: %s" % (selected, wire, [
            (e["processName"], e["direction"], json.dumps(e["proto"])) for e in got]))
        assert len(got) == 1, "-e %s: want one ICMP event (the error's arrival), got %d: %r" % (
            selected, len(got), got)
        e = got[0]
        assert (e["processId"], e["processName"], e["direction"]) == (pid, comm, "ingress"), (
            "-e %s: the error failing %s's connect: pid %s, %s, %s" % (
                selected, comm, e["processId"], e["processName"], e["direction"]))
        assert (3, 13, e["proto"]["checksum"]) == wire[0], (e["proto"], wire[0])
        sent = [e for e in events if e["eventName"] == "net_packet_tcp"]
        want = syns if "tcp" in selected.split(",")[-1] and not expr else []
        assert [str(s["seq"]) for s in sent] == want and all(
            s["SYN"] and s["processId"] == pid and s["direction"] == "egress" for s in sent), (
            "curl's SYNs: tshark %r, pktrace %r" % (syns, sent))
