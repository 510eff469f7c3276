#!/usr/bin/python3
"""Traffic generators for the pktrace end-to-end tests (standard library only).

Every mode renames its process with prctl(PR_SET_NAME) *before* it creates any
socket, so pktrace sees the distinctive name from the socket's creation on, and
reports progress as single lines on stdout ("PID 123", "LISTENING 4242", ...)
that the test harness waits for.

Modes:
  server      listen, accept --accept-count connections one after another, echo
  forkserver  listen in the parent, fork a worker (own name) that accepts and echoes
  client      connect, --rounds request/response exchanges, then close (--repeat times, from
              the same port if --local-port)
  forkclient  the parent forks a child (own name) that runs a client, waits, exits --exit-code
  acceptfork  listen and accept in the parent, fork a child (own name) that does all the I/O;
              the parent closes its copy of the connection at once
  fdsend      listen, accept, pass the connection over a Unix socket (--unix) with
              SCM_RIGHTS to an fdrecv process, close it without touching it
  fdrecv      bind --unix, receive one connection's fd and serve it (echo)
  threadserver  accept in the main thread; thread --reader-name receives every request,
              thread --sender-name sends every response (see threadclient)
  threadclient  connect; each round sends a request in two halves --gap apart, reads the
              two-half response, waits --gap
  refused     bind a port, connect to a closed port, expect ECONNREFUSED
  backlog     listen (--backlog) and never accept; close the listener on a line on stdin
  queued      connect, send --send-bytes at once, wait for the reset (or EOF)
  synflood    send --count SYNs from a raw socket (random source ports, --spoof-net: random
              source addresses), nothing else
  sink        accept one connection, read until EOF or reset ("READ <total>" after each
              read), then "EOF"/"RESET", "DIGEST <md5 of the bytes>"
  ext6inject  raw AF_PACKET TCP client on --iface (no kernel socket): handshake from --src to
              --connect:--port, then one in-window data segment per --chains entry wrapped in
              that IPv6 extension-header chain, each waiting for the server's ACK
              ("SEG <name> <seq> <len> ACKED|NOACK"), then an in-window RST
  mptcpserver, mptcpclient  server/client of an IPPROTO_MPTCP socket (as server/client)
  lateaccept  listen (--backlog) in the parent; a forked worker (--worker-name) waits for a
              line on stdin, then accepts --count connections, sending one byte on each and
              closing it (close(), FIN) before the next accept; --silent: no byte;
              --no-addr: accept(fd, NULL, NULL); --monitor-name: a forked child of that
              name calls getpeername() on each before the worker goes on; --close-delay
              SEC between the accept and the close
  altclient   connect, fork; the parent and the child take turns sending on the socket (see
              mode_altclient)
  handover    serve --count connections (or, --udp, datagrams) one after another: read a
              request, fork a child (--child-name) that takes the socket, drops to --setuid
              UID if given, sends --size bytes, reads one more request, sends --size bytes and
              exits ("CHILD <pid>" per connection); the parent closes its copy at once (or,
              --parent-closes-last, once the child has exited: its close sends the FIN). With
              --udp one socket serves every request, each child on it in turn.
  manyclients connect --count times (each waits for the handshake), then read one byte on
              each, then close each with a RST (SO_LINGER 0): no timewait left behind

--io-delay (forkserver, acceptfork, fdrecv): sleep after the accept/hand-over before the first
send or receive on the connection, so data and ACKs reach it before anyone has used it; the
peer says "FIRSTIO <epoch seconds>" just before that first use.

--nodelay sets TCP_NODELAY on the client's socket and on each accepted one (every small
message leaves at once, as one segment).

Closing (--close):
  graceful  shutdown(SHUT_WR), read to EOF, wait until the kernel reports the
            connection closed, then close(): every packet passes a full socket
  plain     close() as soon as the exchange is done (the side that closes first
            ends in timewait, and the peer's FIN and the final ACK pass it)
  rst       SO_LINGER {1, 0} then close(): the connection ends with a RST
--close-after-bytes N (server): echo N bytes, then close at once (the server closes first);
--wait-eof (client, plain close): read to EOF, wait --plain-delay, then close.
"""
import argparse
import array
import ctypes
import os
import queue
import random
import socket
import struct
import sys
import threading
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


