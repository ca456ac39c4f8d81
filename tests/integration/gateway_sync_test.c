/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/gateway's Redis sync against a real redis-server (started by
 * kvsync_test.sh, which passes its port and the Function library), no EAL:
 * the start syncs before anything is published; each tick's batch goes
 * out in ONE publication with the policy derived for the identities it
 * changed (none for an ipcache-only batch); identities added, changed and
 * removed reach the verdicts; a reload while changes wait in Redis keeps
 * the synced entries and the next tick applies them to the new tables; a
 * batch that cannot be published is counted and repaired.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "mg_gateway.h"
#include "mg_test.h"

static int port;
static const char *lua_path;
static redisContext *R;
static char dir[256];

static void
rcmd(const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(R, fmt, ap);
	va_end(ap);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	if (r->type == REDIS_REPLY_ERROR)
		fprintf(stderr, "redis error: %s\n", r->str);
	CU_ASSERT(r->type != REDIS_REPLY_ERROR);
	freeReplyObject(r);
}

static void
write_file(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

/* The Function library, the cluster config (per-cluster layout) and canaries. */
static void
reset(void)
{
	static char buf[65536];
	FILE *f = fopen(lua_path, "r");
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	rcmd("FLUSHALL");
	rcmd("FUNCTION LOAD REPLACE %s", buf);
	rcmd("SET cilium/cluster-config/cluster-a "
	     "{\"id\":1,\"capabilities\":{\"syncedCanaries\":true,\"cached\":true}}");
	rcmd("SET cilium/synced/cluster-a/cilium/cache/identities/v1 2026-01-01T00:00:00Z");
	rcmd("SET cilium/synced/cluster-a/cilium/cache/ip/v1 2026-01-01T00:00:00Z");
}

static void
put(const char *key, const char *val)
{
	rcmd("FCALL mg_put 3 %s meshgate/log/cluster-a meshgate/epoch/cluster-a %s 100000 tok", key,
	     val);
}

static void
del(const char *key)
{
	rcmd("FCALL mg_del 3 %s meshgate/log/cluster-a meshgate/epoch/cluster-a 100000 tok", key);
}

static void
put_id(unsigned id, const char *app)
{
	char key[128], val[256];

	snprintf(key, sizeof(key), "cilium/cache/identities/v1/cluster-a/id/%u", id);
	snprintf(val, sizeof(val),
	         "k8s:app=%s;k8s:io.cilium.k8s.policy.cluster=cluster-a;"
	         "k8s:io.kubernetes.pod.namespace=shop;",
	         app);
	put(key, val);
}

static void
put_ip(const char *ip, unsigned id)
{
	char key[128], val[256];

	snprintf(key, sizeof(key), "cilium/cache/ip/v1/cluster-a/%s", ip);
	snprintf(val, sizeof(val),
	         "{\"IP\":\"%s\",\"Mask\":null,\"HostIP\":\"\",\"ID\":%u,\"Key\":0,\"Metadata\":"
	         "\"\"}",
	         ip, id);
	put(key, val);
}

/* db (65601) accepts web on TCP 5432; db and 10.1.0.2 are static. */
static void
files(void)
{
	char text[1024];

	snprintf(text, sizeof(text),
	         "version: 1\n"
	         "eal: [\"--no-huge\"]\n"
	         "datapath:\n  ports:\n"
	         "    - {name: inside, device: net_null0, peer: outside}\n"
	         "    - {name: outside, device: net_null1, peer: inside}\n"
	         "cluster: {name: cluster-a, id: 1}\n"
	         "policy: {sources: [{cluster: cluster-a, path: policies.yaml}]}\n"
	         "identities: {files: [identities.yaml]}\n"
	         "ipcache: {entries: [{prefix: 10.1.0.2/32, identity: 65601}]}\n"
	         "kvstore:\n  redis: redis://127.0.0.1:%d\n  clusters: [cluster-a]\n"
	         "  sync_timeout: 5\n",
	         port);
	write_file("meshgate.yaml", text);
	write_file("policies.yaml", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
	                            "metadata: {name: db-in, namespace: shop}\nspec:\n"
	                            "  endpointSelector: {matchLabels: {app: db}}\n"
	                            "  ingress:\n  - fromEndpoints: [{matchLabels: {app: web}}]\n"
	                            "    toPorts: [{ports: [{port: \"5432\", protocol: TCP}]}]\n");
	write_file("identities.yaml",
	           "apiVersion: cilium.io/v2\nkind: CiliumIdentity\nmetadata: {name: \"65601\"}\n"
	           "security-labels:\n  k8s:app: db\n  k8s:io.kubernetes.pod.namespace: shop\n"
	           "  k8s:io.cilium.k8s.policy.cluster: cluster-a\n");
}

struct readers {
	struct mg_policy *policy;
	unsigned calls, with_policy;
	int fail;
};

static int
publish(void *arg, struct mg_ipcache *ipc, struct mg_policy *policy)
{
	struct readers *r = arg;
	int rc;

	if (r->fail != 0) {
		r->calls++;
		return r->fail;
	}
	rc = mg_ipcache_commit(ipc);
	if (rc < 0)
		return rc;
	r->calls++;
	if (policy != NULL) {
		mg_policy_free(r->policy);
		r->policy = policy;
		r->with_policy++;
	}
	return rc;
}

static struct mg_gateway *
start(struct readers *r)
{
	struct mg_gateway_params p = {.publish = publish, .publish_arg = r};
	struct mg_error err = {{0}};
	char path[512];
	struct mg_gateway *gw;

	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "%s/meshgate.yaml", dir);
	gw = mg_gateway_create(mg_config_load(path, &err), &p, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(gw);
	if (mg_gateway_start(gw, &err) != 0)
		fprintf(stderr, "start: %s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mg_gateway_sync(gw));
	r->policy = mg_gateway_take_policy(gw);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->policy);
	return gw;
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

/* Tick until a publication came (at most @p n ticks). */
static void
ticks(struct mg_gateway *gw, struct readers *r, int n)
{
	unsigned before = r->calls;

	for (int i = 0; i < n && r->calls == before; i++)
		mg_gateway_sync_tick(gw);
	/* and the verification after it, so nothing is left for the next step */
	for (int i = 0; i < 3; i++)
		mg_gateway_sync_tick(gw);
}

static void
test_start_and_batches(void)
{
	struct readers r;
	struct mg_gateway *gw;
	unsigned calls, with;

	reset();
	files();
	put_id(65600, "web");
	put_ip("10.1.0.1", 65600);
	gw = start(&r);
	CU_ASSERT_EQUAL(r.calls, 0); /* the start published nothing */
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.1"), 65600);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.2"), 65601);
	CU_ASSERT_EQUAL(mg_policy_verdict(r.policy, 65600, 65601, 6, 5432), MG_VERDICT_ALLOW);

	/* a new identity and its address: one publication, a derived policy */
	put_id(65602, "web");
	put_ip("10.1.0.3", 65602);
	ticks(gw, &r, 50);
	CU_ASSERT_EQUAL(r.calls, 1);
	CU_ASSERT_EQUAL(r.with_policy, 1);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.3"), 65602);
	CU_ASSERT_EQUAL(mg_policy_verdict(r.policy, 65602, 65601, 6, 5432), MG_VERDICT_ALLOW);
	CU_ASSERT_PTR_EQUAL(mg_gateway_policy(gw), r.policy);

	/* its labels change: web no more */
	calls = r.calls;
	with = r.with_policy;
	put_id(65602, "batch");
	ticks(gw, &r, 50);
	CU_ASSERT_EQUAL(r.calls, calls + 1);
	CU_ASSERT_EQUAL(r.with_policy, with + 1);
	CU_ASSERT_EQUAL(mg_policy_verdict(r.policy, 65602, 65601, 6, 5432),
	                MG_VERDICT_DENY_INGRESS);

	/* an address moves: an ipcache-only batch keeps the policy */
	calls = r.calls;
	with = r.with_policy;
	put_ip("10.1.0.3", 65600);
	ticks(gw, &r, 50);
	CU_ASSERT_EQUAL(r.calls, calls + 1);
	CU_ASSERT_EQUAL(r.with_policy, with);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.3"), 65600);

	/* the identity goes */
	del("cilium/cache/identities/v1/cluster-a/id/65602");
	ticks(gw, &r, 50);
	CU_ASSERT_PTR_NULL(mg_identity_table_get(mg_gateway_identities(gw), 65602));
	CU_ASSERT_EQUAL(r.with_policy, with + 1);
	mg_gateway_free(gw);
	mg_policy_free(r.policy);
}

