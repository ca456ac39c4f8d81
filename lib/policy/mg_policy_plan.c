/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The plan of a compile: what the builder evaluates, derived from the
 * rule AST and the compile parameters alone, then shared unchanged by
 * every generation updated from that compile. Distinct selectors are
 * interned (canonical encoding plus the cluster scope in force); per
 * direction, the subject and peer selectors that matter get positions in
 * the class signatures, the rules are listed per subject position, and
 * the port names used are sorted. The selector index files each distinct
 * selector under the key=value pairs of one In requirement, so that an
 * identity is matched only against the selectors its labels can satisfy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_priv.h"

void
pol_plan_put(struct pol_plan *pl)
{
	size_t i;
	unsigned d;

	if (pl == NULL || --pl->refs != 0)
		return;
	for (d = 0; d < 2; d++) {
		struct plan_dir *pd = &pl->dir[d];

		if (pd->rules_at)
			for (i = 0; i < pd->ns; i++)
				free(pd->rules_at[i]);
		free(pd->rules_at);
		free(pd->nrules_at);
		free(pd->spos);
		free(pd->ppos);
		free(pd->slist);
		free(pd->plist);
		free(pd->names);
	}
	for (i = 0; pl->cand != NULL && i < pl->anchors.n; i++)
		free(pl->cand[i].v);
	free(pl->cand);
	pol_itab_free(&pl->anchors);
	free(pl->always);
	free(pl->dsel);
	free(pl->drep);
	free(pl);
}

static bool
rule_in_dir(const struct rule *r, unsigned dir)
{
	return r->nent[dir] + r->nent[dir + 2] > 0;
}

static void
add_pos(int32_t *pos, uint32_t *list, size_t *n, uint32_t d)
{
	if (pos[d] < 0) {
		pos[d] = (int32_t)*n;
		list[(*n)++] = d;
	}
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(const pname_t *)a, *(const pname_t *)b);
}

static int
plan_dir_build(struct pol_plan *pl, unsigned dir)
{
	const struct mg_policy_set *s = pl->s;
	struct plan_dir *pd = &pl->dir[dir];
	size_t nd = pl->nd ? pl->nd : 1, i, j, k, q, cap = 0;
	unsigned sec;

	pd->spos = malloc(nd * sizeof(*pd->spos));
	pd->ppos = malloc(nd * sizeof(*pd->ppos));
	pd->slist = malloc(nd * sizeof(*pd->slist));
	pd->plist = malloc(nd * sizeof(*pd->plist));
	if (!pd->spos || !pd->ppos || !pd->slist || !pd->plist)
		return -ENOMEM;
	memset(pd->spos, 0xff, nd * sizeof(*pd->spos));
	memset(pd->ppos, 0xff, nd * sizeof(*pd->ppos));
	for (i = 0; i < s->nrules; i++) {
		const struct rule *r = &s->rules[i];

		if (!rule_in_dir(r, dir))
			continue;
		add_pos(pd->spos, pd->slist, &pd->ns, pl->dsel[r->subject]);
		for (sec = dir; sec < SEC_N; sec += 2)
			for (j = 0; j < r->nent[sec]; j++) {
				const struct entry *e = &r->ent[sec][j];

				for (k = 0; k < e->npeers; k++)
					add_pos(pd->ppos, pd->plist, &pd->np,
					        pl->dsel[e->peers[k]]);
				for (k = 0; k < e->nports; k++) {
					if (e->ports[k].name[0] == '\0')
						continue;
					for (q = 0; q < pd->nnames; q++)
						if (strcmp(pd->names[q], e->ports[k].name) == 0)
							break;
					if (q < pd->nnames)
						continue;
					if (mg_grow(&pd->names, &cap, pd->nnames,
					            sizeof(*pd->names), 8))
						return -ENOMEM;
					memcpy(pd->names[pd->nnames++], e->ports[k].name,
					       sizeof(pname_t));
				}
			}
	}
	if (pd->nnames > 1)
		qsort(pd->names, pd->nnames, sizeof(*pd->names), cmp_name);
	pd->sw = (pd->ns + 63) / 64;
	pd->pw = (pd->np + 63) / 64;
	pd->rules_at = calloc(pd->ns ? pd->ns : 1, sizeof(*pd->rules_at));
	pd->nrules_at = calloc(pd->ns ? pd->ns : 1, sizeof(*pd->nrules_at));
	if (pd->rules_at == NULL || pd->nrules_at == NULL)
		return -ENOMEM;
	for (i = 0; i < s->nrules; i++) {
		const struct rule *r = &s->rules[i];
		int32_t p;
		void *v;

		if (!rule_in_dir(r, dir))
			continue;
		p = pd->spos[pl->dsel[r->subject]];
		v = realloc(pd->rules_at[p], (pd->nrules_at[p] + 1) * sizeof(uint32_t));
		if (v == NULL)
			return -ENOMEM;
		pd->rules_at[p] = v;
		pd->rules_at[p][pd->nrules_at[p]++] = (uint32_t)i;
		pl->bytes += sizeof(uint32_t);
	}
	pl->bytes +=
	        nd * 16 + pd->ns * (sizeof(void *) + sizeof(size_t)) + pd->nnames * sizeof(pname_t);
	return 0;
}

