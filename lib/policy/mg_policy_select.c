/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Label selectors: evaluation of a Kubernetes LabelSelector (Cilium
 * flavour, with optional "source:" key prefixes) against an identity's
 * labels, the implicit namespace / cluster scoping Cilium applies to
 * subjects and peers, and a canonical encoding so that equal selectors are
 * evaluated once per identity by the compiler. The compiler and the trace
 * both match through pol_sel_match(), so the two can only disagree on what
 * they do with the matches, which is what the unit tests cross-check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_priv.h"

const char *const pol_section_names[SEC_N] = {"ingress", "egress", "ingressDeny", "egressDeny"};

static bool
req_match(const struct sel_req *r, const struct mg_labels *ls)
{
	const struct mg_label *l = mg_labels_find(ls, r->source, r->key);
	size_t i;

	switch (r->op) {
	case SEL_EXISTS:
		return l != NULL;
	case SEL_DNE:
		return l == NULL;
	case SEL_IN:
		if (l == NULL)
			return false;
		for (i = 0; i < r->nvals; i++)
			if (strcmp(l->value, r->vals[i]) == 0)
				return true;
		return false;
	case SEL_NOTIN:
		if (l == NULL)
			return true;
		for (i = 0; i < r->nvals; i++)
			if (strcmp(l->value, r->vals[i]) == 0)
				return false;
		return true;
	}
	return false;
}

