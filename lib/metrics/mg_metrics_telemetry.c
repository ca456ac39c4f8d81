/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The DPDK telemetry side of lib/metrics: the /meshgate/... commands that
 * dpdk-telemetry.py lists, answered from the same snapshot and, where
 * the one-level nesting below allows, under the Prometheus families'
 * names (docs/metrics.md has the map). Ports and verdicts keep the
 * counters' own names (rx_packets, allowed, denied.egress...): the
 * Prometheus side splits them by direction and action, a split that
 * would need a second level of nesting here.
 *
 * Each command is written once, against a four-function output interface
 * with two back ends: rte_tel_data (the telemetry socket) and jansson (the
 * control socket, and the unit tests, which cannot look inside an
 * rte_tel_data). So what a test checks in JSON is what the socket serves.
 *
 * Telemetry's limits shape the dicts: keys may only hold [A-Za-z0-9_/],
 * so port and cluster names become keys with other characters turned
 * into '_' (the real name stays in a "name" field where there is room);
 * a dict nests one level at most and holds 256 entries; the reply is
 * capped at 16 KiB, so per-entry commands accept a parameter that selects
 * one port, cluster or worker. There are no floating-point values in
 * DPDK 22.11 telemetry: ratios are given in parts per million.
 */
#include "mg_metrics.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_telemetry.h>

#define KEY_MAX (MG_METRICS_NAME_MAX + 8)
/* Entries of a listing that fit one reply (a dict holds 256; one is for
 * "more", the count of those left out); a kvstore cluster's dict is
 * large, so fewer of those fit the 16 KiB. */
#define TEL_LIST_MAX (RTE_TEL_MAX_DICT_ENTRIES - 1)
#define TEL_KV_LIST_MAX 16

/* The output interface; every function returns 0 or a negative errno. */
struct out {
	int (*u64)(void *d, const char *key, uint64_t v);
	int (*str)(void *d, const char *key, const char *v);
	void *(*dict_new)(void);
	/* Adds @p sub under @p key; takes @p sub in every case. */
	int (*dict_add)(void *d, const char *key, void *sub);
	void (*dict_free)(void *sub); /* a dict not added */
};

/* ---- rte_tel_data back end ---- */

static int
tel_u64(void *d, const char *key, uint64_t v)
{
	return rte_tel_data_add_dict_u64(d, key, v);
}

static int
tel_str(void *d, const char *key, const char *v)
{
	return rte_tel_data_add_dict_string(d, key, v);
}

static void *
tel_dict_new(void)
{
	struct rte_tel_data *d = rte_tel_data_alloc();

	if (d != NULL && rte_tel_data_start_dict(d) != 0) {
		rte_tel_data_free(d);
		d = NULL;
	}
	return d;
}

static int
tel_dict_add(void *d, const char *key, void *sub)
{
	int rc = rte_tel_data_add_dict_container(d, key, sub, 0);

	if (rc != 0)
		rte_tel_data_free(sub);
	return rc;
}

static void
tel_dict_free(void *sub)
{
	rte_tel_data_free(sub);
}

static const struct out tel_out = {tel_u64, tel_str, tel_dict_new, tel_dict_add, tel_dict_free};

/* ---- jansson back end ---- */

/*
 * The JSON back end refuses what telemetry would refuse (a key of other
 * characters than [A-Za-z0-9_/], or too long), so a command tested in
 * JSON cannot fail on the socket.
 */
static bool
tel_key_valid(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n >= RTE_TEL_MAX_STRING_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)key[i]) && key[i] != '_' && key[i] != '/')
			return false;
	return true;
}

static int
json_u64(void *d, const char *key, uint64_t v)
{
	if (!tel_key_valid(key) || json_object_size(d) >= RTE_TEL_MAX_DICT_ENTRIES)
		return -EINVAL;
	/* json_int_t is long long: figures above 2^63 do not occur (counters would wrap first). */
	return json_object_set_new(d, key, json_integer((json_int_t)v)) == 0 ? 0 : -ENOMEM;
}

