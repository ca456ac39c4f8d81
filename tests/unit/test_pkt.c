/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the frame parser. Each test builds its frame byte by byte
 * with the small builders below (Ethernet, VLAN tag, IPv4, IPv6 and its
 * extension headers, TCP/UDP/SCTP/ICMP), patches the IP length fields, then
 * optionally breaks one field, and checks the verdict, the flow key and the
 * offsets. The parser is always handed an exactly sized heap copy of the
 * frame, so a sanitized build catches any read past the end.
 */
#include <stdlib.h>
#include <string.h>

#include "mg_common.h"
#include "mg_pkt.h"
#include "mg_test.h"

/* ---- frame builders ---- */

struct frame {
	uint8_t b[4096];
	uint32_t len;
};

static void
put8(struct frame *f, uint8_t v)
{
	f->b[f->len++] = v;
}

static void
put16(struct frame *f, uint16_t v)
{
	put8(f, (uint8_t)(v >> 8));
	put8(f, (uint8_t)v);
}

static void
put32(struct frame *f, uint32_t v)
{
	put16(f, (uint16_t)(v >> 16));
	put16(f, (uint16_t)v);
}

static void
fill(struct frame *f, uint8_t v, uint32_t n)
{
	memset(f->b + f->len, v, n);
	f->len += n;
}

static void
set16(struct frame *f, uint32_t off, uint16_t v)
{
	f->b[off] = (uint8_t)(v >> 8);
	f->b[off + 1] = (uint8_t)v;
}

static void
eth(struct frame *f, uint16_t et)
{
	static const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};

	f->len = 0;
	memcpy(f->b, macs, sizeof(macs));
	f->len = sizeof(macs);
	put16(f, et);
}

/* The body of a VLAN tag: TCI, then the next ethertype. */
static void
tag(struct frame *f, uint16_t tci, uint16_t et)
{
	put16(f, tci);
	put16(f, et);
}

#define V4_SRC 0x0a000001u /* 10.0.0.1 */
#define V4_DST 0x0a000002u /* 10.0.0.2 */

static const uint8_t v6_src[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t v6_dst[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

/* IPv4 header with IHL @p ihl (options are NOPs); returns its offset. Fix the length later. */
static uint32_t
ip4(struct frame *f, uint8_t proto, unsigned ihl)
{
	uint32_t off = f->len;

	put8(f, (uint8_t)(0x40 | ihl));
	put8(f, 0);
	put16(f, 0); /* total length: ip4_fix */
	put16(f, 0x1234);
	put16(f, 0x4000); /* DF */
	put8(f, 64);
	put8(f, proto);
	put16(f, 0);
	put32(f, V4_SRC);
	put32(f, V4_DST);
	if (ihl > 5)
		fill(f, 0x01, (ihl - 5) * 4);
	return off;
}

static void
ip4_fix(struct frame *f, uint32_t off)
{
	set16(f, off + 2, (uint16_t)(f->len - off));
}

static void
ip4_frag(struct frame *f, uint32_t off, uint16_t field)
{
	set16(f, off + 6, field);
}

static uint32_t
ip6(struct frame *f, uint8_t nh)
{
	uint32_t off = f->len;

	put32(f, 0x60000000);
	put16(f, 0); /* payload length: ip6_fix */
	put8(f, nh);
	put8(f, 64);
	memcpy(f->b + f->len, v6_src, 16);
	memcpy(f->b + f->len + 16, v6_dst, 16);
	f->len += 32;
	return off;
}

static void
ip6_fix(struct frame *f, uint32_t off)
{
	set16(f, off + 4, (uint16_t)(f->len - off - 40));
}

/* Generic extension header of (len8 + 1) * 8 bytes. */
static void
ext6(struct frame *f, uint8_t nh, uint8_t len8)
{
	put8(f, nh);
	put8(f, len8);
	fill(f, 0, ((uint32_t)len8 + 1) * 8 - 2);
}

/* Authentication header of (len4 + 2) * 4 bytes. */
static void
ah6(struct frame *f, uint8_t nh, uint8_t len4)
{
	put8(f, nh);
	put8(f, len4);
	fill(f, 0, ((uint32_t)len4 + 2) * 4 - 2);
}

static void
frag6(struct frame *f, uint8_t nh, uint16_t off_bytes, int more, uint32_t id)
{
	put8(f, nh);
	put8(f, 0);
	put16(f, (uint16_t)((off_bytes & 0xfff8) | (more ? 1 : 0)));
	put32(f, id);
}

static void
tcp(struct frame *f, uint16_t sport, uint16_t dport, uint8_t flags)
{
	put16(f, sport);
	put16(f, dport);
	put32(f, 1000);
	put32(f, 0);
	put8(f, 5 << 4);
	put8(f, flags);
	put16(f, 65535);
	put16(f, 0);
	put16(f, 0);
}

static void
udp(struct frame *f, uint16_t sport, uint16_t dport)
{
	put16(f, sport);
	put16(f, dport);
	put16(f, 8);
	put16(f, 0);
}

static void
sctp(struct frame *f, uint16_t sport, uint16_t dport)
{
	put16(f, sport);
	put16(f, dport);
	put32(f, 0xdeadbeef);
	put32(f, 0);
}

static void
icmp(struct frame *f, uint8_t type, uint8_t code, uint16_t id)
{
	put8(f, type);
	put8(f, code);
	put16(f, 0);
	put16(f, id);
	put16(f, 1);
}

/* Layer 4 of protocol @p proto with the tests' usual ports. */
static void
l4(struct frame *f, uint8_t proto)
{
	switch (proto) {
	case MG_IPPROTO_TCP:
		tcp(f, 1234, 80, 0x02);
		break;
	case MG_IPPROTO_UDP:
		udp(f, 5353, 53);
		break;
	case MG_IPPROTO_SCTP:
		sctp(f, 3868, 3869);
		break;
	case MG_IPPROTO_ICMP:
		icmp(f, 8, 0, 0x4242);
		break;
	case MG_IPPROTO_ICMPV6:
		icmp(f, 128, 0, 0x4242);
		break;
	default:
		fill(f, 0xab, 16);
		break;
	}
}

/* Ethernet + IPv4 (IHL 5) + layer 4 of @p proto. */
static void
mk4(struct frame *f, uint8_t proto)
{
	uint32_t off;

	eth(f, MG_ETH_P_IPV4);
	off = ip4(f, proto, 5);
	l4(f, proto);
	ip4_fix(f, off);
}

/* Ethernet + IPv6 + layer 4 of @p proto. */
static void
mk6(struct frame *f, uint8_t proto)
{
	uint32_t off;

	eth(f, MG_ETH_P_IPV6);
	off = ip6(f, proto);
	l4(f, proto);
	ip6_fix(f, off);
}

/* Parse an exactly sized heap copy, so sanitizers see any over-read. */
static enum mg_drop_reason
parse_n(const struct frame *f, uint32_t len, struct mg_pkt_info *pi)
{
	uint8_t *copy = malloc(len ? len : 1);
	enum mg_drop_reason r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
	memcpy(copy, f->b, len);
	memset(pi, 0xa5, sizeof(*pi)); /* garbage the parser must overwrite */
	r = mg_pkt_parse(copy, len, pi);
	free(copy);
	return r;
}

static enum mg_drop_reason
parse(const struct frame *f, struct mg_pkt_info *pi)
{
	return parse_n(f, f->len, pi);
}

static int
is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void
check_v4_addrs(const struct mg_pkt_info *pi)
{
	static const uint8_t s[4] = {10, 0, 0, 1}, d[4] = {10, 0, 0, 2};

	CU_ASSERT_EQUAL(pi->key.family, MG_AF_INET);
	CU_ASSERT_EQUAL(memcmp(pi->key.src, s, 4), 0);
	CU_ASSERT_EQUAL(memcmp(pi->key.dst, d, 4), 0);
	CU_ASSERT_TRUE(is_zero(pi->key.src + 4, 12));
	CU_ASSERT_TRUE(is_zero(pi->key.dst + 4, 12));
}

static void
check_v6_addrs(const struct mg_pkt_info *pi)
{
	CU_ASSERT_EQUAL(pi->key.family, MG_AF_INET6);
	CU_ASSERT_EQUAL(memcmp(pi->key.src, v6_src, 16), 0);
	CU_ASSERT_EQUAL(memcmp(pi->key.dst, v6_dst, 16), 0);
}

/* ---- IPv4 ---- */

static void
test_ipv4_tcp(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_TCP);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.cls, MG_PKT_IPV4);
	CU_ASSERT_EQUAL(pi.ethertype, MG_ETH_P_IPV4);
	CU_ASSERT_EQUAL(pi.nvlan, 0);
	check_v4_addrs(&pi);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_TCP);
	CU_ASSERT_EQUAL(pi.key.sport, 1234);
	CU_ASSERT_EQUAL(pi.key.dport, 80);
	CU_ASSERT_EQUAL(pi.key.icmp_type, 0);
	CU_ASSERT_EQUAL(pi.key.icmp_code, 0);
	CU_ASSERT_EQUAL(pi.tcp_flags, 0x02);
	CU_ASSERT_EQUAL(pi.has_l4, 1);
	CU_ASSERT_EQUAL(pi.l3_off, 14);
	CU_ASSERT_EQUAL(pi.l4_off, 34);
	CU_ASSERT_EQUAL(pi.l3_len, 40);
	CU_ASSERT_EQUAL(pi.ip_id, 0x1234);
	CU_ASSERT_EQUAL(pi.frag, 0); /* DF alone is not a fragment */
	CU_ASSERT_EQUAL(pi.frag_off, 0);
}

