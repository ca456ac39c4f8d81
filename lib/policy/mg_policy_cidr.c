/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The gateway's CIDR identities. Cilium gives every prefix a policy names
 * (fromCIDR, toCIDRSet cidr and except, ...) a local-scope identity
 * labelled with cidr:<p> for every prefix p covering it (pkg/labels/cidr.go
 * GetCIDRLabels: itself down to /0) and the world label, and puts the
 * prefix in the ipcache; CIDR selectors then match labels, and longest
 * prefix match in the ipcache sends an address to the most specific
 * prefix's identity. meshgate does the same here: mg_cidr_ids_sync() makes
 * the identity table and the ipcache hold exactly the prefixes a policy
 * set names. Pods and nodes keep their own ipcache entries (an exact
 * entry another source put there is never replaced), so CIDR rules never
 * match them. /0 gets no identity: the world identities (2, 9, 10) stand
 * for it, as in Cilium.
 *
 * Control plane only; the caller commits the staged ipcache changes and
 * feeds the changed identities to mg_policy_update_identities().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mg_ipcache.h"
#include "policy_priv.h"

struct cidr_ent {
	struct pol_prefix pf;
	uint32_t id;
	bool owned; /* the ipcache entry is ours (we staged it) */
};

struct mg_cidr_ids {
	size_t n, cap;
	struct cidr_ent *v; /* sorted by pol_prefix_cmp */
	uint32_t next;      /* next local part to try (1 .. 2^24 - 1) */
};

struct mg_cidr_ids *
mg_cidr_ids_create(void)
{
	struct mg_cidr_ids *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	c->next = 1;
	return c;
}

void
mg_cidr_ids_free(struct mg_cidr_ids *c)
{
	if (c == NULL)
		return;
	free(c->v);
	free(c);
}

size_t
mg_cidr_ids_count(const struct mg_cidr_ids *c)
{
	return c ? c->n : 0;
}

static int
cmp_prefix(const void *a, const void *b)
{
	return pol_prefix_cmp(a, b);
}

static int
cmp_ent(const void *a, const void *b)
{
	return pol_prefix_cmp(&((const struct cidr_ent *)a)->pf, &((const struct cidr_ent *)b)->pf);
}

