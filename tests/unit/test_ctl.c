/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests of lib/ctl over real unix sockets in a mkdtemp() folder: the
 * server's poll loop runs in a thread (under a mutex, so the test can
 * publish and read counters between steps), clients are raw sockets that
 * read one byte at a time (so no reply is ever hidden in a client-side
 * buffer) or the library's own client. The permission tests need root:
 * a forked child drops to nobody (65534) and must be refused mutating
 * commands, or fills the table up to the connections kept for
 * administrators; without root they are reported as SKIP.
 */
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mg_ctl.h"
#include "mg_test.h"

#define NOBODY 65534

static char dir[64];
static char sock_path[128];

/* ---- a server in a thread ---- */

static struct mg_ctl_server *srv;
static pthread_t srv_thread;
static pthread_mutex_t srv_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool srv_stop;

static void *
srv_loop(void *a MG_UNUSED)
{
	while (!atomic_load(&srv_stop)) {
		pthread_mutex_lock(&srv_mu);
		mg_ctl_server_poll(srv, 5);
		pthread_mutex_unlock(&srv_mu);
		usleep(200); /* let the test thread take the lock */
	}
	return NULL;
}

static int
echo_cmd(void *arg MG_UNUSED, struct mg_ctl_conn *conn MG_UNUSED, const json_t *args,
         json_t **result, struct mg_error *err MG_UNUSED)
{
	*result = json_deep_copy(args);
	return 0;
}

static int
set_cmd(void *arg MG_UNUSED, struct mg_ctl_conn *conn, const json_t *args MG_UNUSED,
        json_t **result, struct mg_error *err MG_UNUSED)
{
	const struct mg_ctl_peer *p = mg_ctl_conn_peer(conn);

	*result = json_pack("{s:I, s:I, s:I}", "uid", (json_int_t)p->uid, "gid", (json_int_t)p->gid,
	                    "pid", (json_int_t)p->pid);
	return 0;
}

static int
fail_cmd(void *arg MG_UNUSED, struct mg_ctl_conn *conn MG_UNUSED, const json_t *args MG_UNUSED,
         json_t **result MG_UNUSED, struct mg_error *err)
{
	mg_error_set(err, NULL, 0, 0, "already there");
	return -EEXIST;
}

static int
sub_cmd(void *arg MG_UNUSED, struct mg_ctl_conn *conn, const json_t *args,
        json_t **result MG_UNUSED, struct mg_error *err MG_UNUSED)
{
	json_t *k = json_object_get(args, "kinds");

	return mg_ctl_conn_subscribe(conn, "monitor",
	                             k != NULL ? (uint64_t)json_integer_value(k) : UINT64_MAX);
}

/* The tickets of deferred replies, in order ("later" defers; args.now: answers at once). */
static uint64_t later_tickets[8];
static unsigned n_later;

static int
later_cmd(void *arg MG_UNUSED, struct mg_ctl_conn *conn, const json_t *args, json_t **result,
          struct mg_error *err MG_UNUSED)
{
	uint64_t t = mg_ctl_conn_defer(conn);

	if (json_is_true(json_object_get(args, "now"))) {
		*result = json_pack("{s:b}", "now", 1);
		return 0; /* deferred, then answered at once after all */
	}
	if (n_later < MG_ARRAY_SIZE(later_tickets))
		later_tickets[n_later++] = t;
	return MG_CTL_LATER;
}

static const struct mg_ctl_command test_cmds[] = {
        {"echo", "return the args", false, echo_cmd, NULL},
        {"later", "answered by the test (mg_ctl_server_reply)", false, later_cmd, NULL},
        {"set", "a mutating command: returns the peer", true, set_cmd, NULL},
        {"fail", "always EEXIST", false, fail_cmd, NULL},
        {"sub", "subscribe to monitor", false, sub_cmd, NULL},
};

static struct mg_ctl_params
params(void)
{
	return (struct mg_ctl_params){.path = sock_path, .idle_ms = 5000};
}

/* Create the server with the test commands and run its loop. */
static bool
start(const struct mg_ctl_params *p)
{
	struct mg_error err = {.msg = ""};

	srv = mg_ctl_server_create(p, &err);
	if (srv == NULL) {
		printf("mg_ctl_server_create: %s\n", err.msg);
		return false;
	}
	for (size_t i = 0; i < MG_ARRAY_SIZE(test_cmds); i++)
		if (mg_ctl_register(srv, &test_cmds[i]) != 0)
			return false;
	atomic_store(&srv_stop, false);
	return pthread_create(&srv_thread, NULL, srv_loop, NULL) == 0;
}

static void
stop_loop(void)
{
	atomic_store(&srv_stop, true);
	pthread_join(srv_thread, NULL);
}

static void
stop(void)
{
	stop_loop();
	mg_ctl_server_free(srv);
	srv = NULL;
}

static struct mg_ctl_stats
stats(void)
{
	struct mg_ctl_stats st;

	pthread_mutex_lock(&srv_mu);
	mg_ctl_server_stats(srv, &st);
	pthread_mutex_unlock(&srv_mu);
	return st;
}

/* Wait up to 3 s for the server to have @p n clients. */
static bool
wait_clients(uint64_t n)
{
	for (int i = 0; i < 600; i++) {
		if (stats().clients == n)
			return true;
		usleep(5000);
	}
	return false;
}

static int
publish(const char *text, uint64_t kinds)
{
	json_t *ev = json_loads(text, 0, NULL);
	int rc;

	pthread_mutex_lock(&srv_mu);
	rc = mg_ctl_server_publish(srv, "monitor", ev, kinds);
	pthread_mutex_unlock(&srv_mu);
	json_decref(ev);
	return rc;
}

/* ---- a raw client ---- */

static int
cconnect_to(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 5};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
cconnect(void)
{
	return cconnect_to(sock_path);
}

static void
csend(int fd, const char *s)
{
	size_t len = strlen(s);

	CU_ASSERT_EQUAL(send(fd, s, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* One line (newline dropped) into @p buf; its length, or -1 on EOF/error. */
static ssize_t
cline(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		char ch;
		ssize_t r = recv(fd, &ch, 1, 0);

		if (r <= 0)
			return -1;
		if (ch == '\n') {
			buf[n] = '\0';
			return (ssize_t)n;
		}
		buf[n++] = ch;
	}
	return -1;
}

static json_t *
cjson(int fd)
{
	static char buf[1 << 16];

	if (cline(fd, buf, sizeof(buf)) < 0)
		return NULL;
	return json_loads(buf, 0, NULL);
}

/* Is the connection closed by the server (EOF or reset, not a timeout)? */
static bool
closed_by_server(int fd)
{
	char ch;
	ssize_t r = recv(fd, &ch, 1, 0);

	return r == 0 || (r < 0 && errno == ECONNRESET);
}

/* Does the server close @p fd within 5 s? Reads (and discards) what
 * was queued before the close. */
static bool
closed_after_data(int fd)
{
	static char buf[65536];

	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);

		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return true;
		if (r < 0)
			return false; /* SO_RCVTIMEO: still open */
	}
}

