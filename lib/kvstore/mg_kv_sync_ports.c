/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Named ports of the synced ipcache entries, given to their identities.
 * An IPIdentityPair's NamedPorts are its endpoint's named container ports.
 * As Cilium does, an identity gets the union of the named ports of all
 * its entries (every cluster's live copy counts, not only each prefix's
 * winner): each (name, protocol, port) is reference counted per identity.
 * Strict on conflicts: while the entries give one name two port numbers
 * for the same protocol, that name (for that protocol) is left out of the
 * identity, so that a policy port "http" never opens a port an endpoint
 * did not mean; the conflict is counted (named_port_conflicts) on the
 * cluster whose entry created it and resolves itself when the entries
 * agree again. Reserved identities get no named ports from Redis.
 * What the client added to the identity table is noted (app), so that it
 * can take back a port when the last entry naming it goes; named ports the
 * table got elsewhere (CiliumEndpoint files) are kept. The table cannot
 * remove one named port, so taking one back re-creates the identity with
 * the same labels and the remaining ports (the id is in the changed list).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv_sync_priv.h"

static int
np_cmp(const struct mg_named_port *a, const struct mg_named_port *b)
{
	int c = strcmp(a->name, b->name);
	if (c != 0)
		return c;
	if (a->proto != b->proto)
		return a->proto < b->proto ? -1 : 1;
	return a->port < b->port ? -1 : a->port > b->port;
}

static bool
np_in(const struct mg_named_port *v, size_t n, const struct mg_named_port *p)
{
	for (size_t i = 0; i < n; i++)
		if (np_cmp(&v[i], p) == 0)
			return true;
	return false;
}

