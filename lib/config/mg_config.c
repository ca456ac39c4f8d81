/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The loader of meshgate.yaml. It walks the positioned YAML tree once,
 * section by section, and turns it into a flat struct mg_config with every
 * default applied, so that nothing downstream (the daemon, meshgatectl,
 * the tests) ever looks at YAML or repeats a default. Strictness is the
 * point: a key the loader does not know, a key given twice, a value of the
 * wrong type or out of range, a reference that does not resolve (a port's
 * peer) is an error that names the file, line and column, because a
 * gateway that silently ignores a typo in its config filters the wrong
 * traffic. Cross-field rules (symmetric peering, cluster id against the
 * cluster mode) are checked after the fields they relate are parsed.
 */
#include "mg_config.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "mg_yaml.h"

#define DEFAULT_BURST 32
#define DEFAULT_DESC 1024
#define DEFAULT_MBUFS 8191
#define DEFAULT_CONTROL_SOCKET "/run/meshgate/meshgate.sock"
#define DEFAULT_METRICS_LISTEN "127.0.0.1:9470"
#define DEFAULT_CONTROL_MAX_CLIENTS 16
#define DEFAULT_CONTROL_ADMIN_RESERVE 2
#define DEFAULT_CONTROL_MAX_REQUEST 65536
#define DEFAULT_CONTROL_IDLE_TIMEOUT 60
#define DEFAULT_CONTROL_MAX_OUTPUT 1048576
#define DEFAULT_METRICS_MAX_CONNECTIONS 16
#define DEFAULT_METRICS_REQUEST_TIMEOUT 5

/* Parsing state: the config being filled and where errors go. */
struct ctx {
	struct mg_config *c;
	struct mg_error *err;
	const char *file;
};

/* The keys of every mapping the loader reads: used to check them and
 * listed by mg_config_keys() so a test can hold the docs against them. */
static const char *const keys_datapath_ports[] = {"name", "device", "peer", NULL};
static const char *const keys_datapath[] = {"mode",    "ports",   "non_ip", "burst",
                                            "rx_desc", "tx_desc", "mbufs",  NULL};
static const char *const keys_cluster[] = {"name", "id", "max_connected_clusters", NULL};
static const char *const keys_policy_sources[] = {"cluster", "path", NULL};
static const char *const keys_policy[] = {"enforcement", "default_local_cluster", "sources", NULL};
static const char *const keys_identities[] = {"files", NULL};
static const char *const keys_ipcache_entries[] = {"prefix", "identity", NULL};
static const char *const keys_ipcache[] = {"files", "entries", "split_world", NULL};
static const char *const keys_kvstore[] = {"redis",         "clusters",      "user",
                                           "password_file", "sync_timeout",  "max_delete_share",
                                           "block_ms",      "removal_grace", NULL};
static const char *const keys_control[] = {"socket",
                                           "group",
                                           "admin_group",
                                           "max_clients",
                                           "admin_reserve",
                                           "max_request_bytes",
                                           "idle_timeout",
                                           "max_output_bytes",
                                           NULL};
static const char *const keys_metrics[] = {"listen", "max_connections", "request_timeout", NULL};
static const char *const keys_conntrack[] = {"max_entries", "max_fragments", "tcp_pickup",
                                             "timeouts", NULL};
static const char *const keys_conntrack_timeouts[] = {
        "tcp_syn", "tcp_established", "tcp_fin",  "tcp_close", "udp",
        "icmp",    "other",           "fragment", NULL};
static const char *const keys_root[] = {"version",    "eal",     "datapath",  "cluster",
                                        "policy",     "ipcache", "kvstore",   "control",
                                        "identities", "metrics", "conntrack", NULL};

static const struct mg_config_section sections[] = {
        {"datapath.ports[]", keys_datapath_ports},
        {"datapath", keys_datapath},
        {"cluster", keys_cluster},
        {"policy.sources[]", keys_policy_sources},
        {"policy", keys_policy},
        {"identities", keys_identities},
        {"ipcache.entries[]", keys_ipcache_entries},
        {"ipcache", keys_ipcache},
        {"kvstore", keys_kvstore},
        {"control", keys_control},
        {"metrics", keys_metrics},
        {"conntrack", keys_conntrack},
        {"conntrack.timeouts", keys_conntrack_timeouts},
        {"", keys_root},
        {NULL, NULL},
};

const struct mg_config_section *
mg_config_keys(void)
{
	return sections;
}

static int
oom(struct ctx *x)
{
	mg_error_set(x->err, NULL, 0, 0, "%s: out of memory", x->file);
	return -ENOMEM;
}

static char *
dup_str(struct ctx *x, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		oom(x);
	return d;
}

/* @p rel joined to the config's folder, or a copy of @p rel when absolute. */
static char *
resolve(struct ctx *x, const char *rel)
{
	const char *dir = x->c->dir;
	size_t dl, rl;
	char *p;

	if (rel[0] == '/')
		return dup_str(x, rel);
	dl = strlen(dir);
	rl = strlen(rel);
	/* strip "./" so that "dir/./x" does not show up in messages */
	while (rl >= 2 && rel[0] == '.' && rel[1] == '/') {
		rel += 2;
		rl -= 2;
	}
	p = malloc(dl + rl + 2);
	if (p == NULL) {
		oom(x);
		return NULL;
	}
	memcpy(p, dir, dl);
	if (dl == 0 || dir[dl - 1] != '/')
		p[dl++] = '/';
	memcpy(p + dl, rel, rl + 1);
	return p;
}

/*
 * The folder of @p file, made absolute with the working directory so that
 * resolved paths stay valid if the daemon later changes directory.
 */