/* Has the server closed @p fd (seen without reading what it queued)? */
static bool
hung_up(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Read lines from @p fd until the event {"n":@p n} (true) or the end. */
static bool
find_event(int fd, json_int_t n)
{
	json_t *r;

	while ((r = cjson(fd)) != NULL) {
		bool found =
		        json_integer_value(json_object_get(json_object_get(r, "event"), "n")) == n;

		json_decref(r);
		if (found)
			return true;
	}
	return false;
}

/* Read whatever @p fd has now, without waiting; the bytes read. */
static size_t
drain_now(int fd)
{
	static char buf[65536];
	size_t total = 0;
	ssize_t r;

	while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		total += (size_t)r;
	return total;
}

static bool
reply_ok(json_t *r)
{
	return r != NULL && json_is_true(json_object_get(r, "ok"));
}

static const char *
reply_code(json_t *r)
{
	const char *c = json_string_value(json_object_get(r, "code"));

	return c != NULL ? c : "(none)";
}

/* Send @p req on a new connection and return the code of the reply ("" if ok). */
static bool
expect_code(int fd, const char *req, const char *code)
{
	json_t *r;
	bool ok;

	csend(fd, req);
	r = cjson(fd);
	if (r == NULL)
		return false;
	ok = code == NULL ? reply_ok(r) : (!reply_ok(r) && strcmp(reply_code(r), code) == 0);
	if (!ok)
		printf("reply to %s: %s\n", req, json_dumps(r, JSON_COMPACT));
	json_decref(r);
	return ok;
}

/* ---- tests ---- */

static void
test_request_response(void)
{
	struct mg_ctl_params p = params();
	json_t *r, *cmds;
	size_t i;
	json_t *c;
	bool saw_set = false;
	int fd;

	CU_ASSERT_FATAL(start(&p));
	fd = cconnect();
	CU_ASSERT_FATAL(fd >= 0);
	csend(fd, "{\"command\":\"echo\",\"args\":{\"a\":1},\"id\":7}\n");
	r = cjson(fd);
	CU_ASSERT_TRUE(reply_ok(r));
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(r, "result"), "a")), 1);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "id")), 7);
	json_decref(r);

	csend(fd, "{\"command\":\"help\"}\n");
	r = cjson(fd);
	CU_ASSERT_TRUE(reply_ok(r));
	cmds = json_object_get(json_object_get(r, "result"), "commands");
	CU_ASSERT_EQUAL(json_array_size(cmds), 6);
	json_array_foreach(cmds, i, c)
	{
		if (strcmp(json_string_value(json_object_get(c, "name")), "set") == 0) {
			saw_set = true;
			CU_ASSERT_TRUE(json_is_true(json_object_get(c, "mutating")));
		}
	}
	CU_ASSERT_TRUE(saw_set);
	/* sorted by name */
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(cmds, 0), "name")),
	                       "echo");
	json_decref(r);
	CU_ASSERT_EQUAL(stats().requests, 2);
	CU_ASSERT_EQUAL(stats().errors, 0);
	close(fd);
	stop();
}

static void
test_pipelined_and_split(void)
{
	struct mg_ctl_params p = params();
	json_t *r;
	int fd;

	CU_ASSERT_FATAL(start(&p));
	fd = cconnect();
	CU_ASSERT_FATAL(fd >= 0);
	csend(fd, "{\"command\":\"echo\",\"id\":1}\n{\"command\":\"nope\",\"id\":2}\n\r\n\n"
	          "{\"command\":\"echo\",\"id\":3}\r\n");
	for (int want = 1; want <= 3; want++) {
		r = cjson(fd);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "id")), want);
		CU_ASSERT_EQUAL(reply_ok(r), want != 2);
		json_decref(r);
	}
	csend(fd, "{\"command\":\"ec");
	usleep(50000);
	csend(fd, "ho\",\"args\":{\"s\":\"x\"},");
	usleep(50000);
	csend(fd, "\"id\":4}\n");
	r = cjson(fd);
	CU_ASSERT_TRUE(reply_ok(r));
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "id")), 4);
	CU_ASSERT_STRING_EQUAL(
	        json_string_value(json_object_get(json_object_get(r, "result"), "s")), "x");
	json_decref(r);
	close(fd);
	stop();
}

static void
test_unknown_command(void)
{
	struct mg_ctl_params p = params();
	struct mg_error err = {.msg = ""};
	json_t *res = NULL;
	int fd;

	CU_ASSERT_FATAL(start(&p));
	fd = cconnect();
	CU_ASSERT_TRUE(expect_code(fd, "{\"command\":\"identity.nope\"}\n", "ENOENT"));
	close(fd);
	CU_ASSERT_EQUAL(mg_ctl_call(sock_path, "identity.nope", NULL, 2000, &res, &err), -ENOENT);
	CU_ASSERT_PTR_NULL(res);
	CU_ASSERT_STRING_EQUAL(err.msg, "unknown command 'identity.nope' (try 'help')");
	/* the library client on a command that works */
	json_t *args = json_pack("{s:s}", "k", "v");
	CU_ASSERT_EQUAL(mg_ctl_call(sock_path, "echo", args, 2000, &res, &err), 0);
	CU_ASSERT_TRUE(json_equal(res, args));
	CU_ASSERT_EQUAL(args->refcount, 1); /* borrowed, not stolen */
	json_decref(res);
	json_decref(args);
	CU_ASSERT_EQUAL(mg_ctl_call(sock_path, "fail", NULL, 2000, NULL, &err), -EEXIST);
	CU_ASSERT_STRING_EQUAL(err.msg, "already there");
	stop();
}

static void
test_malformed(void)
{
	static const char *const bad[] = {
	        "{nope\n",
	        "[1]\n",
	        "\"command\"\n",
	        "{\"args\":{}}\n",
	        "{\"command\":7}\n",
	        "{\"command\":\"echo\",\"args\":3}\n",
	        "{\"command\":\"echo\",\"extra\":1}\n",
	        "{\"command\":\"echo\",\"command\":\"echo\"}\n",
	        "{\"command\":\"\xff\xfe\"}\n",
	        "{\"command\":\"echo\"}{\"x\":1}\n",
	        "\x01\x02\x03\n",
	};
	struct mg_ctl_params p = params();
	int fd;

	CU_ASSERT_FATAL(start(&p));
	fd = cconnect();
	CU_ASSERT_FATAL(fd >= 0);
	for (size_t i = 0; i < MG_ARRAY_SIZE(bad); i++)
		CU_ASSERT_TRUE(expect_code(fd, bad[i], "EINVAL"));
	CU_ASSERT_TRUE(expect_code(fd, "{\"command\":\"fail\"}\n", "EEXIST"));
	/* the same connection still works */
	CU_ASSERT_TRUE(expect_code(fd, "{\"command\":\"echo\",\"args\":null}\n", NULL));
	CU_ASSERT_EQUAL(stats().errors, MG_ARRAY_SIZE(bad) + 1);
	CU_ASSERT_EQUAL(stats().clients, 1);
	close(fd);
	stop();
}

static void
test_oversize(void)
{
	struct mg_ctl_params p = params();
	char req[256], big[400];
	int fd, n;

	p.max_request = 128;
	CU_ASSERT_FATAL(start(&p));
	/* exactly max_request bytes before the newline: accepted */
	n = snprintf(req, sizeof(req), "{\"command\":\"echo\",\"args\":{\"p\":\"");
	while (n < 128 - 3)
		req[n++] = 'x';
	memcpy(req + n, "\"}}\n", 5);
	CU_ASSERT_EQUAL(strlen(req), 129);
	fd = cconnect();
	CU_ASSERT_TRUE(expect_code(fd, req, NULL));
	/* one more byte: refused, and the connection closed */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CU_ASSERT_TRUE(expect_code(fd, big, "E2BIG"));
	CU_ASSERT_TRUE(closed_by_server(fd));
	close(fd);
	CU_ASSERT_TRUE(wait_clients(0));
	CU_ASSERT_EQUAL(stats().closed_oversize, 1);
	/* others are unaffected */
	fd = cconnect();
	CU_ASSERT_TRUE(expect_code(fd, "{\"command\":\"echo\"}\n", NULL));
	close(fd);
	stop();
}

