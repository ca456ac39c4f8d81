/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target of the frame parser. Besides surviving any input under
 * ASan/UBSan, every verdict must be self-consistent: a reported offset lies
 * inside the frame, a reported layer-4 header fits inside the IP packet, a
 * non-first fragment has no ports, an IPv4 key has its upper address bytes
 * zero, parsing is deterministic and does not depend on bytes beyond the
 * IP packet, and formatting the key never overruns its buffer. A broken
 * invariant aborts, which libFuzzer and the corpus replay both report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

static int
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Smallest layer-4 header the parser accepts for @p proto. */
static unsigned
l4_min(uint8_t proto)
{
	switch (proto) {
	case MG_IPPROTO_TCP:
		return 20;
	case MG_IPPROTO_UDP:
	case MG_IPPROTO_ICMP:
	case MG_IPPROTO_ICMPV6:
		return 8;
	case MG_IPPROTO_SCTP:
		return 12;
	default:
		return 0;
	}
}

static void
check_key_str(const struct mg_flow_key *key)
{
	static const unsigned sizes[] = {1, 2, 7, 16, 33, 64, 160};
	char buf[160 + 8];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned n = sizes[i];

		memset(buf, 0x7e, sizeof(buf));
		CHECK(mg_flow_key_str(key, buf, n) == buf);
		CHECK(memchr(buf, '\0', n) != NULL);
		for (size_t j = n; j < sizeof(buf); j++)
			CHECK(buf[j] == 0x7e);
	}
	/* The longest key ("proto 255 [v6]:65535 -> ...") fits in 160 bytes. */
	CHECK(strlen(buf) < 150);
}

static void
check_ok(const uint8_t *data, size_t size, const struct mg_pkt_info *pi)
{
	const struct mg_flow_key *k = &pi->key;
	uint32_t view = size > 65535 ? 65535 : (uint32_t)size;

	CHECK(pi->cls <= MG_PKT_NON_IP);
	CHECK(pi->nvlan <= 2);
	CHECK(pi->l3_off == 14 + 4u * pi->nvlan);
	CHECK(pi->l3_off <= view);
	if (pi->cls == MG_PKT_ARP || pi->cls == MG_PKT_NON_IP) {
		CHECK(k->family == 0 && pi->has_l4 == 0 && pi->l3_len == 0);
		CHECK(all_zero((const uint8_t *)k, sizeof(*k)));
		return;
	}
	CHECK(k->family == (pi->ethertype == MG_ETH_P_IPV4 ? MG_AF_INET : MG_AF_INET6));
	CHECK(pi->cls != MG_PKT_IPV4 || k->family == MG_AF_INET);
	CHECK(pi->cls != MG_PKT_IPV6 || k->family == MG_AF_INET6);
	CHECK((uint32_t)pi->l3_off + pi->l3_len <= view);
	CHECK(pi->l3_len >= (k->family == MG_AF_INET ? 20 : 40));
	if (k->family == MG_AF_INET) {
		CHECK(all_zero(k->src + 4, 12));
		CHECK(all_zero(k->dst + 4, 12));
		CHECK(memcmp(k->src, data + pi->l3_off + 12, 4) == 0);
		CHECK(memcmp(k->dst, data + pi->l3_off + 16, 4) == 0);
	} else {
		CHECK(memcmp(k->src, data + pi->l3_off + 8, 16) == 0);
		CHECK(memcmp(k->dst, data + pi->l3_off + 24, 16) == 0);
	}
	if (pi->frag & MG_PKT_FRAG_NONFIRST) {
		CHECK(pi->frag == MG_PKT_FRAG_NONFIRST);
		CHECK(pi->frag_off > 0);
		CHECK(!pi->has_l4);
	}
	if (pi->frag == MG_PKT_FRAG_FIRST)
		CHECK(pi->frag_off == 0);
	if (pi->has_l4) {
		unsigned min = l4_min(k->proto);

		CHECK(min > 0);
		CHECK(pi->l4_off >= pi->l3_off + (k->family == MG_AF_INET ? 20 : 40));
		CHECK((uint32_t)pi->l4_off + min <= (uint32_t)pi->l3_off + pi->l3_len);
		if (k->proto == MG_IPPROTO_TCP) {
			CHECK(pi->tcp_flags == data[pi->l4_off + 13]);
			CHECK((uint32_t)pi->l4_off + (data[pi->l4_off + 12] >> 4) * 4u <=
			      (uint32_t)pi->l3_off + pi->l3_len);
		}
		if (min != 8 || k->proto == MG_IPPROTO_UDP) {
			CHECK(k->sport == (data[pi->l4_off] << 8 | data[pi->l4_off + 1]));
			CHECK(k->dport == (data[pi->l4_off + 2] << 8 | data[pi->l4_off + 3]));
		} else {
			CHECK(k->icmp_type == data[pi->l4_off]);
			CHECK(k->dport == 0);
		}
	} else {
		CHECK(k->sport == 0 && k->dport == 0 && pi->tcp_flags == 0);
		CHECK(k->icmp_type == 0 && k->icmp_code == 0);
	}
	CHECK(pi->cls != MG_PKT_ND ||
	      (k->proto == MG_IPPROTO_ICMPV6 && k->icmp_type >= 133 && k->icmp_type <= 137));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mg_pkt_info a, b;
	enum mg_drop_reason r;
	uint32_t len = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;

	r = mg_pkt_parse(data, len, &a);
	CHECK((unsigned)r < MG_DROP__MAX);
	/* Only malformations come out of the parser, not later stages' reasons. */
	CHECK(r <= MG_DROP_ICMP6_TRUNC && r != MG_DROP_NON_IP);

	/* Deterministic, and the key is fully written (no stale bytes). */
	memset(&b, 0xa5, sizeof(b));
	CHECK(mg_pkt_parse(data, len, &b) == r);
	CHECK(memcmp(&a.key, &b.key, sizeof(a.key)) == 0);
	CHECK(a.l3_off == b.l3_off && a.l4_off == b.l4_off && a.has_l4 == b.has_l4);

	check_key_str(&a.key);
	if (r != MG_DROP_NONE)
		return 0;
	check_ok(data, size, &a);

	/* Bytes after the IP packet are padding: cutting them changes nothing. */
	if (a.cls != MG_PKT_ARP && a.cls != MG_PKT_NON_IP) {
		uint32_t end = (uint32_t)a.l3_off + a.l3_len;

		CHECK(mg_pkt_parse(data, end, &b) == MG_DROP_NONE);
		CHECK(memcmp(&a.key, &b.key, sizeof(a.key)) == 0);
		CHECK(a.l4_off == b.l4_off && a.has_l4 == b.has_l4 && a.cls == b.cls);
		CHECK(a.frag == b.frag && a.frag_off == b.frag_off && a.ip_id == b.ip_id);
	}
	return 0;
}
