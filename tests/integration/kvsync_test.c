/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Integration test of the gateway's sync client (lib/kvstore/mg_kv_sync.c)
 * against a real redis-server: the wrapper kvsync_test.sh starts one on a
 * free loopback port and passes the port and the Function library path.
 * Every write goes through the library (FCALL mg_put / mg_del), exactly as
 * the writers do, except where a test breaks the rules on purpose (raw
 * DEL behind the log's back, a new epoch, a trimmed log).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "mg_kv_sync.h"
#include "mg_test.h"

#define AF4 2
#define AF6 10

static int port;
static const char *lua_path;
static redisContext *R;

static void
rconnect(void)
{
	if (R)
		redisFree(R);
	R = redisConnect("127.0.0.1", port);
	if (R == NULL || R->err) {
		fprintf(stderr, "cannot connect to redis on port %d\n", port);
		exit(1);
	}
}

static long long
rcmd(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(R, fmt, ap);
	va_end(ap);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	if (r->type == REDIS_REPLY_ERROR)
		fprintf(stderr, "redis error: %s\n", r->str);
	CU_ASSERT(r->type != REDIS_REPLY_ERROR);
	long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	freeReplyObject(r);
	return v;
}

static void
load_lib(void)
{
	FILE *f = fopen(lua_path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	rcmd("FUNCTION LOAD REPLACE %s", buf);
}

static void
reset(void)
{
	rcmd("FLUSHALL");
	load_lib();
}

static void
log_key(char *buf, const char *cl)
{
	snprintf(buf, MG_KV_KEY_MAX, "meshgate/log/%s", cl);
}

static void
put(const char *cl, const char *key, const char *val)
{
	char log[MG_KV_KEY_MAX];
	log_key(log, cl);
	rcmd("FCALL mg_put 3 %s %s meshgate/epoch/%s %s 100000 tok-%s", key, log, cl, val, cl);
}

static void
del(const char *cl, const char *key)
{
	char log[MG_KV_KEY_MAX];
	log_key(log, cl);
	rcmd("FCALL mg_del 3 %s %s meshgate/epoch/%s 100000 tok-%s", key, log, cl, cl);
}

static void
cfg(const char *cl, unsigned id, bool cached)
{
	rcmd("SET cilium/cluster-config/%s {\"id\":%u,\"capabilities\":{\"syncedCanaries\":true,"
	     "\"cached\":%s,\"maxConnectedClusters\":255}}",
	     cl, id, cached ? "true" : "false");
	const char *p1 = cached ? MG_KV_CACHE_IDENTITIES : MG_KV_STATE_IDENTITIES;
	const char *p2 = cached ? MG_KV_CACHE_IP : MG_KV_STATE_IP;
	rcmd("SET cilium/synced/%s/%s 2026-01-01T00:00:00Z", cl, p1);
	rcmd("SET cilium/synced/%s/%s 2026-01-01T00:00:00Z", cl, p2);
}

/* Identity key/value of cluster @cl (east: state scope; others: cache). */
static void
put_id(const char *cl, uint32_t id)
{
	char key[MG_KV_KEY_MAX], val[128];
	bool state = strcmp(cl, "east") == 0;
	mg_kv_identity_key(key, sizeof(key), state ? MG_KV_SCOPE_STATE : MG_KV_SCOPE_CACHE, cl, id);
	snprintf(val, sizeof(val), "k8s:app=a%u;k8s:io.cilium.k8s.policy.cluster=%s;", id, cl);
	put(cl, key, val);
}

static void
ip_key(char *key, const char *cl, const char *pfx)
{
	struct mg_ipcache_entry e;
	memset(&e, 0, sizeof(e));
	CU_ASSERT_FATAL(mg_ipcache_parse_prefix(pfx, &e) == 0);
	bool host = strchr(pfx, '/') == NULL;
	bool state = strcmp(cl, "east") == 0;
	CU_ASSERT_FATAL(mg_kv_ip_key(key, MG_KV_KEY_MAX,
	                             state ? MG_KV_SCOPE_STATE : MG_KV_SCOPE_CACHE, cl, &e,
	                             host) > 0);
}

static void
put_ip(const char *cl, const char *pfx, uint32_t id)
{
	char key[MG_KV_KEY_MAX];
	struct mg_kv_ip_pair p;
	memset(&p, 0, sizeof(p));
	CU_ASSERT_FATAL(mg_ipcache_parse_prefix(pfx, &p.prefix) == 0);
	p.host_route = strchr(pfx, '/') == NULL;
	p.prefix.identity = id;
	ip_key(key, cl, pfx);
	char *json = mg_kv_ip_pair_encode(&p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	put(cl, key, json);
	free(json);
}

static void
del_ip(const char *cl, const char *pfx)
{
	char key[MG_KV_KEY_MAX];
	ip_key(key, cl, pfx);
	del(cl, key);
}

/* Identity the ipcache holds for exactly @pfx (0: none), and its cluster. */
static uint32_t
ipc_get(struct mg_ipcache *ipc, const char *pfx, unsigned *cid)
{
	struct mg_ipcache_entry e, out;
	memset(&e, 0, sizeof(e));
	if (mg_ipcache_parse_prefix(pfx, &e) < 0)
		return 0;
	if (mg_ipcache_get(ipc, e.family, e.addr, e.plen, &out) < 0)
		return 0;
	if (cid)
		*cid = out.cluster_id;
	return out.identity;
}

struct fx {
	struct mg_identity_table *ids;
	struct mg_ipcache *ipc;
	struct mg_kv_sync *s;
	uint32_t *changed;
	size_t n_changed;
};

/* Removal grace of the next fx_open, in ms. */
static unsigned fx_grace = 60000;

/* Heartbeat timeout of the next fx_open, in ms (0: not checked). */
static unsigned fx_heartbeat;

/* Base layer of the next fx_open (test_base_layer), or NULL. */
static int (*fx_base)(void *arg, const struct mg_ipcache_entry *prefix,
                      struct mg_ipcache_entry *out);

static void
fx_open(struct fx *f, double share)
{
	static const struct mg_kv_sync_cluster_params cls[] = {
	        {"east", true}, {"west", false}, {"north", false}};
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
	struct mg_kv_sync_params p = {
	        .url = url,
	        .n_clusters = 3,
	        .clusters = cls,
	        .block_ms = 20,
	        .verify_ms = 1,
	        .backoff_max_ms = 200,
	        .max_delete_share = share,
	        .removal_grace_ms = fx_grace,
	        .heartbeat_timeout_ms = fx_heartbeat,
	        .base = fx_base,
	};
	struct mg_ipcache_params ip = {.entries_hint = 1024};
	struct mg_error err;
	memset(f, 0, sizeof(*f));
	f->ids = mg_identity_table_create(MG_CLUSTER_MODE_255);
	f->ipc = mg_ipcache_create(&ip);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->ids);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->ipc);
	f->s = mg_kv_sync_create(&p, f->ids, f->ipc, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->s);
}

static void
fx_close(struct fx *f)
{
	mg_kv_sync_free(f->s);
	mg_ipcache_free(f->ipc);
	mg_identity_table_free(f->ids);
	free(f->changed);
}

static int
fx_initial(struct fx *f, unsigned ms, struct mg_error *err)
{
	int rc = mg_kv_sync_initial(f->s, ms, &f->changed, &f->n_changed, err);
	/* The client leaves its batch staged; no workers here: plain commit. */
	CU_ASSERT(mg_ipcache_commit(f->ipc) >= 0);
	return rc;
}

static struct mg_kv_sync_stats
st(struct fx *f, size_t i)
{
	struct mg_kv_sync_stats x;
	memset(&x, 0, sizeof(x));
	mg_kv_sync_stats(f->s, i, &x);
	return x;
}

/* Poll a few times (each blocks at most block_ms), committing each batch. */
static void
polls(struct fx *f, int n)
{
	for (int i = 0; i < n; i++) {
		mg_kv_sync_poll(f->s, &f->changed, &f->n_changed);
		CU_ASSERT(mg_ipcache_commit(f->ipc) >= 0);
	}
}

static bool
changed_has(const struct fx *f, uint32_t id)
{
	for (size_t i = 0; i < f->n_changed; i++)
		if (f->changed[i] == id)
			return true;
	return false;
}

/* Three clusters: east (local, id 1, state keys), west (2), north (3). */
static void
seed(void)
{
	reset();
	cfg("east", 1, false);
	cfg("west", 2, true);
	cfg("north", 3, true);
	put_id("east", 70000);
	put_ip("east", "10.0.1.1", 70000);
	put_ip("east", "fd00::1", 70000);
	put_ip("east", "192.168.0.0/24", 70000);
	put_id("west", 131080);
	put_ip("west", "10.1.0.5", 131080);
	put_ip("west", "fd00:1::5", 131080);
	put_id("north", 196700);
	put_ip("north", "10.2.0.7", 196700);
}

static void
test_cold_sync(void)
{
	struct fx f;
	struct mg_error err;
	unsigned cid = 0;
	seed();
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL(fx_initial(&f, 3000, &err), 0);
	CU_ASSERT(mg_kv_sync_all_synced(f.s));
	const struct mg_identity *id = mg_identity_table_get(f.ids, 131080);
	CU_ASSERT_PTR_NOT_NULL(id);
	CU_ASSERT(id && id->cluster_id == 2);
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(f.ids, 70000));
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(f.ids, 196700));
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.1", &cid), 70000);
	CU_ASSERT_EQUAL(cid, 1);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "fd00::1", NULL), 70000);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "192.168.0.0/24", NULL), 70000);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", &cid), 131080);
	CU_ASSERT_EQUAL(cid, 2);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "fd00:1::5", NULL), 131080);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.7", NULL), 196700);
	CU_ASSERT_EQUAL(mg_ipcache_count(f.ipc, 0), 6);
	CU_ASSERT(changed_has(&f, 70000) && changed_has(&f, 131080) && changed_has(&f, 196700));
	struct mg_kv_sync_stats w = st(&f, 1);
	CU_ASSERT(w.synced && w.connected && w.present);
	CU_ASSERT_EQUAL(w.cluster_id, 2);
	CU_ASSERT_EQUAL(w.entries, 3);
	CU_ASSERT_EQUAL(w.full_syncs, 1);
	fx_close(&f);
}