static int
json_str(void *d, const char *key, const char *v)
{
	if (!tel_key_valid(key) || json_object_size(d) >= RTE_TEL_MAX_DICT_ENTRIES)
		return -EINVAL;
	if (strlen(v) >= RTE_TEL_MAX_STRING_LEN)
		return -E2BIG;
	return json_object_set_new(d, key, json_string(v)) == 0 ? 0 : -ENOMEM;
}

static void *
json_dict_new(void)
{
	return json_object();
}

static int
json_dict_add(void *d, const char *key, void *sub)
{
	if (!tel_key_valid(key) || json_object_size(d) >= RTE_TEL_MAX_DICT_ENTRIES) {
		json_decref(sub);
		return -EINVAL;
	}
	return json_object_set_new(d, key, sub) == 0 ? 0 : -ENOMEM;
}

static void
json_dict_free(void *sub)
{
	json_decref(sub);
}

static const struct out json_out = {json_u64, json_str, json_dict_new, json_dict_add,
                                    json_dict_free};

/* ---- keys ---- */

/* @p name as a telemetry key: [A-Za-z0-9_] kept, anything else '_'. */
static void
key_of(char *out, const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i < KEY_MAX - 1; i++)
		out[i] = isalnum((unsigned char)name[i]) ? name[i] : '_';
	out[i] = '\0';
	if (i == 0)
		snprintf(out, KEY_MAX, "_");
}

/*
 * Keys for @p n names (stride @p stride bytes apart, from @p names): the
 * sanitized name, with "_<index>" appended when an earlier entry already
 * has that key ("a-b" and "a_b" are both legal port names).
 */
static void
keys_of(char (*keys)[KEY_MAX], const char *names, size_t stride, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		key_of(keys[i], names + (size_t)i * stride);
		for (unsigned j = 0; j < i; j++) {
			if (strcmp(keys[i], keys[j]) == 0) {
				char tmp[KEY_MAX];

				snprintf(tmp, sizeof(tmp), "%.*s_%u", KEY_MAX - 8, keys[i], i);
				memcpy(keys[i], tmp, sizeof(tmp));
				break;
			}
		}
	}
}

static bool
has_param(const char *params)
{
	return params != NULL && params[0] != '\0';
}

/* ---- the commands ---- */

#define TRY(x)                      \
	do {                        \
		if ((rc = (x)) < 0) \
			return rc;  \
	} while (0)

static int
cmd_info(const struct out *o, void *d, const struct mg_metrics_snapshot *s, const char *params)
{
	int rc;

	(void)params;
	TRY(o->str(d, "version", s->version));
	TRY(o->u64(d, "uptime_seconds", s->uptime_seconds));
	return 0;
}

static int
port_dict(const struct out *o, void *d, const struct mg_metrics_port *p)
{
	int rc;

	TRY(o->str(d, "name", p->name));
	TRY(o->u64(d, "rx_packets", p->rx_packets));
	TRY(o->u64(d, "rx_bytes", p->rx_bytes));
	TRY(o->u64(d, "tx_packets", p->tx_packets));
	TRY(o->u64(d, "tx_bytes", p->tx_bytes));
	TRY(o->u64(d, "dropped", p->dropped));
	return 0;
}

static int
cmd_ports(const struct out *o, void *d, const struct mg_metrics_snapshot *s, const char *params)
{
	char keys[MG_METRICS_MAX_PORTS][KEY_MAX];
	unsigned n = s->n_ports < MG_METRICS_MAX_PORTS ? s->n_ports : MG_METRICS_MAX_PORTS;
	unsigned i;
	int rc;

	keys_of(keys, s->ports[0].name, sizeof(s->ports[0]), n);
	if (has_param(params)) {
		for (i = 0; i < n; i++)
			if (strcmp(params, s->ports[i].name) == 0 || strcmp(params, keys[i]) == 0)
				return port_dict(o, d, &s->ports[i]);
		return -ENOENT;
	}
	for (i = 0; i < n; i++) {
		void *sub = o->dict_new();

		if (sub == NULL)
			return -ENOMEM;
		if ((rc = port_dict(o, sub, &s->ports[i])) < 0) {
			o->dict_free(sub);
			return rc;
		}
		TRY(o->dict_add(d, keys[i], sub));
	}
	return 0;
}

