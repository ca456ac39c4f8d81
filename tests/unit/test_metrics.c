/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/metrics: the Prometheus writer and renderer (exact text for a small
 * snapshot, escaping, every drop reason), the HTTP endpoint through a
 * plain socket client (GET, HEAD, 404, 405, 503, bind errors; slow
 * clients cut after the timeout, evicted or refused, and counted), the
 * telemetry dicts (through the JSON back end, which shares every line of
 * the commands with the rte_tel_data one) and, when running as root, one
 * real DPDK telemetry socket after an EAL init with --no-huge.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_telemetry.h>

#include "mg_metrics.h"
#include "mg_test.h"

/* ---- the fixture ---- */

static void
fill(struct mg_metrics_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->version, sizeof(s->version), "0.1.0");
	s->uptime_seconds = 42;
	s->n_ports = 2;
	s->ports[0] = (struct mg_metrics_port){"inside", 10, 740, 8, 592, 2};
	s->ports[1] = (struct mg_metrics_port){"out-side", 5, 300, 9, 700, 0};
	s->verdicts = (struct mg_metrics_verdicts){6, 1, 2, 9, 3, 4, 5, 7, 8, 11};
	for (unsigned r = 0; r < MG_DROP__MAX; r++)
		s->drops[r] = 100 + r;
	s->drops[MG_DROP_NONE] = 999; /* never shown */
	s->ipcache_ipv4 = 12;
	s->ipcache_ipv6 = 3;
	s->n_identity_clusters = 2;
	s->identities[0] = (struct mg_metrics_identities){"cluster-1", 5};
	s->identities[1] = (struct mg_metrics_identities){"local", 3};
	s->policy = (struct mg_metrics_policy){2, 17, 5, 1, 1};
	s->conntrack = (struct mg_metrics_conntrack){3, 1, 4096, 30, 27, 2, 1};
	s->n_kvstore = 1;
	s->kvstore[0] = (struct mg_metrics_kvstore){.cluster = "cluster-1",
	                                            .connected = true,
	                                            .synced = true,
	                                            .entries = 40,
	                                            .events = 100,
	                                            .resyncs = {1, 2, 3, 4},
	                                            .full_syncs = 2,
	                                            .lag_ms = 1500,
	                                            .rejected_range = 6,
	                                            .rejected_parse = 7,
	                                            .conflicts = 8,
	                                            .mass_delete_refusals = 9,
	                                            .disconnects = 10};
	s->n_workers = 2;
	s->workers[0] = (struct mg_metrics_worker){1, 1000, 250, 0.25};
	s->workers[1] = (struct mg_metrics_worker){2, 0, 0, 0.0};
	s->http_cut[MG_METRICS_HTTP_CUT_REQUEST_TIMEOUT] = 31;
	s->http_cut[MG_METRICS_HTTP_CUT_RESPONSE_TIMEOUT] = 32;
	s->http_cut[MG_METRICS_HTTP_CUT_EVICTED] = 33;
	s->http_cut[MG_METRICS_HTTP_CUT_REFUSED] = 34;
	s->control = (struct mg_metrics_control){.clients = 3,
	                                         .accepted = 40,
	                                         .requests = 50,
	                                         .errors = 7,
	                                         .denied = 2,
	                                         .refused_busy = 4,
	                                         .closed_idle = 5,
	                                         .closed_slow = 6,
	                                         .closed_oversize = 1,
	                                         .closed_stuck = 9,
	                                         .monitor_events = 600,
	                                         .monitor_dropped = 70,
	                                         .monitor_ring_lost = 80};
}

static char *
render(const struct mg_metrics_snapshot *s)
{
	struct mg_metrics_buf b;

	mg_metrics_buf_init(&b);
	if (mg_metrics_render(s, &b) != 0) {
		mg_metrics_buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* @p text contains @p line as a whole line. */
static bool
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

/* ---- writer ---- */

static void
test_writer_escaping(void)
{
	struct mg_metrics_buf b;

	mg_metrics_buf_init(&b);
	mg_metrics_write_family(&b, "x_total", MG_METRICS_COUNTER, "a \\ b\nc \"q\"");
	mg_metrics_write_u64(&b, "x_total", (const char *const[]){"a", "q\"b\\s\nn", "b", "", NULL},
	                     18446744073709551615ull);
	mg_metrics_write_u64(&b, "x_total", NULL, 0);
	CU_ASSERT_EQUAL(b.err, 0);
	CU_ASSERT_STRING_EQUAL(b.data,
	                       "# HELP x_total a \\\\ b\\nc \"q\"\n"
	                       "# TYPE x_total counter\n"
	                       "x_total{a=\"q\\\"b\\\\s\\nn\",b=\"\"} 18446744073709551615\n"
	                       "x_total 0\n");
	CU_ASSERT_EQUAL(b.len, strlen(b.data));
	mg_metrics_buf_free(&b);
}

static void
test_writer_double(void)
{
	struct mg_metrics_buf b;

	mg_metrics_buf_init(&b);
	mg_metrics_write_family(&b, "g", MG_METRICS_GAUGE, "h");
	mg_metrics_write_double(&b, "g", NULL, 0.25);
	mg_metrics_write_double(&b, "g", NULL, 0.1);
	mg_metrics_write_double(&b, "g", NULL, 1.0 / 3.0);
	mg_metrics_write_double(&b, "g", NULL, 0.0 / 0.0);
	mg_metrics_write_double(&b, "g", NULL, 1.0 / 0.0);
	mg_metrics_write_double(&b, "g", NULL, -1.0 / 0.0);
	mg_metrics_write_double(&b, "g", NULL, 1.5e300);
	CU_ASSERT_STRING_EQUAL(b.data, "# HELP g h\n# TYPE g gauge\n"
	                               "g 0.25\ng 0.1\ng 0.33333333333333331\ng NaN\ng +Inf\n"
	                               "g -Inf\ng 1.5e+300\n");
	mg_metrics_buf_free(&b);
}

/* A histogram: cumulative buckets, +Inf = count, _sum, _count; labels before le. */
static void
test_writer_histogram(void)
{
	static const double bounds[] = {0.005, 0.1, 1, 2.5};
	static const uint64_t counts[] = {1, 0, 3, 2};
	struct mg_metrics_buf b;

	mg_metrics_buf_init(&b);
	mg_metrics_write_family(&b, "h_seconds", MG_METRICS_HISTOGRAM, "h");
	mg_metrics_write_histogram(&b, "h_seconds", (const char *const[]){"c", "x\"y", NULL},
	                           bounds, counts, 4, 7.25, 9);
	mg_metrics_write_histogram(&b, "h_seconds", NULL, bounds, counts, 0, 0.0, 0);
	CU_ASSERT_STRING_EQUAL(b.data, "# HELP h_seconds h\n# TYPE h_seconds histogram\n"
	                               "h_seconds_bucket{c=\"x\\\"y\",le=\"0.005\"} 1\n"
	                               "h_seconds_bucket{c=\"x\\\"y\",le=\"0.1\"} 1\n"
	                               "h_seconds_bucket{c=\"x\\\"y\",le=\"1\"} 4\n"
	                               "h_seconds_bucket{c=\"x\\\"y\",le=\"2.5\"} 6\n"
	                               "h_seconds_bucket{c=\"x\\\"y\",le=\"+Inf\"} 9\n"
	                               "h_seconds_sum{c=\"x\\\"y\"} 7.25\n"
	                               "h_seconds_count{c=\"x\\\"y\"} 9\n"
	                               "h_seconds_bucket{le=\"+Inf\"} 0\n"
	                               "h_seconds_sum 0\nh_seconds_count 0\n");
	CU_ASSERT_EQUAL(b.err, 0);
	mg_metrics_buf_free(&b);
}

static void
test_writer_grows(void)
{
	struct mg_metrics_buf b;
	char name[40];

	mg_metrics_buf_init(&b);
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "m%u", i);
		mg_metrics_write_u64(&b, name, NULL, i);
	}
	CU_ASSERT_EQUAL(b.err, 0);
	CU_ASSERT_TRUE(b.cap > 4096);
	CU_ASSERT_TRUE(has_line(b.data, "m0 0"));
	CU_ASSERT_TRUE(has_line(b.data, "m4999 4999"));
	CU_ASSERT_EQUAL(b.len, strlen(b.data));
	mg_metrics_buf_free(&b);
	CU_ASSERT_PTR_NULL(b.data);
}

/* ---- renderer ---- */

