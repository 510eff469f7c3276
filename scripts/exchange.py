#!/usr/bin/env python3
"""A short real TCP exchange for the demo: a server process and a client process on loopback."""
import ctypes
import os
import socket
import sys

PR_SET_NAME = 15


def set_name(name):
    ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode(), 0, 0, 0)


set_name("demo-server")

srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
port = srv.getsockname()[1]

pid = os.fork()
if pid == 0:
    set_name("demo-client")
    cli = socket.create_connection(("127.0.0.1", port))
    cli.sendall(b"GET / HTTP/1.0\r\nHost: demo\r\n\r\n")
    cli.shutdown(socket.SHUT_WR)
    while cli.recv(4096):
        pass
    cli.close()
    os._exit(0)

conn, _ = srv.accept()
request = b""
while not request.endswith(b"\r\n\r\n"):
    chunk = conn.recv(4096)
    if not chunk:
        break
    request += chunk
conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")
conn.shutdown(socket.SHUT_WR)
while conn.recv(4096):
    pass
conn.close()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
