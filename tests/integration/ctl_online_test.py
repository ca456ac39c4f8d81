#!/usr/bin/env python3
"""meshgatectl's online commands against a running daemon's control socket:
every command, run as a user would, with its real values checked. Each
check prints "PASS: ctl-online/<name>" or "FAIL: ctl-online/<name>: why".

From a harness that started the daemon (pcap_test.py style), call
run_checks() with what the harness knows, and hooks that make the daemon
see traffic:

    import ctl_online_test
    ctl_online_test.run_checks(
        ctl, sock, config=cfg, ports=["inside", "outside"],
        identities={65600: ["k8s:app=web"]},      # id -> labels it must show
        endpoints={"10.1.0.1": 65600},            # address -> its identity
        flows=[("10.1.0.1", "10.1.0.2", "tcp", 80)],  # traced online and offline
        send_traffic=lambda: ...,  # an allowed, tracked flow goes through
        send_denied=lambda: ...,   # a packet the policy denies goes through
        reload_hook=lambda: ...)   # optional: change a policy before `reload`
    sys.exit(ctl_online_test.summary())

Hooks left out skip the checks that need them (a SKIP line). The checks
run in a fixed order: the read-only ones, then traffic and conntrack
(ct flush empties the tables), monitor, and reload last, since it changes
the state. Mutating commands need root or the admin group; run as root.

Optional expectations make the checks sharper where the harness knows the
state exactly (tests/e2e/ctl_e2e.sh, the demo): workers=N (status),
policies=[(namespace, name)] (policy get: exactly these), selectors=
{text: [ids]} (policy selectors), world_ips=[ip] (ip get: no prefix,
reserved:world), ct_flow=(proto, addr, addr) (the entry traffic must make),
drop={field: value} (the monitor event the denied packet must make),
sync_configured=bool, and a broken_hook (makes a policy file invalid)
with broken_error (a regex the reload error must match) and fix_hook
(undoes it): a failed reload must leave the old state serving.

From the command line, the same; hooks are shell commands (--send-traffic
CMD, --send-denied CMD, --reload-cmd CMD, --broken-cmd CMD, --fix-cmd
CMD); without them the traffic checks are skipped:

    tests/integration/ctl_online_test.py --socket /run/meshgate/meshgate.sock \\
        --meshgatectl build/app/meshgatectl/meshgatectl --config meshgate.yaml \\
        --port inside --port outside --identity 65600=k8s:app=web \\
        --endpoint 10.1.0.1=65600 --flow 10.1.0.1,10.1.0.2,tcp,80
"""

import argparse
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

TAG = ""
results = {"pass": 0, "fail": 0, "skip": 0}


def report(name, errors):
    if errors:
        results["fail"] += 1
        print("FAIL: ctl-online/%s%s: %s" % (TAG, name, "; ".join(errors)), flush=True)
    else:
        results["pass"] += 1
        print("PASS: ctl-online/%s%s" % (TAG, name), flush=True)


def skip(name, why):
    results["skip"] += 1
    print("SKIP: ctl-online/%s%s: %s" % (TAG, name, why), flush=True)


def summary():
    """Print the totals; the exit status for the caller."""
    print("# %d passed, %d failed, %d skipped" % (results["pass"], results["fail"],
                                                 results["skip"]))
    return 1 if results["fail"] else 0


class Run:
    def __init__(self, ctl, args, env=None, timeout=60):
        r = subprocess.run([ctl] + args, capture_output=True, text=True, timeout=timeout,
                           env=env)
        self.rc, self.out, self.err = r.returncode, r.stdout, r.stderr
        self.args = args

    def json(self):
        return json.loads(self.out)

    def why(self):
        return "%s: exit %d, stdout %r, stderr %r" % (" ".join(self.args), self.rc,
                                                     self.out[-500:], self.err[-500:])


