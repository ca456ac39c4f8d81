/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The verdict: the only per-packet code of the policy module, what every
 * packet pays for policy. Two identity map lookups (directory,
 * leaf probe) give the source's and the destination's classes; per
 * direction one probe of the sparse cell table (or the subject row's
 * default) gives a port set; its flags and at most two bit tests decide.
 * Egress first, then ingress. No allocation, lock, syscall or log, and no
 * write: the object is immutable, and cells are read with single 64-bit
 * loads because a newer generation may be extending the table in place
 * (mg_policy_cow.c). Whatever the number of rules, selectors and
 * identities, the cost is the same.
 */
#include "policy_priv.h"

static inline const struct pol_slot *
slot_find(const struct mg_policy *pol, uint32_t id)
{
	uint32_t key = id + 1;
	uint64_t h = pol_id_hash(key);
	const struct pol_leaf *l = pol->leaves[h >> pol->shift];

	if (l != NULL)
		for (size_t i = mg_probe_home(h, l->mask);; i = mg_probe_next(i, l->mask)) {
			if (l->s[i].key == key)
				return &l->s[i];
			if (l->s[i].key == 0)
				break;
		}
	return &pol->nolabels;
}

static inline bool
bm_test(const struct mg_policy *pol, uint32_t bm, uint16_t port)
{
	return (pol->bmv[(size_t)bm * BM_WORDS + (port >> 6)] >> (port & 63)) & 1u;
}

static inline uint32_t
cell_get(const struct pol_dirtab *d, uint16_t sc, uint16_t pc)
{
	uint32_t key = (uint32_t)sc << 16 | pc;
	size_t i = pol_cell_slot(key, d->cmask);

	for (;;) {
		uint64_t v = __atomic_load_n(&d->cellv[i], __ATOMIC_RELAXED);

		if ((uint32_t)(v >> 32) == key)
			return (uint32_t)v;
		if (v == CELL_EMPTY)
			return d->rdefv[sc];
		i = mg_probe_next(i, d->cmask);
	}
}

static inline bool
dir_allows(const struct mg_policy *pol, unsigned dir, uint16_t sc, uint16_t pc, int pi,
           uint16_t port)
{
	const struct pol_dirtab *d = &pol->dir[dir];
	const struct pol_portset *ps = &pol->psv[cell_get(d, sc, pc)];

	if (ps->flags & PS_DENY_ALL)
		return false;
	if (pi >= 0 && bm_test(pol, ps->deny[pi], port))
		return false;
	if (!d->enfv[sc] || (ps->flags & PS_ALLOW_ALL))
		return true;
	return pi >= 0 && bm_test(pol, ps->allow[pi], port);
}

enum mg_verdict
mg_policy_verdict(const struct mg_policy *pol, uint32_t src, uint32_t dst, uint8_t proto,
                  uint16_t dport)
{
	const struct pol_slot *s, *d;
	int pi;

	if (pol->never)
		return MG_VERDICT_ALLOW;
	s = slot_find(pol, src);
	d = slot_find(pol, dst);
	pi = pol_proto_index(proto);
	if (!dir_allows(pol, MG_DIR_EGRESS, s->cls[CLS_SUB(MG_DIR_EGRESS)],
	                d->cls[CLS_PEER(MG_DIR_EGRESS)], pi, dport))
		return MG_VERDICT_DENY_EGRESS;
	if (!dir_allows(pol, MG_DIR_INGRESS, d->cls[CLS_SUB(MG_DIR_INGRESS)],
	                s->cls[CLS_PEER(MG_DIR_INGRESS)], pi, dport))
		return MG_VERDICT_DENY_INGRESS;
	return MG_VERDICT_ALLOW;
}
