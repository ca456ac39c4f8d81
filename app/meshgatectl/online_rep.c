/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Text of meshgate-replicator's online commands: `replicator status` (the
 * lease, Redis, a table of clusters and, in words, what is wrong) and
 * `replicator troubleshoot` (per cluster and endpoint, each check's
 * outcome).
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "online.h"

static const char *
causes(const json_t *o, char *buf, size_t size)
{
	const char *k;
	const json_t *v;
	size_t n = 0;
	buf[0] = '\0';
	json_object_foreach((json_t *)o, k, v)
	{
		int w = snprintf(buf + n, size - n, "%s%s=%lld", n ? "," : "", k,
		                 (long long)json_integer_value(v));
		if (w < 0 || (size_t)w >= size - n)
			break;
		n += (size_t)w;
	}
	return n ? buf : "-";
}

static void
rep_lease(const json_t *r)
{
	const json_t *l = json_object_get(r, "lease"), *rd = json_object_get(r, "redis");
	printf("redis %s: %s%s%s\n", jf(rd, "url"),
	       json_is_true(json_object_get(rd, "connected")) ? "connected" : "NOT CONNECTED",
	       jf(rd, "error")[0] != '-' && strlen(jf(rd, "error")) ? ": " : "",
	       json_string_length(json_object_get(rd, "error")) ? jf(rd, "error") : "");
	double call = json_number_value(json_object_get(rd, "call_seconds"));
	if (call >= 1.0)
		printf("redis: the writer has waited %.1f s for its current call (Redis slow or "
		       "hung; it gives up after redis_timeout)\n",
		       call);
	if (json_is_true(json_object_get(l, "holder")))
		printf("lease %s: held by this replica (token %.8s..., for %s s), %s renewals, "
		       "%s takeovers\n",
		       jf(l, "key"), jf(l, "holder_token"), jf(l, "token_age"), jf(l, "renewals"),
		       jf(l, "takeovers"));
	else
		printf("lease %s: STANDBY, held by token %.8s... (%s ms left); this replica's "
		       "token "
		       "%.8s...\n",
		       jf(l, "key"), jf(l, "holder_token"), jf(l, "other_pttl_ms"),
		       jf(l, "own_token"));
	printf("fenced writes %s, Redis losses repaired %s\n", jf(rd, "fenced"), jf(rd, "losses"));
}

int
text_rep_status(const json_t *r)
{
	const json_t *v;
	struct tbl t;
	size_t i;
	char b1[256], b2[256];
	rep_lease(r);
	putchar('\n');
	tbl_init(&t, (const char *const[]){"CLUSTER", "ID", "STATE", "REVISION", "IDENTITIES",
	                                   "IPS", "WRITTEN", "EVENTS", "LAST-EVENT-S",
	                                   "HEARTBEAT-S", "RESYNCS", NULL});
	json_array_foreach(json_object_get(r, "clusters"), i, v)
	{
		const json_t *en = json_object_get(v, "entries"),
		             *wr = json_object_get(v, "written");
		snprintf(b1, sizeof(b1), "%s/%s", jf(wr, "identities"), jf(wr, "ip"));
		tbl_row(&t, jf(v, "name"), jf(json_object_get(v, "config"), "id"), jf(v, "state"),
		        jf(json_object_get(v, "etcd"), "revision"), jf(en, "identities"),
		        jf(en, "ip"), b1, jf(v, "events"), jf(v, "last_event_age"),
		        jf(v, "last_heartbeat_age"), jf(v, "resyncs"));
	}
	int rc = tbl_done(&t, stdout);
	if (rc != CTL_EXIT_OK)
		return rc;
	putchar('\n');
	tbl_init(&t, (const char *const[]){"CLUSTER", "RECONNECTS", "RATE-WAITS", "QUEUE-WAITS",
	                                   "REFUSED", "SKIPPED(filter/id0)", NULL});
	json_array_foreach(json_object_get(r, "clusters"), i, v)
	{
		char sk[64];
		snprintf(sk, sizeof(sk), "%s/%s", jf(v, "filtered"), jf(v, "id_zero"));
		tbl_row(&t, jf(v, "name"), causes(json_object_get(v, "reconnects"), b1, sizeof(b1)),
		        jf(json_object_get(v, "rate_limit"), "waits"),
		        jf(json_object_get(v, "queue"), "waits"),
		        causes(json_object_get(v, "refused"), b2, sizeof(b2)), sk);
	}
	rc = tbl_done(&t, stdout);
	json_array_foreach(json_object_get(r, "clusters"), i, v)
	{
		const json_t *f;
		size_t j;
		if (json_string_length(json_object_get(v, "error")))
			printf("%s: %s\n", jf(v, "name"), jf(v, "error"));
		json_array_foreach(json_object_get(v, "refusals"), j, f) printf(
		        "%s: not written: %s: %s\n", jf(v, "name"), jf(f, "key"), jf(f, "why"));
	}
	json_array_foreach(json_object_get(r, "files"), i, v)
	{
		if (strcmp(jf(v, "status"), "error") == 0)
			printf("config file %s: %s\n", jf(v, "name"), jf(v, "error"));
	}
	if (json_string_length(json_object_get(r, "config_dir_error")))
		printf("clustermesh.config_dir: %s\n", jf(r, "config_dir_error"));
	return rc;
}

