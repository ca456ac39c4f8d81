#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Integration test of the daemon's Redis sync (docs/kvstore.md, "In the
daemon").

Starts a private redis-server, imports the pcap tests' identities and
endpoints into it as cluster-a (meshgatectl kv import), and runs the real
daemon on net_pcap ports with a config whose identities and ipcache come
ONLY from Redis (no identities.files, no ipcache.files). Checks byte for
byte which frames left: an allowed flow passes, a denied one drops, an
unknown address is world; and that the stats show the cluster synced.
Second case: Redis unreachable with sync_timeout 1: the daemon says it
proceeds without cluster-a and judges frames with its static state only.
AUTH: a redis-server with requirepass and an ACL user; the daemon logs in
as kvstore.user with kvstore.password_file (mode 0600) and syncs; a
password file group or others can read (0644) stops the start (exit 1); a
wrong password: the daemon says AUTH failed and proceeds without the
cluster after sync_timeout. Live update: `meshgatectl kv put-ip` moves an
address to another identity between two runs: the verdict follows.
Prints PASS/FAIL lines "kvd/<name>"; exits non-zero on any failure.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402
from kv_test import LIB, Redis, free_port  # noqa: E402
from mgtest import FIXTURES, sequence  # noqa: E402
from pcap_test import BACKEND, BACKEND_TCP80, FRONTEND, WORLD_A, I, tcp  # noqa: E402

failures = 0


def result(name, ok, why=""):
    global failures
    if ok:
        print(f"PASS: kvd/{name}")
    else:
        failures += 1
        print(f"FAIL: kvd/{name}: {why}")
    sys.stdout.flush()


def kv_config(path, url, timeout, extra=""):
    """Turn mgtest's config into one whose identities and ipcache come from Redis.
    @extra: more kvstore keys, two-space indented lines."""
    with open(path) as f:
        text = f.read()
    text, n = re.subn(r"identities:\n  files: \[[^\n]*\]\nipcache:\n  files: \[[^\n]*\]\n", "",
                      text)
    if n != 1:
        raise RuntimeError("unexpected config layout:\n" + text)
    text += ("kvstore:\n  redis: %s\n  clusters: [cluster-a]\n  sync_timeout: %d\n"
             "  block_ms: 5\n" % (mgtest.yaml_str(url), timeout)) + extra
    with open(path, "w") as f:
        f.write(text)


def run(meshgate, case, prefix, url, timeout, extra="", pwfile=None):
    """mgtest.run_daemon, with the config rewritten for Redis. @pwfile:
    (content, mode) of "redis.pw" written beside the config."""
    orig = mgtest.write_config

    def write_config(workdir, pfx, c, identities=None, endpoints=None):
        path = orig(workdir, pfx, c, identities, endpoints)
        kv_config(path, url, timeout, extra)
        if pwfile is not None:
            pw = os.path.join(workdir, "redis.pw")
            with open(pw, "w") as f:
                f.write(pwfile[0])
            os.chmod(pw, pwfile[1])
        return path

    mgtest.write_config = write_config
    try:
        return mgtest.run_daemon(meshgate, case, prefix)
    finally:
        mgtest.write_config = orig


def frames_case(name, synced):
    """Allowed, denied and world frames; without the synced identities every
    address is world and no policy selects it: everything passes."""
    f, b = FRONTEND, BACKEND
    return sequence(name, policies=BACKEND_TCP80, lcores="0", steps=[
        I(tcp(f, b, 40000, 80), "allow", "frontend -> backend:80 is allowed"),
        I(tcp(f, b, 40001, 81), "ingress" if synced else "allow", "port 81 is not"),
        I(tcp(WORLD_A, b, 40002, 80), "ingress" if synced else "allow",
          "an unknown address is world, not frontend"),
    ])


def test_synced(meshgate, ctl, r, tag):
    argv = [ctl, "kv", "import", "--redis", f"redis://127.0.0.1:{r.port}/0", "--functions",
            LIB, "--cluster", "cluster-a", "--cluster-id", "1",
            os.path.join(FIXTURES, "identities.yaml"), os.path.join(FIXTURES, "endpoints.yaml")]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    result("import", p.returncode == 0, p.stderr)
    case = frames_case("synced", True)
    res = run(meshgate, case, "mgkvd1" + tag, f"redis://127.0.0.1:{r.port}", 30)
    errs = mgtest.check_case(case, res)
    result("synced_frames", not errs, "; ".join(errs) + "\n" + res.stderr)
    kv = (res.stats or {}).get("kvstore", {})
    result("synced_stats", kv.get("clusters") == 1 and kv.get("synced") == 1
           and kv.get("entries", 0) >= 10 and kv.get("resyncs") == 0, kv)
    result("synced_log", "cluster cluster-a (id 1, local) synced" in res.stderr, res.stderr)


def test_unreachable(meshgate, tag):
    case = frames_case("unreachable", False)
    res = run(meshgate, case, "mgkvd2" + tag, f"redis://127.0.0.1:{free_port()}", 1)
    errs = mgtest.check_case(case, res)
    result("unreachable_frames", not errs, "; ".join(errs) + "\n" + res.stderr)
    result("unreachable_log", "proceeding with what it has" in res.stderr
           and "cluster-a" in res.stderr, res.stderr)
    kv = (res.stats or {}).get("kvstore", {})
    result("unreachable_stats", kv.get("clusters") == 1 and kv.get("synced") == 0
           and kv.get("entries") == 0, kv)


