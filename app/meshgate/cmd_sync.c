/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `sync.*` commands: the Redis sync's state per cluster (synced, stale
 * since when and why, removal due, counters), and a full resync on request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "commands.h"

/* A Unix time as RFC 3339 (UTC), or JSON null for 0. */
static json_t *
time_json(uint64_t t)
{
	char buf[32];
	struct tm tm;
	time_t sec = (time_t)t;

	if (t == 0 || gmtime_r(&sec, &tm) == NULL)
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

/* One word for what the gateway does with a cluster now. */
static const char *
kv_state_word(const struct mg_kv_sync_stats *ks)
{
	if (ks->removed)
		return "removed";
	if (ks->removing)
		return "removing";
	if (ks->stale)
		return "stale";
	return ks->synced ? "synced" : "not-synced";
}

static json_t *
kv_cluster_json(const struct mg_kv_sync_stats *ks)
{
	json_t *resyncs = json_object(), *o;
	uint64_t now = (uint64_t)time(NULL);

	for (int c = 0; resyncs != NULL && c < MG_KV_RESYNC_N; c++)
		json_object_set_new(resyncs, mg_kv_resync_cause_name(c),
		                    json_integer((json_int_t)ks->resyncs[c]));
	o = json_pack("{s:s, s:i, s:s, s:b, s:b, s:b, s:b, s:b, s:s?, s:o, s:I, s:b, s:o, s:b, "
	              "s:s, s:s, s:I, s:I, s:I, s:o, s:I, s:I}",
	              "name", ks->name, "cluster_id", (int)ks->cluster_id, "state",
	              kv_state_word(ks), "connected", ks->connected, "present", ks->present,
	              "synced", ks->synced, "refused", ks->refused, "stale", ks->stale,
	              "stale_reason", ks->stale ? mg_kv_stale_reason_name(ks->stale_reason) : NULL,
	              "stale_since", time_json(ks->stale_since), "stale_seconds",
	              (json_int_t)(ks->stale && now > ks->stale_since ? now - ks->stale_since : 0),
	              "removing", ks->removing, "removal_at", time_json(ks->removal_at), "removed",
	              ks->removed, "why", ks->why, "last_id", ks->last_id, "entries",
	              (json_int_t)ks->entries, "events", (json_int_t)ks->events, "lag_ms",
	              (json_int_t)ks->lag_ms, "resyncs", resyncs, "full_syncs",
	              (json_int_t)ks->full_syncs, "removals", (json_int_t)ks->removals);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "rejected",
	                    json_pack("{s:I, s:I, s:I, s:I}", "range",
	                              (json_int_t)ks->rejected_range, "parse",
	                              (json_int_t)ks->rejected_parse, "cluster",
	                              (json_int_t)ks->rejected_cluster, "heartbeat",
	                              (json_int_t)ks->heartbeat_invalid));
	json_object_set_new(o, "skipped",
	                    json_pack("{s:I}", "no_identity", (json_int_t)ks->skipped_no_identity));
	json_object_set_new(o, "named_ports_dropped",
	                    json_integer((json_int_t)ks->named_ports_dropped));
	json_object_set_new(o, "heartbeat", time_json(ks->heartbeat_at));
	json_object_set_new(o, "rejected_range", json_integer((json_int_t)ks->rejected_range));
	json_object_set_new(o, "rejected_parse", json_integer((json_int_t)ks->rejected_parse));
	json_object_set_new(o, "conflicts", json_integer((json_int_t)ks->conflicts));
	json_object_set_new(o, "named_port_conflicts",
	                    json_integer((json_int_t)ks->named_port_conflicts));
	json_object_set_new(o, "mass_delete_refusals",
	                    json_integer((json_int_t)ks->mass_delete_refusals));
	json_object_set_new(o, "disconnects", json_integer((json_int_t)ks->disconnects));
	return o;
}

static int
cmd_sync_status(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
                struct mg_error *err)
{
	struct daemon *d = arg;
	json_t *list = json_array();

	(void)conn;
	(void)args;
	(void)err;
	if (list == NULL)
		return -ENOMEM;
	for (size_t i = 0;
	     mg_gateway_sync(d->gw) != NULL && i < mg_kv_sync_n_clusters(mg_gateway_sync(d->gw));
	     i++) {
		struct mg_kv_sync_stats ks;

		if (mg_kv_sync_stats(mg_gateway_sync(d->gw), i, &ks) == 0)
			json_array_append_new(list, kv_cluster_json(&ks));
	}
	*result = json_pack("{s:b, s:o}", "configured", mg_gateway_sync(d->gw) != NULL, "clusters",
	                    list);
	return *result != NULL ? 0 : -ENOMEM;
}

static int
cmd_sync_resync(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
                struct mg_error *err)
{
	struct daemon *d = arg;

	(void)conn;
	(void)args;
	if (mg_gateway_request_resync(d->gw) < 0)
		return cmd_fail(err, -ENOTSUP,
		                "no kvstore section in the config: nothing to resync");
	MG_INFO("kvstore: full resync requested over the control socket");
	*result = json_pack("{s:b}", "requested", true);
	return *result != NULL ? 0 : -ENOMEM;
}

static const struct mg_ctl_command cmds[] = {
        {"sync.status", "Redis sync state per cluster", false, cmd_sync_status, NULL},
        {"sync.resync", "full resync of every cluster", true, cmd_sync_resync, NULL},
};

const struct cmd_area cmd_area_sync = {"sync", cmds, MG_ARRAY_SIZE(cmds)};