static char *
config_dir(const char *file)
{
	const char *slash = strrchr(file, '/');
	char cwd[PATH_MAX];
	size_t n;
	char *d;

	if (slash != NULL && file[0] == '/') {
		n = slash == file ? 1 : (size_t)(slash - file);
		return strndup(file, n);
	}
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		strcpy(cwd, ".");
	if (slash == NULL)
		return strdup(cwd);
	n = (size_t)(slash - file);
	if (asprintf(&d, "%s/%.*s", strcmp(cwd, "/") == 0 ? "" : cwd, (int)n, file) < 0)
		return NULL;
	return d;
}

static int
missing(struct ctx *x, const struct mg_yaml_node *parent, const char *what, const char *key)
{
	return mg_yaml_error(x->err, parent, "%s: missing required key '%s'", what, key);
}

/* Port names: [a-z0-9_-], 1..MG_CONFIG_NAME_MAX-1 characters. */
static bool
valid_port_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n >= MG_CONFIG_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

/* An RFC 1123 DNS label, as Cilium requires of cluster names. */
static bool
valid_dns_label(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n >= MG_CONFIG_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		bool alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');

		if (!alnum && !(s[i] == '-' && i > 0 && i < n - 1))
			return false;
	}
	return true;
}

static int
get_cluster_name(struct ctx *x, const struct mg_yaml_node *n, const char *what, char *out)
{
	const char *s;
	int rc;

	rc = mg_yaml_str(n, what, &s, x->err);
	if (rc)
		return rc;
	if (!valid_dns_label(s))
		return mg_yaml_error(x->err, n,
		                     "%s: '%s' is not a valid cluster name (lower-case letters, "
		                     "digits and '-', at most %d characters, not starting or "
		                     "ending with '-')",
		                     what, s, MG_CONFIG_NAME_MAX - 1);
	strcpy(out, s);
	return 0;
}

/* An optional unsigned key of @p map within [min, max]; @p out keeps its default when absent. */
static int
get_uint(struct ctx *x, const struct mg_yaml_node *map, const char *key, const char *what,
         uint64_t min, uint64_t max, unsigned *out)
{
	const struct mg_yaml_node *n = mg_yaml_get(map, key);
	uint64_t v;
	int rc;

	if (n == NULL)
		return 0;
	rc = mg_yaml_u64(n, what, min, max, &v, x->err);
	if (rc)
		return rc;
	*out = (unsigned)v;
	return 0;
}

static int
get_bool(struct ctx *x, const struct mg_yaml_node *map, const char *key, const char *what,
         bool *out)
{
	const struct mg_yaml_node *n = mg_yaml_get(map, key);

	if (n == NULL)
		return 0;
	return mg_yaml_bool(n, what, out, x->err);
}

/*
 * A list of strings (@p n may be absent or null when @p null_ok), copied
 * into a new array; resolved against the config folder when @p paths.
 */
static int
get_str_list(struct ctx *x, const struct mg_yaml_node *n, const char *what, bool null_ok,
             bool paths, size_t *count, char ***out)
{
	char item[96];
	size_t i;
	int rc;

	rc = mg_yaml_seq(n, what, null_ok, x->err);
	if (rc)
		return rc;
	if (n == NULL || n->type != MG_YAML_SEQ || n->n == 0)
		return 0;
	*out = calloc(n->n, sizeof(**out));
	if (*out == NULL)
		return oom(x);
	for (i = 0; i < n->n; i++) {
		const char *s;

		snprintf(item, sizeof(item), "%s[%zu]", what, i);
		rc = mg_yaml_str(n->items[i], item, &s, x->err);
		if (rc)
			return rc;
		if (paths && s[0] == '\0')
			return mg_yaml_error(x->err, n->items[i], "%s: empty path", item);
		(*out)[i] = paths ? resolve(x, s) : dup_str(x, s);
		if ((*out)[i] == NULL)
			return -ENOMEM;
		*count = i + 1;
	}
	return 0;
}

static void
free_str_list(size_t n, char **v)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int
parse_eal(struct ctx *x, const struct mg_yaml_node *root)
{
	const struct mg_yaml_node *n = mg_yaml_get(root, "eal");
	int rc;

	if (n == NULL)
		return missing(x, root, "config", "eal");
	rc = get_str_list(x, n, "eal", false, false, &x->c->n_eal, &x->c->eal);
	if (rc)
		return rc;
	if (x->c->n_eal == 0)
		return mg_yaml_error(x->err, n, "eal: must hold at least one argument");
	return 0;
}

static int
parse_port(struct ctx *x, const struct mg_yaml_node *pn, size_t i,
           const struct mg_yaml_node **peer_nodes)
{
	const char *const *keys = keys_datapath_ports;
	struct mg_config_port *p = &x->c->ports[i];
	const struct mg_yaml_node *n;
	char what[64];
	const char *s;
	size_t j;
	int rc;

	snprintf(what, sizeof(what), "datapath.ports[%zu]", i);
	rc = mg_yaml_check_map(pn, what, keys, x->err);
	if (rc)
		return rc;

	n = mg_yaml_get(pn, "name");
	if (n == NULL)
		return missing(x, pn, what, "name");
	snprintf(what, sizeof(what), "datapath.ports[%zu].name", i);
	rc = mg_yaml_str(n, what, &s, x->err);
	if (rc)
		return rc;
	if (!valid_port_name(s))
		return mg_yaml_error(x->err, n,
		                     "%s: '%s' is not a valid port name ([a-z0-9_-], 1 to %d "
		                     "characters)",
		                     what, s, MG_CONFIG_NAME_MAX - 1);
	for (j = 0; j < i; j++)
		if (strcmp(x->c->ports[j].name, s) == 0)
			return mg_yaml_error(x->err, n, "%s: duplicate port name '%s'", what, s);
	strcpy(p->name, s);

	snprintf(what, sizeof(what), "datapath.ports[%zu]", i);
	n = mg_yaml_get(pn, "device");
	if (n == NULL)
		return missing(x, pn, what, "device");
	snprintf(what, sizeof(what), "datapath.ports[%zu].device", i);
	rc = mg_yaml_str(n, what, &s, x->err);
	if (rc)
		return rc;
	if (s[0] == '\0' || strlen(s) >= sizeof(p->device))
		return mg_yaml_error(x->err, n, "%s: must be 1 to %zu characters", what,
		                     sizeof(p->device) - 1);
	for (j = 0; j < i; j++)
		if (strcmp(x->c->ports[j].device, s) == 0)
			return mg_yaml_error(x->err, n,
			                     "%s: device '%s' is already used by port '%s'", what,
			                     s, x->c->ports[j].name);
	strcpy(p->device, s);

	/* Wire mode (the only mode) forwards every port to its peer. */
	snprintf(what, sizeof(what), "datapath.ports[%zu]", i);
	n = mg_yaml_get(pn, "peer");
	if (n == NULL)
		return missing(x, pn, what, "peer");
	snprintf(what, sizeof(what), "datapath.ports[%zu].peer", i);
	rc = mg_yaml_str(n, what, &s, x->err);
	if (rc)
		return rc;
	if (!valid_port_name(s))
		return mg_yaml_error(x->err, n, "%s: '%s' is not a valid port name", what, s);
	strcpy(p->peer, s);
	peer_nodes[i] = n;
	return 0;
}

