/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The frame parser. It runs once per received frame at line rate, so it is
 * straight-line code over the byte buffer: every header is bounds-checked
 * once, fields are read with byte loads (the buffer has no alignment
 * guarantee), and the only loop is the IPv6 extension-header walk, which is
 * capped at MG_PKT_MAX_IP6_EXT iterations. Two limits bound every read:
 * the frame length for the link and IP headers, and the IP packet's own
 * length (IPv4 total length, IPv6 40 + payload length) for everything after
 * the IP header, so Ethernet padding is never taken for a layer-4 header.
 * The first malformation found is reported as its drop reason; nothing
 * after it is examined.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "mg_common.h"
#include "mg_pkt.h"

#define ETH_HLEN 14
#define VLAN_HLEN 4
#define IP4_HLEN 20
#define IP6_HLEN 40
#define TCP_HLEN 20
#define UDP_HLEN 8
#define SCTP_HLEN 12
#define ICMP_HLEN 8

#define IP4_MF 0x2000
#define IP4_OFF_MASK 0x1fff

/* IPv6 extension headers (IANA "IPv6 Extension Header Types"). */
#define IP6_EXT_HOPOPTS 0
#define IP6_EXT_ROUTING 43
#define IP6_EXT_FRAGMENT 44
#define IP6_EXT_AH 51
#define IP6_EXT_NONE 59
#define IP6_EXT_DSTOPTS 60
#define IP6_EXT_MOBILITY 135
#define IP6_EXT_HIP 139
#define IP6_EXT_SHIM6 140
#define IP6_FRAG_HLEN 8

#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129
#define ICMP6_ND_FIRST 133 /* router solicitation */
#define ICMP6_ND_LAST 137  /* redirect */

static inline uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline bool
is_vlan_tpid(uint16_t et)
{
	return et == MG_ETH_P_8021Q || et == MG_ETH_P_8021AD;
}

/*
 * Layer 4. @p avail is what the IP header says follows the layer-3 headers
 * (never more than the frame holds). Protocols the parser does not know
 * leave has_l4 = 0 and are not an error.
 */
static inline enum mg_drop_reason
parse_l4(const uint8_t *p, uint32_t avail, struct mg_pkt_info *info)
{
	struct mg_flow_key *k = &info->key;

	switch (k->proto) {
	case MG_IPPROTO_TCP:
		if (MG_UNLIKELY(avail < TCP_HLEN))
			return MG_DROP_TCP_TRUNC;
		/* Data offset is in 32-bit words; the header with options must fit. */
		if (MG_UNLIKELY((p[12] >> 4) < 5 || (uint32_t)(p[12] >> 4) * 4 > avail))
			return MG_DROP_TCP_DOFF;
		k->sport = rd16(p);
		k->dport = rd16(p + 2);
		info->tcp_flags = p[13];
		break;
	case MG_IPPROTO_UDP:
		if (MG_UNLIKELY(avail < UDP_HLEN))
			return MG_DROP_UDP_TRUNC;
		k->sport = rd16(p);
		k->dport = rd16(p + 2);
		break;
	case MG_IPPROTO_SCTP:
		if (MG_UNLIKELY(avail < SCTP_HLEN))
			return MG_DROP_SCTP_TRUNC;
		k->sport = rd16(p);
		k->dport = rd16(p + 2);
		break;
	case MG_IPPROTO_ICMP:
		/* ICMP inside IPv6 is not ICMP: an unknown protocol there. */
		if (k->family != MG_AF_INET)
			return MG_DROP_NONE;
		if (MG_UNLIKELY(avail < ICMP_HLEN))
			return MG_DROP_ICMP_TRUNC;
		k->icmp_type = p[0];
		k->icmp_code = p[1];
		/* Echo request and reply pair up by identifier, like a port. */
		if (p[0] == ICMP_ECHO || p[0] == ICMP_ECHOREPLY)
			k->sport = rd16(p + 4);
		break;
	case MG_IPPROTO_ICMPV6:
		if (k->family != MG_AF_INET6)
			return MG_DROP_NONE;
		if (MG_UNLIKELY(avail < ICMP_HLEN))
			return MG_DROP_ICMP6_TRUNC;
		k->icmp_type = p[0];
		k->icmp_code = p[1];
		if (p[0] == ICMP6_ECHO_REQUEST || p[0] == ICMP6_ECHO_REPLY)
			k->sport = rd16(p + 4);
		else if (p[0] >= ICMP6_ND_FIRST && p[0] <= ICMP6_ND_LAST)
			info->cls = MG_PKT_ND;
		break;
	default:
		return MG_DROP_NONE;
	}
	info->has_l4 = 1;
	return MG_DROP_NONE;
}

