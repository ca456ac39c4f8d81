/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The replicator's side of Redis: the connection, the lease that makes one
 * replica the writer (meshgate/replicator/lease, token and TTL, renewed at
 * a third of it) with every write fenced by its token, the full resync by
 * diff (after a takeover, a reconnection or a loss: what Redis holds is
 * read and only the difference written, never a delete-all-then-re-add),
 * the drain of a removed cluster, and the detection of a Redis that lost
 * its data (flushed, restarted empty, an empty replica promoted).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rep_priv.h"

/*
 * What a tenure (a holding of the lease, on one connection, with no loss)
 * knows of Redis is forgotten: which entries it put, whether Redis held
 * anything of each cluster when it began.
 */
void
rep_tenure_reset(struct mg_replicator *r)
{
	for (size_t i = 0; i < r->n_cl; i++) {
		struct rep_cluster *cl = r->cl[i];
		cl->probed = false;
		for (int p = 0; p < REP_NPREFIX; p++) {
			size_t j = 0;
			struct rep_ent *e;
			while ((e = rep_map_next(&cl->map[p], &j)) != NULL)
				e->sent = 0;
		}
	}
}

/*
 * Before the tenure's first write of a cluster: does Redis hold anything
 * of it? Every writer of the Function library creates the cluster's log
 * and epoch with its first write, and a loss takes them with the data: no
 * epoch, nothing to diff against, and the full write needs no read.
 */
int
rep_probe_fresh(struct mg_replicator *r, struct rep_cluster *cl)
{
	struct mg_error err = {{0}};
	char key[MG_KV_KEY_MAX];
	mg_kv_epoch_key(key, sizeof(key), cl->name);
	int rc = mg_kv_writer_exists(r->w, key, &err);
	if (rc < 0) {
		rep_redis_lost(r, rc, &err);
		return rc;
	}
	cl->redis_fresh = rc == 0;
	cl->bulk = false;
	if (cl->redis_fresh && !cl->config_written) {
		/*
		 * No reader can tail a cluster without a config: its data goes
		 * out unlogged (plain SETs, far cheaper than a logged change
		 * each) until the config is written after it. The epoch is made
		 * first, so a tenure that ends half-way leaves a cluster that the
		 * next one diffs instead of taking it for empty.
		 */
		rc = mg_kv_writer_set_cluster(r->w, cl->name, &err);
		rc = rc ?: mg_kv_writer_epoch_create(r->w, &err);
		if (rc < 0) {
			rep_redis_lost(r, rc, &err);
			return rc;
		}
		cl->bulk = true;
	}
	cl->probed = true;
	return 0;
}

static void
all_need_full(struct mg_replicator *r)
{
	for (size_t i = 0; i < r->n_cl; i++) {
		r->cl[i]->need_full = true;
		r->cl[i]->canaries_written = false;
	}
}

/* A new token for the next tenure: writes of the lost one stay refused. */
static void
new_token(struct mg_replicator *r)
{
	struct mg_error err = {{0}};
	char t[sizeof(r->token)];
	if (mg_kv_token_new(t, sizeof(t)) < 0)
		return;
	snprintf(r->prev_token, sizeof(r->prev_token), "%s", r->token);
	snprintf(r->token, sizeof(r->token), "%s", t);
	if (r->w != NULL && mg_kv_writer_set_fence(r->w, MG_REP_LEASE_KEY, r->token, &err) < 0)
		MG_WARN("replicator: %s", err.msg);
}

