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

#include "mg_ipcache.h"
#include "mg_policy.h"
#include "mg_test.h"
#include "policy_priv.h" /* the POL_MAX_* limits */

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
	struct mg_ipcache *ipc; /* with CIDR identities (fx_cidr) */
	struct mg_cidr_ids *cid;
};

/* Named ports of the fixture's endpoints (union per identity). */
static const struct {
	uint32_t id;
	const char *name;
	uint8_t proto;
	uint16_t port;
} fixture_ports[] = {
        {A_WEB, "http", TCP, 80},   {A_WEB, "metrics", TCP, 9090}, {A_DB, "http", TCP, 8080},
        {A_DB, "pg", TCP, 5432},    {B_DB, "http", TCP, 80},       {B_DB, "http", TCP, 8085},
        {X_A_DB, "pg", TCP, 5432},  {X_A_DB, "dns", UDP, 53},      {C_PROD, "http", UDP, 8080},
        {C_PROD, "http", TCP, 443},
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
	for (i = 0; i < MG_ARRAY_SIZE(fixture_ports); i++)
		CU_ASSERT_EQUAL_FATAL(mg_identity_table_add_named_port(
		                              t, fixture_ports[i].id, fixture_ports[i].name,
		                              fixture_ports[i].proto, fixture_ports[i].port),
		                      0);
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
	mg_cidr_ids_free(f->cid);
	mg_ipcache_free(f->ipc);
}

/* Give the CIDR prefixes the set names their identities and ipcache entries. */
static void
fx_cidr(struct fx *f)
{
	uint32_t *chg = NULL;
	size_t n = 0;

	if (f->ipc == NULL) {
		struct mg_ipcache_params p = {.entries_hint = 64, .split_world = true};

		f->ipc = mg_ipcache_create(&p);
		f->cid = mg_cidr_ids_create();
		CU_ASSERT_PTR_NOT_NULL_FATAL(f->ipc);
		CU_ASSERT_PTR_NOT_NULL_FATAL(f->cid);
	}
	CU_ASSERT_EQUAL_FATAL(mg_cidr_ids_sync(f->cid, f->set, f->ids, f->ipc, &chg, &n, &f->err),
	                      0);
	CU_ASSERT(mg_ipcache_commit(f->ipc) >= 0);
	free(chg);
	mg_policy_free(f->pol);
	f->pol = NULL;
}

/* The identity of exactly this ipcache prefix (0: none). */
static uint32_t
prefix_id(struct fx *f, const char *prefix)
{
	struct mg_ipcache_entry e, got;

	CU_ASSERT_EQUAL_FATAL(mg_ipcache_parse_prefix(prefix, &e), 0);
	if (mg_ipcache_get(f->ipc, e.family, e.addr, e.plen, &got) != 0)
		return 0;
	return got.identity;
}

/* The identity an address maps to (longest prefix match). */
static uint32_t
addr_id(struct fx *f, const char *addr)
{
	struct mg_ipcache_entry e;

	CU_ASSERT_EQUAL_FATAL(mg_ipcache_parse_prefix(addr, &e), 0);
	return mg_ipcache_lookup(mg_ipcache_reader(f->ipc), e.family, e.addr);
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

static size_t bulk_equals_single(const struct mg_policy *pol, const uint32_t *ids, size_t n);

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
	CU_ASSERT_EQUAL(
	        load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n  egress: [{}]\n"), 1);
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
	                         "a") "spec: {endpointSelector: {}, ingress: [{}]}\n"
	                              "---\n---\n" HDR_CCNP(
	                                      "p2") "spec: {endpointSelector: {}, ingress: [{}]}\n"
	                                            "---\n" HDR_CNP("p3",
	                                                            "b") "spec: {endpointSelector: "
	                                                                 "{}, ingress: [{}]}\n"),
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
	                         "  spec: {endpointSelector: {}, ingress: [{}]}\n  status: {}\n"
	                         "- apiVersion: cilium.io/v2\n"
	                         "  kind: CiliumClusterwideNetworkPolicy\n"
	                         "  metadata: {name: y}\n"
	                         "  specs: [{endpointSelector: {}, egress: [{}]},\n"
	                         "          {endpointSelector: {}, ingressDeny: [{}]}]\n"),
	                2);
	CU_ASSERT_EQUAL(mg_policy_set_rules(f.set), 3);
	fx_fini(&f);
}

static void
test_load_specs(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("p", "a") "spec: {endpointSelector: {}, ingress: [{}]}\n"
	                                           "specs:\n- endpointSelector: {}\n"
	                                           "  egress: [{}]\n"
	                                           "  description: second\n"
	                                           "  labels: [{key: k, value: v}]\n"
	                                           "- endpointSelector: {}\n"
	                                           "  egressDeny: [{toEntities: [world]}]\n"),
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
	/* selects nobody */
	CU_ASSERT_EQUAL(load(&f,
	                     HDR_CNP("ok", "a") "spec:\n  endpointSelector: {matchLabels: {x: y}}\n"
	                                        "  ingress: [{}]\n"),
	                1);
	/* first document fine, second broken: nothing of this load stays */
	CU_ASSERT(load(&f,
	               HDR_CNP("p1", "a") "spec:\n  endpointSelector: {}\n  ingress: [{}]\n"
	                                  "---\n" HDR_CNP("p2",
	                                                  "a") "spec:\n  endpointSelector: {}\n"
	                                                       "  ingress: [{fromRequires: "
	                                                       "[{matchLabels: {a: b}}]}]\n") < 0);
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
	write_file(dir, "b.yml", HDR_CNP("b", "a") "spec: {endpointSelector: {}, ingress: [{}]}\n");
	write_file(dir, "a.yaml", HDR_CNP("a", "a") "spec: {endpointSelector: {}, egress: [{}]}\n");
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
test_rejected_fields(void)
{
	static const struct err_case c[] = {
	        /* narrow other rules in Cilium: ignoring them would widen access */
	        {RULE_HDR "  ingress:\n  - fromRequires: [{matchLabels: {env: prod}}]\n",
	         "t.yaml:7:5: ",
	         "spec.ingress[0].fromRequires: not supported: in Cilium it narrows"},
	        {RULE_HDR "  egress:\n  - toRequires: [{}]\n",
	         "t.yaml:7:5: ", "spec.egress[0].toRequires: not supported"},
	        {RULE_HDR "  ingress:\n  - authentication: {mode: required}\n",
	         "t.yaml:7:5: ", "spec.ingress[0].authentication: not supported"},
	        /* in a deny rule, skipping would widen access: refused */
	        {RULE_HDR "  ingressDeny:\n  - fromNodes: [{}]\n", "t.yaml:7:5: ",
	         "spec.ingressDeny[0].fromNodes: not enforced by a layer-4 gateway"},
	        {RULE_HDR "  ingressDeny:\n  - fromGroups: [{aws: {}}]\n",
	         "t.yaml:7:5: ", "spec.ingressDeny[0].fromGroups: not enforced"},
	        {RULE_HDR "  ingressDeny:\n  - fromRequires: [{}]\n",
	         "t.yaml:7:5: ", "spec.ingressDeny[0].fromRequires: not enforced"},
	        {RULE_HDR "  egressDeny:\n  - toServices: [{k8sService: {serviceName: x}}]\n",
	         "t.yaml:7:5: ", "spec.egressDeny[0].toServices: not enforced"},
	        {RULE_HDR "  egressDeny:\n  - toGroups: [{aws: {}}]\n",
	         "t.yaml:7:5: ", "cannot be skipped without widening access"},
	        {RULE_HDR "  egressDeny:\n  - toNodes: [{}]\n",
	         "t.yaml:7:5: ", "toNodes: not enforced"},
	        {RULE_HDR "  egressDeny:\n  - toPorts:\n    - rules: {http: [{}]}\n",
	         "t.yaml:8:7: ", "spec.egressDeny[0].toPorts[0].rules: not enforced"},
	        /* Cilium has no toFQDNs in deny rules */
	        {RULE_HDR "  egressDeny:\n  - toFQDNs: [{matchName: x.com}]\n",
	         "t.yaml:7:5: ", "unknown key 'toFQDNs'"},
	        /* what Cilium's rule validation refuses */
	        {RULE_HDR "  ingress:\n  - fromEndpoints: [{}]\n    fromCIDR: [10.0.0.0/8]\n",
	         "t.yaml:8:5: ", "combining fromEndpoints and fromCIDR is not supported"},
	        {RULE_HDR "  egress:\n  - toEntities: [world]\n    toFQDNs: [{matchName: a.com}]\n",
	         "t.yaml:8:5: ", "combining toEntities and toFQDNs"},
	        {RULE_HDR "  egress:\n  - toPorts: [{ports: [{port: 80}]}]\n"
	                  "    icmps: [{fields: [{type: 8}]}]\n",
	         "t.yaml:8:5: ", "icmps block may only be present without toPorts"},
	        {RULE_HDR "  egress:\n  - toServices: [{k8sService: {serviceName: x}}]\n"
	                  "    toPorts: [{ports: [{port: 80}]}]\n",
	         "t.yaml:8:5: ", "combining toServices and toPorts"},
	        /* entities, CIDRs and ICMP types that do not exist */
	        {RULE_HDR "  ingress:\n  - fromEntities: [host, everything]\n", "t.yaml:7:26: ",
	         "spec.ingress[0].fromEntities[1]: unsupported entity 'everything'"},
	        {RULE_HDR "  egress:\n  - toCIDR: [10.0.0.0/33]\n",
	         "t.yaml:7:14: ", "spec.egress[0].toCIDR[0]: '10.0.0.0/33' is not an IP address"},
	        {RULE_HDR "  egress:\n  - toCIDR: [example.com]\n",
	         "t.yaml:7:14: ", "is not an IP address or CIDR prefix"},
	        {RULE_HDR "  egress:\n  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [11.0.0.0/16]}]\n",
	         "t.yaml:7:45: ",
	         "except[0]: 11.0.0.0/16 is not within the allowed prefix 10.0.0.0/8"},
	        {RULE_HDR
	         "  egress:\n  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [\"fd00::/64\"]}]\n",
	         "t.yaml:7:45: ", "is not within the allowed prefix"},
	        {RULE_HDR "  egress:\n  - toCIDRSet: [{cidr: 10.0.0.1}]\n",
	         "t.yaml:7:24: ", "toCIDRSet[0].cidr: '10.0.0.1' is not a CIDR prefix"},
	        {RULE_HDR "  egress:\n  - toCIDRSet: [{cidrGroupRef: office}]\n",
	         "t.yaml:7:18: ", "toCIDRSet[0]: key 'cidrGroupRef' is not supported"},
	        {RULE_HDR "  egress:\n  - toCIDRSet: [{except: [10.0.0.0/8]}]\n",
	         "t.yaml:7:17: ", "toCIDRSet[0].cidr is required"},
	        {RULE_HDR "  ingress:\n  - icmps: [{fields: [{type: PacketTooBig}]}]\n",
	         "t.yaml:7:30: ", "ICMP type 'PacketTooBig' not found in IPv4"},
	        {RULE_HDR "  ingress:\n  - icmps: [{fields: [{type: Echo, family: IPv6}]}]\n",
	         "t.yaml:7:30: ", "ICMP type 'Echo' not found in IPv6"},
	        {RULE_HDR "  ingress:\n  - icmps: [{fields: [{type: 256}]}]\n",
	         "t.yaml:7:30: ", "256 is out of range [0, 255]"},
	        {RULE_HDR "  ingress:\n  - icmps: [{fields: [{type: 8, family: IPv5}]}]\n",
	         "t.yaml:7:41: ", "wrong family 'IPv5'"},
	        {RULE_HDR "  ingress:\n  - icmps: [{fields: [{family: IPv4}]}]\n",
	         "t.yaml:7:23: ", "an ICMP type is required"},
	        {RULE_HDR "  ingress:\n  - icmps: [{fields: [{type: 8, code: 0}]}]\n",
	         "t.yaml:7:33: ", "fields[0]: unknown key 'code'"},
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: 1, protocol: ICMP}]}]\n",
	         "t.yaml:7:44: ", "protocol ICMP is not accepted in toPorts"},
	        /* a rule has exactly one of endpointSelector and nodeSelector */
	        {HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n  nodeSelector: {}\n",
	         "t.yaml:6:3: ", "cannot have both endpointSelector and nodeSelector"},
	        {RULE_HDR "  log: {value: a, level: b}\n",
	         "t.yaml:6:19: ", "log: unknown key 'level'"},
	};

	check_errors(c, MG_ARRAY_SIZE(c));
}

/*
 * What Cilium's rule validation refuses (pkg/policy/api/rule_validation.go)
 * is refused here too, with the reason: a rule without entries in any
 * section; L7 rules other than DNS on a port that is not TCP; DNS rules on
 * ingress; two kinds of L7 rules in one port rule; the protocols only
 * Cilium's extended IP protocols option accepts.
 */