static int
cmd_verdicts(const struct out *o, void *d, const struct mg_metrics_snapshot *s, const char *params)
{
	const struct mg_metrics_verdicts *v = &s->verdicts;
	void *denied;
	int rc;

	(void)params;
	TRY(o->u64(d, "allowed", v->allowed));
	denied = o->dict_new();
	if (denied == NULL)
		return -ENOMEM;
	if ((rc = o->u64(denied, "egress", v->denied_egress)) < 0 ||
	    (rc = o->u64(denied, "ingress", v->denied_ingress)) < 0) {
		o->dict_free(denied);
		return rc;
	}
	TRY(o->dict_add(d, "denied", denied));
	TRY(o->u64(d, "ct_tracked", v->ct_tracked));
	TRY(o->u64(d, "ct_rechecked", v->ct_rechecked));
	TRY(o->u64(d, "ct_related", v->ct_related));
	TRY(o->u64(d, "fragments_passed", v->fragments_passed));
	TRY(o->u64(d, "arp_passed", v->arp_passed));
	TRY(o->u64(d, "nd_passed", v->nd_passed));
	TRY(o->u64(d, "non_ip_passed", v->non_ip_passed));
	return 0;
}

static int
cmd_drops(const struct out *o, void *d, const struct mg_metrics_snapshot *s, const char *params)
{
	int rc;

	(void)params;
	for (unsigned r = MG_DROP_NONE + 1; r < MG_DROP__MAX; r++)
		TRY(o->u64(d, mg_drop_label(r), s->drops[r]));
	return 0;
}

static int
cmd_ipcache(const struct out *o, void *d, const struct mg_metrics_snapshot *s, const char *params)
{
	void *e;
	int rc;

	(void)params;
	e = o->dict_new();
	if (e == NULL)
		return -ENOMEM;
	if ((rc = o->u64(e, "ipv4", s->ipcache_ipv4)) < 0 ||
	    (rc = o->u64(e, "ipv6", s->ipcache_ipv6)) < 0) {
		o->dict_free(e);
		return rc;
	}
	return o->dict_add(d, "entries", e);
}

static int
cmd_identities(const struct out *o, void *d, const struct mg_metrics_snapshot *s,
               const char *params)
{
	char keys[MG_METRICS_MAX_CLUSTERS][KEY_MAX];
	unsigned n = s->n_identity_clusters < MG_METRICS_MAX_CLUSTERS ? s->n_identity_clusters
	                                                              : MG_METRICS_MAX_CLUSTERS;
	int rc;

	(void)params;
	keys_of(keys, s->identities[0].cluster, sizeof(s->identities[0]), n);
	for (unsigned i = 0; i < n && i < TEL_LIST_MAX; i++)
		TRY(o->u64(d, keys[i], s->identities[i].count));
	if (n > TEL_LIST_MAX)
		TRY(o->u64(d, "more", n - TEL_LIST_MAX));
	return 0;
}

static int
cmd_policy(const struct out *o, void *d, const struct mg_metrics_snapshot *s, const char *params)
{
	void *r;
	int rc;

	(void)params;
	TRY(o->u64(d, "policies", s->policy.policies));
	TRY(o->u64(d, "rules", s->policy.rules));
	TRY(o->u64(d, "revision", s->policy.revision));
	r = o->dict_new();
	if (r == NULL)
		return -ENOMEM;
	if ((rc = o->u64(r, "ok", s->policy.reloads_ok)) < 0 ||
	    (rc = o->u64(r, "failed", s->policy.reloads_failed)) < 0) {
		o->dict_free(r);
		return rc;
	}
	return o->dict_add(d, "reloads", r);
}

