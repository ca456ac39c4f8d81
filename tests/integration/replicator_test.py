#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""meshgate-replicator against real processes the test starts: two etcd 3.4
servers set up as Cilium's clustermesh-apiserver runs its etcd (TLS, client
certificates, auth, CN users root and remote, remote read-only on cilium/;
tests/etcd/etcd_env.sh), data written with etcdctl in Cilium's formats, and
a redis-server. Checked through Redis itself, the control socket
(meshgatectl replicator status / troubleshoot) and /metrics:

- the initial copy (byte for byte, cluster config rewritten with cached
  and syncedCanaries, canaries after the data, heartbeat), puts and
  deletes, values refused (garbage, out of range, another cluster's label)
  and ID 0 skipped;
- etcd restarted empty and refilled: nothing deleted in between, the copy
  converges to the refilled data;
- etcd paused (SIGSTOP) past etcd.heartbeat_timeout: reconnect by cause
  heartbeat, the copy catches up after SIGCONT;
- the replicator killed with SIGKILL mid-list: no canary claims a copy;
- two replicators: the holder paused past the lease TTL, the other takes
  over and writes, the first comes back as standby;
- Redis restarted empty and FLUSHALL: everything written again;
- a cluster file removed: marker and config at once, data after
  drain.grace, marker kept; the file back: marker gone, data back;
- a certificate whose CN is no etcd user, a wrong CA, a closed port:
  clear errors in status and troubleshoot;
- the namespace filter.

Prints PASS/FAIL lines "replicator/<name>"; exits non-zero on failure.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ETCD_ENV = os.path.join(ROOT, "tests", "etcd", "etcd_env.sh")
LIB = os.path.join(ROOT, "conf", "redis", "meshgate.lua")

failures = 0
TAG = ""


def result(name, ok, why=""):
    global failures
    if ok:
        print(f"PASS: replicator/{TAG}{name}")
        if why and os.environ.get("MG_TEST_VERBOSE"):
            print(f"  {why}")
    else:
        failures += 1
        print(f"FAIL: replicator/{TAG}{name}: {why}")
    sys.stdout.flush()


def skip(name, why):
    print(f"SKIP: replicator/{TAG}{name}: {why}")
    sys.stdout.flush()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(fn, timeout, step=0.1):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    return last


# ---- Cilium's formats ----

def labels(cluster, ns, app):
    # pkg/labels SortedList: source:key=value; sorted by key
    ls = {"io.cilium.k8s.policy.cluster": cluster, "io.kubernetes.pod.namespace": ns,
          "app": app, "io.cilium.k8s.policy.serviceaccount": "default"}
    return "".join("k8s:%s=%s;" % (k, ls[k]) for k in sorted(ls))


def ip_pair(ip, ident, ns, pod, host="192.168.16.2", ports=True):
    # IPIdentityPair as Cilium's json.Marshal writes it (field order, Mask null)
    v = {"IP": ip, "Mask": None, "HostIP": host, "ID": ident, "Key": 0, "Metadata": "",
         "K8sNamespace": ns, "K8sPodName": pod, "K8sServiceAccount": "default"}
    if ports:
        v["NamedPorts"] = [{"Name": "http", "Port": 8080, "Protocol": "TCP"}]
    return json.dumps(v, separators=(",", ":"))


def cluster_config(cid):
    return json.dumps({"id": cid, "capabilities": {"syncedCanaries": True,
                                                   "maxConnectedClusters": 255}},
                      separators=(",", ":"))


# ---- processes ----

class Etcd:
    """One etcd (tests/etcd/etcd_env.sh) and etcdctl as root."""

    def __init__(self, base, name):
        self.dir = os.path.join(base, "etcd-" + name)
        self.name = name
        subprocess.run(["bash", ETCD_ENV, "start", self.dir, name], check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
        self.load_env()

    def load_env(self):
        self.env = {}
        with open(os.path.join(self.dir, "env")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    self.env[k] = v.strip("'\"")

    def ctl(self, *args, stdin=None, check=True):
        e = self.env
        cmd = ["etcdctl", "--endpoints", e["ETCD_ENDPOINT"], "--cacert", e["ETCD_CA"],
               "--cert", e["ETCD_ROOT_CERT"], "--key", e["ETCD_ROOT_KEY"]] + list(args)
        p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, ETCDCTL_API="3"))
        if check and p.returncode != 0:
            raise RuntimeError("etcdctl %s: %s" % (" ".join(args), p.stderr))
        return p.stdout

    def put(self, k, v):
        self.ctl("put", k, "--", v)

    def delete(self, k):
        self.ctl("del", k)

    def txn_put(self, kvs):
        """Many puts, 128 per txn as Cilium's writers batch them."""
        items = list(kvs.items())
        for i in range(0, len(items), 128):
            ops = "".join('put "%s" %s\n' % (k, json.dumps(v)) for k, v in items[i:i + 128])
            self.ctl("txn", stdin="\n" + ops + "\n\n")

    def revision(self):
        out = json.loads(self.ctl("get", "cilium/.heartbeat", "-w", "json"))
        return out["header"]["revision"]

    def fill(self, cid, idents, ips, canaries=True):
        """A clustermesh-apiserver's etcd: config, data, canaries, heartbeat."""
        n = self.name
        self.put("cilium/.has-cluster-config", "true")
        self.put("cilium/cluster-config/" + n, cluster_config(cid))
        kv = {}
        for ident, v in idents.items():
            kv["cilium/state/identities/v1/id/%d" % ident] = v
        for ip, v in ips.items():
            kv["cilium/state/ip/v1/default/" + ip] = v
        if kv:
            self.txn_put(kv)
        self.heartbeat()
        if canaries:
            for p in ("identities", "ip"):
                self.put("cilium/synced/%s/cilium/state/%s/v1" % (n, p), now3339())

    def heartbeat(self):
        self.put("cilium/.heartbeat", now3339())

    def config_file(self):
        return os.path.join(self.dir, self.name)

    def restart_empty(self):
        subprocess.run(["bash", ETCD_ENV, "restart-empty", self.dir], check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
        self.load_env()

    def pid(self):
        self.load_env()
        return int(self.env["ETCD_PID"])

    def stop(self):
        subprocess.run(["bash", ETCD_ENV, "stop", self.dir], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)


def now3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Redis:
    def __init__(self, base, port=None):
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=base)
        self.port = port or free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        ok = wait_for(lambda: self.cli("PING") == "PONG", 10)
        if not ok:
            raise RuntimeError("redis-server did not start")

    def cli(self, *args):
        p = subprocess.run(["redis-cli", "--raw", "-p", str(self.port)] + list(args),
                           capture_output=True, text=True, timeout=20)
        out = p.stdout
        return out[:-1] if out.endswith("\n") else out

    def get(self, k):
        p = subprocess.run(["redis-cli", "--raw", "-p", str(self.port), "GET", k],
                           capture_output=True, timeout=20)
        out = p.stdout
        return None if out == b"\n" and self.cli("EXISTS", k) == "0" else out[:-1].decode()

    def keys(self, pattern):
        out = self.cli("--scan", "--pattern", pattern)
        return sorted(x for x in out.split("\n") if x)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def restart_empty(self):
        self.stop()
        self.start()


class Replicator:
    ETCD = ("{page_size: 50, heartbeat_timeout: 4, backoff_min: 200, backoff_max: 1000, "
            "timeout: 5, connect_timeout: 2}")

    def __init__(self, binary, base, name, redis_port, mesh_dir, extra="", env=None, etcd=None):
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "rep.sock")
        self.metrics_port = free_port()
        self.cfg = os.path.join(self.dir, "replicator.yaml")
        with open(self.cfg, "w") as f:
            f.write("""\
version: 1
cluster: {name: site, id: 1}
clustermesh: {config_dir: %s, rescan_interval: 1}
redis: redis://127.0.0.1:%d/0
redis_functions: %s
etcd: %s
lease: {ttl: 3}
drain: {grace: 3}
writer: {check_interval: 1}
control: {socket: %s}
metrics: {listen: 127.0.0.1:%d}
%s""" % (mesh_dir, redis_port, LIB, etcd or self.ETCD, self.sock, self.metrics_port, extra))
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.binary = binary
        self.env = env
        self.proc = subprocess.Popen([binary, "-c", self.cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: os.path.exists(self.sock), 10)

    def status(self, ctl):
        p = subprocess.run([ctl, "--socket", self.sock, "replicator", "status", "-o", "json"],
                           capture_output=True, text=True, timeout=20)
        try:
            return json.loads(p.stdout)
        except ValueError:
            return None

    def cluster(self, ctl, name):
        st = self.status(ctl)
        for c in (st or {}).get("clusters", []):
            if c["name"] == name:
                return c
        return None

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                    timeout=5) as r:
            return r.read().decode()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def logtext(self):
        with open(os.path.join(self.dir, "log")) as f:
            return f.read()