static void
test_cilium_rule_validation(void)
{
	static const struct err_case c[] = {
	        /* no section with an entry: only the selector, only enableDefaultDeny,
	         * only empty lists or nulls; a host rule too */
	        {RULE_HDR, "t.yaml:5:3: ",
	         "spec: a rule needs at least one of ingress, ingressDeny, egress and egressDeny "
	         "with an entry (Cilium refuses the policy; `ingress: [{}]` selects the subjects "
	         "and allows nothing)"},
	        {RULE_HDR "  enableDefaultDeny: {ingress: true, egress: true}\n", "t.yaml:5:3: ",
	         "spec: a rule needs at least one of ingress, ingressDeny, egress and egressDeny"},
	        {RULE_HDR "  ingress: []\n  egress: []\n  ingressDeny: ~\n  egressDeny:\n",
	         "t.yaml:5:3: ", "spec: a rule needs at least one of"},
	        {HDR_CCNP("h") "spec:\n  nodeSelector: {}\n  ingress: []\n",
	         "t.yaml:5:3: ", "spec: a rule needs at least one of"},
	        {HDR_CNP("p", "a") "specs:\n- {endpointSelector: {}, ingress: [{}]}\n"
	                           "- {endpointSelector: {}, egress: []}\n",
	         "t.yaml:6:3: ", "specs[1]: a rule needs at least one of"},
	        /* L7 rules other than DNS on a port that is not TCP */
	        {RULE_HDR "  ingress:\n  - toPorts:\n    - ports: [{port: \"80\", protocol: UDP}]\n"
	                  "      rules: {http: [{method: GET}]}\n",
	         "t.yaml:8:38: ",
	         "spec.ingress[0].toPorts[0].ports[0]: L7 rules can only apply to TCP (not UDP), "
	         "except for DNS rules (Cilium refuses the policy)"},
	        {RULE_HDR "  egress:\n  - toPorts:\n    - ports: [{port: \"80\", protocol: ANY}]\n"
	                  "      rules: {http: [{}]}\n",
	         "t.yaml:8:38: ",
	         "spec.egress[0].toPorts[0].ports[0]: L7 rules can only apply to "
	         "TCP (not ANY)"},
	        {RULE_HDR "  egress:\n  - toPorts:\n    - ports: [{port: \"80\", protocol: TCP}, "
	                  "{port: \"81\"}]\n      rules: {http: [{}]}\n",
	         "t.yaml:8:44: ",
	         "spec.egress[0].toPorts[0].ports[1]: L7 rules can only apply to "
	         "TCP (not ANY)"},
	        {RULE_HDR
	         "  ingress:\n  - toPorts:\n    - ports: [{port: \"9092\", protocol: SCTP}]\n"
	         "      rules: {kafka: [{topic: t}]}\n",
	         "t.yaml:8:40: ", "L7 rules can only apply to TCP (not SCTP)"},
	        {RULE_HDR "  egress:\n  - toPorts:\n    - ports: [{port: \"7\", protocol: UDP}]\n"
	                  "      rules: {l7proto: echo, l7: [{k: v}]}\n",
	         "t.yaml:8:37: ", "L7 rules can only apply to TCP (not UDP)"},
	        /* DNS rules on ingress, whatever the protocol */
	        {RULE_HDR "  ingress:\n  - toPorts:\n    - ports: [{port: \"53\", protocol: TCP}]\n"
	                  "      rules:\n        dns: [{matchPattern: \"*\"}]\n",
	         "t.yaml:10:9: ",
	         "spec.ingress[0].toPorts[0].rules.dns: DNS rules are not allowed on ingress "
	         "(Cilium refuses the policy)"},
	        /* two kinds in one port rule */
	        {RULE_HDR "  egress:\n  - toPorts:\n    - ports: [{port: \"53\", protocol: UDP}]\n"
	                  "      rules: {dns: [{matchName: a.com}], http: []}\n",
	         "t.yaml:9:14: ",
	         "spec.egress[0].toPorts[0].rules: multiple L7 protocol rule types in one rule"},
	        {RULE_HDR "  egress:\n  - toPorts:\n    - ports: [{port: \"53\", protocol: UDP}]\n"
	                  "      rules: [dns]\n",
	         "t.yaml:9:14: ", "spec.egress[0].toPorts[0].rules: expected a mapping"},
	        /* protocols Cilium takes only with --enable-extended-ip-protocols */
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: \"0\", protocol: VRRP}]}]\n",
	         "t.yaml:7:46: ",
	         "spec.ingress[0].toPorts[0].ports[0].protocol: protocol VRRP is accepted by "
	         "Cilium only when its agent runs with --enable-extended-ip-protocols; meshgate "
	         "does not enforce it"},
	        {RULE_HDR "  egressDeny:\n  - toPorts: [{ports: [{protocol: IGMP}]}]\n",
	         "t.yaml:7:35: ",
	         "protocol IGMP is accepted by Cilium only when its agent runs "
	         "with --enable-extended-ip-protocols"},
	        /* ICMP keeps its hint */
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: \"0\", protocol: ICMPv6}]}]\n",
	         "t.yaml:7:46: ",
	         "protocol ICMPv6 is not accepted in toPorts (use icmps for ICMP "
	         "types)"},
	};
	static const char *const ok[] = {
	        /* one entry anywhere is enough, an empty list beside it is fine */
	        RULE_HDR "  ingress: [{}]\n",
	        RULE_HDR "  egressDeny: [{}]\n  enableDefaultDeny: {egress: false}\n",
	        RULE_HDR "  ingress: []\n  egress: [{}]\n",
	        RULE_HDR "  ingressDeny: [null]\n",
	        /* DNS rules on UDP or ANY in egress; HTTP on TCP; rules without items */
	        RULE_HDR "  egress:\n  - toPorts:\n    - ports: [{port: \"53\", protocol: UDP}, "
	                 "{port: \"53\", protocol: ANY}]\n"
	                 "      rules: {dns: [{matchPattern: \"*\"}]}\n",
	        RULE_HDR "  ingress:\n  - toPorts:\n    - ports: [{port: \"80\", protocol: TCP}]\n"
	                 "      rules: {http: [{method: GET}]}\n",
	        RULE_HDR "  ingress:\n  - toPorts:\n    - ports: [{port: \"80\", protocol: UDP}]\n"
	                 "      rules: {http: []}\n",
	        RULE_HDR "  ingress:\n  - toPorts:\n    - rules: {http: [{method: GET}]}\n",
	};
	size_t i;

	check_errors(c, MG_ARRAY_SIZE(c));
	for (i = 0; i < MG_ARRAY_SIZE(ok); i++) {
		struct fx f;

		fx_init(&f);
		if (load(&f, ok[i]) != 1)
			printf("  ok case %zu refused\n", i);
		CU_ASSERT_EQUAL(mg_policy_set_count(f.set), 1);
		fx_fini(&f);
	}
}

struct warn_list {
	size_t n;
	char text[8][256];
};

static void
collect_warning(const struct mg_policy_problem *pr, void *arg)
{
	struct warn_list *w = arg;

	CU_ASSERT(pr->warning);
	if (w->n < MG_ARRAY_SIZE(w->text))
		snprintf(w->text[w->n], sizeof(w->text[0]), "%s:%u:%u: %s", pr->file, pr->line,
		         pr->col, pr->msg);
	w->n++;
}

/* Allow rules the gateway cannot enforce are skipped (allow nothing) with a warning. */
static void
test_skipped_allow_rules(void)
{
	static const struct {
		const char *yaml, *warning;
	} c[] = {
	        {RULE_HDR "  egress:\n  - toFQDNs: [{matchName: x.com}]\n",
	         "t.yaml:7:5: spec.egress[0].toFQDNs: not enforced by a layer-4 gateway; this "
	         "allow rule is skipped"},
	        {RULE_HDR "  egress:\n  - toServices: [{k8sService: {serviceName: x}}]\n",
	         "t.yaml:7:5: spec.egress[0].toServices: not enforced"},
	        {RULE_HDR "  egress:\n  - toGroups: [{aws: {}}]\n",
	         "t.yaml:7:5: spec.egress[0].toGroups: not enforced"},
	        {RULE_HDR "  egress:\n  - toNodes: [{}]\n",
	         "t.yaml:7:5: spec.egress[0].toNodes: not"},
	        {RULE_HDR "  ingress:\n  - fromNodes: [{}]\n",
	         "t.yaml:7:5: spec.ingress[0].fromNodes: not enforced"},
	        {RULE_HDR "  ingress:\n  - fromGroups: [{aws: {}}]\n",
	         "t.yaml:7:5: spec.ingress[0].fromGroups: not enforced"},
	        {RULE_HDR "  ingress:\n  - toPorts:\n    - ports: [{port: 80, protocol: TCP}]\n"
	                  "      rules: {http: [{method: GET}]}\n",
	         "t.yaml:9:7: spec.ingress[0].toPorts[0].rules: not enforced by a layer-4 "
	         "gateway; this allow rule is skipped"},
	        {RULE_HDR "  egress:\n  - toPorts:\n    - ports: [{port: 443}]\n"
	                  "      terminatingTLS: {secret: {name: x}}\n",
	         "t.yaml:9:7: spec.egress[0].toPorts[0].terminatingTLS: not enforced"},
	        {RULE_HDR "  egress:\n  - toPorts:\n    - ports: [{port: 443}]\n"
	                  "      originatingTLS: {secret: {name: x}}\n",
	         "t.yaml:9:7: spec.egress[0].toPorts[0].originatingTLS"},
	        {RULE_HDR "  egress:\n  - toPorts:\n    - ports: [{port: 443}]\n"
	                  "      serverNames: [a.com]\n",
	         "t.yaml:9:7: spec.egress[0].toPorts[0].serverNames"},
	        {RULE_HDR "  egress:\n  - toPorts:\n    - ports: [{port: 80}]\n"
	                  "      listener: {envoyConfig: {kind: x, name: y}, name: z}\n",
	         "t.yaml:9:7: spec.egress[0].toPorts[0].listener"},
	};
	size_t i;

	for (i = 0; i < MG_ARRAY_SIZE(c); i++) {
		struct warn_list w = {0};
		struct fx f;
		unsigned dir = strstr(c[i].yaml, "egress") ? 1 : 0;

		fx_init(&f);
		CU_ASSERT_EQUAL_FATAL(load(&f, c[i].yaml), 1);
		CU_ASSERT_EQUAL(mg_policy_set_warnings(f.set, collect_warning, &w), 1);
		CU_ASSERT_EQUAL(w.n, 1);
		if (strncmp(w.text[0], c[i].warning, strlen(c[i].warning)) != 0)
			printf("  case %zu: got '%s'\n", i, w.text[0]);
		CU_ASSERT_EQUAL(strncmp(w.text[0], c[i].warning, strlen(c[i].warning)), 0);
		/* the skipped entry allows nothing, yet its rule enforces the direction */
		if (dir == 1) {
			CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 80), DENY_E);
			CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 443), DENY_E);
			CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD_IPV4, TCP, 443), DENY_E);
		} else {
			CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 80), DENY_I);
			CU_ASSERT_EQUAL(verdict(&f, MG_ID_REMOTE_NODE, A_WEB, TCP, 80), DENY_I);
		}
		/* the other namespace is not a subject */
		CU_ASSERT_EQUAL(verdict(&f, B_WEB, B_DB, TCP, 80), ALLOW);
		fx_fini(&f);
	}
}

static void
test_skip_keeps_other_entries(void)
{
	struct warn_list w = {0};
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(load(&f, RULE_HDR
	                           "  egress:\n"
	                           "  - toEndpoints: [{matchLabels: {app: db}}]\n"
	                           "    toPorts:\n    - ports: [{port: 80, protocol: TCP}]\n"
	                           "      rules: {http: [{method: GET}]}\n"
	                           "  - toEndpoints: [{matchLabels: {app: db}}]\n"
	                           "    toPorts: [{ports: [{port: 5432}]}]\n"
	                           "  - toEntities: [world]\n"
	                           "  log: {value: audit}\n"
	                           "  description: an L7 rule, a plain one, an entity\n"),
	                      1);
	CU_ASSERT_EQUAL(mg_policy_set_warnings(f.set, collect_warning, &w), 1);
	/* the L7-filtered port is never plainly open */
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 80), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 5432), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD_IPV4, UDP, 53), ALLOW);
	{
		struct mg_policy_trace t;

		/* a skipped rule never decides */
		mg_policy_trace(f.set, f.ids, &f.params, A_WEB, A_DB, TCP, 80, &t);
		CU_ASSERT_EQUAL(t.egress.name[0], '\0');
		CU_ASSERT(t.egress.enforced);
		mg_policy_trace(f.set, f.ids, &f.params, A_WEB, A_DB, TCP, 5432, &t);
		CU_ASSERT_EQUAL(t.egress.entry_index, 1);
	}
	fx_fini(&f);
}

/* nodeSelector: a host firewall rule, enforced by Cilium on the nodes; skipped here. */
static void
test_node_selector_skipped(void)
{
	struct warn_list w = {0};
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(load(&f,
	                           HDR_CCNP("host-fw") "spec:\n  nodeSelector: {}\n"
	                                               "  ingress:\n  - fromEntities: [cluster]\n"
	                                               "  egress: [{}]\n"),
	                      1);
	CU_ASSERT_EQUAL(mg_policy_set_warnings(f.set, collect_warning, &w), 1);
	CU_ASSERT_STRING_EQUAL(w.text[0],
	                       "t.yaml:5:3: spec.nodeSelector: a host firewall rule, enforced by "
	                       "Cilium on the selected nodes and not by the gateway; this rule is "
	                       "skipped");
	CU_ASSERT_EQUAL(verdict(&f, MG_ID_WORLD, MG_ID_HOST, TCP, 22), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, MG_ID_HOST, MG_ID_WORLD, TCP, 22), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 22), ALLOW);
	/* a deny section with what cannot be enforced is refused even here */
	CU_ASSERT(load(&f, HDR_CCNP("h2") "spec:\n  nodeSelector: {}\n"
	                                  "  egressDeny: [{toGroups: [{aws: {}}]}]\n") < 0);
	CU_ASSERT_EQUAL(mg_policy_set_count(f.set), 1);
	fx_fini(&f);
}

static void
test_unknown_fields(void)
{
	static const struct err_case c[] = {
	        {RULE_HDR "  ingres: []\n", "t.yaml:6:3: ", "spec: unknown key 'ingres'"},
	        {RULE_HDR "  ingress:\n  - fromEndpoint: [{}]\n",
	         "t.yaml:7:5: ", "spec.ingress[0]: unknown key 'fromEndpoint'"},
	        /* toEndpoints is an egress field */
	        {RULE_HDR "  ingress:\n  - toEndpoints: [{}]\n", "t.yaml:7:5: ", "unknown key"},
	        {RULE_HDR "  egress:\n  - toPorts: [{ports: [{port: 80, proto: TCP}]}]\n",
	         "t.yaml:7:35: ", "ports[0]: unknown key 'proto'"},
	        {HDR_CNP("p", "a") "spec:\n  endpointSelector: {matchLabel: {a: b}}\n",
	         "t.yaml:5:22: ", "endpointSelector: unknown key 'matchLabel'"},
	        {"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
	         "metadata: {name: p, nmespace: a}\nspec: {endpointSelector: {}}\n",
	         "t.yaml:3:21: ", "metadata: unknown key 'nmespace'"},
	        {HDR_CNP("p", "a") "spec: {endpointSelector: {}}\nextra: 1\n",
	         "t.yaml:5:1: ", "unknown key 'extra'"},
	        {HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n  endpointSelector: {}\n",
	         "t.yaml:6:3: ", "duplicate key"},
	};

	check_errors(c, MG_ARRAY_SIZE(c));
}

/* Two equal keys at any level of a policy: refused at the second, naming the first. */
static void
test_duplicate_keys(void)
{
	static const struct err_case c[] = {
	        /* the issue's case: two labels ANDed would select nothing, leaving db open */
	        {HDR_CNP("p", "a") "spec:\n  endpointSelector:\n    matchLabels:\n"
	                           "      app: db\n      app: backend\n  ingress: [{}]\n",
	         "t.yaml:8:7: ", "duplicate key 'app' (first at line 7)"},
	        {HDR_CNP("p",
	                 "a") "spec:\n  endpointSelector: {matchLabels: {app: db, \"app\": x}}\n"
	                      "  ingress: [{}]\n",
	         "t.yaml:5:45: ", "duplicate key 'app' (first at line 5)"},
	        {RULE_HDR "  ingress:\n  - fromEndpoints:\n    - matchLabels:\n        app: web\n"
	                  "        'app': api\n",
	         "t.yaml:10:9: ", "duplicate key 'app' (first at line 9)"},
	        /* a matchExpressions item */
	        {HDR_CNP("p", "a") "spec:\n  endpointSelector:\n    matchExpressions:\n"
	                           "    - key: app\n      operator: In\n      values: [db]\n"
	                           "      operator: NotIn\n  ingress: [{}]\n",
	         "t.yaml:10:7: ", "duplicate key 'operator' (first at line 8)"},
	        /* a toPorts item, and a port of it */
	        {RULE_HDR "  ingress:\n  - toPorts:\n    - ports: [{port: \"80\"}]\n"
	                  "      ports: [{port: \"443\"}]\n",
	         "t.yaml:9:7: ", "duplicate key 'ports' (first at line 8)"},
	        {RULE_HDR "  egress:\n  - toPorts: [{ports: [{port: \"80\", protocol: TCP, port: "
	                  "\"443\"}]}]\n",
	         "t.yaml:7:52: ", "duplicate key 'port' (first at line 7)"},
	        /* an entry, the rule, enableDefaultDeny */
	        {RULE_HDR "  egress:\n  - toEndpoints: [{}]\n    toEndpoints: []\n",
	         "t.yaml:8:5: ", "duplicate key 'toEndpoints' (first at line 7)"},
	        {RULE_HDR "  ingress: [{}]\n  ingress: []\n",
	         "t.yaml:7:3: ", "duplicate key 'ingress' (first at line 6)"},
	        {RULE_HDR "  ingress: [{}]\n  enableDefaultDeny: {ingress: false, ingress: true}\n",
	         "t.yaml:7:39: ", "duplicate key 'ingress' (first at line 7)"},
	        /* metadata, and the document itself */
	        {"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: p\n"
	         "  namespace: a\n  namespace: b\nspec: {endpointSelector: {}, ingress: [{}]}\n",
	         "t.yaml:6:3: ", "duplicate key 'namespace' (first at line 5)"},
	        {HDR_CNP("p", "a") "spec: {endpointSelector: {}, ingress: [{}]}\nkind: List\n",
	         "t.yaml:5:1: ", "duplicate key 'kind' (first at line 2)"},
	        /* inside a List item */
	        {"apiVersion: v1\nkind: List\nitems:\n- apiVersion: cilium.io/v2\n"
	         "  kind: CiliumNetworkPolicy\n  metadata: {name: p}\n"
	         "  spec: {endpointSelector: {}, ingress: [{}]}\n  metadata: {name: q}\n",
	         "t.yaml:8:3: ", "duplicate key 'metadata' (first at line 6)"},
	};

	check_errors(c, MG_ARRAY_SIZE(c));
}

