/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The daemon's side of the control socket: a single-threaded poll() server
 * run from the control thread, one non-blocking step at a time, so that a
 * client can never stall the loop that also keeps the Redis sync and the
 * policy reloads going. Each connection owns a fixed input buffer of
 * max_request + 1 bytes (a line that does not fit is refused, so memory
 * per client is bounded before any JSON is parsed) and a growing output
 * buffer that is drained with non-blocking sends. Back-pressure instead of
 * buffering: while a connection has more than max_output bytes unsent, its
 * further requests are not read; subscribers, which a server must never
 * wait for, lose events instead and are told how many, and one that
 * reads nothing of what waits for it for idle_ms is closed. Building an
 * event is left to the caller's callback, called only when some subscriber
 * has room for it, so a flood of events for subscribers that are all full
 * costs a counter each. Permission is decided per command, not per
 * connection: anyone the socket's mode lets in may read, only root and the
 * admin group may change state, as HAProxy's runtime API separates its
 * "user" and "admin" levels; the admin check (an NSS lookup) runs once per
 * connection, on its first mutating command, or when it connects while
 * only the slots kept for administrators are free (as PostgreSQL keeps
 * superuser_reserved_connections), so that readers cannot lock the
 * administrators out.
 */
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mg_ctl.h"

#define LISTEN_BACKLOG 64
#define ACCEPT_BURST 32
#define MIN_REQUEST 64

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
	struct pollfd *pfds; /* max_clients + 1 */
	struct mg_ctl_stats st;
};

/* ---- small helpers ---- */

static bool
valid_name(const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return n < MG_CTL_NAME_MAX;
}

static size_t
pending(const struct mg_ctl_conn *c)
{
	return c->out_len - c->out_off;
}

/* Append @p len bytes to the output buffer; compacts before growing. */
static int
out_append(struct mg_ctl_conn *c, const char *p, size_t len)
{
	if (c->out_off > 0 && c->out_len + len > c->out_cap) {
		memmove(c->out, c->out + c->out_off, pending(c));
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
	return out_append(data, buf, size) == 0 ? 0 : -1;
}

/* Append @p j and a newline; on failure nothing is appended. */
static int
out_json(struct mg_ctl_conn *c, const json_t *j)
{
	size_t mark = c->out_len, off = c->out_off;

	if (json_dump_callback(j, dump_cb, c, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 ||
	    out_append(c, "\n", 1) != 0) {
		/* a compaction moved the bytes: undo relative to the new start */
		c->out_len = mark - (off - c->out_off);
		return -ENOMEM;
	}
	return 0;
}

static const char *
errno_name(int e)
{
	const char *n = strerrorname_np(e);

	return n != NULL ? n : "EIO";
}

static int
lookup_group(const char *name, const char *what, gid_t *gid, struct mg_error *err)
{
	struct group gr, *res = NULL;
	size_t len = 4096;
	char *buf = NULL;
	int rc;

	for (;;) {
		char *n = realloc(buf, len);

		if (n == NULL) {
			free(buf);
			mg_error_set(err, NULL, 0, 0, "%s: out of memory", what);
			return -ENOMEM;
		}
		buf = n;
		rc = getgrnam_r(name, &gr, buf, len, &res);
		if (rc != ERANGE || len >= (1u << 20))
			break;
		len *= 2;
	}
	if (rc == 0 && res != NULL)
		*gid = gr.gr_gid;
	free(buf);
	if (rc != 0) {
		mg_error_set(err, NULL, 0, 0, "%s: looking up group '%s': %s", what, name,
		             strerror(rc));
		return -rc;
	}
	if (res == NULL) {
		mg_error_set(err, NULL, 0, 0, "%s: no group '%s' on this system", what, name);
		return -ENOENT;
	}
	return 0;
}

/* Is @p gid the primary or a supplementary group of user @p uid? */
static bool
user_in_group(uid_t uid, gid_t gid)
{
	struct passwd pw, *res = NULL;
	size_t len = 4096;
	char *buf = NULL;
	gid_t *groups = NULL;
	int ng = 32, rc;
	bool in = false;

	for (;;) {
		char *n = realloc(buf, len);

		if (n == NULL)
			goto out;
		buf = n;
		rc = getpwuid_r(uid, &pw, buf, len, &res);
		if (rc != ERANGE || len >= (1u << 20))
			break;
		len *= 2;
	}
	if (rc != 0 || res == NULL)
		goto out;
	if (pw.pw_gid == gid) {
		in = true;
		goto out;
	}
	for (int tries = 0; tries < 4; tries++) {
		gid_t *g = realloc(groups, (size_t)ng * sizeof(*g));
		int want = ng;

		if (g == NULL)
			goto out;
		groups = g;
		if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &want) >= 0) {
			for (int i = 0; i < want; i++)
				if (groups[i] == gid)
					in = true;
			goto out;
		}
		ng = want > ng ? want : ng * 2; /* want holds the size needed */
	}
out:
	free(groups);
	free(buf);
	return in;
}

