/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Integration test of lib/etcd against a real etcd 3.4 run as Cilium's
 * clustermesh-apiserver runs it (TLS, client certificates, auth with a
 * read-only user `remote`): the wrapper etcd_test.sh starts it with
 * tests/etcd/etcd_env.sh and passes ETCD_ENV_DIR (its DIR/env names the
 * endpoint and the certificates) and ETCD_ENV_SH (the script, which the
 * last tests use to kill, stop and re-create etcd). Every wait is bounded
 * by a deadline the library enforces; nothing sleeps to let things happen.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mg_etcd.h"
#include "mg_test.h"

static const char *env_dir, *env_sh;
static char endpoint[128], ca[512], certs[4][2][512];
enum {
	ROOT,
	REMOTE,
	NOBODY,
	WRONG
};
static char wrong_ca[512];

static void
env_read(void)
{
	char path[600], line[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/env", env_dir);
	f = fopen(path, "r");
	if (f == NULL) {
		perror(path);
		exit(2);
	}
	static const char *const names[4] = {"ROOT", "REMOTE", "NOBODY", "WRONG"};
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *eq = strchr(line, '=');
		if (eq == NULL)
			continue;
		*eq++ = '\0';
		if (strcmp(line, "ETCD_ENDPOINT") == 0)
			snprintf(endpoint, sizeof(endpoint), "%s", eq);
		else if (strcmp(line, "ETCD_CA") == 0)
			snprintf(ca, sizeof(ca), "%s", eq);
		else if (strcmp(line, "ETCD_WRONG_CA") == 0)
			snprintf(wrong_ca, sizeof(wrong_ca), "%s", eq);
		for (int u = 0; u < 4; u++) {
			char k[64];
			snprintf(k, sizeof(k), "ETCD_%s_CERT", names[u]);
			if (strcmp(line, k) == 0)
				snprintf(certs[u][0], sizeof(certs[u][0]), "%s", eq);
			snprintf(k, sizeof(k), "ETCD_%s_KEY", names[u]);
			if (strcmp(line, k) == 0)
				snprintf(certs[u][1], sizeof(certs[u][1]), "%s", eq);
		}
	}
	fclose(f);
}

static pid_t
etcd_pid(void)
{
	char path[600], line[256];
	pid_t pid = 0;
	snprintf(path, sizeof(path), "%s/env", env_dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "ETCD_PID=", 9) == 0)
			pid = (pid_t)atoi(line + 9);
	fclose(f);
	return pid;
}

