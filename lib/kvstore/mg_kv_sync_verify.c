/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Verification and the lifecycle of a cluster. Every verify_ms, and right
 * after a reconnect, one pipelined round trip reads the server's
 * replication id and each cluster's config, epoch, log and removal marker:
 * what changed decides the resyncs due (epoch, trimmed log, failover,
 * config), configs are checked alone and across clusters, and a cluster
 * becomes stale, removing or removed. Lost data is never a removal: only the
 * marker after its grace period, or leaving the configuration, deletes a
 * cluster's state.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "kv_sync_priv.h"

/*
 * The cluster's copy may be out of date (fail-static): say so once per
 * episode and per reason; the copy is left as it is. Only a cluster that
 * holds a copy (synced) can be stale; one that never synced just is not
 * synced yet (c->why says why).
 */
void
kvs_stale_set(struct cl *c, enum mg_kv_stale_reason r)
{
	if (!c->synced || c->stale == r)
		return;
	if (c->stale == MG_KV_STALE_NONE)
		c->stale_since = wall_s();
	c->stale = r;
	if (r == MG_KV_STALE_DISCONNECTED)
		return; /* one line for the connection, not one per cluster */
	MG_WARN("kv sync: %s: %s: keeping the last state (%zu entries) until it is resolved",
	        c->name, c->why[0] ? c->why : mg_kv_stale_reason_name(r), c->live.n);
}

void
kvs_stale_clear(struct cl *c)
{
	if (c->stale == MG_KV_STALE_NONE)
		return;
	if (c->stale != MG_KV_STALE_DISCONNECTED)
		MG_INFO("kv sync: %s: up to date again after %" PRIu64 " s stale (%s)", c->name,
		        wall_s() - c->stale_since, mg_kv_stale_reason_name(c->stale));
	c->stale = MG_KV_STALE_NONE;
	c->stale_since = 0;
}

/* Stream ids "ms-seq"; "0-0" when none. Returns false for garbage. */
static bool
id_parse(const char *s, uint64_t *ms, uint64_t *seq)
{
	char *end;
	errno = 0;
	*ms = strtoull(s, &end, 10);
	if (errno || *end != '-')
		return false;
	*seq = strtoull(end + 1, &end, 10);
	return errno == 0 && *end == '\0';
}

static int
id_cmp(const char *a, const char *b)
{
	uint64_t am = 0, as = 0, bm = 0, bs = 0;
	id_parse(a, &am, &as);
	id_parse(b, &bm, &bs);
	if (am != bm)
		return am < bm ? -1 : 1;
	return as < bs ? -1 : as > bs;
}

/*
 * Remove everything cluster @c holds (its marker's grace period ended,
 * or it left the configuration): each entry goes as a deletion of the
 * batch, so the prefixes fall back to the next cluster or the base layer
 * and the identities leave the table. The cluster is tailed no more.
 */
int
kvs_remove_state(struct mg_kv_sync *s, struct cl *c)
{
	int rc = 0;

	for (size_t i = 0; i < c->live.cap && rc == 0; i++) {
		const struct rec *r = &c->live.v[i];
		if (r->st == 1) {
			struct rkey k = r->k;
			rc = kvs_apply_del(s, c, &k);
		}
	}
	if (rc < 0)
		return rc;
	rmap_clear(&c->live);
	c->synced = false;
	c->need_resync = false;
	c->refused = false;
	c->cfg[0] = '\0';
	c->epoch[0] = '\0';
	snprintf(c->last_id, sizeof(c->last_id), "0-0");
	c->consumed = 0;
	kvs_stale_clear(c);
	return 0;
}

/* ---- verification ---- */

void
kvs_mark(struct cl *c, enum mg_kv_resync_cause cause)
{
	if (c->need_resync)
		return;
	c->need_resync = true;
	c->cause = cause;
	c->st.resyncs[cause]++;
}

/*
 * Decode the config @c->vraw read by the verification into c->v*: the
 * checks of one cluster alone (decodes, expected id, the identity
 * table's mode). The checks across clusters come after.
 */