void
rep_redis_lost(struct mg_replicator *r, int rc, const struct mg_error *err)
{
	if (rc == -ESTALE) {
		/* Fenced: another replica holds the lease now. */
		if (r->holder)
			MG_WARN("replicator: a write was refused, the lease is another replica's: "
			        "%s",
			        err->msg);
		r->fenced++;
		r->lease_gone = r->holder;
		if (r->holder) {
			r->holder = false;
			r->lease_lost++;
			new_token(r);
		}
		r->lease_next = 0;
		return;
	}
	snprintf(r->redis_error, sizeof(r->redis_error), "%s", err->msg);
	MG_WARN("replicator: Redis: %s", err->msg);
	r->redis_errors++;
	rep_tenure_reset(r);
	mg_kv_writer_close(r->w);
	r->w = NULL;
	r->holder = false;
	unsigned n = r->redis_backoff < 6 ? r->redis_backoff : 6;
	r->redis_retry_at = rep_now_ms() + (250u << n);
	r->redis_backoff++;
	r->lease_next = 0;
}

bool
rep_redis_ready(struct mg_replicator *r)
{
	const struct mg_rep_config *c = r->c;
	struct mg_error err = {{0}};
	if (r->w != NULL)
		return true;
	if (rep_now_ms() < r->redis_retry_at)
		return false;
	struct mg_kv_writer_opts o = {
	        .url = c->redis,
	        .user = c->redis_user,
	        .password_file = c->redis_password_file,
	        .functions = c->functions,
	        .cluster = c->cluster_name,
	        .maxlen = c->log_maxlen,
	        .timeout_ms = c->redis_timeout_ms,
	        .batch = c->batch,
	        .io_begin = rep_io_begin,
	        .io_end = rep_io_end,
	        .io_arg = r,
	};
	r->w = mg_kv_writer_open(&o, &err);
	if (r->w == NULL) {
		rep_redis_lost(r, -EIO, &err);
		return false;
	}
	if (mg_kv_writer_set_fence(r->w, MG_REP_LEASE_KEY, r->token, &err) < 0) {
		rep_redis_lost(r, -EIO, &err);
		return false;
	}
	if (r->redis_backoff > 0)
		r->redis_reconnects++;
	r->redis_backoff = 0;
	r->redis_error[0] = '\0';
	MG_INFO("replicator: connected to Redis %s", c->redis);
	return true;
}

static void
became_holder(struct mg_replicator *r)
{
	bool takeover = r->holder_token[0] != '\0' && strcmp(r->holder_token, r->token) != 0 &&
	                strcmp(r->holder_token, r->prev_token) != 0;
	if (r->lease_gone && !takeover) {
		/* Ours until now, refused, and free again at once: the key was gone
		 * (Redis lost its data, or someone deleted it). */
		MG_WARN("replicator: the lease key was gone: treating Redis as having lost its "
		        "data");
		r->losses++;
	}
	r->lease_gone = false;
	r->holder = true;
	r->lease_acquired++;
	if (takeover)
		r->takeovers++;
	snprintf(r->holder_token, sizeof(r->holder_token), "%s", r->token);
	r->lease_renewed_at = rep_now_ms();
	r->lease_since = r->lease_renewed_at;
	MG_INFO("replicator: holding the lease%s: resyncing every cluster by diff",
	        takeover ? " (taken over)" : "");
	for (size_t i = 0; i < r->n_cl; i++)
		r->cl[i]->config_written = false;
	all_need_full(r);
	rep_tenure_reset(r);
}

