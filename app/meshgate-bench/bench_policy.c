/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench policy`: what the policy engine costs at scale, and what
 * the same policy costs as 5-tuple ACL rules in DPDK's own classifier.
 *
 *   compile      wall time and compiled size (mg_policy_memory) of
 *                mg_policy_compile for 10, 1k and 10k CNPs over 1k, 10k and
 *                100k identities, and the process's peak RSS;
 *   incremental  latency of mg_policy_update_identities when identities
 *                arrive one at a time (p50 / p99 / max), next to one full
 *                compile, and a check that both give the same verdicts;
 *   verdict      TSC cycles per mg_policy_verdict for each of those
 *                policies, over the same pre-generated flows;
 *   acl          the same kind of policy on a smaller instance, expanded to
 *                per-address 5-tuple rules, run through dpdk-test-acl (its
 *                build time, memory and classify cycles) next to our
 *                compile time, memory and ipcache + verdict cycles, with a
 *                check that both classify every flow alike.
 *
 * The workload is generated in memory. Identities are pods of two clusters
 * (Cilium numbers at most 65280 identities per cluster, so 100k identities
 * need two): per cluster, namespaces of 20 apps, each app deployed in 10
 * versions (10 identities per app, differing in `version`), plus kube-dns
 * and prometheus. Every app gets one CNP (so 10k CNPs over 100k identities
 * is one per app): ingress from the previous app of the namespace on two
 * ports, from the namespace's frontend tier on a port range, from
 * prometheus for every fifth app; egress restricted for every fourth app
 * (to the next app and DNS); ingressDeny from version v0 of the previous
 * app for every seventh; egressDeny to the database tier for every
 * eleventh. Policies are spread over the two clusters like the identities.
 *
 * No EAL: times are TSC cycles (rte_rdtsc) with the TSC rate measured
 * against the monotonic clock, and wall-clock seconds for control-path work.
 * dpdk-test-acl runs as a child process with its own EAL.
 */
#include <getopt.h>
#include <inttypes.h>
#include <rte_cycles.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_policy.h"
#include "bench_policy_priv.h"
#include "mg_identity.h"
#include "mg_ipcache.h"
#include "mg_pkt.h"
#include "mg_policy.h"

static const char *const cluster_name[N_CLUSTERS] = {"cluster-a", "cluster-b"};
static const char *const tier_name[3] = {"frontend", "backend", "db"};

/*
 * Every port the generated policies name, as the first port of each
 * elementary interval: between two consecutive starts every port gets the
 * same verdict, which is what lets the ACL expansion ask one port per
 * interval. Keep in step with policy_yaml().
 */
const uint16_t bp_port_starts[] = {0,    53,   54,   80,   90,   5432, 5433,
                                   8080, 8081, 8443, 8444, 9090, 9091};

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint64_t tsc_hz;

static void
tsc_measure(void)
{
	uint64_t n0 = mg_time_ns(), t0 = rte_rdtsc(), n1;

	while ((n1 = mg_time_ns()) - n0 < 50000000)
		;
	tsc_hz = (rte_rdtsc() - t0) * 1000000000ull / (n1 - n0);
}

double
bp_secs_since(uint64_t ns0)
{
	return (double)(mg_time_ns() - ns0) / 1e9;
}

/* @p secs as "1.23 s" or "4.5 ms" into @p buf. */
const char *
bp_fmt_secs(char *buf, size_t size, double secs)
{
	if (secs >= 1)
		snprintf(buf, size, "%.2f s", secs);
	else
		snprintf(buf, size, "%.1f ms", secs * 1e3);
	return buf;
}

/*
 * Peak resident set size of this process in KiB (VmHWM; 0 if /proc is
 * unreadable). A per-compile RSS delta would mislead: freed memory of one
 * compile is reused by the next.
 */
static unsigned long
peak_rss_kib(void)
{
	unsigned long kib = 0;
	char line[128];
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %lu kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* ---- text buffer ---- */

struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) MG_PRINTF(2, 3);

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int len;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		len = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if (len >= 0 && (size_t)len < b->cap - b->n) {
			b->n += (size_t)len;
			return;
		}
		{
			size_t cap = b->cap ? 2 * b->cap : 1 << 16;
			char *p = realloc(b->p, cap);

			if (p == NULL || len < 0) {
				b->oom = true;
				return;
			}
			b->p = p;
			b->cap = cap;
		}
	}
}

/* ---- identities ---- */

static uint32_t
local_id(unsigned c, unsigned local)
{
	return ((uint32_t)(c + 1) << 16) + MG_ID_MIN_CLUSTER_LOCAL + local;
}

static uint32_t
special_id(unsigned c, unsigned s)
{
	return local_id(c, s);
}

static uint32_t
pod_id(unsigned c, unsigned p)
{
	return local_id(c, N_SPECIAL + p);
}

/* One IPv4 address per identity, scattered over 10.<c+1>.0.0/16 as pod IPs are. */
uint32_t
bp_addr_of(uint32_t id)
{
	uint32_t c = id >> 16, local = (id & 0xffff) - MG_ID_MIN_CLUSTER_LOCAL;

	return (10u << 24) | (c << 16) | ((local * 40503u + 12345u) & 0xffff);
}

static int
put_identity(struct world *w, uint32_t id, unsigned c, const char *ns, const char *app,
             const char *tier, const char *version)
{
	struct mg_labels ls = MG_LABELS_INIT;
	int rc;

	rc = mg_labels_add(&ls, "k8s", "io.kubernetes.pod.namespace", ns);
	if (rc == 0)
		rc = mg_labels_add(&ls, "k8s", "io.cilium.k8s.policy.cluster", cluster_name[c]);
	if (rc == 0)
		rc = mg_labels_add(&ls, "k8s", "io.cilium.k8s.policy.serviceaccount", app);
	if (rc == 0 && tier == NULL)
		rc = mg_labels_add(&ls, "k8s", "k8s-app", app);
	if (rc == 0 && tier != NULL)
		rc = mg_labels_add(&ls, "k8s", "app", app);
	if (rc == 0 && tier != NULL)
		rc = mg_labels_add(&ls, "k8s", "tier", tier);
	if (rc == 0 && version != NULL)
		rc = mg_labels_add(&ls, "k8s", "version", version);
	if (rc == 0)
		rc = mg_identity_table_put(w->ids, id, &ls, c + 1);
	mg_labels_clear(&ls);
	return rc < 0 ? rc : 0;
}

/* Pod p of cluster c: app p / VERSIONS (namespace of 20 apps), version p % VERSIONS. */
static int
put_pod(struct world *w, unsigned c, unsigned local, unsigned group, const char *version)
{
	char ns[32], app[32];

	snprintf(ns, sizeof(ns), "ns%u", group / APPS);
	snprintf(app, sizeof(app), "a%u", group % APPS);
	return put_identity(w, local_id(c, local), c, ns, app, tier_name[group % APPS % 3],
	                    version);
}

void
bp_world_free(struct world *w)
{
	mg_identity_table_free(w->ids);
	memset(w, 0, sizeof(*w));
}

/* @p n pod identities split over the clusters, plus the specials. */
int
bp_world_build(struct world *w, unsigned n)
{
	unsigned c, p;
	int rc = 0;

	memset(w, 0, sizeof(*w));
	if (n / N_CLUSTERS + 1 > MAX_PER_CLUSTER)
		return -E2BIG;
	w->ids = mg_identity_table_create(MG_CLUSTER_MODE_255);
	if (w->ids == NULL)
		return -ENOMEM;
	for (c = 0; c < N_CLUSTERS && rc == 0; c++) {
		w->pods[c] = n / N_CLUSTERS + (c < n % N_CLUSTERS);
		rc = put_identity(w, special_id(c, SPECIAL_DNS), c, "kube-system", "kube-dns", NULL,
		                  NULL);
		if (rc == 0)
			rc = put_identity(w, special_id(c, SPECIAL_PROM), c, "monitoring",
			                  "prometheus", "monitoring", NULL);
		for (p = 0; p < w->pods[c] && rc == 0; p++) {
			char v[16];

			snprintf(v, sizeof(v), "v%u", p % VERSIONS);
			rc = put_pod(w, c, N_SPECIAL + p, p / VERSIONS, v);
		}
	}
	if (rc != 0)
		bp_world_free(w);
	return rc;
}

/* A new identity: a rollout of a random existing app in a new version. */
static int
world_add(struct world *w, unsigned c, unsigned serial, uint32_t *id)
{
	unsigned groups = (w->pods[c] + VERSIONS - 1) / VERSIONS;
	unsigned local = N_SPECIAL + w->pods[c] + w->added[c];
	char v[16];
	int rc;

	if (local >= N_SPECIAL + MAX_PER_CLUSTER || groups == 0)
		return -E2BIG;
	snprintf(v, sizeof(v), "r%u", serial);
	rc = put_pod(w, c, local, (unsigned)(rng() % groups), v);
	if (rc == 0) {
		w->added[c]++;
		*id = local_id(c, local);
	}
	return rc;
}

/* ---- policies ---- */

/* The CNP of app @p group (namespace group / APPS, app group % APPS). */
static void
policy_yaml(struct sbuf *b, unsigned group)
{
	unsigned j = group / APPS, k = group % APPS;

	sb_printf(b,
	          "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
	          "metadata: {name: a%u, namespace: ns%u}\n"
	          "spec:\n"
	          "  endpointSelector: {matchLabels: {app: a%u}}\n"
	          "  ingress:\n"
	          "  - fromEndpoints: [{matchLabels: {app: a%u}}]\n"
	          "    toPorts: [{ports: [{port: \"8080\", protocol: TCP}, "
	          "{port: \"8443\", protocol: TCP}]}]\n"
	          "  - fromEndpoints: [{matchExpressions: [{key: tier, operator: In, "
	          "values: [frontend]}]}]\n"
	          "    toPorts: [{ports: [{port: \"80\", endPort: 89, protocol: TCP}]}]\n",
	          k, j, k, (k + APPS - 1) % APPS);
	if (k % 5 == 0)
		sb_printf(b, "  - fromEndpoints: [{matchLabels: {io.kubernetes.pod.namespace: "
		             "monitoring, app: prometheus}}]\n"
		             "    toPorts: [{ports: [{port: \"9090\", protocol: TCP}]}]\n");
	if (k % 4 == 2)
		sb_printf(b,
		          "  egress:\n"
		          "  - toEndpoints: [{matchLabels: {app: a%u}}]\n"
		          "    toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]\n"
		          "  - toEndpoints: [{matchLabels: {io.kubernetes.pod.namespace: "
		          "kube-system, k8s-app: kube-dns}}]\n"
		          "    toPorts: [{ports: [{port: \"53\", protocol: UDP}, "
		          "{port: \"53\", protocol: TCP}]}]\n",
		          (k + 1) % APPS);
	if (k % 7 == 3)
		sb_printf(b,
		          "  ingressDeny:\n"
		          "  - fromEndpoints: [{matchLabels: {app: a%u, version: v0}}]\n"
		          "    toPorts: [{ports: [{port: \"8443\", protocol: TCP}]}]\n",
		          (k + APPS - 1) % APPS);
	if (k % 11 == 5)
		sb_printf(b, "  egressDeny:\n"
		             "  - toEndpoints: [{matchLabels: {tier: db}}]\n"
		             "    toPorts: [{ports: [{port: \"5432\", protocol: TCP}]}]\n");
}

/*
 * A set of @p n CNPs, one per app, spread over the clusters; in each
 * cluster they cover the apps in order. Returns the load time in *secs.
 */
struct mg_policy_set *
bp_policies_load(unsigned n, double *secs, size_t *yaml_bytes, struct mg_error *err)
{
	struct mg_policy_set *s = mg_policy_set_create();
	struct sbuf b = {0};
	unsigned c, g;
	uint64_t t0;
	double total = 0;

	*yaml_bytes = 0;
	if (s == NULL)
		return NULL;
	for (c = 0; c < N_CLUSTERS; c++) {
		unsigned count = n / N_CLUSTERS + (c < n % N_CLUSTERS);
		char name[32];
		int rc;

		b.n = 0;
		for (g = 0; g < count; g++)
			policy_yaml(&b, g);
		if (b.oom) {
			mg_error_set(err, NULL, 0, 0, "out of memory");
			goto err;
		}
		snprintf(name, sizeof(name), "bench-%s.yaml", cluster_name[c]);
		t0 = mg_time_ns();
		rc = mg_policy_set_load_buf(s, cluster_name[c], name, b.p, b.n, err);
		total += bp_secs_since(t0);
		if (rc < 0)
			goto err;
		*yaml_bytes += b.n;
	}
	free(b.p);
	*secs = total;
	return s;
err:
	free(b.p);
	mg_policy_set_free(s);
	return NULL;
}

static const struct mg_policy_params params = {
        .enforcement = MG_ENFORCE_DEFAULT, .default_local_cluster = true, .revision = 1};

int
bp_compile_timed(const struct mg_policy_set *s, const struct mg_identity_table *ids,
                 struct compiled *out, struct mg_error *err)
{
	uint64_t t0 = mg_time_ns();

	out->pol = mg_policy_compile(s, ids, &params, err);
	out->secs = bp_secs_since(t0);
	return out->pol != NULL ? 0 : -errno;
}

/* ---- flows ---- */

/*
 * Flows towards random pods: half from the app the destination's policy
 * admits, a quarter from another app of its namespace, the rest from
 * prometheus or anywhere; ports those policies name and random ones. DNS
 * flows go to kube-dns.
 */
struct flow *
bp_flows_build(const struct world *w, unsigned n)
{
	static const struct {
		uint8_t proto;
		uint16_t port, spread;
	} ports[8] = {
	        {MG_IPPROTO_TCP, 8080, 1}, {MG_IPPROTO_TCP, 8080, 1},     {MG_IPPROTO_TCP, 8443, 1},
	        {MG_IPPROTO_TCP, 80, 10},  {MG_IPPROTO_TCP, 9090, 1},     {MG_IPPROTO_TCP, 5432, 1},
	        {MG_IPPROTO_UDP, 53, 1},   {MG_IPPROTO_TCP, 1024, 60000},
	};
	struct flow *f = calloc(n, sizeof(*f));
	unsigned i;

	if (f == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		unsigned c = (unsigned)(rng() % N_CLUSTERS), p, g, src_p, r, pi;
		uint32_t sa, da;

		if (w->pods[c] == 0)
			c = 0;
		p = (unsigned)(rng() % w->pods[c]);
		g = p / VERSIONS;
		r = (unsigned)(rng() % 8);
		if (r < 4) /* the previous app of the namespace */
			src_p = (g / APPS * APPS + (g % APPS + APPS - 1) % APPS) * VERSIONS +
			        (unsigned)(rng() % VERSIONS);
		else if (r < 6) /* any app of the namespace */
			src_p = (g / APPS * APPS + (unsigned)(rng() % APPS)) * VERSIONS +
			        (unsigned)(rng() % VERSIONS);
		else
			src_p = (unsigned)(rng() % w->pods[c]);
		if (src_p >= w->pods[c])
			src_p = (unsigned)(rng() % w->pods[c]);
		f[i].src = r == 6 ? special_id(c, SPECIAL_PROM) : pod_id(c, src_p);
		f[i].dst = pod_id(c, p);
		pi = (unsigned)(rng() % 8);
		f[i].proto = ports[pi].proto;
		f[i].dport = (uint16_t)(ports[pi].port + rng() % ports[pi].spread);
		if (ports[pi].proto == MG_IPPROTO_UDP)
			f[i].dst = special_id(c, SPECIAL_DNS);
		f[i].sport = (uint16_t)(32768 + rng() % 28000);
		sa = __builtin_bswap32(bp_addr_of(f[i].src));
		da = __builtin_bswap32(bp_addr_of(f[i].dst));
		memcpy(f[i].saddr, &sa, 4);
		memcpy(f[i].daddr, &da, 4);
	}
	return f;
}

/* ---- compile, verdict ---- */

/*
 * Compile @p s over @p w (print the compile line) and time verdicts on
 * @p flows into *cycles and *allowed. The compiled policy is returned in
 * @p keep when it is not NULL (else freed).
 * @return 0, or -1 when the compile failed (reported).
 */
static int
compile_and_verdict(const struct opts *o, const struct mg_policy_set *s, const struct world *w,
                    const struct flow *flows, struct compiled *keep, double *cycles, double *bulk,
                    unsigned *allowed, unsigned *bad)
{
	unsigned ballowed = 0;
	struct mg_error err = {{0}};
	struct compiled cp;
	char t[32];

	if (bp_compile_timed(s, w->ids, &cp, &err) != 0) {
		printf("compile   %5zu rules over %6zu identities: FAILED after %.1f s: %s\n",
		       mg_policy_set_rules(s), mg_identity_table_count(w->ids), cp.secs, err.msg);
		fflush(stdout);
		return -1;
	}
	printf("compile   %5zu rules over %6zu identities: %9s, policy %8zu KiB\n",
	       mg_policy_set_rules(s), mg_identity_table_count(w->ids),
	       bp_fmt_secs(t, sizeof(t), cp.secs), mg_policy_memory(cp.pol) / 1024);
	fflush(stdout);
	*cycles = bp_verdict_cycles(cp.pol, flows, o->flows, o->rounds, allowed);
	*bulk = bp_verdict_bulk_cycles(cp.pol, flows, o->flows, o->rounds, &ballowed);
	*bad += bp_bulk_disagreements(cp.pol, flows, o->flows) + (ballowed != *allowed);
	if (keep != NULL)
		*keep = cp;
	else
		mg_policy_free(cp.pol);
	return 0;
}

/*
 * Each policy size over 1k, 10k and all the identities, then the verdict
 * cycles as a table. The largest policy that compiled over all the
 * identities is handed back (with its set) for the incremental benchmark.
 */
static int
bench_compile_and_verdict(const struct opts *o, struct world *w, struct mg_policy_set **kept_set,
                          struct compiled *kept)
{
	unsigned sizes[3] = {1000, 10000, o->identities}, nsizes = 0;
	struct mg_policy_set *sets[3] = {NULL, NULL, NULL};
	double cyc[3][3], bcyc[3][3], load[3];
	unsigned allowed[3][3], i, z, bad = 0;
	size_t yaml[3], nids[3];
	struct mg_error err = {{0}};
	int rc = 0;

	while (nsizes < 2 && sizes[nsizes] < o->identities)
		nsizes++;
	sizes[nsizes++] = o->identities;
	for (i = 0; i < 3; i++) {
		sets[i] = bp_policies_load(o->policies[i], &load[i], &yaml[i], &err);
		if (sets[i] == NULL) {
			fprintf(stderr, "policy: load: %s\n", err.msg);
			rc = -EINVAL;
			goto out;
		}
		printf("load      %5zu rules: %zu KiB of YAML in %.1f ms\n",
		       mg_policy_set_rules(sets[i]), yaml[i] / 1024, load[i] * 1e3);
	}
	for (z = 0; z < nsizes && rc == 0; z++) {
		struct world small, *x = w;
		struct flow *flows;

		if (sizes[z] != o->identities) {
			rc = bp_world_build(&small, sizes[z]);
			if (rc != 0)
				break;
			x = &small;
		}
		nids[z] = mg_identity_table_count(x->ids);
		flows = bp_flows_build(x, o->flows);
		for (i = 0; i < 3 && flows != NULL; i++) {
			struct compiled cp;

			cyc[z][i] = -1;
			if (compile_and_verdict(o, sets[i], x, flows, x == w ? &cp : NULL,
			                        &cyc[z][i], &bcyc[z][i], &allowed[z][i],
			                        &bad) != 0 ||
			    x != w)
				continue;
			/* sizes grow: the last that compiled is the largest */
			mg_policy_free(kept->pol);
			*kept = cp;
			*kept_set = sets[i];
		}
		if (flows == NULL)
			rc = -ENOMEM;
		free(flows);
		if (x != w)
			bp_world_free(&small);
	}
	if (rc != 0)
		goto out;
	printf("memory    peak RSS of the process so far %lu MiB (identity tables, policy sets, "
	       "compiles)\n",
	       peak_rss_kib() >> 10);
	printf("verdict   cycles per verdict (%u flows, blocks of %u timed apart, best of %u "
	       "rounds each; allowed share in brackets)\n          %12s",
	       o->flows, CHUNK, o->rounds, "");
	for (z = 0; z < nsizes; z++)
		printf("  %7zu identities", nids[z]);
	printf("\n");
	for (i = 0; i < 3; i++) {
		printf("verdict   %5zu rules ", mg_policy_set_rules(sets[i]));
		for (z = 0; z < nsizes; z++)
			if (cyc[z][i] < 0)
				printf("  %18s", "(no compile)");
			else
				printf("  %10.1f  (%3.0f%%)", cyc[z][i],
				       100.0 * allowed[z][i] / o->flows);
		printf("\n");
	}
	printf("bulk      cycles per verdict by mg_policy_verdict_bulk, bursts of %u (same flows "
	       "and timing)\n",
	       BURST);
	for (i = 0; i < 3; i++) {
		printf("bulk      %5zu rules ", mg_policy_set_rules(sets[i]));
		for (z = 0; z < nsizes; z++)
			if (cyc[z][i] < 0)
				printf("  %18s", "(no compile)");
			else
				printf("  %10.1f        ", bcyc[z][i]);
		printf("\n");
	}
	if (cyc[0][0] > 0 && cyc[nsizes - 1][2] > 0)
		printf("ratio     %zu rules over %zu identities / %zu rules over %zu identities: "
		       "single %.2fx, bulk %.2fx\n",
		       mg_policy_set_rules(sets[2]), nids[nsizes - 1], mg_policy_set_rules(sets[0]),
		       nids[0], cyc[nsizes - 1][2] / cyc[0][0], bcyc[nsizes - 1][2] / bcyc[0][0]);
	printf("check     bulk and single verdicts differ on %u flows\n", bad);
out:
	fflush(stdout);
	for (i = 0; i < 3; i++)
		if (sets[i] != *kept_set)
			mg_policy_set_free(sets[i]);
	return rc;
}

/* ---- incremental ---- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Flows from or to the identities added, checked in both compiled policies. */
static unsigned
incremental_check(const struct world *w, const struct mg_policy *a, const struct mg_policy *b,
                  const uint32_t *added, unsigned nadded, unsigned *checked)
{
	struct flow *f = bp_flows_build(w, 65536);
	unsigned i, wrong = 0;

	*checked = 0;
	if (f == NULL)
		return 0;
	for (i = 0; i < 65536; i++) {
		uint32_t x = added[rng() % nadded];

		if (i % 2)
			f[i].src = x;
		else
			f[i].dst = x;
		wrong += mg_policy_verdict(a, f[i].src, f[i].dst, f[i].proto, f[i].dport) !=
		         mg_policy_verdict(b, f[i].src, f[i].dst, f[i].proto, f[i].dport);
	}
	*checked = 65536;
	free(f);
	return wrong;
}

static int
bench_incremental(const struct opts *o, struct world *w, const struct mg_policy_set *s,
                  struct mg_policy *pol, double full_secs)
{
	struct mg_error err = {{0}};
	double *us = NULL;
	uint32_t *added = NULL;
	struct compiled full;
	char t[2][32];
	unsigned i, done = 0, wrong, checked;
	size_t n0 = mg_identity_table_count(w->ids);
	int rc = 0;

	if (o->adds == 0)
		goto out;
	us = calloc(o->adds, sizeof(*us));
	added = calloc(o->adds, sizeof(*added));
	if (us == NULL || added == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < o->adds; i++) {
		struct mg_policy *next;
		uint64_t t0;

		rc = world_add(w, i % N_CLUSTERS, i, &added[i]);
		if (rc != 0)
			goto out;
		t0 = mg_time_ns();
		next = mg_policy_update_identities(pol, s, w->ids, &added[i], 1, &err);
		us[i] = (double)(mg_time_ns() - t0) / 1e3;
		if (next == NULL) {
			if (errno == ENOSYS)
				printf("incremental  not available: mg_policy_update_identities "
				       "returns ENOSYS\n");
			else
				printf("incremental  FAILED at identity %u: %s\n", i, err.msg);
			goto out;
		}
		mg_policy_free(pol);
		pol = next;
		done++;
	}
	qsort(us, done, sizeof(*us), cmp_double);
	printf("incremental  %zu rules, %u identities added one at a time to %zu: p50 %.0f us, "
	       "p99 %.0f us, max %.0f us per update (policy now %zu KiB)\n",
	       mg_policy_set_rules(s), done, n0, us[done / 2], us[(done * 99) / 100], us[done - 1],
	       mg_policy_memory(pol) / 1024);
	if (bp_compile_timed(s, w->ids, &full, &err) != 0) {
		printf("incremental  full compile FAILED: %s\n", err.msg);
		goto out;
	}
	wrong = incremental_check(w, pol, full.pol, added, done, &checked);
	printf("incremental  vs one full compile over %zu: %s (the first compile: %s); "
	       "verdicts differ on %u of %u flows touching the new identities\n",
	       mg_identity_table_count(w->ids), bp_fmt_secs(t[0], sizeof(t[0]), full.secs),
	       bp_fmt_secs(t[1], sizeof(t[1]), full_secs), wrong, checked);
	mg_policy_free(full.pol);
out:
	fflush(stdout);
	mg_policy_free(pol);
	free(us);
	free(added);
	return rc;
}

/* ---- entry ---- */

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: meshgate-bench policy [--identities N] [--policies A,B,C] [--flows N] "
	        "[--rounds N]\n"
	        "                             [--adds N] [--acl-identities N[,N...]] [--acl-iter "
	        "N]\n"
	        "                             [--test-acl PATH] [--keep DIR]\n"
	        "  defaults: 100000 identities, policies 10,1000,10000, 65536 flows, 20 rounds,\n"
	        "  1000 adds, dpdk-test-acl comparison over 1000,2000 identities (0: skip it)\n");
}

int
mg_bench_policy(int argc, char **argv)
{
	static const struct option lopts[] = {
	        {"identities", required_argument, NULL, 'i'},
	        {"policies", required_argument, NULL, 'p'},
	        {"flows", required_argument, NULL, 'f'},
	        {"rounds", required_argument, NULL, 'r'},
	        {"adds", required_argument, NULL, 'a'},
	        {"acl-identities", required_argument, NULL, 'A'},
	        {"acl-iter", required_argument, NULL, 'I'},
	        {"test-acl", required_argument, NULL, 't'},
	        {"keep", required_argument, NULL, 'k'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct opts o = {
	        .identities = 100000,
	        .policies = {10, 1000, 10000},
	        .flows = 65536,
	        .rounds = 20,
	        .adds = 1000,
	        .acl_identities = {1000, 2000},
	        .acl_iter = 20,
	        .test_acl = "dpdk-test-acl",
	};
	struct mg_policy_set *kept_set = NULL;
	struct compiled kept = {0};
	struct world w;
	unsigned i;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			o.identities = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'p':
			if (sscanf(optarg, "%u,%u,%u", &o.policies[0], &o.policies[1],
			           &o.policies[2]) != 3) {
				usage(stderr);
				return 2;
			}
			break;
		case 'f':
			o.flows = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'r':
			o.rounds = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'a':
			o.adds = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'A': {
			char *end = optarg;
			unsigned k;

			memset(o.acl_identities, 0, sizeof(o.acl_identities));
			for (k = 0; k < 3 && *end != '\0'; k++) {
				o.acl_identities[k] = (unsigned)strtoul(end, &end, 0);
				if (*end == ',')
					end++;
			}
			break;
		}
		case 'I':
			o.acl_iter = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 't':
			o.test_acl = optarg;
			break;
		case 'k':
			o.keep_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (o.identities < N_CLUSTERS * VERSIONS || o.flows < BURST || o.rounds == 0 ||
	    o.acl_iter == 0) {
		usage(stderr);
		return 2;
	}
	o.flows -= o.flows % BURST;
	tsc_measure();
	rc = bp_world_build(&w, o.identities);
	if (rc != 0) {
		fprintf(stderr, "policy: identities: %s\n", strerror(-rc));
		return 1;
	}
	printf("policy    %u pod identities in %u clusters (%u namespaces of %u apps x %u "
	       "versions each) + %u others; one CNP per app; TSC %.2f GHz\n",
	       o.identities, N_CLUSTERS,
	       (o.identities / N_CLUSTERS + APPS * VERSIONS - 1) / (APPS * VERSIONS), APPS,
	       VERSIONS, N_CLUSTERS * N_SPECIAL + MG_ID_RESERVED_MAX, (double)tsc_hz / 1e9);
	fflush(stdout);
	rc = bench_compile_and_verdict(&o, &w, &kept_set, &kept);
	if (rc == 0 && kept.pol != NULL)
		rc = bench_incremental(&o, &w, kept_set, kept.pol, kept.secs);
	else
		mg_policy_free(kept.pol);
	mg_policy_set_free(kept_set);
	bp_world_free(&w);
	for (i = 0; rc == 0 && o.acl_identities[i] >= N_CLUSTERS; i++)
		rc = bp_bench_acl(&o, o.acl_identities[i]);
	return rc == 0 ? 0 : 1;
}
