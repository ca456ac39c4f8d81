#!/usr/bin/env python3
"""A fake meshgate control socket, to test meshgatectl's online commands
without the daemon, and the test of the client that uses it.

FakeServer speaks lib/ctl's protocol (newline-delimited JSON on a unix
socket: {"command","args","id"} -> {"ok":true,"result":R} or
{"ok":false,"error":MSG,"code":"ENOENT"}; a monitor subscriber then gets
{"stream":"monitor","event":E} and {"stream":"monitor","dropped":N} lines)
and answers the control commands of docs/cli.md from a small canned state
that matches ctl_test.py's config (identities 65600 web and 65601 api at
10.1.0.1 and 10.1.0.2). policy.trace is answered by running the offline
trace (`meshgatectl policy trace --config`) on that config, which is what
the daemon's answer must equal. Traffic is simulated by send_traffic() (ct
entries) and send_denied() (a drop event to monitors).

Run as a script, it starts the fake, runs every check of ctl_online_test.py
against it, then the client checks only a fake can provoke (refused
mutating commands, replies that are not the protocol, lost monitor events,
the daemon going away, a full server that refuses the connection before it
reads the request):

    tests/integration/fake_ctl_server.py --meshgatectl build/app/meshgatectl/meshgatectl
"""

import argparse
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ctl_online_test  # noqa: E402
import ctl_test  # noqa: E402

CLUSTER = "cluster-a"
LABELS = {
    65600: ["k8s:app=web", "k8s:io.cilium.k8s.policy.cluster=cluster-a",
            "k8s:io.kubernetes.pod.namespace=prod"],
    65601: ["k8s:app=api", "k8s:io.cilium.k8s.policy.cluster=cluster-a",
            "k8s:io.kubernetes.pod.namespace=prod"],
}
IPCACHE = [("10.1.0.1/32", 65600), ("10.1.0.2/32", 65601), ("192.0.2.0/24", 65600),
           ("fd00:1::1/128", 65600), ("fd00:1::2/128", 65601)]


class CtlError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


