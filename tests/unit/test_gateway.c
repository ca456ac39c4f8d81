/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/gateway without the EAL and without Redis: load and
 * compile, the handover of the policy, and reloads, with a publication
 * callback that records what it is handed (and can be made to fail):
 * a good reload publishes the new policy and exactly the ipcache
 * difference in one call; every failure (a broken config, policy,
 * identity or endpoint file, a publication that fails) leaves the
 * running state exactly as it was, says why with file:line:col, and
 * counts. The sync's batches are tested against a real redis-server in
 * tests/integration/gateway_sync_test.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_gateway.h"
#include "mg_test.h"

static char dir[256];

static void
write_file(const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

#define CONFIG                                                     \
	"version: 1\n"                                             \
	"eal: [\"--no-huge\", \"--no-pci\"]\n"                     \
	"datapath:\n"                                              \
	"  ports:\n"                                               \
	"    - {name: inside, device: net_null0, peer: outside}\n" \
	"    - {name: outside, device: net_null1, peer: inside}\n" \
	"cluster: {name: cluster-a, id: 1}\n"                      \
	"policy:\n"                                                \
	"  sources: [{cluster: cluster-a, path: policies.yaml}]\n" \
	"identities: {files: [identities.yaml]}\n"                 \
	"ipcache: {files: [endpoints.yaml]}\n"

#define IDENT(id, app)                                                                         \
	"---\napiVersion: cilium.io/v2\nkind: CiliumIdentity\nmetadata: {name: \"" #id "\"}\n" \
	"security-labels:\n  k8s:app: " app "\n  k8s:io.kubernetes.pod.namespace: shop\n"      \
	"  k8s:io.cilium.k8s.policy.cluster: cluster-a\n"

#define ENDPOINT(name, id, ip)                                                        \
	"---\napiVersion: cilium.io/v2\nkind: CiliumEndpoint\nmetadata: {name: " name \
	", namespace: shop}\nstatus:\n  identity: {id: " #id "}\n  networking:\n"     \
	"    addressing: [{ipv4: " ip "}]\n"

/* db accepts web on TCP 5432 */
#define POLICY                                                         \
	"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"        \
	"metadata: {name: db-in, namespace: shop}\nspec:\n"            \
	"  endpointSelector: {matchLabels: {app: db}}\n"               \
	"  ingress:\n  - fromEndpoints: [{matchLabels: {app: web}}]\n" \
	"    toPorts: [{ports: [{port: \"5432\", protocol: TCP}]}]\n"

#define WEB 65600
#define DB 65601
#define CACHE 65602

/* What the readers would hold, kept by the recording publication. */
struct readers {
	struct mg_policy *policy; /* the readers' */
	unsigned calls, with_policy;
	int changes; /* of the last good call */
	int fail;    /* the next call fails with this (0: succeeds) */
};

static int
publish(void *arg, struct mg_ipcache *ipc, struct mg_policy *policy)
{
	struct readers *r = arg;
	int rc;

	r->calls++;
	if (r->fail != 0)
		return r->fail;
	rc = mg_ipcache_commit(ipc);
	if (rc < 0)
		return rc;
	if (policy != NULL) {
		mg_policy_free(r->policy);
		r->policy = policy;
		r->with_policy++;
	}
	r->changes = rc;
	return rc;
}

static void
files_v1(void)
{
	write_file("meshgate.yaml", CONFIG);
	write_file("policies.yaml", POLICY);
	write_file("identities.yaml", IDENT(65600, "web") IDENT(65601, "db"));
	write_file("endpoints.yaml",
	           ENDPOINT("web-0", 65600, "10.1.0.1") ENDPOINT("db-0", 65601, "10.1.0.2"));
}

/* A started gateway whose policy went to @p r, as the daemon hands it to the data path. */
static struct mg_gateway *
start(struct readers *r)
{
	struct mg_gateway_params p = {.publish = publish, .publish_arg = r};
	struct mg_error err = {{0}};
	char path[PATH_MAX];
	struct mg_config *cfg;
	struct mg_gateway *gw;

	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "%s/meshgate.yaml", dir);
	cfg = mg_config_load(path, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	gw = mg_gateway_create(cfg, &p, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(gw);
	CU_ASSERT_EQUAL_FATAL(mg_gateway_start(gw, &err), 0);
	r->policy = mg_gateway_take_policy(gw);
	CU_ASSERT_PTR_NOT_NULL(r->policy);
	CU_ASSERT_PTR_EQUAL(mg_gateway_policy(gw), r->policy);
	return gw;
}

static void
finish(struct mg_gateway *gw, struct readers *r)
{
	mg_gateway_free(gw);
	mg_policy_free(r->policy);
}

static uint32_t
lookup(struct mg_gateway *gw, const char *ip)
{
	struct mg_ipcache_entry e, out;

	memset(&e, 0, sizeof(e));
	if (mg_ipcache_parse_prefix(ip, &e) < 0 ||
	    mg_ipcache_get(mg_gateway_ipcache(gw), e.family, e.addr, e.plen, &out) < 0)
		return 0;
	return out.identity;
}

static void
test_load_and_start(void)
{
	struct readers r;
	struct mg_gateway *gw;
	struct mg_gateway_stats st;
	char sum[512];

	files_v1();
	gw = start(&r);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.1"), WEB);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.2"), DB);
	CU_ASSERT_EQUAL(mg_policy_verdict(r.policy, WEB, DB, 6, 5432), MG_VERDICT_ALLOW);
	CU_ASSERT_EQUAL(mg_policy_verdict(r.policy, WEB, DB, 6, 80), MG_VERDICT_DENY_INGRESS);
	CU_ASSERT_PTR_NULL(mg_gateway_sync(gw));
	CU_ASSERT_EQUAL(r.calls, 0); /* nothing published before the handover */
	mg_gateway_stats(gw, &st);
	CU_ASSERT_EQUAL(st.revision, 1);
	mg_gateway_summary(gw, sum, sizeof(sum));
	CU_ASSERT_PTR_NOT_NULL(strstr(sum, "1 policies (1 rules, 0 skipped)"));
	CU_ASSERT_PTR_NULL(strstr(sum, "policy memory 0 bytes"));
	finish(gw, &r);
}