static void
test_ipv4_udp(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_UDP);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	check_v4_addrs(&pi);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_UDP);
	CU_ASSERT_EQUAL(pi.key.sport, 5353);
	CU_ASSERT_EQUAL(pi.key.dport, 53);
	CU_ASSERT_EQUAL(pi.has_l4, 1);
	CU_ASSERT_EQUAL(pi.l4_off, 34);
	CU_ASSERT_EQUAL(pi.l3_len, 28);
	CU_ASSERT_EQUAL(pi.tcp_flags, 0);
}

static void
test_ipv4_sctp(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_SCTP);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_SCTP);
	CU_ASSERT_EQUAL(pi.key.sport, 3868);
	CU_ASSERT_EQUAL(pi.key.dport, 3869);
	CU_ASSERT_EQUAL(pi.has_l4, 1);
	CU_ASSERT_EQUAL(pi.l3_len, 32);
}

static void
test_ipv4_icmp_echo(void)
{
	struct frame f;
	struct mg_pkt_info pi;
	uint32_t off;

	mk4(&f, MG_IPPROTO_ICMP);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_ICMP);
	CU_ASSERT_EQUAL(pi.key.icmp_type, 8);
	CU_ASSERT_EQUAL(pi.key.icmp_code, 0);
	CU_ASSERT_EQUAL(pi.key.sport, 0x4242);
	CU_ASSERT_EQUAL(pi.key.dport, 0);
	CU_ASSERT_EQUAL(pi.has_l4, 1);

	/* echo reply carries the identifier too */
	eth(&f, MG_ETH_P_IPV4);
	off = ip4(&f, MG_IPPROTO_ICMP, 5);
	icmp(&f, 0, 0, 0x0101);
	ip4_fix(&f, off);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.key.icmp_type, 0);
	CU_ASSERT_EQUAL(pi.key.sport, 0x0101);
}

static void
test_ipv4_icmp_other(void)
{
	struct frame f;
	struct mg_pkt_info pi;
	uint32_t off;

	/* destination unreachable: no identifier, bytes 4-5 are not a port */
	eth(&f, MG_ETH_P_IPV4);
	off = ip4(&f, MG_IPPROTO_ICMP, 5);
	icmp(&f, 3, 1, 0x7777);
	ip4_fix(&f, off);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.key.icmp_type, 3);
	CU_ASSERT_EQUAL(pi.key.icmp_code, 1);
	CU_ASSERT_EQUAL(pi.key.sport, 0);
	CU_ASSERT_EQUAL(pi.has_l4, 1);
}

static void
test_ipv4_unknown_proto(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, 47); /* GRE */
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.cls, MG_PKT_IPV4);
	CU_ASSERT_EQUAL(pi.key.proto, 47);
	CU_ASSERT_EQUAL(pi.has_l4, 0);
	CU_ASSERT_EQUAL(pi.key.sport, 0);
	CU_ASSERT_EQUAL(pi.key.dport, 0);

	/* ICMPv6 inside IPv4 is just an unknown protocol */
	mk4(&f, MG_IPPROTO_ICMPV6);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.has_l4, 0);
	CU_ASSERT_EQUAL(pi.key.icmp_type, 0);
}

static void
test_ipv4_key_zeroed(void)
{
	struct frame f;
	struct mg_pkt_info a, b;

	mk4(&f, MG_IPPROTO_UDP);
	/* parse() fills the info with 0xa5 first: nothing of it may survive */
	CU_ASSERT_EQUAL_FATAL(parse(&f, &a), MG_DROP_NONE);
	CU_ASSERT_TRUE(is_zero(a.key.src + 4, 12));
	CU_ASSERT_TRUE(is_zero(a.key.dst + 4, 12));
	CU_ASSERT_EQUAL(a.key.icmp_type, 0);
	CU_ASSERT_EQUAL(a.key.icmp_code, 0);
	CU_ASSERT_EQUAL(a.vlan[0], 0);
	CU_ASSERT_EQUAL(a.frag_off, 0);
	/* the key compares as a whole: two parses of one frame are identical */
	memset(&b, 0x5a, sizeof(b));
	CU_ASSERT_EQUAL_FATAL(mg_pkt_parse(f.b, f.len, &b), MG_DROP_NONE);
	CU_ASSERT_EQUAL(memcmp(&a.key, &b.key, sizeof(a.key)), 0);
	/* a drop also leaves a zeroed key */
	CU_ASSERT_EQUAL(parse_n(&f, 10, &a), MG_DROP_L2_TRUNC);
	CU_ASSERT_TRUE(is_zero((const uint8_t *)&a.key, sizeof(a.key)));
}

static void
test_ipv4_options(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	for (unsigned ihl = 6; ihl <= 15; ihl++) {
		uint32_t off;

		eth(&f, MG_ETH_P_IPV4);
		off = ip4(&f, MG_IPPROTO_TCP, ihl);
		tcp(&f, 40000, 443, 0x10);
		ip4_fix(&f, off);
		CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
		CU_ASSERT_EQUAL(pi.l4_off, 14 + ihl * 4);
		CU_ASSERT_EQUAL(pi.l3_len, ihl * 4 + 20);
		CU_ASSERT_EQUAL(pi.key.sport, 40000);
		CU_ASSERT_EQUAL(pi.key.dport, 443);
		CU_ASSERT_EQUAL(pi.tcp_flags, 0x10);
	}
}