static void
config_check(const struct mg_kv_sync *s, struct cl *c)
{
	struct mg_kv_cluster_config cfg;
	struct mg_error err = {{0}};
	unsigned mode_max = s->mode == MG_CLUSTER_MODE_511 ? 511 : 255;

	c->cfg_ok = false;
	if (mg_kv_cluster_config_decode(c->vraw, strlen(c->vraw), &cfg, &err) < 0) {
		snprintf(c->cfg_why, sizeof(c->cfg_why), "bad cluster config: %.120s", err.msg);
		return;
	}
	c->vid = cfg.id;
	c->vcached = cfg.cached;
	c->vcanaries = cfg.synced_canaries;
	/*
	 * As Cilium's agents since 1.16 (ValidateRemoteConfig ->
	 * ValidateClusterID, ReserveClusterID): id 0 is reserved, and an id
	 * beyond the mesh's size does not exist. Up to 1.15 an agent in its
	 * default (backward-compatible) mode accepted a config without id and
	 * synced the cluster without range checks; the gateway needs the id
	 * for them and for the conflict order.
	 */
	if (cfg.id == 0) {
		snprintf(c->cfg_why, sizeof(c->cfg_why),
		         "cluster config has no id (0 is reserved; written by KVStoreMesh up to "
		         "1.15 for a cluster without one)");
		return;
	}
	if (cfg.id > mode_max) {
		snprintf(c->cfg_why, sizeof(c->cfg_why),
		         "cluster config says id %u, beyond the %u clusters the gateway runs with",
		         cfg.id, mode_max);
		return;
	}
	if (c->want_id != 0 && cfg.id != c->want_id) {
		snprintf(c->cfg_why, sizeof(c->cfg_why),
		         "cluster config says id %u, the gateway's configuration %u", cfg.id,
		         c->want_id);
		return;
	}
	/* Cilium compares maxConnectedClusters only when its own is not 255. */
	if (mode_max != 255 && cfg.max_connected_clusters != mode_max) {
		snprintf(c->cfg_why, sizeof(c->cfg_why),
		         "cluster config says maxConnectedClusters %u, the gateway runs with %u",
		         cfg.max_connected_clusters, mode_max);
		return;
	}
	c->cfg_ok = true;
	c->cfg_why[0] = '\0';
}

/*
 * Checks across the configured clusters, on the configs just read: two
 * clusters with one id (the ranges and the conflict order would mix them
 * up: the later one in configuration order is refused, as Cilium refuses
 * a duplicate id), and more than one cluster on the single-cluster layout
 * (cilium/state/... holds one cluster's keys, whose names do not say
 * which: every such cluster is refused until the data is fixed).
 */
static void
config_cross_check(struct mg_kv_sync *s)
{
	size_t nstate = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		if (!c->present || !c->cfg_ok)
			continue;
		for (size_t j = 0; j < i; j++) {
			const struct cl *o = &s->c[j];
			if (o->present && o->cfg_ok && o->vid == c->vid) {
				snprintf(c->cfg_why, sizeof(c->cfg_why),
				         "cluster id %u is cluster %s's already", c->vid, o->name);
				c->cfg_ok = false;
				break;
			}
		}
		if (c->cfg_ok && !c->vcached)
			nstate++;
	}
	if (nstate < 2)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		if (c->present && c->cfg_ok && !c->vcached) {
			snprintf(c->cfg_why, sizeof(c->cfg_why),
			         "%zu configured clusters read the single-cluster layout "
			         "(cilium/state/...) of this Redis; at most one may",
			         nstate);
			c->cfg_ok = false;
		}
	}
}

/* What a pipelined verification reads per cluster, in this order. */
enum {
	V_CFG,
	V_EPOCH,
	V_XINFO,
	V_MARKER,
	V_HEARTBEAT,
	V_N
};

/*
 * The replicator's heartbeat of @c (reply @r of GET): note its time, and
 * whether it says the copy may be out of date. No key: no replicator
 * writes this cluster (meshgatectl kv import writes none), nothing to
 * say. A value that does not parse is counted once per distinct value and
 * taken as stale: a heartbeat the gateway cannot read does not show the
 * replicator hears from the cluster.
 */
static void
heartbeat_read(const struct mg_kv_sync *s, struct cl *c, const redisReply *r)
{
	int64_t t = 0, now = (int64_t)wall_s();
	char raw[sizeof(c->hb_raw)];

	c->hb_stale = false;
	if (r->type != REDIS_REPLY_STRING) {
		c->hb_raw[0] = '\0';
		c->st.heartbeat_at = 0;
		return;
	}
	snprintf(raw, sizeof(raw), "%.*s", (int)r->len, r->str);
	if (r->len >= sizeof(raw) || mg_kv_time_parse(r->str, r->len, &t) < 0 || t <= 0) {
		if (strcmp(raw, c->hb_raw) != 0) {
			c->st.heartbeat_invalid++;
			MG_WARN("kv sync: %s: heartbeat %s does not parse as an RFC 3339 time: "
			        "\"%.40s\"",
			        c->name, c->hb_key, raw);
		}
		snprintf(c->hb_raw, sizeof(c->hb_raw), "%s", raw);
		c->st.heartbeat_at = 0;
		c->hb_stale = s->p.heartbeat_timeout_ms > 0;
		return;
	}
	snprintf(c->hb_raw, sizeof(c->hb_raw), "%s", raw);
	c->st.heartbeat_at = (uint64_t)t;
	/* A time ahead of ours (clock skew) is fresh. */
	c->hb_stale = s->p.heartbeat_timeout_ms > 0 &&
	              (uint64_t)(now > t ? now - t : 0) * 1000u > s->p.heartbeat_timeout_ms;
}

