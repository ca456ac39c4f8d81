#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Integration tests of meshgate's Redis side against a real redis-server.

Starts redis-server (Redis 7) on a free loopback port in its own temporary
directory, with no persistence, loads the project's Function library
(conf/redis/meshgate.lua) and checks what the writers rely on: a put or a
delete changes the key and appends exactly one log entry (op, key, value)
in the same call; unchanged puts and deletes of missing keys write and log
nothing; the epoch is created once and renewed when the log is recreated;
the log is trimmed with MAXLEN ~; bad calls are refused without a write.
Prints PASS/FAIL lines "kv/<name>"; exits non-zero on any failure.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, "conf", "redis", "meshgate.lua")
failures = 0


def result(name, ok, why=""):
    global failures
    if ok:
        print(f"PASS: kv/{name}")
    else:
        failures += 1
        print(f"FAIL: kv/{name}: {why}")
    sys.stdout.flush()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """One private redis-server; cli() runs redis-cli --raw against it."""

    def __init__(self, server, cli):
        self.dir = tempfile.mkdtemp(prefix="mg-kv-")
        self.port = free_port()
        self.cli_bin = cli
        self.proc = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def cli(self, *args, stdin=None):
        p = subprocess.run([self.cli_bin, "--raw", "-p", str(self.port)] + list(args),
                           input=stdin, capture_output=True, text=True, timeout=20)
        out = p.stdout
        return out[:-1] if out.endswith("\n") else out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def xrange(r, log):
    """The log's entries as [(op, key, value)]."""
    out = r.cli("XRANGE", log, "-", "+")
    lines = out.split("\n") if out else []
    entries = []
    for i in range(0, len(lines) - 6, 7):
        f = lines[i + 1:i + 7]
        entries.append((f[1], f[3], f[5]))
    return entries


def test_functions(r):
    log, epoch = "meshgate/log/c1", "meshgate/epoch/c1"
    key = "cilium/state/identities/v1/id/256"

    out = r.cli("-x", "FUNCTION", "LOAD", "REPLACE", stdin=open(LIB).read())
    result("function_load", out == "meshgate", out)
    lib = r.cli("FUNCTION", "LIST", "LIBRARYNAME", "meshgate")
    result("function_list", all(f in lib for f in ("mg_put", "mg_del", "mg_epoch")), lib)

    out = r.cli("FCALL", "mg_put", "3", key, log, epoch, "k8s:app=web;", "1000", "tok1")
    result("put_new", out == "1" and r.cli("GET", key) == "k8s:app=web;", out)
    result("put_logged", xrange(r, log) == [("put", key, "k8s:app=web;")], xrange(r, log))
    result("put_epoch_created", r.cli("GET", epoch) == "tok1", r.cli("GET", epoch))

    out = r.cli("FCALL", "mg_put", "3", key, log, epoch, "k8s:app=web;", "1000", "tok2")
    result("put_unchanged", out == "0" and r.cli("XLEN", log) == "1"
           and r.cli("GET", epoch) == "tok1", out)

    out = r.cli("FCALL", "mg_put", "2", key, log, "k8s:app=db;", "1000")
    result("put_changed", out == "1" and xrange(r, log)[-1] == ("put", key, "k8s:app=db;"), out)

    out = r.cli("FCALL", "mg_del", "2", key, log, "1000")
    result("del", out == "1" and r.cli("EXISTS", key) == "0"
           and xrange(r, log)[-1] == ("del", key, ""), out)
    out = r.cli("FCALL", "mg_del", "2", key, log, "1000")
    result("del_missing", out == "0" and r.cli("XLEN", log) == "3", out)

    # Atomicity on error: a key of the wrong type makes GET fail before
    # any write, so neither the key nor the log changes.
    r.cli("LPUSH", "wrongtype", "x")
    out = r.cli("FCALL", "mg_put", "2", "wrongtype", log, "v", "1000")
    result("put_error_no_write", "WRONGTYPE" in out and r.cli("XLEN", log) == "3", out)

    for name, args, want in (
            ("put_maxlen_0", ["mg_put", "2", key, log, "v", "0"], "maxlen"),
            ("put_maxlen_text", ["mg_put", "2", key, log, "v", "x"], "maxlen"),
            ("put_no_maxlen", ["mg_put", "2", key, log, "v"], "usage"),
            ("put_one_key", ["mg_put", "1", key, "v", "10"], "usage"),
            ("del_maxlen_neg", ["mg_del", "2", key, log, "-1"], "maxlen"),
            ("del_no_maxlen", ["mg_del", "2", key, log], "usage"),
            ("epoch_empty", ["mg_epoch", "1", epoch, ""], "usage")):
        out = r.cli("FCALL", *args)
        result(f"refused_{name}", want in out and r.cli("XLEN", log) == "3"
               and r.cli("EXISTS", key) == "0", out)

    # Epoch helper: created once, then kept.
    result("epoch_kept", r.cli("FCALL", "mg_epoch", "1", epoch, "tok9") == "tok1")
    result("epoch_created", r.cli("FCALL", "mg_epoch", "1", "meshgate/epoch/c2", "x2") == "x2")

    # The log recreated (deleted here): the next write renews the epoch.
    r.cli("DEL", log)
    r.cli("FCALL", "mg_put", "3", key, log, epoch, "k8s:a=b;", "1000", "tok3")
    result("epoch_renewed_with_log", r.cli("GET", epoch) == "tok3" and r.cli("XLEN", log) == "1",
           r.cli("GET", epoch))

    # Trimming: MAXLEN ~ 10 keeps the log near 10 entries (whole
    # macro-nodes are dropped, so somewhat more than 10 may remain).
    batch = "".join(f"FCALL mg_put 2 k{i % 7} meshgate/log/trim v{i} 10\n" for i in range(600))
    r.cli(stdin=batch)
    n = int(r.cli("XLEN", "meshgate/log/trim"))
    info = r.cli("XINFO", "STREAM", "meshgate/log/trim")
    result("log_trimmed", 10 <= n < 600 and "entries-added" in info and "600" in info,
           f"xlen {n}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    ap.add_argument("--redis-cli", default=shutil.which("redis-cli") or "redis-cli")
    ap.add_argument("--meshgatectl", help="meshgatectl binary (kv commands; later)")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    if not os.access(a.redis_server, os.X_OK):
        print("SKIP: kv/all: redis-server not installed")
        return 0
    r = Redis(a.redis_server, a.redis_cli)
    try:
        test_functions(r)
    finally:
        r.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
