/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/policy: loading (and its positioned errors), selector
 * semantics and scoping, default deny, deny precedence, ports, enforcement
 * modes, and a cross-check of the compiled verdict tables against the
 * rule-by-rule trace over grids of flows (hand-written and random policy
 * sets). Every verdict a test asks for goes through verdict(), which also
 * asserts that the compiled tables and the trace agree.
 */
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_policy.h"
#include "mg_test.h"

#define TCP 6
#define UDP 17
#define SCTP 132
#define ICMP 1
#define GRE 47

#define ALLOW MG_VERDICT_ALLOW
#define DENY_E MG_VERDICT_DENY_EGRESS
#define DENY_I MG_VERDICT_DENY_INGRESS

/* Identities of the fixture: cluster c1 (id 1) and c2 (id 2), namespaces a, b, c. */
#define C1(n) ((1u << 16) + 256 + (n))
#define C2(n) ((2u << 16) + 256 + (n))
#define A_WEB C1(0)
#define A_DB C1(1)
#define A_API C1(2)
#define B_WEB C1(3)
#define B_DB C1(4)
#define B_OPS C1(5)
#define C_WEB C1(6)
#define C_PROD C1(7)
#define C_DEV C1(8)
#define A_PLAIN C1(9)
#define X_A_WEB C2(0)
#define X_A_DB C2(1)
#define X_B_WEB C2(2)
#define X_B_DB C2(3)
#define X_C_PROD C2(4)
#define X_C_JOB C2(5)
#define NOCLUSTER 300u
#define UNKNOWN_ID 999999u

static const struct {
	uint32_t id;
	unsigned cluster;
	const char *labels;
} fixture_ids[] = {
        {A_WEB, 1,
         "k8s:app=web;k8s:io.kubernetes.pod.namespace=a;k8s:io.cilium.k8s.policy.cluster=c1"},
        {A_DB, 1,
         "k8s:app=db;k8s:io.kubernetes.pod.namespace=a;k8s:io.cilium.k8s.policy.cluster=c1"},
        {A_API, 1,
         "k8s:app=api;k8s:io.kubernetes.pod.namespace=a;k8s:io.cilium.k8s.policy.cluster=c1"},
        {B_WEB, 1,
         "k8s:app=web;k8s:io.kubernetes.pod.namespace=b;k8s:io.cilium.k8s.policy.cluster=c1"},
        {B_DB, 1,
         "k8s:app=db;k8s:io.kubernetes.pod.namespace=b;k8s:io.cilium.k8s.policy.cluster=c1"},
        {B_OPS, 1,
         "k8s:role=ops;k8s:io.kubernetes.pod.namespace=b;k8s:io.cilium.k8s.policy.cluster=c1"},
        {C_WEB, 1,
         "k8s:app=web;k8s:io.kubernetes.pod.namespace=c;k8s:io.cilium.k8s.policy.cluster=c1"},
        {C_PROD, 1,
         "k8s:app=api;k8s:env=prod;k8s:io.kubernetes.pod.namespace=c;k8s:io.cilium.k8s.policy."
         "cluster=c1"},
        {C_DEV, 1,
         "k8s:app=api;k8s:env=dev;k8s:io.kubernetes.pod.namespace=c;k8s:io.cilium.k8s.policy."
         "cluster=c1"},
        {A_PLAIN, 1, "k8s:io.kubernetes.pod.namespace=a;k8s:io.cilium.k8s.policy.cluster=c1"},
        {X_A_WEB, 2,
         "k8s:app=web;k8s:io.kubernetes.pod.namespace=a;k8s:io.cilium.k8s.policy.cluster=c2"},
        {X_A_DB, 2,
         "k8s:app=db;k8s:io.kubernetes.pod.namespace=a;k8s:io.cilium.k8s.policy.cluster=c2"},
        {X_B_WEB, 2,
         "k8s:app=web;k8s:io.kubernetes.pod.namespace=b;k8s:io.cilium.k8s.policy.cluster=c2"},
        {X_B_DB, 2,
         "k8s:app=db;k8s:io.kubernetes.pod.namespace=b;k8s:io.cilium.k8s.policy.cluster=c2"},
        {X_C_PROD, 2,
         "k8s:app=api;k8s:env=prod;k8s:io.kubernetes.pod.namespace=c;k8s:io.cilium.k8s.policy."
         "cluster=c2"},
        {X_C_JOB, 2,
         "k8s:app=job;k8s:io.kubernetes.pod.namespace=c;k8s:io.cilium.k8s.policy.cluster=c2"},
        {NOCLUSTER, 0, "k8s:app=web;k8s:io.kubernetes.pod.namespace=a"},
};

struct fx {
	struct mg_policy_set *set;
	struct mg_identity_table *ids;
	struct mg_policy_params params;
	struct mg_policy *pol;
	struct mg_error err;
};

static struct mg_identity_table *
make_ids(void)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (i = 0; i < MG_ARRAY_SIZE(fixture_ids); i++) {
		struct mg_labels ls = MG_LABELS_INIT;
		struct mg_error err = {{0}};

		CU_ASSERT_EQUAL_FATAL(mg_labels_parse(&ls, fixture_ids[i].labels, &err), 0);
		CU_ASSERT_EQUAL_FATAL(
		        mg_identity_table_put(t, fixture_ids[i].id, &ls, fixture_ids[i].cluster),
		        0);
		mg_labels_clear(&ls);
	}
	return t;
}

static void
fx_init(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	f->set = mg_policy_set_create();
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->set);
	f->ids = make_ids();
	f->params.enforcement = MG_ENFORCE_DEFAULT;
	f->params.default_local_cluster = true;
}

static void
fx_fini(struct fx *f)
{
	mg_policy_free(f->pol);
	mg_policy_set_free(f->set);
	mg_identity_table_free(f->ids);
}

static int
load_as(struct fx *f, const char *cluster, const char *yaml)
{
	int rc = mg_policy_set_load_buf(f->set, cluster, "t.yaml", yaml, strlen(yaml), &f->err);

	if (rc < 0)
		printf("  (load: %s)\n", f->err.msg);
	return rc;
}

static int
load(struct fx *f, const char *yaml)
{
	return load_as(f, "c1", yaml);
}

static void
compile(struct fx *f)
{
	mg_policy_free(f->pol);
	f->pol = mg_policy_compile(f->set, f->ids, &f->params, &f->err);
	if (f->pol == NULL)
		printf("  (compile: %s)\n", f->err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f->pol);
}

static unsigned mismatches;

/* The compiled verdict, asserted equal to the trace's. */
static enum mg_verdict
verdict(struct fx *f, uint32_t src, uint32_t dst, uint8_t proto, uint16_t port)
{
	struct mg_policy_trace t;
	enum mg_verdict v;

	if (f->pol == NULL)
		compile(f);
	v = mg_policy_verdict(f->pol, src, dst, proto, port);
	mg_policy_trace(f->set, f->ids, &f->params, src, dst, proto, port, &t);
	if (t.verdict != v) {
		if (mismatches++ < 10)
			printf("  mismatch %u -> %u proto %u port %u: compiled %d trace %d\n", src,
			       dst, proto, port, v, t.verdict);
	}
	CU_ASSERT_EQUAL(t.verdict, v);
	return v;
}

#define HDR_CNP(name, ns)                                                             \
	"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: " name \
	", namespace: " ns "}\n"
#define HDR_CCNP(name)                                                                           \
	"apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: " name \
	"}\n"

/* ---- loading ---- */

static void
test_load_single(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n"), 1);
	CU_ASSERT_EQUAL(mg_policy_set_count(f.set), 1);
	CU_ASSERT_EQUAL(mg_policy_set_rules(f.set), 1);
	fx_fini(&f);
}

static void
test_load_multi_doc(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(
	        load(&f, "---\n" HDR_CNP(
	                         "p1",
	                         "a") "spec: {endpointSelector: {}}\n"
	                              "---\n---\n" HDR_CCNP(
	                                      "p2") "spec: {endpointSelector: {}}\n"
	                                            "---\n" HDR_CNP(
	                                                    "p3",
	                                                    "b") "spec: {endpointSelector: {}}\n"),
	        3);
	CU_ASSERT_EQUAL(mg_policy_set_count(f.set), 3);
	CU_ASSERT_EQUAL(mg_policy_set_rules(f.set), 3);
	fx_fini(&f);
}

static void
test_load_list(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, "apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\n"
	                         "items:\n"
	                         "- apiVersion: cilium.io/v2\n  kind: CiliumNetworkPolicy\n"
	                         "  metadata: {name: x, namespace: a, uid: u, generation: 2}\n"
	                         "  spec: {endpointSelector: {}}\n  status: {}\n"
	                         "- apiVersion: cilium.io/v2\n"
	                         "  kind: CiliumClusterwideNetworkPolicy\n"
	                         "  metadata: {name: y}\n"
	                         "  specs: [{endpointSelector: {}}, {endpointSelector: {}}]\n"),
	                2);
	CU_ASSERT_EQUAL(mg_policy_set_rules(f.set), 3);
	fx_fini(&f);
}

