/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/config: the meshgate.yaml loader (defaults, every
 * validation error with its exact "file:line:column: message", relative
 * paths), the reference conf/meshgate.yaml, and the CiliumIdentity /
 * CiliumEndpoint manifest loaders (fixtures in tests/unit/config/).
 * Configs that need real files are written into a mkdtemp() folder.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_config.h"
#include "mg_test.h"

/* ---- helpers ---- */

static char root_dir[PATH_MAX];
static char tmp_dir[PATH_MAX];

static bool
file_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

/* "a/b/c/d" -> "a/b" after dropping @p n trailing components. */
static void
strip_components(char *p, int n)
{
	while (n-- > 0) {
		char *s = strrchr(p, '/');

		if (s == NULL) {
			strcpy(p, ".");
			return;
		}
		*s = '\0';
	}
}

static bool
try_root(const char *cand)
{
	char *probe;
	bool ok;

	if (strlen(cand) >= sizeof(root_dir) ||
	    asprintf(&probe, "%s/tests/unit/test_config.c", cand) < 0)
		return false;
	ok = file_exists(probe);
	free(probe);
	if (ok)
		strcpy(root_dir, cand);
	return ok;
}

/*
 * The source tree: MG_SOURCE_ROOT when the build passes it; otherwise from
 * __FILE__ (tests/unit/test_config.c, so two folders up), which is relative
 * to the build folder when meson compiles it, and the binary lives in
 * <build>/tests/.
 */
static bool
find_root(void)
{
	char f[PATH_MAX], exe[PATH_MAX], cand[2 * PATH_MAX + 2];
	ssize_t n;

#ifdef MG_SOURCE_ROOT
	if (try_root(MG_SOURCE_ROOT))
		return true;
#endif
	snprintf(f, sizeof(f), "%s", __FILE__);
	strip_components(f, 3);
	if (f[0] == '/')
		return try_root(f);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		strip_components(exe, 3); /* <build>/tests/test_config */
		snprintf(cand, sizeof(cand), "%s/%s", exe, f);
		if (try_root(cand))
			return true;
	}
	return try_root(f);
}

