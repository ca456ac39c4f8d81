#!/usr/bin/python3
"""meshgate pcap integration tests: the real daemon on net_pcap ports.

Each case crafts frames with scapy, says for every frame what the gateway
must do with it (forward it unchanged to the peer port, or drop it for a
named reason), runs the daemon with its own config and policies until the
input is consumed (--idle-exit), and checks byte for byte and in order what
left each port, and every counter of the stats JSON (--stats-file). It also
checks --check-config on good and bad inputs.

Usage: pcap_test.py [--meshgate PATH] [--jobs N] [--tag T] [--keep] [CASE...]
Prints "PASS: pcap/<case>" or "FAIL: pcap/<case>: <reason>" per case (and
details on the following lines); exits 1 if any case failed.

Setting (shared by every case, see fixtures/): cluster-a (id 1), namespace
prod with frontend 10.0.1.1 / fd00:1::1 (identity 65600), backend 10.0.2.1 /
fd00:2::1 (65601), db 10.0.2.2 / fd00:2::2 (65602); namespace staging with
backend 10.0.3.1 (65603) and frontend 10.0.3.2 (65604). 192.0.2.0/24,
198.51.100.0/24 and fd00:ff::/64 are unknown, i.e. world.

Connection tracking: only a new flow is judged by policy (a TCP one must
start with a SYN); its replies and the rest of it pass as tracked, ICMP
errors pass only when they quote a tracked flow, and non-first fragments
follow their first. Cases where a reply must come after its request are
built with mgtest.sequence(), which fixes the order across the two ports.
"""

import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import (  # noqa: E402
    ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS,
    ICMPv6ND_RA, ICMPv6ND_RS, ICMPv6NDOptSrcLLAddr, ICMPv6PacketTooBig, ICMPv6ParamProblem,
    ICMPv6TimeExceeded, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether  # noqa: E402
from scapy.layers.sctp import SCTP, SCTPChunkData  # noqa: E402
from scapy.packet import Raw  # noqa: E402

import mgtest  # noqa: E402
from mgtest import Case, X, sequence  # noqa: E402

FRONTEND, BACKEND, DB = "10.0.1.1", "10.0.2.1", "10.0.2.2"
FRONTEND6, BACKEND6, DB6 = "fd00:1::1", "fd00:2::1", "fd00:2::2"
ST_BACKEND, ST_FRONTEND = "10.0.3.1", "10.0.3.2"
WORLD_A, WORLD_B, WORLD6 = "192.0.2.9", "198.51.100.7", "fd00:ff::9"


# ---------------------------------------------------------------- frames

def mac(ip):
    """A stable, locally administered MAC per address."""
    h = sum(ord(c) * (i + 7) for i, c in enumerate(ip)) & 0xFFFFFF
    return "02:00:00:%02x:%02x:%02x" % (h >> 16, (h >> 8) & 0xFF, h & 0xFF)


def eth(src, dst, tags=()):
    """Ethernet header from @src's MAC to @dst's, with VLAN tags (outer first).
    A tag is (tpid, vid)."""
    if not tags:
        return Ether(src=mac(src), dst=mac(dst))
    pkt = Ether(src=mac(src), dst=mac(dst), type=tags[0][0])
    for i, (_tpid, vid) in enumerate(tags):
        nxt = tags[i + 1][0] if i + 1 < len(tags) else None
        layer = Dot1AD(vlan=vid) if _tpid == 0x88A8 else Dot1Q(vlan=vid)
        if nxt is not None:
            layer.type = nxt
        pkt = pkt / layer
    return pkt


def ip(src, dst, **kw):
    return IPv6(src=src, dst=dst, **kw) if ":" in src else IP(src=src, dst=dst, **kw)


def tcp(src, dst, sport, dport, flags="S", payload=b"", tags=(), seq=1000, ack=0):
    return bytes(eth(src, dst, tags) / ip(src, dst) /
                 TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack) / payload)


def udp(src, dst, sport, dport, payload=b"x" * 8, tags=()):
    return bytes(eth(src, dst, tags) / ip(src, dst) / UDP(sport=sport, dport=dport) / payload)


def sctp(src, dst, sport, dport):
    return bytes(eth(src, dst) / ip(src, dst) / SCTP(sport=sport, dport=dport, tag=0x1234) /
                 SCTPChunkData(tsn=1, stream_id=0, stream_seq=0, data=b"hello"))


def ping(src, dst, reply=False, seq=1, ident=7):
    if ":" in src:
        icmp = (ICMPv6EchoReply(id=ident, seq=seq) if reply
                else ICMPv6EchoRequest(id=ident, seq=seq))
        return bytes(eth(src, dst) / IPv6(src=src, dst=dst) / icmp / (b"p" * 16))
    return bytes(eth(src, dst) / IP(src=src, dst=dst) /
                 ICMP(type=0 if reply else 8, id=ident, seq=seq) / (b"p" * 16))


def quote(src, dst, l4, payload=b"q" * 32):
    """The packet an ICMP error quotes: @src -> @dst carrying layer 4 @l4
    (a scapy layer), cut as routers cut it (IPv4: header + 8 bytes; IPv6:
    the whole packet, it is small)."""
    pkt = bytes(ip(src, dst) / l4 / payload)
    return pkt if ":" in src else pkt[:28]


def icmp_error(src, dst, kind, quoted):
    """An ICMP(v6) error from @src to @dst quoting @quoted. kind: "unreach"
    (port unreachable), "frag_needed", "time_exceeded", "param_problem",
    "too_big" (ICMPv6 only)."""
    if ":" in src:
        layer = {"unreach": ICMPv6DestUnreach(code=4), "too_big": ICMPv6PacketTooBig(mtu=1280),
                 "time_exceeded": ICMPv6TimeExceeded(code=0),
                 "param_problem": ICMPv6ParamProblem(code=0, ptr=6)}[kind]
        return bytes(eth(src, dst) / IPv6(src=src, dst=dst) / layer / Raw(quoted))
    tc = {"unreach": (3, 3), "frag_needed": (3, 4), "time_exceeded": (11, 0),
          "param_problem": (12, 0)}[kind]
    return bytes(eth(src, dst) / IP(src=src, dst=dst) / ICMP(type=tc[0], code=tc[1]) /
                 Raw(quoted))


