#!/usr/bin/python3
"""meshgate's metrics, end to end: the Prometheus endpoint, the control
socket's `metrics` command and DPDK telemetry, checked against the frames
the daemon was given.

One daemon runs on net_pcap ports over a known mix of frames (allowed TCP
and UDP flows both ways, IPv4 and IPv6; egress and ingress policy denials;
malformed frames; ARP; a reply to a denied SYN), with EAL telemetry on and
--idle-exit long enough to look at it while it runs. Once /metrics shows
every frame received, the live figures are compared with what the frames
and the policy imply (mgtest.expected_stats, the same derivation the pcap
tests use), with the config (ipcache entries, identities, policies), with
prom_check.py's naming rules, with `meshgatectl metrics` (text and JSON),
with every /meshgate/* telemetry command (raw socket, and DPDK's own
dpdk-telemetry.py once), and 404/405 answers are checked. After the
daemon exits, its --stats-file must hold the same counters.

Then a second daemon with small /metrics limits (metrics.max_connections
12, metrics.request_timeout 1) meets slow clients from the scraper's own
address: silent ones, ones that trickle header lines, ones that ask for
answers and never read them. Below the address's share each is cut after
the timeout (not before) and counted by reason, while a scraper that
keeps its connection after its answer is closed then as idle, uncounted;
at the share the surplus is evicted; in a flood of 52 that reconnect as
soon as they are cut, fresh scrapes are each answered within 5 s and
every connection the server ended is a counted cut; the daemon then
stops cleanly with slow clients still connected.

    metrics_test.py --meshgate build/app/meshgate/meshgate \\
                    --meshgatectl build/app/meshgatectl/meshgatectl [--tag T] [--keep]

Prints "PASS: integration/metrics/<check>", "FAIL: ...: why" or
"SKIP: ...: why" per check; exits 1 if any check failed. Loopback only.
"""

import argparse
import contextlib
import io
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import yaml  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import ARP, Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402

import mgtest  # noqa: E402
import prom_check  # noqa: E402
from mgtest import X  # noqa: E402

PY = "/usr/bin/python3"
DPDK_TELEMETRY = "/usr/bin/dpdk-telemetry.py"
NAME = "integration/metrics/"

FRONTEND, BACKEND, DB = "10.0.1.1", "10.0.2.1", "10.0.2.2"
FRONTEND6, BACKEND6 = "fd00:1::1", "fd00:2::1"
WORLD_A, WORLD_B = "192.0.2.9", "198.51.100.7"

# Families whose value moves by itself while the daemon idles.
# The control socket's figures move with every meshgatectl call, the
# comparisons' own included.
CONTROL_FAMILIES = ("meshgate_control_clients", "meshgate_control_connections_total",
                    "meshgate_control_connections_closed_total",
                    "meshgate_control_requests_total", "meshgate_control_request_errors_total",
                    "meshgate_monitor_events_total", "meshgate_monitor_events_lost_total")
MOVING = ("meshgate_uptime_seconds", "meshgate_worker_loops_total",
          "meshgate_worker_busy_loops_total", "meshgate_worker_busy_ratio") + CONTROL_FAMILIES

# ---------------------------------------------------------------- results

results = {"pass": 0, "fail": 0, "skip": 0}


def report(check, errors):
    """One PASS/FAIL line for @check; @errors: list of strings (empty: pass)."""
    if errors:
        results["fail"] += 1
        print("FAIL: %s%s: %s" % (NAME, check, errors[0]))
        for e in errors[1:12]:
            print("  " + e)
        if len(errors) > 12:
            print("  ... %d more" % (len(errors) - 12))
    else:
        results["pass"] += 1
        print("PASS: %s%s" % (NAME, check))
    sys.stdout.flush()
    return not errors


def skip(check, why):
    results["skip"] += 1
    print("SKIP: %s%s: %s" % (NAME, check, why))
    sys.stdout.flush()


# ---------------------------------------------------------------- traffic

def mac(addr):
    h = sum(ord(c) * (i + 7) for i, c in enumerate(addr)) & 0xFFFFFF
    return "02:00:00:%02x:%02x:%02x" % (h >> 16, (h >> 8) & 0xFF, h & 0xFF)


def l3(src, dst):
    return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)


def tcp(src, dst, sport, dport, flags="S", payload=b"", seq=1000, ack=0):
    return bytes(Ether(src=mac(src), dst=mac(dst)) / l3(src, dst) /
                 TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack) / payload)


def udp(src, dst, sport, dport, payload=b"x" * 8):
    return bytes(Ether(src=mac(src), dst=mac(dst)) / l3(src, dst) /
                 UDP(sport=sport, dport=dport) / payload)


def arp(src, dst, reply=False):
    return bytes(Ether(src=mac(src), dst=mac(dst) if reply else "ff:ff:ff:ff:ff:ff") /
                 ARP(op=2 if reply else 1, hwsrc=mac(src), psrc=src,
                     hwdst=mac(dst) if reply else "00:00:00:00:00:00", pdst=dst))


def cnp(name, selector, body):
    return ("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
            "metadata:\n  name: %s\n  namespace: prod\n"
            "spec:\n  endpointSelector:\n    matchLabels: {%s}\n%s" % (name, selector, body))


# backend takes TCP 80 and UDP 53 from frontend only; frontend may send
# nothing but that. db and the world have no policy of their own.
POLICIES = {
    "backend.yaml": cnp("backend-ingress", "app: backend", """\
  ingress:
    - fromEndpoints:
        - matchLabels: {app: frontend}
      toPorts:
        - ports:
            - {port: "80", protocol: TCP}
            - {port: "53", protocol: UDP}
"""),
    "frontend.yaml": cnp("frontend-egress", "app: frontend", """\
  egress:
    - toEndpoints:
        - matchLabels: {app: backend}
      toPorts:
        - ports:
            - {port: "80", protocol: TCP}
            - {port: "53", protocol: UDP}
"""),
}


def traffic():
    """The case: frames in one global order (mgtest.sequence, burst 1), each
    with what the gateway must do with it."""
    f, b, f6, b6 = FRONTEND, BACKEND, FRONTEND6, BACKEND6
    base = Ether(src=mac(f), dst=mac(b), type=0x0800)
    steps = [
        # an allowed TCP connection, both ways
        ("in", X(tcp(f, b, 40000, 80, "S"), "allow")),
        ("out", X(tcp(b, f, 80, 40000, "SA", seq=5000, ack=1001), "ct")),
        ("in", X(tcp(f, b, 40000, 80, "A", seq=1001, ack=5001), "ct")),
        ("in", X(tcp(f, b, 40000, 80, "PA", b"GET / HTTP/1.1\r\n\r\n", seq=1001, ack=5001),
                 "ct")),
        ("out", X(tcp(b, f, 80, 40000, "PA", b"HTTP/1.1 200 OK\r\n" + b"z" * 700, seq=5001,
                      ack=1019), "ct")),
        # an allowed UDP exchange
        ("in", X(udp(f, b, 5353, 53, b"q" * 30), "allow")),
        ("out", X(udp(b, f, 53, 5353, b"r" * 120), "ct")),
        # IPv6: an allowed SYN and its reply
        ("in", X(tcp(f6, b6, 40010, 80, "S"), "allow")),
        ("out", X(tcp(b6, f6, 80, 40010, "SA", seq=7000, ack=1001), "ct")),
        # frontend's egress policy denies these (checked before ingress)
        ("in", X(tcp(f, DB, 40001, 5432), "egress")),
        ("in", X(tcp(f, WORLD_A, 40002, 443), "egress")),
        ("in", X(udp(f, b, 5353, 54), "egress")),
        ("in", X(tcp(f6, b6, 40011, 22), "egress")),
        # backend's ingress policy denies these (their sources have no policy)
        ("out", X(tcp(DB, b, 40003, 80), "ingress")),
        ("out", X(tcp(WORLD_B, b, 40004, 80), "ingress")),
        ("out", X(udp(DB, b, 5000, 53), "ingress")),
        # a reply to a denied SYN: no flow was opened
        ("out", X(tcp(DB, f, 5432, 40001, "SA"), "ct_tcp_not_syn")),
        # malformed frames
        ("in", X(bytes(base)[:10], "l2_truncated")),
        ("in", X(bytes(base / IP(src=f, dst=b, ihl=4) / TCP(dport=80)), "ipv4_bad_ihl")),
        ("out", X(bytes(Ether(src=mac(b), dst=mac(f), type=0x0800) / IP(src=b, dst=f, proto=6) /
                        Raw(b"\x00\x50\x9c\x40" + b"\0" * 6)), "tcp_truncated")),
        # ARP both ways
        ("in", X(arp(f, b), "arp")),
        ("out", X(arp(b, f, reply=True), "arp")),
    ]
    return mgtest.sequence("metrics", steps, policies=POLICIES,
                           ct_expect={"created": 3, "entries": 3, "expired": 0})


