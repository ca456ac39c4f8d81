/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The snapshot helpers and the Prometheus side of lib/metrics: a small
 * text writer for exposition format 0.0.4 over a growable buffer, and the
 * renderer that turns a struct mg_metrics_snapshot into every meshgate_*
 * family. The family list here is the contract docs/metrics.md describes
 * (and mg_metrics_telemetry.c mirrors, docs/metrics.md maps one onto the
 * other): changing a name breaks dashboards, so once released names are
 * only ever added.
 *
 * Label values come from the configuration (port and cluster names) and
 * fixed tables (drop reasons, causes); they are escaped all the same, so a
 * strange name can never break the exposition.
 */
#include "mg_metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- snapshot helpers ---- */

void
mg_metrics_snapshot_set_counters(struct mg_metrics_snapshot *s, const struct mg_dp_counters *c,
                                 unsigned n_ports)
{
	unsigned i;

	if (n_ports > MG_METRICS_MAX_PORTS)
		n_ports = MG_METRICS_MAX_PORTS;
	s->n_ports = n_ports;
	for (i = 0; i < n_ports; i++) {
		s->ports[i].rx_packets = c->rx_pkts[i];
		s->ports[i].rx_bytes = c->rx_bytes[i];
		s->ports[i].tx_packets = c->tx_pkts[i];
		s->ports[i].tx_bytes = c->tx_bytes[i];
		s->ports[i].dropped = c->port_drops[i];
	}
	s->verdicts.allowed = c->allowed;
	s->verdicts.denied_egress = c->denied_egress;
	s->verdicts.denied_ingress = c->denied_ingress;
	s->verdicts.ct_tracked = c->ct_tracked;
	s->verdicts.ct_rechecked = c->ct_rechecked;
	s->verdicts.ct_related = c->ct_related;
	s->verdicts.fragments_passed = c->frag_passed;
	s->verdicts.arp_passed = c->arp;
	s->verdicts.nd_passed = c->nd;
	s->verdicts.non_ip_passed = c->non_ip;
	memcpy(s->drops, c->drops, sizeof(s->drops));
}

void
mg_metrics_snapshot_set_ct(struct mg_metrics_snapshot *s, const struct mg_ct_stats *ct,
                           size_t memory)
{
	s->conntrack.entries = ct->entries;
	s->conntrack.fragments = ct->frags;
	s->conntrack.memory_bytes = memory;
	s->conntrack.created = ct->created;
	s->conntrack.expired = ct->expired;
	s->conntrack.full = ct->full;
	s->conntrack.fragments_full = ct->frag_full;
}

int
mg_metrics_snapshot_add_kvstore(struct mg_metrics_snapshot *s, const struct mg_kv_sync_stats *st)
{
	struct mg_metrics_kvstore *k;

	if (s->n_kvstore >= MG_METRICS_MAX_CLUSTERS)
		return mg_errno_set(ENOSPC);
	k = &s->kvstore[s->n_kvstore++];
	memset(k, 0, sizeof(*k));
	snprintf(k->cluster, sizeof(k->cluster), "%s", st->name);
	k->connected = st->connected;
	k->synced = st->synced;
	k->entries = st->entries;
	k->events = st->events;
	memcpy(k->resyncs, st->resyncs, sizeof(k->resyncs));
	k->full_syncs = st->full_syncs;
	k->lag_ms = st->lag_ms;
	k->rejected_range = st->rejected_range;
	k->rejected_parse = st->rejected_parse;
	k->rejected_cluster = st->rejected_cluster;
	k->rejected_heartbeat = st->heartbeat_invalid;
	k->skipped_no_identity = st->skipped_no_identity;
	k->named_ports_dropped = st->named_ports_dropped;
	k->heartbeat_at = st->heartbeat_at;
	k->conflicts = st->conflicts;
	k->removals = st->removals;
	k->stale = st->stale;
	k->removing = st->removing;
	k->removed = st->removed;
	k->stale_since = st->stale ? st->stale_since : 0;
	k->removal_at = st->removing ? st->removal_at : 0;
	k->stale_reason = st->stale ? (unsigned)st->stale_reason : 0;
	k->mass_delete_refusals = st->mass_delete_refusals;
	k->disconnects = st->disconnects;
	return 0;
}

