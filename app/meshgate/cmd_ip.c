/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `ip.*` commands: the ipcache, listed, or asked what one address
 * resolves to (longest prefix, as the workers resolve it) or what one
 * prefix's entry is.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static json_t *
ip_entry_json(const struct cluster_names *cn, const struct mg_ipcache_entry *e)
{
	char pfx[64];

	mg_ipcache_prefix_str(e, pfx, sizeof(pfx));
	return json_pack("{s:s, s:I, s:i, s:o}", "prefix", pfx, "identity", (json_int_t)e->identity,
	                 "cluster_id", (int)e->cluster_id, "cluster",
	                 cmd_json_str_or_null(cmd_cluster_name(cn, e->cluster_id)));
}

struct ip_walk {
	const struct cluster_names *cn;
	uint8_t family; /* 0: both */
	const char *cluster;
	struct mg_ipcache_entry *v;
	size_t n, cap;
};

static int
ip_walk_fn(const struct mg_ipcache_entry *e, void *arg)
{
	struct ip_walk *w = arg;

	if (w->family != 0 && e->family != w->family)
		return 0;
	if (w->cluster != NULL) {
		const char *name = cmd_cluster_name(w->cn, e->cluster_id);

		if (name == NULL || strcmp(name, w->cluster) != 0)
			return 0;
	}
	if (mg_grow(&w->v, &w->cap, w->n, sizeof(*w->v), 256) < 0)
		return -ENOMEM;
	w->v[w->n++] = *e;
	return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct mg_ipcache_entry *x = a, *y = b;
	int c;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	c = memcmp(x->addr, y->addr, x->family == AF_INET ? 4 : 16);
	if (c != 0)
		return c;
	return x->plen < y->plen ? -1 : x->plen > y->plen;
}

static int
cmd_ip_list(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
            struct mg_error *err)
{
	struct daemon *d = arg;
	struct cluster_names cn;
	struct ip_walk w = {.cn = &cn};
	const char *fam;
	json_t *list = NULL;
	uint64_t limit = 0;
	int rc;

	(void)conn;
	if ((rc = cmd_arg_str(args, "family", &fam, err)) < 0 ||
	    (rc = cmd_arg_str(args, "cluster", &w.cluster, err)) < 0 ||
	    (rc = cmd_arg_u64(args, "limit", LIST_LIMIT_DEFAULT, &limit, err)) < 0)
		return rc;
	if (limit == 0 || limit > LIST_LIMIT_MAX)
		return cmd_fail(err, -EINVAL, "limit: 1 to %u", LIST_LIMIT_MAX);
	if (fam != NULL) {
		if (strcmp(fam, "ipv4") == 0)
			w.family = AF_INET;
		else if (strcmp(fam, "ipv6") == 0)
			w.family = AF_INET6;
		else
			return cmd_fail(err, -EINVAL, "family: ipv4 or ipv6, not %s", fam);
	}
	cmd_cluster_names_load(d, &cn);
	rc = mg_ipcache_walk(mg_gateway_ipcache(d->gw), ip_walk_fn, &w);
	if (rc == 0) {
		if (w.n > 1) /* w.v is NULL for an empty ipcache: qsort's arguments are nonnull */
			qsort(w.v, w.n, sizeof(*w.v), entry_cmp);
		list = json_array();
		for (size_t i = 0; list != NULL && i < w.n && i < limit; i++)
			if (json_array_append_new(list, ip_entry_json(&cn, &w.v[i])) != 0)
				break;
		*result = list ? json_pack("{s:o, s:I, s:b}", "entries", list, "total",
		                           (json_int_t)w.n, "truncated", w.n > limit)
		               : NULL;
		rc = *result != NULL ? 0 : -ENOMEM;
	}
	free(w.v);
	return rc;
}

static int
cmd_ip_get(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
           struct mg_error *err)
{
	struct daemon *d = arg;
	struct mg_ipcache_entry q, e;
	const struct mg_identity *ident;
	struct cluster_names cn;
	char addr[INET6_ADDRSTRLEN];
	const char *ip;
	uint32_t id;
	int rc, plen;

	(void)conn;
	if ((rc = cmd_arg_str(args, "ip", &ip, err)) < 0)
		return rc;
	if (ip == NULL)
		return cmd_fail(err, -EINVAL, "ip: an address or a prefix is required");
	if (mg_ipcache_parse_prefix(ip, &q) < 0)
		return cmd_fail(err, -EINVAL, "ip: not an address or prefix: %s", ip);
	cmd_cluster_names_load(d, &cn);
	if (strchr(ip, '/') != NULL) {
		/* a prefix: exactly that entry */
		if (mg_ipcache_get(mg_gateway_ipcache(d->gw), q.family, q.addr, q.plen, &e) != 0)
			return cmd_fail(err, -ENOENT, "no ipcache entry for %s", ip);
		*result = ip_entry_json(&cn, &e);
		return *result != NULL ? 0 : -ENOMEM;
	}
	/* an address: the longest prefix that holds it, as the workers resolve it */
	inet_ntop(q.family, q.addr, addr, sizeof(addr));
	for (plen = q.family == AF_INET ? 32 : 128; plen >= 0; plen--) {
		struct mg_ipcache_entry t = q;
		unsigned bytes = q.family == AF_INET ? 4 : 16;

		for (unsigned b = 0; b < bytes; b++) {
			int keep = plen - (int)b * 8;

			if (keep <= 0)
				t.addr[b] = 0;
			else if (keep < 8)
				t.addr[b] &= (uint8_t)(0xff00u >> keep);
		}
		if (mg_ipcache_get(mg_gateway_ipcache(d->gw), q.family, t.addr, (uint8_t)plen,
		                   &e) == 0)
			break;
	}
	if (plen >= 0) {
		char pfx[64];

		id = e.identity;
		mg_ipcache_prefix_str(&e, pfx, sizeof(pfx));
		*result = json_pack("{s:s, s:s, s:I, s:o}", "ip", addr, "prefix", pfx, "identity",
		                    (json_int_t)id, "cluster",
		                    cmd_json_str_or_null(cmd_cluster_name(&cn, e.cluster_id)));
	} else {
		/* not in the ipcache: world, split by family unless ipcache.split_world is off */
		id = mg_gateway_config(d->gw)->split_world ? (q.family == AF_INET ? 9 : 10) : 2;
		*result = json_pack("{s:s, s:n, s:I, s:n}", "ip", addr, "prefix", "identity",
		                    (json_int_t)id, "cluster");
	}
	if (*result == NULL)
		return -ENOMEM;
	ident = mg_identity_table_get(mg_gateway_identities(d->gw), id);
	json_object_set_new(*result, "labels",
	                    ident != NULL ? cmd_labels_json(&ident->labels) : json_array());
	return 0;
}

static const struct mg_ctl_command cmds[] = {
        {"ip.list", "ipcache entries", false, cmd_ip_list, NULL},
        {"ip.get", "the identity an address resolves to, or one prefix's entry", false, cmd_ip_get,
         NULL},
};

const struct cmd_area cmd_area_ip = {"ip", cmds, MG_ARRAY_SIZE(cmds)};
