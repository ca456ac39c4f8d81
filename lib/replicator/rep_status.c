/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the replicator tells: `replicator status` (per cluster: state,
 * config id, revision, entries, last event and heartbeat, resyncs,
 * rate-limit waits, values refused; the lease holder and its token age),
 * the control commands, and the meshgate_replicator_* metrics.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rep_priv.h"

void
rep_file_note(struct mg_replicator *r, const char *name, int rc, const char *why)
{
	if (mg_grow(&r->files, &r->cap_files, r->n_files, sizeof(*r->files), 16) < 0)
		return;
	struct rep_file *f = &r->files[r->n_files++];
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->rc = rc;
	snprintf(f->why, sizeof(f->why), "%s", rc < 0 ? why : "");
}

/* A source's stats, copied under its lock. */
static void
src_stats(const struct rep_cluster *cl, struct rep_src_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->state = REP_ST_STOPPED;
	if (cl->src == NULL)
		return;
	pthread_mutex_lock(&cl->src->mu);
	*st = cl->src->st;
	pthread_mutex_unlock(&cl->src->mu);
}

static size_t
kept(const struct rep_map *m)
{
	size_t n = 0, i = 0;
	const struct rep_ent *e;
	while ((e = rep_map_next(m, &i)) != NULL)
		n += e->kept;
	return n;
}

static json_t *
age(uint64_t at_ms, uint64_t now_ms)
{
	if (at_ms == 0)
		return json_null();
	return json_real((double)(now_ms > at_ms ? now_ms - at_ms : 0) / 1000.0);
}

static json_t *
counts(const uint64_t *v, size_t n, const char *(*name)(unsigned))
{
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++)
		if (v[i] != 0)
			json_object_set_new(o, name((unsigned)i), json_integer((json_int_t)v[i]));
	return o;
}

static const char *
cause_name_u(unsigned c)
{
	return rep_cause_name((enum rep_cause)c);
}

static const char *
refuse_name_u(unsigned c)
{
	return rep_refuse_name((enum rep_refuse_reason)c);
}

static json_t *
cluster_json(const struct mg_replicator *r, const struct rep_cluster *cl, uint64_t now)
{
	struct rep_src_stats st;
	char cid[24];
	src_stats(cl, &st);
	snprintf(cid, sizeof(cid), "%016" PRIx64, st.cluster_id);
	const char *state = cl->draining ? "draining" : rep_state_name(st.state);
	if (!cl->draining && cl->have_cfg && !cl->cfg_ok)
		state = "refused";
	json_t *refusals = json_array();
	for (unsigned i = 0; i < cl->n_refusals; i++) {
		unsigned k = (cl->refusal_next + REP_REFUSALS_KEPT - cl->n_refusals + i) %
		             REP_REFUSALS_KEPT;
		const struct rep_refusal *f = &cl->refusals[k];
		json_array_append_new(refusals,
		                      json_pack("{s:s, s:s, s:f}", "key", f->key, "why", f->why,
		                                "age", (double)(now - f->at) / 1e3));
	}
	json_t *o =
	        json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:I}, s:{s:i, s:b, s:b, s:s},"
	                  " s:b, s:b, s:{s:I, s:I}, s:{s:I, s:I}, s:I, s:I, s:I}",
	                  "name", cl->name, "file", cl->file, "state", state, "error",
	                  cl->cfg_why[0] ? cl->cfg_why : st.error, "etcd", "version", st.version,
	                  "cluster_id", st.cluster_id ? cid : "", "revision",
	                  (json_int_t)st.revision, "config", "id", (int)cl->cfg.id, "cached_source",
	                  cl->cached_prefixes, "ok", cl->cfg_ok, "why", cl->cfg_why, "synced",
	                  cl->synced, "canaries", cl->canaries_written, "entries", "identities",
	                  (json_int_t)cl->map[REP_IDS].n, "ip", (json_int_t)cl->map[REP_IP].n,
	                  "written", "identities", (json_int_t)kept(&cl->map[REP_IDS]), "ip",
	                  (json_int_t)kept(&cl->map[REP_IP]), "puts", (json_int_t)cl->puts, "dels",
	                  (json_int_t)cl->dels, "events", (json_int_t)cl->events);
	if (o == NULL) {
		json_decref(refusals);
		return NULL;
	}
	uint64_t wall = rep_wall_ms();
	json_object_set_new(o, "last_event_age", age(st.last_event_at, wall));
	json_object_set_new(o, "last_heartbeat_age", age(st.last_heartbeat_at, wall));
	json_object_set_new(o, "synced_age", age(st.synced_at, wall));
	json_object_set_new(o, "lists", json_integer((json_int_t)st.lists));
	json_object_set_new(o, "resyncs", json_integer((json_int_t)cl->resyncs));
	json_object_set_new(o, "reconnects", counts(st.reconnects, REP_C_COUNT, cause_name_u));
	json_object_set_new(o, "failures", counts(st.failures, REP_C_COUNT, cause_name_u));
	json_object_set_new(o, "rate_limit",
	                    json_pack("{s:b, s:I, s:f}", "bootstrap", st.bootstrap, "waits",
	                              (json_int_t)st.rate_waits, "wait_seconds",
	                              st.wait_sum[0] + st.wait_sum[1] + st.wait_sum[2]));
	json_object_set_new(
	        o, "queue",
	        json_pack("{s:I, s:I, s:I, s:I, s:f}", "bytes", (json_int_t)st.queue_bytes, "peak",
	                  (json_int_t)st.queue_peak, "limit", (json_int_t)r->c->queue_bytes,
	                  "waits", (json_int_t)st.queue_waits, "wait_seconds", st.queue_wait_sum));
	json_object_set_new(o, "refused", counts(cl->refused, REP_R_COUNT, refuse_name_u));
	json_object_set_new(o, "refusals", refusals);
	json_object_set_new(o, "filtered", json_integer((json_int_t)cl->filtered));
	json_object_set_new(o, "id_zero", json_integer((json_int_t)cl->id_zero));
	if (cl->draining)
		json_object_set_new(
		        o, "drain_in",
		        json_real(cl->drain_at > now ? (double)(cl->drain_at - now) / 1e3 : 0.0));
	(void)r;
	return o;
}

