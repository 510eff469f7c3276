#!/usr/bin/python3
"""Traffic generators for the pktrace end-to-end tests (standard library only).

Every mode renames its process with prctl(PR_SET_NAME) *before* it creates any
socket, so pktrace sees the distinctive name from the socket's creation on, and
reports progress as single lines on stdout ("PID 123", "LISTENING 4242", ...)
that the test harness waits for.

Modes:
  server      listen, accept --accept-count connections one after another, echo
  forkserver  listen in the parent, fork a worker (own name) that accepts and echoes
  client      connect, --rounds request/response exchanges, then close
  forkclient  the parent forks a child (own name) that runs a client, waits, exits --exit-code

--nodelay sets TCP_NODELAY on the client's socket and on each accepted one (every small
message leaves at once, as one segment).

Closing (--close):
  graceful  shutdown(SHUT_WR), read to EOF, wait until the kernel reports the
            connection closed, then close(): every packet passes a full socket
  plain     close() as soon as the exchange is done (the client's socket goes
            to timewait; its last packets are the known cgroup_skb gap)
  rst       SO_LINGER {1, 0} then close(): the connection ends with a RST
"""
import argparse
import ctypes
import os
import socket
import struct
import sys
import time

PR_SET_NAME = 15
TCP_CLOSE = 7
TCP_TIME_WAIT = 6
TIMEOUT = 20.0  # every blocking socket call is bounded


def set_name(name):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def say(*words):
    # os.write, not print: no stdio buffer can be duplicated across fork().
    os.write(1, (" ".join(str(w) for w in words) + "\n").encode())


def join_cgroup(path):
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def family_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def tcp_state(sock):
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return info[0]


def wait_state(sock, states, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tcp_state(sock) in states:
            return True
        time.sleep(0.005)
    return False


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_to_eof(sock):
    total = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return total
        total += len(chunk)


def finish(sock, how, plain_delay=0.0):
    """End a connection whose peer may still be sending (server side: after EOF)."""
    if how == "graceful":
        sock.shutdown(socket.SHUT_WR)
        read_to_eof(sock)
        # LAST_ACK -> CLOSE when our FIN is acked; FIN_WAIT2 -> TIME_WAIT/CLOSE on the peer's FIN.
        wait_state(sock, (TCP_CLOSE, TCP_TIME_WAIT))
        sock.close()
    elif how == "plain":
        if plain_delay:
            time.sleep(plain_delay)
        sock.close()
    elif how == "rst":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    else:
        raise ValueError(how)


def echo(conn):
    """Echo until EOF or reset; return the number of bytes echoed."""
    total = 0
    while True:
        try:
            data = conn.recv(65536)
        except ConnectionResetError:
            return -1
        if not data:
            return total
        conn.sendall(data.upper())
        total += len(data)


def serve_one(conn, args):
    if args.greet:
        conn.sendall(b"!")
    n = echo(conn)
    if n < 0:
        say("RESET")
        conn.close()
        return
    say("EOF", n)
    finish(conn, args.close, args.plain_delay)
    say("CLOSED")


def listener(args):
    s = socket.socket(family_of(args.bind), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(TIMEOUT)
    s.bind((args.bind, args.port))
    s.listen(8)
    return s


def mode_server(args):
    set_name(args.name)
    if args.cgroup:
        join_cgroup(args.cgroup)
    say("PID", os.getpid())
    s = listener(args)
    say("LISTENING", s.getsockname()[1])
    for _ in range(args.accept_count):
        conn, peer = s.accept()
        conn.settimeout(TIMEOUT)
        if args.nodelay:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        say("ACCEPTED", peer[1])
        serve_one(conn, args)
    s.close()
    say("DONE")


def mode_forkserver(args):
    set_name(args.name)
    say("PID", os.getpid())
    s = listener(args)
    say("LISTENING", s.getsockname()[1])
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            set_name(args.worker_name)
            say("WORKER", os.getpid())
            conn, peer = s.accept()
            conn.settimeout(TIMEOUT)
            if args.nodelay:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            say("ACCEPTED", peer[1])
            serve_one(conn, args)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    say("WORKER_EXIT", os.waitstatus_to_exitcode(status))
    s.close()
    sys.exit(0 if os.waitstatus_to_exitcode(status) == 0 else 1)


def run_client(args):
    family = family_of(args.connect)
    c = socket.socket(family, socket.SOCK_STREAM)
    c.settimeout(TIMEOUT)
    if args.nodelay:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if args.ip_options:
        # Raw IPv4 options, or an IPv6 destination-options header, on every packet we send.
        opts = bytes.fromhex(args.ip_options)
        if family == socket.AF_INET:
            c.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, opts)
        else:
            c.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, opts)
    c.connect((args.connect, args.port))
    say("CONNECTED", c.getsockname()[1])
    if args.wait_greet:
        if recv_exact(c, 1) != b"!":
            raise ConnectionError("bad greeting")
        say("GREETED")
    if args.pause:
        # Connected; wait for a line on stdin before exchanging anything.
        sys.stdin.readline()
    deadline = time.monotonic() + args.duration if args.duration else None
    for i in range(args.rounds):
        if deadline and time.monotonic() > deadline:
            break
        msg = (b"req%d-" % i).ljust(args.size, b"x")
        c.sendall(msg)
        if recv_exact(c, len(msg)) != msg.upper():
            raise ConnectionError("bad response")
        if args.interval:
            time.sleep(args.interval)
    if args.oob:
        c.send(b"u", socket.MSG_OOB)
        time.sleep(0.05)
    if args.close == "graceful":
        finish(c, "graceful")
    else:
        finish(c, args.close)
    say("DONE")


