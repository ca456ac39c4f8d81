/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Streams of the control socket: a connection subscribes to a stream
 * (such as "monitor") with a mask of event kinds, and the daemon publishes
 * events to every subscriber whose mask meets theirs. A server must never
 * wait for a subscriber: one whose output is backed up loses events and is
 * told how many before its next delivered line. Building an event is left
 * to the caller's callback, called only when some subscriber has room for
 * it, so a flood of events for subscribers that are all full costs a
 * counter each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_priv.h"

int
mg_ctl_conn_subscribe(struct mg_ctl_conn *c, const char *stream, uint64_t kinds)
{
	if (c == NULL || !ctl_valid_name(stream) || kinds == 0)
		return mg_errno_set(EINVAL);
	snprintf(c->stream, sizeof(c->stream), "%s", stream);
	c->kinds = kinds;
	c->dropped = 0;
	return 0;
}

bool
mg_ctl_server_has_subscribers(const struct mg_ctl_server *s, const char *stream, uint64_t kinds)
{
	for (size_t i = 0; i < s->n_conns; i++) {
		const struct mg_ctl_conn *c = s->conns[i];

		if ((c->kinds & kinds) && strcmp(c->stream, stream) == 0)
			return true;
	}
	return false;
}

/* Would @p c get an event of @p stream and @p kinds now (room or not)? */
static bool
takes(const struct mg_ctl_conn *c, const char *stream, uint64_t kinds)
{
	return (c->kinds & kinds) && !c->in_handler && !c->dead && !c->closing &&
	       strcmp(c->stream, stream) == 0;
}

static void
lose(struct mg_ctl_server *s, struct mg_ctl_conn *c)
{
	c->dropped++;
	s->st.events_dropped++;
}

/* mg_ctl_server_publish and _publish_fn: @p event, or else make(arg). */
static int
publish(struct mg_ctl_server *s, const char *stream, uint64_t kinds, const json_t *event,
        mg_ctl_event_make_fn *make, void *arg)
{
	char *body = NULL, head[MG_CTL_NAME_MAX + 32];
	json_t *made = NULL;
	size_t blen = 0, room = 0;
	int hlen, queued = 0;

	/* first the subscribers that are full: they lose it, whatever it is */
	for (size_t i = 0; i < s->n_conns; i++) {
		struct mg_ctl_conn *c = s->conns[i];

		if (!takes(c, stream, kinds))
			continue;
		if (ctl_pending(c) > s->max_output)
			lose(s, c);
		else
			room++;
	}
	if (room == 0)
		return 0; /* nobody to build it for */
	if (event == NULL)
		event = made = make(arg);
	if (event != NULL)
		body = json_dumps(event, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	json_decref(made);
	if (body == NULL) {
		for (size_t i = 0; i < s->n_conns; i++)
			if (takes(s->conns[i], stream, kinds) &&
			    ctl_pending(s->conns[i]) <= s->max_output)
				lose(s, s->conns[i]);
		return event == NULL ? -ENOMEM : -EINVAL;
	}
	blen = strlen(body);
	hlen = snprintf(head, sizeof(head), "{\"stream\":\"%s\",\"event\":", stream);
	for (size_t i = 0; i < s->n_conns; i++) {
		struct mg_ctl_conn *c = s->conns[i];
		size_t mark;

		if (!takes(c, stream, kinds) || ctl_pending(c) > s->max_output)
			continue;
		if (c->dropped > 0)
			ctl_out_dropped(c);
		mark = ctl_pending(c);
		if (ctl_out_append(c, head, (size_t)hlen) || ctl_out_append(c, body, blen) ||
		    ctl_out_append(c, "}\n", 2)) {
			/* drop the partial line (a compaction may have moved the start) */
			c->out_len = c->out_off + mark;
			lose(s, c);
			continue;
		}
		s->st.events++;
		queued++;
	}
	free(body);
	return queued;
}

int
mg_ctl_server_publish(struct mg_ctl_server *s, const char *stream, const json_t *event,
                      uint64_t kinds)
{
	if (!ctl_valid_name(stream) || event == NULL)
		return mg_errno_set(EINVAL);
	return publish(s, stream, kinds, event, NULL, NULL);
}

int
mg_ctl_server_publish_fn(struct mg_ctl_server *s, const char *stream, uint64_t kinds,
                         mg_ctl_event_make_fn *make, void *arg)
{
	if (!ctl_valid_name(stream) || make == NULL)
		return mg_errno_set(EINVAL);
	return publish(s, stream, kinds, NULL, make, arg);
}

int
mg_ctl_server_stream_lost(struct mg_ctl_server *s, const char *stream, uint64_t kinds, uint64_t n)
{
	int told = 0;

	if (!ctl_valid_name(stream))
		return mg_errno_set(EINVAL);
	for (size_t i = 0; n > 0 && i < s->n_conns; i++) {
		struct mg_ctl_conn *c = s->conns[i];

		if (takes(c, stream, kinds)) {
			c->dropped += n;
			told++;
		}
	}
	return told;
}
