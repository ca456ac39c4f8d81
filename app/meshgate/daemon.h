/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's shared state, split between main.c (start-up, reload,
 * the sync tick, shutdown) and control.c (the control thread: control
 * socket commands, the metrics endpoint, DPDK telemetry, the drop
 * monitor).
 *
 * Threads and ownership:
 *  - the main lcore forwards (no worker lcores) or waits for the stop;
 *  - worker lcores forward;
 *  - the control thread owns struct state, the sync client and the
 *    control server: every change of the tables, every reload and every
 *    command runs on it, one at a time, so none needs a lock;
 *  - the metrics HTTP thread and DPDK's telemetry thread only read: a
 *    snapshot of the control-side figures the control thread refreshes
 *    under snap_lock, plus the workers' counters, which are plain per-lcore
 *    uint64_t readable from anywhere.
 */
#ifndef MG_DAEMON_H
#define MG_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mg_common.h"
#include "mg_config.h"
#include "mg_datapath.h"
#include "mg_identity.h"
#include "mg_ipcache.h"
#include "mg_policy.h"

struct mg_kv_sync;
struct mg_ctl_server;
struct mg_metrics_http;
struct mg_metrics_snapshot;

/* Everything the daemon loads from files; shared by --check-config and the run. */
struct state {
	struct mg_config *cfg;
	struct mg_identity_table *ids;
	struct mg_policy_set *set;
	struct mg_ipcache *ipc;
	/* static entries only (no readers): what shows again when the synced
	 * entry of the same prefix goes (the sync client's base layer) */
	struct mg_ipcache *base;
	struct mg_policy *policy; /* NULL once handed to the data path */
	/* CIDR identities: kept across reloads so a prefix keeps its number */
	struct mg_cidr_ids *cidr;
	uint64_t revision; /* of the policy: 1 at start, +1 per reload */
};

struct daemon {
	struct state st;
	struct mg_datapath *dp;
	struct mg_kv_sync *kv;
	uint64_t kv_failed; /* batches whose policy could not be derived */
	uint64_t reloads_ok, reloads_failed;
	char last_reload_error[512];
	uint64_t last_reload_changes; /* ipcache entries the last good reload changed */
	uint64_t start_ns;
	volatile int *stop;             /* set to stop the daemon (idle exit) */
	volatile int *reload_requested; /* SIGHUP */
	uint64_t idle_ns, last_rx, last_change;

	/* control thread */
	pthread_t thread;
	bool thread_started;
	struct mg_ctl_server *ctl;
	struct mg_metrics_http *http;
	unsigned monitor_mask; /* events the workers sample now (MG_DP_MON_*) */
	uint64_t monitor_lost; /* events lost in the workers' rings, as last seen */

	/* what readers on other threads see */
	pthread_mutex_t snap_lock;
	struct mg_metrics_snapshot *snap; /* control-side figures (under snap_lock) */
	uint64_t snap_next_ns;            /* next refresh of the slow parts */
	bool closing;                     /* readers must not touch the data path */
};

/**
 * SIGHUP and `meshgatectl reload`: re-read the config and everything it
 * names, compile, swap as one step. On failure the running state stays
 * and @p err says why. 0 or negative errno.
 */
int daemon_reload(struct daemon *d, struct mg_error *err);

/** One poll of the sync client and the publish of what it brought. */
void daemon_kv_tick(struct daemon *d);

/**
 * Start the control thread: the control socket (control.*), the metrics
 * endpoint (metrics.listen), the DPDK telemetry commands. From then on
 * reloads and the sync run on that thread. 0, or negative errno with
 * @p err filled (nothing started).
 */
int control_start(struct daemon *d, struct mg_error *err);

/** Stop the control thread and close the socket and the endpoint. */
void control_stop(struct daemon *d);

#endif /* MG_DAEMON_H */
