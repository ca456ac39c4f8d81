/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * These two measure the sync client library alone (lib/kvstore's
 * mg_kv_sync API, no lib/gateway): its cold sync and its start in front
 * of many clusters, not the daemon's sync step.
 *
 * Cold sync: a fresh identity table and ipcache filled by
 * mg_kv_sync_initial from one cluster of N entries (entries/s, next to
 * redis-benchmark's GET rate on the same server: how close the sync gets to
 * what Redis can serve), then, for the first size, the latency runs
 * (bench_kvsync_latency.c, through a gateway). And a
 * gateway's start in front of a whole mesh: many clusters in the
 * per-cluster layout of one Redis, the initial sync of all of them, then a
 * full resync of every one, as each verification round would pay it.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_kvsync_priv.h"

/* ---- cold sync of one cluster ---- */

static const struct mg_kv_sync_cluster_params cluster_params[] = {{.name = CLUSTER}};

/* redis-server's CPU time so far (INFO cpu: user + sys, all its threads), or -1. */
static double
redis_cpu_secs(unsigned port)
{
	redisContext *c = kvsync_connect_port(port);
	redisReply *r = c != NULL ? redisCommand(c, "INFO cpu") : NULL;
	double t = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING) {
		const char *u = strstr(r->str, "used_cpu_user:");
		const char *y = strstr(r->str, "used_cpu_sys:");

		if (u != NULL && y != NULL)
			t = strtod(u + strlen("used_cpu_user:"), NULL) +
			    strtod(y + strlen("used_cpu_sys:"), NULL);
	}
	if (r != NULL)
		freeReplyObject(r);
	if (c != NULL)
		redisFree(c);
	return t;
}

static double
thread_cpu_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A fresh table and ipcache, filled by mg_kv_sync_initial and committed; its time in *@p secs. */
static int
cold_sync(unsigned port, uint32_t n, struct mg_identity_table **ids_out,
          struct mg_ipcache **ipc_out, struct mg_kv_sync **s_out, double *secs)
{
	struct mg_ipcache_params ip = {.entries_hint = n};
	char url[64];
	struct mg_kv_sync_params sp = {.url = url,
	                               .n_clusters = 1,
	                               .clusters = cluster_params,
	                               .block_ms = 5,
	                               .command_ms = 60000};
	struct mg_error err = {0};
	struct mg_kv_sync_stats st;
	uint32_t *changed = NULL;
	size_t n_changed = 0, got;
	double cpu0, rcpu0, rcpu1;
	uint64_t t0;
	int rc;

	snprintf(url, sizeof(url), "127.0.0.1:%u", port);
	*ids_out = mg_identity_table_create(MG_CLUSTER_MODE_255);
	*ipc_out = mg_ipcache_create(&ip);
	if (*ids_out == NULL || *ipc_out == NULL)
		return -ENOMEM;
	*s_out = mg_kv_sync_create(&sp, *ids_out, *ipc_out, &err);
	if (*s_out == NULL) {
		fprintf(stderr, "kvsync: mg_kv_sync_create: %s\n", err.msg);
		return -errno;
	}
	rcpu0 = redis_cpu_secs(port);
	cpu0 = thread_cpu_secs();
	t0 = mg_time_ns();
	rc = mg_kv_sync_initial(*s_out, 120000, &changed, &n_changed, &err);
	/* The client leaves the batch staged: the commit is part of the sync. */
	if (mg_ipcache_commit(*ipc_out) < 0 && rc >= 0)
		rc = -ENOMEM;
	*secs = (double)(mg_time_ns() - t0) / 1e9;
	cpu0 = thread_cpu_secs() - cpu0;
	rcpu1 = redis_cpu_secs(port);
	free(changed);
	if (rc < 0) {
		fprintf(stderr, "kvsync: mg_kv_sync_initial: %s\n", err.msg);
		return rc;
	}
	if (mg_kv_sync_stats(*s_out, 0, &st) == 0)
		printf("  sync stats: full syncs %" PRIu64
		       ", resyncs epoch/trimmed/replid/reconnect "
		       "%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 ", rejected %" PRIu64 "\n",
		       st.full_syncs, st.resyncs[0], st.resyncs[1], st.resyncs[2], st.resyncs[3],
		       st.rejected_parse + st.rejected_range);
	/* Who was busy: the client's thread, and Redis (serving the sync and
	 * the two INFO calls around it; -1: not known). */
	printf("  cpu during the sync: client %.2f s, redis-server %.2f s (wall %.2f s)\n", cpu0,
	       rcpu0 >= 0 && rcpu1 >= 0 ? rcpu1 - rcpu0 : -1.0, *secs);
	got = mg_ipcache_count(*ipc_out, MG_AF_INET) + mg_ipcache_count(*ipc_out, MG_AF_INET6);
	if (got != n || mg_identity_table_count(*ids_out) < N_FILLER + 2) {
		fprintf(stderr,
		        "kvsync: FAIL: ipcache holds %zu entries (want %" PRIu32
		        "), identities %zu (want >= %u)\n",
		        got, n, mg_identity_table_count(*ids_out), N_FILLER + 2);
		return -EPROTO;
	}
	return 0;
}

