/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Redis sync in the gateway (docs/kvstore.md, "In the daemon"): the
 * sync client on the gateway's tables, its initial sync before anything
 * is published (the start is fail-closed: the caller starts its ports
 * after mg_gateway_start), and every later batch published with the
 * policy derived for the identities it changed, as one step, so a reader
 * never sees an address mapped to an identity its policy does not know.
 * The client's base layer is the gateway's own entry for a prefix (a
 * static entry, then a CIDR identity of its policies).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_priv.h"

int
gw_kv_base(void *arg, const struct mg_ipcache_entry *prefix, struct mg_ipcache_entry *out)
{
	const struct mg_gateway *gw = arg;
	const struct gw_state *st = &gw->st;
	uint32_t id;

	if (st->base != NULL &&
	    mg_ipcache_get(st->base, prefix->family, prefix->addr, prefix->plen, out) == 0)
		return 1;
	id = mg_cidr_ids_lookup(st->cidr, prefix->family, prefix->addr, prefix->plen);
	if (id == 0)
		return 0;
	*out = *prefix;
	out->identity = id;
	out->cluster_id = 0;
	return 1;
}

/*
 * The sync client's parameters from @p cfg, into @p p with the cluster
 * list in @p cl (cfg->n_kv_clusters entries): the local cluster is the one
 * named cluster.name, and its config in Redis must carry cluster.id.
 */
static void
kv_params(const struct mg_config *cfg, struct mg_kv_sync_cluster_params *cl,
          struct mg_kv_sync_params *p)
{
	for (size_t i = 0; i < cfg->n_kv_clusters; i++) {
		cl[i].name = cfg->kv_clusters[i];
		cl[i].local = strcmp(cfg->kv_clusters[i], cfg->cluster_name) == 0;
		cl[i].id = cl[i].local ? cfg->cluster_id : 0;
	}
	p->url = cfg->kv_redis;
	p->user = cfg->kv_user;
	p->n_clusters = cfg->n_kv_clusters;
	p->clusters = cl;
	/* The poll is the caller's wait between other work (the daemon's
	 * control socket): a short block keeps that answered within ~10 ms. */
	p->block_ms = cfg->kv_block_ms < 10 ? cfg->kv_block_ms : 10;
	p->connect_ms = 1000;
	/* 0 would mean the default (0.5): "no deletion" is a tiny share. */
	p->max_delete_share = cfg->kv_max_delete_share ? cfg->kv_max_delete_share / 100.0 : 1e-9;
	p->removal_grace_ms = cfg->kv_removal_grace * 1000u;
	p->heartbeat_timeout_ms = cfg->kv_heartbeat_timeout * 1000u;
}

/*
 * Publish what the sync client left staged (a poll's batch, a removed
 * cluster): changed identities give a policy derived from the running
 * one, and the batch and that policy go out in ONE publication (an
 * ipcache-only batch with the running policy), which also bumps the
 * generation so tracked flows are re-checked. When the policy cannot be
 * derived or the publication fails, nothing of the batch goes live: it is
 * discarded and the client re-stages everything at its next poll.
 */
static void
kv_publish(struct mg_gateway *gw, const uint32_t *changed, size_t n, bool applied)
{
	struct mg_error err = {{0}};
	struct mg_policy *pol = NULL;
	int prc = 0;

	if (!applied && n == 0 && mg_ipcache_pending(gw->st.ipc) == 0)
		return;
	if (n > 0) {
		pol = mg_policy_update_identities(gw->running, gw->st.set, gw->st.ids, changed, n,
		                                  &err);
		if (pol == NULL) {
			prc = -EAGAIN;
			MG_ERR("kvstore: policy update for %zu identities failed: %s", n,
			       err.msg[0] ? err.msg : strerror(errno));
		}
	}
	if (prc == 0) {
		prc = gw_publish(gw, pol);
		if (prc < 0) {
			MG_ERR("kvstore: publishing the batch failed: %s", strerror(-prc));
			mg_policy_free(pol);
		}
	}
	if (prc < 0) {
		/* Nothing of the batch is live: the readers keep a matching pair. */
		gw->stats.sync_failures++;
		mg_ipcache_discard(gw->st.ipc);
		mg_kv_sync_request_resync(gw->kv, MG_KV_RESYNC_REPAIR);
	}
}

int
mg_gateway_sync_tick(struct mg_gateway *gw)
{
	uint32_t *changed = NULL;
	size_t n = 0;
	int rc;

	if (gw->kv == NULL)
		return 0;
	rc = mg_kv_sync_poll(gw->kv, &changed, &n);
	/* A failed poll may have staged part of a batch its copies hold: publish it too. */
	kv_publish(gw, changed, n, rc > 0);
	if (rc < 0 && rc != -ENOTCONN)
		MG_ERR("kvstore: poll: %s", strerror(-rc));
	free(changed);
	return rc;
}

int
mg_gateway_request_resync(struct mg_gateway *gw)
{
	if (gw->kv == NULL)
		return -ENOTSUP;
	mg_kv_sync_request_resync(gw->kv, MG_KV_RESYNC_OPERATOR);
	return 0;
}

static bool
str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