/* Runs etcd_env.sh CMD DIR; 0 when it succeeded. */
static int
env_cmd(const char *cmd)
{
	char sh[1600];
	snprintf(sh, sizeof(sh), "bash '%s' %s '%s' >&2", env_sh, cmd, env_dir);
	return system(sh);
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An mg_etcd as @p user, to @p ep (NULL: the test etcd), trusting @p cafile (NULL: the right CA). */
static struct mg_etcd *
open_ex(int user, const char *ep, const char *cafile, unsigned connect_ms, size_t max_recv)
{
	const char *eps[1] = {ep ? ep : endpoint};
	struct mg_etcd_opts o = {
	        .endpoints = eps,
	        .n_endpoints = 1,
	        .ca_file = cafile ? cafile : ca,
	        .cert_file = certs[user][0],
	        .key_file = certs[user][1],
	        .timeout_ms = 10000,
	        .connect_timeout_ms = connect_ms,
	        .max_recv = max_recv,
	};
	struct mg_error err = {""};
	struct mg_etcd *e = mg_etcd_open(&o, &err);
	if (e == NULL)
		fprintf(stderr, "mg_etcd_open: %s\n", err.msg);
	return e;
}

static struct mg_etcd *
open_as(int user)
{
	return open_ex(user, NULL, NULL, 3000, 0);
}

static int
put_s(struct mg_etcd *e, const char *k, const char *v, struct mg_etcd_header *h)
{
	struct mg_error err = {""};
	int rc = mg_etcd_put(e, k, strlen(k), v, strlen(v), h, &err);
	if (rc < 0)
		fprintf(stderr, "put %s: %d %s\n", k, rc, err.msg);
	return rc;
}

static int
del_prefix(struct mg_etcd *e, const char *p)
{
	char end[256];
	struct mg_error err;
	int n = mg_etcd_prefix_end(p, strlen(p), end, sizeof(end));
	return mg_etcd_delete(e, p, strlen(p), end, (size_t)n, NULL, NULL, &err);
}

static bool
kv_is(const struct mg_etcd_kv *kv, const char *k, const char *v)
{
	return kv->key_len == strlen(k) && memcmp(kv->key, k, kv->key_len) == 0 &&
	       (v == NULL ||
	        (kv->value_len == strlen(v) && memcmp(kv->value, v, kv->value_len) == 0));
}

/* The next watch response within 5 s; CU_FAIL when none. */
static int
next5(struct mg_etcd_watch *w, struct mg_etcd_watch_resp *r)
{
	struct mg_error err = {""};
	int rc = mg_etcd_watch_next(w, 5000, r, &err);
	if (rc < 0)
		fprintf(stderr, "watch_next: %d %s\n", rc, err.msg);
	CU_ASSERT_EQUAL(rc, 0);
	return rc;
}

/* ---- tests ---- */

static void
test_prefix_end(void)
{
	char out[16];
	CU_ASSERT_EQUAL(mg_etcd_prefix_end("cilium/", 7, out, sizeof(out)), 7);
	CU_ASSERT(memcmp(out, "cilium0", 7) == 0);
	CU_ASSERT_EQUAL(mg_etcd_prefix_end("a\xff\xff", 3, out, sizeof(out)), 1);
	CU_ASSERT_EQUAL(out[0], 'b');
	CU_ASSERT_EQUAL(mg_etcd_prefix_end("\xff", 1, out, sizeof(out)), 1);
	CU_ASSERT_EQUAL(out[0], '\0');
	CU_ASSERT_EQUAL(mg_etcd_prefix_end("abc", 3, out, 2), -ENAMETOOLONG);
	CU_ASSERT_STRING_EQUAL(mg_etcd_status_name(14), "UNAVAILABLE");
	CU_ASSERT_STRING_EQUAL(mg_etcd_status_name(-1), "LOCAL");
}

static void
test_bad_opts(void)
{
	const char *eps[2] = {"https://127.0.0.1:1", "http://127.0.0.1:2"};
	struct mg_etcd_opts o = {.endpoints = eps, .n_endpoints = 2};
	struct mg_error err = {""};
	CU_ASSERT_PTR_NULL(mg_etcd_open(&o, &err)); /* mixed schemes */
	CU_ASSERT_EQUAL(errno, EINVAL);
	eps[0] = "127.0.0.1:2379";
	o.n_endpoints = 1;
	CU_ASSERT_PTR_NULL(mg_etcd_open(&o, &err)); /* no scheme */
	eps[0] = "https://127.0.0.1";
	CU_ASSERT_PTR_NULL(mg_etcd_open(&o, &err)); /* no port */
	eps[0] = "https://127.0.0.1:2379";
	o.ca_file = "/nonexistent/ca.crt";
	CU_ASSERT_PTR_NULL(mg_etcd_open(&o, &err));
	CU_ASSERT_EQUAL(errno, ENOENT);
	CU_ASSERT(strstr(err.msg, "/nonexistent/ca.crt") != NULL);
	o.ca_file = NULL;
	o.cert_file = certs[ROOT][0]; /* without its key */
	CU_ASSERT_PTR_NULL(mg_etcd_open(&o, &err));
}

static void
test_status(void)
{
	struct mg_etcd *e = open_as(ROOT);
	struct mg_etcd_status st;
	struct mg_etcd_header h;
	struct mg_error err = {""};
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	int rc = mg_etcd_status(e, &st, &err);
	if (rc < 0)
		fprintf(stderr, "status: %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT(strncmp(st.version, "3.4.", 4) == 0);
	CU_ASSERT(st.hdr.cluster_id != 0);
	CU_ASSERT(st.leader == st.hdr.member_id); /* one member: its own leader */
	CU_ASSERT(st.db_size > 0);
	CU_ASSERT_EQUAL(put_s(e, "cilium/status-check", "1", &h), 0);
	CU_ASSERT_EQUAL(h.cluster_id, st.hdr.cluster_id);
	CU_ASSERT(h.revision > 1);
	CU_ASSERT_EQUAL(mg_etcd_last_status(e), 0);
	mg_etcd_close(e);
}

static void
test_put_range(void)
{
	struct mg_etcd *e = open_as(ROOT);
	struct mg_etcd_range r;
	struct mg_etcd_header h1, h2;
	struct mg_error err;
	char end[64];
	int64_t deleted = -1;
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	del_prefix(e, "cilium/pr/");
	CU_ASSERT_EQUAL(put_s(e, "cilium/pr/a", "one", &h1), 0);
	CU_ASSERT_EQUAL(put_s(e, "cilium/pr/b", "two", &h2), 0);
	CU_ASSERT_EQUAL(h2.revision, h1.revision + 1);
	/* a binary value, NUL inside */
	CU_ASSERT_EQUAL(mg_etcd_put(e, "cilium/pr/c", 11, "x\0y", 3, NULL, &err), 0);
	/* one key */
	CU_ASSERT_EQUAL_FATAL(mg_etcd_range(e, "cilium/pr/a", 11, NULL, 0, 0, 0, 0, &r, &err), 0);
	CU_ASSERT_EQUAL_FATAL(r.n, 1);
	CU_ASSERT(kv_is(&r.kvs[0], "cilium/pr/a", "one"));
	CU_ASSERT_EQUAL(r.kvs[0].mod_revision, h1.revision);
	CU_ASSERT_EQUAL(r.kvs[0].version, 1);
	mg_etcd_range_free(&r);
	/* the prefix, sorted */
	int n = mg_etcd_prefix_end("cilium/pr/", 10, end, sizeof(end));
	CU_ASSERT_EQUAL_FATAL(mg_etcd_range(e, "cilium/pr/", 10, end, (size_t)n, 0, 0, 0, &r, &err),
	                      0);
	CU_ASSERT_EQUAL_FATAL(r.n, 3);
	CU_ASSERT(kv_is(&r.kvs[1], "cilium/pr/b", "two"));
	CU_ASSERT(r.kvs[2].value_len == 3 && memcmp(r.kvs[2].value, "x\0y", 3) == 0);
	CU_ASSERT_EQUAL(r.count, 3);
	CU_ASSERT(!r.more);
	mg_etcd_range_free(&r);
	/* keys only, limit */
	CU_ASSERT_EQUAL_FATAL(mg_etcd_range(e, "cilium/pr/", 10, end, (size_t)n, 0, 2,
	                                    MG_ETCD_RANGE_KEYS_ONLY, &r, &err),
	                      0);
	CU_ASSERT_EQUAL(r.n, 2);
	CU_ASSERT(r.more);
	CU_ASSERT_EQUAL(r.count, 3);
	CU_ASSERT(kv_is(&r.kvs[0], "cilium/pr/a", "")); /* no value */
	mg_etcd_range_free(&r);
	/* count only */
	CU_ASSERT_EQUAL_FATAL(mg_etcd_range(e, "cilium/pr/", 10, end, (size_t)n, 0, 0,
	                                    MG_ETCD_RANGE_COUNT_ONLY, &r, &err),
	                      0);
	CU_ASSERT_EQUAL(r.n, 0);
	CU_ASSERT_EQUAL(r.count, 3);
	mg_etcd_range_free(&r);
	/* delete the prefix */
	CU_ASSERT_EQUAL(mg_etcd_delete(e, "cilium/pr/", 10, end, (size_t)n, &deleted, NULL, &err),
	                0);
	CU_ASSERT_EQUAL(deleted, 3);
	CU_ASSERT_EQUAL_FATAL(mg_etcd_range(e, "cilium/pr/", 10, end, (size_t)n, 0, 0, 0, &r, &err),
	                      0);
	CU_ASSERT_EQUAL(r.n, 0);
	mg_etcd_range_free(&r);
	mg_etcd_close(e);
}

/* Puts @p n keys "<prefix>%05d" in txns of 125. */
static int
load_keys(struct mg_etcd *e, const char *prefix, int n, int64_t *rev)
{
	enum {
		B = 125
	};
	static char kbuf[B][64];
	const char *keys[B], *vals[B];
	size_t vlens[B];
	struct mg_etcd_header h;
	struct mg_error err = {""};
	for (int i = 0; i < n; i += B) {
		int m = n - i < B ? n - i : B;
		for (int j = 0; j < m; j++) {
			snprintf(kbuf[j], sizeof(kbuf[j]), "%s%05d", prefix, i + j);
			keys[j] = kbuf[j];
			vals[j] = kbuf[j];
			vlens[j] = strlen(kbuf[j]);
		}
		int rc = mg_etcd_txn_put(e, (size_t)m, keys, vals, vlens, &h, &err);
		if (rc < 0) {
			fprintf(stderr, "txn: %s\n", err.msg);
			return rc;
		}
	}
	if (rev)
		*rev = h.revision;
	return 0;
}

static void
test_paged_pinned(void)
{
	struct mg_etcd *e = open_as(ROOT);
	struct mg_etcd *other = open_as(ROOT); /* the concurrent writer */
	const char *p = "cilium/page/";
	char end[64], start[80];
	static unsigned char seen[1000];
	struct mg_etcd_range r;
	struct mg_error err = {""};
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(other);
	del_prefix(e, p);
	CU_ASSERT_EQUAL_FATAL(load_keys(e, p, 1000, NULL), 0);
	int elen = mg_etcd_prefix_end(p, strlen(p), end, sizeof(end));
	size_t plen = strlen(p), slen = plen;
	memcpy(start, p, slen);
	memset(seen, 0, sizeof(seen));
	int64_t rev = 0;
	int pages = 0, total = 0, dups = 0, newkey = 0;
	for (;;) {
		int rc = mg_etcd_range(e, start, slen, end, (size_t)elen, rev, 100, 0, &r, &err);
		if (rc < 0)
			fprintf(stderr, "page %d: %s\n", pages, err.msg);
		CU_ASSERT_EQUAL_FATAL(rc, 0);
		if (pages == 0) {
			rev = r.hdr.revision;
			CU_ASSERT_EQUAL(r.count, 1000);
			/* a write between the pages: the pinned list must not see it */
			CU_ASSERT_EQUAL(put_s(other, "cilium/page/00500-new", "x", NULL), 0);
			CU_ASSERT_EQUAL(put_s(other, "cilium/page/99999", "x", NULL), 0);
		} else {
			/* the header has the store's revision, not the pinned one */
			CU_ASSERT(r.hdr.revision >= rev + 2);
		}
		for (size_t i = 0; i < r.n; i++) {
			int idx = -1;
			char k[64];
			snprintf(k, sizeof(k), "%.*s", (int)r.kvs[i].key_len, r.kvs[i].key);
			if (strlen(k) == plen + 5 && sscanf(k + plen, "%d", &idx) == 1 &&
			    idx >= 0 && idx < 1000) {
				dups += seen[idx]++ != 0;
				CU_ASSERT(kv_is(&r.kvs[i], k, k));
			} else {
				newkey++;
			}
			total++;
		}
		pages++;
		bool more = r.more;
		if (r.n) { /* next page: after the last key */
			const struct mg_etcd_kv *last = &r.kvs[r.n - 1];
			memcpy(start, last->key, last->key_len);
			start[last->key_len] = '\0';
			slen = last->key_len + 1;
		}
		mg_etcd_range_free(&r);
		if (!more || pages > 20)
			break;
	}
	int missing = 0;
	for (int i = 0; i < 1000; i++)
		missing += seen[i] == 0;
	CU_ASSERT_EQUAL(pages, 10);
	CU_ASSERT_EQUAL(total, 1000);
	CU_ASSERT_EQUAL(dups, 0);
	CU_ASSERT_EQUAL(missing, 0);
	CU_ASSERT_EQUAL(newkey, 0);
	/* and an unpinned list sees the new keys */
	CU_ASSERT_EQUAL(mg_etcd_range(e, p, strlen(p), end, (size_t)elen, 0, 0,
	                              MG_ETCD_RANGE_COUNT_ONLY, &r, &err),
	                0);
	CU_ASSERT_EQUAL(r.count, 1002);
	mg_etcd_range_free(&r);
	del_prefix(e, p);
	mg_etcd_close(other);
	mg_etcd_close(e);
}

static void
test_txn_limits(void)
{
	struct mg_etcd *e = open_as(ROOT);
	static char kbuf[129][32];
	const char *keys[129], *vals[129];
	size_t vlens[129];
	struct mg_error err = {""};
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	for (int i = 0; i < 129; i++) {
		snprintf(kbuf[i], sizeof(kbuf[i]), "cilium/txn/%03d", i);
		keys[i] = vals[i] = kbuf[i];
		vlens[i] = strlen(kbuf[i]);
	}
	/* etcd's --max-txn-ops is 128 */
	CU_ASSERT_EQUAL(mg_etcd_txn_put(e, 129, keys, vals, vlens, NULL, &err), -EINVAL);
	CU_ASSERT_EQUAL(mg_etcd_last_status(e), 3);
	CU_ASSERT(strstr(err.msg, "etcd Txn: INVALID_ARGUMENT: ") == err.msg);
	CU_ASSERT_EQUAL(mg_etcd_txn_put(e, 128, keys, vals, vlens, NULL, &err), 0);
	del_prefix(e, "cilium/txn/");
	mg_etcd_close(e);
}

/* 20 values of 600 KiB: a 12 MiB page passes with the default max_recv, not with 4 MiB. */
static void
test_big_page(void)
{
	struct mg_etcd *e = open_as(ROOT);
	struct mg_etcd *small = open_ex(ROOT, NULL, NULL, 3000, 4u << 20);
	const size_t vlen = 600 * 1024;
	char *v = malloc(vlen), key[64], end[64];
	struct mg_etcd_range r;
	struct mg_error err = {""};
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(small);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	memset(v, 'v', vlen);
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "cilium/big/%02d", i);
		v[0] = (char)('a' + i);
		CU_ASSERT_EQUAL(mg_etcd_put(e, key, strlen(key), v, vlen, NULL, &err), 0);
	}
	int n = mg_etcd_prefix_end("cilium/big/", 11, end, sizeof(end));
	int rc = mg_etcd_range(e, "cilium/big/", 11, end, (size_t)n, 0, 0, 0, &r, &err);
	if (rc < 0)
		fprintf(stderr, "big range: %s\n", err.msg);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(r.n, 20);
	size_t bytes = 0;
	for (size_t i = 0; i < r.n; i++)
		bytes += r.kvs[i].value_len;
	CU_ASSERT(bytes >= 10u << 20);
	CU_ASSERT(r.n == 20 && r.kvs[19].value[0] == 'a' + 19);
	mg_etcd_range_free(&r);
	rc = mg_etcd_range(small, "cilium/big/", 11, end, (size_t)n, 0, 0, 0, &r, &err);
	CU_ASSERT_EQUAL(rc, -EMSGSIZE);
	CU_ASSERT_EQUAL(mg_etcd_last_status(small), 8);
	printf("# 4 MiB limit: %s\n", err.msg);
	mg_etcd_range_free(&r);
	del_prefix(e, "cilium/big/");
	free(v);
	mg_etcd_close(small);
	mg_etcd_close(e);
}

