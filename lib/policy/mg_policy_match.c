/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Whether any selector of a policy set selects an identity, answered from
 * the compile plan's selector index rather than by evaluating every
 * selector: only the selectors without an In requirement and those filed
 * under one of the identity's own key=value pairs can match it. This is
 * what meshgate-replicator's filter asks once per identity it copies; the
 * matching itself is pol_sel_match(), as in the compiler and the trace,
 * so the filter keeps exactly the identities the compiler would put in
 * some selector's class.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy_priv.h"

struct mg_policy_matcher {
	struct pol_plan *pl;
	bool dlc;
	struct mg_policy_matcher_info info;
};

/* Does selector @p sel select a world identity, or CIDR identities? */
static bool
selects_world(const struct selector *sel, bool dlc)
{
	static const uint32_t world[] = {MG_ID_WORLD, MG_ID_WORLD_IPV4, MG_ID_WORLD_IPV6};
	bool hit = false;

	for (size_t i = 0; i < sel->nreq; i++)
		if (sel->req[i].source != NULL && streq(sel->req[i].source, "cidr") &&
		    (sel->req[i].op == SEL_IN || sel->req[i].op == SEL_EXISTS))
			return true;
	for (size_t i = 0; !hit && i < MG_ARRAY_SIZE(world); i++) {
		struct mg_labels ls = MG_LABELS_INIT;

		/* without the labels, assume the worst */
		hit = mg_labels_reserved(&ls, world[i]) != 0 || pol_sel_match(sel, &ls, dlc);
		mg_labels_clear(&ls);
	}
	return hit;
}

static bool
named_any_peer(const struct mg_policy_set *s)
{
	for (size_t r = 0; r < s->nrules; r++)
		for (unsigned sec = 0; sec < SEC_N; sec++)
			for (size_t j = 0; j < s->rules[r].nent[sec]; j++) {
				const struct entry *e = &s->rules[r].ent[sec][j];

				if (e->has_l3 || e->skipped)
					continue;
				for (size_t k = 0; k < e->nports; k++)
					if (e->ports[k].name[0] != '\0')
						return true;
			}
	return false;
}

struct mg_policy_matcher *
mg_policy_matcher_create(const struct mg_policy_set *s, bool default_local_cluster)
{
	struct mg_policy_params p = {.enforcement = MG_ENFORCE_DEFAULT,
	                             .default_local_cluster = default_local_cluster};
	struct mg_policy_matcher *m;

	if (s == NULL) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->dlc = default_local_cluster;
	m->pl = pol_plan_build(s, &p);
	if (m->pl == NULL) {
		free(m);
		errno = ENOMEM;
		return NULL;
	}
	m->info.selectors = m->pl->nd;
	for (size_t d = 0; d < m->pl->nd; d++) {
		const struct selector *sel = m->pl->drep[d];

		if (sel->nreq == 0 && !pol_sel_cluster_active(sel, m->dlc))
			m->info.all = true;
		if (!m->info.world)
			m->info.world = selects_world(sel, m->dlc);
	}
	m->info.named_any_peer = named_any_peer(s);
	return m;
}

void
mg_policy_matcher_free(struct mg_policy_matcher *m)
{
	if (m == NULL)
		return;
	pol_plan_put(m->pl);
	free(m);
}

void
mg_policy_matcher_info(const struct mg_policy_matcher *m, struct mg_policy_matcher_info *out)
{
	*out = m->info;
}

/* Do the selectors filed under label @p l's key=value include one that selects @p ls? */
static bool
anchored_match(const struct mg_policy_matcher *m, const struct mg_label *l,
               const struct mg_labels *ls)
{
	const struct pol_plan *pl = m->pl;
	size_t kl = strlen(l->key), vl = strlen(l->value);
	char buf[1024], *key = buf;
	int64_t a;

	if (kl + vl + 1 > sizeof(buf)) {
		key = malloc(kl + vl + 1);
		if (key == NULL)
			return true;
	}
	memcpy(key, l->key, kl);
	key[kl] = '\0';
	memcpy(key + kl + 1, l->value, vl);
	a = pol_itab_find(&pl->anchors, key, kl + vl + 1);
	if (key != buf)
		free(key);
	for (size_t j = 0; a >= 0 && j < pl->cand[a].n; j++)
		if (pol_sel_match(pl->drep[pl->cand[a].v[j]], ls, m->dlc))
			return true;
	return false;
}

bool
mg_policy_matcher_any(const struct mg_policy_matcher *m, const struct mg_labels *ls)
{
	const struct pol_plan *pl = m->pl;

	for (size_t i = 0; i < pl->nalways; i++)
		if (pol_sel_match(pl->drep[pl->always[i]], ls, m->dlc))
			return true;
	for (size_t i = 0; i < ls->n; i++)
		if (anchored_match(m, &ls->v[i], ls))
			return true;
	return false;
}