static inline enum mg_drop_reason
parse_ipv4(const uint8_t *data, uint32_t len, struct mg_pkt_info *info)
{
	const uint32_t off = info->l3_off;
	const uint8_t *ip = data + off;
	uint32_t hlen, totlen;
	uint16_t frag;

	if (MG_UNLIKELY(len - off < IP4_HLEN))
		return MG_DROP_IP4_TRUNC;
	if (MG_UNLIKELY((ip[0] >> 4) != 4))
		return MG_DROP_IP4_VERSION;
	hlen = (uint32_t)(ip[0] & 0x0f) * 4;
	if (MG_UNLIKELY(hlen < IP4_HLEN))
		return MG_DROP_IP4_IHL;
	if (MG_UNLIKELY(hlen > len - off))
		return MG_DROP_IP4_OPT_TRUNC;
	totlen = rd16(ip + 2);
	if (MG_UNLIKELY(totlen < hlen))
		return MG_DROP_IP4_TOTLEN;
	if (MG_UNLIKELY(totlen > len - off))
		return MG_DROP_IP4_LEN_FRAME;

	info->cls = MG_PKT_IPV4;
	info->l3_len = (uint16_t)totlen;
	info->key.family = MG_AF_INET;
	info->key.proto = ip[9];
	memcpy(info->key.src, ip + 12, 4);
	memcpy(info->key.dst, ip + 16, 4);
	info->ip_id = rd16(ip + 4);

	frag = rd16(ip + 6);
	if (frag & (IP4_MF | IP4_OFF_MASK)) {
		info->frag_off = (uint16_t)((frag & IP4_OFF_MASK) << 3);
		if (info->frag_off) {
			/* The layer-4 header is in the first fragment only. */
			info->frag = MG_PKT_FRAG_NONFIRST;
			return MG_DROP_NONE;
		}
		info->frag = MG_PKT_FRAG_FIRST;
	}
	info->l4_off = (uint16_t)(off + hlen);
	return parse_l4(ip + hlen, totlen - hlen, info);
}

static inline enum mg_drop_reason
parse_ipv6(const uint8_t *data, uint32_t len, struct mg_pkt_info *info)
{
	const uint32_t off = info->l3_off;
	const uint8_t *ip = data + off;
	uint32_t plen, pos, hlen;
	uint8_t nh;
	unsigned n;

	if (MG_UNLIKELY(len - off < IP6_HLEN))
		return MG_DROP_IP6_TRUNC;
	if (MG_UNLIKELY((ip[0] >> 4) != 6))
		return MG_DROP_IP6_VERSION;
	plen = rd16(ip + 4);
	nh = ip[6];
	if (MG_UNLIKELY(plen > len - off - IP6_HLEN))
		return MG_DROP_IP6_LEN_FRAME;
	/*
	 * Payload length 0 followed by hop-by-hop options is a jumbogram
	 * (RFC 2675). No Ethernet frame can carry one, so it is malformed.
	 */
	if (MG_UNLIKELY(plen == 0 && nh == IP6_EXT_HOPOPTS))
		return MG_DROP_IP6_LEN_FRAME;

	info->cls = MG_PKT_IPV6;
	info->l3_len = (uint16_t)(IP6_HLEN + plen);
	info->key.family = MG_AF_INET6;
	memcpy(info->key.src, ip + 8, 16);
	memcpy(info->key.dst, ip + 24, 16);

	/*
	 * Walk the chain. pos is relative to the IPv6 header and never
	 * exceeds IP6_HLEN + plen, so every read below is inside the packet.
	 */
	pos = IP6_HLEN;
	plen += IP6_HLEN; /* from here on: end of the packet, relative to ip */
	for (n = 0;; n++) {
		const uint8_t *h = ip + pos;

		switch (nh) {
		case IP6_EXT_HOPOPTS:
			if (MG_UNLIKELY(n != 0))
				return MG_DROP_IP6_EXT_ORDER;
			/* fall through */
		case IP6_EXT_ROUTING:
		case IP6_EXT_DSTOPTS:
		case IP6_EXT_MOBILITY:
		case IP6_EXT_HIP:
		case IP6_EXT_SHIM6:
			if (MG_UNLIKELY(n >= MG_PKT_MAX_IP6_EXT))
				return MG_DROP_IP6_EXT_CHAIN;
			if (MG_UNLIKELY(plen - pos < 2))
				return MG_DROP_IP6_EXT_TRUNC;
			hlen = ((uint32_t)h[1] + 1) * 8;
			break;
		case IP6_EXT_AH:
			if (MG_UNLIKELY(n >= MG_PKT_MAX_IP6_EXT))
				return MG_DROP_IP6_EXT_CHAIN;
			if (MG_UNLIKELY(plen - pos < 2))
				return MG_DROP_IP6_EXT_TRUNC;
			hlen = ((uint32_t)h[1] + 2) * 4;
			break;
		case IP6_EXT_FRAGMENT:
			if (MG_UNLIKELY(n >= MG_PKT_MAX_IP6_EXT))
				return MG_DROP_IP6_EXT_CHAIN;
			if (MG_UNLIKELY(plen - pos < IP6_FRAG_HLEN))
				return MG_DROP_IP6_EXT_TRUNC;
			info->ip_id = rd32(h + 4);
			info->frag_off = rd16(h + 2) & 0xfff8;
			if (info->frag_off) {
				/* Past the fragment header is fragment data, not headers. */
				info->frag = MG_PKT_FRAG_NONFIRST;
				info->key.proto = h[0];
				return MG_DROP_NONE;
			}
			/* An atomic fragment (M = 0, offset 0) is a whole packet. */
			if (h[3] & 1)
				info->frag = MG_PKT_FRAG_FIRST;
			hlen = IP6_FRAG_HLEN;
			break;
		default:
			/* Upper layer, ESP (50) or no next header (59): chain ends. */
			info->key.proto = nh;
			info->l4_off = (uint16_t)(off + pos);
			if (nh == IP6_EXT_NONE)
				return MG_DROP_NONE;
			return parse_l4(h, plen - pos, info);
		}
		if (MG_UNLIKELY(hlen > plen - pos))
			return MG_DROP_IP6_EXT_TRUNC;
		nh = h[0];
		pos += hlen;
	}
}

