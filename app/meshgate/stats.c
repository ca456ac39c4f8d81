/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's final counters at exit: a table on stdout for the operator
 * and, with --stats-file, the same figures as a JSON document (built with
 * jansson, written to a temporary file and renamed) that the tests read.
 * The sums over ports and workers are made once (struct totals), for both.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "stats.h"

/* The figures both outputs sum up. */
struct totals {
	uint64_t rx, tx, dropped;
	struct mg_ct_stats ct;
};

static void
totals_of(const struct mg_datapath *dp, const struct mg_dp_counters *c, struct totals *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < mg_datapath_nb_ports(dp); i++) {
		t->rx += c->rx_pkts[i];
		t->tx += c->tx_pkts[i];
		t->dropped += c->port_drops[i];
	}
	mg_datapath_ct_stats(dp, &t->ct);
}

void
stats_print(const struct mg_datapath *dp, const struct mg_dp_counters *c, FILE *out)
{
	unsigned i, n = mg_datapath_nb_ports(dp);
	struct totals t;

	totals_of(dp, c, &t);
	fprintf(out, "%-12s %12s %14s %12s %14s %12s\n", "port", "rx packets", "rx bytes",
	        "tx packets", "tx bytes", "dropped");
	for (i = 0; i < n; i++)
		fprintf(out,
		        "%-12s %12" PRIu64 " %14" PRIu64 " %12" PRIu64 " %14" PRIu64 " %12" PRIu64
		        "\n",
		        mg_datapath_port_name(dp, i), c->rx_pkts[i], c->rx_bytes[i], c->tx_pkts[i],
		        c->tx_bytes[i], c->port_drops[i]);
	fprintf(out,
	        "verdicts: allowed %" PRIu64 ", denied by egress %" PRIu64
	        ", denied by ingress %" PRIu64 "\n"
	        "passed without verdict: arp %" PRIu64 ", nd %" PRIu64 ", non-ip %" PRIu64 "\n"
	        "totals: rx %" PRIu64 ", tx %" PRIu64 ", dropped %" PRIu64 "\n",
	        c->allowed, c->denied_egress, c->denied_ingress, c->arp, c->nd, c->non_ip, t.rx,
	        t.tx, t.dropped);
	fprintf(out,
	        "conntrack: entries %" PRIu64 ", created %" PRIu64 ", expired %" PRIu64
	        ", table full %" PRIu64 ", fragment records %" PRIu64 "\n"
	        "           passed by conntrack %" PRIu64 ", re-checked %" PRIu64
	        ", related icmp %" PRIu64 ", fragments passed %" PRIu64 "\n",
	        t.ct.entries, t.ct.created, t.ct.expired, t.ct.full, t.ct.frags, c->ct_tracked,
	        c->ct_rechecked, c->ct_related, c->frag_passed);
	for (i = 1; i < MG_DROP__MAX; i++)
		if (c->drops[i] != 0)
			fprintf(out, "drop %-28s %12" PRIu64 "  (%s)\n", mg_drop_label(i),
			        c->drops[i], mg_drop_desc(i));
}

static json_t *
u64(uint64_t v)
{
	return json_integer((json_int_t)v);
}

/* The sync's figures summed over the clusters, or JSON null without sync. */
static json_t *
kvstore_json(const struct mg_gateway *gw)
{
	const struct mg_kv_sync *kv = mg_gateway_sync(gw);
	struct mg_gateway_stats gs;
	uint64_t synced = 0, entries = 0, resyncs = 0, refusals = 0;

	if (kv == NULL)
		return NULL;
	mg_gateway_stats(gw, &gs);
	for (size_t k = 0; k < mg_kv_sync_n_clusters(kv); k++) {
		struct mg_kv_sync_stats ks;

		if (mg_kv_sync_stats(kv, k, &ks) != 0)
			continue;
		synced += ks.synced;
		entries += ks.entries;
		refusals += ks.mass_delete_refusals;
		for (int r = 0; r < MG_KV_RESYNC_N; r++)
			resyncs += ks.resyncs[r];
	}
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "clusters",
	                 u64(mg_kv_sync_n_clusters(kv)), "synced", u64(synced), "entries",
	                 u64(entries), "resyncs", u64(resyncs), "mass_delete_refusals",
	                 u64(refusals), "policy_failures", u64(gs.sync_failures));
}

