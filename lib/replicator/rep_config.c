/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgate-replicator.yaml (conf/meshgate-replicator.yaml documents every
 * key, docs/replicator.md is the reference) and the clusters' etcd config
 * files. Strict like the gateway's config: unknown or duplicate keys,
 * wrong types and out-of-range values are "file:line:col: ..." errors.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_etcd.h"
#include "mg_kvstore.h"
#include "mg_yaml.h"
#include "rep_filter.h"
#include "rep_priv.h"

/* etcd's client port: an endpoint without one gets it */
#define MG_REP_ETCD_DEFAULT_PORT 2379u

static const char *const keys_root[] = {"version",    "cluster",         "clustermesh",   "redis",
                                        "redis_auth", "redis_functions", "redis_timeout", "etcd",
                                        "limits",     "lease",           "drain",         "writer",
                                        "control",    "metrics",         "filter",        NULL};
static const char *const keys_cluster[] = {"name", "id", "max_connected_clusters", NULL};
static const char *const keys_mesh[] = {"config_dir", "rescan_interval", NULL};
static const char *const keys_auth[] = {"user", "password_file", NULL};
static const char *const keys_etcd[] = {"page_size",         "qps",
                                        "bootstrap_qps",     "timeout",
                                        "connect_timeout",   "heartbeat_timeout",
                                        "config_timeout",    "keepalive",
                                        "keepalive_timeout", "backoff_min",
                                        "backoff_max",       NULL};
static const char *const keys_limits[] = {"max_entries", "max_value_bytes", "queue_bytes", NULL};
static const char *const keys_lease[] = {"ttl", NULL};
static const char *const keys_drain[] = {"grace", NULL};
static const char *const keys_writer[] = {"batch", "log_maxlen", "check_interval", NULL};
static const char *const keys_control[] = {"socket", "group", "admin_group", "max_clients", NULL};
static const char *const keys_metrics[] = {"listen", NULL};

struct pctx {
	struct mg_rep_config *c;
	struct mg_error *err;
};

static char *
resolve(const char *dir, const char *p)
{
	char *out = NULL;
	if (p[0] == '/' || dir == NULL)
		return strdup(p);
	if (asprintf(&out, "%s/%s", dir, p) < 0)
		return NULL;
	return out;
}

/* A string key of @p map into a new string (resolved when @p path). Absent: untouched. */
static int
get_str(struct pctx *x, const struct mg_yaml_node *map, const char *key, const char *what,
        bool path, char **out)
{
	const struct mg_yaml_node *n = mg_yaml_get(map, key);
	const char *s;
	if (n == NULL)
		return 0;
	int rc = mg_yaml_str(n, what, &s, x->err);
	if (rc)
		return rc;
	if (s[0] == '\0')
		return mg_yaml_error(x->err, n, "%s: must not be empty", what);
	char *v = path ? resolve(x->c->dir, s) : strdup(s);
	if (v == NULL)
		return -ENOMEM;
	free(*out);
	*out = v;
	return 0;
}

static int
get_u(struct pctx *x, const struct mg_yaml_node *map, const char *key, const char *what,
      uint64_t min, uint64_t max, uint64_t scale, unsigned *out)
{
	const struct mg_yaml_node *n = mg_yaml_get(map, key);
	uint64_t v;
	if (n == NULL)
		return 0;
	int rc = mg_yaml_u64(n, what, min, max, &v, x->err);
	if (rc == 0)
		*out = (unsigned)(v * scale);
	return rc;
}

static int
get_size(struct pctx *x, const struct mg_yaml_node *map, const char *key, const char *what,
         uint64_t min, uint64_t max, size_t *out)
{
	unsigned v = 0;
	int rc = get_u(x, map, key, what, min, max, 1, &v);
	if (rc == 0 && mg_yaml_get(map, key) != NULL)
		*out = v;
	return rc;
}

/* A map section: NULL/null is fine (defaults), else checked against @p keys. */
static int
section(struct pctx *x, const struct mg_yaml_node *root, const char *name, const char *const *keys,
        const struct mg_yaml_node **out)
{
	const struct mg_yaml_node *n = mg_yaml_get(root, name);
	*out = NULL;
	if (n == NULL || mg_yaml_is_null(n))
		return 0;
	int rc = mg_yaml_check_map(n, name, keys, x->err);
	if (rc == 0)
		*out = n;
	return rc;
}