static void
test_canary_wait(void)
{
	struct fx f;
	struct mg_error err;
	seed();
	rcmd("DEL cilium/synced/north/%s", MG_KV_CACHE_IP);
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL(fx_initial(&f, 300, &err), -ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "north"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "waiting"));
	CU_ASSERT(st(&f, 0).synced && st(&f, 1).synced && !st(&f, 2).synced);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.7", NULL), 0);
	/* The canary appears: the next verification syncs north. */
	rcmd("SET cilium/synced/north/%s 2026-01-01T00:00:00Z", MG_KV_CACHE_IP);
	polls(&f, 3);
	CU_ASSERT(st(&f, 2).synced);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.7", NULL), 196700);
	fx_close(&f);
}

static void
test_incremental(void)
{
	struct fx f;
	struct mg_error err;
	seed();
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	free(f.changed);
	f.changed = NULL;
	f.n_changed = 0;
	put_id("west", 131090);
	put_ip("west", "10.1.0.6", 131090);
	put_ip("west", "fd00:1::6", 131090);
	del_ip("west", "10.1.0.5");
	del_ip("east", "fd00::1");
	polls(&f, 5);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.6", NULL), 131090);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "fd00:1::6", NULL), 131090);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "fd00::1", NULL), 0);
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(f.ids, 131090));
	CU_ASSERT(changed_has(&f, 131090));
	/* Deleting an identity removes it and reports it. */
	char key[MG_KV_KEY_MAX];
	mg_kv_identity_key(key, sizeof(key), MG_KV_SCOPE_CACHE, "west", 131090);
	del("west", key);
	polls(&f, 3);
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, 131090));
	struct mg_kv_sync_stats w = st(&f, 1);
	CU_ASSERT_EQUAL(w.events, 5);
	CU_ASSERT_EQUAL(w.full_syncs, 1); /* no resync for plain changes */
	for (int c = 0; c < MG_KV_RESYNC_N; c++)
		CU_ASSERT_EQUAL(w.resyncs[c], 0);
	fx_close(&f);
}

static void
test_trimmed(void)
{
	struct fx f;
	struct mg_error err;
	seed();
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	/* Changes the gateway has not read, then the log is cut past them. */
	put_ip("west", "10.1.0.9", 131080);
	put_ip("west", "10.1.0.10", 131080);
	rcmd("XTRIM meshgate/log/west MAXLEN 0");
	polls(&f, 3);
	struct mg_kv_sync_stats w = st(&f, 1);
	CU_ASSERT_EQUAL(w.resyncs[MG_KV_RESYNC_TRIMMED], 1);
	CU_ASSERT_EQUAL(w.resyncs[MG_KV_RESYNC_EPOCH], 0);
	CU_ASSERT_EQUAL(w.full_syncs, 2);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.9", NULL), 131080);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.10", NULL), 131080);
	/* Other clusters were not resynced. */
	CU_ASSERT_EQUAL(st(&f, 0).full_syncs, 1);
	fx_close(&f);
}

static void
test_epoch(void)
{
	struct fx f;
	struct mg_error err;
	seed();
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	/* The log is recreated (new epoch) with a key changed behind it. */
	char key[MG_KV_KEY_MAX];
	ip_key(key, "north", "10.2.0.8");
	rcmd("DEL meshgate/log/north");
	rcmd("SET %s {\"IP\":\"10.2.0.8\",\"Mask\":null,\"HostIP\":\"\",\"ID\":196700,\"Key\":0,"
	     "\"Metadata\":\"\"}",
	     key);
	rcmd("SET meshgate/epoch/north new-epoch");
	polls(&f, 3);
	struct mg_kv_sync_stats n = st(&f, 2);
	CU_ASSERT_EQUAL(n.resyncs[MG_KV_RESYNC_EPOCH], 1);
	CU_ASSERT_EQUAL(n.full_syncs, 2);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.8", NULL), 196700);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.7", NULL), 196700);
	fx_close(&f);
}

static void
test_garbage(void)
{
	struct fx f;
	struct mg_error err;
	char key[MG_KV_KEY_MAX];
	seed();
	ip_key(key, "east", "10.0.1.2");
	put("east", key, "not json");
	ip_key(key, "east", "10.0.1.3");
	/* the value names another address than the key */
	put("east", key,
	    "{\"IP\":\"10.0.1.4\",\"Mask\":null,\"HostIP\":\"\",\"ID\":70000,\"Key\":0,"
	    "\"Metadata\":\"\"}");
	mg_kv_identity_key(key, sizeof(key), MG_KV_SCOPE_STATE, "east", 70001);
	put("east", key, "k8s:a=b;;");
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	struct mg_kv_sync_stats e = st(&f, 0);
	CU_ASSERT_EQUAL(e.rejected_parse, 3);
	CU_ASSERT_EQUAL(e.entries, 4);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.1", NULL), 70000);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.2", NULL), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.3", NULL), 0);
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, 70001));
	/* Garbage through the log: counted; the key's old value is dropped. */
	ip_key(key, "east", "10.0.1.1");
	put("east", key, "{\"IP\":");
	put_ip("east", "10.0.1.5", 70000);
	polls(&f, 3);
	e = st(&f, 0);
	CU_ASSERT_EQUAL(e.rejected_parse, 4);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.1", NULL), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.5", NULL), 70000);
	fx_close(&f);
}

static void
test_range_and_host(void)
{
	struct fx f;
	struct mg_error err;
	seed();
	put_id("west", 5000);                /* outside west's 131072..196607 */
	put_ip("west", "10.1.0.20", 196700); /* north's identity in west's data */
	put_ip("west", "10.1.0.21", 1);      /* host -> remote-node */
	put_ip("east", "10.0.1.21", 1);      /* local host stays host */
	put_ip("west", "10.1.0.22", 2);      /* reserved world is fine */
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	struct mg_kv_sync_stats w = st(&f, 1);
	CU_ASSERT_EQUAL(w.rejected_range, 2);
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, 5000));
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.20", NULL), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.21", NULL), MG_ID_REMOTE_NODE);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.21", NULL), MG_ID_HOST);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.22", NULL), MG_ID_WORLD);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	fx_close(&f);
}

static void
test_conflict(void)
{
	struct fx f;
	struct mg_error err;
	unsigned cid = 0;
	seed();
	put_ip("north", "10.9.9.9", 196700);
	put_ip("west", "10.9.9.9", 131080);
	put_ip("east", "10.9.9.9", 70000);
	put_ip("north", "10.8.8.8", 196700);
	put_ip("west", "10.8.8.8", 131080);
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.9.9.9", &cid), 70000); /* local first */
	CU_ASSERT_EQUAL(cid, 1);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.8.8.8", &cid), 131080); /* lowest id */
	CU_ASSERT_EQUAL(cid, 2);
	uint64_t total = st(&f, 0).conflicts + st(&f, 1).conflicts + st(&f, 2).conflicts;
	CU_ASSERT(total >= 2);
	/* The winner leaves: the next in order takes over, then the last. */
	del_ip("east", "10.9.9.9");
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.9.9.9", &cid), 131080);
	del_ip("west", "10.9.9.9");
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.9.9.9", &cid), 196700);
	CU_ASSERT_EQUAL(cid, 3);
	/* A new claim by the local cluster wins at once. */
	put_ip("east", "10.8.8.8", 70000);
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.8.8.8", NULL), 70000);
	CU_ASSERT(st(&f, 0).conflicts >= 1);
	fx_close(&f);
}

static void
test_mass_delete(void)
{
	struct fx f;
	struct mg_error err;
	char key[MG_KV_KEY_MAX];
	seed();
	for (int i = 0; i < 10; i++) {
		char pfx[32];
		snprintf(pfx, sizeof(pfx), "10.3.0.%d", i);
		put_ip("west", pfx, 131080);
	}
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	CU_ASSERT_EQUAL(st(&f, 1).entries, 13);
	/* Most keys vanish behind the log's back and the epoch changes. */
	for (int i = 0; i < 10; i++) {
		char pfx[32];
		snprintf(pfx, sizeof(pfx), "10.3.0.%d", i);
		ip_key(key, "west", pfx);
		rcmd("DEL %s", key);
	}
	rcmd("SET meshgate/epoch/west other");
	polls(&f, 3);
	struct mg_kv_sync_stats w = st(&f, 1);
	CU_ASSERT(w.mass_delete_refusals >= 1);
	CU_ASSERT(w.refused);
	CU_ASSERT_EQUAL(w.entries, 13);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.3.0.4", NULL), 131080); /* kept */
	/* Other clusters keep tailing meanwhile. */
	put_ip("north", "10.2.0.50", 196700);
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.50", NULL), 196700);
	/* Its config goes too: lost data, never a removal; nothing changes. */
	rcmd("DEL cilium/cluster-config/west");
	polls(&f, 3);
	w = st(&f, 1);
	CU_ASSERT_EQUAL(w.entries, 13);
	CU_ASSERT(!w.present && w.stale);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.3.0.4", NULL), 131080);
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(f.ids, 131080));
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.7", NULL), 196700);
	fx_close(&f);
}