static void
test_ipv4_padding(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	/* 42-byte frame padded to the 60-byte Ethernet minimum */
	mk4(&f, MG_IPPROTO_UDP);
	fill(&f, 0, 60 - f.len);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.l3_len, 28);
	CU_ASSERT_EQUAL(pi.key.dport, 53);
}

static void
test_ipv4_l4_bound_by_totlen(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	/*
	 * Total length says only 4 bytes of UDP; the frame holds all 8 plus
	 * padding. The padding must not be taken for the rest of the header.
	 */
	mk4(&f, MG_IPPROTO_UDP);
	set16(&f, 14 + 2, 24);
	fill(&f, 0, 20);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_UDP_TRUNC);

	mk4(&f, MG_IPPROTO_TCP);
	set16(&f, 14 + 2, 20 + 19);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_TCP_TRUNC);
}

static void
test_ipv4_frag_first(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_UDP);
	ip4_frag(&f, 14, 0x2000); /* MF, offset 0 */
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.frag, MG_PKT_FRAG_FIRST);
	CU_ASSERT_EQUAL(pi.frag_off, 0);
	CU_ASSERT_EQUAL(pi.ip_id, 0x1234);
	CU_ASSERT_EQUAL(pi.has_l4, 1);
	CU_ASSERT_EQUAL(pi.key.sport, 5353);
	CU_ASSERT_EQUAL(pi.key.dport, 53);
}

static void
test_ipv4_frag_nonfirst(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	/* offset 185 * 8 = 1480, more fragments follow */
	mk4(&f, MG_IPPROTO_UDP);
	ip4_frag(&f, 14, 0x2000 | 185);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.frag, MG_PKT_FRAG_NONFIRST);
	CU_ASSERT_EQUAL(pi.frag_off, 1480);
	CU_ASSERT_EQUAL(pi.ip_id, 0x1234);
	CU_ASSERT_EQUAL(pi.has_l4, 0);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_UDP);
	CU_ASSERT_EQUAL(pi.key.sport, 0);
	CU_ASSERT_EQUAL(pi.key.dport, 0);
	check_v4_addrs(&pi);

	/* last fragment (MF clear), with a payload too short for any header */
	eth(&f, MG_ETH_P_IPV4);
	ip4(&f, MG_IPPROTO_TCP, 5);
	put8(&f, 0xff);
	ip4_fix(&f, 14);
	ip4_frag(&f, 14, 0x1fff);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.frag, MG_PKT_FRAG_NONFIRST);
	CU_ASSERT_EQUAL(pi.frag_off, 0x1fff * 8);
	CU_ASSERT_EQUAL(pi.has_l4, 0);
}

static void
test_ipv4_frag_first_trunc(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	/* a first fragment of 8 bytes cannot hold a TCP header */
	eth(&f, MG_ETH_P_IPV4);
	ip4(&f, MG_IPPROTO_TCP, 5);
	fill(&f, 0, 8);
	ip4_fix(&f, 14);
	ip4_frag(&f, 14, 0x2000);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_TCP_TRUNC);
}

/* ---- IPv4 malformations ---- */

static void
test_drop_ip4_trunc(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_TCP);
	CU_ASSERT_EQUAL(parse_n(&f, 14, &pi), MG_DROP_IP4_TRUNC);
	CU_ASSERT_EQUAL(parse_n(&f, 14 + 19, &pi), MG_DROP_IP4_TRUNC);
	CU_ASSERT_EQUAL(pi.ethertype, MG_ETH_P_IPV4);
}

static void
test_drop_ip4_version(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_TCP);
	f.b[14] = 0x65;
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP4_VERSION);
}

static void
test_drop_ip4_ihl(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		mk4(&f, MG_IPPROTO_TCP);
		f.b[14] = (uint8_t)(0x40 | ihl);
		CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP4_IHL);
	}
}

static void
test_drop_ip4_opt_trunc(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	/* IHL 15 = 60 bytes, frame holds 20 + 8 */
	mk4(&f, MG_IPPROTO_UDP);
	f.b[14] = 0x4f;
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP4_OPT_TRUNC);
	/* options one byte short */
	eth(&f, MG_ETH_P_IPV4);
	ip4(&f, 253, 6);
	ip4_fix(&f, 14);
	CU_ASSERT_EQUAL(parse_n(&f, f.len - 1, &pi), MG_DROP_IP4_OPT_TRUNC);
}

static void
test_drop_ip4_totlen(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_UDP);
	set16(&f, 16, 19);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP4_TOTLEN);
	set16(&f, 16, 0);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP4_TOTLEN);
	/* shorter than header + options */
	eth(&f, MG_ETH_P_IPV4);
	ip4(&f, MG_IPPROTO_UDP, 7);
	udp(&f, 1, 2);
	set16(&f, 16, 24);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP4_TOTLEN);
}

static void
test_drop_ip4_len_frame(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_UDP);
	set16(&f, 16, 29);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP4_LEN_FRAME);
	set16(&f, 16, 0xffff);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP4_LEN_FRAME);
	/* exact fit is fine */
	set16(&f, 16, 28);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_NONE);
}

/* ---- layer-4 malformations ---- */

static void
test_drop_tcp_trunc(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_TCP);
	f.len -= 1;
	ip4_fix(&f, 14);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_TCP_TRUNC);
	mk6(&f, MG_IPPROTO_TCP);
	f.len = 14 + 40;
	ip6_fix(&f, 14);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_TCP_TRUNC);
}

static void
test_drop_tcp_doff(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_TCP);
	f.b[34 + 12] = 4 << 4;
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_TCP_DOFF);
	f.b[34 + 12] = 0;
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_TCP_DOFF);
	/* data offset 6 (24 bytes) with 20 in the packet */
	f.b[34 + 12] = 6 << 4;
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_TCP_DOFF);
	/* ... and with 4 option bytes it is fine */
	put32(&f, 0x01010101);
	ip4_fix(&f, 14);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.has_l4, 1);
	/* options in the frame's padding but beyond the IP length do not count */
	f.b[34 + 12] = 7 << 4;
	fill(&f, 0, 8);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_TCP_DOFF);
}

static void
test_drop_udp_trunc(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_UDP);
	f.len -= 1;
	ip4_fix(&f, 14);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_UDP_TRUNC);
	mk6(&f, MG_IPPROTO_UDP);
	f.len -= 4;
	ip6_fix(&f, 14);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_UDP_TRUNC);
}

static void
test_drop_sctp_trunc(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_SCTP);
	f.len -= 1;
	ip4_fix(&f, 14);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_SCTP_TRUNC);
	mk6(&f, MG_IPPROTO_SCTP);
	f.len -= 4;
	ip6_fix(&f, 14);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_SCTP_TRUNC);
}

static void
test_drop_icmp_trunc(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_ICMP);
	f.len -= 1;
	ip4_fix(&f, 14);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_ICMP_TRUNC);
}

static void
test_drop_icmp6_trunc(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk6(&f, MG_IPPROTO_ICMPV6);
	f.len -= 1;
	ip6_fix(&f, 14);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_ICMP6_TRUNC);
}

/* ---- layer 2 ---- */

