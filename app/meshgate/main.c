/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgate: the gateway daemon. Loads the config and everything it names
 * (policies, identities, endpoints), compiles the policy, initialises
 * DPDK's EAL with the config's `eal` list, opens the ports and forwards
 * until SIGINT or SIGTERM; then stops the ports cleanly, prints the final
 * counters and exits 0. `--check-config` does all the loading and
 * compiling without touching DPDK.
 *
 * With a `kvstore` section the identities and ipcache entries of the
 * configured clusters also come from Redis (lib/kvstore/mg_kv_sync.h).
 * The start is fail-closed: no port is started before every cluster's
 * initial sync is done or `kvstore.sync_timeout` has passed. Afterwards
 * the control thread polls the sync client and publishes each batch to
 * the workers as one step: the ipcache changes and the policy derived
 * from them go out in one mg_datapath_publish, so a worker never sees an
 * IP mapped to an identity its policy does not know.
 *
 * Once the ports run, the control thread (control.c, daemon.h) owns the
 * tables: it serves the control socket, reloads, syncs and feeds the
 * metrics; the main lcore forwards (single-lcore mode) or waits.
 */
#include <getopt.h>
#include <inttypes.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "mg_config.h"
#include "mg_datapath.h"
#include "mg_identity.h"
#include "mg_ipcache.h"
#include "mg_kv_sync.h"
#include "mg_policy.h"
#include "notify.h"

enum {
	EXIT_CONFIG = 1,
	EXIT_USAGE = 2,
	EXIT_RUNTIME = 3,
};

static volatile int stop_requested;
static volatile int reload_requested;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_requested = 1;
	else
		stop_requested = 1;
}

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: meshgate -c FILE [--check-config] [--stats-file PATH] [--idle-exit MS] "
	        "[-v]\n"
	        "\n"
	        "  -c, --config FILE     gateway config (see conf/meshgate.yaml)\n"
	        "      --check-config    load and compile everything, print 'config OK', exit\n"
	        "      --stats-file PATH write the final counters as JSON to PATH on exit\n"
	        "      --idle-exit MS    stop once no frame arrived for MS milliseconds\n"
	        "                        (for tests and replays of pcap files)\n"
	        "  -v, --verbose         debug logging\n"
	        "  -V, --version         print the version\n"
	        "  -h, --help            this text\n");
}

static void
state_free(struct state *st)
{
	mg_policy_free(st->policy);
	mg_ipcache_free(st->ipc);
	mg_ipcache_free(st->base);
	mg_policy_set_free(st->set);
	mg_identity_table_free(st->ids);
	mg_config_free(st->cfg);
	mg_cidr_ids_free(st->cidr);
	memset(st, 0, sizeof(*st));
}

static void
log_warning(const struct mg_policy_problem *p, void *arg)
{
	(void)arg;
	MG_WARN("%s:%u:%u: %s", p->file, p->line, p->col, p->msg);
}

static int
copy_entry(const struct mg_ipcache_entry *e, void *arg)
{
	return mg_ipcache_put(arg, e);
}

/*
 * The Redis sync's base layer: what the daemon itself has for exactly
 * @p prefix once no cluster holds it any more. A static entry (config
 * file, endpoint manifests) first, then the CIDR identity the policies
 * gave the prefix. 1 with @p out filled, or 0.
 */
static int
kv_base(void *arg, const struct mg_ipcache_entry *prefix, struct mg_ipcache_entry *out)
{
	const struct state *st = arg;
	uint32_t id;

	if (st->base != NULL &&
	    mg_ipcache_get(st->base, prefix->family, prefix->addr, prefix->plen, out) == 0)
		return 1;
	id = mg_cidr_ids_lookup(st->cidr, prefix->family, prefix->addr, prefix->plen);
	if (id == 0)
		return 0;
	*out = *prefix;
	out->identity = id;
	out->cluster_id = 0;
	return 1;
}

/*
 * Compile the policy of @p st over its identity table (with the state's
 * revision). On error print it and, with @p errp, give it to the caller.
 */
static int
state_compile(struct state *st, struct mg_error *errp)
{
	struct mg_policy_params pp = {
	        .enforcement = st->cfg->enforcement,
	        .default_local_cluster = st->cfg->default_local_cluster,
	        .revision = st->revision,
	};
	struct mg_error err = {{0}};
	struct mg_policy *pol;
	int rc;

	pol = mg_policy_compile(st->set, st->ids, &pp, &err);
	if (pol == NULL) {
		rc = -errno;
		fprintf(stderr, "%s\n", err.msg);
		if (errp != NULL)
			*errp = err;
		return rc;
	}
	mg_policy_free(st->policy);
	st->policy = pol;
	return 0;
}