static int
cand_push(struct plan_cand *c, uint32_t d)
{
	if (mg_grow(&c->v, &c->cap, c->n, sizeof(*c->v), 4))
		return -ENOMEM;
	c->v[c->n++] = d;
	return 0;
}

/* Anchor "key\0value" of value @p v of requirement @p r, interned: its index in *@p a. */
static int
anchor_intern(struct pol_plan *pl, const struct sel_req *r, size_t v, char **key, size_t *keycap,
              uint32_t *a)
{
	size_t kl = strlen(r->key), vl = strlen(r->vals[v]);
	bool isnew;

	if (kl + vl + 1 > *keycap) {
		char *k = realloc(*key, kl + vl + 1);

		if (k == NULL)
			return -ENOMEM;
		*key = k;
		*keycap = kl + vl + 1;
	}
	memcpy(*key, r->key, kl);
	(*key)[kl] = '\0';
	memcpy(*key + kl + 1, r->vals[v], vl);
	return pol_itab_intern(&pl->anchors, *key, kl + vl + 1, a, &isnew) ? -ENOMEM : 0;
}

/*
 * Count, per anchor, the selectors with an In requirement listing it; the
 * anchor of requirement r of selector d costs the sum of its values' counts.
 */
static int
anchor_counts(struct pol_plan *pl, uint32_t **cnt, size_t *capcnt, char **key, size_t *keycap)
{
	size_t d, i, v;

	for (d = 0; d < pl->nd; d++) {
		const struct selector *sel = pl->drep[d];

		for (i = 0; i < sel->nreq; i++) {
			if (sel->req[i].op != SEL_IN)
				continue;
			for (v = 0; v < sel->req[i].nvals; v++) {
				uint32_t a;

				if (anchor_intern(pl, &sel->req[i], v, key, keycap, &a))
					return -ENOMEM;
				if (a >= *capcnt) {
					size_t cap = *capcnt ? 2 * *capcnt : 64;
					uint32_t *c;

					while (cap <= a)
						cap *= 2;
					c = realloc(*cnt, cap * sizeof(*c));
					if (c == NULL)
						return -ENOMEM;
					memset(c + *capcnt, 0, (cap - *capcnt) * sizeof(*c));
					*cnt = c;
					*capcnt = cap;
				}
				(*cnt)[a]++;
			}
		}
	}
	return 0;
}

/*
 * File every distinct selector under the values of one In requirement: the
 * one whose anchors the fewest other selectors share. Selectors scoped to
 * a namespace and naming an app that every namespace has ("app: api") go
 * under the namespace, not under the app, so an identity is tried against
 * its namespace's selectors rather than every namespace's.
 */