static void
test_drop_l2_trunc(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk4(&f, MG_IPPROTO_TCP);
	CU_ASSERT_EQUAL(parse_n(&f, 0, &pi), MG_DROP_L2_TRUNC);
	CU_ASSERT_EQUAL(parse_n(&f, 1, &pi), MG_DROP_L2_TRUNC);
	CU_ASSERT_EQUAL(parse_n(&f, 13, &pi), MG_DROP_L2_TRUNC);
	CU_ASSERT_EQUAL(parse_n(&f, 14, &pi), MG_DROP_IP4_TRUNC);
}

static void
test_vlan_single(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	eth(&f, MG_ETH_P_8021Q);
	tag(&f, 0x2064, MG_ETH_P_IPV4); /* PCP 1, VID 100 */
	ip4(&f, MG_IPPROTO_TCP, 5);
	tcp(&f, 1234, 80, 0x12);
	ip4_fix(&f, 18);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.nvlan, 1);
	CU_ASSERT_EQUAL(pi.vlan[0], 0x2064);
	CU_ASSERT_EQUAL(pi.vlan[1], 0);
	CU_ASSERT_EQUAL(pi.ethertype, MG_ETH_P_IPV4);
	CU_ASSERT_EQUAL(pi.l3_off, 18);
	CU_ASSERT_EQUAL(pi.l4_off, 38);
	CU_ASSERT_EQUAL(pi.key.dport, 80);
	CU_ASSERT_EQUAL(pi.tcp_flags, 0x12);
}

static void
test_vlan_qinq(void)
{
	struct frame f;
	struct mg_pkt_info pi;
	uint32_t off;

	/* 802.1ad outer, 802.1Q inner, IPv6 */
	eth(&f, MG_ETH_P_8021AD);
	tag(&f, 10, MG_ETH_P_8021Q);
	tag(&f, 0xe00a, MG_ETH_P_IPV6);
	off = ip6(&f, MG_IPPROTO_UDP);
	udp(&f, 53, 5353);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.nvlan, 2);
	CU_ASSERT_EQUAL(pi.vlan[0], 10);
	CU_ASSERT_EQUAL(pi.vlan[1], 0xe00a);
	CU_ASSERT_EQUAL(pi.ethertype, MG_ETH_P_IPV6);
	CU_ASSERT_EQUAL(pi.l3_off, 22);
	CU_ASSERT_EQUAL(pi.l4_off, 62);
	CU_ASSERT_EQUAL(pi.key.sport, 53);

	/* two 802.1Q tags are accepted as well */
	eth(&f, MG_ETH_P_8021Q);
	tag(&f, 1, MG_ETH_P_8021Q);
	tag(&f, 2, MG_ETH_P_IPV4);
	off = ip4(&f, MG_IPPROTO_UDP, 5);
	udp(&f, 1, 2);
	ip4_fix(&f, off);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.nvlan, 2);
	CU_ASSERT_EQUAL(pi.vlan[1], 2);
	CU_ASSERT_EQUAL(pi.l3_off, 22);
}

static void
test_drop_vlan_depth(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	eth(&f, MG_ETH_P_8021AD);
	tag(&f, 1, MG_ETH_P_8021Q);
	tag(&f, 2, MG_ETH_P_8021Q);
	tag(&f, 3, MG_ETH_P_IPV4);
	ip4(&f, MG_IPPROTO_UDP, 5);
	udp(&f, 1, 2);
	ip4_fix(&f, 26);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_VLAN_DEPTH);
	/* the third tag is refused even when the frame ends right there */
	CU_ASSERT_EQUAL(parse_n(&f, 22, &pi), MG_DROP_VLAN_DEPTH);
}

static void
test_drop_vlan_trunc(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	eth(&f, MG_ETH_P_8021AD);
	tag(&f, 1, MG_ETH_P_8021Q);
	tag(&f, 2, MG_ETH_P_IPV4);
	for (uint32_t n = 14; n < 18; n++)
		CU_ASSERT_EQUAL(parse_n(&f, n, &pi), MG_DROP_VLAN_TRUNC);
	for (uint32_t n = 18; n < 22; n++)
		CU_ASSERT_EQUAL(parse_n(&f, n, &pi), MG_DROP_VLAN_TRUNC);
	CU_ASSERT_EQUAL(parse_n(&f, 22, &pi), MG_DROP_IP4_TRUNC);
}

static void
test_arp(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	eth(&f, MG_ETH_P_ARP);
	fill(&f, 0, 28);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.cls, MG_PKT_ARP);
	CU_ASSERT_EQUAL(pi.ethertype, MG_ETH_P_ARP);
	CU_ASSERT_EQUAL(pi.l3_off, 14);
	CU_ASSERT_EQUAL(pi.has_l4, 0);
	CU_ASSERT_EQUAL(pi.key.family, 0);

	/* in a VLAN */
	eth(&f, MG_ETH_P_8021Q);
	tag(&f, 7, MG_ETH_P_ARP);
	fill(&f, 0, 28);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.cls, MG_PKT_ARP);
	CU_ASSERT_EQUAL(pi.l3_off, 18);
	CU_ASSERT_EQUAL(pi.vlan[0], 7);
}

static void
test_non_ip(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	eth(&f, 0x88cc); /* LLDP */
	fill(&f, 0, 46);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.cls, MG_PKT_NON_IP);
	CU_ASSERT_EQUAL(pi.ethertype, 0x88cc);
	CU_ASSERT_EQUAL(pi.has_l4, 0);
	/* a bare Ethernet header of some other type is fine too */
	CU_ASSERT_EQUAL(parse_n(&f, 14, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.cls, MG_PKT_NON_IP);
	/* 802.3 length field */
	set16(&f, 12, 46);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.cls, MG_PKT_NON_IP);
}

/* ---- IPv6 ---- */

static void
test_ipv6_tcp(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk6(&f, MG_IPPROTO_TCP);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.cls, MG_PKT_IPV6);
	CU_ASSERT_EQUAL(pi.ethertype, MG_ETH_P_IPV6);
	check_v6_addrs(&pi);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_TCP);
	CU_ASSERT_EQUAL(pi.key.sport, 1234);
	CU_ASSERT_EQUAL(pi.key.dport, 80);
	CU_ASSERT_EQUAL(pi.tcp_flags, 0x02);
	CU_ASSERT_EQUAL(pi.has_l4, 1);
	CU_ASSERT_EQUAL(pi.l3_off, 14);
	CU_ASSERT_EQUAL(pi.l4_off, 54);
	CU_ASSERT_EQUAL(pi.l3_len, 60);
	CU_ASSERT_EQUAL(pi.frag, 0);
	CU_ASSERT_EQUAL(pi.ip_id, 0);
}

static void
test_ipv6_udp(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk6(&f, MG_IPPROTO_UDP);
	fill(&f, 0, 10); /* padding after the packet */
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	check_v6_addrs(&pi);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_UDP);
	CU_ASSERT_EQUAL(pi.key.sport, 5353);
	CU_ASSERT_EQUAL(pi.key.dport, 53);
	CU_ASSERT_EQUAL(pi.l3_len, 48);
}

static void
test_ipv6_sctp(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk6(&f, MG_IPPROTO_SCTP);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_SCTP);
	CU_ASSERT_EQUAL(pi.key.sport, 3868);
	CU_ASSERT_EQUAL(pi.has_l4, 1);
}

