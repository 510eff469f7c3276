#!/usr/bin/python3
"""pktrace benchmark on a real server: nginx (2 workers) answering ab over loopback, a new
connection per request (keepalive off), so every request is a handshake, one request and reply,
and a teardown: what tracing costs a busy web server, per connection as well as per packet.

Each round runs every configuration right after an untraced run (its neighbour) and takes the
ratio of the two: the host's speed drifts more between minutes than most tracers cost. Prints
and writes bench/web-results.md (BENCH_WEB_RESULTS): per configuration the median slowdown of
the requests/s, the machine's extra busy CPU per request, both against tcpdump's, pktrace's
events, losses and events out of timestamp order; then, from one more run with the kernel's
BPF statistics on, each pktrace program's runs and ns per run and its us per request.

Run as root: make bench-web. Knobs (environment): BENCH_WEB_REQUESTS per run (20000),
BENCH_WEB_CONC (8), BENCH_WEB_ROUNDS (3), BENCH_WEB_PORT (47480). Nothing is asserted: it fails
only if the traffic cannot run (ab errors, nginx does not start).
"""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKTRACE = os.path.join(REPO, "pktrace")
REQUESTS = int(os.environ.get("BENCH_WEB_REQUESTS", "20000"))
CONC = int(os.environ.get("BENCH_WEB_CONC", "8"))
ROUNDS = int(os.environ.get("BENCH_WEB_ROUNDS", "3"))
PORT = int(os.environ.get("BENCH_WEB_PORT", "47480"))
RESULTS = os.environ.get("BENCH_WEB_RESULTS", os.path.join(REPO, "bench", "web-results.md"))
HZ = os.sysconf("SC_CLK_TCK")
SCOPE = ["-s", "comm=nginx,ab"]

CONFIGS = [
    ("tcpdump", ["tcpdump", "-i", "lo", "-B", "131072", "-w", "/dev/null",
                 "tcp port %d" % PORT], "tcpdump -w, the same port"),
    ("pktrace-json", [PKTRACE, "-F", "json", "-o", "/dev/null"] + SCOPE,
     "`-F json`, scoped to nginx and ab"),
    ("pktrace-pcapng", [PKTRACE, "-w", "/dev/null"] + SCOPE, "`-w` pcapng, scoped"),
    ("pktrace-flows", [PKTRACE, "-e", "flows", "-F", "json", "-o", "/dev/null"] + SCOPE,
     "`-e flows` (flow events only), scoped"),
    ("pktrace-nomatch", [PKTRACE, "-F", "json", "-o", "/dev/null", "-s", "comm=nomatch"],
     "a scope no process matches"),
]

NGINX_CONF = """\
worker_processes 2;
pid {w}/nginx.pid;
error_log {w}/error.log;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_timeout 0;
    client_body_temp_path {w}/t1; proxy_temp_path {w}/t2; fastcgi_temp_path {w}/t3;
    uwsgi_temp_path {w}/t4; scgi_temp_path {w}/t5;
    server {{ listen 127.0.0.1:{port}; root {w}/html; }}
}}
"""


def die(msg):
    sys.exit("bench/web.py: " + msg)


def busy_ticks():
    """Clock ticks all CPUs spent busy so far (user nice system irq softirq)."""
    with open("/proc/stat") as f:
        v = f.readline().split()
    return int(v[1]) + int(v[2]) + int(v[3]) + int(v[6]) + int(v[7])


def ab():
    """One ab run: (requests/s, busy CPU us per request)."""
    b0 = busy_ticks()
    r = subprocess.run(["ab", "-q", "-n", str(REQUESTS), "-c", str(CONC),
                        "http://127.0.0.1:%d/" % PORT], capture_output=True, text=True,
                       timeout=300)
    b1 = busy_ticks()
    rps = re.search(r"Requests per second:\s+([\d.]+)", r.stdout)
    failed = re.search(r"Failed requests:\s+(\d+)", r.stdout)
    if r.returncode or not rps or not failed or failed.group(1) != "0":
        die("ab failed: %s %s" % (r.stdout[-300:], r.stderr[-300:]))
    return float(rps.group(1)), (b1 - b0) * 1e6 / HZ / REQUESTS