enum mg_drop_reason
mg_pkt_parse(const uint8_t *data, uint32_t len, struct mg_pkt_info *info)
{
	uint32_t off = ETH_HLEN;
	uint16_t et;

	*info = (struct mg_pkt_info){0};
	/*
	 * Offsets and lengths in mg_pkt_info are 16 bits wide; an mbuf
	 * segment is never longer either, so look at 64 KiB at most.
	 */
	if (MG_UNLIKELY(len > UINT16_MAX))
		len = UINT16_MAX;
	if (MG_UNLIKELY(len < ETH_HLEN))
		return MG_DROP_L2_TRUNC;
	et = rd16(data + 12);
	if (is_vlan_tpid(et)) {
		if (MG_UNLIKELY(len - off < VLAN_HLEN))
			return MG_DROP_VLAN_TRUNC;
		info->vlan[0] = rd16(data + off);
		et = rd16(data + off + 2);
		info->nvlan = 1;
		off += VLAN_HLEN;
		if (is_vlan_tpid(et)) {
			if (MG_UNLIKELY(len - off < VLAN_HLEN))
				return MG_DROP_VLAN_TRUNC;
			info->vlan[1] = rd16(data + off);
			et = rd16(data + off + 2);
			info->nvlan = 2;
			off += VLAN_HLEN;
			if (MG_UNLIKELY(is_vlan_tpid(et)))
				return MG_DROP_VLAN_DEPTH;
		}
	}
	info->ethertype = et;
	info->l3_off = (uint16_t)off;

	switch (et) {
	case MG_ETH_P_IPV4:
		return parse_ipv4(data, len, info);
	case MG_ETH_P_IPV6:
		return parse_ipv6(data, len, info);
	case MG_ETH_P_ARP:
		/* Passed through in wire mode; its body is not looked at. */
		info->cls = MG_PKT_ARP;
		return MG_DROP_NONE;
	default:
		info->cls = MG_PKT_NON_IP;
		return MG_DROP_NONE;
	}
}

const char *
mg_pkt_proto_name(uint8_t proto)
{
	switch (proto) {
	case MG_IPPROTO_TCP:
		return "tcp";
	case MG_IPPROTO_UDP:
		return "udp";
	case MG_IPPROTO_SCTP:
		return "sctp";
	case MG_IPPROTO_ICMP:
		return "icmp";
	case MG_IPPROTO_ICMPV6:
		return "icmpv6";
	default:
		return NULL;
	}
}

static const char *
proto_name(uint8_t proto, char *tmp, size_t size)
{
	const char *n = mg_pkt_proto_name(proto);

	if (n != NULL)
		return n;
	snprintf(tmp, size, "proto %u", proto);
	return tmp;
}

