#!/usr/bin/env python3
"""Policy conformance suite: Cilium policy semantics, case by case.

Each file in cases/ holds cases of one topic. A case declares the inputs a
gateway reads (config settings, policy sources per cluster, identities, pods
with addresses and named ports, ipcache prefix entries) and flows with the
verdict Cilium gives them, and, where it is meaningful, what decided each
direction. The expectations come from the semantics (docs/policy.md and
Cilium's documentation), never from what the implementation prints.

The runner materialises each case as the files a daemon reads (meshgate.yaml,
policy files, CiliumIdentity and CiliumEndpoint manifests, ipcache.entries),
runs `meshgatectl policy trace --config ... --flows FILE -o json` once per
case, and compares. A case passes only if every flow matches. It prints
"PASS: conformance/<file>/<case>" or "FAIL: conformance/<file>/<case>: why".

Case format (YAML):

  defaults:            # merged under every case of the file (optional)
    config: {...}
    pods: [...]
  cases:
    - name: short-name
      doc: what it checks (and the Cilium reference when it is subtle)
      config:          # all optional
        enforcement: default|always|never
        default_local_cluster: true|false
        split_world: true|false
        cluster: cluster-a          # the gateway's cluster (id 1)
      policies:        # policy sources
        - cluster: cluster-a        # optional, default the gateway's cluster
          yaml: |                   # inline documents, or
            apiVersion: cilium.io/v2 ...
          file: fixtures/x.yaml     # a file relative to tests/conformance/
      pods:            # pod identities (labels get namespace, cluster,
                       # service account added) with their addresses
        - {name: web, id: 65600, ns: prod, cluster: cluster-a,
           labels: {app: web}, ips: [10.1.0.1, "fd00:1::1"],
           named_ports: [{name: http, port: 8080, protocol: TCP}]}
      identities:      # raw identities: any labels
        - {id: 65700, labels: ["k8s:app=x", "reserved:foo"]}
      ipcache:         # prefix entries
        - {prefix: 10.20.0.0/16, identity: 16777300}
      load_error: "substring"       # the config must fail to load with
                                    # file:line:column and this message
      validate:        # `meshgatectl policy validate` on every source
        errors: N
        warnings: N
      flows:
        - src: "@web" | 10.1.0.1 | id:65600
          dst: ...
          proto: tcp (default) | udp | sctp | icmp | icmpv6 | N
          dport: 80    # tcp/udp/sctp
          icmp: 8      # icmp/icmpv6 type (number or name)
          verdict: allowed | denied
          denied_by: egress | ingress       # optional
          src_id: N, dst_id: N              # optional: the resolved identities
          egress: EXP                        # optional
          ingress: EXP                       # optional

EXP is "open" (no rule selects the subject in that direction, and no rule
allows the flow), "selected-open" (rules select the subject in that direction,
all with enableDefaultDeny false for it, and none allows the flow: still
open), "default-deny", "allowed", "denied", "allowed-open" (allowed by a rule
while the direction is not default deny), or
"POLICY:SECTION[:RULE[:ENTRY]]" naming the deciding rule (RULE is the index
in spec/specs, ENTRY the index in the section's list).
"""

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

CLUSTER_IDS = {"cluster-a": 1, "cluster-b": 2, "cluster-c": 3}
NS_KEY = "io.kubernetes.pod.namespace"
CLUSTER_KEY = "io.cilium.k8s.policy.cluster"
SA_KEY = "io.cilium.k8s.policy.serviceaccount"


class CaseError(Exception):
    """A malformed case (a bug in the case, not in meshgate)."""


def merge(defaults, case):
    """The case with the file's defaults under it (lists are concatenated)."""
    out = copy.deepcopy(defaults)
    for k, v in case.items():
        if k == "config" and isinstance(out.get(k), dict):
            out[k] = dict(out[k], **v)
        elif k in ("pods", "identities", "ipcache", "policies") and k in out:
            out[k] = out[k] + v
        else:
            out[k] = v
    return out


def pod_labels(p, cfg_cluster):
    labels = {}
    for k, v in (p.get("labels") or {}).items():
        key = k if ":" in k else "k8s:" + k
        labels[key] = "" if v is None else str(v)
    if "ns" in p or "namespace" in p:
        labels["k8s:" + NS_KEY] = p.get("ns", p.get("namespace"))
    cl = p.get("cluster", cfg_cluster)
    if cl is not None:
        labels["k8s:" + CLUSTER_KEY] = cl
    if p.get("serviceaccount", "default") is not None:
        labels["k8s:" + SA_KEY] = p.get("serviceaccount", "default")
    return labels


