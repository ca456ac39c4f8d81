/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The writer's changes: single FCALL mg_put / mg_del calls (mg_fbatch of
 * one when the writer is fenced), and the keys and values of identities
 * (labels in Cilium's canonical sorted form, checked by the strict decoder
 * the readers use), ipcache entries (IPIdentityPair JSON), the cluster
 * config and the canaries, in the writer's layout, sent at once or queued
 * into a batch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv_writer_priv.h"

/* Integer reply of an FCALL: 0 or 1 (mg_fbatch's: an array of one). */
static int
kv_fcall(struct mg_kv_writer *w, const char *what, int argc, const char **argv,
         struct mg_error *err)
{
	const redisReply *v;
	redisReply *r;
	int rc = 0;

	r = kvw_cmd(w, what, &rc, err, argc, argv);
	if (r == NULL)
		return rc;
	v = r->type == REDIS_REPLY_ARRAY && r->elements == 1 ? r->element[0] : r;
	if (v->type != REDIS_REPLY_INTEGER || (v->integer != 0 && v->integer != 1)) {
		mg_error_set(err, NULL, 0, 0, "redis %s: unexpected reply", what);
		freeReplyObject(r);
		return -EPROTO;
	}
	rc = (int)v->integer;
	freeReplyObject(r);
	return rc;
}

/* A fenced put or del: mg_fbatch of one change. */
static int
kv_fenced_change(struct mg_kv_writer *w, const char *key, const char *value, bool del,
                 struct mg_error *err)
{
	const char *argv[12] = {"FCALL",
	                        "mg_fbatch",
	                        "4",
	                        w->lease,
	                        w->log,
	                        w->epoch,
	                        key,
	                        w->lease_token,
	                        w->maxlen,
	                        w->token,
	                        del ? "del" : "put",
	                        value};

	return kv_fcall(w, "FCALL mg_fbatch", 12, argv, err);
}

int
mg_kv_writer_put(struct mg_kv_writer *w, const char *key, const char *value, struct mg_error *err)
{
	const char *argv[9] = {"FCALL",  "mg_put", "3",       key,     w->log,
	                       w->epoch, value,    w->maxlen, w->token};

	if (w->fenced)
		return kv_fenced_change(w, key, value, false, err);
	return kv_fcall(w, "FCALL mg_put", 9, argv, err);
}

int
mg_kv_writer_del(struct mg_kv_writer *w, const char *key, struct mg_error *err)
{
	const char *argv[8] = {"FCALL", "mg_del", "3", key, w->log, w->epoch, w->maxlen, w->token};

	if (w->fenced)
		return kv_fenced_change(w, key, "", true, err);
	return kv_fcall(w, "FCALL mg_del", 8, argv, err);
}

/*
 * mg_put of @p val at @p key, at once or (@p queue) queued and counted in
 * @p c: the single and the queued form of a built change. Frees @p val.
 */
static int
kv_send(struct mg_kv_writer *w, const char *key, char *val, bool queue,
        struct mg_kv_batch_counts *c, struct mg_error *err)
{
	int rc = queue ? mg_kv_writer_queue_put(w, key, val, c, err)
	               : mg_kv_writer_put(w, key, val, err);

	free(val);
	return rc;
}

/* Key and canonical value of an identity; *@p val is free()d by the caller. */
static int
kv_identity_kv(const struct mg_kv_writer *w, uint32_t id, const char *labels, char *key, char **val,
               struct mg_error *err)
{
	struct mg_labels ls = MG_LABELS_INIT;
	int rc;

	if (mg_kv_identity_key(key, MG_KV_KEY_MAX, w->scope, w->cluster, id) < 0) {
		mg_error_set(err, NULL, 0, 0, "invalid identity %u", id);
		return -EINVAL;
	}
	if (labels[0] == '\0') {
		mg_error_set(err, NULL, 0, 0, "identity %u: no labels", id);
		return -EINVAL;
	}
	rc = mg_labels_parse(&ls, labels, err);
	if (rc < 0)
		return rc;
	/* Store the canonical (sorted) form so equal sets compare equal;
	 * what readers would refuse is refused here already. */
	*val = mg_labels_format(&ls);
	mg_labels_clear(&ls);
	if (*val == NULL) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	rc = mg_kv_identity_value_decode(*val, strlen(*val), &ls, err);
	mg_labels_clear(&ls);
	if (rc < 0) {
		free(*val);
		*val = NULL;
	}
	return rc;
}