/* A source prefix makes a different key: both requirements hold (Cilium's own semantics). */
static void
test_prefixed_keys_not_duplicates(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector:\n"
	                                                 "    matchLabels: {k8s:app: db, app: db}\n"
	                                                 "  ingress: [{}]\n"),
	                      1);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 80), ALLOW);
	fx_fini(&f);
}

static void
test_type_errors(void)
{
	static const struct err_case c[] = {
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: \"70000\"}]}]\n",
	         "t.yaml:7:31: ", "70000 is out of range"},
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: 70000}]}]\n",
	         "t.yaml:7:31: ", "out of range"},
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: \"a_b\"}]}]\n",
	         "t.yaml:7:31: ", "'a_b' is not a port number or name"},
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: \"-http\"}]}]\n",
	         "t.yaml:7:31: ", "not a port number or name"},
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: \"a-very-long-name1\"}]}]\n",
	         "t.yaml:7:31: ", "not a port number or name"},
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: \"08\"}]}]\n",
	         "t.yaml:7:31: ", "not a port number or name"},
	        {RULE_HDR "  ingress:\n  - toPorts: [{ports: [{port: http, endPort: 90}]}]\n",
	         "t.yaml:7:46: ", "a range cannot start at a named port"},
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

/* A policy of @p entries ingress entries of @p peers peers each; @p specs extra specs. */
static char *
big_policy(unsigned entries, unsigned peers, unsigned specs)
{
	size_t cap = (size_t)entries * peers * 40 + (size_t)specs * 40 + 4096, n;
	char *y = malloc(cap);

	if (y == NULL)
		return NULL;
	n = (size_t)snprintf(y, cap, HDR_CNP("big", "a") "specs:\n");
	for (unsigned s = 0; s < specs; s++)
		n += (size_t)snprintf(y + n, cap - n, "- {endpointSelector: {}}\n");
	n += (size_t)snprintf(y + n, cap - n, "- endpointSelector: {}\n  ingress:\n");
	for (unsigned e = 0; e < entries; e++) {
		n += (size_t)snprintf(y + n, cap - n, "  - fromEndpoints:\n");
		for (unsigned i = 0; i < peers; i++)
			n += (size_t)snprintf(y + n, cap - n, "    - {matchLabels: {p%u: v%u}}\n",
			                      i, e);
	}
	return y;
}

/*
 * docs/reliability.md, "Limits": the policy set's counts. More peers in one
 * entry than POL_MAX_PEERS, more selectors in the set than
 * POL_MAX_SELECTORS, more specs in a policy than POL_MAX_RULES: the load
 * fails with the limit named and nothing of the file is kept.
 */
static void
test_limits_set(void)
{
	static const struct {
		unsigned entries, peers, specs;
		const char *msg;
	} c[] = {
	        {1, POL_MAX_PEERS + 1, 0, "more than 1024 items"},
	        {POL_MAX_SELECTORS / POL_MAX_PEERS + 1, POL_MAX_PEERS, 0, "too many selectors"},
	        {0, 0, POL_MAX_RULES + 1, "more than 65536 items"},
	};
	struct fx f;

	for (size_t i = 0; i < MG_ARRAY_SIZE(c); i++) {
		char *y = big_policy(c[i].entries, c[i].peers, c[i].specs);

		CU_ASSERT_PTR_NOT_NULL_FATAL(y);
		fx_init(&f);
		CU_ASSERT(load(&f, y) < 0);
		if (strstr(f.err.msg, c[i].msg) == NULL)
			fprintf(stderr, "case %zu: %s\n", i, f.err.msg);
		CU_ASSERT_PTR_NOT_NULL(strstr(f.err.msg, c[i].msg));
		CU_ASSERT_EQUAL(mg_policy_set_count(f.set), 0);
		fx_fini(&f);
		free(y);
	}
	/* at the peers limit: loads */
	{
		char *y = big_policy(1, POL_MAX_PEERS, 0);

		CU_ASSERT_PTR_NOT_NULL_FATAL(y);
		fx_init(&f);
		CU_ASSERT(load(&f, y) >= 0);
		CU_ASSERT_EQUAL(mg_policy_set_count(f.set), 1);
		fx_fini(&f);
		free(y);
	}
}

/* @p head, then @p n items printed from @p item (one %u: the index), then @p tail. */
static char *
repeat_yaml(const char *head, const char *item, unsigned n, const char *tail)
{
	size_t cap = strlen(head) + strlen(tail) + (size_t)n * (strlen(item) + 16) + 1, len;
	char *y = malloc(cap);

	if (y == NULL)
		return NULL;
	len = (size_t)snprintf(y, cap, "%s", head);
	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(y + len, cap - len, item, i + 1);
	snprintf(y + len, cap - len, "%s", tail);
	return y;
}

/*
 * docs/reliability.md, "Limits": the per-entry caps and the policy count.
 * One item past each limit fails the load with the limit named and keeps
 * nothing of the file; exactly at the limit it loads.
 */
static void
test_limits_items(void)
{
	static const char cidr_set[] = HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n"
	                                                 "  ingress:\n  - fromCIDRSet:\n"
	                                                 "    - cidr: 2001:db8::/32\n"
	                                                 "      except:\n";
	static const struct {
		const char *what, *head, *item, *tail;
		unsigned limit;
		const char *msg;
	} c[] = {
	        {"entries per section",
	         HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n  ingress:\n",
	         "  - fromEntities: [world]\n", "", POL_MAX_ENTRIES, "more than 4096 items"},
	        {"ports per entry",
	         HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n  ingress:\n"
	                           "  - toPorts:\n    - ports:\n",
	         "      - {port: \"%u\", protocol: TCP}\n", "", POL_MAX_PORTS, "more than 1024"},
	        {"values per In",
	         HDR_CNP("p", "a") "spec:\n  ingress: [{}]\n  endpointSelector:\n"
	                           "    matchExpressions:\n"
	                           "    - key: app\n      operator: In\n      values:\n",
	         "      - v%u\n", "", POL_MAX_VALUES, "more than 1024 items"},
	        {"CIDR prefixes per entry",
	         HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n  ingress:\n"
	                           "  - fromCIDR:\n",
	         "    - 2001:db8:%x::/48\n", "", POL_MAX_PREFIXES, "more than 1024"},
	        /* one selector requirement each: more is not "out of memory" */
	        {"except per CIDR rule", cidr_set, "      - 2001:db8:%x::/48\n", "",
	         POL_MAX_EXCEPTS, "except: more than 255 items"},
	        /* cidr and except of all the rules of an entry */
	        {"CIDR prefixes per entry, sets",
	         HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n  ingress:\n"
	                           "  - fromCIDRSet:\n",
	         "    - {cidr: \"2001:db8:%x::/48\"}\n", "", POL_MAX_PREFIXES, "more than 1024"},
	        {"policies in a file", "",
	         "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
	         "metadata: {name: p%u, namespace: a}\n"
	         "spec: {endpointSelector: {}, ingress: [{}]}\n",
	         "", POL_MAX_POLICIES, "too many policies (limit 65536)"},
	        {"policies in a List", "apiVersion: v1\nkind: List\nitems:\n",
	         "- {apiVersion: cilium.io/v2, kind: CiliumNetworkPolicy, "
	         "metadata: {name: p%u, namespace: a}, "
	         "spec: {endpointSelector: {}, ingress: [{}]}}\n",
	         "", POL_MAX_POLICIES, "more than 65536 items"},
	};
	struct fx f;

	for (size_t i = 0; i < MG_ARRAY_SIZE(c); i++) {
		for (unsigned extra = 0; extra <= 1; extra++) {
			char *y = repeat_yaml(c[i].head, c[i].item, c[i].limit + extra, c[i].tail);
			int rc;

			CU_ASSERT_PTR_NOT_NULL_FATAL(y);
			fx_init(&f);
			rc = load(&f, y);
			if (extra) {
				CU_ASSERT(rc < 0);
				if (rc >= 0 || strstr(f.err.msg, c[i].msg) == NULL)
					fprintf(stderr, "%s, %u + 1: rc %d, %s\n", c[i].what,
					        c[i].limit, rc, f.err.msg);
				CU_ASSERT_PTR_NOT_NULL(strstr(f.err.msg, c[i].msg));
				CU_ASSERT_EQUAL(mg_policy_set_count(f.set), 0);
			} else {
				if (rc < 0)
					fprintf(stderr, "%s, %u: %s\n", c[i].what, c[i].limit,
					        f.err.msg);
				CU_ASSERT(rc >= 0);
				CU_ASSERT(mg_policy_set_count(f.set) >= 1);
			}
			fx_fini(&f);
			free(y);
		}
	}
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
	{
		const uint32_t ids[] = {A_WEB, A_API, A_DB, B_WEB, UNKNOWN_ID};

		CU_ASSERT_EQUAL(bulk_equals_single(f.pol, ids, MG_ARRAY_SIZE(ids)), 25);
	}
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
	        load(&f,
	             HDR_CNP("first",
	                     "a") "spec:\n  endpointSelector: {}\n"
	                          "  ingress:\n"
	                          "  - fromEndpoints: [{matchLabels: {app: "
	                          "db}}]\n"
	                          "  - fromEndpoints: [{matchLabels: {app: "
	                          "api}}]\n"
	                          "---\n" HDR_CCNP(
	                                  "second") "specs:\n"
	                                            "- {endpointSelector: {}, ingressDeny: "
	                                            "[{toPorts: [{ports: [{port: \"98\"}]}]}]}\n"
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

/*
 * A subject that only rules with enableDefaultDeny false select is open in
 * that direction, yet selected: the trace says so (selected), so that it
 * is not described as a subject no policy selects.
 */
static void
test_trace_selected_without_default_deny(void)
{
	struct mg_policy_trace t;
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(load(&f,
	                           HDR_CNP("web-add", "a") "spec:\n  endpointSelector:\n"
	                                                   "    matchLabels: {app: web}\n"
	                                                   "  enableDefaultDeny: {ingress: false}\n"
	                                                   "  ingress:\n  - fromEndpoints:\n"
	                                                   "    - matchLabels: {app: api}\n"),
	                      1);
	/* selected, not default deny, no rule allows: open */
	CU_ASSERT_EQUAL(mg_policy_trace(f.set, f.ids, &f.params, A_DB, A_WEB, TCP, 22, &t), 0);
	CU_ASSERT_EQUAL(t.verdict, ALLOW);
	CU_ASSERT_TRUE(t.ingress.allowed);
	CU_ASSERT_FALSE(t.ingress.enforced);
	CU_ASSERT_TRUE(t.ingress.selected);
	CU_ASSERT_EQUAL(t.ingress.name[0], '\0');
	/* the rule's allow is named, the direction still open */
	CU_ASSERT_EQUAL(mg_policy_trace(f.set, f.ids, &f.params, A_API, A_WEB, TCP, 22, &t), 0);
	CU_ASSERT_STRING_EQUAL(t.ingress.name, "web-add");
	CU_ASSERT_FALSE(t.ingress.enforced);
	CU_ASSERT_TRUE(t.ingress.selected);
	/* nothing selects db's ingress nor web's egress */
	CU_ASSERT_EQUAL(mg_policy_trace(f.set, f.ids, &f.params, A_WEB, A_DB, TCP, 22, &t), 0);
	CU_ASSERT_FALSE(t.ingress.selected);
	CU_ASSERT_FALSE(t.ingress.enforced);
	CU_ASSERT_FALSE(t.egress.selected);
	/* enforcement always: default deny without being selected */
	f.params.enforcement = MG_ENFORCE_ALWAYS;
	CU_ASSERT_EQUAL(mg_policy_trace(f.set, f.ids, &f.params, A_WEB, A_DB, TCP, 22, &t), 0);
	CU_ASSERT_TRUE(t.ingress.enforced);
	CU_ASSERT_FALSE(t.ingress.selected);
	f.params.enforcement = MG_ENFORCE_DEFAULT;
	/* another rule without the flag: selected and default deny */
	CU_ASSERT_EQUAL_FATAL(load(&f, HDR_CNP("web-strict", "a") "spec:\n  endpointSelector: {}\n"
	                                                          "  ingress: [{}]\n"),
	                      1);
	CU_ASSERT_EQUAL(mg_policy_trace(f.set, f.ids, &f.params, A_DB, A_WEB, TCP, 22, &t), 0);
	CU_ASSERT_EQUAL(t.verdict, DENY_I);
	CU_ASSERT_TRUE(t.ingress.enforced);
	CU_ASSERT_TRUE(t.ingress.selected);
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

/* ---- entities ---- */

/* A policy naming a v4 and a v6 prefix, selecting nobody: it only makes CIDR identities. */
#define CIDR_MAKER                                                                               \
	"---\n" HDR_CCNP("cidr-maker") "spec:\n  endpointSelector: {matchLabels: {app: none}}\n" \
	                               "  egress:\n  - toCIDR: [10.0.0.0/8, \"fd00::/64\"]\n"

static void
test_entities(void)
{
	static const struct {
		const char *entity;
		const char *expect; /* one char per source below: 1 allowed, 0 denied */
	} c[] = {
	        /*                  1 2 3 4 5 6 7 8 9 10 db bdb xdb nocl unk c4 c6 */
	        {"host", "10000000000000000"},           {"remote-node", "00000100000000000"},
	        {"kube-apiserver", "00000010000000000"}, {"ingress", "00000001000000000"},
	        {"health", "00010000000000000"},         {"init", "00001000000000000"},
	        {"unmanaged", "00100000000000000"},      {"world", "01000000110000011"},
	        {"world-ipv4", "00000000100000010"},     {"world-ipv6", "00000000010000001"},
	        {"cluster", "10111111001100000"},        {"all", "11111111111111111"},
	        {"none", "00000000000000000"},
	};
	uint32_t src[17] = {1, 2,  3,    4,    5,      6,         7,         8,
	                    9, 10, A_DB, B_DB, X_A_DB, NOCLUSTER, UNKNOWN_ID};
	size_t i, j;

	for (i = 0; i < MG_ARRAY_SIZE(c); i++) {
		char yaml[1024];
		struct fx f;

		fx_init(&f);
		snprintf(yaml, sizeof(yaml),
		         HDR_CNP("p", "a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
		                           "  ingress:\n  - fromEntities: [%s]\n" CIDR_MAKER,
		         c[i].entity);
		CU_ASSERT_EQUAL_FATAL(load(&f, yaml), 2);
		fx_cidr(&f);
		src[15] = prefix_id(&f, "10.0.0.0/8");
		src[16] = prefix_id(&f, "fd00::/64");
		CU_ASSERT(mg_identity_is_local_scope(src[15]));
		CU_ASSERT(mg_identity_is_local_scope(src[16]));
		for (j = 0; j < MG_ARRAY_SIZE(src); j++) {
			enum mg_verdict want = c[i].expect[j] == '1' ? ALLOW : DENY_I;
			enum mg_verdict got = verdict(&f, src[j], A_WEB, TCP, 80);

			if (got != want)
				printf("  entity %s from %u: got %d want %d\n", c[i].entity, src[j],
				       got, want);
			CU_ASSERT_EQUAL(got, want);
		}
		/* entities are not scoped to the namespace: the subject still is */
		CU_ASSERT_EQUAL(verdict(&f, MG_ID_HOST, B_WEB, TCP, 80), ALLOW);
		fx_fini(&f);
	}
}

static void
test_entities_egress_and_deny(void)
{
	struct fx f;
	uint32_t c4;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(
	        load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
	                                   "  egress:\n  - toEntities: [world, kube-apiserver]\n"
	                                   "  - toEndpoints: [{}]\n"
	                                   "  egressDeny:\n  - toEntities: [world-ipv6]\n"
	                                   "    toPorts: [{ports: [{port: 443}]}]\n"
	                                   "---\n" HDR_CCNP(
	                                           "all") "spec:\n  endpointSelector: {}\n"
	                                                  "  ingress:\n  - fromEntities: [all]\n"
	                                                  "  ingressDeny:\n  - fromEntities: "
	                                                  "[world]\n" CIDR_MAKER),
	        3);
	fx_cidr(&f);
	c4 = prefix_id(&f, "10.0.0.0/8");
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD_IPV4, TCP, 443), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, c4, TCP, 443), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD_IPV6, TCP, 443), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD_IPV6, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_KUBE_APISERVER, TCP, 6443), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_HOST, TCP, 10250), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 5432), ALLOW);
	/* the CCNP: every pod takes anything but the world */
	CU_ASSERT_EQUAL(verdict(&f, MG_ID_HOST, B_DB, TCP, 1), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, UNKNOWN_ID, B_DB, TCP, 1), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, MG_ID_WORLD_IPV4, B_DB, TCP, 1), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, c4, B_DB, TCP, 1), DENY_I);
	fx_fini(&f);
}

