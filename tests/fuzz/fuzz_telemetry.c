/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target of lib/metrics' telemetry commands: the parameter of a
 * /meshgate/... command is what any local client of DPDK's telemetry
 * socket sends. The first input byte picks the command (one past the
 * table: an unknown one), the second how many ports, kvstore clusters and
 * workers the snapshot holds; the rest is split at newlines: the
 * parameter first, then the ports' and the clusters' names (as printable
 * ASCII, what the config loaders let through), over a snapshot filled
 * with figures. Besides surviving any input under ASan/UBSan without a
 * leak: the DPDK back end (mg_metrics_telemetry_fill) and the JSON one
 * (mg_metrics_json) agree, as the module promises, on success or on the
 * errno; an answer is an object that encodes; an unknown command
 * or a parameter naming nothing is ENOENT.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_telemetry.h>

#include "mg_metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

struct rte_tel_data *rte_tel_data_alloc(void);
void rte_tel_data_free(struct rte_tel_data *d);

/*
 * A sub-dict added with keep 0 is freed by DPDK's telemetry library when
 * it writes the reply to its socket, which this target does not do:
 * rte_tel_data_free() frees one dict. So the target stands in for both
 * functions (the module's calls bind to these), keeps every dict of one
 * input, and frees what is left at its end; the library's own functions
 * fill them as usual.
 */
#define MAX_DICTS 4096
static struct rte_tel_data *dicts[MAX_DICTS];
static size_t n_dicts;

struct rte_tel_data *
rte_tel_data_alloc(void)
{
	static struct rte_tel_data *(*real)(void);
	struct rte_tel_data *d;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "rte_tel_data_alloc");
	CHECK(real != NULL && n_dicts < MAX_DICTS);
	d = real();
	if (d != NULL)
		dicts[n_dicts++] = d;
	return d;
}

void
rte_tel_data_free(struct rte_tel_data *d)
{
	for (size_t i = 0; i < n_dicts; i++) {
		if (dicts[i] == d) {
			dicts[i] = dicts[--n_dicts];
			free(d); /* what the library's rte_tel_data_free does */
			return;
		}
	}
	CHECK(d == NULL);
}

static void
free_dicts(void)
{
	while (n_dicts > 0)
		free(dicts[--n_dicts]);
}

/* Next newline-ended piece of [*p, end) into @p out (printable, truncated). */
static void
piece(const uint8_t **p, const uint8_t *end, char *out, size_t size, bool printable)
{
	size_t n = 0;

	while (*p < end && **p != '\n') {
		uint8_t b = **p;

		if (n + 1 < size)
			out[n++] = printable ? (char)(0x20 + b % 0x5f) : (char)b;
		(*p)++;
	}
	if (*p < end)
		(*p)++;
	out[n] = '\0';
}

static void
fill(struct mg_metrics_snapshot *s, uint8_t counts, const uint8_t **p, const uint8_t *end)
{
	unsigned i;

	memset(s, 0, sizeof(*s));
	snprintf(s->version, sizeof(s->version), "0.1.0");
	s->uptime_seconds = 3600;
	s->n_ports = (counts & 3) % (MG_METRICS_MAX_PORTS + 1);
	for (i = 0; i < s->n_ports; i++) {
		piece(p, end, s->ports[i].name, sizeof(s->ports[i].name), true);
		s->ports[i].rx_packets = 1000 + i;
	}
	for (i = 0; i < MG_DROP__MAX; i++)
		s->drops[i] = i;
	s->ipcache_ipv4 = 12;
	s->n_identity_clusters = 1;
	snprintf(s->identities[0].cluster, sizeof(s->identities[0].cluster), "cluster-1");
	s->n_kvstore = (counts >> 2) & 7;
	for (i = 0; i < s->n_kvstore; i++) {
		piece(p, end, s->kvstore[i].cluster, sizeof(s->kvstore[i].cluster), true);
		s->kvstore[i].connected = true;
		s->kvstore[i].entries = 40 + i;
		s->kvstore[i].stale_reason = i;
	}
	s->n_workers = (counts >> 5) & 7;
	for (i = 0; i < s->n_workers; i++)
		s->workers[i] = (struct mg_metrics_worker){i + 1, 1000, 250, 0.25};
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mg_metrics_snapshot s;
	const char *const *names = mg_metrics_telemetry_commands();
	const uint8_t *p = data + 2, *end = data + size;
	size_t n_cmds = 0;
	const char *cmd;
	char params[512];
	struct rte_tel_data *d;
	json_t *j;
	int rc, e;

	if (size < 2)
		return 0;
	while (names[n_cmds] != NULL)
		n_cmds++;
	cmd = data[0] % (n_cmds + 1) < n_cmds ? names[data[0] % (n_cmds + 1)] : "/meshgate/none";
	piece(&p, end, params, sizeof(params), false);
	fill(&s, data[1], &p, end);

	j = mg_metrics_json(cmd, params, &s);
	e = j == NULL ? errno : 0;
	d = rte_tel_data_alloc();
	CHECK(d != NULL);
	rc = mg_metrics_telemetry_fill(cmd, params, &s, d);
	free_dicts();
	if (j == NULL) {
		CHECK(e != 0 && rc == -e);
	} else {
		char *text = json_dumps(j, JSON_COMPACT);

		CHECK(rc == 0);
		CHECK(json_is_object(j)); /* empty: no kvstore cluster, say */
		CHECK(text != NULL);
		free(text);
		json_decref(j);
	}
	if (data[0] % (n_cmds + 1) == n_cmds)
		CHECK(j == NULL && e == ENOENT);
	return 0;
}
