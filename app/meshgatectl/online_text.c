/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Each online command's result as text: the tables and lines
 * meshgatectl prints by default (with -o json the result is printed as the
 * daemon sent it). docs/cli.md shows them.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "online.h"

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

int
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
	if (json_is_true(json_object_get(rl, "running")))
		printf("; one running");
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

int
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

int
text_identity_list(const json_t *r)
{
	const json_t *v;
	struct tbl t;
	size_t i;

	tbl_init(&t, identity_head);
	json_array_foreach(json_object_get(r, "identities"), i, v) identity_row(&t, v);
	return truncation_note(r, json_object_get(r, "identities"), tbl_done(&t, stdout));
}

int
text_identity_get(const json_t *r)
{
	struct tbl t;

	tbl_init(&t, identity_head);
	identity_row(&t, r);
	return tbl_done(&t, stdout);
}

int
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

int
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

int
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

int
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
void
endpoint_str(const json_t *e, const char *a, const char *p, char *buf, size_t size)
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

int
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
		endpoint_str(v, "a", "pa", a, sizeof(a));
		endpoint_str(v, "b", "pb", b, sizeof(b));
		snprintf(exp, sizeof(exp), "%.1fs", (double)jint(v, "expires_in_ms") / 1000.0);
		tbl_row(&t, jf(v, "worker"), jf(v, "family"), jf(v, "proto"), a, b, jf(v, "state"),
		        exp, jf(v, "opened_by"));
	}
	rc = tbl_done(&t, stdout);
	printf("\n%zu of %s entries shown%s\n", json_array_size(entries), jf(r, "total"),
	       json_is_true(json_object_get(r, "truncated")) ? " (truncated: raise --limit)" : "");
	return rc;
}

int
text_ct_flush(const json_t *r)
{
	printf("flushed %s connection tracking entries\n", jf(r, "flushed"));
	return CTL_EXIT_OK;
}

int
text_sync_status(const json_t *r)
{
	const json_t *v, *rs, *rj;
	char resyncs[160], rejected[96], skipped[32];
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
	                                   "REJECTED(range/parse/cluster/heartbeat)",
	                                   "SKIPPED(no-identity)", "PORTS-DROPPED", "CONFLICTS",
	                                   "MASS-DELETE-REFUSALS", "DISCONNECTS", NULL});
	json_array_foreach(json_object_get(r, "clusters"), i, v)
	{
		rs = json_object_get(v, "resyncs");
		rj = json_object_get(v, "rejected");
		snprintf(resyncs, sizeof(resyncs), "%s/%s/%s/%s/%s/%s/%s", jf(rs, "epoch"),
		         jf(rs, "trimmed"), jf(rs, "replid"), jf(rs, "reconnect"), jf(rs, "config"),
		         jf(rs, "operator"), jf(rs, "repair"));
		snprintf(rejected, sizeof(rejected), "%s/%s/%s/%s", jf(rj, "range"),
		         jf(rj, "parse"), jf(rj, "cluster"), jf(rj, "heartbeat"));
		snprintf(skipped, sizeof(skipped), "%s",
		         jf(json_object_get(v, "skipped"), "no_identity"));
		tbl_row(&t, jf(v, "name"), jf(v, "full_syncs"), resyncs, rejected, skipped,
		        jf(v, "named_ports_dropped"), jf(v, "conflicts"),
		        jf(v, "mass_delete_refusals"), jf(v, "disconnects"));
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

int
text_sync_resync(const json_t *r)
{
	(void)r;
	printf("full resync of every cluster requested\n");
	return CTL_EXIT_OK;
}

int
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

int
text_reload(const json_t *r)
{
	printf("reloaded: policy revision %s, %s ipcache changes\n", jf(r, "revision"),
	       jf(r, "ipcache_changes"));
	return CTL_EXIT_OK;
}
