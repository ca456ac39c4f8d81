/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * etcd put -> the gateway's verdict changed, through the whole path: a
 * writer thread puts ip entries into the remote cluster's etcd (as root,
 * lib/etcd) at a paced rate, each moving one address not touched before
 * from a filler identity (denied by the server's ingress policy) to the
 * client identity (allowed on TCP 8080); the replicator (running, synced)
 * sees the watch event and writes it to Redis; a gateway (lib/gateway,
 * set up as the daemon sets its own up: site cluster "site", kvstore
 * clusters [cluster-b], the server's policy as cluster-b's) runs its sync
 * step (mg_gateway_sync_tick: poll of the Redis log, one ipcache commit:
 * it has no data path) in a loop on the main thread, and after each step
 * the verdict a worker would compute now is looked up (mg_ipcache_lookup
 * of the address, mg_policy_verdict towards the server). Latency = the
 * first step that gives the new verdict - the time just before the put's
 * etcd request. The writer sends, at each moment, every put that is due
 * in one txn (up to 128): one put per txn while etcd keeps up, several
 * when a txn takes longer than the gap between two puts.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "bench_kvsync_priv.h"
#include "bench_replicator_priv.h"

#define LAT_POLICY "server-policy.yaml"
#define LAT_CONFIG "gw.yaml"

static const char lat_policy[] =
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
        "metadata: {name: server, namespace: " RB_NS "}\n"
        "spec:\n"
        "  endpointSelector: {matchLabels: {app: server}}\n"
        "  ingress:\n"
        "  - fromEndpoints: [{matchLabels: {app: client, io.cilium.k8s.policy.cluster: " RB_CLUSTER
        "}}]\n"
        "    toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]\n";

static int
write_file(const char *dir, const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return -errno;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -errno;
}

/* The gateway: config and policy in @p dir, the initial sync from Redis. */
static struct mg_gateway *
gw_open(const char *dir, unsigned port)
{
	struct mg_gateway_params gp = {0};
	struct mg_error err = {0};
	struct mg_config *cfg;
	struct mg_gateway *gw;
	char yaml[1024], path[128];

	snprintf(yaml, sizeof(yaml),
	         "version: 1\neal: [\"--no-huge\"]\n"
	         "datapath:\n  mode: wire\n  mbufs: 16383\n  ports:\n"
	         "    - {name: a, device: net_pcap0, peer: b}\n"
	         "    - {name: b, device: net_pcap1, peer: a}\n"
	         "cluster: {name: site, id: 1}\nconntrack: {max_entries: 8192}\n"
	         "policy:\n  sources: [{cluster: " RB_CLUSTER ", path: " LAT_POLICY "}]\n"
	         "kvstore:\n  redis: \"redis://127.0.0.1:%u\"\n  clusters: [" RB_CLUSTER "]\n"
	         "  sync_timeout: 120\n  block_ms: 5\n",
	         port);
	if (write_file(dir, LAT_POLICY, lat_policy) < 0 || write_file(dir, LAT_CONFIG, yaml) < 0) {
		fprintf(stderr, "replicator: cannot write the gateway's config\n");
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/" LAT_CONFIG, dir);
	cfg = mg_config_load(path, &err);
	if (cfg == NULL) {
		fprintf(stderr, "replicator: gateway config: %s\n", err.msg);
		return NULL;
	}
	gw = mg_gateway_create(cfg, &gp, &err);
	if (gw == NULL || mg_gateway_start(gw, &err) < 0) {
		fprintf(stderr, "replicator: gateway: %s\n", err.msg);
		mg_gateway_free(gw);
		return NULL;
	}
	if (!mg_kv_sync_all_synced(mg_gateway_sync(gw))) {
		fprintf(stderr, "replicator: gateway: the initial sync did not finish\n");
		mg_gateway_free(gw);
		return NULL;
	}
	return gw;
}

static bool
id_allowed(const struct mg_gateway *gw, uint32_t src)
{
	return mg_policy_verdict(mg_gateway_policy(gw), src, rb_ident(RB_CLUSTER_ID, 0),
	                         MG_IPPROTO_TCP, 8080) == MG_VERDICT_ALLOW;
}

/* The verdict a worker computes now for ip entry @p i towards the server. */
static bool
ip_allowed(const struct mg_gateway *gw, const struct rb_data *d, uint32_t i)
{
	uint8_t addr[16] = {0};
	uint32_t be = htonl(rb_ip_addr(d, i));

	memcpy(addr, &be, 4);
	return id_allowed(
	        gw, mg_ipcache_lookup(mg_ipcache_reader(mg_gateway_ipcache(gw)), MG_AF_INET, addr));
}

struct lwriter {
	const struct rb_etcd *e;
	const struct rb_data *d;
	unsigned rate;
	uint32_t first, count;
	uint64_t *sent; /* per put (index k), ns before its txn */
	_Atomic uint32_t n_sent;
	uint64_t txns, txn_ns_sum, txn_ns_max;
	uint32_t max_batch;
	int rc;
	struct mg_error err;
};

static void *
lwriter_main(void *arg)
{
	struct lwriter *w = arg;
	static _Thread_local char keys[RB_TXN_MAX][96], vals[RB_TXN_MAX][400];
	const char *kp[RB_TXN_MAX], *vp[RB_TXN_MAX];
	size_t vl[RB_TXN_MAX];
	struct mg_etcd *c = rb_etcd_open(w->e, true, &w->err);
	uint64_t t0;
	uint32_t k = 0;

	if (c == NULL) {
		w->rc = -EIO;
		return NULL;
	}
	t0 = mg_time_ns();
	while (k < w->count && w->rc == 0) {
		uint64_t now = mg_time_ns(), due = (now - t0) * w->rate / 1000000000ull + 1;
		uint32_t n = 0;

		if (due > w->count)
			due = w->count;
		if (due <= k) {
			rb_wait_until(t0 + (uint64_t)k * 1000000000ull / w->rate);
			continue;
		}
		for (; k + n < due && n < RB_TXN_MAX; n++) {
			uint32_t i = w->first + k + n;

			rb_ip_kv(w->d, i, rb_ident(RB_CLUSTER_ID, 1), keys[n], sizeof(keys[n]),
			         vals[n], sizeof(vals[n]));
			kp[n] = keys[n];
			vp[n] = vals[n];
			vl[n] = strlen(vals[n]);
		}
		/* The send time is published before the put: a reader that sees the put sees it. */
		now = mg_time_ns();
		for (uint32_t j = 0; j < n; j++)
			w->sent[k + j] = now;
		atomic_store_explicit(&w->n_sent, k + n, memory_order_release);
		w->rc = mg_etcd_txn_put(c, n, kp, vp, vl, NULL, &w->err);
		uint64_t took = mg_time_ns() - now;
		w->txns++;
		w->txn_ns_sum += took;
		w->txn_ns_max = took > w->txn_ns_max ? took : w->txn_ns_max;
		w->max_batch = n > w->max_batch ? n : w->max_batch;
		k += n;
	}
	mg_etcd_close(c);
	return NULL;
}

static void
lat_report(unsigned rate, const struct lwriter *w, uint64_t *lat, double secs, bool *goal)
{
	double p50 = rb_pct_ms(lat, w->count, 500), p99 = rb_pct_ms(lat, w->count, 990);
	double max = (double)lat[w->count - 1] / 1e6;

	printf("  %5u puts/s: %6u puts in %.2f s (%.0f/s), %" PRIu64
	       " txns (%.2f puts each, at most %u; etcd txn %.2f ms mean, %.2f max)\n",
	       rate, w->count, secs, w->count / secs, w->txns, (double)w->count / (double)w->txns,
	       w->max_batch, (double)w->txn_ns_sum / (double)w->txns / 1e6,
	       (double)w->txn_ns_max / 1e6);
	printf("  %5u puts/s: put -> verdict changed  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms",
	       rate, p50, p99, max);
	if (rate == 1000) {
		*goal = p99 < 50;
		printf("  (goal p99 < 50 ms: %s)", *goal ? "met" : "NOT met");
	}
	printf("\n");
}

/* One rate: writer on, gateway steps until every put gave its new verdict. */
static int
lat_run(struct mg_gateway *gw, const struct rb_etcd *e, const struct rb_data *d, unsigned rate,
        uint32_t first, uint32_t count, bool *goal)
{
	struct lwriter w = {.e = e, .d = d, .rate = rate, .first = first, .count = count};
	uint64_t *lat = calloc(count, sizeof(*lat)), deadline, t_start;
	uint32_t next = 0;
	pthread_t th;
	int rc = 0;

	w.sent = calloc(count, sizeof(*w.sent));
	if (lat == NULL || w.sent == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t k = 0; k < count; k++)
		if (ip_allowed(gw, d, first + k)) {
			fprintf(stderr,
			        "replicator: FAIL: test address %u allowed before its put\n",
			        first + k);
			rc = -EPROTO;
			goto out;
		}
	t_start = mg_time_ns();
	if (pthread_create(&th, NULL, lwriter_main, &w) != 0) {
		rc = -EAGAIN;
		goto out;
	}
	deadline = t_start + ((uint64_t)count / rate + 30) * 1000000000ull;
	while (next < count && mg_time_ns() < deadline) {
		rc = kvsync_tick(gw);
		if (rc < 0)
			break;
		rc = 0;
		uint64_t now = mg_time_ns();
		uint32_t n_sent = atomic_load_explicit(&w.n_sent, memory_order_acquire);
		while (next < n_sent && ip_allowed(gw, d, first + next)) {
			lat[next] = now - w.sent[next];
			next++;
		}
		if (w.rc < 0)
			break;
	}
	pthread_join(th, NULL);
	if (rc == 0 && w.rc < 0) {
		fprintf(stderr, "replicator: writer: %s\n", w.err.msg);
		rc = w.rc;
	}
	if (rc == 0 && next < count) {
		fprintf(stderr, "replicator: FAIL: %u of %u puts never changed the verdict\n",
		        count - next, count);
		rc = -ETIMEDOUT;
	}
	if (rc == 0)
		lat_report(rate, &w, lat, (double)(mg_time_ns() - t_start) / 1e9, goal);
out:
	free(lat);
	free(w.sent);
	return rc;
}

int
rb_latency(const struct rb_etcd *e, const struct rb_data *d, struct rb_lat_opts *o)
{
	char dir[64] = "/tmp/mg-bench-rep-gw.XXXXXX", cmd[128];
	uint32_t n1 = 1000 * o->secs_1k, n10 = 10 * o->secs_10k_ms;
	struct mg_gateway *gw;
	int rc = 0;

	if (n1 + n10 > d->n_ips) {
		fprintf(stderr, "replicator: latency: %u test addresses, %u ip entries\n", n1 + n10,
		        d->n_ips);
		return -E2BIG;
	}
	if (mkdtemp(dir) == NULL)
		return -errno;
	printf("latency: etcd put -> the gateway's verdict changed (%u ip entries moved from a "
	       "denied to an allowed identity, each once; gateway: lib/gateway, block_ms 5, no "
	       "data path, verdict checked after every sync step)\n",
	       n1 + n10);
	gw = gw_open(dir, o->redis_port);
	if (gw == NULL)
		rc = -EIO;
	if (rc == 0 && (!id_allowed(gw, rb_ident(RB_CLUSTER_ID, 1)) ||
	                id_allowed(gw, rb_ident(RB_CLUSTER_ID, 2)))) {
		fprintf(stderr,
		        "replicator: FAIL: the policy does not allow client / deny filler\n");
		rc = -EPROTO;
	}
	if (rc == 0)
		rc = lat_run(gw, e, d, 1000, 0, n1, &o->goal_ok);
	bool unused;
	if (rc == 0)
		rc = lat_run(gw, e, d, 10000, n1, n10, &unused);
	mg_gateway_free(gw);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "replicator: could not remove %s\n", dir);
	return rc;
}
