/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What every `meshgate-bench kvsync` run shares: the test data (cluster
 * "cluster-a": a few hundred identities and N entries, half IPv4 /32, half
 * IPv6 /128, written with pipelined SETs in exactly the key layout and JSON
 * the writer produces, and the cluster config, log, epoch and canaries
 * created through the Function library as the writer does), the
 * redis-server the bench starts (no persistence, a temporary directory, a
 * free loopback port), redis-benchmark's GET rate for comparison, and the
 * gateway (lib/gateway) the latency and forwarding runs sync through, as
 * the daemon does: its config names that Redis and the server's policy
 * the verdicts are computed with.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_kvsync_priv.h"

/* Entry @p i of the fill: even i IPv4 10.x.y.z, odd i IPv6 fd00::i. */
void
kvsync_entry_of(uint32_t i, struct mg_kv_ip_pair *p)
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

/* ---- redis-server ---- */

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

redisContext *
kvsync_connect_port(unsigned port)
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

int
kvsync_server_start(struct server *s)
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
		redisContext *c = kvsync_connect_port(s->port);

		if (c != NULL) {
			redisFree(c);
			return 0;
		}
		usleep(25000);
	}
	return -ETIMEDOUT;
}

void
kvsync_server_stop(struct server *s)
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
int
kvsync_drain(redisContext *c, unsigned n)
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

int
kvsync_command_ok(redisContext *c, redisReply *r)
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

int
kvsync_fill_begin(redisContext *c, const char *lua, size_t lua_len)
{
	int rc = kvsync_command_ok(c, redisCommand(c, "FLUSHDB"));

	if (rc == 0)
		rc = kvsync_command_ok(c,
		                       redisCommand(c, "FUNCTION LOAD REPLACE %b", lua, lua_len));
	return rc;
}

int
kvsync_entry_kv(const struct mg_kv_ip_pair *p, enum mg_kv_scope scope, const char *cluster,
                char *key, char **val)
{
	*val = mg_kv_ip_pair_encode(p);
	if (*val == NULL ||
	    mg_kv_ip_key(key, MG_KV_KEY_MAX, scope, cluster, &p->prefix, true) < 0) {
		free(*val);
		*val = NULL;
		return -EINVAL;
	}
	return 0;
}

int
kvsync_fill_entry(redisContext *c, const struct mg_kv_ip_pair *p, enum mg_kv_scope scope,
                  const char *cluster, unsigned *pending)
{
	char key[MG_KV_KEY_MAX], *val;
	int rc = kvsync_entry_kv(p, scope, cluster, key, &val);

	if (rc < 0)
		return rc;
	redisAppendCommand(c, "SET %s %s", key, val);
	free(val);
	if (++*pending == PIPE_CHUNK) {
		rc = kvsync_drain(c, *pending);
		*pending = 0;
	}
	return rc;
}

int
kvsync_fill_config(redisContext *c, const char *name, const struct mg_kv_cluster_config *cc,
                   const char *now)
{
	char key[MG_KV_KEY_MAX], logk[MG_KV_KEY_MAX], epk[MG_KV_KEY_MAX];
	char *val = mg_kv_cluster_config_encode(cc);
	int rc = 0;

	/*
	 * The config goes through mg_put with the epoch key and a token, as the
	 * writer's first write does: that creates the log and sets the epoch.
	 */
	if (val == NULL || mg_kv_cluster_config_key(key, sizeof(key), name) < 0 ||
	    mg_kv_log_key(logk, sizeof(logk), name) < 0 ||
	    mg_kv_epoch_key(epk, sizeof(epk), name) < 0)
		rc = -EINVAL;
	if (rc == 0)
		rc = kvsync_command_ok(c, redisCommand(c, "FCALL mg_put 3 %s %s %s %s %s %s", key,
		                                       logk, epk, val, MAXLEN, "bench-epoch-1"));
	free(val);
	if (rc == 0 &&
	    mg_kv_synced_key(key, sizeof(key), name,
	                     cc->cached ? MG_KV_CACHE_IDENTITIES : MG_KV_STATE_IDENTITIES) >= 0)
		rc = kvsync_command_ok(c, redisCommand(c, "SET %s %s", key, now));
	if (rc == 0 && mg_kv_synced_key(key, sizeof(key), name,
	                                cc->cached ? MG_KV_CACHE_IP : MG_KV_STATE_IP) >= 0)
		rc = kvsync_command_ok(c, redisCommand(c, "SET %s %s", key, now));
	return rc;
}