static void
path_of(char *out, size_t size, const char *dir, const char *name)
{
	snprintf(out, size, "%s/%s", dir, name);
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char p[PATH_MAX + 64];
	FILE *fp;

	path_of(p, sizeof(p), dir, name);
	fp = fopen(p, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fputs(text, fp);
	fclose(fp);
}

static int
suite_init(void)
{
	if (!find_root()) {
		fprintf(stderr, "test_config: cannot find the source tree from %s\n", __FILE__);
		return 1;
	}
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/mg-config-test.XXXXXX");
	if (mkdtemp(tmp_dir) == NULL)
		return 1;
	return 0;
}

static int
suite_clean(void)
{
	char cmd[PATH_MAX + 32];

	/* only the folder this program made */
	if (strncmp(tmp_dir, "/tmp/mg-config-test.", 20) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
		if (system(cmd) != 0)
			return 1;
	}
	return 0;
}

static struct mg_config *
load_text(const char *text, struct mg_error *err)
{
	return mg_config_load_buf("t.yaml", text, strlen(text), err);
}

/* The config must fail with exactly @p want (reported with the caller's line). */
static void
expect_error_at(int line, const char *text, const char *want)
{
	struct mg_error err = {{0}};
	struct mg_config *c;

	errno = 0;
	c = load_text(text, &err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(errno, EINVAL);
	if (strcmp(err.msg, want) != 0)
		printf("test_config.c:%d:\n  want: %s\n  got:  %s\n", line, want, err.msg);
	CU_ASSERT_STRING_EQUAL(err.msg, want);
	mg_config_free(c);
}
#define EXPECT_ERROR(text, want) expect_error_at(__LINE__, text, want)

#define BASE_HEAD                                \
	"version: 1\n"                           \
	"eal: [\"-l\", \"0\"]\n"                 \
	"datapath:\n"                            \
	"  ports:\n"                             \
	"    - {name: a, device: d0, peer: b}\n" \
	"    - {name: b, device: d1, peer: a}\n"
#define BASE_CLUSTER "cluster: {name: c1, id: 1}\n"
/* lines 1-7 */
#define BASE BASE_HEAD BASE_CLUSTER

static struct mg_config *
load_ok(const char *text)
{
	struct mg_error err = {{0}};
	struct mg_config *c = load_text(text, &err);

	if (c == NULL)
		printf("unexpected error: %s\n", err.msg);
	return c;
}

/* ---- the config ---- */

static void
test_reference_config(void)
{
	char p[PATH_MAX + 64];
	struct mg_error err = {{0}};
	struct mg_config *c;

	path_of(p, sizeof(p), root_dir, "conf/meshgate.yaml");
	c = mg_config_load(p, &err);
	if (c == NULL)
		printf("conf/meshgate.yaml: %s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->version, 1);
	CU_ASSERT_TRUE(c->n_eal > 0);
	CU_ASSERT_EQUAL(c->n_ports, 2);
	CU_ASSERT_EQUAL(c->ports[0].peer_index, 1);
	CU_ASSERT_EQUAL(c->ports[1].peer_index, 0);
	CU_ASSERT_STRING_EQUAL(c->cluster_name, "cluster-a");
	CU_ASSERT_EQUAL(c->cluster_id, 1);
	CU_ASSERT_EQUAL(c->cluster_mode, MG_CLUSTER_MODE_255);
	CU_ASSERT_EQUAL(c->burst, 32);
	CU_ASSERT_EQUAL(c->rx_desc, 1024);
	CU_ASSERT_EQUAL(c->mbufs, 8191);
	CU_ASSERT_EQUAL(c->enforcement, MG_ENFORCE_DEFAULT);
	CU_ASSERT_TRUE(c->default_local_cluster);
	CU_ASSERT_TRUE(c->split_world);
	CU_ASSERT_TRUE(c->n_entries >= 1);
	CU_ASSERT_STRING_EQUAL(c->control_socket, "/run/meshgate/meshgate.sock");
	CU_ASSERT_STRING_EQUAL(c->metrics_listen, "127.0.0.1:9470");
	mg_config_free(c);
}

static char *
read_text(const char *rel)
{
	char p[PATH_MAX + 64], *text;
	FILE *fp;
	long n;

	path_of(p, sizeof(p), root_dir, rel);
	fp = fopen(p, "r");
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

/* True if @p doc names @p key in code style: `key` or `parent.key`. */
static bool
doc_names(const char *doc, const char *key)
{
	char pat[128];
	const char *p;

	snprintf(pat, sizeof(pat), "%s`", key);
	for (p = strstr(doc, pat); p != NULL; p = strstr(p + 1, pat))
		if (p > doc && (p[-1] == '`' || p[-1] == '.'))
			return true;
	return false;
}

/*
 * Every key the loader accepts (its own tables, not a copy) is documented:
 * it appears as "key:" in the reference conf/meshgate.yaml and as `key`
 * (or `parent.key`) in docs/configuration.md.
 */
static void
test_reference_documents_every_key(void)
{
	const struct mg_config_section *sec;
	char *conf = read_text("conf/meshgate.yaml"), *doc = read_text("docs/configuration.md");
	unsigned nkeys = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	for (sec = mg_config_keys(); sec->name != NULL; sec++) {
		for (const char *const *k = sec->keys; *k != NULL; k++) {
			char in_conf[128];

			snprintf(in_conf, sizeof(in_conf), "%s:", *k);
			if (strstr(conf, in_conf) == NULL)
				printf("conf/meshgate.yaml does not mention %s %s\n", sec->name,
				       *k);
			if (!doc_names(doc, *k))
				printf("docs/configuration.md does not mention %s %s\n", sec->name,
				       *k);
			CU_ASSERT_PTR_NOT_NULL(strstr(conf, in_conf));
			CU_ASSERT_TRUE(doc_names(doc, *k));
			nkeys++;
		}
	}
	CU_ASSERT_TRUE(nkeys >= 40);
	free(conf);
	free(doc);
}

static void
test_defaults(void)
{
	struct mg_config *c = load_ok(BASE);
	char cwd[PATH_MAX];

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->file, "t.yaml");
	CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
	CU_ASSERT_STRING_EQUAL(c->dir, cwd);
	CU_ASSERT_EQUAL(c->n_eal, 2);
	CU_ASSERT_STRING_EQUAL(c->eal[0], "-l");
	CU_ASSERT_STRING_EQUAL(c->eal[1], "0");
	CU_ASSERT_EQUAL(c->n_ports, 2);
	CU_ASSERT_STRING_EQUAL(c->ports[0].name, "a");
	CU_ASSERT_STRING_EQUAL(c->ports[0].device, "d0");
	CU_ASSERT_STRING_EQUAL(c->ports[0].peer, "b");
	CU_ASSERT_EQUAL(c->non_ip, MG_NON_IP_FORWARD);
	CU_ASSERT_EQUAL(c->burst, 32);
	CU_ASSERT_EQUAL(c->rx_desc, 1024);
	CU_ASSERT_EQUAL(c->tx_desc, 1024);
	CU_ASSERT_EQUAL(c->mbufs, 8191);
	CU_ASSERT_STRING_EQUAL(c->cluster_name, "c1");
	CU_ASSERT_EQUAL(c->cluster_id, 1);
	CU_ASSERT_EQUAL(c->cluster_mode, MG_CLUSTER_MODE_255);
	CU_ASSERT_EQUAL(c->enforcement, MG_ENFORCE_DEFAULT);
	CU_ASSERT_TRUE(c->default_local_cluster);
	CU_ASSERT_EQUAL(c->n_sources, 0);
	CU_ASSERT_EQUAL(c->n_identity_files, 0);
	CU_ASSERT_EQUAL(c->n_endpoint_files, 0);
	CU_ASSERT_EQUAL(c->n_entries, 0);
	CU_ASSERT_TRUE(c->split_world);
	CU_ASSERT_PTR_NULL(c->kv_redis);
	CU_ASSERT_EQUAL(c->n_kv_clusters, 0);
	CU_ASSERT_PTR_NULL(c->kv_user);
	CU_ASSERT_PTR_NULL(c->kv_password_file);
	CU_ASSERT_EQUAL(c->kv_sync_timeout, 60);
	CU_ASSERT_EQUAL(c->kv_max_delete_share, 50);
	CU_ASSERT_EQUAL(c->kv_block_ms, 100);
	CU_ASSERT_STRING_EQUAL(c->control_socket, "/run/meshgate/meshgate.sock");
	CU_ASSERT_STRING_EQUAL(c->metrics_listen, "127.0.0.1:9470");
	mg_config_free(c);
}

static void
test_every_value(void)
{
	struct mg_config *c =
	        load_ok("version: 1\n"
	                "eal: [-l, 0-1, --no-huge, -m, 512]\n"
	                "datapath:\n"
	                "  mode: wire\n"
	                "  ports:\n"
	                "    - {name: in_0, device: 0000:01:00.0, peer: out-0}\n"
	                "    - {name: out-0, device: 0000:01:00.1, peer: in_0}\n"
	                "    - {name: x, device: net_null0, peer: y}\n"
	                "    - {name: y, device: net_null1, peer: x}\n"
	                "  non_ip: drop\n"
	                "  burst: 64\n"
	                "  rx_desc: 4096\n"
	                "  tx_desc: 512\n"
	                "  mbufs: 65535\n"
	                "cluster: {name: east-1, id: 400, max_connected_clusters: 511}\n"
	                "policy:\n"
	                "  enforcement: always\n"
	                "  default_local_cluster: false\n"
	                "  sources:\n"
	                "    - {cluster: west, path: /etc/mg/west/}\n"
	                "    - {path: local.yaml}\n"
	                "ipcache:\n"
	                "  split_world: false\n"
	                "kvstore:\n"
	                "  redis: unix:///run/redis/redis.sock\n"
	                "  clusters: [east-1, west]\n"
	                "control: {socket: /tmp/mg.sock}\n"
	                "metrics: {listen: \"[::1]:9999\"}\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->n_eal, 5);
	CU_ASSERT_STRING_EQUAL(c->eal[4], "512");
	CU_ASSERT_EQUAL(c->n_ports, 4);
	CU_ASSERT_STRING_EQUAL(c->ports[0].device, "0000:01:00.0");
	CU_ASSERT_EQUAL(c->ports[0].peer_index, 1);
	CU_ASSERT_EQUAL(c->ports[1].peer_index, 0);
	CU_ASSERT_EQUAL(c->ports[2].peer_index, 3);
	CU_ASSERT_EQUAL(c->ports[3].peer_index, 2);
	CU_ASSERT_EQUAL(mg_config_port_index(c, "y"), 3);
	CU_ASSERT_EQUAL(mg_config_port_index(c, "out-0"), 1);
	CU_ASSERT_EQUAL(mg_config_port_index(c, "nope"), -1);
	CU_ASSERT_EQUAL(c->non_ip, MG_NON_IP_DROP);
	CU_ASSERT_EQUAL(c->burst, 64);
	CU_ASSERT_EQUAL(c->rx_desc, 4096);
	CU_ASSERT_EQUAL(c->tx_desc, 512);
	CU_ASSERT_EQUAL(c->mbufs, 65535);
	CU_ASSERT_STRING_EQUAL(c->cluster_name, "east-1");
	CU_ASSERT_EQUAL(c->cluster_id, 400);
	CU_ASSERT_EQUAL(c->cluster_mode, MG_CLUSTER_MODE_511);
	CU_ASSERT_EQUAL(c->enforcement, MG_ENFORCE_ALWAYS);
	CU_ASSERT_FALSE(c->default_local_cluster);
	CU_ASSERT_EQUAL_FATAL(c->n_sources, 2);
	CU_ASSERT_STRING_EQUAL(c->sources[0].cluster, "west");
	CU_ASSERT_STRING_EQUAL(c->sources[0].path, "/etc/mg/west/");
	/* a source without a cluster belongs to this gateway's cluster */
	CU_ASSERT_STRING_EQUAL(c->sources[1].cluster, "east-1");
	CU_ASSERT_FALSE(c->split_world);
	CU_ASSERT_STRING_EQUAL(c->kv_redis, "unix:///run/redis/redis.sock");
	CU_ASSERT_EQUAL_FATAL(c->n_kv_clusters, 2);
	CU_ASSERT_STRING_EQUAL(c->kv_clusters[1], "west");
	CU_ASSERT_STRING_EQUAL(c->control_socket, "/tmp/mg.sock");
	CU_ASSERT_STRING_EQUAL(c->metrics_listen, "[::1]:9999");
	mg_config_free(c);
}

/* Optional sections may be present but empty: their keys take their defaults. */
static void
test_empty_sections(void)
{
	struct mg_config *c = load_ok(BASE "policy:\nidentities:\nipcache: {}\nkvstore:\n"
	                                   "control:\nmetrics: {}\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->enforcement, MG_ENFORCE_DEFAULT);
	CU_ASSERT_TRUE(c->default_local_cluster);
	CU_ASSERT_TRUE(c->split_world);
	CU_ASSERT_EQUAL(c->n_identity_files, 0);
	CU_ASSERT_PTR_NULL(c->kv_redis);
	CU_ASSERT_STRING_EQUAL(c->control_socket, "/run/meshgate/meshgate.sock");
	CU_ASSERT_STRING_EQUAL(c->metrics_listen, "127.0.0.1:9470");
	mg_config_free(c);
	/* the required ones may not */
	EXPECT_ERROR(BASE_HEAD "cluster:\n", "t.yaml:7:9: cluster: expected a mapping");
}

static void
test_unknown_keys(void)
{
	EXPECT_ERROR(BASE "verbose: true\n", "t.yaml:8:1: config: unknown key 'verbose'");
	EXPECT_ERROR("version: 1\n"
	             "eal: [-l, 0]\n"
	             "datapath:\n"
	             "  ports:\n"
	             "    - {name: a, device: d0, peer: b}\n"
	             "    - {name: b, device: d1, peer: a, speed: 10G}\n" BASE_CLUSTER,
	             "t.yaml:6:38: datapath.ports[1]: unknown key 'speed'");
	EXPECT_ERROR(BASE_HEAD "  burts: 32\n" BASE_CLUSTER,
	             "t.yaml:7:3: datapath: unknown key 'burts'");
	EXPECT_ERROR(BASE "policy:\n  sources:\n    - {path: p, clutser: x}\n",
	             "t.yaml:10:17: policy.sources[0]: unknown key 'clutser'");
	EXPECT_ERROR(BASE "ipcache:\n  entries:\n    - {prefix: 10.0.0.0/8, id: 300}\n",
	             "t.yaml:10:28: ipcache.entries[0]: unknown key 'id'");
	EXPECT_ERROR(BASE "metrics: {listen: \":1\", path: /m}\n",
	             "t.yaml:8:25: metrics: unknown key 'path'");
}

/* Two equal keys, at any level: refused at the second (the YAML tree builder). */
static void
test_duplicate_keys(void)
{
	EXPECT_ERROR(BASE_HEAD "  burst: 32\n  burst: 64\n" BASE_CLUSTER,
	             "t.yaml:8:3: duplicate key 'burst' (first at line 7)");
	EXPECT_ERROR(BASE "version: 1\n", "t.yaml:8:1: duplicate key 'version' (first at line 1)");
	EXPECT_ERROR(BASE_HEAD "cluster: {name: c1, id: 1, name: c2}\n",
	             "t.yaml:7:28: duplicate key 'name' (first at line 7)");
	/* nested: a port of datapath.ports, a policy source, conntrack.timeouts */
	EXPECT_ERROR("version: 1\neal: [\"-l\", \"0\"]\ndatapath:\n  ports:\n"
	             "    - {name: a, device: d0, peer: b, device: d2}\n"
	             "    - {name: b, device: d1, peer: a}\n" BASE_CLUSTER,
	             "t.yaml:5:38: duplicate key 'device' (first at line 5)");
	EXPECT_ERROR(BASE "policy:\n  sources:\n    - cluster: c1\n      path: a/\n"
	                  "      \"cluster\": c2\n",
	             "t.yaml:12:7: duplicate key 'cluster' (first at line 10)");
	EXPECT_ERROR(BASE "conntrack:\n  timeouts:\n    tcp_established: 10\n"
	                  "    tcp_established: 20\n",
	             "t.yaml:11:5: duplicate key 'tcp_established' (first at line 10)");
}

static void
test_bad_enums(void)
{
	EXPECT_ERROR(BASE_HEAD "  non_ip: pass\n" BASE_CLUSTER,
	             "t.yaml:7:11: datapath.non_ip: unknown value 'pass' (expected forward or "
	             "drop)");
	EXPECT_ERROR(BASE_HEAD "  mode: router\n" BASE_CLUSTER,
	             "t.yaml:7:9: datapath.mode: unknown mode 'router' (expected wire)");
	EXPECT_ERROR(BASE "policy: {enforcement: sometimes}\n",
	             "t.yaml:8:23: policy.enforcement: unknown mode 'sometimes' (expected "
	             "default, always or never)");
	EXPECT_ERROR(BASE_HEAD "cluster: {name: c1, id: 1, max_connected_clusters: 256}\n",
	             "t.yaml:7:52: cluster.max_connected_clusters: 256 is not allowed (expected "
	             "255 or 511)");
}

static void
test_out_of_range(void)
{
	EXPECT_ERROR(BASE_HEAD "  burst: 0\n" BASE_CLUSTER,
	             "t.yaml:7:10: datapath.burst: 0 is out of range [1, 256]");
	EXPECT_ERROR(BASE_HEAD "  burst: 257\n" BASE_CLUSTER,
	             "t.yaml:7:10: datapath.burst: 257 is out of range [1, 256]");
	EXPECT_ERROR(BASE_HEAD "  rx_desc: 1000\n" BASE_CLUSTER,
	             "t.yaml:7:12: datapath.rx_desc: 1000 is not a power of two");
	EXPECT_ERROR(BASE_HEAD "  tx_desc: 32\n" BASE_CLUSTER,
	             "t.yaml:7:12: datapath.tx_desc: 32 is out of range [64, 16384]");
	EXPECT_ERROR(BASE_HEAD "  mbufs: 1000\n" BASE_CLUSTER,
	             "t.yaml:7:10: datapath.mbufs: 1000 is out of range [1023, 1048575]");
	EXPECT_ERROR(BASE_HEAD "cluster: {name: c1, id: 0}\n",
	             "t.yaml:7:25: cluster.id: 0 is out of range [1, 511]");
	EXPECT_ERROR(BASE "ipcache:\n  entries:\n    - {prefix: 10.0.0.0/8, identity: 0}\n",
	             "t.yaml:10:38: ipcache.entries[0].identity: 0 is out of range [1, 33554431]");
}

static void
test_cluster_id_mode(void)
{
	struct mg_config *c;

	EXPECT_ERROR(BASE_HEAD "cluster: {name: c1, id: 300}\n",
	             "t.yaml:7:25: cluster.id: 300 does not fit max_connected_clusters 255 "
	             "(ids 1 to 255)");
	c = load_ok(BASE_HEAD "cluster: {name: c1, id: 511, max_connected_clusters: 511}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->cluster_id, 511);
	mg_config_free(c);
	c = load_ok(BASE_HEAD "cluster: {name: c1, id: 255, max_connected_clusters: 255}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->cluster_mode, MG_CLUSTER_MODE_255);
	mg_config_free(c);
}

/* A kvstore section listing @p n clusters r1..rN, under max_connected_clusters @p mode. */
static char *
cluster_list_config(unsigned n, unsigned mode)
{
	size_t cap = 512 + (size_t)n * 8, len;
	char *y = malloc(cap);

	if (y == NULL)
		return NULL;
	len = (size_t)snprintf(y, cap,
	                       BASE_HEAD "cluster: {name: c1, id: 1, max_connected_clusters: %u}\n"
	                                 "kvstore:\n  redis: redis://127.0.0.1:6379/0\n"
	                                 "  clusters: [",
	                       mode);
	for (unsigned i = 1; i <= n; i++)
		len += (size_t)snprintf(y + len, cap - len, "%sr%u", i > 1 ? ", " : "", i);
	snprintf(y + len, cap - len, "]\n");
	return y;
}

/*
 * docs/reliability.md, "Limits": clusters synced. As many as the mesh has
 * ids (255, or 511 with max_connected_clusters 511, MG_KV_SYNC_MAX_CLUSTERS);
 * one more is a config error that names both numbers.
 */
static void
test_cluster_count(void)
{
	static const struct {
		unsigned n, mode;
		const char *err;
	} c[] = {
	        {255, 255, NULL},
	        {256, 255, "256 clusters, more than the 255 that cluster.max_connected_clusters"},
	        {511, 511, NULL},
	        {512, 511, "512 clusters, more than the 511 that cluster.max_connected_clusters"},
	};

	for (size_t i = 0; i < MG_ARRAY_SIZE(c); i++) {
		char *y = cluster_list_config(c[i].n, c[i].mode);
		struct mg_error err = {{0}};
		struct mg_config *cf;

		CU_ASSERT_PTR_NOT_NULL_FATAL(y);
		cf = load_text(y, &err);
		if (c[i].err == NULL) {
			if (cf == NULL)
				printf("case %zu: %s\n", i, err.msg);
			CU_ASSERT_PTR_NOT_NULL(cf);
			if (cf != NULL)
				CU_ASSERT_EQUAL(cf->n_kv_clusters, c[i].n);
		} else {
			CU_ASSERT_PTR_NULL(cf);
			if (strstr(err.msg, c[i].err) == NULL)
				printf("case %zu: %s\n", i, err.msg);
			CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, c[i].err));
		}
		mg_config_free(cf);
		free(y);
	}
}

static void
test_cluster_name(void)
{
	EXPECT_ERROR(BASE_HEAD "cluster: {name: Cluster_A, id: 1}\n",
	             "t.yaml:7:17: cluster.name: 'Cluster_A' is not a valid cluster name "
	             "(lower-case letters, digits and '-', at most 63 characters, not starting "
	             "or ending with '-')");
	EXPECT_ERROR(BASE_HEAD "cluster: {name: -a, id: 1}\n",
	             "t.yaml:7:17: cluster.name: '-a' is not a valid cluster name (lower-case "
	             "letters, digits and '-', at most 63 characters, not starting or ending "
	             "with '-')");
	EXPECT_ERROR(BASE_HEAD "cluster: {id: 1}\n",
	             "t.yaml:7:10: cluster: missing required key 'name'");
	EXPECT_ERROR(BASE_HEAD "cluster:\n  name: c1\n",
	             "t.yaml:8:3: cluster: missing required key 'id'");
}

static void
test_peers(void)
{
	/* asymmetric: a -> b, but b -> c (and c -> b) */
	EXPECT_ERROR("version: 1\n"
	             "eal: [-l, 0]\n"
	             "datapath:\n"
	             "  ports:\n"
	             "    - {name: a, device: d0, peer: b}\n"
	             "    - {name: b, device: d1, peer: c}\n"
	             "    - {name: c, device: d2, peer: b}\n" BASE_CLUSTER,
	             "t.yaml:5:35: datapath.ports[0].peer: port 'a' names 'b' as its peer, but "
	             "'b' names 'c' (peering must be symmetric)");
	EXPECT_ERROR("version: 1\n"
	             "eal: [-l, 0]\n"
	             "datapath:\n"
	             "  ports:\n"
	             "    - {name: a, device: d0, peer: b}\n"
	             "    - {name: b, device: d1, peer: outside}\n" BASE_CLUSTER,
	             "t.yaml:6:35: datapath.ports[1].peer: no port is called 'outside'");
	EXPECT_ERROR("version: 1\n"
	             "eal: [-l, 0]\n"
	             "datapath:\n"
	             "  ports:\n"
	             "    - {name: a, device: d0, peer: a}\n" BASE_CLUSTER,
	             "t.yaml:5:35: datapath.ports[0].peer: port 'a' cannot be its own peer");
	EXPECT_ERROR("version: 1\n"
	             "eal: [-l, 0]\n"
	             "datapath:\n"
	             "  ports:\n"
	             "    - {name: a, device: d0}\n" BASE_CLUSTER,
	             "t.yaml:5:7: datapath.ports[0]: missing required key 'peer'");
}

static void
test_port_names_devices(void)
{
	EXPECT_ERROR("version: 1\n"
	             "eal: [-l, 0]\n"
	             "datapath:\n"
	             "  ports:\n"
	             "    - {name: a, device: d0, peer: b}\n"
	             "    - {name: a, device: d1, peer: a}\n" BASE_CLUSTER,
	             "t.yaml:6:14: datapath.ports[1].name: duplicate port name 'a'");
	EXPECT_ERROR("version: 1\n"
	             "eal: [-l, 0]\n"
	             "datapath:\n"
	             "  ports:\n"
	             "    - {name: a, device: net_pcap0, peer: b}\n"
	             "    - {name: b, device: net_pcap0, peer: a}\n" BASE_CLUSTER,
	             "t.yaml:6:25: datapath.ports[1].device: device 'net_pcap0' is already used "
	             "by port 'a'");
	EXPECT_ERROR("version: 1\n"
	             "eal: [-l, 0]\n"
	             "datapath:\n"
	             "  ports:\n"
	             "    - {name: Inside, device: d0, peer: b}\n" BASE_CLUSTER,
	             "t.yaml:5:14: datapath.ports[0].name: 'Inside' is not a valid port name "
	             "([a-z0-9_-], 1 to 63 characters)");
	EXPECT_ERROR("version: 1\n"
	             "eal: [-l, 0]\n"
	             "datapath:\n"
	             "  ports: []\n" BASE_CLUSTER,
	             "t.yaml:4:10: datapath.ports: expected 1 to 16 ports, got 0");
}

static void
test_too_many_ports(void)
{
	char text[4096];
	size_t off;
	int i;

	off = (size_t)snprintf(text, sizeof(text),
	                       "version: 1\neal: [-l, 0]\ndatapath:\n  ports:\n");
	for (i = 0; i < 18; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		                        "    - {name: p%d, device: d%d, peer: p%d}\n", i, i, i ^ 1);
	snprintf(text + off, sizeof(text) - off, BASE_CLUSTER);
	EXPECT_ERROR(text, "t.yaml:5:5: datapath.ports: expected 1 to 16 ports, got 18");
	/* 16 is the limit, and allowed */
	off = (size_t)snprintf(text, sizeof(text),
	                       "version: 1\neal: [-l, 0]\ndatapath:\n  ports:\n");
	for (i = 0; i < 16; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		                        "    - {name: p%d, device: d%d, peer: p%d}\n", i, i, i ^ 1);
	snprintf(text + off, sizeof(text) - off, BASE_CLUSTER);
	{
		struct mg_config *c = load_ok(text);

		CU_ASSERT_PTR_NOT_NULL_FATAL(c);
		CU_ASSERT_EQUAL(c->n_ports, 16);
		CU_ASSERT_EQUAL(c->ports[15].peer_index, 14);
		mg_config_free(c);
	}
}

static void
test_missing_sections(void)
{
	EXPECT_ERROR("eal: [-l, 0]\n", "t.yaml:1:1: config: missing required key 'version'");
	EXPECT_ERROR("version: 1\n"
	             "datapath: {ports: [{name: a, device: d0, peer: b}]}\n",
	             "t.yaml:1:1: config: missing required key 'eal'");
	EXPECT_ERROR(BASE_HEAD, "t.yaml:1:1: config: missing required key 'cluster'");
	EXPECT_ERROR("version: 1\neal: [-l]\n" BASE_CLUSTER,
	             "t.yaml:1:1: config: missing required key 'datapath'");
	EXPECT_ERROR("version: 1\neal: [-l]\ndatapath: {non_ip: drop}\n" BASE_CLUSTER,
	             "t.yaml:3:11: datapath: missing required key 'ports'");
	EXPECT_ERROR("version: 1\neal: []\n", "t.yaml:2:6: eal: must hold at least one argument");
}

static void
test_version(void)
{
	EXPECT_ERROR("version: 2\n",
	             "t.yaml:1:10: version: unsupported config version 2 (this meshgate reads "
	             "version 1)");
	EXPECT_ERROR("version: one\n", "t.yaml:1:10: version: expected an integer, got 'one'");
}

static void
test_wrong_types(void)
{
	EXPECT_ERROR("version: 1\neal: -l\n", "t.yaml:2:6: eal: expected a list");
	EXPECT_ERROR("version: 1\neal: [-l, [0]]\n", "t.yaml:2:11: eal[1]: expected a string");
	EXPECT_ERROR(BASE "policy: {default_local_cluster: yes}\n",
	             "t.yaml:8:33: policy.default_local_cluster: expected true or false");
	EXPECT_ERROR(BASE_HEAD "cluster: [c1, 1]\n", "t.yaml:7:10: cluster: expected a mapping");
	EXPECT_ERROR(BASE "identities: {files: a.yaml}\n",
	             "t.yaml:8:21: identities.files: expected a list");
	EXPECT_ERROR(BASE "- 1\n", "t.yaml:8:1: YAML syntax error: did not find expected key "
	                           "while parsing a block mapping");
	EXPECT_ERROR("[1, 2]\n", "t.yaml:1:1: config: expected a mapping");
}

static void
test_documents(void)
{
	struct mg_config *c;
	struct mg_error err = {{0}};

	EXPECT_ERROR(BASE "---\nversion: 1\n",
	             "t.yaml:9:1: config: a config file holds one YAML document, a second one "
	             "starts here");
	/* an empty trailing document is no document */
	c = load_ok("---\n" BASE "---\n");
	CU_ASSERT_PTR_NOT_NULL(c);
	mg_config_free(c);
	c = load_text("", &err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "t.yaml: the config file is empty");
}

static void
test_kvstore(void)
{
	struct mg_config *c = load_ok(BASE "kvstore: {redis: \"redis://10.0.0.1:6379/2\"}\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->kv_redis, "redis://10.0.0.1:6379/2");
	CU_ASSERT_EQUAL(c->n_kv_clusters, 0);
	CU_ASSERT_EQUAL(c->kv_sync_timeout, 60);
	CU_ASSERT_EQUAL(c->kv_max_delete_share, 50);
	CU_ASSERT_EQUAL(c->kv_block_ms, 100);
	CU_ASSERT_EQUAL(c->kv_heartbeat_timeout, 180);
	mg_config_free(c);
	c = load_ok(BASE "kvstore: {redis: \"redis://h\", heartbeat_timeout: 0}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->kv_heartbeat_timeout, 0);
	mg_config_free(c);
	EXPECT_ERROR(BASE "kvstore: {redis: \"redis://h\", heartbeat_timeout: 86401}\n",
	             "t.yaml:8:50: kvstore.heartbeat_timeout: 86401 is out of range [0, 86400]");
	c = load_ok(BASE "kvstore: {redis: \"redis://h\", user: gw, password_file: pw/redis.pass, "
	                 "sync_timeout: 1, max_delete_share: 0, block_ms: 5}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->kv_user, "gw");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c->kv_password_file);
	CU_ASSERT_EQUAL(c->kv_password_file[0], '/');
	CU_ASSERT_PTR_NOT_NULL(strstr(c->kv_password_file, "/pw/redis.pass"));
	CU_ASSERT_EQUAL(c->kv_sync_timeout, 1);
	CU_ASSERT_EQUAL(c->kv_max_delete_share, 0);
	CU_ASSERT_EQUAL(c->kv_block_ms, 5);
	mg_config_free(c);
	EXPECT_ERROR(BASE "kvstore: {redis: \"redis://h\", max_delete_share: 101}\n",
	             "t.yaml:8:49: kvstore.max_delete_share: 101 is out of range [0, 100]");
	EXPECT_ERROR(BASE "kvstore: {redis: \"rediss://h:6379\"}\n",
	             "t.yaml:8:18: kvstore.redis: 'rediss://h:6379' is not a "
	             "redis://host[:port][/db] or unix:///path URL");
	EXPECT_ERROR(BASE "kvstore: {redis: \"unix://relative\"}\n",
	             "t.yaml:8:18: kvstore.redis: 'unix://relative' is not a "
	             "redis://host[:port][/db] or unix:///path URL");
	EXPECT_ERROR(BASE "kvstore: {clusters: [a]}\n",
	             "t.yaml:8:10: kvstore: missing required key 'redis'");
	EXPECT_ERROR(BASE "kvstore: {redis: \"redis://h\", clusters: [a, b, a]}\n",
	             "t.yaml:8:48: kvstore.clusters[2]: cluster 'a' is listed twice");
}

static void
test_metrics_listen(void)
{
	static const char *const good[] = {"0.0.0.0:1", "127.0.0.1:0", "localhost:9470", ":9470",
	                                   "[fd00::1]:65535"};
	static const char *const bad[] = {"127.0.0.1", "127.0.0.1:x0", "127.0.0.1:65536",
	                                  "::1:9470",  "[::1:9470",    "h:x",
	                                  "[zz]:80"};
	char text[512], want[256];
	size_t i;

	for (i = 0; i < MG_ARRAY_SIZE(good); i++) {
		struct mg_config *c;

		snprintf(text, sizeof(text), BASE "metrics: {listen: \"%s\"}\n", good[i]);
		c = load_ok(text);
		CU_ASSERT_PTR_NOT_NULL_FATAL(c);
		CU_ASSERT_STRING_EQUAL(c->metrics_listen, good[i]);
		mg_config_free(c);
	}
	for (i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		snprintf(text, sizeof(text), BASE "metrics: {listen: \"%s\"}\n", bad[i]);
		snprintf(want, sizeof(want),
		         "t.yaml:8:19: metrics.listen: '%s' is not host:port (port 0 to 65535; "
		         "IPv6 as [addr]:port)",
		         bad[i]);
		EXPECT_ERROR(text, want);
	}
}

/* The /metrics endpoint's limits: defaults, values, errors with their place. */
static void
test_metrics_limits(void)
{
	struct mg_config *c = load_ok(BASE);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->metrics_max_connections, 16);
	CU_ASSERT_EQUAL(c->metrics_request_timeout, 5);
	mg_config_free(c);

	c = load_ok(BASE "metrics:\n"
	                 "  listen: 127.0.0.1:0\n"
	                 "  max_connections: 1024\n"
	                 "  request_timeout: 1\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->metrics_listen, "127.0.0.1:0");
	CU_ASSERT_EQUAL(c->metrics_max_connections, 1024);
	CU_ASSERT_EQUAL(c->metrics_request_timeout, 1);
	mg_config_free(c);

	EXPECT_ERROR(BASE "metrics: {max_connections: 0}\n",
	             "t.yaml:8:28: metrics.max_connections: 0 is out of range [1, 1024]");
	EXPECT_ERROR(BASE "metrics: {max_connections: 1025}\n",
	             "t.yaml:8:28: metrics.max_connections: 1025 is out of range [1, 1024]");
	EXPECT_ERROR(BASE "metrics: {request_timeout: 0}\n",
	             "t.yaml:8:28: metrics.request_timeout: 0 is out of range [1, 3600]");
	EXPECT_ERROR(BASE "metrics: {request_timeout: 3601}\n",
	             "t.yaml:8:28: metrics.request_timeout: 3601 is out of range [1, 3600]");
	EXPECT_ERROR(BASE "metrics: {request_timeout: 5s}\n",
	             "t.yaml:8:28: metrics.request_timeout: expected an integer, got '5s'");
	EXPECT_ERROR(BASE "metrics:\n  listen: \":1\"\n  max_connections: [1]\n",
	             "t.yaml:10:20: metrics.max_connections: expected an integer");
}

static void
test_control_socket(void)
{
	char text[512], want[512], longp[200];

	memset(longp, 'x', 150);
	longp[0] = '/';
	longp[150] = '\0';
	snprintf(text, sizeof(text), BASE "control: {socket: %s}\n", longp);
	snprintf(want, sizeof(want),
	         "t.yaml:8:19: control.socket: '%s' is longer than a unix socket path may be (107 "
	         "bytes)",
	         longp);
	EXPECT_ERROR(text, want);
	EXPECT_ERROR(BASE "control: {socket: \"\"}\n", "t.yaml:8:19: control.socket: empty path");
}

/* The control socket's bounds and groups (lib/ctl): defaults, values, errors. */
static void
test_control_keys(void)
{
	struct mg_config *c = load_ok(BASE);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NULL(c->control_group);
	CU_ASSERT_PTR_NULL(c->control_admin_group);
	CU_ASSERT_EQUAL(c->control_max_clients, 16);
	CU_ASSERT_EQUAL(c->control_max_request, 65536);
	CU_ASSERT_EQUAL(c->control_idle_timeout, 60);
	CU_ASSERT_EQUAL(c->control_max_output, 1048576);
	mg_config_free(c);

	c = load_ok(BASE "control:\n"
	                 "  group: meshgate\n"
	                 "  admin_group: mg-admin$\n"
	                 "  max_clients: 4\n"
	                 "  max_request_bytes: 1024\n"
	                 "  idle_timeout: 5\n"
	                 "  max_output_bytes: 65536\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->control_group, "meshgate");
	CU_ASSERT_STRING_EQUAL(c->control_admin_group, "mg-admin$");
	CU_ASSERT_EQUAL(c->control_max_clients, 4);
	CU_ASSERT_EQUAL(c->control_max_request, 1024);
	CU_ASSERT_EQUAL(c->control_idle_timeout, 5);
	CU_ASSERT_EQUAL(c->control_max_output, 65536);
	CU_ASSERT_STRING_EQUAL(c->control_socket, "/run/meshgate/meshgate.sock");
	mg_config_free(c);

	/* null groups are the defaults */
	c = load_ok(BASE "control: {group: null, admin_group: ~}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_PTR_NULL(c->control_group);
	CU_ASSERT_PTR_NULL(c->control_admin_group);
	mg_config_free(c);

	EXPECT_ERROR(BASE "control: {group: \"a b\"}\n",
	             "t.yaml:8:18: control.group: 'a b' is not a group name");
	EXPECT_ERROR(BASE "control: {admin_group: -x}\n",
	             "t.yaml:8:24: control.admin_group: '-x' is not a group name");
	EXPECT_ERROR(BASE "control: {group: \"\"}\n",
	             "t.yaml:8:18: control.group: '' is not a group name");
	EXPECT_ERROR(BASE "control: {group: a$b}\n",
	             "t.yaml:8:18: control.group: 'a$b' is not a group name");
	EXPECT_ERROR(BASE "control: {group: [a]}\n",
	             "t.yaml:8:18: control.group: expected a string");
	EXPECT_ERROR(BASE "control: {max_clients: 0}\n",
	             "t.yaml:8:24: control.max_clients: 0 is out of range [1, 1024]");
	EXPECT_ERROR(BASE "control: {max_clients: 1025}\n",
	             "t.yaml:8:24: control.max_clients: 1025 is out of range [1, 1024]");
	EXPECT_ERROR(
	        BASE "control: {max_request_bytes: 1023}\n",
	        "t.yaml:8:30: control.max_request_bytes: 1023 is out of range [1024, 16777216]");
	EXPECT_ERROR(BASE "control: {idle_timeout: 0}\n",
	             "t.yaml:8:25: control.idle_timeout: 0 is out of range [1, 86400]");
	EXPECT_ERROR(BASE "control: {idle_timeout: 1s}\n",
	             "t.yaml:8:25: control.idle_timeout: expected an integer, got '1s'");
	EXPECT_ERROR(
	        BASE "control: {max_output_bytes: 1024}\n",
	        "t.yaml:8:29: control.max_output_bytes: 1024 is out of range [65536, 1073741824]");
	EXPECT_ERROR(BASE "control: {max_client: 3}\n",
	             "t.yaml:8:11: control: unknown key 'max_client'");
}

/* control.admin_reserve: connections kept for root and the admin group. */
static void
test_control_admin_reserve(void)
{
	struct mg_config *c = load_ok(BASE);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->control_reserve, 2);
	mg_config_free(c);
	c = load_ok(BASE "control: {admin_reserve: 0}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->control_reserve, 0);
	mg_config_free(c);
	/* either order of the keys */
	c = load_ok(BASE "control: {admin_reserve: 7, max_clients: 8}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->control_reserve, 7);
	CU_ASSERT_EQUAL(c->control_max_clients, 8);
	mg_config_free(c);
	/* the default leaves readers one connection at least */
	c = load_ok(BASE "control: {max_clients: 2}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->control_reserve, 1);
	mg_config_free(c);
	c = load_ok(BASE "control: {max_clients: 1}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->control_reserve, 0);
	mg_config_free(c);

	EXPECT_ERROR(BASE "control: {admin_reserve: 16}\n",
	             "t.yaml:8:26: control.admin_reserve: 16 leaves no connection for the other "
	             "users (control.max_clients is 16)");
	EXPECT_ERROR(BASE "control: {max_clients: 4, admin_reserve: 5}\n",
	             "t.yaml:8:42: control.admin_reserve: 5 leaves no connection for the other "
	             "users (control.max_clients is 4)");
	EXPECT_ERROR(BASE "control: {admin_reserve: 1024}\n",
	             "t.yaml:8:26: control.admin_reserve: 1024 is out of range [0, 1023]");
	EXPECT_ERROR(BASE "control: {admin_reserve: -1}\n",
	             "t.yaml:8:26: control.admin_reserve: expected an integer");
}

static void
test_ipcache_entries(void)
{
	struct mg_config *c = load_ok(BASE "ipcache:\n"
	                                   "  entries:\n"
	                                   "    - {prefix: 10.20.0.0/16, identity: 16777300}\n"
	                                   "    - {prefix: \"fd00:20::/32\", identity: 300}\n"
	                                   "    - {prefix: 192.0.2.7, identity: 0x1000100}\n");
	static const uint8_t v4[4] = {10, 20, 0, 0};

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL_FATAL(c->n_entries, 3);
	CU_ASSERT_EQUAL(c->entries[0].e.family, AF_INET);
	CU_ASSERT_EQUAL(c->entries[0].e.plen, 16);
	CU_ASSERT_EQUAL(memcmp(c->entries[0].e.addr, v4, 4), 0);
	CU_ASSERT_EQUAL(c->entries[0].e.identity, 16777300);
	CU_ASSERT_EQUAL(c->entries[0].e.cluster_id, 1);
	CU_ASSERT_EQUAL(c->entries[0].line, 10);
	CU_ASSERT_EQUAL(c->entries[0].col, 16);
	CU_ASSERT_EQUAL(c->entries[1].e.family, AF_INET6);
	CU_ASSERT_EQUAL(c->entries[1].e.plen, 32);
	CU_ASSERT_EQUAL(c->entries[2].e.plen, 32);
	CU_ASSERT_EQUAL(c->entries[2].e.identity, 0x1000100);
	mg_config_free(c);

	EXPECT_ERROR(BASE "ipcache:\n  entries:\n    - {prefix: 10.0.0.300/8, identity: 300}\n",
	             "t.yaml:10:16: ipcache.entries[0].prefix: '10.0.0.300/8' is not an IPv4 or "
	             "IPv6 prefix (such as 10.0.0.0/8 or fd00::/64)");
	EXPECT_ERROR(BASE "ipcache:\n  entries:\n    - {prefix: 10.0.0.0/33, identity: 300}\n",
	             "t.yaml:10:16: ipcache.entries[0].prefix: '10.0.0.0/33' is not an IPv4 or "
	             "IPv6 prefix (such as 10.0.0.0/8 or fd00::/64)");
	EXPECT_ERROR(BASE "ipcache:\n  entries:\n    - {prefix: 10.1.0.0/8, identity: 300}\n",
	             "t.yaml:10:16: ipcache.entries[0].prefix: '10.1.0.0/8' has bits set past "
	             "its length 8");
	EXPECT_ERROR(BASE "ipcache:\n  entries:\n"
	                  "    - {prefix: 10.0.0.0/8, identity: 300}\n"
	                  "    - {prefix: 10.0.0.0/8, identity: 301}\n",
	             "t.yaml:11:16: ipcache.entries[1].prefix: duplicate prefix '10.0.0.0/8' "
	             "(first at line 10)");
	EXPECT_ERROR(BASE "ipcache:\n  entries:\n    - {prefix: 10.0.0.0/8, identity: 33554432}\n",
	             "t.yaml:10:38: ipcache.entries[0].identity: 33554432 is out of range [1, "
	             "33554431]");
	EXPECT_ERROR(BASE "ipcache:\n  entries:\n    - {identity: 5}\n",
	             "t.yaml:10:7: ipcache.entries[0]: missing required key 'prefix'");
}

static void
test_relative_paths(void)
{
	char sub[PATH_MAX + 16], cfg[PATH_MAX + 64], want[PATH_MAX + 64];
	struct mg_error err = {{0}};
	struct mg_config *c;

	path_of(sub, sizeof(sub), tmp_dir, "rel");
	CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0700), 0);
	write_file(sub, "gw.yaml",
	           BASE "policy:\n"
	                "  sources: [{path: policies/}, {cluster: b, path: ./b.yaml}]\n"
	                "identities: {files: [ids.yaml, /abs/ids.yaml]}\n"
	                "ipcache: {files: [../eps.yaml]}\n"
	                "control: {socket: run/mg.sock}\n");
	path_of(cfg, sizeof(cfg), sub, "gw.yaml");
	c = mg_config_load(cfg, &err);
	if (c == NULL)
		printf("%s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->file, cfg);
	CU_ASSERT_STRING_EQUAL(c->dir, sub);
	path_of(want, sizeof(want), sub, "policies/");
	CU_ASSERT_STRING_EQUAL(c->sources[0].path, want);
	CU_ASSERT_STRING_EQUAL(c->sources[0].cluster, "c1");
	path_of(want, sizeof(want), sub, "b.yaml");
	CU_ASSERT_STRING_EQUAL(c->sources[1].path, want);
	CU_ASSERT_EQUAL_FATAL(c->n_identity_files, 2);
	path_of(want, sizeof(want), sub, "ids.yaml");
	CU_ASSERT_STRING_EQUAL(c->identity_files[0], want);
	CU_ASSERT_STRING_EQUAL(c->identity_files[1], "/abs/ids.yaml");
	CU_ASSERT_EQUAL_FATAL(c->n_endpoint_files, 1);
	path_of(want, sizeof(want), sub, "../eps.yaml");
	CU_ASSERT_STRING_EQUAL(c->endpoint_files[0], want);
	path_of(want, sizeof(want), sub, "run/mg.sock");
	CU_ASSERT_STRING_EQUAL(c->control_socket, want);
	mg_config_free(c);
}

/* A config path given relative to the working directory still resolves to absolute paths. */
static void
test_relative_config_path(void)
{
	char old[PATH_MAX], want[PATH_MAX + 64];
	struct mg_error err = {{0}};
	struct mg_config *c;

	write_file(tmp_dir, "relcfg.yaml", BASE "identities: {files: [x.yaml]}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(old, sizeof(old)));
	CU_ASSERT_EQUAL_FATAL(chdir("/tmp"), 0);
	/* tmp_dir is /tmp/mg-config-test.XXXXXX: relative to /tmp it is its last part */
	snprintf(want, sizeof(want), "%s/relcfg.yaml", strrchr(tmp_dir, '/') + 1);
	c = mg_config_load(want, &err);
	CU_ASSERT_EQUAL(chdir(old), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	path_of(want, sizeof(want), tmp_dir, "x.yaml");
	CU_ASSERT_STRING_EQUAL(c->identity_files[0], want);
	mg_config_free(c);
}

static void
test_missing_file(void)
{
	struct mg_error err = {{0}};
	struct mg_config *c;

	errno = 0;
	c = mg_config_load("/nonexistent/meshgate.yaml", &err);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(errno, ENOENT);
	CU_ASSERT_STRING_EQUAL(err.msg, "/nonexistent/meshgate.yaml: No such file or directory");
}

/* The error of a file names the file as given. */
static void
test_error_names_file(void)
{
	char cfg[PATH_MAX + 64], want[PATH_MAX + 128];
	struct mg_error err = {{0}};
	struct mg_config *c;

	write_file(tmp_dir, "bad.yaml", BASE "datapth: {}\n");
	path_of(cfg, sizeof(cfg), tmp_dir, "bad.yaml");
	c = mg_config_load(cfg, &err);
	CU_ASSERT_PTR_NULL(c);
	snprintf(want, sizeof(want), "%s:8:1: config: unknown key 'datapth'", cfg);
	CU_ASSERT_STRING_EQUAL(err.msg, want);
}

/* ---- manifests ---- */

static void
fixture(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/tests/unit/config/%s", root_dir, name);
}

static struct mg_ipcache *
new_ipcache(void)
{
	struct mg_ipcache_params p = {.entries_hint = 64, .split_world = true, .qsbr = NULL};

	return mg_ipcache_create(&p);
}

static void
test_identities_multi(void)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_error err = {{0}};
	const struct mg_identity *id;
	const struct mg_label *l;
	size_t before;
	char p[PATH_MAX + 64];
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	before = mg_identity_table_count(t);
	fixture(p, sizeof(p), "identities.yaml");
	rc = mg_config_load_identities(p, t, &err);
	if (rc < 0)
		printf("%s\n", err.msg);
	CU_ASSERT_EQUAL(rc, 2);
	CU_ASSERT_EQUAL(mg_identity_table_count(t), before + 2);
	id = mg_identity_table_get(t, 91392);
	CU_ASSERT_PTR_NOT_NULL_FATAL(id);
	/* 91392 = 1 << 16 | 25856: cluster 1 in 255-cluster mode */
	CU_ASSERT_EQUAL(id->cluster_id, 1);
	CU_ASSERT_EQUAL(id->labels.n, 5);
	l = mg_labels_find(&id->labels, "k8s", "app");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_STRING_EQUAL(l->value, "backend");
	/* only the first ':' splits source from key */
	l = mg_labels_find(&id->labels, "k8s", "io.kubernetes.pod.namespace");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_STRING_EQUAL(l->value, "backends");
	l = mg_labels_find(&id->labels, "k8s",
	                   "io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name");
	CU_ASSERT_PTR_NOT_NULL(l);
	/* metadata.labels are not security labels */
	CU_ASSERT_PTR_NULL(mg_labels_find(&id->labels, NULL, "pod-template-hash"));
	id = mg_identity_table_get(t, 131331);
	CU_ASSERT_PTR_NOT_NULL_FATAL(id);
	CU_ASSERT_EQUAL(id->cluster_id, 2);
	l = mg_labels_find(&id->labels, "k8s", "empty-value");
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT_STRING_EQUAL(l->value, "");
	mg_identity_table_free(t);
}

static void
test_identities_list(void)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_511);
	struct mg_error err = {{0}};
	const struct mg_identity *id;
	char p[PATH_MAX + 64];

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	fixture(p, sizeof(p), "identities_list.yaml");
	CU_ASSERT_EQUAL(mg_config_load_identities(p, t, &err), 2);
	id = mg_identity_table_get(t, 65601);
	CU_ASSERT_PTR_NOT_NULL_FATAL(id);
	/* 65601 >> 15 = 2 in 511-cluster mode */
	CU_ASSERT_EQUAL(id->cluster_id, 2);
	CU_ASSERT_PTR_NOT_NULL(mg_labels_find(&id->labels, "k8s", "app.kubernetes.io/name"));
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(t, 65600));
	mg_identity_table_free(t);
}

static int
load_ids_text(struct mg_identity_table *t, const char *text, struct mg_error *err)
{
	return mg_config_load_identities_buf("ids.yaml", text, strlen(text), t, err);
}

#define IDENT_HEAD "apiVersion: cilium.io/v2\nkind: CiliumIdentity\n"

static void
expect_ids_error_at(int line, const char *text, const char *want)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_error err = {{0}};
	size_t before;
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	before = mg_identity_table_count(t);
	rc = load_ids_text(t, text, &err);
	CU_ASSERT_EQUAL(rc, -EINVAL);
	if (strcmp(err.msg, want) != 0)
		printf("test_config.c:%d:\n  want: %s\n  got:  %s\n", line, want, err.msg);
	CU_ASSERT_STRING_EQUAL(err.msg, want);
	/* a file with an error adds nothing */
	CU_ASSERT_EQUAL(mg_identity_table_count(t), before);
	mg_identity_table_free(t);
}
#define EXPECT_IDS_ERROR(text, want) expect_ids_error_at(__LINE__, text, want)

static void
test_identity_errors(void)
{
	EXPECT_IDS_ERROR(IDENT_HEAD "metadata: {name: \"300\"}\n---\n"
	                            "apiVersion: cilium.io/v2\nkind: CiliumEndpoint\n"
	                            "metadata: {name: x}\n",
	                 "ids.yaml:6:7: kind: unexpected kind 'CiliumEndpoint' (this file must "
	                 "hold CiliumIdentity)");
	EXPECT_IDS_ERROR(IDENT_HEAD "metadata: {name: \"5\"}\n",
	                 "ids.yaml:3:18: metadata.name: identity 5 is out of range [256, "
	                 "33554431] (reserved identities cannot be defined)");
	EXPECT_IDS_ERROR(IDENT_HEAD "metadata: {name: backend}\n",
	                 "ids.yaml:3:18: metadata.name: 'backend' is not an identity number");
	EXPECT_IDS_ERROR(IDENT_HEAD "metadata: {name: \"0300\"}\n",
	                 "ids.yaml:3:18: metadata.name: '0300' is not an identity number");
	EXPECT_IDS_ERROR("apiVersion: cilium.io/v1\nkind: CiliumIdentity\nmetadata: {name: "
	                 "\"300\"}\n",
	                 "ids.yaml:1:13: apiVersion: expected 'cilium.io/v2', got 'cilium.io/v1'");
	EXPECT_IDS_ERROR(IDENT_HEAD "metadata: {name: \"300\"}\nspec: {}\n",
	                 "ids.yaml:4:1: CiliumIdentity: unknown key 'spec'");
	EXPECT_IDS_ERROR(IDENT_HEAD "metadata: {name: \"300\"}\n---\n" IDENT_HEAD
	                            "metadata: {name: \"300\"}\n",
	                 "ids.yaml:7:18: metadata.name: identity 300 is defined twice (first at "
	                 "line 3)");
	EXPECT_IDS_ERROR(IDENT_HEAD "metadata: {namespace: x}\n",
	                 "ids.yaml:3:11: metadata: missing required key 'name'");
	EXPECT_IDS_ERROR(
	        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: List, items: []}\n",
	        "ids.yaml:4:26: kind: unexpected kind 'List' (this file must hold "
	        "CiliumIdentity)");
	EXPECT_IDS_ERROR("kind: CiliumIdentity\nmetadata: {name: \"300\"}\n",
	                 "ids.yaml:1:1: CiliumIdentity: missing required key 'apiVersion'");
	EXPECT_IDS_ERROR(IDENT_HEAD "metadata: {name: \"300\"}\nsecurity-labels: [k8s:a=b]\n",
	                 "ids.yaml:4:18: security-labels: expected a mapping");
}

/* Two equal keys anywhere in a CiliumIdentity: refused at the second. */
static void
test_identity_duplicate_keys(void)
{
	EXPECT_IDS_ERROR(IDENT_HEAD "metadata: {name: \"300\"}\nsecurity-labels:\n"
	                            "  k8s:app: db\n  k8s:io.kubernetes.pod.namespace: a\n"
	                            "  k8s:app: backend\n",
	                 "ids.yaml:7:3: duplicate key 'k8s:app' (first at line 5)");
	EXPECT_IDS_ERROR(IDENT_HEAD "metadata:\n  name: \"300\"\n  labels: {a: b}\n"
	                            "  name: \"301\"\n",
	                 "ids.yaml:6:3: duplicate key 'name' (first at line 4)");
	EXPECT_IDS_ERROR(IDENT_HEAD "metadata: {name: \"300\", labels: {x: 1, x: 2}}\n",
	                 "ids.yaml:3:40: duplicate key 'x' (first at line 3)");
	EXPECT_IDS_ERROR(IDENT_HEAD "metadata: {name: \"300\"}\nkind: CiliumIdentity\n",
	                 "ids.yaml:4:1: duplicate key 'kind' (first at line 2)");
}

/* ... and a source prefix makes a different label. */
static void
test_identity_prefixed_labels(void)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	const char *text = IDENT_HEAD "metadata: {name: \"300\"}\nsecurity-labels:\n"
	                              "  k8s:app: db\n  app: other\n";
	struct mg_error err = {{0}};
	const struct mg_identity *id;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(load_ids_text(t, text, &err), 1);
	id = mg_identity_table_get(t, 300);
	CU_ASSERT_PTR_NOT_NULL_FATAL(id);
	CU_ASSERT_EQUAL(id->labels.n, 2);
	CU_ASSERT_PTR_NOT_NULL(mg_labels_find(&id->labels, "k8s", "app"));
	CU_ASSERT_PTR_NOT_NULL(mg_labels_find(&id->labels, "unspec", "app"));
	mg_identity_table_free(t);
}

static void
test_identities_missing_file(void)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_error err = {{0}};

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(mg_config_load_identities("/nonexistent/ids.yaml", t, &err), -ENOENT);
	CU_ASSERT_STRING_EQUAL(err.msg, "/nonexistent/ids.yaml: No such file or directory");
	mg_identity_table_free(t);
}

static void
check_v4(struct mg_ipcache *ipc, const char *ip, uint32_t id, unsigned cluster)
{
	struct mg_ipcache_entry e;
	uint8_t a[16] = {0};

	CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET, ip, a), 1);
	CU_ASSERT_EQUAL_FATAL(mg_ipcache_get(ipc, AF_INET, a, 32, &e), 0);
	CU_ASSERT_EQUAL(e.identity, id);
	CU_ASSERT_EQUAL(e.cluster_id, cluster);
	CU_ASSERT_EQUAL(e.plen, 32);
}

static void
check_v6(struct mg_ipcache *ipc, const char *ip, uint32_t id, unsigned cluster)
{
	struct mg_ipcache_entry e;
	uint8_t a[16] = {0};

	CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET6, ip, a), 1);
	CU_ASSERT_EQUAL_FATAL(mg_ipcache_get(ipc, AF_INET6, a, 128, &e), 0);
	CU_ASSERT_EQUAL(e.identity, id);
	CU_ASSERT_EQUAL(e.cluster_id, cluster);
	CU_ASSERT_EQUAL(e.plen, 128);
}

static void
test_endpoints_multi(void)
{
	struct mg_ipcache *ipc = new_ipcache();
	struct mg_error err = {{0}};
	char p[PATH_MAX + 64];
	uint8_t a[16] = {0};
	struct mg_ipcache_entry e;
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	fixture(p, sizeof(p), "endpoints.yaml");
	rc = mg_config_load_endpoints(p, ipc, 7, &err);
	if (rc < 0)
		printf("%s\n", err.msg);
	/* dual-stack pod: 2, IPv4-only pod: 1; the other two are skipped */
	CU_ASSERT_EQUAL(rc, 3);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 3);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, 0), 0); /* staged, not committed */
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 3);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, AF_INET), 2);
	CU_ASSERT_EQUAL(mg_ipcache_count(ipc, AF_INET6), 1);
	check_v4(ipc, "10.1.1.53", 91392, 7);
	check_v6(ipc, "fd00:10:1:1::4a0b", 91392, 7);
	check_v4(ipc, "10.1.2.17", 131331, 7);
	/* the pod waiting for its identity is not there */
	inet_pton(AF_INET, "10.1.2.99", a);
	CU_ASSERT_EQUAL(mg_ipcache_get(ipc, AF_INET, a, 32, &e), -ENOENT);
	mg_ipcache_free(ipc);
}