static int
parse_cluster(struct pctx *x, const struct mg_yaml_node *root)
{
	const struct mg_yaml_node *s, *n;
	char *name = NULL;
	unsigned mcc = 255;
	int rc = section(x, root, "cluster", keys_cluster, &s);
	if (rc)
		return rc;
	if (s == NULL)
		return mg_yaml_error(x->err, root, "missing key 'cluster' ({name, id})");
	if (mg_yaml_get(s, "name") == NULL)
		return mg_yaml_error(x->err, s, "cluster: missing key 'name'");
	if (mg_yaml_get(s, "id") == NULL)
		return mg_yaml_error(x->err, s, "cluster: missing key 'id'");
	rc = get_str(x, s, "name", "cluster.name", false, &name);
	if (rc)
		return rc;
	n = mg_yaml_get(s, "name");
	if (!mg_kv_cluster_name_valid(name)) {
		free(name);
		return mg_yaml_error(x->err, n,
		                     "cluster.name: not a cluster name (1-32 of a-z, 0-9 and '-', "
		                     "alphanumeric at both ends)");
	}
	snprintf(x->c->cluster_name, sizeof(x->c->cluster_name), "%s", name);
	free(name);
	rc = get_u(x, s, "max_connected_clusters", "cluster.max_connected_clusters", 255, 511, 1,
	           &mcc);
	if (rc)
		return rc;
	if (mcc != 255 && mcc != 511)
		return mg_yaml_error(x->err, mg_yaml_get(s, "max_connected_clusters"),
		                     "cluster.max_connected_clusters: must be 255 or 511");
	x->c->cluster_mode = mcc == 511 ? MG_CLUSTER_MODE_511 : MG_CLUSTER_MODE_255;
	return get_u(x, s, "id", "cluster.id", 1, mcc, 1, &x->c->cluster_id);
}

static int
parse_redis(struct pctx *x, const struct mg_yaml_node *root)
{
	const struct mg_yaml_node *n = mg_yaml_get(root, "redis"), *a;
	if (n == NULL)
		return mg_yaml_error(x->err, root, "missing key 'redis' (the site Redis URL)");
	int rc = get_str(x, root, "redis", "redis", false, &x->c->redis);
	if (rc)
		return rc;
	const char *s = x->c->redis;
	if (!((strncmp(s, "redis://", 8) == 0 && s[8] != '\0') ||
	      (strncmp(s, "unix://", 7) == 0 && s[7] == '/')))
		return mg_yaml_error(
		        x->err, n,
		        "redis: '%s' is not a redis://host[:port][/db] or unix:///path URL", s);
	rc = section(x, root, "redis_auth", keys_auth, &a);
	if (rc == 0 && a != NULL)
		rc = get_str(x, a, "user", "redis_auth.user", false, &x->c->redis_user);
	if (rc == 0 && a != NULL)
		rc = get_str(x, a, "password_file", "redis_auth.password_file", true,
		             &x->c->redis_password_file);
	if (rc == 0)
		rc = get_str(x, root, "redis_functions", "redis_functions", true, &x->c->functions);
	if (rc == 0)
		rc = get_u(x, root, "redis_timeout", "redis_timeout", 1, 300, 1000,
		           &x->c->redis_timeout_ms);
	return rc;
}

static int
get_qps(struct pctx *x, const struct mg_yaml_node *map, const char *key, const char *what,
        double *out)
{
	const struct mg_yaml_node *n = mg_yaml_get(map, key);
	const char *s;
	char *end;
	if (n == NULL)
		return 0;
	int rc = mg_yaml_str(n, what, &s, x->err);
	if (rc)
		return rc;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0.1 && v <= 1e6))
		return mg_yaml_error(x->err, n, "%s: '%s' is not a rate between 0.1 and 1000000",
		                     what, s);
	*out = v;
	return 0;
}

