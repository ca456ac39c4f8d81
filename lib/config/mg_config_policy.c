/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The config sections that decide who is who and what is allowed:
 * `cluster` (name, id, and the cluster mode that bounds the id),
 * `policy` (enforcement and the policy sources, each of a cluster),
 * `identities` (CiliumIdentity files) and `ipcache` (CiliumEndpoint files,
 * split_world and literal prefix entries). Cluster names are checked as
 * Cilium checks them; a prefix entry with bits set past its length is
 * refused rather than silently masked.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config_priv.h"

const char *const cfg_keys_cluster[] = {"name", "id", "max_connected_clusters", NULL};
const char *const cfg_keys_policy_sources[] = {"cluster", "path", NULL};
const char *const cfg_keys_policy[] = {"enforcement", "default_local_cluster", "sources", NULL};
const char *const cfg_keys_identities[] = {"files", NULL};
const char *const cfg_keys_ipcache_entries[] = {"prefix", "identity", NULL};
const char *const cfg_keys_ipcache[] = {"files", "entries", "split_world", NULL};

static int
get_cluster_name(struct ctx *x, const struct mg_yaml_node *n, const char *what, char *out)
{
	const char *s;
	int rc;

	rc = mg_yaml_str(n, what, &s, x->err);
	if (rc)
		return rc;
	if (!cfg_valid_dns_label(s))
		return mg_yaml_error(x->err, n,
		                     "%s: '%s' is not a valid cluster name (lower-case letters, "
		                     "digits and '-', at most %d characters, not starting or "
		                     "ending with '-')",
		                     what, s, MG_CONFIG_NAME_MAX - 1);
	strcpy(out, s);
	return 0;
}

int
cfg_parse_cluster(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = cfg_keys_cluster;
	const struct mg_yaml_node *cl = mg_yaml_get(root, "cluster"), *n;
	struct mg_config *c = x->c;
	uint64_t v;
	int rc;

	if (cl == NULL)
		return cfg_missing(x, root, "config", "cluster");
	rc = mg_yaml_check_map(cl, "cluster", keys, x->err);
	if (rc)
		return rc;

	n = mg_yaml_get(cl, "name");
	if (n == NULL)
		return cfg_missing(x, cl, "cluster", "name");
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
		return cfg_missing(x, cl, "cluster", "id");
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
	const char *const *keys = cfg_keys_policy_sources;
	struct mg_config *c = x->c;
	char what[64];
	size_t i;
	int rc;

	rc = mg_yaml_seq(n, "policy.sources", true, x->err);
	if (rc || n == NULL || n->type != MG_YAML_SEQ || n->n == 0)
		return rc;
	c->sources = calloc(n->n, sizeof(*c->sources));
	if (c->sources == NULL)
		return cfg_oom(x);
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
			return cfg_missing(x, item, what, "path");
		}
		snprintf(what, sizeof(what), "policy.sources[%zu].path", i);
		rc = mg_yaml_str(v, what, &s, x->err);
		if (rc)
			return rc;
		if (s[0] == '\0')
			return mg_yaml_error(x->err, v, "%s: empty path", what);
		src->path = cfg_resolve(x, s);
		if (src->path == NULL)
			return -ENOMEM;
		c->n_sources = i + 1;
	}
	return 0;
}

int
cfg_parse_policy(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = cfg_keys_policy;
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
	rc = cfg_get_bool(x, p, "default_local_cluster", "policy.default_local_cluster",
	                  &x->c->default_local_cluster);
	if (rc)
		return rc;
	return parse_sources(x, mg_yaml_get(p, "sources"));
}

int
cfg_parse_identities(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = cfg_keys_identities;
	const struct mg_yaml_node *s = mg_yaml_get(root, "identities");
	int rc;

	if (s == NULL || mg_yaml_is_null(s))
		return 0;
	rc = mg_yaml_check_map(s, "identities", keys, x->err);
	if (rc)
		return rc;
	return cfg_get_str_list(x, mg_yaml_get(s, "files"), "identities.files", true, true,
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
	const char *const *keys = cfg_keys_ipcache_entries;
	struct mg_config *c = x->c;
	char what[64];
	size_t i, j;
	int rc;

	rc = mg_yaml_seq(n, "ipcache.entries", true, x->err);
	if (rc || n == NULL || n->type != MG_YAML_SEQ || n->n == 0)
		return rc;
	c->entries = calloc(n->n, sizeof(*c->entries));
	if (c->entries == NULL)
		return cfg_oom(x);
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
			return cfg_missing(x, item, what, "prefix");
		if (mg_yaml_get(item, "identity") == NULL)
			return cfg_missing(x, item, what, "identity");
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

int
cfg_parse_ipcache(struct ctx *x, const struct mg_yaml_node *root)
{
	const char *const *keys = cfg_keys_ipcache;
	const struct mg_yaml_node *s = mg_yaml_get(root, "ipcache");
	int rc;

	if (s == NULL || mg_yaml_is_null(s))
		return 0;
	rc = mg_yaml_check_map(s, "ipcache", keys, x->err);
	if (rc)
		return rc;
	rc = cfg_get_str_list(x, mg_yaml_get(s, "files"), "ipcache.files", true, true,
	                      &x->c->n_endpoint_files, &x->c->endpoint_files);
	if (rc)
		return rc;
	rc = cfg_get_bool(x, s, "split_world", "ipcache.split_world", &x->c->split_world);
	if (rc)
		return rc;
	return parse_entries(x, mg_yaml_get(s, "entries"));
}
