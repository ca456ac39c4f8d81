/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `identity.*` commands: the identities the gateway knows (static and
 * synced), with their labels, cluster and named ports.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

struct id_walk {
	const struct cluster_names *cn;
	const char *cluster; /* filter, or NULL */
	json_t *list;
	uint64_t limit, total;
};

static int
id_walk_fn(const struct mg_identity *ident, void *arg)
{
	struct id_walk *w = arg;

	if (w->cluster != NULL) {
		const char *name = cmd_cluster_name(w->cn, ident->cluster_id);

		if (name == NULL || strcmp(name, w->cluster) != 0)
			return 0;
	}
	/* the table walks in hash order: keep the lowest ids, as the sorted list would */
	w->total++;
	return json_array_append_new(w->list, cmd_identity_json(w->cn, ident)) == 0 ? 0 : -ENOMEM;
}

static int
by_id(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "id"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "id"));

	return x < y ? -1 : x > y;
}

/* Sort a JSON array in place with @p cmp over its elements. */
static int
json_sort(json_t *a, int (*cmp)(const void *, const void *))
{
	size_t n = json_array_size(a);
	json_t **v = calloc(n ? n : 1, sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(a, i));
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp);
	json_array_clear(a);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, v[i]);
	free(v);
	return 0;
}

static int
cmd_identity_list(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
                  struct mg_error *err)
{
	struct daemon *d = arg;
	struct cluster_names cn;
	struct id_walk w = {.cn = &cn, .list = json_array()};
	int rc;

	(void)conn;
	if ((rc = cmd_arg_str(args, "cluster", &w.cluster, err)) < 0 ||
	    (rc = cmd_arg_u64(args, "limit", LIST_LIMIT_DEFAULT, &w.limit, err)) < 0)
		goto out;
	if (w.limit == 0 || w.limit > LIST_LIMIT_MAX) {
		rc = cmd_fail(err, -EINVAL, "limit: 1 to %u", LIST_LIMIT_MAX);
		goto out;
	}
	if (w.list == NULL)
		return -ENOMEM;
	cmd_cluster_names_load(d, &cn);
	rc = mg_identity_table_walk(mg_gateway_identities(d->gw), id_walk_fn, &w);
	if (rc == 0)
		rc = json_sort(w.list, by_id);
	while (rc == 0 && json_array_size(w.list) > w.limit)
		json_array_remove(w.list, json_array_size(w.list) - 1);
	if (rc == 0) {
		*result = json_pack("{s:O, s:I, s:b}", "identities", w.list, "total",
		                    (json_int_t)w.total, "truncated", w.total > w.limit);
		rc = *result != NULL ? 0 : -ENOMEM;
	}
out:
	json_decref(w.list);
	return rc;
}

static int
cmd_identity_get(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
                 struct mg_error *err)
{
	struct daemon *d = arg;
	const struct mg_identity *ident;
	uint64_t id = 0;
	int rc;

	(void)conn;
	if ((rc = cmd_arg_u64(args, "id", UINT64_MAX, &id, err)) < 0)
		return rc;
	if (id == UINT64_MAX || id > UINT32_MAX)
		return cmd_fail(err, -EINVAL, "id: an identity number is required");
	ident = mg_identity_table_get(mg_gateway_identities(d->gw), (uint32_t)id);
	if (ident == NULL)
		return cmd_fail(err, -ENOENT, "no identity %" PRIu64, id);
	{
		struct cluster_names cn;

		cmd_cluster_names_load(d, &cn);
		*result = cmd_identity_json(&cn, ident);
	}
	return *result != NULL ? 0 : -ENOMEM;
}

static const struct mg_ctl_command cmds[] = {
        {"identity.list", "identities known to the gateway", false, cmd_identity_list, NULL},
        {"identity.get", "one identity: labels, cluster, named ports", false, cmd_identity_get,
         NULL},
};

const struct cmd_area cmd_area_identity = {"identity", cmds, MG_ARRAY_SIZE(cmds)};
