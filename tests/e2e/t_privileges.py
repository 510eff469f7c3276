"""Least privilege and prompt stops (README, Security).

- privileges_dropped: while tracing, pktrace runs as nobody (or the -Z user) with every
  capability set empty and no_new_privs, and its events still match the wire exactly.
- output_file_safety: -o never follows a planted symbolic link (the root-only target stays
  as it was), new files are 0600 and belong to the -Z user, a place that user cannot write
  is refused before tracing starts with a message naming -Z.
- stop_with_stalled_reader: stdout is a full pipe nobody reads; one SIGINT ends pktrace
  within a second, with a summary that counts the events not written.
- command_ignoring_signals: -- COMMAND ignores SIGINT and SIGTERM; the first signal reaches
  it, the second ends pktrace (and the command) within a second.
- ring_buffer_size: -B sets the events map's size (bpftool), rounded up to a power of two.
- fifo_output: -o FIFO with no reader yet: a message, the wait, then every packet once a
  reader opens it; a stop signal while it waits ends pktrace at once.
"""
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import termios
import time

from e2elib import (PKTRACE, PYTHON, PEERS, Pktrace, Proc, bpf_ids_held_by, capture,
                    check_summary, expect_both_sides, log, match, own_cgroup_ino, parse_events,
                    peer, possible_cpus, rand_name, rand_port, read_pcap, ring_bytes_each, run,
                    run_pair, test)

NOBODY = 65534
SUMMARY_RX = (r"pktrace: (\d+) events written, (\d+) packets seen \((\d+) out of scope, "
              r"(\d+) without a known owner\), (\d+) events lost \((\d+) ring buffer full, "
              r"(\d+) decode errors, (\d+) malformed records, (\d+) not written\)")


def proc_status(pid):
    """/proc/PID/status as a dict of its fields (values as text)."""
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def check_dropped(pid, uid, gid):
    """pid runs as uid/gid everywhere, with every capability set empty and no_new_privs."""
    st = proc_status(pid)
    shown = {k: st.get(k) for k in ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff",
                                    "CapBnd", "CapAmb", "NoNewPrivs")}
    log("pktrace %d while tracing: %s" % (pid, shown))
    assert st["Uid"].split() == [str(uid)] * 4, "Uid (real, effective, saved, fs) %r, want %d" % (
        st["Uid"], uid)
    assert st["Gid"].split() == [str(gid)] * 4, "Gid %r, want %d" % (st["Gid"], gid)
    assert "0" not in st["Groups"].split(), "still in group root: %r" % st["Groups"]
    for cap in ("CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"):
        assert int(st[cap], 16) == 0, "%s is %s, want 0" % (cap, st[cap])
    assert st["NoNewPrivs"].strip() == "1", "NoNewPrivs %r" % st["NoNewPrivs"]


def owner(info):
    return {"pid": info["pid"], "name": info["name"], "tid": info["pid"], "ppid": os.getpid(),
            "uid": 0, "container": "", "host": socket.gethostname(),
            "cgroup": own_cgroup_ino(os.getpid())}


def writable_dir(w, name, uid=NOBODY):
    """A directory under w owned by uid (w itself is root's 0700 work directory)."""
    os.chmod(w, 0o755)
    d = os.path.join(w, name)
    os.mkdir(d, 0o755)
    os.chown(d, uid, uid)
    return d


