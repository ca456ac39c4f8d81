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
	struct pol_plan *pl; /* its distinct selectors (drep) */
	bool dlc;
	struct mg_policy_matcher_info info;
	/*
	 * The index: every distinct selector is filed under keys made of the
	 * labels it requires (In), so that an identity is matched only against
	 * the selectors filed under its own labels: "n<ns>" (namespace only),
	 * "N<ns>\0<key>\0<value>" (namespace and one more label), or
	 * "A<key>\0<value>" (a label, no namespace); the few with no In
	 * requirement are always candidates. The namespace comes first because
	 * implicit scoping gives it to every CNP subject and unqualified peer,
	 * so that identities of namespaces no policy names have no candidates.
	 */
	struct itab idx;
	struct plan_cand *cand; /* per key of idx */
	size_t capcand;
	uint32_t *always;
	size_t nalways;
};

#define MAX_KEYS_PER_SEL 64 /* past this many (value) combinations, one dimension only */

static bool
is_ns_req(const struct sel_req *r)
{
	return r->op == SEL_IN && (r->source == NULL || streq(r->source, "k8s")) &&
	       streq(r->key, POL_NS_KEY);
}

/* Build "<tag><a>[\0<b>[\0<c>]]" into *buf (grown as needed); its length, or 0 on ENOMEM. */
static size_t
make_key(char **buf, size_t *cap, char tag, const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = b ? strlen(b) + 1 : 0, lc = c ? strlen(c) + 1 : 0;
	size_t len = 1 + la + lb + lc;
	char *p;

	if (len > *cap) {
		p = realloc(*buf, len);
		if (p == NULL)
			return 0;
		*buf = p;
		*cap = len;
	}
	p = *buf;
	*p++ = tag;
	memcpy(p, a, la);
	p += la;
	if (b != NULL) {
		*p++ = '\0';
		memcpy(p, b, lb - 1);
		p += lb - 1;
	}
	if (c != NULL) {
		*p++ = '\0';
		memcpy(p, c, lc - 1);
	}
	return len;
}

/* File distinct selector @p d under key @p key. 0 or -ENOMEM. */
static int
file_under(struct mg_policy_matcher *m, const char *key, size_t len, uint32_t d)
{
	struct plan_cand *c;
	uint32_t a;
	bool isnew;

	if (len == 0 || pol_itab_intern(&m->idx, key, len, &a, &isnew))
		return -ENOMEM;
	if (a >= m->capcand) {
		size_t cap = m->capcand ? 2 * m->capcand : 64;

		c = realloc(m->cand, cap * sizeof(*c));
		if (c == NULL)
			return -ENOMEM;
		memset(c + m->capcand, 0, (cap - m->capcand) * sizeof(*c));
		m->cand = c;
		m->capcand = cap;
	}
	c = &m->cand[a];
	if (c->n > 0 && c->v[c->n - 1] == d)
		return 0; /* a value listed twice */
	if (mg_grow(&c->v, &c->cap, c->n, sizeof(*c->v), 4))
		return -ENOMEM;
	c->v[c->n++] = d;
	return 0;
}

/* File selector @p d under the keys of its namespace and one other In requirement. */
static int
index_selector(struct mg_policy_matcher *m, uint32_t d, char **buf, size_t *cap)
{
	const struct selector *sel = m->pl->drep[d];
	const struct sel_req *ns = NULL, *other = NULL;
	int rc = 0;

	for (size_t i = 0; i < sel->nreq; i++) {
		const struct sel_req *r = &sel->req[i];

		if (r->op != SEL_IN || r->nvals == 0)
			continue;
		if (is_ns_req(r) && (ns == NULL || r->nvals < ns->nvals))
			ns = r;
		else if (!is_ns_req(r) && (other == NULL || r->nvals < other->nvals))
			other = r;
	}
	if (ns != NULL && other != NULL && ns->nvals * other->nvals > MAX_KEYS_PER_SEL)
		other = NULL;
	if (ns == NULL && other == NULL) {
		m->always[m->nalways++] = d;
		return 0;
	}
	for (size_t i = 0; rc == 0 && i < (ns ? ns->nvals : 1); i++)
		for (size_t j = 0; rc == 0 && j < (other ? other->nvals : 1); j++) {
			size_t len;

			if (ns != NULL && other != NULL)
				len = make_key(buf, cap, 'N', ns->vals[i], other->key,
				               other->vals[j]);
			else if (ns != NULL)
				len = make_key(buf, cap, 'n', ns->vals[i], NULL, NULL);
			else
				len = make_key(buf, cap, 'A', other->key, other->vals[j], NULL);
			rc = file_under(m, *buf, len, d);
		}
	return rc;
}