/*
 * Mark or clear the heartbeat's stale reason of a synced cluster whose
 * config is fine. Every other reason comes first (they stop the tail);
 * when one goes, the next verification puts the heartbeat's back.
 */
static void
heartbeat_apply(struct cl *c)
{
	if (c->hb_stale && c->stale == MG_KV_STALE_NONE) {
		if (c->st.heartbeat_at != 0)
			snprintf(c->why, sizeof(c->why),
			         "replicator heartbeat %.60s is %" PRIu64 " s old", c->hb_key,
			         wall_s() > c->st.heartbeat_at ? wall_s() - c->st.heartbeat_at : 0);
		else
			snprintf(c->why, sizeof(c->why),
			         "replicator heartbeat %.60s does not parse", c->hb_key);
		kvs_stale_set(c, MG_KV_STALE_HEARTBEAT);
	} else if (!c->hb_stale && c->stale == MG_KV_STALE_HEARTBEAT) {
		kvs_stale_clear(c);
		c->why[0] = '\0';
	}
}

/*
 * The removal marker of @c is (@marker) or is not there: start, carry out
 * or cancel a removal. -ENOMEM, else 0.
 */
static int
marker_check(struct mg_kv_sync *s, struct cl *c, bool marker)
{
	uint64_t t = now_ms();

	if (!marker) {
		if (c->removing) {
			c->removing = false;
			MG_INFO("kv sync: %s: removal marker %s gone before its grace period "
			        "ended: the cluster stays",
			        c->name, c->removed_key);
		}
		return 0;
	}
	if (c->removed)
		return 0;
	if (!c->removing) {
		c->removing = true;
		/* Nothing held yet: nothing to wait for. */
		c->remove_at = c->synced || c->live.n > 0 ? t + s->p.removal_grace_ms : t;
		c->st.removal_at = wall_s() + (c->remove_at - t + 999) / 1000;
		if (c->remove_at > t)
			MG_WARN("kv sync: %s: removal marker %s: the cluster's state (%zu "
			        "entries) is removed in %u s unless the marker goes",
			        c->name, c->removed_key, c->live.n,
			        (unsigned)((c->remove_at - t + 999) / 1000));
	}
	if (t < c->remove_at)
		return 0;
	MG_WARN("kv sync: %s: removal marker %s: removing the cluster's state (%zu entries)",
	        c->name, c->removed_key, c->live.n);
	int rc = kvs_remove_state(s, c);
	if (rc < 0)
		return rc;
	c->removing = false;
	c->removed = true;
	c->st.removal_at = 0;
	c->st.removals++;
	snprintf(c->why, sizeof(c->why), "removed by its marker %.100s", c->removed_key);
	return 0;
}

/* One cluster's part of a verification: @r holds its V_N replies. */
static int
verify_cluster(struct mg_kv_sync *s, struct cl *c, redisReply **r)
{
	struct sinfo si;
	int rc;

	heartbeat_read(s, c, r[V_HEARTBEAT]);
	rc = marker_check(s, c, r[V_MARKER]->type == REDIS_REPLY_INTEGER && r[V_MARKER]->integer);
	if (rc < 0)
		return rc;
	if (c->removed) {
		/* The marker is gone and the cluster is back: sync it anew. */
		if (!c->removing && c->present && c->cfg_ok &&
		    !(r[V_MARKER]->type == REDIS_REPLY_INTEGER && r[V_MARKER]->integer))
			kvs_mark(c, MG_KV_RESYNC_CONFIG);
		return 0;
	}
	if (!c->present) {
		snprintf(c->why, sizeof(c->why), "cluster config %.100s is missing", c->cfg_key);
		kvs_stale_set(c, MG_KV_STALE_NO_CONFIG);
		return 0;
	}
	if (!c->cfg_ok) {
		snprintf(c->why, sizeof(c->why), "%s", c->cfg_why);
		kvs_stale_set(c, MG_KV_STALE_BAD_CONFIG);
		return 0;
	}
	if (!c->synced)
		return 0; /* the next kvs_resync_due tries */
	if (c->stale == MG_KV_STALE_NO_CONFIG || c->stale == MG_KV_STALE_BAD_CONFIG ||
	    strcmp(c->vraw, c->cfg) != 0) {
		/* The config came back, or changed (a new id, the other layout). */
		kvs_mark(c, MG_KV_RESYNC_CONFIG);
		return 0;
	}
	if (c->need_resync) {
		heartbeat_apply(c);
		return 0;
	}
	const char *epoch = r[V_EPOCH]->type == REDIS_REPLY_STRING ? r[V_EPOCH]->str : "";
	kvs_stream_info_parse(r[V_XINFO], &si);
	/*
	 * Trimming removes entries from the front: entries-added minus
	 * length is how many were removed, and more removed than we have
	 * read means one we never read is gone. XDEL of an unread entry
	 * shows as max-deleted-entry-id beyond our position.
	 */
	if (strcmp(epoch, c->epoch) != 0)
		kvs_mark(c, MG_KV_RESYNC_EPOCH);
	else if (id_cmp(si.maxdel, c->last_id) > 0 || si.added - si.length > c->consumed)
		kvs_mark(c, MG_KV_RESYNC_TRIMMED);
	uint64_t lm = 0, ls = 0, om = 0, os = 0;
	if (id_parse(si.last, &lm, &ls) && id_parse(c->last_id, &om, &os))
		c->st.lag_ms = lm > om ? lm - om : 0;
	if (!c->need_resync && c->stale == MG_KV_STALE_DISCONNECTED)
		kvs_stale_clear(c); /* reconnected, and nothing was missed */
	heartbeat_apply(c);
	return 0;
}