@test
def privileges_dropped(w):
    """pktrace runs as nobody (or -Z USER) with no capability while its events match tshark."""
    port = rand_port()
    sn, cn = rand_name("e2s"), rand_name("e2c")
    pcap = os.path.join(w, "lo.pcap")
    with capture("lo", "tcp port %d" % port, pcap) as cap:
        pt = Pktrace(["-s", "comm=%s,%s" % (sn, cn)], w)
        try:
            pt.wait_ready()
            check_dropped(pt.proc.pid, NOBODY, NOBODY)
            srv, cli = run_pair(sn, cn, port, client_opts={"rounds": 4, "size": 300})
            # Still nobody after the traffic (map reads, /proc and cgroup reads, writes).
            check_dropped(pt.proc.pid, NOBODY, NOBODY)
            cap.stop()
            events = pt.stop()
        finally:
            pt.close()
    pkts = read_pcap(pcap)
    m = match(expect_both_sides(pkts, "lo", {port: owner(srv), cli["port"]: owner(cli)}),
              events)
    m.assert_exact("events traced as nobody")

    # -Z USER: another unprivileged user (daemon, uid 1 on Debian); -Z root keeps root.
    r = run(["getent", "passwd", "daemon"])
    uid, gid = (int(x) for x in r.stdout.split(":")[2:4])
    for args, want_uid, want_gid in ((["-Z", "daemon"], uid, gid),
                                     (["--relinquish-privileges", "root"], 0, 0)):
        pt = Pktrace(args + ["-s", "comm=" + rand_name("e2none")], w, tag="z%d" % want_uid)
        try:
            pt.wait_ready()
            if want_uid:
                check_dropped(pt.proc.pid, want_uid, want_gid)
            else:
                st = proc_status(pt.proc.pid)
                log("-Z root: Uid %s, CapEff %s" % (st["Uid"], st["CapEff"]))
                assert st["Uid"].split()[1] == "0" and int(st["CapEff"], 16), (
                    "-Z root did not keep root: %r %r" % (st["Uid"], st["CapEff"]))
            pt.stop()
        finally:
            pt.close()

    # An unknown -Z user: one line naming it, exit 2, nothing loaded.
    r = run([PKTRACE, "-Z", "no-such-user-e2e"], check=False)
    log("-Z no-such-user-e2e: exit %d, %r" % (r.returncode, r.stderr.strip()))
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and \
        "no-such-user-e2e" in r.stderr, "want exit 2 and one line, got %d %r" % (
            r.returncode, r.stderr)


def run_short(args, timeout=20):
    """pktrace ARGS that must fail before 'ready': (exit status, stderr lines)."""
    r = run([PKTRACE] + args + ["-s", "comm=" + rand_name("e2none")], check=False,
            timeout=timeout)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    log("pktrace %s: exit %d, stderr %r" % (" ".join(args), r.returncode, lines))
    return r.returncode, lines


@test
def output_file_safety(w):
    """-o: a planted symlink to a root-only file is not followed; new files are 0600 and the
    -Z user's; an unwritable place is refused before tracing, naming -Z."""
    # The target: a root-only 0600 file in a root-only directory.
    secret_dir = os.path.join(w, "root-only")
    os.mkdir(secret_dir, 0o700)
    target = os.path.join(secret_dir, "shadow")
    with open(target, "w") as f:
        f.write("precious\n")
    os.chmod(target, 0o600)
    before = os.stat(target)
    # The link, planted by an unprivileged user in a directory it owns.
    evil = writable_dir(w, "evil", uid=NOBODY)
    link = os.path.join(evil, "events.json")
    run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
         "ln", "-s", target, link])
    assert os.path.islink(link) and os.lstat(link).st_uid == NOBODY
    for args in (["-o", link], ["-Z", "root", "-o", link]):
        rc, lines = run_short(args)
        with open(target) as f:
            text = f.read()
        after = os.stat(target)
        assert text == "precious\n" and after.st_size == before.st_size and \
            after.st_mtime_ns == before.st_mtime_ns and after.st_mode == before.st_mode and \
            after.st_uid == 0, "the link's target was written to: %r, %r" % (text, after)
        assert rc == 1 and len(lines) == 1 and re.search(r"symbolic link", lines[0]) and \
            "ready" not in lines[0], "want exit 1 and one line about the link, got %d %r" % (
                rc, lines)

    # A place the -Z user cannot write (root's 0755 directory): refused, naming -Z.
    root_dir = os.path.join(w, "root-dir")
    os.mkdir(root_dir, 0o755)
    rc, lines = run_short(["-o", os.path.join(root_dir, "events.json")])
    assert rc == 1 and len(lines) == 1 and "-Z" in lines[0] and "nobody" in lines[0], (
        "want exit 1 and one line naming nobody and -Z, got %d %r" % (rc, lines))
    assert not os.listdir(root_dir), "a file was created: %r" % os.listdir(root_dir)

    # A new file: 0600, owned by the -Z user, holding the events.
    port, name = rand_port(), rand_name("e2o")
    out = os.path.join(evil, "new.json")
    pt = Pktrace(["-F", "json", "-o", out, "-s", "comm=" + name], w, tag="newfile", fmt=None)
    try:
        pt.wait_ready()
        run_pair(name, name, port)
        time.sleep(0.3)
        pt.proc.signal(signal.SIGINT)
        assert pt.proc.wait(10) == 0, "exit status: %s" % pt.stderr()
    finally:
        pt.close()
    st = os.stat(out)
    log("-o %s: mode %o, uid %d" % (out, st.st_mode & 0o7777, st.st_uid))
    assert st.st_mode & 0o7777 == 0o600, "new file has mode %o, want 600" % (st.st_mode & 0o7777)
    assert st.st_uid == NOBODY, "new file belongs to uid %d, want nobody" % st.st_uid
    events, problems = parse_events(out)
    assert events and not problems, "events %d, problems %r" % (len(events), problems[:3])
    check_summary(pt.stderr(), len(events))
    # -Z root writes where root can, still 0600.
    out = os.path.join(root_dir, "root.json")
    pt = Pktrace(["-Z", "root", "-o", out, "-s", "comm=" + rand_name("e2none")], w, tag="zr",
                 fmt=None)
    try:
        pt.wait_ready()
        pt.proc.signal(signal.SIGINT)
        assert pt.proc.wait(10) == 0
    finally:
        pt.close()
    st = os.stat(out)
    assert st.st_mode & 0o7777 == 0o600 and st.st_uid == 0, "-Z root file: mode %o uid %d" % (
        st.st_mode & 0o7777, st.st_uid)


