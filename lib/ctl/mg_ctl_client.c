/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The client side of the control socket, for meshgatectl: connect, send
 * one request line, read reply lines. It is deliberately blocking and
 * stateless (a connection per call), like the CLIs of HAProxy's runtime
 * API or `ovs-appctl`, because a command-line tool makes one call and
 * exits; the one bound that matters is time, so every wait is a poll()
 * against a single deadline, and the one thing users need from a failure
 * is what to do next, so a socket that is missing or refuses us says so
 * in words rather than as a bare errno. A server that refuses a
 * connection (too many clients) answers and closes without reading the
 * request, so a failed send is followed by a look for that answer.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mg_ctl.h"

/* A reply line longer than this is not the protocol (the biggest real
 * ones, full ipcache lists, stay far below). */
#define MAX_LINE (256u << 20)

/* Received bytes: [start, len) are not consumed yet. */
struct linebuf {
	char *p;
	size_t start, len, cap;
};

int
mg_ctl_errno_from_name(const char *code)
{
	if (code == NULL)
		return 0;
	for (int e = 1; e < 256; e++) {
		const char *n = strerrorname_np(e);

		if (n != NULL && strcmp(n, code) == 0)
			return e;
	}
	return 0;
}

/* Milliseconds left before @p deadline (ns; 0: none -> -1 for poll). */
static int
left_ms(uint64_t deadline)
{
	uint64_t now;

	if (deadline == 0)
		return -1;
	now = mg_time_ns();
	if (now >= deadline)
		return 0;
	return (int)((deadline - now + 999999) / 1000000);
}

static int
wait_fd(int fd, short ev, uint64_t deadline, struct mg_error *err)
{
	struct pollfd pfd = {.fd = fd, .events = ev};

	for (;;) {
		int ms = left_ms(deadline), rc;

		if (ms == 0) {
			mg_error_set(err, NULL, 0, 0, "no reply from meshgate in time");
			return -ETIMEDOUT;
		}
		rc = poll(&pfd, 1, ms);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR) {
			int e = errno;

			mg_error_set(err, NULL, 0, 0, "poll: %s", strerror(e));
			return -e;
		}
	}
}

static int
connect_to(const char *path, uint64_t deadline, struct mg_error *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd, e;

	if (path == NULL || strlen(path) >= sizeof(sun.sun_path)) {
		mg_error_set(err, NULL, 0, 0, "control socket path missing or too long");
		return -EINVAL;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		mg_error_set(err, NULL, 0, 0, "socket: %s", strerror(e));
		return -e;
	}
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		e = errno;
		if (e == EINTR)
			continue;
		if (e == EAGAIN && left_ms(deadline) != 0) {
			/* the listen backlog is full: the daemon is busy, retry briefly */
			usleep(10000);
			continue;
		}
		close(fd);
		if (e == ENOENT || e == ECONNREFUSED)
			mg_error_set(err, NULL, 0, 0,
			             "cannot connect to %s: %s (is meshgate running?)", path,
			             strerror(e));
		else if (e == EACCES || e == EPERM)
			mg_error_set(
			        err, NULL, 0, 0,
			        "cannot connect to %s: %s (is this user in the control socket's "
			        "group? see control.group)",
			        path, strerror(e));
		else
			mg_error_set(err, NULL, 0, 0, "cannot connect to %s: %s", path,
			             strerror(e));
		return -e;
	}
	return fd;
}

static int
send_all(int fd, const char *p, size_t len, uint64_t deadline, struct mg_error *err)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		int rc;

		if (n >= 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			int e = errno;

			mg_error_set(err, NULL, 0, 0, "sending the request: %s", strerror(e));
			return -e;
		}
		rc = wait_fd(fd, POLLOUT, deadline, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* The next line as JSON (a new reference in *@p out). */
static int
read_line(int fd, struct linebuf *b, uint64_t deadline, json_t **out, struct mg_error *err)
{
	size_t scanned = b->start;

	for (;;) {
		char *nl = b->len > scanned ? memchr(b->p + scanned, '\n', b->len - scanned) : NULL;
		json_error_t je;
		ssize_t n;
		int rc;

		if (nl != NULL) {
			size_t len = (size_t)(nl - (b->p + b->start));

			*out = json_loadb(b->p + b->start, len, 0, &je);
			b->start += len + 1;
			if (*out == NULL || !json_is_object(*out)) {
				json_decref(*out);
				*out = NULL;
				mg_error_set(err, NULL, 0, 0,
				             "meshgate sent a line that is not a JSON "
				             "object");
				return -EPROTO;
			}
			return 0;
		}
		scanned = b->len;
		if (b->start > 0) {
			memmove(b->p, b->p + b->start, b->len - b->start);
			b->len -= b->start;
			scanned -= b->start;
			b->start = 0;
		}
		if (b->len == b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 65536;
			char *np;

			if (cap > MAX_LINE) {
				mg_error_set(err, NULL, 0, 0, "meshgate sent a line over %u bytes",
				             MAX_LINE);
				return -EPROTO;
			}
			np = realloc(b->p, cap);
			if (np == NULL) {
				mg_error_set(err, NULL, 0, 0, "out of memory");
				return -ENOMEM;
			}
			b->p = np;
			b->cap = cap;
		}
		n = recv(fd, b->p + b->len, b->cap - b->len, 0);
		if (n > 0) {
			b->len += (size_t)n;
			continue;
		}
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			mg_error_set(err, NULL, 0, 0, "meshgate closed the connection");
			return -ECONNRESET;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			int e = errno;

			mg_error_set(err, NULL, 0, 0, "reading the reply: %s", strerror(e));
			return -e;
		}
		rc = wait_fd(fd, POLLIN, deadline, err);
		if (rc)
			return rc;
	}
}