static const char expected_head[] =
        "# HELP meshgate_build_info Always 1; the version label names the build.\n"
        "# TYPE meshgate_build_info gauge\n"
        "meshgate_build_info{version=\"0.1.0\"} 1\n"
        "# HELP meshgate_uptime_seconds Seconds since the daemon started.\n"
        "# TYPE meshgate_uptime_seconds gauge\n"
        "meshgate_uptime_seconds 42\n"
        "# HELP meshgate_port_packets_total Frames on the port, by direction: rx received, "
        "tx sent.\n"
        "# TYPE meshgate_port_packets_total counter\n"
        "meshgate_port_packets_total{port=\"inside\",direction=\"rx\"} 10\n"
        "meshgate_port_packets_total{port=\"out-side\",direction=\"rx\"} 5\n"
        "meshgate_port_packets_total{port=\"inside\",direction=\"tx\"} 8\n"
        "meshgate_port_packets_total{port=\"out-side\",direction=\"tx\"} 9\n"
        "# HELP meshgate_port_bytes_total Bytes on the port, by direction: rx received, "
        "tx sent.\n"
        "# TYPE meshgate_port_bytes_total counter\n"
        "meshgate_port_bytes_total{port=\"inside\",direction=\"rx\"} 740\n"
        "meshgate_port_bytes_total{port=\"out-side\",direction=\"rx\"} 300\n"
        "meshgate_port_bytes_total{port=\"inside\",direction=\"tx\"} 592\n"
        "meshgate_port_bytes_total{port=\"out-side\",direction=\"tx\"} 700\n"
        "# HELP meshgate_port_dropped_total Frames received on the port and not forwarded, "
        "for any reason.\n"
        "# TYPE meshgate_port_dropped_total counter\n"
        "meshgate_port_dropped_total{port=\"inside\"} 2\n"
        "meshgate_port_dropped_total{port=\"out-side\"} 0\n"
        /* allowed 6, denied_egress 1, denied_ingress 2: egress allowed
         * what ingress then judged (6 + 2) */
        "# HELP meshgate_policy_verdicts_total IP packets judged by the policy, by direction "
        "(egress is checked first, ingress only after egress allowed) and action; conntrack "
        "passes are counted apart.\n"
        "# TYPE meshgate_policy_verdicts_total counter\n"
        "meshgate_policy_verdicts_total{direction=\"egress\",action=\"allowed\"} 8\n"
        "meshgate_policy_verdicts_total{direction=\"egress\",action=\"denied\"} 1\n"
        "meshgate_policy_verdicts_total{direction=\"ingress\",action=\"allowed\"} 6\n"
        "meshgate_policy_verdicts_total{direction=\"ingress\",action=\"denied\"} 2\n";