def pipe_bytes(fd):
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")


def wchan(pid):
    """Where the kernel has task pid sleeping ("anon_pipe_write"), or "" if it runs or is gone."""
    try:
        with open("/proc/%d/wchan" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


@test
def stop_with_stalled_reader(w):
    """stdout is a pipe nobody reads, filled by traffic: one SIGINT ends pktrace within 1 s,
    exit 0, and the summary counts the events it could not write."""
    rfd, wfd = os.pipe()
    port, name = rand_port(), rand_name("e2stall")
    cmd = [PKTRACE, "-s", "comm=" + name]
    try:
        pt = Proc(cmd, stdout=wfd, name="pktrace")
        os.close(wfd)
        wfd = None
        pt.expect_err(r"pktrace: ready", timeout=30)
        size = fcntl.fcntl(rfd, 1032)  # F_GETPIPE_SZ
        with peer("server", name, port) as srv:
            srv.expect(r"^LISTENING")
            with peer("client", name, port, rounds=3000, size=64, nodelay=True) as cli:
                deadline = time.monotonic() + 20
                # Full: the pipe holds all it can, or pktrace sleeps in a write to it (pages
                # the kernel did not merge leave up to a page of room per write unused).
                while pipe_bytes(rfd) < size - 4096 and not (
                        pipe_bytes(rfd) >= size // 2 and
                        wchan(pt.p.pid).endswith("pipe_write")):
                    assert time.monotonic() < deadline, "pipe not full after 20 s: %d of %d" % (
                        pipe_bytes(rfd), size)
                    time.sleep(0.05)
                cli.expect(r"^DONE", 20)
            srv.expect(r"^DONE", 20)
        time.sleep(0.5)  # pktrace is now blocked writing its 1 MiB buffer
        assert pt.alive(), "pktrace ended by itself: %s" % pt.err.tail()
        t0 = time.monotonic()
        pt.signal(signal.SIGINT)
        try:
            rc = pt.p.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            raise AssertionError("pktrace still running 1 s after SIGINT with a stalled reader; "
                                 "stderr: %s" % pt.err.tail())
        took = time.monotonic() - t0
        err = pt.err.text()
    finally:
        if wfd is not None:
            os.close(wfd)
        os.close(rfd)
    log("SIGINT with a stalled reader: exit %d after %.2fs; stderr: %s" % (
        rc, took, err.replace("\n", " | ")[:400]))
    assert rc == 0, "exit %d; stderr %r" % (rc, err)
    sm = re.search(SUMMARY_RX, err)
    assert sm, "no summary: %r" % err
    W, P, O, N, L, R, D, M, U = (int(x) for x in sm.groups())
    assert U > 0, "summary counts no event 'not written': %s" % sm.group(0)
    assert L == R + D + M + U and W + L == P - O - N, "summary does not add up: %s" % (
        sm.group(0))


@test
def command_ignoring_signals(w):
    """-- COMMAND that ignores SIGINT and SIGTERM: the first signal goes to the command (which
    keeps the caller's identity), the second ends pktrace and the command within 1 s."""
    out = writable_dir(w, "out")
    script = 'trap "" INT TERM; echo CMD $$; exec sleep 30'
    cmd = [PKTRACE, "-F", "json", "-o", os.path.join(out, "events.json"), "--", "sh", "-c",
           script]
    with Proc(cmd, name="pktrace -- sh") as pt:
        pt.expect_err(r"pktrace: ready", timeout=30)
        cmd_pid = int(pt.expect(r"^CMD (\d+)").group(1))
        deadline = time.monotonic() + 5
        while proc_status(cmd_pid)["Name"] != "sleep":
            assert time.monotonic() < deadline, "the command never became sleep"
            time.sleep(0.02)
        cst = proc_status(cmd_pid)
        log("command %d: Uid %s CapEff %s; pktrace Uid %s" % (
            cmd_pid, cst["Uid"], cst["CapEff"], proc_status(pt.pid)["Uid"]))
        assert cst["Uid"].split()[0] == "0", "the command lost the caller's identity"
        check_dropped(pt.pid, NOBODY, NOBODY)
        ignored = cst["SigIgn"]
        assert int(ignored, 16) & ((1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))), \
            "scenario broken: the command does not ignore SIGINT/SIGTERM (%s)" % ignored
        pt.signal(signal.SIGINT)
        time.sleep(0.7)
        assert pt.alive(), "pktrace ended on the first signal although the command runs: %s" % (
            pt.err.tail())
        assert os.path.exists("/proc/%d" % cmd_pid), "the command ended on an ignored signal"
        t0 = time.monotonic()
        pt.signal(signal.SIGTERM)
        try:
            rc = pt.p.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            raise AssertionError("pktrace still running 1 s after the second signal; stderr: "
                                 "%s" % pt.err.tail())
        took = time.monotonic() - t0
        err = pt.err.text()
    log("second signal: exit %d after %.2fs; stderr %s" % (rc, took, err.replace("\n", " | ")))
    gone = False
    for _ in range(50):
        try:
            with open("/proc/%d/stat" % cmd_pid) as f:
                gone = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            gone = True
        if gone:
            break
        time.sleep(0.02)
    assert gone, "the command %d outlived pktrace" % cmd_pid
    assert rc == 128 + signal.SIGKILL, "want exit %d (the command killed), got %d" % (
        128 + signal.SIGKILL, rc)
    assert re.search(SUMMARY_RX, err), "no summary: %r" % err


