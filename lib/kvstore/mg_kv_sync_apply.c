/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Applying records to the tables: the identity table and the ipcache get
 * the winner of every prefix (the local cluster, then the lowest cluster
 * id, then configuration order), the base layer when no cluster holds a
 * prefix any more, and every identity whose labels or named ports changed
 * goes on the changed list the caller compiles policy from. Prefix owners
 * are counted so that the usual prefix, held by one cluster, needs no walk
 * over every cluster's copy. Nothing here commits the ipcache: each batch is
 * left staged for the caller, and a batch it could not publish is repaired
 * by re-staging everything at the next one (kvs_batch_begin).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv_sync_priv.h"

int
kvs_changed_push(struct mg_kv_sync *s, uint32_t id)
{
	if (s->changed == NULL)
		return 0;
	if (*s->n_changed > 0 && *s->changed != NULL && (*s->changed)[*s->n_changed - 1] == id)
		return 0; /* the common repeat, before the sort at the end of the call */
	if (*s->n_changed == s->cap_changed || *s->changed == NULL) {
		size_t cap = *s->n_changed < 16 ? 32 : *s->n_changed * 2;
		uint32_t *nv = realloc(*s->changed, cap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		*s->changed = nv;
		s->cap_changed = cap;
	}
	(*s->changed)[(*s->n_changed)++] = id;
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * End of a poll/initial: sort the changed list and drop duplicates (an
 * identity changes several times in one batch: labels, named ports, a
 * delete and a re-add), so that the caller recompiles each one once.
 */
void
kvs_changed_dedupe(struct mg_kv_sync *s)
{
	if (s->changed == NULL || *s->changed == NULL || *s->n_changed < 2)
		return;
	uint32_t *v = *s->changed;
	size_t n = *s->n_changed, o = 0;
	qsort(v, n, sizeof(*v), cmp_u32);
	for (size_t i = 1; i < n; i++)
		if (v[i] != v[o])
			v[++o] = v[i];
	*s->n_changed = o + 1;
}

/* Clusters holding prefix @k (UINT32_MAX: not counted, one cluster only). */
static uint32_t
owners_count(const struct mg_kv_sync *s, const struct rkey *k)
{
	const struct rec *r;

	if (!s->track_owners)
		return UINT32_MAX;
	r = rmap_find(&s->owners, k);
	return r != NULL ? r->identity : 0;
}

/* One more (@delta 1) or one fewer (-1) cluster holds prefix @k. 0 or -ENOMEM. */
static int
owners_add(struct mg_kv_sync *s, const struct rkey *k, int delta)
{
	struct rec *r;

	if (!s->track_owners)
		return 0;
	r = rmap_find(&s->owners, k);
	if (r == NULL)
		return delta > 0 ? rmap_put(&s->owners, k, 1, NULL, NULL, 0) : 0;
	if (delta > 0)
		r->identity++;
	else if (--r->identity == 0)
		rmap_del(&s->owners, k);
	return 0;
}

/* Count the owners anew (the cluster list changed). 0 or -ENOMEM. */
int
kvs_owners_rebuild(struct mg_kv_sync *s)
{
	int rc = 0;

	rmap_clear(&s->owners);
	s->track_owners = s->n > 1;
	for (size_t i = 0; s->track_owners && i < s->n && rc == 0; i++) {
		const struct rmap *m = &s->c[i].live;
		for (size_t j = 0; j < m->cap && rc == 0; j++)
			if (m->v[j].st == 1 && m->v[j].k.kind == REC_IP)
				rc = owners_add(s, &m->v[j].k, 1);
	}
	if (rc < 0) { /* counts incomplete: fall back to the walks */
		rmap_clear(&s->owners);
		s->track_owners = false;
	}
	return rc;
}

/* Stage @c's record @r as its prefix's entry. */
static int
ip_put_winner(struct mg_kv_sync *s, const struct cl *c, const struct rec *r)
{
	struct mg_ipcache_entry e;
	memset(&e, 0, sizeof(e));
	e.family = r->k.family;
	e.plen = r->k.plen;
	memcpy(e.addr, r->k.addr, sizeof(e.addr));
	e.identity = r->identity;
	e.cluster_id = c->cid;
	return mg_ipcache_put(s->ipc, &e);
}

/*
 * Put the winner for prefix @k into the ipcache, or delete it. @hint: a
 * cluster that holds @k (or NULL): when it is the only one, it wins
 * without a walk over the clusters.
 */
int
kvs_ip_recompute(struct mg_kv_sync *s, const struct rkey *k, const struct cl *hint)
{
	uint32_t owners = owners_count(s, k);
	const struct rec *r = NULL;
	const struct cl *c = NULL;

	if (owners == 1 && hint != NULL && (r = rmap_find(&hint->live, k)) != NULL)
		c = hint;
	for (size_t i = 0; c == NULL && owners != 0 && i < s->n; i++) {
		const struct cl *o = &s->c[s->order[i]];
		if ((r = rmap_find(&o->live, k)) != NULL)
			c = o;
	}
	if (c != NULL)
		return ip_put_winner(s, c, r);
	/* No cluster holds it: the daemon's own entry for it, if any (base layer). */
	if (s->p.base != NULL) {
		struct mg_ipcache_entry pfx, own;
		memset(&pfx, 0, sizeof(pfx));
		memset(&own, 0, sizeof(own));
		pfx.family = k->family;
		pfx.plen = k->plen;
		memcpy(pfx.addr, k->addr, sizeof(pfx.addr));
		int b = s->p.base(s->p.base_arg, &pfx, &own);
		if (b < 0)
			return b;
		if (b == 1) {
			own.family = pfx.family;
			own.plen = pfx.plen;
			memcpy(own.addr, pfx.addr, sizeof(own.addr));
			return mg_ipcache_put(s->ipc, &own);
		}
	}
	int rc = mg_ipcache_del(s->ipc, k->family, k->addr, k->plen);
	return rc == -ENOENT ? 0 : rc;
}

/* Apply a validated put (takes @value, an identity's label string, and d->np). */
int
kvs_apply_put(struct mg_kv_sync *s, struct cl *c, struct decoded *d, char *value)
{
	const struct rec *old = rmap_find(&c->live, &d->k);
	if (d->k.kind == REC_IDENTITY) {
		if (old != NULL && old->value != NULL && value != NULL &&
		    strcmp(old->value, value) == 0) {
			free(value);
			return 0;
		}
		struct mg_labels ls = MG_LABELS_INIT;
		struct mg_error err;
		int rc = mg_kv_identity_value_decode(value, strlen(value), &ls, &err);
		if (rc == 0)
			rc = mg_identity_table_put(s->ids, d->k.id, &ls, c->cid);
		mg_labels_clear(&ls);
		if (rc < 0) {
			free(value);
			return rc;
		}
		rc = rmap_put(&c->live, &d->k, d->identity, value, NULL, 0);
		if (rc == 0)
			rc = kvs_changed_push(s, d->k.id);
		return rc < 0 ? rc : kvs_np_refresh(s, d->k.id);
	}
	free(value); /* ipcache records keep no string */
	if (old != NULL && old->identity == d->identity &&
	    kvs_np_list_eq(old->np, old->n_np, d->np, d->n_np)) {
		free(d->np);
		d->np = NULL;
		return 0;
	}
	if (old == NULL && owners_count(s, &d->k) > 0 && s->n > 1) {
		for (size_t i = 0; i < s->n; i++) {
			if (&s->c[i] != c && rmap_find(&s->c[i].live, &d->k) != NULL) {
				c->st.conflicts++;
				MG_WARN("kv sync: %s: prefix also held by cluster %s", c->name,
				        s->c[i].name);
				break;
			}
		}
	}
	/* The new entry's ports first, so that ports both name never drop to 0. */
	int rc = kvs_np_ref(s, c, d->identity, d->np, d->n_np, 1);
	if (rc == 0 && old != NULL)
		rc = kvs_np_ref(s, c, old->identity, old->np, old->n_np, -1);
	if (rc < 0) {
		free(d->np);
		d->np = NULL;
		return rc;
	}
	rc = rmap_put(&c->live, &d->k, d->identity, NULL, d->np, d->n_np);
	d->np = NULL;
	if (rc == 0 && old == NULL)
		rc = owners_add(s, &d->k, 1);
	return rc < 0 ? rc : kvs_ip_recompute(s, &d->k, c);
}

/*
 * Apply record @r that is already in @c's live copy and was not there
 * before (the cold sync moves its shadow into an empty live copy, see
 * mg_kv_sync_full.c): what kvs_apply_put does for a new key, without
 * copying the record. When kvs_apply_put would not have inserted it (the
 * table or the named ports refused it), it leaves the live copy here too.
 */
int
kvs_apply_new(struct mg_kv_sync *s, struct cl *c, struct rec *r)
{
	int rc;

	if (r->k.kind == REC_IDENTITY) {
		struct mg_labels ls = MG_LABELS_INIT;
		struct mg_error err;
		uint32_t id = r->k.id;

		rc = mg_kv_identity_value_decode(r->value, strlen(r->value), &ls, &err);
		if (rc == 0)
			rc = mg_identity_table_put(s->ids, id, &ls, c->cid);
		mg_labels_clear(&ls);
		if (rc < 0) {
			rmap_del(&c->live, &r->k);
			return rc;
		}
		rc = kvs_changed_push(s, id);
		return rc < 0 ? rc : kvs_np_refresh(s, id);
	}
	if (owners_count(s, &r->k) > 0 && s->n > 1) {
		for (size_t i = 0; i < s->n; i++) {
			if (&s->c[i] != c && rmap_find(&s->c[i].live, &r->k) != NULL) {
				c->st.conflicts++;
				MG_WARN("kv sync: %s: prefix also held by cluster %s", c->name,
				        s->c[i].name);
				break;
			}
		}
	}
	rc = kvs_np_ref(s, c, r->identity, r->np, r->n_np, 1);
	if (rc < 0) {
		rmap_del(&c->live, &r->k);
		return rc;
	}
	rc = owners_add(s, &r->k, 1);
	if (rc < 0)
		return rc;
	/* The only cluster, or the only one holding the prefix: @c's record
	 * wins, as kvs_ip_recompute would find, without looking it up again. */
	if (s->n == 1 || owners_count(s, &r->k) == 1)
		return ip_put_winner(s, c, r);
	return kvs_ip_recompute(s, &r->k, c);
}

int
kvs_apply_del(struct mg_kv_sync *s, struct cl *c, const struct rkey *k)
{
	if (rmap_find(&c->live, k) == NULL)
		return 0;
	if (mg_grow(&s->gone, &s->cap_gone, s->n_gone, sizeof(*s->gone), 64) < 0)
		return -ENOMEM;
	s->gone[s->n_gone++] = *k;
	const struct rec *was = rmap_find(&c->live, k);
	int nrc = kvs_np_ref(s, c, was->identity, was->np, was->n_np, -1);
	if (nrc < 0)
		return nrc;
	rmap_del(&c->live, k);
	if (k->kind == REC_IP) {
		owners_add(s, k, -1);
		return kvs_ip_recompute(s, k, NULL);
	}
	const struct mg_identity *ident = mg_identity_table_get(s->ids, k->id);
	if (ident != NULL && ident->cluster_id == c->cid) {
		int rc = mg_identity_table_del(s->ids, k->id);
		if (rc < 0 && rc != -ENOENT)
			return rc;
	}
	return kvs_changed_push(s, k->id);
}

/*
 * The client never commits the ipcache: each call leaves its batch staged
 * for the caller to publish (with the policy derived from it) or discard.
 * A new batch begins at every poll and initial; after a discarded one
 * (request_resync), first re-stage everything the tables may have lost:
 * every live prefix's winner, every identity (the caller's policy update
 * failed: all ids go into the changed list), and the keys the discarded
 * batch removed.
 */
int
kvs_batch_begin(struct mg_kv_sync *s)
{
	int rc = 0;

	if (!s->repair) {
		s->n_gone = 0;
		return 0;
	}
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		const struct cl *c = &s->c[i];
		for (size_t j = 0; j < c->live.cap && rc == 0; j++) {
			const struct rec *r = &c->live.v[j];
			if (r->st != 1)
				continue;
			if (r->k.kind == REC_IP)
				rc = kvs_ip_recompute(s, &r->k, c);
			else
				rc = kvs_changed_push(s, r->k.id);
		}
	}
	for (size_t i = 0; i < s->n_gone && rc == 0; i++)
		rc = s->gone[i].kind == REC_IP ? kvs_ip_recompute(s, &s->gone[i], NULL)
		                               : kvs_changed_push(s, s->gone[i].id);
	/* The gone keys stay noted until a batch after this one begins
	 * without a repair: this batch may be discarded too. */
	if (rc == 0)
		s->repair = false;
	return rc;
}

/* Conflict order: local first, then lowest cluster id, then config order. */
void
kvs_sort_order(struct mg_kv_sync *s)
{
	for (size_t i = 1; i < s->n; i++) {
		size_t v = s->order[i], j = i;
		for (; j > 0; j--) {
			const struct cl *a = &s->c[s->order[j - 1]], *b = &s->c[v];
			bool before =
			        (b->local && !a->local) ||
			        (b->local == a->local &&
			         (b->cid < a->cid || (b->cid == a->cid && v < s->order[j - 1])));
			if (!before)
				break;
			s->order[j] = s->order[j - 1];
		}
		s->order[j] = v;
	}
}
