/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Integration test of the writer's lease and fencing (lib/kvstore/
 * mg_kv_lease.c, the fenced functions of conf/redis/meshgate.lua) and of
 * mg_kv_writer_scan_values() against a real redis-server: the wrapper
 * kvsync_test.sh starts one on a free loopback port and passes the port
 * and the Function library path. Two writers, A and B, play two replicas
 * of the replicator; a third connection (R) inspects and, where a test
 * says so, breaks the rules (steals the lease). Waiting for a lease to
 * lapse polls its PTTL, never a fixed sleep.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "mg_kvstore.h"
#include "mg_test.h"

#define LEASE MG_KV_LEASE_KEY

static int port;
static const char *lua_path;
static redisContext *R;

static redisReply *
rcmdv(const char *fmt, va_list ap)
{
	redisReply *r = redisvCommand(R, fmt, ap);

	if (r == NULL) {
		fprintf(stderr, "redis: %s\n", R->errstr);
		exit(1);
	}
	return r;
}

/* A command on R; its integer reply, 0 for others. Error replies fail the test. */
static long long
rcmd(const char *fmt, ...)
{
	va_list ap;
	redisReply *r;
	long long v;

	va_start(ap, fmt);
	r = rcmdv(fmt, ap);
	va_end(ap);
	if (r->type == REDIS_REPLY_ERROR)
		fprintf(stderr, "redis error: %s\n", r->str);
	CU_ASSERT(r->type != REDIS_REPLY_ERROR);
	v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	freeReplyObject(r);
	return v;
}

/* The string reply of a command on R into @p buf ("" when not a string). */
static const char *
rstr(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = rcmdv(fmt, ap);
	va_end(ap);
	snprintf(buf, size, "%s",
	         r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_ERROR ? r->str : "");
	freeReplyObject(r);
	return buf;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The whole keyspace as text: every key (sorted) with its type and value
 * (strings) or length and last id (streams). Two equal digests: nothing
 * was written in between (TTLs aside).
 */
static char *
digest(void)
{
	redisReply *keys = redisCommand(R, "KEYS *"), *v;
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap), **names;

	CU_ASSERT_PTR_NOT_NULL_FATAL(keys);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	names = calloc(keys->elements + 1, sizeof(*names));
	CU_ASSERT_PTR_NOT_NULL_FATAL(names);
	for (size_t i = 0; i < keys->elements; i++)
		names[i] = keys->element[i]->str;
	qsort(names, keys->elements, sizeof(*names), cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < keys->elements; i++) {
		char line[1024], type[32];

		v = NULL;
		rstr(type, sizeof(type), "TYPE %s", names[i]);
		if (strcmp(type, "string") == 0) {
			v = redisCommand(R, "GET %s", names[i]);
			snprintf(line, sizeof(line), "%s string %s\n", names[i],
			         v->type == REDIS_REPLY_STRING ? v->str : "?");
		} else if (strcmp(type, "stream") == 0) {
			v = redisCommand(R, "XREVRANGE %s + - COUNT 1", names[i]);
			snprintf(line, sizeof(line), "%s stream %lld %s\n", names[i],
			         rcmd("XLEN %s", names[i]),
			         v->elements ? v->element[0]->element[0]->str : "-");
		} else {
			snprintf(line, sizeof(line), "%s %s\n", names[i], type);
		}
		if (v != NULL)
			freeReplyObject(v);
		while (len + strlen(line) + 1 > cap) {
			cap *= 2;
			out = realloc(out, cap);
			CU_ASSERT_PTR_NOT_NULL_FATAL(out);
		}
		memcpy(out + len, line, strlen(line) + 1);
		len += strlen(line);
	}
	free(names);
	freeReplyObject(keys);
	return out;
}

static void
reset(void)
{
	rcmd("FLUSHALL");
}

