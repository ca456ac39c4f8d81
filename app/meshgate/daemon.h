/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's shared state, split between main.c (arguments, EAL, start
 * and stop), control.c (the control thread), the command areas (cmd_*.c,
 * each registering its table with lib/ctl) and stats.c (the final
 * counters). The gateway's state itself (tables, policy, reloads, the
 * Redis sync) is lib/gateway's.
 *
 * Threads and ownership:
 *  - the main lcore forwards (no worker lcores) or waits for the stop;
 *  - worker lcores forward;
 *  - the control thread owns the gateway and the control server: every
 *    change of the tables, every reload and every command runs on it, one
 *    at a time, so none needs a lock;
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
#include "mg_datapath.h"
#include "mg_gateway.h"

struct mg_ctl_server;
struct mg_metrics_http;
struct mg_metrics_snapshot;

struct daemon {
	struct mg_gateway *gw;
	struct mg_datapath *dp;
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
 * SIGHUP and `meshgatectl reload`: mg_gateway_reload, announced to
 * systemd (RELOADING=1, then READY=1); a failure is logged once, here.
 * 0 or negative errno with @p err filled.
 */
int daemon_reload(struct daemon *d, struct mg_error *err);

/**
 * Start the control thread: the control socket (control.*, every command
 * area registered), the metrics endpoint (metrics.*), the DPDK telemetry
 * commands. From then on reloads and the sync run on that thread. 0, or
 * negative errno with @p err filled (nothing started).
 */
int control_start(struct daemon *d, struct mg_error *err);

/** Stop the control thread (bounded) and close the socket and the endpoint. */
void control_stop(struct daemon *d);

/* cmd_monitor.c: one turn of the monitor (true: more events wait for a taker). */
bool monitor_tick(struct daemon *d);

/* cmd_metrics.c: the snapshot the other threads read. */
void snapshot_refresh(struct daemon *d, bool slow);
int collect(void *arg, struct mg_metrics_snapshot *out);

#endif /* MG_DAEMON_H */