void
rep_lease_tick(struct mg_replicator *r)
{
	const struct mg_rep_config *c = r->c;
	struct mg_error err = {{0}};
	uint64_t now = rep_now_ms();
	if (!rep_redis_ready(r) || now < r->lease_next)
		return;
	r->lease_next = now + c->lease_ttl_ms / 3;
	if (r->holder && now - r->lease_renewed_at > c->lease_ttl_ms) {
		/* Not renewed for a whole TTL (this process was paused): it may be gone. */
		r->holder = false;
		r->lease_expired++;
		new_token(r);
		MG_WARN("replicator: the lease was not renewed for %u ms: it may have lapsed",
		        c->lease_ttl_ms);
	}
	if (r->holder) {
		int rc = mg_kv_lease_renew(r->w, MG_REP_LEASE_KEY, r->token, c->lease_ttl_ms, &err);
		if (rc == 1) {
			r->lease_renewals++;
			r->lease_renewed_at = now;
			return;
		}
		if (rc < 0) {
			rep_redis_lost(r, rc, &err);
			return;
		}
		r->holder = false;
		r->lease_lost++;
		r->lease_gone = true;
		new_token(r);
		MG_WARN("replicator: the lease is lost (expired, taken or gone)");
	}
	int64_t pttl = 0;
	char holder[64] = "";
	int rc = mg_kv_lease_acquire(r->w, MG_REP_LEASE_KEY, r->token, c->lease_ttl_ms, holder,
	                             sizeof(holder), &pttl, &err);
	if (rc < 0) {
		rep_redis_lost(r, rc, &err);
		return;
	}
	if (rc == 1) {
		became_holder(r);
		return;
	}
	r->lease_gone = false;
	snprintf(r->holder_token, sizeof(r->holder_token), "%s", holder);
	r->holder_pttl = pttl;
}

void
rep_lease_release(struct mg_replicator *r)
{
	struct mg_error err = {{0}};
	if (r->w == NULL || !r->holder)
		return;
	mg_kv_writer_flush(r->w, &err);
	mg_kv_lease_release(r->w, MG_REP_LEASE_KEY, r->token, &err);
	r->holder = false;
}

int
rep_write_config(struct mg_replicator *r, struct rep_cluster *cl)
{
	struct mg_error err = {{0}};
	struct mg_kv_cluster_config cfg = {
	        .id = cl->cfg.id,
	        .synced_canaries = true,
	        .cached = true,
	        .max_connected_clusters = cl->cfg.max_connected_clusters,
	};
	int rc = mg_kv_writer_set_cluster(r->w, cl->name, &err);
	if (rc == 0)
		rc = mg_kv_writer_cluster_config(r->w, &cfg, &err);
	if (rc < 0) {
		rep_redis_lost(r, rc, &err);
		return rc;
	}
	return 0;
}

struct diff {
	struct mg_replicator *r;
	struct rep_cluster *cl;
	int p;
	size_t skip;
	uint64_t puts, dels;
	int rc;
	struct mg_error err;
};

/* One key Redis holds: deleted when the copy does not keep it, put when it differs. */
static int
diff_key(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct diff *d = arg;
	struct rep_ent *e = NULL;
	if (klen > d->skip)
		e = rep_map_get(&d->cl->map[d->p], key + d->skip, klen - d->skip);
	int rc = 0;
	if (e == NULL || !e->kept) {
		rc = mg_kv_writer_queue_del(d->r->w, key, NULL, &d->err);
		d->dels++;
	} else {
		e->seen = 1;
		e->sent = 1;
		if (e->vlen != vlen || memcmp(e->val, val, vlen) != 0) {
			rc = mg_kv_writer_queue_put(d->r->w, key, e->val, NULL, &d->err);
			d->puts++;
		}
	}
	if (rc < 0)
		d->rc = rc;
	return rc;
}

static int
diff_prefix(struct mg_replicator *r, struct rep_cluster *cl, int p, struct diff *d)
{
	char prefix[MG_KV_KEY_MAX], key[MG_KV_KEY_MAX];
	struct rep_ent *e;
	size_t i = 0;
	rep_redis_key(cl, p, "", prefix, sizeof(prefix));
	d->p = p;
	d->skip = strlen(prefix);
	int rc = mg_kv_writer_scan_values(r->w, prefix, diff_key, d, &d->err);
	if (rc < 0 || d->rc < 0)
		return rc < 0 ? rc : d->rc;
	while ((e = rep_map_next(&cl->map[p], &i)) != NULL) {
		if (e->kept && !e->seen && rep_redis_key(cl, p, e->key, key, sizeof(key)) > 0) {
			rc = mg_kv_writer_queue_put(r->w, key, e->val, NULL, &d->err);
			if (rc < 0)
				return rc;
			e->sent = 1;
			d->puts++;
		}
		e->seen = 0;
	}
	return 0;
}