/* The local cluster's resyncs are guarded too. */
static void
test_mass_delete_local(void)
{
	struct fx f;
	struct mg_error err;
	char key[MG_KV_KEY_MAX];
	seed();
	for (int i = 0; i < 10; i++) {
		char pfx[32];
		snprintf(pfx, sizeof(pfx), "10.0.3.%d", i);
		put_ip("east", pfx, 70000);
	}
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	CU_ASSERT_EQUAL(st(&f, 0).entries, 14);
	for (int i = 0; i < 10; i++) {
		char pfx[32];
		snprintf(pfx, sizeof(pfx), "10.0.3.%d", i);
		ip_key(key, "east", pfx);
		rcmd("DEL %s", key);
	}
	rcmd("SET meshgate/epoch/east other");
	polls(&f, 3);
	struct mg_kv_sync_stats e = st(&f, 0);
	CU_ASSERT(e.mass_delete_refusals >= 1);
	CU_ASSERT(e.refused && e.stale);
	CU_ASSERT_EQUAL(e.stale_reason, MG_KV_STALE_REFUSED);
	CU_ASSERT_EQUAL(e.entries, 14);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.3.4", NULL), 70000);
	fx_close(&f);
}

/*
 * A deleted cluster config, FLUSHALL, an empty server: lost data. The
 * gateway keeps its last good state (fail-static), says the cluster is
 * stale and why, stops tailing it, and resyncs once the data is back.
 */
static void
test_config_deleted_keeps_state(void)
{
	struct fx f;
	struct mg_error err;
	seed();
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	rcmd("DEL cilium/cluster-config/west");
	polls(&f, 3);
	struct mg_kv_sync_stats w = st(&f, 1);
	CU_ASSERT(w.stale && !w.present && w.synced && !w.removed && !w.removing);
	CU_ASSERT_EQUAL(w.stale_reason, MG_KV_STALE_NO_CONFIG);
	CU_ASSERT(w.stale_since > 1700000000u);
	CU_ASSERT_PTR_NOT_NULL(strstr(w.why, "cilium/cluster-config/west"));
	CU_ASSERT_EQUAL(w.entries, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(f.ids, 131080));
	CU_ASSERT(mg_kv_sync_all_synced(f.s));
	/* Not tailed while stale: a change now waits for the resync. */
	put_ip("west", "10.1.0.30", 131080);
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.30", NULL), 0);
	/* The other clusters go on. */
	put_ip("north", "10.2.0.30", 196700);
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.30", NULL), 196700);
	CU_ASSERT(!st(&f, 2).stale);
	/* The config is back: resynced (cause config), up to date again. */
	cfg("west", 2, true);
	polls(&f, 3);
	w = st(&f, 1);
	CU_ASSERT(!w.stale && w.present && w.synced);
	CU_ASSERT_EQUAL(w.stale_since, 0);
	CU_ASSERT_EQUAL(w.resyncs[MG_KV_RESYNC_CONFIG], 1);
	CU_ASSERT_EQUAL(w.full_syncs, 2);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.30", NULL), 131080);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	fx_close(&f);
}

static void
test_flushall_keeps_state(void)
{
	struct fx f;
	struct mg_error err;
	seed();
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	size_t before = mg_ipcache_count(f.ipc, 0);
	rcmd("FLUSHALL");
	polls(&f, 4);
	for (size_t i = 0; i < 3; i++) {
		struct mg_kv_sync_stats x = st(&f, i);
		CU_ASSERT(x.stale && x.synced && x.connected);
		CU_ASSERT_EQUAL(x.stale_reason, MG_KV_STALE_NO_CONFIG);
	}
	CU_ASSERT_EQUAL(mg_ipcache_count(f.ipc, 0), before);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.1", NULL), 70000); /* the local cluster too */
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(f.ids, 70000));
	/* Only the configs come back, no data: the guard keeps the state. */
	cfg("east", 1, false);
	cfg("west", 2, true);
	cfg("north", 3, true);
	polls(&f, 4);
	CU_ASSERT(st(&f, 1).stale && st(&f, 1).refused);
	CU_ASSERT_EQUAL(st(&f, 1).stale_reason, MG_KV_STALE_REFUSED);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	/* The data is written again (a replicator's or an import's resync). */
	load_lib();
	put_id("east", 70000);
	put_ip("east", "10.0.1.1", 70000);
	put_ip("east", "fd00::1", 70000);
	put_ip("east", "192.168.0.0/24", 70000);
	put_id("west", 131080);
	put_ip("west", "10.1.0.5", 131080);
	put_ip("west", "fd00:1::5", 131080);
	put_id("north", 196700);
	put_ip("north", "10.2.0.8", 196700); /* 10.2.0.7 is gone for real */
	polls(&f, 4);
	for (size_t i = 0; i < 3; i++)
		CU_ASSERT(!st(&f, i).stale && st(&f, i).synced);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.8", NULL), 196700);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.7", NULL), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	fx_close(&f);
}

static void
ms_sleep(unsigned ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/*
 * The removal marker: the state goes after the grace period, as one batch
 * (identities and entries, the changed list names the identities);
 * a marker that goes before the end cancels the removal; with the marker
 * gone and the config there, the cluster comes back.
 */
static void
test_removal_marker(void)
{
	struct fx f;
	struct mg_error err;
	seed();
	put_ip("north", "10.1.0.5", 196700); /* west's prefix: north takes over */
	fx_grace = 400;
	fx_open(&f, 0.5);
	fx_grace = 60000;
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	/* A marker that goes before the grace period ends. */
	rcmd("SET meshgate/removed/west 2026-12-01T00:00:00Z");
	polls(&f, 2);
	CU_ASSERT(st(&f, 1).removing);
	CU_ASSERT(st(&f, 1).removal_at > 1700000000u);
	rcmd("DEL meshgate/removed/west");
	polls(&f, 2);
	CU_ASSERT(!st(&f, 1).removing);
	ms_sleep(500);
	polls(&f, 2);
	CU_ASSERT_EQUAL(st(&f, 1).removals, 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	/* A drain: the marker, and the config goes. Kept during the grace. */
	rcmd("SET meshgate/removed/west 2026-12-01T00:00:00Z");
	rcmd("DEL cilium/cluster-config/west");
	polls(&f, 2);
	CU_ASSERT(st(&f, 1).removing && st(&f, 1).stale);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	ms_sleep(500);
	free(f.changed);
	f.changed = NULL;
	f.n_changed = 0;
	polls(&f, 2);
	struct mg_kv_sync_stats w = st(&f, 1);
	CU_ASSERT(w.removed && !w.removing && !w.synced && !w.stale);
	CU_ASSERT_EQUAL(w.removals, 1);
	CU_ASSERT_EQUAL(w.entries, 0);
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, 131080));
	CU_ASSERT(changed_has(&f, 131080));
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "fd00:1::5", NULL), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 196700); /* north's now */
	CU_ASSERT(mg_kv_sync_all_synced(f.s));
	CU_ASSERT_EQUAL(st(&f, 2).entries, 3);
	/* An operator's resync does not bring it back while the marker is there. */
	mg_kv_sync_request_resync(f.s, MG_KV_RESYNC_OPERATOR);
	cfg("west", 2, true);
	polls(&f, 3);
	CU_ASSERT(st(&f, 1).removed);
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, 131080));
	CU_ASSERT_EQUAL(st(&f, 0).resyncs[MG_KV_RESYNC_OPERATOR], 1);
	/* The marker goes, the config is there: synced anew. */
	rcmd("DEL meshgate/removed/west");
	polls(&f, 3);
	w = st(&f, 1);
	CU_ASSERT(w.synced && !w.removed);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "fd00:1::5", NULL), 131080);
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(f.ids, 131080));
	fx_close(&f);
}

/* A cluster whose marker is there at start holds nothing: the start does not wait for it. */
static void
test_removed_at_start(void)
{
	struct fx f;
	struct mg_error err;
	seed();
	rcmd("SET meshgate/removed/north x");
	rcmd("DEL cilium/cluster-config/north");
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL(fx_initial(&f, 2000, &err), 0);
	CU_ASSERT(st(&f, 2).removed && !st(&f, 2).synced);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.7", NULL), 0);
	CU_ASSERT(st(&f, 1).synced);
	fx_close(&f);
}

/* A reload's cluster list: a cluster that left goes at once; a new one syncs. */
static void
test_reconfigure(void)
{
	static const struct mg_kv_sync_cluster_params cls[] = {
	        {"east", true, 0}, {"north", false, 0}, {"south", false, 0}};
	struct mg_kv_sync_params p = {.n_clusters = 3, .clusters = cls, .max_delete_share = 0.5};
	struct fx f;
	struct mg_error err;
	seed();
	cfg("south", 4, true);
	put_id("south", 262200);
	put_ip("south", "10.4.0.1", 262200);
	put_ip("south", "10.1.0.5", 262200); /* west's prefix */
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	free(f.changed);
	f.changed = NULL;
	f.n_changed = 0;
	CU_ASSERT_EQUAL(mg_kv_sync_reconfigure(f.s, &p, &f.changed, &f.n_changed, &err), 0);
	/* west's state is gone, staged like a poll's batch */
	CU_ASSERT(mg_ipcache_pending(f.ipc) > 0);
	CU_ASSERT(mg_ipcache_commit(f.ipc) >= 0);
	CU_ASSERT(changed_has(&f, 131080));
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, 131080));
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 0);
	CU_ASSERT_EQUAL(mg_kv_sync_n_clusters(f.s), 3);
	CU_ASSERT_STRING_EQUAL(st(&f, 1).name, "north");
	CU_ASSERT(st(&f, 1).synced && st(&f, 1).entries == 2); /* kept its copy */
	CU_ASSERT_EQUAL(st(&f, 1).full_syncs, 1);
	CU_ASSERT(!st(&f, 2).synced);
	polls(&f, 3);
	CU_ASSERT(st(&f, 2).synced);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.4.0.1", NULL), 262200);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 262200);
	/* Bad lists change nothing. */
	struct mg_kv_sync_cluster_params dup[] = {{"east", true, 0}, {"east", false, 0}};
	p.clusters = dup;
	p.n_clusters = 2;
	CU_ASSERT_EQUAL(mg_kv_sync_reconfigure(f.s, &p, &f.changed, &f.n_changed, &err), -EINVAL);
	CU_ASSERT_EQUAL(mg_kv_sync_n_clusters(f.s), 3);
	fx_close(&f);
}

