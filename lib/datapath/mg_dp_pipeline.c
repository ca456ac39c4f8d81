/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The per-burst pipeline over plain byte buffers: parse every frame, look
 * up both addresses of every IP packet in the ipcache in one bulk call,
 * then take each policy verdict. Staging the burst this way lets the
 * ipcache prefetch ahead, and keeps the DPDK layer (mg_datapath.c) a thin
 * shell of rx and tx around it. Nothing here allocates or blocks. With a
 * monitor armed, a last stage copies drops and sampled verdicts into the
 * worker's event ring (mg_dp_monitor.h).
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

/* An ICMP error passes only if the packet it quotes belongs to a tracked flow. */
static enum mg_drop_reason
icmp_related(const struct mg_dp_env *env, const uint8_t *data, uint32_t len,
             const struct mg_pkt_info *info)
{
	struct mg_flow_key inner;
	struct mg_ct_key key;
	uint8_t dir;

	if (!mg_pkt_icmp_inner(data, len, info, &inner))
		return MG_DROP_ICMP_UNRELATED;
	mg_ct_key_make(&inner, env->zone, &key, &dir);
	return mg_ct_lookup(env->ct, &key, env->now) != NULL ? MG_DROP_NONE
	                                                     : MG_DROP_ICMP_UNRELATED;
}

static inline uint32_t
identity_of(const struct mg_dp_env *env, uint8_t family, const uint8_t *addr)
{
	return env->ipc != NULL ? mg_ipcache_lookup(env->ipc, family, addr) : world_of(env, family);
}

static inline uint16_t
policy_port(const struct mg_flow_key *k)
{
	if (k->proto == MG_IPPROTO_ICMP || k->proto == MG_IPPROTO_ICMPV6)
		return k->icmp_type;
	return k->dport;
}

/* What a packet still needs after stage 1. */
enum todo {
	TODO_NONE,     /* settled: reasons[i] says pass or drop */
	TODO_FLOW,     /* conntrack lookup, maybe a verdict */
	TODO_VERDICT,  /* a verdict only (no conntrack table) */
	TODO_FRAGMENT, /* a non-first fragment: after the burst's first fragments */
	TODO_RELATED,  /* an ICMP error: after the burst's new flows */
};

/* Who settled a packet's fate, from what the stages left behind. */
static enum mg_dp_event_by
decided_by(uint8_t reason, uint8_t todo, uint8_t act)
{
	if (reason == MG_DROP_POLICY_EGRESS)
		return MG_DP_BY_POLICY_EGRESS;
	if (reason == MG_DROP_POLICY_INGRESS)
		return MG_DP_BY_POLICY_INGRESS;
	if (reason == MG_DROP_FRAG_UNTRACKED)
		return MG_DP_BY_CONNTRACK; /* stateless: no first fragment can be known */
	switch (todo) {
	case TODO_NONE:
		return MG_DP_BY_PARSER;
	case TODO_FRAGMENT:
	case TODO_RELATED:
		return MG_DP_BY_CONNTRACK;
	default:
		/* acts[] is set for every TODO_FLOW and TODO_VERDICT packet */
		return act == MG_CT_PASS || act == MG_CT_INVALID ? MG_DP_BY_CONNTRACK
		                                                 : MG_DP_BY_POLICY;
	}
}

/*
 * The burst's working arrays, as the stages see them. The arrays
 * themselves are locals of mg_dp_classify: a struct holding them changes
 * their places on the stack, and that alone cost the stateless pipeline
 * two cycles per packet (meshgate-bench pipeline). This struct of
 * pointers to them disappears once the stages are inlined.
 */
struct burst {
	struct mg_pkt_info *info;
	struct mg_ct_key *keys;
	struct mg_ct_entry **ents;
	uint8_t *todo, *dirs, *acts;
	uint16_t *ct_pos; /* packet -> its slot in keys[] / ents[] */
	uint16_t *id_pos; /* packet -> its pair in ids[] ... */
	bool *has_id;     /* ... when it has one */
	const uint8_t **addrs;
	uint8_t *fams;
	uint32_t *ids;
	/* per queued pair: what its verdict needs, and the verdict (stage 3) */
	uint8_t *vproto;
	uint16_t *vport;
	uint8_t *verdicts;
};

/*
 * The stages of the per-packet path are always inlined into
 * mg_dp_classify, one function to the compiler as before they were split:
 * no stage costs a call, and the counts they hand on stay in registers.
 */
#define STAGE static inline __attribute__((always_inline))

/*
 * Stage 6, only with a monitor: one event per drop and per 1-in-N
 * forwarded frame into the worker's ring. Out of line and cold, so the
 * pipeline without a monitor pays one test of env->mon per burst. The
 * identities are those the policy stage used; packets settled without
 * them (conntrack, parser) are looked up here, for the sampled ones only.
 */