static void
cert_line(const char *what, const json_t *c)
{
	if (!json_is_true(json_object_get(c, "present"))) {
		if (json_string_length(json_object_get(c, "error")))
			printf("      %s: %s\n", what, jf(c, "error"));
		return;
	}
	printf("      %s: CN=%s issuer CN=%s valid %s .. %s%s%s\n", what, jf(c, "subject_cn"),
	       jf(c, "issuer_cn"), jf(c, "not_before"), jf(c, "not_after"),
	       json_is_true(json_object_get(c, "expired")) ? " EXPIRED" : "",
	       json_is_true(json_object_get(c, "not_yet_valid")) ? " NOT YET VALID" : "");
}

static void
etcd_lines(const json_t *e)
{
	const json_t *v;
	size_t i;
	if (!json_is_true(json_object_get(e, "ok"))) {
		printf("  etcd: FAILED: %s\n", jf(e, "error"));
		return;
	}
	printf("  etcd: version %s, cluster id %s, revision %s\n", jf(e, "version"),
	       jf(e, "cluster_id"), jf(e, "revision"));
	if (!json_is_true(json_object_get(e, "read_allowed")))
		printf("  read: DENIED: %s\n", jf(e, "read_error"));
	const char *keys[] = {"cluster_config", "has_cluster_config", "heartbeat"};
	for (int k = 0; k < 3; k++) {
		v = json_object_get(e, keys[k]);
		printf("  %s: %s%s%s\n", jf(v, "key"),
		       json_is_true(json_object_get(v, "present")) ? "present" : "absent",
		       json_is_string(json_object_get(v, "value")) ? " = " : "",
		       json_is_string(json_object_get(v, "value")) ? jf(v, "value") : "");
	}
	json_array_foreach(json_object_get(e, "canaries"), i, v)
	{
		if (json_is_true(json_object_get(v, "present")))
			printf("  canary %s: %s\n", jf(v, "key"), jf(v, "value"));
	}
}

int
text_rep_troubleshoot(const json_t *r)
{
	const json_t *c, *p;
	size_t i, j;
	printf("clustermesh config directory: %s\n", jf(r, "config_dir"));
	json_array_foreach(json_object_get(r, "clusters"), i, c)
	{
		printf("\ncluster %s (%s)\n", jf(c, "name"), jf(c, "file"));
		if (json_is_string(json_object_get(c, "config_error"))) {
			printf("  config: %s\n", jf(c, "config_error"));
			continue;
		}
		json_array_foreach(json_object_get(c, "endpoints"), j, p)
		{
			printf("  endpoint %s\n", jf(p, "endpoint"));
			const char *steps[] = {"dns", "tcp", "tls"};
			for (int s = 0; s < 3; s++) {
				const json_t *st = json_object_get(p, steps[s]);
				if (st == NULL || json_is_null(st))
					continue;
				if (!json_is_true(json_object_get(st, "ok")))
					printf("    %s: FAILED: %s\n", steps[s], jf(st, "error"));
				else if (s == 0)
					printf("    dns: ok\n");
				else if (s == 1)
					printf("    tcp: connected to %s\n", jf(st, "address"));
				else
					printf("    tls: %s %s, server name %s, client certificate "
					       "%s\n",
					       jf(st, "version"), jf(st, "cipher"),
					       json_is_true(json_object_get(st, "server_name_ok"))
					               ? "ok"
					               : "WRONG",
					       json_is_true(json_object_get(st, "client_accepted"))
					               ? "accepted"
					               : "REFUSED");
			}
			const json_t *certs = json_object_get(p, "certificates");
			cert_line("trusted CA", json_object_get(certs, "trusted_ca"));
			cert_line("client certificate", json_object_get(certs, "client"));
			cert_line("server certificate", json_object_get(certs, "server"));
		}
		etcd_lines(json_object_get(c, "etcd"));
	}
	if (json_array_size(json_object_get(r, "clusters")) == 0)
		printf("no cluster config files\n");
	return CTL_EXIT_OK;
}