/*
 * Identities of another cluster, as Cilium's validators see them: the
 * cluster label must name the cluster (source k8s), remote identities must
 * carry it; ranges hold for the local cluster too.
 */
static void
test_cluster_label_and_local_range(void)
{
	struct fx f;
	struct mg_error err;
	char key[MG_KV_KEY_MAX];
	seed();
	mg_kv_identity_key(key, sizeof(key), MG_KV_SCOPE_CACHE, "west", 131081);
	put("west", key, "k8s:app=x;k8s:io.cilium.k8s.policy.cluster=north;");
	mg_kv_identity_key(key, sizeof(key), MG_KV_SCOPE_CACHE, "west", 131082);
	put("west", key, "k8s:app=y;");
	mg_kv_identity_key(key, sizeof(key), MG_KV_SCOPE_CACHE, "west", 131083);
	put("west", key, "k8s:app=z;unspec:io.cilium.k8s.policy.cluster=west;");
	mg_kv_identity_key(key, sizeof(key), MG_KV_SCOPE_STATE, "east", 70001);
	put("east", key, "k8s:app=w;k8s:io.cilium.k8s.policy.cluster=west;");
	mg_kv_identity_key(key, sizeof(key), MG_KV_SCOPE_STATE, "east", 70002);
	put("east", key, "k8s:app=v;");          /* local: the label may be missing */
	put_ip("east", "10.0.1.40", 13107457);   /* cluster 200's identity in east's data */
	put_ip("east", "10.0.7.0/24", 16777300); /* local-scope: the local cluster's own */
	put_ip("west", "10.1.7.0/24", 16777300); /* ... never a remote one's */
	mg_kv_identity_key(key, sizeof(key), MG_KV_SCOPE_STATE, "east", 16777301);
	put("east", key, "cidr:10.0.0.0/8=;reserved:world=;"); /* no identity key for it */
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	struct mg_kv_sync_stats e = st(&f, 0), w = st(&f, 1);
	CU_ASSERT_EQUAL(w.rejected_cluster, 3);
	CU_ASSERT_EQUAL(e.rejected_cluster, 1);
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, 131081));
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, 131082));
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, 131083));
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, 70001));
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(f.ids, 70002));
	CU_ASSERT_EQUAL(e.rejected_range, 2);
	CU_ASSERT_EQUAL(w.rejected_range, 1);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.40", NULL), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.7.0/24", NULL), 16777300);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.7.0/24", NULL), 0);
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, 16777301));
	fx_close(&f);
}

/* Configs the gateway refuses: another id than its own, another mode,
 * a duplicate id, two clusters on the single-cluster layout. */
static void
test_bad_cluster_configs(void)
{
	static const struct mg_kv_sync_cluster_params cls[] = {
	        {"east", true, 9}, {"west", false, 0}, {"north", false, 0}};
	char url[64];
	struct mg_kv_sync_params p = {.url = url,
	                              .n_clusters = 3,
	                              .clusters = cls,
	                              .block_ms = 20,
	                              .verify_ms = 1,
	                              .max_delete_share = 0.5};
	struct mg_ipcache_params ip = {.entries_hint = 64};
	struct mg_identity_table *ids = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_ipcache *ipc = mg_ipcache_create(&ip);
	struct mg_error err;
	struct mg_kv_sync_stats x;

	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
	seed();
	rcmd("SET cilium/cluster-config/north {\"id\":2,\"capabilities\":{\"cached\":true}}");
	struct mg_kv_sync *s = mg_kv_sync_create(&p, ids, ipc, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(mg_kv_sync_initial(s, 300, NULL, NULL, &err), -ETIMEDOUT);
	mg_ipcache_commit(ipc);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "says id 1, the gateway's configuration 9"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cluster id 2 is cluster west's"));
	mg_kv_sync_stats(s, 1, &x);
	CU_ASSERT(x.synced);
	mg_kv_sync_stats(s, 0, &x);
	CU_ASSERT(!x.synced);
	CU_ASSERT_EQUAL(ipc_get(ipc, "10.0.1.1", NULL), 0);
	mg_kv_sync_free(s);

	/*
	 * maxConnectedClusters 511 against a 255 gateway: Cilium compares it
	 * only when its own is not 255 (ValidateRemoteConfig), the id must
	 * fit 255 (ValidateClusterID); two state layouts are refused.
	 */
	static const struct mg_kv_sync_cluster_params cls2[] = {
	        {"east", true, 0}, {"west", false, 0}, {"north", false, 0}};
	p.clusters = cls2;
	seed();
	rcmd("SET cilium/cluster-config/north {\"id\":3,\"capabilities\":{\"cached\":true,"
	     "\"syncedCanaries\":true,\"maxConnectedClusters\":511}}");
	rcmd("SET cilium/cluster-config/west {\"id\":2}");
	s = mg_kv_sync_create(&p, ids, ipc, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(mg_kv_sync_initial(s, 300, NULL, NULL, &err), -ETIMEDOUT);
	mg_ipcache_commit(ipc);
	CU_ASSERT_PTR_NULL(strstr(err.msg, "maxConnectedClusters"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "single-cluster layout"));
	mg_kv_sync_stats(s, 0, &x);
	CU_ASSERT(!x.synced);
	mg_kv_sync_stats(s, 1, &x);
	CU_ASSERT(!x.synced);
	mg_kv_sync_stats(s, 2, &x);
	CU_ASSERT(x.synced);
	mg_kv_sync_free(s);
	/* An id beyond the mesh's 255 clusters. */
	seed();
	rcmd("SET cilium/cluster-config/north {\"id\":300,\"capabilities\":{\"cached\":true,"
	     "\"maxConnectedClusters\":511}}");
	s = mg_kv_sync_create(&p, ids, ipc, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(mg_kv_sync_initial(s, 300, NULL, NULL, &err), -ETIMEDOUT);
	mg_ipcache_commit(ipc);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "id 300, beyond the 255 clusters"));
	mg_kv_sync_free(s);
	mg_ipcache_free(ipc);
	mg_identity_table_free(ids);
}

/*
 * docs/reliability.md, "Limits": the sync takes MG_KV_SYNC_MAX_CLUSTERS
 * clusters at most (the config refuses more first; this is the library's
 * own guard). One more: refused before anything connects.
 */
static void
test_too_many_clusters(void)
{
	struct mg_kv_sync_cluster_params *cls = calloc(MG_KV_SYNC_MAX_CLUSTERS + 1, sizeof(*cls));
	char(*names)[16] = calloc(MG_KV_SYNC_MAX_CLUSTERS + 1, sizeof(*names));
	struct mg_ipcache_params ip = {.entries_hint = 64};
	struct mg_identity_table *ids = mg_identity_table_create(MG_CLUSTER_MODE_511);
	struct mg_ipcache *ipc = mg_ipcache_create(&ip);
	struct mg_kv_sync_params p = {.url = "redis://127.0.0.1:1",
	                              .n_clusters = MG_KV_SYNC_MAX_CLUSTERS + 1,
	                              .block_ms = 20,
	                              .verify_ms = 1,
	                              .max_delete_share = 0.5};
	struct mg_error err = {{0}};
	struct mg_kv_sync *s;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cls);
	CU_ASSERT_PTR_NOT_NULL_FATAL(names);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	for (unsigned i = 0; i <= MG_KV_SYNC_MAX_CLUSTERS; i++) {
		snprintf(names[i], sizeof(names[i]), "r%u", i + 1);
		cls[i].name = names[i];
	}
	p.clusters = cls;
	s = mg_kv_sync_create(&p, ids, ipc, &err);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "kv sync: 512 clusters (1 to 511)"));
	mg_kv_sync_free(s);
	mg_ipcache_free(ipc);
	mg_identity_table_free(ids);
	free(names);
	free(cls);
}

/* A value that is not a label string (10 MB of 'k') is refused and counted. */
static void
test_huge_identity_value(void)
{
	struct fx f;
	struct mg_error err;
	char key[MG_KV_KEY_MAX];
	size_t n = 10u << 20;
	char *big = malloc(n + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'k', n);
	big[n] = '\0';
	seed();
	mg_kv_identity_key(key, sizeof(key), MG_KV_SCOPE_CACHE, "west", 131099);
	rcmd("SET %s %s", key, big);
	free(big);
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	CU_ASSERT_EQUAL(st(&f, 1).rejected_parse, 1);
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, 131099));
	fx_close(&f);
}

/*
 * As many clusters as Cilium's mesh holds (255): every one synced, each
 * entry where it belongs. (Start-up time at 1,000 entries each is a
 * benchmark: meshgate-bench kvsync --clusters 255.)
 */