static int
parse_etcd(struct pctx *x, const struct mg_yaml_node *root)
{
	const struct mg_yaml_node *e, *l;
	struct mg_rep_config *c = x->c;
	int rc = section(x, root, "etcd", keys_etcd, &e);
	if (rc == 0 && e != NULL) {
		rc = get_u(x, e, "page_size", "etcd.page_size", 1, 100000, 1, &c->page_size);
		rc = rc ?: get_qps(x, e, "qps", "etcd.qps", &c->qps);
		rc = rc ?: get_qps(x, e, "bootstrap_qps", "etcd.bootstrap_qps", &c->bootstrap_qps);
		rc = rc ?: get_u(x, e, "timeout", "etcd.timeout", 1, 3600, 1000, &c->timeout_ms);
		rc = rc
		             ?: get_u(x, e, "connect_timeout", "etcd.connect_timeout", 1, 600, 1000,
		                      &c->connect_timeout_ms);
		rc = rc
		             ?: get_u(x, e, "heartbeat_timeout", "etcd.heartbeat_timeout", 0, 86400,
		                      1000, &c->heartbeat_ms);
		rc = rc
		             ?: get_u(x, e, "config_timeout", "etcd.config_timeout", 1, 86400, 1000,
		                      &c->config_timeout_ms);
		rc = rc
		             ?: get_u(x, e, "keepalive", "etcd.keepalive", 1, 3600, 1000,
		                      &c->keepalive_ms);
		rc = rc
		             ?: get_u(x, e, "keepalive_timeout", "etcd.keepalive_timeout", 1, 3600,
		                      1000, &c->keepalive_timeout_ms);
		rc = rc
		             ?: get_u(x, e, "backoff_min", "etcd.backoff_min", 0, 3600000, 1,
		                      &c->backoff_min_ms);
		rc = rc
		             ?: get_u(x, e, "backoff_max", "etcd.backoff_max", 1, 3600000, 1,
		                      &c->backoff_max_ms);
		if (rc == 0 && c->backoff_max_ms < c->backoff_min_ms)
			return mg_yaml_error(x->err, e, "etcd: backoff_max is below backoff_min");
	}
	if (rc)
		return rc;
	rc = section(x, root, "limits", keys_limits, &l);
	if (rc == 0 && l != NULL) {
		rc = get_size(x, l, "max_entries", "limits.max_entries", 1, 100000000,
		              &c->max_entries);
		rc = rc
		             ?: get_size(x, l, "max_value_bytes", "limits.max_value_bytes", 256,
		                         MG_KV_IDENTITY_VALUE_MAX, &c->max_value_bytes);
		rc = rc
		             ?: get_size(x, l, "queue_bytes", "limits.queue_bytes", 1 << 20,
		                         1u << 31, &c->queue_bytes);
	}
	return rc;
}

static int
parse_writer(struct pctx *x, const struct mg_yaml_node *root)
{
	const struct mg_yaml_node *s;
	struct mg_rep_config *c = x->c;
	int rc = section(x, root, "lease", keys_lease, &s);
	if (rc == 0 && s != NULL)
		rc = get_u(x, s, "ttl", "lease.ttl", 3, 3600, 1000, &c->lease_ttl_ms);
	rc = rc ?: section(x, root, "drain", keys_drain, &s);
	if (rc == 0 && s != NULL)
		rc = get_u(x, s, "grace", "drain.grace", 0, 86400 * 7, 1000, &c->drain_grace_ms);
	rc = rc ?: section(x, root, "writer", keys_writer, &s);
	if (rc == 0 && s != NULL) {
		rc = get_u(x, s, "batch", "writer.batch", 1, MG_KV_BATCH_MAX, 1, &c->batch);
		rc = rc
		             ?: get_u(x, s, "log_maxlen", "writer.log_maxlen", 1000, 100000000, 1,
		                      &c->log_maxlen);
		rc = rc
		             ?: get_u(x, s, "check_interval", "writer.check_interval", 1, 3600,
		                      1000, &c->check_ms);
	}
	return rc;
}

static int
parse_services(struct pctx *x, const struct mg_yaml_node *root)
{
	const struct mg_yaml_node *s;
	struct mg_rep_config *c = x->c;
	int rc = section(x, root, "control", keys_control, &s);
	if (rc == 0 && s != NULL) {
		rc = get_str(x, s, "socket", "control.socket", true, &c->control_socket);
		rc = rc ?: get_str(x, s, "group", "control.group", false, &c->control_group);
		rc = rc
		             ?: get_str(x, s, "admin_group", "control.admin_group", false,
		                        &c->control_admin_group);
		rc = rc
		             ?: get_u(x, s, "max_clients", "control.max_clients", 1, 1024, 1,
		                      &c->control_max_clients);
		if (rc == 0 && c->control_socket != NULL && strlen(c->control_socket) >= 108)
			return mg_yaml_error(x->err, mg_yaml_get(s, "socket"),
			                     "control.socket: path longer than 107 bytes");
	}
	rc = rc ?: section(x, root, "metrics", keys_metrics, &s);
	if (rc == 0 && s != NULL) {
		rc = get_str(x, s, "listen", "metrics.listen", false, &c->metrics_listen);
		struct sockaddr_storage ss;
		socklen_t len;
		if (rc == 0 && c->metrics_listen != NULL &&
		    mg_metrics_parse_listen(c->metrics_listen, &ss, &len, x->err) < 0)
			return mg_yaml_error(x->err, mg_yaml_get(s, "listen"),
			                     "metrics.listen: '%s' is not host:port",
			                     c->metrics_listen);
	}
	return rc;
}