static void
test_too_many_clients(void)
{
	struct mg_ctl_params p = params();
	int a, b, c;
	json_t *r;

	p.max_clients = 2;
	CU_ASSERT_FATAL(start(&p));
	a = cconnect();
	b = cconnect();
	CU_ASSERT_TRUE(expect_code(a, "{\"command\":\"echo\"}\n", NULL));
	CU_ASSERT_TRUE(expect_code(b, "{\"command\":\"echo\"}\n", NULL));
	c = cconnect();
	CU_ASSERT_FATAL(c >= 0);
	r = cjson(c);
	CU_ASSERT_PTR_NOT_NULL(r);
	CU_ASSERT_FALSE(reply_ok(r));
	CU_ASSERT_STRING_EQUAL(reply_code(r), "EBUSY");
	json_decref(r);
	CU_ASSERT_TRUE(closed_by_server(c));
	close(c);
	CU_ASSERT_EQUAL(stats().refused_busy, 1);
	/* a slot frees up when a client leaves */
	close(a);
	CU_ASSERT_TRUE(wait_clients(1));
	c = cconnect();
	CU_ASSERT_TRUE(expect_code(c, "{\"command\":\"echo\"}\n", NULL));
	CU_ASSERT_TRUE(expect_code(b, "{\"command\":\"echo\"}\n", NULL));
	close(b);
	close(c);
	stop();
}

/* Wait up to 3 s for @p n deferred requests. */
static bool
wait_later(unsigned n)
{
	for (int i = 0; i < 600; i++) {
		pthread_mutex_lock(&srv_mu);
		bool ok = n_later >= n;
		pthread_mutex_unlock(&srv_mu);
		if (ok)
			return true;
		usleep(5000);
	}
	return false;
}

static int
reply_later(unsigned k, int rc, const char *text)
{
	json_t *res = text != NULL ? json_loads(text, 0, NULL) : NULL;
	int r;

	pthread_mutex_lock(&srv_mu);
	r = mg_ctl_server_reply(srv, later_tickets[k], rc, res, rc ? "it failed" : NULL);
	pthread_mutex_unlock(&srv_mu);
	json_decref(res);
	return r;
}

/*
 * Deferred replies: the request after a deferred one waits for it (replies
 * in request order), the connection is not closed as idle meanwhile, an
 * error can come later too, a client that shut down its side gets its
 * reply, one that closed makes the reply -ENOENT, and a ticket is used
 * once.
 */
static void
test_deferred_reply(void)
{
	struct mg_ctl_params p = params();
	struct pollfd pf;
	json_t *r;
	int fd, fd2, rc;

	p.idle_ms = 300;
	n_later = 0;
	CU_ASSERT_FATAL(start(&p));
	fd = cconnect();
	CU_ASSERT_FATAL(fd >= 0);
	csend(fd, "{\"command\":\"later\",\"id\":1}\n{\"command\":\"echo\",\"id\":2}\n");
	CU_ASSERT_FATAL(wait_later(1));
	/* twice the idle timeout: nothing comes, the connection stays */
	pf = (struct pollfd){.fd = fd, .events = POLLIN};
	CU_ASSERT_EQUAL(poll(&pf, 1, 700), 0);
	CU_ASSERT_EQUAL(stats().closed_idle, 0);
	CU_ASSERT_EQUAL(reply_later(0, 0, "{\"revision\":7}"), 0);
	CU_ASSERT_EQUAL(reply_later(0, 0, "{}"), -ENOENT); /* used once */
	r = cjson(fd);
	CU_ASSERT_TRUE(reply_ok(r));
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "id")), 1);
	CU_ASSERT_EQUAL(
	        json_integer_value(json_object_get(json_object_get(r, "result"), "revision")), 7);
	json_decref(r);
	r = cjson(fd);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "id")), 2);
	json_decref(r);
	/* an error later; a handler that defers and answers at once answers now */
	CU_ASSERT_TRUE(expect_code(fd, "{\"command\":\"later\",\"args\":{\"now\":true}}\n", NULL));
	csend(fd, "{\"command\":\"later\"}\n");
	CU_ASSERT_FATAL(wait_later(2));
	CU_ASSERT_EQUAL(reply_later(1, -EEXIST, NULL), 0);
	r = cjson(fd);
	CU_ASSERT_FALSE(reply_ok(r));
	CU_ASSERT_STRING_EQUAL(reply_code(r), "EEXIST");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "error")), "it failed");
	json_decref(r);
	/* the client shuts down its side: the reply still comes, then the close */
	csend(fd, "{\"command\":\"later\",\"id\":\"x\"}\n");
	CU_ASSERT_FATAL(wait_later(3));
	shutdown(fd, SHUT_WR);
	usleep(100000);
	CU_ASSERT_EQUAL(reply_later(2, 0, NULL), 0);
	r = cjson(fd);
	CU_ASSERT_TRUE(reply_ok(r));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "id")), "x");
	json_decref(r);
	CU_ASSERT_TRUE(closed_after_data(fd));
	close(fd);
	/* the client goes away before the reply */
	fd2 = cconnect();
	CU_ASSERT_FATAL(fd2 >= 0);
	csend(fd2, "{\"command\":\"later\"}\n");
	CU_ASSERT_FATAL(wait_later(4));
	close(fd2);
	usleep(100000);
	/* held until its reply, which finds it gone or cannot be sent: released */
	rc = reply_later(3, 0, NULL);
	CU_ASSERT(rc == 0 || rc == -ENOENT);
	CU_ASSERT_TRUE(wait_clients(0));
	stop();
}

static void
test_idle_timeout(void)
{
	struct mg_ctl_params p = params();
	int fd, sub;
	json_t *r;

	p.idle_ms = 400; /* margins for a loaded machine */
	CU_ASSERT_FATAL(start(&p));
	fd = cconnect();
	sub = cconnect();
	CU_ASSERT_TRUE(expect_code(fd, "{\"command\":\"echo\"}\n", NULL));
	CU_ASSERT_TRUE(expect_code(sub, "{\"command\":\"sub\"}\n", NULL));
	usleep(200000);
	/* activity restarts the clock */
	CU_ASSERT_TRUE(expect_code(fd, "{\"command\":\"echo\"}\n", NULL));
	usleep(200000);
	CU_ASSERT_TRUE(expect_code(fd, "{\"command\":\"echo\"}\n", NULL));
	usleep(900000);
	CU_ASSERT_TRUE(closed_by_server(fd));
	close(fd);
	CU_ASSERT_EQUAL(stats().closed_idle, 1);
	/* a subscriber is exempt */
	CU_ASSERT_TRUE(wait_clients(1));
	CU_ASSERT_EQUAL(publish("{\"n\":1}", 1), 1);
	r = cjson(sub);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(r, "event"), "n")), 1);
	json_decref(r);
	close(sub);
	stop();
}