static void
test_255_clusters(void)
{
	enum {
		NCL = 255,
		PER = 8
	};
	static struct mg_kv_sync_cluster_params cls[NCL];
	static char names[NCL][16];
	char url[64];
	struct mg_kv_sync_params p = {.url = url,
	                              .n_clusters = NCL,
	                              .clusters = cls,
	                              .block_ms = 20,
	                              .verify_ms = 1,
	                              .max_delete_share = 0.5};
	struct mg_ipcache_params ip = {.entries_hint = NCL * PER};
	struct mg_identity_table *ids = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_ipcache *ipc = mg_ipcache_create(&ip);
	struct mg_error err;

	reset();
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
	for (unsigned c = 1; c <= NCL; c++) {
		snprintf(names[c - 1], sizeof(names[c - 1]), "c%03u", c);
		cls[c - 1] =
		        (struct mg_kv_sync_cluster_params){names[c - 1], c == 1, c == 1 ? 1 : 0};
		cfg(names[c - 1], c, true);
		put_id(names[c - 1], (c << 16) | 1000);
		for (unsigned i = 0; i < PER; i++) {
			char pfx[32];
			snprintf(pfx, sizeof(pfx), "10.%u.%u.%u", c, i / 250, i % 250 + 1);
			put_ip(names[c - 1], pfx, (c << 16) | 1000);
		}
	}
	struct mg_kv_sync *s = mg_kv_sync_create(&p, ids, ipc, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(mg_kv_sync_initial(s, 60000, NULL, NULL, &err), 0);
	CU_ASSERT(mg_ipcache_commit(ipc) >= 0);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, 0), NCL * PER);
	CU_ASSERT_EQUAL(mg_identity_table_count(ids), NCL + MG_ID_RESERVED_MAX);
	for (size_t i = 0; i < NCL; i++) {
		struct mg_kv_sync_stats x;
		mg_kv_sync_stats(s, i, &x);
		CU_ASSERT(x.synced && x.entries == PER + 1 && x.rejected_range == 0 &&
		          x.conflicts == 0);
	}
	unsigned cid = 0;
	CU_ASSERT_EQUAL(ipc_get(ipc, "10.200.0.1", &cid), (200u << 16) | 1000);
	CU_ASSERT_EQUAL(cid, 200);
	/* Tailing all of them at once. */
	char key[MG_KV_KEY_MAX];
	ip_key(key, "c255", "10.255.9.9");
	put_ip("c255", "10.255.9.9", (255u << 16) | 1000);
	for (int i = 0; i < 5; i++) {
		mg_kv_sync_poll(s, NULL, NULL);
		mg_ipcache_commit(ipc);
	}
	CU_ASSERT_EQUAL(ipc_get(ipc, "10.255.9.9", NULL), (255u << 16) | 1000);
	mg_kv_sync_free(s);
	mg_ipcache_free(ipc);
	mg_identity_table_free(ids);
}

static void
test_bad_params(void)
{
	struct mg_identity_table *ids = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_ipcache_params ip = {.entries_hint = 16};
	struct mg_ipcache *ipc = mg_ipcache_create(&ip);
	struct mg_kv_sync_cluster_params bad[] = {{"East_", false}};
	struct mg_kv_sync_cluster_params two[] = {{"a", true}, {"b", true}};
	struct mg_kv_sync_params p = {.url = "127.0.0.1:1", .n_clusters = 1, .clusters = bad};
	struct mg_error err;
	errno = 0;
	CU_ASSERT_PTR_NULL(mg_kv_sync_create(&p, ids, ipc, &err));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p.clusters = two;
	p.n_clusters = 2;
	CU_ASSERT_PTR_NULL(mg_kv_sync_create(&p, ids, ipc, &err));
	/* Unreachable server: initial times out, poll reports not connected. */
	p.n_clusters = 1;
	p.connect_ms = 100;
	struct mg_kv_sync *s = mg_kv_sync_create(&p, ids, ipc, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(mg_kv_sync_initial(s, 200, NULL, NULL, &err), -ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not connected"));
	CU_ASSERT_EQUAL(mg_kv_sync_poll(s, NULL, NULL), -ENOTCONN);
	mg_kv_sync_free(s);
	mg_ipcache_free(ipc);
	mg_identity_table_free(ids);
}

/* The server dies and a fresh one (new replication id) comes back with
 * changed data: the gateway keeps its state meanwhile, then resyncs. */
static void
test_restart(void)
{
	struct fx f;
	struct mg_error err;
	const char *dir = getenv("KVSYNC_DIR");
	char cmdline[512];
	if (dir == NULL) {
		printf("SKIP: kvsync/restart: KVSYNC_DIR not set\n");
		return;
	}
	seed();
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	redisReply *r = redisCommand(R, "SHUTDOWN NOSAVE");
	if (r)
		freeReplyObject(r);
	CU_ASSERT_EQUAL(mg_kv_sync_poll(f.s, &f.changed, &f.n_changed), -ENOTCONN);
	CU_ASSERT(!st(&f, 1).connected);
	CU_ASSERT(st(&f, 1).disconnects >= 1);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080); /* fail-static */
	CU_ASSERT_EQUAL(mg_kv_sync_poll(f.s, &f.changed, &f.n_changed), -ENOTCONN);
	snprintf(cmdline, sizeof(cmdline),
	         "redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --dir %s "
	         "--daemonize yes --pidfile %s/redis2.pid --logfile %s/redis2.log",
	         port, dir, dir, dir);
	CU_ASSERT_EQUAL_FATAL(system(cmdline), 0);
	for (int i = 0; i < 100; i++) {
		redisContext *c = redisConnect("127.0.0.1", port);
		bool ok = c && !c->err;
		if (c)
			redisFree(c);
		if (ok)
			break;
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	rconnect();
	seed();
	put_ip("west", "10.1.0.77", 131080);
	del_ip("north", "10.2.0.7");
	for (int i = 0; i < 60 && st(&f, 1).resyncs[MG_KV_RESYNC_REPLID] == 0; i++)
		polls(&f, 1);
	for (size_t i = 0; i < 3; i++) {
		struct mg_kv_sync_stats x = st(&f, i);
		CU_ASSERT(x.connected && x.synced);
		CU_ASSERT_EQUAL(x.resyncs[MG_KV_RESYNC_REPLID], 1);
		CU_ASSERT_EQUAL(x.resyncs[MG_KV_RESYNC_EPOCH], 0);
	}
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.77", NULL), 131080);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.7", NULL), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	fx_close(&f);
}

/* Connect to the redis-server on @p p (the second one, for failover). */
static redisContext *
rconnect_port(int p)
{
	redisContext *c = redisConnect("127.0.0.1", p);
	CU_ASSERT_FATAL(c != NULL && !c->err);
	return c;
}

/* True when INFO replication of the current server contains @p what. */
static bool
info_repl_has(const char *what)
{
	redisReply *r = redisCommand(R, "INFO replication");
	bool ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, what) != NULL;
	if (r)
		freeReplyObject(r);
	return ok;
}

/*
 * Failover: the server the gateway reads becomes a replica of another one
 * (which holds newer data), copies it, and is then promoted (REPLICAOF NO
 * ONE), exactly what redis-sentinel does to a replica. Its master_replid
 * changes, so every synced cluster is resynced once by cause "replid" and
 * ends with the new primary's state; tailing then goes on.
 */
static void
test_failover(void)
{
	struct fx f;
	struct mg_error err;
	const char *p2 = getenv("KVSYNC_PORT2");
	if (p2 == NULL) {
		printf("SKIP: kvsync/failover: KVSYNC_PORT2 not set\n");
		return;
	}
	int port2 = atoi(p2);
	seed();
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	polls(&f, 2);
	for (size_t i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(st(&f, i).resyncs[MG_KV_RESYNC_REPLID], 0);

	/* The other server gets the same clusters plus later changes. */
	redisContext *a = R;
	R = rconnect_port(port2);
	seed();
	put_ip("west", "10.1.0.77", 131080);
	del_ip("north", "10.2.0.7");
	put_id("north", 196701);
	put_ip("north", "10.2.0.9", 196701);
	redisFree(R);
	R = a;

	/* Ours follows it, then is promoted; no poll in between. */
	rcmd("REPLICAOF 127.0.0.1 %d", port2);
	bool up = false;
	for (int i = 0; i < 200 && !(up = info_repl_has("master_link_status:up")); i++) {
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	CU_ASSERT_FATAL(up);
	rcmd("REPLICAOF NO ONE");
	CU_ASSERT(info_repl_has("role:master"));

	for (int i = 0; i < 60 && st(&f, 1).resyncs[MG_KV_RESYNC_REPLID] == 0; i++)
		polls(&f, 1);
	polls(&f, 2);
	for (size_t i = 0; i < 3; i++) {
		struct mg_kv_sync_stats x = st(&f, i);
		CU_ASSERT(x.connected && x.synced);
		CU_ASSERT_EQUAL(x.resyncs[MG_KV_RESYNC_REPLID], 1);
		CU_ASSERT_EQUAL(x.resyncs[MG_KV_RESYNC_EPOCH], 0);
		CU_ASSERT_EQUAL(x.resyncs[MG_KV_RESYNC_TRIMMED], 0);
		CU_ASSERT_EQUAL(x.full_syncs, 2);
	}
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.77", NULL), 131080);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.7", NULL), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.9", NULL), 196701);
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(f.ids, 196701));
	/* The promoted server takes writes; the gateway tails its logs. */
	put_ip("west", "10.1.0.78", 131080);
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.78", NULL), 131080);
	CU_ASSERT_EQUAL(st(&f, 1).resyncs[MG_KV_RESYNC_REPLID], 1);
	fx_close(&f);
}

/* Rebind: new tables get everything held (conflict winners included);
 * later batches go to the new tables only. */
static void
test_rebind(void)
{
	struct mg_ipcache_params ip = {.entries_hint = 64};
	struct mg_identity_table *ids2 = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_ipcache *ipc2 = mg_ipcache_create(&ip);
	struct fx f;
	struct mg_error err;
	unsigned cid = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ids2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc2);
	seed();
	put_ip("west", "10.9.9.9", 131080);
	put_ip("east", "10.9.9.9", 70000);
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	CU_ASSERT_EQUAL(mg_kv_sync_rebind(f.s, ids2, ipc2, true), 0);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc2, 0), 0); /* staged, not committed */
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc2), 7);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc2, 0), mg_ipcache_count(f.ipc, 0));
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc2, 0), 7);
	CU_ASSERT_EQUAL(mg_identity_table_count(ids2), mg_identity_table_count(f.ids));
	CU_ASSERT_EQUAL(ipc_get(ipc2, "10.9.9.9", &cid), 70000); /* local wins again */
	CU_ASSERT_EQUAL(cid, 1);
	CU_ASSERT_EQUAL(ipc_get(ipc2, "10.1.0.5", &cid), 131080);
	CU_ASSERT_EQUAL(cid, 2);
	const struct mg_identity *id = mg_identity_table_get(ids2, 196700);
	CU_ASSERT(id != NULL && id->cluster_id == 3);
	/* A change after the rebind reaches the new tables, not the old. */
	put_ip("west", "10.1.0.9", 131080);
	polls(&f, 3);
	CU_ASSERT(mg_ipcache_commit(ipc2) >= 1);
	CU_ASSERT_EQUAL(ipc_get(ipc2, "10.1.0.9", NULL), 131080);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.9", NULL), 0);
	/* Without publish only the pointers move. */
	CU_ASSERT_EQUAL(mg_kv_sync_rebind(f.s, f.ids, f.ipc, false), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.9", NULL), 0);
	fx_close(&f);
	mg_ipcache_free(ipc2);
	mg_identity_table_free(ids2);
}

