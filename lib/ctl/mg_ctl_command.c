/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket's commands: the table (sorted by name, looked up by
 * binary search), the parsing of a request line, the permission check and
 * the call of the handler, and the reply. Permission is decided per
 * command, not per connection: anyone the socket's mode lets in may read,
 * only root and the admin group may change state, as HAProxy's runtime
 * API separates its "user" and "admin" levels. A failed request changes
 * nothing of its connection's subscription.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_priv.h"

/* Command and stream names: [a-z0-9._-], shorter than MG_CTL_NAME_MAX. */
bool
ctl_valid_name(const char *s)
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

static const char *
errno_name(int e)
{
	const char *n = strerrorname_np(e);

	return n != NULL ? n : "EIO";
}

/* ---- replies ---- */

/* Queue the reply to one request; a connection that cannot take it dies. */
void
ctl_reply(struct mg_ctl_conn *c, json_t *id, int rc, json_t *result, const char *msg)
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
	if (r == NULL || ctl_out_json(c, r) != 0) {
		json_t *e;

		json_decref(r);
		/* the result itself may not encode (invalid UTF-8 from a handler) */
		e = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "reply could not be encoded",
		              "code", "EIO");
		if (e == NULL || ctl_out_json(c, e) != 0)
			c->dead = true;
		json_decref(e);
		c->srv->st.errors++;
		return;
	}
	if (rc != 0)
		c->srv->st.errors++;
	json_decref(r);
}

/* ---- requests ---- */

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
void
ctl_handle_line(struct mg_ctl_conn *c, const char *line, size_t len)
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
		ctl_reply(c, NULL, -EINVAL, NULL, err.msg);
		return;
	}
	if (!json_is_object(req)) {
		ctl_reply(c, NULL, -EINVAL, NULL, "a request is a JSON object");
		goto out;
	}
	id = json_object_get(req, "id");
	json_object_foreach(req, key, v)
	{
		if (strcmp(key, "command") && strcmp(key, "args") && strcmp(key, "id")) {
			snprintf(err.msg, sizeof(err.msg),
			         "unknown key '%.64s' in request (command, args, id)", key);
			ctl_reply(c, id, -EINVAL, NULL, err.msg);
			goto out;
		}
	}
	name = json_string_value(json_object_get(req, "command"));
	if (name == NULL) {
		ctl_reply(c, id, -EINVAL, NULL, "a request needs \"command\", a string");
		goto out;
	}
	args = json_object_get(req, "args");
	if (args == NULL || json_is_null(args)) {
		args = empty = json_object();
		if (empty == NULL) {
			ctl_reply(c, id, -ENOMEM, NULL, NULL);
			goto out;
		}
	} else if (!json_is_object(args)) {
		ctl_reply(c, id, -EINVAL, NULL, "\"args\" must be an object");
		goto out;
	}
	found = find_command(s, name);
	if (found == NULL) {
		snprintf(err.msg, sizeof(err.msg), "unknown command '%.64s' (try 'help')", name);
		ctl_reply(c, id, -ENOENT, NULL, err.msg);
		goto out;
	}
	cmd = *found; /* a handler may register commands and move the table */
	if (cmd.mutating && !ctl_conn_is_admin(c)) {
		s->st.denied++;
		snprintf(err.msg, sizeof(err.msg),
		         "permission denied: '%s' changes state and needs root%s%s%s (peer uid %u)",
		         cmd.name, s->has_admin ? " or group '" : "",
		         s->has_admin ? s->admin_group : "", s->has_admin ? "'" : "",
		         (unsigned)c->peer.uid);
		ctl_reply(c, id, -EPERM, NULL, err.msg);
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
	if (rc == MG_CTL_LATER && c->owed != 0) {
		/* mg_ctl_server_reply() answers it */
		c->owed_id = id != NULL ? json_incref(id) : NULL;
		json_decref(result);
		goto out;
	}
	c->owed = 0; /* deferred, then answered now after all */
	if (rc > 0)
		rc = -EIO; /* a handler breaking the convention is an error, not success */
	if (rc != 0) {
		memcpy(c->stream, was_stream, sizeof(c->stream));
		c->kinds = was_kinds;
		c->dropped = was_dropped;
	}
	ctl_reply(c, id, rc, rc == 0 ? result : NULL, err.msg);
	json_decref(result);
out:
	json_decref(empty);
	json_decref(req);
}

uint64_t
mg_ctl_conn_defer(struct mg_ctl_conn *c)
{
	c->owed = ++c->srv->last_ticket;
	return c->owed;
}

int
mg_ctl_server_reply(struct mg_ctl_server *s, uint64_t ticket, int rc, json_t *result,
                    const char *msg)
{
	for (size_t i = 0; ticket != 0 && i < s->n_conns; i++) {
		struct mg_ctl_conn *c = s->conns[i];

		if (c->owed != ticket)
			continue;
		if (!c->dead)
			ctl_reply(c, c->owed_id, rc, rc == 0 ? result : NULL, msg);
		json_decref(c->owed_id);
		c->owed_id = NULL;
		c->owed = 0;
		/* the requests that waited run at the next poll */
		return c->dead ? -ENOENT : 0;
	}
	return -ENOENT;
}

/* ---- the command table ---- */

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

	if (s == NULL || cmd == NULL || cmd->fn == NULL || !ctl_valid_name(cmd->name))
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

int
ctl_register_builtins(struct mg_ctl_server *s)
{
	static const struct mg_ctl_command help = {
	        .name = "help",
	        .summary = "list the commands, whether they change state, what they do",
	        .mutating = false,
	        .fn = help_cmd,
	};
	struct mg_ctl_command h = help;

	h.arg = s;
	return mg_ctl_register(s, &h);
}