char *
mg_flow_key_str(const struct mg_flow_key *key, char *buf, unsigned size)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], name[16];
	const char *pn;
	int v6;

	if (buf == NULL || size == 0)
		return buf;
	if (key->family != MG_AF_INET && key->family != MG_AF_INET6) {
		snprintf(buf, size, "family %u proto %u", key->family, key->proto);
		return buf;
	}
	v6 = key->family == MG_AF_INET6;
	/* Cannot fail: the family is valid and the buffers are large enough. */
	inet_ntop(v6 ? AF_INET6 : AF_INET, key->src, src, sizeof(src));
	inet_ntop(v6 ? AF_INET6 : AF_INET, key->dst, dst, sizeof(dst));
	pn = proto_name(key->proto, name, sizeof(name));

	switch (key->proto) {
	case MG_IPPROTO_TCP:
	case MG_IPPROTO_UDP:
	case MG_IPPROTO_SCTP:
		/* IPv6 addresses go in brackets so the port stays unambiguous. */
		snprintf(buf, size, v6 ? "%s [%s]:%u -> [%s]:%u" : "%s %s:%u -> %s:%u", pn, src,
		         key->sport, dst, key->dport);
		break;
	case MG_IPPROTO_ICMP:
	case MG_IPPROTO_ICMPV6:
		snprintf(buf, size, "%s %s -> %s type %u code %u", pn, src, dst, key->icmp_type,
		         key->icmp_code);
		break;
	default:
		snprintf(buf, size, "%s %s -> %s", pn, src, dst);
		break;
	}
	return buf;
}

/* The first 8 bytes of the quoted layer 4: ports, or ICMP type and echo id. */
static bool
inner_l4(const uint8_t *p, uint32_t avail, struct mg_flow_key *k)
{
	if (avail < 8)
		return false;
	switch (k->proto) {
	case MG_IPPROTO_TCP:
	case MG_IPPROTO_UDP:
	case MG_IPPROTO_SCTP:
		k->sport = rd16(p);
		k->dport = rd16(p + 2);
		return true;
	case MG_IPPROTO_ICMP:
	case MG_IPPROTO_ICMPV6:
		k->icmp_type = p[0];
		k->icmp_code = p[1];
		if (p[0] == ICMP_ECHO || p[0] == ICMP_ECHOREPLY || p[0] == ICMP6_ECHO_REQUEST ||
		    p[0] == ICMP6_ECHO_REPLY)
			k->sport = rd16(p + 4);
		return true;
	default:
		return true; /* no ports to read */
	}
}

bool
mg_pkt_icmp_inner(const uint8_t *data, uint32_t len, const struct mg_pkt_info *info,
                  struct mg_flow_key *inner)
{
	const uint8_t *p;
	uint32_t end, off, n;
	uint8_t nh;

	if (!info->has_l4 || !mg_pkt_is_icmp_error(&info->key))
		return false;
	end = (uint32_t)info->l3_off + info->l3_len;
	if (end > len)
		end = len;
	off = (uint32_t)info->l4_off + ICMP_HLEN;
	if (off >= end)
		return false;
	p = data + off;
	n = end - off;
	*inner = (struct mg_flow_key){0};
	inner->family = info->key.family;
	if (info->key.family == MG_AF_INET) {
		uint32_t ihl;

		if (n < IP4_HLEN || (p[0] >> 4) != 4)
			return false;
		ihl = (uint32_t)(p[0] & 0x0f) * 4;
		if (ihl < IP4_HLEN || ihl > n)
			return false;
		if ((rd16(p + 6) & IP4_OFF_MASK) != 0) /* non-first fragment: no ports */
			return false;
		inner->proto = p[9];
		memcpy(inner->src, p + 12, 4);
		memcpy(inner->dst, p + 16, 4);
		if (inner->proto == MG_IPPROTO_ICMPV6)
			return false;
		return inner_l4(p + ihl, n - ihl, inner);
	}
	if (n < IP6_HLEN || (p[0] >> 4) != 6)
		return false;
	memcpy(inner->src, p + 8, 16);
	memcpy(inner->dst, p + 24, 16);
	nh = p[6];
	off = IP6_HLEN;
	for (unsigned i = 0; i <= MG_PKT_MAX_IP6_EXT; i++) {
		uint32_t hl;

		switch (nh) {
		case IP6_EXT_HOPOPTS:
		case IP6_EXT_ROUTING:
		case IP6_EXT_DSTOPTS:
			if (off + 8 > n)
				return false;
			hl = ((uint32_t)p[off + 1] + 1) * 8;
			break;
		case IP6_EXT_FRAGMENT:
			if (off + 8 > n || (rd16(p + off + 2) & 0xfff8) != 0)
				return false;
			hl = 8;
			break;
		default:
			if (nh == MG_IPPROTO_ICMP)
				return false;
			inner->proto = nh;
			return inner_l4(p + off, n - off, inner);
		}
		nh = p[off];
		off += hl;
		if (off > n)
			return false;
	}
	return false;
}
