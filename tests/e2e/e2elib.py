"""Helpers for the pktrace end-to-end tests (standard library only).

  Proc         a child process whose output lines can be awaited with a timeout
  netns()      a network namespace, deleted on exit
  capture()    tcpdump writing a pcap, started and stopped cleanly
  Pktrace      ./pktrace run with SIGINT shutdown; events parsed and validated
  read_pcap()  tshark's dissection of a pcap as a list of dicts
  expect_*     expected pktrace events derived from wire packets
  match()      multiset comparison of expected and actual events, with a clear diff
"""
import contextlib
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# PKTRACE_E2E_BIN: another binary to test (e.g. a wrapper that corrupts events, to check
# that the tests catch it); default ./pktrace of this repository.
PKTRACE = os.environ.get("PKTRACE_E2E_BIN") or os.path.join(REPO, "pktrace")
# The test build whose state programs skip the closes that carry an error (make test builds it;
# Makefile, FAULT).
FAULT_PKTRACE = os.environ.get("PKTRACE_E2E_FAULT_BIN") or os.path.join(REPO, "build", "fault", "pktrace")


def possible_cpus():
    """The kernel's possible CPUs (/sys/devices/system/cpu/possible: "0-1", "0,2-3")."""
    n = 0
    with open("/sys/devices/system/cpu/possible") as f:
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            n += int(hi or lo) - int(lo) + 1
    return n