# ---- the scenarios ----

B, C = "cluster-b", "cluster-c"
CACHE_ID = "cilium/cache/identities/v1/%s/id/%d"
CACHE_IP = "cilium/cache/ip/v1/%s/%s"


class T:
    pass


def data_b():
    ids = {131073: labels(B, "shop", "web"), 131074: labels(B, "shop", "db"),
           131080: labels(B, "other", "batch")}
    ips = {"10.2.0.5": ip_pair("10.2.0.5", 131073, "shop", "web-0"),
           "10.2.0.6": ip_pair("10.2.0.6", 131074, "shop", "db-0"),
           "10.2.0.20": ip_pair("10.2.0.20", 131080, "other", "batch-0", ports=False)}
    return ids, ips


def garbage_b():
    """Values the gateways would refuse, and an endpoint without identity yet."""
    ids = {131075: "not a label string",
           65537: labels(B, "shop", "stray"),           # cluster 1's range
           131076: labels(C, "shop", "impostor")}       # another cluster's label
    ips = {"10.2.0.9": ip_pair("10.2.0.9", 0, "shop", "pending-0"),
           "10.2.0.10": "{not json",
           "10.2.0.11": ip_pair("10.2.0.11", 65537, "shop", "stray-0")}
    return ids, ips


def data_c():
    ids = {196609: labels(C, "shop", "api")}
    ips = {"10.3.0.5": ip_pair("10.3.0.5", 196609, "shop", "api-0")}
    return ids, ips


def cluster_ready(t, rep, name):
    c = rep.cluster(t.ctl, name)
    return c if c and c.get("synced") and c.get("canaries") else None


def expect_copy(t, name, ids, ips, absent_ids=(), absent_ips=()):
    """Redis holds exactly these values (byte for byte) and not the absent ones."""
    for i, v in ids.items():
        got = t.redis.get(CACHE_ID % (name, i))
        if got != v:
            return "identity %d: %r != %r" % (i, got, v)
    for ip, v in ips.items():
        got = t.redis.get(CACHE_IP % (name, ip))
        if got != v:
            return "ip %s: %r != %r" % (ip, got, v)
    for i in absent_ids:
        if t.redis.cli("EXISTS", CACHE_ID % (name, i)) != "0":
            return "identity %d written" % i
    for ip in absent_ips:
        if t.redis.cli("EXISTS", CACHE_IP % (name, ip)) != "0":
            return "ip %s written" % ip
    return ""


