/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What bench_policy.c (the workload: identities, policies, flows, the
 * verdict and pipeline timings) shares with bench_policy_acl.c (the same
 * policy as 5-tuple rules through dpdk-test-acl). Not an interface: the
 * two files are one benchmark.
 */
#ifndef MG_BENCH_POLICY_PRIV_H
#define MG_BENCH_POLICY_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_identity.h"
#include "mg_ipcache.h"
#include "mg_policy.h"

#define N_CLUSTERS 2
#define APPS 20     /* apps per namespace */
#define VERSIONS 10 /* identities per app */
#define N_SPECIAL 2 /* per cluster: kube-dns, prometheus */
#define SPECIAL_DNS 0
#define SPECIAL_PROM 1
/* Local parts 256..65535 of a cluster in 255-cluster mode. */
#define MAX_PER_CLUSTER (65536u - MG_ID_MIN_CLUSTER_LOCAL - N_SPECIAL)
#define BURST 32

/* Flows are timed by blocks of CHUNK (see bp_verdict_cycles). */
#define CHUNK 1024

/*
 * Every port the generated policies name, as the first port of each
 * elementary interval (see bench_policy.c).
 */
extern const uint16_t bp_port_starts[13];
#define N_INTERVALS (sizeof(bp_port_starts) / sizeof(bp_port_starts[0]))

struct opts {
	unsigned identities;
	unsigned policies[3];
	unsigned flows;
	unsigned rounds;
	unsigned adds;
	unsigned acl_identities[4]; /* sizes of the ACL comparison, 0-terminated */
	unsigned acl_iter;
	const char *test_acl;
	const char *keep_dir; /* write the ACL files here and keep them */
};

/* The identities of one instance: pods[c] pod identities in cluster c. */
struct world {
	unsigned pods[N_CLUSTERS];
	unsigned added[N_CLUSTERS]; /* identities added after the start (rollouts) */
	struct mg_identity_table *ids;
};

struct compiled {
	struct mg_policy *pol;
	double secs;
};

struct flow {
	uint32_t src, dst; /* identities */
	uint8_t saddr[4], daddr[4];
	uint16_t sport, dport;
	uint8_t proto;
};

double bp_secs_since(uint64_t ns0);
const char *bp_fmt_secs(char *buf, size_t size, double secs);

int bp_world_build(struct world *w, unsigned n);
void bp_world_free(struct world *w);
/* The IPv4 address (host order) of identity @p id's one pod. */
uint32_t bp_addr_of(uint32_t id);

struct mg_policy_set *bp_policies_load(unsigned n, double *secs, size_t *yaml_bytes,
                                       struct mg_error *err);
int bp_compile_timed(const struct mg_policy_set *s, const struct mg_identity_table *ids,
                     struct compiled *out, struct mg_error *err);

struct flow *bp_flows_build(const struct world *w, unsigned n);
/* bench_policy_verdict.c: cycles per verdict, single and bulk, and their agreement. */
double bp_verdict_cycles(const struct mg_policy *pol, const struct flow *f, unsigned n,
                         unsigned rounds, unsigned *allowed);
double bp_verdict_bulk_cycles(const struct mg_policy *pol, const struct flow *f, unsigned n,
                              unsigned rounds, unsigned *allowed);
/* Flows on which the bulk and the single verdict differ (must be 0). */
unsigned bp_bulk_disagreements(const struct mg_policy *pol, const struct flow *f, unsigned n);
double bp_pipeline_cycles(const struct mg_ipcache_view *v, const struct mg_policy *pol,
                          const struct flow *f, unsigned n, unsigned rounds, unsigned *wrong);

/* The dpdk-test-acl comparison over @p acl_identities identities. */
int bp_bench_acl(const struct opts *o, unsigned acl_identities);

#endif /* MG_BENCH_POLICY_PRIV_H */
