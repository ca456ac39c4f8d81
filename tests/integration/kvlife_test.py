#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The lifecycle of a synced cluster in the running daemon (docs/kvstore.md,
"Lifecycle of a cluster"), against a real redis-server the test starts.

Two clusters in one Redis, each imported by `meshgatectl kv import` in
the per-cluster layout: cluster-a (the gateway's own, id 1) and cluster-b
(a remote one, id 2). The daemon runs on pcap ports that receive nothing
and is asked over its control socket what it holds. Then:

- cluster-b's removal marker appears: the cluster shows `removing` with
  the time its state goes, keeps its state during kvstore.removal_grace,
  then loses it (addresses world, identities gone, metrics say removed);
- the marker goes: cluster-b is synced anew;
- a reload whose kvstore.clusters no longer names cluster-b removes its
  state at once; a reload that names it again brings it back;
- the daemon's config names a cluster whose Redis config carries another
  id than cluster.id: the cluster is refused and sync status says why.

Prints PASS/FAIL lines "kvlife/<name>"; exits non-zero on any failure.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402
from kv_test import LIB, Redis  # noqa: E402

failures = 0
TAG = ""


def result(name, ok, why=""):
    global failures
    if ok:
        print(f"PASS: kvlife/{TAG}{name}")
    else:
        failures += 1
        print(f"FAIL: kvlife/{TAG}{name}: {why}")
    sys.stdout.flush()


IDENTITIES = """\
apiVersion: v1
kind: List
items:
- apiVersion: cilium.io/v2
  kind: CiliumIdentity
  metadata: {name: "%(id)d"}
  security-labels:
    k8s:app: %(app)s
    k8s:io.kubernetes.pod.namespace: shop
    k8s:io.cilium.k8s.policy.cluster: %(cluster)s
- apiVersion: cilium.io/v2
  kind: CiliumEndpoint
  metadata: {name: %(app)s-0, namespace: shop}
  status:
    identity: {id: %(id)d}
    networking:
      addressing: [{ipv4: %(ip)s}]
"""


def write_config(workdir, prefix, clusters, grace):
    p = lambda n: os.path.join(workdir, n)  # noqa: E731
    for n in ("in0.pcap", "in1.pcap"):
        mgtest.empty_pcap(p(n))
    os.makedirs(p("policies"), exist_ok=True)
    eal = ["-l", "0", "--no-huge", "-m", "512", "--no-pci", "--no-telemetry",
           "--file-prefix", prefix,
           "--vdev=net_pcap0,rx_pcap=%s,tx_pcap=%s" % (p("in0.pcap"), p("out0.pcap")),
           "--vdev=net_pcap1,rx_pcap=%s,tx_pcap=%s" % (p("in1.pcap"), p("out1.pcap"))]
    text = """\
version: 1
eal: [%s]
datapath:
  mode: wire
  ports:
    - {name: inside, device: net_pcap0, peer: outside}
    - {name: outside, device: net_pcap1, peer: inside}
cluster: {name: cluster-a, id: 1}
policy:
  sources:
    - {cluster: cluster-a, path: policies/}
kvstore:
  redis: %s
  clusters: [%s]
  sync_timeout: 20
  block_ms: 5
  removal_grace: %d
control:
  socket: %s
metrics:
  listen: 127.0.0.1:0
""" % (", ".join(json.dumps(a) for a in eal), json.dumps(workdir_url[0]),
       ", ".join(clusters), grace, json.dumps(p("meshgate.sock")))
    with open(p("meshgate.yaml"), "w") as f:
        f.write(text)
    return p("meshgate.yaml")


workdir_url = [""]


def ctl_json(ctl, sock, *args):
    p = subprocess.run([ctl, "--socket", sock] + list(args) + ["-o", "json"],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        return {"error": p.stderr.strip(), "rc": p.returncode}
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {"error": "not JSON: " + p.stdout}


def cluster_state(ctl, sock, name):
    st = ctl_json(ctl, sock, "sync", "status")
    for c in st.get("clusters", []):
        if c.get("name") == name:
            return c
    return {}


def wait_for(fn, timeout):
    end = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() >= end:
            return v
        time.sleep(0.1)


def ip_identity(ctl, sock, ip):
    r = ctl_json(ctl, sock, "ip", "get", ip)
    return r.get("identity"), r.get("cluster")


def main():
    global TAG
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshgate", required=True)
    ap.add_argument("--meshgatectl", required=True)
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    ap.add_argument("--redis-cli", default=shutil.which("redis-cli") or "redis-cli")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    TAG = a.tag + ":" if a.tag else ""
    if not os.access(a.redis_server, os.X_OK):
        print("SKIP: kvlife/all: redis-server not installed")
        return 0
    if os.geteuid() != 0:
        print("SKIP: kvlife/all: needs root (DPDK EAL)")
        return 0
    ctl = a.meshgatectl
    r = Redis(a.redis_server, a.redis_cli)
    workdir = tempfile.mkdtemp(prefix="mg-kvlife-")
    prefix = "mgkvlife%d" % os.getpid()
    url = f"redis://127.0.0.1:{r.port}/0"
    workdir_url[0] = url
    sock = os.path.join(workdir, "meshgate.sock")
    proc = None
    try:
        # cluster-c is in the same Redis but not in the daemon's config.
        for cl, cid, app, ip in (("cluster-a", 1, "web", "10.1.0.1"),
                                 ("cluster-b", 2, "db", "10.2.0.1"),
                                 ("cluster-c", 3, "cache", "10.3.0.1")):
            path = os.path.join(workdir, cl + ".yaml")
            with open(path, "w") as f:
                f.write(IDENTITIES % {"id": (cid << 16) + 100, "app": app, "cluster": cl,
                                      "ip": ip})
            p = subprocess.run([ctl, "kv", "import", "--redis", url, "--functions", LIB,
                                "--cluster", cl, "--cluster-id", str(cid), path],
                               capture_output=True, text=True, timeout=60)
            result(f"import_{cl}", p.returncode == 0, p.stderr)
        cfg = write_config(workdir, prefix, ["cluster-a", "cluster-b"], 2)
        log = open(os.path.join(workdir, "meshgate.err"), "w")
        proc = subprocess.Popen([a.meshgate, "-c", cfg], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)
        up = wait_for(lambda: cluster_state(ctl, sock, "cluster-b").get("state") == "synced",
                      30)
        result("started_synced", up, open(os.path.join(workdir, "meshgate.err")).read())
        if not up:
            return 1
        result("remote_entry", ip_identity(ctl, sock, "10.2.0.1") == (131172, "cluster-b"),
               ip_identity(ctl, sock, "10.2.0.1"))
        # No IPv6 entry at all: an empty listing (the sanitized daemon
        # once reported qsort on a NULL array here).
        v6 = ctl_json(ctl, sock, "ip", "list", "--family", "ipv6")
        result("ip_list_empty", v6.get("total") == 0 and v6.get("entries") == [], v6)
        ips = ctl_json(ctl, sock, "ip", "list")
        result("unconfigured_cluster_apart", ip_identity(ctl, sock, "10.3.0.1")[0] == 9
               and ips.get("total") == 2 and ctl_json(ctl, sock, "identity", "get",
                                                       "196708").get("rc") == 1, ips)

        # The removal marker: removing (kept), then removed.
        r.cli("SET", "meshgate/removed/cluster-b", "2026-12-07T00:00:00Z")
        c = wait_for(lambda: (lambda x: x if x.get("state") == "removing" else None)(
            cluster_state(ctl, sock, "cluster-b")), 5) or {}
        result("marker_removing", c.get("removing") and c.get("removal_at")
               and ip_identity(ctl, sock, "10.2.0.1")[0] == 131172, c)
        c = wait_for(lambda: (lambda x: x if x.get("state") == "removed" else None)(
            cluster_state(ctl, sock, "cluster-b")), 10) or {}
        ids = ctl_json(ctl, sock, "identity", "list", "--cluster", "cluster-b")
        result("marker_removed", c.get("removals") == 1 and c.get("entries") == 0
               and ip_identity(ctl, sock, "10.2.0.1")[0] == 9
               and ids.get("identities") == [], f"{c} {ids}")
        result("marker_local_untouched",
               ip_identity(ctl, sock, "10.1.0.1") == (65636, "cluster-a"),
               ip_identity(ctl, sock, "10.1.0.1"))
        m = subprocess.run([ctl, "--socket", sock, "metrics"], capture_output=True, text=True,
                           timeout=30).stdout
        result("marker_removed_metric", 'meshgate_kvstore_removed{cluster="cluster-b"} 1' in m
               and 'meshgate_kvstore_removals_total{cluster="cluster-b"} 1' in m, m[-2000:])
        # The marker goes: synced anew.
        r.cli("DEL", "meshgate/removed/cluster-b")
        c = wait_for(lambda: (lambda x: x if x.get("state") == "synced" else None)(
            cluster_state(ctl, sock, "cluster-b")), 10) or {}
        result("marker_gone_back", c.get("entries") == 2
               and ip_identity(ctl, sock, "10.2.0.1")[0] == 131172, c)

        # A reload without cluster-b: its state goes at once.
        write_config(workdir, prefix, ["cluster-a"], 2)
        p = subprocess.run([ctl, "--socket", sock, "reload"], capture_output=True, text=True,
                           timeout=60)
        st = ctl_json(ctl, sock, "sync", "status")
        result("reload_drops_cluster", p.returncode == 0
               and [x["name"] for x in st.get("clusters", [])] == ["cluster-a"]
               and ip_identity(ctl, sock, "10.2.0.1")[0] == 9
               and ctl_json(ctl, sock, "identity", "get", "131172").get("rc") == 1,
               f"{p.stderr} {st}")
        write_config(workdir, prefix, ["cluster-a", "cluster-b"], 2)
        p = subprocess.run([ctl, "--socket", sock, "reload"], capture_output=True, text=True,
                           timeout=60)
        c = wait_for(lambda: (lambda x: x if x.get("state") == "synced" else None)(
            cluster_state(ctl, sock, "cluster-b")), 10) or {}
        result("reload_adds_cluster", p.returncode == 0 and c.get("entries") == 2
               and ip_identity(ctl, sock, "10.2.0.1")[0] == 131172, f"{p.stderr} {c}")

        # An operator's resync is counted as such (not as an epoch change).
        p = subprocess.run([ctl, "--socket", sock, "sync", "resync"], capture_output=True,
                           text=True, timeout=30)
        c = wait_for(lambda: (lambda x: x if x.get("full_syncs", 0) >= 2 else None)(
            cluster_state(ctl, sock, "cluster-a")), 10) or {}
        rs = c.get("resyncs", {})
        result("operator_resync_cause", p.returncode == 0 and rs.get("operator") == 1
               and rs.get("epoch") == 0, c)

        # Lost data: the cluster config goes; the state stays, stale.
        r.cli("DEL", "cilium/cluster-config/cluster-b")
        c = wait_for(lambda: (lambda x: x if x.get("state") == "stale" else None)(
            cluster_state(ctl, sock, "cluster-b")), 5) or {}
        result("config_missing_stale", c.get("stale_reason") == "config-missing"
               and c.get("stale_since") and "cilium/cluster-config/cluster-b" in c.get("why", "")
               and ip_identity(ctl, sock, "10.2.0.1")[0] == 131172, c)
        txt = subprocess.run([ctl, "--socket", sock, "sync", "status"], capture_output=True,
                             text=True, timeout=30).stdout
        result("config_missing_text", "cluster-b: STALE since" in txt
               and "the last state is kept" in txt, txt)

        # The local cluster's config names another id than cluster.id.
        r.cli("SET", "cilium/cluster-config/cluster-a",
              '{"id":7,"capabilities":{"cached":true,"syncedCanaries":true}}')
        c = wait_for(lambda: (lambda x: x if x.get("state") == "stale" else None)(
            cluster_state(ctl, sock, "cluster-a")), 5) or {}
        result("local_wrong_id_refused", c.get("stale_reason") == "config-refused"
               and "says id 7, the gateway's configuration 1" in c.get("why", "")
               and ip_identity(ctl, sock, "10.1.0.1")[0] == 65636, c)

        proc.terminate()
        rc = proc.wait(timeout=30)
        result("clean_exit", rc == 0, rc)
        proc = None
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        mgtest.cleanup_runtime_dir(prefix)
        r.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
