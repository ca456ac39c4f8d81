/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's control thread: it serves the control socket
 * (lib/ctl; the commands meshgatectl sends, docs/ctl-protocol.md), runs
 * SIGHUP reloads and the Redis sync, feeds the drop monitor's subscribers
 * from the workers' event rings, and keeps the snapshot that the metrics
 * endpoint and DPDK telemetry read from their own threads.
 *
 * Everything that changes the gateway's tables runs here, one thing at a
 * time, so the handlers read the identity table, the ipcache and the
 * policy set without locks. A handler never blocks on the network: the
 * slowest ones are a reload (parsing and compiling) and the conntrack
 * list/flush requests the workers serve (bounded waits).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef MG_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "daemon.h"
#include "mg_ctl.h"
#include "mg_kv_sync.h"
#include "mg_metrics.h"
#include "mg_pkt.h"
#include "trace_json.h"

/* The monitor stream's kinds (the mask subscribers give). */
#define MON_DROP 1u
#define MON_VERDICT 2u

/* How often the slow parts of the snapshot (walks over tables) are redone. */
#define SNAP_SLOW_NS 1000000000ull

/*
 * Monitor events handed on per turn of the control loop, at most (about a
 * worker ring's worth). The rest waits in the workers' rings, and what
 * they cannot hold the workers count as lost: a flood of events never
 * keeps the loop from the socket, reloads, the sync or a stop.
 */
#define MON_EVENTS_PER_TURN 2048

/* ---- small helpers ---- */