static void
test_ipv6_icmp6_echo(void)
{
	struct frame f;
	struct mg_pkt_info pi;
	uint32_t off;

	mk6(&f, MG_IPPROTO_ICMPV6);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.cls, MG_PKT_IPV6);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_ICMPV6);
	CU_ASSERT_EQUAL(pi.key.icmp_type, 128);
	CU_ASSERT_EQUAL(pi.key.sport, 0x4242);
	CU_ASSERT_EQUAL(pi.has_l4, 1);

	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, MG_IPPROTO_ICMPV6);
	icmp(&f, 129, 0, 0x9999);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.key.icmp_type, 129);
	CU_ASSERT_EQUAL(pi.key.sport, 0x9999);

	/* packet too big (2): no identifier */
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, MG_IPPROTO_ICMPV6);
	icmp(&f, 2, 0, 0x9999);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.cls, MG_PKT_IPV6);
	CU_ASSERT_EQUAL(pi.key.icmp_type, 2);
	CU_ASSERT_EQUAL(pi.key.sport, 0);
}

static void
test_ipv6_nd(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	for (unsigned t = 132; t <= 138; t++) {
		uint32_t off;

		eth(&f, MG_ETH_P_IPV6);
		off = ip6(&f, MG_IPPROTO_ICMPV6);
		icmp(&f, (uint8_t)t, 0, 0x1111);
		fill(&f, 0, 16); /* target address */
		ip6_fix(&f, off);
		CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
		CU_ASSERT_EQUAL(pi.cls, (t >= 133 && t <= 137) ? MG_PKT_ND : MG_PKT_IPV6);
		CU_ASSERT_EQUAL(pi.key.icmp_type, t);
		CU_ASSERT_EQUAL(pi.key.family, MG_AF_INET6);
		CU_ASSERT_EQUAL(pi.key.sport, 0);
		CU_ASSERT_EQUAL(pi.has_l4, 1);
	}
}

static void
test_ipv6_icmp4_proto(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	/* protocol 1 inside IPv6 is not ICMP */
	mk6(&f, MG_IPPROTO_ICMP);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_ICMP);
	CU_ASSERT_EQUAL(pi.has_l4, 0);
	CU_ASSERT_EQUAL(pi.key.icmp_type, 0);
}

static void
test_drop_ip6_trunc(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk6(&f, MG_IPPROTO_UDP);
	CU_ASSERT_EQUAL(parse_n(&f, 14, &pi), MG_DROP_IP6_TRUNC);
	CU_ASSERT_EQUAL(parse_n(&f, 14 + 39, &pi), MG_DROP_IP6_TRUNC);
}

static void
test_drop_ip6_version(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk6(&f, MG_IPPROTO_UDP);
	f.b[14] = 0x40;
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_VERSION);
}

static void
test_drop_ip6_len_frame(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk6(&f, MG_IPPROTO_UDP);
	set16(&f, 18, 9);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_LEN_FRAME);
	set16(&f, 18, 0xffff);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_LEN_FRAME);
	/* the layer-4 header is bounded by the payload length, not the frame */
	set16(&f, 18, 4);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_UDP_TRUNC);
}

static void
test_drop_ip6_jumbo(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	/* payload length 0 + hop-by-hop with a jumbo payload option */
	eth(&f, MG_ETH_P_IPV6);
	ip6(&f, 0);
	put8(&f, MG_IPPROTO_UDP);
	put8(&f, 0);
	put8(&f, 0xc2);
	put8(&f, 4);
	put32(&f, 8 + 8);
	udp(&f, 1, 2);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_LEN_FRAME);
}

static void
test_ipv6_ext_each(void)
{
	static const uint8_t types[] = {0, 43, 60, 135, 139, 140};
	struct frame f;
	struct mg_pkt_info pi;

	for (size_t i = 0; i < MG_ARRAY_SIZE(types); i++) {
		uint32_t off;

		eth(&f, MG_ETH_P_IPV6);
		off = ip6(&f, types[i]);
		ext6(&f, MG_IPPROTO_TCP, (uint8_t)i); /* (i + 1) * 8 bytes */
		tcp(&f, 22, 2222, 0x18);
		ip6_fix(&f, off);
		CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
		CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_TCP);
		CU_ASSERT_EQUAL(pi.l4_off, 54 + (i + 1) * 8);
		CU_ASSERT_EQUAL(pi.key.sport, 22);
		CU_ASSERT_EQUAL(pi.key.dport, 2222);
		CU_ASSERT_EQUAL(pi.has_l4, 1);
	}
}

static void
test_ipv6_ah(void)
{
	struct frame f;
	struct mg_pkt_info pi;
	uint32_t off;

	/* AH with a 12-byte ICV: payload length field 4, (4 + 2) * 4 = 24 bytes */
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 51);
	ah6(&f, MG_IPPROTO_UDP, 4);
	udp(&f, 500, 4500);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.l4_off, 54 + 24);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_UDP);
	CU_ASSERT_EQUAL(pi.key.sport, 500);

	/* AH longer than the packet */
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 51);
	ah6(&f, MG_IPPROTO_UDP, 4);
	ip6_fix(&f, off);
	f.b[54 + 1] = 5;
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_EXT_TRUNC);
}

static void
test_ipv6_chain(void)
{
	struct frame f;
	struct mg_pkt_info pi;
	uint32_t off;

	/* hop-by-hop, routing, dest opts, fragment (atomic), AH, dest opts, ICMPv6 */
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 0);
	ext6(&f, 43, 0);
	ext6(&f, 60, 1);
	ext6(&f, 44, 0);
	frag6(&f, 51, 0, 0, 0xabcdef01);
	ah6(&f, 60, 1);
	ext6(&f, MG_IPPROTO_ICMPV6, 0);
	icmp(&f, 128, 0, 7);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.l4_off, 54 + 8 + 16 + 8 + 8 + 12 + 8);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_ICMPV6);
	CU_ASSERT_EQUAL(pi.key.sport, 7);
	CU_ASSERT_EQUAL(pi.frag, 0); /* atomic fragment */
	CU_ASSERT_EQUAL(pi.ip_id, 0xabcdef01);
}

/* IPv6 with @p n destination-options headers, then UDP. */
static void
mk6_chain(struct frame *f, unsigned n)
{
	uint32_t off;

	eth(f, MG_ETH_P_IPV6);
	off = ip6(f, n ? 60 : MG_IPPROTO_UDP);
	for (unsigned i = 0; i < n; i++)
		ext6(f, i + 1 < n ? 60 : MG_IPPROTO_UDP, 0);
	udp(f, 7, 9);
	ip6_fix(f, off);
}

static void
test_drop_ip6_ext_chain(void)
{
	struct frame f;
	struct mg_pkt_info pi;

	mk6_chain(&f, MG_PKT_MAX_IP6_EXT);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.l4_off, 54 + MG_PKT_MAX_IP6_EXT * 8);
	CU_ASSERT_EQUAL(pi.key.dport, 9);
	mk6_chain(&f, MG_PKT_MAX_IP6_EXT + 1);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_EXT_CHAIN);
	mk6_chain(&f, 40);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_EXT_CHAIN);
}

static void
test_drop_ip6_ext_order(void)
{
	struct frame f;
	struct mg_pkt_info pi;
	uint32_t off;

	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 60);
	ext6(&f, 0, 0);
	ext6(&f, MG_IPPROTO_UDP, 0);
	udp(&f, 1, 2);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_EXT_ORDER);

	/* two hop-by-hop headers */
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 0);
	ext6(&f, 0, 0);
	ext6(&f, MG_IPPROTO_UDP, 0);
	udp(&f, 1, 2);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_EXT_ORDER);
}