/*
 * Load policies, identities and endpoints, but do not compile yet (a
 * start with Redis compiles once the initial sync brought the remote
 * identities). On error print it and, with @p errp, give it to the caller
 * (a reload over the socket).
 * With @kv (a reload), the sync client puts everything it holds into the
 * new tables before the CIDR identities and the compile, so the new state
 * is the static part plus the synced entries; kv then points at them.
 */
static int
state_load(struct state *st, struct rte_rcu_qsbr *qsbr, struct mg_kv_sync *kv,
           struct mg_error *errp)
{
	struct mg_ipcache_params ip = {
	        .entries_hint = 1024,
	        .split_world = st->cfg->split_world,
	        .qsbr = qsbr,
	};
	struct mg_error ebuf = {{0}}, err = {{0}};
	int rc;

	if (errp == NULL)
		errp = &ebuf;

	st->ids = mg_identity_table_create(st->cfg->cluster_mode);
	st->set = mg_policy_set_create();
	st->ipc = mg_ipcache_create(&ip);
	ip.qsbr = NULL; /* the base copy has no readers but the control thread */
	st->base = mg_ipcache_create(&ip);
	if (st->ids == NULL || st->set == NULL || st->ipc == NULL || st->base == NULL) {
		MG_ERR("out of memory");
		mg_error_set(errp, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	rc = mg_config_load_policies(st->cfg, st->set, &err);
	if (rc == 0)
		rc = mg_config_load_static(st->cfg, st->ids, st->ipc, &err);
	if (rc != 0) {
		fprintf(stderr, "%s\n", err.msg);
		*errp = err;
		return rc;
	}
	/* Allow rules a layer-4 gateway cannot enforce are skipped: say which. */
	mg_policy_set_warnings(st->set, log_warning, NULL);
	rc = mg_ipcache_commit(st->ipc);
	/* The static entries, kept apart: a synced entry hides one of the same
	 * prefix while it exists, and it comes back when the synced one goes. */
	if (rc >= 0)
		rc = mg_ipcache_walk(st->ipc, copy_entry, st->base);
	if (rc >= 0)
		rc = mg_ipcache_commit(st->base);
	if (rc < 0) {
		MG_ERR("ipcache: %s", strerror(-rc));
		mg_error_set(errp, NULL, 0, 0, "ipcache: %s", strerror(-rc));
		return rc;
	}
	if (kv != NULL) {
		rc = mg_kv_sync_rebind(kv, st->ids, st->ipc, true);
		/* The client leaves them staged; these tables have no readers yet.
		 * Committed before the CIDR sync, which looks at committed entries. */
		if (rc == 0 && (rc = mg_ipcache_commit(st->ipc)) > 0)
			rc = 0;
		if (rc < 0) {
			MG_ERR("kvstore: cannot copy the synced entries: %s", strerror(-rc));
			mg_error_set(errp, NULL, 0, 0,
			             "kvstore: cannot copy the synced entries: %s", strerror(-rc));
			return rc;
		}
	}
	/* Every prefix the policies name gets its CIDR identity and entry,
	 * where no endpoint or static entry holds that exact prefix. */
	if (st->cidr == NULL && (st->cidr = mg_cidr_ids_create()) == NULL) {
		MG_ERR("out of memory");
		mg_error_set(errp, NULL, 0, 0, "out of memory");
		return -ENOMEM;
	}
	rc = mg_cidr_ids_sync(st->cidr, st->set, st->ids, st->ipc, NULL, NULL, &err);
	if (rc == 0)
		rc = mg_ipcache_commit(st->ipc);
	if (rc < 0) {
		if (err.msg[0] == '\0')
			mg_error_set(&err, NULL, 0, 0, "%s", strerror(-rc));
		fprintf(stderr, "%s\n", err.msg);
		*errp = err;
		return rc;
	}
	return 0;
}

static void
print_summary(const struct state *st, FILE *out)
{
	fprintf(out,
	        "%zu policies (%zu rules, %zu skipped), %zu identities (%zu for CIDRs), "
	        "%zu ipcache entries (%zu IPv4, %zu IPv6), %zu ports, enforcement %s, "
	        "policy memory %zu bytes\n",
	        mg_policy_set_count(st->set), mg_policy_set_rules(st->set),
	        mg_policy_set_warnings(st->set, NULL, NULL), mg_identity_table_count(st->ids),
	        st->cidr ? mg_cidr_ids_count(st->cidr) : 0, mg_ipcache_count(st->ipc, 0),
	        mg_ipcache_count(st->ipc, MG_AF_INET), mg_ipcache_count(st->ipc, MG_AF_INET6),
	        st->cfg->n_ports, mg_enforcement_name(st->cfg->enforcement),
	        mg_policy_memory(st->policy));
}

static void
print_counters(const struct mg_datapath *dp, const struct mg_dp_counters *c, FILE *out)
{
	unsigned i, n = mg_datapath_nb_ports(dp);
	uint64_t rx = 0, tx = 0, dropped = 0;

	fprintf(out, "%-12s %12s %14s %12s %14s %12s\n", "port", "rx packets", "rx bytes",
	        "tx packets", "tx bytes", "dropped");
	for (i = 0; i < n; i++) {
		fprintf(out,
		        "%-12s %12" PRIu64 " %14" PRIu64 " %12" PRIu64 " %14" PRIu64 " %12" PRIu64
		        "\n",
		        mg_datapath_port_name(dp, i), c->rx_pkts[i], c->rx_bytes[i], c->tx_pkts[i],
		        c->tx_bytes[i], c->port_drops[i]);
		rx += c->rx_pkts[i];
		tx += c->tx_pkts[i];
		dropped += c->port_drops[i];
	}
	fprintf(out,
	        "verdicts: allowed %" PRIu64 ", denied by egress %" PRIu64
	        ", denied by ingress %" PRIu64 "\n"
	        "passed without verdict: arp %" PRIu64 ", nd %" PRIu64 ", non-ip %" PRIu64 "\n"
	        "totals: rx %" PRIu64 ", tx %" PRIu64 ", dropped %" PRIu64 "\n",
	        c->allowed, c->denied_egress, c->denied_ingress, c->arp, c->nd, c->non_ip, rx, tx,
	        dropped);
	{
		struct mg_ct_stats ct;

		mg_datapath_ct_stats(dp, &ct);
		fprintf(out,
		        "conntrack: entries %" PRIu64 ", created %" PRIu64 ", expired %" PRIu64
		        ", table full %" PRIu64 ", fragment records %" PRIu64 "\n"
		        "           passed by conntrack %" PRIu64 ", re-checked %" PRIu64
		        ", related icmp %" PRIu64 ", fragments passed %" PRIu64 "\n",
		        ct.entries, ct.created, ct.expired, ct.full, ct.frags, c->ct_tracked,
		        c->ct_rechecked, c->ct_related, c->frag_passed);
	}
	for (i = 1; i < MG_DROP__MAX; i++)
		if (c->drops[i] != 0)
			fprintf(out, "drop %-28s %12" PRIu64 "  (%s)\n", mg_drop_label(i),
			        c->drops[i], mg_drop_desc(i));
}

static int
write_stats(const char *path, const struct mg_datapath *dp, const struct mg_dp_counters *c,
            const struct daemon *ts)
{
	unsigned i, n = mg_datapath_nb_ports(dp);
	uint64_t rx = 0, tx = 0, dropped = 0;
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL)
		return -errno;
	fprintf(f, "{\n  \"ports\": {");
	for (i = 0; i < n; i++) {
		fprintf(f,
		        "%s\n    \"%s\": {\"rx_packets\": %" PRIu64 ", \"rx_bytes\": %" PRIu64
		        ", \"tx_packets\": %" PRIu64 ", \"tx_bytes\": %" PRIu64
		        ", \"dropped\": %" PRIu64 "}",
		        i ? "," : "", mg_datapath_port_name(dp, i), c->rx_pkts[i], c->rx_bytes[i],
		        c->tx_pkts[i], c->tx_bytes[i], c->port_drops[i]);
		rx += c->rx_pkts[i];
		tx += c->tx_pkts[i];
		dropped += c->port_drops[i];
	}
	fprintf(f,
	        "\n  },\n  \"totals\": {\"rx\": %" PRIu64 ", \"tx\": %" PRIu64
	        ", \"allowed\": %" PRIu64 ", \"denied\": %" PRIu64 ", \"dropped\": %" PRIu64
	        ", \"arp\": %" PRIu64 ", \"nd\": %" PRIu64 ", \"non_ip\": %" PRIu64 "},\n",
	        rx, tx, c->allowed, c->denied_egress + c->denied_ingress, dropped, c->arp, c->nd,
	        c->non_ip);
	{
		struct mg_ct_stats ct;

		mg_datapath_ct_stats(dp, &ct);
		fprintf(f,
		        "  \"conntrack\": {\"entries\": %" PRIu64 ", \"created\": %" PRIu64
		        ", \"expired\": %" PRIu64 ", \"full\": %" PRIu64 ", \"fragments\": %" PRIu64
		        ", \"tracked\": %" PRIu64 ", \"rechecked\": %" PRIu64
		        ", \"related\": %" PRIu64 ", \"fragments_passed\": %" PRIu64
		        ", \"memory\": %zu},\n",
		        ct.entries, ct.created, ct.expired, ct.full, ct.frags, c->ct_tracked,
		        c->ct_rechecked, c->ct_related, c->frag_passed, mg_datapath_ct_memory(dp));
	}
	fprintf(f, "  \"reloads\": {\"ok\": %" PRIu64 ", \"failed\": %" PRIu64 "},\n",
	        ts->reloads_ok, ts->reloads_failed);
	if (ts->kv != NULL) {
		struct mg_kv_sync_stats ks;
		uint64_t synced = 0, entries = 0, resyncs = 0, refusals = 0;
		size_t k, nk = mg_kv_sync_n_clusters(ts->kv);
		int r;

		for (k = 0; k < nk; k++) {
			if (mg_kv_sync_stats(ts->kv, k, &ks) != 0)
				continue;
			synced += ks.synced;
			entries += ks.entries;
			refusals += ks.mass_delete_refusals;
			for (r = 0; r < MG_KV_RESYNC_N; r++)
				resyncs += ks.resyncs[r];
		}
		fprintf(f,
		        "  \"kvstore\": {\"clusters\": %zu, \"synced\": %" PRIu64
		        ", \"entries\": %" PRIu64 ", \"resyncs\": %" PRIu64
		        ", \"mass_delete_refusals\": %" PRIu64 ", \"policy_failures\": %" PRIu64
		        "},\n",
		        nk, synced, entries, resyncs, refusals, ts->kv_failed);
	}
	fprintf(f,
	        "  \"verdicts\": {\"allowed\": %" PRIu64 ", \"denied_egress\": %" PRIu64
	        ", \"denied_ingress\": %" PRIu64 "},\n  \"drops\": {",
	        c->allowed, c->denied_egress, c->denied_ingress);
	for (i = 1; i < MG_DROP__MAX; i++)
		fprintf(f, "%s\n    \"%s\": %" PRIu64, i > 1 ? "," : "", mg_drop_label(i),
		        c->drops[i]);
	fprintf(f, "\n  }\n}\n");
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return -errno;
	return 0;
}

/* Staging that makes the live ipcache hold exactly the entries of another. */
struct ipc_sync {
	struct mg_ipcache *live;
	struct mg_ipcache *want;
	int rc;
};

static int
stage_removal(const struct mg_ipcache_entry *e, void *arg)
{
	struct ipc_sync *x = arg;
	struct mg_ipcache_entry w;

	if (mg_ipcache_get(x->want, e->family, e->addr, e->plen, &w) == 0)
		return 0;
	/* Only stages: the walk over committed entries is not disturbed. */
	x->rc = mg_ipcache_del(x->live, e->family, e->addr, e->plen);
	return x->rc;
}

static int
stage_change(const struct mg_ipcache_entry *e, void *arg)
{
	struct ipc_sync *x = arg;
	struct mg_ipcache_entry cur;

	if (mg_ipcache_get(x->live, e->family, e->addr, e->plen, &cur) == 0 &&
	    cur.identity == e->identity && cur.cluster_id == e->cluster_id)
		return 0;
	x->rc = mg_ipcache_put(x->live, e);
	return x->rc;
}

/*
 * SIGHUP: re-read the config file, its policies, identities and endpoints,
 * compile, and swap them in: the new policy and the ipcache changes in
 * one mg_datapath_publish (one step for the workers). Tracked flows keep
 * their entries; their
 * original direction is re-checked against the new state. On any error
 * the old state stays in force. The datapath, eal and conntrack sections
 * are read at start only.
 */
static int
reload(struct state *st, struct mg_datapath *dp, struct mg_kv_sync *kv, struct mg_error *errp,
       uint64_t *changes, struct mg_config **old_cfg)
{
	struct mg_error err = {{0}};
	struct state nst = {0};
	struct ipc_sync x = {.live = st->ipc};
	int rc;

	MG_INFO("reload: reading %s", st->cfg->file);
	nst.revision = st->revision + 1;
	/* the same CIDR identities object: a prefix keeps its number */
	nst.cidr = st->cidr;
	nst.cfg = mg_config_load(st->cfg->file, &err);
	if (nst.cfg == NULL) {
		MG_ERR("reload: %s; the running state is kept", err.msg);
		*errp = err;
		return -EINVAL;
	}
	rc = state_load(&nst, NULL, kv, errp);
	if (rc == 0)
		rc = state_compile(&nst, errp);
	if (rc == 0) {
		x.want = nst.ipc;
		rc = mg_ipcache_walk(st->ipc, stage_removal, &x);
		if (rc == 0)
			rc = mg_ipcache_walk(nst.ipc, stage_change, &x);
	}
	if (rc != 0)
		goto fail;
	/* The new policy and the bumped generation make every tracked flow's
	 * next original-direction packet ask the new policy; the workers see
	 * the new policy and the new ipcache together or neither. */
	rc = mg_datapath_publish(dp, st->ipc, nst.policy);
	if (rc < 0) {
		mg_error_set(errp, NULL, 0, 0, "publishing the new state failed: %s",
		             strerror(-rc));
		goto fail;
	}
	*changes = (uint64_t)rc;
	MG_INFO("reload: done: policy revision %" PRIu64 ", %d ipcache change(s)", nst.revision,
	        rc);
	print_summary(&nst, stderr);
	nst.policy = NULL; /* the data path's now */
	/* Keep the new inputs; the live ipcache stays the one the workers read.
	 * It now holds what nst.ipc held, synced entries included. */
	if (kv != NULL)
		mg_kv_sync_rebind(kv, nst.ids, st->ipc, false);
	mg_ipcache_free(nst.ipc);
	nst.ipc = st->ipc;
	st->ipc = NULL;
	st->cidr = NULL;    /* now nst's */
	*old_cfg = st->cfg; /* the caller compares the kvstore sections */
	st->cfg = NULL;
	state_free(st);
	*st = nst;
	return 0;
fail:
	MG_ERR("reload failed (%s); the running state is kept",
	       errp->msg[0] ? errp->msg : strerror(rc < 0 ? -rc : rc));
	/* Nothing of the new state goes live. */
	mg_ipcache_discard(st->ipc);
	if (kv != NULL)
		mg_kv_sync_rebind(kv, st->ids, st->ipc, false);
	nst.cidr = NULL; /* still the running state's */
	state_free(&nst);
	return rc;
}

static void kv_reconfigure(struct daemon *d, const struct mg_config *old);

int
daemon_reload(struct daemon *d, struct mg_error *err)
{
	int rc;

	mg_notify("RELOADING=1");
	err->msg[0] = '\0';
	struct mg_config *old = NULL;

	rc = reload(&d->st, d->dp, d->kv, err, &d->last_reload_changes, &old);
	if (rc == 0) {
		if (d->kv != NULL)
			kv_reconfigure(d, old);
		mg_config_free(old);
		d->reloads_ok++;
		d->last_reload_error[0] = '\0';
	} else {
		d->reloads_failed++;
		if (err->msg[0] == '\0')
			snprintf(err->msg, sizeof(err->msg), "%s", strerror(rc < 0 ? -rc : rc));
		snprintf(d->last_reload_error, sizeof(d->last_reload_error), "%s", err->msg);
	}
	mg_notify("READY=1");
	return rc;
}

/*
 * Publish what the sync client left staged (a poll's batch, a removed
 * cluster): changed identities give a policy derived from the running
 * one, and the batch and that policy go out in ONE mg_datapath_publish
 * (an ipcache-only batch with the running policy), which also bumps the
 * generation so tracked flows are re-checked. When the policy cannot be
 * derived or the publication fails, nothing of the batch goes live: it is
 * discarded and the client re-stages everything at its next poll.
 */
static void
kv_publish(struct daemon *ts, const uint32_t *changed, size_t n, bool applied)
{
	struct mg_datapath *dp = ts->dp;
	struct mg_error err = {{0}};
	struct mg_policy *pol = NULL;
	int prc = 0;

	if (!applied && n == 0 && mg_ipcache_pending(ts->st.ipc) == 0)
		return;
	if (n > 0) {
		pol = mg_policy_update_identities(mg_datapath_policy(dp), ts->st.set, ts->st.ids,
		                                  changed, n, &err);
		if (pol == NULL) {
			prc = -EAGAIN;
			MG_ERR("kvstore: policy update for %zu identities failed: %s", n,
			       err.msg[0] ? err.msg : strerror(errno));
		}
	}
	if (prc == 0) {
		prc = mg_datapath_publish(dp, ts->st.ipc, pol);
		if (prc < 0) {
			MG_ERR("kvstore: publishing the batch failed: %s", strerror(-prc));
			mg_policy_free(pol);
		}
	}
	if (prc < 0) {
		/* Nothing of the batch is live: the workers keep a matching pair. */
		ts->kv_failed++;
		mg_ipcache_discard(ts->st.ipc);
		mg_kv_sync_request_resync(ts->kv, MG_KV_RESYNC_REPAIR);
	}
}

/* One poll of the sync client, and the publication of its batch. */
void
daemon_kv_tick(struct daemon *ts)
{
	uint32_t *changed = NULL;
	size_t n = 0;
	int rc;

	rc = mg_kv_sync_poll(ts->kv, &changed, &n);
	/* A failed poll may have staged part of a batch its copies hold: publish it too. */
	kv_publish(ts, changed, n, rc > 0);
	if (rc < 0 && rc != -ENOTCONN)
		MG_ERR("kvstore: poll: %s", strerror(-rc));
	free(changed);
}

/*
 * The sync client's parameters from @p cfg, into @p p with the cluster
 * list in @p cl (MG_KV_SYNC_MAX_CLUSTERS entries): the local cluster is
 * the one named cluster.name, and its config in Redis must carry
 * cluster.id.
 */
static void
kv_params(const struct mg_config *cfg, struct mg_kv_sync_cluster_params *cl,
          struct mg_kv_sync_params *p)
{
	for (size_t i = 0; i < cfg->n_kv_clusters; i++) {
		cl[i].name = cfg->kv_clusters[i];
		cl[i].local = strcmp(cfg->kv_clusters[i], cfg->cluster_name) == 0;
		cl[i].id = cl[i].local ? cfg->cluster_id : 0;
	}
	p->url = cfg->kv_redis;
	p->user = cfg->kv_user;
	p->n_clusters = cfg->n_kv_clusters;
	p->clusters = cl;
	/* The poll is the control thread's wait between serving the control
	 * socket: a short block keeps commands answered within ~10 ms. */
	p->block_ms = cfg->kv_block_ms < 10 ? cfg->kv_block_ms : 10;
	p->connect_ms = 1000;
	/* 0 would mean the default (0.5): "no deletion" is a tiny share. */
	p->max_delete_share = cfg->kv_max_delete_share ? cfg->kv_max_delete_share / 100.0 : 1e-9;
	p->removal_grace_ms = cfg->kv_removal_grace * 1000u;
}

static bool
str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * After a good reload: the new config's cluster list, removal grace and
 * mass-delete share go to the sync client; clusters that left the list
 * lose their state now, in one publication. The connection settings are
 * read at start only: say so when they changed.
 */
static void
kv_reconfigure(struct daemon *d, const struct mg_config *old)
{
	const struct mg_config *cfg = d->st.cfg;
	struct mg_kv_sync_cluster_params *cl;
	struct mg_kv_sync_params p = {0};
	struct mg_error err = {{0}};
	uint32_t *changed = NULL;
	size_t n = 0;
	int rc;

	if (cfg->kv_redis == NULL) {
		MG_WARN("reload: the kvstore section was removed; the Redis sync goes on with the "
		        "settings it started with until a restart");
		return;
	}
	if (!str_eq(cfg->kv_redis, old->kv_redis) || !str_eq(cfg->kv_user, old->kv_user) ||
	    !str_eq(cfg->kv_password_file, old->kv_password_file))
		MG_WARN("reload: kvstore.redis, user and password_file take effect at the next "
		        "start");
	cl = calloc(cfg->n_kv_clusters ? cfg->n_kv_clusters : 1, sizeof(*cl));
	if (cl == NULL) {
		MG_ERR("reload: kvstore: out of memory");
		return;
	}
	kv_params(cfg, cl, &p);
	rc = mg_kv_sync_reconfigure(d->kv, &p, &changed, &n, &err);
	if (rc < 0)
		MG_ERR("reload: kvstore: %s", err.msg[0] ? err.msg : strerror(-rc));
	kv_publish(d, changed, n, false);
	free(changed);
	free(cl);
}

/*
 * Create the sync client on the state's tables and run the initial sync,
 * bounded by kvstore.sync_timeout; recompile the policy over what came.
 * The ports are not started yet: nothing is forwarded meanwhile.
 */
static int
kv_start(struct state *st, struct mg_kv_sync **out)
{
	const struct mg_config *cfg = st->cfg;
	struct mg_kv_sync_cluster_params *cl;
	struct mg_kv_sync_params p = {0};
	struct mg_error err = {{0}};
	struct mg_kv_sync_stats ks;
	struct mg_kv_sync *kv;
	uint32_t *changed = NULL;
	size_t i, n = 0;
	char password[256] = "";
	int rc;

	*out = NULL;
	if (cfg->n_kv_clusters == 0) {
		MG_WARN("kvstore: no clusters configured: nothing to sync");
		return 0;
	}
	if (cfg->kv_password_file != NULL) {
		struct mg_error perr = {{0}};

		/* the writer's check too: a regular file group and others cannot read */
		rc = mg_kv_password_file_read(cfg->kv_password_file, password, sizeof(password),
		                              &perr);
		if (rc < 0) {
			MG_ERR("kvstore.password_file: %s", perr.msg);
			return rc;
		}
	}
	cl = calloc(cfg->n_kv_clusters, sizeof(*cl));
	if (cl == NULL) {
		MG_ERR("kvstore: out of memory");
		return -ENOMEM;
	}
	kv_params(cfg, cl, &p);
	p.password = password;
	/* st is the daemon's state, swapped in place by reloads: always current */
	p.base = kv_base;
	p.base_arg = st;
	kv = mg_kv_sync_create(&p, st->ids, st->ipc, &err);
	explicit_bzero(password, sizeof(password));
	free(cl);
	if (kv == NULL) {
		rc = -errno;
		MG_ERR("kvstore: %s", err.msg[0] ? err.msg : strerror(errno));
		return rc;
	}
	MG_INFO("kvstore: initial sync of %zu cluster(s) from %s (at most %u s; nothing is "
	        "forwarded meanwhile)",
	        cfg->n_kv_clusters, cfg->kv_redis, cfg->kv_sync_timeout);
	rc = mg_kv_sync_initial(kv, cfg->kv_sync_timeout * 1000u, &changed, &n, &err);
	free(changed);
	/* The batch is left staged; no port runs yet: a plain commit. */
	if (rc == 0 || rc == -ETIMEDOUT) {
		int crc = mg_ipcache_commit(st->ipc);

		if (crc < 0)
			rc = crc;
	}
	if (rc < 0 && rc != -ETIMEDOUT) {
		MG_ERR("kvstore: initial sync: %s", strerror(-rc));
		mg_kv_sync_free(kv);
		return rc;
	}
	for (i = 0; i < mg_kv_sync_n_clusters(kv); i++) {
		if (mg_kv_sync_stats(kv, i, &ks) != 0)
			continue;
		if (ks.synced)
			MG_INFO("kvstore: cluster %s (id %u%s) synced: %" PRIu64 " entries",
			        ks.name, ks.cluster_id,
			        strcmp(ks.name, cfg->cluster_name) == 0 ? ", local" : "",
			        ks.entries);
		else if (ks.removed)
			MG_WARN("kvstore: cluster %s: %s", ks.name, ks.why);
		else
			MG_WARN("kvstore: cluster %s not synced: %s", ks.name, ks.why);
	}
	if (rc == -ETIMEDOUT)
		MG_WARN("kvstore: initial sync not done after %u s: proceeding with what it has "
		        "(%s)",
		        cfg->kv_sync_timeout, err.msg);
	/* One compile, over the static and the synced identities. */
	rc = state_compile(st, NULL);
	if (rc < 0) {
		mg_kv_sync_free(kv);
		return rc;
	}
	*out = kv;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"check-config", no_argument, NULL, 'C'},
	        {"stats-file", required_argument, NULL, 'S'},
	        {"idle-exit", required_argument, NULL, 'I'},
	        {"verbose", no_argument, NULL, 'v'},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *config = NULL, *stats_file = NULL;
	static struct daemon d = {.st = {.revision = 1}};
	struct state *stp = &d.st;
	struct mg_error err = {{0}};
	struct rte_rcu_qsbr *qsbr = NULL;
	struct mg_datapath *dp = NULL;
	struct mg_dp_counters c;
	bool check = false;
	char **eal_argv = NULL;
	int opt, rc, ret = EXIT_RUNTIME;
	size_t i;

