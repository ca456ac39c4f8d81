#!/usr/bin/python3
"""One end of a TCP connection for meshgate's end-to-end tests.

  tcp_peer.py listen ADDR PORT [--timeout S]
  tcp_peer.py connect ADDR PORT [--bind SRC] [--timeout S]

listen accepts one connection; connect opens one (from SRC if given).
Then both ends behave alike, for as long as the connection lives: every
line read from stdin is sent over the connection, and every line received
is printed to stdout as "recv: LINE" (flushed at once), so a test drives a
long-lived connection through a FIFO on stdin and watches stdout. A stdin
line "bulk N" sends N bytes of data as one line instead (many segments).
With --echo N, stdin is not read: every line received is answered with
"ack LINE " and N bytes of data, and the connection closes when the peer's
does.

Status lines, on stdout too: "listening", "connected", "closed" (the peer
closed), and exactly one failure word if it comes to that: "timeout" (no
connection within --timeout seconds, default 10: the SYN or its answer was
dropped), "refused" (a RST came back), "error: ...". At stdin's end the
connection is shut down for writing; the program exits once the peer has
closed too, or --timeout seconds later. Exit status 0 iff it connected.
"""

import argparse
import socket
import sys
import threading


def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def bulk(n):
    return bytes(ord("a") + i % 26 for i in range(n))


def receiver(sock, done, echo):
    """Print every line the peer sends until it closes (answer it with --echo)."""
    buf = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                say("recv: " + line.decode(errors="replace"))
                if echo is not None:
                    sock.sendall(b"ack " + line + b" " + bulk(echo) + b"\n")
    except OSError as e:
        say("error: recv: %s" % e)
    if buf:
        say("recv: " + buf.decode(errors="replace"))
    say("closed")
    done.set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("listen", "connect"))
    ap.add_argument("addr")
    ap.add_argument("port", type=int)
    ap.add_argument("--bind", default=None, help="source address (connect)")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--echo", type=int, default=None, metavar="N",
                    help="answer every line with 'ack LINE' and N bytes; ignore stdin")
    args = ap.parse_args()

    family = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    try:
        if args.mode == "listen":
            srv = socket.socket(family, socket.SOCK_STREAM)
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind((args.addr, args.port))
            srv.listen(1)
            srv.settimeout(args.timeout)
            say("listening")
            try:
                sock, _peer = srv.accept()
            except socket.timeout:
                say("timeout")
                return 1
            srv.close()
        else:
            sock = socket.socket(family, socket.SOCK_STREAM)
            if args.bind:
                sock.bind((args.bind, 0))
            sock.settimeout(args.timeout)
            try:
                sock.connect((args.addr, args.port))
            except socket.timeout:
                say("timeout")
                return 1
            except ConnectionRefusedError:
                say("refused")
                return 1
    except OSError as e:
        say("error: %s" % e)
        return 1
    sock.settimeout(None)
    say("connected")

    done = threading.Event()
    threading.Thread(target=receiver, args=(sock, done, args.echo), daemon=True).start()
    if args.echo is not None:
        done.wait(args.timeout)
        sock.close()
        return 0
    try:
        for line in sys.stdin:
            line = line.rstrip("\n")
            if line.startswith("bulk "):
                data = bulk(int(line.split()[1])) + b"\n"
            else:
                data = line.encode() + b"\n"
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError as e:
        say("error: send: %s" % e)
    done.wait(args.timeout)
    sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