static void
test_endpoints_list(void)
{
	struct mg_ipcache *ipc = new_ipcache();
	struct mg_error err = {{0}};
	char p[PATH_MAX + 64];

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	fixture(p, sizeof(p), "endpoints_list.yaml");
	CU_ASSERT_EQUAL(mg_config_load_endpoints(p, ipc, 2, &err), 3);
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 3);
	check_v4(ipc, "10.1.0.10", 65600, 2);
	check_v6(ipc, "fd00:10:1::a", 65600, 2);
	check_v6(ipc, "fd00:10:1::b", 65601, 2);
	mg_ipcache_free(ipc);
}

#define CEP_HEAD \
	"apiVersion: cilium.io/v2\nkind: CiliumEndpoint\nmetadata: {name: p, namespace: n}\n"

static void
expect_eps_error_at(int line, const char *text, const char *want)
{
	struct mg_ipcache *ipc = new_ipcache();
	struct mg_error err = {{0}};
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	rc = mg_config_load_endpoints_buf("eps.yaml", text, strlen(text), ipc, 1, &err);
	CU_ASSERT_EQUAL(rc, -EINVAL);
	if (strcmp(err.msg, want) != 0)
		printf("test_config.c:%d:\n  want: %s\n  got:  %s\n", line, want, err.msg);
	CU_ASSERT_STRING_EQUAL(err.msg, want);
	/* a file with an error stages nothing, not even its good objects */
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 0);
	mg_ipcache_free(ipc);
}
#define EXPECT_EPS_ERROR(text, want) expect_eps_error_at(__LINE__, text, want)