def test_initial(t):
    ok = wait_for(lambda: cluster_ready(t, t.rep, B) and cluster_ready(t, t.rep, C), 60)
    result("initial_synced", bool(ok), json.dumps(t.rep.status(t.ctl))[:800])
    ids, ips = data_b()
    gids, gips = garbage_b()
    why = expect_copy(t, B, ids, ips, absent_ids=gids, absent_ips=gips)
    result("copy_byte_for_byte", why == "", why)
    result("copy_other_cluster", expect_copy(t, C, *data_c()) == "", expect_copy(t, C, *data_c()))
    cfg = json.loads(t.redis.get("cilium/cluster-config/" + B) or "{}")
    caps = cfg.get("capabilities", {})
    result("config_rewritten", cfg.get("id") == 2 and caps.get("cached") is True and
           caps.get("syncedCanaries") is True and caps.get("maxConnectedClusters") == 255, cfg)
    can = t.redis.keys("cilium/synced/%s/*" % B)
    result("canaries", can == ["cilium/synced/%s/cilium/cache/identities/v1" % B,
                               "cilium/synced/%s/cilium/cache/ip/v1" % B], can)
    hb = t.redis.get("meshgate/heartbeat/" + B) or ""
    result("heartbeat_key", len(hb) == 20 and hb.endswith("Z"), hb)
    result("log_and_epoch", t.redis.cli("EXISTS", "meshgate/log/" + B, "meshgate/epoch/" + B)
           == "2", "")
    c = t.rep.cluster(t.ctl, B)
    ref = c.get("refused", {})
    keys = " ".join(r["key"] for r in c.get("refusals", []))
    result("refused_counted", ref.get("parse") == 2 and ref.get("range") == 2 and
           ref.get("cluster") == 1 and c.get("id_zero") == 1, json.dumps(c)[:600])
    result("refused_listed", all(k in keys for k in ("/id/131075", "/id/65537", "/id/131076",
                                                     "/10.2.0.10", "/10.2.0.11")), keys)
    m = t.rep.metrics()
    result("metrics_refused", 'meshgate_replicator_values_refused_total{cluster="cluster-b",'
           'reason="parse"} 2' in m, "")
    result("metrics_lease", "meshgate_replicator_lease_holder 1" in m, "")
    pc = subprocess.run([sys.executable, os.path.join(HERE, "prom_check.py"),
                         "http://127.0.0.1:%d/metrics" % t.rep.metrics_port,
                         "--require", "meshgate_replicator_lease_holder",
                         "--require", "meshgate_replicator_rate_limiter_wait_seconds",
                         "--expect", 'meshgate_replicator_entries{cluster="cluster-b",'
                         'kind="ip"}=6'], capture_output=True, text=True, timeout=30)
    result("metrics_prom_check", pc.returncode == 0,
           "\n".join(x for x in pc.stdout.split("\n") if x.startswith("FAIL")))
    result("metrics_histogram",
           'meshgate_replicator_rate_limiter_wait_seconds_count{cluster="cluster-b",call="range"}'
           in m, "")


def test_changes(t):
    b = t.etcd[B]
    v7 = ip_pair("10.2.0.7", 131073, "shop", "web-1")
    b.put("cilium/state/ip/v1/default/10.2.0.7", v7)
    ok = wait_for(lambda: t.redis.get(CACHE_IP % (B, "10.2.0.7")) == v7, 10)
    result("put_copied", bool(ok), "")
    b.delete("cilium/state/ip/v1/default/10.2.0.6")
    ok = wait_for(lambda: t.redis.cli("EXISTS", CACHE_IP % (B, "10.2.0.6")) == "0", 10)
    result("delete_copied", bool(ok), "")
    nl = labels(B, "shop", "web2")
    b.put("cilium/state/identities/v1/id/131073", nl)
    ok = wait_for(lambda: t.redis.get(CACHE_ID % (B, 131073)) == nl, 10)
    result("update_copied", bool(ok), "")
    b.put("cilium/state/identities/v1/id/131073", labels(B, "shop", "web"))
    b.put("cilium/state/ip/v1/default/10.2.0.6", ip_pair("10.2.0.6", 131074, "shop", "db-0"))
    b.delete("cilium/state/ip/v1/default/10.2.0.7")
    ids, ips = data_b()
    ok = wait_for(lambda: expect_copy(t, B, ids, ips, absent_ips=["10.2.0.7"]) == "", 10)
    result("changes_converge", bool(ok), expect_copy(t, B, ids, ips))


def key_count(t, name):
    return len(t.redis.keys("cilium/cache/*/v1/%s/*" % name))


def test_restart_empty(t):
    """etcd restarted empty (a new apiserver), then refilled by it."""
    b = t.etcd[B]
    before = key_count(t, B)
    b.restart_empty()
    t.hb_skip.discard(B)
    # Until the refill's canaries, nothing of the old copy may go.
    low = before
    end = time.time() + 4
    while time.time() < end:
        low = min(low, key_count(t, B))
        time.sleep(0.2)
    result("restart_empty_keeps_copy", low == before, "%d of %d keys left" % (low, before))
    ids, ips = data_b()
    del ips["10.2.0.5"]
    ips["10.2.0.8"] = ip_pair("10.2.0.8", 131073, "shop", "web-2")
    b.fill(2, ids, ips)
    ok = wait_for(lambda: expect_copy(t, B, ids, ips, absent_ips=["10.2.0.5"]) == "", 30)
    result("restart_empty_converges", bool(ok),
           expect_copy(t, B, ids, ips, absent_ips=["10.2.0.5"]))
    c = t.rep.cluster(t.ctl, B) or {}
    result("restart_empty_reconnected", sum(c.get("reconnects", {}).values()) >= 1, c)
    # back to the usual data for what follows
    b.put("cilium/state/ip/v1/default/10.2.0.5", ip_pair("10.2.0.5", 131073, "shop", "web-0"))
    b.delete("cilium/state/ip/v1/default/10.2.0.8")
    ids, ips = data_b()
    wait_for(lambda: expect_copy(t, B, ids, ips) == "", 10)