static int
build_index(struct mg_policy_matcher *m)
{
	char *buf = NULL;
	size_t cap = 0;
	int rc = 0;

	m->always = calloc(m->pl->nd ? m->pl->nd : 1, sizeof(*m->always));
	if (m->always == NULL)
		return -ENOMEM;
	for (size_t d = 0; rc == 0 && d < m->pl->nd; d++)
		rc = index_selector(m, (uint32_t)d, &buf, &cap);
	free(buf);
	return rc;
}

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
	if (build_index(m) != 0) {
		mg_policy_matcher_free(m);
		errno = ENOMEM;
		return NULL;
	}
	return m;
}

void
mg_policy_matcher_free(struct mg_policy_matcher *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; m->cand != NULL && i < m->idx.n; i++)
		free(m->cand[i].v);
	free(m->cand);
	pol_itab_free(&m->idx);
	free(m->always);
	pol_plan_put(m->pl);
	free(m);
}

void
mg_policy_matcher_info(const struct mg_policy_matcher *m, struct mg_policy_matcher_info *out)
{
	*out = m->info;
}

/* Does a candidate filed under @p key (NULL: out of memory) select @p ls? */
static bool
candidates_match(const struct mg_policy_matcher *m, const char *key, size_t len,
                 const struct mg_labels *ls)
{
	int64_t a;

	if (key == NULL)
		return true; /* the safe answer */
	a = pol_itab_find(&m->idx, key, len);
	for (size_t j = 0; a >= 0 && j < m->cand[a].n; j++)
		if (pol_sel_match(m->pl->drep[m->cand[a].v[j]], ls, m->dlc))
			return true;
	return false;
}

/* As make_key(), into @p stack when it fits, else into a new *@p heap. */
static const char *
lookup_key(char *stack, size_t size, char **heap, char tag, const char *a, const char *b,
           const char *c, size_t *len)
{
	size_t need = 1 + strlen(a) + (b ? strlen(b) + 1 : 0) + (c ? strlen(c) + 1 : 0);
	char *buf = stack;
	size_t cap = size;

	if (need > size) {
		buf = NULL;
		cap = 0;
	}
	*len = make_key(&buf, &cap, tag, a, b, c);
	if (buf != stack)
		*heap = buf;
	return *len ? buf : NULL;
}

/* The candidates filed under "n<ns>" and "N<ns>..." for one namespace label value @p ns. */
static bool
ns_match(const struct mg_policy_matcher *m, const char *ns, const struct mg_labels *ls)
{
	char stack[512], *heap = NULL;
	const char *key;
	size_t len;
	bool hit;

	key = lookup_key(stack, sizeof(stack), &heap, 'n', ns, NULL, NULL, &len);
	hit = candidates_match(m, key, len, ls);
	free(heap);
	for (size_t i = 0; !hit && i < ls->n; i++) {
		heap = NULL;
		key = lookup_key(stack, sizeof(stack), &heap, 'N', ns, ls->v[i].key, ls->v[i].value,
		                 &len);
		hit = candidates_match(m, key, len, ls);
		free(heap);
	}
	return hit;
}

bool
mg_policy_matcher_any(const struct mg_policy_matcher *m, const struct mg_labels *ls)
{
	char stack[512], *heap;
	const char *key;
	size_t len;
	bool hit;

	for (size_t i = 0; i < m->nalways; i++)
		if (pol_sel_match(m->pl->drep[m->always[i]], ls, m->dlc))
			return true;
	for (size_t i = 0; i < ls->n; i++) {
		const struct mg_label *l = &ls->v[i];

		if (streq(l->key, POL_NS_KEY) && ns_match(m, l->value, ls))
			return true;
		heap = NULL;
		key = lookup_key(stack, sizeof(stack), &heap, 'A', l->key, l->value, NULL, &len);
		hit = candidates_match(m, key, len, ls);
		free(heap);
		if (hit)
			return true;
	}
	return false;
}