/* Index of identity @id in s->npids, or where it would go (*found false). */
static size_t
npid_pos(const struct mg_kv_sync *s, uint32_t id, bool *found)
{
	size_t lo = 0, hi = s->n_npids;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->npids[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < s->n_npids && s->npids[lo].id == id;
	return lo;
}

/* Make the table's named ports of @e->id match the entries (see above). */
int
kvs_np_apply(struct mg_kv_sync *s, struct npid *e)
{
	const struct mg_identity *ident = mg_identity_table_get(s->ids, e->id);
	struct mg_named_port *eff = NULL, *keep = NULL;
	struct mg_labels ls = MG_LABELS_INIT;
	size_t n_eff = 0, n_keep = 0;
	bool add = false, drop = false;
	int rc = 0;

	if (ident == NULL) { /* nothing of ours is in the table; re-added with the identity */
		e->n_app = 0;
		return 0;
	}
	if (e->n > 0 && (eff = malloc(e->n * sizeof(*eff))) == NULL)
		return -ENOMEM;
	/* The union, without the (name, protocol) pairs given two port numbers. */
	for (size_t i = 0; i < e->n;) {
		size_t j = i + 1;
		while (j < e->n && strcmp(e->v[j].np.name, e->v[i].np.name) == 0 &&
		       e->v[j].np.proto == e->v[i].np.proto)
			j++;
		if (j == i + 1)
			eff[n_eff++] = e->v[i].np;
		i = j;
	}
	for (size_t i = 0; i < n_eff && !add; i++)
		add = !np_in(ident->named_ports, ident->n_named_ports, &eff[i]);
	for (size_t i = 0; i < e->n_app && !drop; i++)
		drop = !np_in(eff, n_eff, &e->app[i]) &&
		       np_in(ident->named_ports, ident->n_named_ports, &e->app[i]);
	if (drop) {
		unsigned cid = ident->cluster_id;
		if (ident->n_named_ports > 0 &&
		    (keep = malloc(ident->n_named_ports * sizeof(*keep))) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < ident->n_named_ports; i++)
			if (!np_in(e->app, e->n_app, &ident->named_ports[i]) ||
			    np_in(eff, n_eff, &ident->named_ports[i]))
				keep[n_keep++] = ident->named_ports[i];
		if ((rc = mg_labels_copy(&ls, &ident->labels)) < 0)
			goto out;
		ident = NULL;
		if ((rc = mg_identity_table_del(s->ids, e->id)) < 0 ||
		    (rc = mg_identity_table_put(s->ids, e->id, &ls, cid)) < 0)
			goto out;
		for (size_t i = 0; i < n_keep && rc >= 0; i++)
			rc = mg_identity_table_add_named_port(s->ids, e->id, keep[i].name,
			                                      keep[i].proto, keep[i].port);
		if (rc < 0)
			goto out;
	}
	for (size_t i = 0; (add || drop) && i < n_eff && rc >= 0; i++)
		rc = mg_identity_table_add_named_port(s->ids, e->id, eff[i].name, eff[i].proto,
		                                      eff[i].port);
	if (rc < 0)
		goto out;
	free(e->app);
	e->app = eff;
	e->n_app = n_eff;
	eff = NULL;
	rc = add || drop ? kvs_changed_push(s, e->id) : 0;
out:
	mg_labels_clear(&ls);
	free(eff);
	free(keep);
	return rc;
}

/* An entry of cluster @c naming ports @np of identity @id came (@delta 1) or went (-1). */
int
kvs_np_ref(struct mg_kv_sync *s, struct cl *c, uint32_t id, const struct mg_named_port *np,
           size_t n, int delta)
{
	bool found;
	size_t pos;
	struct npid *e;

	if (n == 0 || mg_identity_is_reserved(id))
		return 0;
	pos = npid_pos(s, id, &found);
	if (!found) {
		if (delta < 0)
			return 0;
		if (mg_grow(&s->npids, &s->cap_npids, s->n_npids, sizeof(*s->npids), 16) < 0)
			return -ENOMEM;
		memmove(&s->npids[pos + 1], &s->npids[pos], (s->n_npids - pos) * sizeof(*s->npids));
		memset(&s->npids[pos], 0, sizeof(*s->npids));
		s->npids[pos].id = id;
		s->n_npids++;
	}
	e = &s->npids[pos];
	for (size_t k = 0; k < n; k++) {
		size_t i = 0;
		int cmp = 1;
		/* Names the table refuses (over 15 characters, Kubernetes' limit)
		 * are skipped the same way when the entry comes and when it goes. */
		if (strnlen(np[k].name, 16) > 15)
			continue;
		while (i < e->n && (cmp = np_cmp(&e->v[i].np, &np[k])) < 0)
			i++;
		if (cmp == 0) {
			if (delta > 0)
				e->v[i].refs++;
			else if (--e->v[i].refs == 0) {
				memmove(&e->v[i], &e->v[i + 1], (e->n - i - 1) * sizeof(*e->v));
				e->n--;
			}
			continue;
		}
		if (delta < 0)
			continue;
		if (mg_grow(&e->v, &e->cap, e->n, sizeof(*e->v), 4) < 0)
			return -ENOMEM;
		for (size_t j = 0; j < e->n; j++)
			if (strcmp(e->v[j].np.name, np[k].name) == 0 &&
			    e->v[j].np.proto == np[k].proto) {
				c->st.named_port_conflicts++;
				MG_WARN("kv sync: %s: identity %u: named port %s is both %u and "
				        "%u: "
				        "left out while they disagree",
				        c->name, id, np[k].name, e->v[j].np.port, np[k].port);
				break;
			}
		memmove(&e->v[i + 1], &e->v[i], (e->n - i) * sizeof(*e->v));
		e->v[i].np = np[k];
		e->v[i].refs = 1;
		e->n++;
	}
	int rc = kvs_np_apply(s, e);
	if (rc == 0 && e->n == 0 && e->n_app == 0) {
		free(e->v);
		free(e->app);
		memmove(e, e + 1, (s->n_npids - pos - 1) * sizeof(*e));
		s->n_npids--;
	}
	return rc;
}

/* After identity @id was (re)put into the table: give it its named ports. */
int
kvs_np_refresh(struct mg_kv_sync *s, uint32_t id)
{
	bool found;
	size_t pos = npid_pos(s, id, &found);
	return found ? kvs_np_apply(s, &s->npids[pos]) : 0;
}

void
kvs_np_free(struct mg_kv_sync *s)
{
	for (size_t i = 0; i < s->n_npids; i++) {
		free(s->npids[i].v);
		free(s->npids[i].app);
	}
	free(s->npids);
	s->npids = NULL;
	s->n_npids = s->cap_npids = 0;
}

bool
kvs_np_list_eq(const struct mg_named_port *a, size_t na, const struct mg_named_port *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (np_cmp(&a[i], &b[i]) != 0)
			return false;
	return true;
}
