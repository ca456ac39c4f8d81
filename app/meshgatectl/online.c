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

/* ---- reading results ---- */

/* A scalar as text: strings as they are, numbers, yes/no, "-" for null or absent. */
static const char *
jtext(const json_t *v, char *buf, size_t size)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, size, "%.3f", json_real_value(v));
	else if (json_is_true(v))
		snprintf(buf, size, "yes");
	else if (json_is_false(v))
		snprintf(buf, size, "no");
	else
		snprintf(buf, size, "-");
	return buf;
}

/* Field @p key of @p o as text, in a rotating set of buffers so that a
 * printf may use several at once. */
static const char *
jf(const json_t *o, const char *key)
{
	static char bufs[8][64];
	static unsigned next;
	char *b = bufs[next++ % 8];

	return jtext(json_object_get(o, key), b, 64);
}

static long long
jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* ---- tables ---- */

/*
 * An aligned table: a header row, then rows of cells; a cell holding
 * newlines spans several lines (labels one per line, as cilium-dbg shows
 * them). Columns are separated by 3 spaces; the last is not padded.
 */
#define TBL_MAX_COLS 12

struct tbl {
	size_t ncols;
	const char *head[TBL_MAX_COLS];
	char **cells; /* nrows * ncols, owned */
	size_t nrows, cap;
	bool oom;
};

static void
tbl_init(struct tbl *t, const char *const *head)
{
	memset(t, 0, sizeof(*t));
	while (t->ncols < TBL_MAX_COLS && head[t->ncols] != NULL) {
		t->head[t->ncols] = head[t->ncols];
		t->ncols++;
	}
}

/* Add a row of t->ncols cells (NULL cells print as "-"). */
static void
tbl_row(struct tbl *t, ...)
{
	size_t i, cap, need;
	char **cells;
	va_list ap;

	if (t->oom)
		return;
	need = (t->nrows + 1) * t->ncols;
	if (need > t->cap) {
		cap = t->cap ? t->cap : t->ncols * 16;
		while (cap < need)
			cap *= 2;
		cells = realloc(t->cells, cap * sizeof(*cells));
		if (cells == NULL) {
			t->oom = true;
			return;
		}
		t->cells = cells;
		t->cap = cap;
	}
	va_start(ap, t);
	for (i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);
		char *c = strdup(s != NULL ? s : "-");

		if (c == NULL)
			t->oom = true;
		t->cells[t->nrows * t->ncols + i] = c;
	}
	va_end(ap);
	t->nrows++;
}

/* Length of line @p k of cell @p s (0 when the cell has fewer lines), and its start. */
static size_t
cell_line(const char *s, size_t k, const char **start)
{
	const char *nl;

	*start = "";
	if (s == NULL)
		return 0;
	while (k-- > 0) {
		s = strchr(s, '\n');
		if (s == NULL)
			return 0;
		s++;
	}
	*start = s;
	nl = strchr(s, '\n');
	return nl != NULL ? (size_t)(nl - s) : strlen(s);
}

static size_t
cell_nlines(const char *s)
{
	size_t n = 1;

	while (s != NULL && (s = strchr(s, '\n')) != NULL) {
		n++;
		s++;
	}
	return n;
}

static void
tbl_print(struct tbl *t, FILE *f)
{
	size_t w[TBL_MAX_COLS], r, c, k, n, len;
	const char *start;

	for (c = 0; c < t->ncols; c++)
		w[c] = strlen(t->head[c]);
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			for (k = 0; k < cell_nlines(t->cells[r * t->ncols + c]); k++) {
				len = cell_line(t->cells[r * t->ncols + c], k, &start);
				if (len > w[c])
					w[c] = len;
			}
	for (c = 0; c < t->ncols; c++)
		if (c + 1 < t->ncols)
			fprintf(f, "%-*s   ", (int)w[c], t->head[c]);
		else
			fprintf(f, "%s\n", t->head[c]);
	for (r = 0; r < t->nrows; r++) {
		n = 1;
		for (c = 0; c < t->ncols; c++)
			if (cell_nlines(t->cells[r * t->ncols + c]) > n)
				n = cell_nlines(t->cells[r * t->ncols + c]);
		for (k = 0; k < n; k++) {
			size_t last = 0;

			/* no trailing blanks: stop after the last non-empty cell */
			for (c = 0; c < t->ncols; c++)
				if (cell_line(t->cells[r * t->ncols + c], k, &start) > 0)
					last = c;
			for (c = 0; c <= last; c++) {
				len = cell_line(t->cells[r * t->ncols + c], k, &start);
				if (c < last)
					fprintf(f, "%.*s%*s   ", (int)len, start, (int)(w[c] - len),
					        "");
				else
					fprintf(f, "%.*s", (int)len, start);
			}
			fputc('\n', f);
		}
	}
}