static void
test_load_specs(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec: {endpointSelector: {}}\n"
	                                           "specs:\n- endpointSelector: {}\n"
	                                           "  description: second\n"
	                                           "  labels: [{key: k, value: v}]\n"
	                                           "- endpointSelector: {}\n"),
	                1);
	CU_ASSERT_EQUAL(mg_policy_set_rules(f.set), 3);
	fx_fini(&f);
}

static void
test_load_no_spec_is_error(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT(load(&f, HDR_CNP("p", "a")) < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(f.err.msg, "t.yaml:1:1: "));
	CU_ASSERT_PTR_NOT_NULL(strstr(f.err.msg, "neither spec nor specs"));
	fx_fini(&f);
}

/* A CNP without a namespace lives in "default". */
static void
test_cnp_default_namespace(void)
{
	struct fx f;
	struct mg_labels ls = MG_LABELS_INIT;
	struct mg_error err;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(mg_labels_parse(&ls,
	                                      "k8s:app=web;k8s:io.kubernetes.pod.namespace=default;"
	                                      "k8s:io.cilium.k8s.policy.cluster=c1",
	                                      &err),
	                      0);
	CU_ASSERT_EQUAL_FATAL(mg_identity_table_put(f.ids, C1(100), &ls, 1), 0);
	mg_labels_clear(&ls);
	CU_ASSERT_EQUAL(load(&f, "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
	                         "metadata: {name: p}\nspec:\n  endpointSelector: {}\n"
	                         "  ingress: [{}]\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, C1(100), TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 80), ALLOW);
	fx_fini(&f);
}

static void
test_load_error_leaves_set_unchanged(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("ok", "a") "spec: {endpointSelector: {}}\n"), 1);
	/* first document fine, second broken: nothing of this load stays */
	CU_ASSERT(load(&f,
	               HDR_CNP("p1", "a") "spec:\n  endpointSelector: {}\n  ingress: [{}]\n"
	                                  "---\n" HDR_CNP(
	                                          "p2",
	                                          "a") "spec:\n  endpointSelector: {}\n"
	                                               "  ingress: [{fromCIDR: [10.0.0.0/8]}]\n") <
	          0);
	CU_ASSERT_EQUAL(mg_policy_set_count(f.set), 1);
	CU_ASSERT_EQUAL(mg_policy_set_rules(f.set), 1);
	/* and the first document's default deny is not in force */
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 80), ALLOW);
	fx_fini(&f);
}

static char *
fixture_dir(void)
{
	static char buf[PATH_MAX];
	char exe[PATH_MAX], src[PATH_MAX];
	ssize_t n;
	struct stat st;

	snprintf(src, sizeof(src), "%s", __FILE__);
	snprintf(buf, sizeof(buf), "%s/policy", dirname(src));
	if (buf[0] == '/' || stat(buf, &st) == 0)
		return buf;
	/* relative to the build directory, which is the executable's parent */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return buf;
	exe[n] = '\0';
	snprintf(src, sizeof(src), "%s", __FILE__);
	snprintf(buf, sizeof(buf), "%s/%s/policy", dirname(dirname(exe)), dirname(src));
	return buf;
}

static void
test_load_dir_fixtures(void)
{
	struct fx f;
	struct mg_labels ls = MG_LABELS_INIT;
	static const struct {
		uint32_t id;
		const char *labels;
	} extra[] = {
	        {C1(200), "k8s:app=backend;k8s:io.kubernetes.pod.namespace=backends;"
	                  "k8s:io.cilium.k8s.policy.cluster=c1"},
	        {C1(201), "k8s:app=frontend;k8s:io.kubernetes.pod.namespace=frontends;"
	                  "k8s:io.cilium.k8s.policy.cluster=c1"},
	        {C1(202), "k8s:app=db;k8s:io.kubernetes.pod.namespace=backends;"
	                  "k8s:io.cilium.k8s.policy.cluster=c1"},
	};
	size_t i;

	fx_init(&f);
	for (i = 0; i < MG_ARRAY_SIZE(extra); i++) {
		CU_ASSERT_EQUAL_FATAL(mg_labels_parse(&ls, extra[i].labels, &f.err), 0);
		CU_ASSERT_EQUAL_FATAL(mg_identity_table_put(f.ids, extra[i].id, &ls, 1), 0);
		mg_labels_clear(&ls);
	}
	CU_ASSERT_EQUAL(mg_policy_set_load_path(f.set, "c1", fixture_dir(), &f.err), 5);
	CU_ASSERT_EQUAL(mg_policy_set_rules(f.set), 5);
	/* frontend -> backend:8080 allowed both ways; 8081 not */
	CU_ASSERT_EQUAL(verdict(&f, C1(201), C1(200), TCP, 8080), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, C1(201), C1(200), TCP, 8081), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, C1(200), C1(202), TCP, 5432), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, C1(200), C1(202), UDP, 5432), ALLOW);
	/* the CCNP deny of ssh wins */
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, C1(202), TCP, 22), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, C1(202), TCP, 23), ALLOW);
	/* the host takes 10250 from any pod, nothing else */
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_HOST, TCP, 10250), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_HOST, TCP, 10251), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, MG_ID_WORLD, MG_ID_HOST, TCP, 10250), DENY_I);
	/* a single file too */
	{
		char path[PATH_MAX + 32];
		struct mg_policy_set *s2 = mg_policy_set_create();

		snprintf(path, sizeof(path), "%s/02-list.yaml", fixture_dir());
		CU_ASSERT_EQUAL(mg_policy_set_load_path(s2, "c1", path, &f.err), 2);
		mg_policy_set_free(s2);
	}
	fx_fini(&f);
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fputs(text, fp);
	fclose(fp);
}

static void
remove_dir(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	char path[PATH_MAX + 300];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) != 0)
			rmdir(path);
	}
	closedir(d);
	rmdir(dir);
}

/* Name order, extensions, no recursion, and an error in a later file rolls back all. */
static void
test_load_dir_order_and_rollback(void)
{
	char dir[] = "/tmp/mg_policy_test_XXXXXX";
	char sub[PATH_MAX];
	struct fx f;

	fx_init(&f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	write_file(dir, "b.yml", HDR_CNP("b", "a") "spec: {endpointSelector: {}}\n");
	write_file(dir, "a.yaml", HDR_CNP("a", "a") "spec: {endpointSelector: {}}\n");
	write_file(dir, "c.txt", "not: a policy\n");
	snprintf(sub, sizeof(sub), "%s/sub.yaml", dir);
	CU_ASSERT_EQUAL(mkdir(sub, 0700), 0);
	CU_ASSERT_EQUAL(mg_policy_set_load_path(f.set, "c1", dir, &f.err), 2);
	write_file(dir, "z.json", "{\"apiVersion\": \"cilium.io/v2\", \"kind\": \"Pod\"}");
	CU_ASSERT(mg_policy_set_load_path(f.set, "c1", dir, &f.err) < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(f.err.msg, "z.json:1:40: "));
	CU_ASSERT_PTR_NOT_NULL(strstr(f.err.msg, "'Pod' is not a policy"));
	CU_ASSERT_EQUAL(mg_policy_set_count(f.set), 2);
	CU_ASSERT(mg_policy_set_load_path(f.set, "c1", "/nonexistent/policies", &f.err) == -ENOENT);
	remove_dir(dir);
	fx_fini(&f);
}

/* ---- errors ---- */

struct err_case {
	const char *yaml;
	const char *where; /* "t.yaml:L:C: " */
	const char *what;  /* a substring of the message */
};

static void
check_errors(const struct err_case *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct fx f;
		int rc;

		fx_init(&f);
		rc = load(&f, c[i].yaml);
		CU_ASSERT(rc < 0);
		if (rc >= 0 || strncmp(f.err.msg, c[i].where, strlen(c[i].where)) != 0 ||
		    strstr(f.err.msg, c[i].what) == NULL)
			printf("  case %zu: got '%s', want '%s...%s'\n", i, f.err.msg, c[i].where,
			       c[i].what);
		CU_ASSERT_EQUAL(strncmp(f.err.msg, c[i].where, strlen(c[i].where)), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(f.err.msg, c[i].what));
		CU_ASSERT_EQUAL(mg_policy_set_count(f.set), 0);
		fx_fini(&f);
	}
}

/* Header lines 1-3, then "spec:" on line 4 and the endpointSelector on 5. */
#define RULE_HDR HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n"