static void
test_drop_ip6_ext_trunc(void)
{
	struct frame f;
	struct mg_pkt_info pi;
	uint32_t off;

	/* routing header claims 16 bytes, packet has 8 */
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 43);
	ext6(&f, 59, 0);
	ip6_fix(&f, off);
	f.b[54 + 1] = 1;
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_EXT_TRUNC);

	/* next header says extension, packet ends: not even 2 bytes */
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 60);
	put8(&f, 6);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_EXT_TRUNC);
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 0);
	ip6_fix(&f, off);
	fill(&f, 0, 8); /* in the frame, beyond the payload length */
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_LEN_FRAME); /* plen 0 + HBH */
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 43);
	ip6_fix(&f, off);
	fill(&f, 0, 8);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_EXT_TRUNC);

	/* fragment header of 7 bytes */
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 44);
	frag6(&f, MG_IPPROTO_UDP, 0, 1, 1);
	f.len -= 1;
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_IP6_EXT_TRUNC);
}

static void
test_ipv6_frag_first(void)
{
	struct frame f;
	struct mg_pkt_info pi;
	uint32_t off;

	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 44);
	frag6(&f, MG_IPPROTO_UDP, 0, 1, 0x01020304);
	udp(&f, 4000, 53);
	fill(&f, 0x55, 32);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.frag, MG_PKT_FRAG_FIRST);
	CU_ASSERT_EQUAL(pi.frag_off, 0);
	CU_ASSERT_EQUAL(pi.ip_id, 0x01020304);
	CU_ASSERT_EQUAL(pi.has_l4, 1);
	CU_ASSERT_EQUAL(pi.l4_off, 62);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_UDP);
	CU_ASSERT_EQUAL(pi.key.sport, 4000);

	/* first fragment too short for its TCP header */
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 44);
	frag6(&f, MG_IPPROTO_TCP, 0, 1, 5);
	fill(&f, 0, 8);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL(parse(&f, &pi), MG_DROP_TCP_TRUNC);
}

static void
test_ipv6_frag_nonfirst(void)
{
	struct frame f;
	struct mg_pkt_info pi;
	uint32_t off;

	/* destination options before the fragment header, garbage after it */
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 60);
	ext6(&f, 44, 0);
	frag6(&f, MG_IPPROTO_TCP, 1448, 0, 0xfeedf00d);
	fill(&f, 0xff, 3);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.frag, MG_PKT_FRAG_NONFIRST);
	CU_ASSERT_EQUAL(pi.frag_off, 1448);
	CU_ASSERT_EQUAL(pi.ip_id, 0xfeedf00d);
	CU_ASSERT_EQUAL(pi.has_l4, 0);
	CU_ASSERT_EQUAL(pi.key.proto, MG_IPPROTO_TCP);
	CU_ASSERT_EQUAL(pi.key.sport, 0);
	CU_ASSERT_EQUAL(pi.key.dport, 0);
	check_v6_addrs(&pi);
}

static void
test_ipv6_no_next_esp(void)
{
	struct frame f;
	struct mg_pkt_info pi;
	uint32_t off;

	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 59);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.key.proto, 59);
	CU_ASSERT_EQUAL(pi.has_l4, 0);
	CU_ASSERT_EQUAL(pi.l3_len, 40);

	/* 59 after an extension header, with bytes following it */
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 60);
	ext6(&f, 59, 0);
	fill(&f, 0xee, 5);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.key.proto, 59);
	CU_ASSERT_EQUAL(pi.has_l4, 0);

	/* ESP: opaque after the header */
	eth(&f, MG_ETH_P_IPV6);
	off = ip6(&f, 50);
	fill(&f, 0x11, 4);
	ip6_fix(&f, off);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.key.proto, 50);
	CU_ASSERT_EQUAL(pi.has_l4, 0);
	CU_ASSERT_EQUAL(pi.key.sport, 0);
}

/* ---- misc ---- */

static void
test_port_byte_order(void)
{
	struct frame f;
	struct mg_pkt_info pi;
	uint32_t off;

	eth(&f, MG_ETH_P_IPV4);
	off = ip4(&f, MG_IPPROTO_UDP, 5);
	udp(&f, 0x1234, 0xabcd);
	ip4_fix(&f, off);
	CU_ASSERT_EQUAL(f.b[34], 0x12); /* wire order */
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.key.sport, 0x1234); /* host order */
	CU_ASSERT_EQUAL(pi.key.dport, 0xabcd);
	/* addresses stay in network order */
	CU_ASSERT_EQUAL(pi.key.src[0], 10);
	CU_ASSERT_EQUAL(pi.key.src[3], 1);
	CU_ASSERT_EQUAL(pi.l3_off, 14);
	CU_ASSERT_EQUAL(pi.l4_off, 34);
}