/* Every peer names another port, and peering is symmetric (A<->B). */
static int
link_peers(struct ctx *x, const struct mg_yaml_node *const *peer_nodes)
{
	struct mg_config *c = x->c;
	size_t i;
	int j;

	for (i = 0; i < c->n_ports; i++) {
		j = mg_config_port_index(c, c->ports[i].peer);
		if (j < 0)
			return mg_yaml_error(x->err, peer_nodes[i],
			                     "datapath.ports[%zu].peer: no port is called '%s'", i,
			                     c->ports[i].peer);
		if ((size_t)j == i)
			return mg_yaml_error(
			        x->err, peer_nodes[i],
			        "datapath.ports[%zu].peer: port '%s' cannot be its own "
			        "peer",
			        i, c->ports[i].name);
		c->ports[i].peer_index = (unsigned)j;
	}
	for (i = 0; i < c->n_ports; i++) {
		const struct mg_config_port *p = &c->ports[i], *q = &c->ports[p->peer_index];

		if (q->peer_index != i)
			return mg_yaml_error(
			        x->err, peer_nodes[i],
			        "datapath.ports[%zu].peer: port '%s' names '%s' as its "
			        "peer, but '%s' names '%s' (peering must be symmetric)",
			        i, p->name, q->name, q->name, q->peer);
	}
	return 0;
}

static int
check_pow2(struct ctx *x, const struct mg_yaml_node *map, const char *key, const char *what,
           unsigned v)
{
	if (v & (v - 1))
		return mg_yaml_error(x->err, mg_yaml_get(map, key), "%s: %u is not a power of two",
		                     what, v);
	return 0;
}

static int
parse_datapath(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = keys_datapath;
	const struct mg_yaml_node *peer_nodes[MG_CONFIG_MAX_PORTS];
	const struct mg_yaml_node *dp = mg_yaml_get(root, "datapath"), *n;
	struct mg_config *c = x->c;
	const char *s;
	size_t i;
	int rc;

	if (dp == NULL)
		return missing(x, root, "config", "datapath");
	rc = mg_yaml_check_map(dp, "datapath", keys, x->err);
	if (rc)
		return rc;

	n = mg_yaml_get(dp, "mode");
	if (n != NULL) {
		rc = mg_yaml_str(n, "datapath.mode", &s, x->err);
		if (rc)
			return rc;
		if (strcmp(s, "wire") != 0)
			return mg_yaml_error(x->err, n,
			                     "datapath.mode: unknown mode '%s' (expected wire)", s);
	}

	n = mg_yaml_get(dp, "non_ip");
	if (n != NULL) {
		rc = mg_yaml_str(n, "datapath.non_ip", &s, x->err);
		if (rc)
			return rc;
		if (strcmp(s, "forward") == 0)
			c->non_ip = MG_NON_IP_FORWARD;
		else if (strcmp(s, "drop") == 0)
			c->non_ip = MG_NON_IP_DROP;
		else
			return mg_yaml_error(
			        x->err, n,
			        "datapath.non_ip: unknown value '%s' (expected forward "
			        "or drop)",
			        s);
	}

	rc = get_uint(x, dp, "burst", "datapath.burst", 1, 256, &c->burst);
	if (rc == 0)
		rc = get_uint(x, dp, "rx_desc", "datapath.rx_desc", 64, 16384, &c->rx_desc);
	if (rc == 0)
		rc = check_pow2(x, dp, "rx_desc", "datapath.rx_desc", c->rx_desc);
	if (rc == 0)
		rc = get_uint(x, dp, "tx_desc", "datapath.tx_desc", 64, 16384, &c->tx_desc);
	if (rc == 0)
		rc = check_pow2(x, dp, "tx_desc", "datapath.tx_desc", c->tx_desc);
	if (rc == 0)
		rc = get_uint(x, dp, "mbufs", "datapath.mbufs", 1023, 1048575, &c->mbufs);
	if (rc)
		return rc;

	n = mg_yaml_get(dp, "ports");
	if (n == NULL)
		return missing(x, dp, "datapath", "ports");
	rc = mg_yaml_seq(n, "datapath.ports", false, x->err);
	if (rc)
		return rc;
	if (n->n == 0 || n->n > MG_CONFIG_MAX_PORTS)
		return mg_yaml_error(x->err, n, "datapath.ports: expected 1 to %d ports, got %zu",
		                     MG_CONFIG_MAX_PORTS, n->n);
	for (i = 0; i < n->n; i++) {
		rc = parse_port(x, n->items[i], i, peer_nodes);
		if (rc)
			return rc;
		c->n_ports = i + 1;
	}
	return link_peers(x, peer_nodes);
}