/* Every prefix @p s names, sorted and unique, in a new array. */
static int
wanted_prefixes(const struct mg_policy_set *s, struct pol_prefix **out, size_t *n)
{
	struct pol_prefix *v = NULL;
	size_t cnt = 0, i, j, k, o;
	unsigned sec;

	for (i = 0; i < s->nrules; i++)
		for (sec = 0; sec < SEC_N; sec++)
			for (j = 0; j < s->rules[i].nent[sec]; j++)
				cnt += s->rules[i].ent[sec][j].nprefixes;
	v = calloc(cnt ? cnt : 1, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	cnt = 0;
	for (i = 0; i < s->nrules; i++)
		for (sec = 0; sec < SEC_N; sec++)
			for (j = 0; j < s->rules[i].nent[sec]; j++) {
				const struct entry *e = &s->rules[i].ent[sec][j];

				for (k = 0; k < e->nprefixes; k++)
					v[cnt++] = e->prefixes[k];
			}
	if (cnt > 1) {
		qsort(v, cnt, sizeof(*v), cmp_prefix);
		for (i = 1, o = 0; i < cnt; i++)
			if (pol_prefix_cmp(&v[i], &v[o]) != 0)
				v[++o] = v[i];
		cnt = o + 1;
	}
	*out = v;
	*n = cnt;
	return 0;
}

static const struct cidr_ent *
find_ent(const struct mg_cidr_ids *c, const struct pol_prefix *pf)
{
	struct cidr_ent key = {.pf = *pf};

	return c->n ? bsearch(&key, c->v, c->n, sizeof(*c->v), cmp_ent) : NULL;
}

/* The labels of @p pf's identity: cidr:<every covering prefix>, the world labels. */
static int
cidr_labels(const struct pol_prefix *pf, struct mg_labels *ls)
{
	char key[96];
	unsigned l;
	int rc = 0;

	for (l = 0; l <= pf->plen && rc == 0; l++) {
		struct pol_prefix t;

		pol_prefix_truncate(pf, l, &t);
		pol_prefix_label(&t, key, sizeof(key));
		rc = mg_labels_add(ls, "cidr", key, "");
	}
	if (rc == 0)
		rc = mg_labels_add(ls, "reserved", "world", "");
	if (rc == 0)
		rc = mg_labels_add(ls, "reserved",
		                   pf->family == AF_INET ? "world-ipv4" : "world-ipv6", "");
	return rc;
}

/* A local-scope identity number neither the table nor @p taken uses. */
static uint32_t
alloc_id(struct mg_cidr_ids *c, const struct mg_identity_table *t)
{
	uint32_t tries;

	for (tries = 0; tries < 0xffffffu; tries++) {
		uint32_t id = MG_ID_LOCAL_SCOPE | c->next;

		/* numbers are never reused while their prefix lives: skip those in use */
		c->next = c->next >= 0xffffffu ? 1 : c->next + 1;
		if (mg_identity_table_get(t, id) == NULL)
			return id;
	}
	return 0;
}

static void
to_entry(const struct pol_prefix *pf, uint32_t id, struct mg_ipcache_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->family = pf->family;
	e->plen = pf->plen;
	memcpy(e->addr, pf->addr, sizeof(e->addr));
	e->identity = id;
	e->cluster_id = 0;
}

static int
push_id(uint32_t **v, size_t *n, size_t *cap, uint32_t id)
{
	if (mg_grow(v, cap, *n, sizeof(**v), 16))
		return -ENOMEM;
	(*v)[(*n)++] = id;
	return 0;
}

int
mg_cidr_ids_sync(struct mg_cidr_ids *c, const struct mg_policy_set *s, struct mg_identity_table *t,
                 struct mg_ipcache *ipc, uint32_t **changed, size_t *n_changed,
                 struct mg_error *err)
{
	struct pol_prefix *want = NULL;
	struct cidr_ent *nv = NULL;
	uint32_t *chg = NULL;
	size_t nwant = 0, nchg = 0, capchg = 0, i, j;
	char buf[96];
	int rc;

	if (changed != NULL)
		*changed = NULL;
	if (n_changed != NULL)
		*n_changed = 0;
	if (c == NULL || s == NULL || t == NULL || ipc == NULL) {
		mg_error_set(err, NULL, 0, 0, "cidr identities: missing argument");
		return mg_errno_set(EINVAL);
	}
	rc = wanted_prefixes(s, &want, &nwant);
	if (rc)
		goto oom;
	nv = calloc(nwant ? nwant : 1, sizeof(*nv));
	if (nv == NULL)
		goto oom;

	/* 1. identities: keep the held ones, allocate the new ones */
	for (i = 0; i < nwant; i++) {
		const struct cidr_ent *old = find_ent(c, &want[i]);
		struct mg_labels ls = MG_LABELS_INIT;

		nv[i].pf = want[i];
		if (old != NULL && mg_identity_table_get(t, old->id) != NULL) {
			nv[i].id = old->id;
			nv[i].owned = old->owned;
			continue;
		}
		if (old != NULL) {
			/* A held prefix in a table that lacks its identity (the
			 * daemon's reload builds a new table): the same number
			 * again, with its labels. */
			nv[i].id = old->id;
			rc = cidr_labels(&want[i], &ls);
			if (rc == 0)
				rc = mg_identity_table_put(t, nv[i].id, &ls, 0);
			mg_labels_clear(&ls);
			if (rc < 0)
				goto oom_undo;
			nv[i].owned = false;
			continue;
		}
		nv[i].id = alloc_id(c, t);
		rc = nv[i].id ? cidr_labels(&want[i], &ls) : -ENOSPC;
		if (rc == 0)
			rc = mg_identity_table_put(t, nv[i].id, &ls, 0);
		mg_labels_clear(&ls);
		if (rc == 0)
			rc = push_id(&chg, &nchg, &capchg, nv[i].id);
		if (rc == -ENOSPC) {
			mg_error_set(err, NULL, 0, 0,
			             "cidr identities: no local-scope identity left");
			goto undo;
		}
		if (rc < 0)
			goto oom_undo; /* undo deletes nv[i].id too if it was put */
		nv[i].owned = false;
	}

	/* 2. the ipcache: our entry wherever no other source holds the exact prefix */
	for (i = 0; i < nwant; i++) {
		struct mg_ipcache_entry cur, e;
		bool have =
		        mg_ipcache_get(ipc, want[i].family, want[i].addr, want[i].plen, &cur) == 0;

		if (have && cur.identity == nv[i].id) {
			nv[i].owned = true;
			continue;
		}
		if (have && !mg_identity_is_local_scope(cur.identity)) {
			nv[i].owned = false; /* an endpoint or a static entry: leave it alone */
			continue;
		}
		to_entry(&want[i], nv[i].id, &e);
		rc = mg_ipcache_put(ipc, &e);
		if (rc < 0) {
			pol_prefix_label(&want[i], buf, sizeof(buf));
			mg_error_set(err, NULL, 0, 0, "cidr identities: cannot stage %s: %s", buf,
			             strerror(-rc));
			/* unstage what this call staged for prefixes nobody held */
			for (j = 0; j < i; j++)
				if (nv[j].owned && find_ent(c, &want[j]) == NULL)
					mg_ipcache_del(ipc, want[j].family, want[j].addr,
					               want[j].plen);
			goto undo;
		}
		nv[i].owned = true;
	}

	/* 3. prefixes no longer named: their identity and our ipcache entry go */
	for (i = 0; i < c->n; i++) {
		const struct cidr_ent *o = &c->v[i];
		struct mg_ipcache_entry cur;

		if (nwant > 0 && bsearch(&o->pf, want, nwant, sizeof(*want), cmp_prefix) != NULL)
			continue;
		if (o->owned &&
		    mg_ipcache_get(ipc, o->pf.family, o->pf.addr, o->pf.plen, &cur) == 0 &&
		    cur.identity == o->id)
			mg_ipcache_del(ipc, o->pf.family, o->pf.addr, o->pf.plen);
		mg_identity_table_del(t, o->id);
		if (push_id(&chg, &nchg, &capchg, o->id) != 0) {
			/* the change is made; only the report is short */
			nchg = 0;
		}
	}
	free(c->v);
	c->v = nv;
	c->n = nwant;
	c->cap = nwant;
	free(want);
	if (changed != NULL) {
		*changed = chg;
		chg = NULL;
	}
	if (n_changed != NULL)
		*n_changed = nchg;
	free(chg);
	return 0;

oom_undo:
	mg_error_set(err, NULL, 0, 0, "cidr identities: out of memory");
	rc = -ENOMEM;
undo:
	/* nothing changed: forget the identities this call allocated */
	for (i = 0; i < nwant; i++)
		if (nv[i].id != 0 && find_ent(c, &want[i]) == NULL &&
		    mg_identity_table_get(t, nv[i].id) != NULL)
			mg_identity_table_del(t, nv[i].id);
	free(nv);
	free(want);
	free(chg);
	return mg_errno_set(rc < 0 ? -rc : ENOMEM);
oom:
	free(nv);
	free(want);
	mg_error_set(err, NULL, 0, 0, "cidr identities: out of memory");
	return mg_errno_set(ENOMEM);
}

uint32_t
mg_cidr_ids_lookup(const struct mg_cidr_ids *c, uint8_t family, const uint8_t *addr, uint8_t plen)
{
	struct pol_prefix raw = {.family = family, .plen = family == AF_INET ? 32 : 128}, pf;
	const struct cidr_ent *e;

	if (c == NULL || (family != AF_INET && family != AF_INET6) ||
	    plen > (family == AF_INET ? 32 : 128))
		return 0;
	memcpy(raw.addr, addr, family == AF_INET ? 4 : 16);
	/* host bits cleared, as the held prefixes have them */
	pol_prefix_truncate(&raw, plen, &pf);
	e = find_ent(c, &pf);
	return e != NULL ? e->id : 0;
}