static void
defaults(struct mg_rep_config *c)
{
	c->cluster_mode = MG_CLUSTER_MODE_255;
	c->rescan_ms = 2000;
	c->redis_timeout_ms = MG_KV_WRITER_TIMEOUT_MS_DEFAULT;
	c->page_size = 5000;
	c->qps = 20;
	c->bootstrap_qps = 10000;
	c->timeout_ms = 15000;
	c->connect_timeout_ms = 5000;
	c->heartbeat_ms = 120000;
	c->config_timeout_ms = 180000;
	c->keepalive_ms = 15000;
	c->keepalive_timeout_ms = 25000;
	c->backoff_min_ms = 1000;
	c->backoff_max_ms = 60000;
	c->max_entries = 4000000;
	c->max_value_bytes = MG_KV_IDENTITY_VALUE_MAX;
	c->queue_bytes = 64u << 20;
	c->lease_ttl_ms = 15000;
	c->drain_grace_ms = 180000;
	c->batch = MG_KV_WRITER_BATCH_DEFAULT;
	c->log_maxlen = MG_KV_WRITER_MAXLEN_DEFAULT;
	c->check_ms = 2000;
	c->control_max_clients = MG_CTL_DEFAULT_MAX_CLIENTS;
}

static int
parse_root(struct pctx *x, const struct mg_yaml_node *root)
{
	const struct mg_yaml_node *s;
	unsigned version = 0;
	int rc = mg_yaml_check_map(root, "meshgate-replicator config", keys_root, x->err);
	if (rc)
		return rc;
	if (mg_yaml_get(root, "version") == NULL)
		return mg_yaml_error(x->err, root, "missing key 'version' (1)");
	rc = get_u(x, root, "version", "version", 1, 1, 1, &version);
	rc = rc ?: parse_cluster(x, root);
	rc = rc ?: section(x, root, "clustermesh", keys_mesh, &s);
	if (rc)
		return rc;
	if (s == NULL || mg_yaml_get(s, "config_dir") == NULL)
		return mg_yaml_error(x->err, s ? s : root,
		                     "missing key 'clustermesh.config_dir' (the clusters' etcd "
		                     "configs)");
	rc = get_str(x, s, "config_dir", "clustermesh.config_dir", true, &x->c->config_dir);
	rc = rc
	             ?: get_u(x, s, "rescan_interval", "clustermesh.rescan_interval", 1, 3600, 1000,
	                      &x->c->rescan_ms);
	rc = rc ?: parse_redis(x, root);
	rc = rc ?: parse_etcd(x, root);
	rc = rc ?: parse_writer(x, root);
	rc = rc ?: parse_services(x, root);
	if (rc == 0 && (s = mg_yaml_get(root, "filter")) != NULL && !mg_yaml_is_null(s)) {
		x->c->filter = calloc(1, sizeof(*x->c->filter));
		if (x->c->filter == NULL)
			return -ENOMEM;
		rc = mg_rep_filter_config_parse(s, x->c->dir, x->c->filter, x->err);
	}
	return rc;
}

static struct mg_rep_config *
load(struct mg_yaml_file *f, const char *name, const char *dir, struct mg_error *err)
{
	struct mg_rep_config *c = calloc(1, sizeof(*c));
	int rc = -ENOMEM;
	if (c == NULL)
		goto fail;
	defaults(c);
	c->file = strdup(name);
	c->dir = strdup(dir != NULL ? dir : ".");
	if (c->file == NULL || c->dir == NULL)
		goto fail;
	/* As the gateway's config: empty documents are none, a second real one is an error. */
	const struct mg_yaml_node *root = NULL;
	for (size_t i = 0; i < f->ndocs; i++) {
		if (mg_yaml_is_null(f->docs[i]))
			continue;
		if (root != NULL) {
			rc = mg_yaml_error(err, f->docs[i],
			                   "a config file holds one YAML document, a second one "
			                   "starts here");
			goto fail;
		}
		root = f->docs[i];
	}
	if (root == NULL) {
		mg_error_set(err, NULL, 0, 0, "%s: the config file is empty", name);
		rc = -EINVAL;
		goto fail;
	}
	struct pctx x = {.c = c, .err = err};
	rc = parse_root(&x, root);
	if (rc)
		goto fail;
	mg_yaml_free(f);
	return c;
fail:
	if (rc == -ENOMEM)
		mg_error_set(err, name, 0, 0, "out of memory");
	mg_yaml_free(f);
	mg_rep_config_free(c);
	errno = -rc;
	return NULL;
}