static void
test_endpoint_errors(void)
{
	EXPECT_EPS_ERROR(CEP_HEAD
	                 "status:\n  identity: {id: 300}\n"
	                 "  networking: {addressing: [{ipv4: 10.1.1.1}, {ipv4: 10.1.1}]}\n",
	                 "eps.yaml:6:54: addressing.ipv4: '10.1.1' is not an IPv4 address");
	EXPECT_EPS_ERROR(CEP_HEAD "status:\n  identity: {id: 300}\n"
	                          "  networking: {addressing: [{ipv6: 10.1.1.1}]}\n",
	                 "eps.yaml:6:36: addressing.ipv6: '10.1.1.1' is not an IPv6 address");
	EXPECT_EPS_ERROR(CEP_HEAD "status:\n  identity: {id: web}\n",
	                 "eps.yaml:5:18: status.identity.id: expected an integer, got 'web'");
	EXPECT_EPS_ERROR(CEP_HEAD "status:\n  identity: {id: 300}\n"
	                          "  networking: {addressing: {ipv4: 10.1.1.1}}\n",
	                 "eps.yaml:6:28: status.networking.addressing: expected a list");
	EXPECT_EPS_ERROR("apiVersion: cilium.io/v2\nkind: CiliumIdentity\nmetadata: {name: "
	                 "\"300\"}\n",
	                 "eps.yaml:2:7: kind: unexpected kind 'CiliumIdentity' (this file must "
	                 "hold CiliumEndpoint)");
	EXPECT_EPS_ERROR("apiVersion: v1\nkind: List\nitems:\n- {kind: Pod, apiVersion: v1}\n",
	                 "eps.yaml:4:10: kind: unexpected kind 'Pod' (this file must hold "
	                 "CiliumEndpoint)");
	EXPECT_EPS_ERROR("apiVersion: v2\nkind: List\nitems: []\n",
	                 "eps.yaml:1:13: apiVersion: expected 'v1', got 'v2'");
	EXPECT_EPS_ERROR("- a\n- b\n", "eps.yaml:1:1: document: expected a mapping");
	EXPECT_EPS_ERROR(CEP_HEAD "spec: {}\n", "eps.yaml:4:1: CiliumEndpoint: unknown key 'spec'");
}