void
mg_metrics_worker_update(struct mg_metrics_worker *w, uint64_t loops, uint64_t busy_loops)
{
	uint64_t dl = loops - w->loops, db = busy_loops - w->busy_loops;

	/* Counters only grow; a reset (new worker state) reads as a fresh start. */
	if (loops < w->loops || busy_loops < w->busy_loops) {
		dl = loops;
		db = busy_loops;
	}
	w->busy_ratio = dl == 0 ? 0.0 : (double)db / (double)dl;
	if (w->busy_ratio > 1.0)
		w->busy_ratio = 1.0;
	w->loops = loops;
	w->busy_loops = busy_loops;
}

/* ---- the text writer ---- */

void
mg_metrics_buf_init(struct mg_metrics_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
mg_metrics_buf_free(struct mg_metrics_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void
mg_metrics_buf_append(struct mg_metrics_buf *b, const char *s, size_t n)
{
	if (b->err != 0)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (p == NULL) {
			b->err = ENOMEM;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
puts_buf(struct mg_metrics_buf *b, const char *s)
{
	mg_metrics_buf_append(b, s, strlen(s));
}

/* Escape for a label value (quote too) or for HELP text (no quote). */
static void
put_escaped(struct mg_metrics_buf *b, const char *s, bool quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *rep = NULL;

		if (*s == '\\')
			rep = "\\\\";
		else if (*s == '\n')
			rep = "\\n";
		else if (*s == '"' && quote)
			rep = "\\\"";
		if (rep == NULL)
			continue;
		mg_metrics_buf_append(b, run, (size_t)(s - run));
		puts_buf(b, rep);
		run = s + 1;
	}
	mg_metrics_buf_append(b, run, (size_t)(s - run));
}

void
mg_metrics_write_family(struct mg_metrics_buf *b, const char *name, enum mg_metrics_type type,
                        const char *help)
{
	puts_buf(b, "# HELP ");
	puts_buf(b, name);
	puts_buf(b, " ");
	put_escaped(b, help, false);
	puts_buf(b, "\n# TYPE ");
	puts_buf(b, name);
	puts_buf(b, type == MG_METRICS_COUNTER     ? " counter\n"
	            : type == MG_METRICS_HISTOGRAM ? " histogram\n"
	                                           : " gauge\n");
}

/*
 * name + suffix, then {labels} with le="@p le" last when @p le is not
 * NULL (a histogram bucket); no braces when there is no label at all.
 */
static void
put_sample(struct mg_metrics_buf *b, const char *name, const char *suffix,
           const char *const *labels, const char *le)
{
	bool any = false;

	puts_buf(b, name);
	puts_buf(b, suffix);
	for (size_t i = 0; labels != NULL && labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
		puts_buf(b, any ? "," : "{");
		any = true;
		puts_buf(b, labels[i]);
		puts_buf(b, "=\"");
		put_escaped(b, labels[i + 1], true);
		puts_buf(b, "\"");
	}
	if (le != NULL) {
		puts_buf(b, any ? ",le=\"" : "{le=\"");
		puts_buf(b, le);
		puts_buf(b, "\"");
		any = true;
	}
	if (any)
		puts_buf(b, "}");
}

static void
put_name_labels(struct mg_metrics_buf *b, const char *name, const char *const *labels)
{
	put_sample(b, name, "", labels, NULL);
}

/* @p v as the format writes it: NaN, +Inf, -Inf, or the shortest of %.15g / %.17g that reads back. */
static void
format_double(char *num, size_t size, double v)
{
	if (isnan(v))
		snprintf(num, size, "NaN");
	else if (isinf(v))
		snprintf(num, size, "%s", v > 0 ? "+Inf" : "-Inf");
	else {
		snprintf(num, size, "%.15g", v);
		if (strtod(num, NULL) != v)
			snprintf(num, size, "%.17g", v);
	}
}

void
mg_metrics_write_u64(struct mg_metrics_buf *b, const char *name, const char *const *labels,
                     uint64_t v)
{
	char num[32];

	put_name_labels(b, name, labels);
	snprintf(num, sizeof(num), " %" PRIu64 "\n", v);
	puts_buf(b, num);
}

void
mg_metrics_write_double(struct mg_metrics_buf *b, const char *name, const char *const *labels,
                        double v)
{
	char num[40];

	put_name_labels(b, name, labels);
	puts_buf(b, " ");
	format_double(num, sizeof(num), v);
	puts_buf(b, num);
	puts_buf(b, "\n");
}

void
mg_metrics_write_histogram(struct mg_metrics_buf *b, const char *name, const char *const *labels,
                           const double *bounds, const uint64_t *counts, size_t n, double sum,
                           uint64_t count)
{
	char num[40];
	uint64_t cum = 0;

	for (size_t i = 0; i < n; i++) {
		cum += counts[i];
		format_double(num, sizeof(num), bounds[i]);
		put_sample(b, name, "_bucket", labels, num);
		snprintf(num, sizeof(num), " %" PRIu64 "\n", cum);
		puts_buf(b, num);
	}
	put_sample(b, name, "_bucket", labels, "+Inf");
	snprintf(num, sizeof(num), " %" PRIu64 "\n", count);
	puts_buf(b, num);
	put_sample(b, name, "_sum", labels, NULL);
	puts_buf(b, " ");
	format_double(num, sizeof(num), sum);
	puts_buf(b, num);
	puts_buf(b, "\n");
	put_sample(b, name, "_count", labels, NULL);
	snprintf(num, sizeof(num), " %" PRIu64 "\n", count);
	puts_buf(b, num);
}

/* ---- the renderer ---- */

const char *
mg_metrics_drop_direction(unsigned r)
{
	if (r == MG_DROP_POLICY_EGRESS)
		return "egress";
	if (r == MG_DROP_POLICY_INGRESS)
		return "ingress";
	return "none";
}

#define FAMILY(b, name, type, help) mg_metrics_write_family(b, "meshgate_" name, type, help)
#define U64(b, name, labels, v) mg_metrics_write_u64(b, "meshgate_" name, labels, v)
#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

/* One counter or gauge family without labels. */
static void
single(struct mg_metrics_buf *b, const char *name, enum mg_metrics_type type, const char *help,
       uint64_t v)
{
	mg_metrics_write_family(b, name, type, help);
	mg_metrics_write_u64(b, name, NULL, v);
}

static void
render_info(const struct mg_metrics_snapshot *s, struct mg_metrics_buf *b)
{
	FAMILY(b, "build_info", MG_METRICS_GAUGE, "Always 1; the version label names the build.");
	U64(b, "build_info", L("version", s->version), 1);
	single(b, "meshgate_uptime_seconds", MG_METRICS_GAUGE, "Seconds since the daemon started.",
	       s->uptime_seconds);
}

/* What the port drivers counted: frames lost before any worker saw them. */
static void
render_port_driver(const struct mg_metrics_snapshot *s, struct mg_metrics_buf *b)
{
	unsigned n = s->n_ports < MG_METRICS_MAX_PORTS ? s->n_ports : MG_METRICS_MAX_PORTS, i;

	mg_metrics_write_family(b, "meshgate_port_rx_missed_packets_total", MG_METRICS_COUNTER,
	                        "Frames the port dropped because its receive ring was full (the "
	                        "worker fell behind: overload).");
	for (i = 0; i < n; i++)
		mg_metrics_write_u64(b, "meshgate_port_rx_missed_packets_total",
		                     L("port", s->ports[i].name), s->ports[i].rx_missed);
	mg_metrics_write_family(b, "meshgate_port_rx_nombuf_total", MG_METRICS_COUNTER,
	                        "Frames the port dropped for want of a receive buffer (mbuf pool "
	                        "empty).");
	for (i = 0; i < n; i++)
		mg_metrics_write_u64(b, "meshgate_port_rx_nombuf_total",
		                     L("port", s->ports[i].name), s->ports[i].rx_nombuf);
	mg_metrics_write_family(b, "meshgate_port_errors_total", MG_METRICS_COUNTER,
	                        "Frames the device received in error (rx) or failed to send (tx).");
	for (unsigned d = 0; d < 2; d++)
		for (i = 0; i < n; i++)
			mg_metrics_write_u64(
			        b, "meshgate_port_errors_total",
			        L("port", s->ports[i].name, "direction", d ? "tx" : "rx"),
			        d ? s->ports[i].tx_errors : s->ports[i].rx_errors);
}

static void
render_ports(const struct mg_metrics_snapshot *s, struct mg_metrics_buf *b)
{
	/* Packets and bytes are one family each, split by port and direction
	 * (rx: received on the port, tx: sent on it), so that
	 * sum by (direction) and sum by (port) need no name matching. */
	static const struct {
		const char *name, *help;
		size_t rx, tx;
	} f[] = {
	        {"meshgate_port_packets_total",
	         "Frames on the port, by direction: rx received, tx sent.",
	         offsetof(struct mg_metrics_port, rx_packets),
	         offsetof(struct mg_metrics_port, tx_packets)},
	        {"meshgate_port_bytes_total",
	         "Bytes on the port, by direction: rx received, tx sent.",
	         offsetof(struct mg_metrics_port, rx_bytes),
	         offsetof(struct mg_metrics_port, tx_bytes)},
	};
	unsigned n = s->n_ports < MG_METRICS_MAX_PORTS ? s->n_ports : MG_METRICS_MAX_PORTS;

	for (size_t j = 0; j < MG_ARRAY_SIZE(f); j++) {
		mg_metrics_write_family(b, f[j].name, MG_METRICS_COUNTER, f[j].help);
		for (unsigned d = 0; d < 2; d++) {
			for (unsigned i = 0; i < n; i++) {
				const struct mg_metrics_port *p = &s->ports[i];
				uint64_t v;

				memcpy(&v, (const char *)p + (d == 0 ? f[j].rx : f[j].tx),
				       sizeof(v));
				mg_metrics_write_u64(
				        b, f[j].name,
				        L("port", p->name, "direction", d == 0 ? "rx" : "tx"), v);
			}
		}
	}
	mg_metrics_write_family(b, "meshgate_port_dropped_total", MG_METRICS_COUNTER,
	                        "Frames received on the port and not forwarded, for any reason.");
	for (unsigned i = 0; i < n; i++)
		mg_metrics_write_u64(b, "meshgate_port_dropped_total", L("port", s->ports[i].name),
		                     s->ports[i].dropped);
}

static void
render_verdicts(const struct mg_metrics_snapshot *s, struct mg_metrics_buf *b)
{
	const struct mg_metrics_verdicts *v = &s->verdicts;

	/*
	 * The data path keeps three counters (allowed, denied_egress,
	 * denied_ingress) and judges the source's egress policy first, then
	 * the destination's ingress policy only for what egress allowed
	 * (mg_policy_verdict; mg_dp_pipeline.c counts the outcome). Each
	 * direction's decisions follow from that:
	 *   egress  allowed = allowed + denied_ingress   (egress let them on)
	 *   egress  denied  = denied_egress
	 *   ingress allowed = allowed
	 *   ingress denied  = denied_ingress
	 * so egress allowed + denied = allowed + denied_egress + denied_ingress
	 * and ingress allowed + denied = egress allowed. Packets the policy
	 * allowed but a full conntrack or fragment table then dropped are in
	 * no verdict (only in meshgate_drops_total), as in the stats file.
	 */
	FAMILY(b, "policy_verdicts_total", MG_METRICS_COUNTER,
	       "IP packets judged by the policy, by direction (egress is checked first, ingress "
	       "only after egress allowed) and action; conntrack passes are counted apart.");
	U64(b, "policy_verdicts_total", L("direction", "egress", "action", "allowed"),
	    v->allowed + v->denied_ingress);
	U64(b, "policy_verdicts_total", L("direction", "egress", "action", "denied"),
	    v->denied_egress);
	U64(b, "policy_verdicts_total", L("direction", "ingress", "action", "allowed"), v->allowed);
	U64(b, "policy_verdicts_total", L("direction", "ingress", "action", "denied"),
	    v->denied_ingress);
	single(b, "meshgate_verdict_ct_tracked_total", MG_METRICS_COUNTER,
	       "Packets passed by conntrack without a policy lookup.", v->ct_tracked);
	single(b, "meshgate_verdict_ct_rechecked_total", MG_METRICS_COUNTER,
	       "Packets of tracked flows judged again after a policy or ipcache change.",
	       v->ct_rechecked);
	single(b, "meshgate_verdict_ct_related_total", MG_METRICS_COUNTER,
	       "ICMP errors passed as related to a tracked flow.", v->ct_related);
	single(b, "meshgate_verdict_fragments_passed_total", MG_METRICS_COUNTER,
	       "Non-first fragments passed after their first fragment.", v->fragments_passed);
	single(b, "meshgate_verdict_arp_passed_total", MG_METRICS_COUNTER,
	       "ARP frames passed without a verdict.", v->arp_passed);
	single(b, "meshgate_verdict_nd_passed_total", MG_METRICS_COUNTER,
	       "IPv6 neighbour discovery packets passed without a verdict.", v->nd_passed);
	single(b, "meshgate_verdict_non_ip_passed_total", MG_METRICS_COUNTER,
	       "Other non-IP frames passed (datapath.non_ip: forward).", v->non_ip_passed);
}

static void
render_drops(const struct mg_metrics_snapshot *s, struct mg_metrics_buf *b)
{
	FAMILY(b, "drops_total", MG_METRICS_COUNTER,
	       "Frames dropped, by reason; direction is egress or ingress for the policy "
	       "reasons, none for the others.");
	for (unsigned r = MG_DROP_NONE + 1; r < MG_DROP__MAX; r++)
		U64(b, "drops_total",
		    L("reason", mg_drop_label(r), "direction", mg_metrics_drop_direction(r)),
		    s->drops[r]);
}

static void
render_tables(const struct mg_metrics_snapshot *s, struct mg_metrics_buf *b)
{
	unsigned n = s->n_identity_clusters < MG_METRICS_MAX_CLUSTERS ? s->n_identity_clusters
	                                                              : MG_METRICS_MAX_CLUSTERS;

	FAMILY(b, "ipcache_entries", MG_METRICS_GAUGE,
	       "Prefixes in the ipcache, by address family.");
	U64(b, "ipcache_entries", L("family", "ipv4"), s->ipcache_ipv4);
	U64(b, "ipcache_entries", L("family", "ipv6"), s->ipcache_ipv6);

	FAMILY(b, "identities", MG_METRICS_GAUGE, "Security identities known, by cluster.");
	for (unsigned i = 0; i < n; i++)
		U64(b, "identities", L("cluster", s->identities[i].cluster),
		    s->identities[i].count);

	single(b, "meshgate_policy_policies", MG_METRICS_GAUGE, "Policy documents loaded.",
	       s->policy.policies);
	single(b, "meshgate_policy_rules", MG_METRICS_GAUGE, "Rules compiled from the policies.",
	       s->policy.rules);
	single(b, "meshgate_policy_revision", MG_METRICS_GAUGE,
	       "Revision of the policy in force, bumped on every change.", s->policy.revision);
	FAMILY(b, "policy_reloads_total", MG_METRICS_COUNTER,
	       "Reloads (SIGHUP, meshgatectl reload), by result; failed ones kept the old state.");
	U64(b, "policy_reloads_total", L("result", "ok"), s->policy.reloads_ok);
	U64(b, "policy_reloads_total", L("result", "failed"), s->policy.reloads_failed);

	single(b, "meshgate_conntrack_entries", MG_METRICS_GAUGE,
	       "Live flow entries, summed over the workers.", s->conntrack.entries);
	single(b, "meshgate_conntrack_fragments", MG_METRICS_GAUGE, "Live fragment records.",
	       s->conntrack.fragments);
	single(b, "meshgate_conntrack_memory_bytes", MG_METRICS_GAUGE,
	       "Bytes of every worker's conntrack table.", s->conntrack.memory_bytes);
	single(b, "meshgate_conntrack_created_total", MG_METRICS_COUNTER, "Flow entries created.",
	       s->conntrack.created);
	single(b, "meshgate_conntrack_expired_total", MG_METRICS_COUNTER,
	       "Flow entries removed after they expired.", s->conntrack.expired);
	single(b, "meshgate_conntrack_full_total", MG_METRICS_COUNTER,
	       "New flows refused because the table was full.", s->conntrack.full);
	single(b, "meshgate_conntrack_fragments_full_total", MG_METRICS_COUNTER,
	       "Fragment records refused because the fragment table was full.",
	       s->conntrack.fragments_full);
}

static void
render_kvstore(const struct mg_metrics_snapshot *s, struct mg_metrics_buf *b)
{
	static const struct {
		const char *name, *help;
		enum mg_metrics_type type;
		size_t off;
	} f[] = {
	        {"meshgate_kvstore_entries", "Identities and ipcache entries held for the cluster.",
	         MG_METRICS_GAUGE, offsetof(struct mg_metrics_kvstore, entries)},
	        {"meshgate_kvstore_events_total", "Log entries applied while tailing.",
	         MG_METRICS_COUNTER, offsetof(struct mg_metrics_kvstore, events)},
	        {"meshgate_kvstore_full_syncs_total",
	         "Full syncs published, the initial one included.", MG_METRICS_COUNTER,
	         offsetof(struct mg_metrics_kvstore, full_syncs)},
	        {"meshgate_kvstore_conflicts_total",
	         "Puts that made a prefix overlap another cluster's.", MG_METRICS_COUNTER,
	         offsetof(struct mg_metrics_kvstore, conflicts)},
	        {"meshgate_kvstore_mass_delete_refusals_total",
	         "Resyncs refused because they would delete too many entries.", MG_METRICS_COUNTER,
	         offsetof(struct mg_metrics_kvstore, mass_delete_refusals)},
	        {"meshgate_kvstore_disconnects_total", "Connection losses seen.",
	         MG_METRICS_COUNTER, offsetof(struct mg_metrics_kvstore, disconnects)},
	        {"meshgate_kvstore_removals_total",
	         "Removals of the cluster's state by its removal marker.", MG_METRICS_COUNTER,
	         offsetof(struct mg_metrics_kvstore, removals)},
	        {"meshgate_kvstore_stale_since_timestamp_seconds",
	         "Unix time the cluster's state became stale; 0 while it is not.", MG_METRICS_GAUGE,
	         offsetof(struct mg_metrics_kvstore, stale_since)},
	        {"meshgate_kvstore_named_ports_dropped_total",
	         "NamedPorts entries dropped from ipcache values otherwise used (not an IANA "
	         "service name, port 0, a protocol other than TCP/UDP/SCTP, a repeated name).",
	         MG_METRICS_COUNTER, offsetof(struct mg_metrics_kvstore, named_ports_dropped)},
	        {"meshgate_kvstore_heartbeat_timestamp_seconds",
	         "Unix time of the cluster's replicator heartbeat (meshgate/heartbeat/<cluster>); "
	         "0 "
	         "when there is none or it does not parse.",
	         MG_METRICS_GAUGE, offsetof(struct mg_metrics_kvstore, heartbeat_at)},
	        {"meshgate_kvstore_removal_timestamp_seconds",
	         "Unix time the cluster's state is removed (its removal marker is there); 0 when "
	         "no removal is due.",
	         MG_METRICS_GAUGE, offsetof(struct mg_metrics_kvstore, removal_at)},
	};
	unsigned n =
	        s->n_kvstore < MG_METRICS_MAX_CLUSTERS ? s->n_kvstore : MG_METRICS_MAX_CLUSTERS;
	unsigned i, c;

	FAMILY(b, "kvstore_connected", MG_METRICS_GAUGE, "1 while the kvstore connection is up.");
	for (i = 0; i < n; i++)
		U64(b, "kvstore_connected", L("cluster", s->kvstore[i].cluster),
		    s->kvstore[i].connected);
	FAMILY(b, "kvstore_synced", MG_METRICS_GAUGE,
	       "1 once the cluster's initial sync is done and its log is tailed.");
	for (i = 0; i < n; i++)
		U64(b, "kvstore_synced", L("cluster", s->kvstore[i].cluster), s->kvstore[i].synced);
	for (size_t j = 0; j < MG_ARRAY_SIZE(f); j++) {
		mg_metrics_write_family(b, f[j].name, f[j].type, f[j].help);
		for (i = 0; i < n; i++) {
			uint64_t v;

			memcpy(&v, (const char *)&s->kvstore[i] + f[j].off, sizeof(v));
			mg_metrics_write_u64(b, f[j].name, L("cluster", s->kvstore[i].cluster), v);
		}
	}
	FAMILY(b, "kvstore_stale", MG_METRICS_GAUGE,
	       "1 while the cluster's last state is kept because it may be out of date "
	       "(fail-static), by reason; 0 for the other reasons.");
	for (i = 0; i < n; i++)
		for (c = 1; c < MG_KV_STALE_N; c++)
			U64(b, "kvstore_stale",
			    L("cluster", s->kvstore[i].cluster, "reason",
			      mg_kv_stale_reason_name((enum mg_kv_stale_reason)c)),
			    s->kvstore[i].stale && s->kvstore[i].stale_reason == c);
	FAMILY(b, "kvstore_removed", MG_METRICS_GAUGE,
	       "1 once the cluster's state was removed by its removal marker.");
	for (i = 0; i < n; i++)
		U64(b, "kvstore_removed", L("cluster", s->kvstore[i].cluster),
		    s->kvstore[i].removed);
	FAMILY(b, "kvstore_resyncs_total", MG_METRICS_COUNTER, "Full resyncs forced, by cause.");
	for (i = 0; i < n; i++)
		for (c = 0; c < MG_KV_RESYNC_N; c++)
			U64(b, "kvstore_resyncs_total",
			    L("cluster", s->kvstore[i].cluster, "cause",
			      mg_kv_resync_cause_name((enum mg_kv_resync_cause)c)),
			    s->kvstore[i].resyncs[c]);
	FAMILY(b, "kvstore_rejected_total", MG_METRICS_COUNTER,
	       "Values rejected: identity outside the cluster's range, unparsable, an identity "
	       "of another cluster (its cluster label), or a replicator heartbeat that does not "
	       "parse.");
	for (i = 0; i < n; i++) {
		U64(b, "kvstore_rejected_total",
		    L("cluster", s->kvstore[i].cluster, "reason", "cluster"),
		    s->kvstore[i].rejected_cluster);
		U64(b, "kvstore_rejected_total",
		    L("cluster", s->kvstore[i].cluster, "reason", "range"),
		    s->kvstore[i].rejected_range);
		U64(b, "kvstore_rejected_total",
		    L("cluster", s->kvstore[i].cluster, "reason", "parse"),
		    s->kvstore[i].rejected_parse);
		U64(b, "kvstore_rejected_total",
		    L("cluster", s->kvstore[i].cluster, "reason", "heartbeat"),
		    s->kvstore[i].rejected_heartbeat);
	}
	FAMILY(b, "kvstore_skipped_total", MG_METRICS_COUNTER,
	       "Values read but not applied: no-identity, an ipcache entry with ID 0 (an endpoint "
	       "without an identity yet; the key's previous entry is dropped).");
	for (i = 0; i < n; i++)
		U64(b, "kvstore_skipped_total",
		    L("cluster", s->kvstore[i].cluster, "reason", "no-identity"),
		    s->kvstore[i].skipped_no_identity);
	FAMILY(b, "kvstore_lag_seconds", MG_METRICS_GAUGE,
	       "Time between the log's newest entry and the last one applied, at the last check.");
	for (i = 0; i < n; i++)
		mg_metrics_write_double(b, "meshgate_kvstore_lag_seconds",
		                        L("cluster", s->kvstore[i].cluster),
		                        (double)s->kvstore[i].lag_ms / 1000.0);
}

static void
render_workers(const struct mg_metrics_snapshot *s, struct mg_metrics_buf *b)
{
	unsigned n = s->n_workers < MG_METRICS_MAX_WORKERS ? s->n_workers : MG_METRICS_MAX_WORKERS;
	char idx[MG_METRICS_MAX_WORKERS][8];
	unsigned i;

	for (i = 0; i < n; i++)
		snprintf(idx[i], sizeof(idx[i]), "%u", i);
	FAMILY(b, "worker_loops_total", MG_METRICS_COUNTER, "Iterations of the worker's loop.");
	for (i = 0; i < n; i++)
		U64(b, "worker_loops_total", L("worker", idx[i]), s->workers[i].loops);
	FAMILY(b, "worker_busy_loops_total", MG_METRICS_COUNTER,
	       "Iterations of the worker's loop that received something.");
	for (i = 0; i < n; i++)
		U64(b, "worker_busy_loops_total", L("worker", idx[i]), s->workers[i].busy_loops);
	FAMILY(b, "worker_busy_ratio", MG_METRICS_GAUGE,
	       "Share of loop iterations that received something, over the last second or so.");
	for (i = 0; i < n; i++)
		mg_metrics_write_double(b, "meshgate_worker_busy_ratio", L("worker", idx[i]),
		                        s->workers[i].busy_ratio);
}

void
mg_metrics_write_http_cut(struct mg_metrics_buf *b, const uint64_t *cut)
{
	FAMILY(b, "metrics_http_connections_cut_total", MG_METRICS_COUNTER,
	       "Connections the /metrics endpoint cut, by reason: request_timeout (no request "
	       "head in time), response_timeout (exchange not done in time), evicted (slot given "
	       "to a newcomer), refused (newcomer closed, no slot).");
	for (unsigned r = 0; r < MG_METRICS_HTTP_CUT_N; r++)
		U64(b, "metrics_http_connections_cut_total",
		    L("reason", mg_metrics_http_cut_label(r)), cut[r]);
}

static void
render_control(const struct mg_metrics_snapshot *s, struct mg_metrics_buf *b)
{
	const struct mg_metrics_control *c = &s->control;
	const struct {
		const char *reason;
		uint64_t v;
	} closed[] = {
	        {"busy", c->refused_busy},  {"idle", c->closed_idle},
	        {"slow", c->closed_slow},   {"oversize", c->closed_oversize},
	        {"stuck", c->closed_stuck},
	};

	single(b, "meshgate_control_clients", MG_METRICS_GAUGE,
	       "Connections to the control socket open now.", c->clients);
	single(b, "meshgate_control_connections_total", MG_METRICS_COUNTER,
	       "Connections to the control socket accepted (refused ones included).", c->accepted);
	FAMILY(b, "control_connections_closed_total", MG_METRICS_COUNTER,
	       "Control connections the daemon ended, by reason: busy (refused: max_clients or "
	       "the admin reserve), idle (idle timeout), slow (idle timeout, replies unread), "
	       "oversize (request too long), stuck (a subscriber that read none of its events).");
	for (size_t i = 0; i < MG_ARRAY_SIZE(closed); i++)
		U64(b, "control_connections_closed_total", L("reason", closed[i].reason),
		    closed[i].v);
	single(b, "meshgate_control_requests_total", MG_METRICS_COUNTER,
	       "Control requests handled.", c->requests);
	FAMILY(b, "control_request_errors_total", MG_METRICS_COUNTER,
	       "Control requests answered with an error: denied (a command that changes state, "
	       "not allowed for the peer) and the others.");
	U64(b, "control_request_errors_total", L("reason", "denied"), c->denied);
	U64(b, "control_request_errors_total", L("reason", "other"),
	    c->errors > c->denied ? c->errors - c->denied : 0);
	single(b, "meshgate_monitor_events_total", MG_METRICS_COUNTER,
	       "Monitor events handed to subscribers.", c->monitor_events);
	FAMILY(b, "monitor_events_lost_total", MG_METRICS_COUNTER,
	       "Monitor events lost: subscriber (one that read too slowly; it is told how "
	       "many), ring (the workers' event rings were full).");
	U64(b, "monitor_events_lost_total", L("where", "subscriber"), c->monitor_dropped);
	U64(b, "monitor_events_lost_total", L("where", "ring"), c->monitor_ring_lost);
}

int
mg_metrics_render(const struct mg_metrics_snapshot *s, struct mg_metrics_buf *b)
{
	render_info(s, b);
	render_ports(s, b);
	render_verdicts(s, b);
	render_drops(s, b);
	render_port_driver(s, b);
	render_tables(s, b);
	render_kvstore(s, b);
	render_workers(s, b);
	mg_metrics_write_http_cut(b, s->http_cut);
	render_control(s, b);
	return b->err ? -b->err : 0;
}
