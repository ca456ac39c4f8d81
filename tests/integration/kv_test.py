#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Integration tests of meshgate's Redis side against a real redis-server.

Starts redis-server (Redis 7) on a free loopback port in its own temporary
directory, with no persistence, loads the project's Function library
(conf/redis/meshgate.lua) and checks what the writers rely on: a put or a
delete changes the key and appends exactly one log entry (op, key, value)
in the same call; unchanged puts and deletes of missing keys write and log
nothing; the epoch is created once and renewed when the log is recreated;
the log is trimmed with MAXLEN ~; bad calls are refused without a write;
the lease is taken, renewed and released, and the fenced functions refuse
a token the lease does not hold before writing anything; the library
replaces its previous version (tests/integration/kv/meshgate-v1.lua).
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

    def __init__(self, server, cli, extra=(), password=None):
        self.dir = tempfile.mkdtemp(prefix="mg-kv-")
        self.port = free_port()
        self.cli_bin = cli
        self.password = password
        self.proc = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "no", "--daemonize", "no"] + list(extra),
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
        auth = ["--no-auth-warning", "-a", self.password] if self.password else []
        p = subprocess.run([self.cli_bin, "--raw", "-p", str(self.port)] + auth + list(args),
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

    test_batch(r)

    # Trimming: MAXLEN ~ 10 keeps the log near 10 entries (whole
    # macro-nodes are dropped, so somewhat more than 10 may remain).
    batch = "".join(f"FCALL mg_put 2 k{i % 7} meshgate/log/trim v{i} 10\n" for i in range(600))
    r.cli(stdin=batch)
    n = int(r.cli("XLEN", "meshgate/log/trim"))
    info = r.cli("XINFO", "STREAM", "meshgate/log/trim")
    result("log_trimmed", 10 <= n < 600 and "entries-added" in info and "600" in info,
           f"xlen {n}")


def test_batch(r):
    """FCALL mg_batch: N changes in one call, one log entry per change."""
    log, epoch = "meshgate/log/b1", "meshgate/epoch/b1"
    ka, kb = "cilium/state/identities/v1/id/501", "cilium/state/identities/v1/id/502"

    def batch(changes, token="btok1", maxlen="1000"):
        keys = [k for _, k, _ in changes]
        args = [maxlen, token]
        for op, _, v in changes:
            args += [op, v]
        return r.cli("FCALL", "mg_batch", str(2 + len(keys)), log, epoch, *keys, *args)

    out = batch([("put", ka, "a"), ("put", kb, "b"), ("put", ka, "a")])
    result("batch_put", out.split() == ["1", "1", "0"] and r.cli("GET", ka) == "a"
           and r.cli("GET", kb) == "b", out)
    result("batch_logged_per_change", xrange(r, log) == [("put", ka, "a"), ("put", kb, "b")],
           xrange(r, log))
    result("batch_epoch_created", r.cli("GET", epoch) == "btok1", r.cli("GET", epoch))
    # Later changes see earlier ones: del then put again, put then del.
    out = batch([("del", ka, ""), ("put", ka, "a2"), ("put", kb, "b2"), ("del", kb, ""),
                 ("del", kb, "ignored"), ("del", "cilium/state/identities/v1/id/503", "")],
                token="btok2")
    result("batch_sequence", out.split() == ["1", "1", "1", "1", "0", "0"]
           and r.cli("GET", ka) == "a2" and r.cli("EXISTS", kb) == "0"
           and xrange(r, log)[2:] == [("del", ka, ""), ("put", ka, "a2"), ("put", kb, "b2"),
                                      ("del", kb, "")]
           and r.cli("GET", epoch) == "btok1", f"{out!r} {xrange(r, log)}")
    out = batch([("put", ka, "a2")])
    result("batch_unchanged", out == "0" and r.cli("XLEN", log) == "6", out)

    # Atomic: a refused batch writes nothing, whatever came before the
    # bad change in it.
    r.cli("LPUSH", "cilium/state/identities/v1/id/wrong", "x")
    for name, changes, kw, want in (
            ("wrongtype", [("put", kb, "new"), ("put", "cilium/state/identities/v1/id/wrong",
                                                "v")], {}, "WRONGTYPE"),
            ("bad_op", [("put", kb, "new"), ("set", ka, "v")], {}, "op 2"),
            ("maxlen_0", [("put", kb, "new")], {"maxlen": "0"}, "maxlen"),
            ("maxlen_float", [("put", kb, "new")], {"maxlen": "1e3"}, "maxlen")):
        out = batch(changes, **kw)
        result(f"batch_refused_{name}", want in out and r.cli("XLEN", log) == "6"
               and r.cli("EXISTS", kb) == "0" and r.cli("GET", ka) == "a2", out)
    out = r.cli("FCALL", "mg_batch", "3", log, epoch, kb, "1000", "t", "put")
    result("batch_refused_usage", "usage" in out and r.cli("XLEN", log) == "6", out)
    # A del of a key of another type deletes it, as mg_del does.
    out = batch([("del", "cilium/state/identities/v1/id/wrong", "")])
    result("batch_del_other_type", out == "1" and r.cli(
        "EXISTS", "cilium/state/identities/v1/id/wrong") == "0", out)
    n = 1001
    keys = [f"cilium/state/identities/v1/id/{600 + i}" for i in range(n)]
    cmd = " ".join(["FCALL", "mg_batch", str(2 + n), log, epoch] + keys + ["1000", "t"]
                   + ["put v"] * n)
    out = r.cli(stdin=cmd + "\n")
    result("batch_bound", "at most 1000" in out and r.cli("XLEN", log) == "7", out[:200])
    cmd = " ".join(["FCALL", "mg_batch", str(2 + 1000), log, epoch] + keys[:1000] +
                   ["1000", "t"] + ["put v"] * 1000)
    out = r.cli(stdin=cmd + "\n")
    result("batch_max", out.split() == ["1"] * 1000 and r.cli("XLEN", log) == "1007",
           out[:200])
    # The log recreated: the batch renews the epoch (once), unless the token is "".
    r.cli("DEL", log)
    batch([("put", ka, "a3")], token="")
    result("batch_no_token_keeps_epoch", r.cli("GET", epoch) == "btok1")
    r.cli("DEL", log)
    batch([("put", ka, "a4"), ("put", kb, "b4")], token="btok3")
    result("batch_epoch_renewed", r.cli("GET", epoch) == "btok3" and r.cli("XLEN", log) == "2",
           r.cli("GET", epoch))


def test_lease(r):
    """The lease functions and the fenced writes (mg_fbatch, mg_fset, mg_fdel, mg_fepoch)."""
    lease, log, epoch = "meshgate/replicator/lease", "meshgate/log/f1", "meshgate/epoch/f1"
    ka, kb = "cilium/cache/identities/v1/f1/id/601", "cilium/cache/identities/v1/f1/id/602"

    out = r.cli("FCALL", "mg_lease_acquire", "1", lease, "tokA", "5000").split("\n")
    result("lease_acquire", out == ["1", "tokA", "5000"] and r.cli("GET", lease) == "tokA"
           and 0 < int(r.cli("PTTL", lease)) <= 5000, out)
    out = r.cli("FCALL", "mg_lease_acquire", "1", lease, "tokB", "5000").split("\n")
    result("lease_acquire_held", out[:2] == ["0", "tokA"] and 0 < int(out[2]) <= 5000, out)
    out = r.cli("FCALL", "mg_lease_acquire", "1", lease, "tokA", "9000").split("\n")
    result("lease_acquire_renews", out == ["1", "tokA", "9000"]
           and int(r.cli("PTTL", lease)) > 5000, out)
    result("lease_renew_other", r.cli("FCALL", "mg_lease_renew", "1", lease, "tokB", "100") == "0"
           and int(r.cli("PTTL", lease)) > 5000)
    result("lease_renew", r.cli("FCALL", "mg_lease_renew", "1", lease, "tokA", "20000") == "1"
           and int(r.cli("PTTL", lease)) > 10000)
    for name, args, want in (
            ("acquire_ttl_0", ["mg_lease_acquire", "1", lease, "t", "0"], "ttl_ms"),
            ("acquire_ttl_text", ["mg_lease_acquire", "1", lease, "t", "1e3"], "ttl_ms"),
            ("acquire_no_token", ["mg_lease_acquire", "1", lease, "", "100"], "usage"),
            ("renew_no_ttl", ["mg_lease_renew", "1", lease, "tokA"], "usage"),
            ("release_two_keys", ["mg_lease_release", "2", lease, "x", "tokA"], "usage")):
        out = r.cli("FCALL", *args)
        result(f"lease_refused_{name}", want in out and r.cli("GET", lease) == "tokA", out)

    def fbatch(token, changes):
        keys = [k for _, k, _ in changes]
        args = [token, "1000", "etok"]
        for op, _, v in changes:
            args += [op, v]
        return r.cli("FCALL", "mg_fbatch", str(3 + len(keys)), lease, log, epoch, *keys, *args)

    out = fbatch("tokA", [("put", ka, "a"), ("put", kb, "b"), ("put", ka, "a")])
    result("fbatch", out.split() == ["1", "1", "0"] and r.cli("GET", ka) == "a"
           and xrange(r, log) == [("put", ka, "a"), ("put", kb, "b")]
           and r.cli("GET", epoch) == "etok", out)
    out = fbatch("tokB", [("del", ka, ""), ("put", kb, "new")])
    want = f"FENCED mg_fbatch: lease {lease} is not held by this writer"
    result("fbatch_fenced", out.strip() == want
           and r.cli("GET", ka) == "a" and r.cli("GET", kb) == "b" and r.cli("XLEN", log) == "2",
           out)
    # Refused before anything is read: even a batch that would fail otherwise.
    out = fbatch("tokB", [("bad", ka, "")])
    result("fbatch_fenced_first", out.startswith("FENCED"), out)
    out = fbatch("tokA", [("bad", ka, "")])
    result("fbatch_checks_as_batch", "mg_fbatch: op 1 must be put or del" in out, out)
    out = r.cli("FCALL", "mg_fbatch", "3", lease, log, epoch, "tokA", "1000", "t")
    result("fbatch_usage", "usage" in out and r.cli("XLEN", log) == "2", out)

    out = r.cli("FCALL", "mg_fset", "3", lease, "s/1", "s/2", "tokA", "0", "x", "y")
    result("fset", out == "2" and r.cli("GET", "s/2") == "y" and r.cli("PTTL", "s/1") == "-1"
           and r.cli("XLEN", log) == "2", out)
    out = r.cli("FCALL", "mg_fset", "2", lease, "s/3", "tokA", "60000", "z")
    result("fset_px", out == "1" and 50000 < int(r.cli("PTTL", "s/3")) <= 60000, out)
    out = r.cli("FCALL", "mg_fset", "2", lease, "s/1", "tokB", "0", "changed")
    result("fset_fenced", out.startswith("FENCED mg_fset") and r.cli("GET", "s/1") == "x", out)
    out = r.cli("FCALL", "mg_fset", "2", lease, "s/1", "tokA", "-5", "changed")
    result("fset_bad_px", "px_ms" in out and r.cli("GET", "s/1") == "x", out)
    out = r.cli("FCALL", "mg_fdel", "3", lease, "s/1", "s/9", "tokB")
    result("fdel_fenced", out.startswith("FENCED mg_fdel") and r.cli("EXISTS", "s/1") == "1",
           out)
    out = r.cli("FCALL", "mg_fdel", "4", lease, "s/1", "s/2", "s/9", "tokA")
    result("fdel", out == "2" and r.cli("EXISTS", "s/1", "s/2") == "0", out)
    out = r.cli("FCALL", "mg_fepoch", "2", lease, "meshgate/epoch/f2", "tokB", "e2")
    result("fepoch_fenced", out.startswith("FENCED mg_fepoch")
           and r.cli("EXISTS", "meshgate/epoch/f2") == "0", out)
    out = r.cli("FCALL", "mg_fepoch", "2", lease, "meshgate/epoch/f2", "tokA", "e2")
    result("fepoch", out == "e2", out)

    result("lease_release_other",
           r.cli("FCALL", "mg_lease_release", "1", lease, "tokB") == "0"
           and r.cli("GET", lease) == "tokA")
    result("lease_release", r.cli("FCALL", "mg_lease_release", "1", lease, "tokA") == "1"
           and r.cli("EXISTS", lease) == "0")
    # No lease at all: every fenced write is refused.
    out = fbatch("tokA", [("put", ka, "after")])
    result("fbatch_no_lease", out.startswith("FENCED") and r.cli("GET", ka) == "a", out)
    # A lapsed lease is no lease: PX 1, then wait (polling) until it is gone.
    r.cli("FCALL", "mg_lease_acquire", "1", lease, "tokC", "1")
    deadline = time.time() + 5
    while r.cli("EXISTS", lease) != "0" and time.time() < deadline:
        time.sleep(0.005)
    out = fbatch("tokC", [("put", ka, "after")])
    result("fbatch_lapsed", out.startswith("FENCED") and r.cli("GET", ka) == "a", out)
    out = r.cli("FCALL", "mg_lease_acquire", "1", lease, "tokB", "5000").split("\n")
    result("lease_acquire_after_lapse", out == ["1", "tokB", "5000"], out)


def test_upgrade(server, cli):
    """FUNCTION LOAD REPLACE of this library over the previous one (without the lease)."""
    r = Redis(server, cli)
    try:
        old = open(os.path.join(KV, "meshgate-v1.lua")).read()
        out = r.cli("-x", "FUNCTION", "LOAD", stdin=old)
        key, log = "cilium/cache/identities/v1/u/id/256", "meshgate/log/u"
        r.cli("FCALL", "mg_put", "2", key, log, "k8s:a=b;", "1000")
        ok = out == "meshgate" and "mg_fbatch" not in r.cli("FUNCTION", "LIST")
        out = r.cli("-x", "FUNCTION", "LOAD", stdin=open(LIB).read())
        result("upgrade_needs_replace", "already exists" in out, out)
        out = r.cli("-x", "FUNCTION", "LOAD", "REPLACE", stdin=open(LIB).read())
        lib = r.cli("FUNCTION", "LIST", "LIBRARYNAME", "meshgate")
        names = ("mg_put", "mg_del", "mg_batch", "mg_epoch", "mg_lease_acquire",
                 "mg_lease_renew", "mg_lease_release", "mg_fbatch", "mg_fset", "mg_fdel",
                 "mg_fepoch")
        result("upgrade_replace", ok and out == "meshgate" and all(n in lib for n in names),
               out + lib)
        out = r.cli("FCALL", "mg_put", "2", key, log, "k8s:a=c;", "1000")
        result("upgrade_old_calls", out == "1" and r.cli("XLEN", log) == "2"
               and r.cli("GET", key) == "k8s:a=c;", out)
    finally:
        r.stop()


KV = os.path.join(ROOT, "tests", "integration", "kv")
STATE_PATTERNS = ("cilium/state/identities/v1/id/*", "cilium/state/ip/v1/default/*")


def cache_patterns(cluster):
    return (f"cilium/cache/identities/v1/{cluster}/id/*", f"cilium/cache/ip/v1/{cluster}/*")


def ctl(binary, r, *args, url=None):
    """Run meshgatectl kv ... against @r; returns (rc, stdout, stderr)."""
    argv = [binary, "kv"] + list(args[:1]) + [
        "--redis", url or f"redis://127.0.0.1:{r.port}/0", "--functions", LIB] + list(args[1:])
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def state_keys(r, cluster=None):
    """Identity and ip keys of the single-cluster layout, or of @cluster's per-cluster one."""
    keys = []
    for pat in (cache_patterns(cluster) if cluster else STATE_PATTERNS):
        out = r.cli("--scan", "--pattern", pat)
        keys += [k for k in out.split("\n") if k]
    return sorted(keys)


def fx(name):
    return os.path.join(KV, name)


def test_ctl(binary, r):
    log = "meshgate/log/east"
    imp = ["import", "--cluster", "east", "--cluster-id", "1"]

    # Invalid input: file:line:col, exit 1, nothing written at all (the
    # valid file before it included).
    rc, out, err = ctl(binary, r, *imp, fx("single.yaml"), fx("bad.yaml"))
    result("ctl_bad_input", rc == 1 and "bad.yaml:13:25:" in err and "10.9.0.300" in err
           and r.cli("DBSIZE") == "0", f"rc {rc} err {err!r} dbsize {r.cli('DBSIZE')}")
    rc, out, err = ctl(binary, r, *imp, fx("missing.yaml"))
    result("ctl_missing_file", rc == 1 and "missing.yaml" in err and r.cli("DBSIZE") == "0",
           err)

    # Single document.
    rc, out, err = ctl(binary, r, *imp, fx("single.yaml"))
    key = "cilium/cache/identities/v1/east/id/70000"
    result("ctl_import_single", rc == 0 and "1 identities (1 written, 0 unchanged)" in out
           and r.cli("GET", key) == "k8s:app=web;k8s:io.kubernetes.pod.namespace=shop;",
           f"rc {rc} {out!r} {err!r}")
    result("ctl_import_single_logged", xrange(r, log) == [
        ("put", key, "k8s:app=web;k8s:io.kubernetes.pod.namespace=shop;"),
        ("put", "cilium/cluster-config/east",
         '{"id":1,"capabilities":{"syncedCanaries":true,"cached":true,'
         '"maxConnectedClusters":255}}')], xrange(r, log))
    canaries = [r.cli("GET", f"cilium/synced/east/cilium/cache/{p}/v1")
                for p in ("identities", "ip")]
    result("ctl_canaries", all(len(c) == 20 and c.endswith("Z") and c[10] == "T"
                               for c in canaries), canaries)

    # Several documents and a kind: List; the pending endpoint is skipped.
    rc, out, err = ctl(binary, r, *imp, "-o", "json", fx("single.yaml"), fx("multi.yaml"),
                       fx("list.yaml"))
    import json
    try:
        j = json.loads(out)
    except ValueError:
        j = {}
    result("ctl_import_multi_list", rc == 0 and j.get("identities") == {
        "total": 3, "written": 2, "unchanged": 1} and j.get("ips") == {
        "total": 3, "written": 3, "unchanged": 0} and j.get("skipped_endpoints") == 1
        and "pending" in err, f"rc {rc} {out!r} {err!r}")
    want = sorted(["cilium/cache/identities/v1/east/id/70000",
                   "cilium/cache/identities/v1/east/id/70001",
                   "cilium/cache/identities/v1/east/id/70002", "cilium/cache/ip/v1/east/10.9.0.1",
                   "cilium/cache/ip/v1/east/fd00:9::1", "cilium/cache/ip/v1/east/10.9.0.2"])
    result("ctl_import_keys", state_keys(r, "east") == want and state_keys(r) == [],
           state_keys(r, "east"))
    v6 = r.cli("GET", "cilium/cache/ip/v1/east/fd00:9::1")
    result("ctl_import_ip_value", v6 == (
        '{"IP":"fd00:9::1","Mask":null,"HostIP":"172.18.0.3","ID":70000,"Key":0,'
        '"Metadata":"","K8sNamespace":"shop","K8sPodName":"web-1",'
        '"NamedPorts":[{"Name":"http","Port":80,"Protocol":"TCP"}]}'), v6)
    result("ctl_import_logged_per_change", r.cli("XLEN", log) == "7"
           and [e[1] for e in xrange(r, log)[2:]].count("cilium/cache/ip/v1/east/10.9.0.2")
           == 1, r.cli("XLEN", log))

    # Re-import: nothing changes, nothing is logged.
    rc, out, err = ctl(binary, r, *imp, fx("single.yaml"), fx("multi.yaml"), fx("list.yaml"))
    result("ctl_reimport_unchanged", rc == 0 and "(0 written, 3 unchanged), 3 ips (0 written"
           in out and r.cli("XLEN", log) == "7", f"{out!r} xlen {r.cli('XLEN', log)}")

    # --prune: keys absent from the input are deleted, each one logged.
    rc, out, err = ctl(binary, r, *imp, "--prune", fx("single.yaml"), fx("list.yaml"))
    want_after = sorted(["cilium/cache/identities/v1/east/id/70000",
                         "cilium/cache/identities/v1/east/id/70002",
                         "cilium/cache/ip/v1/east/10.9.0.2"])
    dels = [e for e in xrange(r, log) if e[0] == "del"]
    result("ctl_prune", rc == 0 and "3 pruned" in out and state_keys(r, "east") == want_after
           and len(dels) == 3 and r.cli("XLEN", log) == "10", f"{out!r} {state_keys(r, 'east')}")
    result("ctl_prune_keeps_other", r.cli("EXISTS", "cilium/cluster-config/east") == "1")

    # Single changes.
    rc, out, err = ctl(binary, r, "put-ip", "--cluster", "east", "--ip", "10.8.0.0/16",
                       "--identity", "70000", "--host-ip", "172.18.0.9",
                       "--named-port", "dns:53/udp")
    pk = "cilium/cache/ip/v1/east/10.8.0.0/16"
    v = r.cli("GET", pk)
    result("ctl_put_ip", rc == 0 and "written" in out and '"Mask":"//8AAA=="' in v
           and '"HostIP":"172.18.0.9"' in v and '"Protocol":"UDP"' in v
           and xrange(r, log)[-1] == ("put", pk, v), f"rc {rc} {out!r} {err!r} {v!r}")
    rc, out, err = ctl(binary, r, "put-ip", "--cluster", "east", "--ip", "10.8.0.0/16",
                       "--identity", "70000", "--host-ip", "172.18.0.9",
                       "--named-port", "dns:53/udp")
    result("ctl_put_ip_unchanged", rc == 0 and "unchanged" in out and r.cli("XLEN", log) == "11",
           out)
    rc, out, err = ctl(binary, r, "del-ip", "--cluster", "east", "--ip", "10.8.0.0/16")
    result("ctl_del_ip", rc == 0 and r.cli("EXISTS", pk) == "0"
           and xrange(r, log)[-1] == ("del", pk, ""), f"{out!r} {err!r}")
    rc, out, err = ctl(binary, r, "del-ip", "--cluster", "east", "--ip", "10.8.0.0/16")
    result("ctl_del_ip_missing", rc == 0 and "not present" in out
           and r.cli("XLEN", log) == "12", out)
    ik = "cilium/cache/identities/v1/east/id/80000"
    rc, out, err = ctl(binary, r, "put-identity", "--cluster", "east", "--id", "80000",
                       "--labels", "k8s:b=2;k8s:a=1")
    result("ctl_put_identity", rc == 0 and r.cli("GET", ik) == "k8s:a=1;k8s:b=2;",
           f"{out!r} {err!r}")
    rc, out, err = ctl(binary, r, "del-identity", "--cluster", "east", "--id", "80000",
                       "-o", "json")
    result("ctl_del_identity", rc == 0 and '"deleted"' in out and r.cli("EXISTS", ik) == "0",
           out)
    n = r.cli("XLEN", log)
    for name, args, code in (
            ("no_cluster", ["put-identity", "--id", "5", "--labels", "k8s:a=b"], 2),
            ("bad_ip", ["put-ip", "--cluster", "east", "--ip", "10.0.0.1/40",
                        "--identity", "5"], 2),
            ("no_identity", ["put-ip", "--cluster", "east", "--ip", "10.0.0.1"], 2),
            ("bad_labels", ["put-identity", "--cluster", "east", "--id", "5", "--labels", ""],
             1),
            ("import_no_cluster_id", ["import", "--cluster", "east", fx("single.yaml")], 2)):
        rc, out, err = ctl(binary, r, *args)
        result(f"ctl_refused_{name}", rc == code and r.cli("XLEN", log) == n
               and r.cli("EXISTS", "cilium/cache/identities/v1/east/id/5") == "0",
               f"rc {rc} {err!r}")
    rc, out, err = ctl(binary, r, "del-ip", "--cluster", "east", "--ip", "10.0.0.1",
                       url=f"redis://127.0.0.1:{free_port()}")
    result("ctl_redis_down", rc == 3 and "cannot connect" in err, f"rc {rc} {err!r}")


def test_ctl_many(binary, r):
    """An import and a prune of many entries: several mg_batch calls in flight."""
    log = "meshgate/log/west"
    tmp = tempfile.mkdtemp(prefix="mg-kv-many-")
    try:
        path = os.path.join(tmp, "many.yaml")
        with open(path, "w") as f:
            for i in range(3000):
                f.write(f"---\napiVersion: cilium.io/v2\nkind: CiliumIdentity\nmetadata:\n"
                        f"  name: \"{70000 + i}\"\nsecurity-labels:\n  k8s:app: a{i}\n")
        imp = ["import", "--cluster", "west", "--cluster-id", "1"]
        rc, out, err = ctl(binary, r, *imp, path)
        keys = state_keys(r, "west")
        result("ctl_many_import", rc == 0 and "3000 identities (3000 written, 0 unchanged)" in out
               and len(keys) == 3000 and r.cli("XLEN", log) == "3001"
               and r.cli("GET", "cilium/cache/identities/v1/west/id/72999") == "k8s:app=a2999;",
               f"rc {rc} {out!r} {err!r} keys {len(keys)} xlen {r.cli('XLEN', log)}")
        entries = xrange(r, log)
        result("ctl_many_log_order", [e[1] for e in entries[:3000]] == [
            f"cilium/cache/identities/v1/west/id/{70000 + i}" for i in range(3000)],
            entries[:3])
        rc, out, err = ctl(binary, r, *imp, path)
        result("ctl_many_reimport", rc == 0 and "(0 written, 3000 unchanged)" in out
               and r.cli("XLEN", log) == "3001", f"{out!r} {err!r}")
        rc, out, err = ctl(binary, r, *imp, "--prune", fx("single.yaml"))
        result("ctl_many_prune", rc == 0 and "2999 pruned" in out
               and state_keys(r, "west") == ["cilium/cache/identities/v1/west/id/70000"]
               and r.cli("XLEN", log) == str(3001 + 2999 + 1), f"{out!r} {err!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_identities(path, cluster, ids, label=True, other=None):
    """CiliumIdentity manifests for @ids, labelled with their cluster (or @other)."""
    with open(path, "w") as f:
        for i in ids:
            f.write(f"---\napiVersion: cilium.io/v2\nkind: CiliumIdentity\nmetadata:\n"
                    f"  name: \"{i}\"\nsecurity-labels:\n  k8s:app: a{i}\n")
            if label:
                f.write(f"  k8s:io.cilium.k8s.policy.cluster: {other or cluster}\n")
            f.write(f"---\napiVersion: cilium.io/v2\nkind: CiliumEndpoint\nmetadata:\n"
                    f"  name: p{i}\n  namespace: ns\nstatus:\n  identity: {{id: {i}}}\n"
                    f"  networking:\n    addressing: [{{ipv4: 10.{i >> 16 & 255}.{i >> 8 & 255}."
                    f"{i & 255}}}]\n")


def test_ctl_layouts(binary, r):
    """Several clusters in one Redis: each in its own subtree; the
    single-cluster layout for one cluster only; what the gateways would
    refuse is refused before anything is written."""
    tmp = tempfile.mkdtemp(prefix="mg-kv-layout-")
    try:
        for c in (2, 3):
            path = os.path.join(tmp, f"c00{c}.yaml")
            write_identities(path, f"c00{c}", [(c << 16) + 100, (c << 16) + 101])
            rc, out, err = ctl(binary, r, "import", "--cluster", f"c00{c}", "--cluster-id",
                               str(c), path)
            result(f"layout_import_c00{c}", rc == 0 and "2 identities (2 written" in out,
                   f"rc {rc} {out!r} {err!r}")
        k2, k3 = state_keys(r, "c002"), state_keys(r, "c003")
        result("layout_clusters_apart", len(k2) == 4 and len(k3) == 4 and state_keys(r) == []
               and r.cli("GET", "cilium/cache/ip/v1/c003/10.3.0.100").find('"ID":196708') > 0
               and '"cached":true' in r.cli("GET", "cilium/cluster-config/c002"),
               f"{k2} {k3} {state_keys(r)}")
        path = os.path.join(tmp, "c004.yaml")
        write_identities(path, "c004", [(4 << 16) + 7])
        rc, out, err = ctl(binary, r, "import", "--cluster", "c004", "--cluster-id", "4",
                           "--single-cluster", path)
        result("layout_single_cluster", rc == 0 and state_keys(r) == [
            "cilium/state/identities/v1/id/262151", "cilium/state/ip/v1/default/10.4.0.7"]
            and '"cached":false' in r.cli("GET", "cilium/cluster-config/c004")
            and r.cli("EXISTS", "cilium/synced/c004/cilium/state/ip/v1") == "1",
            f"rc {rc} {err!r} {state_keys(r)}")
        before = r.cli("DBSIZE")
        path = os.path.join(tmp, "c005.yaml")
        write_identities(path, "c005", [(5 << 16) + 7])
        rc, out, err = ctl(binary, r, "import", "--cluster", "c005", "--cluster-id", "5",
                           "--single-cluster", path)
        result("layout_second_single_refused", rc == 1 and "c004 holds the single-cluster"
               in err and "without --single-cluster" in err and r.cli("DBSIZE") == before,
               f"rc {rc} {err!r}")
        rc, out, err = ctl(binary, r, "put-ip", "--cluster", "c002", "--ip", "10.2.9.9",
                           "--identity", "131172", "--single-cluster")
        result("layout_switch_refused", rc == 1 and "per-cluster layout" in err
               and r.cli("DBSIZE") == before, f"rc {rc} {err!r}")
        rc, out, err = ctl(binary, r, "put-ip", "--cluster", "c004", "--ip", "10.4.9.9",
                           "--identity", "262151")
        result("layout_switch_refused_other_way", rc == 1 and "--single-cluster" in err
               and r.cli("DBSIZE") == before, f"rc {rc} {err!r}")
        # cluster 200's identity imported as cluster 2's: refused, nothing written
        path = os.path.join(tmp, "wrong.yaml")
        write_identities(path, "c002", [13107457])
        rc, out, err = ctl(binary, r, "import", "--cluster", "c002", "--cluster-id", "2", path)
        result("layout_range_refused", rc == 1 and "13107457 is not cluster c002's" in err
               and "131072-196607" in err and r.cli("DBSIZE") == before, f"rc {rc} {err!r}")
        write_identities(path, "c002", [(2 << 16) + 5], other="c003")
        rc, out, err = ctl(binary, r, "import", "--cluster", "c002", "--cluster-id", "2", path)
        result("layout_cluster_label_refused", rc == 1 and "names another cluster" in err
               and r.cli("DBSIZE") == before, f"rc {rc} {err!r}")
        write_identities(path, "c002", [(2 << 16) + 6], label=False)
        rc, out, err = ctl(binary, r, "import", "--cluster", "c002", "--cluster-id", "2", path)
        result("layout_no_cluster_label_warned", rc == 0 and "warning" in err
               and "remote cluster refuse it" in err, f"rc {rc} {err!r}")
        # An address two endpoints claim: refused at the second, naming the first.
        with open(path, "w") as f:
            for i, name in enumerate(("a", "b")):
                f.write(f"---\napiVersion: cilium.io/v2\nkind: CiliumEndpoint\nmetadata:\n"
                        f"  name: {name}\n  namespace: ns\nstatus:\n"
                        f"  identity: {{id: {(2 << 16) + 5 + i}}}\n"
                        f"  networking:\n    addressing: [{{ipv4: 10.2.7.7}}]\n")
        rc, out, err = ctl(binary, r, "import", "--cluster", "c002", "--cluster-id", "2", path)
        result("layout_duplicate_address", rc == 1 and "wrong.yaml:20:25:" in err
               and "address 10.2.7.7 already given at" in err and "wrong.yaml:10:25" in err
               and r.cli("EXISTS", "cilium/cache/ip/v1/c002/10.2.7.7") == "0",
               f"rc {rc} {err!r}")
        # 511-cluster meshes
        path = os.path.join(tmp, "c300.yaml")
        write_identities(path, "c300", [(300 << 15) + 9])
        rc, out, err = ctl(binary, r, "import", "--cluster", "c300", "--cluster-id", "300", path)
        result("layout_511_needs_flag", rc == 2 and "--max-connected-clusters 511" in err,
               f"rc {rc} {err!r}")
        rc, out, err = ctl(binary, r, "import", "--cluster", "c300", "--cluster-id", "300",
                           "--max-connected-clusters", "511", path)
        result("layout_511", rc == 0 and '"maxConnectedClusters":511' in
               r.cli("GET", "cilium/cluster-config/c300") and len(state_keys(r, "c300")) == 2,
               f"rc {rc} {err!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_auth(binary, server, cli):
    r = Redis(server, cli, extra=["--requirepass", "topsecret"], password="topsecret")
    tmp = tempfile.mkdtemp(prefix="mg-kv-pw-")
    try:
        r.cli("ACL", "SETUSER", "writer", "on", ">w-pass", "~cilium/*", "~meshgate/*",
              "+fcall", "+function|load", "+get", "+set", "+del", "+scan", "+exists", "+xadd")
        pw = os.path.join(tmp, "pw")
        with open(pw, "w") as f:
            f.write("w-pass\n")
        os.chmod(pw, 0o600)
        args = ["put-identity", "--cluster", "east", "--id", "90000", "--labels", "k8s:a=b"]
        rc, out, err = ctl(binary, r, *args)
        result("auth_required", rc == 3 and "NOAUTH" in err,
               f"rc {rc} {err!r}")
        rc, out, err = ctl(binary, r, *args, "--user", "writer", "--password-file", pw)
        result("auth_acl_user", rc == 0 and r.cli("EXISTS", "cilium/cache/identities/v1/east/id/90000")
               == "1", f"rc {rc} {err!r}")
        rc, out, err = ctl(binary, r, "del-identity", "--cluster", "east", "--id", "90000",
                           url=f"redis://:topsecret@127.0.0.1:{r.port}/0")
        result("auth_requirepass_url", rc == 0 and "deleted" in out, f"rc {rc} {err!r}")
        with open(pw, "w") as f:
            f.write("wrong\n")
        rc, out, err = ctl(binary, r, *args, "--user", "writer", "--password-file", pw)
        result("auth_wrong_password", rc == 3 and "AUTH" in err and "WRONGPASS" in err
               and r.cli("EXISTS", "cilium/cache/identities/v1/east/id/90000") == "0",
               f"rc {rc} {err!r}")
        os.chmod(pw, 0o644)
        rc, out, err = ctl(binary, r, *args, "--user", "writer", "--password-file", pw)
        result("auth_password_file_mode", rc == 1 and "0644" in err and "chmod 600" in err,
               f"rc {rc} {err!r}")
        # An import goes through mg_batch, whose MGET/MSET the ACL must allow
        # (docs/kvstore.md's writer ACL).
        r.cli("ACL", "SETUSER", "importer", "on", ">i-pass", "~cilium/*", "~meshgate/*",
              "+fcall", "+function|load", "+get", "+mget", "+set", "+mset", "+del", "+scan",
              "+exists", "+xadd")
        rc, out, err = ctl(binary, r, "import", "--cluster", "east", "--cluster-id", "1",
                           fx("single.yaml"),
                           url=f"redis://importer:i-pass@127.0.0.1:{r.port}/0")
        result("auth_acl_import", rc == 0 and "1 identities (1 written" in out,
               f"rc {rc} {out!r} {err!r}")
    finally:
        r.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    ap.add_argument("--redis-cli", default=shutil.which("redis-cli") or "redis-cli")
    ap.add_argument("--meshgatectl", help="meshgatectl binary (kv commands)")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    if not os.access(a.redis_server, os.X_OK):
        print("SKIP: kv/all: redis-server not installed")
        return 0
    r = Redis(a.redis_server, a.redis_cli)
    try:
        test_functions(r)
        test_lease(r)
    finally:
        r.stop()
    test_upgrade(a.redis_server, a.redis_cli)
    if a.meshgatectl:
        r = Redis(a.redis_server, a.redis_cli)
        try:
            test_ctl(a.meshgatectl, r)
        finally:
            r.stop()
        r = Redis(a.redis_server, a.redis_cli)
        try:
            test_ctl_many(a.meshgatectl, r)
        finally:
            r.stop()
        r = Redis(a.redis_server, a.redis_cli)
        try:
            test_ctl_layouts(a.meshgatectl, r)
        finally:
            r.stop()
        test_auth(a.meshgatectl, a.redis_server, a.redis_cli)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