static void
test_unsupported_peer_fields(void)
{
	static const struct err_case c[] = {
	        {RULE_HDR "  ingress:\n  - fromCIDR: [10.0.0.0/8]\n",
	         "t.yaml:7:5: ", "spec.ingress[0].fromCIDR: not supported yet"},
	        {RULE_HDR "  ingress:\n  - fromCIDRSet: [{cidr: 10.0.0.0/8}]\n",
	         "t.yaml:7:5: ", "fromCIDRSet: not supported yet"},
	        {RULE_HDR "  ingress:\n  - fromEntities: [world]\n",
	         "t.yaml:7:5: ", "fromEntities: not supported yet"},
	        {RULE_HDR "  ingress:\n  - fromRequires: [{}]\n",
	         "t.yaml:7:5: ", "fromRequires: not supported yet"},
	        {RULE_HDR "  ingress:\n  - fromNodes: [{}]\n",
	         "t.yaml:7:5: ", "fromNodes: not supported yet"},
	        {RULE_HDR "  ingress:\n  - fromGroups: [{}]\n",
	         "t.yaml:7:5: ", "fromGroups: not supported yet"},
	        {RULE_HDR "  egress:\n  - toCIDR: [10.0.0.0/8]\n",
	         "t.yaml:7:5: ", "spec.egress[0].toCIDR: not supported yet"},
	        {RULE_HDR "  egress:\n  - toCIDRSet: [{cidr: 10.0.0.0/8}]\n",
	         "t.yaml:7:5: ", "toCIDRSet: not supported yet"},
	        {RULE_HDR "  egress:\n  - toEntities: [world]\n",
	         "t.yaml:7:5: ", "toEntities: not supported yet"},
	        {RULE_HDR "  egress:\n  - toFQDNs: [{matchName: x.com}]\n",
	         "t.yaml:7:5: ", "toFQDNs: not supported yet"},
	        {RULE_HDR "  egress:\n  - toServices: [{}]\n",
	         "t.yaml:7:5: ", "toServices: not supported yet"},
	        {RULE_HDR "  egress:\n  - toGroups: [{}]\n",
	         "t.yaml:7:5: ", "toGroups: not supported yet"},
	        {RULE_HDR "  egress:\n  - toNodes: [{}]\n",
	         "t.yaml:7:5: ", "toNodes: not supported yet"},
	        {RULE_HDR "  egress:\n  - toRequires: [{}]\n",
	         "t.yaml:7:5: ", "toRequires: not supported yet"},
	        {RULE_HDR "  egressDeny:\n  - toCIDR: [10.0.0.0/8]\n",
	         "t.yaml:7:5: ", "spec.egressDeny[0].toCIDR: not supported yet"},
	        {RULE_HDR "  ingressDeny:\n  - fromEntities: [all]\n",
	         "t.yaml:7:5: ", "spec.ingressDeny[0].fromEntities: not supported yet"},
	};

	check_errors(c, MG_ARRAY_SIZE(c));
}

static void
test_unsupported_l4_l7_fields(void)
{
	static const struct err_case c[] = {
	        {RULE_HDR "  ingress:\n  - icmps: [{fields: [{type: 8}]}]\n",
	         "t.yaml:7:5: ", "spec.ingress[0].icmps: not supported yet"},
	        {RULE_HDR "  ingress:\n  - authentication: {mode: required}\n",
	         "t.yaml:7:5: ", "authentication: not supported yet"},
	        {RULE_HDR "  ingress:\n  - toPorts:\n    - rules: {http: [{}]}\n",
	         "t.yaml:8:7: ", "spec.ingress[0].toPorts[0].rules: not supported yet"},
	        {RULE_HDR "  egress:\n  - toPorts:\n    - terminatingTLS: {}\n",
	         "t.yaml:8:7: ", "terminatingTLS: not supported yet"},
	        {RULE_HDR "  egress:\n  - toPorts:\n    - originatingTLS: {}\n",
	         "t.yaml:8:7: ", "originatingTLS: not supported yet"},
	        {RULE_HDR "  egress:\n  - toPorts:\n    - serverNames: [a.com]\n",
	         "t.yaml:8:7: ", "serverNames: not supported yet"},
	        {RULE_HDR "  egress:\n  - toPorts:\n    - listener: {name: x}\n",
	         "t.yaml:8:7: ", "listener: not supported yet"},
	        {RULE_HDR "  ingress:\n  - toPorts:\n    - ports: [{port: http}]\n",
	         "t.yaml:8:22: ", "named port 'http': not supported yet"},
	        {HDR_CNP("p", "a") "spec:\n  nodeSelector: {}\n",
	         "t.yaml:5:3: ", "spec.nodeSelector: not supported yet"},
	};

	check_errors(c, MG_ARRAY_SIZE(c));
}

static void
test_unknown_fields(void)
{
	static const struct err_case c[] = {
	        {RULE_HDR "  ingres: []\n", "t.yaml:6:3: ", "spec.ingres: unknown field"},
	        {RULE_HDR "  ingress:\n  - fromEndpoint: [{}]\n",
	         "t.yaml:7:5: ", "spec.ingress[0].fromEndpoint: unknown field"},
	        /* toEndpoints is an egress field */
	        {RULE_HDR "  ingress:\n  - toEndpoints: [{}]\n", "t.yaml:7:5: ", "unknown field"},
	        {RULE_HDR "  egress:\n  - toPorts: [{ports: [{port: 80, proto: TCP}]}]\n",
	         "t.yaml:7:35: ", "proto: unknown field"},
	        {HDR_CNP("p", "a") "spec:\n  endpointSelector: {matchLabel: {a: b}}\n",
	         "t.yaml:5:22: ", "matchLabel: unknown field"},
	        {"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
	         "metadata: {name: p, nmespace: a}\nspec: {endpointSelector: {}}\n",
	         "t.yaml:3:21: ", "metadata.nmespace: unknown field"},
	        {HDR_CNP("p", "a") "spec: {endpointSelector: {}}\nextra: 1\n",
	         "t.yaml:5:1: ", "extra: unknown field"},
	        {HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n  endpointSelector: {}\n",
	         "t.yaml:6:3: ", "duplicate key"},
	};

	check_errors(c, MG_ARRAY_SIZE(c));
}

static void
test_type_errors(void)
{
	static const struct err_case c[] = {
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: \"70000\"}]}]\n",
	         "t.yaml:7:31: ", "70000 is out of range"},
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: 70000}]}]\n",
	         "t.yaml:7:31: ", "out of range"},
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: \"abc\"}]}]\n",
	         "t.yaml:7:31: ", "named port 'abc': not supported yet"},
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: 80, protocol: FOO}]}]\n",
	         "t.yaml:7:45: ", "unknown protocol 'FOO'"},
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: 80, endPort: 70}]}]\n",
	         "t.yaml:7:44: ", "endPort: 70 is below port 80"},
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{endPort: 70}]}]\n",
	         "t.yaml:7:34: ", "needs a non-zero port"},
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: \"-1\"}]}]\n",
	         "t.yaml:7:31: ", "not a port number"},
	        {RULE_HDR "  ingress: {fromEndpoints: []}\n",
	         "t.yaml:6:12: ", "spec.ingress: expected a list"},
	        {RULE_HDR "  enableDefaultDeny: {ingress: maybe}\n",
	         "t.yaml:6:32: ", "expected true or false"},
	        {HDR_CNP("p", "a") "spec:\n  endpointSelector: {matchLabels: [a]}\n",
	         "t.yaml:5:35: ", "matchLabels: expected a mapping"},
	        {HDR_CNP("p", "a") "spec:\n  endpointSelector:\n    matchExpressions:\n"
	                           "    - {key: app, operator: Maybe, values: [x]}\n",
	         "t.yaml:7:28: ", "unknown operator 'Maybe'"},
	        {HDR_CNP("p", "a") "spec:\n  endpointSelector:\n    matchExpressions:\n"
	                           "    - {key: app, operator: In}\n",
	         "t.yaml:7:7: ", "In needs at least one value"},
	        {HDR_CNP("p", "a") "spec:\n  endpointSelector:\n    matchExpressions:\n"
	                           "    - {key: app, operator: Exists, values: [x]}\n",
	         "t.yaml:7:44: ", "Exists takes no values"},
	        {"apiVersion: cilium.io/v1\nkind: CiliumNetworkPolicy\nmetadata: {name: p}\n"
	         "spec: {endpointSelector: {}}\n",
	         "t.yaml:1:13: ", "expected cilium.io/v2"},
	        {"apiVersion: cilium.io/v2\nkind: NetworkPolicy\nmetadata: {name: p}\n",
	         "t.yaml:2:7: ", "'NetworkPolicy' is not a policy"},
	        {"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {namespace: a}\n"
	         "spec: {endpointSelector: {}}\n",
	         "t.yaml:3:11: ", "metadata.name is required"},
	        {HDR_CNP("p", "a") "spec:\n  ingress: [{}]\n",
	         "t.yaml:5:3: ", "endpointSelector is required"},
	        {"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items: "
	         "[]\n",
	         "t.yaml:5:9: ", "a List inside a List"},
	        {"- just\n- a list\n", "t.yaml:1:1: ", "expected a mapping"},
	};

	check_errors(c, MG_ARRAY_SIZE(c));
}

