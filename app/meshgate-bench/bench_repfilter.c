/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench replicator-filter`: what meshgate-replicator's
 * relevant-only filter (lib/replicator/rep_filter.h) saves on a generated
 * mesh, what it costs per identity, and a check that the gateways'
 * verdicts do not change.
 *
 * The mesh: --clusters clusters (c1, c2, ...) of --endpoints endpoints
 * each. A cluster has 40 namespaces of 25 apps in two versions, so 2000
 * identities (labels app, version, tier, namespace, cluster, service
 * account); its endpoints are spread over them, 1 to 9 per identity
 * (ipcache entries 10.<cluster>.x.y). Policies: every cluster has one CNP
 * per app of its first four namespaces (a tenth of the mesh): ingress from
 * the previous app of the namespace and from the same app in the next
 * cluster (naming that cluster) on TCP 8080, egress to the next app and
 * to the namespace's db tier, and for every fifth app an ingressDeny from
 * version v1 of the app two places back. The filter is configured with
 * every cluster's policy files as the gateways' policy.sources.
 *
 * Printed: identities and ipcache entries (and the bytes of their Redis
 * keys and values, values formatted as Cilium writes them) without and
 * with the filter, the reduction, the filter's load time and its cost per
 * identity (decision alone, and with parsing the label string as the
 * replicator must), then the differential check: the policy compiled
 * over every identity and over the kept ones, --flows random flows
 * between kept (and reserved) identities compared (half of them between
 * neighbours on the policies' port, so that many are allowed), the same
 * flows with random dropped identities swapped for one another at either
 * end (the full compile must not tell them apart), and a sample of the
 * dropped identities checked to be in no selector's list.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_repfilter.h"
#include "mg_common.h"
#include "mg_identity.h"
#include "mg_policy.h"
#include "rep_filter.h"

#define NS_PER_CLUSTER 40
#define APPS_PER_NS 25
#define VERSIONS 2
#define IDS_PER_CLUSTER (NS_PER_CLUSTER * APPS_PER_NS * VERSIONS)
#define POLICY_NS 4 /* namespaces with policies: a tenth */
#define SELECTOR_SAMPLE 2000

struct rf_ident {
	uint32_t id;
	unsigned cluster;
	char *str; /* Cilium's label string, as the replicator reads it */
	struct mg_labels ls;
	unsigned endpoints;
	bool kept;
};

struct rf_mesh {
	unsigned clusters, endpoints;
	size_t n;
	struct rf_ident *v;
	char dir[64];
	char **paths;
	struct mg_rep_filter *f;
	struct mg_policy_set *set;
};

static uint64_t rf_rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rf_rng(void)
{
	rf_rng_state ^= rf_rng_state << 13;
	rf_rng_state ^= rf_rng_state >> 7;
	rf_rng_state ^= rf_rng_state << 17;
	return rf_rng_state;
}

static const char *const tiers[3] = {"frontend", "backend", "db"};

static int
mesh_identities(struct rf_mesh *m)
{
	struct mg_error err;
	size_t k = 0;

	m->n = (size_t)m->clusters * IDS_PER_CLUSTER;
	m->v = calloc(m->n, sizeof(*m->v));
	if (m->v == NULL)
		return -ENOMEM;
	for (unsigned c = 1; c <= m->clusters; c++)
		for (unsigned i = 0; i < IDS_PER_CLUSTER; i++, k++) {
			unsigned ns = i / (APPS_PER_NS * VERSIONS),
			         app = i / VERSIONS % APPS_PER_NS;
			struct rf_ident *d = &m->v[k];
			char s[512];

			snprintf(
			        s, sizeof(s),
			        "k8s:app=app%u;k8s:io.cilium.k8s.policy.cluster=c%u;"
			        "k8s:io.cilium.k8s.policy.serviceaccount=app%u;"
			        "k8s:io.kubernetes.pod.namespace=ns%u;k8s:tier=%s;k8s:version=v%u;",
			        app, c, app, ns, tiers[app % 3], i % VERSIONS);
			d->id = (c << 16) + 256 + i;
			d->cluster = c;
			d->str = strdup(s);
			if (d->str == NULL || mg_labels_parse(&d->ls, s, &err) != 0)
				return -ENOMEM;
		}
	/* endpoints: 1 to 9 per identity, then the rest spread at random */
	for (unsigned c = 0; c < m->clusters; c++) {
		struct rf_ident *v = &m->v[(size_t)c * IDS_PER_CLUSTER];
		unsigned left = m->endpoints;

		for (unsigned i = 0; i < IDS_PER_CLUSTER && left > 0; i++, left--)
			v[i].endpoints = 1;
		while (left > 0) {
			struct rf_ident *d = &v[rf_rng() % IDS_PER_CLUSTER];

			if (d->endpoints < 9) {
				d->endpoints++;
				left--;
			}
		}
	}
	return 0;
}

/* The CNPs of cluster @p c (see the file comment) into @p f. */
static void
mesh_policies_of(FILE *f, unsigned c, unsigned clusters)
{
	unsigned next = c % clusters + 1;

	for (unsigned ns = 0; ns < POLICY_NS; ns++)
		for (unsigned a = 0; a < APPS_PER_NS; a++) {
			fprintf(f,
			        "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
			        "metadata: {name: app%u, namespace: ns%u}\n"
			        "spec:\n  endpointSelector: {matchLabels: {app: app%u}}\n"
			        "  ingress:\n  - fromEndpoints:\n    - matchLabels: {app: app%u}\n"
			        "    - matchLabels: {app: app%u, io.cilium.k8s.policy.cluster: "
			        "c%u}\n"
			        "    toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]\n"
			        "  egress:\n  - toEndpoints:\n    - matchLabels: {app: app%u}\n"
			        "    - matchLabels: {tier: db}\n",
			        a, ns, a, (a + APPS_PER_NS - 1) % APPS_PER_NS, a, next,
			        (a + 1) % APPS_PER_NS);
			if (a % 5 == 0)
				fprintf(f,
				        "  ingressDeny:\n  - fromEndpoints: [{matchLabels: {app: "
				        "app%u, version: v1}}]\n",
				        (a + APPS_PER_NS - 2) % APPS_PER_NS);
		}
}

static int
mesh_policies(struct rf_mesh *m, struct mg_error *err)
{
	struct mg_rep_filter_config cfg = {.default_local_cluster = true};
	int rc = 0;

	snprintf(m->dir, sizeof(m->dir), "/tmp/mgbench-rf.XXXXXX");
	if (mkdtemp(m->dir) == NULL)
		return -errno;
	m->paths = calloc(m->clusters, sizeof(*m->paths));
	cfg.sources = calloc(m->clusters, sizeof(*cfg.sources));
	m->set = mg_policy_set_create();
	if (m->paths == NULL || cfg.sources == NULL || m->set == NULL) {
		free(cfg.sources);
		return -ENOMEM;
	}
	for (unsigned c = 1; c <= m->clusters && rc == 0; c++) {
		char name[16];
		FILE *f;

		snprintf(name, sizeof(name), "c%u", c);
		if (asprintf(&m->paths[c - 1], "%s/%s.yaml", m->dir, name) < 0) {
			m->paths[c - 1] = NULL;
			rc = -ENOMEM;
			break;
		}
		f = fopen(m->paths[c - 1], "w");
		if (f == NULL) {
			rc = -errno;
			break;
		}
		mesh_policies_of(f, c, m->clusters);
		fclose(f);
		cfg.sources[c - 1].cluster = strdup(name);
		cfg.sources[c - 1].path = strdup(m->paths[c - 1]);
		cfg.n_sources = c;
		/* the gateways' own copy of the same policies */
		if (mg_policy_set_load_path(m->set, name, m->paths[c - 1], err) < 0)
			rc = -EINVAL;
	}
	if (rc == 0) {
		uint64_t t0 = mg_time_ns();

		m->f = mg_rep_filter_create(&cfg, err);
		rc = m->f == NULL ? -EINVAL : 0;
		if (rc == 0)
			printf("filter: policies loaded and indexed in %.1f ms\n",
			       (double)(mg_time_ns() - t0) / 1e6);
	}
	mg_rep_filter_config_clear(&cfg);
	return rc;
}

static void
mesh_free(struct rf_mesh *m)
{
	for (size_t i = 0; m->v != NULL && i < m->n; i++) {
		free(m->v[i].str);
		mg_labels_clear(&m->v[i].ls);
	}
	free(m->v);
	for (unsigned c = 0; m->paths != NULL && c < m->clusters; c++) {
		if (m->paths[c] != NULL)
			unlink(m->paths[c]);
		free(m->paths[c]);
	}
	free(m->paths);
	if (m->dir[0] != '\0')
		rmdir(m->dir);
	mg_rep_filter_free(m->f);
	mg_policy_set_free(m->set);
}

/* Bytes of an identity's Redis key and value, and of its ipcache entries'. */
static void
redis_bytes(const struct rf_ident *d, size_t *id_bytes, size_t *ip_bytes)
{
	char key[128], val[512];
	int kl, vl;

	kl = snprintf(key, sizeof(key), "cilium/cache/identities/v1/c%u/id/%u", d->cluster, d->id);
	*id_bytes = (size_t)kl + strlen(d->str);
	*ip_bytes = 0;
	for (unsigned e = 0; e < d->endpoints; e++) {
		unsigned a = (d->id & 0xffff) * 9 + e;

		kl = snprintf(key, sizeof(key), "cilium/cache/ip/v1/c%u/10.%u.%u.%u", d->cluster,
		              d->cluster, a >> 8 & 255, a & 255);
		vl = snprintf(val, sizeof(val),
		              "{\"IP\":\"10.%u.%u.%u\",\"Mask\":null,\"HostIP\":\"192.168.%u.%u\","
		              "\"ID\":%u,\"Key\":0,\"Metadata\":\"cilium-global:default:node-%u:"
		              "%u\",\"K8sNamespace\":\"%s\",\"K8sPodName\":\"%s-5d8c7b9f4-%05u\","
		              "\"NamedPorts\":null}",
		              d->cluster, a >> 8 & 255, a & 255, d->cluster, a % 50, d->id, a % 50,
		              1000 + a,
		              mg_labels_find(&d->ls, "k8s", "io.kubernetes.pod.namespace")->value,
		              mg_labels_find(&d->ls, "k8s", "app")->value, a);
		*ip_bytes += (size_t)kl + (size_t)vl;
	}
}

static void
print_reduction(const struct rf_mesh *m)
{
	size_t ids[2] = {0}, ips[2] = {0}, bytes[2] = {0};
	struct mg_rep_filter_info info;

	for (size_t i = 0; i < m->n; i++) {
		const struct rf_ident *d = &m->v[i];
		size_t ib, pb;

		redis_bytes(d, &ib, &pb);
		for (unsigned k = 0; k < 2; k++)
			if (k == 0 || d->kept) {
				ids[k]++;
				ips[k] += d->endpoints;
				bytes[k] += ib + pb;
			}
	}
	mg_rep_filter_info(m->f, &info);
	printf("filter: %zu policies, %zu rules, %zu distinct selectors; world peers %s, named "
	       "ports for any peer %s\n",
	       info.policies, info.rules, info.selectors, info.world_peers ? "yes" : "no",
	       info.named_any_peer ? "yes" : "no");
	printf("\n                    without filter   with filter   kept    reduction\n");
	printf("identities          %14zu %13zu %6.1f%% %9.1fx\n", ids[0], ids[1],
	       100.0 * (double)ids[1] / (double)ids[0], (double)ids[0] / (double)ids[1]);
	printf("ipcache entries     %14zu %13zu %6.1f%% %9.1fx\n", ips[0], ips[1],
	       100.0 * (double)ips[1] / (double)ips[0], (double)ips[0] / (double)ips[1]);
	printf("Redis keys+values   %11.1f MB %10.1f MB %6.1f%% %9.1fx\n\n", (double)bytes[0] / 1e6,
	       (double)bytes[1] / 1e6, 100.0 * (double)bytes[1] / (double)bytes[0],
	       (double)bytes[0] / (double)bytes[1]);
}

/* Decide on every identity (kept[] set), and time the decisions. */
static void
run_filter(struct rf_mesh *m, unsigned rounds)
{
	struct mg_error err;
	uint64_t t0, best = UINT64_MAX, parse_best = UINT64_MAX;
	size_t sink = 0;

	for (size_t i = 0; i < m->n; i++)
		m->v[i].kept = mg_rep_filter_identity(m->f, m->v[i].id, &m->v[i].ls);
	for (unsigned r = 0; r < rounds; r++) {
		t0 = mg_time_ns();
		for (size_t i = 0; i < m->n; i++)
			sink += mg_rep_filter_identity(m->f, m->v[i].id, &m->v[i].ls);
		t0 = mg_time_ns() - t0;
		best = t0 < best ? t0 : best;
		t0 = mg_time_ns();
		for (size_t i = 0; i < m->n; i++) {
			struct mg_labels ls = MG_LABELS_INIT;

			if (mg_labels_parse(&ls, m->v[i].str, &err) == 0)
				sink += mg_rep_filter_identity(m->f, m->v[i].id, &ls);
			mg_labels_clear(&ls);
		}
		t0 = mg_time_ns() - t0;
		parse_best = t0 < parse_best ? t0 : parse_best;
	}
	printf("filter cost per identity: %.0f ns (decision), %.0f ns (parsing the label string "
	       "and deciding); best of %u rounds over %zu identities%s\n",
	       (double)best / (double)m->n, (double)parse_best / (double)m->n, rounds, m->n,
	       sink == 0 ? " (nothing kept?)" : "");
}

struct rf_sel {
	const struct rf_mesh *m;
	size_t selected_dropped;
};

/* Is identity @p id one the filter dropped? (m->v is in id order, as built.) */
static bool
dropped(const struct rf_mesh *m, uint32_t id)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->v[mid].id == id)
			return !m->v[mid].kept;
		if (m->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int
count_selected_dropped(const struct mg_policy_selector_info *si, void *arg)
{
	struct rf_sel *s = arg;

	for (size_t k = 0; k < si->n_ids; k++)
		s->selected_dropped += dropped(s->m, si->ids[k]);
	return 0;
}

/*
 * Evaluate every selector of the set, as the gateway does, over a sample
 * of the dropped identities (in a table of their own: a walk over the
 * whole table per selector would take minutes) and count those selected.
 */
static int
selectors_check(const struct rf_mesh *m, const uint32_t *dv, size_t nd, struct rf_sel *sel)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	size_t step = nd > SELECTOR_SAMPLE ? nd / SELECTOR_SAMPLE : 1, n = 0;
	uint64_t t0 = mg_time_ns();
	int rc = t == NULL ? -ENOMEM : 0;

	for (size_t i = 0; rc == 0 && i < nd; i += step, n++) {
		const struct rf_ident *d = &m->v[(dv[i] >> 16) * IDS_PER_CLUSTER - IDS_PER_CLUSTER +
		                                 ((dv[i] & 0xffff) - 256)];

		rc = mg_identity_table_put(t, d->id, &d->ls, d->cluster) < 0 ? -ENOMEM : 0;
	}
	if (rc == 0)
		rc = mg_policy_set_selectors(m->set, t, true, count_selected_dropped, sel);
	printf("selectors: %zu sampled dropped identities, selected by any selector: %zu (%.1f "
	       "s)\n",
	       n, sel->selected_dropped, (double)(mg_time_ns() - t0) / 1e9);
	mg_identity_table_free(t);
	return rc;
}

/* The identity tables: every identity, and the kept ones. */
static int
tables(const struct rf_mesh *m, struct mg_identity_table **all, struct mg_identity_table **kept,
       uint32_t **kv, size_t *nk, uint32_t **dv, size_t *nd)
{
	*all = mg_identity_table_create(MG_CLUSTER_MODE_255);
	*kept = mg_identity_table_create(MG_CLUSTER_MODE_255);
	*kv = calloc(m->n + MG_ID_RESERVED_MAX, sizeof(**kv));
	*dv = calloc(m->n, sizeof(**dv));
	if (*all == NULL || *kept == NULL || *kv == NULL || *dv == NULL)
		return -ENOMEM;
	*nk = *nd = 0;
	for (uint32_t r = 1; r <= MG_ID_RESERVED_MAX; r++)
		(*kv)[(*nk)++] = r;
	for (size_t i = 0; i < m->n; i++) {
		const struct rf_ident *d = &m->v[i];

		if (mg_identity_table_put(*all, d->id, &d->ls, d->cluster) < 0 ||
		    (d->kept && mg_identity_table_put(*kept, d->id, &d->ls, d->cluster) < 0))
			return -ENOMEM;
		if (d->kept)
			(*kv)[(*nk)++] = d->id;
		else
			(*dv)[(*nd)++] = d->id;
	}
	return 0;
}

static const struct {
	uint8_t proto;
	uint16_t port;
} rf_ports[] = {{6, 8080}, {6, 80}, {6, 443}, {17, 53}, {1, 8}};

/* Compile twice, compare sampled flows, and check the dropped identities. */
static int
differential(const struct rf_mesh *m, unsigned flows)
{
	struct mg_policy_params pp = {.enforcement = MG_ENFORCE_DEFAULT,
	                              .default_local_cluster = true};
	struct mg_identity_table *all = NULL, *kept = NULL;
	struct mg_policy *full = NULL, *part = NULL;
	uint32_t *kv = NULL, *dv = NULL;
	size_t nk, nd, diff = 0, allowed = 0, told = 0;
	struct rf_sel sel = {.m = m};
	struct mg_error err = {{0}};
	uint64_t t0, t1, t2;
	int rc;

	rc = tables(m, &all, &kept, &kv, &nk, &dv, &nd);
	t0 = mg_time_ns();
	full = rc == 0 ? mg_policy_compile(m->set, all, &pp, &err) : NULL;
	t1 = mg_time_ns();
	part = full != NULL ? mg_policy_compile(m->set, kept, &pp, &err) : NULL;
	t2 = mg_time_ns();
	if (part == NULL) {
		fprintf(stderr, "replicator-filter: compile: %s\n",
		        err.msg[0] ? err.msg : "failed");
		rc = 1;
		goto out;
	}
	printf("gateway compile: %zu identities %.0f ms, %.1f MB; the %zu kept ones %.0f ms, %.1f "
	       "MB\n",
	       mg_identity_table_count(all), (double)(t1 - t0) / 1e6,
	       (double)mg_policy_memory(full) / 1e6, mg_identity_table_count(kept),
	       (double)(t2 - t1) / 1e6, (double)mg_policy_memory(part) / 1e6);
	for (unsigned f = 0; f < flows; f++) {
		/* half the flows between neighbours (kv is in id order: mostly one
		 * namespace) on the policies' port, half between any two on any port */
		size_t ia = rf_rng() % nk,
		       ib = f % 2 ? rf_rng() % nk : (ia + rf_rng() % 101 + nk - 50) % nk;
		uint32_t a = kv[ia], b = kv[ib];
		unsigned p = f % 2 ? (unsigned)(rf_rng() % MG_ARRAY_SIZE(rf_ports)) : 0;
		enum mg_verdict v =
		        mg_policy_verdict(full, a, b, rf_ports[p].proto, rf_ports[p].port);

		allowed += v == MG_VERDICT_ALLOW;
		diff += v != mg_policy_verdict(part, a, b, rf_ports[p].proto, rf_ports[p].port);
		/* a dropped identity in place of either end: as any other dropped one */
		if (nd > 1) {
			uint32_t x = dv[rf_rng() % nd], y = dv[rf_rng() % nd];

			told += mg_policy_verdict(full, x, b, rf_ports[p].proto,
			                          rf_ports[p].port) !=
			        mg_policy_verdict(full, y, b, rf_ports[p].proto, rf_ports[p].port);
			told += mg_policy_verdict(full, a, x, rf_ports[p].proto,
			                          rf_ports[p].port) !=
			        mg_policy_verdict(full, a, y, rf_ports[p].proto, rf_ports[p].port);
		}
	}
	printf("verdicts: %u random flows between kept or reserved identities (%zu allowed): %zu "
	       "differ\n",
	       flows, allowed, diff);
	printf("          %u flows with dropped identities swapped for one another: %zu differ\n",
	       flows, told);
	rc = selectors_check(m, dv, nd, &sel);
	rc = rc == 0 && diff == 0 && told == 0 && sel.selected_dropped == 0 ? 0 : 1;
	printf("differential check: %s\n", rc == 0 ? "PASS (0 differences)" : "FAIL");
out:
	mg_policy_free(full);
	mg_policy_free(part);
	mg_identity_table_free(all);
	mg_identity_table_free(kept);
	free(kv);
	free(dv);
	return rc;
}

static void
usage(FILE *out)
{
	fprintf(out, "usage: meshgate-bench replicator-filter [--clusters N] [--endpoints N] "
	             "[--flows N] [--rounds N]\n"
	             "  --clusters   clusters of the mesh (default 10, at most 255)\n"
	             "  --endpoints  endpoints per cluster (default 10000, at least 2000, at most "
	             "18000)\n"
	             "  --flows      flows of the differential check (default 1000000)\n"
	             "  --rounds     timing rounds of the filter (default 10)\n");
}

int
mg_bench_repfilter(int argc, char **argv)
{
	static const struct option lopts[] = {
	        {"clusters", required_argument, NULL, 'c'},
	        {"endpoints", required_argument, NULL, 'e'},
	        {"flows", required_argument, NULL, 'f'},
	        {"rounds", required_argument, NULL, 'r'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct rf_mesh m = {.clusters = 10, .endpoints = 10000};
	unsigned flows = 1000000, rounds = 10;
	struct mg_error err = {{0}};
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		unsigned long v = optarg ? strtoul(optarg, NULL, 0) : 0;

		if (opt == 'c')
			m.clusters = (unsigned)v;
		else if (opt == 'e')
			m.endpoints = (unsigned)v;
		else if (opt == 'f')
			flows = (unsigned)v;
		else if (opt == 'r')
			rounds = (unsigned)v;
		else {
			usage(opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 0 : 2;
		}
	}
	if (m.clusters < 1 || m.clusters > 255 || m.endpoints < IDS_PER_CLUSTER ||
	    m.endpoints > 9 * IDS_PER_CLUSTER || rounds == 0) {
		usage(stderr);
		return 2;
	}
	printf("replicator-filter: %u clusters x %u endpoints; %u identities per cluster (%u "
	       "namespaces x %u apps x %u versions), CNPs for every app of %u namespaces per "
	       "cluster\n",
	       m.clusters, m.endpoints, IDS_PER_CLUSTER, NS_PER_CLUSTER, APPS_PER_NS, VERSIONS,
	       POLICY_NS);
	rc = mesh_identities(&m);
	if (rc == 0)
		rc = mesh_policies(&m, &err);
	if (rc != 0) {
		fprintf(stderr, "replicator-filter: %s\n", err.msg[0] ? err.msg : strerror(-rc));
		mesh_free(&m);
		return 1;
	}
	run_filter(&m, rounds);
	print_reduction(&m);
	rc = differential(&m, flows);
	mesh_free(&m);
	return rc;
}
