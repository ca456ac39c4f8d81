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
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* The background reload's thread, held by the test hook until released. */
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static bool held, release_it;

static void
hold(void *arg MG_UNUSED)
{
	pthread_mutex_lock(&hold_mu);
	held = true;
	pthread_cond_broadcast(&hold_cv);
	while (!release_it)
		pthread_cond_wait(&hold_cv, &hold_mu);
	pthread_mutex_unlock(&hold_mu);
}

static bool
wait_held(void)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	pthread_mutex_lock(&hold_mu);
	while (!held && pthread_cond_timedwait(&hold_cv, &hold_mu, &ts) == 0)
		;
	ok = held;
	pthread_mutex_unlock(&hold_mu);
	return ok;
}

static void
let_go(void)
{
	pthread_mutex_lock(&hold_mu);
	release_it = true;
	pthread_cond_broadcast(&hold_cv);
	pthread_mutex_unlock(&hold_mu);
}

/*
 * A reload in the background (docs/operations.md, "Reloads"): while its
 * thread is held after reading a large new policy set, the sync goes on
 * (a new identity and address, an address moved, one deleted: all live
 * through the running policy); a second start is refused; once released,
 * the poll publishes the new policy with every change that came meanwhile
 * (nothing lost), and its verdicts equal a full compile of the final
 * state on every flow between the identities involved.
 */
static void
test_reload_in_background(void)
{
	static const uint32_t idv[] = {65600, 65601, 65602, 65604, 424242};
	static const uint16_t ports[] = {80, 5432, 9};
	struct readers r;
	struct mg_gateway *gw;
	struct mg_gateway_stats st;
	struct mg_policy_params pp;
	struct mg_policy *full;
	struct mg_error err = {{0}};
	size_t cap = 1 << 21, len = 0, bad = 0;
	char *yaml;
	int rc = 0, i;

	reset();
	files();
	put_id(65600, "web");
	put_ip("10.1.0.1", 65600);
	put_id(65602, "batch");
	put_ip("10.1.0.3", 65602);
	gw = start(&r);
	/* the new policy set: db admits web on 80 too, and 3000 more CNPs */
	yaml = malloc(cap);
	CU_ASSERT_PTR_NOT_NULL_FATAL(yaml);
	len += (size_t)snprintf(yaml, cap,
	                        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
	                        "metadata: {name: db-in, namespace: shop}\nspec:\n"
	                        "  endpointSelector: {matchLabels: {app: db}}\n"
	                        "  ingress:\n  - fromEndpoints: [{matchLabels: {app: web}}]\n"
	                        "    toPorts: [{ports: [{port: \"5432\", protocol: TCP}, "
	                        "{port: \"80\", protocol: TCP}]}]\n");
	for (i = 0; i < 3000; i++) {
		len += (size_t)snprintf(
		        yaml + len, cap - len,
		        "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
		        "metadata: {name: p%d, namespace: ns%d}\nspec:\n"
		        "  endpointSelector: {matchLabels: {app: a%d}}\n"
		        "  ingress:\n  - fromEndpoints: [{matchLabels: {app: a%d}}]\n"
		        "    toPorts: [{ports: [{port: \"%d\", protocol: TCP}]}]\n",
		        i, i % 50, i, i + 1, 1000 + i % 100);
		CU_ASSERT_FATAL(len < cap);
	}
	write_file("policies.yaml", yaml);
	free(yaml);
	held = release_it = false;
	mg_gateway_test_reload_hook(hold, NULL);
	CU_ASSERT_EQUAL_FATAL(mg_gateway_reload_start(gw, &err), 0);
	CU_ASSERT_FATAL(wait_held());
	CU_ASSERT_TRUE(mg_gateway_reload_busy(gw));
	CU_ASSERT_EQUAL(mg_gateway_reload_start(gw, &err), -EALREADY);
	/* Redis changes while the reload's thread holds */
	put_id(65604, "web");
	put_ip("10.1.0.6", 65604);
	put_ip("10.1.0.3", 65600);
	del("cilium/cache/ip/v1/cluster-a/10.1.0.1");
	for (i = 0; i < 200 && (lookup(gw, "10.1.0.6") != 65604 ||
	                        lookup(gw, "10.1.0.3") != 65600 || lookup(gw, "10.1.0.1") != 0);
	     i++)
		mg_gateway_sync_tick(gw);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.6"), 65604);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.3"), 65600);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.1"), 0);
	/* applied by the running policy, the reload still held */
	CU_ASSERT_TRUE(mg_gateway_reload_busy(gw));
	CU_ASSERT_EQUAL(mg_gateway_reload_poll(gw, &err), 0);
	CU_ASSERT_EQUAL(mg_policy_verdict(r.policy, 65604, 65601, 6, 5432), MG_VERDICT_ALLOW);
	CU_ASSERT_EQUAL(mg_policy_verdict(r.policy, 65604, 65601, 6, 80), MG_VERDICT_DENY_INGRESS);
	let_go();
	for (i = 0; i < 30000 && (rc = mg_gateway_reload_poll(gw, &err)) == 0; i++) {
		mg_gateway_sync_tick(gw);
		usleep(1000);
	}
	mg_gateway_test_reload_hook(NULL, NULL);
	if (rc < 0)
		fprintf(stderr, "reload: %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, 1);
	CU_ASSERT_FALSE(mg_gateway_reload_busy(gw));
	mg_gateway_stats(gw, &st);
	CU_ASSERT_EQUAL(st.revision, 2);
	CU_ASSERT_EQUAL(st.reloads_ok, 1);
	/* nothing that came meanwhile is lost */
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.6"), 65604);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.3"), 65600);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.1"), 0);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.2"), 65601);
	CU_ASSERT_EQUAL(mg_policy_verdict(r.policy, 65604, 65601, 6, 80), MG_VERDICT_ALLOW);
	CU_ASSERT_EQUAL(mg_policy_verdict(r.policy, 65602, 65601, 6, 80), MG_VERDICT_DENY_INGRESS);
	mg_gateway_policy_params(gw, &pp);
	full = mg_policy_compile(mg_gateway_policy_set(gw), mg_gateway_identities(gw), &pp, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(full);
	for (size_t a = 0; a < MG_ARRAY_SIZE(idv); a++)
		for (size_t b = 0; b < MG_ARRAY_SIZE(idv); b++)
			for (size_t p = 0; p < MG_ARRAY_SIZE(ports); p++)
				bad += mg_policy_verdict(r.policy, idv[a], idv[b], 6, ports[p]) !=
				       mg_policy_verdict(full, idv[a], idv[b], 6, ports[p]);
	CU_ASSERT_EQUAL(bad, 0);
	mg_policy_free(full);
	mg_gateway_free(gw);
	mg_policy_free(r.policy);
}