def test_heartbeat(t):
    """etcd paused past etcd.heartbeat_timeout: the replicator reconnects."""
    b = t.etcd[B]
    before = (t.rep.cluster(t.ctl, B) or {}).get("failures", {}).get("heartbeat", 0)
    t.hb_skip.add(B)
    pid = b.pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        ok = wait_for(lambda: (t.rep.cluster(t.ctl, B) or {}).get("failures", {})
                      .get("heartbeat", 0) > before, 15)
        result("heartbeat_silence_noticed", bool(ok), t.rep.cluster(t.ctl, B))
        ids, ips = data_b()
        result("heartbeat_copy_kept", expect_copy(t, B, ids, ips) == "", "")
    finally:
        os.kill(pid, signal.SIGCONT)
        t.hb_skip.discard(B)
    v = ip_pair("10.2.0.30", 131073, "shop", "web-3")
    b.put("cilium/state/ip/v1/default/10.2.0.30", v)
    ok = wait_for(lambda: t.redis.get(CACHE_IP % (B, "10.2.0.30")) == v, 30)
    result("heartbeat_recovered", bool(ok), t.rep.cluster(t.ctl, B))
    b.delete("cilium/state/ip/v1/default/10.2.0.30")


def test_takeover(t):
    """Two replicas: the holder paused past the lease TTL, the other takes over."""
    other = Replicator(t.rep_bin, t.base, "rep2", t.redis.port, t.mesh, env=t.env)
    try:
        ok = wait_for(lambda: (other.status(t.ctl) or {}).get("lease", {}).get("holder")
                      is False and cluster_ready(t, other, B) is None and
                      (other.cluster(t.ctl, B) or {}).get("entries", {}).get("ip", 0) > 0, 20)
        result("standby_waits", bool(ok), other.status(t.ctl))
        before = key_count(t, B)
        t.rep.signal(signal.SIGSTOP)
        try:
            ok = wait_for(lambda: (other.status(t.ctl) or {}).get("lease", {}).get("holder"), 15)
            result("takeover", bool(ok), other.status(t.ctl))
            v = ip_pair("10.2.0.40", 131073, "shop", "web-4")
            t.etcd[B].put("cilium/state/ip/v1/default/10.2.0.40", v)
            ok = wait_for(lambda: t.redis.get(CACHE_IP % (B, "10.2.0.40")) == v, 10)
            result("takeover_writes", bool(ok), "")
            result("takeover_nothing_vanished", key_count(t, B) >= before,
                   "%d < %d" % (key_count(t, B), before))
        finally:
            t.rep.signal(signal.SIGCONT)
        ok = wait_for(lambda: (t.rep.status(t.ctl) or {}).get("lease", {}).get("holder")
                      is False, 10)
        st = t.rep.status(t.ctl) or {}
        lease = st.get("lease", {})
        result("paused_holder_is_standby", bool(ok) and lease.get("lost", 0) +
               lease.get("expired", 0) >= 1, lease)
        t.etcd[B].delete("cilium/state/ip/v1/default/10.2.0.40")
        ok = wait_for(lambda: t.redis.cli("EXISTS", CACHE_IP % (B, "10.2.0.40")) == "0", 10)
        result("new_holder_deletes", bool(ok), "")
        m = other.metrics()
        result("metrics_takeover", "meshgate_replicator_lease_takeovers_total 1" in m, "")
    finally:
        other.stop()
    ok = wait_for(lambda: (t.rep.status(t.ctl) or {}).get("lease", {}).get("holder"), 15)
    result("holder_back", bool(ok), "")


def test_redis_loss(t):
    ids, ips = data_b()
    t.redis.cli("FLUSHALL")
    ok = wait_for(lambda: expect_copy(t, B, ids, ips) == "" and
                  len(t.redis.keys("cilium/synced/%s/*" % B)) == 2 and
                  t.redis.cli("EXISTS", "cilium/cluster-config/" + B) == "1", 20)
    result("flushall_rewritten", bool(ok), expect_copy(t, B, ids, ips))
    t.redis.restart_empty()
    ok = wait_for(lambda: expect_copy(t, B, ids, ips) == "" and
                  expect_copy(t, C, *data_c()) == "" and
                  len(t.redis.keys("cilium/synced/%s/*" % C)) == 2, 30)
    result("redis_restart_rewritten", bool(ok), expect_copy(t, B, ids, ips))
    st = t.rep.status(t.ctl) or {}
    result("losses_counted", st.get("redis", {}).get("losses", 0) >= 1, st.get("redis"))