/*
 * A poll leaves its batch staged (the caller publishes it with the derived
 * policy). When the caller cannot publish, it discards the batch and asks
 * for a resync: the next poll re-stages what the discarded batch changed
 * (puts, deletions) and lists every identity, so one commit repairs the
 * ipcache.
 */
static void
test_discard_repair(void)
{
	struct fx f;
	struct mg_error err;
	seed();
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	free(f.changed);
	f.changed = NULL;
	f.n_changed = 0;
	put_id("west", 131091);
	put_ip("west", "10.1.0.7", 131091);
	del_ip("west", "10.1.0.5");
	for (int i = 0; i < 20 && mg_ipcache_pending(f.ipc) < 2; i++)
		mg_kv_sync_poll(f.s, &f.changed, &f.n_changed);
	/* Staged, not published; the identity table is final. */
	CU_ASSERT_EQUAL(mg_ipcache_pending(f.ipc), 2);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.7", NULL), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(f.ids, 131091));
	CU_ASSERT(changed_has(&f, 131091));
	/* The publication failed: discard, resync. */
	mg_ipcache_discard(f.ipc);
	mg_kv_sync_request_resync(f.s, MG_KV_RESYNC_REPAIR);
	free(f.changed);
	f.changed = NULL;
	f.n_changed = 0;
	polls(&f, 2);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.7", NULL), 131091);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 0);
	CU_ASSERT(changed_has(&f, 131091));
	CU_ASSERT(changed_has(&f, 131080));
	/* Repaired: the next batches are plain again. */
	free(f.changed);
	f.changed = NULL;
	f.n_changed = 0;
	polls(&f, 2);
	CU_ASSERT_EQUAL(f.n_changed, 0);
	CU_ASSERT_EQUAL(mg_ipcache_pending(f.ipc), 0);
	fx_close(&f);
}