/* Two equal keys anywhere in a CiliumEndpoint: refused at the second. */
static void
test_endpoint_duplicate_keys(void)
{
	EXPECT_EPS_ERROR(CEP_HEAD "status:\n  identity: {id: 300}\n"
	                          "  networking: {addressing: [{ipv4: 10.1.1.1}]}\n"
	                          "  identity: {id: 400}\n",
	                 "eps.yaml:7:3: duplicate key 'identity' (first at line 5)");
	EXPECT_EPS_ERROR(CEP_HEAD "status:\n  identity: {id: 300, id: 400}\n",
	                 "eps.yaml:5:23: duplicate key 'id' (first at line 5)");
	EXPECT_EPS_ERROR(CEP_HEAD "status:\n  identity: {id: 300}\n"
	                          "  networking:\n    addressing:\n    - ipv4: 10.1.1.1\n"
	                          "      ipv4: 10.1.1.2\n",
	                 "eps.yaml:9:7: duplicate key 'ipv4' (first at line 8)");
	EXPECT_EPS_ERROR(CEP_HEAD "status:\n  identity: {id: 300}\n"
	                          "  named-ports: [{name: http, port: 80, port: 8080}]\n",
	                 "eps.yaml:6:40: duplicate key 'port' (first at line 6)");
	EXPECT_EPS_ERROR("apiVersion: cilium.io/v2\nkind: CiliumEndpoint\n"
	                 "metadata:\n  name: p\n  namespace: a\n  namespace: b\n",
	                 "eps.yaml:6:3: duplicate key 'namespace' (first at line 5)");
}

