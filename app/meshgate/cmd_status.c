/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `status` command: the daemon at a glance (version, uptime, ports and
 * workers with their counters, policy revision, reloads, tables, sync,
 * memory, the control socket's and the monitor's own figures).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>
#ifdef MG_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "commands.h"

static json_t *
ports_json(const struct daemon *d, const struct mg_dp_counters *c)
{
	const struct mg_config *cfg = mg_gateway_config(d->gw);
	json_t *a = json_array();

	for (unsigned i = 0; a != NULL && i < mg_datapath_nb_ports(d->dp); i++) {
		struct mg_dp_port_hw hw;

		(void)mg_datapath_port_hw(d->dp, i, &hw);
		json_array_append_new(
		        a,
		        json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		                  "name", mg_datapath_port_name(d->dp, i), "device",
		                  cfg->ports[i].device, "peer", cfg->ports[i].peer, "rx_packets",
		                  (json_int_t)c->rx_pkts[i], "rx_bytes", (json_int_t)c->rx_bytes[i],
		                  "tx_packets", (json_int_t)c->tx_pkts[i], "tx_bytes",
		                  (json_int_t)c->tx_bytes[i], "dropped",
		                  (json_int_t)c->port_drops[i], "rx_missed",
		                  (json_int_t)hw.rx_missed, "rx_nombuf", (json_int_t)hw.rx_nombuf,
		                  "rx_errors", (json_int_t)hw.rx_errors, "tx_errors",
		                  (json_int_t)hw.tx_errors));
	}
	return a;
}

static json_t *
workers_json(const struct daemon *d)
{
	json_t *a = json_array();

	pthread_mutex_lock((pthread_mutex_t *)&d->snap_lock);
	for (unsigned i = 0; a != NULL && i < d->snap->n_workers; i++) {
		const struct mg_metrics_worker *w = &d->snap->workers[i];

		json_array_append_new(a, json_pack("{s:i, s:I, s:I, s:f}", "lcore", (int)w->lcore,
		                                   "loops", (json_int_t)w->loops, "busy_loops",
		                                   (json_int_t)w->busy_loops, "busy_ratio",
		                                   w->busy_ratio));
	}
	pthread_mutex_unlock((pthread_mutex_t *)&d->snap_lock);
	return a;
}

static json_t *
kv_summary_json(const struct daemon *d)
{
	struct mg_kv_sync_stats ks;
	size_t n, synced = 0, stale = 0, removed = 0;
	bool connected = false;

	if (mg_gateway_sync(d->gw) == NULL)
		return json_null();
	n = mg_kv_sync_n_clusters(mg_gateway_sync(d->gw));
	for (size_t i = 0; i < n; i++) {
		if (mg_kv_sync_stats(mg_gateway_sync(d->gw), i, &ks) != 0)
			continue;
		synced += ks.synced;
		stale += ks.stale;
		removed += ks.removed;
		connected = ks.connected;
	}
	return json_pack("{s:I, s:I, s:I, s:I, s:b}", "clusters", (json_int_t)n, "synced",
	                 (json_int_t)synced, "stale", (json_int_t)stale, "removed",
	                 (json_int_t)removed, "connected", connected);
}

/* Memory of the big tables, and the control-plane allocator's figures. */
static json_t *
memory_json(const struct daemon *d)
{
	json_t *m =
	        json_pack("{s:I, s:I, s:I}", "ipcache_bytes",
	                  (json_int_t)mg_ipcache_memory(mg_gateway_ipcache(d->gw)), "policy_bytes",
	                  (json_int_t)mg_policy_memory(mg_gateway_policy(d->gw)), "conntrack_bytes",
	                  (json_int_t)mg_datapath_ct_memory(d->dp));
#ifdef MG_HAVE_JEMALLOC
	uint64_t epoch = 1;
	size_t allocated = 0, resident = 0, sz = sizeof(size_t);

	/* jemalloc's statistics are refreshed by writing its epoch */
	if (m != NULL && mallctl("epoch", NULL, NULL, &epoch, sizeof(epoch)) == 0 &&
	    mallctl("stats.allocated", &allocated, &sz, NULL, 0) == 0 &&
	    mallctl("stats.resident", &resident, &sz, NULL, 0) == 0) {
		json_object_set_new(m, "allocator", json_string("jemalloc"));
		json_object_set_new(m, "allocated_bytes", json_integer((json_int_t)allocated));
		json_object_set_new(m, "resident_bytes", json_integer((json_int_t)resident));
	}
#endif
	return m;
}