static void
test_limits(void)
{
	size_t cap = 64 * 1024, n, i;
	char *y = malloc(cap);
	struct fx f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(y);
	n = (size_t)snprintf(y, cap,
	                     HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                       "    matchLabels:\n");
	for (i = 0; i < 300; i++)
		n += (size_t)snprintf(y + n, cap - n, "      k%zu: v\n", i);
	fx_init(&f);
	CU_ASSERT(load(&f, y) < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(f.err.msg, "too many requirements"));
	CU_ASSERT_EQUAL(mg_policy_set_count(f.set), 0);
	fx_fini(&f);
	free(y);
}

static void
test_bad_args(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(mg_policy_set_load_buf(f.set, NULL, "t", "a: 1", 4, &f.err), -EINVAL);
	CU_ASSERT_EQUAL(mg_policy_set_load_buf(f.set, "", "t", "a: 1", 4, &f.err), -EINVAL);
	CU_ASSERT(load(&f, "a: [1, 2\n") < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(f.err.msg, "syntax error"));
	CU_ASSERT_EQUAL(load(&f, ""), 0);
	fx_fini(&f);
}

/* ---- semantics ---- */

static void
test_namespace_scoping(void)
{
	struct fx f;

	fx_init(&f);
	/* web in ns a takes ingress from api (of ns a only) */
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchLabels: {app: web}\n"
	                                           "  ingress:\n  - fromEndpoints:\n"
	                                           "    - matchLabels: {app: api}\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, C_PROD, A_WEB, TCP, 80), DENY_I); /* api of ns c */
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 80), DENY_I);
	/* the subject is scoped too: web of ns b and c is not governed */
	CU_ASSERT_EQUAL(verdict(&f, A_DB, B_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, C_WEB, TCP, 80), ALLOW);
	fx_fini(&f);
}

static void
test_namespace_explicit_crosses(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f,
	                     HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n"
	                                       "  ingress:\n  - fromEndpoints:\n"
	                                       "    - matchLabels:\n"
	                                       "        k8s:io.kubernetes.pod.namespace: c\n"
	                                       "        app: api\n"
	                                       "    - matchExpressions:\n"
	                                       "      - key: io.kubernetes.pod.namespace\n"
	                                       "        operator: In\n        values: [b]\n"
	                                       "      - {key: app, operator: In, values: [db]}\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, C_PROD, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, C_DEV, A_DB, UDP, 53), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, B_DB, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, B_WEB, A_WEB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 80), DENY_I); /* own ns not named */
	fx_fini(&f);
}

/* Only negative matches on the namespace: any namespace except those. */
static void
test_namespace_negative_only(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f,
	                     HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n"
	                                       "  ingress:\n  - fromEndpoints:\n"
	                                       "    - matchExpressions:\n"
	                                       "      - key: k8s:io.kubernetes.pod.namespace\n"
	                                       "        operator: NotIn\n        values: [c]\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, B_WEB, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, C_WEB, A_WEB, TCP, 80), DENY_I);
	/* "namespace label exists" keeps reserved identities out */
	CU_ASSERT_EQUAL(verdict(&f, MG_ID_HOST, A_WEB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, MG_ID_WORLD, A_WEB, TCP, 80), DENY_I);
	fx_fini(&f);
}

static void
test_cluster_scoping(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchLabels: {app: db}\n"
	                                           "  ingress:\n  - fromEndpoints:\n"
	                                           "    - matchLabels: {app: web}\n"),
	                1);
	/* default_local_cluster on: web of cluster c2 is not a peer */
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, X_A_WEB, A_DB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, NOCLUSTER, A_DB, TCP, 80), DENY_I);
	/* subjects are always of the policy's cluster: c2's db is open */
	CU_ASSERT_EQUAL(verdict(&f, X_B_WEB, X_A_DB, TCP, 80), ALLOW);
	/* off: any cluster's web of ns a */
	f.params.default_local_cluster = false;
	compile(&f);
	CU_ASSERT_EQUAL(verdict(&f, X_A_WEB, A_DB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, NOCLUSTER, A_DB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, X_B_WEB, A_DB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, X_B_WEB, X_A_DB, TCP, 80), ALLOW);
	fx_fini(&f);
}

static void
test_cluster_explicit(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f,
	                     HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                       "    matchLabels: {app: db}\n"
	                                       "  ingress:\n  - fromEndpoints:\n"
	                                       "    - matchLabels:\n"
	                                       "        app: web\n"
	                                       "        io.cilium.k8s.policy.cluster: c2\n"
	                                       "    - matchExpressions:\n"
	                                       "      - key: io.cilium.k8s.policy.cluster\n"
	                                       "        operator: NotIn\n"
	                                       "        values: [c1]\n"
	                                       "      - {key: app, operator: In, values: [db]}\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, X_A_WEB, A_DB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, X_A_DB, A_DB, TCP, 80), ALLOW);
	/* NotIn alone: "cluster label exists", so no cluster-less identity */
	CU_ASSERT_EQUAL(verdict(&f, NOCLUSTER, A_DB, TCP, 80), DENY_I);
	fx_fini(&f);
}

static void
test_match_expressions(void)
{
	struct fx f;

	fx_init(&f);
	/* subjects: pods of ns c with env in {prod}; peers by each operator */
	CU_ASSERT_EQUAL(load(&f,
	                     HDR_CNP("p", "c") "spec:\n  endpointSelector:\n"
	                                       "    matchExpressions:\n"
	                                       "    - {key: env, operator: In, values: [prod]}\n"
	                                       "  ingress:\n"
	                                       "  - fromEndpoints:\n"
	                                       "    - matchExpressions:\n"
	                                       "      - {key: env, operator: NotIn, values: "
	                                       "[prod]}\n"
	                                       "      - {key: app, operator: Exists}\n"
	                                       "    toPorts: [{ports: [{port: 1}]}]\n"
	                                       "  - fromEndpoints:\n"
	                                       "    - matchExpressions:\n"
	                                       "      - {key: app, operator: DoesNotExist}\n"
	                                       "    toPorts: [{ports: [{port: 2}]}]\n"),
	                1);
	/* C_DEV: env=dev (NotIn prod) and has app */
	CU_ASSERT_EQUAL(verdict(&f, C_DEV, C_PROD, TCP, 1), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, C_DEV, C_PROD, TCP, 2), DENY_I);
	/* C_WEB: no env label (NotIn matches), has app */
	CU_ASSERT_EQUAL(verdict(&f, C_WEB, C_PROD, TCP, 1), ALLOW);
	/* C_PROD itself: env=prod */
	CU_ASSERT_EQUAL(verdict(&f, C_PROD, C_PROD, TCP, 1), DENY_I);
	/* C_DEV is not a subject (In prod) */
	CU_ASSERT_EQUAL(verdict(&f, C_PROD, C_DEV, TCP, 9), ALLOW);
	fx_fini(&f);

	/* DoesNotExist: A_PLAIN has no app label; In with several values */
	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchExpressions:\n"
	                                           "    - {key: app, operator: In, values: [web, "
	                                           "db]}\n"
	                                           "  ingress:\n"
	                                           "  - fromEndpoints:\n"
	                                           "    - matchExpressions:\n"
	                                           "      - {key: app, operator: DoesNotExist}\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_PLAIN, A_WEB, TCP, 5), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_PLAIN, A_DB, TCP, 5), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_DB, TCP, 5), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_API, TCP, 5), ALLOW);
	fx_fini(&f);
}

static void
test_source_prefix(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchLabels: {k8s:app: web}\n"
	                                           "  ingress:\n  - fromEndpoints:\n"
	                                           "    - matchLabels: {any:app: api}\n"
	                                           "    - matchLabels: {container:app: db}\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 80), ALLOW);
	/* db carries k8s:app, not container:app */
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 80), DENY_I);
	fx_fini(&f);
}

static void
test_default_deny_per_direction(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchLabels: {app: web}\n"
	                                           "  ingress:\n  - fromEndpoints:\n"
	                                           "    - matchLabels: {app: api}\n"),
	                1);
	/* ingress of web is default deny ... */
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 80), DENY_I);
	/* ... its egress stays open */
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD, UDP, 53), ALLOW);
	fx_fini(&f);

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchLabels: {app: web}\n"
	                                           "  egressDeny:\n  - toEndpoints:\n"
	                                           "    - matchLabels: {app: db}\n"),
	                1);
	/* a deny section also switches its direction to default deny */
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_API, TCP, 80), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 80), ALLOW);
	fx_fini(&f);
}

