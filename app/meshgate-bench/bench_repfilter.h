/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `meshgate-bench replicator-filter`: what meshgate-replicator's
 * relevant-only filter saves on a generated mesh, its cost per identity,
 * and a differential check of the gateway's verdicts. See
 * bench_repfilter.c.
 */
#ifndef MG_BENCH_REPFILTER_H
#define MG_BENCH_REPFILTER_H

/**
 * Run the filter benchmark. @p argv[0] is "replicator-filter"; the rest
 * are its options (see the usage text printed by --help).
 * @return the process exit status (1 when the differential check fails).
 */
int mg_bench_repfilter(int argc, char **argv);

#endif /* MG_BENCH_REPFILTER_H */
