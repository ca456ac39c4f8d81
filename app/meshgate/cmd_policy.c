/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `policy.*` commands: the loaded policies and the rules skipped, the
 * distinct selectors with the identities they select, and the trace of a
 * flow on the running state (lib/gateway's trace document, the same one
 * `meshgatectl policy trace --config` prints offline).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static int
policy_walk_fn(const struct mg_policy_info *pi, void *arg)
{
	json_t *list = arg;

	return json_array_append_new(
	               list, json_pack("{s:s, s:s, s:o, s:s, s:s, s:i, s:I}", "kind",
	                               pi->ccnp ? "CiliumClusterwideNetworkPolicy"
	                                        : "CiliumNetworkPolicy",
	                               "name", pi->name, "namespace", cmd_json_str_or_null(pi->ns),
	                               "cluster", pi->cluster, "file", pi->file, "line",
	                               (int)pi->line, "rules", (json_int_t)pi->rules)) == 0
	               ? 0
	               : -ENOMEM;
}

static void
skipped_fn(const struct mg_policy_problem *p, void *arg)
{
	json_array_append_new(arg,
	                      json_pack("{s:s, s:i, s:i, s:s}", "file", p->file, "line",
	                                (int)p->line, "column", (int)p->col, "message", p->msg));
}

static int
cmd_policy_get(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
               struct mg_error *err)
{
	struct daemon *d = arg;
	json_t *pols = json_array(), *skipped = json_array();
	int rc;

	(void)conn;
	(void)args;
	(void)err;
	if (pols == NULL || skipped == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = mg_policy_set_walk(mg_gateway_policy_set(d->gw), policy_walk_fn, pols);
	if (rc == 0) {
		mg_policy_set_warnings(mg_gateway_policy_set(d->gw), skipped_fn, skipped);
		*result = json_pack("{s:I, s:s, s:O, s:O}", "revision",
		                    (json_int_t)daemon_revision(d), "enforcement",
		                    mg_enforcement_name(mg_gateway_config(d->gw)->enforcement),
		                    "policies", pols, "skipped", skipped);
		rc = *result != NULL ? 0 : -ENOMEM;
	}
out:
	json_decref(pols);
	json_decref(skipped);
	return rc;
}

static int
selector_fn(const struct mg_policy_selector_info *si, void *arg)
{
	json_t *ids = json_array();

	for (size_t i = 0; ids != NULL && i < si->n_ids; i++)
		json_array_append_new(ids, json_integer(si->ids[i]));
	return json_array_append_new(arg,
	                             json_pack("{s:s, s:I, s:o}", "selector", si->text, "users",
	                                       (json_int_t)si->users, "identities", ids)) == 0
	               ? 0
	               : -ENOMEM;
}

static int
cmd_policy_selectors(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
                     struct mg_error *err)
{
	struct daemon *d = arg;
	json_t *list = json_array();
	int rc;

	(void)conn;
	(void)args;
	(void)err;
	if (list == NULL)
		return -ENOMEM;
	rc = mg_policy_set_selectors(mg_gateway_policy_set(d->gw), mg_gateway_identities(d->gw),
	                             mg_gateway_config(d->gw)->default_local_cluster, selector_fn,
	                             list);
	if (rc == 0) {
		*result = json_pack("{s:O}", "selectors", list);
		rc = *result != NULL ? 0 : -ENOMEM;
	}
	json_decref(list);
	return rc;
}

static int
cmd_policy_trace(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
                 struct mg_error *err)
{
	struct daemon *d = arg;
	struct mg_policy_params pp;
	struct mg_trace_ctx ctx;
	struct mg_trace_flow flow;
	int rc;

	(void)conn;
	mg_gateway_trace_ctx(d->gw, &ctx, &pp);
	rc = mg_trace_flow_from_json(args, &flow, err->msg, sizeof(err->msg));
	if (rc < 0)
		return rc;
	rc = mg_trace_json(&ctx, &flow, result, err->msg, sizeof(err->msg));
	if (rc == -EPROTO) {
		/* compiled tables and trace disagree: an engine bug, said as such */
		MG_ERR("policy trace: %s", err->msg);
		json_decref(*result);
		*result = NULL;
	}
	return rc;
}

static const struct mg_ctl_command cmds[] = {
        {"policy.get", "loaded policies and the rules skipped", false, cmd_policy_get, NULL},
        {"policy.selectors", "distinct selectors and the identities they select", false,
         cmd_policy_selectors, NULL},
        {"policy.trace", "which rule decides a flow, on the running state", false, cmd_policy_trace,
         NULL},
};

const struct cmd_area cmd_area_policy = {"policy", cmds, MG_ARRAY_SIZE(cmds)};