static int
parse_cluster(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = keys_cluster;
	const struct mg_yaml_node *cl = mg_yaml_get(root, "cluster"), *n;
	struct mg_config *c = x->c;
	uint64_t v;
	int rc;

	if (cl == NULL)
		return missing(x, root, "config", "cluster");
	rc = mg_yaml_check_map(cl, "cluster", keys, x->err);
	if (rc)
		return rc;

	n = mg_yaml_get(cl, "name");
	if (n == NULL)
		return missing(x, cl, "cluster", "name");
	rc = get_cluster_name(x, n, "cluster.name", c->cluster_name);
	if (rc)
		return rc;

	/* The mode first: it bounds the id. */
	n = mg_yaml_get(cl, "max_connected_clusters");
	if (n != NULL) {
		rc = mg_yaml_u64(n, "cluster.max_connected_clusters", 0, UINT32_MAX, &v, x->err);
		if (rc)
			return rc;
		if (v != 255 && v != 511)
			return mg_yaml_error(x->err, n,
			                     "cluster.max_connected_clusters: %llu is not allowed "
			                     "(expected 255 or 511)",
			                     (unsigned long long)v);
		c->cluster_mode = v == 255 ? MG_CLUSTER_MODE_255 : MG_CLUSTER_MODE_511;
	}

	n = mg_yaml_get(cl, "id");
	if (n == NULL)
		return missing(x, cl, "cluster", "id");
	rc = mg_yaml_u64(n, "cluster.id", 1, 511, &v, x->err);
	if (rc)
		return rc;
	if (v > (uint64_t)c->cluster_mode)
		return mg_yaml_error(x->err, n,
		                     "cluster.id: %llu does not fit max_connected_clusters %u "
		                     "(ids 1 to %u)",
		                     (unsigned long long)v, (unsigned)c->cluster_mode,
		                     (unsigned)c->cluster_mode);
	c->cluster_id = (unsigned)v;
	return 0;
}

static int
parse_sources(struct ctx *x, const struct mg_yaml_node *n)
{
	const char *const *keys = keys_policy_sources;
	struct mg_config *c = x->c;
	char what[64];
	size_t i;
	int rc;

	rc = mg_yaml_seq(n, "policy.sources", true, x->err);
	if (rc || n == NULL || n->type != MG_YAML_SEQ || n->n == 0)
		return rc;
	c->sources = calloc(n->n, sizeof(*c->sources));
	if (c->sources == NULL)
		return oom(x);
	for (i = 0; i < n->n; i++) {
		const struct mg_yaml_node *item = n->items[i], *v;
		struct mg_config_policy_source *src = &c->sources[i];
		const char *s;

		snprintf(what, sizeof(what), "policy.sources[%zu]", i);
		rc = mg_yaml_check_map(item, what, keys, x->err);
		if (rc)
			return rc;
		v = mg_yaml_get(item, "cluster");
		if (v == NULL) {
			strcpy(src->cluster, c->cluster_name);
		} else {
			snprintf(what, sizeof(what), "policy.sources[%zu].cluster", i);
			rc = get_cluster_name(x, v, what, src->cluster);
			if (rc)
				return rc;
		}
		v = mg_yaml_get(item, "path");
		if (v == NULL) {
			snprintf(what, sizeof(what), "policy.sources[%zu]", i);
			return missing(x, item, what, "path");
		}
		snprintf(what, sizeof(what), "policy.sources[%zu].path", i);
		rc = mg_yaml_str(v, what, &s, x->err);
		if (rc)
			return rc;
		if (s[0] == '\0')
			return mg_yaml_error(x->err, v, "%s: empty path", what);
		src->path = resolve(x, s);
		if (src->path == NULL)
			return -ENOMEM;
		c->n_sources = i + 1;
	}
	return 0;
}

static int
parse_policy(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = keys_policy;
	const struct mg_yaml_node *p = mg_yaml_get(root, "policy"), *n;
	const char *s;
	int rc;

	if (p == NULL || mg_yaml_is_null(p))
		return 0;
	rc = mg_yaml_check_map(p, "policy", keys, x->err);
	if (rc)
		return rc;
	n = mg_yaml_get(p, "enforcement");
	if (n != NULL) {
		rc = mg_yaml_str(n, "policy.enforcement", &s, x->err);
		if (rc)
			return rc;
		if (mg_enforcement_parse(s, &x->c->enforcement) != 0)
			return mg_yaml_error(x->err, n,
			                     "policy.enforcement: unknown mode '%s' (expected "
			                     "default, always or never)",
			                     s);
	}
	rc = get_bool(x, p, "default_local_cluster", "policy.default_local_cluster",
	              &x->c->default_local_cluster);
	if (rc)
		return rc;
	return parse_sources(x, mg_yaml_get(p, "sources"));
}

static int
parse_identities(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = keys_identities;
	const struct mg_yaml_node *s = mg_yaml_get(root, "identities");
	int rc;

	if (s == NULL || mg_yaml_is_null(s))
		return 0;
	rc = mg_yaml_check_map(s, "identities", keys, x->err);
	if (rc)
		return rc;
	return get_str_list(x, mg_yaml_get(s, "files"), "identities.files", true, true,
	                    &x->c->n_identity_files, &x->c->identity_files);
}

/*
 * True when the address part of @p s (already parsed into @p e, which the
 * ipcache's parser masks) had no bits set past the prefix length: a typo
 * such as 10.1.0.0/8 must not silently become 10.0.0.0/8.
 */
static bool
host_bits_clear(const char *s, const struct mg_ipcache_entry *e)
{
	char buf[INET6_ADDRSTRLEN];
	uint8_t raw[16] = {0};
	size_t n = strcspn(s, "/");

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(e->family == AF_INET ? AF_INET : AF_INET6, buf, raw) != 1)
		return false;
	return memcmp(raw, e->addr, e->family == AF_INET ? 4 : 16) == 0;
}

