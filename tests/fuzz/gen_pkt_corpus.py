#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Write the seed corpus of the frame-parser fuzz target (fuzz_pkt).

One small binary Ethernet frame per file, named after what it exercises:
every protocol the parser knows, VLAN and QinQ, IPv4 options and
fragments, each IPv6 extension header, and one or more frames per drop
reason the parser can return. The files are committed; rerun this script
(with Debian's python3-scapy) only to change the seeds:

    /usr/bin/python3 tests/fuzz/gen_pkt_corpus.py [outdir]
"""
import os
import sys

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.ipsec import AH
from scapy.layers.inet6 import (
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_Redirect,
    ICMPv6ND_RS,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.layers.sctp import SCTP
from scapy.packet import Raw

E = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
V4 = dict(src="10.0.0.1", dst="10.0.0.2")
V6 = dict(src="fd00::1", dst="fd00::2")


def b(pkt):
    return bytes(pkt)


def setb(data, off, *vals):
    """Return @data with bytes at @off replaced by @vals."""
    d = bytearray(data)
    for i, v in enumerate(vals):
        d[off + i] = v
    return bytes(d)


def set16(data, off, v):
    return setb(data, off, (v >> 8) & 0xFF, v & 0xFF)


def ip6_plen(data, l3_off, plen):
    return set16(data, l3_off + 4, plen)


def seeds():
    s = {}
    tcp4 = b(E / IP(**V4) / TCP(sport=1234, dport=80, flags="S"))
    udp4 = b(E / IP(**V4) / UDP(sport=5353, dport=53) / b"q")

    # ---- well-formed frames ----
    s["ipv4_tcp"] = tcp4
    s["ipv4_tcp_options"] = b(
        E / IP(**V4) / TCP(sport=40000, dport=443, flags="SA", options=[("MSS", 1460), ("WScale", 7)])
    )
    s["ipv4_udp"] = udp4
    s["ipv4_sctp"] = b(E / IP(**V4) / SCTP(sport=3868, dport=3869))
    s["ipv4_icmp_echo"] = b(E / IP(**V4) / ICMP(type=8, id=0x4242, seq=1))
    s["ipv4_icmp_unreach"] = b(E / IP(**V4) / ICMP(type=3, code=1) / IP(**V4) / UDP())
    s["ipv4_gre"] = b(E / IP(proto=47, **V4) / Raw(b"\x00\x00\x08\x00"))
    s["ipv4_ip_options"] = b(E / IP(options=b"\x01\x01\x01\x00" * 3, **V4) / UDP(sport=1, dport=2))
    s["ipv4_padding"] = b(E / IP(**V4) / UDP(sport=7, dport=9)) + b"\x00" * 18
    s["ipv4_frag_first"] = b(E / IP(flags="MF", id=77, **V4) / UDP(sport=1000, dport=53) / (b"x" * 32))
    s["ipv4_frag_nonfirst"] = b(E / IP(frag=185, id=77, proto=17, **V4) / Raw(b"y" * 20))
    s["vlan_ipv4_tcp"] = b(E / Dot1Q(vlan=100, prio=1) / IP(**V4) / TCP(sport=1, dport=22))
    s["qinq_ipv6_udp"] = b(E / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IPv6(**V6) / UDP(sport=53, dport=5353))
    s["qinq_8100_8100"] = b(E / Dot1Q(vlan=1) / Dot1Q(vlan=2) / IP(**V4) / ICMP())
    s["arp"] = b(E / ARP(psrc="10.0.0.1", pdst="10.0.0.2"))
    s["vlan_arp"] = b(E / Dot1Q(vlan=5) / ARP())
    s["non_ip_lldp"] = b(Ether(src="02:00:00:00:00:01", dst="01:80:c2:00:00:0e", type=0x88CC) / Raw(b"\x02\x07\x04" + b"\x00" * 43))
    s["ipv6_tcp"] = b(E / IPv6(**V6) / TCP(sport=1234, dport=80, flags="PA") / b"GET /")
    s["ipv6_udp"] = b(E / IPv6(**V6) / UDP(sport=53, dport=5353) / b"dns")
    s["ipv6_sctp"] = b(E / IPv6(**V6) / SCTP(sport=1, dport=2))
    s["ipv6_icmp6_echo"] = b(E / IPv6(**V6) / ICMPv6EchoRequest(id=0x4242, seq=1))
    s["ipv6_icmp6_echo_reply"] = b(E / IPv6(**V6) / ICMPv6EchoReply(id=0x4242, seq=1))
    s["ipv6_nd_rs"] = b(E / IPv6(**V6) / ICMPv6ND_RS())
    s["ipv6_nd_ra"] = b(E / IPv6(**V6) / ICMPv6ND_RA())
    s["ipv6_nd_ns"] = b(E / IPv6(**V6) / ICMPv6ND_NS(tgt="fd00::2"))
    s["ipv6_nd_na"] = b(E / IPv6(**V6) / ICMPv6ND_NA(tgt="fd00::2"))
    s["ipv6_nd_redirect"] = b(E / IPv6(**V6) / ICMPv6ND_Redirect(tgt="fd00::3", dst="fd00::4"))
    s["ipv6_hbh_tcp"] = b(E / IPv6(**V6) / IPv6ExtHdrHopByHop() / TCP(sport=5, dport=6))
    s["ipv6_routing_udp"] = b(E / IPv6(**V6) / IPv6ExtHdrRouting(addresses=["fd00::9"]) / UDP())
    s["ipv6_dstopt_icmp6"] = b(E / IPv6(**V6) / IPv6ExtHdrDestOpt() / ICMPv6EchoRequest())
    s["ipv6_ah_udp"] = b(E / IPv6(**V6) / AH(nh=17, payloadlen=4, spi=1, icv=b"\x00" * 12) / UDP(sport=500, dport=4500))
    s["ipv6_frag_first"] = b(E / IPv6(**V6) / IPv6ExtHdrFragment(m=1, id=0x01020304) / UDP() / (b"z" * 24))
    s["ipv6_frag_nonfirst"] = b(E / IPv6(**V6) / IPv6ExtHdrFragment(offset=181, nh=6, id=5) / Raw(b"w" * 16))
    s["ipv6_long_chain"] = b(
        E
        / IPv6(**V6)
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting()
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrFragment(nh=51)
        / AH(nh=60, payloadlen=2, icv=b"\x00" * 4)
        / IPv6ExtHdrDestOpt()
        / TCP()
    )
    # mobility (135), HIP (139), shim6 (140) as raw generic headers
    for nh in (135, 139, 140):
        s["ipv6_ext_%d" % nh] = b(E / IPv6(nh=nh, **V6) / Raw(bytes([17, 0]) + b"\x00" * 6) / UDP())
    s["ipv6_no_next"] = b(E / IPv6(nh=59, **V6))
    s["ipv6_esp"] = b(E / IPv6(nh=50, **V6) / Raw(b"\x00\x00\x00\x01\x00\x00\x00\x01" + b"e" * 16))

    # ---- one or more per drop reason ----
    s["drop_l2_trunc"] = tcp4[:13]
    s["drop_vlan_trunc"] = b(E / Dot1Q(vlan=1) / IP(**V4))[:16]
    s["drop_vlan_depth"] = b(E / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / IP(**V4) / UDP())
    s["drop_ip4_trunc"] = tcp4[:14 + 19]
    s["drop_ip4_version"] = setb(tcp4, 14, 0x65)
    s["drop_ip4_ihl"] = setb(tcp4, 14, 0x44)
    s["drop_ip4_opt_trunc"] = setb(udp4, 14, 0x4F)
    s["drop_ip4_totlen"] = set16(tcp4, 16, 19)
    s["drop_ip4_len_frame"] = set16(tcp4, 16, 41)
    s["drop_ip6_trunc"] = b(E / IPv6(**V6))[:14 + 39]
    s["drop_ip6_version"] = setb(s["ipv6_tcp"], 14, 0x45)
    s["drop_ip6_len_frame"] = ip6_plen(s["ipv6_udp"], 14, 12)
    s["drop_ip6_jumbo"] = ip6_plen(s["ipv6_hbh_tcp"], 14, 0)
    s["drop_ip6_ext_trunc"] = setb(s["ipv6_routing_udp"], 14 + 40 + 1, 9)
    chain = E / IPv6(**V6)
    for _ in range(9):
        chain = chain / IPv6ExtHdrDestOpt()
    s["drop_ip6_ext_chain"] = b(chain / UDP())
    s["drop_ip6_ext_order"] = b(E / IPv6(**V6) / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / UDP())
    s["drop_tcp_trunc"] = b(E / IP(proto=6, **V4) / Raw(b"\x00" * 12))
    s["drop_tcp_doff"] = setb(tcp4, 34 + 12, 0x40)
    s["drop_tcp_doff_past"] = setb(tcp4, 34 + 12, 0xF0)
    s["drop_udp_trunc"] = b(E / IP(proto=17, **V4) / Raw(b"\x00" * 7))
    s["drop_sctp_trunc"] = b(E / IPv6(nh=132, **V6) / Raw(b"\x00" * 11))
    s["drop_icmp_trunc"] = b(E / IP(proto=1, **V4) / Raw(b"\x08\x00\x00"))
    s["drop_icmp6_trunc"] = b(E / IPv6(nh=58, **V6) / Raw(b"\x80\x00\x00\x00"))
    s["drop_frag_first_trunc"] = b(E / IP(flags="MF", proto=6, **V4) / Raw(b"\x00" * 8))
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "pkt")
    os.makedirs(out, exist_ok=True)
    all_seeds = seeds()
    for name, data in sorted(all_seeds.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(all_seeds), out))


if __name__ == "__main__":
    main()
