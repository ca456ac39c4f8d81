/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench replicator`: meshgate-replicator's initial copy next to
 * a bare paged etcd list, etcd put -> gateway verdict latency, and the
 * fan-out of m etcd clusters to n gateways. See bench_replicator.c.
 */
#ifndef MG_BENCH_REPLICATOR_H
#define MG_BENCH_REPLICATOR_H

/**
 * Run the replicator benchmark. @p argv[0] is "replicator"; the rest are
 * its options (--help).
 * @return the process exit status.
 */
int mg_bench_replicator(int argc, char **argv);

#endif /* MG_BENCH_REPLICATOR_H */