static int
parse_entries(struct ctx *x, const struct mg_yaml_node *n)
{
	const char *const *keys = keys_ipcache_entries;
	struct mg_config *c = x->c;
	char what[64];
	size_t i, j;
	int rc;

	rc = mg_yaml_seq(n, "ipcache.entries", true, x->err);
	if (rc || n == NULL || n->type != MG_YAML_SEQ || n->n == 0)
		return rc;
	c->entries = calloc(n->n, sizeof(*c->entries));
	if (c->entries == NULL)
		return oom(x);
	for (i = 0; i < n->n; i++) {
		const struct mg_yaml_node *item = n->items[i], *v;
		struct mg_config_ipcache_entry *ce = &c->entries[i];
		const char *s;
		uint64_t id;

		snprintf(what, sizeof(what), "ipcache.entries[%zu]", i);
		rc = mg_yaml_check_map(item, what, keys, x->err);
		if (rc)
			return rc;
		v = mg_yaml_get(item, "prefix");
		if (v == NULL)
			return missing(x, item, what, "prefix");
		if (mg_yaml_get(item, "identity") == NULL)
			return missing(x, item, what, "identity");
		snprintf(what, sizeof(what), "ipcache.entries[%zu].prefix", i);
		rc = mg_yaml_str(v, what, &s, x->err);
		if (rc)
			return rc;
		if (mg_ipcache_parse_prefix(s, &ce->e) != 0)
			return mg_yaml_error(x->err, v,
			                     "%s: '%s' is not an IPv4 or IPv6 prefix (such as "
			                     "10.0.0.0/8 or fd00::/64)",
			                     what, s);
		if (!host_bits_clear(s, &ce->e))
			return mg_yaml_error(x->err, v, "%s: '%s' has bits set past its length %u",
			                     what, s, ce->e.plen);
		for (j = 0; j < i; j++)
			if (c->entries[j].e.family == ce->e.family &&
			    c->entries[j].e.plen == ce->e.plen &&
			    memcmp(c->entries[j].e.addr, ce->e.addr, sizeof(ce->e.addr)) == 0)
				return mg_yaml_error(x->err, v,
				                     "%s: duplicate prefix '%s' (first at line %u)",
				                     what, s, c->entries[j].line);
		ce->line = v->line;
		ce->col = v->col;
		v = mg_yaml_get(item, "identity");
		snprintf(what, sizeof(what), "ipcache.entries[%zu].identity", i);
		rc = mg_yaml_u64(v, what, 1, MG_ID_MAX, &id, x->err);
		if (rc)
			return rc;
		ce->e.identity = (uint32_t)id;
		ce->e.cluster_id = c->cluster_id;
		c->n_entries = i + 1;
	}
	return 0;
}

static int
parse_ipcache(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = keys_ipcache;
	const struct mg_yaml_node *s = mg_yaml_get(root, "ipcache");
	int rc;

	if (s == NULL || mg_yaml_is_null(s))
		return 0;
	rc = mg_yaml_check_map(s, "ipcache", keys, x->err);
	if (rc)
		return rc;
	rc = get_str_list(x, mg_yaml_get(s, "files"), "ipcache.files", true, true,
	                  &x->c->n_endpoint_files, &x->c->endpoint_files);
	if (rc)
		return rc;
	rc = get_bool(x, s, "split_world", "ipcache.split_world", &x->c->split_world);
	if (rc)
		return rc;
	return parse_entries(x, mg_yaml_get(s, "entries"));
}

static int
parse_kvstore(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = keys_kvstore;
	const struct mg_yaml_node *kv = mg_yaml_get(root, "kvstore"), *n;
	struct mg_config *c = x->c;
	char what[64];
	const char *s;
	size_t i, j;
	int rc;

	c->kv_sync_timeout = 60;
	c->kv_max_delete_share = 50;
	c->kv_block_ms = 100;
	c->kv_removal_grace = 180;
	if (kv == NULL || mg_yaml_is_null(kv))
		return 0;
	rc = mg_yaml_check_map(kv, "kvstore", keys, x->err);
	if (rc)
		return rc;
	n = mg_yaml_get(kv, "redis");
	if (n == NULL)
		return missing(x, kv, "kvstore", "redis");
	rc = mg_yaml_str(n, "kvstore.redis", &s, x->err);
	if (rc)
		return rc;
	/* TLS (rediss://) is refused on purpose: Debian's hiredis 0.14 has none. */
	if (!((strncmp(s, "redis://", 8) == 0 && s[8] != '\0') ||
	      (strncmp(s, "unix://", 7) == 0 && s[7] == '/')))
		return mg_yaml_error(x->err, n,
		                     "kvstore.redis: '%s' is not a redis://host[:port][/db] or "
		                     "unix:///path URL",
		                     s);
	c->kv_redis = dup_str(x, s);
	if (c->kv_redis == NULL)
		return -ENOMEM;

	n = mg_yaml_get(kv, "clusters");
	rc = get_str_list(x, n, "kvstore.clusters", true, false, &c->n_kv_clusters,
	                  &c->kv_clusters);
	if (rc)
		return rc;
	for (i = 0; i < c->n_kv_clusters; i++) {
		snprintf(what, sizeof(what), "kvstore.clusters[%zu]", i);
		if (!valid_dns_label(c->kv_clusters[i]))
			return mg_yaml_error(x->err, n->items[i],
			                     "%s: '%s' is not a valid cluster name", what,
			                     c->kv_clusters[i]);
		for (j = 0; j < i; j++)
			if (strcmp(c->kv_clusters[i], c->kv_clusters[j]) == 0)
				return mg_yaml_error(x->err, n->items[i],
				                     "%s: cluster '%s' is listed twice", what,
				                     c->kv_clusters[i]);
	}
	/* Cilium's mesh: as many clusters as ids (1..max_connected_clusters). */
	if (c->n_kv_clusters > (size_t)c->cluster_mode)
		return mg_yaml_error(x->err, n,
		                     "kvstore.clusters: %zu clusters, more than the %u that "
		                     "cluster.max_connected_clusters allows",
		                     c->n_kv_clusters, (unsigned)c->cluster_mode);

	n = mg_yaml_get(kv, "user");
	if (n != NULL) {
		rc = mg_yaml_str(n, "kvstore.user", &s, x->err);
		if (rc)
			return rc;
		if (s[0] == '\0')
			return mg_yaml_error(x->err, n, "kvstore.user: empty name");
		c->kv_user = dup_str(x, s);
		if (c->kv_user == NULL)
			return -ENOMEM;
	}
	n = mg_yaml_get(kv, "password_file");
	if (n != NULL) {
		rc = mg_yaml_str(n, "kvstore.password_file", &s, x->err);
		if (rc)
			return rc;
		if (s[0] == '\0')
			return mg_yaml_error(x->err, n, "kvstore.password_file: empty path");
		/* read at start by the daemon: the secret stays out of the config */
		c->kv_password_file = resolve(x, s);
		if (c->kv_password_file == NULL)
			return -ENOMEM;
	}
	rc = get_uint(x, kv, "sync_timeout", "kvstore.sync_timeout", 0, 86400, &c->kv_sync_timeout);
	if (rc == 0)
		rc = get_uint(x, kv, "max_delete_share", "kvstore.max_delete_share", 0, 100,
		              &c->kv_max_delete_share);
	if (rc == 0)
		rc = get_uint(x, kv, "block_ms", "kvstore.block_ms", 1, 60000, &c->kv_block_ms);
	if (rc == 0)
		rc = get_uint(x, kv, "removal_grace", "kvstore.removal_grace", 0, 86400,
		              &c->kv_removal_grace);
	return rc;
}

