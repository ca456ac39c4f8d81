/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgate-bench: the project's benchmarks, in the spirit of DPDK's
 * app/test-acl and app/test-fib. Figures come from here, never from timed
 * assertions in tests.
 *
 *   pipeline  cycles per packet of the pipeline (parse + ipcache + policy
 *             verdict) on bursts of crafted frames, for ipcache sizes given
 *             with --entries. No EAL needed.
 *   forward   frames per second through the real data path (mg_datapath,
 *             EAL, worker lcore, virtual ports) next to dpdk-testpmd io
 *             forwarding on the same lcores and the same kind of ports,
 *             printed as a ratio.
 *
 * The workload: identities in a few namespaces, an ipcache of host routes
 * (IPv4 10.x.y.z) mapped onto them, and CNPs that open a service port
 * between client and server apps; frames are TCP SYNs between random
 * ipcache addresses, most of them allowed.
 */
#include <getopt.h>
#include <inttypes.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_ipcache.h"
#include "bench_kvsync.h"
#include "bench_policy.h"
#include "bench_repfilter.h"
#include "bench_replicator.h"
#include "bench_testpmd.h"
#include "mg_config.h"
#include "mg_datapath.h"
#include "mg_identity.h"
#include "mg_ipcache.h"
#include "mg_pkt.h"
#include "mg_policy.h"

#define N_APPS 50 /* identities: app0..app49 in ns0..ns4 */
#define FRAME_LEN 64
#define N_FRAMES 4096