def raw_labels(ident):
    labels = {}
    for s in ident.get("labels") or []:
        k, _, v = s.partition("=")
        if ":" not in k:
            k = "unspec:" + k
        labels[k] = v
    return labels


def materialise(case, tmp):
    """Write the files of @case into @tmp; return (config path, sources, pods)."""
    cfg = case.get("config") or {}
    cluster = cfg.get("cluster", "cluster-a")
    if cluster not in CLUSTER_IDS:
        raise CaseError("unknown gateway cluster %r" % cluster)
    sources = []
    for i, src in enumerate(case.get("policies") or []):
        scl = src.get("cluster", cluster)
        if "yaml" in src:
            path = os.path.join(tmp, "policies-%02d-%s.yaml" % (i, scl))
            with open(path, "w") as f:
                f.write(src["yaml"])
        elif "file" in src:
            path = os.path.join(HERE, src["file"])
        else:
            raise CaseError("policy source %d: needs yaml or file" % i)
        sources.append({"cluster": scl, "path": path})

    idents = []
    endpoints = []
    pods = {}
    for p in case.get("pods") or []:
        if "id" not in p:
            raise CaseError("pod without id: %r" % p)
        # Two pods of one identity (same id, same labels): one CiliumIdentity.
        if (int(p["id"]), pod_labels(p, cluster)) not in idents:
            idents.append((int(p["id"]), pod_labels(p, cluster)))
        if p.get("name"):
            pods[p["name"]] = p
        ips = p.get("ips") or []
        if ips or p.get("named_ports"):
            addressing = []
            for ip in ips:
                addressing.append({"ipv6" if ":" in ip else "ipv4": ip})
            status = {
                "identity": {"id": int(p["id"])},
                "networking": {"addressing": addressing},
            }
            if p.get("named_ports"):
                status["named-ports"] = [
                    {"name": n["name"], "port": int(n["port"]),
                     "protocol": n.get("protocol", "TCP")}
                    for n in p["named_ports"]]
            endpoints.append({
                "apiVersion": "cilium.io/v2",
                "kind": "CiliumEndpoint",
                "metadata": {"name": p.get("name", "pod-%s" % p["id"]),
                             "namespace": p.get("ns", "default")},
                "status": status,
            })
    for ident in case.get("identities") or []:
        idents.append((int(ident["id"]), raw_labels(ident)))

    conf = {
        "version": 1,
        "eal": ["--no-huge", "--no-pci", "--vdev=net_null0", "--vdev=net_null1"],
        "datapath": {"ports": [
            {"name": "inside", "device": "net_null0", "peer": "outside"},
            {"name": "outside", "device": "net_null1", "peer": "inside"}]},
        "cluster": {"name": cluster, "id": CLUSTER_IDS[cluster]},
        "policy": {
            "enforcement": cfg.get("enforcement", "default"),
            "default_local_cluster": cfg.get("default_local_cluster", True),
            "sources": sources,
        },
        "ipcache": {"split_world": cfg.get("split_world", True)},
    }
    if idents:
        docs = [{"apiVersion": "cilium.io/v2", "kind": "CiliumIdentity",
                 "metadata": {"name": str(i)}, "security-labels": labels}
                for i, labels in idents]
        with open(os.path.join(tmp, "identities.yaml"), "w") as f:
            yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": docs}, f)
        conf["identities"] = {"files": ["identities.yaml"]}
    if endpoints:
        with open(os.path.join(tmp, "endpoints.yaml"), "w") as f:
            yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": endpoints}, f)
        conf["ipcache"]["files"] = ["endpoints.yaml"]
    if case.get("ipcache"):
        conf["ipcache"]["entries"] = [
            {"prefix": e["prefix"], "identity": int(e["identity"])}
            for e in case["ipcache"]]
    path = os.path.join(tmp, "meshgate.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(conf, f, sort_keys=False)
    return path, sources, pods


def flow_end(v, pods):
    v = str(v)
    if v.startswith("@"):
        p = pods.get(v[1:])
        if p is None:
            raise CaseError("no pod named %r" % v[1:])
        ips = p.get("ips") or []
        return ips[0] if ips else "id:%d" % int(p["id"])
    return v


def flow_args(fl, pods):
    proto = str(fl.get("proto", "tcp"))
    args = ["--src", flow_end(fl["src"], pods), "--dst", flow_end(fl["dst"], pods),
            "--proto", proto]
    if "dport" in fl:
        args += ["--dport", str(fl["dport"])]
    if "icmp" in fl:
        args += ["--icmp-type", str(fl["icmp"])]
    return args


def flow_name(fl):
    s = "%s -> %s %s" % (fl["src"], fl["dst"], fl.get("proto", "tcp"))
    if "dport" in fl:
        s += "/%s" % fl["dport"]
    if "icmp" in fl:
        s += " type %s" % fl["icmp"]
    return s


def describe(got):
    """One decision of the trace, in the words of the expectations."""
    rule = got.get("rule")
    return "%s(%s%s%s)" % (got["reason"], "" if rule is None else
                           "%s:%s:%s:%s " % (rule["name"], rule["section"],
                                             rule["rule_index"], rule["entry_index"]),
                           "enforced" if got["enforced"] else "not enforced",
                           ", selected" if got.get("selected") else "")


def check_dir(exp, got, where):
    """Differences between an expectation EXP and a decision of the trace."""
    exp = str(exp)
    rule = got.get("rule")
    desc = describe(got)
    if exp == "open":
        ok = got["allowed"] and not got["enforced"] and rule is None and \
            not got.get("selected", False)
    elif exp == "selected-open":
        ok = got["allowed"] and not got["enforced"] and rule is None and \
            got.get("selected") is True
    elif exp == "default-deny":
        ok = got["reason"] == "default-deny" and not got["allowed"]
    elif exp == "allowed":
        ok = got["allowed"]
    elif exp == "denied":
        ok = not got["allowed"]
    elif exp == "allowed-open":
        ok = got["allowed"] and not got["enforced"]
    else:
        parts = exp.split(":")
        if len(parts) < 2 or len(parts) > 4:
            raise CaseError("bad expectation %r" % exp)
        deny = parts[1].endswith("Deny")
        ok = (rule is not None and rule["name"] == parts[0] and rule["section"] == parts[1]
              and got["allowed"] == (not deny) and got["by_deny_rule"] == deny)
        if ok and len(parts) > 2:
            ok = rule["rule_index"] == int(parts[2])
        if ok and len(parts) > 3:
            ok = rule["entry_index"] == int(parts[3])
    return [] if ok else ["%s: expected %s, got %s" % (where, exp, desc)]


def run_validate(ctl, case, sources):
    exp = case["validate"]
    errs = warns = 0
    lines = []
    for s in sources:
        r = subprocess.run([ctl, "policy", "validate", "--cluster", s["cluster"],
                            s["path"], "-o", "json"], capture_output=True, text=True,
                           timeout=30)
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            return ["validate: not JSON (exit %d): %s %s" % (r.returncode, r.stdout[:200],
                                                             r.stderr[:200])]
        errs += doc["errors"]
        warns += doc["warnings"]
        lines += ["%s:%s:%s: %s%s" % (os.path.basename(p["file"]), p["line"], p["column"],
                                       "warning: " if p["severity"] == "warning" else "",
                                       p["message"]) for p in doc["problems"]]
        if (doc["errors"] > 0) != (r.returncode != 0):
            return ["validate: exit status %d with %d errors" % (r.returncode, doc["errors"])]
    diffs = []
    if "errors" in exp and exp["errors"] != errs:
        diffs.append("validate: expected %d errors, got %d" % (exp["errors"], errs))
    if "warnings" in exp and exp["warnings"] != warns:
        diffs.append("validate: expected %d warnings, got %d" % (exp["warnings"], warns))
    if diffs and lines:
        diffs.append("problems: " + " | ".join(lines))
    return diffs


def run_case(ctl, case, keep):
    tmp = tempfile.mkdtemp(prefix="mg-conf-")
    try:
        cfg, sources, pods = materialise(case, tmp)
        diffs = []
        if "validate" in case:
            diffs += run_validate(ctl, case, sources)
        flows = case.get("flows") or []
        if "load_error" in case:
            with open(os.path.join(tmp, "flows"), "w") as f:
                f.write("--src id:1 --dst id:2 --proto udp --dport 1\n")
            r = subprocess.run([ctl, "policy", "trace", "--config", cfg, "--flows",
                                os.path.join(tmp, "flows"), "-o", "json"],
                               capture_output=True, text=True, timeout=30)
            want = case["load_error"]
            if r.returncode != 1 or want not in r.stderr:
                diffs.append("expected the config to fail to load with %r; exit %d, %s"
                             % (want, r.returncode, r.stderr.strip()[:300]))
            elif not re.search(r":\d+:\d+: ", r.stderr):
                diffs.append("load error without file:line:column: %s" % r.stderr.strip())
            return diffs
        if not flows:
            if "validate" not in case:
                raise CaseError("case without flows")
            return diffs
        with open(os.path.join(tmp, "flows"), "w") as f:
            for fl in flows:
                f.write(" ".join(flow_args(fl, pods)) + "\n")
        r = subprocess.run([ctl, "policy", "trace", "--config", cfg, "--flows",
                            os.path.join(tmp, "flows"), "-o", "json"],
                           capture_output=True, text=True, timeout=60)
        out = [l for l in r.stdout.splitlines() if l.strip()]
        if r.returncode != 0:
            diffs.append("meshgatectl exit %d: %s" % (r.returncode, r.stderr.strip()[:500]))
        if len(out) != len(flows):
            if not diffs:
                diffs.append("%d flows, %d results" % (len(flows), len(out)))
            return diffs
        for fl, line in zip(flows, out):
            got = json.loads(line)
            where = flow_name(fl)
            if fl.get("verdict") not in ("allowed", "denied"):
                raise CaseError("%s: verdict must be allowed or denied" % where)
            if got["verdict"] != fl["verdict"]:
                diffs.append("%s: expected %s, got %s (egress %s, ingress %s)" % (
                    where, fl["verdict"], got["verdict"], describe(got["egress"]),
                    describe(got["ingress"])))
                continue
            for k, side in (("src_id", "src"), ("dst_id", "dst")):
                if k in fl and got[side]["identity"] != int(fl[k]):
                    diffs.append("%s: expected %s identity %s, got %s" % (
                        where, side, fl[k], got[side]["identity"]))
            if "denied_by" in fl and got["denied_by"] != fl["denied_by"]:
                diffs.append("%s: expected denied by %s, got %s" % (
                    where, fl["denied_by"], got["denied_by"]))
            for d in ("egress", "ingress"):
                if d in fl:
                    diffs += check_dir(fl[d], got[d], "%s: %s" % (where, d))
        return diffs
    finally:
        if keep:
            print("# kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--meshgatectl", default=os.path.join(ROOT, "build", "app",
                                                          "meshgatectl", "meshgatectl"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders")
    ap.add_argument("--list", action="store_true", help="list the cases")
    ap.add_argument("filter", nargs="*", help="run only cases whose name contains one")
    args = ap.parse_args()

    files = sorted(f for f in os.listdir(os.path.join(HERE, "cases"))
                   if f.endswith((".yaml", ".yml")))
    npass = nfail = 0
    seen = set()
    for fn in files:
        topic = fn.rsplit(".", 1)[0]
        try:
            with open(os.path.join(HERE, "cases", fn)) as f:
                doc = yaml.safe_load(f)
        except (OSError, yaml.YAMLError) as e:
            print("FAIL: conformance/%s: cannot read the case file: %s" % (
                topic, str(e).replace("\n", " ")))
            nfail += 1
            continue
        defaults = doc.get("defaults") or {}
        for raw in doc.get("cases") or []:
            name = "conformance/%s/%s" % (topic, raw.get("name", "?"))
            if name in seen:
                print("FAIL: %s: duplicate case name" % name)
                nfail += 1
                continue
            seen.add(name)
            if args.filter and not any(s in name for s in args.filter):
                continue
            if args.list:
                print(name)
                continue
            try:
                diffs = run_case(args.meshgatectl, merge(defaults, raw), args.keep)
            except CaseError as e:
                diffs = ["case error: %s" % e]
            except (subprocess.TimeoutExpired, ValueError, KeyError) as e:
                diffs = ["%s: %s" % (type(e).__name__, e)]
            if diffs:
                nfail += 1
                print("FAIL: %s: %s" % (name, "; ".join(diffs)))
            else:
                npass += 1
                print("PASS: %s" % name)
    if not args.list:
        print("# %d passed, %d failed" % (npass, nfail))
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