/* The control socket's counters, and the monitor's: what clients cost. */
static json_t *
control_json(const struct daemon *d, struct mg_ctl_stats *st)
{
	mg_ctl_server_stats(d->ctl, st);
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "clients",
	                 (json_int_t)st->clients, "accepted", (json_int_t)st->accepted, "requests",
	                 (json_int_t)st->requests, "errors", (json_int_t)st->errors, "denied",
	                 (json_int_t)st->denied, "refused_busy", (json_int_t)st->refused_busy,
	                 "closed_idle", (json_int_t)st->closed_idle, "closed_slow",
	                 (json_int_t)st->closed_slow, "closed_oversize",
	                 (json_int_t)st->closed_oversize, "closed_stuck",
	                 (json_int_t)st->closed_stuck);
}

static json_t *
monitor_json(const struct daemon *d, const struct mg_ctl_stats *st)
{
	return json_pack("{s:I, s:I, s:I}", "events", (json_int_t)st->events, "dropped",
	                 (json_int_t)st->events_dropped, "ring_lost",
	                 (json_int_t)mg_datapath_monitor_lost(d->dp));
}

static int
cmd_status(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
           struct mg_error *err)
{
	struct daemon *d = arg;
	const struct mg_config *cfg = mg_gateway_config(d->gw);
	struct mg_gateway_stats gs;
	struct mg_dp_counters c;
	struct mg_ct_stats ct;

	(void)conn;
	(void)args;
	(void)err;
	mg_datapath_counters(d->dp, &c);
	mg_datapath_ct_stats(d->dp, &ct);
	mg_gateway_stats(d->gw, &gs);
	*result = json_pack(
	        "{s:s, s:i, s:I, s:s, s:{s:s, s:i}, s:o, s:o, s:{s:I, s:I, s:I, s:I}, "
	        "s:{s:I, s:I, s:o, s:b}, s:{s:I, s:I}, s:I, s:{s:I, s:I, s:I}, s:o, s:b}",
	        "version", MG_VERSION, "pid", (int)getpid(), "uptime_s",
	        (json_int_t)((mg_time_ns() - d->start_ns) / 1000000000ull), "config_file",
	        cfg->file, "cluster", "name", cfg->cluster_name, "id", (int)cfg->cluster_id,
	        "ports", ports_json(d, &c), "workers", workers_json(d), "policy", "revision",
	        (json_int_t)gs.revision, "policies",
	        (json_int_t)mg_policy_set_count(mg_gateway_policy_set(d->gw)), "rules",
	        (json_int_t)mg_policy_set_rules(mg_gateway_policy_set(d->gw)), "skipped",
	        (json_int_t)mg_policy_set_warnings(mg_gateway_policy_set(d->gw), NULL, NULL),
	        "reloads", "ok", (json_int_t)gs.reloads_ok, "failed", (json_int_t)gs.reloads_failed,
	        "last_error", cmd_json_str_or_null(gs.last_error[0] ? gs.last_error : NULL),
	        "running", mg_gateway_reload_busy(d->gw), "ipcache", "ipv4",
	        (json_int_t)mg_ipcache_count(mg_gateway_ipcache(d->gw), AF_INET), "ipv6",
	        (json_int_t)mg_ipcache_count(mg_gateway_ipcache(d->gw), AF_INET6), "identities",
	        (json_int_t)mg_identity_table_count(mg_gateway_identities(d->gw)), "conntrack",
	        "entries", (json_int_t)ct.entries, "created", (json_int_t)ct.created, "expired",
	        (json_int_t)ct.expired, "kvstore", kv_summary_json(d), "ready", true);
	if (*result != NULL) {
		struct mg_ctl_stats st;

		json_object_set_new(*result, "memory", memory_json(d));
		json_object_set_new(*result, "control", control_json(d, &st));
		json_object_set_new(*result, "monitor", monitor_json(d, &st));
	}
	return *result != NULL ? 0 : -ENOMEM;
}

static const struct mg_ctl_command cmds[] = {
        {"status", "version, uptime, ports, workers, sync state, policy revision", false,
         cmd_status, NULL},
};

const struct cmd_area cmd_area_status = {"status", cmds, MG_ARRAY_SIZE(cmds)};