static void
test_client_not_reading(void)
{
	struct mg_ctl_params p = params();
	static char req[9000];
	int fd, other, n;
	size_t sent = 0;

	p.idle_ms = 300;
	p.max_output = 16384;
	CU_ASSERT_FATAL(start(&p));
	fd = cconnect();
	other = cconnect();
	n = snprintf(req, sizeof(req), "{\"command\":\"echo\",\"args\":{\"p\":\"%08000d\"}}\n", 0);
	/* pipeline requests, never reading a reply, until the server stops
	 * taking them (100 ms without progress) */
	for (int stuck = 0, off = 0; stuck < 50 && sent < (4u << 20);) {
		ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w <= 0) {
			stuck++;
			usleep(2000);
			continue;
		}
		stuck = 0;
		sent += (size_t)w;
		off = (off + (int)w) % n;
	}
	CU_ASSERT_TRUE(sent > 0);
	/* back-pressure: the server stops reading it but serves the others */
	CU_ASSERT_TRUE(expect_code(other, "{\"command\":\"echo\"}\n", NULL));
	CU_ASSERT_TRUE(stats().requests < sent / (size_t)n);
	close(other);
	/* then drops it at the idle timeout, with replies unread */
	CU_ASSERT_TRUE(wait_clients(0));
	CU_ASSERT_EQUAL(stats().closed_slow, 1);
	close(fd);
	stop();
}

static void
test_peer_root(void)
{
	struct mg_ctl_params p = params();
	json_t *r, *res;
	int fd;

	CU_ASSERT_FATAL(start(&p));
	fd = cconnect();
	csend(fd, "{\"command\":\"set\"}\n");
	r = cjson(fd);
	CU_ASSERT_TRUE(reply_ok(r));
	res = json_object_get(r, "result");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(res, "uid")), (json_int_t)getuid());
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(res, "gid")), (json_int_t)getgid());
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(res, "pid")), (json_int_t)getpid());
	json_decref(r);
	CU_ASSERT_EQUAL(stats().denied, 0);
	close(fd);
	stop();
}

/* In a child running as nobody: exit 0 when "echo" works and "set" gives @p want_set. */
static int
child_as_nobody(int want_set)
{
	pid_t pid = fork();
	int status = -1;

	if (pid == 0) {
		struct mg_error err = {.msg = ""};
		int rc;

		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			_exit(10);
		if (mg_ctl_call(sock_path, "echo", NULL, 2000, NULL, &err) != 0) {
			printf("nobody echo: %s\n", err.msg);
			_exit(11);
		}
		rc = mg_ctl_call(sock_path, "set", NULL, 2000, NULL, &err);
		if (rc != want_set) {
			printf("nobody set: %d %s\n", rc, err.msg);
			_exit(12);
		}
		if (rc == -EPERM && strstr(err.msg, "needs root") == NULL)
			_exit(13);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
test_mutating_refused_for_nobody(void)
{
	struct mg_ctl_params p = params();

	CU_ASSERT_EQUAL_FATAL(chmod(dir, 0755), 0);
	p.group = "nogroup"; /* nobody may connect... */
	p.admin_group = "root";
	CU_ASSERT_FATAL(start(&p));
	CU_ASSERT_EQUAL(child_as_nobody(-EPERM), 0); /* ...but not change state */
	CU_ASSERT_EQUAL(stats().denied, 1);
	CU_ASSERT_EQUAL(stats().requests, 2);
	stop();
	/* no admin group at all: root only */
	p.admin_group = NULL;
	CU_ASSERT_FATAL(start(&p));
	CU_ASSERT_EQUAL(child_as_nobody(-EPERM), 0);
	stop();
	chmod(dir, 0700);
}

static void
test_mutating_allowed_for_admin_group(void)
{
	struct mg_ctl_params p = params();

	CU_ASSERT_EQUAL_FATAL(chmod(dir, 0755), 0);
	p.group = "nogroup";
	p.admin_group = "nogroup";
	CU_ASSERT_FATAL(start(&p));
	CU_ASSERT_EQUAL(child_as_nobody(0), 0);
	CU_ASSERT_EQUAL(stats().denied, 0);
	stop();
	chmod(dir, 0700);
}

/* In a child running as nobody: open @p n connections ("echo" on each);
 * report on @p out "A R msg" (accepted, refused, first refusal), then hold
 * them until @p in is closed. @p other_out and @p other_in are the
 * parent's ends of the pipes. */
static pid_t
nobody_holds(unsigned n, int out, int in, int other_out, int other_in)
{
	pid_t pid = fork();

	if (pid == 0) {
		char line[512] = "";
		unsigned acc = 0, ref = 0;
		int dummy;

		close(other_out);
		close(other_in);
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			_exit(10);
		for (unsigned i = 0; i < n; i++) {
			int fd = cconnect();
			json_t *r;

			if (fd < 0)
				_exit(11);
			csend(fd, "{\"command\":\"echo\"}\n");
			r = cjson(fd);
			if (reply_ok(r)) {
				acc++;
			} else {
				if (ref++ == 0)
					snprintf(line, sizeof(line), "%s",
					         json_string_value(json_object_get(r, "error")));
				close(fd);
			}
			json_decref(r);
		}
		dprintf(out, "%u %u %s\n", acc, ref, line);
		close(out);
		while (read(in, &dummy, sizeof(dummy)) > 0)
			;
		_exit(0);
	}
	return pid;
}

/* Start nobody_holds(); its report in @p report; the write end to release it in *@p release. */
static pid_t
hold_as_nobody(unsigned n, char *report, size_t size, int *release)
{
	int up[2], down[2];
	pid_t pid;
	ssize_t got;

	if (pipe(up) || pipe(down))
		return -1;
	pid = nobody_holds(n, up[1], down[0], up[0], down[1]);
	close(up[1]);
	close(down[0]);
	got = read(up[0], report, size - 1);
	report[got > 0 ? got : 0] = '\0';
	close(up[0]);
	*release = down[1];
	return pid;
}

/*
 * Readers cannot lock the administrators out: of max_clients, the last
 * admin_reserve connections are for root and the admin group. Readers that
 * fill the rest get EBUSY (saying why); root still gets in and is served.
 */
static void
test_admin_reserve(void)
{
	struct mg_ctl_params p = params();
	struct mg_error err = {.msg = ""};
	char report[600];
	json_t *res = NULL;
	int release, status, root1;
	pid_t pid;

	CU_ASSERT_EQUAL_FATAL(chmod(dir, 0755), 0);
	p.group = "nogroup";
	p.max_clients = 3;
	p.admin_reserve = 1;
	CU_ASSERT_FATAL(start(&p));
	pid = hold_as_nobody(3, report, sizeof(report), &release);
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_STRING_EQUAL(report, "2 1 too many clients (2, and 1 more kept for root and "
	                               "the admin group); try again later\n");
	CU_ASSERT_EQUAL(stats().clients, 2);
	/* root: in, and served (a mutating command too) */
	CU_ASSERT_EQUAL(mg_ctl_call(sock_path, "set", NULL, 2000, &res, &err), 0);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(res, "uid")), 0);
	json_decref(res);
	CU_ASSERT_TRUE(wait_clients(2));
	/* the reserve taken too: the table is full, for root as well */
	root1 = cconnect();
	CU_ASSERT_TRUE(expect_code(root1, "{\"command\":\"echo\"}\n", NULL));
	CU_ASSERT_EQUAL(mg_ctl_call(sock_path, "echo", NULL, 2000, NULL, &err), -EBUSY);
	CU_ASSERT_STRING_EQUAL(err.msg, "too many clients (3); try again later");
	CU_ASSERT_EQUAL(stats().refused_busy, 2);
	close(root1);
	close(release);
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CU_ASSERT_TRUE(wait_clients(0));
	stop();

	/* members of the admin group may use the reserve too */
	p.admin_group = "nogroup";
	CU_ASSERT_FATAL(start(&p));
	pid = hold_as_nobody(3, report, sizeof(report), &release);
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_STRING_EQUAL(report, "3 0 \n");
	close(release);
	waitpid(pid, &status, 0);
	stop();
	chmod(dir, 0700);
}

