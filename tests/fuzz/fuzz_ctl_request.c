/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target of lib/ctl's request path: what any local client may
 * send down the control socket. A server is made once (its socket in a
 * fresh folder under /tmp) with a small command table: an echo, a failing
 * command, a mutating one, a stream subscription, one breaking the handler
 * convention and one whose result does not encode. Each input is a
 * connection's byte stream: its first byte says whether the peer may run
 * mutating commands and whether the client shuts down its side at the
 * end; the rest is fed to the connection's input buffer as recv() would,
 * and each step's output is read back as the client would. Besides
 * surviving any input under ASan/UBSan without a leak: every request line
 * gets exactly one reply line, each a JSON object with "ok" true or false
 * (an error with "error" and "code"), and an oversize request gets one
 * E2BIG reply and closes the connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define MAX_REQUEST 1024 /* small, so the oversize path is reached */

static int state; /* what "state.set" sets */

static int
echo_cmd(void *arg MG_UNUSED, struct mg_ctl_conn *conn MG_UNUSED, const json_t *args,
         json_t **result, struct mg_error *err MG_UNUSED)
{
	*result = json_deep_copy(args);
	return *result != NULL ? 0 : -ENOMEM;
}

static int
fail_cmd(void *arg MG_UNUSED, struct mg_ctl_conn *conn MG_UNUSED, const json_t *args,
         json_t **result MG_UNUSED, struct mg_error *err)
{
	const char *m = json_string_value(json_object_get(args, "msg"));

	if (m != NULL)
		snprintf(err->msg, sizeof(err->msg), "%s", m);
	return -(int)(json_integer_value(json_object_get(args, "errno")) & 0xff) ?: -EINVAL;
}

static int
set_cmd(void *arg MG_UNUSED, struct mg_ctl_conn *conn MG_UNUSED, const json_t *args,
        json_t **result, struct mg_error *err)
{
	json_t *v = json_object_get(args, "value");

	if (!json_is_integer(v)) {
		snprintf(err->msg, sizeof(err->msg), "state.set needs an integer \"value\"");
		return -EINVAL;
	}
	state = (int)json_integer_value(v);
	*result = json_pack("{s:i}", "value", state);
	return *result != NULL ? 0 : -ENOMEM;
}

static int
follow_cmd(void *arg MG_UNUSED, struct mg_ctl_conn *conn, const json_t *args,
           json_t **result MG_UNUSED, struct mg_error *err)
{
	json_t *k = json_object_get(args, "kinds");
	uint64_t kinds = k != NULL ? (uint64_t)json_integer_value(k) : 1;
	const char *stream = json_string_value(json_object_get(args, "stream"));
	int rc = mg_ctl_conn_subscribe(conn, stream != NULL ? stream : "events", kinds);

	if (rc < 0)
		snprintf(err->msg, sizeof(err->msg), "cannot subscribe");
	return rc;
}

static int
positive_cmd(void *arg MG_UNUSED, struct mg_ctl_conn *conn MG_UNUSED, const json_t *args MG_UNUSED,
             json_t **result MG_UNUSED, struct mg_error *err MG_UNUSED)
{
	return 1; /* breaks the convention: must reply as an error */
}

static int
binary_cmd(void *arg MG_UNUSED, struct mg_ctl_conn *conn MG_UNUSED, const json_t *args MG_UNUSED,
           json_t **result, struct mg_error *err MG_UNUSED)
{
	*result = json_stringn_nocheck("\xff\xfe", 2); /* does not encode */
	return *result != NULL ? 0 : -ENOMEM;
}

static const struct mg_ctl_command commands[] = {
        {"echo", "the args back", false, echo_cmd, NULL},
        {"fail", "an error", false, fail_cmd, NULL},
        {"state.set", "changes state", true, set_cmd, NULL},
        {"events.follow", "subscribes", false, follow_cmd, NULL},
        {"positive", "returns 1", false, positive_cmd, NULL},
        {"binary", "invalid UTF-8", false, binary_cmd, NULL},
};

static char dir[64];

static void
remove_dir(void)
{
	rmdir(dir);
}

static struct mg_ctl_server *
server(void)
{
	static struct mg_ctl_server *srv;
	struct mg_ctl_params p = {.max_request = MAX_REQUEST, .idle_ms = UINT32_MAX};
	struct mg_error err = {{0}};
	char path[96];

	if (srv != NULL)
		return srv;
	snprintf(dir, sizeof(dir), "/tmp/mg-fuzz-ctl.XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	p.path = path;
	srv = mg_ctl_server_create(&p, &err);
	CHECK(srv != NULL);
	CHECK(mg_ctl_register_table(srv, commands, sizeof(commands) / sizeof(commands[0]), NULL,
	                            &err) == 0);
	/* the socket goes at exit; the server lives as long as the process */
	unlink(path);
	atexit(remove_dir);
	return srv;
}

/* Read the replies queued since the last call, as the client would; returns their number. */
static uint64_t
take_replies(struct mg_ctl_conn *c, bool *e2big)
{
	uint64_t n = 0;

	while (ctl_pending(c) > 0) {
		char *line = c->out + c->out_off;
		char *nl = memchr(line, '\n', ctl_pending(c));
		json_error_t je;
		json_t *r, *ok;

		CHECK(nl != NULL); /* whole lines only */
		r = json_loadb(line, (size_t)(nl - line), JSON_REJECT_DUPLICATES, &je);
		CHECK(r != NULL && json_is_object(r));
		ok = json_object_get(r, "ok");
		CHECK(json_is_boolean(ok));
		if (!json_is_true(ok)) {
			const char *code = json_string_value(json_object_get(r, "code"));

			CHECK(code != NULL && json_is_string(json_object_get(r, "error")));
			if (strcmp(code, "E2BIG") == 0)
				*e2big = true;
		} else {
			CHECK(json_object_get(r, "result") != NULL);
		}
		json_decref(r);
		c->out_off = (size_t)(nl - c->out) + 1;
		n++;
	}
	c->out_off = c->out_len = 0;
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mg_ctl_server *s = server();
	struct mg_ctl_conn *c;
	uint64_t replies = 0, req0, over0;
	bool e2big = false, shut;
	size_t off = 1;

	if (size == 0)
		return 0;
	c = calloc(1, sizeof(*c));
	CHECK(c != NULL);
	c->srv = s;
	c->fd = -1;
	c->admin = data[0] & 1;
	shut = (data[0] & 2) != 0;
	c->in = malloc(s->max_request + 1);
	CHECK(c->in != NULL);
	req0 = s->st.requests;
	over0 = s->st.closed_oversize;
	for (;;) {
		size_t room = s->max_request + 1 - c->in_len;
		size_t n = size - off < room ? size - off : room;

		if (n > 0) {
			memcpy(c->in + c->in_len, data + off, n);
			c->in_len += n;
			off += n;
		} else if (off == size && shut) {
			c->closing = true; /* recv() said the client is done */
		} else {
			break;
		}
		ctl_handle_input(c);
		replies += take_replies(c, &e2big);
		/* closing: the client shut down, or an oversize request ended it */
		if (c->dead || c->closing)
			break;
	}
	CHECK(!c->dead);
	CHECK(replies == (s->st.requests - req0) + (s->st.closed_oversize - over0));
	CHECK(s->st.closed_oversize == over0 || e2big);
	ctl_conn_free(c);
	return 0;
}