def mode_client(args):
    set_name(args.name)
    if args.cgroup:
        join_cgroup(args.cgroup)
    say("PID", os.getpid())
    if args.go:
        # Wait for a "go" line on stdin before connecting.
        sys.stdin.readline()
    run_client(args)
    if args.linger:
        time.sleep(args.linger)


def mode_forkclient(args):
    set_name(args.name)
    say("PARENT", os.getpid())
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            set_name(args.child_name)
            say("CHILD", os.getpid())
            run_client(args)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    child = os.waitstatus_to_exitcode(status)
    say("CHILD_EXIT", child)
    sys.exit(args.exit_code if child == 0 else 100 + max(child, 0))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["server", "forkserver", "client", "forkclient"])
    p.add_argument("--name", required=True)
    p.add_argument("--worker-name", default="e2e-worker")
    p.add_argument("--child-name", default="e2e-child")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--connect", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--accept-count", type=int, default=1)
    p.add_argument("--greet", action="store_true", help="server sends b'!' right after accept")
    p.add_argument("--wait-greet", action="store_true", help="client waits for b'!' first")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--nodelay", action="store_true",
                   help="TCP_NODELAY on the client socket / the server's accepted sockets")
    p.add_argument("--interval", type=float, default=0.0)
    p.add_argument("--duration", type=float, default=0.0)
    p.add_argument("--oob", action="store_true", help="client sends one urgent byte")
    p.add_argument("--close", choices=["graceful", "plain", "rst"], default="graceful")
    p.add_argument("--plain-delay", type=float, default=0.0,
                   help="server: wait this long after EOF before a plain close")
    p.add_argument("--cgroup", help="move into this cgroup v2 directory before any socket")
    p.add_argument("--go", action="store_true", help="client: wait for a line on stdin")
    p.add_argument("--pause", action="store_true",
                   help="client: once connected, wait for a line on stdin")
    p.add_argument("--exit-code", type=int, default=0)
    p.add_argument("--ip-options", help="client: hex of IPv4 options / IPv6 dest. options")
    p.add_argument("--linger", type=float, default=0.0,
                   help="client: stay alive this long after the exchange")
    args = p.parse_args()
    {"server": mode_server, "forkserver": mode_forkserver,
     "client": mode_client, "forkclient": mode_forkclient}[args.mode](args)


if __name__ == "__main__":
    main()
