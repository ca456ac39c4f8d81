/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A control connection's I/O. Each connection owns a fixed input buffer of
 * max_request + 1 bytes (a line that does not fit is refused, so memory
 * per client is bounded before any JSON is parsed) and a growing output
 * buffer that is drained with non-blocking sends. Back-pressure instead of
 * buffering: while a connection has more than max_output bytes unsent, its
 * further requests are not read, so a client that does not read stalls
 * itself, never the server. A request the client ends with the end of its
 * stream instead of a newline is answered too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl_priv.h"

/* Append @p len bytes to the output buffer; compacts before growing. */
int
ctl_out_append(struct mg_ctl_conn *c, const char *p, size_t len)
{
	if (c->out_off > 0 && c->out_len + len > c->out_cap) {
		memmove(c->out, c->out + c->out_off, ctl_pending(c));
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *n;

		while (cap < c->out_len + len)
			cap *= 2;
		n = realloc(c->out, cap);
		if (n == NULL)
			return -ENOMEM;
		c->out = n;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, p, len);
	c->out_len += len;
	return 0;
}

static int
dump_cb(const char *buf, size_t size, void *data)
{
	return ctl_out_append(data, buf, size) == 0 ? 0 : -1;
}

/* Append @p j and a newline; on failure nothing is appended. */
int
ctl_out_json(struct mg_ctl_conn *c, const json_t *j)
{
	size_t mark = c->out_len, off = c->out_off;

	if (json_dump_callback(j, dump_cb, c, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 ||
	    ctl_out_append(c, "\n", 1) != 0) {
		/* a compaction moved the bytes: undo relative to the new start */
		c->out_len = mark - (off - c->out_off);
		return -ENOMEM;
	}
	return 0;
}

/* Run the complete lines in the input buffer while output is not backed up. */
void
ctl_handle_input(struct mg_ctl_conn *c)
{
	struct mg_ctl_server *s = c->srv;
	size_t start = 0;

	/* with a reply owed, the next requests wait for it */
	while (!c->dead && c->owed == 0 && ctl_pending(c) <= s->max_output) {
		char *nl = memchr(c->in + start, '\n', c->in_len - start);
		size_t len, next;

		if (nl != NULL) {
			len = (size_t)(nl - (c->in + start));
			next = (size_t)(nl - c->in) + 1;
		} else if (c->closing && start < c->in_len && c->in_len - start <= s->max_request) {
			/* the client shut down its side: the end of the stream
			 * ends its last line, as `printf '...' | nc -U` sends it */
			len = c->in_len - start;
			next = c->in_len;
		} else {
			break;
		}
		if (len > 0 && c->in[start + len - 1] == '\r')
			len--;
		if (len > 0) /* blank lines are ignored, for hand-typed sessions */
			ctl_handle_line(c, c->in + start, len);
		start = next;
	}
	if (start > 0) {
		memmove(c->in, c->in + start, c->in_len - start);
		c->in_len -= start;
	}
	if (!c->dead && !c->closing && c->in_len > s->max_request &&
	    memchr(c->in, '\n', c->in_len) == NULL) {
		char msg[128];

		/* no newline within max_request + 1 bytes */
		snprintf(msg, sizeof(msg), "request longer than %zu bytes", s->max_request);
		ctl_reply(c, NULL, -E2BIG, NULL, msg);
		s->st.closed_oversize++;
		c->closing = true;
		c->in_len = 0;
	}
}

void
ctl_out_dropped(struct mg_ctl_conn *c)
{
	char line[MG_CTL_NAME_MAX + 64];
	int n = snprintf(line, sizeof(line), "{\"stream\":\"%s\",\"dropped\":%llu}\n", c->stream,
	                 (unsigned long long)c->dropped);

	if (ctl_out_append(c, line, (size_t)n) == 0)
		c->dropped = 0;
}

void
ctl_flush_output(struct mg_ctl_conn *c)
{
	bool moved = false;

	while (ctl_pending(c) > 0) {
		ssize_t n = send(c->fd, c->out + c->out_off, ctl_pending(c),
		                 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->dead = true; /* EPIPE, ECONNRESET: the client went away */
			break;
		}
		c->out_off += (size_t)n;
		moved = true;
	}
	if (moved)
		c->last_ns = mg_time_ns();
	if (ctl_pending(c) == 0) {
		c->out_off = c->out_len = 0;
		c->out_wait_ns = 0;
		if (c->dropped > 0 && c->stream[0] != '\0')
			ctl_out_dropped(c); /* caught up: tell it what it missed */
	} else if (moved || c->out_wait_ns == 0) {
		/* the socket is full: from now on the client must read */
		c->out_wait_ns = moved ? c->last_ns : mg_time_ns();
	}
}

void
ctl_read_input(struct mg_ctl_conn *c)
{
	size_t room = c->srv->max_request + 1 - c->in_len;
	ssize_t n;

	if (room == 0)
		return; /* full of lines waiting for the output to drain */
	do
		n = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			c->dead = true;
		return;
	}
	if (n == 0) {
		/* the client is done sending: answer what it sent, then close */
		c->closing = true;
		return;
	}
	c->in_len += (size_t)n;
	c->last_ns = mg_time_ns();
}

/* ---- connections ---- */

void
ctl_conn_free(struct mg_ctl_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	json_decref(c->owed_id);
	free(c);
}

const struct mg_ctl_peer *
mg_ctl_conn_peer(const struct mg_ctl_conn *c)
{
	return &c->peer;
}