static int fail(struct mg_error *err, int rc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int
fail(struct mg_error *err, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return rc;
}

/* An unsigned argument; @p def when absent. -EINVAL when not a non-negative integer. */
static int
arg_u64(const json_t *args, const char *key, uint64_t def, uint64_t *out, struct mg_error *err)
{
	const json_t *v = json_object_get(args, key);

	if (v == NULL || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return fail(err, -EINVAL, "%s: a non-negative integer is expected", key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* A string argument, or NULL when absent. -EINVAL when not a string. */
static int
arg_str(const json_t *args, const char *key, const char **out, struct mg_error *err)
{
	const json_t *v = json_object_get(args, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return fail(err, -EINVAL, "%s: a string is expected", key);
	*out = json_string_value(v);
	return 0;
}

/*
 * Cluster numbers and names (the gateway's own, the synced ones), read once
 * per command or snapshot refresh: listings and the identities-by-cluster
 * count name a cluster per entry, and asking the sync client every time
 * would copy its statistics once per identity.
 */
struct cluster_names {
	size_t n;
	struct {
		unsigned id;
		char name[MG_CONFIG_NAME_MAX + 1]; /* >= MG_KV_CLUSTER_NAME_MAX + 1 */
	} v[MG_KV_SYNC_MAX_CLUSTERS + 1];
};

static void
cluster_names_load(const struct daemon *d, struct cluster_names *cn)
{
	const struct mg_config *cfg = d->st.cfg;

	cn->n = 0;
	cn->v[cn->n].id = cfg->cluster_id;
	snprintf(cn->v[cn->n++].name, sizeof(cn->v[0].name), "%s", cfg->cluster_name);
	for (size_t i = 0; d->kv != NULL && i < mg_kv_sync_n_clusters(d->kv); i++) {
		struct mg_kv_sync_stats ks;

		if (mg_kv_sync_stats(d->kv, i, &ks) == 0 && ks.present &&
		    cn->n < MG_ARRAY_SIZE(cn->v)) {
			cn->v[cn->n].id = ks.cluster_id;
			snprintf(cn->v[cn->n++].name, sizeof(cn->v[0].name), "%s", ks.name);
		}
	}
}

/* The name of cluster @p cid (the gateway's own first), or NULL. */
static const char *
cluster_name(const struct cluster_names *cn, unsigned cid)
{
	for (size_t i = 0; i < cn->n; i++)
		if (cn->v[i].id == cid)
			return cn->v[i].name;
	return NULL;
}

static void
addr_str(uint8_t family, const uint8_t *a, char *buf, size_t size)
{
	if (family == 0 || inet_ntop(family, a, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "-");
}

static json_t *
json_str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *
labels_json(const struct mg_labels *ls)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < ls->n; i++) {
		const struct mg_label *l = &ls->v[i];
		char buf[512];

		if (l->value[0] != '\0')
			snprintf(buf, sizeof(buf), "%s:%s=%s", l->source, l->key, l->value);
		else
			snprintf(buf, sizeof(buf), "%s:%s", l->source, l->key);
		json_array_append_new(a, json_string(buf));
	}
	return a;
}

/* A flow's protocol as the CLI spells it ("tcp"); "other" for the rest. */
static const char *
proto_name(uint8_t p)
{
	const char *n = mg_pkt_proto_name(p);

	return n != NULL ? n : "other";
}

/* A named port's protocol as Kubernetes spells it (TCP, UDP, SCTP). */
static const char *
k8s_proto_name(uint8_t p)
{
	return p == 6 ? "TCP" : p == 17 ? "UDP" : p == 132 ? "SCTP" : "?";
}

static json_t *
identity_json(const struct cluster_names *cn, const struct mg_identity *ident)
{
	json_t *np = json_array();

	for (size_t i = 0; np != NULL && i < ident->n_named_ports; i++)
		json_array_append_new(np, json_pack("{s:s, s:i, s:s}", "name",
		                                    ident->named_ports[i].name, "port",
		                                    (int)ident->named_ports[i].port, "protocol",
		                                    k8s_proto_name(ident->named_ports[i].proto)));
	return json_pack("{s:I, s:o, s:i, s:o, s:o}", "id", (json_int_t)ident->id, "labels",
	                 labels_json(&ident->labels), "cluster_id", (int)ident->cluster_id,
	                 "cluster", json_str_or_null(cluster_name(cn, ident->cluster_id)),
	                 "named_ports", np);
}

/* ---- status, config ---- */

static json_t *
ports_json(const struct daemon *d, const struct mg_dp_counters *c)
{
	const struct mg_config *cfg = d->st.cfg;
	json_t *a = json_array();

	for (unsigned i = 0; a != NULL && i < mg_datapath_nb_ports(d->dp); i++)
		json_array_append_new(a,
		                      json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "name",
		                                mg_datapath_port_name(d->dp, i), "device",
		                                cfg->ports[i].device, "peer", cfg->ports[i].peer,
		                                "rx_packets", (json_int_t)c->rx_pkts[i], "rx_bytes",
		                                (json_int_t)c->rx_bytes[i], "tx_packets",
		                                (json_int_t)c->tx_pkts[i], "tx_bytes",
		                                (json_int_t)c->tx_bytes[i], "dropped",
		                                (json_int_t)c->port_drops[i]));
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

	if (d->kv == NULL)
		return json_null();
	n = mg_kv_sync_n_clusters(d->kv);
	for (size_t i = 0; i < n; i++) {
		if (mg_kv_sync_stats(d->kv, i, &ks) != 0)
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
	json_t *m = json_pack("{s:I, s:I, s:I}", "ipcache_bytes",
	                      (json_int_t)mg_ipcache_memory(d->st.ipc), "policy_bytes",
	                      (json_int_t)mg_policy_memory(mg_datapath_policy(d->dp)),
	                      "conntrack_bytes", (json_int_t)mg_datapath_ct_memory(d->dp));
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
	const struct mg_config *cfg = d->st.cfg;
	struct mg_dp_counters c;
	struct mg_ct_stats ct;

	(void)conn;
	(void)args;
	(void)err;
	mg_datapath_counters(d->dp, &c);
	mg_datapath_ct_stats(d->dp, &ct);
	*result = json_pack(
	        "{s:s, s:i, s:I, s:s, s:{s:s, s:i}, s:o, s:o, s:{s:I, s:I, s:I, s:I}, "
	        "s:{s:I, s:I, s:o}, s:{s:I, s:I}, s:I, s:{s:I, s:I, s:I}, s:o, s:b}",
	        "version", MG_VERSION, "pid", (int)getpid(), "uptime_s",
	        (json_int_t)((mg_time_ns() - d->start_ns) / 1000000000ull), "config_file",
	        cfg->file, "cluster", "name", cfg->cluster_name, "id", (int)cfg->cluster_id,
	        "ports", ports_json(d, &c), "workers", workers_json(d), "policy", "revision",
	        (json_int_t)d->st.revision, "policies", (json_int_t)mg_policy_set_count(d->st.set),
	        "rules", (json_int_t)mg_policy_set_rules(d->st.set), "skipped",
	        (json_int_t)mg_policy_set_warnings(d->st.set, NULL, NULL), "reloads", "ok",
	        (json_int_t)d->reloads_ok, "failed", (json_int_t)d->reloads_failed, "last_error",
	        json_str_or_null(d->last_reload_error[0] ? d->last_reload_error : NULL), "ipcache",
	        "ipv4", (json_int_t)mg_ipcache_count(d->st.ipc, AF_INET), "ipv6",
	        (json_int_t)mg_ipcache_count(d->st.ipc, AF_INET6), "identities",
	        (json_int_t)mg_identity_table_count(d->st.ids), "conntrack", "entries",
	        (json_int_t)ct.entries, "created", (json_int_t)ct.created, "expired",
	        (json_int_t)ct.expired, "kvstore", kv_summary_json(d), "ready", true);
	if (*result != NULL) {
		struct mg_ctl_stats st;

		json_object_set_new(*result, "memory", memory_json(d));
		json_object_set_new(*result, "control", control_json(d, &st));
		json_object_set_new(*result, "monitor", monitor_json(d, &st));
	}
	return *result != NULL ? 0 : -ENOMEM;
}

static json_t *
str_array(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static const char *
enforcement_name(enum mg_enforcement e)
{
	return mg_enforcement_name(e);
}

/* The running config, every key with its effective value (defaults filled). */
static json_t *
config_json(const struct mg_config *c)
{
	json_t *ports = json_array(), *sources = json_array(), *entries = json_array();
	json_t *root;

	for (size_t i = 0; ports != NULL && i < c->n_ports; i++)
		json_array_append_new(ports, json_pack("{s:s, s:s, s:s}", "name", c->ports[i].name,
		                                       "device", c->ports[i].device, "peer",
		                                       c->ports[i].peer));
	for (size_t i = 0; sources != NULL && i < c->n_sources; i++)
		json_array_append_new(sources,
		                      json_pack("{s:s, s:s}", "cluster", c->sources[i].cluster,
		                                "path", c->sources[i].path));
	for (size_t i = 0; entries != NULL && i < c->n_entries; i++) {
		char pfx[64];

		mg_ipcache_prefix_str(&c->entries[i].e, pfx, sizeof(pfx));
		json_array_append_new(entries, json_pack("{s:s, s:I}", "prefix", pfx, "identity",
		                                         (json_int_t)c->entries[i].e.identity));
	}
	root = json_pack("{s:i, s:o, s:{s:s, s:o, s:s, s:i, s:i, s:i, s:i}, s:{s:s, s:i, s:i}, "
	                 "s:{s:s, s:b, s:o}, s:{s:o}, s:{s:o, s:o, s:b}}",
	                 "version", (int)c->version, "eal", str_array(c->eal, c->n_eal), "datapath",
	                 "mode", "wire", "ports", ports, "non_ip",
	                 c->non_ip == MG_NON_IP_DROP ? "drop" : "forward", "burst", (int)c->burst,
	                 "rx_desc", (int)c->rx_desc, "tx_desc", (int)c->tx_desc, "mbufs",
	                 (int)c->mbufs, "cluster", "name", c->cluster_name, "id",
	                 (int)c->cluster_id, "max_connected_clusters",
	                 c->cluster_mode == MG_CLUSTER_MODE_511 ? 511 : 255, "policy",
	                 "enforcement", enforcement_name(c->enforcement), "default_local_cluster",
	                 c->default_local_cluster, "sources", sources, "identities", "files",
	                 str_array(c->identity_files, c->n_identity_files), "ipcache", "files",
	                 str_array(c->endpoint_files, c->n_endpoint_files), "entries", entries,
	                 "split_world", c->split_world);
	if (root == NULL)
		return NULL;
	if (c->kv_redis != NULL)
		json_object_set_new(
		        root, "kvstore",
		        json_pack("{s:s, s:o, s:o, s:o, s:i, s:i, s:i}", "redis", c->kv_redis,
		                  "clusters", str_array(c->kv_clusters, c->n_kv_clusters), "user",
		                  json_str_or_null(c->kv_user), "password_file",
		                  json_str_or_null(c->kv_password_file), "sync_timeout",
		                  (int)c->kv_sync_timeout, "max_delete_share",
		                  (int)c->kv_max_delete_share, "block_ms", (int)c->kv_block_ms));
	json_object_set_new(root, "conntrack",
	                    json_pack("{s:I, s:I, s:b, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
	                              "max_entries", (json_int_t)c->ct.max_entries, "max_fragments",
	                              (json_int_t)c->ct.max_frags, "tcp_pickup", c->ct.tcp_pickup,
	                              "timeouts", "tcp_syn", (json_int_t)c->ct.timeouts.tcp_syn,
	                              "tcp_established", (json_int_t)c->ct.timeouts.tcp_established,
	                              "tcp_fin", (json_int_t)c->ct.timeouts.tcp_fin, "tcp_close",
	                              (json_int_t)c->ct.timeouts.tcp_close, "udp",
	                              (json_int_t)c->ct.timeouts.udp, "icmp",
	                              (json_int_t)c->ct.timeouts.icmp, "other",
	                              (json_int_t)c->ct.timeouts.other, "fragment",
	                              (json_int_t)c->ct.timeouts.fragment));
	json_object_set_new(root, "control",
	                    json_pack("{s:o, s:o, s:o, s:i, s:i, s:I, s:i, s:I}", "socket",
	                              json_str_or_null(c->control_socket), "group",
	                              json_str_or_null(c->control_group), "admin_group",
	                              json_str_or_null(c->control_admin_group), "max_clients",
	                              (int)c->control_max_clients, "admin_reserve",
	                              (int)c->control_reserve, "max_request_bytes",
	                              (json_int_t)c->control_max_request, "idle_timeout",
	                              (int)c->control_idle_timeout, "max_output_bytes",
	                              (json_int_t)c->control_max_output));
	json_object_set_new(root, "metrics",
	                    json_pack("{s:o}", "listen", json_str_or_null(c->metrics_listen)));
	return root;
}

static int
cmd_config_show(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
                struct mg_error *err)
{
	struct daemon *d = arg;

	(void)conn;
	(void)args;
	(void)err;
	*result =
	        json_pack("{s:s, s:o}", "file", d->st.cfg->file, "config", config_json(d->st.cfg));
	return *result != NULL ? 0 : -ENOMEM;
}

/* ---- identities ---- */

/* Listings stop at the request's "limit" (default 10000): a 1M-entry table
 * would otherwise hold the control thread and the reply buffer for seconds. */
#define LIST_LIMIT_DEFAULT 10000
#define LIST_LIMIT_MAX 1000000

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
		const char *name = cluster_name(w->cn, ident->cluster_id);

		if (name == NULL || strcmp(name, w->cluster) != 0)
			return 0;
	}
	/* the table walks in hash order: keep the lowest ids, as the sorted list would */
	w->total++;
	return json_array_append_new(w->list, identity_json(w->cn, ident)) == 0 ? 0 : -ENOMEM;
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
	if ((rc = arg_str(args, "cluster", &w.cluster, err)) < 0 ||
	    (rc = arg_u64(args, "limit", LIST_LIMIT_DEFAULT, &w.limit, err)) < 0)
		goto out;
	if (w.limit == 0 || w.limit > LIST_LIMIT_MAX) {
		rc = fail(err, -EINVAL, "limit: 1 to %u", LIST_LIMIT_MAX);
		goto out;
	}
	if (w.list == NULL)
		return -ENOMEM;
	cluster_names_load(d, &cn);
	rc = mg_identity_table_walk(d->st.ids, id_walk_fn, &w);
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
	if ((rc = arg_u64(args, "id", UINT64_MAX, &id, err)) < 0)
		return rc;
	if (id == UINT64_MAX || id > UINT32_MAX)
		return fail(err, -EINVAL, "id: an identity number is required");
	ident = mg_identity_table_get(d->st.ids, (uint32_t)id);
	if (ident == NULL)
		return fail(err, -ENOENT, "no identity %" PRIu64, id);
	{
		struct cluster_names cn;

		cluster_names_load(d, &cn);
		*result = identity_json(&cn, ident);
	}
	return *result != NULL ? 0 : -ENOMEM;
}

/* ---- ipcache ---- */

static json_t *
ip_entry_json(const struct cluster_names *cn, const struct mg_ipcache_entry *e)
{
	char pfx[64];

	mg_ipcache_prefix_str(e, pfx, sizeof(pfx));
	return json_pack("{s:s, s:I, s:i, s:o}", "prefix", pfx, "identity", (json_int_t)e->identity,
	                 "cluster_id", (int)e->cluster_id, "cluster",
	                 json_str_or_null(cluster_name(cn, e->cluster_id)));
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
		const char *name = cluster_name(w->cn, e->cluster_id);

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
	if ((rc = arg_str(args, "family", &fam, err)) < 0 ||
	    (rc = arg_str(args, "cluster", &w.cluster, err)) < 0 ||
	    (rc = arg_u64(args, "limit", LIST_LIMIT_DEFAULT, &limit, err)) < 0)
		return rc;
	if (limit == 0 || limit > LIST_LIMIT_MAX)
		return fail(err, -EINVAL, "limit: 1 to %u", LIST_LIMIT_MAX);
	if (fam != NULL) {
		if (strcmp(fam, "ipv4") == 0)
			w.family = AF_INET;
		else if (strcmp(fam, "ipv6") == 0)
			w.family = AF_INET6;
		else
			return fail(err, -EINVAL, "family: ipv4 or ipv6, not %s", fam);
	}
	cluster_names_load(d, &cn);
	rc = mg_ipcache_walk(d->st.ipc, ip_walk_fn, &w);
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
	if ((rc = arg_str(args, "ip", &ip, err)) < 0)
		return rc;
	if (ip == NULL)
		return fail(err, -EINVAL, "ip: an address or a prefix is required");
	if (mg_ipcache_parse_prefix(ip, &q) < 0)
		return fail(err, -EINVAL, "ip: not an address or prefix: %s", ip);
	cluster_names_load(d, &cn);
	if (strchr(ip, '/') != NULL) {
		/* a prefix: exactly that entry */
		if (mg_ipcache_get(d->st.ipc, q.family, q.addr, q.plen, &e) != 0)
			return fail(err, -ENOENT, "no ipcache entry for %s", ip);
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
		if (mg_ipcache_get(d->st.ipc, q.family, t.addr, (uint8_t)plen, &e) == 0)
			break;
	}
	if (plen >= 0) {
		char pfx[64];

		id = e.identity;
		mg_ipcache_prefix_str(&e, pfx, sizeof(pfx));
		*result = json_pack("{s:s, s:s, s:I, s:o}", "ip", addr, "prefix", pfx, "identity",
		                    (json_int_t)id, "cluster",
		                    json_str_or_null(cluster_name(&cn, e.cluster_id)));
	} else {
		/* not in the ipcache: world, split by family unless ipcache.split_world is off */
		id = d->st.cfg->split_world ? (q.family == AF_INET ? 9 : 10) : 2;
		*result = json_pack("{s:s, s:n, s:I, s:n}", "ip", addr, "prefix", "identity",
		                    (json_int_t)id, "cluster");
	}
	if (*result == NULL)
		return -ENOMEM;
	ident = mg_identity_table_get(d->st.ids, id);
	json_object_set_new(*result, "labels",
	                    ident != NULL ? labels_json(&ident->labels) : json_array());
	return 0;
}

/* ---- policy ---- */

static int
policy_walk_fn(const struct mg_policy_info *pi, void *arg)
{
	json_t *list = arg;

	return json_array_append_new(
	               list, json_pack("{s:s, s:s, s:o, s:s, s:s, s:i, s:I}", "kind",
	                               pi->ccnp ? "CiliumClusterwideNetworkPolicy"
	                                        : "CiliumNetworkPolicy",
	                               "name", pi->name, "namespace", json_str_or_null(pi->ns),
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
	rc = mg_policy_set_walk(d->st.set, policy_walk_fn, pols);
	if (rc == 0) {
		mg_policy_set_warnings(d->st.set, skipped_fn, skipped);
		*result = json_pack("{s:I, s:s, s:O, s:O}", "revision", (json_int_t)d->st.revision,
		                    "enforcement", mg_enforcement_name(d->st.cfg->enforcement),
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
	rc = mg_policy_set_selectors(d->st.set, d->st.ids, d->st.cfg->default_local_cluster,
	                             selector_fn, list);
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
	struct mg_policy_params pp = {
	        .enforcement = d->st.cfg->enforcement,
	        .default_local_cluster = d->st.cfg->default_local_cluster,
	        .revision = d->st.revision,
	};
	struct mg_trace_ctx ctx = {
	        .set = d->st.set,
	        .ids = d->st.ids,
	        .ipc = d->st.ipc,
	        .policy = mg_datapath_policy(d->dp),
	        .params = &pp,
	};
	struct mg_trace_flow flow;
	int rc;

	(void)conn;
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

/* ---- sync ---- */

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
	                    json_pack("{s:I, s:I, s:I}", "range", (json_int_t)ks->rejected_range,
	                              "parse", (json_int_t)ks->rejected_parse, "cluster",
	                              (json_int_t)ks->rejected_cluster));
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
	for (size_t i = 0; d->kv != NULL && i < mg_kv_sync_n_clusters(d->kv); i++) {
		struct mg_kv_sync_stats ks;

		if (mg_kv_sync_stats(d->kv, i, &ks) == 0)
			json_array_append_new(list, kv_cluster_json(&ks));
	}
	*result = json_pack("{s:b, s:o}", "configured", d->kv != NULL, "clusters", list);
	return *result != NULL ? 0 : -ENOMEM;
}

static int
cmd_sync_resync(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
                struct mg_error *err)
{
	struct daemon *d = arg;

	(void)conn;
	(void)args;
	if (d->kv == NULL)
		return fail(err, -ENOTSUP, "no kvstore section in the config: nothing to resync");
	mg_kv_sync_request_resync(d->kv, MG_KV_RESYNC_OPERATOR);
	MG_INFO("kvstore: full resync requested over the control socket");
	*result = json_pack("{s:b}", "requested", true);
	return *result != NULL ? 0 : -ENOMEM;
}

/* ---- conntrack ---- */

static const char *
ct_state_name(unsigned s)
{
	return mg_ct_state_name(s);
}

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
	if ((rc = arg_u64(args, "limit", 1000, &limit, err)) < 0)
		return rc;
	if (limit == 0 || limit > 1000000)
		return fail(err, -EINVAL, "limit: 1 to 1000000");
	v = calloc(limit, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	rc = mg_datapath_ct_list(d->dp, v, (size_t)limit, &n, &total);
	if (rc < 0) {
		free(v);
		return fail(err, rc, "the workers did not answer: %s", strerror(-rc));
	}
	list = json_array();
	for (size_t i = 0; list != NULL && i < n; i++) {
		const struct mg_dp_ct_entry *e = &v[i];
		char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

		addr_str(e->key.family, e->key.a, a, sizeof(a));
		addr_str(e->key.family, e->key.b, b, sizeof(b));
		json_array_append_new(
		        list, json_pack("{s:i, s:s, s:s, s:s, s:i, s:s, s:i, s:s, s:I, s:s}",
		                        "worker", (int)e->worker, "family",
		                        e->key.family == AF_INET ? "ipv4" : "ipv6", "proto",
		                        proto_name(e->key.proto), "a", a, "pa", (int)e->key.pa, "b",
		                        b, "pb", (int)e->key.pb, "state", ct_state_name(e->state),
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
		return fail(err, rc, "the workers did not answer: %s", strerror(-rc));
	MG_INFO("conntrack: %" PRIu64 " entries flushed over the control socket", flushed);
	*result = json_pack("{s:I}", "flushed", (json_int_t)flushed);
	return *result != NULL ? 0 : -ENOMEM;
}

/* ---- monitor ---- */

static int
cmd_monitor(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
            struct mg_error *err)
{
	struct daemon *d = arg;
	const char *type;
	uint64_t kinds;
	int rc;

	(void)d;
	if ((rc = arg_str(args, "type", &type, err)) < 0)
		return rc;
	if (type == NULL || strcmp(type, "drop") == 0)
		kinds = MON_DROP;
	else if (strcmp(type, "verdict") == 0)
		kinds = MON_VERDICT;
	else if (strcmp(type, "all") == 0)
		kinds = MON_DROP | MON_VERDICT;
	else
		return fail(err, -EINVAL, "type: drop, verdict or all, not %s", type);
	rc = mg_ctl_conn_subscribe(conn, "monitor", kinds);
	if (rc < 0)
		return rc;
	*result = json_pack("{s:b, s:s}", "streaming", true, "type", type ? type : "drop");
	return *result != NULL ? 0 : -ENOMEM;
}

static json_t *
labels_of(const struct daemon *d, uint32_t id)
{
	const struct mg_identity *ident = mg_identity_table_get(d->st.ids, id);

	return ident != NULL ? labels_json(&ident->labels) : json_array();
}

static json_t *
event_json(const struct daemon *d, const struct mg_dp_event *ev)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], when[64];
	time_t sec = (time_t)(ev->ns / 1000000000ull);
	const char *family = ev->family == AF_INET ? "ipv4" : ev->family == AF_INET6 ? "ipv6" : "-";
	struct tm tm;
	json_t *o;

	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03uZ",
	         (unsigned)(ev->ns / 1000000ull % 1000));
	addr_str(ev->family, ev->src, src, sizeof(src));
	addr_str(ev->family, ev->dst, dst, sizeof(dst));
	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o, "
	              "s:i}",
	              "time", when, "type", ev->reason == MG_DROP_NONE ? "verdict" : "drop", "port",
	              mg_datapath_port_name(d->dp, ev->in_port), "worker", (int)ev->worker,
	              "reason", ev->reason == MG_DROP_NONE ? "allowed" : mg_drop_label(ev->reason),
	              "direction", mg_metrics_drop_direction(ev->reason), "by",
	              mg_dp_event_by_name(ev->by), "family", family, "proto",
	              ev->family ? proto_name(ev->proto) : "-", "src", src, "dst", dst,
	              "src_identity", (json_int_t)ev->src_id, "dst_identity",
	              (json_int_t)ev->dst_id, "src_labels", labels_of(d, ev->src_id), "dst_labels",
	              labels_of(d, ev->dst_id), "len", (int)ev->len);
	if (o == NULL)
		return NULL;
	if (ev->proto == 1 || ev->proto == 58) {
		json_object_set_new(o, "icmp_type", json_integer(ev->icmp_type));
		json_object_set_new(o, "icmp_code", json_integer(ev->icmp_code));
	} else if (ev->family != 0) {
		json_object_set_new(o, "sport", json_integer(ev->sport));
		json_object_set_new(o, "dport", json_integer(ev->dport));
	}
	return o;
}

struct event_src {
	const struct daemon *d;
	const struct mg_dp_event *ev;
};

static json_t *
make_event(void *arg)
{
	const struct event_src *e = arg;

	return event_json(e->d, e->ev);
}

/*
 * Keep the workers' sampling in line with the subscribers, and pass what
 * they recorded on: at most MON_EVENTS_PER_TURN events, each turned into
 * JSON only when a subscriber has room for it (mg_ctl_server_publish_fn),
 * so subscribers that do not read cost a counter per event. Events the
 * rings lost are announced to the subscribers in their "dropped" lines.
 * @return true when the turn's budget ran out while someone was taking
 *   events: the loop should come back without waiting.
 */
static bool
monitor_tick(struct daemon *d)
{
	struct mg_dp_event ev[256];
	unsigned mask = 0, n, want, done = 0;
	uint64_t kinds = 0, lost;
	bool delivered = false;

	if (mg_ctl_server_has_subscribers(d->ctl, "monitor", MON_DROP))
		mask |= MG_DP_MON_DROPS;
	if (mg_ctl_server_has_subscribers(d->ctl, "monitor", MON_VERDICT))
		mask |= MG_DP_MON_VERDICTS;
	if (mask != d->monitor_mask) {
		mg_datapath_monitor_set(d->dp, mask);
		d->monitor_mask = mask;
	}
	lost = mg_datapath_monitor_lost(d->dp);
	if (mask == 0) {
		/* what the last subscriber left behind is nobody's: an old
		 * session's events must not reach the next one */
		mg_datapath_monitor_drain(d->dp, ev, MG_ARRAY_SIZE(ev));
		d->monitor_lost = lost;
		return false;
	}
	kinds = ((mask & MG_DP_MON_DROPS) ? MON_DROP : 0) |
	        ((mask & MG_DP_MON_VERDICTS) ? MON_VERDICT : 0);
	if (lost > d->monitor_lost) {
		mg_ctl_server_stream_lost(d->ctl, "monitor", kinds, lost - d->monitor_lost);
		d->monitor_lost = lost;
	}
	while (done < MON_EVENTS_PER_TURN) {
		want = MON_EVENTS_PER_TURN - done < MG_ARRAY_SIZE(ev) ? MON_EVENTS_PER_TURN - done
		                                                      : MG_ARRAY_SIZE(ev);
		n = mg_datapath_monitor_drain(d->dp, ev, want);
		for (unsigned i = 0; i < n; i++) {
			struct event_src src = {.d = d, .ev = &ev[i]};

			if (mg_ctl_server_publish_fn(d->ctl, "monitor",
			                             ev[i].reason == MG_DROP_NONE ? MON_VERDICT
			                                                          : MON_DROP,
			                             make_event, &src) > 0)
				delivered = true;
		}
		done += n;
		if (n < want)
			return false; /* the rings are empty */
	}
	return delivered;
}

/* ---- metrics ---- */

/* Fill @p out: the control-side snapshot plus the workers' live counters. */
static int
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
	const char *name = cluster_name(w->cn, ident->cluster_id);
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
static void
snapshot_refresh(struct daemon *d, bool slow)
{
	struct mg_metrics_snapshot *s = d->snap;
	struct mg_dp_counters wc;

	pthread_mutex_lock(&d->snap_lock);
	snprintf(s->version, sizeof(s->version), "%s", MG_VERSION);
	s->ipcache_ipv4 = mg_ipcache_count(d->st.ipc, AF_INET);
	s->ipcache_ipv6 = mg_ipcache_count(d->st.ipc, AF_INET6);
	s->policy.policies = mg_policy_set_count(d->st.set);
	s->policy.rules = mg_policy_set_rules(d->st.set);
	s->policy.revision = d->st.revision;
	s->policy.reloads_ok = d->reloads_ok;
	s->policy.reloads_failed = d->reloads_failed;
	s->n_kvstore = 0;
	for (size_t i = 0; d->kv != NULL && i < mg_kv_sync_n_clusters(d->kv); i++) {
		struct mg_kv_sync_stats ks;

		if (mg_kv_sync_stats(d->kv, i, &ks) == 0)
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

		cluster_names_load(d, &cn);
		s->n_identity_clusters = 0;
		mg_identity_table_walk(d->st.ids, count_identity, &w);
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
	if ((rc = arg_str(args, "format", &format, err)) < 0)
		return rc;
	if (format != NULL && strcmp(format, "prometheus") != 0 && strcmp(format, "json") != 0)
		return fail(err, -EINVAL, "format: prometheus or json, not %s", format);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	rc = collect(d, s);
	if (rc < 0) {
		free(s);
		return fail(err, rc, "the gateway is stopping");
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

/* ---- reload ---- */

static int
cmd_reload(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
           struct mg_error *err)
{
	struct daemon *d = arg;
	const struct mg_ctl_peer *peer = mg_ctl_conn_peer(conn);
	int rc;

	(void)args;
	MG_INFO("reload requested over the control socket (pid %d, uid %u)", (int)peer->pid,
	        (unsigned)peer->uid);
	rc = daemon_reload(d, err);
	if (rc < 0)
		return rc;
	*result = json_pack("{s:I, s:I}", "revision", (json_int_t)d->st.revision, "ipcache_changes",
	                    (json_int_t)d->last_reload_changes);
	return *result != NULL ? 0 : -ENOMEM;
}

/* ---- the thread ---- */

static const struct mg_ctl_command commands[] = {
        {"status", "version, uptime, ports, workers, sync state, policy revision", false,
         cmd_status, NULL},
        {"config.show", "the running config, defaults filled in", false, cmd_config_show, NULL},
        {"identity.list", "identities known to the gateway", false, cmd_identity_list, NULL},
        {"identity.get", "one identity: labels, cluster, named ports", false, cmd_identity_get,
         NULL},
        {"ip.list", "ipcache entries", false, cmd_ip_list, NULL},
        {"ip.get", "the identity an address resolves to, or one prefix's entry", false, cmd_ip_get,
         NULL},
        {"policy.get", "loaded policies and the rules skipped", false, cmd_policy_get, NULL},
        {"policy.selectors", "distinct selectors and the identities they select", false,
         cmd_policy_selectors, NULL},
        {"policy.trace", "which rule decides a flow, on the running state", false, cmd_policy_trace,
         NULL},
        {"ct.list", "conntrack entries of every worker", false, cmd_ct_list, NULL},
        {"ct.flush", "remove every conntrack entry", true, cmd_ct_flush, NULL},
        {"sync.status", "Redis sync state per cluster", false, cmd_sync_status, NULL},
        {"sync.resync", "full resync of every cluster", true, cmd_sync_resync, NULL},
        {"monitor", "stream of sampled drop / verdict events", false, cmd_monitor, NULL},
        {"metrics", "the counters (Prometheus text or JSON)", false, cmd_metrics, NULL},
        {"reload", "re-read the config and policies; swap atomically", true, cmd_reload, NULL},
};

static void
idle_check(struct daemon *d)
{
	struct mg_dp_counters c;
	uint64_t rx = 0, now;

	if (d->idle_ns == 0)
		return;
	mg_datapath_counters(d->dp, &c);
	for (unsigned i = 0; i < mg_datapath_nb_ports(d->dp); i++)
		rx += c.rx_pkts[i];
	now = mg_time_ns();
	if (rx != d->last_rx) {
		d->last_rx = rx;
		d->last_change = now;
	} else if (now - d->last_change >= d->idle_ns) {
		MG_INFO("no frame for %" PRIu64 " ms: stopping", d->idle_ns / 1000000);
		*d->stop = 1;
	}
}

static void *
control_main(void *arg)
{
	struct daemon *d = arg;
	bool events_wait = false;

	d->last_change = mg_time_ns();
	/* Every step of a turn is bounded (the socket never blocks, a reload is
	 * one compile, the sync's read waits at most 10 ms, the monitor hands
	 * on MON_EVENTS_PER_TURN events), so a stop is seen within a turn. */
	while (!*d->stop) {
		uint64_t now;

		/* With a sync client its XREAD is the wait; without, the socket's
		 * poll, unless monitor events wait for subscribers that read. */
		mg_ctl_server_poll(d->ctl, d->kv != NULL || events_wait ? 0 : 10);
		if (*d->reload_requested) {
			struct mg_error err = {{0}};

			*d->reload_requested = 0;
			daemon_reload(d, &err);
		}
		if (d->kv != NULL)
			daemon_kv_tick(d);
		events_wait = monitor_tick(d);
		now = mg_time_ns();
		snapshot_refresh(d, now >= d->snap_next_ns);
		if (now >= d->snap_next_ns)
			d->snap_next_ns = now + SNAP_SLOW_NS;
		idle_check(d);
	}
	mg_datapath_monitor_set(d->dp, 0);
	return NULL;
}

int
control_start(struct daemon *d, struct mg_error *err)
{
	const struct mg_config *cfg = d->st.cfg;
	struct mg_ctl_params cp = {
	        .path = cfg->control_socket,
	        .group = cfg->control_group,
	        .admin_group = cfg->control_admin_group,
	        .max_clients = cfg->control_max_clients,
	        .admin_reserve = cfg->control_reserve,
	        .max_request = cfg->control_max_request,
	        .idle_ms = cfg->control_idle_timeout * 1000u,
	        .max_output = cfg->control_max_output,
	};
	int rc;

	d->snap = calloc(1, sizeof(*d->snap));
	if (d->snap == NULL)
		return -ENOMEM;
	pthread_mutex_init(&d->snap_lock, NULL);
	for (unsigned i = 0; i < mg_datapath_nb_ports(d->dp) && i < MG_METRICS_MAX_PORTS; i++)
		snprintf(d->snap->ports[i].name, sizeof(d->snap->ports[i].name), "%s",
		         mg_datapath_port_name(d->dp, i));
	snapshot_refresh(d, true);
	d->ctl = mg_ctl_server_create(&cp, err);
	if (d->ctl == NULL) {
		rc = -errno;
		goto err;
	}
	for (size_t i = 0; i < MG_ARRAY_SIZE(commands); i++) {
		struct mg_ctl_command c = commands[i];

		c.arg = d;
		rc = mg_ctl_register(d->ctl, &c);
		if (rc < 0) {
			mg_error_set(err, NULL, 0, 0, "control: cannot register %s: %s", c.name,
			             strerror(-rc));
			goto err;
		}
	}
	if (cfg->metrics_listen != NULL && cfg->metrics_listen[0] != '\0') {
		struct mg_metrics_http_params hp = {
		        .max_connections = cfg->metrics_max_connections,
		        .timeout_ms = cfg->metrics_request_timeout * 1000u,
		};
		struct mg_metrics_http *h =
		        mg_metrics_http_start(cfg->metrics_listen, &hp, collect, d, err);

		if (h == NULL) {
			rc = -errno;
			goto err;
		}
		/* collect reads it under the lock, maybe on h's own thread already */
		pthread_mutex_lock(&d->snap_lock);
		d->http = h;
		pthread_mutex_unlock(&d->snap_lock);
	}
	rc = mg_metrics_telemetry_register(collect, d);
	if (rc < 0)
		MG_WARN("DPDK telemetry: cannot register the /meshgate commands: %s",
		        strerror(-rc));
	rc = pthread_create(&d->thread, NULL, control_main, d);
	if (rc != 0) {
		rc = -rc;
		mg_error_set(err, NULL, 0, 0, "control thread: %s", strerror(-rc));
		goto err;
	}
	pthread_setname_np(d->thread, "mg-control");
	d->thread_started = true;
	if (d->http != NULL)
		MG_INFO("control socket %s, metrics on http://%s (port %u)",
		        mg_ctl_server_path(d->ctl), cfg->metrics_listen,
		        (unsigned)mg_metrics_http_port(d->http));
	else
		MG_INFO("control socket %s", mg_ctl_server_path(d->ctl));
	return 0;
err:
	if (d->http != NULL) {
		struct mg_metrics_http *h = d->http;

		/* telemetry may already be asking collect, which reads d->http */
		pthread_mutex_lock(&d->snap_lock);
		d->http = NULL;
		pthread_mutex_unlock(&d->snap_lock);
		mg_metrics_http_stop(h);
	}
	mg_ctl_server_free(d->ctl);
	d->ctl = NULL;
	return rc;
}

void
control_stop(struct daemon *d)
{
	if (d->thread_started) {
		pthread_join(d->thread, NULL);
		d->thread_started = false;
	}
	if (d->snap != NULL) {
		pthread_mutex_lock(&d->snap_lock);
		d->closing = true;
		pthread_mutex_unlock(&d->snap_lock);
	}
	/* The endpoint's thread reads the snapshot and the data path: first. */
	mg_metrics_http_stop(d->http);
	d->http = NULL;
	mg_ctl_server_free(d->ctl);
	d->ctl = NULL;
}
