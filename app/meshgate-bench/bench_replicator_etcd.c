/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What `meshgate-bench replicator` runs against: etcd servers started by
 * tests/etcd/etcd_env.sh (TLS, client certificates, auth, users root and
 * remote, as Cilium's clustermesh-apiserver runs its etcd), Cilium's data
 * written into them as root in txns of 128 puts (identity label strings,
 * IPIdentityPair JSON, the cluster config, the synced canaries), the bare
 * paged list the copy is compared with, and the replicator itself, run in
 * this process through lib/replicator's public API.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_replicator_priv.h"
#include "mg_kvstore.h"

#ifndef MG_SOURCE_ROOT
#define MG_SOURCE_ROOT "."
#endif
#ifndef MG_FUNCTIONS_DEFAULT
#define MG_FUNCTIONS_DEFAULT "conf/redis/meshgate.lua"
#endif

#define ETCD_ENV MG_SOURCE_ROOT "/tests/etcd/etcd_env.sh"

uint64_t
rb_wait_until(uint64_t due)
{
	uint64_t now;

	while ((now = mg_time_ns()) < due) {
		struct timespec ts = {.tv_nsec = 20000};

		if (due - now > 100000)
			nanosleep(&ts, NULL);
	}
	return now;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

double
rb_pct_ms(uint64_t *v, size_t n, unsigned permille)
{
	size_t i;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	i = n * permille / 1000;
	return (double)v[i < n ? i : n - 1] / 1e6;
}

/* ---- etcd servers ---- */

/* DIR/env of etcd_env.sh: the endpoint and the certificate paths. */
static int
env_load(struct rb_etcd *e)
{
	char path[192], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/env", e->dir);
	f = fopen(path, "r");
	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *eq = strchr(line, '='), *v;

		if (eq == NULL)
			continue;
		*eq = '\0';
		v = eq + 1;
		v[strcspn(v, "\n")] = '\0';
#define ENV_STR(k, field)         \
	if (strcmp(line, k) == 0) \
		snprintf(e->field, sizeof(e->field), "%s", v);
		ENV_STR("ETCD_ENDPOINT", endpoint)
		ENV_STR("ETCD_CA", ca)
		ENV_STR("ETCD_ROOT_CERT", root_cert)
		ENV_STR("ETCD_ROOT_KEY", root_key)
		ENV_STR("ETCD_REMOTE_CERT", remote_cert)
		ENV_STR("ETCD_REMOTE_KEY", remote_key)
		ENV_STR("ETCD_CONFIG", config)
#undef ENV_STR
	}
	fclose(f);
	const char *colon = strrchr(e->endpoint, ':');
	e->port = colon != NULL ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
	return e->port != 0 && e->ca[0] != '\0' ? 0 : -EINVAL;
}

int
rb_etcd_start_many(struct rb_etcd *e, unsigned n, const char *base, const char *prefix)
{
	char cmd[8192];
	size_t off = 0;
	int rc = 0;

	for (unsigned i = 0; i < n; i++) {
		memset(&e[i], 0, sizeof(e[i]));
		if (n == 1)
			snprintf(e[i].name, sizeof(e[i].name), "%s", prefix);
		else
			snprintf(e[i].name, sizeof(e[i].name), "%s%u", prefix, i + 1);
		snprintf(e[i].dir, sizeof(e[i].dir), "%s/etcd-%s", base, e[i].name);
		off += (size_t)snprintf(cmd + off, sizeof(cmd) - off,
		                        "bash '%s' start '%s' '%s' >/dev/null & ", ETCD_ENV,
		                        e[i].dir, e[i].name);
	}
	snprintf(cmd + off, sizeof(cmd) - off, "wait");
	if (system(cmd) != 0)
		rc = -EIO;
	for (unsigned i = 0; i < n; i++) {
		int r2 = env_load(&e[i]);

		e[i].started = true; /* stop it in any case */
		if (r2 < 0) {
			fprintf(stderr, "replicator: etcd %s did not start (see %s/etcd.log)\n",
			        e[i].name, e[i].dir);
			rc = r2;
		}
	}
	return rc;
}

void
rb_etcd_stop(struct rb_etcd *e)
{
	char cmd[512];

	if (!e->started)
		return;
	snprintf(cmd, sizeof(cmd), "bash '%s' stop '%s' >/dev/null 2>&1; rm -rf '%s'", ETCD_ENV,
	         e->dir, e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "replicator: stopping etcd %s failed\n", e->name);
	e->started = false;
}

struct mg_etcd *
rb_etcd_open(const struct rb_etcd *e, bool root, struct mg_error *err)
{
	const char *ep[1] = {e->endpoint};
	struct mg_etcd_opts o = {
	        .endpoints = ep,
	        .n_endpoints = 1,
	        .ca_file = e->ca,
	        .cert_file = root ? e->root_cert : e->remote_cert,
	        .key_file = root ? e->root_key : e->remote_key,
	};

	return mg_etcd_open(&o, err);
}

/* ---- Cilium's data ---- */

uint32_t
rb_ip_addr(const struct rb_data *d, uint32_t i)
{
	return (10u << 24) + ((d->cid & 0xfu) << 20) + i + 1;
}

void
rb_ip_str(const struct rb_data *d, uint32_t i, char *buf, size_t size)
{
	uint32_t a = rb_ip_addr(d, i);

	snprintf(buf, size, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

uint32_t
rb_ip_ident(const struct rb_data *d, uint32_t i)
{
	return rb_ident(d->cid, 2 + i % (d->n_ids - 2));
}

void
rb_ip_kv(const struct rb_data *d, uint32_t i, uint32_t id, char *key, size_t ksize, char *val,
         size_t vsize)
{
	char ip[20];

	rb_ip_str(d, i, ip, sizeof(ip));
	snprintf(key, ksize, "%s/default/%s", MG_KV_STATE_IP, ip);
	/* IPIdentityPair as Cilium's json.Marshal writes it (field order, Mask null) */
	snprintf(val, vsize,
	         "{\"IP\":\"%s\",\"Mask\":null,\"HostIP\":\"192.168.%u.%u\",\"ID\":%u,\"Key\":0,"
	         "\"Metadata\":\"\",\"K8sNamespace\":\"" RB_NS "\",\"K8sPodName\":\"pod-%u-%s\","
	         "\"K8sServiceAccount\":\"default\"}",
	         ip, 16 + (i / 250) % 200, 1 + i % 250, id, i, d->name);
}

/* Key and label string (pkg/labels SortedList: sorted by key) of identity @p i. */
static void
id_kv(const struct rb_data *d, uint32_t i, char *key, size_t ksize, char *val, size_t vsize)
{
	char app[16];

	if (i == 0)
		snprintf(app, sizeof(app), "server");
	else if (i == 1)
		snprintf(app, sizeof(app), "client");
	else
		snprintf(app, sizeof(app), "f%u", i);
	snprintf(key, ksize, "%s/id/%u", MG_KV_STATE_IDENTITIES, rb_ident(d->cid, i));
	snprintf(val, vsize,
	         "k8s:app=%s;k8s:io.cilium.k8s.policy.cluster=%s;k8s:io.kubernetes.pod."
	         "namespace=" RB_NS ";",
	         app, d->name);
}

struct load_job {
	const struct rb_etcd *e;
	const struct rb_data *d;
	uint32_t id0, ip0;
	unsigned t, nt;
	uint64_t txns;
	int rc;
	struct mg_error err;
};

static void *
load_main(void *arg)
{
	struct load_job *j = arg;
	static _Thread_local char keys[RB_TXN_MAX][96], vals[RB_TXN_MAX][400];
	const char *kp[RB_TXN_MAX], *vp[RB_TXN_MAX];
	size_t vl[RB_TXN_MAX];
	uint64_t n_id = j->d->n_ids - j->id0, total = n_id + (j->d->n_ips - j->ip0);
	struct mg_etcd *c = rb_etcd_open(j->e, true, &j->err);

	if (c == NULL) {
		j->rc = -EIO;
		return NULL;
	}
	for (uint64_t ch = j->t; ch * RB_TXN_MAX < total && j->rc == 0; ch += j->nt) {
		size_t n = 0;

		for (uint64_t k = ch * RB_TXN_MAX; k < total && n < RB_TXN_MAX; k++, n++) {
			if (k < n_id) {
				id_kv(j->d, j->id0 + (uint32_t)k, keys[n], sizeof(keys[n]), vals[n],
				      sizeof(vals[n]));
			} else {
				uint32_t i = j->ip0 + (uint32_t)(k - n_id);

				rb_ip_kv(j->d, i, rb_ip_ident(j->d, i), keys[n], sizeof(keys[n]),
				         vals[n], sizeof(vals[n]));
			}
			kp[n] = keys[n];
			vp[n] = vals[n];
			vl[n] = strlen(vals[n]);
		}
		j->rc = mg_etcd_txn_put(c, n, kp, vp, vl, NULL, &j->err);
		j->txns++;
	}
	mg_etcd_close(c);
	return NULL;
}

static void
now3339(char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The cluster config, .has-cluster-config, the heartbeat, then the canaries. */
static int
load_meta(const struct rb_etcd *e, const struct rb_data *d)
{
	struct mg_error err = {0};
	struct mg_etcd *c = rb_etcd_open(e, true, &err);
	char k[MG_KV_KEY_MAX], v[256], now[40];
	int rc = c != NULL ? 0 : -EIO;

	now3339(now, sizeof(now));
	snprintf(v, sizeof(v),
	         "{\"id\":%u,\"capabilities\":{\"syncedCanaries\":true,"
	         "\"maxConnectedClusters\":255}}",
	         d->cid);
	snprintf(k, sizeof(k), "cilium/cluster-config/%s", d->name);
	if (rc == 0)
		rc = mg_etcd_put(c, "cilium/.has-cluster-config", 26, "true", 4, NULL, &err);
	if (rc == 0)
		rc = mg_etcd_put(c, k, strlen(k), v, strlen(v), NULL, &err);
	if (rc == 0)
		rc = mg_etcd_put(c, "cilium/.heartbeat", 17, now, strlen(now), NULL, &err);
	const char *pre[2] = {MG_KV_STATE_IDENTITIES, MG_KV_STATE_IP};
	for (int p = 0; p < 2 && rc == 0; p++) {
		snprintf(k, sizeof(k), "cilium/synced/%s/%s", d->name, pre[p]);
		rc = mg_etcd_put(c, k, strlen(k), now, strlen(now), NULL, &err);
	}
	if (rc < 0)
		fprintf(stderr, "replicator: etcd %s: %s\n", e->name, err.msg);
	mg_etcd_close(c);
	return rc;
}

int
rb_load(const struct rb_etcd *e, const struct rb_data *d, uint32_t id0, uint32_t ip0,
        unsigned threads, bool meta)
{
	struct load_job j[16];
	pthread_t th[16];
	uint64_t t0 = mg_time_ns(), txns = 0, n = (d->n_ids - id0) + (uint64_t)(d->n_ips - ip0);
	int rc = 0;

	if (threads > 16)
		threads = 16;
	for (unsigned t = 0; t < threads; t++) {
		j[t] = (struct load_job){
		        .e = e, .d = d, .id0 = id0, .ip0 = ip0, .t = t, .nt = threads};
		if (pthread_create(&th[t], NULL, load_main, &j[t]) != 0)
			return -EAGAIN; /* earlier threads are joined by no one: the bench exits */
	}
	for (unsigned t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		txns += j[t].txns;
		if (j[t].rc < 0) {
			fprintf(stderr, "replicator: loading etcd %s: %s\n", e->name, j[t].err.msg);
			rc = j[t].rc;
		}
	}
	if (rc == 0 && meta)
		rc = load_meta(e, d);
	if (rc == 0 && n >= 10000) {
		double s = (double)(mg_time_ns() - t0) / 1e9;

		struct mg_etcd_status st = {0};
		struct mg_error err = {0};
		struct mg_etcd *c = rb_etcd_open(e, true, &err);

		if (c == NULL || mg_etcd_status(c, &st, &err) < 0)
			st.db_size = -1;
		mg_etcd_close(c);
		printf("  loaded %" PRIu64 " keys into etcd %s in %.1f s (%.0f keys/s; %" PRIu64
		       " txns of up to %u puts from %u clients); etcd db %.0f MiB (quota: etcd's "
		       "default 2 GiB)\n",
		       n, e->name, s, (double)n / s, txns, RB_TXN_MAX, threads,
		       (double)st.db_size / 1048576.0);
	}
	return rc;
}

/* ---- the bare paged list ---- */

static int
list_prefix(struct mg_etcd *c, const char *prefix, unsigned page, int64_t *rev, struct rb_list *out,
            struct mg_error *err)
{
	char start[MG_KV_KEY_MAX + 1], end[MG_KV_KEY_MAX];
	size_t slen = strlen(prefix);
	int elen = mg_etcd_prefix_end(prefix, slen, end, sizeof(end));
	bool more = true;

	if (elen < 0)
		return elen;
	memcpy(start, prefix, slen);
	while (more) {
		struct mg_etcd_range r;
		int rc = mg_etcd_range(c, start, slen, end, (size_t)elen, *rev, page, 0, &r, err);

		if (rc < 0)
			return rc;
		if (*rev == 0)
			*rev = r.hdr.revision;
		out->keys += r.n;
		out->pages++;
		more = r.more && r.n > 0;
		if (more) {
			const struct mg_etcd_kv *last = &r.kvs[r.n - 1];

			if (last->key_len >= sizeof(start)) {
				mg_etcd_range_free(&r);
				return -ENAMETOOLONG;
			}
			memcpy(start, last->key, last->key_len);
			start[last->key_len] = '\0';
			slen = last->key_len + 1;
		}
		mg_etcd_range_free(&r);
	}
	return 0;
}

int
rb_bare_list(const struct rb_etcd *e, unsigned page, struct rb_list *out)
{
	struct mg_error err = {0};
	uint64_t t0 = mg_time_ns();
	struct mg_etcd *c = rb_etcd_open(e, false, &err);
	int64_t rev = 0;
	int rc = c != NULL ? 0 : -EIO;

	memset(out, 0, sizeof(*out));
	if (rc == 0)
		rc = list_prefix(c, MG_KV_STATE_IDENTITIES "/id/", page, &rev, out, &err);
	if (rc == 0)
		rc = list_prefix(c, MG_KV_STATE_IP "/default/", page, &rev, out, &err);
	out->secs = (double)(mg_time_ns() - t0) / 1e9;
	if (rc < 0)
		fprintf(stderr, "replicator: bare list: %s\n", err.msg);
	mg_etcd_close(c);
	return rc;
}

/* ---- the replicator ---- */

static void *
tick_main(void *arg)
{
	struct rb_rep *x = arg;

	while (!atomic_load(&x->stop)) {
		struct timespec ts = {.tv_nsec = (long)x->tick_ms * 1000000};

		mg_replicator_tick(x->r);
		atomic_fetch_add(&x->ticks, 1);
		if (x->tick_ms > 0)
			nanosleep(&ts, NULL);
	}
	return NULL;
}

int
rb_rep_start(struct rb_rep *x, const char *meshdir, unsigned redis_port, unsigned page,
             unsigned tick_ms)
{
	struct mg_error err = {0};
	char yaml[2048];
	int n;

	memset(x, 0, sizeof(*x));
	n = snprintf(yaml, sizeof(yaml),
	             "version: 1\n"
	             "cluster: {name: site, id: 1}\n"
	             "clustermesh: {config_dir: '%s', rescan_interval: 1}\n"
	             "redis: redis://127.0.0.1:%u/0\n"
	             "redis_functions: '%s'\n"
	             "etcd: {page_size: %u, heartbeat_timeout: 0}\n",
	             meshdir, redis_port, MG_FUNCTIONS_DEFAULT, page);
	x->c = mg_rep_config_load_buf("bench-replicator.yaml", meshdir, yaml, (size_t)n, &err);
	if (x->c == NULL) {
		fprintf(stderr, "replicator: config: %s\n", err.msg);
		return -EINVAL;
	}
	x->tick_ms = tick_ms;
	x->t0 = mg_time_ns();
	x->r = mg_replicator_create(x->c, &err);
	if (x->r == NULL) {
		fprintf(stderr, "replicator: %s\n", err.msg);
		rb_rep_stop(x);
		return -EINVAL;
	}
	atomic_init(&x->stop, false);
	if (pthread_create(&x->th, NULL, tick_main, x) != 0) {
		rb_rep_stop(x);
		return -EAGAIN;
	}
	x->started = true;
	return 0;
}

void
rb_rep_stop(struct rb_rep *x)
{
	atomic_store(&x->stop, true);
	if (x->started)
		pthread_join(x->th, NULL);
	x->started = false;
	mg_replicator_free(x->r);
	x->r = NULL;
	mg_rep_config_free(x->c);
	x->c = NULL;
}

double
rb_wait_canaries(redisContext *c, const char *name, uint64_t t0, unsigned timeout_s,
                 long long want_keys, double *t_keys)
{
	char k1[MG_KV_KEY_MAX], k2[MG_KV_KEY_MAX];
	uint64_t deadline = mg_time_ns() + (uint64_t)timeout_s * 1000000000ull;

	mg_kv_synced_key(k1, sizeof(k1), name, MG_KV_CACHE_IDENTITIES);
	mg_kv_synced_key(k2, sizeof(k2), name, MG_KV_CACHE_IP);
	if (t_keys != NULL)
		*t_keys = -1;
	while (mg_time_ns() < deadline) {
		redisReply *r = redisCommand(c, "EXISTS %s %s", k1, k2);
		long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
		uint64_t now = mg_time_ns();
		struct timespec ts = {.tv_nsec = 2000000};

		freeReplyObject(r);
		if (n < 0)
			return -EIO;
		if (t_keys != NULL && *t_keys < 0) {
			r = redisCommand(c, "DBSIZE");
			if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= want_keys)
				*t_keys = (double)(mg_time_ns() - t0) / 1e9;
			freeReplyObject(r);
		}
		if (n == 2)
			return (double)(now - t0) / 1e9;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}