/* status.named-ports go to the endpoint's identity when a table is given. */
static void
test_endpoint_named_ports(void)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_ipcache *ipc = new_ipcache();
	struct mg_labels ls = MG_LABELS_INIT;
	struct mg_error err = {{0}};
	const struct mg_identity *e;
	char path[PATH_MAX + 64];
	const char *text = CEP_HEAD "status:\n  identity: {id: 300}\n"
	                            "  named-ports:\n  - {name: http, port: 8080, protocol: TCP}\n"
	                            "  - {name: dns, port: 53, protocol: UDP}\n"
	                            "  - {name: web, port: 80}\n"
	                            "  networking: {addressing: [{ipv4: 10.0.0.1}]}\n"
	                            "---\n" CEP_HEAD "status:\n  identity: {id: 300}\n"
	                            "  named-ports: [{name: http, port: 8081, protocol: TCP}]\n"
	                            "  networking: {addressing: [{ipv4: 10.0.0.2}]}\n"
	                            "---\n" CEP_HEAD "status:\n  identity: {id: 400}\n"
	                            "  named-ports: [{name: http, port: 1}]\n"
	                            "  networking: {addressing: [{ipv4: 10.0.0.3}]}\n";

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	CU_ASSERT_EQUAL(mg_labels_add_str(&ls, "k8s:app=x"), 0);
	CU_ASSERT_EQUAL(mg_identity_table_put(t, 300, &ls, 0), 0);
	/* identity 400 is unknown: its named port is ignored with a warning */
	mg_log_set_level(MG_LOG_ERR);
	CU_ASSERT_EQUAL(
	        mg_config_load_endpoints_ids_buf("eps.yaml", text, strlen(text), ipc, t, 1, &err),
	        3);
	mg_log_set_level(MG_LOG_INFO);
	e = mg_identity_table_get(t, 300);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	/* the union over both endpoints of identity 300, sorted */
	CU_ASSERT_EQUAL_FATAL(e->n_named_ports, 4);
	CU_ASSERT_STRING_EQUAL(e->named_ports[0].name, "dns");
	CU_ASSERT_EQUAL(e->named_ports[0].proto, 17);
	CU_ASSERT_EQUAL(e->named_ports[1].port, 8080);
	CU_ASSERT_EQUAL(e->named_ports[2].port, 8081);
	CU_ASSERT_STRING_EQUAL(e->named_ports[3].name, "web");
	CU_ASSERT_EQUAL(e->named_ports[3].proto, 6);
	CU_ASSERT_PTR_NULL(mg_identity_table_get(t, 400));
	/* without a table the named ports are only validated */
	CU_ASSERT_EQUAL(mg_config_load_endpoints_buf("eps.yaml", text, strlen(text), ipc, 1, &err),
	                3);
	/* from a file: the kubectl output fixture names port http of identity 91392 */
	CU_ASSERT_EQUAL(mg_identity_table_put(t, 91392, &ls, 0), 0);
	fixture(path, sizeof(path), "endpoints.yaml");
	mg_log_set_level(MG_LOG_ERR);
	CU_ASSERT(mg_config_load_endpoints_ids(path, ipc, t, 1, &err) > 0);
	mg_log_set_level(MG_LOG_INFO);
	e = mg_identity_table_get(t, 91392);
	CU_ASSERT_EQUAL_FATAL(e->n_named_ports, 1);
	CU_ASSERT_STRING_EQUAL(e->named_ports[0].name, "http");
	CU_ASSERT_EQUAL(e->named_ports[0].port, 8080);
	mg_labels_clear(&ls);
	mg_identity_table_free(t);
	mg_ipcache_free(ipc);
}