static int
plan_index(struct pol_plan *pl)
{
	size_t d, i, capcand = 0, capcnt = 0;
	uint32_t *cnt = NULL;
	char *key = NULL;
	size_t keycap = 0;

	pl->always = calloc(pl->nd ? pl->nd : 1, sizeof(*pl->always));
	if (pl->always == NULL)
		return -ENOMEM;
	if (anchor_counts(pl, &cnt, &capcnt, &key, &keycap))
		goto oom;
	capcand = pl->anchors.n;
	pl->cand = calloc(capcand ? capcand : 1, sizeof(*pl->cand));
	if (pl->cand == NULL)
		goto oom;
	for (d = 0; d < pl->nd; d++) {
		const struct selector *sel = pl->drep[d];
		const struct sel_req *best = NULL;
		uint64_t best_cost = 0;

		for (i = 0; i < sel->nreq; i++) {
			const struct sel_req *r = &sel->req[i];
			uint64_t cost = 0;
			uint32_t a;

			if (r->op != SEL_IN || r->nvals == 0)
				continue;
			for (size_t v = 0; v < r->nvals; v++) {
				if (anchor_intern(pl, r, v, &key, &keycap, &a))
					goto oom;
				cost += cnt[a];
			}
			if (best == NULL || cost < best_cost) {
				best = r;
				best_cost = cost;
			}
		}
		if (best == NULL) {
			pl->always[pl->nalways++] = (uint32_t)d;
			continue;
		}
		for (i = 0; i < best->nvals; i++) {
			uint32_t a;

			/* interned by anchor_counts already: a < capcand */
			if (anchor_intern(pl, best, i, &key, &keycap, &a))
				goto oom;
			/* a selector listing a value twice is filed once */
			if ((pl->cand[a].n == 0 || pl->cand[a].v[pl->cand[a].n - 1] != d) &&
			    cand_push(&pl->cand[a], (uint32_t)d))
				goto oom;
			pl->bytes += sizeof(uint32_t);
		}
	}
	free(key);
	free(cnt);
	pl->bytes += pol_itab_bytes(&pl->anchors) + capcand * sizeof(struct plan_cand) +
	             pl->nd * sizeof(uint32_t);
	return 0;
oom:
	free(key);
	free(cnt);
	return -ENOMEM;
}

struct pol_plan *
pol_plan_build(const struct mg_policy_set *s, const struct mg_policy_params *p)
{
	struct pol_plan *pl = calloc(1, sizeof(*pl));
	struct itab canon = {0};
	size_t i;
	int rc = 0;

	if (pl == NULL)
		return NULL;
	pl->refs = 1;
	pl->s = s;
	pl->gen = s->gen;
	pl->p = *p;
	pl->dsel = calloc(s->nsel ? s->nsel : 1, sizeof(*pl->dsel));
	pl->drep = calloc(s->nsel ? s->nsel : 1, sizeof(*pl->drep));
	if (pl->dsel == NULL || pl->drep == NULL)
		goto err;
	for (i = 0; i < s->nsel && rc == 0; i++) {
		const struct selector *sel = s->sel[i];
		size_t len = strlen(sel->canon);
		char *key = malloc(len + 80);
		bool isnew;
		uint32_t idx;

		if (key == NULL)
			goto err;
		memcpy(key, sel->canon, len);
		/* the cluster scope in force is part of what the selector means */
		if (pol_sel_cluster_active(sel, p->default_local_cluster))
			len += (size_t)snprintf(
			        key + len, 80, "|C%c%zu:%s", sel->cl == SELC_EQ ? 'Q' : 'E',
			        strlen(sel->cluster), sel->cl == SELC_EQ ? sel->cluster : "");
		rc = pol_itab_intern(&canon, key, len, &idx, &isnew);
		free(key);
		if (rc == 0) {
			pl->dsel[i] = idx;
			if (isnew)
				pl->drep[idx] = sel;
		}
	}
	pl->nd = canon.n;
	pol_itab_free(&canon);
	if (rc)
		goto err;
	pl->bytes = sizeof(*pl) + s->nsel * (sizeof(uint32_t) + sizeof(void *));
	if (plan_index(pl) || plan_dir_build(pl, MG_DIR_INGRESS) ||
	    plan_dir_build(pl, MG_DIR_EGRESS))
		goto err;
	return pl;
err:
	pol_itab_free(&canon);
	pol_plan_put(pl);
	return NULL;
}

int
pol_plan_name_index(const struct plan_dir *pd, const char *name)
{
	const pname_t *f = bsearch(name, pd->names, pd->nnames, sizeof(*pd->names), cmp_name);

	return f ? (int)(f - pd->names) : -1;
}