def test_failover(t):
    """A primary with a replica; the primary dies, the replica is promoted and
    the address the replicator uses (a unix socket path) now leads to it."""
    d = tempfile.mkdtemp(prefix="fo-", dir=t.base)
    pport = free_port()
    procs = []

    def server(name, extra):
        p = subprocess.Popen(["redis-server", "--port", str(pport if name == "p" else 0),
                              "--bind", "127.0.0.1", "--unixsocket", os.path.join(d, name + ".sock"),
                              "--dir", d, "--dbfilename", name + ".rdb", "--save", "",
                              "--appendonly", "no"] + extra,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        return p

    def cli(name, *args):
        return subprocess.run(["redis-cli", "--raw", "-s", os.path.join(d, name + ".sock")] +
                              list(args), capture_output=True, text=True, timeout=20).stdout.strip()

    primary = server("p", [])
    wait_for(lambda: cli("p", "PING") == "PONG", 10)
    server("r", ["--replicaof", "127.0.0.1", str(pport)])
    wait_for(lambda: cli("r", "PING") == "PONG", 10)
    link = os.path.join(d, "redis.sock")
    os.symlink(os.path.join(d, "p.sock"), link)
    rep = Replicator(t.rep_bin, t.base, "rep-fo", 0, t.mesh, env=t.env)
    rep.stop()  # rewrite its config for the unix socket
    with open(rep.cfg) as f:
        cfg = f.read().replace("redis://127.0.0.1:0/0", "unix://" + link)
    with open(rep.cfg, "w") as f:
        f.write(cfg)
    rep.log = open(os.path.join(rep.dir, "log"), "a")
    rep.proc = subprocess.Popen([t.rep_bin, "-c", rep.cfg], stdout=rep.log,
                                stderr=subprocess.STDOUT, env=t.env)
    try:
        ok = wait_for(lambda: cluster_ready(t, rep, B) and
                      cli("r", "EXISTS", "cilium/synced/%s/cilium/cache/ip/v1" % B) == "1", 30)
        result("failover_replica_has_copy", bool(ok), "")
        primary.kill()
        primary.wait()
        cli("r", "REPLICAOF", "NO", "ONE")
        os.unlink(link)
        os.symlink(os.path.join(d, "r.sock"), link)
        v = ip_pair("10.2.0.50", 131073, "shop", "web-5")
        t.etcd[B].put("cilium/state/ip/v1/default/10.2.0.50", v)
        ok = wait_for(lambda: cli("r", "GET", CACHE_IP % (B, "10.2.0.50")) == v, 20)
        st = rep.status(t.ctl) or {}
        result("failover_writes_to_promoted", bool(ok), json.dumps(st.get("redis")))
        result("failover_still_holder", st.get("lease", {}).get("holder") is True and
               st.get("redis", {}).get("errors", 0) >= 1, st.get("lease"))
        t.etcd[B].delete("cilium/state/ip/v1/default/10.2.0.50")
        ok = wait_for(lambda: cli("r", "EXISTS", CACHE_IP % (B, "10.2.0.50")) == "0", 10)
        result("failover_deletes", bool(ok), "")
    finally:
        rep.stop()
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)


def test_drain(t):
    path = os.path.join(t.mesh, C)
    keep = os.path.join(t.base, "cluster-c.saved")
    shutil.move(path, keep)
    ok = wait_for(lambda: t.redis.cli("EXISTS", "meshgate/removed/" + C) == "1" and
                  t.redis.cli("EXISTS", "cilium/cluster-config/" + C) == "0", 10)
    result("drain_marker_first", bool(ok) and expect_copy(t, C, *data_c()) == "", "")
    ok = wait_for(lambda: key_count(t, C) == 0 and
                  t.redis.keys("cilium/synced/%s/*" % C) == [] and
                  t.redis.cli("EXISTS", "meshgate/log/" + C) == "0", 15)
    result("drain_after_grace", bool(ok), key_count(t, C))
    result("drain_marker_stays", t.redis.cli("EXISTS", "meshgate/removed/" + C) == "1", "")
    shutil.move(keep, path)
    ok = wait_for(lambda: t.redis.cli("EXISTS", "meshgate/removed/" + C) == "0" and
                  expect_copy(t, C, *data_c()) == "", 30)
    result("readd_clears_marker", bool(ok), t.rep.cluster(t.ctl, C))


def test_bad_endpoints(t):
    """A CN that is no etcd user, a wrong CA, a closed port."""
    e = t.etcd[B].env
    ep = e["ETCD_ENDPOINT"]
    cfgs = {
        "bad-cn": (ep, e["ETCD_CA"], e["ETCD_NOBODY_CERT"], e["ETCD_NOBODY_KEY"]),
        "bad-ca": (ep, e["ETCD_WRONG_CA"], e["ETCD_REMOTE_CERT"], e["ETCD_REMOTE_KEY"]),
        "no-server": ("https://127.0.0.1:%d" % free_port(), e["ETCD_CA"], e["ETCD_REMOTE_CERT"],
                      e["ETCD_REMOTE_KEY"]),
    }
    for name, (ep_, ca, cert, key) in cfgs.items():
        with open(os.path.join(t.mesh, name), "w") as f:
            f.write("endpoints:\n- %s\ntrusted-ca-file: %s\ncert-file: %s\nkey-file: %s\n" %
                    (ep_, ca, cert, key))
    for name in cfgs:
        ok = wait_for(lambda: (t.rep.cluster(t.ctl, name) or {}).get("error"), 20)
        result("status_error_" + name, bool(ok), t.rep.cluster(t.ctl, name))
    p = subprocess.run([t.ctl, "--socket", t.rep.sock, "replicator", "troubleshoot", "-o",
                        "json"], capture_output=True, text=True, timeout=60)
    tr = {}
    try:
        tr = {c["name"]: c for c in json.loads(p.stdout)["clusters"]}
    except (ValueError, KeyError):
        pass
    s = json.dumps(tr.get("bad-ca", {})).lower()
    result("troubleshoot_wrong_ca", "trust" in s or "unknown ca" in s, s[:400])
    s = json.dumps(tr.get("no-server", {})).lower()
    result("troubleshoot_refused", "refused" in s, s[:400])
    s = json.dumps(tr.get("bad-cn", {}))
    result("troubleshoot_bad_cn", '"read_allowed": true' not in s and "nobody" in s, s[:600])
    s = json.dumps(tr.get(B, {}))
    result("troubleshoot_good", '"read_allowed": true' in s and '"present": true' in s, s[:600])
    p = subprocess.run([t.ctl, "--socket", t.rep.sock, "replicator", "troubleshoot"],
                       capture_output=True, text=True, timeout=60)
    result("troubleshoot_text", p.returncode == 0 and "cluster bad-ca" in p.stdout, p.stderr)
    for name in cfgs:
        os.unlink(os.path.join(t.mesh, name))


