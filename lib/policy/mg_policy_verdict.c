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

size_t pol_bulk_min_bytes = POL_BULK_MIN_BYTES;

void
pol_test_set_bulk_min(size_t bytes)
{
	pol_bulk_min_bytes = bytes ? bytes : POL_BULK_MIN_BYTES;
}

static inline bool
bm_test(const uint64_t *bmv, uint32_t bm, uint16_t port)
{
	return (bmv[(size_t)bm * BM_WORDS + (port >> 6)] >> (port & 63)) & 1u;
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

/* Does port set @p ps allow the flow, its subject class enforced or not (@p enforced)? */
static inline bool
allows(const uint64_t *bmv, bool enforced, const struct pol_portset *ps, int pi, uint16_t port)
{
	if (ps->flags & PS_DENY_ALL)
		return false;
	if (pi >= 0 && bm_test(bmv, ps->deny[pi], port))
		return false;
	if (!enforced || (ps->flags & PS_ALLOW_ALL))
		return true;
	return pi >= 0 && bm_test(bmv, ps->allow[pi], port);
}

static inline bool
dir_allows(const struct mg_policy *pol, unsigned dir, uint16_t sc, uint16_t pc, int pi,
           uint16_t port)
{
	const struct pol_dirtab *d = &pol->dir[dir];

	return allows(pol->bmv, d->enfv[sc], &pol->psv[cell_get(d, sc, pc)], pi, port);
}

/* The leaf of identity @p id (NULL: none), its hash in *@p h. */
static inline const struct pol_leaf *
leaf_of(const struct mg_policy *pol, uint32_t id, uint64_t *h)
{
	*h = pol_id_hash(id + 1);
	return pol->leaves[*h >> pol->shift];
}

static inline const struct pol_slot *
slot_in(const struct mg_policy *pol, const struct pol_leaf *l, uint64_t h, uint32_t id)
{
	uint32_t key = id + 1;

	if (l != NULL)
		for (size_t i = mg_probe_home(h, l->mask);; i = mg_probe_next(i, l->mask)) {
			if (l->s[i].key == key)
				return &l->s[i];
			if (l->s[i].key == 0)
				break;
		}
	return &pol->nolabels;
}

static inline const struct pol_slot *
slot_find(const struct mg_policy *pol, uint32_t id)
{
	uint64_t h;
	const struct pol_leaf *l = leaf_of(pol, id, &h);

	return slot_in(pol, l, h, id);
}

static inline void
prefetch_bm(const uint64_t *bmv, uint32_t bm, uint16_t port)
{
	/* bitmap 0 is the empty one, read by most flows: in cache already */
	if (bm != 0)
		__builtin_prefetch(&bmv[(size_t)bm * BM_WORDS + (port >> 6)]);
}

static inline void
prefetch_cell(const struct pol_dirtab *d, uint16_t sc, uint16_t pc)
{
	__builtin_prefetch(&d->cellv[pol_cell_slot((uint32_t)sc << 16 | pc, d->cmask)]);
	__builtin_prefetch(&d->rdefv[sc]);
}

/*
 * Passes over the burst, each issuing the prefetches of what the next one
 * reads: the identities' leaves, their home slots, the two directions'
 * cells, the two port sets, their bitmap words and enforcement flags. A pass reads only what the
 * previous one prefetched, so each memory latency is paid once per burst
 * rather than once per flow.
 */
void
mg_policy_verdict_bulk(const struct mg_policy *pol, const uint32_t *ids, const uint8_t *proto,
                       const uint16_t *dport, unsigned n, uint8_t *out)
{
	const struct pol_leaf *leaf[2 * MG_POLICY_BULK_MAX];
	uint64_t h[2 * MG_POLICY_BULK_MAX];
	/* per flow and direction (egress 2i, ingress 2i+1): classes, port set */
	uint16_t sc[2 * MG_POLICY_BULK_MAX], pc[2 * MG_POLICY_BULK_MAX];
	uint32_t ps[2 * MG_POLICY_BULK_MAX];
	const struct pol_dirtab *const dt[2] = {&pol->dir[MG_DIR_EGRESS],
	                                        &pol->dir[MG_DIR_INGRESS]};
	/* in locals: the stores to out[] (bytes) may not alias them */
	const struct pol_portset *psv = pol->psv;
	const uint64_t *bmv = pol->bmv;
	const uint8_t *enf[2] = {dt[0]->enfv, dt[1]->enfv};
	unsigned i, k;

	if (n > MG_POLICY_BULK_MAX)
		n = MG_POLICY_BULK_MAX;
	if (pol->never) {
		for (i = 0; i < n; i++)
			out[i] = MG_VERDICT_ALLOW;
		return;
	}
	/* Tables that stay in the cache gain nothing from the passes: one by one. */
	if (pol->memory < pol_bulk_min_bytes) {
		for (i = 0; i < n; i++)
			out[i] = (uint8_t)mg_policy_verdict(pol, ids[2 * i], ids[2 * i + 1],
			                                    proto[i], dport[i]);
		return;
	}
	for (i = 0; i < 2 * n; i++) {
		leaf[i] = leaf_of(pol, ids[i], &h[i]);
		if (leaf[i] != NULL)
			__builtin_prefetch(leaf[i]);
	}
	for (i = 0; i < 2 * n; i++)
		if (leaf[i] != NULL)
			__builtin_prefetch(&leaf[i]->s[mg_probe_home(h[i], leaf[i]->mask)]);
	for (i = 0; i < n; i++) {
		const struct pol_slot *s = slot_in(pol, leaf[2 * i], h[2 * i], ids[2 * i]);
		const struct pol_slot *d =
		        slot_in(pol, leaf[2 * i + 1], h[2 * i + 1], ids[2 * i + 1]);

		/* egress: the source's subject class, the destination's peer class */
		sc[2 * i] = s->cls[CLS_SUB(MG_DIR_EGRESS)];
		pc[2 * i] = d->cls[CLS_PEER(MG_DIR_EGRESS)];
		sc[2 * i + 1] = d->cls[CLS_SUB(MG_DIR_INGRESS)];
		pc[2 * i + 1] = s->cls[CLS_PEER(MG_DIR_INGRESS)];
		for (k = 0; k < 2; k++)
			prefetch_cell(dt[k], sc[2 * i + k], pc[2 * i + k]);
	}
	for (i = 0; i < 2 * n; i++) {
		ps[i] = cell_get(dt[i & 1], sc[i], pc[i]);
		__builtin_prefetch(&psv[ps[i]]);
	}
	for (i = 0; i < n; i++) {
		int pi = pol_proto_index(proto[i]);

		for (k = 2 * i; k < 2 * i + 2; k++) {
			if (pi >= 0) {
				prefetch_bm(bmv, psv[ps[k]].deny[pi], dport[i]);
				prefetch_bm(bmv, psv[ps[k]].allow[pi], dport[i]);
			}
			__builtin_prefetch(&enf[k & 1][sc[k]]);
		}
	}
	for (i = 0; i < n; i++) {
		int pi = pol_proto_index(proto[i]);

		if (!allows(bmv, enf[0][sc[2 * i]], &psv[ps[2 * i]], pi, dport[i]))
			out[i] = MG_VERDICT_DENY_EGRESS;
		else if (!allows(bmv, enf[1][sc[2 * i + 1]], &psv[ps[2 * i + 1]], pi, dport[i]))
			out[i] = MG_VERDICT_DENY_INGRESS;
		else
			out[i] = MG_VERDICT_ALLOW;
	}
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