static void
test_render_exact(void)
{
	struct mg_metrics_snapshot *s = calloc(1, sizeof(*s));
	char *t;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	fill(s);
	t = render(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(strncmp(t, expected_head, strlen(expected_head)), 0);
	if (strncmp(t, expected_head, strlen(expected_head)) != 0)
		fprintf(stderr, "got:\n%.*s\n", (int)strlen(expected_head), t);
	static const char *const lines[] = {
	        "meshgate_verdict_ct_tracked_total 9",
	        "meshgate_verdict_ct_rechecked_total 3",
	        "meshgate_verdict_ct_related_total 4",
	        "meshgate_verdict_fragments_passed_total 5",
	        "meshgate_verdict_arp_passed_total 7",
	        "meshgate_verdict_nd_passed_total 8",
	        "meshgate_verdict_non_ip_passed_total 11",
	        "# TYPE meshgate_drops_total counter",
	        "# TYPE meshgate_ipcache_entries gauge",
	        "meshgate_ipcache_entries{family=\"ipv4\"} 12",
	        "meshgate_ipcache_entries{family=\"ipv6\"} 3",
	        "# TYPE meshgate_identities gauge",
	        "meshgate_identities{cluster=\"cluster-1\"} 5",
	        "meshgate_identities{cluster=\"local\"} 3",
	        "meshgate_policy_policies 2",
	        "meshgate_policy_rules 17",
	        "meshgate_policy_revision 5",
	        "# TYPE meshgate_policy_reloads_total counter",
	        "meshgate_policy_reloads_total{result=\"ok\"} 1",
	        "meshgate_policy_reloads_total{result=\"failed\"} 1",
	        "meshgate_conntrack_entries 3",
	        "meshgate_conntrack_fragments 1",
	        "meshgate_conntrack_memory_bytes 4096",
	        "meshgate_conntrack_created_total 30",
	        "meshgate_conntrack_expired_total 27",
	        "meshgate_conntrack_full_total 2",
	        "meshgate_conntrack_fragments_full_total 1",
	        "meshgate_kvstore_connected{cluster=\"cluster-1\"} 1",
	        "meshgate_kvstore_synced{cluster=\"cluster-1\"} 1",
	        "meshgate_kvstore_entries{cluster=\"cluster-1\"} 40",
	        "meshgate_kvstore_events_total{cluster=\"cluster-1\"} 100",
	        "meshgate_kvstore_full_syncs_total{cluster=\"cluster-1\"} 2",
	        "meshgate_kvstore_conflicts_total{cluster=\"cluster-1\"} 8",
	        "meshgate_kvstore_mass_delete_refusals_total{cluster=\"cluster-1\"} 9",
	        "meshgate_kvstore_disconnects_total{cluster=\"cluster-1\"} 10",
	        "meshgate_kvstore_resyncs_total{cluster=\"cluster-1\",cause=\"epoch\"} 1",
	        "meshgate_kvstore_resyncs_total{cluster=\"cluster-1\",cause=\"trimmed\"} 2",
	        "meshgate_kvstore_resyncs_total{cluster=\"cluster-1\",cause=\"replid\"} 3",
	        "meshgate_kvstore_resyncs_total{cluster=\"cluster-1\",cause=\"reconnect\"} 4",
	        "meshgate_kvstore_rejected_total{cluster=\"cluster-1\",reason=\"range\"} 6",
	        "meshgate_kvstore_rejected_total{cluster=\"cluster-1\",reason=\"parse\"} 7",
	        "# TYPE meshgate_kvstore_lag_seconds gauge",
	        "meshgate_kvstore_lag_seconds{cluster=\"cluster-1\"} 1.5",
	        "meshgate_worker_loops_total{worker=\"0\"} 1000",
	        "meshgate_worker_loops_total{worker=\"1\"} 0",
	        "meshgate_worker_busy_loops_total{worker=\"0\"} 250",
	        "# TYPE meshgate_worker_busy_ratio gauge",
	        "meshgate_worker_busy_ratio{worker=\"0\"} 0.25",
	        "meshgate_worker_busy_ratio{worker=\"1\"} 0",
	        "# TYPE meshgate_metrics_http_connections_cut_total counter",
	        "meshgate_metrics_http_connections_cut_total{reason=\"request_timeout\"} 31",
	        "meshgate_metrics_http_connections_cut_total{reason=\"response_timeout\"} 32",
	        "meshgate_metrics_http_connections_cut_total{reason=\"evicted\"} 33",
	        "meshgate_control_clients 3",
	        "meshgate_control_connections_total 40",
	        "meshgate_control_connections_closed_total{reason=\"busy\"} 4",
	        "meshgate_control_connections_closed_total{reason=\"stuck\"} 9",
	        "meshgate_control_request_errors_total{reason=\"denied\"} 2",
	        "meshgate_control_request_errors_total{reason=\"other\"} 5",
	        "meshgate_monitor_events_total 600",
	        "meshgate_monitor_events_lost_total{where=\"subscriber\"} 70",
	        "meshgate_monitor_events_lost_total{where=\"ring\"} 80",
	        "meshgate_metrics_http_connections_cut_total{reason=\"refused\"} 34",
	};
	for (size_t i = 0; i < MG_ARRAY_SIZE(lines); i++) {
		if (!has_line(t, lines[i]))
			fprintf(stderr, "missing line: %s\n", lines[i]);
		CU_ASSERT_TRUE(has_line(t, lines[i]));
	}
	CU_ASSERT_PTR_NULL(strstr(t, "999"));
	CU_ASSERT_EQUAL(t[strlen(t) - 1], '\n');
	free(t);
	free(s);
}

/* Every family the endpoint serves is in docs/metrics.md's tables. */
static void
test_families_documented(void)
{
	struct mg_metrics_snapshot *s = calloc(1, sizeof(*s));
	char path[512], *doc, *t, *save = NULL;
	size_t len;
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	snprintf(path, sizeof(path), "%s/docs/metrics.md", MG_SOURCE_ROOT);
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	doc = calloc(1, 1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
	len = fread(doc, 1, (1 << 20) - 1, f);
	fclose(f);
	CU_ASSERT(len > 0);
	fill(s);
	t = render(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (char *l = strtok_r(t, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		char name[128], cell[140];

		if (strncmp(l, "# TYPE ", 7) != 0 || sscanf(l + 7, "%127s", name) != 1)
			continue;
		snprintf(cell, sizeof(cell), "| `%s` |", name);
		if (strstr(doc, cell) == NULL)
			fprintf(stderr, "docs/metrics.md does not list %s\n", name);
		CU_ASSERT_PTR_NOT_NULL(strstr(doc, cell));
	}
	free(t);
	free(doc);
	free(s);
}

/*
 * The structure, line by line: every family has exactly one HELP then one
 * TYPE line, and its samples follow them; names are meshgate_*, counters
 * end in _total; no label is named after an address or an identity.
 */
static void
test_render_structure(void)
{
	struct mg_metrics_snapshot *s = calloc(1, sizeof(*s));
	char *t, *save = NULL, family[128] = "", seen[8192] = " ";
	unsigned families = 0, samples = 0;
	bool typed = false;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	fill(s);
	t = render(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (char *l = strtok_r(t, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		char name[128], type[16], key[140];

		if (strncmp(l, "# HELP ", 7) == 0) {
			CU_ASSERT_EQUAL(sscanf(l + 7, "%127s", name), 1);
			snprintf(key, sizeof(key), " %s ", name);
			CU_ASSERT_PTR_NULL(strstr(seen, key)); /* once per family */
			strncat(seen, key + 1, sizeof(seen) - strlen(seen) - 1);
			snprintf(family, sizeof(family), "%s", name);
			CU_ASSERT_EQUAL(strncmp(name, "meshgate_", 9), 0);
			families++;
			typed = false;
		} else if (strncmp(l, "# TYPE ", 7) == 0) {
			CU_ASSERT_EQUAL(sscanf(l + 7, "%127s %15s", name, type), 2);
			CU_ASSERT_STRING_EQUAL(name, family);
			CU_ASSERT_FALSE(typed);
			typed = true;
			size_t n = strlen(name);
			bool total = n > 6 && strcmp(name + n - 6, "_total") == 0;
			CU_ASSERT_TRUE(strcmp(type, "counter") == 0
			                       ? total
			                       : strcmp(type, "gauge") == 0 && !total);
		} else {
			size_t n = strcspn(l, "{ ");

			CU_ASSERT_TRUE(typed);
			CU_ASSERT_EQUAL(n, strlen(family));
			CU_ASSERT_EQUAL(strncmp(l, family, n), 0);
			CU_ASSERT_PTR_NULL(strstr(l, "ip=\""));
			CU_ASSERT_PTR_NULL(strstr(l, "identity=\""));
			CU_ASSERT_PTR_NULL(strstr(l, "addr"));
			samples++;
		}
	}
	/* 30 drop reasons, 2 ports, 1 kvstore cluster, 2 workers, 2 identity clusters, 4 cut reasons;
	 * the port drivers' 3 families: 2 + 2 + 4 samples. */
	CU_ASSERT_EQUAL(families, 60);
	CU_ASSERT_EQUAL(samples, 103 + MG_DROP__MAX - 1);
	free(t);
	free(s);
}

static void
test_render_every_drop(void)
{
	struct mg_metrics_snapshot *s = calloc(1, sizeof(*s));
	char line[256], *t;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	fill(s);
	t = render(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (unsigned r = 1; r < MG_DROP__MAX; r++) {
		const char *dir = r == MG_DROP_POLICY_EGRESS    ? "egress"
		                  : r == MG_DROP_POLICY_INGRESS ? "ingress"
		                                                : "none";

		snprintf(line, sizeof(line),
		         "meshgate_drops_total{reason=\"%s\",direction=\"%s\"} %u",
		         mg_drop_label(r), dir, 100 + r);
		CU_ASSERT_TRUE(has_line(t, line));
	}
	CU_ASSERT_PTR_NULL(strstr(t, "reason=\"none\""));
	free(t);

	/* Zeros too, with nothing else in the snapshot. */
	memset(s, 0, sizeof(*s));
	t = render(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	for (unsigned r = 1; r < MG_DROP__MAX; r++) {
		snprintf(line, sizeof(line),
		         "meshgate_drops_total{reason=\"%s\",direction=\"%s\"} 0", mg_drop_label(r),
		         mg_metrics_drop_direction(r));
		CU_ASSERT_TRUE(has_line(t, line));
	}
	CU_ASSERT_TRUE(has_line(t, "meshgate_build_info{version=\"\"} 1"));
	CU_ASSERT_PTR_NULL(strstr(t, "{port="));
	free(t);
	free(s);
}

/*
 * meshgate_policy_verdicts_total from the data path's three counters:
 * ingress is judged only for what egress allowed, so egress's allowed
 * count holds ingress's denials too, and each direction adds up.
 */
static void
test_render_policy_verdicts(void)
{
	struct mg_metrics_snapshot *s = calloc(1, sizeof(*s));
	struct mg_dp_counters c;
	char *t;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memset(&c, 0, sizeof(c));
	c.allowed = 100;
	c.denied_egress = 7;
	c.denied_ingress = 30;
	mg_metrics_snapshot_set_counters(s, &c, 0);
	t = render(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_TRUE(has_line(
	        t, "meshgate_policy_verdicts_total{direction=\"egress\",action=\"allowed\"} 130"));
	CU_ASSERT_TRUE(has_line(
	        t, "meshgate_policy_verdicts_total{direction=\"egress\",action=\"denied\"} 7"));
	CU_ASSERT_TRUE(has_line(
	        t, "meshgate_policy_verdicts_total{direction=\"ingress\",action=\"allowed\"} 100"));
	CU_ASSERT_TRUE(has_line(
	        t, "meshgate_policy_verdicts_total{direction=\"ingress\",action=\"denied\"} 30"));
	/* The old names are gone, not kept as aliases. */
	CU_ASSERT_PTR_NULL(strstr(t, "meshgate_verdict_allowed_total"));
	CU_ASSERT_PTR_NULL(strstr(t, "meshgate_verdict_denied_total"));
	CU_ASSERT_PTR_NULL(strstr(t, "_rx_packets_total"));
	CU_ASSERT_PTR_NULL(strstr(t, "_tx_bytes_total"));
	free(t);
	free(s);
}

static void
test_render_escapes_names(void)
{
	struct mg_metrics_snapshot *s = calloc(1, sizeof(*s));
	char *t;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	s->n_ports = 1;
	snprintf(s->ports[0].name, sizeof(s->ports[0].name), "a\"b\\c\nd");
	s->ports[0].rx_packets = 3;
	t = render(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_TRUE(has_line(t, "meshgate_port_packets_total{port=\"a\\\"b\\\\c\\nd\","
	                           "direction=\"rx\"} 3"));
	free(t);
	/* Counts beyond the arrays are clamped, never read past them. */
	s->n_ports = 1000;
	s->n_kvstore = 1000;
	s->n_workers = 1000;
	s->n_identity_clusters = 1000;
	t = render(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_TRUE(has_line(t, "meshgate_worker_loops_total{worker=\"127\"} 0"));
	CU_ASSERT_FALSE(has_line(t, "meshgate_worker_loops_total{worker=\"128\"} 0"));
	free(t);
	free(s);
}

/* ---- snapshot helpers ---- */

static void
test_snapshot_helpers(void)
{
	struct mg_metrics_snapshot *s = calloc(1, sizeof(*s));
	struct mg_dp_counters c;
	struct mg_ct_stats ct = {
	        .entries = 5, .frags = 6, .created = 7, .expired = 8, .full = 9, .frag_full = 10};
	struct mg_kv_sync_stats kv;
	struct mg_metrics_worker w = {0};

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memset(&c, 0, sizeof(c));
	c.rx_pkts[1] = 11;
	c.rx_bytes[1] = 12;
	c.tx_pkts[1] = 13;
	c.tx_bytes[1] = 14;
	c.port_drops[1] = 15;
	c.rx_pkts[2] = 99; /* beyond n_ports */
	c.allowed = 1;
	c.denied_egress = 2;
	c.denied_ingress = 3;
	c.arp = 4;
	c.nd = 5;
	c.non_ip = 6;
	c.ct_tracked = 7;
	c.ct_rechecked = 8;
	c.ct_related = 9;
	c.frag_passed = 10;
	c.drops[MG_DROP_TX_FULL] = 77;
	mg_metrics_snapshot_set_counters(s, &c, 2);
	CU_ASSERT_EQUAL(s->n_ports, 2);
	CU_ASSERT_EQUAL(s->ports[1].rx_packets, 11);
	CU_ASSERT_EQUAL(s->ports[1].rx_bytes, 12);
	CU_ASSERT_EQUAL(s->ports[1].tx_packets, 13);
	CU_ASSERT_EQUAL(s->ports[1].tx_bytes, 14);
	CU_ASSERT_EQUAL(s->ports[1].dropped, 15);
	CU_ASSERT_EQUAL(s->ports[2].rx_packets, 0);
	CU_ASSERT_EQUAL(s->verdicts.allowed, 1);
	CU_ASSERT_EQUAL(s->verdicts.denied_egress, 2);
	CU_ASSERT_EQUAL(s->verdicts.denied_ingress, 3);
	CU_ASSERT_EQUAL(s->verdicts.arp_passed, 4);
	CU_ASSERT_EQUAL(s->verdicts.nd_passed, 5);
	CU_ASSERT_EQUAL(s->verdicts.non_ip_passed, 6);
	CU_ASSERT_EQUAL(s->verdicts.ct_tracked, 7);
	CU_ASSERT_EQUAL(s->verdicts.ct_rechecked, 8);
	CU_ASSERT_EQUAL(s->verdicts.ct_related, 9);
	CU_ASSERT_EQUAL(s->verdicts.fragments_passed, 10);
	CU_ASSERT_EQUAL(s->drops[MG_DROP_TX_FULL], 77);
	mg_metrics_snapshot_set_counters(s, &c, 1000);
	CU_ASSERT_EQUAL(s->n_ports, MG_METRICS_MAX_PORTS);

	mg_metrics_snapshot_set_ct(s, &ct, 4096);
	CU_ASSERT_EQUAL(s->conntrack.entries, 5);
	CU_ASSERT_EQUAL(s->conntrack.fragments, 6);
	CU_ASSERT_EQUAL(s->conntrack.created, 7);
	CU_ASSERT_EQUAL(s->conntrack.expired, 8);
	CU_ASSERT_EQUAL(s->conntrack.full, 9);
	CU_ASSERT_EQUAL(s->conntrack.fragments_full, 10);
	CU_ASSERT_EQUAL(s->conntrack.memory_bytes, 4096);

	memset(&kv, 0, sizeof(kv));
	snprintf(kv.name, sizeof(kv.name), "east");
	kv.connected = true;
	kv.resyncs[MG_KV_RESYNC_REPLID] = 3;
	kv.lag_ms = 250;
	kv.rejected_parse = 4;
	kv.disconnects = 2;
	for (unsigned i = 0; i < MG_METRICS_MAX_CLUSTERS; i++)
		CU_ASSERT_EQUAL(mg_metrics_snapshot_add_kvstore(s, &kv), 0);
	CU_ASSERT_EQUAL(mg_metrics_snapshot_add_kvstore(s, &kv), -ENOSPC);
	CU_ASSERT_EQUAL(s->n_kvstore, MG_METRICS_MAX_CLUSTERS);
	CU_ASSERT_STRING_EQUAL(s->kvstore[63].cluster, "east");
	CU_ASSERT_TRUE(s->kvstore[0].connected);
	CU_ASSERT_FALSE(s->kvstore[0].synced);
	CU_ASSERT_EQUAL(s->kvstore[0].resyncs[MG_KV_RESYNC_REPLID], 3);
	CU_ASSERT_EQUAL(s->kvstore[0].lag_ms, 250);
	CU_ASSERT_EQUAL(s->kvstore[0].rejected_parse, 4);
	CU_ASSERT_EQUAL(s->kvstore[0].disconnects, 2);

	mg_metrics_worker_update(&w, 1000, 100);
	CU_ASSERT_DOUBLE_EQUAL(w.busy_ratio, 0.1, 1e-12);
	mg_metrics_worker_update(&w, 2000, 600);
	CU_ASSERT_DOUBLE_EQUAL(w.busy_ratio, 0.5, 1e-12);
	mg_metrics_worker_update(&w, 2000, 600);
	CU_ASSERT_DOUBLE_EQUAL(w.busy_ratio, 0.0, 1e-12);
	CU_ASSERT_EQUAL(w.loops, 2000);
	CU_ASSERT_EQUAL(w.busy_loops, 600);
	mg_metrics_worker_update(&w, 10, 10); /* restarted counters */
	CU_ASSERT_DOUBLE_EQUAL(w.busy_ratio, 1.0, 1e-12);
	free(s);
}

/* ---- HTTP ---- */

static atomic_int collects;
static atomic_int collect_fail;

static int
collect(void *arg, struct mg_metrics_snapshot *out)
{
	(void)arg;
	atomic_fetch_add(&collects, 1);
	if (atomic_load(&collect_fail))
		return -EAGAIN;
	fill(out);
	return 0;
}

static int status_of(const char *resp);

/* One request over a plain socket; the whole response (malloc'd) or NULL. */
static char *
http(uint16_t port, const char *request, size_t *len)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {.tv_sec = 5};
	size_t cap = 1 << 16, n = 0;
	char *buf = NULL;
	int fd;
	ssize_t r;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    write(fd, request, strlen(request)) != (ssize_t)strlen(request))
		goto out;
	buf = malloc(cap);
	if (buf == NULL)
		goto out;
	while ((r = read(fd, buf + n, cap - n - 1)) > 0) {
		n += (size_t)r;
		if (n + 1 == cap) {
			char *p = realloc(buf, cap * 2);

			if (p == NULL)
				break;
			buf = p;
			cap *= 2;
		}
	}
	buf[n] = '\0';
	*len = n;
out:
	close(fd);
	return buf;
}

/* GET then HEAD on one connection: both 200, the first body read by its length. */
static bool
keep_alive(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {.tv_sec = 5};
	static char buf[1 << 16];
	const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	const char *head = "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	size_t n = 0, want = 0;
	bool ok = false;
	ssize_t r;
	int fd;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    write(fd, get, strlen(get)) != (ssize_t)strlen(get))
		goto out;
	while (want == 0 || n < want) {
		char *end, *cl;

		r = read(fd, buf + n, sizeof(buf) - n - 1);
		if (r <= 0)
			goto out;
		n += (size_t)r;
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
		cl = strcasestr(buf, "\r\nContent-Length:");
		if (want == 0 && end != NULL && cl != NULL)
			want = (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10);
	}
	if (status_of(buf) != 200 || write(fd, head, strlen(head)) != (ssize_t)strlen(head))
		goto out;
	n = 0;
	while ((r = read(fd, buf + n, sizeof(buf) - n - 1)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	ok = status_of(buf) == 200;
out:
	close(fd);
	return ok;
}

static int
status_of(const char *resp)
{
	int st = 0;

	if (resp == NULL || sscanf(resp, "HTTP/1.%*d %d", &st) != 1)
		return -1;
	return st;
}

/* Value of header @p name (case-insensitive) into @p out, or false. */
static bool
header(const char *resp, const char *name, char *out, size_t size)
{
	const char *end = strstr(resp, "\r\n\r\n"), *p = resp;
	size_t n = strlen(name);

	while ((p = strstr(p, "\r\n")) != NULL && p < end) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1, *e = strstr(v, "\r\n");

			while (*v == ' ')
				v++;
			snprintf(out, size, "%.*s", (int)(e - v), v);
			return true;
		}
	}
	return false;
}

static void
test_http_get(void)
{
	struct mg_error err = {{0}};
	struct mg_metrics_http *h;
	struct mg_metrics_snapshot *s = calloc(1, sizeof(*s));
	char *resp, *want, v[128];
	size_t len = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	h = mg_metrics_http_start("127.0.0.1:0", NULL, collect, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_NOT_EQUAL(mg_metrics_http_port(h), 0);
	atomic_store(&collects, 0);
	resp = http(mg_metrics_http_port(h),
	            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	CU_ASSERT_EQUAL(status_of(resp), 200);
	CU_ASSERT_TRUE(header(resp, "Content-Type", v, sizeof(v)));
	CU_ASSERT_STRING_EQUAL(v, "text/plain; version=0.0.4; charset=utf-8");
	CU_ASSERT_EQUAL(atomic_load(&collects), 1);
	fill(s);
	/* the endpoint puts its own figures in: it has cut nothing */
	memset(s->http_cut, 0, sizeof(s->http_cut));
	want = render(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(want);
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "\r\n\r\n"));
	if (strstr(resp, "\r\n\r\n") != NULL)
		CU_ASSERT_STRING_EQUAL(strstr(resp, "\r\n\r\n") + 4, want);
	CU_ASSERT_TRUE(header(resp, "Content-Length", v, sizeof(v)));
	CU_ASSERT_EQUAL(strtoul(v, NULL, 10), strlen(want));
	free(resp);

	/* HEAD: the same headers, no body. */
	resp = http(mg_metrics_http_port(h),
	            "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	CU_ASSERT_EQUAL(status_of(resp), 200);
	CU_ASSERT_TRUE(header(resp, "Content-Type", v, sizeof(v)));
	CU_ASSERT_STRING_EQUAL(v, "text/plain; version=0.0.4; charset=utf-8");
	CU_ASSERT_TRUE(header(resp, "Content-Length", v, sizeof(v)));
	CU_ASSERT_EQUAL(strtoul(v, NULL, 10), strlen(want));
	CU_ASSERT_PTR_NOT_NULL(strstr(resp, "\r\n\r\n"));
	if (strstr(resp, "\r\n\r\n") != NULL)
		CU_ASSERT_STRING_EQUAL(strstr(resp, "\r\n\r\n") + 4, "");
	free(resp);
	free(want);

	/* HTTP/1.0 without Host works too (Prometheus sends 1.1; curl may not). */
	resp = http(mg_metrics_http_port(h), "GET /metrics HTTP/1.0\r\n\r\n", &len);
	CU_ASSERT_EQUAL(status_of(resp), 200);
	CU_ASSERT_PTR_NOT_NULL(resp && strstr(resp, "\nmeshgate_uptime_seconds 42\n"));
	free(resp);
	mg_metrics_http_stop(h);
	free(s);
}

static void
test_http_errors(void)
{
	struct mg_error err = {{0}};
	struct mg_metrics_http *h;
	char *resp, v[64];
	size_t len;

	h = mg_metrics_http_start("127.0.0.1:0", NULL, collect, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	atomic_store(&collects, 0);
	resp = http(mg_metrics_http_port(h),
	            "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
	CU_ASSERT_EQUAL(status_of(resp), 404);
	free(resp);
	resp = http(mg_metrics_http_port(h),
	            "GET /metrics/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
	CU_ASSERT_EQUAL(status_of(resp), 404);
	free(resp);
	resp = http(mg_metrics_http_port(h),
	            "POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	            "Content-Length: 3\r\n\r\nabc",
	            &len);
	CU_ASSERT_EQUAL(status_of(resp), 405);
	CU_ASSERT_TRUE(resp != NULL && header(resp, "Allow", v, sizeof(v)));
	CU_ASSERT_STRING_EQUAL(v, "GET, HEAD");
	free(resp);
	resp = http(mg_metrics_http_port(h),
	            "DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
	CU_ASSERT_EQUAL(status_of(resp), 405);
	free(resp);
	CU_ASSERT_EQUAL(atomic_load(&collects), 0); /* none of them collected */

	atomic_store(&collect_fail, 1);
	resp = http(mg_metrics_http_port(h),
	            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
	CU_ASSERT_EQUAL(status_of(resp), 503);
	free(resp);
	atomic_store(&collect_fail, 0);
	CU_ASSERT_EQUAL(atomic_load(&collects), 1);

	/* Keep-alive: a second request on the same connection is answered. */
	CU_ASSERT_TRUE(keep_alive(mg_metrics_http_port(h)));
	CU_ASSERT_EQUAL(atomic_load(&collects), 3);
	mg_metrics_http_stop(h);
	mg_metrics_http_stop(NULL);
}

static void
test_http_bind(void)
{
	struct mg_error err = {{0}};
	struct mg_metrics_http *h, *h2;
	char listen[64], *resp;
	size_t len;

	h = mg_metrics_http_start("127.0.0.1:0", NULL, collect, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", mg_metrics_http_port(h));
	errno = 0;
	h2 = mg_metrics_http_start(listen, NULL, collect, NULL, &err);
	CU_ASSERT_PTR_NULL(h2);
	CU_ASSERT_EQUAL(errno, EADDRINUSE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, listen));
	mg_metrics_http_stop(h2);
	mg_metrics_http_stop(h);

	/* The port is free again once stopped: the socket was closed. */
	h = mg_metrics_http_start(listen, NULL, collect, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL(h);
	mg_metrics_http_stop(h);

	/* ":0": every address (dual-stack or IPv4), reachable on 127.0.0.1. */
	h = mg_metrics_http_start(":0", NULL, collect, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	resp = http(mg_metrics_http_port(h),
	            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
	CU_ASSERT_EQUAL(status_of(resp), 200);
	free(resp);
	mg_metrics_http_stop(h);

	errno = 0;
	CU_ASSERT_PTR_NULL(mg_metrics_http_start("nonsense", NULL, collect, NULL, &err));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "nonsense"));
	CU_ASSERT_PTR_NULL(mg_metrics_http_start("127.0.0.1:0", NULL, NULL, NULL, &err));
	CU_ASSERT_EQUAL(errno, EINVAL);
}

/* ---- the generic endpoint (mg_metrics_http_start_render) ---- */

static atomic_int render_mode; /* 0 fine, 1 fails, 2 out of memory */

#define RENDERED                                                                  \
	"# HELP meshgate_replicator_up h\n# TYPE meshgate_replicator_up gauge\n"  \
	"meshgate_replicator_up 1\n"                                              \
	"# HELP meshgate_replicator_sync_seconds s\n"                             \
	"# TYPE meshgate_replicator_sync_seconds histogram\n"                     \
	"meshgate_replicator_sync_seconds_bucket{cluster=\"c1\",le=\"0.5\"} 2\n"  \
	"meshgate_replicator_sync_seconds_bucket{cluster=\"c1\",le=\"+Inf\"} 3\n" \
	"meshgate_replicator_sync_seconds_sum{cluster=\"c1\"} 1.75\n"             \
	"meshgate_replicator_sync_seconds_count{cluster=\"c1\"} 3\n"

static int
render_own(void *arg, struct mg_metrics_buf *b)
{
	static const double bounds[] = {0.5};
	static const uint64_t counts[] = {2};

	CU_ASSERT_PTR_EQUAL(arg, &render_mode);
	if (atomic_load(&render_mode) == 1)
		return -EIO;
	if (atomic_load(&render_mode) == 2) {
		b->err = ENOMEM;
		return -ENOMEM;
	}
	mg_metrics_write_family(b, "meshgate_replicator_up", MG_METRICS_GAUGE, "h");
	mg_metrics_write_u64(b, "meshgate_replicator_up", NULL, 1);
	mg_metrics_write_family(b, "meshgate_replicator_sync_seconds", MG_METRICS_HISTOGRAM, "s");
	mg_metrics_write_histogram(b, "meshgate_replicator_sync_seconds",
	                           (const char *const[]){"cluster", "c1", NULL}, bounds, counts, 1,
	                           1.75, 3);
	return b->err ? -b->err : 0;
}

/* The text of the endpoint's own family for @p cut. */
static char *
cut_text(const uint64_t *cut)
{
	struct mg_metrics_buf b;

	mg_metrics_buf_init(&b);
	mg_metrics_write_http_cut(&b, cut);
	return b.data;
}

/*
 * A scrape is the program's text, then the endpoint's own family with its
 * live figures (a client cut for its silence shows up); a failing render
 * is a 503; no render function is EINVAL.
 */
static void
test_http_render(void)
{
	struct mg_metrics_http_params p = {.timeout_ms = 200};
	uint64_t cut[MG_METRICS_HTTP_CUT_N] = {0};
	struct mg_error err = {{0}};
	struct mg_metrics_http *h;
	char *resp, *own, want[4096];
	struct sockaddr_in a = {.sin_family = AF_INET};
	size_t len;
	int fd;

	atomic_store(&render_mode, 0);
	h = mg_metrics_http_start_render("127.0.0.1:0", &p, render_own, &render_mode, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	own = cut_text(cut);
	snprintf(want, sizeof(want), "%s%s", RENDERED, own);
	free(own);
	resp = http(mg_metrics_http_port(h),
	            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
	CU_ASSERT_EQUAL(status_of(resp), 200);
	CU_ASSERT_TRUE(resp != NULL && strstr(resp, "\r\n\r\n") != NULL &&
	               strcmp(strstr(resp, "\r\n\r\n") + 4, want) == 0);
	free(resp);

	/* A silent client is cut after 200 ms, and the next scrape counts it. */
	a.sin_port = htons(mg_metrics_http_port(h));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	usleep(600 * 1000);
	close(fd);
	cut[MG_METRICS_HTTP_CUT_REQUEST_TIMEOUT] = 1;
	own = cut_text(cut);
	snprintf(want, sizeof(want), "%s%s", RENDERED, own);
	free(own);
	resp = http(mg_metrics_http_port(h),
	            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
	CU_ASSERT_EQUAL(status_of(resp), 200);
	CU_ASSERT_TRUE(resp != NULL && strstr(resp, "\r\n\r\n") != NULL &&
	               strcmp(strstr(resp, "\r\n\r\n") + 4, want) == 0);
	free(resp);

	atomic_store(&render_mode, 1);
	resp = http(mg_metrics_http_port(h),
	            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
	CU_ASSERT_EQUAL(status_of(resp), 503);
	CU_ASSERT_PTR_NOT_NULL(resp && strstr(resp, "\r\n\r\nmetrics unavailable\n"));
	free(resp);
	atomic_store(&render_mode, 2);
	resp = http(mg_metrics_http_port(h),
	            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
	CU_ASSERT_EQUAL(status_of(resp), 503);
	CU_ASSERT_PTR_NOT_NULL(resp && strstr(resp, "\r\n\r\nout of memory\n"));
	free(resp);
	atomic_store(&render_mode, 0);
	mg_metrics_http_stop(h);

	errno = 0;
	CU_ASSERT_PTR_NULL(mg_metrics_http_start_render("127.0.0.1:0", NULL, NULL, NULL, &err));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "render"));
}

/* prom_check.py accepts the generic endpoint, histogram included, with its own required families. */
static void
test_http_render_prom_check(void)
{
	struct mg_error err = {{0}};
	struct mg_metrics_http *h;
	char cmd[2048];
	int rc;

	if (access("/usr/bin/python3", X_OK) != 0 ||
	    system("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null") != 0) {
		printf("SKIP: metrics/http_render_prom_check: no python3-prometheus-client\n");
		return;
	}
	atomic_store(&render_mode, 0);
	h = mg_metrics_http_start_render("127.0.0.1:0", NULL, render_own, &render_mode, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/python3 %s/tests/integration/prom_check.py http://127.0.0.1:%u/metrics "
	         "--require meshgate_replicator_up --require meshgate_replicator_sync_seconds "
	         "--require meshgate_metrics_http_connections_cut "
	         "--expect 'meshgate_replicator_sync_seconds_bucket{cluster=\"c1\",le=\"0.5\"}=2' "
	         "--expect 'meshgate_replicator_sync_seconds_count{cluster=\"c1\"}=3' "
	         "--expect "
	         "'meshgate_metrics_http_connections_cut_total{reason=\"evicted\"}=0' "
	         ">/dev/null 2>&1",
	         MG_SOURCE_ROOT, mg_metrics_http_port(h));
	rc = system(cmd);
	CU_ASSERT_EQUAL(rc, 0);
	/* The gateway's families are not there: the default requirements fail. */
	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/python3 %s/tests/integration/prom_check.py http://127.0.0.1:%u/metrics "
	         ">/dev/null 2>&1",
	         MG_SOURCE_ROOT, mg_metrics_http_port(h));
	rc = system(cmd);
	CU_ASSERT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
	mg_metrics_http_stop(h);
}

/* tests/integration/prom_check.py, the daemon's integration check, accepts the live endpoint. */
static void
test_http_prom_check(void)
{
	struct mg_error err = {{0}};
	struct mg_metrics_http *h;
	char cmd[2048];
	int rc;

	if (access("/usr/bin/python3", X_OK) != 0 ||
	    system("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null") != 0) {
		printf("SKIP: metrics/http_prom_check: no python3-prometheus-client\n");
		return;
	}
	h = mg_metrics_http_start("127.0.0.1:0", NULL, collect, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/python3 %s/tests/integration/prom_check.py http://127.0.0.1:%u/metrics "
	         "--expect 'meshgate_drops_total{reason=\"tx_queue_full\",direction=\"none\"}=%u' "
	         "--expect 'meshgate_port_bytes_total{port=\"out-side\",direction=\"tx\"}=700' "
	         "--expect "
	         "'meshgate_policy_verdicts_total{direction=\"egress\",action=\"allowed\"}=8' "
	         "--expect 'meshgate_kvstore_lag_seconds{cluster=\"cluster-1\"}=1.5' "
	         "--expect 'meshgate_build_info{version=\"0.1.0\"}=1' >/dev/null 2>&1",
	         MG_SOURCE_ROOT, mg_metrics_http_port(h), 100 + MG_DROP_TX_FULL);
	rc = system(cmd);
	CU_ASSERT_EQUAL(rc, 0);
	/* And it fails on a wrong value. */
	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/python3 %s/tests/integration/prom_check.py http://127.0.0.1:%u/metrics "
	         "--expect 'meshgate_uptime_seconds=43' >/dev/null 2>&1",
	         MG_SOURCE_ROOT, mg_metrics_http_port(h));
	rc = system(cmd);
	CU_ASSERT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
	mg_metrics_http_stop(h);
}

/* ---- slow clients ---- */

/* A blocking loopback connection to @p port (receive buffer @p rcvbuf when not 0), or -1. */
static int
tcp_open(uint16_t port, int rcvbuf)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool
send_str(int fd, const char *s)
{
	return send(fd, s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s);
}

/*
 * The server ended @p fd within @p ms: reading (and dropping what was
 * sent) reaches the end of the stream or a reset. Closes @p fd.
 */
static bool
ended_by_server(int fd, unsigned ms)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
	uint64_t deadline = mg_time_ns() + (uint64_t)ms * 1000000ull;
	char buf[16384];
	bool ended = false;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (mg_time_ns() < deadline) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);

		if (r == 0 ||
		    (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			ended = true;
			break;
		}
	}
	close(fd);
	return ended;
}

/* The server ended @p fd within @p ms (its FIN or a reset), seen without reading anything. */
static bool
hup_by_server(int fd, unsigned ms)
{
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};

	return poll(&p, 1, (int)ms) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* A client that asks for the metrics @p n times in one write and never reads. */
static int
non_reader(uint16_t port, unsigned n)
{
	const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t len = strlen(req);
	char *all = malloc(len * n + 1);
	int fd = tcp_open(port, 4096);

	if (all == NULL || fd < 0) {
		free(all);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (unsigned i = 0; i < n; i++)
		memcpy(all + i * len, req, len);
	all[len * n] = '\0';
	if (!send_str(fd, all)) {
		close(fd);
		fd = -1;
	}
	free(all);
	return fd;
}

static uint64_t
cuts(struct mg_metrics_http *h, enum mg_metrics_http_cut r)
{
	struct mg_metrics_snapshot *s = calloc(1, sizeof(*s));
	uint64_t v = 0;

	if (s != NULL) {
		mg_metrics_snapshot_set_http(s, h);
		v = s->http_cut[r];
		free(s);
	}
	return v;
}

/* Wait up to @p ms for cuts(@p r) to reach @p n (liveness only); its last value. */
static uint64_t
wait_cuts(struct mg_metrics_http *h, enum mg_metrics_http_cut r, uint64_t n, unsigned ms)
{
	uint64_t deadline = mg_time_ns() + (uint64_t)ms * 1000000ull, v;

	while ((v = cuts(h, r)) < n && mg_time_ns() < deadline)
		usleep(20000);
	return v;
}

/*
 * A connection that sends nothing, one that trickles header lines faster
 * than any idle timeout and one that never reads its answers are each
 * ended once they take longer than the timeout, and counted.
 */
static void
test_http_slow_timeouts(void)
{
	struct mg_metrics_http_params p = {.max_connections = 16, .timeout_ms = 500};
	struct mg_error err = {{0}};
	struct mg_metrics_http *h;
	int silent, trickler, reader;
	uint16_t port;

	h = mg_metrics_http_start("127.0.0.1:0", &p, collect, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	port = mg_metrics_http_port(h);
	silent = tcp_open(port, 0);
	trickler = tcp_open(port, 0);
	CU_ASSERT_TRUE_FATAL(silent >= 0 && trickler >= 0);
	CU_ASSERT_TRUE(send_str(trickler, "GET /metrics HTTP/1.1\r\n"));
	reader = non_reader(port, 300);
	CU_ASSERT_TRUE_FATAL(reader >= 0);
	/* A header line every 100 ms for 2 s: idle never, done never. */
	bool trickled_out = false;
	for (int i = 0; i < 20 && !trickled_out; i++) {
		usleep(100000);
		trickled_out = !send_str(trickler, "X-Slow: 1\r\n");
	}
	CU_ASSERT_TRUE(trickled_out);
	/* first, without reading: a read would take the answers the server is stuck on */
	CU_ASSERT_TRUE(hup_by_server(reader, 3000));
	close(reader);
	CU_ASSERT_TRUE(ended_by_server(trickler, 3000));
	CU_ASSERT_TRUE(ended_by_server(silent, 3000));
	CU_ASSERT_EQUAL(wait_cuts(h, MG_METRICS_HTTP_CUT_REQUEST_TIMEOUT, 2, 3000), 2);
	CU_ASSERT_EQUAL(wait_cuts(h, MG_METRICS_HTTP_CUT_RESPONSE_TIMEOUT, 1, 3000), 1);
	CU_ASSERT_EQUAL(cuts(h, MG_METRICS_HTTP_CUT_EVICTED), 0);
	CU_ASSERT_EQUAL(cuts(h, MG_METRICS_HTTP_CUT_REFUSED), 0);
	mg_metrics_http_stop(h);
}

/* Read one whole response from @p fd (its Content-Length): its status, or -1. */
static int
read_response(int fd)
{
	static char buf[1 << 16];
	size_t n = 0, want = 0;

	while (want == 0 || n < want) {
		char *end, *cl;
		ssize_t r = recv(fd, buf + n, sizeof(buf) - n - 1, 0);

		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
		cl = strcasestr(buf, "\r\nContent-Length:");
		if (want == 0 && end != NULL && cl != NULL)
			want = (size_t)(end + 4 - buf) + strtoul(cl + 17, NULL, 10);
	}
	return status_of(buf);
}

/*
 * A kept-alive scraper that goes quiet after its answer is closed after
 * the timeout, and that is no cut; one that starts its next request and
 * trickles it is cut and counted.
 */
static void
test_http_slow_kept_alive(void)
{
	struct mg_metrics_http_params p = {.max_connections = 16, .timeout_ms = 500};
	const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	struct mg_error err = {{0}};
	struct mg_metrics_http *h;
	bool trickled_out = false;
	uint16_t port;
	int fd;

	h = mg_metrics_http_start("127.0.0.1:0", &p, collect, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	port = mg_metrics_http_port(h);
	fd = tcp_open(port, 0);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_TRUE(send_str(fd, get));
	CU_ASSERT_EQUAL(read_response(fd), 200);
	CU_ASSERT_TRUE(ended_by_server(fd, 3000));
	for (unsigned r = 0; r < MG_METRICS_HTTP_CUT_N; r++)
		CU_ASSERT_EQUAL(cuts(h, r), 0);

	fd = tcp_open(port, 0);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	CU_ASSERT_TRUE(send_str(fd, get));
	CU_ASSERT_EQUAL(read_response(fd), 200);
	CU_ASSERT_TRUE(send_str(fd, "GET /metrics HTTP/1.1\r\n"));
	for (int i = 0; i < 20 && !trickled_out; i++) {
		usleep(100000);
		trickled_out = !send_str(fd, "X-Slow: 1\r\n");
	}
	CU_ASSERT_TRUE(trickled_out);
	CU_ASSERT_TRUE(ended_by_server(fd, 3000));
	CU_ASSERT_EQUAL(wait_cuts(h, MG_METRICS_HTTP_CUT_REQUEST_TIMEOUT, 1, 3000), 1);
	mg_metrics_http_stop(h);
}

/*
 * With the default limits, more slow clients from the scraper's own
 * address than there are slots: the oldest make room, every scrape is
 * answered (within the client's 5 s) and shows the evictions.
 */
static void
test_http_slow_evicted(void)
{
	enum {
		N = 24
	};
	struct mg_error err = {{0}};
	struct mg_metrics_http *h;
	int fds[N];
	char want[128];
	uint16_t port;
	size_t len;

	h = mg_metrics_http_start("127.0.0.1:0", NULL, collect, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	port = mg_metrics_http_port(h);
	for (int i = 0; i < N; i++) {
		fds[i] = tcp_open(port, 0);
		CU_ASSERT(fds[i] >= 0);
		if (fds[i] >= 0 && i % 6 != 0) /* every sixth sends nothing at all */
			send_str(fds[i], "GET /metrics HTTP/1.1\r\n");
	}
	/* one address holds half the slots at most: the rest were evicted */
	CU_ASSERT_TRUE(wait_cuts(h, MG_METRICS_HTTP_CUT_EVICTED, N - MG_METRICS_HTTP_MAX_CONN / 2,
	                         5000) >= N - MG_METRICS_HTTP_MAX_CONN / 2);
	for (int round = 0; round < 3; round++) {
		char *resp, *at;

		for (int i = 0; i < N; i++)
			if (fds[i] >= 0 && i % 6 != 0)
				send_str(fds[i], "X-Slow: 1\r\n");
		resp = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		            &len);
		CU_ASSERT_EQUAL(status_of(resp), 200);
		snprintf(want, sizeof(want),
		         "\nmeshgate_metrics_http_connections_cut_total{reason=\"evicted\"} ");
		at = resp != NULL ? strstr(resp, want) : NULL;
		CU_ASSERT_PTR_NOT_NULL(at);
		if (at != NULL)
			CU_ASSERT_TRUE(strtoull(at + strlen(want), NULL, 10) >=
			               N - MG_METRICS_HTTP_MAX_CONN / 2);
		free(resp);
	}
	CU_ASSERT_EQUAL(cuts(h, MG_METRICS_HTTP_CUT_REFUSED), 0);
	for (int i = 0; i < N; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	mg_metrics_http_stop(h);
}

/*
 * A newcomer is refused only while every slot is in a young exchange;
 * an exchange stuck for a second gives its slot to the next newcomer.
 */
static void
test_http_slow_refused(void)
{
	struct mg_metrics_http_params p = {.max_connections = 1, .timeout_ms = 30000};
	struct mg_error err = {{0}};
	struct mg_metrics_http *h;
	int stuck, late;
	uint16_t port;
	char *resp;
	size_t len;

	h = mg_metrics_http_start("127.0.0.1:0", &p, collect, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	port = mg_metrics_http_port(h);
	stuck = non_reader(port, 300);
	CU_ASSERT_TRUE_FATAL(stuck >= 0);
	usleep(200000); /* its exchange has started (the order only: the grace is 1 s) */
	late = tcp_open(port, 0);
	CU_ASSERT_TRUE(late >= 0);
	if (late >= 0)
		CU_ASSERT_TRUE(ended_by_server(late, 3000));
	CU_ASSERT_EQUAL(cuts(h, MG_METRICS_HTTP_CUT_REFUSED), 1);
	CU_ASSERT_EQUAL(cuts(h, MG_METRICS_HTTP_CUT_EVICTED), 0);
	usleep(1000000);
	resp = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &len);
	CU_ASSERT_EQUAL(status_of(resp), 200);
	free(resp);
	CU_ASSERT_TRUE(hup_by_server(stuck, 3000));
	close(stuck);
	CU_ASSERT_EQUAL(cuts(h, MG_METRICS_HTTP_CUT_EVICTED), 1);
	CU_ASSERT_EQUAL(cuts(h, MG_METRICS_HTTP_CUT_RESPONSE_TIMEOUT), 0);
	mg_metrics_http_stop(h);
}

static void
test_parse_listen(void)
{
	struct sockaddr_storage ss;
	struct mg_error err;
	socklen_t len;
	char txt[64];

	CU_ASSERT_EQUAL(mg_metrics_parse_listen("127.0.0.1:9100", &ss, &len, &err), 0);
	CU_ASSERT_EQUAL(ss.ss_family, AF_INET);
	CU_ASSERT_EQUAL(len, sizeof(struct sockaddr_in));
	CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9100);
	inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, txt, sizeof(txt));
	CU_ASSERT_STRING_EQUAL(txt, "127.0.0.1");

	CU_ASSERT_EQUAL(mg_metrics_parse_listen("[::1]:0", &ss, &len, &err), 0);
	CU_ASSERT_EQUAL(ss.ss_family, AF_INET6);
	inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, txt, sizeof(txt));
	CU_ASSERT_STRING_EQUAL(txt, "::1");

	CU_ASSERT_EQUAL(mg_metrics_parse_listen(":65535", &ss, &len, &err), 0);
	CU_ASSERT_EQUAL(ss.ss_family, AF_INET6);
	CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 65535);
	inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, txt, sizeof(txt));
	CU_ASSERT_STRING_EQUAL(txt, "::");

	CU_ASSERT_EQUAL(mg_metrics_parse_listen("localhost:80", &ss, &len, &err), 0);

	static const char *const bad[] = {
	        "",
	        "9100",
	        "127.0.0.1",
	        "127.0.0.1:",
	        "127.0.0.1:65536",
	        "127.0.0.1:-1",
	        "127.0.0.1:9x",
	        "::1:9100",
	        "[::1]9100",
	        "[::1",
	        "[]:80",
	        "1.2.3.999:80",
	};
	for (size_t i = 0; i < MG_ARRAY_SIZE(bad); i++) {
		memset(&err, 0, sizeof(err));
		CU_ASSERT_EQUAL(mg_metrics_parse_listen(bad[i], &ss, &len, &err), -EINVAL);
		CU_ASSERT_NOT_EQUAL(err.msg[0], '\0');
	}
	CU_ASSERT_EQUAL(mg_metrics_parse_listen(NULL, &ss, &len, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(
	        strstr((mg_metrics_parse_listen("::1:80", &ss, &len, &err), err.msg), "brackets"));
}

/* ---- telemetry dicts ---- */

static char *
json_of(const char *cmd, const char *params, const struct mg_metrics_snapshot *s)
{
	json_t *o = mg_metrics_json(cmd, params, s);
	char *t;

	if (o == NULL)
		return NULL;
	t = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return t;
}

static void
check_json(const struct mg_metrics_snapshot *s, const char *cmd, const char *params,
           const char *want)
{
	char *got = json_of(cmd, params, s);

	CU_ASSERT_PTR_NOT_NULL(got);
	if (got == NULL)
		return;
	if (strcmp(got, want) != 0)
		fprintf(stderr, "%s %s:\n got  %s\n want %s\n", cmd, params ? params : "", got,
		        want);
	CU_ASSERT_STRING_EQUAL(got, want);
	free(got);
}

static void
test_json_commands(void)
{
	struct mg_metrics_snapshot *s = calloc(1, sizeof(*s));

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	fill(s);
	check_json(s, "/meshgate/info", NULL, "{\"uptime_seconds\":42,\"version\":\"0.1.0\"}");
	check_json(s, "/meshgate/ports", NULL,
	           "{\"inside\":{\"dropped\":2,\"name\":\"inside\",\"rx_bytes\":740,"
	           "\"rx_packets\":10,\"tx_bytes\":592,\"tx_packets\":8},"
	           "\"out_side\":{\"dropped\":0,\"name\":\"out-side\",\"rx_bytes\":300,"
	           "\"rx_packets\":5,\"tx_bytes\":700,\"tx_packets\":9}}");
	check_json(s, "/meshgate/verdicts", NULL,
	           "{\"allowed\":6,\"arp_passed\":7,\"ct_rechecked\":3,\"ct_related\":4,"
	           "\"ct_tracked\":9,\"denied\":{\"egress\":1,\"ingress\":2},"
	           "\"fragments_passed\":5,\"nd_passed\":8,\"non_ip_passed\":11}");
	check_json(s, "/meshgate/ipcache", NULL, "{\"entries\":{\"ipv4\":12,\"ipv6\":3}}");
	check_json(s, "/meshgate/identities", NULL, "{\"cluster_1\":5,\"local\":3}");
	check_json(s, "/meshgate/policy", NULL,
	           "{\"policies\":2,\"reloads\":{\"failed\":1,\"ok\":1},\"revision\":5,"
	           "\"rules\":17}");
	check_json(s, "/meshgate/conntrack", NULL,
	           "{\"created\":30,\"entries\":3,\"expired\":27,\"fragments\":1,"
	           "\"fragments_full\":1,\"full\":2,\"memory_bytes\":4096}");
	check_json(s, "/meshgate/kvstore", NULL,
	           "{\"cluster_1\":{\"conflicts\":8,\"connected\":1,\"disconnects\":10,"
	           "\"entries\":40,\"events\":100,\"full_syncs\":2,\"heartbeat_at\":0,"
	           "\"lag_ms\":1500,\"mass_delete_refusals\":9,\"name\":\"cluster-1\","
	           "\"named_ports_dropped\":0,\"rejected_cluster\":0,\"rejected_heartbeat\":0,"
	           "\"rejected_parse\":7,\"rejected_range\":6,\"removal_at\":0,\"removals\":0,"
	           "\"removed\":0,\"removing\":0,\"resyncs_config\":0,\"resyncs_epoch\":1,"
	           "\"resyncs_operator\":0,\"resyncs_reconnect\":4,\"resyncs_repair\":0,"
	           "\"resyncs_replid\":3,\"resyncs_trimmed\":2,\"skipped_no_identity\":0,"
	           "\"stale\":0,\"stale_since\":0,"
	           "\"synced\":1}}");
	check_json(s, "/meshgate/workers", NULL,
	           "{\"0\":{\"busy_loops\":250,\"busy_ratio_ppm\":250000,\"lcore\":1,"
	           "\"loops\":1000},\"1\":{\"busy_loops\":0,\"busy_ratio_ppm\":0,\"lcore\":2,"
	           "\"loops\":0}}");
	check_json(s, "/meshgate/metrics_http", NULL,
	           "{\"connections_cut\":{\"evicted\":33,\"refused\":34,"
	           "\"request_timeout\":31,\"response_timeout\":32}}");

	/* Drops: every reason but "none", by label. */
	json_t *d = mg_metrics_json("/meshgate/drops", NULL, s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(json_object_size(d), MG_DROP__MAX - 1);
	for (unsigned r = 1; r < MG_DROP__MAX; r++)
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(d, mg_drop_label(r))), 100 + r);
	CU_ASSERT_PTR_NULL(json_object_get(d, "none"));
	json_decref(d);

	/* Every command of the list answers. */
	for (const char *const *c = mg_metrics_telemetry_commands(); *c != NULL; c++) {
		json_t *o = mg_metrics_json(*c, NULL, s);

		CU_ASSERT_PTR_NOT_NULL(o);
		CU_ASSERT_EQUAL(strncmp(*c, "/meshgate/", 10), 0);
		json_decref(o);
	}
	free(s);
}

static void
test_json_params(void)
{
	struct mg_metrics_snapshot *s = calloc(1, sizeof(*s));

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	fill(s);
	check_json(s, "/meshgate/ports", "out-side",
	           "{\"dropped\":0,\"name\":\"out-side\",\"rx_bytes\":300,\"rx_packets\":5,"
	           "\"tx_bytes\":700,\"tx_packets\":9}");
	check_json(s, "/meshgate/ports", "out_side",
	           "{\"dropped\":0,\"name\":\"out-side\",\"rx_bytes\":300,\"rx_packets\":5,"
	           "\"tx_bytes\":700,\"tx_packets\":9}");
	check_json(s, "/meshgate/workers", "1",
	           "{\"busy_loops\":0,\"busy_ratio_ppm\":0,\"lcore\":2,\"loops\":0}");
	check_json(s, "/meshgate/ports", "",
	           "{\"inside\":{\"dropped\":2,\"name\":\"inside\","
	           "\"rx_bytes\":740,\"rx_packets\":10,\"tx_bytes\":592,"
	           "\"tx_packets\":8},\"out_side\":{\"dropped\":0,"
	           "\"name\":\"out-side\",\"rx_bytes\":300,"
	           "\"rx_packets\":5,\"tx_bytes\":700,\"tx_packets\":9}}");
	json_t *k = mg_metrics_json("/meshgate/kvstore", "cluster-1", s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(k, "events")), 100);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(k, "name")), "cluster-1");
	json_decref(k);

	static const char *const none[][2] = {
	        {"/meshgate/ports", "nope"}, {"/meshgate/kvstore", "west"},
	        {"/meshgate/workers", "2"},  {"/meshgate/workers", "x"},
	        {"/meshgate/workers", "-1"}, {"/meshgate/nope", NULL},
	        {"/meshgate/workers", " 1"}, {NULL, NULL},
	};
	for (size_t i = 0; i < MG_ARRAY_SIZE(none); i++) {
		errno = 0;
		CU_ASSERT_PTR_NULL(mg_metrics_json(none[i][0], none[i][1], s));
		CU_ASSERT_EQUAL(errno, ENOENT);
	}
	free(s);
}

/* Names that collide once made keys get distinct keys; odd names are made legal. */
static void
test_json_keys(void)
{
	struct mg_metrics_snapshot *s = calloc(1, sizeof(*s));

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	s->n_ports = 3;
	snprintf(s->ports[0].name, MG_METRICS_NAME_MAX, "a-b");
	snprintf(s->ports[1].name, MG_METRICS_NAME_MAX, "a_b");
	snprintf(s->ports[2].name, MG_METRICS_NAME_MAX, "x.y z");
	s->n_identity_clusters = 2;
	snprintf(s->identities[0].cluster, MG_METRICS_NAME_MAX, "e-1");
	snprintf(s->identities[1].cluster, MG_METRICS_NAME_MAX, "e_1");
	s->identities[1].count = 9;
	json_t *p = mg_metrics_json("/meshgate/ports", NULL, s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(json_object_size(p), 3);
	CU_ASSERT_STRING_EQUAL(
	        json_string_value(json_object_get(json_object_get(p, "a_b"), "name")), "a-b");
	CU_ASSERT_STRING_EQUAL(
	        json_string_value(json_object_get(json_object_get(p, "a_b_1"), "name")), "a_b");
	CU_ASSERT_STRING_EQUAL(
	        json_string_value(json_object_get(json_object_get(p, "x_y_z"), "name")), "x.y z");
	json_decref(p);
	check_json(s, "/meshgate/identities", NULL, "{\"e_1\":0,\"e_1_1\":9}");
	free(s);
}

/*
 * The rte_tel_data back end, without a socket. DPDK 22.11's
 * rte_tel_data_free() does not free nested containers (the socket code
 * does, after writing them out), so only the flat commands are filled
 * here; the nested ones go through the real socket below, and the JSON
 * back end checks keys as telemetry does.
 */
static void
test_telemetry_fill(void)
{
	static const char *const flat[] = {"/meshgate/info", "/meshgate/drops",
	                                   "/meshgate/identities", "/meshgate/conntrack"};
	struct mg_metrics_snapshot *s = calloc(1, sizeof(*s));
	struct rte_tel_data *d;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	fill(s);
	for (size_t i = 0; i < MG_ARRAY_SIZE(flat); i++) {
		d = rte_tel_data_alloc();
		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		CU_ASSERT_EQUAL(mg_metrics_telemetry_fill(flat[i], NULL, s, d), 0);
		rte_tel_data_free(d);
	}
	d = rte_tel_data_alloc();
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(mg_metrics_telemetry_fill("/meshgate/ports", "nope", s, d), -ENOENT);
	CU_ASSERT_EQUAL(mg_metrics_telemetry_fill("/nope", NULL, s, d), -ENOENT);
	/* A one-port answer is flat: the port's own dict. */
	CU_ASSERT_EQUAL(mg_metrics_telemetry_fill("/meshgate/ports", "inside", s, d), 0);
	rte_tel_data_free(d);

	/* Full tables fit telemetry's limits (checked by the JSON back end). */
	s->n_workers = MG_METRICS_MAX_WORKERS;
	s->n_kvstore = MG_METRICS_MAX_CLUSTERS;
	s->n_identity_clusters = MG_METRICS_MAX_CLUSTERS;
	for (unsigned i = 0; i < MG_METRICS_MAX_CLUSTERS; i++) {
		memset(s->kvstore[i].cluster, 'k', MG_METRICS_NAME_MAX - 1);
		snprintf(s->identities[i].cluster, MG_METRICS_NAME_MAX, "c-%u", i);
	}
	for (const char *const *c = mg_metrics_telemetry_commands(); *c != NULL; c++) {
		json_t *o = mg_metrics_json(*c, NULL, s);

		CU_ASSERT_PTR_NOT_NULL(o);
		json_decref(o);
	}
	json_t *k = mg_metrics_json("/meshgate/kvstore", NULL, s);
	/* as many clusters as one reply holds, and how many more there are */
	CU_ASSERT_EQUAL(json_object_size(k), 17);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(k, "more")),
	                MG_METRICS_MAX_CLUSTERS - 16);
	json_decref(k);
	free(s);
}

/* ---- the real telemetry socket (root only: EAL) ---- */

static char prefix[64];

static void
remove_runtime_dir(void)
{
	char dir[256], path[600];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "/var/run/dpdk/%s", prefix);
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

/* Send @p cmd on a telemetry socket and parse the JSON reply. */
static json_t *
tel_query(int fd, const char *cmd)
{
	char buf[1 << 16];
	ssize_t n;

	if (write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd))
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return json_loads(buf, 0, NULL);
}

static void
test_telemetry_socket(void)
{
	char *argv[] = {"test_metrics", "--no-huge",     "--no-pci", "-l", "0",
	                NULL,           "--log-level=1", NULL};
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 5};
	char fp[96], greet[1024];
	json_t *r, *v;
	int fd;

	if (geteuid() != 0) {
		printf("SKIP: metrics/telemetry_socket: EAL needs root\n");
		return;
	}
	snprintf(prefix, sizeof(prefix), "mgtest%d", (int)getpid());
	snprintf(fp, sizeof(fp), "--file-prefix=%s", prefix);
	argv[5] = fp;
	CU_ASSERT_EQUAL(mg_metrics_telemetry_register(collect, NULL), 0);
	CU_ASSERT_EQUAL(mg_metrics_telemetry_register(collect, NULL), -EEXIST);
	CU_ASSERT_EQUAL_FATAL(rte_eal_init(7, argv), 6);

	snprintf(a.sun_path, sizeof(a.sun_path), "/var/run/dpdk/%s/dpdk_telemetry.v2", prefix);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	CU_ASSERT_EQUAL(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	CU_ASSERT_TRUE(read(fd, greet, sizeof(greet) - 1) > 0); /* version, pid, max length */

	r = tel_query(fd, "/");
	CU_ASSERT_PTR_NOT_NULL(r);
	v = json_object_get(r, "/");
	CU_ASSERT_TRUE(json_is_array(v));
	for (const char *const *c = mg_metrics_telemetry_commands(); *c != NULL; c++) {
		bool found = false;
		size_t i;
		json_t *e;

		json_array_foreach(v, i, e) found |=
		        json_is_string(e) && !strcmp(json_string_value(e), *c);
		CU_ASSERT_TRUE(found);
	}
	json_decref(r);

	r = tel_query(fd, "/meshgate/ports");
	v = json_object_get(json_object_get(r, "/meshgate/ports"), "out_side");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "tx_bytes")), 700);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "name")), "out-side");
	v = json_object_get(json_object_get(r, "/meshgate/ports"), "inside");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "rx_packets")), 10);
	json_decref(r);

	r = tel_query(fd, "/meshgate/verdicts");
	v = json_object_get(r, "/meshgate/verdicts");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "allowed")), 6);
	CU_ASSERT_EQUAL(
	        json_integer_value(json_object_get(json_object_get(v, "denied"), "ingress")), 2);
	json_decref(r);

	r = tel_query(fd, "/meshgate/drops");
	v = json_object_get(r, "/meshgate/drops");
	CU_ASSERT_EQUAL(json_object_size(v), MG_DROP__MAX - 1);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "tx_queue_full")),
	                100 + MG_DROP_TX_FULL);
	json_decref(r);

	r = tel_query(fd, "/meshgate/kvstore,cluster-1");
	v = json_object_get(r, "/meshgate/kvstore");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "lag_ms")), 1500);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "resyncs_reconnect")), 4);
	json_decref(r);

	r = tel_query(fd, "/meshgate/workers,0");
	v = json_object_get(r, "/meshgate/workers");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(v, "busy_ratio_ppm")), 250000);
	json_decref(r);

	/* Every command answers with a dict. */
	for (const char *const *c = mg_metrics_telemetry_commands(); *c != NULL; c++) {
		r = tel_query(fd, *c);
		CU_ASSERT_TRUE(json_is_object(json_object_get(r, *c)));
		json_decref(r);
	}

	r = tel_query(fd, "/meshgate/info");
	v = json_object_get(r, "/meshgate/info");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, "version")), "0.1.0");
	json_decref(r);

	/* A failing collect is an error reply, not a crash. */
	atomic_store(&collect_fail, 1);
	r = tel_query(fd, "/meshgate/info");
	CU_ASSERT_PTR_NOT_NULL(r);
	CU_ASSERT_TRUE(json_is_null(json_object_get(r, "/meshgate/info")));
	json_decref(r);
	atomic_store(&collect_fail, 0);

	close(fd);
	rte_eal_cleanup();
	remove_runtime_dir();
}

