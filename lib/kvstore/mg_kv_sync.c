/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The gateway's sync client, its public API (mg_kv_sync.h): creation and
 * reconfiguration of the cluster list, the initial sync with its retries,
 * each poll's order of work (reconnect, verify, resync, tail), rebinding
 * to new tables, and the stats. The work itself is in the other
 * mg_kv_sync_*.c files (kv_sync_priv.h says which does what). The
 * invariant they all keep: the tables only ever change through a complete,
 * validated step (a published resync or a whole XREAD batch staged for the
 * caller's one publication), so a lost connection or a bad value can never
 * leave half of something applied.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "kv_sync_priv.h"

const char *
mg_kv_resync_cause_name(enum mg_kv_resync_cause c)
{
	static const char *const names[] = {"epoch",  "trimmed",  "replid", "reconnect",
	                                    "config", "operator", "repair"};
	_Static_assert(MG_ARRAY_SIZE(names) == MG_KV_RESYNC_N, "a name per cause");
	return (unsigned)c < MG_KV_RESYNC_N ? names[c] : "?";
}

const char *
mg_kv_stale_reason_name(enum mg_kv_stale_reason r)
{
	static const char *const names[] = {"",
	                                    "disconnected",
	                                    "config-missing",
	                                    "config-refused",
	                                    "canaries-missing",
	                                    "mass-delete-refused",
	                                    "heartbeat"};
	_Static_assert(MG_ARRAY_SIZE(names) == MG_KV_STALE_N, "a name per reason");
	return (unsigned)r < MG_KV_STALE_N ? names[r] : "?";
}

/*
 * The cluster list of @p p: valid names, each once, at most one local
 * cluster, at most MG_KV_SYNC_MAX_CLUSTERS (@p min: 1 at creation, 0 for
 * a reload that drops every cluster). 0, or -EINVAL with @p err set.
 */
static int
clusters_check(const struct mg_kv_sync_params *p, size_t min, struct mg_error *err)
{
	size_t nlocal = 0;

	if (p->n_clusters < min || p->n_clusters > MG_KV_SYNC_MAX_CLUSTERS ||
	    (p->n_clusters > 0 && p->clusters == NULL)) {
		mg_error_set(err, NULL, 0, 0, "kv sync: %zu clusters (%zu to %d)", p->n_clusters,
		             min, MG_KV_SYNC_MAX_CLUSTERS);
		return -EINVAL;
	}
	for (size_t i = 0; i < p->n_clusters; i++) {
		const struct mg_kv_sync_cluster_params *cp = &p->clusters[i];
		if (cp->name == NULL || !mg_kv_cluster_name_valid(cp->name)) {
			mg_error_set(err, NULL, 0, 0, "kv sync: bad cluster name \"%s\"",
			             cp->name ? cp->name : "");
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(p->clusters[j].name, cp->name) == 0) {
				mg_error_set(err, NULL, 0, 0, "kv sync: cluster %s listed twice",
				             cp->name);
				return -EINVAL;
			}
		nlocal += cp->local;
	}
	if (nlocal > 1) {
		mg_error_set(err, NULL, 0, 0, "kv sync: more than one local cluster");
		return -EINVAL;
	}
	if (p->max_delete_share < 0 || p->max_delete_share > 1) {
		mg_error_set(err, NULL, 0, 0, "kv sync: max_delete_share %g is not within 0..1",
		             p->max_delete_share);
		return -EINVAL;
	}
	return 0;
}

/* A new cluster entry (not synced); names were checked. */
static void
cl_init(struct cl *c, const struct mg_kv_sync_cluster_params *cp)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", cp->name);
	snprintf(c->st.name, sizeof(c->st.name), "%s", cp->name);
	c->local = cp->local;
	c->want_id = cp->id;
	snprintf(c->last_id, sizeof(c->last_id), "0-0");
	snprintf(c->why, sizeof(c->why), "not connected");
	mg_kv_cluster_config_key(c->cfg_key, sizeof(c->cfg_key), c->name);
	mg_kv_log_key(c->log_key, sizeof(c->log_key), c->name);
	mg_kv_epoch_key(c->epoch_key, sizeof(c->epoch_key), c->name);
	mg_kv_removed_key(c->removed_key, sizeof(c->removed_key), c->name);
	mg_kv_heartbeat_key(c->hb_key, sizeof(c->hb_key), c->name);
}

