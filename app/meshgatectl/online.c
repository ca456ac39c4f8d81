/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * meshgatectl's online commands: the client side of the daemon's control
 * socket (lib/ctl; the command set and each result's fields are in
 * docs/cli.md and the control protocol spec). Each command is one
 * request: parse the options, send {"command", "args"}, then print the
 * result, as aligned tables with a header row by default (in the manner of
 * cilium-dbg) or, with -o json, the result object as the daemon sent it.
 * `monitor` is the one stream: events are printed one per line until the
 * daemon closes the connection or the user interrupts.
 *
 * The text printers read the result defensively: a field the daemon left
 * out prints as "-" rather than crashing the tool, since the two sides are
 * versioned together but may still be run mismatched.
 *
 * Exit codes: 0 success; 1 the daemon cannot be reached or refused the
 * request (its message on stderr); 2 usage; 3 a reply that is not the
 * protocol, or a policy engine disagreement reported by the daemon.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "mg_ctl.h"
#include "online.h"

/* ---- socket, calls ---- */

enum ctl_output ctl_default_output = CTL_OUT_TEXT;
const char *ctl_global_socket;

const char *
ctl_socket_path(const char *opt)
{
	const char *env = getenv("MESHGATE_SOCKET");

	if (opt != NULL)
		return opt;
	if (ctl_global_socket != NULL)
		return ctl_global_socket;
	if (env != NULL && env[0] != '\0')
		return env;
	return CTL_DEFAULT_SOCKET;
}

/* The exit code of a failed request: the daemon's answer, or ours. */
static int
call_exit_code(int rc)
{
	/* EPROTO: a reply that is not the protocol, or the daemon reporting a
	 * policy engine disagreement; both are bugs, not user errors. */
	return rc == -EPROTO || rc == -ENOMEM ? CTL_EXIT_INTERNAL : CTL_EXIT_FAIL;
}

int
ctl_call(const char *cmd, const char *socket, const char *command, json_t *args, json_t **result)
{
	struct mg_error err = {{0}};
	int rc;

	*result = NULL;
	rc = mg_ctl_call(socket, command, args, CTL_TIMEOUT_MS, result, &err);
	if (rc < 0) {
		fprintf(stderr, "meshgatectl %s: %s\n", cmd, err.msg[0] ? err.msg : strerror(-rc));
		return call_exit_code(rc);
	}
	if (*result == NULL)
		*result = json_null();
	return CTL_EXIT_OK;
}

/* ---- monitor ---- */

/*
 * One event on one line: time, type, reason, where, what, who.
 * 2024-05-01T12:00:00.123Z drop policy_denied_ingress port inside worker 1
 *   ingress tcp 10.1.0.1:40000 (65600) -> 10.1.0.2:81 (65601) len 74
 * (on one line), then the labels of each identity on an indented line:
 *     src 65600: k8s:app=web k8s:io.kubernetes.pod.namespace=shop
 */
static void
print_labels_line(FILE *f, const char *what, const char *id, const json_t *labels)
{
	size_t i;
	const json_t *l;

	if (!json_is_array(labels) || json_array_size(labels) == 0)
		return;
	fprintf(f, "    %s %s:", what, id);
	json_array_foreach(labels, i, l)
	        fprintf(f, " %s", json_is_string(l) ? json_string_value(l) : "?");
	fputc('\n', f);
}