/* A group name as useradd/groupadd accept it (and their --badname forms):
 * letters, digits, '.', '_', '-', an optional final '$'; not starting with '-'. */
static bool
valid_group_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32 || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '$' && i == n - 1 && i > 0)
			continue;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* control.group / control.admin_group: shape only, the group need not exist
 * where the config is checked; the daemon looks it up when it binds. */
static int
get_group(struct ctx *x, const struct mg_yaml_node *map, const char *key, const char *what,
          char **out)
{
	const struct mg_yaml_node *n = mg_yaml_get(map, key);
	const char *v;
	char *p;
	int rc;

	if (n == NULL || mg_yaml_is_null(n))
		return 0;
	rc = mg_yaml_str(n, what, &v, x->err);
	if (rc)
		return rc;
	if (!valid_group_name(v))
		return mg_yaml_error(x->err, n, "%s: '%s' is not a group name", what, v);
	p = dup_str(x, v);
	if (p == NULL)
		return -ENOMEM;
	free(*out);
	*out = p;
	return 0;
}

/*
 * control.admin_reserve: below max_clients, so that readers keep one
 * connection at least. Without the key, the default shrinks with a small
 * max_clients (2, 1 when max_clients is 2, 0 when it is 1).
 */
static int
parse_admin_reserve(struct ctx *x, const struct mg_yaml_node *s)
{
	const struct mg_yaml_node *n = mg_yaml_get(s, "admin_reserve");
	struct mg_config *c = x->c;
	uint64_t v;
	int rc;

	if (n == NULL) {
		if (c->control_reserve >= c->control_max_clients)
			c->control_reserve = c->control_max_clients - 1;
		return 0;
	}
	rc = mg_yaml_u64(n, "control.admin_reserve", 0, 1023, &v, x->err);
	if (rc)
		return rc;
	if (v >= c->control_max_clients)
		return mg_yaml_error(x->err, n,
		                     "control.admin_reserve: %u leaves no connection for the "
		                     "other users (control.max_clients is %u)",
		                     (unsigned)v, c->control_max_clients);
	c->control_reserve = (unsigned)v;
	return 0;
}

static int
parse_control(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = keys_control;
	const struct mg_yaml_node *s = mg_yaml_get(root, "control"), *n;
	struct mg_config *c = x->c;
	struct sockaddr_un sun;
	const char *v;
	char *p;
	int rc;

	if (s == NULL || mg_yaml_is_null(s))
		return 0;
	rc = mg_yaml_check_map(s, "control", keys, x->err);
	if (rc)
		return rc;
	rc = get_group(x, s, "group", "control.group", &c->control_group);
	if (rc == 0)
		rc = get_group(x, s, "admin_group", "control.admin_group", &c->control_admin_group);
	if (rc == 0)
		rc = get_uint(x, s, "max_clients", "control.max_clients", 1, 1024,
		              &c->control_max_clients);
	if (rc == 0)
		rc = parse_admin_reserve(x, s);
	if (rc == 0)
		rc = get_uint(x, s, "max_request_bytes", "control.max_request_bytes", 1024,
		              16777216, &c->control_max_request);
	if (rc == 0)
		rc = get_uint(x, s, "idle_timeout", "control.idle_timeout", 1, 86400,
		              &c->control_idle_timeout);
	if (rc == 0)
		rc = get_uint(x, s, "max_output_bytes", "control.max_output_bytes", 65536,
		              1073741824, &c->control_max_output);
	if (rc)
		return rc;
	n = mg_yaml_get(s, "socket");
	if (n == NULL)
		return 0;
	rc = mg_yaml_str(n, "control.socket", &v, x->err);
	if (rc)
		return rc;
	if (v[0] == '\0')
		return mg_yaml_error(x->err, n, "control.socket: empty path");
	p = resolve(x, v);
	if (p == NULL)
		return -ENOMEM;
	if (strlen(p) >= sizeof(sun.sun_path)) {
		rc = mg_yaml_error(x->err, n,
		                   "control.socket: '%s' is longer than a unix socket path may be "
		                   "(%zu bytes)",
		                   p, sizeof(sun.sun_path) - 1);
		free(p);
		return rc;
	}
	free(c->control_socket);
	c->control_socket = p;
	return 0;
}

