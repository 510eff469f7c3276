"""pcapng output (-w) and reading captures back (-r), against tshark, capinfos and tcpdump.

- every file pktrace writes opens in tshark with nothing on stderr, and capinfos counts as many
  packets as pktrace wrote events (one per packet with -e net_packet_tcp);
- every packet's comment names the process whose socket it is: a server and a client of our own
  and curl against a python http.server, each by its port and direction;
- a file read back with -r gives the live run's JSON, field for field (README: what a file
  cannot hold; none of it is in these events);
- one interface description block per (interface, network namespace): lo of a namespace of its
  own is a second interface with "netns N" as its description;
- tcpdump's own pcap reads back with empty process fields; broken files are an error, exit 1;
- --snaplen N keeps the bytes tcpdump -s keeps (headers whole; 0: 4096, the most).
"""
import contextlib
import json
import os
import re
import shutil
import struct
import signal
import subprocess
import time

from e2elib import (PKTRACE, PYTHON, Proc, capture, log, netns, pktrace, rand_name, rand_port,
                    read_pcap, run, run_pair, test)

HTTPD = r"""
import ctypes, http.server, sys
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), H)
print("LISTENING", flush=True)
s.serve_forever()
"""

COMMENT_KEYS = ("pid", "tid", "ppid", "uid", "comm", "container_id", "hostname", "cgroup_id",
                "sk_proto", "events")


def tshark_clean(path):
    """tshark reads the whole file with no warning or error; returns its frames' fields."""
    fields = ["frame.number", "frame.interface_name", "frame.interface_description",
              "frame.packet_flags_direction", "frame.len", "frame.cap_len", "tcp.srcport",
              "tcp.dstport", "frame.comment"]
    cmd = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=\t"]
    for f in fields:
        cmd += ["-e", f]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    err = [l for l in r.stderr.splitlines() if not l.startswith("Running as user")]
    assert r.returncode == 0 and not err, "tshark -r %s: exit %d, stderr: %s" % (
        path, r.returncode, "\n".join(err))
    frames = []
    for line in r.stdout.splitlines():
        f = dict(zip(fields, line.split("\t")))
        f["comment"] = parse_comment(f.get("frame.comment", ""))
        frames.append(f)
    return frames


def parse_comment(text):
    """tshark prints the comment's newlines as \\n."""
    d = {}
    for line in text.split("\\n"):
        k, sep, v = line.partition(": ")
        if sep:
            d[k] = v
    return d


def capinfos_count(path):
    r = run(["capinfos", "-c", "-M", path], timeout=30)
    m = re.search(r"Number of packets:\s+(\d+)", r.stdout)
    assert m, "capinfos printed no packet count: %s" % r.stdout
    return int(m.group(1))


def read_back(path, extra=(), expect_rc=0):
    r = subprocess.run([PKTRACE, "-r", path, "-F", "json"] + list(extra), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == expect_rc, "pktrace -r %s: exit %d (wanted %d): %s" % (
        path, r.returncode, expect_rc, r.stderr)
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()], r.stderr


def key(ev):
    a = {x["name"]: x["value"] for x in ev["args"]}["metadata"]
    return (ev["timestamp"], ev["eventName"], a["src_port"], a["dst_port"], a["direction"])


def same_json(live, back):
    live = sorted(live, key=key)
    back = sorted(back, key=key)
    assert len(live) == len(back), "live run: %d events, read back: %d" % (len(live), len(back))
    diffs = [(a, b) for a, b in zip(live, back) if a != b]
    assert not diffs, "%d of %d events differ read back; first:\n      live %s\n      back %s" % (
        len(diffs), len(live), json.dumps(diffs[0][0]), json.dumps(diffs[0][1]))