void
ctl_monitor_print_text(const json_t *ev, FILE *f)
{
	const json_t *sport = json_object_get(ev, "sport"), *dport = json_object_get(ev, "dport");
	const json_t *itype = json_object_get(ev, "icmp_type");
	char src[80], dst[80];

	if (json_is_integer(sport) && json_is_integer(dport)) {
		endpoint_str(ev, "src", "sport", src, sizeof(src));
		endpoint_str(ev, "dst", "dport", dst, sizeof(dst));
	} else {
		snprintf(src, sizeof(src), "%s", jf(ev, "src"));
		snprintf(dst, sizeof(dst), "%s", jf(ev, "dst"));
	}
	fprintf(f, "%s %s %s port %s worker %s %s %s %s (%s) -> %s (%s)", jf(ev, "time"),
	        jf(ev, "type"), jf(ev, "reason"), jf(ev, "port"), jf(ev, "worker"),
	        jf(ev, "direction"), jf(ev, "proto"), src, jf(ev, "src_identity"), dst,
	        jf(ev, "dst_identity"));
	if (json_is_integer(itype))
		fprintf(f, " type %" JSON_INTEGER_FORMAT, json_integer_value(itype));
	fprintf(f, " len %s\n", jf(ev, "len"));
	/* who: the labels of both identities, on an indented line of their own */
	print_labels_line(f, "src", jf(ev, "src_identity"), json_object_get(ev, "src_labels"));
	print_labels_line(f, "dst", jf(ev, "dst_identity"), json_object_get(ev, "dst_labels"));
}

static void
on_sigint(int sig)
{
	(void)sig;
	/* Every event line is flushed when printed: nothing is lost. */
	_exit(CTL_EXIT_OK);
}

static int
on_event(void *arg, json_t *line)
{
	const enum ctl_output *out = arg;
	const json_t *ev = json_object_get(line, "event");
	const json_t *dropped = json_object_get(line, "dropped");

	if (json_is_integer(dropped)) {
		if (*out == CTL_OUT_JSON)
			printf("{\"dropped\": %" JSON_INTEGER_FORMAT "}\n",
			       json_integer_value(dropped));
		else
			printf("LOST %" JSON_INTEGER_FORMAT
			       " events: this monitor read too slowly\n",
			       json_integer_value(dropped));
	} else {
		if (ev == NULL) /* a bare event line */
			ev = line;
		if (*out == CTL_OUT_JSON) {
			json_dumpf(ev, stdout, JSON_COMPACT);
			putchar('\n');
		} else {
			ctl_monitor_print_text(ev, stdout);
		}
	}
	/* Stop when the reader went away (a closed pipe). */
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -EPIPE;
}

static int
run_monitor(const char *cmd, const char *socket, json_t *args, enum ctl_output out)
{
	struct mg_error err = {{0}};
	int rc;

	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	rc = mg_ctl_stream(socket, "monitor", args, CTL_TIMEOUT_MS, on_event, &out, &err);
	if (rc == 0 || rc == -EPIPE)
		return CTL_EXIT_OK;
	if (rc == -ECONNRESET) {
		fprintf(stderr, "meshgatectl %s: meshgate closed the connection\n", cmd);
		return CTL_EXIT_FAIL;
	}
	fprintf(stderr, "meshgatectl %s: %s\n", cmd, err.msg[0] ? err.msg : strerror(-rc));
	return call_exit_code(rc);
}

/* ---- command table ---- */

/* Options an online command may take, besides --socket, -o and --help. */
enum {
	O_CLUSTER = 1 << 0,
	O_FAMILY = 1 << 1,
	O_LIMIT = 1 << 2,
	O_TYPE = 1 << 3,
	O_FORMAT = 1 << 4,
};

struct online_cmd {
	const char *name;    /* as in main.c's table: "identity get" */
	const char *command; /* the control command: "identity.get" */
	unsigned opts;       /* O_* */
	const char *arg;     /* the positional argument's name, or NULL */
	int (*text)(const json_t *result);
};