	while ((opt = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'S':
			stats_file = optarg;
			break;
		case 'I': {
			char *end;
			unsigned long ms = strtoul(optarg, &end, 10);

			if (*optarg == '\0' || *end != '\0' || ms == 0 || ms > 86400000ul) {
				fprintf(stderr,
				        "meshgate: --idle-exit: expected milliseconds, got '%s'\n",
				        optarg);
				return EXIT_USAGE;
			}
			d.idle_ns = ms * 1000000ull;
			break;
		}
		case 'v':
			mg_log_set_level(MG_LOG_DEBUG);
			break;
		case 'V':
			printf("meshgate %s\n", MG_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (config == NULL || optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}

	stp->cfg = mg_config_load(config, &err);
	if (stp->cfg == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		return EXIT_CONFIG;
	}
	if (check) {
		rc = state_load(stp, NULL, NULL, NULL);
		if (rc == 0)
			rc = state_compile(stp, NULL);
		if (rc == 0) {
			printf("config OK: ");
			print_summary(stp, stdout);
		}
		state_free(stp);
		return rc == 0 ? 0 : EXIT_CONFIG;
	}

	eal_argv = calloc(stp->cfg->n_eal + 2, sizeof(*eal_argv));
	if (eal_argv == NULL)
		goto out;
	eal_argv[0] = argv[0];
	for (i = 0; i < stp->cfg->n_eal; i++)
		eal_argv[i + 1] = stp->cfg->eal[i];
	/* rte_eal_init may permute its argv: it gets a copy. */
	rc = rte_eal_init((int)stp->cfg->n_eal + 1, eal_argv);
	if (rc < 0) {
		MG_ERR("EAL initialisation failed: %s", rte_strerror(rte_errno));
		free(eal_argv);
		mg_config_free(stp->cfg);
		return EXIT_RUNTIME;
	}

	qsbr = mg_datapath_qsbr_create();
	if (qsbr == NULL) {
		MG_ERR("cannot allocate the RCU state");
		goto out;
	}
	if (state_load(stp, qsbr, NULL, NULL) != 0) {
		ret = EXIT_CONFIG;
		goto out;
	}
	/* Fail-closed: the ports start only after the initial sync, which
	 * compiles the policy over what it brought. */
	rc = stp->cfg->kv_redis != NULL ? kv_start(stp, &d.kv) : state_compile(stp, NULL);
	if (rc != 0) {
		ret = EXIT_CONFIG;
		goto out;
	}
	print_summary(stp, stderr);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	dp = mg_datapath_create(stp->cfg, stp->ipc, stp->policy, qsbr, &err);
	if (dp == NULL) {
		MG_ERR("%s", err.msg);
		goto out;
	}
	stp->policy = NULL; /* owned by the data path now */
	rc = mg_datapath_start(dp);
	if (rc != 0) {
		MG_ERR("cannot start workers: %s", strerror(-rc));
		goto out;
	}
	d.dp = dp;
	d.stop = &stop_requested;
	d.reload_requested = &reload_requested;
	d.start_ns = mg_time_ns();
	rc = control_start(&d, &err);
	if (rc < 0) {
		MG_ERR("%s", err.msg[0] ? err.msg : strerror(-rc));
		ret = EXIT_CONFIG;
		goto out;
	}
	MG_INFO("ready: %u ports, %u forwarding lcore(s)", mg_datapath_nb_ports(dp),
	        mg_datapath_nb_workers(dp));
	mg_notify("READY=1\nSTATUS=forwarding");
	mg_datapath_run(dp, &stop_requested, NULL, NULL);
	mg_notify("STOPPING=1");
	control_stop(&d);
	mg_datapath_stop(dp);

	mg_datapath_counters(dp, &c);
	print_counters(dp, &c, stdout);
	fflush(stdout);
	ret = 0;
	if (stats_file != NULL && (rc = write_stats(stats_file, dp, &c, &d)) != 0) {
		MG_ERR("%s: %s", stats_file, strerror(-rc));
		ret = EXIT_RUNTIME;
	}
out:
	stop_requested = 1;
	control_stop(&d);
	if (dp != NULL) {
		mg_datapath_stop(dp);
		mg_datapath_free(dp);
	}
	mg_kv_sync_free(d.kv);
	state_free(stp);
	rte_free(qsbr);
	rte_eal_cleanup();
	free(eal_argv);
	return ret;
}
