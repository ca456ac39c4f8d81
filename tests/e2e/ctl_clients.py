#!/usr/bin/python3
"""Hostile clients of meshgate's control socket, and a UDP flood, for
tests/e2e/ctl_abuse_e2e.sh.

  ctl_clients.py flood ADDR PORT --seconds S [--size N]
      UDP datagrams of N bytes to ADDR:PORT as fast as one process can send
      them, for S seconds (a size above the MTU sends fragments: several
      frames per datagram). Prints "sent N" at the end.
  ctl_clients.py stuck SOCKET [--type T] [--seconds S]
      subscribes to the monitor stream, reads the ok reply, then never reads
      again. Prints "subscribed", then "closed after X s" once the server
      closed the connection (seen with POLLRDHUP, still reading nothing), or
      "open" after S seconds.
  ctl_clients.py hold SOCKET --count N [--keepalive SEC] [--seconds S]
      opens N connections one after the other; each sends {"command":"help"}
      and reads the reply: "ok" (accepted) or an error (EBUSY, then the server
      closes it). Prints "held A refused R [first refusal message]", then
      keeps the accepted ones busy (a request every SEC seconds; 0: idle) for
      S seconds or until killed.

Traffic goes only to the address given (inside the test's namespaces) and
to the unix socket.
"""
import argparse
import json
import select
import socket
import sys
import time


def flood(a):
    fam = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    payload = b"\0" * a.size
    end = time.monotonic() + a.seconds
    sent = 0
    while True:
        for _ in range(256):
            try:
                s.sendto(payload, (a.addr, a.port))
                sent += 1
            except OSError:
                pass  # ENOBUFS and the like: a flood does not care
        if time.monotonic() >= end:
            break
    print("sent %d" % sent, flush=True)


def request(path, req, timeout=5.0):
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(timeout)
    c.connect(path)
    try:
        c.sendall((json.dumps(req) + "\n").encode())
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused before it read us: its answer is waiting
    f = c.makefile("rb")
    try:
        line = f.readline()
    except ConnectionResetError:
        line = b""
    return c, f, (json.loads(line) if line else None)


def stuck(a):
    c, _, r = request(a.socket, {"command": "monitor", "args": {"type": a.type}})
    if not r or not r.get("ok"):
        print("refused %r" % r, flush=True)
        return 1
    print("subscribed", flush=True)
    t0 = time.monotonic()
    p = select.poll()
    p.register(c.fileno(), select.POLLRDHUP)
    while time.monotonic() - t0 < a.seconds:
        for _, ev in p.poll(100):
            if ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
                print("closed after %.1f s" % (time.monotonic() - t0), flush=True)
                return 0
    print("open", flush=True)
    return 0


def hold(a):
    held, refused, why = [], 0, ""
    for _ in range(a.count):
        try:
            c, f, r = request(a.socket, {"command": "help"})
        except OSError as x:
            refused += 1
            why = why or repr(x)
            continue
        if r and r.get("ok"):
            held.append((c, f))
        else:
            refused += 1
            why = why or (r or {}).get("error", "no reply")
            c.close()
    print("held %d refused %d %s" % (len(held), refused, why), flush=True)
    end = time.monotonic() + a.seconds
    while time.monotonic() < end:
        time.sleep(a.keepalive if a.keepalive > 0 else 0.5)
        if a.keepalive <= 0:
            continue
        for c, f in held:
            try:
                c.sendall(b'{"command":"help"}\n')
                f.readline()
            except OSError:
                pass
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("flood")
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--size", type=int, default=64)
    p = sub.add_parser("stuck")
    p.add_argument("socket")
    p.add_argument("--type", default="all")
    p.add_argument("--seconds", type=float, default=60)
    p = sub.add_parser("hold")
    p.add_argument("socket")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--keepalive", type=float, default=0)
    p.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    return {"flood": flood, "stuck": stuck, "hold": hold}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