/* "host:port", "[v6]:port" or ":port"; the port 0..65535 (0: any free one, for tests). */
static bool
valid_listen(const char *s)
{
	const char *colon = strrchr(s, ':'), *h;
	char *end;
	unsigned long port;
	size_t hl;

	if (colon == NULL || colon[1] == '\0')
		return false;
	if (colon[1] < '0' || colon[1] > '9')
		return false;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end != '\0' || port > 65535)
		return false;
	h = s;
	hl = (size_t)(colon - s);
	if (hl > 0 && h[0] == '[') {
		char buf[INET6_ADDRSTRLEN];
		uint8_t a[16];

		if (hl < 3 || h[hl - 1] != ']' || hl - 2 >= sizeof(buf))
			return false;
		memcpy(buf, h + 1, hl - 2);
		buf[hl - 2] = '\0';
		return inet_pton(AF_INET6, buf, a) == 1;
	}
	/* an unbracketed host may not hold ':' (that would be IPv6 without brackets) */
	return memchr(h, ':', hl) == NULL && memchr(h, ' ', hl) == NULL;
}

static int
parse_metrics(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = keys_metrics;
	const struct mg_yaml_node *s = mg_yaml_get(root, "metrics"), *n;
	const char *v;
	char *p;
	int rc;

	if (s == NULL || mg_yaml_is_null(s))
		return 0;
	rc = mg_yaml_check_map(s, "metrics", keys, x->err);
	if (rc == 0)
		rc = get_uint(x, s, "max_connections", "metrics.max_connections", 1, 1024,
		              &x->c->metrics_max_connections);
	if (rc == 0)
		rc = get_uint(x, s, "request_timeout", "metrics.request_timeout", 1, 3600,
		              &x->c->metrics_request_timeout);
	if (rc)
		return rc;
	n = mg_yaml_get(s, "listen");
	if (n == NULL)
		return 0;
	rc = mg_yaml_str(n, "metrics.listen", &v, x->err);
	if (rc)
		return rc;
	if (!valid_listen(v))
		return mg_yaml_error(x->err, n,
		                     "metrics.listen: '%s' is not host:port (port 0 to 65535; "
		                     "IPv6 as [addr]:port)",
		                     v);
	p = dup_str(x, v);
	if (p == NULL)
		return -ENOMEM;
	free(x->c->metrics_listen);
	x->c->metrics_listen = p;
	return 0;
}

static int
parse_conntrack(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = keys_conntrack;
	const char *const *tkeys = keys_conntrack_timeouts;
	const struct mg_yaml_node *s = mg_yaml_get(root, "conntrack"), *t;
	struct mg_ct_timeouts *to = &x->c->ct.timeouts;
	struct {
		const char *key;
		uint32_t *v;
	} tv[] = {{"tcp_syn", &to->tcp_syn}, {"tcp_established", &to->tcp_established},
	          {"tcp_fin", &to->tcp_fin}, {"tcp_close", &to->tcp_close},
	          {"udp", &to->udp},         {"icmp", &to->icmp},
	          {"other", &to->other},     {"fragment", &to->fragment}};
	char what[64];
	unsigned v, i;
	int rc;

	if (s == NULL || mg_yaml_is_null(s))
		return 0;
	rc = mg_yaml_check_map(s, "conntrack", keys, x->err);
	if (rc == 0)
		rc = get_uint(x, s, "max_entries", "conntrack.max_entries", 1, 1u << 26,
		              &x->c->ct.max_entries);
	if (rc == 0)
		rc = get_uint(x, s, "max_fragments", "conntrack.max_fragments", 1, 1u << 22,
		              &x->c->ct.max_frags);
	if (rc == 0)
		rc = get_bool(x, s, "tcp_pickup", "conntrack.tcp_pickup", &x->c->ct.tcp_pickup);
	if (rc)
		return rc;
	t = mg_yaml_get(s, "timeouts");
	if (t == NULL || mg_yaml_is_null(t))
		return 0;
	rc = mg_yaml_check_map(t, "conntrack.timeouts", tkeys, x->err);
	for (i = 0; rc == 0 && i < MG_ARRAY_SIZE(tv); i++) {
		v = *tv[i].v;
		snprintf(what, sizeof(what), "conntrack.timeouts.%s", tv[i].key);
		/* a week at most: expiry ticks stay far from overflow */
		rc = get_uint(x, t, tv[i].key, what, 1, 7 * 86400, &v);
		*tv[i].v = v;
	}
	return rc;
}

static int
parse_root(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = keys_root;
	const struct mg_yaml_node *n;
	uint64_t v;
	int rc;

	rc = mg_yaml_check_map(root, "config", keys, x->err);
	if (rc)
		return rc;
	n = mg_yaml_get(root, "version");
	if (n == NULL)
		return missing(x, root, "config", "version");
	rc = mg_yaml_u64(n, "version", 0, UINT32_MAX, &v, x->err);
	if (rc)
		return rc;
	if (v != 1)
		return mg_yaml_error(x->err, n,
		                     "version: unsupported config version %llu (this meshgate "
		                     "reads version 1)",
		                     (unsigned long long)v);
	x->c->version = 1;

	/* cluster before policy: sources default to the cluster's name */
	rc = parse_eal(x, root);
	if (rc == 0)
		rc = parse_datapath(x, root);
	if (rc == 0)
		rc = parse_cluster(x, root);
	if (rc == 0)
		rc = parse_policy(x, root);
	if (rc == 0)
		rc = parse_identities(x, root);
	if (rc == 0)
		rc = parse_ipcache(x, root);
	if (rc == 0)
		rc = parse_kvstore(x, root);
	if (rc == 0)
		rc = parse_control(x, root);
	if (rc == 0)
		rc = parse_metrics(x, root);
	if (rc == 0)
		rc = parse_conntrack(x, root);
	return rc;
}

