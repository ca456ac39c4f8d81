/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The writer's walks over the keyspace: prune (delete the cluster's keys
 * an import did not write, in batches), the layout check (refuse to write
 * a cluster in a layout that would mix its keys with another cluster's,
 * or split it over both layouts) and the values under a prefix (what a
 * replicator compares its source with before a resync: one MGET per SCAN
 * page). SCAN visits every key that exists for the whole walk at least
 * once, whatever is deleted meanwhile.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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
 * SCAN every key matching @p pattern and call @p page on each page of
 * keys (the array of SCAN's reply; 0 goes on, < 0 stops and is returned).
 * Keys may be deleted meanwhile: SCAN still returns every key that
 * existed for the whole scan at least once (and may return a key twice).
 */
static int
kv_scan_pages(struct mg_kv_writer *w, const char *pattern,
              int (*page)(struct mg_kv_writer *w, const redisReply *keys, void *arg,
                          struct mg_error *err),
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
		rc = page(w, r->element[1], arg, err);
		freeReplyObject(r);
	} while (rc == 0 && strcmp(cursor, "0") != 0);
	return rc;
}

struct kv_scan_keys {
	int (*fn)(struct mg_kv_writer *w, const char *key, void *arg, struct mg_error *err);
	void *arg;
};

static int
kv_scan_keys_page(struct mg_kv_writer *w, const redisReply *keys, void *arg, struct mg_error *err)
{
	const struct kv_scan_keys *s = arg;
	int rc = 0;

	for (size_t i = 0; i < keys->elements && rc == 0; i++) {
		const redisReply *k = keys->element[i];

		if (k->type == REDIS_REPLY_STRING)
			rc = s->fn(w, k->str, s->arg, err);
	}
	return rc;
}

/* kv_scan_pages, calling @p fn on each key. */
static int
kv_scan(struct mg_kv_writer *w, const char *pattern,
        int (*fn)(struct mg_kv_writer *w, const char *key, void *arg, struct mg_error *err),
        void *arg, struct mg_error *err)
{
	struct kv_scan_keys s = {fn, arg};

	return kv_scan_pages(w, pattern, kv_scan_keys_page, &s, err);
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

struct kv_scan_values {
	int (*fn)(void *arg, const char *key, size_t klen, const char *val, size_t vlen);
	void *arg;
	/* MGET's arguments, grown to the largest page. */
	const char **argv;
	size_t *argvlen, cap;
};

/* MGET the keys of one SCAN page and report those that hold strings. */
static int
kv_values_page(struct mg_kv_writer *w, const redisReply *keys, void *arg, struct mg_error *err)
{
	struct kv_scan_values *s = arg;
	const redisReply *k, *v;
	redisReply *r;
	size_t n = 0;
	int rc = 0;

	if (keys->elements == 0)
		return 0;
	if (keys->elements + 1 > s->cap) {
		size_t cap = keys->elements + 1;
		const char **av = realloc(s->argv, cap * sizeof(*av));
		size_t *al;

		if (av == NULL)
			goto nomem;
		s->argv = av;
		al = realloc(s->argvlen, cap * sizeof(*al));
		if (al == NULL)
			goto nomem;
		s->argvlen = al;
		s->cap = cap;
	}
	s->argv[0] = "MGET";
	s->argvlen[0] = 4;
	for (size_t i = 0; i < keys->elements; i++) {
		k = keys->element[i];
		if (k->type != REDIS_REPLY_STRING)
			continue;
		s->argv[1 + n] = k->str;
		s->argvlen[1 + n++] = k->len;
	}
	if (n == 0)
		return 0;
	r = kvw_cmd_len(w, "MGET", &rc, err, (int)(1 + n), s->argv, s->argvlen);
	if (r == NULL)
		return rc;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
		freeReplyObject(r);
		mg_error_set(err, NULL, 0, 0, "redis MGET: unexpected reply");
		return -EPROTO;
	}
	/* nil: the key holds another type, or went since the SCAN. */
	for (size_t i = 0; i < n && rc == 0; i++) {
		v = r->element[i];
		if (v->type == REDIS_REPLY_STRING)
			rc = s->fn(s->arg, s->argv[1 + i], s->argvlen[1 + i], v->str, v->len);
	}
	freeReplyObject(r);
	return rc;
nomem:
	mg_error_set(err, NULL, 0, 0, "out of memory");
	return -ENOMEM;
}

int
mg_kv_writer_scan_values(struct mg_kv_writer *w, const char *match_prefix,
                         int (*fn)(void *arg, const char *key, size_t klen, const char *val,
                                   size_t vlen),
                         void *arg, struct mg_error *err)
{
	struct kv_scan_values s = {fn, arg, NULL, NULL, 0};
	size_t len = strlen(match_prefix), j = 0;
	char *pattern = malloc(2 * len + 2);
	int rc;

	if (pattern == NULL) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	/* The prefix is matched literally: its glob characters escaped. */
	for (size_t i = 0; i < len; i++) {
		if (strchr("*?[]\\", match_prefix[i]) != NULL)
			pattern[j++] = '\\';
		pattern[j++] = match_prefix[i];
	}
	pattern[j++] = '*';
	pattern[j] = '\0';
	rc = kv_scan_pages(w, pattern, kv_values_page, &s, err);
	free(pattern);
	free(s.argv);
	free(s.argvlen);
	return rc;
}