/* Put @pfx of @cl for identity @id with named ports "name/proto/port ..." (proto 6/17). */
static void
put_ip_np(const char *cl, const char *pfx, uint32_t id, const char *ports)
{
	char key[MG_KV_KEY_MAX], buf[256], *save = NULL;
	struct mg_named_port np[8];
	struct mg_kv_ip_pair p;
	memset(&p, 0, sizeof(p));
	memset(np, 0, sizeof(np));
	CU_ASSERT_FATAL(mg_ipcache_parse_prefix(pfx, &p.prefix) == 0);
	p.host_route = strchr(pfx, '/') == NULL;
	p.prefix.identity = id;
	snprintf(buf, sizeof(buf), "%s", ports);
	for (char *t = strtok_r(buf, " ", &save); t && p.n_named_ports < 8;
	     t = strtok_r(NULL, " ", &save)) {
		struct mg_named_port *n = &np[p.n_named_ports++];
		unsigned proto = 0, num = 0;
		CU_ASSERT_FATAL(sscanf(t, "%63[^/]/%u/%u", n->name, &proto, &num) == 3);
		n->proto = (uint8_t)proto;
		n->port = (uint16_t)num;
	}
	p.named_ports = np;
	ip_key(key, cl, pfx);
	char *json = mg_kv_ip_pair_encode(&p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	put(cl, key, json);
	free(json);
}

/* "name/proto/port" of identity @id's named ports, sorted, space-separated. */
static const char *
ports_of(const struct mg_identity_table *ids, uint32_t id)
{
	static char out[512];
	const struct mg_identity *e = mg_identity_table_get(ids, id);
	size_t off = 0;
	out[0] = '\0';
	for (size_t i = 0; e != NULL && i < e->n_named_ports && off < sizeof(out); i++)
		off += (size_t)snprintf(out + off, sizeof(out) - off, "%s%s/%u/%u", off ? " " : "",
		                        e->named_ports[i].name, e->named_ports[i].proto,
		                        e->named_ports[i].port);
	return out;
}

static size_t
changed_count(const struct fx *f, uint32_t id)
{
	size_t n = 0;
	for (size_t i = 0; i < f->n_changed; i++)
		n += f->changed[i] == id;
	return n;
}

static void
changed_reset(struct fx *f)
{
	free(f->changed);
	f->changed = NULL;
	f->n_changed = 0;
}

/*
 * Named ports of synced entries reach their identity: the union over the
 * identity's entries (all clusters), a name given two numbers for one
 * protocol is left out while they disagree (counted), ports go when their
 * last entry goes, and every such change lists the identity (once).
 */
static void
test_named_ports(void)
{
	struct fx f;
	struct mg_error err;
	seed();
	put_ip_np("east", "10.0.1.1", 70000, "http/6/80");
	put_ip_np("east", "fd00::1", 70000, "http/6/80 dns/17/53");
	put_ip_np("west", "10.1.0.5", 131080, "metrics/6/9090");
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	CU_ASSERT_STRING_EQUAL(ports_of(f.ids, 70000), "dns/17/53 http/6/80");
	CU_ASSERT_STRING_EQUAL(ports_of(f.ids, 131080), "metrics/6/9090");
	CU_ASSERT_EQUAL(changed_count(&f, 70000), 1); /* deduplicated */
	CU_ASSERT_EQUAL(changed_count(&f, 131080), 1);
	for (size_t i = 1; i < f.n_changed; i++)
		CU_ASSERT(f.changed[i - 1] < f.changed[i]);

	/* A third entry gives http another number: http is left out. */
	changed_reset(&f);
	put_ip_np("east", "10.0.1.9", 70000, "http/6/8080");
	polls(&f, 3);
	CU_ASSERT_STRING_EQUAL(ports_of(f.ids, 70000), "dns/17/53");
	CU_ASSERT_EQUAL(st(&f, 0).named_port_conflicts, 1);
	CU_ASSERT_EQUAL(changed_count(&f, 70000), 1);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.9", NULL), 70000);
	/* It agrees again: http is back. */
	changed_reset(&f);
	put_ip_np("east", "10.0.1.9", 70000, "http/6/80");
	polls(&f, 3);
	CU_ASSERT_STRING_EQUAL(ports_of(f.ids, 70000), "dns/17/53 http/6/80");
	CU_ASSERT(changed_has(&f, 70000));
	/* The only entry naming dns goes: dns goes; labels and the rest stay. */
	changed_reset(&f);
	del_ip("east", "fd00::1");
	polls(&f, 3);
	CU_ASSERT_STRING_EQUAL(ports_of(f.ids, 70000), "http/6/80");
	CU_ASSERT_EQUAL(changed_count(&f, 70000), 1);
	const struct mg_identity *id = mg_identity_table_get(f.ids, 70000);
	CU_ASSERT(id != NULL && id->cluster_id == 1 && id->labels.n > 0);
	/* A re-put without ports removes the port its entry named, not others'. */
	changed_reset(&f);
	put_ip("east", "10.0.1.1", 70000);
	polls(&f, 3);
	CU_ASSERT_STRING_EQUAL(ports_of(f.ids, 70000), "http/6/80"); /* 10.0.1.9 names it */
	CU_ASSERT_EQUAL(changed_count(&f, 70000), 0);
	del_ip("east", "10.0.1.9");
	polls(&f, 3);
	CU_ASSERT_STRING_EQUAL(ports_of(f.ids, 70000), "");
	CU_ASSERT(changed_has(&f, 70000));
	/* A name the identity table refuses (over 15 characters) is skipped, not an error. */
	put_ip_np("east", "10.0.1.30", 70000, "averyverylongportname/6/81");
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.30", NULL), 70000);
	CU_ASSERT_STRING_EQUAL(ports_of(f.ids, 70000), "");
	del_ip("east", "10.0.1.30");
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.30", NULL), 0);
	/* An entry moving to another identity takes its ports along. */
	put_ip_np("west", "10.1.0.5", 131090, "metrics/6/9090");
	put_id("west", 131090);
	polls(&f, 3);
	CU_ASSERT_STRING_EQUAL(ports_of(f.ids, 131080), "");
	CU_ASSERT_STRING_EQUAL(ports_of(f.ids, 131090), "metrics/6/9090");
	/* Rebind: the new table gets the named ports too. */
	struct mg_ipcache_params ip = {.entries_hint = 64};
	struct mg_identity_table *ids2 = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_ipcache *ipc2 = mg_ipcache_create(&ip);
	CU_ASSERT_EQUAL(mg_kv_sync_rebind(f.s, ids2, ipc2, true), 0);
	CU_ASSERT_STRING_EQUAL(ports_of(ids2, 131090), "metrics/6/9090");
	CU_ASSERT_EQUAL(mg_kv_sync_rebind(f.s, f.ids, f.ipc, false), 0);
	mg_ipcache_free(ipc2);
	mg_identity_table_free(ids2);
	fx_close(&f);
}

/* The daemon's own entries: a CIDR identity at 10.5.0.0/16, a static 10.6.0.1. */
static unsigned base_calls;

static int
base_fn(void *arg, const struct mg_ipcache_entry *pfx, struct mg_ipcache_entry *out)
{
	struct mg_ipcache_entry a, b;
	(void)arg;
	base_calls++;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	CU_ASSERT_FATAL(mg_ipcache_parse_prefix("10.5.0.0/16", &a) == 0);
	CU_ASSERT_FATAL(mg_ipcache_parse_prefix("10.6.0.1", &b) == 0);
	if (pfx->family == a.family && pfx->plen == a.plen && memcmp(pfx->addr, a.addr, 16) == 0) {
		out->identity = 16777300;
		return 1;
	}
	if (pfx->family == b.family && pfx->plen == b.plen && memcmp(pfx->addr, b.addr, 16) == 0) {
		out->identity = MG_ID_WORLD;
		out->cluster_id = 0;
		return 1;
	}
	return 0;
}

/* Every committed ipcache entry as text, appended to @arg (a dump). */
struct dump {
	char buf[8192];
	size_t off;
};

static int
dump_entry(const struct mg_ipcache_entry *e, void *arg)
{
	struct dump *d = arg;
	char pfx[64];
	if (d->off < sizeof(d->buf))
		d->off += (size_t)snprintf(d->buf + d->off, sizeof(d->buf) - d->off, "%s %u %u\n",
		                           mg_ipcache_prefix_str(e, pfx, sizeof(pfx)), e->identity,
		                           e->cluster_id);
	return 0;
}

static int
dump_identity(const struct mg_identity *e, void *arg)
{
	struct dump *d = arg;
	if (d->off < sizeof(d->buf))
		d->off += (size_t)snprintf(d->buf + d->off, sizeof(d->buf) - d->off,
		                           "id %u cluster %u labels %zu ports %zu\n", e->id,
		                           e->cluster_id, e->labels.n, e->n_named_ports);
	for (size_t i = 0; i < e->n_named_ports && d->off < sizeof(d->buf); i++)
		d->off += (size_t)snprintf(d->buf + d->off, sizeof(d->buf) - d->off, " %s/%u/%u\n",
		                           e->named_ports[i].name, e->named_ports[i].proto,
		                           e->named_ports[i].port);
	return 0;
}

static void
dump_tables(struct fx *f, struct dump *d)
{
	d->off = 0;
	d->buf[0] = '\0';
	mg_ipcache_walk(f->ipc, dump_entry, d);
	mg_identity_table_walk(f->ids, dump_identity, d);
}

/* The data of test_cold_equals_resync beyond seed(): conflicts, named ports, refusals. */
static void
seed_more(void)
{
	char key[MG_KV_KEY_MAX];
	put_ip("west", "10.0.1.1", 131080);  /* also east's: east (local) wins */
	put_ip("north", "10.1.0.5", 196700); /* also west's: west (lower id) wins */
	put_ip_np("east", "10.0.1.2", 70000, "http/6/80 dns/17/53");
	put_ip_np("west", "10.1.0.6", 131080, "metrics/6/9090");
	put_ip_np("north", "10.2.0.8", 196700, "http/6/8080");
	put_id("west", 131081);
	put_ip("west", "10.1.0.7", 131081);
	ip_key(key, "west", "10.1.0.8");
	put("west", key, "{not json");
	put_ip("north", "10.2.0.9", 131080); /* west's identity: out of north's range */
}

/*
 * A cold sync moves each shadow into its empty live copy and applies the
 * records in place (kvs_apply_new); a resync onto a live copy that holds
 * entries copies them (kvs_apply_put). The same data through either must
 * give the same tables: entries, winners, identities, named ports, and
 * the same refusals.
 */
static void
test_cold_equals_resync(void)
{
	static struct dump cold, warm;
	struct fx f;
	struct mg_error err;

	seed();
	seed_more();
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	dump_tables(&f, &cold);
	struct mg_kv_sync_stats w = st(&f, 1), n = st(&f, 2);
	CU_ASSERT_EQUAL(w.rejected_parse, 1);
	CU_ASSERT_EQUAL(n.rejected_range, 1);
	CU_ASSERT_EQUAL(w.conflicts + n.conflicts + st(&f, 0).conflicts, 2);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.1", NULL), 70000);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	CU_ASSERT_STRING_EQUAL(ports_of(f.ids, 70000), "dns/17/53 http/6/80");
	fx_close(&f);

	/* The same data, every cluster's live copy holding seed() first. */
	seed();
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	seed_more();
	mg_kv_sync_request_resync(f.s, MG_KV_RESYNC_OPERATOR);
	polls(&f, 3);
	CU_ASSERT(mg_kv_sync_all_synced(f.s));
	CU_ASSERT(st(&f, 1).full_syncs >= 2);
	dump_tables(&f, &warm);
	CU_ASSERT(cold.off > 0 && cold.off < sizeof(cold.buf));
	CU_ASSERT_STRING_EQUAL(cold.buf, warm.buf);
	CU_ASSERT_EQUAL(st(&f, 1).rejected_parse, 1);
	CU_ASSERT_EQUAL(st(&f, 2).rejected_range, 1);
	fx_close(&f);
}

/*
 * Base layer: a synced entry over a prefix the daemon has its own entry
 * for wins while it exists; when it goes (and no other cluster holds the
 * prefix) the daemon's entry comes back instead of a hole.
 */
static void
test_base_layer(void)
{
	struct fx f;
	struct mg_error err;
	unsigned cid = 9;
	seed();
	put_ip("east", "10.5.0.0/16", 70000);
	put_ip("west", "10.6.0.1", 131080);
	put_ip("north", "10.6.0.1", 196700);
	fx_base = base_fn;
	fx_open(&f, 0.5);
	fx_base = NULL;
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.5.0.0/16", NULL), 70000); /* synced wins */
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.6.0.1", NULL), 131080);
	base_calls = 0;
	del_ip("east", "10.5.0.0/16");
	del_ip("west", "10.6.0.1");
	del_ip("east", "10.0.1.1");
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.5.0.0/16", &cid), 16777300); /* the daemon's again */
	CU_ASSERT_EQUAL(cid, 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.6.0.1", NULL), 196700); /* north still holds it */
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.0.1.1", NULL), 0);      /* nothing of its own */
	CU_ASSERT_EQUAL(base_calls, 2); /* only for prefixes no cluster holds */
	del_ip("north", "10.6.0.1");
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.6.0.1", NULL), MG_ID_WORLD);
	/* A synced entry comes back: it wins again. */
	put_ip("west", "10.5.0.0/16", 131080);
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.5.0.0/16", &cid), 131080);
	CU_ASSERT_EQUAL(cid, 2);
	fx_close(&f);
}

/*
 * A cluster config without id (KVStoreMesh up to 1.15 wrote none), or
 * "{}", decodes but is refused as Cilium's agents since 1.16 refuse it
 * (ValidateClusterID: 0 is reserved): not synced, or stale with reason
 * config-refused keeping its copy; with its id back it is resynced.
 */
static void
test_cluster_config_without_id(void)
{
	struct fx f;
	struct mg_error err;
	struct mg_kv_sync_stats x;

	seed();
	rcmd("SET cilium/cluster-config/north {\"capabilities\":{\"syncedCanaries\":true,"
	     "\"cached\":true,\"maxConnectedClusters\":255}}");
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL(fx_initial(&f, 300, &err), -ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "has no id"));
	x = st(&f, 2);
	CU_ASSERT(x.present);
	CU_ASSERT(!x.synced);
	CU_ASSERT_PTR_NOT_NULL(strstr(x.why, "has no id"));
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.7", NULL), 0);
	CU_ASSERT(st(&f, 1).synced);
	/* With its id it syncs. */
	cfg("north", 3, true);
	polls(&f, 5);
	CU_ASSERT(st(&f, 2).synced);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.7", NULL), 196700);
	/* "{}" in its place: refused, the copy kept (fail-static). */
	rcmd("SET cilium/cluster-config/north {}");
	polls(&f, 5);
	x = st(&f, 2);
	CU_ASSERT(x.stale);
	CU_ASSERT_EQUAL(x.stale_reason, MG_KV_STALE_BAD_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(x.why, "has no id"));
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.7", NULL), 196700);
	/* An id 0 written out is the same. */
	rcmd("SET cilium/cluster-config/north {\"id\":0,\"capabilities\":{\"cached\":true}}");
	polls(&f, 3);
	CU_ASSERT_EQUAL(st(&f, 2).stale_reason, MG_KV_STALE_BAD_CONFIG);
	cfg("north", 3, true);
	polls(&f, 5);
	x = st(&f, 2);
	CU_ASSERT(!x.stale);
	CU_ASSERT(x.resyncs[MG_KV_RESYNC_CONFIG] >= 1);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.2.0.7", NULL), 196700);
	fx_close(&f);
}

/*
 * An ipcache value with ID 0 (an endpoint without an identity yet) is not
 * applied and is counted; it replaces what the key held (Cilium's agent
 * upserts identity 0 over the old mapping): in the full scan, through the
 * log and at a resync alike.
 */
static void
test_ip_id_zero(void)
{
	struct fx f;
	struct mg_error err;
	char key[MG_KV_KEY_MAX];
	static const char zero[] = "{\"IP\":\"10.1.0.5\",\"Mask\":null,\"HostIP\":\"172.18.0.3\","
	                           "\"ID\":0,\"Key\":0,\"Metadata\":\"\",\"K8sNamespace\":"
	                           "\"default\",\"K8sPodName\":\"web-1\"}";
	static const char zero9[] = "{\"IP\":\"10.1.0.9\",\"Mask\":null,\"HostIP\":\"\","
	                            "\"ID\":0,\"Key\":0,\"Metadata\":\"\"}";

	seed();
	ip_key(key, "west", "10.1.0.9");
	put("west", key, zero9);
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	CU_ASSERT_EQUAL(st(&f, 1).skipped_no_identity, 1);
	CU_ASSERT_EQUAL(st(&f, 1).rejected_parse, 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.9", NULL), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	/* Through the log: the address's previous mapping goes, nothing else. */
	ip_key(key, "west", "10.1.0.5");
	put("west", key, zero);
	polls(&f, 3);
	CU_ASSERT_EQUAL(st(&f, 1).skipped_no_identity, 2);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "fd00:1::5", NULL), 131080);
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(f.ids, 131080));
	/* The identity comes: the entry is applied. */
	put_ip("west", "10.1.0.5", 131080);
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	/* A full resync reads the ID 0 value again and skips it again. */
	mg_kv_sync_request_resync(f.s, MG_KV_RESYNC_OPERATOR);
	polls(&f, 3);
	CU_ASSERT_EQUAL(st(&f, 1).skipped_no_identity, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.9", NULL), 0);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	CU_ASSERT_EQUAL(st(&f, 1).rejected_parse, 0);
	fx_close(&f);
}