/*
 * What docs/configuration.md says of named ports: an endpoint with an
 * identity but no address yet still gives them to its identity; one
 * without an identity is skipped before they are read (not even checked).
 */
static void
test_endpoint_named_ports_of_skipped(void)
{
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_ipcache *ipc = new_ipcache();
	struct mg_labels ls = MG_LABELS_INIT;
	struct mg_error err = {{0}};
	const struct mg_identity *e;
	const char *text = CEP_HEAD "status:\n  identity: {id: 300}\n"
	                            "  named-ports: [{name: http, port: 8080}]\n"
	                            "---\n" CEP_HEAD "status:\n  identity: {id: 0}\n"
	                            "  named-ports: [{name: bad, port: 0, protocol: ICMP}]\n";

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	CU_ASSERT_EQUAL(mg_labels_add_str(&ls, "k8s:app=x"), 0);
	CU_ASSERT_EQUAL(mg_identity_table_put(t, 300, &ls, 0), 0);
	mg_log_set_level(MG_LOG_ERR);
	CU_ASSERT_EQUAL(
	        mg_config_load_endpoints_ids_buf("eps.yaml", text, strlen(text), ipc, t, 1, &err),
	        0);
	mg_log_set_level(MG_LOG_INFO);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 0);
	e = mg_identity_table_get(t, 300);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL_FATAL(e->n_named_ports, 1);
	CU_ASSERT_STRING_EQUAL(e->named_ports[0].name, "http");
	CU_ASSERT_EQUAL(e->named_ports[0].port, 8080);
	CU_ASSERT_EQUAL(e->named_ports[0].proto, 6);
	mg_labels_clear(&ls);
	mg_identity_table_free(t);
	mg_ipcache_free(ipc);
}

static void
test_endpoint_named_port_errors(void)
{
	EXPECT_EPS_ERROR(CEP_HEAD "status:\n  identity: {id: 300}\n"
	                          "  named-ports: [{name: http, port: 70000}]\n",
	                 "eps.yaml:6:36: status.named-ports[0].port: 70000 is out of range [1, "
	                 "65535]");
	EXPECT_EPS_ERROR(CEP_HEAD "status:\n  identity: {id: 300}\n"
	                          "  named-ports: [{name: http, port: 80, protocol: ICMP}]\n",
	                 "eps.yaml:6:50: status.named-ports[0].protocol: unknown protocol 'ICMP' "
	                 "(expected TCP, UDP or SCTP)");
	EXPECT_EPS_ERROR(CEP_HEAD "status:\n  identity: {id: 300}\n"
	                          "  named-ports: [{port: 80}]\n",
	                 "eps.yaml:6:17: status.named-ports[0].name is required");
	EXPECT_EPS_ERROR(CEP_HEAD "status:\n  identity: {id: 300}\n"
	                          "  named-ports: [{name: http, port: 80, extra: 1}]\n",
	                 "eps.yaml:6:40: status.named-ports[0]: unknown key 'extra'");
	EXPECT_EPS_ERROR(CEP_HEAD "status:\n  identity: {id: 300}\n  named-ports: {a: b}\n",
	                 "eps.yaml:6:16: status.named-ports: expected a list");
}