/* May a peer with these credentials change state? Root, or the admin group. */
static bool
peer_is_admin(const struct mg_ctl_server *s, uid_t uid, gid_t gid)
{
	return uid == 0 ||
	       (s->has_admin && (gid == s->admin_gid || user_in_group(uid, s->admin_gid)));
}

static bool
conn_is_admin(struct mg_ctl_conn *c)
{
	if (c->admin < 0) /* membership is read once: a connection is short-lived */
		c->admin = peer_is_admin(c->srv, c->peer.uid, c->peer.gid);
	return c->admin > 0;
}

/* ---- replies ---- */

/* Queue the reply to one request; a connection that cannot take it dies. */
static void
reply(struct mg_ctl_conn *c, json_t *id, int rc, json_t *result, const char *msg)
{
	json_t *r;

	if (rc == 0)
		r = json_pack("{s:b, s:O}", "ok", 1, "result",
		              result != NULL ? result : json_null());
	else
		r = json_pack("{s:b, s:s, s:s}", "ok", 0, "error",
		              msg != NULL && *msg ? msg : strerror(-rc), "code", errno_name(-rc));
	if (r != NULL && id != NULL)
		json_object_set(r, "id", id);
	if (r == NULL || out_json(c, r) != 0) {
		json_t *e;

		json_decref(r);
		/* the result itself may not encode (invalid UTF-8 from a handler) */
		e = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "reply could not be encoded",
		              "code", "EIO");
		if (e == NULL || out_json(c, e) != 0)
			c->dead = true;
		json_decref(e);
		c->srv->st.errors++;
		return;
	}
	if (rc != 0)
		c->srv->st.errors++;
	json_decref(r);
}

