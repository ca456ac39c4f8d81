/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef MG_BENCH_TESTPMD_H
#define MG_BENCH_TESTPMD_H

/*
 * Run @p testpmd (io forwarding, one forwarding core, --no-huge) on
 * lcores @p lcores and ports @p vdev0 / @p vdev1 for @p secs measured
 * seconds: its mean rx rate in frames/s over both ports, counted from the
 * second period in which frames flowed, or -1.
 */
double bench_run_testpmd(const char *testpmd, const char *lcores, const char *vdev0,
                         const char *vdev1, unsigned secs);

#endif /* MG_BENCH_TESTPMD_H */