/* Redis held nothing of the cluster when the tenure began: what was not put yet. */
static int
put_unsent(struct mg_replicator *r, struct rep_cluster *cl, int p, struct diff *d)
{
	char key[MG_KV_KEY_MAX];
	struct rep_ent *e;
	size_t i = 0;
	while ((e = rep_map_next(&cl->map[p], &i)) != NULL) {
		if (!e->kept || e->sent || rep_redis_key(cl, p, e->key, key, sizeof(key)) < 0)
			continue;
		int rc = mg_kv_writer_queue_put(r->w, key, e->val, NULL, &d->err);
		if (rc < 0)
			return rc;
		e->sent = 1;
		d->puts++;
	}
	return 0;
}

int
rep_write_full(struct mg_replicator *r, struct rep_cluster *cl)
{
	struct diff d = {.r = r, .cl = cl};
	char marker[MG_KV_KEY_MAX];
	const char *keys[1] = {marker};
	int rc = cl->probed ? 0 : rep_probe_fresh(r, cl);
	if (rc < 0)
		return rc;
	rc = mg_kv_writer_set_cluster(r->w, cl->name, &d.err);
	/* A cluster written again is no longer being removed. */
	mg_kv_removed_key(marker, sizeof(marker), cl->name);
	rc = rc ?: mg_kv_writer_del_plain(r->w, keys, 1, &d.err) < 0 ? -EIO : 0;
	if (rc < 0)
		goto fail;
	rc = mg_kv_writer_set_unlogged(r->w, cl->bulk, &d.err);
	for (int p = 0; p < REP_NPREFIX && rc == 0; p++)
		rc = cl->redis_fresh ? put_unsent(r, cl, p, &d) : diff_prefix(r, cl, p, &d);
	rc = rc ?: mg_kv_writer_flush(r->w, &d.err);
	rc = rc ?: mg_kv_writer_set_unlogged(r->w, false, &d.err);
	if (rc < 0)
		goto fail;
	/* The config last: a reader waiting for it then finds every entry. */
	rc = rep_write_config(r, cl);
	if (rc < 0)
		return rc;
	cl->bulk = false;
	cl->need_full = false;
	cl->config_written = true;
	cl->puts += d.puts;
	cl->dels += d.dels;
	MG_INFO("replicator: %s: Redis %s: %llu put, %llu deleted", cl->name,
	        cl->redis_fresh ? "held nothing of it: the rest written" : "resynced by diff",
	        (unsigned long long)d.puts, (unsigned long long)d.dels);
	return 0;
fail:
	for (int p = 0; p < REP_NPREFIX; p++) {
		size_t i = 0;
		struct rep_ent *e;
		while ((e = rep_map_next(&cl->map[p], &i)) != NULL)
			e->seen = 0;
	}
	if (r->w != NULL)
		rep_redis_lost(r, rc, &d.err);
	return rc;
}

int
rep_write_canaries(struct mg_replicator *r, struct rep_cluster *cl)
{
	struct mg_error err = {{0}};
	int rc = mg_kv_writer_set_cluster(r->w, cl->name, &err);
	rc = rc ?: mg_kv_writer_flush(r->w, &err);
	rc = rc ?: mg_kv_writer_canaries(r->w, &err);
	if (rc < 0) {
		rep_redis_lost(r, rc, &err);
		return rc;
	}
	cl->canaries_written = true;
	return rep_write_heartbeat(r, cl);
}

int
rep_write_heartbeat(struct mg_replicator *r, struct rep_cluster *cl)
{
	struct mg_error err = {{0}};
	char key[MG_KV_KEY_MAX], now[40];
	mg_kv_heartbeat_key(key, sizeof(key), cl->name);
	mg_kv_time_now(now, sizeof(now));
	int rc = mg_kv_writer_set_plain(r->w, key, now, 0, &err);
	if (rc < 0) {
		rep_redis_lost(r, rc, &err);
		return rc;
	}
	cl->heartbeat_written = rep_wall_ms();
	return 0;
}

