/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The meshgate_replicator_* families (docs/metrics.md), rendered on the
 * metrics endpoint's thread under the replicator's lock: the lease, Redis,
 * and per cluster the state, entries, events, failures and reconnects by
 * cause, values refused by reason, and the rate limiter's waits by call
 * (a histogram, as the talk tells operators to watch).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rep_priv.h"

#define P "meshgate_replicator_"

static void
fam(struct mg_metrics_buf *b, const char *name, enum mg_metrics_type t, const char *help)
{
	mg_metrics_write_family(b, name, t, help);
}

static void
lease_metrics(struct mg_replicator *r, struct mg_metrics_buf *b)
{
	fam(b, P "lease_holder", MG_METRICS_GAUGE,
	    "1 when this replica holds the lease and writes");
	mg_metrics_write_u64(b, P "lease_holder", NULL, r->holder);
	fam(b, P "lease_acquisitions_total", MG_METRICS_COUNTER,
	    "Times this replica took the lease");
	mg_metrics_write_u64(b, P "lease_acquisitions_total", NULL, r->lease_acquired);
	fam(b, P "lease_renewals_total", MG_METRICS_COUNTER, "Lease renewals");
	mg_metrics_write_u64(b, P "lease_renewals_total", NULL, r->lease_renewals);
	fam(b, P "lease_expirations_total", MG_METRICS_COUNTER,
	    "Leases this replica lost: found gone or taken at renewal, or not renewed in time");
	mg_metrics_write_u64(b, P "lease_expirations_total", NULL,
	                     r->lease_lost + r->lease_expired);
	fam(b, P "lease_takeovers_total", MG_METRICS_COUNTER,
	    "Leases taken over from another replica");
	mg_metrics_write_u64(b, P "lease_takeovers_total", NULL, r->takeovers);
	fam(b, P "writes_fenced_total", MG_METRICS_COUNTER,
	    "Writes Redis refused because the lease was another replica's");
	mg_metrics_write_u64(b, P "writes_fenced_total", NULL, r->fenced);
	fam(b, P "redis_connected", MG_METRICS_GAUGE, "1 while connected to the site Redis");
	mg_metrics_write_u64(b, P "redis_connected", NULL, r->w != NULL);
	fam(b, P "redis_call_seconds", MG_METRICS_GAUGE,
	    "How long the writer has been waiting for its current Redis call (0: not waiting)");
	mg_metrics_write_double(b, P "redis_call_seconds", NULL, rep_io_seconds(r));
	fam(b, P "redis_errors_total", MG_METRICS_COUNTER, "Redis connection and command failures");
	mg_metrics_write_u64(b, P "redis_errors_total", NULL, r->redis_errors);
	fam(b, P "redis_losses_total", MG_METRICS_COUNTER,
	    "Times Redis was found without the replicator's data (flushed, restarted empty)");
	mg_metrics_write_u64(b, P "redis_losses_total", NULL, r->losses);
	fam(b, P "clusters", MG_METRICS_GAUGE, "Remote clusters configured (draining included)");
	mg_metrics_write_u64(b, P "clusters", NULL, r->n_cl);
}