struct mg_kv_sync *
mg_kv_sync_create(const struct mg_kv_sync_params *p, struct mg_identity_table *ids,
                  struct mg_ipcache *ipc, struct mg_error *err)
{
	struct mg_kv_sync *s = NULL;
	if (p == NULL || ids == NULL || ipc == NULL || p->url == NULL) {
		mg_error_set(err, NULL, 0, 0, "kv sync: bad parameters");
		goto inval;
	}
	if (clusters_check(p, 1, err) < 0)
		goto inval;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto nomem;
	s->p = *p;
	s->p.block_ms = p->block_ms ? p->block_ms : 100;
	s->p.connect_ms = p->connect_ms ? p->connect_ms : 2000;
	s->p.command_ms = p->command_ms ? p->command_ms : s->p.block_ms + 2000;
	if (s->p.command_ms <= s->p.block_ms)
		s->p.command_ms = s->p.block_ms + 1000;
	s->p.verify_ms = p->verify_ms ? p->verify_ms : 1000;
	s->p.backoff_max_ms = p->backoff_max_ms ? p->backoff_max_ms : 5000;
	s->p.max_delete_share = p->max_delete_share > 0 ? p->max_delete_share : 0.5;
	s->p.read_count = p->read_count ? p->read_count : 1000;
	s->p.clusters = NULL;
	s->ids = ids;
	s->ipc = ipc;
	s->mode = mg_identity_table_mode(ids);
	s->backoff_ms = 100;
	s->rnd = (unsigned)mg_time_ns();
	s->url = strdup(p->url);
	s->user = p->user ? strdup(p->user) : NULL;
	s->password = p->password ? strdup(p->password) : NULL;
	s->n = p->n_clusters;
	s->c = calloc(s->n, sizeof(*s->c));
	s->order = calloc(s->n, sizeof(*s->order));
	if (s->url == NULL || (p->user && !s->user) || (p->password && !s->password) ||
	    s->c == NULL || s->order == NULL)
		goto nomem;
	/* The URL forms of the config (redis://..., unix:///...) and the short
	 * ones (host:port, unix:/path), parsed once by the writer's parser. */
	{
		const char *scheme = "", *rest = p->url;

		if (strncmp(rest, "unix:/", 6) == 0 && strncmp(rest, "unix://", 7) != 0) {
			scheme = "unix://";
			rest += 5;
		} else if (strstr(rest, "://") == NULL) {
			scheme = "redis://";
		}
		if (asprintf(&s->urlbuf, "%s%s", scheme, rest) < 0) {
			s->urlbuf = NULL;
			goto nomem;
		}
	}
	if (mg_kv_url_parse(s->urlbuf, &s->u, err) < 0)
		goto inval;
	if (s->u.db != 0) {
		mg_error_set(err, NULL, 0, 0,
		             "kv sync: '%s': only database 0 holds the clusters' state", p->url);
		goto inval;
	}
	if (s->user == NULL && s->u.user != NULL && (s->user = strdup(s->u.user)) == NULL)
		goto nomem;
	if ((s->password == NULL || s->password[0] == '\0') && s->u.password != NULL) {
		free(s->password);
		if ((s->password = strdup(s->u.password)) == NULL)
			goto nomem;
	}
	for (size_t i = 0; i < s->n; i++) {
		cl_init(&s->c[i], &p->clusters[i]);
		s->order[i] = i;
	}
	s->track_owners = s->n > 1;
	return s;
inval:
	mg_kv_sync_free(s);
	errno = EINVAL;
	return NULL;
nomem:
	mg_kv_sync_free(s);
	mg_error_set(err, NULL, 0, 0, "kv sync: out of memory");
	errno = ENOMEM;
	return NULL;
}

void
mg_kv_sync_free(struct mg_kv_sync *s)
{
	if (s == NULL)
		return;
	if (s->ctx)
		redisFree(s->ctx);
	for (size_t i = 0; s->c && i < s->n; i++)
		rmap_clear(&s->c[i].live);
	free(s->c);
	rmap_clear(&s->owners);
	free(s->gone);
	kvs_np_free(s);
	free(s->order);
	free(s->url);
	free(s->urlbuf);
	free(s->user);
	free(s->password);
	free(s);
}

static void
update_stats(struct mg_kv_sync *s)
{
	kvs_sort_order(s);
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		c->st.cluster_id = c->cid;
		c->st.connected = s->ctx != NULL;
		c->st.present = c->present;
		c->st.synced = c->synced;
		c->st.refused = c->refused;
		c->st.stale = c->stale != MG_KV_STALE_NONE;
		c->st.stale_reason = c->stale;
		c->st.stale_since = c->stale_since;
		c->st.removing = c->removing;
		if (!c->removing)
			c->st.removal_at = 0;
		c->st.removed = c->removed;
		c->st.entries = c->live.n;
		if (s->ctx == NULL && !c->synced && !c->removed)
			snprintf(c->st.why, sizeof(c->st.why), "not connected");
		else
			snprintf(c->st.why, sizeof(c->st.why), "%s", c->why);
		snprintf(c->st.last_id, sizeof(c->st.last_id), "%s", c->last_id);
	}
}