int
rep_drain_start(struct mg_replicator *r, struct rep_cluster *cl)
{
	struct mg_error err = {{0}};
	char marker[MG_KV_KEY_MAX], cfg[MG_KV_KEY_MAX], now[40];
	mg_kv_time_now(now, sizeof(now));
	mg_kv_removed_key(marker, sizeof(marker), cl->name);
	mg_kv_cluster_config_key(cfg, sizeof(cfg), cl->name);
	int rc = mg_kv_writer_set_cluster(r->w, cl->name, &err);
	rc = rc ?: mg_kv_writer_set_plain(r->w, marker, now, 0, &err);
	rc = rc ?: mg_kv_writer_del(r->w, cfg, &err);
	if (rc < 0) {
		rep_redis_lost(r, rc, &err);
		return rc;
	}
	cl->drain_marked = true;
	return 0;
}

static bool
keep_none(const char *key, void *arg)
{
	(void)key;
	(void)arg;
	return false;
}

int
rep_drain_finish(struct mg_replicator *r, struct rep_cluster *cl)
{
	struct mg_error err = {{0}};
	char k[5][MG_KV_KEY_MAX];
	const char *keys[5] = {k[0], k[1], k[2], k[3], k[4]};
	int rc = cl->drain_marked ? 0 : rep_drain_start(r, cl);
	if (rc < 0)
		return rc;
	rc = mg_kv_writer_set_cluster(r->w, cl->name, &err);
	if (rc == 0)
		rc = mg_kv_writer_prune(r->w, keep_none, NULL, &err) < 0 ? -EIO : 0;
	mg_kv_synced_key(k[0], sizeof(k[0]), cl->name, MG_KV_CACHE_IDENTITIES);
	mg_kv_synced_key(k[1], sizeof(k[1]), cl->name, MG_KV_CACHE_IP);
	mg_kv_log_key(k[2], sizeof(k[2]), cl->name);
	mg_kv_epoch_key(k[3], sizeof(k[3]), cl->name);
	mg_kv_heartbeat_key(k[4], sizeof(k[4]), cl->name);
	/* The marker stays: gateways forget the cluster when it has been there
	 * for their removal grace; the cluster's return clears it. */
	rc = rc ?: mg_kv_writer_del_plain(r->w, keys, 5, &err);
	if (rc < 0) {
		rep_redis_lost(r, rc, &err);
		return rc;
	}
	return 0;
}

int
rep_undrain(struct mg_replicator *r, struct rep_cluster *cl)
{
	(void)r;
	cl->draining = false;
	cl->drain_marked = false;
	cl->config_written = false; /* the next full write clears the marker, restores the config */
	cl->need_full = true;
	return 0;
}

void
rep_loss_check(struct mg_replicator *r)
{
	struct mg_error err = {{0}};
	uint64_t now = rep_now_ms();
	if (!r->holder || r->w == NULL || now < r->check_next)
		return;
	r->check_next = now + r->c->check_ms;
	for (size_t i = 0; i < r->n_cl; i++) {
		struct rep_cluster *cl = r->cl[i];
		char key[MG_KV_KEY_MAX];
		if (cl->draining || !cl->config_written || cl->need_full)
			continue;
		mg_kv_epoch_key(key, sizeof(key), cl->name);
		int rc = mg_kv_writer_exists(r->w, key, &err);
		if (rc < 0) {
			rep_redis_lost(r, rc, &err);
			return;
		}
		if (rc == 0) {
			MG_WARN("replicator: %s is gone: Redis lost its data (flushed, restarted "
			        "empty or an empty replica promoted): writing every cluster again",
			        key);
			r->losses++;
			for (size_t j = 0; j < r->n_cl; j++)
				r->cl[j]->config_written = false;
			all_need_full(r);
			rep_tenure_reset(r);
			return;
		}
	}
}