def moved_case(name):
    """After 10.0.1.1 moved from frontend (65600) to db (65602)."""
    f, b = FRONTEND, BACKEND
    return sequence(name, policies=BACKEND_TCP80, lcores="0", steps=[
        I(tcp(f, b, 40000, 80), "ingress", "10.0.1.1 is db now, not frontend"),
        I(tcp(WORLD_A, b, 40002, 80), "ingress", "an unknown address is still world"),
    ])


def import_argv(ctl, url):
    return [ctl, "kv", "import", "--redis", url, "--functions", LIB, "--cluster", "cluster-a",
            "--cluster-id", "1", os.path.join(FIXTURES, "identities.yaml"),
            os.path.join(FIXTURES, "endpoints.yaml")]


def test_auth(meshgate, ctl, server, cli, tag):
    """ACL user + password file; file mode; wrong password; live update."""
    r = Redis(server, cli, extra=["--requirepass", "adminpw"], password="adminpw")
    try:
        out = r.cli("ACL", "SETUSER", "gw", "on", ">gw-secret", "~*", "&*", "+@all")
        result("auth_acl_user", out == "OK", out)
        p = subprocess.run(import_argv(ctl, f"redis://gw:gw-secret@127.0.0.1:{r.port}/0"),
                           capture_output=True, text=True, timeout=60)
        result("auth_import", p.returncode == 0, p.stderr)
        url = f"redis://127.0.0.1:{r.port}"
        user = "  user: gw\n  password_file: redis.pw\n"

        case = frames_case("auth", True)
        res = run(meshgate, case, "mgkvd3" + tag, url, 30, user, ("gw-secret\n", 0o600))
        errs = mgtest.check_case(case, res)
        result("auth_frames", not errs, "; ".join(errs) + "\n" + res.stderr)
        kv = (res.stats or {}).get("kvstore", {})
        result("auth_stats", kv.get("synced") == 1 and kv.get("entries", 0) >= 10, kv)

        # A password file group or others can read: the start is refused.
        case = frames_case("auth_mode", True)
        res = run(meshgate, case, "mgkvd4" + tag, url, 30, user, ("gw-secret\n", 0o644))
        result("auth_mode_refused", res.rc == 1 and "redis.pw" in res.stderr
               and ("0644" in res.stderr or "group or others" in res.stderr),
               "rc %r, stderr:\n%s" % (res.rc, res.stderr))

        # A password file that does not exist: the start is refused too.
        case = frames_case("auth_missing", True)
        res = run(meshgate, case, "mgkvd7" + tag, url, 30,
                  "  user: gw\n  password_file: no-such.pw\n")
        result("auth_missing_refused", res.rc == 1 and "no-such.pw" in res.stderr,
               "rc %r, stderr:\n%s" % (res.rc, res.stderr))

        # Wrong password: AUTH fails, the start goes on without the cluster.
        case = frames_case("auth_wrong", False)
        res = run(meshgate, case, "mgkvd5" + tag, url, 1, user, ("not-it\n", 0o600))
        errs = mgtest.check_case(case, res)
        result("auth_wrong_frames", not errs, "; ".join(errs) + "\n" + res.stderr)
        result("auth_wrong_log", "AUTH failed" in res.stderr
               and "proceeding with what it has" in res.stderr, res.stderr)
        kv = (res.stats or {}).get("kvstore", {})
        result("auth_wrong_stats", kv.get("synced") == 0 and kv.get("entries") == 0, kv)

        # Live update between two runs: 10.0.1.1 moves to db's identity.
        p = subprocess.run([ctl, "kv", "put-ip", "--cluster", "cluster-a", "--ip", FRONTEND,
                            "--identity", "65602", "--redis",
                            f"redis://gw:gw-secret@127.0.0.1:{r.port}/0"],
                           capture_output=True, text=True, timeout=60)
        result("moved_put_ip", p.returncode == 0, p.stderr)
        case = moved_case("moved")
        res = run(meshgate, case, "mgkvd6" + tag, url, 30, user, ("gw-secret\n", 0o400))
        errs = mgtest.check_case(case, res)
        result("moved_frames", not errs, "; ".join(errs) + "\n" + res.stderr)
    finally:
        r.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshgate", required=True)
    ap.add_argument("--meshgatectl", required=True)
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    ap.add_argument("--redis-cli", default=shutil.which("redis-cli") or "redis-cli")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    if not os.access(a.redis_server, os.X_OK):
        print("SKIP: kvd/all: redis-server not installed")
        return 0
    tempfile.tempdir = None
    r = Redis(a.redis_server, a.redis_cli)
    try:
        test_synced(a.meshgate, a.meshgatectl, r, a.tag)
    finally:
        r.stop()
    test_unreachable(a.meshgate, a.tag)
    test_auth(a.meshgate, a.meshgatectl, a.redis_server, a.redis_cli, a.tag)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