static void
test_socket_mode_and_group(void)
{
	struct mg_ctl_params p = params();
	char sub[128], path[160];
	struct group *g = getgrnam("nogroup");
	struct stat st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(g);
	snprintf(sub, sizeof(sub), "%s/run", dir);
	snprintf(path, sizeof(path), "%s/mg.sock", sub);
	p.path = path;
	p.group = "nogroup";
	CU_ASSERT_FATAL(start(&p));
	CU_ASSERT_EQUAL_FATAL(lstat(path, &st), 0);
	CU_ASSERT_TRUE(S_ISSOCK(st.st_mode));
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0660);
	CU_ASSERT_EQUAL(st.st_gid, g->gr_gid);
	/* the missing folder was created for the group to reach the socket */
	CU_ASSERT_EQUAL_FATAL(stat(sub, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0750);
	CU_ASSERT_EQUAL(st.st_gid, g->gr_gid);
	stop();
	/* free removed the socket */
	CU_ASSERT_NOT_EQUAL(lstat(path, &st), 0);
	rmdir(sub);
}

static void
test_socket_mode_default_group(void)
{
	struct mg_ctl_params p = params();
	struct stat st;

	CU_ASSERT_FATAL(start(&p));
	CU_ASSERT_EQUAL_FATAL(lstat(sock_path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0660);
	CU_ASSERT_EQUAL(st.st_gid, getegid());
	stop();
}

static void
test_stale_socket_replaced(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct mg_ctl_params p = params();
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), c;

	/* a socket file nobody listens on, as a crashed daemon leaves it */
	memcpy(sun.sun_path, sock_path, strlen(sock_path) + 1); /* < 40 bytes */
	CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	CU_ASSERT_FATAL(start(&p));
	c = cconnect();
	CU_ASSERT_TRUE(expect_code(c, "{\"command\":\"echo\"}\n", NULL));
	close(c);
	stop();
}

static void
test_not_a_socket_kept(void)
{
	struct mg_ctl_params p = params();
	struct mg_error err = {.msg = ""};
	FILE *f = fopen(sock_path, "w");
	struct stat st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("precious\n", f);
	fclose(f);
	CU_ASSERT_PTR_NULL(mg_ctl_server_create(&p, &err));
	CU_ASSERT_EQUAL(errno, EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not a socket"));
	CU_ASSERT_EQUAL(stat(sock_path, &st), 0);
	CU_ASSERT_TRUE(S_ISREG(st.st_mode));
	unlink(sock_path);
}

static void
test_live_socket_refused(void)
{
	struct mg_ctl_params p = params();
	struct mg_error err = {.msg = ""};
	struct stat before, after;
	int c;

	CU_ASSERT_FATAL(start(&p));
	CU_ASSERT_EQUAL(lstat(sock_path, &before), 0);
	CU_ASSERT_PTR_NULL(mg_ctl_server_create(&p, &err));
	CU_ASSERT_EQUAL(errno, EADDRINUSE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "is meshgate already running?"));
	/* the running server keeps its socket and still answers */
	CU_ASSERT_EQUAL(lstat(sock_path, &after), 0);
	CU_ASSERT_EQUAL(before.st_ino, after.st_ino);
	c = cconnect();
	CU_ASSERT_TRUE(expect_code(c, "{\"command\":\"echo\"}\n", NULL));
	close(c);
	stop();
}

static void
test_stream_publish_filter(void)
{
	struct mg_ctl_params p = params();
	int s1, s2, s3;
	json_t *r;

	CU_ASSERT_FATAL(start(&p));
	s1 = cconnect();
	s2 = cconnect();
	s3 = cconnect();
	CU_ASSERT_TRUE(expect_code(s1, "{\"command\":\"sub\",\"args\":{\"kinds\":1}}\n", NULL));
	CU_ASSERT_TRUE(expect_code(s2, "{\"command\":\"sub\",\"args\":{\"kinds\":2}}\n", NULL));
	CU_ASSERT_TRUE(expect_code(s3, "{\"command\":\"sub\",\"args\":{\"kinds\":0}}\n", "EINVAL"));
	pthread_mutex_lock(&srv_mu);
	CU_ASSERT_TRUE(mg_ctl_server_has_subscribers(srv, "monitor", 1));
	CU_ASSERT_TRUE(mg_ctl_server_has_subscribers(srv, "monitor", 6));
	CU_ASSERT_FALSE(mg_ctl_server_has_subscribers(srv, "monitor", 4));
	CU_ASSERT_FALSE(mg_ctl_server_has_subscribers(srv, "other", 1));
	pthread_mutex_unlock(&srv_mu);
	CU_ASSERT_EQUAL(publish("{\"n\":1}", 1), 1);
	CU_ASSERT_EQUAL(publish("{\"n\":2}", 2), 1);
	CU_ASSERT_EQUAL(publish("{\"n\":3}", 3), 2);
	CU_ASSERT_EQUAL(publish("{\"n\":4}", 4), 0);
	for (int want = 1; want <= 3; want += 2) {
		r = cjson(s1);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "stream")), "monitor");
		CU_ASSERT_EQUAL(
		        json_integer_value(json_object_get(json_object_get(r, "event"), "n")),
		        want);
		json_decref(r);
	}
	for (int want = 2; want <= 3; want++) {
		r = cjson(s2);
		CU_ASSERT_EQUAL(
		        json_integer_value(json_object_get(json_object_get(r, "event"), "n")),
		        want);
		json_decref(r);
	}
	/* a subscriber may still send requests; replies and events share the line order */
	CU_ASSERT_TRUE(expect_code(s1, "{\"command\":\"echo\"}\n", NULL));
	CU_ASSERT_EQUAL(stats().events, 4);
	/* a failed request of a subscriber (here a failed re-subscribe) keeps
	 * its subscription as it was */
	CU_ASSERT_TRUE(expect_code(s1, "{\"command\":\"sub\",\"args\":{\"kinds\":0}}\n", "EINVAL"));
	CU_ASSERT_EQUAL(publish("{\"n\":5}", 1), 1);
	r = cjson(s1);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(r, "event"), "n")), 5);
	json_decref(r);
	/* the one whose subscribe failed receives nothing */
	CU_ASSERT_TRUE(expect_code(s3, "{\"command\":\"echo\"}\n", NULL));
	close(s1);
	close(s2);
	close(s3);
	stop();
}

struct stream_state {
	int stop_after;
	int seen;
	int rc;
	struct mg_error err;
};

static int
on_event(void *arg, json_t *line)
{
	struct stream_state *s = arg;

	if (json_object_get(line, "event") != NULL)
		s->seen++;
	return s->stop_after > 0 && s->seen >= s->stop_after ? 1 : 0;
}

static void *
stream_thread(void *arg)
{
	struct stream_state *s = arg;
	json_t *args = json_pack("{s:i}", "kinds", 1);

	s->rc = mg_ctl_stream(sock_path, "sub", args, 2000, on_event, s, &s->err);
	json_decref(args);
	return NULL;
}

static bool
wait_subscribers(void)
{
	for (int i = 0; i < 600; i++) {
		bool has;

		pthread_mutex_lock(&srv_mu);
		has = mg_ctl_server_has_subscribers(srv, "monitor", 1);
		pthread_mutex_unlock(&srv_mu);
		if (has)
			return true;
		usleep(5000);
	}
	return false;
}