def start_tracer(cmd, err):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    deadline = time.monotonic() + 30
    ready = "listening on" if cmd[0] == "tcpdump" else "pktrace: ready"
    while time.monotonic() < deadline:
        with open(err.name) as f:
            if ready in f.read():
                return p
        if p.poll() is not None:
            break
        time.sleep(0.05)
    p.kill()
    with open(err.name) as f:
        die("%s did not start: %s" % (cmd[0], f.read()[-400:]))


def stop_tracer(p, err):
    time.sleep(0.5)  # what the rings still hold
    p.send_signal(signal.SIGINT)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        die("%s did not stop" % p.args[0])
    with open(err.name) as f:
        return f.read()


def summary(text):
    """pktrace's own counts from its summary: written, lost, out of order."""
    m = re.search(r"(\d+) events written, (\d+) packets seen.*?(\d+) events lost", text)
    late = re.search(r"events out of timestamp order: (\d+)", text)
    if not m:
        return {}
    return {"events": int(m.group(1)), "lost": int(m.group(3)),
            "late": int(late.group(1)) if late else 0}


def prog_ids(pid):
    """BPF program ids the process holds, from its fds."""
    ids = set()
    for fd in os.listdir("/proc/%d/fdinfo" % pid):
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                m = re.search(r"^prog_id:\s+(\d+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    return ids


def prog_stats(ids):
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True)
    return {p["id"]: (p.get("name", "?"), p.get("run_time_ns", 0), p.get("run_cnt", 0))
            for p in json.loads(out.stdout or "[]") if p["id"] in ids}


STATS_SWITCH = "/proc/sys/kernel/bpf_stats_enabled"


def stats_switch(value):
    """The host-wide switch of the kernel's BPF statistics; returns what it was."""
    with open(STATS_SWITCH) as f:
        was = f.read().strip()
    with open(STATS_SWITCH, "w") as f:
        f.write(value)
    return was


def traced_run(name, cmd, w, stats=False):
    with open(os.path.join(w, name + ".err"), "w+") as err:
        p = start_tracer(cmd, err)
        ids, before = set(), {}
        if stats:
            ids = prog_ids(p.pid)
            stats_switch("1")
            before = prog_stats(ids)
        try:
            rps, cpu = ab()
        finally:
            if stats:
                after = prog_stats(ids)
                stats_switch("0")
            text = stop_tracer(p, err)
    progs = {}
    if stats:
        for i, (n, t, c) in after.items():
            t0, c0 = before.get(i, (n, 0, 0))[1:]
            if c > c0:
                progs[n] = (c - c0, t - t0)
    return rps, cpu, summary(text), progs


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    if os.geteuid():
        die("run as root (make bench-web)")
    for tool in ("nginx", "ab", "tcpdump", "bpftool"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            die("%s is missing: scripts/install-deps installs it" % tool)
    if not os.access(PKTRACE, os.X_OK):
        die("build pktrace first (make)")
    w = tempfile.mkdtemp(prefix="pktrace-bench-web-")
    os.chmod(w, 0o755)
    os.mkdir(os.path.join(w, "html"))
    with open(os.path.join(w, "html", "index.html"), "w") as f:
        f.write("pktrace bench\n" * 40)  # 560 bytes: one reply segment
    with open(os.path.join(w, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(w=w, port=PORT))
    nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-p", w, "-c",
                              os.path.join(w, "nginx.conf")], start_new_session=True)
    try:
        time.sleep(0.5)
        if nginx.poll() is not None:
            die("nginx did not start (port %d in use?)" % PORT)
        ab()  # warm-up: nginx's workers, the page cache, the ports
        runs = {n: [] for n, _, _ in CONFIGS}
        for r in range(ROUNDS):
            for name, cmd, _ in CONFIGS:
                base = ab()
                rps, cpu, sm, _ = traced_run(name, cmd, w)
                runs[name].append((base, (rps, cpu), sm))
                print("round %d %-16s %8.0f req/s (untraced %8.0f)  CPU %6.1f us/req "
                      "(untraced %6.1f)  %s" % (r + 1, name, rps, base[0], cpu, base[1], sm),
                      flush=True)
        progs = {}
        for name, cmd, _ in CONFIGS:
            if name.startswith("pktrace"):
                progs[name] = traced_run(name, cmd, w, stats=True)[3]
    finally:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(nginx.pid, signal.SIGKILL)
        shutil.rmtree(w, ignore_errors=True)
    report(runs, progs)