static void
test_endpoint_skips(void)
{
	struct mg_ipcache *ipc = new_ipcache();
	struct mg_error err = {{0}};
	const char *text = CEP_HEAD "status: {state: waiting-for-identity}\n"
	                            "---\n" CEP_HEAD "status:\n  identity: {id: 0}\n"
	                            "  networking: {addressing: [{ipv4: 10.0.0.1}]}\n"
	                            "---\n" CEP_HEAD "status:\n  identity: {id: 300}\n"
	                            "  networking: {addressing: []}\n"
	                            "---\n" CEP_HEAD "status:\n  identity: {id: 300}\n"
	                            "  networking: {addressing: [{ipv4: ~, ipv6: null}]}\n"
	                            "---\n" CEP_HEAD;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	/* skipped with a warning each, not an error */
	mg_log_set_level(MG_LOG_ERR);
	CU_ASSERT_EQUAL(mg_config_load_endpoints_buf("eps.yaml", text, strlen(text), ipc, 1, &err),
	                0);
	mg_log_set_level(MG_LOG_INFO);
	CU_ASSERT_EQUAL(mg_ipcache_pending(ipc), 0);
	mg_ipcache_free(ipc);
}

static void
test_load_static(void)
{
	char cfg[PATH_MAX + 64], ids[PATH_MAX + 64], eps[PATH_MAX + 64], text[4 * PATH_MAX];
	struct mg_identity_table *t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	struct mg_ipcache *ipc = new_ipcache();
	struct mg_error err = {{0}};
	struct mg_ipcache_entry e;
	struct mg_config *c;
	uint8_t a[16] = {10, 20, 0, 0};
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ipc);
	fixture(ids, sizeof(ids), "identities.yaml");
	fixture(eps, sizeof(eps), "endpoints_list.yaml");
	write_file(tmp_dir, "local-ids.yaml",
	           IDENT_HEAD "metadata: {name: \"70000\"}\nsecurity-labels: {k8s:app: x}\n");
	snprintf(text, sizeof(text),
	         BASE_HEAD "cluster: {name: c3, id: 3}\n"
	                   "identities: {files: [local-ids.yaml, %s]}\n"
	                   "ipcache:\n"
	                   "  files: [%s]\n"
	                   "  entries: [{prefix: 10.20.0.0/16, identity: 16777300}]\n",
	         ids, eps);
	write_file(tmp_dir, "static.yaml", text);
	path_of(cfg, sizeof(cfg), tmp_dir, "static.yaml");
	c = mg_config_load(cfg, &err);
	if (c == NULL)
		printf("%s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	mg_log_set_level(MG_LOG_ERR);
	rc = mg_config_load_static(c, t, ipc, &err);
	mg_log_set_level(MG_LOG_INFO);
	if (rc)
		printf("%s\n", err.msg);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(t, 70000));
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(t, 91392));
	CU_ASSERT_PTR_NOT_NULL(mg_identity_table_get(t, 131331));
	CU_ASSERT_EQUAL(mg_ipcache_commit(ipc), 4);
	CU_ASSERT_EQUAL_FATAL(mg_ipcache_get(ipc, AF_INET, a, 16, &e), 0);
	CU_ASSERT_EQUAL(e.identity, 16777300);
	CU_ASSERT_EQUAL(e.cluster_id, 3);
	/* endpoints carry the config's cluster id */
	check_v4(ipc, "10.1.0.10", 65600, 3);
	mg_config_free(c);

	/* the endpoints' named ports reach their identities */
	fixture(eps, sizeof(eps), "endpoints.yaml");
	snprintf(text, sizeof(text),
	         BASE_HEAD "cluster: {name: c3, id: 3}\n"
	                   "identities: {files: [%s]}\n"
	                   "ipcache: {files: [%s]}\n",
	         ids, eps);
	write_file(tmp_dir, "static-np.yaml", text);
	path_of(cfg, sizeof(cfg), tmp_dir, "static-np.yaml");
	c = mg_config_load(cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	mg_log_set_level(MG_LOG_ERR);
	CU_ASSERT_EQUAL(mg_config_load_static(c, t, ipc, &err), 0);
	mg_log_set_level(MG_LOG_INFO);
	CU_ASSERT_EQUAL(mg_identity_table_get(t, 91392)->n_named_ports, 1);
	CU_ASSERT_STRING_EQUAL(mg_identity_table_get(t, 91392)->named_ports[0].name, "http");
	mg_ipcache_discard(ipc);
	mg_config_free(c);

	/* an error in a named file is reported with that file's position */
	write_file(tmp_dir, "bad-ids.yaml", IDENT_HEAD "metadata: {name: \"7\"}\n");
	write_file(tmp_dir, "static2.yaml", BASE "identities: {files: [bad-ids.yaml]}\n");
	path_of(cfg, sizeof(cfg), tmp_dir, "static2.yaml");
	c = mg_config_load(cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(mg_config_load_static(c, t, ipc, &err), -EINVAL);
	path_of(ids, sizeof(ids), tmp_dir, "bad-ids.yaml");
	snprintf(text, sizeof(text),
	         "%s:3:18: metadata.name: identity 7 is out of range [256, 33554431] (reserved "
	         "identities cannot be defined)",
	         ids);
	CU_ASSERT_STRING_EQUAL(err.msg, text);
	mg_config_free(c);
	mg_identity_table_free(t);
	mg_ipcache_free(ipc);
}

static void
test_load_policies(void)
{
	char cfg[PATH_MAX + 64], want[PATH_MAX + 128];
	struct mg_policy_set *s = mg_policy_set_create();
	struct mg_error err = {{0}};
	struct mg_config *c;
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	write_file(tmp_dir, "cnp.yaml",
	           "apiVersion: cilium.io/v2\n"
	           "kind: CiliumNetworkPolicy\n"
	           "metadata: {name: allow-client, namespace: default}\n"
	           "spec:\n"
	           "  endpointSelector: {matchLabels: {app: web}}\n"
	           "  ingress:\n"
	           "  - fromEndpoints: [{matchLabels: {app: client}}]\n");
	write_file(tmp_dir, "pol.yaml", BASE "policy: {sources: [{path: cnp.yaml}]}\n");
	path_of(cfg, sizeof(cfg), tmp_dir, "pol.yaml");
	c = mg_config_load(cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	rc = mg_config_load_policies(c, s, &err);
	if (rc)
		printf("%s\n", err.msg);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(mg_policy_set_count(s), 1);
	mg_config_free(c);

	/* a source that does not exist: the policy loader's error comes back */
	write_file(tmp_dir, "pol2.yaml", BASE "policy: {sources: [{path: missing/}]}\n");
	path_of(cfg, sizeof(cfg), tmp_dir, "pol2.yaml");
	c = mg_config_load(cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	err.msg[0] = '\0';
	rc = mg_config_load_policies(c, s, &err);
	CU_ASSERT_TRUE(rc < 0);
	snprintf(want, sizeof(want), "%s/missing", tmp_dir);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, want));
	CU_ASSERT_EQUAL(mg_policy_set_count(s), 1);
	mg_config_free(c);
	mg_policy_set_free(s);
}

/* Odd and hostile inputs: each is refused with a message, none crashes or leaks. */
static void
test_hostile_inputs(void)
{
	static const char *const inputs[] = {
	        "version: 1\neal: [&a x, *a]\n",
	        "version: 1\n" BASE_HEAD "cluster: {name: c1, id: 1}\n",
	        "version: 0x1\neal: [\"\\0\"]\n",
	        "version: 1\neal: [-l]\ndatapath: {ports: [[]]}\n",
	        "version: 1\neal: [-l]\ndatapath: {ports: [{name: a, device: d, peer: "
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	        "a}]"
	        "}\n",
	        "{? [a]: b}\n",
	        "version: 1\neal: [-l]\n" BASE_CLUSTER "datapath: {ports: [{name: a, device: d, "
	        "peer: a}]}\nipcache: {entries: [[]]}\n",
	};
	size_t i;

	for (i = 0; i < MG_ARRAY_SIZE(inputs); i++) {
		struct mg_error err = {{0}};
		struct mg_config *c = load_text(inputs[i], &err);

		/* every one is refused, with a message */
		CU_ASSERT_PTR_NULL(c);
		CU_ASSERT_TRUE(err.msg[0] != '\0');
		mg_config_free(c);
	}
}

static CU_TestInfo tests[] = {
        {"reference_config", test_reference_config},
        {"reference_documents_every_key", test_reference_documents_every_key},
        {"defaults", test_defaults},
        {"every_value", test_every_value},
        {"empty_sections", test_empty_sections},
        {"unknown_keys", test_unknown_keys},
        {"duplicate_keys", test_duplicate_keys},
        {"bad_enums", test_bad_enums},
        {"out_of_range", test_out_of_range},
        {"cluster_id_mode", test_cluster_id_mode},
        {"cluster_count", test_cluster_count},
        {"cluster_name", test_cluster_name},
        {"peers", test_peers},
        {"port_names_devices", test_port_names_devices},
        {"too_many_ports", test_too_many_ports},
        {"missing_sections", test_missing_sections},
        {"version", test_version},
        {"wrong_types", test_wrong_types},
        {"documents", test_documents},
        {"kvstore", test_kvstore},
        {"metrics_listen", test_metrics_listen},
        {"metrics_limits", test_metrics_limits},
        {"control_socket", test_control_socket},
        {"control_keys", test_control_keys},
        {"control_admin_reserve", test_control_admin_reserve},
        {"ipcache_entries", test_ipcache_entries},
        {"relative_paths", test_relative_paths},
        {"relative_config_path", test_relative_config_path},
        {"missing_file", test_missing_file},
        {"error_names_file", test_error_names_file},
        {"identities_multi", test_identities_multi},
        {"identities_list", test_identities_list},
        {"identity_errors", test_identity_errors},
        {"identity_duplicate_keys", test_identity_duplicate_keys},
        {"identity_prefixed_labels", test_identity_prefixed_labels},
        {"identities_missing_file", test_identities_missing_file},
        {"endpoints_multi", test_endpoints_multi},
        {"endpoints_list", test_endpoints_list},
        {"endpoint_named_ports", test_endpoint_named_ports},
        {"endpoint_named_ports_of_skipped", test_endpoint_named_ports_of_skipped},
        {"endpoint_named_port_errors", test_endpoint_named_port_errors},
        {"endpoint_errors", test_endpoint_errors},
        {"endpoint_duplicate_keys", test_endpoint_duplicate_keys},
        {"endpoint_skips", test_endpoint_skips},
        {"load_static", test_load_static},
        {"load_policies", test_load_policies},
        {"hostile_inputs", test_hostile_inputs},
        CU_TEST_INFO_NULL,
};

int
main(void)
{
	CU_SuiteInfo suites[] = {{"config", suite_init, suite_clean, NULL, NULL, tests},
	                         CU_SUITE_INFO_NULL};

	return mg_test_run(suites);
}