static void
test_stream_client(void)
{
	struct mg_ctl_params p = params();
	struct stream_state s = {.stop_after = 3};
	struct mg_error err = {.msg = ""};
	pthread_t t;

	CU_ASSERT_FATAL(start(&p));
	/* the callback ends the stream */
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, stream_thread, &s), 0);
	CU_ASSERT_TRUE(wait_subscribers());
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(publish("{\"x\":true}", 1), 1);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(s.rc, 0);
	CU_ASSERT_EQUAL(s.seen, 3);
	/* the server goes away mid-stream */
	CU_ASSERT_TRUE(wait_clients(0)); /* the first stream is gone */
	memset(&s, 0, sizeof(s));
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, stream_thread, &s), 0);
	CU_ASSERT_TRUE(wait_subscribers());
	CU_ASSERT_EQUAL(publish("{\"x\":true}", 1), 1);
	stop();
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(s.rc, -ECONNRESET);
	if (strcmp(s.err.msg, "meshgate closed the connection") != 0)
		printf("stream end: %s\n", s.err.msg);
	CU_ASSERT_STRING_EQUAL(s.err.msg, "meshgate closed the connection");
	/* an error reply ends it at once */
	CU_ASSERT_EQUAL(mg_ctl_stream(sock_path, "sub", NULL, 500, on_event, &s, &err), -ENOENT);
}

static void
test_slow_subscriber(void)
{
	struct mg_ctl_params p = params();
	char ev[1100], line[2048];
	uint64_t got = 0, dropped = 0, dropped_lines = 0;
	const uint64_t total = 3000;
	int sub, other;

	p.max_output = 4096;
	p.idle_ms = 60000; /* slow sanitized builds take seconds to publish it all */
	CU_ASSERT_FATAL(start(&p));
	sub = cconnect();
	other = cconnect();
	CU_ASSERT_TRUE(expect_code(sub, "{\"command\":\"sub\"}\n", NULL));
	/* 3 MB of events at a subscriber that does not read */
	snprintf(ev, sizeof(ev), "{\"pad\":\"%01000d\"}", 0);
	for (uint64_t i = 0; i < total; i++)
		publish(ev, 1);
	/* the server keeps serving others meanwhile */
	CU_ASSERT_TRUE(expect_code(other, "{\"command\":\"echo\"}\n", NULL));
	CU_ASSERT_TRUE(stats().events_dropped > 0);
	/* the subscriber catches up: events, then what it missed */
	while (got + dropped < total) {
		json_t *r;

		if (cline(sub, line, sizeof(line)) < 0)
			break;
		r = json_loads(line, 0, NULL);
		if (json_object_get(r, "event") != NULL)
			got++;
		else if (json_object_get(r, "dropped") != NULL) {
			dropped += (uint64_t)json_integer_value(json_object_get(r, "dropped"));
			dropped_lines++;
		}
		json_decref(r);
	}
	CU_ASSERT_EQUAL(got + dropped, total);
	CU_ASSERT_TRUE(dropped > 0 && got > 0);
	CU_ASSERT_TRUE(dropped_lines >= 1);
	CU_ASSERT_EQUAL(stats().events_dropped, dropped);
	CU_ASSERT_EQUAL(stats().events, got);
	/* and is back to normal */
	CU_ASSERT_EQUAL(publish("{\"n\":9}", 1), 1);
	{
		json_t *r = cjson(sub);

		CU_ASSERT_EQUAL(
		        json_integer_value(json_object_get(json_object_get(r, "event"), "n")), 9);
		json_decref(r);
	}
	close(sub);
	close(other);
	stop();
}

static void
test_disconnect_mid_stream(void)
{
	struct mg_ctl_params p = params();
	char ev[1100];
	int sub, other;

	p.max_output = 4096;
	CU_ASSERT_FATAL(start(&p));
	/* leaves with events queued for it */
	sub = cconnect();
	CU_ASSERT_TRUE(expect_code(sub, "{\"command\":\"sub\"}\n", NULL));
	snprintf(ev, sizeof(ev), "{\"pad\":\"%01000d\"}", 0);
	for (int i = 0; i < 500; i++)
		publish(ev, 1);
	close(sub);
	CU_ASSERT_TRUE(wait_clients(0));
	CU_ASSERT_EQUAL(publish("{\"n\":1}", 1), 0);
	/* leaves while idle */
	sub = cconnect();
	CU_ASSERT_TRUE(expect_code(sub, "{\"command\":\"sub\"}\n", NULL));
	close(sub);
	CU_ASSERT_TRUE(wait_clients(0));
	CU_ASSERT_EQUAL(publish("{\"n\":2}", 1), 0);
	other = cconnect();
	CU_ASSERT_TRUE(expect_code(other, "{\"command\":\"echo\"}\n", NULL));
	close(other);
	stop();
}

/* A last request ended by the end of the stream instead of a newline. */
static void
test_eof_ends_last_line(void)
{
	struct mg_ctl_params p = params();
	json_t *r;
	int fd;

	CU_ASSERT_FATAL(start(&p));
	fd = cconnect();
	CU_ASSERT_FATAL(fd >= 0);
	/* a complete line, then one without its newline, then the half-close */
	csend(fd, "{\"command\":\"echo\",\"id\":1}\n{\"command\":\"echo\",\"args\":{\"x\":2},"
	          "\"id\":2}");
	CU_ASSERT_EQUAL(shutdown(fd, SHUT_WR), 0);
	for (int want = 1; want <= 2; want++) {
		r = cjson(fd);
		CU_ASSERT_TRUE(reply_ok(r));
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "id")), want);
		json_decref(r);
	}
	/* answered, then closed */
	CU_ASSERT_TRUE(closed_by_server(fd));
	close(fd);
	/* the same with nothing else before it, and a \r before the end */
	fd = cconnect();
	csend(fd, "{\"command\":\"nope\",\"id\":3}\r");
	shutdown(fd, SHUT_WR);
	r = cjson(fd);
	CU_ASSERT_FALSE(reply_ok(r));
	CU_ASSERT_STRING_EQUAL(reply_code(r), "ENOENT");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "id")), 3);
	json_decref(r);
	CU_ASSERT_TRUE(closed_by_server(fd));
	close(fd);
	CU_ASSERT_TRUE(wait_clients(0));
	CU_ASSERT_EQUAL(stats().requests, 3);
	stop();
}

/*
 * A subscriber that reads nothing while its output waits is closed after
 * idle_ms (it loses every event already, and holds a slot); one that
 * reads slowly but reads stays.
 */
static void
test_stuck_subscriber_closed(void)
{
	struct mg_ctl_params p = params();
	char ev[1100];
	uint64_t t0;
	int stuck, slow;
	bool closed = false;

	p.idle_ms = 1000; /* the slow reader reads every 20 ms: margins for a loaded machine */
	p.max_output = 4096;
	CU_ASSERT_FATAL(start(&p));
	stuck = cconnect();
	slow = cconnect();
	CU_ASSERT_TRUE(expect_code(stuck, "{\"command\":\"sub\"}\n", NULL));
	CU_ASSERT_TRUE(expect_code(slow, "{\"command\":\"sub\"}\n", NULL));
	snprintf(ev, sizeof(ev), "{\"pad\":\"%01000d\"}", 0);
	/* enough to fill the socket buffers of both */
	for (int i = 0; i < 600; i++)
		publish(ev, 1);
	CU_ASSERT_TRUE(stats().events_dropped > 0);
	/* then a trickle, for up to 8 s: the slow one reads now and then */
	t0 = mg_time_ns();
	while (mg_time_ns() - t0 < 8000000000ull) {
		for (int i = 0; i < 10; i++)
			publish(ev, 1);
		drain_now(slow);
		usleep(20000);
		if (!closed && stats().closed_stuck == 1) {
			closed = true;
			t0 = mg_time_ns() - 6500000000ull; /* 1.5 s more of trickle */
		}
	}
	CU_ASSERT_TRUE(closed);
	CU_ASSERT_EQUAL(stats().closed_stuck, 1);
	CU_ASSERT_TRUE(hung_up(stuck, 0));
	CU_ASSERT_TRUE(closed_after_data(stuck));
	close(stuck);
	/* the slow reader is still served: it catches up and gets the next event */
	CU_ASSERT_EQUAL(stats().clients, 1);
	CU_ASSERT_FALSE(hung_up(slow, 0));
	CU_ASSERT_EQUAL(publish("{\"n\":9}", 1), 1);
	CU_ASSERT_TRUE(find_event(slow, 9));
	close(slow);
	CU_ASSERT_TRUE(wait_clients(0));
	stop();
}

