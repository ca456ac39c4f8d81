/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench policy`: compile time and memory of the policy engine,
 * incremental identity updates, verdict cycles, and the same policy as
 * 5-tuple rules through dpdk-test-acl. See bench_policy.c.
 */
#ifndef MG_BENCH_POLICY_H
#define MG_BENCH_POLICY_H

/**
 * Run the policy benchmarks. @p argv[0] is "policy"; the rest are its
 * options (see the usage text printed by --help).
 * @return the process exit status.
 */
int mg_bench_policy(int argc, char **argv);

#endif /* MG_BENCH_POLICY_H */
