#!/usr/bin/python3
"""Check meshgate's Prometheus endpoint (or a saved scrape).

    prom_check.py URL [--require NAME ...] [--expect 'name{label="v",...}=value' ...]
    prom_check.py --file FILE [--require NAME ...] [--expect ...]
    prom_check.py --self-test

Fetches URL (loopback addresses only: this is a test tool, it talks to the
daemon on this machine), parses the text with prometheus_client's own
parser and checks the naming rules of docs/metrics.md:

  - every family is meshgate_*, has a HELP and a TYPE line (once each),
    and is a counter, a gauge or a histogram;
  - a histogram's series each have ascending le buckets with cumulative
    (non-decreasing) counts, the last one le="+Inf" equal to its _count,
    and a _sum;
  - counters end in _total, gauges do not;
  - no label is named after an address or an identity (ip, addr, identity,
    ..._ip, ..._addr, ..._identity);
  - no series appears twice; the required families are present
    (meshgate_build_info and meshgate_drops_total, the gateway's, unless
    --require names others: meshgate-replicator's endpoint has its own);
  - the Content-Type is text/plain; version=0.0.4.

Each --expect names one series with its complete label set and the value
it must have. One "PASS: ..." or "FAIL: ..." line per check; the exit
status is 0 when every check passed, 1 otherwise, 2 for usage errors.
"""

import argparse
import ipaddress
import math
import re
import sys
import urllib.parse
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

FORBIDDEN_LABEL = re.compile(r"^(ip|addr|address|identity)$|_(ip|addr|address|identity)$")
EXPECT = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s*=\s*(\S+)$")
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
REQUIRED = ("meshgate_build_info", "meshgate_drops_total")


class Checker:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, ok, what, why=""):
        if ok:
            self.passed += 1
            print(f"PASS: {what}")
        else:
            self.failed += 1
            print(f"FAIL: {what}" + (f": {why}" if why else ""))
        return ok


def loopback(url):
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8")