/* ---- CIDR rules and identities ---- */

static bool
has_label(const struct mg_identity *e, const char *source, const char *key)
{
	return e != NULL && mg_labels_find(&e->labels, source, key) != NULL;
}

static void
test_cidr_rules(void)
{
	struct fx f;
	uint32_t c8, c16, c24, c32, cset, cexc;
	struct mg_ipcache_entry pod;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(
	        load(&f, HDR_CNP("p", "a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
	                                   "  egress:\n  - toCIDR: [10.0.0.0/8, 10.1.2.3]\n"
	                                   "  - toCIDRSet:\n    - cidr: 192.168.0.0/16\n"
	                                   "      except: [192.168.1.0/24]\n"
	                                   "    toPorts: [{ports: [{port: 443}]}]\n"
	                                   "  - toCIDR: [172.16.9.9/12]\n"),
	        1);
	/* a pod inside 10.0.0.0/8 has its own ipcache entry (an endpoint's) */
	CU_ASSERT_EQUAL(mg_ipcache_parse_prefix("10.1.1.1/32", &pod), 0);
	fx_cidr(&f);
	pod.identity = A_DB;
	pod.cluster_id = 1;
	CU_ASSERT_EQUAL(mg_ipcache_put(f.ipc, &pod), 0);
	CU_ASSERT(mg_ipcache_commit(f.ipc) >= 0);
	CU_ASSERT_EQUAL(mg_cidr_ids_count(f.cid), 5);
	c8 = prefix_id(&f, "10.0.0.0/8");
	c32 = prefix_id(&f, "10.1.2.3/32");
	cset = prefix_id(&f, "192.168.0.0/16");
	cexc = prefix_id(&f, "192.168.1.0/24");
	/* host bits are masked, as Cilium does: 172.16.9.9/12 is 172.16.0.0/12 */
	c16 = prefix_id(&f, "172.16.0.0/12");
	c24 = prefix_id(&f, "10.1.0.0/16");
	CU_ASSERT(c8 && c32 && cset && cexc && c16);
	CU_ASSERT_EQUAL(c24, 0);
	/* the lookup the daemon's Redis base layer uses: exact prefixes only */
	{
		struct mg_ipcache_entry q;

		CU_ASSERT_EQUAL(mg_ipcache_parse_prefix("10.0.0.0/8", &q), 0);
		CU_ASSERT_EQUAL(mg_cidr_ids_lookup(f.cid, q.family, q.addr, 8), c8);
		CU_ASSERT_EQUAL(mg_ipcache_parse_prefix("172.16.9.9", &q), 0);
		CU_ASSERT_EQUAL(mg_cidr_ids_lookup(f.cid, q.family, q.addr, 12), c16);
		CU_ASSERT_EQUAL(mg_cidr_ids_lookup(f.cid, q.family, q.addr, 16), 0);
		CU_ASSERT_EQUAL(mg_cidr_ids_lookup(f.cid, q.family, q.addr, 200), 0);
		CU_ASSERT_EQUAL(mg_cidr_ids_lookup(NULL, q.family, q.addr, 12), 0);
	}
	CU_ASSERT_EQUAL(c8 & MG_ID_LOCAL_SCOPE, MG_ID_LOCAL_SCOPE);
	/* longest prefix match sends an address to the most specific prefix */
	CU_ASSERT_EQUAL(addr_id(&f, "10.9.9.9"), c8);
	CU_ASSERT_EQUAL(addr_id(&f, "10.1.2.3"), c32);
	CU_ASSERT_EQUAL(addr_id(&f, "10.1.1.1"), A_DB);
	CU_ASSERT_EQUAL(addr_id(&f, "192.168.1.7"), cexc);
	CU_ASSERT_EQUAL(addr_id(&f, "8.8.8.8"), MG_ID_WORLD_IPV4);
	/* labels: every covering prefix, the world labels */
	{
		const struct mg_identity *e = mg_identity_table_get(f.ids, c8);

		CU_ASSERT_PTR_NOT_NULL_FATAL(e);
		CU_ASSERT_EQUAL(e->labels.n, 9 + 2);
		CU_ASSERT(has_label(e, "cidr", "10.0.0.0/8"));
		CU_ASSERT(has_label(e, "cidr", "8.0.0.0/6"));
		CU_ASSERT(has_label(e, "cidr", "0.0.0.0/0"));
		CU_ASSERT(has_label(e, "reserved", "world"));
		CU_ASSERT(has_label(e, "reserved", "world-ipv4"));
		CU_ASSERT(!has_label(e, "reserved", "world-ipv6"));
		e = mg_identity_table_get(f.ids, c32);
		CU_ASSERT_EQUAL(e->labels.n, 33 + 2);
		CU_ASSERT(has_label(e, "cidr", "10.1.2.3/32"));
		CU_ASSERT(has_label(e, "cidr", "10.0.0.0/8"));
	}
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, c8, TCP, 22), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, c32, UDP, 53), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, c16, ICMP, 8), ALLOW);
	/* a CIDR rule never matches a pod, even one inside the prefix */
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 22), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD_IPV4, TCP, 22), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_HOST, TCP, 22), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_REMOTE_NODE, TCP, 22), DENY_E);
	/* the set minus its except, on its ports */
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, cset, TCP, 443), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, cset, TCP, 80), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, cexc, TCP, 443), DENY_E);
	fx_fini(&f);
}

/* 0.0.0.0/0 and ::/0 are the family's world: 2, 9 or 10, and the family's CIDR identities. */
static void
test_cidr_zero(void)
{
	struct fx f;
	uint32_t c4, c6;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(
	        load(&f,
	             HDR_CNP("p", "a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
	                               "  egress:\n  - toCIDR: [0.0.0.0/0]\n"
	                               "    toPorts: [{ports: [{port: 4}]}]\n"
	                               "  - toCIDR: [\"::/0\"]\n"
	                               "    toPorts: [{ports: [{port: 6}]}]\n"
	                               "  - toCIDRSet: [{cidr: 0.0.0.0/0, except: [10.0.0.0/8]}]\n"
	                               "    toPorts: [{ports: [{port: 7}]}]\n"
	                               "  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.0.0.0/8]}]\n"
	                               "    toPorts: [{ports: [{port: 8}]}]\n" CIDR_MAKER),
	        2);
	fx_cidr(&f);
	/* /0 gets no identity of its own; 10.0.0.0/8 and fd00::/64 do */
	CU_ASSERT_EQUAL(mg_cidr_ids_count(f.cid), 2);
	CU_ASSERT_EQUAL(prefix_id(&f, "0.0.0.0/0"), 0);
	c4 = prefix_id(&f, "10.0.0.0/8");
	c6 = prefix_id(&f, "fd00::/64");
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD, TCP, 4), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD_IPV4, TCP, 4), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, c4, TCP, 4), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD_IPV6, TCP, 4), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, c6, TCP, 4), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 4), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD, TCP, 6), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD_IPV6, TCP, 6), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, c6, TCP, 6), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD_IPV4, TCP, 6), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, c4, TCP, 6), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_HOST, TCP, 6), DENY_E);
	/* except vs world: the world minus 10/8 */
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, MG_ID_WORLD_IPV4, TCP, 7), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, c4, TCP, 7), DENY_E);
	/* an except covering the whole prefix leaves nothing */
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, c4, TCP, 8), DENY_E);
	fx_fini(&f);
}

static void
test_cidr_ipv6_labels(void)
{
	struct fx f;
	const struct mg_identity *e;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(
	        load(&f,
	             HDR_CNP("p", "a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
	                               "  ingress:\n  - fromCIDRSet:\n"
	                               "    - {cidr: \"fd00::/64\", except: [\"fd00::1:0/112\"]}\n"
	                               "  - fromCIDR: [\"2001:db8::1\"]\n"),
	        1);
	fx_cidr(&f);
	/* Cilium's spelling (pkg/labels/cidr.go): ':' -> '-', '0' added at the ends */
	e = mg_identity_table_get(f.ids, prefix_id(&f, "fd00::/64"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->labels.n, 65 + 2);
	CU_ASSERT(has_label(e, "cidr", "fd00--0/64"));
	CU_ASSERT(has_label(e, "cidr", "fd00--0/8"));
	CU_ASSERT(has_label(e, "cidr", "0--0/0"));
	CU_ASSERT(has_label(e, "reserved", "world-ipv6"));
	e = mg_identity_table_get(f.ids, prefix_id(&f, "2001:db8::1/128"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT(has_label(e, "cidr", "2001-db8--1/128"));
	CU_ASSERT(has_label(e, "cidr", "2001-db8--0/32"));
	CU_ASSERT_EQUAL(verdict(&f, prefix_id(&f, "fd00::/64"), A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, prefix_id(&f, "fd00::1:0/112"), A_WEB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, prefix_id(&f, "2001:db8::1/128"), A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, MG_ID_WORLD_IPV6, A_WEB, TCP, 80), DENY_I);
	fx_fini(&f);
}

/* The CIDR identities follow the policy set: kept, added, removed; others' entries stay. */
static void
test_cidr_sync_lifecycle(void)
{
	struct mg_ipcache_entry ep;
	uint32_t *chg = NULL, keep, gone, ep_id;
	size_t n = 0;
	struct fx f;
	struct mg_policy_set *s2;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(
	        load(&f,
	             RULE_HDR "  egress:\n  - toCIDR: [10.0.0.0/8, 10.2.0.0/16, 10.3.3.3/32]\n"),
	        1);
	/* an endpoint already holds 10.3.3.3/32: it keeps it */
	CU_ASSERT_EQUAL(mg_ipcache_parse_prefix("10.3.3.3/32", &ep), 0);
	fx_cidr(&f);
	CU_ASSERT_EQUAL(mg_ipcache_del(f.ipc, ep.family, ep.addr, ep.plen), 0);
	ep.identity = A_DB;
	CU_ASSERT_EQUAL(mg_ipcache_put(f.ipc, &ep), 0);
	CU_ASSERT(mg_ipcache_commit(f.ipc) >= 0);
	keep = prefix_id(&f, "10.0.0.0/8");
	gone = prefix_id(&f, "10.2.0.0/16");
	CU_ASSERT_EQUAL(mg_ipcache_count(f.ipc, 0), 3);
	/* a second sync of the same set changes nothing */
	CU_ASSERT_EQUAL(mg_cidr_ids_sync(f.cid, f.set, f.ids, f.ipc, &chg, &n, &f.err), 0);
	CU_ASSERT_EQUAL(n, 0);
	free(chg);
	CU_ASSERT(mg_ipcache_commit(f.ipc) >= 0);
	CU_ASSERT_EQUAL(prefix_id(&f, "10.3.3.3/32"), A_DB);

	s2 = mg_policy_set_create();
	{
		const char *y = RULE_HDR "  egress:\n  - toCIDR: [10.0.0.0/8, \"fd00::/8\", "
		                         "10.3.3.3/32]\n";

		CU_ASSERT_EQUAL_FATAL(
		        mg_policy_set_load_buf(s2, "c1", "t.yaml", y, strlen(y), &f.err), 1);
	}
	chg = NULL;
	CU_ASSERT_EQUAL(mg_cidr_ids_sync(f.cid, s2, f.ids, f.ipc, &chg, &n, &f.err), 0);
	CU_ASSERT(mg_ipcache_commit(f.ipc) >= 0);
	/* one added (fd00::/8), one removed (10.2.0.0/16) */
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(mg_cidr_ids_count(f.cid), 3);
	CU_ASSERT_EQUAL(prefix_id(&f, "10.0.0.0/8"), keep);
	CU_ASSERT_EQUAL(prefix_id(&f, "10.2.0.0/16"), 0);
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, gone));
	CU_ASSERT(n == 2 && (chg[0] == gone || chg[1] == gone));
	CU_ASSERT(mg_identity_is_local_scope(prefix_id(&f, "fd00::/8")));
	/* numbers are not reused: the new one is not the removed one */
	CU_ASSERT_NOT_EQUAL(prefix_id(&f, "fd00::/8"), gone);
	CU_ASSERT_EQUAL(prefix_id(&f, "10.3.3.3/32"), A_DB);
	ep_id = prefix_id(&f, "10.3.3.3/32");
	CU_ASSERT_EQUAL(ep_id, A_DB);
	free(chg);
	/* an empty set: every CIDR identity and entry of ours goes, the endpoint's stays */
	mg_policy_set_free(s2);
	s2 = mg_policy_set_create();
	CU_ASSERT_EQUAL(mg_cidr_ids_sync(f.cid, s2, f.ids, f.ipc, &chg, &n, &f.err), 0);
	CU_ASSERT(mg_ipcache_commit(f.ipc) >= 0);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(mg_cidr_ids_count(f.cid), 0);
	CU_ASSERT_EQUAL(mg_ipcache_count(f.ipc, 0), 1);
	CU_ASSERT_EQUAL(prefix_id(&f, "10.3.3.3/32"), A_DB);
	CU_ASSERT_PTR_NULL(mg_identity_table_get(f.ids, keep));
	free(chg);
	mg_policy_set_free(s2);
	CU_ASSERT_EQUAL(mg_cidr_ids_sync(NULL, f.set, f.ids, f.ipc, NULL, NULL, &f.err), -EINVAL);
	fx_fini(&f);
}

/* A reload builds new identity and ipcache tables: the held prefixes come
 * back with the same numbers and labels. */
static void
test_cidr_sync_fresh_tables(void)
{
	struct mg_ipcache_params ip = {.entries_hint = 16, .split_world = true};
	struct mg_identity_table *t2 = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_ipcache *ipc2 = mg_ipcache_create(&ip);
	struct mg_ipcache_entry pf, e;
	const struct mg_identity *id2;
	uint32_t id;
	struct fx f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc2);
	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(load(&f, RULE_HDR "  egress:\n  - toCIDR: [192.0.2.0/24]\n"), 1);
	fx_cidr(&f);
	id = prefix_id(&f, "192.0.2.0/24");
	CU_ASSERT(mg_identity_is_local_scope(id));
	CU_ASSERT_EQUAL(mg_cidr_ids_sync(f.cid, f.set, t2, ipc2, NULL, NULL, &f.err), 0);
	CU_ASSERT(mg_ipcache_commit(ipc2) >= 0);
	CU_ASSERT_EQUAL(mg_ipcache_parse_prefix("192.0.2.0/24", &pf), 0);
	CU_ASSERT_EQUAL_FATAL(mg_ipcache_get(ipc2, pf.family, pf.addr, pf.plen, &e), 0);
	CU_ASSERT_EQUAL(e.identity, id);
	id2 = mg_identity_table_get(t2, id);
	CU_ASSERT_PTR_NOT_NULL_FATAL(id2);
	CU_ASSERT_PTR_NOT_NULL(mg_labels_find(&id2->labels, "cidr", "192.0.2.0/24"));
	CU_ASSERT_PTR_NOT_NULL(mg_labels_find(&id2->labels, "reserved", "world"));
	mg_identity_table_free(t2);
	mg_ipcache_free(ipc2);
	fx_fini(&f);
}

/* ---- named ports ---- */

static void
test_named_ports(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(
	        load(&f,
	             HDR_CCNP(
	                     "db-in") "spec:\n  endpointSelector:\n"
	                              "    matchExpressions: [{key: app, operator: In, values: "
	                              "[db, api]}]\n"
	                              "  ingress:\n  - toPorts: [{ports: [{port: HTTP, protocol: "
	                              "TCP}]}]\n"
	                              "---\n" HDR_CNP(
	                                      "web-out",
	                                      "a") "spec:\n"
	                                           "  endpointSelector: {matchLabels: {app: web}}\n"
	                                           "  egress:\n  - toEndpoints: [{matchLabels: "
	                                           "{app: db}}]\n"
	                                           "    toPorts: [{ports: [{port: pg}, {port: "
	                                           "dns}]}]\n"
	                                           "  - toEndpoints:\n    - matchLabels:\n"
	                                           "        io.cilium.k8s.policy.cluster: c2\n"
	                                           "        io.kubernetes.pod.namespace: a\n"
	                                           "    toPorts: [{ports: [{port: dns, protocol: "
	                                           "UDP}]}]\n"),
	        2);
	/* ingress: the name resolves through the subject (the destination) */
	CU_ASSERT_EQUAL(verdict(&f, C_WEB, A_DB, TCP, 8080), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, C_WEB, A_DB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, C_WEB, A_DB, UDP, 8080), DENY_I);
	/* B_DB's endpoints call two ports http: the name resolves to neither (Cilium's
	 * ErrDuplicateNamedPorts) */
	CU_ASSERT_EQUAL(verdict(&f, C_WEB, B_DB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, C_WEB, B_DB, TCP, 8085), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, C_WEB, B_DB, TCP, 8080), DENY_I);
	/* a subject without that name: the entry allows it nothing */
	CU_ASSERT_EQUAL(verdict(&f, C_WEB, A_API, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, C_WEB, A_API, TCP, 8080), DENY_I);
	/* another cluster's pods are not the CCNP's subjects */
	CU_ASSERT_EQUAL(verdict(&f, C_WEB, X_B_DB, TCP, 1), ALLOW);
	/* egress: through the peer */
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 5432), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, A_DB, TCP, 5433), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, X_A_DB, UDP, 53), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, X_A_DB, TCP, 53), DENY_E);
	CU_ASSERT_EQUAL(verdict(&f, A_WEB, X_A_WEB, UDP, 53), DENY_E);
	{
		struct mg_policy_trace t;

		mg_policy_trace(f.set, f.ids, &f.params, A_WEB, A_DB, TCP, 5432, &t);
		CU_ASSERT(t.egress.allowed);
		CU_ASSERT_STRING_EQUAL(t.egress.name, "web-out");
		CU_ASSERT(!t.ingress.allowed);
	}
	fx_fini(&f);
}

