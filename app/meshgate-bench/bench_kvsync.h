/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench kvsync`: cold sync rate of the Redis sync client next to
 * redis-benchmark's pipelined GET rate, and write-to-effective latency of
 * ipcache updates. See bench_kvsync.c.
 */
#ifndef MG_BENCH_KVSYNC_H
#define MG_BENCH_KVSYNC_H

/**
 * Run the Redis sync benchmarks. @p argv[0] is "kvsync".
 * @return the process exit status.
 */
int mg_bench_kvsync(int argc, char **argv);

#endif /* MG_BENCH_KVSYNC_H */