int
kvsync_fill(redisContext *c, uint32_t n, const char *lua, size_t lua_len)
{
	struct mg_kv_cluster_config cc = {.id = CLUSTER_ID, .synced_canaries = true};
	char key[MG_KV_KEY_MAX], now[32];
	unsigned pending = 0;
	char *val = NULL;
	uint32_t i;
	time_t t = time(NULL);
	struct tm tm;
	int rc;

	rc = kvsync_fill_begin(c, lua, lua_len);
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

		kvsync_entry_of(i, &p);
		rc = kvsync_fill_entry(c, &p, MG_KV_SCOPE_STATE, CLUSTER, &pending);
	}
	if (pending > 0) {
		int r2 = kvsync_drain(c, pending);

		rc = rc < 0 ? rc : r2;
	}
	if (rc < 0)
		return rc;
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return kvsync_fill_config(c, CLUSTER, &cc, now);
}

/* ---- redis-benchmark ---- */

double
kvsync_redis_benchmark_get(unsigned port, uint32_t n)
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

/* ---- the gateway ---- */

/* The server's ingress policy: client to server TCP 8080 allowed, the fillers denied. */
static const char server_policy[] = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
                                    "metadata: {name: server, namespace: bench}\n"
                                    "spec:\n"
                                    "  endpointSelector: {matchLabels: {app: server}}\n"
                                    "  ingress:\n"
                                    "  - fromEndpoints: [{matchLabels: {app: client}}]\n"
                                    "    toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]\n";

#define GW_CONFIG "gw.yaml"
#define GW_POLICY "server-policy.yaml"

/*
 * The config: the data path of the forwarding runs (required, unused by
 * the others), cluster-a, the policy, and the kvstore section.
 */
static int
gw_write(const char *dir, unsigned port, unsigned block_ms)
{
	char path[64];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/" GW_POLICY, dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -errno;
	fputs(server_policy, f);
	if (fclose(f) != 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/" GW_CONFIG, dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -errno;
	fprintf(f,
	        "version: 1\neal: [\"--no-huge\"]\n"
	        "datapath:\n  mode: wire\n  mbufs: 16383\n  ports:\n"
	        "    - {name: a, device: net_pcap0, peer: b}\n"
	        "    - {name: b, device: net_pcap1, peer: a}\n"
	        "cluster: {name: " CLUSTER ", id: %u}\nconntrack: {max_entries: 8192}\n"
	        "policy:\n  sources: [{path: " GW_POLICY "}]\n"
	        "kvstore:\n  redis: \"redis://127.0.0.1:%u\"\n  clusters: [" CLUSTER "]\n"
	        "  sync_timeout: 120\n  block_ms: %u\n",
	        CLUSTER_ID, port, block_ms);
	if (fclose(f) != 0)
		rc = -errno;
	return rc;
}

int
kvsync_gateway_open(struct kvsync_gw *g, unsigned port, unsigned block_ms,
                    struct rte_rcu_qsbr *qsbr)
{
	struct mg_gateway_params gp = {.qsbr = qsbr};
	struct mg_error err = {0};
	struct mg_config *cfg;
	char path[64];
	int rc;

	strcpy(g->dir, "/tmp/mgbench-kvgw.XXXXXX");
	if (mkdtemp(g->dir) == NULL) {
		g->dir[0] = '\0';
		return -errno;
	}
	rc = gw_write(g->dir, port, block_ms);
	if (rc < 0) {
		fprintf(stderr, "kvsync: gateway config: %s\n", strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "%s/" GW_CONFIG, g->dir);
	cfg = mg_config_load(path, &err);
	if (cfg == NULL) {
		fprintf(stderr, "kvsync: gateway config: %s\n", err.msg);
		return -EINVAL;
	}
	/* The daemon's start: the initial sync, then the first compile. */
	g->gw = mg_gateway_create(cfg, &gp, &err);
	if (g->gw == NULL || mg_gateway_start(g->gw, &err) < 0) {
		fprintf(stderr, "kvsync: gateway: %s\n", err.msg);
		return -EIO;
	}
	if (!mg_kv_sync_all_synced(mg_gateway_sync(g->gw))) {
		fprintf(stderr, "kvsync: gateway: the initial sync did not finish\n");
		return -ETIMEDOUT;
	}
	return 0;
}

void
kvsync_gateway_close(struct kvsync_gw *g)
{
	char path[64];

	mg_gateway_free(g->gw);
	g->gw = NULL;
	if (g->dir[0] == '\0')
		return;
	snprintf(path, sizeof(path), "%s/" GW_CONFIG, g->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/" GW_POLICY, g->dir);
	unlink(path);
	rmdir(g->dir);
	g->dir[0] = '\0';
}

int
kvsync_tick(struct mg_gateway *gw)
{
	struct mg_gateway_stats st;
	int n = mg_gateway_sync_tick(gw);

	if (n < 0)
		return n;
	/* A batch the gateway could not publish was discarded (and counted). */
	mg_gateway_stats(gw, &st);
	return st.sync_failures == 0 ? n : -EIO;
}