__attribute__((noinline, cold)) static void
record_events(const struct mg_dp_env *env, unsigned in_port, const uint32_t *len, unsigned n,
              const uint8_t *reasons, const struct burst *b)
{
	struct mg_dp_mon *m = env->mon;
	unsigned i;

	for (i = 0; i < n; i++) {
		const struct mg_flow_key *k = &b->info[i].key;
		struct mg_dp_event *ev;
		uint8_t act;

		if (reasons[i] != MG_DROP_NONE) {
			if (!(m->mask & MG_DP_MON_DROPS))
				continue;
		} else {
			if (!(m->mask & MG_DP_MON_VERDICTS) || --m->countdown != 0)
				continue;
			m->countdown = m->one_in;
		}
		ev = mg_dp_mon_slot(m);
		if (ev == NULL)
			continue; /* counted as lost */
		ev->tsc = env->now;
		ev->ns = 0;
		memcpy(ev->src, k->src, sizeof(ev->src));
		memcpy(ev->dst, k->dst, sizeof(ev->dst));
		if (b->has_id[i]) {
			ev->src_id = b->ids[2 * b->id_pos[i]];
			ev->dst_id = b->ids[2 * b->id_pos[i] + 1];
		} else if (k->family != 0) {
			ev->src_id = identity_of(env, k->family, k->src);
			ev->dst_id = identity_of(env, k->family, k->dst);
		} else {
			ev->src_id = ev->dst_id = MG_ID_UNKNOWN;
		}
		ev->len = len[i];
		ev->sport = k->sport;
		ev->dport = k->dport;
		ev->worker = m->worker;
		ev->in_port = (uint8_t)in_port;
		ev->reason = reasons[i];
		act = b->todo[i] == TODO_FLOW || b->todo[i] == TODO_VERDICT ? b->acts[i] : 0;
		ev->by = (uint8_t)decided_by(reasons[i], b->todo[i], act);
		ev->family = k->family;
		ev->proto = k->proto;
		ev->icmp_type = k->icmp_type;
		ev->icmp_code = k->icmp_code;
		ev->cls = (uint8_t)b->info[i].cls;
		mg_dp_mon_commit(m);
	}
}

/*
 * Stage 1: parse; settle what needs neither flow state nor policy. Flow
 * packets get their conntrack key; non-first fragments and ICMP errors
 * wait for stage 5 (counted in *deferred).
 * @return the number of conntrack keys.
 */
STAGE unsigned
stage_parse(const struct mg_dp_env *env, unsigned in_port, const uint8_t *const *data,
            const uint32_t *len, unsigned n, uint8_t *reasons, struct mg_dp_counters *c,
            struct burst *b, unsigned *deferred)
{
	unsigned i, nct = 0;

	for (i = 0; i < n; i++) {
		enum mg_drop_reason r = mg_pkt_parse(data[i], len[i], &b->info[i]);
		const struct mg_pkt_info *pi = &b->info[i];

		c->rx_pkts[in_port]++;
		c->rx_bytes[in_port] += len[i];
		reasons[i] = (uint8_t)r;
		b->todo[i] = TODO_NONE;
		b->has_id[i] = false;
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
		if (MG_UNLIKELY(pi->frag & MG_PKT_FRAG_NONFIRST)) {
			/* no ports: it can only follow its first fragment */
			if (env->ct == NULL) {
				reasons[i] = MG_DROP_FRAG_UNTRACKED;
			} else {
				b->todo[i] = TODO_FRAGMENT;
				(*deferred)++;
			}
			continue;
		}
		if (env->ct == NULL) {
			b->todo[i] = TODO_VERDICT;
			b->acts[i] = MG_CT_NEW_NOTRACK;
		} else if (MG_UNLIKELY(mg_pkt_is_icmp_error(&pi->key))) {
			b->todo[i] = TODO_RELATED;
			(*deferred)++;
			continue;
		} else {
			b->todo[i] = TODO_FLOW;
			mg_ct_key_make(&pi->key, env->zone, &b->keys[nct], &b->dirs[nct]);
			b->ct_pos[i] = (uint16_t)nct++;
		}
	}
	return nct;
}

/*
 * Stage 2: conntrack for every flow packet, in one bulk lookup; what
 * conntrack does not settle is queued for the identity lookup.
 * @return the number of address pairs queued.
 */
