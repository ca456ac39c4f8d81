/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `replicator troubleshoot`: what `kvstoremesh-dbg troubleshoot` tells a
 * Cilium user, per cluster config file of the clustermesh directory: the
 * file, and per endpoint DNS, TCP and the TLS handshake with the
 * certificates' CNs and validity (gRPC says UNAVAILABLE for all of those,
 * so the probe does its own handshake), then over gRPC etcd's version and
 * cluster id, whether the user (the certificate's CN) may read, the
 * cluster config and the canaries. Each cluster is checked on its own
 * thread, each step bounded by a timeout, so the command answers within
 * a few seconds whatever the clusters do.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mg_etcd.h"
#include "rep_priv.h"
#include "rep_probe.h"

#define STEP_MS 3000
#define MAX_CHECKS 256

struct check {
	char name[MG_REP_NAME_MAX];
	char path[1024];
	const struct mg_rep_config *c;
	pthread_t th;
	bool started;
	json_t *out;
};

static json_t *
key_json(struct mg_etcd *e, const char *key, bool *denied)
{
	struct mg_etcd_range r;
	struct mg_error err = {{0}};
	int rc = mg_etcd_range(e, key, strlen(key), NULL, 0, 0, 1, 0, &r, &err);
	if (rc < 0) {
		if (rc == -EACCES)
			*denied = true;
		return json_pack("{s:s, s:b, s:s}", "key", key, "present", 0, "error", err.msg);
	}
	json_t *o = json_pack("{s:s, s:b}", "key", key, "present", r.n > 0);
	if (r.n > 0)
		json_object_set_new(
		        o, "value",
		        json_stringn_nocheck(r.kvs[0].value,
		                             r.kvs[0].value_len < 512 ? r.kvs[0].value_len : 512));
	mg_etcd_range_free(&r);
	return o;
}

/* Over gRPC: version, cluster id, and what the user may read. */
static json_t *
etcd_json(const struct check *k, const struct mg_rep_etcd_config *e)
{
	struct mg_error err = {{0}};
	struct mg_etcd_opts o = {
	        .endpoints = (const char *const *)e->endpoints,
	        .n_endpoints = e->n_endpoints,
	        .ca_file = e->ca_file,
	        .cert_file = e->cert_file,
	        .key_file = e->key_file,
	        .timeout_ms = STEP_MS,
	        .connect_timeout_ms = STEP_MS,
	};
	struct mg_etcd *c = mg_etcd_open(&o, &err);
	if (c == NULL)
		return json_pack("{s:b, s:s}", "ok", 0, "error", err.msg);
	struct mg_etcd_status st;
	int rc = mg_etcd_status(c, &st, &err);
	if (rc < 0) {
		mg_etcd_close(c);
		return json_pack("{s:b, s:s}", "ok", 0, "error", err.msg);
	}
	char cid[24], key[MG_KV_KEY_MAX];
	bool denied = false;
	snprintf(cid, sizeof(cid), "%016" PRIx64, st.hdr.cluster_id);
	json_t *out = json_pack("{s:b, s:s, s:s, s:I}", "ok", 1, "version", st.version,
	                        "cluster_id", cid, "revision", (json_int_t)st.hdr.revision);
	snprintf(key, sizeof(key), "cilium/cluster-config/%s", k->name);
	json_object_set_new(out, "cluster_config", key_json(c, key, &denied));
	json_object_set_new(out, "has_cluster_config",
	                    key_json(c, "cilium/.has-cluster-config", &denied));
	json_t *can = json_array();
	const char *bases[] = {MG_KV_STATE_IDENTITIES, MG_KV_STATE_IP, MG_KV_CACHE_IDENTITIES,
	                       MG_KV_CACHE_IP};
	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "cilium/synced/%s/%s", k->name, bases[i]);
		json_array_append_new(can, key_json(c, key, &denied));
	}
	json_object_set_new(out, "canaries", can);
	json_object_set_new(out, "heartbeat", key_json(c, "cilium/.heartbeat", &denied));
	json_object_set_new(out, "read_allowed", json_boolean(!denied));
	if (denied)
		json_object_set_new(
		        out, "read_error",
		        json_string("etcd refused the reads: the certificate's CN is not "
		                    "an etcd user with read access to cilium/"));
	mg_etcd_close(c);
	return out;
}

static void *
check_main(void *arg)
{
	struct check *k = arg;
	struct mg_rep_etcd_config e;
	struct mg_error err = {{0}};
	int rc = mg_rep_etcd_config_load(k->path, k->name, k->c->config_dir, &e, &err);
	k->out = json_pack("{s:s, s:s}", "name", k->name, "file", k->path);
	if (rc <= 0) {
		json_object_set_new(
		        k->out, "config_error",
		        json_string(rc < 0 ? err.msg : "not an etcd config (no endpoints)"));
		return NULL;
	}
	json_t *eps = json_array();
	for (size_t i = 0; i < e.n_endpoints; i++) {
		struct mg_rep_probe p;
		struct mg_rep_probe_opts o = {.endpoint = e.endpoints[i],
		                              .ca_file = e.ca_file,
		                              .cert_file = e.cert_file,
		                              .key_file = e.key_file,
		                              .timeout_ms = STEP_MS};
		mg_rep_probe_run(&o, &p);
		json_array_append_new(eps, mg_rep_probe_json(&p));
	}
	json_object_set_new(k->out, "endpoints", eps);
	json_object_set_new(k->out, "etcd", etcd_json(k, &e));
	mg_rep_etcd_config_clear(&e);
	return NULL;
}

static int
collect(const struct mg_rep_config *c, const char *only, struct check **out, size_t *n,
        struct mg_error *err)
{
	DIR *d = opendir(c->config_dir);
	struct dirent *de;
	*n = 0;
	if (d == NULL) {
		mg_error_set(err, NULL, 0, 0, "%s: %s", c->config_dir, strerror(errno));
		return -errno;
	}
	struct check *v = calloc(MAX_CHECKS, sizeof(*v));
	if (v == NULL) {
		closedir(d);
		return -ENOMEM;
	}
	while ((de = readdir(d)) != NULL && *n < MAX_CHECKS) {
		struct stat st;
		if (de->d_name[0] == '.' || !mg_kv_cluster_name_valid(de->d_name) ||
		    strcmp(de->d_name, c->cluster_name) == 0)
			continue;
		if (only != NULL && strcmp(only, de->d_name) != 0)
			continue;
		struct check *k = &v[*n];
		snprintf(k->name, sizeof(k->name), "%.32s", de->d_name);
		snprintf(k->path, sizeof(k->path), "%s/%s", c->config_dir, de->d_name);
		if (stat(k->path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		k->c = c;
		(*n)++;
	}
	closedir(d);
	*out = v;
	return 0;
}

int
rep_cmd_troubleshoot(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
                     struct mg_error *err)
{
	struct mg_replicator *r = arg;
	const char *only = json_string_value(json_object_get(args, "cluster"));
	struct check *v = NULL;
	size_t n = 0;
	(void)conn;
	int rc = collect(r->c, only, &v, &n, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		v[i].started = pthread_create(&v[i].th, NULL, check_main, &v[i]) == 0;
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		if (v[i].started)
			pthread_join(v[i].th, NULL);
		else
			check_main(&v[i]);
		json_array_append_new(a, v[i].out);
	}
	free(v);
	*result = json_pack("{s:s, s:o}", "config_dir", r->c->config_dir, "clusters", a);
	return *result != NULL ? 0 : -ENOMEM;
}