static const struct mg_ctl_command *
find_command(const struct mg_ctl_server *s, const char *name)
{
	size_t lo = 0, hi = s->n_cmds;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int d = strcmp(name, s->cmds[mid].name);

		if (d == 0)
			return &s->cmds[mid];
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* Parse and run the request in @p line (@p len bytes, no newline). */
static void
handle_line(struct mg_ctl_conn *c, const char *line, size_t len)
{
	struct mg_ctl_server *s = c->srv;
	struct mg_ctl_command cmd;
	const struct mg_ctl_command *found;
	struct mg_error err = {.msg = ""};
	json_t *req, *args = NULL, *id = NULL, *result = NULL, *empty = NULL, *v;
	const char *key, *name;
	char was_stream[MG_CTL_NAME_MAX];
	uint64_t was_kinds, was_dropped;
	json_error_t je;
	int rc;

	s->st.requests++;
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (req == NULL) {
		snprintf(err.msg, sizeof(err.msg), "malformed request: %s (at byte %d)", je.text,
		         je.position);
		reply(c, NULL, -EINVAL, NULL, err.msg);
		return;
	}
	if (!json_is_object(req)) {
		reply(c, NULL, -EINVAL, NULL, "a request is a JSON object");
		goto out;
	}
	id = json_object_get(req, "id");
	json_object_foreach(req, key, v)
	{
		if (strcmp(key, "command") && strcmp(key, "args") && strcmp(key, "id")) {
			snprintf(err.msg, sizeof(err.msg),
			         "unknown key '%.64s' in request (command, args, id)", key);
			reply(c, id, -EINVAL, NULL, err.msg);
			goto out;
		}
	}
	name = json_string_value(json_object_get(req, "command"));
	if (name == NULL) {
		reply(c, id, -EINVAL, NULL, "a request needs \"command\", a string");
		goto out;
	}
	args = json_object_get(req, "args");
	if (args == NULL || json_is_null(args)) {
		args = empty = json_object();
		if (empty == NULL) {
			reply(c, id, -ENOMEM, NULL, NULL);
			goto out;
		}
	} else if (!json_is_object(args)) {
		reply(c, id, -EINVAL, NULL, "\"args\" must be an object");
		goto out;
	}
	found = find_command(s, name);
	if (found == NULL) {
		snprintf(err.msg, sizeof(err.msg), "unknown command '%.64s' (try 'help')", name);
		reply(c, id, -ENOENT, NULL, err.msg);
		goto out;
	}
	cmd = *found; /* a handler may register commands and move the table */
	if (cmd.mutating && !conn_is_admin(c)) {
		s->st.denied++;
		snprintf(err.msg, sizeof(err.msg),
		         "permission denied: '%s' changes state and needs root%s%s%s (peer uid %u)",
		         cmd.name, s->has_admin ? " or group '" : "",
		         s->has_admin ? s->admin_group : "", s->has_admin ? "'" : "",
		         (unsigned)c->peer.uid);
		reply(c, id, -EPERM, NULL, err.msg);
		goto out;
	}
	/* A failed request subscribes nothing, and does not undo an earlier
	 * subscription of this connection either. */
	memcpy(was_stream, c->stream, sizeof(was_stream));
	was_kinds = c->kinds;
	was_dropped = c->dropped;
	c->in_handler = true;
	rc = cmd.fn(cmd.arg, c, args, &result, &err);
	c->in_handler = false;
	if (rc > 0)
		rc = -EIO; /* a handler breaking the convention is an error, not success */
	if (rc != 0) {
		memcpy(c->stream, was_stream, sizeof(c->stream));
		c->kinds = was_kinds;
		c->dropped = was_dropped;
	}
	reply(c, id, rc, rc == 0 ? result : NULL, err.msg);
	json_decref(result);
out:
	json_decref(empty);
	json_decref(req);
}

/* Run the complete lines in the input buffer while output is not backed up. */
static void
handle_input(struct mg_ctl_conn *c)
{
	struct mg_ctl_server *s = c->srv;
	size_t start = 0;

	while (!c->dead && pending(c) <= s->max_output) {
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
			handle_line(c, c->in + start, len);
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
		reply(c, NULL, -E2BIG, NULL, msg);
		s->st.closed_oversize++;
		c->closing = true;
		c->in_len = 0;
	}
}

static void
out_dropped(struct mg_ctl_conn *c)
{
	char line[MG_CTL_NAME_MAX + 64];
	int n = snprintf(line, sizeof(line), "{\"stream\":\"%s\",\"dropped\":%llu}\n", c->stream,
	                 (unsigned long long)c->dropped);

	if (out_append(c, line, (size_t)n) == 0)
		c->dropped = 0;
}

static void
flush_output(struct mg_ctl_conn *c)
{
	bool moved = false;

	while (pending(c) > 0) {
		ssize_t n =
		        send(c->fd, c->out + c->out_off, pending(c), MSG_NOSIGNAL | MSG_DONTWAIT);

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
	if (pending(c) == 0) {
		c->out_off = c->out_len = 0;
		c->out_wait_ns = 0;
		if (c->dropped > 0 && c->stream[0] != '\0')
			out_dropped(c); /* caught up: tell it what it missed */
	} else if (moved || c->out_wait_ns == 0) {
		/* the socket is full: from now on the client must read */
		c->out_wait_ns = moved ? c->last_ns : mg_time_ns();
	}
}

static void
read_input(struct mg_ctl_conn *c)
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

static void
conn_free(struct mg_ctl_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* Tell a client beyond max_clients why, then close. Best effort: never waits. */
static void
refuse_busy(struct mg_ctl_server *s, int fd)
{
	char msg[256];
	int n;

	if (s->n_conns < s->max_clients) /* only the administrators' slots are free */
		n = snprintf(msg, sizeof(msg),
		             "{\"ok\":false,\"error\":\"too many clients (%u, and %u more "
		             "kept for root and the admin group); try again later\","
		             "\"code\":\"EBUSY\"}\n",
		             s->max_clients - s->admin_reserve, s->admin_reserve);
	else
		n = snprintf(msg, sizeof(msg),
		             "{\"ok\":false,\"error\":\"too many clients (%u); try again later\","
		             "\"code\":\"EBUSY\"}\n",
		             s->max_clients);

	if (send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		MG_DEBUG("ctl: busy reply not sent: %s", strerror(errno));
	close(fd);
	s->st.refused_busy++;
}

static void
accept_clients(struct mg_ctl_server *s)
{
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct mg_ctl_conn *c;
		struct ucred cr;
		socklen_t crlen = sizeof(cr);
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), admin = -1;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				MG_WARN("ctl: accept on %s: %s", s->path, strerror(errno));
			return;
		}
		s->st.accepted++;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0) {
			MG_WARN("ctl: SO_PEERCRED: %s", strerror(errno));
			close(fd);
			continue;
		}
		if (s->n_conns >= s->max_clients - s->admin_reserve) {
			/* only the reserve is left: administrators may take it */
			admin = s->n_conns < s->max_clients && peer_is_admin(s, cr.uid, cr.gid);
			if (!admin) {
				refuse_busy(s, fd);
				continue;
			}
		}
		c = calloc(1, sizeof(*c));
		if (c != NULL)
			c->in = malloc(s->max_request + 1);
		if (c == NULL || c->in == NULL) {
			MG_WARN("ctl: out of memory for a new client");
			free(c);
			close(fd);
			continue;
		}
		c->srv = s;
		c->fd = fd;
		c->peer.pid = cr.pid;
		c->peer.uid = cr.uid;
		c->peer.gid = cr.gid;
		c->admin = admin;
		c->last_ns = mg_time_ns();
		s->conns[s->n_conns++] = c;
	}
}