/*
 * Verify every cluster in one pipelined round trip: the server's
 * replication id, then per cluster its config, epoch, log and removal
 * marker. Marks the resyncs due, starts or carries out removals, and
 * flags stale clusters. 0, -ENOTCONN, -ENOMEM.
 */
int
kvs_verify(struct mg_kv_sync *s)
{
	redisReply **rep = NULL, *info = NULL;
	size_t nrep = 0;
	int rc = 0;

	if (s->ctx == NULL)
		return -ENOTCONN;
	if (s->n > 0 && (rep = calloc(s->n * V_N, sizeof(*rep))) == NULL)
		return -ENOMEM;
	{
		const char *argv[2] = {"INFO", "replication"};
		redisAppendCommandArgv(s->ctx, 2, argv, NULL);
	}
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		const char *a0[2] = {"GET", c->cfg_key}, *a1[2] = {"GET", c->epoch_key};
		const char *a2[3] = {"XINFO", "STREAM", c->log_key};
		const char *a3[2] = {"EXISTS", c->removed_key}, *a4[2] = {"GET", c->hb_key};
		redisAppendCommandArgv(s->ctx, 2, a0, NULL);
		redisAppendCommandArgv(s->ctx, 2, a1, NULL);
		redisAppendCommandArgv(s->ctx, 3, a2, NULL);
		redisAppendCommandArgv(s->ctx, 2, a3, NULL);
		redisAppendCommandArgv(s->ctx, 2, a4, NULL);
	}
	if (redisGetReply(s->ctx, (void **)&info) != REDIS_OK)
		goto lost;
	for (nrep = 0; nrep < s->n * V_N; nrep++)
		if (redisGetReply(s->ctx, (void **)&rep[nrep]) != REDIS_OK)
			goto lost;

	if (info->type == REDIS_REPLY_STRING) {
		const char *p = strstr(info->str, "master_replid:");
		if (p != NULL) {
			char id[64];
			size_t l = strcspn(p + 14, "\r\n");
			snprintf(id, sizeof(id), "%.*s", (int)(l < 63 ? l : 63), p + 14);
			if (s->replid[0] && strcmp(id, s->replid) != 0)
				for (size_t i = 0; i < s->n; i++)
					if (s->c[i].synced)
						kvs_mark(&s->c[i], MG_KV_RESYNC_REPLID);
			snprintf(s->replid, sizeof(s->replid), "%s", id);
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		struct cl *c = &s->c[i];
		const redisReply *cfg = rep[i * V_N + V_CFG];
		c->present = cfg->type == REDIS_REPLY_STRING;
		if (c->present) {
			snprintf(c->vraw, sizeof(c->vraw), "%.*s", (int)cfg->len, cfg->str);
			if (cfg->len >= sizeof(c->vraw)) {
				c->cfg_ok = false;
				snprintf(c->cfg_why, sizeof(c->cfg_why),
				         "bad cluster config: %zu bytes", (size_t)cfg->len);
			} else {
				config_check(s, c);
			}
		} else {
			c->vraw[0] = '\0';
			c->cfg_ok = false;
		}
	}
	config_cross_check(s);
	for (size_t i = 0; i < s->n && rc == 0; i++)
		rc = verify_cluster(s, &s->c[i], &rep[i * V_N]);
	goto out;
lost:
	kvs_disconnect(s);
	rc = -ENOTCONN;
out:
	if (info != NULL)
		freeReplyObject(info);
	for (size_t i = 0; i < nrep; i++)
		freeReplyObject(rep[i]);
	free(rep);
	return rc;
}