/* A reload that fails in the background: nothing changes, counted, the sync goes on. */
static void
test_reload_in_background_fails(void)
{
	struct readers r;
	struct mg_gateway *gw;
	struct mg_gateway_stats st;
	struct mg_error err = {{0}};
	int rc = 0;

	reset();
	files();
	put_id(65600, "web");
	gw = start(&r);
	write_file("policies.yaml", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
	                            "metadata: {name: bad}\nspec: {endpointSelector: 7}\n");
	CU_ASSERT_EQUAL_FATAL(mg_gateway_reload_start(gw, &err), 0);
	put_ip("10.1.0.7", 65600);
	for (int i = 0; i < 30000 && (rc = mg_gateway_reload_poll(gw, &err)) == 0; i++) {
		mg_gateway_sync_tick(gw);
		usleep(1000);
	}
	CU_ASSERT(rc < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "policies.yaml"));
	ticks(gw, &r, 50);
	CU_ASSERT_EQUAL(lookup(gw, "10.1.0.7"), 65600);
	mg_gateway_stats(gw, &st);
	CU_ASSERT_EQUAL(st.revision, 1);
	CU_ASSERT_EQUAL(st.reloads_failed, 1);
	CU_ASSERT_EQUAL(mg_policy_verdict(r.policy, 65600, 65601, 6, 5432), MG_VERDICT_ALLOW);
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
        {"reload_in_background", test_reload_in_background},
        {"reload_in_background_fails", test_reload_in_background_fails},
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
