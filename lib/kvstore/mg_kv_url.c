/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Where a Redis is and how to log in to it: the URL parser
 * (redis://[user[:password]@]host[:port][/db], unix:///path[?db=N]) that
 * the writer and the sync client share, and the password file, which is
 * refused unless only its owner can read it, so that a password never
 * sits where other users of the machine can see it. Pure C, no Redis.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_kvstore.h"

static int
kv_parse_db(const char *s, unsigned *db)
{
	char *end;
	unsigned long v;

	if (*s == '\0')
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > 15 || s[0] == '-' || s[0] == '+')
		return -EINVAL;
	*db = (unsigned)v;
	return 0;
}

int
mg_kv_url_parse(char *s, struct mg_kv_url *u, struct mg_error *err)
{
	char *rest, *at, *slash, *colon, *q;
	const char *why = NULL;
	struct mg_hostport hp;

	memset(u, 0, sizeof(*u));
	u->port = 6379;
	if (strncmp(s, "unix://", 7) == 0) {
		u->path = s + 7;
		q = strchr(u->path, '?');
		if (q != NULL) {
			*q++ = '\0';
			if (strncmp(q, "db=", 3) != 0 || kv_parse_db(q + 3, &u->db) < 0)
				goto bad;
		}
		if (u->path[0] != '/')
			goto bad;
		return 0;
	}
	if (strncmp(s, "redis://", 8) != 0)
		goto bad;
	rest = s + 8;
	at = strrchr(rest, '@');
	if (at != NULL) {
		*at = '\0';
		colon = strchr(rest, ':');
		if (colon != NULL) {
			*colon = '\0';
			u->password = colon + 1;
		}
		if (rest[0] != '\0')
			u->user = rest;
		rest = at + 1;
	}
	slash = strchr(rest, '/');
	if (slash != NULL) {
		*slash = '\0';
		if (kv_parse_db(slash + 1, &u->db) < 0)
			goto bad;
	}
	if (mg_hostport_parse(rest, MG_HOSTPORT_PORT_OPTIONAL | MG_HOSTPORT_HOST_REQUIRED, &hp,
	                      &why) != 0)
		goto bad;
	if (hp.has_port && hp.port == 0) {
		why = "the port is not a number from 1 to 65535";
		goto bad;
	}
	if (hp.has_port)
		u->port = hp.port;
	/* the host without brackets, in place: never longer than what held it */
	memmove(rest, hp.host, strlen(hp.host) + 1);
	u->host = rest;
	return 0;
bad:
	mg_error_set(err, NULL, 0, 0,
	             "bad Redis URL%s%s%s: want redis://[user[:password]@]host[:port][/db] or "
	             "unix:///path[?db=N] (db 0-15)",
	             why ? " (" : "", why ? why : "", why ? ")" : "");
	return mg_errno_set(EINVAL);
}

int
mg_kv_password_file_read(const char *path, char *buf, size_t size, struct mg_error *err)
{
	struct stat st;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		mg_error_set(err, NULL, 0, 0, "password file %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		mg_error_set(err, NULL, 0, 0, "password file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		mg_error_set(err, NULL, 0, 0, "password file %s: not a regular file", path);
		rc = -EINVAL;
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		mg_error_set(err, NULL, 0, 0,
		             "password file %s: mode %04o lets group or others read it; "
		             "chmod 600 it",
		             path, (unsigned)(st.st_mode & 07777));
		rc = -EACCES;
		goto out;
	}
	n = read(fd, buf, size - 1);
	if (n < 0) {
		rc = -errno;
		mg_error_set(err, NULL, 0, 0, "password file %s: %s", path, strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		mg_error_set(err, NULL, 0, 0, "password file %s: empty", path);
		rc = -EINVAL;
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}
