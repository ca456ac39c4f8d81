/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target of lib/policy: every input is loaded as a policy file
 * (mg_policy_set_load_buf). Besides surviving any input under ASan/UBSan
 * without a leak, the loader must keep its promises: a refused input comes
 * with an error message and leaves the set empty; an accepted one adds
 * exactly the policies it reports. An accepted set is compiled against a
 * small fixed identity table (two clusters, three namespaces, reserved
 * identities, a CIDR identity, named ports) under several parameter sets,
 * and for a grid of flows the compiled verdict must equal the rule-by-rule
 * trace, and so must an incrementally updated copy of the compiled policy.
 * A broken invariant aborts, which libFuzzer and the corpus replay both
 * report.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

static const struct {
	uint32_t id;
	unsigned cluster;
	const char *labels;
} fuzz_ids[] = {
        {65792, 1,
         "k8s:app=web;k8s:io.kubernetes.pod.namespace=a;k8s:io.cilium.k8s.policy.cluster=c1"},
        {65793, 1,
         "k8s:app=db;k8s:io.kubernetes.pod.namespace=a;k8s:io.cilium.k8s.policy.cluster=c1"},
        {65794, 1,
         "k8s:app=web;k8s:io.kubernetes.pod.namespace=b;k8s:io.cilium.k8s.policy.cluster=c1"},
        {65795, 1,
         "k8s:app=api;k8s:env=prod;k8s:io.kubernetes.pod.namespace=c;k8s:io.cilium.k8s.policy."
         "cluster=c1"},
        {65796, 1, "k8s:io.kubernetes.pod.namespace=default;k8s:io.cilium.k8s.policy.cluster=c1"},
        {131328, 2,
         "k8s:app=web;k8s:io.kubernetes.pod.namespace=a;k8s:io.cilium.k8s.policy.cluster=c2"},
        {131329, 2,
         "k8s:app=db;k8s:io.kubernetes.pod.namespace=b;k8s:io.cilium.k8s.policy.cluster=c2"},
        /* the gateway's CIDR identity of 10.0.0.0/8, labelled as mg_cidr_ids_sync does */
        {MG_ID_LOCAL_SCOPE | 1, 0,
         "cidr:10.0.0.0/8;cidr:10.0.0.0/7;cidr:8.0.0.0/6;cidr:8.0.0.0/5;cidr:0.0.0.0/4;"
         "cidr:0.0.0.0/3;cidr:0.0.0.0/2;cidr:0.0.0.0/1;cidr:0.0.0.0/0;reserved:world;"
         "reserved:world-ipv4"},
};

static const struct {
	uint32_t id;
	const char *name;
	uint8_t proto;
	uint16_t port;
} fuzz_ports[] = {
        {65792, "http", 6, 80},
        {65793, "http", 6, 8080},
        {65793, "pg", 6, 5432},
        {131328, "dns", 17, 53},
};

/* Flows of the grid: these identities plus host, world and an unknown one. */
static const uint32_t flow_ids[] = {
        65792, 65793, 65794, 65795, 65796, 131328, 131329,
        1,     2,     6,     9,     10,    424242, MG_ID_LOCAL_SCOPE | 1};
static const uint8_t flow_protos[] = {6, 17, 132, 1, 58};
static const uint16_t flow_ports[] = {8, 22, 53, 80, 128, 443, 5432, 8080};

static struct mg_identity_table *
identities(void)
{
	static struct mg_identity_table *t;
	size_t i;

	if (t != NULL)
		return t;
	t = mg_identity_table_create(MG_CLUSTER_MODE_255);
	CHECK(t != NULL);
	for (i = 0; i < sizeof(fuzz_ids) / sizeof(fuzz_ids[0]); i++) {
		struct mg_labels ls = MG_LABELS_INIT;
		struct mg_error err = {{0}};

		CHECK(mg_labels_parse(&ls, fuzz_ids[i].labels, &err) == 0);
		CHECK(mg_identity_table_put(t, fuzz_ids[i].id, &ls, fuzz_ids[i].cluster) == 0);
		mg_labels_clear(&ls);
	}
	for (i = 0; i < sizeof(fuzz_ports) / sizeof(fuzz_ports[0]); i++)
		CHECK(mg_identity_table_add_named_port(t, fuzz_ports[i].id, fuzz_ports[i].name,
		                                       fuzz_ports[i].proto,
		                                       fuzz_ports[i].port) == 0);
	return t;
}