static void
test_enable_default_deny_false(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchLabels: {app: web}\n"
	                                           "  enableDefaultDeny: {ingress: false}\n"
	                                           "  ingress:\n  - fromEndpoints:\n"
	                                           "    - matchLabels: {app: api}\n"
	                                           "  ingressDeny:\n  - fromEndpoints:\n"
	                                           "    - matchLabels: {app: db}\n"
	                                           "  egress: [{}]\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 80), DENY_I);   /* explicit deny */
	CU_ASSERT_EQUAL(verdict(&f, A_PLAIN, A_WEB, TCP, 80), ALLOW); /* not default deny */
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_API, TCP, 80), DENY_E); /* egress still */
	fx_fini(&f);

	/* another rule selecting the same subject without the flag enforces */
	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "specs:\n- endpointSelector:\n"
	                                           "    matchLabels: {app: web}\n"
	                                           "  enableDefaultDeny: {ingress: false}\n"
	                                           "  ingress:\n  - fromEndpoints:\n"
	                                           "    - matchLabels: {app: api}\n"
	                                           "- endpointSelector: {}\n"
	                                           "  ingress:\n  - fromEndpoints:\n"
	                                           "    - matchLabels: {app: db}\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_PLAIN, A_WEB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 80), ALLOW);
	fx_fini(&f);
}

static void
test_empty_entry_vs_empty_list(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchLabels: {app: web}\n"
	                                           "  ingress: [{}]\n  egress: []\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_WEB, ICMP, 8), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_API, TCP, 80), ALLOW);
	fx_fini(&f);

	/* fromEndpoints: [] selects no peer, even with toPorts */
	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchLabels: {app: web}\n"
	                                           "  ingress:\n  - fromEndpoints: []\n"
	                                           "    toPorts: [{ports: [{port: 80}]}]\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 80), DENY_I);
	fx_fini(&f);
}

static void
test_to_ports_without_l3(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchLabels: {app: web}\n"
	                                           "  ingress:\n"
	                                           "  - toPorts: [{ports: [{port: \"443\"}]}]\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, X_C_JOB, A_WEB, TCP, 443), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, MG_ID_WORLD, A_WEB, UDP, 443), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, UNKNOWN_ID, A_WEB, SCTP, 443), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, MG_ID_WORLD, A_WEB, TCP, 444), DENY_I);
	fx_fini(&f);
}

static void
test_deny_beats_allow(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("allow",
	                                 "a") "spec:\n  endpointSelector: {}\n"
	                                      "  ingress:\n  - fromEndpoints: [{}]\n"
	                                      "---\n" HDR_CCNP(
	                                              "deny") "spec:\n"
	                                                      "  endpointSelector: {matchLabels: "
	                                                      "{app: db}}\n"
	                                                      "  ingressDeny:\n  - fromEndpoints:\n"
	                                                      "    - matchLabels: {app: web}\n"
	                                                      "    toPorts: [{ports: [{port: 5432, "
	                                                      "protocol: TCP}]}]\n"
	                                                      "  - fromEndpoints:\n"
	                                                      "    - matchLabels: {app: api}\n"),
	                2);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 5432), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 5433), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, UDP, 5432), ALLOW);
	/* an L3-only deny drops every protocol */
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_DB, ICMP, 8), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_DB, GRE, 0), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_PLAIN, A_DB, GRE, 0), ALLOW);
	fx_fini(&f);
}

/* Egress is checked first; an egress deny reports egress. */
static void
test_both_directions(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n"
	                                           "  ingress: [{}]\n  egress: [{}]\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 80), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, B_WEB, A_DB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, B_DB, TCP, 80), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, B_WEB, B_DB, TCP, 80), ALLOW);
	fx_fini(&f);
}

static void
test_ports_and_protocols(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchLabels: {app: web}\n"
	                                           "  ingress:\n  - fromEndpoints: [{}]\n"
	                                           "    toPorts:\n"
	                                           "    - ports:\n"
	                                           "      - {port: \"80\", protocol: TCP}\n"
	                                           "      - {port: 53, protocol: UDP}\n"
	                                           "      - {port: 8000, endPort: 8010, "
	                                           "protocol: TCP}\n"
	                                           "      - {port: 9000}\n"
	                                           "      - {port: 7000, protocol: \"\"}\n"
	                                           "      - {port: 36412, protocol: SCTP}\n"
	                                           "    - ports: [{port: 0, protocol: UDP}]\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, SCTP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 81), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 53), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 7999), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 8000), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 8010), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 8011), DENY_I);
	/* ANY (absent or empty) = TCP, UDP and SCTP */
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 9000), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, SCTP, 9000), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, SCTP, 7000), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, SCTP, 36412), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 36412), DENY_I);
	/* port 0 = every port of UDP */
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, UDP, 1), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, UDP, 65535), ALLOW);
	/* ICMP and the rest: not by an L4 rule */
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, ICMP, 8), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, GRE, 0), DENY_I);
	fx_fini(&f);
}

static void
test_icmp_and_l3_only(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f,
	                     HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                       "    matchLabels: {app: web}\n"
	                                       "  ingress:\n"
	                                       "  - fromEndpoints: [{matchLabels: {app: api}}]\n"
	                                       "  - fromEndpoints: [{matchLabels: {app: db}}]\n"
	                                       "    toPorts: [{ports: [{port: 80}]}]\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, ICMP, 8), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, GRE, 0), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, 58, 128), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, ICMP, 8), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, GRE, 0), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 80), ALLOW);
	fx_fini(&f);
}

static void
test_enforcement_always_never(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchLabels: {app: web}\n"
	                                           "  ingress:\n  - fromEndpoints:\n"
	                                           "    - matchLabels: {app: api}\n"
	                                           "  egress:\n  - toEndpoints:\n"
	                                           "    - matchLabels: {app: db}\n"
	                                           "  egressDeny:\n  - toEndpoints:\n"
	                                           "    - matchLabels: {app: api}\n"),
	                1);
	f.params.enforcement = MG_ENFORCE_ALWAYS;
	compile(&f);
	/* api's egress is default deny too now, with no allow for it */
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, TCP, 80), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, B_WEB, B_DB, TCP, 80), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, UNKNOWN_ID, MG_ID_WORLD, UDP, 53), DENY_E);
	f.params.enforcement = MG_ENFORCE_NEVER;
	compile(&f);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_API, TCP, 80), ALLOW); /* even the deny */
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT(mg_policy_memory(f.pol) > 0);
	fx_fini(&f);
}

static void
test_unknown_identity(void)
{
	struct fx f;
	struct mg_policy_trace t;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n"
	                                           "  ingress:\n  - fromEndpoints:\n"
	                                           "    - matchExpressions:\n"
	                                           "      - {key: reserved:host, operator: "
	                                           "DoesNotExist}\n"
	                                           "    toPorts: [{ports: [{port: 80}]}]\n"),
	                1);
	/* an unknown identity has no labels: reserved:host DoesNotExist matches it */
	CU_ASSERT_EQUAL(verdict(&f, UNKNOWN_ID, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, MG_ID_HOST, A_WEB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, UNKNOWN_ID, A_WEB, TCP, 81), DENY_I);
	/* and is itself never a subject */
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, UNKNOWN_ID, TCP, 81), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, 0, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(mg_policy_trace(f.set, f.ids, &f.params, UNKNOWN_ID, A_WEB, TCP, 80, &t),
	                -ENOENT);
	CU_ASSERT_EQUAL(t.verdict, ALLOW);
	CU_ASSERT_EQUAL(mg_policy_trace(f.set, f.ids, &f.params, A_API, A_WEB, TCP, 80, &t), 0);
	fx_fini(&f);
}

static void
test_ccnp_subjects_and_peers(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CCNP("host") "spec:\n  endpointSelector:\n"
	                                          "    matchLabels: {reserved:host: \"\"}\n"
	                                          "  ingress:\n  - fromEndpoints: [{}]\n"
	                                          "---\n" HDR_CCNP(
	                                                  "web") "spec:\n"
	                                                         "  endpointSelector:\n"
	                                                         "    matchLabels: {app: web}\n"
	                                                         "  ingress:\n  - fromEndpoints:\n"
	                                                         "    - matchLabels: {app: api}\n"),
	                2);
	/* CCNP [{}]: any pod of the local cluster */
	CU_ASSERT_EQUAL(verdict(&f, C_DEV, MG_ID_HOST, TCP, 22), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, X_C_JOB, MG_ID_HOST, TCP, 22), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, MG_ID_WORLD, MG_ID_HOST, TCP, 22), DENY_I);
	/* a CCNP peer selector is any namespace (of the cluster) */
	CU_ASSERT_EQUAL(verdict(&f, C_PROD, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, C_PROD, B_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, B_WEB, TCP, 80), DENY_I);
	/* subjects of the local cluster only */
	CU_ASSERT_EQUAL(verdict(&f, A_DB, X_A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, NOCLUSTER, TCP, 80), ALLOW);
	fx_fini(&f);

	/* a CNP never selects reserved identities */
	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchLabels: {reserved:host: \"\"}\n"
	                                           "  ingress: [{}]\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_HOST, TCP, 22), ALLOW);
	fx_fini(&f);
}

