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


def kv_config(path, url, timeout):
    """Turn mgtest's config into one whose identities and ipcache come from Redis."""
    with open(path) as f:
        text = f.read()
    text, n = re.subn(r"identities:\n  files: \[[^\n]*\]\nipcache:\n  files: \[[^\n]*\]\n", "",
                      text)
    if n != 1:
        raise RuntimeError("unexpected config layout:\n" + text)
    text += ("kvstore:\n  redis: %s\n  clusters: [cluster-a]\n  sync_timeout: %d\n"
             "  block_ms: 5\n" % (mgtest.yaml_str(url), timeout))
    with open(path, "w") as f:
        f.write(text)


def run(meshgate, case, prefix, url, timeout):
    """mgtest.run_daemon, with the config rewritten for Redis."""
    orig = mgtest.write_config

    def write_config(workdir, pfx, c, identities=None, endpoints=None):
        path = orig(workdir, pfx, c, identities, endpoints)
        kv_config(path, url, timeout)
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
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