static void
test_named_ports_deny_and_update(void)
{
	struct fx f;
	struct mg_policy *p2;
	uint32_t id = C_WEB;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(
	        load(&f, HDR_CCNP("deny-metrics") "spec:\n  endpointSelector: {}\n"
	                                          "  ingress: [{fromEntities: [all]}]\n"
	                                          "  ingressDeny:\n  - toPorts: [{ports: [{port: "
	                                          "metrics}]}]\n"),
	        1);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 9090), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, C_WEB, TCP, 9090), ALLOW);
	/* C_WEB's endpoint gets a named port: an incremental update sees it */
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(f.ids, C_WEB, "metrics", TCP, 9091), 0);
	p2 = mg_policy_update_identities(f.pol, f.set, f.ids, &id, 1, &f.err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p2);
	CU_ASSERT_EQUAL(mg_policy_verdict(p2, A_DB, C_WEB, TCP, 9091), DENY_I);
	CU_ASSERT_EQUAL(mg_policy_verdict(p2, A_DB, C_WEB, TCP, 9090), ALLOW);
	/* the old object is unchanged */
	CU_ASSERT_EQUAL(mg_policy_verdict(f.pol, A_DB, C_WEB, TCP, 9091), ALLOW);
	mg_policy_free(f.pol);
	f.pol = p2;
	CU_ASSERT_EQUAL(verdict(&f, A_DB, C_WEB, TCP, 9091), DENY_I);
	fx_fini(&f);
}

/*
 * A name an identity's endpoints give two numbers (for one protocol)
 * resolves to neither, in the compiled verdict and in the trace alike, as
 * Cilium's named-port lookup refuses duplicates: an allow opens nothing,
 * a deny closes nothing. Another protocol's entry of the name stays.
 */
static void
test_named_ports_ambiguous(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(f.ids, C_WEB, "www", TCP, 80), 0);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(f.ids, C_WEB, "www", TCP, 8080), 0);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(f.ids, C_WEB, "www", UDP, 8443), 0);
	CU_ASSERT_EQUAL_FATAL(
	        load(&f, HDR_CCNP("www-in") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
	                                    "  ingress:\n  - toPorts: [{ports: [{port: www, "
	                                    "protocol: ANY}]}]\n"),
	        1);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, C_WEB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, C_WEB, TCP, 8080), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, C_WEB, UDP, 8443), ALLOW);
	{
		struct mg_policy_trace t;

		mg_policy_trace(f.set, f.ids, &f.params, A_DB, C_WEB, TCP, 80, &t);
		CU_ASSERT(!t.ingress.allowed);
		mg_policy_trace(f.set, f.ids, &f.params, A_DB, C_WEB, UDP, 8443, &t);
		CU_ASSERT(t.ingress.allowed);
	}
	fx_fini(&f);
}

/* ---- ICMP ---- */

static void
test_icmp_rules(void)
{
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(
	        load(&f,
	             HDR_CNP("p",
	                     "a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
	                          "  ingress:\n  - fromEndpoints: [{matchLabels: {app: db}}]\n"
	                          "    icmps:\n    - fields:\n"
	                          "      - {type: EchoRequest}\n"
	                          "      - {type: 3, family: IPv4}\n"
	                          "      - {type: EchoRequest, family: IPv6}\n"
	                          "      - {type: \"2\", family: IPv6}\n"
	                          "  - fromEndpoints: [{matchLabels: {app: db}}]\n"
	                          "    toPorts: [{ports: [{port: 80}]}]\n"
	                          "  - fromEndpoints: [{matchLabels: {app: api}}]\n"
	                          "  ingressDeny:\n  - icmps: [{fields: [{type: Timestamp}]}]\n"),
	        1);
	/* by name and by number, per family */
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, ICMP, 8), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, ICMP, 3), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, 58, 128), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, 58, 2), ALLOW);
	/* once a direction has L4 or ICMP rules, other ICMP types are dropped */
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, ICMP, 0), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, ICMP, 128), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, 58, 8), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, 58, 3), DENY_I);
	/* ICMP types are not ports */
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 8), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, ICMP, 80), DENY_I);
	/* an L3-only entry still allows every protocol, ICMP included */
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, ICMP, 0), ALLOW);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, 58, 135), ALLOW);
	/* ... but the deny wins: Timestamp is 13 */
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, ICMP, 13), DENY_I);
	CU_ASSERT_EQUAL(verdict(&f, A_API, A_WEB, 58, 13), ALLOW);
	/* the rule with icmps is named by the trace */
	{
		struct mg_policy_trace t;

		mg_policy_trace(f.set, f.ids, &f.params, A_DB, A_WEB, 58, 128, &t);
		CU_ASSERT_EQUAL(t.ingress.entry_index, 0);
		CU_ASSERT_STRING_EQUAL(t.ingress.section, "ingress");
		mg_policy_trace(f.set, f.ids, &f.params, A_API, A_WEB, ICMP, 13, &t);
		CU_ASSERT(t.ingress.by_deny_rule);
	}
	fx_fini(&f);
}

/* Every ICMP type name Cilium knows, per family. */
static void
test_icmp_type_names(void)
{
	static const struct {
		const char *family, *name;
		uint8_t proto, type;
	} c[] = {
	        {"IPv4", "EchoReply", ICMP, 0},
	        {"IPv4", "DestinationUnreachable", ICMP, 3},
	        {"IPv4", "Redirect", ICMP, 5},
	        {"IPv4", "Echo", ICMP, 8},
	        {"IPv4", "RouterAdvertisement", ICMP, 9},
	        {"IPv4", "RouterSelection", ICMP, 10},
	        {"IPv4", "TimeExceeded", ICMP, 11},
	        {"IPv4", "ParameterProblem", ICMP, 12},
	        {"IPv4", "TimestampReply", ICMP, 14},
	        {"IPv4", "Photuris", ICMP, 40},
	        {"IPv4", "ExtendedEchoRequest", ICMP, 42},
	        {"IPv4", "ExtendedEchoReply", ICMP, 43},
	        {"IPv6", "DestinationUnreachable", 58, 1},
	        {"IPv6", "PacketTooBig", 58, 2},
	        {"IPv6", "TimeExceeded", 58, 3},
	        {"IPv6", "ParameterProblem", 58, 4},
	        {"IPv6", "EchoReply", 58, 129},
	        {"IPv6", "MulticastListenerQuery", 58, 130},
	        {"IPv6", "MulticastListenerDone", 58, 132},
	        {"IPv6", "RouterSolicitation", 58, 133},
	        {"IPv6", "NeighborSolicitation", 58, 135},
	        {"IPv6", "NeighborAdvertisement", 58, 136},
	        {"IPv6", "RedirectMessage", 58, 137},
	        {"IPv6", "HomeAgentAddressDiscoveryReply", 58, 145},
	        {"IPv6", "DuplicateAddressConfirmationCodeSuffix", 58, 158},
	        {"IPv6", "ExtendedEchoReply", 58, 161},
	};
	size_t i;

	for (i = 0; i < MG_ARRAY_SIZE(c); i++) {
		char yaml[512];
		struct fx f;

		fx_init(&f);
		snprintf(yaml, sizeof(yaml),
		         RULE_HDR "  ingress:\n  - icmps: [{fields: [{family: %s, type: %s}]}]\n",
		         c[i].family, c[i].name);
		CU_ASSERT_EQUAL_FATAL(load(&f, yaml), 1);
		CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, c[i].proto, c[i].type), ALLOW);
		CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, c[i].proto, (uint8_t)(c[i].type + 1)),
		                DENY_I);
		CU_ASSERT_EQUAL(verdict(&f, A_DB, A_WEB, c[i].proto == ICMP ? 58 : ICMP, c[i].type),
		                DENY_I);
		fx_fini(&f);
	}
}

/* ---- mg_policy_set_check_path ---- */

struct problems {
	size_t n, nwarn;
	char text[16][320];
};

static void
collect_problem(const struct mg_policy_problem *pr, void *arg)
{
	struct problems *p = arg;

	if (p->n < MG_ARRAY_SIZE(p->text))
		snprintf(p->text[p->n], sizeof(p->text[0]), "%s %s:%u:%u: %s",
		         pr->warning ? "W" : "E",
		         strrchr(pr->file, '/') ? strrchr(pr->file, '/') + 1 : pr->file, pr->line,
		         pr->col, pr->msg);
	p->n++;
	p->nwarn += pr->warning;
}

static bool
has_problem(const struct problems *p, const char *text)
{
	size_t i;

	for (i = 0; i < p->n && i < MG_ARRAY_SIZE(p->text); i++)
		if (strncmp(p->text[i], text, strlen(text)) == 0)
			return true;
	printf("  missing problem '%s'; have:\n", text);
	for (i = 0; i < p->n && i < MG_ARRAY_SIZE(p->text); i++)
		printf("    %s\n", p->text[i]);
	return false;
}