def wait_acked(sock, timeout=5.0):
    """Wait until the peer has acknowledged everything sent (SIOCOUTQ: bytes not yet acked)."""
    import fcntl
    import termios
    deadline = time.monotonic() + timeout
    buf = array.array("i", [0])
    while True:
        fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf, True)
        if not buf[0]:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("%d bytes not acknowledged" % buf[0])
        time.sleep(0.001)


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


def echo(conn, limit=0):
    """Echo until EOF or reset (or limit bytes); return the number of bytes echoed."""
    total = 0
    while not limit or total < limit:
        try:
            data = conn.recv(min(65536, limit - total) if limit else 65536)
        except ConnectionResetError:
            return -1
        if not data:
            return total
        conn.sendall(data.upper())
        total += len(data)
    return total


def first_io(args):
    """Before the first send/receive on a connection: wait --io-delay, then say when."""
    if args.io_delay:
        time.sleep(args.io_delay)
    say("FIRSTIO", "%.6f" % time.time())


def serve_one(conn, args):
    if args.greet:
        conn.sendall(b"!")
    n = echo(conn, args.close_after_bytes)
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
            first_io(args)
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
    if args.local_port:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        c.bind(("", args.local_port))
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
    elif args.close == "plain" and args.wait_eof:
        n = read_to_eof(c)
        say("EOF", n)
        finish(c, "plain", args.plain_delay)
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
    for i in range(args.repeat):
        if i:
            # The last connection's close has to complete before its addresses are free.
            time.sleep(0.2)
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


def mode_acceptfork(args):
    set_name(args.name)
    say("PID", os.getpid())
    s = listener(args)
    say("LISTENING", s.getsockname()[1])
    conn, peer = s.accept()
    say("ACCEPTED", peer[1])
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            set_name(args.worker_name)
            s.close()
            say("WORKER", os.getpid())
            conn.settimeout(TIMEOUT)
            first_io(args)
            serve_one(conn, args)
            code = 0
        finally:
            os._exit(code)
    conn.close()  # only the child's copy is left
    say("PARENT_CLOSED")
    _, status = os.waitpid(pid, 0)
    say("WORKER_EXIT", os.waitstatus_to_exitcode(status))
    s.close()
    sys.exit(0 if os.waitstatus_to_exitcode(status) == 0 else 1)


def mode_fdsend(args):
    set_name(args.name)
    say("PID", os.getpid())
    s = listener(args)
    say("LISTENING", s.getsockname()[1])
    conn, peer = s.accept()
    say("ACCEPTED", peer[1])
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(TIMEOUT)
    u.connect(args.unix)
    u.sendmsg([b"F"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                        array.array("i", [conn.fileno()]).tobytes())])
    conn.close()  # never sent or received on here
    say("PASSED")
    u.recv(1)  # the receiver closes its end once it has the fd
    u.close()
    s.close()
    say("DONE")


def mode_fdrecv(args):
    set_name(args.name)
    say("PID", os.getpid())
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(TIMEOUT)
    u.bind(args.unix)
    u.listen(1)
    say("READY")
    c, _ = u.accept()
    c.settimeout(TIMEOUT)
    fds = array.array("i")
    _, anc, _, _ = c.recvmsg(1, socket.CMSG_LEN(fds.itemsize))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[:fds.itemsize])
    if not fds:
        raise ConnectionError("no fd received")
    c.close()
    u.close()
    conn = socket.socket(fileno=fds[0])
    conn.settimeout(TIMEOUT)
    say("RECEIVED", conn.getpeername()[1])
    first_io(args)
    serve_one(conn, args)
    say("DONE")