static CU_TestInfo tests[] = {
        {"writer_escaping", test_writer_escaping},
        {"writer_double", test_writer_double},
        {"writer_histogram", test_writer_histogram},
        {"writer_grows", test_writer_grows},
        {"render_exact", test_render_exact},
        {"render_structure", test_render_structure},
        {"families_documented", test_families_documented},
        {"render_every_drop", test_render_every_drop},
        {"render_policy_verdicts", test_render_policy_verdicts},
        {"render_escapes_names", test_render_escapes_names},
        {"snapshot_helpers", test_snapshot_helpers},
        {"http_get", test_http_get},
        {"http_errors", test_http_errors},
        {"http_bind", test_http_bind},
        {"http_prom_check", test_http_prom_check},
        {"http_render", test_http_render},
        {"http_render_prom_check", test_http_render_prom_check},
        {"http_slow_timeouts", test_http_slow_timeouts},
        {"http_slow_kept_alive", test_http_slow_kept_alive},
        {"http_slow_evicted", test_http_slow_evicted},
        {"http_slow_refused", test_http_slow_refused},
        {"parse_listen", test_parse_listen},
        {"json_commands", test_json_commands},
        {"json_params", test_json_params},
        {"json_keys", test_json_keys},
        {"telemetry_fill", test_telemetry_fill},
        {"telemetry_socket", test_telemetry_socket},
        CU_TEST_INFO_NULL,
};

MG_TEST_MAIN("metrics", tests)
