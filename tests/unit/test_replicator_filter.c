/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of the replicator's relevant-only filter (lib/replicator/
 * rep_filter.h): its config section and its errors, the namespace part,
 * the policy part case by case (labels, expressions, namespace and
 * cluster scoping, CCNPs, peers, deny peers, entities, CIDRs, reserved
 * identities), each also checked against the gateway's own selector
 * evaluation (mg_policy_set_selectors), and a differential check on
 * random meshes: the policy compiled over every identity and over the
 * kept ones gives the same verdicts between kept identities, and the
 * dropped identities are ones the policy cannot tell apart.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_policy.h"
#include "mg_test.h"
#include "mg_yaml.h"
#include "rep_filter.h"

#define ID(c, n) (((uint32_t)(c) << 16) + 256 + (n))
#define NS "k8s:io.kubernetes.pod.namespace="
#define CL "k8s:io.cilium.k8s.policy.cluster="

/* The fixture: pods of clusters c1, c2, c3 (ids 1, 2, 3). */
enum {
	W1A, /* web, namespace a, c1 */
	D1A,
	W1B,
	AP1B, /* api env=prod */
	AD1B, /* api env=dev debug */
	J1K,  /* job in kube-system */
	W2A,
	D2A,
	AP2B,
	J2C,
	W3A,
	X2, /* no namespace label */
	N_FX
};

static const struct {
	uint32_t id;
	unsigned cl;
	const char *labels;
} fx[N_FX] = {
        [W1A] = {ID(1, 0), 1, "k8s:app=web;" NS "a;" CL "c1"},
        [D1A] = {ID(1, 1), 1, "k8s:app=db;" NS "a;" CL "c1"},
        [W1B] = {ID(1, 2), 1, "k8s:app=web;" NS "b;" CL "c1"},
        [AP1B] = {ID(1, 3), 1, "k8s:app=api;k8s:env=prod;" NS "b;" CL "c1"},
        [AD1B] = {ID(1, 4), 1, "k8s:app=api;k8s:env=dev;k8s:debug=1;" NS "b;" CL "c1"},
        [J1K] = {ID(1, 5), 1, "k8s:app=job;" NS "kube-system;" CL "c1"},
        [W2A] = {ID(2, 0), 2, "k8s:app=web;" NS "a;" CL "c2"},
        [D2A] = {ID(2, 1), 2, "k8s:app=db;" NS "a;" CL "c2"},
        [AP2B] = {ID(2, 2), 2, "k8s:app=api;k8s:env=prod;" NS "b;" CL "c2"},
        [J2C] = {ID(2, 3), 2, "k8s:app=job;" NS "c;" CL "c2"},
        [W3A] = {ID(3, 0), 3, "k8s:app=web;" NS "a;" CL "c3"},
        [X2] = {ID(2, 4), 2, "k8s:app=ext;" CL "c2"},
};

#define B(i) (1u << (i))
#define ALL_FX ((1u << N_FX) - 1)

static char tmpdir[64];
static unsigned nfile;

static void
tmp_clean(void)
{
	DIR *d;
	struct dirent *e;
	char p[sizeof(tmpdir) + 300];

	if (tmpdir[0] == '\0')
		return;
	d = opendir(tmpdir);
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		unlink(p);
	}
	if (d != NULL)
		closedir(d);
}

static int
suite_init(void)
{
	strcpy(tmpdir, "/tmp/mgrepf.XXXXXX");
	return mkdtemp(tmpdir) == NULL;
}

static int
suite_fini(void)
{
	tmp_clean();
	rmdir(tmpdir);
	return 0;
}

/* Write @p text to a new file of the temporary directory; its path in @p path. */
static void
put_file(const char *text, char *path, size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/p%u.yaml", tmpdir, nfile++);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

static void
parse_labels(const char *s, struct mg_labels *ls)
{
	struct mg_error err = {{0}};

	CU_ASSERT_EQUAL_FATAL(mg_labels_parse(ls, s, &err), 0);
}

/* The fixture identities @p f keeps, as a mask of B(index). */
static unsigned
kept(struct mg_rep_filter *f)
{
	unsigned mask = 0;

	for (unsigned i = 0; i < N_FX; i++) {
		struct mg_labels ls = MG_LABELS_INIT;

		parse_labels(fx[i].labels, &ls);
		if (mg_rep_filter_identity(f, fx[i].id, &ls))
			mask |= B(i);
		mg_labels_clear(&ls);
	}
	return mask;
}

static struct mg_identity_table *
fx_table(void)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_255);

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (unsigned i = 0; i < N_FX; i++) {
		struct mg_labels ls = MG_LABELS_INIT;

		parse_labels(fx[i].labels, &ls);
		CU_ASSERT_EQUAL_FATAL(mg_identity_table_put(t, fx[i].id, &ls, fx[i].cl), 0);
		mg_labels_clear(&ls);
	}
	return t;
}

struct oracle {
	unsigned mask;
};

static int
oracle_sel(const struct mg_policy_selector_info *si, void *arg)
{
	struct oracle *o = arg;

	for (size_t k = 0; k < si->n_ids; k++)
		for (unsigned i = 0; i < N_FX; i++)
			if (fx[i].id == si->ids[k])
				o->mask |= B(i);
	return 0;
}

/*
 * The filter for the policies of @p yaml (of cluster @p cluster), and the
 * fixture identities it keeps in *@p mask, checked against what the
 * gateway's selectors select in the fixture.
 */
