/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's control thread: it serves the control socket (lib/ctl;
 * the command areas cmd_*.c, docs/ctl-protocol.md), runs SIGHUP reloads
 * and the Redis sync's ticks (lib/gateway), feeds the drop monitor's
 * subscribers from the workers' event rings, and keeps the snapshot that
 * the metrics endpoint and DPDK telemetry read from their own threads.
 *
 * Everything that changes the gateway's tables runs here, one thing at a
 * time, so the handlers read the identity table, the ipcache and the
 * policy set without locks. A handler never blocks on the network: the
 * slowest ones are a reload (parsing and compiling) and the conntrack
 * list/flush requests the workers serve (bounded waits).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "notify.h"

/* How often the slow parts of the snapshot (walks over tables) are redone. */
#define SNAP_SLOW_NS 1000000000ull

/* Every command area; their tables are registered in this order (help lists them so). */
static const struct cmd_area *const areas[] = {
        &cmd_area_status, &cmd_area_config, &cmd_area_identity, &cmd_area_ip,      &cmd_area_policy,
        &cmd_area_ct,     &cmd_area_sync,   &cmd_area_monitor,  &cmd_area_metrics, &cmd_area_reload,
};

/* Answer the requests that waited for reload @p gen (or an earlier one). */
static void
reload_answer(struct daemon *d, uint64_t gen, int rc, const struct mg_error *err)
{
	struct mg_gateway_stats gs;
	json_t *result = NULL;
	unsigned i, keep = 0;

	if (rc == 0) {
		mg_gateway_stats(d->gw, &gs);
		result = json_pack("{s:I, s:I}", "revision", (json_int_t)gs.revision,
		                   "ipcache_changes", (json_int_t)gs.last_reload_changes);
		if (result == NULL)
			rc = -ENOMEM;
	}
	for (i = 0; i < d->n_reload_waiters; i++) {
		struct reload_waiter *w = &d->reload_waiters[i];

		if (w->gen > gen) {
			d->reload_waiters[keep++] = *w;
			continue;
		}
		if (d->ctl != NULL)
			mg_ctl_server_reply(d->ctl, w->ticket, rc, result, err->msg);
	}
	d->n_reload_waiters = keep;
	json_decref(result);
}

/* Start reload number reload_gen + 1. 0, or negative errno (logged, nothing started). */
static int
reload_begin(struct daemon *d, struct mg_error *err)
{
	int rc;

	d->reload_gen++;
	mg_notify("RELOADING=1");
	rc = mg_gateway_reload_start(d->gw, err);
	if (rc < 0) {
		MG_ERR("reload failed (%s); the running state is kept", err->msg);
		mg_notify("READY=1");
	}
	return rc;
}

int
daemon_reload_request(struct daemon *d, uint64_t ticket, struct mg_error *err)
{
	int rc = 0;

	if (ticket != 0 && d->n_reload_waiters == DAEMON_RELOAD_WAITERS) {
		mg_error_set(err, NULL, 0, 0, "%u reload requests wait already",
		             DAEMON_RELOAD_WAITERS);
		return -EBUSY;
	}
	if (mg_gateway_reload_busy(d->gw))
		d->reload_again = true; /* the next one answers it */
	else if ((rc = reload_begin(d, err)) < 0)
		return rc;
	if (ticket != 0)
		d->reload_waiters[d->n_reload_waiters++] = (struct reload_waiter){
		        .ticket = ticket,
		        .gen = d->reload_again ? d->reload_gen + 1 : d->reload_gen};
	return 0;
}

void
daemon_reload_tick(struct daemon *d)
{
	struct mg_error err = {{0}};
	int rc = mg_gateway_reload_poll(d->gw, &err);

	if (rc == 0)
		return;
	if (rc < 0)
		MG_ERR("reload failed (%s); the running state is kept", err.msg);
	mg_notify("READY=1");
	reload_answer(d, d->reload_gen, rc < 0 ? rc : 0, &err);
	if (d->reload_again) {
		d->reload_again = false;
		err.msg[0] = '\0';
		rc = reload_begin(d, &err);
		if (rc < 0)
			reload_answer(d, d->reload_gen, rc, &err);
	}
}

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
		mg_ctl_server_poll(d->ctl, mg_gateway_sync(d->gw) != NULL || events_wait ? 0 : 10);
		if (*d->reload_requested) {
			struct mg_error err = {{0}};

			*d->reload_requested = 0;
			daemon_reload_request(d, 0, &err);
		}
		daemon_reload_tick(d);
		mg_gateway_sync_tick(d->gw);
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
	const struct mg_config *cfg = mg_gateway_config(d->gw);
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
	for (size_t i = 0; i < MG_ARRAY_SIZE(areas); i++) {
		rc = mg_ctl_register_table(d->ctl, areas[i]->cmds, areas[i]->n, d, err);
		if (rc < 0)
			goto err;
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