static void
test_check_path(void)
{
	char dir[] = "/tmp/mg_policy_check_XXXXXX";
	struct problems p = {0};
	struct mg_policy_set *s;
	char path[PATH_MAX];
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	write_file(dir, "1-good.yaml", RULE_HDR "  ingress: [{fromEntities: [cluster]}]\n");
	/* two documents, each with an error, and a good one between them */
	write_file(dir, "2-multi.yaml",
	           RULE_HDR
	           "  ingress: [{fromEntities: [moon]}]\n"
	           "---\n" HDR_CNP("ok2", "a") "spec: {endpointSelector: {}, ingress: [{}]}\n"
	                                       "---\n" HDR_CNP(
	                                               "bad3",
	                                               "a") "spec:\n  endpointSelector: {}\n"
	                                                    "  egressDeny: [{toServices: "
	                                                    "[{k8sService: {serviceName: x}}]}]\n");
	/* a List whose second item is bad, whose third carries a warning */
	write_file(dir, "3-list.yaml",
	           "apiVersion: v1\nkind: List\nitems:\n"
	           "- {apiVersion: cilium.io/v2, kind: CiliumNetworkPolicy, metadata: {name: l1},\n"
	           "   spec: {endpointSelector: {}, egress: [{}]}}\n"
	           "- {apiVersion: cilium.io/v2, kind: CiliumNetworkPolicy, metadata: {name: l2},\n"
	           "   spec: {endpointSelector: {}, ingress: [{toPorts: [{ports: [{port: "
	           "99999}]}]}]}}\n"
	           "- {apiVersion: cilium.io/v2, kind: CiliumNetworkPolicy, metadata: {name: l3},\n"
	           "   spec: {endpointSelector: {}, egress: [{toFQDNs: [{matchName: a.com}]}]}}\n");
	write_file(dir, "4-syntax.yaml", "a: [b\n");
	write_file(dir, "5-notes.txt", "not a policy file\n");
	s = mg_policy_set_create();
	rc = mg_policy_set_check_path(s, "c1", dir, collect_problem, &p);
	CU_ASSERT_EQUAL(rc, 4);
	CU_ASSERT_EQUAL(p.n, 5);
	CU_ASSERT_EQUAL(p.nwarn, 1);
	CU_ASSERT(has_problem(&p, "E 2-multi.yaml:6:29: spec.ingress[0].fromEntities[0]: "
	                          "unsupported entity 'moon'"));
	CU_ASSERT(has_problem(&p, "E 2-multi.yaml:18:17: spec.egressDeny[0].toServices: not "
	                          "enforced"));
	CU_ASSERT(has_problem(&p, "E 3-list.yaml:7:70: spec.ingress[0].toPorts[0].ports[0].port: "
	                          "99999 is out of range"));
	CU_ASSERT(has_problem(&p, "E 4-syntax.yaml:"));
	CU_ASSERT(has_problem(&p, "W 3-list.yaml:9:43: spec.egress[0].toFQDNs: not enforced by a "
	                          "layer-4 gateway; this allow rule is skipped"));
	/* what loaded cleanly is in the set: 1-good, ok2, l1, l3 */
	CU_ASSERT_EQUAL(mg_policy_set_count(s), 4);
	CU_ASSERT_EQUAL(mg_policy_set_warnings(s, NULL, NULL), 1);
	mg_policy_set_free(s);
	/* with no set, a scratch one; a path that does not exist is one problem */
	memset(&p, 0, sizeof(p));
	snprintf(path, sizeof(path), "%s/1-good.yaml", dir);
	CU_ASSERT_EQUAL(mg_policy_set_check_path(NULL, "c1", path, collect_problem, &p), 0);
	CU_ASSERT_EQUAL(p.n, 0);
	snprintf(path, sizeof(path), "%s/nope", dir);
	CU_ASSERT_EQUAL(mg_policy_set_check_path(NULL, "c1", path, collect_problem, &p), -ENOENT);
	CU_ASSERT_EQUAL(p.n, 1);
	/* the problem names the file once: as its file, not again in its message */
	CU_ASSERT_STRING_EQUAL(p.text[0], "E nope:0:0: No such file or directory");
	/* a normal load of the same directory stops at the first error, all or nothing */
	s = mg_policy_set_create();
	CU_ASSERT(mg_policy_set_load_path(s, "c1", dir, &(struct mg_error){{0}}) < 0);
	CU_ASSERT_EQUAL(mg_policy_set_count(s), 0);
	mg_policy_set_free(s);
	remove_dir(dir);
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

static const uint8_t grid_protos[] = {TCP, UDP, SCTP, ICMP, 58, GRE};
static const uint16_t grid_ports[] = {0,   3,    8,    22,   25,   53,   80,   128,
                                      443, 5432, 8080, 8085, 8091, 9090, 65535};

static int
collect_id(const struct mg_identity *e, void *arg)
{
	uint32_t **p = arg;

	*(*p)++ = e->id;
	return 0;
}

/* Every identity of the table (CIDR ones included) and an unknown one. */
static size_t
grid_ids(struct fx *f, uint32_t *all)
{
	uint32_t *p = all;

	mg_identity_table_walk(f->ids, collect_id, &p);
	*p++ = UNKNOWN_ID;
	return (size_t)(p - all);
}

/* Every (src, dst, proto, port) of the grid; returns the number of flows. */
static size_t
grid(struct fx *f, size_t *allowed)
{
	uint32_t *all = calloc(mg_identity_table_count(f->ids) + 1, sizeof(*all));
	size_t n, i, j, k, l, flows = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(all);
	n = grid_ids(f, all);
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
	free(all);
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
rand_l3(struct out *o, unsigned s)
{
	static const char *const ents[] = {
	        "host",  "remote-node", "kube-apiserver", "ingress", "health", "init", "unmanaged",
	        "world", "world-ipv4",  "world-ipv6",     "cluster", "all",    "none"};
	static const char *const cidrs[] = {"10.0.0.0/8",    "10.1.0.0/16",   "10.1.2.3",
	                                    "0.0.0.0/0",     "\"fd00::/64\"", "\"::/0\"",
	                                    "192.168.0.0/16"};
	const char *pfx = s & 1 ? "to" : "from";
	unsigned kind = rnd(6), k, n = rnd(3);

	if (kind < 3) {
		put(o, "%sEndpoints: [", pfx);
		for (k = 0; k < n; k++) {
			if (k)
				put(o, ", ");
			rand_selector(o);
		}
		put(o, "]");
	} else if (kind == 3) {
		put(o, "%sEntities: [", pfx);
		for (k = 0; k < n + 1; k++)
			put(o, "%s%s", k ? ", " : "", ents[rnd(MG_ARRAY_SIZE(ents))]);
		put(o, "]");
	} else if (kind == 4) {
		put(o, "%sCIDR: [", pfx);
		for (k = 0; k < n + 1; k++)
			put(o, "%s%s", k ? ", " : "", cidrs[rnd(MG_ARRAY_SIZE(cidrs))]);
		put(o, "]");
	} else if (rnd(2)) {
		put(o, "%sCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]", pfx);
	} else {
		put(o, "%sCIDRSet: [{cidr: 0.0.0.0/0, except: [192.168.0.0/16, 10.1.2.3/32]}]",
		    pfx);
	}
}

static void
rand_l4(struct out *o, unsigned sec)
{
	static const char *const protos[] = {"TCP", "UDP", "SCTP", "ANY", "\"\""};
	static const char *const ports[] = {"0",    "22",   "53", "80",  "443",
	                                    "8080", "http", "pg", "dns", "metrics"};
	static const char *const icmp[] = {"8", "EchoRequest", "3", "DestinationUnreachable",
	                                   "0", "128"};
	bool all_tcp = true;
	unsigned k;

	if (rnd(4) == 0) {
		put(o, "icmps: [{fields: [");
		for (k = 0; k <= rnd(2); k++) {
			bool v6 = rnd(2);
			const char *t = icmp[rnd(MG_ARRAY_SIZE(icmp))];

			/* names exist per family: keep the ones both know */
			if (v6 && strcmp(t, "DestinationUnreachable") != 0 &&
			    strcmp(t, "EchoRequest") != 0)
				t = rnd(2) ? "128" : "EchoRequest";
			put(o, "%s{type: %s%s}", k ? ", " : "", t, v6 ? ", family: IPv6" : "");
		}
		put(o, "]}]");
		return;
	}
	put(o, "toPorts: [{ports: [");
	for (k = 0; k <= rnd(2); k++) {
		unsigned pi = rnd(MG_ARRAY_SIZE(ports)), pr = rnd(5);

		all_tcp = all_tcp && pr == 0;
		put(o, "%s{port: %s, protocol: %s", k ? ", " : "", ports[pi], protos[pr]);
		if (pi > 0 && pi < 6 && rnd(3) == 0)
			put(o, ", endPort: %u", (unsigned)atoi(ports[pi]) + 5);
		put(o, "}");
	}
	put(o, "]");
	/* L7 rules as Cilium takes them: HTTP on TCP only, DNS on egress only */
	if (sec < 2 && rnd(10) == 0) {
		if (all_tcp)
			put(o, ", rules: {http: [{method: GET}]}");
		else if (sec == 1)
			put(o, ", rules: {dns: [{matchPattern: \"*\"}]}");
	}
	put(o, "}]");
}

static void
rand_policy(struct out *o, unsigned idx)
{
	static const char *const sec[] = {"ingress", "egress", "ingressDeny", "egressDeny"};
	unsigned s, e, ne[4], total = 0;
	bool present[4];

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
		present[s] = rnd(5) >= 3;
		ne[s] = present[s] ? rnd(3) : 0;
		total += ne[s];
	}
	if (total == 0) {
		/* Cilium refuses a rule without entries: give one section one */
		s = rnd(4);
		present[s] = true;
		ne[s] = 1;
	}
	for (s = 0; s < 4; s++) {
		if (!present[s])
			continue;
		put(o, "  %s:%s\n", sec[s], ne[s] ? "" : " []");
		for (e = 0; e < ne[s]; e++) {
			unsigned l3 = rnd(3), l4 = rnd(2);

			put(o, "  - {");
			if (s == 1 && rnd(12) == 0) {
				put(o, "toFQDNs: [{matchName: a.com}]}\n");
				continue;
			}
			if (l3 > 0)
				rand_l3(o, s);
			if (l3 > 0 && l4)
				put(o, ", ");
			if (l4)
				rand_l4(o, s);
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
		fx_cidr(&f);
		f.params.enforcement = round % 3 == 2 ? MG_ENFORCE_ALWAYS : MG_ENFORCE_DEFAULT;
		f.params.default_local_cluster = round % 4 != 3;
		flows += grid(&f, &allowed);
		fx_fini(&f);
	}
	CU_ASSERT_EQUAL(mismatches, 0);
	CU_ASSERT(allowed > 0 && allowed < flows);
	free(o.p);
}

/* A hand-written set with every feature of the language, checked like the grid above. */
static const char *const grid_language = HDR_CNP(
        "lang-web",
        "a") "spec:\n  endpointSelector: {matchLabels: {app: web}}\n"
             "  ingress:\n  - fromEntities: [cluster]\n"
             "    toPorts: [{ports: [{port: http}, {port: metrics, protocol: TCP}]}]\n"
             "  - fromCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]\n"
             "  - fromEntities: [world-ipv6]\n"
             "    icmps: [{fields: [{type: EchoRequest, family: IPv6}]}]\n"
             "  egress:\n  - toEndpoints: [{matchLabels: {app: db}}]\n"
             "    toPorts: [{ports: [{port: pg}, {port: http}]}]\n"
             "  - toFQDNs: [{matchName: api.example.com}]\n"
             "  - toCIDR: [0.0.0.0/0]\n    toPorts: [{ports: [{port: 443}]}]\n"
             "  egressDeny:\n  - toCIDR: [10.1.2.3/32]\n"
             "---\n" HDR_CCNP(
                     "lang-all") "spec:\n  endpointSelector: {}\n"
                                 "  ingress:\n  - fromEntities: [host, remote-node, health]\n"
                                 "  - icmps: [{fields: [{type: 8}, {type: 0}]}]\n"
                                 "  ingressDeny:\n  - fromEntities: [world]\n"
                                 "    toPorts: [{ports: [{port: 22}]}]\n"
                                 "  - fromCIDR: [\"fd00::/64\"]\n"
                                 "---\n" HDR_CNP(
                                         "lang-db",
                                         "b") "spec:\n  endpointSelector: {}\n"
                                              "  ingress:\n  - fromEndpoints: [{}]\n"
                                              "    toPorts: [{ports: [{port: http, protocol: "
                                              "ANY}], rules: {}}]\n"
                                              "  - toPorts: [{ports: [{port: 80, protocol: TCP}], "
                                              "rules: {http: [{path: /}]}}]\n"
                                              "  egress:\n  - toEntities: [all]\n"
                                              "  egressDeny:\n  - toEntities: [kube-apiserver, "
                                              "world-ipv4]\n"
                                              "    icmps: [{fields: [{type: EchoRequest}]}]\n";

static void
test_grid_cross_check_language(void)
{
	static const enum mg_enforcement modes[] = {MG_ENFORCE_DEFAULT, MG_ENFORCE_ALWAYS};
	size_t m, d, flows, allowed;
	struct fx f;

	fx_init(&f);
	/* the `rules: {}` above is an empty L7 part: no warning for it */
	CU_ASSERT_EQUAL_FATAL(load(&f, grid_language), 3);
	CU_ASSERT_EQUAL(mg_policy_set_warnings(f.set, NULL, NULL), 2);
	fx_cidr(&f);
	CU_ASSERT_EQUAL(mg_cidr_ids_count(f.cid), 4);
	mismatches = 0;
	for (m = 0; m < MG_ARRAY_SIZE(modes); m++)
		for (d = 0; d < 2; d++) {
			f.params.enforcement = modes[m];
			f.params.default_local_cluster = d == 1;
			allowed = 0;
			flows = grid(&f, &allowed);
			printf("  language grid %s dlc=%zu: %zu of %zu flows allowed\n",
			       mg_enforcement_name(modes[m]), d, allowed, flows);
			CU_ASSERT(allowed > (modes[m] == MG_ENFORCE_ALWAYS ? 0 : flows / 20));
			CU_ASSERT(allowed < flows - flows / 20);
		}
	CU_ASSERT_EQUAL(mismatches, 0);
	fx_fini(&f);
}

/* ---- incremental updates ---- */

static void
random_labels(struct mg_labels *ls)
{
	static const char *const apps[] = {"web", "db", "api", "job"};
	static const char *const nss[] = {"a", "b", "c", "default"};
	char buf[128];

	mg_labels_clear(ls);
	if (rnd(6)) {
		snprintf(buf, sizeof(buf), "k8s:app=%s", apps[rnd(4)]);
		CU_ASSERT_EQUAL(mg_labels_add_str(ls, buf), 0);
	}
	if (rnd(3) == 0)
		CU_ASSERT_EQUAL(mg_labels_add_str(ls, rnd(2) ? "k8s:env=prod" : "k8s:env=dev"), 0);
	if (rnd(4) == 0)
		CU_ASSERT_EQUAL(mg_labels_add_str(ls, "k8s:role=ops"), 0);
	if (rnd(8)) {
		snprintf(buf, sizeof(buf), "k8s:io.kubernetes.pod.namespace=%s", nss[rnd(4)]);
		CU_ASSERT_EQUAL(mg_labels_add_str(ls, buf), 0);
	}
	if (rnd(8))
		CU_ASSERT_EQUAL(
		        mg_labels_add_str(ls, rnd(3) ? "k8s:io.cilium.k8s.policy.cluster=c1"
		                                     : "k8s:io.cilium.k8s.policy.cluster=c2"),
		        0);
}

static void
random_named_port(struct mg_identity_table *t, uint32_t id)
{
	static const char *const names[] = {"http", "pg", "dns", "metrics"};
	static const uint16_t ports[] = {53, 80, 443, 5432, 8080, 9090};
	static const uint8_t protos[] = {TCP, TCP, UDP, SCTP};

	CU_ASSERT(mg_identity_table_add_named_port(t, id, names[rnd(4)], protos[rnd(4)],
	                                           ports[rnd(6)]) >= 0);
}

/* Compare two compiled objects (and, on a sample, the trace) over a grid. */
static size_t
compare_policies(struct fx *f, const struct mg_policy *a, const struct mg_policy *b,
                 const uint32_t *extra, size_t nextra)
{
	uint32_t *all = calloc(mg_identity_table_count(f->ids) + nextra + 1, sizeof(*all));
	size_t n, i, j, k, l, bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(all);
	n = grid_ids(f, all);
	for (i = 0; i < nextra; i++)
		all[n++] = extra[i];
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			for (k = 0; k < MG_ARRAY_SIZE(grid_protos); k++)
				for (l = 0; l < MG_ARRAY_SIZE(grid_ports); l += 1 + (i + j) % 3) {
					enum mg_verdict va = mg_policy_verdict(
					        a, all[i], all[j], grid_protos[k], grid_ports[l]);
					enum mg_verdict vb = mg_policy_verdict(
					        b, all[i], all[j], grid_protos[k], grid_ports[l]);

					if (va != vb && bad++ < 5)
						printf("  incremental %u -> %u proto %u port %u: "
						       "%d, full "
						       "compile %d\n",
						       all[i], all[j], grid_protos[k],
						       grid_ports[l], va, vb);
					if ((i * 7 + j * 3 + k + l) % 23 == 0) {
						struct mg_policy_trace t;

						mg_policy_trace(f->set, f->ids, &f->params, all[i],
						                all[j], grid_protos[k],
						                grid_ports[l], &t);
						if (t.verdict != va && bad++ < 5)
							printf("  incremental %u -> %u: trace %d\n",
							       all[i], all[j], t.verdict);
					}
				}
	free(all);
	return bad;
}

static void
test_incremental_equals_full(void)
{
	struct out o;
	unsigned round;
	size_t checks = 0, updates = 0, bad = 0;

	o.cap = 1 << 16;
	o.p = malloc(o.cap);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o.p);
	rng_state = 0x2545f4914f6cdd1dull;
	for (round = 0; round < 8; round++) {
		struct mg_policy *old[4] = {NULL, NULL, NULL, NULL};
		uint32_t removed[64], next_id = C1(500);
		size_t nremoved = 0, step, i;
		struct mg_labels ls = MG_LABELS_INIT;
		struct fx f;

		fx_init(&f);
		o.n = 0;
		o.p[0] = '\0';
		for (i = 0; i < 8; i++)
			rand_policy(&o, (unsigned)i);
		CU_ASSERT_EQUAL_FATAL(load_as(&f, round & 1 ? "c2" : "c1", o.p), 8);
		fx_cidr(&f);
		f.params.enforcement = round % 3 == 2 ? MG_ENFORCE_ALWAYS : MG_ENFORCE_DEFAULT;
		f.params.default_local_cluster = round % 4 != 3;
		compile(&f);
		for (step = 0; step < 40; step++) {
			uint32_t chg[4];
			size_t nchg = 0, k, nops = 1 + rnd(3);
			struct mg_policy *next;

			for (k = 0; k < nops; k++) {
				unsigned op = rnd(4);
				uint32_t all[512], id;
				size_t n;

				n = grid_ids(&f, all) - 1; /* without the unknown one */
				id = all[rnd((unsigned)n)];
				if (op == 0 || mg_identity_is_reserved(id)) {
					/* a new identity, in cluster c1 or c2 */
					id = rnd(3) ? next_id++ : C2(600) + next_id++;
					random_labels(&ls);
					CU_ASSERT_EQUAL(mg_identity_table_put(f.ids, id, &ls, 1),
					                0);
					if (rnd(2))
						random_named_port(f.ids, id);
				} else if (op == 1) {
					CU_ASSERT_EQUAL(mg_identity_table_del(f.ids, id), 0);
					if (nremoved < MG_ARRAY_SIZE(removed))
						removed[nremoved++] = id;
				} else if (op == 2) {
					random_labels(&ls);
					CU_ASSERT(mg_identity_table_put(f.ids, id, &ls, 1) >= 0);
				} else {
					random_named_port(f.ids, id);
				}
				chg[nchg++] = id;
			}
			next = mg_policy_update_identities(f.pol, f.set, f.ids, chg, nchg, &f.err);
			CU_ASSERT_PTR_NOT_NULL_FATAL(next);
			updates++;
			/* the old object stays valid; keep a few and free them in any order */
			k = rnd(4);
			mg_policy_free(old[k]);
			old[k] = f.pol;
			f.pol = next;
			if (step % 8 == 7 || step == 39) {
				struct mg_policy *full =
				        mg_policy_compile(f.set, f.ids, &f.params, &f.err);

				CU_ASSERT_PTR_NOT_NULL_FATAL(full);
				bad += compare_policies(&f, f.pol, full, removed, nremoved);
				checks++;
				mg_policy_free(full);
			}
		}
		/* free the kept generations before or after the newest, at random */
		if (rnd(2)) {
			mg_policy_free(f.pol);
			f.pol = NULL;
		}
		for (i = 0; i < 4; i++)
			mg_policy_free(old[(i + round) % 4]);
		mg_labels_clear(&ls);
		fx_fini(&f);
	}
	printf("  %zu incremental updates, %zu comparisons with a full compile\n", updates, checks);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(checks >= 40);
	free(o.p);
}

/* Old objects stay unchanged; two updates of the same parent do not disturb each other. */
static void
test_incremental_branches(void)
{
	struct mg_labels ls = MG_LABELS_INIT;
	struct mg_policy *p0, *p1, *p2, *full;
	uint32_t id1 = C1(700), id2 = C1(701);
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(load(&f,
	                           HDR_CNP("p", "a") "spec:\n  endpointSelector: {}\n"
	                                             "  ingress:\n  - fromEndpoints:\n"
	                                             "    - matchExpressions: [{key: app, "
	                                             "operator: In, values: [new, db]}]\n"
	                                             "    toPorts: [{ports: [{port: http}]}]\n"),
	                      1);
	compile(&f);
	p0 = f.pol;
	/* id1: a new kind of identity (new classes), id2: labelled like A_DB */
	CU_ASSERT_EQUAL(mg_labels_parse(&ls,
	                                "k8s:app=new;k8s:io.kubernetes.pod.namespace=a;k8s:io."
	                                "cilium.k8s.policy.cluster=c1",
	                                &f.err),
	                0);
	CU_ASSERT_EQUAL(mg_identity_table_put(f.ids, id1, &ls, 1), 0);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(f.ids, id1, "http", TCP, 7777), 0);
	p1 = mg_policy_update_identities(p0, f.set, f.ids, &id1, 1, &f.err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p1);
	mg_labels_clear(&ls);
	CU_ASSERT_EQUAL(mg_labels_copy(&ls, &mg_identity_table_get(f.ids, A_DB)->labels), 0);
	CU_ASSERT_EQUAL(mg_identity_table_put(f.ids, id2, &ls, 1), 0);
	CU_ASSERT_EQUAL(mg_identity_table_add_named_port(f.ids, id2, "http", TCP, 6666), 0);
	/* a second child of p0, made after p1 extended the blocks they share */
	p2 = mg_policy_update_identities(p0, f.set, f.ids, &id2, 1, &f.err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p2);
	CU_ASSERT_EQUAL(mg_policy_verdict(p0, id1, A_WEB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(mg_policy_verdict(p1, id1, A_WEB, TCP, 80), ALLOW);
	CU_ASSERT_EQUAL(mg_policy_verdict(p2, id1, A_WEB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(mg_policy_verdict(p1, id2, A_WEB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(mg_policy_verdict(p2, id2, A_WEB, TCP, 80), ALLOW);
	/* their own named ports, as destinations */
	CU_ASSERT_EQUAL(mg_policy_verdict(p1, A_DB, id1, TCP, 7777), ALLOW);
	CU_ASSERT_EQUAL(mg_policy_verdict(p1, A_DB, id1, TCP, 6666), DENY_I);
	CU_ASSERT_EQUAL(mg_policy_verdict(p2, A_DB, id2, TCP, 6666), ALLOW);
	CU_ASSERT_EQUAL(mg_policy_verdict(p2, A_DB, id2, TCP, 8080), DENY_I);
	CU_ASSERT_EQUAL(mg_policy_verdict(p2, A_DB, A_DB, TCP, 8080), ALLOW);
	/* the memory is reported for each object, shared parts included */
	CU_ASSERT(mg_policy_memory(p1) > 0 && mg_policy_memory(p2) > 0);
	mg_policy_free(p0);
	f.pol = NULL;
	/* removal of id2, from p2 */
	CU_ASSERT_EQUAL(mg_identity_table_del(f.ids, id2), 0);
	f.pol = mg_policy_update_identities(p2, f.set, f.ids, &id2, 1, &f.err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.pol);
	CU_ASSERT_EQUAL(mg_policy_verdict(f.pol, id2, A_WEB, TCP, 80), DENY_I);
	CU_ASSERT_EQUAL(mg_policy_verdict(p2, id2, A_WEB, TCP, 80), ALLOW);
	mg_policy_free(p2);
	/* f.pol has id2 removed but not id1 added: id1 is unknown to it */
	CU_ASSERT_EQUAL(mg_policy_verdict(f.pol, id1, A_WEB, TCP, 80), DENY_I);
	full = mg_policy_update_identities(f.pol, f.set, f.ids, &id1, 1, &f.err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(full);
	CU_ASSERT_EQUAL(mg_policy_verdict(full, id1, A_WEB, TCP, 80), ALLOW);
	mg_policy_free(full);
	mg_policy_free(p1);
	/* a set that changed since the compile is refused */
	CU_ASSERT_EQUAL(load(&f, HDR_CNP("q", "b") "spec: {endpointSelector: {}, ingress: [{}]}\n"),
	                1);
	CU_ASSERT_PTR_NULL(mg_policy_update_identities(f.pol, f.set, f.ids, &id1, 1, &f.err));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(f.err.msg, "compile again"));
	mg_labels_clear(&ls);
	fx_fini(&f);
}

/* Labels of pod k of namespace j in the many-classes test (app a<k/2>, two versions). */
static void
many_labels(struct mg_labels *ls, unsigned j, unsigned k, const char *version)
{
	char ns[16], app[16];

	snprintf(ns, sizeof(ns), "ns%u", j);
	snprintf(app, sizeof(app), "a%u", k / 2);
	mg_labels_clear(ls);
	CU_ASSERT_EQUAL(mg_labels_add(ls, "k8s", "io.kubernetes.pod.namespace", ns), 0);
	CU_ASSERT_EQUAL(mg_labels_add(ls, "k8s", "io.cilium.k8s.policy.cluster", "c1"), 0);
	CU_ASSERT_EQUAL(mg_labels_add(ls, "k8s", "app", app), 0);
	CU_ASSERT_EQUAL(mg_labels_add(ls, "k8s", "version", version), 0);
	if (k / 2 % 3 == 0)
		CU_ASSERT_EQUAL(mg_labels_add(ls, "k8s", "tier", "frontend"), 0);
}

/* Every ordered pair of the first @p n identities in @p ids, a few ports: compiled == trace. */
static size_t
many_cross_check(struct fx *f, const uint32_t *ids, size_t n, size_t from)
{
	static const uint16_t ports[] = {80, 8080, 8443, 8100, 9999};
	size_t a, b, p, checked = 0;

	for (a = 0; a < n; a++)
		for (b = 0; b < n; b++) {
			if (a < from && b < from)
				continue;
			for (p = 0; p < MG_ARRAY_SIZE(ports); p++) {
				verdict(f, ids[a], ids[b], TCP, ports[p]);
				checked++;
			}
		}
	return checked;
}

/*
 * mg_policy_verdict_bulk against mg_policy_verdict on every ordered pair of
 * @p ids, bursts of 1 to MG_POLICY_BULK_MAX flows, several protocols and
 * ports. Returns the flows compared.
 */
static size_t
bulk_pass(const struct mg_policy *pol, const uint32_t *ids, size_t n)
{
	static const uint8_t protos[] = {TCP, 17, 1, 132, 47};
	static const uint16_t ports[] = {80, 8080, 8443, 8100, 53, 0, 65535};
	uint32_t pair[2 * MG_POLICY_BULK_MAX];
	uint8_t proto[MG_POLICY_BULK_MAX], out[MG_POLICY_BULK_MAX];
	uint16_t port[MG_POLICY_BULK_MAX];
	size_t a, b, k = 0, done = 0, bad = 0, burst = 1, f = 0;

	for (a = 0; a < n; a++)
		for (b = 0; b < n; b++) {
			pair[2 * k] = ids[a];
			pair[2 * k + 1] = ids[b];
			proto[k] = protos[f % MG_ARRAY_SIZE(protos)];
			port[k] = ports[f / MG_ARRAY_SIZE(protos) % MG_ARRAY_SIZE(ports)];
			f++;
			if (++k < burst && !(a == n - 1 && b == n - 1))
				continue;
			mg_policy_verdict_bulk(pol, pair, proto, port, (unsigned)k, out);
			for (size_t i = 0; i < k; i++)
				bad += out[i] != mg_policy_verdict(pol, pair[2 * i],
				                                   pair[2 * i + 1], proto[i],
				                                   port[i]);
			done += k;
			k = 0;
			burst = burst % MG_POLICY_BULK_MAX + 1;
		}
	CU_ASSERT_EQUAL(bad, 0);
	return done;
}

/* bulk_pass with the prefetching passes forced on, then with the default (small: flow by flow). */
static size_t
bulk_equals_single(const struct mg_policy *pol, const uint32_t *ids, size_t n)
{
	size_t done;

	pol_test_set_bulk_min(1);
	done = bulk_pass(pol, ids, n);
	pol_test_set_bulk_min(0);
	CU_ASSERT_EQUAL(bulk_pass(pol, ids, n), done);
	return done;
}

/*
 * Enough peer and subject classes that a row's candidate cells come from
 * the peer-class index (more than 64 classes), and app names every
 * namespace has, so the selector index files each selector under its
 * namespace rather than its app: 3 namespaces x 40 apps x 2 versions, one
 * CNP per app (ingress from the previous app and from the frontend tier,
 * egress to the next app and a named port, a deny of the previous app's
 * v0). Every verdict equals the trace's, after the full compile and after
 * an update that adds identities with new classes.
 */
static void
test_many_classes_cross_check(void)
{
	enum {
		NS = 3,
		APPS = 40,
		PODS = NS * APPS * 2,
		ADDED = 12
	};
	uint32_t ids[PODS + ADDED];
	struct mg_labels ls = MG_LABELS_INIT;
	struct mg_identity_table *t;
	struct mg_policy *next;
	struct fx f;
	char *yaml;
	size_t len = 0, cap = 1 << 20, checked, i;
	unsigned j, k;

	fx_init(&f);
	mismatches = 0;
	yaml = malloc(cap);
	CU_ASSERT_PTR_NOT_NULL_FATAL(yaml);
	for (j = 0; j < NS; j++)
		for (k = 0; k < APPS; k++) {
			len += (size_t)snprintf(
			        yaml + len, cap - len,
			        "---\n" HDR_CNP(
			                "a%u",
			                "ns%u") "spec:\n"
			                        "  endpointSelector: {matchLabels: {app: a%u}}\n"
			                        "  ingress:\n"
			                        "  - fromEndpoints: [{matchLabels: {app: a%u}}]\n"
			                        "    toPorts: [{ports: [{port: \"8080\", protocol: "
			                        "TCP}, {port: "
			                        "\"8443\", protocol: TCP}]}]\n"
			                        "  - fromEndpoints: [{matchExpressions: [{key: "
			                        "tier, operator: In, "
			                        "values: [frontend]}]}]\n"
			                        "    toPorts: [{ports: [{port: \"80\", endPort: "
			                        "89, protocol: TCP}]}]\n"
			                        "  egress:\n"
			                        "  - toEndpoints: [{matchLabels: {app: a%u}}]\n"
			                        "    toPorts: [{ports: [{port: \"8080\", protocol: "
			                        "TCP}, {port: http, "
			                        "protocol: TCP}]}]\n"
			                        "  ingressDeny:\n"
			                        "  - fromEndpoints: [{matchLabels: {app: a%u, "
			                        "version: v0}}]\n"
			                        "    toPorts: [{ports: [{port: \"8443\", protocol: "
			                        "TCP}]}]\n",
			        k, j, k, (k + APPS - 1) % APPS, (k + 1) % APPS,
			        (k + APPS - 1) % APPS);
			CU_ASSERT_FATAL(len < cap);
		}
	CU_ASSERT_EQUAL_FATAL(load(&f, yaml), NS * APPS);
	free(yaml);
	/* a table of these pods alone, each app's second pod with a named port */
	t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	mg_identity_table_free(f.ids);
	f.ids = t;
	for (i = 0; i < PODS; i++) {
		j = (unsigned)(i / (APPS * 2));
		k = (unsigned)(i % (APPS * 2));
		ids[i] = C1(1000 + (uint32_t)i);
		many_labels(&ls, j, k, k % 2 ? "v1" : "v0");
		CU_ASSERT_EQUAL_FATAL(mg_identity_table_put(t, ids[i], &ls, 1), 0);
		if (k % 2)
			CU_ASSERT_EQUAL_FATAL(
			        mg_identity_table_add_named_port(t, ids[i], "http", TCP,
			                                         (uint16_t)(8100 + k / 2 % 2)),
			        0);
	}
	compile(&f);
	checked = many_cross_check(&f, ids, PODS, 0);
	CU_ASSERT_EQUAL(bulk_equals_single(f.pol, ids, PODS), (size_t)PODS * PODS);
	/* new identities: a third version, and named ports never seen */
	for (i = PODS; i < PODS + ADDED; i++) {
		k = (unsigned)(i - PODS) * 6;
		ids[i] = C1(1000 + (uint32_t)i);
		many_labels(&ls, (unsigned)(i % NS), k, "v2");
		CU_ASSERT_EQUAL_FATAL(mg_identity_table_put(t, ids[i], &ls, 1), 0);
		CU_ASSERT_EQUAL_FATAL(mg_identity_table_add_named_port(t, ids[i], "http", TCP,
		                                                       (uint16_t)(8100 + i % 3)),
		                      0);
	}
	next = mg_policy_update_identities(f.pol, f.set, f.ids, ids + PODS, ADDED, &f.err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(next);
	mg_policy_free(f.pol);
	f.pol = next;
	checked += many_cross_check(&f, ids, PODS + ADDED, PODS);
	CU_ASSERT_EQUAL(bulk_equals_single(f.pol, ids, PODS + ADDED),
	                (size_t)(PODS + ADDED) * (PODS + ADDED));
	CU_ASSERT(checked > 300000);
	CU_ASSERT_EQUAL(mismatches, 0);
	mg_labels_clear(&ls);
	fx_fini(&f);
}

/*
 * docs/reliability.md, "Limits": the compiled policy's caps (classes per
 * role and direction, distinct cells), lowered here to reach them with a
 * small set: six subjects each open to six peers on a port of its own pair,
 * so 36 distinct cells. Past a cap the compile fails with the cap named and
 * the policy compiled before stays whole; back at the real caps it compiles
 * to the same verdicts.
 */
static void
test_limits_compiled(void)
{
	static const struct {
		uint32_t classes, cells;
		const char *msg;
	} c[] = {
	        {2, 0, "more than 2 "},
	        {0, 1, "more than 1 distinct cells for ingress"},
	};
	size_t cap = 16384, n = 0;
	char *y = malloc(cap);
	struct mg_policy *good;
	struct fx f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(y);
	fx_init(&f);
	for (unsigned i = 0; i < 12; i++) {
		struct mg_labels ls = MG_LABELS_INIT;
		char l[160];

		snprintf(l, sizeof(l),
		         "k8s:app=%c%u;k8s:io.kubernetes.pod.namespace=a;"
		         "k8s:io.cilium.k8s.policy.cluster=c1",
		         i < 6 ? 's' : 'p', i % 6);
		CU_ASSERT_EQUAL_FATAL(mg_labels_parse(&ls, l, &f.err), 0);
		CU_ASSERT_EQUAL_FATAL(mg_identity_table_put(f.ids, C1(3000 + i), &ls, 1), 0);
		mg_labels_clear(&ls);
	}
	for (unsigned i = 0; i < 6; i++) {
		n += (size_t)snprintf(y + n, cap - n,
		                      "---\n" HDR_CNP("s%u", "a") "spec:\n  endpointSelector:\n"
		                                                  "    matchLabels: {app: s%u}\n"
		                                                  "  ingress:\n",
		                      i, i);
		for (unsigned j = 0; j < 6; j++)
			n += (size_t)snprintf(
			        y + n, cap - n,
			        "  - fromEndpoints: [{matchLabels: {app: p%u}}]\n"
			        "    toPorts: [{ports: [{port: \"%u\", protocol: TCP}]}]\n",
			        j, 1000 + i * 6 + j);
	}
	CU_ASSERT_EQUAL_FATAL(load(&f, y), 6);
	free(y);
	compile(&f);
	good = f.pol;
	f.pol = NULL;
	CU_ASSERT_EQUAL(mg_policy_verdict(good, C1(3006 + 2), C1(3000 + 3), TCP, 1000 + 3 * 6 + 2),
	                ALLOW);
	CU_ASSERT_EQUAL(mg_policy_verdict(good, C1(3006 + 2), C1(3000 + 3), TCP, 1000), DENY_I);
	for (size_t i = 0; i < MG_ARRAY_SIZE(c); i++) {
		struct mg_policy *p;

		pol_test_set_caps(c[i].classes, c[i].cells);
		p = mg_policy_compile(f.set, f.ids, &f.params, &f.err);
		pol_test_set_caps(0, 0);
		CU_ASSERT_PTR_NULL(p);
		if (p != NULL || strstr(f.err.msg, c[i].msg) == NULL)
			fprintf(stderr, "case %zu: %s\n", i, p ? "compiled" : f.err.msg);
		CU_ASSERT_PTR_NOT_NULL(strstr(f.err.msg, c[i].msg));
		mg_policy_free(p);
		/* the running policy is untouched */
		CU_ASSERT_EQUAL(
		        mg_policy_verdict(good, C1(3006 + 5), C1(3000 + 5), TCP, 1000 + 5 * 6 + 5),
		        ALLOW);
	}
	compile(&f);
	for (uint32_t a = 0; a < 12; a++)
		for (uint32_t b = 0; b < 12; b++)
			for (uint32_t port = 1000; port < 1036; port++)
				CU_ASSERT_EQUAL(mg_policy_verdict(good, C1(3000 + a), C1(3000 + b),
				                                  TCP, port),
				                mg_policy_verdict(f.pol, C1(3000 + a), C1(3000 + b),
				                                  TCP, port));
	mg_policy_free(good);
	fx_fini(&f);
}

static void
test_incremental_many_identities(void)
{
	struct mg_labels ls = MG_LABELS_INIT;
	struct mg_policy *cur, *next, *full;
	uint32_t batch[100];
	size_t i, j, bad = 0;
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(load(&f, grid_policies), 10);
	compile(&f);
	cur = f.pol;
	f.pol = NULL;
	CU_ASSERT_EQUAL(mg_labels_copy(&ls, &mg_identity_table_get(f.ids, B_DB)->labels), 0);
	/* 3000 identities in batches: the identity map's directory grows under updates */
	for (i = 0; i < 30; i++) {
		for (j = 0; j < 100; j++) {
			batch[j] = C1(1000 + (uint32_t)(i * 100 + j));
			CU_ASSERT_EQUAL(mg_identity_table_put(f.ids, batch[j], &ls, 1), 0);
		}
		next = mg_policy_update_identities(cur, f.set, f.ids, batch, 100, &f.err);
		CU_ASSERT_PTR_NOT_NULL_FATAL(next);
		mg_policy_free(cur);
		cur = next;
	}
	full = mg_policy_compile(f.set, f.ids, &f.params, &f.err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(full);
	for (i = 0; i < 3000; i += 7)
		for (j = 0; j < MG_ARRAY_SIZE(fixture_ids); j++) {
			uint32_t id = C1(1000 + (uint32_t)i);

			bad += mg_policy_verdict(cur, fixture_ids[j].id, id, TCP, 5432) !=
			       mg_policy_verdict(full, fixture_ids[j].id, id, TCP, 5432);
			bad += mg_policy_verdict(cur, id, fixture_ids[j].id, TCP, 5432) !=
			       mg_policy_verdict(full, id, fixture_ids[j].id, TCP, 5432);
		}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(mg_policy_verdict(cur, A_WEB, C1(2999), TCP, 5432), ALLOW);
	/* same classes as B_DB: the memory grows by map slots only */
	CU_ASSERT(mg_policy_memory(cur) < mg_policy_memory(full) * 3);
	mg_policy_free(full);
	mg_policy_free(cur);
	mg_labels_clear(&ls);
	fx_fini(&f);
}

/* ---- introspection: policy get / policy selectors ---- */

struct walk_rec {
	char names[4][32];
	size_t rules[4];
	bool ccnp[4];
	size_t n;
};

static int
walk_policy(const struct mg_policy_info *pi, void *arg)
{
	struct walk_rec *w = arg;

	if (w->n < 4) {
		snprintf(w->names[w->n], sizeof(w->names[0]), "%s/%s", pi->ns ? pi->ns : "-",
		         pi->name);
		w->rules[w->n] = pi->rules;
		w->ccnp[w->n] = pi->ccnp;
	}
	w->n++;
	return 0;
}

static void
test_policy_walk(void)
{
	struct walk_rec w = {0};
	struct fx f;

	fx_init(&f);
	CU_ASSERT_EQUAL_FATAL(
	        load(&f, HDR_CNP("p1", "a") "specs:\n"
	                                    "- {endpointSelector: {}, ingress: [{}]}\n"
	                                    "- {endpointSelector: {}, egress: [{}]}\n"
	                                    "---\n" HDR_CCNP("p2") "spec:\n"
	                                                           "  endpointSelector: {}\n"
	                                                           "  ingressDeny: [{}]\n"),
	        2);
	CU_ASSERT_EQUAL(mg_policy_set_walk(f.set, walk_policy, &w), 0);
	CU_ASSERT_EQUAL_FATAL(w.n, 2);
	CU_ASSERT_STRING_EQUAL(w.names[0], "a/p1");
	CU_ASSERT_EQUAL(w.rules[0], 2);
	CU_ASSERT_FALSE(w.ccnp[0]);
	CU_ASSERT_STRING_EQUAL(w.names[1], "-/p2");
	CU_ASSERT_EQUAL(w.rules[1], 1);
	CU_ASSERT_TRUE(w.ccnp[1]);
	fx_fini(&f);
}

struct sel_rec {
	char text[8][160];
	size_t users[8];
	uint32_t ids[8][8];
	size_t n_ids[8];
	size_t n;
};

static int
walk_sel(const struct mg_policy_selector_info *si, void *arg)
{
	struct sel_rec *r = arg;

	if (r->n < 8) {
		snprintf(r->text[r->n], sizeof(r->text[0]), "%s", si->text);
		r->users[r->n] = si->users;
		r->n_ids[r->n] = si->n_ids;
		for (size_t i = 0; i < si->n_ids && i < 8; i++)
			r->ids[r->n][i] = si->ids[i];
	}
	r->n++;
	return 0;
}

static void
test_policy_selectors(void)
{
	struct sel_rec r = {0};
	size_t web = 8, db = 8;
	struct fx f;

	fx_init(&f);
	/* web is the subject of one rule and a peer of another: one selector, two users */
	CU_ASSERT_EQUAL_FATAL(
	        load(&f, HDR_CNP("p", "a") "specs:\n"
	                                   "- endpointSelector: {matchLabels: {app: db}}\n"
	                                   "  ingress:\n"
	                                   "  - fromEndpoints: [{matchLabels: {app: web}}]\n"
	                                   "- endpointSelector: {matchLabels: {app: web}}\n"
	                                   "  egress:\n"
	                                   "  - toEndpoints: [{matchLabels: {app: db}}]\n"),
	        1);
	CU_ASSERT_EQUAL(mg_policy_set_selectors(f.set, f.ids, true, walk_sel, &r), 0);
	/* subjects and peers are scoped apart (a subject is always cluster-scoped),
	 * so each label selector appears once as a subject and once as a peer */
	CU_ASSERT_EQUAL_FATAL(r.n, 4);
	for (size_t i = 0; i < r.n; i++) {
		bool is_web = strstr(r.text[i], "any:app=web") != NULL;

		CU_ASSERT_PTR_NOT_NULL(strstr(r.text[i], "k8s:io.kubernetes.pod.namespace=a"));
		CU_ASSERT_PTR_NOT_NULL(strstr(r.text[i], "k8s:io.cilium.k8s.policy.cluster=c1"));
		CU_ASSERT_EQUAL(r.users[i], 1);
		/* namespace a of cluster c1 only: not B_WEB, X_A_WEB or NOCLUSTER */
		CU_ASSERT_EQUAL_FATAL(r.n_ids[i], 1);
		CU_ASSERT_EQUAL(r.ids[i][0], is_web ? A_WEB : A_DB);
		if (is_web)
			web++;
		else
			db++;
	}
	CU_ASSERT_EQUAL(web, 8 + 2);
	CU_ASSERT_EQUAL(db, 8 + 2);
	/* without default_local_cluster the peers are not cluster-scoped */
	memset(&r, 0, sizeof(r));
	CU_ASSERT_EQUAL(mg_policy_set_selectors(f.set, f.ids, false, walk_sel, &r), 0);
	CU_ASSERT_EQUAL_FATAL(r.n, 4);
	web = 0;
	for (size_t i = 0; i < r.n; i++)
		if (strstr(r.text[i], "policy.cluster") == NULL) {
			/* web: A_WEB, X_A_WEB and NOCLUSTER; db: A_DB and X_A_DB */
			CU_ASSERT_EQUAL(r.n_ids[i], strstr(r.text[i], "app=web") ? 3 : 2);
			web++;
		}
	CU_ASSERT_EQUAL(web, 2);
	fx_fini(&f);
}

static CU_TestInfo tests[] = {
        {"policy_walk", test_policy_walk},
        {"policy_selectors", test_policy_selectors},
        {"load_single", test_load_single},
        {"load_multi_doc", test_load_multi_doc},
        {"load_list", test_load_list},
        {"load_specs", test_load_specs},
        {"load_no_spec_is_error", test_load_no_spec_is_error},
        {"cnp_default_namespace", test_cnp_default_namespace},
        {"load_error_leaves_set_unchanged", test_load_error_leaves_set_unchanged},
        {"load_dir_fixtures", test_load_dir_fixtures},
        {"load_dir_order_and_rollback", test_load_dir_order_and_rollback},
        {"rejected_fields", test_rejected_fields},
        {"cilium_rule_validation", test_cilium_rule_validation},
        {"skipped_allow_rules", test_skipped_allow_rules},
        {"skip_keeps_other_entries", test_skip_keeps_other_entries},
        {"node_selector_skipped", test_node_selector_skipped},
        {"unknown_fields", test_unknown_fields},
        {"duplicate_keys", test_duplicate_keys},
        {"prefixed_keys_not_duplicates", test_prefixed_keys_not_duplicates},
        {"type_errors", test_type_errors},
        {"limits", test_limits},
        {"limits_set", test_limits_set},
        {"limits_items", test_limits_items},
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
        {"trace_selected_without_default_deny", test_trace_selected_without_default_deny},
        {"enforcement_names", test_enforcement_names},
        {"memory_and_revision", test_memory_and_revision},
        {"entities", test_entities},
        {"entities_egress_and_deny", test_entities_egress_and_deny},
        {"cidr_rules", test_cidr_rules},
        {"cidr_zero", test_cidr_zero},
        {"cidr_ipv6_labels", test_cidr_ipv6_labels},
        {"cidr_sync_lifecycle", test_cidr_sync_lifecycle},
        {"cidr_sync_fresh_tables", test_cidr_sync_fresh_tables},
        {"named_ports", test_named_ports},
        {"named_ports_deny_and_update", test_named_ports_deny_and_update},
        {"named_ports_ambiguous", test_named_ports_ambiguous},
        {"icmp_rules", test_icmp_rules},
        {"icmp_type_names", test_icmp_type_names},
        {"check_path", test_check_path},
        {"grid_cross_check", test_grid_cross_check},
        {"random_cross_check", test_random_cross_check},
        {"grid_cross_check_language", test_grid_cross_check_language},
        {"incremental_equals_full", test_incremental_equals_full},
        {"incremental_branches", test_incremental_branches},
        {"incremental_many_identities", test_incremental_many_identities},
        {"many_classes_cross_check", test_many_classes_cross_check},
        {"limits_compiled", test_limits_compiled},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("policy", tests)
