/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The per-burst pipeline over plain byte buffers: parse every frame, look
 * up both addresses of every IP packet in the ipcache in one bulk call,
 * then take each policy verdict. Staging the burst this way lets the
 * ipcache prefetch ahead, and keeps the DPDK layer (mg_datapath.c) a thin
 * shell of rx and tx around it. Nothing here allocates or blocks.
 */
#include <string.h>

#include "mg_datapath.h"
#include "mg_identity.h"

void
mg_dp_counters_add(struct mg_dp_counters *dst, const struct mg_dp_counters *src)
{
	const uint64_t *s = (const uint64_t *)src;
	uint64_t *d = (uint64_t *)dst;
	size_t i;

	/* The struct is nothing but uint64_t fields (and tail padding to zero). */
	for (i = 0; i < sizeof(*src) / sizeof(uint64_t); i++)
		d[i] += s[i];
}

static inline uint32_t
world_of(const struct mg_dp_env *env, uint8_t family)
{
	if (!env->split_world)
		return MG_ID_WORLD;
	return family == MG_AF_INET6 ? MG_ID_WORLD_IPV6 : MG_ID_WORLD_IPV4;
}

void
mg_dp_classify(const struct mg_dp_env *env, unsigned in_port, const uint8_t *const *data,
               const uint32_t *len, unsigned n, uint8_t *reasons, struct mg_dp_counters *c)
{
	struct mg_pkt_info info[MG_DP_MAX_BURST];
	const uint8_t *addrs[2 * MG_DP_MAX_BURST];
	uint8_t fams[2 * MG_DP_MAX_BURST];
	uint32_t ids[2 * MG_DP_MAX_BURST];
	uint16_t ip_idx[MG_DP_MAX_BURST];
	unsigned i, nip = 0;

	if (n > MG_DP_MAX_BURST)
		n = MG_DP_MAX_BURST;

	/* Stage 1: parse, settle everything that is not an IP verdict. */
	for (i = 0; i < n; i++) {
		enum mg_drop_reason r = mg_pkt_parse(data[i], len[i], &info[i]);

		c->rx_pkts[in_port]++;
		c->rx_bytes[in_port] += len[i];
		reasons[i] = (uint8_t)r;
		if (MG_UNLIKELY(r != MG_DROP_NONE))
			continue;
		switch (info[i].cls) {
		case MG_PKT_ARP:
			c->arp++;
			continue;
		case MG_PKT_ND:
			c->nd++;
			continue;
		case MG_PKT_NON_IP:
			if (env->non_ip_drop)
				reasons[i] = MG_DROP_NON_IP;
			else
				c->non_ip++;
			continue;
		default:
			break;
		}
		/* Without connection tracking a non-first fragment has no ports
		 * to judge by: the first fragment's verdict cannot be recalled. */
		if (MG_UNLIKELY(info[i].frag & MG_PKT_FRAG_NONFIRST)) {
			reasons[i] = MG_DROP_FRAG_UNTRACKED;
			continue;
		}
		fams[2 * nip] = info[i].key.family;
		fams[2 * nip + 1] = info[i].key.family;
		addrs[2 * nip] = info[i].key.src;
		addrs[2 * nip + 1] = info[i].key.dst;
		ip_idx[nip++] = (uint16_t)i;
	}

	/* Stage 2: both identities of every IP packet in one bulk lookup. */
	if (env->ipc != NULL) {
		mg_ipcache_lookup_bulk(env->ipc, fams, addrs, ids, 2 * nip);
	} else {
		for (i = 0; i < 2 * nip; i++)
			ids[i] = world_of(env, fams[i]);
	}

	/* Stage 3: verdicts. */
	for (i = 0; i < nip; i++) {
		const struct mg_flow_key *k = &info[ip_idx[i]].key;
		uint16_t port = k->dport;
		enum mg_verdict v;

		if (k->proto == MG_IPPROTO_ICMP || k->proto == MG_IPPROTO_ICMPV6)
			port = k->icmp_type;
		v = env->policy == NULL ? MG_VERDICT_ALLOW
		                        : mg_policy_verdict(env->policy, ids[2 * i], ids[2 * i + 1],
		                                            k->proto, port);
		switch (v) {
		case MG_VERDICT_ALLOW:
			c->allowed++;
			break;
		case MG_VERDICT_DENY_EGRESS:
			c->denied_egress++;
			reasons[ip_idx[i]] = MG_DROP_POLICY_EGRESS;
			break;
		default:
			c->denied_ingress++;
			reasons[ip_idx[i]] = MG_DROP_POLICY_INGRESS;
			break;
		}
	}

	for (i = 0; i < n; i++)
		if (reasons[i] != MG_DROP_NONE) {
			c->drops[reasons[i]]++;
			c->port_drops[in_port]++;
		}
}