int
kvsync_run_size(unsigned port, uint32_t n, const char *lua, size_t lua_len, bool with_latency)
{
	redisContext *c = kvsync_connect_port(port);
	struct mg_identity_table *ids = NULL;
	struct mg_ipcache *ipc = NULL;
	struct mg_kv_sync *s = NULL;
	uint64_t t0;
	double secs = 0, fill_secs, rb;
	int rc;

	if (c == NULL) {
		fprintf(stderr, "kvsync: cannot connect to 127.0.0.1:%u\n", port);
		return -ECONNREFUSED;
	}
	t0 = mg_time_ns();
	rc = kvsync_fill(c, n, lua, lua_len);
	fill_secs = (double)(mg_time_ns() - t0) / 1e9;
	redisFree(c);
	if (rc < 0) {
		fprintf(stderr, "kvsync: fill failed (%s)\n", strerror(-rc));
		return rc;
	}
	rc = cold_sync(port, n, &ids, &ipc, &s, &secs);
	if (rc < 0)
		goto out;
	rb = kvsync_redis_benchmark_get(port, n);
	printf("cold sync %8" PRIu32 " entries (%u identities)  fill %.2f s  sync %.2f s  "
	       "%.0f entries/s | redis-benchmark GET -P 64: %.0f req/s | ratio %.3f\n",
	       n, N_FILLER + 2, fill_secs, secs, (double)n / secs, rb,
	       rb > 0 ? (double)n / secs / rb : 0.0);
out:
	mg_kv_sync_free(s);
	mg_ipcache_free(ipc);
	mg_identity_table_free(ids);
	/* The latency runs sync the same data through a gateway of their own. */
	if (rc == 0 && with_latency)
		rc = kvsync_latency_runs(port);
	return rc;
}

/* ---- many clusters: the start of a gateway in front of a whole mesh ---- */

/*
 * Fill @p ncl clusters c001, c002, ... (ids 1..ncl) in the per-cluster
 * layout, as `meshgatectl kv import` writes them into a site Redis: per
 * cluster 10 identities and @p per host routes (IPv4 10.<c>.x.y), its
 * config (cached, through mg_put: the log and the epoch) and canaries.
 */
static int
fill_multi(redisContext *c, unsigned ncl, uint32_t per, const char *lua, size_t lua_len)
{
	char key[MG_KV_KEY_MAX], name[16], now[32];
	unsigned pending = 0;
	time_t t = time(NULL);
	struct tm tm;
	int rc;

	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rc = kvsync_fill_begin(c, lua, lua_len);
	for (unsigned cl = 1; cl <= ncl && rc == 0; cl++) {
		struct mg_kv_cluster_config cc = {
		        .id = cl, .synced_canaries = true, .cached = true};

		snprintf(name, sizeof(name), "c%03u", cl);
		for (unsigned k = 0; k < 10; k++) {
			char labels[128];

			snprintf(labels, sizeof(labels),
			         "k8s:app=a%u;k8s:io.cilium.k8s.policy.cluster=%s;"
			         "k8s:io.kubernetes.pod.namespace=bench;",
			         k, name);
			mg_kv_identity_key(key, sizeof(key), MG_KV_SCOPE_CACHE, name,
			                   (cl << 16) | (MG_ID_MIN_CLUSTER_LOCAL + k));
			redisAppendCommand(c, "SET %s %s", key, labels);
			pending++;
		}
		for (uint32_t i = 0; i < per && rc == 0; i++) {
			struct mg_kv_ip_pair p;
			uint32_t be = htonl((10u << 24) | (cl << 16) | (i + 1));

			memset(&p, 0, sizeof(p));
			p.host_route = true;
			p.prefix.family = MG_AF_INET;
			p.prefix.plen = 32;
			memcpy(p.prefix.addr, &be, 4);
			p.prefix.identity = (cl << 16) | (MG_ID_MIN_CLUSTER_LOCAL + i % 10);
			rc = kvsync_fill_entry(c, &p, MG_KV_SCOPE_CACHE, name, &pending);
		}
		if (rc == 0 && pending > 0) {
			rc = kvsync_drain(c, pending);
			pending = 0;
		}
		if (rc == 0)
			rc = kvsync_fill_config(c, name, &cc, now);
	}
	return rc;
}