static void
test_reserved_peer(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                           "    matchLabels: {app: web}\n"
	                                           "  egress:\n  - toEndpoints:\n"
	                                           "    - matchLabels: {reserved:world: \"\"}\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD, TCP, 443), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD_IPV4, TCP, 443), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_HOST, TCP, 443), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 443), DENY_E);
	fx_fini(&f);
}

/* Policies loaded for cluster c2 govern c2's pods, and scope peers to c2. */
static void
test_source_cluster(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load_as(&f, "c2",
	                        HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n"
	                                          "  ingress:\n  - fromEndpoints: [{}]\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, X_A_DB, X_A_WEB, TCP, 1), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, X_A_WEB, TCP, 1), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, X_B_DB, X_A_WEB, TCP, 1), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, B_DB, A_WEB, TCP, 1), ALLOW);
	fx_fini(&f);
}

static void
test_compile_bad_args(void)
{
	struct fx f;

	fx_init(&f);
	errno = 0;
	CU_ASSERT_PTR_NULL(mg_policy_compile(NULL, f.ids, &f.params, &f.err));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_PTR_NULL(mg_policy_compile(f.set, NULL, &f.params, &f.err));
	CU_ASSERT_PTR_NULL(mg_policy_compile(f.set, f.ids, NULL, &f.err));
	CU_ASSERT_EQUAL(mg_policy_memory(NULL), 0);
	CU_ASSERT_EQUAL(mg_policy_set_count(NULL), 0);
	mg_policy_free(NULL);
	mg_policy_set_free(NULL);
	/* an empty set compiles and allows everything */
	compile(&f);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD, ICMP, 8), ALLOW);
	fx_fini(&f);
}

/* A toPorts item without ports: every port of TCP, UDP and SCTP (not ICMP). */
static void
test_to_ports_empty_item(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n"
	                                           "  ingress:\n  - fromEndpoints: [{}]\n"
	                                           "    toPorts: [{}]\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 1), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, SCTP, 65535), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, ICMP, 8), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, B_WEB, A_DB, TCP, 1), DENY_I);
	fx_fini(&f);
}

/* A namespace on a CCNP is ignored: peers stay "any namespace". */
static void
test_ccnp_namespace_ignored(void)
{
	struct fx f;
	struct mg_policy_trace t;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, "apiVersion: cilium.io/v2\n"
	                         "kind: CiliumClusterwideNetworkPolicy\n"
	                         "metadata: {name: g, namespace: a}\n"
	                         "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
	                         "  ingress:\n  - fromEndpoints: [{matchLabels: {app: web}}]\n"),
	                1);
	CU_ASSERT_EQUAL(verdict(&f, C_WEB, B_DB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_API, B_DB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(mg_policy_trace(f.set, f.ids, &f.params, C_WEB, B_DB, TCP, 80, &t), 0);
	CU_ASSERT_STRING_EQUAL(t.ingress.name, "g");
	CU_ASSERT_STRING_EQUAL(t.ingress.ns, "");
	fx_fini(&f);
}

/* ---- trace ---- */

static void
test_trace_names_rule(void)
{
	struct fx f;
	struct mg_policy_trace t;

	fx_init(&f);
	CU_ASSERT_EQUAL(
	        load(&f, HDR_CNP("first",
	                         "a") "spec:\n  endpointSelector: {}\n"
	                              "  ingress:\n"
	                              "  - fromEndpoints: [{matchLabels: {app: "
	                              "db}}]\n"
	                              "  - fromEndpoints: [{matchLabels: {app: "
	                              "api}}]\n"
	                              "---\n" HDR_CCNP(
	                                      "second") "specs:\n"
	                                                "- endpointSelector: {}\n"
	                                                "- endpointSelector: {}\n"
	                                                "  ingressDeny:\n"
	                                                "  - toPorts: [{ports: [{port: 99}]}]\n"),
	        2);
	CU_ASSERT_EQUAL(mg_policy_trace(f.set, f.ids, &f.params, A_API, A_WEB, TCP, 80, &t), 0);
	CU_ASSERT_EQUAL(t.verdict, ALLOW);
	CU_ASSERT_TRUE(t.ingress.allowed);
	CU_ASSERT_TRUE(t.ingress.enforced);
	CU_ASSERT_STRING_EQUAL(t.ingress.name, "first");
	CU_ASSERT_STRING_EQUAL(t.ingress.ns, "a");
	CU_ASSERT_STRING_EQUAL(t.ingress.cluster, "c1");
	CU_ASSERT_STRING_EQUAL(t.ingress.file, "t.yaml");
	CU_ASSERT_STRING_EQUAL(t.ingress.section, "ingress");
	CU_ASSERT_EQUAL(t.ingress.rule_index, 0);
	CU_ASSERT_EQUAL(t.ingress.entry_index, 1);
	CU_ASSERT_EQUAL(t.ingress.line, 8);
	CU_ASSERT_TRUE(t.egress.allowed);
	CU_ASSERT_FALSE(t.egress.enforced);
	CU_ASSERT_EQUAL(t.egress.name[0], '\0');

	CU_ASSERT_EQUAL(mg_policy_trace(f.set, f.ids, &f.params, A_API, A_WEB, UDP, 99, &t), 0);
	CU_ASSERT_EQUAL(t.verdict, DENY_I);
	CU_ASSERT_TRUE(t.ingress.by_deny_rule);
	CU_ASSERT_STRING_EQUAL(t.ingress.name, "second");
	CU_ASSERT_STRING_EQUAL(t.ingress.ns, "");
	CU_ASSERT_STRING_EQUAL(t.ingress.section, "ingressDeny");
	CU_ASSERT_EQUAL(t.ingress.rule_index, 1);
	CU_ASSERT_EQUAL(t.ingress.entry_index, 0);
	CU_ASSERT_EQUAL(t.ingress.line, 17);

	/* default deny: enforced, no rule named */
	CU_ASSERT_EQUAL(mg_policy_trace(f.set, f.ids, &f.params, A_WEB, A_DB, TCP, 80, &t), 0);
	CU_ASSERT_EQUAL(t.verdict, DENY_I);
	CU_ASSERT_FALSE(t.ingress.allowed);
	CU_ASSERT_TRUE(t.ingress.enforced);
	CU_ASSERT_FALSE(t.ingress.by_deny_rule);
	CU_ASSERT_EQUAL(t.ingress.name[0], '\0');
	fx_fini(&f);
}

static void
test_enforcement_names(void)
{
	enum mg_enforcement e;

	CU_ASSERT_EQUAL(mg_enforcement_parse("default", &e), 0);
	CU_ASSERT_EQUAL(e, MG_ENFORCE_DEFAULT);
	CU_ASSERT_EQUAL(mg_enforcement_parse("always", &e), 0);
	CU_ASSERT_EQUAL(e, MG_ENFORCE_ALWAYS);
	CU_ASSERT_EQUAL(mg_enforcement_parse("never", &e), 0);
	CU_ASSERT_EQUAL(e, MG_ENFORCE_NEVER);
	CU_ASSERT_EQUAL(mg_enforcement_parse("Always", &e), -EINVAL);
	CU_ASSERT_EQUAL(mg_enforcement_parse(NULL, &e), -EINVAL);
	CU_ASSERT_STRING_EQUAL(mg_enforcement_name(MG_ENFORCE_DEFAULT), "default");
	CU_ASSERT_STRING_EQUAL(mg_enforcement_name(MG_ENFORCE_ALWAYS), "always");
	CU_ASSERT_STRING_EQUAL(mg_enforcement_name(MG_ENFORCE_NEVER), "never");
}

static void
test_memory_and_revision(void)
{
	struct fx f;
	size_t m1;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n"
	                                           "  ingress:\n  - toPorts: [{ports: [{port: "
	                                           "80}]}]\n"),
	                1);
	f.params.revision = 42;
	compile(&f);
	CU_ASSERT_EQUAL(mg_policy_revision(f.pol), 42);
	m1 = mg_policy_memory(f.pol);
	/* at least one 8 KiB bitmap for the allowed ports */
	CU_ASSERT(m1 > 8192);
	/* a thousand more identities with the same labels share the classes */
	{
		struct mg_labels ls = MG_LABELS_INIT;
		uint32_t i;
		size_t m2;

		CU_ASSERT_EQUAL_FATAL(mg_labels_parse(&ls, fixture_ids[0].labels, &f.err), 0);
		for (i = 0; i < 1000; i++)
			CU_ASSERT_EQUAL(mg_identity_table_put(f.ids, C1(1000 + i), &ls, 1), 0);
		mg_labels_clear(&ls);
		compile(&f);
		m2 = mg_policy_memory(f.pol);
		/* only the identity map grows (a slot is under 16 bytes; 2-4x spare) */
		CU_ASSERT(m2 > m1);
		CU_ASSERT(m2 - m1 <= 1000 * 4 * 16);
		CU_ASSERT_EQUAL(verdict(&f, C1(1500), C1(1999), TCP, 80), ALLOW);
		CU_ASSERT_EQUAL(verdict(&f, C1(1500), C1(1999), TCP, 81), DENY_I);
	}
	fx_fini(&f);
}