struct mg_rep_config *
mg_rep_config_load_buf(const char *name, const char *dir, const void *buf, size_t len,
                       struct mg_error *err)
{
	struct mg_yaml_file *f = mg_yaml_load_buf(name, buf, len, err);
	return f != NULL ? load(f, name, dir, err) : NULL;
}

struct mg_rep_config *
mg_rep_config_load(const char *path, struct mg_error *err)
{
	struct mg_yaml_file *f = mg_yaml_load_file(path, err);
	if (f == NULL)
		return NULL;
	char *copy = strdup(path);
	if (copy == NULL) {
		mg_yaml_free(f);
		errno = ENOMEM;
		return NULL;
	}
	struct mg_rep_config *c = load(f, path, dirname(copy), err);
	int e = errno;
	free(copy);
	errno = e;
	return c;
}

void
mg_rep_config_free(struct mg_rep_config *c)
{
	if (c == NULL)
		return;
	free(c->file);
	free(c->dir);
	free(c->config_dir);
	free(c->redis);
	free(c->redis_user);
	free(c->redis_password_file);
	free(c->functions);
	free(c->control_socket);
	free(c->control_group);
	free(c->control_admin_group);
	free(c->metrics_listen);
	if (c->filter != NULL) {
		mg_rep_filter_config_clear(c->filter);
		free(c->filter);
	}
	free(c);
}

/* ---- the clusters' etcd config files ---- */

static int
etcd_file_key(struct pctx *x, const struct mg_yaml_node *map, const char *key, const char *dir,
              char **out)
{
	const struct mg_yaml_node *n = mg_yaml_get(map, key);
	const char *s;
	if (n == NULL || mg_yaml_is_null(n))
		return 0;
	int rc = mg_yaml_str(n, key, &s, x->err);
	if (rc)
		return rc;
	if (s[0] == '\0')
		return mg_yaml_error(x->err, n, "%s: must not be empty", key);
	free(*out);
	*out = resolve(dir, s);
	return *out == NULL ? -ENOMEM : 0;
}

static int
etcd_refuse(struct pctx *x, const struct mg_yaml_node *map)
{
	/* Options Cilium's etcd client has that this client does not: refused, not ignored. */
	static const char *const refused[] = {"username", "password", "insecure-skip-tls-verify",
	                                      NULL};
	for (size_t i = 0; refused[i] != NULL; i++) {
		const struct mg_yaml_node *n = mg_yaml_get(map, refused[i]);
		bool b = false;
		if (n == NULL || mg_yaml_is_null(n))
			continue;
		if (mg_yaml_bool(n, refused[i], &b, x->err) == 0 && !b)
			continue;
		return mg_yaml_error(
		        x->err, n,
		        "%s: not supported by meshgate-replicator (client certificates "
		        "only, the server always verified)",
		        refused[i]);
	}
	return 0;
}

/*
 * One endpoint as lib/etcd takes it: "http(s)://host:port", all of one
 * scheme. A trailing slash is dropped by lib/etcd; a missing port is
 * etcd's 2379 (as the troubleshoot probe has it), written out here.
 */
static int
etcd_endpoint(struct pctx *x, const struct mg_yaml_node *n, bool *tls, char **out)
{
	const char *s;
	int rc = mg_yaml_str(n, "endpoints[]", &s, x->err);
	if (rc)
		return rc;
	*tls = strncmp(s, "https://", 8) == 0;
	if (!*tls && strncmp(s, "http://", 7) != 0)
		return mg_yaml_error(x->err, n, "endpoints: '%s' is not an http:// or https:// URL",
		                     s);
	struct mg_hostport hp;
	const char *why = NULL, *rest = s + (*tls ? 8 : 7);
	char hostport[300];
	size_t hl = strlen(rest);
	if (hl > 0 && rest[hl - 1] == '/')
		hl--;
	if (hl >= sizeof(hostport))
		return mg_yaml_error(x->err, n, "endpoints: '%.40s...': too long", s);
	memcpy(hostport, rest, hl);
	hostport[hl] = '\0';
	if (mg_hostport_parse(hostport, MG_HOSTPORT_HOST_REQUIRED | MG_HOSTPORT_PORT_OPTIONAL, &hp,
	                      &why) < 0)
		return mg_yaml_error(x->err, n, "endpoints: '%s': %s", s,
		                     why != NULL ? why : "not host:port");
	if (hp.has_port && hp.port == 0)
		return mg_yaml_error(x->err, n, "endpoints: '%s': port 0", s);
	if (hp.has_port)
		*out = strdup(s);
	else if (asprintf(out, "%s%s:%u", *tls ? "https://" : "http://", hostport,
	                  MG_REP_ETCD_DEFAULT_PORT) < 0)
		*out = NULL;
	return *out == NULL ? -ENOMEM : 0;
}

