"""Helpers for meshgate's pcap integration tests (pcap_test.py).

A case is a set of frames per port, each with what the gateway must do with
it (forward it as it is, or drop it for one named reason), plus the policies
and settings to run with. Connection tracking makes the order of frames
across the two ports matter (a reply must come after its request): a case
built with sequence() lists its frames in one global order and runs with
datapath.burst 1, so the daemon, which polls inside then outside once per
loop, sees them in exactly that order (filler non-IP frames keep the two
ports in step). run_case() writes the input pcaps, the config and
the policies into a fresh folder, runs the real daemon on net_pcap ports
until it has been idle for a while, then checks, byte for byte and in
order, which frames left on which port, and every counter of the stats
JSON against what the expectations imply. Nothing here knows how the
daemon works inside; the expectations come from the policy semantics alone.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import tempfile

from scapy.utils import RawPcapReader, wrpcap

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(HERE, "fixtures")

# What may be expected of a frame. Forwarded: "allow" (the policy allowed
# it: a new flow, or ICMP that opens none), "ct" (passed by connection
# tracking without a policy lookup: a reply, or more of a tracked flow),
# "related" (an ICMP error quoting a tracked flow), "frag" (a non-first
# fragment following its first), "arp", "nd" and "pass_non_ip" (other
# ethertypes, non_ip: forward). "egress" and "ingress" are policy denials;
# anything else is a drop-reason label.
FORWARDED = ("allow", "ct", "related", "frag", "arp", "nd", "pass_non_ip")
DENIALS = {"egress": "policy_denied_egress", "ingress": "policy_denied_ingress"}

# A daemon run that takes longer than this has hung (ASan included).
DAEMON_TIMEOUT = 90


def drop_labels():
    """Every drop-reason label of lib/common/mg_drop.h, "none" excluded."""
    with open(os.path.join(ROOT, "lib", "common", "mg_drop.h")) as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    labels = re.findall(r'X\(\s*\w+\s*,\s*"([a-z0-9_]+)"', text)
    return [label for label in labels if label != "none"]


class X:
    """One input frame and what the gateway must do with it."""

    def __init__(self, frame, expect, note=""):
        if not isinstance(frame, (bytes, bytearray)):
            frame = bytes(frame)
        self.frame = bytes(frame)
        self.expect = expect
        self.note = note

    @property
    def forwarded(self):
        return self.expect in FORWARDED

    @property
    def reason(self):
        """Drop-reason label, or None when forwarded."""
        if self.forwarded:
            return None
        return DENIALS.get(self.expect, self.expect)


class Case:
    """Frames arriving on "inside" and "outside", policies and settings."""

    def __init__(self, name, inside=(), outside=(), policies=None, enforcement="default",
                 non_ip="forward", lcores="0-1", doc="", burst=None, conntrack=None,
                 ct_expect=None, adjust=None):
        self.name = name
        self.inside = list(inside)
        self.outside = list(outside)
        self.policies = policies or {}
        self.enforcement = enforcement
        self.non_ip = non_ip
        self.lcores = lcores
        self.doc = doc
        self.burst = burst  # datapath.burst; None: the default
        self.conntrack = conntrack  # the conntrack: section's body (YAML text), or None
        # Exact conntrack.* counters to check beyond those the expectations
        # imply (tracked, related, fragments_passed, full), e.g. {"entries": 2}.
        self.ct_expect = dict(ct_expect or {})
        # Corrections to derived counters: {"verdicts.allowed": 1} adds one.
        self.adjust = dict(adjust or {})


def sequence(name, steps, **kw):
    """A Case whose frames arrive in the global order of @steps, a list of
    ("in" | "out", X): inside's frame k is read, then outside's frame k, and
    so on (datapath.burst 1), with non-IP filler frames where a port has to
    wait its turn. The fillers are forwarded (non_ip: forward) and counted
    like any frame."""
    inside, outside = [], []
    serial = [0]

    def filler():
        serial[0] += 1
        frame = (b"\x02\x00\x00\xff\xff\x01" + b"\x02\x00\x00\xff\xff\x02" +
                 b"\x88\xb5" + serial[0].to_bytes(4, "big") + bytes(42))
        return X(frame, "pass_non_ip", "filler")

    for port, x in steps:
        if port == "in":
            if len(inside) > len(outside):  # inside's slot is taken: outside waits
                outside.append(filler())
            inside.append(x)
        elif port == "out":
            while len(outside) < len(inside) - 1:
                outside.append(filler())
            if len(outside) == len(inside):  # outside goes second in a slot
                inside.append(filler())
            outside.append(x)
        else:
            raise ValueError("port %r" % (port,))
    kw.setdefault("burst", 1)
    if kw["burst"] != 1:
        raise ValueError("sequence() needs burst 1")
    return Case(name, inside=inside, outside=outside, **kw)


def empty_pcap(path):
    """A valid pcap with no packets: the 24-byte header alone."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))


def write_pcap(path, frames):
    if frames:
        wrpcap(path, [bytes(x) for x in frames], linktype=1)
    else:
        empty_pcap(path)


