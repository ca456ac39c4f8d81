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
 * The bench starts its own redis-server (no persistence, temporary
 * directory, free loopback port) unless --redis-port names one; the data
 * is then written into that server's database 0, which is flushed first.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
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

#include "bench_kvsync.h"
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
#define MAXLEN "100000"

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
latency_run(unsigned port, struct mg_kv_sync *s, const struct mg_ipcache *ipc,
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

/* ---- driver ---- */

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: meshgate-bench kvsync [--redis-port P] [--entries N[,N...]] "
	        "[--functions meshgate.lua]\n"
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
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *entries = "100000,1000000", *functions = MG_FUNCTIONS_DEFAULT;
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
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
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
	}
	printf("kvsync: redis-server 127.0.0.1:%u; cluster %s (id %u); entries half IPv4 /32, "
	       "half IPv6 /128\n"
	       "  effective = the first mg_kv_sync_poll return (batch committed) after which "
	       "mg_ipcache_lookup + mg_policy_verdict give the new verdict\n",
	       port, CLUSTER, CLUSTER_ID);
	fflush(stdout);
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
