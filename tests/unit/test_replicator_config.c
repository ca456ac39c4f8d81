/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/replicator/rep_config.c: meshgate-replicator.yaml
 * (the CONFIG.md example and its defaults, the shipped
 * conf/meshgate-replicator.yaml with its commented keys enabled, every
 * error with its exact "file:line:column: message", relative paths) and
 * the clusters' etcd config files as Cilium's clustermesh secret holds
 * them (what is a cluster config, what is ignored, what is refused).
 * Files are written into a mkdtemp() folder.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_replicator.h"
#include "mg_test.h"
#include "rep_filter.h"
#include "rep_priv.h" /* rep_check */

/* ---- helpers ---- */

static char tmp_dir[PATH_MAX];
static char mesh_dir[PATH_MAX + 8];

static int
suite_init(void)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/mg-repcfg-test.XXXXXX");
	if (mkdtemp(tmp_dir) == NULL)
		return 1;
	snprintf(mesh_dir, sizeof(mesh_dir), "%s/mesh", tmp_dir);
	return mkdir(mesh_dir, 0700) == 0 ? 0 : 1;
}

static int
suite_clean(void)
{
	char cmd[PATH_MAX + 32];

	/* only the folder this program made */
	if (strncmp(tmp_dir, "/tmp/mg-repcfg-test.", 20) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
		if (system(cmd) != 0)
			return 1;
	}
	return 0;
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char p[2 * PATH_MAX];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fp = fopen(p, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fputs(text, fp);
	fclose(fp);
}

static char *
read_text(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *text;
	long n;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	text = calloc(1, (size_t)n + 1);
	if (text != NULL && fread(text, 1, (size_t)n, fp) != (size_t)n) {
		free(text);
		text = NULL;
	}
	fclose(fp);
	return text;
}

static struct mg_rep_config *
load_text(const char *text, struct mg_error *err)
{
	return mg_rep_config_load_buf("r.yaml", "/etc/mg", text, strlen(text), err);
}

static struct mg_rep_config *
load_ok(const char *text)
{
	struct mg_error err = {{0}};
	struct mg_rep_config *c = load_text(text, &err);

	if (c == NULL)
		printf("unexpected error: %s\n", err.msg);
	return c;
}

/* The config must fail with exactly @p want (reported with the caller's line). */
static void
expect_error_at(int line, const char *text, const char *want)
{
	struct mg_error err = {{0}};
	struct mg_rep_config *c;

	errno = 0;
	c = load_text(text, &err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(errno, EINVAL);
	if (strcmp(err.msg, want) != 0)
		printf("test_replicator_config.c:%d:\n  want: %s\n  got:  %s\n", line, want,
		       err.msg);
	CU_ASSERT_STRING_EQUAL(err.msg, want);
	mg_rep_config_free(c);
}
#define EXPECT_ERROR(text, want) expect_error_at(__LINE__, text, want)

/* lines 1-4 */
#define V "version: 1\n"
#define CLUSTER "cluster: {name: site, id: 1}\n"
#define MESH "clustermesh: {config_dir: /var/lib/cilium/clustermesh}\n"
#define REDIS "redis: redis://127.0.0.1:6379/0\n"
#define BASE V CLUSTER MESH REDIS

/* ---- meshgate-replicator.yaml ---- */

/* The defaults conf/meshgate-replicator.yaml and mg_replicator.h document. */
static void
assert_defaults(const struct mg_rep_config *c)
{
	CU_ASSERT_EQUAL(c->cluster_mode, MG_CLUSTER_MODE_255);
	CU_ASSERT_EQUAL(c->rescan_ms, 2000);
	CU_ASSERT_PTR_NULL(c->redis_user);
	CU_ASSERT_PTR_NULL(c->redis_password_file);
	CU_ASSERT_PTR_NULL(c->functions);
	CU_ASSERT_EQUAL(c->redis_timeout_ms, 5000);
	CU_ASSERT_EQUAL(c->page_size, 5000);
	CU_ASSERT_DOUBLE_EQUAL(c->qps, 20, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(c->bootstrap_qps, 10000, 1e-9);
	CU_ASSERT_EQUAL(c->timeout_ms, 15000);
	CU_ASSERT_EQUAL(c->connect_timeout_ms, 5000);
	CU_ASSERT_EQUAL(c->heartbeat_ms, 120000);
	CU_ASSERT_EQUAL(c->config_timeout_ms, 180000);
	CU_ASSERT_EQUAL(c->keepalive_ms, 15000);
	CU_ASSERT_EQUAL(c->keepalive_timeout_ms, 25000);
	CU_ASSERT_EQUAL(c->backoff_min_ms, 1000);
	CU_ASSERT_EQUAL(c->backoff_max_ms, 60000);
	CU_ASSERT_EQUAL(c->max_entries, 4000000);
	CU_ASSERT_EQUAL(c->max_value_bytes, 65536);
	CU_ASSERT_EQUAL(c->queue_bytes, 64u << 20);
	CU_ASSERT_EQUAL(c->lease_ttl_ms, 15000);
	CU_ASSERT_EQUAL(c->drain_grace_ms, 180000);
	CU_ASSERT_EQUAL(c->batch, 256);
	CU_ASSERT_EQUAL(c->log_maxlen, 100000);
	CU_ASSERT_EQUAL(c->check_ms, 2000);
	CU_ASSERT_PTR_NULL(c->control_group);
	CU_ASSERT_PTR_NULL(c->control_admin_group);
	CU_ASSERT_EQUAL(c->control_max_clients, 16);
	CU_ASSERT_PTR_NULL(c->filter);
}

/* CONFIG.md's example, as it stands there. */
static void
test_contract_example(void)
{
	struct mg_rep_config *c = load_ok("version: 1\n"
	                                  "cluster: {name: site, id: 1}      # own\n"
	                                  "clustermesh:\n"
	                                  "  config_dir: /var/lib/cilium/clustermesh   # x\n"
	                                  "redis: redis://127.0.0.1:6379/0   # site\n"
	                                  "control: {socket: /run/meshgate/replicator.sock}\n"
	                                  "metrics: {listen: 127.0.0.1:9471}\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->file, "r.yaml");
	CU_ASSERT_STRING_EQUAL(c->dir, "/etc/mg");
	CU_ASSERT_STRING_EQUAL(c->cluster_name, "site");
	CU_ASSERT_EQUAL(c->cluster_id, 1);
	CU_ASSERT_STRING_EQUAL(c->config_dir, "/var/lib/cilium/clustermesh");
	CU_ASSERT_STRING_EQUAL(c->redis, "redis://127.0.0.1:6379/0");
	CU_ASSERT_STRING_EQUAL(c->control_socket, "/run/meshgate/replicator.sock");
	CU_ASSERT_STRING_EQUAL(c->metrics_listen, "127.0.0.1:9471");
	assert_defaults(c);
	mg_rep_config_free(c);
}

static void
test_minimal_defaults(void)
{
	struct mg_rep_config *c = load_ok(BASE);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	assert_defaults(c);
	CU_ASSERT_PTR_NULL(c->control_socket);
	CU_ASSERT_PTR_NULL(c->metrics_listen);
	mg_rep_config_free(c);
	/* null sections are their defaults */
	c = load_ok(BASE "etcd:\nlimits: ~\nlease: null\ndrain:\nwriter:\ncontrol:\nmetrics:\n"
	                 "filter:\nredis_auth:\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	assert_defaults(c);
	mg_rep_config_free(c);
	/* document markers around the one document */
	c = load_ok("---\n" BASE "...\n");
	CU_ASSERT_PTR_NOT_NULL(c);
	mg_rep_config_free(c);
}

/* The shipped file, as shipped. */
static void
test_shipped_file(void)
{
	struct mg_error err = {{0}};
	struct mg_rep_config *c =
	        mg_rep_config_load(MG_SOURCE_ROOT "/conf/meshgate-replicator.yaml", &err);

	if (c == NULL)
		printf("conf/meshgate-replicator.yaml: %s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->dir, MG_SOURCE_ROOT "/conf");
	CU_ASSERT_STRING_EQUAL(c->cluster_name, "site");
	CU_ASSERT_EQUAL(c->cluster_id, 1);
	CU_ASSERT_STRING_EQUAL(c->config_dir, "/var/lib/cilium/clustermesh");
	CU_ASSERT_STRING_EQUAL(c->redis, "redis://127.0.0.1:6379/0");
	CU_ASSERT_STRING_EQUAL(c->control_socket, "/run/meshgate/replicator.sock");
	CU_ASSERT_STRING_EQUAL(c->metrics_listen, "127.0.0.1:9471");
	/* every value it sets is the default it documents */
	assert_defaults(c);
	mg_rep_config_free(c);
}

/* Uncomment the lines that start with one of @p keys ("# key:" after any indent). */
static void
uncomment(char *text, const char *const *keys)
{
	for (char *line = text; line != NULL && *line != '\0';) {
		char *nl = strchr(line, '\n'), *p = line;

		while (*p == ' ')
			p++;
		if (p[0] == '#' && p[1] == ' ')
			for (const char *const *k = keys; *k != NULL; k++) {
				const char *q = p + 2;

				while (*q == ' ')
					q++;
				if (strncmp(q, *k, strlen(*k)) == 0) {
					memmove(p, p + 2, strlen(p + 2) + 1); /* drop "# " */
					nl = strchr(line, '\n');
					break;
				}
			}
		line = nl != NULL ? nl + 1 : NULL;
	}
}

/* The shipped file with its commented keys enabled: every key it names parses. */
static void
test_shipped_file_every_key(void)
{
	static const char *const keys[] = {"redis_auth:", "redis_functions:",
	                                   "group:",      "admin_group:",
	                                   "filter:",     "namespaces:",
	                                   "policy:",     "default_local_cluster:",
	                                   "sources:",    NULL};
	char *text = read_text(MG_SOURCE_ROOT "/conf/meshgate-replicator.yaml");
	struct mg_error err = {{0}};
	struct mg_rep_config *c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	uncomment(text, keys);
	c = mg_rep_config_load_buf("shipped.yaml", tmp_dir, text, strlen(text), &err);
	if (c == NULL)
		printf("uncommented conf/meshgate-replicator.yaml: %s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->redis_user, "replicator");
	CU_ASSERT_STRING_EQUAL(c->redis_password_file, "/etc/meshgate/redis.password");
	CU_ASSERT_STRING_EQUAL(c->functions, "/usr/local/share/meshgate/meshgate.lua");
	CU_ASSERT_STRING_EQUAL(c->control_group, "meshgate");
	CU_ASSERT_STRING_EQUAL(c->control_admin_group, "meshgate-admin");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->filter);
	CU_ASSERT_EQUAL_FATAL(c->filter->n_ns_include, 2);
	CU_ASSERT_STRING_EQUAL(c->filter->ns_include[0], "prod");
	CU_ASSERT_STRING_EQUAL(c->filter->ns_include[1], "payments");
	CU_ASSERT_EQUAL_FATAL(c->filter->n_ns_exclude, 1);
	CU_ASSERT_STRING_EQUAL(c->filter->ns_exclude[0], "kube-system");
	CU_ASSERT_EQUAL_FATAL(c->filter->n_sources, 1);
	CU_ASSERT_STRING_EQUAL(c->filter->sources[0].cluster, "site");
	CU_ASSERT_STRING_EQUAL(c->filter->sources[0].path, "/etc/meshgate/policies/");
	CU_ASSERT_TRUE(c->filter->default_local_cluster);
	mg_rep_config_free(c);
	free(text);
}

/* Every key set to a value other than its default lands in its field. */
static void
test_every_key_value(void)
{
	struct mg_rep_config *c = load_ok(V "cluster: {name: site-2, id: 300, "
	                                    "max_connected_clusters: 511}\n"
	                                    "clustermesh: {config_dir: mesh, rescan_interval: 7}\n"
	                                    "redis: unix:///run/redis.sock\n"
	                                    "redis_auth: {user: u, password_file: pw}\n"
	                                    "redis_functions: lua/meshgate.lua\n"
	                                    "redis_timeout: 9\n"
	                                    "etcd:\n"
	                                    "  page_size: 50\n"
	                                    "  qps: 2.5\n"
	                                    "  bootstrap_qps: 100\n"
	                                    "  timeout: 3\n"
	                                    "  connect_timeout: 4\n"
	                                    "  heartbeat_timeout: 0\n"
	                                    "  config_timeout: 6\n"
	                                    "  keepalive: 7\n"
	                                    "  keepalive_timeout: 8\n"
	                                    "  backoff_min: 0\n"
	                                    "  backoff_max: 10\n"
	                                    "limits: {max_entries: 11, max_value_bytes: 256, "
	                                    "queue_bytes: 1048576}\n"
	                                    "lease: {ttl: 3}\n"
	                                    "drain: {grace: 0}\n"
	                                    "writer: {batch: 1000, log_maxlen: 1000, "
	                                    "check_interval: 12}\n"
	                                    "control: {socket: run/r.sock, group: g, "
	                                    "admin_group: ag, max_clients: 1024}\n"
	                                    "metrics: {listen: '[::1]:0'}\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->cluster_name, "site-2");
	CU_ASSERT_EQUAL(c->cluster_id, 300);
	CU_ASSERT_EQUAL(c->cluster_mode, MG_CLUSTER_MODE_511);
	CU_ASSERT_STRING_EQUAL(c->config_dir, "/etc/mg/mesh");
	CU_ASSERT_EQUAL(c->rescan_ms, 7000);
	CU_ASSERT_STRING_EQUAL(c->redis, "unix:///run/redis.sock");
	CU_ASSERT_STRING_EQUAL(c->redis_user, "u");
	CU_ASSERT_STRING_EQUAL(c->redis_password_file, "/etc/mg/pw");
	CU_ASSERT_STRING_EQUAL(c->functions, "/etc/mg/lua/meshgate.lua");
	CU_ASSERT_EQUAL(c->redis_timeout_ms, 9000);
	CU_ASSERT_EQUAL(c->page_size, 50);
	CU_ASSERT_DOUBLE_EQUAL(c->qps, 2.5, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(c->bootstrap_qps, 100, 1e-9);
	CU_ASSERT_EQUAL(c->timeout_ms, 3000);
	CU_ASSERT_EQUAL(c->connect_timeout_ms, 4000);
	CU_ASSERT_EQUAL(c->heartbeat_ms, 0);
	CU_ASSERT_EQUAL(c->config_timeout_ms, 6000);
	CU_ASSERT_EQUAL(c->keepalive_ms, 7000);
	CU_ASSERT_EQUAL(c->keepalive_timeout_ms, 8000);
	CU_ASSERT_EQUAL(c->backoff_min_ms, 0);
	CU_ASSERT_EQUAL(c->backoff_max_ms, 10);
	CU_ASSERT_EQUAL(c->max_entries, 11);
	CU_ASSERT_EQUAL(c->max_value_bytes, 256);
	CU_ASSERT_EQUAL(c->queue_bytes, 1048576);
	CU_ASSERT_EQUAL(c->lease_ttl_ms, 3000);
	CU_ASSERT_EQUAL(c->drain_grace_ms, 0);
	CU_ASSERT_EQUAL(c->batch, 1000);
	CU_ASSERT_EQUAL(c->log_maxlen, 1000);
	CU_ASSERT_EQUAL(c->check_ms, 12000);
	CU_ASSERT_STRING_EQUAL(c->control_socket, "/etc/mg/run/r.sock");
	CU_ASSERT_STRING_EQUAL(c->control_group, "g");
	CU_ASSERT_STRING_EQUAL(c->control_admin_group, "ag");
	CU_ASSERT_EQUAL(c->control_max_clients, 1024);
	CU_ASSERT_STRING_EQUAL(c->metrics_listen, "[::1]:0");
	CU_ASSERT_PTR_NULL(c->filter);
	mg_rep_config_free(c);
}

/* Relative paths against the config file's folder (mg_rep_config_load). */
static void
test_relative_paths(void)
{
	char sub[PATH_MAX + 16], path[PATH_MAX + 32], want[PATH_MAX + 64];
	struct mg_error err = {{0}};
	struct mg_rep_config *c;

	snprintf(sub, sizeof(sub), "%s/etc", tmp_dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0700), 0);
	write_file(sub, "r.yaml",
	           V CLUSTER "clustermesh: {config_dir: ../mesh}\n" REDIS
	                     "redis_auth: {password_file: secret/pw}\n"
	                     "redis_functions: /abs/meshgate.lua\n"
	                     "control: {socket: r.sock}\n"
	                     "filter: {policy: {sources: [{cluster: site, path: pol/}]}}\n");
	snprintf(path, sizeof(path), "%s/r.yaml", sub);
	c = mg_rep_config_load(path, &err);
	if (c == NULL)
		printf("%s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->file, path);
	CU_ASSERT_STRING_EQUAL(c->dir, sub);
	snprintf(want, sizeof(want), "%s/../mesh", sub);
	CU_ASSERT_STRING_EQUAL(c->config_dir, want);
	snprintf(want, sizeof(want), "%s/secret/pw", sub);
	CU_ASSERT_STRING_EQUAL(c->redis_password_file, want);
	CU_ASSERT_STRING_EQUAL(c->functions, "/abs/meshgate.lua");
	snprintf(want, sizeof(want), "%s/r.sock", sub);
	CU_ASSERT_STRING_EQUAL(c->control_socket, want);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->filter);
	CU_ASSERT_EQUAL_FATAL(c->filter->n_sources, 1);
	snprintf(want, sizeof(want), "%s/pol/", sub);
	CU_ASSERT_STRING_EQUAL(c->filter->sources[0].path, want);
	mg_rep_config_free(c);

	/* a file that is not there */
	snprintf(path, sizeof(path), "%s/absent.yaml", sub);
	errno = 0;
	CU_ASSERT_PTR_NULL(mg_rep_config_load(path, &err));
	CU_ASSERT_EQUAL(errno, ENOENT);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	CU_ASSERT_STRING_EQUAL(err.msg, want);
}

static void
test_filter_section(void)
{
	struct mg_rep_config *c = load_ok(BASE "filter:\n"
	                                       "  namespaces:\n"
	                                       "    include: [a, b]\n"
	                                       "    exclude: [kube-system]\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->filter);
	CU_ASSERT_EQUAL_FATAL(c->filter->n_ns_include, 2);
	CU_ASSERT_STRING_EQUAL(c->filter->ns_include[0], "a");
	CU_ASSERT_STRING_EQUAL(c->filter->ns_include[1], "b");
	CU_ASSERT_EQUAL_FATAL(c->filter->n_ns_exclude, 1);
	CU_ASSERT_STRING_EQUAL(c->filter->ns_exclude[0], "kube-system");
	CU_ASSERT_EQUAL(c->filter->n_sources, 0);
	mg_rep_config_free(c);
	/* exclude only */
	c = load_ok(BASE "filter: {namespaces: {exclude: [x]}}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->filter);
	CU_ASSERT_EQUAL(c->filter->n_ns_include, 0);
	CU_ASSERT_EQUAL(c->filter->n_ns_exclude, 1);
	mg_rep_config_free(c);
	EXPECT_ERROR(BASE "filter: {names: [a]}\n", "r.yaml:5:10: filter: unknown key 'names'");
	EXPECT_ERROR(BASE "filter: [a]\n", "r.yaml:5:9: filter: expected a mapping");
}

static void
test_missing_keys(void)
{
	EXPECT_ERROR(CLUSTER MESH REDIS, "r.yaml:1:1: missing key 'version' (1)");
	EXPECT_ERROR(V MESH REDIS, "r.yaml:1:1: missing key 'cluster' ({name, id})");
	EXPECT_ERROR(V "cluster:\n" MESH REDIS, "r.yaml:1:1: missing key 'cluster' ({name, id})");
	EXPECT_ERROR(V "cluster: {id: 1}\n" MESH REDIS, "r.yaml:2:10: cluster: missing key 'name'");
	EXPECT_ERROR(V "cluster: {name: site}\n" MESH REDIS,
	             "r.yaml:2:10: cluster: missing key 'id'");
	EXPECT_ERROR(V CLUSTER REDIS, "r.yaml:1:1: missing key 'clustermesh.config_dir' (the "
	                              "clusters' etcd configs)");
	EXPECT_ERROR(V CLUSTER "clustermesh: {rescan_interval: 2}\n" REDIS,
	             "r.yaml:3:14: missing key 'clustermesh.config_dir' (the clusters' etcd "
	             "configs)");
	EXPECT_ERROR(V CLUSTER MESH, "r.yaml:1:1: missing key 'redis' (the site Redis URL)");
	/* not one document */
	EXPECT_ERROR("", "r.yaml: the config file is empty");
	EXPECT_ERROR("# only a comment\n---\n", "r.yaml: the config file is empty");
	EXPECT_ERROR(BASE "---\n" BASE,
	             "r.yaml:6:1: a config file holds one YAML document, a second one starts "
	             "here");
	EXPECT_ERROR("[a]\n", "r.yaml:1:1: meshgate-replicator config: expected a mapping");
}

static void
test_unknown_keys(void)
{
	EXPECT_ERROR(BASE "clusters: [a]\n",
	             "r.yaml:5:1: meshgate-replicator config: unknown key 'clusters'");
	EXPECT_ERROR(V "cluster: {name: site, id: 1, mode: 255}\n" MESH REDIS,
	             "r.yaml:2:30: cluster: unknown key 'mode'");
	EXPECT_ERROR(V CLUSTER "clustermesh: {config_dir: d, dir: e}\n" REDIS,
	             "r.yaml:3:30: clustermesh: unknown key 'dir'");
	EXPECT_ERROR(BASE "redis_auth: {user: u, password: p}\n",
	             "r.yaml:5:23: redis_auth: unknown key 'password'");
	EXPECT_ERROR(BASE "etcd: {qps: 5, burst: 10}\n", "r.yaml:5:16: etcd: unknown key 'burst'");
	EXPECT_ERROR(BASE "limits: {max_keys: 1}\n", "r.yaml:5:10: limits: unknown key 'max_keys'");
	EXPECT_ERROR(BASE "lease: {ttl: 5, key: x}\n", "r.yaml:5:17: lease: unknown key 'key'");
	EXPECT_ERROR(BASE "drain:\n  grace: 5\n  after: 1\n",
	             "r.yaml:7:3: drain: unknown key 'after'");
	EXPECT_ERROR(BASE "writer: {batches: 1}\n", "r.yaml:5:10: writer: unknown key 'batches'");
	EXPECT_ERROR(BASE "control: {path: /x}\n", "r.yaml:5:11: control: unknown key 'path'");
	EXPECT_ERROR(BASE "metrics: {port: 1}\n", "r.yaml:5:11: metrics: unknown key 'port'");
	EXPECT_ERROR(BASE "filter: {namespaces: {only: [a]}}\n",
	             "r.yaml:5:23: filter.namespaces: unknown key 'only'");
}

static void
test_duplicate_keys(void)
{
	EXPECT_ERROR(BASE "redis: redis://x\n",
	             "r.yaml:5:1: duplicate key 'redis' (first at line 4)");
	EXPECT_ERROR(V "cluster: {name: a, id: 1, name: b}\n" MESH REDIS,
	             "r.yaml:2:27: duplicate key 'name' (first at line 2)");
	EXPECT_ERROR(BASE "etcd:\n  qps: 1\n  qps: 2\n",
	             "r.yaml:7:3: duplicate key 'qps' (first at line 6)");
}

static void
test_wrong_types(void)
{
	EXPECT_ERROR(V "cluster: 5\n" MESH REDIS, "r.yaml:2:10: cluster: expected a mapping");
	EXPECT_ERROR("version: one\n" CLUSTER MESH REDIS,
	             "r.yaml:1:10: version: expected an integer, got 'one'");
	EXPECT_ERROR("version: 2\n" CLUSTER MESH REDIS,
	             "r.yaml:1:10: version: 2 is out of range [1, 1]");
	EXPECT_ERROR(V "cluster: {name: site, id: -1}\n" MESH REDIS,
	             "r.yaml:2:27: cluster.id: expected an integer");
	EXPECT_ERROR(V "cluster: {name: [a], id: 1}\n" MESH REDIS,
	             "r.yaml:2:17: cluster.name: expected a string");
	EXPECT_ERROR(V "cluster: {name: Site, id: 1}\n" MESH REDIS,
	             "r.yaml:2:17: cluster.name: not a cluster name (1-32 of a-z, 0-9 and '-', "
	             "alphanumeric at both ends)");
	EXPECT_ERROR(V CLUSTER "clustermesh: {config_dir: [a]}\n" REDIS,
	             "r.yaml:3:27: clustermesh.config_dir: expected a string");
	EXPECT_ERROR(V CLUSTER "clustermesh: {config_dir: ''}\n" REDIS,
	             "r.yaml:3:27: clustermesh.config_dir: must not be empty");
	EXPECT_ERROR(V CLUSTER MESH "redis: {url: x}\n", "r.yaml:4:8: redis: expected a string");
	EXPECT_ERROR(BASE "etcd: [1]\n", "r.yaml:5:7: etcd: expected a mapping");
	EXPECT_ERROR(BASE "etcd: {qps: fast}\n",
	             "r.yaml:5:13: etcd.qps: 'fast' is not a rate between 0.1 and 1000000");
	EXPECT_ERROR(BASE "etcd: {timeout: 1.5}\n",
	             "r.yaml:5:17: etcd.timeout: expected an integer, got '1.5'");
	EXPECT_ERROR(BASE "control: {socket: {a: b}}\n",
	             "r.yaml:5:19: control.socket: expected a string");
	EXPECT_ERROR(BASE "redis_auth: {user: ~}\n",
	             "r.yaml:5:20: redis_auth.user: expected a string");
}

static void
test_out_of_range(void)
{
	EXPECT_ERROR(V "cluster: {name: site, id: 0}\n" MESH REDIS,
	             "r.yaml:2:27: cluster.id: 0 is out of range [1, 255]");
	EXPECT_ERROR(V "cluster: {name: site, id: 256}\n" MESH REDIS,
	             "r.yaml:2:27: cluster.id: 256 is out of range [1, 255]");
	EXPECT_ERROR(V "cluster: {name: site, id: 512, max_connected_clusters: 511}\n" MESH REDIS,
	             "r.yaml:2:27: cluster.id: 512 is out of range [1, 511]");
	EXPECT_ERROR(V "cluster: {name: site, id: 1, max_connected_clusters: 300}\n" MESH REDIS,
	             "r.yaml:2:54: cluster.max_connected_clusters: must be 255 or 511");
	EXPECT_ERROR(V "cluster: {name: site, id: 1, max_connected_clusters: 1023}\n" MESH REDIS,
	             "r.yaml:2:54: cluster.max_connected_clusters: 1023 is out of range [255, "
	             "511]");
	EXPECT_ERROR(BASE "etcd: {qps: 0}\n",
	             "r.yaml:5:13: etcd.qps: '0' is not a rate between 0.1 and 1000000");
	EXPECT_ERROR(BASE "etcd: {bootstrap_qps: 2e6}\n",
	             "r.yaml:5:23: etcd.bootstrap_qps: '2e6' is not a rate between 0.1 and "
	             "1000000");
	EXPECT_ERROR(BASE "etcd: {backoff_min: 5000, backoff_max: 4000}\n",
	             "r.yaml:5:7: etcd: backoff_max is below backoff_min");
	/* against the default backoff_max (60000) */
	EXPECT_ERROR(BASE "etcd: {backoff_min: 60001}\n",
	             "r.yaml:5:7: etcd: backoff_max is below backoff_min");
	EXPECT_ERROR(BASE "etcd: {page_size: 0}\n",
	             "r.yaml:5:19: etcd.page_size: 0 is out of range [1, 100000]");
	EXPECT_ERROR(BASE "etcd: {timeout: 0}\n",
	             "r.yaml:5:17: etcd.timeout: 0 is out of range [1, 3600]");
	EXPECT_ERROR(BASE "lease: {ttl: 1}\n",
	             "r.yaml:5:14: lease.ttl: 1 is out of range [3, 3600]");
	EXPECT_ERROR(BASE "redis_timeout: 0\n",
	             "r.yaml:5:16: redis_timeout: 0 is out of range [1, 300]");
	EXPECT_ERROR(BASE "limits: {max_value_bytes: 255}\n",
	             "r.yaml:5:27: limits.max_value_bytes: 255 is out of range [256, 65536]");
	EXPECT_ERROR(BASE "writer: {batch: 1001}\n",
	             "r.yaml:5:17: writer.batch: 1001 is out of range [1, 1000]");
	EXPECT_ERROR(BASE "control: {max_clients: 0}\n",
	             "r.yaml:5:24: control.max_clients: 0 is out of range [1, 1024]");
	EXPECT_ERROR(V CLUSTER "clustermesh: {config_dir: d, rescan_interval: 0}\n" REDIS,
	             "r.yaml:3:47: clustermesh.rescan_interval: 0 is out of range [1, 3600]");
}

static void
test_redis_url(void)
{
	static const char *const good[] = {"redis://h", "redis://h:1/2", "unix:///run/r.sock",
	                                   NULL};
	char text[256];

	for (const char *const *g = good; *g != NULL; g++) {
		snprintf(text, sizeof(text), V CLUSTER MESH "redis: %s\n", *g);
		struct mg_rep_config *c = load_ok(text);
		CU_ASSERT_PTR_NOT_NULL(c);
		if (c != NULL)
			CU_ASSERT_STRING_EQUAL(c->redis, *g);
		mg_rep_config_free(c);
	}
	EXPECT_ERROR(V CLUSTER MESH "redis: http://127.0.0.1:6379\n",
	             "r.yaml:4:8: redis: 'http://127.0.0.1:6379' is not a redis://host[:port][/db] "
	             "or unix:///path URL");
	EXPECT_ERROR(V CLUSTER MESH "redis: redis://\n",
	             "r.yaml:4:8: redis: 'redis://' is not a redis://host[:port][/db] or "
	             "unix:///path URL");
	EXPECT_ERROR(V CLUSTER MESH "redis: unix://run/r.sock\n",
	             "r.yaml:4:8: redis: 'unix://run/r.sock' is not a redis://host[:port][/db] or "
	             "unix:///path URL");
	EXPECT_ERROR(V CLUSTER MESH "redis: 127.0.0.1:6379\n",
	             "r.yaml:4:8: redis: '127.0.0.1:6379' is not a redis://host[:port][/db] or "
	             "unix:///path URL");
}

static void
test_metrics_and_socket(void)
{
	char text[512], path[200];

	EXPECT_ERROR(BASE "metrics: {listen: localhost}\n",
	             "r.yaml:5:19: metrics.listen: 'localhost' is not host:port");
	EXPECT_ERROR(BASE "metrics: {listen: '127.0.0.1:99999'}\n",
	             "r.yaml:5:19: metrics.listen: '127.0.0.1:99999' is not host:port");
	EXPECT_ERROR(BASE "metrics: {listen: ''}\n",
	             "r.yaml:5:19: metrics.listen: must not be empty");
	/* 107 bytes fit sun_path, 108 do not (the resolved path counts) */
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[107] = '\0';
	snprintf(text, sizeof(text), BASE "control: {socket: %s}\n", path);
	struct mg_rep_config *c = load_ok(text);
	CU_ASSERT_PTR_NOT_NULL(c);
	mg_rep_config_free(c);
	path[107] = 'a';
	path[108] = '\0';
	snprintf(text, sizeof(text), BASE "control: {socket: %s}\n", path);
	EXPECT_ERROR(text, "r.yaml:5:19: control.socket: path longer than 107 bytes");
	/* "/etc/mg/" and 100 more: 108 */
	memset(path, 'b', 100);
	path[100] = '\0';
	snprintf(text, sizeof(text), BASE "control: {socket: %s}\n", path);
	EXPECT_ERROR(text, "r.yaml:5:19: control.socket: path longer than 107 bytes");
}

/* ---- the clusters' etcd config files ---- */

static int
etcd_load(const char *name, const char *text, struct mg_rep_etcd_config *e, struct mg_error *err)
{
	char path[PATH_MAX + 64];

	write_file(mesh_dir, name, text);
	snprintf(path, sizeof(path), "%s/%s", mesh_dir, name);
	return mg_rep_etcd_config_load(path, name, mesh_dir, e, err);
}

/* The file must be a cluster config; returns it (the caller clears it). */
static void
etcd_ok_at(int line, const char *text, struct mg_rep_etcd_config *e)
{
	struct mg_error err = {{0}};
	int rc = etcd_load("cluster-b", text, e, &err);

	if (rc != 1)
		printf("test_replicator_config.c:%d: rc %d: %s\n", line, rc, err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, 1);
	CU_ASSERT_STRING_EQUAL(e->name, "cluster-b");
}
#define ETCD_OK(text, e) etcd_ok_at(__LINE__, text, e)

/* The file must be ignored (0, nothing set). */
static void
etcd_ignored_at(int line, const char *text)
{
	struct mg_rep_etcd_config e;
	struct mg_error err = {{0}};
	int rc = etcd_load("cluster-b", text, &e, &err);

	if (rc != 0)
		printf("test_replicator_config.c:%d: rc %d: %s\n", line, rc, err.msg);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(e.n_endpoints, 0);
	CU_ASSERT_PTR_NULL(e.file);
	mg_rep_etcd_config_clear(&e);
}
#define ETCD_IGNORED(text) etcd_ignored_at(__LINE__, text)

/* The file must be refused with exactly "<mesh>/cluster-b:" @p want. */
static void
etcd_error_at(int line, const char *text, const char *want)
{
	struct mg_rep_etcd_config e;
	struct mg_error err = {{0}};
	char full[PATH_MAX + 512];
	int rc = etcd_load("cluster-b", text, &e, &err);

	snprintf(full, sizeof(full), "%s/cluster-b:%s", mesh_dir, want);
	if (rc != -EINVAL || strcmp(err.msg, full) != 0)
		printf("test_replicator_config.c:%d: rc %d\n  want: %s\n  got:  %s\n", line, rc,
		       full, err.msg);
	CU_ASSERT_EQUAL(rc, -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, full);
	CU_ASSERT_EQUAL(e.n_endpoints, 0); /* cleared */
	CU_ASSERT_PTR_NULL(e.file);
	mg_rep_etcd_config_clear(&e);
}
#define ETCD_ERROR(text, want) etcd_error_at(__LINE__, text, want)

static void
assert_mesh_path(const char *got, const char *name)
{
	char want[PATH_MAX + 64];

	snprintf(want, sizeof(want), "%s/%s", mesh_dir, name);
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	CU_ASSERT_STRING_EQUAL(got, want);
}

/* What Cilium's clustermesh secret holds, relative certificate paths. */
static void
test_etcd_cilium_relative(void)
{
	struct mg_rep_etcd_config e;
	char want[PATH_MAX + 64];

	ETCD_OK("endpoints:\n"
	        "- https://cluster-b.mesh.cilium.io:2379\n"
	        "trusted-ca-file: 'cluster-b.etcd-client-ca.crt'\n"
	        "key-file: 'cluster-b.etcd-client.key'\n"
	        "cert-file: 'cluster-b.etcd-client.crt'\n",
	        &e);
	snprintf(want, sizeof(want), "%s/cluster-b", mesh_dir);
	CU_ASSERT_STRING_EQUAL(e.file, want);
	CU_ASSERT_EQUAL_FATAL(e.n_endpoints, 1);
	CU_ASSERT_STRING_EQUAL(e.endpoints[0], "https://cluster-b.mesh.cilium.io:2379");
	assert_mesh_path(e.ca_file, "cluster-b.etcd-client-ca.crt");
	assert_mesh_path(e.cert_file, "cluster-b.etcd-client.crt");
	assert_mesh_path(e.key_file, "cluster-b.etcd-client.key");
	mg_rep_etcd_config_clear(&e);
	CU_ASSERT_EQUAL(e.n_endpoints, 0);
	CU_ASSERT_PTR_NULL(e.ca_file);
}

static void
test_etcd_absolute_and_alias(void)
{
	struct mg_rep_etcd_config e;

	ETCD_OK("endpoints: ['https://10.0.0.1:2379', 'https://[fd00::1]:32379']\n"
	        "trusted-ca-file: /var/lib/cilium/clustermesh/ca.crt\n"
	        "cert-file: /var/lib/cilium/clustermesh/c.crt\n"
	        "key-file: /var/lib/cilium/clustermesh/c.key\n",
	        &e);
	CU_ASSERT_EQUAL_FATAL(e.n_endpoints, 2);
	CU_ASSERT_STRING_EQUAL(e.endpoints[0], "https://10.0.0.1:2379");
	CU_ASSERT_STRING_EQUAL(e.endpoints[1], "https://[fd00::1]:32379");
	CU_ASSERT_STRING_EQUAL(e.ca_file, "/var/lib/cilium/clustermesh/ca.crt");
	CU_ASSERT_STRING_EQUAL(e.cert_file, "/var/lib/cilium/clustermesh/c.crt");
	CU_ASSERT_STRING_EQUAL(e.key_file, "/var/lib/cilium/clustermesh/c.key");
	mg_rep_etcd_config_clear(&e);
	/* ca-file: the older spelling */
	ETCD_OK("endpoints: ['https://10.0.0.1:2379']\nca-file: ca.crt\n", &e);
	assert_mesh_path(e.ca_file, "ca.crt");
	CU_ASSERT_PTR_NULL(e.cert_file);
	CU_ASSERT_PTR_NULL(e.key_file);
	mg_rep_etcd_config_clear(&e);
	/* both: trusted-ca-file wins */
	ETCD_OK("endpoints: ['https://10.0.0.1:2379']\ntrusted-ca-file: t.crt\nca-file: c.crt\n",
	        &e);
	assert_mesh_path(e.ca_file, "t.crt");
	mg_rep_etcd_config_clear(&e);
}

static void
test_etcd_tls_rules(void)
{
	struct mg_rep_etcd_config e;

	/* http needs no CA (and may carry client certificates) */
	ETCD_OK("endpoints: ['http://127.0.0.1:2379']\n", &e);
	CU_ASSERT_PTR_NULL(e.ca_file);
	mg_rep_etcd_config_clear(&e);
	ETCD_ERROR("endpoints: ['https://127.0.0.1:2379']\n",
	           "1:12: an https endpoint needs trusted-ca-file (the CA of the "
	           "clustermesh-apiserver's certificate)");
	ETCD_ERROR("endpoints: ['https://127.0.0.1:2379']\ntrusted-ca-file: ~\n",
	           "1:12: an https endpoint needs trusted-ca-file (the CA of the "
	           "clustermesh-apiserver's certificate)");
	ETCD_ERROR("endpoints: ['https://127.0.0.1:2379']\ntrusted-ca-file: ca\ncert-file: c\n",
	           "1:1: cert-file and key-file go together");
	ETCD_ERROR("endpoints: ['https://127.0.0.1:2379']\ntrusted-ca-file: ca\nkey-file: k\n",
	           "1:1: cert-file and key-file go together");
	ETCD_ERROR("endpoints: ['https://127.0.0.1:2379']\ntrusted-ca-file: ''\n",
	           "2:18: trusted-ca-file: must not be empty");
	ETCD_ERROR("endpoints: ['https://127.0.0.1:2379']\ntrusted-ca-file: [a]\n",
	           "2:18: trusted-ca-file: expected a string");
}

static void
test_etcd_refused_keys(void)
{
	struct mg_rep_etcd_config e;

	ETCD_ERROR("endpoints: ['http://127.0.0.1:2379']\nusername: alice\n",
	           "2:11: username: not supported by meshgate-replicator (client certificates "
	           "only, the server always verified)");
	ETCD_ERROR("endpoints: ['http://127.0.0.1:2379']\npassword: secret\n",
	           "2:11: password: not supported by meshgate-replicator (client certificates "
	           "only, the server always verified)");
	ETCD_ERROR("endpoints: ['https://127.0.0.1:2379']\ntrusted-ca-file: ca\n"
	           "insecure-skip-tls-verify: true\n",
	           "3:27: insecure-skip-tls-verify: not supported by meshgate-replicator (client "
	           "certificates only, the server always verified)");
	/* refused even when the rest is wrong too: the refusal comes first */
	ETCD_ERROR("endpoints: 5\nusername: alice\n",
	           "2:11: username: not supported by meshgate-replicator (client certificates "
	           "only, the server always verified)");
	/* false (and null) change nothing */
	ETCD_OK("endpoints: ['https://127.0.0.1:2379']\ntrusted-ca-file: ca\n"
	        "insecure-skip-tls-verify: false\nusername: ~\n",
	        &e);
	CU_ASSERT_EQUAL(e.n_endpoints, 1);
	mg_rep_etcd_config_clear(&e);
}

/* Keys Cilium's etcd client knows and this one does not use: ignored, as there. */
static void
test_etcd_unknown_keys_ignored(void)
{
	struct mg_rep_etcd_config e;

	ETCD_OK("endpoints: ['https://127.0.0.1:2379']\n"
	        "trusted-ca-file: ca\n"
	        "dial-timeout: 5s\n"
	        "auto-sync-interval: 0s\n"
	        "max-call-send-msg-size: 2097152\n"
	        "something-new: {a: [1, 2]}\n",
	        &e);
	CU_ASSERT_EQUAL(e.n_endpoints, 1);
	mg_rep_etcd_config_clear(&e);
}

static void
test_etcd_not_a_config(void)
{
	/* the certificates beside the configs */
	ETCD_IGNORED("-----BEGIN CERTIFICATE-----\n"
	             "MIIBszCCAVmgAwIBAgIUUxjXnFzWqzsTGzIo0Kf0L8n2hGkwCgYIKoZIzj0EAwIw\n"
	             "DzENMAsGA1UEAwwEdGVzdDAeFw0yNDAxMDEwMDAwMDBaFw0zNDAxMDEwMDAwMDBa\n"
	             "-----END CERTIFICATE-----\n");
	ETCD_IGNORED("-----BEGIN EC PRIVATE KEY-----\n"
	             "MHcCAQEEIBk1n0sRZ1kQ+/abc=\n"
	             "-----END EC PRIVATE KEY-----\n");
	ETCD_IGNORED("");
	ETCD_IGNORED("# nothing\n");
	ETCD_IGNORED("just a line of text\n");
	ETCD_IGNORED("- endpoints\n- https://127.0.0.1:2379\n");
	ETCD_IGNORED("dial-timeout: 5s\ntrusted-ca-file: ca\n");
	/* not YAML at all */
	ETCD_IGNORED("endpoints: [unclosed\n");
	ETCD_IGNORED("\x01\x02binary\xff\n");
	/* two documents: not a map */
	ETCD_IGNORED("endpoints: ['http://a:1']\n---\nendpoints: ['http://b:1']\n");
}

static void
test_etcd_bad_endpoints(void)
{
	ETCD_ERROR("endpoints: https://127.0.0.1:2379\n", "1:12: endpoints: expected a list");
	ETCD_ERROR("endpoints:\n", "1:11: endpoints: expected a list");
	ETCD_ERROR("endpoints: []\n", "1:12: endpoints: empty list");
	ETCD_ERROR("endpoints: ['127.0.0.1:2379']\n",
	           "1:13: endpoints: '127.0.0.1:2379' is not an http:// or https:// URL");
	ETCD_ERROR("endpoints:\n- http://a:1\n- grpc://b:2\n",
	           "3:3: endpoints: 'grpc://b:2' is not an http:// or https:// URL");
	ETCD_ERROR("endpoints: [[a]]\n", "1:13: endpoints[]: expected a string");
	ETCD_ERROR("endpoints: ['http://:2379']\n",
	           "1:13: endpoints: 'http://:2379': the host is missing");
	ETCD_ERROR("endpoints: ['http://']\n", "1:13: endpoints: 'http://': it is empty");
	ETCD_ERROR("endpoints: ['http://a:99999']\n",
	           "1:13: endpoints: 'http://a:99999': the port is not a number from 0 to 65535");
	ETCD_ERROR("endpoints: ['http://a:1/v3']\n",
	           "1:13: endpoints: 'http://a:1/v3': the port is not a number from 0 to 65535");
}

static void
test_etcd_endpoint_limits(void)
{
	char text[1024] = "endpoints:\n";

	ETCD_ERROR("endpoints: ['http://a:0']\n", "1:13: endpoints: 'http://a:0': port 0");
	ETCD_ERROR("endpoints: ['https://a:1', 'http://b:2']\ntrusted-ca-file: ca\n",
	           "1:28: endpoints: 'http://b:2': http:// and https:// mixed (lib/etcd takes "
	           "one scheme)");
	for (int i = 0; i < 17; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "- http://h%d:2379\n",
		         i);
	ETCD_ERROR(text, "2:1: endpoints: 17, at most 16");
	snprintf(text, sizeof(text), "endpoints: ['http://%0300d:1']\n", 0);
	ETCD_ERROR(text, "1:13: endpoints: 'http://000000000000000000000000000000000...': too "
	                 "long");
}

static void
test_etcd_endpoint_forms(void)
{
	struct mg_rep_etcd_config e;
	char text[1024] = "endpoints:\n";

	/* a trailing slash, as URLs are often written: kept (lib/etcd drops it) */
	ETCD_OK("endpoints: ['http://127.0.0.1:2379/']\n", &e);
	CU_ASSERT_STRING_EQUAL(e.endpoints[0], "http://127.0.0.1:2379/");
	mg_rep_etcd_config_clear(&e);
	/* no port: etcd's 2379, written out for lib/etcd (which wants one) */
	ETCD_OK("endpoints: ['http://etcd.example', 'http://etcd2.example/']\n", &e);
	CU_ASSERT_EQUAL_FATAL(e.n_endpoints, 2);
	CU_ASSERT_STRING_EQUAL(e.endpoints[0], "http://etcd.example:2379");
	CU_ASSERT_STRING_EQUAL(e.endpoints[1], "http://etcd2.example:2379");
	mg_rep_etcd_config_clear(&e);
	ETCD_OK("endpoints: ['https://[fd00::2]']\ntrusted-ca-file: ca\n", &e);
	CU_ASSERT_STRING_EQUAL(e.endpoints[0], "https://[fd00::2]:2379");
	mg_rep_etcd_config_clear(&e);
	/* 16 is the most */
	for (int i = 0; i < 16; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "- http://h%d:2379\n",
		         i);
	ETCD_OK(text, &e);
	CU_ASSERT_EQUAL(e.n_endpoints, 16);
	CU_ASSERT_STRING_EQUAL(e.endpoints[15], "http://h15:2379");
	mg_rep_etcd_config_clear(&e);
}

/*
 * docs/reliability.md, "Limits": a value over limits.max_value_bytes, or a key
 * of half MG_KV_KEY_MAX bytes or more, is refused before it is parsed (counted
 * by reason, REP_R_SIZE / REP_R_KEY); at the limit the value goes on to its
 * checks.
 */
static void
test_value_size_limit(void)
{
	struct mg_rep_config *c = load_ok(BASE "limits: {max_value_bytes: 256}\n");
	struct rep_check_ctx ck;
	char val[300], key[MG_KV_KEY_MAX], why[REP_WHY_MAX];
	uint32_t id;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	rep_check_ctx_init(&ck, c, "site", 1);
	memset(val, 'x', sizeof(val));
	CU_ASSERT_EQUAL(rep_check(&ck, REP_IDS, "1", 1, val, 257, &id, why, sizeof(why)),
	                REP_R_SIZE + 1);
	CU_ASSERT_STRING_EQUAL(why, "value of 257 bytes (limits.max_value_bytes 256)");
	CU_ASSERT_NOT_EQUAL(rep_check(&ck, REP_IDS, "1", 1, val, 256, &id, why, sizeof(why)),
	                    REP_R_SIZE + 1);
	memset(key, '1', sizeof(key));
	CU_ASSERT_EQUAL(rep_check(&ck, REP_IDS, key, MG_KV_KEY_MAX / 2, "k8s:a=b;", 8, &id, why,
	                          sizeof(why)),
	                REP_R_KEY + 1);
	mg_rep_config_free(c);
}

static CU_TestInfo tests[] = {
        {"contract_example", test_contract_example},
        {"value_size_limit", test_value_size_limit},
        {"minimal_defaults", test_minimal_defaults},
        {"shipped_file", test_shipped_file},
        {"shipped_file_every_key", test_shipped_file_every_key},
        {"every_key_value", test_every_key_value},
        {"relative_paths", test_relative_paths},
        {"filter_section", test_filter_section},
        {"missing_keys", test_missing_keys},
        {"unknown_keys", test_unknown_keys},
        {"duplicate_keys", test_duplicate_keys},
        {"wrong_types", test_wrong_types},
        {"out_of_range", test_out_of_range},
        {"redis_url", test_redis_url},
        {"metrics_and_socket", test_metrics_and_socket},
        {"etcd_cilium_relative", test_etcd_cilium_relative},
        {"etcd_absolute_and_alias", test_etcd_absolute_and_alias},
        {"etcd_tls_rules", test_etcd_tls_rules},
        {"etcd_refused_keys", test_etcd_refused_keys},
        {"etcd_unknown_keys_ignored", test_etcd_unknown_keys_ignored},
        {"etcd_not_a_config", test_etcd_not_a_config},
        {"etcd_bad_endpoints", test_etcd_bad_endpoints},
        {"etcd_endpoint_limits", test_etcd_endpoint_limits},
        {"etcd_endpoint_forms", test_etcd_endpoint_forms},
        CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
        {"replicator_config", suite_init, suite_clean, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
};

MG_TEST_MAIN_SUITES(suites)