bool
mg_kv_sync_all_synced(const struct mg_kv_sync *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (!s->c[i].synced && !s->c[i].removed)
			return false;
	return true;
}

int
mg_kv_sync_initial(struct mg_kv_sync *s, unsigned timeout_ms, uint32_t **changed, size_t *n_changed,
                   struct mg_error *err)
{
	uint64_t deadline = now_ms() + timeout_ms, wait = 50;
	int rc = 0;
	s->changed = changed;
	s->n_changed = n_changed;
	s->cap_changed = changed && *changed ? *n_changed : 0;
	if ((rc = kvs_batch_begin(s)) < 0)
		goto done;
	for (;;) {
		s->next_connect_ms = 0;
		rc = kvs_ensure_connected(s);
		if (rc == 0) {
			kvs_sort_order(s);
			rc = kvs_verify(s);
			if (rc == 0)
				rc = kvs_resync_due(s);
		}
		update_stats(s);
		if (rc == -ENOMEM)
			break;
		if (mg_kv_sync_all_synced(s)) {
			rc = 0;
			break;
		}
		uint64_t t = now_ms();
		if (t >= deadline) {
			size_t off = 0;
			char msg[sizeof(err->msg)];
			msg[0] = '\0';
			for (size_t i = 0; i < s->n && off < sizeof(msg); i++)
				if (!s->c[i].synced && !s->c[i].removed)
					off += (size_t)snprintf(
					        msg + off, sizeof(msg) - off, "%s%s: %s",
					        off ? "; " : "", s->c[i].name,
					        s->ctx ? s->c[i].why : "not connected");
			mg_error_set(err, NULL, 0, 0, "kv sync: not synced: %s", msg);
			rc = -ETIMEDOUT;
			break;
		}
		sleep_ms(wait < deadline - t ? wait : deadline - t);
		wait = wait * 2 > 1000 ? 1000 : wait * 2;
	}
done:
	s->next_verify_ms = now_ms() + s->p.verify_ms;
	kvs_changed_dedupe(s);
	s->changed = NULL;
	return rc;
}

int
mg_kv_sync_rebind(struct mg_kv_sync *s, struct mg_identity_table *ids, struct mg_ipcache *ipc,
                  bool publish)
{
	int rc = 0;

	s->ids = ids;
	s->ipc = ipc;
	if (!publish)
		return 0;
	/* Identities first: an ipcache entry never names one the table lacks. */
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		struct cl *c = &s->c[i];
		for (size_t j = 0; j < c->live.cap && rc == 0; j++) {
			const struct rec *r = &c->live.v[j];
			if (r->st != 1 || r->k.kind != REC_IDENTITY)
				continue;
			struct mg_labels ls = MG_LABELS_INIT;
			struct mg_error err;
			rc = mg_kv_identity_value_decode(r->value, strlen(r->value), &ls, &err);
			if (rc == 0)
				rc = mg_identity_table_put(ids, r->k.id, &ls, c->cid);
			mg_labels_clear(&ls);
		}
	}
	/* Their named ports from the synced entries: the new table has none yet. */
	for (size_t i = 0; i < s->n_npids && rc == 0; i++)
		rc = kvs_np_apply(s, &s->npids[i]);
	/* kvs_ip_recompute picks the winner; a prefix two clusters hold is put twice, same value. */
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		struct cl *c = &s->c[i];
		for (size_t j = 0; j < c->live.cap && rc == 0; j++) {
			const struct rec *r = &c->live.v[j];
			if (r->st == 1 && r->k.kind == REC_IP)
				rc = kvs_ip_recompute(s, &r->k, c);
		}
	}
	/* Left staged for the caller's commit or publish. */
	if (rc < 0)
		mg_ipcache_discard(ipc);
	return rc;
}

void
mg_kv_sync_request_resync(struct mg_kv_sync *s, enum mg_kv_resync_cause cause)
{
	if ((unsigned)cause >= MG_KV_RESYNC_N)
		cause = MG_KV_RESYNC_OPERATOR;
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		if (c->removed)
			continue; /* back when its marker goes, not before */
		if (!c->need_resync)
			c->st.resyncs[cause]++;
		c->need_resync = true;
		c->cause = cause;
	}
	s->next_verify_ms = 0;
	/* The last batch may have been discarded: re-stage what it changed. */
	s->repair = true;
}