def report(runs, progs):
    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip() or "?"
    slow = {n: med([b[0] / t[0] for b, t, _ in rs]) for n, rs in runs.items()}
    extra = {n: med([t[1] - b[1] for b, t, _ in rs]) for n, rs in runs.items()}
    base = med([b[0] for rs in runs.values() for b, _, _ in rs])
    base_cpu = med([b[1] for rs in runs.values() for b, _, _ in rs])
    # The noise: how far two neighbouring untraced runs of the same round differ.
    bases = [b[0] for rs in zip(*runs.values()) for b, _, _ in rs]
    noise = med([max(a, b) / min(a, b) for a, b in zip(bases, bases[1:])])
    lines = [
        "# pktrace on a web server: nginx + ab, a connection per request",
        "",
        "`make bench-web` at %s, %s: nginx (2 workers) serving a 560-byte page over "
        "127.0.0.1 to `ab -n %d -c %d` (keepalive off: each request is a handshake, a request "
        "and a reply, and a teardown, about 10 packets), %d rounds, each run right after an "
        "untraced one. Untraced: %.0f requests/s, %.1f us of busy CPU per request (all CPUs); "
        "two neighbouring untraced runs differ by %.2f times (median)." % (
            rev, time.strftime("%Y-%m-%d %H:%M"), REQUESTS, CONC, ROUNDS, base, base_cpu,
            noise),
        "",
        "| run | slowdown | / tcpdump's | extra busy CPU us per request | / tcpdump's | "
        "events per request | lost | out of timestamp order |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, _, what in CONFIGS:
        rs = runs[name]
        ev = [s.get("events") for _, _, s in rs if s]
        lost = sum(s.get("lost", 0) for _, _, s in rs if s)
        late = sum(s.get("late", 0) for _, _, s in rs if s)
        tcp = name == "tcpdump"
        lines.append("| %s | %.2f | %s | %.1f | %s | %s | %s | %s |" % (
            what, slow[name], "" if tcp else "%.2f" % ((slow[name] - 1) / max(
                slow["tcpdump"] - 1, 1e-9) if slow["tcpdump"] > 1 else float("nan")),
            extra[name], "" if tcp else "%.2f" % (extra[name] / extra["tcpdump"]
                                                 if extra["tcpdump"] > 0 else float("nan")),
            "" if tcp else "%.1f" % (med(ev) / REQUESTS) if ev else "",
            "" if tcp else lost, "" if tcp else late))
    lines += [
        "",
        "\"/ tcpdump's\": the slowdown's excess (slowdown - 1) and the extra CPU, each divided "
        "by tcpdump's. Lost and out of order: summed over the rounds, from pktrace's summary.",
        "",
        "BPF programs, one more run each with the kernel's statistics on (they add about 20 ns "
        "a run): runs per request, ns per run, us per request.",
        "",
        "| run | program | runs / request | ns / run | us / request |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, _, what in CONFIGS:
        total = 0
        for prog, (cnt, ns) in sorted(progs.get(name, {}).items()):
            total += ns
            lines.append("| %s | %s | %.1f | %.0f | %.2f |" % (
                name, prog, cnt / REQUESTS, ns / cnt, ns / REQUESTS / 1000))
        if name in progs:
            lines.append("| %s | all | | | **%.2f** |" % (name, total / REQUESTS / 1000))
    text = "\n".join(lines) + "\n"
    with open(RESULTS, "w") as f:
        f.write(text)
    print("\n" + text)


if __name__ == "__main__":
    # Off for every run but the statistics' own (left on, e.g. by a profiling session, it adds
    # two clock reads to every BPF program run), and back to what it was at the end.
    ROOT = os.geteuid() == 0
    STATS_WAS = stats_switch("0") if ROOT else "0"
    if STATS_WAS != "0":
        print("bench-web: kernel.bpf_stats_enabled was %s: 0 for the bench, restored at its end"
              % STATS_WAS, file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # through the finally below
    try:
        main()
    finally:
        if ROOT:
            stats_switch(STATS_WAS)