def mode_threadserver(args):
    """Main thread accepts and never touches the connection; the reader thread receives
    each request (two halves of --size bytes) and hands it to the sender thread, which waits
    --gap, sends the first half of the response, waits --gap, sends the second half."""
    set_name(args.name)
    say("PID", os.getpid())
    s = listener(args)
    say("LISTENING", s.getsockname()[1])
    conn, peer = s.accept()
    conn.settimeout(TIMEOUT)
    say("ACCEPTED", peer[1])
    work = queue.Queue()
    errors = []

    def reader():
        try:
            set_name(args.reader_name)
            say("READER", threading.get_native_id())
            while True:
                first = conn.recv(args.size)
                if not first:
                    break
                first += recv_exact(conn, args.size - len(first))
                second = recv_exact(conn, args.size)
                work.put(first + second)
            say("READER_EOF")
            work.put(None)
            time.sleep(args.gap)
            finish(conn, "graceful")
        except Exception as e:  # noqa: BLE001
            errors.append("reader: %r" % e)
            work.put(None)

    def sender():
        try:
            set_name(args.sender_name)
            say("SENDER", threading.get_native_id())
            while True:
                req = work.get()
                if req is None:
                    return
                time.sleep(args.gap)
                conn.sendall(req[:args.size].upper())
                time.sleep(args.gap)
                conn.sendall(req[args.size:].upper())
        except Exception as e:  # noqa: BLE001
            errors.append("sender: %r" % e)

    threads = [threading.Thread(target=reader), threading.Thread(target=sender)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s.close()
    if errors:
        say("ERROR", "; ".join(errors))
        sys.exit(1)
    say("DONE")


def mode_threadclient(args):
    set_name(args.name)
    say("PID", os.getpid())
    c = socket.socket(family_of(args.connect), socket.SOCK_STREAM)
    c.settimeout(TIMEOUT)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.connect((args.connect, args.port))
    say("CONNECTED", c.getsockname()[1])
    for i in range(args.rounds):
        first = (b"A%d-" % i).ljust(args.size, b"a")
        second = (b"B%d-" % i).ljust(args.size, b"b")
        c.sendall(first)
        time.sleep(args.gap)
        c.sendall(second)
        if recv_exact(c, 2 * args.size) != (first + second).upper():
            raise ConnectionError("bad response")
        time.sleep(args.gap)
    finish(c, "graceful")
    say("DONE")


def mode_refused(args):
    set_name(args.name)
    say("PID", os.getpid())
    c = socket.socket(family_of(args.connect), socket.SOCK_STREAM)
    c.settimeout(TIMEOUT)
    c.bind((args.connect, 0))  # an explicit bind keeps the port after the failed connect
    say("BOUND", c.getsockname()[1])
    try:
        c.connect((args.connect, args.port))
    except ConnectionRefusedError:
        say("REFUSED")
    else:
        raise ConnectionError("connect to a closed port succeeded")
    c.close()
    say("DONE")


def mode_backlog(args):
    set_name(args.name)
    say("PID", os.getpid())
    s = socket.socket(family_of(args.bind), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.bind, args.port))
    s.listen(args.backlog)
    say("LISTENING", s.getsockname()[1])
    sys.stdin.readline()
    s.close()  # every connection still in the accept queue is reset
    say("CLOSED", "%.6f" % time.time())
    if args.linger:
        time.sleep(args.linger)
    say("DONE")


def mode_queued(args):
    set_name(args.name)
    say("PID", os.getpid())
    c = socket.socket(family_of(args.connect), socket.SOCK_STREAM)
    c.settimeout(TIMEOUT)
    c.connect((args.connect, args.port))
    say("CONNECTED", c.getsockname()[1])
    if args.send_bytes:
        c.sendall(b"q" * args.send_bytes)
    try:
        data = c.recv(1)
        say("EOF" if not data else "DATA")
    except ConnectionResetError:
        say("RESET")
    c.close()
    say("DONE")


def tcp_checksum(src, dst, segment):
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6,
                                                                         len(segment))
    data = pseudo + segment
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def mode_synflood(args):
    """--count SYNs (MSS option) from random source ports to --connect:--port through a raw
    socket: from --connect itself, or with --spoof-net A.B from random addresses A.B.x.y
    (IP_HDRINCL), so that the SYN-ACKs can be routed where no RST comes back."""
    set_name(args.name)
    say("PID", os.getpid())
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    if args.spoof_net:
        r.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    dst = args.connect
    ports = [p for p in random.sample(range(20000, 60000), args.count) if p != args.port]
    sent = 0
    for n, sport in enumerate(ports):
        src = dst
        if args.spoof_net:
            src = "%s.%d.%d" % (args.spoof_net, random.randint(0, 254), random.randint(1, 253))
        seq = random.getrandbits(32)
        hdr = struct.pack("!HHIIBBHHH", sport, args.port, seq, 0, 6 << 4, 0x02, 64240, 0, 0)
        seg = hdr + struct.pack("!BBH", 2, 4, 1460)
        csum = tcp_checksum(src, dst, seg)
        seg = seg[:16] + struct.pack("!H", csum) + seg[18:]
        if args.spoof_net:
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), random.getrandbits(16), 0,
                             64, socket.IPPROTO_TCP, 0, socket.inet_aton(src),
                             socket.inet_aton(dst))
            ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
            seg = ip + seg
        r.sendto(seg, (dst, 0))
        sent += 1
        if args.interval and n % 100 == 99:
            time.sleep(args.interval)
    r.close()
    say("SENT", sent)
    say("DONE")


