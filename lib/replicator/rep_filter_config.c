/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `filter:` section of meshgate-replicator's config: namespaces to
 * include or exclude, and the policy sources the gateways enforce. Every
 * mistake is an error at its file:line:column rather than a filter that
 * silently keeps or drops the wrong identities: a misspelt key, a
 * namespace name Kubernetes could not have, a namespace both included and
 * excluded, a policy part with no sources (which would drop everything).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rep_filter.h"

#define NS_MAX 63      /* a namespace is an RFC 1123 label */
#define CLUSTER_MAX 63 /* so is a cluster name (as the gateway's config checks it) */
#define WHAT_LEN 96

static const char *const keys_filter[] = {"namespaces", "policy", NULL};
static const char *const keys_namespaces[] = {"include", "exclude", NULL};
static const char *const keys_policy[] = {"default_local_cluster", "sources", NULL};
static const char *const keys_source[] = {"cluster", "path", NULL};

/* An RFC 1123 label of at most @p max characters: a-z, 0-9 and inner '-'. */
static bool
dns_label(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');

		if (!alnum && !(s[i] == '-' && i > 0 && i < n - 1))
			return false;
	}
	return true;
}

static int
oom(struct mg_error *err)
{
	mg_error_set(err, NULL, 0, 0, "out of memory");
	return -ENOMEM;
}