static void
test_long_frame(void)
{
	static struct frame big; /* a frame longer than the 16-bit offsets */
	struct mg_pkt_info pi;
	uint8_t *buf;

	mk4(&big, MG_IPPROTO_UDP);
	buf = calloc(1, 70000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	memcpy(buf, big.b, big.len);
	CU_ASSERT_EQUAL(mg_pkt_parse(buf, 70000, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.key.dport, 53);
	/* an IPv6 packet filling the 64 KiB view: fine; one byte more: beyond it */
	memset(buf, 0, 70000);
	mk6(&big, MG_IPPROTO_UDP);
	memcpy(buf, big.b, big.len);
	buf[18] = (65535 - 54) >> 8;
	buf[19] = (65535 - 54) & 0xff;
	CU_ASSERT_EQUAL(mg_pkt_parse(buf, 70000, &pi), MG_DROP_NONE);
	CU_ASSERT_EQUAL(pi.l3_len, 65535 - 14);
	buf[19]++;
	CU_ASSERT_EQUAL(mg_pkt_parse(buf, 70000, &pi), MG_DROP_IP6_LEN_FRAME);
	free(buf);
}

/*
 * Every reason the parser can return, produced by some frame: the table
 * of drop reasons and the parser must not drift apart.
 */
static void
test_every_parser_reason(void)
{
	bool seen[MG_DROP__MAX] = {false};
	struct frame f;
	struct mg_pkt_info pi;

#define SEEN(expr) seen[(expr)] = true
	mk4(&f, MG_IPPROTO_TCP);
	SEEN(parse_n(&f, 5, &pi));
	SEEN(parse_n(&f, 20, &pi));
	f.b[14] = 0x55;
	SEEN(parse(&f, &pi));
	f.b[14] = 0x44;
	SEEN(parse(&f, &pi));
	f.b[14] = 0x4f;
	SEEN(parse(&f, &pi));
	f.b[14] = 0x45;
	set16(&f, 16, 10);
	SEEN(parse(&f, &pi));
	set16(&f, 16, 100);
	SEEN(parse(&f, &pi));
	set16(&f, 16, 39);
	SEEN(parse(&f, &pi));
	set16(&f, 16, 40);
	f.b[46] = 0x10;
	SEEN(parse(&f, &pi));
	mk4(&f, MG_IPPROTO_UDP);
	SEEN(parse_n(&f, f.len - 1, &pi)); /* IP4_LEN_FRAME again */
	set16(&f, 16, 27);
	SEEN(parse(&f, &pi));
	mk4(&f, MG_IPPROTO_SCTP);
	set16(&f, 16, 31);
	SEEN(parse(&f, &pi));
	mk4(&f, MG_IPPROTO_ICMP);
	set16(&f, 16, 27);
	SEEN(parse(&f, &pi));
	mk6(&f, MG_IPPROTO_ICMPV6);
	set16(&f, 18, 7);
	SEEN(parse(&f, &pi));
	SEEN(parse_n(&f, 50, &pi));
	f.b[14] = 0x70;
	SEEN(parse(&f, &pi));
	f.b[14] = 0x60;
	set16(&f, 18, 9);
	SEEN(parse(&f, &pi));
	mk6_chain(&f, 9);
	SEEN(parse(&f, &pi));
	mk6_chain(&f, 2);
	f.b[54] = 0;
	SEEN(parse(&f, &pi));
	f.b[55] = 3;
	f.b[54] = 60;
	SEEN(parse(&f, &pi));
	eth(&f, MG_ETH_P_8021Q);
	tag(&f, 1, MG_ETH_P_8021Q);
	tag(&f, 1, MG_ETH_P_8021AD);
	SEEN(parse_n(&f, 16, &pi));
	SEEN(parse(&f, &pi));
#undef SEEN

	for (unsigned r = MG_DROP_L2_TRUNC; r <= MG_DROP_ICMP6_TRUNC; r++) {
		if (r == MG_DROP_NON_IP)
			continue; /* the data path's decision, not a malformation */
		if (!seen[r])
			printf("not produced: %s\n", mg_drop_label(r));
		CU_ASSERT_TRUE(seen[r]);
	}
	/* reasons of later stages never come from the parser */
	CU_ASSERT_FALSE(seen[MG_DROP_NON_IP]);
	CU_ASSERT_FALSE(seen[MG_DROP_FRAG_UNTRACKED]);
}

/* ---- mg_flow_key_str ---- */

static void
test_key_str_formats(void)
{
	struct frame f;
	struct mg_pkt_info pi;
	char buf[128];

	mk4(&f, MG_IPPROTO_TCP);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_STRING_EQUAL(mg_flow_key_str(&pi.key, buf, sizeof(buf)),
	                       "tcp 10.0.0.1:1234 -> 10.0.0.2:80");
	mk4(&f, MG_IPPROTO_SCTP);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_STRING_EQUAL(mg_flow_key_str(&pi.key, buf, sizeof(buf)),
	                       "sctp 10.0.0.1:3868 -> 10.0.0.2:3869");
	mk4(&f, MG_IPPROTO_ICMP);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_STRING_EQUAL(mg_flow_key_str(&pi.key, buf, sizeof(buf)),
	                       "icmp 10.0.0.1 -> 10.0.0.2 type 8 code 0");
	mk4(&f, 47);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_STRING_EQUAL(mg_flow_key_str(&pi.key, buf, sizeof(buf)),
	                       "proto 47 10.0.0.1 -> 10.0.0.2");

	eth(&f, MG_ETH_P_IPV6);
	ip6(&f, MG_IPPROTO_UDP);
	udp(&f, 53, 5353);
	ip6_fix(&f, 14);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_STRING_EQUAL(mg_flow_key_str(&pi.key, buf, sizeof(buf)),
	                       "udp [fd00::1]:53 -> [fd00::2]:5353");
	mk6(&f, MG_IPPROTO_ICMPV6);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_STRING_EQUAL(mg_flow_key_str(&pi.key, buf, sizeof(buf)),
	                       "icmpv6 fd00::1 -> fd00::2 type 128 code 0");
	mk6(&f, 50);
	CU_ASSERT_EQUAL_FATAL(parse(&f, &pi), MG_DROP_NONE);
	CU_ASSERT_STRING_EQUAL(mg_flow_key_str(&pi.key, buf, sizeof(buf)),
	                       "proto 50 fd00::1 -> fd00::2");
}

static void
test_key_str_truncation(void)
{
	struct mg_flow_key k = {
	        .family = MG_AF_INET6, .proto = MG_IPPROTO_TCP, .sport = 65535, .dport = 65535};
	char buf[128];
	const char *full = "tcp [ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535 -> "
	                   "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535";

	memset(k.src, 0xff, 16);
	memset(k.dst, 0xff, 16);
	CU_ASSERT_STRING_EQUAL(mg_flow_key_str(&k, buf, sizeof(buf)), full);
	for (unsigned size = 1; size < 100; size++) {
		memset(buf, 'X', sizeof(buf));
		CU_ASSERT_PTR_EQUAL(mg_flow_key_str(&k, buf, size), buf);
		CU_ASSERT_EQUAL(strlen(buf), size - 1 < strlen(full) ? size - 1 : strlen(full));
		CU_ASSERT_EQUAL(strncmp(buf, full, size - 1), 0);
		CU_ASSERT_EQUAL(buf[size], 'X'); /* nothing written past size */
	}
	/* size 0: not a byte written */
	buf[0] = 'X';
	CU_ASSERT_PTR_EQUAL(mg_flow_key_str(&k, buf, 0), buf);
	CU_ASSERT_EQUAL(buf[0], 'X');
}

static void
test_key_str_no_family(void)
{
	struct mg_flow_key k = {0};
	char buf[64];

	/* the key of an ARP or non-IP frame still formats to something */
	mg_flow_key_str(&k, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "family 0 proto 0");
}

/* ---- ICMP errors: the quoted packet ---- */

static void
test_icmp_inner_v4(void)
{
	struct mg_pkt_info info;
	struct mg_flow_key in;
	struct frame f;
	uint32_t o, q;

	/* Port unreachable from 10.0.0.2 about a UDP packet 10.0.0.1:5353 -> 10.0.0.2:53:
	 * the outer addresses are reversed, the quote keeps the original order. */
	eth(&f, MG_ETH_P_IPV4);
	o = ip4(&f, MG_IPPROTO_ICMP, 5);
	icmp(&f, 3, 3, 0);
	q = ip4(&f, MG_IPPROTO_UDP, 6);
	udp(&f, 5353, 53);
	ip4_fix(&f, q);
	ip4_fix(&f, o);
	CU_ASSERT_EQUAL_FATAL(mg_pkt_parse(f.b, f.len, &info), MG_DROP_NONE);
	CU_ASSERT_TRUE(mg_pkt_is_icmp_error(&info.key));
	CU_ASSERT_TRUE_FATAL(mg_pkt_icmp_inner(f.b, f.len, &info, &in));
	CU_ASSERT_EQUAL(in.family, MG_AF_INET);
	CU_ASSERT_EQUAL(in.proto, MG_IPPROTO_UDP);
	CU_ASSERT_EQUAL(in.sport, 5353);
	CU_ASSERT_EQUAL(in.dport, 53);
	CU_ASSERT_EQUAL(in.src[3], 1);
	CU_ASSERT_EQUAL(in.dst[3], 2);

	/* The quote cut to 4 bytes of layer 4: not enough for RFC 792's 8. */
	eth(&f, MG_ETH_P_IPV4);
	o = ip4(&f, MG_IPPROTO_ICMP, 5);
	icmp(&f, 11, 0, 0);
	q = ip4(&f, MG_IPPROTO_TCP, 5);
	put32(&f, 0x12345678);
	ip4_fix(&f, q);
	ip4_fix(&f, o);
	CU_ASSERT_EQUAL_FATAL(mg_pkt_parse(f.b, f.len, &info), MG_DROP_NONE);
	CU_ASSERT_FALSE(mg_pkt_icmp_inner(f.b, f.len, &info, &in));

	/* An echo request is not an error. */
	eth(&f, MG_ETH_P_IPV4);
	o = ip4(&f, MG_IPPROTO_ICMP, 5);
	icmp(&f, 8, 0, 77);
	ip4_fix(&f, o);
	CU_ASSERT_EQUAL_FATAL(mg_pkt_parse(f.b, f.len, &info), MG_DROP_NONE);
	CU_ASSERT_FALSE(mg_pkt_is_icmp_error(&info.key));
	CU_ASSERT_FALSE(mg_pkt_icmp_inner(f.b, f.len, &info, &in));
}

static void
test_icmp_inner_v6(void)
{
	struct mg_pkt_info info;
	struct mg_flow_key in;
	struct frame f;
	uint32_t o, q;

	/* Packet too big about a TCP segment behind a destination-options header. */
	eth(&f, MG_ETH_P_IPV6);
	o = ip6(&f, MG_IPPROTO_ICMPV6);
	icmp(&f, 2, 0, 0);
	q = ip6(&f, 60);
	ext6(&f, MG_IPPROTO_TCP, 0);
	tcp(&f, 40000, 443, 0x10);
	ip6_fix(&f, q);
	ip6_fix(&f, o);
	CU_ASSERT_EQUAL_FATAL(mg_pkt_parse(f.b, f.len, &info), MG_DROP_NONE);
	CU_ASSERT_TRUE_FATAL(mg_pkt_icmp_inner(f.b, f.len, &info, &in));
	CU_ASSERT_EQUAL(in.family, MG_AF_INET6);
	CU_ASSERT_EQUAL(in.proto, MG_IPPROTO_TCP);
	CU_ASSERT_EQUAL(in.sport, 40000);
	CU_ASSERT_EQUAL(in.dport, 443);
	CU_ASSERT_EQUAL(memcmp(in.src, v6_src, 16), 0);

	/* Time exceeded quoting an echo request: type and identifier. */
	eth(&f, MG_ETH_P_IPV6);
	o = ip6(&f, MG_IPPROTO_ICMPV6);
	icmp(&f, 3, 0, 0);
	q = ip6(&f, MG_IPPROTO_ICMPV6);
	icmp(&f, 128, 0, 4242);
	ip6_fix(&f, q);
	ip6_fix(&f, o);
	CU_ASSERT_EQUAL_FATAL(mg_pkt_parse(f.b, f.len, &info), MG_DROP_NONE);
	CU_ASSERT_TRUE_FATAL(mg_pkt_icmp_inner(f.b, f.len, &info, &in));
	CU_ASSERT_EQUAL(in.icmp_type, 128);
	CU_ASSERT_EQUAL(in.sport, 4242);

	/* A quote that claims IPv4 inside ICMPv6. */
	eth(&f, MG_ETH_P_IPV6);
	o = ip6(&f, MG_IPPROTO_ICMPV6);
	icmp(&f, 1, 4, 0);
	q = ip4(&f, MG_IPPROTO_UDP, 5);
	udp(&f, 1, 2);
	ip4_fix(&f, q);
	ip6_fix(&f, o);
	CU_ASSERT_EQUAL_FATAL(mg_pkt_parse(f.b, f.len, &info), MG_DROP_NONE);
	CU_ASSERT_FALSE(mg_pkt_icmp_inner(f.b, f.len, &info, &in));
}

static CU_TestInfo tests[] = {
        {"icmp_inner_v4", test_icmp_inner_v4},
        {"icmp_inner_v6", test_icmp_inner_v6},
        {"ipv4_tcp", test_ipv4_tcp},
        {"ipv4_udp", test_ipv4_udp},
        {"ipv4_sctp", test_ipv4_sctp},
        {"ipv4_icmp_echo", test_ipv4_icmp_echo},
        {"ipv4_icmp_other", test_ipv4_icmp_other},
        {"ipv4_unknown_proto", test_ipv4_unknown_proto},
        {"ipv4_key_zeroed", test_ipv4_key_zeroed},
        {"ipv4_options", test_ipv4_options},
        {"ipv4_padding", test_ipv4_padding},
        {"ipv4_l4_bound_by_totlen", test_ipv4_l4_bound_by_totlen},
        {"ipv4_frag_first", test_ipv4_frag_first},
        {"ipv4_frag_nonfirst", test_ipv4_frag_nonfirst},
        {"ipv4_frag_first_trunc", test_ipv4_frag_first_trunc},
        {"drop_ip4_trunc", test_drop_ip4_trunc},
        {"drop_ip4_version", test_drop_ip4_version},
        {"drop_ip4_ihl", test_drop_ip4_ihl},
        {"drop_ip4_opt_trunc", test_drop_ip4_opt_trunc},
        {"drop_ip4_totlen", test_drop_ip4_totlen},
        {"drop_ip4_len_frame", test_drop_ip4_len_frame},
        {"drop_tcp_trunc", test_drop_tcp_trunc},
        {"drop_tcp_doff", test_drop_tcp_doff},
        {"drop_udp_trunc", test_drop_udp_trunc},
        {"drop_sctp_trunc", test_drop_sctp_trunc},
        {"drop_icmp_trunc", test_drop_icmp_trunc},
        {"drop_icmp6_trunc", test_drop_icmp6_trunc},
        {"drop_l2_trunc", test_drop_l2_trunc},
        {"vlan_single", test_vlan_single},
        {"vlan_qinq", test_vlan_qinq},
        {"drop_vlan_depth", test_drop_vlan_depth},
        {"drop_vlan_trunc", test_drop_vlan_trunc},
        {"arp", test_arp},
        {"non_ip", test_non_ip},
        {"ipv6_tcp", test_ipv6_tcp},
        {"ipv6_udp", test_ipv6_udp},
        {"ipv6_sctp", test_ipv6_sctp},
        {"ipv6_icmp6_echo", test_ipv6_icmp6_echo},
        {"ipv6_nd", test_ipv6_nd},
        {"ipv6_icmp4_proto", test_ipv6_icmp4_proto},
        {"drop_ip6_trunc", test_drop_ip6_trunc},
        {"drop_ip6_version", test_drop_ip6_version},
        {"drop_ip6_len_frame", test_drop_ip6_len_frame},
        {"drop_ip6_jumbo", test_drop_ip6_jumbo},
        {"ipv6_ext_each", test_ipv6_ext_each},
        {"ipv6_ah", test_ipv6_ah},
        {"ipv6_chain", test_ipv6_chain},
        {"drop_ip6_ext_chain", test_drop_ip6_ext_chain},
        {"drop_ip6_ext_order", test_drop_ip6_ext_order},
        {"drop_ip6_ext_trunc", test_drop_ip6_ext_trunc},
        {"ipv6_frag_first", test_ipv6_frag_first},
        {"ipv6_frag_nonfirst", test_ipv6_frag_nonfirst},
        {"ipv6_no_next_esp", test_ipv6_no_next_esp},
        {"port_byte_order", test_port_byte_order},
        {"long_frame", test_long_frame},
        {"every_parser_reason", test_every_parser_reason},
        {"key_str_formats", test_key_str_formats},
        {"key_str_truncation", test_key_str_truncation},
        {"key_str_no_family", test_key_str_no_family},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("pkt", tests)
