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

/* `reload` requests waiting for their reply at once, at most. */
#define DAEMON_RELOAD_WAITERS 64

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

	/* reloads: the one under way is number reload_gen; a request that
	 * came during it waits for the next (reload_again) */
	uint64_t reload_gen;
	bool reload_again;
	struct reload_waiter {
		uint64_t ticket; /* the `reload` command's deferred reply */
		uint64_t gen;    /* answered when this reload is done */
	} reload_waiters[DAEMON_RELOAD_WAITERS];
	unsigned n_reload_waiters;
};

/**
 * SIGHUP (@p ticket 0) and `meshgatectl reload` (@p ticket: the deferred
 * reply's): a reload in the background (mg_gateway_reload_start), or, when
 * one is under way, another one after it, since the files may have changed
 * after it read them. Announced to systemd (RELOADING=1, then READY=1); a
 * failure is logged once. The request's reply comes when its reload is done.
 * @return 0, or negative errno with @p err filled (the reload could not
 *   start, or DAEMON_RELOAD_WAITERS requests wait already: -EBUSY).
 */
int daemon_reload_request(struct daemon *d, uint64_t ticket, struct mg_error *err);

/* One control turn: finish a reload whose thread is done, answer its requests, start the next. */
void daemon_reload_tick(struct daemon *d);

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