struct workload {
	struct mg_identity_table *ids;
	struct mg_policy_set *set;
	struct mg_policy *pol;
	struct mg_ipcache *ipc;
	uint32_t entries;
	uint8_t (*frames)[FRAME_LEN];
	unsigned nframes;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint32_t
app_identity(unsigned app)
{
	return (1u << 16) + 256 + app; /* cluster 1 */
}

/* Host route number i -> 10.x.y.z (i < 2^24). */
static uint32_t
addr_of(uint32_t i)
{
	return (10u << 24) | (i & 0xffffff);
}

static int
workload_build(struct workload *w, uint32_t entries, struct mg_error *err)
{
	struct mg_policy_params pp = {
	        .enforcement = MG_ENFORCE_DEFAULT, .default_local_cluster = true, .revision = 1};
	struct mg_ipcache_params ip = {.entries_hint = entries, .split_world = true};
	char *yaml = NULL;
	size_t cap = 1 << 20, off = 0;
	unsigned a, i;
	int rc;

	memset(w, 0, sizeof(*w));
	w->entries = entries;
	w->ids = mg_identity_table_create(MG_CLUSTER_MODE_255);
	w->set = mg_policy_set_create();
	w->ipc = mg_ipcache_create(&ip);
	yaml = malloc(cap);
	if (w->ids == NULL || w->set == NULL || w->ipc == NULL || yaml == NULL) {
		free(yaml);
		return -ENOMEM;
	}
	for (a = 0; a < N_APPS; a++) {
		struct mg_labels ls = MG_LABELS_INIT;
		char v[32];

		snprintf(v, sizeof(v), "app%u", a);
		mg_labels_add(&ls, "k8s", "app", v);
		snprintf(v, sizeof(v), "ns%u", a % 5);
		mg_labels_add(&ls, "k8s", "io.kubernetes.pod.namespace", v);
		mg_labels_add(&ls, "k8s", "io.cilium.k8s.policy.cluster", "cluster-a");
		rc = mg_identity_table_put(w->ids, app_identity(a), &ls, 1);
		mg_labels_clear(&ls);
		if (rc < 0)
			goto out;
	}
	/* Every app k (a server) admits apps k+1..k+5 of its namespace on TCP 80 and 443. */
	for (a = 0; a < N_APPS; a++)
		off += (size_t)snprintf(yaml + off, cap - off,
		                        "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
		                        "metadata: {name: p%u, namespace: ns%u}\n"
		                        "spec:\n  endpointSelector: {matchLabels: {app: app%u}}\n"
		                        "  ingress:\n  - fromEndpoints:\n"
		                        "    - matchExpressions: [{key: app, operator: In, values: "
		                        "[app%u, app%u, app%u, app%u, app%u]}]\n"
		                        "    toPorts: [{ports: [{port: \"80\", protocol: TCP}, "
		                        "{port: \"443\", protocol: TCP}]}]\n",
		                        a, a % 5, a, (a + 5) % N_APPS, (a + 10) % N_APPS,
		                        (a + 15) % N_APPS, (a + 20) % N_APPS, (a + 25) % N_APPS);
	rc = mg_policy_set_load_buf(w->set, "cluster-a", "bench.yaml", yaml, off, err);
	if (rc < 0)
		goto out;
	w->pol = mg_policy_compile(w->set, w->ids, &pp, err);
	if (w->pol == NULL) {
		rc = -errno;
		goto out;
	}
	for (i = 0; i < entries; i++) {
		struct mg_ipcache_entry e = {.family = MG_AF_INET, .plen = 32, .cluster_id = 1};
		uint32_t be = __builtin_bswap32(addr_of(i));

		memcpy(e.addr, &be, 4);
		e.identity = app_identity(i % N_APPS);
		rc = mg_ipcache_put(w->ipc, &e);
		if (rc < 0)
			goto out;
	}
	rc = mg_ipcache_commit(w->ipc);
	if (rc < 0)
		goto out;
	rc = 0;
out:
	free(yaml);
	return rc;
}

static void
workload_free(struct workload *w)
{
	mg_policy_free(w->pol);
	mg_policy_set_free(w->set);
	mg_ipcache_free(w->ipc);
	mg_identity_table_free(w->ids);
	free(w->frames);
	memset(w, 0, sizeof(*w));
}

static uint16_t
csum16(const uint8_t *p, unsigned len)
{
	uint32_t s = 0;
	unsigned i;

	for (i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* A 64-byte TCP segment from ipcache address @p s to @p d with @p flags. */
static void
frame_build_tcp(uint8_t *f, uint32_t s, uint32_t d, uint16_t sport, uint16_t dport, uint8_t flags)
{
	static const uint8_t l2[14] = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00};
	uint8_t *ip = f + 14, *tcp = f + 34;
	uint16_t c;

	memset(f, 0, FRAME_LEN);
	memcpy(f, l2, sizeof(l2));
	ip[0] = 0x45;
	ip[3] = 50; /* total length: 20 + 20 + 10 bytes of payload */
	ip[8] = 64;
	ip[9] = MG_IPPROTO_TCP;
	s = __builtin_bswap32(s);
	d = __builtin_bswap32(d);
	memcpy(ip + 12, &s, 4);
	memcpy(ip + 16, &d, 4);
	c = csum16(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	tcp[0] = (uint8_t)(sport >> 8);
	tcp[1] = (uint8_t)sport;
	tcp[2] = (uint8_t)(dport >> 8);
	tcp[3] = (uint8_t)dport;
	tcp[12] = 0x50;
	tcp[13] = flags;
	tcp[14] = 0xff;
	tcp[15] = 0xff;
}

static int
frames_build(struct workload *w, unsigned n)
{
	static const uint16_t ports[4] = {80, 443, 80, 22};
	unsigned i;

	w->frames = calloc(n, FRAME_LEN);
	if (w->frames == NULL)
		return -ENOMEM;
	w->nframes = n;
	for (i = 0; i < n; i++) {
		uint32_t s = (uint32_t)(rng() % w->entries);
		/* A server app five apps below the client's, so most frames are allowed. */
		uint32_t d = (uint32_t)(rng() % w->entries);

		d = d - d % N_APPS + (s % N_APPS + N_APPS - 5 * (1 + rng() % 5)) % N_APPS;
		if (d >= w->entries)
			d = s;
		frame_build_tcp(w->frames[i], addr_of(s), addr_of(d), 0xc001, ports[rng() % 4],
		                0x02 /* SYN */);
	}
	return 0;
}

/* ---- pipeline ---- */

/* Best-of-@p rounds cycles per packet of mg_dp_classify over the workload's frames. */
static double
pipeline_cycles(struct workload *w, struct mg_dp_env *env, unsigned burst, unsigned rounds,
                struct mg_dp_counters *c)
{
	const uint8_t *data[MG_DP_MAX_BURST];
	uint32_t len[MG_DP_MAX_BURST];
	uint8_t reasons[MG_DP_MAX_BURST];
	uint64_t t0, t1, best = UINT64_MAX, pkts = 0;
	unsigned r, i, j;

	for (r = 0; r < rounds; r++) {
		t0 = rte_rdtsc_precise();
		for (i = 0; i + burst <= w->nframes; i += burst) {
			for (j = 0; j < burst; j++) {
				data[j] = w->frames[i + j];
				len[j] = FRAME_LEN;
			}
			env->now = t0;
			mg_dp_classify(env, 0, data, len, burst, reasons, c);
		}
		t1 = rte_rdtsc_precise();
		if (t1 - t0 < best)
			best = t1 - t0;
		pkts = i;
	}
	return (double)best / (double)pkts;
}

/*
 * Where a stateless packet's cycles go: the pipeline's parts alone, on the
 * same frames in the same bursts, each best of @p rounds: the parser, the
 * ipcache's bulk lookup of both addresses, the bulk verdict. The rest of
 * the pipeline's figure is its own work: staging, counters, the burst's
 * arrays.
 */
static void
stage_cycles(struct workload *w, const struct mg_dp_env *env, unsigned burst, unsigned rounds,
             double out[3])
{
	static struct mg_pkt_info info[N_FRAMES];
	static uint32_t ids[2 * N_FRAMES];
	static const uint8_t *addrs[2 * N_FRAMES];
	static uint8_t fams[2 * N_FRAMES], proto[N_FRAMES], verdicts[N_FRAMES];
	static uint16_t port[N_FRAMES];
	uint64_t best[3] = {UINT64_MAX, UINT64_MAX, UINT64_MAX}, t;
	unsigned r, i, k, n = w->nframes - w->nframes % burst;

	for (r = 0; r < rounds; r++) {
		t = rte_rdtsc_precise();
		for (i = 0; i < n; i++)
			mg_pkt_parse(w->frames[i], FRAME_LEN, &info[i]);
		t = rte_rdtsc_precise() - t;
		best[0] = t < best[0] ? t : best[0];
		for (i = 0; i < n; i++) {
			addrs[2 * i] = info[i].key.src;
			addrs[2 * i + 1] = info[i].key.dst;
			fams[2 * i] = fams[2 * i + 1] = info[i].key.family;
			proto[i] = info[i].key.proto;
			port[i] = info[i].key.dport;
		}
		t = rte_rdtsc_precise();
		for (i = 0; i < n; i += burst)
			mg_ipcache_lookup_bulk(env->ipc, fams + 2 * i, addrs + 2 * i, ids + 2 * i,
			                       2 * burst);
		t = rte_rdtsc_precise() - t;
		best[1] = t < best[1] ? t : best[1];
		t = rte_rdtsc_precise();
		for (i = 0; i < n; i += burst)
			for (k = 0; k < burst; k += MG_POLICY_BULK_MAX)
				mg_policy_verdict_bulk(
				        env->policy, ids + 2 * (i + k), proto + i + k, port + i + k,
				        burst - k < MG_POLICY_BULK_MAX ? burst - k
				                                       : MG_POLICY_BULK_MAX,
				        verdicts + i + k);
		t = rte_rdtsc_precise() - t;
		best[2] = t < best[2] ? t : best[2];
	}
	for (k = 0; k < 3; k++)
		out[k] = (double)best[k] / (double)n;
}

/*
 * Stateless: every frame takes parse + ipcache + policy. Conntrack: the
 * first round opens the allowed flows, later rounds find them (the cost of
 * an established flow: parse + conntrack lookup, and for the denied quarter
 * parse + conntrack miss + ipcache + policy).
 */
static int
bench_pipeline(uint32_t entries, unsigned burst, unsigned rounds)
{
	struct mg_ct_params cp = {.max_entries = 65536, .max_frags = 1024};
	struct mg_error err = {{0}};
	struct mg_dp_counters *c;
	struct mg_dp_env env = {0};
	struct workload w;
	double stateless, stateful, parts[3];
	int rc;

	rc = workload_build(&w, entries, &err);
	if (rc == 0)
		rc = frames_build(&w, N_FRAMES);
	if (rc != 0) {
		fprintf(stderr, "pipeline: %s\n", err.msg[0] ? err.msg : strerror(-rc));
		workload_free(&w);
		return 1;
	}
	c = aligned_alloc(MG_CACHE_LINE, sizeof(*c));
	/* no EAL here, so no rte_get_tsc_hz(): measure the TSC against the clock */
	{
		uint64_t n0 = mg_time_ns(), t0 = rte_rdtsc(), n1;

		while ((n1 = mg_time_ns()) - n0 < 20000000)
			;
		cp.hz = (rte_rdtsc() - t0) * 1000000000ull / (n1 - n0);
	}
	mg_ct_timeouts_default(&cp.timeouts);
	env.ct = mg_ct_create(&cp);
	if (c == NULL || env.ct == NULL) {
		free(c);
		workload_free(&w);
		return 1;
	}
	memset(c, 0, sizeof(*c));
	env.ipc = mg_ipcache_reader(w.ipc);
	env.policy = w.pol;
	env.split_world = true;
	stateful = pipeline_cycles(&w, &env, burst, rounds, c);
	env.ct = NULL;
	stateless = pipeline_cycles(&w, &env, burst, rounds, c);
	printf("pipeline  entries=%-8u burst=%-3u  stateless %6.1f cycles/packet, with conntrack "
	       "%6.1f  (allowed %.0f%%, ipcache %zu KiB, policy %zu KiB)\n",
	       entries, burst, stateless, stateful,
	       100.0 * (double)c->allowed /
	               (double)(c->allowed + c->denied_egress + c->denied_ingress),
	       mg_ipcache_memory(w.ipc) / 1024, mg_policy_memory(w.pol) / 1024);
	stage_cycles(&w, &env, burst, rounds, parts);
	printf("stages    entries=%-8u burst=%-3u  parse %5.1f + ipcache (both addresses, bulk) "
	       "%5.1f + verdict (bulk) %5.1f = %5.1f; the pipeline's own work %5.1f\n",
	       entries, burst, parts[0], parts[1], parts[2], parts[0] + parts[1] + parts[2],
	       stateless - parts[0] - parts[1] - parts[2]);
	free(c);
	workload_free(&w);
	return 0;
}

/* ---- forward ---- */

static int
pcap_write(const char *path, struct workload *w)
{
	struct {
		uint32_t magic;
		uint16_t major, minor;
		int32_t zone;
		uint32_t sigfigs, snaplen, linktype;
	} gh = {0xa1b2c3d4, 2, 4, 0, 0, 65535, 1};
	FILE *f = fopen(path, "wb");
	unsigned i;

	if (f == NULL)
		return -errno;
	fwrite(&gh, sizeof(gh), 1, f);
	for (i = 0; i < w->nframes; i++) {
		uint32_t rh[4] = {0, 0, FRAME_LEN, FRAME_LEN};

		fwrite(rh, sizeof(rh), 1, f);
		fwrite(w->frames[i], FRAME_LEN, 1, f);
	}
	return fclose(f) == 0 ? 0 : -errno;
}

struct fwd_clock {
	uint64_t warm_end, end; /* tsc */
	uint64_t t0, t1;
	struct mg_dp_counters c0, c1;
	int phase;
};

/* Runs every ~10 ms on the main lcore: one second of warm-up, then the measured span. */
static int
fwd_tick(struct mg_datapath *dp, void *arg)
{
	struct fwd_clock *k = arg;
	uint64_t now = rte_get_tsc_cycles();

	if (k->phase == 0 && now >= k->warm_end) {
		mg_datapath_counters(dp, &k->c0);
		k->t0 = rte_get_tsc_cycles();
		k->phase = 1;
	} else if (k->phase == 1 && now >= k->end) {
		mg_datapath_counters(dp, &k->c1);
		k->t1 = rte_get_tsc_cycles();
		return 1;
	}
	return 0;
}

/* The real data path for @p secs in this process; returns its forwarding rate. */
static double
run_gateway(const char *cfgpath, struct workload *w, unsigned secs,
            void (*prep)(struct mg_datapath *, void *), void *prep_arg,
            struct mg_dp_counters *delta)
{
	struct mg_policy_params pp = {
	        .enforcement = MG_ENFORCE_DEFAULT, .default_local_cluster = true, .revision = 1};
	struct mg_policy *pol;
	struct mg_error err = {{0}};
	struct mg_config *cfg;
	struct rte_rcu_qsbr *qsbr;
	struct mg_ipcache *ipc;
	struct mg_datapath *dp;
	struct mg_dp_counters c0, c1;
	struct mg_ipcache_params ip = {.entries_hint = w->entries, .split_world = true};
	uint64_t t0, t1, tx0 = 0, tx1 = 0;
	unsigned i;

	cfg = mg_config_load(cfgpath, &err);
	if (cfg == NULL) {
		fprintf(stderr, "forward: %s\n", err.msg);
		return -1;
	}
	qsbr = mg_datapath_qsbr_create();
	ip.qsbr = qsbr;
	ipc = mg_ipcache_create(&ip);
	if (qsbr == NULL || ipc == NULL) {
		mg_config_free(cfg);
		return -1;
	}
	for (i = 0; i < w->entries; i++) {
		struct mg_ipcache_entry e = {.family = MG_AF_INET, .plen = 32, .cluster_id = 1};
		uint32_t be = __builtin_bswap32(addr_of(i));

		memcpy(e.addr, &be, 4);
		e.identity = app_identity(i % N_APPS);
		mg_ipcache_put(ipc, &e);
	}
	mg_ipcache_commit(ipc);
	pol = mg_policy_compile(w->set, w->ids, &pp, &err);
	dp = pol ? mg_datapath_create(cfg, ipc, pol, qsbr, &err) : NULL;
	if (dp == NULL) {
		fprintf(stderr, "forward: %s\n", err.msg);
		mg_policy_free(pol);
		mg_ipcache_free(ipc);
		rte_free(qsbr);
		mg_config_free(cfg);
		return -1;
	}
	if (prep != NULL)
		prep(dp, prep_arg);
	mg_datapath_start(dp);
	{
		struct fwd_clock k = {0};
		uint64_t hz = rte_get_tsc_hz();
		volatile int never = 0;

		k.warm_end = rte_get_tsc_cycles() + hz;
		k.end = k.warm_end + secs * hz;
		mg_datapath_run(dp, &never, fwd_tick, &k);
		mg_datapath_stop(dp);
		c0 = k.c0;
		c1 = k.c1;
		t0 = k.t0;
		t1 = k.t1;
	}
	for (i = 0; i < mg_datapath_nb_ports(dp); i++) {
		tx0 += c0.tx_pkts[i];
		tx1 += c1.tx_pkts[i];
	}
	if (delta != NULL) {
		const uint64_t *a = (const uint64_t *)&c0, *b = (const uint64_t *)&c1;
		uint64_t *d = (uint64_t *)delta;

		for (i = 0; i < sizeof(*delta) / sizeof(uint64_t); i++)
			d[i] = b[i] - a[i];
	}
	printf("gateway   rx %" PRIu64 " allowed %" PRIu64 " denied %" PRIu64 " tx %" PRIu64
	       " over %.2f s; conntrack %zu MiB\n",
	       c1.rx_pkts[0] + c1.rx_pkts[1] - c0.rx_pkts[0] - c0.rx_pkts[1],
	       c1.allowed - c0.allowed,
	       c1.denied_ingress + c1.denied_egress - c0.denied_ingress - c0.denied_egress,
	       tx1 - tx0, (double)(t1 - t0) / (double)rte_get_tsc_hz(),
	       mg_datapath_ct_memory(dp) >> 20);
	mg_datapath_free(dp);
	mg_ipcache_free(ipc);
	rte_free(qsbr);
	mg_config_free(cfg);
	/* Frames handled per second: forwarded plus dropped by policy. */
	return (double)(c1.rx_pkts[0] + c1.rx_pkts[1] - c0.rx_pkts[0] - c0.rx_pkts[1]) /
	       ((double)(t1 - t0) / (double)rte_get_tsc_hz());
}

/* One kind of virtual port pair, as EAL --vdev arguments for testpmd and for us. */
struct port_kind {
	const char *name, *why;
	char tp[2][512]; /* testpmd's devices */
	char gw[2][512]; /* the gateway's (other names: one EAL holds both kinds) */
	char dev[2][64];
};

static int
write_config(const char *path, const char *dev0, const char *dev1, unsigned mbufs,
             const char *extra)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -errno;
	fprintf(f,
	        "version: 1\n# eal is not used: the bench initialises the EAL itself\n"
	        "eal: [\"--no-huge\"]\n"
	        "datapath:\n  mode: wire\n  mbufs: %u\n  ports:\n"
	        "    - {name: a, device: %s, peer: b}\n"
	        "    - {name: b, device: %s, peer: a}\n"
	        "cluster: {name: cluster-a, id: 1}\n%s",
	        mbufs, dev0, dev1, extra);
	return fclose(f) == 0 ? 0 : -errno;
}

static int
write_bench_config(const char *path, const struct port_kind *k)
{
	return write_config(path, k->dev[0], k->dev[1], 16383, "conntrack: {max_entries: 8192}\n");
}

static int
bench_forward(const char *testpmd, const char *lcores, unsigned secs, uint32_t entries)
{
	char dir[] = "/tmp/mgbench.XXXXXX", pcap[256], cfgpath[256];
	struct port_kind kinds[2] = {
	        {.name = "net_null",
	         .why = "zero-filled 64-byte frames (copy=1): meshgate judges them non-IP and "
	                "forwards them without a policy lookup, so this row is the per-frame "
	                "cost of rx, parse and tx alone",
	         .dev = {"net_null0", "net_null1"}},
	        {.name = "net_pcap",
	         .why = "the crafted TCP frames replayed endlessly (infinite_rx=1, transmit "
	                "dropped by the PMD): the whole pipeline, parse + ipcache + policy",
	         .dev = {"net_pcap2", "net_pcap3"}},
	};
	struct mg_error err = {{0}};
	struct workload w;
	char *eal_argv[16];
	int eal_argc = 0, rc;
	unsigned k;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(pcap, sizeof(pcap), "%s/frames.pcap", dir);
	snprintf(cfgpath, sizeof(cfgpath), "%s/bench.yaml", dir);
	rc = workload_build(&w, entries, &err);
	if (rc == 0)
		rc = frames_build(&w, N_FRAMES);
	if (rc == 0)
		rc = pcap_write(pcap, &w);
	if (rc != 0) {
		fprintf(stderr, "forward: %s\n", err.msg[0] ? err.msg : strerror(-rc));
		return 1;
	}
	for (k = 0; k < 2; k++) {
		snprintf(kinds[0].tp[k], sizeof(kinds[0].tp[k]), "net_null%u,size=64,copy=1", k);
		snprintf(kinds[0].gw[k], sizeof(kinds[0].gw[k]), "--vdev=net_null%u,size=64,copy=1",
		         k);
		snprintf(kinds[1].tp[k], sizeof(kinds[1].tp[k]),
		         "net_pcap%u,rx_pcap=%s,infinite_rx=1", k, pcap);
		snprintf(kinds[1].gw[k], sizeof(kinds[1].gw[k]),
		         "--vdev=net_pcap%u,rx_pcap=%s,infinite_rx=1", k + 2, pcap);
	}
	eal_argv[eal_argc++] = (char *)"meshgate-bench";
	eal_argv[eal_argc++] = (char *)"-l";
	eal_argv[eal_argc++] = (char *)lcores;
	eal_argv[eal_argc++] = (char *)"--no-huge";
	eal_argv[eal_argc++] = (char *)"-m";
	eal_argv[eal_argc++] = (char *)"1024";
	eal_argv[eal_argc++] = (char *)"--no-pci";
	eal_argv[eal_argc++] = (char *)"--file-prefix";
	eal_argv[eal_argc++] = (char *)"mgbench-gw";
	eal_argv[eal_argc++] = (char *)"--log-level=lib.eal:error";
	for (k = 0; k < 2; k++) {
		eal_argv[eal_argc++] = kinds[k].gw[0];
		eal_argv[eal_argc++] = kinds[k].gw[1];
	}
	printf("forward   lcores %s (one forwarding lcore for both programs), %u s per run, "
	       "%u crafted frames of %u bytes\n",
	       lcores, secs, w.nframes, FRAME_LEN);
	if (rte_eal_init(eal_argc, eal_argv) < 0) {
		fprintf(stderr, "forward: EAL: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	for (k = 0; k < 2 && rc == 0; k++) {
		double tp, gw;

		printf("\nports     %s: %s\n", kinds[k].name, kinds[k].why);
		tp = bench_run_testpmd(testpmd, lcores, kinds[k].tp[0], kinds[k].tp[1], secs);
		if (tp < 0)
			printf("testpmd   not measured (%s missing or failed)\n", testpmd);
		else
			printf("testpmd   io forwarding      %12.0f frames/s\n", tp);
		rc = write_bench_config(cfgpath, &kinds[k]);
		gw = rc == 0 ? run_gateway(cfgpath, &w, secs, NULL, NULL, NULL) : -1;
		if (gw < 0) {
			rc = 1;
			break;
		}
		printf("meshgate  wire + policy      %12.0f frames/s\n", gw);
		if (tp > 0)
			printf("ratio     meshgate / testpmd  %.2f  (%s)\n", gw / tp,
			       kinds[k].name);
	}
	workload_free(&w);
	unlink(pcap);
	unlink(cfgpath);
	rmdir(dir);
	rte_eal_cleanup();
	return rc == 0 ? 0 : 1;
}

/* ---- conntrack ---- */

#define CT_FLOW_DPORT 80
#define CT_HOT_FLOWS 65536 /* distinct established flows replayed */
#define CT_NEW_FLOWS 32768 /* distinct connections opened (SYN) and reset (RST) */

/* Flow @p i of the bench: a client address and an allowed server, port 80. */
static void
ct_flow(uint32_t i, uint16_t sport_base, uint32_t *s, uint32_t *d, uint16_t *sport)
{
	uint32_t c = i % 1000;

	*s = addr_of(c);
	/* the server app five below the client's app: its policy admits the client */
	*d = addr_of(c - c % N_APPS + (c % N_APPS + N_APPS - 5) % N_APPS);
	*sport = (uint16_t)(sport_base + i / 1000);
}

struct ct_prep {
	uint32_t live; /* established entries to put in every worker's table */
};

/* Open @p live flows in every worker's table as a handshake would. */
static void
ct_prepopulate(struct mg_datapath *dp, void *arg)
{
	const struct ct_prep *cp = arg;
	uint64_t now = rte_rdtsc();
	unsigned wk;
	uint32_t i;

	for (wk = 0; mg_datapath_worker_ct(dp, wk) != NULL; wk++) {
		struct mg_ct *ct = mg_datapath_worker_ct(dp, wk);

		for (i = 0; i < cp->live; i++) {
			struct mg_flow_key k = {.family = MG_AF_INET, .proto = MG_IPPROTO_TCP};
			struct mg_ct_entry *e;
			struct mg_ct_key key;
			uint32_t s, d;
			uint8_t dir;

			ct_flow(i, 1024, &s, &d, &k.sport);
			s = __builtin_bswap32(s);
			d = __builtin_bswap32(d);
			memcpy(k.src, &s, 4);
			memcpy(k.dst, &d, 4);
			k.dport = CT_FLOW_DPORT;
			mg_ct_key_make(&k, 0, &key, &dir);
			e = mg_ct_insert(ct, &key, dir, 0x02, 0, now);
			if (e == NULL)
				break;
			mg_ct_track(ct, e, (uint8_t)!dir, MG_IPPROTO_TCP, 0x12, 0, 0, now);
			mg_ct_track(ct, e, dir, MG_IPPROTO_TCP, 0x10, 0, 0, now);
		}
	}
}

/* Frames of established flows (ACKs, original direction), spread over the live set. */
static int
ct_frames_established(struct workload *w, uint32_t live)
{
	unsigned i, n = live < CT_HOT_FLOWS ? live : CT_HOT_FLOWS;

	free(w->frames);
	w->frames = calloc(n, FRAME_LEN);
	if (w->frames == NULL)
		return -ENOMEM;
	w->nframes = n;
	for (i = 0; i < n; i++) {
		uint32_t s, d;
		uint16_t sport;

		ct_flow((uint32_t)(rng() % live), 1024, &s, &d, &sport);
		frame_build_tcp(w->frames[i], s, d, sport, CT_FLOW_DPORT, 0x10 /* ACK */);
	}
	return 0;
}

/* Connections that each open (SYN: policy + insert) and reset (RST), forever anew. */
static int
ct_frames_new(struct workload *w)
{
	unsigned i;

	free(w->frames);
	w->frames = calloc(2 * CT_NEW_FLOWS, FRAME_LEN);
	if (w->frames == NULL)
		return -ENOMEM;
	w->nframes = 2 * CT_NEW_FLOWS;
	for (i = 0; i < CT_NEW_FLOWS; i++) {
		uint32_t s, d;
		uint16_t sport;

		ct_flow(i, 40000, &s, &d, &sport);
		frame_build_tcp(w->frames[2 * i], s, d, sport, CT_FLOW_DPORT, 0x02 /* SYN */);
		frame_build_tcp(w->frames[2 * i + 1], s, d, sport, CT_FLOW_DPORT, 0x04 /* RST */);
	}
	return 0;
}

static int
bench_conntrack(const char *testpmd, const char *lcores, unsigned secs)
{
	static const uint32_t sizes[2] = {1u << 15, 1u << 22};
	/* files: established flows of each size, new connections; ports: a pair per
	 * run (a port closed after its run cannot be opened again) */
	char dir[] = "/tmp/mgbench.XXXXXX", pcap[3][256], cfgpath[256], vdev[8][512], extra[256];
	struct mg_error err = {{0}};
	struct workload w;
	char *eal_argv[24];
	int eal_argc = 0, rc;
	unsigned k, z;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(cfgpath, sizeof(cfgpath), "%s/bench.yaml", dir);
	rc = workload_build(&w, 1000, &err);
	if (rc != 0) {
		fprintf(stderr, "conntrack: %s\n", err.msg[0] ? err.msg : strerror(-rc));
		return 1;
	}
	for (k = 0; k < 3 && rc == 0; k++) {
		snprintf(pcap[k], sizeof(pcap[k]), "%s/ct%u.pcap", dir, k);
		rc = k < 2 ? ct_frames_established(&w, sizes[k]) : ct_frames_new(&w);
		if (rc == 0)
			rc = pcap_write(pcap[k], &w);
	}
	if (rc != 0)
		return 1;

	eal_argv[eal_argc++] = (char *)"meshgate-bench";
	eal_argv[eal_argc++] = (char *)"-l";
	eal_argv[eal_argc++] = (char *)lcores;
	eal_argv[eal_argc++] = (char *)"--no-huge";
	eal_argv[eal_argc++] = (char *)"-m";
	eal_argv[eal_argc++] = (char *)"2048";
	eal_argv[eal_argc++] = (char *)"--no-pci";
	eal_argv[eal_argc++] = (char *)"--file-prefix";
	eal_argv[eal_argc++] = (char *)"mgbench-ct";
	eal_argv[eal_argc++] = (char *)"--log-level=lib.eal:error";
	/* run r (size r / 2; established when r is even, new when odd) uses
	 * ports 2r and 2r + 1 */
	for (k = 0; k < 8; k++) {
		unsigned run = k / 2, file = run % 2 ? 2 : run / 2;

		snprintf(vdev[k], sizeof(vdev[k]), "--vdev=net_pcap%u,rx_pcap=%s,infinite_rx=1", k,
		         pcap[file]);
		eal_argv[eal_argc++] = vdev[k];
	}
	if (rte_eal_init(eal_argc, eal_argv) < 0) {
		fprintf(stderr, "conntrack: EAL: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	printf("conntrack lcores %s (one forwarding lcore for both programs), %u s per run, "
	       "net_pcap ports (infinite_rx, transmit dropped)\n",
	       lcores, secs);
	for (z = 0; z < 4 && rc == 0; z++) {
		struct ct_prep prep = {.live = sizes[z / 2]};
		bool is_new = z % 2 == 1;
		const char *file = pcap[is_new ? 2 : z / 2];
		struct mg_dp_counters d;
		char tpv[2][512], dev[2][32];
		double tp, gw;

		if (!is_new)
			printf("\nlive entries %u\n", sizes[z / 2]);
		snprintf(extra, sizeof(extra), "conntrack: {max_entries: %u}\n",
		         sizes[z / 2] + 2 * CT_NEW_FLOWS);
		for (k = 0; k < 2; k++) {
			snprintf(tpv[k], sizeof(tpv[k]), "net_pcap%u,rx_pcap=%s,infinite_rx=1", k,
			         file);
			snprintf(dev[k], sizeof(dev[k]), "net_pcap%u", 2 * z + k);
		}
		tp = bench_run_testpmd(testpmd, lcores, tpv[0], tpv[1], secs);
		rc = write_config(cfgpath, dev[0], dev[1], 262143, extra);
		gw = rc == 0 ? run_gateway(cfgpath, &w, secs, ct_prepopulate, &prep, &d) : -1;
		if (gw < 0) {
			rc = 1;
			break;
		}
		if (!is_new)
			printf("established  testpmd io %12.0f frames/s   meshgate %12.0f frames/s "
			       "  "
			       "ratio %.2f   (passed by conntrack %.1f%%)\n",
			       tp, gw, tp > 0 ? gw / tp : 0,
			       100.0 * (double)d.ct_tracked /
			               (double)(d.rx_pkts[0] + d.rx_pkts[1]));
		else
			printf("new flows    testpmd io %12.0f frames/s   meshgate %12.0f frames/s "
			       "  "
			       "ratio %.2f   (%.0f new connections/s admitted by policy)\n",
			       tp, gw, tp > 0 ? gw / tp : 0,
			       (double)d.allowed * gw / (double)(d.rx_pkts[0] + d.rx_pkts[1]));
	}
	workload_free(&w);
	for (k = 0; k < 3; k++)
		unlink(pcap[k]);
	unlink(cfgpath);
	rmdir(dir);
	rte_eal_cleanup();
	return rc == 0 ? 0 : 1;
}

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: meshgate-bench pipeline [--entries N[,N...]] [--burst N] [--rounds N]\n"
	        "       meshgate-bench forward [--seconds S] [--lcores L] [--entries N] [--testpmd "
	        "PATH]\n"
	        "       meshgate-bench conntrack [--seconds S] [--lcores L] [--testpmd PATH]\n"
	        "       meshgate-bench policy [--identities N] [--policies A,B,C] [--adds N] "
	        "[--acl-identities N] ... (policy --help)\n"
	        "       meshgate-bench kvsync [--redis-port P] [--entries N[,N...]]\n"
	        "       meshgate-bench ipcache [--entries N[,N...]] ... (ipcache --help)\n"
	        "       meshgate-bench ipcache --writer [--batch N[,N...]] ... (ipcache --writer "
	        "--help)\n"
	        "       meshgate-bench replicator-filter [--clusters N] [--endpoints N] ... "
	        "(replicator-filter --help)\n"
	        "       meshgate-bench replicator [--quick] [--keys N[,N...]] ... (replicator "
	        "--help)\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"entries", required_argument, NULL, 'e'},
	        {"burst", required_argument, NULL, 'b'},
	        {"rounds", required_argument, NULL, 'r'},
	        {"seconds", required_argument, NULL, 's'},
	        {"lcores", required_argument, NULL, 'l'},
	        {"testpmd", required_argument, NULL, 't'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *entries = NULL, *lcores = "0-1", *testpmd = "dpdk-testpmd", *cmd;
	unsigned burst = 32, rounds = 20, secs = 5;
	int opt, rc = 0;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (strcmp(cmd, "policy") == 0)
		return mg_bench_policy(argc - 1, argv + 1);
	if (strcmp(cmd, "kvsync") == 0)
		return mg_bench_kvsync(argc - 1, argv + 1);
	if (strcmp(cmd, "ipcache") == 0)
		return mg_bench_ipcache(argc - 1, argv + 1);
	if (strcmp(cmd, "replicator-filter") == 0)
		return mg_bench_repfilter(argc - 1, argv + 1);
	if (strcmp(cmd, "replicator") == 0)
		return mg_bench_replicator(argc - 1, argv + 1);
	optind = 2;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			entries = optarg;
			break;
		case 'b':
			burst = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'r':
			rounds = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 's':
			secs = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'l':
			lcores = optarg;
			break;
		case 't':
			testpmd = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (burst == 0 || burst > MG_DP_MAX_BURST || rounds == 0 || secs == 0) {
		usage(stderr);
		return 2;
	}
	if (strcmp(cmd, "pipeline") == 0) {
		char *list = strdup(entries ? entries : "1000,1000000"), *save = NULL, *tok;

		for (tok = strtok_r(list, ",", &save); tok && rc == 0;
		     tok = strtok_r(NULL, ",", &save))
			rc = bench_pipeline((uint32_t)strtoul(tok, NULL, 0), burst, rounds);
		free(list);
		return rc;
	}
	if (strcmp(cmd, "conntrack") == 0)
		return bench_conntrack(testpmd, lcores, secs);
	if (strcmp(cmd, "forward") == 0)
		return bench_forward(testpmd, lcores, secs,
		                     entries ? (uint32_t)strtoul(entries, NULL, 0) : 1000);
	usage(stderr);
	return 2;
}