/* A good reload: one publication with the new policy and exactly the difference. */
static void
test_reload_ok(void)
{
	struct readers r;
	struct mg_gateway *gw;
	struct mg_gateway_stats st;
	struct mg_error err = {{0}};
	const struct mg_policy *before;

	files_v1();
	gw = start(&r);
	before = r.policy;
	/* 10.1.0.1 moves to a new identity (cache), 10.1.0.3 is new, db allows cache */
	write_file("identities.yaml", IDENT(65600, "web") IDENT(65601, "db") IDENT(65602, "cache"));
	write_file("endpoints.yaml",
	           ENDPOINT("web-0", 65602, "10.1.0.1") ENDPOINT("db-0", 65601, "10.1.0.2")
	                   ENDPOINT("web-1", 65600, "10.1.0.3"));
	write_file("policies.yaml", POLICY "  - fromEndpoints: [{matchLabels: {app: cache}}]\n"
	                                   "    toPorts: [{ports: [{port: \"6379\"}]}]\n");
	if (mg_gateway_reload(gw, &err) != 0)
		fprintf(stderr, "reload: %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(err.msg[0], '\0');
	CU_ASSERT_EQUAL(r.calls, 1);
	CU_ASSERT_EQUAL(r.with_policy, 1);
	CU_ASSERT_EQUAL(r.changes, 2); /* 10.1.0.1 changed, 10.1.0.3 added */
	CU_ASSERT_PTR_NOT_EQUAL(r.policy, before);
	CU_ASSERT_PTR_EQUAL(mg_gateway_policy(gw), r.policy);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.1"), CACHE);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.3"), WEB);
	CU_ASSERT_EQUAL(mg_policy_verdict(r.policy, CACHE, DB, 6, 6379), MG_VERDICT_ALLOW);
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(mg_gateway_identities(gw), CACHE));
	mg_gateway_stats(gw, &st);
	CU_ASSERT_EQUAL(st.revision, 2);
	CU_ASSERT_EQUAL(st.reloads_ok, 1);
	CU_ASSERT_EQUAL(st.last_reload_changes, 2);
	finish(gw, &r);
}

/* Every failure keeps the running state and says why. */
static void
test_reload_failures(void)
{
	static const struct {
		const char *file, *text, *want;
	} bad[] = {
	        {"meshgate.yaml", CONFIG "bogus: 1\n", "meshgate.yaml:12:1: "},
	        {"policies.yaml", POLICY "    toPorts: [{ports: [{port: \"99999\"}]}]\n",
	         "policies.yaml:"},
	        {"identities.yaml", IDENT(65600, "web") "security-labels: {}\n",
	         "identities.yaml:"},
	        {"endpoints.yaml", ENDPOINT("web-0", 65600, "10.1.0.300"), "endpoints.yaml:"},
	        {"policies.yaml", "kind: [", "policies.yaml:2:1: "},
	};
	struct readers r;
	struct mg_gateway *gw;
	struct mg_gateway_stats st;

	files_v1();
	gw = start(&r);
	for (size_t i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		struct mg_error err = {{0}};
		const struct mg_policy *pol = mg_gateway_policy(gw);

		files_v1();
		/* a change the broken reload must not bring */
		write_file("endpoints.yaml", ENDPOINT("web-0", 65601, "10.1.0.1"));
		write_file(bad[i].file, bad[i].text);
		CU_ASSERT(mg_gateway_reload(gw, &err) < 0);
		if (strstr(err.msg, bad[i].want) == NULL)
			fprintf(stderr, "case %zu: %s\n", i, err.msg);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, bad[i].want));
		CU_ASSERT_EQUAL(r.calls, 0);
		CU_ASSERT_PTR_EQUAL(mg_gateway_policy(gw), pol);
		CU_ASSERT_EQUAL(lookup(gw, "10.1.0.1"), WEB);
		CU_ASSERT_EQUAL(mg_ipcache_pending(mg_gateway_ipcache(gw)), 0);
		mg_gateway_stats(gw, &st);
		CU_ASSERT_EQUAL(st.revision, 1);
		CU_ASSERT_EQUAL(st.reloads_failed, i + 1);
		CU_ASSERT_STRING_EQUAL(st.last_error, err.msg);
	}
	/* and a good one after them works */
	files_v1();
	{
		struct mg_error err = {{0}};

		CU_ASSERT_EQUAL(mg_gateway_reload(gw, &err), 0);
		mg_gateway_stats(gw, &st);
		CU_ASSERT_EQUAL(st.revision, 2);
		CU_ASSERT_STRING_EQUAL(st.last_error, "");
	}
	finish(gw, &r);
}

