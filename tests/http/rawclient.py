#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Raw TCP clients for tests/http/hardening.sh: what curl cannot send or hold.

  rawclient.py limits HOST PORT PER_IP TOTAL
      Hold PER_IP idle connections from 127.0.0.2, then ask GET /health from 127.0.0.2 (over the
      per-address limit) and from 127.0.0.3; then hold TOTAL-PER_IP more from 127.0.0.3 and ask
      from 127.0.0.4 (over the total: the server stops accepting, so no answer within 2 s);
      release all and ask again. Prints one line per question: NAME STATUS, STATUS being the
      HTTP status, "closed" or "timeout".
  rawclient.py idle HOST PORT MAX_SECONDS
      Send half a request and print after how many seconds the server closed the connection
      ("open" if it did not within MAX_SECONDS).
  rawclient.py send HOST PORT HEX|huge-header|garbage
      Send those bytes (or a request with a 64 KiB header, or 4 KiB of random bytes) and print
      the status of the answer, "closed" or "timeout" (none within 5 s; 15 s for huge-header).
"""
import os
import socket
import sys
import time


def status_of(sock, timeout=5.0):
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        return "timeout"
    if not data.startswith(b"HTTP/"):
        return "closed"
    return data.split(b" ")[1].decode()


def connect(host, port, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.connect((host, port))
    return s


def ask(host, port, src, timeout=5.0):
    try:
        s = connect(host, port, src)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
                  % (host.encode(), port))
        r = status_of(s, timeout)
        s.close()
        return r
    except (ConnectionResetError, BrokenPipeError):
        return "closed"


def limits(host, port, per_ip, total):
    held = [connect(host, port, "127.0.0.2") for _ in range(per_ip)]
    # The server accepts in order: once an answer comes back on a later connection from
    # another address, the held ones are accepted too.
    print("per-ip-other-address", ask(host, port, "127.0.0.3"))
    print("per-ip-extra", ask(host, port, "127.0.0.2"))
    held += [connect(host, port, "127.0.0.3") for _ in range(total - per_ip)]
    print("total-extra", ask(host, port, "127.0.0.4", 2.0))
    for s in held:
        s.close()
    deadline = time.monotonic() + 5
    while True:  # the server notices the closes on its next round
        r = ask(host, port, "127.0.0.4")
        if r == "200" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    print("after-release", r)


def idle(host, port, max_seconds):
    s = connect(host, port, "127.0.0.1")
    s.sendall(b"GET /health HTTP/1.1\r\nHost: %s:%d\r\n" % (host.encode(), port))
    start = time.monotonic()
    s.settimeout(max_seconds)
    try:
        while s.recv(4096):
            pass
        print("%.1f" % (time.monotonic() - start))
    except ConnectionResetError:
        print("%.1f" % (time.monotonic() - start))
    except socket.timeout:
        print("open")


def send(host, port, what):
    if what == "huge-header":
        data = (b"GET /status HTTP/1.1\r\nHost: %s:%d\r\nX-Big: %s\r\n\r\n"
                % (host.encode(), port, b"a" * 65536))
    elif what == "garbage":
        data = os.urandom(4096)
    else:
        data = bytes.fromhex(what)
    s = connect(host, port, "127.0.0.1")
    try:
        s.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        print("closed")
        return
    # libmicrohttpd 0.9.75 answers a header bigger than a connection's memory
    # (HTTP_CONNECTION_MEMORY) with 431 only after several seconds (7.5 s measured).
    print(status_of(s, 15.0 if what == "huge-header" else 5.0))


def main():
    cmd, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if cmd == "limits":
        limits(host, port, int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "idle":
        idle(host, port, float(sys.argv[4]))
    elif cmd == "send":
        send(host, port, sys.argv[4])
    else:
        sys.exit("unknown command " + cmd)


main()
