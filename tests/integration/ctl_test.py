#!/usr/bin/env python3
"""meshgatectl's offline commands, end to end: policy validate and policy
trace --config, run as a user would, on files this script writes (so every
expected file:line:column is known here). Each check prints one line,
"PASS: ctl/<name>" or "FAIL: ctl/<name>: why"; the exit status is non-zero
if any check failed.

    tests/integration/ctl_test.py --meshgatectl build/app/meshgatectl/meshgatectl
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

results = {"pass": 0, "fail": 0}
TAG = ""


def report(name, errors):
    if errors:
        results["fail"] += 1
        print("FAIL: ctl/%s%s: %s" % (TAG, name, "; ".join(errors)))
    else:
        results["pass"] += 1
        print("PASS: ctl/%s%s" % (TAG, name))


class Run:
    def __init__(self, ctl, args, cwd):
        r = subprocess.run([ctl] + args, capture_output=True, text=True, cwd=cwd, timeout=60)
        self.rc, self.out, self.err = r.returncode, r.stdout, r.stderr
        self.args = args

    def lines(self):
        return [l for l in self.out.splitlines() if l.strip()]

    def why(self):
        return "exit %d, stdout %r, stderr %r" % (self.rc, self.out[-600:], self.err[-600:])


POLICY_OK = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api-from-web, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: "80", protocol: TCP}]}]
"""

# line 7, column 7: the unknown key
POLICY_BAD_FIELD = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: typo, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoint: [{matchLabels: {app: web}}]
"""

# line 8, column 21: the bad value
POLICY_BAD_PROTO = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: badproto, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - toPorts:
        - ports: [{port: "80", protocol: HTTP}]
"""

# an allow rule with L7 rules: skipped with a warning, the file stays valid
POLICY_L7 = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api-l7, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
          rules:
            http: [{method: GET}]
"""

# what a layer-4 gateway cannot enforce, in a deny rule: an error (line 7,
# column 7), since skipping a deny would widen access
POLICY_DENY_UNENFORCEABLE = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-no-aws, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: web}}
  egressDeny:
    - toGroups: [{aws: {securityGroupsIds: [sg-123]}}]
"""

# selects api for ingress without switching it to default deny
POLICY_ADDITIVE = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api-add, namespace: prod}
spec:
  endpointSelector: {matchLabels: {app: api}}
  enableDefaultDeny: {ingress: false}
  ingress:
    - fromEndpoints: [{matchLabels: {app: web}}]
      toPorts: [{ports: [{port: "80", protocol: TCP}]}]
"""

IDENTITIES = """\
apiVersion: v1
kind: List
items:
  - apiVersion: cilium.io/v2
    kind: CiliumIdentity
    metadata: {name: "65600"}
    security-labels:
      k8s:app: web
      k8s:io.kubernetes.pod.namespace: prod
      k8s:io.cilium.k8s.policy.cluster: cluster-a
  - apiVersion: cilium.io/v2
    kind: CiliumIdentity
    metadata: {name: "65601"}
    security-labels:
      k8s:app: api
      k8s:io.kubernetes.pod.namespace: prod
      k8s:io.cilium.k8s.policy.cluster: cluster-a
"""

ENDPOINTS = """\
apiVersion: cilium.io/v2
kind: CiliumEndpoint
metadata: {name: web-1, namespace: prod}
status:
  identity: {id: 65600}
  networking:
    addressing: [{ipv4: 10.1.0.1, ipv6: "fd00:1::1"}]
---
apiVersion: cilium.io/v2
kind: CiliumEndpoint
metadata: {name: api-1, namespace: prod}
status:
  identity: {id: 65601}
  networking:
    addressing: [{ipv4: 10.1.0.2, ipv6: "fd00:1::2"}]
"""

CONFIG = """\
version: 1
eal: ["--no-huge", "--no-pci", "--vdev=net_null0", "--vdev=net_null1"]
datapath:
  ports:
    - {name: inside, device: net_null0, peer: outside}
    - {name: outside, device: net_null1, peer: inside}
cluster: {name: cluster-a, id: 1}
policy:
  enforcement: default
  sources:
    - {cluster: cluster-a, path: policies/}
identities:
  files: [identities.yaml]
ipcache:
  files: [endpoints.yaml]
  entries:
    - {prefix: 192.0.2.0/24, identity: 65600}