/*
 * Values as Cilium writes or accepts them, through the whole client: a bad
 * named port is dropped and counted and the entry is used; a Port beyond
 * uint16 fails the whole value (Go's json.Unmarshal); a 16-byte mask of
 * 24 ones for an IPv4 prefix is /24; the ::ffff:255.255.255.0 form is
 * refused.
 */
static void
test_cilium_values(void)
{
	struct fx f;
	struct mg_error err;
	char key[MG_KV_KEY_MAX];

	seed();
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	ip_key(key, "west", "10.1.0.6");
	put("west", key,
	    "{\"IP\":\"10.1.0.6\",\"Mask\":null,\"HostIP\":\"\",\"ID\":131080,\"Key\":0,"
	    "\"Metadata\":\"\",\"NamedPorts\":[{\"Name\":\"HTTP\",\"Port\":80,\"Protocol\":\"TCP\"}"
	    ","
	    "{\"Name\":\"zero\",\"Port\":0,\"Protocol\":\"TCP\"},{\"Name\":\"ping\",\"Port\":1,"
	    "\"Protocol\":\"ICMP\"},{\"Name\":\"bad_name\",\"Port\":2,\"Protocol\":\"TCP\"},"
	    "{\"Name\":\"dns\",\"Port\":53}]}");
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.6", NULL), 131080);
	CU_ASSERT_STRING_EQUAL(ports_of(f.ids, 131080), "dns/6/53 http/6/80");
	CU_ASSERT_EQUAL(st(&f, 1).named_ports_dropped, 3);
	CU_ASSERT_EQUAL(st(&f, 1).rejected_parse, 0);
	/* Port 70000: Go fails the whole value; the key's entry goes. */
	put("west", key,
	    "{\"IP\":\"10.1.0.6\",\"Mask\":null,\"HostIP\":\"\",\"ID\":131080,\"Key\":0,"
	    "\"Metadata\":\"\",\"NamedPorts\":[{\"Name\":\"http\",\"Port\":70000,"
	    "\"Protocol\":\"TCP\"}]}");
	polls(&f, 3);
	CU_ASSERT_EQUAL(st(&f, 1).rejected_parse, 1);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.6", NULL), 0);
	CU_ASSERT_STRING_EQUAL(ports_of(f.ids, 131080), "");
	/* A 16-byte mask of 24 ones: /24 (Go's IPMask.Size is 24). */
	ip_key(key, "west", "10.1.7.0/24");
	put("west", key,
	    "{\"IP\":\"10.1.7.0\",\"Mask\":\"////AAAAAAAAAAAAAAAAAA==\",\"HostIP\":\"\","
	    "\"ID\":131080,\"Key\":0,\"Metadata\":\"\"}");
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.7.0/24", NULL), 131080);
	/* ::ffff:255.255.255.0 is not a canonical mask: refused. */
	ip_key(key, "west", "10.1.8.0/24");
	put("west", key,
	    "{\"IP\":\"10.1.8.0\",\"Mask\":\"AAAAAAAAAAAAAP//////AA==\",\"HostIP\":\"\","
	    "\"ID\":131080,\"Key\":0,\"Metadata\":\"\"}");
	polls(&f, 3);
	CU_ASSERT_EQUAL(st(&f, 1).rejected_parse, 2);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.8.0/24", NULL), 0);
	fx_close(&f);
}

/* RFC 3339 UTC time @ago seconds before now into @buf. */
static void
rfc3339_ago(char *buf, size_t size, long ago, bool frac)
{
	time_t t = time(NULL) - ago;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, frac ? "%Y-%m-%dT%H:%M:%S.123456789Z" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * The replicator's heartbeat: older than the timeout (or garbage) marks
 * the cluster stale with reason heartbeat, its copy kept and still
 * tailed; fresh again, the mark goes without a resync. No key, or the
 * check off, never marks it.
 */
static void
test_heartbeat(void)
{
	struct fx f;
	struct mg_error err;
	struct mg_kv_sync_stats x;
	char ts[64];
	uint64_t full;

	seed();
	rfc3339_ago(ts, sizeof(ts), 0, true);
	rcmd("SET meshgate/heartbeat/west %s", ts);
	fx_heartbeat = 180000;
	fx_open(&f, 0.5);
	fx_heartbeat = 0;
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	polls(&f, 2);
	x = st(&f, 1);
	CU_ASSERT(!x.stale);
	CU_ASSERT(x.heartbeat_at + 5 >= (uint64_t)time(NULL));
	CU_ASSERT_EQUAL(st(&f, 0).heartbeat_at, 0); /* east: no replicator */
	full = x.full_syncs;
	/* Ten minutes old: stale (heartbeat), state kept. */
	rfc3339_ago(ts, sizeof(ts), 600, false);
	rcmd("SET meshgate/heartbeat/west %s", ts);
	polls(&f, 3);
	x = st(&f, 1);
	CU_ASSERT(x.stale);
	CU_ASSERT_EQUAL(x.stale_reason, MG_KV_STALE_HEARTBEAT);
	CU_ASSERT_STRING_EQUAL(mg_kv_stale_reason_name(x.stale_reason), "heartbeat");
	CU_ASSERT_PTR_NOT_NULL(strstr(x.why, "heartbeat"));
	CU_ASSERT(x.stale_since > 0);
	CU_ASSERT(!st(&f, 0).stale);
	CU_ASSERT(!st(&f, 2).stale);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.5", NULL), 131080);
	/* Still tailed: what Redis gets is applied. */
	put_ip("west", "10.1.0.40", 131080);
	polls(&f, 3);
	CU_ASSERT_EQUAL(ipc_get(f.ipc, "10.1.0.40", NULL), 131080);
	CU_ASSERT(st(&f, 1).stale);
	/* Fresh again: the mark goes, no resync. */
	rfc3339_ago(ts, sizeof(ts), 1, false);
	rcmd("SET meshgate/heartbeat/west %s", ts);
	polls(&f, 3);
	x = st(&f, 1);
	CU_ASSERT(!x.stale);
	CU_ASSERT_EQUAL(x.full_syncs, full);
	CU_ASSERT_STRING_EQUAL(x.why, "");
	/* A value that does not parse: stale, counted once. */
	rcmd("SET meshgate/heartbeat/west yesterday");
	polls(&f, 5);
	x = st(&f, 1);
	CU_ASSERT(x.stale);
	CU_ASSERT_EQUAL(x.stale_reason, MG_KV_STALE_HEARTBEAT);
	CU_ASSERT_EQUAL(x.heartbeat_invalid, 1);
	CU_ASSERT_EQUAL(x.heartbeat_at, 0);
	/* The key gone (no replicator): not stale. */
	rcmd("DEL meshgate/heartbeat/west");
	polls(&f, 3);
	CU_ASSERT(!st(&f, 1).stale);
	/* An old heartbeat with another stale reason: that reason first; the
	 * heartbeat's comes back once it is resolved. */
	rfc3339_ago(ts, sizeof(ts), 600, false);
	rcmd("SET meshgate/heartbeat/west %s", ts);
	rcmd("DEL cilium/cluster-config/west");
	polls(&f, 3);
	CU_ASSERT_EQUAL(st(&f, 1).stale_reason, MG_KV_STALE_NO_CONFIG);
	cfg("west", 2, true);
	polls(&f, 6);
	CU_ASSERT_EQUAL(st(&f, 1).stale_reason, MG_KV_STALE_HEARTBEAT);
	fx_close(&f);

	/* The check off: an old heartbeat says nothing. */
	fx_open(&f, 0.5);
	CU_ASSERT_EQUAL_FATAL(fx_initial(&f, 3000, &err), 0);
	polls(&f, 3);
	CU_ASSERT(!st(&f, 1).stale);
	CU_ASSERT(st(&f, 1).heartbeat_at > 0);
	fx_close(&f);
}

static CU_TestInfo tests[] = {
        {"cold_sync", test_cold_sync},
        {"canary_wait", test_canary_wait},
        {"incremental", test_incremental},
        {"discard_repair", test_discard_repair},
        {"trimmed", test_trimmed},
        {"epoch", test_epoch},
        {"garbage", test_garbage},
        {"range_and_host", test_range_and_host},
        {"conflict", test_conflict},
        {"mass_delete", test_mass_delete},
        {"mass_delete_local", test_mass_delete_local},
        {"config_deleted_keeps_state", test_config_deleted_keeps_state},
        {"flushall_keeps_state", test_flushall_keeps_state},
        {"removal_marker", test_removal_marker},
        {"removed_at_start", test_removed_at_start},
        {"reconfigure", test_reconfigure},
        {"cluster_label_and_local_range", test_cluster_label_and_local_range},
        {"bad_cluster_configs", test_bad_cluster_configs},
        {"huge_identity_value", test_huge_identity_value},
        {"too_many_clusters", test_too_many_clusters},
        {"255_clusters", test_255_clusters},
        {"bad_params", test_bad_params},
        {"restart", test_restart},
        {"rebind", test_rebind},
        {"failover", test_failover},
        {"named_ports", test_named_ports},
        {"cold_equals_resync", test_cold_equals_resync},
        {"base_layer", test_base_layer},
        {"cluster_config_without_id", test_cluster_config_without_id},
        {"ip_id_zero", test_ip_id_zero},
        {"cilium_values", test_cilium_values},
        {"heartbeat", test_heartbeat},
        CU_TEST_INFO_NULL,
};

int
main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s <redis-port> <meshgate.lua>\n", argv[0]);
		return 2;
	}
	port = atoi(argv[1]);
	lua_path = argv[2];
	rconnect();
	CU_SuiteInfo suites[] = {{"kvsync", NULL, NULL, NULL, NULL, tests}, CU_SUITE_INFO_NULL};
	int rc = mg_test_run(suites);
	redisFree(R);
	return rc;
}