static int
etcd_endpoints(struct pctx *x, const struct mg_yaml_node *n, struct mg_rep_etcd_config *out)
{
	int rc = mg_yaml_seq(n, "endpoints", false, x->err);
	if (rc)
		return rc;
	if (n->n == 0)
		return mg_yaml_error(x->err, n, "endpoints: empty list");
	if (n->n > MG_ETCD_MAX_ENDPOINTS)
		return mg_yaml_error(x->err, n, "endpoints: %zu, at most %d", n->n,
		                     MG_ETCD_MAX_ENDPOINTS);
	out->endpoints = calloc(n->n, sizeof(char *));
	if (out->endpoints == NULL)
		return -ENOMEM;
	bool tls0 = false;
	for (size_t i = 0; i < n->n; i++) {
		bool tls;
		rc = etcd_endpoint(x, n->items[i], &tls, &out->endpoints[i]);
		if (rc)
			return rc;
		out->n_endpoints++;
		if (i == 0)
			tls0 = tls;
		else if (tls != tls0)
			return mg_yaml_error(
			        x->err, n->items[i],
			        "endpoints: '%s': http:// and https:// mixed (lib/etcd "
			        "takes one scheme)",
			        n->items[i]->str);
	}
	return 0;
}

int
mg_rep_etcd_config_load(const char *path, const char *name, const char *dir,
                        struct mg_rep_etcd_config *out, struct mg_error *err)
{
	struct pctx x = {.err = err};
	struct mg_yaml_file *f;
	int rc;

	memset(out, 0, sizeof(*out));
	f = mg_yaml_load_file(path, err);
	if (f == NULL)
		return errno == EINVAL ? 0 : -errno; /* not YAML: not a cluster config */
	const struct mg_yaml_node *root = f->ndocs == 1 ? f->docs[0] : NULL;
	const struct mg_yaml_node *eps = mg_yaml_get(root, "endpoints");
	if (eps == NULL) {
		mg_yaml_free(f);
		return 0;
	}
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->file = strdup(path);
	rc = out->file == NULL ? -ENOMEM : 0;
	/* Cilium's etcd client ignores the keys it does not know; so do we, but
	 * the ones that would change security are refused. */
	rc = rc ?: etcd_refuse(&x, root);
	rc = rc ?: etcd_endpoints(&x, eps, out);
	rc = rc ?: etcd_file_key(&x, root, "ca-file", dir, &out->ca_file);
	rc = rc ?: etcd_file_key(&x, root, "trusted-ca-file", dir, &out->ca_file);
	rc = rc ?: etcd_file_key(&x, root, "cert-file", dir, &out->cert_file);
	rc = rc ?: etcd_file_key(&x, root, "key-file", dir, &out->key_file);
	if (rc == 0 && (out->cert_file == NULL) != (out->key_file == NULL))
		rc = mg_yaml_error(err, root, "cert-file and key-file go together");
	for (size_t i = 0; rc == 0 && i < out->n_endpoints; i++)
		if (strncmp(out->endpoints[i], "https://", 8) == 0 && out->ca_file == NULL)
			rc = mg_yaml_error(err, eps,
			                   "an https endpoint needs trusted-ca-file (the CA of "
			                   "the clustermesh-apiserver's certificate)");
	mg_yaml_free(f);
	if (rc < 0) {
		mg_rep_etcd_config_clear(out);
		return rc;
	}
	return 1;
}

void
mg_rep_etcd_config_clear(struct mg_rep_etcd_config *c)
{
	for (size_t i = 0; i < c->n_endpoints; i++)
		free(c->endpoints[i]);
	free(c->endpoints);
	free(c->file);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	memset(c, 0, sizeof(*c));
}