static int make_calls;

static json_t *
make_pad(void *arg)
{
	make_calls++;
	return json_pack("{s:s}", "pad", (const char *)arg);
}

/*
 * mg_ctl_server_publish_fn: the event is built only when a subscriber can
 * take it; when every one is full, each loses it and nothing is built.
 */
static void
test_full_subscribers_cost_nothing(void)
{
	struct mg_ctl_params p = params();
	static char pad[1001];
	uint64_t dropped;
	int full, reader, rc = 0;
	json_t *r;

	memset(pad, 'p', sizeof(pad) - 1);
	p.max_output = 4096;
	CU_ASSERT_FATAL(start(&p));
	full = cconnect();
	CU_ASSERT_TRUE(expect_code(full, "{\"command\":\"sub\",\"args\":{\"kinds\":1}}\n", NULL));
	pthread_mutex_lock(&srv_mu);
	/* nobody subscribes to kind 2: nothing built */
	CU_ASSERT_EQUAL(mg_ctl_server_publish_fn(srv, "monitor", 2, make_pad, pad), 0);
	CU_ASSERT_EQUAL(make_calls, 0);
	CU_ASSERT_EQUAL(mg_ctl_server_publish_fn(srv, "monitor", 1, NULL, pad), -EINVAL);
	CU_ASSERT_EQUAL(mg_ctl_server_publish_fn(srv, "Bad Name", 1, make_pad, pad), -EINVAL);
	pthread_mutex_unlock(&srv_mu);
	/* fill it, socket buffer and all: 3 MB at a subscriber that does not
	 * read, the server sending what the socket takes in between */
	for (int i = 0; i < 3000; i++) {
		pthread_mutex_lock(&srv_mu);
		rc = mg_ctl_server_publish_fn(srv, "monitor", 1, make_pad, pad);
		pthread_mutex_unlock(&srv_mu);
		if (i % 50 == 0)
			usleep(1000);
	}
	usleep(100000);
	CU_ASSERT_EQUAL(rc, 0);
	dropped = stats().events_dropped;
	CU_ASSERT_TRUE(dropped > 0);
	CU_ASSERT_EQUAL((uint64_t)make_calls, stats().events);
	/* full: each publish is one more loss and no build */
	make_calls = 0;
	pthread_mutex_lock(&srv_mu);
	for (int i = 0; i < 100; i++)
		CU_ASSERT_EQUAL(mg_ctl_server_publish_fn(srv, "monitor", 1, make_pad, pad), 0);
	pthread_mutex_unlock(&srv_mu);
	CU_ASSERT_EQUAL(make_calls, 0);
	CU_ASSERT_EQUAL(stats().events_dropped, dropped + 100);
	/* one subscriber with room: built once, queued to it alone */
	reader = cconnect();
	CU_ASSERT_TRUE(expect_code(reader, "{\"command\":\"sub\",\"args\":{\"kinds\":1}}\n", NULL));
	pthread_mutex_lock(&srv_mu);
	CU_ASSERT_EQUAL(mg_ctl_server_publish_fn(srv, "monitor", 1, make_pad, pad), 1);
	pthread_mutex_unlock(&srv_mu);
	CU_ASSERT_EQUAL(make_calls, 1);
	CU_ASSERT_EQUAL(stats().events_dropped, dropped + 101);
	r = cjson(reader);
	CU_ASSERT_EQUAL(json_string_length(json_object_get(json_object_get(r, "event"), "pad")),
	                1000);
	json_decref(r);
	close(full);
	close(reader);
	stop();
}

/* Events lost before they reached the server are told in a "dropped" line. */
static void
test_stream_lost(void)
{
	struct mg_ctl_params p = params();
	int drop, verdict;
	json_t *r;

	CU_ASSERT_FATAL(start(&p));
	drop = cconnect();
	verdict = cconnect();
	CU_ASSERT_TRUE(expect_code(drop, "{\"command\":\"sub\",\"args\":{\"kinds\":1}}\n", NULL));
	CU_ASSERT_TRUE(
	        expect_code(verdict, "{\"command\":\"sub\",\"args\":{\"kinds\":2}}\n", NULL));
	pthread_mutex_lock(&srv_mu);
	CU_ASSERT_EQUAL(mg_ctl_server_stream_lost(srv, "monitor", 1, 7), 1);
	CU_ASSERT_EQUAL(mg_ctl_server_stream_lost(srv, "other", 1, 7), 0);
	CU_ASSERT_EQUAL(mg_ctl_server_stream_lost(srv, "Bad Name", 1, 7), -EINVAL);
	pthread_mutex_unlock(&srv_mu);
	/* told at once (it has caught up), then the next event */
	r = cjson(drop);
	CU_ASSERT_TRUE(json_is_string(json_object_get(r, "stream")) &&
	               strcmp(json_string_value(json_object_get(r, "stream")), "monitor") == 0);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "dropped")), 7);
	json_decref(r);
	CU_ASSERT_EQUAL(publish("{\"n\":1}", 3), 2);
	r = cjson(drop);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(r, "event"), "n")), 1);
	json_decref(r);
	/* the other kind's subscriber was not told */
	r = cjson(verdict);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(r, "event"), "n")), 1);
	json_decref(r);
	/* not the server's own loss */
	CU_ASSERT_EQUAL(stats().events_dropped, 0);
	close(drop);
	close(verdict);
	stop();
}

/*
 * A server that refuses the connection answers before it reads the
 * request: when the request cannot be sent (the server closed), the
 * client still reports the server's reason, not a broken pipe.
 */
static void
test_client_shows_busy_reply(void)
{
	struct mg_ctl_params p = params();
	struct mg_error err = {.msg = ""};
	static char big[4 << 20];
	json_t *args;
	int hold, rc;

	p.max_clients = 1;
	CU_ASSERT_FATAL(start(&p));
	hold = cconnect();
	CU_ASSERT_TRUE(expect_code(hold, "{\"command\":\"echo\"}\n", NULL));
	/* far more than a socket buffer: the send is still going when the
	 * server answers and closes */
	memset(big, 'b', sizeof(big) - 1);
	args = json_pack("{s:s}", "pad", big);
	CU_ASSERT_PTR_NOT_NULL_FATAL(args);
	rc = mg_ctl_call(sock_path, "echo", args, 5000, NULL, &err);
	if (rc != -EBUSY)
		printf("big request to a full server: %d %s\n", rc, err.msg);
	CU_ASSERT_EQUAL(rc, -EBUSY);
	CU_ASSERT_STRING_EQUAL(err.msg, "too many clients (1); try again later");
	/* and the small request that races the close: the same */
	rc = mg_ctl_call(sock_path, "echo", NULL, 5000, NULL, &err);
	CU_ASSERT_EQUAL(rc, -EBUSY);
	CU_ASSERT_STRING_EQUAL(err.msg, "too many clients (1); try again later");
	json_decref(args);
	close(hold);
	stop();
}