def wait_for(cond, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def check_json(name, r, test):
    """Report @name: exit 0, JSON output, and test(doc) returns no errors."""
    try:
        if r.rc != 0:
            raise ValueError("exit %d" % r.rc)
        errs = test(r.json())
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as x:
        errs = ["%s (%s)" % (r.why(), x)]
    report(name, errs)


def run_checks(ctl, sock, config=None, ports=(), identities=None, endpoints=None, flows=(),
               send_traffic=None, send_denied=None, reload_hook=None, workers=None,
               policies=None, selectors=None, world_ips=(), ct_flow=None, drop=None,
               sync_configured=None, broken_hook=None, broken_error=None, fix_hook=None):
    identities = identities or {}
    endpoints = endpoints or {}

    def run(*args, **kw):
        return Run(ctl, ["--socket", sock] + list(args), **kw)

    # ---- status, config ----
    r = run("status")
    report("status-text", [] if r.rc == 0 and all(p in r.out for p in ports) and
           "PORT" in r.out and "RX-PACKETS" in r.out else [r.why()])
    check_json("status-json", run("status", "-o", "json"), lambda d: (
        ["ports %r, want %r" % ([p["name"] for p in d["ports"]], list(ports))]
        if sorted(p["name"] for p in d["ports"]) != sorted(ports) else []) + (
        ["ready %r" % d["ready"]] if d["ready"] is not True else []) + (
        ["policy.revision %r" % d["policy"]["revision"]]
        if not isinstance(d["policy"]["revision"], int) or d["policy"]["revision"] < 1
        else []) + (
        ["%d workers, want %d" % (len(d["workers"]), workers)]
        if workers is not None and len(d["workers"]) != workers else []) + (
        ["policy.policies %r, want %d" % (d["policy"]["policies"], len(policies))]
        if policies is not None and d["policy"]["policies"] != len(policies) else []))
    r = Run(ctl, ["-o", "json", "--socket", sock, "status"])
    check_json("global-options-before-command", r, lambda d: [] if "ports" in d else ["%r" % d])
    env = dict(os.environ, MESHGATE_SOCKET=sock)
    r = Run(ctl, ["status"], env=env)
    report("socket-from-environment", [] if r.rc == 0 else [r.why()])

    check_json("config-show", run("config", "show", "-o", "json"), lambda d: (
        ["file %r" % d["file"]] if config and
        os.path.realpath(d["file"]) != os.path.realpath(config) else []) + (
        ["config is not an object"] if not isinstance(d["config"], dict) else []))
    r = run("config", "show")
    report("config-show-text", [] if r.rc == 0 and "KEY" in r.out and "cluster" in r.out
           else [r.why()])

    # ---- identities ----
    def ids_test(d):
        got = [i["id"] for i in d["identities"]]
        e = [] if got == sorted(got) else ["not sorted by id: %r" % got]
        e += ["identity %d missing" % i for i in identities if i not in got]
        return e
    check_json("identity-list", run("identity", "list", "-o", "json"), ids_test)
    r = run("identity", "list")
    report("identity-list-text", [] if r.rc == 0 and r.out.startswith("ID") and
           all(str(i) in r.out for i in identities) else [r.why()])
    for i, labels in sorted(identities.items()):
        r = run("identity", "get", str(i))
        report("identity-get-%d" % i, [] if r.rc == 0 and all(l in r.out for l in labels)
               else ["want labels %r: %s" % (labels, r.why())])
        check_json("identity-get-%d-json" % i, run("identity", "get", str(i), "-o", "json"),
                   lambda d, i=i, labels=labels: ([] if d["id"] == i else ["id %r" % d["id"]]) +
                   ["no label %s" % l for l in labels if l not in d["labels"]])
    r = run("identity", "get", "16777000")
    report("identity-get-unknown", [] if r.rc == 1 and r.err and r.out == "" else [r.why()])

    # ---- ipcache ----
    def ip_list_test(d, fam):
        e = []
        prefixes = {x["prefix"]: x["identity"] for x in d["entries"]}
        for ip, i in endpoints.items():
            want = ip + ("/128" if ":" in ip else "/32")
            if (":" in ip) == (fam == "ipv6") and prefixes.get(want) != i:
                e.append("%s -> %r, want %d" % (want, prefixes.get(want), i))
        if any((":" in p) != (fam == "ipv6") for p in prefixes):
            e.append("--family %s lists other families: %r" % (fam, list(prefixes)))
        return e
    for fam in ("ipv4", "ipv6"):
        check_json("ip-list-" + fam, run("ip", "list", "--family", fam, "-o", "json"),
                   lambda d, fam=fam: ip_list_test(d, fam))
    r = run("ip", "list")
    report("ip-list-text", [] if r.rc == 0 and r.out.startswith("PREFIX") and
           all(ip in r.out for ip in endpoints) else [r.why()])
    for ip, i in sorted(endpoints.items()):
        check_json("ip-get-" + ip, run("ip", "get", ip, "-o", "json"),
                   lambda d, i=i: [] if d["identity"] == i else ["identity %r, want %d"
                                                                 % (d["identity"], i)])
        r = run("ip", "get", ip)
        report("ip-get-text-" + ip, [] if r.rc == 0 and str(i) in r.out else [r.why()])
    for ip in world_ips:
        check_json("ip-get-world-" + ip, run("ip", "get", ip, "-o", "json"), lambda d: (
            [] if d["prefix"] is None and d["identity"] in (2, 9, 10) and
            "reserved:world" in " ".join(d["labels"]) else ["not world: %r" % d]))

    # ---- policy ----
    check_json("policy-get", run("policy", "get", "-o", "json"), lambda d: (
        [] if isinstance(d["revision"], int) and isinstance(d["policies"], list) and
        isinstance(d["skipped"], list) else ["%r" % d]))
    if policies is not None:
        check_json("policy-get-policies", run("policy", "get", "-o", "json"), lambda d: (
            [] if sorted((p["namespace"], p["name"]) for p in d["policies"]) ==
            sorted(tuple(p) for p in policies) and all(p["rules"] >= 1 for p in d["policies"])
            else ["policies %r, want %r" % (d["policies"], policies)]))
    r = run("policy", "get")
    report("policy-get-text", [] if r.rc == 0 and "revision" in r.out and
           all(n in r.out for _, n in (policies or ())) else [r.why()])
    check_json("policy-selectors", run("policy", "selectors", "-o", "json"),
               lambda d: [] if isinstance(d["selectors"], list) else ["%r" % d])
    for text, ids in sorted((selectors or {}).items()):
        check_json("policy-selector-" + text, run("policy", "selectors", "-o", "json"),
                   lambda d, text=text, ids=ids: (
                       [] if any(text in s["selector"] and sorted(s["identities"]) == sorted(ids)
                                 and s["users"] >= 1 for s in d["selectors"])
                       else ["no selector with %r selecting %r: %r" % (text, ids,
                                                                      d["selectors"])]))
    for f in flows:
        src, dst, proto, port = f
        flow = ["--src", src, "--dst", dst, "--proto", proto]
        if port is not None:
            flow += ["--dport" if proto in ("tcp", "udp", "sctp") else "--icmp-type", str(port)]
        name = "policy-trace-%s-%s-%s-%s" % (src, dst, proto, port)
        on_j = run("policy", "trace", *flow, "-o", "json")
        on_t = run("policy", "trace", *flow)
        e = []
        if on_j.rc != 0 or on_t.rc != 0:
            e.append(on_j.why() if on_j.rc else on_t.why())
        elif config is None:
            try:
                if on_j.json()["verdict"] not in ("allowed", "denied"):
                    e.append("verdict %r" % on_j.json()["verdict"])
            except (ValueError, KeyError) as x:
                e.append("%s: %s" % (x, on_j.why()))
        else:
            off_j = Run(ctl, ["policy", "trace", "--config", config] + flow + ["-o", "json"])
            off_t = Run(ctl, ["policy", "trace", "--config", config] + flow)
            try:
                if on_j.json() != off_j.json():
                    e.append("online JSON %s differs from offline %s" % (on_j.out, off_j.out))
            except ValueError as x:
                e.append("%s: %s / %s" % (x, on_j.why(), off_j.why()))
            if on_t.out != off_t.out:
                e.append("online text %r differs from offline %r" % (on_t.out, off_t.out))
        report(name, e)

    # ---- conntrack (needs traffic) ----
    if send_traffic is None:
        skip("ct-list-after-traffic", "no send_traffic hook")
    else:
        def flow_entries(d):
            if ct_flow is None:
                return d["entries"]
            proto, x, y = ct_flow
            return [c for c in d["entries"] if c["proto"].lower() == proto.lower() and
                    sorted((c["a"], c["b"])) == sorted((x, y))]
        send_traffic()
        ok = wait_for(lambda: (lambda r: r.rc == 0 and len(flow_entries(r.json())) > 0)(
            run("ct", "list", "-o", "json")), 5)
        r = run("ct", "list", "-o", "json")
        e = [] if ok else ["no entry%s after traffic: %s" % (
            "" if ct_flow is None else " for %r" % (ct_flow,), r.why())]
        if ok:
            d = r.json()
            ent = flow_entries(d)[0]
            for k in ("worker", "family", "proto", "a", "pa", "b", "pb", "state",
                      "expires_in_ms", "opened_by"):
                if k not in ent:
                    e.append("entry without %s: %r" % (k, ent))
        report("ct-list-after-traffic", e)
        r = run("ct", "list")
        report("ct-list-text", [] if r.rc == 0 and r.out.startswith("WORKER") and
               "entries shown" in r.out else [r.why()])
        check_json("ct-list-limit", run("ct", "list", "--limit", "1", "-o", "json"),
                   lambda d: [] if len(d["entries"]) <= 1 else ["%d entries" % len(d["entries"])])
        check_json("ct-flush", run("ct", "flush", "-o", "json"),
                   lambda d: [] if d["flushed"] >= 1 else ["flushed %r" % d["flushed"]])
        check_json("ct-list-after-flush", run("ct", "list", "-o", "json"),
                   lambda d: [] if d["total"] == 0 and d["entries"] == [] else ["%r" % d])
        r = run("ct", "list")
        report("ct-list-text-after-flush", [] if r.rc == 0 and
               re.search(r"\b0 of 0 entries", r.out) else [r.why()])

    # ---- sync, metrics ----
    check_json("sync-status", run("sync", "status", "-o", "json"), lambda d: (
        [] if isinstance(d["configured"], bool) and isinstance(d["clusters"], list) and
        (sync_configured is None or d["configured"] == sync_configured) and
        (sync_configured is not False or d["clusters"] == [])
        else ["%r" % d]))
    r = run("sync", "status")
    report("sync-status-text", [] if r.rc == 0 and r.out else [r.why()])
    r = run("metrics")
    e = []
    if r.rc != 0:
        e.append(r.why())
    else:
        try:
            from prometheus_client.parser import text_string_to_metric_families
            fams = list(text_string_to_metric_families(r.out))
            if not fams or not any(s for f in fams for s in f.samples):
                e.append("no samples")
        except Exception as x:  # the parser raises plain exceptions
            e.append("not Prometheus text: %r" % x)
    report("metrics-prometheus", e)
    check_json("metrics-json", run("metrics", "--format", "json", "-o", "json"),
               lambda d: [] if isinstance(d["metrics"], dict) else ["%r" % d])

    # ---- monitor (needs a denied packet) ----
    if send_denied is None:
        skip("monitor-drop", "no send_denied hook")
    else:
        report("monitor-drop", monitor_check(ctl, sock, send_denied, drop))

    # ---- reload (last: it changes the state) ----
    before = None
    r = run("status", "-o", "json")
    if r.rc == 0:
        before = r.json()["policy"]["revision"]
    if reload_hook is not None:
        reload_hook()
    r = run("reload", "-o", "json")
    check_json("reload", r, lambda d: (
        [] if isinstance(d["revision"], int) and (before is None or d["revision"] > before)
        else ["revision %r after %r" % (d["revision"], before)]) + (
        [] if isinstance(d["ipcache_changes"], int) else ["ipcache_changes %r" % d]))
    r2 = run("policy", "get", "-o", "json")
    try:
        if r.rc == 0 and r2.json()["revision"] != r.json()["revision"]:
            report("reload-revision-seen", ["policy get says %r" % r2.json()["revision"]])
        else:
            report("reload-revision-seen", [] if r.rc == 0 else [r.why()])
    except ValueError:
        report("reload-revision-seen", [r2.why()])
    if broken_hook is None:
        skip("reload-broken", "no broken_hook")
    else:
        broken_reload_checks(run, broken_hook, broken_error, fix_hook)

    # ---- usage errors: exit 2, nothing asked ----
    for name, args in (
            ("usage-identity-get-not-number", ["identity", "get", "abc"]),
            ("usage-identity-get-missing", ["identity", "get"]),
            ("usage-ip-get-bad-address", ["ip", "get", "10.0.0.300"]),
            ("usage-ip-list-bad-family", ["ip", "list", "--family", "ipx"]),
            ("usage-ct-list-bad-limit", ["ct", "list", "--limit", "0"]),
            ("usage-monitor-bad-type", ["monitor", "--type", "bogus"]),
            ("usage-metrics-bad-format", ["metrics", "--format", "xml"]),
            ("usage-unknown-option", ["status", "--frob"]),
            ("usage-extra-argument", ["status", "extra"]),
            ("usage-bad-output", ["status", "-o", "yaml"]),
            ("usage-trace-bad-flow", ["policy", "trace", "--src", "10.1.0.1", "--dst",
                                      "fd00::1", "--proto", "tcp", "--dport", "1"]),
            ("usage-missing-subcommand", ["identity"])):
        r = run(*args)
        report(name, [] if r.rc == 2 and r.err and r.out == "" else [r.why()])

    # ---- unreachable ----
    nowhere = os.path.join(os.path.dirname(sock) or ".", "no-such-meshgate.sock")
    r = Run(ctl, ["--socket", nowhere, "status"])
    report("unreachable", [] if r.rc == 1 and nowhere in r.err and "running" in r.err and
           r.out == "" else [r.why()])


def monitor_check(ctl, sock, send_denied, want=None):
    """monitor --type drop -o json prints the drop of a denied packet; Ctrl-C ends it (0).

    With @want ({field: value}), an event with those fields must come (other
    drops a live gateway sees may come before it); without, the first event
    is the one checked.
    """
    p = subprocess.Popen([ctl, "--socket", sock, "monitor", "--type", "drop", "-o", "json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    e = []
    seen = []
    try:
        time.sleep(0.5)  # the subscription is made when the first reply comes back
        if p.poll() is not None:
            return ["monitor ended at once: exit %d, %s" % (p.returncode, p.stderr.read())]
        fd = p.stdout.fileno()
        buf = b""
        found = None
        for _ in range(3):  # the hook may be a packet the daemon sees later; retry
            send_denied()
            end = time.time() + 3
            while found is None and time.time() < end:
                ready, _, _ = select.select([fd], [], [], max(0, end - time.time()))
                if not ready:
                    break
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    ev = json.loads(line)
                    seen.append(ev)
                    if want is None or all(ev.get(k) == v for k, v in want.items()):
                        found = ev
                        break
            if found is not None:
                break
        if found is None:
            e.append("no %s within 9 s of sending denied packets (saw %r)" % (
                "event" if want is None else "event with %r" % (want,), seen[:5]))
        else:
            if found.get("type") != "drop":
                e.append("event type %r: %r" % (found.get("type"), found))
            for k in ("time", "port", "reason", "src", "dst", "src_identity", "dst_identity"):
                if k not in found:
                    e.append("event without %s: %r" % (k, found))
        p.send_signal(signal.SIGINT)
        p.wait(timeout=5)
        if p.returncode != 0:
            e.append("exit %d after SIGINT, want 0" % p.returncode)
    except (ValueError, subprocess.TimeoutExpired) as x:
        e.append(repr(x))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
    return e


def broken_reload_checks(run, broken_hook, broken_error, fix_hook):
    """A reload of a broken policy file fails (exit 1, the file:line:column
    message) and changes nothing: same revision and policies, the failure
    counted; once fixed, a reload works again."""
    def state():
        s, p = run("status", "-o", "json"), run("policy", "get", "-o", "json")
        if s.rc != 0 or p.rc != 0:
            raise ValueError(s.why() if s.rc else p.why())
        return s.json(), sorted((x["namespace"], x["name"]) for x in p.json()["policies"])
    try:
        st0, pol0 = state()
    except ValueError as x:
        report("reload-broken", ["state before: %s" % x])
        return
    broken_hook()
    r = run("reload")
    e = []
    if r.rc != 1 or r.out != "" or not r.err:
        e.append("want exit 1, an error on stderr and nothing on stdout: " + r.why())
    if broken_error is not None and not re.search(broken_error, r.err):
        e.append("stderr %r does not match %r" % (r.err, broken_error))
    report("reload-broken", e)
    e = []
    try:
        st1, pol1 = state()
        if st1["policy"]["revision"] != st0["policy"]["revision"]:
            e.append("revision %r -> %r" % (st0["policy"]["revision"], st1["policy"]["revision"]))
        if pol1 != pol0:
            e.append("policies %r -> %r" % (pol0, pol1))
        if st1["reloads"]["failed"] != st0["reloads"]["failed"] + 1:
            e.append("reloads.failed %r -> %r" % (st0["reloads"]["failed"],
                                                  st1["reloads"]["failed"]))
        if st1["reloads"]["ok"] != st0["reloads"]["ok"]:
            e.append("reloads.ok %r -> %r" % (st0["reloads"]["ok"], st1["reloads"]["ok"]))
        if not st1["reloads"]["last_error"] or (
                broken_error is not None and not re.search(broken_error,
                                                           st1["reloads"]["last_error"])):
            e.append("reloads.last_error %r" % st1["reloads"]["last_error"])
    except (ValueError, KeyError, TypeError) as x:
        e.append(str(x))
    report("reload-broken-old-state-serving", e)
    if fix_hook is None:
        skip("reload-fixed", "no fix_hook")
        return
    fix_hook()
    r = run("reload", "-o", "json")
    check_json("reload-fixed", r, lambda d: (
        [] if d["revision"] > st0["policy"]["revision"] else
        ["revision %r after %r" % (d["revision"], st0["policy"]["revision"])]))


def shell_hook(name, cmd):
    """A hook that runs the shell command @cmd; a non-zero exit is a FAIL line."""
    if cmd is None:
        return None

    def hook():
        r = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            report("hook-" + name, ["%r: exit %d, stdout %r, stderr %r" % (
                cmd, r.returncode, r.stdout[-300:], r.stderr[-300:])])
    return hook


def _scalar(v):
    """A command-line value as JSON would carry it: integers as numbers."""
    try:
        return int(v)
    except ValueError:
        return v


def main():
    global TAG
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--meshgatectl", required=True)
    ap.add_argument("--config", help="the daemon's config: traces are compared with offline")
    ap.add_argument("--port", action="append", default=[], help="a port name status must show")
    ap.add_argument("--identity", action="append", default=[],
                    help="ID=LABEL[,LABEL...]: an identity and labels it must show")
    ap.add_argument("--endpoint", action="append", default=[], help="IP=ID")
    ap.add_argument("--flow", action="append", default=[], help="SRC,DST,PROTO[,PORT]")
    ap.add_argument("--tag", default="")
    ap.add_argument("--send-traffic", metavar="CMD", help="hook: an allowed, tracked flow")
    ap.add_argument("--send-denied", metavar="CMD", help="hook: a packet the policy denies")
    ap.add_argument("--reload-cmd", metavar="CMD", help="hook: run before `reload`")
    ap.add_argument("--broken-cmd", metavar="CMD", help="hook: make a policy file invalid")
    ap.add_argument("--broken-error", metavar="REGEX", help="the failed reload's message")
    ap.add_argument("--fix-cmd", metavar="CMD", help="hook: undo --broken-cmd")
    ap.add_argument("--workers", type=int, help="how many workers status must show")
    ap.add_argument("--policy", action="append", default=None,
                    help="NAMESPACE/NAME: a policy policy get must show (exactly these)")
    ap.add_argument("--selector", action="append", default=[],
                    help="TEXT=ID[,ID...]: a selector containing TEXT selects exactly these")
    ap.add_argument("--world-ip", action="append", default=[], help="an address in no entry")
    ap.add_argument("--ct-flow", help="PROTO,ADDR,ADDR: the entry --send-traffic makes")
    ap.add_argument("--drop", help="FIELD=VALUE[,...]: the event --send-denied makes")
    ap.add_argument("--sync-configured", choices=("yes", "no"))
    args = ap.parse_args()
    TAG = args.tag + "/" if args.tag else ""
    ids = {}
    for s in args.identity:
        i, _, labels = s.partition("=")
        ids[int(i)] = labels.split(",") if labels else []
    eps = {ip: int(i) for ip, _, i in (s.partition("=") for s in args.endpoint)}
    flows = []
    for s in args.flow:
        f = s.split(",")
        flows.append((f[0], f[1], f[2], int(f[3]) if len(f) > 3 else None))
    policies = None
    if args.policy is not None:
        policies = [tuple(p.split("/", 1)) for p in args.policy]
    sels = {}
    for s in args.selector:
        text, _, ids_ = s.rpartition("=")
        sels[text] = [int(x) for x in ids_.split(",") if x]
    drop = None
    if args.drop:
        drop = {k: _scalar(v) for k, _, v in (f.partition("=") for f in args.drop.split(","))}
    run_checks(os.path.abspath(args.meshgatectl), args.socket, config=args.config,
               ports=args.port, identities=ids, endpoints=eps, flows=flows,
               send_traffic=shell_hook("send-traffic", args.send_traffic),
               send_denied=shell_hook("send-denied", args.send_denied),
               reload_hook=shell_hook("reload-cmd", args.reload_cmd),
               workers=args.workers, policies=policies, selectors=sels,
               world_ips=args.world_ip,
               ct_flow=tuple(args.ct_flow.split(",")) if args.ct_flow else None,
               drop=drop,
               sync_configured=None if args.sync_configured is None else
               args.sync_configured == "yes",
               broken_hook=shell_hook("broken-cmd", args.broken_cmd),
               broken_error=args.broken_error,
               fix_hook=shell_hook("fix-cmd", args.fix_cmd))
    return summary()


if __name__ == "__main__":
    sys.exit(main())
