/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Read-only views of a loaded policy set for operators: the policies it
 * holds and every distinct selector with the identities it selects now
 * (meshgatectl policy get / policy selectors, answered by the daemon).
 * Selection goes through pol_sel_match(), the function the compiler and
 * the trace use, so what is listed is what is enforced.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_priv.h"

int
mg_policy_set_walk(const struct mg_policy_set *s, int (*fn)(const struct mg_policy_info *, void *),
                   void *arg)
{
	for (size_t i = 0; i < s->npol; i++) {
		const struct policy_obj *p = &s->pol[i];
		struct mg_policy_info info = {
		        .ccnp = p->ccnp,
		        .name = p->name,
		        .ns = p->ns,
		        .cluster = p->cluster,
		        .file = p->file,
		        .line = p->line,
		};
		int rc;

		for (size_t r = 0; r < s->nrules; r++)
			info.rules += s->rules[r].pol == i;
		rc = fn(&info, arg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* A growing string; on allocation failure it stays NULL and says so. */
struct text {
	char *p;
	size_t len, cap;
	bool oom;
};

static void
text_add(struct text *t, const char *s)
{
	size_t n = strlen(s);

	if (t->oom)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		char *p;

		while (cap < t->len + n + 1)
			cap *= 2;
		p = realloc(t->p, cap);
		if (p == NULL) {
			t->oom = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n + 1);
	t->len += n;
}

static void
text_label(struct text *t, const char *source, const char *key)
{
	text_add(t, source ? source : "any");
	text_add(t, ":");
	text_add(t, key);
}

/* "k8s:app=web, k8s:tier in (a, b), !k8s:debug, any:role" */
static char *
selector_text(const struct selector *sel, bool dlc)
{
	struct text t = {0};
	bool first = true;

	for (size_t i = 0; i < sel->nreq; i++) {
		const struct sel_req *r = &sel->req[i];

		if (!first)
			text_add(&t, ", ");
		first = false;
		if (r->op == SEL_DNE)
			text_add(&t, "!");
		text_label(&t, r->source, r->key);
		if (r->op == SEL_IN && r->nvals == 1) {
			text_add(&t, "=");
			text_add(&t, r->vals[0]);
		} else if (r->op == SEL_IN || r->op == SEL_NOTIN) {
			text_add(&t, r->op == SEL_IN ? " in (" : " notin (");
			for (size_t j = 0; j < r->nvals; j++) {
				text_add(&t, j ? ", " : "");
				text_add(&t, r->vals[j]);
			}
			text_add(&t, ")");
		}
	}
	if (pol_sel_cluster_active(sel, dlc)) {
		if (!first)
			text_add(&t, ", ");
		first = false;
		text_add(&t, "k8s:" POL_CLUSTER_KEY);
		if (sel->cl == SELC_EQ) {
			text_add(&t, "=");
			text_add(&t, sel->cluster ? sel->cluster : "");
		}
	}
	if (first)
		text_add(&t, "(every endpoint)");
	if (t.oom) {
		free(t.p);
		return NULL;
	}
	return t.p;
}

struct sel_walk {
	const struct selector *sel;
	bool dlc;
	uint32_t *ids;
	size_t n, cap;
	bool oom;
};

static int
collect(const struct mg_identity *ident, void *arg)
{
	struct sel_walk *w = arg;

	if (!pol_sel_match(w->sel, &ident->labels, w->dlc))
		return 0;
	if (mg_grow(&w->ids, &w->cap, w->n, sizeof(*w->ids), 16) < 0) {
		w->oom = true;
		return 1;
	}
	w->ids[w->n++] = ident->id;
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static size_t
selector_users(const struct mg_policy_set *s, uint32_t idx)
{
	size_t users = 0;

	for (size_t r = 0; r < s->nrules; r++) {
		const struct rule *ru = &s->rules[r];

		users += ru->subject == idx;
		for (unsigned sec = 0; sec < SEC_N; sec++)
			for (size_t e = 0; e < ru->nent[sec]; e++)
				for (size_t p = 0; p < ru->ent[sec][e].npeers; p++)
					users += ru->ent[sec][e].peers[p] == idx;
	}
	return users;
}

int
mg_policy_set_selectors(const struct mg_policy_set *s, const struct mg_identity_table *ids,
                        bool default_local_cluster,
                        int (*fn)(const struct mg_policy_selector_info *, void *), void *arg)
{
	for (size_t i = 0; i < s->nsel; i++) {
		struct sel_walk w = {.sel = s->sel[i], .dlc = default_local_cluster};
		struct mg_policy_selector_info info;
		char *text;
		int rc;

		text = selector_text(s->sel[i], default_local_cluster);
		if (text == NULL)
			return -ENOMEM;
		mg_identity_table_walk(ids, collect, &w);
		if (w.oom) {
			free(text);
			free(w.ids);
			return -ENOMEM;
		}
		if (w.n > 1) /* w.ids is NULL when the selector selects nothing */
			qsort(w.ids, w.n, sizeof(*w.ids), cmp_u32);
		info.text = text;
		info.users = selector_users(s, (uint32_t)i);
		info.n_ids = w.n;
		info.ids = w.ids;
		rc = fn(&info, arg);
		free(text);
		free(w.ids);
		if (rc != 0)
			return rc;
	}
	return 0;
}