static struct mg_rep_filter *
policy_filter(const char *cluster, const char *yaml, bool dlc, unsigned *mask)
{
	struct mg_rep_filter_source src = {.cluster = (char *)cluster};
	struct mg_rep_filter_config c = {
	        .sources = &src, .n_sources = 1, .default_local_cluster = dlc};
	struct mg_error err = {{0}};
	struct mg_identity_table *t;
	struct mg_policy_set *s;
	struct oracle o = {0};
	struct mg_rep_filter *f;
	char path[256];

	put_file(yaml, path, sizeof(path));
	src.path = path;
	f = mg_rep_filter_create(&c, &err);
	if (f == NULL)
		printf("  (create: %s)\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT(mg_rep_filter_active(f));
	*mask = kept(f);
	/* the oracle: the identities some selector selects, as the gateway evaluates them */
	s = mg_policy_set_create();
	t = fx_table();
	CU_ASSERT_FATAL(mg_policy_set_load_path(s, cluster, path, &err) > 0);
	CU_ASSERT_EQUAL(mg_policy_set_selectors(s, t, dlc, oracle_sel, &o), 0);
	if (o.mask != *mask)
		printf("  filter keeps %#x, selectors select %#x\n", *mask, o.mask);
	CU_ASSERT_EQUAL(o.mask, *mask);
	mg_policy_set_free(s);
	mg_identity_table_free(t);
	return f;
}

/* Only the policy's verdict on the fixture: the filter itself is freed. */
static unsigned
policy_mask(const char *cluster, const char *yaml, bool dlc)
{
	unsigned mask;

	mg_rep_filter_free(policy_filter(cluster, yaml, dlc, &mask));
	return mask;
}

#define CNP(ns)                                                                                   \
	"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p, namespace: " ns \
	"}\n"
#define CCNP "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: q}\n"

/* ---- namespaces ---- */

static void
test_namespaces(void)
{
	char *inc[] = {"a", "b"}, *exc[] = {"b"}, *sys[] = {"kube-system"};
	struct mg_rep_filter_config c = {.ns_include = inc, .n_ns_include = 2};
	struct mg_error err = {{0}};
	struct mg_rep_filter_stats st;
	struct mg_rep_filter *f;
	struct mg_labels none = MG_LABELS_INIT;

	f = mg_rep_filter_create(&c, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(kept(f), B(W1A) | B(D1A) | B(W1B) | B(AP1B) | B(AD1B) | B(W2A) | B(D2A) |
	                                 B(AP2B) | B(W3A) | B(X2));
	mg_rep_filter_free(f);
	/* exclude wins over include */
	c.ns_exclude = exc;
	c.n_ns_exclude = 1;
	f = mg_rep_filter_create(&c, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(kept(f), B(W1A) | B(D1A) | B(W2A) | B(D2A) | B(W3A) | B(X2));
	mg_rep_filter_stats(f, &st);
	CU_ASSERT_EQUAL(st.identities_kept, 6);
	CU_ASSERT_EQUAL(st.filtered_by_namespace, 6);
	CU_ASSERT_EQUAL(st.identities_filtered, 6);
	CU_ASSERT_EQUAL(st.filtered_by_policy, 0);
	mg_rep_filter_free(f);
	/* exclude alone */
	c = (struct mg_rep_filter_config){.ns_exclude = sys, .n_ns_exclude = 1};
	f = mg_rep_filter_create(&c, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(kept(f), ALL_FX & ~B(J1K));
	/* reserved identities pass whatever their labels */
	CU_ASSERT(mg_rep_filter_identity(f, MG_ID_HOST, &none));
	mg_rep_filter_free(f);
	/* no config, or an empty one: no filter */
	f = mg_rep_filter_create(NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_FALSE(mg_rep_filter_active(f));
	CU_ASSERT_EQUAL(kept(f), ALL_FX);
	mg_rep_filter_stats(f, &st);
	CU_ASSERT_EQUAL(st.identities_kept + st.identities_filtered, 0);
	mg_rep_filter_free(f);
	c = (struct mg_rep_filter_config){0};
	f = mg_rep_filter_create(&c, &err);
	CU_ASSERT_FALSE(mg_rep_filter_active(f));
	mg_rep_filter_free(f);
	CU_ASSERT(mg_rep_filter_identity(NULL, ID(1, 0), &none));
}

/* ---- the policy part ---- */

static void
test_policy_labels(void)
{
	/* matchLabels; the peer is scoped to the CNP's namespace and cluster */
	CU_ASSERT_EQUAL(
	        policy_mask("c1",
	                    CNP("a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
	                             "  ingress:\n  - fromEndpoints: [{matchLabels: {app: "
	                             "db}}]\n",
	                    true),
	        B(W1A) | B(D1A));
	/* In / NotIn on the subject, Exists on the peer */
	CU_ASSERT_EQUAL(
	        policy_mask("c1",
	                    CNP("b") "spec:\n  endpointSelector:\n    matchExpressions:\n"
	                             "    - {key: app, operator: In, values: [api, web]}\n"
	                             "    - {key: env, operator: NotIn, values: [dev]}\n"
	                             "  egress:\n  - toEndpoints: [{matchExpressions: [{key: "
	                             "debug, operator: Exists}]}]\n",
	                    true),
	        B(W1B) | B(AP1B) | B(AD1B));
	/* DoesNotExist; an entry with ports and no L3 field selects nobody */
	CU_ASSERT_EQUAL(
	        policy_mask("c1",
	                    CNP("b") "spec:\n  endpointSelector:\n"
	                             "    matchLabels: {app: api}\n"
	                             "    matchExpressions: [{key: debug, operator: "
	                             "DoesNotExist}]\n"
	                             "  ingress:\n  - toPorts: [{ports: [{port: \"80\"}]}]\n",
	                    true),
	        B(AP1B));
	/* a selector matching no label of the mesh keeps nothing */
	CU_ASSERT_EQUAL(policy_mask("c1",
	                            CNP("a") "spec:\n  endpointSelector: {matchLabels: {app: "
	                                     "nothing}}\n  ingress: [{}]\n",
	                            true),
	                0);
}

static void
test_policy_namespace_scoping(void)
{
	/* {} in a CNP: the endpoints of its namespace (and cluster) only */
	CU_ASSERT_EQUAL(policy_mask("c1",
	                            CNP("a") "spec:\n  endpointSelector: {}\n"
	                                     "  egress:\n  - toEndpoints: [{}]\n",
	                            true),
	                B(W1A) | B(D1A));
	/* a peer naming a namespace crosses into it */
	CU_ASSERT_EQUAL(policy_mask("c1",
	                            CNP("b") "spec:\n  endpointSelector: {}\n"
	                                     "  egress:\n  - toEndpoints: [{matchLabels: {app: "
	                                     "db, k8s:io.kubernetes.pod.namespace: a}}]\n",
	                            true),
	                B(W1B) | B(AP1B) | B(AD1B) | B(D1A));
	/* a negative namespace match means "any namespace but" */
	CU_ASSERT_EQUAL(policy_mask("c1",
	                            CNP("b") "spec:\n  endpointSelector: {matchLabels: {env: "
	                                     "prod}}\n  ingress:\n  - fromEndpoints:\n"
	                                     "    - matchExpressions: [{key: "
	                                     "io.kubernetes.pod.namespace, operator: NotIn, "
	                                     "values: [b]}]\n",
	                            true),
	                B(AP1B) | B(W1A) | B(D1A) | B(J1K));
}

static void
test_policy_ccnp(void)
{
	/* CCNP: subjects and peers in every namespace of its cluster */
	CU_ASSERT_EQUAL(policy_mask("c1",
	                            CCNP "spec:\n  endpointSelector: {matchLabels: {app: job}}\n"
	                                 "  ingress:\n  - fromEndpoints: [{matchLabels: {app: "
	                                 "web}}]\n",
	                            true),
	                B(J1K) | B(W1A) | B(W1B));
	/* CCNP peer {}: every pod of the cluster (namespace label exists) */
	CU_ASSERT_EQUAL(policy_mask("c2",
	                            CCNP "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
	                                 "  egress:\n  - toEndpoints: [{}]\n",
	                            true),
	                B(W2A) | B(D2A) | B(AP2B) | B(J2C));
}

static void
test_policy_clusters(void)
{
	/* peers in another cluster only when named; subjects only of the policy's cluster */
	CU_ASSERT_EQUAL(
	        policy_mask("c1",
	                    CNP("a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
	                             "  ingress:\n  - fromEndpoints:\n"
	                             "    - matchLabels: {app: web, "
	                             "io.cilium.k8s.policy.cluster: c2}\n"
	                             "    - matchLabels: {app: db}\n"
	                             "      matchExpressions: [{key: "
	                             "k8s:io.cilium.k8s.policy.cluster, operator: In, values: "
	                             "[c2, c3]}]\n",
	                    true),
	        B(W1A) | B(W2A) | B(D2A));
	/* default_local_cluster off: unqualified peers select every cluster */
	CU_ASSERT_EQUAL(policy_mask("c1",
	                            CCNP "spec:\n  endpointSelector: {matchLabels: {app: api}}\n"
	                                 "  egress:\n  - toEndpoints: [{matchLabels: {app: "
	                                 "job}}]\n",
	                            false),
	                B(AP1B) | B(AD1B) | B(J1K) | B(J2C));
	/* ... and on, the same peers only the local cluster's */
	CU_ASSERT_EQUAL(policy_mask("c1",
	                            CCNP "spec:\n  endpointSelector: {matchLabels: {app: api}}\n"
	                                 "  egress:\n  - toEndpoints: [{matchLabels: {app: "
	                                 "job}}]\n",
	                            true),
	                B(AP1B) | B(AD1B) | B(J1K));
	/* a policy of a remote cluster selects that cluster's pods */
	CU_ASSERT_EQUAL(policy_mask("c2",
	                            CNP("a") "spec:\n  endpointSelector: {}\n"
	                                     "  ingress:\n  - fromEntities: [host]\n",
	                            true),
	                B(W2A) | B(D2A));
}

static void
test_policy_deny_peers(void)
{
	static const char *const yaml =
	        CNP("a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
	                 "  ingress:\n  - toPorts: [{ports: [{port: \"80\"}]}]\n"
	                 "  egress:\n  - toPorts: [{ports: [{port: \"80\"}]}]\n"
	                 "  ingressDeny:\n  - fromEndpoints: [{matchLabels: {app: db, "
	                 "io.cilium.k8s.policy.cluster: c2}}]\n"
	                 "  egressDeny:\n  - toEndpoints:\n    - matchLabels: {app: job}\n"
	                 "      matchExpressions:\n"
	                 "      - {key: io.kubernetes.pod.namespace, operator: Exists}\n"
	                 "      - {key: io.cilium.k8s.policy.cluster, operator: Exists}\n";
	struct mg_policy_params pp = {.enforcement = MG_ENFORCE_DEFAULT,
	                              .default_local_cluster = true};
	struct mg_error err = {{0}};
	struct mg_identity_table *t = fx_table();
	struct mg_policy_set *s = mg_policy_set_create();
	struct mg_policy *pol;

	/* D2A and J1K, J2C are selected by deny peers only: they must reach the gateway */
	CU_ASSERT_EQUAL(policy_mask("c1", yaml, true), B(W1A) | B(D2A) | B(J1K) | B(J2C));
	/* which matters: the deny is what stops them; as world they would pass */
	CU_ASSERT_FATAL(mg_policy_set_load_buf(s, "c1", "d.yaml", yaml, strlen(yaml), &err) == 1);
	pol = mg_policy_compile(s, t, &pp, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pol);
	CU_ASSERT_EQUAL(mg_policy_verdict(pol, fx[D2A].id, fx[W1A].id, 6, 80),
	                MG_VERDICT_DENY_INGRESS);
	CU_ASSERT_EQUAL(mg_policy_verdict(pol, MG_ID_WORLD, fx[W1A].id, 6, 80), MG_VERDICT_ALLOW);
	CU_ASSERT_EQUAL(mg_policy_verdict(pol, fx[W1A].id, fx[J2C].id, 6, 80),
	                MG_VERDICT_DENY_EGRESS);
	CU_ASSERT_EQUAL(mg_policy_verdict(pol, fx[W1A].id, MG_ID_WORLD, 6, 80), MG_VERDICT_ALLOW);
	mg_policy_free(pol);
	mg_policy_set_free(s);
	mg_identity_table_free(t);
}

static void
test_policy_entities(void)
{
	struct mg_rep_filter_info info;
	struct mg_rep_filter *f;
	unsigned mask;

	/* all: every identity */
	f = policy_filter("c1",
	                  CNP("a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
	                           "  egress:\n  - toEntities: [all]\n",
	                  true, &mask);
	CU_ASSERT_EQUAL(mask, ALL_FX);
	mg_rep_filter_info(f, &info);
	CU_ASSERT(info.keeps_all);
	CU_ASSERT(info.world_peers);
	CU_ASSERT_EQUAL(info.policies, 1);
	CU_ASSERT_EQUAL(info.rules, 1);
	mg_rep_filter_free(f);
	/* cluster: every pod of the policy's cluster */
	f = policy_filter("c1",
	                  CNP("a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
	                           "  ingressDeny:\n  - fromEntities: [cluster]\n",
	                  true, &mask);
	CU_ASSERT_EQUAL(mask, B(W1A) | B(D1A) | B(W1B) | B(AP1B) | B(AD1B) | B(J1K));
	mg_rep_filter_info(f, &info);
	CU_ASSERT_FALSE(info.keeps_all);
	CU_ASSERT_FALSE(info.world_peers);
	mg_rep_filter_free(f);
	/* world and CIDRs select no pod, but the filter says they are there */
	f = policy_filter("c2",
	                  CNP("a") "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
	                           "  egress:\n  - toEntities: [world]\n"
	                           "  - toCIDR: [10.0.0.0/8]\n"
	                           "  - toCIDRSet: [{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}]\n",
	                  true, &mask);
	CU_ASSERT_EQUAL(mask, B(D2A));
	mg_rep_filter_info(f, &info);
	CU_ASSERT(info.world_peers);
	CU_ASSERT_FALSE(info.named_any_peer);
	mg_rep_filter_free(f);
	f = policy_filter("c2",
	                  CNP("a") "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
	                           "  egress:\n  - toCIDR: [192.168.0.0/16]\n",
	                  true, &mask);
	mg_rep_filter_info(f, &info);
	CU_ASSERT(info.world_peers);
	mg_rep_filter_free(f);
	/* reserved entities and a named port for any peer */
	f = policy_filter("c1",
	                  CNP("a") "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
	                           "  egress:\n  - toEntities: [host, remote-node, "
	                           "kube-apiserver]\n"
	                           "  - toPorts: [{ports: [{port: http}]}]\n",
	                  true, &mask);
	CU_ASSERT_EQUAL(mask, B(D1A));
	mg_rep_filter_info(f, &info);
	CU_ASSERT_FALSE(info.world_peers);
	CU_ASSERT(info.named_any_peer);
	mg_rep_filter_free(f);
}

static void
test_reserved_always(void)
{
	struct mg_rep_filter *f;
	struct mg_labels none = MG_LABELS_INIT, pod = MG_LABELS_INIT;
	unsigned mask;

	f = policy_filter("c1",
	                  CNP("a") "spec:\n  endpointSelector: {matchLabels: {app: nothing}}\n"
	                           "  ingress: [{}]\n",
	                  true, &mask);
	CU_ASSERT_EQUAL(mask, 0);
	for (uint32_t id = 1; id < MG_ID_MIN_CLUSTER_LOCAL; id++)
		CU_ASSERT(mg_rep_filter_identity(f, id, &none));
	CU_ASSERT(mg_rep_filter_identity(f, MG_ID_LOCAL_SCOPE | 5, &none));
	CU_ASSERT_FALSE(mg_rep_filter_identity(f, ID(1, 9), &none));
	parse_labels(fx[W1A].labels, &pod);
	CU_ASSERT(mg_rep_filter_identity(f, MG_ID_REMOTE_NODE, &pod));
	CU_ASSERT_FALSE(mg_rep_filter_identity(f, ID(1, 9), &pod));
	mg_labels_clear(&pod);
	CU_ASSERT(mg_rep_filter_id_exempt(0));
	CU_ASSERT(mg_rep_filter_id_exempt(MG_ID_HOST));
	CU_ASSERT(mg_rep_filter_id_exempt(255));
	CU_ASSERT_FALSE(mg_rep_filter_id_exempt(ID(1, 0)));
	CU_ASSERT(mg_rep_filter_id_exempt(MG_ID_LOCAL_SCOPE | 1));
	mg_rep_filter_free(f);
}

static void
test_policy_and_namespaces(void)
{
	char *exc[] = {"a"};
	struct mg_rep_filter_source src = {.cluster = "c1"};
	struct mg_rep_filter_config c = {.ns_exclude = exc,
	                                 .n_ns_exclude = 1,
	                                 .sources = &src,
	                                 .n_sources = 1,
	                                 .default_local_cluster = true};
	struct mg_error err = {{0}};
	struct mg_rep_filter_stats st;
	struct mg_rep_filter *f;
	char path[256];

	/* both parts must pass: an excluded namespace goes even when selected */
	put_file(CCNP "spec:\n  endpointSelector: {matchLabels: {app: web}}\n  egress: [{}]\n",
	         path, sizeof(path));
	src.path = path;
	f = mg_rep_filter_create(&c, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(kept(f), B(W1B));
	mg_rep_filter_stats(f, &st);
	CU_ASSERT_EQUAL(st.identities_kept, 1);
	CU_ASSERT_EQUAL(st.filtered_by_namespace, 5);
	CU_ASSERT_EQUAL(st.filtered_by_policy, 6);
	mg_rep_filter_free(f);
}

/* ---- config ---- */

static int
parse_cfg(const char *yaml, struct mg_rep_filter_config *c, struct mg_error *err)
{
	struct mg_yaml_file *y = mg_yaml_load_buf("r.yaml", yaml, strlen(yaml), err);
	int rc;

	if (y == NULL)
		return -EINVAL;
	rc = mg_rep_filter_config_parse(y->ndocs ? mg_yaml_get(y->docs[0], "filter") : NULL,
	                                "/etc/mg", c, err);
	mg_yaml_free(y);
	return rc;
}

static void
test_config_parse(void)
{
	struct mg_rep_filter_config c;
	struct mg_error err = {{0}};

	CU_ASSERT_EQUAL_FATAL(
	        parse_cfg("filter:\n  namespaces: {include: [prod, shop-2], exclude: [dev]}\n"
	                  "  policy:\n    default_local_cluster: false\n"
	                  "    sources:\n    - {cluster: site, path: ./policies/}\n"
	                  "    - {cluster: c-2, path: /abs/x.yaml}\n",
	                  &c, &err),
	        0);
	CU_ASSERT_EQUAL(c.n_ns_include, 2);
	CU_ASSERT_STRING_EQUAL(c.ns_include[1], "shop-2");
	CU_ASSERT_EQUAL(c.n_ns_exclude, 1);
	CU_ASSERT_STRING_EQUAL(c.ns_exclude[0], "dev");
	CU_ASSERT_FALSE(c.default_local_cluster);
	CU_ASSERT_EQUAL_FATAL(c.n_sources, 2);
	CU_ASSERT_STRING_EQUAL(c.sources[0].cluster, "site");
	CU_ASSERT_STRING_EQUAL(c.sources[0].path, "/etc/mg/policies/");
	CU_ASSERT_STRING_EQUAL(c.sources[1].path, "/abs/x.yaml");
	mg_rep_filter_config_clear(&c);
	CU_ASSERT_EQUAL(c.n_sources, 0);
	/* absent or null: no filter */
	CU_ASSERT_EQUAL(parse_cfg("other: 1\n", &c, &err), 0);
	CU_ASSERT_EQUAL(c.n_ns_include + c.n_ns_exclude + c.n_sources, 0);
	CU_ASSERT(c.default_local_cluster);
	CU_ASSERT_EQUAL(parse_cfg("filter:\n", &c, &err), 0);
	CU_ASSERT_EQUAL(parse_cfg("filter: {namespaces: {exclude: []}, policy: null}\n", &c, &err),
	                0);
	CU_ASSERT_EQUAL(c.n_ns_exclude + c.n_sources, 0);
	mg_rep_filter_config_clear(&c);
}

static void
test_config_errors(void)
{
	static const struct {
		const char *yaml, *msg;
	} cases[] = {
	        {"filter: {namespace: {include: [a]}}\n",
	         "r.yaml:1:10: filter: unknown key 'namespace'"},
	        {"filter: [a]\n", "r.yaml:1:9: filter: expected a mapping"},
	        {"filter:\n  namespaces: {include: [a], exclude: [b], other: [c]}\n",
	         "r.yaml:2:44: filter.namespaces: unknown key 'other'"},
	        {"filter:\n  namespaces: {include: [a, Bad_Name]}\n",
	         "r.yaml:2:29: filter.namespaces.include[1]: 'Bad_Name' is not a namespace name"},
	        {"filter:\n  namespaces: {exclude: [\"\"]}\n",
	         "r.yaml:2:26: filter.namespaces.exclude[0]: '' is not a namespace name"},
	        {"filter:\n  namespaces: {include: [a, b, a]}\n",
	         "r.yaml:2:32: filter.namespaces.include[2]: namespace 'a' listed twice"},
	        {"filter:\n  namespaces: {include: [a, b], exclude: [b]}\n",
	         "r.yaml:2:43: filter.namespaces.exclude[0]: namespace 'b' is also included"},
	        {"filter:\n  namespaces: {include: []}\n",
	         "r.yaml:2:25: filter.namespaces.include: empty list"},
	        {"filter:\n  namespaces: {include: a}\n",
	         "r.yaml:2:25: filter.namespaces.include: expected a list"},
	        {"filter:\n  namespaces: {include: [[a]]}\n",
	         "r.yaml:2:26: filter.namespaces.include[0]: expected a string"},
	        {"filter:\n  namespaces: {include: [a]}\n  namespaces: {include: [b]}\n",
	         "r.yaml:3:3: duplicate key 'namespaces'"},
	        {"filter:\n  policy: {default_local_cluster: true}\n",
	         "r.yaml:2:11: filter.policy: missing required key 'sources'"},
	        {"filter:\n  policy: {sources: []}\n",
	         "r.yaml:2:21: filter.policy.sources: empty list"},
	        {"filter:\n  policy: {sources: [{cluster: site}]}\n",
	         "r.yaml:2:22: filter.policy.sources[0]: missing required key 'path'"},
	        {"filter:\n  policy: {sources: [{path: p/}]}\n",
	         "r.yaml:2:22: filter.policy.sources[0]: missing required key 'cluster'"},
	        {"filter:\n  policy: {sources: [{cluster: Site, path: p/}]}\n",
	         "r.yaml:2:32: filter.policy.sources[0].cluster: 'Site' is not a valid cluster "
	         "name"},
	        {"filter:\n  policy: {sources: [{cluster: s, path: \"\"}]}\n",
	         "r.yaml:2:41: filter.policy.sources[0].path: empty path"},
	        {"filter:\n  policy: {sources: [{cluster: s, path: p, extra: 1}]}\n",
	         "r.yaml:2:44: filter.policy.sources[0]: unknown key 'extra'"},
	        {"filter:\n  policy: {default_local_cluster: yes, sources: [{cluster: s, path: "
	         "p}]}\n",
	         "r.yaml:2:35: filter.policy.default_local_cluster"},
	};
	struct mg_rep_filter_config c;

	for (size_t i = 0; i < MG_ARRAY_SIZE(cases); i++) {
		struct mg_error err = {{0}};
		int rc = parse_cfg(cases[i].yaml, &c, &err);

		if (rc == 0 || strstr(err.msg, cases[i].msg) == NULL)
			printf("  case %zu: rc %d, got \"%s\", want \"%s\"\n", i, rc, err.msg,
			       cases[i].msg);
		CU_ASSERT_EQUAL(rc, -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, cases[i].msg));
		/* nothing held after an error */
		CU_ASSERT_EQUAL(c.n_ns_include + c.n_ns_exclude + c.n_sources, 0);
		CU_ASSERT_PTR_NULL(c.sources);
	}
}

static void
test_create_errors(void)
{
	struct mg_rep_filter_source src = {.cluster = "c1"};
	struct mg_rep_filter_config c = {
	        .sources = &src, .n_sources = 1, .default_local_cluster = true};
	struct mg_error err = {{0}};
	char path[256], dir[300];

	/* a missing source */
	src.path = "/nonexistent/policies.yaml";
	CU_ASSERT_PTR_NULL(mg_rep_filter_create(&c, &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/policies.yaml"));
	/* a policy error, positioned */
	put_file(CNP("a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
	                  "  ingress:\n  - fromEndpoints: [{matchLabels: {app: db}, bogus: 1}]\n",
	         path, sizeof(path));
	src.path = path;
	CU_ASSERT_PTR_NULL(mg_rep_filter_create(&c, &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, ".yaml:7:46: spec.ingress[0].fromEndpoints[0]"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "bogus"));
	/* sources with no policy at all: refused rather than dropping everything */
	snprintf(dir, sizeof(dir), "%s/empty", tmpdir);
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	src.path = dir;
	CU_ASSERT_PTR_NULL(mg_rep_filter_create(&c, &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no policy"));
	rmdir(dir);
}

/* ---- the differential check on random meshes ---- */

#define MESH_CLUSTERS 3
#define MESH_PODS 300
#define MESH_N (MESH_CLUSTERS * MESH_PODS)
#define MESH_APPS 20
#define MESH_NS 6
#define MESH_POLICIES 10 /* per source cluster (c1 and c2) */

static uint64_t rng_state;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static unsigned
rnd(unsigned n)
{
	return (unsigned)(rng() % n);
}

struct out {
	char *p;
	size_t n, cap;
};

static void MG_PRINTF(2, 3) outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int k;

	for (;;) {
		va_start(ap, fmt);
		k = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
		va_end(ap);
		CU_ASSERT_FATAL(k >= 0);
		if ((size_t)k < o->cap - o->n)
			break;
		o->cap *= 2;
		o->p = realloc(o->p, o->cap);
		CU_ASSERT_PTR_NOT_NULL_FATAL(o->p);
	}
	o->n += (size_t)k;
}

static const char *const tiers[] = {"fe", "be", "db"};

/* Labels of a random pod of cluster c<c>. */
static void
mesh_labels(unsigned c, struct mg_labels *ls)
{
	char v[32];

	snprintf(v, sizeof(v), "app%u", rnd(MESH_APPS));
	mg_labels_add(ls, "k8s", "app", v);
	snprintf(v, sizeof(v), "ns%u", rnd(MESH_NS));
	mg_labels_add(ls, "k8s", "io.kubernetes.pod.namespace", v);
	snprintf(v, sizeof(v), "c%u", c);
	mg_labels_add(ls, "k8s", "io.cilium.k8s.policy.cluster", v);
	mg_labels_add(ls, "k8s", "tier", tiers[rnd(3)]);
	if (rnd(3) != 0)
		mg_labels_add(ls, "k8s", "env", rnd(2) ? "prod" : "dev");
	if (rnd(8) == 0)
		mg_labels_add(ls, "k8s", "debug", "1");
}

/* A random LabelSelector, flow style; peers may also name a namespace or a cluster. */
static void
rand_sel(struct out *o, bool peer)
{
	unsigned a = rnd(MESH_APPS), b = rnd(MESH_APPS);

	switch (rnd(peer ? 8 : 5)) {
	case 0:
		outf(o, "{matchLabels: {app: app%u}}", a);
		break;
	case 1:
		outf(o, "{matchExpressions: [{key: app, operator: In, values: [app%u, app%u]}]}", a,
		     b);
		break;
	case 2:
		outf(o,
		     "{matchLabels: {app: app%u}, matchExpressions: [{key: env, operator: NotIn, "
		     "values: [dev]}]}",
		     a);
		break;
	case 3:
		outf(o,
		     "{matchLabels: {tier: %s, app: app%u}, matchExpressions: [{key: env, "
		     "operator: "
		     "Exists}]}",
		     tiers[rnd(3)], a);
		break;
	case 4:
		outf(o,
		     "{matchLabels: {app: app%u}, matchExpressions: [{key: debug, operator: "
		     "DoesNotExist}]}",
		     a);
		break;
	case 5:
		outf(o, "{matchLabels: {app: app%u, io.kubernetes.pod.namespace: ns%u}}", a,
		     rnd(MESH_NS));
		break;
	case 6:
		outf(o, "{matchLabels: {app: app%u, io.cilium.k8s.policy.cluster: c%u}}", a,
		     1 + rnd(MESH_CLUSTERS));
		break;
	default:
		outf(o,
		     "{matchLabels: {tier: %s, app: app%u}, matchExpressions: [{key: "
		     "io.cilium.k8s.policy.cluster, operator: In, values: [c2, c3]}]}",
		     tiers[rnd(3)], a);
	}
}

/* One entry of section @p sec; @p world lets it name world and CIDRs. */
static void
rand_entry(struct out *o, unsigned sec, bool world)
{
	const char *dir = sec % 2 == 0 ? "from" : "to";
	unsigned r = rnd(20), n;
	bool ports = rnd(2) == 0;

	if ((!world && (r == 16 || r == 17)) || (r == 14 && rnd(4) != 0))
		r = 0; /* `cluster` keeps a whole cluster: rarely */
	if (r < 14) {
		outf(o, "  - %sEndpoints:\n", dir);
		for (n = 1 + rnd(2); n > 0; n--) {
			outf(o, "    - ");
			rand_sel(o, true);
			outf(o, "\n");
		}
	} else if (r == 14) {
		outf(o, "  - %sEntities: [cluster]\n", dir);
	} else if (r == 15) {
		outf(o, "  - %sEntities: [host, remote-node]\n", dir);
	} else if (r == 16) {
		outf(o, "  - %sEntities: [world]\n", dir);
	} else if (r == 17) {
		outf(o, "  - %sCIDR: [10.0.0.0/8]\n", dir);
	} else if (r == 18) {
		outf(o, "  - toPorts: [{ports: [{port: \"443\", protocol: TCP}]}]\n");
		ports = false;
	} else {
		outf(o, "  - {}\n");
		ports = false;
	}
	if (ports)
		outf(o, "    toPorts: [{ports: [{port: \"%u\", protocol: TCP}]}]\n",
		     rnd(2) ? 80 : 8080);
}

static void
rand_policy(struct out *o, unsigned i, bool world)
{
	static const char *const secs[] = {"ingress", "egress", "ingressDeny", "egressDeny"};
	bool ccnp = rnd(4) == 0;
	unsigned first = rnd(4), nsec = 1 + rnd(2);

	if (ccnp)
		outf(o,
		     "---\napiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n"
		     "metadata: {name: r%u}\n",
		     i);
	else
		outf(o,
		     "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
		     "metadata: {name: r%u, namespace: ns%u}\n",
		     i, rnd(MESH_NS));
	outf(o, "spec:\n  endpointSelector: ");
	rand_sel(o, false);
	outf(o, "\n");
	for (unsigned k = 0; k < nsec; k++) {
		unsigned sec = (first + k) % 4;

		outf(o, "  %s:\n", secs[sec]);
		for (unsigned n = 1 + rnd(2); n > 0; n--)
			rand_entry(o, sec, world);
	}
}

struct mesh {
	struct mg_identity_table *all, *kept;
	uint32_t id[MESH_N];
	bool keep[MESH_N], selected[MESH_N];
	uint32_t *K, *D; /* kept (reserved identities first) and dropped identities */
	size_t nk, nd;
	struct mg_policy_set *set;
	struct mg_rep_filter *f;
	struct mg_rep_filter_info info;
	bool dlc;
	size_t oracle_diff; /* identities the filter and the selectors disagree on */
};

static int
mesh_oracle(const struct mg_policy_selector_info *si, void *arg)
{
	struct mesh *m = arg;

	for (size_t k = 0; k < si->n_ids; k++)
		for (unsigned i = 0; i < MESH_N; i++)
			if (m->id[i] == si->ids[k])
				m->selected[i] = true;
	return 0;
}

/* Random policies of c1 and c2 in two files, loaded by the filter and into m->set. */
static void
mesh_policies(struct mesh *m, bool world)
{
	struct mg_rep_filter_source src[2] = {{.cluster = "c1"}, {.cluster = "c2"}};
	struct mg_rep_filter_config c = {
	        .sources = src, .n_sources = 2, .default_local_cluster = m->dlc};
	struct mg_error err = {{0}};
	char path[2][256];

	m->set = mg_policy_set_create();
	CU_ASSERT_PTR_NOT_NULL_FATAL(m->set);
	for (unsigned s = 0; s < 2; s++) {
		struct out o = {.p = malloc(4096), .cap = 4096};

		CU_ASSERT_PTR_NOT_NULL_FATAL(o.p);
		for (unsigned i = 0; i < MESH_POLICIES; i++)
			rand_policy(&o, i, world);
		put_file(o.p, path[s], sizeof(path[s]));
		src[s].path = path[s];
		if (mg_policy_set_load_path(m->set, src[s].cluster, path[s], &err) != MESH_POLICIES)
			printf("  (%s: %s)\n%s\n", path[s], err.msg, o.p);
		free(o.p);
	}
	CU_ASSERT_EQUAL_FATAL(mg_policy_set_count(m->set), 2 * MESH_POLICIES);
	m->f = mg_rep_filter_create(&c, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m->f);
	mg_rep_filter_info(m->f, &m->info);
}

/* The mesh's identities, what the filter keeps of them, and the two tables. */
static void
mesh_build(struct mesh *m)
{
	m->all = mg_identity_table_create(MG_CLUSTER_MODE_255);
	m->kept = mg_identity_table_create(MG_CLUSTER_MODE_255);
	m->K = calloc(MESH_N + MG_ID_RESERVED_MAX, sizeof(*m->K));
	m->D = calloc(MESH_N, sizeof(*m->D));
	CU_ASSERT_FATAL(m->all && m->kept && m->K && m->D);
	for (uint32_t r = 1; r <= MG_ID_RESERVED_MAX; r++)
		m->K[m->nk++] = r;
	for (unsigned i = 0; i < MESH_N; i++) {
		struct mg_labels ls = MG_LABELS_INIT;
		unsigned c = 1 + i / MESH_PODS;

		m->id[i] = ID(c, i % MESH_PODS);
		mesh_labels(c, &ls);
		CU_ASSERT_EQUAL_FATAL(mg_identity_table_put(m->all, m->id[i], &ls, c), 0);
		m->keep[i] = mg_rep_filter_identity(m->f, m->id[i], &ls);
		if (m->keep[i]) {
			CU_ASSERT_EQUAL_FATAL(mg_identity_table_put(m->kept, m->id[i], &ls, c), 0);
			m->K[m->nk++] = m->id[i];
		} else {
			m->D[m->nd++] = m->id[i];
		}
		mg_labels_clear(&ls);
	}
	/* the filter keeps exactly what some selector of the gateway selects */
	CU_ASSERT_EQUAL(mg_policy_set_selectors(m->set, m->all, m->dlc, mesh_oracle, m), 0);
	for (unsigned i = 0; i < MESH_N; i++)
		m->oracle_diff += m->keep[i] != m->selected[i];
	CU_ASSERT_EQUAL(m->oracle_diff, 0);
}

static void
mesh_free(struct mesh *m)
{
	mg_rep_filter_free(m->f);
	mg_policy_set_free(m->set);
	mg_identity_table_free(m->all);
	mg_identity_table_free(m->kept);
	free(m->K);
	free(m->D);
}

static const struct {
	uint8_t proto;
	uint16_t port;
} mesh_flows[] = {{6, 80}, {6, 443}, {6, 8080}, {17, 53}, {1, 8}};

struct mesh_count {
	size_t flows, diff_kept, diff_dropped, diff_world, allowed;
	size_t world_caveat; /* as diff_world, where the policies select world */
};

/* Flows between kept identities: the same verdict from both compiles. */
static void
mesh_check_kept(const struct mesh *m, const struct mg_policy *full, const struct mg_policy *part,
                struct mesh_count *n)
{
	for (size_t a = 0; a < m->nk; a++)
		for (size_t b = 0; b < m->nk; b++)
			for (size_t p = 0; p < MG_ARRAY_SIZE(mesh_flows); p++) {
				uint8_t pr = mesh_flows[p].proto;
				uint16_t po = mesh_flows[p].port;
				enum mg_verdict v =
				        mg_policy_verdict(full, m->K[a], m->K[b], pr, po);

				n->flows++;
				n->allowed += v == MG_VERDICT_ALLOW;
				n->diff_kept +=
				        v != mg_policy_verdict(part, m->K[a], m->K[b], pr, po);
			}
}

/*
 * Flows with a dropped identity: in the full compile every dropped
 * identity behaves as the first one (the policy cannot tell them apart),
 * and when no selector selects world, as world does in the kept compile
 * (where the gateway sees a dropped identity's address as world).
 */
static void
mesh_check_dropped(const struct mesh *m, const struct mg_policy *full, const struct mg_policy *part,
                   struct mesh_count *n)
{
	bool world_same = !m->info.world_peers && !m->info.named_any_peer;
	uint32_t x0 = m->D[0];

	for (size_t k = 0; k < m->nk; k++)
		for (size_t p = 0; p < MG_ARRAY_SIZE(mesh_flows); p++) {
			uint8_t pr = mesh_flows[p].proto;
			uint16_t po = mesh_flows[p].port;
			enum mg_verdict out0 = mg_policy_verdict(full, x0, m->K[k], pr, po);
			enum mg_verdict in0 = mg_policy_verdict(full, m->K[k], x0, pr, po);

			for (size_t x = 1; x < m->nd; x++) {
				n->diff_dropped +=
				        out0 != mg_policy_verdict(full, m->D[x], m->K[k], pr, po);
				n->diff_dropped +=
				        in0 != mg_policy_verdict(full, m->K[k], m->D[x], pr, po);
			}
			/* the documented exception: policies naming world peers */
			size_t *d = world_same ? &n->diff_world : &n->world_caveat;

			for (uint32_t w = MG_ID_WORLD; w <= MG_ID_WORLD_IPV4; w += 7) {
				*d += out0 != mg_policy_verdict(part, w, m->K[k], pr, po);
				*d += in0 != mg_policy_verdict(part, m->K[k], w, pr, po);
			}
		}
}

static void
test_mesh_differential(void)
{
	static const enum mg_enforcement modes[] = {MG_ENFORCE_DEFAULT, MG_ENFORCE_ALWAYS};
	struct mesh_count n = {0};
	size_t kept = 0, dropped = 0, world_rounds = 0;

	rng_state = 0x2545f4914f6cdd1dull;
	for (unsigned round = 0; round < 6; round++) {
		struct mesh m = {.dlc = round != 4};

		mesh_policies(&m, round % 2 == 1);
		mesh_build(&m);
		kept += m.nk - MG_ID_RESERVED_MAX;
		dropped += m.nd;
		world_rounds += m.info.world_peers;
		for (size_t e = 0; e < MG_ARRAY_SIZE(modes) && m.nd > 0; e++) {
			struct mg_policy_params pp = {.enforcement = modes[e],
			                              .default_local_cluster = m.dlc};
			struct mg_error err = {{0}};
			struct mg_policy *full = mg_policy_compile(m.set, m.all, &pp, &err);
			struct mg_policy *part = mg_policy_compile(m.set, m.kept, &pp, &err);

			CU_ASSERT_FATAL(full != NULL && part != NULL);
			mesh_check_kept(&m, full, part, &n);
			mesh_check_dropped(&m, full, part, &n);
			mg_policy_free(full);
			mg_policy_free(part);
		}
		mesh_free(&m);
	}
	printf("  mesh: %zu identities kept, %zu dropped; %zu flows between kept ones (%zu "
	       "allowed), %zu differ; dropped ones told apart %zu times, from world %zu times "
	       "(%zu where policies select world)\n",
	       kept, dropped, n.flows, n.allowed, n.diff_kept, n.diff_dropped, n.diff_world,
	       n.world_caveat);
	CU_ASSERT(kept > 0 && dropped > 0);
	CU_ASSERT(n.allowed > 0 && n.allowed < n.flows);
	CU_ASSERT(world_rounds > 0 && world_rounds < 6);
	CU_ASSERT_EQUAL(n.diff_kept, 0);
	CU_ASSERT_EQUAL(n.diff_dropped, 0);
	CU_ASSERT_EQUAL(n.diff_world, 0);
}

static CU_TestInfo tests[] = {
        {"namespaces", test_namespaces},
        {"policy_labels", test_policy_labels},
        {"policy_namespace_scoping", test_policy_namespace_scoping},
        {"policy_ccnp", test_policy_ccnp},
        {"policy_clusters", test_policy_clusters},
        {"policy_deny_peers", test_policy_deny_peers},
        {"policy_entities", test_policy_entities},
        {"reserved_always", test_reserved_always},
        {"policy_and_namespaces", test_policy_and_namespaces},
        {"config_parse", test_config_parse},
        {"config_errors", test_config_errors},
        {"create_errors", test_create_errors},
        {"mesh_differential", test_mesh_differential},
        CU_TEST_INFO_NULL,
};

int
main(void)
{
	CU_SuiteInfo suites[] = {{"replicator_filter", suite_init, suite_fini, NULL, NULL, tests},
	                         CU_SUITE_INFO_NULL};

	return mg_test_run(suites);
}