static void
per_cluster(struct mg_replicator *r, struct mg_metrics_buf *b, const struct rep_src_stats *st)
{
	fam(b, P "cluster_state", MG_METRICS_GAUGE, "1 for the state each cluster's source is in");
	for (size_t i = 0; i < r->n_cl; i++) {
		const struct rep_cluster *cl = r->cl[i];
		const char *state = cl->draining ? "draining" : rep_state_name(st[i].state);
		const char *l[] = {"cluster", cl->name, "state", state, NULL};
		mg_metrics_write_u64(b, P "cluster_state", l, 1);
	}
	fam(b, P "synced", MG_METRICS_GAUGE, "1 when the cluster's copy is complete");
	for (size_t i = 0; i < r->n_cl; i++) {
		const char *l[] = {"cluster", r->cl[i]->name, NULL};
		mg_metrics_write_u64(b, P "synced", l, r->cl[i]->synced);
	}
	fam(b, P "entries", MG_METRICS_GAUGE, "Keys read from the cluster's etcd, by kind");
	for (size_t i = 0; i < r->n_cl; i++) {
		const char *l1[] = {"cluster", r->cl[i]->name, "kind", "identities", NULL};
		const char *l2[] = {"cluster", r->cl[i]->name, "kind", "ip", NULL};
		mg_metrics_write_u64(b, P "entries", l1, r->cl[i]->map[REP_IDS].n);
		mg_metrics_write_u64(b, P "entries", l2, r->cl[i]->map[REP_IP].n);
	}
	fam(b, P "events_total", MG_METRICS_COUNTER, "Watch events received, by cluster");
	for (size_t i = 0; i < r->n_cl; i++) {
		const char *l[] = {"cluster", r->cl[i]->name, NULL};
		mg_metrics_write_u64(b, P "events_total", l, r->cl[i]->events);
	}
	fam(b, P "writes_total", MG_METRICS_COUNTER,
	    "Puts and deletes queued to Redis, by cluster");
	for (size_t i = 0; i < r->n_cl; i++) {
		const char *l1[] = {"cluster", r->cl[i]->name, "op", "put", NULL};
		const char *l2[] = {"cluster", r->cl[i]->name, "op", "del", NULL};
		mg_metrics_write_u64(b, P "writes_total", l1, r->cl[i]->puts);
		mg_metrics_write_u64(b, P "writes_total", l2, r->cl[i]->dels);
	}
	fam(b, P "values_refused_total", MG_METRICS_COUNTER,
	    "Values not written because the gateways would refuse them, by reason");
	for (size_t i = 0; i < r->n_cl; i++)
		for (unsigned k = 0; k < REP_R_COUNT; k++) {
			const char *l[] = {"cluster", r->cl[i]->name, "reason",
			                   rep_refuse_name((enum rep_refuse_reason)k), NULL};
			mg_metrics_write_u64(b, P "values_refused_total", l, r->cl[i]->refused[k]);
		}
	fam(b, P "entries_skipped_total", MG_METRICS_COUNTER,
	    "Entries not written: filtered out, or ipcache entries without identity (ID 0)");
	for (size_t i = 0; i < r->n_cl; i++) {
		const char *l1[] = {"cluster", r->cl[i]->name, "reason", "filtered", NULL};
		const char *l2[] = {"cluster", r->cl[i]->name, "reason", "id_zero", NULL};
		mg_metrics_write_u64(b, P "entries_skipped_total", l1, r->cl[i]->filtered);
		mg_metrics_write_u64(b, P "entries_skipped_total", l2, r->cl[i]->id_zero);
	}
}

static void
by_cause(struct mg_replicator *r, struct mg_metrics_buf *b, const struct rep_src_stats *st,
         const char *name, const char *help, bool reconnects)
{
	fam(b, name, MG_METRICS_COUNTER, help);
	for (size_t i = 0; i < r->n_cl; i++)
		for (unsigned c = 0; c < REP_C_COUNT; c++) {
			const char *l[] = {"cluster", r->cl[i]->name, "cause",
			                   rep_cause_name((enum rep_cause)c), NULL};
			mg_metrics_write_u64(b, name, l,
			                     reconnects ? st[i].reconnects[c] : st[i].failures[c]);
		}
}

/* A family of one value per cluster: the uint64_t (or, @p dbl, double) at @p off in its stats. */
static void
per_source(struct mg_replicator *r, struct mg_metrics_buf *b, const char *name,
           enum mg_metrics_type t, const char *help, const struct rep_src_stats *st, size_t off,
           bool dbl)
{
	fam(b, name, t, help);
	for (size_t i = 0; i < r->n_cl; i++) {
		const char *l[] = {"cluster", r->cl[i]->name, NULL};
		const char *f = (const char *)&st[i] + off;
		if (dbl)
			mg_metrics_write_double(b, name, l, *(const double *)(const void *)f);
		else
			mg_metrics_write_u64(b, name, l, *(const uint64_t *)(const void *)f);
	}
}