def read_pcap(path):
    """Raw frames of a pcap, in file order."""
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    if os.path.getsize(path) == 0:
        return []
    return [bytes(data) for data, _meta in RawPcapReader(path)]


def yaml_str(s):
    return json.dumps(s)


def write_config(workdir, prefix, case, identities=None, endpoints=None, telemetry=False,
                 metrics=None):
    """meshgate.yaml for @case in @workdir, pcap files beside it. Returns its path.
    @telemetry keeps EAL telemetry on (its socket is
    /var/run/dpdk/<prefix>/dpdk_telemetry.v2); by default it is disabled.
    @metrics: more keys of the metrics section ({"request_timeout": 1})."""
    p = lambda n: os.path.join(workdir, n)  # noqa: E731
    eal = ["-l", case.lcores, "--no-huge", "-m", "512", "--no-pci"]
    if not telemetry:
        eal.append("--no-telemetry")
    eal += ["--file-prefix", prefix,
           "--vdev=net_pcap0,rx_pcap=%s,tx_pcap=%s" % (p("inside-in.pcap"), p("inside-out.pcap")),
           "--vdev=net_pcap1,rx_pcap=%s,tx_pcap=%s" % (p("outside-in.pcap"),
                                                        p("outside-out.pcap"))]
    os.makedirs(p("policies"), exist_ok=True)
    for fname, text in case.policies.items():
        with open(os.path.join(p("policies"), fname), "w") as f:
            f.write(text)
    identities = identities or os.path.join(FIXTURES, "identities.yaml")
    endpoints = endpoints or os.path.join(FIXTURES, "endpoints.yaml")
    text = """\
version: 1
eal: [%s]
datapath:
  mode: wire
  ports:
    - {name: inside, device: net_pcap0, peer: outside}
    - {name: outside, device: net_pcap1, peer: inside}
  non_ip: %s
%scluster: {name: cluster-a, id: 1}
policy:
  enforcement: %s
  default_local_cluster: true
  sources:
    - {cluster: cluster-a, path: policies/}
identities:
  files: [%s]
ipcache:
  files: [%s]
""" % (", ".join(yaml_str(a) for a in eal), case.non_ip,
       "  burst: %d\n" % case.burst if case.burst else "", case.enforcement,
       yaml_str(identities), yaml_str(endpoints))
    # Its own control socket and any free metrics port: several daemons
    # may run at once, and none may take the production defaults.
    text += "control:\n  socket: %s\nmetrics:\n  listen: 127.0.0.1:0\n" % yaml_str(
        p("meshgate.sock"))
    for key, value in (metrics or {}).items():
        text += "  %s: %s\n" % (key, json.dumps(value))
    if case.conntrack is not None:
        text += "conntrack:\n" + "".join("  " + line + "\n"
                                         for line in case.conntrack.strip("\n").split("\n"))
    path = p("meshgate.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def cleanup_runtime_dir(prefix):
    """EAL leaves /var/run/dpdk/<prefix> behind; the prefix is ours alone."""
    for base in ("/var/run/dpdk", "/run/dpdk"):
        d = os.path.join(base, prefix)
        if os.path.isdir(d):
            shutil.rmtree(d, ignore_errors=True)


class Result:
    def __init__(self):
        self.rc = None
        self.stdout = ""
        self.stderr = ""
        self.stats = None
        self.out = {}  # port name -> list of frames transmitted on it
        self.error = None  # why the run itself failed


def run_daemon(meshgate, case, prefix, keep=False):
    """Run the daemon over @case's frames. Returns a Result."""
    res = Result()
    workdir = tempfile.mkdtemp(prefix="mgpcap-%s-" % case.name)
    try:
        write_pcap(os.path.join(workdir, "inside-in.pcap"), [x.frame for x in case.inside])
        write_pcap(os.path.join(workdir, "outside-in.pcap"), [x.frame for x in case.outside])
        cfg = write_config(workdir, prefix, case)
        stats = os.path.join(workdir, "stats.json")
        cmd = [meshgate, "-c", cfg, "--idle-exit", "500", "--stats-file", stats]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, errors="replace", timeout=DAEMON_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            res.error = "daemon still running after %d s: %s" % (DAEMON_TIMEOUT, " ".join(cmd))
            res.stderr = (e.stderr or b"").decode(errors="replace") if isinstance(
                e.stderr, bytes) else (e.stderr or "")
            return res
        res.rc, res.stdout, res.stderr = proc.returncode, proc.stdout, proc.stderr
        if proc.returncode != 0:
            res.error = "daemon exit status %d: %s" % (proc.returncode, " ".join(cmd))
            return res
        try:
            with open(stats) as f:
                res.stats = json.load(f)
        except (OSError, ValueError) as e:
            res.error = "stats file %s: %s" % (stats, e)
            return res
        try:
            res.out["inside"] = read_pcap(os.path.join(workdir, "inside-out.pcap"))
            res.out["outside"] = read_pcap(os.path.join(workdir, "outside-out.pcap"))
        except Exception as e:  # a broken pcap is a failure, whatever its kind
            res.error = "reading the output pcaps: %r" % (e,)
        return res
    finally:
        cleanup_runtime_dir(prefix)
        if keep:
            print("  (kept %s)" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def expected_stats(case):
    """The counters @case's expectations imply."""
    ports = {}
    for name, arrivals, departures in (("inside", case.inside, case.outside),
                                       ("outside", case.outside, case.inside)):
        sent = [x for x in departures if x.forwarded]
        ports[name] = {
            "rx_packets": len(arrivals),
            "rx_bytes": sum(len(x.frame) for x in arrivals),
            "tx_packets": len(sent),
            "tx_bytes": sum(len(x.frame) for x in sent),
            "dropped": sum(1 for x in arrivals if not x.forwarded),
        }
    frames = case.inside + case.outside
    drops = {label: 0 for label in drop_labels()}
    for x in frames:
        if not x.forwarded:
            drops[x.reason] = drops.get(x.reason, 0) + 1
    count = lambda e: sum(1 for x in frames if x.expect == e)  # noqa: E731
    verdicts = {"allowed": count("allow"), "denied_egress": count("egress"),
                "denied_ingress": count("ingress")}
    totals = {
        "rx": len(frames),
        "tx": sum(1 for x in frames if x.forwarded),
        "allowed": verdicts["allowed"],
        "denied": verdicts["denied_egress"] + verdicts["denied_ingress"],
        "dropped": sum(1 for x in frames if not x.forwarded),
        "arp": count("arp"),
        "nd": count("nd"),
        "non_ip": count("pass_non_ip"),
    }
    conntrack = {"tracked": count("ct"), "related": count("related"),
                 "fragments_passed": count("frag"), "full": drops.get("ct_table_full", 0)}
    conntrack.update(case.ct_expect)
    want = {"ports": ports, "totals": totals, "drops": drops, "verdicts": verdicts,
            "conntrack": conntrack, "reloads": {"ok": 0, "failed": 0}}
    for path, delta in case.adjust.items():
        section, key = path.split(".")
        want[section][key] += delta
    return want


def describe(frame):
    """One-line summary of a frame for failure messages."""
    try:
        from scapy.layers.l2 import Ether
        s = Ether(frame).summary()
    except Exception:
        s = "?"
    return "%d bytes %s [%s...]" % (len(frame), s, frame[:24].hex())


def compare_frames(port, expected, got):
    """Errors, if what left @port differs from @expected (order matters)."""
    errs = []
    if expected == got:
        return errs
    errs.append("port %s: expected %d frames out, got %d" % (port, len(expected), len(got)))
    for i in range(max(len(expected), len(got))):
        e = expected[i] if i < len(expected) else None
        g = got[i] if i < len(got) else None
        if e == g:
            continue
        if e is None:
            errs.append("  #%d unexpected: %s" % (i, describe(g)))
        elif g is None:
            errs.append("  #%d missing: %s" % (i, describe(e)))
        else:
            diff = next((j for j in range(min(len(e), len(g))) if e[j] != g[j]),
                        min(len(e), len(g)))
            errs.append("  #%d differs at byte %d: expected %s, got %s"
                        % (i, diff, describe(e), describe(g)))
        if len(errs) > 12:
            errs.append("  ...")
            break
    return errs


def compare_stats(expected, got):
    """Errors, if the stats JSON @got differs from @expected anywhere."""
    errs = []
    if not isinstance(got, dict):
        return ["stats JSON is not an object"]
    for section in ("ports", "totals", "verdicts", "conntrack", "reloads"):
        if section not in expected:
            continue
        g = got.get(section)
        if not isinstance(g, dict):
            errs.append("stats: no %r object" % section)
            continue
        for key, val in expected[section].items():
            if isinstance(val, dict):
                gp = g.get(key)
                if not isinstance(gp, dict):
                    errs.append("stats: %s.%s missing" % (section, key))
                    continue
                for k, v in val.items():
                    if gp.get(k) != v:
                        errs.append("stats: %s.%s.%s = %r, expected %r"
                                    % (section, key, k, gp.get(k), v))
            elif g.get(key) != val:
                errs.append("stats: %s.%s = %r, expected %r" % (section, key, g.get(key), val))
    gd = got.get("drops")
    if not isinstance(gd, dict):
        errs.append("stats: no 'drops' object")
    else:
        want = expected["drops"]
        for label in sorted(set(want) | set(gd)):
            if label not in gd:
                errs.append("stats: drops.%s missing (every reason must be listed)" % label)
            elif label not in want:
                errs.append("stats: drops.%s is not a reason of mg_drop.h" % label)
            elif gd[label] != want[label]:
                errs.append("stats: drops.%s = %r, expected %r" % (label, gd[label], want[label]))
    return errs


def check_case(case, res):
    """Every error of run @res against @case's expectations (empty: pass)."""
    if res.error:
        return [res.error]
    errs = []
    if "ready" not in res.stderr:
        errs.append("daemon never said it was ready on stderr")
    errs += compare_frames("outside", [x.frame for x in case.inside if x.forwarded],
                           res.out.get("outside", []))
    errs += compare_frames("inside", [x.frame for x in case.outside if x.forwarded],
                           res.out.get("inside", []))
    errs += compare_stats(expected_stats(case), res.stats)
    return errs