class FakeServer:
    def __init__(self, path, ctl, config):
        self.path = path
        self.ctl = ctl
        self.config = config
        self.revision = 1
        self.reloads = 0
        self.reloads_failed = 0
        self.last_error = None
        self.broken = False  # a policy file is invalid: reloads fail
        self.ct = []
        self.subscribers = []  # (wfile, type)
        self.lock = threading.Lock()
        self.deny_mutating = False  # answer EPERM to mutating commands
        self.garbage = False  # answer status with a line that is not JSON
        self.busy = False  # refuse every connection as a full daemon does
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                if fake.busy:
                    # as lib/ctl's server: the reason at once, then close,
                    # reading nothing of the request
                    self.wfile.write(b'{"ok":false,"error":"too many clients (16); try '
                                     b'again later","code":"EBUSY"}\n')
                    return
                for raw in self.rfile:
                    if fake.garbage:
                        self.wfile.write(b"this is not json\n")
                        return
                    try:
                        req = json.loads(raw)
                        reply = fake.answer(req, self)
                    except CtlError as e:
                        reply = {"ok": False, "error": e.msg, "code": e.code}
                    except ValueError:
                        reply = {"ok": False, "error": "not JSON", "code": "EINVAL"}
                    if "id" in req:
                        reply["id"] = req["id"]
                    with fake.lock:
                        self.wfile.write((json.dumps(reply) + "\n").encode())
                    if reply.get("result") == {"streaming": True}:
                        # a subscriber: keep the connection until the client leaves
                        while self.rfile.read(1):
                            pass
                        with fake.lock:
                            fake.subscribers = [x for x in fake.subscribers if x[0] is not self]
                        return

        if os.path.exists(path):
            os.unlink(path)
        self.server = socketserver.ThreadingUnixStreamServer(path, Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.kick_subscribers()
        self.server.shutdown()
        self.server.server_close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    # ---- traffic, as the daemon would see it ----

    def send_traffic(self):
        """A tcp flow 10.1.0.1:40000 -> 10.1.0.2:80, allowed and tracked."""
        with self.lock:
            self.ct.append({"worker": 1, "family": "ipv4", "proto": "tcp", "a": "10.1.0.1",
                            "pa": 40000, "b": "10.1.0.2", "pb": 80, "state": "established",
                            "expires_in_ms": 29000, "opened_by": "a"})

    def send_denied(self):
        """A tcp SYN 10.1.0.1 -> 10.1.0.2:81 that the policy denies."""
        ev = {"time": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "type": "drop",
              "port": "inside", "worker": 1, "reason": "policy_denied_ingress",
              "direction": "ingress", "family": "ipv4", "proto": "tcp", "src": "10.1.0.1",
              "dst": "10.1.0.2", "sport": 40001, "dport": 81, "icmp_type": None,
              "src_identity": 65600, "dst_identity": 65601, "src_labels": LABELS[65600],
              "dst_labels": LABELS[65601], "len": 74}
        self.publish(ev)

    def publish(self, ev, dropped=0):
        with self.lock:
            for h, kind in list(self.subscribers):
                if kind not in ("all", ev["type"]):
                    continue
                w = h.wfile
                try:
                    if dropped:
                        w.write((json.dumps({"stream": "monitor", "dropped": dropped})
                                 + "\n").encode())
                    w.write((json.dumps({"stream": "monitor", "event": ev}) + "\n").encode())
                    w.flush()
                except OSError:
                    self.subscribers.remove((h, kind))

    def kick_subscribers(self):
        """The daemon goes away: close every monitor connection."""
        with self.lock:
            for h, _ in self.subscribers:
                try:
                    h.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.subscribers = []

    # ---- commands ----

    def identity(self, i):
        return {"id": i, "labels": LABELS[i], "cluster_id": 1, "cluster": CLUSTER,
                "named_ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
                if i == 65601 else []}

    def mutating(self, name):
        if self.deny_mutating:
            raise CtlError("EPERM", "permission denied: %s needs root or group meshgate"
                           % name)

    def answer(self, req, handler):
        cmd = req.get("command")
        args = req.get("args") or {}
        if cmd == "status":
            return ok({"version": "0.1.0", "pid": os.getpid(), "uptime_s": 3725,
                       "config_file": self.config, "cluster": {"name": CLUSTER, "id": 1},
                       "ports": [{"name": "inside", "device": "net_pcap0", "peer": "outside",
                                  "rx_packets": 10, "rx_bytes": 740, "tx_packets": 9,
                                  "tx_bytes": 666, "dropped": 1},
                                 {"name": "outside", "device": "net_pcap1", "peer": "inside",
                                  "rx_packets": 9, "rx_bytes": 666, "tx_packets": 9,
                                  "tx_bytes": 666, "dropped": 0}],
                       "workers": [{"lcore": 1, "loops": 1000, "busy_loops": 12,
                                    "busy_ratio": 0.012}],
                       "policy": {"revision": self.revision, "policies": 1, "rules": 1,
                                  "skipped": 0},
                       "reloads": {"ok": self.reloads, "failed": self.reloads_failed,
                                   "last_error": self.last_error},
                       "ipcache": {"ipv4": 3, "ipv6": 2}, "identities": 2,
                       "conntrack": {"entries": len(self.ct), "created": len(self.ct),
                                     "expired": 0},
                       "kvstore": None, "ready": True})
        if cmd == "config.show":
            return ok({"file": self.config, "config": {"version": 1, "cluster": {
                "name": CLUSTER, "id": 1}, "policy": {"enforcement": "default",
                                                      "sources": [{"cluster": CLUSTER,
                                                                   "path": "policies/"}]}}})
        if cmd == "identity.list":
            ids = [self.identity(i) for i in sorted(LABELS)]
            if "cluster" in args:
                ids = [i for i in ids if i["cluster"] == args["cluster"]]
            return ok({"identities": ids})
        if cmd == "identity.get":
            i = args.get("id")
            if i not in LABELS:
                raise CtlError("ENOENT", "no identity %s" % i)
            return ok(self.identity(i))
        if cmd == "ip.list":
            fam = args.get("family")
            ents = [{"prefix": p, "identity": i, "cluster_id": 1, "cluster": CLUSTER}
                    for p, i in IPCACHE
                    if fam is None or (fam == "ipv6") == (":" in p)]
            return ok({"entries": ents})
        if cmd == "ip.get":
            ip = args.get("ip", "")
            for p, i in IPCACHE:
                if ip == p or ("/" not in ip and p.split("/")[0] == ip):
                    return ok({"ip": ip, "prefix": p, "identity": i, "cluster": CLUSTER,
                               "labels": LABELS[i]})
            if "/" in ip:
                raise CtlError("ENOENT", "no ipcache entry %s" % ip)
            return ok({"ip": ip, "prefix": None, "identity": 9 if ":" not in ip else 10,
                       "cluster": None, "labels": ["reserved:world"]})
        if cmd == "policy.get":
            return ok({"revision": self.revision, "policies": [
                {"kind": "CiliumNetworkPolicy", "name": "api-from-web", "namespace": "prod",
                 "cluster": CLUSTER, "file": "policies/api.yaml", "rules": 1}],
                "skipped": [{"file": "policies/l7.yaml", "line": 10, "column": 11,
                             "message": "L7 rules are not enforced"}]})
        if cmd == "policy.selectors":
            return ok({"selectors": [
                {"selector": "k8s:app=api", "identities": [65601], "users": 1},
                {"selector": "k8s:app=web", "identities": [65600], "users": 1}]})
        if cmd == "policy.trace":
            return ok(self.trace(args))
        if cmd == "ct.list":
            lim = args.get("limit", 1000)
            return ok({"entries": self.ct[:lim], "total": len(self.ct),
                       "truncated": len(self.ct) > lim})
        if cmd == "ct.flush":
            self.mutating("ct.flush")
            n, self.ct = len(self.ct), []
            return ok({"flushed": n})
        if cmd == "sync.status":
            return ok({"configured": False, "clusters": []})
        if cmd == "sync.resync":
            self.mutating("sync.resync")
            return ok({"requested": True})
        if cmd == "metrics":
            if args.get("format") == "json":
                return ok({"metrics": {"rx_packets": 19}})
            return ok({"text": "# HELP meshgate_port_packets_total Packets by port.\n"
                               "# TYPE meshgate_port_packets_total counter\n"
                               "meshgate_port_packets_total{direction=\"rx\",port=\"inside\"} 10\n"
                               "meshgate_port_packets_total{direction=\"rx\",port=\"outside\"} 9\n"})
        if cmd == "reload":
            self.mutating("reload")
            if self.broken:
                self.reloads_failed += 1
                self.last_error = "policies/broken.yaml:3:5: spec: unknown key 'bogus'"
                raise CtlError("EINVAL", self.last_error)
            self.revision += 1
            self.reloads += 1
            return ok({"revision": self.revision, "ipcache_changes": 0})
        if cmd == "monitor":
            kind = args.get("type", "all")
            if kind not in ("drop", "verdict", "all"):
                raise CtlError("EINVAL", "type: drop, verdict or all")
            with self.lock:
                self.subscribers.append((handler, kind))
            return ok({"streaming": True})
        raise CtlError("ENOENT", "unknown command '%s'" % cmd)

    def trace(self, args):
        cmd = [self.ctl, "policy", "trace", "--config", self.config, "-o", "json"]
        for k, opt in (("src", "--src"), ("dst", "--dst"), ("proto", "--proto"),
                       ("dport", "--dport"), ("icmp_type", "--icmp-type")):
            if args.get(k) is not None:
                cmd += [opt, str(args[k])]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise CtlError("EINVAL", r.stderr.strip().split("\n")[0])
        return json.loads(r.stdout)


def ok(result):
    return {"ok": True, "result": result}


# ---- the client checks only a fake can provoke ----

def fake_only_checks(ctl, fake, sock, report):
    run = lambda *a, **kw: ctl_online_test.Run(ctl, ["--socket", sock] + list(a), **kw)  # noqa

    fake.deny_mutating = True
    for args in (["reload"], ["ct", "flush"], ["sync", "resync"]):
        r = run(*args)
        report("fake-eperm-" + "-".join(args),
               [] if r.rc == 1 and "permission denied" in r.err and r.out == "" else
               [r.why()])
    fake.deny_mutating = False

    r = run("identity", "get", "424242")
    report("fake-enoent-message", [] if r.rc == 1 and "no identity 424242" in r.err
           else [r.why()])

    # A full daemon answers EBUSY and closes before it reads the request.
    # Under strace, meshgatectl's send is held back 300 ms, so it always
    # comes after the close (a broken pipe); the reason must still show.
    fake.busy = True
    busy = "meshgatectl reload: too many clients (16); try again later\n"
    r = run("reload")
    report("fake-busy-reason", [] if r.rc == 1 and r.err == busy and r.out == "" else
           [r.why()])
    strace = shutil.which("strace")
    if strace is None:
        ctl_online_test.skip("fake-busy-reason-after-broken-pipe",
                             "strace is not installed (it delays the send)")
    else:
        r = ctl_online_test.Run(strace, ["-f", "-o", "/dev/null", "-e", "trace=sendto",
                                         "-e", "inject=sendto:delay_enter=300000", ctl,
                                         "--socket", sock, "reload"])
        report("fake-busy-reason-after-broken-pipe",
               [] if r.rc == 1 and r.err == busy and r.out == "" else [r.why()])
    fake.busy = False

    fake.garbage = True
    r = run("status")
    report("fake-not-the-protocol", [] if r.rc == 3 and r.err else [r.why()])
    fake.garbage = False

    # tables: a header row, columns aligned, labels one per line
    r = run("identity", "list")
    lines = r.out.splitlines()
    e = []
    if r.rc != 0 or not lines or lines[0].split() != ["ID", "CLUSTER", "LABELS",
                                                       "NAMED-PORTS"]:
        e.append(r.why())
    else:
        col = lines[0].index("LABELS")
        if not any(l.startswith("65600") and l[col:].startswith("k8s:app=web") for l in lines):
            e.append("65600's first label not under LABELS: %r" % r.out)
        cont = [l for l in lines[1:] if l.startswith(" ")]
        if not cont or any(l[col:].strip() and not l[col:].startswith("k8s:") for l in cont):
            e.append("continuation lines not aligned under LABELS: %r" % r.out)
        if "http 8080/TCP" not in r.out:
            e.append("no named port: %r" % r.out)
    report("fake-table-aligned", e)

    r = run("ip", "get", "8.8.8.8", "-o", "json")
    e = []
    try:
        d = json.loads(r.out)
        if d["identity"] != 9 or d["prefix"] is not None:
            e.append("%r" % d)
    except (ValueError, KeyError) as x:
        e.append("%s: %s" % (x, r.why()))
    report("fake-ip-get-world", e)
    r = run("ip", "get", "8.8.8.8")
    report("fake-ip-get-world-text", [] if r.rc == 0 and "(none: world)" in r.out
           else [r.why()])

    r = run("policy", "get")
    report("fake-policy-get-skipped", [] if r.rc == 0 and "policies/l7.yaml:10:11:" in r.out
           and "api-from-web" in r.out else [r.why()])

    r = run("metrics", "--format", "json")
    report("fake-metrics-json-text-mode", [] if r.rc == 0 and json.loads(r.out or "null") ==
           {"rx_packets": 19} else [r.why()])

    # monitor: lost events are announced, in text and JSON; the daemon going away ends it
    for mode in ("text", "json"):
        p = subprocess.Popen([ctl, "--socket", sock, "monitor", "-o", mode],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        e = []
        try:
            if not ctl_online_test.wait_for(lambda: len(fake.subscribers) > 0, 5):
                e.append("monitor never subscribed")
            ev = {"time": "2024-01-01T00:00:00.000Z", "type": "verdict", "port": "outside",
                  "worker": 2, "reason": "allowed", "direction": "none", "family": "ipv6",
                  "proto": "icmpv6", "src": "fd00:1::1", "dst": "fd00:1::2", "sport": None,
                  "dport": None, "icmp_type": 128, "src_identity": 65600,
                  "dst_identity": 65601, "src_labels": [], "dst_labels": [], "len": 118}
            fake.publish(ev, dropped=5)
            time.sleep(0.3)
            fake.kick_subscribers()
            out, err = p.communicate(timeout=10)
            lines = out.splitlines()
            if mode == "json":
                docs = [json.loads(l) for l in lines]
                if docs != [{"dropped": 5}, ev]:
                    e.append("got %r" % docs)
            else:
                if len(lines) != 2 or "LOST 5" not in lines[0] or \
                        "fd00:1::1 (65600) -> fd00:1::2 (65601) type 128" not in lines[1]:
                    e.append("got %r" % out)
            if p.returncode != 1 or "closed" not in err:
                e.append("daemon gone: exit %r, stderr %r" % (p.returncode, err))
        except (subprocess.TimeoutExpired, ValueError) as x:
            p.kill()
            e.append(repr(x))
        report("fake-monitor-lost-and-gone-" + mode, e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshgatectl", default=os.path.join(
        ctl_test.ROOT, "build", "app", "meshgatectl", "meshgatectl"))
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    ctl = os.path.abspath(args.meshgatectl)
    tmp = tempfile.mkdtemp(prefix="mg-fakectl-")
    ctl_online_test.TAG = "fake/" + (args.tag + "/" if args.tag else "")
    try:
        ctl_test.setup(tmp)
        cfg = os.path.join(tmp, "cfg", "meshgate.yaml")
        sock = os.path.join(tmp, "meshgate.sock")
        fake = FakeServer(sock, ctl, cfg)
        try:
            ctl_online_test.run_checks(
                ctl, sock, config=cfg, ports=["inside", "outside"],
                identities={65600: ["k8s:app=web"], 65601: ["k8s:app=api"]},
                endpoints={"10.1.0.1": 65600, "fd00:1::2": 65601},
                flows=[("10.1.0.1", "10.1.0.2", "tcp", 80), ("10.1.0.1", "10.1.0.2", "tcp", 81),
                       ("fd00:1::1", "fd00:1::2", "icmpv6", None),
                       ("8.8.8.8", "192.0.2.9", "udp", 53)],
                send_traffic=fake.send_traffic, send_denied=fake.send_denied,
                broken_hook=lambda: setattr(fake, "broken", True),
                broken_error=r"broken\.yaml:3:5:",
                fix_hook=lambda: setattr(fake, "broken", False))
            fake_only_checks(ctl, fake, sock, ctl_online_test.report)
        finally:
            fake.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ctl_online_test.summary()


if __name__ == "__main__":
    sys.exit(main())
