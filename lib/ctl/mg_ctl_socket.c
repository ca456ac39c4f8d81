/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket itself and who is on the other end. The socket's
 * folder is created when missing; a socket left by a crashed daemon is
 * replaced, a live one or any other file is left alone; the socket gets
 * its group and mode before listen(), so no connection is ever accepted
 * with looser permissions. Each accepted connection carries its peer's
 * credentials (SO_PEERCRED). The admin check (an NSS lookup) runs once
 * per connection, on its first mutating command, or when it connects
 * while only the slots kept for administrators are free (as PostgreSQL
 * keeps superuser_reserved_connections), so that readers cannot lock the
 * administrators out.
 */
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_priv.h"

#define LISTEN_BACKLOG 64
#define ACCEPT_BURST 32

/* ---- groups and the admin check ---- */

int
ctl_lookup_group(const char *name, const char *what, gid_t *gid, struct mg_error *err)
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

bool
ctl_conn_is_admin(struct mg_ctl_conn *c)
{
	if (c->admin < 0) /* membership is read once: a connection is short-lived */
		c->admin = peer_is_admin(c->srv, c->peer.uid, c->peer.gid);
	return c->admin > 0;
}

/* ---- the listening socket ---- */

/* Create the socket's folder when missing: 0750, group @p gid (or none). */
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

int
ctl_socket_open(struct mg_ctl_server *s, bool has_gid, gid_t gid, struct mg_error *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	bool bound = false;
	struct stat st;
	int rc;

	rc = ensure_dir(s->path, has_gid, gid, err);
	if (rc == 0)
		rc = clear_stale(s->path, err);
	if (rc)
		return rc;

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
	return 0;

sys:
	rc = -errno;
	mg_error_set(err, NULL, 0, 0, "control socket %s: %s", s->path, strerror(-rc));
	if (bound)
		unlink(s->path);
	return rc;
}
/* ---- accepting ---- */

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

void
ctl_accept_clients(struct mg_ctl_server *s)
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