def unescape(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def parse_labels(text):
    labels, pos = {}, 0
    text = text or ""
    while pos < len(text):
        m = LABEL.match(text, pos)
        if not m:
            raise ValueError(f"bad labels: {text!r}")
        labels[m.group(1)] = unescape(m.group(2))
        pos = m.end()
    return labels


def check_histogram(f):
    """Problems of histogram family f (a list of strings, empty when fine)."""
    by_series, bad = {}, []
    for s in f.samples:
        rest = frozenset((k, v) for k, v in s.labels.items() if k != "le")
        d = by_series.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if s.name == f.name + "_bucket":
            d["buckets"].append((s.labels.get("le"), s.value))
        elif s.name == f.name + "_sum":
            d["sum"] = s.value
        elif s.name == f.name + "_count":
            d["count"] = s.value
    for rest, d in by_series.items():
        where = f"{f.name}{dict(rest)}"
        les, prev_le, prev_v = d["buckets"], -math.inf, -math.inf
        for le, v in les:
            try:
                le_v = float(le)
            except (TypeError, ValueError):
                bad.append(f"{where}: bad le {le!r}")
                break
            if le_v <= prev_le or v < prev_v:
                bad.append(f"{where}: le={le} not ascending or not cumulative")
            prev_le, prev_v = le_v, v
        if not les or les[-1][0] not in ("+Inf", "inf", "Inf"):
            bad.append(f"{where}: no le=\"+Inf\" bucket last")
        elif d["count"] is None or d["count"] != les[-1][1]:
            bad.append(f"{where}: _count {d['count']} is not the +Inf bucket {les[-1][1]}")
        if d["sum"] is None:
            bad.append(f"{where}: no _sum")
    return bad


def check_text(c, text, required=REQUIRED):
    """The naming rules; returns {(name, frozenset(labels)): value}."""
    helps, types = {}, {}
    for line in text.splitlines():
        parts = line.split(None, 3)
        if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE"):
            d = helps if parts[1] == "HELP" else types
            d[parts[2]] = d.get(parts[2], 0) + 1
            if parts[1] == "TYPE" and len(parts) == 4:
                types[parts[2] + " type"] = parts[3]
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and friends
        c.check(False, "exposition parses", str(e))
        return {}
    c.check(len(families) > 0, "exposition parses", "no families")

    series, bad_names, no_doc, bad_type, bad_suffix, bad_labels, dup = {}, [], [], [], [], [], []
    bad_hist = []
    for f in families:
        declared = f.name + "_total" if f.type == "counter" else f.name
        if not declared.startswith("meshgate_"):
            bad_names.append(declared)
        if not f.documentation or helps.get(declared, 0) != 1:
            no_doc.append(declared)
        if f.type not in ("counter", "gauge", "histogram") or types.get(declared, 0) != 1:
            bad_type.append(f"{declared} ({f.type})")
        if f.type == "histogram":
            bad_hist += check_histogram(f)
            if f.name.endswith("_total"):
                bad_suffix.append(f"{f.name}: histogram with _total")
        if f.type == "counter" and types.get(declared + " type") != "counter":
            bad_suffix.append(f"{declared}: counter without _total")
        if f.type == "gauge" and f.name.endswith("_total"):
            bad_suffix.append(f"{f.name}: gauge with _total")
        for s in f.samples:
            if f.type == "counter" and not s.name.endswith("_total"):
                bad_suffix.append(s.name)
            for k in s.labels:
                if FORBIDDEN_LABEL.search(k):
                    bad_labels.append(f"{s.name}{{{k}}}")
            key = (s.name, frozenset(s.labels.items()))
            if key in series:
                dup.append(f"{s.name}{s.labels}")
            series[key] = s.value
    c.check(not bad_names, "every family is meshgate_*", ", ".join(bad_names[:5]))
    c.check(not no_doc, "every family has one HELP line", ", ".join(no_doc[:5]))
    c.check(not bad_type, "every family has one TYPE line, counter, gauge or histogram",
            ", ".join(bad_type[:5]))
    c.check(not bad_hist, "histograms are well formed", ", ".join(bad_hist[:5]))
    c.check(not bad_suffix, "counters end in _total, gauges do not", ", ".join(bad_suffix[:5]))
    c.check(not bad_labels, "no address or identity labels", ", ".join(bad_labels[:5]))
    c.check(not dup, "no series twice", ", ".join(dup[:5]))
    names = {n for (n, _) in series}
    missing = [n for n in required
               if n not in names and n + "_count" not in names and n + "_total" not in names]
    c.check(not missing, "required families present", ", ".join(missing))
    return series


def check_expect(c, series, expect):
    m = EXPECT.match(expect.strip())
    if not m:
        c.check(False, f"expect {expect}", "not name{labels}=value")
        return
    name, labels, want = m.group(1), m.group(3), m.group(4)
    try:
        key = (name, frozenset(parse_labels(labels).items()))
        want_v = float(want)
    except ValueError as e:
        c.check(False, f"expect {expect}", str(e))
        return
    if key not in series:
        c.check(False, f"expect {expect}", "no such series")
        return
    got = series[key]
    ok = (math.isnan(got) and math.isnan(want_v)) or got == want_v or \
        math.isclose(got, want_v, rel_tol=1e-9, abs_tol=1e-12)
    c.check(ok, f"expect {expect}", f"got {got}")


GOOD = """# HELP meshgate_build_info Always 1.
# TYPE meshgate_build_info gauge
meshgate_build_info{version="0.1.0"} 1
# HELP meshgate_drops_total Frames dropped.
# TYPE meshgate_drops_total counter
meshgate_drops_total{reason="l2_truncated",direction="none"} 3
meshgate_drops_total{reason="policy_denied_egress",direction="egress"} 0
# HELP meshgate_port_packets_total Frames on the port.
# TYPE meshgate_port_packets_total counter
meshgate_port_packets_total{port="a\\"b\\\\c",direction="rx"} 7
meshgate_port_packets_total{port="a\\"b\\\\c",direction="tx"} 5
# HELP meshgate_policy_verdicts_total Policy decisions.
# TYPE meshgate_policy_verdicts_total counter
meshgate_policy_verdicts_total{direction="egress",action="allowed"} 8
meshgate_policy_verdicts_total{direction="egress",action="denied"} 1
# HELP meshgate_worker_busy_ratio Busy share.
# TYPE meshgate_worker_busy_ratio gauge
meshgate_worker_busy_ratio{worker="0"} 0.25
# HELP meshgate_sync_seconds Time per sync.
# TYPE meshgate_sync_seconds histogram
meshgate_sync_seconds_bucket{cluster="a",le="0.1"} 1
meshgate_sync_seconds_bucket{cluster="a",le="1"} 3
meshgate_sync_seconds_bucket{cluster="a",le="+Inf"} 4
meshgate_sync_seconds_sum{cluster="a"} 7.5
meshgate_sync_seconds_count{cluster="a"} 4
"""

BAD = {
    "no prefix": "# HELP other_x h\n# TYPE other_x gauge\nother_x 1\n",
    "no HELP": "# TYPE meshgate_x gauge\nmeshgate_x 1\n",
    "no TYPE": "# HELP meshgate_x h\nmeshgate_x 1\n",
    "counter without _total": "# HELP meshgate_x h\n# TYPE meshgate_x counter\nmeshgate_x 1\n",
    "gauge with _total": "# HELP meshgate_x_total h\n# TYPE meshgate_x_total gauge\n"
                         "meshgate_x_total 1\n",
    "ip label": "# HELP meshgate_x h\n# TYPE meshgate_x gauge\nmeshgate_x{src_ip=\"1\"} 1\n",
    "identity label": "# HELP meshgate_x h\n# TYPE meshgate_x gauge\n"
                      "meshgate_x{identity=\"1\"} 1\n",
    "duplicate series": "# HELP meshgate_x h\n# TYPE meshgate_x gauge\nmeshgate_x 1\nmeshgate_x 2\n",
    "duplicate HELP": "# HELP meshgate_x h\n# HELP meshgate_x h\n# TYPE meshgate_x gauge\n"
                      "meshgate_x 1\n",
    "histogram not cumulative": "# HELP meshgate_h h\n# TYPE meshgate_h histogram\n"
                                "meshgate_h_bucket{le=\"1\"} 3\nmeshgate_h_bucket{le=\"2\"} 2\n"
                                "meshgate_h_bucket{le=\"+Inf\"} 3\nmeshgate_h_sum 1\n"
                                "meshgate_h_count 3\n",
    "histogram count not +Inf": "# HELP meshgate_h h\n# TYPE meshgate_h histogram\n"
                                "meshgate_h_bucket{le=\"1\"} 1\n"
                                "meshgate_h_bucket{le=\"+Inf\"} 3\nmeshgate_h_sum 1\n"
                                "meshgate_h_count 4\n",
    "unparsable": "# HELP meshgate_x h\n# TYPE meshgate_x gauge\nmeshgate_x{a=1} 1\n",
}


def self_test():
    """The checker catches what it must (its own output goes to a sink)."""
    import contextlib
    import io

    ok = True
    with contextlib.redirect_stdout(io.StringIO()):
        c = Checker()
        s = check_text(c, GOOD)
        for e in ('meshgate_drops_total{reason="l2_truncated",direction="none"}=3',
                  'meshgate_port_packets_total{port="a\\"b\\\\c",direction="rx"}=7',
                  'meshgate_port_packets_total{direction="tx",port="a\\"b\\\\c"}=5',
                  'meshgate_policy_verdicts_total{direction="egress",action="allowed"}=8',
                  'meshgate_worker_busy_ratio{worker="0"}=0.25',
                  'meshgate_build_info{version="0.1.0"}=1',
                  'meshgate_sync_seconds_bucket{cluster="a",le="1"}=3',
                  'meshgate_sync_seconds_count{cluster="a"}=4'):
            check_expect(c, s, e)
        results = [("good text passes", c.failed == 0 and c.passed > 0)]
        for e in ('meshgate_drops_total{reason="l2_truncated",direction="none"}=4',
                  'meshgate_drops_total{reason="l2_truncated"}=3',
                  'meshgate_policy_verdicts_total{direction="egress",action="denied"}=8',
                  'meshgate_port_packets_total{port="a\\"b\\\\c"}=7',
                  'meshgate_nope=1', 'garbage'):
            c = Checker()
            check_expect(c, s, e)
            results.append((f"wrong expectation fails: {e}", c.failed == 1))
        for what, text in BAD.items():
            c = Checker()
            check_text(c, GOOD + text)
            results.append((f"{what} fails", c.failed > 0))
    for what, good in results:
        print(("PASS: " if good else "FAIL: ") + "self-test: " + what)
        ok &= good
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", nargs="?", help="http://127.0.0.1:PORT/metrics")
    ap.add_argument("--file", help="check a saved scrape instead of fetching")
    ap.add_argument("--expect", action="append", default=[],
                    help="name{label=\"v\",...}=value (complete label set)")
    ap.add_argument("--require", action="append", default=[],
                    help="a family that must be present (default: the gateway's "
                    + ", ".join(REQUIRED) + ")")
    ap.add_argument("--self-test", action="store_true", help="test the checker itself")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    if (a.url is None) == (a.file is None):
        ap.error("give a URL or --file")

    c = Checker()
    if a.file:
        with open(a.file, encoding="utf-8") as f:
            text = f.read()
    else:
        if not loopback(a.url):
            print(f"prom_check: {a.url}: only loopback addresses are allowed", file=sys.stderr)
            return 2
        try:
            status, ctype, text = fetch(a.url)
        except Exception as e:
            c.check(False, f"GET {a.url}", str(e))
            return 1
        c.check(status == 200, f"GET {a.url} is 200", str(status))
        c.check(ctype.replace(" ", "") == "text/plain;version=0.0.4;charset=utf-8",
                "Content-Type is text/plain; version=0.0.4", ctype)
    series = check_text(c, text, tuple(a.require) or REQUIRED)
    for e in a.expect:
        check_expect(c, series, e)
    print(f"prom_check: {c.passed} passed, {c.failed} failed", file=sys.stderr)
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