/* ---- cross-checks: compiled tables == trace ---- */

static const char *const grid_policies = HDR_CNP(
        "a-web",
        "a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
             "  ingress:\n  - fromEndpoints: [{matchLabels: {app: api}}]\n"
             "    toPorts: [{ports: [{port: 80, protocol: TCP}]}]\n"
             "---\n" HDR_CNP(
                     "a-db",
                     "a") "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
                          "  ingress:\n  - fromEndpoints: [{matchLabels: {app: web}}]\n"
                          "    toPorts: [{ports: [{port: 5432}]}]\n"
                          "  egress:\n  - toEndpoints: [{}]\n"
                          "---\n" HDR_CNP(
                                  "b-cross",
                                  "b") "spec:\n  endpointSelector: {matchLabels: {app: db}}\n"
                                       "  ingress:\n  - fromEndpoints:\n"
                                       "    - matchLabels: {k8s:io.kubernetes.pod.namespace: a, "
                                       "app: web}\n"
                                       "    - matchExpressions: [{key: role, operator: In, values: "
                                       "[ops]}]\n"
                                       "    toPorts: [{ports: [{port: 5432, protocol: TCP}]}]\n"
                                       "---\n" HDR_CNP(
                                               "b-web",
                                               "b") "spec:\n  endpointSelector: {matchLabels: "
                                                    "{app: web}}\n"
                                                    "  egressDeny:\n  - toEndpoints: "
                                                    "[{matchLabels: {app: db}}]\n"
                                                    "    toPorts: [{ports: [{port: 22}]}]\n"
                                                    "  egress:\n  - toPorts: [{ports: [{port: 53, "
                                                    "protocol: UDP}]}]\n"
                                                    "  - toEndpoints: [{matchLabels: {app: db}}]\n"
                                                    "---\n" HDR_CCNP(
                                                            "host") "spec:\n  endpointSelector: "
                                                                    "{matchLabels: {reserved:host: "
                                                                    "\"\"}}\n"
                                                                    "  ingress:\n  - "
                                                                    "fromEndpoints: [{}]\n"
                                                                    "    toPorts: [{ports: [{port: "
                                                                    "22, protocol: TCP}]}]\n"
                                                                    "---\n" HDR_CCNP(
                                                                            "prod") "spec:\n  "
                                                                                    "endpointSelect"
                                                                                    "or:\n"
                                                                                    "    "
                                                                                    "matchExpressio"
                                                                                    "ns: [{key: "
                                                                                    "env, "
                                                                                    "operator: In, "
                                                                                    "values: "
                                                                                    "[prod]}]\n"
                                                                                    "  ingress:\n  "
                                                                                    "- "
                                                                                    "fromEndpoints:"
                                                                                    "\n"
                                                                                    "    - "
                                                                                    "matchExpressio"
                                                                                    "ns: [{key: "
                                                                                    "env, "
                                                                                    "operator: "
                                                                                    "NotIn, "
                                                                                    "values: "
                                                                                    "[dev]}]\n"
                                                                                    "  egress:\n  "
                                                                                    "- "
                                                                                    "toEndpoints:\n"
                                                                                    "    - "
                                                                                    "matchLabels: "
                                                                                    "{io.cilium."
                                                                                    "k8s.policy."
                                                                                    "cluster: c2}\n"
                                                                                    "    toPorts: "
                                                                                    "[{ports: "
                                                                                    "[{port: "
                                                                                    "443}]}]\n"
                                                                                    "---\n" HDR_CNP(
                                                                                            "c-env",
                                                                                            "c") "s"
                                                                                                 "p"
                                                                                                 "e"
                                                                                                 "c"
                                                                                                 ":"
                                                                                                 "\n  endpointSelector:\n"
                                                                                                 " "
                                                                                                 " "
                                                                                                 " "
                                                                                                 " "
                                                                                                 "m"
                                                                                                 "a"
                                                                                                 "t"
                                                                                                 "c"
                                                                                                 "h"
                                                                                                 "E"
                                                                                                 "x"
                                                                                                 "p"
                                                                                                 "r"
                                                                                                 "e"
                                                                                                 "s"
                                                                                                 "s"
                                                                                                 "i"
                                                                                                 "o"
                                                                                                 "n"
                                                                                                 "s"
                                                                                                 ":"
                                                                                                 " "
                                                                                                 "["
                                                                                                 "{"
                                                                                                 "k"
                                                                                                 "e"
                                                                                                 "y"
                                                                                                 ":"
                                                                                                 " "
                                                                                                 "e"
                                                                                                 "n"
                                                                                                 "v"
                                                                                                 ","
                                                                                                 " "
                                                                                                 "o"
                                                                                                 "p"
                                                                                                 "e"
                                                                                                 "r"
                                                                                                 "a"
                                                                                                 "t"
                                                                                                 "o"
                                                                                                 "r"
                                                                                                 ":"
                                                                                                 " "
                                                                                                 "E"
                                                                                                 "x"
                                                                                                 "i"
                                                                                                 "s"
                                                                                                 "t"
                                                                                                 "s"
                                                                                                 "}"
                                                                                                 "]"
                                                                                                 "\n"
                                                                                                 " "
                                                                                                 " "
                                                                                                 "e"
                                                                                                 "g"
                                                                                                 "r"
                                                                                                 "e"
                                                                                                 "s"
                                                                                                 "s"
                                                                                                 ":"
                                                                                                 " "
                                                                                                 "["
                                                                                                 "{"
                                                                                                 "}"
                                                                                                 "]"
                                                                                                 "\n"
                                                                                                 "-"
                                                                                                 "-"
                                                                                                 "-"
                                                                                                 "\n" HDR_CNP(
                                                                                                         "c-web",
                                                                                                         "c") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
                                                                                                              "  enableDefaultDeny: {ingress: false}\n"
                                                                                                              "  ingress:\n  - fromEndpoints: [{matchLabels: {app: api}}]\n"
                                                                                                              "    toPorts: [{ports: [{port: 8080, endPort: 8090}]}]\n"
                                                                                                              "  ingressDeny:\n  - fromEndpoints: [{matchLabels: {app: "
                                                                                                              "db}}]\n"
                                                                                                              "---\n" HDR_CNP(
                                                                                                                      "a-api",
                                                                                                                      "a") "spec:\n  endpointSelector: {matchLabels: {app: api}}\n"
                                                                                                                           "  egress:\n  - toEndpoints: [{matchLabels: {app: web}}]\n"
                                                                                                                           "    toPorts: [{ports: [{port: 80, protocol: ANY}]}]\n"
                                                                                                                           "  - toEndpoints: [{matchLabels: {reserved:world: \"\"}}]\n"
                                                                                                                           "  ingressDeny:\n  - fromEndpoints:\n"
                                                                                                                           "    - matchExpressions: [{key: app, operator: DoesNotExist}]\n"
                                                                                                                           "---\n" HDR_CNP(
                                                                                                                                   "b-ops",
                                                                                                                                   "b") "spec:\n  endpointSelector: {matchLabels: {role: ops}}\n"
                                                                                                                                        "  egress:\n  - toEndpoints:\n"
                                                                                                                                        "    - matchExpressions:\n"
                                                                                                                                        "      - {key: io.kubernetes.pod.namespace, operator: NotIn, values: [c]}\n"
                                                                                                                                        "  ingress: []\n";

static const char *const grid_policies_c2 = HDR_CCNP(
        "c2-all") "spec:\n  endpointSelector: {}\n  ingress:\n  - fromEndpoints: [{}]\n"
                  "---\n" HDR_CNP(
                          "c2-a-db",
                          "a") "specs:\n- endpointSelector: {matchLabels: {app: db}}\n"
                               "  ingress:\n  - fromEndpoints:\n"
                               "    - matchLabels: {app: web, io.cilium.k8s.policy.cluster: c1}\n"
                               "    toPorts: [{ports: [{port: 5432}]}]\n"
                               "- endpointSelector: {}\n  egressDeny: [{toPorts: [{ports: [{port: "
                               "25}]}]}]\n";

static const uint8_t grid_protos[] = {TCP, UDP, SCTP, ICMP, GRE};
static const uint16_t grid_ports[] = {0, 22, 25, 53, 80, 443, 5432, 8080, 8085, 8091, 65535};

/* Every (src, dst, proto, port) of the grid; returns the number of flows. */
static size_t
grid(struct fx *f, size_t *allowed)
{
	uint32_t all[MG_ARRAY_SIZE(fixture_ids) + MG_ID_RESERVED_MAX + 1];
	size_t n = 0, i, j, k, l, flows = 0;

	for (i = 0; i < MG_ARRAY_SIZE(fixture_ids); i++)
		all[n++] = fixture_ids[i].id;
	for (i = 1; i <= MG_ID_RESERVED_MAX; i++)
		all[n++] = (uint32_t)i;
	all[n++] = UNKNOWN_ID;
	compile(f);
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			for (k = 0; k < MG_ARRAY_SIZE(grid_protos); k++)
				for (l = 0; l < MG_ARRAY_SIZE(grid_ports); l++) {
					if (verdict(f, all[i], all[j], grid_protos[k],
					            grid_ports[l]) == ALLOW)
						(*allowed)++;
					flows++;
				}
	return flows;
}

static void
test_grid_cross_check(void)
{
	static const enum mg_enforcement modes[] = {MG_ENFORCE_DEFAULT, MG_ENFORCE_ALWAYS};
	struct fx f;
	size_t m, d, flows, allowed;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(load(&f, grid_policies), 10);
	CU_ASSERT_EQUAL_FATAL(load_as(&f, "c2", grid_policies_c2), 2);
	mismatches = 0;
	for (m = 0; m < MG_ARRAY_SIZE(modes); m++)
		for (d = 0; d < 2; d++) {
			f.params.enforcement = modes[m];
			f.params.default_local_cluster = d == 1;
			allowed = 0;
			flows = grid(&f, &allowed);
			printf("  grid %s dlc=%zu: %zu of %zu flows allowed\n",
			       mg_enforcement_name(modes[m]), d, allowed, flows);
			/* a grid where everything or nothing passes checks little */
			CU_ASSERT(allowed > (modes[m] == MG_ENFORCE_ALWAYS ? 0 : flows / 20));
			CU_ASSERT(allowed < flows - flows / 20);
		}
	CU_ASSERT_EQUAL(mismatches, 0);
	fx_fini(&f);
}

/* A small deterministic generator (xorshift) for random policy sets. */
static uint64_t rng_state;

static unsigned
rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % n);
}