/* ---- the server ---- */

static int
help_cmd(void *arg, struct mg_ctl_conn *conn MG_UNUSED, const json_t *args MG_UNUSED,
         json_t **result, struct mg_error *err MG_UNUSED)
{
	const struct mg_ctl_server *s = arg;
	json_t *list = json_array();

	if (list == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_cmds; i++) {
		const struct mg_ctl_command *c = &s->cmds[i];

		if (json_array_append_new(list, json_pack("{s:s, s:b, s:s}", "name", c->name,
		                                          "mutating", c->mutating, "summary",
		                                          c->summary ? c->summary : "")) != 0) {
			json_decref(list);
			return -ENOMEM;
		}
	}
	*result = json_pack("{s:o}", "commands", list);
	return *result != NULL ? 0 : -ENOMEM;
}

int
mg_ctl_register(struct mg_ctl_server *s, const struct mg_ctl_command *cmd)
{
	size_t pos;

	if (s == NULL || cmd == NULL || cmd->fn == NULL || !valid_name(cmd->name))
		return mg_errno_set(EINVAL);
	for (pos = 0; pos < s->n_cmds; pos++) {
		int d = strcmp(cmd->name, s->cmds[pos].name);

		if (d == 0)
			return mg_errno_set(EEXIST);
		if (d < 0)
			break;
	}
	if (mg_grow(&s->cmds, &s->cap_cmds, s->n_cmds, sizeof(*s->cmds), 16) != 0)
		return mg_errno_set(ENOMEM);
	memmove(&s->cmds[pos + 1], &s->cmds[pos], (s->n_cmds - pos) * sizeof(*s->cmds));
	s->cmds[pos] = *cmd;
	s->n_cmds++;
	return 0;
}