def udp_fragments(src, dst, sport, dport, ident, payload=None, cut=(24, 48)):
    """A UDP datagram @src:@sport -> @dst:@dport cut into three fragments at
    byte offsets @cut of its UDP segment (multiples of 8), IP id @ident.
    Returns the three frames, first (offset 0, with the UDP header) first."""
    payload = payload or bytes((ident + i) & 0xFF for i in range(64))
    seg = bytes(ip(src, dst) / UDP(sport=sport, dport=dport) / payload)
    seg = seg[40:] if ":" in src else seg[20:]
    bounds = [0] + list(cut) + [len(seg)]
    frames = []
    for i in range(len(bounds) - 1):
        lo, hi = bounds[i], bounds[i + 1]
        more = i < len(bounds) - 2
        if ":" in src:
            pkt = (IPv6(src=src, dst=dst) /
                   IPv6ExtHdrFragment(nh=17, offset=lo // 8, m=1 if more else 0, id=ident) /
                   Raw(seg[lo:hi]))
        else:
            pkt = (IP(src=src, dst=dst, id=ident, flags="MF" if more else 0, frag=lo // 8,
                      proto=17) / Raw(seg[lo:hi]))
        frames.append(bytes(eth(src, dst) / pkt))
    return frames


def I(frame, expect, note=""):  # noqa: E741,E743
    """A step of a sequence(): @frame arrives on inside."""
    return ("in", X(frame, expect, note))


def O(frame, expect, note=""):  # noqa: E741,E743
    """A step of a sequence(): @frame arrives on outside."""
    return ("out", X(frame, expect, note))


def arp(src, dst, reply=False):
    return bytes(Ether(src=mac(src), dst=mac(dst) if reply else "ff:ff:ff:ff:ff:ff") /
                 ARP(op=2 if reply else 1, hwsrc=mac(src), psrc=src,
                     hwdst=mac(dst) if reply else "00:00:00:00:00:00", pdst=dst))


def nd_frames(a, b):
    """Neighbour discovery between @a and @b: NS, NA, RS, RA."""
    ns = (Ether(src=mac(a), dst="33:33:ff:00:00:01") /
          IPv6(src=a, dst="ff02::1:ff00:1", hlim=255) / ICMPv6ND_NS(tgt=b) /
          ICMPv6NDOptSrcLLAddr(lladdr=mac(a)))
    na = (Ether(src=mac(b), dst=mac(a)) / IPv6(src=b, dst=a, hlim=255) /
          ICMPv6ND_NA(tgt=b, R=0, S=1, O=1))
    rs = (Ether(src=mac(a), dst="33:33:00:00:00:02") /
          IPv6(src="fe80::1", dst="ff02::2", hlim=255) / ICMPv6ND_RS())
    ra = (Ether(src=mac(b), dst="33:33:00:00:00:01") /
          IPv6(src="fe80::2", dst="ff02::1", hlim=255) / ICMPv6ND_RA())
    return [bytes(ns), bytes(na), bytes(rs), bytes(ra)]


def non_ip(src, dst, ethertype=0x88B5, n=46):
    return bytes(Ether(src=mac(src), dst=mac(dst), type=ethertype) / Raw(bytes(range(n))))


# ---------------------------------------------------------------- policies

def cnp(name, ns, selector, body):
    return """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: %s
  namespace: %s
spec:
  endpointSelector:
    matchLabels: {%s}
%s""" % (name, ns, selector, body)


def ccnp(name, selector, body):
    return """\
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: %s
spec:
  endpointSelector:
    matchLabels: {%s}
%s""" % (name, selector, body)


# backend (prod) accepts frontend (prod) on TCP 80, nothing else.
BACKEND_TCP80 = {"backend.yaml": cnp("backend-ingress", "prod", "app: backend", """\
  ingress:
    - fromEndpoints:
        - matchLabels: {app: frontend}
      toPorts:
        - ports:
            - {port: "80", protocol: TCP}
""")}


# ---------------------------------------------------------------- cases

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def allowed_tcp():
    """An allowed TCP exchange passes unchanged in both directions: the SYN
    by policy, everything after it by connection tracking."""
    f, b = FRONTEND, BACKEND
    return sequence("allowed_tcp", policies=BACKEND_TCP80, ct_expect={"created": 1}, steps=[
        I(tcp(f, b, 40000, 80, "S"), "allow"),
        O(tcp(b, f, 80, 40000, "SA", seq=5000, ack=1001), "ct"),
        I(tcp(f, b, 40000, 80, "A", seq=1001, ack=5001), "ct"),
        I(tcp(f, b, 40000, 80, "PA", b"GET / HTTP/1.1\r\n\r\n", seq=1001, ack=5001), "ct"),
        O(tcp(b, f, 80, 40000, "PA", b"HTTP/1.1 200 OK\r\n" + b"z" * 900, seq=5001, ack=1019),
          "ct"),
        I(tcp(f, b, 40000, 80, "FA", seq=1019, ack=5918), "ct"),
        O(tcp(b, f, 80, 40000, "FA", seq=5918, ack=1020), "ct"),
        I(tcp(f, b, 40000, 80, "A", seq=1020, ack=5919), "ct"),
    ])


@case
def allowed_tcp_main_lcore():
    """The same with a single lcore: the main lcore forwards."""
    c = allowed_tcp()
    c.name, c.lcores = "allowed_tcp_main_lcore", "0"
    return c


@case
def denied_ingress():
    """The destination's ingress policy denies what it does not allow."""
    f, b = FRONTEND, BACKEND
    return sequence("denied_ingress", policies=BACKEND_TCP80, steps=[
        I(tcp(f, b, 40001, 81), "ingress", "port not allowed"),
        I(tcp(f, b, 40001, 80), "allow"),
        I(udp(f, b, 40001, 80), "ingress", "protocol not allowed"),
        I(tcp(f, b, 40002, 443), "ingress"),
        O(tcp(DB, b, 40003, 80), "ingress", "db is not frontend"),
        O(tcp(b, f, 80, 40001, "SA"), "ct", "the reply of the allowed SYN"),
        O(tcp(b, f, 81, 40001, "SA"), "ct_tcp_not_syn", "the denied SYN opened nothing"),
    ])


@case
def denied_egress():
    """The source's egress policy denies what it does not allow."""
    pol = {"frontend.yaml": cnp("frontend-egress", "prod", "app: frontend", """\
  egress:
    - toEndpoints:
        - matchLabels: {app: backend}
      toPorts:
        - ports:
            - {port: "80", protocol: TCP}
""")}
    f = FRONTEND
    return sequence("denied_egress", policies=pol, steps=[
        I(tcp(f, DB, 40000, 5432), "egress"),
        I(tcp(f, BACKEND, 40000, 80), "allow"),
        I(tcp(f, BACKEND, 40000, 443), "egress"),
        I(tcp(f, WORLD_A, 40000, 80), "egress", "world is not backend"),
        I(ping(f, BACKEND), "egress"),
        O(tcp(DB, f, 5432, 40000, "SA"), "ct_tcp_not_syn", "the denied SYN opened nothing"),
        O(tcp(DB, f, 5432, 40001), "allow", "frontend's ingress is open"),
        O(tcp(BACKEND, f, 80, 40000, "SA"), "ct"),
    ])


@case
def deny_beats_allow():
    """An ingressDeny rule wins over an allow rule that covers the same traffic."""
    pol = {"backend.yaml": cnp("backend-ingress", "prod", "app: backend", """\
  ingress:
    - fromEndpoints:
        - matchLabels: {app: frontend}
  ingressDeny:
    - fromEndpoints:
        - matchLabels: {app: frontend}
      toPorts:
        - ports:
            - {port: "22", protocol: TCP}
""")}
    return Case("deny_beats_allow", policies=pol, inside=[
        X(tcp(FRONTEND, BACKEND, 40000, 22), "ingress"),
        X(tcp(FRONTEND, BACKEND, 40000, 80), "allow"),
        X(udp(FRONTEND, BACKEND, 40000, 22), "allow", "the deny is TCP only"),
        X(ping(FRONTEND, BACKEND), "allow", "L3-only allow"),
        X(tcp(FRONTEND6, BACKEND6, 40000, 22), "ingress"),
    ], outside=[
        X(tcp(DB, BACKEND, 40000, 80), "ingress", "db is not allowed at all"),
    ])


@case
def ccnp_egress_deny():
    """A clusterwide policy: db may reach any pod but not on TCP 25, and no world."""
    pol = {"db.yaml": ccnp("db-egress", "app: db, io.kubernetes.pod.namespace: prod", """\
  egress:
    - toEndpoints:
        - {}
  egressDeny:
    - toEndpoints:
        - {}
      toPorts:
        - ports:
            - {port: "25", protocol: TCP}
""")}
    return Case("ccnp_egress_deny", policies=pol, outside=[
        X(tcp(DB, BACKEND, 40000, 80), "allow"),
        X(tcp(DB, BACKEND, 40000, 25), "egress"),
        X(tcp(DB, ST_BACKEND, 40000, 443), "allow", "a CCNP's {} covers every namespace"),
        X(tcp(DB, WORLD_A, 40000, 80), "egress", "world is not an endpoint"),
    ], inside=[
        X(tcp(FRONTEND, DB, 40000, 25), "allow", "db's ingress is open"),
    ])


@case
def port_range():
    """port/endPort: both ends of the range included, neighbours excluded."""
    pol = {"backend.yaml": cnp("backend-range", "prod", "app: backend", """\
  ingress:
    - fromEndpoints:
        - matchLabels: {app: frontend}
      toPorts:
        - ports:
            - {port: "8000", endPort: 8010, protocol: TCP}
""")}
    return Case("port_range", policies=pol, inside=[
        X(tcp(FRONTEND, BACKEND, 40000, 7999), "ingress"),
        X(tcp(FRONTEND, BACKEND, 40000, 8000), "allow"),
        X(tcp(FRONTEND, BACKEND, 40000, 8005), "allow"),
        X(tcp(FRONTEND, BACKEND, 40000, 8010), "allow"),
        X(tcp(FRONTEND, BACKEND, 40000, 8011), "ingress"),
        X(udp(FRONTEND, BACKEND, 40000, 8005), "ingress"),
        X(tcp(FRONTEND6, BACKEND6, 40000, 8010), "allow"),
        X(tcp(FRONTEND6, BACKEND6, 40000, 8011), "ingress"),
    ])


@case
def udp_rule():
    """A UDP rule allows that UDP port only."""
    pol = {"backend.yaml": cnp("backend-dns", "prod", "app: backend", """\
  ingress:
    - fromEndpoints:
        - matchLabels: {app: frontend}
      toPorts:
        - ports:
            - {port: "53", protocol: UDP}
""")}
    return sequence("udp", policies=pol, steps=[
        I(udp(FRONTEND, BACKEND, 5353, 53), "allow"),
        I(tcp(FRONTEND, BACKEND, 5353, 53), "ingress"),
        I(udp(FRONTEND, BACKEND, 5353, 54), "ingress"),
        I(udp(FRONTEND6, BACKEND6, 5353, 53, payload=b"q" * 40), "allow"),
        O(udp(BACKEND, FRONTEND, 53, 5353, payload=b"r" * 120), "ct", "the reply"),
        O(udp(BACKEND6, FRONTEND6, 53, 5353, payload=b"r" * 80), "ct", "the reply"),
        I(udp(FRONTEND, BACKEND, 5353, 53, payload=b"again"), "ct", "more of the flow"),
    ])


@case
def sctp_rule():
    """An SCTP rule allows that SCTP port only."""
    pol = {"backend.yaml": cnp("backend-sctp", "prod", "app: backend", """\
  ingress:
    - fromEndpoints:
        - matchLabels: {app: frontend}
      toPorts:
        - ports:
            - {port: "9000", protocol: SCTP}
""")}
    return sequence("sctp", policies=pol, steps=[
        I(sctp(FRONTEND, BACKEND, 5000, 9000), "allow"),
        I(sctp(FRONTEND, BACKEND, 5000, 9001), "ingress"),
        I(tcp(FRONTEND, BACKEND, 5000, 9000), "ingress"),
        I(udp(FRONTEND, BACKEND, 5000, 9000), "ingress"),
        I(sctp(FRONTEND6, BACKEND6, 5000, 9000), "allow"),
        O(sctp(BACKEND, FRONTEND, 9000, 5000), "ct", "the reply"),
        O(sctp(BACKEND, FRONTEND, 9001, 5000), "allow", "frontend's ingress is open"),
    ])


@case
def icmp_l3_only():
    """A rule with a peer and no toPorts allows every protocol, ICMP included."""
    pol = {"backend.yaml": cnp("backend-l3", "prod", "app: backend", """\
  ingress:
    - fromEndpoints:
        - matchLabels: {app: frontend}
""")}
    return sequence("icmp_l3_only", policies=pol, steps=[
        I(ping(FRONTEND, BACKEND), "allow"),
        I(ping(FRONTEND6, BACKEND6), "allow"),
        I(tcp(FRONTEND, BACKEND, 40000, 12345), "allow"),
        O(ping(BACKEND, FRONTEND, reply=True), "ct", "the echo reply"),
        O(ping(DB, BACKEND), "ingress", "db is not frontend"),
    ])


@case
def icmp_denied_by_toports():
    """Once only ports are allowed, ICMP no rule allows is denied."""
    return Case("icmp_denied_by_toports", policies=BACKEND_TCP80, inside=[
        X(ping(FRONTEND, BACKEND), "ingress"),
        X(ping(FRONTEND6, BACKEND6), "ingress"),
        X(tcp(FRONTEND, BACKEND, 40000, 80), "allow"),
    ], outside=[
        X(ping(BACKEND, FRONTEND), "allow", "frontend's ingress is open"),
    ])


@case
def ipv6_tcp():
    """IPv6 addresses map to the same identities and the same rules apply."""
    f, b = FRONTEND6, BACKEND6
    return sequence("ipv6_tcp", policies=BACKEND_TCP80, steps=[
        I(tcp(f, b, 40000, 80), "allow"),
        O(tcp(b, f, 80, 40000, "SA"), "ct"),
        I(tcp(f, b, 40000, 80, "PA", b"hello over v6", seq=1001), "ct"),
        I(tcp(f, b, 40000, 81), "ingress"),
        O(tcp(DB6, b, 40000, 80), "ingress"),
        O(tcp(b, f, 81, 40000, "SA"), "ct_tcp_not_syn"),
    ])


@case
def vlan_qinq():
    """802.1Q, 802.1ad+802.1Q and double 802.1Q frames: verdict from the inner
    packet, allowed frames leave with their tags unchanged."""
    q, ad = 0x8100, 0x88A8
    f, b = FRONTEND, BACKEND
    return sequence("vlan_qinq", policies=BACKEND_TCP80, ct_expect={"created": 4}, steps=[
        I(tcp(f, b, 40000, 80, tags=[(q, 10)]), "allow"),
        I(tcp(f, b, 40000, 81, tags=[(q, 10)]), "ingress"),
        I(tcp(f, b, 40001, 80, tags=[(ad, 100), (q, 20)]), "allow"),
        I(tcp(f, b, 40001, 22, tags=[(ad, 100), (q, 20)]), "ingress"),
        I(tcp(f, b, 40002, 80, tags=[(q, 30), (q, 40)]), "allow"),
        I(tcp(FRONTEND6, BACKEND6, 40003, 80, tags=[(ad, 100), (q, 20)]), "allow"),
        O(tcp(b, f, 80, 40000, "SA", tags=[(q, 10)]), "ct"),
        O(udp(DB, b, 40000, 80, tags=[(ad, 100), (q, 20)]), "ingress"),
        O(tcp(BACKEND6, FRONTEND6, 80, 40003, "SA", tags=[(ad, 100), (q, 20)]), "ct"),
    ])


@case
def arp_passes():
    """ARP passes in both directions even when every identity is default deny."""
    return Case("arp", enforcement="always", inside=[
        X(arp(FRONTEND, BACKEND), "arp"),
        X(tcp(FRONTEND, BACKEND, 40000, 80), "egress", "always: nothing is allowed"),
        X(arp(WORLD_A, BACKEND), "arp"),
    ], outside=[
        X(arp(BACKEND, FRONTEND, reply=True), "arp"),
        X(bytes(Ether(src=mac(DB), dst=mac(FRONTEND)) / Dot1Q(vlan=5) /
                ARP(op=1, psrc=DB, pdst=FRONTEND, hwsrc=mac(DB))), "arp", "tagged ARP"),
    ])


@case
def nd_passes_always():
    """IPv6 neighbour discovery passes even with enforcement always; ICMPv6 echo does not."""
    nd_in = nd_frames(FRONTEND6, BACKEND6)
    nd_out = nd_frames(BACKEND6, FRONTEND6)
    return Case("nd_always", enforcement="always", policies=BACKEND_TCP80,
                inside=[X(f, "nd") for f in nd_in] + [X(ping(FRONTEND6, BACKEND6), "egress")],
                outside=[X(f, "nd") for f in nd_out] + [X(ping(WORLD6, FRONTEND6), "egress")])


@case
def non_ip_forward():
    """non_ip: forward passes other ethertypes unchanged and counts them."""
    return Case("non_ip_forward", non_ip="forward", inside=[
        X(non_ip(FRONTEND, BACKEND), "pass_non_ip"),
        X(non_ip(FRONTEND, BACKEND, 0x88CC, 60), "pass_non_ip", "LLDP"),
        X(tcp(FRONTEND, BACKEND, 40000, 80), "allow"),
    ], outside=[
        X(non_ip(BACKEND, FRONTEND, 0x9000, 50), "pass_non_ip"),
    ])


@case
def non_ip_drop():
    """non_ip: drop drops other ethertypes (reason non_ip) but never ARP or IP."""
    return Case("non_ip_drop", non_ip="drop", inside=[
        X(non_ip(FRONTEND, BACKEND), "non_ip"),
        X(arp(FRONTEND, BACKEND), "arp"),
        X(tcp(FRONTEND, BACKEND, 40000, 80), "allow"),
        X(non_ip(FRONTEND, BACKEND, 0x88CC, 60), "non_ip"),
    ], outside=[
        X(non_ip(BACKEND, FRONTEND, 0x9000, 50), "non_ip"),
    ])


def malformed_frames():
    """(frame, reason) pairs: each frame is malformed in exactly one way, and
    its addresses are ones the (empty) policy would allow."""
    f, b = FRONTEND, BACKEND
    base = Ether(src=mac(f), dst=mac(b), type=0x0800)
    good_ip = bytes(IP(src=f, dst=b) / TCP(sport=40000, dport=80))
    out = []
    out.append((bytes(base)[:10], "l2_truncated"))
    out.append((bytes(Ether(src=mac(f), dst=mac(b), type=0x8100)) + b"\x00", "vlan_truncated"))
    out.append((bytes(eth(f, b, [(0x88A8, 1), (0x8100, 2), (0x8100, 3)]) / IP(src=f, dst=b) /
                      TCP(dport=80)), "vlan_too_many_tags"))
    out.append((bytes(base) + good_ip[:12], "ipv4_truncated"))
    out.append((bytes(base / IP(src=f, dst=b, ihl=4) / TCP(dport=80)), "ipv4_bad_ihl"))
    out.append((bytes(base / IP(src=f, dst=b, version=5) / TCP(dport=80)), "ipv4_bad_version"))
    out.append((bytes(base / IP(src=f, dst=b, len=400) / TCP(dport=80)),
                "ipv4_length_beyond_frame"))
    out.append((bytes(base / IP(src=f, dst=b, proto=6) / Raw(b"\x9c\x40\x00\x50" + b"\0" * 6)),
                "tcp_truncated"))
    out.append((bytes(base / IP(src=f, dst=b) / TCP(dport=80, dataofs=4)),
                "tcp_bad_data_offset"))
    out.append((bytes(base / IP(src=f, dst=b) / TCP(dport=80, dataofs=15)),
                "tcp_bad_data_offset"))
    out.append((bytes(base / IP(src=f, dst=b, proto=17) / Raw(b"\x9c\x40\x00\x35")),
                "udp_truncated"))
    f6, b6 = FRONTEND6, BACKEND6
    out.append((bytes(eth(f6, b6) / IPv6(src=f6, dst=b6))[:14 + 20], "ipv6_truncated"))
    assert all(fr[12:14] != b"\x90\x00" for fr, _ in out), "a frame lost its ethertype"
    out.append((bytes(eth(f6, b6) / IPv6(src=f6, dst=b6, plen=400) / TCP(dport=80)),
                "ipv6_length_beyond_frame"))
    chain = IPv6(src=f6, dst=b6)
    for _ in range(mgtest_max_ext() + 2):
        chain = chain / IPv6ExtHdrDestOpt()
    out.append((bytes(eth(f6, b6) / chain / TCP(dport=80)), "ipv6_ext_chain_too_long"))
    return out


def mgtest_max_ext():
    """MG_PKT_MAX_IP6_EXT from lib/pkt/mg_pkt.h (8 if it cannot be read)."""
    try:
        with open(os.path.join(mgtest.ROOT, "lib", "pkt", "mg_pkt.h")) as fh:
            m = re.search(r"#define\s+MG_PKT_MAX_IP6_EXT\s+(\d+)", fh.read())
        return int(m.group(1)) if m else 8
    except OSError:
        return 8


@case
def malformed():
    """Malformed frames are dropped, each with its own reason; valid frames
    between them still pass."""
    inside = []
    for i, (frame, reason) in enumerate(malformed_frames()):
        inside.append(X(frame, reason))
        inside.append(X(tcp(FRONTEND, BACKEND, 41000 + i, 80), "allow"))
    return Case("malformed", inside=inside)


@case
def fragments():
    """Non-first fragments are dropped (fragment_untracked), IPv4 and IPv6."""
    f, b = FRONTEND, BACKEND
    v4 = bytes(eth(f, b) / IP(src=f, dst=b, id=77, flags=0, frag=3, proto=6) / Raw(b"y" * 24))
    v4_mid = bytes(eth(f, b) / IP(src=f, dst=b, id=78, flags="MF", frag=185, proto=6) /
                   Raw(b"y" * 32))
    v6 = bytes(eth(FRONTEND6, BACKEND6) / IPv6(src=FRONTEND6, dst=BACKEND6) /
               IPv6ExtHdrFragment(nh=6, offset=10, m=0, id=99) / Raw(b"y" * 24))
    return Case("fragments", inside=[
        X(v4, "fragment_untracked"),
        X(tcp(f, b, 40000, 80), "allow"),
        X(v4_mid, "fragment_untracked"),
        X(v6, "fragment_untracked"),
    ])


@case
def enforcement_never():
    """enforcement: never lets everything through, deny rules included, and counts it."""
    pol = {"backend.yaml": cnp("backend-lockdown", "prod", "app: backend", """\
  ingress:
    - {}
  ingressDeny:
    - fromEndpoints:
        - matchLabels: {app: frontend}
""")}
    return Case("enforcement_never", enforcement="never", policies=pol, inside=[
        X(tcp(FRONTEND, BACKEND, 40000, 80), "allow"),
        X(ping(FRONTEND, BACKEND), "allow"),
        X(udp(WORLD_A, BACKEND, 1, 2), "allow"),
    ], outside=[
        X(tcp(DB, BACKEND, 40000, 22), "allow"),
    ])


@case
def enforcement_always():
    """enforcement: always denies in both directions what no rule allows."""
    pol = {"frontend.yaml": cnp("frontend-egress", "prod", "app: frontend", """\
  egress:
    - toEndpoints:
        - matchLabels: {app: backend}
      toPorts:
        - ports:
            - {port: "80", protocol: TCP}
"""), "backend.yaml": BACKEND_TCP80["backend.yaml"]}
    return sequence("enforcement_always", enforcement="always", policies=pol, steps=[
        I(tcp(FRONTEND, BACKEND, 40000, 80), "allow"),
        I(tcp(FRONTEND, BACKEND, 40000, 81), "egress"),
        I(tcp(FRONTEND, DB, 40000, 5432), "egress"),
        I(tcp(WORLD_A, WORLD_B, 1000, 80), "egress", "world too is default deny"),
        O(tcp(BACKEND, FRONTEND, 80, 40000, "SA"), "ct", "no rule for it, but a reply"),
        O(tcp(BACKEND, FRONTEND, 80, 40009), "egress", "a new flow back: no rule"),
        O(tcp(DB, FRONTEND, 5432, 40000), "egress"),
    ])


@case
def world_unknown_ip():
    """An address not in the ipcache is world: a rule naming an endpoint does
    not allow it, and world's own directions are open under enforcement default."""
    return sequence("world_unknown_ip", policies=BACKEND_TCP80, steps=[
        I(tcp(WORLD_A, BACKEND, 40000, 80), "ingress"),
        I(tcp(WORLD_A, WORLD_B, 40000, 80), "allow"),
        I(tcp(WORLD6, BACKEND6, 40000, 80), "ingress"),
        O(tcp(BACKEND, WORLD_A, 80, 40000, "SA"), "ct_tcp_not_syn", "its SYN was denied"),
        O(tcp(BACKEND, WORLD_A, 8080, 40000), "allow", "backend's egress is open"),
        O(tcp(FRONTEND, WORLD_B, 40000, 443), "allow"),
        O(tcp(WORLD_B, WORLD_A, 80, 40000, "SA"), "ct"),
    ])


@case
def cnp_namespace():
    """A CNP selects subjects and peers in its own namespace only."""
    return Case("cnp_namespace", policies=BACKEND_TCP80, inside=[
        X(tcp(ST_FRONTEND, BACKEND, 40000, 80), "ingress", "staging frontend is not prod's"),
        X(tcp(FRONTEND, BACKEND, 40000, 80), "allow"),
        X(tcp(FRONTEND, ST_BACKEND, 40000, 81), "allow", "staging backend is not a subject"),
        X(tcp(ST_FRONTEND, ST_BACKEND, 40000, 22), "allow"),
    ])


@case
def mixed_burst():
    """160 frames in each direction, a deterministic mix of everything, in
    bursts of 32: every port keeps the order of what it forwards, across
    bursts, and connection tracking holds at volume. Frame i of inside is
    always read before frame i of outside (the daemon polls inside first,
    one burst per port and loop), so outside's frame i may answer inside's."""
    import random
    rnd = random.Random(4242)
    malformed_list = malformed_frames()
    inside, outside = [], []
    for i in range(160):
        k = rnd.randrange(10)
        size = rnd.randrange(0, 1200)
        payload = bytes((i + j) & 0xFF for j in range(size))
        f, b = FRONTEND, BACKEND
        opened = False  # did inside's frame i open TCP flow 30000+i to backend:80?
        if k < 4:
            inside.append(X(tcp(f, b, 30000 + i, 80, "S", payload, seq=i), "allow"))
            opened = True
        elif k == 4:
            inside.append(X(tcp(f, b, 30000 + i, 8080 + i, "S"), "ingress"))
        elif k == 5:
            inside.append(X(udp(DB, b, 30000 + i, 80, payload), "ingress"))
        elif k == 6:
            inside.append(X(arp(f, b), "arp"))
        elif k == 7:
            frame, reason = malformed_list[i % len(malformed_list)]
            inside.append(X(frame, reason))
        elif k == 8:
            inside.append(X(tcp(FRONTEND6, BACKEND6, 30000 + i, 80, "S", payload), "allow"))
        else:
            inside.append(X(non_ip(f, b, 0x88B5, 46 + size % 200), "pass_non_ip"))

        k = rnd.randrange(10)
        size = rnd.randrange(0, 1200)
        payload = bytes((i * 7 + j) & 0xFF for j in range(size))
        if k < 6:
            out = tcp(b, f, 80, 30000 + i, "SA", payload, seq=i)
            outside.append(X(out, "ct") if opened else X(out, "ct_tcp_not_syn"))
        elif k < 8:
            outside.append(X(udp(b, WORLD_A, 53, 30000 + i, payload), "allow"))
        elif k == 8:
            outside.append(X(ping(WORLD_B, f, seq=i, ident=1000 + i), "allow"))
        else:
            outside.append(X(tcp(WORLD_B, b, 30000 + i, 5432), "ingress"))
    assert any(x.expect == "ct" for x in outside)
    assert any(x.expect == "ct_tcp_not_syn" for x in outside)
    return Case("mixed_burst", policies=BACKEND_TCP80, burst=32, inside=inside,
                outside=outside)


# ---------------------------------------------------------------- connection tracking

# The server (backend) answers the client (frontend) only through connection
# tracking: the backend accepts the frontend on TCP 80 and UDP 53 but may
# itself only open connections to db on TCP 5432 (egress is default deny
# once a rule selects it), and the frontend accepts only db on TCP 9999
# (its ingress is default deny too). No rule allows a packet from backend to
# frontend.
CT_SERVER = """\
  ingress:
    - fromEndpoints:
        - matchLabels: {app: frontend}
      toPorts:
        - ports:
            - {port: "80", protocol: TCP}
            - {port: "53", protocol: UDP}
  egress:
    - toEndpoints:
        - matchLabels: {app: db}
      toPorts:
        - ports:
            - {port: "5432", protocol: TCP}
"""
CT_CLIENT = cnp("frontend-ingress", "prod", "app: frontend", """\
  ingress:
    - fromEndpoints:
        - matchLabels: {app: db}
      toPorts:
        - ports:
            - {port: "9999", protocol: TCP}
""")
CT_POLICY = {"backend.yaml": cnp("backend", "prod", "app: backend", CT_SERVER),
             "frontend.yaml": CT_CLIENT}
# The same, but the backend accepts everything from the frontend (ICMP and
# other protocols included: a rule without toPorts).
CT_POLICY_L3 = {"backend.yaml": cnp("backend", "prod", "app: backend", """\
  ingress:
    - fromEndpoints:
        - matchLabels: {app: frontend}
  egress:
    - toEndpoints:
        - matchLabels: {app: db}
      toPorts:
        - ports:
            - {port: "5432", protocol: TCP}
"""), "frontend.yaml": CT_CLIENT}


def handshake(f, b, sport, dport, seq=1000, srv=5000):
    """SYN, SYN-ACK, ACK of frontend @f:@sport -> backend @b:@dport: steps."""
    return [
        I(tcp(f, b, sport, dport, "S", seq=seq), "allow"),
        O(tcp(b, f, dport, sport, "SA", seq=srv, ack=seq + 1), "ct"),
        I(tcp(f, b, sport, dport, "A", seq=seq + 1, ack=srv + 1), "ct"),
    ]


@case
def ct_tcp_handshake():
    """Handshake, data both ways and close between a client whose ingress and
    a server whose egress are both default deny: only the SYN is judged (and
    allowed by the server's ingress), every other packet passes as tracked,
    while new connections the policies do not allow stay denied."""
    f, b, f6, b6 = FRONTEND, BACKEND, FRONTEND6, BACKEND6
    req = b"GET /index.html HTTP/1.1\r\nHost: backend\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 1200\r\n\r\n" + bytes(range(256)) * 5
    steps = handshake(f, b, 40000, 80) + [
        I(tcp(f, b, 40000, 80, "PA", req, seq=1001, ack=5001), "ct"),
        O(tcp(b, f, 80, 40000, "A", seq=5001, ack=1001 + len(req)), "ct"),
        O(tcp(b, f, 80, 40000, "PA", resp, seq=5001, ack=1001 + len(req)), "ct"),
        I(tcp(f, b, 40000, 80, "A", seq=1001 + len(req), ack=5001 + len(resp)), "ct"),
        I(tcp(f, b, 40000, 80, "FA", seq=1001 + len(req), ack=5001 + len(resp)), "ct"),
        O(tcp(b, f, 80, 40000, "FA", seq=5001 + len(resp), ack=1002 + len(req)), "ct"),
        I(tcp(f, b, 40000, 80, "A", seq=1002 + len(req), ack=5002 + len(resp)), "ct"),
        # The policies are enforced: the backend may not open a connection
        # to the frontend, nor send it UDP; it may open one to db.
        O(tcp(b, f, 45000, 22), "egress", "backend's egress: db 5432 only"),
        O(udp(b, f, 45000, 53), "egress"),
        O(tcp(b, DB, 45001, 5432), "allow", "backend's egress allows db 5432"),
        O(tcp(DB, f, 45002, 9999), "allow", "frontend's ingress allows db 9999"),
        O(tcp(DB, f, 45002, 9998), "ingress", "frontend's ingress: db 9999 only"),
    ] + handshake(f6, b6, 40001, 80) + [
        I(tcp(f6, b6, 40001, 80, "PA", b"over v6", seq=1001, ack=5001), "ct"),
        O(tcp(b6, f6, 80, 40001, "PA", b"answer over v6", seq=5001, ack=1008), "ct"),
    ]
    return sequence("ct_tcp_handshake", policies=CT_POLICY, steps=steps,
                    ct_expect={"created": 4, "entries": 4, "expired": 0, "rechecked": 0})


@case
def ct_reply_without_request():
    """A "reply" nothing asked for: TCP without SYN is dropped whatever the
    policy says (ct_tcp_not_syn); UDP and echo replies are new flows, judged
    by policy (the server's egress, the client's ingress) and denied; a
    denied request opens no way back."""
    f, b = FRONTEND, BACKEND
    return sequence("ct_reply_without_request", policies=CT_POLICY,
                    ct_expect={"created": 0, "entries": 0}, steps=[
        O(tcp(b, f, 80, 41000, "SA"), "ct_tcp_not_syn", "SYN-ACK alone"),
        O(tcp(b, f, 80, 41000, "A"), "ct_tcp_not_syn"),
        O(tcp(b, f, 80, 41000, "PA", b"unsolicited"), "ct_tcp_not_syn"),
        O(tcp(b, f, 80, 41000, "R"), "ct_tcp_not_syn"),
        O(tcp(b, f, 80, 41000, "FA"), "ct_tcp_not_syn"),
        O(tcp(DB, f, 5432, 41001, "SA"), "ct_tcp_not_syn", "not even from an open egress"),
        O(tcp(BACKEND6, FRONTEND6, 80, 41000, "SA"), "ct_tcp_not_syn"),
        O(udp(b, f, 53, 5353), "egress", "UDP reply with no request: backend's egress"),
        O(udp(DB, f, 53, 5353), "ingress", "UDP reply with no request: frontend's ingress"),
        O(ping(b, f, reply=True), "egress", "echo reply with no request"),
        O(ping(DB, f, reply=True), "ingress", "echo reply with no request"),
        I(tcp(f, b, 41002, 81), "ingress", "a denied SYN..."),
        O(tcp(b, f, 81, 41002, "SA"), "ct_tcp_not_syn", "...opens nothing"),
        I(udp(f, b, 5353, 54), "ingress", "a denied UDP request..."),
        O(udp(b, f, 54, 5353), "egress", "...opens nothing"),
        I(tcp(f, b, 41003, 80, "A"), "ct_tcp_not_syn", "an allowed port, but no SYN"),
        O(tcp(b, f, 80, 41003, "A"), "ct_tcp_not_syn"),
    ])


@case
def ct_tcp_rst():
    """A RST from the server (then from the client) passes and ends the
    connection; a new SYN on the same ports is judged by policy again."""
    f, b = FRONTEND, BACKEND
    steps = handshake(f, b, 40010, 80) + [
        I(tcp(f, b, 40010, 80, "PA", b"hello", seq=1001, ack=5001), "ct"),
        O(tcp(b, f, 80, 40010, "R", seq=5001), "ct", "the server's RST passes"),
        I(tcp(f, b, 40010, 80, "S", seq=9000), "allow", "a new SYN: judged again"),
        O(tcp(b, f, 80, 40010, "SA", seq=7000, ack=9001), "ct"),
        I(tcp(f, b, 40010, 80, "A", seq=9001, ack=7001), "ct"),
        I(tcp(f, b, 40010, 80, "PA", b"again", seq=9001, ack=7001), "ct"),
        O(tcp(b, f, 80, 40010, "PA", b"welcome back", seq=7001, ack=9006), "ct"),
    ] + handshake(f, b, 40011, 80) + [
        I(tcp(f, b, 40011, 80, "RA", seq=1001, ack=5001), "ct", "the client's RST passes"),
        I(tcp(f, b, 40011, 80, "S", seq=3000), "allow", "a new SYN: judged again"),
        O(tcp(b, f, 80, 40011, "SA", seq=8000, ack=3001), "ct"),
    ]
    return sequence("ct_tcp_rst", policies=CT_POLICY, steps=steps,
                    ct_expect={"entries": 2, "rechecked": 0})


@case
def ct_tcp_fin():
    """FIN from the client, data from the half-open server, FIN from the
    server, last ACK: all pass as tracked; a new SYN on the same ports after
    the close is judged by policy again."""
    f, b = FRONTEND, BACKEND
    steps = handshake(f, b, 40020, 80) + [
        I(tcp(f, b, 40020, 80, "PA", b"request", seq=1001, ack=5001), "ct"),
        I(tcp(f, b, 40020, 80, "FA", seq=1008, ack=5001), "ct", "the client closes"),
        O(tcp(b, f, 80, 40020, "A", seq=5001, ack=1009), "ct"),
        O(tcp(b, f, 80, 40020, "PA", b"still answering", seq=5001, ack=1009), "ct",
          "half-closed: the server still sends"),
        I(tcp(f, b, 40020, 80, "A", seq=1009, ack=5016), "ct"),
        O(tcp(b, f, 80, 40020, "FA", seq=5016, ack=1009), "ct", "the server closes"),
        I(tcp(f, b, 40020, 80, "A", seq=1009, ack=5017), "ct", "the last ACK"),
        I(tcp(f, b, 40020, 80, "S", seq=20000), "allow", "the ports reused: judged again"),
        O(tcp(b, f, 80, 40020, "SA", seq=30000, ack=20001), "ct"),
        I(tcp(f, b, 40020, 80, "A", seq=20001, ack=30001), "ct"),
    ] + handshake(f, b, 40021, 80) + [
        O(tcp(b, f, 80, 40021, "FA", seq=5001, ack=1001), "ct", "the server closes first"),
        I(tcp(f, b, 40021, 80, "FA", seq=1001, ack=5002), "ct"),
        O(tcp(b, f, 80, 40021, "A", seq=5002, ack=1002), "ct"),
    ]
    return sequence("ct_tcp_fin", policies=CT_POLICY, steps=steps,
                    ct_expect={"entries": 2, "rechecked": 0})


@case
def ct_icmp_echo():
    """Echo request opens a flow keyed by its identifier, the reply passes as
    tracked although backend's egress allows no ICMP; a reply to an
    identifier nobody used is judged by policy (denied), and so is every
    other ICMP type, which opens no flow. GRE (no ports) is tracked too."""
    f, b, f6, b6 = FRONTEND, BACKEND, FRONTEND6, BACKEND6
    ts_req = bytes(eth(f, b) / IP(src=f, dst=b) / ICMP(type=13, id=9, seq=1) / Raw(bytes(12)))
    ts_rep = bytes(eth(b, f) / IP(src=b, dst=f) / ICMP(type=14, id=9, seq=1) / Raw(bytes(12)))
    gre_in = bytes(eth(f, b) / IP(src=f, dst=b) / GRE(proto=0x0800) /
                   IP(src="172.16.0.1", dst="172.16.0.2") / UDP(sport=1, dport=2))
    gre_out = bytes(eth(b, f) / IP(src=b, dst=f) / GRE(proto=0x0800) /
                    IP(src="172.16.0.2", dst="172.16.0.1") / UDP(sport=2, dport=1))
    return sequence("ct_icmp_echo", policies=CT_POLICY_L3,
                    ct_expect={"created": 3, "entries": 3}, steps=[
        I(ping(f, b, ident=7, seq=1), "allow"),
        O(ping(b, f, reply=True, ident=7, seq=1), "ct", "the echo reply"),
        I(ping(f, b, ident=7, seq=2), "ct", "the same identifier: the same flow"),
        O(ping(b, f, reply=True, ident=7, seq=2), "ct"),
        O(ping(b, f, reply=True, ident=8, seq=1), "egress", "a reply nobody asked for"),
        I(ping(f6, b6, ident=7), "allow"),
        O(ping(b6, f6, reply=True, ident=7), "ct"),
        O(ping(b6, f6, reply=True, ident=99), "egress"),
        I(ts_req, "allow", "timestamp request: judged by policy, no flow"),
        O(ts_rep, "egress", "timestamp reply: judged by policy too"),
        I(gre_in, "allow"),
        O(gre_out, "ct", "GRE reply"),
    ])


@case
def ct_icmp_echo_direction():
    """An echo request from the server that reuses the identifier of the
    client's tracked echo flow is no reply: it is a new flow, judged by
    policy (backend's egress denies it)."""
    f, b = FRONTEND, BACKEND
    return sequence("ct_icmp_echo_direction", policies=CT_POLICY_L3, steps=[
        I(ping(f, b, ident=7, seq=1), "allow"),
        O(ping(b, f, reply=True, ident=7, seq=1), "ct"),
        O(ping(b, f, ident=7, seq=1), "egress", "a request, not a reply"),
        O(ping(b, f, ident=8, seq=1), "egress"),
    ])


@case
def ct_icmp_errors():
    """ICMP errors pass only when the packet they quote belongs to a tracked
    flow (from either end, and from a router on the way), whatever the
    policy says; other errors are dropped (icmp_error_unrelated), even where
    the policy would allow them. IPv4 and IPv6."""
    f, b, f6, b6 = FRONTEND, BACKEND, FRONTEND6, BACKEND6
    flow = quote(f, b, UDP(sport=5353, dport=53))
    back = quote(b, f, UDP(sport=53, dport=5353))
    other = quote(f, b, UDP(sport=5354, dport=53))
    tflow = quote(f, b, TCP(sport=40030, dport=80, flags="S", seq=1000))
    tother = quote(f, b, TCP(sport=40031, dport=80, flags="S", seq=1000))
    flow6 = quote(f6, b6, UDP(sport=5353, dport=53))
    other6 = quote(f6, b6, UDP(sport=5354, dport=53))
    return sequence("ct_icmp_errors", policies=CT_POLICY,
                    ct_expect={"created": 3, "entries": 3}, steps=[
        I(udp(f, b, 5353, 53), "allow"),
        O(icmp_error(b, f, "unreach", flow), "related", "port unreachable"),
        O(icmp_error(b, f, "unreach", other), "icmp_error_unrelated", "other source port"),
        O(icmp_error(WORLD_A, f, "time_exceeded", flow), "related", "from a router"),
        O(icmp_error(b, f, "param_problem", flow), "related"),
        O(icmp_error(b, f, "param_problem", other), "icmp_error_unrelated"),
        I(icmp_error(f, b, "unreach", back), "related", "the client rejects a reply"),
        I(icmp_error(f, b, "unreach", quote(b, f, UDP(sport=53, dport=7777))),
          "icmp_error_unrelated"),
        O(icmp_error(b, f, "frag_needed", tother), "icmp_error_unrelated", "no such TCP flow"),
        I(tcp(f, b, 40030, 80), "allow"),
        O(icmp_error(WORLD_A, f, "frag_needed", tflow), "related", "fragmentation needed"),
        O(icmp_error(WORLD_A, WORLD_B, "unreach", quote(WORLD_B, WORLD_A, UDP(sport=1, dport=2))),
          "icmp_error_unrelated", "the policy would allow world to world"),
        I(udp(f6, b6, 5353, 53), "allow"),
        O(icmp_error(b6, f6, "too_big", flow6), "related", "packet too big"),
        O(icmp_error(b6, f6, "too_big", other6), "icmp_error_unrelated"),
        O(icmp_error(b6, f6, "unreach", flow6), "related"),
        O(icmp_error(WORLD6, f6, "time_exceeded", flow6), "related"),
        O(icmp_error(b6, f6, "param_problem", other6), "icmp_error_unrelated"),
        O(icmp_error(WORLD6, f6, "unreach", quote(f, b, UDP(sport=5353, dport=53))),
          "icmp_error_unrelated", "an IPv4 quote in ICMPv6"),
    ])


@case
def ct_fragments():
    """The later fragments of a datagram whose first fragment passed pass
    too (either direction: a reply's first fragment passes as tracked);
    those whose first was denied or never seen, or that differ from it in
    source or id, are dropped (fragment_untracked). IPv4 and IPv6."""
    f, b, f6, b6 = FRONTEND, BACKEND, FRONTEND6, BACKEND6
    q = udp_fragments(f, b, 5353, 53, 100)
    denied = udp_fragments(f, b, 5353, 54, 101)
    alien = udp_fragments(DB, b, 5353, 53, 100)  # db, same id: not q's
    other_id = udp_fragments(f, b, 5353, 53, 102)
    reply = udp_fragments(b, f, 53, 5353, 200, payload=bytes(range(200)), cut=(64, 128))
    unasked = udp_fragments(b, f, 53, 6000, 201)
    q6 = udp_fragments(f6, b6, 5353, 53, 300)
    denied6 = udp_fragments(f6, b6, 5353, 54, 301)
    other6 = udp_fragments(f6, b6, 5353, 53, 302)
    return sequence("ct_fragments", policies=CT_POLICY, steps=[
        I(q[0], "allow", "first fragment, allowed"),
        I(q[1], "frag"),
        I(alien[1], "fragment_untracked", "same id, other source"),
        I(other_id[2], "fragment_untracked", "first never seen"),
        I(q[2], "frag", "last fragment"),
        I(denied[0], "ingress", "first fragment, denied"),
        I(denied[1], "fragment_untracked"),
        I(denied[2], "fragment_untracked"),
        O(reply[0], "ct", "a reply's first fragment"),
        O(reply[1], "frag"),
        O(reply[2], "frag"),
        O(unasked[0], "egress", "backend's egress denies a new flow"),
        O(unasked[1], "fragment_untracked"),
        I(q6[0], "allow"),
        I(q6[1], "frag"),
        I(q6[2], "frag"),
        I(denied6[0], "ingress"),
        I(denied6[2], "fragment_untracked"),
        I(other6[1], "fragment_untracked"),
    ])


@case
def ct_fragments_same_burst():
    """The fragments of a datagram usually arrive back to back, in one burst
    (default burst here): the later ones still follow the first."""
    f, b, f6, b6 = FRONTEND, BACKEND, FRONTEND6, BACKEND6
    q = udp_fragments(f, b, 5353, 53, 110)
    q6 = udp_fragments(f6, b6, 5353, 53, 310)
    return Case("ct_fragments_same_burst", policies=CT_POLICY, inside=[
        X(q[0], "allow"), X(q[1], "frag"), X(q[2], "frag"),
        X(q6[0], "allow"), X(q6[1], "frag"), X(q6[2], "frag"),
    ])


@case
def ct_same_burst():
    """Packets of a flow that follow its first packet in the same burst are
    part of the tracked flow: judged by policy once, one entry per flow."""
    f, b = FRONTEND, BACKEND
    return Case("ct_same_burst", policies=CT_POLICY_L3,
                ct_expect={"created": 3, "entries": 3}, inside=[
        X(udp(f, b, 5353, 53), "allow"),
        X(udp(f, b, 5353, 53, payload=b"second"), "ct"),
        X(ping(f, b, ident=5, seq=1), "allow"),
        X(ping(f, b, ident=5, seq=2), "ct"),
        X(tcp(f, b, 40040, 80, "S"), "allow"),
        X(tcp(f, b, 40040, 80, "S"), "ct", "a retransmitted SYN"),
    ])


@case
def ct_table_full():
    """conntrack.max_entries 2: a third allowed new flow is dropped
    (ct_table_full, counted in conntrack.full) and gets no entry; the
    tracked flows go on."""
    f, b = FRONTEND, BACKEND
    return sequence("ct_table_full", policies=CT_POLICY, conntrack="max_entries: 2",
                    ct_expect={"created": 2, "entries": 2}, steps=[
        I(tcp(f, b, 40050, 80), "allow"),
        I(tcp(f, b, 40051, 80), "allow"),
        I(tcp(f, b, 40052, 80), "ct_table_full"),
        I(udp(f, b, 5353, 53), "ct_table_full"),
        I(tcp(f, b, 40053, 81), "ingress", "denied: not a flow, not 'full'"),
        O(tcp(b, f, 80, 40050, "SA"), "ct"),
        O(tcp(b, f, 80, 40052, "SA"), "ct_tcp_not_syn", "the dropped SYN got no entry"),
        I(tcp(f, b, 40050, 80, "A", seq=1001), "ct"),
        O(tcp(b, f, 80, 40051, "SA"), "ct"),
    ])


@case
def ct_fragment_table_full():
    """conntrack.max_fragments 1: the first fragment of a second datagram,
    allowed by policy, is dropped (fragment_table_full) and its later
    fragments with it; the first datagram's fragments pass."""
    f, b = FRONTEND, BACKEND
    one = udp_fragments(f, b, 5353, 53, 120)
    two = udp_fragments(f, b, 5354, 53, 121)
    # Dropped for want of a record, the second datagram's first fragment
    # leaves nothing behind: no flow entry, and it is not counted as allowed
    # (like a new flow dropped with ct_table_full).
    return sequence("ct_fragment_table_full", policies=CT_POLICY,
                    conntrack="max_fragments: 1",
                    ct_expect={"created": 1, "entries": 1}, steps=[
        I(one[0], "allow"),
        I(two[0], "fragment_table_full"),
        I(one[1], "frag"),
        I(two[1], "fragment_untracked"),
        I(one[2], "frag"),
        I(two[2], "fragment_untracked"),
    ])


@case
def ct_tcp_pickup():
    """conntrack.tcp_pickup: a mid-stream TCP packet the policy allows opens
    an established flow (its replies pass); one it denies is denied."""
    f, b = FRONTEND, BACKEND
    return sequence("ct_tcp_pickup", policies=CT_POLICY,
                    conntrack="tcp_pickup: true\ntimeouts: {tcp_established: 600}",
                    ct_expect={"created": 1, "entries": 1}, steps=[
        I(tcp(f, b, 40060, 80, "PA", b"mid-stream", seq=777), "allow"),
        O(tcp(b, f, 80, 40060, "PA", b"answer", seq=888), "ct"),
        I(tcp(f, b, 40060, 80, "A", seq=787), "ct"),
        I(tcp(f, b, 40061, 81, "PA", b"denied port", seq=1), "ingress"),
        O(tcp(b, f, 80, 40062, "PA", b"from the server", seq=1), "egress",
          "picked up only if the policy allows it"),
    ])


# ---------------------------------------------------------------- --check-config

def check_config_cases():
    return [("check_config_ok", check_config_ok),
            ("check_config_unknown_key", check_config_unknown_key),
            ("check_config_unsupported_policy_field", check_config_policy_field),
            ("exit_status_usage", exit_status_usage),
            ("exit_status_runtime", exit_status_runtime)]


def run_check(meshgate, cfg):
    proc = subprocess.run([meshgate, "-c", cfg, "--check-config"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, errors="replace", timeout=60)
    return proc


def position_of(path, needle):
    """1-based (line, column) of the first @needle in the file at @path."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            col = line.find(needle)
            if col >= 0:
                return n, col + 1
    raise ValueError("%s not in %s" % (needle, path))


def expect_error_at(proc, path, line, col):
    """The run failed with exit status 1 and "path:line:col: message" on
    stderr (the path may be spelt differently, e.g. "dir//file")."""
    errs = []
    if proc.returncode != 1:
        errs.append("exit status %d, expected 1" % proc.returncode)
    want = (os.path.realpath(path), line, col)
    found = [(os.path.realpath(m.group(1)), int(m.group(2)), int(m.group(3)))
             for m in re.finditer(r"^(\S+?):(\d+):(\d+): \S", proc.stderr, re.M)]
    if want not in found:
        errs.append("stderr lacks %s:%d:%d: ...: %r" % (path, line, col,
                                                       proc.stderr.strip()[:400]))
    if "config OK" in proc.stdout:
        errs.append("printed 'config OK' for a bad config")
    return errs


def check_config_ok(meshgate, prefix):
    c = allowed_tcp()
    with tempfile.TemporaryDirectory(prefix="mgcheck-") as d:
        for n in ("inside-in.pcap", "outside-in.pcap"):
            mgtest.empty_pcap(os.path.join(d, n))
        cfg = mgtest.write_config(d, prefix, c)
        proc = run_check(meshgate, cfg)
        errs = []
        if proc.returncode != 0:
            errs.append("exit status %d: %s" % (proc.returncode, proc.stderr.strip()[:400]))
        if "config OK" not in proc.stdout:
            errs.append("stdout lacks 'config OK': %r" % proc.stdout[:200])
        if os.path.exists(os.path.join(d, "outside-out.pcap")):
            errs.append("--check-config opened the ports")
        return errs


def check_config_unknown_key(meshgate, prefix):
    c = allowed_tcp()
    with tempfile.TemporaryDirectory(prefix="mgcheck-") as d:
        cfg = mgtest.write_config(d, prefix, c)
        with open(cfg) as f:
            text = f.read()
        text = text.replace("  non_ip: forward\n", "  non_ip: forward\n  colour: blue\n")
        with open(cfg, "w") as f:
            f.write(text)
        line, col = position_of(cfg, "colour")
        return expect_error_at(run_check(meshgate, cfg), cfg, line, col)


def check_config_policy_field(meshgate, prefix):
    pol = {"frontend.yaml": cnp("frontend-fqdn", "prod", "app: frontend", """\
  egressDeny:
    - toEndpoints:
        - matchLabels: {app: backend}
    - toFQDNs:
        - matchName: example.com
""")}
    c = Case("check", policies=pol)
    with tempfile.TemporaryDirectory(prefix="mgcheck-") as d:
        cfg = mgtest.write_config(d, prefix, c)
        pfile = os.path.join(d, "policies", "frontend.yaml")
        line, col = position_of(pfile, "toFQDNs")
        return expect_error_at(run_check(meshgate, cfg), pfile, line, col)


def exit_status_usage(meshgate, prefix):
    """An unknown option is a usage error: exit status 2."""
    proc = subprocess.run([meshgate, "--no-such-option"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, errors="replace", timeout=60)
    if proc.returncode != 2:
        return ["exit status %d, expected 2: %r" % (proc.returncode, proc.stderr.strip()[:300])]
    return []


def exit_status_runtime(meshgate, prefix):
    """A valid config whose port cannot be opened (its rx_pcap file does
    not exist) is a runtime failure: exit status 3, and no hang."""
    c = allowed_tcp()
    with tempfile.TemporaryDirectory(prefix="mgrt-") as d:
        mgtest.empty_pcap(os.path.join(d, "outside-in.pcap"))
        cfg = mgtest.write_config(d, prefix, c)  # inside-in.pcap is missing
        try:
            proc = subprocess.run([meshgate, "-c", cfg, "--idle-exit", "500"],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace", timeout=mgtest.DAEMON_TIMEOUT)
        finally:
            mgtest.cleanup_runtime_dir(prefix)
        if proc.returncode != 3:
            return ["exit status %d, expected 3: %r"
                    % (proc.returncode, proc.stderr.strip()[-300:])]
        return []


# ---------------------------------------------------------------- harness self-check

def harness_detects_mismatch(res, c):
    """The comparison must notice one flipped byte, one missing frame, one
    extra frame and one wrong counter (guards against a harness that passes
    everything)."""
    errs = []
    if mgtest.check_case(c, res):
        return ["the unmodified case does not pass, cannot check the harness"]
    fwd = [x for x in c.inside if x.forwarded]
    victim = fwd[len(fwd) // 2]
    orig = victim.frame
    victim.frame = orig[:30] + bytes([orig[30] ^ 0x01]) + orig[31:]
    if not mgtest.compare_frames("outside", [x.frame for x in fwd], res.out["outside"]):
        errs.append("a flipped byte went unnoticed")
    victim.frame = orig
    exp = [x.frame for x in fwd]
    if not mgtest.compare_frames("outside", exp[:-1], res.out["outside"]):
        errs.append("an extra frame went unnoticed")
    if not mgtest.compare_frames("outside", exp + [exp[0]], res.out["outside"]):
        errs.append("a missing frame went unnoticed")
    if not mgtest.compare_frames("outside", exp[::-1], res.out["outside"]):
        errs.append("reordering went unnoticed")
    want = mgtest.expected_stats(c)
    want["drops"]["ipv4_bad_ihl"] += 1
    if not mgtest.compare_stats(want, res.stats):
        errs.append("a wrong drop counter went unnoticed")
    want = mgtest.expected_stats(c)
    want["verdicts"]["allowed"] -= 1
    if not mgtest.compare_stats(want, res.stats):
        errs.append("a wrong verdict counter went unnoticed")
    return errs


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--meshgate", default=os.environ.get(
        "MESHGATE", os.path.join(mgtest.ROOT, "build", "app", "meshgate", "meshgate")))
    ap.add_argument("--jobs", "-j", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--tag", default="n", help="distinguishes EAL file prefixes of runs")
    ap.add_argument("--keep", action="store_true", help="keep each case's folder")
    ap.add_argument("cases", nargs="*", help="run only these (names without pcap/)")
    args = ap.parse_args()

    meshgate = os.path.abspath(args.meshgate)
    if not os.access(meshgate, os.X_OK):
        print("FAIL: pcap: no daemon at %s (build it first)" % meshgate)
        return 1

    builders = []
    for fn in CASES:
        c = fn()
        c.doc = fn.__doc__ or ""
        builders.append(c)
    checks = check_config_cases()
    want = set(args.cases)
    if want:
        builders = [c for c in builders if c.name in want]
        checks = [(n, fn) for n, fn in checks if n in want]

    def prefix(i):
        return "mgt%d%s%d" % (os.getpid(), args.tag, i)

    def run(i, c):
        try:
            res = mgtest.run_daemon(meshgate, c, prefix(i), keep=args.keep)
            return res, mgtest.check_case(c, res)
        except Exception:
            return None, ["harness error: " + traceback.format_exc()]

    failed = 0

    def report(name, errs, res=None, doc=""):
        nonlocal failed
        if not errs:
            print("PASS: pcap/%s" % name, flush=True)
            return
        failed += 1
        print("FAIL: pcap/%s: %s" % (name, errs[0]))
        if doc:
            print("  case: %s" % " ".join(doc.split()))
        for e in errs[1:]:
            print("  " + e)
        if res is not None and (res.stderr or res.stdout):
            tail = (res.stderr or "").strip().splitlines()[-15:]
            for line in tail:
                print("  | " + line)
            if res.stdout.strip():
                print("  stdout: " + " / ".join(res.stdout.strip().splitlines()[-12:]))
        sys.stdout.flush()

    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futs = [pool.submit(run, i, c) for i, c in enumerate(builders)]
        for c, fut in zip(builders, futs):
            res, errs = fut.result()
            results[c.name] = (c, res)
            report(c.name, errs, res, c.doc)

    if "allowed_tcp" in results and results["allowed_tcp"][1] is not None:
        c, res = results["allowed_tcp"]
        if not res.error:
            report("harness_detects_mismatch", harness_detects_mismatch(res, c))

    for i, (name, fn) in enumerate(checks):
        try:
            errs = fn(meshgate, prefix(1000 + i))
        except Exception:
            errs = ["harness error: " + traceback.format_exc()]
        report(name, errs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
