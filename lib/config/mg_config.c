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
 *
 * This file is the loader's core: the document and its top level, the
 * defaults, the value readers every section uses, freeing, and loading
 * the static inputs and policies the config names. The sections
 * themselves are parsed in mg_config_datapath.c, mg_config_policy.c and
 * mg_config_services.c (config_priv.h lists them).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_priv.h"

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

/* The keys of every mapping the loader reads: used to check them and
 * listed by mg_config_keys() so a test can hold the docs against them.
 * Each section's keys are defined next to its parser. */
static const char *const keys_root[] = {"version",    "eal",     "datapath",  "cluster",
                                        "policy",     "ipcache", "kvstore",   "control",
                                        "identities", "metrics", "conntrack", NULL};

static const struct mg_config_section sections[] = {
        {"datapath.ports[]", cfg_keys_datapath_ports},
        {"datapath", cfg_keys_datapath},
        {"cluster", cfg_keys_cluster},
        {"policy.sources[]", cfg_keys_policy_sources},
        {"policy", cfg_keys_policy},
        {"identities", cfg_keys_identities},
        {"ipcache.entries[]", cfg_keys_ipcache_entries},
        {"ipcache", cfg_keys_ipcache},
        {"kvstore", cfg_keys_kvstore},
        {"control", cfg_keys_control},
        {"metrics", cfg_keys_metrics},
        {"conntrack", cfg_keys_conntrack},
        {"conntrack.timeouts", cfg_keys_conntrack_timeouts},
        {"", keys_root},
        {NULL, NULL},
};

const struct mg_config_section *
mg_config_keys(void)
{
	return sections;
}

int
cfg_oom(struct ctx *x)
{
	mg_error_set(x->err, NULL, 0, 0, "%s: out of memory", x->file);
	return -ENOMEM;
}

char *
cfg_dup_str(struct ctx *x, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		cfg_oom(x);
	return d;
}

/* @p rel joined to the config's folder, or a copy of @p rel when absolute. */
char *
cfg_resolve(struct ctx *x, const char *rel)
{
	const char *dir = x->c->dir;
	size_t dl, rl;
	char *p;

	if (rel[0] == '/')
		return cfg_dup_str(x, rel);
	dl = strlen(dir);
	rl = strlen(rel);
	/* strip "./" so that "dir/./x" does not show up in messages */
	while (rl >= 2 && rel[0] == '.' && rel[1] == '/') {
		rel += 2;
		rl -= 2;
	}
	p = malloc(dl + rl + 2);
	if (p == NULL) {
		cfg_oom(x);
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

int
cfg_missing(struct ctx *x, const struct mg_yaml_node *parent, const char *what, const char *key)
{
	return mg_yaml_error(x->err, parent, "%s: missing required key '%s'", what, key);
}

/* An RFC 1123 DNS label, as Cilium requires of cluster names. */
bool
cfg_valid_dns_label(const char *s)
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

/* An optional unsigned key of @p map within [min, max]; @p out keeps its default when absent. */
int
cfg_get_uint(struct ctx *x, const struct mg_yaml_node *map, const char *key, const char *what,
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

int
cfg_get_bool(struct ctx *x, const struct mg_yaml_node *map, const char *key, const char *what,
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
int
cfg_get_str_list(struct ctx *x, const struct mg_yaml_node *n, const char *what, bool null_ok,
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
		return cfg_oom(x);
	for (i = 0; i < n->n; i++) {
		const char *s;

		snprintf(item, sizeof(item), "%s[%zu]", what, i);
		rc = mg_yaml_str(n->items[i], item, &s, x->err);
		if (rc)
			return rc;
		if (paths && s[0] == '\0')
			return mg_yaml_error(x->err, n->items[i], "%s: empty path", item);
		(*out)[i] = paths ? cfg_resolve(x, s) : cfg_dup_str(x, s);
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
		return cfg_missing(x, root, "config", "version");
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
	rc = cfg_parse_eal(x, root);
	if (rc == 0)
		rc = cfg_parse_datapath(x, root);
	if (rc == 0)
		rc = cfg_parse_cluster(x, root);
	if (rc == 0)
		rc = cfg_parse_policy(x, root);
	if (rc == 0)
		rc = cfg_parse_identities(x, root);
	if (rc == 0)
		rc = cfg_parse_ipcache(x, root);
	if (rc == 0)
		rc = cfg_parse_kvstore(x, root);
	if (rc == 0)
		rc = cfg_parse_control(x, root);
	if (rc == 0)
		rc = cfg_parse_metrics(x, root);
	if (rc == 0)
		rc = cfg_parse_conntrack(x, root);
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
		rc = cfg_oom(&x);
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