static bool
listed(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* filter.namespaces.<key>: a list of distinct namespace names. */
static int
parse_ns_list(const struct mg_yaml_node *ns, const char *key, char ***out, size_t *count,
              struct mg_error *err)
{
	const struct mg_yaml_node *n = mg_yaml_get(ns, key);
	char what[WHAT_LEN];
	int rc;

	snprintf(what, sizeof(what), "filter.namespaces.%s", key);
	rc = mg_yaml_seq(n, what, true, err);
	if (rc || n == NULL || n->type != MG_YAML_SEQ)
		return rc;
	if (n->n == 0 && strcmp(key, "include") == 0)
		return mg_yaml_error(err, n,
		                     "%s: empty list (it would include no namespace; leave it out "
		                     "to include every namespace)",
		                     what);
	*out = calloc(n->n ? n->n : 1, sizeof(**out));
	if (*out == NULL)
		return oom(err);
	for (size_t i = 0; i < n->n; i++) {
		const char *s;

		snprintf(what, sizeof(what), "filter.namespaces.%s[%zu]", key, i);
		rc = mg_yaml_str(n->items[i], what, &s, err);
		if (rc)
			return rc;
		if (!dns_label(s, NS_MAX))
			return mg_yaml_error(
			        err, n->items[i],
			        "%s: '%s' is not a namespace name (lower-case letters, "
			        "digits and '-', at most %d characters, not starting or "
			        "ending with '-')",
			        what, s, NS_MAX);
		if (listed(*out, *count, s))
			return mg_yaml_error(err, n->items[i], "%s: namespace '%s' listed twice",
			                     what, s);
		(*out)[i] = strdup(s);
		if ((*out)[i] == NULL)
			return oom(err);
		*count = i + 1;
	}
	return 0;
}

static int
parse_namespaces(const struct mg_yaml_node *ns, struct mg_rep_filter_config *c,
                 struct mg_error *err)
{
	const struct mg_yaml_node *ex;
	int rc;

	if (mg_yaml_is_null(ns))
		return 0;
	rc = mg_yaml_check_map(ns, "filter.namespaces", keys_namespaces, err);
	if (rc == 0)
		rc = parse_ns_list(ns, "include", &c->ns_include, &c->n_ns_include, err);
	if (rc == 0)
		rc = parse_ns_list(ns, "exclude", &c->ns_exclude, &c->n_ns_exclude, err);
	if (rc)
		return rc;
	ex = mg_yaml_get(ns, "exclude");
	for (size_t i = 0; i < c->n_ns_exclude; i++)
		if (listed(c->ns_include, c->n_ns_include, c->ns_exclude[i]))
			return mg_yaml_error(err, ex->items[i],
			                     "filter.namespaces.exclude[%zu]: namespace '%s' is "
			                     "also included",
			                     i, c->ns_exclude[i]);
	return 0;
}

/* @p rel against @p dir, unless absolute; "./" prefixes dropped. */
static char *
resolve(const char *dir, const char *rel)
{
	size_t dl, rl;
	char *p;

	if (rel[0] == '/' || dir == NULL || dir[0] == '\0')
		return strdup(rel);
	while (rel[0] == '.' && rel[1] == '/')
		rel += 2;
	dl = strlen(dir);
	rl = strlen(rel);
	p = malloc(dl + rl + 2);
	if (p == NULL)
		return NULL;
	memcpy(p, dir, dl);
	if (dir[dl - 1] != '/')
		p[dl++] = '/';
	memcpy(p + dl, rel, rl + 1);
	return p;
}

static int
parse_source(const struct mg_yaml_node *it, size_t i, const char *base_dir,
             struct mg_rep_filter_source *src, struct mg_error *err)
{
	const struct mg_yaml_node *cl, *path;
	char what[WHAT_LEN];
	const char *s;
	int rc;

	snprintf(what, sizeof(what), "filter.policy.sources[%zu]", i);
	rc = mg_yaml_check_map(it, what, keys_source, err);
	if (rc)
		return rc;
	cl = mg_yaml_get(it, "cluster");
	path = mg_yaml_get(it, "path");
	if (cl == NULL || path == NULL)
		return mg_yaml_error(err, it, "%s: missing required key '%s'", what,
		                     cl == NULL ? "cluster" : "path");
	snprintf(what, sizeof(what), "filter.policy.sources[%zu].cluster", i);
	rc = mg_yaml_str(cl, what, &s, err);
	if (rc)
		return rc;
	if (!dns_label(s, CLUSTER_MAX))
		return mg_yaml_error(err, cl,
		                     "%s: '%s' is not a valid cluster name (lower-case letters, "
		                     "digits and '-', at most %d characters, not starting or "
		                     "ending with '-')",
		                     what, s, CLUSTER_MAX);
	src->cluster = strdup(s);
	if (src->cluster == NULL)
		return oom(err);
	snprintf(what, sizeof(what), "filter.policy.sources[%zu].path", i);
	rc = mg_yaml_str(path, what, &s, err);
	if (rc)
		return rc;
	if (s[0] == '\0')
		return mg_yaml_error(err, path, "%s: empty path", what);
	src->path = resolve(base_dir, s);
	return src->path == NULL ? oom(err) : 0;
}

static int
parse_policy(const struct mg_yaml_node *pol, const char *base_dir, struct mg_rep_filter_config *c,
             struct mg_error *err)
{
	const struct mg_yaml_node *n;
	int rc;

	if (mg_yaml_is_null(pol))
		return 0;
	rc = mg_yaml_check_map(pol, "filter.policy", keys_policy, err);
	if (rc)
		return rc;
	n = mg_yaml_get(pol, "default_local_cluster");
	if (n != NULL) {
		rc = mg_yaml_bool(n, "filter.policy.default_local_cluster",
		                  &c->default_local_cluster, err);
		if (rc)
			return rc;
	}
	n = mg_yaml_get(pol, "sources");
	if (n == NULL)
		return mg_yaml_error(err, pol, "filter.policy: missing required key 'sources'");
	rc = mg_yaml_seq(n, "filter.policy.sources", false, err);
	if (rc)
		return rc;
	if (n->n == 0)
		return mg_yaml_error(err, n,
		                     "filter.policy.sources: empty list (the filter would drop "
		                     "every identity; leave `policy` out to filter by namespace "
		                     "only)");
	c->sources = calloc(n->n, sizeof(*c->sources));
	if (c->sources == NULL)
		return oom(err);
	for (size_t i = 0; i < n->n; i++) {
		c->n_sources = i + 1;
		rc = parse_source(n->items[i], i, base_dir, &c->sources[i], err);
		if (rc)
			return rc;
	}
	return 0;
}

int
mg_rep_filter_config_parse(const struct mg_yaml_node *map, const char *base_dir,
                           struct mg_rep_filter_config *out, struct mg_error *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	out->default_local_cluster = true;
	if (mg_yaml_is_null(map))
		return 0;
	rc = mg_yaml_check_map(map, "filter", keys_filter, err);
	if (rc == 0)
		rc = parse_namespaces(mg_yaml_get(map, "namespaces"), out, err);
	if (rc == 0)
		rc = parse_policy(mg_yaml_get(map, "policy"), base_dir, out, err);
	if (rc)
		mg_rep_filter_config_clear(out);
	return rc;
}

static void
free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
mg_rep_filter_config_clear(struct mg_rep_filter_config *c)
{
	if (c == NULL)
		return;
	free_list(c->ns_include, c->n_ns_include);
	free_list(c->ns_exclude, c->n_ns_exclude);
	for (size_t i = 0; i < c->n_sources; i++) {
		free(c->sources[i].cluster);
		free(c->sources[i].path);
	}
	free(c->sources);
	memset(c, 0, sizeof(*c));
	c->default_local_cluster = true;
}