static void
tbl_free(struct tbl *t)
{
	size_t i;

	for (i = 0; t->cells != NULL && i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* Print and free @p t. @return CTL_EXIT_OK, or CTL_EXIT_INTERNAL when out of memory. */
static int
tbl_done(struct tbl *t, FILE *f)
{
	bool oom = t->oom;

	if (!oom)
		tbl_print(t, f);
	tbl_free(t);
	if (oom)
		fprintf(stderr, "meshgatectl: out of memory\n");
	return oom ? CTL_EXIT_INTERNAL : CTL_EXIT_OK;
}

/*
 * The elements of array @p a joined by @p sep into a new string: strings
 * as they are, objects by @p fmt_obj (or "?"). NULL when out of memory.
 */
static char *
join(const json_t *a, const char *sep, void (*fmt_obj)(const json_t *, char *, size_t))
{
	char *s = NULL, buf[512];
	size_t len = 0, i;
	const json_t *v;
	FILE *m = open_memstream(&s, &len);

	if (m == NULL)
		return NULL;
	json_array_foreach(a, i, v)
	{
		if (json_is_object(v) && fmt_obj != NULL)
			fmt_obj(v, buf, sizeof(buf));
		else
			jtext(v, buf, sizeof(buf));
		fprintf(m, "%s%s", i ? sep : "", json_is_string(v) ? json_string_value(v) : buf);
	}
	if (fclose(m) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* ---- the commands' text output ---- */

static void
dur(long long s, char *buf, size_t size)
{
	if (s >= 86400)
		snprintf(buf, size, "%lldd%02lldh%02lldm", s / 86400, s % 86400 / 3600,
		         s % 3600 / 60);
	else if (s >= 3600)
		snprintf(buf, size, "%lldh%02lldm%02llds", s / 3600, s % 3600 / 60, s % 60);
	else if (s >= 60)
		snprintf(buf, size, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(buf, size, "%llds", s);
}

/* Bytes as MiB for the status lines (0 when absent). */
static double
mib(const json_t *v)
{
	return json_is_integer(v) ? (double)json_integer_value(v) / (1024.0 * 1024.0) : 0.0;
}

static int
text_status(const json_t *r)
{
	const json_t *cl = json_object_get(r, "cluster"), *pol = json_object_get(r, "policy");
	const json_t *rl = json_object_get(r, "reloads"), *ipc = json_object_get(r, "ipcache");
	const json_t *ct = json_object_get(r, "conntrack"), *kv = json_object_get(r, "kvstore");
	const json_t *ctl = json_object_get(r, "control"), *mon = json_object_get(r, "monitor");
	const json_t *v;
	char up[64], pct[32];
	struct tbl t;
	size_t i;
	int rc;

	dur(jint(r, "uptime_s"), up, sizeof(up));
	printf("meshgate %s, pid %s, up %s, %s\n", jf(r, "version"), jf(r, "pid"), up,
	       json_is_true(json_object_get(r, "ready")) ? "ready" : "NOT READY");
	printf("%-12s %s\n", "config:", jf(r, "config_file"));
	printf("%-12s %s (id %s)\n", "cluster:", jf(cl, "name"), jf(cl, "id"));
	printf("%-12s revision %s: %s policies, %s rules, %s skipped\n",
	       "policy:", jf(pol, "revision"), jf(pol, "policies"), jf(pol, "rules"),
	       jf(pol, "skipped"));
	printf("%-12s %s ok, %s failed", "reloads:", jf(rl, "ok"), jf(rl, "failed"));
	if (json_string_value(json_object_get(rl, "last_error")) != NULL)
		printf(" (last error: %s)", jf(rl, "last_error"));
	putchar('\n');
	printf("%-12s %s IPv4 + %s IPv6 entries; %s identities\n", "ipcache:", jf(ipc, "ipv4"),
	       jf(ipc, "ipv6"), jf(r, "identities"));
	printf("%-12s %s entries (%s created, %s expired)\n", "conntrack:", jf(ct, "entries"),
	       jf(ct, "created"), jf(ct, "expired"));
	if (json_is_object(kv)) {
		printf("%-12s %s of %s cluster(s) synced", "kvstore:", jf(kv, "synced"),
		       jf(kv, "clusters"));
		if (jint(kv, "stale") > 0)
			printf(", %s STALE (last state kept: see sync status)", jf(kv, "stale"));
		if (jint(kv, "removed") > 0)
			printf(", %s removed", jf(kv, "removed"));
		printf(", Redis %s\n", json_is_true(json_object_get(kv, "connected"))
		                               ? "connected"
		                               : "NOT connected (fail-static)");
	} else
		printf("%-12s not configured\n", "kvstore:");
	if (json_is_object(ctl))
		printf("%-12s %s clients; %s accepted, %s refused (too many clients), %s closed "
		       "idle, %s stuck monitors closed\n",
		       "control:", jf(ctl, "clients"), jf(ctl, "accepted"), jf(ctl, "refused_busy"),
		       jf(ctl, "closed_idle"), jf(ctl, "closed_stuck"));
	if (json_is_object(mon))
		printf("%-12s %s events sent, %s dropped (slow readers), %s lost (rings full)\n",
		       "monitor:", jf(mon, "events"), jf(mon, "dropped"), jf(mon, "ring_lost"));
	{
		const json_t *mem = json_object_get(r, "memory");

		if (json_is_object(mem)) {
			printf("%-12s ipcache %.1f MiB, policy %.1f MiB, conntrack %.1f MiB",
			       "memory:", mib(json_object_get(mem, "ipcache_bytes")),
			       mib(json_object_get(mem, "policy_bytes")),
			       mib(json_object_get(mem, "conntrack_bytes")));
			if (json_is_integer(json_object_get(mem, "allocated_bytes")))
				printf("; %s %.1f MiB allocated, %.1f MiB resident",
				       jf(mem, "allocator"),
				       mib(json_object_get(mem, "allocated_bytes")),
				       mib(json_object_get(mem, "resident_bytes")));
			putchar('\n');
		}
	}

	putchar('\n');
	tbl_init(&t, (const char *const[]){"PORT", "DEVICE", "PEER", "RX-PACKETS", "RX-BYTES",
	                                   "TX-PACKETS", "TX-BYTES", "DROPPED", NULL});
	json_array_foreach(json_object_get(r, "ports"), i, v) tbl_row(
	        &t, jf(v, "name"), jf(v, "device"), jf(v, "peer"), jf(v, "rx_packets"),
	        jf(v, "rx_bytes"), jf(v, "tx_packets"), jf(v, "tx_bytes"), jf(v, "dropped"));
	rc = tbl_done(&t, stdout);
	if (rc != CTL_EXIT_OK)
		return rc;

	putchar('\n');
	tbl_init(&t, (const char *const[]){"WORKER-LCORE", "LOOPS", "BUSY-LOOPS", "BUSY", NULL});
	json_array_foreach(json_object_get(r, "workers"), i, v)
	{
		const json_t *ratio = json_object_get(v, "busy_ratio");

		if (json_is_number(ratio))
			snprintf(pct, sizeof(pct), "%.1f%%", 100.0 * json_number_value(ratio));
		else
			snprintf(pct, sizeof(pct), "-");
		tbl_row(&t, jf(v, "lcore"), jf(v, "loops"), jf(v, "busy_loops"), pct);
	}
	return tbl_done(&t, stdout);
}

/* Flatten a JSON value into "key.path  value" rows. */
static void
flatten(struct tbl *t, const char *path, const json_t *v)
{
	char sub[512], buf[64];
	const char *key;
	json_t *child;
	size_t i;

	if (json_is_object(v) && json_object_size(v) > 0) {
		json_object_foreach((json_t *)v, key, child)
		{
			snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", key);
			flatten(t, sub, child);
		}
	} else if (json_is_array(v) && json_array_size(v) > 0) {
		json_array_foreach(v, i, child)
		{
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			flatten(t, sub, child);
		}
	} else {
		tbl_row(t, path,
		        json_is_object(v)  ? "{}"
		        : json_is_array(v) ? "[]"
		                           : jtext(v, buf, sizeof(buf)));
	}
}

static int
text_config(const json_t *r)
{
	struct tbl t;

	printf("# %s\n", jf(r, "file"));
	tbl_init(&t, (const char *const[]){"KEY", "VALUE", NULL});
	flatten(&t, "", json_object_get(r, "config"));
	return tbl_done(&t, stdout);
}

static void
fmt_named_port(const json_t *p, char *buf, size_t size)
{
	snprintf(buf, size, "%s %s/%s", jf(p, "name"), jf(p, "port"), jf(p, "protocol"));
}

static const char *
cluster_of(const json_t *o)
{
	const char *name = json_string_value(json_object_get(o, "cluster"));

	return name != NULL ? name : jf(o, "cluster_id");
}

static void
identity_row(struct tbl *t, const json_t *v)
{
	char *labels = join(json_object_get(v, "labels"), "\n", NULL);
	char *ports = join(json_object_get(v, "named_ports"), "\n", fmt_named_port);

	if (labels == NULL || ports == NULL)
		t->oom = true;
	tbl_row(t, jf(v, "id"), cluster_of(v), labels && labels[0] ? labels : "-",
	        ports && ports[0] ? ports : "-");
	free(labels);
	free(ports);
}

static const char *const identity_head[] = {"ID", "CLUSTER", "LABELS", "NAMED-PORTS", NULL};

/* Under a listing the daemon cut at --limit: say so (nothing when whole). */
static int
truncation_note(const json_t *r, const json_t *list, int rc)
{
	if (json_is_true(json_object_get(r, "truncated")))
		printf("\n%zu of %s shown (truncated: raise --limit)\n", json_array_size(list),
		       jf(r, "total"));
	return rc;
}

static int
text_identity_list(const json_t *r)
{
	const json_t *v;
	struct tbl t;
	size_t i;

	tbl_init(&t, identity_head);
	json_array_foreach(json_object_get(r, "identities"), i, v) identity_row(&t, v);
	return truncation_note(r, json_object_get(r, "identities"), tbl_done(&t, stdout));
}

static int
text_identity_get(const json_t *r)
{
	struct tbl t;

	tbl_init(&t, identity_head);
	identity_row(&t, r);
	return tbl_done(&t, stdout);
}

static int
text_ip_list(const json_t *r)
{
	const json_t *v;
	struct tbl t;
	size_t i;

	tbl_init(&t, (const char *const[]){"PREFIX", "IDENTITY", "CLUSTER", NULL});
	json_array_foreach(json_object_get(r, "entries"), i, v)
	        tbl_row(&t, jf(v, "prefix"), jf(v, "identity"), cluster_of(v));
	return truncation_note(r, json_object_get(r, "entries"), tbl_done(&t, stdout));
}

static int
text_ip_get(const json_t *r)
{
	char *labels = join(json_object_get(r, "labels"), "\n", NULL);
	const json_t *prefix = json_object_get(r, "prefix");
	struct tbl t;

	tbl_init(&t, (const char *const[]){"IP", "PREFIX", "IDENTITY", "CLUSTER", "LABELS", NULL});
	if (labels == NULL)
		t.oom = true;
	tbl_row(&t, jf(r, "ip"), json_is_null(prefix) ? "(none: world)" : jf(r, "prefix"),
	        jf(r, "identity"), cluster_of(r), labels && labels[0] ? labels : "-");
	free(labels);
	return tbl_done(&t, stdout);
}

static int
text_policy_get(const json_t *r)
{
	const json_t *v, *skipped = json_object_get(r, "skipped");
	struct tbl t;
	size_t i;
	int rc;

	printf("Policy revision %s\n\n", jf(r, "revision"));
	tbl_init(&t, (const char *const[]){"KIND", "NAMESPACE", "NAME", "CLUSTER", "RULES", "FILE",
	                                   NULL});
	json_array_foreach(json_object_get(r, "policies"), i, v)
	        tbl_row(&t, jf(v, "kind"), jf(v, "namespace"), jf(v, "name"), jf(v, "cluster"),
	                jf(v, "rules"), jf(v, "file"));
	rc = tbl_done(&t, stdout);
	if (rc != CTL_EXIT_OK || json_array_size(skipped) == 0)
		return rc;
	printf("\nSkipped rules (not enforced by a layer-4 gateway):\n");
	json_array_foreach(skipped, i, v) printf("%s:%s:%s: %s\n", jf(v, "file"), jf(v, "line"),
	                                         jf(v, "column"), jf(v, "message"));
	return CTL_EXIT_OK;
}

static int
text_policy_selectors(const json_t *r)
{
	const json_t *v, *users;
	char *ids, *us, buf[64];
	struct tbl t;
	size_t i;

	tbl_init(&t, (const char *const[]){"SELECTOR", "IDENTITIES", "USERS", NULL});
	json_array_foreach(json_object_get(r, "selectors"), i, v)
	{
		ids = join(json_object_get(v, "identities"), ", ", NULL);
		users = json_object_get(v, "users");
		us = json_is_array(users) ? join(users, "\n", NULL)
		                          : strdup(jtext(users, buf, sizeof(buf)));
		if (ids == NULL || us == NULL)
			t.oom = true;
		tbl_row(&t, jf(v, "selector"), ids && ids[0] ? ids : "(none)", us);
		free(ids);
		free(us);
	}
	return tbl_done(&t, stdout);
}

/* "10.0.0.1:80", "[fd00::1]:80", or the address alone without a port. */
static void
endpoint(const json_t *e, const char *a, const char *p, char *buf, size_t size)
{
	const char *addr = jf(e, a);
	const json_t *port = json_object_get(e, p);

	if (!json_is_integer(port))
		snprintf(buf, size, "%s", addr);
	else if (strchr(addr, ':') != NULL)
		snprintf(buf, size, "[%s]:%" JSON_INTEGER_FORMAT, addr, json_integer_value(port));
	else
		snprintf(buf, size, "%s:%" JSON_INTEGER_FORMAT, addr, json_integer_value(port));
}

static int
text_ct_list(const json_t *r)
{
	char a[80], b[80], exp[32];
	const json_t *v, *entries = json_object_get(r, "entries");
	struct tbl t;
	size_t i;
	int rc;

	tbl_init(&t, (const char *const[]){"WORKER", "FAMILY", "PROTO", "A", "B", "STATE",
	                                   "EXPIRES", "OPENED-BY", NULL});
	json_array_foreach(entries, i, v)
	{
		endpoint(v, "a", "pa", a, sizeof(a));
		endpoint(v, "b", "pb", b, sizeof(b));
		snprintf(exp, sizeof(exp), "%.1fs", (double)jint(v, "expires_in_ms") / 1000.0);
		tbl_row(&t, jf(v, "worker"), jf(v, "family"), jf(v, "proto"), a, b, jf(v, "state"),
		        exp, jf(v, "opened_by"));
	}
	rc = tbl_done(&t, stdout);
	printf("\n%zu of %s entries shown%s\n", json_array_size(entries), jf(r, "total"),
	       json_is_true(json_object_get(r, "truncated")) ? " (truncated: raise --limit)" : "");
	return rc;
}

static int
text_ct_flush(const json_t *r)
{
	printf("flushed %s connection tracking entries\n", jf(r, "flushed"));
	return CTL_EXIT_OK;
}

static int
text_sync_status(const json_t *r)
{
	const json_t *v, *rs, *rj;
	char resyncs[160], rejected[64];
	struct tbl t;
	size_t i;
	int rc;

	if (!json_is_true(json_object_get(r, "configured"))) {
		printf("kvstore sync is not configured\n");
		return CTL_EXIT_OK;
	}
	tbl_init(&t, (const char *const[]){"CLUSTER", "ID", "STATE", "CONNECTED", "PRESENT",
	                                   "ENTRIES", "EVENTS", "LAG-MS", "LAST-ID", NULL});
	json_array_foreach(json_object_get(r, "clusters"), i, v)
	        tbl_row(&t, jf(v, "name"), jf(v, "cluster_id"), jf(v, "state"), jf(v, "connected"),
	                jf(v, "present"), jf(v, "entries"), jf(v, "events"), jf(v, "lag_ms"),
	                jf(v, "last_id"));
	rc = tbl_done(&t, stdout);
	if (rc != CTL_EXIT_OK)
		return rc;
	putchar('\n');
	tbl_init(&t, (const char *const[]){"CLUSTER", "FULL-SYNCS",
	                                   "RESYNCS(epoch/trimmed/replid/reconnect/"
	                                   "config/operator/repair)",
	                                   "REJECTED(range/parse/cluster)", "CONFLICTS",
	                                   "MASS-DELETE-REFUSALS", "DISCONNECTS", NULL});
	json_array_foreach(json_object_get(r, "clusters"), i, v)
	{
		rs = json_object_get(v, "resyncs");
		rj = json_object_get(v, "rejected");
		snprintf(resyncs, sizeof(resyncs), "%s/%s/%s/%s/%s/%s/%s", jf(rs, "epoch"),
		         jf(rs, "trimmed"), jf(rs, "replid"), jf(rs, "reconnect"), jf(rs, "config"),
		         jf(rs, "operator"), jf(rs, "repair"));
		snprintf(rejected, sizeof(rejected), "%s/%s/%s", jf(rj, "range"), jf(rj, "parse"),
		         jf(rj, "cluster"));
		tbl_row(&t, jf(v, "name"), jf(v, "full_syncs"), resyncs, rejected,
		        jf(v, "conflicts"), jf(v, "mass_delete_refusals"), jf(v, "disconnects"));
	}
	rc = tbl_done(&t, stdout);
	/* What is wrong, in words: stale since when and why, removals due. */
	json_array_foreach(json_object_get(r, "clusters"), i, v)
	{
		const char *why = json_string_value(json_object_get(v, "why"));

		if (json_is_true(json_object_get(v, "stale")))
			printf("%s: STALE since %s (%s s, %s): %s; the last state is kept\n",
			       jf(v, "name"), jf(v, "stale_since"), jf(v, "stale_seconds"),
			       jf(v, "stale_reason"), why != NULL && why[0] ? why : "?");
		else if (!json_is_true(json_object_get(v, "synced")) &&
		         !json_is_true(json_object_get(v, "removed")) && why != NULL && why[0])
			printf("%s: not synced: %s\n", jf(v, "name"), why);
		if (json_is_true(json_object_get(v, "removing")))
			printf("%s: removal marker present: its state is removed at %s\n",
			       jf(v, "name"), jf(v, "removal_at"));
		else if (json_is_true(json_object_get(v, "removed")))
			printf("%s: removed (%s)\n", jf(v, "name"), why != NULL ? why : "");
	}
	return rc;
}

static int
text_sync_resync(const json_t *r)
{
	(void)r;
	printf("full resync of every cluster requested\n");
	return CTL_EXIT_OK;
}

static int
text_metrics(const json_t *r)
{
	const json_t *text = json_object_get(r, "text");

	if (json_is_string(text)) {
		fputs(json_string_value(text), stdout);
		return CTL_EXIT_OK;
	}
	json_dumpf(json_object_get(r, "metrics"), stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	putchar('\n');
	return CTL_EXIT_OK;
}

static int
text_reload(const json_t *r)
{
	printf("reloaded: policy revision %s, %s ipcache changes\n", jf(r, "revision"),
	       jf(r, "ipcache_changes"));
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
		endpoint(ev, "src", "sport", src, sizeof(src));
		endpoint(ev, "dst", "dport", dst, sizeof(dst));
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
