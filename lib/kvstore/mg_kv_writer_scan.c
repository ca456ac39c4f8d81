/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The writer's walks over the keyspace: prune (delete the cluster's keys
 * an import did not write, in batches) and the layout check (refuse to
 * write a cluster in a layout that would mix its keys with another
 * cluster's, or split it over both layouts). SCAN visits every key that
 * exists for the whole walk at least once, whatever is deleted meanwhile.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kv_writer_priv.h"

/* A key of the writer's cluster, in its layout. */
static bool
kv_own_key(const struct mg_kv_writer *w, const char *key)
{
	struct mg_ipcache_entry e;
	uint32_t id;
	bool host;

	return mg_kv_identity_key_parse(key, w->scope, w->cluster, &id) == 0 ||
	       mg_kv_ip_key_parse(key, w->scope, w->cluster, &e, &host) == 0;
}

/*
 * SCAN every key matching @p pattern and call @p fn on each (0 goes on,
 * < 0 stops and is returned). Keys may be deleted meanwhile: SCAN still
 * returns every key that existed for the whole scan at least once.
 */
static int
kv_scan(struct mg_kv_writer *w, const char *pattern,
        int (*fn)(struct mg_kv_writer *w, const char *key, void *arg, struct mg_error *err),
        void *arg, struct mg_error *err)
{
	char cursor[32] = "0";
	redisReply *r;
	int rc = 0;

	do {
		const char *argv[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};

		r = kvw_cmd(w, "SCAN", &rc, err, 6, argv);
		if (r == NULL)
			return rc;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			mg_error_set(err, NULL, 0, 0, "redis SCAN: unexpected reply");
			return -EPROTO;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 0; i < r->element[1]->elements && rc == 0; i++) {
			const redisReply *k = r->element[1]->element[i];

			if (k->type == REDIS_REPLY_STRING)
				rc = fn(w, k->str, arg, err);
		}
		freeReplyObject(r);
	} while (rc == 0 && strcmp(cursor, "0") != 0);
	return rc;
}

struct kv_prune {
	bool (*keep)(const char *key, void *arg);
	void *arg;
	struct mg_kv_batch_counts c;
};

static int
kv_prune_key(struct mg_kv_writer *w, const char *key, void *arg, struct mg_error *err)
{
	struct kv_prune *p = arg;

	if (!kv_own_key(w, key) || p->keep(key, p->arg))
		return 0;
	/* Sent in batches; the next SCAN flushes them first. */
	return mg_kv_writer_queue_del(w, key, &p->c, err);
}

int
mg_kv_writer_prune(struct mg_kv_writer *w, bool (*keep)(const char *key, void *arg), void *arg,
                   struct mg_error *err)
{
	char patterns[2][MG_KV_KEY_MAX];
	struct kv_prune p = {keep, arg, {0}};
	int rc = 0;

	if (w->scope == MG_KV_SCOPE_CACHE) {
		snprintf(patterns[0], sizeof(patterns[0]), MG_KV_CACHE_IDENTITIES "/%s/id/*",
		         w->cluster);
		snprintf(patterns[1], sizeof(patterns[1]), MG_KV_CACHE_IP "/%s/*", w->cluster);
	} else {
		snprintf(patterns[0], sizeof(patterns[0]), MG_KV_STATE_IDENTITIES "/id/*");
		snprintf(patterns[1], sizeof(patterns[1]),
		         MG_KV_STATE_IP "/" MG_KV_IP_NAMESPACE "/*");
	}
	for (int i = 0; i < 2 && rc == 0; i++)
		rc = kv_scan(w, patterns[i], kv_prune_key, &p, err);
	if (rc == 0)
		rc = mg_kv_writer_flush(w, err);
	return rc < 0 ? rc : (int)p.c.written;
}

/* One cluster config of this Redis against the writer's layout. */
static int
kv_layout_key(struct mg_kv_writer *w, const char *key, void *arg, struct mg_error *err)
{
	const char *name = key + strlen(MG_KV_CLUSTER_CONFIG "/"), *argv[2] = {"GET", key};
	struct mg_kv_cluster_config cc;
	struct mg_error scratch;
	redisReply *v;
	bool mine;
	int rc = 0;

	(void)arg;
	if (!mg_kv_cluster_name_valid(name))
		return 0;
	mine = strcmp(name, w->cluster) == 0;
	v = kvw_cmd(w, "GET", &rc, err, 2, argv);
	if (v == NULL)
		return rc;
	if (v->type == REDIS_REPLY_STRING &&
	    mg_kv_cluster_config_decode(v->str, v->len, &cc, &scratch) == 0) {
		if (mine && cc.cached != (w->scope == MG_KV_SCOPE_CACHE)) {
			mg_error_set(
			        err, NULL, 0, 0,
			        "cluster %s is stored in the %s layout of this Redis (%s); %s, "
			        "or remove the cluster's keys first",
			        name, cc.cached ? "per-cluster" : "single-cluster",
			        cc.cached ? "cilium/cache/.../<cluster>/..." : "cilium/state/...",
			        cc.cached ? "leave out --single-cluster"
			                  : "pass --single-cluster to write it there");
			rc = -EEXIST;
		} else if (!mine && !cc.cached && w->scope == MG_KV_SCOPE_STATE) {
			mg_error_set(err, NULL, 0, 0,
			             "cluster %s holds the single-cluster layout of this Redis "
			             "(cilium/state/..., whose keys do not name their cluster) "
			             "already: one Redis holds one cluster there; write %s without "
			             "--single-cluster (the per-cluster layout "
			             "cilium/cache/.../%s/...)",
			             name, w->cluster, w->cluster);
			rc = -EEXIST;
		}
	}
	freeReplyObject(v);
	return rc;
}

int
mg_kv_writer_check_layout(struct mg_kv_writer *w, struct mg_error *err)
{
	return kv_scan(w, MG_KV_CLUSTER_CONFIG "/*", kv_layout_key, NULL, err);
}
