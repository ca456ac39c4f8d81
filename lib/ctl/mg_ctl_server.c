/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's side of the control socket: a single-threaded poll() server
 * run from the control thread, one non-blocking step at a time, so that a
 * client can never stall the loop that also keeps the Redis sync and the
 * policy reloads going. This file holds the server's life (create, free)
 * and its step: poll the listener and the connections, accept, read, run
 * the complete requests, write what the sockets take, and close the
 * connections that are done, idle for idle_ms, or subscribers that read
 * nothing of what waits for them for idle_ms. The socket, the
 * connections' I/O, the commands and the streams have their own files
 * (ctl_priv.h lists them).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_priv.h"

#define MIN_REQUEST 64

struct mg_ctl_server *
mg_ctl_server_create(const struct mg_ctl_params *p, struct mg_error *err)
{
	struct mg_ctl_server *s = NULL;
	bool has_gid = false;
	gid_t gid = 0;
	int rc = -EINVAL;

	if (p == NULL || p->path == NULL || p->path[0] == '\0') {
		mg_error_set(err, NULL, 0, 0, "control socket: no path");
		goto err;
	}
	if (strlen(p->path) >= sizeof(s->path)) {
		mg_error_set(err, NULL, 0, 0, "control socket %s: longer than %zu bytes", p->path,
		             sizeof(s->path) - 1);
		rc = -ENAMETOOLONG;
		goto err;
	}
	if ((p->max_request != 0 && p->max_request < MIN_REQUEST) || p->max_clients > 65536 ||
	    (p->admin_group && strlen(p->admin_group) >= 64)) {
		mg_error_set(err, NULL, 0, 0,
		             "control socket: max_request below %d, max_clients above 65536 or "
		             "admin group name too long",
		             MIN_REQUEST);
		goto err;
	}
	if (p->admin_reserve >= (p->max_clients ? p->max_clients : MG_CTL_DEFAULT_MAX_CLIENTS)) {
		mg_error_set(err, NULL, 0, 0,
		             "control socket: admin_reserve %u leaves no connection for readers "
		             "(max_clients %u)",
		             p->admin_reserve,
		             p->max_clients ? p->max_clients : MG_CTL_DEFAULT_MAX_CLIENTS);
		goto err;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto oom;
	s->lfd = -1;
	snprintf(s->path, sizeof(s->path), "%s", p->path);
	s->max_clients = p->max_clients ? p->max_clients : MG_CTL_DEFAULT_MAX_CLIENTS;
	s->admin_reserve = p->admin_reserve;
	s->max_request = p->max_request ? p->max_request : MG_CTL_DEFAULT_MAX_REQUEST;
	s->max_output = p->max_output ? p->max_output : MG_CTL_DEFAULT_MAX_OUTPUT;
	if (p->idle_ms == UINT32_MAX)
		s->idle_ns = UINT64_MAX;
	else
		s->idle_ns = (uint64_t)(p->idle_ms ? p->idle_ms : MG_CTL_DEFAULT_IDLE_MS) * 1000000;
	s->conns = calloc(s->max_clients, sizeof(*s->conns));
	s->pfds = calloc(s->max_clients + 1, sizeof(*s->pfds));
	if (s->conns == NULL || s->pfds == NULL)
		goto oom;
	if (ctl_register_builtins(s) != 0)
		goto oom;
	if (p->group != NULL) {
		rc = ctl_lookup_group(p->group, "control.group", &gid, err);
		if (rc)
			goto err;
		has_gid = true;
	}
	if (p->admin_group != NULL) {
		rc = ctl_lookup_group(p->admin_group, "control.admin_group", &s->admin_gid, err);
		if (rc)
			goto err;
		s->has_admin = true;
		snprintf(s->admin_group, sizeof(s->admin_group), "%s", p->admin_group);
	}
	rc = ctl_socket_open(s, has_gid, gid, err);
	if (rc)
		goto err;
	return s;

oom:
	rc = -ENOMEM;
	mg_error_set(err, NULL, 0, 0, "control socket: out of memory");
err:
	if (s != NULL) {
		if (s->lfd >= 0)
			close(s->lfd);
		free(s->cmds);
		free(s->conns);
		free(s->pfds);
		free(s);
	}
	errno = -rc;
	return NULL;
}

void
mg_ctl_server_free(struct mg_ctl_server *s)
{
	struct stat st;

	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_conns; i++)
		ctl_conn_free(s->conns[i]);
	if (s->lfd >= 0) {
		close(s->lfd);
		/* a successor may have replaced the file already: leave its socket */
		if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
			unlink(s->path);
	}
	free(s->cmds);
	free(s->conns);
	free(s->pfds);
	free(s);
}

