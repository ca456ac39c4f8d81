/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench ipcache`: cycles per ipcache lookup from 1k to 1M
 * entries (hot working set, uniform over the table, misses), next to
 * DPDK's rte_lpm / rte_fib / rte_fib6 on the same prefixes (see
 * bench_ipcache.c); with --writer, updates per second applied while
 * readers look up (bench_ipcache_writer.c).
 */
#ifndef MG_BENCH_IPCACHE_H
#define MG_BENCH_IPCACHE_H

/**
 * Run the ipcache lookup benchmark. @p argv[0] is "ipcache"; the rest are
 * its options (see the usage text printed by --help).
 * @return the process exit status.
 */
int mg_bench_ipcache(int argc, char **argv);

/**
 * `meshgate-bench ipcache --writer`: updates per second applied by the
 * ipcache's writer while reader threads look up (bench_ipcache_writer.c).
 * @p argv as for mg_bench_ipcache(). @return the process exit status.
 */
int mg_bench_ipcache_writer(int argc, char **argv);

#endif /* MG_BENCH_IPCACHE_H */