static int
cmd_conntrack(const struct out *o, void *d, const struct mg_metrics_snapshot *s, const char *params)
{
	const struct mg_metrics_conntrack *c = &s->conntrack;
	int rc;

	(void)params;
	TRY(o->u64(d, "entries", c->entries));
	TRY(o->u64(d, "fragments", c->fragments));
	TRY(o->u64(d, "memory_bytes", c->memory_bytes));
	TRY(o->u64(d, "created", c->created));
	TRY(o->u64(d, "expired", c->expired));
	TRY(o->u64(d, "full", c->full));
	TRY(o->u64(d, "fragments_full", c->fragments_full));
	return 0;
}

static int
kv_dict(const struct out *o, void *d, const struct mg_metrics_kvstore *k)
{
	int rc;

	TRY(o->str(d, "name", k->cluster));
	TRY(o->u64(d, "connected", k->connected));
	TRY(o->u64(d, "synced", k->synced));
	TRY(o->u64(d, "entries", k->entries));
	TRY(o->u64(d, "events", k->events));
	TRY(o->u64(d, "full_syncs", k->full_syncs));
	TRY(o->u64(d, "conflicts", k->conflicts));
	TRY(o->u64(d, "mass_delete_refusals", k->mass_delete_refusals));
	TRY(o->u64(d, "disconnects", k->disconnects));
	for (unsigned c = 0; c < MG_KV_RESYNC_N; c++) {
		char key[64];

		snprintf(key, sizeof(key), "resyncs_%s",
		         mg_kv_resync_cause_name((enum mg_kv_resync_cause)c));
		TRY(o->u64(d, key, k->resyncs[c]));
	}
	TRY(o->u64(d, "rejected_range", k->rejected_range));
	TRY(o->u64(d, "rejected_parse", k->rejected_parse));
	TRY(o->u64(d, "rejected_cluster", k->rejected_cluster));
	TRY(o->u64(d, "rejected_heartbeat", k->rejected_heartbeat));
	TRY(o->u64(d, "skipped_no_identity", k->skipped_no_identity));
	TRY(o->u64(d, "named_ports_dropped", k->named_ports_dropped));
	TRY(o->u64(d, "heartbeat_at", k->heartbeat_at));
	TRY(o->u64(d, "stale", k->stale));
	TRY(o->u64(d, "stale_since", k->stale_since));
	TRY(o->u64(d, "removing", k->removing));
	TRY(o->u64(d, "removal_at", k->removal_at));
	TRY(o->u64(d, "removed", k->removed));
	TRY(o->u64(d, "removals", k->removals));
	TRY(o->u64(d, "lag_ms", k->lag_ms));
	return 0;
}

static int
cmd_kvstore(const struct out *o, void *d, const struct mg_metrics_snapshot *s, const char *params)
{
	char keys[MG_METRICS_MAX_CLUSTERS][KEY_MAX];
	unsigned n =
	        s->n_kvstore < MG_METRICS_MAX_CLUSTERS ? s->n_kvstore : MG_METRICS_MAX_CLUSTERS;
	unsigned i;
	int rc;

	keys_of(keys, s->kvstore[0].cluster, sizeof(s->kvstore[0]), n);
	if (has_param(params)) {
		for (i = 0; i < n; i++)
			if (strcmp(params, s->kvstore[i].cluster) == 0 ||
			    strcmp(params, keys[i]) == 0)
				return kv_dict(o, d, &s->kvstore[i]);
		return -ENOENT;
	}
	/* Beyond what one reply holds: ask for a cluster by name. */
	for (i = 0; i < n && i < TEL_KV_LIST_MAX; i++) {
		void *sub = o->dict_new();

		if (sub == NULL)
			return -ENOMEM;
		if ((rc = kv_dict(o, sub, &s->kvstore[i])) < 0) {
			o->dict_free(sub);
			return rc;
		}
		TRY(o->dict_add(d, keys[i], sub));
	}
	if (n > TEL_KV_LIST_MAX)
		TRY(o->u64(d, "more", n - TEL_KV_LIST_MAX));
	return 0;
}