STAGE unsigned
stage_track(const struct mg_dp_env *env, unsigned n, unsigned nct, struct burst *b)
{
	unsigned i, nid = 0;

	if (nct != 0)
		mg_ct_lookup_bulk(env->ct, b->keys, nct, env->now, b->ents);
	for (i = 0; i < n; i++) {
		const struct mg_pkt_info *pi = &b->info[i];
		unsigned j;

		if (b->todo[i] == TODO_FLOW) {
			j = b->ct_pos[i];
			b->acts[i] = (uint8_t)mg_ct_track(env->ct, b->ents[j], b->dirs[j],
			                                  pi->key.proto, pi->tcp_flags,
			                                  pi->key.icmp_type, env->gen, env->now);
		} else if (b->todo[i] != TODO_VERDICT) {
			continue;
		}
		if (b->acts[i] == MG_CT_PASS || b->acts[i] == MG_CT_INVALID)
			continue;
		/* Stage 3 input: both addresses of what needs a verdict. */
		b->fams[2 * nid] = pi->key.family;
		b->fams[2 * nid + 1] = pi->key.family;
		b->addrs[2 * nid] = pi->key.src;
		b->addrs[2 * nid + 1] = pi->key.dst;
		b->vproto[nid] = pi->key.proto;
		b->vport[nid] = policy_port(&pi->key);
		b->id_pos[i] = (uint16_t)nid++;
		b->has_id[i] = true;
	}
	return nid;
}

/*
 * Stage 3: identities of the @p nid queued address pairs, in one bulk
 * lookup, then their verdicts in bulk (the policy's tables prefetched
 * across the burst).
 */
STAGE void
stage_identities(const struct mg_dp_env *env, unsigned nid, struct burst *b)
{
	unsigned i;

	if (env->ipc != NULL) {
		mg_ipcache_lookup_bulk(env->ipc, b->fams, b->addrs, b->ids, 2 * nid);
	} else {
		for (i = 0; i < 2 * nid; i++)
			b->ids[i] = world_of(env, b->fams[i]);
	}
	if (env->policy == NULL)
		return;
	for (i = 0; i < nid; i += MG_POLICY_BULK_MAX)
		mg_policy_verdict_bulk(env->policy, b->ids + 2 * i, b->vproto + i, b->vport + i,
		                       nid - i < MG_POLICY_BULK_MAX ? nid - i : MG_POLICY_BULK_MAX,
		                       b->verdicts + i);
}

/*
 * Stage 4: decide, in burst order. A packet that missed conntrack before
 * an earlier packet of the burst opened its flow is tracked in that flow
 * now; the rest gets its policy verdict, and an allowed new flow its
 * entry (a first fragment its record first).
 */
STAGE void
stage_decide(const struct mg_dp_env *env, unsigned n, uint8_t *reasons, struct mg_dp_counters *c,
             struct burst *b)
{
	unsigned i, created = 0;

	for (i = 0; i < n; i++) {
		const struct mg_pkt_info *pi = &b->info[i];
		struct mg_ct_entry *e = NULL;
		uint32_t src, dst;
		enum mg_verdict v;
		unsigned j = 0;

		if (b->todo[i] != TODO_FLOW && b->todo[i] != TODO_VERDICT)
			continue;
		if (b->todo[i] == TODO_FLOW) {
			j = b->ct_pos[i];
			e = b->ents[j];
			/* Missed before an earlier packet of this burst opened the
			 * flow? Then it belongs to that flow. */
			if (e == NULL && created != 0 &&
			    (e = mg_ct_lookup(env->ct, &b->keys[j], env->now)) != NULL) {
				b->ents[j] = e;
				b->acts[i] = (uint8_t)mg_ct_track(
				        env->ct, e, b->dirs[j], pi->key.proto, pi->tcp_flags,
				        pi->key.icmp_type, env->gen, env->now);
			}
		}
		switch (b->acts[i]) {
		case MG_CT_PASS:
			c->ct_tracked++;
			goto passed;
		case MG_CT_INVALID:
			reasons[i] = MG_DROP_CT_TCP_NOT_SYN;
			continue;
		case MG_CT_RECHECK:
			c->ct_rechecked++;
			break;
		default:
			break;
		}
		if (env->policy == NULL) {
			v = MG_VERDICT_ALLOW;
		} else if (MG_LIKELY(b->has_id[i])) {
			v = (enum mg_verdict)b->verdicts[b->id_pos[i]];
		} else {
			/* judged only now (its flow turned up in this burst, and the
			 * packet is not part of it): look its identities up alone */
			src = identity_of(env, pi->key.family, pi->key.src);
			dst = identity_of(env, pi->key.family, pi->key.dst);
			v = mg_policy_verdict(env->policy, src, dst, pi->key.proto,
			                      policy_port(&pi->key));
		}
		if (v == MG_VERDICT_DENY_EGRESS) {
			c->denied_egress++;
			reasons[i] = MG_DROP_POLICY_EGRESS;
			continue;
		}
		if (v != MG_VERDICT_ALLOW) {
			c->denied_ingress++;
			reasons[i] = MG_DROP_POLICY_INGRESS;
			continue;
		}
		/* A first fragment's record before its flow's entry: when either
		 * table is full the packet is dropped and nothing is left behind. */
		if (MG_UNLIKELY(pi->frag & MG_PKT_FRAG_FIRST) && env->ct != NULL &&
		    mg_ct_frag_add(env->ct, &pi->key, pi->ip_id, env->zone, env->now) != 0) {
			reasons[i] = MG_DROP_FRAG_FULL;
			continue;
		}
		if (b->acts[i] == MG_CT_RECHECK) {
			mg_ct_confirm(b->ents[j], env->gen);
		} else if (b->acts[i] == MG_CT_NEW) {
			if (mg_ct_insert(env->ct, &b->keys[j], b->dirs[j], pi->tcp_flags, env->gen,
			                 env->now) == NULL) {
				reasons[i] = MG_DROP_CT_FULL;
				continue;
			}
			created++;
		}
		c->allowed++;
		continue;
	passed:
		/* A tracked first fragment lets the rest of its datagram follow. */
		if (MG_UNLIKELY(pi->frag & MG_PKT_FRAG_FIRST) &&
		    mg_ct_frag_add(env->ct, &pi->key, pi->ip_id, env->zone, env->now) != 0)
			reasons[i] = MG_DROP_FRAG_FULL;
	}
}