/* A reload while changes wait in Redis: synced entries kept, the changes applied after. */
static void
test_reload_with_pending_changes(void)
{
	struct readers r;
	struct mg_gateway *gw;
	struct mg_error err = {{0}};

	reset();
	files();
	put_id(65600, "web");
	put_ip("10.1.0.1", 65600);
	gw = start(&r);
	put_id(65603, "web");
	put_ip("10.1.0.4", 65603);
	/* no tick yet: the reload comes first (a static entry changes too) */
	write_file("meshgate.yaml", "");
	files();
	{
		char text[256];

		snprintf(text, sizeof(text), "%s",
		         "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
		         "metadata: {name: db-in, namespace: shop}\nspec:\n"
		         "  endpointSelector: {matchLabels: {app: db}}\n"
		         "  ingress:\n  - fromEndpoints: [{matchLabels: {app: web}}]\n");
		write_file("policies.yaml", text);
	}
	CU_ASSERT_EQUAL_FATAL(mg_gateway_reload(gw, &err), 0);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.1"), 65600); /* the synced entry survived */
	CU_ASSERT_EQUAL(mg_policy_verdict(r.policy, 65600, 65601, 6, 80), MG_VERDICT_ALLOW);
	ticks(gw, &r, 50);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.4"), 65603);
	CU_ASSERT_EQUAL(mg_policy_verdict(r.policy, 65603, 65601, 6, 80), MG_VERDICT_ALLOW);
	mg_gateway_free(gw);
	mg_policy_free(r.policy);
}