static struct mg_kv_writer *
wopen(const char *cluster, unsigned batch)
{
	char url[64];
	struct mg_kv_writer_opts o = {0};
	struct mg_error err = {{0}};
	struct mg_kv_writer *w;

	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
	o.url = url;
	o.functions = lua_path;
	o.cluster = cluster;
	o.batch = batch;
	w = mg_kv_writer_open(&o, &err);
	if (w == NULL)
		fprintf(stderr, "writer: %s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	return w;
}

/* Wait (polling PTTL, at most 10 s) until @p key is gone. */
static bool
wait_gone(const char *key)
{
	struct timespec ts = {0, 5 * 1000 * 1000};

	for (int i = 0; i < 2000; i++) {
		if (rcmd("PTTL %s", key) == -2)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

/* Wait (polling, at most 10 s) until the stream @p log has @p n entries. */
static bool
wait_xlen(const char *log, long long n)
{
	struct timespec ts = {0, 1000 * 1000};

	for (int i = 0; i < 10000; i++) {
		if (rcmd("XLEN %s", log) == n)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

static const char *
id_key(char *buf, const char *cluster, uint32_t id)
{
	mg_kv_identity_key(buf, MG_KV_KEY_MAX, MG_KV_SCOPE_CACHE, cluster, id);
	return buf;
}

static void
test_token(void)
{
	char a[MG_KV_TOKEN_LEN + 1], b[MG_KV_TOKEN_LEN + 1], small[MG_KV_TOKEN_LEN];

	CU_ASSERT_EQUAL(mg_kv_token_new(a, sizeof(a)), 0);
	CU_ASSERT_EQUAL(mg_kv_token_new(b, sizeof(b)), 0);
	CU_ASSERT_EQUAL(strlen(a), MG_KV_TOKEN_LEN);
	CU_ASSERT_EQUAL(strspn(a, "0123456789abcdef"), MG_KV_TOKEN_LEN);
	CU_ASSERT(strcmp(a, b) != 0);
	CU_ASSERT_EQUAL(mg_kv_token_new(small, sizeof(small)), -EINVAL);
}

/* Lease and fence arguments are checked before anything is sent. */
static void
test_bad_args(void)
{
	struct mg_kv_writer *a;
	struct mg_error err;
	char longtok[MG_KV_TOKEN_MAX + 2];

	reset();
	a = wopen("east", 0);
	memset(longtok, 'x', sizeof(longtok) - 1);
	longtok[sizeof(longtok) - 1] = '\0';
	CU_ASSERT_EQUAL(mg_kv_lease_acquire(a, LEASE, "t", 0, NULL, 0, NULL, &err), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_lease_acquire(a, LEASE, "", 100, NULL, 0, NULL, &err), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_lease_acquire(a, "", "t", 100, NULL, 0, NULL, &err), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_lease_renew(a, LEASE, longtok, 100, &err), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_lease_renew(a, LEASE, "t", 0, &err), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_lease_release(a, NULL, "t", &err), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_writer_set_fence(a, LEASE, "", &err), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_writer_set_fence(a, NULL, "t", &err), -EINVAL);
	CU_ASSERT_EQUAL(rcmd("DBSIZE"), 0);
	/* A lease set by hand without a TTL: held, pttl -1. */
	rcmd("SET %s manual", LEASE);
	char holder[8];
	int64_t pttl = 0;
	CU_ASSERT_EQUAL(
	        mg_kv_lease_acquire(a, LEASE, "t", 100, holder, sizeof(holder), &pttl, &err), 0);
	CU_ASSERT_STRING_EQUAL(holder, "manual");
	CU_ASSERT_EQUAL(pttl, -1);
	/* A lease key of another type: an error, not a lease. */
	rcmd("DEL %s", LEASE);
	rcmd("LPUSH %s x", LEASE);
	CU_ASSERT_EQUAL(mg_kv_lease_acquire(a, LEASE, "t", 100, NULL, 0, NULL, &err), -EPROTO);
	mg_kv_writer_close(a);
}

static bool
keep_none(const char *key, void *arg)
{
	(void)key;
	(void)arg;
	return false;
}

/*
 * Every write of a fenced writer whose lease is lost: -ESTALE, the error
 * says the lease was lost, and the keyspace is unchanged.
 */
static void
assert_all_refused(struct mg_kv_writer *w, const char *cluster)
{
	struct mg_kv_cluster_config cc = {.id = 7, .synced_canaries = true, .cached = true};
	struct mg_kv_batch_counts c = {0};
	struct mg_kv_ip_pair p = {0};
	char key[MG_KV_KEY_MAX], synced[MG_KV_KEY_MAX], log[MG_KV_KEY_MAX];
	const char *plain[2] = {synced, log};
	struct mg_error err;
	char *before = digest(), *after;

	mg_kv_synced_key(synced, sizeof(synced), cluster, MG_KV_CACHE_IP);
	mg_kv_log_key(log, sizeof(log), cluster);
	p.prefix.family = 2;
	p.prefix.plen = 32;
	p.prefix.addr[0] = 10;
	p.prefix.addr[3] = 9;
	p.prefix.identity = 1000;
	p.host_route = true;

	memset(&err, 0, sizeof(err));
	CU_ASSERT_EQUAL(mg_kv_writer_put(w, id_key(key, cluster, 300), "k8s:a=b;", &err), -ESTALE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "lease " LEASE " lost"));
	CU_ASSERT_EQUAL(mg_kv_writer_put(w, id_key(key, cluster, 256), "k8s:a=changed;", &err),
	                -ESTALE);
	CU_ASSERT_EQUAL(mg_kv_writer_del(w, id_key(key, cluster, 256), &err), -ESTALE);
	CU_ASSERT_EQUAL(mg_kv_writer_put_identity(w, 301, "k8s:a=b", &err), -ESTALE);
	CU_ASSERT_EQUAL(mg_kv_writer_del_identity(w, 257, &err), -ESTALE);
	CU_ASSERT_EQUAL(mg_kv_writer_put_ip(w, &p, &err), -ESTALE);
	CU_ASSERT_EQUAL(mg_kv_writer_queue_put(w, id_key(key, cluster, 302), "k8s:a=b;", &c, &err),
	                0);
	CU_ASSERT_EQUAL(mg_kv_writer_queue_del(w, id_key(key, cluster, 256), &c, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_writer_flush(w, &err), -ESTALE);
	CU_ASSERT_EQUAL(c.written + c.unchanged, 0);
	CU_ASSERT_EQUAL(mg_kv_writer_flush(w, &err), 0); /* dropped, nothing left */
	CU_ASSERT_EQUAL(mg_kv_writer_cluster_config(w, &cc, &err), -ESTALE);
	CU_ASSERT_EQUAL(mg_kv_writer_canaries(w, &err), -ESTALE);
	CU_ASSERT_EQUAL(mg_kv_writer_set_plain(w, "meshgate/heartbeat/x", "t", 0, &err), -ESTALE);
	CU_ASSERT_EQUAL(mg_kv_writer_set_plain(w, "meshgate/heartbeat/x", "t", 500, &err), -ESTALE);
	CU_ASSERT_EQUAL(mg_kv_writer_del_plain(w, plain, 2, &err), -ESTALE);
	CU_ASSERT_EQUAL(mg_kv_writer_prune(w, keep_none, NULL, &err), -ESTALE);
	after = digest();
	CU_ASSERT_STRING_EQUAL(before, after);
	free(before);
	free(after);
}

/*
 * Acquire by A, B refused (told the holder and its TTL), A renews and
 * writes; the lease lapses, B takes it, A's renew says lost and every
 * write of A is refused with nothing written; B's writes work, up to a
 * drain of the cluster.
 */
static void
test_takeover(void)
{
	struct mg_kv_writer *a, *b;
	struct mg_kv_batch_counts c = {0};
	struct mg_kv_cluster_config cc = {.id = 7, .synced_canaries = true, .cached = true};
	char ta[MG_KV_TOKEN_LEN + 1], tb[MG_KV_TOKEN_LEN + 1], holder[MG_KV_TOKEN_MAX + 1];
	char key[MG_KV_KEY_MAX], buf[256], log[MG_KV_KEY_MAX], epoch[MG_KV_KEY_MAX];
	char synced[2][MG_KV_KEY_MAX], marker[MG_KV_KEY_MAX], cfg[MG_KV_KEY_MAX];
	const char *drain[5] = {synced[0], synced[1], log, epoch, marker};
	struct mg_error err;
	int64_t pttl = 0;

	reset();
	a = wopen("east", 0);
	b = wopen("east", 0);
	mg_kv_log_key(log, sizeof(log), "east");
	mg_kv_epoch_key(epoch, sizeof(epoch), "east");
	mg_kv_synced_key(synced[0], sizeof(synced[0]), "east", MG_KV_CACHE_IDENTITIES);
	mg_kv_synced_key(synced[1], sizeof(synced[1]), "east", MG_KV_CACHE_IP);
	mg_kv_removed_key(marker, sizeof(marker), "east");
	mg_kv_cluster_config_key(cfg, sizeof(cfg), "east");
	CU_ASSERT_EQUAL_FATAL(mg_kv_token_new(ta, sizeof(ta)), 0);
	CU_ASSERT_EQUAL_FATAL(mg_kv_token_new(tb, sizeof(tb)), 0);

	CU_ASSERT_EQUAL(
	        mg_kv_lease_acquire(a, LEASE, ta, 5000, holder, sizeof(holder), &pttl, &err), 1);
	CU_ASSERT_STRING_EQUAL(holder, ta);
	CU_ASSERT_EQUAL(pttl, 5000);
	CU_ASSERT_STRING_EQUAL(rstr(buf, sizeof(buf), "GET %s", LEASE), ta);
	/* Acquiring again with the same token renews. */
	CU_ASSERT_EQUAL(mg_kv_lease_acquire(a, LEASE, ta, 6000, NULL, 0, NULL, &err), 1);
	CU_ASSERT(rcmd("PTTL %s", LEASE) > 5000);
	pttl = 0;
	CU_ASSERT_EQUAL(
	        mg_kv_lease_acquire(b, LEASE, tb, 5000, holder, sizeof(holder), &pttl, &err), 0);
	CU_ASSERT_STRING_EQUAL(holder, ta);
	CU_ASSERT(pttl > 0 && pttl <= 6000);
	CU_ASSERT_EQUAL(mg_kv_lease_renew(b, LEASE, tb, 5000, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_lease_release(b, LEASE, tb, &err), 0);
	CU_ASSERT_STRING_EQUAL(rstr(buf, sizeof(buf), "GET %s", LEASE), ta);

	/* A writes, fenced. */
	CU_ASSERT_EQUAL(mg_kv_writer_set_fence(a, LEASE, ta, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_writer_put(a, id_key(key, "east", 256), "k8s:a=b;", &err), 1);
	CU_ASSERT_EQUAL(mg_kv_writer_put(a, id_key(key, "east", 256), "k8s:a=b;", &err), 0);
	CU_ASSERT_EQUAL(mg_kv_writer_put_identity(a, 257, "k8s:a=c", &err), 1);
	CU_ASSERT_EQUAL(mg_kv_writer_cluster_config(a, &cc, &err), 1);
	CU_ASSERT_EQUAL(mg_kv_writer_canaries(a, &err), 0);
	CU_ASSERT_EQUAL(rcmd("XLEN %s", log), 3);
	CU_ASSERT_EQUAL(rcmd("EXISTS %s %s", synced[0], synced[1]), 2);
	CU_ASSERT_EQUAL(rcmd("PTTL %s", synced[0]), -1);

	/* A renews with a short TTL and is then paused: the lease lapses. */
	CU_ASSERT_EQUAL(mg_kv_lease_renew(a, LEASE, ta, 300, &err), 1);
	CU_ASSERT(rcmd("PTTL %s", LEASE) <= 300);
	CU_ASSERT_FATAL(wait_gone(LEASE));
	CU_ASSERT_EQUAL(
	        mg_kv_lease_acquire(b, LEASE, tb, 5000, holder, sizeof(holder), &pttl, &err), 1);
	CU_ASSERT_STRING_EQUAL(holder, tb);
	CU_ASSERT_EQUAL(mg_kv_lease_renew(a, LEASE, ta, 5000, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_lease_release(a, LEASE, ta, &err), 0);
	CU_ASSERT_STRING_EQUAL(rstr(buf, sizeof(buf), "GET %s", LEASE), tb);
	assert_all_refused(a, "east");
	/* The library refuses A's token itself, whatever the client does. */
	rstr(buf, sizeof(buf), "FCALL mg_fbatch 4 %s %s %s %s %s 1000 t put v", LEASE, log, epoch,
	     id_key(key, "east", 400), ta);
	CU_ASSERT_STRING_EQUAL(buf, "FENCED mg_fbatch: lease " LEASE " is not held by this writer");
	CU_ASSERT_EQUAL(rcmd("EXISTS %s", key), 0);

	/* B writes, fenced; then drains the cluster. */
	CU_ASSERT_EQUAL(mg_kv_writer_set_fence(b, LEASE, tb, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_writer_put(b, id_key(key, "east", 256), "k8s:a=new;", &err), 1);
	CU_ASSERT_EQUAL(mg_kv_writer_queue_put(b, id_key(key, "east", 258), "k8s:a=d;", &c, &err),
	                0);
	CU_ASSERT_EQUAL(mg_kv_writer_queue_del(b, id_key(key, "east", 257), &c, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_writer_flush(b, &err), 0);
	CU_ASSERT_EQUAL(c.written, 2);
	CU_ASSERT_EQUAL(rcmd("XLEN %s", log), 6);
	mg_kv_heartbeat_key(key, sizeof(key), "east");
	CU_ASSERT_EQUAL(mg_kv_writer_set_plain(b, key, "2026-01-01T00:00:00Z", 60000, &err), 0);
	CU_ASSERT(rcmd("PTTL %s", key) > 50000);
	CU_ASSERT_EQUAL(mg_kv_writer_set_plain(b, marker, "2026-01-01T00:00:00Z", 0, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_writer_del(b, cfg, &err), 1);
	CU_ASSERT_EQUAL(mg_kv_writer_prune(b, keep_none, NULL, &err), 2);
	CU_ASSERT_EQUAL(rcmd("XLEN %s", log), 9);
	CU_ASSERT_EQUAL(mg_kv_writer_del_plain(b, drain, 5, &err), 5);
	CU_ASSERT_EQUAL(mg_kv_writer_del_plain(b, drain, 5, &err), 0);
	CU_ASSERT_EQUAL(rcmd("EXISTS %s %s %s %s", log, epoch, marker, cfg), 0);
	CU_ASSERT_EQUAL(rcmd("DBSIZE"), 2); /* the lease and the heartbeat */
	CU_ASSERT_EQUAL(mg_kv_lease_release(b, LEASE, tb, &err), 1);
	CU_ASSERT_EQUAL(rcmd("EXISTS %s", LEASE), 0);
	/* Released: B's fenced writes are refused too. */
	CU_ASSERT_EQUAL(mg_kv_writer_set_plain(b, key, "x", 0, &err), -ESTALE);
	mg_kv_writer_close(a);
	mg_kv_writer_close(b);
}

#define PIPE_BATCH 16u

/*
 * Steal A's lease after 3 of A's batches were applied: queue 3 batches
 * (sent at once), wait until Redis applied them (the log has their
 * entries), take the lease (DEL, then B acquires), queue 5 batches more
 * (8 calls in flight, none read yet) and flush. The first 3 are applied
 * and counted, the last 5 refused.
 */
static void
test_pipeline_steal_flush(void)
{
	struct mg_kv_writer *a, *b;
	struct mg_kv_batch_counts c = {0};
	char ta[MG_KV_TOKEN_LEN + 1], tb[MG_KV_TOKEN_LEN + 1], key[MG_KV_KEY_MAX];
	struct mg_error err;
	unsigned i;

	reset();
	a = wopen("west", PIPE_BATCH);
	b = wopen("west", PIPE_BATCH);
	mg_kv_token_new(ta, sizeof(ta));
	mg_kv_token_new(tb, sizeof(tb));
	CU_ASSERT_EQUAL_FATAL(mg_kv_lease_acquire(a, LEASE, ta, 60000, NULL, 0, NULL, &err), 1);
	CU_ASSERT_EQUAL_FATAL(mg_kv_writer_set_fence(a, LEASE, ta, &err), 0);
	for (i = 0; i < 3 * PIPE_BATCH; i++)
		CU_ASSERT_EQUAL(mg_kv_writer_queue_put(a, id_key(key, "west", 1000 + i), "k8s:a=b;",
		                                       &c, &err),
		                0);
	CU_ASSERT_FATAL(wait_xlen("meshgate/log/west", 3 * PIPE_BATCH));
	CU_ASSERT_EQUAL(c.written, 0); /* no reply read yet */
	rcmd("DEL %s", LEASE);
	CU_ASSERT_EQUAL(mg_kv_lease_acquire(b, LEASE, tb, 60000, NULL, 0, NULL, &err), 1);
	for (; i < 8 * PIPE_BATCH; i++)
		CU_ASSERT_EQUAL(mg_kv_writer_queue_put(a, id_key(key, "west", 1000 + i), "k8s:a=b;",
		                                       &c, &err),
		                0);
	memset(&err, 0, sizeof(err));
	CU_ASSERT_EQUAL(mg_kv_writer_flush(a, &err), -ESTALE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "lease " LEASE " lost"));
	CU_ASSERT_EQUAL(c.written, 3 * PIPE_BATCH);
	CU_ASSERT_EQUAL(c.unchanged, 0);
	CU_ASSERT_EQUAL(rcmd("XLEN meshgate/log/west"), 3 * PIPE_BATCH);
	CU_ASSERT_EQUAL(rcmd("DBSIZE"), 3 * PIPE_BATCH + 3); /* + log, epoch, lease */
	CU_ASSERT_EQUAL(rcmd("EXISTS %s", id_key(key, "west", 1000 + 3 * PIPE_BATCH - 1)), 1);
	CU_ASSERT_EQUAL(rcmd("EXISTS %s", id_key(key, "west", 1000 + 3 * PIPE_BATCH)), 0);
	/* The connection is in step: the next call gets its own reply. */
	CU_ASSERT_EQUAL(mg_kv_lease_renew(a, LEASE, ta, 1000, &err), 0);
	mg_kv_writer_close(a);
	mg_kv_writer_close(b);
}

/*
 * The same steal, but the refusal is read by a queue call: the ring is
 * full from the 9th batch on, each send reads the oldest reply first, and
 * the 12th batch's send reads the 4th batch's refusal.
 */
static void
test_pipeline_steal_queue(void)
{
	struct mg_kv_writer *a, *b;
	struct mg_kv_batch_counts c = {0}, c2 = {0};
	char ta[MG_KV_TOKEN_LEN + 1], tb[MG_KV_TOKEN_LEN + 1], key[MG_KV_KEY_MAX];
	struct mg_error err;
	unsigned i;
	int rc = 0;

	reset();
	a = wopen("west", PIPE_BATCH);
	b = wopen("west", PIPE_BATCH);
	mg_kv_token_new(ta, sizeof(ta));
	mg_kv_token_new(tb, sizeof(tb));
	CU_ASSERT_EQUAL_FATAL(mg_kv_lease_acquire(a, LEASE, ta, 60000, NULL, 0, NULL, &err), 1);
	CU_ASSERT_EQUAL_FATAL(mg_kv_writer_set_fence(a, LEASE, ta, &err), 0);
	/* Some already there: counted unchanged. */
	for (i = 0; i < PIPE_BATCH; i++)
		CU_ASSERT_EQUAL(
		        mg_kv_writer_put(a, id_key(key, "west", 1000 + i), "k8s:a=b;", &err), 1);
	for (i = 0; i < 3 * PIPE_BATCH; i++)
		CU_ASSERT_EQUAL(mg_kv_writer_queue_put(a, id_key(key, "west", 1000 + i), "k8s:a=b;",
		                                       &c, &err),
		                0);
	CU_ASSERT_FATAL(wait_xlen("meshgate/log/west", 3 * PIPE_BATCH));
	rcmd("DEL %s", LEASE);
	CU_ASSERT_EQUAL(mg_kv_lease_acquire(b, LEASE, tb, 60000, NULL, 0, NULL, &err), 1);
	for (; i < 20 * PIPE_BATCH; i++) {
		rc = mg_kv_writer_queue_put(a, id_key(key, "west", 1000 + i), "k8s:a=b;", &c, &err);
		if (rc < 0)
			break;
	}
	CU_ASSERT_EQUAL(rc, -ESTALE);
	CU_ASSERT_EQUAL(i, 12 * PIPE_BATCH - 1);
	CU_ASSERT_EQUAL(c.written, 2 * PIPE_BATCH);
	CU_ASSERT_EQUAL(c.unchanged, PIPE_BATCH);
	CU_ASSERT_EQUAL(rcmd("XLEN meshgate/log/west"), 3 * PIPE_BATCH);
	CU_ASSERT_EQUAL(mg_kv_writer_flush(a, &err), 0);
	CU_ASSERT_EQUAL(c.written, 2 * PIPE_BATCH);
	/* Still fenced with the lost lease: refused, not written. */
	CU_ASSERT_EQUAL(mg_kv_writer_queue_put(a, id_key(key, "west", 5000), "k8s:a=b;", &c2, &err),
	                0);
	CU_ASSERT_EQUAL(mg_kv_writer_flush(a, &err), -ESTALE);
	CU_ASSERT_EQUAL(c2.written + c2.unchanged, 0);
	/* A new tenure: B releases, A acquires with a new token and writes. */
	CU_ASSERT_EQUAL(mg_kv_lease_release(b, LEASE, tb, &err), 1);
	mg_kv_token_new(ta, sizeof(ta));
	CU_ASSERT_EQUAL(mg_kv_lease_acquire(a, LEASE, ta, 60000, NULL, 0, NULL, &err), 1);
	CU_ASSERT_EQUAL(mg_kv_writer_set_fence(a, LEASE, ta, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_writer_queue_put(a, id_key(key, "west", 5000), "k8s:a=b;", &c2, &err),
	                0);
	CU_ASSERT_EQUAL(mg_kv_writer_flush(a, &err), 0);
	CU_ASSERT_EQUAL(c2.written, 1);
	mg_kv_writer_close(a);
	mg_kv_writer_close(b);
}

/*
 * Unfenced writers (meshgatectl kv) write as before, whatever the lease
 * says; set_fence(NULL) makes a fenced writer unfenced again.
 */
static void
test_unfenced(void)
{
	struct mg_kv_writer *w;
	struct mg_kv_batch_counts c = {0};
	char key[MG_KV_KEY_MAX], buf[64];
	const char *dels[2] = {"plain/a", "plain/b"};
	struct mg_error err;

	reset();
	w = wopen("north", 0);
	rcmd("SET %s someone-else PX 60000", LEASE);
	CU_ASSERT_EQUAL(mg_kv_writer_put(w, id_key(key, "north", 256), "k8s:a=b;", &err), 1);
	CU_ASSERT_EQUAL(mg_kv_writer_del(w, key, &err), 1);
	CU_ASSERT_EQUAL(mg_kv_writer_queue_put(w, key, "k8s:a=c;", &c, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_writer_flush(w, &err), 0);
	CU_ASSERT_EQUAL(c.written, 1);
	CU_ASSERT_EQUAL(mg_kv_writer_canaries(w, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_writer_set_plain(w, "plain/a", "1", 0, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_writer_set_plain(w, "plain/b", "2", 60000, &err), 0);
	CU_ASSERT_EQUAL(rcmd("PTTL plain/a"), -1);
	CU_ASSERT(rcmd("PTTL plain/b") > 50000);
	CU_ASSERT_STRING_EQUAL(rstr(buf, sizeof(buf), "GET plain/b"), "2");
	CU_ASSERT_EQUAL(mg_kv_writer_del_plain(w, dels, 2, &err), 2);
	CU_ASSERT_EQUAL(mg_kv_writer_del_plain(w, dels, 0, &err), 0);
	CU_ASSERT_EQUAL(rcmd("XLEN meshgate/log/north"), 3);
	/* Fenced with a token the lease does not hold, then unfenced again. */
	CU_ASSERT_EQUAL(mg_kv_writer_set_fence(w, LEASE, "mine", &err), 0);
	CU_ASSERT_EQUAL(mg_kv_writer_set_plain(w, "plain/a", "1", 0, &err), -ESTALE);
	CU_ASSERT_EQUAL(mg_kv_writer_set_fence(w, NULL, NULL, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_writer_set_plain(w, "plain/a", "1", 0, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_writer_del(w, key, &err), 1);
	mg_kv_writer_close(w);
}

/* mg_kv_writer_del_plain of more keys than one call takes. */
static void
test_del_plain_many(void)
{
	enum {
		N = 2500
	};
	struct mg_kv_writer *w;
	static char names[N][32];
	const char *keys[N];
	struct mg_error err;
	char t[MG_KV_TOKEN_LEN + 1];

	reset();
	w = wopen("north", 0);
	mg_kv_token_new(t, sizeof(t));
	CU_ASSERT_EQUAL(mg_kv_lease_acquire(w, LEASE, t, 60000, NULL, 0, NULL, &err), 1);
	CU_ASSERT_EQUAL(mg_kv_writer_set_fence(w, LEASE, t, &err), 0);
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "many/%d", i);
		keys[i] = names[i];
		if (i % 2 == 0)
			rcmd("SET %s x", names[i]);
	}
	CU_ASSERT_EQUAL(mg_kv_writer_del_plain(w, keys, N, &err), N / 2);
	CU_ASSERT_EQUAL(rcmd("DBSIZE"), 1);
	mg_kv_writer_close(w);
}

#define SCAN_N 10000

struct scan_seen {
	unsigned char seen[SCAN_N];
	unsigned reported, distinct, bad;
	unsigned binary;
	int stop_after;
};

static int
scan_fn(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
	static const char prefix[] = "cilium/cache/ip/v1/scan/";
	struct scan_seen *s = arg;
	char want[32];
	unsigned i;

	s->reported++;
	if (s->stop_after != 0 && (int)s->reported >= s->stop_after)
		return -ECANCELED;
	if (klen == strlen(prefix) + 3 && memcmp(key + strlen(prefix), "bin", 3) == 0) {
		s->binary += vlen == 5 && memcmp(val, "a\0b\0c", 5) == 0;
		return 0;
	}
	if (strlen(key) != klen || strncmp(key, prefix, strlen(prefix)) != 0 ||
	    sscanf(key + strlen(prefix), "%u", &i) != 1 || i >= SCAN_N) {
		s->bad++;
		return 0;
	}
	snprintf(want, sizeof(want), "v%u", i);
	if (vlen != strlen(want) || memcmp(val, want, vlen) != 0)
		s->bad++;
	if (!s->seen[i]++)
		s->distinct++;
	return 0;
}

static int
glob_fn(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
	(void)val;
	(void)vlen;
	(void)klen;
	CU_ASSERT_STRING_EQUAL(key, "g/[x]*?\\/1");
	(*(int *)arg)++;
	return 0;
}

/*
 * scan_values reports exactly the string keys under the prefix with their
 * values: 10k of them, not the keys of other types there, not the keys
 * outside it, nor the keys an unescaped glob would match.
 */
static void
test_scan_values(void)
{
	struct mg_kv_writer *w;
	struct mg_kv_batch_counts c = {0};
	struct scan_seen *s = calloc(1, sizeof(*s));
	char key[64], val[32];
	struct mg_error err;
	int n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	reset();
	w = wopen("north", 1000);
	for (unsigned i = 0; i < SCAN_N; i++) {
		snprintf(key, sizeof(key), "cilium/cache/ip/v1/scan/%u", i);
		snprintf(val, sizeof(val), "v%u", i);
		CU_ASSERT_EQUAL(mg_kv_writer_queue_put(w, key, val, &c, &err), 0);
	}
	CU_ASSERT_EQUAL(mg_kv_writer_flush(w, &err), 0);
	CU_ASSERT_EQUAL(c.written, SCAN_N);
	rcmd("SET cilium/cache/ip/v1/scan2/1 v1");
	rcmd("SET cilium/cache/ip/v1/scan v1");
	rcmd("LPUSH cilium/cache/ip/v1/scan/list x");
	rcmd("HSET cilium/cache/ip/v1/scan/hash f v");
	rcmd("SADD cilium/cache/ip/v1/scan/set m");
	rcmd("SET %b %b", "cilium/cache/ip/v1/scan/bin", (size_t)27, "a\0b\0c", (size_t)5);
	CU_ASSERT_EQUAL(mg_kv_writer_scan_values(w, "cilium/cache/ip/v1/scan/", scan_fn, s, &err),
	                0);
	CU_ASSERT_EQUAL(s->distinct, SCAN_N);
	CU_ASSERT_EQUAL(s->bad, 0);
	CU_ASSERT_EQUAL(s->binary, 1);
	CU_ASSERT(s->reported >= SCAN_N + 1);
	/* fn stops the walk. */
	memset(s, 0, sizeof(*s));
	s->stop_after = 10;
	CU_ASSERT_EQUAL(mg_kv_writer_scan_values(w, "cilium/cache/ip/v1/scan/", scan_fn, s, &err),
	                -ECANCELED);
	CU_ASSERT_EQUAL(s->reported, 10);
	/* Nothing under the prefix. */
	memset(s, 0, sizeof(*s));
	CU_ASSERT_EQUAL(mg_kv_writer_scan_values(w, "nothing/", scan_fn, s, &err), 0);
	CU_ASSERT_EQUAL(s->reported, 0);
	/* Glob characters in the prefix are matched literally. */
	rcmd("SET %s v", "g/[x]*?\\/1");
	rcmd("SET g/xyz/1 v");
	rcmd("SET g/x?\\/1 v");
	CU_ASSERT_EQUAL(mg_kv_writer_scan_values(w, "g/[x]*?\\/", glob_fn, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 1);
	free(s);
	mg_kv_writer_close(w);
}

static CU_TestInfo tests[] = {
        {"token", test_token},
        {"bad_args", test_bad_args},
        {"takeover", test_takeover},
        {"pipeline_steal_flush", test_pipeline_steal_flush},
        {"pipeline_steal_queue", test_pipeline_steal_queue},
        {"unfenced", test_unfenced},
        {"del_plain_many", test_del_plain_many},
        {"scan_values", test_scan_values},
        CU_TEST_INFO_NULL,
};

int
main(int argc, char **argv)
{
	CU_SuiteInfo suites[] = {{"kvlease", NULL, NULL, NULL, NULL, tests}, CU_SUITE_INFO_NULL};
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: %s <redis-port> <meshgate.lua>\n", argv[0]);
		return 2;
	}
	port = atoi(argv[1]);
	lua_path = argv[2];
	R = redisConnect("127.0.0.1", port);
	if (R == NULL || R->err) {
		fprintf(stderr, "cannot connect to redis on port %d\n", port);
		return 1;
	}
	rc = mg_test_run(suites);
	redisFree(R);
	return rc;
}