@test
def reader_sched_batch(w):
    """The reader runs as SCHED_BATCH (its fair share, no wakeup preemption of the traced
    processes) with SCHED_RESET_ON_FORK, while -- COMMAND and the relay that starts it keep the
    caller's default policy: pktrace's scheduling never reaches what it runs."""
    out = writable_dir(w, "out")
    cmd = [PKTRACE, "-F", "json", "-o", os.path.join(out, "events.json"), "--", "sh", "-c",
           "echo CMD $$; exec sleep 30"]
    with Proc(cmd, name="pktrace -- sleep") as pt:
        pt.expect_err(r"pktrace: ready", timeout=30)
        cmd_pid = int(pt.expect(r"^CMD (\d+)").group(1))
        relay = int(proc_status(cmd_pid)["PPid"])
        mine = os.sched_getscheduler(pt.pid)
        theirs = {pid: os.sched_getscheduler(pid) for pid in (relay, cmd_pid)}
        log("policies: pktrace %#x, relay %d %#x, command %d %#x" % (
            mine, relay, theirs[relay], cmd_pid, theirs[cmd_pid]))
        assert relay != pt.pid, "scenario broken: the command is pktrace's own child"
        assert mine == os.SCHED_BATCH | os.SCHED_RESET_ON_FORK, (
            "pktrace's policy is %#x, not SCHED_BATCH with SCHED_RESET_ON_FORK" % mine)
        for pid, pol in theirs.items():
            assert pol == os.SCHED_OTHER, "process %d runs with policy %#x, not the default" % (
                pid, pol)
        # Ended by killing the command: a signal to pktrace would reach it only if the caller
        # had not left that signal ignored.
        os.kill(cmd_pid, signal.SIGKILL)
        rc = pt.p.wait(timeout=10)
    assert rc == 128 + signal.SIGKILL, "want exit %d (the command killed), got %d" % (
        128 + signal.SIGKILL, rc)


def ring_maps_of(pid):
    """bpftool's records of the ring buffer maps named pktrace_ring held by process pid."""
    ids = bpf_ids_held_by(pid)[1]
    maps = [json.loads(run(["bpftool", "-j", "map", "show", "id", str(i)]).stdout)
            for i in sorted(ids)]
    return [m for m in maps if m.get("type") == "ringbuf" and m.get("name") == "pktrace_ring"]