/* Turn a reply object into 0 + *result, or a negative errno + message. */
static int
decode_reply(json_t *r, json_t **result, struct mg_error *err)
{
	json_t *ok = json_object_get(r, "ok");
	const char *msg, *code;
	int e;

	if (!json_is_boolean(ok)) {
		mg_error_set(err, NULL, 0, 0, "meshgate sent a reply without \"ok\"");
		return -EPROTO;
	}
	if (json_is_true(ok)) {
		if (result != NULL) {
			json_t *res = json_object_get(r, "result");

			*result = json_incref(res != NULL ? res : json_null());
		}
		return 0;
	}
	msg = json_string_value(json_object_get(r, "error"));
	code = json_string_value(json_object_get(r, "code"));
	e = mg_ctl_errno_from_name(code);
	mg_error_set(err, NULL, 0, 0, "%s", msg != NULL ? msg : "error without a message");
	return -(e ? e : EIO);
}

/* Connect, send the request, read and decode its reply; the fd stays open in *@p fdp. */
static int
request(const char *path, const char *command, json_t *args, uint64_t deadline, int *fdp,
        struct linebuf *b, json_t **result, struct mg_error *err)
{
	json_t *req = NULL, *reply = NULL;
	char *text = NULL;
	size_t len;
	int fd, rc;

	*fdp = -1;
	if (command == NULL || (args != NULL && !json_is_object(args))) {
		mg_error_set(err, NULL, 0, 0, "a request needs a command and object args");
		return -EINVAL;
	}
	req = json_pack("{s:s}", "command", command);
	if (req == NULL || (args != NULL && json_object_set(req, "args", args) != 0))
		goto oom;
	text = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text == NULL)
		goto oom;
	len = strlen(text);
	text[len] = '\n'; /* json_dumps' NUL becomes the line end; length tracked */
	fd = connect_to(path, deadline, err);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	*fdp = fd;
	rc = send_all(fd, text, len + 1, deadline, err);
	if (rc == -EPIPE || rc == -ECONNRESET) {
		struct mg_error rerr = {.msg = ""};

		/* The server may have answered and closed before reading the
		 * request (too many clients: EBUSY): its reason, if it gave
		 * one, is what the user needs, not our broken pipe. */
		if (read_line(fd, b, deadline, &reply, &rerr) == 0)
			rc = 0;
	} else if (rc == 0) {
		rc = read_line(fd, b, deadline, &reply, err);
	}
	if (rc == 0)
		rc = decode_reply(reply, result, err);
	goto out;
oom:
	mg_error_set(err, NULL, 0, 0, "out of memory");
	rc = -ENOMEM;
out:
	json_decref(reply);
	json_decref(req);
	free(text);
	return rc;
}

static uint64_t
deadline_of(unsigned timeout_ms)
{
	return timeout_ms ? mg_time_ns() + (uint64_t)timeout_ms * 1000000 : 0;
}

int
mg_ctl_call(const char *path, const char *command, json_t *args, unsigned timeout_ms,
            json_t **result, struct mg_error *err)
{
	struct linebuf b = {0};
	int fd, rc;

	if (result != NULL)
		*result = NULL;
	rc = request(path, command, args, deadline_of(timeout_ms), &fd, &b, result, err);
	if (fd >= 0)
		close(fd);
	free(b.p);
	return rc;
}

int
mg_ctl_stream(const char *path, const char *command, json_t *args, unsigned timeout_ms,
              mg_ctl_event_fn *on_event, void *arg, struct mg_error *err)
{
	struct linebuf b = {0};
	int fd, rc;

	rc = request(path, command, args, deadline_of(timeout_ms), &fd, &b, NULL, err);
	while (rc == 0) {
		json_t *line = NULL;
		int r;

		rc = read_line(fd, &b, 0, &line, err);
		if (rc)
			break;
		r = on_event(arg, line);
		json_decref(line);
		if (r != 0) {
			rc = r > 0 ? 0 : r;
			break;
		}
	}
	if (fd >= 0)
		close(fd);
	free(b.p);
	return rc;
}