def ip_checksum(hdr):
    total = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


# ---------------------------------------------------------------------------------------------
# Modes added for t_hardening.py

def mode_sink(args):
    import hashlib
    set_name(args.name)
    say("PID", os.getpid())
    s = listener(args)
    say("LISTENING", s.getsockname()[1])
    conn, peer = s.accept()
    conn.settimeout(TIMEOUT)
    say("ACCEPTED", peer[1])
    h, total, end = hashlib.md5(), 0, "EOF"
    while True:
        try:
            data = conn.recv(65536)
        except ConnectionResetError:
            end = "RESET"
            break
        if not data:
            break
        h.update(data)
        total += len(data)
        say("READ", total)
    say(end)
    say("DIGEST", h.hexdigest())
    conn.close()
    s.close()
    say("DONE")


ETH_P_IPV6 = 0x86dd


def ext_header(nh, typ, size):
    """One IPv6 extension header of size bytes whose next header is nh.

    typ 0 (hop-by-hop) / 60 (destination options): option TLVs of type 0x1e (unknown,
    "skip"), at most 8 of them (the kernel's max_*_opts_number), PadN for small ones;
    43: routing header of type 253 (experimental) with segments left 0; 44: an atomic
    fragment header (offset 0, no more fragments)."""
    if typ in (0, 60):
        assert size % 8 == 0 and 8 <= size <= 2048
        room = size - 2
        opts = b""
        if room <= 7:
            opts = bytes([1, room - 2]) + bytes(room - 2)  # PadN
        else:
            while room:
                n = min(room, 257)
                if room - n == 1:  # no room left for a 2-byte TLV: split differently
                    n -= 2
                opts += bytes([0x1e, n - 2]) + bytes(n - 2)
                room -= n
        return bytes([nh, size // 8 - 1]) + opts
    if typ == 43:
        assert size % 8 == 0
        return bytes([nh, size // 8 - 1, 253, 0]) + bytes(size - 4)
    if typ == 44:
        return bytes([nh, 0, 0, 0]) + struct.pack("!I", random.getrandbits(32))
    raise ValueError(typ)


def parse_chain(spec):
    """"60x9" / "0:160" / "0,43,44,60x17" / "60:2048": a list of (type, size)."""
    out = []
    for part in spec.split(","):
        typ, _, rest = part.partition("x")
        size = 8
        if ":" in typ:
            typ, size = typ.split(":")
        out += [(int(typ), int(size))] * (int(rest) if rest else 1)
    return out


def tcp6_checksum(src, dst, segment):
    pseudo = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
              + struct.pack("!IxxxB", len(segment), 6))
    data = pseudo + segment
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def mode_ext6inject(args):
    set_name(args.name)
    say("PID", os.getpid())
    src_mac, dst_mac = (bytes.fromhex(m.replace(":", "")) for m in (args.src_mac, args.dst_mac))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
    s.bind((args.iface, ETH_P_IPV6))
    s.settimeout(0.1)
    sport = random.randint(20000, 59999)
    iss = random.getrandbits(32)
    src6 = socket.inet_pton(socket.AF_INET6, args.src)
    dst6 = socket.inet_pton(socket.AF_INET6, args.connect)

    def send(seq, ack, flags, payload=b"", chain=(), tcp_opts=b""):
        assert len(tcp_opts) % 4 == 0
        hdr = struct.pack("!HHIIBBHHH", sport, args.port, seq & 0xffffffff, ack & 0xffffffff,
                          (5 + len(tcp_opts) // 4) << 4, flags, 65535, 0, 0)
        seg = hdr + tcp_opts + payload
        csum = tcp6_checksum(args.src, args.connect, seg)
        seg = seg[:16] + struct.pack("!H", csum) + seg[18:]
        exts = b""
        nh = 6
        for typ, size in reversed(chain):
            exts = ext_header(nh, typ, size) + exts
            nh = typ
        ip = struct.pack("!IHBB", 0x60000000, len(exts) + len(seg), nh, 64) + src6 + dst6
        s.send(dst_mac + src_mac + struct.pack("!H", ETH_P_IPV6) + ip + exts + seg)

    def receive(timeout):
        """The next TCP segment from the server to us: (seq, ack, flags) or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frame = s.recv(65536)
            except socket.timeout:
                continue
            ip = frame[14:]
            if len(ip) < 60 or ip[6] != 6 or ip[8:24] != dst6 or ip[24:40] != src6:
                continue
            sp, dp, seq, ack, _, flags = struct.unpack("!HHIIBB", ip[40:54])
            if (sp, dp) == (args.port, sport):
                return seq, ack, flags
        return None

    send(iss, 0, 0x02, tcp_opts=struct.pack("!BBH", 2, 4, 1400))
    r = receive(3)
    if not r or r[2] & 0x12 != 0x12 or r[1] != (iss + 1) & 0xffffffff:
        say("ERROR no SYN-ACK: %r" % (r,))
        sys.exit(1)
    irs = r[0]
    say("SYNACK", sport, irs)
    seq, ack = iss + 1, irs + 1
    send(seq, ack, 0x10)
    time.sleep(args.gap)
    failed = 0
    for i, spec in enumerate(args.chains.split(";")):
        name, _, chain = spec.partition("=")
        tcp_opts = b""
        if name.endswith("+tcpopts"):
            # 30 NOPs then a timestamp option: 40 bytes of TCP options (data offset 15)
            tcp_opts = b"\x01" * 30 + struct.pack("!BBII", 8, 10, 1000 + i, 0)
        payload = (b"%s-%d-" % (name.encode(), i)).ljust(args.size, b"z")
        send(seq, ack, 0x18, payload, parse_chain(chain), tcp_opts)
        want = (seq + len(payload)) & 0xffffffff
        got = None
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            r = receive(deadline - time.monotonic())
            if r and r[1] == want:
                got = r
                break
        say("SEG", name, seq & 0xffffffff, len(payload), "ACKED" if got else "NOACK")
        if got:
            seq += len(payload)
        else:
            failed += 1
        time.sleep(args.gap)
    send(seq, ack, 0x04)
    say("RST", seq & 0xffffffff)
    s.close()
    say("DONE")
    sys.exit(1 if failed else 0)


IPPROTO_MPTCP = 262


def mode_mptcpserver(args):
    set_name(args.name)
    say("PID", os.getpid())
    s = socket.socket(family_of(args.bind), socket.SOCK_STREAM, IPPROTO_MPTCP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(TIMEOUT)
    s.bind((args.bind, args.port))
    s.listen(8)
    say("LISTENING", s.getsockname()[1])
    conn, peer = s.accept()
    conn.settimeout(TIMEOUT)
    say("ACCEPTED", peer[1])
    n = echo(conn)
    say("EOF", n)
    conn.shutdown(socket.SHUT_WR)
    time.sleep(args.gap)
    conn.close()
    s.close()
    say("DONE")


def mode_mptcpclient(args):
    set_name(args.name)
    say("PID", os.getpid())
    c = socket.socket(family_of(args.connect), socket.SOCK_STREAM, IPPROTO_MPTCP)
    c.settimeout(TIMEOUT)
    c.connect((args.connect, args.port))
    say("CONNECTED", c.getsockname()[1])
    for i in range(args.rounds):
        msg = (b"req%d-" % i).ljust(args.size, b"m")
        c.sendall(msg)
        if recv_exact(c, len(msg)) != msg.upper():
            raise ConnectionError("bad response")
    c.shutdown(socket.SHUT_WR)
    say("EOF", read_to_eof(c))
    time.sleep(args.gap)
    c.close()
    say("DONE")


def accept_no_addr(s):
    """accept(fd, NULL, NULL), which Python's accept() never does: the new fd."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.accept(s.fileno(), None, None)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "accept")
    return fd


def monitor_getpeername(c, name):
    """A forked child (named name) that holds c too asks for its peer's name and exits,
    without any I/O on it: a monitor, not the acceptor."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            set_name(name)
            say("MONITOR", os.getpid(), c.getpeername()[1])
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit("monitor failed")


def mode_lateaccept(args):
    set_name(args.name)
    say("PID", os.getpid())
    s = socket.socket(family_of(args.bind), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.bind, args.port))
    s.listen(args.backlog)
    say("LISTENING", s.getsockname()[1])
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            set_name(args.worker_name)
            say("WORKER", os.getpid())
            sys.stdin.readline()
            s.settimeout(TIMEOUT)
            # One accepted socket at a time: the open-file limit need not cover them all.
            for _ in range(args.count):
                if args.no_addr:
                    s.settimeout(None)
                    c = socket.socket(fileno=accept_no_addr(s))
                else:
                    c = s.accept()[0]
                if args.monitor_name:
                    monitor_getpeername(c, args.monitor_name)
                if not args.silent:
                    c.send(b"1")
                time.sleep(args.close_delay)
                c.close()
            say("SENT_ALL")
            say("CLOSED_ALL")
            code = 0
        finally:
            os._exit(code)
    s.close()  # the worker holds the listener from now on
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    say("WORKER_EXIT", code)
    sys.exit(0 if code == 0 else 1)


def mode_altclient(args):
    """Connect (TCP_NODELAY), fork a child (--child-name), and take turns on the one socket:
    --rounds turns each, the parent first; on its turn a process sends two messages, of
    --size and --size + 1 bytes for the parent, twice that for the child, each once the
    previous one is acknowledged. --cpus A,B pins the parent to CPU A and the child to B."""
    set_name(args.name)
    say("PARENT", os.getpid())
    cpus = [int(x) for x in args.cpus.split(",")] if args.cpus else None
    c = socket.socket(family_of(args.connect), socket.SOCK_STREAM)
    c.settimeout(TIMEOUT)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.connect((args.connect, args.port))
    say("CONNECTED", c.getsockname()[1])
    r_child, w_parent = os.pipe()  # the parent's "your turn" to the child
    r_parent, w_child = os.pipe()  # the child's to the parent

    def turn(size):
        for n in (size, size + 1):
            c.sendall(b"m" * n)
            wait_acked(c)

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            set_name(args.child_name)
            if cpus:
                os.sched_setaffinity(0, {cpus[1]})
            say("CHILD", os.getpid())
            for _ in range(args.rounds):
                if os.read(r_child, 1) != b"t":
                    raise ConnectionError("no turn")
                turn(2 * args.size)
                os.write(w_child, b"t")
            code = 0
        finally:
            os._exit(code)
    if cpus:
        os.sched_setaffinity(0, {cpus[0]})
    for _ in range(args.rounds):
        turn(args.size)
        os.write(w_parent, b"t")
        if os.read(r_parent, 1) != b"t":
            raise ConnectionError("no turn back")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise ConnectionError("child failed")
    say("CHILD_DONE", pid)
    finish(c, "graceful")
    say("DONE")


def mode_manyclients(args):
    import selectors
    set_name(args.name)
    say("PID", os.getpid())
    socks = []
    for _ in range(args.count):
        c = socket.socket(family_of(args.connect), socket.SOCK_STREAM)
        c.settimeout(TIMEOUT)
        c.connect((args.connect, args.port))
        socks.append(c)
    say("CONNECTED_ALL", len(socks))
    with open(args.ports_file, "w") as f:
        f.write("\n".join(str(c.getsockname()[1]) for c in socks) + "\n")
    say("PORTS_WRITTEN")
    sel = selectors.DefaultSelector()
    for c in socks:
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ)
    left, deadline = len(socks), time.monotonic() + TIMEOUT * 2
    while left and time.monotonic() < deadline:
        for key, _ in sel.select(1.0):
            if key.fileobj.recv(16) != b"1":
                raise ConnectionError("bad byte")
            sel.unregister(key.fileobj)
            left -= 1
    if left:
        raise ConnectionError("%d connections got no byte" % left)
    say("GOT_ALL")
    for c in socks:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    say("DONE")

def mode_handover(args):
    set_name(args.name)
    say("PID", os.getpid())
    if args.udp:
        s = socket.socket(family_of(args.bind), socket.SOCK_DGRAM)
        s.bind((args.bind, args.port))
    else:
        s = listener(args)
    s.settimeout(TIMEOUT)
    say("LISTENING", s.getsockname()[1])
    for _ in range(args.count):
        if args.udp:
            conn = s
            _, peer = conn.recvfrom(65536)
        else:
            conn, peer = s.accept()
            conn.settimeout(TIMEOUT)
            conn.recv(65536)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                set_name(args.child_name)
                if args.setuid is not None:
                    os.setgid(args.setuid)
                    os.setuid(args.setuid)
                if args.io_delay:
                    time.sleep(args.io_delay)
                for last in (False, True):
                    if args.udp:
                        conn.sendto(b"h" * args.size, peer)
                    else:
                        conn.sendall(b"h" * args.size)
                    if not last:
                        conn.recv(65536)
                code = 0
            finally:
                os._exit(code)
        say("CHILD", pid)
        if not args.udp and not args.parent_closes_last:
            conn.close()  # only the child's copy is left
        _, status = os.waitpid(pid, 0)
        if not args.udp and args.parent_closes_last:
            conn.close()  # the last copy: this close sends the FIN
        if os.waitstatus_to_exitcode(status) != 0:
            say("CHILD_FAILED", pid)
            sys.exit(1)
    s.close()
    say("DONE")


MODES = {"handover": mode_handover, "altclient": mode_altclient, "server": mode_server, "forkserver": mode_forkserver, "client": mode_client,
         "forkclient": mode_forkclient, "acceptfork": mode_acceptfork, "fdsend": mode_fdsend,
         "fdrecv": mode_fdrecv, "threadserver": mode_threadserver,
         "threadclient": mode_threadclient, "refused": mode_refused, "backlog": mode_backlog,
         "queued": mode_queued, "synflood": mode_synflood, "sink": mode_sink,
         "ext6inject": mode_ext6inject, "mptcpserver": mode_mptcpserver,
         "mptcpclient": mode_mptcpclient, "lateaccept": mode_lateaccept,
         "manyclients": mode_manyclients}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=sorted(MODES))
    p.add_argument("--name", required=True)
    p.add_argument("--worker-name", default="e2e-worker")
    p.add_argument("--child-name", default="e2e-child")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--connect", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--accept-count", type=int, default=1)
    p.add_argument("--greet", action="store_true", help="server sends b'!' right after accept")
    p.add_argument("--wait-greet", action="store_true", help="client waits for b'!' first")
    p.add_argument("--local-port", type=int, default=0, help="client: bind to this port")
    p.add_argument("--repeat", type=int, default=1,
                   help="client: connect again, from the same port, after each close")
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
    p.add_argument("--io-delay", type=float, default=0.0,
                   help="wait this long after accept/hand-over before the first send/receive")
    p.add_argument("--close-after-bytes", type=int, default=0,
                   help="server: echo this many bytes, then close (the server closes first)")
    p.add_argument("--wait-eof", action="store_true",
                   help="client with --close plain: read to EOF, --plain-delay, then close")
    p.add_argument("--unix", help="fdsend/fdrecv: path of the Unix socket")
    p.add_argument("--reader-name", default="e2e-reader")
    p.add_argument("--sender-name", default="e2e-sender")
    p.add_argument("--gap", type=float, default=0.2, help="thread modes: pause between steps")
    p.add_argument("--backlog", type=int, default=8)
    p.add_argument("--send-bytes", type=int, default=0)
    p.add_argument("--count", type=int, default=1000, help="synflood: SYNs to send")
    p.add_argument("--spoof-net", help="synflood: A.B, send from random addresses A.B.x.y")
    p.add_argument("--iface", help="ext6inject: interface to send and receive on")
    p.add_argument("--src", help="ext6inject: source IPv6 address (not configured anywhere)")
    p.add_argument("--src-mac", help="ext6inject: our MAC address")
    p.add_argument("--dst-mac", help="ext6inject: the server's MAC address")
    p.add_argument("--chains", help="ext6inject: NAME=CHAIN;... (see parse_chain); a NAME "
                   "ending in +tcpopts also carries 40 bytes of TCP options")
    p.add_argument("--no-addr", action="store_true",
                   help="lateaccept: accept(fd, NULL, NULL), without the peer's address")
    p.add_argument("--monitor-name", default=None,
                   help="lateaccept: a forked child of this name calls getpeername() on each "
                        "accepted connection before the worker goes on")
    p.add_argument("--close-delay", type=float, default=0.0,
                   help="lateaccept: seconds between the accept and the close")
    p.add_argument("--silent", action="store_true",
                   help="lateaccept: close each accepted connection without sending")
    p.add_argument("--cpus", help="altclient: A,B: the parent on CPU A, the child on B")
    p.add_argument("--setuid", type=int, help="handover: the child's uid and gid")
    p.add_argument("--udp", action="store_true", help="handover: UDP datagrams")
    p.add_argument("--parent-closes-last", action="store_true",
                   help="handover: the parent keeps its copy until the child has exited")
    p.add_argument("--ports-file", help="manyclients: write the local ports here")
    args = p.parse_args()
    MODES[args.mode](args)


if __name__ == "__main__":
    main()