def test_compaction(t):
    """etcd compacted past the revision the watch starts from: the watch is
    canceled (compacted), the replicator lists again and deletes what is gone."""
    c = t.etcd[C]
    redis = Redis(t.base)
    mesh = os.path.join(t.base, "mesh-c")
    os.makedirs(mesh, exist_ok=True)
    shutil.copy(c.config_file(), os.path.join(mesh, C))
    # Two seconds between requests: the watch is created well after the list.
    slow = "{bootstrap_qps: 0.5, qps: 0.5, heartbeat_timeout: 0}"
    rep = Replicator(t.rep_bin, t.base, "rep-compact", redis.port, mesh, env=t.env, etcd=slow)
    try:
        ok = wait_for(lambda: (rep.cluster(t.ctl, C) or {}).get("synced"), 60, step=0.05)
        st = (rep.cluster(t.ctl, C) or {}).get("state")
        v = ip_pair("10.3.0.9", 196609, "shop", "api-9")
        c.put("cilium/state/ip/v1/default/10.3.0.9", v)
        c.put("cilium/state/ip/v1/default/10.3.0.10", v.replace("10.3.0.9", "10.3.0.10"))
        c.delete("cilium/state/ip/v1/default/10.3.0.10")
        c.ctl("compaction", str(c.revision()))
        result("compaction_during_setup", bool(ok) and st == "listing", "state %s" % st)
        ok = wait_for(lambda: (rep.cluster(t.ctl, C) or {}).get("failures", {})
                      .get("compacted", 0) >= 1, 30)
        result("compaction_noticed", bool(ok), rep.cluster(t.ctl, C))
        tr = T()
        tr.redis = redis
        ok = wait_for(lambda: redis.get(CACHE_IP % (C, "10.3.0.9")) == v and
                      expect_copy(tr, C, *data_c(), absent_ips=["10.3.0.10"]) == "", 30)
        result("compaction_relisted", bool(ok), expect_copy(tr, C, *data_c()))
    finally:
        rep.stop()
        redis.stop()
        c.delete("cilium/state/ip/v1/default/10.3.0.9")


def test_kill_mid_list(t):
    """SIGKILL while the initial list runs: no canary may claim a copy."""
    d = t.etcd["cluster-d"]
    redis = Redis(t.base)
    mesh = os.path.join(t.base, "mesh-d")
    os.makedirs(mesh, exist_ok=True)
    shutil.copy(d.config_file(), os.path.join(mesh, "cluster-d"))
    slow = "{page_size: 20, bootstrap_qps: 4, heartbeat_timeout: 0}"
    rep = Replicator(t.rep_bin, t.base, "rep-kill", redis.port, mesh, env=t.env, etcd=slow)
    try:
        ok = wait_for(lambda: key_count_r(redis, "cluster-d") > 0, 30)
        st = rep.cluster(t.ctl, "cluster-d") or {}
        rep.signal(signal.SIGKILL)
        rep.proc.wait()
        n = key_count_r(redis, "cluster-d")
        result("killed_mid_list", bool(ok) and 0 < n < 800, "%d keys, state %s" %
               (n, st.get("state")))
        result("killed_no_canary", redis.keys("cilium/synced/cluster-d/*") == [],
               redis.keys("cilium/synced/cluster-d/*"))
    finally:
        rep.stop()
    rep = Replicator(t.rep_bin, t.base, "rep-kill2", redis.port, mesh, env=t.env)
    try:
        ok = wait_for(lambda: cluster_ready(t, rep, "cluster-d"), 60)
        result("restart_completes", bool(ok) and key_count_r(redis, "cluster-d") == 800 and
               len(redis.keys("cilium/synced/cluster-d/*")) == 2, key_count_r(redis, "cluster-d"))
    finally:
        rep.stop()
        redis.stop()


def key_count_r(redis, name):
    return len(redis.keys("cilium/cache/*/v1/%s/*" % name))


def test_filter(t):
    """Only identities of namespace shop, and their addresses."""
    redis = Redis(t.base)
    rep = Replicator(t.rep_bin, t.base, "rep-filter", redis.port, t.mesh, env=t.env,
                     extra="filter: {namespaces: {include: [shop]}}\n")
    try:
        ok = wait_for(lambda: cluster_ready(t, rep, B), 30)
        ids, ips = data_b()
        shop_ids = {k: v for k, v in ids.items() if k != 131080}
        shop_ips = {k: v for k, v in ips.items() if k != "10.2.0.20"}
        tr = T()
        tr.redis = redis
        why = expect_copy(tr, B, shop_ids, shop_ips, absent_ids=[131080], absent_ips=["10.2.0.20"])
        result("filter_namespaces", bool(ok) and why == "", why)
        c = rep.cluster(t.ctl, B) or {}
        result("filter_counted", c.get("filtered", 0) >= 2, c.get("filtered"))
    finally:
        rep.stop()
        redis.stop()


POLICY = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: to-web, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: gw}}
  egress:
  - toEndpoints:
    - matchLabels: {app: web, io.cilium.k8s.policy.cluster: cluster-b}