/* Create the socket's folder when missing: 0750, group @p gid (or none). */
int
mg_ctl_register_table(struct mg_ctl_server *srv, const struct mg_ctl_command *cmds, size_t n,
                      void *arg, struct mg_error *err)
{
	for (size_t i = 0; i < n; i++) {
		struct mg_ctl_command c = cmds[i];
		int rc;

		c.arg = arg;
		rc = mg_ctl_register(srv, &c);
		if (rc < 0) {
			mg_error_set(err, NULL, 0, 0, "control: cannot register %s: %s", c.name,
			             strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int
ensure_dir(const char *path, bool has_gid, gid_t gid, struct mg_error *err)
{
	char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;
	const char *dir;

	snprintf(tmp, sizeof(tmp), "%s", path);
	dir = dirname(tmp);
	if (stat(dir, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		mg_error_set(err, NULL, 0, 0, "control socket folder %s is not a folder", dir);
		return -ENOTDIR;
	}
	if (errno != ENOENT || mkdir(dir, 0750) != 0) {
		int e = errno;

		mg_error_set(err, NULL, 0, 0, "creating control socket folder %s: %s", dir,
		             strerror(e));
		return -e;
	}
	/* the umask may have narrowed it; the group needs x to reach the socket */
	if ((has_gid && chown(dir, (uid_t)-1, gid) != 0) || chmod(dir, 0750) != 0) {
		int e = errno;

		mg_error_set(err, NULL, 0, 0, "setting up control socket folder %s: %s", dir,
		             strerror(e));
		return -e;
	}
	return 0;
}

/*
 * What is at @p path already? Nothing, or a socket nobody listens on (a
 * crashed daemon's; removed here): 0. A live socket: -EADDRINUSE. Any
 * other file: -EEXIST; it is not ours to remove.
 */
static int
clear_stale(const char *path, struct mg_error *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, rc, e;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		e = errno;
		mg_error_set(err, NULL, 0, 0, "control socket %s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISSOCK(st.st_mode)) {
		mg_error_set(err, NULL, 0, 0,
		             "control socket %s: a file that is not a socket is in the way; "
		             "not removing it",
		             path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		mg_error_set(err, NULL, 0, 0, "socket: %s", strerror(e));
		return -e;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN) {
		/* EAGAIN: listening with a full backlog, alive all the same */
		mg_error_set(err, NULL, 0, 0,
		             "control socket %s: another process is listening on it "
		             "(is meshgate already running?)",
		             path);
		return -EADDRINUSE;
	}
	if (e != ECONNREFUSED) {
		mg_error_set(err, NULL, 0, 0, "control socket %s: probing it: %s", path,
		             strerror(e));
		return -e;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		e = errno;
		mg_error_set(err, NULL, 0, 0, "control socket %s: removing the stale socket: %s",
		             path, strerror(e));
		return -e;
	}
	MG_INFO("ctl: removed stale control socket %s", path);
	return 0;
}

struct mg_ctl_server *
mg_ctl_server_create(const struct mg_ctl_params *p, struct mg_error *err)
{
	static const struct mg_ctl_command help = {
	        .name = "help",
	        .summary = "list the commands, whether they change state, what they do",
	        .mutating = false,
	        .fn = help_cmd,
	};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct mg_ctl_server *s = NULL;
	struct mg_ctl_command h = help;
	bool has_gid = false, bound = false;
	gid_t gid = 0;
	struct stat st;
	int rc = -EINVAL;

	if (p == NULL || p->path == NULL || p->path[0] == '\0') {
		mg_error_set(err, NULL, 0, 0, "control socket: no path");
		goto err;
	}
	if (strlen(p->path) >= sizeof(sun.sun_path)) {
		mg_error_set(err, NULL, 0, 0, "control socket %s: longer than %zu bytes", p->path,
		             sizeof(sun.sun_path) - 1);
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
	h.arg = s;
	if (mg_ctl_register(s, &h) != 0)
		goto oom;
	if (p->group != NULL) {
		rc = lookup_group(p->group, "control.group", &gid, err);
		if (rc)
			goto err;
		has_gid = true;
	}
	if (p->admin_group != NULL) {
		rc = lookup_group(p->admin_group, "control.admin_group", &s->admin_gid, err);
		if (rc)
			goto err;
		s->has_admin = true;
		snprintf(s->admin_group, sizeof(s->admin_group), "%s", p->admin_group);
	}
	rc = ensure_dir(s->path, has_gid, gid, err);
	if (rc == 0)
		rc = clear_stale(s->path, err);
	if (rc)
		goto err;

	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		goto sys;
	memcpy(sun.sun_path, s->path, strlen(s->path) + 1);
	if (bind(s->lfd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		goto sys;
	bound = true;
	/* not listening yet, so nobody connects before the mode is right */
	if (has_gid && chown(s->path, (uid_t)-1, gid) != 0)
		goto sys;
	if (chmod(s->path, 0660) != 0 || lstat(s->path, &st) != 0)
		goto sys;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	if (listen(s->lfd, LISTEN_BACKLOG) != 0)
		goto sys;
	return s;

sys:
	rc = -errno;
	mg_error_set(err, NULL, 0, 0, "control socket %s: %s", s->path, strerror(-rc));
	goto err;
oom:
	rc = -ENOMEM;
	mg_error_set(err, NULL, 0, 0, "control socket: out of memory");
err:
	if (bound)
		unlink(s->path);
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
		conn_free(s->conns[i]);
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

		if (!c->closing && pending(c) <= s->max_output && c->in_len <= s->max_request)
			ev |= POLLIN;
		if (pending(c) > 0)
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
			flush_output(c);
		if ((rev & (POLLIN | POLLHUP | POLLERR)) && !c->dead && !c->closing)
			read_input(c);
		if (rev & POLLERR)
			c->dead = true;
	}
	if (s->pfds[0].revents & POLLIN)
		accept_clients(s);

	/* work, write and expire every connection (output drained frees input) */
	now = mg_time_ns();
	keep = 0;
	for (size_t i = 0; i < s->n_conns; i++) {
		struct mg_ctl_conn *c = s->conns[i];

		if (!c->dead) {
			handle_input(c);
			flush_output(c);
		}
		if (!c->dead && c->closing && pending(c) == 0)
			c->dead = true;
		if (!c->dead && c->stream[0] == '\0' && s->idle_ns != UINT64_MAX &&
		    now > c->last_ns && now - c->last_ns >= s->idle_ns) {
			c->dead = true;
			if (pending(c) > 0)
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
			conn_free(c);
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

/* ---- connections and streams ---- */

const struct mg_ctl_peer *
mg_ctl_conn_peer(const struct mg_ctl_conn *c)
{
	return &c->peer;
}

int
mg_ctl_conn_subscribe(struct mg_ctl_conn *c, const char *stream, uint64_t kinds)
{
	if (c == NULL || !valid_name(stream) || kinds == 0)
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
		if (pending(c) > s->max_output)
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
			    pending(s->conns[i]) <= s->max_output)
				lose(s, s->conns[i]);
		return event == NULL ? -ENOMEM : -EINVAL;
	}
	blen = strlen(body);
	hlen = snprintf(head, sizeof(head), "{\"stream\":\"%s\",\"event\":", stream);
	for (size_t i = 0; i < s->n_conns; i++) {
		struct mg_ctl_conn *c = s->conns[i];
		size_t mark;

		if (!takes(c, stream, kinds) || pending(c) > s->max_output)
			continue;
		if (c->dropped > 0)
			out_dropped(c);
		mark = pending(c);
		if (out_append(c, head, (size_t)hlen) || out_append(c, body, blen) ||
		    out_append(c, "}\n", 2)) {
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
	if (!valid_name(stream) || event == NULL)
		return mg_errno_set(EINVAL);
	return publish(s, stream, kinds, event, NULL, NULL);
}

int
mg_ctl_server_publish_fn(struct mg_ctl_server *s, const char *stream, uint64_t kinds,
                         mg_ctl_event_make_fn *make, void *arg)
{
	if (!valid_name(stream) || make == NULL)
		return mg_errno_set(EINVAL);
	return publish(s, stream, kinds, NULL, make, arg);
}

int
mg_ctl_server_stream_lost(struct mg_ctl_server *s, const char *stream, uint64_t kinds, uint64_t n)
{
	int told = 0;

	if (!valid_name(stream))
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