struct out {
	char *p;
	size_t n, cap;
};

static void MG_PRINTF(2, 3) put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
	va_end(ap);
	if (k > 0 && (size_t)k < o->cap - o->n)
		o->n += (size_t)k;
}

static void
rand_selector(struct out *o)
{
	static const char *const keys[] = {"app",
	                                   "env",
	                                   "role",
	                                   "io.kubernetes.pod.namespace",
	                                   "io.cilium.k8s.policy.cluster",
	                                   "k8s:app"};
	static const char *const vals[] = {"web", "db", "api", "prod", "dev",
	                                   "ops", "a",  "b",   "c1",   "c2"};
	static const char *const ops[] = {"In", "NotIn", "Exists", "DoesNotExist"};
	unsigned n = rnd(3), i, op;

	if (rnd(8) == 0) {
		put(o, "{matchLabels: {\"reserved:%s\": \"\"}}", rnd(2) ? "host" : "world");
		return;
	}
	put(o, "{matchExpressions: [");
	for (i = 0; i < n; i++) {
		op = rnd(4);
		put(o, "%s{key: \"%s\", operator: %s", i ? ", " : "", keys[rnd(6)], ops[op]);
		if (op < 2)
			put(o, ", values: [%s, %s]", vals[rnd(10)], vals[rnd(10)]);
		put(o, "}");
	}
	put(o, "]}");
}

static void
rand_policy(struct out *o, unsigned idx)
{
	static const char *const sec[] = {"ingress", "egress", "ingressDeny", "egressDeny"};
	static const char *const protos[] = {"TCP", "UDP", "SCTP", "ANY", "\"\""};
	static const unsigned ports[] = {0, 22, 53, 80, 443, 8080};
	unsigned s, e, ne, k;

	if (rnd(4) == 0)
		put(o, "---\n" HDR_CCNP("r%u"), idx);
	else
		put(o, "---\n" HDR_CNP("r%u", "%s"), idx, rnd(2) ? "a" : rnd(2) ? "b" : "c");
	put(o, "spec:\n  endpointSelector: ");
	rand_selector(o);
	put(o, "\n");
	if (rnd(4) == 0)
		put(o, "  enableDefaultDeny: {ingress: %s, egress: %s}\n",
		    rnd(2) ? "true" : "false", rnd(2) ? "true" : "false");
	for (s = 0; s < 4; s++) {
		if (rnd(5) < 3)
			continue;
		ne = rnd(3);
		put(o, "  %s:%s\n", sec[s], ne ? "" : " []");
		for (e = 0; e < ne; e++) {
			unsigned l3 = rnd(4), l4 = rnd(2);

			put(o, "  - {");
			if (l3 > 0) {
				put(o, "%s: [", s & 1 ? "toEndpoints" : "fromEndpoints");
				for (k = 0; k < l3 - 1; k++) {
					if (k)
						put(o, ", ");
					rand_selector(o);
				}
				put(o, "]%s", l4 ? ", " : "");
			}
			if (l4) {
				put(o, "toPorts: [{ports: [");
				for (k = 0; k <= rnd(2); k++) {
					unsigned p = ports[rnd(6)];

					put(o, "%s{port: %u, protocol: %s", k ? ", " : "", p,
					    protos[rnd(5)]);
					if (p && rnd(3) == 0)
						put(o, ", endPort: %u", p + 5);
					put(o, "}");
				}
				put(o, "]}]");
			}
			put(o, "}\n");
		}
	}
}

static void
test_random_cross_check(void)
{
	struct out o;
	unsigned round, i;
	size_t flows = 0, allowed = 0;

	o.cap = 1 << 16;
	o.p = malloc(o.cap);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o.p);
	rng_state = 0x9e3779b97f4a7c15ull;
	mismatches = 0;
	for (round = 0; round < 24; round++) {
		struct fx f;

		fx_init(&f);
		o.n = 0;
		o.p[0] = '\0';
		for (i = 0; i < 8; i++)
			rand_policy(&o, i);
		if (load_as(&f, round & 1 ? "c2" : "c1", o.p) != 8) {
			printf("%s\n", o.p);
			CU_FAIL("random policy set did not load");
			fx_fini(&f);
			continue;
		}
		f.params.enforcement = round % 3 == 2 ? MG_ENFORCE_ALWAYS : MG_ENFORCE_DEFAULT;
		f.params.default_local_cluster = round % 4 != 3;
		flows += grid(&f, &allowed);
		fx_fini(&f);
	}
	CU_ASSERT_EQUAL(mismatches, 0);
	CU_ASSERT(allowed > 0 && allowed < flows);
	free(o.p);
}

static CU_TestInfo tests[] = {
        {"load_single", test_load_single},
        {"load_multi_doc", test_load_multi_doc},
        {"load_list", test_load_list},
        {"load_specs", test_load_specs},
        {"load_no_spec_is_error", test_load_no_spec_is_error},
        {"cnp_default_namespace", test_cnp_default_namespace},
        {"load_error_leaves_set_unchanged", test_load_error_leaves_set_unchanged},
        {"load_dir_fixtures", test_load_dir_fixtures},
        {"load_dir_order_and_rollback", test_load_dir_order_and_rollback},
        {"unsupported_peer_fields", test_unsupported_peer_fields},
        {"unsupported_l4_l7_fields", test_unsupported_l4_l7_fields},
        {"unknown_fields", test_unknown_fields},
        {"type_errors", test_type_errors},
        {"limits", test_limits},
        {"bad_args", test_bad_args},
        {"namespace_scoping", test_namespace_scoping},
        {"namespace_explicit_crosses", test_namespace_explicit_crosses},
        {"namespace_negative_only", test_namespace_negative_only},
        {"cluster_scoping", test_cluster_scoping},
        {"cluster_explicit", test_cluster_explicit},
        {"match_expressions", test_match_expressions},
        {"source_prefix", test_source_prefix},
        {"default_deny_per_direction", test_default_deny_per_direction},
        {"enable_default_deny_false", test_enable_default_deny_false},
        {"empty_entry_vs_empty_list", test_empty_entry_vs_empty_list},
        {"to_ports_without_l3", test_to_ports_without_l3},
        {"deny_beats_allow", test_deny_beats_allow},
        {"both_directions", test_both_directions},
        {"ports_and_protocols", test_ports_and_protocols},
        {"icmp_and_l3_only", test_icmp_and_l3_only},
        {"enforcement_always_never", test_enforcement_always_never},
        {"unknown_identity", test_unknown_identity},
        {"ccnp_subjects_and_peers", test_ccnp_subjects_and_peers},
        {"reserved_peer", test_reserved_peer},
        {"source_cluster", test_source_cluster},
        {"compile_bad_args", test_compile_bad_args},
        {"to_ports_empty_item", test_to_ports_empty_item},
        {"ccnp_namespace_ignored", test_ccnp_namespace_ignored},
        {"trace_names_rule", test_trace_names_rule},
        {"enforcement_names", test_enforcement_names},
        {"memory_and_revision", test_memory_and_revision},
        {"grid_cross_check", test_grid_cross_check},
        {"random_cross_check", test_random_cross_check},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("policy", tests)
