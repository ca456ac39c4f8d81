#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""meshgate-replicator's command line, without etcd or Redis: `--check-config`
on good and bad configs and clustermesh directories (exit 0, one line per
cluster and "config OK"; exit 1 with the "file:line:col: message" error;
exit 2 for usage errors), `-V` and `--help`. Every run's stdout, stderr and
exit status are compared exactly.

    replicator_cli_test.py --replicator build/app/meshgate-replicator/meshgate-replicator

Prints PASS/FAIL lines "replicator-cli/<name>"; exits non-zero on failure.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

failures = 0
TAG = ""
BIN = None

PEM = ("-----BEGIN CERTIFICATE-----\n"
       "MIIBszCCAVmgAwIBAgIUUxjXnFzWqzsTGzIo0Kf0L8n2hGkwCgYIKoZIzj0EAwIw\n"
       "-----END CERTIFICATE-----\n")


def result(name, ok, why=""):
    global failures
    if ok:
        print(f"PASS: replicator-cli/{TAG}{name}")
    else:
        failures += 1
        print(f"FAIL: replicator-cli/{TAG}{name}: {why}")
    sys.stdout.flush()


def run(*args, cwd=None):
    p = subprocess.run([BIN, *args], cwd=cwd, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def expect(name, got, rc, out=None, err=None, out_lines=None, err_re=None):
    """@p out / @p err exact; @p out_lines: the same lines in any order
    (readdir's); @p err_re: a regex the whole of stderr must match."""
    grc, gout, gerr = got
    why = []
    if grc != rc:
        why.append(f"exit {grc}, want {rc}")
    if out is not None and gout != out:
        why.append(f"stdout {gout!r}, want {out!r}")
    if out_lines is not None and sorted(gout.splitlines()) != sorted(out_lines):
        why.append(f"stdout {gout!r}, want the lines {out_lines!r}")
    if err is not None and gerr != err:
        why.append(f"stderr {gerr!r}, want {err!r}")
    if err_re is not None and not re.fullmatch(err_re, gerr, re.S):
        why.append(f"stderr {gerr!r} does not match {err_re!r}")
    result(name, not why, "; ".join(why))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def config(path, mesh, extra=""):
    write(path, "version: 1\n"
                "cluster: {name: site, id: 1}\n"
                f"clustermesh: {{config_dir: {mesh}}}\n"
                "redis: redis://127.0.0.1:6379/0\n" + extra)


def mesh_dir(d):
    """A directory as Cilium's clustermesh secret mounts it, with the
    files the daemon does not read: certificates, its own cluster, a name
    that is not a cluster name, hidden files."""
    os.makedirs(d)
    write(os.path.join(d, "cluster-b"),
          "endpoints:\n- https://clustermesh-apiserver.cluster-b.example:2379\n"
          "trusted-ca-file: cluster-b.etcd-client-ca.crt\n"
          "cert-file: cluster-b.etcd-client.crt\n"
          "key-file: cluster-b.etcd-client.key\n")
    write(os.path.join(d, "cluster-c"),
          "endpoints: ['http://127.0.0.1:32379', 'http://127.0.0.2']\n"
          "dial-timeout: 5s\n")
    for n in ("cluster-b.etcd-client-ca.crt", "cluster-b.etcd-client.crt",
              "cluster-b.etcd-client.key"):
        write(os.path.join(d, n), PEM)
    write(os.path.join(d, "site"), "endpoints: ['http://127.0.0.1:1']\n")
    write(os.path.join(d, "cluster-x.yaml"), "endpoints: ['http://127.0.0.1:1']\n")
    write(os.path.join(d, ".hidden"), "endpoints: 5\n")
    write(os.path.join(d, "empty"), "")
    os.makedirs(os.path.join(d, "..data"))


def main():
    global TAG, BIN
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicator", required=True)
    ap.add_argument("--tag", default="")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    TAG = a.tag + "/" if a.tag else ""
    BIN = os.path.abspath(a.replicator)
    tmp = tempfile.mkdtemp(prefix="mg-repcli.")
    try:
        cases(tmp)
    finally:
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


def cases(tmp):
    mesh = os.path.join(tmp, "mesh")
    mesh_dir(mesh)
    good = os.path.join(tmp, "good.yaml")
    config(good, mesh)
    clusters = ["cluster cluster-b: https://clustermesh-apiserver.cluster-b.example:2379 "
                "(1 endpoint)",
                "cluster cluster-c: http://127.0.0.1:32379 (2 endpoints)",
                f"2 clusters in {mesh}"]
    expect("good", run("-c", good, "--check-config"), 0,
           out_lines=clusters + ["config OK"], err="")
    # options in any order, the long form of -c
    expect("good-long", run("--check-config", "--config", good), 0,
           out_lines=clusters + ["config OK"], err="")
    # the directory relative to the config's folder, not the working directory
    rel = os.path.join(tmp, "rel.yaml")
    config(rel, "mesh", "filter: {namespaces: {include: [a], exclude: [kube-system]}}\n")
    expect("relative-dir", run("-c", rel, "--check-config", cwd="/"), 0,
           out_lines=[c.replace(mesh, os.path.join(tmp, "mesh")) for c in clusters]
           + ["config OK"], err="")
    # the shipped file with its directory swapped for ours
    with open(os.path.join(ROOT, "conf", "meshgate-replicator.yaml")) as f:
        shipped = f.read().replace("/var/lib/cilium/clustermesh", mesh)
    write(os.path.join(tmp, "shipped.yaml"), shipped)
    expect("shipped", run("-c", os.path.join(tmp, "shipped.yaml"), "--check-config"), 0,
           out_lines=clusters + ["config OK"], err="")

    empty = os.path.join(tmp, "empty-mesh")
    os.makedirs(empty)
    cfg = os.path.join(tmp, "empty.yaml")
    config(cfg, empty)
    expect("empty-dir", run("-c", cfg, "--check-config"), 0,
           out=f"0 clusters in {empty}\nconfig OK\n", err="")
    one = os.path.join(tmp, "one-mesh")
    os.makedirs(one)
    write(os.path.join(one, "cluster-d"), "endpoints: ['http://[::1]:2379']\n")
    cfg = os.path.join(tmp, "one.yaml")
    config(cfg, one)
    expect("one-cluster", run("-c", cfg, "--check-config"), 0,
           out=f"cluster cluster-d: http://[::1]:2379 (1 endpoint)\n1 cluster in {one}\n"
               "config OK\n", err="")

    # ---- errors: exit 1, the message on stderr, no "config OK" ----
    bad = os.path.join(tmp, "bad.yaml")
    config(bad, mesh, "etcd: {qps: 5}\nmetrics: {port: 9471}\n")
    expect("unknown-key", run("-c", bad, "--check-config"), 1, out="",
           err=f"{bad}:6:11: metrics: unknown key 'port'\n")
    config(bad, mesh, "lease: {ttl: 1}\n")
    expect("out-of-range", run("-c", bad, "--check-config"), 1, out="",
           err=f"{bad}:5:14: lease.ttl: 1 is out of range [3, 3600]\n")
    write(bad, "version: 1\ncluster: {name: site, id: 1}\n")
    expect("missing-key", run("-c", bad, "--check-config"), 1, out="",
           err=f"{bad}:1:1: missing key 'clustermesh.config_dir' (the clusters' etcd "
               "configs)\n")
    write(bad, "version: 1\ncluster: {name: site\n")
    expect("yaml-syntax", run("-c", bad, "--check-config"), 1, out="",
           err_re=re.escape(bad) + r":3:1: YAML syntax error: .*\n")
    absent = os.path.join(tmp, "absent.yaml")
    expect("no-file", run("-c", absent, "--check-config"), 1, out="",
           err=f"{absent}: No such file or directory\n")
    nodir = os.path.join(tmp, "no-such-dir")
    config(bad, nodir)
    expect("no-dir", run("-c", bad, "--check-config"), 1, out="",
           err=f"clustermesh.config_dir: {nodir}: No such file or directory\n")
    # a broken cluster file: the others still listed, the error with its position
    broken = os.path.join(tmp, "broken-mesh")
    shutil.copytree(mesh, broken)
    write(os.path.join(broken, "cluster-e"), "endpoints:\n- https://e.example:2379\n")
    config(bad, broken)
    expect("cluster-no-ca", run("-c", bad, "--check-config"), 1,
           out_lines=[c.replace(mesh, broken) for c in clusters],
           err=f"{broken}/cluster-e:2:1: an https endpoint needs trusted-ca-file (the CA of "
               "the clustermesh-apiserver's certificate)\n")
    write(os.path.join(broken, "cluster-e"),
          "endpoints: ['http://e:2379']\nusername: root\npassword: x\n")
    expect("cluster-username", run("-c", bad, "--check-config"), 1,
           out_lines=[c.replace(mesh, broken) for c in clusters],
           err=f"{broken}/cluster-e:2:11: username: not supported by meshgate-replicator "
               "(client certificates only, the server always verified)\n")
    write(os.path.join(broken, "cluster-e"), "endpoints: ['e.example:2379']\n")
    expect("cluster-bad-url", run("-c", bad, "--check-config"), 1,
           out_lines=[c.replace(mesh, broken) for c in clusters],
           err=f"{broken}/cluster-e:1:13: endpoints: 'e.example:2379' is not an http:// or "
               "https:// URL\n")
    # the filter's policies are loaded too
    config(bad, mesh, "filter: {policy: {sources: [{cluster: site, path: nope/}]}}\n")
    got = run("-c", bad, "--check-config")
    expect("filter-policy-missing", got, 1, out_lines=clusters,
           err=f"{tmp}/nope/: No such file or directory\n")

    # ---- usage: exit 2, the usage on stderr ----
    usage_re = r"usage: meshgate-replicator -c FILE .*--check-config.*"
    expect("usage-no-config", run("--check-config"), 2, out="", err_re=usage_re)
    expect("usage-extra-arg", run("-c", good, "--check-config", "extra"), 2, out="",
           err_re=usage_re)
    expect("usage-unknown-option", run("-c", good, "--frobnicate"), 2, out="",
           err_re=r".*unrecognized option.*" + usage_re)
    expect("usage-c-without-file", run("-c"), 2, out="",
           err_re=r".*requires an argument.*" + usage_re)

    # ---- -V, --help: exit 0 on stdout ----
    with open(os.path.join(ROOT, "meson.build")) as f:
        version = re.search(r"version: '([^']+)'", f.read()).group(1)
    expect("version", run("-V"), 0, out=f"meshgate-replicator {version}\n", err="")
    expect("version-long", run("--version"), 0, out=f"meshgate-replicator {version}\n",
           err="")
    got = run("--help")
    expect("help", got, 0, err="")
    for opt in ("-c, --config FILE", "--check-config", "-v, --verbose", "-V, --version",
                "-h, --help"):
        result(f"help-mentions{opt.split(',')[0].strip()}", opt in got[1],
               f"--help does not mention {opt!r}: {got[1]!r}")
    expect("help-short", run("-h"), 0, out=got[1], err="")


if __name__ == "__main__":
    sys.exit(main())
