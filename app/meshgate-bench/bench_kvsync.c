/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench kvsync`: what the Redis sync client (lib/kvstore,
 * mg_kv_sync.h) costs, measured against one local redis-server.
 *
 *   cold sync   N ipcache entries (half IPv4 /32, half IPv6 /128) and a few
 *               hundred identities of cluster "cluster-a" (id 1) are
 *               written with pipelined SETs in exactly the key layout and
 *               JSON the writer produces (the mg_kv model encoders); the
 *               cluster config, canaries, epoch and log are created through
 *               the Function library as the writer does. Then a fresh
 *               identity table and ipcache are filled by mg_kv_sync_initial;
 *               its wall time gives entries/s, shown next to
 *               redis-benchmark's pipelined GET rate on the same server (the
 *               ratio says how close the sync gets to what Redis can serve).
 *               The ipcache count must equal N, or the run fails.
 *   latency     a writer thread on its own connection FCALLs mg_put to move
 *               test IPs to another identity at a fixed rate, noting the
 *               send time of each put; the main thread runs mg_kv_sync_poll
 *               and after each applied batch (one ipcache commit) computes
 *               the verdict a worker would compute now (mg_ipcache_lookup of
 *               the test IP, then mg_policy_verdict towards a server). The
 *               time it first sees the new verdict is "effective"; latency
 *               = effective - sent, p50 and p99 per rate.
 *
 * Each put goes to a test IP not touched before, whose identity moves from
 * a filler identity (denied by the server's ingress policy) to the client
 * identity (allowed), so every update changes a verdict and none hides
 * another inside one batch. The log is applied in write order, so updates
 * are confirmed in order.
 *
 *   --updates-while-forwarding
 *               the data path forwards crafted frames (EAL, one worker,
 *               net_pcap ports) while writers (lib/kvstore's batch API:
 *               FCALL mg_batch, pipelined) change ipcache entries at a
 *               fixed rate and the main lcore polls and publishes each batch
 *               (mg_datapath_publish); then a backlog the client catches up
 *               on. Described at "updates while forwarding" below.
 *
 *   --latency-while-forwarding
 *               the latency above with that data path running: puts at 1k
 *               and 10k/s, each batch published with mg_datapath_publish;
 *               latency to the publish's return and, for denies, to the
 *               first frame the worker drops by the new verdict (monitor
 *               ring). Described at "write-to-effective latency while
 *               forwarding" below.
 *
 * The bench starts its own redis-server (no persistence, temporary
 * directory, free loopback port) unless --redis-port names one; the data
 * is then written into that server's database 0, which is flushed first.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>

#include "bench_kvsync.h"
#include "mg_config.h"
#include "mg_datapath.h"
#include "mg_identity.h"
#include "mg_ipcache.h"
#include "mg_kv_sync.h"
#include "mg_kvstore.h"
#include "mg_pkt.h"
#include "mg_policy.h"

#ifndef MG_FUNCTIONS_DEFAULT
#define MG_FUNCTIONS_DEFAULT "conf/redis/meshgate.lua"
#endif

#define CLUSTER "cluster-a"
#define CLUSTER_ID 1u
#define N_FILLER 300u   /* filler identities besides server and client */
#define PIPE_CHUNK 2000 /* commands in flight per pipelined round */
#define N_SLOTS 32768u  /* test IPs: the first IPv4 entries of the fill */
#define LAT_SECS 2
#define LAT_FWD_SECS 3 /* --latency-while-forwarding: seconds per rate */
/* The log's MAXLEN ~: room for the catch-up's backlog on top of what the
 * measured phase wrote, so the client's position is never trimmed. */
#define MAXLEN "2000000"

static uint32_t
ident(unsigned local)
{
	return (CLUSTER_ID << 16) | (MG_ID_MIN_CLUSTER_LOCAL + local);
}

#define ID_SERVER ident(0)
#define ID_CLIENT ident(1)
#define ID_FILLER(i) ident(2 + (i))

/* Entry @p i of the fill: even i IPv4 10.x.y.z, odd i IPv6 fd00::i. */
static void
entry_of(uint32_t i, struct mg_kv_ip_pair *p)
{
	memset(p, 0, sizeof(*p));
	p->host_route = true;
	if (i % 2 == 0) {
		uint32_t be = htonl((10u << 24) | (i / 2 + 1));

		p->prefix.family = MG_AF_INET;
		p->prefix.plen = 32;
		memcpy(p->prefix.addr, &be, 4);
	} else {
		uint32_t be = htonl(i);

		p->prefix.family = MG_AF_INET6;
		p->prefix.plen = 128;
		p->prefix.addr[0] = 0xfd;
		memcpy(p->prefix.addr + 12, &be, 4);
	}
	p->prefix.identity = i == 0 ? ID_SERVER : ID_FILLER(i % N_FILLER);
	p->prefix.cluster_id = CLUSTER_ID;
	snprintf(p->host_ip, sizeof(p->host_ip), "192.168.0.%u", 1 + i % 200);
}

/* Test slot s: fill entry 2 * (s + 1) (IPv4; entry 0 is the server). */
static uint32_t
slot_entry(uint32_t s)
{
	return 2 * (s + 1);
}

/* ---- redis-server ---- */

struct server {
	pid_t pid;
	char dir[64];
	unsigned port;
};

static int
free_port(unsigned *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc = 0;

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		rc = -errno;
	else
		*port = ntohs(a.sin_port);
	close(fd);
	return rc;
}

static redisContext *
connect_port(unsigned port)
{
	struct timeval tv = {.tv_sec = 30};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", (int)port, tv);

	if (c == NULL || c->err) {
		redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	return c;
}

static int
server_start(struct server *s)
{
	char portarg[16], log[96];
	int i, rc;

	strcpy(s->dir, "/tmp/mg-bench-kvsync-XXXXXX");
	if (mkdtemp(s->dir) == NULL)
		return -errno;
	rc = free_port(&s->port);
	if (rc < 0)
		return rc;
	snprintf(portarg, sizeof(portarg), "%u", s->port);
	snprintf(log, sizeof(log), "%s/redis.log", s->dir);
	s->pid = fork();
	if (s->pid < 0)
		return -errno;
	if (s->pid == 0) {
		execl("/usr/bin/redis-server", "redis-server", "--port", portarg, "--bind",
		      "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s->dir, "--logfile",
		      log, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200; i++) {
		redisContext *c = connect_port(s->port);

		if (c != NULL) {
			redisFree(c);
			return 0;
		}
		usleep(25000);
	}
	return -ETIMEDOUT;
}

static void
server_stop(struct server *s)
{
	char path[128];

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	if (s->dir[0] != '\0') {
		snprintf(path, sizeof(path), "%s/redis.log", s->dir);
		unlink(path);
		rmdir(s->dir);
		s->dir[0] = '\0';
	}
}

/* ---- fill ---- */

/* Read @p n pending replies; -EPROTO on an error reply. */
static int
drain(redisContext *c, unsigned n)
{
	int rc = 0;

	while (n-- > 0) {
		redisReply *r = NULL;

		if (redisGetReply(c, (void **)&r) != REDIS_OK)
			return -EIO;
		if (r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "kvsync: redis: %s\n", r->str);
			rc = -EPROTO;
		}
		freeReplyObject(r);
	}
	return rc;
}

static int
command_ok(redisContext *c, redisReply *r)
{
	int rc = 0;

	if (r == NULL)
		return -EIO;
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "kvsync: redis: %s\n", r->str);
		rc = -EPROTO;
	}
	(void)c;
	freeReplyObject(r);
	return rc;
}

static int
identity_value(uint32_t id, char **out)
{
	struct mg_labels ls = MG_LABELS_INIT;
	char app[32];
	int rc;

	if (id == ID_SERVER)
		snprintf(app, sizeof(app), "server");
	else if (id == ID_CLIENT)
		snprintf(app, sizeof(app), "client");
	else
		snprintf(app, sizeof(app), "f%u", id - ID_FILLER(0));
	rc = mg_labels_add(&ls, "k8s", "io.kubernetes.pod.namespace", "bench");
	if (rc == 0)
		rc = mg_labels_add(&ls, "k8s", "io.cilium.k8s.policy.cluster", CLUSTER);
	if (rc == 0)
		rc = mg_labels_add(&ls, "k8s", "app", app);
	*out = rc == 0 ? mg_labels_format(&ls) : NULL;
	mg_labels_clear(&ls);
	return *out != NULL ? 0 : -ENOMEM;
}

static int
fill(redisContext *c, uint32_t n, const char *lua, size_t lua_len)
{
	struct mg_kv_cluster_config cc = {.id = CLUSTER_ID, .synced_canaries = true};
	char key[MG_KV_KEY_MAX], logk[MG_KV_KEY_MAX], epk[MG_KV_KEY_MAX], now[32];
	unsigned pending = 0;
	char *val = NULL;
	uint32_t i;
	time_t t = time(NULL);
	struct tm tm;
	int rc;

	rc = command_ok(c, redisCommand(c, "FLUSHDB"));
	if (rc == 0)
		rc = command_ok(c, redisCommand(c, "FUNCTION LOAD REPLACE %b", lua, lua_len));
	if (rc < 0)
		return rc;
	for (i = 0; i < N_FILLER + 2 && rc == 0; i++) {
		uint32_t id = ident(i);

		rc = identity_value(id, &val);
		if (rc == 0 &&
		    mg_kv_identity_key(key, sizeof(key), MG_KV_SCOPE_STATE, CLUSTER, id) < 0)
			rc = -EINVAL;
		if (rc == 0) {
			redisAppendCommand(c, "SET %s %s", key, val);
			pending++;
		}
		free(val);
	}
	for (i = 0; i < n && rc == 0; i++) {
		struct mg_kv_ip_pair p;

		entry_of(i, &p);
		val = mg_kv_ip_pair_encode(&p);
		if (val == NULL || mg_kv_ip_key(key, sizeof(key), MG_KV_SCOPE_STATE, CLUSTER,
		                                &p.prefix, true) < 0) {
			free(val);
			rc = -EINVAL;
			break;
		}
		redisAppendCommand(c, "SET %s %s", key, val);
		free(val);
		if (++pending == PIPE_CHUNK) {
			rc = drain(c, pending);
			pending = 0;
		}
	}
	if (pending > 0) {
		int r2 = drain(c, pending);

		rc = rc < 0 ? rc : r2;
	}
	if (rc < 0)
		return rc;
	/*
	 * The config goes through mg_put with the epoch key and a token, as the
	 * writer's first write does: that creates the log and sets the epoch.
	 */
	val = mg_kv_cluster_config_encode(&cc);
	if (val == NULL || mg_kv_cluster_config_key(key, sizeof(key), CLUSTER) < 0 ||
	    mg_kv_log_key(logk, sizeof(logk), CLUSTER) < 0 ||
	    mg_kv_epoch_key(epk, sizeof(epk), CLUSTER) < 0) {
		free(val);
		return -EINVAL;
	}
	rc = command_ok(c, redisCommand(c, "FCALL mg_put 3 %s %s %s %s %s %s", key, logk, epk, val,
	                                MAXLEN, "bench-epoch-1"));
	free(val);
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (rc == 0 && mg_kv_synced_key(key, sizeof(key), CLUSTER, MG_KV_STATE_IDENTITIES) >= 0)
		rc = command_ok(c, redisCommand(c, "SET %s %s", key, now));
	if (rc == 0 && mg_kv_synced_key(key, sizeof(key), CLUSTER, MG_KV_STATE_IP) >= 0)
		rc = command_ok(c, redisCommand(c, "SET %s %s", key, now));
	return rc;
}

/* ---- redis-benchmark ---- */

static double
redis_benchmark_get(unsigned port, uint32_t n)
{
	char cmd[160], line[512];
	double rate = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
	         "redis-benchmark -h 127.0.0.1 -p %u -t get -n %" PRIu32 " -P 64 -q 2>/dev/null",
	         port, n);
	f = popen(cmd, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		/* "GET: 1234567.89 requests per second, p50=..." after \r progress lines */
		char *p = strstr(line, "GET: ");
		char *last = NULL;

		while (p != NULL) {
			last = p;
			p = strstr(p + 1, "GET: ");
		}
		if (last != NULL && strstr(last, "requests per second") != NULL)
			rate = strtod(last + 5, NULL);
	}
	pclose(f);
	return rate;
}

/* ---- cold sync ---- */

static const struct mg_kv_sync_cluster_params cluster_params[] = {{.name = CLUSTER}};

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
	t0 = mg_time_ns();
	rc = mg_kv_sync_initial(*s_out, 120000, &changed, &n_changed, &err);
	/* The client leaves the batch staged: the commit is part of the sync. */
	if (mg_ipcache_commit(*ipc_out) < 0 && rc >= 0)
		rc = -ENOMEM;
	*secs = (double)(mg_time_ns() - t0) / 1e9;
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
	char key[MG_KV_KEY_MAX], logk[MG_KV_KEY_MAX], epk[MG_KV_KEY_MAX], name[16], now[32];
	unsigned pending = 0;
	time_t t = time(NULL);
	struct tm tm;
	int rc;

	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rc = command_ok(c, redisCommand(c, "FLUSHDB"));
	if (rc == 0)
		rc = command_ok(c, redisCommand(c, "FUNCTION LOAD REPLACE %b", lua, lua_len));
	for (unsigned cl = 1; cl <= ncl && rc == 0; cl++) {
		struct mg_kv_cluster_config cc = {
		        .id = cl, .synced_canaries = true, .cached = true};
		char *val;

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
			val = mg_kv_ip_pair_encode(&p);
			if (val == NULL || mg_kv_ip_key(key, sizeof(key), MG_KV_SCOPE_CACHE, name,
			                                &p.prefix, true) < 0) {
				free(val);
				rc = -EINVAL;
				break;
			}
			redisAppendCommand(c, "SET %s %s", key, val);
			free(val);
			if (++pending == PIPE_CHUNK) {
				rc = drain(c, pending);
				pending = 0;
			}
		}
		if (rc == 0 && pending > 0) {
			rc = drain(c, pending);
			pending = 0;
		}
		val = mg_kv_cluster_config_encode(&cc);
		if (rc == 0 &&
		    (val == NULL || mg_kv_cluster_config_key(key, sizeof(key), name) < 0 ||
		     mg_kv_log_key(logk, sizeof(logk), name) < 0 ||
		     mg_kv_epoch_key(epk, sizeof(epk), name) < 0))
			rc = -EINVAL;
		if (rc == 0)
			rc = command_ok(c, redisCommand(c, "FCALL mg_put 3 %s %s %s %s %s %s", key,
			                                logk, epk, val, MAXLEN, "bench-epoch-1"));
		free(val);
		if (rc == 0 &&
		    mg_kv_synced_key(key, sizeof(key), name, MG_KV_CACHE_IDENTITIES) >= 0)
			rc = command_ok(c, redisCommand(c, "SET %s %s", key, now));
		if (rc == 0 && mg_kv_synced_key(key, sizeof(key), name, MG_KV_CACHE_IP) >= 0)
			rc = command_ok(c, redisCommand(c, "SET %s %s", key, now));
	}
	return rc;
}

/*
 * The gateway's start in front of @p ncl clusters of @p per entries each:
 * mg_kv_sync_initial over all of them (what the daemon does before its
 * ports start), then a verification round and a tail poll of all of them.
 */
static int
multi_run(unsigned port, unsigned ncl, uint32_t per, const char *lua, size_t lua_len)
{
	struct mg_kv_sync_cluster_params *cls = calloc(ncl, sizeof(*cls));
	char(*names)[16] = calloc(ncl, sizeof(*names));
	struct mg_ipcache_params ip = {.entries_hint = ncl * per};
	struct mg_identity_table *ids =
	        mg_identity_table_create(ncl > 255 ? MG_CLUSTER_MODE_511 : MG_CLUSTER_MODE_255);
	struct mg_ipcache *ipc = mg_ipcache_create(&ip);
	struct mg_kv_sync *s = NULL;
	struct mg_error err = {0};
	redisContext *c = connect_port(port);
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
	rb = redis_benchmark_get(port, ncl * per);
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

/* ---- write-to-effective latency ---- */

struct writer {
	unsigned port;
	unsigned rate;
	uint32_t first, count; /* test slots first .. first + count - 1 */
	uint64_t *sent;        /* per slot, ns (mg_time_ns) */
	_Atomic uint32_t n_sent;
	int rc;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	redisContext *c = connect_port(w->port);
	char key[MG_KV_KEY_MAX], logk[MG_KV_KEY_MAX];
	uint64_t t0, due;
	uint32_t k;

	if (c == NULL || mg_kv_log_key(logk, sizeof(logk), CLUSTER) < 0) {
		w->rc = -EIO;
		redisFree(c);
		return NULL;
	}
	t0 = mg_time_ns();
	for (k = 0; k < w->count; k++) {
		uint32_t s = w->first + k;
		struct mg_kv_ip_pair p;
		char *val;
		int rc;

		due = t0 + (uint64_t)k * 1000000000ull / w->rate;
		while (mg_time_ns() < due) {
			struct timespec ts = {.tv_nsec = 20000};

			if (due - mg_time_ns() > 100000)
				nanosleep(&ts, NULL);
		}
		entry_of(slot_entry(s), &p);
		p.prefix.identity = ID_CLIENT;
		val = mg_kv_ip_pair_encode(&p);
		if (val == NULL || mg_kv_ip_key(key, sizeof(key), MG_KV_SCOPE_STATE, CLUSTER,
		                                &p.prefix, true) < 0) {
			free(val);
			w->rc = -EINVAL;
			break;
		}
		/* The send time is published before the put, so a reader that sees the put sees it. */
		w->sent[s] = mg_time_ns();
		atomic_store_explicit(&w->n_sent, k + 1, memory_order_release);
		rc = command_ok(
		        c, redisCommand(c, "FCALL mg_put 2 %s %s %s %s", key, logk, val, MAXLEN));
		free(val);
		if (rc < 0) {
			w->rc = rc;
			break;
		}
	}
	redisFree(c);
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static struct mg_policy *
server_policy(const struct mg_identity_table *ids, struct mg_policy_set **set)
{
	static const char yaml[] = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
	                           "metadata: {name: server, namespace: bench}\n"
	                           "spec:\n"
	                           "  endpointSelector: {matchLabels: {app: server}}\n"
	                           "  ingress:\n"
	                           "  - fromEndpoints: [{matchLabels: {app: client}}]\n"
	                           "    toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]\n";
	static const struct mg_policy_params params = {
	        .enforcement = MG_ENFORCE_DEFAULT, .default_local_cluster = true, .revision = 1};
	struct mg_error err = {0};
	struct mg_policy *pol;

	*set = mg_policy_set_create();
	if (*set == NULL)
		return NULL;
	if (mg_policy_set_load_buf(*set, CLUSTER, "bench-kvsync.yaml", yaml, sizeof(yaml) - 1,
	                           &err) < 0) {
		fprintf(stderr, "kvsync: policy: %s\n", err.msg);
		return NULL;
	}
	pol = mg_policy_compile(*set, ids, &params, &err);
	if (pol == NULL)
		fprintf(stderr, "kvsync: policy: %s\n", err.msg);
	return pol;
}

static bool
allowed(const struct mg_ipcache *ipc, const struct mg_policy *pol, uint32_t s)
{
	struct mg_kv_ip_pair p;
	uint32_t src;

	entry_of(slot_entry(s), &p);
	src = mg_ipcache_lookup(mg_ipcache_reader(ipc), p.prefix.family, p.prefix.addr);
	return mg_policy_verdict(pol, src, ID_SERVER, MG_IPPROTO_TCP, 8080) == MG_VERDICT_ALLOW;
}

static int
latency_run(unsigned port, struct mg_kv_sync *s, struct mg_ipcache *ipc,
            const struct mg_policy *pol, unsigned rate, uint32_t first, uint64_t *sent)
{
	struct writer w = {.port = port, .rate = rate, .first = first, .sent = sent};
	uint64_t *lat, deadline;
	uint32_t next = 0, k;
	pthread_t th;
	int rc = 0;

	w.count = rate * LAT_SECS;
	if (first + w.count > N_SLOTS)
		return -E2BIG;
	for (k = 0; k < w.count; k++)
		if (allowed(ipc, pol, first + k)) {
			fprintf(stderr, "kvsync: FAIL: test IP %u allowed before its update\n", k);
			return -EPROTO;
		}
	lat = calloc(w.count, sizeof(*lat));
	if (lat == NULL)
		return -ENOMEM;
	rc = pthread_create(&th, NULL, writer_main, &w);
	if (rc != 0) {
		free(lat);
		return -rc;
	}
	deadline = mg_time_ns() + (LAT_SECS + 10) * 1000000000ull;
	while (next < w.count && mg_time_ns() < deadline) {
		uint32_t *changed = NULL;
		size_t n_changed = 0;
		uint32_t n_sent;
		uint64_t now;

		rc = mg_kv_sync_poll(s, &changed, &n_changed);
		free(changed);
		/* The batch is staged: commit it (the daemon publishes it with its policy). */
		if (mg_ipcache_commit(ipc) < 0 && rc >= 0)
			rc = -ENOMEM;
		if (rc < 0)
			break;
		rc = 0;
		/* effective: the verdict a worker computes after this batch's commit */
		now = mg_time_ns();
		n_sent = atomic_load_explicit(&w.n_sent, memory_order_acquire);
		while (next < n_sent && allowed(ipc, pol, first + next)) {
			lat[next] = now - sent[first + next];
			next++;
		}
		if (w.rc < 0)
			break;
	}
	pthread_join(th, NULL);
	if (rc == 0 && w.rc < 0)
		rc = w.rc;
	if (rc == 0 && next < w.count) {
		fprintf(stderr, "kvsync: FAIL: %u of %u updates never became effective\n",
		        w.count - next, w.count);
		rc = -ETIMEDOUT;
	}
	if (rc == 0) {
		qsort(lat, w.count, sizeof(*lat), cmp_u64);
		printf("latency   %5u updates/s  %6u updates  p50 %7.3f ms  p99 %7.3f ms  max "
		       "%7.3f "
		       "ms\n",
		       rate, w.count, (double)lat[w.count / 2] / 1e6,
		       (double)lat[(size_t)w.count * 99 / 100] / 1e6,
		       (double)lat[w.count - 1] / 1e6);
	}
	free(lat);
	return rc;
}

/* ---- updates while forwarding ---- */

/*
 * `--updates-while-forwarding`: the data path (EAL, one worker lcore,
 * two net_pcap ports replaying crafted TCP SYNs endlessly) forwards while
 * writer threads change ipcache entries through the Function library at a
 * fixed rate (one connection per writer, lib/kvstore's batch API: FCALL
 * mg_batch of --batch changes, several calls in flight; --batch 0 is the
 * old way, pipelined FCALL mg_put), and the
 * main lcore's tick (every ~10 ms) runs mg_kv_sync_poll and publishes
 * each batch with mg_datapath_publish, as the daemon does. Measured: the
 * updates applied per second (log entries the sync client applied, then
 * published) and the frames handled per second, first without updates,
 * then with them. The frames come from test IPs whose identity the
 * updates flip between the client (allowed) and a filler (denied), so
 * every publication changes verdicts the worker computes.
 */
#define FWD_FRAMES 4096
#define FWD_BATCH 256 /* FCALLs in flight per writer round */

struct fwd_writer {
	unsigned port;
	unsigned rate;       /* puts per second of this writer */
	unsigned batch;      /* changes per FCALL mg_batch; 0: single FCALL mg_put */
	uint32_t first, n;   /* fill entries first .. first + n - 1 */
	char **keys, **vals; /* per entry: key; value 2i: client, 2i+1: a filler */
	uint64_t limit;      /* puts to write, then stop (0: until told) */
	uint64_t seq;        /* puts sent so far: a restart goes on where it stopped */
	atomic_int stop, done;
	_Atomic uint64_t written;
	int rc;
	pthread_t th;
};

/*
 * A writer as meshgatectl's are: lib/kvstore's batch API, each change
 * queued, sent in FCALL mg_batch calls of w->batch changes with up to
 * MG_KV_WRITER_PIPELINE calls in flight. Whenever it is ahead of its rate
 * it flushes (so the count is exact) and sleeps.
 */
static void *
fwd_writer_batch_main(struct fwd_writer *w)
{
	struct mg_kv_writer_opts o = {.cluster = CLUSTER,
	                              .single_cluster = true, /* the bench's Redis holds one */
	                              .maxlen = (unsigned)atoi(MAXLEN),
	                              .timeout_ms = 60000,
	                              .batch = w->batch};
	struct mg_kv_batch_counts c = {0};
	struct mg_error err = {0};
	struct mg_kv_writer *kw;
	uint64_t t0 = mg_time_ns(), seq = w->seq, first = w->seq, end = w->seq + w->limit;
	uint64_t base = atomic_load(&w->written);
	char url[64];

	snprintf(url, sizeof(url), "redis://127.0.0.1:%u/0", w->port);
	o.url = url;
	kw = mg_kv_writer_open(&o, &err);
	if (kw == NULL) {
		fprintf(stderr, "kvsync: writer: %s\n", err.msg);
		w->rc = -EIO;
		goto out;
	}
	while (!atomic_load(&w->stop) && (w->limit == 0 || seq < end)) {
		uint64_t due = t0 + (seq - first) * 1000000000ull / w->rate;
		unsigned i, nb = w->batch;

		if (mg_time_ns() < due) {
			struct timespec ts = {.tv_nsec = 100000};

			if (mg_kv_writer_flush(kw, &err) < 0)
				break;
			atomic_store(&w->written, base + c.written);
			nanosleep(&ts, NULL);
			continue;
		}
		if (w->limit != 0 && end - seq < nb)
			nb = (unsigned)(end - seq);
		for (i = 0; i < nb; i++, seq++) {
			uint32_t k = (uint32_t)(seq % w->n);
			/* round 0 moves the entry to the client, round 1 to a filler, ...:
			 * every put changes the value */
			unsigned v = (unsigned)((seq / w->n) % 2);

			if (mg_kv_writer_queue_put(kw, w->keys[w->first + k],
			                           w->vals[2 * (w->first + k) + v], &c, &err) < 0)
				goto done;
		}
		atomic_store(&w->written, base + c.written);
	}
done:
	if (err.msg[0] == '\0')
		mg_kv_writer_flush(kw, &err);
	if (err.msg[0] != '\0') {
		fprintf(stderr, "kvsync: writer: %s\n", err.msg);
		w->rc = -EIO;
	}
	atomic_store(&w->written, base + c.written);
	mg_kv_writer_close(kw);
out:
	w->seq = seq;
	atomic_store(&w->done, 1);
	return NULL;
}

static void *
fwd_writer_main(void *arg)
{
	struct fwd_writer *w = arg;
	redisContext *c;

	if (w->batch != 0)
		return fwd_writer_batch_main(w);
	c = connect_port(w->port);
	char logk[MG_KV_KEY_MAX];
	uint64_t t0 = mg_time_ns(), seq = w->seq, first = w->seq, end = w->seq + w->limit;

	if (c == NULL || mg_kv_log_key(logk, sizeof(logk), CLUSTER) < 0) {
		w->rc = -EIO;
		redisFree(c);
		return NULL;
	}
	while (!atomic_load(&w->stop) && (w->limit == 0 || seq < end)) {
		uint64_t due = t0 + (seq - first) * 1000000000ull / w->rate;
		unsigned i, ok = 0, nb = FWD_BATCH;

		if (mg_time_ns() < due) {
			struct timespec ts = {.tv_nsec = 100000};

			nanosleep(&ts, NULL);
			continue;
		}
		if (w->limit != 0 && end - seq < nb)
			nb = (unsigned)(end - seq);
		for (i = 0; i < nb; i++, seq++) {
			uint32_t k = (uint32_t)(seq % w->n);
			/* round 0 moves the entry to the client, round 1 to a filler, ...:
			 * every put changes the value */
			unsigned v = (unsigned)((seq / w->n) % 2);

			redisAppendCommand(c, "FCALL mg_put 2 %s %s %s %s", w->keys[w->first + k],
			                   logk, w->vals[2 * (w->first + k) + v], MAXLEN);
		}
		for (i = 0; i < nb; i++) {
			redisReply *r = NULL;

			if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
				w->rc = -EIO;
				goto out;
			}
			ok += r->type == REDIS_REPLY_INTEGER && r->integer == 1;
			freeReplyObject(r);
		}
		atomic_fetch_add(&w->written, ok);
	}
out:
	redisFree(c);
	w->seq = seq;
	atomic_store(&w->done, 1);
	return NULL;
}

static uint16_t
fwd_csum(const uint8_t *p, unsigned n)
{
	uint32_t s = 0;

	for (unsigned i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* pcap of @p n TCP SYNs from test slots 0 .. n-1's IPs to the server, port 8080. */
static int
fwd_pcap(const char *path, uint32_t n)
{
	static const uint8_t l2[14] = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00};
	struct {
		uint32_t magic;
		uint16_t major, minor;
		int32_t zone;
		uint32_t sigfigs, snaplen, linktype;
	} gh = {0xa1b2c3d4, 2, 4, 0, 0, 65535, 1};
	FILE *f = fopen(path, "wb");

	if (f == NULL)
		return -errno;
	fwrite(&gh, sizeof(gh), 1, f);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t rh[4] = {0, 0, 64, 64};
		uint8_t fr[64] = {0}, *ip = fr + 14, *tcp = fr + 34;
		struct mg_kv_ip_pair src, dst;
		uint16_t c;

		entry_of(slot_entry(i), &src);
		entry_of(0, &dst);
		memcpy(fr, l2, sizeof(l2));
		ip[0] = 0x45;
		ip[3] = 50;
		ip[8] = 64;
		ip[9] = MG_IPPROTO_TCP;
		memcpy(ip + 12, src.prefix.addr, 4);
		memcpy(ip + 16, dst.prefix.addr, 4);
		c = fwd_csum(ip, 20);
		ip[10] = (uint8_t)(c >> 8);
		ip[11] = (uint8_t)c;
		tcp[0] = 0xc0;
		tcp[1] = (uint8_t)i;
		tcp[2] = 8080 >> 8;
		tcp[3] = 8080 & 0xff;
		tcp[12] = 0x50;
		tcp[13] = 0x02; /* SYN */
		tcp[14] = 0xff;
		tcp[15] = 0xff;
		fwrite(rh, sizeof(rh), 1, f);
		fwrite(fr, sizeof(fr), 1, f);
	}
	return fclose(f) == 0 ? 0 : -errno;
}

/* One measured window: counters, time, updates applied/written/published. */
struct fwd_mark {
	struct mg_dp_counters c;
	uint64_t t, applied, written, published, publishes;
};

struct fwd_run {
	struct mg_kv_sync *s;
	struct mg_ipcache *ipc;
	struct fwd_writer *w;
	unsigned nw, secs;
	int phase, rc;
	bool hold;    /* no polls: the writers build a backlog */
	bool running; /* writer threads started, not joined */
	uint64_t next, applied, published, publishes, max_publish_ns, backlog;
	uint64_t backlog_t0, backlog_w0; /* when the backlog's writing began */
	/* baseline start/end, updates start/end, catch-up start/end */
	struct fwd_mark m[6];
};

static uint64_t
fwd_written(const struct fwd_run *k)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < k->nw; i++)
		n += atomic_load(&k->w[i].written);
	return n;
}

static void
fwd_mark(struct mg_datapath *dp, struct fwd_run *k, struct fwd_mark *m)
{
	mg_datapath_counters(dp, &m->c);
	m->t = mg_time_ns();
	m->applied = k->applied;
	m->written = fwd_written(k);
	m->published = k->published;
	m->publishes = k->publishes;
}

static int
fwd_writers_start(struct fwd_run *k, uint64_t total)
{
	for (unsigned i = 0; i < k->nw; i++) {
		struct fwd_writer *w = &k->w[i];

		atomic_store(&w->stop, 0);
		atomic_store(&w->done, 0);
		w->limit = total / k->nw;
		if (total != 0)
			w->rate = 100000000; /* as fast as Redis takes them */
		if (pthread_create(&w->th, NULL, fwd_writer_main, w) != 0) {
			k->rc = -EAGAIN;
			k->nw = i;
			return -EAGAIN;
		}
	}
	k->running = true;
	return 0;
}

static void
fwd_writers_stop(struct fwd_run *k)
{
	if (!k->running)
		return;
	for (unsigned i = 0; i < k->nw; i++)
		atomic_store(&k->w[i].stop, 1);
	for (unsigned i = 0; i < k->nw; i++)
		pthread_join(k->w[i].th, NULL);
	k->running = false;
}

/*
 * After the measured phase: drain, then the catch-up: the client holds
 * off while the writers put a backlog into the log as fast as Redis takes
 * them, then it applies the backlog while the worker forwards. That shows
 * what the client and the publications sustain when the writer side is
 * not the limit (a backlog below the log's MAXLEN, so nothing is trimmed).
 */
static int
fwd_catch_up(struct mg_datapath *dp, struct fwd_run *k, uint64_t now)
{
	switch (k->phase) {
	case 4: /* draining the measured phase's updates */
		if (k->applied < fwd_written(k))
			return now >= k->next;
		k->hold = true;
		k->backlog_t0 = mg_time_ns();
		k->backlog_w0 = fwd_written(k);
		if (fwd_writers_start(k, k->backlog) < 0)
			return 1;
		k->next = now + 60000000000ull;
		break;
	case 5: /* the backlog is being written */
		for (unsigned i = 0; i < k->nw; i++)
			if (!atomic_load(&k->w[i].done))
				return now >= k->next;
		fwd_writers_stop(k);
		k->hold = false;
		fwd_mark(dp, k, &k->m[4]);
		k->next = now + 60000000000ull;
		break;
	default: /* catching up */
		if (k->applied < fwd_written(k))
			return now >= k->next;
		fwd_mark(dp, k, &k->m[5]);
		k->phase = 7;
		return 1;
	}
	k->phase++;
	return 0;
}

/*
 * Main lcore, every ~10 ms: sync polls, each batch published, for as long
 * as entries keep arriving (at most 50 ms: mg_datapath_run sleeps 10 ms
 * between ticks, which would otherwise cap the rate at one read_count per
 * tick), then the phases.
 */
static int
fwd_tick(struct mg_datapath *dp, void *arg)
{
	struct fwd_run *k = arg;
	uint64_t until = mg_time_ns() + 50000000, now;

	do {
		if (k->hold)
			break;
		uint32_t *changed = NULL;
		size_t n_changed = 0;
		int n = mg_kv_sync_poll(k->s, &changed, &n_changed);

		free(changed);
		if (n < 0) {
			k->rc = n;
			return 1;
		}
		if (mg_ipcache_pending(k->ipc) > 0) {
			uint64_t t0 = mg_time_ns();
			int p = mg_datapath_publish(dp, k->ipc, NULL);

			if (p < 0) {
				k->rc = p;
				return 1;
			}
			if (mg_time_ns() - t0 > k->max_publish_ns)
				k->max_publish_ns = mg_time_ns() - t0;
			k->published += (uint64_t)p;
			k->publishes++;
		}
		k->applied += (uint64_t)n;
		if (n == 0)
			break; /* nothing arrived within block_ms */
	} while (mg_time_ns() < until);
	now = mg_time_ns();
	if (k->phase >= 4)
		return fwd_catch_up(dp, k, now);
	if (now < k->next)
		return 0;
	switch (k->phase) {
	case 0: /* warmed up: baseline */
		fwd_mark(dp, k, &k->m[0]);
		k->next = now + k->secs * 1000000000ull;
		break;
	case 1: /* baseline done: writers on, one second to reach their rate */
		fwd_mark(dp, k, &k->m[1]);
		if (fwd_writers_start(k, 0) < 0)
			return 1;
		k->next = now + 1000000000ull;
		break;
	case 2:
		fwd_mark(dp, k, &k->m[2]);
		k->next = now + k->secs * 1000000000ull;
		break;
	default: /* measured: stop the writers, then drain what they wrote */
		fwd_mark(dp, k, &k->m[3]);
		fwd_writers_stop(k);
		k->next = now + 20000000000ull;
		break;
	}
	k->phase++;
	return 0;
}

static double
fwd_rate(uint64_t a, uint64_t b, uint64_t t0, uint64_t t1)
{
	return t1 > t0 ? (double)(b - a) / ((double)(t1 - t0) / 1e9) : 0;
}

static uint64_t
fwd_rx(const struct mg_dp_counters *c)
{
	return c->rx_pkts[0] + c->rx_pkts[1];
}

/* ---- write-to-effective latency while forwarding ---- */

/*
 * `--latency-while-forwarding`: the latency above, but with the data path
 * of `--updates-while-forwarding` running (EAL, one worker lcore, two
 * net_pcap ports replaying LF_IPS TCP SYNs, one per test IP, to the
 * server's port 8080) and every batch published with mg_datapath_publish,
 * as the daemon's kvstore tick does (poll, then publish; here in a tight
 * loop on the main lcore, the daemon's control thread does the same).
 *
 * Every test IP starts allowed (client identity). A writer thread FCALLs
 * mg_put at a fixed rate; each put moves one test IP between the client
 * (allowed) and its filler identity (denied): either a deny of the next
 * test IP, or, once an earlier deny has been published and seen dropped
 * in the frames (or LF_HOLD_NS after its publication), the allow that
 * restores it, oldest first. So about half the puts deny and half allow,
 * only a few IPs are denied at any time (few drop events), and every put
 * changes a verdict. The writer notes CLOCK_MONOTONIC just before each
 * put. Two measures:
 *
 *   publish   the time the mg_datapath_publish that carried the update
 *             returned, minus the put time. Once it returns every worker
 *             has passed a quiescent point after the new snapshot, so
 *             every frame taken after it is judged by the new state: an
 *             upper bound on "a worker's verdict changes" (a worker may
 *             judge by it earlier, from the snapshot store on).
 *   frames    denies only: the worker's monitor ring records every dropped
 *             frame with its source identity and the TSC of its burst;
 *             the first drop of the test IP with the denied identity and
 *             a burst time after the put is the frame that the worker
 *             judged by the new verdict (converted to CLOCK_MONOTONIC by
 *             one TSC calibration). It includes the wait for the IP's
 *             next frame (LF_IPS frames per port apart). Allows are not
 *             seen here: forwarded frames are only sampled by the monitor.
 *
 * Every update must be applied and published (the count of log entries
 * the client applied equals the puts, and after each publication the
 * ipcache gives the updated IP its new identity), or the run fails.
 */
#define LF_IPS 1024           /* test IPs, one frame each in the pcap */
#define LF_HOLD_NS 5000000ull /* restore a deny not seen in frames after this */
#define LF_WARMUP_NS 1000000000ull

struct lf_upd {
	uint32_t slot;
	bool deny;
	uint64_t sent;        /* writer: CLOCK_MONOTONIC ns before the put */
	_Atomic uint64_t pub; /* control: when the publish carrying it returned */
	_Atomic uint64_t mon; /* control: first frame judged by it (denies) */
};

struct lf_writer {
	unsigned port, rate;
	uint64_t paced; /* puts at the fixed rate; then the outstanding restores */
	struct lf_upd *u;
	size_t cap;
	_Atomic uint32_t n_sent;
	atomic_int done;
	int rc;
};

static void *
lf_writer_main(void *arg)
{
	struct lf_writer *w = arg;
	redisContext *c = connect_port(w->port);
	char logk[MG_KV_KEY_MAX];
	/* denies waiting for their restore, oldest first (writer-private) */
	uint32_t *fifo = calloc(LF_IPS, sizeof(*fifo)), head = 0, tail = 0, next_slot = 0;
	bool denied[LF_IPS] = {false};
	uint64_t t0 = mg_time_ns();
	uint32_t k = 0;

	if (c == NULL || fifo == NULL || mg_kv_log_key(logk, sizeof(logk), CLUSTER) < 0) {
		w->rc = -EIO;
		goto out;
	}
	while (k < w->cap && (k < w->paced || head != tail)) {
		uint64_t due = t0 + (uint64_t)k * 1000000000ull / w->rate, now;
		struct lf_upd *u = &w->u[k];
		char key[MG_KV_KEY_MAX], *val;
		struct mg_kv_ip_pair p;
		bool restore = false;
		int rc;

		while ((now = mg_time_ns()) < due) {
			struct timespec ts = {.tv_nsec = 20000};

			if (due - now > 100000)
				nanosleep(&ts, NULL);
		}
		if (head != tail) {
			const struct lf_upd *d = &w->u[fifo[head % LF_IPS]];
			uint64_t pub = atomic_load_explicit(&d->pub, memory_order_acquire);

			restore =
			        pub != 0 && (atomic_load(&d->mon) != 0 || now >= pub + LF_HOLD_NS);
		}
		if (!restore &&
		    (k >= w->paced || denied[next_slot % LF_IPS] || tail - head == LF_IPS)) {
			/* past the paced part (or no IP free): wait for a restore */
			struct timespec ts = {.tv_nsec = 50000};

			nanosleep(&ts, NULL);
			if (mg_time_ns() > t0 + (w->paced / w->rate + 20) * 1000000000ull) {
				w->rc = -ETIMEDOUT;
				break;
			}
			continue;
		}
		if (restore) {
			u->slot = w->u[fifo[head++ % LF_IPS]].slot;
			u->deny = false;
			denied[u->slot] = false;
		} else {
			u->slot = next_slot++ % LF_IPS;
			u->deny = true;
			denied[u->slot] = true;
			fifo[tail++ % LF_IPS] = k;
		}
		entry_of(slot_entry(u->slot), &p); /* the fill's value: a filler, denied */
		if (!u->deny)
			p.prefix.identity = ID_CLIENT;
		val = mg_kv_ip_pair_encode(&p);
		if (val == NULL || mg_kv_ip_key(key, sizeof(key), MG_KV_SCOPE_STATE, CLUSTER,
		                                &p.prefix, true) < 0) {
			free(val);
			w->rc = -EINVAL;
			break;
		}
		/* Published before the put: the control loop sees the put only after this. */
		u->sent = mg_time_ns();
		atomic_store_explicit(&w->n_sent, ++k, memory_order_release);
		rc = command_ok(
		        c, redisCommand(c, "FCALL mg_put 2 %s %s %s %s", key, logk, val, MAXLEN));
		free(val);
		if (rc < 0) {
			w->rc = rc;
			break;
		}
	}
	if (w->rc == 0 && k >= w->cap)
		w->rc = -E2BIG;
out:
	free(fifo);
	redisFree(c);
	atomic_store(&w->done, 1);
	return NULL;
}

/* Identity of test slot @p s in the data path's ipcache now. */
static uint32_t
lf_identity(const struct mg_ipcache *ipc, uint32_t s)
{
	struct mg_kv_ip_pair p;

	entry_of(slot_entry(s), &p);
	return mg_ipcache_lookup(mg_ipcache_reader(ipc), p.prefix.family, p.prefix.addr);
}

struct lf_run {
	struct mg_kv_sync *s;
	struct mg_ipcache *ipc;
	unsigned port, secs;
	uint64_t hz;
	int rc;
};

/*
 * The redis-server this bench started (0: --redis-port): pinned to the
 * main lcore's CPU for --latency-while-forwarding, so Redis, the writer
 * and the control loop share one vCPU and the worker has the other.
 */
static pid_t lf_redis_pid;

static void
lf_pin_redis(void)
{
	cpu_set_t set;
	char path[64];
	struct dirent *d;
	unsigned n = 0;
	DIR *dir;

	if (lf_redis_pid <= 0 || sched_getaffinity(0, sizeof(set), &set) < 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)lf_redis_pid);
	dir = opendir(path);
	if (dir == NULL)
		return;
	while ((d = readdir(dir)) != NULL)
		if (d->d_name[0] != '.' &&
		    sched_setaffinity((pid_t)atoi(d->d_name), sizeof(set), &set) == 0)
			n++;
	closedir(dir);
	printf("  redis-server's %u thread(s) pinned to the main lcore's CPU(s) (%d CPU(s))\n", n,
	       CPU_COUNT(&set));
}

static void
lf_print(const char *what, uint64_t *v, size_t n, size_t of)
{
	if (n == 0) {
		printf("  %-34s %6zu of %6zu   (none)\n", what, n, of);
		return;
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("  %-34s %6zu of %6zu   p50 %7.3f ms  p99 %7.3f ms  max %7.3f ms\n", what, n, of,
	       (double)v[n / 2] / 1e6, (double)v[n * 99 / 100] / 1e6, (double)v[n - 1] / 1e6);
}

/* One rate: writer on, poll + publish + drain until every put is published. */
static int
lf_rate(struct mg_datapath *dp, struct lf_run *r, unsigned rate)
{
	static struct mg_dp_event ev[4096];
	static uint32_t wait_deny[LF_IPS]; /* control: update index + 1 of a deny to spot */
	struct lf_writer w = {.port = r->port, .rate = rate};
	uint64_t applied = 0, seen = 0, lost0 = mg_datapath_monitor_lost(dp), deadline;
	uint64_t *a = NULL, *b = NULL, *m = NULL, publishes = 0, bad = 0;
	struct mg_dp_counters c0, c1;
	size_t na = 0, nb = 0, nm = 0, nd = 0;
	uint64_t t_start;
	pthread_t th;
	int rc = 0;

	w.paced = (uint64_t)rate * r->secs;
	w.cap = w.paced + LF_IPS;
	w.u = calloc(w.cap, sizeof(*w.u));
	if (w.u == NULL)
		return -ENOMEM;
	memset(wait_deny, 0, sizeof(wait_deny));
	for (uint32_t s = 0; s < LF_IPS; s++)
		if (lf_identity(r->ipc, s) != ID_CLIENT) {
			fprintf(stderr, "kvsync: FAIL: test IP %u not allowed before the run\n", s);
			rc = -EPROTO;
			goto out;
		}
	mg_datapath_counters(dp, &c0);
	t_start = mg_time_ns();
	rc = pthread_create(&th, NULL, lf_writer_main, &w);
	if (rc != 0) {
		rc = -rc;
		goto out;
	}
	deadline = mg_time_ns() + ((uint64_t)r->secs + 30) * 1000000000ull;
	for (;;) {
		uint32_t *changed = NULL;
		size_t n_changed = 0;
		int n = mg_kv_sync_poll(r->s, &changed, &n_changed);
		uint32_t n_sent;
		unsigned got;

		free(changed);
		if (n < 0) {
			rc = n;
			break;
		}
		if (mg_ipcache_pending(r->ipc) > 0 || n > 0) {
			int p = mg_datapath_publish(dp, r->ipc, NULL);
			uint64_t now = mg_time_ns();

			if (p < 0) {
				rc = p;
				break;
			}
			publishes++;
			/* The log is applied in write order: the next n puts. */
			for (uint64_t j = applied; j < applied + (uint64_t)n && j < w.cap; j++) {
				struct lf_upd *u = &w.u[j];

				if (lf_identity(r->ipc, u->slot) !=
				    (u->deny ? ID_FILLER(slot_entry(u->slot) % N_FILLER)
				             : ID_CLIENT))
					bad++;
				atomic_store_explicit(&u->pub, now, memory_order_release);
			}
			applied += (uint64_t)n;
		}
		/* Register the denies to spot before reading the frames' events. */
		n_sent = atomic_load_explicit(&w.n_sent, memory_order_acquire);
		for (; seen < n_sent; seen++)
			wait_deny[w.u[seen].slot] = w.u[seen].deny ? (uint32_t)seen + 1 : 0;
		/* TSC -> CLOCK_MONOTONIC from a pair read now: the events are recent, so
		 * an error in the TSC rate estimate barely matters. */
		uint64_t mono1 = mg_time_ns(), tsc1 = rte_get_tsc_cycles();

		while ((got = mg_datapath_monitor_drain(dp, ev, MG_ARRAY_SIZE(ev))) > 0)
			for (unsigned i = 0; i < got; i++) {
				uint32_t ip, s, k;
				uint64_t t;

				if (ev[i].family != MG_AF_INET)
					continue;
				memcpy(&ip, ev[i].src, 4);
				s = ntohl(ip) - ((10u << 24) | 2u);
				if (s >= LF_IPS || (k = wait_deny[s]) == 0 ||
				    ev[i].src_id != ID_FILLER(slot_entry(s) % N_FILLER))
					continue;
				if (ev[i].tsc <= tsc1)
					t = mono1 -
					    (tsc1 - ev[i].tsc) * 1000000ull / (r->hz / 1000);
				else /* drained after the pair was read */
					t = mono1 +
					    (ev[i].tsc - tsc1) * 1000000ull / (r->hz / 1000);
				if (t < w.u[k - 1].sent)
					continue; /* a frame of an earlier deny of this IP */
				atomic_store(&w.u[k - 1].mon, t);
				wait_deny[s] = 0;
			}
		if (atomic_load(&w.done) && applied >= atomic_load(&w.n_sent))
			break;
		if (mg_time_ns() > deadline) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	mg_datapath_counters(dp, &c1);
	pthread_join(th, NULL);
	if (rc == 0 && w.rc < 0)
		rc = w.rc;
	if (rc < 0)
		goto out;
	uint32_t n_sent = atomic_load(&w.n_sent);
	double secs = (double)(mg_time_ns() - t_start) / 1e9;

	if (applied != n_sent || bad != 0) {
		fprintf(stderr,
		        "kvsync: FAIL: %u puts, %" PRIu64 " applied, %" PRIu64
		        " published with a wrong identity\n",
		        n_sent, applied, bad);
		rc = -EPROTO;
		goto out;
	}
	a = calloc(n_sent, sizeof(*a));
	b = calloc(n_sent, sizeof(*b));
	m = calloc(n_sent, sizeof(*m));
	if (a == NULL || b == NULL || m == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t j = 0; j < n_sent; j++) {
		uint64_t pub = atomic_load(&w.u[j].pub), mon = atomic_load(&w.u[j].mon);

		if (pub == 0) {
			fprintf(stderr, "kvsync: FAIL: put %u never published\n", j);
			rc = -EPROTO;
			goto out;
		}
		a[na++] = pub - w.u[j].sent;
		if (!w.u[j].deny)
			continue;
		nd++;
		b[nb++] = pub - w.u[j].sent;
		if (mon != 0)
			m[nm++] = mon - w.u[j].sent;
	}
	printf("latency+worker %5u updates/s: %u puts (%zu deny, %zu allow) in %.2f s (%.0f/s), "
	       "all %" PRIu64 " applied and published in %" PRIu64
	       " publications, ipcache checked\n",
	       rate, n_sent, nd, n_sent - nd, secs, n_sent / secs, applied, publishes);
	printf("  worker forwarded %.0f frames/s meanwhile (allowed %.0f/s, denied %.0f/s); "
	       "monitor events lost %" PRIu64 "\n",
	       (double)(fwd_rx(&c1) - fwd_rx(&c0)) / secs, (double)(c1.allowed - c0.allowed) / secs,
	       (double)(c1.denied_ingress + c1.denied_egress - c0.denied_ingress -
	                c0.denied_egress) /
	               secs,
	       mg_datapath_monitor_lost(dp) - lost0);
	lf_print("put -> publish returned, all", a, na, n_sent);
	lf_print("put -> publish returned, denies", b, nb, nd);
	lf_print("put -> first frame dropped, denies", m, nm, nd);
out:
	free(a);
	free(b);
	free(m);
	free(w.u);
	return rc;
}

static int
lf_tick(struct mg_datapath *dp, void *arg)
{
	struct lf_run *r = arg;
	uint64_t until = mg_time_ns() + LF_WARMUP_NS;

	/* warm-up: the worker forwards, the client idles */
	while (mg_time_ns() < until) {
		uint32_t *changed = NULL;
		size_t n = 0;

		if (mg_kv_sync_poll(r->s, &changed, &n) < 0)
			break;
		free(changed);
	}
	r->rc = mg_datapath_monitor_set(dp, MG_DP_MON_DROPS);
	r->hz = rte_get_tsc_hz();
	if (r->rc == 0)
		r->rc = lf_rate(dp, r, 1000);
	fflush(stdout);
	if (r->rc == 0)
		r->rc = lf_rate(dp, r, 10000);
	mg_datapath_monitor_set(dp, 0);
	return 1;
}

/* The test IPs start allowed: their entries move to the client before the initial sync. */
static int
lf_preset(redisContext *c)
{
	unsigned pending = 0;
	int rc = 0;

	for (uint32_t s = 0; s < LF_IPS && rc == 0; s++) {
		char key[MG_KV_KEY_MAX], *val;
		struct mg_kv_ip_pair p;

		entry_of(slot_entry(s), &p);
		p.prefix.identity = ID_CLIENT;
		val = mg_kv_ip_pair_encode(&p);
		if (val == NULL ||
		    mg_kv_ip_key(key, sizeof(key), MG_KV_SCOPE_STATE, CLUSTER, &p.prefix, true) < 0)
			rc = -EINVAL;
		else {
			redisAppendCommand(c, "SET %s %s", key, val);
			pending++;
		}
		free(val);
	}
	if (pending > 0) {
		int r2 = drain(c, pending);

		rc = rc < 0 ? rc : r2;
	}
	return rc;
}

static int
forward_run(unsigned port, uint32_t n, const char *lua, size_t lua_len, unsigned secs,
            unsigned rate, unsigned nw, const char *lcores, unsigned batch, unsigned read_count,
            unsigned backlog, bool lat)
{
	char dir[] = "/tmp/mgbench-kvf.XXXXXX", pcap[128], cfgpath[128], vdev[2][256];
	char url[64];
	struct mg_kv_sync_params sp = {.url = url,
	                               .n_clusters = 1,
	                               .clusters = cluster_params,
	                               .block_ms = 1,
	                               .command_ms = 60000,
	                               .read_count = read_count};
	struct fwd_writer *w = NULL;
	struct fwd_run k = {0};
	struct mg_error err = {0};
	struct mg_identity_table *ids = NULL;
	struct mg_ipcache *ipc = NULL;
	struct mg_kv_sync *s = NULL;
	struct mg_policy_set *set = NULL;
	struct mg_policy *pol = NULL;
	struct mg_config *cfg = NULL;
	struct rte_rcu_qsbr *qsbr = NULL;
	struct mg_datapath *dp = NULL;
	uint32_t *changed = NULL;
	size_t n_changed = 0;
	char *eal_argv[16];
	int eal_argc = 0, rc;
	redisContext *c;
	FILE *f;

	if (mkdtemp(dir) == NULL)
		return -errno;
	snprintf(pcap, sizeof(pcap), "%s/frames.pcap", dir);
	snprintf(cfgpath, sizeof(cfgpath), "%s/gw.yaml", dir);
	for (int i = 0; i < 2; i++)
		snprintf(vdev[i], sizeof(vdev[i]), "--vdev=net_pcap%d,rx_pcap=%s,infinite_rx=1", i,
		         pcap);
	rc = fwd_pcap(pcap, lat ? LF_IPS : FWD_FRAMES);
	f = rc == 0 ? fopen(cfgpath, "w") : NULL;
	if (f == NULL) {
		rc = rc < 0 ? rc : -errno;
		goto out;
	}
	fprintf(f, "version: 1\neal: [\"--no-huge\"]\n"
	           "datapath:\n  mode: wire\n  mbufs: 16383\n  ports:\n"
	           "    - {name: a, device: net_pcap0, peer: b}\n"
	           "    - {name: b, device: net_pcap1, peer: a}\n"
	           "cluster: {name: " CLUSTER ", id: 1}\nconntrack: {max_entries: 8192}\n");
	if (fclose(f) != 0) {
		rc = -errno;
		goto out;
	}
	c = connect_port(port);
	if (c == NULL) {
		rc = -ECONNREFUSED;
		goto out;
	}
	rc = fill(c, n, lua, lua_len);
	if (rc == 0 && lat)
		rc = lf_preset(c);
	redisFree(c);
	if (rc < 0)
		goto out;

	eal_argv[eal_argc++] = (char *)"meshgate-bench";
	eal_argv[eal_argc++] = (char *)"-l";
	eal_argv[eal_argc++] = (char *)lcores;
	eal_argv[eal_argc++] = (char *)"--no-huge";
	eal_argv[eal_argc++] = (char *)"-m";
	eal_argv[eal_argc++] = (char *)"512";
	eal_argv[eal_argc++] = (char *)"--no-pci";
	eal_argv[eal_argc++] = (char *)"--file-prefix";
	eal_argv[eal_argc++] = (char *)"mgbench-kvf";
	eal_argv[eal_argc++] = (char *)"--log-level=lib.eal:error";
	eal_argv[eal_argc++] = vdev[0];
	eal_argv[eal_argc++] = vdev[1];
	if (rte_eal_init(eal_argc, eal_argv) < 0) {
		fprintf(stderr, "kvsync: EAL: %s\n", rte_strerror(rte_errno));
		rc = -EINVAL;
		goto out;
	}
	cfg = mg_config_load(cfgpath, &err);
	qsbr = mg_datapath_qsbr_create();
	ids = mg_identity_table_create(MG_CLUSTER_MODE_255);
	{
		struct mg_ipcache_params ip = {.entries_hint = n, .qsbr = qsbr};

		ipc = qsbr ? mg_ipcache_create(&ip) : NULL;
	}
	if (cfg == NULL || ids == NULL || ipc == NULL) {
		fprintf(stderr, "kvsync: %s\n", cfg == NULL ? err.msg : "out of memory");
		rc = -ENOMEM;
		goto eal;
	}
	snprintf(url, sizeof(url), "127.0.0.1:%u", port);
	s = mg_kv_sync_create(&sp, ids, ipc, &err);
	if (s == NULL || mg_kv_sync_initial(s, 120000, &changed, &n_changed, &err) < 0 ||
	    mg_ipcache_commit(ipc) < 0) {
		fprintf(stderr, "kvsync: sync: %s\n", err.msg);
		rc = -EIO;
		goto eal;
	}
	free(changed);
	pol = server_policy(ids, &set);
	dp = pol ? mg_datapath_create(cfg, ipc, pol, qsbr, &err) : NULL;
	if (dp == NULL) {
		fprintf(stderr, "kvsync: data path: %s\n", err.msg);
		mg_policy_free(pol);
		rc = -EIO;
		goto eal;
	}
	if (lat) {
		struct lf_run r = {.s = s, .ipc = ipc, .port = port, .secs = secs};
		volatile int never = 0;

		lf_pin_redis();
		rc = mg_datapath_start(dp);
		if (rc == 0)
			mg_datapath_run(dp, &never, lf_tick, &r);
		mg_datapath_stop(dp);
		rc = rc < 0 ? rc : r.rc;
		goto dp;
	}
	/* The writers' keys and values, encoded before the clock starts. */
	w = calloc(nw, sizeof(*w));
	char **keys = calloc(n, sizeof(*keys)), **vals = calloc(2 * (size_t)n, sizeof(*vals));
	if (w == NULL || keys == NULL || vals == NULL) {
		free(keys);
		free(vals);
		rc = -ENOMEM;
		goto dp;
	}
	for (uint32_t i = 1; i < n && rc == 0; i++) {
		struct mg_kv_ip_pair p;
		char key[MG_KV_KEY_MAX];

		entry_of(i, &p);
		if (mg_kv_ip_key(key, sizeof(key), MG_KV_SCOPE_STATE, CLUSTER, &p.prefix, true) <
		            0 ||
		    (keys[i] = strdup(key)) == NULL)
			rc = -ENOMEM;
		p.prefix.identity = ID_CLIENT;
		if (rc == 0 && (vals[2 * i] = mg_kv_ip_pair_encode(&p)) == NULL)
			rc = -ENOMEM;
		p.prefix.identity = ID_FILLER((i + 1) % N_FILLER);
		if (rc == 0 && (vals[2 * i + 1] = mg_kv_ip_pair_encode(&p)) == NULL)
			rc = -ENOMEM;
	}
	for (unsigned i = 0; i < nw; i++) {
		/* entry 0 is the server: writers share 1 .. n-1 */
		w[i].port = port;
		w[i].rate = rate / nw;
		w[i].batch = batch;
		w[i].first = 1 + (uint32_t)((uint64_t)(n - 1) * i / nw);
		w[i].n = 1 + (uint32_t)((uint64_t)(n - 1) * (i + 1) / nw) - w[i].first;
		w[i].keys = keys;
		w[i].vals = vals;
	}
	if (rc == 0) {
		volatile int never = 0;

		k.s = s;
		k.ipc = ipc;
		k.w = w;
		k.nw = nw;
		k.secs = secs;
		k.backlog = backlog;                   /* below the log's MAXLEN */
		k.next = mg_time_ns() + 1000000000ull; /* warm-up */
		rc = mg_datapath_start(dp);
		if (rc == 0)
			mg_datapath_run(dp, &never, fwd_tick, &k);
		mg_datapath_stop(dp);
		fwd_writers_stop(&k); /* stopped early: the writers may run */
		rc = rc < 0 ? rc : k.rc;
	}
	if (rc == 0 && k.phase < 5) {
		fprintf(stderr, "kvsync: forward: the updates were not all applied (phase %d)\n",
		        k.phase);
		rc = -ETIMEDOUT;
	}
	if (rc == 0 && k.phase >= 5) {
		const struct fwd_mark *m = k.m;
		uint64_t written = fwd_written(&k);
		struct mg_kv_sync_stats st;

		mg_kv_sync_stats(s, 0, &st);
		printf("forward   without updates  %10.0f frames/s (allowed %.0f/s, denied "
		       "%.0f/s)\n",
		       fwd_rate(fwd_rx(&m[0].c), fwd_rx(&m[1].c), m[0].t, m[1].t),
		       fwd_rate(m[0].c.allowed, m[1].c.allowed, m[0].t, m[1].t),
		       fwd_rate(m[0].c.denied_ingress + m[0].c.denied_egress,
		                m[1].c.denied_ingress + m[1].c.denied_egress, m[0].t, m[1].t));
		printf("forward   with updates     %10.0f frames/s (allowed %.0f/s, denied "
		       "%.0f/s)\n",
		       fwd_rate(fwd_rx(&m[2].c), fwd_rx(&m[3].c), m[2].t, m[3].t),
		       fwd_rate(m[2].c.allowed, m[3].c.allowed, m[2].t, m[3].t),
		       fwd_rate(m[2].c.denied_ingress + m[2].c.denied_egress,
		                m[3].c.denied_ingress + m[3].c.denied_egress, m[2].t, m[3].t));
		printf("updates   written %10.0f/s  applied %10.0f/s  ipcache changes published "
		       "%10.0f/s  in %.0f publications/s (largest publish %.2f ms)\n",
		       fwd_rate(m[2].written, m[3].written, m[2].t, m[3].t),
		       fwd_rate(m[2].applied, m[3].applied, m[2].t, m[3].t),
		       fwd_rate(m[2].published, m[3].published, m[2].t, m[3].t),
		       fwd_rate(m[2].publishes, m[3].publishes, m[2].t, m[3].t),
		       (double)k.max_publish_ns / 1e6);
		printf("          after the writers stopped: written %" PRIu64 ", applied %" PRIu64
		       " (%s); resyncs %" PRIu64 "\n",
		       written, k.applied, k.applied >= written ? "all applied" : "NOT all applied",
		       st.resyncs[0] + st.resyncs[1] + st.resyncs[2] + st.resyncs[3]);
		if (k.phase == 7) {
			printf("catch-up  %" PRIu64 " updates written while the client held off, "
			       "in %.2f s: %10.0f updates/s written\n",
			       m[4].written - k.backlog_w0, (double)(m[4].t - k.backlog_t0) / 1e9,
			       fwd_rate(k.backlog_w0, m[4].written, k.backlog_t0, m[4].t));
			printf("catch-up  %" PRIu64 " updates applied in %.2f s: %10.0f updates/s "
			       "applied and published in %.0f publications/s, forwarding %10.0f "
			       "frames/s meanwhile (allowed %.0f/s, denied %.0f/s)\n",
			       m[5].applied - m[4].applied, (double)(m[5].t - m[4].t) / 1e9,
			       fwd_rate(m[4].applied, m[5].applied, m[4].t, m[5].t),
			       fwd_rate(m[4].publishes, m[5].publishes, m[4].t, m[5].t),
			       fwd_rate(fwd_rx(&m[4].c), fwd_rx(&m[5].c), m[4].t, m[5].t),
			       fwd_rate(m[4].c.allowed, m[5].c.allowed, m[4].t, m[5].t),
			       fwd_rate(m[4].c.denied_ingress + m[4].c.denied_egress,
			                m[5].c.denied_ingress + m[5].c.denied_egress, m[4].t,
			                m[5].t));
		} else
			printf("catch-up  not finished (phase %d)\n", k.phase);
		if (k.applied < written)
			rc = -ETIMEDOUT;
	}
	for (uint32_t i = 0; i < n; i++) {
		free(keys[i]);
		free(vals[2 * i]);
		free(vals[2 * i + 1]);
	}
	free(keys);
	free(vals);
dp:
	mg_datapath_free(dp);
eal:
	mg_kv_sync_free(s);
	mg_ipcache_free(ipc);
	rte_free(qsbr);
	mg_policy_set_free(set);
	mg_identity_table_free(ids);
	mg_config_free(cfg);
	rte_eal_cleanup();
out:
	free(w);
	unlink(pcap);
	unlink(cfgpath);
	rmdir(dir);
	return rc;
}

/* ---- driver ---- */

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: meshgate-bench kvsync [--redis-port P] [--entries N[,N...]] "
	        "[--functions meshgate.lua]\n"
	        "       meshgate-bench kvsync --updates-while-forwarding [--entries N] "
	        "[--seconds S] [--update-rate R] [--writers W] [--lcores L] [--batch B] "
	        "[--read-count C] [--backlog K]\n"
	        "  The second form forwards crafted frames through the data path (EAL, net_pcap\n"
	        "  ports, L = main,worker lcores, default 0,1) while W writer connections\n"
	        "  (default 2) put R updates per second (default 150000) in total, in FCALL\n"
	        "  mg_batch calls of B changes (default 256; 0: one FCALL mg_put each),\n"
	        "  applied by the sync client (XREAD COUNT C, default 10000) and published\n"
	        "  with mg_datapath_publish. Then the client holds off while the writers put\n"
	        "  K updates (default 1200000, at most 1500000) into the log as fast as Redis\n"
	        "  takes them, and catches up on them while the worker forwards.\n"
	        "       meshgate-bench kvsync --clusters C [--entries-per-cluster N]\n"
	        "  The fourth form is a gateway's start in front of a mesh: C clusters (at\n"
	        "  most 255) of N entries each (default 1000) in the per-cluster layout of one\n"
	        "  Redis, the initial sync of all of them, then full resyncs of all of them.\n"
	        "       meshgate-bench kvsync --latency-while-forwarding [--entries N] "
	        "[--seconds S] [--lcores L]\n"
	        "  The third form measures write-to-effective latency at 1k and 10k puts/s\n"
	        "  (S seconds each, default 3) while a worker forwards, every batch published\n"
	        "  with mg_datapath_publish (see bench_kvsync.c).\n"
	        "  Without --redis-port, starts /usr/bin/redis-server on a free loopback port.\n"
	        "  With it, FLUSHES database 0 of that server.\n");
}

static char *
read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

static int
run_size(unsigned port, uint32_t n, const char *lua, size_t lua_len, bool with_latency)
{
	redisContext *c = connect_port(port);
	struct mg_identity_table *ids = NULL;
	struct mg_ipcache *ipc = NULL;
	struct mg_kv_sync *s = NULL;
	struct mg_policy_set *set = NULL;
	struct mg_policy *pol = NULL;
	uint64_t *sent = NULL, t0;
	double secs = 0, fill_secs, rb;
	int rc;

	if (c == NULL) {
		fprintf(stderr, "kvsync: cannot connect to 127.0.0.1:%u\n", port);
		return -ECONNREFUSED;
	}
	t0 = mg_time_ns();
	rc = fill(c, n, lua, lua_len);
	fill_secs = (double)(mg_time_ns() - t0) / 1e9;
	redisFree(c);
	if (rc < 0) {
		fprintf(stderr, "kvsync: fill failed (%s)\n", strerror(-rc));
		return rc;
	}
	rc = cold_sync(port, n, &ids, &ipc, &s, &secs);
	if (rc < 0)
		goto out;
	rb = redis_benchmark_get(port, n);
	printf("cold sync %8" PRIu32 " entries (%u identities)  fill %.2f s  sync %.2f s  "
	       "%.0f entries/s | redis-benchmark GET -P 64: %.0f req/s | ratio %.3f\n",
	       n, N_FILLER + 2, fill_secs, secs, (double)n / secs, rb,
	       rb > 0 ? (double)n / secs / rb : 0.0);
	if (!with_latency)
		goto out;
	pol = server_policy(ids, &set);
	sent = calloc(N_SLOTS, sizeof(*sent));
	if (pol == NULL || sent == NULL) {
		rc = -EINVAL;
		goto out;
	}
	rc = latency_run(port, s, ipc, pol, 1000, 0, sent);
	if (rc == 0)
		rc = latency_run(port, s, ipc, pol, 10000, 1000 * LAT_SECS, sent);
out:
	free(sent);
	mg_policy_free(pol);
	mg_policy_set_free(set);
	mg_kv_sync_free(s);
	mg_ipcache_free(ipc);
	mg_identity_table_free(ids);
	return rc;
}

int
mg_bench_kvsync(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"redis-port", required_argument, NULL, 'p'},
	        {"entries", required_argument, NULL, 'e'},
	        {"functions", required_argument, NULL, 'f'},
	        {"updates-while-forwarding", no_argument, NULL, 'u'},
	        {"latency-while-forwarding", no_argument, NULL, 'L'},
	        {"seconds", required_argument, NULL, 's'},
	        {"update-rate", required_argument, NULL, 'r'},
	        {"writers", required_argument, NULL, 'w'},
	        {"lcores", required_argument, NULL, 'l'},
	        {"batch", required_argument, NULL, 'b'},
	        {"read-count", required_argument, NULL, 'c'},
	        {"backlog", required_argument, NULL, 'k'},
	        {"clusters", required_argument, NULL, 'C'},
	        {"entries-per-cluster", required_argument, NULL, 'P'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *entries = NULL, *functions = MG_FUNCTIONS_DEFAULT, *lcores = "0,1";
	unsigned secs = 5, rate = 150000, writers = 2, batch = MG_KV_WRITER_BATCH_DEFAULT;
	unsigned read_count = 10000, backlog = 1200000, nclusters = 0, per_cluster = 1000;
	bool forward = false, lat = false, secs_set = false;
	struct server srv = {0};
	unsigned port = 0;
	char *list = NULL, *save = NULL, *tok, *lua = NULL;
	size_t lua_len = 0;
	int opt, rc = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			port = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'e':
			entries = optarg;
			break;
		case 'f':
			functions = optarg;
			break;
		case 'u':
			forward = true;
			break;
		case 'L':
			forward = lat = true;
			break;
		case 's':
			secs = (unsigned)strtoul(optarg, NULL, 0);
			secs_set = true;
			break;
		case 'r':
			rate = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'w':
			writers = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'l':
			lcores = optarg;
			break;
		case 'b':
			batch = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'c':
			read_count = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'k':
			backlog = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'C':
			nclusters = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'P':
			per_cluster = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (lat && !secs_set)
		secs = LAT_FWD_SECS;
	if (entries == NULL)
		entries = forward ? "100000" : "100000,1000000";
	if (forward &&
	    (secs == 0 || rate == 0 || writers == 0 || writers > 16 || batch > MG_KV_BATCH_MAX ||
	     read_count == 0 || backlog == 0 || backlog > 1500000)) {
		usage(stderr);
		return 2;
	}
	lua = read_all(functions, &lua_len);
	if (lua == NULL) {
		fprintf(stderr, "kvsync: cannot read %s (--functions)\n", functions);
		return 1;
	}
	if (port == 0) {
		rc = server_start(&srv);
		if (rc < 0) {
			fprintf(stderr, "kvsync: cannot start redis-server: %s\n", strerror(-rc));
			goto out;
		}
		port = srv.port;
		lf_redis_pid = srv.pid;
	}
	printf("kvsync: redis-server 127.0.0.1:%u; cluster %s (id %u); entries half IPv4 /32, "
	       "half IPv6 /128\n"
	       "  effective = the first mg_kv_sync_poll return (batch committed) after which "
	       "mg_ipcache_lookup + mg_policy_verdict give the new verdict\n",
	       port, CLUSTER, CLUSTER_ID);
	fflush(stdout);
	if (nclusters > 0) {
		if (per_cluster == 0 || per_cluster > 65000) {
			fprintf(stderr, "kvsync: --entries-per-cluster: 1 to 65000\n");
			rc = -EINVAL;
			goto out;
		}
		rc = multi_run(port, nclusters, per_cluster, lua, lua_len);
		goto out;
	}
	if (forward) {
		uint32_t n = (uint32_t)strtoul(entries, NULL, 0);

		if (n < 2 * (FWD_FRAMES + 1)) {
			fprintf(stderr, "kvsync: --entries must be >= %u\n", 2 * (FWD_FRAMES + 1));
			rc = -EINVAL;
			goto out;
		}
		if (lat) {
			printf("latency+worker %" PRIu32
			       " entries, %u s per rate, lcores %s (main: "
			       "poll + mg_datapath_publish, then the monitor drain; one worker), "
			       "%u "
			       "test IPs in the frames\n"
			       "  one update = one FCALL mg_put moving a test IP between the "
			       "client "
			       "(allowed) and a filler (denied) identity\n",
			       n, secs, lcores, LF_IPS);
			fflush(stdout);
			rc = forward_run(port, n, lua, lua_len, secs, rate, writers, lcores, batch,
			                 read_count, backlog, true);
			if (rc < 0)
				fprintf(stderr, "kvsync: latency while forwarding: %s\n",
				        strerror(-rc));
			goto out;
		}
		printf("forward   %" PRIu32 " entries, %u s per phase, %u writer connection(s) at "
		       "%u updates/s in total, lcores %s\n",
		       n, secs, writers, rate, lcores);
		if (batch != 0)
			printf("          writers: FCALL mg_batch of %u changes, up to %u calls in "
			       "flight per connection; sync client: XREAD COUNT %u\n",
			       batch, MG_KV_WRITER_PIPELINE, read_count);
		else
			printf("          writers: FCALL mg_put, pipelined rounds of %u; sync "
			       "client: "
			       "XREAD COUNT %u\n",
			       FWD_BATCH, read_count);
		fflush(stdout);
		rc = forward_run(port, n, lua, lua_len, secs, rate, writers, lcores, batch,
		                 read_count, backlog, false);
		if (rc < 0)
			fprintf(stderr, "kvsync: forward: %s\n", strerror(-rc));
		goto out;
	}
	list = strdup(entries);
	if (list == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (tok = strtok_r(list, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
		uint32_t n = (uint32_t)strtoul(tok, NULL, 0);

		if (n < 2 * (N_SLOTS + 1)) {
			fprintf(stderr, "kvsync: --entries: each size must be >= %u\n",
			        2 * (N_SLOTS + 1));
			rc = -EINVAL;
			break;
		}
		/* latency with the first size's state: the sync client's tail cost barely depends on N */
		rc = run_size(port, n, lua, lua_len, tok == list);
		fflush(stdout);
	}
out:
	free(list);
	free(lua);
	server_stop(&srv);
	return rc == 0 ? 0 : 1;
}