static const struct online_cmd online_cmds[] = {
        {"status", "status", 0, NULL, text_status},
        {"config show", "config.show", 0, NULL, text_config},
        {"identity list", "identity.list", O_CLUSTER | O_LIMIT, NULL, text_identity_list},
        {"identity get", "identity.get", 0, "ID", text_identity_get},
        {"ip list", "ip.list", O_FAMILY | O_CLUSTER | O_LIMIT, NULL, text_ip_list},
        {"ip get", "ip.get", 0, "IP|PREFIX", text_ip_get},
        {"policy get", "policy.get", 0, NULL, text_policy_get},
        {"policy selectors", "policy.selectors", 0, NULL, text_policy_selectors},
        {"ct list", "ct.list", O_LIMIT, NULL, text_ct_list},
        {"ct flush", "ct.flush", 0, NULL, text_ct_flush},
        {"sync status", "sync.status", 0, NULL, text_sync_status},
        {"sync resync", "sync.resync", 0, NULL, text_sync_resync},
        {"monitor", "monitor", O_TYPE, NULL, NULL},
        {"metrics", "metrics", O_FORMAT, NULL, text_metrics},
        {"reload", "reload", 0, NULL, text_reload},
        {"replicator status", "replicator.status", 0, NULL, text_rep_status},
        {"replicator troubleshoot", "replicator.troubleshoot", O_CLUSTER, NULL,
         text_rep_troubleshoot},
};

struct online_opts {
	const char *socket, *cluster, *family, *limit, *type, *format, *arg;
	enum ctl_output out;
	bool help;
};

static int
parse_online(const struct online_cmd *oc, int argc, char **argv, struct online_opts *o)
{
	static const struct {
		const char *name;
		unsigned flag; /* 0: every command */
		size_t off;
	} table[] = {
	        {"--socket", 0, offsetof(struct online_opts, socket)},
	        {"--cluster", O_CLUSTER, offsetof(struct online_opts, cluster)},
	        {"--family", O_FAMILY, offsetof(struct online_opts, family)},
	        {"--limit", O_LIMIT, offsetof(struct online_opts, limit)},
	        {"--type", O_TYPE, offsetof(struct online_opts, type)},
	        {"--format", O_FORMAT, offsetof(struct online_opts, format)},
	};
	const char *cmd = argv[0], *fmt = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '='), *val;
		size_t len = eq != NULL && a[0] == '-' ? (size_t)(eq - a) : strlen(a), k;
		const char **slot = NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			o->help = true;
			continue;
		}
		if ((len == 2 && strncmp(a, "-o", 2) == 0) ||
		    (len == 8 && strncmp(a, "--output", 8) == 0)) {
			slot = &fmt;
		} else if (a[0] == '-' && a[1] != '\0') {
			for (k = 0; k < sizeof(table) / sizeof(table[0]); k++)
				if (strlen(table[k].name) == len &&
				    strncmp(table[k].name, a, len) == 0 &&
				    (table[k].flag == 0 || (oc->opts & table[k].flag)))
					slot = (const char **)((char *)o + table[k].off);
			if (slot == NULL)
				return ctl_usage_error(cmd, "unknown option '%.*s'", (int)len, a);
		} else {
			if (oc->arg == NULL || o->arg != NULL)
				return ctl_usage_error(cmd, "unexpected argument '%s'", a);
			o->arg = a;
			continue;
		}
		if (eq != NULL && a[0] == '-') {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			return ctl_usage_error(cmd, "%.*s needs a value", (int)len, a);
		}
		*slot = val;
	}
	if (fmt != NULL && ctl_output_parse(fmt, &o->out) < 0)
		return ctl_usage_error(cmd, "-o: unknown format '%s' (text, json)", fmt);
	if (!o->help && oc->arg != NULL && o->arg == NULL)
		return ctl_usage_error(cmd, "%s is required", oc->arg);
	return CTL_EXIT_OK;
}

