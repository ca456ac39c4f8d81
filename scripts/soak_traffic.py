#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Traffic and accounting for scripts/soak.sh.

  soak_traffic.py run --out FILE --stop FILE [--send TAG,SRC,DST,PORT,RATE]...
                      [--recv ADDR,PORT]... [--go FILE]
      One process per network namespace: it sends numbered UDP datagrams
      ("TAG SEQ") from SRC to DST:PORT at RATE per second for each --send,
      and receives on each --recv (from the start; the sending waits for
      FILE --go), until FILE --stop exists (or SIGTERM).
      Then it stops sending, receives 2 s more and writes FILE --out (JSON):
      per sent tag the count and checkpoints [seq, unix time] once a
      second (to date a lost datagram), per received tag the received
      sequence numbers as ranges [first, last].
  soak_traffic.py report --flows FILE --traffic FILE... --windows FILE
                         --tcp FILE --trace FILE --final S --end T
      The per-flow report: datagrams sent and received, lost outside the
      windows where the flow's own identity was changed, denied frames
      that got through, and the verdict of the final S seconds before
      time T (delivered or not) against the daemon's trace. Prints one
      line per flow, then "SUMMARY lost_outside=N denied_through=N
      verdict_mismatch=N tcp_wrong=N".

Traffic goes only to the addresses given, inside the soak's namespaces.
"""
import argparse
import bisect
import json
import os
import select
import signal
import socket
import sys
import time


def fam(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def run(a):
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("now", True))
    senders = []
    for spec in a.send or []:
        tag, src, dst, port, rate = spec.split(",")
        s = socket.socket(fam(dst), socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.setblocking(False)
        senders.append({"tag": tag, "sock": s, "dst": (dst, int(port)), "rate": float(rate),
                        "seq": 0, "t0": time.monotonic(), "cp": [], "errors": 0})
    receivers = []
    for spec in a.recv or []:
        addr, port = spec.rsplit(",", 1)
        s = socket.socket(fam(addr), socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((addr, int(port)))
        s.setblocking(False)
        receivers.append(s)
    got = {}  # tag -> bytearray bitmap (one byte per seq, simple)

    def drain():
        r, _, _ = select.select(receivers, [], [], 0.002) if receivers else ([], [], [])
        for s in r:
            for _ in range(256):
                try:
                    data = s.recv(2048)
                except BlockingIOError:
                    break
                parts = data.split()
                if len(parts) != 2:
                    continue
                tag = parts[0].decode(errors="replace")
                try:
                    seq = int(parts[1])
                except ValueError:
                    continue
                b = got.setdefault(tag, bytearray())
                if seq >= len(b):
                    b.extend(bytes(seq + 1 - len(b) + 4096))
                b[seq] = 1

    print("ready", flush=True)
    # every receiver of both namespaces binds before anything is sent
    while a.go and not os.path.exists(a.go) and not stop["now"]:
        drain()
        time.sleep(0.01)
    for sd in senders:
        sd["t0"] = time.monotonic()
    while not stop["now"] and not os.path.exists(a.stop):
        now = time.monotonic()
        for sd in senders:
            due = sd["t0"] + sd["seq"] / sd["rate"]
            n = 0
            while due <= now and n < 50:
                if not sd["cp"] or sd["seq"] - sd["cp"][-1][0] >= sd["rate"]:
                    sd["cp"].append([sd["seq"], time.time()])
                try:
                    sd["sock"].sendto(("%s %d" % (sd["tag"], sd["seq"])).encode(), sd["dst"])
                except OSError:
                    sd["errors"] += 1  # counted as sent: the report names it lost
                sd["seq"] += 1
                n += 1
                due = sd["t0"] + sd["seq"] / sd["rate"]
        drain()
        if not receivers:
            time.sleep(0.002)
    end = time.monotonic() + 2
    while time.monotonic() < end:
        drain()
        if not receivers:
            time.sleep(0.05)
    out = {"sent": {}, "recv": {}, "end": time.time()}
    for sd in senders:
        sd["cp"].append([sd["seq"], time.time()])
        out["sent"][sd["tag"]] = {"count": sd["seq"], "cp": sd["cp"], "errors": sd["errors"]}
    for tag, b in got.items():
        ranges, start = [], None
        for i, v in enumerate(b):
            if v and start is None:
                start = i
            elif not v and start is not None:
                ranges.append([start, i - 1])
                start = None
        if start is not None:
            ranges.append([start, len(b) - 1])
        out["recv"][tag] = ranges
    with open(a.out + ".tmp", "w") as f:
        json.dump(out, f)
    os.rename(a.out + ".tmp", a.out)


def seq_time(cp, seq):
    """The send time of seq, interpolated between checkpoints."""
    keys = [c[0] for c in cp]
    i = bisect.bisect_right(keys, seq) - 1
    if i < 0:
        return cp[0][1]
    if i + 1 >= len(cp) or cp[i + 1][0] == cp[i][0]:
        return cp[i][1]
    s0, t0 = cp[i]
    s1, t1 = cp[i + 1]
    return t0 + (t1 - t0) * (seq - s0) / (s1 - s0)


def report(a):
    flows = []
    for line in open(a.flows):
        if line.strip() and not line.startswith("#"):
            tag, proto, want, src, dst, port = line.split()
            flows.append({"tag": tag, "proto": proto, "want": want, "src": src, "dst": dst,
                          "port": port})
    sent, recv = {}, {}
    for fn in a.traffic:
        d = json.load(open(fn))
        sent.update(d["sent"])
        for tag, r in d["recv"].items():
            recv.setdefault(tag, []).extend(r)
    windows = {}
    if os.path.exists(a.windows):
        for line in open(a.windows):
            p = line.split()
            if len(p) == 3:
                windows.setdefault(p[0], []).append((float(p[1]), float(p[2])))
    trace = {}
    for line in open(a.trace):
        p = line.split()
        if len(p) >= 2:
            trace[p[0]] = p[1]
    tcp = {}
    if os.path.exists(a.tcp):
        for line in open(a.tcp):
            p = line.split()
            if len(p) == 3:
                tcp.setdefault(p[1], []).append((float(p[0]), p[2]))
    lost_outside = denied_through = mismatch = tcp_wrong = 0
    final_from = a.end - a.final

    def in_window(tag, t):
        return any(s <= t <= e for s, e in windows.get(tag, []))

    for f in flows:
        tag = f["tag"]
        verdict = trace.get(tag, "unknown")
        if f["proto"] == "udp":
            s = sent.get(tag, {"count": 0, "cp": [[0, 0]], "errors": 0})
            n = s["count"]
            have = bytearray(n)
            for lo, hi in recv.get(tag, []):
                for i in range(lo, min(hi, n - 1) + 1):
                    have[i] = 1
            nrecv = sum(have)
            lost = [i for i in range(n) if not have[i]]
            final = [i for i in range(n) if seq_time(s["cp"], i) >= final_from]
            final_got = sum(have[i] for i in final)
            last = "delivered" if final_got else "blocked"
            if f["want"] == "allow":
                outside = [i for i in lost if not in_window(tag, seq_time(s["cp"], i))]
                lost_outside += len(outside)
                detail = "lost %d (%d outside identity windows%s)" % (
                    len(lost), len(outside),
                    (": first at %s" % time.strftime(
                        "%H:%M:%S", time.localtime(seq_time(s["cp"], outside[0]))))
                    if outside else "")
                if outside:
                    # when the losses happened, in one-second buckets
                    buckets = {}
                    for i in outside:
                        k = int(seq_time(s["cp"], i))
                        buckets[k] = buckets.get(k, 0) + 1
                    detail += " [" + ", ".join(
                        "%s:%d" % (time.strftime("%H:%M:%S", time.localtime(k)), v)
                        for k, v in sorted(buckets.items())[:12]) + "]"
            else:
                denied_through += nrecv
                detail = "got through %d" % nrecv
            ok = (last == "delivered") == (verdict == "allowed")
            mismatch += 0 if ok else 1
            print("flow %-9s udp %-26s want %-5s sent %7d recv %7d %s; final %ss: %s, trace %s%s"
                  % (tag, "%s->%s:%s" % (f["src"], f["dst"], f["port"]), f["want"], n, nrecv,
                     detail, a.final, last, verdict, "" if ok else " DISAGREE"))
        else:
            res = tcp.get(tag, [])
            good = {"allow": "delivered", "deny": "blocked"}[f["want"]]
            wrong = [(t, w) for t, w in res if w != good and not in_window(tag, t)]
            tcp_wrong += len(wrong)
            last = res[-1][1] if res else "none"
            ok = (last == "delivered") == (verdict == "allowed")
            mismatch += 0 if ok else 1
            print("flow %-9s tcp %-26s want %-5s connections %d, wrong outside windows %d%s;"
                  " last: %s, trace %s%s"
                  % (tag, "%s->%s:%s" % (f["src"], f["dst"], f["port"]), f["want"], len(res),
                     len(wrong), (" (%s)" % ", ".join(
                         "%s %s" % (time.strftime("%H:%M:%S", time.localtime(t)), w)
                         for t, w in wrong[:5])) if wrong else "",
                     last, verdict, "" if ok else " DISAGREE"))
    print("SUMMARY lost_outside=%d denied_through=%d verdict_mismatch=%d tcp_wrong=%d"
          % (lost_outside, denied_through, mismatch, tcp_wrong))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--stop", required=True)
    r.add_argument("--go", help="wait for this file before sending")
    r.add_argument("--send", action="append")
    r.add_argument("--recv", action="append")
    q = sub.add_parser("report")
    q.add_argument("--flows", required=True)
    q.add_argument("--traffic", action="append", required=True)
    q.add_argument("--windows", required=True)
    q.add_argument("--tcp", required=True)
    q.add_argument("--trace", required=True)
    q.add_argument("--final", type=float, default=10)
    q.add_argument("--end", type=float, required=True)
    a = p.parse_args()
    (run if a.cmd == "run" else report)(a)


if __name__ == "__main__":
    sys.exit(main())