int
mg_kv_writer_put_identity(struct mg_kv_writer *w, uint32_t id, const char *labels,
                          struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];
	char *val;
	int rc = kv_identity_kv(w, id, labels, key, &val, err);

	return rc < 0 ? rc : kv_send(w, key, val, false, NULL, err);
}

int
mg_kv_writer_queue_identity(struct mg_kv_writer *w, uint32_t id, const char *labels,
                            struct mg_kv_batch_counts *c, struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];
	char *val;
	int rc = kv_identity_kv(w, id, labels, key, &val, err);

	return rc < 0 ? rc : kv_send(w, key, val, true, c, err);
}

int
mg_kv_writer_del_identity(struct mg_kv_writer *w, uint32_t id, struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];

	if (mg_kv_identity_key(key, sizeof(key), w->scope, w->cluster, id) < 0) {
		mg_error_set(err, NULL, 0, 0, "invalid identity %u", id);
		return -EINVAL;
	}
	return mg_kv_writer_del(w, key, err);
}

/* Key and JSON value of an ipcache entry; *@p val is free()d by the caller. */
static int
kv_ip_kv(const struct mg_kv_writer *w, const struct mg_kv_ip_pair *p, char *key, char **val,
         struct mg_error *err)
{
	int rc;

	if (mg_kv_ip_key(key, MG_KV_KEY_MAX, w->scope, w->cluster, &p->prefix, p->host_route) < 0) {
		mg_error_set(err, NULL, 0, 0, "invalid prefix");
		return -EINVAL;
	}
	*val = mg_kv_ip_pair_encode(p);
	if (*val == NULL) {
		rc = -errno;
		mg_error_set(err, NULL, 0, 0, "invalid ipcache entry: %s", strerror(errno));
		return rc;
	}
	return 0;
}

int
mg_kv_writer_put_ip(struct mg_kv_writer *w, const struct mg_kv_ip_pair *p, struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];
	char *val;
	int rc = kv_ip_kv(w, p, key, &val, err);

	return rc < 0 ? rc : kv_send(w, key, val, false, NULL, err);
}

int
mg_kv_writer_queue_ip(struct mg_kv_writer *w, const struct mg_kv_ip_pair *p,
                      struct mg_kv_batch_counts *c, struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];
	char *val;
	int rc = kv_ip_kv(w, p, key, &val, err);

	return rc < 0 ? rc : kv_send(w, key, val, true, c, err);
}

int
mg_kv_writer_del_ip(struct mg_kv_writer *w, const struct mg_ipcache_entry *e, bool host_route,
                    struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];

	if (mg_kv_ip_key(key, sizeof(key), w->scope, w->cluster, e, host_route) < 0) {
		mg_error_set(err, NULL, 0, 0, "invalid prefix");
		return -EINVAL;
	}
	return mg_kv_writer_del(w, key, err);
}

int
mg_kv_writer_cluster_config(struct mg_kv_writer *w, const struct mg_kv_cluster_config *c,
                            struct mg_error *err)
{
	char key[MG_KV_KEY_MAX];
	char *val;
	int rc;

	mg_kv_cluster_config_key(key, sizeof(key), w->cluster);
	val = mg_kv_cluster_config_encode(c);
	if (val == NULL) {
		rc = -errno;
		mg_error_set(err, NULL, 0, 0, "invalid cluster config: %s", strerror(errno));
		return rc;
	}
	return kv_send(w, key, val, false, NULL, err);
}

int
mg_kv_time_now(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (gmtime_r(&ts.tv_sec, &tm) == NULL)
		return -EOVERFLOW;
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return n == 0 ? -ENAMETOOLONG : (int)n;
}

int
mg_kv_writer_canaries(struct mg_kv_writer *w, struct mg_error *err)
{
	const char *const prefixes[] = {
	        w->scope == MG_KV_SCOPE_CACHE ? MG_KV_CACHE_IDENTITIES : MG_KV_STATE_IDENTITIES,
	        w->scope == MG_KV_SCOPE_CACHE ? MG_KV_CACHE_IP : MG_KV_STATE_IP};
	char key[MG_KV_KEY_MAX], now[40];
	size_t i;
	int rc;

	mg_kv_time_now(now, sizeof(now));
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		mg_kv_synced_key(key, sizeof(key), w->cluster, prefixes[i]);
		rc = mg_kv_writer_set_plain(w, key, now, 0, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}