void
gw_kv_reconfigure(struct mg_gateway *gw, const struct mg_config *old)
{
	const struct mg_config *cfg = gw->st.cfg;
	struct mg_kv_sync_cluster_params *cl;
	struct mg_kv_sync_params p = {0};
	struct mg_error err = {{0}};
	uint32_t *changed = NULL;
	size_t n = 0;
	int rc;

	if (cfg->kv_redis == NULL) {
		MG_WARN("reload: the kvstore section was removed; the Redis sync goes on with the "
		        "settings it started with until a restart");
		return;
	}
	if (!str_eq(cfg->kv_redis, old->kv_redis) || !str_eq(cfg->kv_user, old->kv_user) ||
	    !str_eq(cfg->kv_password_file, old->kv_password_file))
		MG_WARN("reload: kvstore.redis, user and password_file take effect at the next "
		        "start");
	cl = calloc(cfg->n_kv_clusters ? cfg->n_kv_clusters : 1, sizeof(*cl));
	if (cl == NULL) {
		MG_ERR("reload: kvstore: out of memory");
		return;
	}
	kv_params(cfg, cl, &p);
	rc = mg_kv_sync_reconfigure(gw->kv, &p, &changed, &n, &err);
	if (rc < 0)
		MG_ERR("reload: kvstore: %s", err.msg[0] ? err.msg : strerror(-rc));
	kv_publish(gw, changed, n, false);
	free(changed);
	free(cl);
}

/* Say what the initial sync brought, cluster by cluster. */
static void
kv_log_clusters(const struct mg_gateway *gw)
{
	const struct mg_config *cfg = gw->st.cfg;
	struct mg_kv_sync_stats ks;

	for (size_t i = 0; i < mg_kv_sync_n_clusters(gw->kv); i++) {
		if (mg_kv_sync_stats(gw->kv, i, &ks) != 0)
			continue;
		if (ks.synced)
			MG_INFO("kvstore: cluster %s (id %u%s) synced: %" PRIu64 " entries",
			        ks.name, ks.cluster_id,
			        strcmp(ks.name, cfg->cluster_name) == 0 ? ", local" : "",
			        ks.entries);
		else if (ks.removed)
			MG_WARN("kvstore: cluster %s: %s", ks.name, ks.why);
		else
			MG_WARN("kvstore: cluster %s not synced: %s", ks.name, ks.why);
	}
}

/*
 * Create the sync client on the gateway's tables and run the initial
 * sync, bounded by kvstore.sync_timeout; commit what came (nothing reads
 * the tables yet). 0 (a timeout included: logged), or negative errno.
 */
static int
kv_start(struct mg_gateway *gw, struct mg_error *err)
{
	const struct mg_config *cfg = gw->st.cfg;
	struct mg_kv_sync_cluster_params *cl;
	struct mg_kv_sync_params p = {0};
	struct mg_error serr = {{0}};
	uint32_t *changed = NULL;
	size_t n = 0;
	char password[256] = "";
	int rc;

	if (cfg->n_kv_clusters == 0) {
		MG_WARN("kvstore: no clusters configured: nothing to sync");
		return 0;
	}
	if (cfg->kv_password_file != NULL) {
		/* the writer's check too: a regular file group and others cannot read */
		rc = mg_kv_password_file_read(cfg->kv_password_file, password, sizeof(password),
		                              err);
		if (rc < 0) {
			mg_error_prefix(err, "kvstore.password_file: ");
			return rc;
		}
	}
	cl = calloc(cfg->n_kv_clusters, sizeof(*cl));
	if (cl == NULL) {
		mg_error_set(err, NULL, 0, 0, "kvstore: out of memory");
		return -ENOMEM;
	}
	kv_params(cfg, cl, &p);
	p.password = password;
	p.base = gw_kv_base;
	p.base_arg = gw; /* the state behind it is swapped in place by reloads */
	gw->kv = mg_kv_sync_create(&p, gw->st.ids, gw->st.ipc, err);
	explicit_bzero(password, sizeof(password));
	free(cl);
	if (gw->kv == NULL) {
		rc = -errno;
		mg_error_prefix(err, "kvstore: ");
		return rc;
	}
	MG_INFO("kvstore: initial sync of %zu cluster(s) from %s (at most %u s; nothing is "
	        "forwarded meanwhile)",
	        cfg->n_kv_clusters, cfg->kv_redis, cfg->kv_sync_timeout);
	rc = mg_kv_sync_initial(gw->kv, cfg->kv_sync_timeout * 1000u, &changed, &n, &serr);
	free(changed);
	/* The batch is left staged; nothing reads these tables yet: a plain commit. */
	if (rc == 0 || rc == -ETIMEDOUT) {
		int crc = mg_ipcache_commit(gw->st.ipc);

		if (crc < 0)
			rc = crc;
	}
	if (rc < 0 && rc != -ETIMEDOUT) {
		mg_error_set(err, NULL, 0, 0, "kvstore: initial sync: %s", strerror(-rc));
		return rc;
	}
	kv_log_clusters(gw);
	if (rc == -ETIMEDOUT)
		MG_WARN("kvstore: initial sync not done after %u s: proceeding with what it has "
		        "(%s)",
		        cfg->kv_sync_timeout, serr.msg);
	return 0;
}

int
mg_gateway_start(struct mg_gateway *gw, struct mg_error *err)
{
	int rc;

	if (gw->st.cfg->kv_redis != NULL && (rc = kv_start(gw, err)) < 0)
		return rc;
	/* One compile, over the static and the synced identities. */
	return mg_gateway_compile(gw, err);
}
