/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private shape of the control socket's server, shared by its files (the
 * protocol and its bounds are in mg_ctl.h, docs/ctl-protocol.md):
 *
 *   mg_ctl_server.c   the server's life and its poll() step
 *   mg_ctl_socket.c   the listening socket: its folder, a stale socket left
 *                     by a crash, accepting with the peer's credentials,
 *                     group lookups and the admin check
 *   mg_ctl_conn.c     a connection's I/O: input lines, the output buffer,
 *                     back-pressure
 *   mg_ctl_command.c  the command table, request parsing and dispatch,
 *                     replies
 *   mg_ctl_stream.c   streams: subscribers and the events published to them
 *
 * Everything runs on the server's one thread (the control thread), so
 * nothing here is locked.
 */
#ifndef MG_CTL_PRIV_H
#define MG_CTL_PRIV_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <jansson.h>

#include "mg_ctl.h"

struct mg_ctl_conn {
	struct mg_ctl_server *srv;
	int fd;
	struct mg_ctl_peer peer;
	int admin; /* -1: not looked up yet */
	char *in;  /* max_request + 1 bytes */
	size_t in_len;
	char *out; /* bytes [out_off, out_len) wait to be sent */
	size_t out_off, out_len, out_cap;
	uint64_t last_ns;             /* last read or write that moved bytes */
	uint64_t out_wait_ns;         /* output waits, nothing sent since; 0: none waits */
	bool closing;                 /* read nothing more; close once the output is sent */
	bool dead;                    /* close at the end of this step */
	bool in_handler;              /* its request is being handled: no events yet */
	char stream[MG_CTL_NAME_MAX]; /* "" when not a subscriber */
	uint64_t kinds;
	uint64_t dropped; /* events lost since the last "dropped" line */
	uint64_t owed;    /* the ticket of a deferred reply; 0: none owed */
	json_t *owed_id;  /* the request's id, for that reply */
};

struct mg_ctl_server {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	dev_t dev; /* of the socket file, so free() removes ours only */
	ino_t ino;
	bool has_admin;
	gid_t admin_gid;
	char admin_group[64];
	unsigned max_clients;
	unsigned admin_reserve; /* of max_clients: for administrators only */
	size_t max_request;
	uint64_t idle_ns; /* UINT64_MAX: never */
	size_t max_output;
	struct mg_ctl_command *cmds; /* sorted by name */
	size_t n_cmds, cap_cmds;
	struct mg_ctl_conn **conns;
	size_t n_conns;
	struct pollfd *pfds;  /* max_clients + 1 */
	uint64_t last_ticket; /* of deferred replies */
	struct mg_ctl_stats st;
};

/* Bytes of @p c's output buffer not sent yet. */
static inline size_t
ctl_pending(const struct mg_ctl_conn *c)
{
	return c->out_len - c->out_off;
}

/* ---- the socket and the peers' credentials (mg_ctl_socket.c) ---- */

/* The gid of group @p name into *@p gid; @p what names the setting in messages. 0 or -errno. */
int ctl_lookup_group(const char *name, const char *what, gid_t *gid, struct mg_error *err);

/*
 * Create the socket's folder when missing, clear a stale socket, then
 * bind, give the socket group @p gid (when @p has_gid) and mode 0660, and
 * listen on s->path; s->lfd is the socket (closed by the caller, also on
 * failure). On failure nothing is left at the path that was not there.
 * @return 0 or a negative errno with @p err filled.
 */
int ctl_socket_open(struct mg_ctl_server *s, bool has_gid, gid_t gid, struct mg_error *err);

/* Accept what waits on the listening socket, refusing clients beyond the limits. */
void ctl_accept_clients(struct mg_ctl_server *s);

/* May @p c run mutating commands? Looked up once per connection. */
bool ctl_conn_is_admin(struct mg_ctl_conn *c);

/* ---- connection I/O (mg_ctl_conn.c) ---- */

/* Append @p len bytes to the output buffer; compacts before growing. 0 or -ENOMEM. */
int ctl_out_append(struct mg_ctl_conn *c, const char *p, size_t len);

/* Append @p j and a newline; on failure nothing is appended. 0 or -ENOMEM. */
int ctl_out_json(struct mg_ctl_conn *c, const json_t *j);

/* Queue the {"stream":..,"dropped":N} line of a subscriber that lost events. */
void ctl_out_dropped(struct mg_ctl_conn *c);

/* Send what the socket takes; a subscriber that caught up is told what it lost. */
void ctl_flush_output(struct mg_ctl_conn *c);

/* Read what the socket holds into the input buffer. */
void ctl_read_input(struct mg_ctl_conn *c);

/* Run the complete lines in the input buffer while output is not backed up. */
void ctl_handle_input(struct mg_ctl_conn *c);

void ctl_conn_free(struct mg_ctl_conn *c);

/* ---- commands (mg_ctl_command.c) ---- */

/* A command or stream name: [a-z0-9._-], 1 to MG_CTL_NAME_MAX - 1 characters. */
bool ctl_valid_name(const char *s);

/* Register the built-in commands (help). 0 or a negative errno. */
int ctl_register_builtins(struct mg_ctl_server *s);

/* Queue the reply to one request; a connection that cannot take it dies. */
void ctl_reply(struct mg_ctl_conn *c, json_t *id, int rc, json_t *result, const char *msg);

/* Parse and run the request in @p line (@p len bytes, no newline). */
void ctl_handle_line(struct mg_ctl_conn *c, const char *line, size_t len);

#endif /* MG_CTL_PRIV_H */