static void
source_metrics(struct mg_replicator *r, struct mg_metrics_buf *b, const struct rep_src_stats *st)
{
	by_cause(r, b, st, P "remote_failures_total",
	         "Failures talking to a cluster's etcd, by cause", false);
	by_cause(r, b, st, P "remote_reconnects_total",
	         "Sessions with a cluster's etcd started over, by cause", true);
	per_source(r, b, P "lists_total", MG_METRICS_COUNTER, "Full lists of a cluster's prefixes",
	           st, offsetof(struct rep_src_stats, lists), false);
	fam(b, P "revision", MG_METRICS_GAUGE, "Last etcd revision seen, by cluster");
	for (size_t i = 0; i < r->n_cl; i++) {
		const char *l[] = {"cluster", r->cl[i]->name, NULL};
		mg_metrics_write_u64(b, P "revision", l, (uint64_t)st[i].revision);
	}
	fam(b, P "last_heartbeat_timestamp_seconds", MG_METRICS_GAUGE,
	    "When the cluster's etcd heartbeat last changed (0: not yet)");
	for (size_t i = 0; i < r->n_cl; i++) {
		const char *l[] = {"cluster", r->cl[i]->name, NULL};
		mg_metrics_write_double(b, P "last_heartbeat_timestamp_seconds", l,
		                        (double)st[i].last_heartbeat_at / 1e3);
	}
	fam(b, P "last_event_timestamp_seconds", MG_METRICS_GAUGE,
	    "When the cluster's last watch event arrived (0: not yet)");
	for (size_t i = 0; i < r->n_cl; i++) {
		const char *l[] = {"cluster", r->cl[i]->name, NULL};
		mg_metrics_write_double(b, P "last_event_timestamp_seconds", l,
		                        (double)st[i].last_event_at / 1e3);
	}
	per_source(r, b, P "queue_bytes", MG_METRICS_GAUGE,
	           "Bytes read from the cluster's etcd and not yet taken by the writer", st,
	           offsetof(struct rep_src_stats, queue_bytes), false);
	per_source(r, b, P "queue_waits_total", MG_METRICS_COUNTER,
	           "Times the cluster's reader waited because its queue held more than "
	           "limits.queue_bytes (back-pressure; nothing is dropped)",
	           st, offsetof(struct rep_src_stats, queue_waits), false);
	per_source(r, b, P "queue_wait_seconds_total", MG_METRICS_COUNTER,
	           "Seconds the cluster's reader waited for room in its queue", st,
	           offsetof(struct rep_src_stats, queue_wait_sum), true);
	fam(b, P "rate_limiter_wait_seconds", MG_METRICS_HISTOGRAM,
	    "Time etcd requests waited for the cluster's rate limiter, by call");
	for (size_t i = 0; i < r->n_cl; i++)
		for (unsigned c = 0; c < REP_CALL_COUNT; c++) {
			const char *l[] = {"cluster", r->cl[i]->name, "call",
			                   rep_call_name((enum rep_call)c), NULL};
			mg_metrics_write_histogram(b, P "rate_limiter_wait_seconds", l,
			                           rep_hist_bounds, st[i].wait_hist[c],
			                           REP_HIST_BUCKETS, st[i].wait_sum[c],
			                           st[i].wait_count[c]);
		}
}

int
mg_replicator_metrics(void *arg, struct mg_metrics_buf *b)
{
	struct mg_replicator *r = arg;
	pthread_mutex_lock(&r->lock);
	struct rep_src_stats *st = calloc(r->n_cl ? r->n_cl : 1, sizeof(*st));
	if (st == NULL) {
		pthread_mutex_unlock(&r->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->n_cl; i++) {
		st[i].state = REP_ST_STOPPED;
		if (r->cl[i]->src != NULL) {
			pthread_mutex_lock(&r->cl[i]->src->mu);
			st[i] = r->cl[i]->src->st;
			pthread_mutex_unlock(&r->cl[i]->src->mu);
		}
	}
	lease_metrics(r, b);
	per_cluster(r, b, st);
	source_metrics(r, b, st);
	pthread_mutex_unlock(&r->lock);
	free(st);
	return b->err ? -b->err : 0;
}
