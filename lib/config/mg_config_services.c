/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The config sections of the daemon's services: `kvstore` (the Redis the
 * sync client reads, its clusters, credentials and timing), `control`
 * (the control socket, its groups and bounds), `metrics` (the HTTP
 * endpoint's address and bounds) and `conntrack` (table sizes and
 * timeouts). Group names are checked for their shape only: the group
 * need not exist where the config is checked.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "config_priv.h"

const char *const cfg_keys_kvstore[] = {"redis",
                                        "clusters",
                                        "user",
                                        "password_file",
                                        "sync_timeout",
                                        "max_delete_share",
                                        "block_ms",
                                        "removal_grace",
                                        "heartbeat_timeout",
                                        NULL};
const char *const cfg_keys_control[] = {"socket",
                                        "group",
                                        "admin_group",
                                        "max_clients",
                                        "admin_reserve",
                                        "max_request_bytes",
                                        "idle_timeout",
                                        "max_output_bytes",
                                        NULL};
const char *const cfg_keys_metrics[] = {"listen", "max_connections", "request_timeout", NULL};
const char *const cfg_keys_conntrack[] = {"max_entries", "max_fragments", "tcp_pickup", "timeouts",
                                          NULL};
const char *const cfg_keys_conntrack_timeouts[] = {
        "tcp_syn", "tcp_established", "tcp_fin",  "tcp_close", "udp",
        "icmp",    "other",           "fragment", NULL};

int
cfg_parse_kvstore(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = cfg_keys_kvstore;
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
	c->kv_heartbeat_timeout = 180;
	if (kv == NULL || mg_yaml_is_null(kv))
		return 0;
	rc = mg_yaml_check_map(kv, "kvstore", keys, x->err);
	if (rc)
		return rc;
	n = mg_yaml_get(kv, "redis");
	if (n == NULL)
		return cfg_missing(x, kv, "kvstore", "redis");
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
	c->kv_redis = cfg_dup_str(x, s);
	if (c->kv_redis == NULL)
		return -ENOMEM;

	n = mg_yaml_get(kv, "clusters");
	rc = cfg_get_str_list(x, n, "kvstore.clusters", true, false, &c->n_kv_clusters,
	                      &c->kv_clusters);
	if (rc)
		return rc;
	for (i = 0; i < c->n_kv_clusters; i++) {
		snprintf(what, sizeof(what), "kvstore.clusters[%zu]", i);
		if (!cfg_valid_dns_label(c->kv_clusters[i]))
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
		c->kv_user = cfg_dup_str(x, s);
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
		c->kv_password_file = cfg_resolve(x, s);
		if (c->kv_password_file == NULL)
			return -ENOMEM;
	}
	rc = cfg_get_uint(x, kv, "sync_timeout", "kvstore.sync_timeout", 0, 86400,
	                  &c->kv_sync_timeout);
	if (rc == 0)
		rc = cfg_get_uint(x, kv, "max_delete_share", "kvstore.max_delete_share", 0, 100,
		                  &c->kv_max_delete_share);
	if (rc == 0)
		rc = cfg_get_uint(x, kv, "block_ms", "kvstore.block_ms", 1, 60000, &c->kv_block_ms);
	if (rc == 0)
		rc = cfg_get_uint(x, kv, "removal_grace", "kvstore.removal_grace", 0, 86400,
		                  &c->kv_removal_grace);
	if (rc == 0)
		rc = cfg_get_uint(x, kv, "heartbeat_timeout", "kvstore.heartbeat_timeout", 0, 86400,
		                  &c->kv_heartbeat_timeout);
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
	p = cfg_dup_str(x, v);
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

int
cfg_parse_control(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = cfg_keys_control;
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
		rc = cfg_get_uint(x, s, "max_clients", "control.max_clients", 1, 1024,
		                  &c->control_max_clients);
	if (rc == 0)
		rc = parse_admin_reserve(x, s);
	if (rc == 0)
		rc = cfg_get_uint(x, s, "max_request_bytes", "control.max_request_bytes", 1024,
		                  16777216, &c->control_max_request);
	if (rc == 0)
		rc = cfg_get_uint(x, s, "idle_timeout", "control.idle_timeout", 1, 86400,
		                  &c->control_idle_timeout);
	if (rc == 0)
		rc = cfg_get_uint(x, s, "max_output_bytes", "control.max_output_bytes", 65536,
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
	p = cfg_resolve(x, v);
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
	struct mg_hostport hp;
	const char *why;

	return mg_hostport_parse(s, 0, &hp, &why) == 0;
}

int
cfg_parse_metrics(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = cfg_keys_metrics;
	const struct mg_yaml_node *s = mg_yaml_get(root, "metrics"), *n;
	const char *v;
	char *p;
	int rc;

	if (s == NULL || mg_yaml_is_null(s))
		return 0;
	rc = mg_yaml_check_map(s, "metrics", keys, x->err);
	if (rc == 0)
		rc = cfg_get_uint(x, s, "max_connections", "metrics.max_connections", 1, 1024,
		                  &x->c->metrics_max_connections);
	if (rc == 0)
		rc = cfg_get_uint(x, s, "request_timeout", "metrics.request_timeout", 1, 3600,
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
	p = cfg_dup_str(x, v);
	if (p == NULL)
		return -ENOMEM;
	free(x->c->metrics_listen);
	x->c->metrics_listen = p;
	return 0;
}

int
cfg_parse_conntrack(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = cfg_keys_conntrack;
	const char *const *tkeys = cfg_keys_conntrack_timeouts;
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
		rc = cfg_get_uint(x, s, "max_entries", "conntrack.max_entries", 1, 1u << 26,
		                  &x->c->ct.max_entries);
	if (rc == 0)
		rc = cfg_get_uint(x, s, "max_fragments", "conntrack.max_fragments", 1, 1u << 22,
		                  &x->c->ct.max_frags);
	if (rc == 0)
		rc = cfg_get_bool(x, s, "tcp_pickup", "conntrack.tcp_pickup", &x->c->ct.tcp_pickup);
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
		rc = cfg_get_uint(x, t, tv[i].key, what, 1, 7 * 86400, &v);
		*tv[i].v = v;
	}
	return rc;
}