static bool
one_of(const char *s, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

/* Check the options' values and build the request's args. */
static int
build_args(const struct online_cmd *oc, const struct online_opts *o, json_t *args)
{
	const char *cmd = oc->name;
	struct mg_ipcache_entry e;
	unsigned long long v;
	char *end;
	int rc = 0;

	if (o->cluster != NULL)
		rc |= json_object_set_new(args, "cluster", json_string(o->cluster));
	if (o->family != NULL) {
		if (!one_of(o->family, (const char *const[]){"ipv4", "ipv6", NULL}))
			return ctl_usage_error(cmd, "--family '%s': ipv4 or ipv6", o->family);
		rc |= json_object_set_new(args, "family", json_string(o->family));
	}
	if (o->limit != NULL) {
		errno = 0;
		v = strtoull(o->limit, &end, 10);
		if (o->limit[0] < '0' || o->limit[0] > '9' || *end != '\0' || errno != 0 ||
		    v == 0 || v > INT32_MAX)
			return ctl_usage_error(cmd, "--limit '%s': a number of entries, 1 or more",
			                       o->limit);
		rc |= json_object_set_new(args, "limit", json_integer((json_int_t)v));
	}
	if (strcmp(oc->command, "monitor") == 0)
		rc |= json_object_set_new(args, "type", json_string(o->type ? o->type : "all"));
	if (o->type != NULL &&
	    !one_of(o->type, (const char *const[]){"drop", "verdict", "all", NULL}))
		return ctl_usage_error(cmd, "--type '%s': drop, verdict or all", o->type);
	if (o->format != NULL) {
		if (!one_of(o->format, (const char *const[]){"prometheus", "json", NULL}))
			return ctl_usage_error(cmd, "--format '%s': prometheus or json", o->format);
		rc |= json_object_set_new(args, "format", json_string(o->format));
	}
	if (strcmp(oc->command, "identity.get") == 0) {
		errno = 0;
		v = strtoull(o->arg, &end, 10);
		if (o->arg[0] < '0' || o->arg[0] > '9' || *end != '\0' || errno != 0 || v == 0 ||
		    v > MG_ID_MAX)
			return ctl_usage_error(cmd, "'%s': an identity number, 1 to %u", o->arg,
			                       MG_ID_MAX);
		rc |= json_object_set_new(args, "id", json_integer((json_int_t)v));
	}
	if (strcmp(oc->command, "ip.get") == 0) {
		if (mg_ipcache_parse_prefix(o->arg, &e) < 0)
			return ctl_usage_error(cmd, "'%s': not an IP address or prefix", o->arg);
		rc |= json_object_set_new(args, "ip", json_string(o->arg));
	}
	if (rc != 0) {
		fprintf(stderr, "meshgatectl %s: out of memory\n", cmd);
		return CTL_EXIT_INTERNAL;
	}
	return CTL_EXIT_OK;
}

int
ctl_online(int argc, char **argv)
{
	const struct online_cmd *oc = NULL;
	struct online_opts o = {.out = ctl_default_output};
	json_t *args = NULL, *result = NULL;
	const char *socket;
	size_t i;
	int ret;

	for (i = 0; i < sizeof(online_cmds) / sizeof(online_cmds[0]); i++)
		if (strcmp(online_cmds[i].name, argv[0]) == 0)
			oc = &online_cmds[i];
	if (oc == NULL) {
		fprintf(stderr, "meshgatectl %s: not an online command\n", argv[0]);
		return CTL_EXIT_INTERNAL;
	}
	ret = parse_online(oc, argc, argv, &o);
	if (ret != CTL_EXIT_OK)
		return ret;
	if (o.help) {
		ctl_print_usage(oc->name, stdout);
		return CTL_EXIT_OK;
	}
	args = json_object();
	if (args == NULL) {
		fprintf(stderr, "meshgatectl %s: out of memory\n", oc->name);
		return CTL_EXIT_INTERNAL;
	}
	ret = build_args(oc, &o, args);
	if (ret != CTL_EXIT_OK)
		goto out;
	socket = ctl_socket_path(o.socket);
	if (strcmp(oc->command, "monitor") == 0) {
		ret = run_monitor(oc->name, socket, args, o.out);
		goto out;
	}
	ret = ctl_call(oc->name, socket, oc->command, args, &result);
	if (ret != CTL_EXIT_OK)
		goto out;
	if (o.out == CTL_OUT_JSON) {
		json_dumpf(result, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
		putchar('\n');
	} else {
		ret = oc->text(result);
	}
	if (fflush(stdout) != 0 && ret == CTL_EXIT_OK) {
		fprintf(stderr, "meshgatectl %s: writing the output: %s\n", oc->name,
		        strerror(errno));
		ret = CTL_EXIT_INTERNAL;
	}
out:
	json_decref(result);
	json_decref(args);
	return ret;
}
