/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `ct.*` commands: the workers' conntrack entries, listed or flushed.
 * The workers serve them through their mailboxes (bounded waits).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static int
cmd_ct_list(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
            struct mg_error *err)
{
	struct daemon *d = arg;
	struct mg_dp_ct_entry *v;
	uint64_t limit = 0, total = 0;
	size_t n = 0;
	json_t *list;
	int rc;

	(void)conn;
	if ((rc = cmd_arg_u64(args, "limit", 1000, &limit, err)) < 0)
		return rc;
	if (limit == 0 || limit > 1000000)
		return cmd_fail(err, -EINVAL, "limit: 1 to 1000000");
	v = calloc(limit, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	rc = mg_datapath_ct_list(d->dp, v, (size_t)limit, &n, &total);
	if (rc < 0) {
		free(v);
		return cmd_fail(err, rc, "the workers did not answer: %s", strerror(-rc));
	}
	list = json_array();
	for (size_t i = 0; list != NULL && i < n; i++) {
		const struct mg_dp_ct_entry *e = &v[i];
		char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

		cmd_addr_str(e->key.family, e->key.a, a, sizeof(a));
		cmd_addr_str(e->key.family, e->key.b, b, sizeof(b));
		json_array_append_new(
		        list,
		        json_pack("{s:i, s:s, s:s, s:s, s:i, s:s, s:i, s:s, s:I, s:s}", "worker",
		                  (int)e->worker, "family",
		                  e->key.family == AF_INET ? "ipv4" : "ipv6", "proto",
		                  cmd_proto_name(e->key.proto), "a", a, "pa", (int)e->key.pa, "b",
		                  b, "pb", (int)e->key.pb, "state", mg_ct_state_name(e->state),
		                  "expires_in_ms", (json_int_t)e->remaining_ms, "opened_by",
		                  e->orig_b ? "b" : "a"));
	}
	free(v);
	*result = json_pack("{s:o, s:I, s:b}", "entries", list ? list : json_array(), "total",
	                    (json_int_t)total, "truncated", total > n);
	return *result != NULL ? 0 : -ENOMEM;
}

static int
cmd_ct_flush(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
             struct mg_error *err)
{
	struct daemon *d = arg;
	uint64_t flushed = 0;
	int rc;

	(void)conn;
	(void)args;
	rc = mg_datapath_ct_flush(d->dp, &flushed);
	if (rc < 0)
		return cmd_fail(err, rc, "the workers did not answer: %s", strerror(-rc));
	MG_INFO("conntrack: %" PRIu64 " entries flushed over the control socket", flushed);
	*result = json_pack("{s:I}", "flushed", (json_int_t)flushed);
	return *result != NULL ? 0 : -ENOMEM;
}

static const struct mg_ctl_command cmds[] = {
        {"ct.list", "conntrack entries of every worker", false, cmd_ct_list, NULL},
        {"ct.flush", "remove every conntrack entry", true, cmd_ct_flush, NULL},
};

const struct cmd_area cmd_area_ct = {"ct", cmds, MG_ARRAY_SIZE(cmds)};
