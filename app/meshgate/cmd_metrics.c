/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The counters: the snapshot that the metrics endpoint and DPDK telemetry
 * read from their own threads (its control-side part refreshed here, on
 * the control thread; the workers' counters read live), and the `metrics`
 * command, which renders the same figures over the control socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

/* Fill @p out: the control-side snapshot plus the workers' live counters. */
int
collect(void *arg, struct mg_metrics_snapshot *out)
{
	struct daemon *d = arg;
	struct mg_dp_counters c;
	struct mg_ct_stats ct;

	/*
	 * The lock also keeps the data path alive while it is read: telemetry
	 * commands cannot be unregistered, so after control_stop() they get
	 * an error instead of a freed data path.
	 */
	pthread_mutex_lock(&d->snap_lock);
	if (d->closing) {
		pthread_mutex_unlock(&d->snap_lock);
		return -ESHUTDOWN;
	}
	memcpy(out, d->snap, sizeof(*out));
	out->uptime_seconds = (mg_time_ns() - d->start_ns) / 1000000000ull;
	mg_datapath_counters(d->dp, &c);
	/* the port names came with the copy: they are set once, at start */
	mg_metrics_snapshot_set_counters(out, &c, mg_datapath_nb_ports(d->dp));
	for (unsigned i = 0; i < out->n_ports; i++) {
		struct mg_dp_port_hw hw;

		(void)mg_datapath_port_hw(d->dp, i, &hw);
		out->ports[i].rx_missed = hw.rx_missed;
		out->ports[i].rx_nombuf = hw.rx_nombuf;
		out->ports[i].rx_errors = hw.rx_errors;
		out->ports[i].tx_errors = hw.tx_errors;
	}
	mg_datapath_ct_stats(d->dp, &ct);
	mg_metrics_snapshot_set_ct(out, &ct, mg_datapath_ct_memory(d->dp));
	/* the endpoint's own figures, for telemetry and meshgatectl too */
	mg_metrics_snapshot_set_http(out, d->http);
	/* the workers' loop counts live, like every counter; the busy ratio
	 * over the last interval comes from the control thread's refresh */
	for (unsigned i = 0; i < out->n_workers; i++) {
		struct mg_dp_counters wc;

		if (mg_datapath_worker_counters(d->dp, i, NULL, &wc) == 0) {
			out->workers[i].loops = wc.loops;
			out->workers[i].busy_loops = wc.busy_loops;
		}
	}
	pthread_mutex_unlock(&d->snap_lock);
	return 0;
}

struct ids_by_cluster {
	const struct cluster_names *cn;
	struct mg_metrics_snapshot *s;
};

static int
count_identity(const struct mg_identity *ident, void *arg)
{
	struct ids_by_cluster *w = arg;
	struct mg_metrics_snapshot *s = w->s;
	const char *name = cmd_cluster_name(w->cn, ident->cluster_id);
	unsigned i;

	if (name == NULL)
		name = mg_identity_is_reserved(ident->id) ? "reserved" : "local";
	for (i = 0; i < s->n_identity_clusters; i++)
		if (strcmp(s->identities[i].cluster, name) == 0)
			break;
	if (i == s->n_identity_clusters) {
		if (i == MG_METRICS_MAX_CLUSTERS)
			return 0;
		/* names are at most MG_METRICS_NAME_MAX - 1 bytes (config and kvstore limits) */
		snprintf(s->identities[i].cluster, sizeof(s->identities[i].cluster), "%.*s",
		         (int)sizeof(s->identities[i].cluster) - 1, name);
		s->identities[i].count = 0;
		s->n_identity_clusters++;
	}
	s->identities[i].count++;
	return 0;
}

/* Refresh the control-side part of the snapshot (control thread). */
void
snapshot_refresh(struct daemon *d, bool slow)
{
	struct mg_metrics_snapshot *s = d->snap;
	struct mg_gateway_stats gs;
	struct mg_dp_counters wc;

	mg_gateway_stats(d->gw, &gs);
	pthread_mutex_lock(&d->snap_lock);
	snprintf(s->version, sizeof(s->version), "%s", MG_VERSION);
	s->ipcache_ipv4 = mg_ipcache_count(mg_gateway_ipcache(d->gw), AF_INET);
	s->ipcache_ipv6 = mg_ipcache_count(mg_gateway_ipcache(d->gw), AF_INET6);
	s->policy.policies = mg_policy_set_count(mg_gateway_policy_set(d->gw));
	s->policy.rules = mg_policy_set_rules(mg_gateway_policy_set(d->gw));
	s->policy.revision = gs.revision;
	s->policy.reloads_ok = gs.reloads_ok;
	s->policy.reloads_failed = gs.reloads_failed;
	s->n_kvstore = 0;
	for (size_t i = 0;
	     mg_gateway_sync(d->gw) != NULL && i < mg_kv_sync_n_clusters(mg_gateway_sync(d->gw));
	     i++) {
		struct mg_kv_sync_stats ks;

		if (mg_kv_sync_stats(mg_gateway_sync(d->gw), i, &ks) == 0)
			mg_metrics_snapshot_add_kvstore(s, &ks);
	}
	if (d->ctl != NULL) {
		struct mg_ctl_stats cs;

		mg_ctl_server_stats(d->ctl, &cs);
		s->control = (struct mg_metrics_control){
		        .clients = cs.clients,
		        .accepted = cs.accepted,
		        .requests = cs.requests,
		        .errors = cs.errors,
		        .denied = cs.denied,
		        .refused_busy = cs.refused_busy,
		        .closed_idle = cs.closed_idle,
		        .closed_slow = cs.closed_slow,
		        .closed_oversize = cs.closed_oversize,
		        .closed_stuck = cs.closed_stuck,
		        .monitor_events = cs.events,
		        .monitor_dropped = cs.events_dropped,
		};
	}
	s->control.monitor_ring_lost = mg_datapath_monitor_lost(d->dp);
	if (slow) {
		struct cluster_names cn;
		struct ids_by_cluster w = {.cn = &cn, .s = s};

		cmd_cluster_names_load(d, &cn);
		s->n_identity_clusters = 0;
		mg_identity_table_walk(mg_gateway_identities(d->gw), count_identity, &w);
		s->n_workers = 0;
		for (unsigned i = 0;
		     i < mg_datapath_nb_workers(d->dp) && i < MG_METRICS_MAX_WORKERS; i++) {
			struct mg_metrics_worker *w2 = &s->workers[i];

			if (mg_datapath_worker_counters(d->dp, i, &w2->lcore, &wc) != 0)
				break;
			mg_metrics_worker_update(w2, wc.loops, wc.busy_loops);
			s->n_workers = i + 1;
		}
	}
	pthread_mutex_unlock(&d->snap_lock);
}

static int
cmd_metrics(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
            struct mg_error *err)
{
	struct daemon *d = arg;
	struct mg_metrics_snapshot *s;
	const char *format;
	int rc;

	(void)conn;
	if ((rc = cmd_arg_str(args, "format", &format, err)) < 0)
		return rc;
	if (format != NULL && strcmp(format, "prometheus") != 0 && strcmp(format, "json") != 0)
		return cmd_fail(err, -EINVAL, "format: prometheus or json, not %s", format);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	rc = collect(d, s);
	if (rc < 0) {
		free(s);
		return cmd_fail(err, rc, "the gateway is stopping");
	}
	if (format != NULL && strcmp(format, "json") == 0) {
		/* every telemetry command's object, keyed by its last part ("ports") */
		json_t *all = json_object();

		for (const char *const *c = mg_metrics_telemetry_commands(); all != NULL && *c;
		     c++) {
			const char *key = strrchr(*c, '/') ? strrchr(*c, '/') + 1 : *c;
			json_t *o = mg_metrics_json(*c, NULL, s);

			if (o == NULL || json_object_set_new(all, key, o) != 0) {
				json_decref(all);
				all = NULL;
			}
		}
		*result = all != NULL ? json_pack("{s:o}", "metrics", all) : NULL;
	} else {
		struct mg_metrics_buf b;

		mg_metrics_buf_init(&b);
		rc = mg_metrics_render(s, &b);
		*result = rc == 0 ? json_pack("{s:s}", "text", b.data) : NULL;
		mg_metrics_buf_free(&b);
	}
	free(s);
	return *result != NULL ? 0 : -ENOMEM;
}

static const struct mg_ctl_command cmds[] = {
        {"metrics", "the counters (Prometheus text or JSON)", false, cmd_metrics, NULL},
};

const struct cmd_area cmd_area_metrics = {"metrics", cmds, MG_ARRAY_SIZE(cmds)};