/* The publication fails (out of memory): nothing of the reload goes live. */
static void
test_reload_publish_fails(void)
{
	struct readers r;
	struct mg_gateway *gw;
	struct mg_gateway_stats st;
	struct mg_error err = {{0}};
	const struct mg_policy *pol;

	files_v1();
	gw = start(&r);
	pol = mg_gateway_policy(gw);
	write_file("endpoints.yaml", ENDPOINT("web-0", 65601, "10.1.0.1"));
	r.fail = -ENOMEM;
	CU_ASSERT_EQUAL(mg_gateway_reload(gw, &err), -ENOMEM);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "publishing the new state failed"));
	CU_ASSERT_EQUAL(r.calls, 1);
	CU_ASSERT_PTR_EQUAL(mg_gateway_policy(gw), pol);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.1"), WEB);
	CU_ASSERT_EQUAL(mg_ipcache_pending(mg_gateway_ipcache(gw)), 0);
	mg_gateway_stats(gw, &st);
	CU_ASSERT_EQUAL(st.revision, 1);
	CU_ASSERT_EQUAL(st.reloads_failed, 1);
	/* the next one goes through */
	r.fail = 0;
	CU_ASSERT_EQUAL(mg_gateway_reload(gw, &err), 0);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.1"), DB);
	finish(gw, &r);
}

/* Without a callback (no readers: --check-config, meshgatectl) it commits itself. */
static void
test_no_readers(void)
{
	struct mg_error err = {{0}};
	char path[PATH_MAX];
	struct mg_gateway *gw;
	struct mg_trace_ctx ctx;
	struct mg_policy_params pp;
	struct mg_trace_flow f;
	struct mg_trace_req req = {"10.1.0.1", "10.1.0.2", "tcp", "5432", NULL};
	char why[256];
	json_t *doc = NULL;

	files_v1();
	snprintf(path, sizeof(path), "%s/meshgate.yaml", dir);
	gw = mg_gateway_create(mg_config_load(path, &err), NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(gw);
	CU_ASSERT_EQUAL(mg_gateway_compile(gw, &err), 0);
	mg_gateway_trace_ctx(gw, &ctx, &pp);
	CU_ASSERT_EQUAL(mg_trace_flow_parse(&req, &f, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(mg_trace_json(&ctx, &f, &doc, why, sizeof(why)), 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(doc, "verdict")), "allowed");
	json_decref(doc);
	write_file("endpoints.yaml", ENDPOINT("web-0", 65601, "10.1.0.1"));
	CU_ASSERT_EQUAL(mg_gateway_reload(gw, &err), 0);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.1"), DB);
	CU_ASSERT_PTR_NOT_NULL(mg_gateway_policy(gw));
	mg_gateway_free(gw);
	/* a broken config at creation: NULL, errno, the message */
	write_file("meshgate.yaml", CONFIG "ipcache: {files: [missing.yaml]}\n");
	CU_ASSERT_PTR_NULL(mg_config_load(path, &err));
}

/*
 * A taker that fails (the data path's creation) gives the policy back: the
 * gateway owns it again, still runs it, and frees it (the sanitized run
 * would report the leak).
 */
static void
test_return_policy(void)
{
	struct readers r;
	struct mg_gateway *gw;

	files_v1();
	gw = start(&r);
	mg_gateway_return_policy(gw, r.policy);
	CU_ASSERT_PTR_EQUAL(mg_gateway_policy(gw), r.policy);
	CU_ASSERT_EQUAL(mg_policy_verdict(mg_gateway_policy(gw), WEB, DB, 6, 5432),
	                MG_VERDICT_ALLOW);
	/* and it can be taken again */
	CU_ASSERT_PTR_EQUAL(mg_gateway_take_policy(gw), r.policy);
	mg_gateway_return_policy(gw, r.policy);
	mg_gateway_free(gw);
}

static int
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mg-gateway-test-XXXXXX");
	return mkdtemp(dir) == NULL;
}

static int
teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) != 0;
}

static CU_TestInfo tests[] = {
        {"load_and_start", test_load_and_start},
        {"reload_ok", test_reload_ok},
        {"reload_failures", test_reload_failures},
        {"reload_publish_fails", test_reload_publish_fails},
        {"no_readers", test_no_readers},
        {"return_policy", test_return_policy},
        CU_TEST_INFO_NULL,
};

int
main(void)
{
	CU_SuiteInfo suites[] = {{"gateway", setup, teardown, NULL, NULL, tests},
	                         CU_SUITE_INFO_NULL};

	return mg_test_run(suites);
}