static void
cross_check(const struct mg_policy_set *s, const struct mg_policy_params *p)
{
	struct mg_identity_table *ids = identities();
	struct mg_error err = {{0}};
	struct mg_policy *pol, *upd;
	size_t i, j, k, l;

	pol = mg_policy_compile(s, ids, p, &err);
	if (pol == NULL) {
		/* only the documented limits may refuse a loaded set */
		CHECK(errno == E2BIG || errno == ENOMEM);
		CHECK(err.msg[0] != '\0');
		return;
	}
	CHECK(mg_policy_revision(pol) == p->revision);
	CHECK(mg_policy_memory(pol) > 0);
	/* re-classifying every identity incrementally changes no verdict */
	upd = mg_policy_update_identities(pol, s, ids, flow_ids,
	                                  sizeof(flow_ids) / sizeof(flow_ids[0]), &err);
	CHECK(upd != NULL || errno == E2BIG || errno == ENOMEM);
	for (i = 0; i < sizeof(flow_ids) / sizeof(flow_ids[0]); i++)
		for (j = 0; j < sizeof(flow_ids) / sizeof(flow_ids[0]); j++)
			for (k = 0; k < sizeof(flow_protos); k++)
				for (l = 0; l < sizeof(flow_ports) / sizeof(flow_ports[0]); l++) {
					struct mg_policy_trace t;
					enum mg_verdict v;

					v = mg_policy_verdict(pol, flow_ids[i], flow_ids[j],
					                      flow_protos[k], flow_ports[l]);
					mg_policy_trace(s, ids, p, flow_ids[i], flow_ids[j],
					                flow_protos[k], flow_ports[l], &t);
					CHECK(v == t.verdict);
					CHECK(upd == NULL ||
					      v == mg_policy_verdict(upd, flow_ids[i], flow_ids[j],
					                             flow_protos[k],
					                             flow_ports[l]));
				}
	mg_policy_free(pol);
	mg_policy_free(upd);
}

static void
check_warning(const struct mg_policy_problem *pr, void *arg)
{
	(void)arg;
	CHECK(pr->warning);
	CHECK(pr->file != NULL && pr->line > 0 && pr->msg != NULL && pr->msg[0] != '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct mg_policy_params params[] = {
	        {MG_ENFORCE_DEFAULT, true, 1},
	        {MG_ENFORCE_DEFAULT, false, 2},
	        {MG_ENFORCE_ALWAYS, true, 3},
	};
	struct mg_error err = {{0}};
	struct mg_policy_set *s;
	size_t i;
	int rc;

	if (size > (1u << 20))
		return 0;
	s = mg_policy_set_create();
	CHECK(s != NULL);
	rc = mg_policy_set_load_buf(s, "c1", "fuzz.yaml", data, size, &err);
	if (rc < 0) {
		CHECK(err.msg[0] != '\0');
		CHECK(mg_policy_set_count(s) == 0);
		CHECK(mg_policy_set_rules(s) == 0);
	} else {
		CHECK((size_t)rc == mg_policy_set_count(s));
		CHECK(mg_policy_set_rules(s) >= mg_policy_set_count(s));
		/* every warning names a position */
		CHECK(mg_policy_set_warnings(s, check_warning, NULL) <=
		      mg_policy_set_rules(s) * 64);
		for (i = 0; i < sizeof(params) / sizeof(params[0]); i++)
			cross_check(s, &params[i]);
	}
	mg_policy_set_free(s);
	return 0;
}