int
mg_kv_sync_reconfigure(struct mg_kv_sync *s, const struct mg_kv_sync_params *p, uint32_t **changed,
                       size_t *n_changed, struct mg_error *err)
{
	struct cl *nc = NULL;
	size_t *norder = NULL;
	int rc;

	if (p == NULL)
		return -EINVAL;
	if ((rc = clusters_check(p, 0, err)) < 0)
		return rc;
	if (p->n_clusters > 0 && ((nc = calloc(p->n_clusters, sizeof(*nc))) == NULL ||
	                          (norder = calloc(p->n_clusters, sizeof(*norder))) == NULL)) {
		free(nc);
		mg_error_set(err, NULL, 0, 0, "kv sync: out of memory");
		return -ENOMEM;
	}
	s->changed = changed;
	s->n_changed = n_changed;
	s->cap_changed = changed && *changed ? *n_changed : 0;
	if ((rc = kvs_batch_begin(s)) < 0)
		goto out;
	/* Clusters that left: everything they held goes, in this batch. */
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		bool stays = false;
		for (size_t j = 0; j < p->n_clusters && !stays; j++)
			stays = strcmp(p->clusters[j].name, c->name) == 0;
		if (stays)
			continue;
		MG_INFO("kv sync: %s left the configuration: removing its state (%zu entries)",
		        c->name, c->live.n);
		if ((rc = kvs_remove_state(s, c)) < 0) {
			mg_error_set(err, NULL, 0, 0, "kv sync: removing cluster %s: %s", c->name,
			             strerror(-rc));
			goto out;
		}
	}
	/* The new list: kept clusters move over with their copies. */
	for (size_t j = 0; j < p->n_clusters; j++) {
		const struct mg_kv_sync_cluster_params *cp = &p->clusters[j];
		struct cl *old = NULL;
		for (size_t i = 0; i < s->n && old == NULL; i++)
			if (strcmp(s->c[i].name, cp->name) == 0)
				old = &s->c[i];
		norder[j] = j;
		if (old == NULL) {
			cl_init(&nc[j], cp);
			continue;
		}
		nc[j] = *old;
		memset(&old->live, 0, sizeof(old->live));
		if (nc[j].local != cp->local || nc[j].want_id != cp->id) {
			nc[j].local = cp->local;
			nc[j].want_id = cp->id;
			if (nc[j].synced)
				kvs_mark(&nc[j], MG_KV_RESYNC_CONFIG);
		}
	}
	for (size_t i = 0; i < s->n; i++)
		rmap_clear(&s->c[i].live);
	free(s->c);
	free(s->order);
	s->c = nc;
	s->order = norder;
	s->n = p->n_clusters;
	nc = NULL;
	norder = NULL;
	s->p.max_delete_share = p->max_delete_share > 0 ? p->max_delete_share : 0.5;
	s->p.removal_grace_ms = p->removal_grace_ms;
	s->p.heartbeat_timeout_ms = p->heartbeat_timeout_ms;
	s->next_verify_ms = 0; /* new clusters start at the next poll */
	kvs_sort_order(s);
	kvs_owners_rebuild(s); /* on failure it falls back to walking the clusters */
	update_stats(s);
	rc = 0;
out:
	free(nc);
	free(norder);
	kvs_changed_dedupe(s);
	s->changed = NULL;
	return rc;
}

int
mg_kv_sync_poll(struct mg_kv_sync *s, uint32_t **changed, size_t *n_changed)
{
	int rc;
	s->changed = changed;
	s->n_changed = n_changed;
	s->cap_changed = changed && *changed ? *n_changed : 0;
	if ((rc = kvs_batch_begin(s)) < 0)
		goto out;
	rc = kvs_ensure_connected(s);
	if (rc == -ENOTCONN) {
		uint64_t t = now_ms(), w = s->next_connect_ms > t ? s->next_connect_ms - t : 0;
		sleep_ms(w < s->p.block_ms ? w : s->p.block_ms);
		goto out;
	}
	if (rc < 0)
		goto out;
	if (now_ms() >= s->next_verify_ms) {
		kvs_sort_order(s);
		if ((rc = kvs_verify(s)) < 0)
			goto out;
		if ((rc = kvs_resync_due(s)) < 0)
			goto out;
		s->next_verify_ms = now_ms() + s->p.verify_ms;
	}
	kvs_sort_order(s);
	rc = kvs_tail(s);
out:
	update_stats(s);
	kvs_changed_dedupe(s);
	s->changed = NULL;
	return rc == -ENOTCONN && s->ctx == NULL ? -ENOTCONN : rc;
}

size_t
mg_kv_sync_n_clusters(const struct mg_kv_sync *s)
{
	return s->n;
}

int
mg_kv_sync_stats(const struct mg_kv_sync *s, size_t i, struct mg_kv_sync_stats *out)
{
	if (i >= s->n)
		return -EINVAL;
	*out = s->c[i].st;
	return 0;
}