/* A batch the readers cannot take: nothing goes live, counted, repaired next time. */
static void
test_publish_fails_then_repaired(void)
{
	struct readers r;
	struct mg_gateway *gw;
	struct mg_gateway_stats st;

	reset();
	files();
	put_id(65600, "web");
	gw = start(&r);
	put_ip("10.1.0.5", 65600);
	r.fail = -ENOMEM;
	ticks(gw, &r, 50);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.5"), 0);
	CU_ASSERT_EQUAL(mg_ipcache_pending(mg_gateway_ipcache(gw)), 0);
	mg_gateway_stats(gw, &st);
	CU_ASSERT(st.sync_failures >= 1);
	r.fail = 0;
	for (int i = 0; i < 50 && lookup(gw, "10.1.0.5") == 0; i++)
		mg_gateway_sync_tick(gw);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.5"), 65600);
	mg_gateway_free(gw);
	mg_policy_free(r.policy);
}

static CU_TestInfo tests[] = {
        {"start_and_batches", test_start_and_batches},
        {"reload_with_pending_changes", test_reload_with_pending_changes},
        {"publish_fails_then_repaired", test_publish_fails_then_repaired},
        CU_TEST_INFO_NULL,
};

int
main(int argc, char **argv)
{
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: %s <redis-port> <meshgate.lua>\n", argv[0]);
		return 2;
	}
	port = atoi(argv[1]);
	lua_path = argv[2];
	R = redisConnect("127.0.0.1", port);
	if (R == NULL || R->err) {
		fprintf(stderr, "cannot connect to redis on port %d\n", port);
		return 1;
	}
	snprintf(dir, sizeof(dir), "/tmp/mg-gwsync-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	CU_SuiteInfo suites[] = {{"gateway-sync", NULL, NULL, NULL, NULL, tests},
	                         CU_SUITE_INFO_NULL};
	rc = mg_test_run(suites);
	redisFree(R);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	return rc;
}
