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

/* Where a packet stands after the conntrack stage. */
enum stage {
	ST_DONE,   /* settled: reasons[i] says pass or drop */
	ST_VERDICT /* needs the policy (new flow, re-check, untracked ICMP) */
};

/* An ICMP error passes only if the packet it quotes belongs to a tracked flow. */
static enum mg_drop_reason
icmp_related(const struct mg_dp_env *env, const uint8_t *data, uint32_t len,
             const struct mg_pkt_info *info)
{
	struct mg_flow_key inner;
	struct mg_ct_entry *e;
	struct mg_ct_key key;
	uint8_t dir;

	if (!mg_pkt_icmp_inner(data, len, info, &inner))
		return MG_DROP_ICMP_UNRELATED;
	mg_ct_key_make(&inner, env->zone, &key, &dir);
	mg_ct_lookup_bulk(env->ct, &key, 1, env->now, &e);
	return e != NULL ? MG_DROP_NONE : MG_DROP_ICMP_UNRELATED;
}

void
mg_dp_classify(const struct mg_dp_env *env, unsigned in_port, const uint8_t *const *data,
               const uint32_t *len, unsigned n, uint8_t *reasons, struct mg_dp_counters *c)
{
	struct mg_pkt_info info[MG_DP_MAX_BURST];
	struct mg_ct_key keys[MG_DP_MAX_BURST];
	struct mg_ct_entry *ents[MG_DP_MAX_BURST];
	uint8_t dirs[MG_DP_MAX_BURST], acts[MG_DP_MAX_BURST];
	uint16_t ct_idx[MG_DP_MAX_BURST], ip_idx[MG_DP_MAX_BURST];
	uint16_t ct_pos[MG_DP_MAX_BURST]; /* packet -> its slot in keys[]/ents[] */
	const uint8_t *addrs[2 * MG_DP_MAX_BURST];
	uint8_t fams[2 * MG_DP_MAX_BURST];
	uint32_t ids[2 * MG_DP_MAX_BURST];
	unsigned i, nct = 0, nip = 0;

	if (n > MG_DP_MAX_BURST)
		n = MG_DP_MAX_BURST;

	/* Stage 1: parse; settle what needs no flow state. */
	for (i = 0; i < n; i++) {
		enum mg_drop_reason r = mg_pkt_parse(data[i], len[i], &info[i]);
		const struct mg_pkt_info *pi = &info[i];

		c->rx_pkts[in_port]++;
		c->rx_bytes[in_port] += len[i];
		reasons[i] = (uint8_t)r;
		if (MG_UNLIKELY(r != MG_DROP_NONE))
			continue;
		switch (pi->cls) {
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
		/* A non-first fragment has no ports: it follows its first fragment. */
		if (MG_UNLIKELY(pi->frag & MG_PKT_FRAG_NONFIRST)) {
			if (env->ct != NULL &&
			    mg_ct_frag_find(env->ct, &pi->key, pi->ip_id, env->zone, env->now))
				c->frag_passed++;
			else
				reasons[i] = MG_DROP_FRAG_UNTRACKED;
			continue;
		}
		if (env->ct == NULL) {
			ip_idx[nip++] = (uint16_t)i;
			continue;
		}
		if (MG_UNLIKELY(mg_pkt_is_icmp_error(&pi->key))) {
			reasons[i] = (uint8_t)icmp_related(env, data[i], len[i], pi);
			if (reasons[i] == MG_DROP_NONE)
				c->ct_related++;
			continue;
		}
		mg_ct_key_make(&pi->key, env->zone, &keys[nct], &dirs[nct]);
		ct_pos[i] = (uint16_t)nct;
		ct_idx[nct++] = (uint16_t)i;
	}

	/* Stage 2: conntrack, in one bulk lookup. */
	if (nct != 0) {
		mg_ct_lookup_bulk(env->ct, keys, nct, env->now, ents);
		for (i = 0; i < nct; i++) {
			const struct mg_pkt_info *pi = &info[ct_idx[i]];
			enum mg_ct_action a;

			a = mg_ct_track(env->ct, ents[i], dirs[i], pi->key.proto, pi->tcp_flags,
			                pi->key.icmp_type, env->gen, env->now);
			acts[ct_idx[i]] = (uint8_t)a;
			switch (a) {
			case MG_CT_PASS:
				c->ct_tracked++;
				break;
			case MG_CT_INVALID:
				reasons[ct_idx[i]] = MG_DROP_CT_TCP_NOT_SYN;
				break;
			case MG_CT_RECHECK:
				c->ct_rechecked++;
				/* fall through */
			default:
				ip_idx[nip++] = ct_idx[i];
				break;
			}
		}
	}

	/* Stage 3: both identities of every packet that needs a verdict. */
	for (i = 0; i < nip; i++) {
		const struct mg_flow_key *k = &info[ip_idx[i]].key;

		fams[2 * i] = k->family;
		fams[2 * i + 1] = k->family;
		addrs[2 * i] = k->src;
		addrs[2 * i + 1] = k->dst;
	}
	if (env->ipc != NULL) {
		mg_ipcache_lookup_bulk(env->ipc, fams, addrs, ids, 2 * nip);
	} else {
		for (i = 0; i < 2 * nip; i++)
			ids[i] = world_of(env, fams[i]);
	}

	/* Stage 4: verdicts; an allowed new flow gets its entry. */
	for (i = 0; i < nip; i++) {
		unsigned p = ip_idx[i];
		const struct mg_flow_key *k = &info[p].key;
		uint16_t port = k->dport;
		enum mg_verdict v;

		if (k->proto == MG_IPPROTO_ICMP || k->proto == MG_IPPROTO_ICMPV6)
			port = k->icmp_type;
		v = env->policy == NULL ? MG_VERDICT_ALLOW
		                        : mg_policy_verdict(env->policy, ids[2 * i], ids[2 * i + 1],
		                                            k->proto, port);
		if (v == MG_VERDICT_DENY_EGRESS) {
			c->denied_egress++;
			reasons[p] = MG_DROP_POLICY_EGRESS;
			continue;
		}
		if (v != MG_VERDICT_ALLOW) {
			c->denied_ingress++;
			reasons[p] = MG_DROP_POLICY_INGRESS;
			continue;
		}
		if (env->ct != NULL) {
			unsigned j = ct_pos[p];

			if (acts[p] == MG_CT_RECHECK) {
				mg_ct_confirm(ents[j], env->gen);
			} else if (acts[p] == MG_CT_NEW &&
			           mg_ct_insert(env->ct, &keys[j], dirs[j], info[p].tcp_flags,
			                        env->gen, env->now) == NULL) {
				reasons[p] = MG_DROP_CT_FULL;
				continue;
			}
		}
		c->allowed++;
	}

	/* A first fragment that passes lets the rest of its datagram follow. */
	if (env->ct != NULL)
		for (i = 0; i < n; i++)
			if (MG_UNLIKELY(info[i].frag & MG_PKT_FRAG_FIRST) &&
			    reasons[i] == MG_DROP_NONE &&
			    (info[i].cls == MG_PKT_IPV4 || info[i].cls == MG_PKT_IPV6) &&
			    mg_ct_frag_add(env->ct, &info[i].key, info[i].ip_id, env->zone,
			                   env->now) != 0)
				reasons[i] = MG_DROP_FRAG_FULL;

	for (i = 0; i < n; i++)
		if (reasons[i] != MG_DROP_NONE) {
			c->drops[reasons[i]]++;
			c->port_drops[in_port]++;
		}
}