"""

# line 9, column 16: the bad value
CONFIG_BAD = """\
version: 1
eal: ["--no-huge"]
datapath:
  ports:
    - {name: inside, device: net_null0, peer: outside}
    - {name: outside, device: net_null1, peer: inside}
cluster: {name: cluster-a, id: 1}
policy:
  enforcement: sometimes
"""


def write(base, rel, text):
    path = os.path.join(base, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def setup(tmp):
    write(tmp, "valid/ok.yaml", POLICY_OK)
    write(tmp, "bad/field.yaml", POLICY_BAD_FIELD)
    write(tmp, "bad/proto.yaml", POLICY_BAD_PROTO)
    write(tmp, "warn/l7.yaml", POLICY_L7)
    write(tmp, "bad/deny.yaml", POLICY_DENY_UNENFORCEABLE)
    write(tmp, "dir/a.yaml", POLICY_OK)
    write(tmp, "dir/b.yml", POLICY_BAD_FIELD)
    write(tmp, "dir/c.txt", "not: [a policy\n")  # not read: wrong extension
    write(tmp, "cfg/meshgate.yaml", CONFIG)
    write(tmp, "cfg/policies/api.yaml", POLICY_OK)
    write(tmp, "cfg/identities.yaml", IDENTITIES)
    write(tmp, "cfg/endpoints.yaml", ENDPOINTS)
    write(tmp, "badcfg/meshgate.yaml", CONFIG_BAD)
    write(tmp, "addcfg/meshgate.yaml", CONFIG)
    write(tmp, "addcfg/policies/api.yaml", POLICY_ADDITIVE)
    write(tmp, "addcfg/identities.yaml", IDENTITIES)
    write(tmp, "addcfg/endpoints.yaml", ENDPOINTS)
    write(tmp, "flows.txt", "# flows\n"
          "--src 10.1.0.1 --dst 10.1.0.2 --proto tcp --dport 80\n"
          "\n"
          "--src=10.1.0.1 --dst=10.1.0.2 --proto=tcp --dport=81\n"
          "--src fd00:1::1 --dst fd00:1::2 --proto icmpv6 --icmp-type EchoRequest\n")
    # over MG_YAML_MAX_BYTES (64 MiB); sparse, so it costs no disk
    with open(os.path.join(tmp, "big.yaml"), "wb") as f:
        f.truncate((64 << 20) + 1)
    write(tmp, "badflows.txt", "--src 10.1.0.1 --dst 10.1.0.2 --proto tcp --dport 80\n"
          "--src 10.1.0.1 --dst 10.1.0.2 --proto tcp --icmp-type 8\n")


def checks(ctl, tmp):
    def run(*args):
        return Run(ctl, list(args), tmp)

    # ---- general ----
    r = run("--help")
    report("help", [] if r.rc == 0 and "policy validate" in r.out and "policy trace" in r.out
           else [r.why()])
    r = run("help")
    report("help-lists-online", [] if r.rc == 0 and "Online commands" in r.out and
           "identity get" in r.out and "monitor" in r.out and "Offline commands" in r.out
           else [r.why()])
    r = run("help", "ct", "list")
    report("help-online-command", [] if r.rc == 0 and "--limit" in r.out else [r.why()])
    r = run("help", "policy", "trace")
    report("help-command", [] if r.rc == 0 and "--config" in r.out else [r.why()])
    r = run("--version")
    report("version", [] if r.rc == 0 and r.out.startswith("meshgatectl ") else [r.why()])
    r = run("frobnicate")
    report("unknown-command", [] if r.rc == 2 and "unknown command" in r.err else [r.why()])
    r = run()
    report("no-command", [] if r.rc == 2 else [r.why()])

    # ---- validate ----
    r = run("policy", "validate", "valid/ok.yaml")
    report("validate-valid", [] if r.rc == 0 and r.out == "" else [r.why()])

    r = run("policy", "validate", "bad/field.yaml")
    e = []
    if r.rc != 1:
        e.append("exit %d, want 1" % r.rc)
    if not (len(r.lines()) == 1 and r.lines()[0].startswith("bad/field.yaml:7:7: ")
            and "fromEndpoint" in r.lines()[0]):
        e.append("want one line 'bad/field.yaml:7:7: ...fromEndpoint...': " + r.why())
    report("validate-unknown-field", e)

    r = run("policy", "validate", "bad/proto.yaml")
    e = []
    if r.rc != 1:
        e.append("exit %d, want 1" % r.rc)
    if not (len(r.lines()) == 1 and r.lines()[0].startswith("bad/proto.yaml:8:42: ")):
        e.append("want one line 'bad/proto.yaml:8:42: ...': " + r.why())
    report("validate-bad-protocol", e)

    r = run("policy", "validate", "bad/field.yaml", "bad/proto.yaml", "valid/ok.yaml")
    e = []
    starts = [l.split(" ")[0] for l in r.lines()]
    if r.rc != 1 or starts != ["bad/field.yaml:7:7:", "bad/proto.yaml:8:42:"]:
        e.append("want the two errors in order: " + r.why())
    report("validate-several-paths", e)

    r = run("policy", "validate", "dir")
    e = []
    if r.rc != 1:
        e.append("exit %d, want 1" % r.rc)
    if len(r.lines()) != 1 or not r.lines()[0].startswith(os.path.join("dir", "b.yml") + ":7:7: "):
        e.append("want one line 'dir/b.yml:7:7: ...' (c.txt not read): " + r.why())
    report("validate-directory", e)

    r = run("policy", "validate", "warn/l7.yaml")
    e = []
    if r.rc != 0:
        e.append("exit %d, want 0 (warnings alone do not fail)" % r.rc)
    if not (len(r.lines()) == 1 and r.lines()[0].startswith("warn/l7.yaml:")
            and ": warning: " in r.lines()[0]):
        e.append("want one 'warn/l7.yaml:L:C: warning: ...' line: " + r.why())
    report("validate-warning", e)

    r = run("policy", "validate", "bad/deny.yaml")
    e = []
    if r.rc != 1 or len(r.lines()) != 1 or \
            not r.lines()[0].startswith("bad/deny.yaml:7:7: ") or "toGroups" not in r.out:
        e.append("want exit 1 and one line 'bad/deny.yaml:7:7: ...toGroups...': " + r.why())
    report("validate-deny-unenforceable", e)

    r = run("policy", "validate", "warn/l7.yaml", "bad/field.yaml")
    e = []
    if r.rc != 1 or len(r.lines()) != 2 or ": warning: " not in r.lines()[0]:
        e.append("want a warning then an error, exit 1: " + r.why())
    report("validate-warning-and-error", e)

    r = run("policy", "validate", "-o", "json", "bad/field.yaml", "valid/ok.yaml")
    e = []
    try:
        doc = json.loads(r.out)
        if doc.get("valid") is not False or doc.get("errors") != 1:
            e.append("want valid false, errors 1: %r" % doc)
        p = doc.get("problems") or [{}]
        if (p[0].get("file"), p[0].get("line"), p[0].get("column"), p[0].get("severity")) != \
                ("bad/field.yaml", 7, 7, "error"):
            e.append("problem: %r" % p[0])
        if r.rc != 1:
            e.append("exit %d, want 1" % r.rc)
    except ValueError:
        e.append("not one JSON document: " + r.why())
    report("validate-json", e)

    r = run("policy", "validate", "-o", "json", "valid/ok.yaml")
    e = []
    try:
        doc = json.loads(r.out)
        if doc.get("valid") is not True or doc.get("policies") != 1 or r.rc != 0:
            e.append("want valid true, 1 policy, exit 0: %r" % doc)
    except ValueError:
        e.append("not JSON: " + r.why())
    report("validate-json-valid", e)

    r = run("policy", "validate", "nonexistent.yaml")
    report("validate-missing-file", [] if r.rc != 0 and r.lines() == [
        "nonexistent.yaml: No such file or directory"] else [r.why()])

    # a file over the size limit: one line, the file named once
    r = run("policy", "validate", "big.yaml")
    report("validate-oversized-file", [] if r.rc == 1 and r.lines() == [
        "big.yaml: larger than 67108864 bytes"] else [r.why()])
    r = run("policy", "validate", "-o", "json", "big.yaml")
    e = []
    try:
        p = json.loads(r.out)["problems"]
        if r.rc != 1 or len(p) != 1 or p[0]["file"] != "big.yaml" or \
                p[0]["message"] != "larger than 67108864 bytes":
            e.append("problems %r, exit %d" % (p, r.rc))
    except (ValueError, KeyError) as x:
        e.append("bad JSON (%s): %s" % (x, r.why()))
    report("validate-oversized-file-json", e)
    r = run("policy", "validate")
    report("validate-no-path", [] if r.rc == 2 else [r.why()])
    r = run("policy", "validate", "--bogus", "valid/ok.yaml")
    report("validate-unknown-option", [] if r.rc == 2 and "--bogus" in r.err else [r.why()])
    r = run("policy", "validate", "--cluster", "cluster-b", "valid/ok.yaml")
    report("validate-cluster", [] if r.rc == 0 else [r.why()])

    # ---- trace ----
    cfg = "cfg/meshgate.yaml"
    r = run("policy", "trace", "--config", cfg, "--src", "10.1.0.1", "--dst", "10.1.0.2",
            "--proto", "tcp", "--dport", "80")
    e = []
    if r.rc != 0:
        e.append(r.why())
    for want in ("65600", "k8s:app=web", "65601", "k8s:app=api", "api-from-web", "ALLOWED",
                 "ingress[0]"):
        if want not in r.out:
            e.append("no %r in the output" % want)
    report("trace-text-allowed", e)

    r = run("policy", "trace", "--config", cfg, "--src", "10.1.0.1", "--dst", "10.1.0.2",
            "--proto", "tcp", "--dport", "81")
    e = [] if r.rc == 0 and "DENIED" in r.out and "default deny" in r.out else [r.why()]
    report("trace-text-denied", e)

    r = run("policy", "trace", "--config", cfg, "--src", "10.1.0.1", "--dst", "10.1.0.2",
            "--proto", "tcp", "--dport", "80", "-o", "json")
    e = []
    try:
        d = json.loads(r.out)
        if d["verdict"] != "allowed":
            e.append("verdict %r" % d["verdict"])
        if d["src"]["identity"] != 65600 or d["src"]["ip"] != "10.1.0.1" or \
                "k8s:app=web" not in d["src"]["labels"]:
            e.append("src %r" % d["src"])
        if d["dst"]["identity"] != 65601 or d["dst"]["ip"] != "10.1.0.2":
            e.append("dst %r" % d["dst"])
        ing = d["ingress"]
        if not (ing["allowed"] and ing["enforced"] and not ing["by_deny_rule"]):
            e.append("ingress %r" % ing)
        rule = ing["rule"] or {}
        want = {"name": "api-from-web", "namespace": "prod", "cluster": "cluster-a",
                "section": "ingress", "rule_index": 0, "entry_index": 0, "line": 7}
        for k, v in want.items():
            if rule.get(k) != v:
                e.append("ingress.rule.%s = %r, want %r" % (k, rule.get(k), v))
        if not str(rule.get("file", "")).endswith("policies/api.yaml"):
            e.append("ingress.rule.file %r" % rule.get("file"))
        eg = d["egress"]
        if not (eg["allowed"] and not eg["enforced"] and eg["rule"] is None):
            e.append("egress %r" % eg)
        if r.rc != 0:
            e.append("exit %d" % r.rc)
    except (ValueError, KeyError, TypeError) as x:
        e.append("bad JSON (%s): %s" % (x, r.why()))
    report("trace-json-allowed", e)

    r = run("policy", "trace", "--config", cfg, "--src", "10.1.0.1", "--dst", "10.1.0.2",
            "--proto", "udp", "--dport", "80", "-o", "json")
    e = []
    try:
        d = json.loads(r.out)
        if d["verdict"] != "denied" or d["denied_by"] != "ingress" or r.rc != 0:
            e.append("want denied by ingress, exit 0: %s" % r.why())
        if d["ingress"]["rule"] is not None or d["ingress"]["allowed"] or \
                not d["ingress"]["enforced"]:
            e.append("ingress %r" % d["ingress"])
    except (ValueError, KeyError) as x:
        e.append("bad JSON (%s): %s" % (x, r.why()))
    report("trace-json-denied", e)

    r = run("policy", "trace", "--config", cfg, "--src", "8.8.8.8", "--dst", "192.0.2.9",
            "--proto", "udp", "--dport", "53", "-o", "json")
    e = []
    try:
        d = json.loads(r.out)
        if d["src"]["identity"] != 9 or d["src"]["prefix"] is not None:
            e.append("8.8.8.8 is world-ipv4 (9): %r" % d["src"])
        if d["dst"]["identity"] != 65600 or d["dst"]["prefix"] != "192.0.2.0/24":
            e.append("192.0.2.9 is 65600 by 192.0.2.0/24: %r" % d["dst"])
    except (ValueError, KeyError) as x:
        e.append("bad JSON (%s): %s" % (x, r.why()))
    report("trace-ipcache-resolution", e)

    r = run("policy", "trace", "--config", cfg, "--src", "id:65600", "--dst", "id:host",
            "--proto", "icmp", "--icmp-type", "EchoRequest", "-o", "json")
    e = []
    try:
        d = json.loads(r.out)
        if d["dst"]["identity"] != 1 or d["icmp_type"] != 8 or d["src"]["ip"] is not None:
            e.append("%r" % d)
    except (ValueError, KeyError) as x:
        e.append("bad JSON (%s): %s" % (x, r.why()))
    report("trace-identity-and-icmp-name", e)

    # a rule selects api for ingress with enableDefaultDeny {ingress: false}:
    # open, but not "no policy selects it"
    add = ["policy", "trace", "--config", "addcfg/meshgate.yaml", "--src", "10.1.0.1",
           "--dst", "10.1.0.2", "--proto", "tcp", "--dport", "22"]
    r = run(*add)
    e = []
    ing = [l for l in r.lines() if l.startswith("ingress")]
    eg = [l for l in r.lines() if l.startswith("egress")]
    if r.rc != 0 or "ALLOWED" not in r.out:
        e.append(r.why())
    if len(ing) != 1 or "no policy selects it" in ing[0] or \
            "not default deny for ingress (the rules that select it have enableDefaultDeny " \
            "ingress: false) (open)" not in ing[0]:
        e.append("ingress line %r" % ing)
    if len(eg) != 1 or "no policy selects it for egress (open)" not in eg[0]:
        e.append("egress line %r" % eg)
    report("trace-text-selected-without-default-deny", e)

    r = run(*(add + ["-o", "json"]))
    e = []
    try:
        d = json.loads(r.out)
        ing, eg = d["ingress"], d["egress"]
        if (ing["allowed"], ing["enforced"], ing["selected"], ing["reason"], ing["rule"]) != \
                (True, False, True, "open", None):
            e.append("ingress %r" % ing)
        if (eg["enforced"], eg["selected"]) != (False, False):
            e.append("egress %r" % eg)
    except (ValueError, KeyError) as x:
        e.append("bad JSON (%s): %s" % (x, r.why()))
    report("trace-json-selected-without-default-deny", e)

    r = run("policy", "trace", "--config", cfg, "--flows", "flows.txt", "-o", "json")
    e = []
    try:
        docs = [json.loads(l) for l in r.lines()]
        if [d["verdict"] for d in docs] != ["allowed", "denied", "denied"]:
            e.append("verdicts %r" % [d["verdict"] for d in docs])
        if docs[2]["proto"] != "icmpv6" or docs[2]["icmp_type"] != 128:
            e.append("third flow %r" % docs[2])
        if r.rc != 0:
            e.append("exit %d" % r.rc)
    except (ValueError, KeyError, IndexError) as x:
        e.append("bad JSON lines (%s): %s" % (x, r.why()))
    report("trace-flows-batch", e)

    r = run("policy", "trace", "--config", cfg, "--flows", "badflows.txt", "-o", "json")
    report("trace-flows-bad-line",
           [] if r.rc == 2 and "badflows.txt:2:" in r.err else [r.why()])

    # ---- trace: bad input ----
    base = ["policy", "trace", "--config", cfg]
    bad = [
        ("trace-unknown-option", base + ["--src", "10.1.0.1", "--dst", "10.1.0.2", "--proto",
                                         "tcp", "--dport", "80", "--frob"], 2, "--frob"),
        ("trace-bad-ip", base + ["--src", "10.1.0.300", "--dst", "10.1.0.2", "--proto", "tcp",
                                 "--dport", "80"], 2, "10.1.0.300"),
        ("trace-bad-id", base + ["--src", "id:abc", "--dst", "10.1.0.2", "--proto", "tcp",
                                 "--dport", "80"], 2, "id:abc"),
        ("trace-bad-proto", base + ["--src", "10.1.0.1", "--dst", "10.1.0.2", "--proto", "tcpp",
                                    "--dport", "80"], 2, "tcpp"),
        ("trace-dport-with-icmp", base + ["--src", "10.1.0.1", "--dst", "10.1.0.2", "--proto",
                                          "icmp", "--dport", "80"], 2, "--dport"),
        ("trace-icmp-type-with-tcp", base + ["--src", "10.1.0.1", "--dst", "10.1.0.2",
                                             "--proto", "tcp", "--icmp-type", "8"], 2,
         "--icmp-type"),
        ("trace-bad-icmp-name", base + ["--src", "10.1.0.1", "--dst", "10.1.0.2", "--proto",
                                        "icmp", "--icmp-type", "Bogus"], 2, "Bogus"),
        ("trace-bad-port", base + ["--src", "10.1.0.1", "--dst", "10.1.0.2", "--proto", "tcp",
                                   "--dport", "70000"], 2, "70000"),
        ("trace-missing-dport", base + ["--src", "10.1.0.1", "--dst", "10.1.0.2", "--proto",
                                        "tcp"], 2, "--dport"),
        ("trace-missing-src", base + ["--dst", "10.1.0.2", "--proto", "tcp", "--dport", "1"], 2,
         "--src"),
        ("trace-mixed-families", base + ["--src", "10.1.0.1", "--dst", "fd00:1::2", "--proto",
                                         "tcp", "--dport", "1"], 2, "famil"),
        ("trace-icmp-v6-address", base + ["--src", "fd00:1::1", "--dst", "fd00:1::2",
                                          "--proto", "icmp"], 2, "icmpv6"),
        # without --config the trace asks the daemon: none runs at that socket
        ("trace-online-unreachable", ["policy", "trace", "--socket", "nowhere.sock", "--src",
                                      "10.1.0.1", "--dst", "10.1.0.2", "--proto", "tcp",
                                      "--dport", "1"], 1, "nowhere.sock"),
        # the flow is checked before anything is asked
        ("trace-online-bad-flow", ["policy", "trace", "--socket", "nowhere.sock", "--src",
                                   "10.1.0.1", "--dst", "10.1.0.2", "--proto", "tcp"], 2,
         "--dport"),
        ("trace-config-and-socket", base + ["--socket", "x.sock", "--src", "10.1.0.1", "--dst",
                                            "10.1.0.2", "--proto", "tcp", "--dport", "1"], 2,
         "--socket"),
        ("trace-config-not-found", ["policy", "trace", "--config", "nowhere.yaml", "--src",
                                    "10.1.0.1", "--dst", "10.1.0.2", "--proto", "tcp",
                                    "--dport", "1"], 1, "nowhere.yaml"),
        ("trace-config-error-position", ["policy", "trace", "--config", "badcfg/meshgate.yaml",
                                         "--src", "10.1.0.1", "--dst", "10.1.0.2", "--proto",
                                         "tcp", "--dport", "1"], 1,
         "badcfg/meshgate.yaml:9:16: "),
        ("trace-bad-output", base + ["--src", "10.1.0.1", "--dst", "10.1.0.2", "--proto", "tcp",
                                     "--dport", "1", "-o", "yaml"], 2, "yaml"),
    ]
    for name, args, rc, msg in bad:
        r = Run(ctl, args, tmp)
        report(name, [] if r.rc == rc and msg in r.err and r.out == "" else
               ["want exit %d and %r on stderr: %s" % (rc, msg, r.why())])


def main():
    global TAG
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshgatectl", default=os.path.join(ROOT, "build", "app", "meshgatectl",
                                                          "meshgatectl"))
    ap.add_argument("--tag", default="", help="prefix for the check names (san)")
    args = ap.parse_args()
    TAG = args.tag + "/" if args.tag else ""
    ctl = os.path.abspath(args.meshgatectl)
    if not os.access(ctl, os.X_OK):
        print("FAIL: ctl/%sbuild: no meshgatectl at %s" % (TAG, ctl))
        return 1
    tmp = tempfile.mkdtemp(prefix="mg-ctl-")
    try:
        setup(tmp)
        checks(ctl, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("# %d passed, %d failed" % (results["pass"], results["fail"]))
    return 1 if results["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