static void
test_client_errors(void)
{
	struct mg_error err = {.msg = ""};
	char missing[160];

	snprintf(missing, sizeof(missing), "%s/none.sock", dir);
	CU_ASSERT_EQUAL(mg_ctl_call(missing, "help", NULL, 1000, NULL, &err), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "is meshgate running?"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, missing));
	CU_ASSERT_EQUAL(mg_ctl_errno_from_name("EPERM"), EPERM);
	CU_ASSERT_EQUAL(mg_ctl_errno_from_name("E2BIG"), E2BIG);
	CU_ASSERT_EQUAL(mg_ctl_errno_from_name("ENOTANERRNO"), 0);
	CU_ASSERT_EQUAL(mg_ctl_errno_from_name(NULL), 0);
}

static void
test_client_timeout(void)
{
	struct mg_ctl_params p = params();
	struct mg_error err = {.msg = ""};
	uint64_t t0;

	/* a server that never runs its loop: connect works (backlog), no reply */
	srv = mg_ctl_server_create(&p, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
	t0 = mg_time_ns();
	CU_ASSERT_EQUAL(mg_ctl_call(sock_path, "help", NULL, 200, NULL, &err), -ETIMEDOUT);
	CU_ASSERT_TRUE(mg_time_ns() - t0 >= 190000000ull);
	CU_ASSERT_TRUE(mg_time_ns() - t0 < 2000000000ull);
	mg_ctl_server_free(srv);
	srv = NULL;
}

static int
noop_cmd(void *arg MG_UNUSED, struct mg_ctl_conn *conn MG_UNUSED, const json_t *args MG_UNUSED,
         json_t **result MG_UNUSED, struct mg_error *err MG_UNUSED)
{
	return 0;
}

static void
test_params_and_register(void)
{
	struct mg_ctl_params p = params();
	struct mg_error err = {.msg = ""};
	struct mg_ctl_command c = {"x.y", "s", false, noop_cmd, NULL};
	char longp[200], deep[160];
	struct mg_ctl_server *s;
	struct stat st;

	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	p.path = longp;
	CU_ASSERT_PTR_NULL(mg_ctl_server_create(&p, &err));
	CU_ASSERT_EQUAL(errno, ENAMETOOLONG);
	p.path = NULL;
	CU_ASSERT_PTR_NULL(mg_ctl_server_create(&p, &err));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p = params();
	p.max_request = 10;
	CU_ASSERT_PTR_NULL(mg_ctl_server_create(&p, &err));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p = params();
	p.max_clients = 4;
	p.admin_reserve = 4; /* no connection left for readers */
	CU_ASSERT_PTR_NULL(mg_ctl_server_create(&p, &err));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p.max_clients = 0;
	p.admin_reserve = MG_CTL_DEFAULT_MAX_CLIENTS; /* against the default */
	CU_ASSERT_PTR_NULL(mg_ctl_server_create(&p, &err));
	CU_ASSERT_EQUAL(errno, EINVAL);
	p = params();
	p.group = "no-such-group-mg";
	CU_ASSERT_PTR_NULL(mg_ctl_server_create(&p, &err));
	CU_ASSERT_EQUAL(errno, ENOENT);
	CU_ASSERT_STRING_EQUAL(err.msg,
	                       "control.group: no group 'no-such-group-mg' on this system");
	p = params();
	snprintf(deep, sizeof(deep), "%s/a/b/mg.sock", dir);
	p.path = deep;
	CU_ASSERT_PTR_NULL(mg_ctl_server_create(&p, &err));
	CU_ASSERT_EQUAL(errno, ENOENT);
	CU_ASSERT_NOT_EQUAL(lstat(sock_path, &st), 0);

	p = params();
	s = mg_ctl_server_create(&p, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(mg_ctl_server_path(s), sock_path);
	CU_ASSERT_EQUAL(mg_ctl_register(s, &c), 0);
	CU_ASSERT_EQUAL(mg_ctl_register(s, &c), -EEXIST);
	c.name = "help";
	CU_ASSERT_EQUAL(mg_ctl_register(s, &c), -EEXIST);
	c.name = "Bad Name";
	CU_ASSERT_EQUAL(mg_ctl_register(s, &c), -EINVAL);
	c.name = "ok";
	c.fn = NULL;
	CU_ASSERT_EQUAL(mg_ctl_register(s, &c), -EINVAL);
	CU_ASSERT_EQUAL(lstat(sock_path, &st), 0);
	mg_ctl_server_free(s);
	CU_ASSERT_NOT_EQUAL(lstat(sock_path, &st), 0);
}

/* ---- main: the permission tests need root ---- */

static CU_TestInfo tests[] = {
        {"request_response", test_request_response},
        {"pipelined_and_split", test_pipelined_and_split},
        {"unknown_command", test_unknown_command},
        {"malformed", test_malformed},
        {"oversize", test_oversize},
        {"too_many_clients", test_too_many_clients},
        {"idle_timeout", test_idle_timeout},
        {"deferred_reply", test_deferred_reply},
        {"client_not_reading", test_client_not_reading},
        {"peer_root", test_peer_root},
        {"socket_mode_default_group", test_socket_mode_default_group},
        {"stale_socket_replaced", test_stale_socket_replaced},
        {"not_a_socket_kept", test_not_a_socket_kept},
        {"live_socket_refused", test_live_socket_refused},
        {"stream_publish_filter", test_stream_publish_filter},
        {"stream_client", test_stream_client},
        {"slow_subscriber", test_slow_subscriber},
        {"disconnect_mid_stream", test_disconnect_mid_stream},
        {"eof_ends_last_line", test_eof_ends_last_line},
        {"stuck_subscriber_closed", test_stuck_subscriber_closed},
        {"full_subscribers_cost_nothing", test_full_subscribers_cost_nothing},
        {"stream_lost", test_stream_lost},
        {"client_shows_busy_reply", test_client_shows_busy_reply},
        {"client_errors", test_client_errors},
        {"client_timeout", test_client_timeout},
        {"params_and_register", test_params_and_register},
        CU_TEST_INFO_NULL,
};

static CU_TestInfo root_tests[] = {
        {"mutating_refused_for_nobody", test_mutating_refused_for_nobody},
        {"mutating_allowed_for_admin_group", test_mutating_allowed_for_admin_group},
        {"admin_reserve", test_admin_reserve},
        {"socket_mode_and_group", test_socket_mode_and_group},
        CU_TEST_INFO_NULL,
};

int
main(void)
{
	CU_SuiteInfo suites[] = {{"ctl", NULL, NULL, NULL, NULL, tests},
	                         {"ctl_root", NULL, NULL, NULL, NULL, root_tests},
	                         CU_SUITE_INFO_NULL};
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0); /* a crash loses no result line */
	snprintf(dir, sizeof(dir), "/tmp/mg-ctl.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/mg.sock", dir);
	mg_log_set_level(MG_LOG_WARN);
	if (geteuid() != 0 || getgrnam("nogroup") == NULL) {
		for (CU_TestInfo *t = root_tests; t->pName != NULL; t++)
			printf("SKIP: ctl_root/%s: needs root and the nogroup group\n", t->pName);
		suites[1] = (CU_SuiteInfo)CU_SUITE_INFO_NULL;
	}
	rc = mg_test_run(suites);
	rmdir(dir);
	return rc;
}