# ---------------------------------------------------------------- expectations

def fixture_counts():
    """(ipcache entries by family, identities by cluster) the fixtures load."""
    with open(os.path.join(mgtest.FIXTURES, "endpoints.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    fam = {"ipv4": set(), "ipv6": set()}
    for d in docs:
        for a in d["status"]["networking"]["addressing"]:
            for k in ("ipv4", "ipv6"):
                if a.get(k):
                    fam[k].add(a[k])
    ipcache = {k: len(v) for k, v in fam.items()}
    with open(os.path.join(mgtest.FIXTURES, "identities.yaml")) as f:
        ids = yaml.safe_load(f)["items"]
    clusters = {}
    for i in ids:
        c = i["security-labels"]["k8s:io.cilium.k8s.policy.cluster"]
        clusters[c] = clusters.get(c, 0) + 1
    # The reserved identities (host, world, ...: 1..MG_ID_RESERVED_MAX) are
    # always in the table, under the "reserved" cluster label.
    with open(os.path.join(mgtest.ROOT, "lib", "identity", "mg_identity.h")) as f:
        m = re.search(r"#define\s+MG_ID_RESERVED_MAX\s+(\d+)", f.read())
    clusters["reserved"] = int(m.group(1))
    return ipcache, clusters


def direction_of(reason):
    return {"policy_denied_egress": "egress", "policy_denied_ingress": "ingress"}.get(
        reason, "none")


# The port families: (family, counter key for rx, counter key for tx).
PORT_FAMILIES = (("meshgate_port_packets_total", "rx_packets", "tx_packets"),
                 ("meshgate_port_bytes_total", "rx_bytes", "tx_bytes"))


def put_port(put, name, p):
    """A port's series, from a dict with the stats file's per-port keys."""
    for fam, rx, tx in PORT_FAMILIES:
        put(fam, p.get(rx), port=name, direction="rx")
        put(fam, p.get(tx), port=name, direction="tx")
    put("meshgate_port_dropped_total", p.get("dropped"), port=name)


def put_policy_verdicts(put, allowed, denied_egress, denied_ingress):
    """meshgate_policy_verdicts_total from the three data-path counters.
    Egress is judged first and ingress only for what egress allowed, so
    egress allowed = allowed + denied_ingress (docs/metrics.md). A value
    that is not an integer is passed on as it is, for put to report."""
    def add(a, b):
        return a + b if isinstance(a, int) and isinstance(b, int) else (
            a if not isinstance(a, int) else b)

    put("meshgate_policy_verdicts_total", add(allowed, denied_ingress), direction="egress",
        action="allowed")
    put("meshgate_policy_verdicts_total", denied_egress, direction="egress", action="denied")
    put("meshgate_policy_verdicts_total", allowed, direction="ingress", action="allowed")
    put("meshgate_policy_verdicts_total", denied_ingress, direction="ingress", action="denied")


def stats_series(st):
    """The Prometheus series ({(name, labels): value}) a stats document
    (the --stats-file layout, or mgtest.expected_stats) stands for."""
    out = {}

    def put(name, value, **labels):
        if value is not None:
            out[(name, frozenset(labels.items()))] = value

    for port, p in st.get("ports", {}).items():
        put_port(put, port, p)
    v = st.get("verdicts", {})
    put_policy_verdicts(put, v.get("allowed"), v.get("denied_egress"), v.get("denied_ingress"))
    t = st.get("totals", {})
    put("meshgate_verdict_arp_passed_total", t.get("arp"))
    put("meshgate_verdict_nd_passed_total", t.get("nd"))
    put("meshgate_verdict_non_ip_passed_total", t.get("non_ip"))
    ct = st.get("conntrack", {})
    put("meshgate_verdict_ct_tracked_total", ct.get("tracked"))
    put("meshgate_verdict_ct_rechecked_total", ct.get("rechecked"))
    put("meshgate_verdict_ct_related_total", ct.get("related"))
    put("meshgate_verdict_fragments_passed_total", ct.get("fragments_passed"))
    put("meshgate_conntrack_entries", ct.get("entries"))
    put("meshgate_conntrack_fragments", ct.get("fragments"))
    put("meshgate_conntrack_memory_bytes", ct.get("memory"))
    put("meshgate_conntrack_created_total", ct.get("created"))
    put("meshgate_conntrack_expired_total", ct.get("expired"))
    put("meshgate_conntrack_full_total", ct.get("full"))
    r = st.get("reloads", {})
    put("meshgate_policy_reloads_total", r.get("ok"), result="ok")
    put("meshgate_policy_reloads_total", r.get("failed"), result="failed")
    for reason, n in st.get("drops", {}).items():
        put("meshgate_drops_total", n, reason=reason, direction=direction_of(reason))
    return out


def fmt_key(key):
    name, labels = key
    if not labels:
        return name
    return "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in sorted(labels)))


def compare_series(want, got, what, want_src="expected", got_src="/metrics"):
    """Errors where @got (a scrape) differs from @want, for every key of
    @want; @want_src and @got_src name the two sides in the messages."""
    errs = []
    for key in sorted(want, key=fmt_key):
        if key not in got:
            errs.append("%s: %s missing on %s" % (what, fmt_key(key), got_src))
        elif got[key] != want[key]:
            errs.append("%s: %s is %r on %s, %r %s" % (what, fmt_key(key), got[key], got_src,
                                                       want[key], want_src))
    return errs


# ---------------------------------------------------------------- scraping

def parse(text):
    """{(name, frozenset(labels)): value} of an exposition text."""
    series = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            series[(s.name, frozenset(s.labels.items()))] = s.value
    return series


def val(series, name, **labels):
    return series.get((name, frozenset(labels.items())))


def family(series, name):
    """{frozenset(labels): value} of one family's samples."""
    return {labels: v for (n, labels), v in series.items() if n == name}


def http(method, url, timeout=10):
    """(status, headers, body) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def scrape(base, timeout=10):
    status, headers, body = http("GET", base + "/metrics", timeout)
    if status != 200:
        raise RuntimeError("GET /metrics: status %d" % status)
    text = body.decode("utf-8")
    return text, parse(text)


# ---------------------------------------------------------------- telemetry

class Telemetry:
    """A client of DPDK's telemetry v2 socket (SOCK_SEQPACKET, JSON)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.greeting = json.loads(self.sock.recv(65536).decode())
        self.max_len = int(self.greeting.get("max_output_len", 16384))

    def ask(self, cmd):
        self.sock.send(cmd.encode())
        return json.loads(self.sock.recv(max(self.max_len, 65536)).decode())

    def close(self):
        self.sock.close()


def tel_key(name):
    """A name as a telemetry key ([A-Za-z0-9_/] only, docs/metrics.md)."""
    return re.sub(r"[^A-Za-z0-9_/]", "_", name)


def tel_to_series(cmd, d):
    """The Prometheus series ({(name, labels): value}) the telemetry
    answer @d to @cmd stands for, with what could not be mapped as errors."""
    out, errs = {}, []

    def put(name, value, **labels):
        if not isinstance(value, int):
            errs.append("%s: %s%s is %r, not an integer" % (cmd, name, labels or "", value))
            return
        out[(name, frozenset(labels.items()))] = value

    if not isinstance(d, dict):
        return out, ["%s: answer %r is not a dict" % (cmd, d)]
    if cmd == "/meshgate/info":
        if not isinstance(d.get("version"), str):
            errs.append("info: no version string")
        else:
            out[("meshgate_build_info", frozenset({"version": d["version"]}.items()))] = 1
        put("meshgate_uptime_seconds", d.get("uptime_seconds"))
    elif cmd == "/meshgate/ports":
        for key, p in d.items():
            if not isinstance(p, dict) or key != tel_key(p.get("name", "")):
                errs.append("ports: entry %s: %r" % (key, p))
                continue
            put_port(put, p["name"], p)
    elif cmd == "/meshgate/verdicts":
        den = d.get("denied") if isinstance(d.get("denied"), dict) else {}
        put_policy_verdicts(put, d.get("allowed"), den.get("egress"), den.get("ingress"))
        for k in ("ct_tracked", "ct_rechecked", "ct_related", "fragments_passed", "arp_passed",
                  "nd_passed", "non_ip_passed"):
            put("meshgate_verdict_%s_total" % k, d.get(k))
    elif cmd == "/meshgate/drops":
        for reason, n in d.items():
            put("meshgate_drops_total", n, reason=reason, direction=direction_of(reason))
    elif cmd == "/meshgate/ipcache":
        e = d.get("entries") if isinstance(d.get("entries"), dict) else {}
        for fam in ("ipv4", "ipv6"):
            put("meshgate_ipcache_entries", e.get(fam), family=fam)
    elif cmd == "/meshgate/identities":
        for cluster, n in d.items():
            put("meshgate_identities", n, cluster=cluster)  # the key; see caller
    elif cmd == "/meshgate/policy":
        for k in ("policies", "rules", "revision"):
            put("meshgate_policy_" + k, d.get(k))
        r = d.get("reloads") if isinstance(d.get("reloads"), dict) else {}
        for res in ("ok", "failed"):
            put("meshgate_policy_reloads_total", r.get(res), result=res)
    elif cmd == "/meshgate/conntrack":
        for k in ("entries", "fragments", "memory_bytes"):
            put("meshgate_conntrack_" + k, d.get(k))
        for k in ("created", "expired", "full", "fragments_full"):
            put("meshgate_conntrack_%s_total" % k, d.get(k))
    elif cmd == "/meshgate/kvstore":
        for key, k in d.items():
            if not isinstance(k, dict):
                errs.append("kvstore: entry %s: %r" % (key, k))
                continue
            c = k.get("name", key)
            put("meshgate_kvstore_connected", k.get("connected"), cluster=c)
            put("meshgate_kvstore_synced", k.get("synced"), cluster=c)
            put("meshgate_kvstore_entries", k.get("entries"), cluster=c)
            for n in ("events", "full_syncs", "conflicts", "mass_delete_refusals",
                      "disconnects"):
                put("meshgate_kvstore_%s_total" % n, k.get(n), cluster=c)
            for cause in ("epoch", "trimmed", "replid", "reconnect"):
                put("meshgate_kvstore_resyncs_total", k.get("resyncs_" + cause), cluster=c,
                    cause=cause)
            for reason in ("range", "parse", "heartbeat"):
                put("meshgate_kvstore_rejected_total", k.get("rejected_" + reason), cluster=c,
                    reason=reason)
            put("meshgate_kvstore_skipped_total", k.get("skipped_no_identity"), cluster=c,
                reason="no-identity")
            put("meshgate_kvstore_named_ports_dropped_total", k.get("named_ports_dropped"),
                cluster=c)
    elif cmd == "/meshgate/workers":
        for key, w in d.items():
            if not isinstance(w, dict):
                errs.append("workers: entry %s: %r" % (key, w))
                continue
            put("meshgate_worker_loops_total", w.get("loops"), worker=key)
            put("meshgate_worker_busy_loops_total", w.get("busy_loops"), worker=key)
            for k in ("lcore", "busy_ratio_ppm"):
                if not isinstance(w.get(k), int):
                    errs.append("workers: %s.%s is %r" % (key, k, w.get(k)))
    elif cmd == "/meshgate/metrics_http":
        c = d.get("connections_cut") if isinstance(d.get("connections_cut"), dict) else {}
        for reason in CUT_REASONS:
            put(CUT, c.get(reason), reason=reason)
    elif cmd == "/meshgate/control":
        put("meshgate_control_clients", d.get("clients"))
        put("meshgate_control_connections_total", d.get("accepted"))
        put("meshgate_control_requests_total", d.get("requests"))
        for reason, k in (("busy", "refused_busy"), ("idle", "closed_idle"),
                          ("slow", "closed_slow"), ("oversize", "closed_oversize"),
                          ("stuck", "closed_stuck")):
            put("meshgate_control_connections_closed_total", d.get(k), reason=reason)
        put("meshgate_control_request_errors_total", d.get("denied"), reason="denied")
        if isinstance(d.get("errors"), int) and isinstance(d.get("denied"), int):
            put("meshgate_control_request_errors_total", d["errors"] - d["denied"],
                reason="other")
        put("meshgate_monitor_events_total", d.get("monitor_events"))
        put("meshgate_monitor_events_lost_total", d.get("monitor_dropped"), where="subscriber")
        put("meshgate_monitor_events_lost_total", d.get("monitor_ring_lost"), where="ring")
    else:
        errs.append("%s: a command this test does not know" % cmd)
    return out, errs


def mg_families(cmd):
    """The Prometheus families a telemetry command covers (for the set check)."""
    return {
        "/meshgate/info": ("meshgate_build_info", "meshgate_uptime_seconds"),
        "/meshgate/ports": tuple(f[0] for f in PORT_FAMILIES) + (
            "meshgate_port_dropped_total",),
        "/meshgate/verdicts": ("meshgate_policy_verdicts_total",) +
        tuple("meshgate_verdict_%s_total" % k for k in (
            "ct_tracked", "ct_rechecked", "ct_related", "fragments_passed", "arp_passed",
            "nd_passed", "non_ip_passed")),
        "/meshgate/drops": ("meshgate_drops_total",),
        "/meshgate/ipcache": ("meshgate_ipcache_entries",),
        "/meshgate/identities": ("meshgate_identities",),
        "/meshgate/policy": ("meshgate_policy_policies", "meshgate_policy_rules",
                             "meshgate_policy_revision", "meshgate_policy_reloads_total"),
        "/meshgate/conntrack": ("meshgate_conntrack_entries", "meshgate_conntrack_fragments",
                                "meshgate_conntrack_memory_bytes",
                                "meshgate_conntrack_created_total",
                                "meshgate_conntrack_expired_total",
                                "meshgate_conntrack_full_total",
                                "meshgate_conntrack_fragments_full_total"),
        "/meshgate/kvstore": ("meshgate_kvstore_connected",),
        "/meshgate/workers": ("meshgate_worker_loops_total", "meshgate_worker_busy_loops_total"),
        "/meshgate/metrics_http": (CUT,),
        "/meshgate/control": CONTROL_FAMILIES,
    }.get(cmd, ())


# ---------------------------------------------------------------- the run

class Daemon:
    """The daemon, started in @workdir over @case's frames."""

    def __init__(self, meshgate, case, prefix, workdir, idle_ms, metrics=None):
        self.workdir, self.prefix = workdir, prefix
        mgtest.write_pcap(os.path.join(workdir, "inside-in.pcap"), [x.frame for x in case.inside])
        mgtest.write_pcap(os.path.join(workdir, "outside-in.pcap"),
                          [x.frame for x in case.outside])
        self.cfg = mgtest.write_config(workdir, prefix, case, telemetry=True, metrics=metrics)
        self.stats = os.path.join(workdir, "stats.json")
        self.socket = os.path.join(workdir, "meshgate.sock")
        self.err_path = os.path.join(workdir, "stderr.log")
        self.cmd = [meshgate, "-c", self.cfg, "--idle-exit", str(idle_ms),
                    "--stats-file", self.stats]
        self.err_f = open(self.err_path, "w")
        self.out_f = open(os.path.join(workdir, "stdout.log"), "w")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.out_f,
                                     stderr=self.err_f)
        self.port = None

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def wait_port(self, timeout):
        """The metrics port from the daemon's log line, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"metrics on http://\S+ \(port (\d+)\)", self.stderr())
            if m:
                self.port = int(m.group(1))
                return self.port
            if self.proc.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.err_f.close()
        self.out_f.close()


def wait_all_received(base, total, timeout, d):
    """Scrape until the rx counters add up to @total; the last scrape."""
    deadline = time.monotonic() + timeout
    last, err = None, None
    while time.monotonic() < deadline:
        if d.proc.poll() is not None:
            return None, "daemon exited (status %d) before it had received every frame" % (
                d.proc.returncode)
        try:
            text, series = scrape(base)
            rx = sum(v for labels, v in family(series, "meshgate_port_packets_total").items()
                     if dict(labels).get("direction") == "rx")
            last = (text, series)
            if rx == total:
                return last, None
            err = "rx packets add up to %d, sent %d" % (rx, total)
        except Exception as e:  # not up yet, or a broken answer: retry until the deadline
            err = "scrape: %r" % (e,)
        time.sleep(0.1)
    return None, "after %d s: %s" % (timeout, err)


def check_live(series, text, case, want_stats, version, stderr):
    """The live figures against what the frames and the config imply."""
    ipcache, clusters = fixture_counts()
    want = stats_series(want_stats)
    frames = case.inside + case.outside

    errs = []
    port_fams = [f[0] for f in PORT_FAMILIES] + ["meshgate_port_dropped_total"]
    p = {k: w for k, w in want.items() if k[0] in port_fams}
    if len(p) != 2 * (2 * len(PORT_FAMILIES) + 1):
        errs.append("expected %d port series, the derivation gave %d" % (
            2 * (2 * len(PORT_FAMILIES) + 1), len(p)))  # guards the test itself
    errs += compare_series(p, series, "live")
    for fam in port_fams:
        labels = {tuple(sorted(dict(lb))) for lb in family(series, fam)}
        if labels != ({("direction", "port")} if fam != "meshgate_port_dropped_total"
                      else {("port",)}):
            errs.append("%s has label sets %s" % (fam, sorted(labels)))
        ports = {dict(lb).get("port") for lb in family(series, fam)}
        if ports != {"inside", "outside"}:
            errs.append("%s: ports labelled %s, expected inside and outside" % (
                fam, sorted(ports)))
    for fam in ("meshgate_port_rx_packets_total", "meshgate_port_rx_bytes_total",
                "meshgate_port_tx_packets_total", "meshgate_port_tx_bytes_total"):
        if family(series, fam):
            errs.append("%s is still exported" % fam)
    report("ports", errs)

    v = {k: w for k, w in want.items()
         if k[0].startswith("meshgate_verdict_") or k[0] == "meshgate_policy_verdicts_total"}
    errs = compare_series(v, series, "live")
    pv = family(series, "meshgate_policy_verdicts_total")
    if set(pv) != {frozenset({"direction": d, "action": a}.items())
                   for d in ("egress", "ingress") for a in ("allowed", "denied")}:
        errs.append("meshgate_policy_verdicts_total has series %s" % sorted(
            sorted(dict(lb).items()) for lb in pv))
    else:
        def pval(d, a):
            return pv[frozenset({"direction": d, "action": a}.items())]
        # ingress only judges what egress allowed
        if pval("ingress", "allowed") + pval("ingress", "denied") != pval("egress", "allowed"):
            errs.append("ingress allowed + denied != egress allowed")
    for fam in ("meshgate_verdict_allowed_total", "meshgate_verdict_denied_total"):
        if family(series, fam):
            errs.append("%s is still exported" % fam)
    if want_stats["verdicts"]["denied_egress"] == 0 or want_stats["verdicts"][
            "denied_ingress"] == 0 or want_stats["verdicts"]["allowed"] == 0:
        errs.append("the traffic mix lacks a verdict kind")  # guards the test itself
    report("verdicts", errs)

    d = {k: w for k, w in want.items() if k[0] == "meshgate_drops_total"}
    errs = compare_series(d, series, "live")
    got = family(series, "meshgate_drops_total")
    labels = mgtest.drop_labels()
    got_reasons = sorted(dict(lb).get("reason") for lb in got)
    if got_reasons != sorted(labels):
        errs.append("drop reasons %s, expected every reason of mg_drop.h (%d)"
                    % (sorted(set(got_reasons) ^ set(labels)), len(labels)))
    for lb in got:
        lb = dict(lb)
        if set(lb) != {"reason", "direction"} or lb["direction"] != direction_of(lb["reason"]):
            errs.append("drops series with labels %s" % lb)
    nonzero = sum(1 for x in frames if not x.forwarded)
    if sum(got.values()) != nonzero:
        errs.append("drops add up to %d, expected %d" % (sum(got.values()), nonzero))
    report("drops", errs)

    errs = []
    for fam, n in ipcache.items():
        g = val(series, "meshgate_ipcache_entries", family=fam)
        if g != n:
            errs.append("meshgate_ipcache_entries{family=%s} = %r, the config loads %d"
                        % (fam, g, n))
    report("ipcache_entries", errs)

    got = {dict(lb).get("cluster"): v for lb, v in family(series, "meshgate_identities").items()}
    report("identities", [] if got == clusters else
           ["meshgate_identities by cluster %s, expected %s" % (got, clusters)])

    errs = []
    if val(series, "meshgate_policy_revision") != 1:
        errs.append("revision %r, expected 1" % val(series, "meshgate_policy_revision"))
    if val(series, "meshgate_policy_policies") != len(POLICIES):
        errs.append("policies %r, expected %d" % (val(series, "meshgate_policy_policies"),
                                                  len(POLICIES)))
    # Each policy here has one rule with one peer and one port list.
    rules = val(series, "meshgate_policy_rules")
    if rules is None or rules < len(POLICIES):
        errs.append("rules %r, expected at least %d" % (rules, len(POLICIES)))
    m = re.search(r"(\d+) policies \((\d+) rules", stderr)
    if m is None or (int(m.group(1)), int(m.group(2))) != (
            val(series, "meshgate_policy_policies"), rules):
        errs.append("the daemon's log says %r, /metrics %r policies, %r rules"
                    % (m and m.group(0), val(series, "meshgate_policy_policies"), rules))
    errs += compare_series({k: w for k, w in want.items()
                            if k[0] == "meshgate_policy_reloads_total"}, series, "live")
    report("policy", errs)

    c = {k: w for k, w in want.items() if k[0].startswith("meshgate_conntrack_")}
    errs = compare_series(c, series, "live")
    mem = val(series, "meshgate_conntrack_memory_bytes")
    if not mem:
        errs.append("meshgate_conntrack_memory_bytes %r, expected > 0" % mem)
    for n in ("meshgate_conntrack_fragments", "meshgate_conntrack_fragments_full_total"):
        if val(series, n) != 0:
            errs.append("%s = %r, expected 0 (no fragments sent)" % (n, val(series, n)))
    report("conntrack", errs)

    bi = family(series, "meshgate_build_info")
    report("build_info", [] if bi == {frozenset({"version": version}.items()): 1.0} else
           ["meshgate_build_info %s, expected version=%s value 1" % (
               {fmt_key(("", k)): v for k, v in bi.items()}, version)])

    errs = []
    up = val(series, "meshgate_uptime_seconds")
    if up is None or up < 0 or up > 600:
        errs.append("meshgate_uptime_seconds %r" % up)
    workers = family(series, "meshgate_worker_loops_total")
    if not workers:
        errs.append("no meshgate_worker_loops_total series")
    for lb, loops in workers.items():
        busy = series.get(("meshgate_worker_busy_loops_total", lb))
        ratio = series.get(("meshgate_worker_busy_ratio", lb))
        if busy is None or busy > loops or busy < 1:
            errs.append("worker %s: busy loops %r of %r" % (dict(lb), busy, loops))
        if ratio is None or not 0 <= ratio <= 1:
            errs.append("worker %s: busy ratio %r" % (dict(lb), ratio))
    if family(series, "meshgate_kvstore_connected"):
        errs.append("kvstore series without a kvstore configured")
    report("uptime_workers", errs)

    # prom_check's rules, on this very text (its own lines go to a sink).
    c = prom_check.Checker()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        prom_check.check_text(c, text)
    fails = [line for line in buf.getvalue().splitlines() if line.startswith("FAIL")]
    report("naming_rules", fails if c.failed or c.passed == 0 else [])


def check_harness(live, want_stats):
    """The comparisons notice a wrong figure, a missing series and a wrong
    label (guards against a harness that passes everything)."""
    errs = []
    want = stats_series(want_stats)
    if compare_series(want, live, "live"):
        errs.append("the unmodified expectations do not match, cannot check the harness")
    key = ("meshgate_port_bytes_total",
           frozenset({"port": "outside", "direction": "tx"}.items()))
    if not compare_series({key: want[key] + 1}, live, "x"):
        errs.append("a wrong tx byte count went unnoticed")
    if not compare_series({("meshgate_no_such_total", frozenset()): 0}, live, "x"):
        errs.append("a missing series went unnoticed")
    key = ("meshgate_drops_total",
           frozenset({"reason": "l2_truncated", "direction": "egress"}.items()))
    if not compare_series({key: 1}, live, "x"):
        errs.append("a wrong label went unnoticed")
    bad = dict(want_stats["verdicts"])
    bad["denied_ingress"] -= 1
    if not compare_series(stats_series({"verdicts": bad}), live, "x"):
        errs.append("a wrong verdict count went unnoticed")
    report("harness_detects_mismatch", errs)


def check_prom_check_tool(base, want_stats):
    """prom_check.py itself against the live endpoint, with --expect."""
    rx = want_stats["ports"]["inside"]["rx_packets"]
    den = want_stats["verdicts"]["denied_egress"]
    cmd = [PY, os.path.join(mgtest.HERE, "prom_check.py"), base + "/metrics",
           "--expect", 'meshgate_port_packets_total{port="inside",direction="rx"}=%d' % rx,
           "--expect",
           'meshgate_policy_verdicts_total{direction="egress",action="denied"}=%d' % den,
           "--expect", 'meshgate_policy_revision=1']
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    fails = [line for line in p.stdout.splitlines() if line.startswith("FAIL")]
    n_pass = sum(1 for line in p.stdout.splitlines() if line.startswith("PASS"))
    errs = []
    if p.returncode != 0 or fails:
        errs.append("prom_check.py exit %d" % p.returncode)
        errs += fails or [p.stderr.strip()[-300:]]
    elif n_pass < 10:
        errs.append("prom_check.py passed only %d checks: %r" % (n_pass, p.stdout[-300:]))
    report("prom_check_tool", errs)


def check_http_errors(base, live):
    errs = []
    status, _h, _b = http("GET", base + "/nope")
    if status != 404:
        errs.append("GET /nope: %d, expected 404" % status)
    report("http_404", errs)
    errs = []
    status, _h, _b = http("POST", base + "/metrics")
    if status != 405:
        errs.append("POST /metrics: %d, expected 405" % status)
    report("http_405", errs)
    errs = []
    status, h, body = http("HEAD", base + "/metrics")
    if status != 200 or body:
        errs.append("HEAD /metrics: %d with %d bytes of body" % (status, len(body)))
    ctype = (h.get("Content-Type") or "").replace(" ", "")
    if ctype != "text/plain;version=0.0.4;charset=utf-8":
        errs.append("HEAD /metrics: Content-Type %r" % ctype)
    report("http_head", errs)


def stable(series):
    """@series without the families that move while the daemon idles."""
    return {k: v for k, v in series.items() if k[0] not in MOVING}


def run_ctl(ctl, sock, *args):
    return subprocess.run([ctl, "--socket", sock, "metrics"] + list(args), capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)


def check_ctl(ctl, sock, live):
    """meshgatectl metrics: the same figures as the endpoint, text and JSON."""
    p = run_ctl(ctl, sock)
    errs = []
    if p.returncode != 0:
        errs.append("meshgatectl metrics: exit %d: %s" % (p.returncode, p.stderr.strip()[-300:]))
    else:
        try:
            got = stable(parse(p.stdout))
            want = stable(live)
            errs += compare_series(want, got, "meshgatectl metrics", "on /metrics",
                                   "meshgatectl")
            extra = sorted(set(got) - set(want), key=fmt_key)
            if extra:
                errs.append("meshgatectl metrics: series not on /metrics: %s"
                            % ", ".join(fmt_key(k) for k in extra[:5]))
        except Exception as e:  # the parser's errors
            errs.append("meshgatectl metrics: not an exposition: %r" % (e,))
    report("ctl_metrics_text", errs)

    errs = []
    p = run_ctl(ctl, sock, "--format", "json")
    if p.returncode != 0:
        errs.append("meshgatectl metrics --format json: exit %d: %s"
                    % (p.returncode, (p.stderr.strip() or p.stdout.strip())[-300:]))
    else:
        try:
            doc = json.loads(p.stdout)
        except ValueError as e:
            doc = None
            errs.append("meshgatectl metrics --format json: not JSON (%s): %r"
                        % (e, p.stdout[:200]))
        if doc is not None:
            errs += compare_json_snapshot(doc, live)
    p2 = run_ctl(ctl, sock, "--format", "json", "-o", "json")
    if p2.returncode == 0:
        try:
            env = json.loads(p2.stdout)
            if not isinstance(env, dict) or "metrics" not in env:
                errs.append("-o json: no 'metrics' member: %r" % p2.stdout[:200])
        except ValueError:
            errs.append("-o json: not JSON: %r" % p2.stdout[:200])
    elif not errs:
        errs.append("metrics --format json -o json: exit %d" % p2.returncode)
    report("ctl_metrics_json", errs)


def compare_json_snapshot(doc, live):
    """The JSON snapshot holds, under the telemetry commands' names (a dict
    per /meshgate/* command, keyed by the command or by its last part), the
    same figures as /metrics."""
    if not isinstance(doc, dict):
        return ["JSON snapshot is %s, not an object" % type(doc).__name__]
    errs = []
    found = 0
    for cmd in TELEMETRY_COMMANDS:
        part = doc.get(cmd, doc.get(cmd.rsplit("/", 1)[1]))
        if part is None:
            errs.append("JSON snapshot: no %s (keys %s)" % (cmd, sorted(doc)[:12]))
            continue
        found += 1
        got, e = tel_to_series(cmd, part)
        if cmd == "/meshgate/identities":
            got = remap_identities(got, live)
        errs += e
        errs += compare_series({k: v for k, v in got.items() if k[0] not in MOVING},
                               live, "JSON snapshot %s" % cmd, "in the JSON")
    return errs


TELEMETRY_COMMANDS = ("/meshgate/info", "/meshgate/ports", "/meshgate/verdicts",
                      "/meshgate/drops", "/meshgate/ipcache", "/meshgate/identities",
                      "/meshgate/policy", "/meshgate/conntrack", "/meshgate/kvstore",
                      "/meshgate/workers", "/meshgate/metrics_http", "/meshgate/control")


def remap_identities(got, live):
    """Telemetry keys of /meshgate/identities are cluster names made
    key-safe: map them back through the live label values."""
    names = {tel_key(dict(lb)["cluster"]): dict(lb)["cluster"]
             for lb in family(live, "meshgate_identities")}
    out = {}
    for (n, lb), v in got.items():
        c = dict(lb)["cluster"]
        out[(n, frozenset({"cluster": names.get(c, c)}.items()))] = v
    return out


def check_telemetry(prefix, pid, live, base):
    """Every /meshgate/* command over the raw socket, figures equal to /metrics."""
    path = os.path.join("/var/run/dpdk", prefix, "dpdk_telemetry.v2")
    try:
        t = Telemetry(path)
    except OSError as e:
        report("telemetry_connect", ["%s: %s" % (path, e)])
        return
    try:
        errs = []
        if t.greeting.get("pid") != pid:
            errs.append("greeting %r: pid is not the daemon's (%d)" % (t.greeting, pid))
        report("telemetry_connect", errs)

        listing = t.ask("/").get("/", [])
        mine = sorted(c for c in listing if c.startswith("/meshgate/"))
        report("telemetry_commands", [] if mine == sorted(TELEMETRY_COMMANDS) else
               ["/ lists %s, expected %s" % (mine, sorted(TELEMETRY_COMMANDS))])

        for cmd in mine:
            errs = []
            # Moving figures must lie between a scrape before and one after.
            before = scrape(base)[1]
            ans = t.ask(cmd)
            live_after = scrape(base)[1]
            d = ans.get(cmd) if isinstance(ans, dict) else None
            if not isinstance(d, dict):
                report("telemetry" + cmd.replace("/meshgate/", "/"),
                       ["%s answered %r" % (cmd, ans)])
                continue
            got, errs = tel_to_series(cmd, d)
            if cmd == "/meshgate/identities":
                got = remap_identities(got, live)
            want_names = set(mg_families(cmd))
            fam_live = {k: v for k, v in live.items() if k[0] in want_names}
            if cmd in ("/meshgate/workers",):
                # They move: same workers, figures between two scrapes.
                if {k[1] for k in got} != {k[1] for k in fam_live}:
                    errs.append("workers %s, /metrics has %s" % (
                        sorted(dict(k[1]).get("worker") for k in got),
                        sorted(dict(k[1]).get("worker") for k in fam_live)))
                for k, v in got.items():
                    lo, hi = before.get(k), live_after.get(k)
                    if lo is None or hi is None or not lo <= v <= hi:
                        errs.append("%s = %d, not between two scrapes (%r, %r)"
                                    % (fmt_key(k), v, lo, hi))
            elif cmd == "/meshgate/info":
                k = ("meshgate_uptime_seconds", frozenset())
                lo, hi = before.get(k), live_after.get(k)
                if lo is None or hi is None or not lo <= got.get(k, -1) <= hi:
                    errs.append("uptime_seconds %r not between two scrapes (%r, %r)"
                                % (got.get(k), lo, hi))
                b = {k: v for k, v in got.items() if k[0] == "meshgate_build_info"}
                errs += compare_series(b, live, cmd, "on telemetry")
                if set(b) != {k for k in live if k[0] == "meshgate_build_info"}:
                    errs.append("version differs: %s" % sorted(map(fmt_key, b)))
            else:
                errs += compare_series(got, live, cmd, "on telemetry")
                missing = set(fam_live) - set(got)
                if missing:
                    errs.append("%s lacks %s" % (cmd, ", ".join(sorted(map(fmt_key, missing))[:5])))
            report("telemetry" + cmd.replace("/meshgate/", "/"), errs)

        # A parameter narrows a per-entry command to that entry's dict.
        errs = []
        ans = t.ask("/meshgate/ports,outside").get("/meshgate/ports")
        want_rx = val(live, "meshgate_port_packets_total", port="outside", direction="rx")
        if not isinstance(ans, dict) or ans.get("name") != "outside" or \
                ans.get("rx_packets") != want_rx:
            errs.append("/meshgate/ports,outside answered %r (rx %r expected)" % (ans, want_rx))
        ans = t.ask("/meshgate/ports,nope")
        if isinstance(ans.get("/meshgate/ports"), dict):
            errs.append("/meshgate/ports,nope answered a dict: %r" % ans)
        ans = t.ask("/meshgate/workers,0").get("/meshgate/workers")
        if not isinstance(ans, dict) or not isinstance(ans.get("loops"), int):
            errs.append("/meshgate/workers,0 answered %r" % ans)
        report("telemetry_parameters", errs)
    finally:
        t.close()


def check_dpdk_telemetry_tool(prefix, live):
    """DPDK's own client, fed a command on stdin (it reads commands with
    input(), and prints one JSON line per answer when stdin is no tty)."""
    if not os.path.exists(DPDK_TELEMETRY):
        skip("dpdk_telemetry_py", "%s is not installed" % DPDK_TELEMETRY)
        return
    try:
        p = subprocess.run([PY, DPDK_TELEMETRY, "-f", prefix], input="/meshgate/verdicts\n",
                           capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        skip("dpdk_telemetry_py", "it did not finish within 30 s on stdin (interactive only?)")
        return
    errs = []
    doc = None
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            try:
                doc = json.loads(line)
                break
            except ValueError:
                pass
    if p.returncode != 0 or not isinstance(doc, dict) or "/meshgate/verdicts" not in doc:
        errs.append("exit %d, stdout %r, stderr %r" % (p.returncode, p.stdout[-300:],
                                                       p.stderr[-300:]))
    else:
        got, e = tel_to_series("/meshgate/verdicts", doc["/meshgate/verdicts"])
        errs += e + compare_series(got, live, "/meshgate/verdicts",
                                     "from dpdk-telemetry.py")
    report("dpdk_telemetry_py", errs)


def check_exit(d, case, live, want_stats, idle_ms):
    """After the daemon stops: status 0, the stats file equals the live
    scrape and the expectations, the right frames left each port."""
    rc = d.wait(idle_ms / 1000.0 + mgtest.DAEMON_TIMEOUT)
    if rc is None:
        report("exit", ["daemon still running %d s after its idle exit" % mgtest.DAEMON_TIMEOUT])
        return
    errs = [] if rc == 0 else ["daemon exit status %d" % rc]
    report("exit", errs)
    try:
        with open(d.stats) as f:
            st = json.load(f)
    except (OSError, ValueError) as e:
        report("stats_file", ["%s: %s" % (d.stats, e)])
        return
    errs = mgtest.compare_stats(want_stats, st)
    # The live counters: every one the stats file has a field for.
    errs += compare_series(stats_series(st), live, "stats file",
                           "in the stats file", "the last live /metrics")
    if set(st.get("drops", {})) != set(mgtest.drop_labels()):
        errs.append("stats file drops: %s" % sorted(set(st.get("drops", {})) ^
                                                    set(mgtest.drop_labels())))
    report("stats_file", errs)
    errs = []
    try:
        out_in = mgtest.read_pcap(os.path.join(d.workdir, "inside-out.pcap"))
        out_out = mgtest.read_pcap(os.path.join(d.workdir, "outside-out.pcap"))
        errs += mgtest.compare_frames("outside", [x.frame for x in case.inside if x.forwarded],
                                      out_out)
        errs += mgtest.compare_frames("inside", [x.frame for x in case.outside if x.forwarded],
                                      out_in)
    except Exception as e:  # a broken pcap is a failure, whatever its kind
        errs.append("reading the output pcaps: %r" % (e,))
    report("forwarded_frames", errs)


# ---------------------------------------------------------------- slow clients

CUT = "meshgate_metrics_http_connections_cut_total"
CUT_REASONS = ("request_timeout", "response_timeout", "evicted", "refused")
# The hostile run's limits: one address (on loopback, everyone's) holds
# half the slots; a second for a request head, and again for the rest.
HOSTILE_LIMITS = {"max_connections": 12, "request_timeout": 1}
SHARE = HOSTILE_LIMITS["max_connections"] // 2
TIMEOUT_S = HOSTILE_LIMITS["request_timeout"]
# Bounds for liveness only (the machine may be loaded): a cut comes this
# long after its deadline at the latest, and a scrape is answered within.
SLACK_S = 3
SCRAPE_S = 5
# Asked for in one write and never read: the answers fill every buffer on
# the way (the client's receive buffer is kept small), so the exchange
# never ends.
PIPELINED = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 200
KINDS = ("silent", "trickler", "non_reader")


def check_no_cuts(live):
    """A normal run: the family is there, every reason, all zero."""
    got = family(live, CUT)
    want = {frozenset({"reason": r}.items()): 0 for r in CUT_REASONS}
    report("http_no_cuts", [] if got == want else
           ["%s is %s, expected every reason at 0" % (CUT, {dict(k)["reason"]: v
                                                            for k, v in got.items()})])


def cuts(base):
    """{reason: connections cut so far}, from a scrape."""
    series = scrape(base, SCRAPE_S)[1]
    return {r: val(series, CUT, reason=r) for r in CUT_REASONS}


def delta(after, before):
    return {r: (after[r] or 0) - (before[r] or 0) for r in CUT_REASONS}


def read_answer(s):
    """Read one whole answer (by its Content-Length) from @s; its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("the server closed before its answer was whole")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    while m and len(body) < int(m.group(1)):
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("the server closed before its answer was whole")
        body += chunk
    return int(head.split()[1])


def slow_client(port, kind):
    """A connection that is slow in its own way, its opening done: one
    that sends nothing, one that sends a request line (header lines
    follow, see trickle), one that asks for 200 answers and never reads;
    or a scraper that keeps its connection open after its answer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if kind == "non_reader":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(SCRAPE_S)
    s.connect(("127.0.0.1", port))
    if kind == "trickler":
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
    elif kind == "non_reader":
        s.sendall(PIPELINED)
    elif kind == "kept_alive":
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        if read_answer(s) != 200:
            raise OSError("a kept-alive scrape was not answered 200")
    return s


def trickle(s, n):
    """One more header line; False when the server has ended the connection."""
    try:
        s.sendall(b"X-Slow-%d: 1\r\n" % n)
        return True
    except OSError:
        return False


def ended(s, timeout):
    """The server has ended @s (its FIN or a reset) within @timeout s.
    Nothing is read: a non-reader's answers stay unread."""
    p = select.poll()
    p.register(s, select.POLLRDHUP)  # POLLHUP and POLLERR come unasked
    return bool(p.poll(max(0, int(timeout * 1000))))


class Attacker(threading.Thread):
    """One slow client of @kind, again and again until @stop: it counts
    its connections and those the server ended."""

    def __init__(self, port, kind, stop):
        super().__init__(daemon=True)
        self.port, self.kind, self.stop = port, kind, stop
        self.connects = self.ended = 0
        self.error = None

    def run(self):
        while not self.stop.is_set():
            try:
                s = slow_client(self.port, self.kind)
            except OSError as e:
                self.error = "connect: %s" % e
                self.stop.wait(0.2)
                continue
            self.connects += 1
            n = 0
            try:
                while not self.stop.is_set():
                    if ended(s, 1.0):
                        self.ended += 1
                        break
                    n += 1
                    if self.kind == "trickler" and not trickle(s, n):
                        self.ended += 1
                        break
            finally:
                s.close()
            self.stop.wait(0.2)


def hostile_timeouts(d, base):
    """Below the share: two silent clients, two tricklers (a header line
    every 0.25 s: never idle) and a non-reader are each cut after the
    timeout, not before, and counted by reason; a scraper that keeps its
    connection after its answer is closed as idle, and not counted."""
    before = cuts(base)
    opened = []
    for kind in ("silent", "silent", "trickler", "trickler", "non_reader", "kept_alive"):
        t = time.monotonic()
        s = slow_client(d.port, kind)
        if kind == "kept_alive":
            t = time.monotonic()  # its wait starts at the end of its answer
        opened.append([kind, s, t, None])
    deadline = time.monotonic() + TIMEOUT_S + SLACK_S
    n = 0
    while time.monotonic() < deadline and any(o[3] is None for o in opened):
        n += 1
        for o in opened:
            if o[3] is None and (ended(o[1], 0) or
                                 (o[0] == "trickler" and not trickle(o[1], n))):
                o[3] = time.monotonic()
        time.sleep(0.25)
    errs = []
    for kind, s, t0, t1 in opened:
        s.close()
        if t1 is None:
            errs.append("a %s connection was still open %d s after it was made"
                        % (kind, TIMEOUT_S + SLACK_S))
        elif t1 - t0 < TIMEOUT_S:
            errs.append("a %s connection was cut after %.2f s, before request_timeout (%d s)"
                        % (kind, t1 - t0, TIMEOUT_S))
    got = delta(cuts(base), before)
    want = {"request_timeout": 4, "response_timeout": 1, "evicted": 0, "refused": 0}
    if got != want:
        errs.append("cuts %s, expected %s" % (got, want))
    report("hostile_timeouts", errs)


def hostile_share(d, base):
    """Twenty silent clients at once from one address: all but its share
    (half of metrics.max_connections) are evicted, the rest time out."""
    before = cuts(base)
    t0 = time.monotonic()
    socks = [slow_client(d.port, "silent") for _ in range(20)]
    quick = time.monotonic() - t0 < 0.5 * TIMEOUT_S  # all made before any deadline
    errs = []
    for s in socks:
        if not ended(s, TIMEOUT_S + SLACK_S):
            errs.append("a silent connection was still open %d s after it was made"
                        % (TIMEOUT_S + SLACK_S))
        s.close()
    got = delta(cuts(base), before)
    if got["evicted"] + got["request_timeout"] != 20 or got["response_timeout"] or \
            got["refused"]:
        errs.append("cuts %s: expected 20 evicted or timed out" % got)
    elif quick and got["evicted"] != 20 - SHARE:
        errs.append("%d evicted, expected %d: one address holds %d of %d slots"
                    % (got["evicted"], 20 - SHARE, SHARE, HOSTILE_LIMITS["max_connections"]))
    report("hostile_share", errs[:3])


def hostile_flood(d, base):
    """40 tricklers (a header line a second), 8 silent clients and 4
    non-readers, all from the scraper's own address and each back soon
    after it is cut: several fresh scrapes in a row are each answered
    within SCRAPE_S, and afterwards every connection the server ended is
    a counted cut."""
    before = cuts(base)
    stop = threading.Event()
    attackers = [Attacker(d.port, kind, stop)
                 for kind, n in (("trickler", 40), ("silent", 8), ("non_reader", 4))
                 for _ in range(n)]
    errs = []
    try:
        for a in attackers:
            a.start()
        time.sleep(1.5)  # every slot taken, and the churn going
        for i in range(6):
            t = time.monotonic()
            try:
                status, _h, body = http("GET", base + "/metrics", SCRAPE_S)
                if status != 200 or b"\nmeshgate_build_info{" not in body:
                    errs.append("scrape %d during the flood: status %d" % (i, status))
            except Exception as e:  # a timeout or a reset is the failure looked for
                errs.append("scrape %d during the flood: no answer after %.1f s: %r"
                            % (i, time.monotonic() - t, e))
            time.sleep(0.5)
    finally:
        stop.set()
        for a in attackers:
            a.join(SCRAPE_S)
    time.sleep(TIMEOUT_S + 0.5)  # the attackers' last connections are closed by now
    try:
        got = delta(cuts(base), before)
    except Exception as e:  # no answer: the flood's own errors still count
        got = {r: 0 for r in CUT_REASONS}
        errs.append("no scrape after the flood: %r" % (e,))
    by_kind = {k: sum(a.ended for a in attackers if a.kind == k) for k in KINDS}
    made = sum(a.connects for a in attackers)
    for k in KINDS:
        if by_kind[k] == 0:
            errs.append("no %s connection was ever cut (%d made in all)" % (k, made))
    if sum(by_kind.values()) > sum(got.values()):
        errs.append("the attackers saw %d connections ended, /metrics counts %d cuts (%s)"
                    % (sum(by_kind.values()), sum(got.values()), got))
    if got["evicted"] == 0:
        errs.append("nothing evicted with %d slow clients for %d slots: %s"
                    % (len(attackers), HOSTILE_LIMITS["max_connections"], got))
    if any(a.is_alive() for a in attackers):
        errs.append("an attacker thread did not stop")
    report("hostile_flood", errs)
    print("  (flood: %d connections made, ended by the server: %s; cuts %s)"
          % (made, by_kind, got))


def check_hostile(meshgate, tag):
    """A second daemon with small limits (HOSTILE_LIMITS), against slow
    clients: below its share, at its share, and a flood; then it must
    stop cleanly with slow clients still connected."""
    case = mgtest.Case("hostile", lcores="0-1")
    prefix = "mgh%d%s" % (os.getpid(), tag)
    workdir = tempfile.mkdtemp(prefix="mgmetrics-hostile-")
    d = None
    try:
        d = Daemon(meshgate, case, prefix, workdir, 600000, metrics=HOSTILE_LIMITS)
        if d.wait_port(60) is None:
            report("hostile_start", ["no metrics port; status %r" % d.proc.poll()] +
                   d.stderr().strip().splitlines()[-15:])
            return
        base = "http://127.0.0.1:%d" % d.port
        report("hostile_start", [])
        for phase in (hostile_timeouts, hostile_share, hostile_flood):
            try:
                phase(d, base)
            except Exception as e:  # a scrape that failed, most likely: this phase fails
                report(phase.__name__, ["%r" % (e,)])

        # Stopping with slow clients connected: every connection closed, no leak.
        left = [slow_client(d.port, k) for k in ("silent", "trickler", "non_reader")]
        time.sleep(0.2)
        d.proc.send_signal(signal.SIGTERM)
        rc = d.wait(mgtest.DAEMON_TIMEOUT)
        errs = [] if rc == 0 else ["exit status %r after SIGTERM with slow clients connected"
                                   % rc]
        for s in left:
            if not ended(s, SCRAPE_S):
                errs.append("a slow client's connection outlived the daemon")
            s.close()
        logged = sum(1 for line in d.stderr().splitlines() if "metrics http:" in line)
        if logged > 60:
            errs.append("%d lines of libmicrohttpd messages: the log was flooded" % logged)
        report("hostile_exit", errs)
    except Exception:
        import traceback
        report("hostile_harness", ["harness error"] + traceback.format_exc().splitlines())
    finally:
        if d is not None:
            d.stop()
            if results["fail"]:
                for line in d.stderr().strip().splitlines()[-20:]:
                    print("  | " + line)
        mgtest.cleanup_runtime_dir(prefix)
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--meshgate", default=os.path.join(mgtest.ROOT, "build", "app", "meshgate",
                                                       "meshgate"))
    ap.add_argument("--meshgatectl", default=os.path.join(mgtest.ROOT, "build", "app",
                                                          "meshgatectl", "meshgatectl"))
    ap.add_argument("--tag", default="n", help="distinguishes EAL file prefixes of runs")
    ap.add_argument("--idle-exit", type=int, default=6000,
                    help="ms the daemon idles before it exits (the live checks' window)")
    ap.add_argument("--keep", action="store_true", help="keep the run's folder")
    args = ap.parse_args()

    meshgate, ctl = os.path.abspath(args.meshgate), os.path.abspath(args.meshgatectl)
    for what, path in (("meshgate", meshgate), ("meshgatectl", ctl)):
        if not os.access(path, os.X_OK):
            report("setup", ["no %s at %s (build it first)" % (what, path)])
            return 1
    version = subprocess.run([meshgate, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.split()[-1]

    case = traffic()
    want_stats = mgtest.expected_stats(case)
    total = len(case.inside) + len(case.outside)
    prefix = "mgm%d%s" % (os.getpid(), args.tag)
    workdir = tempfile.mkdtemp(prefix="mgmetrics-")
    d = None
    try:
        d = Daemon(meshgate, case, prefix, workdir, args.idle_exit)
        port = d.wait_port(60)
        if port is None:
            report("start", ["no 'metrics on http://... (port N)' line; status %r"
                             % d.proc.poll()] + d.stderr().strip().splitlines()[-15:])
            return 1
        base = "http://127.0.0.1:%d" % port
        scraped, why = wait_all_received(base, total, 60, d)
        report("all_frames_received", [why] + d.stderr().strip().splitlines()[-10:]
               if why else [])
        if scraped is None:
            return 1
        text, live = scraped
        # The rest of the live checks (cheap ones first: the window is
        # --idle-exit long). Each check takes its own scrape where it
        # compares moving figures.
        check_live(live, text, case, want_stats, version, d.stderr())
        check_harness(live, want_stats)
        check_telemetry(prefix, d.proc.pid, live, base)
        check_ctl(ctl, d.socket, live)
        check_http_errors(base, live)
        check_no_cuts(live)
        check_dpdk_telemetry_tool(prefix, live)
        check_prom_check_tool(base, want_stats)
        report("alive_during_checks", [] if d.proc.poll() is None else
               ["the daemon exited before the live checks were done (raise --idle-exit)"])
        check_exit(d, case, live, want_stats, args.idle_exit)
        # Slow clients, against a daemon of their own.
        check_hostile(meshgate, args.tag)
    except Exception:
        import traceback
        report("harness", ["harness error"] + traceback.format_exc().splitlines())
    finally:
        if d is not None:
            d.stop()
            if results["fail"]:
                tail = d.stderr().strip().splitlines()[-20:]
                for line in tail:
                    print("  | " + line)
        mgtest.cleanup_runtime_dir(prefix)
        if args.keep:
            print("  (kept %s)" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("metrics: %d passed, %d failed, %d skipped" % (results["pass"], results["fail"],
                                                          results["skip"]), file=sys.stderr)
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