/* Stage 5: what had to wait for the burst's first fragments and new flows. */
STAGE void
stage_deferred(const struct mg_dp_env *env, const uint8_t *const *data, const uint32_t *len,
               unsigned n, uint8_t *reasons, struct mg_dp_counters *c, const struct burst *b)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		const struct mg_pkt_info *pi = &b->info[i];

		if (b->todo[i] == TODO_FRAGMENT) {
			if (mg_ct_frag_find(env->ct, &pi->key, pi->ip_id, env->zone, env->now))
				c->frag_passed++;
			else
				reasons[i] = MG_DROP_FRAG_UNTRACKED;
		} else if (b->todo[i] == TODO_RELATED) {
			reasons[i] = (uint8_t)icmp_related(env, data[i], len[i], pi);
			if (reasons[i] == MG_DROP_NONE)
				c->ct_related++;
		}
	}
}

/*
 * The stages keep burst order where it matters: a flow opened by one
 * packet of the burst is already there for the later packets of that
 * flow in the same burst, and a first fragment is recorded before the
 * later fragments of its datagram are looked up. Lookups are still done
 * in bulk (all conntrack keys, then all addresses that need a verdict);
 * only packets that missed conntrack while the burst created flows are
 * looked up a second time.
 */
void
mg_dp_classify(const struct mg_dp_env *env, unsigned in_port, const uint8_t *const *data,
               const uint32_t *len, unsigned n, uint8_t *reasons, struct mg_dp_counters *c)
{
	struct mg_pkt_info info[MG_DP_MAX_BURST];
	struct mg_ct_key keys[MG_DP_MAX_BURST];
	struct mg_ct_entry *ents[MG_DP_MAX_BURST];
	uint8_t todo[MG_DP_MAX_BURST], dirs[MG_DP_MAX_BURST], acts[MG_DP_MAX_BURST];
	uint16_t ct_pos[MG_DP_MAX_BURST];
	uint16_t id_pos[MG_DP_MAX_BURST];
	bool has_id[MG_DP_MAX_BURST];
	const uint8_t *addrs[2 * MG_DP_MAX_BURST];
	uint8_t fams[2 * MG_DP_MAX_BURST];
	uint32_t ids[2 * MG_DP_MAX_BURST];
	uint8_t vproto[MG_DP_MAX_BURST], verdicts[MG_DP_MAX_BURST];
	uint16_t vport[MG_DP_MAX_BURST];
	struct burst b = {info,   keys,  ents, todo, dirs,   acts,  ct_pos,  id_pos,
	                  has_id, addrs, fams, ids,  vproto, vport, verdicts};
	unsigned i, nct, nid, deferred = 0;

	if (n > MG_DP_MAX_BURST)
		n = MG_DP_MAX_BURST;

	nct = stage_parse(env, in_port, data, len, n, reasons, c, &b, &deferred);
	nid = stage_track(env, n, nct, &b);
	stage_identities(env, nid, &b);
	stage_decide(env, n, reasons, c, &b);
	if (deferred != 0)
		stage_deferred(env, data, len, n, reasons, c, &b);

	for (i = 0; i < n; i++)
		if (reasons[i] != MG_DROP_NONE) {
			c->drops[reasons[i]]++;
			c->port_drops[in_port]++;
		}

	if (MG_UNLIKELY(env->mon != NULL)) {
		/* a copy: were b's own address to escape, it would be kept in
		 * memory and the stages would load their arrays from it */
		const struct burst m = b;

		record_events(env, in_port, len, n, reasons, &m);
	}
}