@test
def pcapng_processes(w):
    """-w with -F json -o: tshark opens the file cleanly, capinfos counts every event's packet,
    each comment names its process (own server and client, curl against http.server), and -r
    gives back the live JSON"""
    srv, cli, web = rand_name("wsrv"), rand_name("wcli"), rand_name("wweb")
    port, web_port = rand_port(), rand_port()
    # curl under a name of its own, so that nobody else's curl on this host is in scope.
    curl_name = rand_name("curl")
    curl_bin = os.path.join(w, curl_name)
    shutil.copy2("/usr/bin/curl", curl_bin)
    path = os.path.join(w, "live.pcapng")
    json_path = os.path.join(w, "live.jsonl")
    args = ["-w", path, "-o", json_path, "-e", "net_packet_tcp,net_packet_ipv4",
            "-s", "comm=%s,%s,%s,%s" % (srv, cli, web, curl_name)]
    with pktrace(args, w, fmt="json") as pt:
        httpd = Proc([PYTHON, "-c", HTTPD, web, str(web_port)], name="httpd")
        httpd.expect(r"^LISTENING")
        s, c = run_pair(srv, cli, port)
        curl = Proc([curl_bin, "-s", "-o", "/dev/null", "http://127.0.0.1:%d/" % web_port],
                    name="curl")
        assert curl.wait(20) == 0, "curl failed: %s" % curl.err.text()
        time.sleep(0.5)
        pt.proc.signal(2)
        assert pt.proc.wait(15) == 0, "pktrace failed: %s" % pt.stderr()
        httpd.close()
    with open(json_path) as f:
        live = [json.loads(l) for l in f if l.strip()]
    tcp = [e for e in live if e["eventName"] == "net_packet_tcp"]
    log("live: %d events, %d TCP packets; %s" % (len(live), len(tcp), " | ".join(
        l for l in pt.stderr().splitlines() if "pcapng" in l)))
    assert tcp, "no events at all"
    frames = tshark_clean(path)
    assert capinfos_count(path) == len(frames) == len(tcp), (
        "capinfos %d packets, tshark %d frames, %d TCP packet events" % (
            capinfos_count(path), len(frames), len(tcp)))
    m = re.search(r"pcapng .*: (\d+) packets in the file, 0 that did not", pt.stderr())
    assert m and int(m.group(1)) == len(tcp), "summary: %s" % pt.stderr()

    # Who owns each local port: our server, our client, the web server and curl.
    owners = {port: (srv, s["pid"]), c["port"]: (cli, c["pid"]), web_port: (web, httpd.pid)}
    seen = set()
    for f in frames:
        cm = f["comment"]
        assert tuple(cm) == COMMENT_KEYS, "frame %s: comment keys %s" % (
            f["frame.number"], list(cm))
        out = f["frame.packet_flags_direction"] == "0x00000002"
        assert f["frame.packet_flags_direction"] in ("0x00000001", "0x00000002"), f
        sport, dport = int(f["tcp.srcport"]), int(f["tcp.dstport"])
        local, remote = (sport, dport) if out else (dport, sport)
        want = owners.get(local)
        if want is None:
            assert remote == web_port, "frame %s: local port %d of no process of ours" % (
                f["frame.number"], local)
            want = (curl_name, curl.pid)
        got = (cm["comm"], int(cm["pid"]))
        assert got == want, "frame %s (%s %d > %d): comment names %s, wanted %s" % (
            f["frame.number"], "out" if out else "in", sport, dport, got, want)
        assert f["frame.interface_name"] == "lo" and not f["frame.interface_description"], f
        assert int(f["frame.len"]) >= int(f["frame.cap_len"]), f
        assert cm["events"] == "net_packet_tcp,net_packet_ipv4", cm
        seen.add(want[0])
    assert seen == {srv, cli, web, curl_name}, "processes seen in comments: %s" % seen

    back, err = read_back(path, ["-e", "net_packet_tcp,net_packet_ipv4"])
    assert "0 without pktrace's process comment" in err, err
    same_json(live, back)
    # -s applies to a file's processes as it does live.
    only, _ = read_back(path, ["-e", "net_packet_tcp,net_packet_ipv4", "-s", "comm=" + srv])
    same_json([e for e in live if e["processName"] == srv], only)
    # A filter expression applies to a file's packets as it does live.
    web_only, err = read_back(path, ["-e", "net_packet_tcp,net_packet_ipv4",
                                     "tcp port %d" % web_port])
    want = [e for e in live if web_port in (
        {x["name"]: x["value"] for x in e["args"]}["metadata"]["src_port"],
        {x["name"]: x["value"] for x in e["args"]}["metadata"]["dst_port"])]
    assert want and len(want) < len(live), "scenario: %d of %d events on port %d" % (
        len(want), len(live), web_port)
    same_json(want, web_only)
    log("%d frames, every comment right; -r gave the same %d events" % (len(frames), len(back)))


@test
def pcapng_netns(w):
    """One IDB per (interface, namespace): lo here and lo of another namespace (described as
    'netns N'); tshark and -r (which works around libpcap 1.10's second-IDB check) read both"""
    ns = "pkpng%s" % rand_name("")[-4:]
    port_host, port_ns = rand_port(), rand_port()
    path = os.path.join(w, "ns.pcapng")
    with netns(ns):
        inode = os.stat("/run/netns/%s" % ns).st_ino
        names = [rand_name("nsrv"), rand_name("ncli"), rand_name("hsrv"), rand_name("hcli")]
        with pktrace(["-w", path, "-s", "comm=" + ",".join(names)], w, fmt=None) as pt:
            run_pair(names[0], names[1], port_ns, ns=ns)
            run_pair(names[2], names[3], port_host)
            pt.proc.signal(2)
            assert pt.proc.wait(15) == 0, "pktrace failed: %s" % pt.stderr()
    frames = tshark_clean(path)
    descs = {}
    for f in frames:
        descs.setdefault(f["frame.interface_description"], set()).add(f["frame.comment"] and
                                                                        f["comment"]["comm"])
    assert set(descs) == {"", "netns %d" % inode}, "interface descriptions: %s" % descs
    assert descs["netns %d" % inode] == {names[0], names[1]}, descs
    assert descs[""] == {names[2], names[3]}, descs
    r = run(["tshark", "-r", path, "-T", "fields", "-e", "frame.interface_id"], timeout=30)
    assert set(r.stdout.split()) == {"0", "1"}, "interface ids: %s" % set(r.stdout.split())
    back, err = read_back(path)
    assert len(back) == len(frames), "-r: %d events of %d frames: %s" % (
        len(back), len(frames), err)
    assert {e["processName"] for e in back} == set(names), err


