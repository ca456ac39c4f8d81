#!/usr/bin/python3
"""Numbered UDP datagrams for the reload-under-traffic test.

  udp_seq.py recv ADDR PORT --seconds S [--trace FILE --gate LOG]
                                            print the sequence numbers received
  udp_seq.py send ADDR PORT --count N --rate R [--bind SRC] [--tag T]

The sender paces N datagrams at R per second, each carrying "TAG SEQ"; the
receiver binds ADDR:PORT, prints "ready", and once the sender's "done"
marker came and 1 s passed quietly (at most S seconds) prints "got TAG N TOTAL missing LIST"
per tag with the first missing numbers: a lost datagram is named, not guessed;
"other N" counts datagrams that were not "TAG SEQ" (another sender's).
With --trace the receiver also writes one line per datagram, "TIME TAG SEQ
STATE" (wall-clock seconds): STATE is "old" while the file LOG does not
exist, "starting" once it exists without a line containing "info: ready: ", and
"ready" from then on. The crash test points LOG at the restarted daemon's
stderr: the file is read again at each arrival until the line shows up, so
a datagram that arrives before the daemon wrote "ready" is "starting".
Traffic goes only to the address given, inside the test's namespaces.
"""
import argparse
import socket
import sys
import time


class Gate:
    """Where the restarted daemon is, as its log shows at this moment."""

    def __init__(self, path):
        self.path = path
        self.state = "old" if path else "-"

    def now(self):
        if self.state in ("ready", "-"):
            return self.state
        try:
            with open(self.path, "rb") as f:
                text = f.read()
        except FileNotFoundError:
            return "old"
        self.state = "ready" if b"info: ready: " in text else "starting"
        return self.state


def recv(a):
    trace = open(a.trace, "w") if a.trace else None
    gate = Gate(a.gate)
    fam = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((a.addr, a.port))
    print("ready", flush=True)
    seen = {}
    end = time.monotonic() + a.seconds
    s.settimeout(0.2)
    quiet_since = None
    other = 0
    while time.monotonic() < end:
        try:
            data = s.recv(2048)
        except socket.timeout:
            # Stop early once the sender said it is done and nothing came for 1 s.
            if "done" in seen and quiet_since is not None and time.monotonic() - quiet_since > 1:
                break
            continue
        quiet_since = time.monotonic()
        parts = data.decode(errors="replace").split()
        if trace is not None and len(parts) == 2:
            trace.write("%.6f %s %s %s\n" % (time.time(), parts[0], parts[1], gate.now()))
            trace.flush()
        if len(parts) == 2 and parts[0] == "done":
            seen.setdefault("done", set()).add(int(parts[1]))
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            other += 1
            continue
        seen.setdefault(parts[0], set()).add(int(parts[1]))
    for tag, nums in sorted(seen.items()):
        if tag == "done":
            continue
        total = max(seen["done"]) if "done" in seen else max(nums) + 1
        missing = [i for i in range(total) if i not in nums]
        print("got %s %d %d missing %s" % (tag, len(nums), total,
                                           ",".join(map(str, missing[:20])) or "-"),
              flush=True)
    if other:
        print("other %d" % other, flush=True)


def send(a):
    fam = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if a.bind:
        s.bind((a.bind, 0))
    t0 = time.monotonic()
    for i in range(a.count):
        due = t0 + i / a.rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        s.sendto(("%s %d" % (a.tag, i)).encode(), (a.addr, a.port))
    for _ in range(3):
        s.sendto(("done %d" % a.count).encode(), (a.addr, a.port))
    print("sent %d" % a.count, flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recv")
    r.add_argument("addr")
    r.add_argument("port", type=int)
    r.add_argument("--seconds", type=float, default=30)
    r.add_argument("--trace")
    r.add_argument("--gate")
    sd = sub.add_parser("send")
    sd.add_argument("addr")
    sd.add_argument("port", type=int)
    sd.add_argument("--count", type=int, required=True)
    sd.add_argument("--rate", type=float, required=True)
    sd.add_argument("--bind")
    sd.add_argument("--tag", default="seq")
    a = p.parse_args()
    (recv if a.cmd == "recv" else send)(a)


if __name__ == "__main__":
    sys.exit(main())