bool
pol_sel_match(const struct selector *s, const struct mg_labels *ls, bool dlc)
{
	size_t i;

	for (i = 0; i < s->nreq; i++)
		if (!req_match(&s->req[i], ls))
			return false;
	if (pol_sel_cluster_active(s, dlc)) {
		const struct mg_label *l = mg_labels_find(ls, "k8s", POL_CLUSTER_KEY);

		if (l == NULL)
			return false;
		if (s->cl == SELC_EQ && strcmp(l->value, s->cluster) != 0)
			return false;
	}
	return true;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
pol_sel_add_req(struct selector *s, const char *source, const char *key, enum sel_op op,
                const char *const *vals, size_t nvals)
{
	struct sel_req *r, *v;
	size_t i;

	if (s->nreq >= POL_MAX_REQS || nvals > POL_MAX_VALUES)
		return -E2BIG;
	v = realloc(s->req, (s->nreq + 1) * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	s->req = v;
	r = &s->req[s->nreq];
	memset(r, 0, sizeof(*r));
	r->op = op;
	if ((source != NULL && (r->source = strdup(source)) == NULL) ||
	    (r->key = strdup(key)) == NULL)
		goto err;
	if (nvals > 0) {
		r->vals = calloc(nvals, sizeof(*r->vals));
		if (r->vals == NULL)
			goto err;
		for (i = 0; i < nvals; i++) {
			r->vals[i] = strdup(vals[i]);
			if (r->vals[i] == NULL)
				goto err;
			r->nvals++;
		}
		/* sorted so that the canonical form does not depend on order */
		qsort(r->vals, r->nvals, sizeof(*r->vals), cmp_str);
	}
	s->nreq++;
	return 0;
err:
	for (i = 0; i < r->nvals; i++)
		free(r->vals[i]);
	free(r->vals);
	free(r->source);
	free(r->key);
	return -ENOMEM;
}

void
pol_sel_free(struct selector *s)
{
	size_t i, j;

	if (s == NULL)
		return;
	for (i = 0; i < s->nreq; i++) {
		for (j = 0; j < s->req[i].nvals; j++)
			free(s->req[i].vals[j]);
		free(s->req[i].vals);
		free(s->req[i].source);
		free(s->req[i].key);
	}
	free(s->req);
	free(s->canon);
	free(s);
}

/* Is the source of @p r one that a "k8s:" label key is matched by? */
static bool
req_k8s_key(const struct sel_req *r, const char *key)
{
	return (r->source == NULL || strcmp(r->source, "k8s") == 0) && strcmp(r->key, key) == 0;
}

static bool
has_reserved(const struct selector *s)
{
	size_t i;

	for (i = 0; i < s->nreq; i++)
		if (s->req[i].source != NULL && strcmp(s->req[i].source, "reserved") == 0)
			return true;
	return false;
}

/* 1: a positive requirement (In, Exists) on @p key; -1: only negative ones; 0: none. */
static int
key_mention(const struct selector *s, const char *key)
{
	int r = 0;
	size_t i;

	for (i = 0; i < s->nreq; i++) {
		if (!req_k8s_key(&s->req[i], key))
			continue;
		if (s->req[i].op == SEL_IN || s->req[i].op == SEL_EXISTS)
			return 1;
		r = -1;
	}
	return r;
}

int
pol_sel_scope_subject(struct selector *s, const struct policy_obj *p)
{
	const char *ns = p->ns;

	s->cluster = p->cluster;
	s->cl_always = true;
	if (p->ccnp) {
		/* a CCNP may select reserved identities (reserved:host), which have no cluster */
		s->cl = has_reserved(s) ? SELC_NONE : SELC_EQ;
		return 0;
	}
	/* a CNP only ever selects pods of its own namespace and cluster */
	s->cl = SELC_EQ;
	return pol_sel_add_req(s, "k8s", POL_NS_KEY, SEL_IN, &ns, 1);
}

int
pol_sel_scope_peer(struct selector *s, const struct policy_obj *p)
{
	const char *ns = p->ns;
	int m;

	s->cluster = p->cluster;
	s->cl_always = false;
	if (has_reserved(s)) {
		s->cl = SELC_NONE;
		return 0;
	}
	m = key_mention(s, POL_CLUSTER_KEY);
	s->cl = m > 0 ? SELC_NONE : m < 0 ? SELC_EXISTS : SELC_EQ;
	m = key_mention(s, POL_NS_KEY);
	if (m > 0)
		return 0;
	if (m < 0 || p->ccnp)
		return pol_sel_add_req(s, "k8s", POL_NS_KEY, SEL_EXISTS, NULL, 0);
	return pol_sel_add_req(s, "k8s", POL_NS_KEY, SEL_IN, &ns, 1);
}

/* Append "<len>:<str>" to a growing buffer. */
struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

static void
sb_put(struct sbuf *b, const char *s, size_t len)
{
	char *q;

	if (b->oom)
		return;
	if (b->n + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;

		while (cap < b->n + len + 1)
			cap *= 2;
		q = realloc(b->p, cap);
		if (q == NULL) {
			b->oom = true;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, len);
	b->n += len;
	b->p[b->n] = '\0';
}

static void
sb_field(struct sbuf *b, const char *s)
{
	char num[24];
	int k = snprintf(num, sizeof(num), "%zu:", strlen(s));

	sb_put(b, num, (size_t)k);
	sb_put(b, s, strlen(s));
}

int
pol_sel_finish(struct selector *s)
{
	static const char ops[] = {'I', 'N', 'E', 'D'};
	struct sbuf whole = {0};
	char **parts;
	size_t i, j;
	int rc = 0;

	parts = calloc(s->nreq ? s->nreq : 1, sizeof(*parts));
	if (parts == NULL)
		return -ENOMEM;
	for (i = 0; i < s->nreq && rc == 0; i++) {
		const struct sel_req *r = &s->req[i];
		struct sbuf b = {0};

		sb_put(&b, &ops[r->op], 1);
		sb_field(&b, r->source ? r->source : "*");
		sb_field(&b, r->key);
		for (j = 0; j < r->nvals; j++)
			sb_field(&b, r->vals[j]);
		sb_put(&b, ";", 1);
		if (b.oom) {
			free(b.p);
			b.p = NULL;
			rc = -ENOMEM;
		}
		parts[i] = b.p;
	}
	if (rc == 0) {
		/* requirements are ANDed: their order does not matter */
		qsort(parts, s->nreq, sizeof(*parts), cmp_str);
		sb_put(&whole, "S", 1);
		for (i = 0; i < s->nreq; i++)
			sb_put(&whole, parts[i], strlen(parts[i]));
		if (whole.oom)
			rc = -ENOMEM;
	}
	for (i = 0; i < s->nreq; i++)
		free(parts[i]);
	free(parts);
	if (rc) {
		free(whole.p);
		return rc;
	}
	free(s->canon);
	s->canon = whole.p;
	return 0;
}

bool
pol_entry_peer_match(const struct mg_policy_set *s, const struct entry *e,
                     const struct mg_labels *ls, bool dlc)
{
	size_t i;

	if (e->skipped)
		return false; /* what the gateway cannot enforce allows nothing */
	if (!e->has_l3)
		return e->nports > 0; /* toPorts / icmps alone: any peer; {}: none */
	for (i = 0; i < e->npeers; i++)
		if (pol_sel_match(s->sel[e->peers[i]], ls, dlc))
			return true;
	return false;
}

bool
pol_named_port_match(const struct port_range *r, const struct mg_named_port *np)
{
	int pi = pol_proto_index(np->proto);

	return pi >= 0 && (r->protos & (1u << pi)) && strcmp(r->name, np->name) == 0;
}

/* Does @p id give the name and protocol of its named port @p k another number too? */
static bool
named_port_ambiguous(const struct mg_identity *id, size_t k)
{
	const struct mg_named_port *np = &id->named_ports[k];

	for (size_t i = 0; i < id->n_named_ports; i++)
		if (i != k && id->named_ports[i].proto == np->proto &&
		    id->named_ports[i].port != np->port &&
		    strcmp(id->named_ports[i].name, np->name) == 0)
			return true;
	return false;
}

bool
pol_entry_l4_match(const struct entry *e, uint8_t proto, uint16_t port,
                   const struct mg_identity *dst)
{
	int pi;
	size_t i, j;

	if (e->nports == 0)
		return true; /* L3 only: every protocol */
	pi = pol_proto_index(proto);
	if (pi < 0)
		return false;
	for (i = 0; i < e->nports; i++) {
		const struct port_range *r = &e->ports[i];

		if (!(r->protos & (1u << pi)))
			continue;
		if (r->name[0] == '\0') {
			if (port >= r->lo && port <= r->hi)
				return true;
			continue;
		}
		/* a named port: the destination's port of that name and protocol,
		 * when it has exactly one (two numbers for one name resolve to
		 * neither, as in Cilium) */
		for (j = 0; dst != NULL && j < dst->n_named_ports; j++)
			if (dst->named_ports[j].port == port &&
			    dst->named_ports[j].proto == proto &&
			    pol_named_port_match(r, &dst->named_ports[j]) &&
			    !named_port_ambiguous(dst, j))
				return true;
	}
	return false;
}