@test
def ring_buffer_size(w):
    """-B KIB sets the ring buffers: one per possible CPU, the total split between them, each
    rounded up to a power of two; by default 8 MiB in all but at least 1 MiB each."""
    ncpus = possible_cpus()
    each = ring_bytes_each
    for args, want in (([], each(8 << 20, 1 << 20)), (["-B", "1024"], each(1 << 20, 4096)),
                       (["--buffer-size", "100"], each(128 << 10, 4096)),
                       (["-B", "65536"], each(64 << 20, 4096))):
        pt = Pktrace(args + ["-s", "comm=" + rand_name("e2none")], w, tag="B%d" % want)
        try:
            pt.wait_ready()
            rings = ring_maps_of(pt.proc.pid)
            log("pktrace %s: %d ring buffers (%d possible CPUs), max_entries %s" % (
                " ".join(args) or "(default)", len(rings), ncpus,
                sorted(set(m["max_entries"] for m in rings))))
            assert len(rings) == ncpus, "%d ring buffers for %d CPUs" % (len(rings), ncpus)
            assert all(m["max_entries"] == want for m in rings), "max_entries %r, want %d" % (
                [m["max_entries"] for m in rings], want)
            pt.stop()
        finally:
            pt.close()
    # A small ring still carries the events of an exchange (compared in count only).
    port, name = rand_port(), rand_name("e2B")
    pt = Pktrace(["-B", "64", "-s", "comm=" + name], w, tag="small")
    try:
        pt.wait_ready()
        run_pair(name, name, port)
        events = pt.stop()
    finally:
        pt.close()
    assert events, "no event through a 64 KiB ring"
    for bad in ("63", "1048577", "8M"):
        r = run([PKTRACE, "-B", bad], check=False)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "-B" in r.stderr, (
            "-B %s: exit %d, %r" % (bad, r.returncode, r.stderr))


@test
def fifo_output(w):
    """-o FIFO before anyone reads it: pktrace says it waits for a reader, starts once one opens
    the FIFO and writes every packet of a pair (tcpdump's) to it; a stop signal while it waits
    ends it within a second with a message"""
    fifo = os.path.join(writable_dir(w, "fifo"), "events.fifo")
    os.mkfifo(fifo)
    os.chmod(fifo, 0o666)
    port, sn, cn = rand_port(), rand_name("ffs"), rand_name("ffc")
    pcap = os.path.join(w, "lo.pcap")
    pt = Proc([PKTRACE, "-F", "json", "-o", fifo, "-s", "comm=%s,%s" % (sn, cn)], name="pktrace")
    try:
        pt.expect_err(r"pktrace: waiting for a reader of the FIFO", timeout=20)
        assert not any("ready" in l for l in pt.err.lines), pt.err.text()
        with open(fifo) as reader:
            pt.expect_err(r"pktrace: ready", timeout=20)
            with capture("lo", "tcp port %d" % port, pcap) as cap:
                srv, cli = run_pair(sn, cn, port)
                cap.stop()
            time.sleep(0.3)
            pt.signal(signal.SIGINT)
            text = reader.read()
            assert pt.wait(10) == 0, pt.err.text()
    finally:
        pt.close()
    out = os.path.join(w, "from_fifo.jsonl")
    with open(out, "w") as f:
        f.write(text)
    events, problems = parse_events(out)
    assert not problems, problems[:5]
    m = match(expect_both_sides(read_pcap(pcap), "lo", {
        port: owner(srv), cli["port"]: owner(cli)}), events)
    m.assert_exact("-o FIFO")
    check_summary(pt.err.text(), len(events))

    pt = Proc([PKTRACE, "-F", "json", "-o", fifo, "-s", "comm=" + sn], name="pktrace")
    try:
        pt.expect_err(r"pktrace: waiting for a reader of the FIFO", timeout=20)
        started = time.monotonic()
        pt.signal(signal.SIGTERM)
        rc = pt.wait(5)
        took = time.monotonic() - started
    finally:
        pt.close()
    assert rc != 0 and took < 1 and "stopped while waiting for a reader" in pt.err.text(), (
        rc, took, pt.err.text())
    # ENXIO from anything but a FIFO (a Unix socket's file) is an error at once, not a wait.
    sock_path = os.path.join(os.path.dirname(fifo), "sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock_path)
    r = subprocess.run([PKTRACE, "-Z", "root", "-o", sock_path, "-s", "comm=" + sn],
                       capture_output=True, text=True, timeout=20)
    s.close()
    assert r.returncode == 1 and "No such device or address" in r.stderr and \
        "waiting" not in r.stderr, (r.returncode, r.stderr)
    log("-o FIFO: waited for its reader, then %d events; SIGTERM while waiting: exit %d in "
        "%.2f s" % (len(events), rc, took))