static int
worker_dict(const struct out *o, void *d, const struct mg_metrics_worker *w)
{
	double r = w->busy_ratio;
	int rc;

	if (!(r >= 0.0)) /* NaN too */
		r = 0.0;
	if (r > 1.0)
		r = 1.0;
	TRY(o->u64(d, "lcore", w->lcore));
	TRY(o->u64(d, "loops", w->loops));
	TRY(o->u64(d, "busy_loops", w->busy_loops));
	TRY(o->u64(d, "busy_ratio_ppm", (uint64_t)(r * 1e6 + 0.5)));
	return 0;
}

static int
cmd_workers(const struct out *o, void *d, const struct mg_metrics_snapshot *s, const char *params)
{
	unsigned n = s->n_workers < MG_METRICS_MAX_WORKERS ? s->n_workers : MG_METRICS_MAX_WORKERS;
	unsigned i;
	int rc;

	if (has_param(params)) {
		char *end;
		unsigned long w;

		errno = 0;
		w = strtoul(params, &end, 10);
		if (errno != 0 || *end != '\0' || !isdigit((unsigned char)params[0]) || w >= n)
			return -ENOENT;
		return worker_dict(o, d, &s->workers[w]);
	}
	for (i = 0; i < n; i++) {
		char key[16];
		void *sub = o->dict_new();

		if (sub == NULL)
			return -ENOMEM;
		if ((rc = worker_dict(o, sub, &s->workers[i])) < 0) {
			o->dict_free(sub);
			return rc;
		}
		snprintf(key, sizeof(key), "%u", i);
		TRY(o->dict_add(d, key, sub));
	}
	return 0;
}

static int
cmd_metrics_http(const struct out *o, void *d, const struct mg_metrics_snapshot *s,
                 const char *params)
{
	void *cuts;
	int rc = 0;

	(void)params;
	cuts = o->dict_new();
	if (cuts == NULL)
		return -ENOMEM;
	for (unsigned r = 0; r < MG_METRICS_HTTP_CUT_N && rc == 0; r++)
		rc = o->u64(cuts, mg_metrics_http_cut_label(r), s->http_cut[r]);
	if (rc < 0) {
		o->dict_free(cuts);
		return rc;
	}
	return o->dict_add(d, "connections_cut", cuts);
}

static int
cmd_control(const struct out *o, void *d, const struct mg_metrics_snapshot *s, const char *params)
{
	const struct mg_metrics_control *c = &s->control;
	int rc;

	(void)params;
	TRY(o->u64(d, "clients", c->clients));
	TRY(o->u64(d, "accepted", c->accepted));
	TRY(o->u64(d, "requests", c->requests));
	TRY(o->u64(d, "errors", c->errors));
	TRY(o->u64(d, "denied", c->denied));
	TRY(o->u64(d, "refused_busy", c->refused_busy));
	TRY(o->u64(d, "closed_idle", c->closed_idle));
	TRY(o->u64(d, "closed_slow", c->closed_slow));
	TRY(o->u64(d, "closed_oversize", c->closed_oversize));
	TRY(o->u64(d, "closed_stuck", c->closed_stuck));
	TRY(o->u64(d, "monitor_events", c->monitor_events));
	TRY(o->u64(d, "monitor_dropped", c->monitor_dropped));
	TRY(o->u64(d, "monitor_ring_lost", c->monitor_ring_lost));
	return 0;
}

/* ---- the table ---- */

