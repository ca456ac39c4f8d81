/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The `monitor` command and its stream: subscribers get the drops (and a
 * sample of the forwarded frames) the workers record in their event
 * rings, with both identities and their labels. monitor_tick, run once per
 * turn of the control loop, keeps the workers' sampling in line with the
 * subscribers and hands on a bounded number of events.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "commands.h"

/*
 * Monitor events handed on per turn of the control loop, at most (about a
 * worker ring's worth). The rest waits in the workers' rings, and what
 * they cannot hold the workers count as lost: a flood of events never
 * keeps the loop from the socket, reloads, the sync or a stop.
 */
#define MON_EVENTS_PER_TURN 2048

static int
cmd_monitor(void *arg, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
            struct mg_error *err)
{
	struct daemon *d = arg;
	const char *type;
	uint64_t kinds;
	int rc;

	(void)d;
	if ((rc = cmd_arg_str(args, "type", &type, err)) < 0)
		return rc;
	if (type == NULL || strcmp(type, "drop") == 0)
		kinds = MON_DROP;
	else if (strcmp(type, "verdict") == 0)
		kinds = MON_VERDICT;
	else if (strcmp(type, "all") == 0)
		kinds = MON_DROP | MON_VERDICT;
	else
		return cmd_fail(err, -EINVAL, "type: drop, verdict or all, not %s", type);
	rc = mg_ctl_conn_subscribe(conn, "monitor", kinds);
	if (rc < 0)
		return rc;
	*result = json_pack("{s:b, s:s}", "streaming", true, "type", type ? type : "drop");
	return *result != NULL ? 0 : -ENOMEM;
}

static json_t *
labels_of(const struct daemon *d, uint32_t id)
{
	const struct mg_identity *ident = mg_identity_table_get(mg_gateway_identities(d->gw), id);

	return ident != NULL ? cmd_labels_json(&ident->labels) : json_array();
}

static json_t *
event_json(const struct daemon *d, const struct mg_dp_event *ev)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], when[64];
	time_t sec = (time_t)(ev->ns / 1000000000ull);
	const char *family = ev->family == AF_INET ? "ipv4" : ev->family == AF_INET6 ? "ipv6" : "-";
	struct tm tm;
	json_t *o;

	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03uZ",
	         (unsigned)(ev->ns / 1000000ull % 1000));
	cmd_addr_str(ev->family, ev->src, src, sizeof(src));
	cmd_addr_str(ev->family, ev->dst, dst, sizeof(dst));
	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:o, "
	              "s:i}",
	              "time", when, "type", ev->reason == MG_DROP_NONE ? "verdict" : "drop", "port",
	              mg_datapath_port_name(d->dp, ev->in_port), "worker", (int)ev->worker,
	              "reason", ev->reason == MG_DROP_NONE ? "allowed" : mg_drop_label(ev->reason),
	              "direction", mg_metrics_drop_direction(ev->reason), "by",
	              mg_dp_event_by_name(ev->by), "family", family, "proto",
	              ev->family ? cmd_proto_name(ev->proto) : "-", "src", src, "dst", dst,
	              "src_identity", (json_int_t)ev->src_id, "dst_identity",
	              (json_int_t)ev->dst_id, "src_labels", labels_of(d, ev->src_id), "dst_labels",
	              labels_of(d, ev->dst_id), "len", (int)ev->len);
	if (o == NULL)
		return NULL;
	if (ev->proto == 1 || ev->proto == 58) {
		json_object_set_new(o, "icmp_type", json_integer(ev->icmp_type));
		json_object_set_new(o, "icmp_code", json_integer(ev->icmp_code));
	} else if (ev->family != 0) {
		json_object_set_new(o, "sport", json_integer(ev->sport));
		json_object_set_new(o, "dport", json_integer(ev->dport));
	}
	return o;
}

struct event_src {
	const struct daemon *d;
	const struct mg_dp_event *ev;
};

static json_t *
make_event(void *arg)
{
	const struct event_src *e = arg;

	return event_json(e->d, e->ev);
}

/*
 * Keep the workers' sampling in line with the subscribers, and pass what
 * they recorded on: at most MON_EVENTS_PER_TURN events, each turned into
 * JSON only when a subscriber has room for it (mg_ctl_server_publish_fn),
 * so subscribers that do not read cost a counter per event. Events the
 * rings lost are announced to the subscribers in their "dropped" lines.
 * @return true when the turn's budget ran out while someone was taking
 *   events: the loop should come back without waiting.
 */
bool
monitor_tick(struct daemon *d)
{
	struct mg_dp_event ev[256];
	unsigned mask = 0, n, want, done = 0;
	uint64_t kinds = 0, lost;
	bool delivered = false;

	if (mg_ctl_server_has_subscribers(d->ctl, "monitor", MON_DROP))
		mask |= MG_DP_MON_DROPS;
	if (mg_ctl_server_has_subscribers(d->ctl, "monitor", MON_VERDICT))
		mask |= MG_DP_MON_VERDICTS;
	if (mask != d->monitor_mask) {
		mg_datapath_monitor_set(d->dp, mask);
		d->monitor_mask = mask;
	}
	lost = mg_datapath_monitor_lost(d->dp);
	if (mask == 0) {
		/* what the last subscriber left behind is nobody's: an old
		 * session's events must not reach the next one */
		mg_datapath_monitor_drain(d->dp, ev, MG_ARRAY_SIZE(ev));
		d->monitor_lost = lost;
		return false;
	}
	kinds = ((mask & MG_DP_MON_DROPS) ? MON_DROP : 0) |
	        ((mask & MG_DP_MON_VERDICTS) ? MON_VERDICT : 0);
	if (lost > d->monitor_lost) {
		mg_ctl_server_stream_lost(d->ctl, "monitor", kinds, lost - d->monitor_lost);
		d->monitor_lost = lost;
	}
	while (done < MON_EVENTS_PER_TURN) {
		want = MON_EVENTS_PER_TURN - done < MG_ARRAY_SIZE(ev) ? MON_EVENTS_PER_TURN - done
		                                                      : MG_ARRAY_SIZE(ev);
		n = mg_datapath_monitor_drain(d->dp, ev, want);
		for (unsigned i = 0; i < n; i++) {
			struct event_src src = {.d = d, .ev = &ev[i]};

			if (mg_ctl_server_publish_fn(d->ctl, "monitor",
			                             ev[i].reason == MG_DROP_NONE ? MON_VERDICT
			                                                          : MON_DROP,
			                             make_event, &src) > 0)
				delivered = true;
		}
		done += n;
		if (n < want)
			return false; /* the rings are empty */
	}
	return delivered;
}

static const struct mg_ctl_command cmds[] = {
        {"monitor", "stream of sampled drop / verdict events", false, cmd_monitor, NULL},
};

const struct cmd_area cmd_area_monitor = {"monitor", cmds, MG_ARRAY_SIZE(cmds)};