static json_t *
files_json(const struct mg_replicator *r)
{
	json_t *a = json_array();
	for (size_t i = 0; i < r->n_files; i++) {
		const struct rep_file *f = &r->files[i];
		json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "name", f->name, "status",
		                                   f->rc == 1   ? "cluster"
		                                   : f->rc == 0 ? "ignored (no endpoints)"
		                                                : "error",
		                                   "error", f->why));
	}
	return a;
}

static json_t *
status_locked(struct mg_replicator *r)
{
	const struct mg_rep_config *c = r->c;
	uint64_t now = rep_now_ms();
	json_t *cls = json_array();
	for (size_t i = 0; i < r->n_cl; i++)
		json_array_append_new(cls, cluster_json(r, r->cl[i], now));
	json_t *lease = json_pack(
	        "{s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "key", MG_REP_LEASE_KEY, "holder",
	        r->holder, "holder_token", r->holder ? r->token : r->holder_token, "ttl_ms",
	        (json_int_t)c->lease_ttl_ms, "acquired", (json_int_t)r->lease_acquired, "renewals",
	        (json_int_t)r->lease_renewals, "lost", (json_int_t)r->lease_lost, "expired",
	        (json_int_t)r->lease_expired, "takeovers", (json_int_t)r->takeovers);
	json_object_set_new(lease, "token_age",
	                    r->holder ? json_real((double)(now - r->lease_since) / 1e3)
	                              : json_null());
	json_object_set_new(lease, "other_pttl_ms",
	                    r->holder ? json_null() : json_integer((json_int_t)r->holder_pttl));
	json_object_set_new(lease, "own_token", json_string(r->token));
	json_t *filter =
	        json_pack("{s:b, s:s}", "active", r->filter != NULL, "note", r->filter_note);
	json_t *call = r->io_since != 0 ? json_real(rep_io_seconds(r)) : json_null();
	return json_pack("{s:{s:s, s:i}, s:{s:s, s:b, s:s, s:I, s:I, s:I, s:o}, s:o, s:I, s:s, s:s,"
	                 " s:o, s:o, s:o}",
	                 "cluster", "name", c->cluster_name, "id", (int)c->cluster_id, "redis",
	                 "url", c->redis, "connected", r->w != NULL, "error", r->redis_error,
	                 "errors", (json_int_t)r->redis_errors, "losses", (json_int_t)r->losses,
	                 "fenced", (json_int_t)r->fenced, "call_seconds", call, "lease", lease,
	                 "uptime", (json_int_t)((rep_wall_ms() - r->started_at) / 1000),
	                 "config_dir", c->config_dir, "config_dir_error", r->dir_error, "files",
	                 files_json(r), "clusters", cls, "filter", filter);
}

json_t *
mg_replicator_status(struct mg_replicator *r)
{
	pthread_mutex_lock(&r->lock);
	json_t *o = status_locked(r);
	pthread_mutex_unlock(&r->lock);
	return o;
}

static int
cmd_status(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
           struct mg_error *err)
{
	(void)conn;
	(void)args;
	*result = mg_replicator_status(arg);
	if (*result == NULL) {
		mg_error_set(err, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static const struct mg_ctl_command commands[] = {
        {"replicator.status", "clusters, lease, Redis: what the replicator does", false, cmd_status,
         NULL},
        {"replicator.troubleshoot",
         "per cluster: config file, DNS, TCP, TLS, certificates, etcd, cluster config, "
         "canaries",
         false, rep_cmd_troubleshoot, NULL},
};

int
mg_replicator_register(struct mg_replicator *r, struct mg_ctl_server *srv, struct mg_error *err)
{
	return mg_ctl_register_table(srv, commands, sizeof(commands) / sizeof(commands[0]), r, err);
}