@test
def pcapng_stdout(w):
    """-w - writes pcapng to standard output that tshark reads from a pipe; with -F json and no
    -o it is refused (exit 2); -w /dev/full stops with a message (exit 1); -r - reads a file
    from standard input"""
    r = subprocess.run([PKTRACE, "-w", "-", "-F", "json"], capture_output=True, text=True)
    assert r.returncode == 2 and "-w -" in r.stderr, (r.returncode, r.stderr)
    # A full disk stops the run at the first write (the section header), with a message.
    r = subprocess.run([PKTRACE, "-w", "/dev/full"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "cannot write packets to /dev/full: No space left on device" \
        in r.stderr, (r.returncode, r.stderr)
    srv, cli, port = rand_name("psrv"), rand_name("pcli"), rand_port()
    path = os.path.join(w, "stdout.pcapng")
    with open(path, "wb") as out:
        pt = Proc([PKTRACE, "-w", "-", "-s", "comm=%s,%s" % (srv, cli)], stdout=out,
                  name="pktrace")
        try:
            pt.expect_err(r"pktrace: ready", timeout=30)
            run_pair(srv, cli, port)
            time.sleep(0.3)
            pt.signal(2)
            assert pt.wait(15) == 0, pt.err.text()
        finally:
            pt.close()
    frames = tshark_clean(path)
    assert frames and capinfos_count(path) == len(frames)
    with open(path, "rb") as f:
        r = subprocess.run([PKTRACE, "-r", "-", "-F", "json"], stdin=f, capture_output=True,
                           text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    back = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(back) == len(frames) and {e["processName"] for e in back} == {srv, cli}, r.stderr


@test
def pcapng_read_tcpdump(w):
    """A pcap tcpdump wrote (Ethernet on lo, and Linux cooked on 'any') reads back with -r: one
    event per TCP packet, the fields tshark shows, empty process fields"""
    srv, cli, port = rand_name("tsrv"), rand_name("tcli"), rand_port()
    lo_path, any_path = os.path.join(w, "lo.pcap"), os.path.join(w, "any.pcap")
    with capture("lo", "tcp port %d" % port, lo_path) as cap_lo, \
            capture("any", "tcp port %d" % port, any_path) as cap_any:
        run_pair(srv, cli, port)
        cap_lo.stop()
        cap_any.stop()
    for path in (lo_path, any_path):
        pkts = read_pcap(path)
        back, err = read_back(path)
        assert len(back) == len(pkts) > 0, "%s: %d events for %d packets: %s" % (
            path, len(back), len(pkts), err)
        assert "%d without pktrace's process comment" % len(pkts) in err, err
        for e, p in zip(back, pkts):
            a = {x["name"]: x["value"] for x in e["args"]}
            m, t = a["metadata"], a["proto_tcp"]
            assert (m["src_port"], m["dst_port"], t["seq"], t["ack"], t["checksum"]) == (
                p["src_port"], p["dst_port"], p["seq"], p["ack"], p["checksum"]), (e, p)
            assert m["packet_len"] == p["packet_len"], (m, p)
            assert (e["processId"], e["processName"], e["hostName"]) == (0, "", ""), e
        if path == any_path:
            # The cooked header's packet type (4: outgoing) is the direction.
            r = run(["tshark", "-r", path, "-T", "fields", "-e", "sll.pkttype"], timeout=30)
            want = ["egress" if t == "4" else "ingress" for t in r.stdout.split()]
            dirs = [({x["name"]: x["value"] for x in e["args"]})["metadata"]["direction"]
                    for e in back]
            assert dirs == want, "cooked capture directions: %s, tshark: %s" % (dirs, want)
        log("%s: %d packets read back" % (os.path.basename(path), len(back)))


def pair_file(w, name, tag, client_opts=None):
    """A pcapng file of one client-server exchange (pktrace -w, the pair in scope): its path."""
    srv, cli, port = rand_name(tag + "srv"), rand_name(tag + "cli"), rand_port()
    path = os.path.join(w, name)
    with pktrace(["-w", path, "-s", "comm=%s,%s" % (srv, cli)], w, fmt=None) as pt:
        run_pair(srv, cli, port, client_opts=client_opts)
        pt.proc.signal(2)
        assert pt.proc.wait(15) == 0, pt.stderr()
    return path


@test
def pcapng_malformed(w):
    """A file that is not a capture, one cut short and one with a broken block: a clear error,
    a count of what was read, exit 1, never a crash"""
    path = pair_file(w, "m.pcapng", "m")
    with open(path, "rb") as f:
        data = f.read()
    n = len(tshark_clean(path))
    # The fourth block (SHB, IDB, two packets): its length set far past the file's end.
    off = 0
    for _ in range(3):
        off += struct.unpack_from("<I", data, off + 4)[0]
    broken = data[:off + 4] + struct.pack("<I", 0x00fffff0) + data[off + 8:]
    cases = {"text": b"hello, not a capture\n" * 4, "cut": data[:len(data) - 7],
             "broken": broken}
    for name, blob in cases.items():
        p = os.path.join(w, name)
        with open(p, "wb") as f:
            f.write(blob)
        r = subprocess.run([PKTRACE, "-r", p], capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, "%s: exit %d: %s" % (name, r.returncode, r.stderr)
        assert re.search(r"pktrace: -r '.*': ", r.stderr), "%s: %s" % (name, r.stderr)
        if name == "broken":
            assert "stopped after 1 packets" in r.stderr, r.stderr
        if name == "cut":
            assert "stopped after %d packets" % (n - 1) in r.stderr, r.stderr
            assert "%d events written from %d packets" % (n - 1, n - 1) in r.stderr, r.stderr
        log("%s: %s" % (name, r.stderr.strip().splitlines()[-1]))


def file_packets(path):
    """(cap_len, orig_len, bytes) of each packet of a pcap or pcapng file, in order."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        off = 0
        while off + 12 <= len(data):
            btype, blen = struct.unpack_from("<II", data, off)
            if btype == 6:  # enhanced packet block
                cap, orig = struct.unpack_from("<II", data, off + 20)
                out.append((cap, orig, data[off + 28:off + 28 + cap]))
            off += blen
        return out
    magic = struct.unpack_from("<I", data, 0)[0]
    assert magic in (0xa1b2c3d4, 0xa1b23c4d), "%s: not a little-endian pcap" % path
    off = 24
    while off + 16 <= len(data):
        cap, orig = struct.unpack_from("<II", data, off + 8)
        out.append((cap, orig, data[off + 16:off + 16 + cap]))
        off += 16 + cap
    return out


def ip_tcp_key(b):
    """An IPv4 TCP packet's identity on loopback, where each packet passes two hooks: IP id,
    ports, seq, ack, flags; and its header length (IP + TCP)."""
    ihl = (b[0] & 15) * 4
    ip_id = struct.unpack_from(">H", b, 4)[0]
    sport, dport, seq, ack = struct.unpack_from(">HHII", b, ihl)
    doff = (b[ihl + 12] >> 4) * 4
    return (ip_id, sport, dport, seq, ack, b[ihl + 13]), ihl + doff


@test
def pcapng_snaplen(w):
    """--snaplen N keeps N bytes of each packet, headers included, as tcpdump -s keeps them: an
    HTTP GET (request line, a 10 000-byte file) traced by four runs at once: --snaplen 200
    against tcpdump -s 214 on lo (its 14-byte Ethernet header counts), --snaplen 0 (4096, the
    most) and no --snaplen (headers only) against tcpdump's whole packets, --snaplen 30 (under
    the headers: kept whole); tshark reads every file without a warning"""
    web = rand_name("sweb")
    curl_name = rand_name("scurl")
    curl_bin = os.path.join(w, curl_name)
    shutil.copy2("/usr/bin/curl", curl_bin)
    docroot = os.path.join(w, "www")
    os.mkdir(docroot)
    with open(os.path.join(docroot, "big"), "wb") as f:
        f.write((bytes(range(256)) * 40)[:10000])
    port = rand_port()
    scope = "comm=%s,%s" % (web, curl_name)
    runs = {"200": ["--snaplen", "200"], "0": ["--snaplen", "0"], "30": ["--snaplen", "30"],
            "none": []}
    paths = {k: os.path.join(w, "snap-%s.pcapng" % k) for k in runs}
    cut_path, whole_path = os.path.join(w, "s214.pcap"), os.path.join(w, "whole.pcap")
    with contextlib.ExitStack() as stack:
        pts = {k: stack.enter_context(pktrace(["-w", paths[k], "-s", scope] + a, w, fmt=None,
                                              tag="pktrace-%s" % k))
               for k, a in runs.items()}
        cut = stack.enter_context(capture("lo", "tcp port %d" % port, cut_path, snaplen=214))
        whole = stack.enter_context(capture("lo", "tcp port %d" % port, whole_path))
        httpd = Proc([PYTHON, "-c", "import os, sys; os.chdir(sys.argv[3]); exec(sys.argv[4])",
                      web, str(port), docroot, HTTPD],
                     name="httpd")
        httpd.expect(r"^LISTENING")
        for url in ("/", "/big"):
            curl = Proc([curl_bin, "-s", "-o", "/dev/null",
                         "http://127.0.0.1:%d%s" % (port, url)], name="curl")
            assert curl.wait(20) == 0, "curl failed: %s" % curl.err.text()
        time.sleep(0.5)
        cut.stop()
        whole.stop()
        for k, pt in pts.items():
            pt.proc.signal(2)
            assert pt.proc.wait(15) == 0, "pktrace %s failed: %s" % (k, pt.stderr())
        httpd.close()

    def by_key(path, skip):
        d = {}
        for cap, orig, b in file_packets(path):
            key, _ = ip_tcp_key(b[skip:])
            d[key] = (cap - skip, orig - skip, b[skip:])
        return d
    cut, whole = by_key(cut_path, 14), by_key(whole_path, 14)
    assert any(o > 4096 for _, o, _ in whole.values()), "no packet over 4096 bytes"
    for k, path in paths.items():
        frames = tshark_clean(path)
        pkts = file_packets(path)
        assert len(frames) == len(pkts) > 0, (k, len(frames), len(pkts))
        data_pkts = 0
        for i, (cap, orig, b) in enumerate(pkts):
            key, hdr = ip_tcp_key(b)
            assert key in whole, "%s: frame %d %s not in tcpdump's capture" % (k, i + 1, key)
            wcap, wlen, wb = whole[key]
            assert orig == wlen, "%s: frame %d: frame.len %d, tcpdump %d" % (k, i + 1, orig, wlen)
            if k == "none" or k == "30":
                want = wb[:hdr]
            elif k == "200":
                want = cut[key][2]
                assert len(want) == min(200, wlen), (len(want), wlen)
            else:
                want = wb[:4096]
            assert cap == len(b) == len(want) and b == want, (
                "%s: frame %d %s: %d bytes kept, want %d (headers %d, packet %d); first "
                "difference at %s" % (k, i + 1, key, cap, len(want), hdr, orig, next(
                    (j for j in range(min(len(b), len(want))) if b[j] != want[j]), "the end")))
            data_pkts += orig > hdr
        assert data_pkts >= 4, "%s: only %d packets with payload" % (k, data_pkts)
        keys = {ip_tcp_key(b)[0] for _, _, b in pkts}
        assert keys == set(whole), "%s: packets tcpdump saw and pktrace did not: %s" % (
            k, set(whole) - keys)
        log("--snaplen %s: %d frames, %d with payload, bytes as tcpdump's" % (
            k, len(pkts), data_pkts))
    r = run(["tshark", "-r", paths["200"], "-Y", "http.request", "-T", "fields", "-e",
             "http.request.line", "-e", "http.request.method"], timeout=30)
    assert "GET" in r.stdout, "tshark shows no HTTP request in the --snaplen 200 file: %r" % (
        r.stdout)


def pcapng_blocks(data):
    """(offset, end, is_packet) of each block of a little-endian pcapng file."""
    blocks, off = [], 0
    while off < len(data):
        btype, blen = struct.unpack_from("<II", data, off)
        blocks.append((off, off + blen, btype in (3, 6)))
        off += blen
    return blocks


@test
def pcapng_read_streams(w):
    """-r from a FIFO, a pipe (-r -) and bash's <(...): the regular file's JSON, read once as
    it comes. A writer that pauses gets the events of what it sent before it pauses; -c N ends
    an endless pipe; SIGINT while the read waits stops with a summary (SIGUSR1: counts so far)"""
    path = pair_file(w, "s.pcapng", "p", client_opts={"rounds": 30})
    want, err = read_back(path)
    n = len(tshark_clean(path))
    assert len(want) == n > 60 and "0 without pktrace's process comment" in err, (
        "regular file: %d events for %d frames: %s" % (len(want), n, err))
    with open(path, "rb") as f:
        data = f.read()
    blocks = pcapng_blocks(data)
    # Cut after the 20th packet block: what a writer sent before it pauses.
    cut = [end for _, end, pkt in blocks if pkt][19]

    def start(src, extra=(), stdin=subprocess.DEVNULL):
        out = os.path.join(w, "r%d.jsonl" % len(os.listdir(w)))
        p = Proc([PKTRACE, "-r", src, "-F", "json", "-o", out] + list(extra), stdin=stdin,
                 name="pktrace-r")
        return p, out

    def events_in(out):
        try:
            with open(out) as f:
                return [json.loads(l) for l in f if l.endswith("\n")]
        except FileNotFoundError:
            return []

    def wait_events(out, k, proc, what):
        deadline = time.monotonic() + 10
        while len(events_in(out)) < k and time.monotonic() < deadline:
            time.sleep(0.05)
        got = len(events_in(out))
        assert got == k, "%s: %d events written while the writer paused, want %d; stderr: %s" % (
            what, got, k, proc.err.tail())

    # A FIFO, written in two parts: the first part's 20 events come out during the pause.
    fifo = os.path.join(w, "fifo")
    os.mkfifo(fifo)
    p, out = start(fifo)
    with open(fifo, "wb") as f:
        f.write(data[:cut])
        f.flush()
        wait_events(out, 20, p, "FIFO")
        f.write(data[cut:])
    assert p.wait(15) == 0, p.err.text()
    same_json(want, events_in(out))
    log("FIFO: 20 events during the pause, then all %d, as the file gives" % len(want))

    # -r - from a pipe, the same; then SIGUSR1 and SIGINT while it waits for more.
    p, out = start("-", stdin=subprocess.PIPE)
    p.p.stdin.write(data[:cut])
    p.p.stdin.flush()
    wait_events(out, 20, p, "-r -")
    p.signal(signal.SIGUSR1)
    p.expect_err(r"pktrace: so far, 20 events written from 20 packets read", timeout=5)
    p.signal(signal.SIGUSR2)
    time.sleep(0.2)
    assert p.alive(), "SIGUSR2 ended pktrace -r: %s" % p.err.text()
    p.signal(signal.SIGINT)
    assert p.wait(5) == 0, p.err.text()
    err = p.err.text()
    assert "stopped by signal 2" in err and "20 events written from 20 packets read" in err, err
    assert len(events_in(out)) == 20, err
    p.p.stdin.close()

    # -c 5 on a pipe that never ends: five events, exit 0, at once.
    p, out = start("-", ["-c", "5"], stdin=subprocess.PIPE)
    p.p.stdin.write(data[:cut])
    p.p.stdin.flush()
    assert p.wait(5) == 0, p.err.text()
    assert len(events_in(out)) == 5, "-c 5 from a pipe: %d events; %s" % (
        len(events_in(out)), p.err.text())
    p.p.stdin.close()

    # A FIFO nobody writes yet: SIGINT while the open waits is a clean stop.
    empty_fifo = os.path.join(w, "fifo2")
    os.mkfifo(empty_fifo)
    p, out = start(empty_fifo)
    time.sleep(0.5)
    p.signal(signal.SIGINT)
    assert p.wait(5) == 0 and "before the input began" in p.err.text(), p.err.text()

    # A capture with no packet (a section header only, as pktrace -w writes it at first): empty.
    empty = os.path.join(w, "empty.pcapng")
    with pktrace(["-w", empty, "-s", "comm=" + rand_name("none")], w, fmt=None) as pt:
        pt.proc.signal(2)
        assert pt.proc.wait(15) == 0, pt.stderr()
    back, err = read_back(empty)
    assert back == [] and "0 events written from 0 packets read" in err, err

    # bash's process substitution: a /dev/fd path to a pipe.
    r = subprocess.run(["bash", "-c", '"$0" -r <(cat "$1") -F json', PKTRACE, path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    same_json(want, [json.loads(l) for l in r.stdout.splitlines() if l.strip()])
    # An output that fails: every event counted as not written.
    r = subprocess.run([PKTRACE, "-r", path, "-F", "json", "-o", "/dev/full"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "events lost, not written (the output failed): %d" % len(
        want) in r.stderr, r.stderr
    r = subprocess.run([PKTRACE, "-r", path, "-F", "json", "-c", "5", "-o", "/dev/full"],
                       capture_output=True, text=True, timeout=60)
    assert "events lost, not written (the output failed): 5\n" in r.stderr, r.stderr
    # The text output failing, the pcapng one's packets are in its file and in the summary.
    beside = os.path.join(w, "beside_full.pcapng")
    r = subprocess.run([PKTRACE, "-r", path, "-F", "json", "-o", "/dev/full", "-w", beside],
                       capture_output=True, text=True, timeout=60)
    n_in = capinfos_count(beside)
    assert r.returncode == 1 and n_in == len(want) and (
        "%d packets in the file, 0 that did not" % n_in) in r.stderr, (n_in, r.stderr)
    log("-r -: 20 events during the pause, SIGUSR1 counts, SIGINT stops; -c 5 ends an endless "
        "pipe; <(cat) gives all %d" % len(want))


@test
def pcapng_file_conflicts(w):
    """An output that is the file -r reads (by any spelling, or a link), -w and -o on one file,
    and options -r cannot honour: exit 2 with one line, the input untouched, nothing written"""
    path = pair_file(w, "in.pcapng", "f")
    with open(path, "rb") as f:
        before = f.read()
    link = os.path.join(w, "link.pcapng")
    os.symlink(path, link)
    fresh = os.path.join(w, "new.out")
    cases = [
        (["-r", path, "-w", path], "is also an output"),
        (["-r", path, "-o", os.path.join(w, ".", "in.pcapng")], "is also an output"),
        (["-r", link, "-w", path], "is also an output"),
        (["-r", path, "-F", "json", "-o", fresh, "-w", os.path.join(w, "..",
                                                                    os.path.basename(w),
                                                                    "new.out")],
         "name the same file"),
        (["-r", path, "-Q", "in"], "-Q applies to live capture, not to -r"),
        (["-r", path, "-i", "lo"], "-i applies to live capture"),
        (["-r", path, "--once"], "--once applies to live capture"),
        (["-r", path, "-B", "1024"], "-B applies to live capture"),
        (["-r", path, "-Z", "root"], "-Z applies to live capture"),
        (["-r", path, "-c", "9007199254740993M"], "-c '9007199254740993M'"),
        (["--hold-bytes", "18014398509481988k"], "--hold-bytes '18014398509481988k': want"),
        (["-r", path, "--order-window", "10"], "--order-window applies to live capture"),
        (["-r", path, "--hold-time", "1"], "--hold-time applies to live capture"),
    ]
    # The same file through the standard streams: `-r - < F -w F`, `-r F -w - >> F`.
    with open(path, "rb") as f:
        r = subprocess.run([PKTRACE, "-r", "-", "-w", path], stdin=f, capture_output=True,
                           text=True, timeout=30)
    assert r.returncode == 2 and "is also an output" in r.stderr, r.stderr
    with open(path, "ab") as f:
        r = subprocess.run([PKTRACE, "-r", path, "-w", "-"], stdout=f, stderr=subprocess.PIPE,
                           text=True, timeout=30)
    assert r.returncode == 2 and "is also an output" in r.stderr, r.stderr
    for args, want in cases:
        r = subprocess.run([PKTRACE] + args, capture_output=True, text=True, timeout=30)
        lines = r.stderr.splitlines()
        assert r.returncode == 2 and len(lines) == 1 and want in lines[0] and not r.stdout, (
            "pktrace %s: exit %d, stderr %r" % (" ".join(args), r.returncode, r.stderr))
        log("%s: %s" % (" ".join(a.replace(w, "W") for a in args), lines[0]))
    with open(path, "rb") as f:
        assert f.read() == before, "the input file changed"
    assert not os.path.exists(fresh), "an output was created although the options were refused"
    # Two different files, and /dev/null twice, are fine.
    r = subprocess.run([PKTRACE, "-r", path, "-o", "/dev/null", "-w", "/dev/null"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


FRAMES = r"""
import sys
from scapy.all import Ether, Dot1AD, IP, TCP, Raw, wrpcap
from scapy.layers.l2 import Dot1Q as Q
e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
seg = IP(src="10.1.0.1", dst="10.1.0.2") / TCP(sport=40001, dport=80, flags="SA", seq=7, ack=9)
frames = [
    e / seg,                                     # 54 bytes, padded to 60 below
    e / Dot1AD(vlan=10) / Q(vlan=20) / Q(vlan=30) / seg / Raw(b"x" * 8),  # three tags
    Ether(bytes(e / Q(vlan=40) / seg / Raw(b"y" * 3)).replace(b"\x81\x00", b"\x91\x00", 1)),
]
raw = [bytes(f) for f in frames]
raw[0] = raw[0] + b"\0" * (60 - len(raw[0]))
wrpcap(sys.argv[1], [Ether(r) for r in raw])
"""


BAD_OFFSETS = r"""
import sys
from scapy.all import Ether, IP, TCP, wrpcap
e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
ip = IP(src="10.1.0.1", dst="10.1.0.2")
past_end = bytes(e / ip / TCP(sport=40002, dport=80, flags="S", dataofs=15))
# data offset 12: 28 bytes the IP packet does not have, but the frame's padding does
padded = bytes(e / ip / TCP(sport=40003, dport=80, flags="S", dataofs=12))
padded += bytes([2, 4, 5, 180, 0, 0])
wrpcap(sys.argv[1], [Ether(past_end), Ether(padded)])
"""


@test
def pcapng_read_link_layers(w):
    """An Ethernet file (scapy) read with -r: a segment in a frame padded to 60 bytes has the IP
    length as packet_len (tshark's ip.len), three VLAN tags and a 0x9100 tag are stepped over;
    ports and seq as tshark reads them"""
    path = os.path.join(w, "eth.pcap")
    run([PYTHON, "-c", FRAMES, path], timeout=60)
    r = run(["tshark", "-r", path, "-T", "fields", "-e", "frame.len", "-e", "ip.len", "-e",
             "tcp.srcport", "-e", "tcp.seq_raw"], timeout=30)
    wire = [l.split("\t") for l in r.stdout.splitlines()]
    back, err = read_back(path)
    got = []
    for e in back:
        a = {x["name"]: x["value"] for x in e["args"]}
        got.append((a["metadata"]["packet_len"], a["metadata"]["src_port"],
                    a["proto_tcp"]["seq"]))
    want = [(int(ip_len), int(port), int(seq)) for _, ip_len, port, seq in wire]
    assert len(wire) == 3 and wire[0][0] == "60" and got == want, (
        "tshark (frame len, ip.len, port, seq) %s; pktrace %s; %s" % (wire, got, err))
    # Written back as pcapng (raw IP): without the padding, so it reads back the same.
    rt = os.path.join(w, "rt.pcapng")
    run([PKTRACE, "-r", path, "-w", rt], timeout=30)
    again, err = read_back(rt)
    assert [({x["name"]: x["value"] for x in e["args"]})["metadata"]["packet_len"]
            for e in again] == [g[0] for g in got], (again, err)
    # Whole frames whose data offset runs past the IP packet (into nothing, or into the
    # padding) are bad headers, as tcpdump says, not headers cut by the snapshot length.
    bad = os.path.join(w, "bad.pcap")
    run([PYTHON, "-c", BAD_OFFSETS, bad], timeout=60)
    theirs = run(["tcpdump", "-r", bad, "-nn"], timeout=30).stdout
    back, err = read_back(bad)
    assert theirs.count("bad hdr length") == 2 and len(back) == 2 and all(
        "proto_tcp" not in json.dumps(e) and "truncated TCP header" in json.dumps(e)
        for e in back), (theirs, back)
    log("padded frame: packet_len %d of a %s-byte frame; 3 tags and 0x9100 read" % (
        got[0][0], wire[0][0]))


@test
def pcapng_read_snaplen_cut(w):
    """tcpdump -s 60 on lo (every TCP header cut inside its options) read with -r: every
    packet's TCP fields are tshark's, the options before the cut are there and marked
    truncated; the handshake's text lines are tcpdump's own ('options [mss N, [|tcp]')"""
    srv, cli, port = rand_name("csrv"), rand_name("ccli"), rand_port()
    path = os.path.join(w, "s60.pcap")
    with capture("lo", "tcp port %d" % port, path, snaplen=60) as cap:
        run_pair(srv, cli, port)
        cap.stop()
    fields = ["tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.hdr_len",
              "tcp.flags", "tcp.window_size_value", "tcp.checksum", "tcp.options.mss_val"]
    cmd = ["tshark", "-r", path, "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    wire = [l.split("\t") for l in run(cmd, timeout=30).stdout.splitlines()]
    back, err = read_back(path)
    assert len(back) == len(wire) > 10, "%d events for %d packets: %s" % (
        len(back), len(wire), err)
    for e, t in zip(back, wire):
        a = {x["name"]: x["value"] for x in e["args"]}
        p, o = a["proto_tcp"], a.get("tcp_options", {})
        flags = sum(v << i for i, v in enumerate(
            [p["FIN"], p["SYN"], p["RST"], p["PSH"], p["ACK"], p["URG"], p["ECE"], p["CWR"],
             p["NS"]]))
        got = [p["srcPort"], p["dstPort"], p["seq"], p["ack"], p["dataOffset"] * 4, flags,
               p["window"], p["checksum"], o.get("mss")]
        want = [int(x, 0) for x in t[:8]] + [int(t[8]) if t[8] else None]
        assert got == want and o.get("truncated") is True, (
            "pktrace %s, tshark %s (options %s)" % (got, want, o))
    text = run([PKTRACE, "-r", path, "-F", "text"], timeout=30).stdout.splitlines()
    theirs = run(["tcpdump", "-r", path, "-nn", "-S"], timeout=30).stdout.splitlines()
    syns = [(a, b) for a, b in zip(text, theirs) if "Flags [S" in b]
    assert len(syns) == 2 and all(
        a.split(" IP ", 1)[1] == b.split(" IP ", 1)[1] and a.endswith(", [|tcp]")
        for a, b in syns), "handshake lines: %s" % syns
    log("%d packets cut at 60 bytes: TCP fields as tshark's; SYN lines as tcpdump's: %s" % (
        len(back), syns[0][0].split(" IP ", 1)[1]))