/* Milliseconds until the next idle deadline, capped by @p timeout_ms. */
static int
poll_timeout(const struct mg_ctl_server *s, int timeout_ms, uint64_t now)
{
	int t = timeout_ms;

	if (s->idle_ns == UINT64_MAX)
		return t;
	for (size_t i = 0; i < s->n_conns; i++) {
		const struct mg_ctl_conn *c = s->conns[i];
		uint64_t end;
		int ms;

		/* a subscriber's clock runs only while its output waits */
		if (c->stream[0] != '\0' && c->out_wait_ns == 0)
			continue;
		end = (c->stream[0] != '\0' ? c->out_wait_ns : c->last_ns) + s->idle_ns;
		ms = end <= now ? 0 : (int)((end - now + 999999) / 1000000);
		if (t < 0 || ms < t)
			t = ms;
	}
	return t;
}

int
mg_ctl_server_poll(struct mg_ctl_server *s, int timeout_ms)
{
	size_t n, keep;
	uint64_t now = mg_time_ns();
	int rc, active = 0;

	s->pfds[0] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
	n = s->n_conns;
	for (size_t i = 0; i < n; i++) {
		struct mg_ctl_conn *c = s->conns[i];
		short ev = 0;

		if (!c->closing && ctl_pending(c) <= s->max_output && c->in_len <= s->max_request)
			ev |= POLLIN;
		if (ctl_pending(c) > 0)
			ev |= POLLOUT;
		s->pfds[i + 1] = (struct pollfd){.fd = c->fd, .events = ev};
	}
	rc = poll(s->pfds, n + 1, poll_timeout(s, timeout_ms, now));
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;

	for (size_t i = 0; i < n; i++) {
		struct mg_ctl_conn *c = s->conns[i];
		short rev = s->pfds[i + 1].revents;

		if (rev == 0)
			continue;
		active++;
		if (rev & POLLNVAL)
			c->dead = true;
		if (rev & POLLOUT)
			ctl_flush_output(c);
		if ((rev & (POLLIN | POLLHUP | POLLERR)) && !c->dead && !c->closing)
			ctl_read_input(c);
		if (rev & POLLERR)
			c->dead = true;
	}
	if (s->pfds[0].revents & POLLIN)
		ctl_accept_clients(s);

	/* work, write and expire every connection (output drained frees input) */
	now = mg_time_ns();
	keep = 0;
	for (size_t i = 0; i < s->n_conns; i++) {
		struct mg_ctl_conn *c = s->conns[i];

		if (!c->dead) {
			ctl_handle_input(c);
			ctl_flush_output(c);
		}
		if (!c->dead && c->closing && ctl_pending(c) == 0 && c->owed == 0)
			c->dead = true;
		/* a connection owed a reply waits for it, however long it takes */
		if (!c->dead && c->stream[0] == '\0' && c->owed == 0 && s->idle_ns != UINT64_MAX &&
		    now > c->last_ns && now - c->last_ns >= s->idle_ns) {
			c->dead = true;
			if (ctl_pending(c) > 0)
				s->st.closed_slow++;
			else
				s->st.closed_idle++;
		}
		/* a subscriber that read nothing of its waiting output for idle_ms:
		 * it is losing every event already, and holds a slot */
		if (!c->dead && c->stream[0] != '\0' && s->idle_ns != UINT64_MAX &&
		    c->out_wait_ns != 0 && now > c->out_wait_ns &&
		    now - c->out_wait_ns >= s->idle_ns) {
			c->dead = true;
			s->st.closed_stuck++;
		}
		if (c->dead)
			ctl_conn_free(c);
		else
			s->conns[keep++] = c;
	}
	s->n_conns = keep;
	return active;
}

void
mg_ctl_server_stats(const struct mg_ctl_server *s, struct mg_ctl_stats *st)
{
	*st = s->st;
	st->clients = s->n_conns;
}

const char *
mg_ctl_server_path(const struct mg_ctl_server *s)
{
	return s->path;
}