static struct mg_config *
config_new(const char *file)
{
	struct mg_config *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->file = strdup(file);
	c->dir = config_dir(file);
	c->control_socket = strdup(DEFAULT_CONTROL_SOCKET);
	c->control_max_clients = DEFAULT_CONTROL_MAX_CLIENTS;
	c->control_reserve = DEFAULT_CONTROL_ADMIN_RESERVE;
	c->control_max_request = DEFAULT_CONTROL_MAX_REQUEST;
	c->control_idle_timeout = DEFAULT_CONTROL_IDLE_TIMEOUT;
	c->control_max_output = DEFAULT_CONTROL_MAX_OUTPUT;
	c->metrics_listen = strdup(DEFAULT_METRICS_LISTEN);
	c->metrics_max_connections = DEFAULT_METRICS_MAX_CONNECTIONS;
	c->metrics_request_timeout = DEFAULT_METRICS_REQUEST_TIMEOUT;
	if (c->file == NULL || c->dir == NULL || c->control_socket == NULL ||
	    c->metrics_listen == NULL) {
		mg_config_free(c);
		return NULL;
	}
	c->non_ip = MG_NON_IP_FORWARD;
	c->burst = DEFAULT_BURST;
	c->rx_desc = DEFAULT_DESC;
	c->tx_desc = DEFAULT_DESC;
	c->mbufs = DEFAULT_MBUFS;
	c->cluster_mode = MG_CLUSTER_MODE_255;
	c->enforcement = MG_ENFORCE_DEFAULT;
	c->default_local_cluster = true;
	c->split_world = true;
	c->ct.max_entries = 262144;
	c->ct.max_frags = 8192;
	c->ct.tcp_pickup = false;
	mg_ct_timeouts_default(&c->ct.timeouts);
	return c;
}

/* Turn a parsed YAML stream into a config; consumes @p f. */
static struct mg_config *
config_from_yaml(const char *name, struct mg_yaml_file *f, struct mg_error *err)
{
	const struct mg_yaml_node *root = NULL;
	struct ctx x = {.err = err, .file = name};
	size_t i;
	int rc;

	if (f == NULL)
		return NULL; /* errno and err set by the YAML loader */
	x.c = config_new(name);
	if (x.c == NULL) {
		rc = oom(&x);
		goto err;
	}
	/* Empty documents (a trailing "---") are no documents; two real ones are an error. */
	for (i = 0; i < f->ndocs; i++) {
		if (mg_yaml_is_null(f->docs[i]))
			continue;
		if (root != NULL) {
			rc = mg_yaml_error(
			        err, f->docs[i],
			        "config: a config file holds one YAML document, a second "
			        "one starts here");
			goto err;
		}
		root = f->docs[i];
	}
	if (root == NULL) {
		mg_error_set(err, NULL, 0, 0, "%s: the config file is empty", name);
		rc = -EINVAL;
		goto err;
	}
	rc = parse_root(&x, root);
	if (rc)
		goto err;
	mg_yaml_free(f);
	return x.c;
err:
	mg_config_free(x.c);
	mg_yaml_free(f);
	errno = -rc;
	return NULL;
}

struct mg_config *
mg_config_load(const char *path, struct mg_error *err)
{
	return config_from_yaml(path, mg_yaml_load_file(path, err), err);
}

struct mg_config *
mg_config_load_buf(const char *name, const void *buf, size_t len, struct mg_error *err)
{
	return config_from_yaml(name, mg_yaml_load_buf(name, buf, len, err), err);
}

void
mg_config_free(struct mg_config *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->file);
	free(c->dir);
	free_str_list(c->n_eal, c->eal);
	for (i = 0; i < c->n_sources; i++)
		free(c->sources[i].path);
	free(c->sources);
	free_str_list(c->n_identity_files, c->identity_files);
	free_str_list(c->n_endpoint_files, c->endpoint_files);
	free(c->entries);
	free(c->kv_redis);
	free(c->kv_user);
	free(c->kv_password_file);
	free_str_list(c->n_kv_clusters, c->kv_clusters);
	free(c->control_socket);
	free(c->control_group);
	free(c->control_admin_group);
	free(c->metrics_listen);
	free(c);
}

int
mg_config_port_index(const struct mg_config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n_ports; i++)
		if (strcmp(c->ports[i].name, name) == 0)
			return (int)i;
	return -1;
}

int
mg_config_load_static(const struct mg_config *c, struct mg_identity_table *t,
                      struct mg_ipcache *ipc, struct mg_error *err)
{
	size_t i;
	int rc;

	for (i = 0; i < c->n_identity_files; i++) {
		rc = mg_config_load_identities(c->identity_files[i], t, err);
		if (rc < 0)
			return rc;
	}
	for (i = 0; i < c->n_endpoint_files; i++) {
		rc = mg_config_load_endpoints_ids(c->endpoint_files[i], ipc, t, c->cluster_id, err);
		if (rc < 0)
			return rc;
	}
	for (i = 0; i < c->n_entries; i++) {
		struct mg_ipcache_entry e = c->entries[i].e;

		e.cluster_id = c->cluster_id;
		rc = mg_ipcache_put(ipc, &e);
		if (rc < 0) {
			mg_error_set(err, c->file, c->entries[i].line, c->entries[i].col,
			             "ipcache.entries[%zu]: cannot add the entry: %s", i,
			             strerror(-rc));
			return mg_errno_set(-rc);
		}
	}
	return 0;
}

int
mg_config_load_policies(const struct mg_config *c, struct mg_policy_set *s, struct mg_error *err)
{
	size_t i;
	int rc;

	for (i = 0; i < c->n_sources; i++) {
		rc = mg_policy_set_load_path(s, c->sources[i].cluster, c->sources[i].path, err);
		if (rc < 0)
			return mg_errno_set(-rc);
	}
	return 0;
}