def ring_bytes_each(total, least=4096):
    """Bytes of each CPU's ring buffer for -B total bytes: split, each a power of two of at
    least `least` (the default 8 MiB gives at least 1 MiB each), as the README says."""
    size, ncpus = 1, possible_cpus()
    while size < max(-(-total // ncpus), least):
        size *= 2
    return size
PEERS = os.path.join(HERE, "peers.py")
PYTHON = "/usr/bin/python3"

FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS")
FLAG_BITS = {name: 1 << i for i, name in enumerate(FLAGS)}  # tcp.flags bit order
META_FIELDS = ("src_ip", "dst_ip", "src_port", "dst_port", "protocol", "packet_len", "iface",
               "direction")
TCP_FIELDS = ("srcPort", "dstPort", "seq", "ack", "dataOffset") + FLAGS + (
    "window", "checksum", "urgent")
# The other packet events: their protocol arg, its type and its fields with their JSON types
# (Tracee's names).
PROTOS = {
    "net_packet_ipv4": ("proto_ipv4", "trace.ProtoIPv4", (
        ("version", int), ("IHL", int), ("TOS", int), ("length", int), ("id", int),
        ("flags", int), ("fragOffset", int), ("TTL", int), ("protocol", str),
        ("checksum", int), ("srcIP", str), ("dstIP", str))),
    "net_packet_ipv6": ("proto_ipv6", "trace.ProtoIPv6", (
        ("version", int), ("trafficClass", int), ("flowLabel", int), ("length", int),
        ("nextHeader", str), ("hopLimit", int), ("srcIP", str), ("dstIP", str))),
    "net_packet_udp": ("proto_udp", "trace.ProtoUDP", (
        ("srcPort", int), ("dstPort", int), ("length", int), ("checksum", int))),
    "net_packet_icmp": ("proto_icmp", "trace.ProtoICMP", (
        ("typeCode", str), ("checksum", int), ("id", int), ("seq", int))),
    "net_packet_icmpv6": ("proto_icmpv6", "trace.ProtoICMPv6", (
        ("typeCode", str), ("checksum", int))),
}
# The same with field names only, as parse_events checks them.
PROTO_ARGS = {ev: (arg, typ, tuple(f for f, _ in fields))
              for ev, (arg, typ, fields) in PROTOS.items()}
EVENT_KEYS = {"timestamp", "eventName", "processId", "threadId", "parentProcessId", "userId",
              "processName", "hostName", "cgroupId", "containerId", "args"}
STR_FIELDS = {"src_ip", "dst_ip", "iface", "direction"}
# The tcp_options arg flattened: None when the option (or the whole arg) is absent.
OPT_FIELDS = ("opt_mss", "opt_wscale", "opt_sack_perm", "opt_sack_blocks", "opt_ts_val",
              "opt_ts_ecr", "opt_tfo", "opt_tfo_exp", "opt_unknown", "opt_malformed")
# Option kinds pktrace decodes (tcp_options keys); any other kind is listed in "unknown".
KNOWN_OPT_KINDS = {0, 1, 2, 3, 4, 5, 8, 34}

# Every test, in the order registered with @test (run.py and the t_*.py modules).
TESTS = []


def test(fn):
    fn.needs_pktrace = fn.__name__ != "harness_selfcheck"
    TESTS.append(fn)
    return fn


class Skip(Exception):
    """A prerequisite is missing: the test is skipped, or fails with CI=true."""


# Every process started through Proc, and every namespace and cgroup made, so the runner can
# clean up after a test even when a timeout interrupted the test's own clean-up.
_live = []
_made = []  # ("netns", name) or ("cgroup", path)
# Totals over the run, for the runner's closing report.
TALLY = {"packets": 0, "events": 0}


def log(msg):
    print("    " + msg, flush=True)


def rand_port(kind=socket.SOCK_STREAM, lo=20000, hi=59999):
    """A free TCP (or kind) port in a high range, random per call."""
    for _ in range(200):
        port = random.randint(lo, hi)
        try:
            for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                with socket.socket(fam, kind) as s:
                    s.bind((addr, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port found")


def rand_name(prefix):
    """A distinctive process name (at most 15 characters, the kernel's comm limit)."""
    return "%s%04x" % (prefix, random.getrandbits(16))


def rand_tag():
    return "%06x" % random.getrandbits(24)


# The summary's line about packets held until a process took their connection: held, taken,
# to the acceptor or listener's owner, early, and of all these not written (out of scope).
HELD_RX = re.compile(r"(\d+) packets held until a process took the connection: (\d+) went to "
                     r"that process, (\d+) to the acceptor or the listener's owner"
                     r"(?: \([^)]*\))?, (\d+) early for lack of room"
                     r"(?:, \d+ still held when the output failed \(not written\))?"
                     r"; of all these, (\d+) not written")

TRACEFS = "/sys/kernel/tracing"
FTRACE_LINE_RX = re.compile(r"^\s*(.*)-(\d+)\s+\[\d+\]\s+(\S+)\s+[\d.]+: (\w+): (.*)$")


@contextlib.contextmanager
def ftrace_events(event, filt, buffer_kib=16384):
    """The kernel's own record of one trace event (event: "subsystem/name"), those matching
    filt (ftrace's filter syntax), in an ftrace instance of its own: independent of pktrace
    and of BPF. Yields a list, filled at the end with (task, tid, irq-flags, text) per event."""
    if not os.path.isdir(os.path.join(TRACEFS, "instances")):
        # a machine that boots without it mounted (the tests run as root): mount it, as
        # systemd would; it stays, harmless, for the next test
        run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=False)
    assert os.path.isdir(os.path.join(TRACEFS, "instances")), (
        "tracefs is not mounted at %s: the kernel's own trace events are the reference this "
        "test needs" % TRACEFS)
    inst = os.path.join(TRACEFS, "instances", rand_name("pkt"))
    os.mkdir(inst)
    got = []
    try:
        ev = os.path.join(inst, "events", event)
        for name, value in (("buffer_size_kb", str(buffer_kib)),
                            (os.path.join(ev, "filter"), filt),
                            (os.path.join(ev, "enable"), "1")):
            with open(os.path.join(inst, name), "w") as f:
                f.write(value)
        yield got
        with open(os.path.join(ev, "enable"), "w") as f:
            f.write("0")
        with open(os.path.join(inst, "trace")) as f:
            for line in f:
                m = FTRACE_LINE_RX.match(line)
                if m and m.group(4) == os.path.basename(event):
                    got.append((m.group(1), int(m.group(2)), m.group(3), m.group(5)))
    finally:
        try:
            os.rmdir(inst)
        except OSError as e:
            log("cannot remove the ftrace instance %s: %s" % (inst, e))


# The Internet checksum (RFC 1071), for the inline scripts that write packets whole.
CSUM_SRC = r"""
def csum(b):
    b += b"\0" * (len(b) % 2)
    v = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    v = (v >> 16) + (v & 0xffff)
    return ~(v + (v >> 16)) & 0xffff
"""


def in_agent_softirq(tid, irq):
    """Whether a trace line (thread tid, irq flags irq) ran in a softirq taken on a thread of
    pid 1, this machine's VM agent: there no tracing (tp_btf) program runs, and the kernel
    counts no skipped run (cgroup_skb programs do run)."""
    return "s" in irq and os.path.exists("/proc/1/task/%d" % tid)


def run(cmd, timeout=15, check=True, **kw):
    """Run a short command; return CompletedProcess (text)."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError("command %s failed (%d): %s" % (
            " ".join(cmd), r.returncode, (r.stderr or r.stdout).strip()))
    return r


# ---------------------------------------------------------------------------------------------
# Processes

class LineReader(threading.Thread):
    """Reads a pipe line by line in the background; lines are kept and can be awaited."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.lines = []
        self.closed = False
        self.cond = threading.Condition()
        self.start()

    def run(self):
        try:
            for raw in iter(self.pipe.readline, b""):
                with self.cond:
                    self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                    self.cond.notify_all()
        except (ValueError, OSError):
            pass
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def expect(self, pattern, timeout, what="line"):
        """Wait for a line (any seen so far or later) matching regex pattern; return the match."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        with self.cond:
            while True:
                for line in self.lines:
                    m = rx.search(line)
                    if m:
                        return m
                if self.closed:
                    raise AssertionError("%s ended without /%s/; got: %s" % (
                        what, pattern, self.tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %.0fs waiting for %s /%s/; got: %s" % (
                        timeout, what, pattern, self.tail()))
                self.cond.wait(left)

    def tail(self, n=8):
        return repr(self.lines[-n:]) if self.lines else "(nothing)"

    def text(self):
        self.join(timeout=5)
        return "\n".join(self.lines)


class Proc:
    """A child process with its stdout and stderr read in the background.

    It runs in its own session (so the whole process group can be killed) and is
    killed on close() if still alive.
    """

    def __init__(self, cmd, stdin=subprocess.DEVNULL, stdout=None, name=None):
        self.cmd = cmd
        self.name = name or os.path.basename(cmd[0])
        self.p = subprocess.Popen(cmd, stdin=stdin,
                                  stdout=stdout if stdout is not None else subprocess.PIPE,
                                  stderr=subprocess.PIPE, start_new_session=True)
        _live.append(self)
        self.out = LineReader(self.p.stdout) if stdout is None else None
        self.err = LineReader(self.p.stderr)

    @property
    def pid(self):
        return self.p.pid

    def expect(self, pattern, timeout=10):
        return self.out.expect(pattern, timeout, "%s stdout" % self.name)

    def expect_err(self, pattern, timeout=10):
        return self.err.expect(pattern, timeout, "%s stderr" % self.name)

    def wait(self, timeout):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s did not exit within %ss; stderr: %s" % (
                self.name, timeout, self.err.tail()))

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.p.pid, sig)

    def close(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        else:
            # The leader is gone; its group (forked workers) may not be.
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            if f:
                try:
                    f.close()
                except OSError:
                    pass
        if self in _live:
            _live.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def bpf_ids_held_by(pid):
    """Program and map ids behind the file descriptors of process pid (from fdinfo)."""
    progs, maps = set(), set()
    fdinfo = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                text = f.read()
        except OSError:
            continue
        progs.update(int(x) for x in re.findall(r"^prog_id:\s*(\d+)", text, re.M))
        maps.update(int(x) for x in re.findall(r"^map_id:\s*(\d+)", text, re.M))
    return progs, maps


def kill_leftovers():
    """Kill every process a test left, then remove its namespaces and cgroups."""
    for p in list(_live):
        p.close()
    for kind, what in reversed(list(_made)):
        if kind == "netns":
            run(["ip", "netns", "del", what], check=False)
        else:
            _rmdir_retry(what)
        _made.remove((kind, what))


def public_copy(path, workdir):
    """A copy of path that any user can run, in workdir (the repository may sit in a
    directory other users cannot enter)."""
    os.chmod(workdir, 0o755)
    dst = os.path.join(workdir, os.path.basename(path))
    shutil.copy2(path, dst)
    os.chmod(dst, 0o755)
    return dst


def peer(mode, name, port, ns=None, prefix=None, script=PEERS, **opts):
    """Start tests/e2e/peers.py MODE (optionally inside netns ns, or behind a prefix command
    such as unshare or setpriv); returns a Proc."""
    cmd = [PYTHON, script, mode, "--name", name, "--port", str(port)]
    for k, v in opts.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            cmd.append(flag)
        elif v not in (None, False):
            cmd += [flag, str(v)]
    if ns:
        cmd = ["ip", "netns", "exec", ns] + cmd
    if prefix:
        cmd = list(prefix) + cmd
    stdin = subprocess.PIPE if opts.get("go") or opts.get("pause") else subprocess.DEVNULL
    proc = Proc(cmd, stdin=stdin, name="%s(%s)" % (mode, name))
    proc.peer_pid = int(proc.expect(r"^(?:PID|PARENT) (\d+)").group(1))
    return proc


def release(proc):
    """Send the line a peer started with go/pause waits for."""
    proc.p.stdin.write(b"go\n")
    proc.p.stdin.flush()


def run_pair(server_name, client_name, port, ns=None, bind="127.0.0.1", server_opts=None,
             client_opts=None, timeout=20):
    """Run one server and one client to completion; return (server, client) info dicts."""
    with contextlib.ExitStack() as stack:
        srv = stack.enter_context(peer("server", server_name, port, ns=ns, bind=bind,
                                       **(server_opts or {})))
        srv.expect(r"^LISTENING")
        cli = stack.enter_context(peer("client", client_name, port, ns=ns, connect=bind,
                                       **(client_opts or {})))
        lport = int(cli.expect(r"^CONNECTED (\d+)").group(1))
        cli.expect(r"^DONE", timeout)
        assert cli.wait(10) == 0, "client failed: %s" % cli.err.text()
        srv.expect(r"^DONE", timeout)
        assert srv.wait(10) == 0, "server failed: %s" % srv.err.text()
        return ({"pid": srv.peer_pid, "name": server_name, "port": port},
                {"pid": cli.peer_pid, "name": client_name, "port": lport})


# ---------------------------------------------------------------------------------------------
# Induced loss: the kernel here has neither netem nor the gact action and no nftables tools are
# installed, so a drop is a tc (clsact) BPF classifier in direct-action mode, built by clang.

TC_DROP_BPF = r"""
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("tc")
int drop(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_TCP)
		return TC_ACT_OK;
#ifdef DROP_ALL
	return TC_ACT_SHOT;
#else
	if (bpf_ntohs(ip->tot_len) < 1000)
		return TC_ACT_OK;
	return bpf_ntohs(ip->id) % 6 == 3 ? TC_ACT_SHOT : TC_ACT_OK;
#endif
}

char LICENSE[] SEC("license") = "GPL";
"""


def tc_drop(w, ns, dev, hook="ingress", drop_all=False):
    """Attach a drop filter to dev (in netns ns) at its clsact ingress or egress hook: every
    IPv4 TCP packet (drop_all), or a full-sized IPv4 TCP segment when its IP id is 3 mod 6
    (a retransmission has another id, so each drop is one transmission lost). Skip when clang
    or tc cannot do it."""
    kind = "all" if drop_all else "some"
    src, obj = os.path.join(w, "drop.c"), os.path.join(w, "drop_%s.o" % kind)
    with open(src, "w") as f:
        f.write(TC_DROP_BPF)
    r = subprocess.run(["clang", "-O2", "-target", "bpf"] + (["-DDROP_ALL"] if drop_all else []) +
                       ["-I/usr/include/%s-linux-gnu" % os.uname().machine, "-c", src, "-o", obj],
                       capture_output=True, text=True)
    if r.returncode:
        raise Skip("cannot build the tc drop program: %s" % r.stderr.strip()[-200:])
    run(["tc", "-n", ns, "qdisc", "replace", "dev", dev, "clsact"])
    r = run(["tc", "-n", ns, "filter", "add", "dev", dev, hook, "bpf", "da", "obj", obj,
             "sec", "tc"], check=False)
    if r.returncode:
        raise Skip("tc cannot attach a BPF classifier: %s" % r.stderr.strip()[-200:])


@contextlib.contextmanager
def routed_pair():
    """Three namespaces: a client side A (10.77.1.1 on veth va), a router R and a server side B
    (10.77.2.1 on vb), R's veth from A being vra. A sends one segment per packet (no GSO): a
    drop filter on R (tc_drop) then loses single segments. Yields a dict of those names."""
    tag = rand_tag()
    t = {"na": "pkt-oa-" + tag, "nr": "pkt-or-" + tag, "nb": "pkt-ob-" + tag,
         "va": "oa" + tag, "vra": "ora" + tag, "vrb": "orb" + tag, "vb": "ob" + tag,
         "ip_a": "10.77.1.1", "ip_b": "10.77.2.1"}
    na, nr, nb = t["na"], t["nr"], t["nb"]
    with netns(na), netns(nr), netns(nb):
        run(["ip", "link", "add", t["va"], "netns", na, "type", "veth", "peer", "name", t["vra"],
             "netns", nr])
        run(["ip", "link", "add", t["vb"], "netns", nb, "type", "veth", "peer", "name", t["vrb"],
             "netns", nr])
        for ns, dev, addr in ((na, t["va"], t["ip_a"] + "/24"), (nr, t["vra"], "10.77.1.2/24"),
                              (nr, t["vrb"], "10.77.2.2/24"), (nb, t["vb"], t["ip_b"] + "/24")):
            run(["ip", "-n", ns, "addr", "add", addr, "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        run(["ip", "-n", na, "link", "set", t["va"], "gso_max_segs", "1"])
        run(["ip", "-n", na, "route", "add", "default", "via", "10.77.1.2"])
        run(["ip", "-n", nb, "route", "add", "default", "via", "10.77.2.2"])
        run(["ip", "netns", "exec", nr, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        yield t


# ---------------------------------------------------------------------------------------------
# Namespaces and cgroups

@contextlib.contextmanager
def netns(name):
    run(["ip", "netns", "add", name])
    _made.append(("netns", name))
    try:
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        yield name
    finally:
        run(["ip", "netns", "del", name], check=False)
        _made.remove(("netns", name))


def _rmdir_retry(path):
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # its last process may still be exiting


@contextlib.contextmanager
def cgroup_dir(path):
    os.mkdir(path)
    _made.append(("cgroup", path))
    try:
        yield path
    finally:
        _rmdir_retry(path)
        _made.remove(("cgroup", path))


# ---------------------------------------------------------------------------------------------
# tcpdump

class Capture:
    def __init__(self, iface, bpf_filter, path, ns=None, buffer_kib=16384, snaplen=None):
        """buffer_kib: tcpdump -B, its kernel buffer (raise it for bursts of tens of
        thousands of packets a second; on lo each packet fills it twice). snaplen: tcpdump -s
        (its link-layer header counts)."""
        self.iface = iface
        self.path = path
        cmd = ["tcpdump", "-i", iface, "-U", "--immediate-mode", "-n", "-Z", "root",
               "-B", str(buffer_kib), "-w", path]
        cmd += ["-s", str(snaplen)] if snaplen is not None else []
        cmd += [bpf_filter]
        if ns:
            cmd = ["ip", "netns", "exec", ns] + cmd
        self.proc = Proc(cmd, name="tcpdump(%s)" % iface)
        self.proc.expect_err(r"listening on", timeout=10)
        self.stats = ""

    def stop(self):
        """Stop with SIGINT, return the pcap path.

        tcpdump's "dropped by kernel" also counts packets of other traffic that overflowed the
        ring before its filter was set, so a drop is only reported, not fatal: a packet really
        lost by tcpdump would show up as an event "not in tshark" in the comparison."""
        if self.proc.alive():
            time.sleep(0.3)
            self.proc.signal(signal.SIGINT)
            self.proc.wait(10)
        self.stats = self.proc.err.text()
        m = re.search(r"(\d+) packets dropped by kernel", self.stats)
        assert m, "tcpdump on %s printed no statistics: %r" % (self.iface, self.stats)
        if m.group(1) != "0":
            log("note: tcpdump on %s: %s" % (self.iface, " / ".join(
                l for l in self.stats.splitlines() if "packets" in l)))
        return self.path

    def close(self):
        self.proc.close()


@contextlib.contextmanager
def capture(iface, bpf_filter, path, ns=None, buffer_kib=16384, snaplen=None):
    c = Capture(iface, bpf_filter, path, ns, buffer_kib, snaplen)
    try:
        yield c
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# tshark

TSHARK_FIELDS = ["frame.number", "frame.time_epoch", "ip.src", "ip.dst", "ip.len", "ip.proto",
                 "ipv6.src", "ipv6.dst", "ipv6.plen", "ipv6.nxt", "tcp.srcport", "tcp.dstport",
                 "tcp.seq_raw", "tcp.ack_raw", "tcp.hdr_len", "tcp.flags",
                 "tcp.window_size_value", "tcp.checksum", "tcp.urgent_pointer", "tcp.len",
                 "ip.hdr_len"]
# Every occurrence of these (joined by "|"), for the options; the fields above take the first.
TSHARK_OPT_FIELDS = ["tcp.options.mss_val", "tcp.options.wscale.shift", "tcp.options.sack_perm",
                     "tcp.options.sack_le", "tcp.options.sack_re",
                     "tcp.options.timestamp.tsval", "tcp.options.timestamp.tsecr",
                     "tcp.options.tfo.cookie", "tcp.options.tfo.request",
                     "tcp.options.experimental.exid", "tcp.option_kind"]
_ns_field = None


def _tshark_ns_field():
    """tcp.flags.ns was renamed tcp.flags.ae; use whichever this tshark has."""
    global _ns_field
    if _ns_field is None:
        r = run(["tshark", "-G", "fields"], timeout=60)
        names = {line.split("\t")[2] for line in r.stdout.splitlines()
                 if line.count("\t") >= 2}
        _ns_field = "tcp.flags.ns" if "tcp.flags.ns" in names else "tcp.flags.ae"
    return _ns_field


def _num(s):
    s = s.strip()
    if s == "":
        return None
    return int(s, 16) if s.lower().startswith("0x") else int(s)


def _bool(s):
    return s.strip().lower() in ("1", "true", "set")


def read_pcap(path):
    """Each TCP packet of the pcap as a dict with the field names of pktrace's events."""
    fields = TSHARK_FIELDS + TSHARK_OPT_FIELDS + [_tshark_ns_field()]
    cmd = ["tshark", "-n", "-r", path, "-Y", "tcp", "-T", "fields", "-E", "separator=,",
           "-E", "occurrence=a", "-E", "aggregator=|",
           "-o", "tcp.analyze_sequence_numbers:FALSE", "-o", "tcp.relative_sequence_numbers:FALSE"]
    for f in fields:
        cmd += ["-e", f]
    r = run(cmd, timeout=60)
    pkts = []
    for line in r.stdout.splitlines():
        every = dict(zip(fields, line.split(",")))
        v = {k: x.split("|")[0] for k, x in every.items()}
        flags = _num(v["tcp.flags"])
        ns_bit = bool(flags & FLAG_BITS["NS"])
        assert ns_bit == _bool(v[fields[-1]]), "tshark: tcp.flags and %s disagree: %s" % (
            fields[-1], line)
        if v["ip.src"]:
            p = {"src_ip": v["ip.src"], "dst_ip": v["ip.dst"], "packet_len": _num(v["ip.len"]),
                 "protocol": _num(v["ip.proto"]), "family": 4, "ip_hdr_len": _num(v["ip.hdr_len"])}
        else:
            # ipv6.nxt is the first next header (60 with destination options); the TCP
            # dissector ran, so the last one, the transport protocol, is 6.
            p = {"src_ip": v["ipv6.src"], "dst_ip": v["ipv6.dst"],
                 "packet_len": _num(v["ipv6.plen"]) + 40, "protocol": 6,
                 "family": 6, "first_nxt": _num(v["ipv6.nxt"])}
        p.update({
            "frame": _num(v["frame.number"]),
            "time": float(v["frame.time_epoch"]),
            "src_port": _num(v["tcp.srcport"]), "dst_port": _num(v["tcp.dstport"]),
            "seq": _num(v["tcp.seq_raw"]),
            # tshark leaves the acknowledgment out only when it is 0 and ACK is not set
            "ack": _num(v["tcp.ack_raw"]) or 0,
            "dataOffset": _num(v["tcp.hdr_len"]) // 4,
            "window": _num(v["tcp.window_size_value"]),
            "checksum": _num(v["tcp.checksum"]),
            "urgent": _num(v["tcp.urgent_pointer"]),
            "payload": _num(v["tcp.len"]) or 0,
        })
        for name in FLAGS:
            p[name] = bool(flags & FLAG_BITS[name])
        p.update(_tshark_opts(every))
        pkts.append(p)
    return pkts


def _tshark_opts(every):
    """The opt_* fields from tshark's tcp.options.* (all occurrences, "|"-joined)."""
    def nums(f):
        return [_num(x) for x in every[f].split("|") if x.strip() != ""]

    kinds = nums("tcp.option_kind")
    cookie = every["tcp.options.tfo.cookie"].split("|")[0].replace(":", "").lower()
    # A cookie request of either form: tshark's tfo.request (kind 34, or 254 with the magic).
    tfo = cookie if cookie else ("" if every["tcp.options.tfo.request"].strip() else None)
    le, re_ = nums("tcp.options.sack_le"), nums("tcp.options.sack_re")
    assert len(le) == len(re_), "tshark: sack_le %r, sack_re %r" % (le, re_)
    unknown = tuple(k for k in kinds if k not in KNOWN_OPT_KINDS and
                    not (k == 254 and tfo is not None and 34 not in kinds))

    def first(f):
        n = nums(f)
        return n[0] if n else None

    return {"opt_mss": first("tcp.options.mss_val"),
            "opt_wscale": first("tcp.options.wscale.shift"),
            "opt_sack_perm": True if every["tcp.options.sack_perm"].strip() else None,
            "opt_sack_blocks": tuple(zip(le, re_)) or None,
            "opt_ts_val": first("tcp.options.timestamp.tsval"),
            "opt_ts_ecr": first("tcp.options.timestamp.tsecr"),
            "opt_tfo": tfo, "opt_unknown": unknown or None,
            # The experimental form (kind 254 with the magic 0xF989), not kind 34.
            "opt_tfo_exp": True if tfo is not None and 34 not in kinds and
            "0xf989" in every["tcp.options.experimental.exid"].lower() else None,
            # tshark flags a bad option but names no field for it: real traffic has none.
            "opt_malformed": None, "opt_kinds": tuple(kinds)}


def flag_str(d):
    return "".join(n[0] if n not in ("CWR", "ECE", "NS") else n[:2] for n in FLAGS if d[n]) \
        or "."


def describe(d):
    """One readable line for a packet or an event."""
    s = "%s:%s > %s:%s [%s] seq=%s ack=%s len=%s" % (
        d.get("src_ip"), d.get("src_port"), d.get("dst_ip"), d.get("dst_port"),
        flag_str(d), d.get("seq"), d.get("ack"), d.get("packet_len"))
    if "direction" in d:
        s = "%s %s %s" % (d.get("iface"), d.get("direction"), s)
    if "frame" in d:
        s = "frame %d: %s" % (d["frame"], s)
    if "processId" in d:
        s += " pid=%s comm=%s" % (d.get("processId"), d.get("processName"))
    return s


# ---------------------------------------------------------------------------------------------
# pktrace

class Pktrace:
    """./pktrace -F json ... with its events written to a file (stdout or -o)."""

    def __init__(self, args, workdir, tag="pktrace", out="stdout", fmt="json",
                 ready_timeout=30, binary=None):
        """out: "stdout" (redirected to a file), "o" (-o FILE) or "pipe" (proc.p.stdout);
        binary: another build than PKTRACE."""
        self.events_path = os.path.join(workdir, tag + ".jsonl")
        self.stderr_path = os.path.join(workdir, tag + ".stderr")
        assert not binary or os.access(binary, os.X_OK), (
            "%s is missing: make test (or make %s) builds it" % (binary, os.path.relpath(
                binary, REPO)))
        cmd = [binary or PKTRACE] + (["-F", fmt] if fmt else [])
        if out == "o":
            cmd += ["-o", self.events_path]
        cmd += list(args)
        self.cmd = cmd
        self.t_start = time.time()
        if out == "stdout":
            with open(self.events_path, "wb") as f:
                self.proc = Proc(cmd, stdout=f, name=tag)
        else:
            self.proc = Proc(cmd, stdout=subprocess.PIPE if out == "pipe" else None, name=tag)
        self.returncode = None
        self.ready_timeout = ready_timeout

    def wait_ready(self):
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if any("pktrace: ready" in line for line in self.proc.err.lines):
                return self
            if not self.proc.alive():
                time.sleep(0.2)
                raise AssertionError("%s exited with %s before 'pktrace: ready'; stderr: %s" % (
                    " ".join(self.cmd), self.proc.p.returncode, self.proc.err.text()))
            time.sleep(0.02)
        raise AssertionError("no 'pktrace: ready' on stderr within %ds; stderr: %s" % (
            self.ready_timeout, self.proc.err.tail()))

    def stop(self, timeout=15, sig=signal.SIGINT):
        """SIGINT (or sig), wait, check the exit status is 0; return the parsed events."""
        time.sleep(0.3)
        if self.proc.alive():
            self.proc.signal(sig)
        try:
            self.returncode = self.proc.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.close()
            raise AssertionError("pktrace did not exit within %ds of %s; stderr: %s" % (
                timeout, signal.Signals(sig).name, self.proc.err.tail()))
        self.t_end = time.time()
        assert self.returncode == 0, "pktrace exited %s after %s; stderr: %s" % (
            self.returncode, signal.Signals(sig).name, self.proc.err.text())
        events = self.events()
        check_summary(self.stderr(), len(events))
        return events

    def stderr(self):
        return self.proc.err.text()

    def events(self):
        events, problems = parse_events(self.events_path)
        assert not problems, "malformed pktrace output (%d problems):\n      %s" % (
            len(problems), "\n      ".join(problems[:10]))
        log("pktrace: %d events; summary: %s" % (len(events), " | ".join(
            l.strip() for l in self.proc.err.lines if "ready" not in l)[:300]))
        return events

    def close(self):
        self.proc.close()
        # Whole, for a failure's work directory (the log shows only its start).
        with open(self.stderr_path, "w") as f:
            f.write(self.proc.err.text())


@contextlib.contextmanager
def pktrace(args, workdir, **kw):
    pt = Pktrace(args, workdir, **kw)
    try:
        pt.wait_ready()
        yield pt
    finally:
        pt.close()


def check_summary(stderr, n_events):
    """The shutdown summary on stderr reports what was written and lost, and its count of
    written events is the number of events in the output."""
    lines = [l for l in stderr.splitlines() if re.search(r"written", l, re.I)]
    assert lines and re.search(r"lost", stderr, re.I), (
        "no summary (events written, packets seen, lost) on stderr: %r" % stderr[-300:])
    m = re.search(r"(\d+) events? written", lines[-1])
    if m:
        assert int(m.group(1)) == n_events, "summary says %s events written, output has %d" % (
            m.group(1), n_events)


def _check_types(where, d, problems):
    for k, v in d.items():
        if k in FLAGS:
            ok = type(v) is bool
        elif k in STR_FIELDS:
            ok = type(v) is str
        else:
            ok = type(v) is int
        if not ok:
            problems.append("%s: %s has type %s (%r)" % (where, k, type(v).__name__, v))


def flatten(ev):
    """An event as one flat dict: metadata and proto_tcp fields plus the process fields; an
    IPv6 extension-header chain as ext_count, ext_length and ext_types (a tuple); the
    tcp_options arg as the OPT_FIELDS (None for an absent option; SACK blocks a tuple of
    (left, right), unknown options a tuple of their kinds)."""
    args = {a.get("name"): a for a in ev["args"]}
    d = {k: v for k, v in ev.items() if k != "args"}
    meta = dict(args["metadata"]["value"])
    ext = meta.pop("ipv6_ext", None)
    d.update(meta)
    if ev["eventName"] in PROTO_ARGS:
        # Another protocol's fields stay in their own dict: proto_ipv4's "protocol" is a name.
        d["proto"] = dict(args[PROTO_ARGS[ev["eventName"]][0]]["value"])
    else:
        d.update(args["proto_tcp"]["value"])
    if ext is not None:
        d["ext_count"], d["ext_length"] = ext["count"], ext["length"]
        d["ext_types"] = tuple(ext["types"])
    opts = args["tcp_options"]["value"] if "tcp_options" in args else {}
    d.update({"opt_mss": opts.get("mss"), "opt_wscale": opts.get("wscale"),
              "opt_sack_perm": opts.get("sack_permitted"),
              "opt_sack_blocks": tuple(tuple(b) for b in opts["sack_blocks"])
              if "sack_blocks" in opts else None,
              "opt_ts_val": opts.get("ts_val"), "opt_ts_ecr": opts.get("ts_ecr"),
              "opt_tfo": opts.get("tfo_cookie"),
              "opt_tfo_exp": opts.get("tfo_experimental"),
              "opt_unknown": tuple(u["kind"] for u in opts["unknown"])
              if "unknown" in opts else None,
              "opt_malformed": opts.get("malformed")})
    return d


def _check_ext(where, ext, problems):
    """ipv6_ext: {"count": int, "length": int, "types": [int, ...]}, present only for a chain."""
    if not isinstance(ext, dict) or set(ext) != {"count", "length", "types"} or \
            type(ext["count"]) is not int or type(ext["length"]) is not int or \
            not isinstance(ext["types"], list) or \
            any(type(t) is not int for t in ext["types"]) or ext["count"] < 1 or \
            len(ext["types"]) != min(ext["count"], 64):
        problems.append("%s: ipv6_ext is %r" % (where, ext))


def _check_opts(where, o, problems):
    """tcp_options: only the keys of options present (at least one), each of its type."""
    def u(v, bits):
        return type(v) is int and 0 <= v < 1 << bits

    def block(b):
        return isinstance(b, list) and len(b) == 2 and all(u(x, 32) for x in b)

    checks = {"mss": lambda v: u(v, 16), "wscale": lambda v: u(v, 8),
              "sack_permitted": lambda v: v is True,
              "sack_blocks": lambda v: isinstance(v, list) and 1 <= len(v) <= 4 and
              all(block(b) for b in v),
              "ts_val": lambda v: u(v, 32), "ts_ecr": lambda v: u(v, 32),
              "tfo_cookie": lambda v: isinstance(v, str) and len(v) % 2 == 0 and
              len(v) <= 76 and all(c in "0123456789abcdef" for c in v),
              "tfo_experimental": lambda v: v is True,
              "unknown": lambda v: isinstance(v, list) and 1 <= len(v) <= 20 and
              all(isinstance(x, dict) and list(x) == ["kind", "length", "data"] and
                  u(x["kind"], 8) and x["kind"] not in KNOWN_OPT_KINDS and
                  2 <= x["length"] <= 40 and isinstance(x["data"], str) and
                  len(x["data"]) == 2 * (x["length"] - 2) and
                  all(c in "0123456789abcdef" for c in x["data"]) for x in v),
              "malformed": lambda v: v is True}
    if not isinstance(o, dict) or not o or not set(o) <= set(checks) or \
            list(o) != [k for k in checks if k in o] or ("ts_val" in o) != ("ts_ecr" in o) or \
            ("tfo_experimental" in o and "tfo_cookie" not in o):
        problems.append("%s: tcp_options is %r" % (where, o))
        return
    for k, v in o.items():
        if not checks[k](v):
            problems.append("%s: tcp_options %s is %r" % (where, k, v))


def parse_events(path):
    """Parse pktrace's JSON lines; return (flat events, list of problems found)."""
    events, problems = [], []
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        problems.append("output does not end with a newline (last line cut?)")
    for n, raw in enumerate(data.splitlines(), 1):
        where = "line %d" % n
        try:
            ev = json.loads(raw)
        except ValueError as e:
            problems.append("%s: not JSON (%s): %r" % (where, e, raw[:120]))
            continue
        if not isinstance(ev, dict) or set(ev) != EVENT_KEYS:
            problems.append("%s: keys %s, want %s" % (
                where, sorted(ev) if isinstance(ev, dict) else type(ev), sorted(EVENT_KEYS)))
            continue
        if ev["eventName"] != "net_packet_tcp" and ev["eventName"] not in PROTO_ARGS:
            problems.append("%s: eventName %r" % (where, ev["eventName"]))
        args = ev["args"]
        want = [("metadata", "trace.PacketMetadata", META_FIELDS),
                PROTO_ARGS.get(ev["eventName"], ("proto_tcp", "trace.ProtoTCP", TCP_FIELDS))]
        if isinstance(args, list) and len(args) == 3 and isinstance(args[2], dict) and \
                args[2].get("name") == "tcp_options":
            opts = args[2]
            args = args[:2]
            if opts.get("type") != "trace.TCPOptions" or set(opts) != {"name", "type", "value"}:
                problems.append("%s: arg tcp_options is %r" % (where, opts))
                continue
            _check_opts(where, opts["value"], problems)
        if not isinstance(args, list) or [a.get("name") for a in args] != [w[0] for w in want]:
            problems.append("%s: args %r" % (where, args))
            continue
        bad = False
        for a, (name, typ, fields) in zip(args, want):
            if a.get("type") != typ or set(a) != {"name", "type", "value"}:
                problems.append("%s: arg %s is %r" % (where, name, {k: a.get(k) for k in a
                                                                    if k != "value"}))
                bad = True
            elif set(a["value"]) - {"ipv6_ext"} != set(fields) or \
                    ("ipv6_ext" in a["value"] and name != "metadata"):
                problems.append("%s: %s fields %s, want %s" % (
                    where, name, sorted(a["value"]), sorted(fields)))
                bad = True
            elif name in ("metadata", "proto_tcp"):
                v = dict(a["value"])
                if "ipv6_ext" in v:
                    _check_ext(where, v.pop("ipv6_ext"), problems)
                _check_types("%s %s" % (where, name), v, problems)
        if bad:
            continue
        for k in ("timestamp", "processId", "threadId", "parentProcessId", "userId", "cgroupId"):
            if type(ev[k]) is not int:
                problems.append("%s: %s is %r" % (where, k, ev[k]))
        for k in ("processName", "hostName", "containerId"):
            if type(ev[k]) is not str:
                problems.append("%s: %s is %r" % (where, k, ev[k]))
        d = flatten(ev)
        d["line"] = n
        events.append(d)
    return events, problems


# ---------------------------------------------------------------------------------------------
# Expected events and matching

def expected_event(pkt, direction, iface, owner=None):
    """The event pktrace must emit for wire packet pkt seen by one socket."""
    e = {k: pkt[k] for k in ("src_ip", "dst_ip", "src_port", "dst_port", "protocol",
                             "packet_len", "seq", "ack", "dataOffset", "window", "checksum",
                             "urgent") + FLAGS}
    e.update({k: pkt[k] for k in OPT_FIELDS})
    e.update({"srcPort": pkt["src_port"], "dstPort": pkt["dst_port"], "iface": iface,
              "direction": direction, "frame": pkt["frame"], "payload": pkt["payload"],
              "time": pkt["time"]})
    if owner is not None:
        e["owner"] = owner
    return e


def local_port(e):
    """The port of the socket that saw event/expected event e."""
    return e["src_port"] if e["direction"] == "egress" else e["dst_port"]


def expect_both_sides(pkts, iface, owners=None):
    """Loopback: every wire packet is seen by the sender (egress) and the receiver (ingress).

    owners maps a local port to an owner dict; a port missing from owners (or owners None)
    gives no attribution expectation."""
    out = []
    for p in pkts:
        for direction, port in (("egress", p["src_port"]), ("ingress", p["dst_port"])):
            owner = owners.get(port) if owners else None
            out.append(expected_event(p, direction, iface, owner))
    return out


def expect_one_side(pkts, iface, local_ports, owners=None):
    """Only the sockets on local_ports are traced (or on this host/namespace)."""
    out = []
    for p in pkts:
        if p["src_port"] in local_ports:
            out.append(expected_event(p, "egress", iface,
                                      owners.get(p["src_port"]) if owners else None))
        if p["dst_port"] in local_ports:
            out.append(expected_event(p, "ingress", iface,
                                      owners.get(p["dst_port"]) if owners else None))
    return out


def expect_local_addrs(pkts, iface, local_addrs, owners=None):
    """A capture on one end of a link: packets from local_addrs are egress, others ingress."""
    out = []
    for p in pkts:
        direction = "egress" if p["src_ip"] in local_addrs else "ingress"
        e = expected_event(p, direction, iface)
        if owners:
            e["owner"] = owners.get(local_port(e))
        out.append(e)
    return out


COMPARED = ("src_ip", "dst_ip", "src_port", "dst_port", "protocol", "packet_len", "iface",
            "direction") + TCP_FIELDS + OPT_FIELDS


def match_key(d):
    return (d["direction"], d["iface"], d["src_ip"], d["dst_ip"], d["src_port"], d["dst_port"],
            d["seq"], d["ack"], tuple(d[f] for f in FLAGS), d["packet_len"])


class Match:
    def __init__(self, expected, actual):
        self.expected = expected
        self.actual = actual
        self.pairs = []      # (expected, actual) with equal keys
        self.missing = []    # expected without an event
        self.extra = []      # events without an expected packet
        groups = {}
        for e in expected:
            groups.setdefault(match_key(e), ([], []))[0].append(e)
        for a in actual:
            groups.setdefault(match_key(a), ([], []))[1].append(a)
        for exp, act in groups.values():
            act = list(act)
            rest = []
            for e in exp:  # identical events first, then the rest in order
                same = next((a for a in act if all(a.get(k) == e[k] for k in COMPARED)), None)
                if same is not None:
                    act.remove(same)
                    self.pairs.append((e, same))
                else:
                    rest.append(e)
            for e in rest:
                if act:
                    self.pairs.append((e, act.pop(0)))
                else:
                    self.missing.append(e)
            self.extra.extend(act)
        self.pairs.sort(key=lambda p: (p[0]["frame"], p[0]["direction"]))
        self.missing.sort(key=lambda e: (e["frame"], e["direction"]))
        self.extra.sort(key=lambda a: a.get("line", 0))

    def field_diffs(self):
        out = []
        for e, a in self.pairs:
            diffs = ["%s: tshark %r, pktrace %r" % (k, e[k], a.get(k)) for k in COMPARED
                     if a.get(k) != e[k]]
            if diffs:
                out.append("%s -> %s" % (describe(e), "; ".join(diffs)))
        return out

    def owner_diffs(self):
        out = []
        for e, a in self.pairs:
            o = e.get("owner")
            if not o:
                continue
            diffs = []
            for k, ek in (("pid", "processId"), ("name", "processName"),
                          ("ppid", "parentProcessId"), ("tid", "threadId"),
                          ("uid", "userId"), ("container", "containerId"),
                          ("cgroup", "cgroupId"), ("host", "hostName")):
                if k in o and a.get(ek) != o[k]:
                    diffs.append("%s: want %r got %r" % (ek, o[k], a.get(ek)))
            if diffs:
                out.append("%s -> %s" % (describe(e), "; ".join(diffs)))
        return out

    def counts(self):
        c = {}
        for label, items in (("expected", self.expected), ("got", self.actual)):
            for d in items:
                c.setdefault(d["direction"], {"expected": 0, "got": 0})[label] += 1
        return ", ".join("%s %d/%d" % (k, v["got"], v["expected"]) for k, v in sorted(c.items()))

    def report(self, limit=12):
        lines = []
        for title, items, fn in (("missing (in tshark, no pktrace event)", self.missing, describe),
                                 ("invented (pktrace event, not in tshark)", self.extra, describe)):
            if items:
                lines.append("%d %s:" % (len(items), title))
                lines += ["  " + fn(d) for d in items[:limit]]
                if len(items) > limit:
                    lines.append("  ... %d more" % (len(items) - limit))
        for title, items in (("field mismatches", self.field_diffs()),
                             ("attribution mismatches", self.owner_diffs()),
                             ("timestamps more than 1 s from tcpdump's", self.timestamp_diffs())):
            if items:
                lines.append("%d %s:" % (len(items), title))
                lines += ["  " + s for s in items[:limit]]
                if len(items) > limit:
                    lines.append("  ... %d more" % (len(items) - limit))
        return lines

    def timestamp_diffs(self, tolerance=1.0):
        """Event timestamps are wall-clock ns close to tcpdump's time of the same packet."""
        out = []
        for e, a in self.pairs:
            ts = a.get("timestamp", 0) / 1e9
            if abs(ts - e["time"]) > tolerance:
                out.append("%s -> timestamp %.6f, tcpdump %.6f" % (describe(e), ts, e["time"]))
        return out

    def assert_exact(self, what="events", allow_missing=(), missing_ok=False):
        """Fail unless every expected event is present, equal, rightly attributed and timed,
        and no event is invented. allow_missing: expected events whose absence is known.
        missing_ok: any expected event may be absent (events counted as lost); every event
        present must still pair with a wire packet and agree with it in every field."""
        if missing_ok:
            allow_missing = list(self.missing)
            log("missing_ok: %d expected events without a pktrace event are not compared" %
                len(allow_missing))
        known = {id(x) for x in allow_missing}
        allowed = [m for m in self.missing if id(m) in known]
        self.missing = [m for m in self.missing if id(m) not in known]
        n_pkts = len({(e["iface"], e["frame"]) for e in self.expected})
        TALLY["packets"] += n_pkts
        TALLY["events"] += len(self.expected)
        log("compared %s: %d wire packets, %d expected events, %d pktrace events, "
            "%d matched (per direction got/expected: %s)" % (
                what, n_pkts, len(self.expected), len(self.actual), len(self.pairs),
                self.counts()))
        lines = self.report()
        self.missing += allowed
        if lines:
            raise AssertionError("%s differ from tshark (%s):\n      %s" % (
                what, self.counts(), "\n      ".join(lines)))
        if not self.expected:
            raise AssertionError("%s: tshark saw no packets at all" % what)


def match(expected, actual):
    return Match(expected, actual)


def events_for_ports(events, ports):
    return [e for e in events if e["src_port"] in ports or e["dst_port"] in ports]


def canonical_ip(s):
    return str(ipaddress.ip_address(s))


# ---------------------------------------------------------------------------------------------
# Misc

def cgroup2_mount():
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if parts[2] == "cgroup2":
                return parts[1]
    return None


def own_cgroup_ino(pid):
    """Inode of the cgroup v2 directory of pid (its cgroup id)."""
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            if line.startswith("0::"):
                rel = line[3:].strip()
                return os.stat(cgroup2_mount() + rel).st_ino
    return None


def which(name):
    return shutil.which(name)