%s"""


def test_filter_policy(t):
    """Only what the policies can select; a policy naming world keeps everything."""
    ids, ips = data_b()
    for name, extra, keep_all in (("policy", "", False),
                                  ("policy_world", "  - toEntities: [world]\n", True)):
        pdir = os.path.join(t.base, "pol-" + name)
        os.makedirs(pdir, exist_ok=True)
        with open(os.path.join(pdir, "p.yaml"), "w") as f:
            f.write(POLICY % extra)
        redis = Redis(t.base)
        rep = Replicator(t.rep_bin, t.base, "rep-" + name, redis.port, t.mesh, env=t.env,
                         extra="filter: {policy: {sources: [{cluster: site, path: %s}]}}\n"
                         % pdir)
        try:
            ok = wait_for(lambda: cluster_ready(t, rep, B), 30)
            tr = T()
            tr.redis = redis
            if keep_all:
                why = expect_copy(tr, B, ids, ips)
                note = (rep.status(t.ctl) or {}).get("filter", {}).get("note", "")
                result("filter_world_keeps_all", bool(ok) and why == "" and "world" in note,
                       why or note)
            else:
                why = expect_copy(tr, B, {131073: ids[131073]}, {"10.2.0.5": ips["10.2.0.5"]},
                                  absent_ids=[131074, 131080],
                                  absent_ips=["10.2.0.6", "10.2.0.20"])
                result("filter_policy_selectable_only", bool(ok) and why == "", why)
        finally:
            rep.stop()
            redis.stop()


def test_limits(t):
    """docs/reliability.md, "Limits": limits.queue_bytes and limits.max_entries.

    queue_bytes: Redis frozen while a cluster of 3.5 MB is being listed
    slowly; the reader waits for the writer (counted), status and /metrics
    answer at once meanwhile, and once Redis thaws every entry arrives.
    max_entries: a cluster with more keys is refused and nothing
    of it is written; at the limit it copies."""
    e = Etcd(t.base, "cluster-e")
    t.etcd["cluster-e"] = e
    # 1200 pods of 64 named ports each (the most a value may have): 3.5 MB
    ports = [{"Name": "p%d" % j, "Port": 1000 + j, "Protocol": "TCP"} for j in range(64)]
    ips = {}
    for i in range(1200):
        ip = "10.5.%d.%d" % (i // 250, i % 250 + 1)
        v = json.loads(ip_pair(ip, 327681, "shop", "pod-%d" % i))
        v["NamedPorts"] = ports
        ips[ip] = json.dumps(v, separators=(",", ":"))
    e.fill(5, {327681: labels("cluster-e", "shop", "bulk")}, ips)
    total = len(ips) + 1
    fast = ("{page_size: 100, heartbeat_timeout: 0, backoff_min: 200, backoff_max: 1000, "
            "timeout: 5, connect_timeout: 2}")

    # back-pressure
    redis = Redis(t.base)
    mesh = os.path.join(t.base, "mesh-e")
    os.makedirs(mesh, exist_ok=True)
    # Two requests a second: the list of 12 pages of 290 kB takes about 7 s.
    # Redis is frozen once the list has begun; redis_timeout 30 keeps the
    # writer blocked in its call to it (instead of giving up after 5 s and
    # taking the queue into its map while disconnected).
    slow = ("{page_size: 100, bootstrap_qps: 2, heartbeat_timeout: 0, backoff_min: 200, "
            "backoff_max: 1000, timeout: 5, connect_timeout: 2}")
    rep = Replicator(t.rep_bin, t.base, "rep-queue", redis.port, mesh, env=t.env, etcd=slow,
                     extra="limits: {queue_bytes: 1048576}\nredis_timeout: 30\n")
    try:
        held = wait_for(lambda: (rep.status(t.ctl) or {}).get("lease", {}).get("acquired"), 20)
        shutil.copy(e.config_file(), os.path.join(mesh, "cluster-e"))
        listing = wait_for(lambda: (rep.cluster(t.ctl, "cluster-e") or {}).get("state") ==
                           "listing", 30, step=0.05)
        # 6 s frozen: 12 more pages requested at the token bucket's pace,
        # more than 1 MiB of them queued behind the blocked writer.
        # Meanwhile status and /metrics answer at once (they never wait for
        # the writer's Redis call) and tell how long that call has waited.
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(3)
            t0 = time.monotonic()
            st = rep.status(t.ctl) or {}
            t1 = time.monotonic()
            try:
                m = rep.metrics()
            except OSError as ex:
                m = "no answer: %r" % ex
            t2 = time.monotonic()
            txt = subprocess.run([t.ctl, "--socket", rep.sock, "replicator", "status"],
                                 capture_output=True, text=True, timeout=20).stdout
            call = st.get("redis", {}).get("call_seconds")
            mcall = re.search(r'^meshgate_replicator_redis_call_seconds (\S+)$', m, re.M)
            result("status_while_redis_frozen",
                   t1 - t0 < 1 and t2 - t1 < 1 and call is not None and call >= 1 and
                   mcall is not None and float(mcall.group(1)) >= 1 and
                   "the writer has waited" in txt,
                   "status in %.2f s (call_seconds %r), /metrics in %.2f s (%s), text %r" %
                   (t1 - t0, call, t2 - t1, mcall.group(0) if mcall else "no gauge",
                    txt[:300]))
            time.sleep(3)
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        q = wait_for(lambda: ((rep.cluster(t.ctl, "cluster-e") or {}).get("queue", {})
                              .get("waits", 0) > 0) and
                     rep.cluster(t.ctl, "cluster-e")["queue"], 20)
        result("queue_backpressure", bool(held) and bool(listing) and bool(q) and
               q["peak"] > 1048576 and q["limit"] == 1048576,
               "lease %r, listing %r, queue %r" % (held, listing, q))
        ok = wait_for(lambda: cluster_ready(t, rep, "cluster-e") and
                      key_count_r(redis, "cluster-e") == total, 60)
        c = rep.cluster(t.ctl, "cluster-e") or {}
        result("queue_nothing_lost", bool(ok), "%d of %d keys, %r" %
               (key_count_r(redis, "cluster-e"), total, c.get("queue")))
        m = rep.metrics()
        result("queue_metrics", re.search(r'meshgate_replicator_queue_waits_total'
                                          r'\{cluster="cluster-e"\} [1-9]', m) is not None,
               [ln for ln in m.splitlines() if "queue_waits" in ln])
    finally:
        rep.stop()
        redis.stop()

    # max_entries: one fewer than the cluster has, then exactly as many
    for name, limit, refused in (("over", total - 1, True), ("at", total, False)):
        redis = Redis(t.base)
        mesh = os.path.join(t.base, "mesh-e-" + name)
        os.makedirs(mesh, exist_ok=True)
        shutil.copy(e.config_file(), os.path.join(mesh, "cluster-e"))
        rep = Replicator(t.rep_bin, t.base, "rep-max-" + name, redis.port, mesh, env=t.env,
                         etcd=fast, extra="limits: {max_entries: %d}\n" % limit)
        try:
            if refused:
                want = "%d keys at revision" % total
                want2 = "more than limits.max_entries (%d): refused" % limit
                c = wait_for(lambda: (lambda c: c if c and c.get("failures", {}).get("limit")
                                      else None)(rep.cluster(t.ctl, "cluster-e")), 30)
                time.sleep(1)
                c = rep.cluster(t.ctl, "cluster-e") or {}
                result("max_entries_refused", bool(c) and want in rep.logtext() and
                       want2 in rep.logtext() and
                       not c.get("synced") and key_count_r(redis, "cluster-e") == 0 and
                       redis.keys("cilium/synced/cluster-e/*") == [],
                       "%d keys written, status %r" % (key_count_r(redis, "cluster-e"), c))
            else:
                ok = wait_for(lambda: cluster_ready(t, rep, "cluster-e") and
                              key_count_r(redis, "cluster-e") == total, 60)
                result("max_entries_at_limit", bool(ok), key_count_r(redis, "cluster-e"))
        finally:
            rep.stop()
            redis.stop()


def heartbeats(t):
    import threading

    def loop():
        while not t.done:
            for name, e in list(t.etcd.items()):
                if name not in t.hb_skip:
                    try:
                        e.heartbeat()
                    except Exception:  # noqa: BLE001 - a restarting etcd
                        pass
            time.sleep(1)
    th = threading.Thread(target=loop, daemon=True)
    th.start()
    return th


def main():
    global TAG
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicator", required=True)
    ap.add_argument("--meshgatectl", required=True)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    TAG = a.tag + "/" if a.tag else ""
    for tool in ("etcd", "etcdctl", "redis-server", "redis-cli", "openssl"):
        if shutil.which(tool) is None:
            skip("all", "%s is not installed (scripts/setup.sh installs it)" % tool)
            return 0
    t = T()
    t.rep_bin, t.ctl = os.path.abspath(a.replicator), os.path.abspath(a.meshgatectl)
    t.base = tempfile.mkdtemp(prefix="mg-rep-")
    t.env = dict(os.environ)
    t.etcd, t.hb_skip, t.done = {}, set(), False
    t.rep = None
    redis = None
    try:
        for name in (B, C, "cluster-d"):
            t.etcd[name] = Etcd(t.base, name)
        ids, ips = data_b()
        gids, gips = garbage_b()
        t.etcd[B].fill(2, {**ids, **gids}, {**ips, **gips})
        t.etcd[C].fill(3, *data_c())
        dids = {262144 + 1 + i: labels("cluster-d", "shop", "app%d" % i) for i in range(400)}
        dips = {"10.4.%d.%d" % (i // 250, i % 250 + 1):
                ip_pair("10.4.%d.%d" % (i // 250, i % 250 + 1), 262145 + i, "shop", "p%d" % i)
                for i in range(400)}
        t.etcd["cluster-d"].fill(4, dids, dips)
        heartbeats(t)
        t.mesh = os.path.join(t.base, "mesh")
        os.makedirs(t.mesh)
        for name in (B, C):
            shutil.copy(t.etcd[name].config_file(), os.path.join(t.mesh, name))
        # a certificate beside the configs, as the clustermesh secret mounts them
        shutil.copy(t.etcd[B].env["ETCD_CA"], os.path.join(t.mesh, "cluster-b.etcd-client-ca.crt"))
        t.redis = redis = Redis(t.base)
        t.rep = Replicator(t.rep_bin, t.base, "rep1", redis.port, t.mesh, env=t.env)
        for fn in (test_initial, test_changes, test_bad_endpoints, test_heartbeat,
                   test_restart_empty, test_takeover, test_redis_loss, test_failover, test_drain,
                   test_compaction, test_kill_mid_list, test_filter, test_filter_policy,
                   test_limits):
            try:
                fn(t)
            except Exception as e:  # noqa: BLE001 - one scenario's crash fails it alone
                result(fn.__name__, False, "raised %r" % e)
        rc = t.rep.stop()
        result("clean_exit", rc == 0, "exit status %s\n%s" % (rc, t.rep.logtext()[-3000:]))
    finally:
        t.done = True
        if t.rep is not None and t.rep.proc.poll() is None:
            t.rep.stop()
        if redis is not None:
            redis.stop()
        for e in t.etcd.values():
            e.stop()
        if failures == 0:
            shutil.rmtree(t.base, ignore_errors=True)
        else:
            print("kept %s" % t.base)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