static void
test_watch(void)
{
	struct mg_etcd *e = open_as(ROOT);
	struct mg_etcd_watch *w = NULL;
	struct mg_etcd_watch_resp r;
	struct mg_etcd_header h;
	struct mg_error err = {""};
	char end[64];
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	del_prefix(e, "cilium/w1/");
	CU_ASSERT_EQUAL_FATAL(mg_etcd_watch_open(e, &w, &err), 0);
	int n = mg_etcd_prefix_end("cilium/w1/", 10, end, sizeof(end));
	CU_ASSERT_EQUAL_FATAL(
	        mg_etcd_watch_create(w, "cilium/w1/", 10, end, (size_t)n, 0, false, false, &err),
	        0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.created);
	CU_ASSERT(!r.canceled);
	CU_ASSERT_EQUAL(r.n, 0);
	CU_ASSERT(r.hdr.cluster_id != 0);
	int64_t id = r.watch_id;
	mg_etcd_watch_resp_free(&r);
	/* nothing happens: a timeout, the stream still fine */
	CU_ASSERT_EQUAL(mg_etcd_watch_next(w, 200, &r, &err), -ETIMEDOUT);
	CU_ASSERT_EQUAL(put_s(e, "cilium/w1/a", "va", &h), 0);
	CU_ASSERT_EQUAL(put_s(e, "cilium/w1/outside-not", "x", NULL), 0);
	CU_ASSERT_EQUAL(put_s(e, "cilium/w0", "not watched", NULL), 0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT_EQUAL(r.watch_id, id);
	CU_ASSERT_EQUAL_FATAL(r.n, 1);
	CU_ASSERT_EQUAL(r.events[0].type, MG_ETCD_PUT);
	CU_ASSERT(kv_is(&r.events[0].kv, "cilium/w1/a", "va"));
	CU_ASSERT_EQUAL(r.events[0].kv.mod_revision, h.revision);
	CU_ASSERT_EQUAL(r.events[0].kv.version, 1);
	mg_etcd_watch_resp_free(&r);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.n == 1 && kv_is(&r.events[0].kv, "cilium/w1/outside-not", "x"));
	mg_etcd_watch_resp_free(&r);
	/* a delete: type DELETE, no value, version 0 */
	CU_ASSERT_EQUAL(mg_etcd_delete(e, "cilium/w1/a", 11, NULL, 0, NULL, &h, &err), 0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT_EQUAL_FATAL(r.n, 1);
	CU_ASSERT_EQUAL(r.events[0].type, MG_ETCD_DELETE);
	CU_ASSERT(kv_is(&r.events[0].kv, "cilium/w1/a", ""));
	CU_ASSERT_EQUAL(r.events[0].kv.version, 0);
	CU_ASSERT_EQUAL(r.events[0].kv.mod_revision, h.revision);
	mg_etcd_watch_resp_free(&r);
	/* a txn of 128 puts: one response of 128 events, one revision */
	CU_ASSERT_EQUAL_FATAL(load_keys(e, "cilium/w1/t", 125, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT_EQUAL(r.n, 125);
	CU_ASSERT(r.n == 125 && r.events[0].kv.mod_revision == r.events[124].kv.mod_revision);
	mg_etcd_watch_resp_free(&r);
	static char kbuf[128][32];
	const char *keys[128];
	size_t vl[128];
	for (int i = 0; i < 128; i++) {
		snprintf(kbuf[i], sizeof(kbuf[i]), "cilium/w1/u%03d", i);
		keys[i] = kbuf[i];
		vl[i] = 1;
	}
	CU_ASSERT_EQUAL(mg_etcd_txn_put(e, 128, keys, keys, vl, &h, &err), 0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT_EQUAL(r.n, 128);
	CU_ASSERT(r.n == 128 && r.events[127].kv.mod_revision == h.revision &&
	          kv_is(&r.events[127].kv, "cilium/w1/u127", "c"));
	mg_etcd_watch_resp_free(&r);
	/* a progress request: an empty response at the current revision */
	CU_ASSERT_EQUAL(mg_etcd_watch_progress(w, &err), 0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT_EQUAL(r.n, 0);
	CU_ASSERT_EQUAL(r.hdr.revision, h.revision);
	printf("# progress response: watch_id %lld created %d canceled %d\n", (long long)r.watch_id,
	       r.created, r.canceled);
	mg_etcd_watch_resp_free(&r);
	mg_etcd_watch_close(w);
	del_prefix(e, "cilium/w1/");
	mg_etcd_close(e);
}

static void
test_watch_two(void)
{
	struct mg_etcd *e = open_as(ROOT);
	struct mg_etcd_watch *w = NULL;
	struct mg_etcd_watch_resp r;
	struct mg_error err = {""};
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL_FATAL(mg_etcd_watch_open(e, &w, &err), 0);
	CU_ASSERT_EQUAL(
	        mg_etcd_watch_create(w, "cilium/wa/", 10, "cilium/wa0", 10, 0, false, false, &err),
	        0);
	CU_ASSERT_EQUAL(
	        mg_etcd_watch_create(w, "cilium/wb/", 10, "cilium/wb0", 10, 0, false, false, &err),
	        0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.created);
	int64_t a = r.watch_id;
	mg_etcd_watch_resp_free(&r);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.created);
	int64_t b = r.watch_id;
	mg_etcd_watch_resp_free(&r);
	CU_ASSERT(a != b);
	CU_ASSERT_EQUAL(put_s(e, "cilium/wb/1", "b", NULL), 0);
	CU_ASSERT_EQUAL(put_s(e, "cilium/wa/1", "a", NULL), 0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.watch_id == b && r.n == 1 && kv_is(&r.events[0].kv, "cilium/wb/1", "b"));
	mg_etcd_watch_resp_free(&r);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.watch_id == a && r.n == 1 && kv_is(&r.events[0].kv, "cilium/wa/1", "a"));
	mg_etcd_watch_resp_free(&r);
	/* cancel a: its canceled response, then only b's events */
	CU_ASSERT_EQUAL(mg_etcd_watch_cancel(w, a, &err), 0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.canceled && r.watch_id == a);
	mg_etcd_watch_resp_free(&r);
	CU_ASSERT_EQUAL(put_s(e, "cilium/wa/2", "a", NULL), 0);
	CU_ASSERT_EQUAL(put_s(e, "cilium/wb/2", "b", NULL), 0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.watch_id == b && r.n == 1 && kv_is(&r.events[0].kv, "cilium/wb/2", "b"));
	mg_etcd_watch_resp_free(&r);
	mg_etcd_watch_close(w);
	del_prefix(e, "cilium/wa/");
	del_prefix(e, "cilium/wb/");
	mg_etcd_close(e);
}

static void
test_compacted(void)
{
	struct mg_etcd *e = open_as(ROOT);
	struct mg_etcd_watch *w = NULL;
	struct mg_etcd_watch_resp r;
	struct mg_etcd_range rg;
	struct mg_etcd_header h0, h;
	struct mg_error err = {""};
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(put_s(e, "cilium/cp/k", "0", &h0), 0);
	CU_ASSERT_EQUAL(put_s(e, "cilium/cp/k", "1", NULL), 0);
	CU_ASSERT_EQUAL(put_s(e, "cilium/cp/k", "2", &h), 0);
	CU_ASSERT_EQUAL_FATAL(mg_etcd_compact(e, h.revision, true, &err), 0);
	/* a range at a compacted revision */
	CU_ASSERT_EQUAL(mg_etcd_range(e, "cilium/cp/k", 11, NULL, 0, h0.revision, 0, 0, &rg, &err),
	                -ERANGE);
	CU_ASSERT_EQUAL(mg_etcd_last_status(e), 11);
	printf("# compacted range: %s\n", err.msg);
	CU_ASSERT(strstr(err.msg, "etcd Range: OUT_OF_RANGE: ") == err.msg);
	mg_etcd_range_free(&rg);
	/* a watch from a compacted revision: created, then canceled */
	CU_ASSERT_EQUAL_FATAL(mg_etcd_watch_open(e, &w, &err), 0);
	CU_ASSERT_EQUAL(mg_etcd_watch_create(w, "cilium/cp/", 10, "cilium/cp0", 10, h0.revision,
	                                     false, false, &err),
	                0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.created);
	mg_etcd_watch_resp_free(&r);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.canceled);
	CU_ASSERT_EQUAL(r.compact_revision, h.revision);
	printf("# compacted watch: compact_revision %lld header revision %lld reason '%s'\n",
	       (long long)r.compact_revision, (long long)r.hdr.revision, r.cancel_reason);
	mg_etcd_watch_resp_free(&r);
	/* the stream lives on: a new watcher from the compaction point works */
	CU_ASSERT_EQUAL(mg_etcd_watch_create(w, "cilium/cp/", 10, "cilium/cp0", 10, h.revision,
	                                     false, false, &err),
	                0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.created);
	mg_etcd_watch_resp_free(&r);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.n == 1 && kv_is(&r.events[0].kv, "cilium/cp/k", "2"));
	mg_etcd_watch_resp_free(&r);
	mg_etcd_watch_close(w);
	del_prefix(e, "cilium/cp/");
	mg_etcd_close(e);
}

static void
test_remote_user(void)
{
	struct mg_etcd *root = open_as(ROOT), *e = open_as(REMOTE);
	struct mg_etcd_watch *w = NULL;
	struct mg_etcd_watch_resp r;
	struct mg_etcd_range rg;
	struct mg_error err = {""};
	CU_ASSERT_PTR_NOT_NULL_FATAL(root);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(put_s(root, "cilium/ru/k", "v", NULL), 0);
	CU_ASSERT_EQUAL(put_s(root, "other/k", "v", NULL), 0);
	/* may read cilium/ */
	CU_ASSERT_EQUAL(mg_etcd_range(e, "cilium/ru/", 10, "cilium/ru0", 10, 0, 0, 0, &rg, &err),
	                0);
	CU_ASSERT(rg.n == 1 && kv_is(&rg.kvs[0], "cilium/ru/k", "v"));
	mg_etcd_range_free(&rg);
	/* no write */
	CU_ASSERT_EQUAL(mg_etcd_put(e, "cilium/ru/k", 11, "w", 1, NULL, &err), -EACCES);
	CU_ASSERT_EQUAL(mg_etcd_last_status(e), 7);
	printf("# remote put: %s\n", err.msg);
	CU_ASSERT(strstr(err.msg, "etcd Put: PERMISSION_DENIED: ") == err.msg);
	/* nothing outside cilium/ */
	CU_ASSERT_EQUAL(mg_etcd_range(e, "other/", 6, "other0", 6, 0, 0, 0, &rg, &err), -EACCES);
	mg_etcd_range_free(&rg);
	CU_ASSERT_EQUAL(mg_etcd_range(e, "\0", 1, "\0", 1, 0, 0, 0, &rg, &err), -EACCES);
	mg_etcd_range_free(&rg);
	/* a watch outside cilium/: canceled in-band with a reason; the stream lives on */
	CU_ASSERT_EQUAL_FATAL(mg_etcd_watch_open(e, &w, &err), 0);
	CU_ASSERT_EQUAL(mg_etcd_watch_create(w, "other/", 6, "other0", 6, 0, false, false, &err),
	                0);
	bool canceled = false;
	for (int i = 0; i < 2 && !canceled; i++) {
		if (next5(w, &r) < 0)
			break;
		printf("# remote watch other/: created %d canceled %d id %lld reason '%s'\n",
		       r.created, r.canceled, (long long)r.watch_id, r.cancel_reason);
		canceled = r.canceled;
		if (canceled)
			CU_ASSERT(strstr(r.cancel_reason, "permission denied") != NULL);
		mg_etcd_watch_resp_free(&r);
	}
	CU_ASSERT(canceled);
	CU_ASSERT_EQUAL(
	        mg_etcd_watch_create(w, "cilium/ru/", 10, "cilium/ru0", 10, 0, false, false, &err),
	        0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.created && !r.canceled);
	mg_etcd_watch_resp_free(&r);
	CU_ASSERT_EQUAL(put_s(root, "cilium/ru/k", "v2", NULL), 0);
	CU_ASSERT_EQUAL_FATAL(next5(w, &r), 0);
	CU_ASSERT(r.n == 1 && kv_is(&r.events[0].kv, "cilium/ru/k", "v2"));
	mg_etcd_watch_resp_free(&r);
	mg_etcd_watch_close(w);
	del_prefix(root, "cilium/ru/");
	del_prefix(root, "other/");
	mg_etcd_close(e);
	mg_etcd_close(root);
}

static void
test_nobody(void)
{
	struct mg_etcd *e = open_as(NOBODY);
	struct mg_etcd_range rg;
	struct mg_error err = {""};
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	int rc = mg_etcd_range(e, "cilium/", 7, "cilium0", 7, 0, 1, 0, &rg, &err);
	printf("# CN=nobody range: %d %s\n", rc, err.msg);
	CU_ASSERT(rc < 0);
	CU_ASSERT(strstr(err.msg, "etcd Range: ") == err.msg);
	mg_etcd_range_free(&rg);
	rc = mg_etcd_put(e, "cilium/x", 8, "v", 1, NULL, &err);
	CU_ASSERT(rc < 0);
	mg_etcd_close(e);
}

/* A call that must fail without a connection: its error, within @p max_s. */
static void
expect_unreachable(struct mg_etcd *e, int want, double max_s, const char *what)
{
	struct mg_etcd_status st;
	struct mg_error err = {""};
	double t0 = now_s();
	int rc = mg_etcd_status(e, &st, &err);
	double dt = now_s() - t0;
	printf("# %s: %d after %.2f s: %s\n", what, rc, dt, err.msg);
	CU_ASSERT_EQUAL(rc, want);
	CU_ASSERT(dt < max_s);
	/* and again: a new channel, the same outcome */
	t0 = now_s();
	rc = mg_etcd_status(e, &st, &err);
	CU_ASSERT_EQUAL(rc, want);
	CU_ASSERT(now_s() - t0 < max_s);
}

static void
test_wrong_ca(void)
{
	/* our client certificate is from a CA etcd does not trust */
	struct mg_etcd *e = open_ex(WRONG, NULL, NULL, 2000, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	expect_unreachable(e, -ECONNREFUSED, 3.0, "client cert of a wrong CA");
	CU_ASSERT_EQUAL(mg_etcd_last_status(e), 14);
	mg_etcd_close(e);
	/* we trust a CA that did not sign etcd's certificate */
	e = open_ex(ROOT, NULL, wrong_ca, 2000, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	expect_unreachable(e, -ECONNREFUSED, 3.0, "server cert not of our CA");
	mg_etcd_close(e);
}

static uint16_t
closed_port(int *fd_keep, bool listen_it)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		return 0;
	if (listen_it && listen(fd, 16) < 0)
		return 0;
	if (fd_keep)
		*fd_keep = fd; /* bound (and maybe listening), never accepting */
	else
		close(fd);
	return ntohs(a.sin_port);
}

static void
test_unreachable(void)
{
	char ep[64];
	int fd = -1;
	/* a port nobody listens on: refused at once */
	uint16_t port = closed_port(NULL, false);
	CU_ASSERT_FATAL(port != 0);
	snprintf(ep, sizeof(ep), "https://127.0.0.1:%u", port);
	struct mg_etcd *e = open_ex(ROOT, ep, NULL, 1500, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	expect_unreachable(e, -ECONNREFUSED, 2.5, "closed port");
	mg_etcd_close(e);
	/* a server that accepts TCP and never answers TLS: the connect timeout */
	port = closed_port(&fd, true);
	CU_ASSERT_FATAL(port != 0);
	snprintf(ep, sizeof(ep), "https://127.0.0.1:%u", port);
	e = open_ex(ROOT, ep, NULL, 1500, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	expect_unreachable(e, -ETIMEDOUT, 2.5, "silent server");
	struct mg_etcd_watch *w = NULL;
	struct mg_error err;
	CU_ASSERT_EQUAL(mg_etcd_watch_open(e, &w, &err), -ETIMEDOUT);
	CU_ASSERT_PTR_NULL(w);
	mg_etcd_close(e);
	close(fd);
}

/* Two endpoints, the first dead: the first call fails, the next one uses the second. */
static void
test_rotation(void)
{
	char dead[64];
	uint16_t port = closed_port(NULL, false);
	snprintf(dead, sizeof(dead), "https://127.0.0.1:%u", port);
	const char *eps[2] = {dead, endpoint};
	struct mg_etcd_opts o = {
	        .endpoints = eps,
	        .n_endpoints = 2,
	        .ca_file = ca,
	        .cert_file = certs[ROOT][0],
	        .key_file = certs[ROOT][1],
	        .connect_timeout_ms = 2000,
	};
	struct mg_error err = {""};
	struct mg_etcd_status st;
	struct mg_etcd *e = mg_etcd_open(&o, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_STRING_EQUAL(mg_etcd_endpoint(e), dead);
	CU_ASSERT_EQUAL(mg_etcd_status(e, &st, &err), -ECONNREFUSED);
	CU_ASSERT_STRING_EQUAL(mg_etcd_endpoint(e), endpoint);
	CU_ASSERT_EQUAL(mg_etcd_status(e, &st, &err), 0);
	CU_ASSERT_EQUAL(mg_etcd_status(e, &st, &err), 0);
	CU_ASSERT_STRING_EQUAL(mg_etcd_endpoint(e), endpoint);
	mg_etcd_close(e);
}

struct thr {
	int idx, fails;
};

static void *
thr_main(void *arg)
{
	struct thr *t = arg;
	struct mg_etcd *e = open_as(ROOT);
	struct mg_etcd_watch *w = NULL;
	struct mg_etcd_watch_resp r;
	struct mg_error err;
	char prefix[64], end[64], key[80];
	if (e == NULL) {
		t->fails++;
		return NULL;
	}
	snprintf(prefix, sizeof(prefix), "cilium/thr%d/", t->idx);
	int n = mg_etcd_prefix_end(prefix, strlen(prefix), end, sizeof(end));
	if (mg_etcd_watch_open(e, &w, &err) < 0 ||
	    mg_etcd_watch_create(w, prefix, strlen(prefix), end, (size_t)n, 0, false, false, &err) <
	            0 ||
	    mg_etcd_watch_next(w, 5000, &r, &err) < 0 || !r.created)
		t->fails++;
	mg_etcd_watch_resp_free(&r);
	for (int i = 0; i < 50 && w; i++) {
		snprintf(key, sizeof(key), "%s%d", prefix, i);
		if (put_s(e, key, key, NULL) < 0 || mg_etcd_watch_next(w, 5000, &r, &err) < 0 ||
		    r.n != 1 || !kv_is(&r.events[0].kv, key, key))
			t->fails++;
		mg_etcd_watch_resp_free(&r);
	}
	mg_etcd_watch_close(w);
	del_prefix(e, prefix);
	mg_etcd_close(e);
	return NULL;
}

/* One client per thread, all at once (the replicator's model). */
static void
test_threads(void)
{
	enum {
		N = 4
	};
	pthread_t th[N];
	struct thr t[N];
	for (int i = 0; i < N; i++) {
		t[i] = (struct thr){.idx = i};
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(t[i].fails, 0);
	}
}

/* A watch with its created response; NULL (and CU failures) when not. */
static struct mg_etcd_watch *
watch_ready(struct mg_etcd *e)
{
	struct mg_etcd_watch *w = NULL;
	struct mg_etcd_watch_resp r;
	struct mg_error err = {""};
	if (mg_etcd_watch_open(e, &w, &err) < 0) {
		fprintf(stderr, "watch_open: %s\n", err.msg);
		CU_FAIL("watch_open");
		return NULL;
	}
	CU_ASSERT_EQUAL(mg_etcd_watch_create(w, "cilium/", 7, "cilium0", 7, 0, false, false, &err),
	                0);
	if (next5(w, &r) < 0 || !r.created) {
		CU_FAIL("no created response");
		mg_etcd_watch_resp_free(&r);
		mg_etcd_watch_close(w);
		return NULL;
	}
	mg_etcd_watch_resp_free(&r);
	return w;
}

/* After etcd went away: the watch ends within @p max_s with a stream error. */
static void
expect_watch_end(struct mg_etcd_watch *w, double max_s, const char *what)
{
	struct mg_etcd_watch_resp r;
	struct mg_error err = {""};
	double t0 = now_s();
	int rc;
	do
		rc = mg_etcd_watch_next(w, 1000, &r, &err);
	while (rc == -ETIMEDOUT && now_s() - t0 < max_s);
	printf("# watch after %s: %d after %.2f s: %s\n", what, rc, now_s() - t0, err.msg);
	CU_ASSERT(rc < 0 && rc != -ETIMEDOUT);
	CU_ASSERT(strstr(err.msg, "etcd Watch: ") == err.msg);
	/* sticky */
	struct mg_error err2 = {""};
	CU_ASSERT_EQUAL(mg_etcd_watch_next(w, 10, &r, &err2), rc);
	CU_ASSERT_STRING_EQUAL(err2.msg, err.msg);
}

/* After etcd came back, the same mg_etcd works again (its channel was dropped). */
static void
expect_back(struct mg_etcd *e)
{
	struct mg_etcd_status st;
	struct mg_error err = {""};
	int rc = mg_etcd_status(e, &st, &err);
	if (rc < 0) {
		printf("# first call after the restart: %s\n", err.msg);
		rc = mg_etcd_status(e, &st, &err);
	}
	CU_ASSERT_EQUAL(rc, 0);
	struct mg_etcd_watch *w = watch_ready(e);
	CU_ASSERT_PTR_NOT_NULL(w);
	mg_etcd_watch_close(w);
}

static void
test_killed_mid_watch(void)
{
	struct mg_etcd *e = open_as(ROOT);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	struct mg_etcd_watch *w = watch_ready(e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	CU_ASSERT_EQUAL_FATAL(env_cmd("kill"), 0);
	expect_watch_end(w, 5.0, "SIGKILL");
	printf("# status code %d (%s)\n", mg_etcd_last_status(e),
	       mg_etcd_status_name(mg_etcd_last_status(e)));
	mg_etcd_watch_close(w);
	/* a unary call while etcd is down */
	struct mg_etcd_status st;
	struct mg_error err = {""};
	double t0 = now_s();
	CU_ASSERT_EQUAL(mg_etcd_status(e, &st, &err), -ECONNREFUSED);
	printf("# status while down: %.2f s: %s\n", now_s() - t0, err.msg);
	CU_ASSERT(now_s() - t0 < 4.0);
	CU_ASSERT_EQUAL_FATAL(env_cmd("start"), 0);
	expect_back(e);
	mg_etcd_close(e);
}

static void
test_stopped_mid_watch(void)
{
	struct mg_etcd *e = open_as(ROOT);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	struct mg_etcd_watch *w = watch_ready(e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	CU_ASSERT_EQUAL_FATAL(env_cmd("stop"), 0);
	expect_watch_end(w, 5.0, "SIGTERM");
	mg_etcd_watch_close(w);
	CU_ASSERT_EQUAL_FATAL(env_cmd("start"), 0);
	expect_back(e);
	mg_etcd_close(e);
}

/* A frozen etcd (SIGSTOP): only keepalive can tell; etcd allows a ping every 5 s. */
static void
test_frozen_keepalive(void)
{
	const char *eps[1] = {endpoint};
	struct mg_etcd_opts o = {
	        .endpoints = eps,
	        .n_endpoints = 1,
	        .ca_file = ca,
	        .cert_file = certs[ROOT][0],
	        .key_file = certs[ROOT][1],
	        .keepalive_ms = 6000,
	        .keepalive_timeout_ms = 2000,
	};
	struct mg_error err = {""};
	struct mg_etcd *e = mg_etcd_open(&o, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	struct mg_etcd_watch *w = watch_ready(e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	pid_t pid = etcd_pid();
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_EQUAL_FATAL(kill(pid, SIGSTOP), 0);
	expect_watch_end(w, 12.0, "SIGSTOP");
	kill(pid, SIGCONT);
	mg_etcd_watch_close(w);
	expect_back(e);
	mg_etcd_close(e);
}

static void
test_restart_empty(void)
{
	struct mg_etcd *e = open_as(ROOT);
	struct mg_etcd_status st1, st2;
	struct mg_etcd_range rg;
	struct mg_error err = {""};
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(put_s(e, "cilium/survivor", "x", NULL), 0);
	CU_ASSERT_EQUAL_FATAL(mg_etcd_status(e, &st1, &err), 0);
	CU_ASSERT_EQUAL_FATAL(env_cmd("restart-empty"), 0);
	int rc = mg_etcd_status(e, &st2, &err);
	if (rc < 0) {
		printf("# first call after restart-empty: %s\n", err.msg);
		rc = mg_etcd_status(e, &st2, &err);
	}
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	printf("# cluster id %llx -> %llx\n", (unsigned long long)st1.hdr.cluster_id,
	       (unsigned long long)st2.hdr.cluster_id);
	CU_ASSERT(st2.hdr.cluster_id != st1.hdr.cluster_id);
	CU_ASSERT(st2.hdr.revision < st1.hdr.revision);
	CU_ASSERT_EQUAL(mg_etcd_range(e, "cilium/survivor", 15, NULL, 0, 0, 0, 0, &rg, &err), 0);
	CU_ASSERT_EQUAL(rg.n, 0);
	CU_ASSERT_EQUAL(rg.hdr.cluster_id, st2.hdr.cluster_id);
	mg_etcd_range_free(&rg);
	/* auth is set up again: remote still may not write */
	struct mg_etcd *r = open_as(REMOTE);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(mg_etcd_put(r, "cilium/x", 8, "v", 1, NULL, &err), -EACCES);
	mg_etcd_close(r);
	mg_etcd_close(e);
}

static CU_TestInfo tests[] = {
        {"prefix_end", test_prefix_end},
        {"bad_opts", test_bad_opts},
        {"status", test_status},
        {"put_range", test_put_range},
        {"paged_pinned", test_paged_pinned},
        {"txn_limits", test_txn_limits},
        {"big_page", test_big_page},
        {"watch", test_watch},
        {"watch_two", test_watch_two},
        {"compacted", test_compacted},
        {"remote_user", test_remote_user},
        {"nobody", test_nobody},
        {"wrong_ca", test_wrong_ca},
        {"unreachable", test_unreachable},
        {"rotation", test_rotation},
        {"threads", test_threads},
        {"killed_mid_watch", test_killed_mid_watch},
        {"stopped_mid_watch", test_stopped_mid_watch},
        {"frozen_keepalive", test_frozen_keepalive},
        {"restart_empty", test_restart_empty},
        CU_TEST_INFO_NULL,
};

int
main(void)
{
	env_dir = getenv("ETCD_ENV_DIR");
	env_sh = getenv("ETCD_ENV_SH");
	if (env_dir == NULL || env_sh == NULL) {
		fprintf(stderr, "run through tests/integration/etcd_test.sh\n");
		return 2;
	}
	env_read();
	CU_SuiteInfo suites[] = {{"etcd", NULL, NULL, NULL, NULL, tests}, CU_SUITE_INFO_NULL};
	return mg_test_run(suites);
}