/*
 * The gateway's start in front of @p ncl clusters of @p per entries each:
 * mg_kv_sync_initial over all of them (what the daemon does before its
 * ports start), then a verification round and a tail poll of all of them.
 */
int
kvsync_multi_run(unsigned port, unsigned ncl, uint32_t per, const char *lua, size_t lua_len)
{
	struct mg_kv_sync_cluster_params *cls = calloc(ncl, sizeof(*cls));
	char(*names)[16] = calloc(ncl, sizeof(*names));
	struct mg_ipcache_params ip = {.entries_hint = ncl * per};
	struct mg_identity_table *ids =
	        mg_identity_table_create(ncl > 255 ? MG_CLUSTER_MODE_511 : MG_CLUSTER_MODE_255);
	struct mg_ipcache *ipc = mg_ipcache_create(&ip);
	struct mg_kv_sync *s = NULL;
	struct mg_error err = {0};
	redisContext *c = kvsync_connect_port(port);
	uint32_t *changed = NULL;
	size_t n_changed = 0, got;
	char url[64];
	uint64_t t0;
	double fill_secs, secs, verify_ms, rb;
	int rc = -ENOMEM;

	if (cls == NULL || names == NULL || ids == NULL || ipc == NULL || c == NULL)
		goto out;
	if (ncl > 255) {
		fprintf(stderr,
		        "kvsync: --clusters: at most 255 here (ids of the 255-cluster mode)\n");
		rc = -EINVAL;
		goto out;
	}
	t0 = mg_time_ns();
	rc = fill_multi(c, ncl, per, lua, lua_len);
	fill_secs = (double)(mg_time_ns() - t0) / 1e9;
	if (rc < 0) {
		fprintf(stderr, "kvsync: fill failed (%s)\n", strerror(-rc));
		goto out;
	}
	for (unsigned i = 0; i < ncl; i++) {
		snprintf(names[i], sizeof(names[i]), "c%03u", i + 1);
		cls[i].name = names[i];
		cls[i].local = i == 0;
		cls[i].id = i == 0 ? 1 : 0;
	}
	snprintf(url, sizeof(url), "127.0.0.1:%u", port);
	struct mg_kv_sync_params sp = {
	        .url = url, .n_clusters = ncl, .clusters = cls, .block_ms = 5, .command_ms = 60000};
	s = mg_kv_sync_create(&sp, ids, ipc, &err);
	if (s == NULL) {
		fprintf(stderr, "kvsync: mg_kv_sync_create: %s\n", err.msg);
		rc = -EINVAL;
		goto out;
	}
	t0 = mg_time_ns();
	rc = mg_kv_sync_initial(s, 600000, &changed, &n_changed, &err);
	if (mg_ipcache_commit(ipc) < 0 && rc >= 0)
		rc = -ENOMEM;
	secs = (double)(mg_time_ns() - t0) / 1e9;
	if (rc < 0) {
		fprintf(stderr, "kvsync: mg_kv_sync_initial: %s\n", err.msg);
		goto out;
	}
	got = mg_ipcache_count(ipc, 0);
	if (got != (size_t)ncl * per || !mg_kv_sync_all_synced(s)) {
		fprintf(stderr, "kvsync: FAIL: ipcache holds %zu entries (want %u)\n", got,
		        ncl * per);
		rc = -EPROTO;
		goto out;
	}
	/* A verification round of every cluster (one pipelined round trip) and an
	 * XREAD over every log, as each poll of the running daemon pays them. */
	mg_kv_sync_request_resync(s, MG_KV_RESYNC_OPERATOR);
	t0 = mg_time_ns();
	for (int k = 0; k < 3; k++) {
		mg_kv_sync_poll(s, NULL, NULL);
		mg_ipcache_commit(ipc);
	}
	verify_ms = (double)(mg_time_ns() - t0) / 1e6 / 3;
	rb = kvsync_redis_benchmark_get(port, ncl * per);
	printf("start with %u clusters x %" PRIu32 " entries = %u entries (+ %u identities): fill "
	       "%.2f s, initial sync %.2f s, %.0f entries/s | redis-benchmark GET -P 64: %.0f "
	       "req/s | ratio %.3f\n"
	       "  then a full resync of every cluster: %.0f ms per poll (3 polls)\n",
	       ncl, per, ncl * per, ncl * 10, fill_secs, secs, (double)(ncl * per) / secs, rb,
	       rb > 0 ? (double)(ncl * per) / secs / rb : 0.0, verify_ms);
	rc = 0;
out:
	if (c != NULL)
		redisFree(c);
	free(changed);
	mg_kv_sync_free(s);
	mg_ipcache_free(ipc);
	mg_identity_table_free(ids);
	free(cls);
	free(names);
	return rc;
}
