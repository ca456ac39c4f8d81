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

There is no connection tracking yet: a reply is judged like any packet, so
the policies restrict the servers' ingress and leave the replies' path open.
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

from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import (  # noqa: E402
    ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_RS,
    ICMPv6NDOptSrcLLAddr, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether  # noqa: E402
from scapy.layers.sctp import SCTP, SCTPChunkData  # noqa: E402
from scapy.packet import Raw  # noqa: E402

import mgtest  # noqa: E402
from mgtest import Case, X  # noqa: E402

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


def tcp(src, dst, sport, dport, flags="S", payload=b"", tags=(), seq=1000):
    return bytes(eth(src, dst, tags) / ip(src, dst) /
                 TCP(sport=sport, dport=dport, flags=flags, seq=seq) / payload)


def udp(src, dst, sport, dport, payload=b"x" * 8, tags=()):
    return bytes(eth(src, dst, tags) / ip(src, dst) / UDP(sport=sport, dport=dport) / payload)


def sctp(src, dst, sport, dport):
    return bytes(eth(src, dst) / ip(src, dst) / SCTP(sport=sport, dport=dport, tag=0x1234) /
                 SCTPChunkData(tsn=1, stream_id=0, stream_seq=0, data=b"hello"))


def ping(src, dst, reply=False, seq=1):
    if ":" in src:
        icmp = ICMPv6EchoReply(id=7, seq=seq) if reply else ICMPv6EchoRequest(id=7, seq=seq)
        return bytes(eth(src, dst) / IPv6(src=src, dst=dst) / icmp / (b"p" * 16))
    return bytes(eth(src, dst) / IP(src=src, dst=dst) /
                 ICMP(type=0 if reply else 8, id=7, seq=seq) / (b"p" * 16))


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
    """An allowed TCP exchange passes unchanged in both directions."""
    return Case("allowed_tcp", policies=BACKEND_TCP80, inside=[
        X(tcp(FRONTEND, BACKEND, 40000, 80, "S"), "allow"),
        X(tcp(FRONTEND, BACKEND, 40000, 80, "A", seq=1001), "allow"),
        X(tcp(FRONTEND, BACKEND, 40000, 80, "PA", b"GET / HTTP/1.1\r\n\r\n", seq=1001), "allow"),
        X(tcp(FRONTEND, BACKEND, 40000, 80, "FA", seq=1019), "allow"),
    ], outside=[
        X(tcp(BACKEND, FRONTEND, 80, 40000, "SA"), "allow"),
        X(tcp(BACKEND, FRONTEND, 80, 40000, "PA", b"HTTP/1.1 200 OK\r\n" + b"z" * 900), "allow"),
        X(tcp(BACKEND, FRONTEND, 80, 40000, "FA"), "allow"),
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
    return Case("denied_ingress", policies=BACKEND_TCP80, inside=[
        X(tcp(FRONTEND, BACKEND, 40001, 81), "ingress", "port not allowed"),
        X(tcp(FRONTEND, BACKEND, 40001, 80), "allow"),
        X(udp(FRONTEND, BACKEND, 40001, 80), "ingress", "protocol not allowed"),
        X(tcp(FRONTEND, BACKEND, 40002, 443), "ingress"),
    ], outside=[
        X(tcp(DB, BACKEND, 40003, 80), "ingress", "db is not frontend"),
        X(tcp(BACKEND, FRONTEND, 80, 40001, "SA"), "allow"),
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
    return Case("denied_egress", policies=pol, inside=[
        X(tcp(FRONTEND, DB, 40000, 5432), "egress"),
        X(tcp(FRONTEND, BACKEND, 40000, 80), "allow"),
        X(tcp(FRONTEND, BACKEND, 40000, 443), "egress"),
        X(tcp(FRONTEND, WORLD_A, 40000, 80), "egress", "world is not backend"),
        X(ping(FRONTEND, BACKEND), "egress"),
    ], outside=[
        X(tcp(DB, FRONTEND, 5432, 40000, "SA"), "allow", "frontend's ingress is open"),
        X(tcp(BACKEND, FRONTEND, 80, 40000, "SA"), "allow"),
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
    return Case("udp", policies=pol, inside=[
        X(udp(FRONTEND, BACKEND, 5353, 53), "allow"),
        X(tcp(FRONTEND, BACKEND, 5353, 53), "ingress"),
        X(udp(FRONTEND, BACKEND, 5353, 54), "ingress"),
        X(udp(FRONTEND6, BACKEND6, 5353, 53, payload=b"q" * 40), "allow"),
    ], outside=[
        X(udp(BACKEND, FRONTEND, 53, 5353, payload=b"r" * 120), "allow"),
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
    return Case("sctp", policies=pol, inside=[
        X(sctp(FRONTEND, BACKEND, 5000, 9000), "allow"),
        X(sctp(FRONTEND, BACKEND, 5000, 9001), "ingress"),
        X(tcp(FRONTEND, BACKEND, 5000, 9000), "ingress"),
        X(udp(FRONTEND, BACKEND, 5000, 9000), "ingress"),
        X(sctp(FRONTEND6, BACKEND6, 5000, 9000), "allow"),
    ], outside=[
        X(sctp(BACKEND, FRONTEND, 9000, 5000), "allow"),
    ])


@case
def icmp_l3_only():
    """A rule with a peer and no toPorts allows every protocol, ICMP included."""
    pol = {"backend.yaml": cnp("backend-l3", "prod", "app: backend", """\
  ingress:
    - fromEndpoints:
        - matchLabels: {app: frontend}
""")}
    return Case("icmp_l3_only", policies=pol, inside=[
        X(ping(FRONTEND, BACKEND), "allow"),
        X(ping(FRONTEND6, BACKEND6), "allow"),
        X(tcp(FRONTEND, BACKEND, 40000, 12345), "allow"),
    ], outside=[
        X(ping(BACKEND, FRONTEND, reply=True), "allow"),
        X(ping(DB, BACKEND), "ingress", "db is not frontend"),
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
    return Case("ipv6_tcp", policies=BACKEND_TCP80, inside=[
        X(tcp(FRONTEND6, BACKEND6, 40000, 80), "allow"),
        X(tcp(FRONTEND6, BACKEND6, 40000, 80, "PA", b"hello over v6", seq=1001), "allow"),
        X(tcp(FRONTEND6, BACKEND6, 40000, 81), "ingress"),
    ], outside=[
        X(tcp(DB6, BACKEND6, 40000, 80), "ingress"),
        X(tcp(BACKEND6, FRONTEND6, 80, 40000, "SA"), "allow"),
    ])


@case
def vlan_qinq():
    """802.1Q, 802.1ad+802.1Q and double 802.1Q frames: verdict from the inner
    packet, allowed frames leave with their tags unchanged."""
    q, ad = 0x8100, 0x88A8
    return Case("vlan_qinq", policies=BACKEND_TCP80, inside=[
        X(tcp(FRONTEND, BACKEND, 40000, 80, tags=[(q, 10)]), "allow"),
        X(tcp(FRONTEND, BACKEND, 40000, 81, tags=[(q, 10)]), "ingress"),
        X(tcp(FRONTEND, BACKEND, 40000, 80, tags=[(ad, 100), (q, 20)]), "allow"),
        X(tcp(FRONTEND, BACKEND, 40000, 22, tags=[(ad, 100), (q, 20)]), "ingress"),
        X(tcp(FRONTEND, BACKEND, 40000, 80, tags=[(q, 30), (q, 40)]), "allow"),
        X(tcp(FRONTEND6, BACKEND6, 40000, 80, tags=[(ad, 100), (q, 20)]), "allow"),
    ], outside=[
        X(tcp(BACKEND, FRONTEND, 80, 40000, "SA", tags=[(q, 10)]), "allow"),
        X(udp(DB, BACKEND, 40000, 80, tags=[(ad, 100), (q, 20)]), "ingress"),
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
    return Case("enforcement_always", enforcement="always", policies=pol, inside=[
        X(tcp(FRONTEND, BACKEND, 40000, 80), "allow"),
        X(tcp(FRONTEND, BACKEND, 40000, 81), "egress"),
        X(tcp(FRONTEND, DB, 40000, 5432), "egress"),
        X(tcp(WORLD_A, WORLD_B, 1000, 80), "egress", "world too is default deny"),
    ], outside=[
        X(tcp(BACKEND, FRONTEND, 80, 40000, "SA"), "egress", "no conntrack, no rule for it"),
        X(tcp(DB, FRONTEND, 5432, 40000), "egress"),
    ])


@case
def world_unknown_ip():
    """An address not in the ipcache is world: a rule naming an endpoint does
    not allow it, and world's own directions are open under enforcement default."""
    return Case("world_unknown_ip", policies=BACKEND_TCP80, inside=[
        X(tcp(WORLD_A, BACKEND, 40000, 80), "ingress"),
        X(tcp(WORLD_A, WORLD_B, 40000, 80), "allow"),
        X(tcp(WORLD6, BACKEND6, 40000, 80), "ingress"),
    ], outside=[
        X(tcp(BACKEND, WORLD_A, 80, 40000, "SA"), "allow"),
        X(tcp(FRONTEND, WORLD_B, 40000, 443), "allow"),
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
    """160 frames in each direction, a deterministic mix of everything: every
    port keeps the order of what it forwards, across bursts."""
    import random
    rnd = random.Random(4242)
    malformed_list = malformed_frames()

    def gen(src, dst, direction):
        out = []
        for i in range(160):
            k = rnd.randrange(10)
            size = rnd.randrange(0, 1200)
            payload = bytes((i + j) & 0xFF for j in range(size))
            if direction == "in":
                if k < 4:
                    out.append(X(tcp(src, dst, 30000 + i, 80, "PA", payload, seq=i), "allow"))
                elif k == 4:
                    out.append(X(tcp(src, dst, 30000 + i, 8080 + i, "S"), "ingress"))
                elif k == 5:
                    out.append(X(udp(DB, dst, 30000 + i, 80, payload), "ingress"))
                elif k == 6:
                    out.append(X(arp(src, dst), "arp"))
                elif k == 7:
                    frame, reason = malformed_list[i % len(malformed_list)]
                    out.append(X(frame, reason))
                elif k == 8:
                    out.append(X(tcp(FRONTEND6, BACKEND6, 30000 + i, 80, "PA", payload), "allow"))
                else:
                    out.append(X(non_ip(src, dst, 0x88B5, 46 + size % 200), "pass_non_ip"))
            else:
                if k < 6:
                    out.append(X(tcp(src, dst, 80, 30000 + i, "PA", payload, seq=i), "allow"))
                elif k < 8:
                    out.append(X(udp(src, WORLD_A, 53, 30000 + i, payload), "allow"))
                elif k == 8:
                    out.append(X(ping(WORLD_B, dst, seq=i), "allow"))
                else:
                    out.append(X(tcp(WORLD_B, src, 30000 + i, 5432), "ingress"))
        return out

    return Case("mixed_burst", policies=BACKEND_TCP80,
                inside=gen(FRONTEND, BACKEND, "in"), outside=gen(BACKEND, FRONTEND, "out"))


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