static const struct command {
	const char *name, *help;
	int (*fn)(const struct out *, void *, const struct mg_metrics_snapshot *, const char *);
} commands[] = {
        {"/meshgate/info", "meshgate version and uptime. No parameters", cmd_info},
        {"/meshgate/ports", "Per-port packets, bytes and drops. Parameter: port name", cmd_ports},
        {"/meshgate/verdicts", "Policy verdicts and passes. No parameters", cmd_verdicts},
        {"/meshgate/drops", "Dropped frames by reason. No parameters", cmd_drops},
        {"/meshgate/ipcache", "ipcache entries by family. No parameters", cmd_ipcache},
        {"/meshgate/identities", "Identities by cluster. No parameters", cmd_identities},
        {"/meshgate/policy", "Policies, rules, revision, reloads. No parameters", cmd_policy},
        {"/meshgate/conntrack", "Conntrack table figures. No parameters", cmd_conntrack},
        {"/meshgate/kvstore", "kvstore sync per cluster. Parameter: cluster name", cmd_kvstore},
        {"/meshgate/workers", "Worker loops and busy ratio. Parameter: worker index", cmd_workers},
        {"/meshgate/metrics_http", "Connections the /metrics endpoint cut. No parameters",
         cmd_metrics_http},
        {"/meshgate/control", "Control socket connections and the monitor. No parameters",
         cmd_control},
};

/* The names alone, in the table's order: derived once from it. */
static const char *command_names[MG_ARRAY_SIZE(commands) + 1];
static pthread_once_t command_names_once = PTHREAD_ONCE_INIT;

static void
command_names_fill(void)
{
	for (size_t i = 0; i < MG_ARRAY_SIZE(commands); i++)
		command_names[i] = commands[i].name;
	command_names[MG_ARRAY_SIZE(commands)] = NULL;
}

const char *const *
mg_metrics_telemetry_commands(void)
{
	pthread_once(&command_names_once, command_names_fill);
	return command_names;
}

static const struct command *
find_command(const char *cmd)
{
	if (cmd == NULL)
		return NULL;
	for (size_t i = 0; i < MG_ARRAY_SIZE(commands); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

int
mg_metrics_telemetry_fill(const char *cmd, const char *params, const struct mg_metrics_snapshot *s,
                          struct rte_tel_data *d)
{
	const struct command *c = find_command(cmd);
	int rc;

	if (c == NULL)
		return mg_errno_set(ENOENT);
	rc = rte_tel_data_start_dict(d);
	if (rc == 0)
		rc = c->fn(&tel_out, d, s, params);
	return rc < 0 ? mg_errno_set(-rc) : 0;
}

json_t *
mg_metrics_json(const char *cmd, const char *params, const struct mg_metrics_snapshot *s)
{
	const struct command *c = find_command(cmd);
	json_t *o;
	int rc;

	if (c == NULL) {
		errno = ENOENT;
		return NULL;
	}
	o = json_object();
	if (o == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	rc = c->fn(&json_out, o, s, params);
	if (rc < 0) {
		json_decref(o);
		errno = -rc;
		return NULL;
	}
	return o;
}

/* ---- registration ---- */

/*
 * Telemetry callbacks get no user argument: the provider lives here, set
 * once before the first command is registered (rte_telemetry_register_cmd
 * takes a lock, which orders it before any callback can run).
 */
static struct {
	mg_metrics_collect_fn collect;
	void *arg;
} provider;

static int
on_command(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct mg_metrics_snapshot *s;
	int rc;

	if (provider.collect == NULL)
		return -ENOENT;
	/* Tens of KiB: not for a telemetry thread's stack. */
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	rc = provider.collect(provider.arg, s);
	if (rc == 0)
		rc = mg_metrics_telemetry_fill(cmd, params, s, d);
	free(s);
	return rc < 0 ? rc : 0;
}

int
mg_metrics_telemetry_register(mg_metrics_collect_fn collect, void *arg)
{
	int rc;

	if (collect == NULL)
		return mg_errno_set(EINVAL);
	if (provider.collect != NULL)
		return mg_errno_set(EEXIST);
	provider.collect = collect;
	provider.arg = arg;
	for (size_t i = 0; i < MG_ARRAY_SIZE(commands); i++) {
		rc = rte_telemetry_register_cmd(commands[i].name, on_command, commands[i].help);
		if (rc != 0)
			return mg_errno_set(rc < 0 ? -rc : rc);
	}
	return 0;
}