static json_t *
stats_json(const struct mg_datapath *dp, const struct mg_dp_counters *c,
           const struct mg_gateway *gw)
{
	json_t *ports = json_object(), *drops = json_object(), *root, *kv;
	struct mg_gateway_stats gs;
	struct totals t;

	if (ports == NULL || drops == NULL)
		goto nomem;
	totals_of(dp, c, &t);
	mg_gateway_stats(gw, &gs);
	for (unsigned i = 0; i < mg_datapath_nb_ports(dp); i++) {
		struct mg_dp_port_hw hw;

		(void)mg_datapath_port_hw(dp, i, &hw);
		json_object_set_new(ports, mg_datapath_port_name(dp, i),
		                    json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		                              "rx_packets", u64(c->rx_pkts[i]), "rx_bytes",
		                              u64(c->rx_bytes[i]), "tx_packets", u64(c->tx_pkts[i]),
		                              "tx_bytes", u64(c->tx_bytes[i]), "dropped",
		                              u64(c->port_drops[i]), "rx_missed", u64(hw.rx_missed),
		                              "rx_nombuf", u64(hw.rx_nombuf), "rx_errors",
		                              u64(hw.rx_errors), "tx_errors", u64(hw.tx_errors)));
	}
	for (unsigned i = 1; i < MG_DROP__MAX; i++)
		json_object_set_new(drops, mg_drop_label(i), u64(c->drops[i]));
	root = json_pack("{s:o, s:{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}, "
	                 "s:{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}, s:{s:o, s:o}, "
	                 "s:{s:o, s:o, s:o}, s:o}",
	                 "ports", ports, "totals", "rx", u64(t.rx), "tx", u64(t.tx), "allowed",
	                 u64(c->allowed), "denied", u64(c->denied_egress + c->denied_ingress),
	                 "dropped", u64(t.dropped), "arp", u64(c->arp), "nd", u64(c->nd), "non_ip",
	                 u64(c->non_ip), "conntrack", "entries", u64(t.ct.entries), "created",
	                 u64(t.ct.created), "expired", u64(t.ct.expired), "full", u64(t.ct.full),
	                 "fragments", u64(t.ct.frags), "tracked", u64(c->ct_tracked), "rechecked",
	                 u64(c->ct_rechecked), "related", u64(c->ct_related), "fragments_passed",
	                 u64(c->frag_passed), "memory", u64(mg_datapath_ct_memory(dp)), "reloads",
	                 "ok", u64(gs.reloads_ok), "failed", u64(gs.reloads_failed), "verdicts",
	                 "allowed", u64(c->allowed), "denied_egress", u64(c->denied_egress),
	                 "denied_ingress", u64(c->denied_ingress), "drops", drops);
	if (root == NULL)
		return NULL;
	if ((kv = kvstore_json(gw)) != NULL)
		json_object_set_new(root, "kvstore", kv);
	return root;
nomem:
	json_decref(ports);
	json_decref(drops);
	return NULL;
}

int
stats_write(const char *path, const struct mg_datapath *dp, const struct mg_dp_counters *c,
            const struct mg_gateway *gw)
{
	json_t *doc = stats_json(dp, c, gw);
	char tmp[4096];
	int rc = 0;

	if (doc == NULL)
		return -ENOMEM;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_dump_file(doc, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
	    rename(tmp, path) != 0)
		rc = errno ? -errno : -EIO;
	json_decref(doc);
	return rc;
}
